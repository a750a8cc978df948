#!/usr/bin/env python3
"""`make demo`: sluice's main job, start to finish, on loopback (see README).

Act 1: a healthy v2 walks the rings (small cities of the first region, that region, the next, everyone) on
real SLIs and is promoted. Act 2: v3 starts failing once real users are on it and is rolled back; the canary
keeps running and the alert is printed. One line per analysis round; a timeline picture at the end.

Usage: demo.py [--fast] [--out DIR]. --fast (used by `make test`) shortens the analysis interval.
Exits 0 when the story happened as told, 1 otherwise. Ctrl-C stops every process it started.
`demo.py --play` (`make run`) starts the same stack on fixed ports with v2 rolling out, and leaves it
running for you to watch, steer and break."""
import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_stack import ROOT, Alerts, Stack  # noqa: E402

CONFIG = os.path.join(ROOT, "demo/sluice-config.json")
ROUND = re.compile(r"rollout=\"?([\w.-]+)\"? phase=(\w+) step=(\d+) generation=(\d+) action=(?:Some\()?(\w+)")


def rollout_file(src, out_dir, interval, window, webhook):
    """The demo's rollout with this run's interval, window and webhook: (its path, its name)."""
    with open(os.path.join(ROOT, src)) as f:
        text = f.read()
    text = re.sub(r"interval: \S+", f"interval: {interval}s", text)
    text = re.sub(r"window: \S+", f"window: {window}s", text)
    text = re.sub(r"webhooks: \[[^\]]*\]", f"webhooks: [{webhook}/alerts]", text)
    path = os.path.join(out_dir, os.path.basename(src))
    with open(path, "w") as f:
        f.write(text)
    return path, re.search(r"name: ([\w.-]+)", text).group(1)


def fresh(out):
    """The output directory without an earlier run's logs, state and summary: a fresh story every run."""
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        if old.endswith(".log") or (old.startswith("state") and old.endswith(".json")) or old == "demo-summary.json":
            os.remove(os.path.join(out, old))


def plan(rollout):
    """Per step: (regions, cutoff, percent, cities exposed, users exposed), from `sluice plan`."""
    out = subprocess.run([os.path.join(ROOT, "target/debug/sluice"), "plan", "--cities", CONFIG, rollout],
                         capture_output=True, text=True, check=True).stdout
    steps = []
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 7 and cols[0].isdigit():
            steps.append({"percent": cols[1], "regions": cols[2], "cutoff": cols[3],
                          "cities": cols[4], "users": cols[6]})
    return steps


def status(state_file, name):
    try:
        with open(state_file) as f:
            return json.load(f)["rollouts"][name]
    except (OSError, ValueError, KeyError):
        return None


STABLE_QUERIES = {
    "success-rate": "100 * (1 - sum(increase(sluice_responses_5xx_total{{{sel}}}[{w}s])) "
                    "/ sum(increase(sluice_requests_total{{{sel}}}[{w}s])))",
    "latency-p99": "histogram_quantile(0.99, sum by (le) (rate(sluice_upstream_latency_ms_bucket{{{sel}}}[{w}s])))",
}


def prometheus_value(prometheus, query):
    url = prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            result = json.load(r)["data"]["result"]
        return float(result[0]["value"][1]) if result else None
    except (OSError, ValueError, KeyError, IndexError):
        return None


def checks_text(s, name, prometheus, window):
    """Canary vs stable success rate and p99 of the last analysis (stable asked of Prometheus when a
    check does not compare with it), the samples and the verdicts."""
    by_name = {c["name"]: c for c in (s or {}).get("lastAnalysis", [])}

    def value(check, fmt):
        c = by_name.get(check)
        if not c:
            return "-"
        stable = c.get("stableValue")
        if stable is None and check in STABLE_QUERIES:
            sel = f'sluice_rollout="{name}",sluice_cohort="stable"'
            stable = prometheus_value(prometheus, STABLE_QUERIES[check].format(sel=sel, w=window))
        canary = "-" if c.get("value") is None else fmt.format(c["value"])
        stable = "-" if stable is None or stable != stable else fmt.format(stable)
        return f"{canary}/{stable}"

    samples = next((c.get("samples") for c in by_name.values() if c.get("samples") is not None), None)
    verdicts = ",".join(sorted({c["verdict"] for c in by_name.values()})) or "-"
    return (f"success {value('success-rate', '{:.1f}')}%  p99 {value('latency-p99', '{:.0f}')} ms  "
            f"n={samples if samples is not None else '-'}  {verdicts}")


