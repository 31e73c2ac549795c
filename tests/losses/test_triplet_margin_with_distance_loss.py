"""F.triplet_margin_with_distance_loss / anyloss.TripletMarginWithDistanceLoss against PyTorch."""

import math

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import anyloss
import anyloss.functional as F
from helpers import (
    DTYPES,
    HYPOTHESIS_BACKENDS,
    REDUCTIONS,
    Case,
    Error,
    cases,
    check_against_torch,
    errors,
    hypothesis_namespace,
    rand,
    re_arg,
    run_case,
    run_error,
    torch,
    triple,
)

NAME = "triplet_margin_with_distance_loss"


# --------------------------------------------------------------------------- distances for the tests
# Each works on torch tensors (PyTorch differentiates it) and on any Array API array.


def cosine_distance(x1, x2):
    xp = array_namespace(x1, x2)
    return 1.0 - xp.sum(x1 * x2, axis=-1) / xp.sqrt(xp.sum(x1 * x1, axis=-1) * xp.sum(x2 * x2, axis=-1))


def cosine_distance_vjp(x1, x2, g):
    xp = array_namespace(x1, x2, g)
    m1, m2 = xp.sum(x1 * x1, axis=-1, keepdims=True), xp.sum(x2 * x2, axis=-1, keepdims=True)
    den = xp.sqrt(m1 * m2)
    cos = xp.sum(x1 * x2, axis=-1, keepdims=True) / den
    g = xp.expand_dims(g, axis=-1)
    return -g * (x2 / den - cos * x1 / m1), -g * (x1 / den - cos * x2 / m2)


def lopsided(x1, x2):
    """An asymmetric distance: d(x1, x2) != d(x2, x1), so the swap's argument order shows."""
    xp = array_namespace(x1, x2)
    return xp.sum(xp.abs(x1 - 2.0 * x2), axis=-1)


def lopsided_vjp(x1, x2, g):
    xp = array_namespace(x1, x2, g)
    s = xp.sign(x1 - 2.0 * x2) * xp.expand_dims(g, axis=-1)
    return s, -2.0 * s


COSINE = anyloss.Distance(cosine_distance, cosine_distance_vjp)
LOPSIDED = anyloss.Distance(lopsided, lopsided_vjp)


def torch_pairwise(p, eps):
    """PyTorch's own pairwise_distance for torch tensors, anyloss's elsewhere, with anyloss's vjp:
    checks Distance.pairwise's gradient against torch.pairwise_distance's, kinks included."""
    ours = anyloss.Distance.pairwise(p, eps)

    def fn(x1, x2):
        if isinstance(x1, torch.Tensor):
            return torch.pairwise_distance(x1, x2, p, eps)
        return ours(x1, x2)

    return anyloss.Distance(fn, ours.vjp)


# --------------------------------------------------------------------------- cases


def _with(make, **kw):
    def build(rng, dt):
        args, kwargs = make(rng, dt)
        return args, {**kwargs, **kw}

    return build


def _kinks(rng, dt):
    """a == p (zero difference), the hinge at exactly 0, swap ties (see test_triplet_margin_loss)."""
    a = np.array([[0, 0, 0], [0, 0, 0], [1, -1, 0], [2, 2, 2], [0, 0, 0], [1, 2, 3]], dt)
    p = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0], [2, 2, 2], [1, 1, 0], [1, 2, 3]], dt)
    n = np.array([[1, 0, 0], [0, 1, 0], [-1, 1, 1], [3, 1, 2], [2, 0, 0], [1, 2, 3]], dt)
    return (a, p, n), {"reduction": "none"}


