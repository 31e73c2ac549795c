"""Compiled row kernels: a row-wise loss's value and gradient, one row at a time
(optional, numba).

A loss whose row ``i`` depends only on row ``i`` (``Hints.rows``: softmax cross
entropy, margins) reads a row of ``C`` values a few times -- a maximum, a sum
of exponentials, the gradient -- and NumPy makes each of those a pass over a
block of memory, with a temporary per operation. One compiled loop over the
rows, with a few loops over the row (which stays in the CPU's cache), reads
the input once from memory and writes the gradient once.

The loops are generated from the loss's own ``fwd`` and ``bwd``, traced on one
row (trace.py): every value is a symbol that varies along the row's axes or
not (its ``axes``: ``"i"`` the row, ``"j"`` the column, ``1`` a broadcast
axis). A reduction along the row (``xp.sum``/``xp.max`` over ``"j"``) ends a
loop over the row; what depends on it is computed in the next loop (values
along the row are recomputed there, except those with an ``exp`` or ``log``,
kept in a row buffer). A gather at a column
given per row (``take_along_axis``, ``take``: the target class) is the same
code evaluated at that column. Totals over rows (the ``'mean'`` divisor) are
not traced: the driver gets the call's divisor from ``Hints.rows_divisor``, as
the row blocks do (blocks.py).

A definition this cannot express raises ``Untraceable`` and the call runs the
row blocks; so does any call that is not a 2-D NumPy array of float dtype
(``(N, C)``, the other arrays ``(N,)``, ``(C,)`` or scalars).
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import numpy as np

from . import kernels, trace
from .trace import Sym, Untraceable

MIN_SIZE = 1 << 16


# ---------------------------------------------------------------- symbols of a row


class RowSym(Sym):
    """A value of one row: ``axes`` (``"i"``, ``"j"`` or 1 per dimension) give its
    shape, ``(N, C)`` for the whole ``(N, C)`` array, ``(N,)`` for the loss."""

    def __init__(self, tape: Any, name: str, dtype: Any, weak: bool = False, axes: Any = ()) -> None:
        super().__init__(tape, name, dtype, weak)
        self.axes = tuple(axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(1 if a == 1 else self.tape.extent[a] for a in self.axes)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        return NAMESPACE

    @staticmethod
    def broadcast(*axes: Any) -> Any:
        out: list[Any] = []
        for ax in axes:
            ax = tuple(ax)
            width = max(len(out), len(ax))
            a = [1] * (width - len(out)) + out
            b = [1] * (width - len(ax)) + list(ax)
            for k in range(width):
                if a[k] == 1:
                    a[k] = b[k]
                elif b[k] != 1 and b[k] != a[k]:
                    raise Untraceable("axes that do not broadcast")
            out = a
        return tuple(out)

    def __getitem__(self, key: Any) -> Any:  # x[:, None] and the like
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            fill = self.ndim - sum(1 for k in key if k is not None and k is not Ellipsis)
            key = key[:i] + (slice(None),) * fill + key[i + 1 :]
        axes, rest = [], list(self.axes)
        for k in key:
            if k is None:
                axes.append(1)
            elif k == slice(None) and rest:
                axes.append(rest.pop(0))
            else:
                raise Untraceable("indexing")
        return _alias(self, tuple(axes + rest))


def _alias(x: Any, axes: Any) -> Any:
    """``x`` seen with other (size-1 or broadcast) axes."""
    if not isinstance(x, Sym):
        raise Untraceable("a shape change of a constant")
    if tuple(axes) == x.axes:
        return x
    out = x.tape.emit(x.name, x.dtype, (x,), axes=tuple(axes))
    out.weak = x.weak
    return out


def _axis_list(axis: Any, ndim: int) -> list[int]:
    axes = list(range(ndim)) if axis is None else list(axis) if isinstance(axis, (tuple, list)) else [axis]
    return sorted(a % ndim for a in axes) if ndim else []


def _axes_of_shape(shape: Any) -> tuple[Any, ...]:
    tape = trace._CURRENT.get(threading.get_ident())
    if tape is None:
        raise Untraceable("an array outside a trace")
    by_size = {v: k for k, v in tape.extent.items()}
    out: list[Any] = []
    for d in tuple(shape):
        if d == 1:
            out.append(1)
        elif d in by_size:
            out.append(by_size[d])
        else:
            raise Untraceable(f"an array of extent {d}")
    return tuple(out)


def _reduce(op: str, x: Any, axis: Any, keepdims: bool, dtype: Any = None) -> Any:
    if not isinstance(x, RowSym):
        raise Untraceable(f"{op} of a constant")
    red = _axis_list(axis, x.ndim)
    gone = {x.axes[k] for k in red} - {1}
    axes = tuple(1 if k in red else a for k, a in enumerate(x.axes) if keepdims or k not in red)
    out_dtype = x.dtype if dtype is None else np.dtype(dtype)
    if not gone:
        return _alias(x, axes) if out_dtype == x.dtype else _alias(NAMESPACE.astype(x, out_dtype), axes)
    if "i" in gone:  # a total over rows: not computed by the kernel (the driver's divisor)
        return x.tape.emit(
            f"total_{op}({x.name})", out_dtype, (x,), axes=tuple(a for a in axes if a != "j"), kind="total"
        )
    if x.dtype.name not in trace._FLOATS or out_dtype != x.dtype:
        raise Untraceable(f"a {op} of {x.dtype} along the row")
    return x.tape.emit(f"{op}({x.name})", out_dtype, (x,), axes=axes, kind="reduce")


def _at(x: Any, index: Any, memo: dict[str, Any]) -> Any:
    """``x`` at column ``index`` (a value per row): its own lines again, the
    loads reading at ``index``."""
    if not isinstance(x, Sym) or "j" not in x.axes:
        return x
    if x.name in memo:
        return memo[x.name]
    tape, kind = x.tape, x.tape.kinds.get(x.name)
    axes = RowSym.broadcast(tuple(1 if a == "j" else a for a in x.axes), index.axes)
    if kind == "column":
        out = NAMESPACE.astype(index, x.dtype)
    elif kind == "load":
        out = tape.emit(re.sub(r"\bj\b", index.name, x.source), x.dtype, (index,), axes=axes, kind="load")
    else:
        ins = [_at(a, index, memo) for a in x.inputs]
        names = {a.name: b.name for a, b in zip(x.inputs, ins) if isinstance(a, Sym) and a is not b}
        src = x.source
        if names:
            src = re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m.group(0)], src)
        out = tape.emit(src, x.dtype, ins)
        out.weak = x.weak
    memo[x.name] = out
    return out


def _gather(x: Any, index: Any, axes: Any) -> Any:
    if not isinstance(x, RowSym) or not isinstance(index, RowSym) or "j" in index.axes:
        raise Untraceable("a gather")
    out = _at(x, index, {})
    return _alias(out, RowSym.broadcast(out.axes, axes)) if out.axes != axes else out


class _RowNamespace(trace._Namespace):
    """The Array API functions a row-wise definition uses, on a row's symbols."""

    @staticmethod
    def sum(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
        return _reduce("sum", x, axis, keepdims, dtype)

    @staticmethod
    def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce("max", x, axis, keepdims)

    @staticmethod
    def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce("min", x, axis, keepdims)

    @staticmethod
    def expand_dims(x: Any, axis: int = 0) -> Any:
        axes = list(x.axes)
        axes.insert(axis % (len(axes) + 1), 1)
        return _alias(x, axes)

    @staticmethod
    def squeeze(x: Any, axis: Any) -> Any:
        drop = _axis_list(axis, x.ndim)
        if any(x.axes[k] != 1 for k in drop):
            raise Untraceable("squeeze of an axis that is not 1")
        return _alias(x, tuple(a for k, a in enumerate(x.axes) if k not in drop))

    @staticmethod
    def reshape(x: Any, shape: Any, copy: Any = None) -> Any:
        shape = list(shape)
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape[shape.index(-1)] = x.size // known if known else 0
        core = iter(a for a in x.axes if a != 1)
        axes: list[Any] = []
        for d in shape:
            a = 1 if d == 1 else next(core, None)
            if a != 1 and (a is None or x.tape.extent[a] != d):
                raise Untraceable("a reshape across axes")
            axes.append(a)
        if next(core, None) is not None:
            raise Untraceable("a reshape across axes")
        return _alias(x, tuple(axes))

    @staticmethod
    def broadcast_to(x: Any, shape: Any) -> Any:
        want = _axes_of_shape(shape)
        return _alias(x, RowSym.broadcast(x.axes, want))

    @staticmethod
    def take_along_axis(x: Any, indices: Any, axis: int = -1) -> Any:
        k = axis % x.ndim
        if x.axes[k] != "j" or indices.axes[k] != 1:
            raise Untraceable("a gather along the rows")
        return _gather(x, indices, RowSym.broadcast(tuple(1 if a == "j" else a for a in x.axes), indices.axes))

    @staticmethod
    def take(x: Any, indices: Any, axis: Any = None) -> Any:
        if x.axes != ("j",):
            raise Untraceable("take from an array other than a per-column vector")
        return _gather(x, indices, indices.axes)

    @staticmethod
    def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, device: Any = None) -> Any:
        n = start if stop is None else stop
        if (stop is not None and start != 0) or step != 1:
            raise Untraceable("an arange that is not 0..n-1")
        tape = trace._CURRENT[threading.get_ident()]
        which = _axes_of_shape((n,))[0]
        dtype = np.dtype(np.int64 if dtype is None else dtype)
        if which != "j":
            raise Untraceable("an arange over the rows")
        return tape.emit("j", dtype, (), axes=("j",), kind="column")

    @staticmethod
    def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
        (pa,), (pb,) = axes
        if a.axes[pa % a.ndim] != "j" or pa % a.ndim != a.ndim - 1 or b.axes != ("j",) or pb % b.ndim != 0:
            raise Untraceable("a tensordot other than a row times a column vector")
        return _reduce("sum", a * b, -1, False)

    @staticmethod
    def vecdot(a: Any, b: Any, axis: int = -1) -> Any:
        return _reduce("sum", a * b, axis, False)

    @staticmethod
    def zeros(shape: Any, dtype: Any = None, device: Any = None) -> Any:
        return _RowNamespace.full(shape, 0.0, dtype)

    @staticmethod
    def ones(shape: Any, dtype: Any = None, device: Any = None) -> Any:
        return _RowNamespace.full(shape, 1.0, dtype)

    @staticmethod
    def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None) -> Any:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return _alias(trace._Constant(fill_value, dtype), _axes_of_shape(shape))

    @staticmethod
    def iinfo(dtype: Any) -> Any:
        return np.iinfo(np.dtype(dtype))

    @staticmethod
    def isfinite(x: Any) -> Any:
        return trace._unary("np.isfinite({})", x, np.bool_)


