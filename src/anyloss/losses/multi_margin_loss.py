"""Home of F.multi_margin_loss and anyloss.MultiMarginLoss."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Literal

from .._accel import Hints
from .._call import apply
from .._checks import (
    REAL,
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_class_values,
    check_class_weight,
    check_floating,
    check_integer,
    check_number,
    describe,
    fail,
    namespace,
)
from .._module import WeightedLoss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import add_along, device, index_dtype, size, take_along, where
from ._curves import two_class_logits


def multi_margin_loss(
    input: Array,
    target: Array,
    p: Literal[1, 2] = 1,
    margin: float | Array = 1.0,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Multi-class hinge loss: the score of the target class should beat every
    other class's score by at least ``margin``.

    For a sample with scores :math:`x` over :math:`C` classes and target class :math:`y`,

    .. math::
        \ell = \frac{1}{C} \sum_{i \ne y} w_y \max(0, \text{margin} - x_y + x_i)^p

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`; a weight does not change the divisor).
    As in PyTorch, the class weight is the one of the *target* class, :math:`w_y`.

    Args:
        input: scores, (N, C) or (C); as in PyTorch a 0-d input is one sample of one class.
        target: class indices in [0, C), any integer dtype; (N) for (N, C) input,
            () or (1) for a single sample.
        p: 1 or 2, the power of the hinge.
        margin: a real number (default 1).
        weight: optional per-class weights, 1-D of length C, ``input``'s dtype.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, C) or (C), ``target`` (N) or (); output scalar, or for
        ``'none'`` (N) (or ``target``'s shape for a single sample, as in PyTorch).

    Gradients: ``input`` only (PyTorch refuses a ``weight`` that requires grad).
    A term whose hinge is exactly at its kink (:math:`\text{margin} - x_y + x_i = 0`)
    contributes neither loss nor gradient, as in PyTorch's kernel; so does a NaN
    term. The range of ``target`` is not checked under ``jax.jit`` or on lazy Dask
    arrays. On an empty batch, ``'mean'`` is NaN and ``'sum'`` is 0 (PyTorch 2.13
    returns uninitialized memory there).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> x = np.array([[0.1, 0.2, 0.4, 0.8]])
        >>> print(f"{F.multi_margin_loss(x, np.array([3])):.4f}")
        0.3250
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    if not (isinstance(p, REAL) and p in (1, 2)):
        fail(ValueError, "p", "be 1 or 2", describe(p))
    check_number("margin", margin)
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    check_floating(xp, "input", input, TypeNotImplementedError)
    check_integer(xp, "target", target, TypeRuntimeError)
    if input.ndim > 2 or (input.ndim > 0 and input.shape[-1] == 0):
        fail(ValueRuntimeError, "input", "be (N, C) or (C) with C > 0", f"shape {tuple(input.shape)}")
    n = input.shape[0] if input.ndim == 2 else 1
    c = input.shape[-1] if input.ndim else 1
    if target.ndim > 1 or size(target) != n:
        want = f"({n},)" + (" or ()" if input.ndim < 2 or n == 1 else "")
        fail(
            ValueRuntimeError,
            "target",
            f"have shape {want} for `input` of shape {tuple(input.shape)}",
            f"shape {tuple(target.shape)}",
        )
    check_class_weight(weight, c, input.dtype)
    target = check_class_values(xp, target, c, kind=ValueRuntimeError)
    return apply(
        SPEC,
        xp,
        (input, target, weight),
        reduction,
        p=int(p),
        margin=float(margin) if isinstance(margin, numbers.Real) else xp.asarray(margin, dtype=input.dtype),
    )


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any, *, p: Any, margin: Any) -> Forward:
    n = input.shape[0] if input.ndim == 2 else 1
    c = input.shape[-1] if input.ndim else 1
    x = xp.reshape(input, (n, c))
    t = xp.reshape(xp.astype(target, index_dtype(xp)), (n,))
    cls = xp.arange(c, dtype=index_dtype(xp), device=device(x))
    is_y = cls == t[:, None]
    x_y = take_along(xp, x, t, 1)  # x[n, t[n]]
    z = margin - x_y[:, None] + x
    # Strictly positive terms only: the kink z == 0 and NaN add nothing (PyTorch's `if (z > 0)`).
    active = (z > 0) & ~is_y
    h = z if p == 1 else z * z
    w_y = None
    if weight is not None:
        w_y = xp.take(weight, t)[:, None]
        h = h * w_y
    # Inactive terms are dropped, not multiplied by 0 (an infinite weight must not give NaN).
    h = where(xp, active, h, xp.zeros((), dtype=z.dtype, device=device(z)))
    loss = xp.sum(h, axis=1) / float(c)
    out_shape = (n,) if target.ndim else ()
    return Forward(xp.reshape(loss, out_shape), (z, active, t, w_y, tuple(input.shape)))


def _bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, p: Any, margin: Any
) -> tuple[Any, ...]:
    z, active, t, w_y, shape = res
    n, c = z.shape
    scale = xp.reshape(g, (n, 1)) / float(c)
    if w_y is not None:
        scale = scale * w_y
    # d/dx_i of max(0, margin - x_y + x_i)^p: p = 1 gives 1, p = 2 gives 2 z.
    gi = where(xp, active, scale if p == 1 else 2.0 * z * scale, xp.zeros((), dtype=z.dtype, device=device(z)))
    # x_y appears with a minus sign in every active term of its row (gi is 0 at y).
    gx = add_along(xp, gi, t, -xp.sum(gi, axis=1), 1)
    return xp.reshape(gx, shape), None, None


class MultiMarginLoss(WeightedLoss):
    """Object form of :func:`multi_margin_loss` (``torch.nn.MultiMarginLoss``)."""

    def __init__(
        self,
        p: Literal[1, 2] = 1,
        margin: float = 1.0,
        weight: Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if not (isinstance(p, REAL) and p in (1, 2)):
            fail(ValueError, "p", "be 1 or 2", describe(p))
        if weight is not None:
            namespace(weight=weight)  # an array (TypeError otherwise)
            if weight.ndim != 1:
                fail(ValueError, "weight", "be None or 1-D", f"shape {tuple(weight.shape)}")
        self.p = p
        self.margin = margin

    def forward(self, input: Array, target: Array) -> Array:
        return multi_margin_loss(
            input, target, p=self.p, margin=self.margin, weight=self.weight, reduction=self.reduction
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="multi_margin_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": -1}),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input",),
        summary="multi-class hinge sum_{i != y} max(0, margin - x_y + x_i)^p / C; classification",
        functional=multi_margin_loss,
        cls=MultiMarginLoss,
        example=lambda xp: ((xp.asarray([[0.1, 0.2, 0.4, 0.8]], dtype=xp.float64), xp.asarray([3])), {}),
        curve=two_class_logits,
    )
)
