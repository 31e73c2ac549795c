"""Issue 7, "never a silent wrong number": the contract every registered loss keeps.

1. Bad input (``test_bad_input``): for every loss in ``anyloss.losses()``,
   each bad input that applies to it -- built from the loss's worked example
   (``spec.example``) by generic rules, plus a small per-loss table -- raises
   ``ValueError`` (bad values, shapes, options) or ``TypeError`` (wrong kinds),
   in the one message format "`name` must ...; got ..." naming the argument,
   on every backend. Checks that read values are skipped on lazy Dask arrays
   (the call must then neither raise nor compute) and trace under ``jax.jit``.
   ``test_torch_rejects_too`` runs PyTorch on the same input: it must raise a
   ``ValueError``/``TypeError`` too, except for the cases listed in
   ``TORCH_UNHELPFUL`` (where it raises another class, or nothing); and
   ``except <PyTorch's class>`` must catch anyloss's error too.
2. No mutation (``test_no_mutation_*``): read-only NumPy inputs work, are left
   unchanged, and no result or gradient shares memory with them; torch inputs
   are unchanged after ``.backward()``.
3. Extreme inputs (``test_extreme_*``): +-1e4, +-inf and NaN in every floating
   argument, empty batches, -inf log-probabilities: PyTorch's numbers (NaN
   where PyTorch gives NaN, finite where it is finite), or an error where
   PyTorch raises.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import array_api_strict
import numpy as np
import pytest
from conftest import _SELECTED, Backend

import anyloss
from helpers import assert_caught_as_torchs, backend_of, check_against_torch, no_compute, to_torch, to_xp, torch

TF = torch.nn.functional
LOSSES = anyloss.losses()
# PyTorch's catalogue (torch must reject the same inputs); tests/test_extras.py checks the extras' errors.
NAMES = [n for n, s in LOSSES.items() if s.catalogue == "torch"]
# The one message format (see _checks.fail).
MESSAGE = re.compile(r"`[^`]+` must .+; got ", re.S)


def example(name):
    """The loss's worked example as fresh NumPy arrays: (args, kwargs)."""
    args, kwargs = LOSSES[name].example(np)
    copy = lambda a: np.array(a, copy=True) if isinstance(a, np.ndarray) else a  # noqa: E731
    return tuple(copy(a) for a in args), {k: copy(v) for k, v in kwargs.items()}


def params(name):
    return inspect.signature(LOSSES[name].functional).parameters


def positional(name):
    """Names of the example's positional arguments."""
    args, _ = example(name)
    return list(params(name))[: len(args)]


def _full(shape, value):
    return lambda args: np.full(shape, value)


def _like_input(value):
    return lambda args: np.full(args[0].shape, value)


# Valid optional arrays (weights) for the examples: ``make(args) -> array``.
EXTRAS = {
    "l1_loss": {"weight": _like_input(0.5)},
    "mse_loss": {"weight": _like_input(0.5)},
    "huber_loss": {"weight": _like_input(0.5)},
    "binary_cross_entropy": {"weight": _full((3,), 0.5)},
    "binary_cross_entropy_with_logits": {"weight": _full((3,), 0.5), "pos_weight": _full((3,), 2.0)},
    "multi_margin_loss": {"weight": _full((4,), 0.5)},
    "multilabel_soft_margin_loss": {"weight": _full((2,), 0.5)},
    "nll_loss": {"weight": _full((5,), 0.5)},
    "cross_entropy": {"weight": _full((5,), 0.5)},
    "linear_cross_entropy": {"weight": _full((3,), 0.5)},
}


# --------------------------------------------------------------------------- 1. bad input


@dataclass(frozen=True)
class Bad:
    """One bad input for loss ``loss``: ``make() -> (args, kwargs)`` (NumPy) must
    raise ``exc`` naming ``arg``. ``needs_values``: the check reads values
    (skipped on Dask, traced under jit). ``foreign``: the positional argument
    at that index comes from another array library than the others."""

    loss: str
    id: str
    make: Callable
    exc: type
    arg: str
    needs_values: bool = False
    foreign: int | None = None

    @property
    def key(self):
        return (self.loss, self.id)


def changed(name, **changes):
    """``make()``: the example with arguments replaced by name (positional or
    keyword); a callable change maps the old value to the new one."""

    def make():
        args, kwargs = example(name)
        args, pos = list(args), positional(name)
        for k, v in changes.items():
            if k in pos:
                i = pos.index(k)
                args[i] = v(args[i]) if callable(v) else v
            else:
                kwargs[k] = v(kwargs.get(k)) if callable(v) else v
        return tuple(args), kwargs

    return make


def _with_extra(name, key, make):
    """``make()``: the example with the keyword array ``key`` = ``make(args)``."""

    def build():
        args, kwargs = example(name)
        return args, {**kwargs, key: make(args)}

    return build


def _grown(a):
    """Same values cycled into a shape one longer along every axis: broadcasts
    against nothing the example pairs it with."""
    return np.resize(a, tuple(d + 1 for d in a.shape))


