"""optax's common losses (optax 0.2.8 names and semantics) on any Array API library.

``from anyloss.compat import optax`` and call ``optax.l2_loss(predictions, targets)`` and so on:

* regression: :func:`squared_error`, :func:`l2_loss` (with optax's factor 1/2),
  :func:`huber_loss`, :func:`log_cosh`, :func:`cosine_similarity`, :func:`cosine_distance`
* classification: :func:`sigmoid_binary_cross_entropy`, :func:`sigmoid_focal_loss`,
  :func:`softmax_cross_entropy`, :func:`softmax_cross_entropy_with_integer_labels`,
  :func:`hinge_loss`
* divergences: :func:`kl_divergence`, :func:`kl_divergence_with_log_targets`

As in optax, nothing is averaged over the batch: the element-wise losses keep
their shape, and the ones over a class or feature axis (``axis=``, default the
last) sum over it and drop it. Take ``.mean()`` (or ``.sum()``) yourself.

Call forms, as optax's: ``where=`` masks on the cross entropies, the KL
divergences and the cosine losses (masked elements leave the sum over the axis
and, for the softmax, the normaliser; a row masked out entirely gives 0);
hyperparameters (``delta``, ``alpha``, ``gamma``, ``epsilon``) as 0-d arrays,
traced ones under ``jax.jit`` included (the call then runs without the analytic
bridge, so JAX differentiates them too); NumPy arrays beside JAX arrays in one
call (a JAX result). Still different: every array argument must be an array
(not a Python list or number), and NumPy arrays do not mix with PyTorch
tensors.

Gradients: each function has an analytic gradient, used by ``anyloss.vjp`` on
NumPy, Dask and array-api-strict (the outputs are not scalars: use ``vjp``, or
``value_and_grad`` of a loss called with ``reduction``), by ``.backward()`` on
PyTorch tensors and by ``jax.grad`` on JAX arrays, where it gives
``jax.grad``-of-optax's numbers (including JAX's 1/2 at the kink of ``max(., 0)``).
Each docstring says which arguments are differentiable.
"""

from __future__ import annotations

import math
from typing import Any

from .._checks import check_broadcastable, check_broadcasts_to, check_floating, check_integer, describe, fail, namespace
from .._spec import Forward, LossSpec
from .._typing import Array, Namespace
from .._xp import (
    as_float,
    device,
    index_dtype,
    log_sigmoid,
    log_softmax,
    logsumexp,
    one_hot_mask,
    result_float_dtype,
    sigmoid,
    softplus,
    take_along,
)
from ._common import axes, half_at_tie, hyperparameter, shapes_equal, spec, unreduced

__all__ = [
    "squared_error",
    "l2_loss",
    "huber_loss",
    "log_cosh",
    "cosine_similarity",
    "cosine_distance",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "hinge_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
]


def _pair(
    predictions: Any, targets: Any, *, same_shape: bool = False, first: str = "predictions", second: str = "targets"
) -> Any:
    """namespace, floating check, and the targets (zeros when None), optax's way."""
    xp = namespace(**{first: predictions}) if targets is None else namespace(**{first: predictions, second: targets})
    check_floating(xp, first, predictions)
    if targets is None:
        return xp, xp.zeros_like(predictions)
    if same_shape:
        shapes_equal(first, predictions, second, targets)
    else:
        check_broadcastable(predictions.shape, second, targets, f"`{first}`")
    return xp, targets


def _where(xp: Namespace, where: Any, shape: Any, expand: Any = ()) -> Any:
    """optax's ``where`` mask checked: ``None``, or a boolean array that broadcasts to
    ``shape``, the loss's elements before the sum over its axis. With ``expand``
    (the class axes of the cross entropies), a mask of fewer dimensions first gets
    those axes, as optax's ``expand_dims`` of a per-example mask."""
    if where is None:
        return None
    if not xp.isdtype(where.dtype, "bool"):
        fail(TypeError, "where", "be a boolean array, as optax's (jnp.sum's) `where`", describe(where))
    if expand and where.ndim != len(shape):
        for a in sorted(expand):
            where = xp.expand_dims(where, axis=a)
    check_broadcasts_to(shape, "where", where, "the loss's elements")
    return where


