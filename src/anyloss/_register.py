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
tensors and ``jax.grad`` on JAX arrays, and it is listed by ``anyloss.losses()``
(and ``anyloss list/show/check``).

The forward's signature says what is what: after ``xp``, the positional
parameters are the loss's arrays (a default of ``None`` makes one optional) and
the keyword-only parameters are its static options. ``reduction`` is added:
``'none'``, ``'mean'`` or ``'sum'`` of the unreduced loss. Options are
keyword-only in the call too.

**Elementwise or per-sample.** The reductions apply to whatever the forward
returns. An elementwise loss (focal loss) returns the input's shape, and
``'mean'`` averages over elements. A loss defined per sample (Dice is one ratio
of sums per sample) returns one value per sample, shape ``(N,)``, and
``'mean'`` averages over samples. The gradient receives the cotangent ``g`` in
that same shape. A forward may also return ``(loss, divisor)``: ``'mean'`` then
divides the sum by ``divisor`` (the number of targets not ignored, say); the
divisor is treated as a constant (no gradient flows through it).

**Checks.** By default every array must broadcast against the first. A loss
with other rules (class-index targets, option ranges, values in [0, 1]) passes
``check(xp, *arrays, **options)``, which runs instead, with every option
(defaults filled in), and raises through ``anyloss._checks`` helpers.

Without a gradient, the loss still differentiates where the backend has
autodiff of its own (PyTorch tensors with ``requires_grad``, ``jax.grad``);
``anyloss.value_and_grad`` on NumPy, Dask, CuPy or array-api-strict raises a
``ValueError`` saying so.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from ._call import apply
from ._checks import check_broadcastable, check_option, fail
from ._reduction import REDUCTIONS, check_reduction
from ._spec import _REGISTRY, Forward, LossSpec, register_spec
from ._typing import Array, Namespace, Reduction

# Catalogues that ship with anyloss: their losses cannot be replaced or removed.
BUILTIN_CATALOGUES = ("torch", "extras")