def _array(values, dtype=None):
    return lambda old: np.array(values, dtype=dtype if dtype is not None else old.dtype)


# PyTorch computes these on integer arrays (promoting to a float result), and so does anyloss.
INT_OK = {
    "poisson_nll_loss",
    "margin_ranking_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
}
# Options PyTorch tests with a plain `if option:` (any truthy value); anyloss follows (documented).
TRUTHY = {("gaussian_nll_loss", "full"), ("triplet_margin_with_distance_loss", "swap")}
# Where the generic rule's error type or argument differs, with the reason.
OVERRIDE = {
    # PyTorch's own check (`p != 1 and p != 2`) makes any other p, a string too, a ValueError.
    ("multi_margin_loss", "p-str"): (ValueError, "p"),
    # All three arrays integer: the variance is checked first.
    ("gaussian_nll_loss", "int-inputs"): (TypeError, "var"),
}


def generic(name):
    """The bad inputs every loss of this kind must reject, from its example."""
    args, _ = example(name)
    pos, sig = positional(name), params(name)
    out = [Bad(name, "reduction", changed(name, reduction="avg"), ValueError, "reduction")]
    for i, _a in enumerate(args[1:], 1):
        out.append(Bad(name, f"shape-{pos[i]}", changed(name, **{pos[i]: _grown}), ValueError, pos[i]))
    floats = [i for i, a in enumerate(args) if np.issubdtype(a.dtype, np.floating)]
    ints = [i for i, a in enumerate(args) if np.issubdtype(a.dtype, np.integer)]
    # Floating class indices (or lengths).
    for i in ints:
        out.append(
            Bad(name, f"float-{pos[i]}", changed(name, **{pos[i]: lambda a: a.astype(np.float64)}), TypeError, pos[i])
        )
    # Integer arrays where floats are needed: every floating argument made int64.
    if name not in INT_OK:
        out.append(
            Bad(
                name,
                "int-inputs",
                changed(name, **{pos[i]: lambda a: a.astype(np.int64) for i in floats}),
                TypeError,
                pos[floats[0]],
            )
        )
    for w in ("weight", "pos_weight"):
        if w in sig:
            out.append(Bad(name, f"{w}-length", changed(name, **{w: np.ones(7)}), ValueError, w))
    # Complex arrays (no loss but l1_loss takes them, as in PyTorch; a complex weight
    # must not lose its imaginary part silently).
    if not LOSSES[name].complex:
        out.append(
            Bad(
                name,
                f"complex-{pos[0]}",
                changed(name, **{pos[0]: lambda a: a.astype(np.complex128)}),
                TypeError,
                pos[0],
            )
        )
    for w, make in EXTRAS.get(name, {}).items():
        if w in LOSSES[name].complex:
            continue
        out.append(
            Bad(
                name,
                f"complex-{w}",
                _with_extra(name, w, lambda a, make=make: make(a).astype(np.complex128)),
                TypeError,
                w,
            )
        )
    # Not arrays: None for a required array, a list for the first.
    for i in range(len(args)):
        out.append(Bad(name, f"none-{pos[i]}", changed(name, **{pos[i]: None}), TypeError, pos[i]))
    out.append(Bad(name, f"list-{pos[0]}", changed(name, **{pos[0]: lambda a: a.tolist()}), TypeError, pos[0]))
    # Options of the wrong kind: a string for a number or a bool.
    for p in sig.values():
        if (
            p.name in ("size_average", "reduce", "reduction")
            or p.default is inspect.Parameter.empty
            or (name, p.name) in TRUTHY
        ):
            continue
        if isinstance(p.default, bool):
            out.append(Bad(name, f"{p.name}-str", changed(name, **{p.name: "yes"}), TypeError, p.name))
        elif isinstance(p.default, (int, float)):
            out.append(Bad(name, f"{p.name}-str", changed(name, **{p.name: "1"}), TypeError, p.name))
    # Mixed array libraries: the second and the last positional array from another library.
    for i in sorted({1, len(args) - 1}):
        out.append(Bad(name, f"mixed-{pos[i]}", changed(name), TypeError, pos[i], foreign=i))
    return [replace(b, exc=OVERRIDE[b.key][0], arg=OVERRIDE[b.key][1]) if b.key in OVERRIDE else b for b in out]


def _b(name, id, exc, arg, needs_values=False, **changes):
    return Bad(name, id, changed(name, **changes), exc, arg, needs_values)


