"""A loss's own ``fwd``/``bwd``, traced at one element into scalar code.

An elementwise loss (``Hints.elementwise``) is written once, in Array API
code. To run it as one compiled pass (kernels.py), its ``fwd`` and ``bwd``
are called here on symbols that stand for one element of each array: every
operation they perform is recorded as one line of straight-line scalar code,
in the dtype the operation has on real arrays (NumPy's promotion rules; a
Python number takes the other operand's dtype). The lines that compute the
loss and the wanted gradients, and nothing else, are the loop body of the
kernel. No second copy of the math exists: change the loss, and the kernel
follows.

A definition that does something a single element cannot express (a
reduction, a branch on a value, a shape) raises :class:`Untraceable`; the loss
then runs as written (row blocks or whole arrays).

The numbers among the options (``beta``, ``delta``, ``eps``...) may be traced
as parameters of the kernel (``params``), so that a new value needs no new
compilation (``kernels.cached`` decides when); a definition that branches on
one (``if beta == 1.0``) is then traced again with the numbers as constants.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import numpy as np


class Untraceable(Exception):
    """The definition does something that is not elementwise scalar code."""


_FLOATS = ("float32", "float64")


class _Tape:
    """The lines recorded. ``sym``: the class of the symbols (``rows.RowSym`` for a
    row, whose ``axes`` say along which of the row's axes a value varies)."""

    def __init__(self, sym: type[Sym] | None = None) -> None:
        self.lines: list[tuple[str, str, tuple[Any, ...]]] = []  # (name, source, inputs)
        self.count = 0
        self.seen: dict[tuple[str, Any, Any], Sym] = {}
        self.sym = Sym if sym is None else sym
        self.kinds: dict[str, str] = {}  # name -> "load", "column", "reduce", "total" (rows.py)
        self.extent: dict[Any, int] = {}  # a row's axes -> their sizes (rows.py)

    def emit(self, source: str, dtype: Any, inputs: Iterable[Any], axes: Any = None, kind: str | None = None) -> Sym:
        # Every line is pure: the same source is the same value (the bwd's exp(x)
        # is the fwd's), computed once.
        inputs = tuple(inputs)
        if axes is None:
            axes = self.sym.broadcast(*(x.axes for x in inputs if isinstance(x, Sym)))
        key = (source, np.dtype(dtype), axes)
        if key not in self.seen:
            name = f"t{self.count}"
            self.count += 1
            self.lines.append((name, source, inputs))
            self.seen[key] = self.sym(self, name, key[1], axes=axes)
            self.seen[key].inputs = inputs
            self.seen[key].source = source
            if kind is not None:
                self.kinds[name] = kind
        return self.seen[key]


class Sym:
    """One element of an array (or a number computed from them), of ``dtype``."""

    device = "cpu"
    axes: tuple[Any, ...] = ()
    __array_priority__ = 1000  # NumPy scalars defer to these operators

    def __init__(self, tape: _Tape, name: str, dtype: np.dtype[Any], weak: bool = False, axes: Any = ()) -> None:
        self.tape, self.name, self.dtype, self.weak = tape, name, dtype, weak
        self.inputs: tuple[Any, ...] = ()
        self.source = name

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def ndim(self) -> int:
        return 0

    @property
    def size(self) -> int:
        return 1

    @staticmethod
    def broadcast(*axes: Any) -> Any:
        return ()

    def __array_namespace__(self, api_version: str | None = None) -> _Namespace:
        return NAMESPACE

    def __bool__(self) -> NoReturn:
        raise Untraceable("a branch on a value")

    __int__ = __float__ = __index__ = __len__ = __iter__ = __bool__

    def __getitem__(self, key: Any) -> NoReturn:
        raise Untraceable("indexing")

    __hash__ = object.__hash__

    # arithmetic
    def __add__(self, o: Any) -> Sym:
        return _binary("+", self, o)

    def __radd__(self, o: Any) -> Sym:
        return _binary("+", o, self)

    def __sub__(self, o: Any) -> Sym:
        return _binary("-", self, o)

    def __rsub__(self, o: Any) -> Sym:
        return _binary("-", o, self)

    def __mul__(self, o: Any) -> Sym:
        return _binary("*", self, o)

    def __rmul__(self, o: Any) -> Sym:
        return _binary("*", o, self)

    def __truediv__(self, o: Any) -> Sym:
        return _binary("/", self, o)

    def __rtruediv__(self, o: Any) -> Sym:
        return _binary("/", o, self)

    def __pow__(self, o: Any) -> Sym:
        return _binary("**", self, o)

    def __rpow__(self, o: Any) -> Sym:
        return _binary("**", o, self)

    def __neg__(self) -> Sym:
        return _unary("-{}", self)

    def __pos__(self) -> Sym:
        return self

    def __abs__(self) -> Sym:
        return _unary("abs({})", self)

    # comparisons and logic give booleans
    def __lt__(self, o: Any) -> Sym:
        return _binary("<", self, o, boolean=True)

    def __le__(self, o: Any) -> Sym:
        return _binary("<=", self, o, boolean=True)

    def __gt__(self, o: Any) -> Sym:
        return _binary(">", self, o, boolean=True)

    def __ge__(self, o: Any) -> Sym:
        return _binary(">=", self, o, boolean=True)

    def __eq__(self, o: object) -> Any:
        return _binary("==", self, o, boolean=True)

    def __ne__(self, o: object) -> Any:
        return _binary("!=", self, o, boolean=True)

    def __and__(self, o: Any) -> Sym:
        return _logic("&", self, o)

    __rand__ = __and__

    def __or__(self, o: Any) -> Sym:
        return _logic("|", self, o)

    __ror__ = __or__

    def __invert__(self) -> Sym:
        if self.dtype != np.bool_:
            raise Untraceable("~ of a number")
        return self.tape.emit(f"not {self.name}", np.bool_, (self,))


def _tape(*xs: Any) -> _Tape:
    for x in xs:
        if isinstance(x, Sym):
            return x.tape
    raise Untraceable("no symbol")


def _operand(x: Any, dtype: Any) -> str:
    """Source of ``x`` in ``dtype``: a symbol cast if needed, a number as a constant."""
    if isinstance(x, Sym):
        return x.name if x.dtype == dtype else f"{_caster(dtype)}({x.name})"
    if isinstance(x, (bool, np.bool_)) and dtype == np.bool_:
        return repr(bool(x))
    if isinstance(x, (numbers.Real, np.generic)):
        v = float(x)
        text = "np.nan" if v != v else "np.inf" if v == np.inf else "-np.inf" if v == -np.inf else repr(v)
        return f"{_caster(dtype)}({text})"
    raise Untraceable(f"an operand of type {type(x).__name__}")


def _caster(dtype: Any) -> str:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "np.bool_"
    if dtype.name not in _FLOATS and dtype.kind not in "iu":
        raise Untraceable(f"dtype {dtype}")
    return f"np.{dtype.name}"


def _dtype_of(*xs: Any) -> np.dtype[Any]:
    """NumPy's promotion, a Python number (weak) taking the other's dtype."""
    strong = [np.dtype(x.dtype) for x in xs if isinstance(x, Sym) and not x.weak]
    strong += [
        np.asarray(x).dtype for x in xs if isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0)
    ]
    if strong:
        dtype = np.result_type(*strong)
        if dtype.kind in "biu" and any(isinstance(x, float) or (isinstance(x, Sym) and x.weak) for x in xs):
            raise Untraceable("an integer element with a float")
        return dtype
    return np.dtype(np.float64)


