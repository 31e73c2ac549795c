"""Home of anyloss.extras.dice_loss."""

from __future__ import annotations

from typing import Any

from .._checks import check_bool
from .._register import register
from .._typing import Namespace
from ._common import Ratio, axes, check_overlap, float_pair, overlap_curve, overlap_example, probabilities


def _check(
    xp: Namespace, input: Any, target: Any, *, dim: Any, smooth: Any, eps: Any, squared: Any, from_logits: Any
) -> Any:
    checked = check_overlap(xp, input, target, dim=dim, smooth=smooth, eps=eps, from_logits=from_logits)
    check_bool("squared", squared)
    return checked


def _ratio(
    xp: Namespace, input: Any, target: Any, dim: Any, smooth: Any, eps: Any, squared: Any, from_logits: Any
) -> Any:
    x, t = float_pair(xp, input, target)
    p = probabilities(xp, x, from_logits)
    return p, Ratio(
        xp, p, t, axes(x.ndim, dim), cn=2.0, ct=0.0, cp=1.0, cq=1.0, k=2 if squared else 1, smooth=smooth, eps=eps
    )


def _gradient(
    xp: Namespace,
    g: Any,
    input: Any,
    target: Any,
    *,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    squared: bool = False,
    from_logits: bool = False,
) -> Any:
    p, r = _ratio(xp, input, target, dim, smooth, eps, squared, from_logits)
    gp = r.vjp(-r.expand(g))
    return gp * (p * (1.0 - p)) if from_logits else gp


@register(
    name="dice_loss",
    catalogue="extras",
    differentiable=("input",),
    check=_check,
    gradient=_gradient,
    example=overlap_example,
    curve=overlap_curve,
    summary="1 - soft Dice coefficient, per sample; segmentation",
)
def dice_loss(
    xp: Namespace,
    input: Any,
    target: Any,
    *,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    squared: bool = False,
    from_logits: bool = False,
) -> Any:
    r"""Soft Dice loss: one minus the soft Dice coefficient (F1 score) of each sample.

    With probabilities :math:`p` (``input``, or :math:`\sigma(\text{input})`
    with ``from_logits=True``) and targets :math:`t`, summed over the axes
    ``dim`` (default: every axis but the first, one value per sample),

    .. math::
        \ell = 1 - \frac{2 \sum p\,t + s}{\max\bigl(\sum p^k + \sum t^k + s,\ \varepsilon\bigr)}

    with :math:`s` = ``smooth``, :math:`\varepsilon` = ``eps`` and :math:`k = 2`
    if ``squared`` (V-Net's form) else 1. ``smooth`` keeps empty masks defined
    (an empty prediction of an empty target scores 1, loss 0); ``eps`` only
    matters when ``smooth`` is 0. The loss has one value per position not in
    ``dim``; ``'mean'`` (default) averages those (over samples, by default),
    ``'sum'`` adds them, ``'none'`` returns them. Per-class Dice of
    (N, C, H, W) scores: ``dim=(2, 3)``, loss (N, C); one Dice over the whole
    batch: ``dim=(0, 1, 2, 3)``.

    References: F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully
    Convolutional Neural Networks for Volumetric Medical Image Segmentation",
    3DV 2016 (arXiv:1606.04797); C. H. Sudre et al., "Generalised Dice overlap
    as a deep learning loss function for highly unbalanced segmentations",
    DLMIA 2017 (arXiv:1707.03237).

    Args:
        input: probabilities in [0, 1] (or logits with ``from_logits=True``), (N, *).
        target: same shape, labels in [0, 1], any real dtype.
        dim: axes summed inside the ratio: ``None``, an int or a tuple of ints.
        smooth: added to numerator and denominator, >= 0.
        eps: lower bound of the denominator, >= 0.
        squared: squares in the denominator (V-Net).
        from_logits: apply a sigmoid to ``input`` first.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, *), ``target`` (N, *), output (N,) for ``'none'`` with
        the default ``dim`` (the axes not in ``dim``), else scalar.

    Gradients: ``input``. Not checked on lazy arrays (Dask, ``jax.jit``):
    values in [0, 1].

    Example:
        >>> import numpy as np
        >>> from anyloss.extras import dice_loss
        >>> p = np.array([[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.6, 0.4]])
        >>> t = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
        >>> dice_loss(p, t, reduction="none").round(6)
        array([0.142857, 0.245902])
    """
    _, r = _ratio(xp, input, target, dim, smooth, eps, squared, from_logits)
    return r.reduced(1.0 - r.ratio)
