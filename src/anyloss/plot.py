"""Loss and gradient curves: the code behind ``anyloss plot`` and the docs' plots.

    >>> from anyloss import plot
    >>> plot.save(["smooth_l1_loss", "l1_loss"], "smooth_l1_vs_l1.png", grad=True)  # doctest: +SKIP

:func:`curves` gives the numbers (NumPy only), :func:`figure` draws them with
matplotlib (``pip install 'anyloss[plot]'``), :func:`save` writes a PNG or SVG.
Importing this module does not import matplotlib.

**How a loss becomes a curve.** Each loss's ``LossSpec.curve`` maps a 1-D
float64 array ``x`` to the loss's arguments::

    curve(xp, x, **options) -> Curve(args, label, tangents=None, domain=None)

(a plain tuple of those fields works too). ``args`` are the loss's positional
arrays for ``N = len(x)`` independent samples, sample ``n`` made from ``x[n]``;
the loss at ``x[n]`` is row ``n`` of its ``reduction='none'`` output, summed
over any further axes (``kl_div``'s classes). ``label`` says what ``x`` is (the
error ``input - target``, the margin, a logit...). ``tangents``,
``{position: d args[position] / dx}``, say how ``x`` enters the arrays (each
tangent has that array's shape, or is a scalar): the derivative curve is the
loss's **own analytic gradient** of those arrays (``anyloss.vjp``) projected
on them, so it shows exactly what training sees, kinks and clamps included.
The default ``{0: 1}`` says ``x`` is the first array. ``domain``,
``(low, high)``, is where ``x`` may go: outside it the curve has a gap, and the
default range is clipped to it. The curve may take any of the loss's options
as keyword parameters (``log_input`` for ``poisson_nll_loss``) to see their
values (``params`` or the defaults it declares).

A loss without ``curve`` is elementwise: ``x`` is its first array and its other
required arrays are zeros like ``x``. ``curve=False`` says the loss has no 1-D
curve (``ctc_loss``); :func:`curves` then raises ``ValueError``. A user's loss
passes ``curve=`` to ``anyloss.register``, e.g. a margin loss::

    curve=lambda xp, x: ((x, xp.ones_like(x)), "margin target * input")
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._checks import fail
from ._spec import Curve, LossSpec, losses
from ._typing import Namespace

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Curve", "CurveData", "curves", "figure", "save"]

DEFAULT_RANGE = (-3.0, 3.0)
FORMATS = (".png", ".svg")
# Parameters of a loss's functional that are not options of its curve.
_NOT_OPTIONS = frozenset({"reduction", "size_average", "reduce"})
_INSTALL = "pip install 'anyloss[plot]'"


class CurveData(NamedTuple):
    """One loss's curve: ``y[i]`` is the loss at ``x[i]`` and ``dy[i]`` its
    derivative (``None`` without ``grad=True``); NaN outside the loss's domain."""

    name: str
    legend: str
    xlabel: str
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray | None


def curves(
    names: str | Sequence[str],
    *,
    range: tuple[float, float] | None = None,
    params: dict[str, Any] | None = None,
    grad: bool = False,
    num: int = 401,
) -> list[CurveData]:
    """The curves of the losses ``names`` (one name or a list), as NumPy arrays.

    Args:
        names: loss names from ``anyloss.losses()`` (``anyloss list``).
        range: ``(low, high)`` of the abscissa; default ``(-3, 3)``, clipped to
            the domain the losses declare (``(0, 1)`` for probabilities).
        params: options applied to every loss that accepts them, e.g.
            ``{"beta": 0.5}``; an option no named loss accepts is a ``ValueError``.
        grad: also compute the derivative dl/dx from each loss's analytic gradient.
        num: number of points.
    """
    specs = _specs(names)
    params = {} if params is None else params
    if not isinstance(params, dict):
        fail(TypeError, "params", "be a dict of loss options, e.g. {'beta': 0.5}", repr(params))
    accepted = {spec.name: _options(spec) for spec in specs}
    for key in params:
        if not any(key in opts for opts in accepted.values()):
            fail(
                ValueError,
                "params",
                f"name options of {', '.join(s.name for s in specs)} "
                f"({', '.join(sorted(set().union(*accepted.values()))) or 'none'})",
                repr(key),
            )
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        fail(ValueError, "num", "be an int >= 2", repr(num))
    if grad:
        for spec in specs:
            if spec.bwd is None:
                fail(ValueError, "grad", f"be False for {spec.name}, which has no analytic gradient", True)
    opts = {spec.name: {k: v for k, v in params.items() if k in accepted[spec.name]} for spec in specs}
    probe = np.linspace(-1.0, 1.0, 3)
    first = {spec.name: _curve(spec, probe, opts[spec.name]) for spec in specs}
    x = np.linspace(*_range(range, [c.domain for c in first.values()]), num)
    out = []
    for spec in specs:
        low, high = first[spec.name].domain or (-math.inf, math.inf)
        inside = (x >= low) & (x <= high)  # type: ignore[operator]  # _curve made the bounds floats
        y = np.full(num, np.nan)
        dy = np.full(num, np.nan) if grad else None
        if inside.any():
            c = _curve(spec, x[inside], opts[spec.name])
            y[inside], g = _evaluate(spec, c, int(inside.sum()), opts[spec.name], grad)
            if dy is not None:  # grad
                dy[inside] = g
        applied = ", ".join(f"{k}={v!r}" for k, v in opts[spec.name].items())
        legend = f"{spec.name} ({applied})" if applied else spec.name
        out.append(CurveData(spec.name, legend, first[spec.name].label, x, y, dy))
    return out


