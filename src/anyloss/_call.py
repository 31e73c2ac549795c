"""The one call path every loss takes once its arguments are checked.

``apply`` runs the loss's forward and the reduction. Where a gradient will be
wanted it keeps what the backward pass needs:

* inside ``anyloss.value_and_grad``/``grad``/``vjp`` the call is recorded on
  the active tape (``_TAPE``), and ``backward`` later runs the reduction's VJP
  and the loss's own ``bwd``;
* otherwise the forward runs plainly and residuals are dropped.

``forward`` and ``backward`` are the two halves that the gradient functions and
the framework bridges share.
"""

from __future__ import annotations

import contextvars

import array_api_compat as _compat
from dataclasses import dataclass

from ._reduction import reduce, reduce_vjp
from ._xp import sum_to_shape

# The active gradient tape (see _autodiff.py), or None.
_TAPE: contextvars.ContextVar = contextvars.ContextVar("anyloss_tape", default=None)


@dataclass
class Record:
    """One loss call as the backward pass needs it."""

    spec: object
    xp: object
    arrays: tuple
    options: dict
    reduction: str
    value: object  # the reduced loss returned to the caller
    loss: object  # the unreduced loss
    divisor: object
    res: object


def forward(spec, xp, arrays, reduction, options):
    """Unreduced forward, then the reduction: ``(value, Record)``."""
    out = spec.fwd(xp, *arrays, **options)
    loss, res = out[0], out[1]
    divisor = out[2] if len(out) > 2 else None
    value = reduce(xp, loss, reduction, divisor)
    return value, Record(spec, xp, tuple(arrays), dict(options), reduction, value, loss, divisor, res)


def backward(rec: Record, g):
    """Cotangents of ``rec.arrays`` given the cotangent ``g`` of the reduced value.

    The loss's ``bwd`` may return a cotangent in the broadcast shape of the
    loss or in a wider dtype; here it is summed back to its argument's shape
    and cast to its dtype, as autograd does.
    """
    xp = rec.xp
    if rec.spec.bwd is None:
        raise ValueError(
            f"`{rec.spec.name}` has no analytic gradient; differentiate it on a backend with autograd "
            "(PyTorch tensors with requires_grad, or jax.grad) or give it one (anyloss.register(..., gradient=...))"
        )
    g_loss, g_divisor = reduce_vjp(xp, g, rec.reduction, rec.loss, rec.divisor)
    extra = {} if rec.divisor is None else {"g_divisor": g_divisor}
    cts = rec.spec.bwd(xp, rec.res, g_loss, **extra, **rec.options)
    if len(cts) != len(rec.arrays):
        raise RuntimeError(f"bwd of {rec.spec.name} returned {len(cts)} cotangents for {len(rec.arrays)} arrays")
    out = []
    for ct, a in zip(cts, rec.arrays):
        if ct is not None:
            ct = sum_to_shape(xp, ct, a.shape)
            if ct.dtype != a.dtype:
                ct = xp.astype(ct, a.dtype)
        out.append(ct)
    return tuple(out)


def apply(spec, xp, arrays, reduction, options):
    tape = _TAPE.get()
    if tape is not None:
        # Only the outermost loss call is recorded: a loss built on another
        # (cross_entropy on nll_loss) calls its fwd/bwd directly.
        token = _TAPE.set(None)
        try:
            value, rec = forward(spec, xp, arrays, reduction, options)
        finally:
            _TAPE.reset(token)
        tape.record(rec)
        return value
    # Without an analytic gradient there is nothing to attach: the forward runs
    # plainly, so PyTorch autograd or jax.grad differentiate its operations.
    bridge = _bridge(arrays) if spec.has_gradient(options) else None
    if bridge is not None:
        return bridge.apply(spec, xp, arrays, reduction, options)
    return forward(spec, xp, arrays, reduction, options)[0]


def gradient_wanted(arrays) -> bool:
    """Whether a call on ``arrays`` will be differentiated: it is on an
    anyloss gradient tape, or goes through a framework bridge. A loss may then
    compute its gradient during the forward (``linear_cross_entropy``)."""
    return _TAPE.get() is not None or _bridge(arrays) is not None


def _bridge(arrays):
    """The framework bridge these arrays need, or None to run the forward plainly.

    PyTorch tensors that require a gradient go through one autograd.Function;
    JAX arrays go through one custom_vjp. Everything else (NumPy, Dask, CuPy,
    array-api-strict) has no autodiff to attach to."""
    first = next(a for a in arrays if a is not None)
    if _compat.is_torch_array(first):
        from ._bridges import torch as bridge

        return bridge if bridge.wants_grad(arrays) else None
    if _compat.is_jax_array(first):
        from ._bridges import jax as bridge

        return bridge
    return None
