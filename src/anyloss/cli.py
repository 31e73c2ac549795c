"""The ``anyloss`` command (also ``python -m anyloss``): see and trust the losses.

    anyloss list                 every loss, one line each
    anyloss show NAME            its documentation and its worked example, computed live
    anyloss check [--backend B]  every loss on every installed backend against PyTorch (or NumPy)

Each subcommand is a thin layer over the library: the registry
(``anyloss.losses()``), each loss's docstring and worked example.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import warnings

import numpy as np

from . import _spec
from ._autodiff import value_and_grad

BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask")


def example_gradients(spec, args, kwargs):
    """``(value, {argname: gradient})`` of a loss's worked example on NumPy, for
    every floating argument the loss differentiates."""
    argnums = tuple(i for i, a in enumerate(args)
                    if isinstance(a, np.ndarray) and a.dtype.kind == "f" and i < len(spec.argnames)
                    and spec.argnames[i] in spec.differentiable)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not argnums or spec.bwd is None:
            return spec.functional(*args, **kwargs), {}
        value, grads = value_and_grad(spec.functional, argnums=argnums)(*args, **kwargs)
    return value, {spec.argnames[i]: g for i, g in zip(argnums, grads)}


def cmd_list(args) -> int:
    specs = _spec.losses()
    width = max(map(len, specs))
    for name, spec in specs.items():
        cls = spec.cls.__name__ if spec.cls is not None else "-"
        print(f"{name:<{width}}  {cls:<30}  {spec.summary}  [grad: {', '.join(spec.differentiable) or '-'}]")
    return 0


def cmd_show(args) -> int:
    spec = _spec.losses().get(args.name)
    if spec is None:
        print(f"anyloss: no loss named {args.name!r}; `anyloss list` shows them all", file=sys.stderr)
        return 2
    fn = spec.functional
    print(f"{spec.name}{inspect.signature(fn)}")
    if spec.cls is not None:
        print(f"class: anyloss.{spec.cls.__name__}")
    print()
    print(inspect.getdoc(fn) or spec.summary)
    if spec.example is not None:
        ex_args, ex_kwargs = spec.example(np)
        value, grads = example_gradients(spec, ex_args, ex_kwargs)
        with np.printoptions(precision=4, suppress=True):
            print("\nWorked example (computed now, on NumPy):")
            for name, a in zip(spec.argnames, ex_args):
                print(f"  {name} = {np.array2string(np.asarray(a), prefix='  ' + name + ' = ')}")
            for k, v in ex_kwargs.items():
                print(f"  {k} = {v!r}")
            print(f"  loss = {np.asarray(value)}")
            for name, g in grads.items():
                print(f"  d loss / d {name} = {np.array2string(np.asarray(g), prefix='  d loss / d ' + name + ' = ')}")
    return 0


def _namespace(backend):
    """The array namespace of an installed backend, or None."""
    try:
        if backend == "numpy":
            return importlib.import_module("array_api_compat.numpy")
        if backend == "torch":
            importlib.import_module("torch")
            return importlib.import_module("array_api_compat.torch")
        if backend == "jax":
            jax = importlib.import_module("jax")
            jax.config.update("jax_enable_x64", True)
            return importlib.import_module("jax.numpy")
        if backend == "dask":
            importlib.import_module("dask.array")
            return importlib.import_module("array_api_compat.dask.array")
        return importlib.import_module(backend)
    except ImportError:
        return None


def _on_backend(backend, xp, spec, args, kwargs, argnames):
    """Value and gradients of ``argnames`` of the example on ``backend``,
    through its own autodiff where it has one, as NumPy arrays."""
    conv = [xp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    diff = [i for i, a in enumerate(args) if i < len(spec.argnames) and spec.argnames[i] in argnames]
    if backend == "torch":
        for i in diff:
            conv[i] = conv[i].detach().requires_grad_(True)
        out = spec.functional(*conv, **kwargs)
        if diff:
            out.backward()
        return np.asarray(out.detach()), [conv[i].grad.numpy() for i in diff]
    if backend == "jax":
        import jax

        def f(*d):
            full = list(conv)
            for i, a in zip(diff, d):
                full[i] = a
            return spec.functional(*full, **kwargs)

        if not diff:
            return np.asarray(f()), []
        value, grads = jax.value_and_grad(f, argnums=tuple(range(len(diff))))(*(conv[i] for i in diff))
        return np.asarray(value), [np.asarray(g) for g in grads]
    if not diff:
        return np.asarray(spec.functional(*conv, **kwargs)), []
    value, grads = value_and_grad(spec.functional, argnums=tuple(diff))(*conv, **kwargs)
    return _to_numpy(value), [_to_numpy(g) for g in grads]


def _to_numpy(x):
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def _reference(spec, args, kwargs, argnames):
    """PyTorch's value and autograd gradients (or anyloss on NumPy, without PyTorch)."""
    try:
        import torch
    except ImportError:
        return "numpy", *_on_backend("numpy", _namespace("numpy"), spec, args, kwargs, argnames)
    fn = getattr(torch.nn.functional, spec.name, None)
    if fn is None:
        return "numpy", *_on_backend("numpy", _namespace("numpy"), spec, args, kwargs, argnames)
    tensors = [torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a for a in args]
    diff = [i for i, a in enumerate(args) if i < len(spec.argnames) and spec.argnames[i] in argnames]
    for i in diff:
        tensors[i].requires_grad_(True)
    out = fn(*tensors, **kwargs)
    if diff:
        out.backward()
    return "torch", out.detach().numpy(), [tensors[i].grad.numpy() for i in diff]


