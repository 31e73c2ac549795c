"""Row blocks (_blocks.py): every loss that declares ``rows`` gives PyTorch's
value and gradients when computed a few rows at a time.

Each loss's own conformance cases are rerun with blocks of 3 elements and no
minimum size, on NumPy (``anyloss.vjp`` with a random cotangent) and on torch
tensors (``.backward()``), so every case that can be cut into blocks is.
"""

from __future__ import annotations

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss._accel import blocks as _blocks
from helpers import check_against_torch, loss_test_module

torch = pytest.importorskip("torch")
import array_api_compat.torch as torch_xp  # noqa: E402

ROWS = sorted(name for name, spec in anyloss.losses().items() if spec.accel.rows is not None and spec.accel.blocks)


CASES = [(name, c) for name in ROWS for c in loss_test_module(name).CASES if "none" not in c.id]


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_blocks, "BLOCK", 3)
    monkeypatch.setattr(_blocks, "MIN_SIZE", 0)
    calls = []
    run = _blocks.run
    monkeypatch.setattr(_blocks, "run", lambda *a, **k: calls.append(a[0].name) or run(*a, **k))
    return calls


def test_losses_declare_rows():
    # The losses whose row i depends on row i only; a loss dropped from this
    # list by mistake would silently lose its fast path.
    assert {
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy_with_logits",
        "poisson_nll_loss",
        "gaussian_nll_loss",
        "kl_div",
        "triplet_margin_loss",
        "cosine_embedding_loss",
        "multi_margin_loss",
        "multilabel_margin_loss",
        "cross_entropy",
    } <= set(ROWS)


@pytest.mark.parametrize("xp", [np_xp, torch_xp], ids=["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_blocks_match_torch(name, case, xp, dtype, small_blocks):
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    check_against_torch(name, args, kwargs, xp, grads=case.grads, tol=case.tol)


def test_blocks_are_used(small_blocks):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    value, g = anyloss.value_and_grad(F.smooth_l1_loss)(x, y)
    assert small_blocks == ["smooth_l1_loss"]
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y)
    torch.nn.functional.smooth_l1_loss(xt, yt).backward()
    torch.testing.assert_close(torch.from_numpy(g), xt.grad)
    torch.testing.assert_close(torch.from_numpy(np.asarray(value)), torch.nn.functional.smooth_l1_loss(xt, yt))


def test_only_wanted_gradients_are_computed(small_blocks, monkeypatch):
    # value_and_grad of the input only: the target's cotangent is never built.
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    seen = []
    run = _blocks.run
    monkeypatch.setattr(
        _blocks,
        "run",
        lambda spec, xp, arrays, red, opts, computed, wanted: (
            seen.append(wanted) or run(spec, xp, arrays, red, opts, computed, wanted)
        ),
    )
    anyloss.value_and_grad(F.mse_loss)(x, y)
    anyloss.value_and_grad(F.mse_loss, argnums=1)(x, y)
    F.mse_loss(x, y)
    assert seen == [(True, False, False), (False, True, False), (False, False, False)]


def test_pullback_called_twice_gives_fresh_arrays(small_blocks):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    _, pullback = anyloss.vjp(F.mse_loss, x, y)
    g1 = pullback(np.asarray(1.0))
    g1 *= 0
    g2 = pullback(np.asarray(2.0))
    np.testing.assert_allclose(g2, 2 * anyloss.grad(F.mse_loss)(x, y))


def test_torch_retain_graph_backward_twice(small_blocks):
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(7, 5, dtype=torch.float64)
    with anyloss.configure(native=False):  # anyloss's own code, by blocks, on tensors
        loss = F.huber_loss(x, y)
    assert small_blocks == ["huber_loss"]
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward(retain_graph=True)
    torch.testing.assert_close(x.grad, 2 * first)
    loss.backward(torch.tensor(3.0, dtype=torch.float64))
    torch.testing.assert_close(x.grad, 5 * first)


def test_data_dependent_divisor_falls_back(small_blocks):
    # A weighted l1_loss divides by the total weight: no blocks, same numbers.
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((7, 5)), rng.standard_normal((7, 5)), rng.uniform(size=(7, 5))
    check_against_torch("l1_loss", (x, y), {"weight": w}, np_xp)


def test_broadcast_first_array_is_not_cut(small_blocks):
    # input (1, 5) against target (7, 5): the batch is the target's; no blocks.
    rng = np.random.default_rng(0)
    check_against_torch("mse_loss", (rng.standard_normal((1, 5)), rng.standard_normal((7, 5))), {}, np_xp)
    assert small_blocks == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_select_is_numpys_where_bit_for_bit(dtype):
    # _xp.where's bitwise select on NumPy (the path of every block without numba):
    # every bit pattern of a and b (NaN payloads, infinities, signed zeros), a random
    # mask, against np.where itself; broadcasting operands and a 0-d condition too.
    from anyloss._xp import where

    rng = np.random.default_rng(0)
    bits = np.dtype(dtype).itemsize * 8
    a, b = (rng.integers(0, 2**bits, 4099, dtype=f"u{bits // 8}").view(dtype) for _ in range(2))
    a[:6] = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0]
    b[:6] = [-0.0, 0.0, np.nan, 1.0, -np.inf, np.nan]
    cond = rng.random(4099) < 0.5
    got = where(np_xp, cond, a, b)
    assert got.dtype == a.dtype and np.array_equal(
        got.view(f"u{bits // 8}"), np.where(cond, a, b).view(f"u{bits // 8}")
    )
    assert not np.shares_memory(got, a) and not np.shares_memory(got, b)
    for args in ((cond, a, np.zeros((), dtype)), (cond[:7, None], a[:5], b[:7, None]), (np.asarray(True), a[:1], b)):
        expected = np.where(*args)
        assert np.array_equal(where(np_xp, *args).view(f"u{bits // 8}"), expected.view(f"u{bits // 8}"))
