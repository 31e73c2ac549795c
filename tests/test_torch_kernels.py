"""On PyTorch tensors, built-in losses run anyloss's checks and then PyTorch's
own kernel (``anyloss._call.torch_kernel``): every conformance case and every
error case of every such loss, with the hand-over on."""

from __future__ import annotations

import numpy as np
import pytest

import anyloss
import anyloss._call as call
import anyloss.functional as F
from helpers import check_against_torch, check_error, loss_test_module

torch = pytest.importorskip("torch")
import array_api_compat.torch as torch_xp  # noqa: E402

KERNEL = sorted(name for name in F.__all__ if hasattr(getattr(F, name), "__wrapped__"))


MODULES = {name: loss_test_module(name) for name in KERNEL}
CASES = [(name, c) for name in KERNEL for c in MODULES[name].CASES]
ERRORS = [(name, e) for name in KERNEL for e in getattr(MODULES[name], "ERRORS", [])]


@pytest.fixture
def kernels(monkeypatch):
    monkeypatch.setattr(call, "TORCH_KERNELS", True)
    ran = []
    run = call._run_torch_kernel
    monkeypatch.setattr(call, "_run_torch_kernel", lambda name, *a: ran.append(name) or run(name, *a))
    return ran


def test_every_torch_namesake_hands_over():
    # All of torch.nn.functional's losses but the one that takes a user's
    # distance function (written for anyloss, it runs anyloss's own code).
    expected = {n for n in F.__all__ if hasattr(torch.nn.functional, n)} - {"triplet_margin_with_distance_loss"}
    assert set(KERNEL) == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_cases_match_torch(name, case, dtype, kernels):
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    check_against_torch(name, args, kwargs, torch_xp, grads=case.grads, tol=case.tol)


@pytest.mark.parametrize("name,error", ERRORS, ids=[f"{n}-{e.id}" for n, e in ERRORS])
def test_errors_are_anylosss(name, error, kernels):
    args, kwargs = error.make(np.random.default_rng(0), np.dtype("float64"))
    check_error(name, args, kwargs, torch_xp, error.exc, error.match, error.torch_raises)
    assert kernels == []  # refused before PyTorch is asked


def test_the_kernel_runs(kernels):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([0, 2, 1, 1]), label_smoothing=0.1)
    loss.backward()
    assert kernels == ["cross_entropy"] and "NllLoss" not in type(loss.grad_fn).__name__
    assert x.grad is not None


def test_gradient_functions_run_anylosss_code(kernels):
    # anyloss.value_and_grad on torch tensors differentiates anyloss's own VJP.
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    value, g = anyloss.value_and_grad(F.mse_loss)(x, y)
    assert kernels == []
    torch.testing.assert_close(g, 2 * (x - y) / x.numel())


def test_off_switch_runs_anylosss_code(kernels, monkeypatch):
    monkeypatch.setattr(call, "TORCH_KERNELS", False)
    F.huber_loss(torch.randn(3), torch.randn(3))
    assert kernels == []
