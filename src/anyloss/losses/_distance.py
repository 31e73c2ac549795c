"""Pairwise distance (forward and VJP) and the triplet hinge, shared by
F.triplet_margin_loss and F.triplet_margin_with_distance_loss, and
anyloss.Distance: a distance function that carries its own analytic gradient.

``torch.pairwise_distance(x1, x2, p, eps)`` is the ``p``-norm of
``x1 - x2 + eps`` over the last dimension of the broadcast inputs (the
``eps`` is added to the difference, not to the norm). Its gradient follows
PyTorch's ``norm_backward`` branch by branch, so the subgradients at a zero
difference are PyTorch's.

``p``, ``eps`` and ``margin`` may be 0-d arrays (a scheduled or learned value,
a JAX tracer under ``jit``): they are cast to the distances' dtype (a Python
float does not widen it either), and nothing branches on an array's value. An
array ``p`` takes the general formula ``sum(|d|**p) ** (1/p)``, which gives
PyTorch's numbers at ``p = 1`` and ``p = 2`` too (to the ulp, as the special
formulas do) and is differentiable in ``p``; selects give the orders it does
not cover (0, +-inf, a last dimension of size 1).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import array_api_compat as _compat

from .._checks import ValueRuntimeError, check_number, describe, fail, namespace
from .._typing import Array, Namespace
from .._xp import as_float, broadcast_shapes, device, read, result_float_dtype, sum_to_shape, vecdot


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number)


def _in_dtype(xp: Namespace, v: Any, dtype: Any) -> Any:
    """A hyperparameter for arithmetic in ``dtype``: a Python number as it is,
    a 0-d array cast to ``dtype``."""
    if _is_number(v):
        return v
    return xp.astype(v, dtype) if _compat.array_namespace(v) is xp else xp.asarray(v, dtype=dtype)


# --------------------------------------------------------------------------- pairwise distance


def pairwise_distance_fwd(xp: Namespace, x1: Any, x2: Any, p: float, eps: float) -> Any:
    """``(||x1 - x2 + eps||_p over the last axis, res)``."""
    diff = _difference(xp, x1, x2)
    diff = diff + _in_dtype(xp, eps, diff.dtype)
    shape, scalar = diff.shape, diff.ndim == 0
    if scalar:
        # A 0-d difference is its own 1-element last dimension (PyTorch's dim=-1
        # on a scalar), but PyTorch reduces it with the full formula.
        diff = xp.reshape(diff, (1,))
    norm = _norm(xp, diff, p, single=not scalar)
    return xp.squeeze(norm, axis=-1), (diff, norm, shape)


def pairwise_distance_bwd(xp: Namespace, res: Any, g: Any, p: float, second: bool = True) -> Any:
    """``(g1, g2)``: cotangents of ``x1`` and ``x2`` (in the broadcast shape);
    ``g2`` is None unless ``second``."""
    diff, norm, shape = res
    g = xp.expand_dims(g, axis=-1)
    gd = _norm_vjp(xp, diff, norm, g, p)
    gd = xp.reshape(gd, shape)
    return gd, -gd if second else None


def _difference(xp: Namespace, x1: Any, x2: Any) -> Any:
    """``x1 - x2`` with PyTorch's promotion. Integers are subtracted in their
    own dtype (wrapping around, as PyTorch does), and only adding ``eps``
    makes them floating: the default float32."""
    if xp.isdtype(x1.dtype, "real floating") or xp.isdtype(x2.dtype, "real floating"):
        dtype = result_float_dtype(xp, x1, x2)
        return as_float(xp, x1, dtype) - as_float(xp, x2, dtype)
    return xp.astype(x1 - x2, xp.float32)


def _norm(xp: Namespace, d: Any, p: Any, single: bool = True) -> Any:
    """PyTorch's vector ``p``-norm of ``d`` over its last axis (keepdims)."""
    if d.shape[-1] == 0:
        # An empty sum: 0 for every order PyTorch accepts here (NaN included).
        return xp.zeros((*d.shape[:-1], 1), dtype=d.dtype, device=device(d))
    a = xp.abs(d)
    if not _is_number(p):
        return _norm_array(xp, d, a, _in_dtype(xp, p, d.dtype), single)
    if p == 0:
        return xp.sum(xp.astype(d != 0, d.dtype), axis=-1, keepdims=True)
    if single and d.shape[-1] == 1:
        # PyTorch reduces a last dimension of size 1 to |d| for every other
        # order (NaN included): no power that could overflow or underflow.
        return a
    if p == 1:
        return xp.sum(a, axis=-1, keepdims=True)
    if p == 2:
        return xp.sqrt(vecdot(xp, d, d)[..., None])  # sum(d * d, axis=-1) in one pass
    if p == math.inf:
        return xp.max(a, axis=-1, keepdims=True)
    if p == -math.inf:
        return xp.min(a, axis=-1, keepdims=True)
    return xp.sum(a**p, axis=-1, keepdims=True) ** (1.0 / p)


