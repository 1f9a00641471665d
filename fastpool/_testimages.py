"""Built-in test images, generated with NumPy (no download, no data files).

Used by ``fastpool demo`` and handy in examples and tests:

* :func:`zone_plate` -- concentric rings whose frequency rises to the Nyquist
  limit at the edge: every downsampling method shows how much it aliases.
* :func:`siemens_star` -- black and white sectors converging to the centre:
  resolution loss and moire near the centre, sharp straight edges elsewhere.
* :func:`natural` -- a synthetic RGB "satellite scene" (terrain with water,
  vegetation, rock and snow, hill shading, fields and a road), deterministic from
  a fixed seed.
"""

import numpy as np

__all__ = ["natural", "siemens_star", "zone_plate"]


def _check_n(n, minimum=8):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {n!r}")
    n = int(n)
    if n < minimum:
        raise ValueError(f"n must be >= {minimum}, got {n}")
    return n


def _to_uint8(values):
    """Values in [0, 1] as uint8, rounded half to even and clipped."""
    return np.clip(np.rint(np.asarray(values) * 255.0), 0, 255).astype(np.uint8)


def zone_plate(n=512):
    """A circular zone plate: ``cos(pi r**2 / n)`` as an ``(n, n)`` uint8 image.

    The local frequency grows linearly with the distance ``r`` from the centre and
    reaches the Nyquist limit (0.5 cycles/pixel) at the middle of each edge.  After
    downsampling by ``k``, every ring farther than ``n / (2 k)`` from the centre is
    above the new Nyquist limit: what a method shows there is aliasing (ghost rings)
    or blur.

    Parameters
    ----------
    n : int, optional
        Side length in pixels (at least 8).

    Returns
    -------
    ndarray of uint8, shape (n, n)
        Values 0-255, 255 at the centre.

    Examples
    --------
    >>> from fastpool._testimages import zone_plate
    >>> img = zone_plate(256)
    >>> img.shape, img.dtype
    ((256, 256), dtype('uint8'))
    >>> int(img[128, 128]), int(img.min()), int(img.max())
    (255, 0, 255)
    """
    n = _check_n(n)
    c = (np.arange(n, dtype=np.float64) - n / 2)
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    return _to_uint8(0.5 + 0.5 * np.cos(np.pi * r2 / n))


def siemens_star(n=512, spokes=36):
    """A Siemens star: ``spokes`` black/white sector pairs, as an ``(n, n)`` uint8 image.

    The sectors meet at the centre, so the spatial frequency along a circle rises
    towards the centre without bound; outside the star's disc the image is mid grey
    (128).  Edges are anti-aliased by 4x4 supersampling.

    Parameters
    ----------
    n : int, optional
        Side length in pixels (at least 8).
    spokes : int, optional
        Number of black (and of white) sectors.

    Returns
    -------
    ndarray of uint8, shape (n, n)

    Examples
    --------
    >>> from fastpool._testimages import siemens_star
    >>> star = siemens_star(128)
    >>> star.shape, star.dtype
    ((128, 128), dtype('uint8'))
    >>> int(star[0, 0])  # the corner lies outside the disc
    128
    >>> import numpy as np
    >>> len(np.unique(star)) > 3  # anti-aliased edges: grey levels between 0 and 255
    True
    """
    n = _check_n(n)
    if isinstance(spokes, (bool, np.bool_)) or not isinstance(spokes, (int, np.integer)) \
            or spokes < 1:
        raise ValueError(f"spokes must be a positive int, got {spokes!r}")
    ss = 4
    c = (np.arange(n * ss, dtype=np.float64) + 0.5) / ss - n / 2
    y, x = c[:, None], c[None, :]
    theta = np.arctan2(y, x)
    r = np.hypot(y, x)
    white = np.cos(spokes * theta) >= 0
    radius = 0.46 * n
    fine = np.where(r <= radius, white.astype(np.float64), 128 / 255)
    coarse = fine.reshape(n, ss, n, ss).mean(axis=(1, 3))
    return _to_uint8(coarse)


def _fractal_noise(rng, n, beta):
    """Periodic random field with a ``1 / f**beta`` amplitude spectrum, std 1."""
    f = np.fft.fftfreq(n)
    f2 = f[:, None] ** 2 + f[None, :] ** 2
    f2[0, 0] = np.inf
    amplitude = f2 ** (-beta / 2)
    noise = rng.standard_normal((n, n))
    field = np.fft.ifft2(np.fft.fft2(noise) * amplitude).real
    field -= field.mean()
    return field / field.std()


