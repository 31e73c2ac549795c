"""F.binary_cross_entropy / anyloss.BCELoss against PyTorch."""

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

NAME = "binary_cross_entropy"


def _prob(shape, dtype=None):
    # Away from 0 and 1, where the log clamp and the gradient floor act (pinned separately below).
    return lambda rng, dt: rand(rng, shape, dtype or dt, 0.02, 0.98)


def _xy(shape):
    return lambda rng, dt: ((_prob(shape)(rng, dt), rand(rng, shape, dt, 0.0, 1.0)), {})


def _weight(shape, low=0.0, high=2.0, dtype=None):
    return lambda rng, dt: rand(rng, shape, dtype or dt, low, high)


def _given(x, y):
    return lambda rng, dt: ((np.array(x, dt), np.array(y, dt)), {})


# Probabilities exactly 0 and 1 against every kind of target: the log clamp at -100
# (finite loss), the gradient floor max((1 - x) x, 1e-12) and the unclamped target gradient -logit(x).
_EDGE_X = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5]
_EDGE_Y = [0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.5]
# Tiny probabilities: log(1e-45) < -100 is clamped (the gradient is not); 1e-7 and 1 - 1e-7 meet the floor in float32.
_TINY_X = [1e-45, 1e-44, 1e-40, 1e-30, 1e-7, 1 - 1e-7, 1e-12]
_TINY_Y = [1.0, 0.5, 0.0, 1.0, 0.5, 0.5, 1.0]

