"""F.ctc_loss / anyloss.CTCLoss against PyTorch."""

import warnings
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import anyloss
import anyloss.functional as F
from helpers import (
    HYPOTHESIS_BACKENDS,
    Case,
    Error,
    cases,
    check_against_torch,
    errors,
    hypothesis_namespace,
    re_arg,
    run_case,
    run_error,
)

NAME = "ctc_loss"


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _problem(
    t,
    n,
    c,
    s,
    *,
    tl=None,
    il=None,
    blank=0,
    normalized=True,
    concat=False,
    pad=None,
    target_dtype=np.int64,
    length_dtype=np.int64,
    unbatched=False,
    **kw,
):
    """A CTC problem: log_probs (T, N, C), padded (N, S) or concatenated targets
    avoiding ``blank``, lengths drawn or given (callables of rng)."""

    def make(rng, dt):
        x = rng.standard_normal((t, n, c))
        lp = (_log_softmax(x) if normalized else x).astype(dt)
        labels = rng.integers(0, max(c - 1, 1), (n, s))
        labels = labels + (labels >= blank)  # classes other than blank
        tls = (tl(rng) if callable(tl) else np.asarray(tl)) if tl is not None else rng.integers(0, s + 1, n)
        ils = (il(rng) if callable(il) else np.asarray(il)) if il is not None else np.full(n, t)
        if concat:
            targets = np.concatenate([labels[i, : tls[i]] for i in range(n)]) if n else labels[:0, 0]
        else:
            targets = labels.copy()
            if pad is not None:  # what is past each length is never read
                targets[np.arange(s)[None, :] >= tls[:, None]] = pad
        if unbatched:
            lp = lp[:, 0]
            ils, tls = ils.reshape(()), tls.reshape(())
        args = (lp, targets.astype(target_dtype), ils.astype(length_dtype), tls.astype(length_dtype))
        return args, {"blank": blank, **kw}

    return make


RED = ["none", "mean", "sum"]


def _pytorch_sample(t, n, c, *, labels, tl, concat=False, target_dtype=np.int64, as_tuples=False, **kw):
    """A problem as PyTorch's own CTC samples build it (``sample_inputs_ctc_loss``
    in common_methods_invocations.py, ``module_inputs_torch_nn_CTCLoss`` in
    common_modules.py; replicated, as importing those needs PyTorch's test
    dependencies): logits from ``make_tensor``'s float range [-9, 9) through
    log_softmax, all inputs full length (T), labels drawn in ``labels`` =
    [low, high), target lengths ``tl`` (a list, or a callable of rng), lengths
    as tuples of ints (the IntArrayRef overload) with ``as_tuples``."""

    def make(rng, dt):
        lp = _log_softmax(rng.uniform(-9, 9, (t, n, c))).astype(dt)
        tls = np.asarray(tl(rng) if callable(tl) else tl)
        if concat:
            targets = rng.integers(*labels, int(tls.sum()))
        else:
            targets = rng.integers(*labels, (n, 30))
        ils = np.full(n, t)
        if as_tuples:
            ils, tls = tuple(int(v) for v in ils), tuple(int(v) for v in tls)
        return (lp, targets.astype(target_dtype), ils, tls), kw

    return make


# PyTorch's OpInfo samples: (50, 16, 20), padded (16, 30) targets, lengths in
# [10, 30), every reduction with and without zero_infinity (tuples of lengths
# for 'none' and 'sum', as there).
PYTORCH_OPINFO = [
    Case(
        f"pytorch-opinfo-{r}-zi{int(zi)}",
        _pytorch_sample(
            50,
            16,
            20,
            labels=(1, 20),
            tl=lambda rng: rng.integers(10, 30, 16),
            as_tuples=r != "mean",
            reduction=r,
            zero_infinity=zi,
        ),
    )
    for r in RED
    for zi in (True, False)
]
# PyTorch's ModuleInfo inputs for CTCLoss: (50, 3, 15), target lengths (30, 25,
# 20), padded (3, 30) or concatenated targets, int32 or int64, every reduction
# and blank=14 (labels in [0, 14) then, else [1, 15)).
PYTORCH_MODULE = [
    Case(
        f"pytorch-module-{desc}-{form}",
        _pytorch_sample(
            50,
            3,
            15,
            labels=(0, 14) if "blank" in kw else (1, 15),
            tl=[30, 25, 20],
            concat=form == "1d",
            target_dtype=np.int32 if form == "1d" else np.int64,
            as_tuples=form == "1d",
            **kw,
        ),
    )
    for desc, kw in [
        ("default", {}),
        ("sum", {"reduction": "sum"}),
        ("mean", {"reduction": "mean"}),
        ("none", {"reduction": "none"}),
        ("blank", {"blank": 14}),
    ]
    for form in ("padded", "1d")
]

