"""F.huber_loss / anyloss.HuberLoss against PyTorch."""

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
    pair,
    rand,
    re_arg,
    run_case,
    run_error,
    uniform,
    with_options,
)

NAME = "huber_loss"
torch = pytest.importorskip("torch")


def _kinks(delta):
    # |x - y| exactly 0, delta and -delta, and either side of them: both branches and the switch.
    def make(rng, dt):
        d = np.array([0.0, delta, -delta, 0.5 * delta, -0.5 * delta, 2 * delta + 0.25, -3.0, 3.0, 1e-3, -1e-3])
        y = rand(rng, d.shape, dt)
        return (y + d.astype(dt), y), {"delta": delta, "reduction": "none"}

    return make


CASES = [
    Case(f"{shape}-{red}", with_options(pair(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"delta={delta}-{red}", with_options(pair((3, 4)), reduction=red, delta=delta))
    for delta in [0.25, 2.0, 1, float("inf")]
    for red in ["none", "mean"]
]
CASES += [Case(f"kinks-delta={delta}", _kinks(delta)) for delta in [1.0, 0.5]]
CASES += [
    Case("delta-bool", with_options(pair((3, 4)), delta=True)),
    Case("broadcast-target", pair((3, 4), (4,))),
    Case("broadcast-target-none", with_options(pair((3, 1)), reduction="none")),
    Case("broadcast-input", with_options(pair((1, 4), (3, 4)), reduction="sum")),
]
# A target of another dtype than input: PyTorch's value, but its backward raises
# ("Found dtype Long but expected Float"); see test_gradient_other_target_dtype.
CASES += [
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), np.arange(4)), {}), grads=False),
    Case("bool-target", lambda rng, dt: ((rand(rng, (4,), dt), np.array([True, False, True, False])), {}), grads=False),
    Case("mixed-float", lambda rng, dt: ((rand(rng, (3,), np.float32), rand(rng, (3,), np.float64)), {}), grads=False),
    Case(
        "mixed-float-weighted",
        lambda rng, dt: (
            (rand(rng, (3,), np.float64), rand(rng, (3,), np.float32)),
            {"weight": rand(rng, (3,), np.float32)},
        ),
        grads=False,
    ),
]
CASES += [
    Case(f"weight-{red}", with_options(pair((3, 4)), reduction=red, weight=uniform((3, 4)), delta=0.5))
    for red in ["none", "mean", "sum"]
]
CASES += [
    # PyTorch's weighted Huber 'mean' is (loss * weight).mean(): divided by N even when input is broadcast.
    Case("weight-broadcast-input", with_options(pair((1, 4), (3, 4)), weight=uniform((1, 4)))),
    Case("weight-broadcast-target", with_options(pair((3, 4), (4,)), weight=uniform((3, 4)))),
    Case("weight-float64", with_options(pair((3,)), weight=uniform((3,), dtype=np.float64))),
    Case("weight-int", with_options(pair((3,)), weight=lambda rng, dt: np.array([0, 1, 2]))),
    Case("weight-negative", with_options(pair((5,)), weight=uniform((5,), -1.0, 1.0))),
    Case("weight-empty-mean", with_options(pair((0, 3)), weight=uniform((0, 3)))),
    Case("weight-kinks", with_options(_kinks(1.0), weight=uniform((10,)))),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(pair((3,)), reduction="avg"), ValueError, re_arg("reduction")),
    Error(
        "reduction-weighted",
        with_options(pair((3,)), reduction="avg", weight=uniform((3,))),
        ValueError,
        re_arg("reduction"),
    ),
    Error("shape", pair((3,), (4,)), ValueError, re_arg("target")),
    Error("delta-zero", with_options(pair((3,)), delta=0.0), ValueError, re_arg("delta")),
    Error("delta-negative", with_options(pair((3,)), delta=-1.0), ValueError, re_arg("delta")),
    Error("delta-nan", with_options(pair((3,)), delta=float("nan")), ValueError, re_arg("delta")),
    Error(
        "delta-zero-weighted", with_options(pair((3,)), delta=0.0, weight=uniform((3,))), ValueError, re_arg("delta")
    ),
    Error("delta-str", with_options(pair((3,)), delta="1"), TypeError, re_arg("delta")),
    Error("int-input-target", lambda rng, dt: ((np.arange(3), np.arange(3)), {}), TypeError, re_arg("input")),
    Error(
        "int-input-float-target", lambda rng, dt: ((np.arange(3), rand(rng, (3,), dt)), {}), TypeError, re_arg("input")
    ),
    Error(
        "bool-input-float-target",
        lambda rng, dt: ((np.array([True, False]), rand(rng, (2,), dt)), {}),
        TypeError,
        re_arg("input"),
    ),
    Error(
        "int-input-target-float-weight",
        lambda rng, dt: ((np.arange(3), np.arange(3)), {"weight": np.ones(3)}),
        TypeError,
        re_arg("input"),
    ),
    Error("weight-shape", with_options(pair((3,)), weight=uniform((1,))), ValueError, re_arg("weight")),
    Error(
        "weight-shape-broadcast",
        with_options(pair((1, 4), (3, 4)), weight=uniform((3, 4))),
        ValueError,
        re_arg("weight"),
    ),
    Error("not-array", lambda rng, dt: (([1.0, 2.0], rand(rng, (2,), dt)), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


@pytest.mark.parametrize("tdtype", ["int64", "bool", "float64"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_other_target_dtype(xp, tdtype, weighted):
    # The oracle: PyTorch's gradient once target is promoted to the result dtype (exact for int and bool).
    rng = np.random.default_rng(0)
    x = rand(rng, (2, 5), np.float32)
    y = rand(rng, (2, 5), np.float64, -3, 3)
    y = (y > 0) if tdtype == "bool" else y.astype(tdtype)
    kwargs = {"delta": 0.5, "weight": rand(rng, (2, 5), np.float32, 0, 1)} if weighted else {"delta": 0.5}
    rdt = np.result_type(x, y) if tdtype == "float64" else np.float32
    tx, ty = (torch.from_numpy(a.astype(rdt)).requires_grad_(True) for a in (x, y))
    tkw = {**kwargs, "weight": torch.from_numpy(kwargs["weight"])} if weighted else kwargs
    t_out = torch.nn.functional.huber_loss(tx, ty, **tkw)
    t_gx, t_gy = torch.autograd.grad(t_out, [tx, ty])
    argnums = (0, 1) if tdtype == "float64" else (0,)
    out, grads = anyloss.value_and_grad(
        lambda a, b: F.huber_loss(a, b, **{k: xp.asarray(v) if k == "weight" else v for k, v in kwargs.items()}),
        argnums=argnums,
    )(xp.asarray(x), xp.asarray(y))
    grads = grads if isinstance(grads, tuple) else (grads,)
    torch.testing.assert_close(torch.from_numpy(np.asarray(out)), t_out.detach().to(torch.float32))
    torch.testing.assert_close(torch.from_numpy(np.asarray(grads[0])), t_gx.to(torch.float32))
    if tdtype == "float64":
        torch.testing.assert_close(torch.from_numpy(np.asarray(grads[1])), t_gy)


def test_worked_example():
    # With delta = 1 Huber is Smooth L1: the docs' ones(2, 2) against [[0, 1], [2, 3]] gives 0.625.
    x, y = np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]])
    assert float(F.huber_loss(x, y)) == 0.625
    assert float(anyloss.HuberLoss()(x, y)) == 0.625


def test_class_signature_has_no_weight():
    assert list(inspect.signature(anyloss.HuberLoss).parameters) == ["reduction", "delta"]


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64)
    loss = anyloss.HuberLoss(reduction="sum", delta=0.5)
    np.testing.assert_array_equal(loss(x, y), F.huber_loss(x, y, reduction="sum", delta=0.5))