CASES = [
    Case(f"{shape}-{red}", with_options(_xy(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"edge-0-1-{red}", with_options(_given(_EDGE_X, _EDGE_Y), reduction=red)) for red in ["none", "mean", "sum"]
]
CASES += [Case(f"tiny-{red}", with_options(_given(_TINY_X, _TINY_Y), reduction=red)) for red in ["none", "sum"]]
CASES += [
    Case("edge-0-1-weighted", with_options(_given(_EDGE_X, _EDGE_Y), reduction="none", weight=_weight((7,)))),
    Case("targets-0-1", lambda rng, dt: ((_prob((4, 3))(rng, dt), (rng.random((4, 3)) < 0.5).astype(dt)), {})),
    Case("legacy-size_average", with_options(_xy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xy((3, 4)), size_average=True, reduce=True)),
]
CASES += [
    Case(f"weight-{red}", with_options(_xy((3, 4)), reduction=red, weight=_weight((3, 4))))
    for red in ["none", "mean", "sum"]
]
# weight broadcasts to input's shape (never enlarging it), in any real dtype; the loss keeps input's dtype.
CASES += [
    Case(f"weight-{shape}", with_options(_xy((3, 4)), reduction="none", weight=_weight(shape)))
    for shape in [(4,), (3, 1), (1, 4), (1, 1), ()]
]
CASES += [
    Case("weight-0d-input", with_options(_xy(()), weight=_weight(()))),
    Case("weight-empty", with_options(_xy((0, 3)), weight=_weight((3,)))),
    Case("weight-float64", with_options(_xy((3, 4)), reduction="none", weight=_weight((4,), dtype=np.float64))),
    Case("weight-float32", with_options(_xy((3, 4)), reduction="sum", weight=_weight((4,), dtype=np.float32))),
    Case("weight-int", with_options(_xy((3,)), weight=lambda rng, dt: np.array([0, 1, 2]))),
    Case("weight-bool", with_options(_xy((3,)), reduction="sum", weight=lambda rng, dt: np.array([True, False, True]))),
    Case("weight-negative", with_options(_xy((5,)), weight=_weight((5,), -1.0, 1.0))),
    Case("weight-legacy", with_options(_xy((3, 4)), reduce=False, weight=_weight((3, 4)))),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xy((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("shape", lambda rng, dt: ((_prob((3, 4))(rng, dt), _prob((4,))(rng, dt)), {}), ValueError, re_arg("target")),
    Error(
        "shape-0d-target",
        lambda rng, dt: ((_prob((3,))(rng, dt), _prob(())(rng, dt)), {}),
        ValueError,
        re_arg("target"),
    ),
    Error("input-above-1", _given([0.5, 1.5], [0.0, 1.0]), ValueError, re_arg("input"), needs_values=True),
    Error("input-negative", _given([-1e-8, 0.5], [0.0, 1.0]), ValueError, re_arg("input"), needs_values=True),
    Error("input-nan", _given([np.nan, 0.5], [0.0, 1.0]), ValueError, re_arg("input"), needs_values=True),
    # PyTorch checks the target's range too.
    Error("target-above-1", _given([0.5, 0.5], [2.0, 1.0]), ValueError, re_arg("target"), needs_values=True),
    Error("target-negative", _given([0.5, 0.5], [-1.0, 1.0]), ValueError, re_arg("target"), needs_values=True),
    Error("target-nan", _given([0.5, 0.5], [np.nan, 1.0]), ValueError, re_arg("target"), needs_values=True),
    Error("int-input", lambda rng, dt: ((np.array([0, 1]), _prob((2,))(rng, dt)), {}), TypeError, re_arg("input")),
    Error(
        "bool-input", lambda rng, dt: ((np.array([False, True]), _prob((2,))(rng, dt)), {}), TypeError, re_arg("input")
    ),
    # No promotion: target must have input's dtype.
    Error("int-target", lambda rng, dt: ((_prob((2,))(rng, dt), np.array([0, 1])), {}), TypeError, re_arg("target")),
    Error(
        "float32-target",
        lambda rng, dt: ((_prob((2,))(rng, dt), _prob((2,), np.float32)(rng, dt)), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "float32-input",
        lambda rng, dt: ((_prob((2,), np.float32)(rng, dt), _prob((2,))(rng, dt)), {}),
        TypeError,
        re_arg("target"),
    ),
    Error("weight-shape", with_options(_xy((3, 4)), weight=_weight((3,))), ValueError, re_arg("weight")),
    Error("weight-enlarges", with_options(_xy((3, 4)), weight=_weight((1, 3, 4))), ValueError, re_arg("weight")),
    Error("weight-enlarges-0d", with_options(_xy(()), weight=_weight((2,))), ValueError, re_arg("weight")),
    Error("weight-empty", with_options(_xy((0, 3)), weight=_weight((2, 3))), ValueError, re_arg("weight")),
    Error("not-array", lambda rng, dt: (([0.5, 0.5], _prob((2,))(rng, dt)), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_weight_has_no_gradient():
    x, y, w = np.full(3, 0.5), np.full(3, 0.25), np.ones(3)
    with pytest.raises(ValueError, match=re_arg("weight")):
        anyloss.grad(F.binary_cross_entropy, argnums=2)(x, y, w)


def test_worked_example():
    # The clamp at -100: a certain, wrong prediction costs exactly 100, a certain right one 0.
    x, y = np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])
    np.testing.assert_array_equal(F.binary_cross_entropy(x, y, reduction="none"), [100.0, 100.0, 0.0])
    assert float(anyloss.BCELoss(reduction="sum")(x, y)) == 200.0


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    (x, y), _ = _xy((3, 4))(rng, np.float64)
    w = rand(rng, (4,), np.float64, 0, 1)
    loss = legacy_class(anyloss.BCELoss, "sum", w, size_average=False)
    assert loss.weight is w
    np.testing.assert_array_equal(loss(x, y), F.binary_cross_entropy(x, y, w, reduction="sum"))


def test_no_warning_at_0_and_1(recwarn):
    # log(0) is never evaluated, so NumPy does not warn for valid probabilities.
    x, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0, 0.0])
    anyloss.vjp(F.binary_cross_entropy, x, y, argnums=(0, 1))[1](np.ones(()))
    assert not recwarn.list


# Exact 0 and 1, tiny and near-1 probabilities, and plain ones.
_X = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 1e-45, 1e-30, 1e-12, 1e-7, 1 - 1e-7, 1 - 1e-12]), st.floats(0.0, 1.0, width=32)
)
_Y = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0, width=32))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, weighted):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape, elements=_Y))
    kwargs = {"reduction": reduction}
    if weighted:
        wshape = shape[data.draw(st.integers(0, len(shape))) :]
        kwargs["weight"] = data.draw(hnp.arrays(dtype, wshape, elements=st.floats(0.125, 2.0, width=32)))
    check_against_torch(NAME, (x, y), kwargs, xp)
