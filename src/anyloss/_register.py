"""``anyloss.register``: a user's own loss, treated exactly like the built-ins.

A loss is written once against the Array API, as its *unreduced* value::

    @anyloss.register
    def log_cosh_loss(xp, input, target, *, delta=1.0):
        d = (input - target) / delta
        return delta * (xp.abs(d) + xp.log1p(xp.exp(-2 * xp.abs(d))) - math.log(2))

    @log_cosh_loss.gradient
    def _(xp, g, input, target, *, delta=1.0):
        t = g * xp.tanh((input - target) / delta)
        return t, -t                       # one per differentiable argument

and is then called like any loss: ``log_cosh_loss(x, y, reduction="sum", delta=2.0)``,
on any backend, with ``anyloss.value_and_grad``, ``loss.backward()`` on PyTorch
tensors and ``jax.grad`` on JAX arrays, and it is listed by ``anyloss.losses()``.

The forward's signature says what is what: after ``xp``, the positional
parameters are the loss's arrays (a default of ``None`` makes one optional) and
the keyword-only parameters are its static options. ``reduction`` is added:
``'none'``, ``'mean'`` or ``'sum'`` of the unreduced loss.

Without a gradient, the loss still differentiates where the backend has
autodiff of its own (PyTorch tensors with ``requires_grad``, ``jax.grad``);
``anyloss.value_and_grad`` on NumPy, Dask, CuPy or array-api-strict raises a
``ValueError`` saying so.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from ._checks import check_broadcastable, fail, namespace
from ._reduction import check_reduction
from ._spec import _REGISTRY, LossSpec, register_spec


class RegisteredLoss:
    """The callable ``register`` returns: ``loss(*arrays, reduction='mean', **options)``."""

    def __init__(self, forward: Callable, *, name: str, differentiable, summary: str, example) -> None:
        self.forward = forward
        self.name = name
        params = list(inspect.signature(forward).parameters.values())
        if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
            fail(TypeError, "forward", "take the array namespace `xp` as its first parameter", forward)
        arrays = [p for p in params[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not arrays:
            fail(TypeError, "forward", "take at least one array after `xp`", forward)
        self.argnames = tuple(p.name for p in arrays)
        self.optional = frozenset(p.name for p in arrays if p.default is None)
        self.options = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        differentiable = (self.argnames[0],) if differentiable is None else tuple(differentiable)
        unknown = [d for d in differentiable if d not in self.argnames]
        if unknown:
            fail(ValueError, "differentiable", f"name arrays of the loss {self.argnames}", unknown)
        self.differentiable = differentiable
        self._gradient = None
        old = _REGISTRY.get(name)
        if old is not None and isinstance(old.functional, RegisteredLoss):
            del _REGISTRY[name]  # a user's loss registered again (a notebook cell run twice) replaces it
        self.spec = register_spec(self._spec(summary, example))
        functools.update_wrapper(self, forward)

    def _spec(self, summary, example) -> LossSpec:
        forward, argnames = self.forward, self.argnames

        def fwd(xp, *arrays, **options):
            return forward(xp, *arrays, **options), arrays

        gradient, where = self._gradient, [argnames.index(d) for d in self.differentiable]

        def bwd(xp, res, g, **options):
            cts = gradient(xp, g, *res, **options)
            cts = (cts,) if not isinstance(cts, (tuple, list)) else tuple(cts)
            if len(cts) != len(where):
                raise ValueError(f"the gradient of `{self.name}` must return one cotangent per differentiable "
                                 f"argument {self.differentiable}; got {len(cts)}")
            out = [None] * len(argnames)
            for i, ct in zip(where, cts):
                out[i] = None if res[i] is None else ct
            return tuple(out)

        return LossSpec(name=self.name, fwd=fwd, bwd=None if gradient is None else bwd, argnames=argnames, differentiable=self.differentiable,
                        summary=summary, example=example, functional=self)

    def gradient(self, fn: Callable) -> Callable:
        """Attach the analytic gradient: ``fn(xp, g, *arrays, **options)`` returns the
        cotangent of each differentiable argument given the cotangent ``g`` of the
        unreduced loss (in the loss's shape; broadcasting is summed away for you)."""
        self._gradient = fn
        spec = self._spec(self.spec.summary, self.spec.example)
        _REGISTRY[self.name] = spec
        self.spec = spec
        return fn

    def __call__(self, *arrays, reduction: str = "mean", **options):
        if len(arrays) > len(self.argnames):
            fail(TypeError, self.name, f"take at most {len(self.argnames)} arrays {self.argnames}", len(arrays))
        arrays = arrays + (None,) * (len(self.argnames) - len(arrays))
        named = dict(zip(self.argnames, arrays))
        for k, v in named.items():
            if v is None and k not in self.optional:
                fail(TypeError, k, "be given", None)
        unknown = set(options) - set(self.options)
        if unknown:
            fail(TypeError, sorted(unknown)[0], f"be one of the options of `{self.name}` {tuple(self.options)}",
                 "an unknown keyword")
        reduction = check_reduction(reduction)
        xp = namespace(**{k: v for k, v in named.items() if v is not None})
        first = arrays[0]
        for k, v in named.items():
            if v is not None:
                check_broadcastable(first.shape, k, v, to=f"`{self.argnames[0]}`")
        return self.spec.apply(xp, arrays, reduction, **{**self.options, **options})

    def __repr__(self) -> str:
        return f"<anyloss loss {self.name}{self.argnames}>"


def register(forward: Callable | None = None, *, name: str | None = None, gradient: Callable | None = None,
             differentiable=None, summary: str = "", example: Callable | None = None):
    """Turn an Array-API forward into a loss with reductions, checks, gradients and every backend.

    Use as ``@anyloss.register`` or ``@anyloss.register(differentiable=("input", "target"))``,
    or call ``anyloss.register(forward, gradient=...)``.

    Args:
        forward: ``forward(xp, *arrays, **options)`` returning the unreduced loss.
        name: the loss's name in the registry (default: the function's name). A
            user's loss registered again under its name replaces the old one; a
            built-in's name is refused.
        gradient: ``gradient(xp, g, *arrays, **options)`` returning the cotangents of
            the ``differentiable`` arguments (or attach it later with ``@loss.gradient``).
        differentiable: names of the arrays that have a gradient (default: the first).
        summary: one line on what the loss is for.
        example: ``example(xp) -> (args, kwargs)``, a small worked example.

    Returns:
        The loss, callable as ``loss(*arrays, reduction='mean', **options)``.
    """
    def wrap(fn):
        loss = RegisteredLoss(fn, name=name or fn.__name__, differentiable=differentiable,
                              summary=summary or (inspect.getdoc(fn) or "").split("\n")[0], example=example)
        if gradient is not None:
            loss.gradient(gradient)
        return loss

    return wrap if forward is None else wrap(forward)


def unregister(name: str) -> None:
    """Remove a user's loss from the registry (built-in losses stay)."""
    spec = _REGISTRY.get(name)
    if spec is None or not isinstance(spec.functional, RegisteredLoss):
        fail(ValueError, "name", "name a loss registered with anyloss.register", repr(name))
    del _REGISTRY[name]
