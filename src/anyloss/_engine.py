"""The two halves of a loss call that every strategy shares: ``forward`` runs a
loss's ``fwd`` and the reduction and keeps what the backward pass needs in a
``Record``; ``backward`` runs the reduction's VJP and the loss's ``bwd``.

The gradient functions (``_autodiff``) and the framework bridges
(``_bridges/torch.py``, ``_bridges/jax.py``) call these two; ``_call.py``
chooses which of them runs a call. Here nothing is chosen, except that a
forward on concrete arrays may be computed by an accelerator (``_accel``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import array_api_compat as _compat
import numpy as np

from . import _accel
from ._reduction import reduce, reduce_vjp
from ._typing import Namespace
from ._xp import read, sum_to_shape

if TYPE_CHECKING:
    from ._spec import LossSpec


@dataclass
class Record:
    """One loss call as the backward pass needs it."""

    spec: LossSpec
    xp: Namespace
    arrays: tuple[Any, ...]
    options: dict[str, Any]  # the user's, as checked
    computed: dict[str, Any]  # what the loss's function derived for its fwd/bwd
    reduction: str
    value: object  # the reduced loss returned to the caller
    loss: object = None  # the unreduced loss
    divisor: object = None
    res: object = None
    wanted: tuple[bool, ...] | None = None  # which arrays' cotangents will be asked for (None: all)
    # Cotangents the forward already computed (an accelerator) for the cotangent
    # 1 of the value; None where not wanted.
    cts: tuple[Any, ...] | None = None


def wanted_mask(
    spec: LossSpec, xp: Namespace, arrays: Sequence[Any], wanted: Sequence[Any] | None = None
) -> tuple[bool, ...]:
    """Which arrays get a cotangent: given, floating, named differentiable by
    the spec, and asked for in ``wanted`` (``None``: any)."""
    return tuple(
        a is not None
        and name in spec.differentiable
        and xp.isdtype(a.dtype, ("real floating", "complex floating"))
        and (wanted is None or (k < len(wanted) and bool(wanted[k])))
        for k, (a, name) in enumerate(zip(arrays, spec.argnames))
    )


# PyTorch computes at its special values (log of 0, 0 / 0, inf - inf, exp
# overflowing) without a word; NumPy (under array-api-strict too) computes the
# same numbers with RuntimeWarnings ("invalid value encountered in log"). Both
# halves run with NumPy's warnings off there: the numbers are unchanged. (Only
# there: other libraries do not warn, and tracers such as torch.compile's
# cannot follow NumPy's error state.)
def _quiet(xp: Namespace) -> contextlib.AbstractContextManager[Any]:
    if _compat.is_numpy_namespace(xp) or _compat.is_array_api_strict_namespace(xp):
        return np.errstate(all="ignore")
    return contextlib.nullcontext()


def forward(
    spec: LossSpec,
    xp: Namespace,
    arrays: Iterable[Any],
    reduction: str,
    options: dict[str, Any],
    computed: dict[str, Any],
    wanted: Sequence[Any] | None = None,
    *,
    accelerate: bool = True,
) -> tuple[Any, Record]:
    """Unreduced forward, then the reduction: ``(value, Record)``.

    ``wanted`` says which arrays' gradients will be asked for (``None``: any
    of them); an accelerated forward computes exactly those now, and the
    ``bwd`` may skip the others. ``accelerate=False`` runs the
    loss's ``fwd`` as written (a backward that is itself differentiated).
    """
    with _quiet(xp):
        return _forward(spec, xp, tuple(arrays), reduction, options, computed, wanted, accelerate)


def _forward(
    spec: LossSpec,
    xp: Namespace,
    arrays: tuple[Any, ...],
    reduction: str,
    options: dict[str, Any],
    computed: dict[str, Any],
    wanted: Sequence[Any] | None,
    accelerate: bool,
) -> tuple[Any, Record]:
    wanted = wanted_mask(spec, xp, arrays, wanted)
    if accelerate:
        done = _accel.run(spec, xp, arrays, reduction, options, computed, wanted)
        if done is not None:
            value, cts = done
            return value, Record(
                spec, xp, arrays, dict(options), dict(computed), reduction, value, wanted=wanted, cts=cts
            )
    loss, res, divisor = spec.run_fwd(xp, arrays, options, computed)
    value = reduce(xp, loss, reduction, divisor)
    return value, Record(
        spec,
        xp,
        arrays,
        dict(options),
        dict(computed),
        reduction,
        value,
        loss,
        divisor,
        res,
        wanted,
    )


def backward(rec: Record, g: Any, share: bool = False) -> tuple[Any, ...]:
    """Cotangents of ``rec.arrays`` given the cotangent ``g`` of the reduced value.

    The loss's ``bwd`` may return a cotangent in the broadcast shape of the
    loss or in a wider dtype; here it is summed back to its argument's shape
    and cast to its dtype, as autograd does. Cotangents the forward already
    computed are scaled by ``g``; with ``share`` (a caller that asks once) and
    ``g == 1`` they are returned as they are.
    """
    with _quiet(rec.xp):
        return _backward(rec, g, share)


def _backward(rec: Record, g: Any, share: bool) -> tuple[Any, ...]:
    xp, spec = rec.xp, rec.spec
    if spec.bwd is None:
        raise ValueError(
            f"`{spec.name}` has no analytic gradient; differentiate it on a backend with autograd "
            "(PyTorch tensors with requires_grad, or jax.grad) or give it one (anyloss.register(..., gradient=...))"
        )
    if rec.cts is not None:
        if share and read(g) == 1:
            return rec.cts
        return tuple(None if ct is None else ct * xp.astype(g, ct.dtype) for ct in rec.cts)
    g_loss, g_divisor = reduce_vjp(xp, g, rec.reduction, rec.loss, rec.divisor)
    cts = spec.run_bwd(xp, rec.res, g_loss, rec.options, rec.computed, g_divisor=g_divisor, wanted=rec.wanted)
    if len(cts) != len(rec.arrays):
        raise RuntimeError(f"bwd of {spec.name} returned {len(cts)} cotangents for {len(rec.arrays)} arrays")
    out = []
    for ct, a in zip(cts, rec.arrays):
        if ct is not None:
            ct = sum_to_shape(xp, ct, a.shape)
            if xp.isdtype(ct.dtype, "complex floating") and not xp.isdtype(a.dtype, "complex floating"):
                ct = xp.real(ct)  # a real array beside complex ones: autograd's real part
            if ct.dtype != a.dtype:
                ct = xp.astype(ct, a.dtype)
        out.append(ct)
    return tuple(out)
