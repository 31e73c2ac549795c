"""Recurrences in a loss's definition (:func:`scan`), run the best way for
the arrays at hand.

A loss whose math is a recursion over time (``ctc_loss``'s alpha and beta)
writes each step once, as Array API code of a namespace it is given:
``step(xp, carry, *x_t, *consts)``. How the steps run is chosen here, not in
the loss:

* on JAX, ``jax.lax.scan`` traces the step once (a Python loop would unroll
  every step into the traced program);
* on NumPy arrays with numba (the ``fast`` extra, ``configure(compiled=True)``),
  the step is traced at one element of the carry (trace.py) into a compiled
  loop over time and elements: its body is the step's own code; a ``take``
  from the carry at indices given in ``consts`` becomes a read of the previous
  carry at that index, and a ``where`` an ``if`` (the side not taken is not
  computed: a dead band of -inf skips its exp and log, as a hand-written
  kernel's loops would). On NumPy a step is a dozen small array operations,
  each paying its dispatch whatever the size; the loop pays none. A step that
  does not trace (a reduction, a branch on a value) runs as the loop below;
* otherwise, a Python loop over the steps.
"""

from __future__ import annotations

import re
import threading
import types
from typing import Any

import array_api_compat as _compat
import numpy as np

from .._typing import Namespace
from . import kernels, trace

# Element-steps (elements of the carry times steps) from which the compiled loop
# is split over threads, where each thread's rows of the carry only read
# themselves: a step costs a few calls of exp and log per element.
THREADED_WORK = 1 << 16


def scan(
    xp: Namespace, step: Any, init: Any, xs: Any, consts: Any = (), *, reverse: bool = False, axis: int = 0
) -> Any:
    """A recurrence over time: ``carry = step(xp, carry, *x_t, *consts)`` for
    each ``t`` along the leading axis of the arrays ``xs`` (last to first with
    ``reverse``); ``consts``: arrays every step reads whole (index arrays of a
    ``take`` from the carry, 0-d numbers, arrays of the carry's shape).
    Returns ``init`` and every carry stacked along ``axis`` in time order
    (``init`` first, or last with ``reverse``). An array of ``xs`` whose step
    slices have another shape than the carry is a table the step reads with a
    ``take`` (of its flattened slice, at an index array among ``consts``, one
    index per element of the carry).

    Give the step every array it reads through ``xs`` and ``consts``, not
    through a closure: the compiled loop is traced once per step function and
    dtypes, and reads its arrays from there. The step returns a carry of the
    carry's shape and dtype (the traced loop takes a reshape of an element as
    that element)."""
    xs, consts = tuple(xs), tuple(consts)
    if _compat.is_jax_namespace(xp):
        from jax import lax

        def body(carry: Any, x: Any) -> Any:
            carry = step(xp, carry, *x, *consts)
            return carry, carry

        _, ys = lax.scan(body, init, xs, reverse=reverse)
        first = xp.expand_dims(init, axis=0)
        ys = xp.concat([ys, first] if reverse else [first, ys], axis=0)
        return xp.moveaxis(ys, 0, axis)
    steps = xs[0].shape[0]
    ys = _compiled(step, init, xs, consts, steps, reverse, axis)
    if ys is not None:
        return ys
    carry, out = init, [init]
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        carry = step(xp, carry, *(x[t, ...] for x in xs), *consts)
        out.append(carry)
    ys = xp.stack(out[::-1] if reverse else out, axis=axis)
    if _compat.is_dask_array(ys):
        # Dask stacks one chunk per step: every later operation on the result
        # would be a task per time step. One chunk along time instead.
        ys = ys.rechunk({axis: -1})
    return ys


# ---------------------------------------------------------------- compiled loops


