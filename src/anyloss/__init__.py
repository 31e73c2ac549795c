"""anyloss: every PyTorch loss, with exactly PyTorch's numbers and analytic
gradients, on any Array API library (NumPy by default).

``import anyloss.functional as F`` for the functions; the ``torch.nn``-style
classes live here, with ``value_and_grad``, ``grad``, ``vjp`` and the registry.
"""

from . import functional
from ._autodiff import grad, value_and_grad, vjp
from ._spec import LossSpec, losses
from .losses import MSELoss

__version__ = "0.1.0"

__all__ = [
    "functional", "grad", "value_and_grad", "vjp", "LossSpec", "losses",
    "MSELoss",
]
