"""Docstrings of :mod:`fastpool.grad`: one template, and each function's own rule
and example (the examples run in the tests)."""

import inspect
import textwrap

_TEMPLATE = """Gradient of :func:`fastpool.{name}` with respect to ``input``.

{rule}

Parameters
----------
grad_output : array_like
    The gradient of a loss with respect to the result of
    :func:`fastpool.{name}`: of that result's shape.
{names}
    As for :func:`fastpool.{name}`, argument for argument.  ``output`` is
    where the gradient goes: an array of the input's shape, or a float dtype.

Returns
-------
ndarray
    The gradient with respect to ``input``: the input's shape; float32 for
    float16 and float32 input, float64 otherwise.  Bitwise the same for every
    ``workers``.

See Also
--------
fastpool.{name}

Examples
--------
{example}"""


def docstring(name, forward):
    """The docstring of ``fastpool.grad.<name>``, mirroring ``forward``."""
    names = [p.name if p.kind != p.VAR_KEYWORD else "**" + p.name
             for p in inspect.signature(forward).parameters.values()]
    listed = ", ".join(names)  # numpydoc: the names share one line
    rule = textwrap.fill(RULES[name], 79)
    return _TEMPLATE.format(name=name, rule=rule, names=listed,
                            example=EXAMPLES[name].rstrip("\n"))


RULES = {
    'adaptive_avg_pool': (
        "Every sample of a window receives the window's gradient over its count. "
    ),
    'adaptive_max_pool': (
        "All of each window's gradient goes to its first maximum. "
    ),
    'adaptive_pool': (
        "The method's own rule over PyTorch's adaptive windows. "
    ),
    'avg_pool': (
        "Every sample of a window receives the window's gradient divided by the count "
        'the mean divides by (or by ``divisor``). '
    ),
    'avgmax_pool': (
        "Half of :func:`avg_pool`'s gradient plus half of :func:`max_pool`'s. "
    ),
    'blur_pool': (
        "Each sample receives its binomial weight over the window's weight sum times "
        "the window's gradient: the blur's adjoint. "
    ),
    'catavgmax_pool': (
        "``grad_output`` has the forward's stacked (or concatenated) shape: its average "
        "half takes :func:`avg_pool`'s rule, its max half :func:`max_pool`'s. "
    ),
    'dpp_pool': (
        'The derivative of the weighted mean whose weights ``alpha + rho(x_i - m)`` '
        'depend on the input, through each sample and through the window mean ``m``. '
    ),
    'fractional_max_pool': (
        "All of each window's gradient goes to its first maximum (PyTorch's rule); pass "
        'the same ``seed`` or ``samples`` as to the forward, so that the windows are '
        'the same. '
    ),
    'global_avg_pool': (
        'Every element receives the gradient over the pooled count. '
    ),
    'global_max_pool': (
        'All of the gradient goes to the first maximum. '
    ),
    'global_pool': (
        "The method's own rule over the whole of the pooled axes. "
    ),
    'lip_pool': (
        "Sample ``i`` receives ``exp(logits_i) / sum(exp(logits))`` times the window's "
        'gradient (the logits are constants). '
    ),
    'lp_pool': (
        "Sample ``x`` receives ``x**(p-1) * out**(1-p)`` times the window's gradient "
        "(divided by the window's count with ``average=True``); a window whose result "
        "is 0 sends nothing (PyTorch's formula gives NaN there).  ``p=inf`` is "
        ":func:`max_pool`'s. "
    ),
    'max_pool': (
        "All of each window's gradient goes to its maximum: the first in C order on "
        "ties (as PyTorch's CPU kernels), the first NaN where a NaN propagates; nothing "
        'where a ``cval`` sample wins. '
    ),
    'maxblur_pool': (
        "The chain rule: :func:`blur_pool`'s gradient, then :func:`max_pool`'s. "
    ),
    'median_pool': (
        "All of each window's gradient goes to the selected sample: the first in C "
        'order equal to the median. '
    ),
    'min_pool': (
        "All of each window's gradient goes to its minimum (ties and NaN as "
        ':func:`max_pool`). '
    ),
    'mixed_pool': (
        "``alpha * `` :func:`max_pool`'s ``+ (1 - alpha) * `` :func:`avg_pool`'s; with "
        "``alpha=None`` each window replays the forward's choice from the same "
        '``seed``. '
    ),
    'mode_pool': (
        "All of each window's gradient goes to the first sample in C order that holds "
        'the mode. '
    ),
    'percentile_pool': (
        "All of each window's gradient goes to the selected sample: the first in C "
        'order equal to the result. '
    ),
    'rank_pool': (
        "All of each window's gradient goes to the selected sample: the first in C "
        'order equal to the result. '
    ),
    'soft_pool': (
        'The derivative of the softmax-weighted mean: sample ``x_i`` receives ``s_i * '
        '(1 + beta * (x_i - out))``, ``s_i = exp(beta*x_i) / sum(exp(beta*x))``, times '
        "the window's gradient. "
    ),
    'stochastic_pool': (
        '``training=True``: all of the gradient goes to the sample the forward drew, '
        'replayed from the same ``seed`` (pass the same int to both calls; a Generator '
        'advances).  ``training=False``: ``(2*x_i - out) / sum(x)``. '
    ),
    'sum_pool': (
        "Every sample of a window receives the window's gradient. "
    ),
    'weighted_pool': (
        "Sample ``i`` receives ``w_i / sum(w)`` times the window's gradient (the "
        'weights are constants). '
    ),
}

