#!/usr/bin/env python3
"""Prints the medians of the last criterion run as a Markdown table.

Usage: python3 benches/criterion_table.py [target/criterion]

Reads every <group>/<function>/<parameter>/new/{estimates,benchmark}.json
that criterion wrote and prints one row per benchmark: the id, the median
time per iteration and, where the bench declared one, the median throughput.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def human_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


rows = []
for estimates in sorted(root.glob("**/new/estimates.json")):
    meta = json.loads((estimates.parent / "benchmark.json").read_text())
    median_ns = json.loads(estimates.read_text())["median"]["point_estimate"]
    throughput = meta.get("throughput") or {}
    elements = throughput.get("Elements")
    rate = f"{elements / median_ns * 1e3:.1f} M/s" if elements else ""
    rows.append((meta["full_id"], human_time(median_ns), rate))

print("| benchmark | median | throughput |")
print("|---|---|---|")
for full_id, time, rate in rows:
    print(f"| `{full_id}` | {time} | {rate} |")