CASES = [
    # PyTorch's tutorial (the CTCLoss docstring): padded targets, lengths in [10, 30).
    *[
        Case(f"tutorial-padded-{r}", _problem(50, 16, 20, 30, tl=lambda rng: rng.integers(10, 30, 16), reduction=r))
        for r in RED
    ],
    # ... and un-padded: concatenated targets, lengths in [1, 50) (long ones are impossible: inf, NaN gradients).
    Case("tutorial-unpadded", _problem(50, 16, 20, 49, tl=lambda rng: rng.integers(1, 50, 16), concat=True)),
    Case(
        "tutorial-unpadded-finite",
        _problem(50, 16, 20, 30, tl=lambda rng: rng.integers(10, 30, 16), concat=True, reduction="none"),
    ),
    *[Case(f"unbatched-{r}", _problem(8, 1, 5, 3, tl=[3], unbatched=True, concat=True, reduction=r)) for r in RED],
    Case("unbatched-padded-target", _problem(8, 1, 5, 4, tl=[2], unbatched=True, reduction="none")),
    *[
        Case(f"varying-lengths-{r}", _problem(12, 6, 6, 4, il=lambda rng: rng.integers(0, 13, 6), reduction=r))
        for r in RED
    ],
    Case("zero-length-targets", _problem(6, 4, 5, 3, tl=[0, 2, 0, 3], reduction="mean")),
    Case("all-targets-empty-concat", _problem(6, 3, 5, 0, tl=[0, 0, 0], concat=True, reduction="none")),
    Case("all-targets-empty-padded", _problem(6, 3, 5, 0, tl=[0, 0, 0], reduction="mean")),
    Case("empty-input", _problem(5, 4, 4, 2, il=[0, 0, 5, 1], tl=[0, 2, 2, 0], reduction="none")),
    Case(
        "empty-input-zero_infinity",
        _problem(5, 4, 4, 2, il=[0, 0, 5, 1], tl=[0, 2, 2, 0], reduction="sum", zero_infinity=True),
    ),
    Case("padding-garbage", _problem(10, 4, 6, 5, tl=[1, 5, 0, 3], pad=-1, reduction="none")),
    Case("blank-last", _problem(10, 4, 6, 4, blank=5, reduction="none")),
    Case("blank-middle", _problem(10, 4, 6, 4, blank=2, concat=True, reduction="sum")),
    # Not log_softmax outputs: PyTorch's gradient convention (the extra exp(log_probs) term) shows.
    *[
        Case(
            f"unnormalized-{r}",
            _problem(10, 5, 6, 4, normalized=False, il=lambda rng: rng.integers(1, 11, 5), reduction=r),
        )
        for r in RED
    ],
    Case("int32", _problem(10, 4, 6, 4, target_dtype=np.int32, length_dtype=np.int32)),
    Case("int16-uint8", _problem(10, 4, 6, 4, target_dtype=np.int16, length_dtype=np.uint8, reduction="sum")),
    Case("single-frame", _problem(1, 3, 4, 1, tl=[0, 1, 1], reduction="none")),
    Case("single-class", _problem(4, 2, 1, 0, tl=[0, 0], reduction="none")),
    # Long sequences of few classes: long log alpha and beta recursions, labels
    # repeated many times in a target (PyTorch log-adds their alpha beta in turn).
    Case("long-repeats", _problem(200, 4, 4, 50, tl=lambda rng: rng.integers(20, 51, 4), reduction="sum")),
    *PYTORCH_OPINFO,
    *PYTORCH_MODULE,
]


def _repeats(targets, il, tl, **kw):
    """Fixed targets (repeated labels need a blank between them)."""

    def make(rng, dt):
        t = max(il) + 1
        lp = _log_softmax(rng.standard_normal((t, len(il), 4))).astype(dt)
        return (lp, np.array(targets), np.array(il), np.array(tl)), kw

    return make