def _masked(xp: Namespace, v: Any, where: Any) -> Any:
    """``v`` where ``where`` holds and 0 elsewhere (``where=None``: ``v``), in
    their broadcast shape; a sum of it is ``jnp.sum(v, where=where)``."""
    return v if where is None else xp.where(where, v, xp.zeros_like(v))


def _kept(xp: Namespace, g: Any, axis: Any, shape: Any) -> Any:
    """The cotangent ``g`` of a sum over ``axis`` reshaped to broadcast against ``shape``."""
    return xp.reshape(g, tuple(1 if i in axis else d for i, d in enumerate(shape)))


# ----------------------------------------------------------------------------- regression


def _difference(xp: Namespace, predictions: Any, targets: Any) -> Any:
    dtype = result_float_dtype(xp, predictions, targets)
    return as_float(xp, predictions, dtype) - as_float(xp, targets, dtype)


def squared_error(predictions: Array, targets: Array | None = None) -> Array:
    r"""``optax.squared_error``: :math:`(p - t)^2`, element-wise.

    ``targets`` (default zeros) must have ``predictions``' shape exactly, as
    optax checks. ``squared_error(p, t).mean()`` is ``F.mse_loss(p, t)``.
    Gradients: ``predictions``, ``targets``.
    """
    xp, targets = _pair(predictions, targets, same_shape=True)
    return unreduced(_SQUARED, xp, (predictions, targets), scale=1.0)


def l2_loss(predictions: Array, targets: Array | None = None) -> Array:
    r"""``optax.l2_loss``: :math:`\tfrac12 (p - t)^2`, element-wise -- *half* the squared error.

    The 1/2 (Bishop's convention) makes it half of ``F.mse_loss(..., reduction='none')``.
    ``targets`` (default zeros) must have ``predictions``' shape.
    Gradients: ``predictions``, ``targets``.
    """
    xp, targets = _pair(predictions, targets, same_shape=True)
    return unreduced(_SQUARED, xp, (predictions, targets), scale=0.5)


def _squared_fwd(xp: Namespace, predictions: Any, targets: Any, *, scale: Any) -> Any:
    d = _difference(xp, predictions, targets)
    return Forward(scale * (d * d), d)


def _squared_bwd(xp: Namespace, d: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, scale: Any) -> Any:
    gp = (2.0 * scale) * g * d
    return gp, -gp


_SQUARED = spec(
    "optax.squared_error", _squared_fwd, _squared_bwd, ("predictions", "targets"), ("predictions", "targets")
)


def huber_loss(predictions: Array, targets: Array | None = None, *, delta: float = 1.0) -> Array:
    r"""``optax.huber_loss``: :math:`\tfrac12 e^2` for :math:`|e| \le \delta`, else
    :math:`\delta(|e| - \tfrac12\delta)`, element-wise, :math:`e = p - t`.

    The same as ``F.huber_loss(p, t, delta=delta, reduction='none')`` (and
    ``delta`` times ``F.smooth_l1_loss(..., beta=delta)``). ``targets``
    broadcasts against ``predictions``. ``delta`` may be a 0-d array (a traced one
    under ``jax.jit``: JAX then differentiates it too), as in optax.
    Gradients: ``predictions``, ``targets``.
    """
    delta = hyperparameter("delta", delta, min=0.0)
    xp, targets = _pair(predictions, targets)
    return unreduced(_HUBER, xp, (predictions, targets), delta=delta)


def _huber_fwd(xp: Namespace, predictions: Any, targets: Any, *, delta: Any) -> Any:
    e = _difference(xp, predictions, targets)
    a = xp.abs(e)
    quadratic = xp.minimum(a, delta)
    return Forward(0.5 * quadratic * quadratic + delta * (a - quadratic), e)


