"""F.multi_margin_loss / anyloss.MultiMarginLoss against PyTorch."""

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
    with_options,
)

NAME = "multi_margin_loss"


def _xt(shape, tshape=None):
    """Scores of ``shape`` and class indices for them (int64, PyTorch's only target dtype)."""

    def make(rng, dt):
        c = shape[-1] if shape else 1
        n = shape[0] if len(shape) == 2 else 1
        t = rng.integers(0, c, size=(n,) if tshape is None else tshape)
        return (rand(rng, shape, dt), t), {}

    return make


def _weight(c):
    return lambda rng, dt: rand(rng, (c,), dt, 0.0, 2.0)


def _kinks(p, margin):
    # margin - x_y + x_i exactly 0 (dyadic values: exact in float32 too), just above and below it.
    def make(rng, dt):
        x = np.array(
            [
                [1.0, 1.0 - margin, 0.5 - margin, 2.0 - margin, 1.0 - margin + 2.0**-10],
                [0.0, -margin, -margin - 2.0**-12, margin, -margin],
                [3.0, 3.0, 3.0, 3.0, 3.0],
            ],
            dtype=dt,
        )
        return (x, np.array([0, 0, 4])), {"p": p, "margin": margin, "reduction": "none"}

    return make


def _special(rng, dt):
    nan, inf = float("nan"), float("inf")
    x = np.array(
        [
            [nan, 0.0, 1.0],
            [0.0, nan, 1.0],
            [inf, 0.0, 1.0],
            [0.0, inf, 1.0],
            [-inf, 0.0, 1.0],
            [0.0, -inf, 1.0],
            [1e30, -1e30, 0.0],
        ],
        dtype=dt,
    )
    return (x, np.array([0, 0, 0, 0, 0, 0, 1])), {"reduction": "none"}


