"""Home of F.soft_margin_loss and anyloss.SoftMarginLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, ValueRuntimeError, check_broadcasts_to, check_floating
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, result_float_dtype, sigmoid, softplus


def soft_margin_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Two-class logistic loss for targets :math:`y \in \{1, -1\}`.

    .. math::
        \ell_n = \log(1 + \exp(-y_n x_n))

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`).

    Computed as :math:`\operatorname{softplus}(-y_n x_n)`, which never
    overflows. Where PyTorch's ``log1p(exp(-y x))`` itself overflows
    (:math:`-y x` above about 88 in float32, 709 in float64) it returns
    ``inf`` with a NaN gradient; anyloss returns the finite value
    :math:`-y x` and gradient :math:`-y`. Everywhere else the two agree.

    Args:
        input: scores, any shape, floating dtype.
        target: labels, meant to be 1 or -1; as in PyTorch, any real value (or
            boolean) is accepted and used as is. Its shape must broadcast to
            ``input``'s.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (*), ``target`` (*) or broadcastable to it, output scalar,
        or (*) for ``'none'``. The result has ``input``'s dtype, as in PyTorch.

    Gradients: ``input`` only (PyTorch gives ``target`` none).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> x = np.array([[0.3, 0.7], [0.5, 0.5]])
        >>> y = np.array([[-1.0, 1.0], [1.0, -1.0]])
        >>> print(f"{F.soft_margin_loss(x, y):.4f}")
        0.6764
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target) = SPEC.adopt(input=input, target=target)
    check_floating(xp, "input", input, TypeRuntimeError)
    # PyTorch writes the loss in place into an array of input's shape.
    check_broadcasts_to(input.shape, "target", target, kind=ValueRuntimeError)
    return apply(SPEC, xp, (input, target), reduction)


def _fwd(xp: Namespace, input: Any, target: Any) -> Forward:
    # -y x in the promoted dtype, then rounded to input's dtype, as PyTorch's in-place kernel does.
    wide = result_float_dtype(xp, input, target)
    y = as_float(xp, target, wide)
    m = as_float(xp, -(as_float(xp, input, wide) * y), input.dtype)
    return Forward(softplus(xp, m), (y, m))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> tuple[Any, ...]:
    y, m = res
    # d/dx softplus(-y x) = -y sigmoid(-y x); sigmoid from exp(-|m|) cannot overflow.
    return -y * sigmoid(xp, m) * g, None


class SoftMarginLoss(Loss):
    """Object form of :func:`soft_margin_loss` (``torch.nn.SoftMarginLoss``)."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Array, target: Array) -> Array:
        return soft_margin_loss(input, target, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


# torch.compile(fullgraph=True) of PyTorch's soft_margin_loss fails in its fake-tensor pass (PyTorch 2.13).
SPEC = register_spec(
    LossSpec(
        name="soft_margin_loss",
        native_traces=False,
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0}, elementwise=True),
        argnames=("input", "target"),
        differentiable=("input",),
        summary="logistic loss log(1 + exp(-y x)) for labels in {1, -1}; binary classification",
        functional=soft_margin_loss,
        cls=SoftMarginLoss,
        example=lambda xp: (
            (
                xp.asarray([[0.3, 0.7], [0.5, 0.5]], dtype=xp.float64),
                xp.asarray([[-1.0, 1.0], [1.0, -1.0]], dtype=xp.float64),
            ),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.ones_like(x)), "margin target · input"),
    )
)
