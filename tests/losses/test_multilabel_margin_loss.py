"""F.multilabel_margin_loss / anyloss.MultiLabelMarginLoss against PyTorch."""

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
    legacy_class,
    rand,
    re_arg,
    run_case,
    run_error,
    with_options,
)

NAME = "multilabel_margin_loss"


def _labels(rng, n, c, duplicates=False):
    """(n, c) int64 targets: a random number of labels, then -1, then junk in [-1, C) that must be ignored."""
    t = rng.integers(-1, c, size=(n, c))
    for row in t:
        k = rng.integers(0, c + 1)
        row[:k] = rng.integers(0, c, size=k) if duplicates else rng.permutation(c)[:k]
        if k < c:
            row[k] = -1
    return t


def _xt(shape, tshape=None, duplicates=False):
    def make(rng, dt):
        c = shape[-1] if shape else 1
        n = shape[0] if len(shape) == 2 else 1
        t = _labels(rng, n, c, duplicates)
        return (rand(rng, shape, dt), t.reshape(shape if tshape is None else tshape)), {}

    return make


def _fixed(x, t, **kw):
    return lambda rng, dt: ((np.array(x, dtype=dt), np.array(t, dtype=np.int64)), kw)


nan, inf = float("nan"), float("inf")
SHAPES = [((3, 5), None), ((1, 5), None), ((5,), None), ((), ()), ((), (1,)), ((1, 1), None), ((2, 1), None)]
CASES = [
    Case(f"{shape}-t{tshape}-{red}", with_options(_xt(shape, tshape), reduction=red))
    for shape, tshape in SHAPES
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case("empty-batch-none", with_options(_xt((0, 5)), reduction="none")),
    Case("big", with_options(_xt((16, 9)), reduction="none")),
    Case("duplicates", with_options(_xt((8, 5), duplicates=True), reduction="none")),
    Case(
        "duplicates-exact",
        _fixed([[0.1, 0.2, 0.4, 0.8]] * 3, [[3, 3, 0, -1], [0, 0, 0, 0], [1, -1, 1, 1]], reduction="none"),
    ),
    Case(
        "junk-after-pad",
        _fixed([[0.1, 0.2, 0.4, 0.8]] * 3, [[3, -1, 0, 1], [-1, 0, 1, 2], [2, 1, -1, -1]], reduction="none"),
    ),
    Case("no-pad-all-labels", _fixed([[0.1, 0.2, 0.4, 0.8]], [[2, 0, 3, 1]], reduction="none")),
    # x_y - x_i exactly 1 (the kink), just above and below it: dyadic values, exact in float32.
    Case(
        "kinks",
        _fixed(
            [[1.0, 0.0, 2.0**-10, -(2.0**-10), 1.0], [0.5, -0.5, -0.5, 1.5, 0.0]],
            [[0, 4, -1, 0, 0], [0, 3, -1, 2, 2]],
            reduction="none",
        ),
    ),
    Case("kinks-mean", _fixed([[1.0, 0.0, 2.0**-10, -(2.0**-10), 1.0]], [[0, -1, 0, 0, 0]])),
    Case(
        "special-values",
        _fixed(
            [
                [nan, 0.0, 1.0],
                [0.0, nan, 1.0],
                [inf, 0.0, 1.0],
                [0.0, inf, 1.0],
                [-inf, 0.0, 1.0],
                [0.0, -inf, 1.0],
                [inf, inf, 0.0],
                [1e30, -1e30, 0.0],
            ],
            [[0, -1, 0]] * 7 + [[1, 2, -1]],
            reduction="none",
        ),
    ),
    Case("extreme", lambda rng, dt: ((rand(rng, (4, 5), dt, -1e30, 1e30), _labels(rng, 4, 5)), {"reduction": "sum"})),
    Case("tiny", lambda rng, dt: ((rand(rng, (4, 5), dt, -1e-30, 1e-30), _labels(rng, 4, 5)), {})),
    Case("legacy-size_average", with_options(_xt((3, 5)), size_average=False)),
    Case("legacy-reduce", with_options(_xt((3, 5)), reduce=False)),
    Case("legacy-both", with_options(_xt((3, 5)), size_average=True, reduce=True)),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


def _bad_target(t, shape=(2, 4)):
    return lambda rng, dt: ((rand(rng, shape, dt), np.array(t)), {})


ERRORS = [
    Error("reduction", with_options(_xt((3, 4)), reduction="avg"), ValueError, re_arg("reduction")),
    Error(
        "target-too-big", _bad_target([[0, 4, -1, 0], [0, -1, 0, 0]]), ValueError, re_arg("target"), needs_values=True
    ),
    Error(
        "target-minus-2", _bad_target([[0, -2, 1, 0], [0, -1, 0, 0]]), ValueError, re_arg("target"), needs_values=True
    ),
    Error(
        "target-bad-after-pad",
        _bad_target([[0, -1, 7, 0], [0, -1, 0, 0]]),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error("target-range-1d", _bad_target([0, 4, -1, 0], (4,)), ValueError, re_arg("target"), needs_values=True),
    Error("float-target", lambda rng, dt: ((rand(rng, (2, 3), dt), np.zeros((2, 3))), {}), TypeError, re_arg("target")),
    Error("target-shape", _xt((3, 4), (4, 3)), ValueError, re_arg("target")),
    Error(
        "target-1d-for-batch",
        lambda rng, dt: ((rand(rng, (1, 4), dt), np.array([0, 1, -1, 2])), {}),
        ValueError,
        re_arg("target"),
    ),
    Error("target-2d-for-1d", _xt((4,), (1, 4)), ValueError, re_arg("target")),
    Error("target-short", lambda rng, dt: ((rand(rng, (4,), dt), np.array([0, 1])), {}), ValueError, re_arg("target")),
    Error("target-2d-for-0d", _xt((), (1, 1)), ValueError, re_arg("target")),
    Error(
        "input-3d",
        lambda rng, dt: ((rand(rng, (2, 3, 4), dt), np.zeros((2, 3, 4), dtype=np.int64)), {}),
        ValueError,
        re_arg("input"),
    ),
    Error(
        "no-classes",
        lambda rng, dt: ((rand(rng, (3, 0), dt), np.zeros((3, 0), dtype=np.int64)), {}),
        ValueError,
        re_arg("input"),
    ),
    Error(
        "int-input",
        lambda rng, dt: ((np.ones((2, 3), dtype=np.int64), np.zeros((2, 3), dtype=np.int64)), {}),
        TypeError,
        re_arg("input"),
    ),
    Error("not-array", lambda rng, dt: (([[1.0, 2.0]], np.array([[0, -1]])), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # PyTorch docs' example: x = [[0.1, 0.2, 0.4, 0.8]], y = [[3, 0, -1, 1]] (labels 3 and 0):
    # 0.25 * ((1-(0.1-0.2)) + (1-(0.1-0.4)) + (1-(0.8-0.2)) + (1-(0.8-0.4))) = 0.85.
    x, y = np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 0, -1, 1]])
    assert float(F.multilabel_margin_loss(x, y)) == pytest.approx(0.85, abs=1e-15)
    assert float(anyloss.MultiLabelMarginLoss()(x, y)) == pytest.approx(0.85, abs=1e-15)


@pytest.mark.parametrize("tdtype", ["int8", "int16", "int32"])
def test_any_integer_target(xp, tdtype):
    # PyTorch takes only int64 targets; anyloss takes any (signed: -1 pads) integer dtype.
    rng = np.random.default_rng(0)
    x, t = rand(rng, (5, 4), np.float64), _labels(rng, 5, 4)
    xa = xp.asarray(x)

    def f(a, tt):
        return F.multilabel_margin_loss(a, tt, reduction="sum")

    v64, g64 = anyloss.value_and_grad(f)(xa, xp.asarray(t))
    v, g = anyloss.value_and_grad(f)(xa, xp.asarray(t.astype(tdtype)))
    np.testing.assert_array_equal(np.asarray(v), np.asarray(v64))
    np.testing.assert_array_equal(np.asarray(g), np.asarray(g64))


def test_empty_batch(xp, dtype):
    # PyTorch 2.13 returns uninitialized memory for 'mean' and 'sum' of an empty batch;
    # anyloss gives the empty mean (NaN) and the empty sum (0), and an empty gradient.
    x = xp.asarray(np.zeros((0, 4), dtype=dtype))
    t = xp.asarray(np.zeros((0, 4), dtype=np.int64))
    v, g = anyloss.value_and_grad(lambda a: F.multilabel_margin_loss(a, t))(x)
    assert np.isnan(float(v)) and tuple(g.shape) == (0, 4) and g.dtype == x.dtype
    v, g = anyloss.value_and_grad(lambda a: F.multilabel_margin_loss(a, t, reduction="sum"))(x)
    assert float(v) == 0.0 and tuple(g.shape) == (0, 4)


def test_class():
    rng = np.random.default_rng(0)
    x, t = rand(rng, (3, 4), np.float64), _labels(rng, 3, 4)
    loss = legacy_class(anyloss.MultiLabelMarginLoss, "none", reduce=False)
    np.testing.assert_array_equal(loss(x, t), F.multilabel_margin_loss(x, t, reduction="none"))


# Values that often sit exactly 1 apart (the kink) and extremes.
_POOL = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-30, -1e30, 1e30])
_VALUES = st.one_of(_POOL, st.floats(-1e3, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), reduction=st.sampled_from(REDUCTIONS), batched=st.booleans())
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, batched):
    xp = hypothesis_namespace(hxp)

    c = data.draw(st.integers(1, 6))
    # An empty batch only with 'none' (PyTorch's 'mean'/'sum' read uninitialized memory there).
    n = data.draw(st.integers(0 if reduction == "none" else 1, 5))
    shape = (n, c) if batched else (c,)
    x = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    t = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-1, c - 1)))
    check_against_torch(NAME, (x, t), {"reduction": reduction}, xp)
