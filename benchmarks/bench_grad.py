#!/usr/bin/env python
"""fastpool's pooling gradients (``fastpool.grad``: the vector-Jacobian product
of a pooling function with respect to its input) against PyTorch autograd and a
memory-copy roofline.

    python benchmarks/bench_grad.py                   # full run (~1.5-2 min on 2 cores)
    python benchmarks/bench_grad.py --quick           # smoke test (small arrays)
    python benchmarks/bench_grad.py --cases "max,3x3" --threads 1 --json out.json

Same options, columns, timing and JSON layout as bench_basic.py (see
benchmarks/README.md); benchmarks/table.py renders the JSON.

Every contender computes ``dL/dx`` for a given ``g = dL/dy`` of the forward
result ``y = pool(x)``: an array of the input's shape and dtype (float32).

* fastpool: ``fastpool.grad.<name>(g, x, <the forward's arguments>, workers=n)``;
  it recomputes whatever it needs from the forward itself.
* ``torch-backward``: the backward pass only.  The forward graph is built once,
  outside the timing, on a leaf ``torch.from_numpy(x).requires_grad_()``; a
  call sets ``x.grad = None`` and runs ``y.backward(g, retain_graph=True)``.
  It reuses what the forward saved (max pooling's indices, the soft pool's
  exponentials, ...): the lower bound of what autograd costs.
* ``torch-fwd+bwd``: a fresh leaf from ``torch.from_numpy(x)`` each call, the
  forward and ``backward(g)``: the same work as fastpool's call.
* the roofline: the gradient reads the input once and writes an input-sized
  result (``out_bytes`` = the input's bytes, so the roofline is one copy of the
  input; the read of ``g`` is left out).  The average gradients do not depend
  on ``x`` (only on ``g`` and the window counts): they need not read it and
  can beat this roofline.

Checks: fastpool against torch autograd of the same forward in float64 (the
float32 inputs converted exactly, the gradient rounded once to float32): exact
for max pooling (tie-free inputs), ``allclose(rtol=1e-5, atol=1e-6)`` otherwise.
The float32 torch peers are compared with fastpool's result: allclose with
``rtol=1e-5, atol=1e-6`` (soft pool ``rtol=1e-4``); they sum the gradients of
overlapping windows in float32, so even max pooling's 3x3/2 gradient may differ
in the last bit (reported in the note, not marked).
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Callable, Dict, List, Tuple

# NumPy's OpenBLAS threads busy-wait after a call and take a core from the
# contender timed next.  Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

torch = H.try_import("torch")
F = H.try_import("torch.nn.functional") if torch is not None else None

PEER_ORDER = ["torch-backward", "torch-fwd+bwd"]

# fastpool.grad's function per case.op
FUNCS = {
    "max": "max_pool", "avg": "avg_pool", "adaptive-avg": "adaptive_avg_pool",
    "lp": "lp_pool", "soft": "soft_pool",
}

# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

Case = H.Case

NCHW = (8, 64, 112, 112)
NCHW_Q = (2, 16, 56, 56)
NCHW_S = "(8,64,112,112)"
NCDHW = (2, 16, 64, 64, 64)
NCDHW_Q = (1, 4, 32, 32, 32)
NCDHW_S = "(2,16,64,64,64)"
HW = (2, 3)
DHW = (2, 3, 4)


def _win(op: str, k: int, s: int, pad: int = 0, nd: int = 2, **params) -> Case:
    win = "x".join([str(k)] * nd)
    what = {"max": "max", "avg": "avg", "lp": f"lp p={params.get('p')}", "soft": "soft"}[op]
    name = f"{'NCHW' if nd == 2 else 'NCDHW'} float32 {NCHW_S if nd == 2 else NCDHW_S} {what} {win}/{s}"
    if pad:
        name += f" pad {pad}"
    if op == "avg" and pad:
        name += " (count_include_pad=False)"
    return Case(name + " grad", NCHW if nd == 2 else NCDHW, NCHW_Q if nd == 2 else NCDHW_Q, "float32", op,
                (k,) * nd, (s,) * nd, axes=HW if nd == 2 else DHW, params={"padding": pad, **params})


CASES: List[Case] = [
    _win("max", 2, 2),
    _win("max", 3, 2, 1),
    _win("avg", 2, 2),
    _win("avg", 3, 2, 1),
    _win("max", 2, 2, nd=3),
    _win("avg", 2, 2, nd=3),
    Case(f"NCHW float32 {NCHW_S} adaptive avg 7x7 grad", NCHW, NCHW_Q, "float32", "adaptive-avg", (), (),
         axes=HW, params={"output_size": 7}),
    _win("lp", 3, 2, p=2),
    _win("soft", 2, 2),
]

GRAD_SEED = 1  # g = dL/dy, standard normal
_GRAD: Dict[Tuple, np.ndarray] = {}  # (case name, input shape) -> g


def forward_shape(case: Case, shape) -> Tuple[int, ...]:
    """The forward result's shape: floor((n + 2 p - k) / s) + 1 per pooled
    axis (adaptive: output_size)."""
    res = list(shape)
    axes = case.pooled_axes(len(shape))
    if case.op == "adaptive-avg":
        for a in axes:
            res[a] = case.params["output_size"]
        return tuple(res)
    p = case.params.get("padding", 0)
    for a, k, s in zip(axes, case.size, case.stride):
        res[a] = (shape[a] + 2 * p - k) // s + 1
    return tuple(res)


def tie_free(shape, seed: int) -> np.ndarray:
    """Distinct float32 values in random order: a random permutation of the
    integers -n/2 .. n/2 - 1 times a power of two (exact in float32 for n <=
    2**24), about uniform over [-2, 2): no window has two equal values, so
    max pooling's gradient has one answer."""
    n = int(np.prod(shape))
    if n > 1 << 24:
        raise ValueError("tie_free: more than 2**24 elements")
    scale = 2.0 ** -(max(n - 1, 1).bit_length() - 2)
    rng = np.random.default_rng(seed)
    return ((rng.permutation(n) - n // 2) * scale).astype(np.float32).reshape(shape)


def make_input(case: Case, shape, seed=0) -> np.ndarray:
    """The input x, C-contiguous float32: max, tie-free (``tie_free``); avg and
    adaptive, standard normal; lp, ``abs(standard normal) + 0.1`` (positive: the
    p-norm's gradient is smooth there); soft, ``0.5 * standard normal`` (a small
    range, for the torch formulation's exponentials).  Also draws ``g`` (standard
    normal, the forward result's shape, seed 1)."""
    if case.op == "max":
        x = tie_free(shape, seed)
    else:
        x = H.random_input("float32", shape, seed)
        if case.op == "lp":
            x = np.abs(x) + np.float32(0.1)
        elif case.op == "soft":
            x = x * np.float32(0.5)
    _GRAD.clear()
    rng = np.random.default_rng(GRAD_SEED)
    _GRAD[(case.name, tuple(shape))] = rng.standard_normal(forward_shape(case, shape), dtype=np.float32)
    return np.ascontiguousarray(x)


def grad_output(case: Case, x: np.ndarray) -> np.ndarray:
    return _GRAD[(case.name, x.shape)]


# ---------------------------------------------------------------------------
# torch forwards (used by the reference and the peers)
# ---------------------------------------------------------------------------


def torch_forward(case: Case) -> Tuple[Callable, str]:
    """``(f, shown)``: the forward as torch ops on a tensor ``t``."""
    op, p = case.op, case.params
    nd = len(case.size)
    if op in ("max", "avg"):
        k, s, pad = case.size[0], case.stride[0], p["padding"]
        if op == "max":
            f = F.max_pool2d if nd == 2 else F.max_pool3d
            return (lambda t: f(t, k, s, pad)), f"F.{f.__name__}(t, {k}, {s}, {pad})"
        f = F.avg_pool2d if nd == 2 else F.avg_pool3d
        return ((lambda t: f(t, k, s, pad, count_include_pad=False)),
                f"F.{f.__name__}(t, {k}, {s}, {pad}, count_include_pad=False)")
    if op == "adaptive-avg":
        m = p["output_size"]
        return (lambda t: F.adaptive_avg_pool2d(t, m)), f"F.adaptive_avg_pool2d(t, {m})"
    if op == "lp":
        k, s, pw = case.size[0], case.stride[0], p["p"]
        return (lambda t: F.lp_pool2d(t, pw, k, s)), f"F.lp_pool2d(t, {pw}, {k}, {s})"
    if op == "soft":
        k = case.size[0]

        def soft(t):
            e = torch.exp(t - t.detach().amax())
            return F.avg_pool2d(e * t, k) / F.avg_pool2d(e, k)
        return soft, (f"e = torch.exp(t - t.detach().amax()); F.avg_pool2d(e * t, {k}) / "
                      f"F.avg_pool2d(e, {k})")
    raise ValueError(op)


# ---------------------------------------------------------------------------
# the reference
# ---------------------------------------------------------------------------


def reference(case: Case, x: np.ndarray) -> np.ndarray:
    """torch autograd of the forward in float64 (x and g converted exactly),
    rounded once to float32.  float32 autograd sums the gradients of
    overlapping windows in float32 (1 ulp off in places for 3x3/2); float64
    gives the correctly rounded sums, which fastpool returns."""
    if torch is None:
        raise RuntimeError("the reference is torch autograd: install torch")
    f, _ = torch_forward(case)
    t = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    f(t).backward(torch.from_numpy(grad_output(case, x).astype(np.float64)))
    return t.grad.numpy().astype(x.dtype)


def exact(case: Case) -> bool:
    """Max pooling on tie-free input is compared exactly; the rest with the
    harness's allclose (rtol 1e-5, atol 1e-6)."""
    return case.op == "max"


# ---------------------------------------------------------------------------
# fastpool
# ---------------------------------------------------------------------------


def _grad_module(fp):
    return getattr(fp, "grad", None) if fp is not None else None


def has_function(fp, case: Case) -> bool:
    return hasattr(_grad_module(fp), FUNCS[case.op]) if fp is not None else False


def _accepts(func, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def fastpool_call(case: Case, g: np.ndarray, x: np.ndarray):
    """(args, kwargs, shown) of the fastpool.grad call, without workers / output."""
    op, p = case.op, case.params
    kw = {"axes": case.axes}
    if op in ("max", "avg"):
        args = (g, x, case.size[0], case.stride[0])
        if p["padding"]:
            kw = {"padding": p["padding"], **kw}
        shown = f"g, x, {case.size[0]}, {case.stride[0]}"
    elif op == "adaptive-avg":
        args = (g, x, p["output_size"])
        shown = f"g, x, {p['output_size']}"
    elif op == "lp":
        args = (g, x, p["p"], case.size[0], case.stride[0])
        shown = f"g, x, {p['p']}, {case.size[0]}, {case.stride[0]}"
    elif op == "soft":
        args = (g, x, case.size[0])
        shown = f"g, x, {case.size[0]}"
    else:
        raise ValueError(op)
    return args, kw, shown + "".join(f", {k}={v!r}" for k, v in kw.items())


def fastpool_contenders(fp, case: Case, x: np.ndarray, threads: int, ref: np.ndarray) -> List[H.Contender]:
    if not has_function(fp, case):
        return []
    name = FUNCS[case.op]
    func = getattr(fp.grad, name)
    args, kw, shown = fastpool_call(case, grad_output(case, x), x)
    desc = f"fastpool.grad.{name}({shown}, workers=n)"

    def run():
        return func(*args, workers=threads, **kw)

    res = [H.Contender(H.FASTPOOL, run, kind="fastpool", desc=desc)]
    if _accepts(func, "output"):
        out = np.zeros(ref.shape, ref.dtype)

        def run_out():
            return func(*args, workers=threads, output=out, **kw)
        res.append(H.Contender("fastpool-output", run_out, kind="fastpool-out",
                               desc=f"fastpool.grad.{name}(..., output=<preallocated {out.dtype} {out.shape}>, "
                                    f"workers=n)"))
    return res


def row_label(fp, case: Case, label: str) -> str:
    if fp is not None and not has_function(fp, case):
        return label + f" [fastpool.grad.{FUNCS[case.op]} missing]"
    return label


def payload(fp) -> Dict:
    missing = sorted({FUNCS[c.op] for c in CASES if fp is not None and not has_function(fp, c)})
    return {"fastpool_missing": missing, "reference": "torch autograd in float64, rounded to float32"}


# ---------------------------------------------------------------------------
# peers.  Each builder returns a Contender or None.  Every fn() returns a new
# gradient array (torch allocates x.grad afresh: x.grad is set to None first).
# ---------------------------------------------------------------------------


def peer_checker(case: Case):
    """float32 autograd against fastpool's result (or the reference): allclose
    (rtol 1e-5, soft pool 1e-4; atol 1e-6), also for max pooling (its float32
    sums of overlapping windows' gradients may differ in the last bit)."""
    rtol = 1e-4 if case.op == "soft" else 1e-5

    def checker(res, target):
        st, note = H.check_result(res, target, False, rtol=rtol, atol=1e-6)
        if case.op == "max" and st == "close":
            note = "float32 sums of overlapping windows: " + note
        return st, note
    return checker


def torch_backward_peer(case: Case, x: np.ndarray):
    if torch is None:
        return None
    f, shown = torch_forward(case)
    t = torch.from_numpy(x).requires_grad_()
    y = f(t)  # the graph, built once (outside the timing)
    gt = torch.from_numpy(grad_output(case, x))

    def run():
        t.grad = None
        y.backward(gt, retain_graph=True)
        return t.grad.numpy()
    return H.Contender("torch-backward", run, checker=peer_checker(case),
                       desc=f"y = forward(t) built once on t = torch.from_numpy(x).requires_grad_(), forward: "
                            f"{shown}; timed: t.grad = None; y.backward(g, retain_graph=True); t.grad.numpy()")


def torch_fwd_bwd_peer(case: Case, x: np.ndarray):
    if torch is None:
        return None
    f, shown = torch_forward(case)
    gt = torch.from_numpy(grad_output(case, x))

    def run():
        t = torch.from_numpy(x).requires_grad_()
        f(t).backward(gt)
        return t.grad.numpy()
    return H.Contender("torch-fwd+bwd", run, checker=peer_checker(case),
                       desc=f"t = torch.from_numpy(x).requires_grad_(); forward(t).backward(g); t.grad.numpy(), "
                            f"forward: {shown}")


PEER_BUILDERS: Dict[str, Callable] = {
    "torch-backward": torch_backward_peer,
    "torch-fwd+bwd": torch_fwd_bwd_peer,
}

LEGEND_EXTRA = (
    "Gradients: every contender returns dL/dx (the input's shape) for a given g = dL/dy. "
    "torch-backward times y.backward(g) only, on a forward graph built once (it reuses the saved forward: "
    "max indices, exponentials, ...); torch-fwd+bwd and fastpool do the forward's work too. "
    "Roofline: out_bytes = the input's bytes (read x, write dL/dx; the read of g is left out). "
    "~ timed by one call only (it took longer than --slow seconds; not in the interleaved rounds).")

BENCHMARK = H.Benchmark(
    name="bench_grad",
    title="pooling gradients (fastpool.grad) vs torch autograd",
    doc=__doc__,
    cases=CASES,
    peer_order=PEER_ORDER,
    peer_builders=PEER_BUILDERS,
    make_input=make_input,
    reference=reference,
    fastpool_contenders=fastpool_contenders,
    exact=exact,
    full_budget=8.0,
    full_repeats=(5, 25),
    quick_budget=0.5,
    quick_repeats=(3, 3),
    slow_s=1.0,
    quick_slow_s=0.5,
    legend_extra=LEGEND_EXTRA,
    single_threaded="none: the torch peers run with n threads",
    row_label=row_label,
    payload=payload,
)


def main(argv=None):
    if torch is None:
        print("bench_grad.py needs torch: the reference and both peers are torch autograd", file=sys.stderr)
        return 2
    return H.run_benchmark(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
