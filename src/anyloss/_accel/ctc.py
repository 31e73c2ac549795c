"""CTC's recursions as plain loops, for numba (``kernels.compiled``).

The Array API recursions of ``losses/ctc_loss.py`` take about a dozen array
operations per frame, and on NumPy each costs its dispatch (microseconds)
whatever the batch: for short sequences that, not arithmetic, is the time.
With numba installed (the ``fast`` extra), ``ctc_loss``'s compiled forms
(``Hints.compiled``) run these loops instead: PyTorch's CPU kernel's loops,
in the same order and in the input's dtype (float32 stays float32, as
PyTorch computes it), one sample per thread. The functions are plain Python;
numba compiles them on first use (``alpha`` and ``grad``).
"""

from __future__ import annotations

import math
from typing import Any

from . import kernels


def alpha(lp: Any, lprime: Any, il: Any, tl: Any, la: Any, nll: Any, blank: Any) -> None:
    """The forward variables, compiled: see ``_compiled_alpha``."""
    kernels.compiled(_compiled_alpha)(lp, lprime, il, tl, la, nll, blank, lp.dtype.type(-math.inf))


def grad(
    lp: Any,
    lprime: Any,
    il: Any,
    tl: Any,
    la: Any,
    nll: Any,
    g: Any,
    zero_infinity: Any,
    out: Any,
    beta: Any,
    lcab: Any,
) -> None:
    """The gradient, compiled: see ``_compiled_grad``."""
    kernels.compiled(_compiled_grad)(
        lp, lprime, il, tl, la, nll, g, zero_infinity, out, beta, lcab, lp.dtype.type(-math.inf)
    )


# Every value below is in the dtype of ``lp``: ``ninf`` is -inf of that dtype,
# and no float literal meets a value (numba would compute in double then).


def _compiled_alpha(lp: Any, lprime: Any, il: Any, tl: Any, la: Any, nll: Any, blank: Any, ninf: Any) -> None:
    """alpha (N, T, K) in ``la`` (pre-filled with -inf) and -log p(l|x) in ``nll``."""
    n_batch = lp.shape[1]
    for n in _kernels_prange(n_batch):
        k = 2 * tl[n] + 1
        if il[n] == 0:
            nll[n] = 0 if tl[n] == 0 else math.inf
            continue
        la[n, 0, 0] = lp[0, n, blank]
        if k > 1:
            la[n, 0, 1] = lp[0, n, lprime[n, 1]]
        for t in range(1, il[n]):
            for s in range(k):
                a = la[n, t - 1, s]
                b = la[n, t - 1, s - 1] if s > 0 else ninf
                c = la[n, t - 1, s - 2] if s > 1 and lprime[n, s] != lprime[n, s - 2] else ninf
                la[n, t, s] = _compiled_log_sum_exp(a, b, c) + lp[t, n, lprime[n, s]]
        t = il[n] - 1
        b = la[n, t, k - 2] if k > 1 else ninf
        nll[n] = -_compiled_log_sum_exp(la[n, t, k - 1], b, ninf)


def _compiled_log_sum_exp(a: Any, b: Any, c: Any) -> Any:
    """log(exp(a) + exp(b) + exp(c)) as PyTorch's kernel: shifted by the maximum,
    the exponentials added left to right (-inf when all terms are); NaN or +inf
    terms give NaN, as ``_log_sum_exp`` in ctc_loss.py."""
    if a != a or b != b or c != c:
        return a + b + c  # NaN
    m = max(a, b, c)
    if m == -math.inf:
        return m
    return math.log(math.exp(a - m) + math.exp(b - m) + math.exp(c - m)) + m


def _compiled_grad(
    lp: Any,
    lprime: Any,
    il: Any,
    tl: Any,
    la: Any,
    nll: Any,
    g: Any,
    zero_infinity: Any,
    grad: Any,
    beta: Any,
    lcab_all: Any,
    ninf: Any,
) -> None:
    """beta, then PyTorch's gradient (exp(lp) - exp(lcab + nll - lp)) g into ``grad`` (T, N, C);
    ``beta`` (N, 2, K) and ``lcab_all`` (N, C) are scratch space, one row per sample."""
    t_max, n_batch, n_classes = lp.shape
    for n in _kernels_prange(n_batch):
        k = 2 * tl[n] + 1
        if nll[n] == math.inf:  # an impossible alignment: 0 with zero_infinity, else NaN
            for t in range(t_max):
                for ch in range(n_classes):
                    grad[t, n, ch] = 0 if zero_infinity or t >= il[n] else math.nan
            continue
        lb = beta[n]
        lcab = lcab_all[n]
        for t in range(t_max - 1, -1, -1):
            if t >= il[n]:
                for ch in range(n_classes):
                    grad[t, n, ch] = 0
                continue
            cur, nxt = t % 2, (t + 1) % 2
            for ch in range(n_classes):
                lcab[ch] = ninf
            # PyTorch's loop: s from 2S down to 0, each alpha beta log-added into
            # its class as it comes (at T_n - 1 only the two end positions).
            for s in range(k - 1, -1, -1):
                if t == il[n] - 1:
                    lb[cur, s] = lp[t, n, lprime[n, s]] if s >= k - 2 else ninf
                else:
                    a = lb[nxt, s]
                    b = lb[nxt, s + 1] if s + 1 < k else ninf
                    c = lb[nxt, s + 2] if s + 2 < k and lprime[n, s + 2] != lprime[n, s] else ninf
                    lb[cur, s] = _compiled_log_sum_exp(a, b, c) + lp[t, n, lprime[n, s]]
                if t < il[n] - 1 or s >= k - 2:
                    ch = lprime[n, s]
                    lcab[ch] = _compiled_log_sum_exp(lcab[ch], la[n, t, s] + lb[cur, s], ninf)
            for ch in range(n_classes):
                x = lp[t, n, ch]
                grad[t, n, ch] = (math.exp(x) - math.exp(lcab[ch] + nll[n] - x)) * g[n]


def _kernels_prange(n: Any) -> Any:
    """``range``, a parallel one once numba compiles the loop (_kernels.compiled)."""
    return range(n)
