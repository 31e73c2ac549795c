"""Home of F.linear_cross_entropy and anyloss.LinearCrossEntropyLoss."""

from __future__ import annotations

import math
import numbers

from array_api_compat import is_jax_array

from .._call import gradient_wanted
from .._checks import check_floating, describe, fail, namespace
from .._module import ParameterLoss
from .._reduction import check_reduction
from .._spec import LossSpec, native_call, register_spec
from ._curves import linear_two_class
from .._xp import (add_at, as_float, device, exp_into, index_dtype, is_lazy, result_float_dtype, size,
                   take_along)
from .cross_entropy import _smoothing_factor
from .nll_loss import _check_class_target, _ignored

# Automatic chunking: the logits of one chunk take about this many bytes, and
# the weight gradient is accumulated in blocks of classes whose product with a
# chunk takes about _BLOCK_BYTES (so no temporary of the weight's size exists).
_CHUNK_BYTES = 20 * 2**20
_BLOCK_BYTES = 8 * 2**20


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    r"""Cross entropy of the logits of a linear layer, :math:`z = x W^T + b`,
    computed chunk by chunk: the full logits never exist at once.

    It equals ``cross_entropy(linear(input, W, b), target, ...)`` -- PyTorch
    2.13's reference path -- for every option: class indices with ``weight``,
    ``ignore_index`` and ``label_smoothing``, class probabilities, and
    K-dimensional logits (a ``linear_weight`` of shape (C, d1, ..., dK, in)
    gives logits (N, C, d1, ..., dK), softmax over C). With :math:`\log p =
    \text{log\_softmax}(z)`, smoothing :math:`\varepsilon` and class weights
    :math:`w`:

    .. math::
        \ell_n = -(1 - \varepsilon)\, w_{y_n} \log p_{n, y_n} - \frac{\varepsilon}{C} \sum_c w_c \log p_{n, c}
        \quad\text{(class indices)}, \qquad
        \ell_n = -\sum_c w_c \big((1 - \varepsilon) y_{n, c} + \tfrac{\varepsilon}{C}\big) \log p_{n, c}
        \quad\text{(probabilities)}

    reduced as :func:`cross_entropy` reduces: ``'mean'`` divides by the total
    weight of the non-ignored targets for class indices (NaN when all are
    ignored, as PyTorch) and by the number of samples for probabilities.

    Memory and time: the batch is split into chunks of rows (see
    ``options``); each chunk's logits, softmax and gradient live only while
    that chunk is processed, and the weight gradient is accumulated in place
    in blocks of classes. When a gradient will be asked for (inside
    :func:`anyloss.value_and_grad`/:func:`~anyloss.vjp`, or torch tensors that
    require grad) with ``'mean'``/``'sum'``, the forward computes the gradients
    in the same pass (the loss is linear in its cotangent) and the backward
    only scales them: three matrix products per chunk in all. Otherwise the
    forward computes the loss alone (one product per chunk) and the backward
    recomputes each chunk (``'none'``, a non-uniform or non-finite cotangent,
    lazy arrays). Extra memory: the gradients themselves, about one chunk's
    logits (two with probability targets) and a few blocks of classes; at
    N=4096, in=512, C=32000 in float32 about a fifth of the full logits (see
    ``benchmarks/bench_linear_cross_entropy.py``).

    Args:
        input: (in) or (N, in), floating.
        linear_weight: (C, in), or (C, d1, ..., dK, in) for K-dimensional
            logits (then ``input`` must be batched); ``input``'s dtype.
        target: class indices in [0, C) or ``ignore_index``, any integer
            dtype, of shape (), (N) or (N, d1, ..., dK); or class
            probabilities, floating, of the logits' shape (C), (N, C) or
            (N, C, d1, ..., dK) (PyTorch's rule: that shape means probabilities).
        linear_bias: optional (C) or (C, d1, ..., dK), ``input``'s dtype.
        weight: optional per-class weights (C); ``input``'s dtype for class
            indices, any real dtype for probabilities.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        ignore_index: ``None`` (-100 for class indices) or an int; must be
            ``None`` with probability targets, as in PyTorch.
        label_smoothing: :math:`\varepsilon` in [0, 1] (a negative value,
            which PyTorch silently ignores, is a ``ValueError`` here as in
            :func:`cross_entropy`).
        options: PyTorch's ``LinearCrossEntropyOptions`` or any object with
            its ``batch_chunk_size`` (rows per chunk, or None) and
            ``chunking_method`` (``"auto"``, ``"aspect_ratio[:k]"`` with
            PyTorch's formula, or None) attributes, read as PyTorch reads them
            (``chunking_method=None`` without a size means one chunk). ``None``
            or ``"auto"``: chunks whose logits take about 20 MiB. Its precision
            settings (``acc_policy``, ``acc_dtype``) do not apply: anyloss
            computes in ``input``'s dtype, as the reference path does. Unlike
            PyTorch's chunked path, every option above is chunked.

    Shape:
        output scalar, or for ``'none'`` (), (N) or (N, d1, ..., dK).

    Gradients: ``input``, ``linear_weight`` and ``linear_bias``; with
    probability targets also ``target`` and ``weight`` (as PyTorch's reference
    path). The range of class indices is not checked under ``jax.jit`` or on
    lazy Dask arrays.

    Example:
        >>> import numpy as np, anyloss, anyloss.functional as F
        >>> x = np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]])
        >>> w = np.array([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]])
        >>> print(f"{F.linear_cross_entropy(x, w, np.array([1, 0, 2])):.4f}")
        1.3649
        >>> value, (gx, gw) = anyloss.value_and_grad(F.linear_cross_entropy, argnums=(0, 1))(x, w, np.array([1, 0, 2]))
        >>> gw.shape
        (3, 2)
    """
    reduction = check_reduction(reduction)
    if not isinstance(label_smoothing, numbers.Real):
        fail(TypeError, "label_smoothing", "be a real number", describe(label_smoothing))
    if not 0.0 <= label_smoothing <= 1.0:  # NaN fails too
        fail(ValueError, "label_smoothing", "be in [0, 1]", label_smoothing)
    xp = namespace(input=input, linear_weight=linear_weight, target=target, linear_bias=linear_bias, weight=weight)
    check_floating(xp, "input", input)
    if input.ndim not in (1, 2):
        fail(ValueError, "input", "be 1-D (in_features) or 2-D (N, in_features)", f"shape {tuple(input.shape)}")
    check_floating(xp, "linear_weight", linear_weight)
    if linear_weight.ndim < 2:
        fail(ValueError, "linear_weight", "be at least 2-D: (C, in_features) or (C, d1, ..., dK, in_features)",
             f"shape {tuple(linear_weight.shape)}")
    in_features = input.shape[-1]
    if linear_weight.shape[-1] != in_features:
        fail(ValueError, "linear_weight", f"have `input`'s in_features ({in_features}) as its last dimension",
             f"shape {tuple(linear_weight.shape)}")
    if linear_weight.dtype != input.dtype:  # PyTorch's matmul refuses mixed dtypes
        fail(TypeError, "linear_weight", f"have `input`'s dtype {input.dtype}", linear_weight.dtype)
    n_classes, out = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None:
        if tuple(linear_bias.shape) != (n_classes, *out):
            fail(ValueError, "linear_bias", f"have shape {(n_classes, *out)} (linear_weight's shape without "
                 "in_features)", f"shape {tuple(linear_bias.shape)}")
        if linear_bias.dtype != input.dtype:
            fail(TypeError, "linear_bias", f"have `input`'s dtype {input.dtype}", linear_bias.dtype)
    if out and input.ndim == 1:
        fail(ValueError, "input", f"be batched (N, {in_features}) with a K-dimensional `linear_weight` of shape "
             f"{tuple(linear_weight.shape)}", f"shape {tuple(input.shape)}")
    batch = tuple(input.shape[:-1])
    logits_shape = (*batch, n_classes, *out)
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != n_classes):
        fail(ValueError, "weight", f"be 1-D with one entry per class ({n_classes},)", f"shape {tuple(weight.shape)}")
    rows = _chunk_rows(xp, options, math.prod(batch), in_features, n_classes * math.prod(out), input.dtype)
    arrays = (input, linear_weight, target, linear_bias, weight)
    # The gradients are computed along with the loss when they will be asked
    # for, the reduction is a scalar, and values can be read (to check the
    # cotangent in the backward; not on JAX, whose bridge traces the forward);
    # otherwise the backward recomputes.
    wanted = gradient_wanted(arrays)
    readable = not is_lazy(input) and not is_jax_array(input)
    precompute = reduction if reduction != "none" and wanted and readable else None
    eps = float(label_smoothing)
    if tuple(target.shape) == logits_shape:  # PyTorch's rule: the logits' shape means class probabilities
        if ignore_index is not None:
            fail(ValueError, "ignore_index", "be None with class-probability targets", repr(ignore_index))
        if not xp.isdtype(target.dtype, "real floating"):
            fail(TypeError, "target", f"have a floating-point dtype when it has the logits' shape {logits_shape} "
                 "(class probabilities)", target.dtype)
        if weight is not None and not xp.isdtype(weight.dtype, ("integral", "real floating")):
            fail(TypeError, "weight", "have a real dtype", weight.dtype)
        return PROB_SPEC.apply(xp, arrays, reduction, label_smoothing=eps, chunk_rows=rows, precompute=precompute)
    ignore_index = -100 if ignore_index is None else ignore_index
    if not xp.isdtype(target.dtype, "integral"):
        fail(TypeError, "target", f"have an integer dtype (class indices), or a floating one and the logits' shape "
             f"{logits_shape} (class probabilities)", target.dtype)
    want = (*batch, *out)
    if tuple(target.shape) != want and not (not batch and tuple(target.shape) == (1,)):
        fail(ValueError, "target", f"have shape {want} (class indices) or {logits_shape} (class probabilities) "
             f"for logits of shape {logits_shape}", f"shape {tuple(target.shape)}")
    _check_class_target(xp, _Logits(logits_shape), target, ignore_index)
    if weight is not None and weight.dtype != input.dtype:
        fail(TypeError, "weight", f"have `input`'s dtype {input.dtype}", weight.dtype)
    return SPEC.apply(xp, arrays, reduction, ignore_index=int(ignore_index), label_smoothing=eps, chunk_rows=rows,
                      precompute=precompute)


