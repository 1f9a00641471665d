"""fastpool.to_zarr_pyramid: the levels equal fastpool.pyramid, the metadata is
OME-NGFF 0.4, and a re-run rewrites only what is missing."""

import os
import time

import dask.array as da
import numpy as np
import pytest
import zarr
from ome_zarr_models.v04.image import Image

import fastpool


def _chunk_files(root):
    """Every chunk file under a store, with its modification time."""
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files if not f.startswith(".")}


def _labels(shape, seed):
    """A label image: blocks of a few labels with speckle (mode has ties and
    clear winners)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 5, size=tuple(-(-n // 3) for n in shape))
    labels = coarse
    for axis in range(len(shape)):
        labels = np.repeat(labels, 3, axis=axis)
    labels = labels[tuple(slice(0, n) for n in shape)].copy()
    speckle = rng.random(shape) < 0.2
    labels[speckle] = rng.integers(0, 5, size=int(speckle.sum()))
    return labels.astype(np.uint16)


@pytest.mark.parametrize("method, dtype, factor, shape", [
    ("avg", np.uint8, 2, (37, 41, 29)),
    ("avg", np.float32, 2, (33, 20, 47)),
    ("max", np.int16, (2, 2, 1), (30, 26, 5)),
    ("mode", None, 2, (40, 35, 31)),
    ("median", np.float64, 3, (28, 30)),
    ("sum", np.uint32, 2, (3, 20, 24, 18)),
])
def test_levels_equal_pyramid(tmp_path, method, dtype, factor, shape):
    """Every level in the store equals fastpool.pyramid bitwise, for a memory
    bound that makes many blocks, and level 0 is the input."""
    rng = np.random.default_rng(len(shape))
    if dtype is None:
        x = _labels(shape, 1)
    elif np.dtype(dtype).kind == "f":
        x = rng.standard_normal(shape).astype(dtype)
    else:
        x = rng.integers(0, np.iinfo(dtype).max // 2, size=shape).astype(dtype)
    levels = 2
    axes = (-3, -2, -1) if len(shape) == 4 else None
    group = fastpool.to_zarr_pyramid(x, tmp_path / "p.zarr", levels, factor, method,
                                     axes=axes, max_memory=6000, progress=False)
    expected = fastpool.pyramid(x, levels, factor, method, axes=axes)
    np.testing.assert_array_equal(group["0"][:], x)
    for k, level in enumerate(expected, start=1):
        got = group[str(k)][:]
        assert got.dtype == level.dtype
        np.testing.assert_array_equal(got, level)
    assert group["1"].nchunks > 4  # the bound split the input into blocks


def test_sources_and_block_alignment(tmp_path):
    """A Zarr array and a Dask array with chunks that are no multiple of the
    window give the same store as the NumPy array."""
    x = _labels((45, 50, 38), 2)
    source = zarr.create_array(tmp_path / "src.zarr", shape=x.shape, dtype=x.dtype,
                               chunks=(7, 11, 13))
    source[:] = x
    expected = fastpool.pyramid(x, 3, 2, "mode")
    for name, src in [("zarr", source), ("dask", da.from_array(x, chunks=(9, 5, 17)))]:
        group = fastpool.to_zarr_pyramid(src, tmp_path / f"{name}.zarr", 3,
                                         method="mode", max_memory="40KiB",
                                         progress=False)
        for k, level in enumerate(expected, start=1):
            np.testing.assert_array_equal(group[str(k)][:], level)


def test_ngff_metadata(tmp_path):
    """The group validates as an OME-NGFF 0.4 image; scales and translations are
    pyramid's, times the pixel size."""
    x = np.zeros((4, 16, 32, 32), dtype=np.uint8)
    group = fastpool.to_zarr_pyramid(x, tmp_path / "m.zarr", 3, (1, 2, 2), axes=(1, 2, 3),
                                     scale=(1, 0.5, 0.25, 0.25), unit="micrometer",
                                     progress=False)
    Image.from_zarr(group)
    ms = group.attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["axes"][0]["type"] == "channel"
    assert ms["axes"][1]["unit"] == "micrometer"
    levels = fastpool.pyramid(x, 3, (1, 2, 2), axes=(1, 2, 3))
    for k, dataset in enumerate(ms["datasets"]):
        assert dataset["path"] == str(k)
        transforms = dataset["coordinateTransformations"]
        size = (1, 0.5, 0.25, 0.25)
        scale = levels.scales[k - 1] if k else (1,) * 4
        assert transforms[0]["scale"] == [s * f for s, f in zip(size, scale)]
        if k:
            shift = [s * t for s, t in zip(size, levels.translations[k - 1])]
            assert transforms[1]["translation"] == shift
    without = fastpool.to_zarr_pyramid(x, tmp_path / "n.zarr", 1, (1, 2, 2),
                                       axes=(1, 2, 3), include_input=False,
                                       progress=False)
    assert "0" not in without
    assert [d["path"] for d in without.attrs["multiscales"][0]["datasets"]] == ["1"]