def _binary(op: str, a: Any, b: Any, boolean: bool = False) -> Sym:
    tape = _tape(a, b)
    dtype = _dtype_of(a, b)
    if op == "/" and dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    if op == "**" and not isinstance(b, Sym) and float(b) == 2.0:
        src = f"{_operand(a, dtype)} * {_operand(a, dtype)}"
    else:
        src = f"{_operand(a, dtype)} {op} {_operand(b, dtype)}"
    if not boolean and dtype != np.bool_:
        src = f"{_caster(dtype)}({src})"
    out = tape.emit(src, np.bool_ if boolean else dtype, (a, b))
    # Numbers only (Python numbers, the options' parameters) stay weak.
    out.weak = not boolean and not any(
        isinstance(x, (Sym, np.generic)) and not getattr(x, "weak", False) for x in (a, b)
    )
    return out


def _logic(op: str, a: Any, b: Any) -> Sym:
    if not all(isinstance(x, Sym) and x.dtype == np.bool_ or isinstance(x, bool) for x in (a, b)):
        raise Untraceable(f"{op} of numbers")
    return _tape(a, b).emit(f"{_operand(a, np.bool_)} {op} {_operand(b, np.bool_)}", np.bool_, (a, b))


def _unary(template: str, x: Any, dtype: Any = None) -> Sym:
    if not isinstance(x, Sym):
        raise Untraceable("a function of a constant")
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    return x.tape.emit(template.format(x.name), dtype, (x,))