CASES = [
    Case(f"{shape}-{red}", _with(triple(shape), reduction=red))
    for shape in [(), (5,), (4, 5), (1, 3), (0, 3), (3, 0), (2, 3, 4)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"swap-margin={m}", _with(triple((5, 4)), swap=True, margin=m, reduction="none"))
    for m in [1.0, 0.5, 3, math.inf]
]
CASES += [
    Case("swap-truthy", _with(triple((5, 4)), swap=1, reduction="none")),  # PyTorch tests `if swap:`
    Case("swap-falsy", _with(triple((5, 4)), swap=None)),
    Case("broadcast-anchor", _with(triple((1, 4), (3, 4), (3, 4)), swap=True, reduction="none")),
    Case("broadcast-features", _with(triple((3, 1), (3, 4), (3, 5)), reduction="none")),
    Case(
        "mixed-float",
        lambda rng, dt: (
            (rand(rng, (3, 4), np.float32), rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float32)),
            {"swap": True, "reduction": "none"},
        ),
    ),
    Case("int-inputs", lambda rng, dt: (tuple(rng.integers(-3, 4, (4, 3)) for _ in range(3)), {"reduction": "none"})),
    Case("kinks-default", _with(_kinks, swap=True)),
    # A user callable: values from the plain function, gradients through a Distance with a vjp.
    Case("cosine-callable", _with(triple((5, 4)), distance_function=cosine_distance, reduction="none"), grads=False),
    Case("cosine-callable-swap", _with(triple((5, 4)), distance_function=cosine_distance, swap=True), grads=False),
    Case("cosine-Distance", _with(triple((5, 4)), distance_function=COSINE, reduction="none")),
    Case("cosine-Distance-swap", _with(triple((5, 4)), distance_function=COSINE, swap=True, margin=0.5)),
    Case("cosine-Distance-0d-batch", _with(triple((4,)), distance_function=COSINE, swap=True, margin=2.0)),
    Case("lopsided-swap", _with(triple((6, 3)), distance_function=LOPSIDED, swap=True, margin=2.0, reduction="none")),
    Case("lopsided-swap-mean", _with(triple((6, 3)), distance_function=LOPSIDED, swap=True, margin=2.0)),
    Case(
        "lambda-l1",
        _with(
            triple((5, 4)),
            distance_function=lambda x1, x2: array_namespace(x1).sum(array_namespace(x1).abs(x1 - x2), axis=-1),
            reduction="none",
        ),
        grads=False,
    ),
]
CASES += [
    Case(f"pairwise-p={p}-kinks", _with(_kinks, distance_function=torch_pairwise(p, 0.0), swap=True))
    for p in [1, 2, 3, 0.5, 1.5, -1.0, math.inf, -math.inf]
]
CASES += [
    Case(f"pairwise-p={p}-eps", _with(triple((5, 4)), distance_function=torch_pairwise(p, 1e-3), swap=True))
    for p in [1, 2, 3, 0.5, math.inf]
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", _with(triple((3, 2)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-none-object", _with(triple((3, 2)), reduction=None), ValueError, re_arg("reduction")),
    Error("margin-0", _with(triple((3, 2)), margin=0), ValueError, re_arg("margin")),
    Error("margin-negative", _with(triple((3, 2)), margin=-0.5), ValueError, re_arg("margin")),
    # PyTorch's `margin <= 0` check lets NaN through (and returns NaN): refused here.
    Error("margin-nan", _with(triple((3, 2)), margin=math.nan), ValueError, re_arg("margin"), torch_raises=False),
    Error("positive-ndim", triple((3, 2), (2,)), ValueError, re_arg("positive")),
    Error(
        "negative-ndim",
        _with(triple((3, 2), (3, 2), (2,)), distance_function=cosine_distance),
        ValueError,
        re_arg("negative"),
    ),
    Error("distance-not-callable", _with(triple((3, 2)), distance_function=3), TypeError, re_arg("distance_function")),
    Error("feature-mismatch", triple((3, 2), (3, 4)), ValueError, re_arg("positive")),
    Error("batch-mismatch", triple((3, 2), (3, 2), (2, 2)), ValueError, re_arg("negative")),
    Error("swap-mismatch", _with(triple((3, 1), (3, 4), (3, 5)), swap=True), ValueError, re_arg("negative")),
    Error(
        "bool-inputs",
        lambda rng, dt: ((np.ones((2, 2), bool), rand(rng, (2, 2), dt), rand(rng, (2, 2), dt)), {}),
        TypeError,
        re_arg("anchor"),
    ),
    Error(
        "not-array",
        lambda rng, dt: ((rand(rng, (2, 2), dt), [[1.0, 2.0]], rand(rng, (2, 2), dt)), {}),
        TypeError,
        re_arg("positive"),
    ),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


# --------------------------------------------------------------------------- gradients without a vjp


def _three(shape=(3, 4)):
    rng = np.random.default_rng(0)
    return tuple(rand(rng, shape, np.float64) for _ in range(3))


def test_plain_callable_has_no_gradient_on_numpy():
    a, p, n = _three()
    f = lambda a, p, n: F.triplet_margin_with_distance_loss(a, p, n, distance_function=cosine_distance)  # noqa: E731
    assert np.isfinite(f(a, p, n))  # values work
    with pytest.raises(ValueError, match=re_arg("distance_function") + ".*anyloss.Distance"):
        anyloss.value_and_grad(f)(a, p, n)
    with pytest.raises(ValueError, match=re_arg("distance_function")):
        anyloss.vjp(f, a, p, n, argnums=1)[1](np.ones(()))
    without_vjp = anyloss.Distance(cosine_distance)
    with pytest.raises(ValueError, match=re_arg("distance_function")):
        anyloss.grad(F.triplet_margin_with_distance_loss)(a, p, n, distance_function=without_vjp)


