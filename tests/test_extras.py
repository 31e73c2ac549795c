"""anyloss.extras: focal, Dice, Jaccard, Tversky, Dice+BCE and z-loss cross-entropy.

They have no torch.nn.functional twin, so the oracle is each loss's published
formula written here in PyTorch (its autograd gives the gradients), from the
paper or torchvision's documentation: ``torchvision.ops.sigmoid_focal_loss``
cannot be installed beside this torch. Then: central finite differences of
the analytic gradients on NumPy float64, extreme logits (hypothesis), the
errors, every backend's transformations, and the ``anyloss.register``
features the extras are built on.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import array_api_strict
import numpy as np
import pytest
from conftest import _SELECTED, Backend
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import anyloss
import anyloss.extras as X
from anyloss.cli import _reference, main
from helpers import (
    assert_close,
    backend_of,
    finite_difference_grad,
    no_compute,
    to_numpy,
    to_xp,
    torch,
    value_and_pullback,
)

TF = torch.nn.functional
NAMES = list(X.__all__)


# =========================================================================== references (PyTorch)


def _reduce(loss, reduction, divisor=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / divisor if divisor is not None else loss.mean()


def ref_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss as documented: Lin et al.'s FL(p_t) on logits."""
    targets = targets.to(inputs.dtype)
    p = torch.sigmoid(inputs)
    ce = TF.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)


def _class_axis(x):
    return 0 if x.ndim == 1 else 1


