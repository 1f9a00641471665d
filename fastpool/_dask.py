"""Dask arrays in, Dask arrays out: every public function on chunked data.

A public function handed a ``dask.array.Array`` returns one, lazily, equal
bitwise to what it returns for the same NumPy array, for any chunking.  The plan
comes from the shared geometry (``_geometry``): the windows of each pooled axis
are split into runs of output positions (one output chunk each), and each
output chunk reads exactly the input elements its windows read (its halo, the
copies an extension mode makes, ``wrap``'s far end included).  One task per
output block assembles those elements from the input chunks and runs the NumPy
function on them with the same windows, shifted: so padding, ``ceil_mode``,
dilation, adaptive windows and every method behave as on the whole array.
Random methods count their windows by their place in the whole result.

Nothing here imports Dask unless a Dask array was handed over; the decorator
:func:`dask_aware` costs a dictionary lookup on NumPy input.
"""

import functools
import inspect
import itertools
import math
import operator
import sys

import numpy as np

from ._geometry import EXCLUDED, AxisWindows, GivenGeometry
from ._support import in_flight

# Gaps of at most this many elements between the runs an output chunk reads are
# read too: one piece instead of many (dilated windows), at a little extra I/O.
_GAP = 4096

# SoftPool and LIP share each exponential's shift over this many windows of the
# last pooled axis (the kernel's lanes); chunk boundaries along that axis keep to
# the grid of such blocks so every window sees the shift it sees unchunked.
_SOFTMAX_BLOCK = 64


def is_dask_array(value):
    """Whether ``value`` is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(value, module.Array)


def dask_aware(function):
    """Route calls of a public function with a Dask array argument to its plan
    here; NumPy calls go straight through."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if "dask.array" in sys.modules and (any(map(is_dask_array, args)) or
                                            any(map(is_dask_array, kwargs.values()))):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            for name, parameter in signature.parameters.items():
                if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(arguments.pop(name, {}))
            return _HANDLERS.get(function.__name__, _sliding)(function, arguments)
        with in_flight():
            return function(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- helpers

def _da():
    import dask.array
    return dask.array


def _as_dask(value, like=None):
    """``value`` as a Dask array (chunked as ``like`` where it is NumPy)."""
    da = _da()
    if is_dask_array(value):
        return value if like is None else value.rechunk(like.chunks)
    value = np.asarray(value)
    return da.from_array(value, chunks=like.chunks if like is not None and
                         value.shape == like.shape else "auto")


def _check_output(arguments):
    output = arguments.get("output")
    if isinstance(output, np.ndarray):
        raise TypeError("output: a Dask input gives a Dask result; pass a dtype or "
                        "None, not an array")


def _task_workers(arguments):
    """Threads inside one task: one unless the caller asked (the scheduler's
    workers are the parallelism; more would oversubscribe the cores)."""
    workers = arguments.get("workers")
    return 1 if workers is None else workers


def _token(*parts):
    from dask.base import tokenize
    return tokenize(*parts)


# --------------------------------------------------------------------------- plans

class _AxisPlan:
    """How one axis of the inputs maps to the chunks of a result.

    ``bounds``: the result's chunks ``[a, b)`` along the axis; ``pieces[j]``: the
    pieces ``(chunk, lo, hi)`` of the input that result chunk ``j`` reads, in
    order; ``index[j]``: the input index of every position of that slab;
    ``windows[j]``: its local :class:`AxisWindows` (None on an axis that is not
    pooled).  A gradient's plan also has ``rows[j]``, the forward windows
    ``(a, b)`` that chunk ``j`` sums over, and ``g_pieces[j]``, the pieces of
    ``grad_output`` they are.
    """

    def __init__(self, bounds, pieces, index, windows, rows=None, g_pieces=None):
        self.bounds = bounds
        self.pieces = pieces
        self.index = index
        self.windows = windows
        self.rows = rows
        self.g_pieces = g_pieces if g_pieces is not None else pieces

    @property
    def chunks(self):
        return tuple(b - a for a, b in self.bounds)


def _offsets(chunks):
    return np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)


def _pieces(runs, offsets):
    """The input chunk pieces of ``runs`` (``[lo, hi)`` input ranges)."""
    out = []
    for lo, hi in runs:
        j = int(np.searchsorted(offsets, lo, side="right")) - 1
        while lo < hi:
            end = min(hi, int(offsets[j + 1]))
            out.append((j, lo - int(offsets[j]), end - int(offsets[j])))
            lo = end
            j += 1
    return out


def _batch_plan(chunks):
    offsets = _offsets(chunks)
    bounds = [(int(offsets[j]), int(offsets[j + 1])) for j in range(len(chunks))]
    pieces = [[(j, 0, c)] for j, c in enumerate(chunks)]
    return _AxisPlan(bounds, pieces, [None] * len(chunks), [None] * len(chunks))


def _whole_plan(chunks, out_len):
    """Every output of the axis (``out_len``) from the whole axis in one slab."""
    n = int(sum(chunks))
    pieces = [(j, 0, c) for j, c in enumerate(chunks) if c]
    return _AxisPlan([(0, out_len)], [pieces], [np.arange(n, dtype=np.int64)], [None])


