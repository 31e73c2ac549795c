"""Accelerators: faster ways to compute a loss's value and wanted gradients on
eager, concrete arrays, each the loss's own definition run differently.

* ``kernels``: optional numba kernels (the ``fast`` extra): one compiled pass
  for an elementwise loss (``Hints.elementwise``), generated from its own
  ``fwd``/``bwd`` (``trace``).
* ``recurrence``: the ``scan``/``repeat`` a recursive definition (``ctc_loss``)
  calls; on NumPy with numba, a compiled loop generated from its step.
* ``blocks``: the loss's ``fwd``/``bwd`` on row blocks that stay in cache
  (``Hints.rows``), on ``anyloss.configure(threads=...)`` threads; with
  numba, first ``rows``: one compiled loop over the rows generated from the
  same ``fwd``/``bwd`` (``trace``).

A loss says which apply in one place, its spec's ``accel`` (:class:`Hints`).

The engine asks :func:`run` first; it returns ``None`` where no accelerator
applies, and the loss's ``fwd`` then runs whole. Nothing here applies to
arrays whose values cannot be read now: JAX tracers, Dask, and PyTorch tensors
under ``torch.compile``, ``torch.func`` transforms, or off the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _xp
from .._typing import Namespace
from . import blocks, kernels, rows


@dataclass(frozen=True)
class Hints:
    """What the accelerators may use of a loss (``LossSpec.accel``); each ``None``: not that one."""

    # rows: the arrays whose axis 0 is the batch axis, each with its number of
    # dimensions relative to the first array ({"input": 0, "target": -1}), for a
    # loss whose row i depends only on row i of those (and the other arrays
    # whole): it may then be computed by row blocks (blocks.py).
    rows: dict[str, Any] | None = None
    # rows_divisor(xp, arrays, options, computed) -> float | None: the 'mean'
    # divisor of the whole call, for a loss computed by row blocks whose fwd
    # returns a divisor (each block's fwd only sees its rows).
    rows_divisor: Callable[..., Any] | None = None
    # blocks: whether the row blocks pay for this loss; not for one that reads one
    # element per row (nll_loss: a block's zeros and scatter would only add passes
    # over the gradient), which still gets the compiled row kernel (rows.py).
    blocks: bool = True
    # elementwise: the loss at element n depends only on element n of each
    # array (after broadcasting), and its fwd/bwd are elementwise code: the
    # compiled one-pass kernel (kernels.py) is generated from them (trace.py).
    elementwise: bool = False
    # views(shapes) -> shapes: for an elementwise loss whose arrays broadcast by a
    # rule of their own (gaussian_nll_loss's var of input's shape without its last
    # dimension stands for a column), the shapes in which they broadcast as
    # NumPy's arrays do; None: their own.
    views: Callable[..., Any] | None = None


def run(spec: Any, xp: Namespace, arrays: Any, reduction: Any, options: Any, computed: Any, wanted: Any) -> Any:
    """``(value, cotangents)`` of the reduced loss, the cotangents for the
    cotangent 1 of the value (``None`` where not ``wanted``); or ``None``."""
    if _xp.is_lazy(arrays[0]) or _xp.any_complex(xp, arrays):
        return None
    by_rows = rows.eligible(spec, arrays, reduction) and (not any(wanted) or spec.has_gradient(options))
    # The elementwise kernel, but where it would first broadcast an array into a
    # copy of the full shape and the row kernel reads that array as it is (one
    # variance per row: 3-7x faster, measured).
    if kernels.eligible(spec, arrays, reduction) and not (by_rows and kernels.copies(spec, arrays)):
        out = kernels.run(spec, arrays, reduction, options, computed, wanted)
        if out is not None:
            return out
    if by_rows:
        out = rows.run(spec, xp, arrays, reduction, options, computed, wanted)
        if out is not None:
            return out
    if blocks.eligible(spec, arrays, reduction) and (not any(wanted) or spec.has_gradient(options)):
        try:
            return blocks.run(spec, xp, arrays, reduction, options, computed, wanted)
        except blocks.Fallback:
            return None
    return None
