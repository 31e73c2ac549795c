"""Keras 3's losses (keras 3.15 names and semantics) on any Array API library.

``from anyloss.compat import keras`` and then, as in ``keras.losses``:

* functions ``keras.mean_squared_error(y_true, y_pred)`` and friends return the
  loss **per sample**: the mean over the last axis (``axis`` for
  ``binary_crossentropy``; a sum over the class axis for the cross entropies
  and ``kl_divergence``), shape ``y_pred.shape[:-1]``;
* classes ``keras.MeanSquaredError(reduction="sum_over_batch_size")(y_true, y_pred, sample_weight=None)``
  reduce those per-sample losses the Keras way: ``"sum_over_batch_size"``
  (the default; also ``"mean"``) divides their sum by their *number*,
  ``"sum"`` sums them, ``"mean_with_sample_weight"`` divides by the sum of the
  sample weights, ``None``/``"none"`` keeps them. A zero divisor gives 0, as
  Keras's ``divide_no_nan``.

Note the argument order, ``(y_true, y_pred)`` -- the reverse of PyTorch's
``(input, target)`` -- and that ``reduction="sum"`` sums *per-sample means*:
for an ``(N, D)`` batch it is ``F.mse_loss(..., reduction='sum') / D``.

Keras's numerics are kept: probabilities are clipped to ``[1e-7, 1 - 1e-7]``
(``keras.backend.epsilon()``) before their log in the cross entropies, so a
saturated prediction costs at most ``-log(1e-7) = 16.1``, where PyTorch clamps
the log at -100; ``from_logits=True`` uses the stable log-sigmoid / log-softmax
(as Keras's JAX, TensorFlow and PyTorch backends do; its NumPy backend clips
those too). Values follow ``y_pred``'s dtype (Keras's classes compute in
``keras.backend.floatx()``, float32 unless set; pass float32 arrays for its
numbers bit for bit).

Gradients: ``y_pred`` (analytic), through ``anyloss.value_and_grad`` on a class
instance (a scalar), ``anyloss.vjp`` on the functions, ``.backward()`` on
PyTorch tensors and ``jax.grad`` on JAX arrays. ``y_true`` and
``sample_weight`` get none.

Call forms, as Keras's: ``y_pred`` may be an integer array (cast to float32,
Keras's floatx, or to the class's ``dtype``); ``sample_weight`` a number, a
list or an array; the classes take Keras's constructor arguments (``name=``,
``dtype=``, ``SparseCategoricalCrossentropy(axis=...)``) and round-trip
through ``get_config``/``from_config`` (see :class:`Loss` for what differs).

Not covered: Keras's masks other than ``ignore_class`` (``y_pred._keras_mask``),
``keras.DTypePolicy`` dtypes, ``keras.saving`` serialization, ``y_true``/``y_pred``
as Python lists, and the focal, Dice, Tversky, Circle and CTC losses.
An empty batch of per-sample losses reduces to 0 (Keras returns the empty
array when the losses are 1-D).
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

import array_api_compat as _compat

from .._call import apply
from .._checks import check_bool, check_broadcastable, check_class_values, check_number, describe, fail, namespace
from .._spec import Forward
from .._typing import Array, Namespace
from .._xp import (
    broadcast_shapes,
    device,
    index_dtype,
    log_softmax,
    one_hot_mask,
    sigmoid,
    size,
    softplus,
    sum_to_shape,
    take_along,
)
from ._common import axes, half_at_tie, shapes_equal, spec

EPSILON = 1e-7  # keras.backend.epsilon()

__all__ = [
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "poisson",
    "kl_divergence",
    "cosine_similarity",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "Huber",
    "LogCosh",
    "Poisson",
    "KLDivergence",
    "CosineSimilarity",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "Loss",
    "REDUCTIONS",
]

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# ----------------------------------------------------------------------------- the machinery


def _match_rank(xp: Namespace, x1: Any, x2: Any) -> Any:
    """Keras's ``squeeze_or_expand_to_same_rank``: ranks that differ by one
    where the longer has a last axis of 1 are made equal (a rank-1 partner is
    expanded, else the 1 is squeezed). Anything else is left to broadcasting."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        return (x1, xp.expand_dims(x2, axis=-1)) if r2 == 1 else (xp.squeeze(x1, axis=-1), x2)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        return (xp.expand_dims(x1, axis=-1), x2) if r1 == 1 else (x1, xp.squeeze(x2, axis=-1))
    return x1, x2


