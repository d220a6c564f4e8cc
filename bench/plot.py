#!/usr/bin/env python3
"""Draw how cost per row grows, from the growth groups of bench/results.csv.

Usage: bench/plot.py results.csv [growth.svg]

Prints a Markdown section (a table of nanoseconds per row at each scale and a
text bar chart) and, given a path, writes the same chart as an SVG file.
Only the standard library: the bench machine needs nothing more.
"""
import csv
import re
import sys
from collections import OrderedDict


def load(path):
    """{family: {measurement: {rows: ns_per_row}}} for the 'growth: ' groups."""
    data = OrderedDict()
    for r in csv.DictReader(open(path)):
        m = re.match(r'growth: ([^,]+),', r['grp'])
        if not m:
            continue
        rows = int(r['rows'])
        ns = float(r['median_ms']) * 1e6 / rows
        data.setdefault(m.group(1), OrderedDict()).setdefault(r['name'], {})[rows] = ns
    return data


def markdown(data):
    out = ['## How cost grows: nanoseconds per row at each table size', '']
    if not data:
        return '\n'.join(out + ['(no growth runs in this report)', ''])
    scales = sorted({n for fam in data.values() for m in fam.values() for n in m})
    head = ' | '.join(f'{n:,} rows' for n in scales)
    out.append(f'| benchmark | measurement | {head} | largest ÷ smallest |')
    out.append('|---|---|' + '---:|' * len(scales) + '---:|')
    for fam, ms in data.items():
        for name, by in ms.items():
            cells = ' | '.join(f'{by[n]:.0f}' if n in by else '' for n in scales)
            lo, hi = by.get(scales[0]), by.get(scales[-1])
            growth = f'{hi / lo:.2f}' if lo and hi else ''
            out.append(f'| {fam} | {name} | {cells} | {growth} |')
    out += ['', 'Flat cost per row shows as a ratio near 1.00 in the last column.', '']
    width = 40
    out.append('```')
    for fam, ms in data.items():
        top = max(ns for m in ms.values() for ns in m.values())   # bars to scale within a benchmark
        out.append(fam)
        for name, by in ms.items():
            for n in scales:
                if n in by:
                    bar = '#' * max(1, round(by[n] / top * width))
                    out.append(f'  {name[:38]:<38} {n:>11,} {bar} {by[n]:.0f} ns')
    out.append('```')
    out.append('')
    return '\n'.join(out)


def svg(data, path):
    rows = [(fam, name, n, ns) for fam, ms in data.items() for name, by in ms.items() for n, ns in sorted(by.items())]
    if not rows:
        return False
    top = {fam: max(r[3] for r in rows if r[0] == fam) for fam in data}
    bar_h, gap, left, width = 14, 4, 430, 300
    y = 30
    parts = []
    last = None
    for fam, name, n, ns in rows:
        if fam != last:
            y += 10
            parts.append(f'<text x="4" y="{y + 10}" font-weight="bold">{fam}</text>')
            y += bar_h + gap
            last = fam
        w = max(1, ns / top[fam] * width)
        label = f'{name[:48]} — {n:,}'
        parts.append(f'<text x="12" y="{y + 11}">{label.replace("&", "&amp;").replace("<", "&lt;")}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{"#4a7ab5" if n == rows[0][2] else "#e08a3c"}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 11}">{ns:.0f} ns</text>')
        y += bar_h + gap
    height = y + 10
    doc = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           '<text x="4" y="16" font-size="13">Cost per row (median, ns) at each table size; bars to scale within each benchmark</text>'] + parts + ['</svg>']
    with open(path, 'w') as f:
        f.write('\n'.join(doc) + '\n')
    return True


if __name__ == '__main__':
    data = load(sys.argv[1])
    text = markdown(data)
    if len(sys.argv) > 2 and svg(data, sys.argv[2]):
        text += f'\n![Cost per row at each table size]({sys.argv[2]})\n'
    print(text)
