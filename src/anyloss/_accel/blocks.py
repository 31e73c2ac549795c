"""Row blocks: a loss's value and gradient computed a block of rows at a time.

A loss is memory-bound: it reads its inputs once and writes one gradient. Run
whole, every operation of its forward and backward streams a multi-megabyte
temporary through memory (and page-faults it in fresh). Run on blocks of
about ``BLOCK`` elements, the same operations work on temporaries that stay
in the CPU's cache, and the gradient is written once, straight into the
array returned. The reduced value and the gradients are exactly those of the
whole-array path, in another order of summation (block sums are accumulated
in double precision).

Nothing here is specific to a loss: the driver runs the loss's own ``fwd`` and
``bwd`` on slices. It applies when

* the loss declares ``rows`` on its spec: the arrays whose axis 0 is the batch
  axis, each with its number of dimensions relative to the first array
  (``{"input": 0, "target": -1}`` for class targets; a tuple where several
  are allowed). The loss of row ``i``
  must depend only on row ``i`` of those arrays (and on the other arrays
  whole). The other arrays (a class ``weight``, a ``pos_weight``) are passed
  whole to every block, and their gradients summed over blocks. A loss whose
  ``'mean'`` has its own divisor gives the whole call's in ``rows_divisor``
  (a divisor with a gradient of its own cannot be computed by blocks);
* the backend is eager and mutable (NumPy, PyTorch, CuPy), the reduction is
  ``'mean'`` or ``'sum'``, the dtype float32 or float64, and the first array has
  at least ``MIN_SIZE`` elements (below that, one block is the whole array).

Gradients are computed during the forward, for the arrays that will be asked
for (``wanted``), with the cotangent 1 of the reduced value; ``backward``
scales them by the actual cotangent.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as _compat
import numpy as np

from .. import _config
from .._typing import Namespace
from .._xp import device, sum_to_shape

# Elements of the first array per block: 1 MiB of float32. Measured on the
# benchmark's workloads (2 cores): 2^16 pays too much Python per block, 2^20
# leaves the cache; 2^18 is best or near it on every one.
BLOCK = 1 << 18
# Below this many elements the whole array is one block: the plain path.
MIN_SIZE = 1 << 16


class Fallback(Exception):
    """The loss turned out not to be computable by blocks (a data-dependent divisor)."""


def eligible(spec: Any, arrays: Any, reduction: Any) -> bool:
    rows = spec.accel.rows
    if rows is None or not spec.accel.blocks or reduction not in ("mean", "sum"):
        return False
    first = arrays[0]
    if not (_compat.is_numpy_array(first) or _compat.is_torch_array(first) or _compat.is_cupy_array(first)):
        return False
    if (
        first.ndim == 0
        or math.prod(first.shape) < max(MIN_SIZE, 1)
        or str(first.dtype).split(".")[-1] not in ("float32", "float64")
    ):
        return False
    n = first.shape[0]
    for name, a in zip(spec.argnames, arrays):
        if a is None or name not in rows:
            continue
        if type(a) is not type(first):
            return False
        offsets = _offsets(rows[name])
        if a.ndim - first.ndim in offsets:
            if a.ndim == 0 or a.shape[0] != n:
                return False
        elif not (0 in offsets and a.ndim < first.ndim):  # only a lower-rank broadcast array passes whole
            return False
    return True


def _offsets(rank: Any) -> tuple[Any, ...]:
    return rank if isinstance(rank, tuple) else (rank,)


def _sliced(spec: Any, arrays: Any) -> Any:
    """Which arrays are cut into row blocks (the others are passed whole)."""
    first, rows = arrays[0], spec.accel.rows
    return tuple(
        a is not None and name in rows and a.ndim - first.ndim in _offsets(rows[name])
        for name, a in zip(spec.argnames, arrays)
    )


def run(spec: Any, xp: Namespace, arrays: Any, reduction: Any, options: Any, computed: Any, wanted: Any) -> Any:
    """``(value, cotangents)`` of the reduced loss, cotangents for the cotangent 1
    of the value (``None`` where not ``wanted``). Raises ``Fallback`` if the loss
    cannot be computed by blocks after all."""
    first = arrays[0]
    n = first.shape[0]
    step = max(1, BLOCK // max(1, math.prod(first.shape[1:])))
    sliced = _sliced(spec, arrays)
    outs: list[Any] = [
        xp.empty(a.shape, dtype=a.dtype, device=device(a)) if w and s else None
        for a, w, s in zip(arrays, wanted, sliced)
    ]
    g_divisor = None
    state: dict[str, Any] = {}

    def one(i: Any) -> Any:
        """Block ``i:i+step``: its loss sum and the cotangents of the arrays
        passed whole (the others are written into ``outs``; True marks them)."""
        j = min(n, i + step)
        block = tuple(a[i:j] if s else a for a, s in zip(arrays, sliced))
        loss, res, divisor = spec.run_fwd(xp, block, options, computed)
        if not state:  # the first block decides
            if loss.ndim == 0 or loss.shape[0] != j - i or (divisor is not None and spec.accel.rows_divisor is None):
                raise Fallback
            if divisor is not None:
                divisor = spec.accel.rows_divisor(xp, arrays, options, computed)
                # An empty total (every target ignored) has PyTorch's special cases: the plain path.
                if not (isinstance(divisor, (int, float)) and 0 < divisor < math.inf):
                    raise Fallback
                # (the whole call's divisor has no gradient here: g_divisor stays None)
            count = n * math.prod(loss.shape[1:])
            state["scale"] = 1.0 if reduction == "sum" else 1.0 / (divisor if divisor is not None else count)
            state["dtype"] = loss.dtype
        total = float(xp.sum(loss))
        whole: list[Any] = [None] * len(arrays)
        if not any(wanted):
            return total, whole
        g = xp.broadcast_to(xp.asarray(state["scale"], dtype=state["dtype"], device=device(loss)), loss.shape)
        cts = spec.run_bwd(xp, res, g, options, computed, g_divisor=g_divisor, wanted=wanted)
        for k, (ct, a) in enumerate(zip(cts, block)):
            if not wanted[k] or ct is None:
                continue
            ct = sum_to_shape(xp, ct, a.shape)
            if ct.dtype != a.dtype:
                ct = xp.astype(ct, a.dtype)
            if sliced[k]:
                outs[k][i:j] = ct
                whole[k] = True  # written; the block itself is not kept
            else:
                whole[k] = ct
        return total, whole

    starts = range(0, n, step)
    results = [one(0)]
    pool = _pool() if _compat.is_numpy_array(first) and len(starts) > 2 else None
    if pool is None:
        results += map(one, starts[1:])
    else:
        # NumPy's error state is the calling thread's (the engine quiets its warnings
        # at special values): the workers take it over.
        errors = np.geterr()

        def in_worker(i: Any) -> Any:
            with np.errstate(**errors):
                return one(i)

        results += pool.map(in_worker, starts[1:])
    total = math.fsum(r[0] for r in results)
    cts: list[Any] = []
    for k, (_a, s) in enumerate(zip(arrays, sliced)):
        parts = [r[1][k] for r in results if r[1][k] is not None]
        if not parts:
            cts.append(None)
        elif s:
            cts.append(outs[k])
        else:  # summed over blocks in block order, whatever the threads did
            acc = parts[0]
            for p in parts[1:]:
                acc = acc + p
            cts.append(acc)
    value = xp.asarray(total * state["scale"], dtype=state["dtype"], device=device(first))
    return value, tuple(cts)


_POOL = None


def _pool() -> Any:
    """Worker threads for NumPy's blocks (NumPy releases the GIL inside its
    loops): ``anyloss.configure(threads=...)`` of them, by default the cores
    this process may use, at most 2 -- as many as the other libraries are
    given in the benchmark."""
    global _POOL
    threads = _config.threads
    if threads < 2:
        return None
    if _POOL is None or _POOL._max_workers != threads:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(threads, thread_name_prefix="anyloss-blocks")
    return _POOL