def _norm_array(xp: Namespace, d: Any, a: Any, p: Any, single: Any) -> Any:
    """``_norm`` for a 0-d array ``p`` (of ``d``'s dtype): the general formula,
    with selects for the orders it does not give (0: a count; +-inf: the largest
    or smallest ``|d|``; a last dimension of size 1: ``|d|``). The general
    formula runs at a harmless order (1) where it is not selected, so that its
    derivative stays finite there."""
    count = xp.sum(xp.astype(d != 0, d.dtype), axis=-1, keepdims=True)
    zero = p == 0
    if single and d.shape[-1] == 1:
        return xp.where(zero, count, a)
    inf = xp.isinf(p)
    q = xp.where(zero | inf, xp.ones_like(p), p)
    general = xp.sum(a**q, axis=-1, keepdims=True) ** (1.0 / q)
    extreme = xp.where(p > 0, xp.max(a, axis=-1, keepdims=True), xp.min(a, axis=-1, keepdims=True))
    return xp.where(zero, count, xp.where(inf, extreme, general))


def _norm_vjp(xp: Namespace, d: Any, norm: Any, g: Any, p: Any) -> Any:
    """PyTorch's ``norm_backward``, one branch per order, in its order."""
    if not _is_number(p):
        return _norm_vjp_array(xp, d, norm, g, _in_dtype(xp, p, d.dtype))
    if p == 0:
        # A count of non-zeros is flat: PyTorch gives no gradient at all.
        return xp.zeros_like(d)
    if p == 1:
        return xp.sign(d) * g
    if p == 2:
        # A zero norm gets a zero gradient (PyTorch's masked_fill), not NaN: the
        # per-row factor is 0 there (d itself may be nonzero when d * d underflows).
        zero_norm = norm == 0
        safe = xp.where(zero_norm, xp.ones_like(norm), norm)
        return d * xp.where(zero_norm, xp.zeros_like(norm), g / safe)
    if math.isinf(p):
        # The gradient of max|d| (min|d|) is shared equally among the ties (and NaNs).
        a = xp.abs(d)
        mask = xp.astype((a == norm) | xp.isnan(a), d.dtype)
        return xp.sign(d) * ((g / xp.sum(mask, axis=-1, keepdims=True)) * mask)
    if p < 1:
        # |d|^(p-1) is infinite at d = 0: PyTorch takes 0 there.
        safe = xp.where(d == 0, xp.ones_like(d), xp.abs(d))
        scaled = xp.where(d == 0, xp.zeros_like(d), xp.sign(d) * _pow(xp, safe, p - 1))
        return scaled * g * _pow(xp, norm, 1 - p)
    if p < 2:
        scaled = xp.sign(d) * _pow(xp, xp.abs(d), p - 1)
    else:  # p > 2, or NaN
        scaled = d * _pow(xp, xp.abs(d), p - 2)
    # As for p = 2, a zero norm gets a zero gradient.
    safe = xp.where(norm == 0, xp.ones_like(norm), norm)
    scale = xp.where(norm == 0, xp.zeros_like(norm), g / _pow(xp, safe, p - 1))
    return scaled * scale


