"""The ``fastpool`` command line, end to end through ``python -m fastpool``, plus its
stdlib PNG codec, bitmap font and built-in test images."""

import io
import os
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


def run(*args, cwd=None, timeout=120, env=None):
    """``python -m fastpool ARGS``: (returncode, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "fastpool", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)
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
    for name in ("scikit-image", "opencv (cv2)", "tinybrain", "scipy", "dask", "distributed",
                 "zarr", "tqdm", "tifffile", "Pillow", "xarray"):
        assert f"  {name}" in out, name
    assert "downsample file types: .npy (built in), .png (built in), .tif/.tiff" in out
    from importlib.metadata import version
    for module, dist in (("tifffile", "tifffile"), ("PIL", "pillow")):
        line = next(line for line in out.splitlines() if line.lstrip().startswith(
            "Pillow" if module == "PIL" else module))
        try:
            __import__(module)
        except ImportError:
            assert "not installed" in line
        else:
            assert version(dist) in line


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
    assert err == ""  # stderr is not a terminal: no progress bar
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


# --------------------------------------------------------------------------- TIFF, JPEG

def test_downsample_tiff_2d_uint16(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    x = np.random.default_rng(2).integers(0, 65536, (17, 12), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", x)
    code, out, err = run("downsample", tmp_path / "in.tif", tmp_path / "out.tiff",
                         "--method", "avg", "--size", 2)
    assert code == 0, err
    assert err == ""
    y = tifffile.imread(tmp_path / "out.tiff")
    # the last row of windows is partial: every pixel counts
    assert y.shape == (9, 6) and y.dtype == np.uint16
    assert np.array_equal(y, fastpool.avg_pool(x, 2, ceil_mode=True))
    assert "out.tiff: 9x6 uint16" in out


def test_downsample_tiff_volume_float32(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    x = np.random.default_rng(3).standard_normal((8, 12, 10)).astype(np.float32)
    tifffile.imwrite(tmp_path / "vol.tif", x)  # 8 pages of 12 x 10
    # --max-pixels counts every voxel (pages included): exactly at the limit is fine
    code, _, err = run("downsample", tmp_path / "vol.tif", tmp_path / "out.tif",
                       "--method", "max", "--size", 2, "--max-pixels", x.size)
    assert code == 0, err
    y = tifffile.imread(tmp_path / "out.tif")
    assert y.shape == (4, 6, 5) and y.dtype == np.float32
    assert np.array_equal(y, fastpool.max_pool(x, 2, ceil_mode=True))
    assert np.array_equal(y, x.reshape(4, 2, 6, 2, 5, 2).max(axis=(1, 3, 5)))
    code, _, err = run("downsample", tmp_path / "vol.tif", tmp_path / "out.tif",
                       "--max-pixels", x.size - 1)
    assert_user_error(code, "", err, 1)
    assert "8x12x10 = 960 pixels" in err


@pytest.mark.parametrize("planar", [False, True])
def test_downsample_tiff_rgb_uint8(tmp_path, planar):
    tifffile = pytest.importorskip("tifffile")
    img = natural(32)[:, :24]
    stored = np.moveaxis(img, 2, 0).copy() if planar else img
    tifffile.imwrite(tmp_path / "rgb.tif", stored, photometric="rgb",
                     planarconfig="separate" if planar else "contig")
    # colour samples are not pooled and not counted by --max-pixels
    code, _, err = run("downsample", tmp_path / "rgb.tif", tmp_path / "out.tif",
                       "--method", "avg", "--size", 4, "--max-pixels", 32 * 24)
    assert code == 0, err
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        series = tif.series[0]
        assert series.axes == ("SYX" if planar else "YXS")
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        y = series.asarray()
    axes = (1, 2) if planar else (0, 1)
    assert y.dtype == np.uint8 and y.shape == ((3, 8, 6) if planar else (8, 6, 3))
    assert np.array_equal(y, fastpool.avg_pool(stored, 4, axes=axes, ceil_mode=True))
    assert np.array_equal(y if not planar else np.moveaxis(y, 0, 2),
                          np.rint(block_mean(img, 4)).astype(np.uint8))


def test_downsample_png_to_tiff_and_back(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    img = natural(24)
    write_png(tmp_path / "in.png", img)
    code, _, err = run("downsample", tmp_path / "in.png", tmp_path / "mid.tif", "--size", 2)
    assert code == 0, err
    mid = tifffile.imread(tmp_path / "mid.tif")
    assert np.array_equal(mid, fastpool.avg_pool(img, 2, axes=(0, 1), ceil_mode=True))
    code, _, err = run("downsample", tmp_path / "mid.tif", tmp_path / "out.png",
                       "--method", "min", "--size", 3)
    assert code == 0, err
    assert np.array_equal(read_png(tmp_path / "out.png"),
                          fastpool.min_pool(mid, 3, axes=(0, 1), ceil_mode=True))


def _jpeg(image, quality=95):
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _decode_jpeg(path):
    from PIL import Image
    with Image.open(path) as im:
        return np.array(im)


@pytest.mark.parametrize("kind", ["gray", "rgb"])
def test_downsample_jpeg(tmp_path, kind):
    pytest.importorskip("PIL")
    smooth = natural(64)
    img = smooth[..., 1].copy() if kind == "gray" else smooth
    (tmp_path / "in.jpg").write_bytes(_jpeg(img))
    x = _decode_jpeg(tmp_path / "in.jpg")  # what the command reads
    assert x.shape == img.shape
    expected = fastpool.avg_pool(x, 2, axes=(0, 1) if x.ndim == 3 else None, ceil_mode=True)
    # JPEG to JPEG: shape and dtype exact, values within JPEG's loss
    code, out, err = run("downsample", tmp_path / "in.jpg", tmp_path / "out.jpeg")
    assert code == 0, err
    y = _decode_jpeg(tmp_path / "out.jpeg")
    assert y.shape == (32, 32) + img.shape[2:] and y.dtype == np.uint8
    diff = np.abs(y.astype(int) - expected)
    assert diff.mean() < 4 and diff.max() < 32, (diff.mean(), diff.max())
    # JPEG to PNG: lossless output, so exactly the pooled decoded input
    code, _, err = run("downsample", tmp_path / "in.jpg", tmp_path / "out.png")
    assert code == 0, err
    assert np.array_equal(read_png(tmp_path / "out.png"), expected)


def test_downsample_tiff_levels_with_progress_bar(tmp_path):
    """--levels on a TIFF volume writes every level, with a progress bar on stderr
    when stderr is a terminal (test_downsample_levels: none when it is not)."""
    tifffile = pytest.importorskip("tifffile")
    pty = pytest.importorskip("pty")
    x = np.random.default_rng(4).integers(0, 4000, (8, 16, 12), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "vol.tif", x)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "fastpool", "downsample",
                             str(tmp_path / "vol.tif"), str(tmp_path / "pyr.tif"),
                             "--levels", "2", "--method", "max"],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    terminal = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        terminal += data
    os.close(master)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0, terminal
    assert b"1/2 levels" in terminal and b"2/2 levels" in terminal
    assert b"Traceback" not in terminal
    for k, shape in ((1, (4, 8, 6)), (2, (2, 4, 3))):
        y = tifffile.imread(tmp_path / f"pyr_{k}.tif")
        assert y.shape == shape and y.dtype == np.uint16
        assert np.array_equal(y, fastpool.max_pool(x, 2 ** k, ceil_mode=True))
        assert f"pyr_{k}.tif: {'x'.join(map(str, shape))} uint16" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyr_1.tif", "pyr_2.tif", "vol.tif"]


def _without(tmp_path, *modules):
    """An environment where importing ``modules`` fails as if they were not installed."""
    shadow = tmp_path / "shadow"
    shadow.mkdir(exist_ok=True)
    for module in modules:
        (shadow / module).mkdir()
        (shadow / module / "__init__.py").write_text(
            f"raise ModuleNotFoundError({f'No module named {module!r}'!r}, name={module!r})\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("role,ext", [("input", ".tif"), ("output", ".tiff"),
                                      ("input", ".jpg"), ("output", ".jpeg")])
def test_downsample_missing_optional_package(tmp_path, role, ext):
    package = "tifffile" if "tif" in ext else "Pillow"
    env = _without(tmp_path, "tifffile", "PIL")
    write_png(tmp_path / "in.png", zone_plate(16))
    src = tmp_path / f"in{ext}"
    src.write_bytes(b"whatever")
    args = [src, tmp_path / "out.png"] if role == "input" else \
        [tmp_path / "in.png", tmp_path / f"out{ext}"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run("downsample", *args, env=env)
    assert_user_error(code, out, err, 1)
    assert f"{role} " in err and f"pip install {package}" in err and "not installed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if ext == ".tif":  # .npy and .png need neither
        code, _, err = run("downsample", tmp_path / "in.png", tmp_path / "out.npy", env=env)
        assert code == 0, err


def test_write_atomic_failure_leaves_nothing(tmp_path):
    (tmp_path / "keep.bin").write_bytes(b"old")

    def failing(f):
        f.write(b"partial data")
        raise RuntimeError("encoder failed")

    for name in ("new.bin", "keep.bin"):
        with pytest.raises(RuntimeError):
            _cli._write_atomic(tmp_path / name, failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bin"]
    assert (tmp_path / "keep.bin").read_bytes() == b"old"
    _cli._write_atomic(tmp_path / "new.bin", lambda f: f.write(b"whole"))
    assert (tmp_path / "new.bin").read_bytes() == b"whole"


def test_png_inflate_is_bounded():
    """A PNG whose data inflates to more than its header declares is refused without
    inflating it all; max_pixels refuses a header before any inflating."""
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)
    liar = (_cli.PNG_SIGNATURE + _cli._chunk(b"IHDR", ihdr)
            + _cli._chunk(b"IDAT", ZEROS_8MB)
            + _cli._chunk(b"IEND", b""))
    with pytest.raises(PNGError, match="more than the 272 bytes"):
        decode_png(liar)
    blob = encode_png(zone_plate(16))
    assert decode_png(blob, max_pixels=256).shape == (16, 16)
    with pytest.raises(PNGError, match="max_pixels=255"):
        decode_png(blob, max_pixels=255)


def _bad_cases(tmp):
    """(arguments, expected status, files that must not exist afterwards)."""
    out = tmp / "out.npy"
    return {
        "missing input": (["downsample", tmp / "nope.npy", out], 1),
        "not a npy": (["downsample", tmp / "garbage.npy", out], 1),
        "not a png": (["downsample", tmp / "garbage.png", tmp / "out.png"], 1),
        "truncated npy": (["downsample", tmp / "truncated.npy", out], 1),
        "huge npy header": (["downsample", tmp / "huge.npy", out], 1),
        "unsupported input type": (["downsample", tmp / "in.bmp", out], 2),
        "unsupported output type": (["downsample", tmp / "in.npy", tmp / "out.gif"], 2),
        "bad max-pixels": (["downsample", tmp / "in.npy", out, "--max-pixels", -1], 2),
        "float to jpg": (["downsample", tmp / "in.npy", tmp / "out.jpg"], 2),
        # image files, written by _write_image_files
        "truncated png": (["downsample", tmp / "truncated.png", tmp / "out.png"], 1),
        "png over max-pixels": (["downsample", tmp / "in.png", tmp / "out.png",
                                 "--max-pixels", 63], 1),
        "png bomb": (["downsample", tmp / "bomb.png", tmp / "out.png"], 1),
        "tif header only": (["downsample", tmp / "in.tif", tmp / "out.tif"], 1),
        "not a tif": (["downsample", tmp / "garbage.tif", tmp / "out.tif"], 1),
        "truncated tif": (["downsample", tmp / "truncated.tif", tmp / "out.tif"], 1),
        "corrupt compressed tif": (["downsample", tmp / "corrupt.tif", tmp / "out.tif"], 1),
        "tif over max-pixels": (["downsample", tmp / "good.tif", tmp / "out.tif",
                                 "--max-pixels", 255], 1),
        "tif output is input": (["downsample", tmp / "good.tif", tmp / "good.tif"], 2),
        "tif output is input at level 1": (["downsample", tmp / "good_1.tif",
                                            tmp / "good.tif", "--levels", 2], 2),
        "tif size list too long": (["downsample", tmp / "good.tif", tmp / "out.tif",
                                    "--size", "2,2,2"], 2),
        "uint16 tif to jpg": (["downsample", tmp / "good.tif", tmp / "out.jpg"], 2),
        "not a jpg": (["downsample", tmp / "garbage.jpg", tmp / "out.jpg"], 1),
        "png named jpg": (["downsample", tmp / "png.jpg", tmp / "out.png"], 1),
        "truncated jpg": (["downsample", tmp / "truncated.jpg", tmp / "out.jpg"], 1),
        "jpg over max-pixels": (["downsample", tmp / "good.jpg", tmp / "out.jpg",
                                 "--max-pixels", 255], 1),
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
ZEROS_8MB = zlib.compress(bytes(8 << 20), 9)  # 8 kB inflating to 8 MB


def _write_image_files(tmp):
    """The image files of the bad cases (TIFF ones when tifffile is installed, JPEG
    ones when Pillow is)."""
    write_png(tmp / "in.png", zone_plate(16)[:8, :8])
    blob = encode_png(zone_plate(16))
    (tmp / "truncated.png").write_bytes(blob[:len(blob) // 2])
    # declares 100000 x 100000 pixels (10 GB); refused on its header alone
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    (tmp / "bomb.png").write_bytes(_cli.PNG_SIGNATURE + _cli._chunk(b"IHDR", ihdr)
                                   + _cli._chunk(b"IDAT", ZEROS_8MB)
                                   + _cli._chunk(b"IEND", b""))
    with open(tmp / "huge.npy", "wb") as f:  # a tiny file declaring an 8 TB array
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
        f.write(bytes(64))
    (tmp / "garbage.tif").write_bytes(b"this is not a TIFF file at all")
    (tmp / "garbage.jpg").write_bytes(b"\xff\xd8 this is not a JPEG file either")
    (tmp / "png.jpg").write_bytes(encode_png(zone_plate(16)))
    try:
        import tifffile
    except ImportError:
        pass
    else:
        x = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 97
        tifffile.imwrite(tmp / "good.tif", x)
        shutil.copy(tmp / "good.tif", tmp / "good_1.tif")
        blob = (tmp / "good.tif").read_bytes()
        (tmp / "truncated.tif").write_bytes(blob[:len(blob) * 3 // 4])
        buf = io.BytesIO()
        tifffile.imwrite(buf, np.random.default_rng(0).integers(0, 60000, (32, 32),
                                                                dtype=np.uint16),
                         compression="zlib", tile=(16, 16))
        corrupt = bytearray(buf.getvalue())
        corrupt[len(corrupt) // 2:len(corrupt) // 2 + 40] = bytes(40)
        (tmp / "corrupt.tif").write_bytes(bytes(corrupt))
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        buf = io.BytesIO()
        Image.fromarray(natural(16)).save(buf, "JPEG")
        (tmp / "good.jpg").write_bytes(buf.getvalue())
        (tmp / "truncated.jpg").write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])


def _needs(args):
    """The optional modules a case needs: TIFF and JPEG files, read or written."""
    names = " ".join(map(str, args))
    return [m for ext, m in ((".tif", "tifffile"), (".jpg", "PIL"), (".jpeg", "PIL"))
            if ext in names]


@pytest.mark.parametrize("case", BAD)
def test_downsample_bad_input(tmp_path, case):
    args, status = _bad_cases(tmp_path)[case]
    for module in _needs(args):
        pytest.importorskip(module)
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "in.npy", np.ones((6, 6)))
    (tmp_path / "garbage.npy").write_bytes(b"definitely not numpy")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (tmp_path / "in.tif").write_bytes(b"II*\x00")
    (tmp_path / "in.bmp").write_bytes(b"BM")
    full = (tmp_path / "in.npy").read_bytes()
    (tmp_path / "truncated.npy").write_bytes(full[:-10])
    _write_image_files(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, out, err = run(*args, cwd=tmp_path)
    assert_user_error(code, out, err, status)
    # nothing written (no output, no temporary file), every input untouched
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after.keys() == before.keys()
    assert after == before
    if "over max-pixels" in case:
        assert "more than --max-pixels" in err
    if case in BAD_MESSAGES:
        assert BAD_MESSAGES[case] in err


# Some of the messages, word for word where it matters
BAD_MESSAGES = {
    "png bomb": "bomb.png: the image declares 100000x100000 = 10000000000 pixels, more than "
                f"--max-pixels {_cli.MAX_PIXELS}; raise --max-pixels (0: no limit)",
    "png over max-pixels": "8x8 = 64 pixels, more than --max-pixels 63",
    "tif over max-pixels": "16x16 = 256 pixels, more than --max-pixels 255",
    "jpg over max-pixels": "16x16 = 256 pixels, more than --max-pixels 255",
    "huge npy header": "the file is truncated",
    "unsupported output type": "unsupported file type '.gif'; use .npy, .png, .tif/.tiff or "
                               ".jpg/.jpeg",
    "float to jpg": "JPEG stores uint8 gray (height, width) or RGB (height, width, 3) images; "
                    "got shape (3, 3) and dtype float64; write a .tif or .npy file instead, or "
                    "pass --dtype uint8",
    "uint16 tif to jpg": "write a .tif or .npy file instead",
    "tif output is input": "is the input file; refusing to overwrite it",
    "truncated tif": "cannot read",
    "not a jpg": "not a JPEG file",
    "png named jpg": "not a JPEG file",
}


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
