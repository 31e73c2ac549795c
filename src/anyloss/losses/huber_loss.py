"""Home of F.huber_loss and anyloss.HuberLoss."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import array_api_compat as _compat

from .._accel import Hints
from .._call import apply
from .._checks import (
    TypeNotImplementedError,
    ValueRuntimeError,
    check_floating,
    check_number,
    check_same_shape,
    check_target_broadcast,
    describe,
    fail,
)
from .._module import Loss
from .._reduction import check_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, result_float_dtype, where


def huber_loss(
    input: Array,
    target: Array,
    reduction: Reduction = "mean",
    delta: float | Array = 1.0,
    weight: Array | None = None,
) -> Array:
    r"""Huber loss: squared below ``delta``, ``delta``-scaled absolute above; optionally weighted.

    .. math::
        \ell_n = w_n \begin{cases}
            0.5 (x_n - y_n)^2 & \text{if } \lvert x_n - y_n \rvert < \delta \\
            \delta (\lvert x_n - y_n \rvert - 0.5 \delta) & \text{otherwise}
        \end{cases}

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`, with ``weight`` too: unlike
    :func:`~anyloss.functional.l1_loss` and :func:`~anyloss.functional.mse_loss`,
    PyTorch's weighted Huber ``'mean'`` divides by the element count, not by
    :math:`\sum_n w_n`). It equals ``delta`` times
    :func:`~anyloss.functional.smooth_l1_loss` with ``beta = delta``.

    Args:
        input: predictions, any shape, floating dtype.
        target: same shape as ``input``; another shape is broadcast against it
            with a ``UserWarning``, as in PyTorch.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        delta: the threshold, a real number ``> 0``, or a 0-d real array (a
            scheduled or learned one, a JAX tracer under ``jit``; ``jax.grad``
            differentiates with respect to it), its bound checked where its
            value can be read.
        weight: optional per-element weights, exactly ``input``'s shape.

    Shape:
        ``input`` (*), ``target`` (*), output scalar, or (*) for ``'none'``.
        Without ``weight`` the result has ``input``'s dtype (a float64
        ``target`` does not widen a float32 ``input``), as in PyTorch.

    Gradients: ``input``, ``target`` and ``weight``. At
    :math:`\lvert x_n - y_n \rvert = \delta` both branches have slope
    :math:`\pm\delta`. When ``target``'s dtype differs from ``input``'s
    (integer labels, float64 against float32), PyTorch 2.13 computes the
    value but its backward raises; anyloss gives the gradient of that value.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.huber_loss(np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]]))
        array(0.625)
    """
    check_reduction(reduction)
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    if not isinstance(delta, numbers.Real):
        check_number("delta", delta, min=0, min_inclusive=False, kind=ValueRuntimeError)  # a 0-d array (else TypeError)
    else:
        delta = float(delta)  # PyTorch's `float delta`: True, 1 and np.float32(1) all mean 1.0
        if not delta > 0:  # also refuses NaN, as PyTorch does
            fail(ValueRuntimeError, "delta", "be > 0", delta)
    check_floating(xp, "input", input, TypeNotImplementedError)
    check_target_broadcast(input, target)
    if weight is not None:
        check_same_shape("input", input, "weight", weight)
    return apply(SPEC, xp, (input, target, weight), reduction, delta=delta)


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any, delta: Any) -> Forward:
    dtype = result_float_dtype(xp, input, target)
    diff = as_float(xp, input, dtype) - as_float(xp, target, dtype)
    z = xp.abs(diff)
    delta = _in_dtype(xp, delta, dtype)
    # PyTorch's branches: 0.5 |d|^2 strictly inside (-delta, delta), delta (|d| - 0.5 delta)
    # from |d| = delta on. Inside, |d| is |clip(d, -delta, delta)|, the backward's slope:
    # written so, a compiler that fuses the forward into one loop keeps it from there.
    m = xp.abs(xp.clip(diff, min=-delta, max=delta))
    loss = where(xp, z < delta, 0.5 * m * m, delta * (z - 0.5 * delta))
    # PyTorch's kernel computes in the promoted dtype and writes into an array like input.
    loss = as_float(xp, loss, input.dtype)
    if weight is None:
        return Forward(loss, (diff, None, None))
    # No divisor: a weighted 'mean' is PyTorch's `(loss * weight).mean()`.
    w = as_float(xp, weight, result_float_dtype(xp, loss, weight))
    return Forward(loss * w, (diff, w, loss))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, delta: Any) -> tuple[Any, ...]:
    diff, w, loss = res
    # d inside, delta sign(d) outside; NaN stays NaN, as in PyTorch.
    delta = _in_dtype(xp, delta, diff.dtype)
    slope = xp.clip(diff, min=-delta, max=delta)
    gi = slope * g if w is None else slope * (w * g)
    gt = -gi if wanted is None or wanted[1] else None
    return gi, gt, None if w is None else loss * g


def _in_dtype(xp: Namespace, delta: Any, dtype: Any) -> Any:
    """A 0-d array ``delta`` in the loss's dtype (a Python float does not widen it either)."""
    if isinstance(delta, numbers.Real):
        return delta
    return xp.astype(delta, dtype) if _compat.array_namespace(delta) is xp else xp.asarray(delta, dtype=dtype)


class HuberLoss(Loss):
    """Object form of :func:`huber_loss` (``torch.nn.HuberLoss``)."""

    def __init__(self, reduction: Reduction = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):  # PyTorch checks the kind here, the value per call
            fail(TypeError, "delta", "be a float or int", describe(delta))
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Array, target: Array) -> Array:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="huber_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0, "weight": 0}, elementwise=True),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input", "target", "weight"),
        summary="squared below delta, delta-scaled absolute above; robust regression",
        functional=huber_loss,
        cls=HuberLoss,
        example=lambda xp: (
            (xp.ones((2, 2), dtype=xp.float64), xp.asarray([[0.0, 1.0], [2.0, 3.0]], dtype=xp.float64)),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.zeros_like(x)), "error input − target"),
    )
)
