"""Home of F.cosine_embedding_loss and anyloss.CosineEmbeddingLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import ValueRuntimeError, check_broadcastable, check_number, describe, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, broadcast_shapes, broadcast_to, result_float_dtype, sum_to_shape, vecdot
from ._curves import cosine_angle

# PyTorch's EPSILON in cosine_embedding_loss: added to each squared norm, so
# that a zero vector gives cos = 0 instead of 0/0.
EPSILON = 1e-12


def cosine_embedding_loss(
    input1: Array,
    input2: Array,
    target: Array,
    margin: float | Array = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Whether pairs of vectors are similar (``y = 1``) or dissimilar (``y = -1``), by their cosine.

    .. math::
        \cos_n = \frac{\sum_d x_{1,nd}\, x_{2,nd}}
                      {\sqrt{\left(\sum_d x_{1,nd}^2 + \epsilon\right)\left(\sum_d x_{2,nd}^2 + \epsilon\right)}},
        \qquad
        \ell_n = \begin{cases}
            1 - \cos_n & y_n = 1 \\
            \max(0, \cos_n - \mathrm{margin}) & y_n = -1 \\
            0 & \text{otherwise}
        \end{cases}

    with :math:`\epsilon = 10^{-12}` (PyTorch's ``EPSILON``; a zero vector has
    cosine 0), reduced by ``'none'`` (:math:`\ell`), ``'sum'`` or ``'mean'``
    (over the :math:`N` pairs).

    As in PyTorch, a target other than 1 or -1 gives a zero loss (a boolean
    ``True`` counts as 1, and in an unsigned integer dtype -1 is the largest
    value, e.g. 255 for ``uint8``), and integer or boolean inputs are
    accepted: their products and squares are summed in their integer dtype
    (wrapping around on overflow) and the result is float32.

    Args:
        input1: (N, D) or (D) vectors.
        input2: same shape as ``input1`` (or broadcastable with it).
        target: (N) or () labels, 1 or -1, any real or boolean dtype.
        margin: for ``y = -1``: cosines up to ``margin`` cost nothing.
            PyTorch suggests values in [0, 0.5].
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input1``, ``input2`` (N, D) with ``target`` (N), or (D) with
        ``target`` (); output scalar, or (N) / () for ``'none'``.

    Gradients: ``input1`` and ``input2`` (not ``target``, as in PyTorch). At
    ``cos = margin`` for ``y = -1`` the gradient is that of ``cos - margin``
    (PyTorch's ``clamp_min`` keeps it at the boundary).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> x1 = np.array([[1.0, 0.0], [1.0, 0.0]])
        >>> x2 = np.array([[0.0, 1.0], [1.0, 1.0]])
        >>> F.cosine_embedding_loss(x1, x2, np.array([1, -1]), reduction="none").round(4)
        array([1.    , 0.7071])
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input1, input2, target) = SPEC.adopt(input1=input1, input2=input2, target=target)
    check_number("margin", margin)
    for name, x in (("input1", input1), ("input2", input2), ("target", target)):
        if not xp.isdtype(x.dtype, ("bool", "integral", "real floating")):
            fail(TypeError, name, "have a real or boolean dtype", describe(x))
    if target.ndim not in (0, 1):
        fail(
            ValueRuntimeError,
            "target",
            "be 0- or 1-dimensional (multi-target is not supported)",
            f"shape {tuple(target.shape)}",
        )
    want = target.ndim + 1  # (D) inputs with a () target, (N, D) inputs with an (N) target
    for name, x in (("input1", input1), ("input2", input2)):
        if x.ndim != want:
            fail(
                ValueRuntimeError,
                name,
                f"be {want}-dimensional for a {target.ndim}-dimensional `target`",
                f"shape {tuple(x.shape)}",
            )
    shape = check_broadcastable(input1.shape, "input2", input2, to="`input1`", kind=ValueRuntimeError)
    check_broadcastable(shape[:-1], "target", target, to="the cosines of `input1` and `input2`", kind=ValueRuntimeError)
    return apply(SPEC, xp, (input1, input2, target), reduction, margin=margin)


def _fwd(xp: Namespace, input1: Any, input2: Any, target: Any, margin: Any) -> Forward:
    x1, x2 = _numeric(xp, input1), _numeric(xp, input2)
    floating = xp.isdtype(x1.dtype, "real floating") or xp.isdtype(x2.dtype, "real floating")
    if floating:
        dtype = result_float_dtype(xp, x1, x2)
        x1f, x2f = as_float(xp, x1, dtype), as_float(xp, x2, dtype)
        # sum(x1 * x2, axis=-1), in one pass where no feature axis broadcasts.
        same = x1f.shape[-1:] == x2f.shape[-1:]
        prod = vecdot(xp, x1f, x2f) if same else xp.sum(x1f * x2f, axis=-1)
    else:
        # PyTorch sums integer products exactly (in int64) before the float division.
        prod = xp.astype(xp.sum(x1 * x2, axis=-1), xp.float32)
    # Each squared norm stays in its input's own dtype, as in PyTorch.
    mag1 = _sum_of_squares(xp, x1) + EPSILON
    mag2 = _sum_of_squares(xp, x2) + EPSILON
    denom = xp.sqrt(mag1 * mag2)
    cos = prod / denom

    is_pos, is_neg = _target_masks(xp, target)
    zeros = xp.zeros_like(cos)
    hinge = cos - margin
    loss = xp.where(is_pos, 1.0 - cos, zeros) + xp.where(is_neg, xp.clip(hinge, min=0.0), zeros)
    # clamp_min passes the gradient at exactly cos = margin (PyTorch's self >= min).
    neg_active = is_neg & (hinge >= 0)
    res = (x1f, x2f, prod, mag1, mag2, denom, is_pos, neg_active) if floating else None
    return Forward(loss, res)


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, margin: Any) -> tuple[Any, ...]:
    if res is None:  # integer inputs: nothing to differentiate
        return None, None, None
    x1, x2, prod, mag1, mag2, denom, is_pos, neg_active = res
    zeros = xp.zeros_like(g)
    g_cos = sum_to_shape(xp, xp.where(neg_active, g, zeros) - xp.where(is_pos, g, zeros), prod.shape)
    # cos = prod / sqrt(mag1 * mag2), differentiated step by step as autograd does.
    g_prod = g_cos / denom
    g_denom = -g_cos * prod / (denom * denom)
    g_magmag = g_denom / (2.0 * denom)
    # The inputs may broadcast against each other: every term is summed back
    # to its own operand's shape before the terms are added.
    g_prod = xp.expand_dims(g_prod, axis=-1)
    shape = broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    g1 = g2 = None
    if wanted is None or wanted[0]:
        g_mag1 = xp.expand_dims(sum_to_shape(xp, g_magmag * mag2, mag1.shape), axis=-1)
        g1 = sum_to_shape(xp, broadcast_to(xp, g_prod * x2, shape), x1.shape) + (2.0 * g_mag1) * x1
    if wanted is None or wanted[1]:
        g_mag2 = xp.expand_dims(sum_to_shape(xp, g_magmag * mag1, mag2.shape), axis=-1)
        g2 = sum_to_shape(xp, broadcast_to(xp, g_prod * x1, shape), x2.shape) + (2.0 * g_mag2) * x2
    return g1, g2, None


def _numeric(xp: Namespace, x: Any) -> Any:
    """Booleans as int64: PyTorch's bool products are logical ands, summed as int64 counts."""
    return xp.astype(x, xp.int64) if xp.isdtype(x.dtype, "bool") else x