def _norm_vjp_array(xp: Namespace, d: Any, norm: Any, g: Any, p: Any) -> Any:
    """``_norm_vjp`` for a 0-d array ``p``: PyTorch's branches, selected by value.
    The finite orders share one form, sign(d) |d|^(p-1) g / norm^(p-1), 0 where
    d = 0 or norm = 0 (it is each of PyTorch's: exactly at p = 1 and 2); each
    branch runs on safe values where it is not selected (no warning, no NaN)."""
    a, s = xp.abs(d), xp.sign(d)
    zeros = xp.zeros_like(d)
    # p = +-inf: shared equally among the ties (and NaNs).
    mask = xp.astype((a == norm) | xp.isnan(a), d.dtype)
    ties = xp.sum(mask, axis=-1, keepdims=True)
    extreme = s * ((g / xp.where(ties == 0, xp.ones_like(ties), ties)) * mask)
    # Finite p != 0.
    inf = xp.isinf(p)
    q = xp.where(inf | (p == 0), xp.ones_like(p), p)
    at_zero, norm_zero = d == 0, norm == 0
    scaled = xp.where(at_zero, zeros, s * xp.where(at_zero, xp.ones_like(a), a) ** (q - 1))
    safe = xp.where(norm_zero, xp.ones_like(norm), norm)
    finite = scaled * xp.where(norm_zero, xp.zeros_like(norm), g / safe ** (q - 1))
    return xp.where(p == 0, zeros, xp.where(inf, extreme, finite))


def _pow(xp: Namespace, x: Any, e: Any) -> Any:
    """``x ** e`` as PyTorch's ``pow(Tensor, Scalar)`` computes it: its special
    cases round (and overflow) differently from a general power, e.g.
    ``x.pow(-2)`` is ``1 / (x * x)``, which is 0, not a subnormal, for a large float32 ``x``."""
    if e == 1:
        return x
    if e == 2:
        return x * x
    if e == 3:
        return x * x * x
    if e == -2:
        return 1.0 / (x * x)
    if e == -1:
        return 1.0 / x
    if e == 0.5:
        return xp.sqrt(x)
    if e == -0.5:
        return 1.0 / xp.sqrt(x)
    return x**e


def check_pairwise_shapes(x1_name: Any, x1: Any, x2_name: Any, x2: Any, p: Any) -> tuple[Any, ...]:
    """Shape of the distance of ``x1`` and ``x2``: they must broadcast, and an
    empty last dimension has no ``p``-norm for ``p < 0`` or infinite ``p``
    (PyTorch: "the operation does not have an identity")."""
    try:
        shape = broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        fail(
            ValueRuntimeError,
            x2_name,
            f"be broadcastable with `{x1_name}` of shape {tuple(x1.shape)}",
            f"shape {tuple(x2.shape)}",
        )
    if not _is_number(p):
        p = read(p)  # None: unreadable (traced), not checked
    if shape and shape[-1] == 0 and p is not None and (p < 0 or math.isinf(p)):
        fail(
            ValueRuntimeError, "p", "be >= 0 and finite when the last dimension is empty (the norm has no identity)", p
        )
    return shape[:-1]


def check_triplet_ndim(anchor: Any, positive: Any, negative: Any) -> None:
    """The three inputs of a triplet loss have the same number of dimensions."""
    for name, x in (("positive", positive), ("negative", negative)):
        if x.ndim != anchor.ndim:
            fail(ValueRuntimeError, name, f"have as many dimensions as `anchor` ({anchor.ndim})", f"{x.ndim}")


def check_triplet_shapes(anchor: Any, positive: Any, negative: Any, swap: bool, p: float | Array = 2.0) -> None:
    """PyTorch's shape rules for the triplet losses: the same number of
    dimensions, each pair of distances' inputs broadcastable, and the
    distances broadcastable against each other."""
    check_triplet_ndim(anchor, positive, negative)
    shapes = [
        check_pairwise_shapes("anchor", anchor, "positive", positive, p),
        check_pairwise_shapes("anchor", anchor, "negative", negative, p),
    ]
    if swap:
        shapes.append(check_pairwise_shapes("positive", positive, "negative", negative, p))
    try:
        broadcast_shapes(*shapes)
    except ValueError:
        fail(
            ValueRuntimeError,
            "negative",
            f"give distances broadcastable with those of `positive` {shapes[0]}",
            f"distances of shape {shapes[1]}",
        )


# --------------------------------------------------------------------------- the triplet hinge


def triplet_hinge(xp: Namespace, margin: Any, d_pos: Any, d_neg: Any, d_swap: Any = None) -> Any:
    """``max(margin + d(a, p) - d(a, n), 0)``; with ``d_swap`` = d(p, n),
    ``d(a, n)`` is replaced by ``min(d(a, n), d(p, n))`` (the distance swap).
    Returns ``(loss, res)``."""
    d_min = d_neg if d_swap is None else xp.minimum(d_neg, d_swap)
    if not _is_number(margin) and xp.isdtype(d_pos.dtype, "real floating"):
        margin = _in_dtype(xp, margin, d_pos.dtype)  # a 0-d array does not widen the distances
    z = margin + d_pos - d_min
    # clip keeps a NaN distance NaN, as PyTorch's clamp_min does.
    return xp.clip(z, min=0.0), (z >= 0, d_pos.shape, d_neg, d_swap)