V = True  # needs_values
SPECIFIC = [
    # Class index out of range (the examples: nll_loss/cross_entropy C = 5, multi_margin C = 4, ...).
    *[
        b
        for n in ("nll_loss", "cross_entropy")
        for b in (
            _b(n, "class-too-big", ValueError, "target", V, target=_array([1, 5, 4])),
            _b(n, "class-negative", ValueError, "target", V, target=_array([1, -1, 4])),
        )
    ],
    _b("cross_entropy", "label_smoothing-above-1", ValueError, "label_smoothing", label_smoothing=1.5),
    _b("cross_entropy", "label_smoothing-negative", ValueError, "label_smoothing", label_smoothing=-0.1),
    _b("cross_entropy", "label_smoothing-nan", ValueError, "label_smoothing", label_smoothing=float("nan")),
    _b("nll_loss", "ignore_index-float", TypeError, "ignore_index", ignore_index=1.0),
    _b("multi_margin_loss", "class-too-big", ValueError, "target", V, target=_array([4])),
    _b("multi_margin_loss", "class-negative", ValueError, "target", V, target=_array([-1])),
    _b("multi_margin_loss", "p-3", ValueError, "p", p=3),
    _b("multi_margin_loss", "p-0", ValueError, "p", p=0),
    _b("multilabel_margin_loss", "class-too-big", ValueError, "target", V, target=_array([[3, 4, -1, 1]])),
    _b("multilabel_margin_loss", "class-below-minus-1", ValueError, "target", V, target=_array([[3, -2, -1, 1]])),
    _b("linear_cross_entropy", "class-too-big", ValueError, "target", V, target=_array([1, 3, 2])),
    _b("linear_cross_entropy", "class-negative", ValueError, "target", V, target=_array([1, -1, 2])),
    _b("linear_cross_entropy", "label_smoothing-above-1", ValueError, "label_smoothing", label_smoothing=1.5),
    _b("linear_cross_entropy", "label_smoothing-negative", ValueError, "label_smoothing", label_smoothing=-0.1),
    _b("linear_cross_entropy", "ignore_index-str", TypeError, "ignore_index", ignore_index="-100"),
    # Probabilities outside [0, 1].
    _b("binary_cross_entropy", "input-above-1", ValueError, "input", V, input=_array([0.5, 1.5, 0.2])),
    _b("binary_cross_entropy", "input-negative", ValueError, "input", V, input=_array([0.5, -0.1, 0.2])),
    _b("binary_cross_entropy", "input-nan", ValueError, "input", V, input=_array([0.5, np.nan, 0.2])),
    # Negative variance.
    _b("gaussian_nll_loss", "var-negative", ValueError, "var", V, var=_array([1.0, -0.5])),
    # CTC (example: T = 3, N = 1, C = 3, targets [[1, 2]], blank 0).
    _b("ctc_loss", "label-too-big", ValueError, "targets", V, targets=_array([[1, 3]])),
    _b("ctc_loss", "label-negative", ValueError, "targets", V, targets=_array([[1, -1]])),
    _b("ctc_loss", "label-is-blank", ValueError, "targets", V, targets=_array([[1, 0]])),
    _b("ctc_loss", "target_lengths-beyond-targets", ValueError, "target_lengths", V, target_lengths=_array([3])),
    _b("ctc_loss", "target_lengths-negative", ValueError, "target_lengths", V, target_lengths=_array([-1])),
    _b("ctc_loss", "input_lengths-beyond-T", ValueError, "input_lengths", V, input_lengths=_array([4])),
    _b("ctc_loss", "input_lengths-negative", ValueError, "input_lengths", V, input_lengths=_array([-1])),
    _b("ctc_loss", "blank-too-big", ValueError, "blank", blank=3),
    # Numbers of the wrong kind where the default is None or the generic rule does not reach.
    _b(
        "triplet_margin_with_distance_loss",
        "distance_function-str",
        TypeError,
        "distance_function",
        distance_function="euclidean",
    ),
    _b("triplet_margin_loss", "margin-list", TypeError, "margin", margin=[1.0]),
    _b("margin_ranking_loss", "margin-array", TypeError, "margin", margin=np.ones(2)),
]

BAD = [b for n in NAMES for b in generic(n)] + [b for b in SPECIFIC if b.loss in LOSSES]
assert len({b.key for b in BAD}) == len(BAD), "duplicate bad-input ids"


def _foreign_array(a, backend):
    """``a`` from another array library than ``backend``'s, not NumPy's (NumPy
    arrays beside arrays of one other library are converted to it:
    tests/test_transforms.py): PyTorch's, or array-api-strict's beside PyTorch."""
    return array_api_strict.asarray(np.asarray(a)) if backend == "torch" else to_torch(a)