def figure(
    names: str | Sequence[str],
    *,
    range: tuple[float, float] | None = None,
    params: dict[str, Any] | None = None,
    grad: bool = False,
    num: int = 401,
) -> Figure:
    """A matplotlib ``Figure`` of the losses ``names`` against their error or
    margin, with a legend; ``grad=True`` adds a panel of the derivatives below.
    Arguments as in :func:`curves`. Uses no pyplot: the global backend is untouched."""
    try:
        import matplotlib.figure
    except ImportError as e:
        raise ImportError(f"anyloss.plot needs matplotlib: {_INSTALL}") from e
    data = curves(names, range=range, params=params, grad=grad, num=num)
    height = 5.6 if grad else 4.0
    fig = matplotlib.figure.Figure(figsize=(6.4, height))
    # Fixed margins (in inches) rather than a layout engine: a third of the time of constrained layout.
    fig.subplots_adjust(
        left=0.85 / 6.4,
        right=1 - 0.2 / 6.4,
        bottom=0.55 / height,
        top=1 - (0.4 if len(data) == 1 else 0.15) / height,
        hspace=0.25 / 2.6,
    )
    if grad:
        ax, gax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        axes: tuple[Any, ...] = (ax, gax)
    else:
        ax = fig.subplots()
        axes = (ax,)
    for i, c in enumerate(data):
        # Earlier curves wider, under later ones: where two losses agree both stay visible.
        lw = 2.0 + 1.2 * (len(data) - 1 - i)
        ax.plot(c.x, c.y, color=f"C{i}", lw=lw, label=c.legend)
        if grad:
            gax.plot(c.x, c.dy, color=f"C{i}", lw=lw, label=c.legend)
    for a in axes:
        a.axhline(0.0, color="0.6", lw=0.8, zorder=0)
        a.axvline(0.0, color="0.6", lw=0.8, zorder=0)
        a.grid(True, color="0.92")
        a.margins(x=0)
    ax.set_ylabel("loss  ℓ(x)")
    if len(data) == 1:
        ax.set_title(data[0].legend)
    else:
        ax.legend(frameon=False)
    if grad:
        gax.set_ylabel("gradient  dℓ/dx")
    xlabels = list(dict.fromkeys(c.xlabel for c in data))
    axes[-1].set_xlabel("x: " + "; ".join(xlabels))
    return fig