def _huber_bwd(xp: Namespace, e: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, delta: Any) -> Any:
    gp = g * xp.clip(e, -delta, delta)
    return gp, -gp


_HUBER = spec("optax.huber_loss", _huber_fwd, _huber_bwd, ("predictions", "targets"), ("predictions", "targets"))


def log_cosh(predictions: Array, targets: Array | None = None) -> Array:
    r"""``optax.log_cosh``: :math:`\log\cosh(p - t)`, element-wise, as
    ``logaddexp(e, -e) - log 2`` (no overflow). Gradients: ``predictions``, ``targets``."""
    xp, targets = _pair(predictions, targets)
    return unreduced(_LOG_COSH, xp, (predictions, targets))


def _log_cosh_fwd(xp: Namespace, predictions: Any, targets: Any) -> Any:
    e = _difference(xp, predictions, targets)
    return Forward(xp.logaddexp(e, -e) - math.log(2.0), e)


def _log_cosh_bwd(xp: Namespace, e: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> Any:
    gp = g * xp.tanh(e)
    return gp, -gp


_LOG_COSH = spec("optax.log_cosh", _log_cosh_fwd, _log_cosh_bwd, ("predictions", "targets"), ("predictions", "targets"))


def cosine_similarity(
    predictions: Array,
    targets: Array,
    *,
    epsilon: float = 0.0,
    axis: int | tuple[int, ...] = -1,
    where: Array | None = None,
) -> Array:
    r"""``optax.cosine_similarity``: :math:`\sum (p / \|p\|)(t / \|t\|)` over ``axis``.

    Each norm is :math:`\sqrt{\max(\|\cdot\|^2, \epsilon)}`: with the default
    ``epsilon=0`` a zero vector gives NaN, as in optax. ``axis``: an int or a
    tuple of ints. ``epsilon`` may be a 0-d array (a traced one under ``jax.jit``).
    ``where``: a boolean array broadcasting to the inputs' shape; the norms and
    the sum take only its elements, so a vector masked out entirely gives 0
    (and, with ``epsilon=0``, NaN gradients, as ``jax.grad`` of optax gives).
    Gradients: ``predictions``, ``targets``.
    """
    return _cosine(predictions, targets, epsilon, axis, where, distance=False)


def cosine_distance(
    predictions: Array,
    targets: Array,
    *,
    epsilon: float = 0.0,
    axis: int | tuple[int, ...] = -1,
    where: Array | None = None,
) -> Array:
    r"""``optax.cosine_distance``: ``1 - cosine_similarity(predictions, targets)`` (so 1 for a
    vector ``where`` masks out entirely). Gradients: ``predictions``, ``targets``."""
    return _cosine(predictions, targets, epsilon, axis, where, distance=True)


def _cosine(predictions: Any, targets: Any, epsilon: Any, axis: Any, where: Any, distance: bool) -> Array:
    epsilon = hyperparameter("epsilon", epsilon, min=0.0)
    xp = namespace(predictions=predictions, targets=targets, where=where, optional=("where",))
    check_floating(xp, "predictions", predictions)
    check_floating(xp, "targets", targets)
    shape = check_broadcastable(predictions.shape, "targets", targets, "`predictions`")
    where = _where(xp, where, shape)
    ax = axes(axis, len(shape))
    return unreduced(_COSINE, xp, (predictions, targets, where), epsilon=epsilon, axis=ax, distance=distance)


def _unit(xp: Namespace, a: Any, epsilon: Any, axis: Any, where: Any) -> Any:
    ss = xp.sum(_masked(xp, a * a, where), axis=axis, keepdims=True)
    if isinstance(epsilon, float) and epsilon == 0.0:  # optax's clip at 0 leaves a sum of squares as it is
        n = xp.sqrt(ss)
        return a / n, n, None
    n = xp.sqrt(xp.clip(ss, epsilon, None))
    return a / n, n, ss > epsilon


def _cosine_fwd(
    xp: Namespace, predictions: Any, targets: Any, where: Any, *, epsilon: Any, axis: Any, distance: Any
) -> Any:
    dtype = result_float_dtype(xp, predictions, targets)
    a, b = as_float(xp, predictions, dtype), as_float(xp, targets, dtype)
    shape = tuple(xp.broadcast_arrays(a, b)[0].shape)
    a, b = xp.broadcast_to(a, shape), xp.broadcast_to(b, shape)
    ua, na, ma = _unit(xp, a, epsilon, axis, where)
    ub, nb, mb = _unit(xp, b, epsilon, axis, where)
    s = xp.sum(_masked(xp, ua * ub, where), axis=axis)
    return Forward(1.0 - s if distance else s, (ua, na, ma, ub, nb, mb, where))


def _cosine_bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    epsilon: Any,
    axis: Any,
    distance: Any,
) -> Any:
    ua, na, ma, ub, nb, mb, where = res
    g = _masked(xp, _kept(xp, -g if distance else g, axis, ua.shape), where)

    def through(u: Any, n: Any, m: Any, v: Any) -> Any:  # d sum(u v) / d a for u = a / n
        proj = xp.sum(_masked(xp, u * v, where), axis=axis, keepdims=True) * u  # the part from n's dependence on a
        if m is not None:  # the norm is clipped at sqrt(epsilon) and then constant
            proj = xp.where(m, proj, xp.zeros_like(proj))
        return g * (v - proj) / n

    return through(ua, na, ma, ub), through(ub, nb, mb, ua), None


