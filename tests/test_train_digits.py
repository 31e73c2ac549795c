"""examples/train_digits.py: it trains, it gives the same numbers on every backend, and
each of its steps is PyTorch's own step (torch.nn + autograd + torch.optim.SGD)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import anyloss
import anyloss.functional as F

pytest.importorskip("sklearn")

_PATH = Path(__file__).parents[1] / "examples" / "train_digits.py"
_spec = importlib.util.spec_from_file_location("train_digits", _PATH)
td = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(td)


def to_numpy(a):
    if hasattr(a, "detach"):  # torch
        return a.detach().cpu().numpy()
    try:
        return np.array(a)
    except (TypeError, RuntimeError, ValueError):  # array-api-strict refuses __array__ in 2024+ mode
        return np.asarray(a.tolist() if hasattr(a, "tolist") else a._array)


@pytest.fixture(scope="module")
def numpy_run():
    """One epoch on NumPy, the reference for the other backends."""
    return td.main(["--epochs", "1", "--log-interval", "5"])


def test_main_prints_falling_loss_and_accuracy(capsys):
    result = td.main(["--epochs", "2", "--log-interval", "5"])
    out = capsys.readouterr().out
    logged = [float(v) for v in re.findall(r"Train Epoch: \d+ \[\d+/\d+ \(\d+%\)\]\tLoss: ([0-9.]+)", out)]
    assert len(logged) == 10  # 23 batches of 64 per epoch, logged every 5
    assert logged[-1] < logged[0] / 3
    epochs = [float(v) for v in re.findall(r"Epoch \d+: average training loss ([0-9.]+)", out)]
    assert epochs == pytest.approx(result["epoch_losses"]) and epochs[1] < epochs[0]
    m = re.search(r"Test set: Average loss: ([0-9.]+), Accuracy: (\d+)/359 \((\d+)%\)", out)
    assert m is not None, out
    assert float(m.group(1)) == pytest.approx(result["test_loss"], abs=1e-4)
    assert int(m.group(2)) == round(result["accuracy"] * 359)


def test_default_run_reaches_90_percent(capsys):
    result = td.main([])
    assert result["accuracy"] > 0.9
    assert result["epoch_losses"][-1] < result["epoch_losses"][0] / 10


def test_test_loss_is_the_mean_over_the_test_set(numpy_run):
    """reduction='sum' per batch divided by the test-set size == the mean over the whole set."""
    _, _, x_test, y_test = td.load_digits(seed=0)
    model = td.Net(np, np.float64)
    model.params.update(numpy_run["params"])
    mean = float(F.cross_entropy(model(x_test), y_test))
    assert numpy_run["test_loss"] == pytest.approx(mean, rel=1e-12)
    assert 0 < numpy_run["test_loss"] < 2.0


@pytest.mark.parametrize("backend", ["torch", "jax", "array_api_strict"])
def test_same_losses_step_for_step_on_every_backend(backend, numpy_run):
    pytest.importorskip(backend)
    result = td.main(["--backend", backend, "--epochs", "1", "--log-interval", "5"])
    np.testing.assert_allclose(result["train_losses"], numpy_run["train_losses"], rtol=1e-12, atol=0)
    assert result["test_loss"] == pytest.approx(numpy_run["test_loss"], rel=1e-12)
    assert result["accuracy"] == numpy_run["accuracy"]
    xp = td.namespace(backend)
    for name, p in result["params"].items():
        assert type(p) is type(xp.asarray(0.0)) and p.dtype == xp.float64  # the backend's own arrays throughout
        np.testing.assert_allclose(to_numpy(p), numpy_run["params"][name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_each_step_is_pytorchs_step(backend):
    """The script's train_step (anyloss's cross_entropy gradient, hand backprop, its SGD)
    against torch.nn.Linear/ReLU, F.cross_entropy, .backward() and torch.optim.SGD."""
    torch = pytest.importorskip("torch")
    pytest.importorskip(backend)
    xp = td.namespace(backend)
    lr, momentum, steps = 0.1, 0.9, 4
    model = td.Net(xp, xp.float64, seed=3)
    optimizer = td.SGD(model.params, lr=lr, momentum=momentum)

    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()
    with torch.no_grad():  # the same initial parameters; torch.nn.Linear stores W as (out, in)
        for i, layer in ((1, net[0]), (2, net[2])):
            layer.weight.copy_(torch.from_numpy(to_numpy(model.params[f"W{i}"]).T.copy()))
            layer.bias.copy_(torch.from_numpy(to_numpy(model.params[f"b{i}"])))
    torch_opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    torch_params = {
        "W1": lambda: net[0].weight.T,
        "b1": lambda: net[0].bias,
        "W2": lambda: net[2].weight.T,
        "b2": lambda: net[2].bias,
    }

    x_train, y_train, _, _ = td.load_digits(seed=0)
    order = np.random.default_rng(0).permutation(len(y_train))
    data_x, data_y = xp.asarray(x_train, dtype=xp.float64), xp.asarray(y_train)
    for step, (data, target) in enumerate(td.batches(data_x, data_y, 32, order)):
        if step == steps:
            break
        # The gradient the step will use, from anyloss, before the step changes the parameters.
        _, grad_output = anyloss.value_and_grad(F.cross_entropy)(model(data), target)
        grads = model.backward(grad_output)
        loss = td.train_step(model, optimizer, data, target)

        torch_opt.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(
            net(torch.from_numpy(to_numpy(data))), torch.from_numpy(to_numpy(target))
        )
        torch_loss.backward()
        torch_grads = {
            "W1": net[0].weight.grad.T,
            "b1": net[0].bias.grad,
            "W2": net[2].weight.grad.T,
            "b2": net[2].bias.grad,
        }
        torch_opt.step()

        torch.testing.assert_close(torch.tensor(float(loss), dtype=torch.float64), torch_loss.detach())
        for name in model.params:
            torch.testing.assert_close(torch.from_numpy(to_numpy(grads[name])), torch_grads[name], msg=name)
            torch.testing.assert_close(
                torch.from_numpy(to_numpy(model.params[name])), torch_params[name]().detach(), msg=name
            )
