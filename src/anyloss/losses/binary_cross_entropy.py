"""Home of F.binary_cross_entropy and anyloss.BCELoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import (
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_broadcasts_to,
    check_floating,
    check_same_shape,
    check_values,
    fail,
)
from .._module import WeightedLoss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float

# PyTorch's floor under (1 - x) x in the input gradient (EPSILON in ATen's Loss.cpp).
_EPS = 1e-12


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Binary cross entropy between probabilities ``input`` and ``target``.

    .. math::
        \ell_n = -w_n \left[ y_n \max(\log x_n, -100) + (1 - y_n) \max(\log(1 - x_n), -100) \right]

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`, ``N`` the number of elements, also
    with ``weight``).

    As in PyTorch each log is clamped at -100, so a probability of exactly 0
    or 1 gives a finite loss; the input gradient divides by
    :math:`\max((1 - x_n) x_n, 10^{-12})`, so it stays finite there too.

    Args:
        input: probabilities in [0, 1], any shape, floating dtype.
        target: probabilities in [0, 1], exactly ``input``'s shape and dtype
            (PyTorch does not broadcast or promote here).
        weight: optional rescaling weight that broadcasts to ``input``'s shape
            (any real dtype; it is not enlarged: a weight with more dimensions
            than ``input`` is an error).
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (*), ``target`` (*), ``weight`` broadcastable to (*);
        output scalar, or (*) for ``'none'``.

    Gradients: ``input`` and ``target`` (as in PyTorch, the target gradient
    is :math:`-w_n \log(x_n / (1 - x_n))`, unclamped: infinite at 0 and 1).
    ``weight`` has none.

    Not checked on lazy arrays (JAX under ``jit``, Dask): that ``input`` and
    ``target`` lie in [0, 1].

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.binary_cross_entropy(np.array([0.5, 1.0]), np.array([1.0, 0.0]), reduction="none")
        array([  0.69314718, 100.        ])
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    check_floating(xp, "input", input, TypeNotImplementedError)
    check_same_shape("input", input, "target", target)
    if target.dtype != input.dtype:
        fail(TypeRuntimeError, "target", f"have the same dtype as `input` ({input.dtype})", target.dtype)
    if weight is not None:
        check_broadcasts_to(input.shape, "weight", weight, kind=ValueRuntimeError)
    # NaN fails both comparisons, so it is rejected too, as in PyTorch.
    input = check_values(xp, "input", input, _in_unit_interval, "have all elements between 0 and 1", ValueRuntimeError)
    target = check_values(
        xp, "target", target, _in_unit_interval, "have all elements between 0 and 1", ValueRuntimeError
    )
    return apply(SPEC, xp, (input, target, weight), reduction)


def _in_unit_interval(xp: Namespace, a: Any) -> Any:
    return (a >= 0.0) & (a <= 1.0)


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any) -> Forward:
    x, y = input, target
    zero, one = x == 0.0, x == 1.0
    # Each log is clamped at -100 (PyTorch's convention), so x = 0 or 1 gives a finite loss.
    # There the clamped value is filled in directly: log(0) is never evaluated (no NumPy warning).
    log_x = _fill(xp, xp.clip(xp.log(_fill(xp, x, zero, 1.0)), min=-100.0), zero, -100.0)
    log_1mx = _fill(xp, xp.clip(xp.log1p(-_fill(xp, x, one, 0.0)), min=-100.0), one, -100.0)
    loss = (y - 1.0) * log_1mx - y * log_x
    # The loss keeps input's dtype whatever weight's dtype (PyTorch multiplies in place).
    w = None if weight is None else as_float(xp, weight, x.dtype)
    if w is not None:
        loss = loss * w
    return Forward(loss, (x, y, w))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> tuple[Any, ...]:
    x, y, w = res
    # The floor keeps the gradient finite at x = 0 and x = 1 (+-1e12 there, as in PyTorch).
    gx = g * (x - y) / xp.clip((1.0 - x) * x, min=_EPS)
    # PyTorch's target gradient is -logit(x) = -log(x / (1 - x)), unclamped: +inf at 0, -inf at 1.
    zero, one = x == 0.0, x == 1.0
    logit = xp.log(_fill(xp, x, zero | one, 0.5) / (1.0 - _fill(xp, x, zero | one, 0.5)))
    logit = _fill(xp, _fill(xp, logit, zero, float("-inf")), one, float("inf"))
    gy = -logit * g
    if w is not None:
        gx, gy = gx * w, gy * w
    return gx, gy, None


def _fill(xp: Namespace, a: Any, at: Any, value: Any) -> Any:
    """``a`` with ``value`` where ``at``."""
    return xp.where(at, xp.full_like(a, value), a)


class BCELoss(WeightedLoss):
    """Object form of :func:`binary_cross_entropy` (``torch.nn.BCELoss``)."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input: Array, target: Array) -> Array:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="binary_cross_entropy",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0, "weight": 0}, elementwise=True),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input", "target"),
        summary="binary cross entropy of probabilities, logs clamped at -100; binary classification",
        functional=binary_cross_entropy,
        cls=BCELoss,
        example=lambda xp: (
            (xp.asarray([0.8, 0.3, 0.6], dtype=xp.float64), xp.asarray([1.0, 0.0, 1.0], dtype=xp.float64)),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.ones_like(x)), "probability input (target 1)", domain=(0.0, 1.0)),
    )
)
