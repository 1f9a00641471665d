"""Draw the pictures of the documentation's gallery and benchmarks pages.

Only NumPy and fastpool: the images are fastpool's built-in test images, the PNG
writer and the 5x7 bitmap font are those of ``fastpool demo``.  ``docs/conf.py``
runs :func:`main` at the start of every Sphinx build, so the pictures always show
the installed fastpool; by hand::

    python docs/gallery.py [OUT_DIR]        # default: docs/_gallery

Every picture is deterministic (fixed seeds).
"""

import os
import re
import sys
import time

import numpy as np

import fastpool
from fastpool import _testimages as ti
from fastpool import _cli as cli
from fastpool._cli import available_demo_methods, write_png

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "_gallery")

BACKGROUND = 250
INK = (20, 20, 20)
TITLE_INK = (30, 60, 140)
GAP = 8


# --------------------------------------------------------------------------- drawing

def draw_text(canvas, text, y, x, scale=1, colour=INK, max_width=None):
    """Draw ``text`` into the RGB ``canvas`` at ``(y, x)``, clipped, in ink."""
    cli.draw_text(canvas, text, y, x, scale, colour, max_width)


def rgb(image):
    """A gray or RGB uint8 image as RGB uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(np.nan_to_num(image.astype(np.float64))), 0, 255).astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def enlarge(image, side):
    """Nearest-neighbour upscaling of ``image`` to ``side`` pixels high (an integer
    factor; what does not fit is cropped, what is missing left blank)."""
    k = max(side // image.shape[0], 1)
    big = np.repeat(np.repeat(image, k, axis=0), k, axis=1)[:side, :side]
    out = np.full((side, side, 3), BACKGROUND, np.uint8)
    out[:big.shape[0], :big.shape[1]] = big
    return out


def grid(rows, side, title=None, scale=1, row_titles=None):
    """Compose labelled tiles: ``rows`` is a list of rows of ``(label, rgb tile)``
    or None (an empty cell); each tile is enlarged to ``side x side``.  ``scale``
    is the labels' font scale (the title's is one larger)."""
    label_h = 7 * scale + 6
    title_h = 7 * (scale + 1) + 10 if title else 0
    left = 0
    if row_titles:
        left = max(len(t) for t in row_titles) * 6 * scale + GAP
    columns = max(len(r) for r in rows)
    cell_w, cell_h = side + GAP, label_h + side + GAP
    canvas = np.full((GAP + title_h + len(rows) * cell_h, GAP + left + columns * cell_w, 3),
                     BACKGROUND, np.uint8)
    if title:
        draw_text(canvas, title, GAP, GAP, scale + 1, TITLE_INK)
    for r, row in enumerate(rows):
        y = GAP + title_h + r * cell_h
        if row_titles:
            draw_text(canvas, row_titles[r], y + label_h + side // 2 - 4 * scale, GAP, scale)
        for c, item in enumerate(row):
            if item is None:
                continue
            label, tile = item
            x = GAP + left + c * cell_w
            draw_text(canvas, label, y + 2, x, scale, max_width=side)
            canvas[y + label_h:y + label_h + side, x:x + side] = enlarge(tile, side)
    return canvas


def label_colours(labels):
    """A fixed colour per label value (golden-ratio hues), 0 black."""
    labels = np.asarray(labels).astype(np.int64)
    hue = (labels * 0.6180339887) % 1.0
    sat = 0.45 + 0.4 * ((labels * 0.37) % 1.0)
    val = 0.75 + 0.25 * ((labels * 0.77) % 1.0)
    h6 = hue * 6
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    choices = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)]
    out = np.zeros(labels.shape + (3,), np.float64)
    for k, (r, g, b) in enumerate(choices):
        sel = i == k
        out[sel] = np.stack([r[sel], g[sel], b[sel]], axis=-1)
    out[labels == 0] = 0
    return np.rint(out * 255).astype(np.uint8)


_HEAT = np.array([(0, 0, 4), (60, 15, 110), (150, 40, 110), (225, 80, 60),
                  (250, 165, 20), (252, 255, 164)], np.float64)


def heat(values, top=None):
    """Values from 0 to ``top`` (default their maximum) as an inferno-like heat map."""
    v = np.asarray(values, np.float64)
    top = float(v.max()) if top is None else top
    t = np.clip(v / top if top > 0 else v * 0, 0, 1) * (len(_HEAT) - 1)
    i = np.minimum(np.floor(t).astype(np.int64), len(_HEAT) - 2)
    f = (t - i)[..., None]
    return np.rint(_HEAT[i] * (1 - f) + _HEAT[i + 1] * f).astype(np.uint8)


def gray(image):
    """An RGB test image as float64 luminance in 0-255."""
    return np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])


# --------------------------------------------------------------------------- pictures

def methods_sheet(n=192, k=4, columns=7):
    """Every method of ``fastpool demo`` on the natural test image, ``k x k``."""
    image = ti.natural(n)
    tiles = [("original", image), (f"x[::{k}, ::{k}]", image[::k, ::k])]
    for method, func in available_demo_methods():
        pooled = np.asarray(method.call(func, image, k, (0, 1)))
        if method.display is not None:
            pooled = method.display(pooled.astype(np.float64), k * k)
        tiles.append((method.label, rgb(pooled)))
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    return grid(rows, n, scale=2,
                title=f"Every method, {k}x{k} windows, on natural({n}): RGB uint8, axes=(0, 1)")


def aliasing_sheet(n=192):
    """Aliasing on the zone plate: subsampling, avg, blur and max pooling."""
    plate = ti.zone_plate(n)
    rows = []
    for k, order in ((2, 4), (4, 6)):
        rows.append([("zone_plate(%d)" % n, plate) if k == 2 else None,
                     (f"x[::{k}, ::{k}]", plate[::k, ::k]),
                     ("avg_pool", fastpool.avg_pool(plate, k)),
                     ("blur_pool", fastpool.blur_pool(plate, k)),
                     (f"blur order={order}", fastpool.blur_pool(plate, k, order=order)),
                     ("max_pool", fastpool.max_pool(plate, k))])
    rows = [[None if t is None else (t[0], rgb(t[1])) for t in row] for row in rows]
    return grid(rows, n, scale=2, title="Aliasing: rings beyond the new Nyquist limit",
                row_titles=["factor 2", "factor 4"])


def voronoi_labels(n=192, regions=40, seed=3):
    """A Voronoi label image: ``regions`` random seeds, each with a random
    label from 1..65535 (neighbours rarely have close labels)."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, n, size=(regions, 2))
    ids = rng.choice(np.arange(1, 65536), size=regions, replace=False).astype(np.uint16)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    return ids[np.argmin(d, axis=-1)]


