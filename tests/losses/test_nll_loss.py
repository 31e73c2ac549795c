"""F.nll_loss / anyloss.NLLLoss / anyloss.NLLLoss2d against PyTorch."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    class_targets,
    errors,
    hypothesis_namespace,
    rand,
    re_arg,
    run_case,
    run_error,
    torch,
)

NAME = "nll_loss"

# (input shape, target shape); class dimension 1 (0 for the no-batch (C) input).
SHAPES = {
    "C": ((4,), ()),
    "C-target1": ((4,), (1,)),
    "NC": ((6, 4), (6,)),
    "NCd": ((3, 4, 5), (3, 5)),
    "NCdd": ((2, 4, 3, 2), (2, 3, 2)),
    "empty": ((0, 4), (0,)),
    "empty-d": ((2, 4, 0), (2, 0)),
}


def make(shape_id, weight=False, ignore_index=None, ignored=0.25, **kw):
    xshape, tshape = SHAPES[shape_id]
    c = xshape[0 if len(xshape) == 1 else 1]

    def build(rng, dt):
        ii = -100 if ignore_index is None else ignore_index
        args = (rand(rng, xshape, dt, -4.0, 0.0), class_targets(rng, tshape, c, ii, ignored))
        kwargs = dict(kw)
        if weight:
            kwargs["weight"] = rand(rng, (c,), dt, 0.1, 2.0)
        if ignore_index is not None:
            kwargs["ignore_index"] = ignore_index
        return args, kwargs

    return build


# PyTorch computes the value for a (1) target of a (C) input but its backward
# fails ("size mismatch"); test_1d_input_with_1_target checks that gradient.
CASES = [
    Case(
        f"{s}-{'w' if w else 'nw'}-ii{ii}-{red}",
        make(s, weight=w, ignore_index=ii, reduction=red),
        grads=s != "C-target1",
    )
    for s in SHAPES
    for w in (False, True)
    for ii in (None, 1)
    for red in ("none", "mean", "sum")
]
CASES += [
    Case("legacy-size_average", make("NC", size_average=False)),
    Case("legacy-reduce", make("NC", weight=True, reduce=False)),
    Case("legacy-both", make("NC", size_average=True, reduce=True)),
    Case(
        "uint8-target",
        lambda rng, dt: (
            (rand(rng, (5, 3), dt), class_targets(rng, (5,), 3, ignored=0, dtype=np.uint8)),
            {"weight": rand(rng, (3,), dt, 0.1, 1.0)},
        ),
    ),
    Case("ignore-index-0", make("NCd", weight=True, ignore_index=0)),
    Case("ignore-index-C", make("NC", ignore_index=4, ignored=0.5)),
    Case("ignore-index-negative", make("NC", weight=True, ignore_index=-1, ignored=0.5)),
    Case(
        "neg-inf-logprob",
        lambda rng, dt: ((np.array([[-np.inf, 0.0], [0.0, -np.inf]], dtype=dt), np.array([1, 0])), {}),
    ),
]
# All targets ignored: 'mean' is 0/0 = NaN as in PyTorch; the gradient is 0.
CASES += [
    Case(f"all-ignored-{s}-{red}", make(s, weight=w, ignored=1.0, reduction=red))
    for s in ("C", "NC", "NCdd")
    for w in (False, True)
    for red in ("none", "mean", "sum")
]
# Non-ignored targets of weight 0 only: NaN 'mean', and a NaN gradient at the targets, as in PyTorch.
CASES += [
    Case(
        f"zero-weight-{red}",
        lambda rng, dt, red=red: (
            (rand(rng, (4, 3), dt), np.array([1, 1, -100, 1])),
            {"weight": np.array([1.0, 0.0, 2.0], dtype=dt), "reduction": red},
        ),
    )
    for red in ("none", "mean", "sum")
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


ERRORS = [
    Error("reduction", make("NC", reduction="avg"), ValueError, re_arg("reduction")),
    Error("reduction-batchmean", make("NC", reduction="batchmean"), ValueError, re_arg("reduction")),
    Error(
        "float-target",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0.0, 1.0, 2.0])), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "bool-target",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([True, False, True])), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "int-input",
        lambda rng, dt: ((np.zeros((3, 4), dtype=np.int64), np.array([0, 1, 2])), {}),
        TypeError,
        re_arg("input"),
    ),
    Error("0d-input", lambda rng, dt: ((np.ones(()), np.array(0)), {}), ValueError, re_arg("input")),
    Error(
        "batch-mismatch", lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1])), {}), ValueError, re_arg("target")
    ),
    Error(
        "spatial-mismatch",
        lambda rng, dt: ((rand(rng, (2, 4, 3), dt), np.zeros((2, 4), dtype=np.int64)), {}),
        ValueError,
        re_arg("target"),
    ),
    Error(
        "target-ndim",
        lambda rng, dt: ((rand(rng, (2, 4, 3), dt), np.zeros((2,), dtype=np.int64)), {}),
        ValueError,
        re_arg("target"),
    ),
    Error(
        "1d-input-2-targets",
        lambda rng, dt: ((rand(rng, (4,), dt), np.array([0, 1])), {}),
        ValueError,
        re_arg("target"),
    ),
    Error(
        "multi-target",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.zeros((3, 4), dtype=np.int64)), {}),
        ValueError,
        re_arg("target"),
    ),
    Error(
        "class-too-big",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 4, 1])), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "class-negative",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, -1, 1])), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "class-too-big-1d",
        lambda rng, dt: ((rand(rng, (4,), dt), np.array(7)), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "class-ignored-elsewhere",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, -100, 1])), {"ignore_index": 2}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "no-classes",
        lambda rng, dt: ((rand(rng, (2, 0), dt), np.array([0, 0])), {}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "weight-length",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1, 2])), {"weight": rand(rng, (5,), dt)}),
        ValueError,
        re_arg("weight"),
    ),
    Error(
        "weight-2d",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1, 2])), {"weight": rand(rng, (1, 4), dt)}),
        ValueError,
        re_arg("weight"),
    ),
    Error(
        "weight-dtype",
        lambda rng, dt: ((rand(rng, (3, 4), np.float64), np.array([0, 1, 2])), {"weight": rand(rng, (4,), np.float32)}),
        TypeError,
        re_arg("weight"),
    ),
    Error(
        "weight-int",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1, 2])), {"weight": np.ones(4, dtype=np.int64)}),
        TypeError,
        re_arg("weight"),
    ),
    Error(
        "ignore_index-float",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1, 2])), {"ignore_index": 1.0}),
        TypeError,
        re_arg("ignore_index"),
    ),
    Error(
        "ignore_index-bool",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1, 2])), {"ignore_index": True}),
        TypeError,
        re_arg("ignore_index"),
    ),
    Error(
        "ignore_index-overflow",
        lambda rng, dt: ((rand(rng, (3, 4), dt), np.array([0, 1, 2])), {"ignore_index": 2**63}),
        ValueError,
        re_arg("ignore_index"),
    ),
    Error("not-array", lambda rng, dt: (([[0.0, 1.0]], np.array([0])), {}), TypeError, re_arg("input")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


@pytest.mark.parametrize("tdtype", ["int8", "int16", "int32", "uint8", "uint16", "uint32", "uint64"])
def test_any_integer_target_dtype(xp, tdtype):
    """PyTorch takes int64 (and uint8) class indices only; anyloss takes any
    integer dtype and gives int64's numbers, which torch checks here."""
    rng = np.random.default_rng(1)
    x = rand(rng, (5, 4, 3), np.float32)
    t = class_targets(rng, (5, 3), 4, ignore_index=3, ignored=0.3)
    w = rand(rng, (4,), np.float32, 0.1, 1.0)
    kw = {"weight": w, "ignore_index": 3, "reduction": "mean"}
    check_against_torch(NAME, (x, t), kw, xp)
    xa, wa = xp.asarray(x), xp.asarray(w)
    ref = anyloss.value_and_grad(lambda a, b: F.nll_loss(a, b, weight=wa, ignore_index=3))(xa, xp.asarray(t))
    got = anyloss.value_and_grad(lambda a, b: F.nll_loss(a, b, weight=wa, ignore_index=3))(
        xa, xp.asarray(t.astype(tdtype))
    )
    for r, g in zip(ref, got):
        assert np.array_equal(np.asarray(r), np.asarray(g))


