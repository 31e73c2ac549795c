"""Porting help: TensorFlow's, optax's and Keras's losses with *their own* semantics.

anyloss's main namespace follows PyTorch. Code ported from another library
often depends on that library's conventions -- argument order, which axis is
reduced, how probabilities are clipped, what a reduction divides by -- so the
same name gives another number. These modules reproduce the other libraries'
numbers on any Array API library, with analytic gradients:

* :mod:`anyloss.compat.tensorflow` -- ``tf.nn``'s four cross entropies
  (``import anyloss.compat.tensorflow as tf; tf.nn.sigmoid_cross_entropy_with_logits(labels=..., logits=...)``);
* :mod:`anyloss.compat.optax` -- optax 0.2.8's common losses, unreduced;
* :mod:`anyloss.compat.keras` -- Keras 3's loss functions (per sample) and
  loss classes (with Keras's ``reduction``).

None of them needs TensorFlow, optax or Keras installed. :func:`differences`
lists, with code that computes them, the places where each differs from the
PyTorch loss of the same name.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["differences", "keras", "optax", "tensorflow"]


def __getattr__(name: Any) -> Any:  # `from anyloss.compat import keras` without importing all three up front
    if name in ("keras", "optax", "tensorflow"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_HEADER = "import numpy as np\nimport anyloss.functional as F\n"

_DIFFERENCES = [
    {
        "title": "Keras MeanSquaredError(reduction='sum') vs torch mse_loss(reduction='sum')",
        "code": _HEADER
        + """from anyloss.compat import keras

y_true = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
y_pred = np.array([[1.0, 1.0, 1.0], [1.0, 3.0, 1.0]])
print("keras MeanSquaredError(reduction='sum'):", keras.MeanSquaredError(reduction="sum")(y_true, y_pred))
print("torch mse_loss(reduction='sum'):        ", F.mse_loss(y_pred, y_true, reduction="sum"))
print("keras default 'sum_over_batch_size':    ", keras.MeanSquaredError()(y_true, y_pred))
print("torch default 'mean':                   ", F.mse_loss(y_pred, y_true))
""",
        "why": "Keras first averages over the last axis (one loss per sample), then reduces: its 'sum' is the sum "
        "of per-sample means, torch's is the sum of all squared errors (3x larger here). The two means agree.",
    },
    {
        "title": "Binary cross entropy on a saturated probability: Keras clips at 1e-7, torch clamps the log at -100",
        "code": _HEADER
        + """from anyloss.compat import keras

y_true = np.array([[1.0], [1.0]])
y_pred = np.array([[0.0], [0.5]])     # a confident, wrong prediction and an unsure one
print("keras binary_crossentropy:  ", keras.binary_crossentropy(y_true, y_pred))
print("torch binary_cross_entropy: ", F.binary_cross_entropy(y_pred, y_true, reduction="none")[:, 0])
print("means, keras and torch:     ", keras.BinaryCrossentropy()(y_true, y_pred), F.binary_cross_entropy(y_pred, y_true))
""",
        "why": "Keras clips probabilities to [1e-7, 1 - 1e-7], so a wrong certainty costs -log(1e-7) = 16.1; "
        "PyTorch clamps log(p) at -100, so it costs 100. One such sample dominates torch's mean.",
    },
    {
        "title": "KL divergence: torch 'mean' vs 'batchmean' vs optax and Keras (argument order, log space)",
        "code": _HEADER
        + """from anyloss.compat import keras, optax

p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])   # targets (probabilities)
q = np.array([[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])   # predictions (probabilities)
print("torch kl_div(log q, p, 'mean'):      ", F.kl_div(np.log(q), p, reduction="mean"))
print("torch kl_div(log q, p, 'batchmean'): ", F.kl_div(np.log(q), p, reduction="batchmean"))
print("optax kl_divergence(log q, p).mean():", optax.kl_divergence(np.log(q), p).mean())
print("keras KLDivergence()(p, q):          ", keras.KLDivergence()(p, q))
""",
        "why": "torch's 'mean' divides by every element (N x C), not by the batch: only 'batchmean' is the mean KL. "
        "optax takes (log q, p) like torch; Keras takes (p, q), both as probabilities, targets first.",
    },
    {
        "title": "optax integer-label cross entropy with out-of-range labels vs torch cross_entropy",
        "code": _HEADER
        + """from anyloss.compat import optax

logits = np.array([[2.0, 0.5, -1.0], [2.0, 0.5, -1.0], [2.0, 0.5, -1.0]])
labels = np.array([2, -1, 3])      # -1 and 3 are not classes of C = 3
print("optax:", optax.softmax_cross_entropy_with_integer_labels(logits, labels))
try:
    F.cross_entropy(logits, labels, ignore_index=-1, reduction="none")
except ValueError as e:
    print("torch raises:", e)
print("torch, ignore_index=-1, first two rows:", F.cross_entropy(logits[:2], labels[:2], ignore_index=-1, reduction="none"))
""",
        "why": "optax checks nothing: -1 wraps around to the last class (JAX's negative indexing) and 3 gives NaN. "
        "PyTorch raises on a label outside [0, C), and gives 0 to ignore_index (-100 by default).",
    },
    {
        "title": "optax l2_loss is half the squared error",
        "code": _HEADER
        + """from anyloss.compat import optax

predictions, targets = np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 2.0])
print("optax l2_loss:      ", optax.l2_loss(predictions, targets))
print("optax squared_error:", optax.squared_error(predictions, targets))
print("torch mse_loss none:", F.mse_loss(predictions, targets, reduction="none"))
""",
        "why": "l2_loss carries the 1/2 of Bishop's convention (its gradient is the plain error); "
        "squared_error and torch's mse_loss do not.",
    },
    {
        "title": "tf.nn.sigmoid_cross_entropy_with_logits (unreduced) vs torch binary_cross_entropy_with_logits",
        "code": _HEADER
        + """import anyloss.compat.tensorflow as tf

