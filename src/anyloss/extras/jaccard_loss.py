"""Home of anyloss.extras.jaccard_loss."""

from __future__ import annotations

from typing import Any

from .._register import register
from .._typing import Namespace
from ._common import Ratio, axes, check_overlap, float_pair, overlap_curve, overlap_example, probabilities


def _check(xp: Namespace, input: Any, target: Any, *, dim: Any, smooth: Any, eps: Any, from_logits: Any) -> Any:
    checked = check_overlap(xp, input, target, dim=dim, smooth=smooth, eps=eps, from_logits=from_logits)
    return checked


def _ratio(xp: Namespace, input: Any, target: Any, dim: Any, smooth: Any, eps: Any, from_logits: Any) -> Any:
    x, t = float_pair(xp, input, target)
    p = probabilities(xp, x, from_logits)
    # |A ∩ B| / |A ∪ B| = TP / (sum p + sum t - TP)
    return p, Ratio(xp, p, t, axes(x.ndim, dim), cn=1.0, ct=-1.0, cp=1.0, cq=1.0, smooth=smooth, eps=eps)


def _gradient(
    xp: Namespace,
    g: Any,
    input: Any,
    target: Any,
    *,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    from_logits: bool = False,
) -> Any:
    p, r = _ratio(xp, input, target, dim, smooth, eps, from_logits)
    gp = r.vjp(-r.expand(g))
    return gp * (p * (1.0 - p)) if from_logits else gp


@register(
    name="jaccard_loss",
    catalogue="extras",
    differentiable=("input",),
    check=_check,
    gradient=_gradient,
    example=overlap_example,
    curve=overlap_curve,
    summary="1 - soft Jaccard index (IoU), per sample; segmentation",
)
def jaccard_loss(
    xp: Namespace,
    input: Any,
    target: Any,
    *,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    from_logits: bool = False,
) -> Any:
    r"""Soft Jaccard (IoU) loss: one minus the soft intersection over union of each sample.

    With probabilities :math:`p` (``input``, or :math:`\sigma(\text{input})`
    with ``from_logits=True``) and targets :math:`t`, summed over the axes
    ``dim`` (default: every axis but the first, one value per sample),

    .. math::
        \ell = 1 - \frac{\sum p\,t + s}{\max\bigl(\sum p + \sum t - \sum p\,t + s,\ \varepsilon\bigr)}

    with :math:`s` = ``smooth`` and :math:`\varepsilon` = ``eps``; the
    reductions and ``dim`` are those of :func:`dice_loss`.

    References: M. A. Rahman, Y. Wang, "Optimizing Intersection-Over-Union in
    Deep Neural Networks for Image Segmentation", ISVC 2016; M. Berman,
    A. Rannen Triki, M. B. Blaschko, "The Lovász-Softmax loss", CVPR 2018
    (arXiv:1705.08790), on soft Jaccard surrogates.

    Args:
        input: probabilities in [0, 1] (or logits with ``from_logits=True``), (N, *).
        target: same shape, labels in [0, 1], any real dtype.
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
        >>> from anyloss.extras import jaccard_loss
        >>> p = np.array([[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.6, 0.4]])
        >>> t = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
        >>> jaccard_loss(p, t, reduction="none").round(6)
        array([0.212121, 0.348837])
    """
    _, r = _ratio(xp, input, target, dim, smooth, eps, from_logits)
    return r.reduced(1.0 - r.ratio)