def _output_bounds(window, chunks, lanes):
    """Output chunks of one pooled axis: a boundary where the input has one,
    placed after the windows that lie mostly before it."""
    if window.interior[1] > window.interior[0]:
        # A grid of windows: its centres (the tables of windows that an
        # extension mode wraps would put them elsewhere).
        anchor = (np.arange(window.out_len) * window.stride - window.padding
                  + window.dilation * (window.width - 1) / 2)
    else:
        table = window.table
        valid = table != EXCLUDED
        cells = np.where(table >= 0, table, -2 - table).astype(np.float64)
        anchor = (cells * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        anchor = np.maximum.accumulate(anchor)
    cuts = np.searchsorted(anchor, _offsets(chunks)[1:-1] - 0.5)
    if lanes:
        lo = window.interior[0]
        cuts = lo + np.rint((cuts - lo) / _SOFTMAX_BLOCK).astype(np.int64) * _SOFTMAX_BLOCK
    cuts = np.unique(np.clip(np.concatenate([[0], cuts, [window.out_len]]), 0,
                             window.out_len))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _chunk_reads(window, a, b, offsets):
    """What windows ``[a, b)`` of one axis read: the input pieces, the slab's
    input indices, and the windows renumbered into the slab."""
    rows = window.table[a:b]
    cells = rows[rows != EXCLUDED]
    cells = np.unique(np.where(cells >= 0, cells, -2 - cells))
    breaks = np.flatnonzero(np.diff(cells) > _GAP + 1)
    starts = np.concatenate([[cells[0]], cells[breaks + 1]])
    stops = np.concatenate([cells[breaks], [cells[-1]]]) + 1
    runs = list(zip(starts.tolist(), stops.tolist()))
    slab = np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in runs])
    local = np.searchsorted(slab, np.where(rows >= 0, rows, -2 - rows))
    local = np.where(rows >= 0, local, np.where(rows == EXCLUDED, EXCLUDED, -2 - local))
    local = np.ascontiguousarray(local, dtype=np.int64)
    local.flags.writeable = False
    lo, hi = max(window.interior[0], a), min(window.interior[1], b)
    if len(runs) == 1 and lo < hi:
        # One run: the interior windows keep their direct loops, shifted.
        interior = (lo - a, hi - a)
        padding = runs[0][0] + window.padding - a * window.stride
    else:
        interior, padding = (0, 0), 0
    local_windows = AxisWindows(n=len(slab), table=local, interior=interior,
                                stride=window.stride, padding=padding,
                                dilation=window.dilation, given=window.given)
    return _pieces(runs, offsets), slab, local_windows


def _pooled_plan(window, chunks, lanes=False):
    """Output chunks of one pooled axis, each with the input it reads and its
    windows renumbered into that slab."""
    offsets = _offsets(chunks)
    bounds = _output_bounds(window, chunks, lanes)
    reads = [_chunk_reads(window, a, b, offsets) for a, b in bounds]
    return _AxisPlan(bounds, *map(list, zip(*reads)))


def _gradient_plan(window, chunks, g_chunks):
    """A gradient's chunks of one pooled axis: the input's own.  Chunk ``j``
    sums over every window that reads one of its elements (a run of windows:
    all of them where ``mode='wrap'`` reaches across), so each element gets
    every term, in the order the whole array's gradient adds them."""
    offsets, g_offsets = _offsets(chunks), _offsets(g_chunks)
    table = window.table
    bounds, pieces, index, windows, rows, g_pieces = [], [], [], [], [], []
    for j in range(len(chunks)):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        bounds.append((lo, hi))
        readers = np.flatnonzero(((table >= lo) & (table < hi)).any(axis=1))
        if readers.size == 0:
            for part in (pieces, index, windows, rows, g_pieces):
                part.append(None)
            continue
        a, b = int(readers[0]), int(readers[-1]) + 1
        read, slab, local = _chunk_reads(window, a, b, offsets)
        pieces.append(read)
        index.append(slab)
        windows.append(local)
        rows.append((a, b))
        g_pieces.append(_pieces([(a, b)], g_offsets))
    return _AxisPlan(bounds, pieces, index, windows, rows, g_pieces)


class _Fixed:
    """Windows fixed in advance for the pooled axes (a picklable GivenGeometry
    callable); ``by_axis`` maps each pooled axis to its :class:`AxisWindows`."""

    def __init__(self, by_axis, order):
        self.by_axis = by_axis
        self.order = order

    def __call__(self, lengths):
        return tuple(self.by_axis[a] for a in self.order)


# --------------------------------------------------------------------------- graph

def _assemble(chunks, pieces):
    """The slab of one block from its input pieces (a view when it is one);
    None for an input the block does not read."""
    if pieces is None:
        return None
    if len(chunks) == 1:
        return chunks[0][tuple(slice(axis[0][1], axis[0][2]) for axis in pieces)]
    shape = tuple(sum(hi - lo for _, lo, hi in axis) for axis in pieces)
    slab = np.empty(shape, dtype=chunks[0].dtype)
    starts = [np.concatenate([[0], np.cumsum([hi - lo for _, lo, hi in axis])])
              for axis in pieces]
    for chunk, combo in zip(chunks, itertools.product(*[range(len(p)) for p in pieces])):
        target = tuple(slice(int(starts[k][i]), int(starts[k][i + 1]))
                       for k, i in enumerate(combo))
        source = tuple(slice(pieces[k][i][1], pieces[k][i][2])
                       for k, i in enumerate(combo))
        slab[target] = chunk[source]
    return slab


def _run(block, pieces, *inputs):
    """One task: assemble each input's slab from its chunks and pieces, then
    ``block(*slabs)``."""
    return block(*[_assemble(chunks, p) for chunks, p in zip(inputs, pieces)])


