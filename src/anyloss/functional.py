"""``import anyloss.functional as F``: the functional form of every loss,
under its ``torch.nn.functional`` name. One re-export line per loss."""

from .losses.mse_loss import mse_loss

__all__ = [
    "mse_loss",
]