def cmd_check(args) -> int:
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    installed = {b: xp for b in backends if (xp := _namespace(b)) is not None}
    missing = [b for b in backends if b not in installed]
    specs = {n: s for n, s in _spec.losses().items() if s.example is not None}
    width = max(map(len, specs))
    print(f"{'loss':<{width}}  {'vs':<6}" + "".join(f"{b:>18}" for b in installed))
    failures = 0
    for name, spec in specs.items():
        ex_args, ex_kwargs = spec.example(np)
        argnames = [spec.argnames[i] for i, a in enumerate(ex_args)
                    if i < len(spec.argnames) and isinstance(a, np.ndarray) and a.dtype.kind == "f"
                    and spec.argnames[i] in spec.differentiable and spec.bwd is not None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_name, ref_value, ref_grads = _reference(spec, ex_args, ex_kwargs, argnames)
            cells = []
            for backend, xp in installed.items():
                try:
                    value, grads = _on_backend(backend, xp, spec, ex_args, ex_kwargs, argnames)
                    err = max([_err(value, ref_value)] + [_err(g, r) for g, r in zip(grads, ref_grads)])
                    ok = err <= 1e-6
                    cells.append(f"{'ok' if ok else 'DIFFERS'} {err:.0e}")
                except Exception as e:  # reported, not raised: the table is the point
                    ok = False
                    cells.append(f"ERROR {type(e).__name__}")
                failures += not ok
        print(f"{name:<{width}}  {ref_name:<6}" + "".join(f"{c:>18}" for c in cells))
    if missing:
        print(f"not installed: {', '.join(missing)}")
    print(f"{failures} disagreement(s)" if failures else "every loss agrees on every installed backend")
    return 1 if failures else 0


def _err(a, b) -> float:
    """Largest error relative to max(1, |b|), NaNs and infinities compared as equal where both are."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    d = np.where(same, 0.0, np.abs(a - b) / np.maximum(1.0, np.abs(b)))
    return float(np.max(d, initial=0.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="anyloss", description="Every PyTorch loss, on any array library.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="every loss: name, class, what it is for, differentiable arguments"
                   ).set_defaults(run=cmd_list)
    show = sub.add_parser("show", help="a loss's formula, parameters, shapes and a worked example computed live")
    show.add_argument("name", help="the loss's functional name, e.g. smooth_l1_loss")
    show.set_defaults(run=cmd_show)
    check = sub.add_parser("check", help="every loss on every installed backend, against PyTorch (or NumPy)")
    check.add_argument("--backend", choices=(*BACKENDS, "all"), default="all",
                       help="the backend to check (default: all installed)")
    check.set_defaults(run=cmd_check)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
