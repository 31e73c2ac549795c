"""F.poisson_nll_loss / anyloss.PoissonNLLLoss against PyTorch."""

import inspect

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

NAME = "poisson_nll_loss"


def _counts(shape, dtype=None):
    return lambda rng, dt: rng.poisson(2.0, size=shape).astype(dtype or dt)


def _xy(shape, tshape=None, log_input=True):
    # The log rate for log_input=True, a positive rate otherwise.
    low, high = (-2.0, 2.0) if log_input else (0.05, 4.0)
    return lambda rng, dt: (
        (rand(rng, shape, dt, low, high), _counts(tshape or shape)(rng, dt)),
        {"log_input": log_input},
    )


def _given(x, y, **kw):
    return lambda rng, dt: ((np.array(x, dt), np.array(y, dt)), kw)


# Targets around Stirling's cut at 1 (0, 1, just above 1), fractional and negative ones (PyTorch
# accepts them), large counts. With full=True PyTorch's target gradient is NaN where target <= 0.
_Y = [0.0, 1.0, 1.0000001, 0.5, 2.0, 3.0, -1.0, 1e3, 7.5]
_LOG_X = [0.5, 0.0, 2.0, -1.0, 1e-9, 0.5, 3.0, 6.0, -30.0]
_RATE_X = [0.5, 0.0, 2.0, 1e-9, 1.0, 0.5, 3.0, 1e3, 1e-30]

