"""The compiled row kernels (_accel/rows.py, numba), generated from each
row-wise loss's own fwd/bwd traced on one row (_accel/trace.py): every loss
with row hints reruns its own conformance cases with the kernels applying at
any size, against PyTorch; and the losses the kernels cover give the Array API
path's numbers on (N, C) data with infinities, NaN and every option."""

from __future__ import annotations

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss import _config
from anyloss._accel import blocks as _blocks
from anyloss._accel import rows as _rows
from helpers import check_against_torch, loss_test_module, record_runs

pytest.importorskip("numba")
torch = pytest.importorskip("torch")

# The elementwise losses have row hints too, but their own kernels come first (test_kernels.py).
ROWS = sorted(
    name for name, spec in anyloss.losses().items() if spec.accel.rows is not None and not spec.accel.elementwise
)


def _runs_by_rows(case):
    """Whether the case's call is one the row kernels take: (N, C) with N != C."""
    args, kwargs = case.make(np.random.default_rng(0), np.dtype("float32"))
    first = np.asarray(args[0])
    return first.ndim == 2 and first.dtype.kind == "f" and 2 <= min(first.shape) and first.shape[0] != first.shape[1]


CASES = [(name, c) for name in ROWS for c in loss_test_module(name).CASES if "none" not in c.id and _runs_by_rows(c)]


@pytest.fixture
def kernel(monkeypatch):
    return record_runs(monkeypatch, _rows)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_row_kernel_matches_torch(name, case, dtype, kernel):
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    check_against_torch(name, args, kwargs, np_xp, grads=case.grads, tol=case.tol)


def _data(rng, n=40, c=13, special=True):
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    if special:
        x[0, 2] = np.inf  # a row holding +inf: NaN in the softmax losses
        x[1, :] = -np.inf
        x[1, 3] = 0.0
        x[2, 5] = np.nan
        x[3, :] = 1e30  # huge logits: nothing overflows
    return x


def _targets(rng, n, c, ignore=True):
    t = rng.integers(0, c, n)
    if ignore:
        t[::7] = -100
    return t


W = np.random.default_rng(5).uniform(0.2, 2.0, 13).astype(np.float32)
CALLS = {
    "cross_entropy": lambda x, t, x2, x3, y: F.cross_entropy(x, t),
    "cross_entropy weight ls sum": lambda x, t, x2, x3, y: F.cross_entropy(
        x, t, weight=W, label_smoothing=0.2, reduction="sum"
    ),
    "cross_entropy ls": lambda x, t, x2, x3, y: F.cross_entropy(x, t, label_smoothing=0.1),
    "cross_entropy weight": lambda x, t, x2, x3, y: F.cross_entropy(x, t, weight=W),
    "cross_entropy ignore_index 3": lambda x, t, x2, x3, y: F.cross_entropy(x, np.abs(t) % 13, ignore_index=3),
    "nll_loss": lambda x, t, x2, x3, y: F.nll_loss(x, t),
    "nll_loss weight sum": lambda x, t, x2, x3, y: F.nll_loss(x, t, weight=W, reduction="sum"),
    "multi_margin_loss": lambda x, t, x2, x3, y: F.multi_margin_loss(x, np.abs(t) % 13),
    "multi_margin_loss p=2 weight margin": lambda x, t, x2, x3, y: F.multi_margin_loss(
        x, np.abs(t) % 13, p=2, weight=W, margin=0.7
    ),
    "triplet_margin_loss": lambda x, t, x2, x3, y: F.triplet_margin_loss(x, x2, x3),
    "triplet_margin_loss p=1 swap": lambda x, t, x2, x3, y: F.triplet_margin_loss(x, x2, x3, p=1.0, swap=True),
    "cosine_embedding_loss": lambda x, t, x2, x3, y: F.cosine_embedding_loss(x, x2, y, margin=0.1),
    "multilabel_soft_margin_loss": lambda x, t, x2, x3, y: F.multilabel_soft_margin_loss(
        x, (x2 > 0).astype(np.float32), weight=W
    ),
    "gaussian_nll_loss": lambda x, t, x2, x3, y: F.gaussian_nll_loss(x, x2, np.abs(x3) + 0.1),
    "kl_div batchmean": lambda x, t, x2, x3, y: F.kl_div(x, np.abs(x2) / 10, reduction="batchmean"),
}


@pytest.mark.parametrize("special", [False, True], ids=["finite", "special values"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_row_kernel_runs_and_agrees_with_the_array_api_path(call, special, kernel, monkeypatch):
    rng = np.random.default_rng(2)
    x = _data(rng, special=special and not call.startswith(("triplet", "cosine", "multilabel", "gaussian", "kl")))
    x2, x3 = _data(rng, special=False), _data(rng, special=False)
    t, y = _targets(rng, 40, 13), np.where(rng.random(40) > 0.5, 1, -1)
    fn = CALLS[call]
    value, grad = anyloss.value_and_grad(lambda a: fn(a, t, x2, x3, y))(x)
    assert kernel, "the row kernel did not run"
    monkeypatch.setattr(_config, "compiled", False)
    monkeypatch.setattr(_blocks, "MIN_SIZE", 1 << 40)
    ref, rgrad = anyloss.value_and_grad(lambda a: fn(a, t, x2, x3, y))(x)
    assert len(kernel) == 1
    assert value.dtype == ref.dtype and grad.dtype == rgrad.dtype
    np.testing.assert_allclose(value, ref, rtol=2e-6, equal_nan=True)
    np.testing.assert_allclose(grad, rgrad, rtol=2e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(rgrad))


def test_row_kernel_against_torch_on_large_rows():
    """The default configuration (no lowered minimum size): cross entropy at
    (2048, 1000) with smoothing and weights runs the kernel and is PyTorch's."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2048, 1000)) * 4).astype(np.float32)
    t = rng.integers(0, 1000, 2048)
    t[::9] = -100
    w = rng.uniform(0.5, 1.5, 1000).astype(np.float32)
    value, grad = anyloss.value_and_grad(lambda a: F.cross_entropy(a, t, weight=w, label_smoothing=0.1))(x)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(t), weight=torch.tensor(w), label_smoothing=0.1)
    ref.backward()
    torch.testing.assert_close(torch.tensor(np.asarray(value)), ref.detach())
    torch.testing.assert_close(torch.tensor(grad), xt.grad)


def test_an_empty_divisor_takes_the_plain_path(kernel):
    """Every target ignored: 'mean' is 0/0 = NaN as in PyTorch, by the Array API path."""
    x = _data(np.random.default_rng(0), special=False)
    value = F.cross_entropy(x, np.full(40, -100))
    assert np.isnan(value) and kernel == []
