"""Home of anyloss.extras.dice_bce_loss."""

from __future__ import annotations

from typing import Any

from .._checks import check_bool, check_number
from .._register import register
from .._typing import Namespace
from .._xp import softplus
from ._common import Ratio, axes, check_overlap, float_pair, mean_over, probabilities


def _check(
    xp: Namespace,
    input: Any,
    target: Any,
    *,
    bce_weight: Any,
    dice_weight: Any,
    dim: Any,
    smooth: Any,
    eps: Any,
    squared: Any,
) -> Any:
    checked = check_overlap(xp, input, target, dim=dim, smooth=smooth, eps=eps)
    check_number("bce_weight", bce_weight, min=0.0)
    check_number("dice_weight", dice_weight, min=0.0)
    check_bool("squared", squared)
    return checked


def _example(xp: Namespace) -> Any:
    input = xp.asarray([[2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, 0.2, 0.8]], dtype=xp.float64)
    target = xp.asarray([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]], dtype=xp.float64)
    return (input, target), {}


def _curve(xp: Namespace, x: Any) -> Any:
    # One pixel per sample, target 1.
    return (x[:, None], xp.ones((x.shape[0], 1), dtype=x.dtype)), "logit x of a pixel (target 1)"


def _parts(xp: Namespace, input: Any, target: Any, dim: Any, smooth: Any, eps: Any, squared: Any) -> Any:
    x, t = float_pair(xp, input, target)
    p = probabilities(xp, x, True)
    ax = axes(x.ndim, dim)
    return (
        x,
        t,
        p,
        ax,
        Ratio(xp, p, t, ax, cn=2.0, ct=0.0, cp=1.0, cq=1.0, k=2 if squared else 1, smooth=smooth, eps=eps),
    )


def _gradient(
    xp: Namespace,
    g: Any,
    input: Any,
    target: Any,
    *,
    bce_weight: float = 1.0,
    dice_weight: float = 1.0,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    squared: bool = False,
) -> Any:
    x, t, p, ax, r = _parts(xp, input, target, dim, smooth, eps, squared)
    g = r.expand(g)
    gx = r.vjp(-float(dice_weight) * g) * (p * (1.0 - p))
    n = 1.0
    for a in ax:
        n *= x.shape[a]
    return gx + (float(bce_weight) / n) * g * (p - t)


@register(
    name="dice_bce_loss",
    catalogue="extras",
    differentiable=("input",),
    check=_check,
    gradient=_gradient,
    example=_example,
    curve=_curve,
    summary="BCE on logits + soft Dice, per sample; segmentation",
)
def dice_bce_loss(
    xp: Namespace,
    input: Any,
    target: Any,
    *,
    bce_weight: float = 1.0,
    dice_weight: float = 1.0,
    dim: Any = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    squared: bool = False,
) -> Any:
    r"""Binary cross-entropy plus soft Dice, both from logits: the common segmentation combination.

    Per sample (the positions not in ``dim``; by default one value per sample),

    .. math::
        \ell = w_{\mathrm{bce}}\;\mathrm{mean}_{\mathrm{dim}}\,\mathrm{BCE}(x, t)
             + w_{\mathrm{dice}}\;\mathrm{Dice}(\sigma(x), t)

    where BCE is ``binary_cross_entropy_with_logits`` elementwise (averaged
    over ``dim``) and Dice is :func:`dice_loss` with the same ``dim``,
    ``smooth``, ``eps`` and ``squared``. With the default ``dim`` and
    ``'mean'``, this is ``binary_cross_entropy_with_logits(x, t)`` plus
    ``dice_loss(x, t, from_logits=True)`` (for equal-sized samples).

    Reference: e.g. F. Isensee et al., "nnU-Net: a self-configuring method for
    deep learning-based biomedical image segmentation", Nature Methods 2021
    (arXiv:1809.10486), which trains on Dice + cross-entropy.

    Args:
        input: logits, (N, *), floating.
        target: same shape, labels in [0, 1], any real dtype.
        bce_weight: weight of the BCE term, >= 0.
        dice_weight: weight of the Dice term, >= 0.
        dim: axes of one Dice ratio and one BCE mean: ``None``, an int or a tuple of ints.
        smooth, eps, squared: as in :func:`dice_loss`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, *), ``target`` (N, *), output (N,) for ``'none'`` with
        the default ``dim``, else scalar.

    Gradients: ``input``. Not checked on lazy arrays (Dask, ``jax.jit``):
    targets in [0, 1].

    Example:
        >>> import numpy as np
        >>> from anyloss.extras import dice_bce_loss
        >>> x = np.array([[2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, 0.2, 0.8]])
        >>> t = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
        >>> round(float(dice_bce_loss(x, t)), 6)
        0.51288
    """
    x, t, p, ax, r = _parts(xp, input, target, dim, smooth, eps, squared)
    bce = mean_over(xp, softplus(xp, x) - x * t, ax, x.shape)
    return r.reduced(float(bce_weight) * bce + float(dice_weight) * (1.0 - r.ratio))
