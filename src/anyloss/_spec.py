"""LossSpec: what anyloss knows about a loss, and the registry of all of them.

A loss is defined by two functions written against the Array API:

``fwd(xp, *arrays, **options) -> (loss, res)`` or ``(loss, res, divisor)``
    ``arrays`` are the loss's array arguments in ``argnames`` order (``None``
    for an optional array that was not given); ``options`` are its static,
    non-array parameters. It returns the *unreduced* loss, the residuals
    ``res`` its gradient needs, and optionally the divisor that ``'mean'``
    uses when it is not the number of elements.

``bwd(xp, res, g, **options) -> tuple``
    Given the cotangent ``g`` of the unreduced loss, the cotangents of the
    arrays, one per name in ``argnames``; ``None`` where an argument is not
    differentiable or was not given.

Built-in losses and users' own losses are registered the same way, so
everything that reads the registry (gradients, bridges, tooling) treats them
alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LossSpec:
    name: str
    fwd: Callable
    bwd: Callable | None
    argnames: tuple[str, ...]
    differentiable: tuple[str, ...] = ()
    summary: str = ""
    # example(xp) -> (args, kwargs): a small worked example (PyTorch's docs' one
    # where it has one), used by the demo, the docs and the CLI.
    example: Callable | None = field(default=None, compare=False)
    # has_gradient(options) -> bool, for a loss whose analytic gradient exists
    # only for some options (a user's distance function without a vjp).
    gradient_for: Callable | None = field(default=None, compare=False)
    functional: Callable | None = field(default=None, compare=False)
    cls: type | None = field(default=None, compare=False)

    def has_gradient(self, options: dict) -> bool:
        """Whether ``bwd`` can differentiate a call with these options."""
        return self.bwd is not None and (self.gradient_for is None or self.gradient_for(options))

    def apply(self, xp, arrays: tuple, reduction: str = "mean", **options):
        """Run this loss on already-checked ``arrays`` (see ``_call.apply``)."""
        from ._call import apply

        return apply(self, xp, arrays, reduction, options)


_REGISTRY: dict[str, LossSpec] = {}


def register_spec(spec: LossSpec) -> LossSpec:
    """Add ``spec`` to the registry (a name may be registered once)."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"`name` must be unique among registered losses; got {spec.name!r}, already registered")
    _REGISTRY[spec.name] = spec
    return spec


def losses() -> dict[str, LossSpec]:
    """All registered losses by name (built-ins first, in PyTorch's order)."""
    return dict(_REGISTRY)