def test_resume_rewrites_only_missing_chunks(tmp_path):
    """After one chunk is deleted, a re-run writes that chunk and nothing else; a
    re-run of a complete store writes nothing."""
    x = (np.random.default_rng(3).random((32, 40, 48)) * 255).astype(np.uint8)
    path = tmp_path / "r.zarr"
    group = fastpool.to_zarr_pyramid(x, path, 2, max_memory=20000, progress=False)
    before = _chunk_files(path)
    time.sleep(0.02)
    fastpool.to_zarr_pyramid(x, path, 2, max_memory=20000, progress=False)
    assert _chunk_files(path) == before
    victim = sorted(p for p in before if os.sep + "2" + os.sep in p)[3]
    os.remove(victim)
    time.sleep(0.02)
    group = fastpool.to_zarr_pyramid(x, path, 2, max_memory=20000, progress=False)
    after = _chunk_files(path)
    assert set(after) == set(before)
    assert [p for p in after if after[p] != before[p]] == [victim]
    np.testing.assert_array_equal(group["2"][:], fastpool.pyramid(x, 2)[1])


def test_errors(tmp_path):
    """Arguments that cannot work say so before anything is written."""
    x = np.zeros((64, 64), dtype=np.uint8)
    with pytest.raises(ValueError, match="memory"):
        fastpool.to_zarr_pyramid(x, tmp_path / "a.zarr", 6, max_memory=1000,
                                 progress=False)
    with pytest.raises(ValueError, match="2 to 5 dimensions"):
        fastpool.to_zarr_pyramid(np.zeros(64), tmp_path / "b.zarr", 1, progress=False)
    with pytest.raises(ValueError, match="max_memory"):
        fastpool.to_zarr_pyramid(x, tmp_path / "c.zarr", 1, max_memory="lots",
                                 progress=False)
    with pytest.raises(ValueError, match="method"):
        fastpool.to_zarr_pyramid(x, tmp_path / "d.zarr", 1, method="nope",
                                 progress=False)
    with pytest.raises(TypeError, match="output"):
        fastpool.to_zarr_pyramid(x, tmp_path / "e.zarr", 1, output=np.float32,
                                 progress=False)
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "d.zarr").exists()
    fastpool.to_zarr_pyramid(x, tmp_path / "f.zarr", 1, progress=False)
    with pytest.raises(ValueError, match="overwrite"):
        fastpool.to_zarr_pyramid(x, tmp_path / "f.zarr", 1, method="max", progress=False)
    group = fastpool.to_zarr_pyramid(x, tmp_path / "f.zarr", 1, method="max",
                                     overwrite=True, progress=False)
    assert group.attrs["multiscales"][0]["type"] == "max"


def test_distributed(tmp_path):
    """Blocks run on the workers of a dask.distributed cluster (separate
    processes) and give the same store."""
    distributed = pytest.importorskip("distributed")
    x = _labels((30, 34, 40), 4)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        group = fastpool.to_zarr_pyramid(x, tmp_path / "d.zarr", 2, method="mode",
                                         max_memory=30000, progress=False)
    for k, level in enumerate(fastpool.pyramid(x, 2, method="mode"), start=1):
        np.testing.assert_array_equal(group[str(k)][:], level)
