"""F.l1_loss / anyloss.L1Loss against PyTorch."""

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
    pair,
    rand,
    re_arg,
    run_case,
    run_error,
    to_numpy,
    uniform,
    with_options,
)

NAME = "l1_loss"


def _ints(dtype, tdtype=None):
    return lambda rng, dt: ((rng.integers(0, 5, 6).astype(dtype), rng.integers(0, 5, 6).astype(tdtype or dtype)), {})


def _ties(rng, dt):
    # x == y in some places: |x - y| has its kink there, where the subgradient is sign(0) = 0.
    x = rand(rng, (3, 4), dt)
    y = np.where(rng.random((3, 4)) < 0.5, x, rand(rng, (3, 4), dt))
    return (x, y), {}


def _complex(shape, target_shape=None, target="complex", ties=False):
    """Complex input (complex64 for float32, complex128 for float64), as PyTorch's
    L1Loss takes it; the target complex, real or integer; ``ties``: x == y in places."""

    def make(rng, dt):
        c = np.complex64 if np.dtype(dt) == np.float32 else np.complex128
        x = (rand(rng, shape, dt) + 1j * rand(rng, shape, dt)).astype(c)
        ts = shape if target_shape is None else target_shape
        y = {
            "complex": lambda: (rand(rng, ts, dt) - 1j * rand(rng, ts, dt)).astype(c),
            "real": lambda: rand(rng, ts, dt),
            "int": lambda: rng.integers(-2, 3, ts),
        }[target]()
        if ties:
            y = np.where(rng.random(shape) < 0.5, x, y)
        return (x, y), {}

    return make


CASES = [
    Case(f"{shape}-{red}", with_options(pair(shape), reduction=red))
    for shape in [(), (5,), (3, 4), (2, 3, 4), (0,), (0, 3)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case("broadcast-target", pair((3, 4), (4,))),
    Case("broadcast-target-none", with_options(pair((3, 1)), reduction="none")),
    Case("broadcast-input", with_options(pair((1, 4), (3, 4)), reduction="sum")),
    Case("int-target", lambda rng, dt: ((rand(rng, (4,), dt), np.arange(4)), {})),
    Case("int-input-float-target", lambda rng, dt: ((np.arange(4), rand(rng, (4,), dt)), {})),
    Case("legacy-size_average", with_options(pair((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(pair((3, 4)), reduce=False)),
    Case("legacy-both", with_options(pair((3, 4)), size_average=True, reduce=True)),
    Case("mixed-float", lambda rng, dt: ((rand(rng, (3,), np.float32), rand(rng, (3,), np.float64)), {})),
    Case("kink-none", with_options(_ties, reduction="none")),
    Case("kink-mean", _ties),
    Case("kink-weighted", with_options(_ties, weight=uniform((3, 4)))),
]
# Complex inputs: a real loss |x - y|, and torch.autograd's gradient g (x - y) / |x - y|.
CASES += [Case(f"complex-{red}", with_options(_complex((3, 4)), reduction=red)) for red in ["none", "mean", "sum"]]
CASES += [
    Case("complex-kink", _complex((3, 4), ties=True)),
    Case("complex-real-target", _complex((5,), target="real")),
    Case("complex-int-target", with_options(_complex((5,), target="int"), reduction="sum")),
    Case("complex-broadcast-target", _complex((3, 4), (4,))),
    Case("complex-weighted", with_options(_complex((3, 4)), weight=uniform((3, 4)))),
    Case("complex-empty", _complex((0, 3))),
]
# PyTorch's l1_loss also takes integer arrays: integer loss for 'none' and 'sum'.
CASES += [
    Case(f"int-{a}-{b}-{red}", with_options(_ints(a, b), reduction=red))
    for a, b in [("int64", "int64"), ("int32", "int64"), ("int8", "uint8")]
    for red in ["none", "sum"]
]
CASES += [Case("int-weighted-mean", with_options(_ints("int64"), weight=uniform((6,))))]
CASES += [
    Case(f"weight-{red}", with_options(pair((3, 4)), reduction=red, weight=uniform((3, 4))))
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case("weight-broadcast-input", with_options(pair((1, 4), (3, 4)), weight=uniform((1, 4)))),
    Case("weight-broadcast-target", with_options(pair((3, 4), (4,)), weight=uniform((3, 4)))),
    Case("weight-float64", with_options(pair((3,)), weight=uniform((3,), dtype=np.float64))),
    Case("weight-int", with_options(pair((3,)), weight=lambda rng, dt: np.array([0, 1, 2]))),
    Case("weight-negative", with_options(pair((5,)), weight=uniform((5,), -1.0, 1.0))),
    Case("weight-empty-mean", with_options(pair((0, 3)), weight=uniform((0, 3)))),
    Case("weight-legacy", with_options(pair((3, 4)), reduce=False, weight=uniform((3, 4)))),
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
    Error(
        "bool-input", lambda rng, dt: ((np.array([True, False]), rand(rng, (2,), dt)), {}), TypeError, re_arg("input")
    ),
    Error(
        "bool-target", lambda rng, dt: ((rand(rng, (2,), dt), np.array([True, False])), {}), TypeError, re_arg("target")
    ),
    Error("int-mean", _ints("int64"), TypeError, re_arg("input")),
    # PyTorch returns a float32 mean here; anyloss refuses an all-integer 'mean'.
    Error(
        "int-weight-int-mean",
        with_options(_ints("int64"), weight=lambda rng, dt: np.ones(6, np.int64)),
        TypeError,
        re_arg("input"),
        torch_raises=False,
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


def test_worked_example():
    # PyTorch docs' classic example: L1 of ones(2, 2) against [[0, 1], [2, 3]].
    x, y = np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]])
    assert float(F.l1_loss(x, y)) == 1.0
    assert float(anyloss.L1Loss()(x, y)) == 1.0


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x, y = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64)
    loss = legacy_class(anyloss.L1Loss, "sum", size_average=False)
    np.testing.assert_array_equal(loss(x, y), F.l1_loss(x, y, reduction="sum"))


# Kink points and extremes: with this pool x == y (and |x - y| == 1) happen often.
_POOL = st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-30, -1e30, 1e30, 3e38, -3e38])
_VALUES = st.one_of(_POOL, st.floats(-1e3, 1e3, width=32))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, weighted):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    y = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    kwargs = {"reduction": reduction}
    tol = None
    if weighted:
        w = kwargs["weight"] = data.draw(hnp.arrays(dtype, shape, elements=st.floats(0.125, 2.0, width=32)))
        if reduction == "mean":
            tol = _cancellation_tol(x, y, w)
    check_against_torch(NAME, (x, y), kwargs, xp, tol=tol)


