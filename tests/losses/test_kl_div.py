"""F.kl_div / anyloss.KLDivLoss against PyTorch."""

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

NAME = "kl_div"
REDUCTIONS = ["none", "mean", "sum", "batchmean"]


def _xy(shape, tshape=None, log_target=False):
    """Log-probability inputs; probability targets with some exact zeros (or log-probability targets)."""
    tshape = shape if tshape is None else tshape

    def build(rng, dt):
        x = rand(rng, shape, dt, -4.0, 0.0)
        if log_target:
            y = rand(rng, tshape, dt, -4.0, 0.5)
        else:
            y = np.where(rng.random(tshape) < 0.2, 0.0, rand(rng, tshape, dt, 0.0, 1.0)).astype(dt)
        return (x, y), {"log_target": log_target}

    return build


def _special(rng, dt):
    # y == 0 (y log y is 0; its VJP is NaN), y < 0 (NaN), NaN and inf targets, x = -inf.
    x = np.array([-1.0, -np.inf, -0.5, -2.0, -1.0, -np.inf, 0.0], dt)
    y = np.array([0.0, 0.0, -0.5, np.nan, np.inf, 0.5, 1.0], dt)
    return (x, y), {"reduction": "none"}


CASES = [
    Case(f"{shape}-{red}-log_target={lt}", with_options(_xy(shape, log_target=lt), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in REDUCTIONS
    for lt in [False, True]
]
CASES += [
    Case("special-targets", _special),
    Case(
        "special-targets-log",
        lambda rng, dt: (
            (np.array([-1.0, -np.inf, 0.0, -2.0], dt), np.array([-np.inf, 0.0, np.nan, 50.0], dt)),
            {"reduction": "none", "log_target": True},
        ),
    ),
    Case("zero-targets-sum", lambda rng, dt: ((rand(rng, (4,), dt, -3, 0), np.zeros(4, dt)), {"reduction": "sum"})),
    Case("broadcast-target", with_options(_xy((3, 4), (4,)), reduction="none")),
    Case("broadcast-target-batchmean", with_options(_xy((3, 4), (4,)), reduction="batchmean")),
    # PyTorch divides by input's first dimension, even where target broadcasts input to a bigger batch.
    Case("broadcast-input-batchmean", with_options(_xy((4,), (3, 4)), reduction="batchmean")),
    Case("broadcast-input1-batchmean", with_options(_xy((1, 4), (3, 4)), reduction="batchmean")),
    Case("broadcast-0d-input-batchmean", with_options(_xy((), (3, 4)), reduction="batchmean")),
    Case("broadcast-input-mean", with_options(_xy((4,), (3, 4), log_target=True), reduction="mean")),
    Case(
        "mixed-float",
        lambda rng, dt: (
            (rand(rng, (3,), np.float32, -2, 0), rand(rng, (3,), np.float64, 0, 1)),
            {"reduction": "batchmean"},
        ),
    ),
    Case(
        "mixed-float-log",
        lambda rng, dt: (
            (rand(rng, (3,), np.float64, -2, 0), rand(rng, (3,), np.float32, -2, 0)),
            {"reduction": "none", "log_target": True},
        ),
    ),
    Case("legacy-size_average", with_options(_xy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xy((3, 4)), size_average=True, reduce=True)),
    # Legacy arguments win, but PyTorch still divides by input.shape[0] when reduction='batchmean'.
    Case("legacy-reduce-false-batchmean", with_options(_xy((3, 4)), reduce=False, reduction="batchmean")),
    Case("legacy-sum-batchmean", with_options(_xy((3, 4)), size_average=False, reduction="batchmean")),
    Case("legacy-mean-batchmean", with_options(_xy((3, 4)), reduce=True, reduction="batchmean")),
    Case("legacy-mean-batchmean-empty", with_options(_xy((0, 4)), size_average=True, reduction="batchmean")),
    Case("legacy-batchmean-0d", with_options(_xy(()), reduce=False, reduction="batchmean")),
    Case("legacy-ignores-reduction", with_options(_xy((3,)), size_average=False, reduction="avg")),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xy((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("shape", _xy((3,), (4,)), ValueError, re_arg("target")),
    Error(
        "int-input",
        lambda rng, dt: ((np.zeros(3, np.int64), rand(rng, (3,), dt, 0, 1)), {}),
        TypeError,
        re_arg("input"),
    ),
    Error(
        "int-target",
        lambda rng, dt: ((rand(rng, (3,), dt, -2, 0), np.ones(3, np.int64)), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "bool-target", lambda rng, dt: ((rand(rng, (3,), dt, -2, 0), np.ones(3, bool)), {}), TypeError, re_arg("target")
    ),
    Error("log_target-int", with_options(_xy((3,)), log_target=1), TypeError, re_arg("log_target")),
    Error("not-array", lambda rng, dt: (([-1.0, -2.0], rand(rng, (2,), dt)), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # KL([1/4, 3/4] || [1/2, 1/2]) = 1/4 log(1/2) + 3/4 log(3/2), one sample.
    x, y = np.log(np.array([[0.5, 0.5]])), np.array([[0.25, 0.75]])
    expected = 0.25 * np.log(0.5) + 0.75 * np.log(1.5)
    np.testing.assert_allclose(F.kl_div(x, y, reduction="batchmean"), expected)
    np.testing.assert_allclose(anyloss.KLDivLoss(reduction="batchmean", log_target=True)(x, np.log(y)), expected)


def test_mean_warns_like_torch():
    x, y = np.log(np.array([[0.5, 0.5]])), np.array([[0.25, 0.75]])
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(x, y)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        anyloss.KLDivLoss()(x, y)


def test_class_resolves_legacy_args_like_torch():
    # The class resolves size_average/reduce at construction, so (unlike the function) no batch division follows.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    (x, y), _ = _xy((3, 4))(rng, np.dtype("float64"))
    with pytest.warns(UserWarning, match="reduction='sum'"):
        ours = anyloss.KLDivLoss(size_average=False, reduction="batchmean")
    with pytest.warns(UserWarning):
        theirs = torch.nn.KLDivLoss(size_average=False, reduction="batchmean")
    assert ours.reduction == "sum" and ours.log_target is False
    np.testing.assert_allclose(ours(x, y), theirs(torch.from_numpy(x), torch.from_numpy(y)).numpy())


# Zeros, tiny and huge values; log-probabilities far below 0.
_X = st.one_of(st.sampled_from([0.0, -1.0, -1e-30, -100.0, -1e30, -3e38, 1.0]), st.floats(-50, 5, width=32))
_P = st.one_of(st.sampled_from([0.0, 0.0, 1.0, 1e-30, 1e-45, 0.5, 3e38]), st.floats(0, 1, width=32))
_LOGP = st.one_of(st.sampled_from([0.0, -1.0, -100.0, -1e30, 5.0]), st.floats(-50, 5, width=32))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), reduction=st.sampled_from(REDUCTIONS), log_target=st.booleans())
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, log_target):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape, elements=_LOGP if log_target else _P))
    check_against_torch(NAME, (x, y), {"reduction": reduction, "log_target": log_target}, xp)
