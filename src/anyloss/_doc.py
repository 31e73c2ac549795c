"""The text of a loss's documentation and of its worked example, computed live.

One source for ``anyloss show NAME`` and for the loss's page of the
documentation site (``docs/_ext/anyloss_docs.py``): both print
:func:`example_text`, so what the terminal shows is what the docs show.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ._autodiff import value_and_grad

if TYPE_CHECKING:
    from ._spec import LossSpec

EXAMPLE_HEADING = "Worked example (computed now, on NumPy):"


def call_name(spec: LossSpec) -> str:
    """How a user calls the loss: ``F.mse_loss``, ``anyloss.extras.dice_loss`` or its bare name."""
    if spec.catalogue == "torch":
        return f"F.{spec.name}"
    if spec.catalogue == "extras":
        return f"anyloss.extras.{spec.name}"
    return spec.name


def _array(a: Any) -> np.ndarray:
    return np.asarray(a)


def example_gradients(spec: Any, args: Any, kwargs: Any) -> Any:
    """``(value, {argname: gradient})`` of a loss's worked example on NumPy, for
    every floating argument the loss differentiates."""
    argnums = tuple(
        i
        for i, a in enumerate(args)
        if isinstance(a, np.ndarray)
        and a.dtype.kind == "f"
        and i < len(spec.argnames)
        and spec.argnames[i] in spec.differentiable
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not argnums or spec.bwd is None:
            return spec.functional(*args, **kwargs), {}
        value, grads = value_and_grad(spec.functional, argnums=argnums)(*args, **kwargs)
    return value, {spec.argnames[i]: g for i, g in zip(argnums, grads)}


def example_text(spec: Any) -> str | None:
    """The worked example of ``spec`` computed now on NumPy, as lines of text:
    the call, its inputs, the value and the gradient of each differentiable
    argument (None for a loss without an example)."""
    if spec.example is None:
        return None

    args, kwargs = spec.example(np)
    names = [spec.argnames[i] if i < len(spec.argnames) else f"arg{i}" for i in range(len(args))]
    call = ", ".join(names + [f"{k}={v!r}" for k, v in kwargs.items()])
    value, grads = example_gradients(spec, args, kwargs)
    lines = [f"  {call_name(spec)}({call})"]
    with np.printoptions(precision=4, suppress=True):
        for name, a in zip(names, args):
            prefix = f"  {name} = "
            lines.append(prefix + np.array2string(_array(a), prefix=prefix))
        lines.append(f"  loss = {_array(value)}")
        for name, g in grads.items():
            prefix = f"  d loss / d {name} = "
            lines.append(prefix + np.array2string(_array(g), prefix=prefix))
    return "\n".join(lines)


def show_text(spec: Any) -> str:
    """What ``anyloss show NAME`` prints: signature, class, docstring and the
    worked example computed now."""
    fn = spec.functional
    out = [f"{spec.name}{inspect.signature(fn)}"]
    if spec.cls is not None:
        out.append(f"class: anyloss.{spec.cls.__name__}")
    out += ["", inspect.getdoc(fn) or spec.summary]
    example = example_text(spec)
    if example is not None:
        out += ["", EXAMPLE_HEADING, example]
    return "\n".join(out)
