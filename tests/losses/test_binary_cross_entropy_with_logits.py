"""F.binary_cross_entropy_with_logits / anyloss.BCEWithLogitsLoss against PyTorch."""

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

NAME = "binary_cross_entropy_with_logits"


def _xy(shape, dtype=None, tdtype=None):
    return lambda rng, dt: ((rand(rng, shape, dtype or dt, -4.0, 4.0), rand(rng, shape, tdtype or dt, 0.0, 1.0)), {})


def _weight(shape, low=0.0, high=2.0, dtype=None):
    return lambda rng, dt: rand(rng, shape, dtype or dt, low, high)


def _given(x, y):
    return lambda rng, dt: ((np.array(x, dt), np.array(y, dt)), {})


# Extreme logits against targets 0, 1 and 1/2: the stable log-sigmoid keeps +-1e4 finite; at +-inf
# PyTorch's formula gives inf or NaN (0 * inf, inf - inf), and so do we.
_BIG = 1e4
_EXT_X = [_BIG, -_BIG, _BIG, -_BIG, _BIG, -_BIG, 30.0, -30.0, 0.0]
_EXT_Y = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.5]
_INF_X = [np.inf, -np.inf, np.inf, -np.inf, np.inf, -np.inf]
_INF_Y = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5]

CASES = [
    Case(f"{shape}-{red}", with_options(_xy(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"extreme-{red}", with_options(_given(_EXT_X, _EXT_Y), reduction=red)) for red in ["none", "mean", "sum"]
]
CASES += [Case(f"inf-{red}", with_options(_given(_INF_X, _INF_Y), reduction=red)) for red in ["none", "sum"]]
CASES += [
    Case(
        "extreme-pos_weight", with_options(_given(_EXT_X, _EXT_Y), reduction="none", pos_weight=_weight((9,), 0.5, 3.0))
    ),
    Case(
        "extreme-weighted",
        with_options(_given(_EXT_X, _EXT_Y), reduction="sum", weight=_weight((9,)), pos_weight=_weight((1,), 0.5, 3.0)),
    ),
    Case("inf-pos_weight", with_options(_given(_INF_X, _INF_Y), reduction="none", pos_weight=_weight((6,), 0.5, 3.0))),
    # PyTorch does not check the target's range.
    Case("targets-outside-0-1", with_options(_given([0.5, -1.0, 2.0], [2.0, -1.0, 1.5]), reduction="none")),
    Case("targets-0-1", lambda rng, dt: ((rand(rng, (4, 3), dt, -4, 4), (rng.random((4, 3)) < 0.5).astype(dt)), {})),
    # The result has target's dtype (PyTorch builds the loss in place from 1 - target).
    Case("float32-input-float64-target", with_options(_xy((3, 4), np.float32, np.float64), reduction="none")),
    Case("float64-input-float32-target", with_options(_xy((3, 4), np.float64, np.float32), reduction="none")),
    # log sigmoid rounds to float32 first, as in PyTorch: visible where the loss cancels (y = 0, x << 0).
    Case(
        "float32-input-float64-target-cancel",
        lambda rng, dt: ((rand(rng, (6,), np.float32, -16, -5), np.zeros(6)), {"reduction": "none"}),
    ),
    Case(
        "mixed-float-pos_weight",
        with_options(
            _xy((3, 4), np.float32, np.float64), reduction="none", pos_weight=_weight((4,), 0.5, 3.0, np.float64)
        ),
    ),
    Case("legacy-size_average", with_options(_xy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xy((3, 4)), size_average=True, reduce=True)),
]
CASES += [
    Case(f"weight-{red}", with_options(_xy((3, 4)), reduction=red, weight=_weight((3, 4))))
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"pos_weight-{red}", with_options(_xy((3, 4)), reduction=red, pos_weight=_weight((4,), 0.5, 3.0)))
    for red in ["none", "mean", "sum"]
]
# weight and pos_weight broadcast to input's shape without enlarging it; pos_weight (C,) weights the classes.
CASES += [
    Case(f"{arg}-{shape}", with_options(_xy((3, 4)), reduction="none", **{arg: _weight(shape, 0.5, 3.0)}))
    for arg in ["weight", "pos_weight"]
    for shape in [(4,), (3, 1), (1, 4), (3, 4), (1, 1), ()]
]
CASES += [
    Case("pos_weight-spatial", with_options(_xy((2, 3, 5)), reduction="none", pos_weight=_weight((3, 1), 0.5, 3.0))),
    Case("pos_weight-no-batch", with_options(_xy((4,)), reduction="none", pos_weight=_weight((4,), 0.5, 3.0))),
    Case("pos_weight-0d-input", with_options(_xy(()), pos_weight=_weight((), 0.5, 3.0), weight=_weight(()))),
    Case("both-weights", with_options(_xy((3, 4)), reduction="mean", weight=_weight((3, 1)), pos_weight=_weight((4,)))),
    Case("empty-pos_weight", with_options(_xy((0, 4)), pos_weight=_weight((4,)), weight=_weight((4,)))),
    Case("empty-pos_weight-none", with_options(_xy((0, 4)), reduction="none", pos_weight=_weight((4,)))),
    Case("weight-float64", with_options(_xy((3, 4)), reduction="none", weight=_weight((4,), dtype=np.float64))),
    Case("pos_weight-float32", with_options(_xy((3, 4)), reduction="sum", pos_weight=_weight((4,), dtype=np.float32))),
    Case("weight-int", with_options(_xy((3,)), weight=lambda rng, dt: np.array([0, 1, 2]))),
    Case("weight-bool", with_options(_xy((3,)), reduction="sum", weight=lambda rng, dt: np.array([True, False, True]))),
    Case("pos_weight-int", with_options(_xy((2, 3)), reduction="none", pos_weight=lambda rng, dt: np.array([0, 1, 3]))),
    Case(
        "weight-negative", with_options(_xy((5,)), weight=_weight((5,), -1.0, 1.0), pos_weight=_weight((5,), -1.0, 1.0))
    ),
    Case("weight-legacy", with_options(_xy((3, 4)), reduce=False, weight=_weight((3, 4)), pos_weight=_weight((4,)))),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xy((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("shape", lambda rng, dt: ((rand(rng, (3, 4), dt), rand(rng, (4,), dt)), {}), ValueError, re_arg("target")),
    Error("int-input", lambda rng, dt: ((np.array([0, 1]), rand(rng, (2,), dt)), {}), TypeError, re_arg("input")),
    Error("int-target", lambda rng, dt: ((rand(rng, (2,), dt), np.array([0, 1])), {}), TypeError, re_arg("target")),
    Error(
        "bool-target", lambda rng, dt: ((rand(rng, (2,), dt), np.array([False, True])), {}), TypeError, re_arg("target")
    ),
    Error(
        "bool-pos_weight",
        with_options(_xy((2,)), pos_weight=lambda rng, dt: np.array([False, True])),
        TypeError,
        re_arg("pos_weight"),
    ),
    Error("pos_weight-shape", with_options(_xy((3, 4)), pos_weight=_weight((3,))), ValueError, re_arg("pos_weight")),
    Error(
        "pos_weight-enlarges",
        with_options(_xy((3, 4)), pos_weight=_weight((1, 3, 4))),
        ValueError,
        re_arg("pos_weight"),
    ),
    Error("pos_weight-enlarges-0d", with_options(_xy(()), pos_weight=_weight((2,))), ValueError, re_arg("pos_weight")),
    Error(
        "pos_weight-empty", with_options(_xy((0, 3)), pos_weight=_weight((1, 1, 3))), ValueError, re_arg("pos_weight")
    ),
    Error("weight-shape", with_options(_xy((3, 4)), weight=_weight((5,))), ValueError, re_arg("weight")),
    Error("weight-enlarges", with_options(_xy((3, 4)), weight=_weight((2, 3, 4))), ValueError, re_arg("weight")),
    Error("weight-empty", with_options(_xy((0, 3)), weight=_weight((2, 3))), ValueError, re_arg("weight")),
    Error("not-array", lambda rng, dt: (([0.5, 0.5], rand(rng, (2,), dt)), {}), TypeError, re_arg("input")),
    Error("not-array-pos_weight", with_options(_xy((2,)), pos_weight=[1.0, 2.0]), TypeError, re_arg("pos_weight")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


@pytest.mark.parametrize("argnum", [2, 3])
def test_weights_have_no_gradient(argnum):
    x, y, w = np.zeros(3), np.full(3, 0.25), np.ones(3)
    f = lambda x, y, w, p: F.binary_cross_entropy_with_logits(x, y, w, pos_weight=p)  # noqa: E731
    with pytest.raises(ValueError, match=re_arg(["weight", "pos_weight"][argnum - 2])):
        anyloss.grad(f, argnums=argnum)(x, y, w, w.copy())


def test_worked_example():
    # PyTorch's docstring example: 64 classes, logits 1.5, all targets 1, pos_weight ones: -log(sigmoid(1.5)).
    target, output, pos_weight = np.ones((10, 64), np.float32), np.full((10, 64), 1.5, np.float32), np.ones(64)
    loss = anyloss.BCEWithLogitsLoss(pos_weight=pos_weight)(output, target)
    assert loss.dtype == np.float32
    np.testing.assert_allclose(float(loss), np.log1p(np.exp(-1.5)), rtol=1e-6)
    assert str(float(loss)).startswith("0.20")


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    (x, y), _ = _xy((3, 4))(rng, np.float64)
    w, p = rand(rng, (4,), np.float64, 0, 1), rand(rng, (4,), np.float64, 0, 3)
    loss = legacy_class(anyloss.BCEWithLogitsLoss, "none", w, reduce=False, pos_weight=p)
    assert loss.weight is w and loss.pos_weight is p
    np.testing.assert_array_equal(
        loss(x, y), F.binary_cross_entropy_with_logits(x, y, w, reduction="none", pos_weight=p)
    )


def test_no_overflow_warning(recwarn):
    x, y = np.array([1e4, -1e4, 1e30, -1e30]), np.array([0.0, 1.0, 1.0, 0.0])
    anyloss.vjp(F.binary_cross_entropy_with_logits, x, y, argnums=(0, 1))[1](np.ones(()))
    assert not recwarn.list


_X = st.one_of(
    st.sampled_from([0.0, 1e4, -1e4, 1e30, -1e30, 40.0, -40.0, 88.0, -104.0, 1e-30]), st.floats(-50.0, 50.0, width=32)
)
_Y = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    weighted=st.booleans(),
    positive=st.booleans(),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, weighted, positive):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape, elements=_Y))
    kwargs = {"reduction": reduction}
    for name, on in [("weight", weighted), ("pos_weight", positive)]:
        if on:
            wshape = shape[data.draw(st.integers(0, len(shape))) :]
            kwargs[name] = data.draw(hnp.arrays(dtype, wshape, elements=st.floats(0.125, 4.0, width=32)))
    check_against_torch(NAME, (x, y), kwargs, xp)
