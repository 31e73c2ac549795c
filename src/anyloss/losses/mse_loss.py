"""Home of F.mse_loss and anyloss.MSELoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import check_any_floating, check_same_shape, check_target_broadcast
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, result_float_dtype, sum_to_shape


def mse_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
) -> Array:
    r"""Mean squared error between ``input`` and ``target``, optionally weighted.

    .. math::
        \ell_n = w_n (x_n - y_n)^2

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`; with ``weight``,
    :math:`\sum_n \ell_n / \sum_n w_n`).

    Args:
        input: predictions, any shape; ``input`` or ``target`` must be floating.
        target: same shape as ``input``; another shape is broadcast against it
            with a ``UserWarning``, as in PyTorch.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        weight: optional per-element weights, exactly ``input``'s shape.

    Shape:
        ``input`` (*), ``target`` (*), output scalar, or (*) for ``'none'``.

    Gradients: ``input``, ``target`` and ``weight``.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.mse_loss(np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]]))
        array(1.5)
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    check_any_floating(xp, input=input, target=target)
    check_target_broadcast(input, target)
    if weight is not None:
        check_same_shape("input", input, "weight", weight)
    return apply(SPEC, xp, (input, target, weight), reduction)


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any) -> Forward:
    dtype = result_float_dtype(xp, input, target, weight)
    diff = as_float(xp, input, dtype) - as_float(xp, target, dtype)
    sq = diff * diff
    if weight is None:
        return Forward(sq, (diff, None))
    # A weighted 'mean' divides by the total weight, not the element count.
    w = as_float(xp, weight, dtype)
    return Forward(sq * w, (diff, w), xp.sum(w))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> tuple[Any, ...]:
    diff, w = res
    if w is None:
        gi = 2.0 * diff * g
        return gi, -gi, None
    gi = 2.0 * diff * (w * g)
    gw = diff * diff * g
    if g_divisor is not None:
        # sum(w) counts each weight once, also where a broadcast input repeats it.
        gw = sum_to_shape(xp, gw, w.shape) + g_divisor
    return gi, -gi, gw


class MSELoss(Loss):
    """Object form of :func:`mse_loss` (``torch.nn.MSELoss``)."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Array, target: Array) -> Array:
        return mse_loss(input, target, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="mse_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0, "weight": 0}, elementwise=True),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input", "target", "weight"),
        summary="squared error (x - y)^2; regression",
        functional=mse_loss,
        cls=MSELoss,
        example=lambda xp: ((xp.ones((2, 2), dtype=xp.float64), xp.asarray([[0.0, 1.0], [2.0, 3.0]])), {}),
        curve=lambda xp, x: Curve((x, xp.zeros_like(x)), "error input − target"),
    )
)
