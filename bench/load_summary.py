#!/usr/bin/env python3
"""Summarizes the Envoy load benchmark: medians per variant, ratios and p99 added, beside the goals.

Usage: load_summary.py RESULTS.tsv LATENCY.tsv [VARIANT...]. RESULTS (at saturation) lines: variant,
round, requests, duration_us,
p50_us, p99_us, non2xx, socket_errors, stable_delta, canary_delta (counted by the upstream Envoy),
proxy_cpu_ns (what the proxy's threads ran during the run). LATENCY (at a fixed rate) lines: the
first eight of those. Variants beyond no-wasm, noop, floor and sluice are other builds of sluice, each
printed beside sluice. Prints figures and goals side by side; it never fails on a goal (the machine
is noisy).
"""
import statistics
import sys

LABELS = {
    "no-wasm": "no wasm filter",
    "noop": "no-op Rust filter",
    "floor": "floor filter",
    "sluice": "sluice",
}
# (numerator, denominator, goal or None, what it shows)
RATIOS = [
    ("sluice", "noop", 0.95, "goal 1"),
    ("sluice", "no-wasm", 0.85, ""),
    ("floor", "noop", None, "what any cohort router costs"),
    ("sluice", "floor", None, "the part that is sluice's own"),
]
P99_ADDED_GOAL_US = 20


def microseconds(us):
    return f"{us:.0f} us"


def read(path):
    """variant -> round -> figures of the run."""
    runs = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            variant, round_, numbers = fields[0], int(fields[1]), [float(x) for x in fields[2:]]
            requests, duration_us, p50, p99, non2xx, socket_errors = numbers[:6]
            run = {
                "rps": requests / (duration_us / 1e6),
                "p50": p50,
                "p99": p99,
                "errors": non2xx + socket_errors,
            }
            if len(numbers) == 9:
                stable, canary, cpu_ns = numbers[6:]
                run.update(stable=stable, canary=canary, cpu_us=cpu_ns / 1000 / requests)
            runs.setdefault(variant, {})[round_] = run
    return runs


runs, latency = read(sys.argv[1]), read(sys.argv[2])
variants = sys.argv[3:] or list(runs)
extras = [v for v in variants if v not in LABELS]

median = {}
print(f"{'variant':<20} {'rps (median)':>12} {'p50':>8} {'p99':>8} {'CPU/req':>8}  rps per round")
for key in variants:
    rows = list(runs.get(key, {}).values())
    label = LABELS.get(key, key)
    if not rows:
        print(f"{label:<20} {'no runs':>12}")
        continue
    median[key] = statistics.median(r["rps"] for r in rows)
    p50 = statistics.median(r["p50"] for r in rows)
    p99 = statistics.median(r["p99"] for r in rows)
    cpu = statistics.median(r["cpu_us"] for r in rows)
    per_round = " ".join(f"{r['rps']:.0f}" for r in rows)
    print(
        f"{label:<20} {median[key]:>12.0f} {microseconds(p50):>8} {microseconds(p99):>8} "
        f"{cpu:>5.2f} us  {per_round}"
    )


def paired(numerator, denominator, field, combine, source=runs):
    """The median over rounds of combine(numerator's figure, denominator's) in the same round."""
    rounds = set(source.get(numerator, {})) & set(source.get(denominator, {}))
    values = [
        combine(source[numerator][r][field], source[denominator][r][field]) for r in sorted(rounds)
    ]
    return statistics.median(values) if values else None


print()
# Each ratio is the median over rounds of the two variants' ratio in the same round: on a shared
# machine a round's conditions move both alike, where a ratio of medians mixes calm and busy rounds.
# The proxy is the bottleneck, so rps goes as 1 / its CPU per request, the steadier figure while other
# work shares the machine (which can starve wrk instead of the proxy).
print("ratios, each the median over rounds of that round's ratio (CPU: the inverse ratio of the")
print("proxies' CPU per request):")
print(f"  {'':<16} {'rps':>6} {'CPU':>6}")
for numerator, denominator, goal, note in RATIOS + [(e, "sluice", None, "A/B") for e in extras]:
    if numerator not in median or denominator not in median:
        continue
    ratio = paired(numerator, denominator, "rps", lambda a, b: a / b)
    by_cpu = paired(numerator, denominator, "cpu_us", lambda a, b: b / a)
    if goal is None:
        verdict = note
    else:
        verdict = f"goal >= {goal}: " + ("met" if ratio >= goal else f"missed by {goal - ratio:.3f}")
    name = f"{numerator}/{denominator}"
    print(f"  {name:<16} {ratio:>6.3f} {by_cpu:>6.3f}   {verdict}")

print()
print("at a fixed rate (latency phase):")
print(f"{'variant':<20} {'rps (median)':>12} {'p50':>8} {'p99':>8}  p99 per round")
for key in variants:
    rows = list(latency.get(key, {}).values())
    if not rows:
        continue
    rps = statistics.median(r["rps"] for r in rows)
    p50 = statistics.median(r["p50"] for r in rows)
    p99 = statistics.median(r["p99"] for r in rows)
    per_round = " ".join(f"{r['p99']:.0f}" for r in rows)
    label = LABELS.get(key, key)
    print(f"{label:<20} {rps:>12.0f} {microseconds(p50):>8} {microseconds(p99):>8}  {per_round}")

print()
print("added over the no-op (median over rounds of the same round's difference):")
for key in [v for v in variants if v not in ("no-wasm", "noop")]:
    cpu = paired(key, "noop", "cpu_us", lambda a, b: a - b)
    p50 = paired(key, "noop", "p50", lambda a, b: a - b, latency)
    p99 = paired(key, "noop", "p99", lambda a, b: a - b, latency)
    if cpu is None or p99 is None:
        continue
    verdict = ""
    if key == "sluice":
        goal = P99_ADDED_GOAL_US
        verdict = f"   goal <= {goal} us: " + (
            "met" if p99 <= goal else f"missed by {p99 - goal:.0f} us"
        )
    print(f"  {key}: CPU per request {cpu:+.2f} us; at a fixed rate p50 {p50:+.0f} us, "
          f"p99 {p99:+.0f} us{verdict}")

print()
for key in variants:
    rows = list(runs.get(key, {}).values())
    errors = sum(r["errors"] for r in rows)
    upstream = sum(r.get("stable", 0) + r.get("canary", 0) for r in rows)
    canary = sum(r.get("canary", 0) for r in rows)
    share = f"{100 * canary / upstream:.1f}% canary" if upstream else "no upstream counts"
    print(f"{LABELS.get(key, key)}: {share} at the upstream, {errors:.0f} errors (non-2xx or socket)")
