"""anyloss on NumPy: every loss's worked example, its value and its gradient,
beside PyTorch's value when PyTorch is installed.

    python examples/quickstart.py
"""

from __future__ import annotations

import warnings

import numpy as np

import anyloss
from anyloss._doc import example_gradients

try:
    import torch
except ImportError:  # the demo runs on NumPy alone
    torch = None


def torch_value(name, args, kwargs):
    conv = lambda a: torch.from_numpy(np.asarray(a)) if isinstance(a, np.ndarray) else a  # noqa: E731
    out = getattr(torch.nn.functional, name)(*map(conv, args), **{k: conv(v) for k, v in kwargs.items()})
    return out.numpy()


def main():
    with np.printoptions(precision=4, suppress=True):
        show_all()


def show_all():
    print(
        f"anyloss {anyloss.__version__} on NumPy {np.__version__}"
        + (f", PyTorch {torch.__version__} alongside" if torch else " (install torch to compare)")
    )
    for name, spec in anyloss.losses().items():
        if spec.example is None:
            continue
        args, kwargs = spec.example(np)
        # Differentiate every floating array argument the loss has a gradient for.
        value, grads = example_gradients(spec, args, kwargs)
        line = f"{name:34s} anyloss {float(value):.4f}"
        if torch is not None and spec.catalogue == "torch":  # extras have no torch.nn.functional twin
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                line += f"   torch {float(torch_value(name, args, kwargs)):.4f}"
        print(line)
        for argname, g in grads.items():
            head = f"    d/d{argname:<14s}"
            print(head + np.array2string(g, prefix=head))


if __name__ == "__main__":
    main()
