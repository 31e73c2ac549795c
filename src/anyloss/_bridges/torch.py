"""PyTorch bridge: one ``torch.autograd.Function`` for every loss.

It runs the loss's own forward and analytic gradient on the tensors
themselves (no NumPy round trip), so device and dtype are kept and
``loss.backward()`` fills ``.grad`` as ``torch.nn`` would.
"""

from __future__ import annotations

import torch

from .._call import backward, forward


class _LossFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, xp, reduction, options, *arrays):
        value, rec = forward(spec, xp, arrays, reduction, options, ctx.needs_input_grad[4:])
        ctx.rec = rec
        # A loss that returned one of its inputs unchanged must still give autograd a new tensor.
        return value.clone() if any(value is a for a in arrays) else value

    @staticmethod
    def backward(ctx, g):
        rec = ctx.rec  # kept: backward may run again with retain_graph=True
        needed = ctx.needs_input_grad[4:]
        # share: autograd copies a gradient it cannot take over.
        cts = backward(rec, g, share=True) if any(needed) else (None,) * len(rec.arrays)
        return (None, None, None, None, *(ct if need else None for ct, need in zip(cts, needed)))


def wants_grad(arrays) -> bool:
    return torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in arrays)


def apply(spec, xp, arrays, reduction, options):
    return _LossFunction.apply(spec, xp, reduction, options, *arrays)
