"""Base classes for the ``torch.nn``-style loss objects.

A loss object only holds options: calling it calls the functional form with
them, exactly as ``torch.nn.MSELoss()(x, y)`` calls ``F.mse_loss``. Each class
writes out PyTorch's constructor signature itself (they differ); this base
resolves the legacy ``size_average``/``reduce`` pair and gives the call and the
representation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import array_api_compat as _compat
import numpy as _np  # ParameterLoss draws initial parameters with numpy.random

from ._checks import describe, fail
from ._reduction import legacy_reduction
from ._typing import Array, Namespace


class Loss:
    """Base of every anyloss loss class (PyTorch's ``_Loss``)."""

    reduction: str

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> None:
        self.reduction = legacy_reduction(size_average, reduce, reduction, stacklevel=4)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WeightedLoss(Loss):
    """A loss with a per-class ``weight`` array (PyTorch's ``_WeightedLoss``)."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = weight


class ParameterLoss(Loss):
    """Base of the loss objects that own parameters (PyTorch's modules with a
    ``Linear`` inside: ``LinearCrossEntropyLoss``, ``AdaptiveLogSoftmaxWithLoss``).

    The form chosen for a framework-free library: the instance *holds its
    parameters as plain arrays* of one array library (``xp``, NumPy by default)
    in ``_params``, a dict keyed by PyTorch's parameter names
    (``"linear.weight"``). Nothing is tracked and nothing is updated behind the
    user's back; an optimiser step is a plain assignment.

    * ``loss.linear.weight`` reads (and assigning to it replaces) a parameter,
      following the dotted name; ``loss.tail[0][1].weight`` indexes like
      PyTorch's ``ModuleList``/``Sequential``.
    * ``named_parameters()`` -> ``{name: array}``; ``state_dict()`` adds the
      buffers PyTorch lists there (the class ``weight`` of a weighted loss).
    * ``load_state_dict(mapping, strict=True)`` copies arrays of any library --
      a PyTorch ``state_dict()`` included -- into this library and the
      parameters' dtype (DLPack, else ``numpy.asarray``; torch is never
      imported), checking names and shapes as PyTorch does.
    * ``value_and_grad(input, ...)`` -> ``(value, {"input": g, name: g, ...})``:
      anyloss's analytic gradients (:func:`anyloss.value_and_grad`) with
      respect to the input and every parameter, each in its parameter's shape.

    Parameters are initialised with PyTorch's distributions, drawn from
    ``numpy.random.default_rng(seed)`` (same distribution, not the same numbers
    as ``torch.manual_seed``), then moved with ``xp.asarray`` to the requested
    ``dtype`` (default float32, as PyTorch) and ``device``.

    A subclass fills ``_params`` (``_init_uniform``), names its buffers in
    ``_buffer_names`` and the differentiated positional arguments of
    ``forward`` in ``_grad_inputs``, and implements ``_forward_with(params,
    *args)``: the loss computed with the arrays ``params`` (as
    ``_loss_argument`` shapes them) in place of its own.
    """

    _buffer_names: tuple[str, ...] = ()
    _grad_inputs: tuple[str, ...] = ("input",)

    def __init__(
        self,
        reduction: str = "mean",
        *,
        xp: Namespace = None,
        dtype: Any = None,
        device: Any = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(None, None, reduction)
        if xp is None:
            from array_api_compat import numpy as xp
        try:
            xp = _compat.array_namespace(xp.zeros(()))  # a bare `numpy`/`torch` module works too
        except (AttributeError, TypeError):
            fail(TypeError, "xp", "be an array namespace (numpy, torch, jax.numpy, ...) or None", describe(xp))
        if dtype is None:
            dtype = xp.float32
        elif isinstance(dtype, str):
            if not hasattr(xp, dtype):
                raise ValueError(f"`dtype` must name a dtype of {xp.__name__}; got {dtype!r}")
            dtype = getattr(xp, dtype)
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"`dtype` must be a real floating dtype; got {dtype}")
        object.__setattr__(self, "_params", {})
        self._xp = xp
        self._dtype = dtype
        self._device = device
        self._rng = _np.random.default_rng(seed)

    # ------------------------------------------------------------ parameters

    def _init_uniform(self, name: str, shape: tuple[int, ...], bound: float) -> None:
        """A parameter drawn from U(-bound, bound), as ``torch.nn.init.uniform_``."""
        values = self._rng.uniform(-bound, bound, size=tuple(shape)) if bound > 0 else _np.zeros(tuple(shape))
        self._params[name] = self._asarray(values, self._dtype)

    def _asarray(self, value: Any, dtype: Any = None, name: str = "value") -> Any:
        """``value`` (an array of any library, or a nested sequence) copied into
        this instance's library, ``dtype`` (kept when None) and device."""
        xp = self._xp
        if callable(getattr(value, "detach", None)):
            value = value.detach()  # a tensor that requires grad refuses DLPack export
        try:
            arr = value if _compat.array_namespace(value) is xp else xp.from_dlpack(value)
        except Exception:  # not DLPack-capable (list, other device, ...): go through NumPy
            try:
                arr = xp.asarray(_np.asarray(value))
            except Exception as e:
                raise TypeError(f"`{name}` must be an array convertible to {xp.__name__}; got {type(value)}") from e
        kwargs = {} if self._device is None else {"device": self._device}
        return xp.asarray(arr, dtype=arr.dtype if dtype is None else dtype, copy=True, **kwargs)

    def _set_parameter(self, name: str, value: Any) -> None:
        old = self._params[name]
        new = self._asarray(value, old.dtype, name)
        if tuple(new.shape) != tuple(old.shape):
            raise ValueError(f"`{name}` must have shape {tuple(old.shape)}; got shape {tuple(new.shape)}")
        self._params[name] = new

    def __getattr__(self, name: str) -> Any:  # only reached when normal lookup fails
        params = self.__dict__.get("_params")
        if params is not None:
            if name in params:
                return params[name]
            if any(k.startswith(name + ".") for k in params):
                return _ParameterView(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            self._set_parameter(name, value)
        else:
            object.__setattr__(self, name, value)

    def named_parameters(self) -> dict[str, Array]:
        """``{name: array}`` under PyTorch's parameter names (the arrays themselves, not copies)."""
        return dict(self._params)

    def parameters(self) -> list[Array]:
        return list(self._params.values())

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's ``state_dict()`` keys: the buffers that are set, then the parameters."""
        out = {b: getattr(self, b) for b in self._buffer_names if getattr(self, b, None) is not None}
        out.update(self._params)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict`` (name -> array of any library) into this instance.

        As PyTorch: with ``strict``, the names must be exactly ``state_dict()``'s
        (``ValueError`` listing the missing and unexpected ones); a shape that
        differs is a ``ValueError`` even when not strict. Values are converted
        to this instance's library and to each entry's dtype; nothing is
        changed unless every entry is valid. Returns ``(missing_keys,
        unexpected_keys)``."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"`state_dict` must be a mapping of name -> array; got {type(state_dict).__name__}")
        current = self.state_dict()
        missing = [k for k in current if k not in state_dict]
        unexpected = [k for k in state_dict if k not in current]
        if strict and (missing or unexpected):
            raise ValueError(
                f"`state_dict` must have exactly the keys {list(current)} of {type(self).__name__}; "
                f"got missing keys {missing} and unexpected keys {unexpected}"
            )
        new = {}
        for k, old in current.items():
            if k in state_dict:
                arr = self._asarray(state_dict[k], old.dtype, f"state_dict[{k!r}]")
                if tuple(arr.shape) != tuple(old.shape):
                    raise ValueError(
                        f"`state_dict[{k!r}]` must have shape {tuple(old.shape)} (as this "
                        f"{type(self).__name__}); got shape {tuple(arr.shape)}"
                    )
                new[k] = arr
        for k, arr in new.items():
            if k in self._params:
                self._params[k] = arr
            else:
                object.__setattr__(self, k, arr)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ computing

    def _loss_argument(self, name: str, array: Any) -> Any:
        """The parameter ``name`` as the loss function takes it (a reshape at most)."""
        return array

    def _forward_with(
        self, params: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        params = {n: self._loss_argument(n, p) for n, p in self._params.items()}
        return self._forward_with(params, *args, **kwargs)

    def value_and_grad(self, *args: Any, **kwargs: Any) -> tuple[Array, dict[str, Array]]:
        """``(value, grads)``: the scalar loss of ``forward(*args, **kwargs)`` and
        its gradients ``{"input": g, <parameter name>: g, ...}`` (each in its
        array's shape), from anyloss's analytic VJPs."""
        from ._autodiff import value_and_grad

        k = len(self._grad_inputs)
        names = list(self._params)
        params = [self._loss_argument(n, self._params[n]) for n in names]

        def fun(*arrays: Any) -> Any:
            return self._forward_with(dict(zip(names, arrays[k:])), *arrays[:k], *args[k:], **kwargs)

        fun.__name__ = f"{type(self).__name__}.forward"
        value, grads = value_and_grad(fun, argnums=tuple(range(k + len(names))))(*args[:k], *params)
        out = dict(zip(self._grad_inputs, grads[:k]))
        for n, g in zip(names, grads[k:]):
            shape = tuple(self._params[n].shape)
            out[n] = g if tuple(g.shape) == shape else _compat.array_namespace(g).reshape(g, shape)
        return value, out


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns (PyTorch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class _ParameterView:
    """``loss.linear`` of a :class:`ParameterLoss`: the parameters under a dotted
    prefix, as attributes (``.weight``) or items (``[0]``, as a ``ModuleList``)."""

    def __init__(self, owner: ParameterLoss, prefix: str) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_prefix", prefix)

    def _get(self, name: str) -> Any:
        full = f"{self._prefix}.{name}"
        params = self._owner._params
        if full in params:
            return params[full]
        if any(k.startswith(full + ".") for k in params):
            return _ParameterView(self._owner, full)
        raise AttributeError(f"{type(self._owner).__name__!r} has no parameter {full!r}")

    def __getattr__(self, name: str) -> Any:
        return self._get(name)

    def __getitem__(self, index: int | str) -> Any:
        try:
            return self._get(str(index))
        except AttributeError as e:
            raise IndexError(str(e)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        full = f"{self._prefix}.{name}"
        if full not in self._owner._params:
            raise AttributeError(f"{type(self._owner).__name__!r} has no parameter {full!r}")
        self._owner._set_parameter(full, value)

    def __repr__(self) -> str:
        names = [k for k in self._owner._params if k.startswith(self._prefix + ".")]
        return f"<parameters {', '.join(names)} of {type(self._owner).__name__}>"
