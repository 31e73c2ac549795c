"""Home of F.linear_cross_entropy and anyloss.LinearCrossEntropyLoss."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from array_api_compat import is_jax_array

from .._call import apply, gradient_wanted
from .._checks import (
    INTEGRAL,
    REAL,
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_class_target,
    check_class_weight,
    check_floating,
    describe,
    fail,
)
from .._module import ParameterLoss
from .._reduction import check_reduction
from .._spec import Forward, LossSpec, native_call, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import add_at, as_float, device, is_lazy, result_float_dtype, size
from ._curves import linear_two_class
from .cross_entropy import _bwd as _ce_bwd
from .cross_entropy import _prob_bwd as _ce_prob_bwd
from .cross_entropy import _prob_fwd as _ce_prob_fwd
from .cross_entropy import _smoothed_divisor, smoothing, smooths
from .cross_entropy import _terms as _ce_terms
from .nll_loss import _class_weights

# Automatic chunking: the logits of one chunk take about this many bytes, and
# the weight gradient is accumulated in blocks of classes whose product with a
# chunk takes about _BLOCK_BYTES (so no temporary of the weight's size exists).
_CHUNK_BYTES = 20 * 2**20
_BLOCK_BYTES = 8 * 2**20


def linear_cross_entropy(
    input: Array,
    linear_weight: Array,
    target: Array,
    *,
    linear_bias: Array | None = None,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    ignore_index: int | None = None,
    label_smoothing: float | Array = 0.0,
    options: object | None = None,
) -> Array:
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
    ``options``), and each chunk runs :func:`cross_entropy`'s own forward and
    gradient on its logits, overwriting them (softmax, then gradient, in
    place): they live only while that chunk is processed, and the weight
    gradient is accumulated in place in blocks of classes. When a gradient will be asked for (inside
    :func:`anyloss.value_and_grad`/:func:`~anyloss.vjp`, or torch tensors that
    require grad) with ``'mean'``/``'sum'``, the forward computes the gradients
    in the same pass (the loss is linear in its cotangent) and the backward
    only scales them: three matrix products per chunk in all. Otherwise the
    forward computes the loss alone (one product per chunk) and the backward
    recomputes each chunk (``'none'``, a non-uniform or non-finite cotangent,
    lazy arrays). Extra memory: the gradients themselves, about one chunk's
    logits (two with probability targets) and a few blocks of classes; at
    N=4096, in=512, C=32000 in float32 about a fifth of the full logits, 0.21x
    (0.23x with class weights and smoothing; see
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
    xp, (input, linear_weight, target, linear_bias, weight) = SPEC.adopt(
        input=input, linear_weight=linear_weight, target=target, linear_bias=linear_bias, weight=weight
    )
    check_floating(xp, "input", input, TypeNotImplementedError)
    if input.ndim not in (1, 2):
        fail(ValueRuntimeError, "input", "be 1-D (in_features) or 2-D (N, in_features)", f"shape {tuple(input.shape)}")
    check_floating(xp, "linear_weight", linear_weight, TypeRuntimeError)
    if linear_weight.ndim < 2:
        fail(
            ValueRuntimeError,
            "linear_weight",
            "be at least 2-D: (C, in_features) or (C, d1, ..., dK, in_features)",
            f"shape {tuple(linear_weight.shape)}",
        )
    in_features = input.shape[-1]
    if linear_weight.shape[-1] != in_features:
        fail(
            ValueRuntimeError,
            "linear_weight",
            f"have `input`'s in_features ({in_features}) as its last dimension",
            f"shape {tuple(linear_weight.shape)}",
        )
    if linear_weight.dtype != input.dtype:  # PyTorch's matmul refuses mixed dtypes
        fail(TypeRuntimeError, "linear_weight", f"have `input`'s dtype {input.dtype}", linear_weight.dtype)
    n_classes, out = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None:
        if tuple(linear_bias.shape) != (n_classes, *out):
            fail(
                ValueRuntimeError,
                "linear_bias",
                f"have shape {(n_classes, *out)} (linear_weight's shape without in_features)",
                f"shape {tuple(linear_bias.shape)}",
            )
        if linear_bias.dtype != input.dtype:
            fail(TypeRuntimeError, "linear_bias", f"have `input`'s dtype {input.dtype}", linear_bias.dtype)
    if out and input.ndim == 1:
        fail(
            ValueRuntimeError,
            "input",
            f"be batched (N, {in_features}) with a K-dimensional `linear_weight` of shape {tuple(linear_weight.shape)}",
            f"shape {tuple(input.shape)}",
        )
    batch = tuple(input.shape[:-1])
    logits_shape = (*batch, n_classes, *out)
    check_class_weight(weight, n_classes)
    rows = _chunk_rows(xp, options, math.prod(batch), in_features, n_classes * math.prod(out), input.dtype)
    arrays = (input, linear_weight, target, linear_bias, weight)
    # The gradients are computed along with the loss when they will be asked
    # for, the reduction is a scalar, and values can be read (to check the
    # cotangent in the backward; not on JAX, whose bridge traces the forward);
    # otherwise the backward recomputes.
    wanted = gradient_wanted(arrays)
    readable = not is_lazy(input) and not is_jax_array(input)
    precompute = reduction if reduction != "none" and wanted and readable else None
    computed = {"chunk_rows": rows, "precompute": precompute}
    eps = smoothing(xp, label_smoothing, input.dtype)
    if tuple(target.shape) == logits_shape:  # PyTorch's rule: the logits' shape means class probabilities
        if ignore_index is not None:
            fail(ValueRuntimeError, "ignore_index", "be None with class-probability targets", repr(ignore_index))
        if not xp.isdtype(target.dtype, "real floating"):
            fail(
                TypeRuntimeError,
                "target",
                f"have a floating-point dtype when it has the logits' shape {logits_shape} (class probabilities)",
                target.dtype,
            )
        if weight is not None and not xp.isdtype(weight.dtype, ("integral", "real floating")):
            fail(TypeError, "weight", "have a real dtype", weight.dtype)
        return apply(PROB_SPEC, xp, arrays, reduction, computed, label_smoothing=eps)
    ignore_index = -100 if ignore_index is None else ignore_index
    target = check_class_target(xp, logits_shape, target, ignore_index, of="the logits", probabilities=True)
    check_class_weight(weight, n_classes, input.dtype)
    arrays = (input, linear_weight, target, linear_bias, weight)
    return apply(SPEC, xp, arrays, reduction, computed, ignore_index=int(ignore_index), label_smoothing=eps)


def _chunk_rows(xp: Namespace, options: Any, n_rows: Any, in_features: Any, row_classes: Any, dtype: Any) -> Any:
    """Rows per chunk, from ``options`` as PyTorch's ``LinearCrossEntropyOptions._adjust``
    reads it, or automatic (logits of about ``_CHUNK_BYTES`` per chunk)."""
    size_: int | None = None
    method: str | None = "auto"
    if options is not None:
        if not (hasattr(options, "batch_chunk_size") or hasattr(options, "chunking_method")):
            fail(
                TypeError,
                "options",
                "be None or a LinearCrossEntropyOptions (an object with `batch_chunk_size` and/or `chunking_method`)",
                describe(options),
            )
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
            fail(
                ValueError, "options.chunking_method", "be None, 'auto' or 'aspect_ratio[:k]' with k >= 1", repr(method)
            )
        # PyTorch's formula: a chunk's logits about the size of the input, divided by k.
        target_rows = -(-n_rows // max(1, -(-row_classes // max(1, in_features))))
        rows = min((1 << max(0, target_rows - 1).bit_length()) // int(factor), n_rows)
        if size_ is not None and size_ != rows:
            fail(
                ValueError,
                "options",
                f"give one chunk size: batch_chunk_size ({size_}) and chunking_method "
                f"({method!r} -> {rows} rows) disagree; pass only one",
                repr(options),
            )
    return int(max(1, min(rows, n_rows)))


# ----------------------------------------------------------------- the chunks, for both target kinds


def _flat(xp: Namespace, input: Any, linear_weight: Any, linear_bias: Any) -> Any:
    """``(x, w, b, tail)``: input as (N, in), the weight as (C * d, in), the bias
    as (C * d,) and the logits' shape after N: (C, d) for K-dimensional logits
    (d = d1 * ... * dK), (C,) otherwise."""
    x = input if input.ndim == 2 else xp.reshape(input, (1, input.shape[0]))
    out = tuple(linear_weight.shape[1:-1])
    tail = (linear_weight.shape[0], math.prod(out)) if out else (linear_weight.shape[0],)
    w = linear_weight if not out else xp.reshape(linear_weight, (-1, linear_weight.shape[-1]))
    b = linear_bias if linear_bias is None or not out else xp.reshape(linear_bias, (-1,))
    return x, w, b, tail


def _logits(xp: Namespace, x: Any, w: Any, b: Any, i0: Any, i1: Any, tail: Any) -> Any:
    """The logits of rows ``i0:i1``, shape (rows, *tail)."""
    z = xp.matmul(x[i0:i1, ...], w.T)
    if b is not None:
        z += b
    return z if len(tail) == 1 else xp.reshape(z, (i1 - i0, *tail))


def _chunks(xp: Namespace, lin: Any, rows: Any, step: Any, g: Any) -> Any:
    """``step(z, i0, i1, gc) -> (out, dz)`` on the logits ``z`` of each chunk of rows
    ``i0:i1`` (``z`` is the step's to overwrite), ``gc`` the chunk's cotangent (rows
    of a per-sample ``g``, a 0-d ``g`` as it is, None without ``g``). Returns each
    chunk's ``out`` and, with ``g``, the gradients of input, weight and bias
    accumulated from each chunk's logit gradient ``dz``."""
    x, w, b, tail = lin
    n = x.shape[0]
    grads = None if g is None else _Grads(xp, x, w, b)
    outs = []
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        gc = None if g is None else (g if g.ndim == 0 else g[i0:i1, ...])
        out, dz = step(_logits(xp, x, w, b, i0, i1, tail), i0, i1, gc)
        outs.append(out)
        if dz is not None:
            assert grads is not None  # a step gives dz only with g
            grads.add(dz, i0, i1)
            del dz
    return outs, grads


def _concat(xp: Namespace, parts: Any, empty: Any) -> Any:
    return empty if not parts else (xp.concat(parts, axis=0) if len(parts) > 1 else parts[0])


class _Grads:
    """Gradients of input, weight and bias accumulated chunk by chunk."""

    def __init__(self, xp: Namespace, x: Any, w: Any, b: Any) -> None:
        self.xp, self.x, self.w = xp, x, w
        self.gx = xp.zeros_like(x)
        self.gw = xp.zeros_like(w)
        self.gb = None if b is None else xp.zeros_like(b)
        in_features = w.shape[1]
        self.block = max(1, _BLOCK_BYTES // max(1, in_features * (xp.finfo(w.dtype).bits // 8)))

    def add(self, dz: Any, i0: Any, i1: Any) -> None:
        """Chunk ``i0:i1`` with logit gradient ``dz`` (rows, C, *tail), block of
        classes by block of classes: each block feeds the input gradient, its
        rows of the weight gradient (added in place) and of the bias gradient. So
        nothing of the size of ``dz`` or of the weight is allocated here."""
        xp = self.xp
        dz = xp.reshape(dz, (i1 - i0, -1)) if dz.ndim != 2 else dz
        xc = self.x[i0:i1, ...]
        n, gx = dz.shape[1], None
        for c0 in range(0, n, self.block):
            c1 = min(n, c0 + self.block)
            d = dz[:, c0:c1]
            # (W^T d^T)^T rather than d W: OpenBLAS splits this shape better across threads.
            part = xp.matmul(self.w[c0:c1, ...].T, d.T).T
            gx = part if gx is None else gx + part
            self.gw = add_at(xp, self.gw, (slice(c0, c1), ...), xp.matmul(d.T, xc))
            if self.gb is not None:
                self.gb = add_at(xp, self.gb, slice(c0, c1), xp.sum(d, axis=0))
        if gx is not None:
            self.gx = add_at(xp, self.gx, (slice(i0, i1), ...), gx)

    def result(self, input: Any, linear_weight: Any, linear_bias: Any) -> Any:
        xp = self.xp
        gb = None if self.gb is None else xp.reshape(self.gb, linear_bias.shape)
        return xp.reshape(self.gx, input.shape), xp.reshape(self.gw, linear_weight.shape), gb


def _scaled(xp: Namespace, pre: Any, g: Any, unit: Any) -> Any:
    """The precomputed gradients ``pre`` (for the cotangent ``unit`` of every
    sample) for the uniform cotangent ``g``, or None when ``g`` is not finite
    (0/0 'mean' and the like: recomputing keeps PyTorch's exact zeros and NaNs)."""
    c = xp.reshape(g, (-1,))[0]
    if bool(c == unit):
        return pre
    if not bool(xp.isfinite(c)):
        return None
    scale = c / unit
    return tuple(None if a is None else a * xp.astype(scale, a.dtype) for a in pre)


# ----------------------------------------------------------------- forward and gradient, both target kinds


def _pass(xp: Namespace, lin: Any, y: Any, weight: Any, opts: Any, rows: Any, g: Any) -> Any:
    """All chunks, each running cross_entropy's forward -- and with a cotangent
    ``g`` its VJP -- on its own logits, in place. Returns ``(terms, grads, gy, gw)``:
    the loss's terms per sample, ``(one_hot, smooth)`` for class indices ``y``
    (``smooth`` None without smoothing) or ``(loss, None)`` for probabilities;
    the gradients of input, weight and bias; for probabilities those of ``y``
    and of the class weights. ``opts``: the spec's cross_entropy options."""
    x, _, _, tail = lin
    eps, prob = opts["label_smoothing"], "ignore_index" not in opts
    dtype = result_float_dtype(xp, x, y, weight) if prob else x.dtype
    acc = {"gy": None, "gw": None}
    if prob and g is not None:
        acc["gy"] = xp.zeros(y.shape, dtype=dtype, device=device(y))
        if weight is not None:
            acc["gw"] = xp.zeros((y.shape[1],), dtype=dtype, device=device(y))

    def step(z: Any, i0: Any, i1: Any, gc: Any) -> Any:
        yc, zdtype = y[i0:i1, ...], z.dtype  # (the gradient of probabilities may be promoted)
        # The chunk is ours to overwrite, unless it is traced or batched (torch.func, compile).
        own = not is_lazy(z) and (gc is None or not is_lazy(gc))
        if not prob:
            one_hot, smooth, res, _ = _ce_terms(xp, z, yc, weight, opts["ignore_index"], eps, own=own)
            del z
            dz = None if gc is None else _ce_bwd(xp, res, gc, own=own, **opts)[0]
            return (one_hot, smooth), dz
        loss, res, _ = _ce_prob_fwd(xp, z, yc, weight, label_smoothing=eps, own=own)
        del z
        if gc is None:
            return (loss, None), None
        dz, gy, gw = _ce_prob_bwd(xp, res, xp.broadcast_to(gc, tuple(loss.shape)), label_smoothing=eps)
        acc["gy"] = add_at(xp, acc["gy"], (slice(i0, i1), ...), gy)
        if gw is not None:
            acc["gw"] = acc["gw"] + gw
        return (loss, None), as_float(xp, dz, zdtype)

    outs, grads = _chunks(xp, lin, rows, step, g)
    empty = xp.zeros((0, *tail[1:]), dtype=dtype, device=device(x))
    loss = _concat(xp, [o[0] for o in outs], empty)
    smooth = _concat(xp, [o[1] for o in outs], empty) if smooths(eps) and not prob else None
    return (loss, smooth), grads, acc["gy"], acc["gw"]


def _fwd(
    xp: Namespace,
    input: Any,
    linear_weight: Any,
    target: Any,
    linear_bias: Any,
    weight: Any,
    *,
    chunk_rows: Any,
    precompute: Any,
    **opts: Any,
) -> Forward:
    lin = _flat(xp, input, linear_weight, linear_bias)
    x, _, _, tail = lin
    prob = "ignore_index" not in opts
    y = xp.reshape(target, (x.shape[0], *(tail if prob else tail[1:])))
    if prob:
        # 'mean' divides by the number of samples; NaN for empty logits, as PyTorch.
        n_samples = x.shape[0] * math.prod(tail[1:])
        divisor = float(n_samples) if n_samples * linear_weight.shape[0] else math.nan
        dtype, ready = result_float_dtype(xp, input, target, weight), n_samples and not math.isnan(divisor)
    else:
        # 'mean' divides by the total weight of the non-ignored targets (0/0 = NaN when all are ignored).
        divisor = xp.sum(_class_weights(xp, y, weight, opts["ignore_index"], tail[0], input.dtype)[2])
        dtype, ready = input.dtype, size(y) and (precompute != "mean" or bool(divisor != 0))
    unit = None
    if precompute is not None and ready:
        # The cotangent every sample gets from the reduction of a cotangent 1, computed as _reduction does.
        ones = xp.ones((), dtype=dtype, device=device(input))
        unit = ones if precompute == "sum" else ones / divisor
    (loss, smooth), grads, gy, gw = _pass(xp, lin, y, weight, opts, chunk_rows, unit)
    if smooth is not None:
        divisor = _smoothed_divisor(xp, divisor, xp.sum(loss), xp.sum(smooth))
        loss = loss + smooth
    loss = xp.reshape(loss, (*input.shape[:-1], *linear_weight.shape[1:-1]))
    arrays = (input, linear_weight, target, linear_bias, weight)
    pre = None if grads is None else _gradients(xp, arrays, grads, gy, gw)
    return Forward(loss, (arrays, y, pre, unit), divisor)


def _bwd(
    xp: Namespace,
    res: Any,
    g: Any,
    *,
    g_divisor: Any = None,
    wanted: Any = None,
    chunk_rows: Any,
    precompute: Any,
    **opts: Any,
) -> tuple[Any, ...]:
    arrays, y, pre, unit = res
    got: tuple[Any, ...] | None = None if pre is None else _scaled(xp, pre, g, unit)
    if got is None:  # recompute, chunk by chunk
        lin = _flat(xp, arrays[0], arrays[1], arrays[3])
        g = xp.reshape(g, (y.shape[0], *y.shape[2:]) if "ignore_index" not in opts else tuple(y.shape))
        got = _gradients(xp, arrays, *_pass(xp, lin, y, arrays[4], opts, chunk_rows, g)[1:])
    return got


def _gradients(xp: Namespace, arrays: Any, grads: Any, gy: Any, gw: Any) -> Any:
    """The gradients of ``arrays`` (input, linear_weight, target, linear_bias,
    weight) in their shapes; None for those without one."""
    input, linear_weight, target, linear_bias, _ = arrays
    gi, glw, gb = grads.result(input, linear_weight, linear_bias)
    return gi, glw, None if gy is None else xp.reshape(gy, target.shape), gb, gw


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

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: Reduction = "mean",
        weight: Array | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: object | None = None,
        xp: Namespace = None,
        seed: int | None = None,
    ) -> None:
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, INTEGRAL):
                fail(TypeError, name, "be an int", describe(value))
            if value < 0:
                fail(ValueError, name, "be >= 0", value)
        if not isinstance(out_features, (tuple, list)) or not all(
            isinstance(d, INTEGRAL) and not isinstance(d, bool) and d >= 0 for d in out_features
        ):
            fail(ValueError, "out_features", "be a tuple of non-negative ints", repr(out_features))
        if not isinstance(label_smoothing, REAL) or not 0.0 <= label_smoothing <= 1.0:
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

    def _loss_argument(self, name: Any, array: Any) -> Any:
        if not self.out_features:
            return array
        shape = (self.num_classes, *self.out_features) + ((self.in_features,) if name == "linear.weight" else ())
        return self._xp.reshape(array, shape)

    def _forward_with(self, params: Any, input: Any, target: Any) -> Any:
        return linear_cross_entropy(
            input,
            params["linear.weight"],
            target,
            linear_bias=params.get("linear.bias"),
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )

    def forward(self, input: Array, target: Array) -> Array:
        out: Array = super().forward(input, target)
        return out

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward

    def __repr__(self) -> str:
        return (
            f"LinearCrossEntropyLoss(in_features={self.in_features}, num_classes={self.num_classes}, "
            f"out_features={self.out_features}, bias={'linear.bias' in self._params}, "
            f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, options={self.options})"
        )


