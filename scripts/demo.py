#!/usr/bin/env python3
"""`make demo`: sluice's main job, start to finish, on loopback (see README).

Act 1: a healthy v2 walks the rings (small cities of the first region, that region, the next, everyone) on
real SLIs and is promoted. Act 2: v3 starts failing once real users are on it and is rolled back; the canary
keeps running and the alert is printed. One line per analysis round; a timeline picture at the end.

Usage: demo.py [--fast] [--mirror] [--out DIR]. --fast (used by `make test`) shortens the analysis interval.
--mirror (`make demo-mirror`): in act 2, v3 is broken from the start and its rollout begins with a mirror
stage; it is rolled back there, having answered copies of the users' requests and no user.
Exits 0 when the story happened as told, 1 otherwise. Ctrl-C stops every process it started.
`demo.py --play` (`make run`) starts the same stack on fixed ports with v2 rolling out, and leaves it
running for you to watch, steer and break."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_rounds import follow, plan, status  # noqa: E402
from demo_stack import ROOT, Alerts, Stack  # noqa: E402

CONFIG = os.path.join(ROOT, "demo/sluice-config.json")


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


class Act:
    """What an act needs of the run: the stack, where files go, the analysis timing, its state file."""

    def __init__(self, stack, out, interval, window, started, timeout, state):
        self.stack, self.out, self.interval, self.window = stack, out, interval, window
        self.started, self.timeout, self.state = started, timeout, state

    def rollout(self, src):
        return rollout_file(src, self.out, self.interval, self.window, self.stack.url("webhook"))

    def follow(self, rollout, name, on_round=None):
        """The rounds until the rollout is promoted or rolled back."""
        return follow(self.stack, name, self.state, plan(rollout, CONFIG), self.started,
                      lambda s: s.get("phase") in ("RolledBack", "Promoted"), on_round=on_round,
                      timeout=self.timeout)

    def break_canary(self, error_rate, told):
        """Makes v3 fail this share of its requests, says so, and returns when."""
        body = json.dumps({"error_rate": error_rate}).encode()
        req = urllib.request.Request(self.stack.url("canary") + "/__control", data=body, method="POST")
        urllib.request.urlopen(req, timeout=5).read()
        print(f"{time.time() - self.started:6.1f}s  >>> {told}", flush=True)
        return time.time()

    def canary_stats(self):
        """The canary's count of the requests it answered, users' apart from copies, or None if it is gone.
        /__stats is not itself counted, so asking does not add a user request."""
        if not self.stack.alive("canary"):
            return None
        try:
            with urllib.request.urlopen(self.stack.url("canary") + "/__stats", timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None


def act2_breach(act):
    """v3 starts failing once real users are on it (step 1) and is rolled back; the canary runs on."""
    print("\nAct 2: v2 is the stable version now; v3 starts failing once real users are on it.", flush=True)
    v3, v3_name = act.rollout("demo/rollout-v3.yaml")
    breach = {}

    def inject(step, phase):
        if not breach and step >= 1 and phase == "Progressing":
            breach["at"] = act.break_canary(0.3, f"v3 starts failing 30% of its requests (step {step})")

    act.stack.controller(v3, act.state)
    s2, rounds2 = act.follow(v3, v3_name, on_round=inject)
    # Timed by the controller's own log: the rounds after the breach, the rollback's included.
    breach_at = breach.get("at", time.time())
    after = [r for r in rounds2 if r["at_unix"] >= breach_at]
    rounds_after = len(after)
    rolled_back_after = (after[-1]["at_unix"] if after else time.time()) - breach_at
    canary_alive = act.stack.alive("canary")
    try:
        urllib.request.urlopen(act.stack.url("canary") + "/", timeout=2)
    except urllib.error.HTTPError:
        pass  # it answers (a 503 is an answer): v3 runs on for inspection
    except OSError:
        canary_alive = False
    summary = {"phase": s2["phase"], "rounds": rounds2, "breach_to_rollback_s": rolled_back_after,
               "breach_to_rollback_intervals": rolled_back_after / act.interval,
               "breach_to_rollback_rounds": rounds_after,
               "canary_alive": canary_alive, "history": s2.get("history", [])}
    closing = (f"v3 rolled back {rolled_back_after:.1f}s ({rounds_after} analysis rounds) after it started "
               f"failing; the v3 process is {'still running' if canary_alive else 'GONE'}.")
    mark = f"{breach['at']:.1f}=v3 starts failing" if breach else None
    return v3, v3_name, s2, summary, mark, closing, s2["phase"] == "RolledBack" and canary_alive


def act2_mirror(act):
    """v3 is broken from the start; the mirror stage copies users' requests to it before any user reaches
    it, judges the copies, and rolls it back at step 0: v3 answers copies only, never a user."""
    print("\nAct 2 (mirror): v2 is the stable version now; v3 is broken from the start. Before any user "
          "reaches it, a mirror stage copies 30% of the users' requests to it and drops its answers.", flush=True)
    v3, v3_name = act.rollout("demo/rollout-v3-mirror.yaml")
    broken_at = act.break_canary(0.3, "v3 fails 30% of its requests from the start, before its rollout begins")
    # The status history keeps whole seconds: a second apart, the picture shows the break before the start.
    time.sleep(1)
    act.stack.controller(v3, act.state)
    s2, rounds2 = act.follow(v3, v3_name)
    stats = act.canary_stats()
    rollback = next((r for r in rounds2 if r["action"] == "rollback"), None)
    # From the round that put the mirror stage in force (the first) to the rollback's.
    begun = rounds2[0]["at_unix"] if rounds2 else broken_at
    seconds = (rollback["at_unix"] if rollback else time.time()) - begun
    until = rollback["at_unix"] if rollback else float("inf")
    analysis_rounds = len([r for r in rounds2 if r["action"] != "start" and r["at_unix"] <= until])
    users = sum((stats or {}).get("user", {}).values())
    copies = sum((stats or {}).get("mirror", {}).values())
    mirror = {"rolled_back_at_step": rollback["step"] if rollback else None, "canary_user_requests": users,
              "canary_copies": copies, "mirror_to_rollback_s": seconds, "mirror_to_rollback_rounds": analysis_rounds}
    summary = {"phase": s2["phase"], "rounds": rounds2, "mirror": mirror, "canary_alive": stats is not None,
               "history": s2.get("history", [])}
    closing = (f"v3 rolled back at step {mirror['rolled_back_at_step']} (the mirror stage), {seconds:.1f}s "
               f"({analysis_rounds} analysis rounds) after the stage began: it answered {copies} copies (answers "
               f"dropped) and {users} user requests; the v3 process is "
               f"{'still running' if stats is not None else 'GONE'}.")
    ok = (s2["phase"] == "RolledBack" and mirror["rolled_back_at_step"] == 0 and users == 0 and copies > 0
          and stats is not None)
    return v3, v3_name, s2, summary, f"{broken_at:.1f}=v3 broken from the start", closing, ok



def main():
    # A SIGTERM (a CI timeout, `kill`) cleans up like Ctrl-C: every process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="short analysis interval (for tests)")
    ap.add_argument("--out", default=None, help="logs, state and pictures (.run/demo, .run/play)")
    ap.add_argument("--play", action="store_true", help="leave the stack running on fixed ports (make run)")
    ap.add_argument("--mirror", action="store_true",
                    help="act 2: v3 is broken from the start and caught in a mirror stage (make demo-mirror)")
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
        s1, rounds1 = follow(stack, v2_name, state1, plan(v2, CONFIG), started, lambda s: s.get("phase") == "Promoted",
                             timeout=act_timeout)
        summary["act1"] = {"phase": s1["phase"], "rounds": rounds1, "seconds": time.time() - started,
                           "history": s1.get("history", [])}

        stack.stop_controller()
        stack.write_config(next_config(state1, v2_name, out))
        stack.upstreams("v2", "v3")
        state2 = os.path.join(out, "state-act2.json")
        act = Act(stack, out, interval, window, started, act_timeout, state2)
        v3, v3_name, s2, summary["act2"], mark, closing, act2_ok = (act2_mirror if args.mirror else act2_breach)(act)
        # Let the picture show users leaving v3 (the rate window needs a moment).
        time.sleep(3 if args.fast else 15)
        summary["alerts"] = Alerts.received
        print("\n" + closing, flush=True)

        pictures = []
        now = f"{time.time():.0f}"
        marks = {v3_name: ["--mark", mark] if mark else []}
        for name, state, rollout in ((v2_name, state1, v2), (v3_name, state2, v3)):
            stem = os.path.join(out, f"timeline-{name}")
            subprocess.run([os.path.join(ROOT, "target/debug/sluice"), "timeline", name,
                            "--prometheus", stack.url("prometheus"), "--state-file", state, "--rollout", rollout,
                            "--cities", CONFIG, "--to", now, *marks.get(name, []), "--out", stem], check=True)
            pictures += [stem + ".svg", stem + ".png"]
        summary["pictures"] = pictures
        print("\ntimeline pictures:\n  " + "\n  ".join(pictures), flush=True)
        ok = s1["phase"] == "Promoted" and act2_ok
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
            s, _ = follow(stack, name, state, plan(rollout, CONFIG), started,
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
