"""Native delegation on PyTorch tensors (``anyloss.configure(native=...)``).

After anyloss's checks and warnings, a built-in loss on tensors is handed to
``torch.nn.functional`` (``LossSpec.native``, chosen in ``_call.apply``). The
per-loss suites run every case on both paths against PyTorch (the ``torch`` and
``torch-own`` backends of the ``xp`` fixture); here the two paths are compared
with each other -- values and gradients of every case -- and the switch itself
is tested.
"""

from __future__ import annotations

import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss._bridges import torch as torch_bridge
from helpers import _bind, _call_with, _get, check_error, loss_test_module, spy_calls

torch = pytest.importorskip("torch")

NATIVE = sorted(
    name for name, spec in anyloss.losses().items() if spec.native is not None and hasattr(torch.nn.functional, name)
)
MODULES = {name: loss_test_module(name) for name in NATIVE}
CASES = [(name, c) for name in NATIVE for c in MODULES[name].CASES]
ERRORS = [(name, e) for name in NATIVE for e in getattr(MODULES[name], "ERRORS", [])]


@pytest.fixture
def handed(monkeypatch):
    """The names of the losses handed to torch.nn.functional, in call order."""
    return spy_calls(monkeypatch, torch_bridge, "native", declined=NotImplemented)


def test_every_torch_loss_has_a_native_twin():
    expected = {n for n in F.__all__ if hasattr(torch.nn.functional, n)}
    assert set(NATIVE) == expected


def _run(name, args, kwargs, *, native, grads=True):
    """Value and gradients (of every floating array) through torch autograd."""
    slots = _bind(name, args, kwargs)
    differentiable = anyloss.losses()[name].differentiable
    tensors = []
    for s, pname in slots:
        a = _get(args, kwargs, s)
        t = torch.from_numpy(np.array(a, copy=True))
        tensors.append(t.requires_grad_(True) if grads and t.is_floating_point() and pname in differentiable else t)
    with anyloss.configure(native=native), np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _call_with(getattr(F, name), args, kwargs, slots, tensors)
    wanted = [t for t in tensors if t.requires_grad]
    grads = []
    if out.requires_grad and wanted:
        ct = (
            torch.ones_like(out)
            if out.ndim == 0
            else torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        )
        grads = torch.autograd.grad(out, wanted, ct, allow_unused=True)
    return out.detach(), grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_native_matches_anylosss_own_code(name, case, dtype, handed):
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    own, own_grads = _run(name, args, kwargs, native=False, grads=case.grads)
    assert handed == []
    nat, nat_grads = _run(name, args, kwargs, native=True, grads=case.grads)
    assert len(handed) <= 1  # none where the call has no twin (kl_div with legacy arguments)
    tol = case.tol or {}
    torch.testing.assert_close(nat, own, equal_nan=True, **tol)
    if case.grads:
        assert len(nat_grads) == len(own_grads)
        for a, b in zip(nat_grads, own_grads):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, equal_nan=True, **tol)


@pytest.mark.parametrize("name,error", ERRORS, ids=[f"{n}-{e.id}" for n, e in ERRORS])
def test_errors_are_anylosss_before_torch_is_asked(name, error, handed):
    import array_api_compat.torch as torch_xp

    args, kwargs = error.make(np.random.default_rng(0), np.dtype("float64"))
    check_error(name, args, kwargs, torch_xp, error.exc, error.match, error.torch_raises)
    assert handed == []


def test_delegation_is_the_default_and_uses_torchs_autograd(handed):
    assert anyloss.configure().current["native"] is True
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([0, 2, 1, 1]), label_smoothing=0.1)
    loss.backward()
    assert handed == ["cross_entropy"] and "LossFunction" not in type(loss.grad_fn).__name__
    assert x.grad is not None


def test_own_code_uses_anylosss_gradient(handed):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    with anyloss.configure(native=False):
        loss = F.cross_entropy(x, torch.tensor([0, 2, 1, 1]))
    assert handed == [] and "LossFunction" in type(loss.grad_fn).__name__
    assert anyloss.configure().current["native"] is True  # restored after the block


def test_configure_sets_and_validates():
    before = anyloss.configure().current
    try:
        anyloss.configure(native=False)
        assert anyloss.configure().current["native"] is False
    finally:
        anyloss.configure(**before)
    with pytest.raises(TypeError, match="`native`"):
        anyloss.configure(native="no")
    with pytest.raises(ValueError, match="`threads`"):
        anyloss.configure(threads=0)


def test_gradient_functions_run_anylosss_code(handed):
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    value, g = anyloss.value_and_grad(F.mse_loss)(x, y)
    assert handed == []
    torch.testing.assert_close(g, 2 * (x - y) / x.numel())