logits = np.array([[3.0, -1.0], [0.5, 8.0]])
labels = np.array([[1.0, 0.0], [0.0, 1.0]])
print("tf: ", tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
print("torch 'none':", F.binary_cross_entropy_with_logits(logits, labels, reduction="none"))
print("torch default 'mean':", F.binary_cross_entropy_with_logits(logits, labels))
""",
        "tensorflow": """import tensorflow

print("TensorFlow itself:", tensorflow.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits).numpy())
""",
        "why": "The element-wise numbers are the same; TensorFlow returns all of them (you reduce, usually with "
        "tf.reduce_mean), PyTorch averages by default. Note also the order: (labels, logits) by keyword in TF, "
        "(input, target) in torch.",
    },
    {
        "title": "tf.nn.weighted_cross_entropy_with_logits pos_weight vs torch pos_weight",
        "code": _HEADER
        + """import anyloss.compat.tensorflow as tf

logits = np.array([[1.0, -2.0, 0.5], [-0.5, 2.0, 0.0]])
labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
pos_weight = np.array([3.0, 1.0, 0.5])     # one weight per class (last axis)
print("tf: ", tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight))
print("torch 'none':", F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction="none"))
print("tf mean, torch mean:", tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight).mean(),
      F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight))
""",
        "tensorflow": """import tensorflow

print("TensorFlow itself:", tensorflow.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight).numpy())
""",
        "why": "Both weigh only the positive term: q z (-log sigmoid(x)) + (1 - z)(-log(1 - sigmoid(x))), "
        "so the element-wise values agree; TF's pos_weight may be a plain number and nothing is reduced. "
        "The gradients agree too, except at a logit of exactly 0 (next).",
    },
    {
        "title": "tf.nn.weighted_cross_entropy_with_logits gradient at a logit of 0 vs torch pos_weight",
        "code": _HEADER
        + """import anyloss
import anyloss.compat.tensorflow as tf

logits = np.array([0.0, 0.0, 1.0])          # e.g. the first step of a zero-initialised last layer
labels = np.array([1.0, 0.0, 1.0])
pos_weight = np.array([3.0, 3.0, 3.0])
_, pullback = anyloss.vjp(lambda x: tf.nn.weighted_cross_entropy_with_logits(labels, x, pos_weight), logits)
print("tf gradient of the logits:   ", pullback(np.ones(3)))
_, pullback = anyloss.vjp(
    lambda x: F.binary_cross_entropy_with_logits(x, labels, pos_weight=pos_weight, reduction="none"), logits)
print("torch gradient of the logits:", pullback(np.ones(3)))
""",
        "tensorflow": """import tensorflow

x = tensorflow.constant(logits)
with tensorflow.GradientTape() as tape:
    tape.watch(x)
    loss = tensorflow.nn.weighted_cross_entropy_with_logits(labels, x, pos_weight)
print("TensorFlow itself:           ", tape.gradient(loss, x).numpy())
""",
        "why": "TensorFlow differentiates its formula (1 - z) x + (1 + (q - 1) z)(log(1 + exp(-abs(x))) + max(-x, 0)) "
        "term by term and takes the derivatives of abs(x) and max(-x, 0) at 0 as 0, so at a logit of exactly 0 "
        "its gradient is 1 - z; PyTorch's is the derivative, 1 - z - (1 + (q - 1) z)/2. "
        "anyloss.compat.tensorflow gives TensorFlow's number, anyloss.functional PyTorch's.",
    },
    {
        "title": "tf.nn.softmax_cross_entropy_with_logits gradient when the labels do not sum to 1 vs torch "
        "cross_entropy",
        "code": _HEADER
        + """import anyloss
import anyloss.compat.tensorflow as tf

