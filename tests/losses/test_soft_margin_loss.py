"""F.soft_margin_loss / anyloss.SoftMarginLoss against PyTorch."""

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

NAME = "soft_margin_loss"
torch = pytest.importorskip("torch")


CASES = [
    Case(f"{shape}-{red}", with_options(sign_pair(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    # PyTorch takes any target value, not only 1 and -1, and uses it as is.
    Case("real-target", lambda rng, dt: ((rand(rng, (3, 4), dt), rand(rng, (3, 4), dt, -3, 3)), {})),
    Case("zero-target", lambda rng, dt: ((rand(rng, (4,), dt), np.zeros(4, dt)), {"reduction": "none"})),
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), np.array([1, -1, 1, 2])), {"reduction": "none"})),
    # PyTorch's backward fails on a bool target (it negates it); see test_bool_target_gradient.
    Case("bool-target", lambda rng, dt: ((rand(rng, (4,), dt), np.array([True, False, True, False])), {}), grads=False),
    Case("zero-input", lambda rng, dt: ((np.zeros((3,), dt), signs(rng, (3,), dt)), {"reduction": "none"})),
    Case(
        "large-margin",
        lambda rng, dt: ((np.array([-80.0, -30.0, 30.0, 80.0], dt), np.ones(4, dt)), {"reduction": "none"}),
    ),
    Case("broadcast-target", sign_pair((3, 4), (4,))),
    Case("broadcast-target-none", with_options(sign_pair((3, 4), (3, 1)), reduction="none")),
    Case("legacy-size_average", with_options(sign_pair((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(sign_pair((3, 4)), reduce=False)),
    Case("legacy-both", with_options(sign_pair((3, 4)), size_average=True, reduce=True)),
    # The result has input's dtype, whatever target's.
    Case("mixed-float32-input", lambda rng, dt: ((rand(rng, (3,), np.float32), signs(rng, (3,), np.float64)), {})),
    Case("mixed-float64-input", lambda rng, dt: ((rand(rng, (3,), np.float64), rand(rng, (3,), np.float32)), {})),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(sign_pair((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("shape", sign_pair((3,), (4,)), ValueError, re_arg("target")),
    # PyTorch writes the loss into input's shape: a target that would enlarge it is refused.
    Error("broadcast-input", sign_pair((4,), (3, 4)), ValueError, re_arg("target")),
    Error("int-input", lambda rng, dt: ((np.arange(3), np.ones(3)), {}), TypeError, re_arg("input")),
    Error("bool-input", lambda rng, dt: ((np.array([True, False]), np.ones(2)), {}), TypeError, re_arg("input")),
    Error("not-array", lambda rng, dt: (([1.0, 2.0], rand(rng, (2,), dt)), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_target_has_no_gradient(xp):
    x, y = xp.asarray([0.3, -0.2]), xp.asarray([1.0, -1.0])
    with pytest.raises(ValueError, match=re_arg("argnums")):
        anyloss.grad(F.soft_margin_loss, argnums=1)(x, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_overflow_region_is_finite(xp, dtype):
    # Where PyTorch's log1p(exp(-y x)) overflows to inf (with a NaN gradient), anyloss keeps
    # the exact limit; the oracle is PyTorch on float64 (and 10x smaller margins in float64).
    big = 100.0 if dtype == "float32" else 800.0
    x = np.array([-big, big, -2 * big, 0.5], dtype)
    y = np.array([1.0, -1.0, 1.0, 1.0], dtype)
    value, g = anyloss.value_and_grad(lambda a: F.soft_margin_loss(a, xp.asarray(y), reduction="sum"))(xp.asarray(x))
    tx = torch.from_numpy(x.astype(np.float64) / (10.0 if dtype == "float64" else 1.0)).requires_grad_(True)
    ty = torch.from_numpy(y.astype(np.float64))
    t_value = torch.nn.functional.soft_margin_loss(tx, ty, reduction="none")
    (t_g,) = torch.autograd.grad(t_value.sum(), [tx])
    scale = 10.0 if dtype == "float64" else 1.0
    # The loss is linear (-y x) out there, so scaling x by 10 scales the big terms by 10 and keeps the slope.
    expected = t_value.detach().numpy() * np.array([scale, scale, scale, 1.0])
    expected[3] = torch.nn.functional.soft_margin_loss(torch.tensor(0.5, dtype=torch.float64), ty[3]).item()
    np.testing.assert_allclose(float(value), expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g)[:3], t_g.numpy()[:3], rtol=1e-6)
    assert np.asarray(g).dtype == np.dtype(dtype)


def test_bool_target_gradient(xp):
    x, y = xp.asarray([0.3, -0.2, 1.5]), [True, False, True]
    g = anyloss.grad(lambda a, b: F.soft_margin_loss(a, b))
    np.testing.assert_array_equal(np.asarray(g(x, xp.asarray(y))), np.asarray(g(x, xp.asarray(y, dtype=xp.float64))))


def test_worked_example():
    x = np.array([[0.3, 0.7], [0.5, 0.5]])
    y = np.array([[-1.0, 1.0], [1.0, -1.0]])
    assert round(float(F.soft_margin_loss(x, y)), 4) == 0.6764
    assert round(float(anyloss.SoftMarginLoss()(x, y)), 4) == 0.6764


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), signs(rng, (3, 4), np.float64)
    loss = legacy_class(anyloss.SoftMarginLoss, "sum", size_average=False)
    np.testing.assert_array_equal(loss(x, y), F.soft_margin_loss(x, y, reduction="sum"))


# Below |y x| = 80 PyTorch's log1p(exp(.)) does not overflow even in float32.
_X = st.one_of(st.sampled_from([0.0, 1e-30, -1e-30, 80.0, -80.0, 40.0, -40.0]), st.floats(-80, 80, width=32))
_Y = st.one_of(st.sampled_from([1.0, -1.0, 0.0]), st.floats(-1, 1, width=32))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), reduction=st.sampled_from(REDUCTIONS))
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape, elements=_Y))
    check_against_torch(NAME, (x, y), {"reduction": reduction}, xp)
