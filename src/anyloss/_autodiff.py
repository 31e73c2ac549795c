"""``value_and_grad``, ``grad`` and ``vjp`` on every backend, NumPy included.

They run the function on a tape (``_call.taping``): the loss it computes records
its forward residuals, and the gradient is the loss's analytic VJP (through
the reduction's). No autograd of any array library is involved, so the same
code gives gradients on NumPy, Dask, CuPy and array-api-strict.

The differentiated function must compute exactly one anyloss loss and return
its value unchanged: an anyloss loss itself (``F.mse_loss``), a loss object
(``anyloss.MSELoss()``), or a wrapper that fixes some arguments
(``lambda x: F.mse_loss(x, y)``). Arguments are matched to the loss's arrays
by identity, so an argument passed twice gets the sum of both gradients, and
one that is transformed before it reaches the loss is refused rather than
given a wrong gradient.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, overload

from array_api_compat import array_namespace

from ._call import _Tape, taping
from ._engine import backward
from ._typing import Array
from ._xp import origin


def _name(fun: Any) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _normalize_argnums(argnums: Any, nargs: int) -> Any:
    single = isinstance(argnums, int) and not isinstance(argnums, bool)
    nums = (argnums,) if single else argnums
    if not isinstance(nums, tuple) or not nums or not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise TypeError(f"`argnums` must be an int or a non-empty tuple of ints; got {argnums!r}")
    for i in nums:
        if not -nargs <= i < nargs:
            raise ValueError(f"`argnums` must index the {nargs} positional arguments; got {i}")
    return single, tuple(i % nargs for i in nums)


def _param_name(fun: Any, i: int) -> str:
    try:
        params = [
            p
            for p in inspect.signature(fun).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        return params[i].name
    except (TypeError, ValueError, IndexError):
        return f"argument {i}"


def _trace(fun: Any, args: Any, kwargs: Any, wanted: Any = ()) -> Any:
    """Run ``fun`` on a tape; return ``(value, record)``."""
    tape = _Tape(_name(fun), wanted)
    with taping(tape):
        value = fun(*args, **kwargs)
    if tape.rec is None:
        raise ValueError(f"`fun` ({_name(fun)}) must compute an anyloss loss to be differentiated; it computed none")
    return value, tape.rec


def _pullback(fun: Any, value: Any, rec: Any, args: Any, nums: Any, single: Any, share: bool = False) -> Any:
    """The function mapping a cotangent of ``value`` to the gradients of ``args[nums]``."""
    xp = rec.xp
    spec = rec.spec
    # Which of the loss's arrays each requested argument is (by identity).
    positions = []
    for i in nums:
        where = [j for j, a in enumerate(rec.arrays) if a is not None and origin(a) is args[i]]
        if not where:  # (the parameter's name only here: inspect.signature costs 0.1 ms a call)
            raise ValueError(
                f"`argnums` must select arrays that reach {spec.name} unchanged; argument {i} "
                f"(`{_param_name(fun, i)}`) is not one of its array arguments (was it converted or transformed first?)"
            )
        for j in where:
            argname = spec.argnames[j]
            if argname not in spec.differentiable:
                raise ValueError(
                    f"`argnums` must select differentiable arguments; `{argname}` of {spec.name} "
                    f"(argument {i}) has no gradient (differentiable: {', '.join(spec.differentiable) or 'none'})"
                )
            if not xp.isdtype(rec.arrays[j].dtype, ("real floating", "complex floating")):
                raise ValueError(
                    f"`argnums` must select differentiable arguments; `{argname}` of {spec.name} "
                    f"(argument {i}) has dtype {rec.arrays[j].dtype}, which has no gradient"
                )
        positions.append(where)

    def pullback(cotangent: Any) -> Any:
        g = xp.asarray(cotangent, dtype=value.dtype)
        if tuple(g.shape) != tuple(value.shape):
            raise ValueError(f"`cotangent` must have the output's shape {tuple(value.shape)}; got {tuple(g.shape)}")
        cts = backward(rec, g, share)
        grads = []
        for where in positions:
            total = None
            for j in where:
                total = cts[j] if total is None else total + cts[j]
            grads.append(total)
        return grads[0] if single else tuple(grads)

    return pullback


@overload
def vjp(
    fun: Callable[..., Array], *args: Any, argnums: int = 0, **kwargs: Any
) -> tuple[Array, Callable[[Array], Array]]: ...
@overload
def vjp(
    fun: Callable[..., Array], *args: Any, argnums: tuple[int, ...], **kwargs: Any
) -> tuple[Array, Callable[[Array], tuple[Array, ...]]]: ...
def vjp(fun: Callable[..., Array], *args: Any, argnums: int | tuple[int, ...] = 0, **kwargs: Any) -> Any:
    """``(value, pullback)``: ``pullback(cotangent)`` gives the vector-Jacobian
    product for the positional arguments selected by ``argnums`` (a tuple of
    gradients when ``argnums`` is a tuple). Works for any reduction, including
    ``'none'``."""
    return _vjp(fun, args, kwargs, argnums)


def _vjp(fun: Any, args: Any, kwargs: Any, argnums: Any, share: bool = False) -> Any:
    """``vjp``; with ``share`` the pullback is called once (``value_and_grad``)
    and may hand over gradients the forward already computed."""
    single, nums = _normalize_argnums(argnums, len(args))
    value, rec = _trace(fun, args, kwargs, [args[i] for i in nums])
    if value is not rec.value:
        raise ValueError(f"`fun` ({_name(fun)}) must return the loss value unchanged to be differentiated")
    return value, _pullback(fun, value, rec, args, nums, single, share)


@overload
def value_and_grad(fun: Callable[..., Array], argnums: int = 0) -> Callable[..., tuple[Array, Array]]: ...
@overload
def value_and_grad(
    fun: Callable[..., Array], argnums: tuple[int, ...]
) -> Callable[..., tuple[Array, tuple[Array, ...]]]: ...
def value_and_grad(fun: Callable[..., Array], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """Wrap ``fun`` so that it returns ``(value, gradient)``.

    ``value`` must be a scalar (0-d) loss; the gradient is with respect to the
    positional argument ``argnums`` (a tuple of gradients for a tuple).
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        value, pullback = _vjp(fun, args, kwargs, argnums, share=True)
        if value.ndim != 0:
            raise ValueError(
                f"`fun` ({_name(fun)}) must return a scalar loss for value_and_grad; got shape "
                f"{tuple(value.shape)} (use reduction='mean' or 'sum', or anyloss.vjp for 'none')"
            )
        return value, pullback(array_namespace(value).ones_like(value))

    wrapped.__name__ = f"value_and_grad({_name(fun)})"
    wrapped.__doc__ = fun.__doc__
    return wrapped


@overload
def grad(fun: Callable[..., Array], argnums: int = 0) -> Callable[..., Array]: ...
@overload
def grad(fun: Callable[..., Array], argnums: tuple[int, ...]) -> Callable[..., tuple[Array, ...]]: ...
def grad(fun: Callable[..., Array], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """Wrap ``fun`` so that it returns the gradient of its scalar loss only."""
    vg: Callable[..., Any] = value_and_grad(fun, argnums)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    wrapped.__name__ = f"grad({_name(fun)})"
    wrapped.__doc__ = fun.__doc__
    return wrapped