class _KerasLoss:
    """One Keras loss: its checks, its per-sample core, and Keras's weighting and reduction.

    ``prepare(xp, y_true, y_pred, **options) -> options`` checks the arguments
    and returns the static options of the core.
    ``core_fwd(xp, y_true, y_pred, **options) -> (values, res, mask or None)``
    gives the per-sample losses; ``core_bwd(xp, res, g, **options)`` the
    cotangent of ``y_pred`` (possibly in a broadcast shape) for the cotangent
    ``g`` of ``values``. ``match_rank``: Keras matches the ranks of ``y_true``
    and ``y_pred`` first; ``cast_true``: ``y_true`` is cast to ``y_pred``'s dtype.
    """

    def __init__(
        self,
        name: Any,
        core_fwd: Any,
        core_bwd: Any,
        prepare: Any = None,
        *,
        match_rank: bool = False,
        cast_true: bool = True,
    ) -> None:
        self.name = name
        self.prepare = prepare or (_check_matched if match_rank else _check_broadcast)
        self.spec = spec(f"keras.{name}", self._fwd, self._bwd, ("y_true", "y_pred", "sample_weight"), ("y_pred",))
        self.core_fwd, self.core_bwd = core_fwd, core_bwd
        self.match_rank, self.cast_true = match_rank, cast_true

    def __call__(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any = None,
        reduction: Any = None,
        dtype: Any = None,
        **options: Any,
    ) -> Array:
        xp = namespace(y_true=y_true, y_pred=y_pred)
        if y_pred.ndim == 0:
            fail(ValueError, "y_pred", "have at least one dimension (Keras averages over its last axis)", "a 0-d array")
        dtype = _compute_dtype(xp, y_pred, dtype)
        if sample_weight is not None:
            sample_weight = _sample_weight(xp, sample_weight, dtype, device(y_pred))
            xp = namespace(y_true=y_true, y_pred=y_pred, sample_weight=sample_weight)
        options = self.prepare(xp, y_true, y_pred, **options)
        return apply(
            self.spec,
            xp,
            (y_true, y_pred, sample_weight),
            _ANYLOSS_REDUCTION[reduction],
            keras_reduction=reduction,
            dtype=dtype,
            **options,
        )

    def _fwd(
        self,
        xp: Namespace,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any,
        *,
        keras_reduction: Any,
        dtype: Any,
        **options: Any,
    ) -> Forward:
        yp = y_pred if y_pred.dtype == dtype else xp.astype(y_pred, dtype)  # Keras's convert_to_tensor(dtype=)
        yt = xp.astype(y_true, dtype) if self.cast_true and y_true.dtype != dtype else y_true
        if self.match_rank:
            yt, yp = _match_rank(xp, yt, yp)
        values, res, mask = self.core_fwd(xp, yt, yp, **options)
        weights = _weights(xp, values, sample_weight, mask, keras_reduction)
        matched, w = values, None
        if weights is not None:
            matched, w = _match_rank(xp, values, weights)
        loss = matched if w is None else matched * w
        divisor = None
        if keras_reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
            if keras_reduction == "mean_with_sample_weight" and w is not None:
                d = xp.sum(w)
                divisor = xp.where(d == 0, xp.asarray(math.inf, dtype=d.dtype, device=device(d)), d)
            else:
                divisor = float(size(loss)) or math.inf  # divide_no_nan: an empty batch gives 0
        shapes = (tuple(matched.shape), tuple(values.shape), tuple(yp.shape), tuple(y_pred.shape))
        return Forward(loss, (res, w, shapes), divisor)

    def _bwd(
        self,
        xp: Namespace,
        res: Any,
        g: Any,
        *,
        g_divisor: Any = None,
        wanted: Any = None,
        keras_reduction: Any,
        dtype: Any,
        **options: Any,
    ) -> tuple[Any, ...]:
        res_core, w, (matched_shape, values_shape, yp_shape, y_pred_shape) = res
        if w is not None:
            g = sum_to_shape(xp, g * w, matched_shape)
        g = xp.reshape(g, values_shape)
        gp = sum_to_shape(xp, self.core_bwd(xp, res_core, g, **options), yp_shape)
        return None, xp.reshape(gp, y_pred_shape), None


_ANYLOSS_REDUCTION = {
    None: "none",
    "none": "none",
    "sum": "sum",
    "sum_over_batch_size": "mean",
    "mean": "mean",
    "mean_with_sample_weight": "mean",
}


def _compute_dtype(xp: Namespace, y_pred: Any, dtype: Any) -> Any:
    """The dtype a loss computes in: ``dtype`` (a name such as ``"float32"``, or a
    dtype of ``xp``), else ``y_pred``'s if floating, else float32 (Keras's floatx)."""
    if dtype is None:
        return y_pred.dtype if xp.isdtype(y_pred.dtype, "real floating") else xp.float32
    d = getattr(xp, dtype, None) if isinstance(dtype, str) else dtype
    try:
        ok = d is not None and xp.isdtype(d, "real floating")
    except (TypeError, ValueError):
        ok = False
    if not ok:
        fail(ValueError, "dtype", f"name a floating-point dtype of {xp.__name__} (such as 'float32')", repr(dtype))
    return d


