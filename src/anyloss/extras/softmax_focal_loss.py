"""Home of anyloss.extras.softmax_focal_loss."""

from __future__ import annotations

from typing import Any

from .._checks import check_number
from .._register import register
from .._spec import Curve
from .._typing import Namespace
from .._xp import as_float, log_softmax
from ._common import check_class_target, class_axis, class_pick, count, gather


def _check(xp: Namespace, input: Any, target: Any, alpha: Any = None, *, gamma: Any, ignore_index: Any) -> Any:
    target = check_class_target(xp, input, target, ignore_index, alpha, "alpha")
    check_number("gamma", gamma, min=0.0)
    return input, target, alpha


def _example(xp: Namespace) -> Any:
    input = xp.asarray([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -2.0, 0.3]], dtype=xp.float64)
    target = xp.asarray([0, 2, 1])
    return (input, target), {}


def _curve(xp: Namespace, x: Any) -> Any:
    # Two classes, logits (x, 0), target class 0: the loss against the target's logit margin.
    zero = xp.zeros_like(x)
    tangent = xp.stack([xp.ones_like(x), zero], axis=1)
    return Curve(
        (xp.stack([x, zero], axis=1), xp.zeros(x.shape, dtype=xp.int64)),
        "logit margin of the target class",
        {0: tangent},
    )


def _parts(xp: Namespace, input: Any, target: Any, alpha: Any, ignore_index: Any) -> Any:
    axis = class_axis(input)
    lp = log_softmax(xp, input, axis)
    valid, index, onehot = class_pick(xp, target, ignore_index, input.shape[axis], axis)
    lpt = gather(xp, lp, index, axis)  # log p_t
    u = -xp.expm1(lpt)  # 1 - p_t, accurate where p_t is near 1
    zero = xp.zeros_like(lpt)
    a = (
        xp.ones_like(lpt)
        if alpha is None
        else gather(
            xp,
            xp.broadcast_to(
                xp.reshape(as_float(xp, alpha, input.dtype), (input.shape[axis],) + (1,) * (input.ndim - axis - 1)),
                input.shape,
            ),
            index,
            axis,
        )
    )
    a = xp.where(valid, a, zero)  # ignored targets contribute nothing
    return axis, lp, valid, onehot, lpt, u, a


def _exponent(xp: Namespace, gamma: Any, dtype: Any) -> Any:
    """gamma as a float, or a 0-d array (scheduled or traced) in the loss's dtype."""
    return float(gamma) if not hasattr(gamma, "shape") else xp.asarray(gamma, dtype=dtype)


def _gradient(
    xp: Namespace, g: Any, input: Any, target: Any, alpha: Any = None, *, gamma: float = 2.0, ignore_index: int = -100
) -> Any:
    # d loss / dx_j = a_t F (p_j - [j = t]), F = u^gamma - gamma u^(gamma-1) p_t log p_t,
    # written u^gamma (1 - gamma p_t (log p_t / u)): log p_t / u -> -1 as u -> 0, so F
    # stays finite for every gamma >= 0 where p_t saturates at 1.
    axis, lp, valid, onehot, lpt, u, a = _parts(xp, input, target, alpha, ignore_index)
    ratio = xp.where(u > 0, lpt / xp.where(u > 0, u, xp.ones_like(u)), -xp.ones_like(u))
    gamma = _exponent(xp, gamma, input.dtype)
    f = u**gamma * (1.0 - gamma * xp.exp(lpt) * ratio)
    coef = xp.expand_dims(g * a * f, axis=axis)
    return coef * (xp.exp(lp) - xp.astype(onehot, input.dtype))


@register(
    name="softmax_focal_loss",
    catalogue="extras",
    differentiable=("input",),
    check=_check,
    gradient=_gradient,
    example=_example,
    curve=_curve,
    summary="focal loss on softmax logits, multi-class classification",
)
def softmax_focal_loss(
    xp: Namespace, input: Any, target: Any, alpha: Any = None, *, gamma: float = 2.0, ignore_index: int = -100
) -> Any:
    r"""Multi-class (softmax) focal loss: cross-entropy down-weighted on easy examples.

    The multi-class form of the focal loss (Lin et al., 2017). With
    :math:`p = \mathrm{softmax}(x)` along the class axis and target class :math:`y_n`,

    .. math::
        \ell_n = -\alpha_{y_n}\,(1 - p_{n, y_n})^{\gamma}\,\log p_{n, y_n}

    and :math:`\ell_n = 0` where :math:`y_n` is ``ignore_index``. Reduced by
    ``'none'``, ``'sum'`` or ``'mean'`` (the default): the sum divided by the
    number of targets that are not ignored (NaN if all are). Unlike
    ``cross_entropy``'s ``weight``, ``alpha`` does not change that divisor.
    ``gamma = 0`` without ``alpha`` is ``cross_entropy``.

    Reference: T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss
    for Dense Object Detection", ICCV 2017 (arXiv:1708.02002), Section 3.

    Args:
        input: logits, (C,), (N, C) or (N, C, d1, ...), floating.
        target: class indices, ``input``'s shape without the class axis, any
            integer dtype, in [0, C) or ``ignore_index``.
        alpha: optional per-class weights :math:`\alpha_c`, shape (C,).
        gamma: focusing exponent, >= 0 (keyword-only).
        ignore_index: a target value that contributes no loss and no count.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, C, *), ``target`` (N, *), output (N, *) for ``'none'``,
        else scalar.

    Gradients: ``input``. Not checked on lazy arrays (Dask, ``jax.jit``):
    target values.

    Example:
        >>> import numpy as np
        >>> from anyloss.extras import softmax_focal_loss
        >>> x = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -2.0, 0.3]])
        >>> y = np.array([0, 2, 1])
        >>> round(float(softmax_focal_loss(x, y)), 6)
        1.076834
    """
    axis, lp, valid, onehot, lpt, u, a = _parts(xp, input, target, alpha, ignore_index)
    return -a * u ** _exponent(xp, gamma, input.dtype) * lpt, count(xp, valid, input.dtype)
