"""F.cross_entropy / anyloss.CrossEntropyLoss against PyTorch: class indices and
class probabilities, with every combination of weight, ignore_index and
label_smoothing (including the ones PyTorch once got wrong:
pytorch/pytorch#69339, #73205, #91383; #104776)."""

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
)

NAME = "cross_entropy"
PROB_DIFF = ("input", "target", "weight")  # PyTorch's composite path for probability targets

SHAPES = {
    "C": ((4,), ()),
    "NC": ((6, 4), (6,)),
    "NCd": ((3, 4, 5), (3, 5)),
    "NCdd": ((2, 4, 3, 2), (2, 3, 2)),
    "empty": ((0, 4), (0,)),
    "empty-d": ((2, 4, 0), (2, 0)),
}


def n_classes(xshape):
    return xshape[0 if len(xshape) == 1 else 1]


def make(shape_id, weight=False, ignore_index=None, ignored=0.25, scale=3.0, **kw):
    xshape, tshape = SHAPES[shape_id]
    c = n_classes(xshape)

    def build(rng, dt):
        ii = -100 if ignore_index is None else ignore_index
        args = (rand(rng, xshape, dt, -scale, scale), class_targets(rng, tshape, c, ii, ignored))
        kwargs = dict(kw)
        if weight:
            kwargs["weight"] = rand(rng, (c,), dt, 0.1, 2.0)
        if ignore_index is not None:
            kwargs["ignore_index"] = ignore_index
        return args, kwargs

    return build


def make_prob(shape_id, weight=False, tdtype=None, wdtype=None, **kw):
    xshape, _ = SHAPES[shape_id]
    c = n_classes(xshape)

    def build(rng, dt):
        x = rand(rng, xshape, dt, -3.0, 3.0)
        y = rand(rng, xshape, tdtype or dt, 0.0, 1.0)
        kwargs = dict(kw)
        if weight:
            kwargs["weight"] = rand(rng, (c,), wdtype or dt, 0.1, 2.0).astype(wdtype or dt)
        return (x, y), kwargs

    return build


# ----------------------------------------------------------------- class indices