class _Logits:
    """Stands for the logits (never built) in the checks shared with cross_entropy."""

    def __init__(self, shape):
        self.shape, self.ndim = shape, len(shape)


def _chunk_rows(xp, options, n_rows, in_features, row_classes, dtype):
    """Rows per chunk, from ``options`` as PyTorch's ``LinearCrossEntropyOptions._adjust``
    reads it, or automatic (logits of about ``_CHUNK_BYTES`` per chunk)."""
    size_, method = None, "auto"
    if options is not None:
        if not (hasattr(options, "batch_chunk_size") or hasattr(options, "chunking_method")):
            fail(TypeError, "options", "be None or a LinearCrossEntropyOptions (an object with `batch_chunk_size` "
                 "and/or `chunking_method`)", describe(options))
        size_ = getattr(options, "batch_chunk_size", None)
        method = getattr(options, "chunking_method", "auto" if size_ is None else None)
        if size_ is not None and (isinstance(size_, bool) or not isinstance(size_, numbers.Integral) or size_ < 1):
            fail(ValueError, "options.batch_chunk_size", "be a positive int or None", repr(size_))
        if method is not None and not isinstance(method, str):
            fail(TypeError, "options.chunking_method", "be None, 'auto' or 'aspect_ratio[:k]'", repr(method))
    if method == "auto" and size_ is not None:
        method = None  # an explicit size wins over "auto", as in PyTorch
    if method == "auto":
        itemsize = xp.finfo(dtype).bits // 8
        rows = _CHUNK_BYTES // max(1, row_classes * itemsize)
    elif method is None:
        rows = n_rows if size_ is None else size_
    else:
        name, _, factor = method.partition(":")
        factor = factor or "1"
        if name != "aspect_ratio" or not factor.isdigit() or int(factor) < 1:
            fail(ValueError, "options.chunking_method", "be None, 'auto' or 'aspect_ratio[:k]' with k >= 1",
                 repr(method))
        # PyTorch's formula: a chunk's logits about the size of the input, divided by k.
        target_rows = -(-n_rows // max(1, -(-row_classes // max(1, in_features))))
        rows = min((1 << max(0, target_rows - 1).bit_length()) // int(factor), n_rows)
        if size_ is not None and size_ != rows:
            fail(ValueError, "options", f"give one chunk size: batch_chunk_size ({size_}) and chunking_method "
                 f"({method!r} -> {rows} rows) disagree; pass only one", repr(options))
    return int(max(1, min(rows, n_rows)))


# ----------------------------------------------------------------- shared by both target kinds

def _flat(xp, input, linear_weight, linear_bias):
    """``(x, w, b, tail)``: input as (N, in), the weight as (C * d, in), the bias
    as (C * d,) and the logits' shape after N: (C, d) for K-dimensional logits
    (d = d1 * ... * dK), (C,) otherwise."""
    x = input if input.ndim == 2 else xp.reshape(input, (1, input.shape[0]))
    out = tuple(linear_weight.shape[1:-1])
    tail = (linear_weight.shape[0], math.prod(out)) if out else (linear_weight.shape[0],)
    w = linear_weight if not out else xp.reshape(linear_weight, (-1, linear_weight.shape[-1]))
    b = linear_bias if linear_bias is None or not out else xp.reshape(linear_bias, (-1,))
    return x, w, b, tail


def _logits(xp, x, w, b, i0, i1, tail):
    """The logits of rows ``i0:i1``, shape (rows, *tail)."""
    z = xp.matmul(x[i0:i1, ...], w.T)
    if b is not None:
        z += b
    return z if len(tail) == 1 else xp.reshape(z, (i1 - i0, *tail))


def _softmax_parts(xp, z):
    """``(shifted, e, s)`` along the class axis 1, as :func:`cross_entropy`
    computes them: ``shifted = z - max``, ``e = exp(shifted)``, ``s = sum(e)``.
    ``z`` is a chunk's own logits and is shifted in place (in-place operators
    rebind on JAX), so a chunk holds two logits-sized arrays, not three.
    (Class-index targets need less of ``shifted`` and overwrite it with ``e``.)"""
    if z.shape[1]:
        z -= xp.max(z, axis=1, keepdims=True)
    e = xp.exp(z)
    return z, e, xp.sum(e, axis=1, keepdims=True)


class _Grads:
    """Gradients of input, weight and bias accumulated chunk by chunk."""

    def __init__(self, xp, x, w, b):
        self.xp, self.x, self.w = xp, x, w
        self.gx = xp.zeros_like(x)
        self.gw = xp.zeros_like(w)
        self.gb = None if b is None else xp.zeros_like(b)
        in_features = w.shape[1]
        self.block = max(1, _BLOCK_BYTES // max(1, in_features * (xp.finfo(w.dtype).bits // 8)))

    def add(self, dz, i0, i1, onehot=None):
        """Chunk ``i0:i1`` with logit gradient ``dz`` (rows, C, *tail), plus,
        with ``onehot = (safe, coef, sg, weight)``, the terms of
        :func:`_onehot_block` (class-index targets).

        It goes block of classes by block of classes: each block of ``dz``
        gets its one-hot part, then feeds the input gradient, its rows of the
        weight gradient (added in place) and of the bias gradient. So nothing
        of the size of ``dz`` or of the weight is allocated here."""
        xp = self.xp
        dz = xp.reshape(dz, (i1 - i0, -1)) if dz.ndim != 2 else dz
        xc = self.x[i0:i1, ...]
        n, gx = dz.shape[1], None
        for c0 in range(0, n, self.block):
            c1 = min(n, c0 + self.block)
            d = dz[:, c0:c1]
            if onehot is not None:
                d = d + _onehot_block(xp, *onehot, c0, c1)
            # (W^T d^T)^T rather than d W: OpenBLAS splits this shape better across threads.
            part = xp.matmul(self.w[c0:c1, ...].T, d.T).T
            gx = part if gx is None else gx + part
            self.gw = add_at(xp, self.gw, (slice(c0, c1), ...), xp.matmul(d.T, xc))
            if self.gb is not None:
                self.gb = add_at(xp, self.gb, slice(c0, c1), xp.sum(d, axis=0))
        if gx is not None:
            self.gx = add_at(xp, self.gx, (slice(i0, i1), ...), gx)

    def result(self, input, linear_weight, linear_bias):
        xp = self.xp
        gb = None if self.gb is None else xp.reshape(self.gb, linear_bias.shape)
        return xp.reshape(self.gx, input.shape), xp.reshape(self.gw, linear_weight.shape), gb


def _onehot_block(xp, safe, coef, sg, weight, c0, c1):
    """Columns ``c0:c1`` of the flattened (rows, C * d) array that holds
    ``coef[n, k]`` at class ``safe[n, k]`` of position ``k`` and 0 elsewhere,
    minus ``sg[n, k] * weight[c]`` everywhere when ``sg`` is given (``safe``,
    ``coef``, ``sg``: (rows,) or (rows, d)). Column ``j`` is class ``j // d`` at
    position ``j % d``."""
    zero = xp.zeros((), dtype=coef.dtype, device=device(coef))
    cols = xp.arange(c0, c1, dtype=safe.dtype, device=device(safe))
    if safe.ndim == 1:
        out = xp.where(xp.expand_dims(safe, axis=1) == cols, xp.expand_dims(coef, axis=1), zero)
        if sg is not None:
            out -= xp.expand_dims(sg, axis=1) * weight[c0:c1]
        return out
    d = safe.shape[1]
    pos = cols % d
    out = xp.where(xp.take(safe, pos, axis=1) == cols // d, xp.take(coef, pos, axis=1), zero)
    if sg is not None:
        out -= xp.take(sg, pos, axis=1) * xp.take(weight, cols // d, axis=0)
    return out


def _first(xp, g):
    return xp.reshape(g, (-1,))[0]


def _scaled(xp, pre, g, unit):
    """The precomputed gradients ``pre`` (for the cotangent ``unit`` of every
    sample) for the uniform cotangent ``g``, or None when ``g`` is not finite
    (0/0 'mean' and the like: recomputing keeps PyTorch's exact zeros and NaNs)."""
    c = _first(xp, g)
    if bool(c == unit):
        return pre
    if not bool(xp.isfinite(c)):
        return None
    scale = c / unit
    return tuple(None if a is None else a * xp.astype(scale, a.dtype) for a in pre)


# ----------------------------------------------------------------- class-index targets

def _class_targets(xp, target, weight, ignore_index, n, tail, dtype):
    """Flattened class-index targets ``(safe, valid, wt)``: the indices with
    ignored ones set to 0, the mask of the others, and the weight of each
    target (0 where ignored); shape (N,) or (N, d)."""
    t = xp.reshape(xp.astype(target, index_dtype(xp, target)), (n, *tail[1:]))
    ignored = _ignored(xp, t, ignore_index)
    valid = xp.ones(t.shape, dtype=xp.bool, device=device(t)) if ignored is None else ~ignored
    safe = xp.where(valid, t, xp.zeros((), dtype=t.dtype, device=device(t)))
    if weight is None:
        wt = xp.astype(valid, dtype)
    elif weight.shape[0] == 0:  # no classes: every target is ignored (checked)
        wt = xp.zeros(t.shape, dtype=dtype, device=device(t))
    else:
        wt = xp.reshape(xp.take(weight, xp.reshape(safe, (-1,)), axis=0), tuple(t.shape))
        wt = xp.where(valid, wt, xp.zeros((), dtype=dtype, device=device(t)))
    return safe, valid, wt


def _class_chunk(xp, z, safe, valid, wt, weight, eps, g):
    """Loss terms of one chunk of logits ``z`` (rows, C, *tail), and with a
    per-sample cotangent ``g`` the gradient of the logits. Same formulas as
    :func:`cross_entropy`'s forward and VJP."""
    n_classes = z.shape[1]
    zero = xp.zeros((), dtype=z.dtype, device=device(z))
    # cross_entropy's log_softmax parts: shifted = z - max (in place), e = exp(shifted),
    # s = sum(e); what is needed of `shifted` is read before exp overwrites it.
    if n_classes:
        z -= xp.max(z, axis=1, keepdims=True)
    picked = take_along(xp, z, safe, 1) if n_classes else xp.zeros(safe.shape, dtype=z.dtype)
    smooth = None
    if eps > 0.0:  # sum_c w_c shifted_c, for PyTorch's smoothing term -eps/C sum_c w_c log p_c
        smooth = xp.sum(z, axis=1) if weight is None else xp.tensordot(z, weight, axes=([1], [0]))
    e = exp_into(xp, z)
    del z
    s = xp.sum(e, axis=1, keepdims=True)
    log_s = xp.squeeze(xp.log(s), axis=1)
    # -w_y log p_y = w_y (log s - shifted_y): two non-negative terms, nothing cancels.
    nll = xp.where(valid, wt * (log_s - picked), zero)
    if eps > 0.0:
        smooth = (n_classes if weight is None else xp.sum(weight)) * log_s - smooth
        nll = (1.0 - eps) * nll
        smooth = _smoothing_factor(eps, n_classes) * xp.where(valid, smooth, zero)
    del picked
    if g is None:
        return nll, smooth, None
    # Ignored entries get no gradient even when g is inf or NaN (the 0/0 'mean').
    gv = xp.where(valid, g, zero)
    total = wt * gv  # -sum_c dloss/dlogp_c: the softmax part of the gradient
    if eps > 0.0:
        w_sum = n_classes if weight is None else xp.sum(weight)
        total = (1.0 - eps) * total + _smoothing_factor(eps, n_classes) * w_sum * gv
    # In place, on the chunk's own arrays: softmax * total ...
    dz = e
    del e
    dz *= xp.expand_dims(total, axis=1) / s
    sg = None
    if eps > 0.0:  # ... minus the smoothing term's eps/C w_c g ...
        sg = _smoothing_factor(eps, n_classes) * gv
        if weight is None:
            dz -= xp.expand_dims(sg, axis=1)
            sg = None
        # (with weights an outer product: _Grads.add subtracts it block by block)
    # ... minus (1 - eps) w_y g at the target class, also added by _Grads.add.
    coef = -((1.0 - eps) * (wt * gv)) if eps > 0.0 else -(wt * gv)
    return nll, smooth, (dz, (coef, sg))


def _class_pass(xp, lin, tg, weight, eps, rows, g):
    """All chunks: ``(nll, smooth, grads)``; ``grads`` only with a cotangent ``g``
    (per sample, or a 0-d array for every sample). ``tg``: :func:`_class_targets`."""
    x, w, b, tail = lin
    n = x.shape[0]
    grads = None if g is None else _Grads(xp, x, w, b)
    nlls, smooths = [], []
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        gc = None if g is None else (g if g.ndim == 0 else g[i0:i1, ...])
        safe = tg[0][i0:i1, ...]
        nll, smooth, dz = _class_chunk(xp, _logits(xp, x, w, b, i0, i1, tail), safe, tg[1][i0:i1, ...],
                                       tg[2][i0:i1, ...], weight, eps, gc)
        nlls.append(nll)
        smooths.append(smooth)
        if grads is not None:
            dz, (coef, sg) = dz
            grads.add(dz, i0, i1, (safe, coef, sg, weight))
            del dz
    if not nlls:
        empty = xp.zeros((0, *tail[1:]), dtype=x.dtype, device=device(x))
        return empty, (empty if eps > 0.0 else None), grads
    nll = xp.concat(nlls, axis=0) if len(nlls) > 1 else nlls[0]
    smooth = None if eps == 0.0 else (xp.concat(smooths, axis=0) if len(smooths) > 1 else smooths[0])
    return nll, smooth, grads


def _fwd(xp, input, linear_weight, target, linear_bias, weight, *, ignore_index, label_smoothing, chunk_rows,
         precompute):
    lin = _flat(xp, input, linear_weight, linear_bias)
    x, _, _, tail = lin
    tg = _class_targets(xp, target, weight, ignore_index, x.shape[0], tail, input.dtype)
    # 'mean' divides by the total weight of the non-ignored targets (0/0 = NaN when all are ignored).
    divisor = xp.sum(tg[2])
    unit = None
    if precompute is not None and size(tg[2]) and (precompute == "sum" or bool(divisor != 0)):
        # The cotangent every sample gets from the reduction of a cotangent 1, computed as _reduction does.
        ones = xp.ones((), dtype=input.dtype, device=device(input))
        unit = ones if precompute == "sum" else ones / divisor
    nll, smooth, grads = _class_pass(xp, lin, tg, weight, label_smoothing, chunk_rows, unit)
    loss = nll if smooth is None else nll + smooth
    if smooth is not None:
        # PyTorch divides the two terms' sums a and b by the divisor separately. When
        # it is 0, a/0 + b/0 is NaN unless a and b are nonzero and of one sign.
        a, b = xp.sum(nll), xp.sum(smooth)
        nan = xp.asarray(math.nan, dtype=divisor.dtype, device=device(divisor))
        divisor = xp.where((divisor == 0) & ~(a * b > 0), nan, divisor)
    loss = xp.reshape(loss, _loss_shape(input, linear_weight))
    pre = None if grads is None else (*grads.result(input, linear_weight, linear_bias), None)
    return loss, ((input, linear_weight, target, linear_bias, weight), tg, pre, unit), divisor


def _bwd(xp, res, g, g_divisor=None, *, ignore_index, label_smoothing, chunk_rows, precompute):
    (input, linear_weight, target, linear_bias, weight), tg, pre, unit = res
    if pre is not None:
        got = _scaled(xp, pre, g, unit)
        if got is not None:
            gi, gw, gb, _ = got
            return gi, gw, None, gb, None
    lin = _flat(xp, input, linear_weight, linear_bias)
    g = xp.reshape(g, tuple(tg[2].shape))
    _, _, grads = _class_pass(xp, lin, tg, weight, label_smoothing, chunk_rows, g)
    gi, gw, gb = grads.result(input, linear_weight, linear_bias)
    return gi, gw, None, gb, None


def _loss_shape(input, linear_weight):
    return (*input.shape[:-1], *linear_weight.shape[1:-1])


# ----------------------------------------------------------------- class-probability targets

def _prob_chunk(xp, z, y, w, eps, dtype, g):
    """Loss of one chunk of logits ``z`` with probabilities ``y`` (both (rows, C,
    *tail)); with a per-sample cotangent ``g`` also the gradients of the
    logits, of ``y`` and of the class weights ``w`` (already in class shape)."""
    n_classes, zdtype = z.shape[1], z.dtype
    shifted, e, s = _softmax_parts(xp, z)
    del z
    shifted -= xp.log(s)
    logp = as_float(xp, shifted, dtype)  # in the logits' dtype, as PyTorch's log_softmax
    del shifted
    tgt = as_float(xp, y, dtype)
    if eps > 0.0:
        tgt = tgt * (1.0 - eps) + _smoothing_factor(eps, n_classes)
    q = tgt if w is None else tgt * w
    loss = -xp.sum(logp * q, axis=1)
    if g is None:
        return loss, None, None, None
    gb = xp.expand_dims(g, axis=1) if g.ndim else g
    dz = e * (gb * xp.sum(q, axis=1, keepdims=True) / s) - q * gb
    dz = as_float(xp, dz, zdtype)
    lw = logp if w is None else logp * w
    gy = lw * (-(1.0 - eps) * gb)
    gw = None
    if w is not None:
        prod = tgt * logp * gb
        gw = -xp.sum(prod, axis=(0, *range(2, prod.ndim)))
    return loss, dz, gy, gw


def _prob_pass(xp, lin, target, weight, eps, rows, g):
    x, w, b, tail = lin
    n = x.shape[0]
    n_classes = target.shape[1]
    dtype = result_float_dtype(xp, x, target, weight)
    wc = None if weight is None else xp.reshape(as_float(xp, weight, dtype), (n_classes,) + (1,) * (len(tail) - 1))
    grads = gy = gw = None
    if g is not None:
        grads = _Grads(xp, x, w, b)
        gy = xp.zeros(target.shape, dtype=dtype, device=device(target))
        gw = None if wc is None else xp.zeros((n_classes,), dtype=dtype, device=device(target))
    losses = []
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        gc = None if g is None else (g if g.ndim == 0 else g[i0:i1, ...])
        loss, dz, gyc, gwc = _prob_chunk(xp, _logits(xp, x, w, b, i0, i1, tail), target[i0:i1, ...], wc, eps,
                                         dtype, gc)
        losses.append(loss)
        if g is not None:
            grads.add(dz, i0, i1)
            del dz
            gy = add_at(xp, gy, (slice(i0, i1), ...), gyc)
            if gw is not None:
                gw = gw + gwc
    if not losses:
        loss = xp.zeros((0, *tail[1:]), dtype=dtype, device=device(x))
    else:
        loss = xp.concat(losses, axis=0) if len(losses) > 1 else losses[0]
    return loss, grads, gy, gw


def _prob_fwd(xp, input, linear_weight, target, linear_bias, weight, *, label_smoothing, chunk_rows, precompute):
    lin = _flat(xp, input, linear_weight, linear_bias)
    x, _, _, tail = lin
    y = xp.reshape(target, (x.shape[0], *tail))
    # 'mean' divides by the number of samples; NaN for empty logits, as PyTorch.
    n_samples = x.shape[0] * math.prod(tail[1:])
    divisor = float(n_samples) if n_samples * linear_weight.shape[0] else math.nan
    dtype = result_float_dtype(xp, input, target, weight)
    unit = None
    if precompute is not None and n_samples and not math.isnan(divisor):
        ones = xp.ones((), dtype=dtype, device=device(input))
        unit = ones if precompute == "sum" else ones / divisor
    loss, grads, gy, gw = _prob_pass(xp, lin, y, weight, label_smoothing, chunk_rows, unit)
    loss = xp.reshape(loss, _loss_shape(input, linear_weight))
    pre = None
    if grads is not None:
        pre = (*grads.result(input, linear_weight, linear_bias), xp.reshape(gy, target.shape), gw)
    return loss, ((input, linear_weight, target, linear_bias, weight), y, pre, unit), divisor


def _prob_bwd(xp, res, g, g_divisor=None, *, label_smoothing, chunk_rows, precompute):
    (input, linear_weight, target, linear_bias, weight), y, pre, unit = res
    if pre is not None:
        got = _scaled(xp, pre, g, unit)
        if got is not None:
            gi, glw, gb, gy, gw = got
            return gi, glw, gy, gb, gw
    lin = _flat(xp, input, linear_weight, linear_bias)
    x, _, _, tail = lin
    g = xp.reshape(g, (x.shape[0], *tail[1:]))
    _, grads, gy, gw = _prob_pass(xp, lin, y, weight, label_smoothing, chunk_rows, g)
    gi, glw, gb = grads.result(input, linear_weight, linear_bias)
    return gi, glw, xp.reshape(gy, target.shape), gb, gw


# ----------------------------------------------------------------- class

class LinearCrossEntropyLoss(ParameterLoss):
    """Object form of :func:`linear_cross_entropy` (``torch.nn.LinearCrossEntropyLoss``),
    holding the linear layer's parameters.

    Form (see :class:`anyloss._module.ParameterLoss`): the instance owns its
    parameters as arrays of the library ``xp`` (NumPy by default), in
    ``dtype`` (default float32) on ``device``, under PyTorch's names:
    ``"linear.weight"`` of shape (C * d1 * ... * dK, in_features) and, with
    ``bias=True``, ``"linear.bias"`` (C * d1 * ... * dK,) -- flat, as PyTorch
    stores them -- also reachable as ``loss.linear.weight``/``loss.linear.bias``.
    They are initialised as ``torch.nn.Linear`` does, U(-1/sqrt(in_features),
    1/sqrt(in_features)), from ``numpy.random.default_rng(seed)``.

    ``loss(input, target)`` is the loss; ``loss.value_and_grad(input, target)``
    returns ``(value, {"input": g, "linear.weight": g, "linear.bias": g})``;
    ``loss.load_state_dict(torch_module.state_dict())`` takes PyTorch's
    parameters (and its class ``weight`` buffer) over, giving identical
    outputs and gradients. ``xp`` and ``seed`` are the only arguments PyTorch
    does not have.

    Example:
        >>> import numpy as np, anyloss
        >>> loss = anyloss.LinearCrossEntropyLoss(4, 3, bias=True, seed=0)
        >>> sorted(loss.state_dict()), loss.linear.weight.shape, loss.linear.weight.dtype
        (['linear.bias', 'linear.weight'], (3, 4), dtype('float32'))
        >>> value, grads = loss.value_and_grad(np.ones((2, 4), dtype=np.float32), np.array([0, 2]))
        >>> sorted(grads)
        ['input', 'linear.bias', 'linear.weight']
    """

    _buffer_names = ("weight",)

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple[int, ...] = (), bias: bool = False,
                 device=None, dtype=None, reduction: str = "mean", weight=None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0, options=None, xp=None, seed=None) -> None:
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                fail(TypeError, name, "be an int", describe(value))
            if value < 0:
                fail(ValueError, name, "be >= 0", value)
        if not isinstance(out_features, (tuple, list)) or not all(
                isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in out_features):
            fail(ValueError, "out_features", "be a tuple of non-negative ints", repr(out_features))
        if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
            fail(ValueError, "label_smoothing", "be in [0, 1]", repr(label_smoothing))
        super().__init__(reduction, xp=xp, dtype=dtype, device=device, seed=seed)
        if weight is not None:
            weight = self._asarray(weight, None, "weight")
            if tuple(weight.shape) != (num_classes,):
                fail(ValueError, "weight", f"have shape ({num_classes},)", f"shape {tuple(weight.shape)}")
        self.weight = weight
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.out_features = tuple(int(d) for d in out_features)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.options = options
        rows = math.prod(self.out_features, start=self.num_classes)
        # torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) and the bias both give U(-1/sqrt(in), 1/sqrt(in)).
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self._init_uniform("linear.weight", (rows, self.in_features), bound)
        if bias:
            self._init_uniform("linear.bias", (rows,), bound)

    def _loss_argument(self, name, array):
        if not self.out_features:
            return array
        shape = (self.num_classes, *self.out_features) + ((self.in_features,) if name == "linear.weight" else ())
        return self._xp.reshape(array, shape)

    def _forward_with(self, params, input, target):
        return linear_cross_entropy(input, params["linear.weight"], target, linear_bias=params.get("linear.bias"),
                                    weight=self.weight, reduction=self.reduction, ignore_index=self.ignore_index,
                                    label_smoothing=self.label_smoothing, options=self.options)

    def forward(self, input, target):
        return super().forward(input, target)

    def __repr__(self) -> str:
        return (f"LinearCrossEntropyLoss(in_features={self.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={'linear.bias' in self._params}, "
                f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}, options={self.options})")


def _example(xp):
    x = xp.asarray([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]], dtype=xp.float64)
    w = xp.asarray([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]], dtype=xp.float64)
    return (x, w, xp.asarray([1, 0, 2])), {}


SPEC = register_spec(LossSpec(
    name="linear_cross_entropy",
    native=native_call("linear_cross_entropy", drop=("chunk_rows", "precompute")),
    fwd=_fwd,
    bwd=_bwd,
    argnames=("input", "linear_weight", "target", "linear_bias", "weight"),
    differentiable=("input", "linear_weight", "linear_bias"),
    summary="cross entropy of a linear layer's logits, chunked over the batch; large-vocabulary classification",
    functional=linear_cross_entropy,
    cls=LinearCrossEntropyLoss,
    example=_example,
    curve=linear_two_class,
))

# Probability targets follow PyTorch's composite path, which also differentiates
# `target` and `weight`: a spec of its own (not registered; the name is one loss).
PROB_SPEC = LossSpec(
    name="linear_cross_entropy",
    native=SPEC.native,
    fwd=_prob_fwd,
    bwd=_prob_bwd,
    argnames=SPEC.argnames,
    differentiable=("input", "linear_weight", "target", "linear_bias", "weight"),
    summary=SPEC.summary,
    functional=linear_cross_entropy,
    cls=LinearCrossEntropyLoss,
    example=_example,
)
