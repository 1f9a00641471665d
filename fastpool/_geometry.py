"""The window geometry shared by every pooling method.

Each pooled axis is described by one :class:`AxisWindows`: the output length and,
for every output position ``o`` and window offset ``j``, which input element the
sample ``(o, j)`` reads.  Kernels consume only these tables, so every method and
every geometry (sliding, adaptive, fractional) uses the same representation.

Table entries (``int64``):

``>= 0``
    index of the input element along the axis (extension modes already mapped);
``EXCLUDED`` (``-1``)
    the sample is not part of the window (``mode='ignore'`` padding, positions
    that only ``ceil_mode`` reaches, or unused slots of a shorter window);
``<= -2``
    the sample holds ``cval`` (``mode='constant'``); ``-2 - entry`` is the
    nearest in-input index, reported by ``return_indices`` when cval wins.
"""

import functools
import os
from dataclasses import dataclass

import numpy as np

EXCLUDED = -1

MODES = ("ignore", "constant", "reflect", "mirror", "nearest", "wrap")


def output_length(n, size, stride, padding, dilation, ceil_mode):
    """Output length along one axis, as PyTorch computes it (may be <= 0)."""
    span = dilation * (size - 1) + 1
    room = n + 2 * padding - span
    if ceil_mode:
        out = -(-room // stride) + 1
        # The last window must start inside the input or the left padding.
        if (out - 1) * stride >= n + padding:
            out -= 1
    else:
        out = room // stride + 1
    return max(out, 0)


def extend_index(pos, n, mode):
    """Map positions outside ``[0, n)`` by scipy.ndimage's extension ``mode``."""
    pos = np.asarray(pos, dtype=np.int64)
    if mode == "reflect":
        period = 2 * n
        m = np.mod(pos, period)
        return np.where(m >= n, period - 1 - m, m)
    if mode == "mirror":
        if n == 1:
            return np.zeros_like(pos)
        period = 2 * n - 2
        m = np.mod(pos, period)
        return np.where(m >= n, period - m, m)
    if mode == "nearest":
        return np.clip(pos, 0, n - 1)
    if mode == "wrap":
        return np.mod(pos, n)
    raise AssertionError(mode)


@dataclass(frozen=True, eq=False)
class AxisWindows:
    """Windows along one pooled axis.

    Attributes
    ----------
    n : int
        Input length.
    table : ndarray of int64, shape (out_len, width)
        Sample table (see the module docstring).
    interior : (int, int)
        ``[lo, hi)``: output positions whose samples are ``start + j*dilation`` for
        ``j < width`` and all inside the input.  Kernels read these directly with
        ``start = o*stride - padding``; the other positions go through ``table``.
    stride, padding, dilation : int
        Only meaningful for the interior positions.
    given : bool
        The windows were given by their bounds (adaptive, fractional), not by a
        sliding pool: each is one run of input cells, and the sum and extremum
        kernels reduce windows outside the interior column by column (see
        ``pack_tables``).
    """

    n: int
    table: np.ndarray
    interior: tuple
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    given: bool = False

    @property
    def out_len(self):
        return self.table.shape[0]

    @property
    def width(self):
        return self.table.shape[1]

    @functools.cached_property
    def counts(self):
        """Samples in each window (int64): the entries that are not EXCLUDED."""
        counts = np.count_nonzero(self.table != EXCLUDED, axis=1).astype(np.int64)
        counts.flags.writeable = False
        return counts


@functools.lru_cache(maxsize=None)
def table_limit():
    """The most entries a window table may have: building one takes a few int64
    arrays of its size, which must fit in physical memory (an allocation that
    only overcommit grants would be killed when touched, not refused)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        memory = 1 << 34
    return max(memory // 64, 1 << 24)


def check_length(n, axis):
    """Every geometry needs a pooled axis to hold something."""
    if n == 0:
        raise ValueError(f"axis {axis}: cannot pool an axis of length 0")


def sliding_windows(n, size, stride, padding, dilation, ceil_mode, mode, axis):
    """Windows of a sliding pool along one axis of length ``n``.

    ``axis`` only names the axis in error messages.
    """
    check_length(n, axis)
    out_len = output_length(n, size, stride, padding, dilation, ceil_mode)
    if out_len <= 0:
        span = dilation * (size - 1) + 1
        raise ValueError(
            f"axis {axis}: the pooled result would be empty: the input has length {n}, "
            f"which with padding={padding} is shorter than the window span "
            f"dilation*(size-1)+1 = {span} (size={size}, dilation={dilation})")
    if out_len * size > table_limit():
        raise MemoryError(
            f"axis {axis}: {out_len} windows of {size} samples need a table of "
            f"{out_len * size} entries, more than this machine's memory holds; use a "
            "smaller size or a larger stride")
    starts = np.arange(out_len, dtype=np.int64) * stride - padding
    pos = starts[:, None] + np.arange(size, dtype=np.int64)[None, :] * dilation
    inside = (pos >= 0) & (pos < n)
    in_padding = ~inside & (pos >= -padding) & (pos < n + padding)
    if mode == "ignore":
        table = np.where(inside, pos, EXCLUDED)
        empty = ~inside.any(axis=1)
        if empty.any():
            o = int(np.flatnonzero(empty)[0])
            raise ValueError(
                f"axis {axis}: window {o} holds only padding (dilation={dilation}, "
                f"padding={padding}, input length {n}); with mode='ignore' it would "
                "be empty. Use less padding or dilation, or another mode.")
    elif mode == "constant":
        clamped = np.clip(pos, 0, n - 1)
        table = np.where(inside, pos, np.where(in_padding, -2 - clamped, EXCLUDED))
    else:
        table = np.where(inside, pos,
                         np.where(in_padding, extend_index(pos, n, mode), EXCLUDED))
    # Interior: the window lies fully inside the input.
    o = np.arange(out_len)
    full = (starts >= 0) & (starts + dilation * (size - 1) <= n - 1)
    if full.any():
        idx = o[full]
        lo, hi = int(idx[0]), int(idx[-1]) + 1
    else:
        lo = hi = 0
    table = np.ascontiguousarray(table, dtype=np.int64)
    table.flags.writeable = False
    return AxisWindows(n=n, table=table,
                       interior=(lo, hi), stride=stride, padding=padding,
                       dilation=dilation)


@functools.lru_cache(maxsize=256)
def sliding_geometry(shape, params):
    """AxisWindows for every pooled axis; ``shape`` is the pooled axes' lengths.

    ``params`` is a :class:`fastpool._support.PoolParams`.  Cached: repeated calls
    on same-shaped inputs skip the table building (the tables are read-only).
    """
    return tuple(
        sliding_windows(n, k, s, p, d, params.ceil_mode, params.mode, ax)
        for n, k, s, p, d, ax in zip(shape, params.size, params.stride,
                                     params.padding, params.dilation, params.axes))


@functools.lru_cache(maxsize=256)
def pack_tables(windows):
    """Concatenate the per-axis tables into one flat array for the kernels.

    Returns ``(tables, offsets, widths, out_lens, interior)`` as ``int64`` arrays;
    interior is ``(lo, hi, stride, padding, dilation)`` of the last axis, the
    stride of the axis before it, and whether the last axis' windows are given
    (``AxisWindows.given``).
    """
    tables = np.concatenate([w.table.ravel() for w in windows])
    sizes = [w.table.size for w in windows]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    widths = np.array([w.width for w in windows], dtype=np.int64)
    out_lens = np.array([w.out_len for w in windows], dtype=np.int64)
    last = windows[-1]
    # The last entry: how far the next output row's windows move along the
    # second-to-last pooled axis (for prefetching); 0 for 1-D pooling.
    row_step = windows[-2].stride if len(windows) > 1 else 0
    interior = np.array([last.interior[0], last.interior[1], last.stride,
                         last.padding, last.dilation, row_step, int(last.given)],
                        dtype=np.int64)
    packed = (np.ascontiguousarray(tables, dtype=np.int64), offsets, widths, out_lens,
              interior)
    for a in packed:
        a.flags.writeable = False
    return packed


def given_windows(n, starts, stops):
    """Windows ``[starts[o], stops[o])`` along an axis of length ``n`` (all inside it).

    Windows of one length at a fixed step from 0 get an interior (the kernels'
    direct loops); others are read through the table, shorter windows padded with
    EXCLUDED slots.
    """
    starts = np.asarray(starts, dtype=np.int64)
    stops = np.asarray(stops, dtype=np.int64)
    lengths = stops - starts
    width = int(lengths.max())
    pos = starts[:, None] + np.arange(width, dtype=np.int64)[None, :]
    table = np.ascontiguousarray(np.where(pos < stops[:, None], pos, EXCLUDED))
    table.flags.writeable = False
    steps = np.diff(starts)
    regular = (starts[0] == 0 and (lengths == width).all()
               and (len(steps) == 0 or (steps[0] > 0 and (steps == steps[0]).all())))
    if regular:
        stride = int(steps[0]) if len(steps) else width
        return AxisWindows(n=n, table=table, interior=(0, len(starts)), stride=stride,
                           given=True)
    return AxisWindows(n=n, table=table, interior=(0, 0), given=True)


@functools.lru_cache(maxsize=1024)
def adaptive_windows(n, out):
    """PyTorch's adaptive windows: ``[floor(i*n/out), ceil((i+1)*n/out))``."""
    i = np.arange(out, dtype=np.int64)
    return given_windows(n, (i * n) // out, -((-(i + 1) * n) // out))


@functools.lru_cache(maxsize=1024)
def unit_windows(n):
    """Windows of one element at every position: an axis that is not reduced."""
    return sliding_windows(n, 1, 1, 0, 1, False, "ignore", None)


def fractional_starts(u, n, out, size, dtype):
    """Graham's pseudo-random window starts, as PyTorch's ``generate_intervals``.

    ``u``: the samples in ``[0, 1)`` of many planes (any shape); returns int64 starts
    of shape ``u.shape + (out,)``.  The arithmetic is in ``dtype`` (float32 or
    float64), as PyTorch computes it in the input's type, so equal samples give
    equal windows.
    """
    u = np.asarray(u, dtype=dtype)[..., None]
    starts = np.empty(u.shape[:-1] + (out,), dtype=np.int64)
    if out > 1:
        alpha = dtype.type(n - size) / dtype.type(out - 1)
        i = np.arange(out - 1, dtype=dtype)
        starts[..., :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    starts[..., -1] = n - size
    return starts


@dataclass(frozen=True, eq=False)
class GivenGeometry:
    """Windows that a function of each pooled axis fixes in advance (adaptive and
    global pooling): passed where the sliding functions take ``size``, so every
    method runs its kernel on them unchanged.

    ``windows(lengths)`` maps the pooled axes' lengths, in the order of ``axes`` as
    the user gave them, to one :class:`AxisWindows` each.  ``caller`` names the
    public function in error messages.

    Where the windows are a chunk of a larger pool (a Dask block), ``counter`` is
    ``(first, steps)``: the random stream's counter of the chunk's first result
    and its step along each axis of the result; and ``disjoint`` says whether the
    whole pool's windows read each element at most once (the gradient takes the
    path the whole pool takes, for the same bits).
    """

    windows: object
    caller: str
    counter: tuple = None
    disjoint: bool = None


def _reads(table, n):
    """``(cells, o, k, first)`` of the entries ``>= 0`` of ``table`` (window rows),
    sorted by cell, then window, then tap; ``first`` marks each (cell, window)
    pair's first tap."""
    o, k = np.nonzero(table >= 0)
    i = table[o, k]
    order = np.argsort(i, kind="stable")
    i, o, k = i[order], o[order], k[order]
    first = np.ones(len(i), dtype=np.int64)
    first[1:] = (i[1:] != i[:-1]) | (o[1:] != o[:-1])
    return i.astype(np.int64), o.astype(np.int64), k.astype(np.int64), first


@functools.lru_cache(maxsize=256)
def axis_reads(window):
    """Which windows read each input index of one axis: ``(ptr, o, k, first)``,
    the pairs (window ``o``, tap ``k``) of index ``i`` at ``ptr[i] .. ptr[i+1] - 1``
    (see :func:`reading_lists`)."""
    i, o, k, first = _reads(window.table, window.n)
    ptr = np.searchsorted(i, np.arange(window.n + 1)).astype(np.int64)
    return ptr, o, k, first


@functools.lru_cache(maxsize=256)
def edge_reads(window):
    """:func:`axis_reads` of the windows outside the axis' interior only (padding,
    copies, irregular windows), as ``(cells, o, k, first)`` sorted by cell: few,
    where the interior windows are read directly by their stride."""
    lo, hi = window.interior
    rows = np.r_[0:lo, hi:window.out_len]
    i, o, k, first = _reads(window.table[rows], window.n)
    return i, rows[o].astype(np.int64), k, first


@functools.lru_cache(maxsize=256)
def reading_lists(windows, full_last=True):
    """Which windows read each input element: the inverse of the sample tables,
    for gradients computed by gathering.

    For every pooled axis, input index ``i`` is read by the pairs ``(o, k)`` (window,
    tap) at entries ``ptr[i] .. ptr[i+1] - 1``, sorted by window then tap; a flag
    marks each window's first pair (an element that an extension mode copies
    into a window twice is still one element of it).  ``cval`` samples read no
    element.  Returns ``(ptr, ptr_offsets, o, k, first, entry_offsets, widths,
    longest, edge_cells, edge_o, edge_k, edge_first)``: packed over the axes as
    ``int64`` arrays, ``longest`` the largest product of list lengths over all
    axes but the last (a thread's scratch), and :func:`edge_reads` of the last
    axis.  Without ``full_last`` the last axis' own lists are left empty (the
    kernels that read its interior directly need only the edge lists; a long axis'
    lists hold ``n * width`` entries).
    """
    parts = [axis_reads(w) for w in windows[:-1]]
    longest = 1
    for ptr, *_ in parts:
        if len(ptr) > 1:
            longest *= int(np.diff(ptr).max())
    if full_last:
        parts.append(axis_reads(windows[-1]))
    else:
        empty = np.zeros(0, dtype=np.int64)
        parts.append((np.zeros(1, dtype=np.int64), empty, empty, empty))

    def packed(column):
        pieces = [p[column] for p in parts]
        offsets = np.cumsum([0] + [len(p) for p in pieces[:-1]]).astype(np.int64)
        return np.ascontiguousarray(np.concatenate(pieces), dtype=np.int64), offsets

    ptr, ptr_off = packed(0)
    eo, ent_off = packed(1)
    ek, _ = packed(2)
    ef, _ = packed(3)
    widths = np.array([w.width for w in windows], dtype=np.int64)
    result = (ptr, ptr_off, eo, ek, ef, ent_off, widths, longest,
              *edge_reads(windows[-1]))
    for part in result:
        if isinstance(part, np.ndarray):
            part.flags.writeable = False
    return result


@functools.lru_cache(maxsize=256)
def read_once(windows):
    """``(disjoint, covering)``: whether no input element is read by two samples
    of the windows (on every axis, at most one (window, tap) pair reads each
    index), and whether every element is read at all."""
    disjoint = covering = True
    for w in windows:
        reads = np.bincount(w.table[w.table >= 0], minlength=w.n)
        disjoint = disjoint and bool((reads <= 1).all())
        covering = covering and bool((reads >= 1).all())
    return disjoint, covering