NAMESPACE = _RowNamespace()


class Row:
    """The shape of one call, for tracing: ``n`` rows of ``c`` columns, and each
    array's axes (``None``: absent)."""

    namespace = NAMESPACE

    def __init__(self, n: int, c: int, axes: list[tuple[Any, ...] | None]) -> None:
        self.n, self.c, self.axes = n, c, axes

    def tape(self) -> Any:
        tape = trace._Tape(RowSym)
        tape.extent = {"i": self.n, "j": self.c}
        return tape

    def input(self, tape: Any, k: int, dtype: Any) -> Any:
        axes = self.axes[k]
        assert axes is not None
        index = ", ".join("0" if a == 1 else a for a in axes) or "0"
        return tape.emit(f"A{k}[{index}]", dtype, (), axes=axes, kind="load")


# ---------------------------------------------------------------- the driver


def eligible(spec: Any, arrays: Any, reduction: Any) -> bool:
    return (
        spec.accel.rows is not None
        and reduction in ("mean", "sum")
        and kernels.available()
        and _row(arrays) is not None
    )


def _row(arrays: Any) -> Row | None:
    """The call's ``Row``, or ``None`` where the kernels do not apply."""
    first = arrays[0]
    present = [a for a in arrays if a is not None]
    if (
        not all(type(a) is np.ndarray for a in present)
        or first.ndim != 2
        or first.dtype not in (np.float32, np.float64)
    ):
        return None
    n, c = first.shape
    if n < 2 or c < 2 or n == c or n * c < MIN_SIZE:
        return None
    layouts = {(n, c): ("i", "j"), (n,): ("i",), (n, 1): ("i", 1), (c,): ("j",), (): ()}
    axes = [None if a is None else layouts.get(a.shape) for a in arrays]
    if any(a is not None and ax is None for a, ax in zip(arrays, axes)):
        return None
    if any(a.dtype.kind not in "fiub" for a in present):
        return None
    return Row(n, c, axes)


