"""Helpers shared by the compat modules: axes, shape checks, and the loss specs.

A compat loss is a :class:`anyloss.LossSpec` that is *not* put in the
registry (it is not a PyTorch loss, so ``anyloss list``/``check`` leave it
alone) but runs through the same call path: its forward and analytic
gradient serve ``anyloss.value_and_grad``/``vjp`` on NumPy, Dask and
array-api-strict, ``loss.backward()`` on PyTorch tensors and ``jax.grad``.
"""

from __future__ import annotations

import numbers
from typing import Any

from .._call import apply
from .._checks import check_number, describe, fail
from .._spec import LossSpec
from .._typing import Array, Namespace


def spec(
    name: str,
    fwd: Any,
    bwd: Any,
    argnames: tuple[Any, ...],
    differentiable: tuple[Any, ...],
    summary: str = "",
    optional: tuple[Any, ...] = (),
) -> LossSpec:
    """An unregistered spec (catalogue ``'compat'``) for ``fwd``/``bwd``."""
    return LossSpec(
        name=name,
        fwd=fwd,
        bwd=bwd,
        argnames=argnames,
        differentiable=differentiable,
        summary=summary,
        catalogue="compat",
        optional=optional,
    )


def hyperparameter(name: str, value: Any, **bounds: Any) -> Any:
    """A real hyperparameter checked (``_checks.check_number``): a Python float,
    or the 0-d array it was given as (a traced or scheduled one), which makes
    the call run plainly so that JAX or PyTorch differentiates through it."""
    check_number(name, value, **bounds)
    return float(value) if isinstance(value, numbers.Real) else value


def unreduced(s: LossSpec, xp: Namespace, arrays: tuple[Any, ...], **options: Any) -> Array:
    """Run ``s`` and return its unreduced value (optax and tf.nn reduce nothing)."""
    return apply(s, xp, arrays, "none", **options)


def axes(
    axis: Any, ndim: int, *, allow_none: bool = False, name: str = "axis", keep_order: bool = False
) -> tuple[Any, ...]:
    """``axis`` (an int, a tuple of ints, or None for all axes when allowed) as a
    tuple of non-negative axes (sorted, unless ``keep_order``); ``TypeError``/``ValueError`` naming it."""
    if axis is None and allow_none:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            fail(TypeError, name, "be an int or a tuple of ints" + (" or None" if allow_none else ""), describe(axis))
        if not -ndim <= int(a) < ndim:
            fail(ValueError, name, f"be in [-{ndim}, {ndim}) for an array of {ndim} dimensions", axis)
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        fail(ValueError, name, "not repeat an axis", axis)
    return tuple(out) if keep_order else tuple(sorted(out))


def half_at_tie(xp: Namespace, v: Any) -> Any:
    """Derivative of ``max(v, 0)``: 1 above, 0 below, and 1/2 at the tie ``v == 0``,
    which is what ``jax.grad`` gives for ``maximum`` (optax's and Keras's JAX
    backend numbers)."""
    one = xp.ones_like(v)
    return xp.where(v > 0, one, xp.where(v == 0, 0.5 * one, 0.0 * one))


def shapes_equal(name_a: str, a: Any, name_b: str, b: Any, what: str = "the same shape as") -> None:
    if tuple(a.shape) != tuple(b.shape):
        fail(ValueError, name_b, f"have {what} `{name_a}` {tuple(a.shape)}", f"shape {tuple(b.shape)}")
