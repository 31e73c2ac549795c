"""TensorFlow's ``tf.nn`` cross entropies, with TensorFlow's semantics, on any Array API library.

``import anyloss.compat.tensorflow as tf`` and then ``tf.nn.sigmoid_cross_entropy_with_logits(labels=..., logits=...)``
(or the same names at module level):

* :func:`sigmoid_cross_entropy_with_logits`
* :func:`weighted_cross_entropy_with_logits`
* :func:`softmax_cross_entropy_with_logits`
* :func:`sparse_softmax_cross_entropy_with_logits`

As in TensorFlow, each returns the *unreduced* loss (one value per element, or
per row for the softmax ones) and takes its arguments by the same names
(``labels=``, ``logits=``, ``pos_weight=``, ``axis=``; ``name=`` is accepted and
ignored). ``labels`` and ``logits`` must have the same shape and, for the
floating ones, the same dtype, as TensorFlow requires (``ValueError`` /
``TypeError`` here).

Gradients: the analytic gradient of each function serves ``anyloss.vjp`` on
NumPy, Dask and array-api-strict, ``.backward()`` on PyTorch tensors and
``jax.grad``/``jax.vjp`` on JAX arrays; ``logits`` and the floating ``labels``
(and ``pos_weight``) are differentiable, as in TensorFlow.
"""

from __future__ import annotations

import numbers
import types
from typing import Any

from .._checks import check_broadcasts_to, check_class_values, check_floating, check_integer, describe, fail, namespace
from .._spec import Forward
from .._typing import Array, Namespace
from .._xp import device, index_dtype, log_softmax, one_hot_mask, sigmoid, softplus, take_along
from ._common import shapes_equal, spec, unreduced

__all__ = [
    "nn",
    "sigmoid_cross_entropy_with_logits",
    "weighted_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
]


def _required(name: Any, x: Any) -> None:
    if x is None:
        fail(TypeError, name, "be given (TensorFlow's functions take `labels=` and `logits=` by name)", None)


def _same_float(xp: Namespace, labels: Any, logits: Any) -> None:
    check_floating(xp, "logits", logits)
    if labels.dtype != logits.dtype:
        fail(TypeError, "labels", f"have the dtype of `logits` ({logits.dtype}), as TensorFlow requires", labels.dtype)
    shapes_equal("logits", logits, "labels", labels)


def sigmoid_cross_entropy_with_logits(
    labels: Array | None = None, logits: Array | None = None, name: str | None = None
) -> Array:
    r"""``tf.nn.sigmoid_cross_entropy_with_logits``: element-wise logistic loss, unreduced.

    With :math:`x` = ``logits`` and :math:`z` = ``labels``,

    .. math::
        \ell = \max(x, 0) - x z + \log(1 + e^{-|x|})

    which is :math:`-z \log\sigma(x) - (1 - z)\log(1 - \sigma(x))` computed without
    overflow. Same numbers as ``optax.sigmoid_binary_cross_entropy`` and as
    ``F.binary_cross_entropy_with_logits(logits, labels, reduction='none')``;
    PyTorch's default ``reduction='mean'`` averages them, TensorFlow returns them all.

    Args:
        labels: floating, same shape and dtype as ``logits`` (values in [0, 1]
            are not checked: TensorFlow does not check them either).
        logits: floating, any shape.
        name: ignored (TensorFlow's op name).

    Returns:
        The loss, of ``logits``' shape.

    Example:
        >>> import numpy as np
        >>> from anyloss.compat import tensorflow as tf
        >>> tf.nn.sigmoid_cross_entropy_with_logits(labels=np.array([1.0, 0.0]), logits=np.array([0.0, 0.0]))
        array([0.69314718, 0.69314718])
    """
    _required("labels", labels)
    _required("logits", logits)
    xp = namespace(labels=labels, logits=logits)
    _same_float(xp, labels, logits)
    return unreduced(_SIGMOID, xp, (labels, logits))


def _sigmoid_fwd(xp: Namespace, labels: Any, logits: Any) -> Any:
    x, z = logits, labels
    return Forward(xp.maximum(x, 0.0) - x * z + xp.log1p(xp.exp(-xp.abs(x))), (x, z))


def _sigmoid_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> Any:
    x, z = res
    return g * -x, g * (sigmoid(xp, x) - z)


_SIGMOID = spec(
    "tf.nn.sigmoid_cross_entropy_with_logits", _sigmoid_fwd, _sigmoid_bwd, ("labels", "logits"), ("labels", "logits")
)


