"""The charts of the benchmarks page, drawn from the JSON the scripts write.

The data are the committed results in ``benchmarks/results/`` (one file per
script, written with ``--json``; see ``table.py``), never the markdown tables:

* ``benchmarks.png``: fastpool's time over the fastest peer's, per case, at every
  thread count measured (``basic``, ``order``, ``weighted``, ``geometry``);
* ``roofline.png``: fastpool's time over a memory copy's, per case (the same and
  ``grad``);
* ``thread_scaling.png``: fastpool's speed-up over one thread against the thread
  count, per case, with the ideal (``thread_scaling.json``).

Each chart names the machine its numbers come from (the JSON's
``environment``).  Only NumPy and fastpool's 5x7 font: ``docs/gallery.py`` draws
these at every Sphinx build; by hand::

    python benchmarks/charts.py [OUT_DIR [RESULTS_DIR]]   # default: docs/_gallery, benchmarks/results
"""

import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import table  # noqa: E402
from fastpool import _cli  # noqa: E402
from fastpool._cli import write_png  # noqa: E402

RESULTS = table.RESULTS
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "docs", "_gallery")

# The scripts' results in the order of the docs page, and their section titles
SECTIONS = {"basic": "Max and mean", "order": "Order statistics",
            "weighted": "Weighted and random family",
            "geometry": "Adaptive, global and fractional pooling and pyramids",
            "grad": "Gradients"}
# The gradients' table compares with PyTorch's backward pass and its forward and
# backward (two columns, not a fastest peer): they are in the roofline chart only.
KINDS = {"peer": ("ratio_fastpool_fastest_peer", ["basic", "order", "weighted", "geometry"]),
         "roofline": ("ratio_fastpool_roofline", list(SECTIONS))}

BACKGROUND = 250
INK = (20, 20, 20)
TITLE_INK = (30, 60, 140)
GREY = (90, 90, 90)
GAP = 8


def draw_text(canvas, text, y, x, scale=1, colour=INK, max_width=None):
    """``fastpool demo``'s 5x7 font, in ink by default."""
    _cli.draw_text(canvas, text, y, x, scale, colour, max_width)


