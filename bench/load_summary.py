#!/usr/bin/env python3
"""Summarizes the Envoy load benchmark: medians per variant and sluice's throughput ratios.

Usage: load_summary.py RESULTS.tsv. Each line: variant, round, requests, duration_us, p50_us, p99_us,
non2xx, socket_errors, stable_delta, canary_delta (the last two counted by the upstream Envoy).
Prints figures and goals side by side; it never fails on a goal (the machine is noisy).
"""
import statistics
import sys

VARIANTS = [("no-wasm", "no wasm filter"), ("noop", "no-op Rust filter"), ("sluice", "sluice")]
GOALS = [("noop", "no-op", 0.95), ("no-wasm", "no-wasm", 0.85)]


def milliseconds(us):
    return f"{us / 1000:.2f} ms"


runs = {}
with open(sys.argv[1]) as f:
    for line in f:
        fields = line.split()
        if not fields:
            continue
        variant, numbers = fields[0], [float(x) for x in fields[2:]]
        requests, duration_us, p50, p99, non2xx, socket_errors, stable, canary = numbers
        runs.setdefault(variant, []).append(
            {
                "rps": requests / (duration_us / 1e6),
                "p50": p50,
                "p99": p99,
                "errors": non2xx + socket_errors,
                "stable": stable,
                "canary": canary,
            }
        )

median = {}
print(f"{'variant':<20} {'rps (median)':>12} {'p50':>10} {'p99':>10}  rps per round")
for key, label in VARIANTS:
    rows = runs.get(key, [])
    if not rows:
        print(f"{label:<20} {'no runs':>12}")
        continue
    median[key] = statistics.median(r["rps"] for r in rows)
    p50 = statistics.median(r["p50"] for r in rows)
    p99 = statistics.median(r["p99"] for r in rows)
    per_round = " ".join(f"{r['rps']:.0f}" for r in rows)
    print(f"{label:<20} {median[key]:>12.0f} {milliseconds(p50):>10} {milliseconds(p99):>10}  {per_round}")

print()
for key, label, goal in GOALS:
    if "sluice" in median and key in median:
        ratio = median["sluice"] / median[key]
        verdict = "met" if ratio >= goal else f"missed by {goal - ratio:.3f}"
        print(f"sluice/{label} rps: {ratio:.3f}   (goal >= {goal}: {verdict})")

for key, label in VARIANTS:
    rows = runs.get(key, [])
    errors = sum(r["errors"] for r in rows)
    upstream = sum(r["stable"] + r["canary"] for r in rows)
    canary = sum(r["canary"] for r in rows)
    share = f"{100 * canary / upstream:.1f}% canary" if upstream else "no upstream counts"
    print(f"{label}: {share} at the upstream, {errors:.0f} errors (non-2xx or socket)")
