"""Base classes for the ``torch.nn``-style loss objects.

A loss object only holds options: calling it calls the functional form with
them, exactly as ``torch.nn.MSELoss()(x, y)`` calls ``F.mse_loss``. Each class
writes out PyTorch's constructor signature itself (they differ); this base
resolves the legacy ``size_average``/``reduce`` pair and gives the call and the
representation.
"""

from __future__ import annotations

from ._reduction import legacy_reduction


class Loss:
    """Base of every anyloss loss class (PyTorch's ``_Loss``)."""

    reduction: str

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        self.reduction = legacy_reduction(size_average, reduce, reduction, stacklevel=4)

    def forward(self, *args, **kwargs):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WeightedLoss(Loss):
    """A loss with a per-class ``weight`` array (PyTorch's ``_WeightedLoss``)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = weight
