"""Home of F.margin_ranking_loss and anyloss.MarginRankingLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, ValueRuntimeError, check_broadcastable, check_number, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, where


def margin_ranking_loss(
    input1: Array,
    input2: Array,
    target: Array,
    margin: float | Array = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Margin ranking loss: should ``input1`` rank above ``input2`` (``target = 1``)
    or below it (``target = -1``), by at least ``margin``?

    .. math::
        \ell_n = \max(0, -y_n (x_{1,n} - x_{2,n}) + \text{margin})

    reduced by ``'none'``, ``'sum'`` or ``'mean'`` (:math:`\sum_n \ell_n / N`).
    As in PyTorch, ``target`` is not checked to be in {1, -1}: any value scales
    the difference.

    Args:
        input1, input2: scores, same number of dimensions, broadcastable.
        target: same number of dimensions as the inputs, broadcastable with them.
            Any real dtype; the result is the promoted floating dtype of the three
            (PyTorch's default float32 when none of them is floating).
        margin: a real number (default 0).
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input1`` (*), ``input2`` (*), ``target`` (*), output scalar, or (*) for
        ``'none'`` (the broadcast shape).

    Gradients: ``input1``, ``input2`` and ``target``. At the kink (the clamped
    term exactly 0) the gradient passes, as PyTorch's ``clamp_min`` does.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.margin_ranking_loss(np.array([1.0, 2.0]), np.array([2.0, 0.0]), np.array([1.0, 1.0]), margin=0.5)
        array(0.75)
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    check_number("margin", margin)
    xp, (input1, input2, target) = SPEC.adopt(input1=input1, input2=input2, target=target)
    for name, a in (("input1", input1), ("input2", input2), ("target", target)):
        if not xp.isdtype(a.dtype, ("real floating", "integral")):
            fail(TypeRuntimeError, name, "have a real floating or integer dtype", a.dtype)
    for name, a in (("input2", input2), ("target", target)):
        if a.ndim != input1.ndim:
            fail(
                ValueRuntimeError,
                name,
                f"have as many dimensions as `input1` ({input1.ndim})",
                f"shape {tuple(a.shape)}",
            )
    shape = check_broadcastable(input1.shape, "input2", input2, to="`input1`", kind=ValueRuntimeError)
    check_broadcastable(shape, "target", target, to="`input1` and `input2`", kind=ValueRuntimeError)
    return apply(SPEC, xp, (input1, input2, target), reduction, margin=margin)


def _fwd(xp: Namespace, input1: Any, input2: Any, target: Any, *, margin: Any) -> Forward:
    floats = [a.dtype for a in (input1, input2, target) if xp.isdtype(a.dtype, "real floating")]
    # PyTorch adds the (float) margin to an integer product: its default float32.
    dtype = xp.result_type(*floats) if floats else xp.float32
    x1, x2, y = (as_float(xp, a, dtype) for a in (input1, input2, target))
    diff = x1 - x2
    z = -y * diff + margin
    return Forward(xp.clip(z, min=0.0), (diff, y, z))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, margin: Any) -> tuple[Any, ...]:
    diff, y, z = res
    # clamp_min passes the gradient where z >= 0, the kink z == 0 included.
    g = where(xp, z >= 0, g, xp.zeros_like(g))
    g1 = -y * g
    return g1, -g1, -diff * g


class MarginRankingLoss(Loss):
    """Object form of :func:`margin_ranking_loss` (``torch.nn.MarginRankingLoss``)."""

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Array, input2: Array, target: Array) -> Array:
        return margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="margin_ranking_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input1": 0, "input2": 0, "target": 0}, elementwise=True),
        argnames=("input1", "input2", "target"),
        differentiable=("input1", "input2", "target"),
        summary="max(0, -y (x1 - x2) + margin); pairwise ranking",
        functional=margin_ranking_loss,
        cls=MarginRankingLoss,
        example=lambda xp: (
            (
                xp.asarray([1.0, 2.0], dtype=xp.float64),
                xp.asarray([2.0, 0.0], dtype=xp.float64),
                xp.asarray([1.0, 1.0], dtype=xp.float64),
            ),
            {"margin": 0.5},
        ),
        curve=lambda xp, x: Curve((x, xp.zeros_like(x), xp.ones_like(x)), "margin input1 − input2 (target 1)"),
    )
)