# [1, 1, 1] needs 5 frames (1 _ 1 _ 1), [2, 2, 3, 3] needs 6; [1, 2, 3] needs only 3.
REPEATS = ([[1, 1, 1, 0], [2, 2, 3, 3], [1, 2, 3, 0]], [3, 4, 3])
for _il, _what in [([5, 6, 3], "just-enough"), ([4, 5, 2], "one-frame-short"), ([9, 9, 9], "plenty")]:
    for _zi in [False, True]:
        CASES.append(
            Case(
                f"repeats-{_what}-zi{int(_zi)}",
                _repeats(REPEATS[0], _il, REPEATS[1], reduction="none", zero_infinity=_zi),
            )
        )
CASES += [
    Case(
        f"repeats-one-frame-short-zi{int(zi)}-mean",
        _repeats(REPEATS[0], [4, 5, 2], REPEATS[1], reduction="mean", zero_infinity=zi),
    )
    for zi in [False, True]
]
CASES += [
    # Impossible alignments: inf (NaN gradient), or 0 (zero gradient) with zero_infinity.
    *[
        Case(f"impossible-zi{int(zi)}-{r}", _problem(3, 4, 5, 6, tl=[6, 2, 4, 1], reduction=r, zero_infinity=zi))
        for zi in [False, True]
        for r in RED
    ],
]


@cases(*CASES)
def test_matches_torch(case, xp, dtype):
    run_case(NAME, case, xp, dtype)


def test_tuple_lengths(xp):
    # PyTorch's IntArrayRef overload: lengths as tuples or lists of ints.
    rng = np.random.default_rng(0)
    (lp, tg, il, tl), kw = _problem(8, 3, 5, 3)(rng, np.dtype("float64"))
    check_against_torch(NAME, (lp, tg, tuple(int(v) for v in il), [int(v) for v in tl]), kw, xp)