def labels_sheet(n=192, levels=3):
    """A label image pyramid: ``pyramid(method='mode')`` against ``method='avg'``."""
    labels = voronoi_labels(n)
    present = np.unique(labels)
    rows = []
    for method in ("mode", "avg"):
        row = [("labels", label_colours(labels))]
        for k, level in enumerate(fastpool.pyramid(labels, levels, method=method), 1):
            invented = np.count_nonzero(~np.isin(level, present))
            row.append((f"level {k}: {invented} new", label_colours(level)))
        rows.append(row)
    return grid(rows, n, scale=2, title=f"A uint16 label image, pyramid of {levels} levels",
                row_titles=["method='mode'", "method='avg'"])


def gradients_sheet(n=32, side=192):
    """``fastpool.grad`` of max, avg, soft and median pooling (3x3 windows,
    stride 2, padding 1) of a small image, with ``grad_output`` all ones."""
    x = gray(ti.natural(n))[: n, : n] / 255.0
    kw = dict(size=3, stride=2, padding=1)
    ones = np.ones_like(fastpool.avg_pool(x, **kw))
    grads = [("max", fastpool.grad.max_pool(ones, x, **kw)),
             ("avg", fastpool.grad.avg_pool(ones, x, **kw)),
             ("soft", fastpool.grad.soft_pool(ones, x, **kw, beta=8.0)),
             ("median", fastpool.grad.median_pool(ones, x, **kw))]
    row = [("input", rgb(x * 255))]
    row += [(f"{name} 0..{g.max():.2g}", heat(g)) for name, g in grads]
    return grid([row], side, scale=2,
                title="d sum(f(x, 3, 2, padding=1)) / dx")


# --------------------------------------------------------------------------- benchmarks

# Tables whose introduction does not name them
UNTITLED = {"bench_basic.py": "Max and mean"}


def benchmark_ratios(markdown, column="/ fastest peer"):
    """``(section, case, peer, ratio at 1 thread, ratio at all threads)`` from every
    table of ``docs/benchmarks.md`` with two ``column`` columns ("/ fastest peer",
    or "/ roofline", whose rows name no peer: ``peer`` is then "").

    A table's section is its script (the "Measured with `python benchmarks/X.py`"
    line after it), after the paragraph that introduces it where that names the
    script ("Order statistics (`benchmarks/bench_order.py`):").
    """
    found, paragraph, previous, header, table = [], [], "", None, []
    blocks = []  # (paragraph before the table, its rows, the text after it)
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            if header is None:
                header, table = [c.strip() for c in line.strip().strip("|").split("|")], []
                blocks.append([" ".join(paragraph) or previous, header, table, ""])
            else:
                table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if header is not None:
            header = None
        if not line.strip():
            previous, paragraph = " ".join(paragraph) or previous, []
        else:
            paragraph.append(line.strip())
            if blocks and not blocks[-1][3]:
                blocks[-1][3] = line
    for before, header, rows, after in blocks:
        peer_cols = [i for i, h in enumerate(header) if h == column]
        if len(peer_cols) != 2:
            continue
        script = re.search(r"benchmarks/(\w+\.py)", after)
        section = script.group(1) if script else ""
        intro = re.match(r"([^(`]+?)\s*\(`benchmarks/(\w+\.py)`\)", before)
        if intro and intro.group(2) == section:
            section = f"{intro.group(1)} ({section})"
        elif section in UNTITLED:
            section = f"{UNTITLED[section]} ({section})"
        for cells in rows:
            if set("".join(cells)) <= set("-: "):
                continue
            ratios, peers = [], []
            for i in peer_cols:
                m = re.match(r"([0-9.]+)(?:\s*\(([^ )]+))?", cells[i])
                if m is None:
                    break
                ratios.append(float(m.group(1)))
                peers.append(m.group(2) or "")
            else:
                found.append((section, cells[0].replace("`", ""), peers[1], ratios[0], ratios[1]))
    return found