def _float_fn(name: str) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        if not isinstance(x, Sym):
            return getattr(np, name)(x)
        if x.dtype.name not in _FLOATS:
            raise Untraceable(f"{name} of {x.dtype}")
        return _unary(f"np.{x.dtype.name}(FN_{name}({{}}))", x)

    return fn


def _select(c: Any, a: Any, b: Any) -> Sym:
    tape = _tape(c, a, b)
    dtype = _dtype_of(a, b)
    return tape.emit(
        f"{_operand(a, dtype)} if {_operand(c, np.bool_)} else {_operand(b, dtype)}", dtype, (c, a, b), kind="select"
    )


def _extreme(which: str) -> Callable[[Any, Any], Any]:
    # NaN propagates, as in the standard's minimum/maximum: a NaN on either side wins.
    def fn(a: Any, b: Any) -> Any:
        if not isinstance(a, Sym) and not isinstance(b, Sym):
            return getattr(np, which)(a, b)
        tape = _tape(a, b)
        dtype = _dtype_of(a, b)
        x, y = _operand(a, dtype), _operand(b, dtype)
        cmp = "<" if which == "minimum" else ">"
        src = f"({x} if (({x} {cmp} {y}) | ({x} != {x})) else {y})"
        return tape.emit(src, dtype, (a, b))

    return fn


class _Namespace:
    """The part of the Array API an elementwise definition uses, on symbols."""

    __name__ = "anyloss._accel.trace"
    bool = np.dtype(np.bool_)
    float32 = np.dtype(np.float32)
    float64 = np.dtype(np.float64)
    int32 = np.dtype(np.int32)
    int64 = np.dtype(np.int64)
    # mypy takes dask.array's module-level `except ImportError as e` for its
    # `from numpy import e` and marks numpy's `e` deleted for the rest of the run
    # (only where dask is installed and checked first, hence unused-ignore).
    pi, e, inf, nan = np.pi, np.e, np.inf, np.nan  # type: ignore[misc, unused-ignore]

    minimum = staticmethod(_extreme("minimum"))
    maximum = staticmethod(_extreme("maximum"))
    where = staticmethod(_select)

    def __getattr__(self, name: str) -> Any:
        if name in _FLOAT_FUNCTIONS:
            return _float_fn(name)
        raise AttributeError(name)  # hasattr() is False; a call fails the trace

    @staticmethod
    def isdtype(dtype: Any, kind: Any) -> Any:
        import array_api_compat.numpy as xnp

        return xnp.isdtype(np.dtype(dtype), kind)  # type: ignore[attr-defined]  # re-exported by a computed __all__

    @staticmethod
    def result_type(*args: Any) -> Any:
        return np.result_type(*[a.dtype if isinstance(a, Sym) else a for a in args])

    @staticmethod
    def sum(x: Any, axis: Any = None, dtype: Any = None, keepdims: Any = False) -> Total:
        if axis is not None or not isinstance(x, Sym):
            raise Untraceable("a sum along an axis, or of a constant")
        return Total(x)

    @staticmethod
    def finfo(dtype: Any) -> Any:
        return np.finfo(dtype.dtype if isinstance(dtype, Sym) else dtype)

    @staticmethod
    def astype(x: Any, dtype: Any, copy: Any = True) -> Sym:
        dtype = np.dtype(dtype)
        if not isinstance(x, Sym):
            raise Untraceable("astype of a constant")
        if x.dtype == dtype and not x.weak:
            return x
        return x.tape.emit(f"{_caster(dtype)}({x.name})", dtype, (x,))

    @staticmethod
    def asarray(x: Any, dtype: Any = None, device: Any = None, copy: Any = None) -> Sym:
        if isinstance(x, Sym):
            return x if dtype is None else _Namespace.astype(x, dtype)
        return _Constant(x, dtype)

    @staticmethod
    def abs(x: Any) -> Any:
        return abs(x)

    @staticmethod
    def negative(x: Any) -> Any:
        return -x

    @staticmethod
    def square(x: Any) -> Any:
        return x * x

    @staticmethod
    def sign(x: Any) -> Sym:
        if not isinstance(x, Sym):
            raise Untraceable("sign of a constant")
        z = _operand(0, x.dtype)
        return x.tape.emit(
            f"{_caster(x.dtype)}((({x.name} > {z}) * 1.0 - ({x.name} < {z}) * 1.0) if {x.name} == {x.name} else {x.name})",
            x.dtype,
            (x,),
        )

    @staticmethod
    def clip(x: Any, min: Any = None, max: Any = None) -> Any:
        if min is not None:
            x = _Namespace.maximum(x, min)
        if max is not None:
            x = _Namespace.minimum(x, max)
        return x

    @staticmethod
    def isnan(x: Any) -> Any:
        return x != x

    @staticmethod
    def logical_not(x: Any) -> Any:
        return ~x

    @staticmethod
    def logical_and(a: Any, b: Any) -> Any:
        return a & b

    @staticmethod
    def logical_or(a: Any, b: Any) -> Any:
        return a | b

    @staticmethod
    def broadcast_to(x: Any, shape: Any) -> Any:
        return x

    @staticmethod
    def reshape(x: Any, shape: Any, copy: Any = None) -> Any:
        # An element keeps its value in any shape of one element (a definition's
        # residual shapes are the element's own, ()).
        if math.prod(shape) != 1:
            raise Untraceable("a reshape to more than one element")
        return x

    @staticmethod
    def zeros(shape: Any, dtype: Any = None, device: Any = None) -> Sym:
        return _full(shape, 0.0, dtype)

    @staticmethod
    def ones(shape: Any, dtype: Any = None, device: Any = None) -> Sym:
        return _full(shape, 1.0, dtype)

    @staticmethod
    def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None) -> Sym:
        return _full(shape, fill_value, dtype)

    @staticmethod
    def zeros_like(x: Any, dtype: Any = None, device: Any = None) -> Sym:
        return _Constant(0.0, x.dtype if dtype is None else dtype)

    @staticmethod
    def ones_like(x: Any, dtype: Any = None, device: Any = None) -> Sym:
        return _Constant(1.0, x.dtype if dtype is None else dtype)

    @staticmethod
    def full_like(x: Any, fill_value: Any, dtype: Any = None, device: Any = None) -> Sym:
        return _Constant(fill_value, x.dtype if dtype is None else dtype)


