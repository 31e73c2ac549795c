"""F.cosine_embedding_loss / anyloss.CosineEmbeddingLoss against PyTorch."""

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
    signs,
    with_options,
)

NAME = "cosine_embedding_loss"


def _xxy(shape1, shape2=None, tshape=None):
    """Inputs of ``shape1``/``shape2`` and +-1 targets of ``tshape`` (default: the batch shape)."""
    shape2 = shape2 or shape1
    tshape = shape1[:-1] if tshape is None else tshape
    return lambda rng, dt: ((rand(rng, shape1, dt), rand(rng, shape2, dt), signs(rng, tshape, dt)), {})


def _targets(values, tdtype=None, n=8):
    """Targets drawn from ``values``: other than +-1 too (PyTorch gives those a zero loss)."""

    def build(rng, dt):
        y = rng.choice(np.array(values), size=n)
        return (rand(rng, (n, 3), dt), rand(rng, (n, 3), dt), y.astype(tdtype or dt)), {"reduction": "none"}

    return build


def _zeros(rng, dt):
    # Zero vectors: EPSILON keeps the cosine 0 (and its gradient finite) instead of 0/0.
    x1 = rand(rng, (6, 3), dt)
    x2 = rand(rng, (6, 3), dt)
    x1[0] = x1[1] = x1[4] = 0.0
    x2[2] = x2[3] = x2[4] = x2[5] = 0.0
    y = np.array([1, -1, 1, -1, 1, -1], dtype=dt)
    return (x1, x2, y), {"margin": -0.5, "reduction": "none"}


def _kink(rng, dt):
    # margin == cos exactly, computed as PyTorch does, so the y = -1 hinge sits on its kink.
    x1 = np.array([[1.0, 0.0], [1.0, 0.0], [3.0, 4.0]], dtype=dt)
    x2 = np.array([[1.0, 1.0], [1.0, 1.0], [4.0, 3.0]], dtype=dt)
    cos = np.sum(x1 * x2, -1) / np.sqrt((np.sum(x1 * x1, -1) + dt.type(1e-12)) * (np.sum(x2 * x2, -1) + dt.type(1e-12)))
    return (x1, x2, np.array([-1.0, 1.0, -1.0], dt)), {"margin": float(cos[0]), "reduction": "none"}


def _ints(d1, d2, lo=-3, hi=4):
    def build(rng, dt):
        def make(d):
            if d == "float":
                return rand(rng, (4, 3), dt)
            return rng.integers(lo, hi, (4, 3)).astype(d)

        return (make(d1), make(d2), np.array([1, -1, 1, -1])), {"reduction": "none"}

    return build


