"""Types for annotating code that calls anyloss.

``Array`` is what every anyloss loss takes and returns: an array of any Array API
library (NumPy, PyTorch, JAX, CuPy, Dask, array-api-strict), matched structurally,
so each library's arrays type-check as they are::

    from anyloss.typing import Array, Reduction
    import anyloss.functional as F

    def my_loss(x: Array, y: Array, reduction: Reduction = "mean") -> Array:
        return F.mse_loss(x, y, reduction=reduction) + F.l1_loss(x, y, reduction=reduction)

``Reduction`` is the ``reduction`` option of the losses (``'none'``, ``'mean'``,
``'sum'``); ``KLDivReduction`` adds ``kl_div``'s ``'batchmean'``. The package ships
``py.typed``: mypy and pyright read the losses' annotations.
"""

from ._typing import Array, KLDivReduction, Reduction

__all__ = ["Array", "Reduction", "KLDivReduction"]
