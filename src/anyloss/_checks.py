"""Argument checks shared by every loss, with one message format.

Every message names the argument, says what was expected and what was received::

    `reduction` must be one of 'none', 'mean', 'sum'; got 'avg'

Checks on *values* (probabilities in [0, 1], variances >= 0, ...) go through
:func:`check_values`, which skips arrays that cannot be read without computing
them (JAX arrays under ``jit``, lazy Dask arrays); shape, dtype and option
checks always run.

Where PyTorch 2.13 raises another class than ``ValueError``/``TypeError`` for the
same bad input, a check raises one of the combined classes below, which is both
(``ValueRuntimeError`` is a ``ValueError`` and a ``RuntimeError``): code written
for anyloss and code ported from ``torch.nn.functional`` catch it alike. The
check site picks the class: the generic checks take ``kind``, the checks of
PyTorch's own rules (class-index targets, per-class weights, ...) use PyTorch's.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import array_api_compat as _compat
import numpy as np

from . import _xp
from ._typing import Namespace


class ValueRuntimeError(ValueError, RuntimeError):
    """A bad value, shape or option where PyTorch raises ``RuntimeError``
    (arrays that do not broadcast, a negative ``delta``, ``label_smoothing`` > 1,
    BCE probabilities outside [0, 1], CTC lengths, ...)."""


class ValueIndexError(ValueError, IndexError):
    """A class index out of range, where PyTorch raises ``IndexError``
    ("Target 5 is out of bounds")."""


class TypeRuntimeError(TypeError, RuntimeError):
    """A wrong dtype where PyTorch raises ``RuntimeError`` ("expected scalar type
    Long but found Double", "Subtraction ... with a bool tensor is not supported")."""


class TypeNotImplementedError(TypeError, NotImplementedError):
    """A dtype PyTorch has no kernel for, where it raises ``NotImplementedError``
    ("... not implemented for 'Long'"; a ``RuntimeError`` too, which PyTorch
    raises for other dtypes at the same check)."""


# numbers.Real and numbers.Integral as a static checker is to see them: typeshed does
# not register int and float with the ABCs (at run time they are registered), so
# `isinstance(x, numbers.Real)` on a value annotated float would look always false to
# mypy, and the code after such a check of a user's argument unreachable. These are the
# ABCs themselves; typed type[Any], the check narrows nothing.
REAL: type[Any] = numbers.Real
INTEGRAL: type[Any] = numbers.Integral


def fail(kind: type[Exception], name: str, expected: str, got: object) -> NoReturn:
    """Raise ``kind`` with the project's message format."""
    raise kind(f"`{name}` must {expected}; got {got}")


def describe(x: Any) -> str:
    """Short description of an argument for an error message."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def namespace(*, optional: Any = (), complex: Any = (), **arrays: Any) -> Any:
    """The array namespace shared by the named arrays (``None`` entries of the
    arrays named in ``optional`` ignored; a loss's are ``LossSpec.optional``;
    those named in ``complex`` may have a complex dtype, ``LossSpec.complex``).

    Raises ``TypeError`` naming the argument that is not an array, the
    arguments that come from different array libraries, or an array whose
    dtype is not real (complex, object, string, datetime: no loss takes them).
    """
    given = {k: v for k, v in arrays.items() if v is not None or k not in optional}
    for name, x in given.items():
        if not _compat.is_array_api_obj(x):
            fail(TypeError, name, "be an array (NumPy, PyTorch, JAX, Dask, CuPy or array-api-strict)", describe(x))
    xp: Namespace | None
    try:
        xp = _compat.array_namespace(*given.values())
    except TypeError:
        # NumPy arrays beside arrays of one other library are that library's, as
        # jax.numpy and Dask take them: the loss converts them (LossSpec.adopt)
        # once its namespace is known.
        others = {k: v for k, v in given.items() if v is not None and not _compat.is_numpy_array(v)}
        try:
            xp = _compat.array_namespace(*others.values()) if len(others) < len(given) else None
        except TypeError:
            xp = None
        if xp is not None:
            _check_real(_numpy(), {k: v for k, v in given.items() if k not in others}, complex)
            return _check_real(xp, others, complex)
        libs = {k: type(v).__module__.split(".")[0] + "." + type(v).__name__ for k, v in given.items()}
        first = next(iter(libs))
        for name, lib in libs.items():
            if lib != libs[first]:
                fail(TypeError, name, f"come from the same array library as `{first}` ({libs[first]})", lib)
        raise
    return _check_real(xp, given, complex)


def _check_real(xp: Namespace, given: Any, complex: Any = ()) -> Any:
    for name, x in given.items():
        if x is None or xp.isdtype(x.dtype, ("bool", "integral", "real floating")):
            continue
        if name not in complex:
            fail(TypeNotImplementedError, name, "have a real dtype (boolean, integer or floating-point)", x.dtype)
        if not xp.isdtype(x.dtype, "complex floating"):
            fail(TypeNotImplementedError, name, "have a real or complex dtype", x.dtype)
    return xp


def check_floating(xp: Namespace, name: str, x: Any, kind: type[TypeError] = TypeError) -> None:
    """``x`` must have a real floating dtype (``kind``, a ``TypeError``, otherwise)."""
    if x is not None and not xp.isdtype(x.dtype, "real floating"):
        fail(kind, name, "have a floating-point dtype", x.dtype)


def check_integer(xp: Namespace, name: str, x: Any, kind: type[TypeError] = TypeError) -> None:
    """``x`` must have an integer dtype (``kind``, a ``TypeError``, otherwise)."""
    if x is not None and not xp.isdtype(x.dtype, "integral"):
        fail(kind, name, "have an integer dtype", x.dtype)


def check_ndim(name: str, x: Any, allowed: Sequence[int], kind: type[ValueError] = ValueError) -> None:
    if x.ndim not in allowed:
        want = " or ".join(str(n) for n in allowed)
        fail(kind, name, f"be {want}-dimensional", f"shape {tuple(x.shape)}")


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any, kind: type[ValueError] = ValueError) -> None:
    """``a`` and ``b`` must have exactly the same shape (``kind``, a ``ValueError``, otherwise)."""
    if tuple(a.shape) != tuple(b.shape):
        fail(kind, name_b, f"have the same shape as `{name_a}` {tuple(a.shape)}", f"shape {tuple(b.shape)}")


def check_broadcastable(
    shape: Any, name: str, x: Any, to: str = "`input`", kind: type[ValueError] = ValueError
) -> tuple[Any, ...]:
    """``x`` must broadcast against ``shape`` (``kind``, a ``ValueError``,
    otherwise: PyTorch's is ``ValueRuntimeError``); returns the broadcast shape."""
    try:
        return _xp.broadcast_shapes(tuple(shape), tuple(x.shape))
    except ValueError:
        fail(kind, name, f"be broadcastable with {to} of shape {tuple(shape)}", f"shape {tuple(x.shape)}")


def check_target_broadcast(input: Any, target: Any, name: str = "target") -> tuple[Any, ...]:
    """PyTorch's rule for the pointwise regression losses: a ``target`` of
    another shape is broadcast against ``input`` with a ``UserWarning``
    (same text as PyTorch); one that does not broadcast is a ``ValueRuntimeError``."""
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({_torch_size(target)}) that is different to the input size "
            f"({_torch_size(input)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
    return check_broadcastable(input.shape, name, target, kind=ValueRuntimeError)


def _torch_size(x: Any) -> str:
    return f"torch.Size({list(x.shape)})"


def check_option(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """A string or enum-like option from a fixed set."""
    if not isinstance(value, str) or value not in allowed:
        want = ", ".join(repr(a) for a in allowed)
        fail(ValueError, name, f"be one of {want}", repr(value))


def check_number(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    min: float | None = None,
    min_inclusive: bool = True,
    max: float | None = None,
    kind: type[ValueError] = ValueError,
) -> None:
    """A Python (or NumPy scalar) number option such as ``margin``, ``eps`` or
    ``beta``. A real option may also be a 0-d array (a scheduled or learned
    hyperparameter, a JAX tracer under ``jit``/``grad``): its bounds are
    checked where its value can be read (see :func:`_xp.read`). Out of bounds
    is ``kind`` (a ``ValueError``), not a number ``TypeError``."""
    if not integer and _compat.is_array_api_obj(value) and not isinstance(value, numbers.Number):
        xp = _compat.array_namespace(value)
        if value.ndim != 0 or not xp.isdtype(value.dtype, ("integral", "real floating")):
            fail(TypeError, name, "be a real number or a 0-d real array", describe(value))
        value = _xp.read(value)
        if value is None:
            return
    number: type[Any] = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, number):
        fail(TypeError, name, "be an int" if integer else "be a real number", describe(value))
    # Written as "not (ok)" so that NaN fails the bound.
    if min is not None and not (value >= min if min_inclusive else value > min):
        fail(kind, name, f"be {'>=' if min_inclusive else '>'} {min}", value)
    if max is not None and not value <= max:
        fail(kind, name, f"be <= {max}", value)


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        fail(TypeError, name, "be a bool", describe(value))


def check_values(
    xp: Namespace, name: str, x: Any, ok: Callable[..., Any], expected: str, kind: type[ValueError] = ValueError
) -> Any:
    """Value check ``all(ok(xp, x))``; returns ``x``, which the caller uses from then on.

    ``ok(xp, v)`` maps an array to a boolean array. On concrete arrays it runs
    now and raises ``kind`` (a ``ValueError``). On Dask arrays it joins the
    graph: the returned array checks each block as it is computed (fused with
    the loss's own pass over it, so the data is read once) and the lazy result
    raises the same error when computed. Under ``jax.jit`` it is a
    ``jax.experimental.checkify`` check, reported where the caller wraps the
    function in ``checkify.checkify`` and a no-op elsewhere. Under
    ``torch.compile`` and ``torch.func``, and off the CPU, it is skipped (no
    graph break, no host synchronisation).
    """
    if x is None:
        return x
    if _compat.is_dask_array(x):
        # Dask's stubs type Array.map_blocks as the module function it wraps (`func`
        # first, then the array): the method is called untyped.
        blocks: Any = x
        checked = blocks.map_blocks(
            _checked_block, ok=ok, name_=name, expected=expected, kind=kind, dtype=x.dtype, meta=x._meta
        )
        checked.anyloss_checks = x  # the same array to anyloss's gradient tape (_xp.origin)
        return checked
    if _xp.size(x) == 0:
        return x
    host = _xp.on_host(xp, x)
    if host is None and not _compat.is_jax_array(x):
        return x
    hxp, (v,) = (xp, (x,)) if host is None else host
    all_ok = hxp.all(ok(hxp, v))
    good = _xp.read(all_ok)
    if good is None and _compat.is_jax_array(x):  # traced by JAX (a tracer, or a concrete array under `jit`)
        from jax.experimental import checkify

        checkify.debug_check(all_ok, f"`{name}` must {expected}; got values in [{{}}, {{}}]", xp.min(x), xp.max(x))
    elif good is not None and not good:
        fail(kind, name, expected, f"values in [{_xp.item(hxp.min(v))}, {_xp.item(hxp.max(v))}]")
    return x


@functools.cache
def _numpy() -> Any:
    """array-api-compat's NumPy namespace (imported on first use: it loads much of NumPy)."""
    import array_api_compat.numpy

    return array_api_compat.numpy


def _checked_block(block: Any, *, ok: Any, name_: Any, expected: Any, kind: Any) -> Any:
    """One Dask block of an array under :func:`check_values`, checked as it is computed."""
    if block.size and not np.all(ok(_numpy(), block)):
        fail(kind, name_, expected, f"values in [{block.min()}, {block.max()}]")
    return block


def check_any_floating(xp: Namespace, **arrays: Any) -> None:
    """At least one of the named arrays must have a real floating dtype
    (``TypeError`` naming the first otherwise). PyTorch computes a pointwise
    loss in the promoted dtype of its arrays, so an integer ``input`` with a
    floating ``target`` is fine, two integer arrays are not (its kernels are
    not implemented for them: ``TypeNotImplementedError``)."""
    if not any(xp.isdtype(x.dtype, "real floating") for x in arrays.values() if x is not None):
        (name, x), *rest = arrays.items()
        others = " or ".join(f"`{n}`" for n, _ in rest)
        fail(TypeNotImplementedError, name, f"have a floating-point dtype (or {others} one)", x.dtype)


def check_broadcasts_to(
    shape: Any, name: str, x: Any, to: str = "`input`", kind: type[ValueError] = ValueError
) -> None:
    """``x`` must broadcast to ``shape`` without enlarging it (``kind``, a
    ``ValueError``, otherwise): PyTorch's rule for a weight multiplied in place
    into the loss, as in ``binary_cross_entropy``'s ``weight``."""
    if check_broadcastable(shape, name, x, to, kind) != tuple(shape):
        fail(kind, name, f"broadcast to the shape {tuple(shape)} of {to}", f"shape {tuple(x.shape)}")


# ----------------------------------------------------------------- class-index targets

_INT64 = (-(2**63), 2**63 - 1)


def check_class_target(
    xp: Namespace,
    shape: Any,
    target: Any,
    ignore_index: Any = None,
    *,
    of: str = "`input`",
    single: bool = True,
    probabilities: bool = False,
) -> Any:
    """Class-index ``target`` for scores of ``shape`` (C), (N, C) or (N, C, d1, ..., dK),
    classes along axis 0 of (C), else axis 1 (``of`` names the scores in messages):
    an integer dtype, ``shape`` without its class axis (and PyTorch's (1) for
    (C) with ``single``), values in [0, C) or ``ignore_index`` (an int64; None:
    none). ``probabilities``: the loss also takes class probabilities of
    ``shape``, which the messages then mention. PyTorch's classes: a
    ``TypeRuntimeError`` for the dtype, ``ValueRuntimeError`` for the shapes,
    ``ValueIndexError`` for the values. Returns ``target`` (see :func:`check_values`)."""
    if ignore_index is not None:
        check_number("ignore_index", ignore_index, integer=True)
        if not _INT64[0] <= ignore_index <= _INT64[1]:
            fail(ValueError, "ignore_index", "fit in int64", ignore_index)
    shape = tuple(shape)
    if not shape:
        fail(ValueRuntimeError, "input", "have a class dimension: (C), (N, C) or (N, C, d1, ..., dK)", "shape ()")
    also = f", or class probabilities of shape {shape}" if probabilities else ""
    if not xp.isdtype(target.dtype, "integral"):
        fail(TypeRuntimeError, "target", f"have an integer dtype (class indices){also}", target.dtype)
    want = () if len(shape) == 1 else (shape[0], *shape[2:])
    if tuple(target.shape) != want and not (single and len(shape) == 1 and tuple(target.shape) == (1,)):
        fail(
            ValueRuntimeError,
            "target",
            f"have shape {want} for {of} of shape {shape} (its shape without the class dimension){also}",
            f"shape {tuple(target.shape)}",
        )
    return check_class_values(xp, target, shape[0 if len(shape) == 1 else 1], ignore_index, kind=ValueIndexError)


def check_class_values(
    xp: Namespace,
    target: Any,
    n_classes: Any,
    ignore_index: Any = None,
    *,
    name: str = "target",
    ignore_name: str = "ignore_index",
    kind: type[ValueError] = ValueError,
) -> Any:
    """Values of ``target`` in [0, ``n_classes``) or ``ignore_index`` (None: none),
    else ``kind`` (a ``ValueError``); returns ``target`` (see :func:`check_values`)."""

    def ok(xp: Namespace, t: Any) -> Any:
        if xp.isdtype(t.dtype, "integral"):
            t = xp.astype(t, _xp.index_dtype(xp, t))
        inside = (t >= 0) & (t < n_classes)
        hit = None if ignore_index is None else _xp.ignored(xp, t, ignore_index)
        return inside if hit is None else inside | hit

    also = "" if ignore_index is None else f" or {ignore_name} ({ignore_index})"
    return check_values(xp, name, target, ok, f"be class indices in [0, {n_classes}){also}", kind)


def check_class_weight(weight: Any, n_classes: Any, dtype: Any = None, *, name: str = "weight") -> None:
    """Per-class ``weight`` (None: not given): 1-D with one entry per class, and of
    ``dtype`` when given (PyTorch's class-index kernels want ``input``'s);
    PyTorch's classes: ``ValueRuntimeError``, ``TypeRuntimeError``."""
    if weight is None:
        return
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        fail(
            ValueRuntimeError,
            name,
            f"be 1-D with one entry per class, shape ({n_classes},)",
            f"shape {tuple(weight.shape)}",
        )
    if dtype is not None and weight.dtype != dtype:
        fail(TypeRuntimeError, name, f"have `input`'s dtype {dtype}", weight.dtype)