def _sample_weight(xp: Namespace, sample_weight: Any, dtype: Any, where: Any) -> Any:
    """``sample_weight`` as Keras's ``convert_to_tensor`` takes it: an array, or a
    number or (nested) list of numbers made an array of the loss's dtype."""
    if _compat.is_array_api_obj(sample_weight):
        return sample_weight
    if isinstance(sample_weight, (numbers.Real, list, tuple)) and not isinstance(sample_weight, bool):
        try:
            return xp.asarray(sample_weight, dtype=dtype, device=where)
        except (TypeError, ValueError):
            pass
    fail(TypeError, "sample_weight", "be an array, a number or a list of numbers", describe(sample_weight))


def _weights(xp: Namespace, values: Any, sample_weight: Any, mask: Any, reduction: Any) -> Any:
    """Keras's ``apply_mask`` merged with ``sample_weight``: the weights that
    multiply the per-sample losses (None: none)."""
    weights = None
    if mask is not None:
        m = xp.astype(mask, values.dtype)
        if reduction in ("mean", "sum_over_batch_size"):
            # Valid entries weigh total/valid, so that dividing by the total divides by `valid`.
            valid = xp.sum(m)
            safe = xp.where(valid == 0, xp.ones_like(valid), valid)
            m = m * xp.where(valid == 0, xp.zeros_like(valid), float(size(m)) / safe)
        weights = m
    if sample_weight is not None:
        sw = xp.astype(sample_weight, values.dtype)
        if weights is not None:
            weights, sw = _match_rank(xp, weights, sw)
            sw = sw * weights
        weights = sw
    return weights


def _check_broadcast(xp: Namespace, y_true: Any, y_pred: Any, **options: Any) -> Any:
    check_broadcastable(y_pred.shape, "y_true", y_true, "`y_pred`")
    return options


def _check_matched(xp: Namespace, y_true: Any, y_pred: Any, **options: Any) -> Any:
    yt, yp = _match_rank(xp, y_true, y_pred)
    check_broadcastable(yp.shape, "y_true", yt, "`y_pred`")
    return options


def _pointwise(xp: Namespace, v: Any, dv: Any, axis: int = -1) -> Any:
    """Per-sample mean over ``axis`` of the element-wise loss ``v``; residuals for :func:`_pointwise_bwd`."""
    axis = axis % v.ndim
    return xp.mean(v, axis=axis), (dv, axis), None


def _pointwise_bwd(xp: Namespace, res: Any, g: Any, **options: Any) -> Any:
    dv, axis = res
    return xp.expand_dims(g, axis=axis) * dv / dv.shape[axis]


# ----------------------------------------------------------------------------- regression


