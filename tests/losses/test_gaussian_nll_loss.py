"""F.gaussian_nll_loss / anyloss.GaussianNLLLoss against PyTorch."""

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

NAME = "gaussian_nll_loss"


def _xyv(shape, vshape=None, tshape=None, var_dtype=None):
    vshape = shape if vshape is None else vshape
    tshape = shape if tshape is None else tshape
    return lambda rng, dt: (
        (rand(rng, shape, dt), rand(rng, tshape, dt), rand(rng, vshape, var_dtype or dt, 0.1, 2.0)),
        {},
    )


def _float_var(var, shape=(3, 4), tdtype=None):
    return lambda rng, dt: ((rand(rng, shape, dt), rand(rng, shape, tdtype or dt), var), {})


def _clamped(rng, dt):
    # var below eps (and exactly 0): PyTorch clamps a copy without autograd seeing it, so the
    # gradient of var is the unclamped formula at var = eps, not 0.
    x = rand(rng, (2, 4), dt)
    y = np.where(rng.random((2, 4)) < 0.3, x, rand(rng, (2, 4), dt))
    var = np.array([[0.0, 1e-8, 1e-6, 2e-6], [0.5, 0.0, 1e-7, 1.0]], dt)
    return (x, y, var), {}


CASES = [
    Case(f"{shape}-{red}", with_options(_xyv(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [Case(f"full-{red}", with_options(_xyv((3, 4)), full=True, reduction=red)) for red in ["none", "mean", "sum"]]
CASES += [
    # Homoscedastic shapes: input's shape without its last dimension (unsqueezed), or one dimension of size 1.
    Case("var-drop-last", with_options(_xyv((4, 3), (4,)), reduction="none")),
    Case("var-drop-last-3d", _xyv((2, 4, 3), (2, 4))),
    Case("var-drop-last-1d", with_options(_xyv((5,), ()), reduction="none")),
    Case("var-last-1", with_options(_xyv((4, 3), (4, 1)), reduction="sum")),
    Case("var-middle-1", with_options(_xyv((2, 3, 4, 4), (2, 1, 4, 4)), reduction="none")),
    Case("var-first-1", _xyv((4, 3), (1, 3))),
    Case("var-same-trailing-1", with_options(_xyv((4, 1), (4,)), reduction="none")),
    Case("var-empty-drop-last", _xyv((0, 3), (0,))),
    Case("var-empty-1d", with_options(_xyv((0,), ()), reduction="none")),
    Case("var-empty-input-1", with_options(_xyv((0, 3), (1, 3)), reduction="sum")),
    # target broadcasts freely (no warning), even to a bigger shape than input.
    Case("broadcast-target", with_options(_xyv((2, 3), tshape=(3,)), reduction="none")),
    Case("broadcast-target-bigger", with_options(_xyv((2, 3), (2,), tshape=(4, 2, 3)), reduction="none")),
    Case("broadcast-target-mean", _xyv((2, 3), (2, 1), tshape=(4, 1, 1))),
    # A Python float var: var * ones_like(input), in input's dtype; it has no gradient.
    Case("float-var", _float_var(0.5)),
    Case("float-var-zero", with_options(_float_var(0.0), reduction="none")),
    Case("float-var-tiny", with_options(_float_var(1e-9), reduction="sum")),
    Case("float-var-rounded-f32", _float_var(0.1, tdtype=np.float64)),
    Case("float-var-np-float64", _float_var(np.float64(2.5))),
    Case("clamped", _clamped),
    Case("clamped-none", with_options(_clamped, reduction="none")),
    Case("clamped-eps", with_options(_clamped, eps=0.5, reduction="none")),
    Case("eps-0", with_options(_xyv((3, 4)), eps=0.0)),
    Case("eps-int", with_options(_clamped, eps=1)),
    Case("full-int", with_options(_xyv((3,)), full=1)),
    Case(
        "nan-var",
        lambda rng, dt: (
            (rand(rng, (3,), dt), rand(rng, (3,), dt), np.array([np.nan, 1.0, np.inf], dt)),
            {"reduction": "none"},
        ),
    ),
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), np.arange(4), rand(rng, (4,), dt, 0.1, 1)), {})),
    Case(
        "int-input",
        lambda rng, dt: ((np.arange(4), np.ones(4, np.int32), rand(rng, (4,), dt, 0.1, 1)), {"reduction": "none"}),
    ),
    # PyTorch's default float32 for var * ones_like(integer input).
    Case("int-input-float-var", lambda rng, dt: ((np.arange(4), np.ones(4, np.int64), 0.3), {})),
    Case("int-input-float-var-f64-target", lambda rng, dt: ((np.arange(4), rand(rng, (4,), np.float64), 0.1), {})),
    Case("mixed-var-f64", _xyv((3, 2), var_dtype=np.float64)),
    Case(
        "mixed-var-f32-clamped",
        lambda rng, dt: (
            (rand(rng, (3,), np.float64), rand(rng, (3,), np.float64), np.array([0.0, 1e-7, 1.0], np.float32)),
            {"reduction": "none"},
        ),
    ),
    Case(
        "mixed-input-f32-target-f64",
        lambda rng, dt: (
            (rand(rng, (3,), np.float32), rand(rng, (3,), np.float64), rand(rng, (3,), np.float32, 0.1, 1)),
            {},
        ),
    ),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xyv((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-batchmean", with_options(_xyv((3,)), reduction="batchmean"), ValueError, re_arg("reduction")),
    Error(
        "negative-var",
        lambda rng, dt: ((rand(rng, (3,), dt), rand(rng, (3,), dt), np.array([1.0, -1e-9, 1.0])), {}),
        ValueError,
        re_arg("var"),
        needs_values=True,
    ),
    Error("negative-float-var", _float_var(-0.5), ValueError, re_arg("var")),
    Error("int-var", _float_var(1), TypeError, re_arg("var")),
    Error("bool-var", _float_var(True), TypeError, re_arg("var")),
    Error(
        "int-var-array",
        lambda rng, dt: ((rand(rng, (3,), dt), rand(rng, (3,), dt), np.ones(3, np.int64)), {}),
        TypeError,
        re_arg("var"),
    ),
    Error("var-shape", _xyv((2, 3), (3,)), ValueError, re_arg("var")),
    Error("var-shape-two-ones", _xyv((2, 3), (1, 1)), ValueError, re_arg("var")),
    Error("var-shape-extra-dim", _xyv((2, 3), (2, 3, 1)), ValueError, re_arg("var")),
    Error("var-shape-0d-input", _xyv((), (1,)), ValueError, re_arg("var")),
    Error("var-shape-not-broadcast", _xyv((2, 3), (0, 1)), ValueError, re_arg("var")),
    Error("target-shape", _xyv((2, 3), tshape=(4,)), ValueError, re_arg("target")),
    Error("eps-str", with_options(_xyv((3,)), eps="1e-6"), TypeError, re_arg("eps")),
    Error(
        "bool-input",
        lambda rng, dt: ((np.ones(3, bool), rand(rng, (3,), dt), rand(rng, (3,), dt, 0.1, 1)), {}),
        TypeError,
        re_arg("input"),
    ),
    Error(
        "not-array",
        lambda rng, dt: (([1.0, 2.0], rand(rng, (2,), dt), rand(rng, (2,), dt, 0.1, 1)), {}),
        TypeError,
        re_arg("input"),
    ),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # 0.5 (log 1 + 1 / 1) and 0.5 (log 4 + 0): mean (0.5 + log 2) / 2.
    x, y, v = np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 4.0])
    expected = (0.5 + np.log(2.0)) / 2
    np.testing.assert_allclose(F.gaussian_nll_loss(x, y, v), expected)
    np.testing.assert_allclose(anyloss.GaussianNLLLoss(full=True)(x, y, v), expected + 0.5 * np.log(2 * np.pi))


def test_var_gradient_below_eps_is_taken_at_eps():
    # Pinned (torch agrees, see test_matches_torch[clamped*]): d/dv 0.5 (log v + d^2 / v) at v = eps.
    eps = 1e-6
    gv = anyloss.grad(F.gaussian_nll_loss, argnums=2)(
        np.array([0.5]), np.array([0.0]), np.array([0.0]), reduction="sum"
    )
    np.testing.assert_allclose(gv, [0.5 / eps - 0.5 * 0.25 / eps**2])


def test_float_var_has_no_gradient():
    with pytest.raises(ValueError, match=re_arg("argnums")):
        anyloss.grad(F.gaussian_nll_loss, argnums=2)(np.ones(3), np.zeros(3), 0.5)


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y, v = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64), rand(rng, (3,), np.float64, 0, 1)
    loss = anyloss.GaussianNLLLoss(full=True, eps=0.1, reduction="sum")
    assert (loss.full, loss.eps, loss.reduction) == (True, 0.1, "sum")
    np.testing.assert_array_equal(loss(x, y, v), F.gaussian_nll_loss(x, y, v, full=True, eps=0.1, reduction="sum"))
    with pytest.raises(TypeError):
        anyloss.GaussianNLLLoss(True)  # keyword-only, as in PyTorch


# Ties (x == y), zeros and extremes; variances around and below eps.
_X = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 1e-30, 1e15, -1e15]), st.floats(-1e3, 1e3, width=32))
_V = st.one_of(st.sampled_from([0.0, 1e-30, 1e-7, 1e-6, 1.0, 1e30]), st.floats(0, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    full=st.booleans(),
    eps=st.sampled_from([1e-6, 0.0, 1e-3, 0.5]),
    vform=st.sampled_from(["same", "drop-last", "one", "float"]),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, full, eps, vform):
    xp = hypothesis_namespace(hxp)

    min_dims = 1 if vform in ("drop-last", "one") else 0
    shape = data.draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape, elements=_X))
    if vform == "float":
        var = data.draw(st.sampled_from([0.0, 1e-9, 0.5, 2.0]))
    else:
        vshape = {"same": shape, "drop-last": shape[:-1]}.get(vform)
        if vform == "one":
            axis = data.draw(st.integers(0, len(shape) - 1))
            vshape = shape[:axis] + (1,) + shape[axis + 1 :]
        var = data.draw(hnp.arrays(dtype, vshape, elements=_V))
    check_against_torch(NAME, (x, y, var), {"full": full, "eps": eps, "reduction": reduction}, xp)