def _build(name, inputs, plans, out_axes, block_for, dtypes, out_chunks=None,
           pieces_for=None):
    """A Dask array (or a tuple of them, one per entry of ``dtypes``) whose block
    ``idx`` is ``block_for(idx)(*slabs)``.

    ``plans``: one :class:`_AxisPlan` per axis of the inputs; ``out_axes``: the
    axes that the result keeps, in order; ``out_chunks``: each result's chunks
    where they are not the plans'; ``pieces_for(idx)``: each input's pieces per
    axis (by default the plans', the same for every input), None for an input
    the block does not read.
    """
    da = _da()
    from dask.highlevelgraph import HighLevelGraph
    if pieces_for is None:
        def pieces_for(idx):
            return [[p.pieces[j] for p, j in zip(plans, idx)]] * len(inputs)
    first = tuple(0 for _ in plans)
    token = _token(name, *[x.name for x in inputs], *(p.bounds for p in plans),
                   block_for(first))
    base = f"{name}-{token}"
    dsk = {}
    for idx in itertools.product(*[range(len(p.bounds)) for p in plans]):
        pieces = pieces_for(idx)
        keys = []
        for x, axes in zip(inputs, pieces):
            combos = itertools.product(*[[piece[0] for piece in axis] for axis in axes]) \
                if axes is not None else ()
            keys.append([(x.name,) + combo for combo in combos])
        dsk[(base,) + tuple(idx[a] for a in out_axes)] = (_run, block_for(idx), pieces,
                                                          *keys)
    chunks = tuple(plans[a].chunks for a in out_axes)
    if out_chunks is None:
        out_chunks = [chunks] * len(dtypes)
    meta = lambda dtype: np.empty((0,) * len(out_axes), dtype=dtype)  # noqa: E731
    if len(dtypes) == 1:
        graph = HighLevelGraph.from_collections(base, dsk, dependencies=inputs)
        return da.Array(graph, base, chunks=out_chunks[0], meta=meta(dtypes[0]))
    results = []
    for i, dtype in enumerate(dtypes):
        part = f"{base}-{i}"
        layer = {(part,) + key[1:]: (operator.getitem, key, i) for key in dsk}
        graph = HighLevelGraph.from_collections(part, {**dsk, **layer},
                                                dependencies=inputs)
        results.append(da.Array(graph, part, chunks=out_chunks[i], meta=meta(dtype)))
    return tuple(results)


def _dtypes(result):
    """The dtype of each array a block returns (one, or a tuple)."""
    return [r.dtype for r in (result if isinstance(result, tuple) else (result,))]


# --------------------------------------------------------------------------- sliding

# Functions whose window geometry is not given by ``size`` etc.: their sliding
# parameters, from the call's arguments.
def _blur_geometry(arguments):
    from ._weighted import _check_order
    order = _check_order(arguments["order"])
    return order + 1, arguments["factor"], order // 2, 1, False


_GEOMETRY = {"blur_pool": _blur_geometry}


def _windows_of(name, arguments, shape):
    """The validated parameters and pooled axes' windows of the pool ``name``
    of an array of ``shape`` (what every block of its plan is cut from)."""
    from ._pool import plan_windows
    geometry = _GEOMETRY.get(name)
    size, stride, padding, dilation, ceil_mode = (
        geometry(arguments) if geometry else
        (arguments["size"], arguments.get("stride"), arguments.get("padding", 0),
         arguments.get("dilation", 1), arguments.get("ceil_mode", False)))
    return plan_windows(shape, size, stride, padding, dilation, ceil_mode,
                        arguments.get("mode", "ignore"),
                        arguments.get("nan_policy", "propagate"), arguments.get("axes"))


def _draws(name, arguments):
    """Whether the pool ``name`` draws random numbers; if so, the stream's key is
    drawn from the seed now, once for every block (into ``arguments``)."""
    from . import _weighted
    random = (name == "stochastic_pool" and arguments.get("training", True)) or (
        name == "mixed_pool" and arguments.get("alpha") is None)
    if random:
        arguments["seed"] = _weighted.StreamKey(_weighted.seed_key(arguments["seed"]))
    return random


class _SlidingBlock:
    """One output block of a sliding (or given-window) pool: the NumPy function
    on the block's slab with the block's own windows (``geometry``)."""

    def __init__(self, function, arguments, geometry, index_maps):
        self.function = function
        self.arguments = arguments
        self.geometry = geometry
        self.index_maps = index_maps

    def __call__(self, x, *second):
        args = dict(self.arguments)
        for name in ("weights", "logits"):
            if name in args:
                args[name] = second[0]
        result = _call_with_windows(self.function, x, self.geometry, args)
        if self.index_maps is None:
            return result
        values, local = result
        return values, _global_indices(local, self.index_maps)


def _call_with_windows(function, x, geometry, args):
    """``function`` on ``x`` with the windows of ``geometry`` instead of the
    sliding parameters in ``args``."""
    args = {k: v for k, v in args.items()
            if k not in ("input", "size", "stride", "padding", "dilation", "ceil_mode")}
    if function.__name__ != "blur_pool":
        return function(x, size=geometry, **args)
    from . import _weighted
    order = _weighted._check_order(args["order"])
    return _weighted._weighted_pool(
        _weighted._M.M_WEIGHTED, x, geometry, None, 0, 1, False, args["mode"],
        args["cval"], args["nan_policy"], args["nodata"], args["axes"], args["output"],
        args["workers"],
        kernel=_weighted.binomial_kernel(order, len(geometry.windows.order)))


def _chunk_geometry(windows, order, caller, counter=None, disjoint=None):
    """A block's windows (by pooled axis) as the GivenGeometry its NumPy call
    takes: in ``order``, the call's ``axes`` as given."""
    return GivenGeometry(_Fixed(windows, order), caller, counter, disjoint)


def _global_indices(local, maps):
    """Indices over a slab's pooled axes as indices over the whole input's."""
    slab_shape = tuple(len(m) for m, _ in maps)
    coords = np.unravel_index(local, slab_shape)
    return np.ravel_multi_index(tuple(m[c] for (m, _), c in zip(maps, coords)),
                                tuple(n for _, n in maps)).astype(np.int64, copy=False)


