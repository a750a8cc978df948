#!/usr/bin/env python3
"""Share of users and of cities a rollout stage exposes, for the demo's progress line.

Same definition as `sluice plan` (rollout::plan::exposure), assuming users live where people live:
  cities = eligible cities / all cities
  users  = population of eligible cities / total population * percent / 100
A city is eligible when its region is listed (ASCII case-insensitively; no regions = all) and,
with a cutoff, its population is <= max_city_population.

    python3 scripts/demo_exposure.py demo/sluice-config.json --regions eu-ie --max-city-population 50000 --percent 100
    {"cities": 0.0774, "users": 0.0376, "eligible_cities": 36, "all_cities": 465}
"""

import argparse
import json


def load_cities(path):
    """The `cities` table of a sluice config: {key: {"population": int, "region": str}}."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)["cities"]


def eligible(city, regions, max_city_population):
    wanted = {r.lower() for r in regions or []}
    if wanted and city["region"].lower() not in wanted:
        return False
    return max_city_population is None or city["population"] <= max_city_population


def exposure(cities, regions=None, max_city_population=None, percent=100.0):
    """(users share, cities share), each 0..1, of a stage over a city table."""
    if not cities:
        return 0.0, 0.0
    chosen = [c for c in cities.values() if eligible(c, regions, max_city_population)]
    total = sum(c["population"] for c in cities.values())
    people = sum(c["population"] for c in chosen)
    users = people / total * percent / 100.0 if total else 0.0
    return users, len(chosen) / len(cities)


def stage_exposure(cities, stage):
    """The same for a stage as the config or state file writes it (snake_case or camelCase keys)."""
    cutoff = stage.get("max_city_population", stage.get("maxCityPopulation"))
    return exposure(cities, stage.get("regions") or [], cutoff, stage.get("percent", 0.0))


def main():
    parser = argparse.ArgumentParser(description="share of users and cities a stage exposes")
    parser.add_argument("config", help="a sluice config with the city table")
    parser.add_argument("--regions", default="", help="comma-separated; empty = all")
    parser.add_argument("--max-city-population", type=int, default=None)
    parser.add_argument("--percent", type=float, default=100.0)
    args = parser.parse_args()
    cities = load_cities(args.config)
    regions = [r for r in args.regions.split(",") if r]
    users, city_share = exposure(cities, regions, args.max_city_population, args.percent)
    count = sum(1 for c in cities.values() if eligible(c, regions, args.max_city_population))
    print(
        json.dumps(
            {
                "cities": round(city_share, 4),
                "users": round(users, 4),
                "eligible_cities": count,
                "all_cities": len(cities),
            }
        )
    )


if __name__ == "__main__":
    main()