def weighted_cross_entropy_with_logits(
    labels: Array, logits: Array, pos_weight: Array, name: str | None = None
) -> Array:
    r"""``tf.nn.weighted_cross_entropy_with_logits``: logistic loss with the positive term weighted.

    With :math:`x` = ``logits``, :math:`z` = ``labels`` and :math:`q` = ``pos_weight``,

    .. math::
        \ell = (1 - z)\, x + (1 + (q - 1) z)\,\bigl(\log(1 + e^{-|x|}) + \max(-x, 0)\bigr)

    that is :math:`q\, z\, (-\log\sigma(x)) + (1 - z)(-\log(1 - \sigma(x)))`. Unreduced, this
    is exactly ``F.binary_cross_entropy_with_logits(logits, labels, pos_weight=q,
    reduction='none')``; PyTorch's default then takes the mean.

    The gradients are TensorFlow's, including at a logit of exactly 0, where
    TensorFlow differentiates :math:`|x|` and :math:`\max(-x, 0)` as 0 and so
    gives :math:`1 - z` for the logit instead of the derivative
    :math:`1 - z - (1 + (q - 1) z)/2` (PyTorch's number there).

    Args:
        labels: floating, same shape and dtype as ``logits``.
        logits: floating, any shape.
        pos_weight: a number, or an array broadcastable to ``logits``' shape
            (of ``logits``' dtype), the weight of the positive term.
        name: ignored.

    Returns:
        The loss, of ``logits``' shape.
    """
    _required("labels", labels)
    _required("logits", logits)
    xp = namespace(labels=labels, logits=logits)
    _same_float(xp, labels, logits)
    if isinstance(pos_weight, numbers.Real) and not isinstance(pos_weight, bool):
        pos_weight = xp.asarray(float(pos_weight), dtype=logits.dtype, device=device(logits))
    else:
        xp = namespace(labels=labels, logits=logits, pos_weight=pos_weight)
        if pos_weight.dtype != logits.dtype:
            fail(
                TypeError, "pos_weight", f"be a number or have the dtype of `logits` ({logits.dtype})", pos_weight.dtype
            )
        check_broadcasts_to(logits.shape, "pos_weight", pos_weight, "`logits`")
    return unreduced(_WEIGHTED, xp, (labels, logits, pos_weight))


def _weighted_fwd(xp: Namespace, labels: Any, logits: Any, pos_weight: Any) -> Any:
    x, z, q = logits, labels, pos_weight
    sp = softplus(xp, -x)  # log(1 + exp(-|x|)) + max(-x, 0)
    log_weight = 1.0 + (q - 1.0) * z
    return Forward((1.0 - z) * x + log_weight * sp, (x, z, q, sp, log_weight))


def _weighted_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> Any:
    x, z, q, sp, log_weight = res
    # TensorFlow differentiates its formula log1p(exp(-|x|)) + relu(-x) term by term, and both
    # |x| and relu have the derivative 0 at x == 0: there the softplus term adds nothing to the
    # logits' gradient (TF gives 1 - z where the derivative is 1 - z - log_weight / 2). Elsewhere
    # the sum of the two terms is -sigmoid(-x).
    dsp = xp.where(x == 0, xp.zeros_like(x), -sigmoid(xp, -x))
    return g * (-x + (q - 1.0) * sp), g * ((1.0 - z) + log_weight * dsp), g * z * sp


_WEIGHTED = spec(
    "tf.nn.weighted_cross_entropy_with_logits",
    _weighted_fwd,
    _weighted_bwd,
    ("labels", "logits", "pos_weight"),
    ("labels", "logits", "pos_weight"),
)


def softmax_cross_entropy_with_logits(labels: Array, logits: Array, axis: int = -1, name: str | None = None) -> Array:
    r"""``tf.nn.softmax_cross_entropy_with_logits`` (TF 2's, ``_v2`` in TF 1): softmax cross entropy per row.

    .. math::
        \ell = -\sum_c z_c \log \operatorname{softmax}(x)_c

    summed over ``axis``; ``labels`` are probabilities (not checked, nor that
    they sum to 1 -- TensorFlow checks neither). The gradient flows into
    ``labels`` too, as in TF 2. The gradient with respect to ``logits`` is
    TensorFlow's, :math:`\operatorname{softmax}(x) - z`, which is the derivative
    of :math:`\ell` only where each row of ``labels`` sums to 1 (otherwise the
    derivative is :math:`\operatorname{softmax}(x) \sum_c z_c - z`). Same numbers as
    ``F.cross_entropy(logits, labels, reduction='none')`` with the class axis
    at 1, and ``optax.softmax_cross_entropy``.

    Args:
        labels: floating, same shape and dtype as ``logits``.
        logits: floating, at least one dimension.
        axis: the class axis (an int, default the last).
        name: ignored.

    Returns:
        The loss, of ``logits``' shape without ``axis``.
    """
    _required("labels", labels)
    _required("logits", logits)
    xp = namespace(labels=labels, logits=logits)
    _same_float(xp, labels, logits)
    if logits.ndim == 0:
        fail(ValueError, "logits", "have at least one dimension", "a 0-d array")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -logits.ndim <= axis < logits.ndim:
        fail(
            ValueError if isinstance(axis, numbers.Integral) else TypeError,
            "axis",
            f"be an int in [-{logits.ndim}, {logits.ndim})",
            describe(axis),
        )
    return unreduced(_SOFTMAX, xp, (labels, logits), axis=int(axis) % logits.ndim)


