"""The demo's view of a rollout while it runs: the steps `sluice plan` lists, the controller's state file,
and one progress line per analysis round read from the controller's log."""
import datetime
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

from demo_stack import ROOT

ROUND = re.compile(r"rollout=\"?([\w.-]+)\"? phase=(\w+) step=(\d+) generation=(\d+) action=(?:Some\()?(\w+)")


def plan(rollout, cities):
    """Per step: (regions, cutoff, percent, cities exposed, users exposed), from `sluice plan`; a mirror
    step has `mirror` (the share of requests copied) and exposes no user."""
    out = subprocess.run([os.path.join(ROOT, "target/debug/sluice"), "plan", "--cities", cities, rollout],
                         capture_output=True, text=True, check=True).stdout
    steps = []
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3 and cols[0].isdigit() and cols[1] == "mirror":
            steps.append({"mirror": cols[2], "percent": "0", "regions": "-", "cutoff": "-", "cities": "0",
                          "users": "0%"})
        elif len(cols) >= 7 and cols[0].isdigit():
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
    check does not compare with it), the mirror's mismatch if judged, the samples and the verdicts."""
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

    mismatch = by_name.get("mirror-mismatch", {}).get("value")
    mismatch = "" if mismatch is None else f"mismatch {mismatch:.0f}%  "
    samples = next((c.get("samples") for c in by_name.values() if c.get("samples") is not None), None)
    verdicts = ",".join(sorted({c["verdict"] for c in by_name.values()})) or "-"
    return (f"success {value('success-rate', '{:.1f}')}%  p99 {value('latency-p99', '{:.0f}')} ms  {mismatch}"
            f"n={samples if samples is not None else '-'}  {verdicts}")


def step_text(st, all_cities):
    """Whom a step exposes: regions, city cutoff, percent, users and cities; a mirror step, what it copies."""
    if st.get("mirror"):
        return f"{'mirror: ' + st['mirror'] + ' of requests copied':<37}users ~{'0%':>8} cities {'0':>3}/{all_cities}"
    return (f"{st.get('regions', '?'):<16} <= {st.get('cutoff', '?'):>7}  {st.get('percent', '?'):>5}%  "
            f"users ~{st.get('users', '?'):>8} cities {st.get('cities', '?'):>3}/{all_cities}")


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
            print(f"{at:6.1f}s  {name}  step {step}/{len(steps) - 1}  {step_text(st, all_cities)}  "
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
