"""The one call path every loss takes once its arguments are checked.

``apply`` runs the loss's forward and the reduction. Where a gradient will be
wanted it keeps what the backward pass needs:

* inside ``anyloss.value_and_grad``/``grad``/``vjp`` the call is recorded on
  the active tape (``_TAPE``), and ``backward`` later runs the reduction's VJP
  and the loss's own ``bwd``;
* otherwise the forward runs plainly and residuals are dropped.

``forward`` and ``backward`` are the two halves that the gradient functions and
the framework bridges share. ``forward`` picks how to compute: a compiled
kernel (_kernels.py, optional numba), row blocks that compute the wanted
gradients along with the value (_blocks.py), or the loss's ``fwd`` whole. On
PyTorch tensors outside the gradient functions, a built-in loss hands over to
PyTorch's own kernel once its checks have passed (``torch_kernel``).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import warnings

import array_api_compat as _compat
from dataclasses import dataclass

from . import _blocks, _kernels
from ._reduction import reduce, reduce_vjp
from ._xp import item, sum_to_shape

# The active gradient tape (see _autodiff.py), or None.
_TAPE: contextvars.ContextVar = contextvars.ContextVar("anyloss_tape", default=None)
# A call of a built-in loss on PyTorch tensors, to hand to PyTorch's own kernel
# once anyloss's checks have passed (see torch_kernel), or None.
_TORCH_CALL: contextvars.ContextVar = contextvars.ContextVar("anyloss_torch_call", default=None)
# Whether built-in losses on PyTorch tensors run PyTorch's kernels (ANYLOSS_TORCH_KERNELS=0:
# anyloss's own Array API code, as on every other backend; the test suite checks both).
TORCH_KERNELS = os.environ.get("ANYLOSS_TORCH_KERNELS", "1") != "0"


def torch_kernel(fn):
    """Decorator for a built-in loss that ``torch.nn.functional`` has under the
    same name: called with PyTorch tensors, it runs all of anyloss's checks
    (and warnings), then PyTorch's own kernel computes it -- same numbers by
    definition, at PyTorch's speed. Inside ``anyloss.value_and_grad`` and
    friends, and with ``TORCH_KERNELS`` off, anyloss's own code runs."""
    name = fn.__name__

    @functools.wraps(fn)
    def loss(*args, **kwargs):
        if TORCH_KERNELS and _TAPE.get() is None and any(
                _compat.is_torch_array(a) for a in (*args, *kwargs.values())):
            token = _TORCH_CALL.set((name, args, kwargs))
            try:
                return fn(*args, **kwargs)
            finally:
                _TORCH_CALL.reset(token)
        return fn(*args, **kwargs)

    return loss


def _run_torch_kernel(name, args, kwargs):
    import torch.nn.functional as TF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anyloss has given PyTorch's warnings already
        return getattr(TF, name)(*args, **kwargs)


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
    wanted: tuple | None = None  # which arrays' cotangents will be asked for (None: all)
    # Cotangents already computed by the forward (row blocks, see _blocks.py)
    # for the cotangent 1 of the value; None where not wanted.
    cts: tuple | None = None
    compiled: bool = False  # the forward ran spec.compiled's fwd: the backward runs its bwd


def forward(spec, xp, arrays, reduction, options, wanted=None):
    """Unreduced forward, then the reduction: ``(value, Record)``.

    ``wanted`` says which arrays' gradients will be asked for (``None``: any
    of them); a loss computed by row blocks computes exactly those now, and a
    ``bwd`` that takes ``wanted`` skips the others.
    """
    wanted = tuple(a is not None and name in spec.differentiable and xp.isdtype(a.dtype, "real floating")
                   and (wanted is None or (k < len(wanted) and bool(wanted[k])))
                   for k, (a, name) in enumerate(zip(arrays, spec.argnames)))
    if _kernels.eligible(spec, arrays, reduction, options):
        value, cts = _kernels.run(spec, arrays, reduction, options, wanted)
        return value, Record(spec, xp, tuple(arrays), dict(options), reduction, value, None, None, None,
                             wanted, cts)
    if _blocks.eligible(spec, arrays, reduction) and (not any(wanted) or spec.has_gradient(options)):
        try:
            value, cts = _blocks.run(spec, xp, arrays, reduction, options, wanted)
        except _blocks.Fallback:
            pass
        else:
            return value, Record(spec, xp, tuple(arrays), dict(options), reduction, value, None, None, None,
                                 wanted, cts)
    compiled = _kernels.compiled_eligible(spec, arrays)
    out = (spec.compiled[0] if compiled else spec.fwd)(xp, *arrays, **options)
    loss, res = out[0], out[1]
    divisor = out[2] if len(out) > 2 else None
    value = reduce(xp, loss, reduction, divisor)
    return value, Record(spec, xp, tuple(arrays), dict(options), reduction, value, loss, divisor, res, wanted,
                         compiled=compiled)


def backward(rec: Record, g, share: bool = False):
    """Cotangents of ``rec.arrays`` given the cotangent ``g`` of the reduced value.

    The loss's ``bwd`` may return a cotangent in the broadcast shape of the
    loss or in a wider dtype; here it is summed back to its argument's shape
    and cast to its dtype, as autograd does. Cotangents the forward already
    computed are scaled by ``g``; with ``share`` (a caller that asks once) and
    ``g == 1`` they are returned as they are.
    """
    xp = rec.xp
    if rec.spec.bwd is None:
        raise ValueError(
            f"`{rec.spec.name}` has no analytic gradient; differentiate it on a backend with autograd "
            "(PyTorch tensors with requires_grad, or jax.grad) or give it one (anyloss.register(..., gradient=...))"
        )
    if rec.cts is not None:
        if share and item(g) == 1:
            return rec.cts
        return tuple(None if ct is None else ct * xp.astype(g, ct.dtype) for ct in rec.cts)
    g_loss, g_divisor = reduce_vjp(xp, g, rec.reduction, rec.loss, rec.divisor)
    extra = {} if rec.divisor is None else {"g_divisor": g_divisor}
    if takes_wanted(rec.spec.compiled[1] if rec.compiled else rec.spec.bwd):
        extra["wanted"] = rec.wanted
    bwd = rec.spec.compiled[1] if rec.compiled else rec.spec.bwd
    cts = bwd(xp, rec.res, g_loss, **extra, **rec.options)
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
            wanted = tuple(a is not None and id(a) in tape.wanted for a in arrays)
            value, rec = forward(spec, xp, arrays, reduction, options, wanted)
        finally:
            _TAPE.reset(token)
        tape.record(rec)
        return value
    call = _TORCH_CALL.get()
    if call is not None and call[0] == spec.name:
        return _run_torch_kernel(*call)
    # Without an analytic gradient there is nothing to attach: the forward runs
    # plainly, so PyTorch autograd or jax.grad differentiate its operations.
    bridge = _bridge(arrays) if spec.has_gradient(options) else None
    if bridge is not None:
        return bridge.apply(spec, xp, arrays, reduction, options)
    return forward(spec, xp, arrays, reduction, options, wanted=())[0]


@functools.cache
def takes_wanted(bwd) -> bool:
    """Whether a loss's ``bwd`` takes ``wanted``: which arrays' cotangents are
    asked for (it may return ``None`` for the others)."""
    return "wanted" in inspect.signature(bwd).parameters


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
