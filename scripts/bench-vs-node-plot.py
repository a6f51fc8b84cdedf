#!/usr/bin/env python3
"""Draws `scripts/bench-vs-node.sh`'s results as one SVG: a panel per figure, the Rust hub
beside the Node baseline, bars at the median and a whisker from the lowest to the highest run.

usage: bench-vs-node-plot.py RESULTS.tsv OUT.svg
"""
import statistics
import sys
from html import escape

# (part, column index after the four key columns, title, unit, higher is better)
PANELS = [
    ("autosave", 0, "Autosave throughput", "saves/s", True),
    ("autosave", 2, "Autosave p99", "ms", False),
    ("autosave", 3, "Server CPU per save", "µs", False),
    ("signal", 2, "CPU per relayed signal", "µs", False),
    ("heartbeat", 0, "CPU per candidate heartbeat", "µs", False),
    ("idle", 0, "RSS per idle socket", "KB", False),
    ("idle", 1, "CPU per idle socket's heartbeat", "µs", False),
]
COLOURS = {"hub": "#b5472a", "node": "#4a6f8a"}
NAMES = {"hub": "Rust hub", "node": "Node baseline"}
W, H, PAD = 300, 220, 40


def panel(rows, part, col, title, unit, x0, y0):
    sel = [r for r in rows if r[0] == part]
    params = sorted({int(r[2]) for r in sel})
    groups = []
    for p in params:
        for side in ("hub", "node"):
            vals = sorted(float(r[4 + col]) for r in sel if r[1] == side and int(r[2]) == p)
            if vals:
                groups.append((p, side, statistics.median(vals), vals[0], vals[-1]))
    out = [f'<g transform="translate({x0},{y0})">',
           f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    if not groups:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">not run</text></g>')
        return out
    top = max(g[4] for g in groups) * 1.15 or 1
    plot_h, base = H - 70, H - 40
    bw = (W - 2 * PAD) / (len(groups) + len(params) - 1)
    x = PAD
    last = None
    starts = {}
    for p, side, med, lo, hi in groups:
        if last is not None and p != last:
            x += bw
        last = p
        starts.setdefault(p, []).append(x)
        h = med / top * plot_h
        out.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bw * 0.9:.1f}" height="{h:.1f}" '
                   f'fill="{COLOURS[side]}"><title>{NAMES[side]}, {p}: median {med:g} {unit} '
                   f'(runs {lo:g}–{hi:g})</title></rect>')
        cx = x + bw * 0.45
        out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{base - hi / top * plot_h:.1f}" '
                   f'y2="{base - lo / top * plot_h:.1f}" stroke="#222"/>')
        shown = f"{med:,.0f}".replace(",", " ") if med >= 1000 else f"{med:.3g}"
        out.append(f'<text x="{cx:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                   f'font-size="10">{shown}</text>')
        x += bw
    out.append(f'<line x1="{PAD - 5}" x2="{W - PAD + 5}" y1="{base}" y2="{base}" stroke="#222"/>')
    label = {"autosave": "connections", "signal": "round trips", "heartbeat": "candidates",
             "idle": "sockets"}[part]
    for p, xs in starts.items():
        mid = (xs[0] + xs[-1] + bw * 0.9) / 2
        out.append(f'<text x="{mid:.1f}" y="{base + 14}" text-anchor="middle" font-size="11">'
                   f'{p} {label}</text>')
    out.append(f'<text x="{W / 2}" y="{base + 30}" text-anchor="middle" font-size="11" '
               f'fill="#555">{escape(unit)}</text>')
    out.append("</g>")
    return out


def main():
    rows = [line.split("\t") for line in open(sys.argv[1]).read().split("\n") if line]
    cols = 4
    height = H * ((len(PANELS) + cols - 1) // cols) + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * cols}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>']
    for i, (part, col, title, unit, _) in enumerate(PANELS):
        svg += panel(rows, part, col, title, unit, (i % cols) * W, (i // cols) * H)
    y = height - 16
    for i, side in enumerate(("hub", "node")):
        svg.append(f'<rect x="{20 + i * 150}" y="{y - 10}" width="12" height="12" fill="{COLOURS[side]}"/>')
        svg.append(f'<text x="{38 + i * 150}" y="{y}">{NAMES[side]}</text>')
    svg.append(f'<text x="{W * cols - 10}" y="{y}" text-anchor="end" font-size="10">'
               'bars: median; whiskers: lowest to highest run</text>')
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