logits = np.array([[2.0, 0.5, -1.0]])
labels = np.array([[0.5, 0.5, 0.5]])        # sums to 1.5: neither library checks
print("tf, torch values:            ", tf.nn.softmax_cross_entropy_with_logits(labels, logits),
      F.cross_entropy(logits, labels, reduction="none"))
_, pullback = anyloss.vjp(lambda x: tf.nn.softmax_cross_entropy_with_logits(labels, x), logits)
print("tf gradient of the logits:   ", pullback(np.ones(1)))
_, pullback = anyloss.vjp(lambda x: F.cross_entropy(x, labels, reduction="none"), logits)
print("torch gradient of the logits:", pullback(np.ones(1)))
""",
        "tensorflow": """import tensorflow

x = tensorflow.constant(logits)
with tensorflow.GradientTape() as tape:
    tape.watch(x)
    loss = tensorflow.nn.softmax_cross_entropy_with_logits(labels, x)
print("TensorFlow itself:           ", tape.gradient(loss, x).numpy())
""",
        "why": "The values are the same. TensorFlow's kernel returns softmax(x) - labels as the gradient, which is "
        "the derivative only when each row of labels sums to 1; PyTorch's is the derivative, "
        "softmax(x) * sum(labels) - labels. anyloss.compat.tensorflow gives TensorFlow's number.",
    },
    {
        "title": "Huber: Keras and optax delta vs torch huber_loss(delta) and smooth_l1_loss(beta)",
        "code": _HEADER
        + """from anyloss.compat import keras, optax

y_pred = np.array([[0.2, 1.5, -3.0]])
y_true = np.zeros((1, 3))
delta = 2.0
print("optax huber_loss:              ", optax.huber_loss(y_pred, y_true, delta=delta))
print("torch huber_loss 'none':       ", F.huber_loss(y_pred, y_true, delta=delta, reduction="none"))
print("torch smooth_l1_loss beta=delta:", F.smooth_l1_loss(y_pred, y_true, beta=delta, reduction="none"))
print("keras huber (per sample):      ", keras.huber(y_true, y_pred, delta=delta))
""",
        "why": "Keras, optax and torch's huber_loss share one formula (quadratic up to delta, then linear with "
        "slope delta). smooth_l1_loss with beta = delta is that divided by delta (its slope is 1). Keras "
        "then averages over the last axis.",
    },
    {
        "title": "Label smoothing: Keras binary (towards 1/2) vs torch cross_entropy (towards 1/C)",
        "code": _HEADER
        + """from anyloss.compat import keras

x, eps = 2.0, 0.2                              # a logit for the positive class, smoothing 0.2
print("keras binary_crossentropy, label_smoothing:",
      keras.binary_crossentropy(np.array([1.0]), np.array([x]), from_logits=True, label_smoothing=eps))
print("torch cross_entropy on logits [0, x], 2 classes:",
      F.cross_entropy(np.array([[0.0, x]]), np.array([1]), label_smoothing=eps))
print("torch BCE-with-logits, target 1 - eps:",
      F.binary_cross_entropy_with_logits(np.array([x]), np.array([1.0 - eps])))
""",
        "why": "Keras's binary smoothing moves labels to y(1 - eps) + eps/2, which is torch's cross_entropy smoothing "
        "with C = 2 classes; torch's BCE has no smoothing, and the common hand-made 'target 1 - eps' is a "
        "different (stronger) smoothing. Keras's categorical_crossentropy uses y(1 - eps) + eps/C like torch.",
    },
    {
        "title": "Keras cosine_similarity is a negative similarity; torch's cosine_embedding_loss is 1 - cos",
        "code": _HEADER
        + """from anyloss.compat import keras, optax

a = np.array([[1.0, 2.0, 2.0]])
b = np.array([[2.0, 1.0, 2.0]])
print("keras cosine_similarity:", keras.cosine_similarity(a, b))
print("optax cosine_distance:  ", optax.cosine_distance(b, a))
print("torch cosine_embedding_loss (y = 1):", F.cosine_embedding_loss(b, a, np.array([1.0])))
""",
        "why": "Keras minimises -cos (best -1), optax's cosine_distance and torch's cosine_embedding_loss with "
        "y = 1 minimise 1 - cos (best 0); gradients are the same, values are shifted by one.",
    },
]


def differences() -> list[dict[str, Any]]:
    """Where TensorFlow's, optax's and Keras's losses differ from PyTorch's of the same name.

    Returns a list of dicts with ``title``, ``code`` (a self-contained snippet
    that prints the numbers side by side when executed) and ``why`` (one or two
    sentences); an entry about ``tf.nn`` also has ``tensorflow``: a snippet that
    continues ``code`` (in its namespace) and prints TensorFlow's own numbers,
    for when TensorFlow is installed. The documentation executes each snippet
    at build time (``tensorflow`` too, where TensorFlow is installed).
    """
    return [dict(d) for d in _DIFFERENCES]
