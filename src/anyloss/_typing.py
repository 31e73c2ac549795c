"""The types of anyloss's public API.

``Array`` is any Array API array: NumPy arrays, PyTorch tensors, JAX arrays, Dask
and CuPy arrays, array-api-strict arrays. anyloss reads only what every such array
has (``shape``, ``dtype``, ``ndim``); the rest goes through the array's own
namespace, so a static checker accepts each library's arrays as they are.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Array", "KLDivReduction", "Namespace", "Reduction"]


@runtime_checkable
class Array(Protocol):
    """An array of any Array API library (structural: no base class to inherit)."""

    @property
    def shape(self) -> Any: ...

    @property
    def dtype(self) -> Any: ...

    @property
    def ndim(self) -> int: ...


# The reductions of torch.nn.functional's losses.
Reduction = Literal["none", "mean", "sum"]
# kl_div's, with the KL divergence per sample.
KLDivReduction = Literal["none", "batchmean", "sum", "mean"]

# An array library's namespace (``numpy``, ``torch``, ``jax.numpy``, array-api-strict,
# array-api-compat's wrappers): modules with no common base a static type could
# name, whose functions each library types its own way. The losses' internals call
# it as the standard describes; a checker can say nothing more about it than Any.
Namespace = Any
