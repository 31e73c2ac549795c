"""Home of anyloss.extras.sigmoid_focal_loss."""

from __future__ import annotations

import numbers
from typing import Any

import array_api_compat as _compat

from .._checks import check_floating, check_number, check_same_shape
from .._register import register
from .._typing import Namespace
from .._xp import sigmoid, softplus
from ._common import check_unit_interval, float_pair


def _check(xp: Namespace, inputs: Any, targets: Any, *, alpha: Any, gamma: Any) -> Any:
    check_floating(xp, "inputs", inputs)
    check_same_shape("inputs", inputs, "targets", targets)
    check_number("alpha", alpha, max=1.0)
    check_number("gamma", gamma, min=0.0)
    return inputs, check_unit_interval(xp, "targets", targets)


def _example(xp: Namespace) -> Any:
    inputs = xp.asarray([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]], dtype=xp.float64)
    targets = xp.asarray([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=xp.float64)
    return (inputs, targets), {"reduction": "mean"}


def _curve(xp: Namespace, x: Any) -> Any:
    return (x, xp.ones_like(x)), "logit x (target 1)"


def _parts(xp: Namespace, inputs: Any, targets: Any, alpha: Any) -> Any:
    x, t = float_pair(xp, inputs, targets)
    p, q = sigmoid(xp, x), sigmoid(xp, -x)  # q = 1 - p, without cancellation
    ce = softplus(xp, x) - x * t  # binary_cross_entropy_with_logits, stable
    m = p * (1.0 - t) + q * t  # 1 - p_t
    if isinstance(alpha, numbers.Real):
        a = 1.0 if alpha < 0 else alpha * t + (1.0 - alpha) * (1.0 - t)
    else:  # a 0-d array: the same choice by a select (1 * ce is ce exactly)
        al = _in_dtype(xp, alpha, x.dtype)
        a = xp.where(al < 0, xp.ones_like(t), al * t + (1.0 - al) * (1.0 - t))
    return x, t, p, q, ce, m, a


def _in_dtype(xp: Namespace, v: Any, dtype: Any) -> Any:
    """``float(v)`` for a number; a 0-d array (a traced ``gamma``) cast to ``dtype``,
    as a Python float does not widen the inputs either."""
    if isinstance(v, numbers.Real):
        return float(v)
    return xp.astype(v, dtype) if _compat.array_namespace(v) is xp else xp.asarray(v, dtype=dtype)


def _gradient(xp: Namespace, g: Any, inputs: Any, targets: Any, *, alpha: float = 0.25, gamma: float = 2.0) -> Any:
    # dL/dx = a_t m^gamma [(p - t) + gamma ce (1 - 2t) p q / m]. p q / m is bounded
    # (by 2) and its limit where m = 0 (a saturated, correct hard label) multiplies
    # m^gamma = 0, so it is taken as 0 there: the gradient stays finite.
    x, t, p, q, ce, m, a = _parts(xp, inputs, targets, alpha)
    zero = xp.zeros_like(m)
    r = xp.where(m > 0, p * q / xp.where(m > 0, m, xp.ones_like(m)), zero)
    gamma = _in_dtype(xp, gamma, x.dtype)
    return g * a * m**gamma * ((p - t) + gamma * ce * (1.0 - 2.0 * t) * r)


@register(
    name="sigmoid_focal_loss",
    catalogue="extras",
    default_reduction="none",
    differentiable=("inputs",),
    check=_check,
    gradient=_gradient,
    example=_example,
    curve=_curve,
    summary="focal loss on logits, binary/multi-label (RetinaNet; torchvision.ops)",
)
def sigmoid_focal_loss(xp: Namespace, inputs: Any, targets: Any, *, alpha: float = 0.25, gamma: float = 2.0) -> Any:
    r"""Sigmoid focal loss (Lin et al., 2017), with ``torchvision.ops.sigmoid_focal_loss``'s semantics.

    Binary cross-entropy on logits, down-weighted where the prediction is
    already good, so training focuses on hard examples (RetinaNet's dense
    detector). With :math:`p = \sigma(x)`,

    .. math::
        p_t = p\,y + (1 - p)(1 - y), \qquad
        \alpha_t = \alpha\,y + (1 - \alpha)(1 - y), \\
        \ell = \alpha_t\,(1 - p_t)^{\gamma}\,\mathrm{BCE}(x, y), \qquad
        \mathrm{BCE}(x, y) = -y \log p - (1 - y) \log(1 - p)

    reduced by ``'none'`` (the default, as in torchvision), ``'mean'`` over
    elements or ``'sum'``. ``alpha < 0`` drops the :math:`\alpha_t` weighting;
    ``gamma = 0`` gives the (alpha-weighted) BCE.

    Computed stably from the logits (BCE as softplus, :math:`1 - p_t` from
    :math:`\sigma(\pm x)`), so extreme logits give finite values and gradients.

    Reference: T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss
    for Dense Object Detection", ICCV 2017 (arXiv:1708.02002);
    ``torchvision.ops.sigmoid_focal_loss``.

    Args:
        inputs: logits, any shape, floating.
        targets: same shape; binary labels (or soft labels in [0, 1]), any real dtype.
        alpha: weight of the positives in (0, 1), negatives get ``1 - alpha``;
            negative: no weighting. Keyword-only (positional in torchvision).
        gamma: focusing exponent, >= 0.
            ``alpha`` and ``gamma`` may be 0-d real arrays (scheduled ones,
            JAX tracers under ``jit``; ``jax.grad`` differentiates with
            respect to them); their bounds are checked where their values
            can be read.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` (default ``'none'``).

    Shape:
        ``inputs`` (*), ``targets`` (*), output (*) for ``'none'``, else scalar.

    Gradients: ``inputs`` (targets are labels: no gradient). Not checked on
    lazy arrays (Dask, ``jax.jit``): targets in [0, 1].

    Example:
        >>> import numpy as np
        >>> from anyloss.extras import sigmoid_focal_loss
        >>> x = np.array([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        >>> sigmoid_focal_loss(x, y).shape
        (2, 3)
        >>> round(float(sigmoid_focal_loss(x, y, reduction="mean")), 6)
        0.057318
    """
    x, t, p, q, ce, m, a = _parts(xp, inputs, targets, alpha)
    return a * ce * m ** _in_dtype(xp, gamma, x.dtype)