CASES = [
    Case(
        f"{s}-{'w' if w else 'nw'}-ii{ii}-ls{ls}-{red}",
        make(s, weight=w, ignore_index=ii, label_smoothing=ls, reduction=red),
    )
    for s in SHAPES
    for w in (False, True)
    for ii in (None, 1)
    for ls in (0.0, 0.3)
    for red in REDUCTIONS
]
CASES += [
    Case(f"ls1-{'w' if w else 'nw'}-{red}", make("NC", weight=w, label_smoothing=1.0, reduction=red))
    for w in (False, True)
    for red in REDUCTIONS
]
CASES += [
    Case("1d-target1", make("C", label_smoothing=0.0), grads=False),  # see test_1d_input_with_1_target
    Case("legacy-size_average", make("NC", weight=True, label_smoothing=0.2, size_average=False)),
    Case("legacy-reduce", make("NCd", reduce=False, label_smoothing=0.2)),
    Case("legacy-both", make("NC", size_average=True, reduce=True)),
    # (PyTorch's weighted, smoothed 'mean' fails on uint8 targets, "gather(): Expected dtype int32/int64
    # for index"; test_any_integer_target_dtype covers that combination against int64.)
    *[
        Case(
            f"uint8-target-{red}",
            lambda rng, dt, red=red: (
                (rand(rng, (5, 3), dt), class_targets(rng, (5,), 3, ignored=0, dtype=np.uint8)),
                {"weight": rand(rng, (3,), dt, 0.1, 1.0), "label_smoothing": 0.1, "reduction": red},
            ),
        )
        for red in ("none", "sum")
    ],
    Case(
        "uint8-target-mean",
        lambda rng, dt: (
            (rand(rng, (5, 3), dt), class_targets(rng, (5,), 3, ignored=0, dtype=np.uint8)),
            {"weight": rand(rng, (3,), dt, 0.1, 1.0)},
        ),
    ),
    Case("ignore-index-0-w-ls", make("NCdd", weight=True, ignore_index=0, label_smoothing=0.2)),
    Case("ignore-index-negative-w-ls", make("NC", weight=True, ignore_index=-1, ignored=0.5, label_smoothing=0.2)),
    # pytorch/pytorch#69339 and #91383: weight + label_smoothing + ignored targets, 'mean'.
    Case(
        "issue-69339",
        lambda rng, dt: (
            (np.array([[1, 2], [3, 0.4]], dtype=dt), np.array([-100, 1])),
            {"weight": np.array([0.2, 0.3], dtype=dt), "label_smoothing": 0.1},
        ),
    ),
    # pytorch/pytorch#73205: the smoothing term must skip ignored samples, 'sum' and 'mean'.
    *[Case(f"issue-73205-{red}", make("NC", ignored=0.5, label_smoothing=0.2, reduction=red)) for red in REDUCTIONS],
    # pytorch/pytorch#104776 (open): weights also weight the smoothing term in 2.13.
    Case(
        "issue-104776",
        lambda rng, dt: (
            (rand(rng, (1, 2), dt), np.array([0])),
            {"weight": np.array([0.1, 0.9], dtype=dt), "label_smoothing": 0.1},
        ),
    ),
    # Logits of size 1e4 keep full precision (log-sum-exp, shift by the max).
    *[Case(f"huge-logits-{ls}", make("NCd", weight=True, scale=1e4, label_smoothing=ls)) for ls in (0.0, 0.3)],
    Case(
        "neg-inf-logit",
        lambda rng, dt: (
            (np.array([[-np.inf, 0.0, 1.0], [0.5, -np.inf, 0.0]], dtype=dt), np.array([1, 0])),
            {"label_smoothing": 0.0},
        ),
    ),
    Case(
        "neg-inf-logit-ls",
        lambda rng, dt: ((np.array([[-np.inf, 0.0, 1.0]], dtype=dt), np.array([1])), {"label_smoothing": 0.1}),
        grads=True,
    ),
    Case(
        "no-classes-all-ignored",
        lambda rng, dt: (
            (rand(rng, (2, 0), dt), np.array([-100, -100])),
            {"reduction": "none", "label_smoothing": 0.1},
        ),
    ),
]
# All targets ignored: 'mean' is 0/0 = NaN as in PyTorch; the gradient is 0.
CASES += [
    Case(
        f"all-ignored-{'w' if w else 'nw'}-ls{ls}-{red}",
        make("NC", weight=w, ignored=1.0, label_smoothing=ls, reduction=red),
    )
    for w in (False, True)
    for ls in (0.0, 0.2)
    for red in REDUCTIONS
]
# Non-ignored targets of weight 0 only: NaN 'mean', and a NaN gradient, as in PyTorch.
CASES += [
    Case(
        f"zero-weight-ls{ls}-{red}",
        lambda rng, dt, ls=ls, red=red: (
            (rand(rng, (4, 3), dt), np.array([1, 1, -100, 1])),
            {"weight": np.array([1.0, 0.0, 2.0], dtype=dt), "reduction": red, "label_smoothing": ls},
        ),
    )
    for ls in (0.0, 0.2)
    for red in REDUCTIONS
]

