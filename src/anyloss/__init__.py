"""anyloss: every PyTorch loss, with exactly PyTorch's numbers and analytic
gradients, on any Array API library (NumPy by default).

``import anyloss.functional as F`` for the functions; the ``torch.nn``-style
classes live here, with ``value_and_grad``, ``grad``, ``vjp`` and the registry.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from . import functional
from ._config import configure
from ._checks import TypeNotImplementedError, TypeRuntimeError, ValueIndexError, ValueRuntimeError
from ._autodiff import grad, value_and_grad, vjp
from ._register import register, unregister
from ._spec import LossSpec, losses
from .losses import *  # noqa: F403 -- every loss class, from the index (anyloss.losses)
from .losses import CLASSES

if _TYPE_CHECKING:  # the classes `import *` brings, named for type checkers (the index's __all__ is computed)
    from .losses.l1_loss import L1Loss as L1Loss
    from .losses.mse_loss import MSELoss as MSELoss
    from .losses.smooth_l1_loss import SmoothL1Loss as SmoothL1Loss
    from .losses.huber_loss import HuberLoss as HuberLoss
    from .losses.soft_margin_loss import SoftMarginLoss as SoftMarginLoss
    from .losses.binary_cross_entropy import BCELoss as BCELoss
    from .losses.binary_cross_entropy_with_logits import BCEWithLogitsLoss as BCEWithLogitsLoss
    from .losses.poisson_nll_loss import PoissonNLLLoss as PoissonNLLLoss
    from .losses.gaussian_nll_loss import GaussianNLLLoss as GaussianNLLLoss
    from .losses.kl_div import KLDivLoss as KLDivLoss
    from .losses.margin_ranking_loss import MarginRankingLoss as MarginRankingLoss
    from .losses.hinge_embedding_loss import HingeEmbeddingLoss as HingeEmbeddingLoss
    from .losses.cosine_embedding_loss import CosineEmbeddingLoss as CosineEmbeddingLoss
    from .losses.triplet_margin_loss import TripletMarginLoss as TripletMarginLoss
    from .losses.triplet_margin_with_distance_loss import TripletMarginWithDistanceLoss as TripletMarginWithDistanceLoss
    from .losses.multi_margin_loss import MultiMarginLoss as MultiMarginLoss
    from .losses.multilabel_margin_loss import MultiLabelMarginLoss as MultiLabelMarginLoss
    from .losses.multilabel_soft_margin_loss import MultiLabelSoftMarginLoss as MultiLabelSoftMarginLoss
    from .losses.nll_loss import NLLLoss as NLLLoss
    from .losses.nll_loss import NLLLoss2d as NLLLoss2d
    from .losses.cross_entropy import CrossEntropyLoss as CrossEntropyLoss
    from .losses.ctc_loss import CTCLoss as CTCLoss
    from .losses.linear_cross_entropy import LinearCrossEntropyLoss as LinearCrossEntropyLoss
    from .losses.adaptive_log_softmax_with_loss import AdaptiveLogSoftmaxWithLoss as AdaptiveLogSoftmaxWithLoss
from .losses._distance import Distance
from . import extras  # after the PyTorch catalogue: anyloss.losses() lists the extras last

# The one source of the version: pyproject.toml reads it from here (setuptools, without
# importing the package), `anyloss --version` prints it; CHANGELOG.md says what each one holds.
__version__ = "0.1.0"

__all__ = [
    "functional",
    "extras",
    "configure",
    "grad",
    "value_and_grad",
    "vjp",
    "LossSpec",
    "losses",
    "register",
    "unregister",
    "Distance",
    "ValueRuntimeError",
    "ValueIndexError",
    "TypeRuntimeError",
    "TypeNotImplementedError",
    *CLASSES,
]


def __getattr__(name: str) -> _Any:
    # The tooling modules load on first use: they import optional libraries
    # (matplotlib, Dask, ...) only when called, and `import anyloss` stays light.
    if name in ("plot", "stream", "compat"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
