"""Test logic shared by every loss: PyTorch as the oracle.

A loss's test file declares data (``CASES``, ``ERRORS``) built with
:class:`Case` and :class:`Error`; the functions here run them against
``torch.nn.functional`` and ``torch.autograd``.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import anyloss
import anyloss.functional as AF

torch = pytest.importorskip("torch")
TF = torch.nn.functional


# --------------------------------------------------------------------------- conversion


def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def to_torch(x) -> torch.Tensor:
    return torch.from_numpy(np.array(to_numpy(x), copy=True))


def backend_of(xp) -> str:
    """'torch', 'jax', 'dask' or 'numpy' (NumPy, array-api-strict: no autodiff, eager)."""
    import array_api_compat as c

    for name in ("torch", "jax", "dask"):
        if getattr(c, f"is_{name}_namespace")(xp):
            return name
    return "numpy"


def to_xp(xp, a):
    """A NumPy test input as an array of the backend under test. On Dask it is
    split in two chunks along every axis longer than 1, so that every
    reduction, and every global denominator, crosses chunk boundaries. (An
    empty array stays one chunk: Dask cannot reshape an empty array of
    several chunks.)"""
    if not isinstance(a, np.ndarray):
        return a
    if backend_of(xp) == "dask":
        import dask.array as da

        return da.from_array(a, chunks=tuple(max(1, -(-n // 2)) for n in a.shape) if a.size else -1)
    return xp.asarray(a)


@contextmanager
def no_compute(xp):
    """On Dask, fail if anything is computed inside the block: building a
    loss and its gradient must stay lazy. A no-op on other backends."""
    if backend_of(xp) != "dask":
        yield
        return
    import dask

    def forbid(*args, **kwargs):
        raise AssertionError("a Dask graph was computed while the loss was being built")

    with dask.config.set(scheduler=forbid):
        yield


def value_and_pullback(xp, f, arrays, diff):
    """``f(*arrays)`` and a pullback ``ct -> gradients of arrays[i] for i in diff``,
    through each backend's own autodiff: ``.backward()`` on PyTorch tensors
    with ``requires_grad`` (filling ``.grad``), ``jax.vjp`` on JAX (the
    ``custom_vjp`` bridge), and ``anyloss.vjp`` on the backends without autodiff."""
    backend = backend_of(xp)
    if not diff:
        return f(*arrays), None
    if backend == "torch":
        arrays = list(arrays)
        for i in diff:
            arrays[i] = arrays[i].detach().requires_grad_(True)
        out = f(*arrays)
        assert out.requires_grad, "the result of tensors with requires_grad is not attached to autograd"

        def pullback(ct):
            out.backward(ct)
            return tuple(arrays[i].grad for i in diff)

        return out, pullback
    if backend == "jax":
        import jax

        def g(*d):
            full = list(arrays)
            for i, a in zip(diff, d):
                full[i] = a
            return f(*full)

        out, vjp_fn = jax.vjp(g, *(arrays[i] for i in diff))

        def pullback(ct):
            # JAX's cotangent of a complex input is the conjugate of PyTorch's
            # (each its framework's convention): compared in PyTorch's.
            return tuple(jax.numpy.conj(c) if jax.numpy.iscomplexobj(c) else c for c in vjp_fn(ct))

        return out, pullback
    return anyloss.vjp(f, *arrays, argnums=tuple(diff))


def stacked_copies(ex, n=3) -> list:
    """``n`` different copies of the example's arrays, stacked on a new leading
    axis: differentiable arrays scaled by 1, 0.97, 0.94 (probabilities stay in
    [0, 1], variances positive, signs kept); other floating arrays (+-1
    targets) repeated; integer arrays (class indices, label lists, CTC targets
    and lengths) rolled along their last axis, which keeps them valid."""
    scales = [1.0 - 0.03 * k for k in range(n)]
    out = []
    for i, a in enumerate(ex.arrays):
        if i in ex.diff:
            copies = [(a * s).astype(a.dtype) for s in scales]
        elif ex.is_float[i] or a.ndim == 0:
            copies = [a] * n
        else:
            copies = [np.roll(a, k, axis=-1) for k in range(n)]
        out.append(np.stack(copies))
    return out


# --------------------------------------------------------------------------- test data


@dataclass
class Case:
    """One oracle test: ``make(rng, dtype) -> (args, kwargs)`` builds NumPy
    inputs (floats in ``dtype``); options go in ``kwargs``."""

    id: str
    make: Callable
    grads: bool = True  # compare gradients too
    tol: dict = field(default_factory=dict)  # rtol/atol overrides, with a reason at the call site


@dataclass
class Error:
    """One bad-input test: anyloss must raise ``exc`` matching ``match`` (which
    should name the argument). ``torch_raises``: PyTorch rejects it too.
    ``needs_values``: the check reads the arrays' values, so it runs on
    concrete arrays only; on lazy Dask arrays and under ``jax.jit`` it is
    skipped (the call must then neither raise nor compute)."""

    id: str
    make: Callable
    exc: type
    match: str
    torch_raises: bool = True
    needs_values: bool = False


def cases(*cs: Case):
    return pytest.mark.parametrize("case", cs, ids=[c.id for c in cs])


def errors(*es: Error):
    return pytest.mark.parametrize("error", es, ids=[e.id for e in es])


# --------------------------------------------------------------------------- the oracle


def _bind(name, args, kwargs):
    """Parameter name of every array argument: [(slot, param_name)] where slot is
    an int (position) or a str (keyword)."""
    sig = inspect.signature(getattr(TF, name))
    sig.bind(*args, **kwargs)  # TypeError unless the call matches PyTorch's signature
    pos_names = list(sig.parameters)
    slots = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            slots.append((i, pos_names[i]))
    for k, a in kwargs.items():
        if isinstance(a, np.ndarray):
            slots.append((k, k))
    return slots


def _call_with(fn, args, kwargs, slots, arrays):
    args, kwargs = list(args), dict(kwargs)
    for (slot, _), a in zip(slots, arrays):
        if isinstance(slot, int):
            args[slot] = a
        else:
            kwargs[slot] = a
    return fn(*args, **kwargs)


def _is_float(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.inexact)  # real or complex


def torch_value_and_grads(name, args, kwargs, slots, cotangent_seed=0, want_grads=True):
    """PyTorch's value and ``autograd`` gradients (None where it gives none),
    plus the warnings it emitted and the cotangent used."""
    arrays = [_get(args, kwargs, s) for s, _ in slots]
    tensors = [to_torch(a) for a in arrays]
    for t, a in zip(tensors, arrays):
        if _is_float(a):
            t.requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _call_torch(name, args, kwargs, slots, tensors)
    ct = _cotangent(tuple(out.shape), out.dtype, cotangent_seed)
    wanted = [t for t in tensors if t.requires_grad]
    grads = [None] * len(tensors)
    if want_grads and wanted and out.requires_grad:
        try:
            got = torch.autograd.grad(out, wanted, ct, allow_unused=True)
        except (RuntimeError, NotImplementedError) as e:
            if "not implemented" not in str(e):
                raise
            got = _grads_one_by_one(out, wanted, ct)
        it = iter(got)
        grads = [next(it) if t.requires_grad else None for t in tensors]
    return out.detach(), grads, ct, [str(w.message) for w in caught]


def _grads_one_by_one(out, wanted, ct):
    """Gradients for the inputs PyTorch can differentiate, None for the others
    ('the derivative for X is not implemented')."""
    res = []
    for t in wanted:
        try:
            (g,) = torch.autograd.grad(out, [t], ct, retain_graph=True, allow_unused=True)
        except (RuntimeError, NotImplementedError):
            g = None
        res.append(g)
    return res


def _get(args, kwargs, slot):
    return args[slot] if isinstance(slot, int) else kwargs[slot]


def _cotangent(shape, dtype, seed):
    if shape == ():
        return torch.ones((), dtype=dtype)
    g = np.random.default_rng(seed).standard_normal(shape)
    return torch.from_numpy(g).to(dtype)


def assert_close(actual, expected: torch.Tensor, what: str, **tol):
    a = to_torch(actual)
    assert tuple(a.shape) == tuple(expected.shape), f"{what}: shape {tuple(a.shape)} != torch's {tuple(expected.shape)}"
    torch.testing.assert_close(a, expected, equal_nan=True, msg=lambda m: f"{what}: {m}", **tol)


def check_against_torch(
    name: str,
    args: tuple,
    kwargs: dict,
    xp,
    *,
    grads: bool = True,
    tol=None,
    cotangent_seed: int = 0,
    differentiable=None,
):
    """anyloss's ``F.<name>`` on ``xp`` arrays equals ``torch.nn.functional.<name>``:
    value (shape, dtype, numbers), warnings, and the gradient of every
    argument PyTorch differentiates (and no other). ``differentiable``
    overrides the registered spec's, for a loss whose path for these arguments
    differentiates more (``cross_entropy`` with probability targets)."""
    tol = tol or {}
    spec = anyloss.losses()[name]
    differentiable = spec.differentiable if differentiable is None else differentiable
    slots = _bind(name, args, kwargs)
    t_out, t_grads, ct, t_warnings = torch_value_and_grads(name, args, kwargs, slots, cotangent_seed, grads)

    arrays = [to_xp(xp, _get(args, kwargs, s)) for s, _ in slots]
    fn = getattr(AF, name)

    def f(*arrs):
        return _call_with(fn, args, kwargs, slots, arrs)

    diff = [
        i
        for i, ((_, pname), a) in enumerate(zip(slots, arrays))
        if pname in differentiable and xp.isdtype(a.dtype, ("real floating", "complex floating"))
    ]
    # PyTorch's warnings, and no others: none of NumPy's RuntimeWarnings at special values either.
    with warnings.catch_warnings(record=True) as caught, no_compute(xp):
        warnings.simplefilter("always")
        out, pullback = value_and_pullback(xp, f, arrays, diff if grads else [])
    a_warnings = [str(w.message) for w in caught]
    assert sorted(set(a_warnings)) == sorted(set(t_warnings)), "warnings differ from PyTorch's"

    import array_api_compat

    assert array_api_compat.array_namespace(out) is array_api_compat.array_namespace(arrays[0]), (
        "the result is not an array of the input's library"
    )
    assert_close(out, t_out, f"{name} value", **tol)
    if not grads:
        return
    # The arguments PyTorch differentiates are exactly the ones anyloss does.
    torch_diff = [i for i, g in enumerate(t_grads) if g is not None]
    names = [p for _, p in slots]
    assert [names[i] for i in diff] == [names[i] for i in torch_diff], (
        f"differentiable arguments: anyloss {[names[i] for i in diff]}, torch {[names[i] for i in torch_diff]}"
    )
    if not diff:
        return
    with warnings.catch_warnings(record=True) as caught, no_compute(xp):
        warnings.simplefilter("always")
        a_grads = pullback(xp.asarray(to_numpy(ct)) if ct.ndim else xp.ones_like(out))
    stray = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not stray, f"the gradient warns where PyTorch does not: {stray}"
    for i, g in zip(diff, a_grads):
        assert array_api_compat.array_namespace(g) is array_api_compat.array_namespace(arrays[0])
        assert_close(g, t_grads[i], f"{name} gradient of `{names[i]}`", **tol)


# PyTorch's classes that anyloss's errors do not take on: Python-level accidents
# of PyTorch's code rather than checks -- a non-tensor argument's missing
# attribute ("'list' object has no attribute 'dim'"), AdaptiveLogSoftmaxWithLoss's
# division by div_value=0. (An AttributeError escaping a call would also be
# swallowed by hasattr() and __getattr__ fallbacks.)
NOT_TORCHS = (AttributeError, ZeroDivisionError)


def torch_class(error: BaseException) -> type:
    """The built-in class of PyTorch's ``error``, the one code ported from PyTorch catches."""
    return next(c for c in type(error).__mro__ if c.__module__ == "builtins")