def test_default_ignore_index_with_unsigned_target(xp):
    # -100 does not exist in uint8: nothing is ignored (and nothing breaks).
    x = np.log(np.full((3, 2), 0.5))
    out = F.nll_loss(xp.asarray(x), xp.asarray(np.array([0, 1, 1], dtype=np.uint8)))
    assert float(out) == pytest.approx(np.log(2.0))


def test_weight_has_no_gradient(xp):
    """PyTorch refuses a weight that requires grad; anyloss refuses to differentiate it."""
    x, w = xp.asarray(np.zeros((2, 3))), xp.asarray(np.ones(3))
    with pytest.raises(ValueError, match=re_arg("weight")):
        anyloss.value_and_grad(lambda a, b: F.nll_loss(a, xp.asarray([0, 1]), weight=b), argnums=1)(x, w)
    with pytest.raises(ValueError, match=re_arg("target")):
        anyloss.value_and_grad(F.nll_loss, argnums=1)(x, xp.asarray([0, 1]))


def test_1d_input_with_1_target(xp):
    """A (1) target of a (C) input means the () target (value, shape, gradient)."""
    x = xp.asarray(np.array([-1.0, -2.0, -0.5]))
    for red in ("none", "mean", "sum"):
        f = lambda a, t: F.nll_loss(a, t, reduction=red)  # noqa: B023, E731
        v1, g1 = anyloss.vjp(f, x, xp.asarray([2]))
        v0, g0 = anyloss.vjp(f, x, xp.asarray(2))
        assert v1.shape == () and float(v1) == float(v0) == 0.5
        assert np.array_equal(np.asarray(g1(xp.ones_like(v1))), np.asarray(g0(xp.ones_like(v0))))


