"""Compiled elementwise kernels: value and gradient in one pass (optional, numba).

An elementwise loss is memory-bound: its floor is one read of the inputs and
one write of the gradient. NumPy cannot get there (each operation is a pass,
even over a cache-sized block, see _blocks.py); a loop compiled by numba can,
for losses of plain arithmetic (mse, l1, smooth_l1, huber). Those with exp or
log (BCE, Poisson, Gaussian) stay with NumPy's blocks: numba calls scalar libm
where NumPy has SIMD loops, and is slower there.
So an elementwise loss may give, besides its Array API ``fwd``/``bwd`` (which
stay the definition, used everywhere else), its value and derivatives at one
point as a plain scalar function::

    def _point(x, y, beta):        # input, target, then the options' numbers
        ...
        return loss, dloss_dx, dloss_dy

registered as ``point={(False, False): _point}``: by the layout of the arrays
given (False: the input's shape, True: a vector along its last axis, such as
``pos_weight``), so that a call with other arrays (a ``weight``) or another
layout keeps the general path; and ``point_params(options)``, the numbers it
takes (``None`` for options the point does not cover). With numba installed (the ``fast`` extra) and
``ANYLOSS_NUMBA`` not 0, a call on NumPy arrays of one float dtype and one
shape (or a vector along the last axis, ``pos_weight``), with reduction
``'mean'`` or ``'sum'`` and at least ``MIN_SIZE`` elements, runs one compiled
parallel loop: each thread sums its share of the loss in double precision and
writes the wanted gradients, scaled for the reduction. The tests run every
such loss's cases through this path and through the Array API one against
PyTorch.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from . import _blocks

ENABLED = os.environ.get("ANYLOSS_NUMBA", "1") != "0"
MIN_SIZE = 1 << 16


@functools.cache
def _numba():
    try:
        import numba
    except ImportError:
        return None
    if "NUMBA_THREADING_LAYER" not in os.environ:
        try:
            numba.threading_layer()  # raises until a parallel function has run
        except ValueError:
            # numba's own thread pool, not OpenMP: beside PyTorch's OpenMP runtime
            # two OpenMP runtimes in one process fight over the cores.
            numba.config.THREADING_LAYER = "workqueue"
    return numba


def available() -> bool:
    return ENABLED and _numba() is not None


def eligible(spec, arrays, reduction, options) -> bool:
    if spec.point is None or reduction not in ("mean", "sum") or not available():
        return False
    given = [a for a in arrays if a is not None]
    first = arrays[0]
    if not all(type(a) is np.ndarray for a in given) or first.ndim == 0 or first.size < max(MIN_SIZE, 1):
        return False
    if first.dtype not in (np.float32, np.float64):
        return False
    for a in given:
        if a.dtype != first.dtype or not a.flags.c_contiguous:
            return False
        if a.shape != first.shape and not (a.ndim == 1 and a.shape[0] == first.shape[-1]):
            return False
    return _layout(first, given) in spec.point and spec.point_params(options) is not None


def _layout(first, given) -> tuple:
    return tuple(a.shape != first.shape for a in given)


def run(spec, arrays, reduction, options, wanted):
    """``(value, cotangents)`` for the cotangent 1 of the value, as ``_blocks.run``."""
    first = arrays[0]
    n = first.size
    given = [k for k, a in enumerate(arrays) if a is not None]
    # Arrays the point takes: the full-shape ones flat, a last-axis vector as it is.
    flat = tuple(arrays[k].reshape(-1) for k in given)
    last = tuple(arrays[k].shape != first.shape for k in given)
    grads = tuple(np.empty(n if not lst else 1, dtype=first.dtype) if wanted[k] and not lst
                  else np.empty(1, dtype=first.dtype) for k, lst in zip(given, last))
    want = tuple(bool(wanted[k]) and not lst for k, lst in zip(given, last))
    scale = 1.0 if reduction == "sum" else 1.0 / n
    kernel = _kernel(spec.point[last], len(given), last)
    numba = _numba()
    numba.set_num_threads(max(1, min(_blocks.THREADS, numba.config.NUMBA_NUM_THREADS)))
    chunks = max(1, min(n // 65536, 64))
    parts = kernel(flat, grads, want, tuple(float(p) for p in spec.point_params(options)), scale,
                   first.shape[-1], chunks)
    value = np.asarray(math.fsum(parts) * scale, dtype=first.dtype)
    cts = [None] * len(arrays)
    for k, g, w in zip(given, grads, want):
        if w:
            cts[k] = g.reshape(first.shape)
    return value, tuple(cts)


@functools.cache
def _kernel(point, arity, last):
    """The compiled loop for ``point`` over ``arity`` arrays (``last``: which are
    vectors along the last axis, read at ``i % C``)."""
    numba = _numba()
    f = numba.njit(point, fastmath={"reassoc", "contract", "arcp", "nsz"})
    if arity == 2:
        def loop(arrays, grads, want, params, scale, c, chunks):
            x, y = arrays
            gx, gy = grads
            n = x.size
            step = (n + chunks - 1) // chunks
            parts = np.zeros(chunks)
            for part in numba.prange(chunks):
                total = 0.0
                for i in range(part * step, min(n, (part + 1) * step)):
                    loss, dx, dy = f(x[i], y[i], *params)
                    total += loss
                    if want[0]:
                        gx[i] = dx * scale
                    if want[1]:
                        gy[i] = dy * scale
                parts[part] = total
            return parts
    elif arity == 3 and last == (False, False, True):
        def loop(arrays, grads, want, params, scale, c, chunks):
            x, y, v = arrays
            gx, gy, _ = grads
            n = x.size
            step = (n + chunks - 1) // chunks
            parts = np.zeros(chunks)
            for part in numba.prange(chunks):
                total = 0.0
                for i in range(part * step, min(n, (part + 1) * step)):
                    loss, dx, dy, dv = f(x[i], y[i], v[i % c], *params)
                    total += loss
                    if want[0]:
                        gx[i] = dx * scale
                    if want[1]:
                        gy[i] = dy * scale
                parts[part] = total
            return parts
    elif arity == 3:
        def loop(arrays, grads, want, params, scale, c, chunks):
            x, y, v = arrays
            gx, gy, gv = grads
            n = x.size
            step = (n + chunks - 1) // chunks
            parts = np.zeros(chunks)
            for part in numba.prange(chunks):
                total = 0.0
                for i in range(part * step, min(n, (part + 1) * step)):
                    loss, dx, dy, dv = f(x[i], y[i], v[i], *params)
                    total += loss
                    if want[0]:
                        gx[i] = dx * scale
                    if want[1]:
                        gy[i] = dy * scale
                    if want[2]:
                        gv[i] = dv * scale
                parts[part] = total
            return parts
    else:
        raise ValueError(f"no compiled loop for {arity} arrays")
    # Reassociation (the sums vectorize), contraction (FMA) and reciprocal
    # division may change the last bit, as PyTorch's own vectorized kernels do;
    # NaN and infinity keep their IEEE meaning (no 'nnan'/'ninf').
    return numba.njit(parallel=True, fastmath={"reassoc", "contract", "arcp", "nsz"})(loop)


# ---------------------------------------------------------------- whole-loss kernels
#
# A loss whose Array API form is a recursion (ctc_loss) may give compiled
# forms of its fwd and bwd (``LossSpec.compiled``), same contract: written as
# plain Python loops over NumPy arrays in its own file, with ``_kernels_prange``
# for its parallel loop and helpers named ``_compiled_*``; numba compiles them here.

COMPILED_MIN_SIZE = 4096


def compiled_eligible(spec, arrays) -> bool:
    if spec.compiled is None or not available():
        return False
    first = arrays[0]
    return (all(type(a) is np.ndarray for a in arrays if a is not None)
            and first.dtype in (np.float32, np.float64) and first.size >= COMPILED_MIN_SIZE)


@functools.cache
def compiled(fn):
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
