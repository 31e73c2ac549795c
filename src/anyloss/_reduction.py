"""Reductions, once for every loss: PyTorch's legacy ``size_average``/``reduce``
arguments, ``'none'``/``'mean'``/``'sum'`` and their VJPs.

A loss's forward returns its *unreduced* loss and, where ``'mean'`` is not the
plain average over elements, the divisor to use (the total weight of the
non-ignored targets for ``cross_entropy``, for instance). The reduction and
its gradient are then the same code for all losses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, cast, overload

from . import _xp
from ._checks import check_option
from ._typing import Namespace, Reduction

REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str, *, stacklevel: int = 3) -> str:
    """Resolve PyTorch's deprecated ``size_average``/``reduce`` arguments.

    When either is given it wins over ``reduction``, exactly as in PyTorch:
    ``reduce=False`` gives ``'none'``; otherwise ``size_average=False`` gives
    ``'sum'``; otherwise ``'mean'``. PyTorch warns with a ``UserWarning``
    (same text here).
    """
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return ret


@overload
def check_reduction(reduction: object) -> Reduction: ...
@overload
def check_reduction(reduction: object, allowed: Sequence[str]) -> str: ...
def check_reduction(reduction: object, allowed: Sequence[str] = REDUCTIONS) -> str:
    """``reduction`` when it is one of ``allowed`` (``REDUCTIONS``: then a ``Reduction``); else a ``ValueError``."""
    check_option("reduction", reduction, allowed)
    return cast(str, reduction)


def reduce(xp: Namespace, loss: Any, reduction: str, divisor: Any = None) -> Any:
    """Reduce the unreduced ``loss``.

    ``'mean'`` divides the sum by ``divisor`` (default: the number of
    elements; an empty loss gives NaN, as PyTorch's 0/0). A loss with another
    normalisation (``kl_div``'s ``'batchmean'``) passes its own divisor.
    """
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "mean":
        total = total / _divisor(loss, divisor)
    return _xp.zero_dim(xp, total)


def reduce_vjp(xp: Namespace, g: Any, reduction: str, loss: Any, divisor: Any = None) -> Any:
    """VJP of :func:`reduce`: ``(g_loss, g_divisor)``.

    ``g_loss`` is the cotangent of the unreduced loss. ``g_divisor`` is the
    cotangent of an explicit ``'mean'`` divisor (``None`` otherwise); a loss
    whose divisor depends on a differentiable array (the total weight in a
    weighted ``mse_loss``) chains it into that array's gradient.
    """
    if reduction == "none":
        return g, None
    if reduction == "sum":
        return _xp.broadcast_to(xp, g, loss.shape), None
    d = _divisor(loss, divisor)
    g_divisor = None if divisor is None else -g * xp.sum(loss) / (d * d)
    return _xp.broadcast_to(xp, g / d, loss.shape), g_divisor


def _divisor(loss: Any, divisor: Any) -> Any:
    if divisor is not None:
        return divisor
    n = _xp.size(loss)
    # An empty batch gives PyTorch's 0/0 = NaN, here without NumPy's divide warning.
    return float(n) if n else float("nan")