SHAPES = [((3, 4), None), ((1, 4), ()), ((4,), ()), ((4,), (1,)), ((), ()), ((), (1,)), ((1, 1), None)]
CASES = [
    Case(f"{shape}-t{tshape}-{red}", with_options(_xt(shape, tshape), reduction=red))
    for shape, tshape in SHAPES
    for red in ["none", "mean", "sum"]
]
CASES += [Case("empty-batch-none", with_options(_xt((0, 4)), reduction="none"))]
CASES += [
    Case(f"p={p}-margin={m}-{red}", with_options(_xt((5, 6)), p=p, margin=m, reduction=red))
    for p in [1, 2]
    for m in [1.0, 0.0, 0.5, -0.5, 3]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"weight-p={p}-{red}", with_options(_xt((5, 6)), p=p, weight=_weight(6), reduction=red))
    for p in [1, 2]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"weight-{shape}-t{tshape}", with_options(_xt(shape, tshape), p=2, weight=_weight(4), reduction="none"))
    for shape, tshape in [((4,), ()), ((4,), (1,)), ((1, 4), ())]
]
CASES += [Case(f"kinks-p={p}-margin={m}", _kinks(p, m)) for p in [1, 2] for m in [1.0, 0.5, 0.0]]
CASES += [
    Case("p-float", with_options(_xt((3, 4)), p=2.0)),
    Case("p-bool", with_options(_xt((3, 4)), p=True)),
    Case("margin-int", with_options(_xt((3, 4)), margin=2)),
    Case("margin-inf", with_options(_xt((3, 4)), margin=float("inf"), reduction="none")),
    Case("margin-nan", with_options(_xt((3, 4)), margin=float("nan"), reduction="none")),
    Case("special-values", _special),
    Case(
        "inf-weight",
        lambda rng, dt: (
            (np.array([[0.0, 5.0, 0.5], [1.0, 0.0, 3.0], [3.0, 0.0, 0.0]], dtype=dt), np.array([0, 1, 0])),
            {"weight": np.array([np.inf, 1.0, 2.0], dtype=dt), "reduction": "none"},
        ),
    ),
    Case(
        "extreme-p2",
        lambda rng, dt: ((rand(rng, (4, 5), dt, -1e15, 1e15), np.array([0, 1, 2, 4])), {"p": 2, "reduction": "none"}),
    ),
    Case(
        "tiny",
        lambda rng, dt: ((rand(rng, (4, 5), dt, -1e-30, 1e-30), np.array([0, 1, 2, 4])), {"margin": 1e-30, "p": 2}),
    ),
    Case("legacy-size_average", with_options(_xt((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xt((3, 4)), reduce=False, p=2)),
    Case("legacy-both", with_options(_xt((3, 4)), size_average=True, reduce=True, weight=_weight(4))),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xt((3, 4)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("p=3", with_options(_xt((3, 4)), p=3), ValueError, re_arg("p")),
    Error("p=0", with_options(_xt((3, 4)), p=0), ValueError, re_arg("p")),
    Error("p-str", with_options(_xt((3, 4)), p="1"), ValueError, re_arg("p")),
    Error("margin-str", with_options(_xt((3, 4)), margin="1"), TypeError, re_arg("margin")),
    Error(
        "int-input",
        lambda rng, dt: ((np.ones((3, 4), dtype=np.int64), np.array([0, 1, 2])), {}),
        TypeError,
        re_arg("input"),
    ),
    Error(
        "float-target",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0.0, 1.0, 2.0])), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "bool-target",
        lambda rng, dt: ((rand(rng, (2, 4), dt), np.array([True, False])), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "target-too-big",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 4, 2])), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "target-negative",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, -1, 2])), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "target-range-1d",
        lambda rng, dt: ((rand(rng, (4,), dt), np.array(4)), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error("target-short", _xt((3, 4), (2,)), ValueError, re_arg("target")),
    Error("target-2d", _xt((3, 4), (3, 1)), ValueError, re_arg("target")),
    Error("target-0d-batch", lambda rng, dt: ((rand(rng, (3, 4), dt), np.array(1)), {}), ValueError, re_arg("target")),
    Error("target-1d-input-two", _xt((4,), (2,)), ValueError, re_arg("target")),
    Error(
        "input-3d",
        lambda rng, dt: ((rand(rng, (2, 3, 4), dt), np.zeros((2, 3), dtype=np.int64)), {}),
        ValueError,
        re_arg("input"),
    ),
    Error(
        "no-classes",
        lambda rng, dt: ((rand(rng, (3, 0), dt), np.zeros(3, dtype=np.int64)), {}),
        ValueError,
        re_arg("input"),
    ),
    Error(
        "no-classes-1d",
        lambda rng, dt: ((rand(rng, (0,), dt), np.zeros((), dtype=np.int64)), {}),
        ValueError,
        re_arg("input"),
    ),
    Error("weight-length", with_options(_xt((3, 4)), weight=_weight(3)), ValueError, re_arg("weight")),
    Error(
        "weight-2d",
        with_options(_xt((3, 4)), weight=lambda rng, dt: rand(rng, (4, 1), dt)),
        ValueError,
        re_arg("weight"),
    ),
    Error(
        "weight-0d", with_options(_xt((1, 1)), weight=lambda rng, dt: rand(rng, (), dt)), ValueError, re_arg("weight")
    ),
    Error(
        "weight-dtype",
        with_options(_xt((3, 4)), weight=lambda rng, dt: rand(rng, (4,), np.float32)),
        TypeError,
        re_arg("weight"),
    ),
    Error("not-array", lambda rng, dt: (([[1.0, 2.0]], np.array([0])), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # PyTorch docs' example: x = [[0.1, 0.2, 0.4, 0.8]], y = [3]:
    # (1/4) * ((1 - (0.8 - 0.1)) + (1 - (0.8 - 0.2)) + (1 - (0.8 - 0.4))) = 0.325.
    x, y = np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([3])
    assert float(F.multi_margin_loss(x, y)) == pytest.approx(0.325, abs=1e-15)
    assert float(anyloss.MultiMarginLoss()(x, y)) == pytest.approx(0.325, abs=1e-15)


@pytest.mark.parametrize("tdtype", ["int8", "uint8", "int16", "int32", "uint64"])
def test_any_integer_target(xp, tdtype):
    # PyTorch takes only int64 class indices; anyloss takes any integer dtype and gives int64's result.
    rng = np.random.default_rng(0)
    x, t = rand(rng, (5, 4), np.float64), rng.integers(0, 4, size=5)
    w = rand(rng, (4,), np.float64, 0, 2)
    xa, wa = xp.asarray(x), xp.asarray(w)

    def f(a, tt):
        return F.multi_margin_loss(a, tt, p=2, weight=wa, reduction="sum")

    v64, g64 = anyloss.value_and_grad(f)(xa, xp.asarray(t))
    v, g = anyloss.value_and_grad(f)(xa, xp.asarray(t.astype(tdtype)))
    np.testing.assert_array_equal(np.asarray(v), np.asarray(v64))
    np.testing.assert_array_equal(np.asarray(g), np.asarray(g64))


@pytest.mark.parametrize("p", [1, 2])
def test_empty_batch(xp, dtype, p):
    # PyTorch 2.13 returns uninitialized memory for 'mean' and 'sum' of an empty batch;
    # anyloss gives the empty mean (NaN) and the empty sum (0), and an empty gradient.
    x = xp.asarray(np.zeros((0, 4), dtype=dtype))
    t = xp.asarray(np.zeros((0,), dtype=np.int64))
    w = xp.asarray(np.ones((4,), dtype=dtype))
    v, g = anyloss.value_and_grad(lambda a: F.multi_margin_loss(a, t, p=p, weight=w))(x)
    assert np.isnan(float(v)) and tuple(g.shape) == (0, 4) and g.dtype == x.dtype
    v, g = anyloss.value_and_grad(lambda a: F.multi_margin_loss(a, t, p=p, reduction="sum"))(x)
    assert float(v) == 0.0 and tuple(g.shape) == (0, 4)


def test_weight_not_differentiable():
    rng = np.random.default_rng(0)
    x, t, w = rand(rng, (3, 4), np.float64), np.array([0, 1, 2]), rand(rng, (4,), np.float64)
    with pytest.raises(ValueError, match=re_arg("argnums")):
        anyloss.grad(lambda a, b: F.multi_margin_loss(a, t, weight=b), argnums=1)(x, w)


def test_class():
    rng = np.random.default_rng(0)
    x, t, w = rand(rng, (3, 4), np.float64), np.array([0, 1, 3]), rand(rng, (4,), np.float64, 0, 2)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        loss = anyloss.MultiMarginLoss(p=2, margin=0.5, weight=w, size_average=False)
    assert (loss.p, loss.margin, loss.reduction) == (2, 0.5, "sum")
    np.testing.assert_array_equal(loss(x, t), F.multi_margin_loss(x, t, p=2, margin=0.5, weight=w, reduction="sum"))
    with pytest.raises(ValueError, match=re_arg("p")):
        anyloss.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match=re_arg("weight")):
        anyloss.MultiMarginLoss(weight=np.ones((4, 1)))


# Values that hit the hinge's kink often (margin 1 or 0.5 between two of them) and extremes.
_POOL = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-30, -1e15, 1e15])
_VALUES = st.one_of(_POOL, st.floats(-1e3, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    p=st.sampled_from([1, 2]),
    margin=st.sampled_from([1.0, 0.5, 0.0, -1.0, 2.0]),
    weighted=st.booleans(),
    batched=st.booleans(),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, p, margin, weighted, batched):
    xp = hypothesis_namespace(hxp)

    c = data.draw(st.integers(1, 6))
    # An empty batch only with 'none' (PyTorch's 'mean'/'sum' read uninitialized memory there).
    n = data.draw(st.integers(0 if reduction == "none" else 1, 5))
    shape = (n, c) if batched else (c,)
    x = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    t = np.asarray(
        data.draw(
            hnp.arrays(
                np.int64, (n,) if batched else data.draw(st.sampled_from([(), (1,)])), elements=st.integers(0, c - 1)
            )
        )
    )
    kwargs = {"p": p, "margin": margin, "reduction": reduction}
    if weighted:
        kwargs["weight"] = data.draw(hnp.arrays(dtype, (c,), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e3])))
    check_against_torch(NAME, (x, t), kwargs, xp)