@pytest.mark.parametrize("bad", BAD, ids=[f"{b.loss}-{b.id}" for b in BAD])
def test_bad_input(bad, xp):
    backend = backend_of(xp)
    args, kwargs = bad.make()
    args = [to_xp(xp, a) for a in args]
    kwargs = {k: to_xp(xp, v) for k, v in kwargs.items()}
    if bad.foreign is not None:
        if backend == "numpy":
            pytest.skip("one other library's array beside NumPy's is no error: the NumPy arrays become its")
        args[bad.foreign] = _foreign_array(example(bad.loss)[0][bad.foreign], backend)
    fn = LOSSES[bad.loss].functional

    def call():
        return fn(*args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if bad.needs_values and backend == "dask":
            with no_compute(xp):
                call()  # the check is skipped: no error, nothing computed
            return
        with no_compute(xp), pytest.raises(bad.exc) as info:
            call()
        msg = str(info.value)
        assert f"`{bad.arg}`" in msg, f"the message does not name `{bad.arg}`: {msg}"
        assert MESSAGE.match(msg), f"not the one message format '`name` must ...; got ...': {msg}"
        if bad.needs_values and backend == "jax":
            import jax

            jax.jit(call)()  # traces: the value check is skipped under jit


# PyTorch 2.13 on the same bad input, where it does not raise a ValueError or
# TypeError: (what PyTorch does, what anyloss raises). Where PyTorch raises,
# anyloss's error is of PyTorch's class too (anyloss.ValueRuntimeError, ...;
# not an AttributeError: see helpers.NOT_TORCHS). Every other case of BAD
# PyTorch rejects with a ValueError or TypeError too. "no error" is either a
# silent wrong number (a CTC label equal to blank, float CTC targets cast to
# int, a negative or NaN label_smoothing ignored, a NumPy target with a torch
# input in gaussian_nll_loss) or a value PyTorch computes that anyloss refuses by
# design (complex arrays: anyloss takes real dtypes only, but for l1_loss). "not run": CTC labels
# outside [0, C), which PyTorch's CPU kernel does not check (it reads outside
# log_probs and returns a number); the test does not execute them.
# test_torch_rejects_too keeps this table true.
TORCH_UNHELPFUL: dict[tuple[str, str], tuple[str, str]] = {
    ("l1_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("l1_loss", "int-inputs"): ("RuntimeError", "TypeError"),
    ("l1_loss", "none-input"): ("AttributeError", "TypeError"),
    ("l1_loss", "none-target"): ("AttributeError", "TypeError"),
    ("l1_loss", "list-input"): ("AttributeError", "TypeError"),
    ("mse_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("mse_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("mse_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("mse_loss", "complex-weight"): ("no error", "TypeError"),
    ("mse_loss", "none-input"): ("AttributeError", "TypeError"),
    ("mse_loss", "none-target"): ("AttributeError", "TypeError"),
    ("mse_loss", "list-input"): ("AttributeError", "TypeError"),
    ("smooth_l1_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("smooth_l1_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("smooth_l1_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("smooth_l1_loss", "none-input"): ("AttributeError", "TypeError"),
    ("smooth_l1_loss", "none-target"): ("AttributeError", "TypeError"),
    ("smooth_l1_loss", "list-input"): ("AttributeError", "TypeError"),
    ("huber_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("huber_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("huber_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("huber_loss", "complex-weight"): ("no error", "TypeError"),
    ("huber_loss", "none-input"): ("AttributeError", "TypeError"),
    ("huber_loss", "none-target"): ("AttributeError", "TypeError"),
    ("huber_loss", "list-input"): ("AttributeError", "TypeError"),
    ("soft_margin_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("soft_margin_loss", "int-inputs"): ("RuntimeError", "TypeError"),
    ("soft_margin_loss", "complex-input"): ("no error", "TypeError"),
    ("binary_cross_entropy", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("binary_cross_entropy", "weight-length"): ("RuntimeError", "ValueError"),
    ("binary_cross_entropy", "complex-input"): ("RuntimeError", "TypeError"),
    ("binary_cross_entropy", "complex-weight"): ("RuntimeError", "TypeError"),
    ("binary_cross_entropy", "none-input"): ("AttributeError", "TypeError"),
    ("binary_cross_entropy", "none-target"): ("AttributeError", "TypeError"),
    ("binary_cross_entropy", "list-input"): ("AttributeError", "TypeError"),
    ("binary_cross_entropy_with_logits", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("binary_cross_entropy_with_logits", "weight-length"): ("RuntimeError", "ValueError"),
    ("binary_cross_entropy_with_logits", "pos_weight-length"): ("RuntimeError", "ValueError"),
    ("binary_cross_entropy_with_logits", "complex-input"): ("NotImplementedError", "TypeError"),
    ("binary_cross_entropy_with_logits", "complex-weight"): ("RuntimeError", "TypeError"),
    ("binary_cross_entropy_with_logits", "complex-pos_weight"): ("RuntimeError", "TypeError"),
    ("binary_cross_entropy_with_logits", "none-input"): ("AttributeError", "TypeError"),
    ("binary_cross_entropy_with_logits", "none-target"): ("AttributeError", "TypeError"),
    ("binary_cross_entropy_with_logits", "list-input"): ("AttributeError", "TypeError"),
    ("poisson_nll_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("poisson_nll_loss", "complex-input"): ("no error", "TypeError"),
    ("gaussian_nll_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("gaussian_nll_loss", "int-inputs"): ("RuntimeError", "TypeError"),
    ("gaussian_nll_loss", "complex-input"): ("no error", "TypeError"),
    ("gaussian_nll_loss", "none-input"): ("AttributeError", "TypeError"),
    ("gaussian_nll_loss", "list-input"): ("AttributeError", "TypeError"),
    ("gaussian_nll_loss", "mixed-target"): ("no error", "TypeError"),
    ("kl_div", "shape-target"): ("RuntimeError", "ValueError"),
    ("kl_div", "int-inputs"): ("RuntimeError", "TypeError"),
    ("kl_div", "complex-input"): ("RuntimeError", "TypeError"),
    ("margin_ranking_loss", "shape-input2"): ("RuntimeError", "ValueError"),
    ("margin_ranking_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("margin_ranking_loss", "complex-input1"): ("NotImplementedError", "TypeError"),
    ("margin_ranking_loss", "none-input1"): ("AttributeError", "TypeError"),
    ("margin_ranking_loss", "none-input2"): ("AttributeError", "TypeError"),
    ("margin_ranking_loss", "none-target"): ("AttributeError", "TypeError"),
    ("margin_ranking_loss", "list-input1"): ("AttributeError", "TypeError"),
    ("margin_ranking_loss", "mixed-input2"): ("AttributeError", "TypeError"),
    ("margin_ranking_loss", "mixed-target"): ("AttributeError", "TypeError"),
    ("hinge_embedding_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("hinge_embedding_loss", "int-inputs"): ("RuntimeError", "TypeError"),
    ("hinge_embedding_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("cosine_embedding_loss", "shape-input2"): ("RuntimeError", "ValueError"),
    ("cosine_embedding_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("cosine_embedding_loss", "complex-input1"): ("NotImplementedError", "TypeError"),
    ("triplet_margin_loss", "shape-positive"): ("RuntimeError", "ValueError"),
    ("triplet_margin_loss", "shape-negative"): ("RuntimeError", "ValueError"),
    ("triplet_margin_loss", "complex-anchor"): ("no error", "TypeError"),
    ("triplet_margin_with_distance_loss", "shape-positive"): ("RuntimeError", "ValueError"),
    ("triplet_margin_with_distance_loss", "shape-negative"): ("RuntimeError", "ValueError"),
    ("triplet_margin_with_distance_loss", "complex-anchor"): ("no error", "TypeError"),
    ("triplet_margin_with_distance_loss", "none-anchor"): ("AttributeError", "TypeError"),
    ("triplet_margin_with_distance_loss", "none-positive"): ("AttributeError", "TypeError"),
    ("triplet_margin_with_distance_loss", "none-negative"): ("AttributeError", "TypeError"),
    ("triplet_margin_with_distance_loss", "list-anchor"): ("AttributeError", "TypeError"),
    ("multi_margin_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("multi_margin_loss", "float-target"): ("RuntimeError", "TypeError"),
    ("multi_margin_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("multi_margin_loss", "weight-length"): ("RuntimeError", "ValueError"),
    ("multi_margin_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("multi_margin_loss", "complex-weight"): ("RuntimeError", "TypeError"),
    ("multilabel_margin_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("multilabel_margin_loss", "float-target"): ("RuntimeError", "TypeError"),
    ("multilabel_margin_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("multilabel_margin_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("multilabel_soft_margin_loss", "shape-target"): ("RuntimeError", "ValueError"),
    ("multilabel_soft_margin_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("multilabel_soft_margin_loss", "weight-length"): ("RuntimeError", "ValueError"),
    ("multilabel_soft_margin_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("multilabel_soft_margin_loss", "complex-weight"): ("no error", "TypeError"),
    ("nll_loss", "float-target"): ("RuntimeError", "TypeError"),
    ("nll_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("nll_loss", "weight-length"): ("RuntimeError", "ValueError"),
    ("nll_loss", "complex-input"): ("NotImplementedError", "TypeError"),
    ("nll_loss", "complex-weight"): ("RuntimeError", "TypeError"),
    ("cross_entropy", "float-target"): ("RuntimeError", "TypeError"),
    ("cross_entropy", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("cross_entropy", "weight-length"): ("RuntimeError", "ValueError"),
    ("cross_entropy", "complex-input"): ("NotImplementedError", "TypeError"),
    ("cross_entropy", "complex-weight"): ("RuntimeError", "TypeError"),
    ("ctc_loss", "shape-targets"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "shape-input_lengths"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "shape-target_lengths"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "float-targets"): ("no error", "TypeError"),
    ("ctc_loss", "float-input_lengths"): ("RuntimeError", "TypeError"),
    ("ctc_loss", "float-target_lengths"): ("RuntimeError", "TypeError"),
    ("ctc_loss", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("ctc_loss", "complex-log_probs"): ("NotImplementedError", "TypeError"),
    ("linear_cross_entropy", "shape-linear_weight"): ("RuntimeError", "ValueError"),
    ("linear_cross_entropy", "float-target"): ("RuntimeError", "TypeError"),
    ("linear_cross_entropy", "int-inputs"): ("NotImplementedError", "TypeError"),
    ("linear_cross_entropy", "weight-length"): ("RuntimeError", "ValueError"),
    ("linear_cross_entropy", "complex-input"): ("RuntimeError", "TypeError"),
    ("linear_cross_entropy", "complex-weight"): ("RuntimeError", "TypeError"),
    ("linear_cross_entropy", "none-input"): ("AttributeError", "TypeError"),
    ("linear_cross_entropy", "none-linear_weight"): ("AttributeError", "TypeError"),
    ("linear_cross_entropy", "none-target"): ("AttributeError", "TypeError"),
    ("linear_cross_entropy", "list-input"): ("AttributeError", "TypeError"),
    ("linear_cross_entropy", "mixed-linear_weight"): ("AttributeError", "TypeError"),
    ("nll_loss", "class-too-big"): ("IndexError", "ValueError"),
    ("nll_loss", "class-negative"): ("IndexError", "ValueError"),
    ("cross_entropy", "class-too-big"): ("IndexError", "ValueError"),
    ("cross_entropy", "class-negative"): ("IndexError", "ValueError"),
    ("cross_entropy", "label_smoothing-above-1"): ("RuntimeError", "ValueError"),
    ("cross_entropy", "label_smoothing-negative"): ("no error", "ValueError"),
    ("cross_entropy", "label_smoothing-nan"): ("no error", "ValueError"),
    ("multi_margin_loss", "class-too-big"): ("RuntimeError", "ValueError"),
    ("multi_margin_loss", "class-negative"): ("RuntimeError", "ValueError"),
    ("multilabel_margin_loss", "class-too-big"): ("RuntimeError", "ValueError"),
    ("multilabel_margin_loss", "class-below-minus-1"): ("RuntimeError", "ValueError"),
    ("linear_cross_entropy", "class-too-big"): ("IndexError", "ValueError"),
    ("linear_cross_entropy", "class-negative"): ("IndexError", "ValueError"),
    ("linear_cross_entropy", "label_smoothing-above-1"): ("RuntimeError", "ValueError"),
    ("linear_cross_entropy", "label_smoothing-negative"): ("no error", "ValueError"),
    ("binary_cross_entropy", "input-above-1"): ("RuntimeError", "ValueError"),
    ("binary_cross_entropy", "input-negative"): ("RuntimeError", "ValueError"),
    ("binary_cross_entropy", "input-nan"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "label-too-big"): ("not run", "ValueError"),
    ("ctc_loss", "label-negative"): ("not run", "ValueError"),
    ("ctc_loss", "label-is-blank"): ("no error", "ValueError"),
    ("ctc_loss", "target_lengths-beyond-targets"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "target_lengths-negative"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "input_lengths-beyond-T"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "input_lengths-negative"): ("RuntimeError", "ValueError"),
    ("ctc_loss", "blank-too-big"): ("RuntimeError", "ValueError"),
}
# CTC labels outside [0, C): PyTorch's CPU kernel reads outside log_probs (no check).
TORCH_NOT_RUN = {("ctc_loss", "label-too-big"), ("ctc_loss", "label-negative")}


def _torch_error(name, args, kwargs, foreign=None):
    """The exception PyTorch raises on these NumPy inputs as tensors (the
    positional argument at index ``foreign`` left a NumPy array), or None."""
    t_args = [to_torch(a) if isinstance(a, np.ndarray) and i != foreign else a for i, a in enumerate(args)]
    t_kwargs = {k: to_torch(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(TF, name)(*t_args, **t_kwargs)
    except Exception as e:  # noqa: BLE001 - any error PyTorch raises is recorded
        return e
    return None


@pytest.mark.parametrize("bad", BAD, ids=[f"{b.loss}-{b.id}" for b in BAD])
def test_torch_rejects_too(bad):
    if bad.key in TORCH_NOT_RUN:
        assert TORCH_UNHELPFUL[bad.key] == ("not run", bad.exc.__name__)
        return
    args, kwargs = bad.make()
    error = _torch_error(bad.loss, args, kwargs, bad.foreign)
    outcome = "no error" if error is None else type(error).__name__
    if bad.key in TORCH_UNHELPFUL:
        assert TORCH_UNHELPFUL[bad.key] == (outcome, bad.exc.__name__)
    else:
        assert outcome in ("ValueError", "TypeError"), f"PyTorch: {outcome}; add it to TORCH_UNHELPFUL"
    if error is not None:
        if bad.foreign is not None:  # tensors beside an array of a third library (NumPy's would be adopted)
            args = [to_torch(a) if isinstance(a, np.ndarray) else a for a in args]
            args[bad.foreign] = _foreign_array(example(bad.loss)[0][bad.foreign], "torch")
        with warnings.catch_warnings(), pytest.raises(bad.exc) as raised:
            warnings.simplefilter("ignore")
            LOSSES[bad.loss].functional(*args, **kwargs)
        assert_caught_as_torchs(raised.value, error)


# --------------------------------------------------------------------------- 2. no mutation

VARIANTS = [(n, False) for n in NAMES] + [(n, True) for n in NAMES if n in EXTRAS]


def _variant(name, extras):
    args, kwargs = example(name)
    if extras:
        kwargs.update({k: make(args) for k, make in EXTRAS[name].items()})
    return args, kwargs


def _argnums(name, args):
    """Positions of the example's differentiable floating arguments."""
    pos, diff = positional(name), LOSSES[name].differentiable
    return tuple(i for i, a in enumerate(args) if pos[i] in diff and np.issubdtype(a.dtype, np.floating))


def _calls(name, args, kwargs):
    """Every result of the loss on (args, kwargs): the functional form ('mean'
    or the example's reduction, and 'none'), its value_and_grad and vjp, and
    the class form with its gradient. Each is a flat list of arrays."""
    spec = LOSSES[name]
    fn, nums = spec.functional, _argnums(name, args)
    none = {**kwargs, "reduction": "none"}
    out = [fn(*args, **kwargs), fn(*args, **none)]
    if nums:
        value, grads = anyloss.value_and_grad(fn, argnums=nums)(*args, **kwargs)
        out += [value, *grads]
        value, pullback = anyloss.vjp(fn, *args, argnums=nums, **none)
        out += [value, *pullback(np.ones_like(value))]
    init = inspect.signature(spec.cls.__init__).parameters
    if name == "linear_cross_entropy":  # the class holds the linear layer: assigning copies it in
        x, w, target = args
        loss = spec.cls(w.shape[1], w.shape[0], dtype=w.dtype, weight=kwargs.get("weight"))
        loss.linear.weight = w
        value, grads = loss.value_and_grad(x, target)
        out += [loss(x, target), value, *grads.values()]
    elif all(k in init for k in kwargs):
        loss = spec.cls(**kwargs)
        out.append(loss(*args))
        if nums:
            value, grads = anyloss.value_and_grad(loss, argnums=nums)(*args)
            out += [value, *grads]
    return out


@pytest.mark.parametrize("name, extras", VARIANTS, ids=[f"{n}-{'weighted' if e else 'plain'}" for n, e in VARIANTS])
def test_no_mutation_numpy(name, extras):
    args, kwargs = _variant(name, extras)
    inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
    saved = [a.copy() for a in inputs]
    for a in inputs:
        a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results = _calls(name, args, kwargs)
    for a, s in zip(inputs, saved):
        np.testing.assert_array_equal(a, s, err_msg="an input was modified")
    for r in results:
        assert isinstance(r, np.ndarray), f"a result is not a NumPy array: {type(r)}"
        for a in inputs:
            assert not np.shares_memory(r, a), "a result shares memory with an input"


@pytest.mark.parametrize("name, extras", VARIANTS, ids=[f"{n}-{'weighted' if e else 'plain'}" for n, e in VARIANTS])
def test_no_mutation_torch(name, extras):
    args, kwargs = _variant(name, extras)
    nums = _argnums(name, args)
    t_args = [to_torch(a).requires_grad_(i in nums) for i, a in enumerate(args)]
    t_kwargs = {k: to_torch(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    inputs = [*t_args, *(v for v in t_kwargs.values() if isinstance(v, torch.Tensor))]
    saved = [t.detach().clone() for t in inputs]
    fn = LOSSES[name].functional
    for red in (kwargs.get("reduction", "mean"), "none"):
        out = fn(*t_args, **{**t_kwargs, "reduction": red})
        if nums:
            assert out.requires_grad
            out.sum().backward()
    init = inspect.signature(LOSSES[name].cls.__init__).parameters
    if name != "linear_cross_entropy" and all(k in init for k in t_kwargs):
        out = LOSSES[name].cls(**t_kwargs)(*t_args)
        if nums:
            out.backward()
    for t, s in zip(inputs, saved):
        torch.testing.assert_close(t.detach(), s, rtol=0, atol=0, equal_nan=True, msg="an input was modified")


# --------------------------------------------------------------------------- 3. extreme inputs
# (Most edge cases live in tests/losses/test_<name>.py: saturated and infinite
# logits, probabilities exactly 0 and 1, all-ignored targets, zero-length CTC
# targets. Here every loss gets the same sweep, from its worked example.)


@dataclass(frozen=True)
class Extreme:
    loss: str
    id: str
    make: Callable  # () -> (args, kwargs), NumPy


SPECIAL = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "1e4": 1e4, "-1e4": -1e4}
SPECIAL_FOR = {"binary_cross_entropy": {"0": 0.0, "1": 1.0}}


def _set(name, i, value, where):
    def make():
        args, kwargs = example(name)
        a = args[i].copy()
        if where == "one":
            a.flat[0] = value
        else:
            a[...] = value
        return (*args[:i], a, *args[i + 1 :]), kwargs

    return make


def _empty(name, axes):
    def make():
        args, kwargs = example(name)
        return tuple(a if ax is None else np.take(a, np.arange(0), axis=ax) for a, ax in zip(args, axes)), kwargs

    return make


def _with(make, **kw):
    def build():
        args, kwargs = make()
        return args, {**kwargs, **kw}

    return build


def _ctc_impossible(zero_infinity):
    def make():  # class 2 never emitted: the target [1, 2] has probability 0
        (lp, targets, il, tl), _ = example("ctc_loss")
        lp = lp.copy()
        lp[:, :, 2] = -np.inf
        return (lp, targets, il, tl), {"zero_infinity": zero_infinity, "reduction": "none"}

    return make


# The batch axis of each positional argument (None: no batch axis); default 0 for all.
BATCH_AXES = {"ctc_loss": (1, 0, 0, 0), "linear_cross_entropy": (0, None, 0)}

EXTREMES = []
for _n in NAMES:
    _args, _ = example(_n)
    _pos = positional(_n)
    for _i, _a in enumerate(_args):
        if np.issubdtype(_a.dtype, np.floating):
            for _vid, _v in {**SPECIAL, **SPECIAL_FOR.get(_n, {})}.items():
                for _where in ("one", "all"):
                    EXTREMES.append(Extreme(_n, f"{_pos[_i]}-{_where}-{_vid}", _set(_n, _i, _v, _where)))
    # (multi_margin_loss and multilabel_margin_loss: PyTorch's 'mean' and 'sum' of an empty
    # batch read uninitialized memory; their test_empty_batch pins anyloss's NaN and 0.)
    for _red in ("none",) if _n in ("multi_margin_loss", "multilabel_margin_loss") else ("none", "mean", "sum"):
        _axes = BATCH_AXES.get(_n, (0,) * len(_args))
        EXTREMES.append(Extreme(_n, f"empty-batch-{_red}", _with(_empty(_n, _axes), reduction=_red)))
EXTREMES += [
    Extreme("ctc_loss", "impossible-target", _ctc_impossible(False)),
    Extreme("ctc_loss", "impossible-target-zero_infinity", _ctc_impossible(True)),
    Extreme("ctc_loss", "zero-length-target", changed("ctc_loss", target_lengths=_array([0]))),
    Extreme(
        "ctc_loss",
        "zero-length-target-no-frames",
        changed("ctc_loss", target_lengths=_array([0]), input_lengths=_array([0])),
    ),
    Extreme("multilabel_margin_loss", "no-labels", changed("multilabel_margin_loss", target=_array([[-1, 3, 0, 1]]))),
    *[
        Extreme(n, f"all-ignored-{red}", _with(changed(n, target=_array([-100, -100, -100])), reduction=red))
        for n in ("nll_loss", "cross_entropy", "linear_cross_entropy")
        for red in ("none", "mean", "sum")
    ],
]


def _stable_soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """PyTorch's soft_margin_loss formula log(1 + exp(-y x)) computed as softplus(-y x),
    which does not overflow (the target gets no gradient, as in PyTorch)."""
    loss = TF.softplus(-(target.detach() * input))
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


# Documented differences from PyTorch (see the loss's docstring): where PyTorch's own
# formula overflows, anyloss keeps the finite value; the oracle is PyTorch's formula
# computed without overflow.
STABLE_ORACLE = {
    ("soft_margin_loss", f"{arg}-{where}-{v}"): _stable_soft_margin_loss
    for arg, values in (("input", ("1e4", "inf", "-1e4", "-inf")), ("target", ("-1e4", "-inf")))
    for where in ("one", "all")
    for v in values
}


# array-api-strict runs NumPy's kernels underneath: the sweep runs on NumPy, PyTorch and
# JAX and Dask (there on conftest's sample of the cases). `xp` is parametrized with the
# backends directly, in place of the fixture.
EXTREME_BACKENDS = [b for b in _SELECTED if b is not Backend.ARRAY_API_STRICT]


@pytest.mark.parametrize("xp", EXTREME_BACKENDS, ids=[b.value for b in EXTREME_BACKENDS])
@pytest.mark.parametrize("case", EXTREMES, ids=[f"{e.loss}-{e.id}" for e in EXTREMES])
def test_extreme(case, xp, monkeypatch):
    """PyTorch's numbers (value and gradients, NaN and inf where PyTorch has
    them, and only there), or an error where PyTorch raises one."""
    xp = xp.namespace()
    if (case.loss, case.id) in STABLE_ORACLE:
        monkeypatch.setattr(TF, case.loss, STABLE_ORACLE[case.loss, case.id])
    args, kwargs = case.make()
    error = _torch_error(case.loss, args, kwargs)
    if error is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            check_against_torch(case.loss, args, kwargs, xp)
        return
    backend = backend_of(xp)
    x_args = [to_xp(xp, a) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if backend == "dask":  # value checks are skipped on lazy arrays; nothing may be computed
            with no_compute(xp):
                try:
                    LOSSES[case.loss].functional(*x_args, **kwargs)
                except (ValueError, TypeError):
                    pass
            return
        with pytest.raises((ValueError, TypeError), match="`") as raised:
            LOSSES[case.loss].functional(*x_args, **kwargs)
    assert_caught_as_torchs(raised.value, error)