def test_special_values(xp, dtype):
    # A zero probability (-inf) gets a NaN gradient wherever t < input length,
    # as in PyTorch; a NaN poisons its sample (or, off the target's labels,
    # only its own gradient entry).
    rng = np.random.default_rng(0)
    (lp, tg, il, tl), _ = _problem(6, 3, 5, 2, tl=[1, 1, 2])(rng, np.dtype(dtype))
    lp[1, 0, :2] = -np.inf
    lp[2, 1, tg[1, 0] % 4 + 1] = np.nan  # a class other than sample 1's label, maybe
    lp[3, 2, tg[2, 0]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_against_torch(NAME, (lp, tg, il, tl), {"reduction": "none"}, xp)


def test_no_warning_on_impossible_alignment():
    rng = np.random.default_rng(0)
    (lp, tg, il, tl), _ = _problem(3, 2, 4, 5, tl=[5, 1])(rng, np.dtype("float64"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, g = anyloss.value_and_grad(lambda x: F.ctc_loss(x, tg, il, tl, reduction="sum"))(lp)
    assert np.isinf(value) and np.isnan(g[:, 0]).all() and np.isfinite(g[:, 1]).all()


def test_gradient_convention():
    # PyTorch's gradient is the true derivative plus exp(log_probs) * g (for t < input length):
    # check it against central differences of the loss itself, on log_probs that are not normalized.
    rng = np.random.default_rng(1)
    (lp, tg, il, tl), _ = _problem(5, 2, 4, 2, normalized=False, il=[5, 3], tl=[2, 1])(rng, np.dtype("float64"))

    def loss(x):
        return float(F.ctc_loss(x, tg, il, tl, reduction="sum"))

    _, g = anyloss.value_and_grad(lambda x: F.ctc_loss(x, tg, il, tl, reduction="sum"))(lp)
    eps, fd = 1e-6, np.zeros_like(lp)
    for idx in np.ndindex(lp.shape):
        hi, lo = lp.copy(), lp.copy()
        hi[idx] += eps
        lo[idx] -= eps
        fd[idx] = (loss(hi) - loss(lo)) / (2 * eps)
    frames = np.arange(5)[:, None, None] < il[None, :, None]
    np.testing.assert_allclose(g, fd + np.where(frames, np.exp(lp), 0.0), atol=1e-6)


def test_worked_example():
    # Target [1, 2] over 3 frames of uniform probabilities 1/3: 5 alignments, loss -log(5/27).
    lp = np.log(np.full((3, 1, 3), 1 / 3))
    args = (lp, np.array([[1, 2]]), np.array([3]), np.array([2]))
    np.testing.assert_allclose(F.ctc_loss(*args, reduction="none"), [np.log(27 / 5)])
    np.testing.assert_allclose(F.ctc_loss(*args), np.log(27 / 5) / 2)  # 'mean' divides by the target length
    spec_args, spec_kwargs = anyloss.losses()[NAME].example(np)
    np.testing.assert_allclose(F.ctc_loss(*spec_args, **spec_kwargs), np.log(27 / 5) / 2)


def test_class_matches_functional():
    rng = np.random.default_rng(0)
    args, _ = _problem(8, 3, 5, 3)(rng, np.dtype("float64"))
    loss = anyloss.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    assert (loss.blank, loss.reduction, loss.zero_infinity) == (0, "sum", True)
    np.testing.assert_array_equal(loss(*args), F.ctc_loss(*args, reduction="sum", zero_infinity=True))


def _bad(**over):
    """A valid small problem with one thing changed (a value or a callable of the args)."""

    def make(rng, dt):
        lp = _log_softmax(rng.standard_normal((6, 3, 5))).astype(dt)
        args = {
            "log_probs": lp,
            "targets": np.array([[1, 2, 3], [4, 4, 0], [2, 0, 0]]),
            "input_lengths": np.array([6, 5, 4]),
            "target_lengths": np.array([3, 2, 1]),
        }
        kwargs = {}
        for k, v in over.items():
            v = v(dict(args)) if callable(v) else v
            (args if k in args else kwargs)[k] = v
        return tuple(args.values()), kwargs

    return make


ERRORS = [
    Error("reduction", _bad(reduction="avg"), ValueError, re_arg("reduction")),
    Error("blank-too-big", _bad(blank=5), ValueError, re_arg("blank")),
    Error("blank-negative", _bad(blank=-1), ValueError, re_arg("blank")),
    Error("blank-float", _bad(blank=1.0), TypeError, re_arg("blank")),
    Error("zero_infinity-int", _bad(zero_infinity=1), TypeError, re_arg("zero_infinity")),
    Error(
        "log_probs-int", _bad(log_probs=lambda a: np.zeros((6, 3, 5), dtype=np.int64)), TypeError, re_arg("log_probs")
    ),
    Error("log_probs-1d", _bad(log_probs=lambda a: a["log_probs"][:, 0, 0]), ValueError, re_arg("log_probs")),
    Error("log_probs-4d", _bad(log_probs=lambda a: a["log_probs"][None]), ValueError, re_arg("log_probs")),
    Error(
        "log_probs-empty-batch",
        _bad(
            log_probs=lambda a: a["log_probs"][:, :0],
            targets=np.zeros((0, 3), int),
            input_lengths=np.zeros(0, int),
            target_lengths=np.zeros(0, int),
        ),
        ValueError,
        re_arg("log_probs"),
    ),
    Error(
        "log_probs-no-frames",
        _bad(log_probs=lambda a: a["log_probs"][:0], input_lengths=np.zeros(3, int)),
        ValueError,
        re_arg("log_probs"),
    ),
    Error("targets-3d", _bad(targets=lambda a: a["targets"][:, None]), ValueError, re_arg("targets")),
    Error("targets-rows", _bad(targets=lambda a: a["targets"][:2]), ValueError, re_arg("targets")),
    # PyTorch silently truncates float targets to int64; class indices must be integers here.
    Error(
        "targets-float",
        _bad(targets=lambda a: a["targets"].astype(np.float64)),
        TypeError,
        re_arg("targets"),
        torch_raises=False,
    ),
    # PyTorch does not check labels (out of range it reads arbitrary memory), so it is not run on these.
    Error(
        "label-too-big",
        _bad(targets=np.array([[1, 2, 5], [4, 4, 0], [2, 0, 0]])),
        ValueError,
        re_arg("targets"),
        torch_raises=False,
    ),
    Error(
        "label-negative",
        _bad(targets=np.array([[1, 2, 3], [-1, 4, 0], [2, 0, 0]])),
        ValueError,
        re_arg("targets"),
        torch_raises=False,
    ),
    Error(
        "label-is-blank",
        _bad(targets=np.array([[1, 0, 3], [4, 4, 0], [2, 0, 0]])),
        ValueError,
        re_arg("targets"),
        torch_raises=False,
    ),
    Error(
        "label-is-blank-concat",
        _bad(targets=np.array([1, 2, 3, 4, 0, 2])),
        ValueError,
        re_arg("targets"),
        torch_raises=False,
    ),
    Error(
        "label-is-other-blank",
        _bad(targets=np.array([[1, 2, 3], [4, 4, 0], [2, 0, 0]]), blank=4),
        ValueError,
        re_arg("targets"),
        torch_raises=False,
    ),
    Error("input_lengths-float", _bad(input_lengths=np.array([6.0, 5.0, 4.0])), TypeError, re_arg("input_lengths")),
    Error("target_lengths-float", _bad(target_lengths=np.array([3.0, 2.0, 1.0])), TypeError, re_arg("target_lengths")),
    Error("input_lengths-size", _bad(input_lengths=np.array([6, 5])), ValueError, re_arg("input_lengths")),
    Error("target_lengths-size", _bad(target_lengths=np.array([3, 2, 1, 1])), ValueError, re_arg("target_lengths")),
    Error("input_lengths-beyond-T", _bad(input_lengths=np.array([7, 5, 4])), ValueError, re_arg("input_lengths")),
    Error("input_lengths-negative", _bad(input_lengths=np.array([6, -1, 4])), ValueError, re_arg("input_lengths")),
    Error("target_lengths-beyond-S", _bad(target_lengths=np.array([4, 2, 1])), ValueError, re_arg("target_lengths")),
    Error("target_lengths-negative", _bad(target_lengths=np.array([3, -1, 1])), ValueError, re_arg("target_lengths")),
    Error("target_lengths-concat-sum", _bad(targets=np.array([1, 2, 3, 4, 4])), ValueError, re_arg("target_lengths")),
    Error(
        "target_lengths-concat-negative",
        _bad(targets=np.array([1, 2, 3, 4, 4]), target_lengths=np.array([3, 3, -1])),
        ValueError,
        re_arg("target_lengths"),
    ),
    Error("lengths-int", _bad(input_lengths=6), TypeError, re_arg("input_lengths")),
    Error("lengths-tuple-of-floats", _bad(target_lengths=(3.0, 2.0, 1.0)), TypeError, re_arg("target_lengths")),
]


# Checks on values (lengths, labels): skipped on Dask arrays and under jax.jit, as documented.
ERRORS = [
    replace(e, needs_values=True)
    if e.id.startswith(("label-", "input_lengths-", "target_lengths-")) and not e.id.endswith(("-float", "-size"))
    else e
    for e in ERRORS
]


@errors(*ERRORS)
def test_errors(error, xp):
    run_error(NAME, error, xp)


@st.composite
def _random_problem(draw):
    t, n, c = draw(st.integers(1, 10)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    blank = draw(st.integers(0, c - 1))
    s = draw(st.integers(0, 5)) if c > 1 else 0
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(
        t=t,
        n=n,
        c=c,
        s=s,
        blank=blank,
        seed=seed,
        concat=draw(st.booleans()),
        normalized=draw(st.booleans()),
        unbatched=n == 1 and draw(st.booleans()),
        scale=draw(st.sampled_from([1.0, 30.0])),
        reduction=draw(st.sampled_from(RED)),
        zero_infinity=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
    )


@settings(max_examples=25, deadline=None)
@given(_random_problem())
@HYPOTHESIS_BACKENDS
def test_random_against_torch(hxp, p):
    xp = hypothesis_namespace(hxp)

    rng = np.random.default_rng(p["seed"])
    lp = rng.standard_normal((p["t"], p["n"], p["c"]))
    if p["normalized"]:  # large logits: probabilities down to ~e^-200
        lp = _log_softmax(lp * p["scale"])
    labels = rng.integers(0, max(p["c"] - 1, 1), (p["n"], p["s"]))
    labels = labels + (labels >= p["blank"])
    tl = rng.integers(0, p["s"] + 1, p["n"])
    il = rng.integers(0, p["t"] + 1, p["n"])
    targets = np.concatenate([labels[i, : tl[i]] for i in range(p["n"])]) if p["concat"] else labels
    lp = lp.astype(p["dtype"])
    if p["unbatched"]:
        lp, il, tl = lp[:, 0], il.reshape(()), tl.reshape(())
    kw = {"blank": p["blank"], "reduction": p["reduction"], "zero_infinity": p["zero_infinity"]}
    check_against_torch(NAME, (lp, targets, il, tl), kw, xp)
