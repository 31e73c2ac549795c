"""Compiled elementwise kernels: value and gradient in one pass (optional, numba).

An elementwise loss is memory-bound: its floor is one read of the inputs and
one write of the gradient. NumPy cannot get there (each operation is a pass,
even over a cache-sized block, see blocks.py); one loop compiled by numba can.

The loop's body is the loss's own ``fwd`` and ``bwd``, traced at one element
(trace.py) for the dtypes, layouts, options and wanted gradients of the call,
and compiled once for each such combination (the options' numbers are
constants, and parameters once a second value is seen: see :func:`cached`). A loss allows it by declaring
``Hints(elementwise=True)``: the loss at element n depends only on element n
of each array (after broadcasting).

With numba installed (the ``fast`` extra) and
``anyloss.configure(compiled=True)`` (the default), a call on NumPy arrays of
float dtypes, reduction ``'mean'`` or ``'sum'`` and at least ``MIN_SIZE``
elements runs one compiled loop, on a few ranges of the elements on
``anyloss.configure(threads=...)`` threads: each range's call sums its share of the
loss in double precision and writes the wanted gradients, scaled for the
reduction. An array that broadcasts (a ``weight`` or ``pos_weight`` of the
trailing shape, a scalar) is read in place; any other broadcast is expanded
first. The tests run every such loss's cases through this path and through the
Array API one against PyTorch.

A loss whose Array API form is a recursion (``ctc_loss``) gets compiled loops
of its steps instead (recurrence.py).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .. import _config
from . import blocks, trace, vmath

MIN_SIZE = 1 << 16
# Elements from which a kernel's call is split over threads: below, waking the
# threads costs about what they save (measured on multi_margin_loss (4096, 100)).
THREADED_SIZE = 1 << 20


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


def eligible(spec: Any, arrays: Any, reduction: Any) -> bool:
    if not spec.accel.elementwise or reduction not in ("mean", "sum") or not available():
        return False
    present = [a for a in arrays if a is not None]
    if not all(type(a) is np.ndarray and a.dtype in (np.float32, np.float64) for a in present):
        return False
    try:
        shape = np.broadcast_shapes(*(a.shape for a in _viewed(spec, arrays) if a is not None))
    except ValueError:
        return False
    return len(shape) > 0 and math.prod(shape) >= max(MIN_SIZE, 1)


def _layout(a: Any, shape: tuple[int, ...]) -> tuple[str, Any]:
    """How the loop reads ``a`` for the broadcast ``shape``: ``(mode, array)``,
    mode "full" (element i), "one" (element 0) or "mod" (element i % size, an
    array of the trailing shape); else a broadcast copy, read as "full"."""
    if a.size == 1:
        return "one", a.reshape(1)
    if _in_place(a, shape):
        mode = "full" if a.size == math.prod(shape) else "mod"
        return mode, np.ascontiguousarray(a).reshape(-1)
    return "full", np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)


def _in_place(a: Any, shape: tuple[int, ...]) -> bool:
    """Whether the loop reads ``a`` for the broadcast ``shape`` without a copy of
    that shape: one element, or the trailing dimensions of ``shape``."""
    squeezed = tuple(a.shape)
    while squeezed and squeezed[0] == 1:
        squeezed = squeezed[1:]
    lead = len(shape) - a.ndim
    return bool(a.size == 1) or (
        tuple(shape[len(shape) - len(squeezed) :]) == squeezed and (squeezed == tuple(shape) or lead >= 0)
    )


def copies(spec: Any, arrays: Any) -> bool:
    """Whether :func:`run` would broadcast one of ``arrays`` into a copy first
    (an array of ``eligible`` arrays that is not their trailing dimensions)."""
    viewed = [a for a in _viewed(spec, arrays) if a is not None]
    shape = tuple(np.broadcast_shapes(*(a.shape for a in viewed)))
    return not all(_in_place(a, shape) for a in viewed)


def run(
    spec: Any, arrays: Any, reduction: Any, options: Any, computed: Any, wanted: Any
) -> tuple[Any, tuple[Any, ...]] | None:
    """``(value, cotangents)`` for the cotangent 1 of the value, as ``blocks.run``;
    ``None`` if the loss's definition does not trace to one element."""
    given, arrays = arrays, _viewed(spec, arrays)
    present = [a for a in arrays if a is not None]
    shape = tuple(np.broadcast_shapes(*(a.shape for a in present)))
    n = math.prod(shape)
    layouts = [None if a is None else _layout(a, shape) for a in arrays]
    wanted = tuple(bool(w) for w in wanted) + (False,) * (len(arrays) - len(wanted))
    mean = reduction == "mean"
    kernel = _kernel_for(spec, arrays, layouts, options, computed, wanted, mean)
    if kernel is None:
        return None
    loop, body, numbers_ = kernel
    loss_dtype = body.dtypes[0]
    inputs = tuple(lay[1] for lay in layouts if lay is not None)

    def sweep(loop: Any, outs: list[Any], g: float, gd: float) -> list[float]:
        sums = in_ranges(
            lambda lo, hi: loop(*inputs, *outs, *numbers_, loss_dtype.type(g), loss_dtype.type(gd), lo, hi), n, n
        )
        return [math.fsum(part[j] for part in sums) for j in range(len(sums[0]))]

    def unused() -> list[Any]:
        return [np.empty(1) for a in arrays if a is not None]

    outs = [
        np.empty(n if w else 1, dtype=a.dtype if w else np.float64) for a, w in zip(arrays, wanted) if a is not None
    ]
    if body.divisor is None:
        g = 1.0 if reduction == "sum" else 1.0 / n
        value = sweep(loop, outs, g, 0.0)[0] * g
    else:
        # A weighted 'mean', sum(loss) / sum(weight): the cotangents need both
        # totals, so a first sweep computes them (the weight counted once per
        # element: every array has the full shape here).
        if any(a.shape != shape for a in present):
            return None
        first = _kernel_for(spec, arrays, layouts, options, computed, (False,) * len(arrays), mean)
        if first is None:
            return None
        total, divisor = sweep(first[0], unused(), 0.0, 0.0)
        value = total / divisor
        if any(wanted):
            sweep(loop, outs, 1.0 / divisor, -total / (divisor * divisor))
    cts: list[Any]
    cts, k = [], 0
    for a, w, a_given in zip(arrays, wanted, given):
        if a is None:
            cts.append(None)
            continue
        out = outs[k]
        k += 1
        if not w or body.outputs[1 + len(cts)] is None:
            cts.append(None)
            continue
        g = out.reshape(shape)
        if g.shape != a.shape:
            from .._xp import sum_to_shape

            g = sum_to_shape(np, g, a.shape)
        cts.append(g.reshape(a_given.shape))
    return np.asarray(value, dtype=loss_dtype), tuple(cts)


