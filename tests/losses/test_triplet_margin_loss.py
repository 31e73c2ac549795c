"""F.triplet_margin_loss / anyloss.TripletMarginLoss against PyTorch."""

import math

import numpy as np
import pytest
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
    triple,
    with_options,
)

NAME = "triplet_margin_loss"
INF = math.inf


def _kinks(rng, dt):
    """Exact kinks with eps=0: a == p (zero difference), the hinge at exactly 0
    (d(a, n) = 1 = margin), ties between d(a, n) and d(p, n) for the swap,
    ties among the largest/smallest |differences| for p = +-inf."""
    a = np.array([[0, 0, 0], [0, 0, 0], [1, -1, 0], [2, 2, 2], [0, 0, 0], [1, 2, 3]], dt)
    p = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0], [2, 2, 2], [1, 1, 0], [1, 2, 3]], dt)
    n = np.array([[1, 0, 0], [0, 1, 0], [-1, 1, 1], [3, 1, 2], [2, 0, 0], [1, 2, 3]], dt)
    return (a, p, n), {"eps": 0.0, "reduction": "none"}


def _ints(da, dp, dn, lo=-3, hi=4):
    def build(rng, dt):
        def make(d):
            return rand(rng, (4, 3), dt) if d == "float" else rng.integers(lo, hi, (4, 3)).astype(d)

        return (make(da), make(dp), make(dn)), {"reduction": "none"}

    return build


P_VALUES = [1, 2, 3, 0.5, 1.5, 2.5, -1, -2.5, INF, -INF, 1.0]

