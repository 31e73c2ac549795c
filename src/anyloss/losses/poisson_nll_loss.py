"""Home of F.poisson_nll_loss and anyloss.PoissonNLLLoss."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import array_api_compat as _compat

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, ValueRuntimeError, check_bool, check_broadcastable, check_number, fail
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Curve, Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, sum_to_shape


def poisson_nll_loss(
    input: Array,
    target: Array,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float | Array = 1e-08,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Negative log likelihood of ``target`` under a Poisson distribution of rate ``input``.

    .. math::
        \ell_n = \begin{cases}
            e^{x_n} - y_n x_n, & \text{if log\_input (} x \text{ is the log rate);}\\
            x_n - y_n \log(x_n + \text{eps}), & \text{otherwise,}
        \end{cases}

    plus, when ``full``, Stirling's approximation of :math:`\log(y_n!)`,
    :math:`y_n \log y_n - y_n + \tfrac12 \log(2\pi y_n)`, for :math:`y_n > 1`
    only (0 where :math:`y_n \le 1`). Reduced by ``'none'`` (:math:`\ell`),
    ``'sum'`` (:math:`\sum_n \ell_n`) or ``'mean'`` (:math:`\sum_n \ell_n / N`).

    Args:
        input: the log rate (``log_input=True``) or the rate, any shape.
        target: Poisson counts, broadcast against ``input`` (no warning, as in
            PyTorch). Values are not checked. Integer arrays are accepted, as in
            PyTorch (two integer arrays give float32; a boolean ``input`` only
            with ``log_input``, a boolean ``target`` only without ``full``).
        log_input: whether ``input`` is the log of the rate.
        full: add the Stirling term.
        size_average, reduce: deprecated; see ``reduction``.
        eps: added to the rate before its log when ``log_input=False``: a
            real number, or a 0-d real array (a JAX tracer under ``jit``;
            ``jax.grad`` differentiates with respect to it).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` and ``target`` broadcastable to (*); output scalar, or (*)
        for ``'none'``.

    Gradients: ``input`` and ``target`` (floating ones). With ``full``, the
    target gradient is NaN where ``target <= 0``: PyTorch differentiates the
    masked-out Stirling term (``0 * log(0)``), and so do we.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.poisson_nll_loss(np.array([0.0, 1.0]), np.array([1.0, 3.0]), reduction="none")
        array([ 1.        , -0.28171817])
    """
    check_bool("log_input", log_input)
    check_bool("full", full)
    # PyTorch takes any Python real here, True included (it is the number 1); a
    # 0-d array is taken as it is (check_number: TypeError for anything else).
    if isinstance(eps, numbers.Real):
        eps = float(eps)
    else:
        check_number("eps", eps)
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target) = SPEC.adopt(input=input, target=target)
    _check_numeric(xp, "input", input, allow_bool=log_input)
    _check_numeric(xp, "target", target, allow_bool=not full)
    check_broadcastable(input.shape, "target", target, kind=ValueRuntimeError)
    return apply(SPEC, xp, (input, target), reduction, log_input=log_input, full=full, eps=eps)


def _check_numeric(xp: Namespace, name: Any, x: Any, allow_bool: Any) -> None:
    kinds = ("real floating", "integral", "bool") if allow_bool else ("real floating", "integral")
    if not xp.isdtype(x.dtype, kinds):
        fail(TypeRuntimeError, name, "have a real " + ("or boolean " if allow_bool else "") + "dtype", x.dtype)


def _float_dtype(xp: Namespace, *arrays: Any) -> Any:
    """PyTorch's result dtype: the promoted floating dtype, float32 (its default) if none is floating."""
    floats = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    return xp.result_type(*floats) if floats else xp.float32


def _fwd(xp: Namespace, input: Any, target: Any, *, log_input: Any, full: Any, eps: Any) -> Forward:
    dtype = _float_dtype(xp, input, target)
    x, y = as_float(xp, input, dtype), as_float(xp, target, dtype)
    # exp/log of the input run in the input's own floating dtype, as in PyTorch.
    x_own = as_float(xp, input, _float_dtype(xp, input))
    if log_input:
        loss = as_float(xp, xp.exp(x_own), dtype) - y * x
    else:
        loss = x - y * as_float(xp, xp.log(x_own + _in_dtype(xp, eps, x_own.dtype)), dtype)
    if full:
        y_own = as_float(xp, target, _float_dtype(xp, target))
        # Stirling's term only where target > 1; elsewhere it is 0 (evaluated at a
        # harmless 2 so that 0 * log(0) raises no warning). A NaN target stays NaN.
        masked = y_own <= 1.0
        safe = xp.where(masked, xp.full_like(y_own, 2.0), y_own)
        stirling = safe * xp.log(safe) - safe + 0.5 * xp.log(2 * math.pi * safe)
        loss = loss + as_float(xp, xp.where(masked, xp.zeros_like(stirling), stirling), dtype)
    return Forward(loss, (x, y, input, target))


