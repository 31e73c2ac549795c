"""Home of F.triplet_margin_loss and anyloss.TripletMarginLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, check_bool, check_number, describe, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import sum_to_shape
from ._curves import triplet
from ._distance import (
    check_triplet_shapes,
    pairwise_distance_bwd,
    pairwise_distance_fwd,
    triplet_hinge,
    triplet_hinge_vjp,
)


def triplet_margin_loss(
    anchor: Array,
    positive: Array,
    negative: Array,
    margin: float | Array = 1.0,
    p: float | Array = 2,
    eps: float | Array = 1e-06,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Triplet loss: the anchor should be closer to the positive than to the negative, by a margin.

    .. math::
        \ell_n = \max\left(0,\ \mathrm{margin} + d(a_n, p_n) - d(a_n, n_n)\right),
        \qquad d(x, y) = \lVert x - y + \epsilon \rVert_p

    (PyTorch's ``pairwise_distance``: ``eps`` is added to the difference,
    and the ``p``-norm is taken over the last dimension), reduced by
    ``'none'`` (:math:`\ell`), ``'sum'`` or ``'mean'``. With ``swap``,
    :math:`d(a_n, n_n)` is replaced by :math:`\min(d(a_n, n_n), d(p_n, n_n))`
    (the distance swap of Balntas et al., 2016).

    Any real ``p`` is accepted, as in PyTorch: ``p = 0`` counts non-zero
    differences, ``p = inf`` (``-inf``) is the largest (smallest) absolute
    difference, and a negative ``p`` gives :math:`(\sum |d|^p)^{1/p}`.
    Integer inputs are subtracted in their own dtype (wrapping around on
    overflow) and give a float32 loss, as in PyTorch.

    Args:
        anchor, positive, negative: (N, D) or (D) (or () ) arrays with the
            same number of dimensions, broadcastable with each other.
        margin: must be > 0.
        p: the order of the norm.
        eps: added to every difference before the norm.
            ``margin``, ``p`` and ``eps`` are real numbers or 0-d real arrays
            (scheduled or learned ones, JAX tracers under ``jit``; ``jax.grad``
            differentiates with respect to them), whose bounds are checked
            where their values can be read. An array ``p`` computes every
            order with the general formula (selects for 0 and +-inf), which
            gives PyTorch's numbers at 1 and 2 as well.
        swap: use the distance swap.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        inputs (N, D) or (D); output scalar, or (N) / () for ``'none'``.

    Gradients: ``anchor``, ``positive`` and ``negative``, with PyTorch's
    conventions: the hinge passes the gradient at exactly 0; a tie in the
    swap's minimum gives half to each distance; a zero difference has
    gradient 0 (``p = 1``: ``sign(0) = 0``; ``p = 2``: a zero norm gives 0);
    ``p = inf`` shares the gradient among tied maxima; ``p = 0`` has a zero
    gradient (PyTorch gives none at all).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[3.0, 0.0]])
        >>> F.triplet_margin_loss(a, pos, neg, margin=3.0, eps=0.0)
        array(1.)
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (anchor, positive, negative) = SPEC.adopt(anchor=anchor, positive=positive, negative=negative)
    check_number("margin", margin, min=0, min_inclusive=False)
    check_number("p", p)
    check_number("eps", eps)
    check_bool("swap", swap)
    for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        if not xp.isdtype(x.dtype, ("integral", "real floating")):
            fail(TypeRuntimeError, name, "have a real (integer or floating-point) dtype", describe(x))
    check_triplet_shapes(anchor, positive, negative, swap, p)
    return apply(SPEC, xp, (anchor, positive, negative), reduction, margin=margin, p=p, eps=eps, swap=swap)


def _fwd(xp: Namespace, anchor: Any, positive: Any, negative: Any, margin: Any, p: Any, eps: Any, swap: Any) -> Forward:
    d_pos, r_pos = pairwise_distance_fwd(xp, anchor, positive, p, eps)
    d_neg, r_neg = pairwise_distance_fwd(xp, anchor, negative, p, eps)
    d_swap, r_swap = pairwise_distance_fwd(xp, positive, negative, p, eps) if swap else (None, None)
    loss, r_hinge = triplet_hinge(xp, margin, d_pos, d_neg, d_swap)
    shapes = (anchor.shape, positive.shape, negative.shape)
    return Forward(loss, (r_pos, r_neg, r_swap, r_hinge, shapes))


def _bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    margin: Any,
    p: Any,
    eps: Any,
    swap: Any,
) -> tuple[Any, ...]:
    r_pos, r_neg, r_swap, r_hinge, (a_shape, p_shape, n_shape) = res
    g_pos, g_neg, g_swap = triplet_hinge_vjp(xp, r_hinge, g)
    want_p = wanted is None or wanted[1] or swap
    want_n = wanted is None or wanted[2] or swap
    ga, gp = pairwise_distance_bwd(xp, r_pos, g_pos, p, second=want_p)
    ga_n, gn = pairwise_distance_bwd(xp, r_neg, g_neg, p, second=want_n)
    # Each distance broadcasts its pair its own way: sum back before adding up.
    ga = sum_to_shape(xp, ga, a_shape) + sum_to_shape(xp, ga_n, a_shape)
    gp = None if gp is None else sum_to_shape(xp, gp, p_shape)
    gn = None if gn is None else sum_to_shape(xp, gn, n_shape)
    if swap:
        gp_s, gn_s = pairwise_distance_bwd(xp, r_swap, g_swap, p)
        gp, gn = gp + sum_to_shape(xp, gp_s, p_shape), gn + sum_to_shape(xp, gn_s, n_shape)
    return ga, gp, gn


class TripletMarginLoss(Loss):
    """Object form of :func:`triplet_margin_loss` (``torch.nn.TripletMarginLoss``)."""

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        check_number("margin", margin, min=0, min_inclusive=False)
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: Array, positive: Array, negative: Array) -> Array:
        return triplet_margin_loss(
            anchor,
            positive,
            negative,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
            reduction=self.reduction,
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="triplet_margin_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"anchor": 0, "positive": 0, "negative": 0}),
        argnames=("anchor", "positive", "negative"),
        differentiable=("anchor", "positive", "negative"),
        summary="max(0, margin + d(a, p) - d(a, n)) with p-norm distances; metric learning",
        functional=triplet_margin_loss,
        cls=TripletMarginLoss,
        example=lambda xp: (
            (
                xp.asarray([[0.0, 0.0]], dtype=xp.float64),
                xp.asarray([[0.0, 1.0]], dtype=xp.float64),
                xp.asarray([[3.0, 0.0]], dtype=xp.float64),
            ),
            {"margin": 3.0},
        ),
        curve=triplet,
    )
)