def benchmarks_chart(markdown, width=1000, column="/ fastest peer"):
    """A bar chart of fastpool's time / the fastest peer's (or, with ``column``
    "/ roofline", / a memory copy's) on a log scale, 1 thread and 2 threads, one
    pair of bars per row of the benchmark tables."""
    rows = benchmark_ratios(markdown, column)

    def name(case, peer):
        return f"{case} vs {peer}" if peer else case

    label_w = 6 * max(len(name(case, peer)) for _, case, peer, _, _ in rows) + 2 * GAP
    plot_w = width - label_w - 3 * GAP - 30
    # The axis: log10 from lo to hi (bars are clipped to it).
    lo, hi = (0.01, 4.0) if column == "/ fastest peer" else (0.25, 16.0)
    bar_h, row_h = 6, 17
    sections = []
    for row in rows:
        if not sections or sections[-1][0] != row[0]:
            sections.append((row[0], []))
        sections[-1][1].append(row)
    head_h = 40
    height = head_h + sum(14 + len(r) * row_h for _, r in sections) + 30
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)

    def xpos(ratio):
        t = (np.log10(ratio) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
        return label_w + int(round(np.clip(t, 0, 1) * plot_w))

    def colour(ratio, light):
        c = (40, 140, 70) if ratio <= 1 else (200, 60, 50)
        return tuple(int(v + (255 - v) * 0.5) for v in c) if light else c

    y = head_h
    for title, section in sections:
        draw_text(canvas, title[:160], y + 3, GAP, 1, TITLE_INK)
        y += 14
        for _, case, peer, r1, r2 in section:
            text = name(case, peer)
            draw_text(canvas, text, y + 4, label_w - GAP - 6 * len(text), 1)
            for dy, ratio, light in ((2, r1, True), (2 + bar_h, r2, False)):
                x0, x1 = sorted((xpos(1.0), xpos(ratio)))
                canvas[y + dy:y + dy + bar_h - 1, x0:max(x1, x0 + 1)] = colour(ratio, light)
            value = f"{r1:g} / {r2:g}"
            if max(r1, r2) > 1:
                x = xpos(max(r1, r2)) + 4
                if x + 6 * len(value) > width - 2:  # a clipped bar: left of the 1 line
                    x = xpos(1.0) - 4 - 6 * len(value)
            else:
                x = xpos(min(r1, r2)) - 4 - 6 * len(value)
            draw_text(canvas, value, y + 5, x, 1, (90, 90, 90))
            y += row_h
    for tick in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 8, 16):
        if not lo <= tick <= hi:
            continue
        x = xpos(tick)
        canvas[head_h:y, x] = (0, 0, 0) if tick == 1 else (215, 215, 215)
        draw_text(canvas, f"{tick:g}", y + 6, x - 3 * len(f"{tick:g}"), 1)
    if column == "/ fastest peer":
        draw_text(canvas, "fastpool time / fastest peer's, log scale: left of 1 fastpool "
                  "is faster", GAP, GAP, 2, TITLE_INK)
        note = "peer: the fastest at 2 threads"
    else:
        draw_text(canvas, "fastpool time / a memory copy's (roofline), log scale",
                  GAP, GAP, 2, TITLE_INK)
        note = "1: as fast as copying input and output once"
    draw_text(canvas, "light bar: 1 thread, dark bar: 2 threads; numbers: 1 thread / "
              f"2 threads; {note}", 28, GAP, 1)
    return canvas


# --------------------------------------------------------------------------- main

PICTURES = {
    "methods.png": methods_sheet,
    "aliasing.png": aliasing_sheet,
    "labels.png": labels_sheet,
    "gradients.png": gradients_sheet,
}


def main(out_dir=DEFAULT_OUT, verbose=False):
    """Write every picture into ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    jobs = dict(PICTURES)
    with open(os.path.join(HERE, "benchmarks.md"), encoding="utf-8") as f:
        markdown = f.read()
    jobs["benchmarks.png"] = lambda: benchmarks_chart(markdown)
    jobs["roofline.png"] = lambda: benchmarks_chart(markdown, column="/ roofline")
    for name, draw in jobs.items():
        t0 = time.perf_counter()
        path = os.path.join(out_dir, name)
        write_png(path, draw())
        paths.append(path)
        if verbose:
            print(f"{path}: {time.perf_counter() - t0:.2f} s")
    return paths


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT, verbose=True)