def _viewed(spec: Any, arrays: Any) -> tuple[Any, ...]:
    """``arrays`` (NumPy's) in the shapes in which they broadcast (``Hints.views``)."""
    if spec.accel.views is None:
        return tuple(arrays)
    shapes = spec.accel.views(tuple(None if a is None else a.shape for a in arrays))
    return tuple(None if a is None else a.reshape(s) for a, s in zip(arrays, shapes))


# Contraction (FMA) may change the last bit, as in PyTorch's own vectorized
# kernels; nothing is reassociated or approximated, and NaN and infinity keep
# their IEEE meaning (no 'nnan'/'ninf').
_FASTMATH = {"contract", "nsz"}

_KERNELS: dict[Any, Any] = {}
_LIMIT = 256  # compiled loops kept (each: a combination of dtypes, layouts and options)


def _kernel_for(
    spec: Any,
    arrays: Any,
    layouts: list[tuple[str, Any] | None],
    options: Any,
    computed: Any,
    wanted: tuple[bool, ...],
    mean: bool,
) -> tuple[Any, trace.Body, tuple[float, ...]] | None:
    """``(loop, body, numbers)`` for this call, compiled once; ``None`` where the
    definition does not trace (or needs a transcendental function, for which
    NumPy's vector loops are faster than numba's scalar calls)."""
    dtypes = tuple(None if a is None else a.dtype.name for a in arrays)
    modes = tuple(None if lay is None else lay[0] for lay in layouts)
    numeric = trace.numeric_options(options)
    rest = tuple(sorted((k, _hashable(v)) for k, v in options.items() if k not in numeric))
    structure = (spec.name, dtypes, modes, wanted, mean, rest, tuple(sorted(numeric)), _hashable(computed))
    return cached(
        structure, numeric, lambda params: _compile(spec, dtypes, modes, options, computed, wanted, params, mean)
    )


_SEEN: dict[Any, set[Any]] = {}  # structure -> the options' numbers it was called with (up to 2)


def cached(structure: Any, numeric: dict[str, Any], build: Any) -> tuple[Any, trace.Body, tuple[float, ...]] | None:
    """``(loop, body, numbers)`` for a call of ``structure`` with the options'
    ``numeric`` values, ``build(params)`` once per kernel; ``None`` where the
    definition does not trace.

    While a structure has been called with one set of numbers, they are traced
    as constants (the definition's own branches on them, ``beta == 1.0``, fold
    away); called with another, as parameters (one more compilation, then none
    for any new value). ``build`` returns ``"constants"`` for a definition that
    branches on a parameter: then each value has its own kernel."""
    values = tuple(sorted(numeric.items()))
    seen = _SEEN.setdefault(structure, set())
    if len(seen) < 2:
        seen.add(values)
    tries = [(structure + (values,), False)]
    if numeric and len(seen) > 1:
        tries.insert(0, (structure + ("parameters",), True))
    for key, params in tries:
        if key not in _KERNELS:
            if len(_KERNELS) >= _LIMIT:
                _KERNELS.clear()
                _SEEN.clear()
            _KERNELS[key] = build(params)
        found = _KERNELS[key]
        if found == "constants":
            continue
        if found is None:
            return None
        loop, body = found
        return loop, body, tuple(float(numeric[p[2:]]) for p in body.params)
    return None


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    try:
        hash(v)
    except TypeError:
        return ("unhashable", id(v))
    return v if not hasattr(v, "shape") else ("array", id(v))


