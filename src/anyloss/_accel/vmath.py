"""exp and log for the compiled kernels, written so that LLVM vectorizes them.

numba turns ``np.exp`` of a float32 into a call of the C library's scalar
``expf``: a loop that calls it cannot be vectorized, and runs several times
slower than NumPy's SIMD loops. The functions here are branch-free float32
arithmetic (a range reduction, a polynomial, an exponent put in or taken out
of the bits), which LLVM vectorizes with the rest of the kernel's loop.

Accuracy: within 2 ulp of the correctly rounded result over the whole float32
range (``tests/test_kernels.py`` sweeps every exponent), as PyTorch's own
vectorized CPU functions (SLEEF, 1 ulp) and well inside the tolerances of the
tests against PyTorch. Special values as the C library's: ``exp(-inf) = 0``,
``exp(inf) = inf``, overflow to ``inf``, underflow through the subnormals to
0, ``log(0) = -inf``, ``log(x < 0) = nan``, ``log(inf) = inf``, NaN stays NaN.

Only float32: for float64, NumPy's own functions are as fast as these would be.

:func:`rounded` holds float32 exp and log of another kind: computed in float64
to about 1e-14 and rounded once to float32, which gives what a definition's
``float32(exp(float64(x)))`` gives (the C library's ``expf``/``logf`` within
their rare misroundings), still branch-free, so the loops of the recurrences
(recurrence.py) vectorize with them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def _bitcast(to: Any, signature: Any) -> Any:
    """A numba intrinsic reinterpreting the bits of a value (``signature``: numba's
    types, result of argument) as the LLVM type ``to``."""
    from numba.extending import intrinsic

    @intrinsic
    def bitcast(typingctx: Any, x: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return builder.bitcast(args[0], to)

        return signature, codegen

    return bitcast


@functools.cache
def functions() -> dict[str, Any]:
    """``{"exp": ..., "log": ..., "log1p": ...}``, numba-compiled float32 functions."""
    import numba
    from llvmlite import ir  # type: ignore[import-untyped]
    from numba.core import types

    as_int = _bitcast(ir.IntType(32), types.int32(types.float32))
    as_float = _bitcast(ir.FloatType(), types.float32(types.int32))
    f = np.float32
    i = np.int32
    jit = numba.njit(inline="always", fastmath={"contract", "nsz"}, error_model="numpy")

    @jit
    def exp(x: Any) -> Any:
        # x = n ln2 + r, |r| <= ln2 / 2; exp(x) = 2^n exp(r), 2^n in two factors
        # so that the subnormal results are reached without a special case.
        xc = min(max(x, f(-104.0)), f(89.0))
        n = np.floor(xc * f(1.4426950408889634) + f(0.5))
        r = xc - n * f(0.693145751953125)
        r = r - n * f(1.428606765330187e-06)
        p = f(1.9875691500e-4)
        p = p * r + f(1.3981999507e-3)
        p = p * r + f(8.3334519073e-3)
        p = p * r + f(4.1665795894e-2)
        p = p * r + f(1.6666665459e-1)
        p = p * r + f(5.0000001201e-1)
        p = (p * r) * r + r + f(1.0)
        k = i(n)
        h = k >> 1
        s1: Any = as_float(i((h + 127) << 23))
        s2 = as_float(i((k - h + 127) << 23))
        y = p * s1 * s2
        y = f(np.inf) if x > f(88.72283935546875) else y
        y = f(0.0) if x < f(-103.97208) else y
        return x if x != x else y

    @jit
    def log(x: Any) -> Any:
        # x = 2^e m, m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m - 1) / (m + 1).
        tiny = x < f(1.1754943508222875e-38)
        xs = x * f(8388608.0) if tiny else x
        bits: Any = as_int(xs)
        e = ((bits >> 23) & 255) - 127
        m = as_float(i((bits & 8388607) | 1065353216))
        big = m > f(1.4142135623730951)
        m = m * f(0.5) if big else m
        e = e + 1 if big else e
        e = e - 23 if tiny else e
        fm = m - f(1.0)
        s = fm / (f(2.0) + fm)
        z = s * s
        w = z * z
        t1 = w * (f(0.40000972152) + w * f(0.24279078841))
        t2 = z * (f(0.66666662693) + w * f(0.28498786688))
        hf = f(0.5) * fm * fm
        ef = f(e)
        y = ef * f(6.9313812256e-01) - ((hf - (s * (hf + t1 + t2) + ef * f(9.0580006145e-06))) - fm)
        y = f(-np.inf) if x == f(0.0) else y
        y = f(np.nan) if x < f(0.0) else y
        y = x if x == f(np.inf) else y
        return x if x != x else y

    @jit
    def log1p(x: Any) -> Any:
        # log(u), u = 1 + x rounded, corrected by the rounding error x - (u - 1).
        u = f(1.0) + x
        y = log(u) + (x - (u - f(1.0))) / u
        y = f(-np.inf) if u == f(0.0) else y
        y = x if x == f(np.inf) else y
        return y

    return {"exp": exp, "log": log, "log1p": log1p}


@functools.cache
def rounded() -> dict[str, Any]:
    """``{"exp": ..., "log": ...}``, numba-compiled: float32 to float32, each the
    float64 function's value (relative error below 1e-13) rounded once to float32.
    Against NumPy's float64 function rounded to float32, on every 7th float32
    (6e8 arguments): exp differed at one, log at none; ``tests/test_kernels.py``
    checks a sample of every exponent."""
    import numba
    from llvmlite import ir
    from numba.core import types

    as_int = _bitcast(ir.IntType(64), types.int64(types.float64))
    as_float = _bitcast(ir.DoubleType(), types.float64(types.int64))
    d = np.float64
    jit = numba.njit(inline="always", fastmath={"contract", "nsz"}, error_model="numpy")

    @jit
    def exp(x: Any) -> Any:
        # Every float32 result, subnormals included, is a normal float64: one range
        # reduction x = n ln2 + r (ln2 in two parts), exp(r) by its series, 2^n
        # as the exponent bits; the conversion to float32 rounds, overflows to inf
        # and underflows to 0 as the C library does.
        xc = min(max(d(x), -150.0), 90.0)
        n = np.floor(xc * 1.4426950408889634 + 0.5)
        r = (xc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10
        # Taylor's series to r^11 / 11!: on |r| <= ln2 / 2 the rest is below 2e-14 of the result.
        p = 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = (p * r + 1.0) * r + 1.0
        y = np.float32(p * as_float(np.int64(n) + 1023 << 52))
        return x if x != x else y

    @jit
    def log(x: Any) -> Any:
        # x = 2^e m, m in [sqrt(1/2), sqrt(2)) (subnormal float32 are normal float64);
        # log(m) = 2 atanh(s), s = (m - 1) / (m + 1).
        bits: Any = as_int(d(x))
        e = (bits >> 52) - 1023
        m = as_float((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
        big = m > 1.4142135623730951
        m = m * 0.5 if big else m
        e = e + 1 if big else e
        f = m - 1.0
        s = f / (2.0 + f)
        z = s * s
        # 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...) to s^22 / 23: |s| <= 0.172.
        p = 1.0 / 23.0
        p = p * z + 1.0 / 21.0
        p = p * z + 1.0 / 19.0
        p = p * z + 1.0 / 17.0
        p = p * z + 1.0 / 15.0
        p = p * z + 1.0 / 13.0
        p = p * z + 1.0 / 11.0
        p = p * z + 1.0 / 9.0
        p = p * z + 1.0 / 7.0
        p = p * z + 1.0 / 5.0
        p = p * z + 1.0 / 3.0
        p = p * z + 1.0
        y = np.float32(d(e) * 0.6931471805599453 + 2.0 * s * p)
        y = np.float32(-np.inf) if x == np.float32(0.0) else y
        y = np.float32(np.nan) if x < np.float32(0.0) else y
        y = x if x == np.float32(np.inf) else y
        return x if x != x else y

    return {"exp": exp, "log": log}
