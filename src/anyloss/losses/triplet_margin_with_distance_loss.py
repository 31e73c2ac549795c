"""Home of F.triplet_margin_with_distance_loss and anyloss.TripletMarginWithDistanceLoss."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._call import apply
from .._checks import TypeRuntimeError, check_number, describe, fail
from .._module import Loss
from .._reduction import check_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import sum_to_shape
from ._curves import triplet
from ._distance import (
    PAIRWISE_DISTANCE,
    Distance,
    check_triplet_ndim,
    check_triplet_shapes,
    triplet_hinge,
    triplet_hinge_vjp,
)


def triplet_margin_with_distance_loss(
    anchor: Array,
    positive: Array,
    negative: Array,
    *,
    distance_function: Callable[[Array, Array], Array] | None = None,
    margin: float | Array = 1.0,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> Array:
    r"""Triplet loss with any distance: the anchor should be closer to the positive than to the negative.

    .. math::
        \ell_n = \max\left(0,\ \mathrm{margin} + d(a_n, p_n) - d(a_n, n_n)\right)

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` or ``'mean'``. With
    ``swap``, :math:`d(a_n, n_n)` is replaced by
    :math:`\min(d(a_n, n_n), d(p_n, n_n))` (note the order: the swap distance
    is ``distance_function(positive, negative)``, as in PyTorch).

    Args:
        anchor, positive, negative: arrays with the same number of
            dimensions; for the default distance, (N, D) or (D) and
            broadcastable with each other.
        distance_function: ``d(x1, x2) -> distances``, default PyTorch's
            ``pairwise_distance`` (:math:`\lVert x_1 - x_2 + 10^{-6}\rVert_2`
            over the last dimension). Any callable works on the arrays it is
            given; to get gradients on arrays without autograd (NumPy,
            array-api-strict, Dask, CuPy), pass an :class:`anyloss.Distance`
            that carries a ``vjp`` (``anyloss.Distance(fn, vjp)``, or
            ``anyloss.Distance.pairwise(p, eps)``).
        margin: must be > 0.
        swap: use the distance swap (any truthy value, as in PyTorch).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        inputs (N, D) or (D) for the default distance; output scalar, or the
        distances' shape, (N) or (), for ``'none'``.

    Gradients: ``anchor``, ``positive`` and ``negative``. The hinge passes
    the gradient at exactly 0 and a tie in the swap's minimum gives half to
    each distance (PyTorch's conventions); the distance's own gradient is its
    ``vjp``. With a plain callable (no ``vjp``), ``anyloss.value_and_grad``,
    ``grad`` and ``vjp`` raise ``ValueError`` naming ``distance_function``;
    PyTorch tensors that require grad and ``jax.grad`` differentiate the
    callable themselves.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[3.0, 0.0]])
        >>> l1 = lambda x1, x2: np.abs(x1 - x2).sum(-1)
        >>> F.triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1, margin=3.0)
        array(1.)
    """
    reduction = check_reduction(reduction)
    check_number("margin", margin, min=0, min_inclusive=False)
    xp, (anchor, positive, negative) = SPEC.adopt(anchor=anchor, positive=positive, negative=negative)
    check_triplet_ndim(anchor, positive, negative)
    swap = bool(swap)  # PyTorch tests `if swap:`
    if distance_function is None:
        distance_function = PAIRWISE_DISTANCE
    elif not isinstance(distance_function, Distance):
        if not callable(distance_function):
            fail(
                TypeError,
                "distance_function",
                "be callable (x1, x2) -> distances, or None",
                describe(distance_function),
            )
        distance_function = Distance(distance_function)
    if distance_function is PAIRWISE_DISTANCE:
        for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
            if not xp.isdtype(x.dtype, ("integral", "real floating")):
                fail(TypeRuntimeError, name, "have a real (integer or floating-point) dtype", describe(x))
        check_triplet_shapes(anchor, positive, negative, swap)
    arrays = (anchor, positive, negative)
    options: dict[str, Any] = {"distance_function": distance_function, "margin": margin, "swap": swap}
    return apply(SPEC, xp, arrays, reduction, **options)


def _fwd(
    xp: Namespace, anchor: Any, positive: Any, negative: Any, distance_function: Any, margin: Any, swap: Any
) -> Forward:
    d_pos = distance_function(anchor, positive)
    d_neg = distance_function(anchor, negative)
    d_swap = distance_function(positive, negative) if swap else None
    loss, r_hinge = triplet_hinge(xp, margin, d_pos, d_neg, d_swap)
    return Forward(loss, (anchor, positive, negative, r_hinge))


def _bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    distance_function: Any,
    margin: Any,
    swap: Any,
) -> tuple[Any, ...]:
    vjp = distance_function.vjp
    if vjp is None:
        fail(
            ValueError,
            "distance_function",
            "carry an analytic gradient to be differentiated on arrays without autograd: pass "
            "anyloss.Distance(fn, vjp) (or use PyTorch tensors with requires_grad, or jax.grad)",
            f"{distance_function.name!r} without a vjp",
        )
    anchor, positive, negative, r_hinge = res
    g_pos, g_neg, g_swap = triplet_hinge_vjp(xp, r_hinge, g)
    ga, gp = vjp(anchor, positive, g_pos)
    ga_n, gn = vjp(anchor, negative, g_neg)
    # Each distance may broadcast its pair its own way: sum back before adding up.
    ga = sum_to_shape(xp, ga, anchor.shape) + sum_to_shape(xp, ga_n, anchor.shape)
    gp, gn = sum_to_shape(xp, gp, positive.shape), sum_to_shape(xp, gn, negative.shape)
    if swap:
        gp_s, gn_s = vjp(positive, negative, g_swap)
        gp = gp + sum_to_shape(xp, gp_s, positive.shape)
        gn = gn + sum_to_shape(xp, gn_s, negative.shape)
    return ga, gp, gn


class TripletMarginWithDistanceLoss(Loss):
    """Object form of :func:`triplet_margin_with_distance_loss` (``torch.nn.TripletMarginWithDistanceLoss``)."""

    def __init__(
        self, *, distance_function: Any = None, margin: float = 1.0, swap: bool = False, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(size_average=None, reduce=None, reduction=reduction)
        check_number("margin", margin, min=0, min_inclusive=False)
        self.distance_function = distance_function if distance_function is not None else PAIRWISE_DISTANCE
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: Array, positive: Array, negative: Array) -> Array:
        return triplet_margin_with_distance_loss(
            anchor,
            positive,
            negative,
            distance_function=self.distance_function,
            margin=self.margin,
            swap=self.swap,
            reduction=self.reduction,
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


def _native(F: Any, spec: Any, arrays: Any, reduction: Any, options: Any, computed: Any) -> Any:
    """PyTorch's own for the default distance; a user's distance function runs
    in anyloss's code (with its analytic gradient, where it has one)."""
    if options["distance_function"] is not PAIRWISE_DISTANCE:
        return NotImplemented
    return F.triplet_margin_with_distance_loss(
        *arrays, margin=options["margin"], swap=options["swap"], reduction=reduction
    )


SPEC = register_spec(
    LossSpec(
        name="triplet_margin_with_distance_loss",
        native=_native,
        fwd=_fwd,
        bwd=_bwd,
        argnames=("anchor", "positive", "negative"),
        differentiable=("anchor", "positive", "negative"),
        summary="max(0, margin + d(a, p) - d(a, n)) with any distance d; metric learning",
        functional=triplet_margin_with_distance_loss,
        cls=TripletMarginWithDistanceLoss,
        example=lambda xp: (
            (
                xp.asarray([[0.0, 0.0]], dtype=xp.float64),
                xp.asarray([[0.0, 1.0]], dtype=xp.float64),
                xp.asarray([[3.0, 0.0]], dtype=xp.float64),
            ),
            {"margin": 3.0},
        ),
        # A plain callable has no vjp: PyTorch autograd or jax.grad differentiate it themselves.
        gradient_for=lambda options: options["distance_function"].vjp is not None,
        curve=triplet,
    )
)