def _compiled(
    step: Any, init: Any, xs: tuple[Any, ...], consts: tuple[Any, ...], steps: int, reverse: bool, axis: int
) -> Any:
    """The stacked carries computed by the compiled loop; ``None`` where it does not apply."""
    if not all(type(a) is np.ndarray for a in (init, *xs, *consts)) or not kernels.available():
        return None
    lanes = init.size
    if init.dtype not in (np.float32, np.float64) or lanes == 0 or steps == 0 or not 0 <= axis <= init.ndim:
        return None
    tables = tuple(x.shape[1:] != init.shape for x in xs)
    kinds = tuple("number" if c.ndim == 0 else "lanes" for c in consts)
    loop = _loop(step, (init.dtype, *(x.dtype for x in (*xs, *consts))), kinds, tables, reverse)
    if loop is None:
        return None
    indices = {k for k, _ in loop.gathers}
    for k, c in enumerate(consts):  # an element's own value has the carry's shape; indices are flat
        if c.ndim and c.shape != ((lanes,) if k in indices else init.shape):
            return None
    ys = np.empty((steps + 1, lanes), dtype=init.dtype)  # time first: each step writes one row
    ys[steps if reverse else 0] = init.reshape(-1)
    inputs = [np.ascontiguousarray(x).reshape(steps, x[0].size) for x in xs]
    inputs += [c.reshape(1) if c.ndim == 0 else np.ascontiguousarray(c).reshape(lanes) for c in consts]
    inputs = [a.view(np.uint8) if a.dtype == np.bool_ else a for a in inputs]  # see _source
    # Threads own rows of the carry (along its first axis) when every index a
    # step reads from the carry stays in its element's row.
    rows = init.shape[0] if init.ndim else 1
    width = lanes // rows
    for k, m in loop.gathers:
        g, size = inputs[len(xs) + k], lanes if m is None else inputs[m].shape[1]
        if g.min() < 0 or g.max() >= size:
            return None  # an index off the array: the loop's take raises (the compiled one would read anywhere)
    gathered = [inputs[len(xs) + k] for k, m in loop.gathers if m is None]
    threaded = (
        rows > 1
        and steps * lanes >= THREADED_WORK
        and all(np.array_equal(g // width, np.arange(lanes) // width) for g in gathered)
    )

    def run(lo: int, hi: int) -> None:
        loop.kernel(ys, *inputs, steps, lo * width, hi * width)

    if threaded:
        kernels.in_ranges(run, rows, threaded=True)
    else:
        run(0, rows)
    ys = ys.reshape(steps + 1, *init.shape)
    return ys if axis == 0 else np.moveaxis(ys, 0, axis)


class _Loop:
    """A compiled loop: ``kernel`` and its indexed reads (``gathers``): the
    position among ``consts`` of each index array and what it reads, the carry
    (``None``) or the position of a table among ``xs``."""

    def __init__(self, kernel: Any, gathers: list[tuple[int, int | None]]) -> None:
        self.kernel, self.gathers = kernel, gathers


_LOOPS: dict[Any, _Loop | None] = {}


def _loop(
    step: Any, dtypes: tuple[Any, ...], kinds: tuple[str, ...], tables: tuple[bool, ...], reverse: bool
) -> _Loop | None:
    """The compiled loop of ``step`` for these dtypes (carry, xs, consts), kinds
    of consts and tables among ``xs``, traced and compiled once; ``None`` where
    it does not trace. A step whose closure holds anything but functions and
    numbers is traced at each call (its source may depend on what it holds)."""
    key = (_closure_key(step), dtypes, kinds, tables, reverse)
    if key[0] is not None and key in _LOOPS:
        return _LOOPS[key]
    try:
        tape, new, gathers = _trace(step, dtypes, tables)
        bools = tuple(np.dtype(d) == np.bool_ for d in dtypes[1:])
        source = _source(tape, new, tables, kinds, bools, reverse)
        found: _Loop | None = _Loop(kernels.compile_source(source, "scan step", exact=True), gathers)
    except trace.Untraceable:
        found = None
    if key[0] is not None:
        if len(_LOOPS) >= 256:
            _LOOPS.clear()
        _LOOPS[key] = found
    return found


def _closure_key(fn: Any) -> Any:
    """A key for what ``fn``'s code and closure compute, or ``None``."""
    if not isinstance(fn, types.FunctionType):
        return None
    cells = []
    for cell in fn.__closure__ or ():
        v = cell.cell_contents
        if isinstance(v, types.FunctionType):
            v = _closure_key(v)
            if v is None:
                return None
        elif not (v is None or isinstance(v, (bool, int, float, str))):
            return None
        cells.append((type(v).__name__, v))
    return fn.__code__, tuple(cells)


class _Lanes(trace._Namespace):
    """The namespace a step is traced with: trace's elementwise one, plus a
    ``take`` from the carry or a table's slice at an index array among
    ``consts`` (one index per element), and the reshapes around it (an element
    stays itself)."""

    def __init__(self, carry: trace.Sym, tables: dict[int, trace.Sym], consts: list[trace.Sym]) -> None:
        self.carry, self.tables, self.consts = carry, tables, consts
        self.gathers: list[tuple[int, int | None]] = []

    @staticmethod
    def reshape(x: Any, shape: Any, copy: Any = None) -> Any:
        # Any reshape of an element: the step's arrays are the carry's shape.
        if not isinstance(x, trace.Sym):
            raise trace.Untraceable("a reshape of a constant")
        return x

    def take(self, x: Any, indices: Any, axis: Any = None) -> Any:
        table = next((m for m, sym in self.tables.items() if x is sym), None)
        if (x is not self.carry and table is None) or not any(indices is c for c in self.consts):
            raise trace.Untraceable("a take other than from the carry or a table at an index array in consts")
        if indices.dtype.kind not in "iu":
            raise trace.Untraceable("a take at indices that are not integers")
        k = next(k for k, c in enumerate(self.consts) if indices is c)
        if (k, table) not in self.gathers:
            self.gathers.append((k, table))
        if table is None:
            return x.tape.emit(f"ys[src, C{k}[i]]", x.dtype, (x,))
        return x.tape.emit(f"X{table}[t, C{k}[i]]", x.dtype, ())  # (the table's element is not a value)

    @staticmethod
    def __array_namespace_info__() -> Any:
        import array_api_compat.numpy as xnp

        return xnp.__array_namespace_info__()  # type: ignore[attr-defined]  # re-exported by a computed __all__


def _trace(
    step: Any, dtypes: tuple[Any, ...], tables: tuple[bool, ...]
) -> tuple[trace._Tape, str, list[tuple[int, int | None]]]:
    """The step at one element: the tape of the lines computing the new carry
    from ``a0`` (the carry), ``a1``... (``xs`` at the step; a table only through
    a ``take``) and ``c0``... (the consts), the new carry's name, and its indexed
    reads (_Loop.gathers)."""
    n_xs = len(tables)
    tape = trace._Tape()
    carry = tape.sym(tape, "a0", np.dtype(dtypes[0]))
    xs = [tape.sym(tape, f"a{k + 1}", np.dtype(d)) for k, d in enumerate(dtypes[1 : 1 + n_xs])]
    consts = [tape.sym(tape, f"c{k}", np.dtype(d)) for k, d in enumerate(dtypes[1 + n_xs :])]
    namespace = _Lanes(carry, {m: x for m, x in enumerate(xs) if tables[m]}, consts)
    key = threading.get_ident()
    trace._CURRENT[key] = tape
    try:
        try:
            new = step(namespace, carry, *xs, *consts)
        except trace.Untraceable:
            raise
        except Exception as e:  # a step that needs more than one element
            raise trace.Untraceable(f"{type(e).__name__}: {e}") from e
    finally:
        trace._CURRENT.pop(key, None)
    if not isinstance(new, trace.Sym) or new.dtype != carry.dtype:
        raise trace.Untraceable("a carry that is not an element of the carry's dtype")
    table_names = {x.name for m, x in enumerate(xs) if tables[m]}
    if new.name in table_names or any(
        isinstance(x, trace.Sym) and x.name in table_names for _, _, inputs in tape.lines for x in inputs
    ):
        raise trace.Untraceable("a table read other than by a take")
    _c_functions(tape)
    return tape, new.name, namespace.gathers


def _c_functions(tape: trace._Tape) -> None:
    """``float32(exp(float64(x)))`` of a float32 ``x``, a definition's way of
    computing C's ``expf`` (correctly rounded but for rare ties: PyTorch's CPU
    kernels call it) on arrays, becomes ``FN_expf``: vmath's rounded float32
    function, the same numbers, which vectorizes; likewise ``log``."""
    lines = {name: (src, inputs) for name, src, inputs in tape.lines}

    def only(name: str, template: str) -> Any:
        src, inputs = lines.get(name, ("", ()))
        x = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], trace.Sym) else None
        return x if x is not None and src == template.format(x.name) else None

    for k, (name, src, inputs) in enumerate(tape.lines):
        narrowed = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], trace.Sym) else None
        if narrowed is None or src != f"np.float32({narrowed.name})":
            continue
        for fn in ("exp", "log"):
            arg = only(narrowed.name, f"np.float64(FN_{fn}({{}}))")
            x = None if arg is None else only(arg.name, "np.float64({})")
            if x is not None and x.dtype == np.float32:
                tape.lines[k] = (name, f"FN_{fn}f({x.name})", (x,))