def natural(n=512, seed=1234):
    """A natural-looking RGB test image: a synthetic satellite scene.

    Terrain heights are a ``1/f**2`` random field (computed at 256x256 and scaled
    with the grid, so the scene looks the same at every size); they are coloured as
    water, beach, meadow, forest, rock and snow and lit with hill shading.
    Rectangular fields with textured crops and a road add straight edges and
    fine detail.  The image depends only on ``n`` and ``seed``.

    Parameters
    ----------
    n : int, optional
        Side length in pixels (at least 8).
    seed : int, optional
        Seed of the random fields.

    Returns
    -------
    ndarray of uint8, shape (n, n, 3)
        RGB.

    Examples
    --------
    >>> import numpy as np
    >>> from fastpool._testimages import natural
    >>> img = natural(128)
    >>> img.shape, img.dtype
    ((128, 128, 3), dtype('uint8'))
    >>> bool(np.array_equal(img, natural(128)))  # deterministic
    True

    Pool the two image axes and keep the colour channels:

    >>> import fastpool
    >>> fastpool.avg_pool(img, 4, axes=(0, 1)).shape
    (32, 32, 3)
    """
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    base = 256
    # Heights on a fixed grid, then sampled bilinearly at n x n: the same scene at
    # every n.
    height = 0.85 * _fractal_noise(rng, base, 2.0) + 0.15 * _fractal_noise(rng, base, 1.4)
    moist = _fractal_noise(rng, base, 2.2)
    u = (np.arange(n) + 0.5) * base / n - 0.5
    height = _bilinear(height, u)
    moist = _bilinear(moist, u)
    # Fine texture at the output resolution (grass, trees, rock grain).
    grain = _fractal_noise(rng, n, 0.8)

    # Colour by height.
    stops = np.array([-3.0, -0.35, -0.2, -0.1, 0.6, 1.2, 1.6, 3.0])
    colours = np.array([
        [0.05, 0.12, 0.30],   # deep water
        [0.10, 0.30, 0.50],   # shallow water
        [0.80, 0.75, 0.55],   # beach
        [0.40, 0.60, 0.25],   # meadow
        [0.18, 0.38, 0.16],   # forest
        [0.45, 0.40, 0.35],   # rock
        [0.60, 0.58, 0.56],   # high rock
        [0.97, 0.97, 0.98],   # snow
    ])
    rgb = np.stack([np.interp(height, stops, colours[:, k]) for k in range(3)], axis=-1)
    lowland = (height > -0.1) & (height < 1.0)
    dry = (np.clip(0.5 - 0.5 * moist, 0, 1) * lowland)[..., None]
    rgb = rgb * (1 - 0.35 * dry) + np.array([0.62, 0.55, 0.35]) * 0.35 * dry

    # Fields: rectangles with a striped crop pattern on low land.
    yy, xx = np.mgrid[0:n, 0:n] / n
    for _ in range(7):
        y0, x0 = rng.uniform(0.05, 0.8, size=2)
        h, w = rng.uniform(0.06, 0.16, size=2)
        inside = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
        inside &= (height > -0.05) & (height < 0.7)
        crop = np.array(rng.choice([[0.75, 0.65, 0.30], [0.55, 0.70, 0.25],
                                    [0.45, 0.33, 0.22]]))
        stripes = 0.9 + 0.1 * np.cos(2 * np.pi * (yy if rng.random() < 0.5 else xx) * 90)
        rgb = np.where(inside[..., None], crop * stripes[..., None], rgb)

    # A gently curving road.
    centre = 0.55 + 0.12 * np.sin(2 * np.pi * xx * 1.3 + 0.7)
    road = (np.abs(yy - centre) < 0.006) & (height > -0.2)
    rgb = np.where(road[..., None], np.array([0.35, 0.34, 0.33]), rgb)

    # Hill shading from the height gradient (light from the upper left).
    scale = 6.0 * n / base
    gy, gx = np.gradient(height * scale / n * base)
    shade = np.clip(1.0 + 0.9 * (-gx - gy) / np.sqrt(1.0 + gx * gx + gy * gy), 0.55, 1.35)
    land = (height > -0.35)[..., None]
    rgb = np.where(land, rgb * shade[..., None], rgb)
    rgb = rgb * (1.0 + 0.06 * grain[..., None])
    return _to_uint8(rgb)


def _bilinear(field, u):
    """Sample a periodic 2-D ``field`` at coordinates ``u`` (same for both axes)."""
    m = field.shape[0]
    i0 = np.floor(u).astype(np.int64)
    t = u - i0
    i0 %= m
    i1 = (i0 + 1) % m
    rows = field[i0] * (1 - t)[:, None] + field[i1] * t[:, None]
    return rows[:, i0] * (1 - t)[None, :] + rows[:, i1] * t[None, :]