def _softmax_fwd(xp: Namespace, labels: Any, logits: Any, *, axis: Any) -> Any:
    ls = log_softmax(xp, logits, axis)
    return Forward(-xp.sum(labels * ls, axis=axis), (labels, ls))


def _softmax_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, axis: Any) -> Any:
    z, ls = res
    g = xp.expand_dims(g, axis=axis)
    # TensorFlow's kernel gives softmax(x) - z for the logits, the derivative only where a row of
    # labels sums to 1 (otherwise it is softmax(x) * sum(z) - z): TensorFlow's number is kept.
    return -g * ls, g * (xp.exp(ls) - z)


_SOFTMAX = spec(
    "tf.nn.softmax_cross_entropy_with_logits", _softmax_fwd, _softmax_bwd, ("labels", "logits"), ("labels", "logits")
)


def sparse_softmax_cross_entropy_with_logits(labels: Array, logits: Array, name: str | None = None) -> Array:
    r"""``tf.nn.sparse_softmax_cross_entropy_with_logits``: softmax cross entropy against class indices.

    .. math::
        \ell = \log \sum_c e^{x_c} - x_{y}

    over the last axis of ``logits``, per row. A label outside [0, C) is an
    error in TensorFlow on the CPU (NaN on a GPU): here it is a ``ValueError``
    where the labels can be read, and NaN (value and gradient of that row) under
    ``jax.jit`` or on Dask arrays. Unlike ``F.cross_entropy`` there is no
    ``ignore_index`` and no reduction.

    Args:
        labels: class indices, any integer dtype, of shape ``logits.shape[:-1]``.
        logits: floating, shape ``(..., C)``, at least one dimension.
        name: ignored.

    Returns:
        The loss, of ``labels``' shape.
    """
    _required("labels", labels)
    _required("logits", logits)
    xp = namespace(labels=labels, logits=logits)
    check_floating(xp, "logits", logits)
    check_integer(xp, "labels", labels)
    if logits.ndim == 0:
        fail(ValueError, "logits", "have at least one dimension", "a 0-d array")
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        fail(
            ValueError,
            "labels",
            f"have the shape of `logits` without its last axis {tuple(logits.shape[:-1])}",
            f"shape {tuple(labels.shape)}",
        )
    n = logits.shape[-1]
    labels = check_class_values(xp, labels, n, name="labels")
    return unreduced(_SPARSE, xp, (labels, logits))


def _sparse_fwd(xp: Namespace, labels: Any, logits: Any) -> Any:
    n = logits.shape[-1]
    labels = xp.astype(labels, index_dtype(xp, logits))  # PyTorch gathers with int64 only
    valid = (labels >= 0) & (labels < n)
    safe = xp.where(valid, labels, xp.zeros_like(labels))
    ls = log_softmax(xp, logits, logits.ndim - 1)
    nan = xp.asarray(float("nan"), dtype=logits.dtype, device=device(logits))
    return Forward(xp.where(valid, -take_along(xp, ls, safe, -1), nan), (ls, safe, valid))


def _sparse_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> Any:
    ls, safe, valid = res
    nan = xp.asarray(float("nan"), dtype=ls.dtype, device=device(ls))
    g = xp.expand_dims(xp.where(valid, g, nan), axis=-1)
    hot = xp.astype(one_hot_mask(xp, safe, ls.shape[-1], -1), ls.dtype)
    return None, g * (xp.exp(ls) - hot)


_SPARSE = spec(
    "tf.nn.sparse_softmax_cross_entropy_with_logits", _sparse_fwd, _sparse_bwd, ("labels", "logits"), ("logits",)
)

# `tf.nn.<name>` spelling: `import anyloss.compat.tensorflow as tf; tf.nn.sigmoid_cross_entropy_with_logits(...)`.
nn = types.SimpleNamespace(
    sigmoid_cross_entropy_with_logits=sigmoid_cross_entropy_with_logits,
    weighted_cross_entropy_with_logits=weighted_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits=softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits=sparse_softmax_cross_entropy_with_logits,
)
