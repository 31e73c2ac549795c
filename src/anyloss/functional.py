"""``import anyloss.functional as F``: the functional form of every loss,
under its ``torch.nn.functional`` name. One re-export line per loss; the
names are the index's (``anyloss.losses``), and a missing line fails ``test_surface``.
``name as name``: an explicit re-export, which type checkers read (``__all__`` is built)."""

from .losses.l1_loss import l1_loss as l1_loss
from .losses.mse_loss import mse_loss as mse_loss
from .losses.smooth_l1_loss import smooth_l1_loss as smooth_l1_loss
from .losses.huber_loss import huber_loss as huber_loss
from .losses.soft_margin_loss import soft_margin_loss as soft_margin_loss
from .losses.binary_cross_entropy import binary_cross_entropy as binary_cross_entropy
from .losses.binary_cross_entropy_with_logits import (
    binary_cross_entropy_with_logits as binary_cross_entropy_with_logits,
)
from .losses.poisson_nll_loss import poisson_nll_loss as poisson_nll_loss
from .losses.gaussian_nll_loss import gaussian_nll_loss as gaussian_nll_loss
from .losses.kl_div import kl_div as kl_div
from .losses.margin_ranking_loss import margin_ranking_loss as margin_ranking_loss
from .losses.hinge_embedding_loss import hinge_embedding_loss as hinge_embedding_loss
from .losses.cosine_embedding_loss import cosine_embedding_loss as cosine_embedding_loss
from .losses.triplet_margin_loss import triplet_margin_loss as triplet_margin_loss
from .losses.triplet_margin_with_distance_loss import (
    triplet_margin_with_distance_loss as triplet_margin_with_distance_loss,
)
from .losses.multi_margin_loss import multi_margin_loss as multi_margin_loss
from .losses.multilabel_margin_loss import multilabel_margin_loss as multilabel_margin_loss
from .losses.multilabel_soft_margin_loss import multilabel_soft_margin_loss as multilabel_soft_margin_loss
from .losses.nll_loss import nll_loss as nll_loss
from .losses.cross_entropy import cross_entropy as cross_entropy
from .losses.ctc_loss import ctc_loss as ctc_loss
from .losses.linear_cross_entropy import linear_cross_entropy as linear_cross_entropy

from .losses import FUNCTIONS

__all__ = list(FUNCTIONS)
