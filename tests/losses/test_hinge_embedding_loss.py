"""F.hinge_embedding_loss / anyloss.HingeEmbeddingLoss against PyTorch."""

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
    sign_pair,
    signs,
    with_options,
)

NAME = "hinge_embedding_loss"


def _xy(shape, tshape=None):
    return sign_pair(shape, tshape, -1.0, 3.0)


def _targets(values, tdtype=None):
    """Targets drawn from ``values`` (other than +-1 too: PyTorch sums both terms for those)."""

    def build(rng, dt):
        x = rand(rng, (3, 5), dt, -1.0, 3.0)
        y = rng.choice(np.array(values), size=(3, 5))
        return (x, y.astype(tdtype or dt)), {}

    return build


def _kinks(rng, dt):
    # x == margin exactly: the y = -1 hinge max(0, margin - x) has its kink there.
    x = np.array([[1.0, 1.0, 0.5, 0.0, 1.0, 2.0]], dtype=dt)
    y = np.array([[-1.0, 1.0, -1.0, -1.0, 0.0, -1.0]], dtype=dt)
    return (x, y), {}


def _ints(margin, red):
    return lambda rng, dt: (
        (rng.integers(-2, 4, 6), rng.choice(np.array([1, -1, 0]), 6)),
        {"margin": margin, "reduction": red},
    )


CASES = [
    Case(f"{shape}-{red}", with_options(_xy(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"margin={m}-{red}", with_options(_xy((4, 5)), margin=m, reduction=red))
    for m in [0.5, 2, -0.5, 0.0]
    for red in ["none", "mean"]
]
CASES += [
    Case("kinks-none", with_options(_kinks, reduction="none")),
    Case("kinks-sum", with_options(_kinks, reduction="sum")),
    Case(
        "kinks-margin-2",
        lambda rng, dt: (
            (np.array([2.0, 2.0, 1.0], dt), np.array([-1.0, 0.0, -1.0], dt)),
            {"margin": 2.0, "reduction": "none"},
        ),
    ),
    Case("other-targets", with_options(_targets([1.0, -1.0, 0.0, 2.0, 0.5, -3.0]), reduction="none")),
    Case("other-targets-mean", _targets([0.0, 2.0, -1.0])),
    Case("int-target", with_options(_targets([1, -1, 0, 2], np.int64), reduction="none")),
    Case("int8-target", _targets([1, -1], np.int8)),
    Case("bool-target", with_options(_targets([True, False], np.bool_), reduction="none")),
    Case("broadcast-target", with_options(_xy((3, 4), (4,)), reduction="none")),
    Case("broadcast-input", with_options(_xy((4,), (3, 4)), reduction="none")),
    Case("broadcast-both", _xy((3, 1), (1, 4))),
    Case("broadcast-0d-target", with_options(_xy((2, 3), ()), reduction="none")),
    Case(
        "mixed-float-target64",
        lambda rng, dt: ((rand(rng, (4,), np.float32), signs(rng, (4,), np.float64)), {"reduction": "none"}),
    ),
    Case("mixed-float-input64", lambda rng, dt: ((rand(rng, (4,), np.float64), signs(rng, (4,), np.float32)), {})),
    Case("legacy-size_average", with_options(_xy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xy((3, 4)), size_average=True, reduce=True)),
    Case(
        "nan-inf",
        lambda rng, dt: (
            (
                np.array([np.nan, np.nan, np.nan, np.inf, np.inf, -np.inf, -np.inf], dt),
                np.array([1.0, -1.0, 0.0, 1.0, -1.0, -1.0, 0.0], dt),
            ),
            {"reduction": "none"},
        ),
    ),
]
# An integer input gives PyTorch's integer loss (margin truncated) for 'none' and 'sum'.
CASES += [Case(f"int-input-margin={m}-{red}", _ints(m, red)) for m in [1, 1.5, -1.5] for red in ["none", "sum"]]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xy((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-batchmean", with_options(_xy((3,)), reduction="batchmean"), ValueError, re_arg("reduction")),
    Error("shape", _xy((3,), (4,)), ValueError, re_arg("target")),
    Error("int-mean", _ints(1.0, "mean"), TypeError, re_arg("input")),
    Error(
        "bool-input", lambda rng, dt: ((np.array([True, False]), signs(rng, (2,), dt)), {}), TypeError, re_arg("input")
    ),
    Error("margin-str", with_options(_xy((3,)), margin="1"), TypeError, re_arg("margin")),
    Error("not-array", lambda rng, dt: (([1.0, 2.0], signs(rng, (2,), dt)), {}), TypeError, re_arg("input")),
    Error("not-array-target", lambda rng, dt: ((rand(rng, (2,), dt), [1.0, -1.0]), {}), TypeError, re_arg("target")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # From the issue: x where y == 1, max(0, 1 - x) where y == -1: (1 + 0.8 + 0.5) / 3.
    x, y = np.array([[1.0, 0.8, 0.5]]), np.array([[1.0, 1.0, -1.0]])
    assert round(float(F.hinge_embedding_loss(x, y)), 4) == 0.7667
    assert round(float(anyloss.HingeEmbeddingLoss()(x, y)), 4) == 0.7667


def test_gradient_at_the_kink_is_minus_one():
    # Pinned (torch gives the same, see test_matches_torch[kinks-*]): clamp_min passes the gradient at 0.
    g = anyloss.grad(F.hinge_embedding_loss)(np.array([1.0]), np.array([-1.0]))
    assert g.tolist() == [-1.0]


def test_target_has_no_gradient():
    with pytest.raises(ValueError, match=re_arg("target")):
        anyloss.grad(F.hinge_embedding_loss, argnums=1)(np.array([1.0]), np.array([-1.0]))


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), signs(rng, (3, 4), np.float64)
    loss = legacy_class(anyloss.HingeEmbeddingLoss, "sum", 0.5, size_average=False)
    assert loss.margin == 0.5
    np.testing.assert_array_equal(loss(x, y), F.hinge_embedding_loss(x, y, margin=0.5, reduction="sum"))


# With this pool x == margin (kinks) and other target values happen often. Huge values are
# positive only: +-1e30 terms cancel in a sum, whose order is not PyTorch's.
_X = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, 3e38]), st.floats(-1e3, 1e3, width=32))
_Y = st.sampled_from([1.0, -1.0, 1.0, -1.0, 0.0, 2.0, 0.5])


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    margin=st.sampled_from([1.0, 0.0, 0.5, -1.0, 2.0]),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, margin):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape, elements=_Y))
    check_against_torch(NAME, (x, y), {"margin": margin, "reduction": reduction}, xp)
