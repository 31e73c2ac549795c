"""Home of F.cross_entropy and anyloss.CrossEntropyLoss."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import (
    REAL,
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_class_target,
    check_class_weight,
    check_floating,
    check_number,
    describe,
    fail,
)
from .._module import WeightedLoss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import as_float, device, exp_into, log_softmax_parts, result_float_dtype, shifted_by_max, size
from ._curves import two_class_logits
from .nll_loss import _bwd as _nll_bwd
from .nll_loss import _fwd as _nll_fwd
from .nll_loss import _rows_divisor as _nll_rows_divisor


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float | Array = 0.0,
) -> Array:
    r"""Cross entropy between the softmax of the logits ``input`` and ``target``:
    class indices or class probabilities.

    With :math:`\log p = \text{log\_softmax}(x)` over the :math:`C` classes, smoothing
    :math:`\varepsilon` = ``label_smoothing`` and class weights :math:`w` (1 without ``weight``):

    *Class indices* :math:`y` (``target`` of an integer dtype),

    .. math::
        \ell = -(1 - \varepsilon)\, w_y \log p_y - \frac{\varepsilon}{C} \sum_c w_c \log p_c

    and :math:`\ell = 0` where :math:`y` = ``ignore_index``; ``'mean'`` divides the
    sum by :math:`\sum_n w_{y_n}` over the non-ignored targets (their count
    without ``weight``) -- the same divisor for both terms. When every target
    is ignored that divisor is 0, and ``'mean'`` is 0/0 = NaN, as in PyTorch.

    *Class probabilities* :math:`y` (a floating ``target`` of ``input``'s shape),

    .. math::
        \ell = -\sum_c w_c\, \tilde y_c \log p_c, \qquad \tilde y = (1 - \varepsilon)\, y + \varepsilon / C

    and ``'mean'`` divides by the number of samples :math:`N \cdot d_1 \cdots d_K`,
    *not* by a sum of weights.

    ``'sum'`` is :math:`\sum_n \ell_n`; ``'none'`` gives :math:`\ell` per sample.

    These are PyTorch 2.13's numbers for every combination of ``weight``,
    ``ignore_index`` and ``label_smoothing``, including the ones PyTorch once
    got wrong (pytorch/pytorch#69339, #73205, #91383): ignored targets add
    nothing to either term nor to the divisor. As in 2.13, ``weight`` also
    weights the smoothing term (debated in pytorch/pytorch#104776).

    :math:`\log p` is computed as PyTorch's kernel does: logits shifted by their
    maximum, minus the log of the sum of their exponentials -- never through
    ``softmax`` then ``log`` -- so logits of any size keep full precision. A
    row holding ``+inf``, or only ``-inf``, gives NaN, as in PyTorch.

    Args:
        input: logits, floating: (C), (N, C) or (N, C, d1, ..., dK).
        target: class indices in [0, C) or ``ignore_index``, any integer dtype,
            of shape () (or (1)), (N) or (N, d1, ..., dK); or class
            probabilities, floating, of ``input``'s shape (not checked to lie in [0, 1]).
        weight: optional per-class weights, 1-D of length C; with class indices
            in ``input``'s dtype (as PyTorch requires).
        size_average, reduce: deprecated; see ``reduction``.
        ignore_index: class-index value that contributes neither loss, gradient
            nor divisor; any int, including a valid class (default -100). Must
            be negative with probability targets, as in PyTorch.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        label_smoothing: :math:`\varepsilon` in [0, 1]. (PyTorch silently
            ignores a negative value; here it is a ``ValueError``.)

    Shape:
        output scalar, or for ``'none'`` (), (N) or (N, d1, ..., dK): ``input``'s
        shape without the class dimension.

    Gradients: ``input``; with probability targets also ``target`` and ``weight``
    (PyTorch's composite path differentiates them; its class-index kernel
    refuses a ``weight`` that requires grad, and so does anyloss). The range of
    class indices is not checked under ``jax.jit`` or on lazy Dask arrays.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
        >>> print(f"{F.cross_entropy(x, np.array([0, 1])):.4f}")
        0.3185
        >>> print(f"{F.cross_entropy(x, np.array([[0.9, 0.1, 0.0], [0.0, 1.0, 0.0]])):.4f}")
        0.3685
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    check_floating(xp, "input", input, TypeNotImplementedError)
    eps = smoothing(xp, label_smoothing, input.dtype)
    if input.ndim > 0 and tuple(target.shape) == tuple(input.shape):
        # PyTorch's rule: a target of input's shape holds class probabilities.
        if not xp.isdtype(target.dtype, "real floating"):
            fail(
                TypeRuntimeError,
                "target",
                "have a floating-point dtype when it has `input`'s shape (class probabilities)",
                target.dtype,
            )
        check_number("ignore_index", ignore_index, integer=True)
        if ignore_index >= 0:
            fail(
                ValueRuntimeError,
                "ignore_index",
                "be negative with class-probability targets (nothing is ignored there)",
                ignore_index,
            )
        check_class_weight(weight, input.shape[0 if input.ndim == 1 else 1])
        if weight is not None and not xp.isdtype(weight.dtype, ("integral", "real floating")):
            fail(TypeError, "weight", "have a real dtype", weight.dtype)
        return apply(PROB_SPEC, xp, (input, target, weight), reduction, label_smoothing=eps)
    target = check_class_target(xp, input.shape, target, ignore_index, probabilities=True)
    check_class_weight(weight, input.shape[0 if input.ndim == 1 else 1], input.dtype)
    return apply(SPEC, xp, (input, target, weight), reduction, ignore_index=int(ignore_index), label_smoothing=eps)


def _class_shape(x: Any, class_dim: Any) -> Any:
    """Shape that broadcasts a per-class vector along ``class_dim`` of ``x``."""
    return (x.shape[class_dim],) + (1,) * (x.ndim - class_dim - 1)


def smoothing(xp: Namespace, label_smoothing: Any, dtype: Any) -> Any:
    """``label_smoothing`` checked: a float, or a 0-d array in ``dtype`` (a
    scheduled or traced one, whose range is checked where it can be read)."""
    if isinstance(label_smoothing, REAL) or not hasattr(label_smoothing, "shape"):
        if not isinstance(label_smoothing, REAL):
            fail(TypeError, "label_smoothing", "be a real number", describe(label_smoothing))
        if not 0.0 <= label_smoothing <= 1.0:  # NaN fails too
            fail(ValueRuntimeError, "label_smoothing", "be in [0, 1]", label_smoothing)
        return float(label_smoothing)
    check_number("label_smoothing", label_smoothing, min=0.0, max=1.0, kind=ValueRuntimeError)
    return xp.asarray(label_smoothing, dtype=dtype)


def smooths(eps: Any) -> bool:
    """Whether the smoothing term is computed: PyTorch takes that path for
    eps > 0 only; an array eps (its value unknown while tracing) always takes
    it, which gives the same numbers at 0."""
    return not isinstance(eps, float) or eps > 0.0


def _smoothing_factor(eps: Any, n_classes: Any) -> Any:
    # eps / C; C = 0 leaves only ignored targets, whose 0 smoothing term PyTorch scales by eps / 0 = inf.
    return eps / n_classes if n_classes else math.inf


# ----------------------------------------------------------------- class-index targets


def _fwd(
    xp: Namespace, input: Any, target: Any, weight: Any, *, ignore_index: Any, label_smoothing: Any, own: bool = False
) -> Forward:
    one_hot, smooth, res, divisor = _terms(xp, input, target, weight, ignore_index, label_smoothing, own)
    if smooth is None:
        return Forward(one_hot, res, divisor)
    return Forward(one_hot + smooth, res, _smoothed_divisor(xp, divisor, xp.sum(one_hot), xp.sum(smooth)))


def _terms(xp: Namespace, input: Any, target: Any, weight: Any, ignore_index: Any, eps: Any, own: bool = False) -> Any:
    """``(one_hot, smooth, res, divisor)``: the loss's two terms per sample (``smooth``
    None without smoothing), the residuals of :func:`_bwd` and nll_loss's divisor.
    ``own``: ``input`` is the caller's temporary (``linear_cross_entropy``'s chunk
    of logits), shifted and exponentiated in place."""
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    # log_softmax = shifted - log(s), shifted = x - max, PyTorch's order. nll_loss
    # of log_softmax(x) is -w_y (shifted_y - log s) (the full log_softmax is never
    # built), with shifted_y = x_y - max computed at the target only: `shifted`
    # then has one use, its exponential (made in place with `own`), which a
    # compiler fuses with the subtraction (XLA kept it as one more array the size
    # of the logits when the gather also read it: anyloss under jax.jit 2x
    # slower than the hand-written jnp, measured).
    m = xp.max(input, axis=class_dim, keepdims=True) if size(input) else None
    shift = None if m is None else xp.squeeze(m, axis=class_dim)
    nll, res_nll, divisor = _nll_fwd(xp, input, target, weight, ignore_index=ignore_index, shift=shift)
    shifted = shifted_by_max(xp, input, class_dim, overwrite=own, m=m)
    smooth = None
    if smooths(eps):  # PyTorch's smoothing path is taken only for eps > 0
        # -sum_c w_c log p_c = log(s) sum_c w_c - sum_c w_c shifted_c: for w >= 0 two
        # non-negative terms (shifted <= 0 <= log s), so nothing cancels.
        if weight is None:
            smooth = -xp.sum(shifted, axis=class_dim)
        else:
            smooth = -xp.tensordot(shifted, weight, axes=([class_dim], [0]))
    e = exp_into(xp, shifted) if own else xp.exp(shifted)
    del shifted
    s = xp.sum(e, axis=class_dim, keepdims=True)
    log_s = xp.squeeze(xp.log(s), axis=class_dim)
    _, valid, wt, _, _ = res_nll
    zero = xp.zeros((), dtype=input.dtype, device=device(input))
    one_hot = xp.where(valid, nll + wt * log_s, zero)
    if smooth is not None:
        smooth = (n_classes if weight is None else xp.sum(weight)) * log_s + smooth
        one_hot = (1.0 - eps) * one_hot
        smooth = _smoothing_factor(eps, n_classes) * xp.where(valid, smooth, zero)
    return one_hot, smooth, (e, s, res_nll, weight), divisor


def _smoothed_divisor(xp: Namespace, divisor: Any, a: Any, b: Any) -> Any:
    """The 'mean' divisor with smoothing, given the sums ``a`` and ``b`` of the two
    terms. PyTorch divides a and b by the divisor separately: when it is 0 (all
    targets ignored, or of weight 0), a/0 + b/0 is NaN unless a and b are nonzero
    and of one sign (then it is (a + b)/0 = +-inf, as here)."""
    nan = xp.asarray(math.nan, dtype=divisor.dtype, device=device(divisor))
    return xp.where((divisor == 0) & ~(a * b > 0), nan, divisor)


def _bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    ignore_index: Any,
    label_smoothing: Any,
    own: bool = False,
) -> tuple[Any, ...]:
    """``own``: the residuals are used once (``linear_cross_entropy``); the
    gradient is written over the softmax's exponentials."""
    e, s, res_nll, weight = res
    _, valid, wt, class_dim, n_classes = res_nll
    eps = label_smoothing
    zero = xp.zeros((), dtype=e.dtype, device=device(e))
    # Ignored entries get no gradient even when g is inf or NaN (the 0/0 'mean').
    gv = xp.where(valid, g, zero)
    # With dlogp = d loss / d log p, the log_softmax VJP is dlogp - softmax * sum_c dlogp;
    # here -sum_c dlogp = ((1 - eps) w_y + eps/C sum_c w_c) g.
    total = wt * gv
    if smooths(eps):
        w_sum = n_classes if weight is None else xp.sum(weight)
        total = (1.0 - eps) * total + _smoothing_factor(eps, n_classes) * w_sum * gv
    scale = xp.expand_dims(total, axis=class_dim) / s
    if own:
        e *= scale
        base = e
    else:
        base = e * scale
    if smooths(eps):
        # The smoothing term's dlogp: -eps/C w_c g, for every class.
        smooth = _smoothing_factor(eps, n_classes) * xp.expand_dims(gv, axis=class_dim)
        smooth = smooth if weight is None else smooth * xp.reshape(weight, _class_shape(e, class_dim))
        if own:
            base -= smooth
        else:
            base = base - smooth
    # ... plus the one-hot term -(1 - eps) w_y g, nll_loss's own gradient, added into `base`.
    gi = _nll_bwd(xp, res_nll, (1.0 - eps) * g if smooths(eps) else g, ignore_index=ignore_index, base=base)[0]
    return gi, None, None


# ----------------------------------------------------------------- class-probability targets


def _prob_fwd(xp: Namespace, input: Any, target: Any, weight: Any, *, label_smoothing: Any, own: bool = False) -> Any:
    """``own``: ``input`` is the caller's temporary, shifted in place into log p."""
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    shifted, e, s = log_softmax_parts(xp, input, class_dim, overwrite=own)
    # log_softmax, in input's dtype as PyTorch's; promoted below.
    if own:
        shifted -= xp.log(s)
        logp = shifted
    else:
        logp = shifted - xp.log(s)
    del shifted
    dtype = result_float_dtype(xp, input, target, weight)
    tgt = as_float(xp, target, dtype)
    eps = label_smoothing
    if smooths(eps):
        tgt = tgt * (1.0 - eps) + _smoothing_factor(eps, n_classes)
    prod = logp * tgt
    w = None
    if weight is not None:
        w = xp.reshape(as_float(xp, weight, dtype), _class_shape(input, class_dim))
        prod = prod * w
    loss = -xp.sum(prod, axis=class_dim)
    # 'mean' divides by the number of samples (numel / C); PyTorch returns NaN
    # for an empty input, also when only C is 0.
    divisor = float(size(loss)) if size(input) else math.nan
    return Forward(loss, (e, s, logp, tgt, w, class_dim), divisor)


def _prob_bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, label_smoothing: Any
) -> Any:
    e, s, logp, tgt, w, class_dim = res
    gb = xp.expand_dims(g, axis=class_dim)
    q = tgt if w is None else tgt * w  # d loss / d log p = -q g
    total = xp.sum(q, axis=class_dim, keepdims=True)
    gi = e * (gb * total / s) - q * gb
    lw = logp if w is None else logp * w
    gt = lw * (-(1.0 - label_smoothing) * gb)
    gw = None
    if w is not None:
        gw = -(tgt * logp * gb)
        others = tuple(i for i in range(gw.ndim) if i != class_dim)
        gw = xp.sum(gw, axis=others) if others else gw
    return gi, gt, gw


# ----------------------------------------------------------------- class


class CrossEntropyLoss(WeightedLoss):
    """Object form of :func:`cross_entropy` (``torch.nn.CrossEntropyLoss``)."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Array, target: Array) -> Array:
        return cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


def _example(xp: Namespace) -> Any:
    # PyTorch's docs example: a (3, 5) input and class indices; fixed numbers here.
    x = xp.asarray(
        [[0.3, -1.2, 0.8, 0.1, -0.5], [1.5, 0.2, -0.3, 0.0, 0.4], [-0.7, 0.9, 0.2, -1.1, 1.3]], dtype=xp.float64
    )
    return (x, xp.asarray([1, 0, 4])), {}


SPEC = register_spec(
    LossSpec(
        name="cross_entropy",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": -1}, rows_divisor=_nll_rows_divisor),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input",),
        summary="softmax cross entropy of logits, class indices or probabilities; classification",
        functional=cross_entropy,
        cls=CrossEntropyLoss,
        example=_example,
        curve=two_class_logits,
    )
)

# Probability targets take PyTorch's composite path, which also differentiates
# `target` and `weight`: a spec of its own (not registered; the name is one loss).
PROB_SPEC = LossSpec(
    name="cross_entropy",
    fwd=_prob_fwd,
    bwd=_prob_bwd,
    argnames=("input", "target", "weight"),
    optional=("weight",),
    differentiable=("input", "target", "weight"),
    summary=SPEC.summary,
    functional=cross_entropy,
    cls=CrossEntropyLoss,
    example=_example,
)
