"""Home of anyloss.extras.z_loss_cross_entropy."""

from __future__ import annotations

from typing import Any

from .._checks import check_number
from .._register import register
from .._spec import Curve
from .._typing import Namespace
from .._xp import log_softmax, logsumexp
from ._common import check_class_target, class_axis, class_pick, count, gather


def _check(xp: Namespace, input: Any, target: Any, *, z_loss: Any, ignore_index: Any, label_smoothing: Any) -> Any:
    target = check_class_target(xp, input, target, ignore_index)
    check_number("z_loss", z_loss, min=0.0)
    check_number("label_smoothing", label_smoothing, min=0.0, max=1.0)
    return input, target


def _example(xp: Namespace) -> Any:
    input = xp.asarray([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -2.0, 0.3]], dtype=xp.float64)
    target = xp.asarray([0, 2, 1])
    return (input, target), {"z_loss": 0.1}


def _curve(xp: Namespace, x: Any) -> Any:
    # Two classes, logits (x, 0), target class 0: the loss against the target's logit margin.
    zero = xp.zeros_like(x)
    tangent = xp.stack([xp.ones_like(x), zero], axis=1)
    return Curve(
        (xp.stack([x, zero], axis=1), xp.zeros(x.shape, dtype=xp.int64)),
        "logit margin of the target class",
        {0: tangent},
    )


def _parts(xp: Namespace, input: Any, target: Any, ignore_index: Any) -> Any:
    axis = class_axis(input)
    lp, lse = log_softmax(xp, input, axis), logsumexp(xp, input, axis)
    valid, index, onehot = class_pick(xp, target, ignore_index, input.shape[axis], axis)
    return axis, lp, lse, valid, index, onehot


def _gradient(
    xp: Namespace,
    g: Any,
    input: Any,
    target: Any,
    *,
    z_loss: float = 1e-4,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Any:
    # d/dx_j: p_j - ((1 - eps) [j = y] + eps / C) + 2 z_loss lse p_j.
    axis, lp, lse, valid, index, onehot = _parts(xp, input, target, ignore_index)
    eps, n = float(label_smoothing), input.shape[axis]
    coef = xp.expand_dims(xp.where(valid, g, xp.zeros_like(g)), axis=axis)
    p = xp.exp(lp)
    want = (1.0 - eps) * xp.astype(onehot, input.dtype) + eps / n
    return coef * (p * (1.0 + 2.0 * float(z_loss) * xp.expand_dims(lse, axis=axis)) - want)


@register(
    name="z_loss_cross_entropy",
    catalogue="extras",
    differentiable=("input",),
    check=_check,
    gradient=_gradient,
    example=_example,
    curve=_curve,
    summary="cross-entropy + z_loss * logsumexp(x)^2, keeps logits small (PaLM, ST-MoE)",
)
def z_loss_cross_entropy(
    xp: Namespace,
    input: Any,
    target: Any,
    *,
    z_loss: float = 1e-4,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Any:
    r"""Cross-entropy with an auxiliary z-loss on the softmax normalizer.

    The z-loss pushes :math:`\log Z = \operatorname{logsumexp}(x)` towards 0,
    which keeps the logits from drifting and stabilizes large-model training
    (PaLM uses ``z_loss = 1e-4``). For target class :math:`y_n`,

    .. math::
        \ell_n = \mathrm{CE}_\varepsilon(x_n, y_n) + z\,\bigl(\log \textstyle\sum_c e^{x_{n,c}}\bigr)^2, \qquad
        \mathrm{CE}_\varepsilon = -(1 - \varepsilon) \log p_{n, y_n} - \frac{\varepsilon}{C} \sum_c \log p_{n, c}

    (:math:`\varepsilon` = ``label_smoothing``, as in ``cross_entropy``), and
    :math:`\ell_n = 0` where :math:`y_n` is ``ignore_index``. ``'mean'``
    divides the sum by the number of targets not ignored, so ``z_loss = 0``
    is exactly ``cross_entropy`` (without ``weight``).

    Label-smoothed cross-entropy alone needs no extra: it is
    ``anyloss.functional.cross_entropy(..., label_smoothing=eps)``.

    References: A. Chowdhery et al., "PaLM: Scaling Language Modeling with
    Pathways", 2022 (arXiv:2204.02311), Section 5; B. Zoph et al., "ST-MoE:
    Designing Stable and Transferable Sparse Expert Models", 2022
    (arXiv:2202.08906), Section 3 (the router z-loss).

    Args:
        input: logits, (C,), (N, C) or (N, C, d1, ...), floating.
        target: class indices, ``input``'s shape without the class axis, any
            integer dtype, in [0, C) or ``ignore_index``.
        z_loss: coefficient of the z-loss, >= 0 (keyword-only).
        ignore_index: a target value that contributes no loss and no count.
        label_smoothing: :math:`\varepsilon` in [0, 1].
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, C, *), ``target`` (N, *), output (N, *) for ``'none'``,
        else scalar.

    Gradients: ``input``. Not checked on lazy arrays (Dask, ``jax.jit``):
    target values.

    Example:
        >>> import numpy as np
        >>> from anyloss.extras import z_loss_cross_entropy
        >>> x = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -2.0, 0.3]])
        >>> y = np.array([0, 2, 1])
        >>> round(float(z_loss_cross_entropy(x, y, z_loss=0.1)), 6)
        1.820773
    """
    axis, lp, lse, valid, index, onehot = _parts(xp, input, target, ignore_index)
    ce = -gather(xp, lp, index, axis)
    eps = float(label_smoothing)
    if eps > 0.0:
        ce = (1.0 - eps) * ce - (eps / input.shape[axis]) * xp.sum(lp, axis=axis)
    loss = ce + float(z_loss) * lse * lse
    return xp.where(valid, loss, xp.zeros_like(loss)), count(xp, valid, input.dtype)