_FLOAT_FUNCTIONS: tuple[str, ...] = ("exp", "expm1", "log", "log1p", "sqrt", "tanh", "sin", "cos")


def _full(shape: Any, value: Any, dtype: Any) -> Sym:
    if tuple(shape) != ():
        raise Untraceable("an array constant")
    return _Constant(value, dtype)


# The tape a constant belongs to: the trace in progress (one at a time per thread).
_CURRENT: dict[int, _Tape] = {}


def _Constant(value: Any, dtype: Any) -> Sym:
    """A constant as a symbol of the trace in progress (so that it has a dtype)."""
    import threading

    tape = _CURRENT.get(threading.get_ident())
    if tape is None:
        raise Untraceable("a constant outside a trace")
    if isinstance(value, Sym):
        raise Untraceable("a constant from a symbol")
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    return tape.emit(_operand(value, dtype), dtype, ())


NAMESPACE = _Namespace()


class Total:
    """``xp.sum`` of every element of ``of``: the divisor of a weighted 'mean'."""

    def __init__(self, of: Any) -> None:
        self.of = of


class Body:
    """Straight-line scalar code of one element: ``lines`` of ``name = source``
    computing ``outputs`` (names) from ``inputs`` (names) and ``params`` (names).
    ``divisor``: the name of the element whose total divides a weighted 'mean'
    (its cotangent the parameter ``gd``), or ``None``."""

    def __init__(
        self,
        lines: list[tuple[str, str]],
        inputs: list[str],
        params: list[str],
        outputs: list[str | None],
        dtypes: list[Any],
        divisor: str | None = None,
    ) -> None:
        self.lines, self.inputs, self.params, self.outputs, self.dtypes = lines, inputs, params, outputs, dtypes
        self.divisor = divisor
        # A row's body (rows.py): each line's symbol (its axes, its inputs), and
        # the lines that are reductions ("reduce") or totals over rows ("total").
        self.syms: dict[str, Sym] = {}
        self.kinds: dict[str, str] = {}

    @property
    def functions(self) -> set[str]:
        """The functions the body calls (``FN_<name>``: exp, log, sqrt...)."""
        import re

        return {m for _, src in self.lines for m in re.findall(r"FN_(\w+)\(", src)}


def numeric_options(options: Any) -> dict[str, Any]:
    """The options traced as parameters of a kernel: the (non-integer) numbers
    other than 0 (a 0 often switches a term off: ``label_smoothing``)."""
    return {
        k: v
        for k, v in options.items()
        if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) and v != 0
    }