_COSINE = spec(
    "optax.cosine_similarity",
    _cosine_fwd,
    _cosine_bwd,
    ("predictions", "targets", "where"),
    ("predictions", "targets"),
    optional=("where",),
)


# ----------------------------------------------------------------------------- classification


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    r"""``optax.sigmoid_binary_cross_entropy``: :math:`-z\log\sigma(x) - (1 - z)\log(1 - \sigma(x))`, element-wise.

    ``labels`` are cast to ``logits``' dtype and broadcast against it (optax
    does not check shapes; ``tf.nn.sigmoid_cross_entropy_with_logits`` does).
    Gradients: ``logits``, floating ``labels``.
    """
    xp, labels = _pair(logits, labels, first="logits", second="labels")
    return unreduced(_SIGMOID_BCE, xp, (logits, labels))


def _sigmoid_bce_fwd(xp: Namespace, logits: Any, labels: Any) -> Any:
    z = as_float(xp, labels, logits.dtype)
    return Forward(z * softplus(xp, -logits) + (1.0 - z) * softplus(xp, logits), (logits, z))


def _sigmoid_bce_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> Any:
    x, z = res
    return g * (sigmoid(xp, x) - z), g * -x


_SIGMOID_BCE = spec(
    "optax.sigmoid_binary_cross_entropy", _sigmoid_bce_fwd, _sigmoid_bce_bwd, ("logits", "labels"), ("logits", "labels")
)


def sigmoid_focal_loss(
    logits: Array, labels: Array, *, alpha: float | Array | None = None, gamma: float | Array = 2.0
) -> Array:
    r"""``optax.sigmoid_focal_loss``: :math:`\alpha_t (1 - p_t)^\gamma` times the sigmoid
    cross entropy, element-wise (Lin et al. 2017).

    As in optax 0.2.5+, :math:`\log(1 - p_t) = \log((1 - z)\,\sigma(x) + z\,\sigma(-x))` is
    computed in log space, so soft labels in [0, 1] work and extreme logits stay
    finite. :math:`\alpha_t = \alpha z + (1 - \alpha)(1 - z)`; ``alpha=None``: no weighting.
    ``alpha`` and ``gamma`` may be 0-d arrays (traced ones under ``jax.jit``: JAX
    then differentiates them too), as in optax. Gradients: ``logits``.
    """
    alpha = None if alpha is None else hyperparameter("alpha", alpha)
    gamma = hyperparameter("gamma", gamma)
    xp, labels = _pair(logits, labels, first="logits", second="labels")
    return unreduced(_FOCAL, xp, (logits, labels), alpha=alpha, gamma=gamma)