def save(
    names: str | Sequence[str],
    path: str | os.PathLike[str],
    *,
    range: tuple[float, float] | None = None,
    params: dict[str, Any] | None = None,
    grad: bool = False,
    num: int = 401,
) -> Path:
    """Draw :func:`figure` and write it to ``path`` (``.png`` or ``.svg``, by its
    suffix); return the path. SVG output is reproducible (fixed ids, no date)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        fail(ValueError, "path", "end in .png or .svg", repr(str(path)))
    fig = figure(names, range=range, params=params, grad=grad, num=num)
    import matplotlib

    fmt = path.suffix.lower()[1:]
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "anyloss", "svg.fonttype": "path"}):
        fig.savefig(path, format=fmt, dpi=100, metadata=metadata)
    return path


def _specs(names: Any) -> list[LossSpec]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        fail(TypeError, "names", "be a loss name or a non-empty list of them", repr(names))
    registry = losses()
    for n in names:
        if n not in registry:
            fail(ValueError, "names", "be losses from anyloss.losses() (see `anyloss list`)", repr(n))
    return [registry[n] for n in dict.fromkeys(names)]


def _options(spec: LossSpec) -> set[Any]:
    """The options the loss's functional takes (its non-array parameters)."""
    if spec.functional is None:
        return set()
    try:
        sig = inspect.signature(spec.functional)
    except (TypeError, ValueError):
        return set()
    return {
        p.name
        for p in sig.parameters.values()
        if p.name not in spec.argnames
        and p.name not in _NOT_OPTIONS
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _curve(spec: LossSpec, x: Any, options: dict[str, Any]) -> Curve:
    """``spec.curve`` at ``x`` (or the elementwise default), as a ``Curve``."""
    import array_api_compat.numpy as xp

    if spec.curve is False:
        fail(ValueError, "names", "name losses with a 1-D curve", f"{spec.name!r}, which has no 1-D curve")
    if spec.curve is None:
        return _default_curve(spec, xp, x)
    params = inspect.signature(spec.curve).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        options = {k: v for k, v in options.items() if k in names}
    with np.errstate(all="ignore"):
        c = Curve(*spec.curve(xp, x, **options))
    if c.domain is not None:
        low, high = (
            -math.inf if c.domain[0] is None else float(c.domain[0]),
            math.inf if c.domain[1] is None else float(c.domain[1]),
        )
        c = c._replace(domain=(low, high))
    return c


def _default_curve(spec: LossSpec, xp: Namespace, x: Any) -> Curve:
    """``x`` as the first array, zeros for the other required ones."""
    sig: Mapping[str, inspect.Parameter] = {}
    try:
        if spec.functional is not None:
            sig = inspect.signature(spec.functional).parameters
    except (TypeError, ValueError):
        pass
    args = [x]
    for name in spec.argnames[1:]:
        p = sig.get(name)
        if p is None or p.default is not inspect.Parameter.empty:
            break  # optional arrays (weights) stay out
        args.append(xp.zeros_like(x))
    others = ", ".join(f"{n} = 0" for n in spec.argnames[1 : len(args)])
    return Curve(tuple(args), f"{spec.argnames[0]}" + (f" ({others})" if others else ""))


def _evaluate(spec: LossSpec, c: Curve, n: int, options: dict[str, Any], grad: bool) -> Any:
    """The loss (and its derivative along the tangents) at each of the ``n`` samples."""
    from ._autodiff import vjp

    if spec.functional is None:  # a LossSpec registered without a function to call
        fail(ValueError, "names", "name losses with a function to call", repr(spec.name))
    tangents = {0: 1.0} if c.tangents is None else c.tangents
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the broadcast warning of a user's loss: the curve is per sample
        try:
            if grad:
                out, pullback = vjp(spec.functional, *c.args, argnums=tuple(tangents), reduction="none", **options)
            else:
                out = spec.functional(*c.args, reduction="none", **options)
        except (ValueError, TypeError) as e:
            if spec.curve is not None:
                raise
            fail(
                ValueError,
                "names",
                "name losses with a 1-D curve",
                f"{spec.name!r}, which cannot be drawn elementwise ({e}); give it one with curve= (see anyloss.plot)",
            )
    value = np.asarray(out, dtype=np.float64)
    if value.ndim == 0 or value.shape[0] != n:
        fail(
            ValueError,
            "names",
            "name losses with a 1-D curve",
            f"{spec.name!r}, whose curve gives an output of "
            f"shape {value.shape} for {n} points (one row per point is needed; see anyloss.plot)",
        )
    y = value.reshape(n, -1).sum(axis=1)
    if not grad:
        return y, None
    grads = pullback(np.ones_like(out))
    grads = grads if isinstance(grads, tuple) else (grads,)
    dy = np.zeros(n)
    for (_pos, tangent), g in zip(tangents.items(), grads):
        g = np.asarray(g, dtype=np.float64)
        dy += (g * np.broadcast_to(np.asarray(tangent, dtype=np.float64), g.shape)).reshape(n, -1).sum(axis=1)
    return y, dy


def _range(span: Any, domains: Any) -> tuple[float, float]:
    """The abscissa's range: ``span`` as given, or the default clipped to the domains."""
    if span is not None:
        try:
            low, high = (float(v) for v in span)
        except (TypeError, ValueError):
            fail(ValueError, "range", "be two numbers (low, high)", repr(span))
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            fail(ValueError, "range", "be two finite numbers with low < high", repr(span))
        return low, high
    low, high = -math.inf, math.inf
    for d in domains:
        if d is not None:
            low, high = max(low, d[0]), min(high, d[1])
    if not low < high:
        fail(ValueError, "names", "name losses whose domains overlap (or give `range`)", "disjoint domains")
    lo, hi = max(DEFAULT_RANGE[0], low), min(DEFAULT_RANGE[1], high)
    if lo >= hi:  # a domain beside the default range: take it, extended to the default width if half-open
        width = DEFAULT_RANGE[1] - DEFAULT_RANGE[0]
        lo = low if math.isfinite(low) else high - width
        hi = high if math.isfinite(high) else low + width
    # A bound set by a domain is kept 1% inside: a loss's edge (BCE at p = 0) is often its clamp.
    inset = 0.01 * (hi - lo)
    return (lo + inset if lo == low else lo), (hi - inset if hi == high else hi)