def ref_softmax_focal_loss(input, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    """-alpha_y (1 - p_y)^gamma log p_y, ignored targets out of the sum and the count."""
    axis = _class_axis(input)
    valid = target != ignore_index
    y = torch.where(valid, target, 0).long()
    log_p = torch.log_softmax(input, axis).gather(axis, y.unsqueeze(axis)).squeeze(axis)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if alpha is not None:
        loss = alpha[y] * loss
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return _reduce(loss, reduction, valid.sum())


def ref_z_loss_cross_entropy(input, target, z_loss=1e-4, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """PyTorch's cross_entropy + z_loss * logsumexp(x)^2 (PaLM), ignored targets out."""
    valid = target != ignore_index
    ce = TF.cross_entropy(
        input, target.long(), ignore_index=ignore_index, label_smoothing=label_smoothing, reduction="none"
    )
    loss = ce + z_loss * torch.logsumexp(input, _class_axis(input)) ** 2 * valid
    return _reduce(loss, reduction, valid.sum())


def _sums(x, t, dim, from_logits):
    p = torch.sigmoid(x) if from_logits else x
    dims = tuple(range(1, x.ndim)) if dim is None else dim
    return p, t.to(x.dtype), dims


def ref_dice_loss(input, target, dim=None, smooth=1.0, eps=1e-7, squared=False, from_logits=False, reduction="mean"):
    """1 - (2 sum(p t) + s) / clamp_min(sum(p^k) + sum(t^k) + s, eps) (Milletari et al.)."""
    p, t, dims = _sums(input, target, dim, from_logits)
    k = 2 if squared else 1
    den = (p**k).sum(dims) + (t**k).sum(dims) + smooth
    return _reduce(1 - (2 * (p * t).sum(dims) + smooth) / den.clamp_min(eps), reduction)


def ref_jaccard_loss(input, target, dim=None, smooth=1.0, eps=1e-7, from_logits=False, reduction="mean"):
    """1 - (|A n B| + s) / clamp_min(|A u B| + s, eps), |A u B| = sum(p) + sum(t) - |A n B|."""
    p, t, dims = _sums(input, target, dim, from_logits)
    inter = (p * t).sum(dims)
    union = p.sum(dims) + t.sum(dims) - inter
    return _reduce(1 - (inter + smooth) / (union + smooth).clamp_min(eps), reduction)


def ref_tversky_loss(
    input, target, alpha=0.5, beta=0.5, dim=None, smooth=1.0, eps=1e-7, from_logits=False, reduction="mean"
):
    """1 - (TP + s) / clamp_min(TP + alpha FP + beta FN + s, eps) (Salehi et al.)."""
    p, t, dims = _sums(input, target, dim, from_logits)
    tp, fp, fn = (p * t).sum(dims), (p * (1 - t)).sum(dims), ((1 - p) * t).sum(dims)
    return _reduce(1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(eps), reduction)


def ref_dice_bce_loss(
    input, target, bce_weight=1.0, dice_weight=1.0, dim=None, smooth=1.0, eps=1e-7, squared=False, reduction="mean"
):
    """bce_weight * mean over dim of BCE-with-logits + dice_weight * Dice(sigmoid(x)), per sample."""
    dims = tuple(range(1, input.ndim)) if dim is None else dim
    bce = TF.binary_cross_entropy_with_logits(input, target.to(input.dtype), reduction="none").mean(dims)
    dice = ref_dice_loss(input, target, dim, smooth, eps, squared, True, "none")
    return _reduce(bce_weight * bce + dice_weight * dice, reduction)


REFS = {name: globals()[f"ref_{name}"] for name in NAMES}


# =========================================================================== cases


@dataclass
class XCase:
    """One oracle test: ``make(rng, dtype) -> (args, kwargs)`` of NumPy arrays;
    the first argument is differentiated."""

    name: str
    id: str
    make: Callable


def logits(shape, scale=3.0):
    return lambda rng, dt: np.asarray(rng.normal(0.0, scale, size=shape), dtype=dt)


def probs(shape):
    return lambda rng, dt: np.asarray(rng.uniform(0.02, 0.98, size=shape), dtype=dt)


def labels(shape, soft=False, dtype=None):
    def make(rng, dt):
        t = rng.uniform(0, 1, size=shape) if soft else (rng.random(shape) < 0.4)
        return np.asarray(t, dtype=dtype or dt)

    return make


def classes(shape, c, ignore_index=-100, ignored=0.0, dtype=np.int64):
    def make(rng, dt):
        t = rng.integers(0, c, size=shape)
        if ignored:
            t = np.where(rng.random(shape) < ignored, ignore_index, t)
        return np.asarray(t, dtype=dtype)

    return make


def build(*makers, **kwargs):
    """Arrays from ``makers`` (a None stays None); options ``kwargs``."""

    def make(rng, dt):
        return tuple(None if m is None else m(rng, dt) for m in makers), dict(kwargs)

    return make


def _cases():
    out = []

    def add(name, id, *makers, **kwargs):
        out.append(XCase(name, id, build(*makers, **kwargs)))

    n = "sigmoid_focal_loss"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", logits((4, 5)), labels((4, 5)), reduction=red)
    add(n, "default-reduction-none", logits((3, 4)), labels((3, 4)))
    add(n, "3d-alpha-off", logits((2, 3, 4)), labels((2, 3, 4)), alpha=-1.0, reduction="mean")
    add(n, "alpha0-gamma0", logits((6,)), labels((6,)), alpha=0.0, gamma=0.0, reduction="sum")
    add(n, "alpha1-gamma1.5", logits((5, 2)), labels((5, 2)), alpha=1.0, gamma=1.5, reduction="sum")
    add(n, "soft-targets-gamma0.5", logits((4, 3)), labels((4, 3), soft=True), gamma=0.5, reduction="mean")
    add(n, "int-targets", logits((4, 3)), labels((4, 3), dtype=np.int64), reduction="sum")
    add(n, "0d", logits(()), labels(()), reduction="mean")
    add(n, "empty-mean", logits((0, 3)), labels((0, 3)), reduction="mean")
    add(n, "large-logits", logits((4, 4), scale=30.0), labels((4, 4)), reduction="sum")

    n = "softmax_focal_loss"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", logits((6, 4)), classes((6,), 4), reduction=red)
    add(n, "no-batch", logits((5,)), classes((), 5), reduction="mean")
    add(n, "spatial-ignored", logits((2, 3, 4, 2)), classes((2, 4, 2), 3, ignored=0.3), reduction="mean")
    add(n, "alpha", logits((6, 4)), classes((6,), 4), probs((4,)), reduction="mean")
    add(
        n,
        "alpha-ignore-index-1-none",
        logits((6, 4)),
        classes((6,), 4, ignore_index=1, ignored=0.3),
        probs((4,)),
        ignore_index=1,
        reduction="none",
    )
    add(n, "gamma0", logits((5, 3)), classes((5,), 3, ignored=0.2), gamma=0.0, reduction="mean")
    add(n, "gamma0.5-int32", logits((5, 3)), classes((5,), 3, dtype=np.int32), gamma=0.5, reduction="sum")
    add(n, "empty-mean", logits((0, 3)), classes((0,), 3), reduction="mean")

    n = "z_loss_cross_entropy"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", logits((6, 4)), classes((6,), 4, ignored=0.2), reduction=red)
    add(n, "z0-is-cross-entropy", logits((6, 4)), classes((6,), 4), z_loss=0.0)
    add(n, "z0.1-smoothing", logits((6, 4)), classes((6,), 4, ignored=0.2), z_loss=0.1, label_smoothing=0.2)
    add(n, "no-batch", logits((5,)), classes((), 5), z_loss=1e-2)
    add(n, "spatial", logits((2, 3, 4)), classes((2, 4), 3, ignored=0.2), z_loss=1e-3, reduction="sum")
    add(n, "empty-mean", logits((0, 3)), classes((0,), 3))

    n = "dice_loss"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", probs((3, 8)), labels((3, 8)), reduction=red)
    add(n, "per-class", probs((2, 3, 4, 4)), labels((2, 3, 4, 4)), dim=(2, 3), reduction="none")
    add(n, "whole-batch", probs((2, 3, 4)), labels((2, 3, 4)), dim=(0, 1, 2))
    add(n, "dim-int-negative", probs((3, 5)), labels((3, 5)), dim=-1, reduction="sum")
    add(n, "squared-soft", probs((3, 6)), labels((3, 6), soft=True), squared=True)
    add(n, "from-logits-smooth0", logits((3, 6)), labels((3, 6)), from_logits=True, smooth=0.0)
    add(
        n,
        "empty-mask-smooth0",
        lambda rng, dt: np.concatenate([np.zeros((1, 4)), rng.uniform(0.1, 0.9, (2, 4))]).astype(dt),
        lambda rng, dt: np.concatenate([np.zeros((1, 4)), rng.random((2, 4)) < 0.5]).astype(dt),
        smooth=0.0,
        reduction="none",
    )
    add(n, "empty-batch", probs((0, 4)), labels((0, 4)))

    n = "jaccard_loss"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", probs((3, 8)), labels((3, 8)), reduction=red)
    add(
        n,
        "from-logits-per-class",
        logits((2, 3, 5)),
        labels((2, 3, 5), soft=True),
        from_logits=True,
        dim=2,
        reduction="none",
    )
    add(n, "smooth0", probs((3, 6)), labels((3, 6)), smooth=0.0, eps=1e-5)

    n = "tversky_loss"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", probs((3, 8)), labels((3, 8)), alpha=0.3, beta=0.7, reduction=red)
    add(n, "default", probs((2, 3, 4)), labels((2, 3, 4)))
    add(n, "tanimoto-from-logits", logits((3, 6)), labels((3, 6), soft=True), alpha=1.0, beta=1.0, from_logits=True)
    add(n, "alpha0-dim01", probs((2, 3, 4)), labels((2, 3, 4)), alpha=0.0, beta=2.0, dim=(0, 1), reduction="none")

    n = "dice_bce_loss"
    for red in ("none", "mean", "sum"):
        add(n, f"2d-{red}", logits((3, 8)), labels((3, 8)), reduction=red)
    add(
        n,
        "weights-squared",
        logits((2, 3, 4)),
        labels((2, 3, 4), soft=True),
        bce_weight=0.3,
        dice_weight=2.0,
        squared=True,
    )
    add(n, "per-class-smooth0", logits((2, 3, 5)), labels((2, 3, 5)), dim=2, smooth=0.0, reduction="sum")
    add(n, "empty-batch", logits((0, 4)), labels((0, 4)))
    return out


CASES = _cases()


def _torch(a):
    return torch.from_numpy(np.array(a, copy=True)) if isinstance(a, np.ndarray) else a


def _cotangent(shape, dtype, seed=0):
    if shape == ():
        return np.ones((), dtype=dtype)
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def reference(case_name, args, kwargs):
    """The reference's value and the gradient of the first argument, for a cotangent."""
    tensors = [_torch(a) for a in args]
    tensors[0].requires_grad_(True)
    out = REFS[case_name](*tensors, **kwargs)
    ct = _cotangent(tuple(out.shape), to_numpy(out).dtype)
    out.backward(torch.from_numpy(ct))
    return out.detach(), tensors[0].grad, ct


@pytest.mark.parametrize("case", CASES, ids=[f"{c.name}-{c.id}" for c in CASES])
def test_matches_reference(case, xp, dtype):
    """Value and gradient of the first argument, on every backend through its
    own autodiff (torch .backward(), jax.vjp, anyloss.vjp), Dask staying lazy."""
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    want, want_grad, ct = reference(case.name, args, kwargs)
    fn = getattr(X, case.name)
    arrays = [to_xp(xp, a) for a in args]
    with no_compute(xp):
        out, pullback = value_and_pullback(xp, lambda *a: fn(*a, **kwargs), arrays, [0])
    assert out.dtype == arrays[0].dtype
    assert_close(out, want, f"{case.name} value")
    with no_compute(xp):
        (g,) = pullback(xp.asarray(ct) if ct.ndim else xp.ones_like(out))
    assert_close(g, want_grad, f"{case.name} gradient")


# =========================================================================== finite differences

FD = [
    (
        "sigmoid_focal_loss",
        lambda r: (r.normal(0, 2, (3, 4)), r.uniform(0, 1, (3, 4))),
        {"gamma": 1.5, "alpha": 0.3, "reduction": "sum"},
    ),
    (
        "sigmoid_focal_loss",
        lambda r: (r.normal(0, 2, (3, 4)), (r.random((3, 4)) < 0.5) * 1.0),
        {"gamma": 0.5, "reduction": "mean"},
    ),
    (
        "softmax_focal_loss",
        lambda r: (r.normal(0, 2, (4, 3)), np.array([0, 2, -100, 1]), r.uniform(0.1, 1, 3)),
        {"gamma": 1.5},
    ),
    (
        "z_loss_cross_entropy",
        lambda r: (r.normal(0, 2, (4, 3)), np.array([0, 2, -100, 1])),
        {"z_loss": 0.2, "label_smoothing": 0.1},
    ),
    ("dice_loss", lambda r: (r.uniform(0.1, 0.9, (2, 5)), r.uniform(0, 1, (2, 5))), {"squared": True}),
    (
        "dice_loss",
        lambda r: (r.normal(0, 2, (2, 2, 3)), (r.random((2, 2, 3)) < 0.5) * 1.0),
        {"from_logits": True, "dim": 2, "reduction": "sum"},
    ),
    ("jaccard_loss", lambda r: (r.uniform(0.1, 0.9, (2, 5)), r.uniform(0, 1, (2, 5))), {"smooth": 0.0}),
    (
        "tversky_loss",
        lambda r: (r.normal(0, 2, (2, 5)), r.uniform(0, 1, (2, 5))),
        {"alpha": 0.2, "beta": 0.9, "from_logits": True},
    ),
    (
        "dice_bce_loss",
        lambda r: (r.normal(0, 2, (2, 5)), (r.random((2, 5)) < 0.5) * 1.0),
        {"bce_weight": 0.5, "dice_weight": 1.5},
    ),
]


@pytest.mark.parametrize("name, make, kwargs", FD, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FD)])
def test_gradient_matches_finite_differences(name, make, kwargs):
    fn = getattr(X, name)
    x, *rest = make(np.random.default_rng(3))
    _, g = anyloss.value_and_grad(fn)(x, *rest, **kwargs)
    np.testing.assert_allclose(g, finite_difference_grad(lambda a: fn(a, *rest, **kwargs), x), rtol=1e-6, atol=1e-8)