def _focal_fwd(xp: Namespace, logits: Any, labels: Any, *, alpha: Any, gamma: Any) -> Any:
    z = as_float(xp, labels, logits.dtype)
    log_p, log_q = log_sigmoid(xp, logits), log_sigmoid(xp, -logits)
    ce = -z * log_p - (1.0 - z) * log_q
    m = xp.maximum(log_p, log_q)
    log_1mpt = m + xp.log((1.0 - z) * xp.exp(log_p - m) + z * xp.exp(log_q - m))
    w = xp.exp(gamma * log_1mpt)
    a = 1.0 if alpha is None else alpha * z + (1.0 - alpha) * (1.0 - z)
    return Forward(a * ce * w, (logits, z, ce, w, log_p, log_q, log_1mpt, a))


def _focal_bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, alpha: Any, gamma: Any
) -> Any:
    x, z, ce, w, log_p, log_q, log_1mpt, a = res
    # d log(1 - p_t) / dx = (1 - 2z) p q / ((1 - z) p + z q), with p q / (...) = exp(log p + log q - log(1 - p_t)).
    dlog = (1.0 - 2.0 * z) * xp.exp(log_p + log_q - log_1mpt)
    return g * a * w * ((sigmoid(xp, x) - z) + gamma * ce * dlog), None


_FOCAL = spec("optax.sigmoid_focal_loss", _focal_fwd, _focal_bwd, ("logits", "labels"), ("logits",))


def softmax_cross_entropy(
    logits: Array, labels: Array, axis: int | tuple[int, ...] | None = -1, where: Array | None = None
) -> Array:
    r"""``optax.softmax_cross_entropy``: :math:`-\sum_c z_c \log\operatorname{softmax}(x)_c` over ``axis``.

    ``labels`` (probabilities, not checked) broadcast against ``logits``;
    ``axis`` is an int, a tuple of ints or None (all axes). The result drops
    ``axis``. A label of 0 against a logit of -inf gives NaN, as in optax
    (``safe_softmax_cross_entropy`` there treats it as 0).

    ``where``: a boolean array of ``logits``' shape (or of the shape without
    ``axis``, a mask per example, expanded as optax does): the softmax and the
    sum take only its elements, so a row masked out entirely gives 0. As
    ``jax.grad`` of optax, the gradient of ``labels`` is NaN where ``where`` is
    False (its log-probability there is -inf). Gradients: ``logits``, ``labels``.
    """
    xp = namespace(logits=logits, labels=labels, where=where, optional=("where",))
    check_floating(xp, "logits", logits)
    shape = check_broadcastable(logits.shape, "labels", labels, "`logits`")
    if len(shape) != logits.ndim:
        fail(
            ValueError,
            "labels",
            f"broadcast to the shape of `logits` {tuple(logits.shape)}",
            f"shape {tuple(labels.shape)}",
        )
    ax = axes(axis, logits.ndim, allow_none=True)
    where = _where(xp, where, shape, expand=ax)
    return unreduced(_SOFTMAX_CE, xp, (logits, labels, where), axis=ax)