def _sliding(function, arguments):
    """A function of the sliding (or given-window) family on a Dask array."""
    from ._pool import c_steps
    from ._support import as_input
    _check_output(arguments)
    name = function.__name__
    x = _as_dask(arguments["input"])
    second = [n for n in ("weights", "logits") if n in arguments]
    inputs = [x] + [_as_dask(arguments[n], like=x) for n in second]
    for n, w in zip(second, inputs[1:]):
        if w.shape != x.shape:
            raise ValueError(f"{n} must have the input's shape {x.shape}, got {w.shape}")
    as_input(np.empty((0,) * x.ndim, dtype=x.dtype))   # the dtype check, eagerly
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension, got a 0-d array")
    p, windows = _windows_of(name, arguments, x.shape)
    by_axis = dict(zip(p.axes, windows))
    order = _pooled_axes(arguments, x.ndim)
    overlapping = {a: w.width * w.dilation > w.stride for a, w in by_axis.items()}
    lanes = name in ("soft_pool", "lip_pool") and overlapping[p.axes[-1]]
    plans = [(_pooled_plan(by_axis[a], x.chunks[a], lanes and a == p.axes[-1])
              if a in by_axis else _batch_plan(x.chunks[a])) for a in range(x.ndim)]
    out_shape = tuple(by_axis[a].out_len if a in by_axis else n
                      for a, n in enumerate(x.shape))
    arguments = dict(arguments, input=None, workers=_task_workers(arguments))
    for n in second:
        arguments[n] = None
    random = _draws(name, arguments)
    steps = c_steps(out_shape)
    indices = bool(arguments.get("return_indices"))
    pooled_n = [(a, by_axis[a].n) for a in p.axes]

    def block_for(idx):
        local = {a: plans[a].windows[idx[a]] for a in p.axes}
        counter = None
        if random:
            first = sum(plans[a].bounds[j][0] * s
                        for a, (j, s) in enumerate(zip(idx, steps)))
            counter = (first, steps)
        maps = ([(plans[a].index[idx[a]], n) for a, n in pooled_n] if indices else None)
        return _SlidingBlock(function, arguments,
                             _chunk_geometry(local, order, name, counter),
                             maps)

    metas = _dtypes(_dry_run(block_for, plans, x, inputs))
    return _build(name.replace("_", "-"), inputs, plans, range(x.ndim), block_for, metas)


def _dry_run(block_for, plans, x, inputs):
    """The first block's function on zeros of one window per pooled axis (and one
    element per batch axis): the result's dtype and structure, and the argument
    errors now rather than at compute time."""
    block = block_for(tuple(0 for _ in plans))
    windows = {}
    shape = []
    for a, plan in enumerate(plans):
        w = plan.windows[0]
        if w is None:
            shape.append(1)
            continue
        table = np.arange(w.width, dtype=np.int64)[None, :]
        table.flags.writeable = False
        windows[a] = AxisWindows(n=w.width, table=table, interior=(0, 1),
                                 stride=w.width)
        shape.append(w.width)
    geometry = block.geometry
    counter = None if geometry.counter is None else (0, (0,) * len(plans))
    probe = _SlidingBlock(block.function, block.arguments,
                          _chunk_geometry(windows, geometry.windows.order,
                                          geometry.caller, counter),
                          None if block.index_maps is None else
                          [(np.arange(windows[a].n), windows[a].n) for a in windows])
    # Ones: zero weights would make a 0/0 that an integer result cannot hold.
    return probe(*[np.ones(shape, dtype=i.dtype) for i in inputs])


# --------------------------------------------------------------------------- the rest

def _catavgmax(function, arguments):
    """avg and max on the Dask array, stacked or concatenated as NumPy's are."""
    from ._pool import avg_pool, max_pool
    _check_output(arguments)
    da = _da()
    shared = {k: arguments[k] for k in ("size", "stride", "padding", "dilation",
                                         "ceil_mode", "mode", "cval", "nan_policy",
                                         "nodata", "axes", "output", "workers")}
    x = arguments["input"]
    if arguments["output"] is None:
        from ._support import as_input
        _, in_dtype = as_input(np.empty((0,) * x.ndim, dtype=x.dtype))
        shared["output"] = np.float32 if in_dtype == np.float16 else in_dtype
    avg = avg_pool(x, **shared)
    peak = max_pool(x, **shared)
    axis = arguments["axis"]
    if axis is None:
        return da.stack([avg, peak])
    # The NumPy function checks ``axis``; a one-element probe asks it.
    probe = np.zeros((1,) * x.ndim, dtype=x.dtype)
    function(probe, 1, axis=axis, axes=arguments["axes"])
    return da.concatenate([avg, peak], axis=operator.index(axis) % x.ndim)


def _maxblur(function, arguments):
    from ._pool import max_pool
    from ._weighted import _check_order, blur_pool
    _check_output(arguments)
    _check_order(arguments["order"])
    peaks = max_pool(arguments["input"], arguments["size"], 1,
                     nan_policy=arguments["nan_policy"], nodata=arguments["nodata"],
                     axes=arguments["axes"], workers=arguments["workers"])
    return blur_pool(peaks, arguments["factor"], order=arguments["order"],
                     mode=arguments["mode"], cval=arguments["cval"],
                     nan_policy=arguments["nan_policy"], nodata=arguments["nodata"],
                     axes=arguments["axes"], output=arguments["output"],
                     workers=arguments["workers"])


