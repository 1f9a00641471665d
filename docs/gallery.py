"""Draw the pictures of the documentation's gallery and benchmarks pages.

Only NumPy and fastpool: the images are fastpool's built-in test images, the PNG
writer and the 5x7 bitmap font are those of ``fastpool demo``.  The benchmark
charts are ``benchmarks/charts.py``'s, drawn from the committed results
(``benchmarks/results/*.json``).  ``docs/conf.py``
runs :func:`main` at the start of every Sphinx build, so the pictures always show
the installed fastpool; by hand::

    python docs/gallery.py [OUT_DIR]        # default: docs/_gallery

Every picture is deterministic (fixed seeds).
"""

import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import charts  # noqa: E402  (benchmarks/charts.py: the benchmark charts)
import fastpool  # noqa: E402
from fastpool import _testimages as ti  # noqa: E402
from fastpool import _cli as cli  # noqa: E402
from fastpool._cli import available_demo_methods, write_png  # noqa: E402

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
    jobs.update(charts.pictures())  # from benchmarks/results/*.json
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
