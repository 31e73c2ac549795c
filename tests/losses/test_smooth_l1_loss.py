"""F.smooth_l1_loss / anyloss.SmoothL1Loss against PyTorch."""

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
    pair,
    rand,
    re_arg,
    run_case,
    run_error,
    with_options,
)

NAME = "smooth_l1_loss"


def _kinks(beta):
    # |x - y| exactly 0, beta and -beta, and either side of them: both branches and the switch.
    def make(rng, dt):
        d = np.array([0.0, beta, -beta, 0.5 * beta, -0.5 * beta, 2 * beta + 0.25, -3.0, 3.0, 1e-3, -1e-3])
        y = rand(rng, d.shape, dt)
        return (y + d.astype(dt), y), {"beta": beta, "reduction": "none"}

    return make


CASES = [
    Case(f"{shape}-{red}", with_options(pair(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"beta={beta}-{red}", with_options(pair((3, 4)), reduction=red, beta=beta))
    for beta in [0.0, 0.25, 2.0, 1, float("inf")]
    for red in ["none", "mean"]
]
CASES += [Case(f"kinks-beta={beta}", _kinks(beta)) for beta in [1.0, 0.5, 0.0]]
CASES += [
    Case("beta-bool", with_options(pair((3, 4)), beta=True)),
    Case("beta-false", with_options(pair((3, 4)), beta=False, reduction="none")),
    Case("broadcast-target", pair((3, 4), (4,))),
    Case("broadcast-target-none", with_options(pair((3, 1)), reduction="none")),
    Case("broadcast-input", with_options(pair((1, 4), (3, 4)), reduction="sum")),
    Case("broadcast-beta0", with_options(pair((3, 4), (4,)), beta=0.0)),
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), np.arange(4)), {})),
    Case("bool-target", lambda rng, dt: ((rand(rng, (4,), dt), np.array([True, False, True, False])), {})),
    Case("int-input-float-target", lambda rng, dt: ((np.arange(4), rand(rng, (4,), dt)), {})),
    Case(
        "int-beta0-sum", lambda rng, dt: ((np.arange(4), np.arange(4)[::-1].copy()), {"beta": 0.0, "reduction": "sum"})
    ),
    Case("legacy-size_average", with_options(pair((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(pair((3, 4)), reduce=False, beta=0.5)),
    Case("legacy-both-beta0", with_options(pair((3, 4)), size_average=True, reduce=True, beta=0.0)),
    Case("mixed-float", lambda rng, dt: ((rand(rng, (3,), np.float32), rand(rng, (3,), np.float64)), {})),
    Case(
        "mixed-float-beta0", lambda rng, dt: ((rand(rng, (3,), np.float64), rand(rng, (3,), np.float32)), {"beta": 0.0})
    ),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(pair((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-beta0", with_options(pair((3,)), reduction="avg", beta=0.0), ValueError, re_arg("reduction")),
    Error("shape", pair((3,), (4,)), ValueError, re_arg("target")),
    Error("beta-negative", with_options(pair((3,)), beta=-1.0), ValueError, re_arg("beta")),
    Error("beta-nan", with_options(pair((3,)), beta=float("nan")), ValueError, re_arg("beta")),
    Error("beta-str", with_options(pair((3,)), beta="1"), TypeError, re_arg("beta")),
    Error("int-input-target", lambda rng, dt: ((np.arange(3), np.arange(3)), {}), TypeError, re_arg("input")),
    Error("int-beta0-mean", lambda rng, dt: ((np.arange(3), np.arange(3)), {"beta": 0.0}), TypeError, re_arg("input")),
    Error(
        "bool-target-beta0",
        lambda rng, dt: ((rand(rng, (2,), dt), np.array([True, False])), {"beta": 0.0}),
        TypeError,
        re_arg("target"),
    ),
    Error("not-array", lambda rng, dt: (([1.0, 2.0], rand(rng, (2,), dt)), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # PyTorch docs' classic example: Smooth L1 of ones(2, 2) against [[0, 1], [2, 3]].
    x, y = np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]])
    assert float(F.smooth_l1_loss(x, y)) == 0.625
    assert float(anyloss.SmoothL1Loss()(x, y)) == 0.625


def test_beta_zero_is_l1():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64)
    np.testing.assert_array_equal(F.smooth_l1_loss(x, y, beta=0.0, reduction="none"), F.l1_loss(x, y, reduction="none"))
    g0 = anyloss.grad(lambda a: F.smooth_l1_loss(a, y, beta=0.0))(x)
    np.testing.assert_array_equal(g0, anyloss.grad(lambda a: F.l1_loss(a, y))(x))


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        loss = anyloss.SmoothL1Loss(size_average=False, beta=0.5)
    assert (loss.reduction, loss.beta) == ("sum", 0.5)
    np.testing.assert_array_equal(loss(x, y), F.smooth_l1_loss(x, y, reduction="sum", beta=0.5))


# Kink points and extremes: with this pool |x - y| hits 0 and beta (1, 0.5, 2) often.
_POOL = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-30, -1e30, 1e30, 3e38, -3e38])
_VALUES = st.one_of(_POOL, st.floats(-1e3, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    beta=st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e-6, 1e6]),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, beta):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    y = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    check_against_torch(NAME, (x, y), {"reduction": reduction, "beta": beta}, xp)