EXAMPLES = {
    'adaptive_avg_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.adaptive_avg_pool(np.ones(2), np.arange(4.0), 2)\n'
        'array([0.5, 0.5, 0.5, 0.5])\n'
    ),
    'adaptive_max_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.adaptive_max_pool(np.ones(2), np.array([3., 1., 4., 1., 5.]), 2)\n'
        'array([0., 0., 1., 0., 1.])\n'
    ),
    'adaptive_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.arange(5.0)\n'
        '>>> fastpool.grad.adaptive_pool(np.ones(2), x, 2).round(3)\n'
        'array([0.333, 0.333, 0.667, 0.333, 0.333])\n'
        ">>> fastpool.grad.adaptive_pool(np.ones(2), x, 2, 'max')\n"
        'array([0., 0., 1., 0., 1.])\n'
    ),
    'avg_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.arange(8.0).reshape(2, 4)\n'
        '>>> fastpool.grad.avg_pool(np.array([[1., 2.]]), x, 2)\n'
        'array([[0.25, 0.25, 0.5 , 0.5 ],\n'
        '       [0.25, 0.25, 0.5 , 0.5 ]])\n'
        '>>> fastpool.grad.avg_pool(np.ones((2, 2)), x, 3, 2, padding=1, axes=1)\n'
        'array([[0.5       , 0.83333333, 0.33333333, 0.33333333],\n'
        '       [0.5       , 0.83333333, 0.33333333, 0.33333333]])\n'
    ),
    'avgmax_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.avgmax_pool(np.ones((1, 1)), np.array([[1., 3.]]), (1, 2))\n'
        'array([[0.25, 0.75]])\n'
    ),
    'blur_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> g = np.zeros((1, 4)); g[0, 1] = 1\n'
        '>>> fastpool.grad.blur_pool(g, np.zeros((1, 8)), 2, axes=1)\n'
        'array([[0.  , 0.25, 0.5 , 0.25, 0.  , 0.  , 0.  , 0.  ]])\n'
    ),
    'catavgmax_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.catavgmax_pool(np.ones((2, 1, 1)), np.array([[1., 3.]]), (1, 2))\n'
        'array([[0.5, 1.5]])\n'
    ),
    'dpp_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[0., 0., 0., 8.]])\n'
        '>>> fastpool.grad.dpp_pool(np.ones((1, 1)), x, (1, 4), lam=0)\n'
        'array([[0.25, 0.25, 0.25, 0.25]])\n'
    ),
    'fractional_max_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.arange(16.0).reshape(4, 4)\n'
        '>>> fastpool.grad.fractional_max_pool(np.ones((2, 2)), x, output_size=2, seed=0)\n'
        'array([[0., 0., 0., 0.],\n'
        '       [0., 1., 0., 1.],\n'
        '       [0., 0., 0., 0.],\n'
        '       [0., 1., 0., 1.]])\n'
    ),
    'global_avg_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.global_avg_pool(1.0, np.ones((2, 2)))\n'
        'array([[0.25, 0.25],\n'
        '       [0.25, 0.25]])\n'
    ),
    'global_max_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.global_max_pool(np.array([1., 2.]), np.array([[1., 5.], [7., 2.]]), axes=1)\n'
        'array([[0., 1.],\n'
        '       [2., 0.]])\n'
    ),
    'global_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[1., 5.], [7., 2.]])\n'
        ">>> fastpool.grad.global_pool(1.0, x, 'max')\n"
        'array([[0., 0.],\n'
        '       [1., 0.]])\n'
        ">>> fastpool.grad.global_pool(np.ones(2), x, 'avg', axes=1)\n"
        'array([[0.5, 0.5],\n'
        '       [0.5, 0.5]])\n'
    ),
    'lip_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.lip_pool(np.ones((1, 1)), np.array([[1., 3.]]), [[0., 0.]], (1, 2))\n'
        'array([[0.5, 0.5]])\n'
    ),
    'lp_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.lp_pool(np.ones((1, 1)), np.array([[3., 4.]]), 2, (1, 2))\n'
        'array([[0.6, 0.8]])\n'
    ),
    'max_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[1., 5., 2., 0.], [3., 4., 8., 8.]])\n'
        '>>> fastpool.grad.max_pool(np.ones((1, 2)), x, 2)\n'
        'array([[0., 1., 0., 0.],\n'
        '       [0., 0., 1., 0.]])\n'
    ),
    'maxblur_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.zeros((1, 9)); x[0, 4] = 16\n'
        '>>> fastpool.grad.maxblur_pool(np.ones((1, 4)), x, 2, axes=1)\n'
        'array([[0.75, 0.5 , 0.5 , 0.  , 1.  , 0.5 , 0.5 , 0.25, 0.  ]])\n'
    ),
    'median_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[3., 1., 2.]])\n'
        '>>> fastpool.grad.median_pool(np.ones((1, 1)), x, (1, 3))\n'
        'array([[0., 0., 1.]])\n'
    ),
    'min_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[1., 5., 2., 0.], [3., 4., 0., 8.]])\n'
        '>>> fastpool.grad.min_pool(np.ones((1, 2)), x, 2)\n'
        'array([[1., 0., 0., 1.],\n'
        '       [0., 0., 0., 0.]])\n'
    ),
    'mixed_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.mixed_pool(np.ones((1, 1)), np.array([[1., 3.]]), (1, 2), alpha=0.5)\n'
        'array([[0.25, 0.75]])\n'
    ),
    'mode_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> labels = np.array([[1, 2, 2, 3]])\n'
        '>>> fastpool.grad.mode_pool(np.ones((1, 1)), labels, (1, 4))\n'
        'array([[0., 1., 0., 0.]])\n'
    ),
    'percentile_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[3., 1., 2., 5.]])\n'
        '>>> fastpool.grad.percentile_pool(np.ones((1, 1)), x, 25, (1, 4))\n'
        'array([[0., 0., 1., 0.]])\n'
    ),
    'rank_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[3., 1., 2.]])\n'
        '>>> fastpool.grad.rank_pool(np.ones((1, 1)), x, -1, (1, 3))\n'
        'array([[1., 0., 0.]])\n'
    ),
    'soft_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.soft_pool(np.ones((1, 1)), np.array([[1., 1.]]), (1, 2))\n'
        'array([[0.5, 0.5]])\n'
    ),
    'stochastic_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> x = np.array([[1., 3.]])\n'
        '>>> fastpool.grad.stochastic_pool(np.ones((1, 1)), x, (1, 2), training=False)\n'
        'array([[-0.125,  0.875]])\n'
        '>>> g = fastpool.grad.stochastic_pool(np.ones((1, 1)), x, (1, 2), seed=7)\n'
        '>>> bool(g[x == fastpool.stochastic_pool(x, (1, 2), seed=7)[0, 0]][0] == 1)\n'
        'True\n'
    ),
    'sum_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.sum_pool(np.array([[1., 2.]]), np.zeros((2, 4)), 2)\n'
        'array([[1., 1., 2., 2.],\n'
        '       [1., 1., 2., 2.]])\n'
    ),
    'weighted_pool': (
        '>>> import numpy as np, fastpool\n'
        '>>> fastpool.grad.weighted_pool(np.ones((1, 1)), np.array([[1., 3.]]), [[1, 3]], (1, 2))\n'
        'array([[0.25, 0.75]])\n'
    ),
}