def _lazy(tape: trace._Tape, targets: list[str], done: set[str]) -> list[str]:
    """Code computing ``targets`` given the names ``done``: each line once, in
    order, and a ``where`` as an ``if``, so that the lines only one side needs
    run only where that side is taken. The values are the same: every line is
    pure."""
    lines = {name: (src, inputs) for name, src, inputs in tape.lines}
    order = {name: k for k, (name, _, _) in enumerate(tape.lines)}
    dtypes = {s.name: s.dtype for s in tape.seen.values()}
    needed: set[str] = set()
    stack = list(targets)
    while stack:  # what the targets need whichever side each where takes
        name = stack.pop()
        if name in needed or name in done or name not in lines:
            continue
        needed.add(name)
        inputs = lines[name][1]
        follow = inputs[:1] if tape.kinds.get(name) == "select" else inputs
        stack += [x.name for x in follow if isinstance(x, trace.Sym)]
    code, done = [], set(done)
    for name in sorted(needed, key=order.__getitem__):
        src, inputs = lines[name]
        if tape.kinds.get(name) == "select":
            cond, *sides = inputs
            code.append(f"if {trace._operand(cond, np.bool_)}:")
            for k, side in enumerate(sides):
                if k:
                    code.append("else:")
                inner = _lazy(tape, [side.name], done) if isinstance(side, trace.Sym) else []
                code += [f"    {line}" for line in inner] + [f"    {name} = {trace._operand(side, dtypes[name])}"]
        else:
            code.append(f"{name} = {src}")
        done.add(name)
    return code