class _WholeBlock:
    """A block holding whole pooled axes: the NumPy function on it as it is."""

    def __init__(self, function, arguments, extra=None):
        self.function = function
        self.arguments = arguments
        self.extra = extra or {}

    def __call__(self, *slabs):
        args = dict(self.arguments)
        names = [n for n in ("input", "indices") if n in args]
        for n, slab in zip(names, slabs):
            args[n] = slab
        args.update(self.extra)
        return self.function(**args)


def _pooled_axes(arguments, ndim):
    from ._support import normalize_axes
    return normalize_axes(arguments.get("axes"), ndim)


def _whole_plans(x, pooled, out_lengths):
    """The pooled axes in one slab per block, the batch axes as the input has
    them: for the functions that need whole pooled axes (global, fractional,
    unpooling)."""
    return [(_whole_plan(x.chunks[a], out_lengths[a]) if a in pooled
             else _batch_plan(x.chunks[a])) for a in range(x.ndim)]


def _probe(function, arguments, x, pooled, limit=1 << 16):
    """The NumPy function on zeros of ``x``'s dtype with the pooled axes whole
    (where that is small) and one element per batch axis: the result's dtypes
    and structure, and the argument errors now rather than at compute time.
    None where the pooled axes are too large to try."""
    if math.prod(x.shape[a] for a in pooled) > limit:
        return None
    shape = tuple(n if a in pooled else 1 for a, n in enumerate(x.shape))
    return function(**dict(arguments, input=np.zeros(shape, dtype=x.dtype),
                                       workers=1))


def _natural_meta(x, arguments, indices):
    dtype = np.dtype(np.float32 if x.dtype == np.float16 else x.dtype)
    if arguments.get("output") is not None:
        dtype = np.dtype(arguments["output"])
    meta = np.empty(0, dtype=dtype)
    return (meta, np.empty(0, dtype=np.int64)) if indices else meta


def _global(function, arguments):
    """avg, sum, max and min: each batch block's pooled axes whole, pooled by
    NumPy's global_pool (its own summation order); the other methods run the
    NumPy function itself, whose whole-axis windows the sliding plan takes."""
    _check_output(arguments)
    if arguments["method"] not in ("avg", "sum", "max", "min"):
        return function(**arguments)
    x = _as_dask(arguments["input"])
    pooled = _pooled_axes(arguments, x.ndim)
    keepdims = bool(arguments.get("keepdims"))
    arguments = dict(arguments, keepdims=True, workers=_task_workers(arguments))
    plans = _whole_plans(x, pooled, [1 if a in pooled else n
                                     for a, n in enumerate(x.shape)])
    probe = _probe(function, arguments, x, pooled)
    if probe is None:
        # Too large to try whole: the dtype from a window of the pooled axes'
        # first 64 elements each (the dtype does not depend on the window).
        small = tuple(min(n, 64) if a in pooled else 1 for a, n in enumerate(x.shape))
        probe = function(**dict(arguments, input=np.zeros(small, x.dtype)))
    block = _WholeBlock(function, arguments)
    result = _build(function.__name__.replace("_", "-"), [x], plans, range(x.ndim),
                    lambda idx: block, _dtypes(probe))
    if keepdims:
        return result
    squeeze = lambda r: r.squeeze(axis=pooled)  # noqa: E731
    return tuple(map(squeeze, result)) if isinstance(result, tuple) else squeeze(result)


def _fractional_plan(arguments, x):
    """``(pooled, out_shape, samples)`` of a fractional max pool of ``x``: the
    planes' samples are drawn once for the whole array (each block takes its
    own planes' rows)."""
    from ._beyond import _fractional_lengths, _fractional_samples
    user_axes = _pooled_axes(arguments, x.ndim)
    outs, _ = _fractional_lengths(x.shape, user_axes, arguments["output_size"],
                                  arguments["output_ratio"], arguments["size"])
    pooled = tuple(sorted(user_axes))
    by_axis = dict(zip(user_axes, outs))
    out_shape = tuple(by_axis.get(a, n) for a, n in enumerate(x.shape))
    batch_shape = tuple(n for a, n in enumerate(x.shape) if a not in pooled)
    samples = _fractional_samples(arguments["samples"], arguments["seed"], batch_shape,
                                  len(pooled))
    return pooled, out_shape, samples


def _plane_samples(samples, plans, idx, pooled):
    """The sample rows of the planes of block ``idx``."""
    return samples[tuple(slice(*plans[a].bounds[idx[a]]) for a in range(len(plans))
                         if a not in pooled)]


def _fractional(function, arguments):
    _check_output(arguments)
    x = _as_dask(arguments["input"])
    pooled, out_shape, samples = _fractional_plan(arguments, x)
    arguments = dict(arguments, seed=None, workers=_task_workers(arguments))
    plans = _whole_plans(x, pooled, out_shape)

    def block_for(idx):
        return _WholeBlock(function, arguments,
                           {"samples": _plane_samples(samples, plans, idx, pooled)})

    first = samples[(slice(0, 1),) * (samples.ndim - 1)]
    probe = _probe(function, dict(arguments, samples=first), x, pooled)
    if probe is None:
        probe = _natural_meta(x, arguments, arguments["return_indices"])
    return _build("fractional-max-pool", [x], plans, range(x.ndim), block_for,
                  _dtypes(probe))


