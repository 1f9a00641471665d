"""The ``fastpool`` command line: ``demo``, ``info`` and ``downsample``.

``python -m fastpool ...`` is the same as the ``fastpool`` console script.

Everything here uses only NumPy and the standard library: PNG files are read and
written by the small codec below (zlib + struct), and the labels of the demo's
comparison sheet are drawn with a built-in 5x7 bitmap font.  Optional packages
(PyTorch, scikit-image, OpenCV) are used by ``fastpool demo`` for its timing
table only when they happen to be installed; ``fastpool downsample`` reads and
writes TIFF through tifffile and JPEG through Pillow, imported only when such a
file is named (``pip install "fastpool[io]"``).
"""

import argparse
import os
import statistics
import struct
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

__all__ = ["main", "decode_png", "encode_png", "read_png", "write_png", "render_text"]

PROG = "fastpool"


class UsageError(Exception):
    """A bad argument: one-line message, exit status 2."""

    status = 2


class FileError(Exception):
    """A file that cannot be read or written: one-line message, exit status 1."""

    status = 1


# =========================================================================== PNG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# colour type -> channels
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_CHANNELS_TO_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


class PNGError(ValueError):
    """A PNG that is malformed or uses a feature this codec does not read."""


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png_layout(array):
    """``(height, width, channels, bit depth, colour type)`` of an array to write."""
    a = np.asarray(array)
    if a.dtype not in (np.uint8, np.uint16) or not (
            a.ndim == 2 or (a.ndim == 3 and 1 <= a.shape[2] <= 4)):
        raise ValueError(
            f"PNG stores 2-D (gray) or (height, width, 1-4) arrays of uint8 or uint16; "
            f"got shape {a.shape} and dtype {a.dtype}")
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[0] >= 2 ** 31 or a.shape[1] >= 2 ** 31:
        raise ValueError(f"PNG cannot store an image of shape {a.shape}")
    channels = 1 if a.ndim == 2 else a.shape[2]
    return a.shape[0], a.shape[1], channels, 8 * a.dtype.itemsize, _CHANNELS_TO_TYPE[channels]


def encode_png(array, level=6):
    """Encode an image as PNG bytes (non-interlaced).

    Parameters
    ----------
    array : array_like
        ``(H, W)`` gray, or ``(H, W, C)`` with C = 1 (gray), 2 (gray + alpha),
        3 (RGB) or 4 (RGBA); uint8 (8-bit) or uint16 (16-bit).
    level : int, optional
        zlib compression level.

    Returns
    -------
    bytes

    Notes
    -----
    Each row gets the filter (None, Sub or Up) with the smallest sum of absolute
    filtered bytes, the usual heuristic; nearest-neighbour upscaled tiles compress
    to almost nothing with Sub and Up.
    """
    a = np.asarray(array)
    height, width, channels, depth, colour = _png_layout(a)
    data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder(">") if depth == 16 else a.dtype)
    rows = data.view(np.uint8).reshape(height, -1)
    bpp = channels * depth // 8
    sub = rows.copy()
    sub[:, bpp:] -= rows[:, :-bpp]
    up = rows.copy()
    up[1:] -= rows[:-1]

    def cost(f):
        return np.abs(f.view(np.int8).astype(np.int16)).sum(axis=1, dtype=np.int64)

    choice = np.argmin(np.stack([cost(rows), cost(sub), cost(up)]), axis=0).astype(np.uint8)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = choice
    filtered[:, 1:] = np.where((choice == 0)[:, None], rows,
                               np.where((choice == 1)[:, None], sub, up))
    compressed = zlib.compress(filtered.tobytes(), level)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    step = 1 << 20
    idat = b"".join(_chunk(b"IDAT", compressed[i:i + step])
                    for i in range(0, max(len(compressed), 1), step))
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")


def _unfilter(filtered, height, rowbytes, bpp):
    """Undo the PNG row filters; ``filtered`` is the inflated data as uint8."""
    rows = filtered.reshape(height, rowbytes + 1)
    ftype = rows[:, 0]
    data = rows[:, 1:]
    if height and int(ftype.max()) > 4:
        raise PNGError(f"invalid filter type {int(ftype.max())}")
    out = np.empty((height, rowbytes), dtype=np.uint8)
    if not np.any(ftype > 2):
        # None, Sub and Up only: one vectorised step per row.
        prev = np.zeros(rowbytes, dtype=np.uint8)
        for r in range(height):
            t = ftype[r]
            if t == 0:
                out[r] = data[r]
            elif t == 1:
                out[r] = data[r].reshape(-1, bpp).cumsum(axis=0, dtype=np.uint8).ravel()
            else:
                np.add(data[r], prev, out=out[r])
            prev = out[r]
        return out
    # Average and Paeth depend on the left, upper and upper-left neighbours: decode
    # along anti-diagonals of pixels, each one vectorised (height + width steps).
    width = rowbytes // bpp
    padded = np.zeros(((height + 1) * (width + 1), bpp), dtype=np.int16)
    flat = data.reshape(height * width, bpp)
    for d in range(height + width - 1):
        r0, r1 = max(0, d - width + 1), min(height - 1, d)
        count = r1 - r0 + 1
        # pixel (r, d - r) sits at (r + 1) * (width + 1) + (d - r + 1) in ``padded``
        start = r0 * width + width + d + 2
        here = slice(start, start + (count - 1) * width + 1, width)
        a = padded[start - 1: start - 1 + (count - 1) * width + 1: width]
        b = padded[start - width - 1: start - width - 1 + (count - 1) * width + 1: width]
        c = padded[start - width - 2: start - width - 2 + (count - 1) * width + 1: width]
        fstart = r0 * (width - 1) + d
        fstep = max(width - 1, 1)
        f = flat[fstart: fstart + (count - 1) * fstep + 1: fstep].astype(np.int16)
        t = ftype[r0:r1 + 1, None]
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.select([t == 0, t == 1, t == 2, t == 3], [0, a, b, (a + b) >> 1], paeth)
        padded[here] = (f + pred) & 255
    grid = padded.reshape(height + 1, width + 1, bpp)[1:, 1:]
    out[:] = grid.reshape(height, rowbytes)
    return out