def _straight(tape: trace._Tape, target: str) -> list[str]:
    """Code computing ``target``: every line it needs, in order, each ``where``
    a select of two computed sides (which a vector loop needs)."""
    lines = {name: (src, inputs) for name, src, inputs in tape.lines}
    needed: set[str] = set()
    stack = [target]
    while stack:
        name = stack.pop()
        if name in needed or name not in lines:
            continue
        needed.add(name)
        stack += [x.name for x in lines[name][1] if isinstance(x, trace.Sym)]
    return [f"{name} = {src}" for name, src, _ in tape.lines if name in needed]


# The functions of a step's lines with which its loop still vectorizes.
_VECTOR_FUNCTIONS = {"expf", "logf", "sqrt"}
# An indexed read: of the previous carry (its own element, or at an index), or of a table.
_READ = re.compile(r"^(\w+) = (ys\[src, (?:C\d+\[i\]|i)\]|X\d+\[t, C\d+\[i\]\])$")


def _source(
    tape: trace._Tape,
    new: str,
    tables: tuple[bool, ...],
    kinds: tuple[str, ...],
    bools: tuple[bool, ...],
    reverse: bool,
) -> str:
    """The loop over the steps, and in each over the elements ``[lo, hi)`` of
    the carry: row ``row`` of ``ys`` (steps + 1, elements) from row ``src``.
    ``bools``: which of ``xs`` and ``consts`` are boolean arrays, which the loop
    reads as bytes (numba's loads of booleans keep a loop scalar).

    Where every function the step calls vectorizes (vmath's rounded float32
    ``exp`` and ``log``), each ``where`` is a select of both sides, and the
    indexed reads (of the previous carry, or of a table) go into buffers in a
    loop before the loop of the arithmetic (an indexed read of the array it
    writes keeps it scalar), which LLVM then vectorizes. Otherwise each
    ``where`` is an ``if`` that computes only the side taken (_lazy)."""
    body = _straight(tape, new)
    vector = set(re.findall(r"\bFN_(\w+)\(", "\n".join(body))) <= _VECTOR_FUNCTIONS
    if not vector:
        body = _lazy(tape, [new], set())
    if new == "a0" or re.search(r"\ba0\b", "\n".join(body)):
        body.insert(0, "a0 = ys[src, i]")
    reads = [m.groups() for m in map(_READ.match, body) if m] if vector else []
    if reads:
        body = [f"{m[1]} = G_{m[1]}[i - u]" if (m := _READ.match(line)) else line for line in body]
    n_xs, n_consts = len(tables), len(kinds)
    xs = [f"X{k}" for k in range(n_xs)]
    consts = [f"C{k}" for k in range(n_consts)]
    used = [k for k in range(n_consts) if re.search(rf"\bc{k}\b", "\n".join(body))]  # not only gathered at
    byte = [" != 0" if b else "" for b in bools]
    # A time and element positions that LLVM knows are not negative (max,
    # unsigned): numba wraps negative indices around, and LLVM, unable to rule
    # that out, keeps the loop scalar or reads with gathers.
    when = ("t = max(steps - 1 - s, 0)", "src = t + 1", "row = t") if reverse else ("t = s", "src = s", "row = s + 1")
    src = [
        f"def kernel({', '.join(['ys', *xs, *consts, 'steps', 'lo', 'hi'])}):",
        *(f"    c{k} = C{k}[0]{byte[n_xs + k]}" for k in used if kinds[k] == "number"),
        *(f"    G_{name} = np.empty(hi - lo, ys.dtype)" for name, _ in reads),
        "    u = np.uint64(lo)",
        "    v = np.uint64(hi)",
        "    for s in range(steps):",
        *(f"        {line}" for line in when),
    ]
    if reads:
        src += ["        for i in range(u, v):", *(f"            G_{name}[i - u] = {read}" for name, read in reads)]
    src += [
        "        for i in range(u, v):",
        *(f"            a{k + 1} = X{k}[t, i]{byte[k]}" for k in range(n_xs) if not tables[k]),
        *(f"            c{k} = C{k}[i]{byte[n_xs + k]}" for k in used if kinds[k] == "lanes"),
        *(f"            {line}" for line in body),
        f"            ys[row, i] = {new}",
    ]
    return "\n".join(src) + "\n"
