#!/usr/bin/env python3
"""Simulated users for `make demo`: real cities, steady traffic through the local Envoy.

Each of --users users gets a stable id `u-<city>-<n>` and a city drawn in proportion to population
from the config's city table (systematic sampling, seeded: the same users every run), and sends `x-user-id`,
`x-geo-region` and `x-geo-city` with every request. Requests go to a user picked at random, at about
--rate requests/s in all, from --threads threads with keep-alive connections, until SIGTERM or
SIGINT. Nothing is printed per request. With --summary FILE, a JSON summary is written on exit:
requests and 5xx per version ("stable", "canary", or "none" for Envoy's own replies) in all and per
city, plus connection errors.

    python3 scripts/demo-users.py --port 10000 --summary .run/demo/users.json &
    kill -TERM $!    # writes the summary, then exits 0

Standard library only.
"""

import argparse
import http.client
import json
import random
import signal
import sys
import threading
import time
from collections import Counter


def make_users(cities, count, seed):
    """[(user id, city key, region)], ids numbered per city.

    Systematic sampling in proportion to population, over the cities ordered by region then size: any
    region, and any region's cities under a cutoff (the demo's rings), gets its expected share of the
    users within one, whatever the seed (plain random draws put 4 or 15 users in a 2.75% ring).
    """
    keys = sorted(cities, key=lambda k: (cities[k]["region"], cities[k]["population"], k))
    total = sum(cities[k]["population"] for k in keys)
    step = total / count
    position = random.Random(seed).random() * step
    per_city = Counter()
    users = []
    cumulative = 0
    for key in keys:
        cumulative += cities[key]["population"]
        while position < cumulative and len(users) < count:
            users.append((f"u-{key}-{per_city[key]}", key, cities[key]["region"]))
            per_city[key] += 1
            position += step
    # Float rounding may leave the last position just past the total.
    while users and len(users) < count:
        key = keys[-1]
        users.append((f"u-{key}-{per_city[key]}", key, cities[key]["region"]))
        per_city[key] += 1
    return users


class Tally:
    """Responses per (version, city), shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = Counter()
        self.errors_5xx = Counter()
        self.connection_errors = 0

    def record(self, version, city, status):
        with self.lock:
            self.requests[(version, city)] += 1
            if status >= 500:
                self.errors_5xx[(version, city)] += 1

    def failed(self):
        with self.lock:
            self.connection_errors += 1

    def summary(self, users):
        with self.lock:
            by_version, by_city = {}, {}
            for (version, city), n in self.requests.items():
                errors = self.errors_5xx[(version, city)]
                for table, key in ((by_version, version), (by_city.setdefault(city, {}), version)):
                    entry = table.setdefault(key, {"requests": 0, "5xx": 0})
                    entry["requests"] += n
                    entry["5xx"] += errors
            return {
                "users": len(users),
                "cities_with_users": len({city for _, city, _ in users}),
                "requests": sum(self.requests.values()),
                "connection_errors": self.connection_errors,
                "by_version": by_version,
                "by_city": dict(sorted(by_city.items())),
            }


def send(conn, path, user):
    user_id, city, region = user
    conn.request(
        "GET",
        path,
        headers={"x-user-id": user_id, "x-geo-region": region, "x-geo-city": city},
    )
    response = conn.getresponse()
    response.read()
    return response.getheader("x-served-by") or "none", response.status


def worker(args, users, tally, stop, index):
    rng = random.Random(args.seed * 1000 + index)
    period = args.threads / args.rate
    # Spread the threads' first requests over one period.
    next_at = time.monotonic() + period * index / args.threads
    conn = None
    while not stop.is_set():
        now = time.monotonic()
        if next_at > now:
            stop.wait(next_at - now)
            continue
        # Fell far behind (a stalled upstream): do not burst to catch up.
        next_at = max(next_at + period, now - 1.0)
        user = users[rng.randrange(len(users))]
        try:
            if conn is None:
                conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
            version, status = send(conn, args.path, user)
            tally.record(version, user[1], status)
        except (OSError, http.client.HTTPException):
            tally.failed()
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description="simulated users for the sluice demo")
    parser.add_argument("--port", type=int, default=10000, help="Envoy listener port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", default="demo/sluice-config.json", help="city table")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s, all users together")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--path", default="/")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--summary", help="write a JSON summary here on exit")
    parser.add_argument(
        "--list-users", action="store_true", help="print the users as JSON lines and exit"
    )
    args = parser.parse_args()
    if args.users < 1 or args.rate <= 0 or args.threads < 1:
        sys.exit("demo-users: --users and --threads must be >= 1, --rate > 0")

    with open(args.config, encoding="utf-8") as f:
        cities = json.load(f)["cities"]
    users = make_users(cities, args.users, args.seed)
    if args.list_users:
        for user_id, city, region in users:
            print(json.dumps({"user": user_id, "city": city, "region": region}))
        return
    tally = Tally()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threads = [
        threading.Thread(target=worker, args=(args, users, tally, stop, i), daemon=True)
        for i in range(args.threads)
    ]
    for t in threads:
        t.start()
    print(
        f"demo-users: {len(users)} users in {len({u[1] for u in users})} cities, "
        f"{args.rate:g} requests/s to {args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    while not stop.is_set():
        stop.wait(1.0)
    for t in threads:
        t.join(timeout=args.timeout + 1)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump(tally.summary(users), f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