def _compile(
    spec: Any,
    dtypes: tuple[str | None, ...],
    modes: tuple[str | None, ...],
    options: Any,
    computed: Any,
    wanted: tuple[bool, ...],
    params: bool,
    mean: bool,
) -> Any:
    def make() -> tuple[trace.Body, str]:
        body = trace.trace(spec, dtypes, options, computed, wanted, params=params, mean=mean)
        return body, _source(body, dtypes, modes)

    return build(make, spec.name, params, options)


def build(make: Any, name: str, params: bool, options: Any) -> Any:
    """``(loop, body)`` from ``make() -> (body, source)``, for :func:`cached`:
    ``"constants"`` where the definition branches on a number traced as a
    parameter, ``None`` where it does not trace or would not vectorize."""
    try:
        body, source = make()
    except trace.Untraceable:
        return "constants" if params and trace.numeric_options(options) else None
    if not vectorizes(body):
        return None
    return compile_source(source, name), body


@functools.cache
def compile_source(source: str, name: str, exact: bool = False) -> Any:
    """The generated ``kernel`` of ``source``, compiled once per distinct source;
    its functions (``FN_exp``...) vmath's where it has them, or with ``exact``
    the C library's; ``FN_expf`` and ``FN_logf`` vmath's rounded float32 ones."""
    numba = _numba()
    env = {"np": np}
    env.update({f"FN_{fn}": getattr(np, fn) for fn in trace._FLOAT_FUNCTIONS})
    env.update({f"FN_{fn}f": f for fn, f in vmath.rounded().items()})
    if not exact:
        env.update({f"FN_{fn}": f for fn, f in vmath.functions().items()})
    exec(compile(source, f"<anyloss kernel: {name}>", "exec"), env)
    # error_model="numpy": a division by 0 gives inf or NaN, as in NumPy and PyTorch.
    # Threads are the caller's (numba's parallel loops compile slowly, and their
    # OpenMP threads contend with other libraries' in one process).
    return numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy")(env["kernel"])


