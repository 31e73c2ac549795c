"""anyloss.register: a user's loss gets reductions, checks, every backend and gradients.

The oracle for a user's loss is the same formula written in PyTorch (autograd
for its gradient) and central finite differences on NumPy."""

from __future__ import annotations

import math

import array_api_strict
import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from helpers import assert_close, finite_difference_grad, no_compute, to_numpy, to_xp, torch, value_and_pullback

REDUCTIONS = ("none", "mean", "sum")


def _log_cosh(xp, input, target, weight=None, *, delta=1.0):
    """log-cosh regression loss: delta * log(cosh((x - y) / delta)), weighted."""
    d = (input - target) / delta
    out = delta * (xp.abs(d) + xp.log1p(xp.exp(-2 * xp.abs(d))) - math.log(2))
    return out if weight is None else out * weight


def _log_cosh_grad(xp, g, input, target, weight=None, *, delta=1.0):
    t = g * xp.tanh((input - target) / delta)
    if weight is not None:
        t = t * weight
    return t, -t


def _torch_log_cosh(x, y, w, delta, reduction):
    out = delta * torch.log(torch.cosh((x - y) / delta))
    out = out if w is None else out * w
    return {"none": out, "mean": out.mean(), "sum": out.sum()}[reduction]


@pytest.fixture
def log_cosh():
    loss = anyloss.register(
        _log_cosh, name="test_log_cosh", gradient=_log_cosh_grad, differentiable=("input", "target")
    )
    yield loss
    anyloss.unregister("test_log_cosh")


@pytest.fixture
def quartic():
    @anyloss.register
    def test_quartic(xp, input, target):
        """(x - y)^4, with no analytic gradient."""
        return (input - target) ** 4

    yield test_quartic
    anyloss.unregister("test_quartic")


def _data(shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-3, 3, shape), rng.uniform(-3, 3, shape), rng.uniform(0, 2, shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_gradients_match_torch(log_cosh, xp, reduction, weighted):
    x, y, w = _data()
    w = w if weighted else None
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    want = _torch_log_cosh(tx, ty, None if w is None else torch.tensor(w), 2.0, reduction)
    ct = (
        torch.ones_like(want)
        if want.ndim == 0
        else torch.linspace(-1, 1, want.numel(), dtype=want.dtype).reshape(want.shape)
    )
    want.backward(ct)

    args = [to_xp(xp, a) for a in (x, y, w) if a is not None]
    with no_compute(xp):  # backend's own autodiff (torch .backward(), jax.vjp), else anyloss.vjp
        out, pullback = value_and_pullback(xp, lambda *a: log_cosh(*a, reduction=reduction, delta=2.0), args, [0, 1])
    assert_close(out, want.detach(), "value")
    gx, gy = pullback(xp.asarray(ct.numpy()))
    assert_close(gx, tx.grad, "gradient of input")
    assert_close(gy, ty.grad, "gradient of target")


def test_gradient_matches_finite_differences(log_cosh):
    x, y, w = _data((3, 5), seed=1)
    _, (gx, gy) = anyloss.value_and_grad(log_cosh, argnums=(0, 1))(x, y, w, delta=0.7)
    np.testing.assert_allclose(
        gx, finite_difference_grad(lambda a: log_cosh(a, y, w, delta=0.7), x), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        gy, finite_difference_grad(lambda b: log_cosh(x, b, w, delta=0.7), y), rtol=1e-6, atol=1e-9
    )


def test_torch_backward_and_broadcasting(log_cosh):
    # A target broadcast against the input: its gradient is summed back to its shape.
    x, y, _ = _data((4, 3))
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y[:1], requires_grad=True)
    log_cosh(tx, ty, reduction="sum").backward()
    rx, ry = torch.tensor(x, requires_grad=True), torch.tensor(y[:1], requires_grad=True)
    _torch_log_cosh(rx, ry, None, 1.0, "sum").backward()
    torch.testing.assert_close(tx.grad, rx.grad)
    torch.testing.assert_close(ty.grad, ry.grad)


def test_without_gradient_autodiff_backends_still_differentiate(quartic):
    x, y, _ = _data()
    tx = torch.tensor(x, requires_grad=True)
    quartic(tx, torch.tensor(y)).backward()
    np.testing.assert_allclose(tx.grad.numpy(), 4 * (x - y) ** 3 / x.size)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    g = jax.grad(lambda a: quartic(a, jax.numpy.asarray(y)))(jax.numpy.asarray(x))
    np.testing.assert_allclose(np.asarray(g), 4 * (x - y) ** 3 / x.size)
    # NumPy has no autodiff: a clear error that says where it can be differentiated.
    with pytest.raises(ValueError, match="no analytic gradient.*jax.grad"):
        anyloss.value_and_grad(quartic)(x, y)
    np.testing.assert_allclose(quartic(x, y, reduction="sum"), np.sum((x - y) ** 4))


def test_registry_listing_and_replacement(log_cosh):
    assert anyloss.losses()["test_log_cosh"].functional is log_cosh
    assert anyloss.losses()["test_log_cosh"].differentiable == ("input", "target")
    again = anyloss.register(_log_cosh, name="test_log_cosh")  # a notebook cell run twice
    assert anyloss.losses()["test_log_cosh"].functional is again
    with pytest.raises(ValueError, match="`name`"):
        anyloss.register(_log_cosh, name="mse_loss")  # a built-in's name
    assert anyloss.losses()["mse_loss"].functional is F.mse_loss
    with pytest.raises(ValueError, match="`name`"):
        anyloss.unregister("mse_loss")


def test_bad_calls(log_cosh):
    x, y, _ = _data()
    with pytest.raises(ValueError, match="`reduction`"):
        log_cosh(x, y, reduction="avg")
    with pytest.raises(TypeError, match="`bogus`"):
        log_cosh(x, y, bogus=1.0)
    with pytest.raises(ValueError, match="`target`"):
        log_cosh(x, np.ones(5))
    with pytest.raises(TypeError, match="`target`"):
        log_cosh(torch.tensor(x), array_api_strict.asarray(y))  # two array libraries (NumPy would become torch)
    with pytest.raises(TypeError, match="`target`"):
        log_cosh(x)
    with pytest.raises(TypeError, match="`forward`"):
        anyloss.register(lambda: 0.0, name="test_bad")
    with pytest.raises(ValueError, match="`differentiable`"):
        anyloss.register(_log_cosh, name="test_bad", differentiable=("nope",))


def test_wrong_number_of_cotangents():
    loss = anyloss.register(
        _log_cosh, name="test_bad_grad", gradient=lambda xp, g, x, y, w=None, **o: (g, g, g), differentiable=("input",)
    )
    try:
        with pytest.raises(ValueError, match="one cotangent per differentiable argument"):
            anyloss.value_and_grad(loss)(*_data()[:2])
    finally:
        anyloss.unregister("test_bad_grad")


def test_dask_stays_lazy(log_cosh):
    da = pytest.importorskip("dask.array")
    x, y, _ = _data((10, 3))
    dx, dy = da.from_array(x, chunks=(3, 3)), da.from_array(y, chunks=(3, 3))
    with no_compute(da):
        value, g = anyloss.value_and_grad(log_cosh)(dx, dy)
    want, gw = anyloss.value_and_grad(log_cosh)(x, y)
    np.testing.assert_allclose(to_numpy(value), want)
    np.testing.assert_allclose(to_numpy(g), gw)