def _logsumexp_where(xp: Namespace, x: Any, where: Any, axis: Any) -> Any:
    """``jax.nn.logsumexp(x, axis, where=where, keepdims=True)`` for a mask ``where``
    (a slice it masks out entirely gives 0 here, -inf in JAX: callers mask it)."""
    if where is None:
        return logsumexp(xp, x, axis, keepdims=True)
    xm = xp.where(where, x, xp.asarray(-math.inf, dtype=x.dtype, device=device(x)))
    m = xp.max(xm, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    s = xp.sum(xp.exp(xm - m), axis=axis, keepdims=True)
    return m + xp.log(xp.where(s == 0, xp.ones_like(s), s))


def _softmax_ce_fwd(xp: Namespace, logits: Any, labels: Any, where: Any, *, axis: Any) -> Any:
    z = as_float(xp, labels, logits.dtype)
    if where is None:
        ls = log_softmax(xp, logits, axis)
    else:  # jax.nn.log_softmax(where=): -inf outside the mask
        ls = xp.where(
            where,
            logits - _logsumexp_where(xp, logits, where, axis),
            xp.asarray(-math.inf, dtype=logits.dtype, device=device(logits)),
        )
    return Forward(-xp.sum(z * _masked(xp, ls, where), axis=axis), (z, ls, where))


def _softmax_ce_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, axis: Any) -> Any:
    z, ls, where = res
    g = _kept(xp, g, axis, ls.shape)
    zw = _masked(xp, xp.broadcast_to(z, ls.shape), where)
    total = xp.sum(zw, axis=axis, keepdims=True)
    if where is None:
        return g * (xp.exp(ls) * total - zw), -g * ls, None
    # the labels' cotangent 0 * log p outside the mask, NaN in JAX (log p = -inf), here 0 * NaN
    nan_outside = xp.where(where, ls, xp.asarray(math.nan, dtype=ls.dtype, device=device(ls)))
    return g * (xp.exp(ls) * total - zw), -_masked(xp, g, where) * nan_outside, None


_SOFTMAX_CE = spec(
    "optax.softmax_cross_entropy",
    _softmax_ce_fwd,
    _softmax_ce_bwd,
    ("logits", "labels", "where"),
    ("logits", "labels"),
    optional=("where",),
)


def softmax_cross_entropy_with_integer_labels(
    logits: Array, labels: Array, axis: int | tuple[int, ...] = -1, where: Array | None = None
) -> Array:
    r"""``optax.softmax_cross_entropy_with_integer_labels``: :math:`\log\sum_c e^{x_c} - x_y` over ``axis``.

    ``axis`` is an int or a tuple of ints (then a label is a flat index into
    the slice of those axes, in the order given). ``labels`` have ``logits``'
    shape without ``axis``.

    Labels are **not checked**, as in optax: a label in [-C, 0) picks class
    ``C + label`` (JAX's negative indexing), and a label outside [-C, C) gives
    NaN for that row, while its gradient is ``softmax(x)`` (the label's term
    contributes none). ``F.cross_entropy`` raises on such labels instead, or
    gives 0 for ``ignore_index``.

    ``where``: a boolean array of ``logits``' shape (or without ``axis``, a
    mask per example): the normaliser :math:`\log\sum_c e^{x_c}` takes only its
    classes, the label's logit is taken whether masked or not (as optax does),
    and a row masked out entirely gives 0 (gradient 0). Gradients: ``logits``.
    """
    xp = namespace(logits=logits, labels=labels, where=where, optional=("where",))
    check_floating(xp, "logits", logits)
    check_integer(xp, "labels", labels)
    if isinstance(axis, tuple) and not axis:
        fail(ValueError, "axis", "name at least one axis", axis)
    ax = axes(axis, logits.ndim, keep_order=True)
    batch = tuple(d for i, d in enumerate(logits.shape) if i not in ax)
    if tuple(labels.shape) != batch:
        fail(ValueError, "labels", f"have the shape of `logits` without `axis` {batch}", f"shape {tuple(labels.shape)}")
    where = _where(xp, where, tuple(logits.shape), expand=ax)
    return unreduced(_INTEGER_CE, xp, (logits, labels, where), axis=ax)


def _flat_classes(xp: Namespace, x: Any, axis: Any) -> Any:
    """``x`` with the class axes moved last and flattened into one."""
    batch = tuple(i for i in range(x.ndim) if i not in axis)
    x = xp.permute_dims(x, batch + axis)
    return xp.reshape(x, tuple(x.shape[: len(batch)]) + (-1,)), batch


