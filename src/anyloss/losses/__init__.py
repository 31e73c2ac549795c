"""The index of built-in losses: one module per loss, named after its
``torch.nn.functional`` function. Importing a module registers its loss."""

from .l1_loss import L1Loss, l1_loss
from .mse_loss import MSELoss, mse_loss
from .smooth_l1_loss import SmoothL1Loss, smooth_l1_loss
from .huber_loss import HuberLoss, huber_loss
from .soft_margin_loss import SoftMarginLoss, soft_margin_loss
from .binary_cross_entropy import BCELoss, binary_cross_entropy
from .binary_cross_entropy_with_logits import BCEWithLogitsLoss, binary_cross_entropy_with_logits
from .poisson_nll_loss import PoissonNLLLoss, poisson_nll_loss
from .gaussian_nll_loss import GaussianNLLLoss, gaussian_nll_loss
from .kl_div import KLDivLoss, kl_div
from .margin_ranking_loss import MarginRankingLoss, margin_ranking_loss
from .hinge_embedding_loss import HingeEmbeddingLoss, hinge_embedding_loss
from .cosine_embedding_loss import CosineEmbeddingLoss, cosine_embedding_loss
from .triplet_margin_loss import TripletMarginLoss, triplet_margin_loss
from .triplet_margin_with_distance_loss import TripletMarginWithDistanceLoss, triplet_margin_with_distance_loss
from .multi_margin_loss import MultiMarginLoss, multi_margin_loss
from .multilabel_margin_loss import MultiLabelMarginLoss, multilabel_margin_loss
from .multilabel_soft_margin_loss import MultiLabelSoftMarginLoss, multilabel_soft_margin_loss
from .nll_loss import NLLLoss, NLLLoss2d, nll_loss
from .cross_entropy import CrossEntropyLoss, cross_entropy
from .ctc_loss import CTCLoss, ctc_loss
from .linear_cross_entropy import LinearCrossEntropyLoss, linear_cross_entropy
from .adaptive_log_softmax_with_loss import AdaptiveLogSoftmaxWithLoss

# The public names, derived from the imports above (the index): the functions
# (anyloss.functional's) and the classes (anyloss's, which `import *` takes).
_PUBLIC = [
    name
    for name, obj in list(globals().items())
    if not name.startswith("_") and getattr(obj, "__module__", "").startswith(__name__ + ".")
]
FUNCTIONS = tuple(name for name in _PUBLIC if name[0].islower())
CLASSES = tuple(name for name in _PUBLIC if name[0].isupper())
__all__ = list(CLASSES)
