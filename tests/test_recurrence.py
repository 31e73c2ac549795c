"""The compiled loops of a definition's recurrences (_accel/recurrence.py):
each ``scan`` step traced at one element into a numba loop. ``ctc_loss``, whose
alpha, beta and per-class recursions are such scans, reruns its conformance
cases through them and through the Python loop, against PyTorch; generic
scans agree with the Python loop, forward and reverse, along any axis, on
threads, and fall back to it where a step does not trace."""

from __future__ import annotations

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss import _config
from anyloss._accel import recurrence
from helpers import check_against_torch, loss_test_module, spy_calls

pytest.importorskip("numba")

CTC_CASES = loss_test_module("ctc_loss").CASES


@pytest.fixture
def loops(monkeypatch):
    """The compiled loops that ran (their step functions' names)."""
    return spy_calls(monkeypatch, recurrence, "_compiled", declined=None, record=lambda step: step.__name__)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "loop"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CTC_CASES, ids=[c.id for c in CTC_CASES])
def test_ctc_matches_torch(case, dtype, compiled, loops, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(_config, "compiled", compiled)
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    check_against_torch("ctc_loss", args, kwargs, np_xp, grads=case.grads, tol=case.tol)
    steps = set(loops)
    if not compiled:
        assert not steps
    elif np.asarray(args[0]).dtype.kind == "f" and np.asarray(args[0]).shape[0] > 1:
        assert "_alpha_step" in steps  # the forward ran compiled (one frame: no step)


def test_ctc_compiled_agrees_with_the_loop(loops, monkeypatch):
    rng = np.random.default_rng(0)
    t, n, c, s = 30, 4, 6, 5
    logits = rng.standard_normal((t, n, c))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = rng.integers(1, c, (n, s))
    targets[1, 1] = targets[1, 0]  # a repeated label needs a blank between
    il, tl = np.array([30, 25, 3, 0]), np.array([5, 3, 5, 0])  # too short for its target: inf
    for zero_infinity in (False, True):
        kw = dict(reduction="mean", zero_infinity=zero_infinity)
        value, g = anyloss.value_and_grad(F.ctc_loss)(log_probs, targets, il, tl, **kw)
        assert set(loops) == {"_alpha_step", "_beta_step", "_run_step"}
        monkeypatch.setattr(_config, "compiled", False)
        ref, rg = anyloss.value_and_grad(F.ctc_loss)(log_probs, targets, il, tl, **kw)
        monkeypatch.setattr(_config, "compiled", True)
        np.testing.assert_allclose(value, ref, rtol=1e-12)
        np.testing.assert_allclose(g, rg, rtol=1e-9, atol=1e-12)


def test_ctc_float32_on_a_long_sequence(loops):
    """In float32 the compiled loops compute exp and log as the definition does,
    in double rounded once (vmath.rounded); PyTorch's kernel calls C's
    expf/logf, which differ from that in rare ties: the gradients stay within
    PyTorch's tolerance on a long sequence, where such differences add up."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    t, n, c, s = 200, 8, 40, 60
    logits = rng.standard_normal((t, n, c)).astype(np.float32)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets, il, tl = rng.integers(1, c, (n, s)), rng.integers(150, t + 1, n), rng.integers(30, s + 1, n)
    value, g = anyloss.value_and_grad(F.ctc_loss)(log_probs, targets, il, tl, reduction="sum")
    assert loops
    x = torch.tensor(log_probs, requires_grad=True)
    ref = torch.nn.functional.ctc_loss(x, *map(torch.tensor, (targets, il, tl)), reduction="sum")
    ref.backward()
    torch.testing.assert_close(torch.tensor(value), ref.detach())
    torch.testing.assert_close(torch.tensor(g), x.grad)


# ---------------------------------------------------------------- generic scans


def _chain_step(xp, carry, x, w, back, scale):
    """carry[i] <- logaddexp-ish of itself and the element ``back[i]``, a ``where``
    on the sign of ``x``: elementwise code, a take from the carry, a number."""
    prev = xp.reshape(xp.take(xp.reshape(carry, (-1,)), back), carry.shape)
    m = xp.maximum(carry, prev)
    blend = m + xp.log(xp.exp(carry - m) + xp.exp(prev - m)) * scale
    return xp.where(x > 0, blend + x * w, carry - x)


def _scan_both(monkeypatch, step, init, xs, consts, **kw):
    monkeypatch.setattr(_config, "compiled", True)
    fast = recurrence.scan(np_xp, step, init, xs, consts, **kw)
    monkeypatch.setattr(_config, "compiled", False)
    slow = recurrence.scan(np_xp, step, init, xs, consts, **kw)
    monkeypatch.setattr(_config, "compiled", True)
    return fast, slow


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_scan_agrees_with_the_loop(dtype, reverse, axis, loops, monkeypatch):
    rng = np.random.default_rng(0)
    n, k, t = 5, 7, 9
    init = rng.standard_normal((n, k)).astype(dtype)
    xs = (rng.standard_normal((t, n, k)).astype(dtype),)
    lane = np.arange(n * k).reshape(n, k)
    back = np.where(lane % k > 0, lane - 1, lane).reshape(-1)  # within each row
    w, scale = rng.standard_normal((n, k)).astype(dtype), np.asarray(0.5, dtype=dtype)
    fast, slow = _scan_both(monkeypatch, _chain_step, init, xs, (w, back, scale), reverse=reverse, axis=axis)
    assert loops == ["_chain_step"]
    assert fast.shape == slow.shape == (n, k)[:axis] + (t + 1,) + (n, k)[axis:]
    assert fast.dtype == slow.dtype == np.dtype(dtype)
    # NumPy's and the C library's exp and log differ by an ulp at times
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fast, slow, **tol)


def test_threaded_scan_agrees_with_the_loop(loops, monkeypatch):
    """Rows that only read themselves run on threads; a read across rows keeps
    the loop in one thread (the result is the same either way)."""
    rng = np.random.default_rng(0)
    n, k, t = 64, 33, 40
    monkeypatch.setattr(recurrence, "THREADED_WORK", 0)
    threads = spy_calls(monkeypatch, recurrence.kernels, "in_ranges", declined=object(), record=lambda call: call)
    init, xs = rng.standard_normal((n, k)), (rng.standard_normal((t, n, k)),)
    w, scale = rng.standard_normal((n, k)), np.asarray(0.25)
    lane = np.arange(n * k).reshape(n, k)
    within = np.where(lane % k > 0, lane - 1, lane).reshape(-1)
    across = ((lane + k) % (n * k)).reshape(-1)  # the next row's element
    for back, split in ((within, True), (across, False)):
        threads.clear()
        fast, slow = _scan_both(monkeypatch, _chain_step, init, xs, (w, back, scale), axis=1)
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-14)
        assert bool(threads) == split


def _rounded(xp, f, x):
    """``f`` of float32 ``x`` computed in float64 and rounded once, as ctc_loss's _libm."""
    return xp.astype(f(xp.astype(x, xp.float64)), xp.float32) if x.dtype == xp.float32 else f(x)


def _log_add_step(xp, carry, x, keep, back, zero):
    """A log-add of each element and the one at ``back``, a dead band of -inf
    kept without a log of 0, and a boolean slice choosing the new value: the
    kind of step ctc_loss's recursions are."""
    prev = xp.reshape(xp.take(xp.reshape(carry, (-1,)), back), carry.shape)
    m = xp.maximum(carry, prev)
    dead = m == -xp.inf
    shift = xp.where(dead, zero, m)
    total = _rounded(xp, xp.exp, carry - shift) + _rounded(xp, xp.exp, prev - shift)
    added = xp.where(dead, m, _rounded(xp, xp.log, xp.where(dead, zero + 1, total)) + m)
    return xp.where(keep, added + x, x)


@pytest.mark.parametrize("threaded", [False, True], ids=["one thread", "threads"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_a_float32_step_of_rounded_exp_and_log_runs_as_a_vector_loop(reverse, threaded, loops, monkeypatch):
    """Its reads of the carry at an index go into buffers first and each where
    becomes a select (no ``if``), which LLVM vectorizes; its exp and log are
    vmath's rounded ones, the definition's own numbers: equal to the loop's."""
    sources = spy_calls(monkeypatch, recurrence.kernels, "compile_source", declined=object(), record=lambda s, *a: s)
    monkeypatch.setattr(recurrence, "_LOOPS", {})
    monkeypatch.setattr(recurrence, "THREADED_WORK", 0 if threaded else 1 << 62)
    rng = np.random.default_rng(0)
    n, k, t = 6, 21, 30
    init = np.where(rng.random((n, k)) < 0.3, -np.inf, rng.standard_normal((n, k))).astype(np.float32)
    xs = (rng.standard_normal((t, n, k)).astype(np.float32), rng.random((t, n, k)) < 0.8)
    lane = np.arange(n * k).reshape(n, k)
    back = np.where(lane % k > 0, lane - 1, lane).reshape(-1)
    fast, slow = _scan_both(monkeypatch, _log_add_step, init, xs, (back, np.zeros((), np.float32)), reverse=reverse)
    assert loops == ["_log_add_step"]
    (source,) = sources
    assert "G_t0 = " in source and "if " not in source.replace(" if ", "")
    np.testing.assert_array_equal(fast, slow)


def _table_step(xp, carry, row, at, zero):
    """The carry log-added to an entry of the step's row of a table (another
    shape than the carry), read at ``at``: ctc_loss's emissions."""
    picked = xp.reshape(xp.take(xp.reshape(row, (-1,)), at), carry.shape)
    m = xp.maximum(carry, picked)
    total = _rounded(xp, xp.exp, carry - m) + _rounded(xp, xp.exp, picked - m)
    return _rounded(xp, xp.log, total) + m


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_a_step_reads_a_table_at_indices(dtype, reverse, loops, monkeypatch):
    """An array of xs whose slices are not of the carry's shape is a table the
    step reads by a take at an index array among consts: compiled, as the loop."""
    rng = np.random.default_rng(0)
    n, k, t, width = 4, 9, 12, 31
    init = rng.standard_normal((n, k)).astype(dtype)
    table = rng.standard_normal((t, width)).astype(dtype)
    at = rng.integers(0, width, n * k)
    fast, slow = _scan_both(
        monkeypatch, _table_step, init, (table,), (at, np.zeros((), dtype)), reverse=reverse, axis=1
    )
    assert loops == ["_table_step"]
    np.testing.assert_allclose(fast, slow, rtol=1e-6 if dtype == "float32" else 1e-13)


def test_a_table_read_otherwise_or_off_its_end_runs_as_the_loop(loops, monkeypatch):
    rng = np.random.default_rng(0)
    n, k, t, width = 3, 4, 5, 7
    init, table = rng.standard_normal((n, k)), rng.standard_normal((t, width))

    def adds_the_row(xp, carry, row, at, zero):  # the table's element is not one value
        return carry + xp.reshape(xp.take(xp.reshape(row, (-1,)), at), carry.shape) + row

    with pytest.raises(ValueError):  # as the loop: (3, 4) + (7,) do not broadcast
        recurrence.scan(np_xp, adds_the_row, init, (table,), (np.arange(n * k) % width, np.zeros(())))
    assert loops == []
    with pytest.raises(IndexError):  # the loop's take: index 7 of 7 entries
        recurrence.scan(np_xp, _table_step, init, (table,), (np.full(n * k, width), np.zeros(())))
    assert loops == []


def test_a_step_that_does_not_trace_runs_as_the_loop(loops, monkeypatch):
    rng = np.random.default_rng(0)
    init, xs = rng.standard_normal((3, 4)), (rng.standard_normal((5, 3, 4)),)

    def reduces(xp, carry, x):  # a sum along an axis: not one element's code
        return carry + x - xp.sum(carry, axis=1, keepdims=True) / 4

    hidden = rng.standard_normal((3, 4))

    def closes_over_an_array(xp, carry, x):  # an array not given in consts
        return carry * 0.5 + x * hidden

    for step in (reduces, closes_over_an_array):
        loops.clear()
        fast, slow = _scan_both(monkeypatch, step, init, xs, ())
        assert loops == []
        np.testing.assert_array_equal(fast, slow)


def test_a_traced_step_compiles_once(monkeypatch):
    compiles = spy_calls(monkeypatch, recurrence, "_trace", declined=object(), record=lambda step: step)
    rng = np.random.default_rng(0)
    n, k = 4, 6
    back = np.arange(n * k)
    for t in (3, 8, 5):  # new lengths and values: the same loop
        init, xs = rng.standard_normal((n, k)), (rng.standard_normal((t, n, k)),)
        _scan_both(monkeypatch, _chain_step, init, xs, (rng.standard_normal((n, k)), back, np.asarray(0.1 * t)))
    assert len(compiles) <= 1  # traced at most once (zero if an earlier test traced it)


def test_an_index_off_the_carry_raises_as_the_loop(loops):
    """The compiled loop reads without bounds checks: an index past the carry
    leaves it to the loop, whose take raises."""
    rng = np.random.default_rng(0)
    init, xs = rng.standard_normal((2, 3)), (rng.standard_normal((4, 2, 3)),)
    back = np.array([0, 1, 2, 3, 4, 6])  # 6: one past the 6 elements
    with pytest.raises(IndexError):
        recurrence.scan(np_xp, _chain_step, init, xs, (np.ones((2, 3)), back, np.asarray(0.5)))
    assert loops == []


def test_consts_of_another_shape_run_as_the_loop(loops, monkeypatch):
    """An array of the carry's size but another shape broadcasts otherwise (or
    not at all) in the loop; the compiled loop, which reads element i of it,
    leaves it to the loop."""
    rng = np.random.default_rng(0)
    init, xs = rng.standard_normal((3, 1)), (rng.standard_normal((4, 3, 1)),)
    back = np.arange(3)
    w = rng.standard_normal((1, 3))  # broadcasts with (3, 1) to (3, 3) in the loop
    with pytest.raises(ValueError):  # the loop's carry changes shape: stacking fails
        recurrence.scan(np_xp, _chain_step, init, xs, (w, back, np.asarray(0.5)))
    assert loops == []
