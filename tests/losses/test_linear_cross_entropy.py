"""F.linear_cross_entropy / anyloss.LinearCrossEntropyLoss against PyTorch's
reference path (``options=None``: ``cross_entropy(linear(x, W, b), ...)``),
for every option, with the automatic chunking and with tiny chunks and class
blocks; the chunked machinery itself (options, the precomputed gradients and
their scaling, no full logits); the parameter-owning class and state_dict
transfer from a torch module."""

import inspect
import sys
import warnings
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anyloss
import anyloss.functional as F
from helpers import (
    HYPOTHESIS_BACKENDS,
    Case,
    Error,
    assert_close,
    cases,
    check_against_torch,
    errors,
    hypothesis_namespace,
    rand,
    re_arg,
    run_error,
    to_numpy,
)

torch = pytest.importorskip("torch")

NAME = "linear_cross_entropy"
LCE = sys.modules["anyloss.losses.linear_cross_entropy"]
PROB_DIFF = ("input", "linear_weight", "target", "linear_bias", "weight")
IN, C = 4, 5

# id: (input shape, linear_weight shape, class-index target shape)
SHAPES = {
    "unbatched": ((IN,), (C, IN), ()),
    "N": ((10, IN), (C, IN), (10,)),
    "K1": ((3, IN), (C, 2, IN), (3, 2)),
    "K2": ((4, IN), (C, 2, 3, IN), (4, 2, 3)),
    "empty": ((0, IN), (C, IN), (0,)),
    "empty-K": ((0, IN), (C, 2, IN), (0, 2)),
    "K-zero": ((3, IN), (C, 0, IN), (3, 0)),
}
REDUCTIONS = ("none", "mean", "sum")


def targets(rng, shape, c, ignore_index=-100, ignored=0.25, dtype=np.int64):
    t = rng.integers(0, c, size=shape)
    t = np.where(rng.random(shape) < ignored, ignore_index, t) if ignored else t
    return np.asarray(t, dtype=dtype)


def make(shape_id, extras=False, ignore_index=None, ignored=0.25, scale=1.0, **kw):
    """Class-index case; ``extras``: a linear bias and class weights."""
    xshape, wshape, tshape = SHAPES[shape_id]

    def build(rng, dt):
        ii = -100 if ignore_index is None else ignore_index
        args = (
            rand(rng, xshape, dt),
            (rand(rng, wshape, dt) * scale).astype(dt),
            targets(rng, tshape, wshape[0], ii, ignored),
        )
        kwargs = dict(kw)
        if extras:
            kwargs["linear_bias"] = rand(rng, wshape[:-1], dt)
            kwargs["weight"] = rand(rng, (wshape[0],), dt, 0.1, 2.0)
        if ignore_index is not None:
            kwargs["ignore_index"] = ignore_index
        return args, kwargs

    return build


def make_prob(shape_id, extras=False, tdtype=None, wdtype=None, **kw):
    xshape, wshape, _ = SHAPES[shape_id]
    lshape = (*xshape[:-1], wshape[0], *wshape[1:-1])

    def build(rng, dt):
        args = (rand(rng, xshape, dt), rand(rng, wshape, dt), rand(rng, lshape, tdtype or dt, 0.0, 1.0))
        kwargs = dict(kw)
        if extras:
            kwargs["linear_bias"] = rand(rng, wshape[:-1], dt)
            kwargs["weight"] = rand(rng, (wshape[0],), wdtype or dt, 0.1, 2.0).astype(wdtype or dt)
        return args, kwargs

    return build


@pytest.fixture(params=["auto", pytest.param("tiny", marks=pytest.mark.numpy_only)])
def chunking(request):
    """'auto': the automatic chunk (one chunk at these sizes). 'tiny': 3 rows per
    chunk and weight-gradient blocks of a few classes (so N=10 runs 3+3+3+1 and
    K-dimensional blocks straddle classes); on NumPy only, to keep the file fast."""
    if request.param == "auto":
        yield
        return
    with mock.patch.object(LCE, "_chunk_rows", lambda *a: 3), mock.patch.object(LCE, "_BLOCK_BYTES", 3 * IN * 8):
        yield


# ----------------------------------------------------------------- class indices

