"""Parameter text written once and filled into every public docstring."""

import textwrap

_docdict = {
    "input": """\
input : array_like
    The array to pool.  bool, int8-int64, uint8-uint64, float16 (computed and
    returned as float32), float32 and float64; any memory layout.""",
    "size": """\
size : int or sequence of int
    Window size, one value for every pooled axis or one per pooled axis.""",
    "stride": """\
stride : int or sequence of int, optional
    Step between windows; defaults to ``size`` (non-overlapping blocks).""",
    "padding": """\
padding : int or sequence of int, optional
    Samples added at both ends of each pooled axis, ``0 <= padding <= size // 2``.
    What they hold is set by ``mode``.""",
    "dilation": """\
dilation : int or sequence of int, optional
    Spacing between the samples of a window (1: adjacent).""",
    "ceil_mode": """\
ceil_mode : bool, optional
    Round the output length up instead of down (PyTorch's rule: a window must
    start inside the input or the left padding).  Positions past the padding that
    only ``ceil_mode`` reaches are never part of a window.""",
    "mode": """\
mode : {'ignore', 'constant', 'reflect', 'mirror', 'nearest', 'wrap'}, optional
    What padded positions hold.  ``'ignore'`` (default): they are not part of the
    window (an average divides by the valid count).  ``'constant'``: ``cval``.
    The others extend the input as scipy.ndimage does.""",
    "cval": """\
cval : scalar, optional
    Value of padded positions when ``mode='constant'``.  For integer input it is
    rounded half to even and saturated to the input's dtype, as if the input were
    padded in its own dtype.""",
    "nan_policy": """\
nan_policy : {'propagate', 'omit', 'raise'}, optional
    ``'propagate'``: a NaN in the window gives NaN.  ``'omit'``: NaNs are skipped
    (a window of only NaN gives NaN).  ``'raise'``: ValueError if the input holds
    a NaN.""",
    "nodata": """\
nodata : scalar, optional
    A sentinel treated as missing, like an omitted NaN (e.g. 0 background or
    -9999 in rasters); a window with only ``nodata`` gives ``nodata``.  A NaN
    ``nodata`` is the same as ``nan_policy='omit'``.""",
    "axes": """\
axes : int or sequence of int, optional
    The pooled axes (default: all).  The other axes are batch/channel axes and are
    kept.  Per-axis values of ``size`` etc. follow the order given here.""",
    "output": """\
output : ndarray or dtype, optional
    Array to write the result into (of the result's shape, not overlapping the
    input), or the dtype of the result.  Float results stored in an integer dtype
    are rounded half to even and saturated.""",
    "seed": """\
seed : None, int or numpy.random.Generator, optional
    Key of the per-window random stream: equal seeds give equal results, for
    every thread count and memory layout.  A Generator is advanced by one draw;
    None draws fresh entropy.""",
    "output_size": """\
output_size : int or sequence of int or None
    Output length of every pooled axis, or one per pooled axis in the order of
    ``axes``; ``None`` keeps that axis' length.""",
    "method": """\
method : str, optional
    The pooling method: the name of a fastpool function that takes a window
    ``size``, without ``_pool``: ``'avg'`` (default), ``'max'``, ``'min'``,
    ``'sum'``, ``'median'``, ``'rank'``, ``'percentile'``, ``'mode'``, ``'lp'``,
    ``'soft'``, ``'stochastic'``, ``'mixed'``, ``'avgmax'``, ``'catavgmax'``,
    ``'weighted'``, ``'lip'``, ``'dpp'``, ``'generic'``.""",
    "method_kwargs": """\
**method_kwargs
    The method's own parameters (``rank``, ``p``, ``weights``, ``seed``,
    ``return_indices``, ...) and the shared ``nan_policy``, ``nodata``,
    ``output`` and ``workers``.""",
    "keepdims": """\
keepdims : bool, optional
    Keep the pooled axes with length 1 (as NumPy's reductions); by default they
    are removed.""",
    "workers": """\
workers : int, optional
    Threads: ``None`` uses the library default (see :func:`fastpool.set_workers`),
    ``-1`` all cores, ``>= 1`` exactly that many.  The result is bitwise the same
    for every value.""",
}


def fill(func):
    """Replace ``%(name)s`` in ``func.__doc__`` with the shared parameter text."""
    doc = func.__doc__
    if doc:
        lines = doc.expandtabs().splitlines()
        indent = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()),
                     default=0)
        table = {k: textwrap.indent(v, " " * indent)[indent:] for k, v in _docdict.items()}
        func.__doc__ = doc % table
    return func