def run(spec: Any, xp: Any, arrays: Any, reduction: Any, options: Any, computed: Any, wanted: Any) -> Any:
    """``(value, cotangents)`` for the cotangent 1 of the value, as ``blocks.run``;
    ``None`` where the definition does not trace to a row, or the divisor of a
    'mean' is not a positive number."""
    row = _row(arrays)
    if row is None:
        return None
    wanted = tuple(bool(w) for w in wanted) + (False,) * (len(arrays) - len(wanted))
    found = _kernel_for(spec, arrays, row, options, computed, wanted)
    if found is None:
        return None
    loop, body, numbers_ = found
    if reduction == "sum":
        scale = 1.0
    elif body.divisor is None:  # the number of loss elements
        scale = 1.0 / (row.n * (row.c if "j" in body.syms[body.outputs[0]].axes else 1))
    else:
        if spec.accel.rows_divisor is None:
            return None
        divisor = spec.accel.rows_divisor(xp, arrays, options, computed)
        if not (isinstance(divisor, (int, float)) and 0 < divisor < math.inf):
            return None  # PyTorch's special cases of an empty total: the plain path
        scale = 1.0 / divisor
    ins = [np.ascontiguousarray(a).reshape(a.shape or (1,)) for a in arrays if a is not None]
    outs = [
        np.empty(a.shape, dtype=a.dtype)
        for a, o in zip(arrays, body.outputs[1:] + [None] * len(arrays))
        if a is not None and o is not None
    ]
    loss_dtype = body.dtypes[0]
    sums = kernels.in_ranges(
        lambda lo, hi: float(loop(*ins, *outs, *numbers_, loss_dtype.type(scale), lo, hi, row.c)),
        row.n,
        row.n * row.c,
    )
    value = math.fsum(sums) * scale
    it = iter(outs)
    cts = tuple(
        next(it) if a is not None and k + 1 < len(body.outputs) and body.outputs[k + 1] is not None else None
        for k, a in enumerate(arrays)
    )
    return np.asarray(value, dtype=loss_dtype), cts


