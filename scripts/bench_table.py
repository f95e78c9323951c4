#!/usr/bin/env python3
"""Prints BENCHMARKS.md's table of the layer from the last `cargo bench --bench layer` run.

Reads criterion's medians (target/criterion/<group>/<function>/new/estimates.json), so every
figure comes from one run; then checks the ratios issue 4 sets as targets.
"""

import json
import sys
from pathlib import Path

CRITERION = Path(__file__).resolve().parent.parent / "target" / "criterion"

LAYER = [
    "passthrough",
    "tower_http_bearer",
    "no_credential",
    "opaque_header",
    "opaque_suffix",
    "reject_unknown_token",
    "minimal_work",
    "jwt",
    "jwt_first_sight",
    "jwt_raw_decode",
    "opaque_1m",
    "minimal_work_1m",
]
SCALING = ["one_thread", "two_threads"]


def median_ns(group: str, function: str) -> float:
    estimates = CRITERION / group / function / "new" / "estimates.json"
    if not estimates.exists():
        sys.exit(f"no result for {group}/{function}: run `cargo bench --bench layer` first")
    return json.loads(estimates.read_text())["median"]["point_estimate"]


def shown(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main() -> None:
    t = {name: median_ns("layer", name) for name in LAYER}
    scaling = {name: median_ns("scaling", name) for name in SCALING}
    base = t["passthrough"]

    print("| function | median | minus passthrough |")
    print("| --- | ---: | ---: |")
    for name in LAYER:
        print(f"| `{name}` | {shown(t[name])} | {shown(t[name] - base)} |")
    # Each two_threads iteration serves one request on each thread.
    speedup = 2 * scaling["one_thread"] / scaling["two_threads"]
    print(f"| `scaling/one_thread` | {shown(scaling['one_thread'])} | |")
    print(f"| `scaling/two_threads` (a request on each) | {shown(scaling['two_threads'])} | |")
    print()

    targets = [
        (
            "opaque_header − passthrough ≤ 1.1 × minimal_work",
            (t["opaque_header"] - base) / t["minimal_work"],
            1.1,
        ),
        ("jwt − passthrough ≤ 0.25 × jwt_raw_decode", (t["jwt"] - base) / t["jwt_raw_decode"], 0.25),
        (
            "jwt_first_sight − passthrough ≤ 1.1 × jwt_raw_decode",
            (t["jwt_first_sight"] - base) / t["jwt_raw_decode"],
            1.1,
        ),
        ("opaque_1m ≤ 1.1 × minimal_work_1m", t["opaque_1m"] / t["minimal_work_1m"], 1.1),
    ]
    print("| target | ratio measured | limit | met |")
    print("| --- | ---: | ---: | --- |")
    for what, ratio, limit in targets:
        print(f"| {what} | {ratio:.2f} | {limit} | {'yes' if ratio <= limit else 'no'} |")
    ours, theirs = t["no_credential"] - base, t["tower_http_bearer"] - base
    met = ours <= theirs
    print(
        f"| no_credential − passthrough ≤ tower_http_bearer − passthrough "
        f"| {ours:.0f} ns vs {theirs:.0f} ns | | {'yes' if met else 'no'} |"
    )
    met = speedup >= 1.8
    print(f"| two threads ≥ 1.8 × one thread's throughput | {speedup:.2f} | 1.8 | {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