def decode_png(blob, max_pixels=None):
    """Decode PNG bytes into an array.

    Reads non-interlaced PNGs of bit depth 8 or 16: gray, gray + alpha, RGB, RGBA,
    and 8-bit palette images (expanded to RGB).  Checks every chunk's CRC.

    Parameters
    ----------
    blob : bytes
    max_pixels : int, optional
        Refuse (``PNGError``) an image whose header declares more pixels than this,
        before inflating anything.  The image data is never inflated beyond the size
        the header declares, whatever ``max_pixels`` is.

    Returns
    -------
    ndarray
        uint8 or uint16; ``(H, W)`` for gray, ``(H, W, C)`` otherwise.

    Raises
    ------
    PNGError
        Malformed data or an unsupported feature (interlacing, bit depths below 8).
    """
    blob = bytes(blob)
    if not blob.startswith(PNG_SIGNATURE):
        raise PNGError("not a PNG file (bad signature)")
    pos = len(PNG_SIGNATURE)
    header = None
    palette = None
    idat = []
    seen_end = False
    while pos < len(blob):
        if pos + 8 > len(blob):
            raise PNGError("truncated chunk header")
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        data = blob[pos + 8:pos + 8 + length]
        crc = blob[pos + 8 + length:pos + 12 + length]
        if len(data) != length or len(crc) != 4:
            raise PNGError(f"truncated {kind.decode('latin-1')} chunk")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data) & 0xFFFFFFFF:
            raise PNGError(f"CRC mismatch in the {kind.decode('latin-1')} chunk")
        pos += 12 + length
        if header is None and kind != b"IHDR":
            raise PNGError("the first chunk is not IHDR")
        if kind == b"IHDR":
            if length != 13:
                raise PNGError("bad IHDR chunk")
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"PLTE":
            palette = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(data)
        elif kind == b"IEND":
            seen_end = True
            break
        elif not kind[0:1].islower():
            raise PNGError(f"unsupported critical chunk {kind.decode('latin-1')!r}")
    if header is None:
        raise PNGError("no IHDR chunk")
    if not seen_end:
        raise PNGError("truncated file (no IEND chunk)")
    width, height, depth, colour, compression, filtering, interlace = header
    if colour not in _PNG_CHANNELS:
        raise PNGError(f"invalid colour type {colour}")
    if compression != 0 or filtering != 0:
        raise PNGError("unknown compression or filter method")
    if interlace != 0:
        raise PNGError("interlaced PNGs are not supported; save it without interlacing")
    if depth not in (8, 16) or (colour == 3 and depth != 8):
        raise PNGError(f"bit depth {depth} is not supported (8-bit and 16-bit only)")
    if width == 0 or height == 0:
        raise PNGError("empty image")
    channels = _PNG_CHANNELS[colour]
    bpp = channels * depth // 8
    rowbytes = width * bpp
    expected = height * (rowbytes + 1)
    if max_pixels is not None and width * height > max_pixels:
        raise PNGError(f"the image is {width}x{height} ({width * height} pixels), more than "
                       f"max_pixels={max_pixels}")
    # Inflate at most one byte more than the header promises: a small file whose data
    # inflates to far more than its IHDR declares is stopped there, not decompressed.
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected + 1)
    except zlib.error as exc:
        raise PNGError(f"corrupt image data ({exc})") from None
    if len(raw) > expected:
        raise PNGError(f"image data inflates to more than the {expected} bytes expected")
    if not inflater.eof:
        raise PNGError("corrupt image data (incomplete or truncated stream)")
    if len(raw) != expected:
        raise PNGError(f"image data has {len(raw)} bytes, expected {expected}")
    rows = _unfilter(np.frombuffer(raw, dtype=np.uint8), height, rowbytes, bpp)
    if depth == 16:
        image = rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
    else:
        image = rows.reshape(height, width, channels)
    if colour == 3:
        if palette is None:
            raise PNGError("palette image without a PLTE chunk")
        if int(image.max()) >= len(palette):
            raise PNGError("palette index out of range")
        return palette[image[..., 0]]
    return image[..., 0] if channels == 1 else image


def read_png(path, max_pixels=None):
    """Read a PNG file (see :func:`decode_png`)."""
    with open(path, "rb") as f:
        return decode_png(f.read(), max_pixels)


def write_png(path, array, level=6):
    """Write ``array`` as a PNG file (see :func:`encode_png`), atomically."""
    _write_atomic(path, encode_png(array, level))