CASES = [
    Case(f"{s1}-{red}", with_options(_xxy(s1), reduction=red))
    for s1 in [(5,), (4, 5), (1, 3), (0, 3), (3, 0), (0,)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"margin={m}-{red}", with_options(_xxy((6, 4)), margin=m, reduction=red))
    for m in [0.5, -0.5, 1, 1.5, -2.0]
    for red in ["none", "sum"]
]
CASES += [
    Case("zero-vectors", _zeros),
    Case("kink-cos=margin", _kink),
    Case("other-targets", _targets([1.0, -1.0, 0.0, 2.0, 0.5, -3.0, np.nan])),
    Case("int-target", _targets([1, -1, 0, 2], np.int64)),
    Case("int8-target", _targets([1, -1, 0], np.int8)),
    Case("uint8-target", _targets([1, 255, 0, 254], np.uint8)),  # PyTorch: -1 wraps to 255
    Case("bool-target", _targets([True, False], np.bool_)),
    Case("broadcast-input1-rows", with_options(_xxy((1, 4), (3, 4), (3,)), reduction="none")),
    Case("broadcast-input2-rows", with_options(_xxy((3, 4), (1, 4)), reduction="sum")),
    Case("broadcast-feature", with_options(_xxy((3, 1), (3, 4)), reduction="none")),
    Case("broadcast-target", with_options(_xxy((3, 4), (3, 4), (1,)), reduction="none")),
    Case("broadcast-target-over-inputs", with_options(_xxy((1, 4), (1, 4), (3,)), reduction="none")),
    Case(
        "mixed-float-inputs",
        lambda rng, dt: (
            (rand(rng, (3, 4), np.float32), rand(rng, (3, 4), np.float64), signs(rng, (3,), np.float32)),
            {"reduction": "none"},
        ),
    ),
    Case(
        "mixed-float-target64",
        lambda rng, dt: (
            (rand(rng, (3, 4), np.float32), rand(rng, (3, 4), np.float32), signs(rng, (3,), np.float64)),
            {},
        ),
    ),
    Case("legacy-size_average", with_options(_xxy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xxy((3, 4)), reduce=False)),
    Case("legacy-both", with_options(_xxy((3, 4)), size_average=True, reduce=True)),
    Case(
        "nan-inf",
        lambda rng, dt: (
            (
                np.array([[np.nan, 1.0], [np.inf, 1.0], [1.0, 2.0], [-np.inf, 0.0]], dt),
                np.array([[1.0, 1.0], [1.0, 2.0], [np.inf, 1.0], [1.0, 0.0]], dt),
                np.array([1.0, -1.0, -1.0, 1.0], dt),
            ),
            {"reduction": "none"},
        ),
    ),
    Case(
        "large",
        lambda rng, dt: (
            (rand(rng, (3, 4), dt, -1e15, 1e15), rand(rng, (3, 4), dt, -1e-15, 1e-15), signs(rng, (3,), dt)),
            {"reduction": "none"},
        ),
    ),
    # Integer and boolean inputs: summed in their integer dtype (int8 products wrap), then float32.
    Case("int64-inputs", _ints("int64", "int64")),
    Case("int8-overflow", _ints("int8", "int8", -120, 120)),
    Case("int-and-float", _ints("int64", "float")),
    Case("float-and-int", _ints("float", "int32")),
    Case("bool-inputs", _ints("bool", "bool", 0, 2)),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xxy((3, 2)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("margin-str", with_options(_xxy((3, 2)), margin="0.5"), TypeError, re_arg("margin")),
    Error("target-2d", _xxy((3, 2), (3, 2), (3, 1)), ValueError, re_arg("target")),
    Error("target-1d-inputs-1d", _xxy((3,), (3,), (1,)), ValueError, re_arg("input1")),
    Error("target-0d-inputs-2d", _xxy((2, 3), (2, 3), ()), ValueError, re_arg("input1")),
    Error("input2-ndim", _xxy((2, 3), (3,), (2,)), ValueError, re_arg("input2")),
    Error("inputs-3d", _xxy((2, 3, 1), (2, 3, 1), (2,)), ValueError, re_arg("input1")),
    Error("feature-mismatch", _xxy((2, 3), (2, 4)), ValueError, re_arg("input2")),
    Error("batch-mismatch", _xxy((2, 3), (3, 3)), ValueError, re_arg("input2")),
    Error("target-length", _xxy((2, 3), (2, 3), (3,)), ValueError, re_arg("target")),
    Error(
        "not-array",
        lambda rng, dt: (([[1.0, 2.0]], rand(rng, (1, 2), dt), signs(rng, (1,), dt)), {}),
        TypeError,
        re_arg("input1"),
    ),
    Error(
        "not-array-target",
        lambda rng, dt: ((rand(rng, (1, 2), dt), rand(rng, (1, 2), dt), [1.0]), {}),
        TypeError,
        re_arg("target"),
    ),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_worked_example():
    # Orthogonal vectors: cos = 0, loss 1 for y = 1; at 45 degrees cos = 1/sqrt(2) for y = -1.
    x1, x2 = np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    out = F.cosine_embedding_loss(x1, x2, np.array([1, -1]), reduction="none")
    np.testing.assert_allclose(out, [1.0, 2**-0.5])
    assert float(anyloss.CosineEmbeddingLoss(margin=1.0)(x1, x2, np.array([1, -1]))) == pytest.approx(0.5)


def test_gradient_at_the_kink_passes():
    # Pinned (torch agrees, see test_matches_torch[kink-*]): at cos == margin the gradient is that of cos.
    (x1, x2, y), kw = _kink(None, np.dtype("float64"))
    g1 = anyloss.grad(lambda a: F.cosine_embedding_loss(a, x2, y, reduction="sum", margin=kw["margin"]))(x1)
    assert np.all(g1[0] != 0)


def test_target_has_no_gradient():
    rng = np.random.default_rng(0)
    args = (rand(rng, (2, 3), np.float64), rand(rng, (2, 3), np.float64), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=re_arg("target")):
        anyloss.grad(F.cosine_embedding_loss, argnums=2)(*args)


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    x1, x2, y = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64), signs(rng, (3,), np.float64)
    loss = legacy_class(anyloss.CosineEmbeddingLoss, "sum", 0.25, size_average=False)
    assert loss.margin == 0.25
    np.testing.assert_array_equal(loss(x1, x2, y), F.cosine_embedding_loss(x1, x2, y, margin=0.25, reduction="sum"))


# Zeros and repeated values make zero vectors and cos == margin ties likely.
_X = st.one_of(st.sampled_from([0.0, 0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, -1e30, 1e-20]), st.floats(-1e3, 1e3, width=32))
_Y = st.sampled_from([1.0, -1.0, 1.0, -1.0, 0.0, 2.0])


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    margin=st.sampled_from([0.0, 0.5, -0.5, 1.0]),
    batched=st.booleans(),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, margin, batched):
    xp = hypothesis_namespace(hxp)

    d = data.draw(st.integers(0, 5))
    shape = (data.draw(st.integers(0, 4)), d) if batched else (d,)
    x1 = data.draw(hnp.arrays(dtype, shape, elements=_X))
    x2 = data.draw(hnp.arrays(dtype, shape, elements=_X))
    y = data.draw(hnp.arrays(dtype, shape[:-1], elements=_Y))
    check_against_torch(NAME, (x1, x2, y), {"margin": margin, "reduction": reduction}, xp)
