"""The ``anyloss`` command (also ``python -m anyloss``): see and trust the losses.

    anyloss list                 every loss, one line each
    anyloss show NAME            its documentation and its worked example, computed live
    anyloss plot NAME... -o F    loss (and gradient) curves of one or more losses, to PNG or SVG
    anyloss check [--backend B]  every loss on every installed backend against PyTorch (or NumPy)
    anyloss eval LOSS --input FILE --target FILE   a loss over files, streamed with Dask
    anyloss --version            the installed version

Each subcommand is a thin layer over the library: the registry
(``anyloss.losses()``), each loss's docstring and worked example.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Any

import numpy as np

from . import __version__, _spec
from ._autodiff import value_and_grad
from ._doc import show_text  # show: the same text as the loss's page of the docs
from ._typing import Namespace

BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask")


def cmd_list(args: Any) -> int:
    specs = _spec.losses()
    width = max(map(len, specs))
    for name, spec in specs.items():
        # A loss outside the PyTorch catalogue shows its catalogue ([extras], [user]) in the class column.
        cls = spec.cls.__name__ if spec.cls is not None else "-" if spec.catalogue == "torch" else f"[{spec.catalogue}]"
        print(f"{name:<{width}}  {cls:<30}  {spec.summary}  [grad: {', '.join(spec.differentiable) or '-'}]")
    return 0


def cmd_show(args: Any) -> int:
    spec = _spec.losses().get(args.name)
    if spec is None:
        print(f"anyloss: no loss named {args.name!r}; `anyloss list` shows them all", file=sys.stderr)
        return 2

    print(show_text(spec))
    return 0


def cmd_plot(args: Any) -> int:
    try:
        from . import plot

        path = plot.save(
            args.names, args.output, range=args.range, params=_params(args.param), grad=args.grad, num=args.num
        )
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"anyloss plot: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _namespace(backend: Any) -> Any:
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


def _on_backend(backend: Any, xp: Namespace, spec: Any, args: Any, kwargs: Any, argnames: Any) -> Any:
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

        def f(*d: Any) -> Any:
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


def _to_numpy(x: Any) -> Any:
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def _reference(spec: Any, args: Any, kwargs: Any, argnames: Any) -> Any:
    """PyTorch's value and autograd gradients (or anyloss on NumPy, without PyTorch)."""
    try:
        import torch
    except ImportError:
        return "numpy", *_on_backend("numpy", _namespace("numpy"), spec, args, kwargs, argnames)
    # Only the PyTorch catalogue has a torch.nn.functional twin; extras and user losses compare with NumPy.
    fn = getattr(torch.nn.functional, spec.name, None) if spec.catalogue == "torch" else None
    if fn is None:
        return "numpy", *_on_backend("numpy", _namespace("numpy"), spec, args, kwargs, argnames)
    tensors = [torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a for a in args]
    diff = [i for i, a in enumerate(args) if i < len(spec.argnames) and spec.argnames[i] in argnames]
    for i in diff:
        tensors[i].requires_grad_(True)
    out = fn(*tensors, **kwargs)
    if diff:
        out.backward()
    # A tensor the output does not depend on gets no .grad from PyTorch: its gradient is zero.
    grads = [tensors[i].grad for i in diff]
    return (
        "torch",
        out.detach().numpy(),
        [torch.zeros_like(tensors[i]).numpy() if g is None else g.numpy() for i, g in zip(diff, grads)],
    )


def cmd_check(args: Any) -> int:
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    installed = {b: xp for b in backends if (xp := _namespace(b)) is not None}
    missing = [b for b in backends if b not in installed]
    specs = {n: s for n, s in _spec.losses().items() if s.example is not None}
    width = max(map(len, specs))
    print(f"{'loss':<{width}}  {'vs':<6}" + "".join(f"{b:>18}" for b in installed))
    failures = 0
    for name, spec in specs.items():
        if spec.example is None:  # filtered out above
            continue
        ex_args, ex_kwargs = spec.example(np)
        argnames = [
            spec.argnames[i]
            for i, a in enumerate(ex_args)
            if i < len(spec.argnames)
            and isinstance(a, np.ndarray)
            and a.dtype.kind == "f"
            and spec.argnames[i] in spec.differentiable
            and spec.bwd is not None
        ]
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