def _write_atomic(path, data):
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    ``data`` is bytes, or a callable ``data(file)`` that writes into the open binary
    temporary file (in ``path``'s directory, so the rename is atomic).  Whatever goes
    wrong, ``path`` is either untouched or complete, and no temporary file is left.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fastpool-", suffix=".tmp")
    try:
        os.close(fd)
        # opened by name: encoders such as tifffile want a file object with a str name
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
        # mkstemp makes the file private (0600); give it the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# =========================================================================== font

# A 5x7 bitmap font: each glyph is 7 rows of 5 bits (hex, most significant bit on
# the left), from the classic HD44780 character generator.
_FONT = {
    " ": "00000000000000", "!": "04040404000004", '"': "0A0A0A00000000",
    "#": "0A0A1F0A1F0A0A", "%": "18190204081303", "'": "0C040800000000",
    "(": "02040808080402", ")": "08040202020408", "*": "0004150E150400",
    "+": "0004041F040400", ",": "000000000C0408", "-": "0000001F000000",
    ".": "00000000000C0C", "/": "00010204081000", ":": "000C0C000C0C00",
    ";": "000C0C000C0408", "<": "02040810080402", "=": "00001F001F0000",
    ">": "08040201020408", "?": "0E110102040004", "@": "0E11010D15150E",
    "[": "0E08080808080E", "]": "0E02020202020E", "^": "040A1100000000",
    "_": "0000000000001F", "|": "04040404040404",
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F",
    "3": "1F02040201110E", "4": "02060A121F0202", "5": "1F101E0101110E",
    "6": "0608101E11110E", "7": "1F010204080808", "8": "0E11110E11110E",
    "9": "0E11110F01020C",
    "A": "0E1111111F1111", "B": "1E11111E11111E", "C": "0E11101010110E",
    "D": "1C12111111121C", "E": "1F10101E10101F", "F": "1F10101E101010",
    "G": "0E11101711110F", "H": "1111111F111111", "I": "0E04040404040E",
    "J": "0702020202120C", "K": "11121418141211", "L": "1010101010101F",
    "M": "111B1515111111", "N": "11111915131111", "O": "0E11111111110E",
    "P": "1E11111E101010", "Q": "0E11111115120D", "R": "1E11111E141211",
    "S": "0F10100E01011E", "T": "1F040404040404", "U": "1111111111110E",
    "V": "11111111110A04", "W": "1111111515150A", "X": "11110A040A1111",
    "Y": "1111110A040404", "Z": "1F01020408101F",
    "a": "00000E010F110F", "b": "1010161911111E", "c": "00000E1010110E",
    "d": "01010D1311110F", "e": "00000E111F100E", "f": "0609081C080808",
    "g": "000F11110F010E", "h": "10101619111111", "i": "04000C0404040E",
    "j": "0200060202120C", "k": "10101214181412", "l": "0C04040404040E",
    "m": "00001A15151111", "n": "00001619111111", "o": "00000E1111110E",
    "p": "00001E111E1010", "q": "00000D130F0101", "r": "00001619101010",
    "s": "00000E100E011E", "t": "08081C08080906", "u": "0000111111130D",
    "v": "00001111110A04", "w": "0000111115150A", "x": "0000110A040A11",
    "y": "000011110F010E", "z": "00001F0204081F",
}

GLYPH_WIDTH, GLYPH_HEIGHT, GLYPH_ADVANCE = 5, 7, 6


def _glyph(char):
    rows = _FONT.get(char, _FONT["?"])
    bits = [int(rows[i:i + 2], 16) for i in range(0, 14, 2)]
    return np.array([[(b >> (4 - j)) & 1 for j in range(5)] for b in bits], dtype=bool)


def render_text(text, scale=1):
    """Render ``text`` with the built-in 5x7 font as a boolean mask.

    Characters without a glyph are drawn as ``?``.

    Returns
    -------
    ndarray of bool, shape ``(7 * scale, 6 * scale * len(text))``
        True where ink is (one blank column after each character).

    Examples
    --------
    >>> from fastpool._cli import render_text
    >>> mask = render_text("Hi")
    >>> mask.shape
    (7, 12)
    >>> print("\\n".join("".join("#" if b else "." for b in row) for row in mask))
    #...#...#...
    #...#.......
    #...#..##...
    #####...#...
    #...#...#...
    #...#...#...
    #...#..###..
    """
    mask = np.zeros((GLYPH_HEIGHT, GLYPH_ADVANCE * len(text)), dtype=bool)
    for i, char in enumerate(text):
        mask[:, GLYPH_ADVANCE * i:GLYPH_ADVANCE * i + GLYPH_WIDTH] = _glyph(char)
    if scale > 1:
        mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    return mask


def draw_text(canvas, text, y, x, scale=1, colour=(255, 255, 255), max_width=None):
    """Draw ``text`` into the RGB ``canvas`` at ``(y, x)``, clipped to the canvas
    and to ``max_width`` pixels."""
    mask = render_text(text, scale)
    h = min(mask.shape[0], canvas.shape[0] - y)
    w = min(mask.shape[1], canvas.shape[1] - x,
            mask.shape[1] if max_width is None else max_width)
    if h > 0 and w > 0:
        canvas[y:y + h, x:x + w][mask[:h, :w]] = colour


# =========================================================================== demo

def _per_sample(result, count):
    """Display scale of methods whose values grow with the window (sum)."""
    return result / count


def _per_root_sample(result, count):
    """Display scale of the 2-norm (lp with p=2)."""
    return result / np.sqrt(count)


def _sliding(func, image, size, axes):
    return func(image, size, axes=axes)


@dataclass(frozen=True)
class DemoMethod:
    """One method of ``fastpool demo``; it is shown when ``fastpool.<func>`` exists.

    ``call(func, image, size, axes)`` returns the pooled image (uint8 or uint16
    gray, or RGB with ``axes=(0, 1)``); ``display(result, count)`` maps a result
    whose values are not on the input's scale back to it (``count`` = samples per
    window).
    """

    label: str
    func: str
    call: Callable = _sliding
    display: Optional[Callable] = None


# Every pooling method the demo shows, in order; methods this version of fastpool
# does not have yet are skipped.  Adding a method is adding one line.
DEMO_METHODS = [
    DemoMethod("max", "max_pool"),
    DemoMethod("min", "min_pool"),
    DemoMethod("avg", "avg_pool"),
    DemoMethod("sum", "sum_pool", display=_per_sample),
    DemoMethod("median", "median_pool"),
    DemoMethod("p90", "percentile_pool", lambda f, x, k, axes: f(x, 90, k, axes=axes)),
    DemoMethod("mode", "mode_pool"),
    DemoMethod("lp2", "lp_pool", lambda f, x, k, axes: f(x.astype(np.float32), 2, k, axes=axes),
               display=_per_root_sample),
    DemoMethod("soft", "soft_pool",
               lambda f, x, k, axes: f(x.astype(np.float32) / 255, k, axes=axes) * 255),
    DemoMethod("stochastic", "stochastic_pool",
               lambda f, x, k, axes: f(x, k, axes=axes, seed=0)),
    DemoMethod("mixed", "mixed_pool", lambda f, x, k, axes: f(x, k, axes=axes, seed=0)),
    DemoMethod("avgmax", "avgmax_pool"),
    DemoMethod("lip", "lip_pool",
               lambda f, x, k, axes: f(x, x.astype(np.float32) / 64, k, axes=axes)),
    DemoMethod("dpp", "dpp_pool",
               lambda f, x, k, axes: f(x.astype(np.float32), k, axes=axes, alpha=1.0, lam=1.0)),
    DemoMethod("blur", "blur_pool"),
    DemoMethod("maxblur", "maxblur_pool"),
    DemoMethod("fractional max", "fractional_max_pool",
               lambda f, x, k, axes: f(x, output_ratio=1 / k, size=k, seed=0, axes=axes)),
]

DEMO_WINDOWS = (2, 4)
DEMO_SHEET = "fastpool_demo.png"


def available_demo_methods():
    """The :data:`DEMO_METHODS` whose function this fastpool has, with the function."""
    import fastpool
    return [(m, getattr(fastpool, m.func)) for m in DEMO_METHODS if hasattr(fastpool, m.func)]


def _demo_images(n):
    from . import _testimages as ti
    return [("zone plate", ti.zone_plate(n)), ("siemens star", ti.siemens_star(n)),
            ("natural", ti.natural(n))]


def _to_display(result, method, count):
    """A pooled result as an RGB uint8 tile, on the input's 0-255 scale."""
    y = np.asarray(result)
    if method is not None and method.display is not None:
        y = method.display(y.astype(np.float64), count)
    if y.dtype != np.uint8:
        y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0)
        y = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    if y.ndim == 2:
        y = np.repeat(y[:, :, None], 3, axis=2)
    return y