def _integer_ce_fwd(xp: Namespace, logits: Any, labels: Any, where: Any, *, axis: Any) -> Any:
    x, batch = _flat_classes(xp, logits, axis)
    if where is not None:
        where = _flat_classes(xp, xp.broadcast_to(where, tuple(logits.shape)), axis)[0]
    n = x.shape[-1]
    labels = xp.astype(labels, index_dtype(xp, x))  # PyTorch gathers with int64 only
    index = xp.where(labels < 0, labels + n, labels)
    valid = (index >= 0) & (index < n)
    index = xp.where(valid, index, xp.zeros_like(index))
    nan = xp.asarray(float("nan"), dtype=x.dtype, device=device(x))
    picked = xp.where(valid, take_along(xp, x, index, -1), nan)
    lse = _logsumexp_where(xp, x, where, (x.ndim - 1,))
    out = xp.squeeze(lse, axis=-1) - picked
    rows = None if where is None else xp.any(where, axis=-1)  # a row masked out entirely gives 0
    return Forward(_masked(xp, out, rows), (x, lse, index, valid, batch, tuple(logits.shape), where, rows))


def _integer_ce_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, axis: Any) -> Any:
    x, lse, index, valid, batch, shape, where, rows = res
    hot = one_hot_mask(xp, index, x.shape[-1], -1) & xp.expand_dims(valid, axis=-1)
    g = _masked(xp, g, rows)
    p = _masked(xp, xp.exp(x - lse), where)
    gx = xp.expand_dims(g, axis=-1) * (p - xp.astype(hot, x.dtype))
    # back to logits' layout: unflatten the classes, then undo the permutation
    order = batch + axis
    gx = xp.reshape(gx, tuple(shape[i] for i in order))
    return xp.permute_dims(gx, tuple(order.index(i) for i in range(len(order)))), None, None


_INTEGER_CE = spec(
    "optax.softmax_cross_entropy_with_integer_labels",
    _integer_ce_fwd,
    _integer_ce_bwd,
    ("logits", "labels", "where"),
    ("logits",),
    optional=("where",),
)


def hinge_loss(predictor_outputs: Array, targets: Array) -> Array:
    r"""``optax.hinge_loss``: :math:`\max(0, 1 - y\,t)`, element-wise, ``targets`` in {-1, 1} (not checked).

    Broadcasts. Gradients: ``predictor_outputs``, ``targets`` (1/2 at the kink, as ``jax.grad`` of optax).
    """
    xp, targets = _pair(predictor_outputs, targets, first="predictor_outputs", second="targets")
    return unreduced(_HINGE, xp, (predictor_outputs, targets))


def _hinge_fwd(xp: Namespace, predictor_outputs: Any, targets: Any) -> Any:
    dtype = result_float_dtype(xp, predictor_outputs, targets)
    y, t = as_float(xp, predictor_outputs, dtype), as_float(xp, targets, dtype)
    v = 1.0 - y * t
    return Forward(xp.maximum(v, 0.0), (y, t, v))


def _hinge_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None) -> Any:
    y, t, v = res
    d = -g * half_at_tie(xp, v)
    return d * t, d * y


_HINGE = spec(
    "optax.hinge_loss", _hinge_fwd, _hinge_bwd, ("predictor_outputs", "targets"), ("predictor_outputs", "targets")
)


# ----------------------------------------------------------------------------- divergences


def kl_divergence(
    log_predictions: Array, targets: Array, axis: int | tuple[int, ...] | None = -1, where: Array | None = None
) -> Array:
    r"""``optax.kl_divergence``: :math:`\sum t\,(\log t - \log q)` over ``axis``, with :math:`0 \log 0 = 0`.

    Note the order and the spaces: **log**-predictions first, then targets as
    probabilities -- the same as ``F.kl_div(log_predictions, targets,
    reduction='none')`` summed over ``axis``; Keras's ``kl_divergence(y_true,
    y_pred)`` takes both as probabilities, targets first. ``axis``: int, tuple
    or None. ``where``: a boolean array broadcasting to the inputs' shape, the
    elements the sum takes (a row masked out entirely gives 0).
    Gradients: ``log_predictions``, ``targets`` (NaN where a target is 0, masked
    or not, as ``jax.grad`` of optax's function gives).
    """
    return _kl(log_predictions, targets, axis, where, "targets", _KL)