def _example(xp: Namespace) -> Any:
    x = xp.asarray([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]], dtype=xp.float64)
    w = xp.asarray([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]], dtype=xp.float64)
    return (x, w, xp.asarray([1, 0, 2])), {}


SPEC = register_spec(
    LossSpec(
        name="linear_cross_entropy",
        native=native_call("linear_cross_entropy"),
        fwd=_fwd,
        bwd=_bwd,
        argnames=("input", "linear_weight", "target", "linear_bias", "weight"),
        optional=("linear_bias", "weight"),
        differentiable=("input", "linear_weight", "linear_bias"),
        summary="cross entropy of a linear layer's logits, chunked over the batch; large-vocabulary classification",
        functional=linear_cross_entropy,
        cls=LinearCrossEntropyLoss,
        example=_example,
        curve=linear_two_class,
    )
)

# Probability targets follow PyTorch's composite path, which also differentiates
# `target` and `weight`: a spec of its own (not registered; the name is one loss).
PROB_SPEC = LossSpec(
    name="linear_cross_entropy",
    native=SPEC.native,
    fwd=_fwd,
    bwd=_bwd,
    argnames=SPEC.argnames,
    optional=SPEC.optional,
    differentiable=("input", "linear_weight", "target", "linear_bias", "weight"),
    summary=SPEC.summary,
    functional=linear_cross_entropy,
    cls=LinearCrossEntropyLoss,
    example=_example,
)