def triplet_hinge_vjp(xp: Namespace, res: Any, g: Any) -> Any:
    """Cotangents of ``(d_pos, d_neg, d_swap)`` (``None`` without a swap)."""
    active, pos_shape, d_neg, d_swap = res
    # clamp_min passes the gradient at exactly 0 (PyTorch's self >= min).
    gz = xp.where(active, g, xp.zeros_like(g))
    g_pos = sum_to_shape(xp, gz, pos_shape)
    if d_swap is None:
        return g_pos, sum_to_shape(xp, -gz, d_neg.shape), None
    # PyTorch's minimum gives a tie half the gradient on each side.
    zero = xp.zeros_like(gz)
    tie = d_neg == d_swap
    g_neg = xp.where(tie, -gz / 2, xp.where(d_neg > d_swap, zero, -gz))
    g_swap = xp.where(tie, -gz / 2, xp.where(d_swap > d_neg, zero, -gz))
    return g_pos, sum_to_shape(xp, g_neg, d_neg.shape), sum_to_shape(xp, g_swap, d_swap.shape)


# --------------------------------------------------------------------------- anyloss.Distance


class Distance:
    """A distance function for :func:`anyloss.functional.triplet_margin_with_distance_loss`,
    with an optional analytic gradient.

    ``fn(x1, x2)`` returns the distances between ``x1`` and ``x2`` (for rows
    of shape (N, D), one per row: shape (N)). ``vjp(x1, x2, g)`` returns
    ``(g1, g2)``, the cotangents of ``x1`` and ``x2`` given the cotangent
    ``g`` of the distances (they may have the broadcast shape of ``x1`` and
    ``x2``; anyloss sums them back).

    On PyTorch tensors that require grad, or under ``jax.grad``, ``fn``
    alone is enough: it is differentiated by the framework. On NumPy and the
    other libraries without autograd, ``anyloss.value_and_grad``/``grad``/
    ``vjp`` need ``vjp``; a plain callable (or a ``Distance`` without ``vjp``)
    computes values only.

    ``Distance.pairwise(p, eps)`` is PyTorch's ``pairwise_distance`` with
    its gradient; it is the default distance of the triplet losses.

    Example:
        >>> import numpy as np, anyloss
        >>> d = anyloss.Distance(lambda x1, x2: ((x1 - x2) ** 2).sum(-1),
        ...                      lambda x1, x2, g: (2 * (x1 - x2) * g[..., None], -2 * (x1 - x2) * g[..., None]))
        >>> d(np.array([[0.0, 1.0]]), np.array([[2.0, 1.0]]))
        array([4.])
    """

    def __init__(
        self,
        fn: Callable[[Any, Any], Array],
        vjp: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            fail(TypeError, "fn", "be callable (x1, x2) -> distances", describe(fn))
        if vjp is not None and not callable(vjp):
            fail(TypeError, "vjp", "be callable (x1, x2, g) -> (g1, g2) or None", describe(vjp))
        self.fn = fn
        self.vjp = vjp
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, x1: Array, x2: Array) -> Array:
        return self.fn(x1, x2)

    def __repr__(self) -> str:
        return f"Distance({self.name}{'' if self.vjp is not None else ', no vjp'})"

    @classmethod
    def pairwise(cls, p: float = 2.0, eps: float = 1e-6) -> Distance:
        """PyTorch's ``pairwise_distance(x1, x2, p, eps)``: ``||x1 - x2 + eps||_p``
        over the last dimension, with its analytic gradient."""
        check_number("p", p)
        check_number("eps", eps)

        def fn(x1: Any, x2: Any) -> Any:
            xp = namespace(x1=x1, x2=x2)
            return pairwise_distance_fwd(xp, x1, x2, p, eps)[0]

        def vjp(x1: Any, x2: Any, g: Any) -> Any:
            xp = namespace(x1=x1, x2=x2)
            return pairwise_distance_bwd(xp, pairwise_distance_fwd(xp, x1, x2, p, eps)[1], g, p)

        return cls(fn, vjp, name=f"pairwise_distance(p={p}, eps={eps})")


# The default distance of the triplet losses (torch.pairwise_distance's defaults).
PAIRWISE_DISTANCE = Distance.pairwise()
