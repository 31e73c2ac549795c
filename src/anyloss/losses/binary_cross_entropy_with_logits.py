"""Home of F.binary_cross_entropy_with_logits and anyloss.BCEWithLogitsLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import (
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_broadcasts_to,
    check_floating,
    check_same_shape,
    fail,
)
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import _half_dtype, as_float, device, log_sigmoid, result_float_dtype


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    pos_weight: Array | None = None,
) -> Array:
    r"""Binary cross entropy between ``sigmoid(input)`` and ``target``, computed from the logits.

    .. math::
        \ell_n = w_n \left[ (1 - y_n) x_n - (1 + (p_n - 1) y_n) \log \sigma(x_n) \right]
               = -w_n \left[ p_n y_n \log \sigma(x_n) + (1 - y_n) \log(1 - \sigma(x_n)) \right]

    with :math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`, which never
    overflows (a logit of :math:`\pm 10^4` gives a loss of 0 or :math:`10^4`),
    and :math:`p` the ``pos_weight`` (1 when not given). Reduced by ``'none'``
    (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or ``'mean'``
    (:math:`\sum_n \ell_n / N`, ``N`` the number of elements).

    Infinite logits give what PyTorch's formula gives: a confidently wrong
    :math:`\pm\infty` gives ``inf``; :math:`+\infty` with target 1, or
    :math:`-\infty` with any target, gives NaN (``0 * inf`` or ``inf - inf``).

    Args:
        input: logits, any shape, floating dtype.
        target: exactly ``input``'s shape, floating dtype; values are not
            checked (PyTorch accepts targets outside [0, 1]). The result has
            ``target``'s dtype, as in PyTorch.
        weight: optional rescaling weight that broadcasts to ``input``'s shape
            (any real dtype; it is not enlarged).
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        pos_weight: optional weight of the positive term, broadcast against
            ``target`` from the last (class) dimension, so a ``(C,)`` array
            weights class ``c`` of a ``(N, C)`` target. Like ``weight`` it must
            broadcast to ``input``'s shape without enlarging it.

    Shape:
        ``input`` (*), ``target`` (*), ``weight`` and ``pos_weight``
        broadcastable to (*); output scalar, or (*) for ``'none'``.

    Gradients: ``input`` and ``target``; ``weight`` and ``pos_weight`` have
    none (PyTorch does not differentiate them).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.binary_cross_entropy_with_logits(np.array([0.0, 1e4, -1e4]), np.array([1.0, 0.0, 0.0]),
        ...                                    reduction="none")
        array([6.93147181e-01, 1.00000000e+04, 0.00000000e+00])
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight, pos_weight) = SPEC.adopt(
        input=input, target=target, weight=weight, pos_weight=pos_weight
    )
    check_floating(xp, "input", input, TypeNotImplementedError)
    check_same_shape("input", input, "target", target)
    # PyTorch builds the loss in place from (1 - target): an integer or boolean target fails there.
    check_floating(xp, "target", target, TypeRuntimeError)
    if pos_weight is not None:
        if xp.isdtype(pos_weight.dtype, "bool"):
            fail(TypeRuntimeError, "pos_weight", "have a numeric dtype", pos_weight.dtype)
        check_broadcasts_to(input.shape, "pos_weight", pos_weight, kind=ValueRuntimeError)
    if weight is not None:
        check_broadcasts_to(input.shape, "weight", weight, kind=ValueRuntimeError)
    return apply(SPEC, xp, (input, target, weight, pos_weight), reduction)


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any, pos_weight: Any) -> Forward:
    dtype = result_float_dtype(xp, input, target, weight, pos_weight)
    x, y = as_float(xp, input, dtype), as_float(xp, target, dtype)
    # log sigmoid(x), taken (and weighted) in input's dtype, as PyTorch does (it
    # matters when a float32 input meets a float64 target); e = exp(-|x|) and
    # sp = log1p(e) are kept for the gradient (in float32 for float16/bfloat16).
    log_sig, e, sp = log_sigmoid(xp, input, parts=True)
    xw = as_float(xp, input, e.dtype)
    p = None
    if pos_weight is not None:
        p = as_float(xp, pos_weight, dtype)
        log_sig = as_float(xp, as_float(xp, log_sig, dtype) * ((p - 1.0) * y + 1.0), input.dtype)
    loss = (1.0 - y) * x - as_float(xp, log_sig, dtype)
    w = None if weight is None else as_float(xp, weight, dtype)
    if w is not None:
        loss = loss * w
    # PyTorch accumulates the loss in place in (1 - target): target's dtype.
    return Forward(as_float(xp, loss, target.dtype), (x, y, w, p, xw, e, sp))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> tuple[Any, ...]:
    x, y, w, p, xw, e, sp = res
    # sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below, e = exp(-|x|):
    # max(e, [x >= 0]) / (1 + e), without a select.
    s = as_float(xp, xp.maximum(e, xp.astype(xw >= 0, e.dtype)) / (1.0 + e), x.dtype)
    if p is None:
        gx = (s - y) * g
    else:
        py = p * y
        gx = ((py + 1.0 - y) * s - py) * g
    gy = None
    if wanted is None or wanted[1]:
        if p is None:
            gy = -x * g
        else:
            # log sigmoid(-x) - p log sigmoid(x), from the same log1p(exp(-|x|)), in
            # the promoted dtype (a float32 input with a float64 target: float64).
            if _half_dtype(xp, x) is None and x.dtype != xw.dtype:
                _, _, sp = log_sigmoid(xp, x, parts=True)
                xw = x
            zero = xp.zeros((), dtype=xw.dtype, device=device(xw))  # a 0-d zero: torch.compile traces it
            log_sig_neg = as_float(xp, xp.minimum(-xw, zero) - sp, x.dtype)
            log_sig = as_float(xp, xp.minimum(xw, zero) - sp, x.dtype)
            gy = (log_sig_neg - log_sig * p) * g
    if w is not None:
        gx = gx * w
        gy = None if gy is None else gy * w
    return gx, gy, None, None


class BCEWithLogitsLoss(Loss):
    """Object form of :func:`binary_cross_entropy_with_logits` (``torch.nn.BCEWithLogitsLoss``)."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        pos_weight: Any = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Array, target: Array) -> Array:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="binary_cross_entropy_with_logits",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0, "weight": 0, "pos_weight": 0}, elementwise=True),
        argnames=("input", "target", "weight", "pos_weight"),
        optional=("weight", "pos_weight"),
        differentiable=("input", "target"),
        summary="sigmoid + binary cross entropy on logits, stable log-sigmoid; multi-label classification",
        functional=binary_cross_entropy_with_logits,
        cls=BCEWithLogitsLoss,
        example=lambda xp: (
            (xp.asarray([1.5, -0.3, 0.2], dtype=xp.float64), xp.asarray([1.0, 0.0, 1.0], dtype=xp.float64)),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.ones_like(x)), "logit input (target 1)"),
    )
)
