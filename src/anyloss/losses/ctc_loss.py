"""Home of F.ctc_loss and anyloss.CTCLoss.

The Connectionist Temporal Classification loss of Graves et al. (2006),
computed as PyTorch's CPU kernel computes it (``aten/src/ATen/native/LossCTC.cpp``):
the forward (alpha) recursion of the paper's eq. (6)-(8) in log space, the
backward (beta) recursion of eq. (10)-(11), and the gradient of eq. (16) with
PyTorch's extra ``exp(log_probs)`` term. Both recursions loop over time steps
only, each step vectorized over the batch and the label positions; they are
``_accel.recurrence.scan`` steps, which run as ``jax.lax.scan`` on JAX and as one
compiled loop traced from the same steps on NumPy with numba.

Every quantity is computed in the input's dtype, in the kernel's order of
operations (its log-sum-exp of three terms, its per-class accumulation of
alpha beta from the last position to the first, its final formula), with
exp and log rounded as C's ``expf``/``logf`` round them: float32 results
follow PyTorch's own float32 rounding, not merely the exact values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._accel.kernels import rounded
from .._accel.recurrence import scan
from .._call import apply
from .._checks import (
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_bool,
    check_floating,
    check_integer,
    check_ndim,
    check_number,
    check_values,
    describe,
    fail,
)
from .._module import Loss
from .._reduction import check_reduction
from .._spec import Forward, LossSpec, native_call, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import clip, device, index_dtype, on_host, read, size

_NEG_INF = float("-inf")


def ctc_loss(
    log_probs: Array,
    targets: Array,
    input_lengths: Array | Sequence[int],
    target_lengths: Array | Sequence[int],
    blank: int = 0,
    reduction: Reduction = "mean",
    zero_infinity: bool = False,
) -> Array:
    r"""Connectionist Temporal Classification loss: the negative log-likelihood
    of a target sequence summed over all its alignments to the input frames.

    For a sample with log-probabilities :math:`\log y^t_k` (frame :math:`t <
    T_n`, class :math:`k`) and target :math:`l = (l_1, \dots, l_{S_n})`, let
    :math:`l'` be :math:`l` with ``blank`` inserted before, between and after
    its labels (length :math:`2 S_n + 1`). An alignment is a path
    :math:`\pi` of :math:`T_n` classes that becomes :math:`l` once repeats are
    merged and blanks removed, and

    .. math::
        \ell_n = -\log \sum_{\pi} \prod_{t < T_n} y^t_{\pi_t}
               = -\log\bigl(\alpha_{T_n-1}(2S_n) + \alpha_{T_n-1}(2S_n-1)\bigr),

    with the forward variables (in log space here)

    .. math::
        \alpha_0(0) = y^0_{\text{blank}},\quad \alpha_0(1) = y^0_{l'_1},\quad
        \alpha_t(s) = y^t_{l'_s}\bigl(\alpha_{t-1}(s) + \alpha_{t-1}(s-1)
                      + [\,l'_s \ne l'_{s-2}\,]\,\alpha_{t-1}(s-2)\bigr).

    A target that no alignment fits (too long for its input, counting the
    blank needed between repeated labels) has :math:`\ell_n = +\infty`
    (0 with ``zero_infinity=True``); an empty input with an empty target has
    :math:`\ell_n = 0`. Reduced by ``'none'`` (:math:`\ell`), ``'sum'``
    (:math:`\sum_n \ell_n`) or ``'mean'`` (:math:`\frac1N \sum_n \ell_n /
    \max(S_n, 1)`: each loss divided by its target length, then averaged over
    the batch, as in PyTorch).

    Args:
        log_probs: log-probabilities, (T, N, C) or unbatched (T, C), floating
            dtype; usually ``log_softmax`` outputs, but any values are accepted.
        targets: class indices of any integer dtype; padded (N, S) (only the
            first ``target_lengths[n]`` entries of row n are read) or the
            targets concatenated, 1-D of length ``sum(target_lengths)``.
        input_lengths: (N) or () integer array, or a tuple/list of ints:
            frames used per sample, each in [0, T].
        target_lengths: (N) or () integer array, or a tuple/list of ints:
            target length per sample, each in [0, S].
        blank: index of the blank class, in [0, C).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        zero_infinity: give impossible alignments a loss (and gradient) of 0
            instead of ``inf`` (and NaN).

    Shape:
        ``log_probs`` (T, N, C) or (T, C); ``targets`` (N, S) or
        (sum(target_lengths)); output scalar, or (N) for ``'none'`` (() when
        unbatched).

    Gradients: ``log_probs`` only, with PyTorch's convention. PyTorch's CTC
    backward returns the true derivative of :math:`\ell_n` with respect to
    :math:`\log y^t_k` **plus** :math:`y^t_k \cdot g_n` (:math:`g_n` the
    cotangent of :math:`\ell_n`, for :math:`t < T_n`):

    .. math::
        \frac{\partial}{\partial \log y^t_k} = g_n\Bigl(y^t_k - \frac{1}{p(l|x)\,y^t_k}
            \sum_{s:\,l'_s = k} \alpha_t(s)\beta_t(s)\Bigr).

    It assumes ``log_probs`` come from ``log_softmax``, whose backward cancels
    the extra term exactly (so gradients with respect to the logits are
    right); on ``log_probs`` that are not normalized, it is still there. anyloss
    reproduces this (tested against ``torch.autograd`` on normalized and
    unnormalized inputs). Frames :math:`t \ge T_n` get a zero gradient; an
    infinite loss gets NaN (0 with ``zero_infinity``); so does, as in PyTorch,
    every entry :math:`\log y^t_k = -\infty` with :math:`t < T_n`.

    Not checked under ``jax.jit`` or on lazy Dask arrays: the length ranges and
    the labels (in [0, C), not ``blank``). There the concatenated form is
    padded to ``len(targets)`` rather than to the longest target (same numbers,
    more work).

    Example:
        A target ``[1, 2]`` over 3 frames of uniform probabilities 1/3 has 5
        alignments (``112, 122, 012, 102, 120``), so its loss is
        :math:`-\log(5/27)`:

        >>> import numpy as np, anyloss.functional as F
        >>> log_probs = np.log(np.full((3, 1, 3), 1 / 3))
        >>> loss = F.ctc_loss(log_probs, np.array([[1, 2]]), np.array([3]), np.array([2]), reduction="none")
        >>> print(f"{float(loss[0]):.6f} {np.log(27 / 5):.6f}")
        1.686399 1.686399
    """
    reduction = check_reduction(reduction)
    check_number("blank", blank, integer=True)
    check_bool("zero_infinity", zero_infinity)
    if isinstance(input_lengths, (tuple, list)) or isinstance(target_lengths, (tuple, list)):
        # PyTorch also takes the lengths as tuples of ints; here they become arrays.
        xp, (log_probs, targets) = SPEC.adopt(log_probs=log_probs, targets=targets)
        input_lengths = _as_lengths(xp, "input_lengths", input_lengths, log_probs)
        target_lengths = _as_lengths(xp, "target_lengths", target_lengths, log_probs)
    xp, (log_probs, targets, input_lengths, target_lengths) = SPEC.adopt(
        log_probs=log_probs, targets=targets, input_lengths=input_lengths, target_lengths=target_lengths
    )

    check_floating(xp, "log_probs", log_probs, TypeNotImplementedError)
    check_ndim("log_probs", log_probs, (2, 3), ValueRuntimeError)
    if size(log_probs) == 0:
        fail(ValueRuntimeError, "log_probs", "not be empty", f"shape {tuple(log_probs.shape)}")
    t_max, n, c = log_probs.shape[0], (log_probs.shape[1] if log_probs.ndim == 3 else 1), log_probs.shape[-1]
    if not 0 <= blank < c:
        fail(ValueRuntimeError, "blank", f"be a class index in [0, {c})", blank)
    # PyTorch silently casts float targets to int64; class indices must be integers here.
    check_integer(xp, "targets", targets)
    check_ndim("targets", targets, (1, 2), ValueRuntimeError)
    for name, x in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        check_integer(xp, name, x, TypeRuntimeError)
        if size(x) != n:
            fail(ValueRuntimeError, name, f"have one entry per batch element ({n})", f"shape {tuple(x.shape)}")
    if targets.ndim == 2 and targets.shape[0] != n:
        fail(
            ValueRuntimeError,
            "targets",
            f"have one padded row per batch element ({n}, S)",
            f"shape {tuple(targets.shape)}",
        )

    il, tl = xp.reshape(input_lengths, (n,)), xp.reshape(target_lengths, (n,))
    if _valid(xp, targets, il, tl, t_max, c, blank):
        s_max = targets.shape[1] if targets.ndim == 2 else int(read(xp.max(tl)))
    else:
        targets, il, tl, s_max = _checked(xp, targets, il, tl, t_max, c, blank)
    # The lengths as checked (on Dask the checks are in their graph).
    input_lengths, target_lengths = xp.reshape(il, input_lengths.shape), xp.reshape(tl, target_lengths.shape)
    return apply(
        SPEC,
        xp,
        (log_probs, targets, input_lengths, target_lengths),
        reduction,
        {"max_target_length": s_max, "mean_over_lengths": reduction == "mean"},
        blank=blank,
        zero_infinity=zero_infinity,
    )


def _valid(xp: Namespace, targets: Any, il: Any, tl: Any, t_max: int, c: int, blank: int) -> bool:
    """Whether the values pass every check of :func:`_checked`, found with one
    read (a host synchronisation on a device); False where they cannot be read
    now (there :func:`_checked` puts its checks in the graph) and where one
    fails (there it names the argument)."""
    host = on_host(xp, targets, il, tl)
    if host is None:
        return False
    xp, (targets, il, tl) = host
    t = xp.astype(targets, index_dtype(xp))
    bad_label = _not_a_label(t, c, blank)
    if t.ndim == 2:
        bad_label = bad_label & _counted(xp, t, tl)
        tl_ok = xp.all(_within(tl, t.shape[1]))
    else:
        tl_ok = xp.all(tl >= 0) & (xp.sum(tl) == t.shape[0])
    ok = xp.all(_within(il, t_max)) & tl_ok & ~xp.any(bad_label)
    return bool(read(ok))


def _checked(xp: Namespace, targets: Any, il: Any, tl: Any, t_max: int, c: int, blank: int) -> Any:
    """``(targets, il, tl, s_max)`` checked one argument at a time: raises
    naming the first that fails, or (lazy values) puts the checks in the
    graph of the arrays returned."""
    il = check_values(
        xp, "input_lengths", il, lambda xp, v: _within(v, t_max), f"be in [0, {t_max}] (T)", ValueRuntimeError
    )
    tl = check_values(xp, "target_lengths", tl, lambda xp, v: v >= 0, "be >= 0", ValueRuntimeError)
    if targets.ndim == 2:
        s_max = targets.shape[1]
        tl = check_values(
            xp,
            "target_lengths",
            tl,
            lambda xp, v: v <= s_max,
            f"be <= {s_max}, the padded length of `targets`",
            ValueRuntimeError,
        )
    else:
        s_max = targets.shape[0]
        total = check_values(
            xp,
            "target_lengths",
            xp.sum(tl),
            lambda xp, v: v == s_max,
            f"sum to {s_max}, the length of the concatenated `targets`",
            ValueRuntimeError,
        )
        if read(total) is not None:  # else (lazy lengths) the static bound: the concatenated length
            s_max = int(read(xp.max(tl)))
        tl = tl + xp.astype(total * 0, tl.dtype)  # the lengths as checked: their sum's check in their graph
    return _check_labels(xp, targets, tl, c, blank), il, tl, s_max


def _as_lengths(xp: Namespace, name: str, x: Any, like: Any) -> Any:
    """Lengths given as a tuple/list of ints (PyTorch's IntArrayRef overload) as an int64 array."""
    if not isinstance(x, (tuple, list)):
        return x
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in x):
        fail(TypeError, name, "be an integer array or a tuple of ints", describe(x))
    return xp.asarray([int(v) for v in x], dtype=index_dtype(xp), device=device(like))


def _check_labels(xp: Namespace, targets: Any, tl: Any, c: Any, blank: Any) -> Any:
    """The labels within each target's length are class indices other than ``blank``
    (PyTorch does not check them: out of range it reads arbitrary memory).
    Returns ``targets``: as given where their values can be read now; else
    (Dask, JAX under ``jit``) with the check in their graph, the positions
    beyond each length (which no loss reads) set to ``blank``."""
    if size(targets) == 0:
        return targets
    t = xp.astype(targets, index_dtype(xp))
    counted = _counted(xp, t, tl) if t.ndim == 2 else xp.ones(t.shape, dtype=xp.bool, device=device(t))
    expected = f"hold class indices in [0, {c}) other than the blank label {blank} within `target_lengths`"
    kept = xp.where(counted, t, xp.full_like(t, blank))
    lo, hi = read(xp.min(kept)), read(xp.max(kept))
    if lo is None:  # lazy, or traced: the check joins the graph (check_values)
        bad = counted & _not_a_label(t, c, blank)
        bad = check_values(xp, "targets", bad, lambda xp, v: ~v, expected)
        return xp.astype(xp.where(bad, t, kept), targets.dtype)
    if lo < 0 or hi >= c:
        fail(ValueError, "targets", expected, f"labels in [{lo}, {hi}]")
    n_blank = int(read(xp.sum(xp.astype(counted & (t == blank), index_dtype(xp)))))
    if n_blank:
        fail(ValueError, "targets", expected, f"{n_blank} blank label(s)")
    return targets


def _within(v: Any, hi: Any) -> Any:
    """``0 <= v <= hi``, elementwise."""
    return (v >= 0) & (v <= hi)


def _not_a_label(t: Any, c: Any, blank: Any) -> Any:
    """Where the targets ``t`` hold no class index in [0, ``c``) other than ``blank``."""
    return (t < 0) | (t >= c) | (t == blank)


def _counted(xp: Namespace, t: Any, tl: Any) -> Any:
    """Which entries of the padded targets ``t`` (N, S) are within their row's length."""
    return xp.reshape(xp.arange(t.shape[1], device=device(t)), (1, -1)) < xp.reshape(tl, (-1, 1))


def _fwd(
    xp: Namespace,
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    *,
    blank: Any,
    zero_infinity: Any,
    max_target_length: Any,
    mean_over_lengths: Any,
) -> Forward:
    unbatched = log_probs.ndim == 2
    t_max, c = log_probs.shape[0], log_probs.shape[-1]
    n = 1 if unbatched else log_probs.shape[1]
    s_max = max_target_length
    k = 2 * s_max + 1  # positions of the extended label sequence l'
    dtype, dev = log_probs.dtype, device(log_probs)
    lp = xp.reshape(log_probs, (t_max, n, c))
    il = xp.astype(xp.reshape(input_lengths, (n,)), index_dtype(xp))
    tl = xp.astype(xp.reshape(target_lengths, (n,)), index_dtype(xp))
    ninf = xp.full((), _NEG_INF, dtype=dtype, device=dev)
    zero, one = xp.zeros((), dtype=dtype, device=dev), xp.ones((), dtype=dtype, device=dev)

    # The extended labels l' (N, K): blank, l_1, blank, l_2, ..., blank, plus
    # one sentinel position K (label -1) whose log-probability and alpha/beta
    # are always -inf: every shifted read that falls off the band (s - 1 < 0,
    # a forbidden skip, s + 1 > 2S) reads it, so a step is one gather and no
    # concatenation (which also keeps Dask's chunks whole). Positions past
    # 2 * target_length hold blanks and are masked where they matter.
    k1 = k + 1
    s_idx = xp.reshape(xp.arange(k1, device=dev), (1, k1))
    labels = _padded_targets(xp, targets, tl, n, s_max)
    labels = xp.where(_counted(xp, labels, tl), labels, xp.full_like(labels, blank))
    blank_or_sentinel = xp.where(s_idx < k, xp.full_like(s_idx, blank), xp.full_like(s_idx, -1))
    if s_max:
        at_label = xp.reshape(clip(xp, (xp.arange(k1, device=dev) - 1) // 2, min=0, max=s_max - 1), (-1,))
        odd = (s_idx % 2 == 1) & (s_idx < k)
        lprime = xp.where(odd, xp.take(labels, at_label, axis=1), blank_or_sentinel)
    else:
        lprime = xp.broadcast_to(blank_or_sentinel, (n, k1))
    valid = s_idx <= 2 * xp.reshape(tl, (n, 1))
    # The skip transition s-2 -> s (eq. 7): only into a label that differs from
    # the label two positions back, so repeated labels need a blank between them.
    two_back = xp.take(lprime, xp.reshape(clip(xp, s_idx - 2, min=0), (-1,)), axis=1)
    skip = (s_idx >= 2) & (s_idx < k) & (lprime != two_back)

    # log y^t_{l'_s}: each step reads it from its frame of lp_flat (T, N * C + 1)
    # at `emit` (_emission); the sentinel and the positions past 2 * target_length
    # read the appended column of -inf. (Frames past input_length are read as they
    # are: no alpha there reaches the loss, and their gradient is 0.)
    lp_flat = xp.concat(
        [xp.reshape(lp, (t_max, n * c)), xp.full((t_max, 1), _NEG_INF, dtype=dtype, device=dev)], axis=1
    )
    row = xp.reshape(xp.arange(n, device=dev), (n, 1))
    emit = xp.reshape(xp.where((lprime >= 0) & valid, row * c + lprime, xp.full_like(lprime, n * c)), (-1,))

    # Forward recursion, eq. (6): alpha_0 is non-zero at s = 0, 1 only; then
    # alpha_t(s) = y^t_{l'_s} (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [skip] alpha_{t-1}(s-2)),
    # in log space. `reads`: for each position, the flat indices into the
    # (N, K + 1) alpha of s itself, s - 1 and s - 2 (or the sentinel).
    sentinel = xp.full_like(s_idx, k)
    one_back = xp.where((s_idx >= 1) & (s_idx < k), s_idx - 1, sentinel)
    reads = tuple(
        xp.reshape(row * k1 + r, (-1,))
        for r in (xp.broadcast_to(s_idx, (n, k1)), one_back, xp.where(skip, s_idx - 2, sentinel))
    )

    alpha0 = xp.where(s_idx < 2, _emission(xp, lp_flat[0, ...], emit, (n, k1)), ninf)
    alphas = scan(xp, _alpha_step, alpha0, (lp_flat[1:, ...],), (*reads, emit, zero, one))  # (T, N, K + 1)

    # Eq. (8): p(l|x) = alpha_{T-1}(2S) + alpha_{T-1}(2S-1) at the sample's last
    # frame T_n - 1 (only the first term for an empty target).
    last = clip(xp, il, min=1) - 1
    at_end = (last * n + xp.arange(n, device=dev)) * k1 + 2 * tl
    flat_alphas = xp.reshape(alphas, (-1,))
    end_blank = xp.take(flat_alphas, at_end)
    end_label = xp.where(tl > 0, xp.take(flat_alphas, clip(xp, at_end - 1, min=0)), ninf)
    log_likelihood = _log_add(xp, end_blank, end_label, zero, one)
    # No frames: the empty target has probability 1, any other 0 (PyTorch's special case).
    empty_input = xp.where(tl == 0, zero, ninf)
    nll = -xp.where(il == 0, empty_input, log_likelihood)

    loss = nll
    if zero_infinity:
        loss = xp.where(nll == float("inf"), zero, nll)
    # 'mean' is mean_n(loss_n / max(S_n, 1)), which no single divisor of
    # sum_n loss_n expresses. So the public function asks for the per-sample
    # quotient here, and the plain 'mean' over N of _reduction averages it; the
    # backward divides the cotangent by the same lengths.
    lengths = xp.astype(clip(xp, tl, min=1), dtype) if mean_over_lengths else None
    if lengths is not None:
        loss = loss / lengths
    if unbatched:
        loss = xp.reshape(loss, ())
    res = (log_probs.shape, lp, lp_flat, emit, alphas, lprime, valid, skip, il, tl, nll, lengths)
    return Forward(loss, res)


def _log_sum_exp(xp: Namespace, terms: Sequence[Any], zero: Any, one: Any) -> Any:
    """log(exp(a) + exp(b) (+ exp(c))) of the 2 or 3 arrays ``terms``, elementwise,
    as PyTorch's kernel computes it in the input's dtype: shifted by the
    maximum, the exponentials added left to right, then the log, then the
    maximum added back. Where all terms are -inf the shift is 0 and the result
    -inf (the kernel's "cannot do neginf-neginf" case), without a log(0); +inf
    or NaN terms give NaN, as in PyTorch."""
    m = terms[0]
    for x in terms[1:]:
        m = xp.maximum(m, x)
    dead = m == _NEG_INF
    shift = xp.where(dead, zero, m)
    total = _libm(xp, xp.exp, terms[0] - shift)
    for x in terms[1:]:
        total = total + _libm(xp, xp.exp, x - shift)
    # All -inf: the maximum itself (the compiled recursions skip the log there).
    return xp.where(dead, m, _libm(xp, xp.log, xp.where(dead, one, total)) + m)


def _libm(xp: Namespace, f: Any, x: Any) -> Any:
    """``f`` (``xp.exp`` or ``xp.log``) of ``x`` as C's ``expf``/``logf`` give it
    on float32, which PyTorch's kernel calls: correctly rounded (but for rare
    ties), here rounded from double precision where the namespace has float64.
    NumPy's, JAX's and PyTorch's own float32 exp and log are vectorized
    approximations, a unit in the last place off for a good part of their
    arguments; log alpha and log beta add one such ulp per frame, and the
    gradient, exp of their sum, shows it beyond float32's tolerance."""
    if x.dtype != xp.float32:
        return f(x)
    fast = rounded("exp" if f is xp.exp else "log", x)
    if fast is not None:
        return fast
    if "float64" not in xp.__array_namespace_info__().dtypes(device=device(x), kind="real floating"):
        return f(x)
    if f is xp.exp:
        # The same numbers: exp below -200 rounds to float32's 0 (from exp(-200) =
        # 1.4e-87 as from exp(-inf)). NumPy's double exp takes a scalar path for each
        # vector holding a result that underflows double (-inf, the classes l' lacks,
        # included): the gradient's formula took 10x as long.
        x = xp.maximum(x, xp.full((), -200.0, dtype=x.dtype, device=device(x)))
    return xp.astype(f(xp.astype(x, xp.float64)), xp.float32)


def _log_add_reads(xp: Namespace, x: Any, reads: Any, lp: Any, zero: Any, one: Any) -> Any:
    """One step of the alpha or beta recursion: :func:`_log_sum_exp` of the
    three entries of ``x`` (N, K + 1) that ``reads`` (three flat index arrays)
    pick for each position (itself, one and two along the band, or the
    sentinel), plus the frame's log-probabilities ``lp``."""
    flat = xp.reshape(x, (-1,))
    terms = [xp.reshape(xp.take(flat, r), x.shape) for r in reads]
    return _log_sum_exp(xp, terms, zero, one) + lp


def _emission(xp: Namespace, lp_t: Any, emit: Any, shape: Any) -> Any:
    """log y^t_{l'_s} of a frame ``lp_t`` (N * C + 1, a row of lp_flat) at each
    position (``emit``: flat indices into it), of the shape ``shape``."""
    return xp.reshape(xp.take(xp.reshape(lp_t, (-1,)), emit), shape)


# The steps of the recursions (recurrence.scan): the carry, the step's slices (the
# frame of lp_flat, a table the step reads at `emit`), then the arrays every step
# reads (the three index arrays of _log_add_reads, `emit`, zero and one).


def _alpha_step(xp: Namespace, alpha: Any, lp_t: Any, r0: Any, r1: Any, r2: Any, emit: Any, zero: Any, one: Any) -> Any:
    return _log_add_reads(xp, alpha, (r0, r1, r2), _emission(xp, lp_t, emit, alpha.shape), zero, one)


def _beta_step(
    xp: Namespace,
    beta: Any,
    lp_t: Any,
    recurse_t: Any,
    end_t: Any,
    r0: Any,
    r1: Any,
    r2: Any,
    emit: Any,
    zero: Any,
    one: Any,
) -> Any:
    # Recursing, or at a last frame's end position (its emission), or -inf.
    lp_s = _emission(xp, lp_t, emit, beta.shape)
    start = xp.where(end_t, lp_s, xp.full_like(lp_s, _NEG_INF))
    return xp.where(recurse_t, _log_add_reads(xp, beta, (r0, r1, r2), lp_s, zero, one), start)


def _run_step(xp: Namespace, acc: Any, x: Any, start: Any, zero: Any, one: Any) -> Any:
    # A run of a class's positions (_collect) starts with its term: -inf "log+" x is x.
    return xp.where(start, x, _log_add(xp, acc, x, zero, one))


def _log_add(xp: Namespace, a: Any, b: Any, zero: Any, one: Any) -> Any:
    """``a`` "log+=" ``b``, PyTorch's accumulation of eq. (16)'s sum: exactly
    ``b`` where ``a`` is -inf, exactly ``a`` where ``b`` is."""
    return _log_sum_exp(xp, (a, b), zero, one)


def _collect(xp: Namespace, ab: Any, lprime: Any, valid: Any, n_classes: Any, zero: Any, one: Any) -> Any:
    """PyTorch's ``lcab`` (T, N, C): for each class k, ``ab`` (T, N, K + 1, the
    log of alpha_t(s) beta_t(s), -inf where not counted) log-added over the
    positions s of l' holding k, from s = 2S down to 0, one rounding per term
    as the kernel's loop makes them (float32 gradients depend on that order
    at the level of the tolerance); -inf for a class that l' lacks.

    With the positions sorted by class, and within a class from the last to
    the first, each class's positions are a run, and one scan along the sorted
    positions log-adds every run from its start: one addition per position, as
    the kernel makes. Each class then reads the scan at the end of its run.
    The positions past 2 * target_length (``valid`` false) sort last, as a
    class of their own that nothing reads."""
    t_max, n, k1 = ab.shape
    k = k1 - 1  # without the sentinel
    dev, idx = device(ab), index_dtype(xp)
    s_idx = xp.reshape(xp.arange(k, dtype=idx, device=dev), (1, k))
    labels = xp.where(valid[:, :k], xp.astype(lprime[:, :k], idx), xp.full((), n_classes, dtype=idx, device=dev))
    order = xp.argsort(labels * k + (k - 1 - s_idx), axis=1)  # (N, K): class, then s descending
    row = xp.reshape(xp.arange(n, dtype=idx, device=dev), (n, 1))
    ordered = xp.reshape(xp.take(xp.reshape(labels, (-1,)), xp.reshape(row * k + order, (-1,))), (n, k))
    first = xp.concat([xp.ones((n, 1), dtype=xp.bool, device=dev), ordered[:, 1:] != ordered[:, :-1]], axis=1)

    # ab's rows along T, one per position, in sorted order, (K, N, T): the scan's inputs.
    at = xp.reshape(xp.permute_dims(row * k1 + order, (1, 0)), (-1,))
    ab = xp.reshape(xp.permute_dims(ab, (1, 2, 0)), (n * k1, t_max))
    runs = xp.reshape(xp.take(ab, at, axis=0), (k, n, t_max))
    starts = xp.broadcast_to(xp.reshape(xp.permute_dims(first, (1, 0)), (k, n, 1)), (k, n, t_max))

    sums = scan(xp, _run_step, xp.full((n, t_max), _NEG_INF, dtype=ab.dtype, device=dev), (runs, starts), (zero, one))

    # Class c's run ends after the positions of classes <= c (sums has the
    # initial -inf first, so that count indexes the sum after the run); a class
    # that l' lacks reads that initial -inf.
    # Each row of `ordered` is sorted, so with row n's labels offset by n (C + 1) the
    # whole is: two searches give where each class's run ends, and whether it has one.
    offset = row * (n_classes + 1)
    flat = xp.reshape(ordered + offset, (-1,))
    query = xp.reshape(xp.reshape(xp.arange(n_classes, dtype=idx, device=dev), (1, n_classes)) + offset, (-1,))
    after = xp.reshape(xp.astype(xp.searchsorted(flat, query, side="right"), idx), (n, n_classes))
    before = xp.reshape(xp.astype(xp.searchsorted(flat, query, side="left"), idx), (n, n_classes))
    end = xp.where(after > before, after - row * k, xp.zeros_like(after))  # (N, C)
    cell = (
        xp.reshape(xp.arange(t_max, dtype=idx, device=dev), (t_max, 1, 1))
        + xp.reshape(xp.arange(n, dtype=idx, device=dev), (1, n, 1)) * t_max
    )
    at = xp.reshape(end, (1, n, n_classes)) * (n * t_max) + cell  # sums is (K + 1, N, T)
    return xp.reshape(xp.take(xp.reshape(sums, (-1,)), xp.reshape(at, (-1,))), (t_max, n, n_classes))


def _padded_targets(xp: Namespace, targets: Any, tl: Any, n: Any, s_max: Any) -> Any:
    """Targets as an (N, s_max) int64 array (entries past each length arbitrary)."""
    t = xp.astype(targets, index_dtype(xp))
    if t.ndim == 2:
        return t[:, :s_max]
    dev = device(t)
    if s_max == 0 or t.shape[0] == 0:
        return xp.zeros((n, s_max), dtype=index_dtype(xp), device=dev)
    # Concatenated: sample n's labels start at the sum of the lengths before it.
    starts = xp.cumulative_sum(tl) - tl
    idx = xp.reshape(starts, (n, 1)) + xp.reshape(xp.arange(s_max, device=dev), (1, s_max))
    idx = clip(xp, idx, min=0, max=t.shape[0] - 1)
    return xp.reshape(xp.take(t, xp.reshape(idx, (-1,))), (n, s_max))


def _bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    blank: Any,
    zero_infinity: Any,
    max_target_length: Any,
    mean_over_lengths: Any,
) -> tuple[Any, ...]:
    shape, lp, lp_flat, emit, alphas, lprime, valid, skip, il, tl, nll, lengths = res
    t_max, n, c = lp.shape
    k1 = lprime.shape[1]
    dtype, dev = lp.dtype, device(lp)
    ninf = xp.full((), _NEG_INF, dtype=dtype, device=dev)
    zero, one = xp.zeros((), dtype=dtype, device=dev), xp.ones((), dtype=dtype, device=dev)
    g = xp.reshape(g, (n,))
    if lengths is not None:
        g = g / lengths

    # Backward recursion, eq. (10)-(11), with PyTorch's beta that includes the
    # frame's own emission: beta_{T_n-1}(s) = y^{T_n-1}_{l'_s} for s = 2S_n, 2S_n-1,
    # beta_t(s) = y^t_{l'_s} (beta_{t+1}(s) + beta_{t+1}(s+1) + [skip] beta_{t+1}(s+2))
    # for t < T_n - 1 and s <= 2S_n; -inf elsewhere (the sentinel included).
    # Masks are (T, N, K + 1) here.
    s_idx = xp.reshape(xp.arange(k1, device=dev), (1, k1))
    last = xp.reshape(il - 1, (n, 1))
    end = (s_idx >= 2 * xp.reshape(tl, (n, 1)) - 1) & valid
    t_col = xp.reshape(xp.arange(t_max, device=dev), (t_max, 1, 1))
    recurse = (t_col < last) & valid
    at_end = (t_col == last) & end
    # The skip into s from s + 2 is allowed when it is allowed out of s + 2 forward.
    two_ahead = clip(xp, s_idx + 2, max=k1 - 1)
    skip_back = xp.take(skip, xp.reshape(two_ahead, (-1,)), axis=1)
    row = xp.reshape(xp.arange(n, device=dev), (n, 1))
    one_ahead = clip(xp, s_idx + 1, max=k1 - 1)
    sentinel = xp.full_like(s_idx, k1 - 1)
    reads = tuple(
        xp.reshape(row * k1 + r, (-1,))
        for r in (xp.broadcast_to(s_idx, (n, k1)), one_ahead, xp.where(skip_back, two_ahead, sentinel))
    )

    xs = (lp_flat[:-1, ...], recurse[:-1, ...], at_end[:-1, ...])
    beta0 = xp.where(at_end[t_max - 1, ...], _emission(xp, lp_flat[t_max - 1, ...], emit, (n, k1)), ninf)
    betas = scan(xp, _beta_step, beta0, xs, (*reads, emit, zero, one), reverse=True)  # (T, N, K + 1)

    # Eq. (16): collect alpha_t(s) beta_t(s) over the positions s of each class
    # (PyTorch's `lcab`, in log space) for t < T_n; see _collect. Beta is -inf
    # wherever the kernel does not count a term (past 2 * target_length, past the
    # last frame, and at the last frame but at the two end positions), so their
    # sum is too; it can be NaN there instead (alpha NaN or +inf from such
    # log_probs) only past 2 * target_length, which no class reads, or from the
    # last frame on, whose gradient is 0.
    lcab = _collect(xp, alphas + betas, lprime, valid, c, zero, one)  # (T, N, C)

    # PyTorch's formula, in its order: (exp(lp) - exp(lcab + nll - lp)) * g. An
    # infinite loss makes the gradient NaN (computed here without the inf - inf);
    # zero_infinity zeroes it.
    infinite = nll == float("inf")
    nll_finite = xp.reshape(xp.where(infinite, zero, nll), (1, n, 1))
    if not zero_infinity:  # NaN as a factor: linear in g, as every bwd is (JAX transposes it)
        g = g * xp.where(infinite, xp.full((), math.nan, dtype=dtype, device=dev), one)
    grad = _libm(xp, xp.exp, lp) - _libm(xp, xp.exp, lcab + nll_finite - lp)
    grad = grad * xp.reshape(g, (1, n, 1))
    if zero_infinity:
        grad = xp.where(xp.reshape(infinite, (1, n, 1)), zero, grad)
    grad = xp.where(t_col < xp.reshape(il, (1, n, 1)), grad, zero)
    return xp.reshape(grad, shape), None, None, None


class CTCLoss(Loss):
    """Object form of :func:`ctc_loss` (``torch.nn.CTCLoss``)."""

    def __init__(self, blank: int = 0, reduction: Reduction = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: Array, targets: Array, input_lengths: Array, target_lengths: Array) -> Array:
        return ctc_loss(
            log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


def _example(xp: Namespace) -> Any:
    # 3 frames of uniform probabilities over {blank, 1, 2}, target [1, 2]: 5 alignments.
    log_probs = xp.full((3, 1, 3), -1.0986122886681098, dtype=xp.float64)  # log(1/3)
    return (log_probs, xp.asarray([[1, 2]]), xp.asarray([3]), xp.asarray([2])), {}


# PyTorch's ctc_loss has data-dependent output shapes inside: torch.compile cannot trace it (fullgraph).
SPEC = register_spec(
    LossSpec(
        name="ctc_loss",
        native_traces=False,
        native=native_call("ctc_loss"),
        fwd=_fwd,
        bwd=_bwd,
        argnames=("log_probs", "targets", "input_lengths", "target_lengths"),
        differentiable=("log_probs",),
        summary="connectionist temporal classification; sequences without alignment",
        functional=ctc_loss,
        cls=CTCLoss,
        example=_example,
        curve=False,  # no 1-D curve: each sample is a sequence (log_probs is (T, N, C))
    )
)
