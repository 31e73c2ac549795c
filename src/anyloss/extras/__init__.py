"""``anyloss.extras``: losses outside PyTorch's catalogue, built on ``anyloss.register``.

Focal, Dice, Jaccard, Tversky and z-loss: each is an ``anyloss.register``
loss (an Array-API forward on the unreduced loss and its analytic gradient),
so it has the reductions, checks, every backend, ``value_and_grad``, the
PyTorch/JAX bridges and ``anyloss list/show/check`` of the built-ins. Each
docstring names its reference (paper, or ``torchvision.ops``). They are
registered under the catalogue ``"extras"`` (``LossSpec.catalogue``).

Options are keyword-only. Label-smoothed cross-entropy is not here: it is
``anyloss.functional.cross_entropy(..., label_smoothing=eps)``.
"""

from .sigmoid_focal_loss import sigmoid_focal_loss
from .softmax_focal_loss import softmax_focal_loss
from .dice_loss import dice_loss
from .dice_bce_loss import dice_bce_loss
from .jaccard_loss import jaccard_loss
from .tversky_loss import tversky_loss
from .z_loss_cross_entropy import z_loss_cross_entropy

__all__ = [
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "dice_loss",
    "dice_bce_loss",
    "jaccard_loss",
    "tversky_loss",
    "z_loss_cross_entropy",
]