def test_classes():
    rng = np.random.default_rng(0)
    x, t, w = rand(rng, (4, 3), np.float64), np.array([0, 2, 1, -100]), rand(rng, (3,), np.float64, 0.1, 1)
    loss = anyloss.NLLLoss(weight=w, reduction="sum")
    np.testing.assert_array_equal(loss(x, t), F.nll_loss(x, t, weight=w, reduction="sum"))
    assert anyloss.NLLLoss(ignore_index=2).ignore_index == 2
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert anyloss.NLLLoss(reduce=False).reduction == "none"


def test_nllloss2d_is_deprecated_alias():
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch.nn.NLLLoss2d()
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        loss = anyloss.NLLLoss2d(ignore_index=1, reduction="none")
    assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in theirs]
    assert ours[0].filename == __file__  # points at the caller, as PyTorch's does
    assert isinstance(loss, anyloss.NLLLoss)
    rng = np.random.default_rng(0)
    x, t = rand(rng, (2, 3, 4, 4), np.float64), class_targets(rng, (2, 4, 4), 3, ignore_index=1)
    np.testing.assert_array_equal(loss(x, t), F.nll_loss(x, t, ignore_index=1, reduction="none"))


def test_worked_example():
    # PyTorch docs' example: nll_loss of log_softmax (here the log-probabilities directly).
    logp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    assert float(F.nll_loss(logp, np.array([0, 2]))) == pytest.approx(-(np.log(0.7) + np.log(0.8)) / 2, rel=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    kdim=st.integers(-1, 2),  # -1: (C) input; 0: (N, C); K >= 1: K extra dims
    c=st.integers(1, 6),
    weighted=st.booleans(),
    ignore_index=st.sampled_from([-100, 0, 2, -1]),
    reduction=st.sampled_from(REDUCTIONS),
    dtype=st.sampled_from(DTYPES),
    scale=st.sampled_from([1.0, 1e4]),
)
@HYPOTHESIS_BACKENDS
def test_hypothesis(hxp, data, kdim, c, weighted, ignore_index, reduction, dtype, scale):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.integers(0, 5))
    if kdim < 0:
        xshape, tshape = (c,), ()
    else:
        extra = tuple(data.draw(st.integers(0, 3)) for _ in range(kdim))
        xshape, tshape = (n, c, *extra), (n, *extra)
    # Log-probabilities are <= 0: a float32 sum of mixed signs would cancel and
    # turn summation order into relative error.
    x = (rand(rng, xshape, dtype, -2.0, 0.0) * scale).astype(dtype)
    t = class_targets(rng, tshape, c, ignore_index, data.draw(st.sampled_from([0.0, 0.3, 1.0])))
    kw = {"ignore_index": ignore_index, "reduction": reduction}
    if weighted:
        kw["weight"] = rand(rng, (c,), dtype, 0.0, 2.0)
    xp = hypothesis_namespace(hxp)

    check_against_torch(NAME, (x, t), kw, xp)