def load_results(results=RESULTS, names=None):
    """``{name: data}`` for the JSON files of ``names`` (default: the sections
    and ``thread_scaling``) present in the folder ``results``."""
    found = {}
    for name in names or [*SECTIONS, "thread_scaling"]:
        path = os.path.join(results, name + ".json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                found[name] = json.load(f)
    return found


def _threads(t):
    return f"{t} thread" + ("s" if str(t) != "1" else "")


def _shade(colour, i, n):
    """The i-th of n bars: the first lightest, the last ``colour`` itself."""
    light = 0.5 * (1 - i / (n - 1)) if n > 1 else 0.0
    return tuple(int(v + (255 - v) * light) for v in colour)


def ratio_rows(results, kind="peer"):
    """``(section, case, peer, [thread counts], [ratios])`` per case of the
    results of ``kind`` ("peer": over the fastest peer, named as the fastest at
    the most threads; "roofline": over a memory copy, ``peer`` "")."""
    key, names = KINDS[kind]
    rows = []
    for name in names:
        data = results.get(name)
        if data is None:
            continue
        threads = table.thread_counts(data)
        for i, first in enumerate(data["results"][threads[0]]):
            per_t = [data["results"][t][i] for t in threads]
            peer = per_t[-1].get("fastest_peer") or "no peer" if kind == "peer" else ""
            rows.append((name, table.case_label(data, first["case"]), peer,
                         [int(t) for t in threads], [r.get(key) for r in per_t]))
    return rows


def _machines(results, names):
    return {n: table.machine(results[n]["environment"]) for n in names if n in results}


def ratio_chart(results, kind="peer", width=1000):
    """A bar chart of fastpool's time over the fastest peer's (``kind`` "peer")
    or over a memory copy's ("roofline"), log scale, one bar per thread count
    (light: fewest threads), one group per case, a section per script."""
    rows = ratio_rows(results, kind)
    if not rows:
        return placeholder(f"No benchmark results in {os.path.relpath(RESULTS)}", width)
    machines = _machines(results, [r[0] for r in rows])
    one_machine = len(set(machines.values())) == 1
    all_threads = sorted({t for r in rows for t in r[3]})
    same_threads = len({tuple(r[3]) for r in rows}) == 1

    def name(case, peer):
        return f"{case} vs {peer}" if peer else case

    label_w = 6 * max(len(name(case, peer)) for _, case, peer, _, _ in rows) + 2 * GAP
    plot_w = width - label_w - 3 * GAP - 30
    # The axis: log10 from lo to hi (bars are clipped to it).
    if kind == "peer":
        (lo, hi), ticks = (0.01, 4.0), (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 4)
    else:
        (lo, hi), ticks = (0.25, 16.0), (0.25, 0.5, 1, 2, 4, 8, 16)
    bar_h = 6
    row_h = max(17, 5 + bar_h * max(len(r[3]) for r in rows))
    sections = []
    for row in rows:
        if not sections or sections[-1][0] != row[0]:
            sections.append((row[0], []))
        sections[-1][1].append(row)
    head_h = 52
    height = head_h + sum(14 + len(r) * row_h for _, r in sections) + 30
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)

    def xpos(ratio):
        t = (np.log10(ratio) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
        return label_w + int(round(np.clip(t, 0, 1) * plot_w))

    y = head_h
    for section, section_rows in sections:
        data = results[section]
        title = f"{SECTIONS[section]} ({data.get('benchmark', section)}.py)"
        if not same_threads:
            title += ", " + ", ".join(map(str, section_rows[0][3])) + " threads"
        if not one_machine:
            title += ": " + machines[section]
        draw_text(canvas, title[:160], y + 3, GAP, 1, TITLE_INK)
        y += 14
        for _, case, peer, threads, ratios in section_rows:
            text = name(case, peer)
            draw_text(canvas, text, y + 4, label_w - GAP - 6 * len(text), 1)
            for i, ratio in enumerate(ratios):
                if ratio is None or not ratio > 0:
                    continue
                x0, x1 = sorted((xpos(1.0), xpos(ratio)))
                colour = (40, 140, 70) if ratio <= 1 else (200, 60, 50)
                dy = 2 + i * bar_h
                canvas[y + dy:y + dy + bar_h - 1, x0:max(x1, x0 + 1)] = _shade(colour, i, len(ratios))
            known = [r for r in ratios if r is not None and r > 0]
            value = " / ".join("n/a" if r is None else f"{r:.2f}" for r in ratios)
            if not known:
                x = xpos(1.0) + 4
            elif max(known) > 1:
                x = xpos(max(known)) + 4
                if x + 6 * len(value) > width - 2:  # a clipped bar: left of the 1 line
                    x = xpos(1.0) - 4 - 6 * len(value)
            else:
                x = xpos(min(known)) - 4 - 6 * len(value)
                if x < label_w:  # it would run into the labels: right of the 1 line
                    x = xpos(1.0) + 4
            draw_text(canvas, value, y + 5, x, 1, GREY)
            y += row_h
    for tick in ticks:
        x = xpos(tick)
        canvas[head_h:y, x] = (0, 0, 0) if tick == 1 else (215, 215, 215)
        draw_text(canvas, f"{tick:g}", y + 6, x - 3 * len(f"{tick:g}"), 1)
    if kind == "peer":
        draw_text(canvas, "fastpool time / fastest peer's, log scale: left of 1 fastpool "
                  "is faster", GAP, GAP, 2, TITLE_INK)
        note = f"peer: the fastest at {_threads(all_threads[-1])}"
    else:
        draw_text(canvas, "fastpool time / a memory copy's (roofline), log scale",
                  GAP, GAP, 2, TITLE_INK)
        note = "1: as fast as copying input and output once"
    if len(all_threads) == 2 and same_threads:
        bars = f"light bar: {_threads(all_threads[0])}, dark bar: {_threads(all_threads[1])}"
    else:
        bars = "bars light to dark: " + ", ".join(map(str, all_threads)) + " threads"
    draw_text(canvas, f"{bars}; numbers: " + " / ".join(_threads(t) for t in all_threads)
              + f"; {note}", 28, GAP, 1)
    where = ("measured on " + next(iter(machines.values())) if one_machine
             else "measured on the machine named in each section")
    draw_text(canvas, f"from benchmarks/results/*.json; {where}", 39, GAP, 1, GREY)
    return canvas


def placeholder(text, width=1000):
    """A small picture that says why there is no chart."""
    canvas = np.full((40, width, 3), BACKGROUND, np.uint8)
    draw_text(canvas, text, 16, GAP, 1, (200, 60, 50))
    return canvas


# --------------------------------------------------------------------------- thread scaling

BLUE = (30, 90, 180)
ORANGE = (230, 120, 30)
RED = (200, 40, 40)


def _line(canvas, p0, p1, colour, thick=1, dash=0):
    """A straight line from ``p0`` to ``p1`` (``(x, y)`` pixels), clipped."""
    n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    xs = np.rint(np.linspace(p0[0], p1[0], n)).astype(int)
    ys = np.rint(np.linspace(p0[1], p1[1], n)).astype(int)
    if dash:
        keep = (np.arange(n) // dash) % 2 == 0
        xs, ys = xs[keep], ys[keep]
    for dy in range(thick):
        for dx in range(thick):
            y, x = ys + dy - thick // 2, xs + dx - thick // 2
            ok = (y >= 0) & (y < canvas.shape[0]) & (x >= 0) & (x < canvas.shape[1])
            canvas[y[ok], x[ok]] = colour


def _dot(canvas, x, y, colour, r=2):
    canvas[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] = colour


def _speedups(by_threads):
    """Speed-ups over the 1-thread time of ``{threads: ms}`` (None without it)."""
    base = by_threads.get("1")
    if not base:
        return {}
    return {int(t): base / ms for t, ms in by_threads.items() if ms}


def _tick(v):
    return f"{v:g}" if v >= 1 else f"1/{round(1 / v)}"


def thread_scaling_chart(data, width=1000, columns=3):
    """Small multiples, one panel per case of ``thread_scaling.py --json``:
    fastpool's speed-up over one thread against the thread count (log-log),
    the ideal (speed-up = threads) and PyTorch's own speed-up where it has the
    operation.  ``data`` None: a placeholder saying how to measure it."""
    if data is None or not data.get("results"):
        return placeholder("No thread-scaling results: run python benchmarks/thread_scaling.py "
                           "--json benchmarks/results/thread_scaling.json", width)
    threads = sorted(int(t) for t in data["threads"])
    lo_t, hi_t = 1, max(threads[-1], 2)
    series = []
    for r in data["results"]:
        ours = {int(t): v for t, v in r["speedup"].items() if v}
        torch = _speedups(r.get("peers_ms", {}).get("torch", {}))
        series.append((r, ours, torch if len(torch) > 1 else {}))
    values = [v for _, ours, torch in series for v in (*ours.values(), *torch.values())]
    lo_y = min(1.0, *values) / 1.3
    hi_y = max(float(hi_t), *values) * 1.3

    panel_w = (width - GAP) // columns - GAP
    plot_h, left, right, top = 130, 40, 26, 14
    panel_h = top + plot_h + 16 + 2 * 10 + GAP
    head_h = 63 if data.get("quick") else 52
    rows = math.ceil(len(series) / columns)
    canvas = np.full((head_h + rows * panel_h + GAP, width, 3), BACKGROUND, np.uint8)

    def ypos(v, y0):
        f = (math.log2(v) - math.log2(lo_y)) / (math.log2(hi_y) - math.log2(lo_y))
        return y0 + top + plot_h - int(round(f * plot_h))

    y_ticks = [2.0 ** k for k in range(math.ceil(math.log2(lo_y)), math.floor(math.log2(hi_y)) + 1)]
    y_ticks = y_ticks[::max(1, math.ceil(len(y_ticks) / 6))]
    for k, (r, ours, torch) in enumerate(series):
        x0 = GAP + (k % columns) * (panel_w + GAP)
        y0 = head_h + (k // columns) * panel_h
        px0, px1 = x0 + left, x0 + panel_w - right

        def xpos(t):
            return px0 + int(round((math.log2(t) - math.log2(lo_t))
                                   / (math.log2(hi_t) - math.log2(lo_t)) * (px1 - px0)))

        draw_text(canvas, r["case"], y0, x0, 1, TITLE_INK, max_width=panel_w)
        bottom = y0 + top + plot_h
        for v in y_ticks:
            y = ypos(v, y0)
            canvas[y, px0:px1 + 1] = (225, 225, 225)
            draw_text(canvas, _tick(v), y - 3, px0 - 4 - 6 * len(_tick(v)), 1, GREY)
        for t in threads:
            canvas[y0 + top:bottom + 1, xpos(t)] = (225, 225, 225)
            draw_text(canvas, str(t), bottom + 4, xpos(t) - 3 * len(str(t)), 1, GREY)
        canvas[y0 + top:bottom + 1, px0] = (120, 120, 120)
        canvas[bottom, px0:px1 + 1] = (120, 120, 120)
        _line(canvas, (xpos(lo_t), ypos(lo_t, y0)), (xpos(hi_t), ypos(hi_t, y0)), (150, 150, 150), dash=4)
        for speedups, colour, thick in ((torch, ORANGE, 1), (ours, BLUE, 2)):
            points = [(xpos(t), ypos(speedups[t], y0)) for t in sorted(speedups)]
            for a, b in zip(points, points[1:]):
                _line(canvas, a, b, colour, thick)
        for t in sorted(ours):
            x, y = xpos(t), ypos(ours[t], y0)
            busy = (r.get("other_cpu_load", {}).get(str(t)) or 0) > 0.05
            _dot(canvas, x, y, RED if busy else BLUE)
            if t == 1:
                continue  # 1.00x by definition
            label = f"{ours[t]:.2f}x"  # below right of the point, clear of a rising line
            lx = x + 5 if x + 5 + 6 * len(label) <= x0 + panel_w else x - 5 - 6 * len(label)
            draw_text(canvas, label, y + 4, lx, 1, INK)
        ms = " / ".join(f"{r['fastpool_ms'][str(t)]:.3g}" for t in threads if str(t) in r["fastpool_ms"])
        draw_text(canvas, f"fastpool ms: {ms}", bottom + 14, x0, 1, INK, max_width=panel_w)
        peers = []
        for p, by_t in r.get("peers_ms", {}).items():
            times = " / ".join(f"{by_t[str(t)]:.3g}" for t in threads if str(t) in by_t)
            peers.append(f"{p} {times}" + (" (1 thread)" if list(by_t) == ["1"] and len(threads) > 1 else ""))
        draw_text(canvas, "; ".join(peers) or "no peer", bottom + 24, x0, 1, GREY, max_width=panel_w)
    draw_text(canvas, "Thread scaling: fastpool's speed-up over 1 thread, log-log", GAP, GAP, 2, TITLE_INK)
    draw_text(canvas, "blue: fastpool (red dot: other processes used >5% of the CPUs); orange: PyTorch, "
              "over its own 1-thread time; dashed: ideal; ms at " + ", ".join(map(str, threads)) + " threads",
              28, GAP, 1)
    draw_text(canvas, f"from benchmarks/results/thread_scaling.json; measured on "
              f"{table.machine(data['environment'])}", 39, GAP, 1, GREY)
    if data.get("quick"):
        draw_text(canvas, "QUICK RUN (--quick, small arrays): a smoke test, not a measurement",
                  50, GAP, 1, RED)
    return canvas


def pictures(results=RESULTS):
    """``{file name: a function drawing it}`` for the benchmarks page."""
    found = load_results(results)
    return {"benchmarks.png": lambda: ratio_chart(found, "peer"),
            "roofline.png": lambda: ratio_chart(found, "roofline"),
            "thread_scaling.png": lambda: thread_scaling_chart(found.get("thread_scaling"))}


def main(out_dir=DEFAULT_OUT, results=RESULTS):
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, draw in pictures(results).items():
        paths.append(os.path.join(out_dir, name))
        write_png(paths[-1], draw())
    return paths


if __name__ == "__main__":
    print("\n".join(main(*sys.argv[1:3])))
