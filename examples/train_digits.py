"""Train a small classifier with anyloss's gradients, in the shape of PyTorch's MNIST example.

A 64-32-10 multilayer perceptron with ReLU learns scikit-learn's bundled 8x8
digits (``sklearn.datasets.load_digits``, no download). There is no autograd
here: each batch runs the forward pass, ``anyloss.value_and_grad(F.cross_entropy)``
gives the loss and its gradient with respect to the logits (anyloss's analytic
gradient), the model backpropagates that through its two linear layers by hand,
and SGD with momentum (``torch.optim.SGD``'s update) takes a step. The loop is
the one of https://github.com/pytorch/examples/blob/main/mnist/main.py:
``train()`` logs the loss every ``--log-interval`` batches, ``test()`` sums the
per-sample losses with ``reduction='sum'`` and divides by the size of the test
set.

The model and the loop are written against the Array API standard, so the same
code runs on NumPy arrays, PyTorch tensors and JAX arrays, from the same seeded
initialisation and in the same batch order:

    python examples/train_digits.py                      # NumPy, float64
    python examples/train_digits.py --backend torch      # the same numbers on PyTorch tensors
    python examples/train_digits.py --backend jax --dtype float32

Needs ``pip install -e ".[examples]"`` (scikit-learn; torch for ``--backend torch``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from array_api_compat import array_namespace, device

import anyloss
import anyloss.functional as F

BACKENDS = ("numpy", "torch", "jax", "array_api_strict")


def namespace(backend: str):
    """The Array API namespace of ``backend`` (JAX with 64-bit types switched on)."""
    if backend == "numpy":
        from array_api_compat import numpy as xp
    elif backend == "torch":
        from array_api_compat import torch as xp
    elif backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 stays float64, int64 targets stay int64
        import jax.numpy as xp
    elif backend == "array_api_strict":
        import array_api_strict as xp
    else:
        raise ValueError(f"`backend` must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return xp


def load_digits(seed: int = 0, test_fraction: float = 0.2):
    """Digits as NumPy arrays: ``(x_train, y_train, x_test, y_test)``, pixels scaled to [0, 1].

    The split is a seeded permutation, the same on every backend.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = round(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


class Net:
    """``Linear(64, 32) -> ReLU -> Linear(32, 10)``, parameters in ``self.params``.

    Weights are stored ``(in, out)`` so the forward pass is ``x @ W + b``.
    They are drawn as ``torch.nn.Linear`` draws them, U(-1/sqrt(in), 1/sqrt(in)),
    from ``numpy.random.default_rng(seed)`` and then converted to ``xp``.
    """

    def __init__(self, xp, dtype, sizes=(64, 32, 10), seed: int = 1, device=None):
        rng = np.random.default_rng(seed)
        self.params = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            bound = 1.0 / math.sqrt(fan_in)
            for name, shape in ((f"W{i}", (fan_in, fan_out)), (f"b{i}", (fan_out,))):
                self.params[name] = xp.asarray(rng.uniform(-bound, bound, size=shape), dtype=dtype, device=device)
        self._cache = None

    def __call__(self, x):
        """Logits ``(N, 10)``; keeps what ``backward`` needs."""
        p = self.params
        xp = array_namespace(x, p["W1"])
        h = x @ p["W1"] + p["b1"]
        a = xp.where(h > 0, h, xp.zeros_like(h))  # ReLU
        self._cache = (x, h, a)
        return a @ p["W2"] + p["b2"]

    def backward(self, grad_logits):
        """Gradients of the loss with respect to every parameter, from dL/dlogits."""
        p = self.params
        x, h, a = self._cache
        xp = array_namespace(grad_logits, h)
        grad_a = grad_logits @ p["W2"].T
        grad_h = xp.where(h > 0, grad_a, xp.zeros_like(grad_a))  # ReLU passes the gradient where h > 0
        return {
            "W2": a.T @ grad_logits,
            "b2": xp.sum(grad_logits, axis=0),
            "W1": x.T @ grad_h,
            "b1": xp.sum(grad_h, axis=0),
        }


class SGD:
    """``torch.optim.SGD(params, lr, momentum)``'s update: ``buf = momentum * buf + grad; p -= lr * buf``."""

    def __init__(self, params: dict, lr: float, momentum: float = 0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.buf = {}

    def step(self, grads: dict):
        for name, g in grads.items():
            if self.momentum:
                g = g if name not in self.buf else self.momentum * self.buf[name] + g
                self.buf[name] = g
            self.params[name] = self.params[name] - self.lr * g


def train_step(model: Net, optimizer: SGD, data, target):
    """One batch: forward, loss and dL/dlogits from anyloss, backward, update. Returns the loss."""
    output = model(data)
    loss, grad_output = anyloss.value_and_grad(F.cross_entropy)(output, target)
    optimizer.step(model.backward(grad_output))
    return loss


def batches(x, y, batch_size: int, order=None):
    """``(data, target)`` batches of ``x`` and ``y`` in ``order`` (NumPy indices; default: as stored)."""
    xp = array_namespace(x, y)
    n = x.shape[0]
    order = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        idx = xp.asarray(order[start : start + batch_size], device=device(x))
        yield xp.take(x, idx, axis=0), xp.take(y, idx, axis=0)


def train(args, model, optimizer, x_train, y_train, epoch, rng, history):
    n = x_train.shape[0]
    n_batches = math.ceil(n / args.batch_size)
    order = rng.permutation(n)  # a fixed, seeded batch order, the same on every backend
    total = 0.0
    for batch_idx, (data, target) in enumerate(batches(x_train, y_train, args.batch_size, order)):
        loss = float(train_step(model, optimizer, data, target))
        history.append(loss)
        total += loss * data.shape[0]
        if batch_idx % args.log_interval == 0:
            print(
                f"Train Epoch: {epoch} [{batch_idx * args.batch_size}/{n} ({100.0 * batch_idx / n_batches:.0f}%)]\tLoss: {loss:.6f}"
            )
        if args.dry_run:
            return total / data.shape[0]
    return total / n


def test(args, model, x_test, y_test):
    test_loss = 0.0
    correct = 0
    for data, target in batches(x_test, y_test, args.test_batch_size):
        output = model(data)
        xp = array_namespace(output)
        test_loss += float(F.cross_entropy(output, target, reduction="sum"))  # sum up batch loss
        pred = xp.argmax(output, axis=1)  # index of the largest logit
        correct += int(xp.sum(xp.astype(pred == target, xp.int64)))
    n = x_test.shape[0]
    test_loss /= n
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{n} ({100.0 * correct / n:.0f}%)\n")
    return test_loss, correct / n


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a 64-32-10 MLP on scikit-learn's digits with anyloss's cross_entropy gradient."
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numpy", help="array library (default: numpy)")
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="floating dtype of data and parameters (default: float64)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, metavar="N", help="input batch size for training (default: 64)"
    )
    parser.add_argument(
        "--test-batch-size", type=int, default=1000, metavar="N", help="input batch size for testing (default: 1000)"
    )
    parser.add_argument("--epochs", type=int, default=10, metavar="N", help="number of epochs to train (default: 10)")
    parser.add_argument("--lr", type=float, default=0.1, metavar="LR", help="learning rate (default: 0.1)")
    parser.add_argument("--momentum", type=float, default=0.9, metavar="M", help="SGD momentum (default: 0.9)")
    parser.add_argument("--dry-run", action="store_true", help="quickly check a single pass")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument(
        "--log-interval",
        type=int,
        default=10,
        metavar="N",
        help="how many batches to wait before logging training status (default: 10)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Run the example. Returns a dict: ``train_losses`` (one per batch), ``epoch_losses``,
    ``test_loss``, ``accuracy`` and the trained ``params``."""
    args = parse_args(argv)
    xp = namespace(args.backend)
    dtype = getattr(xp, args.dtype)
    x_train, y_train, x_test, y_test = load_digits(seed=0)
    to_x = lambda a: xp.asarray(a, dtype=dtype)  # noqa: E731
    to_y = lambda a: xp.asarray(a, dtype=xp.int64)  # noqa: E731
    x_train, y_train, x_test, y_test = to_x(x_train), to_y(y_train), to_x(x_test), to_y(y_test)

    model = Net(xp, dtype, seed=args.seed)
    optimizer = SGD(model.params, lr=args.lr, momentum=args.momentum)
    rng = np.random.default_rng(args.seed)
    print(
        f"anyloss {anyloss.__version__}: {args.backend} {args.dtype}, "
        f"{x_train.shape[0]} training and {x_test.shape[0]} test digits"
    )

    history, epoch_losses = [], []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_losses.append(train(args, model, optimizer, x_train, y_train, epoch, rng, history))
        print(f"Epoch {epoch}: average training loss {epoch_losses[-1]:.6f}")
        if args.dry_run:
            break
    test_loss, accuracy = test(args, model, x_test, y_test)
    print(f"Trained in {time.perf_counter() - start:.1f} s")
    return {
        "train_losses": history,
        "epoch_losses": epoch_losses,
        "test_loss": test_loss,
        "accuracy": accuracy,
        "params": model.params,
    }


if __name__ == "__main__":
    main()
