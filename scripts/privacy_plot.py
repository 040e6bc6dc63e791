#!/usr/bin/env python3
"""Accuracy against epsilon on the shipped breast-cancer data: runs
`ringsum demo --dp-epsilon E --dp-delta 1e-5` for several data splits
(seeds) and epsilons, and writes the table (Markdown, on stdout) and the
plot (SVG) that docs/privacy.md shows. Standard library only.

    cargo build --release -p ringsum-cli
    python3 scripts/privacy_plot.py --binary target/release/ringsum \
        --out docs/privacy-accuracy.svg
"""

import argparse
import json
import math
import statistics
import subprocess
import sys

EPSILONS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]


def demo(binary, seed, epsilon, delta, rounds):
    args = [binary, "demo", "--json", "--seed", str(seed), "--rounds", str(rounds)]
    if epsilon is not None:
        args += ["--dp-epsilon", str(epsilon), "--dp-delta", str(delta)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def svg(points, noiseless, fedavg, path):
    """points: [(epsilon, mean, low, high)], accuracies in percent."""
    width, height = 640, 400
    left, right, top, bottom = 70, 20, 30, 60
    x_lo, x_hi = math.log2(EPSILONS[0]), math.log2(EPSILONS[-1])
    y_lo = math.floor(min(p[2] for p in points) / 5) * 5
    y_hi = 100.0

    def x(eps):
        return left + (math.log2(eps) - x_lo) / (x_hi - x_lo) * (width - left - right)

    def y(acc):
        return top + (y_hi - acc) / (y_hi - y_lo) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">'
        "Breast cancer, 8 clients, 10 rounds, delta = 1e-5</text>",
    ]
    for acc in range(int(y_lo), 101, 5):
        parts.append(
            f'<line x1="{left}" y1="{y(acc):.1f}" x2="{width - right}" y2="{y(acc):.1f}" '
            'stroke="#ddd"/>'
        )
        parts.append(f'<text x="{left - 8}" y="{y(acc) + 4:.1f}" text-anchor="end">{acc}%</text>')
    for eps in EPSILONS:
        parts.append(
            f'<text x="{x(eps):.1f}" y="{height - bottom + 18}" text-anchor="middle">{eps:g}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 20}" text-anchor="middle">'
        "epsilon (log scale)</text>"
    )
    parts.append(
        f'<text x="18" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {(top + height - bottom) / 2})">test accuracy</text>'
    )
    band = " ".join(f"{x(e):.1f},{y(hi):.1f}" for e, _, _, hi in points)
    band += " " + " ".join(f"{x(e):.1f},{y(lo):.1f}" for e, _, lo, _ in reversed(points))
    parts.append(f'<polygon points="{band}" fill="#1f77b4" fill-opacity="0.15"/>')
    line = " ".join(f"{x(e):.1f},{y(m):.1f}" for e, m, _, _ in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for e, m, _, _ in points:
        parts.append(f'<circle cx="{x(e):.1f}" cy="{y(m):.1f}" r="3.5" fill="#1f77b4"/>')
    for value, colour, label, dy in [
        (noiseless, "#2ca02c", "same training without noise", -6),
        (fedavg, "#d62728", "encrypted FedAvg, no DP", 14),
    ]:
        parts.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" '
            f'stroke="{colour}" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{width - right - 4}" y="{y(value) + dy:.1f}" text-anchor="end" '
            f'fill="{colour}">{label} ({value:.1f}%)</text>'
        )
    parts.append(
        f'<text x="{left + 8}" y="{height - bottom - 10}" fill="#1f77b4">'
        "DP FedSGD, encrypted: mean over splits, band min to max</text>"
    )
    parts.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/ringsum")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--out", default="docs/privacy-accuracy.svg")
    args = parser.parse_args()
    seeds = range(1, args.seeds + 1)
    points, noiseless, fedavg = [], [], []
    print("| epsilon | spent | encrypted DP (mean, min..max) | without noise | gap (mean, max) |")
    print("|---|---|---|---|---|")
    for eps in EPSILONS:
        runs = [demo(args.binary, s, eps, args.delta, args.rounds) for s in seeds]
        enc = [100 * r["final"]["accuracy_encrypted"] for r in runs]
        plain = [100 * r["final"]["accuracy_plaintext"] for r in runs]
        gaps = [p - e for e, p in zip(enc, plain, strict=True)]
        spent = max(r["epsilon"] for r in runs)
        noiseless += plain
        points.append((eps, statistics.mean(enc), min(enc), max(enc)))
        print(
            f"| {eps:g} | {spent:.3f} | {statistics.mean(enc):.2f} ({min(enc):.2f}..{max(enc):.2f})"
            f" | {statistics.mean(plain):.2f} | {statistics.mean(gaps):.2f}, {max(gaps):.2f} |"
        )
        sys.stdout.flush()
    for s in seeds:
        fedavg.append(
            100 * demo(args.binary, s, None, args.delta, args.rounds)["final"]["accuracy_encrypted"]
        )
    print(f"\nencrypted FedAvg without DP: {statistics.mean(fedavg):.2f}")
    svg(points, statistics.mean(noiseless), statistics.mean(fedavg), args.out)


if __name__ == "__main__":
    main()
