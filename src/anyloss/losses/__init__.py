"""The index of built-in losses: one module per loss, named after its
``torch.nn.functional`` function. Importing a module registers its loss."""

from .mse_loss import MSELoss, mse_loss

__all__ = [
    "mse_loss", "MSELoss",
]