def _kernel_for(spec: Any, arrays: Any, row: Row, options: Any, computed: Any, wanted: tuple[bool, ...]) -> Any:
    """``(loop, body, numbers)``, traced once per structure of the call (the
    number of rows included: a definition may use it) and compiled once per
    distinct generated source; the options' numbers as ``kernels.cached`` says."""
    dtypes = tuple(None if a is None else a.dtype.name for a in arrays)
    numeric = trace.numeric_options(options)
    rest = tuple(sorted((k, kernels._hashable(v)) for k, v in options.items() if k not in numeric))
    structure: tuple[Any, ...] = ("rows", spec.name, dtypes, tuple(row.axes), row.n, row.c, wanted, rest)
    structure += (tuple(sorted(numeric)), kernels._hashable(computed))
    return kernels.cached(
        structure, numeric, lambda params: _build(spec, dtypes, row, options, computed, wanted, params)
    )


def _build(spec: Any, dtypes: Any, row: Row, options: Any, computed: Any, wanted: Any, params: bool) -> Any:
    def make() -> tuple[trace.Body, str]:
        body = trace.trace(spec, dtypes, options, computed, wanted, row=row, params=params)
        return body, _source(body, row)

    return kernels.build(make, spec.name, params, options)


# ---------------------------------------------------------------- the generated loops


