"""The one place that chooses how a loss call runs, once its arguments are checked.

A loss function checks its arguments, then calls :func:`apply`. In order, the first that fits runs the call:

1. **tape**: inside ``anyloss.value_and_grad``/``grad``/``vjp`` (``_autodiff``),
   the engine's forward runs and its record goes on the tape, for the
   analytic backward later;
2. **native**: on PyTorch tensors, a loss that ``torch.nn.functional`` has
   under the same semantics is handed to it (``LossSpec.native``), unless
   ``anyloss.configure(native=False)``;
3. **bridge**: a framework that differentiates gets the loss as its own kind of
   differentiable function, running the loss's ``fwd``/``bwd`` on its arrays:
   one ``torch.autograd.Function`` for tensors that require a gradient
   (``_bridges/torch.py``), one ``jax.custom_jvp`` for JAX arrays
   (``_bridges/jax.py``);
4. **plain**: the engine's forward, with residuals dropped; on concrete
   arrays an accelerator (``_accel``: compiled kernels, row blocks) may compute it.

Nothing here reads array values, and nothing is kept between calls but
``_tapes``, a count of active tapes, so that the frameworks' tracers
(``torch.compile``, ``jax.jit``) see plain branches on constants.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import array_api_compat as _compat

from . import _config, _engine
from ._typing import Array, Namespace
from ._xp import adopt_numpy, any_complex, origin

if TYPE_CHECKING:
    from ._spec import LossSpec


class _Tape:
    """What ``anyloss.value_and_grad`` and its kin (``_autodiff``) run a function
    on: the one loss call it makes records its ``Record`` here (:func:`apply`)."""

    def __init__(self, fname: str, wanted: Iterable[Any] = ()) -> None:
        self.fname = fname
        self.rec: _engine.Record | None = None
        self.wanted = {id(a) for a in wanted}  # the arguments whose gradients will be asked for

    def record(self, rec: _engine.Record) -> None:
        if self.rec is not None:
            raise ValueError(
                f"`fun` ({self.fname}) must compute exactly one anyloss loss to be differentiated; "
                f"got {self.rec.spec.name} and then {rec.spec.name}"
            )
        self.rec = rec


# The active gradient tape of this thread or task (see _autodiff.py), or None.
# Read only while some tape is active anywhere (_tapes > 0): tracers do not
# follow context variables, and without a tape there is nothing to read.
_TAPE: contextvars.ContextVar[_Tape | None] = contextvars.ContextVar("anyloss_tape", default=None)
_tapes = 0


@contextmanager
def taping(tape: _Tape) -> Iterator[_Tape]:
    """Make ``tape`` the active tape inside the block."""
    global _tapes
    token = _TAPE.set(tape)
    _tapes += 1
    try:
        yield tape
    finally:
        _tapes -= 1
        _TAPE.reset(token)


def _active_tape() -> _Tape | None:
    return _TAPE.get() if _tapes else None


def apply(
    spec: LossSpec,
    xp: Namespace,
    arrays: tuple[Any, ...],
    reduction: str = "mean",
    computed: dict[str, Any] | None = None,
    **options: Any,
) -> Array:
    """Run ``spec`` on already-checked ``arrays`` (its loss function's last
    step); ``computed``: what the function derived for the ``fwd`` beside the
    options."""
    value: Array = _apply(spec, xp, adopt_numpy(xp, arrays), reduction, options, {} if computed is None else computed)
    return value


def _apply(
    spec: LossSpec,
    xp: Namespace,
    arrays: tuple[Any, ...],
    reduction: str,
    options: dict[str, Any],
    computed: dict[str, Any],
) -> Any:
    tape = _active_tape()
    if tape is not None:
        # Only the outermost loss call is recorded: a loss built on another
        # (cross_entropy on nll_loss) calls its fwd/bwd directly.
        token = _TAPE.set(None)
        try:
            wanted = tuple(a is not None and id(origin(a)) in tape.wanted for a in arrays)
            value, rec = _engine.forward(spec, xp, arrays, reduction, options, computed, wanted)
        finally:
            _TAPE.reset(token)
        tape.record(rec)
        return value
    first = next(a for a in arrays if a is not None)
    if _compat.is_torch_array(first):
        from ._bridges import torch as bridge

        if _config.native and spec.native is not None:
            value = bridge.native(spec, arrays, reduction, options, computed)
            if value is not NotImplemented:
                return value
        # Without an analytic gradient there is nothing to attach: the forward
        # runs plainly, and PyTorch's autograd differentiates its operations
        # (as it does a call whose hyperparameter is a tensor: a learned margin).
        if _bridged(spec, xp, arrays, options) and bridge.wants_grad(arrays):
            return bridge.apply(spec, xp, arrays, reduction, options, computed)
    elif _compat.is_jax_array(first) and _bridged(spec, xp, arrays, options):
        from ._bridges import jax as jax_bridge

        return jax_bridge.apply(spec, xp, arrays, reduction, options, computed)
    return _engine.forward(spec, xp, arrays, reduction, options, computed, wanted=())[0]


def _bridged(spec: LossSpec, xp: Namespace, arrays: tuple[Any, ...], options: dict[str, Any]) -> bool:
    """Whether a bridge may carry the call, with the loss's analytic gradient.
    Not without one; not when a hyperparameter is an array (a traced margin, a
    scheduled label_smoothing: the bridge closes over static options only); not
    for complex arrays (each framework has its own convention for the gradient
    of a real function of complex numbers). Such a call runs plainly and the
    framework differentiates its operations, hyperparameters included."""
    if not spec.has_gradient(options) or any_complex(xp, arrays):
        return False
    for v in options.values():
        if _compat.is_array_api_obj(v):
            return False
    return True


def gradient_wanted(arrays: Sequence[Any]) -> bool:
    """Whether a call on ``arrays`` will be differentiated: it is on an
    anyloss gradient tape, or goes through a framework bridge. A loss may then
    compute its gradient during the forward (``linear_cross_entropy``)."""
    if _active_tape() is not None:
        return True
    first = next(a for a in arrays if a is not None)
    if _compat.is_torch_array(first):
        from ._bridges import torch as bridge

        return bridge.wants_grad(arrays)
    return _compat.is_jax_array(first)