def _unpool(function, arguments):
    """max_unpool: each batch block scatters into its whole pooled axes."""
    _check_output(arguments)
    x = _as_dask(arguments["input"])
    indices = _as_dask(arguments["indices"], like=x)
    shape = tuple(int(n) for n in arguments["output_shape"])
    if len(shape) != x.ndim:
        raise ValueError(f"output_shape must have {x.ndim} entries (the input's "
                         f"dimensions), got {arguments['output_shape']!r}")
    pooled = _pooled_axes(arguments, x.ndim)
    for a in range(x.ndim):
        if a not in pooled and shape[a] != x.shape[a]:
            raise ValueError(f"output_shape must keep the non-pooled axis {a} "
                             f"({x.shape[a]}), got {shape[a]}")
    plans = _whole_plans(x, pooled, shape)

    def block_for(idx):
        block_shape = tuple(shape[a] if a in pooled else plans[a].chunks[idx[a]]
                            for a in range(x.ndim))
        return _WholeBlock(function, dict(arguments, workers=_task_workers(arguments)),
                           {"output_shape": block_shape})

    return _build("max-unpool", [x, indices], plans, range(x.ndim), block_for,
                  _dtypes(_natural_meta(x, arguments, False)))


def _passthrough(function, arguments):
    """Functions that only call other public functions, which take the Dask
    array themselves."""
    return function(**arguments)


class _PyramidBlock:
    """One block of a pyramid: all its levels, with the whole array's windows."""

    def __init__(self, shape, arguments):
        self.shape = shape
        self.arguments = arguments

    def __call__(self, block):
        from ._beyond import pyramid_of_block
        args = dict(self.arguments)
        levels = pyramid_of_block(block, self.shape, args.pop("levels"),
                                  args.pop("factor"), args.pop("method"),
                                  args.pop("axes"), args)
        return tuple(levels) if len(levels) > 1 else levels[0]