# Weights of the non-ignored targets that sum to 0: PyTorch's two 'mean' quotients a/0 + b/0 (inf or NaN).
CASES += [
    Case(
        f"zero-total-weight-{t}-ls{ls}",
        lambda rng, dt, t=t, ls=ls: (
            (np.array([[-1.0, -2.0], [-3.0, -0.5]], dtype=dt), np.array(t)),
            {"weight": np.array([1.0, -1.0], dtype=dt), "label_smoothing": ls},
        ),
    )
    for t in ([0, 1], [1, 0])
    for ls in (0.0, 0.1, 1.0)
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


# ----------------------------------------------------------------- class probabilities

PROB_CASES = [
    Case(f"prob-{s}-{'w' if w else 'nw'}-ls{ls}-{red}", make_prob(s, weight=w, label_smoothing=ls, reduction=red))
    for s in ("C", "NC", "NCdd", "empty")
    for w in (False, True)
    for ls in (0.0, 0.3)
    for red in REDUCTIONS
]
PROB_CASES += [
    Case("prob-ls1", make_prob("NCd", weight=True, label_smoothing=1.0)),
    Case("prob-ignore-index-negative", make_prob("NC", ignore_index=-1)),
    Case("prob-mixed-float", make_prob("NC", weight=True, tdtype="float64", label_smoothing=0.1)),
    Case("prob-int-weight", make_prob("NCd", weight=True, wdtype="int64"), grads=True),
    Case("prob-legacy", make_prob("NC", weight=True, reduce=False)),
    Case(
        "prob-huge-logits",
        lambda rng, dt: ((rand(rng, (3, 5), dt, -1e4, 1e4), rand(rng, (3, 5), dt, 0, 1)), {"label_smoothing": 0.2}),
    ),
    Case("prob-no-classes", lambda rng, dt: ((rand(rng, (2, 0), dt), rand(rng, (2, 0), dt)), {})),
    Case(
        "prob-one-hot-neg-inf",
        lambda rng, dt: ((np.array([[-np.inf, 0.0]], dtype=dt), np.array([[0.0, 1.0]], dtype=dt)), {}),
    ),
]


@cases(*PROB_CASES)
def test_prob_targets_match_torch(case, xp, dtype):
    rng = np.random.default_rng(0)
    args, kwargs = case.make(rng, np.dtype(dtype))
    check_against_torch(NAME, args, kwargs, xp, grads=case.grads, tol=case.tol, differentiable=PROB_DIFF)


# ----------------------------------------------------------------- bad input


def _x(rng, dt, shape=(3, 4)):
    return rand(rng, shape, dt)


ERRORS = [
    Error("reduction", make("NC", reduction="avg"), ValueError, re_arg("reduction")),
    Error("label_smoothing-above-1", make("NC", label_smoothing=1.5), ValueError, re_arg("label_smoothing")),
    Error("prob-label_smoothing-above-1", make_prob("NC", label_smoothing=1.5), ValueError, re_arg("label_smoothing")),
    # PyTorch silently treats a negative or NaN label_smoothing as 0; the issue asks for an error.
    Error(
        "label_smoothing-negative",
        make("NC", label_smoothing=-0.1),
        ValueError,
        re_arg("label_smoothing"),
        torch_raises=False,
    ),
    Error(
        "label_smoothing-nan",
        make("NC", label_smoothing=float("nan")),
        ValueError,
        re_arg("label_smoothing"),
        torch_raises=False,
    ),
    Error("label_smoothing-str", make("NC", label_smoothing="0.1"), TypeError, re_arg("label_smoothing")),
    Error(
        "float-class-target",
        lambda rng, dt: ((_x(rng, dt), np.array([0.0, 1.0, 2.0])), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "int-prob-target",
        lambda rng, dt: ((_x(rng, dt), np.zeros((3, 4), dtype=np.int64)), {}),
        TypeError,
        re_arg("target"),
    ),
    Error(
        "prob-ignore_index",
        lambda rng, dt: ((_x(rng, dt), rand(rng, (3, 4), dt, 0, 1)), {"ignore_index": 0}),
        ValueError,
        re_arg("ignore_index"),
    ),
    Error(
        "prob-weight-length",
        lambda rng, dt: ((_x(rng, dt), rand(rng, (3, 4), dt, 0, 1)), {"weight": rand(rng, (3,), dt)}),
        ValueError,
        re_arg("weight"),
    ),
    Error(
        "int-input",
        lambda rng, dt: ((np.zeros((3, 4), dtype=np.int64), np.array([0, 1, 2])), {}),
        TypeError,
        re_arg("input"),
    ),
    Error("0d-input", lambda rng, dt: ((np.ones(()), np.array(0)), {}), ValueError, re_arg("input")),
    Error("batch-mismatch", lambda rng, dt: ((_x(rng, dt), np.array([0, 1])), {}), ValueError, re_arg("target")),
    Error(
        "spatial-mismatch",
        lambda rng, dt: ((_x(rng, dt, (2, 4, 3)), np.zeros((2, 4), dtype=np.int64)), {}),
        ValueError,
        re_arg("target"),
    ),
    Error(
        "class-too-big",
        lambda rng, dt: ((_x(rng, dt), np.array([0, 4, 1])), {"label_smoothing": 0.1}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "class-negative-w-ls",
        lambda rng, dt: ((_x(rng, dt), np.array([0, -1, 1])), {"weight": rand(rng, (4,), dt), "label_smoothing": 0.1}),
        ValueError,
        re_arg("target"),
        needs_values=True,
    ),
    Error(
        "weight-length",
        lambda rng, dt: ((_x(rng, dt), np.array([0, 1, 2])), {"weight": rand(rng, (5,), dt)}),
        ValueError,
        re_arg("weight"),
    ),
    Error(
        "weight-dtype",
        lambda rng, dt: (
            (_x(rng, np.float32), np.array([0, 1, 2])),
            {"weight": rand(rng, (4,), np.float64), "label_smoothing": 0.1},
        ),
        TypeError,
        re_arg("weight"),
    ),
    Error(
        "ignore_index-float",
        lambda rng, dt: ((_x(rng, dt), np.array([0, 1, 2])), {"ignore_index": -1.0}),
        TypeError,
        re_arg("ignore_index"),
    ),
    Error("mixed-libraries", lambda rng, dt: ((_x(rng, dt), [0, 1, 2]), {}), TypeError, re_arg("target")),
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


# ----------------------------------------------------------------- explicit behaviour


@pytest.mark.parametrize("tdtype", ["int8", "int16", "int32", "uint8", "uint16", "uint32", "uint64"])
def test_any_integer_target_dtype(xp, tdtype):
    """PyTorch takes int64 (and uint8) class indices only; anyloss takes any
    integer dtype and gives int64's numbers, which torch checks here."""
    rng = np.random.default_rng(1)
    x, w = rand(rng, (5, 4, 3), np.float32), rand(rng, (4,), np.float32, 0.1, 1.0)
    t = class_targets(rng, (5, 3), 4, ignore_index=3, ignored=0.3)
    kw = {"weight": w, "ignore_index": 3, "label_smoothing": 0.2}
    check_against_torch(NAME, (x, t), kw, xp)
    xa, wa = xp.asarray(x), xp.asarray(w)

    def f(a, b):
        return F.cross_entropy(a, b, weight=wa, ignore_index=3, label_smoothing=0.2)

    ref = anyloss.value_and_grad(f)(xa, xp.asarray(t))
    got = anyloss.value_and_grad(f)(xa, xp.asarray(t.astype(tdtype)))
    for r, g in zip(ref, got):
        assert np.array_equal(np.asarray(r), np.asarray(g))


def test_1d_input_with_1_target(xp):
    """PyTorch accepts a (1) target for a (C) input but cannot differentiate it;
    anyloss treats it as the () target it means."""
    x = xp.asarray(np.array([0.5, -1.0, 2.0]))
    for ls in (0.0, 0.2):
        f = lambda a, t: F.cross_entropy(a, t, reduction="none", label_smoothing=ls)  # noqa: B023, E731
        v1, g1 = anyloss.vjp(f, x, xp.asarray([2]))
        v0, g0 = anyloss.vjp(f, x, xp.asarray(2))
        assert v1.shape == () and float(v1) == float(v0)
        assert np.array_equal(np.asarray(g1(xp.ones_like(v1))), np.asarray(g0(xp.ones_like(v0))))


def test_gradient_sets(xp):
    """Class indices: only `input` (PyTorch refuses a weight that requires grad).
    Probabilities: `input`, `target` and `weight`."""
    x, w = xp.asarray(np.zeros((2, 3))), xp.asarray(np.ones(3))
    t = xp.asarray([0, 1])
    with pytest.raises(ValueError, match=re_arg("weight")):
        anyloss.grad(lambda a, b: F.cross_entropy(a, t, weight=b, label_smoothing=0.1), argnums=1)(x, w)
    p = xp.asarray(np.full((2, 3), 1 / 3))
    gx, gp, gw = anyloss.grad(lambda a, b, c: F.cross_entropy(a, b, weight=c), argnums=(0, 1, 2))(x, p, w)
    assert gx.shape == (2, 3) and gp.shape == (2, 3) and gw.shape == (3,)


def test_never_builds_softmax_then_log(xp):
    """A logit gap of 1e4 in float32: softmax underflows to 0, log_softmax does not."""
    x = xp.asarray(np.array([[0.0, 1e4]], dtype=np.float32))
    out = F.cross_entropy(x, xp.asarray([0]))
    assert out.dtype == xp.float32 and float(out) == pytest.approx(1e4)


def test_classes():
    rng = np.random.default_rng(0)
    x, t, w = rand(rng, (4, 3), np.float64), np.array([0, 2, 1, -100]), rand(rng, (3,), np.float64, 0.1, 1)
    loss = anyloss.CrossEntropyLoss(weight=w, reduction="sum", label_smoothing=0.1)
    np.testing.assert_array_equal(loss(x, t), F.cross_entropy(x, t, weight=w, reduction="sum", label_smoothing=0.1))
    c = anyloss.CrossEntropyLoss(ignore_index=2)
    assert (c.ignore_index, c.label_smoothing, c.reduction) == (2, 0.0, "mean")
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert anyloss.CrossEntropyLoss(size_average=False).reduction == "sum"


def test_worked_example():
    # log_softmax by hand: -(x_y - log sum exp x), averaged.
    x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    want = np.mean(np.log(np.exp(x).sum(1)) - x[[0, 1], [0, 1]])
    assert float(F.cross_entropy(x, np.array([0, 1]))) == pytest.approx(want, rel=1e-14)


# ----------------------------------------------------------------- hypothesis


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    kdim=st.integers(-1, 2),  # -1: (C) input; 0: (N, C); K >= 1: K extra dims
    c=st.integers(1, 6),
    prob=st.booleans(),
    weighted=st.booleans(),
    ignore_index=st.sampled_from([-100, 0, 2, -1]),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    reduction=st.sampled_from(REDUCTIONS),
    dtype=st.sampled_from(DTYPES),
    scale=st.sampled_from([1.0, 30.0, 1e4]),
)
@HYPOTHESIS_BACKENDS
def test_hypothesis(hxp, data, kdim, c, prob, weighted, ignore_index, label_smoothing, reduction, dtype, scale):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.integers(0, 5))
    if kdim < 0:
        xshape, tshape = (c,), ()
    else:
        extra = tuple(data.draw(st.integers(0, 3)) for _ in range(kdim))
        xshape, tshape = (n, c, *extra), (n, *extra)
    x = (rand(rng, xshape, dtype) * scale).astype(dtype)
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    if weighted:
        kw["weight"] = rand(rng, (c,), dtype, 0.0, 2.0)
    xp = hypothesis_namespace(hxp)

    if prob:
        check_against_torch(NAME, (x, rand(rng, xshape, dtype, 0.0, 1.0)), kw, xp, differentiable=PROB_DIFF)
    else:
        t = class_targets(rng, tshape, c, ignore_index, data.draw(st.sampled_from([0.0, 0.3, 1.0])))
        check_against_torch(NAME, (x, t), {**kw, "ignore_index": ignore_index}, xp)