# =========================================================================== identities


def test_softmax_focal_gamma0_and_z_loss0_are_cross_entropy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 3, (7, 4)), np.array([0, 3, -100, 1, 2, -100, 3])
    tx = torch.tensor(x, requires_grad=True)
    want = TF.cross_entropy(tx, torch.tensor(y))
    want.backward()
    for fn, kw in ((X.softmax_focal_loss, {"gamma": 0.0}), (X.z_loss_cross_entropy, {"z_loss": 0.0})):
        value, g = anyloss.value_and_grad(fn)(x, y, **kw)
        assert_close(value, want.detach(), fn.__name__)
        assert_close(g, tx.grad, fn.__name__)


def test_tversky_half_is_dice_and_dice_bce_is_the_sum():
    rng = np.random.default_rng(2)
    p, t = rng.uniform(0, 1, (3, 6)), (rng.random((3, 6)) < 0.5) * 1.0
    np.testing.assert_allclose(
        X.tversky_loss(p, t, smooth=0.5, reduction="none"), X.dice_loss(p, t, smooth=1.0, reduction="none")
    )
    x = rng.normal(0, 2, (3, 6))
    bce = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(X.dice_bce_loss(x, t), float(bce) + X.dice_loss(x, t, from_logits=True))


def test_sigmoid_focal_default_is_torchvision():
    """torchvision's defaults: alpha=0.25, gamma=2, reduction='none'; options keyword-only here."""
    sig = inspect.signature(X.sigmoid_focal_loss)
    assert [(p.name, p.default) for p in sig.parameters.values()][2:] == [
        ("alpha", 0.25),
        ("gamma", 2.0),
        ("reduction", "none"),
    ]
    x, t = np.linspace(-3, 3, 8).reshape(2, 4), (np.arange(8).reshape(2, 4) % 3 == 0) * 1.0
    assert X.sigmoid_focal_loss(x, t).shape == (2, 4)
    with pytest.raises(TypeError, match="keyword-only"):
        X.sigmoid_focal_loss(x, t, 0.25, 2)


