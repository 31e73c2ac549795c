"""Home of F.hinge_embedding_loss and anyloss.HingeEmbeddingLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, ValueRuntimeError, check_broadcastable, check_number, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import where


def hinge_embedding_loss(
    input: Array,
    target: Array,
    margin: float | Array = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Hinge embedding loss: is ``input`` (a distance) small for similar pairs
    (``target = 1``) and at least ``margin`` for dissimilar ones (``target = -1``)?

    .. math::
        \ell_n = [y_n \ne 1] \max(0, \Delta - x_n) + [y_n \ne -1]\, x_n

    which is :math:`x_n` where :math:`y_n = 1` and :math:`\max(0, \Delta - x_n)`
    where :math:`y_n = -1`. As in PyTorch, any other target value selects
    *both* terms (their sum); targets are not checked. Reduced by ``'none'``,
    ``'sum'`` or ``'mean'`` (:math:`\sum_n \ell_n / N`).

    Args:
        input: distances, any shape; floating dtype (an integer ``input`` gives
            PyTorch's integer loss, ``margin`` truncated to an integer, for
            ``'none'``/``'sum'``).
        target: broadcastable with ``input``, usually in {1, -1}; any real or
            boolean dtype (``True`` counts as 1). The result has ``input``'s dtype.
        margin: :math:`\Delta`, a real number (default 1).
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (*), ``target`` (*), output scalar, or (*) for ``'none'``.

    Gradients: ``input`` only (PyTorch gives ``target`` none). At the kink
    :math:`x_n = \Delta` the ``y = -1`` term passes the gradient :math:`-1`
    (PyTorch's ``clamp_min`` convention, :math:`\max'(0) = 1`).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.hinge_embedding_loss(np.array([[1.0, 0.8, 0.5]]), np.array([[1.0, 1.0, -1.0]]))
        array(0.76666667)
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    check_number("margin", margin)
    xp, (input, target) = SPEC.adopt(input=input, target=target)
    if not xp.isdtype(input.dtype, ("real floating", "integral")):
        fail(TypeRuntimeError, "input", "have a real floating or integer dtype", input.dtype)
    if not xp.isdtype(input.dtype, "real floating") and reduction == "mean":
        # PyTorch cannot average an integer loss ("mean(): could not infer output dtype").
        fail(TypeRuntimeError, "input", "have a floating-point dtype for reduction='mean'", input.dtype)
    if not xp.isdtype(target.dtype, ("real floating", "integral", "bool")):
        fail(TypeError, "target", "have a real or boolean dtype", target.dtype)
    check_broadcastable(input.shape, "target", target, kind=ValueRuntimeError)
    return apply(SPEC, xp, (input, target), reduction, margin=margin)


def _fwd(xp: Namespace, input: Any, target: Any, *, margin: Any) -> Forward:
    if target.dtype == xp.bool:
        target = xp.astype(target, xp.int8)  # True == 1, as PyTorch compares it
    if not xp.isdtype(input.dtype, "real floating"):
        margin = int(margin)  # PyTorch fills an integer tensor with the margin: truncation
    gap = margin - input
    zeros = xp.zeros_like(input)
    # PyTorch's composition, kept so that other target values behave the same:
    # where(y != 1, max(0, margin - x), 0) + where(y != -1, x, 0).
    loss = where(xp, target != 1, xp.clip(gap, min=0), zeros) + where(xp, target != -1, input, zeros)
    return Forward(loss, (gap, target))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, margin: Any) -> tuple[Any, ...]:
    gap, target = res
    zeros = xp.zeros_like(g)
    # clamp_min passes the gradient where gap >= 0: -1 at the kink x == margin.
    g_hinge = where(xp, (target != 1) & (gap >= 0), -g, zeros)
    return g_hinge + where(xp, target != -1, g, zeros), None


class HingeEmbeddingLoss(Loss):
    """Object form of :func:`hinge_embedding_loss` (``torch.nn.HingeEmbeddingLoss``)."""

    def __init__(
        self,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Array, target: Array) -> Array:
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="hinge_embedding_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0}, elementwise=True),
        argnames=("input", "target"),
        differentiable=("input",),
        summary="x if y = 1, max(0, margin - x) if y = -1; distance-based similarity",
        functional=hinge_embedding_loss,
        cls=HingeEmbeddingLoss,
        example=lambda xp: (
            (xp.asarray([[1.0, 0.8, 0.5]], dtype=xp.float64), xp.asarray([[1.0, 1.0, -1.0]], dtype=xp.float64)),
            {},
        ),
        curve=lambda xp, x: Curve((x, -xp.ones_like(x)), "distance input (target −1)", domain=(0.0, None)),
    )
)