def test_plain_callable_on_torch_autograd():
    # On tensors that require grad the callable is simply differentiated by autograd.
    a, p, n = (torch.from_numpy(x).requires_grad_(True) for x in _three())
    out = F.triplet_margin_with_distance_loss(a, p, n, distance_function=cosine_distance, swap=True)
    out.backward()
    a2, p2, n2 = (t.detach().clone().requires_grad_(True) for t in (a, p, n))
    ref = torch.nn.functional.triplet_margin_with_distance_loss(
        a2, p2, n2, distance_function=cosine_distance, swap=True
    )
    ref.backward()
    torch.testing.assert_close(out, ref)
    for t, r in zip((a, p, n), (a2, p2, n2)):
        torch.testing.assert_close(t.grad, r.grad)


def test_default_matches_triplet_margin_loss():
    # One pairwise distance serves both losses.
    a, p, n = _three()
    ours = anyloss.value_and_grad(F.triplet_margin_with_distance_loss, argnums=(0, 1, 2))(a, p, n, swap=True)
    ref = anyloss.value_and_grad(F.triplet_margin_loss, argnums=(0, 1, 2))(a, p, n, swap=True)
    np.testing.assert_array_equal(ours[0], ref[0])
    for g, r in zip(ours[1], ref[1]):
        np.testing.assert_array_equal(g, r)
    pw = anyloss.Distance.pairwise(p=1, eps=0.0)
    ours = anyloss.grad(F.triplet_margin_with_distance_loss, argnums=(0, 1, 2))(a, p, n, distance_function=pw)
    ref = anyloss.grad(F.triplet_margin_loss, argnums=(0, 1, 2))(a, p, n, p=1, eps=0.0)
    for g, r in zip(ours, ref):
        np.testing.assert_array_equal(g, r)


def test_distance_wrapper():
    d = anyloss.Distance(cosine_distance, cosine_distance_vjp)
    x1, x2, _ = _three()
    np.testing.assert_array_equal(d(x1, x2), cosine_distance(x1, x2))
    assert "cosine_distance" in repr(d) and "no vjp" in repr(anyloss.Distance(cosine_distance))
    with pytest.raises(TypeError, match=re_arg("fn")):
        anyloss.Distance(3)
    with pytest.raises(TypeError, match=re_arg("vjp")):
        anyloss.Distance(cosine_distance, vjp="no")
    with pytest.raises(TypeError, match=re_arg("p")):
        anyloss.Distance.pairwise(p="2")


def test_worked_example():
    a, p, n = np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[3.0, 0.0]])
    l1 = anyloss.Distance(lambda x1, x2: np.abs(x1 - x2).sum(-1))
    assert float(F.triplet_margin_with_distance_loss(a, p, n, distance_function=l1, margin=3.0)) == 1.0


def test_class():
    a, p, n = _three()
    loss = anyloss.TripletMarginWithDistanceLoss(margin=2.0, swap=True, reduction="sum")
    assert isinstance(loss.distance_function, anyloss.Distance) and loss.distance_function.vjp is not None
    np.testing.assert_array_equal(
        loss(a, p, n), F.triplet_margin_with_distance_loss(a, p, n, margin=2.0, swap=True, reduction="sum")
    )
    loss = anyloss.TripletMarginWithDistanceLoss(distance_function=COSINE)
    g = anyloss.grad(loss, argnums=2)(a, p, n)
    assert g.shape == n.shape
    with pytest.raises(ValueError, match=re_arg("margin")):
        anyloss.TripletMarginWithDistanceLoss(margin=0)


_X = st.one_of(st.sampled_from([0.0, 0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e20]), st.floats(-1e3, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    margin=st.sampled_from([1.0, 0.5, 2.0]),
    swap=st.booleans(),
    ndim=st.sampled_from([1, 2, 2, 3]),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, margin, swap, ndim):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=4))
    a, pos, neg = (data.draw(hnp.arrays(dtype, shape, elements=_X)) for _ in range(3))
    check_against_torch(NAME, (a, pos, neg), {"margin": margin, "swap": swap, "reduction": reduction}, xp)