# =========================================================================== extreme logits


@settings(max_examples=25, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize(
    "name",
    ["sigmoid_focal_loss", "softmax_focal_loss", "z_loss_cross_entropy", "dice_loss", "tversky_loss", "dice_bce_loss"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_logits_stay_finite(name, dtype, data):
    """Logits up to +-1e4 (and exactly 0): finite value and gradient wherever the
    math is, and the reference's numbers wherever the reference is finite."""
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5))
    values = st.one_of(st.sampled_from([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]), st.floats(-50, 50, width=32))
    x = data.draw(hnp.arrays(dtype, shape, elements=values))
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kwargs = {"reduction": "sum"}
    if name in ("softmax_focal_loss", "z_loss_cross_entropy"):
        rest = [rng.integers(0, shape[1], size=shape[0])]
        kwargs.update(
            {"gamma": data.draw(st.sampled_from([0.0, 0.5, 2.0]))} if name == "softmax_focal_loss" else {"z_loss": 1e-4}
        )
    else:
        rest = [((rng.random(shape) < 0.5) * 1.0).astype(dtype)]
        if name == "sigmoid_focal_loss":
            kwargs["gamma"] = data.draw(st.sampled_from([0.0, 0.5, 2.0]))
        elif name != "dice_bce_loss":
            kwargs["from_logits"] = True
    fn = getattr(X, name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # not even in the intermediates
        value, g = anyloss.value_and_grad(fn)(x, *rest, **kwargs)
    if name == "z_loss_cross_entropy":  # z * logsumexp^2 of 1e4 is 1e4: finite, large
        assert np.isfinite(value)
    assert np.isfinite(value) and np.all(np.isfinite(g)), (value, g)
    # The reference in float64: at logits of 1e4 the float32 reference itself is off by
    # 4e-4 (-1.49972 for -1.49993 in the z-loss gradient), where anyloss is not.
    tensors = [torch.tensor(x.astype(np.float64), requires_grad=True)]
    tensors += [torch.tensor(r.astype(np.float64) if r.dtype == x.dtype else r) for r in rest]
    want = REFS[name](*tensors, **kwargs)
    want.backward()
    want, grad = want.detach().to(getattr(torch, dtype)), tensors[0].grad.to(getattr(torch, dtype))
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == "float32" else {}
    assert_close(value, want, name, **tol)
    finite = torch.isfinite(grad)
    assert_close(g[finite.numpy()], grad[finite], name, **tol)


# =========================================================================== errors


@dataclass
class Bad:
    name: str
    id: str
    make: Callable  # () -> (args, kwargs)
    exc: type
    match: str
    needs_values: bool = False


def _ok(name):
    args, kwargs = X.__dict__[name].spec.example(np)
    return [np.array(a, copy=True) for a in args], dict(kwargs)


def _bad(name, id, exc, match, needs_values=False, drop=None, **changes):
    """The worked example with some arguments changed (``arg0``, ``arg1``... for positional)."""

    def make():
        args, kwargs = _ok(name)
        for k, v in changes.items():
            v = v(args) if callable(v) else v
            if k.startswith("arg"):
                i = int(k[3:])
                args[i : i + 1] = [v]  # replaced, or appended after the last
            else:
                kwargs[k] = v
        if drop is not None:
            del args[drop:]
        return args, kwargs

    return Bad(name, id, make, exc, match, needs_values)


def _scale(i, factor):
    return lambda args: args[i] * factor


def _errors():
    out = []
    for n in NAMES:
        out += [
            _bad(n, "reduction", ValueError, "`reduction`", reduction="avg"),
            _bad(n, "unknown-option", TypeError, "`bogus`", bogus=1),
            _bad(n, "missing-target", TypeError, "`target", drop=1),
            _bad(n, "int-input", TypeError, "`input", arg0=lambda a: np.ones(a[0].shape, dtype=np.int64)),
            _bad(n, "mixed-libraries", TypeError, "same array library", arg1=lambda a: array_api_strict.asarray(a[1])),
        ]
    for n in ("sigmoid_focal_loss", "dice_loss", "jaccard_loss", "tversky_loss", "dice_bce_loss"):
        out += [
            _bad(n, "target-shape", ValueError, "`targets?`.*same shape", arg1=lambda a: a[1][:1]),
            _bad(n, "target-above-1", ValueError, "`targets?`.*\\[0, 1\\]", needs_values=True, arg1=_scale(1, 2.0)),
        ]
    for n in ("dice_loss", "jaccard_loss", "tversky_loss", "dice_bce_loss"):
        out += [
            _bad(n, "smooth", ValueError, "`smooth` must be >= 0", smooth=-1.0),
            _bad(n, "eps", ValueError, "`eps` must be >= 0", eps=-1e-7),
            _bad(n, "dim-range", ValueError, "`dim`", dim=2),
            _bad(n, "dim-repeated", ValueError, "`dim`", dim=(1, -1)),
            _bad(n, "dim-kind", TypeError, "`dim`", dim=1.0),
            _bad(n, "one-dim-default", ValueError, "`input`.*dim=0", arg0=lambda a: a[0][0], arg1=lambda a: a[1][0]),
        ]
    for n in ("dice_loss", "jaccard_loss", "tversky_loss"):
        out += [
            _bad(n, "probability-above-1", ValueError, "`input`.*\\[0, 1\\]", needs_values=True, arg0=_scale(0, 2.0)),
            _bad(n, "from-logits-kind", TypeError, "`from_logits`", from_logits=1),
        ]
    out += [
        _bad("sigmoid_focal_loss", "gamma", ValueError, "`gamma` must be >= 0", gamma=-1.0),
        _bad("sigmoid_focal_loss", "alpha", ValueError, "`alpha` must be <= 1", alpha=1.5),
        _bad("sigmoid_focal_loss", "alpha-kind", TypeError, "`alpha`", alpha="0.25"),
        _bad("softmax_focal_loss", "gamma", ValueError, "`gamma` must be >= 0", gamma=-0.5),
        _bad("softmax_focal_loss", "alpha-shape", ValueError, "`alpha`.*shape \\(3,\\)", arg2=np.ones(4)),
        _bad("softmax_focal_loss", "alpha-int", TypeError, "`alpha`", arg2=np.ones(3, dtype=np.int64)),
        _bad("softmax_focal_loss", "float-target", TypeError, "`target`", arg1=lambda a: a[1] * 1.0),
        _bad("softmax_focal_loss", "target-shape", ValueError, "`target`", arg1=lambda a: a[1][:2]),
        _bad(
            "softmax_focal_loss",
            "class-out-of-range",
            ValueError,
            "`target`.*class indices",
            needs_values=True,
            arg1=lambda a: a[1] + 1,
        ),
        _bad(
            "softmax_focal_loss",
            "0d-input",
            ValueError,
            "`input`",
            arg0=np.array(1.0),
            arg1=np.zeros((), dtype=np.int64),
        ),
        _bad("z_loss_cross_entropy", "z_loss", ValueError, "`z_loss` must be >= 0", z_loss=-1.0),
        _bad(
            "z_loss_cross_entropy", "label_smoothing", ValueError, "`label_smoothing` must be <= 1", label_smoothing=1.5
        ),
        _bad("z_loss_cross_entropy", "ignore_index-kind", TypeError, "`ignore_index`", ignore_index=0.5),
        _bad(
            "z_loss_cross_entropy",
            "class-out-of-range",
            ValueError,
            "`target`",
            needs_values=True,
            arg1=lambda a: a[1] - 1,
        ),
        _bad("tversky_loss", "alpha", ValueError, "`alpha` must be >= 0", alpha=-0.1),
        _bad("tversky_loss", "beta", ValueError, "`beta` must be >= 0", beta=-0.1),
        _bad("dice_loss", "squared-kind", TypeError, "`squared`", squared="yes"),
        _bad("dice_bce_loss", "bce_weight", ValueError, "`bce_weight` must be >= 0", bce_weight=-1.0),
    ]
    return out


ERRORS = _errors()


# Option and kind errors do not depend on the backend: on JAX and Dask (slow to set up
# per call) only the value checks (skipped there, or traced) and the shape checks run.
_EAGER = (Backend.NUMPY, Backend.ARRAY_API_STRICT, Backend.TORCH)
ERROR_RUNS = [
    (bad, b)
    for bad in ERRORS
    for b in _SELECTED
    # beside NumPy's arrays one other library's is no error (they become its),
    # and on array-api-strict both would be strict arrays
    if not (bad.id == "mixed-libraries" and b in (Backend.NUMPY, Backend.ARRAY_API_STRICT))
    and (b in _EAGER or bad.needs_values or "shape" in bad.id)
]


@pytest.mark.parametrize("bad, xp", ERROR_RUNS, ids=[f"{b.value}-{bad.name}-{bad.id}" for bad, b in ERROR_RUNS])
def test_bad_input(bad, xp):
    """ValueError/TypeError naming the argument. A value check is skipped where
    values cannot be read: on Dask the call stays lazy, under jax.jit it traces."""
    xp = xp.namespace()
    args, kwargs = bad.make()
    fn = getattr(X, bad.name)
    args = [to_xp(xp, a) if isinstance(a, np.ndarray) else a for a in args]
    backend = backend_of(xp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if bad.needs_values and backend == "dask":
            with no_compute(xp):
                fn(*args, **kwargs)
            return
        with pytest.raises(bad.exc, match=bad.match) as info:
            fn(*args, **kwargs)
        assert " must " in str(info.value) and "; got " in str(info.value)
        if bad.needs_values and backend == "jax":
            import jax

            jax.jit(lambda *a: fn(*a, **kwargs))(*args)


# =========================================================================== backends


def _example(name):
    spec = anyloss.losses()[name]
    args, kwargs = spec.example(np)
    return spec, list(args), kwargs


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


@pytest.mark.parametrize("name", NAMES)
def test_jax_jit_grad_vmap(jax, name):
    """jax.jit, jax.jit(jax.grad) (the analytic gradient through custom_vjp) and
    jax.vmap over a stacked batch of the worked example, against NumPy."""
    import jax.numpy as jnp

    spec, args, kwargs = _example(name)
    want, want_g = anyloss.value_and_grad(spec.functional)(*args, **kwargs)
    x, *rest = [jnp.asarray(a) for a in args]

    def f(x):
        return spec.functional(x, *rest, **kwargs)

    np.testing.assert_allclose(np.asarray(jax.jit(f)(x)), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(f))(x)), want_g, rtol=1e-12, atol=1e-15)
    batched = jax.vmap(f)(jnp.stack([x, 2 * x]))
    np.testing.assert_allclose(np.asarray(batched)[0], want, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_dask_stays_lazy(name):
    da = pytest.importorskip("dask.array")
    spec, args, kwargs = _example(name)
    want, want_g = anyloss.value_and_grad(spec.functional)(*args, **kwargs)
    lazy = [da.from_array(a, chunks=1) for a in args]
    with no_compute(da):
        value, g = anyloss.value_and_grad(spec.functional)(*lazy, **kwargs)
    np.testing.assert_allclose(to_numpy(value), want, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(g), want_g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_torch_float32_backward(name):
    spec, args, kwargs = _example(name)
    x = torch.tensor(args[0], dtype=torch.float32, requires_grad=True)
    rest = [torch.tensor(a.astype(np.float32) if a.dtype.kind == "f" else a) for a in args[1:]]
    out = spec.functional(x, *rest, **kwargs)
    assert out.dtype == torch.float32 and out.requires_grad
    out.backward()
    want = reference(name, [args[0].astype(np.float32)] + [to_numpy(r) for r in rest], kwargs)
    torch.testing.assert_close(out.detach(), want[0])
    torch.testing.assert_close(x.grad, want[1])


# =========================================================================== registry and tooling


@pytest.mark.parametrize("name", NAMES)
def test_registered_as_extras(name):
    spec = anyloss.losses()[name]
    fn = getattr(X, name)
    assert spec.catalogue == "extras" and spec.functional is fn and spec.cls is None
    assert spec.bwd is not None and spec.example is not None and spec.summary
    assert name not in anyloss.functional.__all__  # apart from the PyTorch catalogue
    assert sys.modules[fn.__module__].__doc__.startswith(f"Home of anyloss.extras.{name}")
    assert "Reference" in fn.__doc__ and "Example" in fn.__doc__ and "Shape" in fn.__doc__
    assert "xp" not in inspect.signature(fn).parameters


@pytest.mark.parametrize("name", NAMES)
def test_docstring_example_runs(name):
    fn = getattr(X, name)
    module = importlib.import_module(fn.__module__)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{name} has no doctest"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


def test_builtin_names_are_protected():
    def dice_loss(xp, input, target):
        return input

    with pytest.raises(ValueError, match="`name`"):
        anyloss.register(dice_loss)
    with pytest.raises(ValueError, match="`name`"):
        anyloss.unregister("sigmoid_focal_loss")
    assert anyloss.losses()["dice_loss"].functional is X.dice_loss


def test_cli_lists_and_checks_extras_against_numpy(capsys):
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for name in NAMES:
        assert "[extras]" in lines[name]
    assert "[extras]" not in lines["mse_loss"]
    spec, args, kwargs = _example("dice_loss")
    assert _reference(spec, args, kwargs, ["input"])[0] == "numpy"
    assert _reference(anyloss.losses()["mse_loss"], *_example("mse_loss")[1:], ["input"])[0] == "torch"
    assert main(["show", "softmax_focal_loss"]) == 0
    out = capsys.readouterr().out
    assert "Lin" in out and "Worked example" in out and "d loss / d input" in out


# =========================================================================== register features they use


@pytest.fixture
def per_sample():
    """A user's loss that is per sample, with its own checks, a 'mean' divisor and
    a default reduction of 'sum': the register features the extras rely on."""

    def check(xp, input, target, *, scale):
        if tuple(input.shape) != tuple(target.shape):
            raise ValueError("`target` must have input's shape; got another")

    def forward(xp, input, target, *, scale=1.0):
        """sum over features of scale * (x - y)^2, per sample; 'mean' over non-empty rows."""
        loss = scale * xp.sum((input - target) ** 2, axis=1)
        return loss, xp.sum(xp.astype(xp.any(target != 0, axis=1), input.dtype))

    def gradient(xp, g, input, target, *, scale=1.0):
        return 2 * scale * (input - target) * g[:, None]

    loss = anyloss.register(forward, name="test_per_sample", gradient=gradient, check=check, default_reduction="sum")
    yield loss
    anyloss.unregister("test_per_sample")


def test_register_per_sample_divisor_and_check(per_sample):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y[1] = 0.0  # an empty row: not counted by 'mean'
    assert per_sample(x, y, reduction="none").shape == (4,)
    np.testing.assert_allclose(per_sample(x, y), np.sum((x - y) ** 2))  # default 'sum'
    np.testing.assert_allclose(per_sample(x, y, reduction="mean", scale=2.0), 2 * np.sum((x - y) ** 2) / 3)
    _, g = anyloss.value_and_grad(per_sample)(x, y, reduction="mean", scale=2.0)
    fd = finite_difference_grad(lambda a: per_sample(a, y, reduction="mean", scale=2.0), x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
    tx = torch.tensor(x, requires_grad=True)
    per_sample(tx, torch.tensor(y), reduction="mean", scale=2.0).backward()
    np.testing.assert_allclose(tx.grad.numpy(), g)
    with pytest.raises(ValueError, match="`target`"):
        per_sample(x, y[:, :2])
    spec = anyloss.losses()["test_per_sample"]
    assert spec.catalogue == "user"
    assert str(inspect.signature(per_sample)) == "(input, target, *, scale=1.0, reduction='sum')"
    with pytest.raises(ValueError, match="`default_reduction`"):
        anyloss.register(lambda xp, x: x, name="test_bad_default", default_reduction="avg")


def test_register_catalogue_in_list(per_sample, capsys):
    assert main(["list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("test_per_sample"))
    assert "[user]" in line


@pytest.mark.parametrize("name", NAMES)
def test_plot_curve(name):
    """Each extra has a 1-D curve for `anyloss plot`: finite, and its derivative
    (the analytic gradient) is the slope of its values."""
    from anyloss import plot

    (c,) = plot.curves(name, grad=True, num=201)
    assert np.all(np.isfinite(c.y)) and np.all(np.isfinite(c.dy))
    np.testing.assert_allclose(c.dy[2:-2], np.gradient(c.y, c.x)[2:-2], rtol=1e-3, atol=1e-3)