def in_ranges(call: Any, n: int, size: int = 0, *, threaded: bool | None = None) -> list[Any]:
    """``call(lo, hi)`` over ``range(n)`` cut into a few ranges, in order: on the
    row blocks' threads (the kernels release the GIL) for a call of at least
    ``THREADED_SIZE`` elements in all (``size``), else in the caller's thread;
    or, with ``threaded``, one range per thread."""
    pool = blocks._pool() if (size >= THREADED_SIZE if threaded is None else threaded) else None
    if pool is None:
        parts = 1
    elif threaded:
        parts = min(n, _config.threads)
    else:
        parts = max(1, min(n, 4 * _config.threads, size // 65536))
    bounds = [n * k // parts for k in range(parts + 1)]
    ranges = [(bounds[k], bounds[k + 1]) for k in range(parts)]
    return [call(*r) for r in ranges] if pool is None else list(pool.map(lambda r: call(*r), ranges))


def rounded(name: str, x: Any) -> Any:
    """``float32(name(float64(x)))`` (``name`` "exp" or "log") of a NumPy float32
    array, C's ``expf``/``logf`` as a definition computes them on arrays: with
    numba, vmath's rounded function (the same numbers) in one vector loop: no
    double temporaries (twice the array's size each, and page-faulted in fresh
    at every call on large arrays), one call where NumPy makes four (small
    arrays); ``None`` where that does not apply."""
    if type(x) is not np.ndarray or x.dtype != np.float32 or not available():
        return None
    src = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(x.shape, dtype=np.float32)
    loop = compile_source(_ROUNDED_SOURCE.format(name=name), f"rounded {name}")
    in_ranges(lambda lo, hi: loop(src, out.reshape(-1), lo, hi), src.size, src.size)
    return out


_ROUNDED_SOURCE = """
def kernel(a, o, lo, hi):
    u = np.uint64(lo)
    for i in range(u, np.uint64(hi)):
        o[i] = FN_{name}f(a[i])
"""


# Functions LLVM computes in a vector loop itself (an intrinsic, not a call).
_INTRINSIC = {"sqrt"}


def vectorizes(body: trace.Body) -> bool:
    """Whether ``body``'s functions compile into a vector loop: numba calls the
    C library's scalar functions for the others, and NumPy's vector loops beat
    that; vmath's float32 ones vectorize."""
    calls = body.functions - _INTRINSIC
    return not calls or (calls <= set(vmath.functions()) and all(d == "float32" for d in body.dtypes if d))


def sum_buffer(body: trace.Body, dtype: Any) -> str:
    """The dtype in which a generated loop buffers the elements of a sum that is
    taken in double precision: a float32 element as it is (widened as it is
    added: the same sums) where the loop calls vmath's functions, which then
    keep the loop's full float32 vector width (widened in the loop,
    bce_with_logits took 1.5x as long; cross_entropy's rows 1.1x); else in
    double, widened in the loop, which costs a memory-bound loop nothing and
    keeps the sum's own loop faster (mse_loss, multi_margin_loss's rows:
    measured)."""
    if np.dtype(dtype) == np.float32 and body.functions - _INTRINSIC:
        return "float32"
    return "float64"


def _source(body: trace.Body, dtypes: tuple[str | None, ...], modes: tuple[str | None, ...]) -> str:
    """The loop over the elements, ``body`` inside it. The losses of a stretch of
    ``_STRETCH`` elements go to a buffer, summed after it in 8 running sums of
    doubles: the sum vectorizes without letting the compiler reassociate the
    loss's own arithmetic (which would undo a compensated ``x - (u - 1)``). A
    float32 loss is buffered as it is and widened as it is added (the same
    sums) where the loop calls vmath's functions (:func:`sum_buffer`)."""
    present = [k for k, d in enumerate(dtypes) if d is not None]
    ins = [f"A{k}" for k in present]
    outs = [f"O{k}" for k in present]
    args = ins + outs + list(body.params) + ["g", "gd", "lo", "hi"]
    summed = [body.outputs[0]] + ([body.divisor] if body.divisor is not None else [])
    buffered = [sum_buffer(body, body.dtypes[0])] + ["float64"] * (len(summed) - 1)
    src = [
        f"def kernel({', '.join(args)}):",
        *(f"    buf{m} = np.empty({_STRETCH}, dtype=np.{kind})" for m, kind in enumerate(buffered)),
        "    " + " = ".join(f"s{m}_{j}" for m in range(len(summed)) for j in range(8)) + " = 0.0",
    ]
    for k in present:
        if modes[k] == "one":
            src.append(f"    a{k} = A{k}[0]")
        elif modes[k] == "mod":
            # The trailing block repeated over a stretch and one block more: a
            # stretch from `start` reads it from `start % m` on, in order (an
            # `i % m` per element would keep the loop from vectorizing).
            src += [
                f"    m{k} = A{k}.size",
                f"    T{k} = np.empty({_STRETCH} + m{k}, dtype=A{k}.dtype)",
                f"    for q in range({_STRETCH} + m{k}):",
                f"        T{k}[q] = A{k}[q % m{k}]",
            ]
    # Unsigned positions: numba wraps a negative signed index around, and LLVM,
    # unable to rule that out, reads the arrays with gathers (measured: the
    # bce_with_logits kernel 44 -> 26 ms).
    src += [
        f"    for start in range(lo, hi, {_STRETCH}):",
        f"        stop = min(hi, start + {_STRETCH})",
        "        u = np.uint64(start)",
        *(f"        b{k} = np.uint64(start % m{k})" for k in present if modes[k] == "mod"),
        "        for i in range(u, np.uint64(stop)):",
    ]
    for k in present:
        if modes[k] == "full":
            src.append(f"            a{k} = A{k}[i]")
        elif modes[k] == "mod":
            src.append(f"            a{k} = T{k}[b{k} + (i - u)]")
    src += [f"            {name} = {expr}" for name, expr in body.lines]
    src += [f"            buf{m}[i - u] = np.{kind}({name})" for m, (name, kind) in enumerate(zip(summed, buffered))]
    for k in present:
        out = body.outputs[1 + k]
        if out is not None:
            src.append(f"            O{k}[i] = np.{dtypes[k]}({out})")
    src.append("        count = stop - start")
    for m in range(len(summed)):
        src += [
            "        j = 0",
            "        while j + 8 <= count:",
            *(f"            s{m}_{j} += np.float64(buf{m}[j + {j}])" for j in range(8)),
            "            j += 8",
            "        while j < count:",
            f"            s{m}_0 += np.float64(buf{m}[j])",
            "            j += 1",
        ]
    totals = [
        f"((s{m}_0 + s{m}_1) + (s{m}_2 + s{m}_3)) + ((s{m}_4 + s{m}_5) + (s{m}_6 + s{m}_7))" for m in range(len(summed))
    ]
    src.append(f"    return ({', '.join(totals)},)")
    return "\n".join(src) + "\n"


_STRETCH = 1024