def build_sheet(n=256, windows=DEMO_WINDOWS, max_columns=8, warn=None):
    """The demo's comparison sheet as an RGB uint8 array.

    One section per built-in image; in it one row per window size, holding the
    original (first row only), plain subsampling ``x[::k, ::k]`` and every available
    method, each result upscaled by nearest neighbour to ``n x n`` and labelled.

    Returns
    -------
    sheet : ndarray of uint8, shape (H, W, 3)
    shown : list of str
        Labels of the methods shown.
    """
    methods = available_demo_methods()
    scale = 2 if n >= 192 else 1
    label_h = GLYPH_HEIGHT * scale + 4 * scale
    header_h = GLYPH_HEIGHT * (scale + 1) + 6 * scale
    gap = 4 * scale
    shown = [m.label for m, _ in methods]

    # Build the tiles: a list of sections, each a list of rows of (label, tile).
    sections = []
    for name, image in _demo_images(n):
        axes = (0, 1) if image.ndim == 3 else None
        rows = []
        for r, k in enumerate(windows):
            row = [("original", _to_display(image, None, 1)) if r == 0 else None,
                   (f"subsample {k}x{k}", _to_display(image[::k, ::k], None, 1))]
            for method, func in methods:
                try:
                    pooled = method.call(func, image, k, axes)
                    row.append((f"{method.label} {k}x{k}",
                                _to_display(pooled, method, k * k)))
                except Exception as exc:  # a broken method must not stop the demo
                    if warn is not None:
                        warn(f"method {method.label!r} failed on {name} with {k}x{k}: "
                             f"{type(exc).__name__}: {exc}")
            # Wrap long rows; continuation rows leave the original's column empty.
            rows.append((k, row[:max_columns]))
            rest = row[max_columns:]
            while rest:
                rows.append((k, [None] + rest[:max_columns - 1]))
                rest = rest[max_columns - 1:]
        sections.append((name, image, rows))

    columns = max(len(chunk) for _, _, rows in sections for _, chunk in rows)
    cell_w, cell_h = n + gap, label_h + n + gap
    width = gap + columns * cell_w
    height = gap + sum(header_h + len(rows) * cell_h for _, _, rows in sections)
    sheet = np.full((height, width, 3), 32, dtype=np.uint8)
    y = gap
    for name, image, rows in sections:
        kind = "RGB" if image.ndim == 3 else "gray"
        draw_text(sheet, f"{name}  {n}x{n} {kind} uint8", y + 2 * scale, gap,
                   scale + 1, (255, 220, 120))
        y += header_h
        for k, chunk in rows:
            for c, item in enumerate(chunk):
                if item is None:
                    continue
                label, tile = item
                x = gap + c * cell_w
                draw_text(sheet, label, y + 2 * scale, x, scale, max_width=n)
                big = np.repeat(np.repeat(tile, n // tile.shape[0] or 1, axis=0),
                                n // tile.shape[1] or 1, axis=1)[:n, :n]
                sheet[y + label_h:y + label_h + big.shape[0], x:x + big.shape[1]] = big
            y += cell_h
    return sheet, shown


# --------------------------------------------------------------------------- timing

@dataclass
class _Contender:
    name: str
    func: Callable
    result: object = None
    times: list = field(default_factory=list)


def _peer_functions(dtype, op, k):
    """``{peer name: callable(x) -> result}`` for the installed peers."""
    import importlib.util

    def importable(name):
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    peers = {}

    def reshape(x):
        h, w = x.shape[0] // k * k, x.shape[1] // k * k
        return x[:h, :w].reshape(h // k, k, w // k, k)

    if op == "max":
        peers["numpy"] = lambda x: reshape(x).max(axis=(1, 3))
    elif dtype == np.uint8:
        peers["numpy"] = lambda x: np.rint(reshape(x).mean(axis=(1, 3), dtype=np.float32)
                                           ).astype(np.uint8)
    else:
        peers["numpy"] = lambda x: reshape(x).mean(axis=(1, 3), dtype=np.float32)

    if importable("torch"):
        try:
            import torch
            import torch.nn.functional as F

            if op == "max":
                peers["torch"] = lambda x: F.max_pool2d(torch.from_numpy(x)[None, None],
                                                        k)[0, 0].numpy()
            elif dtype == np.uint8:  # torch has no integer avg_pool
                peers["torch"] = lambda x: F.avg_pool2d(
                    torch.from_numpy(x)[None, None].float(), k
                ).round_().to(torch.uint8)[0, 0].numpy()
            else:
                peers["torch"] = lambda x: F.avg_pool2d(torch.from_numpy(x)[None, None],
                                                        k)[0, 0].numpy()
        except Exception:
            pass
    if importable("skimage"):
        try:
            from skimage.measure import block_reduce

            reducer = np.max if op == "max" else np.mean
            peers["skimage"] = lambda x: block_reduce(x, (k, k), reducer)
        except Exception:
            pass
    if importable("cv2"):
        try:
            import cv2

            if op == "max":
                kernel = np.ones((k, k), dtype=np.uint8)
                peers["cv2"] = lambda x: cv2.dilate(x, kernel, anchor=(0, 0))[
                    :x.shape[0] // k * k:k, :x.shape[1] // k * k:k]
            else:
                peers["cv2"] = lambda x: cv2.resize(
                    x, (x.shape[1] // k, x.shape[0] // k), interpolation=cv2.INTER_AREA)
        except Exception:
            pass
    return peers


_PEER_NOTES = {
    "numpy": "reshape to (h, 2, w, 2) and max/mean (uint8 mean in float32, rounded)",
    "torch": "F.max_pool2d/avg_pool2d on a view (uint8 mean through float32)",
    "skimage": "measure.block_reduce with np.max/np.mean",
    "cv2": "dilate + slicing (max), resize INTER_AREA (mean)",
}


def _agreement(result, reference):
    """How ``result`` compares with ``reference``.

    '' equal (floats: rtol 1e-5); '*' a float result equal to the integer
    reference after rounding half to even; '~' integers within 1 (another rounding
    rule); '!' different.
    """
    try:
        a = np.asarray(result, dtype=np.float64)
        b = np.asarray(reference, dtype=np.float64)
        if a.shape != b.shape:
            return "!"
        if np.array_equal(a, b):
            return ""
        if np.asarray(reference).dtype.kind in "iub":
            diff = np.abs(np.rint(a) - b).max()
            if diff == 0:
                return "*"
            return "~" if diff <= 1 else "!"
        return "" if np.allclose(a, b, rtol=1e-5, atol=1e-6) else "!"
    except Exception:
        return "!"


def _time_case(contenders, runs=5, slow=2.0):
    """Warm up (and keep each result), then time the contenders round-robin.

    Each contender gets ``runs`` timed calls (3 when one round would take more than
    ``slow`` seconds), in a rotated order each round.  Returns the number of runs.
    """
    import gc

    first = []
    for c in contenders:
        t0 = time.perf_counter()
        c.result = c.func()
        first.append(time.perf_counter() - t0)
    if sum(first) > slow:
        runs = 3
    c_enabled = gc.isenabled()
    try:
        gc.disable()
        for r in range(runs):
            shift = r % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                time.sleep(0.003)  # let the previous contender's threads go idle
                t0 = time.perf_counter()
                c.func()
                c.times.append(time.perf_counter() - t0)
    finally:
        if c_enabled:
            gc.enable()
    return runs


def timing_table(size=4096, k=2, out=print):
    """Time fastpool against the installed peers on a random image; print a table.

    Peers: NumPy reshape-and-reduce always; PyTorch, scikit-image's
    ``block_reduce`` and OpenCV when importable.  Every number is the median of the
    runs; each peer's result is checked against fastpool's, and fastpool's against
    the NumPy one.
    """
    import fastpool

    rng = np.random.default_rng(0)
    images = {np.float32: rng.standard_normal((size, size), dtype=np.float32),
              np.uint8: rng.integers(0, 256, (size, size), dtype=np.uint8)}
    cases = [(np.float32, "max"), (np.float32, "avg"), (np.uint8, "max"), (np.uint8, "avg")]
    rows, peer_names, runs_used, wrong = [], [], [], []
    for dtype, op in cases:
        x = images[dtype]
        pool = fastpool.max_pool if op == "max" else fastpool.avg_pool
        contenders = [_Contender("fastpool", lambda pool=pool, x=x: pool(x, k))]
        for name, f in _peer_functions(dtype, op, k).items():
            contenders.append(_Contender(name, lambda f=f, x=x: f(x)))
            if name not in peer_names:
                peer_names.append(name)
        runs_used.append(_time_case(contenders))
        label = f"{np.dtype(dtype).name} {op} {k}x{k}"
        fp_time = statistics.median(contenders[0].times)
        fp_mark = _agreement(contenders[0].result, contenders[1].result)  # vs NumPy
        if fp_mark == "!":
            wrong.append(label)
        cells = {}
        for c in contenders[1:]:
            t = statistics.median(c.times)
            mark = "" if fp_mark == "!" else _agreement(c.result, contenders[0].result)
            ratio = t / fp_time
            cells[c.name] = f"{t * 1e3:.1f} ms ({ratio:.{2 if ratio < 1 else 1}f}x){mark}"
        rows.append((label, f"{fp_time * 1e3:.1f} ms{'!' if fp_mark == '!' else ''}", cells))

    threads = fastpool.get_workers()
    runs = "/".join(str(r) for r in sorted(set(runs_used)))
    out(f"Timings: {size}x{size} random image, {k}x{k} windows, stride {k}; median of "
        f"{runs} runs; fastpool with {threads} thread{'s' if threads != 1 else ''}")
    header = ["case", "fastpool"] + peer_names
    table = [header] + [[label, fp_cell] + [cells.get(p, "-") for p in peer_names]
                        for label, fp_cell, cells in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        out("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(r, widths))).rstrip())
    out("(Nx) = peer time / fastpool time: above 1, fastpool is faster.")
    notes = []
    if any("*" in c for _, _, cells in rows for c in cells.values()):
        notes.append("* a float result (not rounded), equal to fastpool's after rounding")
    if any("~" in c for _, _, cells in rows for c in cells.values()):
        notes.append("~ integer results within 1 of fastpool's (another rounding rule)")
    if any("!" in c for _, _, cells in rows for c in cells.values()):
        notes.append("! a result different from fastpool's")
    for note in notes:
        out(note + ".")
    described = [f"{p}: {_PEER_NOTES[p]}" for p in peer_names if p in _PEER_NOTES]
    out("Peers: " + "; ".join(described) + ".")
    for label in wrong:
        out(f"WARNING: fastpool's result for {label} differs from the NumPy result "
            "(marked !); please report this.")
    return rows


def run_demo(out_dir=".", n=256, bench_size=4096, out=print, err=None):
    """``fastpool demo``: write the comparison sheet, then print the timing table."""
    import fastpool

    err = err or (lambda msg: print(f"{PROG} demo: warning: {msg}", file=sys.stderr))
    out_dir = os.path.abspath(out_dir)
    if not os.path.isdir(out_dir):
        raise FileError(f"output directory {out_dir} does not exist")
    t0 = time.perf_counter()
    sheet, shown = build_sheet(n, warn=err)
    path = os.path.join(out_dir, DEMO_SHEET)
    try:
        write_png(path, sheet)
    except OSError as exc:
        raise FileError(f"cannot write {path}: {exc.strerror or exc}") from None
    windows = " and ".join(f"{k}x{k}" for k in DEMO_WINDOWS)
    out(f"fastpool {fastpool.__version__} demo: pooled zone plate, siemens star and natural "
        f"({n}x{n}) with {', '.join(shown)} at {windows} "
        f"({time.perf_counter() - t0:.1f} s)")
    out(f"Wrote comparison sheet: {path}  ({sheet.shape[1]}x{sheet.shape[0]} PNG)")
    if bench_size:
        out("")
        timing_table(bench_size, out=out)
    return path


# =========================================================================== info

# (shown as, module, distribution names, what fastpool uses it for).  Versions come
# from the installed distributions' metadata: nothing here is imported.
OPTIONAL_PACKAGES = [
    ("torch", "torch", ("torch",), "tests (reference results) and demo timings"),
    ("scikit-image (skimage)", "skimage", ("scikit-image",), "demo timings"),
    ("opencv (cv2)", "cv2", ("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                             "opencv-contrib-python-headless"), "demo timings"),
    ("tinybrain", "tinybrain", ("tinybrain",), "benchmarks"),
    ("scipy", "scipy", ("scipy",), "tests"),
    ("hypothesis", "hypothesis", ("hypothesis",), "tests"),
    ("threadpoolctl", "threadpoolctl", ("threadpoolctl",), "thread limits"),
    ("dask", "dask", ("dask",), "dask arrays"),
    ("distributed", "distributed", ("distributed",), "dask clusters"),
    ("zarr", "zarr", ("zarr",), "Zarr pyramids"),
    ("tqdm", "tqdm", ("tqdm",), "progress bars of Zarr pyramids"),
    ("xarray", "xarray", ("xarray",), "benchmarks"),
    ("tifffile", "tifffile", ("tifffile",), "TIFF files in fastpool downsample"),
    ("Pillow (PIL)", "PIL", ("pillow", "Pillow"), "JPEG files in fastpool downsample"),
]


def _package_version(module, dists):
    """The installed version of ``module`` (from ``dists``' metadata), "installed" when
    it is importable without metadata, None when it is not importable.  Imports nothing."""
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "installed"


def run_info(out=print):
    """``fastpool info``."""
    import platform

    import fastpool
    from ._support import cpu_count

    out(f"fastpool {fastpool.__version__}")
    out(f"  location: {os.path.dirname(os.path.abspath(fastpool.__file__))}")
    out(f"  python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.system()} {platform.machine()}")
    out(f"  OpenMP: {'on' if fastpool.openmp_enabled() else 'off (serial kernels)'}")
    from ._kernels import SIMD
    out(f"  SIMD kernels: {SIMD}")
    out(f"  default threads: {fastpool.get_workers()} (cores available: {cpu_count()})")
    out("optional packages:")
    width = max(len(label) for label, _, _, _ in OPTIONAL_PACKAGES)
    versions = {}
    for label, module, dists, use in OPTIONAL_PACKAGES:
        versions[module] = version = _package_version(module, dists)
        state = version if version else "not installed"
        out(f"  {label.ljust(width)}  {state:<16s} ({use})")
    formats = []
    for exts, module, package in _FORMAT_NEEDS:
        if module is None:
            formats.append(f"{exts} (built in)")
        elif versions.get(module):
            formats.append(f"{exts} ({package})")
        else:
            formats.append(f"{exts} (needs: pip install {package})")
    out("downsample file types: " + ", ".join(formats))


# =========================================================================== downsample

# Methods ``fastpool downsample`` offers: those taking ``(input, size, ...)`` and no
# other required argument, when this fastpool has them.
DOWNSAMPLE_METHODS = ("avg", "max", "min", "sum", "median", "mode", "soft", "avgmax", "dpp")
FORMATS = {".npy": "NumPy", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
           ".jpg": "JPEG", ".jpeg": "JPEG"}
# extension -> (module, pip package) of the optional package a format needs
_FORMAT_PACKAGES = {".tif": ("tifffile", "tifffile"), ".tiff": ("tifffile", "tifffile"),
                    ".jpg": ("PIL", "Pillow"), ".jpeg": ("PIL", "Pillow")}
# (extensions, module, pip package) for ``fastpool info``
_FORMAT_NEEDS = [(".npy", None, None), (".png", None, None),
                 (".tif/.tiff", "tifffile", "tifffile"), (".jpg/.jpeg", "PIL", "Pillow")]

# Default --max-pixels: PNG, JPEG and TIFF files whose header declares more pixels
# (voxels, pages included; colour samples not counted) are refused before decoding.
MAX_PIXELS = 2 ** 29
JPEG_QUALITY = 95  # written without chroma subsampling (4:4:4)


class DependencyError(Exception):
    """An optional package a file type needs is missing: one-line message, status 1."""

    status = 1


@dataclass
class _Image:
    """An image read by ``fastpool downsample``.

    ``colour``: the axis of colour samples (PNG and JPEG channels, a TIFF's ``S`` axis),
    or None.  ``pooled``: the axes pooled when ``--axes`` is not given (None: all).
    ``notes``: warnings the decoder gave (printed on success).
    """

    data: np.ndarray
    colour: Optional[int] = None
    pooled: Optional[tuple] = None
    notes: list = field(default_factory=list)


def _downsample_methods():
    import fastpool
    return [m for m in DOWNSAMPLE_METHODS if hasattr(fastpool, f"{m}_pool")]


def _format_of(path, role):
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        shown = f"'{ext}'" if ext else "no extension"
        raise UsageError(f"{role} {path}: unsupported file type {shown}; use .npy, .png, "
                         ".tif/.tiff or .jpg/.jpeg")
    return ext


def _require(ext, path, role):
    """Import the optional package ``ext`` needs, or a one-line DependencyError."""
    if ext not in _FORMAT_PACKAGES:
        return None
    import importlib

    module, package = _FORMAT_PACKAGES[ext]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        state = "which is not installed" if exc.name in (module, None) else \
            f"which failed to import ({_one_line(exc)})"
        raise DependencyError(
            f"{role} {path}: {FORMATS[ext]} files need the optional package {package}, "
            f"{state}; install it with 'pip install {package}' "
            "(or pip install \"fastpool[io]\")") from None


class _Notes:
    """Collect what a codec logs (tifffile's logger) or warns while it runs, so that
    it reaches the user as one-line warnings after a success, not as tracebacks or
    multi-line reports; after a failure only the error is shown."""

    def __init__(self):
        self.messages = []

    def __enter__(self):
        import logging
        import warnings

        notes = self.messages

        class _Handler(logging.Handler):
            def emit(self, record):
                notes.append(record.getMessage())

        self._logger = logging.getLogger("tifffile")
        self._handler = _Handler(logging.WARNING)
        self._propagate = self._logger.propagate
        self._logger.addHandler(self._handler)
        self._logger.propagate = False
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("ignore", ResourceWarning)
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        self.messages.extend(str(w.message) for w in self._caught)
        self._logger.removeHandler(self._handler)
        self._logger.propagate = self._propagate
        return False


def _one_line(text):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _shape_text(shape):
    return "x".join(map(str, shape))


def _check_pixels(path, shape, pixels, limit):
    """Refuse an image whose header declares more than ``limit`` pixels."""
    if limit and pixels > limit:
        raise FileError(
            f"cannot read {path}: the image declares {_shape_text(shape)} = {pixels} pixels, "
            f"more than --max-pixels {limit}; raise --max-pixels (0: no limit) if you trust "
            "the file")


def _read_npy(path):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise FileError(f"cannot read {path}: not a .npy file (bad signature)")
        # The header's shape against the file's size: a short file is truncated, and
        # a tiny file declaring a huge array is not loaded (no huge allocation).
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            header = {(1, 0): np.lib.format.read_array_header_1_0,
                      (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            shape, _, dtype = header(f) if header else ((), False, np.dtype(object))
        except ValueError as exc:
            raise FileError(f"cannot read {path}: bad .npy header ({_one_line(exc)})") from None
        if not dtype.hasobject:  # (other format versions: left to np.load)
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            have = os.fstat(f.fileno()).st_size - f.tell()
            if have < need:
                raise FileError(f"cannot read {path}: the file is truncated ({have} bytes of "
                                f"data for a {_shape_text(shape)} {dtype} array of {need})")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise FileError(f"cannot read {path}: it holds Python objects, which "
                            "fastpool does not load") from None
        raise FileError(f"cannot read {path}: {_one_line(exc)}") from None


def _read_png(path, max_pixels):
    with open(path, "rb") as f:
        blob = f.read()
    # The IHDR chunk is first: its size is checked before anything is inflated.
    if blob.startswith(PNG_SIGNATURE) and blob[12:16] == b"IHDR" and len(blob) >= 24:
        width, height = struct.unpack(">II", blob[16:24])
        _check_pixels(path, (height, width), width * height, max_pixels)
    try:
        data = decode_png(blob)
    except PNGError as exc:
        raise FileError(f"cannot read {path}: {exc}") from None
    return _Image(data, colour=2 if data.ndim == 3 else None,
                  pooled=(0, 1) if data.ndim == 3 else None)


def _tiff_error(path, exc):
    if isinstance(exc, (struct.error, IndexError, EOFError)):
        return FileError(f"cannot read {path}: truncated or corrupt TIFF file")
    message = _one_line(exc) or type(exc).__name__
    return FileError(f"cannot read {path}: not a readable TIFF file ({message})")


def _read_tiff(path, max_pixels):
    tifffile = _require(".tif", path, "input")
    with _Notes() as notes:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise FileError(f"cannot read {path}: the TIFF file holds no image")
                series = tif.series[0]
                shape, axes = tuple(series.shape), series.axes
                pixels = 1
                for n, a in zip(shape, axes):
                    pixels *= 1 if a == "S" else int(n)
                _check_pixels(path, shape, pixels, max_pixels)
                data = series.asarray()
        except (FileError, OSError, MemoryError):
            raise
        except Exception as exc:  # tifffile: TiffFileError, ValueError, IndexError, ...
            raise _tiff_error(path, exc) from None
    if data.shape != shape or len(axes) != data.ndim:  # not expected; pool everything
        return _Image(data, notes=notes.messages)
    colour = axes.index("S") if "S" in axes else None
    # every axis but colour samples and channels (a volume's Z, a stack's pages, ...)
    pooled = tuple(i for i, a in enumerate(axes) if a not in "SC")
    if not pooled or len(pooled) == data.ndim:
        pooled = None
    return _Image(data, colour=colour, pooled=pooled, notes=notes.messages)


def _read_jpeg(path, max_pixels):
    _require(".jpg", path, "input")
    from PIL import Image

    # fastpool's own --max-pixels check replaces Pillow's (a warning, then an error)
    Image.MAX_IMAGE_PIXELS = None
    with _Notes() as notes:
        try:
            with Image.open(path, formats=["JPEG"]) as im:  # lazy: reads the header only
                width, height = im.size
                _check_pixels(path, (height, width), width * height, max_pixels)
                if im.mode in ("CMYK", "YCbCr"):
                    im = im.convert("RGB")
                elif im.mode not in ("L", "RGB"):
                    raise FileError(f"cannot read {path}: JPEG mode {im.mode} is not "
                                    "supported (8-bit gray or RGB only)")
                im.load()
                data = np.array(im)
        except (FileError, MemoryError):
            raise
        except Image.UnidentifiedImageError:
            raise FileError(f"cannot read {path}: not a JPEG file") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise
            raise FileError(f"cannot read {path}: corrupt or truncated JPEG "
                            f"({_one_line(exc)})") from None
    return _Image(data, colour=2 if data.ndim == 3 else None,
                  pooled=(0, 1) if data.ndim == 3 else None, notes=notes.messages)


def _read(path, ext, max_pixels=MAX_PIXELS):
    """Read ``path`` (type ``ext``) into an :class:`_Image`; FileError if it cannot."""
    try:
        if ext == ".npy":
            return _Image(_read_npy(path))
        if ext == ".png":
            return _read_png(path, max_pixels)
        if ext in (".tif", ".tiff"):
            return _read_tiff(path, max_pixels)
        return _read_jpeg(path, max_pixels)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror or _one_line(exc)}") from None
    except EOFError:
        raise FileError(f"cannot read {path}: the file is empty or truncated") from None
    except MemoryError:
        raise FileError(f"cannot read {path}: not enough memory") from None


def _tiff_layout(array, colour):
    """``imwrite`` keywords for ``array``: RGB(A) where the input's colour samples
    survived as the last axis (or the first of the last three: planar), else gray."""
    a = array
    if colour is None or a.dtype.kind not in "uif" or a.ndim < 3:
        return {"photometric": "minisblack"}
    if colour == a.ndim - 1:
        rgb = a.shape[-1] in (3, 4)
        return {"photometric": "rgb" if rgb else "minisblack", "planarconfig": "contig"}
    if colour == a.ndim - 3 and a.shape[colour] in (3, 4):
        return {"photometric": "rgb", "planarconfig": "separate"}
    return {"photometric": "minisblack"}


def _writer(result, ext, path, colour, notes):
    """Check that ``result`` can be written as ``ext`` (UsageError if not) and return
    ``write(file)`` writing it into an open binary file."""
    a = np.asarray(result)
    if ext == ".npy":
        return lambda f: np.save(f, a, allow_pickle=False)
    if ext == ".png":
        try:
            blob = encode_png(a)
        except ValueError as exc:
            raise UsageError(f"cannot write {path}: {exc}; write a .tif or .npy file instead, "
                             "or pass --dtype uint8") from None
        return lambda f: f.write(blob)
    if ext in (".tif", ".tiff"):
        tifffile = _require(ext, path, "output")
        layout = _tiff_layout(a, colour)

        def write_tiff(f):
            with notes:
                tifffile.imwrite(f, a, **layout)
        return write_tiff
    # JPEG
    _require(ext, path, "output")
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3))):
        hint = ", or pass --dtype uint8" if a.dtype != np.uint8 and (
            a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3))) else ""
        raise UsageError(f"cannot write {path}: JPEG stores uint8 gray (height, width) or RGB "
                         f"(height, width, 3) images; got shape {a.shape} and dtype {a.dtype}; "
                         f"write a .tif or .npy file instead{hint}")
    if not (0 < a.shape[0] <= 65535 and 0 < a.shape[1] <= 65535):
        raise UsageError(f"cannot write {path}: JPEG images are 1 to 65535 pixels on a side; "
                         f"got shape {a.shape}; write a .tif or .npy file instead")
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1
                                                 else a))

    def write_jpeg(f):
        with notes:
            image.save(f, format="JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4
    return write_jpeg


def _level_paths(out, levels):
    if levels is None:
        return [out]
    stem, ext = os.path.splitext(out)
    return [f"{stem}_{k}{ext}" for k in range(1, levels + 1)]


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total, enabled):
        self.total = total
        self.enabled = enabled and total > 1 and sys.stderr.isatty()
        self.t0 = time.perf_counter()

    def update(self, done, what):
        if not self.enabled:
            return
        width = 30
        fill = int(width * done / self.total)
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} {what} "
                         f"{time.perf_counter() - self.t0:6.1f} s")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _warn(message):
    print(f"{PROG} downsample: warning: {_one_line(message)}", file=sys.stderr)


def run_downsample(args, out=print):
    """``fastpool downsample``: pool IN and write OUT (or OUT_1, OUT_2, ...)."""
    import fastpool

    in_ext = _format_of(args.input, "input")
    out_ext = _format_of(args.output, "output")
    if args.levels is not None and args.levels < 1:
        raise UsageError(f"--levels must be >= 1, got {args.levels}")
    max_pixels = MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if max_pixels < 0:
        raise UsageError(f"--max-pixels must be >= 0 (0: no limit), got {max_pixels}")
    methods = _downsample_methods()
    if args.method not in methods:
        raise UsageError(f"unknown method {args.method!r}; choose from {', '.join(methods)}")
    dtype = None
    if args.dtype is not None:
        try:
            dtype = np.dtype(args.dtype)
        except TypeError:
            raise UsageError(f"--dtype: unknown dtype {args.dtype!r}") from None
    paths = _level_paths(args.output, args.levels)
    for p in paths:
        if os.path.exists(args.input) and _same_file(p, args.input):
            raise UsageError(f"output {p} is the input file; refusing to overwrite it")
        directory = os.path.dirname(os.path.abspath(p))
        if not os.path.isdir(directory):
            raise FileError(f"cannot write {p}: directory {directory} does not exist")
    _require(in_ext, args.input, "input")
    _require(out_ext, args.output, "output")
    if not os.path.exists(args.input):
        raise FileError(f"cannot read {args.input}: no such file")
    if os.path.isdir(args.input):
        raise FileError(f"cannot read {args.input}: it is a directory")

    image = _read(args.input, in_ext, max_pixels)
    axes = tuple(args.axes) if args.axes is not None else image.pooled
    sizes = args.size
    if len(sizes) == 1:
        sizes = sizes[0]
    func = getattr(fastpool, f"{args.method}_pool")
    count = args.levels or 1
    notes = _Notes()
    # Every level is computed and checked against the output format before anything
    # is written: a bad argument or an unwritable result leaves no file behind.
    progress = _Progress(count, not args.quiet)
    jobs = []
    try:
        for level in range(1, count + 1):
            if isinstance(sizes, int):
                size = sizes ** level
            else:
                size = tuple(s ** level for s in sizes)
            result = func(image.data, size, axes=axes, ceil_mode=not args.crop, output=dtype)
            path = paths[level - 1]
            jobs.append((path, result, _writer(result, out_ext, path, image.colour, notes)))
            progress.update(level, "levels")
    finally:
        progress.close()
    for path, result, write in jobs:
        try:
            _write_atomic(path, write)
        except OSError as exc:
            raise FileError(f"cannot write {path}: {exc.strerror or _one_line(exc)}") from None
        except (UsageError, FileError):
            raise
        except Exception as exc:  # an encoder's error (tifffile, Pillow)
            raise FileError(f"cannot write {path}: {_one_line(exc) or type(exc).__name__}"
                            ) from None
        if not args.quiet:
            out(f"{path}: {_shape_text(result.shape)} {result.dtype}")
    if not args.quiet:
        for message in image.notes + notes.messages:
            _warn(message)
    return 0


# =========================================================================== main

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_list(text):
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _flatten(lists):
    return None if lists is None else [v for sub in lists for v in sub]


def build_parser():
    parser = _Parser(prog=PROG, description="fastpool: fast N-dimensional pooling "
                     "(block reduction / downsampling) of NumPy arrays.")
    from fastpool import __version__
    parser.add_argument("--version", action="version", version=f"fastpool {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="pool the built-in test images with every method, write a PNG "
        "comparison sheet and print timings",
        description="Pool the built-in test images (zone plate, Siemens star, natural "
        "scene) with every available method at 2x2 and 4x4, write a PNG comparison sheet "
        f"({DEMO_SHEET}) and print a timing table against the installed peers.")
    demo.add_argument("--out", default=".", metavar="DIR",
                      help="directory for the comparison sheet (default: current directory)")
    demo.add_argument("--size", type=_positive_int, default=256, metavar="N",
                      help="side of the test images in pixels (default: 256)")
    demo.add_argument("--bench-size", type=int, default=4096, metavar="N",
                      help="side of the timing image (default: 4096; 0 skips the timings)")

    sub.add_parser("info", help="version, OpenMP, threads and optional packages",
                   description="Print fastpool's version, whether OpenMP is on, the "
                   "default thread count and which optional packages are installed.")

    ds = sub.add_parser(
        "downsample", help="pool an image or array file (.npy, .png, .tif, .jpg)",
        description="Pool IN with --method over windows of --size and write OUT. With "
        "--levels N write OUT_1 ... OUT_N instead, level k pooled by size**k (every level "
        "computed from IN directly). Partial windows at the far edges are pooled over the "
        "pixels they hold (every input pixel counts) unless --crop is given. File types: "
        ".npy; .png (built in: 8/16-bit gray, gray+alpha, RGB, RGBA); .tif/.tiff (needs "
        "tifffile: any dtype, multi-page files and volumes as N-D arrays); .jpg/.jpeg "
        "(needs Pillow: 8-bit gray or RGB). The dtype is kept unless --dtype is given. "
        "PNG and JPEG input is pooled over rows and columns, TIFF input over every axis "
        "but colour samples and channels, .npy input over all axes, unless --axes is "
        "given. The input is never overwritten; each output is written to a temporary "
        "file and renamed, so a failure leaves no partial file.")
    ds.add_argument("input", metavar="IN", help="input file (.npy, .png, .tif/.tiff, "
                    ".jpg/.jpeg)")
    ds.add_argument("output", metavar="OUT", help="output file (.npy, .png, .tif/.tiff, "
                    ".jpg/.jpeg)")
    ds.add_argument("--method", default="avg",
                    help=f"pooling method (default: avg; one of {', '.join(DOWNSAMPLE_METHODS)} "
                    "where available)")
    ds.add_argument("--size", type=_int_list, action="append", metavar="K",
                    help="window size and stride: one int, or one per pooled axis "
                    "(e.g. 2 or 2,2,1; default 2)")
    ds.add_argument("--levels", type=int, metavar="N",
                    help="write N levels OUT_1 ... OUT_N (level k pooled by size**k)")
    ds.add_argument("--axes", type=_int_list, action="append", metavar="AXES",
                    help="pooled axes, e.g. 0,1 or -2,-1 (default: rows and columns of a "
                    "PNG or JPEG, all but colour axes of a TIFF, all axes of a .npy)")
    ds.add_argument("--dtype", help="output dtype (e.g. uint8, float32); integer results "
                    "are rounded half to even and saturated")
    ds.add_argument("--max-pixels", type=int, metavar="N",
                    help=f"refuse PNG, JPEG and TIFF files whose header declares more than N "
                    f"pixels (voxels and pages included, colour samples not), before "
                    f"decoding anything (default: {MAX_PIXELS} = 2**29; 0: no limit)")
    ds.add_argument("--crop", action="store_true",
                    help="drop partial windows at the far edges instead of pooling them")
    ds.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return parser


def main(argv=None):
    """Entry point of the ``fastpool`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = PROG if args.command is None else f"{PROG} {args.command}"
    try:
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "demo":
            if args.size < 16:
                raise UsageError(f"--size must be at least 16, got {args.size}")
            if args.bench_size < 0 or 0 < args.bench_size < 8:
                raise UsageError(f"--bench-size must be 0 or at least 8, got {args.bench_size}")
            run_demo(args.out, args.size, args.bench_size)
        elif args.command == "info":
            run_info()
        elif args.command == "downsample":
            args.size = _flatten(args.size) or [2]
            args.axes = _flatten(args.axes)
            try:
                run_downsample(args)
            except (ValueError, TypeError) as exc:
                # The library's own checks (window larger than the image, bad axes, ...)
                raise UsageError(str(exc)) from None
        return 0
    except (UsageError, FileError, DependencyError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
