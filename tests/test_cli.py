"""The ``fastpool`` command line, end to end through ``python -m fastpool``, plus its
stdlib PNG codec, bitmap font and built-in test images."""

import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import fastpool
from fastpool import _cli
from fastpool._cli import PNGError, decode_png, encode_png, read_png, write_png
from fastpool._testimages import natural, siemens_star, zone_plate


def run(*args, cwd=None, timeout=120):
    """``python -m fastpool ARGS``: (returncode, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "fastpool", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def png_chunks(blob):
    """[(type, data)] of a PNG, checking the signature and every CRC."""
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        data = blob[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", blob[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks.append((kind, data))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def assert_user_error(code, out, err, status):
    assert code == status, (code, out, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fastpool"), err


# --------------------------------------------------------------------------- demo

def test_demo_writes_png_sheet_and_timing_table(tmp_path):
    code, out, err = run("demo", "--out", tmp_path, "--size", 32, "--bench-size", 64)
    assert code == 0, err
    assert "warning" not in err.lower() and "Traceback" not in err
    path = tmp_path / _cli.DEMO_SHEET
    assert str(path) in out
    blob = path.read_bytes()
    chunks = png_chunks(blob)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(raw) == height * (3 * width + 1)
    sheet = read_png(path)
    assert sheet.shape == (height, width, 3) and sheet.dtype == np.uint8
    # 32-px tiles with a 4-px gap: original, subsample and every method side by side
    methods = len(_cli.available_demo_methods())
    columns = min(8, 2 + methods)
    assert width == 4 + columns * (32 + 4)
    assert height > 3 * 2 * 32
    # every method's name is on the sheet (drawn in white above its tile)
    assert "max, min, avg, sum" in out
    # the timing table: fastpool and the always-present NumPy peer, no failed check
    assert "fastpool" in out and "numpy" in out and "float32 max 2x2" in out
    assert "WARNING" not in out


def test_demo_default_out_is_cwd(tmp_path):
    code, out, err = run("demo", "--size", 16, "--bench-size", 0, cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / _cli.DEMO_SHEET).is_file()
    assert "Timings" not in out
    assert [p.name for p in tmp_path.iterdir()] == [_cli.DEMO_SHEET]  # no temp files


def test_demo_sheet_in_process_has_labels():
    sheet, shown = _cli.build_sheet(32)
    assert shown[:4] == ["max", "min", "avg", "sum"]
    # 32-px tiles, 4-px gaps, 1x font: below the first section's header (2x font,
    # 20 px), the label of the third tile ("max 2x2", clipped to the tile's 32 px)
    label = _cli.render_text("max 2x2")[:, :32]
    y, x = 4 + 20 + 2, 4 + 2 * 36
    patch = sheet[y:y + 7, x:x + 36, 0] == 255
    assert np.array_equal(patch[:, :32], label)
    assert not patch[:, 32:].any()  # clipped: nothing drawn over the gap


def test_demo_bad_out_dir(tmp_path):
    code, out, err = run("demo", "--out", tmp_path / "missing", "--bench-size", 0)
    assert_user_error(code, out, err, 1)


# --------------------------------------------------------------------------- info

def test_info():
    code, out, err = run("info")
    assert code == 0, err
    assert f"fastpool {fastpool.__version__}" in out
    assert ("OpenMP: on" if fastpool.openmp_enabled() else "OpenMP: off") in out
    assert f"default threads: {fastpool.get_workers()}" in out
    assert "torch" in out and "skimage" in out


def test_version_and_help():
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"fastpool {fastpool.__version__}"
    code, out, _ = run("downsample", "--help")
    assert code == 0 and "--levels" in out


@pytest.mark.skipif(shutil.which("fastpool") is None, reason="console script not on PATH")
def test_console_script_is_python_m():
    proc = subprocess.run(["fastpool", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"fastpool {fastpool.__version__}"


# --------------------------------------------------------------------------- downsample

def block_mean(x, k):
    """NumPy reference: mean of k x k blocks of the first two axes (divisible shape)."""
    h, w = x.shape[0] // k, x.shape[1] // k
    return x.reshape(h, k, w, k, *x.shape[2:]).astype(np.float64).mean(axis=(1, 3))


def test_downsample_npy(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 12, 3)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    code, out, err = run("downsample", tmp_path / "in.npy", tmp_path / "out.npy",
                         "--method", "avg", "--size", 2, "--axes", "0,1")
    assert code == 0, err
    y = np.load(tmp_path / "out.npy")
    assert y.shape == (4, 6, 3) and y.dtype == np.float32
    assert np.array_equal(y, fastpool.avg_pool(x, 2, axes=(0, 1), ceil_mode=True))
    np.testing.assert_allclose(y, block_mean(x, 2), rtol=1e-6)
    assert "out.npy: 4x6x3 float32" in out


def test_downsample_npy_all_axes_and_partial_windows(tmp_path):
    x = np.arange(7 * 10, dtype=np.int16).reshape(7, 10)
    np.save(tmp_path / "in.npy", x)
    code, _, err = run("downsample", tmp_path / "in.npy", tmp_path / "out.npy",
                       "--method", "max", "--size", 3)
    assert code == 0, err
    y = np.load(tmp_path / "out.npy")
    # every pixel counts: the last row and column of windows are partial
    assert y.shape == (3, 4) and y.dtype == np.int16
    assert np.array_equal(y, fastpool.max_pool(x, 3, ceil_mode=True))
    assert y[-1, -1] == x.max()
    code, _, err = run("downsample", tmp_path / "in.npy", tmp_path / "crop.npy",
                       "--method", "max", "--size", 3, "--crop")
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "crop.npy"), fastpool.max_pool(x, 3))


def test_downsample_levels(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 1000, (16, 24), dtype=np.uint16)
    np.save(tmp_path / "in.npy", x)
    code, out, err = run("downsample", tmp_path / "in.npy", tmp_path / "pyr.npy",
                         "--levels", 3, "--size", 2)
    assert code == 0, err
    for k in (1, 2, 3):
        y = np.load(tmp_path / f"pyr_{k}.npy")
        # level k pools the input directly by 2**k: no rounding drift
        expected = np.rint(block_mean(x, 2 ** k)).astype(np.uint16)
        assert y.dtype == np.uint16 and np.array_equal(y, expected), k
        assert np.array_equal(y, fastpool.avg_pool(x, 2 ** k, ceil_mode=True))
    assert not (tmp_path / "pyr.npy").exists()


@pytest.mark.parametrize("kind", ["gray", "rgb", "rgba", "gray16"])
def test_downsample_png_roundtrip(tmp_path, kind):
    img = {"gray": zone_plate(64), "rgb": natural(64),
           "rgba": np.dstack([natural(64), zone_plate(64)]),
           "gray16": zone_plate(64).astype(np.uint16) * 257}[kind]
    write_png(tmp_path / "in.png", img)
    code, _, err = run("downsample", tmp_path / "in.png", tmp_path / "out.png",
                       "--method", "avg", "--size", 2)
    assert code == 0, err
    y = read_png(tmp_path / "out.png")
    assert y.shape == (32, 32) + img.shape[2:] and y.dtype == img.dtype
    axes = (0, 1) if img.ndim == 3 else None
    assert np.array_equal(y, fastpool.avg_pool(img, 2, axes=axes, ceil_mode=True))
    assert np.array_equal(y, np.rint(block_mean(img, 2)).astype(img.dtype))


def test_downsample_png_large_matches_numpy(tmp_path):
    # large enough for the kernels to run on several threads
    img = natural(384)
    write_png(tmp_path / "in.png", img)
    code, _, err = run("downsample", tmp_path / "in.png", tmp_path / "out.png",
                       "--method", "max", "--size", 4)
    assert code == 0, err
    y = read_png(tmp_path / "out.png")
    assert np.array_equal(y, img.reshape(96, 4, 96, 4, 3).max(axis=(1, 3)))


def test_downsample_png_to_npy_sum_dtype(tmp_path):
    img = natural(40)
    write_png(tmp_path / "in.png", img)
    code, _, err = run("downsample", tmp_path / "in.png", tmp_path / "out.npy",
                       "--method", "sum", "--size", 4)
    assert code == 0, err
    y = np.load(tmp_path / "out.npy")
    assert y.dtype == np.uint64 and y.shape == (10, 10, 3)
    assert np.array_equal(y, img.reshape(10, 4, 10, 4, 3).sum(axis=(1, 3), dtype=np.uint64))


def test_downsample_npy_to_png_with_dtype(tmp_path):
    x = np.linspace(0, 255, 64 * 64).reshape(64, 64)
    np.save(tmp_path / "in.npy", x)
    code, _, err = run("downsample", tmp_path / "in.npy", tmp_path / "out.png",
                       "--dtype", "uint8")
    assert code == 0, err
    y = read_png(tmp_path / "out.png")
    assert y.dtype == np.uint8 and y.shape == (32, 32)
    assert np.array_equal(y, fastpool.avg_pool(x, 2, output=np.uint8))


def _bad_cases(tmp):
    """(arguments, expected status, files that must not exist afterwards)."""
    out = tmp / "out.npy"
    return {
        "missing input": (["downsample", tmp / "nope.npy", out], 1),
        "not a npy": (["downsample", tmp / "garbage.npy", out], 1),
        "not a png": (["downsample", tmp / "garbage.png", tmp / "out.png"], 1),
        "truncated npy": (["downsample", tmp / "truncated.npy", out], 1),
        "unsupported input type": (["downsample", tmp / "in.tif", out], 2),
        "unsupported output type": (["downsample", tmp / "in.npy", tmp / "out.jpg"], 2),
        "output is input": (["downsample", tmp / "in.npy", tmp / "in.npy"], 2),
        "output is input by another path": (
            ["downsample", tmp / "in.npy", tmp / "sub" / ".." / "in.npy"], 2),
        "unknown method": (["downsample", tmp / "in.npy", out, "--method", "nope"], 2),
        "size 0": (["downsample", tmp / "in.npy", out, "--size", 0], 2),
        "size not an int": (["downsample", tmp / "in.npy", out, "--size", "two"], 2),
        "window larger than input": (["downsample", tmp / "in.npy", out, "--size", 20,
                                      "--crop"], 2),
        "axis out of range": (["downsample", tmp / "in.npy", out, "--axes", 5], 2),
        "levels 0": (["downsample", tmp / "in.npy", out, "--levels", 0], 2),
        "float to png": (["downsample", tmp / "in.npy", tmp / "out.png"], 2),
        "levels, float to png": (["downsample", tmp / "in.npy", tmp / "out.png",
                                  "--levels", 2], 2),
        "bad dtype": (["downsample", tmp / "in.npy", out, "--dtype", "complex64"], 2),
        "missing OUT": (["downsample", tmp / "in.npy"], 2),
        "output directory missing": (["downsample", tmp / "in.npy", tmp / "no" / "o.npy"], 1),
        "unknown command": (["frobnicate"], 2),
        "demo size too small": (["demo", "--size", 2], 2),
    }


BAD = sorted(_bad_cases(__import__("pathlib").Path("/")))


@pytest.mark.parametrize("case", BAD)
def test_downsample_bad_input(tmp_path, case):
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "in.npy", np.ones((6, 6)))
    (tmp_path / "garbage.npy").write_bytes(b"definitely not numpy")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (tmp_path / "in.tif").write_bytes(b"II*\x00")
    full = (tmp_path / "in.npy").read_bytes()
    (tmp_path / "truncated.npy").write_bytes(full[:-10])
    before = sorted(p.name for p in tmp_path.iterdir())
    args, status = _bad_cases(tmp_path)[case]
    code, out, err = run(*args, cwd=tmp_path)
    assert_user_error(code, out, err, status)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert (tmp_path / "in.npy").read_bytes() == full  # input untouched


# --------------------------------------------------------------------------- PNG codec

def _reference_png(image, filters):
    """A PNG written by a slow reference encoder using the given filter per row.

    ``image`` is (H, W, C) uint8; ``filters`` holds one type (0-4) per row.
    """
    h, w, c = image.shape
    rows = image.reshape(h, w * c).astype(int)
    out = bytearray()
    for r in range(h):
        t = filters[r]
        out.append(t)
        for i in range(w * c):
            x = rows[r, i]
            a = rows[r, i - c] if i >= c else 0
            b = rows[r - 1, i] if r else 0
            cc = rows[r - 1, i - c] if r and i >= c else 0
            if t == 0:
                pred = 0
            elif t == 1:
                pred = a
            elif t == 2:
                pred = b
            elif t == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            out.append((x - pred) % 256)
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _cli._chunk(b"IHDR", ihdr)
            + _cli._chunk(b"tEXt", b"Comment\x00ancillary chunks are skipped")
            + _cli._chunk(b"IDAT", zlib.compress(bytes(out))) + _cli._chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_decodes_every_filter_type(channels):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 256, (15, 9, channels), dtype=np.uint8)
    image[5:9] = natural(32)[5:9, :9, :1]  # smooth rows next to noisy ones
    filters = [0, 1, 2, 3, 4] * 3
    decoded = decode_png(_reference_png(image, filters))
    assert np.array_equal(decoded, image[..., 0] if channels == 1 else image)
    only_sub_up = decode_png(_reference_png(image, [1, 2, 0] * 5))
    assert np.array_equal(only_sub_up, image[..., 0] if channels == 1 else image)


@pytest.mark.parametrize("shape,dtype", [((5, 7), np.uint8), ((5, 7, 1), np.uint8),
                                         ((5, 7, 2), np.uint8), ((5, 7, 3), np.uint8),
                                         ((5, 7, 4), np.uint8), ((6, 3), np.uint16),
                                         ((6, 3, 3), np.uint16), ((1, 1), np.uint8)])
def test_png_roundtrip(shape, dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    back = decode_png(encode_png(image))
    expected = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    assert back.dtype == dtype and np.array_equal(back, expected)


def test_png_roundtrip_noncontiguous_and_bigendian():
    image = natural(40)[::-2, 1::2]
    assert np.array_equal(decode_png(encode_png(image)), image)
    big = np.arange(12, dtype=">u2").reshape(3, 4) * 5000
    assert np.array_equal(decode_png(encode_png(big)), big)


def test_png_is_readable_by_pillow():
    Image = pytest.importorskip("PIL.Image")
    import io
    for image in (natural(33), zone_plate(20), zone_plate(20).astype(np.uint16) * 200):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(image)))), image)
    # and Pillow's adaptive filters (Paeth included) decode here
    buf = io.BytesIO()
    Image.fromarray(natural(64)).save(buf, "PNG")
    assert np.array_equal(decode_png(buf.getvalue()), natural(64))


def test_png_errors():
    good = encode_png(zone_plate(16))
    with pytest.raises(PNGError, match="signature"):
        decode_png(b"GIF89a" + good[6:])
    corrupt = bytearray(good)
    corrupt[40] ^= 0xFF  # inside IDAT
    with pytest.raises(PNGError, match="CRC"):
        decode_png(bytes(corrupt))
    with pytest.raises(PNGError, match="truncated|IEND"):
        decode_png(good[:-12])
    interlaced = bytearray(good)
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 1)
    interlaced[8:33] = _cli._chunk(b"IHDR", ihdr)
    with pytest.raises(PNGError, match="interlaced"):
        decode_png(bytes(interlaced))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(np.zeros((4, 4, 5), np.uint8))


# --------------------------------------------------------------------------- font, images

def test_font_glyphs_are_5x7():
    for char, rows in _cli._FONT.items():
        assert len(rows) == 14, char
        assert all(int(rows[i:i + 2], 16) < 32 for i in range(0, 14, 2)), char
    for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -.:()x/":
        assert char in _cli._FONT
    assert _cli.render_text("ab", 2).shape == (14, 24)
    assert np.array_equal(_cli.render_text("\u00e9"), _cli.render_text("?"))


def test_test_images():
    z, s, n = zone_plate(64), siemens_star(64), natural(64)
    assert z.shape == s.shape == (64, 64) and n.shape == (64, 64, 3)
    assert z.dtype == s.dtype == n.dtype == np.uint8
    assert z[32, 32] == 255 and s[0, 0] == 128
    assert np.array_equal(n, natural(64)) and not np.array_equal(n, natural(64, seed=2))
    assert n.std() > 20  # not a flat image
    with pytest.raises(ValueError):
        zone_plate(2)
    with pytest.raises(TypeError):
        natural(64.0)


def test_written_files_get_umask_permissions(tmp_path):
    """Atomic writes go through mkstemp (0600); the result has normal permissions."""
    import os
    import stat

    target = tmp_path / "out.bin"
    old = os.umask(0o022)
    try:
        _cli._write_atomic(target, b"abc")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"abc"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
