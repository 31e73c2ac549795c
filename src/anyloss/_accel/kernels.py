"""Compiled elementwise kernels: value and gradient in one pass (optional, numba).

An elementwise loss is memory-bound: its floor is one read of the inputs and
one write of the gradient. NumPy cannot get there (each operation is a pass,
even over a cache-sized block, see blocks.py); a loop compiled by numba can,
for losses of plain arithmetic (mse, l1, smooth_l1, huber). Those with exp or
log (BCE, Poisson, Gaussian) stay with NumPy's blocks: numba calls scalar libm
where NumPy has SIMD loops, and is slower there (measured).

So such a loss may give, besides its Array API ``fwd``/``bwd`` (which stay the
definition, used everywhere else), its value and derivatives at one point as a
plain scalar function, ``Hints.point``::

    def _point(x, y, beta):        # input, target, then the options' numbers
        ...
        return loss, dloss_dx, dloss_dy

and ``point_params(options)``, the numbers it takes (``None`` for options it
does not cover). With numba installed (the ``fast`` extra) and
``anyloss.configure(compiled=True)`` (the default), a call with an input and a target only (a ``weight``
keeps the general path), NumPy arrays of one float dtype and one shape,
reduction ``'mean'`` or ``'sum'`` and at least ``MIN_SIZE`` elements runs one
compiled parallel loop: each thread sums its share of the loss in double
precision and writes the wanted gradients, scaled for the reduction. The tests
run every such loss's cases through this path and through the Array API one
against PyTorch.

A loss whose Array API form is a recursion (``ctc_loss``) may instead give
compiled forms of its whole ``fwd`` and ``bwd`` (``Hints.compiled``), below.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .. import _config

MIN_SIZE = 1 << 16


@functools.cache
def _numba() -> Any:
    # numba's threading layer is the user's to choose (NUMBA_THREADING_LAYER);
    # nothing here changes numba's or any other library's global configuration.
    try:
        import numba
    except ImportError:
        return None
    return numba


def available() -> bool:
    return _config.compiled and _numba() is not None


def eligible(spec: Any, arrays: Any, reduction: Any, options: Any) -> bool:
    if spec.accel.point is None or reduction not in ("mean", "sum") or not available():
        return False
    x, y = arrays[:2]
    if any(a is not None for a in arrays[2:]) or type(x) is not np.ndarray or type(y) is not np.ndarray:
        return False
    return (
        x.dtype in (np.float32, np.float64)
        and y.dtype == x.dtype
        and y.shape == x.shape
        and x.ndim > 0
        and x.size >= max(MIN_SIZE, 1)
        and x.flags.c_contiguous
        and y.flags.c_contiguous
        and spec.accel.point_params(options) is not None
    )


def run(spec: Any, arrays: Any, reduction: Any, options: Any, wanted: Any) -> Any:
    """``(value, cotangents)`` for the cotangent 1 of the value, as ``blocks.run``."""
    x, y = arrays[:2]
    n = x.size
    grads = tuple(np.empty(n if w else 1, dtype=x.dtype) for w in wanted[:2])
    scale = 1.0 if reduction == "sum" else 1.0 / n
    numba = _numba()
    numba.set_num_threads(max(1, min(_config.threads, numba.config.NUMBA_NUM_THREADS)))
    chunks = max(1, min(n // 65536, 64))
    parts = _loop(spec.accel.point)(
        x.reshape(-1),
        y.reshape(-1),
        *grads,
        bool(wanted[0]),
        bool(wanted[1]),
        tuple(float(p) for p in spec.accel.point_params(options)),
        scale,
        chunks,
    )
    value = np.asarray(math.fsum(parts) * scale, dtype=x.dtype)
    cts = tuple(g.reshape(x.shape) if w else None for g, w in zip(grads, wanted[:2]))
    return value, cts + (None,) * (len(arrays) - 2)


# Reassociation (the sums vectorize), contraction (FMA) and reciprocal division
# may change the last bit, as PyTorch's own vectorized kernels do; NaN and
# infinity keep their IEEE meaning (no 'nnan'/'ninf').
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


@functools.cache
def _loop(point: Any) -> Any:
    """The compiled parallel loop over ``point``: per-thread sums of the loss in
    double precision, and the wanted gradients scaled for the reduction."""
    numba = _numba()
    f = numba.njit(point, fastmath=_FASTMATH)

    def loop(x: Any, y: Any, gx: Any, gy: Any, want_x: Any, want_y: Any, params: Any, scale: Any, chunks: Any) -> Any:
        n = x.size
        step = (n + chunks - 1) // chunks
        parts = np.zeros(chunks)
        for part in numba.prange(chunks):
            total = 0.0
            for i in range(part * step, min(n, (part + 1) * step)):
                loss, dx, dy = f(x[i], y[i], *params)
                total += loss
                if want_x:
                    gx[i] = dx * scale
                if want_y:
                    gy[i] = dy * scale
            parts[part] = total
        return parts

    return numba.njit(parallel=True, fastmath=_FASTMATH)(loop)


# ---------------------------------------------------------------- whole-loss kernels
#
# A loss whose Array API form is a recursion (ctc_loss) may give compiled
# forms of its fwd and bwd (``Hints.compiled``), same contract, around loops
# written as plain Python over NumPy arrays in this package (ctc.py), with
# ``_kernels_prange`` for a parallel loop and helpers named ``_compiled_*``;
# numba compiles them here.

COMPILED_MIN_SIZE = 4096


def compiled_eligible(spec: Any, arrays: Any) -> bool:
    if spec.accel.compiled is None or not available():
        return False
    first = arrays[0]
    return (
        all(type(a) is np.ndarray for a in arrays if a is not None)
        and first.dtype in (np.float32, np.float64)
        and first.size >= COMPILED_MIN_SIZE
    )


@functools.cache
def compiled(fn: Any) -> Any:
    """``fn`` compiled by numba (parallel), its ``_kernels_prange`` a ``prange``
    and the ``_compiled_*`` functions it calls compiled too."""
    import types

    numba = _numba()
    names = fn.__code__.co_names
    env = dict(fn.__globals__, _kernels_prange=numba.prange)
    for name in names:
        if name.startswith("_compiled_") and name in fn.__globals__:
            env[name] = compiled(fn.__globals__[name])
    clone = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__)
    parallel = "_kernels_prange" in names
    return numba.njit(parallel=parallel, fastmath={"contract", "nsz"})(clone)
