"""F.margin_ranking_loss / anyloss.MarginRankingLoss against PyTorch."""

import numpy as np
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
    signs,
    with_options,
)

NAME = "margin_ranking_loss"


def _xxy(shape, shape2=None, tshape=None):
    shape2 = shape if shape2 is None else shape2
    tshape = shape if tshape is None else tshape
    return lambda rng, dt: ((rand(rng, shape, dt), rand(rng, shape2, dt), signs(rng, tshape, dt)), {})


def _kinks(rng, dt):
    # -y (x1 - x2) + margin == 0 exactly (margin 0.5): the clamp's kink, where the gradient passes.
    x1 = np.array([1.0, 2.0, 0.0, 1.5, 0.25], dt)
    x2 = np.array([0.5, 2.5, 0.5, 1.0, 0.0], dt)
    y = np.array([1.0, -1.0, -1.0, 1.0, 2.0], dt)
    return (x1, x2, y), {"margin": 0.5, "reduction": "none"}


def _ties(rng, dt):
    # x1 == x2 with margin 0: the kink again, for every target.
    x = rand(rng, (3, 4), dt)
    return (x, x.copy(), signs(rng, (3, 4), dt)), {}


CASES = [
    Case(f"{shape}-{red}", with_options(_xxy(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"margin={m}-{red}", with_options(_xxy((4, 5)), margin=m, reduction=red))
    for m in [0.5, 1, -0.3]
    for red in ["none", "mean"]
]
CASES += [
    Case("kinks", _kinks),
    Case("ties", _ties),
    Case("ties-none", with_options(_ties, reduction="none")),
    Case("broadcast", with_options(_xxy((2, 3), (1, 3), (2, 1)), reduction="none")),
    Case("broadcast-mean", _xxy((2, 1), (1, 3), (1, 1))),
    Case("broadcast-target", with_options(_xxy((1, 4), (1, 4), (3, 4)), reduction="sum")),
    Case(
        "other-targets",
        lambda rng, dt: ((rand(rng, (6,), dt), rand(rng, (6,), dt), rand(rng, (6,), dt, -3, 3)), {"reduction": "none"}),
    ),
    Case("zero-target", lambda rng, dt: ((rand(rng, (3,), dt), rand(rng, (3,), dt), np.zeros(3, dt)), {"margin": 0.5})),
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), rand(rng, (4,), dt), np.array([1, -1, 1, 0])), {})),
    Case("int-x1", lambda rng, dt: ((np.arange(4), rand(rng, (4,), dt), signs(rng, (4,), dt)), {"margin": 0.5})),
    Case(
        "all-int",
        lambda rng, dt: (
            (np.arange(4), np.array([3, 1, 2, 0]), np.array([1, -1, -1, 1])),
            {"margin": 0.5, "reduction": "none"},
        ),
    ),
    Case(
        "all-int32-mean",
        lambda rng, dt: (
            (np.arange(4, dtype=np.int32), np.ones(4, np.int32), np.array([1, -1, -1, 1], np.int8)),
            {"margin": 1},
        ),
    ),
    Case(
        "mixed-float",
        lambda rng, dt: ((rand(rng, (3,), np.float32), rand(rng, (3,), np.float64), signs(rng, (3,), np.float32)), {}),
    ),
    Case(
        "mixed-float-target",
        lambda rng, dt: (
            (rand(rng, (3,), np.float32), rand(rng, (3,), np.float32), signs(rng, (3,), np.float64)),
            {"reduction": "none"},
        ),
    ),
    Case("legacy-size_average", with_options(_xxy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xxy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xxy((3, 4)), size_average=True, reduce=True)),
    Case(
        "nan",
        lambda rng, dt: (
            (np.array([np.nan, 1.0, np.inf], dt), np.array([0.0, np.nan, np.inf], dt), np.array([1.0, -1.0, 1.0], dt)),
            {"reduction": "none"},
        ),
    ),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xxy((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-batchmean", with_options(_xxy((3,)), reduction="batchmean"), ValueError, re_arg("reduction")),
    Error("ndim-input2", _xxy((2, 3), (3,), (2, 3)), ValueError, re_arg("input2")),
    Error("ndim-target", _xxy((2, 3), (2, 3), (3,)), ValueError, re_arg("target")),
    Error("ndim-0d-target", _xxy((3,), (3,), ()), ValueError, re_arg("target")),
    Error("shape-input2", _xxy((2, 3), (2, 4), (2, 3)), ValueError, re_arg("input2")),
    Error("shape-target", _xxy((2, 3), (2, 3), (4, 3)), ValueError, re_arg("target")),
    Error(
        "bool-target",
        lambda rng, dt: ((rand(rng, (2,), dt), rand(rng, (2,), dt), np.array([True, False])), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "bool-input1",
        lambda rng, dt: ((np.array([True, False]), rand(rng, (2,), dt), signs(rng, (2,), dt)), {}),
        TypeError,
        re_arg("input1"),
    ),
    Error("margin-str", with_options(_xxy((3,)), margin="1"), TypeError, re_arg("margin")),
    Error(
        "not-array",
        lambda rng, dt: ((rand(rng, (2,), dt), [1.0, 2.0], signs(rng, (2,), dt)), {}),
        TypeError,
        re_arg("input2"),
    ),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # max(0, -(1 - 2) + 0.5) = 1.5 and max(0, -(2 - 0) + 0.5) = 0: mean 0.75.
    x1, x2, y = np.array([1.0, 2.0]), np.array([2.0, 0.0]), np.array([1.0, 1.0])
    assert float(F.margin_ranking_loss(x1, x2, y, margin=0.5)) == 0.75
    assert float(anyloss.MarginRankingLoss(margin=0.5)(x1, x2, y)) == 0.75


def test_gradient_passes_at_the_kink():
    # Pinned (torch agrees, see test_matches_torch[kinks]): x1 - x2 == margin with y = 1.
    g1, g2, gy = anyloss.grad(F.margin_ranking_loss, argnums=(0, 1, 2))(
        np.array([1.0]), np.array([0.5]), np.array([1.0]), margin=0.5
    )
    assert (g1.tolist(), g2.tolist(), gy.tolist()) == ([-1.0], [1.0], [-0.5])


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x1, x2, y = rand(rng, (5,), np.float64), rand(rng, (5,), np.float64), signs(rng, (5,), np.float64)
    loss = legacy_class(anyloss.MarginRankingLoss, "none", 0.25, reduce=False)
    assert loss.margin == 0.25
    np.testing.assert_array_equal(loss(x1, x2, y), F.margin_ranking_loss(x1, x2, y, 0.25, reduction="none"))


# With this pool x1 == x2 and x1 - x2 == +-margin (kinks) happen often.
_X = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, -1e30, 3e38, -3e38]), st.floats(-1e3, 1e3, width=32))
_Y = st.sampled_from([1.0, -1.0, 1.0, -1.0, 0.0, 0.5, -2.0])


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    margin=st.sampled_from([0.0, 0.5, 1.0, -1.0]),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, margin):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x1, x2 = (data.draw(hnp.arrays(dtype, shape, elements=_X)) for _ in range(2))
    y = data.draw(hnp.arrays(dtype, shape, elements=_Y))
    check_against_torch(NAME, (x1, x2, y), {"margin": margin, "reduction": reduction}, xp)
