"""Issue 7, "never a silent wrong number": fuzzing every public function and class.

Every parameter of every ``anyloss.functional`` function, of every loss
class's constructor and of its call, is given malformed values -- ``None``,
strings, lists, nested and ragged lists, dicts, huge and negative ints, NaN
and inf, bools, complex numbers, 0-d and empty arrays, arrays of the wrong
dtype (bool, complex, object, str, datetime) or the wrong number of
dimensions -- while the other arguments keep a valid value (the loss's worked
example). Nothing may crash, hang, or raise anything but ``ValueError`` or
``TypeError``; returning a result is fine (PyTorch accepts many of these too).

* ``test_catalogue_*``: every value of a fixed catalogue, in every parameter
  position (deterministic).
* ``test_hypothesis_*``: hypothesis draws one to three corrupted parameters at
  a time, from random arrays (any dtype, shape and values, NaN and inf
  included), distortions of the valid arrays and malformed scalars.
  ``HYPOTHESIS_PROFILE=long`` runs 1000 examples per test instead of 30.
"""

from __future__ import annotations

import inspect
import signal
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import anyloss
import anyloss.functional as F

ALLOWED = (ValueError, TypeError)
LOSSES = anyloss.losses()
HANG_SECONDS = 20


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` swallows it."""


@contextmanager
def deadline(seconds=HANG_SECONDS):
    def alarm(signum, frame):
        raise Hang(f"the call ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(fn, *args, **kwargs):
    """Call ``fn``; return None or the ValueError/TypeError it raised. Anything
    else (another exception, a hang) propagates and fails the test."""
    with warnings.catch_warnings(), deadline(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            fn(*args, **kwargs)
        except ALLOWED as e:
            return e
    return None


# --------------------------------------------------------------------------- targets


def _example(name):
    args, kwargs = LOSSES[name].example(np)
    return [np.array(a, copy=True) for a in args], dict(kwargs)


class Target:
    """One public callable and a valid call of it: ``params`` are its parameter
    names; ``call(**overrides)`` runs it with some of them replaced."""

    def __init__(self, id, params):
        self.id, self.params = id, params

    def __repr__(self):
        return self.id


class Functional(Target):
    def __init__(self, name):
        self.name, self.fn = name, getattr(F, name)
        super().__init__(f"F.{name}", list(inspect.signature(self.fn).parameters))

    def valid(self):
        return _example(self.name)

    def call(self, overrides):
        args, kwargs = self.valid()
        sig = inspect.signature(self.fn).parameters
        pos = list(sig)[: len(args)]
        for k, v in overrides.items():
            if k in pos:
                args[pos.index(k)] = v
            else:
                kwargs[k] = v
        return self.fn(*args, **kwargs)


def _dist(x1, x2):
    return ((x1 - x2) ** 2).sum(-1)


def _dist_vjp(x1, x2, g):
    return 2 * (x1 - x2) * g[..., None], -2 * (x1 - x2) * g[..., None]


def _asm_call():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((3, 4)).astype(np.float32), np.array([0, 5, 9])]


def _lce_call():
    args, _ = _example("linear_cross_entropy")
    return [args[0].astype(np.float32), args[2]]


# Classes whose constructor needs arguments, or whose call is not the functional's example:
# name -> (constructor kwargs, call arguments).
SPECIAL_CLASSES = {
    "LinearCrossEntropyLoss": (lambda: {"in_features": 2, "num_classes": 3}, _lce_call),
    "AdaptiveLogSoftmaxWithLoss": (lambda: {"in_features": 4, "n_classes": 10, "cutoffs": [3, 6]}, _asm_call),
    "Distance": (
        lambda: {"fn": _dist, "vjp": _dist_vjp},
        lambda: [np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[1.0, 1.0], [2.0, 0.0]])],
    ),
    "NLLLoss2d": (dict, lambda: _example("nll_loss")[0]),
}


def _class_call(cls):
    if cls.__name__ in SPECIAL_CLASSES:
        return SPECIAL_CLASSES[cls.__name__]
    for name, spec in LOSSES.items():
        if spec.cls is cls:
            args, kwargs = _example(name)
            init = inspect.signature(cls.__init__).parameters
            return (lambda: {k: v for k, v in kwargs.items() if k in init}), (lambda: _example(name)[0])  # noqa: B023
    raise LookupError(f"no valid call known for {cls.__name__}: add it to SPECIAL_CLASSES")


class Class(Target):
    """A class: its constructor's parameters and, as "call.<i>", the positional
    arguments of the instance's call."""

    def __init__(self, name):
        self.name, self.cls = name, getattr(anyloss, name)
        self.ctor, self.args = _class_call(self.cls)
        ctor = [p for p in inspect.signature(self.cls.__init__).parameters if p != "self"]
        # A Distance's call is the user's own function, run as is: only its constructor is fuzzed.
        calls = [] if name == "Distance" else [f"call.{i}" for i in range(len(self.args()))]
        super().__init__(name, ctor + calls)

    def call(self, overrides):
        kwargs = self.ctor()
        args = self.args()
        for k, v in overrides.items():
            if k.startswith("call."):
                args[int(k[5:])] = v
            else:
                kwargs[k] = v
        obj = self.cls(**kwargs)
        return obj(*args)


CLASS_NAMES = [
    n
    for n in anyloss.__all__
    if isinstance(getattr(anyloss, n), type) and n != "LossSpec" and not issubclass(getattr(anyloss, n), Exception)
]
TARGETS = [Functional(n) for n in F.__all__] + [Class(n) for n in CLASS_NAMES]
PAIRS = [(t, p) for t in TARGETS for p in t.params]


def test_targets_are_callable_as_given():
    """The valid calls the fuzzing starts from work."""
    for t in TARGETS:
        assert outcome(t.call, {}) is None, t


# --------------------------------------------------------------------------- the catalogue


class _Opaque:
    def __repr__(self):
        return "<opaque>"


CATALOGUE = {
    "None": None,
    "str": "abc",
    "empty-str": "",
    "bytes": b"x",
    "list": [1.0, 2.0],
    "int-list": [0, 1],
    "nested-list": [[1.0, 2.0], [3.0, 4.0]],
    "ragged-list": [[1.0], [2.0, 3.0]],
    "tuple": (1, 2),
    "dict": {"a": 1},
    "set": {1},
    "object": _Opaque(),
    "callable": lambda *a, **k: None,
    "int-2**64": 2**64,
    "int-10**30": 10**30,
    "int-min": -(2**63) - 1,
    "int-neg": -1,
    "int-neg-7": -7,
    "int-0": 0,
    "int-1": 1,
    "int-2": 2,
    "int-3": 3,
    "float": 0.5,
    "float-neg": -0.5,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "complex": 1 + 1j,
    "true": True,
    "false": False,
    "np-nan": np.float64("nan"),
    "np-int": np.int64(3),
    "np-bool": np.bool_(True),
    "np-float32": np.float32(0.5),
    "0d-float": np.array(1.0),
    "0d-int": np.array(1),
    "0d-nan": np.array(np.nan),
    "empty": np.zeros(0),
    "empty-int": np.zeros(0, dtype=np.int64),
    "empty-2d": np.zeros((0, 3)),
    "empty-3d": np.zeros((2, 0, 3)),
    "bool-arr": np.array([True, False, True]),
    "complex-arr": np.array([1 + 1j, 2, 3]),
    "object-arr": np.array([1.0, None, 2.0], dtype=object),
    "object-float-arr": np.array([1.0, 2.0], dtype=object),
    "str-arr": np.array(["a", "b"]),
    "datetime-arr": np.array(["2020-01-01"], dtype="datetime64[D]"),
    "float16-arr": np.ones(3, np.float16),
    "float32-2d": np.ones((2, 2), np.float32),
    "uint8-arr": np.arange(3, dtype=np.uint8),
    "uint64-arr": np.arange(3, dtype=np.uint64),
    "int-arr": np.arange(3),
    "int-arr-neg": np.array([-1, -5, 2]),
    "big-int-arr": np.array([2**62, -(2**62)]),
    "nan-arr": np.full(3, np.nan),
    "inf-arr": np.array([np.inf, -np.inf, 1.0]),
    "5d": np.zeros((2, 1, 2, 1, 2)),
    "4d-int": np.zeros((1, 2, 1, 2), dtype=np.int64),
    "non-contiguous": np.ones((4, 6))[::2, ::3],
    "matrix-ones": np.ones((3, 5)),
}


# Bugs found and not fixed yet, as strict expected failures: (target id, parameter) -> reason.
KNOWN_BUGS: dict = {}


def _marks(target, param):
    reason = KNOWN_BUGS.get((target.id, param))
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


PAIR_PARAMS = [pytest.param(t, p, id=f"{t.id}-{p}", marks=_marks(t, p)) for t, p in PAIRS]


@pytest.mark.parametrize("target, param", PAIR_PARAMS)
def test_catalogue(target, param):
    for value_id, value in CATALOGUE.items():
        try:
            outcome(target.call, {param: value})
        except Exception as e:
            raise AssertionError(f"{target.id}({param}={value_id}): {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------- hypothesis

_DTYPES = [
    np.bool_,
    np.int8,
    np.int32,
    np.int64,
    np.uint8,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex128,
]
# Sizes far beyond memory fail at once (numpy's "array is too big"); nothing in between,
# so that no size argument ever allocates gigabytes.
_HUGE = [2**62, 2**63, 2**64, 10**30, -(2**63), -(2**64)]

random_arrays = hnp.arrays(
    dtype=st.sampled_from(_DTYPES),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
)
object_arrays = st.lists(st.one_of(st.none(), st.floats(), st.integers(-3, 3), st.text(max_size=1)), max_size=4).map(
    lambda v: np.array(v, dtype=object)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.sampled_from(_HUGE),
    st.floats(),  # NaN and +-inf included
    st.complex_numbers(max_magnitude=10),
    st.text(max_size=3),
    st.lists(st.floats(-3, 3), max_size=3),
    st.lists(st.lists(st.integers(-2, 5), max_size=3), max_size=3),
    st.tuples(st.integers(-2, 5), st.integers(-2, 5)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_SPECIAL_FLOAT = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, -1e30, 1e-310]
_SPECIAL_INT = [-1, 0, -100, 2**40, -(2**40), 2**62]


def _filled(valid, v):
    with np.errstate(all="ignore"):
        return np.full(valid.shape, v, dtype=valid.dtype)


def _astype(valid, dtype):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return valid.astype(dtype)


def distortions(valid: np.ndarray):
    """Arrays close to a valid one: another dtype, one axis more or less,
    empty, grown, transposed, or filled with special values."""
    return st.one_of(
        st.sampled_from(_DTYPES).map(lambda d: _astype(valid, d)),
        st.just(valid[None]),
        st.just(valid.reshape(-1)),
        st.just(valid[0] if valid.ndim else valid),
        st.just(valid[:0] if valid.ndim else valid[None][:0]),
        st.just(np.resize(valid, tuple(d + 1 for d in valid.shape))),
        st.just(valid.T),
        st.sampled_from(_SPECIAL_INT if np.issubdtype(valid.dtype, np.integer) else _SPECIAL_FLOAT).map(
            lambda v: _filled(valid, v)
        ),
    )


def _valid_values(target):
    """The valid value of every parameter (its example value or default)."""
    if isinstance(target, Functional):
        args, kwargs = target.valid()
        sig = inspect.signature(target.fn).parameters
        values = {p.name: p.default for p in sig.values()}
        values.update(zip(list(sig), args))
        values.update(kwargs)
        return values
    sig = inspect.signature(target.cls.__init__).parameters
    values = {p.name: p.default for p in sig.values() if p.name != "self"}
    values.update(target.ctor())
    values.update({f"call.{i}": a for i, a in enumerate(target.args())})
    return values


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hypothesis(target, data):
    valid = _valid_values(target)
    params = [p for p in target.params if (target.id, p) not in KNOWN_BUGS]
    chosen = data.draw(st.lists(st.sampled_from(params), min_size=1, max_size=3, unique=True), label="params")
    overrides = {}
    for p in chosen:
        v = valid.get(p)
        options = [scalars, random_arrays, object_arrays]
        if isinstance(v, np.ndarray):
            options = [distortions(v)] * 3 + options  # mostly near-valid arrays: they reach the deeper checks
        overrides[p] = data.draw(st.one_of(*options), label=p)
    outcome(target.call, overrides)


# --------------------------------------------------------------------------- accepted only where PyTorch accepts

# Malformed values anyloss computes a result for while PyTorch raises, each with the reason
# it is fine: (function, parameter, catalogue id).
BEYOND_TORCH = {
    # A 0-d array as a real hyperparameter (scheduled, learned, a JAX tracer under jit), as
    # optax and jax.numpy accept; PyTorch wants a Python float (NaN fails a margin's bound > 0).
    **{
        (n, p, v): "0-d array hyperparameters"
        for n, ps in (
            ("gaussian_nll_loss", ("eps",)),
            ("margin_ranking_loss", ("margin",)),
            ("hinge_embedding_loss", ("margin",)),
            ("cosine_embedding_loss", ("margin",)),
            ("triplet_margin_loss", ("eps", "margin", "p")),
            ("triplet_margin_with_distance_loss", ("margin",)),
            ("multi_margin_loss", ("margin",)),
        )
        for p in ps
        for v in ("0d-float", "0d-int", "0d-nan")
        if not (p == "margin" and v == "0d-nan" and n.startswith("triplet"))
    },
    **{
        (n, p, v): "0-d array hyperparameters"
        for n, p, values in (
            ("smooth_l1_loss", "beta", ("0d-float", "0d-int")),
            ("huber_loss", "delta", ("0d-float", "0d-int")),
            ("poisson_nll_loss", "eps", ("0d-float", "0d-int", "0d-nan")),
            ("cross_entropy", "label_smoothing", ("0d-float", "0d-int")),
            ("linear_cross_entropy", "label_smoothing", ("0d-float", "0d-int")),
        )
        for v in values
    },
    # PyTorch has no uint64 kernels for these; anyloss reads the class indices / weights exactly.
    **{
        (n, "target", "uint64-arr"): "no uint64 index kernels in PyTorch"
        for n in ("nll_loss", "cross_entropy", "linear_cross_entropy")
    },
    ("binary_cross_entropy_with_logits", "pos_weight", "uint64-arr"): "no uint64 'add' kernel in PyTorch",
    # PyTorch converts these options to a C double/int64 and overflows; anyloss uses the Python number.
    **{
        (n, p, v): "PyTorch's C++ argument conversion overflows"
        for n, p, values in (
            ("gaussian_nll_loss", "eps", ("int-2**64", "int-10**30", "int-min")),
            ("triplet_margin_with_distance_loss", "margin", ("int-2**64", "int-10**30")),
            ("multi_margin_loss", "margin", ("int-2**64", "int-10**30", "int-min")),
        )
        for v in values
    },
}


def _to_torch(value, is_array):
    import torch

    if is_array and isinstance(value, (np.ndarray, np.generic)):
        return torch.from_numpy(np.array(value, copy=True))
    return value


@pytest.mark.parametrize("target", [t for t in TARGETS if isinstance(t, Functional)], ids=lambda t: t.id)
def test_catalogue_accepted_only_where_torch_accepts(target):
    """Where anyloss returns a result for a malformed value, PyTorch returns one
    too (or the case is in BEYOND_TORCH, with its reason)."""
    torch = pytest.importorskip("torch")
    arrays = set(LOSSES[target.name].argnames)
    tf = getattr(torch.nn.functional, target.name)
    accepted_beyond = set()
    for param in target.params:
        for value_id, value in CATALOGUE.items():
            if outcome(target.call, {param: value}) is not None:
                continue  # anyloss refused it
            args, kwargs = target.valid()
            pos = list(inspect.signature(target.fn).parameters)[: len(args)]
            if param in pos:
                args[pos.index(param)] = value
            else:
                kwargs[param] = value
            t_args = [_to_torch(a, name in arrays) for a, name in zip(args, pos)]
            t_kwargs = {k: _to_torch(v, k in arrays) for k, v in kwargs.items()}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tf(*t_args, **t_kwargs)
            except Exception:  # noqa: BLE001
                accepted_beyond.add((target.name, param, value_id))
    listed = {k for k in BEYOND_TORCH if k[0] == target.name}
    assert accepted_beyond == listed, (
        f"anyloss accepts where PyTorch raises: {sorted(accepted_beyond - listed)}; "
        f"listed but no longer so: {sorted(listed - accepted_beyond)}"
    )