CASES = [
    Case(f"{shape}-{red}", with_options(triple(shape), reduction=red))
    for shape in [(), (5,), (4, 5), (1, 3), (0, 3), (3, 0), (2, 3, 4)]
    for red in ["none", "mean", "sum"]
]
CASES += [Case(f"p={p}-swap", with_options(triple((5, 4)), p=p, swap=True, reduction="none")) for p in P_VALUES]
CASES += [Case(f"kinks-p={p}-swap={s}", with_options(_kinks, p=p, swap=s)) for p in P_VALUES for s in [False, True]]
# One feature (and 0-d inputs): PyTorch's norm is |d| for every p != 0, with no overflow of |d|^p.
CASES += [
    Case(
        f"one-feature-p={p}",
        lambda rng, dt, p=p: (
            (
                np.array([[1e20], [0.0], [-3e-30], [2.0]], dt),
                np.zeros((4, 1), dt),
                np.array([[1.0], [1e-30], [0.0], [-1e20]], dt),
            ),
            {"p": p, "eps": 0.0, "swap": True, "reduction": "none"},
        ),
        grads=p != 0,
    )
    for p in P_VALUES + [0, math.nan]
]
CASES += [
    Case(
        f"0d-p={p}",
        lambda rng, dt, p=p: ((np.array(3e20, dt), np.array(-1e20, dt), np.array(1e20, dt)), {"p": p, "swap": True}),
        grads=p != 0,
    )
    for p in [2, 3, -1, 0, math.nan]
]
CASES += [Case(f"margin={m}", with_options(triple((5, 4)), margin=m, reduction="none")) for m in [0.5, 3, 1e-3, INF]]
CASES += [Case(f"eps={e}", with_options(triple((5, 4)), eps=e, p=1, swap=True)) for e in [0.0, 0, 1e-3, -1.0]]
CASES += [
    # p = 0 counts non-zeros: PyTorch gives no gradient at all (ours is 0, see below).
    Case("p=0", with_options(triple((5, 4)), p=0, reduction="none"), grads=False),
    Case("p=0-kinks", with_options(_kinks, p=0.0, swap=True), grads=False),
    Case("p=nan", with_options(triple((5, 4)), p=math.nan, reduction="none")),
    Case("empty-feature-p=0.5", with_options(triple((3, 0)), p=0.5, swap=True, reduction="none")),
    Case("empty-feature-p=nan", with_options(triple((3, 0)), p=math.nan, reduction="none"), grads=False),
    Case("empty-feature-p=0", with_options(triple((3, 0)), p=0, reduction="none"), grads=False),
    Case("empty-batch-p=inf", with_options(triple((0, 3)), p=INF, swap=True)),
    Case("broadcast-anchor", with_options(triple((1, 4), (3, 4), (3, 4)), swap=True, reduction="none")),
    Case("broadcast-positive", with_options(triple((3, 4), (3, 1), (1, 4)), swap=True, reduction="sum")),
    Case("broadcast-features", with_options(triple((3, 1), (3, 4), (3, 5)), p=3, reduction="none")),
    Case("broadcast-batch-1", with_options(triple((1, 4), (1, 4), (3, 4)), reduction="none")),
    Case(
        "mixed-float",
        lambda rng, dt: (
            (rand(rng, (3, 4), np.float32), rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float32)),
            {"swap": True, "reduction": "none"},
        ),
    ),
    Case("legacy-size_average", with_options(triple((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(triple((3, 4)), reduce=False)),
    Case("legacy-both", with_options(triple((3, 4)), size_average=True, reduce=True)),
    Case(
        "nan-inf",
        lambda rng, dt: (
            (
                np.array([[np.nan, 0.0], [np.inf, 0.0], [0.0, 0.0], [1.0, 1.0]], dt),
                np.array([[0.0, 0.0], [0.0, 0.0], [np.inf, 0.0], [1.0, 1.0]], dt),
                np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-np.inf, 1.0]], dt),
            ),
            {"swap": True, "reduction": "none"},
        ),
    ),
    Case(
        "large-p3",
        lambda rng, dt: (
            (rand(rng, (3, 4), dt, -1e20, 1e20), rand(rng, (3, 4), dt), rand(rng, (3, 4), dt)),
            {"p": 3, "reduction": "none"},
        ),
    ),
    # Integer inputs: subtracted in their dtype (int8 wraps around), then float32.
    Case("int64-inputs", _ints("int64", "int64", "int64")),
    Case("int8-overflow", _ints("int8", "int8", "int8", -120, 120)),
    Case("int-and-float", _ints("int32", "float", "int64")),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(triple((3, 2)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("margin-0", with_options(triple((3, 2)), margin=0), ValueError, re_arg("margin")),
    Error("margin-negative", with_options(triple((3, 2)), margin=-1.0), ValueError, re_arg("margin")),
    # PyTorch's `margin <= 0` check lets NaN through (and returns NaN): refused here.
    Error(
        "margin-nan", with_options(triple((3, 2)), margin=math.nan), ValueError, re_arg("margin"), torch_raises=False
    ),
    Error("margin-str", with_options(triple((3, 2)), margin="1"), TypeError, re_arg("margin")),
    Error("p-str", with_options(triple((3, 2)), p="2"), TypeError, re_arg("p")),
    Error("eps-none", with_options(triple((3, 2)), eps=None), TypeError, re_arg("eps")),
    Error("swap-int", with_options(triple((3, 2)), swap=1), TypeError, re_arg("swap")),
    Error("positive-ndim", triple((3, 2), (2,)), ValueError, re_arg("positive")),
    Error("negative-ndim", triple((3, 2), (3, 2), (1, 3, 2)), ValueError, re_arg("negative")),
    Error("feature-mismatch", triple((3, 2), (3, 4)), ValueError, re_arg("positive")),
    Error("batch-mismatch", triple((3, 2), (3, 2), (2, 2)), ValueError, re_arg("negative")),
    Error("distances-mismatch", triple((1, 2), (2, 2), (3, 2)), ValueError, re_arg("negative")),
    Error("swap-mismatch", with_options(triple((3, 1), (3, 4), (3, 5)), swap=True), ValueError, re_arg("negative")),
    Error("empty-feature-p=inf", with_options(triple((2, 0)), p=INF), ValueError, re_arg("p")),
    Error("empty-feature-p=-1", with_options(triple((2, 0)), p=-1), ValueError, re_arg("p")),
    Error("empty-both-p=-inf", with_options(triple((0, 0)), p=-INF), ValueError, re_arg("p")),
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


def test_worked_example():
    # d(a, p) = 1, d(a, n) = 3: max(0, 3 + 1 - 3) = 1; with margin 1 the hinge is inactive.
    a, p, n = np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[3.0, 0.0]])
    assert float(F.triplet_margin_loss(a, p, n, margin=3.0, eps=0.0)) == 1.0
    assert float(anyloss.TripletMarginLoss(margin=1.0, eps=0.0)(a, p, n)) == 0.0