def log_time(line):
    """Unix seconds of a controller log line (it starts with an RFC 3339 UTC timestamp)."""
    stamp = line.split(" ", 1)[0].rstrip("Z")
    try:
        whole, _, fraction = stamp.partition(".")
        at = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        return at.timestamp() + float("0." + (fraction or "0"))
    except ValueError:
        return time.time()


class Rounds:
    """The controller's `round` log lines, read as they are appended."""

    def __init__(self, path):
        self.path, self.offset, self.partial = path, 0, ""

    def new(self, name):
        with open(self.path, errors="replace") as f:
            f.seek(self.offset)
            text = self.partial + f.read()
            self.offset = f.tell()
        *lines, self.partial = text.split("\n")
        for line in lines:
            m = ROUND.search(line)
            if m and m.group(1) == name:
                yield log_time(line), m


def follow(stack, name, state_file, steps, started, until, on_round=None, timeout=600, quiet_when_done=False):
    """Prints a progress line per analysis round (from the controller's log) until `until(status)`."""
    log_path = os.path.join(stack.dir, "controller.log")
    reader, rounds = Rounds(log_path), []
    all_cities = (steps[-1].get("cities") if steps else None) or "?"
    deadline = time.time() + timeout
    while time.time() < deadline:
        for at_unix, m in reader.new(name):
            phase, step, action = m.group(2), int(m.group(3)), m.group(5)
            action = {"None": "wait"}.get(action, action.lower())
            if not rounds and step == 0 and action == "advance":
                action = "start"  # entering the first step
            if quiet_when_done and action == "wait" and phase in ("Promoted", "RolledBack"):
                continue
            s = status(state_file, name)
            st = steps[min(step, len(steps) - 1)] if steps else {}
            at = at_unix - started
            print(f"{at:6.1f}s  {name}  step {step}/{len(steps) - 1}  {st.get('regions', '?'):<16} "
                  f"<= {st.get('cutoff', '?'):>7}  {st.get('percent', '?'):>5}%  users ~{st.get('users', '?'):>8} "
                  f"cities {st.get('cities', '?'):>3}/{all_cities}  "
                  f"{checks_text(s, name, stack.url('prometheus'), stack.window)}  -> {action} ({phase})", flush=True)
            rounds.append({"at": at, "at_unix": at_unix, "step": step, "phase": phase, "action": action})
            if on_round:
                on_round(step, phase)
        s = status(state_file, name)
        if s and until(s):
            return s, rounds
        if not stack.alive("controller"):
            raise SystemExit("demo: the controller exited; see " + log_path)
        time.sleep(0.2)
    raise SystemExit(f"demo: {name} did not finish in {timeout}s; see {log_path}")


