"""Multiscale pyramids written to Zarr (OME-NGFF 0.4), block by block with Dask."""

import itertools
import json
import math

import numpy as np

from ._dask import is_dask_array, pyramid_plan
from ._docstrings import fill

# Bytes a task holds per input element besides the element itself: the levels it
# writes (at most the input's size again) and the exact window sums of the first
# level (float64).
_OVERHEAD = 8

_DEFAULT_NAMES = {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("c", "z", "y", "x"),
                  5: ("t", "c", "z", "y", "x")}
_TYPES = {"t": "time", "c": "channel"}


def _bytes(value, name):
    if isinstance(value, str):
        units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
        text = value.strip().lower().removesuffix("ib").removesuffix("b")
        try:
            if text and text[-1] in units:
                return int(float(text[:-1]) * units[text[-1]])
            return int(float(text))
        except ValueError:
            raise ValueError(f"{name} must be a number of bytes such as 2**28 or "
                             f"'256MiB', got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or a str such as '256MiB', got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _chunk_written(array, coords):
    """Whether the chunk at ``coords`` of a Zarr array is in its store."""
    from zarr.core.sync import sync
    key = array.metadata.encode_chunk_key(coords)
    path = array.store_path.path
    return sync(array.store_path.store.exists(f"{path}/{key}" if path else key))


def _levels_of(arrays, coords):
    """Which of ``arrays`` (level 0 first) lack their chunk at ``coords``."""
    return [k for k, a in enumerate(arrays) if not _chunk_written(a, coords)]


class _Block:
    """One task: read one input block, pool all its levels, write the chunks of
    every level that are not written yet."""

    def __init__(self, arrays, first_level, region, coords, pyramid_args, sliced,
                 shape):
        self.arrays = arrays
        self.first_level = first_level
        self.region = region
        self.coords = coords
        self.pyramid_args = pyramid_args
        self.sliced = sliced
        self.shape = shape

    def __call__(self, source):
        """``source``: the block itself (``sliced``), or the whole input to read
        it from."""
        from ._beyond import pyramid_of_block
        missing = _levels_of(self.arrays, self.coords)
        if not missing:
            return 0
        block = np.asarray(source if self.sliced else source[self.region])
        args = dict(self.pyramid_args)
        levels = pyramid_of_block(block, self.shape, args.pop("levels"),
                                  args.pop("factor"), args.pop("method"),
                                  args.pop("axes"), args)
        for k in missing:
            level = self.first_level + k
            data = block if level == 0 else levels[level - 1]
            chunks = self.arrays[k].chunks
            self.arrays[k][tuple(slice(c * n, c * n + m) for c, n, m in
                                 zip(self.coords, chunks, data.shape))] = data
        return len(missing)


@fill
def to_zarr_pyramid(source, store, levels, factor=2, method="avg", *, axes=None,
                    max_memory="256MiB", include_input=True, names=None, scale=None,
                    unit=None, overwrite=False, progress=True, **method_kwargs):
    """Write a multiscale pyramid of ``source`` to a Zarr store (OME-NGFF 0.4).

    The input is read once, block by block: each Dask task reads one block, pools
    every level of it with :func:`fastpool.pyramid` and writes one chunk of each
    level, so no chunk is read back or written twice.  A re-run skips the blocks
    whose chunks are all written and writes only the missing chunks of the rest:
    an interrupted run resumes where it stopped.

    Parameters
    ----------
    source : ndarray, zarr.Array or dask.array.Array
        The full-resolution array (2 to 5 dimensions, as NGFF asks).
    store : str, os.PathLike or zarr store
        Where the Zarr group goes; levels are the arrays ``"0"`` (the input, with
        ``include_input``), ``"1"``, ... of the group.
    levels : int
        How many pooled levels (level ``k`` is pooled by ``factor**k``).
    factor : int or sequence of int, optional
        Reduction per level, for every pooled axis or one per pooled axis.
    %(method)s
    %(axes)s
    max_memory : int or str, optional
        Memory one task may hold for its arrays, in bytes (``'256MiB'``,
        ``2**28``): it sets the block size, a multiple of ``factor**levels`` along
        every pooled axis.  A scheduler runs as many tasks at once as it has
        threads (or workers); Zarr's codec buffers come on top.  A ``ValueError``
        says so when one window of the last level does not fit.
    include_input : bool, optional
        Also write the input itself as level ``"0"`` (NGFF's full resolution).
    names : sequence of str, optional
        NGFF axis names; by default ``('y', 'x')``, ``('z', 'y', 'x')``,
        ``('c', 'z', 'y', 'x')`` or ``('t', 'c', 'z', 'y', 'x')``.  ``'t'`` is a
        time axis, ``'c'`` a channel axis, others are space.
    scale : sequence of float, optional
        The input's pixel size along every axis (default 1).
    unit : str, optional
        The space axes' unit, e.g. ``'micrometer'``.
    overwrite : bool, optional
        Replace a group already at ``store``.  Without it, a group written by an
        earlier call with the same arguments is resumed, and any other is a
        ``ValueError``.
    progress : bool, optional
        Show a progress bar (tqdm) over the blocks.
    %(method_kwargs)s

    Returns
    -------
    zarr.Group
        The group, with ``multiscales`` metadata giving each level's scale and
        translation (a 2x mean moves the origin by half an input pixel).

    Notes
    -----
    Each level equals :func:`fastpool.pyramid` of the whole input bitwise: a
    block holds whole windows of every level, so every window is pooled as it
    is in memory, labels with ``method='mode'`` exactly.  The level chunks are
    the block divided by ``factor**k``: one task writes one chunk per level.
    Under a ``dask.distributed`` client the blocks run on its workers.

    Examples
    --------
    >>> import numpy as np, fastpool, tempfile, os
    >>> volume = np.arange(4096, dtype=np.uint16).reshape(16, 16, 16)
    >>> path = os.path.join(tempfile.mkdtemp(), "volume.zarr")
    >>> group = fastpool.to_zarr_pyramid(volume, path, levels=2, progress=False)
    >>> [group[str(k)].shape for k in range(3)]
    [(16, 16, 16), (8, 8, 8), (4, 4, 4)]
    >>> datasets = group.attrs["multiscales"][0]["datasets"]
    >>> scale, shift = datasets[1]["coordinateTransformations"]
    >>> scale["scale"], shift["translation"]
    ([2.0, 2.0, 2.0], [0.5, 0.5, 0.5])
    """
    import dask
    import zarr
    from ._beyond import pyramid

    ndim = len(source.shape)
    if ndim not in _DEFAULT_NAMES:
        raise ValueError(f"source must have 2 to 5 dimensions for OME-NGFF, got {ndim}")
    for name in ("output", "mode", "cval", "return_indices"):
        if name in method_kwargs:
            raise TypeError(f"to_zarr_pyramid takes no {name} argument")
    names = _axis_names(names, ndim)
    scale = _scale(scale, ndim)
    dtype = np.dtype(source.dtype)
    max_memory = _bytes(max_memory, "max_memory")
    target = max(1, max_memory // (dtype.itemsize * 2 + _OVERHEAD))
    plan = pyramid_plan(tuple(source.shape), None, levels, factor, axes, target=target)
    pyramid_args = dict(method_kwargs, levels=plan.levels, factor=factor, method=method,
                        axes=axes, workers=method_kwargs.get("workers", 1))
    # The NumPy function on a tiny block: argument errors now, and each level's
    # dtype, scale and translation.
    probe = pyramid(np.zeros(tuple(min(n, f) for n, f in zip(source.shape, plan.factors)),
                             dtype=dtype), **pyramid_args)
    block = tuple(c[0] for c in plan.chunks)
    first = 0 if include_input else 1
    shapes = [tuple(source.shape)] + [tuple(-(-n // f ** k) for n, f in
                                            zip(source.shape, plan.factors))
                                      for k in range(1, plan.levels + 1)]
    dtypes = [np.dtype(dtype if dtype != np.float16 else np.float32)] + [
        level.dtype for level in probe]
    fingerprint = json.dumps({"shape": list(source.shape), "dtype": str(dtype),
                              "levels": plan.levels, "factors": list(plan.factors),
                              "block": list(block), "method": method,
                              "kwargs": repr(sorted((k, v) for k, v in
                                                    method_kwargs.items()
                                                    if k != "workers")),
                              "include_input": bool(include_input)})
    group = _open_group(zarr, store, fingerprint, overwrite)
    arrays = []
    for k in range(first, plan.levels + 1):
        chunk = tuple(-(-b // f ** k) for b, f in zip(block, plan.factors))
        name = str(k)
        if name in group:
            arrays.append(group[name])
            continue
        arrays.append(group.create_array(
            name, shape=shapes[k], dtype=dtypes[k], chunks=chunk, fill_value=0,
            chunk_key_encoding={"name": "v2", "separator": "/"},
            config={"write_empty_chunks": True}))
    multiscales = [_multiscales(names, scale, unit, method, probe, first, plan.levels)]
    if group.attrs.get("multiscales") != multiscales:
        group.attrs["multiscales"] = multiscales

    # One task per block that is not complete yet.
    grid = [range(len(c)) for c in plan.chunks]
    offsets = [np.concatenate([[0], np.cumsum(c)]) for c in plan.chunks]
    if is_dask_array(source):
        blocks = source.rechunk(plan.chunks).to_delayed()
    else:
        held = dask.delayed(source, traverse=False) if isinstance(source, np.ndarray) \
            else source
    tasks = []
    for coords in itertools.product(*grid):
        if not _levels_of(arrays, coords):
            continue
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, coords))
        task = _Block(arrays, first, region, coords, pyramid_args, is_dask_array(source),
                      tuple(source.shape))
        reader = blocks[coords] if is_dask_array(source) else held
        tasks.append(dask.delayed(task, pure=False)(reader))
    _run_tasks(tasks, progress)
    return group


def _axis_names(names, ndim):
    if names is None:
        return _DEFAULT_NAMES[ndim]
    names = tuple(names)
    if len(names) != ndim or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"names must be {ndim} non-empty strings, got {names!r}")
    if len(set(names)) != ndim:
        raise ValueError(f"names must not repeat, got {names!r}")
    return names


def _scale(scale, ndim):
    if scale is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in np.broadcast_to(np.asarray(scale, float), (ndim,)))
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise ValueError(f"scale must hold positive finite numbers, got {scale!r}")
    return values


def _open_group(zarr, store, fingerprint, overwrite):
    if not overwrite:
        try:
            group = zarr.open_group(store, mode="r+")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            pass
        else:
            if group.attrs.get("fastpool") != fingerprint:
                raise ValueError("store holds a group that another call wrote; pass "
                                 "overwrite=True to replace it")
            return group
    group = zarr.open_group(store, mode="w", zarr_format=2)
    group.attrs["fastpool"] = fingerprint
    return group


def _multiscales(names, scale, unit, method, probe, first, levels):
    axes = []
    for n in names:
        kind = _TYPES.get(n, "space")
        axis = {"name": n, "type": kind}
        if unit is not None and kind == "space":
            axis["unit"] = unit
        axes.append(axis)
    datasets = []
    for k in range(first, levels + 1):
        factors = probe.scales[k - 1] if k else (1,) * len(names)
        shifts = probe.translations[k - 1] if k else (0.0,) * len(names)
        transforms = [{"type": "scale",
                       "scale": [float(s * f) for s, f in zip(scale, factors)]}]
        if any(shifts):
            transforms.append({"type": "translation",
                               "translation": [float(s * t) for s, t in
                                               zip(scale, shifts)]})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    return {"version": "0.4", "name": "fastpool", "axes": axes, "datasets": datasets,
            "type": method, "metadata": {"method": f"fastpool.pyramid(method={method!r})"}}


def _run_tasks(tasks, progress):
    """Compute the block tasks on the current scheduler, with a progress bar."""
    import dask
    if not tasks:
        return
    try:
        from distributed import get_client
        client = get_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        from distributed import as_completed
        futures = client.compute(tasks)
        bar = _bar(progress, len(futures))
        for future in as_completed(futures):
            future.result()
            bar.update(1)
        bar.close()
        return
    if progress:
        from tqdm.dask import TqdmCallback
        with TqdmCallback(desc="pyramid blocks"):
            dask.compute(*tasks)
    else:
        dask.compute(*tasks)


def _bar(progress, total):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="pyramid blocks", disable=not progress)
