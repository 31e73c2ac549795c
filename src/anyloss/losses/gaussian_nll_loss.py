"""Home of F.gaussian_nll_loss and anyloss.GaussianNLLLoss."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import array_api_compat as _compat

from .._accel import Hints
from .._call import apply
from .._checks import (
    TypeRuntimeError,
    ValueRuntimeError,
    check_broadcastable,
    check_floating,
    check_number,
    check_values,
    fail,
)
from .._module import Loss
from .._reduction import check_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, broadcast_shapes, device, result_float_dtype, sum_to_shape


def gaussian_nll_loss(
    input: Array,
    target: Array,
    var: Array | float,
    full: bool = False,
    eps: float | Array = 1e-06,
    reduction: Reduction = "mean",
) -> Array:
    r"""Negative log-likelihood of ``target`` under Gaussians with means ``input``
    and variances ``var``.

    .. math::
        \ell_n = \tfrac12 \left(\log \max(\sigma^2_n, \epsilon)
                 + \frac{(x_n - y_n)^2}{\max(\sigma^2_n, \epsilon)}\right)
                 \; \left[+ \tfrac12 \log 2\pi \text{ if ``full``}\right]

    reduced by ``'none'``, ``'sum'`` or ``'mean'`` (:math:`\sum_n \ell_n / N`).

    Args:
        input: means, any shape, real dtype.
        target: samples, broadcastable with ``input`` (no warning, as in PyTorch).
        var: variances, non-negative, floating dtype: ``input``'s shape
            (heteroscedastic); ``input``'s shape without its last dimension, or
            with one dimension replaced by 1 (homoscedastic, broadcast); or a
            Python ``float`` used for every element (in ``input``'s dtype, as
            PyTorch's ``var * ones_like(input)``; it gets no gradient).
        full: add the constant :math:`\tfrac12 \log 2\pi`.
        eps: lower clamp of ``var``, for stability: a real number, or a 0-d
            real array (a JAX tracer under ``jit``), which gets no gradient
            (PyTorch clamps without recording it).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, *) or (*), ``target`` like ``input``, ``var`` as above;
        output scalar, or the broadcast shape for ``'none'``.

    Gradients: ``input``, ``target`` and ``var``. PyTorch clamps a copy of
    ``var`` without recording it, so the gradient of ``var`` is taken at the
    clamped value :math:`\max(\sigma^2, \epsilon)` (not zero below ``eps``).

    Not checked on lazy arrays (JAX under ``jit``, Dask): ``var >= 0``.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.gaussian_nll_loss(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 4.0]))
        array(0.59657359)
    """
    reduction = check_reduction(reduction)
    check_number("eps", eps)
    if isinstance(var, float):  # PyTorch's test: a Python float (not an int) is one shared variance
        if var < 0:
            fail(ValueError, "var", "be non-negative", var)
        xp, (input, target) = SPEC.adopt(input=input, target=target)
        _check_real(xp, input=input, target=target)
        # var * ones_like(input): input's dtype, or PyTorch's default float32 for an integer input.
        dtype = input.dtype if xp.isdtype(input.dtype, "real floating") else xp.float32
        var = xp.full(input.shape, var, dtype=dtype, device=device(input))
    else:
        xp, (input, target, var) = SPEC.adopt(input=input, target=target, var=var)
        _check_real(xp, input=input, target=target)
        check_floating(xp, "var", var, TypeRuntimeError)
        var = check_values(xp, "var", var, lambda xp, v: xp.logical_not(v < 0), "be non-negative")
    var = cast(Array, var)  # an array from here on (a float became one above)
    view = _var_view(input.shape, var.shape)
    shape = check_broadcastable(input.shape, "target", target, kind=ValueRuntimeError)
    try:
        broadcast_shapes(shape, view)
    except ValueError:
        fail(
            ValueRuntimeError,
            "var",
            f"broadcast with `input` and `target` to shape {shape}",
            f"shape {tuple(var.shape)}",
        )
    return apply(SPEC, xp, (input, target, var), reduction, full=bool(full), eps=eps)


def _check_real(xp: Namespace, **arrays: Any) -> None:
    for name, a in arrays.items():
        if not xp.isdtype(a.dtype, ("real floating", "integral")):
            fail(TypeRuntimeError, name, "have a real floating or integer dtype", a.dtype)


def _var_view(input_shape: Sequence[int], var_shape: Sequence[int]) -> tuple[int, ...]:
    """The shape ``var`` takes in the loss, by PyTorch's rules (``ValueError``
    for any other shape)."""
    input_shape, var_shape = tuple(input_shape), tuple(var_shape)
    if var_shape == input_shape:
        return var_shape
    if input_shape[:-1] == var_shape:  # one variance per row: unsqueeze(-1)
        return var_shape + (1,)
    mismatched = sum(v for i, v in zip(input_shape, var_shape) if i != v)
    if len(input_shape) == len(var_shape) and mismatched == 1:  # one dimension of size 1
        return var_shape
    fail(
        ValueError,
        "var",
        f"have the shape of `input` {input_shape}, that shape without its last dimension, "
        "or that shape with one dimension replaced by 1",
        f"shape {var_shape}",
    )


def _fwd(xp: Namespace, input: Any, target: Any, var: Any, *, full: Any, eps: Any) -> Forward:
    dtype = result_float_dtype(xp, input, target, var)
    x, y = as_float(xp, input, dtype), as_float(xp, target, dtype)
    # Clamped in var's own dtype, then promoted, as PyTorch does.
    v = as_float(xp, xp.clip(var, min=eps) if isinstance(eps, numbers.Real) else _clamp_array(xp, var, eps), dtype)
    view = _var_view(input.shape, var.shape)
    if view != tuple(var.shape):
        v = xp.reshape(v, view)
    diff = x - y
    loss = 0.5 * (xp.log(v) + diff * diff / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return Forward(loss, (diff, v, tuple(var.shape)))


def _clamp_array(xp: Namespace, var: Any, eps: Any) -> Any:
    """``var`` clamped below by a 0-d array ``eps`` as PyTorch's ``var.clamp_(min=eps)``
    under ``no_grad``: ``max(var, eps)`` in var's dtype (NaN where either is NaN),
    whose derivative is 1 with respect to ``var`` and 0 with respect to ``eps``.
    That matters where the framework differentiates this forward itself (JAX with
    a traced ``eps``; PyTorch with a tensor ``eps`` and no array requiring grad)."""
    e = xp.astype(eps, var.dtype) if _compat.array_namespace(eps) is xp else xp.asarray(eps, dtype=var.dtype)
    # eps + (var - var) is eps exactly, but carries var's derivative; the select is on values only.
    below = xp.logical_not(var >= e)
    return xp.where(below, _detach(xp, e) + (var - _detach(xp, var)), var)


def _detach(xp: Namespace, x: Any) -> Any:
    """``x`` without its derivative, in the frameworks that differentiate their
    operations (the others have nothing to detach)."""
    if _compat.is_jax_namespace(xp):
        import jax

        return jax.lax.stop_gradient(x)
    if _compat.is_torch_namespace(xp):
        return x.detach()
    return x


def _bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, full: Any, eps: Any
) -> tuple[Any, ...]:
    diff, v, var_shape = res
    # PyTorch's VJPs in its order (they differ only where a term overflows).
    half = 0.5 * g
    gx = (half / v) * (2.0 * diff)
    # The clamp is invisible to autograd: d/dv is taken at the clamped v. log(v)
    # enters the sum in v's own shape, so its VJP is reduced before dividing by v.
    gv = sum_to_shape(xp, half, v.shape) / v - sum_to_shape(xp, half * ((diff * diff / v) / v), v.shape)
    gv = xp.reshape(gv, var_shape)  # undo the unsqueeze(-1)
    return gx, -gx, gv


class GaussianNLLLoss(Loss):
    """Object form of :func:`gaussian_nll_loss` (``torch.nn.GaussianNLLLoss``)."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: Reduction = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Array, target: Array, var: Array) -> Array:
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


# PyTorch's gaussian_nll_loss checks var < 0 on values: a data-dependent guard under torch.compile.
SPEC = register_spec(
    LossSpec(
        name="gaussian_nll_loss",
        native_traces=False,
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(
            rows={"input": 0, "target": 0, "var": (0, -1)},
            elementwise=True,
            views=lambda shapes: (*shapes[:2], _var_view(shapes[0], shapes[2])),
        ),
        argnames=("input", "target", "var"),
        differentiable=("input", "target", "var"),
        summary="0.5 (log var + (x - y)^2 / var); regression with predicted variance",
        functional=gaussian_nll_loss,
        cls=GaussianNLLLoss,
        example=lambda xp: (
            (
                xp.asarray([0.0, 1.0], dtype=xp.float64),
                xp.asarray([1.0, 1.0], dtype=xp.float64),
                xp.asarray([1.0, 4.0], dtype=xp.float64),
            ),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.zeros_like(x), xp.ones_like(x)), "error input − target (var 1)"),
    )
)
