"""Home of F.smooth_l1_loss and anyloss.SmoothL1Loss."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import array_api_compat as _compat

from .._accel import Hints
from .._call import apply
from .._checks import ValueRuntimeError, check_any_floating, check_number, check_target_broadcast, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, result_float_dtype, where
from .l1_loss import l1_loss


def smooth_l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    beta: float | Array = 1.0,
) -> Array:
    r"""Smooth L1 loss: squared below ``beta``, absolute above.

    .. math::
        \ell_n = \begin{cases}
            0.5 (x_n - y_n)^2 / \beta & \text{if } \lvert x_n - y_n \rvert < \beta \\
            \lvert x_n - y_n \rvert - 0.5 \beta & \text{otherwise}
        \end{cases}

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`). With ``beta = 0`` it is exactly
    :func:`~anyloss.functional.l1_loss` (as in PyTorch, integer arrays are then
    accepted too). It equals :func:`~anyloss.functional.huber_loss` divided by
    ``beta``.

    Args:
        input: predictions, any shape, floating dtype (or any real dtype
            when ``target`` is floating: PyTorch computes in the promoted one).
        target: same shape as ``input``; another shape is broadcast against it
            with a ``UserWarning``, as in PyTorch.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        beta: the threshold, a real number ``>= 0``, or a 0-d real array (a
            scheduled or learned one, a JAX tracer under ``jit``; ``jax.grad``
            differentiates with respect to it). An array's value is not looked
            at to choose :func:`~anyloss.functional.l1_loss`: ``input`` or
            ``target`` must then be floating, and ``beta = 0`` gives
            ``l1_loss``'s value by a select. Its bound is checked where its
            value can be read.

    Shape:
        ``input`` (*), ``target`` (*), output scalar, or (*) for ``'none'``.

    Gradients: ``input`` and ``target``. At :math:`\lvert x_n - y_n \rvert = \beta`
    both branches have slope :math:`\pm 1`.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.smooth_l1_loss(np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]]))
        array(0.625)
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target) = SPEC.adopt(input=input, target=target)
    if not isinstance(beta, numbers.Real):
        # A 0-d array (else TypeError), checked where it can be read; no branch on its value.
        check_number("beta", beta, min=0, kind=ValueRuntimeError)
        check_any_floating(xp, input=input, target=target)
        check_target_broadcast(input, target)
        return apply(SPEC, xp, (input, target), reduction, beta=beta)
    beta = float(beta)  # PyTorch's `float beta`: True, 1 and np.float32(1) all mean 1.0
    if not beta >= 0:  # also refuses NaN, as PyTorch does
        fail(ValueRuntimeError, "beta", "be >= 0", beta)
    if beta == 0:
        # PyTorch calls l1_loss here, so 0.5 d^2 / beta never divides by zero.
        return l1_loss(input, target, reduction=reduction)
    check_any_floating(xp, input=input, target=target)
    check_target_broadcast(input, target)
    return apply(SPEC, xp, (input, target), reduction, beta=beta)


def _fwd(xp: Namespace, input: Any, target: Any, beta: Any) -> Forward:
    dtype = result_float_dtype(xp, input, target)
    diff = as_float(xp, input, dtype) - as_float(xp, target, dtype)
    z = xp.abs(diff)
    if not isinstance(beta, numbers.Real):
        # A 0-d array: beta = 0 (PyTorch's l1_loss, |d|) by a select, not a branch.
        b, zero, safe = _array_beta(xp, beta, dtype)
        m = xp.clip(z, max=b)
        return Forward(xp.where(zero, z, (z - 0.5 * m) * (m / safe)), (diff,))
    # PyTorch's branches: 0.5 |d|^2 / beta strictly inside (-beta, beta), |d| - 0.5 beta
    # from |d| = beta on. Inside, |d| is |clip(d, -beta, beta)|, the backward's slope:
    # written so, a compiler that fuses the forward into one loop keeps it from there.
    m = xp.abs(xp.clip(diff, min=-beta, max=beta))
    inside = 0.5 * m * m if beta == 1.0 else 0.5 * m * m / beta
    return Forward(where(xp, z < beta, inside, z - 0.5 * beta), (diff,))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, beta: Any) -> tuple[Any, ...]:
    (diff,) = res
    if not isinstance(beta, numbers.Real):
        # A 0-d array: l1_loss's sign(d) where beta = 0.
        b, zero, safe = _array_beta(xp, beta, diff.dtype)
        gi = xp.where(zero, xp.sign(diff), xp.clip(diff, min=-b, max=b) / safe) * g
        return gi, -gi if wanted is None or wanted[1] else None
    # d/beta inside, sign(d) outside; NaN stays NaN, as in PyTorch.
    clipped = xp.clip(diff, min=-beta, max=beta)
    gi = (clipped if beta == 1.0 else clipped / beta) * g
    return gi, -gi if wanted is None or wanted[1] else None


def _array_beta(xp: Namespace, beta: Any, dtype: Any) -> Any:
    """A 0-d array ``beta`` in the loss's dtype (a Python float does not widen it
    either), whether it is 0, and a divisor that is never 0."""
    b = xp.astype(beta, dtype) if _compat.array_namespace(beta) is xp else xp.asarray(beta, dtype=dtype)
    zero = b == 0
    return b, zero, xp.where(zero, xp.ones_like(b), b)


class SmoothL1Loss(Loss):
    """Object form of :func:`smooth_l1_loss` (``torch.nn.SmoothL1Loss``)."""

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Array, target: Array) -> Array:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="smooth_l1_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0}, elementwise=True),
        argnames=("input", "target"),
        differentiable=("input", "target"),
        summary="squared below beta, absolute above; robust regression (Fast R-CNN)",
        functional=smooth_l1_loss,
        cls=SmoothL1Loss,
        example=lambda xp: (
            (xp.ones((2, 2), dtype=xp.float64), xp.asarray([[0.0, 1.0], [2.0, 3.0]], dtype=xp.float64)),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.zeros_like(x)), "error input − target"),
    )
)