def _source(body: trace.Body, row: Row) -> str:
    """The loop over the rows; in it, for each stage, the values computed once
    per row, then a loop over the row for the values along it (and the
    operands of the reductions the next stage needs, kept in a buffer of the
    row's length and summed in 8 running sums, as kernels.py does)."""
    syms, kinds = dict(body.syms), dict(body.kinds)
    lines = dict(body.lines)
    order = [name for name, _ in body.lines]
    stage: dict[str, int] = {}
    for name in order:
        if kinds.get(name) == "total":
            raise Untraceable("a total over rows in the value or a gradient")
        base = max((stage.get(x.name, 0) for x in syms[name].inputs if isinstance(x, Sym)), default=0)
        stage[name] = base + 1 if kinds.get(name) == "reduce" else base

    def vec(name: str) -> bool:
        return name in syms and "j" in syms[name].axes

    def summed(name: str, label: str, dtype: Any) -> str:
        """A value along the row summed over it (a loss per element; a gradient
        broadcast along the row), as one more reduction."""
        tape = syms[name].tape
        syms[label] = tape.sym(tape, label, np.dtype(dtype), axes=("i",))
        syms[label].inputs, syms[label].source = (syms[name],), f"sum({name})"
        order.append(label)
        kinds[label] = "reduce"
        stage[label] = stage.get(name, 0) + 1
        return label

    loss = body.outputs[0]
    assert loss is not None
    if vec(loss):  # a loss per element
        loss = summed(loss, "loss_row", np.float64)
    outputs = []  # (array k, name, along the row)
    for k, out in enumerate(body.outputs[1:]):
        if out is None:
            continue
        axes = row.axes[k]
        if axes is None or "i" not in axes:
            raise Untraceable("a gradient summed over rows")
        if vec(out) and "j" not in axes:  # the gradient of an array broadcast along the row
            out = summed(out, f"{out}_row", body.dtypes[1 + k])
        outputs.append((k, out, "j" in axes))
    reductions = [n for n in order if kinds.get(n) == "reduce"]
    last = max([stage.get(n, 0) for n in order] + [0])
    # A reduction of an input row itself reads it in place; the others, a buffer.
    direct = {
        r: syms[r].inputs[0].source.replace("j]", "{}]")
        for r in reductions
        if kinds.get(syms[r].inputs[0].name) == "load" and syms[r].inputs[0].source.endswith("[i, j]")
    }
    buffered = [r for r in reductions if r not in direct]

    present = [k for k, ax in enumerate(row.axes) if ax is not None]
    args = [f"A{k}" for k in present] + [f"O{k}" for k, _, _ in outputs] + list(body.params) + ["g", "lo", "hi", "C"]
    src = [
        f"def kernel({', '.join(args)}):",
        *(f"    buf_{r} = np.empty(C, dtype=np.{_acc(r, syms, body)})" for r in buffered),
        "    acc = 0.0",
        "    for i in range(lo, hi):",
    ]
    pad = "        "
    # Each loop over the row: the reductions it feeds, the gradients it writes, and
    # the values along the row those need. A value with a transcendental function
    # that a later loop needs again is kept in a row buffer (spilled) by the first.
    loops = {}
    for k in range(last + 1):
        here = [r for r in buffered if stage[syms[r].inputs[0].name] == k]
        written = [(o, name, along) for o, name, along in outputs if along and stage.get(name, 0) == k]
        if here or written:
            loops[k] = (here, written, [syms[r].inputs[0].name for r in here] + [n for _, n, _ in written])

    def along(roots: list[str], leaves: set[str]) -> set[str]:
        found: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if vec(name) and name in lines and name not in found:
                found.add(name)
                if name not in leaves:
                    todo += [x.name for x in syms[name].inputs if isinstance(x, Sym)]
        return found

    first: dict[str, int] = {}
    for k, (_, _, roots) in loops.items():
        for name in along(roots, set()):
            first.setdefault(name, k)
    again = {n for k, (_, _, roots) in loops.items() for n in along(roots, set()) if first[n] < k}
    spilled = sorted(n for n in again if "FN_" in lines[n])
    src[1:1] = [f"    sv_{n} = np.empty(C, dtype=np.{syms[n].dtype.name})" for n in spilled]

    for k in range(last + 1):
        for name in order:
            if stage[name] != k or vec(name):
                continue
            if kinds.get(name) == "reduce":
                src += _combine(name, syms, pad, direct.get(name, f"buf_{name}[{{}}]"))
            else:
                src.append(f"{pad}{name} = {lines[name]}")
        if k not in loops:
            continue
        here, written, roots = loops[k]
        kept = {n for n in spilled if first[n] < k}
        needed = along(roots, kept)
        src.append(f"{pad}for j in range(C):")
        for name in order:
            if name in needed:
                src.append(f"{pad}    {name} = {f'sv_{name}[j]' if name in kept else lines[name]}")
                if name in spilled and first[name] == k:
                    src.append(f"{pad}    sv_{name}[j] = {name}")
        src += [f"{pad}    buf_{r}[j] = {syms[r].inputs[0].name}" for r in here]
        src += [f"{pad}    O{o}[i, j] = np.{body.dtypes[1 + o].name}({name})" for o, name, _ in written]
    # what is computed once per row after the last loop, and the loss
    src.append(f"{pad}acc += np.float64({loss})")
    src += [f"{pad}O{o}[i] = np.{body.dtypes[1 + o].name}({name})" for o, name, along in outputs if not along]
    src.append("    return acc")
    return "\n".join(src) + "\n"