def next_config(state_file, name, out_dir):
    """The demo config with no rollouts and a generation above the one in force (never a stale one)."""
    with open(CONFIG) as f:
        doc = json.load(f)
    s = status(state_file, name) or {}
    doc["generation"] = int(s.get("configGeneration", 1)) + 1
    doc["rollouts"] = []
    path = os.path.join(out_dir, "sluice-config-act2.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def main():
    # A SIGTERM (a CI timeout, `kill`) cleans up like Ctrl-C: every process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="short analysis interval (for tests)")
    ap.add_argument("--out", default=None, help="logs, state and pictures (.run/demo, .run/play)")
    ap.add_argument("--play", action="store_true", help="leave the stack running on fixed ports (make run)")
    args = ap.parse_args()
    if args.play:
        return play(os.path.abspath(args.out or os.path.join(ROOT, ".run/play")))
    args.out = args.out or os.path.join(ROOT, ".run/demo")
    interval, window = (2, 4) if args.fast else (10, 20)
    out = os.path.abspath(args.out)
    fresh(out)
    stack = Stack(out, CONFIG)
    stack.window = window
    summary = {"interval_s": interval}
    try:
        stack.start("v1", "v2")
        users_rate = "60" if args.fast else "40"
        stack.users(["--config", CONFIG, "--port", str(stack.ports["listener"]), "--rate", users_rate,
                     "--summary", os.path.join(out, "users.json")])
        print(f"sluice demo: Envoy {stack.url('listener')}, Prometheus {stack.url('prometheus')}, "
              f"logs in {out}; analysis every {interval}s", flush=True)
        started = time.time()

        print("\nAct 1: v2 is healthy; it walks the rings, smallest cities first, and is promoted.", flush=True)
        v2, v2_name = rollout_file("demo/rollout-v2.yaml", out, interval, window, stack.url("webhook"))
        state1 = os.path.join(out, "state-act1.json")
        stack.controller(v2, state1)
        # Generous, yet a stuck act fails in minutes, not the 20 minutes `make test` may take.
        act_timeout = 40 * interval + 30
        s1, rounds1 = follow(stack, v2_name, state1, plan(v2), started, lambda s: s.get("phase") == "Promoted",
                             timeout=act_timeout)
        summary["act1"] = {"phase": s1["phase"], "rounds": rounds1, "seconds": time.time() - started,
                           "history": s1.get("history", [])}

        print("\nAct 2: v2 is the stable version now; v3 starts failing once real users are on it.", flush=True)
        stack.stop_controller()
        stack.write_config(next_config(state1, v2_name, out))
        stack.upstreams("v2", "v3")
        v3, v3_name = rollout_file("demo/rollout-v3.yaml", out, interval, window, stack.url("webhook"))
        state2 = os.path.join(out, "state-act2.json")
        act2 = time.time()
        breach = {}

        def inject(step, phase):
            if not breach and step >= 1 and phase == "Progressing":
                body = json.dumps({"error_rate": 0.3}).encode()
                req = urllib.request.Request(stack.url("canary") + "/__control", data=body, method="POST")
                urllib.request.urlopen(req, timeout=5).read()
                breach["at"] = time.time()
                print(f"{time.time() - started:6.1f}s  >>> v3 starts failing 30% of its requests (step {step})",
                      flush=True)

        stack.controller(v3, state2)
        s2, rounds2 = follow(stack, v3_name, state2, plan(v3), started,
                             lambda s: s.get("phase") in ("RolledBack", "Promoted"), on_round=inject,
                             timeout=act_timeout)
        # Timed by the controller's own log: the rounds after the breach, the rollback's included.
        breach_at = breach.get("at", time.time())
        after = [r for r in rounds2 if r["at_unix"] >= breach_at]
        rounds_after = len(after)
        rolled_back_after = (after[-1]["at_unix"] if after else time.time()) - breach_at
        canary_alive = stack.alive("canary")
        try:
            urllib.request.urlopen(stack.url("canary") + "/", timeout=2)
        except urllib.error.HTTPError:
            pass  # it answers (a 503 is an answer): v3 runs on for inspection
        except OSError:
            canary_alive = False
        summary["act2"] = {"phase": s2["phase"], "rounds": rounds2, "breach_to_rollback_s": rolled_back_after,
                           "breach_to_rollback_intervals": rolled_back_after / interval,
                           "breach_to_rollback_rounds": rounds_after,
                           "canary_alive": canary_alive, "history": s2.get("history", [])}
        # Let the picture show users leaving v3 (the rate window needs a moment).
        time.sleep(3 if args.fast else 15)
        summary["alerts"] = Alerts.received
        print(f"\nv3 rolled back {rolled_back_after:.1f}s ({rounds_after} analysis rounds) after it started "
              f"failing; the v3 process is {'still running' if canary_alive else 'GONE'}.", flush=True)

        pictures = []
        now = f"{time.time():.0f}"
        marks = {v3_name: ["--mark", f"{breach['at']:.1f}=v3 starts failing"] if breach else []}
        for name, state, rollout in ((v2_name, state1, v2), (v3_name, state2, v3)):
            stem = os.path.join(out, f"timeline-{name}")
            subprocess.run([os.path.join(ROOT, "target/debug/sluice"), "timeline", name,
                            "--prometheus", stack.url("prometheus"), "--state-file", state, "--rollout", rollout,
                            "--cities", CONFIG, "--to", now, *marks.get(name, []), "--out", stem], check=True)
            pictures += [stem + ".svg", stem + ".png"]
        summary["pictures"] = pictures
        print("\ntimeline pictures:\n  " + "\n  ".join(pictures), flush=True)
        ok = s1["phase"] == "Promoted" and s2["phase"] == "RolledBack" and canary_alive
        summary["ok"] = ok
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", flush=True)
        return 130
    finally:
        with open(os.path.join(out, "demo-summary.json"), "w") as f:
            json.dump(summary, f, indent=1, default=str)
        stack.stop()


PLAY_HELP = """
sluice is running: users -> Envoy {listener} (admin {admin}) -> stable {stable_name} {stable} | canary {canary_name}
{canary}; Prometheus {prometheus}; the controller rolls {canary_name} out ring by ring (logs, state in {out}).
{token}
  watch      target/debug/sluice status --state-file {state} --rollout {rollout} --watch
  steer      target/debug/sluice pause|resume|promote|abort {name} --state-file {state}
  break it   curl -s -XPOST {canary}/__control -d '{{"error_rate": 0.3}}'   (or '{{"delay_ms": 400}}')
  mend it    curl -s -XPOST {canary}/__control -d '{{"error_rate": 0, "delay_ms": 0}}'
  a tester   curl -s {listener}/ -H 'x-sluice-override: canary' -H "x-sluice-override-token: $(cat {token_file})"
  picture    target/debug/sluice timeline {name} --prometheus {prometheus} --state-file {state} --out {out}/timeline
Once it is promoted or rolled back, v3 rolls out the same way (v2 then stable). Ctrl-C stops everything.
"""


def play(out):
    """`make run`: the demo's stack on fixed ports, v2 then v3 rolling out, left running until Ctrl-C."""
    fresh(out)
    stack = Stack(out, CONFIG, fixed_ports=True)
    stack.window = 20
    stack.token_file = os.path.join(ROOT, ".run/override-token")
    try:
        stack.start("v1", "v2")
        token = stack.write_config(CONFIG)
        stack.users(["--config", CONFIG, "--port", str(stack.ports["listener"])])
        started = time.time()
        for act, (src, stable, canary) in enumerate((("demo/rollout-v2.yaml", "v1", "v2"),
                                                     ("demo/rollout-v3.yaml", "v2", "v3"))):
            rollout, name = rollout_file(src, out, 10, 20, stack.url("webhook"))
            state = os.path.join(out, f"state-{name}.json")
            if act:
                stack.stop_controller()
                token = stack.write_config(next_config(prev_state, prev_name, out))
                stack.upstreams(stable, canary)
            stack.controller(rollout, state)
            urls = {k: stack.url(k) for k in stack.ports}
            print(PLAY_HELP.format(out=out, state=state, rollout=rollout, name=name, stable_name=stable, canary_name=canary,
                                   token=token, token_file=stack.token_file,
                                   **urls), flush=True)
            s, _ = follow(stack, name, state, plan(rollout), started,
                          lambda s: s.get("phase") in ("Promoted", "RolledBack"), timeout=10**9, quiet_when_done=True)
            print(f"\n{name} is {s['phase']}.", flush=True)
            prev_state, prev_name = state, name
        print("That is the whole story; the stack keeps running. Ctrl-C stops everything.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
