"""F.multilabel_soft_margin_loss / anyloss.MultiLabelSoftMarginLoss against PyTorch."""

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
    with_options,
)

NAME = "multilabel_soft_margin_loss"


def _xy(shape, tshape=None):
    """Scores of ``shape`` and multi-hot float targets (``tshape`` if given)."""

    def make(rng, dt):
        y = np.asarray((rng.random(tshape or shape) < 0.5).astype(dt))
        return (np.asarray(rand(rng, shape, dt, -4.0, 4.0)), y), {}

    return make


def _w(shape, dtype=None, low=0.0, high=2.0):
    return lambda rng, dt: rand(rng, shape, dtype or dt, low, high)


def _fixed(x, y, **kw):
    return lambda rng, dt: ((np.array(x, dtype=dt), np.array(y, dtype=dt)), kw)


inf = float("inf")
CASES = [
    Case(f"{shape}-{red}", with_options(_xy(shape), reduction=red))
    for shape in [(3, 4), (4,), (1, 1), (2, 3, 4), (0, 4), (3, 0)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case(f"weight{wshape}-{red}", with_options(_xy((3, 4)), weight=_w(wshape), reduction=red))
    for wshape in [(4,), (3, 1), (), (3, 4), (1, 4)]
    for red in ["none", "mean", "sum"]
]
CASES += [
    Case("weight-1d-input", with_options(_xy((4,)), weight=_w((4,)), reduction="none")),
    Case("weight-3d-input", with_options(_xy((2, 3, 4)), weight=_w((4,)), reduction="none")),
    Case("weight-negative", with_options(_xy((3, 4)), weight=_w((4,), low=-2.0))),
    Case("weight-int", with_options(_xy((3, 4)), weight=lambda rng, dt: rng.integers(0, 3, size=4))),
    Case("weight-bool", with_options(_xy((3, 4)), weight=lambda rng, dt: rng.random(4) < 0.5, reduction="none")),
    Case(
        "weight-float64-input-float32",
        lambda rng, dt: (
            (rand(rng, (3, 4), np.float32), rand(rng, (3, 4), dt, 0, 1)),
            {"weight": rand(rng, (4,), np.float64)},
        ),
    ),
    Case("weight-broadcasts-up", with_options(_xy((3, 4)), weight=_w((2, 3, 4)), reduction="none")),
    Case("target-soft", lambda rng, dt: ((rand(rng, (3, 4), dt), rand(rng, (3, 4), dt, 0, 1)), {})),
    Case(
        "target-any-real",
        lambda rng, dt: ((rand(rng, (3, 4), dt), rand(rng, (3, 4), dt, -3, 3)), {"reduction": "none"}),
    ),
    Case("target-int", lambda rng, dt: ((rand(rng, (3, 4), dt), rng.integers(0, 2, size=(3, 4))), {})),
    Case(
        "target-int-weight",
        lambda rng, dt: ((rand(rng, (3, 4), dt), rng.integers(-1, 3, size=(3, 4))), {"weight": rand(rng, (4,), dt)}),
    ),
    Case(
        "target-int32",
        lambda rng, dt: (
            (rand(rng, (3, 4), dt), rng.integers(0, 2, size=(3, 4)).astype(np.int32)),
            {"reduction": "none"},
        ),
    ),
    Case(
        "target-float64-input-float32",
        lambda rng, dt: ((rand(rng, (3, 4), np.float32), rand(rng, (3, 4), np.float64, 0, 1)), {}),
    ),
    Case(
        "target-float32-input-float64",
        lambda rng, dt: ((rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float32, 0, 1)), {}),
    ),
    Case("target-broadcast-row", with_options(_xy((3, 4), (4,)), reduction="none")),
    Case("target-broadcast-col", with_options(_xy((3, 4), (3, 1)), reduction="none")),
    # PyTorch sums the broadcast loss over input's last axis counted from the left.
    Case("target-broadcasts-up", with_options(_xy((3, 4), (2, 3, 4)), reduction="none")),
    Case("target-broadcasts-up-1d", with_options(_xy((4,), (3, 4)), reduction="none")),
    Case(
        "extreme",
        _fixed(
            [[1e30, -1e30, 100.0, -100.0, 1e-30, -1e-30, 30.0, -30.0]] * 2,
            [[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]],
            reduction="none",
        ),
    ),
    Case(
        "infinite",
        _fixed([[inf, -inf, inf, -inf], [inf, -inf, 0.0, 0.0]], [[1, 0, 0, 1], [0.5, 0.5, 1, 0]], reduction="none"),
    ),
    Case("legacy-size_average", with_options(_xy((3, 4)), size_average=False)),
    Case("legacy-reduce", with_options(_xy((3, 4)), reduce=False, weight=_w((4,)))),
    Case("legacy-both", with_options(_xy((3, 4)), size_average=True, reduce=True)),
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", with_options(_xy((3, 4)), reduction="avg"), ValueError, re_arg("reduction")),
    Error("input-0d", _xy(()), ValueError, re_arg("input")),
    Error(
        "int-input",
        lambda rng, dt: ((np.ones((2, 3), dtype=np.int64), np.ones((2, 3))), {}),
        TypeError,
        re_arg("input"),
    ),
    Error(
        "bool-target",
        lambda rng, dt: ((rand(rng, (2, 3), dt), rng.random((2, 3)) < 0.5), {}),
        TypeError,
        re_arg("target"),
    ),
    Error("target-shape", _xy((3, 4), (3, 5)), ValueError, re_arg("target")),
    Error("weight-shape", with_options(_xy((3, 4)), weight=_w((5,))), ValueError, re_arg("weight")),
    Error("not-array", lambda rng, dt: (([[1.0, 2.0]], np.ones((1, 2))), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


def test_is_mean_of_per_class_logistic_losses():
    # By definition: the mean over classes of binary_cross_entropy_with_logits, weighted per class.
    rng = np.random.default_rng(0)
    x, y, w = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64, 0, 1), rand(rng, (4,), np.float64, 0, 2)
    expected = np.mean(w * (np.logaddexp(0, -x) * y + np.logaddexp(0, x) * (1 - y)), axis=1)
    np.testing.assert_allclose(F.multilabel_soft_margin_loss(x, y, weight=w, reduction="none"), expected, rtol=1e-14)


def test_class():
    rng = np.random.default_rng(0)
    x, y, w = rand(rng, (3, 4), np.float64), rand(rng, (3, 4), np.float64, 0, 1), rand(rng, (4,), np.float64, 0, 2)
    loss = legacy_class(anyloss.MultiLabelSoftMarginLoss, "sum", weight=w, size_average=False)
    assert loss.weight is w
    np.testing.assert_array_equal(loss(x, y), F.multilabel_soft_margin_loss(x, y, weight=w, reduction="sum"))


_VALUES = st.one_of(st.sampled_from([0.0, 1e-30, -1e30, 1e30, 50.0, -50.0, 1e4, -1e4]), st.floats(-20, 20, width=32))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    reduction=st.sampled_from(REDUCTIONS),
    weighted=st.booleans(),
    int_target=st.booleans(),
)
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, data, dtype, reduction, weighted, int_target):
    xp = hypothesis_namespace(hxp)

    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5))
    x = data.draw(hnp.arrays(dtype, shape, elements=_VALUES))
    if int_target:
        y = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))
    else:
        y = data.draw(hnp.arrays(dtype, shape, elements=st.sampled_from([0.0, 1.0, 0.25, 0.5])))
    kwargs = {"reduction": reduction}
    if weighted:
        kwargs["weight"] = data.draw(hnp.arrays(dtype, shape[-1:], elements=st.sampled_from([0.0, 0.5, 1.0, 3.0])))
    check_against_torch(NAME, (x, y), kwargs, xp)