CASES = [
    Case(f"{s}-{'xb' if e else 'plain'}-ls{ls}-{red}", make(s, extras=e, label_smoothing=ls, reduction=red))
    for s in SHAPES
    for e in (False, True)
    for ls in (0.0, 0.3)
    for red in REDUCTIONS
]
CASES += [  # an ignore_index that is a valid class
    Case(
        f"{s}-{'xb' if e else 'plain'}-ii1-ls{ls}-{red}",
        make(s, extras=e, ignore_index=1, label_smoothing=ls, reduction=red),
    )
    for s in ("unbatched", "N", "K2")
    for e in (False, True)
    for ls in (0.0, 0.3)
    for red in REDUCTIONS
]
CASES += [Case(f"ls1-{red}", make("N", extras=True, label_smoothing=1.0, reduction=red)) for red in REDUCTIONS] + [
    Case(
        "bias-only",
        lambda rng, dt: (
            (rand(rng, (6, IN), dt), rand(rng, (C, IN), dt), targets(rng, (6,), C)),
            {"linear_bias": rand(rng, (C,), dt)},
        ),
    ),
    Case("ignore-index-0-K", make("K2", extras=True, ignore_index=0, label_smoothing=0.2)),
    Case("ignore-index-negative", make("N", extras=True, ignore_index=-1, ignored=0.5, label_smoothing=0.2)),
    Case(
        "uint8-target",
        lambda rng, dt: (
            (rand(rng, (6, IN), dt), rand(rng, (C, IN), dt), targets(rng, (6,), C, ignored=0, dtype=np.uint8)),
            {"reduction": "sum"},
        ),
    ),
    # Logits of size ~1e3: the chunk's max shift and log-sum-exp keep full precision.
    *[Case(f"huge-logits-ls{ls}", make("N", extras=True, scale=300.0, label_smoothing=ls)) for ls in (0.0, 0.3)],
    Case(
        "in-features-0",
        lambda rng, dt: (
            (rand(rng, (5, 0), dt), rand(rng, (C, 0), dt), targets(rng, (5,), C)),
            {"linear_bias": rand(rng, (C,), dt), "label_smoothing": 0.1},
        ),
    ),
    Case(
        "no-classes-all-ignored",
        lambda rng, dt: ((rand(rng, (3, IN), dt), rand(rng, (0, IN), dt), np.full(3, -100)), {"reduction": "none"}),
    ),
    Case(
        "no-classes-all-ignored-ls",
        lambda rng, dt: (
            (rand(rng, (3, IN), dt), rand(rng, (0, IN), dt), np.full(3, -100)),
            {"reduction": "none", "label_smoothing": 0.1},
        ),
    ),
]
# All targets ignored: 'mean' is 0/0 = NaN as in PyTorch, the gradient 0 (recomputed, not scaled by inf).
CASES += [
    Case(
        f"all-ignored-{'xb' if e else 'plain'}-ls{ls}-{red}",
        make("N", extras=e, ignored=1.0, label_smoothing=ls, reduction=red),
    )
    for e in (False, True)
    for ls in (0.0, 0.2)
    for red in REDUCTIONS
]
# Non-ignored targets of weight 0 only: NaN 'mean' and NaN gradients, as in PyTorch.
CASES += [
    Case(
        f"zero-weight-ls{ls}-{red}",
        lambda rng, dt, ls=ls, red=red: (
            (rand(rng, (4, IN), dt), rand(rng, (3, IN), dt), np.array([1, 1, -100, 1])),
            {"weight": np.array([1.0, 0.0, 2.0], dtype=dt), "reduction": red, "label_smoothing": ls},
        ),
    )
    for ls in (0.0, 0.2)
    for red in REDUCTIONS
]
# Weights of the non-ignored targets summing to 0: PyTorch's two 'mean' quotients a/0 + b/0.
CASES += [
    Case(
        f"zero-total-weight-{t}-ls{ls}",
        lambda rng, dt, t=t, ls=ls: (
            (np.array([[-1.0, -2.0], [-3.0, -0.5]], dtype=dt), np.eye(2, dtype=dt), np.array(t)),
            {"weight": np.array([1.0, -1.0], dtype=dt), "label_smoothing": ls},
        ),
    )
    for t in ([0, 1], [1, 0])
    for ls in (0.0, 0.1, 1.0)
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype, chunking):
    rng = np.random.default_rng(0)
    args, kwargs = case.make(rng, np.dtype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's 0/0 in the NaN cases
        check_against_torch(NAME, args, kwargs, xp, grads=case.grads, tol=case.tol)


# ----------------------------------------------------------------- class probabilities

PROB_CASES = [
    Case(f"prob-{s}-{'xb' if e else 'plain'}-ls{ls}-{red}", make_prob(s, extras=e, label_smoothing=ls, reduction=red))
    for s in ("unbatched", "N", "K2")
    for e in (False, True)
    for ls in (0.0, 0.3)
    for red in REDUCTIONS
]
PROB_CASES += [
    *[
        Case(f"prob-empty-{red}", make_prob("empty", extras=True, label_smoothing=0.1, reduction=red))
        for red in REDUCTIONS
    ],
    # float64 targets with float32 logits: the float64 gradients carry the float32 logits' rounding.
    Case(
        "prob-mixed-float",
        make_prob("N", extras=True, tdtype="float64", label_smoothing=0.1),
        tol={"rtol": 1.3e-6, "atol": 1e-5},
    ),
    Case("prob-int-weight", make_prob("K1", extras=True, wdtype="int64")),
    Case("prob-ls1", make_prob("K1", extras=True, label_smoothing=1.0, reduction="sum")),
]


@cases(*PROB_CASES)
def test_prob_targets_match_torch(case, xp, dtype, chunking):
    rng = np.random.default_rng(0)
    args, kwargs = case.make(rng, np.dtype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_against_torch(NAME, args, kwargs, xp, grads=case.grads, tol=case.tol, differentiable=PROB_DIFF)


# ----------------------------------------------------------------- bad input


def _xw(rng, dt, n=3, c=C):
    return rand(rng, (n, IN), dt), rand(rng, (c, IN), dt)


def _bad(extra_kw=None, x=None, w=None, t=None):
    def build(rng, dt):
        xx, ww = _xw(rng, dt)
        tt = np.array([0, 1, 2])
        return (
            (xx if x is None else x(rng, dt), ww if w is None else w(rng, dt), tt if t is None else t(rng, dt)),
            dict(extra_kw or {}),
        )

    return build


ERRORS = [
    Error("reduction", _bad({"reduction": "avg"}), ValueError, re_arg("reduction")),
    Error("input-3d", _bad(x=lambda r, d: rand(r, (3, 1, IN), d)), ValueError, re_arg("input")),
    Error(
        "input-0d", _bad(x=lambda r, d: np.ones((), dtype=d), t=lambda r, d: np.array(0)), ValueError, re_arg("input")
    ),
    Error("int-input", _bad(x=lambda r, d: np.ones((3, IN), dtype=np.int64)), TypeError, re_arg("input")),
    Error("weight-1d", _bad(w=lambda r, d: rand(r, (IN,), d)), ValueError, re_arg("linear_weight")),
    Error("in-features", _bad(w=lambda r, d: rand(r, (C, IN + 1), d)), ValueError, re_arg("linear_weight")),
    Error(
        "weight-dtype",
        _bad(w=lambda r, d: rand(r, (C, IN), np.float32 if d == np.float64 else np.float64)),
        TypeError,
        re_arg("linear_weight"),
    ),
    Error("bias-shape", _bad({"linear_bias": np.zeros(C + 1)}), ValueError, re_arg("linear_bias")),
    Error(
        "bias-shape-K",
        lambda rng, dt: (
            (rand(rng, (3, IN), dt), rand(rng, (C, 2, IN), dt), np.zeros((3, 2), dtype=np.int64)),
            {"linear_bias": np.zeros(C, dt)},
        ),
        ValueError,
        re_arg("linear_bias"),
    ),
    Error("bias-dtype", _bad({"linear_bias": np.zeros(C, dtype=np.float32)}), TypeError, re_arg("linear_bias")),
    Error(
        "K-unbatched",
        lambda rng, dt: ((rand(rng, (IN,), dt), rand(rng, (C, 2, IN), dt), np.zeros(2, dtype=np.int64)), {}),
        ValueError,
        re_arg("input"),
    ),
    Error(
        "prob-ignore_index",
        _bad({"ignore_index": -100}, t=lambda r, d: rand(r, (3, C), d, 0, 1)),
        ValueError,
        re_arg("ignore_index"),
    ),
    Error("int-prob-target", _bad(t=lambda r, d: np.zeros((3, C), dtype=np.int64)), TypeError, re_arg("target")),
    Error("float-class-target", _bad(t=lambda r, d: np.array([0.0, 1.0, 2.0])), TypeError, re_arg("target")),
    Error("target-shape", _bad(t=lambda r, d: np.array([0, 1])), ValueError, re_arg("target")),
    Error(
        "target-shape-K",
        lambda rng, dt: ((rand(rng, (3, IN), dt), rand(rng, (C, 2, IN), dt), np.zeros((3, 3), dtype=np.int64)), {}),
        ValueError,
        re_arg("target"),
    ),
    Error("class-too-big", _bad(t=lambda r, d: np.array([0, C, 1])), ValueError, re_arg("target"), needs_values=True),
    Error(
        "class-negative",
        _bad({"label_smoothing": 0.1}, t=lambda r, d: np.array([0, -1, 1])),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error("weight-length", _bad({"weight": np.ones(C + 1)}), ValueError, re_arg("weight")),
    Error(
        "weight-length-prob",
        _bad({"weight": np.ones(C + 1)}, t=lambda r, d: rand(r, (3, C), d, 0, 1)),
        ValueError,
        re_arg("weight"),
    ),
    Error("class-weight-dtype", _bad({"weight": np.ones(C, dtype=np.float32)}), TypeError, re_arg("weight")),
    Error("label_smoothing-above-1", _bad({"label_smoothing": 1.5}), ValueError, re_arg("label_smoothing")),
    # PyTorch silently treats a negative label_smoothing as 0; anyloss refuses it, as its cross_entropy does.
    Error(
        "label_smoothing-negative",
        _bad({"label_smoothing": -0.1}),
        ValueError,
        re_arg("label_smoothing"),
        torch_raises=False,
    ),
    Error("label_smoothing-str", _bad({"label_smoothing": "0.1"}), TypeError, re_arg("label_smoothing")),
    Error("ignore_index-float", _bad({"ignore_index": -1.0}), TypeError, re_arg("ignore_index")),
    Error("options-int", _bad({"options": 3}), TypeError, re_arg("options")),
    Error(
        "options-bad-size",
        _bad({"options": SimpleNamespace(batch_chunk_size=0, chunking_method=None)}),
        ValueError,
        re_arg("options.batch_chunk_size"),
        torch_raises=False,
    ),
    Error(
        "options-bad-method",
        _bad({"options": SimpleNamespace(batch_chunk_size=None, chunking_method="rows")}),
        ValueError,
        re_arg("options.chunking_method"),
        torch_raises=False,
    ),
    Error("mixed-libraries", _bad(t=lambda r, d: [0, 1, 2]), TypeError, re_arg("target")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


# ----------------------------------------------------------------- chunking and gradient paths


def _torch_grads(args, kwargs, cotangent, diff=("input", "linear_weight", "linear_bias")):
    """PyTorch's reference value and gradients (dict by name)."""
    x, w, t = (torch.from_numpy(np.array(a)) for a in args)
    kw = {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    named = {"input": x, "linear_weight": w, "target": t, **kw}
    leaves = {k: named[k].requires_grad_() for k in diff if k in named and named[k].is_floating_point()}
    out = torch.nn.functional.linear_cross_entropy(x, w, t, **kw)
    got = torch.autograd.grad(out, list(leaves.values()), torch.as_tensor(cotangent, dtype=out.dtype))
    return out.detach(), dict(zip(leaves, got))


def _case(rng, dt=np.float64, n=10, extras=True, **kw):
    x, w = rand(rng, (n, IN), dt), rand(rng, (C, IN), dt)
    t = targets(rng, (n,), C)
    kwargs = dict(kw)
    if extras:
        kwargs.update(linear_bias=rand(rng, (C,), dt), weight=rand(rng, (C,), dt, 0.1, 2.0))
    return (x, w, t), kwargs


@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("cotangent", [2.5, -0.0, float("inf"), float("nan")])
def test_scalar_cotangents(xp, reduction, ls, cotangent):
    """The precomputed gradients are scaled by a finite cotangent; an inf or NaN
    one makes the backward recompute, which keeps PyTorch's zeros of ignored
    targets (inf * 0 would be NaN)."""
    rng = np.random.default_rng(3)
    (x, w, t), kw = _case(rng, reduction=reduction, label_smoothing=ls)
    t_out, t_grads = _torch_grads((x, w, t), kw, cotangent)
    b = xp.asarray(kw.pop("linear_bias"))
    cw = xp.asarray(kw.pop("weight"))

    def f(a, lw, lb):
        return F.linear_cross_entropy(a, lw, xp.asarray(t), linear_bias=lb, weight=cw, **kw)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, pullback = anyloss.vjp(f, xp.asarray(x), xp.asarray(w), b, argnums=(0, 1, 2))
        grads = pullback(xp.asarray(cotangent, dtype=xp.float64))
    assert_close(out, t_out, "value")
    for name, g in zip(("input", "linear_weight", "linear_bias"), grads):
        assert_close(g, t_grads[name], name)


def test_pullback_twice_and_fresh_gradients():
    """A pullback may run again (residuals are not consumed), with another cotangent."""
    rng = np.random.default_rng(4)
    (x, w, t), kw = _case(rng, label_smoothing=0.1)
    out, pullback = anyloss.vjp(lambda a, b: F.linear_cross_entropy(a, b, t, **kw), x, w, argnums=(0, 1))
    g1 = [np.array(g) for g in pullback(np.ones(()))]
    g3 = pullback(np.asarray(3.0))
    g1b = pullback(np.ones(()))
    for a, b, c in zip(g1, g3, g1b):
        np.testing.assert_allclose(3 * a, b, rtol=1e-12)
        np.testing.assert_array_equal(a, c)


def test_logits_never_exceed_a_chunk(monkeypatch):
    """With 3 rows per chunk, no logits of more than 3 rows are ever computed,
    forward or backward (recomputing for 'none'), and the numbers are PyTorch's."""
    seen = []
    real = LCE._logits

    def spy(xp, x, w, b, i0, i1, tail):
        seen.append(i1 - i0)
        return real(xp, x, w, b, i0, i1, tail)

    monkeypatch.setattr(LCE, "_logits", spy)
    rng = np.random.default_rng(5)
    opts = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=3)
    for reduction in ("mean", "none"):
        (x, w, t), kw = _case(rng, reduction=reduction, label_smoothing=0.2)
        ct = np.ones(()) if reduction == "mean" else rng.standard_normal(10)
        t_out, t_grads = _torch_grads((x, w, t), kw, ct)
        b = kw.pop("linear_bias")
        out, pullback = anyloss.vjp(
            lambda a, lw, lb: F.linear_cross_entropy(
                a,
                lw,
                t,  # noqa: B023
                linear_bias=lb,
                options=opts,  # noqa: B023
                **kw,  # noqa: B023
            ),
            x,
            w,
            b,
            argnums=(0, 1, 2),
        )  # noqa: B023
        grads = pullback(ct)
        assert_close(out, t_out, "value")
        for name, g in zip(("input", "linear_weight", "linear_bias"), grads):
            assert_close(g, t_grads[name], name)
    assert seen and max(seen) == 3


def test_gradients_computed_only_when_asked(monkeypatch):
    """A plain call computes the loss alone (one matrix product per chunk);
    inside value_and_grad the forward computes the gradients too, and the
    backward does not recompute."""
    made = []
    real = LCE._Grads.__init__

    def spy(self, *a):
        made.append(1)
        real(self, *a)

    monkeypatch.setattr(LCE._Grads, "__init__", spy)
    (x, w, t), kw = _case(np.random.default_rng(6))
    F.linear_cross_entropy(x, w, t, **kw)
    assert not made
    anyloss.value_and_grad(F.linear_cross_entropy, argnums=(0, 1))(x, w, t, **kw)
    assert len(made) == 1


@pytest.mark.parametrize("prob", [False, True])
def test_torch_tensors_backward(prob):
    """Torch tensors that require grad: loss.backward() fills .grad with the
    reference path's gradients, also twice with retain_graph."""
    rng = np.random.default_rng(7)
    (x, w, t), kw = _case(rng, label_smoothing=0.1)
    if prob:
        t = rand(rng, (10, C), np.float64, 0, 1)
    leaves = [torch.from_numpy(a).requires_grad_() for a in (x, w, kw["linear_bias"])]
    ref = [a.detach().clone().requires_grad_() for a in leaves]
    tt, cw = torch.from_numpy(t), torch.from_numpy(kw["weight"])
    out = F.linear_cross_entropy(leaves[0], leaves[1], tt, linear_bias=leaves[2], weight=cw, label_smoothing=0.1)
    want = torch.nn.functional.linear_cross_entropy(
        ref[0], ref[1], tt, linear_bias=ref[2], weight=cw, label_smoothing=0.1
    )
    torch.testing.assert_close(out, want)
    out.backward(retain_graph=True)
    out.backward()
    want.backward(retain_graph=True)
    want.backward()
    for a, r in zip(leaves, ref):
        torch.testing.assert_close(a.grad, r.grad)


@pytest.mark.parametrize("prob", [False, True])
def test_jax_jit_grad(prob):
    """Under jax.jit and jax.grad (residuals must be JAX pytrees) the chunked
    loss gives PyTorch's value and gradients."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(12)
    (x, w, t), kw = _case(rng, label_smoothing=0.2)
    if prob:
        t = rand(rng, (10, C), np.float64, 0, 1)
    t_out, t_grads = _torch_grads((x, w, t), kw, 1.0)
    jt, jcw = jax.numpy.asarray(t), jax.numpy.asarray(kw["weight"])

    def f(a, lw, lb):
        return F.linear_cross_entropy(
            a, lw, jt, linear_bias=lb, weight=jcw, label_smoothing=0.2, options=SimpleNamespace(batch_chunk_size=3)
        )

    value, grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(x, w, kw["linear_bias"])
    assert_close(np.asarray(value), t_out, "value")
    for name, g in zip(("input", "linear_weight", "linear_bias"), grads):
        assert_close(np.asarray(g), t_grads[name], name)


@pytest.mark.parametrize("n,d,c", [(4096, 512, 32000), (100, 7, 30), (8, 64, 5), (1000, 3, 200)])
@pytest.mark.parametrize("method", ["aspect_ratio", "aspect_ratio:2", "aspect_ratio:8"])
def test_chunking_method_is_torchs(n, d, c, method):
    opts = torch.nn.LinearCrossEntropyOptions(chunking_method=method)
    want = opts._adjust(num_batches=n, in_features=d, num_classes=c, dtype=torch.float32).batch_chunk_size
    assert LCE._chunk_rows(np, opts, n, d, c, np.float32) == want


def test_chunk_rows_from_options():
    rows = LCE._chunk_rows
    Opt = torch.nn.LinearCrossEntropyOptions
    assert rows(np, None, 4096, 512, 32000, np.float32) == LCE._CHUNK_BYTES // (32000 * 4)
    assert rows(np, Opt(), 4096, 512, 32000, np.float32) == LCE._CHUNK_BYTES // (32000 * 4)  # "auto": ours
    assert rows(np, None, 4096, 512, 32000, np.float64) == LCE._CHUNK_BYTES // (32000 * 8)
    assert rows(np, None, 10, 4, 5, np.float32) == 10  # small: one chunk
    assert rows(np, Opt(batch_chunk_size=3), 10, 4, 5, np.float32) == 3
    assert rows(np, Opt(batch_chunk_size=30), 10, 4, 5, np.float32) == 10
    assert rows(np, Opt(chunking_method=None), 10, 4, 5, np.float32) == 10  # PyTorch: one chunk
    assert rows(np, SimpleNamespace(batch_chunk_size=2), 10, 4, 5, np.float32) == 2
    assert rows(np, None, 0, 4, 5, np.float32) == 1
    with pytest.raises(ValueError, match=re_arg("options")):  # both given, and they disagree (as PyTorch)
        rows(np, Opt(batch_chunk_size=3, chunking_method="aspect_ratio"), 4096, 512, 32000, np.float32)


def test_options_do_not_change_numbers():
    """Every chunk size gives the same numbers (to rounding) as one chunk."""
    rng = np.random.default_rng(8)
    (x, w, t), kw = _case(rng, n=11, label_smoothing=0.3)
    vg = anyloss.value_and_grad(F.linear_cross_entropy, argnums=(0, 1))
    ref = vg(x, w, t, options=SimpleNamespace(batch_chunk_size=None, chunking_method=None), **kw)
    for r in (1, 2, 5, 11):
        got = vg(x, w, t, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=r), **kw)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
        for a, b in zip(got[1], ref[1]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("tdtype", ["int8", "int16", "int32", "uint16"])
def test_any_integer_target_dtype(xp, tdtype):
    """PyTorch takes int64 (and uint8) class indices only; anyloss takes any
    integer dtype and gives int64's numbers."""
    rng = np.random.default_rng(9)
    (x, w, t), kw = _case(rng, label_smoothing=0.1, ignore_index=3)
    t = np.where(t == -100, 3, t)
    xa, wa = xp.asarray(x), xp.asarray(w)
    kwa = {k: xp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    vg = anyloss.value_and_grad(lambda a, b, tt: F.linear_cross_entropy(a, b, tt, **kwa), argnums=(0, 1))
    ref = vg(xa, wa, xp.asarray(t))
    got = vg(xa, wa, xp.asarray(t.astype(tdtype)))
    np.testing.assert_array_equal(to_numpy(ref[0]), to_numpy(got[0]))
    for a, b in zip(ref[1], got[1]):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_float32_stays_float32(xp):
    rng = np.random.default_rng(10)
    (x, w, t), kw = _case(rng, dt=np.float32, label_smoothing=0.1)
    kwa = {k: xp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    value, grads = anyloss.value_and_grad(
        lambda a, b: F.linear_cross_entropy(a, b, xp.asarray(t), **kwa), argnums=(0, 1)
    )(xp.asarray(x), xp.asarray(w))
    assert value.dtype == xp.float32 and all(g.dtype == xp.float32 for g in grads)


def test_worked_example():
    x = np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]])
    w = np.array([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]])
    z = x @ w.T
    want = np.mean(np.log(np.exp(z).sum(1)) - z[[0, 1, 2], [1, 0, 2]])
    assert float(F.linear_cross_entropy(x, w, np.array([1, 0, 2]))) == pytest.approx(want, rel=1e-14)


# ----------------------------------------------------------------- the class


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_class_signature_is_torchs_plus_xp_and_seed():
    ours = _params(anyloss.LinearCrossEntropyLoss.__init__)
    assert [p[0] for p in ours[-2:]] == ["xp", "seed"]
    assert ours[:-2] == _params(torch.nn.LinearCrossEntropyLoss.__init__)
    assert _params(anyloss.LinearCrossEntropyLoss.forward) == _params(torch.nn.LinearCrossEntropyLoss.forward)


def test_parameters_as_pytorch_initialises_them():
    loss = anyloss.LinearCrossEntropyLoss(16, 7, out_features=(2, 3), bias=True, seed=0)
    tm = torch.nn.LinearCrossEntropyLoss(16, 7, out_features=(2, 3), bias=True)
    assert list(loss.named_parameters()) == [n for n, _ in tm.named_parameters()]
    assert list(loss.state_dict()) == list(tm.state_dict())
    for name, p in tm.named_parameters():
        ours = loss.named_parameters()[name]
        assert ours.shape == tuple(p.shape) and ours.dtype == np.float32
        assert np.all(np.abs(ours) <= 1 / 4) and np.std(ours) > 0.05  # U(-1/sqrt(16), 1/sqrt(16))
    assert loss.linear.weight is loss.named_parameters()["linear.weight"]
    again = anyloss.LinearCrossEntropyLoss(16, 7, out_features=(2, 3), bias=True, seed=0)
    np.testing.assert_array_equal(again.linear.weight, loss.linear.weight)
    other = anyloss.LinearCrossEntropyLoss(16, 7, out_features=(2, 3), bias=True, seed=1)
    assert not np.array_equal(other.linear.weight, loss.linear.weight)
    plain = anyloss.LinearCrossEntropyLoss(3, 4, dtype="float64", weight=np.ones(4))
    assert list(plain.state_dict()) == ["weight", "linear.weight"] and plain.linear.weight.dtype == np.float64
    assert "linear.bias" not in plain.named_parameters()
    assert anyloss.LinearCrossEntropyLoss(0, 4).linear.weight.shape == (4, 0)


def test_other_namespace(xp):
    loss = anyloss.LinearCrossEntropyLoss(3, 4, bias=True, xp=xp, dtype=xp.float64, seed=0)
    assert all(type(p) is type(xp.asarray(0.0)) for p in loss.parameters())
    tm = torch.nn.LinearCrossEntropyLoss(3, 4, bias=True, dtype=torch.float64)
    loss.load_state_dict(tm.state_dict())
    x = rand(np.random.default_rng(0), (5, 3), np.float64)
    t = np.array([0, 3, 1, 2, 2])
    value, grads = loss.value_and_grad(xp.asarray(x), xp.asarray(t))
    tx = torch.from_numpy(x).requires_grad_()
    want = tm(tx, torch.from_numpy(t))
    want.backward()
    assert_close(value, want.detach(), "value")
    assert_close(grads["input"], tx.grad, "input")
    assert_close(grads["linear.weight"], tm.linear.weight.grad, "linear.weight")


MODULE_CONFIGS = [
    dict(),
    dict(bias=True),
    dict(bias=True, reduction="sum", label_smoothing=0.2),
    dict(bias=True, weight=True, ignore_index=2, label_smoothing=0.1),
    dict(weight=True, reduction="mean"),
    dict(out_features=(2, 3), bias=True, weight=True, label_smoothing=0.3),
    dict(out_features=(2,), bias=True, prob=True, label_smoothing=0.2),
    dict(bias=True, weight=True, prob=True, reduction="sum"),
    dict(bias=True, reduction="none", label_smoothing=0.1),
    dict(bias=True, options=True),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", MODULE_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_state_dict_from_torch(cfg, dtype):
    """A torch module's state_dict moved over gives identical outputs and gradients."""
    cfg = dict(cfg)
    prob = cfg.pop("prob", False)
    tdt = getattr(torch, dtype)
    rng = np.random.default_rng(11)
    n_in, n_cls, out = 6, 5, cfg.get("out_features", ())
    if cfg.pop("weight", False):
        cfg["weight"] = torch.from_numpy(rand(rng, (n_cls,), dtype, 0.1, 2.0))
    if cfg.pop("options", False):
        cfg["options"] = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2)
    torch.manual_seed(0)
    tm = torch.nn.LinearCrossEntropyLoss(n_in, n_cls, dtype=tdt, **cfg)
    ours = anyloss.LinearCrossEntropyLoss(n_in, n_cls, dtype=dtype, seed=1, **cfg)
    assert ours.load_state_dict(tm.state_dict()) == ([], [])
    for name, p in tm.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[name], p.numpy())
    x = rand(rng, (7, n_in), dtype)
    ii = cfg.get("ignore_index") or -100
    t = rand(rng, (7, n_cls, *out), dtype, 0, 1) if prob else targets(rng, (7, *out), n_cls, ii, ignored=0.2)
    tx, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(t)
    want = tm(tx, tt)
    assert_close(ours(x, t), want.detach(), "forward")
    if cfg.get("reduction") == "none":
        with pytest.raises(ValueError, match="scalar"):
            ours.value_and_grad(x, t)
        return
    value, grads = ours.value_and_grad(x, t)
    want.backward()
    assert_close(value, want.detach(), "value")
    assert list(grads) == ["input"] + [n for n, _ in tm.named_parameters()]
    assert_close(grads["input"], tx.grad, "input")
    for name, p in tm.named_parameters():
        assert_close(grads[name], p.grad, name)


def test_load_state_dict_checks():
    loss = anyloss.LinearCrossEntropyLoss(3, 4, bias=True)
    tm = torch.nn.LinearCrossEntropyLoss(3, 4, bias=True)
    sd = tm.state_dict(keep_vars=True)  # tensors that require grad convert too
    assert sd["linear.weight"].requires_grad
    loss.load_state_dict(sd)
    np.testing.assert_array_equal(loss.linear.weight, tm.linear.weight.detach().numpy())
    sd["linear.weight"].data.fill_(7.0)  # a copy, not a view of the torch tensor
    assert not np.any(loss.linear.weight == 7.0)
    before = loss.linear.weight.copy()
    with pytest.raises(ValueError, match=r"missing keys \['linear.bias'\]"):
        loss.load_state_dict({"linear.weight": np.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"unexpected keys \['weight'\]"):
        loss.load_state_dict({**tm.state_dict(), "weight": np.ones(4)})
    with pytest.raises(ValueError, match=re_arg("state_dict['linear.bias']")):
        loss.load_state_dict({"linear.weight": np.zeros((4, 3)), "linear.bias": np.zeros(5)})
    np.testing.assert_array_equal(loss.linear.weight, before)  # nothing changed by a failed load
    with pytest.raises(TypeError, match=re_arg("state_dict")):
        loss.load_state_dict([("linear.weight", np.zeros((4, 3)))])
    res = loss.load_state_dict({"linear.weight": [[1.0, 2.0, 3.0]] * 4, "extra": 1}, strict=False)
    assert res.missing_keys == ["linear.bias"] and res.unexpected_keys == ["extra"]
    assert loss.linear.weight.dtype == np.float32 and loss.linear.weight[0, 2] == 3.0
    loss.linear.bias = np.arange(4.0)  # assignment through the dotted name, converted
    assert loss.linear.bias.dtype == np.float32 and loss.named_parameters()["linear.bias"][3] == 3.0
    with pytest.raises(ValueError, match=re_arg("linear.bias")):
        loss.linear.bias = np.zeros(3)
    with pytest.raises(AttributeError):
        loss.linear.nothing  # noqa: B018


def test_class_errors():
    with pytest.raises(ValueError, match=re_arg("weight")):
        anyloss.LinearCrossEntropyLoss(3, 4, weight=np.ones(3))
    with pytest.raises(ValueError, match=re_arg("label_smoothing")):
        anyloss.LinearCrossEntropyLoss(3, 4, label_smoothing=2)
    with pytest.raises(ValueError, match=re_arg("num_classes")):
        anyloss.LinearCrossEntropyLoss(3, -1)
    with pytest.raises(TypeError, match=re_arg("in_features")):
        anyloss.LinearCrossEntropyLoss(3.0, 4)
    with pytest.raises(ValueError, match=re_arg("out_features")):
        anyloss.LinearCrossEntropyLoss(3, 4, out_features=(2, -1))
    with pytest.raises(TypeError, match=re_arg("dtype")):
        anyloss.LinearCrossEntropyLoss(3, 4, dtype=np.int32)
    assert "in_features=3, num_classes=4" in repr(anyloss.LinearCrossEntropyLoss(3, 4))


# ----------------------------------------------------------------- hypothesis


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    kdim=st.integers(-1, 2),  # -1: unbatched (in) input; 0: (N, in); K >= 1: K-dimensional logits
    c=st.integers(1, 6),
    prob=st.booleans(),
    extras=st.booleans(),
    ignore_index=st.sampled_from([None, 0, 2, -1]),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    dtype=st.sampled_from(["float32", "float64"]),
    scale=st.sampled_from([1.0, 10.0, 300.0]),
    rows=st.integers(1, 4),
)
@HYPOTHESIS_BACKENDS
def test_hypothesis(hxp, data, kdim, c, prob, extras, ignore_index, label_smoothing, reduction, dtype, scale, rows):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n, n_in = data.draw(st.integers(0, 6)), data.draw(st.integers(1, 5))
    out = tuple(data.draw(st.integers(1, 3)) for _ in range(max(kdim, 0)))
    batch = () if kdim < 0 else (n,)
    x, w = rand(rng, (*batch, n_in), dtype), (rand(rng, (c, *out, n_in), dtype) * scale).astype(dtype)
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    if extras:
        kw.update(linear_bias=rand(rng, (c, *out), dtype), weight=rand(rng, (c,), dtype, 0.0, 2.0))
    xp = hypothesis_namespace(hxp)

    # Large weights give input gradients that are sums of large terms which cancel:
    # their rounding (a summation order of its own in each matmul) scales with them.
    tol = {"rtol": 1.3e-6 if dtype == "float32" else 1e-7, "atol": (1e-5 if dtype == "float32" else 1e-7) * scale}
    with mock.patch.object(LCE, "_chunk_rows", lambda *a: rows), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if prob:
            t = rand(rng, (*batch, c, *out), dtype, 0.0, 1.0)
            check_against_torch(NAME, (x, w, t), kw, xp, differentiable=PROB_DIFF, tol=tol)
        else:
            ii = -100 if ignore_index is None else ignore_index
            t = targets(rng, (*batch, *out), c, ii, data.draw(st.sampled_from([0.0, 0.3, 1.0])))
            if ignore_index is not None:
                kw["ignore_index"] = ignore_index
            check_against_torch(NAME, (x, w, t), kw, xp, tol=tol)
