"""LossSpec: what anyloss knows about a loss, and the registry of all of them.

A loss is defined by two functions written against the Array API:

``fwd(xp, *arrays, **options, **computed) -> Forward(loss, res, divisor=None)``
    ``arrays`` are the loss's array arguments in ``argnames`` order (``None``
    for an optional array that was not given, ``LossSpec.optional``);
    ``options`` are the user's non-array parameters as the call gave them
    (after checks); ``computed`` are auxiliaries the loss's function derived
    from the arguments (a CTC's longest target, the label positions of
    multilabel_margin) and passes beside them, never inside ``options``. It
    returns the *unreduced* loss, the residuals ``res`` its gradient needs,
    and the divisor that ``'mean'`` uses when it is not the number of
    elements (``None``).

``bwd(xp, res, g, *, g_divisor=None, wanted=None, **options, **computed) -> tuple``
    Given the cotangent ``g`` of the unreduced loss, the cotangents of the
    arrays, one per name in ``argnames``; ``None`` where an argument is not
    differentiable or was not given. Every ``bwd`` takes the same keywords:
    ``g_divisor``, the cotangent of the forward's divisor (``None`` where it
    has none or it gets none), and ``wanted``, which arrays' cotangents will be
    used (``None``: all; a ``bwd`` may skip the others).

Built-in losses and users' own losses are registered the same way, so
everything that reads the registry (gradients, bridges, tooling) treats them
alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ._accel import Hints
from ._checks import namespace
from ._typing import Array, Namespace
from ._xp import adopt_numpy


class Forward(NamedTuple):
    """What every loss's ``fwd`` returns: the unreduced ``loss``, the residuals
    ``res`` its ``bwd`` needs, and the divisor of ``'mean'`` where it is not
    the number of elements (``None``)."""

    loss: Any
    res: Any
    divisor: Any = None


class Curve(NamedTuple):
    """A loss as a function of one number ``x``, for ``anyloss plot`` (``LossSpec.curve``).

    ``args``: the loss's positional arrays for ``N`` independent samples, sample
    ``n`` made from ``x[n]`` (row ``n`` of the ``reduction='none'`` output, summed
    over any further axes, is the loss at ``x[n]``). ``label``: what ``x`` is, for
    the axis ("margin target * input"). ``tangents``: ``{position: d args[position] / dx}``,
    each the shape of that array, saying how ``x`` enters the arrays (default
    ``{0: 1}``: ``x`` is the first array); dl/dx is the loss's own gradient of those
    arrays projected on them. ``domain``: ``(low, high)`` of ``x`` where the loss is
    defined (``None``: any ``x``); the plot's default range is clipped to it.
    """

    args: tuple[Any, ...]
    label: str
    tangents: dict[int, Any] | None = None
    domain: tuple[float | None, float | None] | None = None


@dataclass(frozen=True)
class LossSpec:
    name: str
    fwd: Callable[..., Any]
    bwd: Callable[..., Any] | None
    argnames: tuple[str, ...]
    differentiable: tuple[str, ...] = ()
    # The arrays that may be None (not given): weights, biases.
    optional: tuple[str, ...] = ()
    # The arrays that may be complex (l1_loss's, as in PyTorch); the others are real.
    complex: tuple[str, ...] = ()
    summary: str = ""
    # The catalogue the loss belongs to: "torch" (torch.nn.functional's losses,
    # PyTorch is their oracle), "extras" (anyloss.extras: focal, Dice, ...) or
    # "user" (anyloss.register's default). Tooling groups and checks by it.
    catalogue: str = "torch"
    # example(xp) -> (args, kwargs): a small worked example (PyTorch's docs' one
    # where it has one), used by the demo, the docs and the CLI.
    example: Callable[..., Any] | None = field(default=None, compare=False)
    # has_gradient(options) -> bool, for a loss whose analytic gradient exists
    # only for some options (a user's distance function without a vjp).
    gradient_for: Callable[..., Any] | None = field(default=None, compare=False)
    # curve(xp, x, **options) -> Curve (or a plain tuple of its fields): the loss
    # along one number, for `anyloss plot` (plot.py). x is a 1-D float64 array;
    # the curve may take any of the loss's options (beta, log_input) as keyword
    # parameters to see their values. None: x is the first array, the other
    # required arrays zeros like it (elementwise losses). False: no 1-D curve.
    curve: Callable[..., Any] | Literal[False] | None = field(default=None, compare=False)
    # How the accelerators (_accel) may compute the loss: its batch rows, point
    # or elementwise form (_accel.Hints). Empty: the fwd/bwd as written.
    accel: Hints = field(default=Hints(), compare=False)
    # native(F, spec, arrays, reduction, options, computed) -> value, or NotImplemented: the
    # same call through a framework's own function of the same semantics (F is
    # torch.nn.functional); see native_call. Built-ins default to F.<name> taking
    # the arrays and options by name; None: the loss has no native twin.
    native: Callable[..., Any] | None = field(default=None, compare=False)
    # Whether the native twin runs without reading data -- under
    # torch.compile(fullgraph=True), with PyTorch's numbers, and on meta tensors;
    # where not, anyloss's own code runs there.
    native_traces: bool = field(default=True, compare=False)
    functional: Callable[..., Any] | None = field(default=None, compare=False)
    cls: type[Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.native is None and self.catalogue == "torch":
            object.__setattr__(self, "native", native_call(self.name))

    def has_gradient(self, options: dict[str, Any]) -> bool:
        """Whether ``bwd`` can differentiate a call with these options."""
        return self.bwd is not None and (self.gradient_for is None or self.gradient_for(options))

    def run_fwd(
        self, xp: Namespace, arrays: tuple[Any, ...], options: dict[str, Any], computed: dict[str, Any]
    ) -> Forward:
        """``fwd`` on ``arrays``."""
        out: Forward = self.fwd(xp, *arrays, **options, **computed)
        return out

    def run_bwd(
        self,
        xp: Namespace,
        res: Any,
        g: Any,
        options: dict[str, Any],
        computed: dict[str, Any],
        *,
        g_divisor: Any = None,
        wanted: tuple[bool, ...] | None = None,
    ) -> tuple[Any, ...]:
        """``bwd`` for the cotangent ``g`` of the unreduced loss."""
        bwd = self.bwd
        assert bwd is not None  # the caller checked has_gradient
        cts: tuple[Any, ...] = bwd(xp, res, g, g_divisor=g_divisor, wanted=wanted, **options, **computed)
        return cts

    def adopt(self, **arrays: Any) -> tuple[Namespace, tuple[Array, ...]]:
        """``(xp, arrays)``: the array namespace of the loss's named arrays
        (``_checks.namespace``; ``None`` allowed for the ``optional`` ones), and
        the arrays in order, NumPy arrays among another library's converted to it."""
        xp = namespace(optional=self.optional, complex=self.complex, **arrays)
        return xp, adopt_numpy(xp, tuple(arrays.values()))


def native_call(name: str) -> Callable[..., Any]:
    """``LossSpec.native`` for a loss whose native twin is ``F.<name>`` taking the
    loss's arrays by their ``argnames`` and its options by their names, plus
    ``reduction`` (what anyloss computed for its own ``fwd`` is not passed)."""

    def native(
        F: Any,
        spec: LossSpec,
        arrays: tuple[Any, ...],
        reduction: str,
        options: dict[str, Any],
        computed: dict[str, Any],
    ) -> Any:
        if not hasattr(F, name):
            return NotImplemented
        kwargs = dict(options)
        for k, a in zip(spec.argnames, arrays):
            kwargs[k] = a
        return getattr(F, name)(reduction=reduction, **kwargs)

    return native


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
