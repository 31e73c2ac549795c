"""Home of anyloss.extras.tversky_loss."""

from __future__ import annotations

import numbers
from typing import Any

import array_api_compat as _compat

from .._checks import check_number
from .._register import register
from .._typing import Namespace
from ._common import Ratio, axes, check_overlap, float_pair, overlap_curve, overlap_example, probabilities


def _check(
    xp: Namespace, input: Any, target: Any, *, alpha: Any, beta: Any, dim: Any, smooth: Any, eps: Any, from_logits: Any
) -> Any:
    checked = check_overlap(xp, input, target, dim=dim, smooth=smooth, eps=eps, from_logits=from_logits)
    check_number("alpha", alpha, min=0.0)
    check_number("beta", beta, min=0.0)
    return checked


def _example(xp: Namespace) -> Any:
    # The overlap losses' example, with unequal weights of false positives and negatives.
    return overlap_example(xp)[0], {"alpha": 0.3, "beta": 0.7}


def _ratio(
    xp: Namespace, input: Any, target: Any, alpha: Any, beta: Any, dim: Any, smooth: Any, eps: Any, from_logits: Any
) -> Any:
    x, t = float_pair(xp, input, target)
    p = probabilities(xp, x, from_logits)
    # TP + alpha FP + beta FN, with FP = sum p - TP and FN = sum t - TP.
    if isinstance(alpha, numbers.Real) and isinstance(beta, numbers.Real):
        ct, cp, cq = 1.0 - alpha - beta, float(alpha), float(beta)
    else:
        ct, cp, cq = _array_weights(xp, alpha, beta, x.dtype)
    return p, Ratio(xp, p, t, axes(x.ndim, dim), cn=1.0, ct=ct, cp=cp, cq=cq, smooth=smooth, eps=eps)


def _array_weights(xp: Namespace, alpha: Any, beta: Any, dtype: Any) -> Any:
    """``(1 - alpha - beta, alpha, beta)`` in ``dtype`` when a weight is a 0-d
    array (a traced one): as a Python float, it does not widen the input.
    ``1 - alpha - beta`` is computed in the wider of the weights' and the
    input's floating dtypes, then cast, as Python computes it in double."""

    def cast(v: Any, to: Any) -> Any:
        if isinstance(v, numbers.Real):
            return float(v)
        return xp.astype(v, to) if _compat.array_namespace(v) is xp else xp.asarray(v, dtype=to)

    own = [
        v.dtype
        for v in (alpha, beta)
        if not isinstance(v, numbers.Real) and _compat.array_namespace(v) is xp and xp.isdtype(v.dtype, "real floating")
    ]
    wide = xp.result_type(dtype, *own)
    a, b = cast(alpha, wide), cast(beta, wide)
    return cast(1.0 - a - b, dtype), cast(a, dtype), cast(b, dtype)


def _gradient(
    xp: Namespace,
    g: Any,
    input: Any,
    target: Any,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    from_logits: bool = False,
) -> Any:
    p, r = _ratio(xp, input, target, alpha, beta, dim, smooth, eps, from_logits)
    gp = r.vjp(-r.expand(g))
    return gp * (p * (1.0 - p)) if from_logits else gp


@register(
    name="tversky_loss",
    catalogue="extras",
    differentiable=("input",),
    check=_check,
    gradient=_gradient,
    example=_example,
    curve=overlap_curve,
    summary="1 - Tversky index: Dice with weighted FP/FN; imbalanced segmentation",
)
def tversky_loss(
    xp: Namespace,
    input: Any,
    target: Any,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    from_logits: bool = False,
) -> Any:
    r"""Tversky loss: one minus the Tversky index, a Dice that weighs false positives and negatives apart.

    With probabilities :math:`p` (``input``, or :math:`\sigma(\text{input})`
    with ``from_logits=True``) and targets :math:`t`, summed over the axes
    ``dim`` (default: every axis but the first, one value per sample),
    :math:`TP = \sum p\,t`, :math:`FP = \sum p\,(1 - t)`, :math:`FN = \sum (1 - p)\,t`:

    .. math::
        \ell = 1 - \frac{TP + s}{\max\bigl(TP + \alpha\,FP + \beta\,FN + s,\ \varepsilon\bigr)}

    ``alpha = beta = 0.5`` is the Dice index (with smooth :math:`2s`),
    ``alpha = beta = 1`` the Jaccard index; ``beta > alpha`` penalizes
    missed foreground more (recall over precision). Reductions and ``dim`` as
    in :func:`dice_loss`.

    Reference: S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss
    function for image segmentation using 3D fully convolutional deep
    networks", MLMI 2017 (arXiv:1706.05721).

    Args:
        input: probabilities in [0, 1] (or logits with ``from_logits=True``), (N, *).
        target: same shape, labels in [0, 1], any real dtype.
        alpha: weight of false positives, >= 0.
        beta: weight of false negatives, >= 0.
            ``alpha`` and ``beta`` may be 0-d real arrays (scheduled ones,
            JAX tracers under ``jit``; ``jax.grad`` differentiates with
            respect to them); their bounds are checked where their values
            can be read.
        dim: axes summed inside the ratio: ``None``, an int or a tuple of ints.
        smooth: added to numerator and denominator, >= 0.
        eps: lower bound of the denominator, >= 0.
        from_logits: apply a sigmoid to ``input`` first.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, *), ``target`` (N, *), output (N,) for ``'none'`` with
        the default ``dim``, else scalar.

    Gradients: ``input``. Not checked on lazy arrays (Dask, ``jax.jit``):
    values in [0, 1].

    Example:
        >>> import numpy as np
        >>> from anyloss.extras import tversky_loss
        >>> p = np.array([[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.6, 0.4]])
        >>> t = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
        >>> tversky_loss(p, t, alpha=0.3, beta=0.7, reduction="none").round(6)
        array([0.124579, 0.24933 ])
    """
    _, r = _ratio(xp, input, target, alpha, beta, dim, smooth, eps, from_logits)
    return r.reduced(1.0 - r.ratio)
