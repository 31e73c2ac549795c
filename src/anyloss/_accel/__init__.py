"""Accelerators: faster ways to compute a loss's value and wanted gradients on
eager, concrete arrays, each the loss's own definition run differently.

* ``kernels``: optional numba kernels (the ``fast`` extra): one compiled pass
  for an elementwise loss that gives its point form (``LossSpec.point``), and
  compiled whole ``fwd``/``bwd`` forms for a recursion (``LossSpec.compiled``).
* ``blocks``: the loss's ``fwd``/``bwd`` on row blocks that stay in cache
  (``LossSpec.rows``), on ``anyloss.configure(threads=...)`` threads.

The engine asks :func:`run` first; it returns ``None`` where no accelerator
applies, and the loss's ``fwd`` then runs whole. Nothing here applies to
arrays whose values cannot be read now: JAX tracers, Dask, and PyTorch tensors
under ``torch.compile``, ``torch.func`` transforms, or off the CPU.
"""

from __future__ import annotations

from .. import _xp
from . import blocks, kernels


def run(spec, xp, arrays, reduction, options, computed, wanted):
    """``(value, cotangents)`` of the reduced loss, the cotangents for the
    cotangent 1 of the value (``None`` where not ``wanted``); or ``None``."""
    if _xp.is_lazy(arrays[0]):
        return None
    if kernels.eligible(spec, arrays, reduction, options):
        return kernels.run(spec, arrays, reduction, options, wanted)
    if blocks.eligible(spec, arrays, reduction) and (not any(wanted) or spec.has_gradient(options)):
        try:
            return blocks.run(spec, xp, arrays, reduction, options, computed, wanted)
        except blocks.Fallback:
            return None
    return None


def compiled_forms(spec, arrays):
    """The loss's compiled ``(fwd, bwd)`` for these arrays, or ``None``."""
    if spec.compiled is None or _xp.is_lazy(arrays[0]):
        return None
    return spec.compiled if kernels.compiled_eligible(spec, arrays) else None