def _acc(reduction: str, syms: dict[str, Any], body: trace.Body) -> str:
    """The buffer's dtype: for a sum (taken in double precision, _combine) the
    one of ``kernels.sum_buffer``, the operand's for a maximum or minimum."""
    operand = syms[reduction].inputs[0].dtype
    return kernels.sum_buffer(body, operand) if syms[reduction].source.startswith("sum(") else str(operand.name)


def _combine(name: str, syms: dict[str, Any], pad: str, element: str) -> list[str]:
    """``name`` = the sum, maximum or minimum of the row's ``element.format(j)``
    (its buffer, or an input row); NaN propagates."""
    op = syms[name].source.split("(")[0]
    dtype = syms[name].dtype.name
    s = [f"{name}_{m}" for m in range(8)]
    if op == "sum":
        init, step = "0.0", [f"{v} += np.float64({element.format(f'jj + {m}')})" for m, v in enumerate(s)]
        tail = [f"{s[0]} += np.float64({element.format('jj')})"]
        end = [
            f"{pad}{name} = np.{dtype}((({s[0]} + {s[1]}) + ({s[2]} + {s[3]})) + (({s[4]} + {s[5]}) + ({s[6]} + {s[7]})))"
        ]
    else:
        cmp = ">" if op == "max" else "<"
        init = "-np.inf" if op == "max" else "np.inf"

        def pick(v: str, x: str) -> str:  # x wins if it is beyond v or NaN (a NaN v stays)
            return f"{v} = {x} if (({x} {cmp} {v}) | ({x} != {x})) else {v}"

        step = [pick(v, element.format(f"jj + {m}")) for m, v in enumerate(s)]
        tail = [pick(s[0], element.format("jj"))]
        end = [f"{pad}{pick(s[0], v)}" for v in s[1:]] + [f"{pad}{name} = np.{dtype}({s[0]})"]
    return [
        f"{pad}{' = '.join(s)} = np.{'float64' if op == 'sum' else dtype}({init})",
        f"{pad}jj = 0",
        f"{pad}while jj + 8 <= C:",
        *(f"{pad}    {x}" for x in step),
        f"{pad}    jj += 8",
        f"{pad}while jj < C:",
        *(f"{pad}    {x}" for x in tail),
        f"{pad}    jj += 1",
        *end,
    ]