def _bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, log_input: Any, full: Any, eps: Any
) -> tuple[Any, ...]:
    x, y, input, target = res
    # When target and input broadcast, PyTorch applies the derivatives of exp/log(input)
    # in input's shape, and Stirling's in target's, after summing the cotangent to that
    # shape. Doing the same keeps its NaNs (0 * inf once an empty or infinite sum meets
    # a masked or overflowing term); sum_to_shape is free when no broadcast happened.
    gx = gy = None
    if xp.isdtype(input.dtype, "real floating"):  # integer and boolean arrays get no gradient
        g_x = sum_to_shape(xp, g, x.shape)
        if log_input:
            gx = g_x * as_float(xp, xp.exp(input), x.dtype) - sum_to_shape(xp, g * y, x.shape)
        else:
            gx = g_x - sum_to_shape(xp, g * y, x.shape) / (x + _in_dtype(xp, eps, x.dtype))
    if xp.isdtype(target.dtype, "real floating"):
        gy = -sum_to_shape(xp, g * (x if log_input else xp.log(x + _in_dtype(xp, eps, x.dtype))), y.shape)
        if full:
            gy = gy + _stirling_grad(xp, sum_to_shape(xp, g, y.shape), y)
    return gx, gy


def _in_dtype(xp: Namespace, eps: Any, dtype: Any) -> Any:
    """A 0-d array ``eps`` in ``dtype``, as a Python float is (it does not widen the input)."""
    if isinstance(eps, numbers.Real):
        return eps
    return xp.astype(eps, dtype) if _compat.array_namespace(eps) is xp else xp.asarray(eps, dtype=dtype)


def _stirling_grad(xp: Namespace, g: Any, y: Any) -> Any:
    """VJP of the masked Stirling term: d/dy [y log y - y + log(2 pi y) / 2] = log y + 1/(2y)
    where y > 1, written in the order autograd chains it."""
    masked = y <= 1.0
    safe = xp.where(masked, xp.full_like(y, 2.0), y)
    dst = g * xp.log(safe) + (g * safe) / safe - g + (0.5 * g) / (2 * math.pi * safe) * (2 * math.pi)
    # Masked entries get a zero cotangent, which PyTorch still pushes through log(y)
    # and 1/y: 0 * log(0) is NaN for y <= 0, and the result is 0 for 0 < y <= 1.
    # (The NaN is a factor, so that the map stays linear in g, as every bwd is:
    # JAX transposes it, and a NaN must not reach the other entries.)
    kept = xp.where(masked, xp.where(y > 0.0, xp.zeros_like(dst), g), dst)
    return kept * xp.where(masked & (y <= 0.0), xp.full_like(y, math.nan), xp.ones_like(y))


class PoissonNLLLoss(Loss):
    """Object form of :func:`poisson_nll_loss` (``torch.nn.PoissonNLLLoss``)."""

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Array, target: Array) -> Array:
        # PyTorch names the first argument `log_input` here (whatever self.log_input says).
        return poisson_nll_loss(
            log_input, target, log_input=self.log_input, full=self.full, eps=self.eps, reduction=self.reduction
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


SPEC = register_spec(
    LossSpec(
        name="poisson_nll_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0}, elementwise=True),
        argnames=("input", "target"),
        differentiable=("input", "target"),
        summary="Poisson negative log likelihood, optional Stirling term; count regression",
        functional=poisson_nll_loss,
        cls=PoissonNLLLoss,
        example=lambda xp: ((xp.asarray([0.0, 1.0], dtype=xp.float64), xp.asarray([1.0, 3.0], dtype=xp.float64)), {}),
        curve=lambda xp, x, log_input=True: Curve(
            (x, xp.ones_like(x)),
            ("log-rate" if log_input else "rate") + " input (target 1)",
            domain=None if log_input else (0.0, None),
        ),
    )
)