def trace(
    spec: Any,
    dtypes: Sequence[Any],
    options: Any,
    computed: Any,
    wanted: Sequence[Any],
    *,
    params: bool = True,
    mean: bool = False,
    row: Any = None,
) -> Body:
    """The scalar body of ``spec``'s fwd then bwd at one element of arrays of
    ``dtypes`` (``None``: an absent optional array), the cotangent ``g`` a
    parameter; outputs: the loss, then the gradient of each wanted array
    (``None`` where the definition gives none). Under ``mean``, a divisor that
    is the total of an element (the weight) is kept, its cotangent the
    parameter ``gd``. ``row``: a ``rows.Row``, to trace one row of a row-wise
    loss instead (its 'mean' divisor is not traced: ``Body.divisor`` is
    ``"rows"`` where the loss has one). Raises :class:`Untraceable`."""
    import threading

    from .. import _xp  # noqa: F401  (the helpers the definitions call see these symbols)

    tape = _Tape() if row is None else row.tape()
    namespace = NAMESPACE if row is None else row.namespace
    key = threading.get_ident()
    _CURRENT[key] = tape
    try:
        if row is None:
            inputs = [None if d is None else Sym(tape, f"a{k}", np.dtype(d)) for k, d in enumerate(dtypes)]
        else:
            inputs = [None if d is None else row.input(tape, k, np.dtype(d)) for k, d in enumerate(dtypes)]
        numeric: dict[str, Sym] = {}
        opts = dict(options)
        if params:
            for name in numeric_options(options):
                numeric[name] = tape.sym(tape, f"p_{name}", np.dtype(np.float64), weak=True)
                opts[name] = numeric[name]
        try:
            fwd = spec.run_fwd(namespace, tuple(inputs), opts, computed)
        except Untraceable:
            raise
        except Exception as e:  # a definition that needs more than one element
            raise Untraceable(f"{type(e).__name__}: {e}") from e
        if not isinstance(fwd.loss, Sym):
            raise Untraceable("a constant loss")
        loss = fwd.loss
        g = tape.sym(tape, "g", loss.dtype, axes=loss.axes)
        divisor: Sym | None
        gd: Sym | None
        divisor = gd = None
        if mean and fwd.divisor is not None and row is None:
            if not (isinstance(fwd.divisor, Total) and isinstance(fwd.divisor.of, Sym)):
                raise Untraceable("a divisor that is not the total of an element")
            divisor, gd = fwd.divisor.of, Sym(tape, "gd", loss.dtype)
        grads = (None,) * len(dtypes)
        if any(wanted):
            try:
                grads = spec.run_bwd(namespace, fwd.res, g, opts, computed, g_divisor=gd, wanted=tuple(wanted))
            except Untraceable:
                raise
            except Exception as e:
                raise Untraceable(f"{type(e).__name__}: {e}") from e
        outs: list[Sym | None] = [loss]
        for k, w in enumerate(wanted):
            ct = grads[k] if w else None
            if ct is not None and not isinstance(ct, Sym):
                if isinstance(ct, numbers.Real) and float(ct) == 0.0:
                    ct = _Constant(0.0, dtypes[k])
                else:
                    raise Untraceable("a gradient that is not an element")
            outs.append(ct)
    finally:
        _CURRENT.pop(key, None)
    live = [o.name for o in outs if o is not None] + ([divisor.name] if divisor is not None else [])
    lines = _live(tape.lines, live)
    body = Body(
        lines,
        [f"a{k}" for k, d in enumerate(dtypes) if d is not None],
        [f"p_{n}" for n in numeric],
        [None if o is None else o.name for o in outs],
        [None if o is None else o.dtype for o in outs],
        None if divisor is None else divisor.name,
    )
    if row is not None:
        if fwd.divisor is not None:
            body.divisor = "rows"
        kept = {name for name, _ in lines}
        body.syms = {s.name: s for s in tape.seen.values() if s.name in kept}
        body.syms.update((o.name, o) for o in outs if o is not None)
        body.kinds = {n: k for n, k in tape.kinds.items() if n in kept}
    return body


def _live(lines: list[tuple[str, str, tuple[Any, ...]]], outputs: list[str]) -> list[tuple[str, str]]:
    """The lines the outputs need, in order."""
    needed = set(outputs)
    keep = []
    for name, src, inputs in reversed(lines):
        if name in needed:
            keep.append((name, src))
            needed.update(x.name for x in inputs if isinstance(x, Sym))
    return keep[::-1]