class RegisteredLoss:
    """The callable ``register`` returns: ``loss(*arrays, reduction=..., **options)``."""

    def __init__(
        self,
        forward: Callable[..., Any],
        *,
        name: str,
        differentiable: Sequence[str] | None,
        summary: str,
        example: Callable[..., Any] | None,
        catalogue: str = "user",
        default_reduction: Reduction = "mean",
        check: Callable[..., Any] | None = None,
        curve: Callable[..., Any] | Literal[False] | None = None,
    ) -> None:
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
        if "reduction" in self.options:
            fail(TypeError, "forward", "not take a `reduction` option (anyloss adds it)", forward)
        differentiable = (self.argnames[0],) if differentiable is None else tuple(differentiable)
        unknown = [d for d in differentiable if d not in self.argnames]
        if unknown:
            fail(ValueError, "differentiable", f"name arrays of the loss {self.argnames}", unknown)
        if not isinstance(catalogue, str) or not catalogue:
            fail(TypeError, "catalogue", "be a non-empty str", repr(catalogue))
        check_option("default_reduction", default_reduction, REDUCTIONS)
        self.differentiable = differentiable
        self.catalogue = catalogue
        self.default_reduction = default_reduction
        self.check = check
        self._gradient: Callable[..., Any] | None = None
        old = _REGISTRY.get(name)
        if old is not None and isinstance(old.functional, RegisteredLoss) and old.catalogue not in BUILTIN_CATALOGUES:
            del _REGISTRY[name]  # a user's loss registered again (a notebook cell run twice) replaces it
        self.spec = register_spec(self._spec(summary, example, curve))
        functools.update_wrapper(self, forward)
        # What the call takes (the forward's `xp` dropped, `reduction` added), for
        # help(), `anyloss show` and the docs.
        kw = inspect.Parameter.KEYWORD_ONLY
        self.__signature__ = inspect.Signature(
            [p.replace(annotation=inspect.Parameter.empty) for p in arrays]
            + [p.replace(annotation=inspect.Parameter.empty) for p in params if p.kind is kw]
            + [inspect.Parameter("reduction", kw, default=default_reduction)]
        )

    def _spec(
        self, summary: str, example: Callable[..., Any] | None, curve: Callable[..., Any] | Literal[False] | None = None
    ) -> LossSpec:
        forward = self.forward

        def fwd(xp: Namespace, *arrays: Any, **options: Any) -> Forward:
            out = forward(xp, *arrays, **options)
            if isinstance(out, tuple):  # (loss, divisor of 'mean')
                loss, divisor = out
                return Forward(loss, arrays, divisor)
            return Forward(out, arrays)

        extra: dict[str, Any] = (
            {} if curve is None else {"curve": curve}
        )  # the plot's description of the loss (plot.py)
        return LossSpec(
            name=self.name,
            fwd=fwd,
            bwd=self._bwd(),
            argnames=self.argnames,
            optional=tuple(n for n in self.argnames if n in self.optional),
            differentiable=self.differentiable,
            summary=summary,
            catalogue=self.catalogue,
            example=example,
            functional=self,
            **extra,
        )

    def _bwd(self) -> Callable[..., tuple[Any, ...]] | None:
        gradient, argnames = self._gradient, self.argnames
        if gradient is None:
            return None
        where = [argnames.index(d) for d in self.differentiable]

        def bwd(
            xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, **options: Any
        ) -> tuple[Any, ...]:
            # g_divisor: a forward's 'mean' divisor is a constant, it gets no gradient.
            cts = gradient(xp, g, *res, **options)
            cts = (cts,) if not isinstance(cts, (tuple, list)) else tuple(cts)
            if len(cts) != len(where):
                raise ValueError(
                    f"the gradient of `{self.name}` must return one cotangent per differentiable "
                    f"argument {self.differentiable}; got {len(cts)}"
                )
            out: list[Any] = [None] * len(argnames)
            for i, ct in zip(where, cts):
                out[i] = None if res[i] is None else ct
            return tuple(out)

        return bwd

    def gradient(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Attach the analytic gradient: ``fn(xp, g, *arrays, **options)`` returns the
        cotangent of each differentiable argument given the cotangent ``g`` of the
        unreduced loss (in the shape the forward returns; broadcasting against an
        argument's shape is summed away for you)."""
        self._gradient = fn
        spec = dataclasses.replace(self.spec, bwd=self._bwd())
        _REGISTRY[self.name] = spec
        self.spec = spec
        return fn

    def __call__(self, *arrays: Array | None, reduction: Reduction | None = None, **options: Any) -> Array:
        if len(arrays) > len(self.argnames):
            fail(
                TypeError,
                self.name,
                f"take at most {len(self.argnames)} arrays {self.argnames} (its options are keyword-only)",
                len(arrays),
            )
        arrays = arrays + (None,) * (len(self.argnames) - len(arrays))
        named = dict(zip(self.argnames, arrays))
        for k, v in named.items():
            if v is None and k not in self.optional:
                fail(TypeError, k, "be given", None)
        unknown = set(options) - set(self.options)
        if unknown:
            fail(
                TypeError,
                sorted(unknown)[0],
                f"be one of the options of `{self.name}` {tuple(self.options)}",
                "an unknown keyword",
            )
        reduction = check_reduction(self.default_reduction if reduction is None else reduction)
        xp, arrays = self.spec.adopt(**named)
        named = dict(zip(self.argnames, arrays))
        options = {**self.options, **options}
        if self.check is not None:
            checked = self.check(xp, *arrays, **options)
            if checked is not None:  # the arrays, as the check passes them on (see `register`)
                arrays = tuple(checked) + arrays[len(checked) :]
        else:
            first: Any = arrays[0]
            for k, v in named.items():
                if v is not None:
                    check_broadcastable(first.shape, k, v, to=f"`{self.argnames[0]}`")
        return apply(self.spec, xp, arrays, reduction, **options)

    def __repr__(self) -> str:
        return f"<anyloss loss {self.name}{self.argnames}>"


@overload
def register(
    forward: Callable[..., Any],
    *,
    name: str | None = None,
    gradient: Callable[..., Any] | None = None,
    differentiable: Sequence[str] | None = None,
    summary: str = "",
    example: Callable[..., Any] | None = None,
    check: Callable[..., Any] | None = None,
    default_reduction: Reduction = "mean",
    catalogue: str = "user",
    curve: Callable[..., Any] | Literal[False] | None = None,
) -> RegisteredLoss: ...
@overload
def register(
    forward: None = None,
    *,
    name: str | None = None,
    gradient: Callable[..., Any] | None = None,
    differentiable: Sequence[str] | None = None,
    summary: str = "",
    example: Callable[..., Any] | None = None,
    check: Callable[..., Any] | None = None,
    default_reduction: Reduction = "mean",
    catalogue: str = "user",
    curve: Callable[..., Any] | Literal[False] | None = None,
) -> Callable[[Callable[..., Any]], RegisteredLoss]: ...
def register(
    forward: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    gradient: Callable[..., Any] | None = None,
    differentiable: Sequence[str] | None = None,
    summary: str = "",
    example: Callable[..., Any] | None = None,
    check: Callable[..., Any] | None = None,
    default_reduction: Reduction = "mean",
    catalogue: str = "user",
    curve: Callable[..., Any] | Literal[False] | None = None,
) -> RegisteredLoss | Callable[[Callable[..., Any]], RegisteredLoss]:
    """Turn an Array-API forward into a loss with reductions, checks, gradients and every backend.

    Use as ``@anyloss.register`` or ``@anyloss.register(differentiable=("input", "target"))``,
    or call ``anyloss.register(forward, gradient=...)``.

    Args:
        forward: ``forward(xp, *arrays, **options)`` returning the unreduced loss
            (elementwise, or one value per sample), or ``(loss, divisor)`` to set
            what ``'mean'`` divides the sum by.
        name: the loss's name in the registry (default: the function's name). A
            user's loss registered again under its name replaces the old one; the
            name of a loss that ships with anyloss is refused.
        gradient: ``gradient(xp, g, *arrays, **options)`` returning the cotangents of
            the ``differentiable`` arguments (or attach it later with ``@loss.gradient``).
        differentiable: names of the arrays that have a gradient (default: the first).
        summary: one line on what the loss is for (default: the docstring's first line).
        example: ``example(xp) -> (args, kwargs)``, a small worked example with a
            scalar value, for ``anyloss show/check`` and the docs.
        check: ``check(xp, *arrays, **options)``, the loss's own argument checks,
            run in place of the default (every array broadcasts against the first).
            It may return the leading arrays (a tuple) to use from then on: what
            ``anyloss._checks.check_values`` returns, so that its value checks join a
            Dask graph and ``jax.experimental.checkify``.
        default_reduction: the call's default ``reduction`` (``'mean'``).
        catalogue: where ``anyloss list`` files the loss (``'user'``).
        curve: how ``anyloss plot`` draws the loss (see ``LossSpec.curve``).

    Returns:
        The loss, callable as ``loss(*arrays, reduction=default_reduction, **options)``.
    """

    def wrap(fn: Callable[..., Any]) -> RegisteredLoss:
        loss = RegisteredLoss(
            fn,
            name=name or fn.__name__,
            differentiable=differentiable,
            summary=summary or (inspect.getdoc(fn) or "").split("\n")[0],
            example=example,
            catalogue=catalogue,
            default_reduction=default_reduction,
            check=check,
            curve=curve,
        )
        if gradient is not None:
            loss.gradient(gradient)
        return loss

    return wrap if forward is None else wrap(forward)


def unregister(name: str) -> None:
    """Remove a user's loss from the registry (the losses that ship with anyloss stay)."""
    spec = _REGISTRY.get(name)
    if spec is None or not isinstance(spec.functional, RegisteredLoss) or spec.catalogue in BUILTIN_CATALOGUES:
        fail(ValueError, "name", "name a loss registered with anyloss.register", repr(name))
    del _REGISTRY[name]