@pytest.mark.parametrize("delta", ["1", None, np.float32(1.0)])
def test_class_delta_kind(delta):
    # torch.nn.HuberLoss accepts only a float or int delta at construction (values are checked per call).
    with pytest.raises(TypeError):
        torch.nn.HuberLoss(delta=delta)
    with pytest.raises(TypeError, match=re_arg("delta")):
        anyloss.HuberLoss(delta=delta)


def test_class_delta_value_checked_per_call():
    x = np.ones(3)
    loss = anyloss.HuberLoss(delta=-1.0)
    torch.nn.HuberLoss(delta=-1.0)  # constructs too
    with pytest.raises(ValueError, match=re_arg("delta")):
        loss(x, x)


# Kink points and extremes: with this pool |x - y| hits 0 and delta (1, 0.5, 2) often.
_POOL = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-30, -1e30, 1e30, 3e38, -3e38])
_VALUES = st.one_of(_POOL, st.floats(-1e3, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    delta=st.sampled_from([0.5, 1.0, 2.0, 1e-6, 1e6]),
    weighted=st.booleans(),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, delta, weighted):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    y = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    kwargs = {"reduction": reduction, "delta": delta}
    if weighted:
        kwargs["weight"] = data.draw(hnp.arrays(dtype, shape, elements=st.floats(0.125, 2.0, width=32)))
    check_against_torch(NAME, (x, y), kwargs, xp)