def _cancellation_tol(x, y, w):
    """The weight's gradient under a weighted 'mean', |d| / S - sum(|d| w) / S^2, cancels
    (to 0 for a single element): both sides may differ by the rounding of its terms."""
    with np.errstate(all="ignore"):
        d, w64 = np.abs(x.astype(np.float64) - y.astype(np.float64)), w.astype(np.float64)
        total = w64.sum()
        scale = d.max() / total + (d * w64).sum() / total**2 if d.size else 0.0
    f32 = x.dtype == np.float32
    return {"rtol": 1.3e-6 if f32 else 1e-7, "atol": max(1e-5 if f32 else 1e-7, 8 * np.finfo(x.dtype).eps * scale)}


@pytest.mark.parametrize("backend", ["numpy", "torch-own", "jax", "array_api_strict"])
def test_nan_difference_gets_torchs_zero_gradient(backend):
    """PyTorch's subgradient of |d| is torch.sign(d): 0 at d = 0 and at NaN (NumPy's
    and JAX's sign of NaN is NaN). The gradient of the other elements is untouched."""
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, 1.5, -2.0, 0.0, np.nan])
    y = np.array([0.0, 0.5, 1.0, 0.0, np.nan])
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.l1_loss(xt, torch.tensor(y), reduction="sum").backward()
    if backend == "torch-own":
        a = torch.tensor(x, requires_grad=True)
        with anyloss.configure(native=False):
            F.l1_loss(a, torch.tensor(y), reduction="sum").backward()
        g = a.grad
    else:
        xp = np if backend == "numpy" else pytest.importorskip({"jax": "jax.numpy"}.get(backend, backend))
        g = anyloss.grad(lambda a: F.l1_loss(a, xp.asarray(y), reduction="sum"))(xp.asarray(x))
    torch.testing.assert_close(torch.as_tensor(to_numpy(g), dtype=torch.float64), xt.grad)
