"""Home of F.multilabel_soft_margin_loss and anyloss.MultiLabelSoftMarginLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import (
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueIndexError,
    ValueRuntimeError,
    check_broadcastable,
    check_floating,
    fail,
)
from .._module import WeightedLoss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, broadcast_to, log_sigmoid, result_float_dtype, sigmoid, zero_dim


def multilabel_soft_margin_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Multi-label one-versus-all logistic loss, averaged over the C classes.

    .. math::
        \ell_n = -\frac{1}{C} \sum_c w_c \left[ y_{nc} \log \sigma(x_{nc})
                 + (1 - y_{nc}) \log \sigma(-x_{nc}) \right]

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`; a weight does not change the divisor).

    :math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`, PyTorch's
    ``logsigmoid``, which never overflows.

    As in PyTorch's (pure Python) definition, ``target`` and ``weight`` only have
    to broadcast with ``input``; the class axis is ``input``'s last axis, counted
    from the left in the broadcast shape, and :math:`C` is ``input``'s last
    dimension. Any real ``target`` is used as is (not checked to be in [0, 1]).

    Args:
        input: scores, (N, C), (C) or (N, *, C), floating dtype.
        target: (N, C) (or broadcastable), any real or integer dtype (not boolean).
        weight: optional class weights, (C) or anything broadcastable, any real dtype.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, C), ``target`` (N, C), output scalar, or (N) for ``'none'``
        (``input``'s shape without its last axis in general). The result has the
        promoted floating dtype of the three arrays.

    Gradients: ``input``, and ``target`` and ``weight`` when they are floating
    (as PyTorch's autograd gives them).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> x = np.array([[0.0, 2.0], [-1.0, 1.0]])
        >>> y = np.array([[0.0, 1.0], [1.0, 1.0]])
        >>> print(f"{F.multilabel_soft_margin_loss(x, y):.4f}")
        0.6116
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    check_floating(xp, "input", input, TypeNotImplementedError)
    if input.ndim == 0:
        fail(ValueIndexError, "input", "have a class dimension (at least 1-D)", "shape ()")
    # PyTorch's `1 - target` refuses a boolean target; a boolean weight is fine.
    if not xp.isdtype(target.dtype, ("real floating", "integral")):
        fail(TypeRuntimeError, "target", "have a real floating or integer dtype", target.dtype)
    if weight is not None and not xp.isdtype(weight.dtype, ("real floating", "integral", "bool")):
        fail(TypeError, "weight", "have a real dtype", weight.dtype)
    shape = check_broadcastable(input.shape, "target", target, kind=ValueRuntimeError)
    if weight is not None:
        check_broadcastable(shape, "weight", weight, to="`input` and `target`", kind=ValueRuntimeError)
    return apply(SPEC, xp, (input, target, weight), reduction)


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any) -> Forward:
    dtype = result_float_dtype(xp, input, target, weight)
    # log sigmoid(x) and log sigmoid(-x) in input's dtype, then promoted, as PyTorch's
    # `target * logsigmoid(input)` does for a wider target or weight.
    log_p = as_float(xp, log_sigmoid(xp, input), dtype)
    log_q = as_float(xp, log_sigmoid(xp, -input), dtype)
    y = as_float(xp, target, dtype)
    elem = -(y * log_p + (1.0 - y) * log_q)
    w = None if weight is None else as_float(xp, weight, dtype)
    elem_w = elem if w is None else elem * w
    # PyTorch sums over input's last axis (counted from the left) and divides by its size.
    axis = input.ndim - 1
    loss = zero_dim(xp, _over_c(xp.sum(elem_w, axis=axis), input.shape[-1]))  # 0-d for a (C) input
    grad_y = xp.isdtype(target.dtype, "real floating")
    grad_w = weight is not None and xp.isdtype(weight.dtype, "real floating")
    res = (
        as_float(xp, input, dtype),
        y,
        w,
        elem,
        log_p,
        log_q,
        axis,
        input.shape[-1],
        tuple(elem_w.shape),
        grad_y,
        grad_w,
    )
    return Forward(loss, res)


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> tuple[Any, ...]:
    x, y, w, elem, log_p, log_q, axis, c, shape, grad_y, grad_w = res
    g_elem = broadcast_to(xp, _over_c(xp.expand_dims(g, axis=axis), c), shape)
    gw = g_elem * elem if grad_w else None
    if w is not None:
        g_elem = g_elem * w
    # d/dx log sigmoid(x) = sigmoid(-x), d/dx log sigmoid(-x) = -sigmoid(x).
    gx = g_elem * ((1.0 - y) * sigmoid(xp, x) - y * sigmoid(xp, -x))
    gy = -(g_elem * (log_p - log_q)) if grad_y else None
    return gx, gy, gw


def _over_c(s: Any, c: Any) -> Any:
    # No classes: PyTorch's 0 / 0 = NaN, here without NumPy's divide warning.
    return s / float(c) if c else s * float("nan")


class MultiLabelSoftMarginLoss(WeightedLoss):
    """Object form of :func:`multilabel_soft_margin_loss` (``torch.nn.MultiLabelSoftMarginLoss``)."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input: Array, target: Array) -> Array:
        return multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="multilabel_soft_margin_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0, "weight": 0}),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input", "target", "weight"),
        summary="-mean_c w_c [y log sigmoid(x) + (1 - y) log sigmoid(-x)]; multi-label classification",
        functional=multilabel_soft_margin_loss,
        cls=MultiLabelSoftMarginLoss,
        example=lambda xp: (
            (
                xp.asarray([[0.0, 2.0], [-1.0, 1.0]], dtype=xp.float64),
                xp.asarray([[0.0, 1.0], [1.0, 1.0]], dtype=xp.float64),
            ),
            {},
        ),
        curve=lambda xp, x: Curve(
            (xp.reshape(x, (-1, 1)), xp.ones((x.shape[0], 1), dtype=x.dtype)), "logit input (1 class, target 1)"
        ),
    )
)
