"""Home of F.kl_div and anyloss.KLDivLoss."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeRuntimeError, ValueRuntimeError, check_bool, check_broadcastable, check_floating
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, KLDivReduction, Namespace
from .._xp import as_float, device, result_float_dtype
from ._curves import kl_two_class

_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)


def kl_div(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: KLDivReduction = "mean",
    log_target: bool = False,
) -> Array:
    r"""Kullback-Leibler divergence of ``target`` from the distribution whose
    log-probabilities are ``input``, pointwise.

    .. math::
        \ell_n = y_n (\log y_n - x_n) \quad\text{or, with log\_target,}\quad
        \ell_n = e^{y_n} (y_n - x_n)

    where :math:`y_n \log y_n` is 0 at :math:`y_n = 0` (``xlogy``) and NaN for
    :math:`y_n < 0`, as in PyTorch. Reduced by ``'none'``, ``'sum'``,
    ``'batchmean'`` (:math:`\sum_n \ell_n` divided by ``input``'s first
    dimension, the KL divergence per sample; a 0-d ``input`` is not divided) or
    ``'mean'`` (:math:`\sum_n \ell_n / N` over all elements, with PyTorch's
    ``UserWarning`` that it is not the KL divergence).

    Args:
        input: log-probabilities, any shape, floating dtype.
        target: probabilities (log-probabilities with ``log_target``),
            broadcastable with ``input``, floating dtype.
        size_average, reduce: deprecated; see ``reduction``. As in PyTorch,
            when either is given together with ``reduction='batchmean'``, the
            legacy reduction is applied and *then* divided by ``input``'s first
            dimension.
        reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``.
        log_target: whether ``target`` is given as log-probabilities.

    Shape:
        ``input`` (*), ``target`` (*), output scalar, or (*) for ``'none'``.

    Gradients: ``input`` and ``target``. For ``target`` PyTorch's ``xlogy`` VJP
    gives :math:`\log y + 1 - x`, which is NaN at :math:`y = 0` (its ``y / y``
    term); anyloss gives the same NaN.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> F.kl_div(np.log(np.array([[0.5, 0.5]])), np.array([[0.25, 0.75]]), reduction="batchmean")
        array(0.13081204)
    """
    legacy = size_average is not None or reduce is not None
    if legacy:
        red = legacy_reduction(size_average, reduce, reduction)
    else:
        red = check_reduction(reduction, allowed=("none", "batchmean", "sum", "mean"))
        if red == "mean":
            warnings.warn(_MEAN_WARNING, UserWarning, stacklevel=2)
    check_bool("log_target", log_target)
    xp, (input, target) = SPEC.adopt(input=input, target=target)
    check_floating(xp, "input", input, TypeRuntimeError)
    check_floating(xp, "target", target, TypeRuntimeError)
    shape = check_broadcastable(input.shape, "target", target, kind=ValueRuntimeError)
    red, computed = _batchmean(red, reduction, input, shape)
    return apply(SPEC, xp, (input, target), red, computed, log_target=log_target)


def _batchmean(red: Any, reduction: Any, input: Any, shape: Any) -> Any:
    """PyTorch's 'batchmean': reduce with ``red`` (``'sum'`` unless legacy
    arguments chose another), then divide by ``input.shape[0]`` when ``input``
    is not 0-d. It is ``input``'s first dimension even when ``target``
    broadcasts ``input`` to a bigger batch, so the division is done here through
    the ``'mean'`` divisor rather than by the shared ``'batchmean'``.

    Returns the reduction to apply and the fwd's computed ``divisor`` (the
    ``'mean'`` divisor) and ``scale`` (an elementwise divisor, for legacy
    ``reduce=False`` with ``'batchmean'``)."""
    if red == "batchmean":
        red = "sum"
    if reduction != "batchmean" or input.ndim == 0:
        return red, {}
    n = input.shape[0]
    if red == "none":
        return "none", {"scale": n}
    # An empty batch gives 0/0 = NaN in PyTorch; a NaN divisor gives it without a 0/0 warning.
    divisor = float(n) if red == "sum" else float(math.prod(shape) * n)  # legacy 'mean', then / n
    return "mean", {"divisor": divisor or float("nan")}


def _fwd(xp: Namespace, input: Any, target: Any, *, log_target: Any, divisor: Any = None, scale: Any = None) -> Forward:
    dtype = result_float_dtype(xp, input, target)
    x, y = as_float(xp, input, dtype), as_float(xp, target, dtype)
    if log_target:
        ey = xp.exp(y)
        loss = ey * (y - x)
        res = (x, y, ey)
    else:
        # xlogy(y, y) - y x: log y floored at the dtype's lowest number, so that y log y
        # is 0 at y == 0 (NaN stays NaN, and log of y > 0 is itself): no select and no
        # comparison, which XLA's CPU reductions do not fuse.
        log_y = xp.maximum(xp.log(y), xp.full((), xp.finfo(dtype).min, dtype=dtype, device=device(y)))
        loss = y * log_y - y * x
        res = (x, y, log_y)
    if scale is not None:
        loss = loss / scale
    return Forward(loss, res, divisor)


def _bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    log_target: Any,
    divisor: Any = None,
    scale: Any = None,
) -> tuple[Any, ...]:
    x, y, aux = res
    if scale is not None:
        g = g / scale
    if log_target:
        ey = aux
        gx = -ey * g
        if wanted is not None and not wanted[1]:
            return gx, None
        # d/dy of e^y (y - x): e^y (y - x) + e^y.
        return gx, g * (y - x) * ey + g * ey
    log_y = aux
    if wanted is not None and not wanted[1]:
        return -g * y, None
    # PyTorch's xlogy VJPs (y is both arguments): g xlogy(y != 0, y) + g y / y,
    # the second in its order (g y can be subnormal). g y / y is NaN at y == 0,
    # set without a 0/0 (NumPy would warn) by a factor NaN there: linear in g, as
    # every bwd is (JAX's tangent rule transposes it), with no NaN elsewhere.
    nonzero = y != 0
    nan_at_zero = xp.where(nonzero, xp.ones_like(y), xp.full_like(y, xp.nan))
    g_y_over_y = xp.where(nonzero, (g * y) / xp.where(nonzero, y, xp.ones_like(y)), g) * nan_at_zero
    gy = g * log_y + g_y_over_y - g * x
    return -g * y, gy


class KLDivLoss(Loss):
    """Object form of :func:`kl_div` (``torch.nn.KLDivLoss``)."""

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: KLDivReduction = "mean",
        log_target: bool = False,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Array, target: Array) -> Array:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: KLDivReduction
        __call__ = forward


def _native(F: Any, spec: Any, arrays: Any, reduction: Any, options: Any, computed: Any) -> Any:
    """PyTorch's kl_div for a call without legacy arguments: 'batchmean' came
    here as 'sum', or as 'mean' over the batch size (see _batchmean)."""
    input, target = arrays
    if "scale" in computed:
        return NotImplemented
    if "divisor" in computed:
        n = input.shape[0]
        if computed["divisor"] != (float(n) or float("nan")):
            return NotImplemented  # legacy 'mean' then batchmean: anyloss's own code
        reduction = "batchmean"
    return F.kl_div(input, target, reduction=reduction, log_target=options["log_target"])


SPEC = register_spec(
    LossSpec(
        name="kl_div",
        native=_native,
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(
            rows={"input": 0, "target": 0},
            rows_divisor=lambda xp, arrays, options, computed: computed.get("divisor"),
            elementwise=True,
        ),
        argnames=("input", "target"),
        differentiable=("input", "target"),
        summary="y (log y - x), x log-probabilities; distribution matching",
        functional=kl_div,
        cls=KLDivLoss,
        example=lambda xp: (
            (xp.log(xp.asarray([[0.5, 0.5]], dtype=xp.float64)), xp.asarray([[0.25, 0.75]], dtype=xp.float64)),
            {"reduction": "batchmean"},
        ),
        curve=kl_two_class,
    )
)