def assert_caught_as_torchs(error: BaseException, torch_error: BaseException) -> None:
    """``except <PyTorch's class>`` catches anyloss's ``error`` as it catches
    PyTorch's ``torch_error`` on the same input (but see ``NOT_TORCHS``)."""
    kind = torch_class(torch_error)
    if not issubclass(kind, NOT_TORCHS):
        assert isinstance(error, kind), (
            f"PyTorch raises {kind.__name__} ({torch_error}); anyloss's {type(error).__name__} is not one: {error}"
        )


def check_error(
    name: str,
    args: tuple,
    kwargs: dict,
    xp,
    exc: type,
    match: str,
    torch_raises: bool = True,
    needs_values: bool = False,
):
    """anyloss raises ``exc`` with a message matching ``match``; PyTorch raises
    too, and ``except <its class>`` catches anyloss's error as well.
    A check that ``needs_values`` moves where values cannot be read yet: on
    Dask building the loss computes and raises nothing, and computing it raises
    ``exc``; under ``jax.jit`` it traces, and ``checkify`` of the jitted call
    reports the same message."""
    arrays_args = tuple(to_xp(xp, a) for a in args)
    arrays_kwargs = {k: to_xp(xp, v) for k, v in kwargs.items()}

    def call():
        return getattr(AF, name)(*arrays_args, **arrays_kwargs)

    backend = backend_of(xp)
    raised = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if needs_values and backend == "dask":
            with no_compute(xp):
                lazy = call()
            with pytest.raises(exc, match=match) as raised:
                lazy.compute()
        else:
            with pytest.raises(exc, match=match) as raised:
                call()
        if needs_values and backend == "jax":
            import jax
            from jax.experimental import checkify

            jax.jit(call)()  # no error without checkify
            err, _ = checkify.checkify(jax.jit(call))()
            with pytest.raises(Exception, match=match):
                err.throw()
        if torch_raises:
            t_args = tuple(to_torch(a) if isinstance(a, np.ndarray) else a for a in args)
            t_kwargs = {k: to_torch(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
            with pytest.raises(Exception) as torch_raised:
                getattr(TF, name)(*t_args, **t_kwargs)
            if raised is not None:
                assert_caught_as_torchs(raised.value, torch_raised.value)


def run_case(name, case: Case, xp, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    args, kwargs = case.make(rng, np.dtype(dtype))
    check_against_torch(name, args, kwargs, xp, grads=case.grads, tol=case.tol)


def run_error(name, error: Error, xp):
    rng = np.random.default_rng(0)
    args, kwargs = error.make(rng, np.dtype("float64"))
    check_error(name, args, kwargs, xp, error.exc, error.match, error.torch_raises, error.needs_values)


def finite_difference_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f`` at ``x`` (float64), for users' own losses."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        hi = float(f(x))
        x[idx] = old - eps
        lo = float(f(x))
        x[idx] = old
        g[idx] = (hi - lo) / (2 * eps)
    return g


def rand(rng, shape, dtype, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


def signs(rng, shape, dtype):
    """Targets in {1, -1}."""
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


def re_arg(argname: str) -> str:
    """A regex that an error message names argument ``argname``."""
    return re.escape(f"`{argname}`")


def _call_torch(name, args, kwargs, slots, tensors):
    """``TF.<name>`` on ``tensors``. An argument PyTorch refuses to see with
    ``requires_grad`` ("not differentiable with respect to argument 'target'",
    as ``soft_margin_loss``'s target) has no gradient: drop it and call again."""
    while True:
        try:
            return _call_with(getattr(TF, name), args, kwargs, slots, tensors)
        except RuntimeError as e:
            m = re.search(r"not differentiable with respect to argument '(\w+)'", str(e))
            hit = [t for (_, p), t in zip(slots, tensors) if m and p == m.group(1) and t.requires_grad]
            if not hit:
                raise
            for t in hit:
                t.requires_grad_(False)


# --------------------------------------------------------------------------- case builders
# ``make(rng, dtype) -> (args, kwargs)`` builders the loss files share.


def with_options(make, **kw):
    """``make`` with options added to its kwargs; a callable option is built as
    ``option(rng, dtype)`` (after ``make``'s own arrays)."""

    def build(rng, dt):
        args, kwargs = make(rng, dt)
        return args, {**kwargs, **{k: (v(rng, dt) if callable(v) else v) for k, v in kw.items()}}

    return build


def pair(shape, tshape=None, low=-2.0, high=2.0):
    """Input of ``shape`` and target of ``tshape`` (default ``shape``), uniform in [low, high)."""
    tshape = shape if tshape is None else tshape
    return lambda rng, dt: ((rand(rng, shape, dt, low, high), rand(rng, tshape, dt, low, high)), {})


def sign_pair(shape, tshape=None, low=-2.0, high=2.0):
    """Input of ``shape`` uniform in [low, high) and +-1 targets of ``tshape`` (default ``shape``)."""
    tshape = shape if tshape is None else tshape
    return lambda rng, dt: ((rand(rng, shape, dt, low, high), signs(rng, tshape, dt)), {})


def triple(sa, sp=None, sn=None):
    """Anchor, positive and negative of shapes ``sa``, ``sp``, ``sn`` (default ``sa``)."""
    return lambda rng, dt: ((rand(rng, sa, dt), rand(rng, sp or sa, dt), rand(rng, sn or sa, dt)), {})


def uniform(shape, low=0.0, high=1.0, dtype=None):
    """An option array (a weight, say) of ``shape``, uniform in [low, high), in ``dtype`` or the case's."""
    return lambda rng, dt: rand(rng, shape, dtype or dt, low, high)


def class_targets(rng, shape, c, ignore_index=-100, ignored=0.25, dtype=np.int64):
    """Class indices in [0, c) with a share ``ignored`` of ``ignore_index``."""
    t = rng.integers(0, c, size=shape)
    t = np.where(rng.random(shape) < ignored, ignore_index, t) if ignored else t
    return np.asarray(t, dtype=dtype)


def legacy_class(cls, reduction, *args, **kwargs):
    """``cls(*args, **kwargs)`` given legacy ``size_average``/``reduce``: it warns naming
    the ``reduction`` they resolve to, and has it."""
    with pytest.warns(UserWarning, match=f"reduction='{reduction}'"):
        loss = cls(*args, **kwargs)
    assert loss.reduction == reduction
    return loss


# The property (hypothesis) tests run on NumPy and on PyTorch tensors (through
# the autograd bridge): ``@HYPOTHESIS_BACKENDS`` gives the test an ``hxp`` name.
HYPOTHESIS_BACKENDS = pytest.mark.parametrize("hxp", ["numpy", "torch"])


def hypothesis_namespace(hxp: str):
    import importlib

    return importlib.import_module(f"array_api_compat.{hxp}")


DTYPES = ("float32", "float64")
REDUCTIONS = ("none", "mean", "sum")


@functools.cache
def loss_test_module(name: str):
    """``tests/losses/test_<name>.py`` as a module: its ``CASES`` and ``ERRORS``,
    for the tests that rerun every case through another path (row blocks,
    compiled kernels, PyTorch's own kernels)."""
    path = Path(__file__).parent / "losses" / f"test_{name}.py"
    spec = importlib.util.spec_from_file_location(f"_cases_of_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_runs(monkeypatch, module):
    """Let ``module``'s accelerator (``_accel.kernels`` or ``_accel.rows``) apply at
    any size, and record the losses it ran (a ``run`` returning ``None``: the
    definition did not trace, nothing recorded)."""
    monkeypatch.setattr(module, "MIN_SIZE", 0)
    return spy_calls(monkeypatch, module, "run", declined=None)


def spy_calls(monkeypatch, module, name, declined, record=lambda spec: spec.name):
    """Wrap ``module.<name>(spec, ...)``; ``record(spec)`` (the spec's name) of each
    call that did not return ``declined``, in call order."""
    ran = []
    fn = getattr(module, name)

    def spy(spec, *args, **kwargs):
        out = fn(spec, *args, **kwargs)
        if out is not declined:
            ran.append(record(spec))
        return out

    monkeypatch.setattr(module, name, spy)
    return ran
