"""Home of F.l1_loss and anyloss.L1Loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, check_same_shape, check_target_broadcast, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, result_float_dtype, sum_to_shape, torch_sign


def l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
) -> Array:
    r"""Mean absolute error between ``input`` and ``target``, optionally weighted.

    .. math::
        \ell_n = w_n \lvert x_n - y_n \rvert

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`; with ``weight``,
    :math:`\sum_n \ell_n / \sum_n w_n`).

    Args:
        input: predictions, any shape, floating (real or complex) or integer dtype.
        target: same shape as ``input``; another shape is broadcast against it
            with a ``UserWarning``, as in PyTorch.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        weight: optional per-element weights, exactly ``input``'s shape.

    Shape:
        ``input`` (*), ``target`` (*), output scalar, or (*) for ``'none'``.

    Integer ``input`` and ``target`` give PyTorch's integer loss for
    ``'none'`` and ``'sum'``; an integer ``'mean'`` is a ``TypeError`` (PyTorch
    refuses the unweighted one too).

    Gradients: ``input``, ``target`` and ``weight``. At :math:`x_n = y_n` the
    subgradient is 0 (:math:`\operatorname{sign}(0) = 0`), as in PyTorch.

    Complex ``input``/``target`` (``torch.nn.L1Loss`` takes them) give a real loss
    :math:`\lvert x_n - y_n \rvert`; the gradient of a complex input is
    ``torch.autograd``'s, :math:`g\,(x_n - y_n) / \lvert x_n - y_n \rvert` (0 where
    they are equal). On PyTorch and JAX such a call is differentiated by the
    framework itself, in its own convention (JAX's is the conjugate).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.l1_loss(np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]]))
        array(1.)
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    for name, x in (("input", input), ("target", target)):
        if not xp.isdtype(x.dtype, ("real floating", "complex floating", "integral")):
            fail(TypeRuntimeError, name, "have a floating-point (real or complex) or integer dtype", x.dtype)
    check_target_broadcast(input, target)
    if weight is not None:
        check_same_shape("input", input, "weight", weight)
    if reduction == "mean" and xp.isdtype(_result_dtype(xp, input, target, weight), "integral"):
        fail(
            TypeRuntimeError,
            "input",
            "have a floating-point dtype (or `target` or `weight` one) for reduction='mean'",
            input.dtype,
        )
    return apply(SPEC, xp, (input, target, weight), reduction)


def _result_dtype(xp: Namespace, *arrays: Any) -> Any:
    # PyTorch computes |x - y| of integers in their promoted integer dtype.
    if any(a is not None and xp.isdtype(a.dtype, ("real floating", "complex floating")) for a in arrays):
        return result_float_dtype(xp, *arrays)
    return xp.result_type(*(a.dtype for a in arrays if a is not None))


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any) -> Forward:
    dtype = _result_dtype(xp, input, target, weight)
    diff = as_float(xp, input, dtype) - as_float(xp, target, dtype)
    loss = xp.abs(diff)
    if weight is None:
        return Forward(loss, (diff, None))
    # A weighted 'mean' divides by the total weight, not the element count.
    if xp.isdtype(dtype, "complex floating"):
        dtype = result_float_dtype(xp, loss, weight)  # |d| is real: a real weight keeps it real
    w = as_float(xp, weight, dtype)
    return Forward(loss * w, (diff, w), xp.sum(w))


def _bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> tuple[Any, ...]:
    diff, w = res
    if xp.isdtype(diff.dtype, "complex floating"):
        # d|d| for complex d, as torch.autograd gives it: g d / |d| (0 at d = 0).
        a = xp.abs(diff)
        zero = a == 0
        sign = xp.where(zero, xp.zeros_like(diff), diff / xp.astype(xp.where(zero, xp.ones_like(a), a), diff.dtype))
    else:
        # sign(0) = 0: PyTorch's subgradient of |d| at d = 0. PyTorch's sign of NaN
        # is 0 too (NumPy's and JAX's is NaN): a NaN difference gets gradient 0.
        sign = torch_sign(xp, diff)
    gi = sign * (g if w is None else w * g)
    if w is None:
        return gi, -gi, None
    gw = xp.abs(diff) * g
    if g_divisor is not None:
        # sum(w) counts each weight once, also where a broadcast input repeats it.
        gw = sum_to_shape(xp, gw, w.shape) + g_divisor
    return gi, -gi, gw


class L1Loss(Loss):
    """Object form of :func:`l1_loss` (``torch.nn.L1Loss``)."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Array, target: Array) -> Array:
        return l1_loss(input, target, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="l1_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0, "weight": 0}, elementwise=True),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        complex=("input", "target", "weight"),
        differentiable=("input", "target", "weight"),
        summary="absolute error |x - y|; robust regression",
        functional=l1_loss,
        cls=L1Loss,
        example=lambda xp: (
            (xp.ones((2, 2), dtype=xp.float64), xp.asarray([[0.0, 1.0], [2.0, 3.0]], dtype=xp.float64)),
            {},
        ),
        curve=lambda xp, x: Curve((x, xp.zeros_like(x)), "error input − target"),
    )
)