def mean_squared_error(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.mean_squared_error``: ``mean((y_true - y_pred)**2, axis=-1)``, per sample.

    Ranks differing by a trailing axis of 1 are matched (Keras's
    ``squeeze_or_expand_to_same_rank``), as for the other regression losses
    here; other shapes broadcast, silently, as in Keras.
    """
    return _MSE(y_true, y_pred)


def _mse_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    d = yp - yt
    return _pointwise(xp, d * d, 2.0 * d)


_MSE = _KerasLoss("mean_squared_error", _mse_fwd, _pointwise_bwd, match_rank=True)


def mean_absolute_error(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.mean_absolute_error``: ``mean(abs(y_true - y_pred), axis=-1)``."""
    return _MAE(y_true, y_pred)


def _mae_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    d = yp - yt
    return _pointwise(xp, xp.abs(d), xp.sign(d))


_MAE = _KerasLoss("mean_absolute_error", _mae_fwd, _pointwise_bwd, match_rank=True)


def mean_absolute_percentage_error(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.mean_absolute_percentage_error``:
    ``100 * mean(abs((y_true - y_pred) / maximum(abs(y_true), 1e-7)), axis=-1)``."""
    return _MAPE(y_true, y_pred)


def _mape_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    den = xp.maximum(xp.abs(yt), EPSILON)
    return _pointwise(xp, 100.0 * xp.abs((yt - yp) / den), 100.0 * xp.sign(yp - yt) / den)


_MAPE = _KerasLoss("mean_absolute_percentage_error", _mape_fwd, _pointwise_bwd, match_rank=True)


def mean_squared_logarithmic_error(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.mean_squared_logarithmic_error``:
    ``mean((log(maximum(y_pred, 1e-7) + 1) - log(maximum(y_true, 1e-7) + 1))**2, axis=-1)``."""
    return _MSLE(y_true, y_pred)


def _msle_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    p = xp.maximum(yp, EPSILON) + 1.0
    d = xp.log(p) - xp.log(xp.maximum(yt, EPSILON) + 1.0)
    return _pointwise(xp, d * d, 2.0 * d / p * half_at_tie(xp, yp - EPSILON))


_MSLE = _KerasLoss("mean_squared_logarithmic_error", _msle_fwd, _pointwise_bwd, match_rank=True)


def huber(y_true: Array, y_pred: Array, delta: float = 1.0) -> Array:
    r"""``keras.losses.huber``: ``mean(where(|e| <= delta, e**2 / 2, delta * |e| - delta**2 / 2), axis=-1)``.

    Element-wise it is ``F.huber_loss(y_pred, y_true, delta=delta, reduction='none')``
    and ``optax.huber_loss``; Keras then averages over the last axis.
    """
    return _HUBER(y_true, y_pred, delta=delta)


def _huber_prepare(xp: Namespace, y_true: Any, y_pred: Any, *, delta: Any) -> Any:
    check_number("delta", delta, min=0.0)
    return _check_matched(xp, y_true, y_pred, delta=float(delta))


def _huber_fwd(xp: Namespace, yt: Any, yp: Any, *, delta: Any) -> Any:
    e = yp - yt
    a = xp.abs(e)
    small = a <= delta
    return _pointwise(
        xp, xp.where(small, 0.5 * e * e, delta * a - 0.5 * delta * delta), xp.where(small, e, delta * xp.sign(e))
    )


_HUBER = _KerasLoss("huber", _huber_fwd, _pointwise_bwd, _huber_prepare, match_rank=True)


def log_cosh(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.log_cosh``: ``mean(x + softplus(-2 x) - log 2, axis=-1)``, ``x = y_pred - y_true``."""
    return _LOG_COSH(y_true, y_pred)


def _log_cosh_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    x = yp - yt
    return _pointwise(xp, x + softplus(xp, -2.0 * x) - math.log(2.0), xp.tanh(x))


_LOG_COSH = _KerasLoss("log_cosh", _log_cosh_fwd, _pointwise_bwd, match_rank=True)


def poisson(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.poisson``: ``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.

    ``F.poisson_nll_loss(y_pred, y_true, log_input=False)`` uses ``eps=1e-8`` and
    averages over every element."""
    return _POISSON(y_true, y_pred)


def _poisson_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    p = yp + EPSILON
    return _pointwise(xp, yp - yt * xp.log(p), 1.0 - yt / p)


_POISSON = _KerasLoss("poisson", _poisson_fwd, _pointwise_bwd)


def kl_divergence(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.kl_divergence``: ``sum(t * log(t / p), axis=-1)`` with both clipped to ``[1e-7, 1]``.

    Both are *probabilities*, targets first -- unlike ``F.kl_div(log_p, t)`` and
    ``optax.kl_divergence(log_p, t)`` which take log-probabilities first. The
    clipping makes a zero target count as 1e-7 (PyTorch and optax: 0 log 0 = 0)."""
    return _KL(y_true, y_pred)


def _kl_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    t, p = xp.clip(yt, EPSILON, 1.0), xp.clip(yp, EPSILON, 1.0)
    inside = (yp >= EPSILON) & (yp <= 1.0)
    t, p = xp.broadcast_arrays(t, p)
    return xp.sum(t * xp.log(t / p), axis=-1), (t, p, inside), None


def _kl_bwd(xp: Namespace, res: Any, g: Any) -> Any:
    t, p, inside = res
    return xp.where(inside, -xp.expand_dims(g, axis=-1) * t / p, xp.zeros_like(p))


_KL = _KerasLoss("kl_divergence", _kl_fwd, _kl_bwd)


def cosine_similarity(y_true: Array, y_pred: Array, axis: int = -1) -> Array:
    r"""``keras.losses.cosine_similarity``: ``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``.

    *Negative* (-1 is best), where ``F.cosine_embedding_loss`` gives ``1 - cos``.
    A vector's norm is taken as at least 1e-7, so a zero vector gives 0."""
    return _COSINE(y_true, y_pred, axis=axis)


def _cosine_prepare(xp: Namespace, y_true: Any, y_pred: Any, *, axis: Any) -> Any:
    _check_matched(xp, y_true, y_pred)
    yt, yp = _match_rank(xp, y_true, y_pred)
    if isinstance(axis, tuple):
        _not_int_axis(axis)
    return {"axis": axes(axis, len(broadcast_shapes(tuple(yt.shape), tuple(yp.shape))))}


def _normalize(xp: Namespace, x: Any, axis: Any) -> Any:
    r = 1.0 / xp.sqrt(xp.sum(x * x, axis=axis, keepdims=True))
    clipped = r >= 1.0 / EPSILON
    r = xp.where(clipped, xp.asarray(1.0 / EPSILON, dtype=x.dtype, device=device(x)), r)
    return x * r, r, clipped


def _cosine_fwd(xp: Namespace, yt: Any, yp: Any, *, axis: Any) -> Any:
    ut, _, _ = _normalize(xp, yt, axis)
    up, r, clipped = _normalize(xp, yp, axis)
    ut, up = xp.broadcast_arrays(ut, up)
    return -xp.sum(ut * up, axis=axis), (ut, up, r, clipped), None


def _cosine_bwd(xp: Namespace, res: Any, g: Any, *, axis: Any) -> Any:
    ut, up, r, clipped = res
    w = -xp.reshape(g, tuple(1 if i in axis else d for i, d in enumerate(up.shape))) * ut
    proj = xp.sum(up * w, axis=axis, keepdims=True) * up  # through the norm, unless it was clipped
    return r * (w - xp.where(clipped, xp.zeros_like(proj), proj))


_COSINE = _KerasLoss("cosine_similarity", _cosine_fwd, _cosine_bwd, _cosine_prepare, match_rank=True)


# ----------------------------------------------------------------------------- hinges


def _hinge_labels(xp: Namespace, yt: Any) -> Any:
    """Keras's ``convert_binary_labels_to_hinge``: labels all in {0, 1} become -1/1; others stay."""
    binary = xp.all((yt == 0) | (yt == 1))
    return xp.where(binary, 2.0 * yt - 1.0, yt)


def hinge(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.hinge``: ``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``.

    ``y_true`` in {-1, 1}; labels that are *all* in {0, 1} are first mapped to -1/1.
    At the kink the gradient is 1/2 of the slope, as ``jax.grad`` gives."""
    return _HINGE(y_true, y_pred)


def _hinge_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    t = _hinge_labels(xp, yt)
    v = 1.0 - t * yp
    return _pointwise(xp, xp.maximum(v, 0.0), -t * half_at_tie(xp, v))


_HINGE = _KerasLoss("hinge", _hinge_fwd, _pointwise_bwd)


def squared_hinge(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.squared_hinge``: ``mean(maximum(1 - y_true * y_pred, 0)**2, axis=-1)`` (labels as :func:`hinge`)."""
    return _SQUARED_HINGE(y_true, y_pred)


def _squared_hinge_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    t = _hinge_labels(xp, yt)
    m = xp.maximum(1.0 - t * yp, 0.0)
    return _pointwise(xp, m * m, -2.0 * t * m)


_SQUARED_HINGE = _KerasLoss("squared_hinge", _squared_hinge_fwd, _pointwise_bwd)


def categorical_hinge(y_true: Array, y_pred: Array) -> Array:
    r"""``keras.losses.categorical_hinge``: ``maximum(neg - pos + 1, 0)`` with
    ``pos = sum(y_true * y_pred, -1)`` and ``neg = max((1 - y_true) * y_pred, -1)``."""
    return _CATEGORICAL_HINGE(y_true, y_pred)


def _categorical_hinge_fwd(xp: Namespace, yt: Any, yp: Any) -> Any:
    yt, yp = xp.broadcast_arrays(yt, yp)
    other = (1.0 - yt) * yp
    neg = xp.max(other, axis=-1, keepdims=True)
    v = xp.squeeze(neg, axis=-1) - xp.sum(yt * yp, axis=-1) + 1.0
    top = xp.astype(other == neg, yp.dtype)
    top = top / xp.sum(top, axis=-1, keepdims=True)  # a tie shares the max's gradient, as jax.grad does
    return xp.maximum(v, 0.0), (yt, top, v), None


def _categorical_hinge_bwd(xp: Namespace, res: Any, g: Any) -> Any:
    yt, top, v = res
    h = xp.expand_dims(g * half_at_tie(xp, v), axis=-1)
    return h * ((1.0 - yt) * top - yt)


_CATEGORICAL_HINGE = _KerasLoss("categorical_hinge", _categorical_hinge_fwd, _categorical_hinge_bwd)


# ----------------------------------------------------------------------------- cross entropies


def _not_int_axis(axis: Any) -> None:
    fail(TypeError, "axis", "be an int", describe(axis))


def _class_axis(axis: Any, ndim: Any) -> Any:
    if isinstance(axis, tuple):
        _not_int_axis(axis)
    return axes(axis, ndim)[0]


def binary_crossentropy(
    y_true: Array, y_pred: Array, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> Array:
    r"""``keras.losses.binary_crossentropy``: the element-wise binary cross entropy, averaged over ``axis``.

    With ``z = y_true * (1 - label_smoothing) + label_smoothing / 2`` (labels
    squeezed towards 1/2; PyTorch has no binary label smoothing), the
    element-wise loss is ``-(z log p + (1 - z) log(1 - p))`` with ``p =
    clip(y_pred, 1e-7, 1 - 1e-7)``, or, ``from_logits``, the stable
    ``z softplus(-x) + (1 - z) softplus(x)``. ``y_true`` and ``y_pred`` must have
    the same shape. Probabilities are not checked (PyTorch requires [0, 1]).
    """
    return _BCE(y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


def _smoothing_prepare(
    xp: Namespace, y_true: Any, y_pred: Any, *, from_logits: Any, label_smoothing: Any, axis: Any
) -> Any:
    check_bool("from_logits", from_logits)
    check_number("label_smoothing", label_smoothing, min=0.0, max=1.0)
    shapes_equal("y_pred", y_pred, "y_true", y_true)
    return {
        "from_logits": from_logits,
        "label_smoothing": float(label_smoothing),
        "axis": _class_axis(axis, y_pred.ndim),
    }


def _bce_fwd(xp: Namespace, yt: Any, yp: Any, *, from_logits: Any, label_smoothing: Any, axis: Any) -> Any:
    z = yt * (1.0 - label_smoothing) + 0.5 * label_smoothing if label_smoothing else yt
    if from_logits:
        return _pointwise(xp, z * softplus(xp, -yp) + (1.0 - z) * softplus(xp, yp), sigmoid(xp, yp) - z, axis)
    p = xp.clip(yp, EPSILON, 1.0 - EPSILON)
    inside = (yp >= EPSILON) & (yp <= 1.0 - EPSILON)
    dv = xp.where(inside, (1.0 - z) / (1.0 - p) - z / p, xp.zeros_like(p))
    return _pointwise(xp, -(z * xp.log(p) + (1.0 - z) * xp.log(1.0 - p)), dv, axis)


_BCE = _KerasLoss("binary_crossentropy", _bce_fwd, _pointwise_bwd, _smoothing_prepare)


def categorical_crossentropy(
    y_true: Array, y_pred: Array, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> Array:
    r"""``keras.losses.categorical_crossentropy``: ``-sum(z * log q, axis)`` against probability (one-hot) targets.

    ``q`` is ``softmax(y_pred)`` with ``from_logits``, else ``y_pred`` divided by
    its sum over ``axis`` and clipped to ``[1e-7, 1 - 1e-7]``. ``z = y_true * (1 -
    s) + s / K`` for ``label_smoothing`` ``s``, where ``K`` is ``y_true``'s
    **last** dimension even when ``axis`` is another (as in Keras). ``y_true``
    must have ``y_pred``'s shape.
    """
    return _CCE(y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


def _log_probs(xp: Namespace, yp: Any, axis: Any, from_logits: Any) -> Any:
    """log q and what its gradient needs: the log-softmax, or Keras's normalised and clipped probabilities."""
    if from_logits:
        return log_softmax(xp, yp, axis), None
    s = xp.sum(yp, axis=axis, keepdims=True)
    r = yp / s
    q = xp.clip(r, EPSILON, 1.0 - EPSILON)
    return xp.log(q), (s, r, q, (r >= EPSILON) & (r <= 1.0 - EPSILON))


def _log_probs_bwd(xp: Namespace, lq: Any, probs: Any, dlq: Any, axis: Any) -> Any:
    """Cotangent of ``y_pred`` given ``dlq``, the cotangent of log q."""
    if probs is None:  # log-softmax's VJP
        return dlq - xp.exp(lq) * xp.sum(dlq, axis=axis, keepdims=True)
    s, r, q, inside = probs
    dr = xp.where(inside, dlq / q, xp.zeros_like(q))
    return (dr - xp.sum(dr * r, axis=axis, keepdims=True)) / s  # through r = y / sum(y)


def _cce_fwd(xp: Namespace, yt: Any, yp: Any, *, from_logits: Any, label_smoothing: Any, axis: Any) -> Any:
    z = yt * (1.0 - label_smoothing) + label_smoothing / yt.shape[-1] if label_smoothing else yt
    lq, probs = _log_probs(xp, yp, axis, from_logits)
    return -xp.sum(z * lq, axis=axis), (z, lq, probs), None


def _cce_bwd(xp: Namespace, res: Any, g: Any, *, from_logits: Any, label_smoothing: Any, axis: Any) -> Any:
    z, lq, probs = res
    return _log_probs_bwd(xp, lq, probs, -xp.expand_dims(g, axis=axis) * z, axis)


_CCE = _KerasLoss("categorical_crossentropy", _cce_fwd, _cce_bwd, _smoothing_prepare)


def sparse_categorical_crossentropy(
    y_true: Array, y_pred: Array, from_logits: bool = False, ignore_class: Any = None, axis: int = -1
) -> Array:
    r"""``keras.losses.sparse_categorical_crossentropy``: categorical cross entropy against class indices.

    ``y_true`` holds class indices (integer, or floating as Keras allows: cast
    to int), of ``y_pred``'s shape without its last axis (or with a last axis
    of 1). The classes must be on the **last** axis, as Keras's backends
    require (``axis`` may only name it).

    ``ignore_class``: targets equal to it get a loss of 0, and the classes'
    reduction ``"sum_over_batch_size"`` divides by the number of the others
    (Keras's mask) -- like ``F.cross_entropy``'s ``ignore_index`` with
    ``'mean'``. Other labels outside [0, C) raise ``ValueError`` here (Keras's
    TensorFlow backend raises; its JAX backend gives 0); unchecked under
    ``jax.jit`` and on Dask, where they give 0.
    """
    return _SCCE(y_true, y_pred, from_logits=from_logits, ignore_class=ignore_class, axis=axis)


def _scce_prepare(
    xp: Namespace, y_true: Any, y_pred: Any, *, from_logits: Any, ignore_class: Any, axis: int = -1
) -> Any:
    check_bool("from_logits", from_logits)
    if ignore_class is not None:
        check_number("ignore_class", ignore_class, integer=True)
    if not xp.isdtype(y_true.dtype, ("integral", "real floating")):
        fail(TypeError, "y_true", "hold class indices (an integer or floating dtype)", y_true.dtype)
    squeezed = y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1
    if tuple(y_true.shape[:-1] if squeezed else y_true.shape) != tuple(y_pred.shape[:-1]):
        fail(
            ValueError,
            "y_true",
            "have the same shape up until the last dimension as `y_pred` (Keras's "
            f"wording), {tuple(y_pred.shape[:-1])}",
            f"shape {tuple(y_true.shape)}",
        )
    if _class_axis(axis, y_pred.ndim) != y_pred.ndim - 1:
        fail(ValueError, "axis", f"name the last axis of `y_pred` ({y_pred.ndim - 1} or -1), as Keras requires", axis)
    n = y_pred.shape[-1]
    check_class_values(xp, y_true, n, ignore_class, name="y_true", ignore_name="ignore_class")
    return {"from_logits": from_logits, "ignore_class": None if ignore_class is None else int(ignore_class)}


def _scce_fwd(xp: Namespace, yt: Any, yp: Any, *, from_logits: Any, ignore_class: Any) -> Any:
    if yt.ndim == yp.ndim:
        yt = xp.squeeze(yt, axis=-1)
    n, axis = yp.shape[-1], yp.ndim - 1
    valid = None if ignore_class is None else yt != ignore_class
    index = xp.astype(yt, index_dtype(xp, yp))  # floating labels are truncated, as Keras's cast
    keep = (index >= 0) & (index < n)  # Keras's one-hot of an out-of-range label is all zeros
    if valid is not None:
        keep = keep & valid
        # Keras zeroes the ignored rows' predictions (their loss is then masked to 0);
        # ones give the same numbers without its 0/0 on probabilities
        yp = xp.where(xp.expand_dims(valid, axis=-1), yp, xp.ones_like(yp))
    index = xp.where(keep, index, xp.zeros_like(index))
    lq, probs = _log_probs(xp, yp, axis, from_logits)
    zero = xp.zeros((), dtype=yp.dtype, device=device(yp))
    values = xp.where(keep, -take_along(xp, lq, index, axis), zero)
    return values, (index, keep, lq, probs), valid


def _scce_bwd(xp: Namespace, res: Any, g: Any, *, from_logits: Any, ignore_class: Any) -> Any:
    index, keep, lq, probs = res
    axis = lq.ndim - 1
    hot = xp.astype(one_hot_mask(xp, index, lq.shape[-1], axis), lq.dtype)
    dlq = -xp.expand_dims(xp.where(keep, g, xp.zeros_like(g)), axis=axis) * hot
    gp = _log_probs_bwd(xp, lq, probs, dlq, axis)
    return gp


_SCCE = _KerasLoss("sparse_categorical_crossentropy", _scce_fwd, _scce_bwd, _scce_prepare, cast_true=False)


# ----------------------------------------------------------------------------- classes


class Loss:
    """Base of the Keras-style loss objects: ``Name(..., reduction=..., name=..., dtype=...)(y_true, y_pred, sample_weight=None)``.

    Each class takes Keras's constructor arguments, in Keras's order, by
    position or by keyword. ``reduction`` is Keras's: ``"sum_over_batch_size"``
    (default) or ``"mean"``, ``"sum"``, ``"mean_with_sample_weight"``,
    ``None``/``"none"``; another raises Keras's ``ValueError("Invalid value for
    argument `reduction` ...")``. ``sample_weight`` (a number, a list or an
    array) multiplies the per-sample losses (ranks matched as in Keras) before
    the reduction.

    ``dtype`` (a name such as ``"float32"``, or a dtype of the array library):
    ``y_pred`` and ``y_true`` are cast to it, and the loss is computed and
    returned in it. Unlike Keras, ``dtype=None`` (the default) computes in
    ``y_pred``'s dtype rather than ``keras.backend.floatx()``, and ``.dtype``
    is then ``None``; an integer ``y_pred`` is cast to float32, Keras's floatx.
    ``keras.DTypePolicy`` objects are not taken.

    ``name`` is Keras's default name (``"huber_loss"`` for :class:`Huber`) unless
    given; ``name=None`` gives that default too (Keras numbers its automatic
    names). ``get_config()`` has Keras's keys and values, and also the
    arguments Keras's leaves out (``Huber``'s ``delta``, ``CosineSimilarity``'s
    and ``SparseCategoricalCrossentropy``'s ``axis``, and ``dtype`` when given),
    so that ``from_config(get_config())`` rebuilds the same loss; Keras's own
    ``from_config`` takes that config too.
    """

    _loss: _KerasLoss
    _params: dict[str, Any] = {"reduction": "sum_over_batch_size", "name": None, "dtype": None}  # Keras's, in its order

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = tuple(self._params)
        if len(args) > len(names):
            fail(TypeError, "args", f"be at most {len(names)} positional arguments {names}", len(args))
        given = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in self._params:
                fail(TypeError, k, f"be an argument of {type(self).__name__} {names}", "an unknown keyword")
            if k in given:
                fail(TypeError, k, "be given once", "it by position and by keyword")
            given[k] = v
        options = {**self._params, **given}
        reduction, name, dtype = options.pop("reduction"), options.pop("name"), options.pop("dtype")
        if reduction not in REDUCTIONS:  # Keras's own message, which Keras users match
            raise ValueError(
                f"Invalid value for argument `reduction`. Expected one of {REDUCTIONS}. Received: reduction={reduction}"
            )
        if name is not None and not isinstance(name, str):
            fail(TypeError, "name", "be a string or None", describe(name))
        self.reduction = reduction
        self.name = name or self._params["name"]
        self._dtype = dtype
        self.options = options

    @property
    def dtype(self) -> Any:
        """The ``dtype`` given (``None``: ``y_pred``'s, float32 for integers)."""
        return self._dtype

    def __call__(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> Array:
        return self._loss(y_true, y_pred, sample_weight, self.reduction, self._dtype, **self.options)

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "reduction": self.reduction, **self.options}
        if self._dtype is not None:
            config["dtype"] = self._dtype
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def _class(name: Any, function: Any, loss: Any, *params: Any, keras_name: Any = None) -> Any:
    """A :class:`Loss` subclass with Keras's constructor ``params`` (``(option, default)``
    pairs, and ``"reduction"`` where Keras puts it, else after the options)."""
    if "reduction" not in params:
        params += ("reduction",)
    defaults = {"reduction": "sum_over_batch_size", "name": keras_name or function.__name__, "dtype": None}
    ordered: dict[str, Any] = dict(p if isinstance(p, tuple) else (p, defaults[p]) for p in params + ("name", "dtype"))
    signature = inspect.Signature(
        [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v) for k, v in ordered.items()]
    )
    doc = (
        f"``keras.losses.{name}{signature}``: :func:`{function.__name__}` per sample, then Keras's "
        "reduction (see :class:`Loss`)."
    )
    return type(
        name,
        (Loss,),
        {"_loss": loss, "_params": ordered, "__signature__": signature, "__doc__": doc, "__module__": __name__},
    )


MeanSquaredError = _class("MeanSquaredError", mean_squared_error, _MSE)
MeanAbsoluteError = _class("MeanAbsoluteError", mean_absolute_error, _MAE)
MeanAbsolutePercentageError = _class("MeanAbsolutePercentageError", mean_absolute_percentage_error, _MAPE)
MeanSquaredLogarithmicError = _class("MeanSquaredLogarithmicError", mean_squared_logarithmic_error, _MSLE)
Huber = _class("Huber", huber, _HUBER, ("delta", 1.0), keras_name="huber_loss")
LogCosh = _class("LogCosh", log_cosh, _LOG_COSH)
Poisson = _class("Poisson", poisson, _POISSON)
KLDivergence = _class("KLDivergence", kl_divergence, _KL)
CosineSimilarity = _class("CosineSimilarity", cosine_similarity, _COSINE, ("axis", -1))
Hinge = _class("Hinge", hinge, _HINGE)
SquaredHinge = _class("SquaredHinge", squared_hinge, _SQUARED_HINGE)
CategoricalHinge = _class("CategoricalHinge", categorical_hinge, _CATEGORICAL_HINGE)
BinaryCrossentropy = _class(
    "BinaryCrossentropy", binary_crossentropy, _BCE, ("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)
)
CategoricalCrossentropy = _class(
    "CategoricalCrossentropy",
    categorical_crossentropy,
    _CCE,
    ("from_logits", False),
    ("label_smoothing", 0.0),
    ("axis", -1),
)
SparseCategoricalCrossentropy = _class(
    "SparseCategoricalCrossentropy",
    sparse_categorical_crossentropy,
    _SCCE,
    ("from_logits", False),
    ("ignore_class", None),
    "reduction",
    ("axis", -1),
)
