"""PyTorch: native delegation, and one ``torch.autograd.Function`` for every loss.

``native`` hands a checked call to ``torch.nn.functional``'s loss of the same
semantics (``LossSpec.native``). ``apply`` runs anyloss's own forward on the
tensors themselves (no NumPy round trip), with the loss's analytic gradient
attached, so device and dtype are kept and ``loss.backward()`` fills ``.grad``
as ``torch.nn`` would.

The Function is written the way PyTorch's transforms want it: a ``forward``
without ``ctx`` and a ``setup_context`` (``torch.func.grad``/``jacrev``),
``generate_vmap_rule`` (``torch.func.vmap``, ``is_grads_batched``), a ``jvp``
(forward mode: ``torch.func.jvp``, ``torch.autograd.forward_ad``), and a
backward that is itself differentiable when asked to be (``create_graph``,
``torch.func.hessian``): it then recomputes the residuals from the saved
inputs, so that second derivatives see how they depend on them.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .._engine import backward, forward
from .._typing import Namespace


def native(spec: Any, arrays: Any, reduction: Any, options: Any, computed: Any) -> Any:
    """The call through ``torch.nn.functional``, or ``NotImplemented``."""
    import torch.nn.functional as F

    if torch.compiler.is_compiling():
        if not spec.native_traces:
            return NotImplemented
        return spec.native(F, spec, arrays, reduction, options, computed)
    if not spec.native_traces and arrays[0].device.type == "meta":
        return NotImplemented
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anyloss has given PyTorch's warnings already
        return spec.native(F, spec, arrays, reduction, options, computed)


def wants_grad(arrays: Any) -> bool:
    """Whether the call will be differentiated: a tensor requires a gradient
    (under grad mode), or carries a forward-mode tangent, or is a torch.func
    transform's (which may differentiate it in either mode)."""
    if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in arrays):
        return True
    return _forward_or_transformed(arrays)


def _forward_or_transformed(arrays: Any) -> bool:
    """A tensor with a forward-mode tangent, or inside a torch.func transform."""
    if torch.compiler.is_compiling():
        return False
    from torch.autograd.forward_ad import unpack_dual

    return any(
        isinstance(a, torch.Tensor)
        and (torch._C._functorch.is_functorch_wrapped_tensor(a) or unpack_dual(a).tangent is not None)
        for a in arrays
    )


_STATIC = 6  # spec, xp, reduction, options, computed, wanted: the Function's inputs before the arrays


class _LossFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(
        spec: Any, xp: Namespace, reduction: Any, options: Any, computed: Any, wanted: Any, *arrays: Any
    ) -> Any:
        value, rec = forward(spec, xp, arrays, reduction, options, computed, wanted)
        # A loss that returned one of its inputs unchanged must still give autograd a new tensor.
        if any(value is a for a in arrays):
            value = value.clone()
        return value, rec

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.static = inputs[:_STATIC]
        ctx.rec = output[1]
        arrays = inputs[_STATIC:]
        ctx.save_for_backward(*arrays)
        ctx.save_for_forward(*arrays)

    @staticmethod
    def backward(ctx: Any, g: Any, _rec: Any) -> Any:
        needed = ctx.needs_input_grad[_STATIC:]
        if not any(needed):
            return (None,) * (_STATIC + len(needed))
        if torch.is_grad_enabled():
            # A backward that will be differentiated (create_graph, torch.func):
            # residuals recomputed from the inputs, so they carry their dependence.
            spec, xp, reduction, options, computed, _ = ctx.static
            _, rec = forward(spec, xp, ctx.saved_tensors, reduction, options, computed, accelerate=False)
            cts = backward(rec, g)
        else:
            # share: autograd copies a gradient it cannot take over.
            cts = backward(ctx.rec, g, share=True)
        return (None,) * _STATIC + tuple(ct if need else None for ct, need in zip(cts, needed))


class _LossFunctionJvp(_LossFunction):
    """The same Function with forward mode. Dynamo cannot trace a Function
    that defines ``jvp``, so under ``torch.compile`` the one above runs."""

    @staticmethod
    def jvp(ctx: Any, *tangents: Any) -> Any:
        # J t from the analytic VJP, which is linear in its cotangent u:
        # J t = d/du <VJP(u), t>.
        tangents = tangents[_STATIC:]
        rec = ctx.rec
        u = torch.zeros_like(rec.value, requires_grad=True)
        with torch.enable_grad():
            cts = backward(rec, u)
            total = sum((ct * t).sum() for ct, t in zip(cts, tangents) if ct is not None and t is not None)
        if not torch.is_tensor(total) or not total.requires_grad:
            return torch.zeros_like(rec.value), None
        (jt,) = torch.autograd.grad(total, u)
        return jt, None


def apply(spec: Any, xp: Namespace, arrays: Any, reduction: Any, options: Any, computed: Any) -> Any:
    # Which gradients will be asked for: those of the tensors that require one
    # (in forward mode and inside torch.func, any input's may be).
    wanted = (
        None
        if _forward_or_transformed(arrays)
        else tuple(isinstance(a, torch.Tensor) and a.requires_grad for a in arrays)
    )
    function = _LossFunction if torch.compiler.is_compiling() else _LossFunctionJvp
    return function.apply(spec, xp, reduction, options, computed, wanted, *arrays)[0]  # type: ignore[no-untyped-call]  # Function.apply: unannotated in torch