CASES = [
    Case(f"{shape}-{red}-log{li}", with_options(_xy(shape, log_input=li), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
    for li in [True, False]
]
CASES += [
    Case(f"full-{red}-log{li}", with_options(_xy((3, 4), log_input=li), reduction=red, full=True))
    for red in ["none", "mean", "sum"]
    for li in [True, False]
]
CASES += [
    Case(
        f"edge-full{full}-log{li}-{red}", _given(_LOG_X if li else _RATE_X, _Y, log_input=li, full=full, reduction=red)
    )
    for full in [True, False]
    for li in [True, False]
    for red in ["none", "sum"]
]
CASES += [
    Case("full-empty", with_options(_xy((0, 3)), full=True)),
    # log_input=False at rate 0 relies on eps; a negative rate gives NaN, as in PyTorch.
    Case("rate-zero-eps", _given([0.0, 0.0, 1.0], [0.0, 2.0, 1.0], log_input=False, reduction="none")),
    Case("rate-negative", _given([-1.0, 0.5], [1.0, 2.0], log_input=False, reduction="none")),
    Case("eps-1e-3", with_options(_xy((3, 4), log_input=False), eps=1e-3, reduction="none")),
    Case("eps-int", with_options(_xy((3,), log_input=False), eps=1)),
    Case("eps-zero", _given([0.5, 2.0], [1.0, 0.0], log_input=False, eps=0.0, reduction="none")),
    # exp of large log rates: inf in float32 at 100, 0 at -1e4.
    Case("log-rate-extreme", _given([100.0, -1e4, 50.0, -50.0], [3.0, 0.0, 0.0, 5.0], reduction="none")),
    Case("log-rate-extreme-full", _given([100.0, -1e4, 50.0, -50.0], [3.0, 0.0, 0.0, 5.0], full=True)),
    # target broadcasts against input both ways, with no warning (unlike mse_loss).
    Case("broadcast-target", with_options(_xy((3, 4), (4,)), reduction="none")),
    Case("broadcast-input", with_options(_xy((4,), (3, 4)), reduction="none", full=True)),
    Case("broadcast-both", with_options(_xy((3, 1), (1, 4), log_input=False), reduction="sum", full=True)),
    Case("broadcast-0d-input", with_options(_xy((), (3,)), reduction="mean")),
    # Derivatives of exp/log(input) and of Stirling's term apply after summing the cotangent to the
    # argument's shape: over an empty broadcast that sum is 0, and 0 * log(0) or 0 * exp(100) = 0 * inf is NaN.
    Case(
        "broadcast-empty-full",
        lambda rng, dt: (
            (np.zeros((0, 3), dt), np.array(0.0, dt)),
            {"full": True, "reduction": "none", "log_input": False},
        ),
    ),
    Case("broadcast-empty-exp", lambda rng, dt: ((np.array(100.0, dt), np.zeros((0,), dt)), {"reduction": "sum"})),
    # Integer (and boolean) arrays are accepted; two integer arrays give float32.
    Case("int-target", lambda rng, dt: ((rand(rng, (5,), dt), rng.poisson(2.0, 5)), {"full": True})),
    Case("int-target-rate", lambda rng, dt: ((rand(rng, (5,), dt, 0.1, 3), rng.poisson(2.0, 5)), {"log_input": False})),
    Case("int-input", lambda rng, dt: ((np.arange(-2, 3), _counts((5,))(rng, dt)), {"reduction": "none"})),
    Case("int-input-rate", lambda rng, dt: ((np.arange(5), _counts((5,))(rng, dt)), {"log_input": False})),
    Case("int-int", lambda rng, dt: ((np.arange(-2, 3), rng.poisson(2.0, 5)), {"reduction": "none", "full": True})),
    Case(
        "int32-int8",
        lambda rng, dt: ((np.arange(5, dtype=np.int32), np.arange(5, dtype=np.int8)), {"log_input": False}),
    ),
    Case("bool-input", lambda rng, dt: ((np.array([True, False, True]), _counts((3,))(rng, dt)), {})),
    Case("bool-target", lambda rng, dt: ((rand(rng, (3,), dt), np.array([True, False, True])), {})),
    Case(
        "mixed-float",
        lambda rng, dt: (
            (rand(rng, (3,), np.float32), _counts((3,), np.float64)(rng, dt)),
            {"full": True, "reduction": "none"},
        ),
    ),
    Case(
        "mixed-float-rate",
        lambda rng, dt: (
            (rand(rng, (3,), np.float64, 0.1, 3), _counts((3,), np.float32)(rng, dt)),
            {"log_input": False, "reduction": "none"},
        ),
    ),
    Case("legacy-size_average", with_options(_xy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xy((3, 4)), size_average=True, reduce=True)),
    Case(
        "positional",
        lambda rng, dt: (
            (rand(rng, (3,), dt, 0.1, 3), _counts((3,))(rng, dt), False, True, None, 1e-4, None, "sum"),
            {},
        ),
    ),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xy((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-batchmean", with_options(_xy((3,)), reduction="batchmean"), ValueError, re_arg("reduction")),
    Error("shape", _xy((3, 4), (3,)), ValueError, re_arg("target")),
    Error("log_input-int", with_options(_xy((3,)), log_input=1), TypeError, re_arg("log_input")),
    Error("log_input-str", with_options(_xy((3,)), log_input="no"), TypeError, re_arg("log_input")),
    Error("full-none", with_options(_xy((3,)), full=None), TypeError, re_arg("full")),
    Error("eps-str", with_options(_xy((3,)), eps="a"), TypeError, re_arg("eps")),
    Error("eps-none", with_options(_xy((3,)), eps=None), TypeError, re_arg("eps")),
    Error(
        "bool-input-rate",
        lambda rng, dt: ((np.array([True, False]), _counts((2,))(rng, dt)), {"log_input": False}),
        TypeError,
        re_arg("input"),
    ),
    Error(
        "bool-target-full",
        lambda rng, dt: ((rand(rng, (2,), dt), np.array([True, False])), {"full": True}),
        TypeError,
        re_arg("target"),
    ),
    Error("not-array", lambda rng, dt: (([1.0, 2.0], _counts((2,))(rng, dt)), {}), TypeError, re_arg("input")),
    Error("not-array-target", lambda rng, dt: ((rand(rng, (2,), dt), [1.0, 2.0]), {}), TypeError, re_arg("target")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # log rate 0 (rate 1) and target 1: exp(0) - 1 * 0 = 1; rate e and target 3: e - 3 * 1.
    x, y = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    np.testing.assert_allclose(F.poisson_nll_loss(x, y, reduction="none"), [1.0, np.e - 3.0])
    # Stirling's term only for targets above 1.
    full = F.poisson_nll_loss(x, y, full=True, reduction="none")
    np.testing.assert_allclose(full, [1.0, np.e - 3.0 + 3 * np.log(3) - 3 + 0.5 * np.log(2 * np.pi * 3)])


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    (x, y), _ = _xy((3, 4), log_input=False)(rng, np.float64)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        loss = anyloss.PoissonNLLLoss(log_input=False, full=True, size_average=False, eps=1e-3)
    assert (loss.reduction, loss.log_input, loss.full, loss.eps) == ("sum", False, True, 1e-3)
    np.testing.assert_array_equal(loss(x, y), F.poisson_nll_loss(x, y, False, True, eps=1e-3, reduction="sum"))
    # PyTorch's forward names its first argument `log_input`.
    assert list(inspect.signature(anyloss.PoissonNLLLoss.forward).parameters) == ["self", "log_input", "target"]
    np.testing.assert_array_equal(loss(log_input=x, target=y), loss(x, y))


def test_no_warning_for_zero_targets(recwarn):
    # Stirling's term is never evaluated at target <= 1, so NumPy does not warn.
    x, y = np.array([0.5, 0.5, 0.5]), np.array([0.0, 1.0, 4.0])
    anyloss.vjp(lambda x: F.poisson_nll_loss(x, y, full=True), x)[1](np.ones(()))
    assert not recwarn.list


_LOGX = st.one_of(st.sampled_from([0.0, -30.0, 30.0, 1e-30]), st.floats(-20.0, 20.0, width=32))
_RATE = st.one_of(st.sampled_from([0.0, 1e-30, 1e-8, 1e4]), st.floats(0.0, 100.0, width=32))
_TARGET = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 1.0000001, 0.5, 1e4]), st.floats(0.0, 50.0, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    log_input=st.booleans(),
    full=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, log_input, full, reduction):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    tshape = shape[data.draw(st.integers(0, len(shape))) :]
    x = data.draw(hnp.arrays(dtype, shape, elements=_LOGX if log_input else _RATE))
    y = data.draw(hnp.arrays(dtype, tshape, elements=_TARGET))
    check_against_torch(NAME, (x, y), {"log_input": log_input, "full": full, "reduction": reduction}, xp)
