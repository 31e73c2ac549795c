"""value_and_grad, grad and vjp: the gradient API and its errors (on mse_loss;
each loss's own gradients are checked against torch in tests/losses/)."""

from __future__ import annotations

import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from helpers import to_torch, torch


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)), rng.standard_normal((3, 4))


def _torch_grads(x, y, **kw):
    tx, ty = to_torch(x).requires_grad_(), to_torch(y).requires_grad_()
    out = torch.nn.functional.mse_loss(tx, ty, **kw)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), tx.grad.numpy(), ty.grad.numpy()


def test_value_and_grad_single_and_tuple(xy):
    x, y = xy
    t_val, t_gx, t_gy = _torch_grads(x, y)
    val, gx = anyloss.value_and_grad(F.mse_loss)(x, y)
    np.testing.assert_allclose(val, t_val)
    np.testing.assert_allclose(gx, t_gx)
    val, (gx, gy) = anyloss.value_and_grad(F.mse_loss, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gy, t_gy)
    (gy,) = anyloss.grad(F.mse_loss, argnums=(1,))(x, y)
    np.testing.assert_allclose(gy, t_gy)
    gy = anyloss.grad(F.mse_loss, argnums=-1)(x, y)
    np.testing.assert_allclose(gy, t_gy)


def test_grad_of_class_instance_and_closure(xy):
    x, y = xy
    _, t_gx, _ = _torch_grads(x, y, reduction="sum")
    np.testing.assert_allclose(anyloss.grad(anyloss.MSELoss(reduction="sum"))(x, y), t_gx)
    np.testing.assert_allclose(anyloss.grad(lambda a: F.mse_loss(a, y, reduction="sum"))(x), t_gx)


def test_vjp_with_cotangent(xy):
    x, y = xy
    ct = np.random.default_rng(1).standard_normal(x.shape)
    out, pullback = anyloss.vjp(F.mse_loss, x, y, reduction="none")
    tx = to_torch(x).requires_grad_()
    t_out = torch.nn.functional.mse_loss(tx, to_torch(y), reduction="none")
    t_out.backward(to_torch(ct))
    np.testing.assert_allclose(out, t_out.detach().numpy())
    np.testing.assert_allclose(pullback(ct), tx.grad.numpy())
    with pytest.raises(ValueError, match="`cotangent`"):
        pullback(np.ones(3))


def test_same_array_twice_sums_gradients(xy):
    x, _ = xy
    # d/dx (x - x)^2 = 0: both uses of x contribute.
    np.testing.assert_allclose(anyloss.grad(lambda a: F.mse_loss(a, a))(x), np.zeros_like(x))


def test_errors(xy):
    x, y = xy
    with pytest.raises(ValueError, match="`target`.*dtype int64"):
        anyloss.grad(F.mse_loss, argnums=1)(x, np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="scalar"):
        anyloss.value_and_grad(F.mse_loss)(x, y, reduction="none")
    with pytest.raises(ValueError, match="unchanged"):
        anyloss.grad(lambda a: F.mse_loss(2 * a, y))(x)
    with pytest.raises(ValueError, match="unchanged"):
        anyloss.grad(lambda a: 2 * F.mse_loss(a, y))(x)
    with pytest.raises(ValueError, match="exactly one"):
        anyloss.grad(lambda a: F.mse_loss(a, y) + F.mse_loss(a, y))(x)
    with pytest.raises(ValueError, match="computed none"):
        anyloss.grad(lambda a: a.sum())(x)
    with pytest.raises(ValueError, match="`argnums`"):
        anyloss.grad(F.mse_loss, argnums=2)(x, y)
    with pytest.raises(TypeError, match="`argnums`"):
        anyloss.grad(F.mse_loss, argnums="0")(x, y)
    with pytest.raises(ValueError, match="size_average"):
        anyloss.grad(F.mse_loss, argnums=2)(x, y, None)


def test_tape_is_cleared_after_error(xy):
    x, y = xy
    with pytest.raises(ValueError):
        anyloss.grad(lambda a: F.mse_loss(a, y) + F.mse_loss(a, y))(x)
    # A plain call afterwards is not recorded anywhere and works.
    assert F.mse_loss(x, y).shape == ()