def _sum_of_squares(xp: Namespace, x: Any) -> Any:
    # One pass for floats; integers are summed exactly in their own dtype.
    s = vecdot(xp, x, x) if xp.isdtype(x.dtype, "real floating") else xp.sum(x * x, axis=-1)
    # An integer sum becomes float32 (PyTorch's default dtype) when EPSILON is added.
    return s if xp.isdtype(s.dtype, "real floating") else xp.astype(s, xp.float32)


def _target_masks(xp: Namespace, target: Any) -> Any:
    """``(target == 1, target == -1)`` as PyTorch compares them."""
    if xp.isdtype(target.dtype, "bool"):
        # True == 1; no boolean equals -1.
        return target, xp.zeros_like(target)
    if xp.isdtype(target.dtype, "unsigned integer"):
        # PyTorch casts the -1 to the target's dtype: it wraps around to the largest value.
        return target == 1, target == xp.iinfo(target.dtype).max
    return target == 1, target == -1


class CosineEmbeddingLoss(Loss):
    """Object form of :func:`cosine_embedding_loss` (``torch.nn.CosineEmbeddingLoss``)."""

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Array, input2: Array, target: Array) -> Array:
        return cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="cosine_embedding_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input1": 0, "input2": 0, "target": -1}),
        argnames=("input1", "input2", "target"),
        differentiable=("input1", "input2"),
        summary="1 - cos for similar pairs, max(0, cos - margin) for dissimilar; embeddings",
        functional=cosine_embedding_loss,
        cls=CosineEmbeddingLoss,
        example=lambda xp: (
            (
                xp.asarray([[1.0, 0.0], [1.0, 1.0]], dtype=xp.float64),
                xp.asarray([[1.0, 1.0], [0.0, 1.0]], dtype=xp.float64),
                xp.asarray([1.0, -1.0], dtype=xp.float64),
            ),
            {},
        ),
        curve=cosine_angle,
    )
)