def _err(a: Any, b: Any) -> float:
    """Largest error relative to max(1, |b|), NaNs and infinities compared as equal where both are."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    d = np.where(same, 0.0, np.abs(a - b) / np.maximum(1.0, np.abs(b)))
    return float(np.max(d, initial=0.0))


def _params(pairs: Any) -> dict[str, Any]:
    """``NAME=VALUE`` options, each value a Python literal (``0.1``, ``True``,
    ``[1, 2]``) or else the plain string."""
    import ast

    options = {}
    for pair in pairs:
        name, eq, text = pair.partition("=")
        if not eq or not name.isidentifier():
            raise ValueError(f"`--param` must be NAME=VALUE, e.g. label_smoothing=0.1; got {pair!r}")
        try:
            options[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[name] = text
    return options


def cmd_eval(args: Any) -> int:
    from . import stream

    def report(line: Any) -> None:
        print(f"anyloss eval: {line}", file=sys.stderr)

    try:
        value = stream.evaluate(
            args.loss,
            args.input,
            args.target,
            reduction=args.reduction,
            chunks=args.chunks,
            input_key=args.input_key,
            target_key=args.target_key,
            scheduler=args.scheduler,
            progress=args.progress,
            output=args.output,
            report=report,
            **_params(args.param),
        )
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"anyloss eval: {e}", file=sys.stderr)
        return 2
    if args.output is not None:
        report(f"wrote the unreduced loss to {value}")
    else:
        print(value if isinstance(value, float) else np.array2string(value))
    return 0


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="anyloss", description="Every PyTorch loss, on any array library.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="every loss: name, class, what it is for, differentiable arguments").set_defaults(
        run=cmd_list
    )
    show = sub.add_parser("show", help="a loss's formula, parameters, shapes and a worked example computed live")
    show.add_argument("name", help="the loss's functional name, e.g. smooth_l1_loss")
    show.set_defaults(run=cmd_show)
    plot = sub.add_parser(
        "plot",
        help="loss (and gradient) curves of one or more losses, to a PNG or SVG file",
        description="Draw the losses against the number that drives them (the error input - target for "
        "regression losses, the margin for hinge and logistic losses, a logit, a probability, a distance: "
        "the x axis says which), several losses on one figure with a legend. Each loss is computed per "
        "sample by anyloss itself, and --grad draws its analytic gradient below. "
        "Needs matplotlib: pip install 'anyloss[plot]'.",
        epilog="example: anyloss plot smooth_l1_loss l1_loss --grad -o smooth_l1_vs_l1.png",
    )
    plot.add_argument("names", nargs="+", metavar="NAME", help="loss names from `anyloss list`, e.g. huber_loss")
    plot.add_argument(
        "--range",
        nargs=2,
        type=float,
        metavar=("A", "B"),
        help="the x axis from A to B (default: -3 3, or the losses' domain, e.g. 0 1 for a probability)",
    )
    plot.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an option for every loss that takes it, as a Python literal: beta=0.5, delta=2.0 (repeatable)",
    )
    plot.add_argument("--grad", action="store_true", help="also draw the gradient dloss/dx, in a panel below")
    plot.add_argument("--num", type=int, default=401, help="number of points (default: 401)")
    plot.add_argument("-o", "--output", required=True, metavar="FILE", help="the figure to write: FILE.png or FILE.svg")
    plot.set_defaults(run=cmd_plot)
    check = sub.add_parser("check", help="every loss on every installed backend, against PyTorch (or NumPy)")
    check.add_argument(
        "--backend", choices=(*BACKENDS, "all"), default="all", help="the backend to check (default: all installed)"
    )
    check.set_defaults(run=cmd_check)
    ev = sub.add_parser(
        "eval",
        help="a loss over predictions and targets in .npy/.npz/Zarr files, streamed with Dask",
        description="Compute LOSS over --input and --target files a block of rows at a time "
        "(Dask), so that files larger than memory work. Prints the value on stdout and the "
        "rows, bytes and time on stderr. Streams .npy, uncompressed .npz and Zarr; a compressed "
        ".npz member is read whole. Needs pip install 'anyloss[dask]' (and [zarr] for Zarr).",
    )
    ev.add_argument("loss", help="a loss name from `anyloss list`, e.g. cross_entropy")
    ev.add_argument("--input", required=True, metavar="FILE", help="predictions: .npy, .npz or a Zarr store")
    ev.add_argument("--target", required=True, metavar="FILE", help="targets: .npy, .npz or a Zarr store")
    ev.add_argument(
        "--input-key",
        metavar="NAME",
        help="the array of a .npz/Zarr group holding several (default: the only one, or the one called 'input')",
    )
    ev.add_argument("--target-key", metavar="NAME", help="likewise for --target (default: the only one, or 'target')")
    ev.add_argument("--reduction", default="mean", help="mean (default), sum, none, or the loss's own (batchmean)")
    ev.add_argument(
        "--chunks",
        default="64MiB",
        help="block size: rows per block (10000) or bytes of input per block with a unit (64MiB, the default; 16MB)",
    )
    ev.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running dask.distributed scheduler (tcp://host:8786), or threads (the default), synchronous, processes",
    )
    ev.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a loss option, as a Python literal: label_smoothing=0.1, ignore_index=-1 (repeatable)",
    )
    ev.add_argument("--output", metavar="FILE.npy", help="with --reduction none: write the unreduced loss here")
    ev.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: on a terminal, for more than 256 MiB)",
    )
    ev.set_defaults(run=cmd_eval)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