def kl_divergence_with_log_targets(
    log_predictions: Array, log_targets: Array, axis: int | tuple[int, ...] | None = -1, where: Array | None = None
) -> Array:
    r"""``optax.kl_divergence_with_log_targets``: :math:`\sum e^{\log t}(\log t - \log q)` over ``axis``.

    Like ``F.kl_div(..., log_target=True)`` summed over ``axis``; ``where`` as in
    :func:`kl_divergence`. Gradients: both."""
    return _kl(log_predictions, log_targets, axis, where, "log_targets", _KL_LOG)


def _kl(log_predictions: Any, targets: Any, axis: Any, where: Any, second: str, s: LossSpec) -> Array:
    xp = namespace(log_predictions=log_predictions, **{second: targets}, where=where, optional=("where",))
    check_floating(xp, "log_predictions", log_predictions)
    check_floating(xp, second, targets)
    shape = check_broadcastable(log_predictions.shape, second, targets, "`log_predictions`")
    where = _where(xp, where, shape)
    return unreduced(s, xp, (log_predictions, targets, where), axis=axes(axis, len(shape), allow_none=True))


def _kl_fwd(xp: Namespace, log_predictions: Any, targets: Any, where: Any, *, axis: Any) -> Any:
    dtype = result_float_dtype(xp, log_predictions, targets)
    lq, t = as_float(xp, log_predictions, dtype), as_float(xp, targets, dtype)
    zero = xp.zeros((), dtype=dtype, device=device(t))
    log_t = xp.where(t == 0, zero, xp.log(xp.where(t == 0, xp.ones_like(t), t)))
    lq, t = xp.broadcast_arrays(lq, t)
    return Forward(xp.sum(_masked(xp, t * (log_t - lq), where), axis=axis), (lq, t, log_t, where))


def _kl_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, axis: Any) -> Any:
    lq, t, log_t, where = res
    g = _masked(xp, _kept(xp, g, axis, lq.shape), where)
    # d/dt of t (log t - lq) is log t + 1 - lq; at t == 0 jax.grad of optax gives NaN (the
    # gradient of its masked log(0)), and so do we
    dt = xp.where(t == 0, xp.asarray(float("nan"), dtype=t.dtype, device=device(t)), log_t + 1.0 - lq)
    return -g * t, g * dt, None


_KL = spec(
    "optax.kl_divergence",
    _kl_fwd,
    _kl_bwd,
    ("log_predictions", "targets", "where"),
    ("log_predictions", "targets"),
    optional=("where",),
)


def _kl_log_fwd(xp: Namespace, log_predictions: Any, log_targets: Any, where: Any, *, axis: Any) -> Any:
    dtype = result_float_dtype(xp, log_predictions, log_targets)
    lq, lt = xp.broadcast_arrays(as_float(xp, log_predictions, dtype), as_float(xp, log_targets, dtype))
    t = xp.exp(lt)
    return Forward(xp.sum(_masked(xp, t * (lt - lq), where), axis=axis), (lq, lt, t, where))


def _kl_log_bwd(xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, axis: Any) -> Any:
    lq, lt, t, where = res
    g = _masked(xp, _kept(xp, g, axis, lq.shape), where)
    return -g * t, g * t * (lt - lq + 1.0), None


_KL_LOG = spec(
    "optax.kl_divergence_with_log_targets",
    _kl_log_fwd,
    _kl_log_bwd,
    ("log_predictions", "log_targets", "where"),
    ("log_predictions", "log_targets"),
    optional=("where",),
)