def test_p0_gradient_is_zero():
    rng = np.random.default_rng(0)
    a, p, n = (rand(rng, (3, 4), np.float64) for _ in range(3))
    grads = anyloss.grad(lambda a, p, n: F.triplet_margin_loss(a, p, n, p=0, margin=5.0), argnums=(0, 1, 2))(a, p, n)
    for g in grads:
        np.testing.assert_array_equal(g, np.zeros((3, 4)))


def test_kink_gradients_pinned():
    # Pinned (torch agrees, see test_matches_torch[kinks-*]): the hinge passes at exactly 0,
    # a zero difference has gradient 0, and a swap tie splits the gradient in half.
    a, p, n = np.array([[0.0, 0.0]]), np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])
    ga, gp, gn = anyloss.grad(lambda a, p, n: F.triplet_margin_loss(a, p, n, eps=0.0, swap=True), argnums=(0, 1, 2))(
        a, p, n
    )
    assert ga.tolist() == [[0.5, 0.0]] and gp.tolist() == [[0.5, 0.0]] and gn.tolist() == [[-1.0, 0.0]]


def test_class():
    rng = np.random.default_rng(0)
    a, p, n = (rand(rng, (3, 4), np.float64) for _ in range(3))
    with pytest.warns(UserWarning, match="reduction='sum'"):
        loss = anyloss.TripletMarginLoss(margin=2.0, p=1.0, eps=0.0, swap=True, size_average=False)
    assert (loss.reduction, loss.margin, loss.p, loss.eps, loss.swap) == ("sum", 2.0, 1.0, 0.0, True)
    np.testing.assert_array_equal(loss(a, p, n), F.triplet_margin_loss(a, p, n, 2.0, 1.0, 0.0, True, reduction="sum"))
    with pytest.raises(ValueError, match=re_arg("margin")):
        anyloss.TripletMarginLoss(margin=0.0)


# Few distinct values: zero differences, hinge kinks and ties are likely.
_X = st.one_of(st.sampled_from([0.0, 0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e20, -1e20]), st.floats(-1e3, 1e3, width=32))


@settings(max_examples=50, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    margin=st.sampled_from([1.0, 0.5, 2.0]),
    p=st.sampled_from([2, 1, 3, 0.5, 1.5, -1.0, INF, -INF]),
    eps=st.sampled_from([1e-6, 0.0]),
    swap=st.booleans(),
    ndim=st.sampled_from([1, 2, 2, 3]),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, margin, p, eps, swap, ndim):
    xp = hypothesis_namespace(hxp)

    min_side = 1 if (p < 0 or math.isinf(p)) else 0  # an empty last dimension has no such norm
    shape = data.draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=4))
    shape = shape[:-1] + (max(shape[-1], min_side),)
    a, pos, neg = (data.draw(hnp.arrays(dtype, shape, elements=_X)) for _ in range(3))
    kwargs = {"margin": margin, "p": p, "eps": eps, "swap": swap, "reduction": reduction}
    # A float32 norm of general p is (sum |d|^p)^(1/p) in elementwise pows, where PyTorch's
    # norm kernel rounds differently: on PyTorch tensors (whose float32 pow is less exact
    # than NumPy's) |d| of 1e20 differs by ~12 ulp.
    general = dtype == "float32" and p not in (1, 2) and not math.isinf(p)
    check_against_torch(NAME, (a, pos, neg), kwargs, xp, tol={"rtol": 1e-5, "atol": 1e-5} if general else None)