def _pyramid(function, arguments):
    """Every level from blocks that hold whole windows of the last level: one
    task per block computes all its levels with the NumPy function, so each
    level equals NumPy's bitwise and the input is read once."""
    from ._beyond import Pyramid
    x = _as_dask(arguments["input"])
    plan = pyramid_plan(x.shape, x.chunks, arguments["levels"], arguments["factor"],
                        arguments.get("axes"))
    x = x.rechunk(plan.chunks)
    plans = [_batch_plan(c) for c in x.chunks]
    arguments = {k: v for k, v in arguments.items() if k != "input"}
    arguments.update(levels=plan.levels, workers=_task_workers(arguments))
    block = _PyramidBlock(x.shape, arguments)
    probe_shape = tuple(min(n, f) for n, f in zip(x.shape, plan.factors))
    probe = function(**dict(arguments, input=np.zeros(probe_shape, x.dtype)))
    out_chunks = [tuple(tuple(-(-c // f ** k) for c in axis)
                        for axis, f in zip(x.chunks, plan.factors))
                  for k in range(1, plan.levels + 1)]
    levels = _build("pyramid", [x], plans, range(x.ndim), lambda idx: block,
                    _dtypes(tuple(probe)), out_chunks)
    levels = levels if isinstance(levels, tuple) else (levels,)
    return Pyramid(list(levels), probe.scales, probe.translations)


class PyramidPlan:
    """Blocks of a pyramid: ``levels``, the per-axis ``factors`` (1 on axes not
    pooled), ``top_window`` (the last level's window, ``factors**levels``) and
    the input ``chunks`` (multiples of that window along every pooled axis)."""

    def __init__(self, levels, factors, top_window, chunks):
        self.levels = levels
        self.factors = factors
        self.top_window = top_window
        self.chunks = chunks


def pyramid_plan(shape, chunks, levels, factor, axes, target=None):
    """Chunks of a pyramid's input: each a multiple of the last level's window
    along the pooled axes (or the whole axis), near ``chunks`` (or, with
    ``target``, about ``target`` elements)."""
    from ._beyond import _level_count
    from ._support import int_at_least, normalize_axes, normalize_sequence
    user_axes = normalize_axes(axes, len(shape))
    user_factors = normalize_sequence(factor, len(user_axes), "factor", 1)
    if all(f == 1 for f in user_factors):
        raise ValueError(f"factor must be above 1 on some pooled axis, got {factor!r}")
    if levels is None:
        levels = _level_count(shape, user_axes, user_factors)
    else:
        levels = int_at_least(levels, "levels", 1)
    factors = [1] * len(shape)
    for a, f in zip(user_axes, user_factors):
        factors[a] = f
    top = tuple(f ** levels for f in factors)
    if target is not None:
        chunks = _chunks_near(shape, top, target)
    out = []
    for a, n in enumerate(shape):
        if top[a] >= n:
            out.append((n,))
            continue
        step = -(-max(chunks[a]) // top[a]) * top[a]
        out.append((step,) * (n // step) + ((n % step,) if n % step else ()))
    return PyramidPlan(levels, tuple(factors), top, tuple(out))


def _chunks_near(shape, top, target):
    """Chunk lengths, multiples of ``top``, of at most ``target`` elements:
    grown from one window by doubling the shortest axis that can grow, so
    blocks are about as long along every axis."""
    sizes = [min(t, n) for t, n in zip(top, shape)]
    if math.prod(sizes) > target:
        raise ValueError(
            f"one block of the last level's window {tuple(top)} holds "
            f"{math.prod(sizes)} elements, more than the memory bound allows "
            f"({int(target)}); ask for fewer levels or more memory")
    while True:
        growable = [a for a in range(len(shape)) if sizes[a] < shape[a]
                    and math.prod(sizes) // sizes[a] * min(2 * sizes[a], shape[a])
                    <= target]
        if not growable:
            return tuple((s,) for s in sizes)
        a = min(growable, key=lambda a: (sizes[a], -a))
        sizes[a] = min(2 * sizes[a], shape[a])


_HANDLERS = {
    "adaptive_pool": _passthrough,
    "adaptive_avg_pool": _passthrough,
    "adaptive_max_pool": _passthrough,
    "global_avg_pool": _passthrough,
    "global_max_pool": _passthrough,
    "pyramid": _pyramid,
    "catavgmax_pool": _catavgmax,
    "maxblur_pool": _maxblur,
    "global_pool": _global,
    "fractional_max_pool": _fractional,
    "max_unpool": _unpool,
}


# --------------------------------------------------------------------------- gradients

# The gradients whose windows are another function's: (function, method).
_GRADIENT_ALIASES = {"adaptive_avg_pool": ("adaptive_pool", "avg"),
                     "adaptive_max_pool": ("adaptive_pool", "max"),
                     "global_avg_pool": ("global_pool", "avg"),
                     "global_max_pool": ("global_pool", "max")}


def gradient(name, arguments, grad_output):
    """``fastpool.grad.<name>`` where the input or ``grad_output`` is a Dask
    array: a Dask array of the input's shape and chunks, bitwise the NumPy
    gradient.  ``arguments``: the forward function's bound arguments."""
    from . import _beyond, grad
    _check_output(arguments)
    arguments = dict(arguments)
    if name in _GRADIENT_ALIASES:
        name, method = _GRADIENT_ALIASES[name]
        arguments.pop("return_indices", None)
        shared = {k: arguments.pop(k) for k in ("input", "output_size", "axes",
                                                  "keepdims") if k in arguments}
        arguments = dict(shared, method=method, method_kwargs=arguments)
    if name == "maxblur_pool":
        return _maxblur_gradient(arguments, grad_output)
    if name == "fractional_max_pool":
        return _fractional_gradient(arguments, grad_output)
    if name in ("adaptive_pool", "global_pool"):
        method_kwargs = dict(arguments.pop("method_kwargs", None) or {})
        method = arguments["method"]
        _beyond._no_sliding(method_kwargs, name)
        if name == "adaptive_pool":
            size = _beyond._adaptive_geometry(arguments["output_size"], name)
        else:
            size = _beyond._whole_axes(name)
            grad_output = _keep_pooled(grad_output, arguments, method, method_kwargs)
        backward = grad._method_backward(method, name)
        forward = _beyond.METHODS[method]
        args = dict(method_kwargs, input=arguments["input"], size=size,
                    axes=arguments["axes"])
        return _sliding_gradient(forward, backward, args, grad_output)
    import fastpool
    return _sliding_gradient(getattr(fastpool, name), grad._FUNCTIONS[name],
                             arguments, grad_output)


def _keep_pooled(grad_output, arguments, method, method_kwargs):
    """A global pool's ``grad_output`` with its pooled axes back (length 1)."""
    if arguments.get("keepdims"):
        return grad_output
    x = arguments["input"]
    pooled = _pooled_axes(arguments, len(x.shape))
    lead = 1 if method == "catavgmax" and method_kwargs.get("axis") is None else 0
    g = _as_dask(grad_output)
    expected = tuple(n for a, n in enumerate(x.shape) if a not in pooled)
    if method == "catavgmax":
        axis = method_kwargs.get("axis")
        if axis is not None:
            axis = operator.index(axis) % len(x.shape)
            at = sum(1 for a in range(axis) if a not in pooled)
            expected = expected[:at] + (2 * expected[at],) + expected[at + 1:]
        expected = (2,) * lead + expected
    if g.shape != expected:
        raise ValueError(f"grad_output has shape {g.shape}; the forward result has "
                         f"shape {expected}")
    return _da().expand_dims(g, tuple(a + lead for a in sorted(pooled)))


def _grad_dtype(x, output):
    if output is not None:
        from ._support import check_dtype
        return check_dtype(output)
    return np.dtype(np.float32 if x.dtype in (np.float16, np.float32) else np.float64)


class _GradientBlock:
    """One chunk of a gradient: NumPy's gradient over the windows that read the
    chunk, cut to the chunk (``crop``: per axis, the slab positions inside the
    chunk and where they go)."""

    def __init__(self, backward, arguments, geometry, crop, shape, dtype):
        self.backward = backward
        self.arguments = arguments
        self.geometry = geometry
        self.crop = crop
        self.shape = shape
        self.dtype = dtype

    def __call__(self, g=None, x=None, *second):
        out = np.zeros(self.shape, dtype=self.dtype)
        if x is None:
            return out   # no window reads this chunk
        args = {k: v for k, v in self.arguments.items()
                if k not in ("input", "size", "stride", "padding", "dilation",
                             "ceil_mode")}
        for name in ("weights", "logits"):
            if name in args:
                args[name] = second[0]
        if self.backward.__name__ == "_blur_backward":
            dx = self.backward(g, x, geometry=self.geometry, **args)
        else:
            dx = self.backward(g, x, size=self.geometry, **args)
        source = np.ix_(*[s for s, _ in self.crop])
        target = np.ix_(*[t for _, t in self.crop])
        out[target] = dx[source]
        return out


def _sliding_gradient(forward, backward, arguments, grad_output):
    """The gradient of a sliding (or given-window) pool, chunked as the input."""
    from ._geometry import read_once
    from ._pool import c_steps
    x = _as_dask(arguments["input"])
    name = forward.__name__
    # The forward's plan checks every argument now, as NumPy's gradient would.
    forward_args = {k: v for k, v in arguments.items() if k != "output"}
    forward(**dict(forward_args, input=x)) if name != "maxblur_pool" else None
    second = [n for n in ("weights", "logits") if n in arguments]
    extra = [_as_dask(arguments[n], like=x) for n in second]
    p, windows = _windows_of(name, arguments, x.shape)
    by_axis = dict(zip(p.axes, windows))
    order = _pooled_axes(arguments, x.ndim)
    out_shape = tuple(by_axis[a].out_len if a in by_axis else n
                      for a, n in enumerate(x.shape))
    # grad_output's axes: the forward result's (catavgmax stacks or doubles one).
    g = _as_dask(grad_output)
    lead, doubled = 0, None
    expected = out_shape
    if name == "catavgmax_pool":
        axis = arguments.get("axis")
        if axis is None:
            lead, expected = 1, (2,) + out_shape
        else:
            doubled = operator.index(axis) % x.ndim
            expected = out_shape[:doubled] + (2 * out_shape[doubled],) + \
                out_shape[doubled + 1:]
    if g.shape != expected:
        raise ValueError(f"grad_output has shape {g.shape}; the forward result has "
                         f"shape {expected}")
    g_chunks = {a + lead: (x.chunks[a] * 2 if a == doubled else x.chunks[a])
                for a in range(x.ndim) if a not in by_axis}
    if lead:
        g_chunks[0] = (2,)
    g = g.rechunk(g_chunks)
    plans = [(_gradient_plan(by_axis[a], x.chunks[a], g.chunks[a + lead])
              if a in by_axis else _batch_plan(x.chunks[a])) for a in range(x.ndim)]
    disjoint = read_once(windows)[0]
    arguments = dict(arguments, workers=_task_workers(arguments))
    random = _draws(name, arguments)
    steps = c_steps(out_shape)
    dtype = _grad_dtype(x, arguments.get("output"))
    arguments["output"] = dtype

    def reads(idx):
        return all(plans[a].windows[idx[a]] is not None for a in p.axes)

    def pieces_for(idx):
        if not reads(idx):
            return [None] * (2 + len(extra))
        x_pieces = [plans[a].pieces[j] for a, j in enumerate(idx)]
        g_pieces = [plans[a].g_pieces[j] for a, j in enumerate(idx)]
        if doubled is not None:
            j, n = idx[doubled], len(x.chunks[doubled])
            g_pieces[doubled] = [(j, 0, x.chunks[doubled][j]),
                                 (n + j, 0, x.chunks[doubled][j])]
        if lead:
            g_pieces = [[(0, 0, 2)]] + g_pieces
        return [g_pieces, x_pieces] + [x_pieces] * len(extra)

    def block_for(idx):
        shape = tuple(plans[a].chunks[j] for a, j in enumerate(idx))
        if not reads(idx):
            return _GradientBlock(backward, arguments, None, None, shape, dtype)
        local = {a: plans[a].windows[idx[a]] for a in p.axes}
        counter = None
        if random:
            first = sum((plans[a].rows[j][0] if a in by_axis else plans[a].bounds[j][0])
                        * s for a, (j, s) in enumerate(zip(idx, steps)))
            counter = (first, steps)
        crop = []
        for a, j in enumerate(idx):
            if a not in by_axis:
                crop.append((np.arange(shape[a]), np.arange(shape[a])))
                continue
            lo, hi = plans[a].bounds[j]
            slab = plans[a].index[j]
            inside = np.flatnonzero((slab >= lo) & (slab < hi))
            crop.append((inside, slab[inside] - lo))
        return _GradientBlock(backward, arguments,
                              _chunk_geometry(local, order, name, counter, disjoint),
                              crop,
                              shape, dtype)

    return _build(f"grad-{name.replace('_', '-')}", [g, x] + extra, plans,
                  range(x.ndim), block_for, [dtype], pieces_for=pieces_for)


def _maxblur_gradient(arguments, grad_output):
    """The chain rule on Dask arrays, as NumPy's gradient composes it."""
    from . import grad
    from ._pool import max_pool
    a = arguments
    peaks = max_pool(a["input"], a["size"], 1, nan_policy=a["nan_policy"],
                     nodata=a["nodata"], axes=a["axes"], workers=a["workers"])
    g_peaks = grad.blur_pool(grad_output, peaks, a["factor"], order=a["order"],
                             mode=a["mode"], cval=a["cval"], nan_policy=a["nan_policy"],
                             nodata=a["nodata"], axes=a["axes"], workers=a["workers"])
    return grad.max_pool(g_peaks, a["input"], a["size"], 1, nan_policy=a["nan_policy"],
                         nodata=a["nodata"], axes=a["axes"], output=a["output"],
                         workers=a["workers"])


def _fractional_gradient(arguments, grad_output):
    """Each batch block's gradient over its whole pooled axes, with its planes'
    samples."""
    from . import grad
    x = _as_dask(arguments["input"])
    pooled, out_shape, samples = _fractional_plan(arguments, x)
    g = _as_dask(grad_output)
    if g.shape != out_shape:
        raise ValueError(f"grad_output has shape {g.shape}; the forward result has "
                         f"shape {out_shape}")
    g = g.rechunk({a: (x.chunks[a] if a not in pooled else -1) for a in range(x.ndim)})
    plans = _whole_plans(x, pooled, list(x.shape))
    dtype = _grad_dtype(x, arguments.get("output"))
    arguments = dict(arguments, seed=None, output=dtype, workers=_task_workers(arguments))

    def pieces_for(idx):
        x_pieces = [plans[a].pieces[j] for a, j in enumerate(idx)]
        g_pieces = [([(0, 0, out_shape[a])] if a in pooled else x_pieces[a])
                    for a in range(x.ndim)]
        return [g_pieces, x_pieces]

    def block_for(idx):
        return _FractionalGradientBlock(
            grad.fractional_max_pool,
            dict(arguments, samples=_plane_samples(samples, plans, idx, pooled)))

    return _build("grad-fractional-max-pool", [g, x], plans, range(x.ndim), block_for,
                  [dtype], pieces_for=pieces_for).rechunk(x.chunks)


class _FractionalGradientBlock:
    def __init__(self, function, arguments):
        self.function = function
        self.arguments = arguments

    def __call__(self, g, x):
        return self.function(g, **dict(self.arguments, input=x))
