"""Home of anyloss.AdaptiveLogSoftmaxWithLoss.

The adaptive softmax of Grave et al. (2017), "Efficient softmax approximation
for GPUs", as ``torch.nn.AdaptiveLogSoftmaxWithLoss`` computes it. It is a
module that owns parameters (one linear head, two linear layers per tail
cluster), so it has no functional form in ``torch.nn.functional`` and none
here.

Why one ``LossSpec`` per instance: the module's arrays are the input, the
target and a number of parameter arrays that depends on ``cutoffs``. A spec's
``fwd``/``bwd`` take their arrays positionally, so ``_fwd(xp, input, target,
head_weight, head_bias, *tail)`` serves every arity, and each instance builds
a spec whose ``argnames`` are PyTorch's parameter names. The call then takes
the shared path (``_call.apply``): the analytic gradient serves
``value_and_grad`` on every backend, and the PyTorch and JAX bridges attach
it to their autodiff. The spec is not registered: it is the loss of one
instance, not a function of ``anyloss.functional``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .._call import apply
from .._checks import (
    TypeRuntimeError,
    ValueIndexError,
    ValueRuntimeError,
    check_class_values,
    check_floating,
    check_number,
    describe,
    fail,
    namespace,
)
from .._module import ParameterLoss
from .._reduction import reduce
from .._spec import Forward, LossSpec
from .._typing import Array, Namespace, Reduction
from .._xp import device, index_dtype, is_lazy, log_softmax, log_softmax_parts, one_hot_mask, take_along


class _ASMoutput(NamedTuple):
    """What :meth:`AdaptiveLogSoftmaxWithLoss.forward` returns (PyTorch's ``_ASMoutput``)."""

    output: Array
    loss: Array


class AdaptiveLogSoftmaxWithLoss(ParameterLoss):
    r"""Adaptive softmax with its negative log-likelihood loss
    (``torch.nn.AdaptiveLogSoftmaxWithLoss``), holding its parameters as arrays.

    The classes are split by ``cutoffs`` :math:`c_0 < c_1 < \dots < c_{K-1}`
    (and :math:`c_K` = ``n_classes``) into a head shortlist :math:`[0, c_0)`
    and :math:`K` tail clusters :math:`[c_{i-1}, c_i)`. The head is a linear
    layer ``in_features -> c_0 + K`` (one logit per shortlist class, one per
    cluster); cluster :math:`i` is two bias-free linear layers ``in_features
    -> floor(in_features / div_value**i) -> c_i - c_{i-1}``. With
    :math:`h = \text{head}(x)` and :math:`z^i = \text{tail}_i(x)`,

    .. math::
        \log p(y \mid x) = \begin{cases}
            \text{log\_softmax}(h)_y & y < c_0 \\
            \text{log\_softmax}(h)_{c_0 + i - 1} + \text{log\_softmax}(z^i)_{y - c_{i-1}}
                & c_{i-1} \le y < c_i
        \end{cases}

    ``forward(input_, target_)`` returns ``(output, loss)``: ``output`` is
    :math:`\log p(y_n \mid x_n)` per sample and ``loss`` is
    :math:`-\frac1N \sum_n \text{output}_n` (NaN for an empty batch, as in
    PyTorch). A cluster is evaluated only on the rows whose target falls in it.

    The parameters live on the instance, in the array library ``xp`` (NumPy by
    default) and floating ``dtype`` (float32 by default, as PyTorch's), under
    PyTorch's names: ``head.weight`` (c_0 + K, in_features), ``head.bias``
    (with ``head_bias=True``), ``tail.{i}.0.weight`` (hsz_i, in_features) and
    ``tail.{i}.1.weight`` (osz_i, hsz_i). They are initialized as
    ``torch.nn.Linear`` initializes them (uniform in :math:`\pm 1/\sqrt{\text{fan\_in}}`),
    drawn from ``numpy.random.default_rng(seed)`` -- the same distribution,
    not PyTorch's random numbers. To reproduce a PyTorch module exactly, load
    its ``state_dict()``: ``load_state_dict`` takes a mapping of name -> array
    from any library (torch tensors included) and converts it to ``xp`` and
    ``dtype``.

    Gradients: ``value_and_grad(input, target)`` returns ``(loss, grads)`` with
    ``grads`` a dict holding the gradient of ``loss`` with respect to
    ``"input"`` and every parameter, by name (a cluster no target falls in gets
    zeros; PyTorch leaves its ``.grad`` unset). With ``xp`` = PyTorch and
    parameters that require grad, ``loss.backward()`` works; with JAX arrays,
    ``jax.grad`` works through the same analytic gradient. On lazy arrays (JAX,
    Dask) the rows of a cluster cannot be selected without reading the
    targets, so every cluster is evaluated on every row and masked (same
    numbers, more work), and the range of ``target`` is not checked.

    Args:
        in_features: number of features of the input.
        n_classes: number of classes.
        cutoffs: sorted, unique ints in [1, n_classes - 1].
        div_value: shrink factor of the tail clusters' hidden size (> 0).
        head_bias: give the head linear layer a bias.
        device: where the parameters live (passed to ``xp.asarray``).
        dtype: floating dtype of the parameters, and of the inputs they accept.
        xp: the array namespace of the parameters (keyword only; default NumPy).
        seed: seed of ``numpy.random.default_rng`` for the initialization (keyword only).

    Shape:
        ``input_`` (N, in_features) or (in_features); ``target_`` (N) or ():
        class indices in [0, n_classes), any integer dtype. ``output`` (N) or
        (); ``loss`` scalar.

    Example:
        >>> import numpy as np, anyloss
        >>> asm = anyloss.AdaptiveLogSoftmaxWithLoss(4, 6, [2, 4], dtype="float64", seed=0)
        >>> out, loss = asm(np.ones((3, 4)), np.array([0, 3, 5]))
        >>> out.shape, loss.shape
        ((3,), ())
        >>> asm.log_prob(np.ones((3, 4))).shape, asm.predict(np.ones((3, 4))).shape
        ((3, 6), (3,))
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        xp: Namespace = None,
        seed: int | None = None,
    ) -> None:
        check_number("in_features", in_features, integer=True, min=0)
        check_number("n_classes", n_classes, integer=True)
        cutoffs = _check_cutoffs(cutoffs, n_classes)
        check_number("div_value", div_value, min=0, min_inclusive=False, kind=ValueRuntimeError)
        self.in_features = int(in_features)
        self.n_classes = int(n_classes)
        self.cutoffs = cutoffs + [self.n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        super().__init__("mean", xp=xp, dtype=dtype, device=device, seed=seed)
        self.reset_parameters()
        tail = [name for name in self._params if name.startswith("tail.")]
        self._spec = LossSpec(
            name="adaptive_log_softmax_with_loss",
            fwd=_fwd,
            bwd=_bwd,
            argnames=("input", "target", "head.weight", "head.bias", *tail),
            differentiable=("input", "head.weight", "head.bias", *tail),
            summary="adaptive softmax negative log-likelihood (Grave et al.); classification with many classes",
            cls=AdaptiveLogSoftmaxWithLoss,
        )

    def reset_parameters(self) -> None:
        """Draw every parameter again (the next numbers of the instance's generator)."""
        # nn.Linear's init, in PyTorch's named_parameters() order: U(+-1/sqrt(fan_in)) for
        # weights and bias (kaiming_uniform with a = sqrt(5) is that bound); fan_in 0 gives 0.
        self._linear_init("head", self.head_size, self.in_features, bias=bool(self.head_bias))
        for i in range(self.n_clusters):
            hsz = int(self.in_features // (self.div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self._linear_init(f"tail.{i}.0", hsz, self.in_features)
            self._linear_init(f"tail.{i}.1", osz, hsz)

    def _linear_init(self, prefix: Any, out_features: Any, in_features: Any, bias: bool = False) -> None:
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self._init_uniform(f"{prefix}.weight", (out_features, in_features), bound)
        if bias:
            self._init_uniform(f"{prefix}.bias", (out_features,), bound)

    # ------------------------------------------------------------------ forward

    def forward(self, input_: Array, target_: Array) -> _ASMoutput:
        """``(output, loss)``: the target's log-probability per sample and
        their negated mean (see the class docstring)."""
        out: _ASMoutput = super().forward(input_, target_)
        return out

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward

    def value_and_grad(self, input: Array, target: Array) -> tuple[Array, dict[str, Array]]:
        """``(loss, grads)``: ``forward(input, target).loss`` and its gradients
        ``{"input": ..., "head.weight": ..., ...}`` (see the class docstring)."""
        return super().value_and_grad(input, target, loss_only=True)

    def _forward_with(self, params: Any, input_: Any, target_: Any, loss_only: bool = False) -> Any:
        """The forward with the arrays ``params``; only the scalar loss for
        ``value_and_grad`` (``loss_only``), else PyTorch's ``(output, loss)``."""
        if loss_only:
            return self._nll(params, input_, target_, "mean")[1]
        xp, loss = self._nll(params, input_, target_, "none")
        return _ASMoutput(-loss, reduce(xp, loss, "mean"))

    def _nll(self, params: Any, input: Any, target: Any, reduction: Any) -> Any:
        """``(xp, loss)``: the negative log-likelihood per sample, reduced by
        ``reduction``, through the shared call path."""
        xp = self._check_input(params, input, target=target)
        if not xp.isdtype(target.dtype, "integral"):
            fail(TypeRuntimeError, "target", "have an integer dtype (class indices)", target.dtype)
        if target.ndim == 1:
            if input.ndim != 2:
                fail(
                    ValueRuntimeError,
                    "input",
                    "be 2-D (N, in_features) for a 1-D `target`",
                    f"shape {tuple(input.shape)}",
                )
            if input.shape[0] != target.shape[0]:
                fail(
                    ValueRuntimeError,
                    "target",
                    f"have `input`'s batch size {input.shape[0]}",
                    f"shape {tuple(target.shape)}",
                )
        elif target.ndim == 0:
            if input.ndim != 1:
                fail(
                    ValueRuntimeError, "input", "be 1-D (in_features) for a 0-D `target`", f"shape {tuple(input.shape)}"
                )
        else:
            fail(
                ValueRuntimeError,
                "target",
                "be 0-D or 1-D (class indices; multi-target not supported)",
                f"shape {tuple(target.shape)}",
            )
        target = check_class_values(xp, target, self.n_classes, kind=ValueRuntimeError)
        arrays = (
            input,
            target,
            params["head.weight"],
            params.get("head.bias"),
            *(params[name] for name in self._spec.argnames[4:]),
        )
        return xp, apply(self._spec, xp, arrays, reduction, cutoffs=tuple(self.cutoffs))

    def _check_input(self, params: Any, input: Any, min_ndim: int = 1, **others: Any) -> Any:
        """Namespace of ``input`` (and ``others``) and the parameters; ``input``
        must be floating, of the parameters' dtype, with ``in_features`` features."""
        xp = namespace(input=input, **others, **params)
        check_floating(xp, "input", input, TypeRuntimeError)
        if input.ndim < min_ndim or input.ndim > 2:
            want = "2-D (N, in_features)" if min_ndim == 2 else "1-D (in_features) or 2-D (N, in_features)"
            # PyTorch's log_prob and predict index the missing batch dimension (IndexError).
            kind = ValueIndexError if min_ndim == 2 and input.ndim < 2 else ValueRuntimeError
            fail(kind, "input", f"be {want}", f"shape {tuple(input.shape)}")
        if input.shape[-1] != self.in_features:
            fail(
                ValueRuntimeError,
                "input",
                f"have in_features = {self.in_features} features (last dimension)",
                f"shape {tuple(input.shape)}",
            )
        dtype = params["head.weight"].dtype
        if input.dtype != dtype:
            fail(TypeRuntimeError, "input", f"have the parameters' dtype {dtype}", input.dtype)
        return xp

    # ------------------------------------------------------------------ log_prob and predict

    def log_prob(self, input: Array) -> Array:
        r"""Log-probabilities of all ``n_classes`` classes, (N, n_classes), for ``input`` (N, in_features)."""
        xp = self._check_input(self._params, input, min_ndim=2)
        log_prob: Array = self._full_log_prob(xp, input, self._head(xp, input))
        return log_prob

    def predict(self, input: Array) -> Array:
        r"""The most probable class per sample, (N), as PyTorch's ``predict``:
        ``log_prob(input).argmax(1)``, computing the tail clusters only for the
        rows whose head argmax is a cluster."""
        xp = self._check_input(self._params, input, min_ndim=2)
        head = self._head(xp, input)
        out = xp.astype(xp.argmax(head, axis=1), index_dtype(xp, input))
        beyond = out >= self.shortlist_size
        rows = _rows(xp, beyond)
        if rows is None:  # lazy: every row
            full = xp.astype(xp.argmax(self._full_log_prob(xp, input, head), axis=1), out.dtype)
            predicted: Array = xp.where(beyond, full, out)
            return predicted
        idx, pos = rows
        if idx.shape[0] == 0:
            predicted = out
            return predicted
        sub = self._full_log_prob(xp, xp.take(input, idx, axis=0), xp.take(head, idx, axis=0))
        full = xp.astype(xp.argmax(sub, axis=1), out.dtype)
        predicted = xp.where(beyond, xp.take(full, pos, axis=0), out)
        return predicted

    def _head(self, xp: Namespace, input: Any) -> Any:
        h = _linear(xp, input, self._params["head.weight"])
        bias = self._params.get("head.bias")
        return h if bias is None else h + bias

    def _full_log_prob(self, xp: Namespace, input: Any, head: Any) -> Any:
        head_logprob = log_softmax(xp, head, 1)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            z = _linear(xp, _linear(xp, input, self._params[f"tail.{i}.0.weight"]), self._params[f"tail.{i}.1.weight"])
            col = self.shortlist_size + i
            parts.append(log_softmax(xp, z, 1) + head_logprob[:, col : col + 1])
        return xp.concat(parts, axis=1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_features={self.in_features}, n_classes={self.n_classes}, "
            f"cutoffs={self.cutoffs[:-1]}, div_value={self.div_value}, head_bias={self.head_bias})"
        )


def _check_cutoffs(cutoffs: Any, n_classes: int) -> list[int]:
    """PyTorch's rules for ``cutoffs``, in PyTorch's order (ValueError first, then TypeError)."""
    try:
        cutoffs = list(cutoffs)
    except TypeError:
        fail(TypeError, "cutoffs", "be a sequence of ints", describe(cutoffs))
    if not cutoffs:
        fail(ValueError, "cutoffs", "be a non-empty sequence", "[]")
    if not all(isinstance(c, numbers.Real) for c in cutoffs):
        fail(TypeError, "cutoffs", "be a sequence of ints", repr(cutoffs))
    if (
        cutoffs != sorted(cutoffs)
        or len(set(cutoffs)) != len(cutoffs)
        or min(cutoffs) <= 0
        or max(cutoffs) > n_classes - 1
        or any(int(c) != c for c in cutoffs)
    ):
        fail(
            ValueError,
            "cutoffs",
            "be unique, positive integers sorted in increasing order, each between 1 "
            f"and n_classes - 1 = {n_classes - 1}",
            repr(cutoffs),
        )
    if not all(isinstance(c, numbers.Integral) for c in cutoffs):  # 3.0: PyTorch's TypeError
        fail(TypeError, "cutoffs", "be a sequence of ints", repr(cutoffs))
    return [int(c) for c in cutoffs]


# ---------------------------------------------------------------------- forward and gradient


def _linear(xp: Namespace, x: Any, weight: Any) -> Any:
    """``x @ weight.T``: a bias-free ``torch.nn.Linear``."""
    return xp.matmul(x, xp.matrix_transpose(weight))


def _log_softmax_at(xp: Namespace, z: Any, index: Any) -> Any:
    """``log_softmax(z, 1)[n, index[n]]`` (the full log-softmax is never
    built), and the softmax parts ``(e, s)`` its gradient needs."""
    shifted, e, s = log_softmax_parts(xp, z, 1)
    return take_along(xp, shifted, index, 1) - xp.squeeze(xp.log(s), axis=1), e, s


def _log_softmax_at_vjp(xp: Namespace, e: Any, s: Any, index: Any, g: Any) -> Any:
    """VJP of ``z -> -log_softmax(z, 1)[n, index[n]]`` for the cotangent ``g`` (N):
    ``g * (softmax(z) - onehot(index))``."""
    gcol = xp.expand_dims(g, axis=1)
    base = e * (gcol / s)
    return xp.where(one_hot_mask(xp, index, e.shape[1], 1), base - gcol, base)


def _rows(xp: Namespace, mask: Any) -> Any:
    """``(idx, pos)``: the rows where ``mask`` holds, and for every row its
    position among them (0 elsewhere), so that ``take(sub, pos)`` puts a
    per-selected-row result back in place without a scatter. None for a lazy
    ``mask``, whose selected rows have no static count."""
    if is_lazy(mask):
        return None
    idx = xp.nonzero(mask)[0]
    pos = xp.cumulative_sum(xp.astype(mask, idx.dtype)) - 1
    return idx, xp.where(mask, pos, xp.zeros((), dtype=pos.dtype, device=device(pos)))


def _fwd(xp: Namespace, input: Any, target: Any, head_weight: Any, head_bias: Any, *tail: Any, cutoffs: Any) -> Forward:
    """Per-sample ``-log p(target | input)``; ``tail`` holds each cluster's two weights in turn."""
    x = input if input.ndim == 2 else xp.reshape(input, (1, input.shape[0]))  # unbatched: a batch of one
    t = xp.reshape(xp.astype(target, index_dtype(xp, target)), (-1,))
    zero_t = xp.zeros((), dtype=t.dtype, device=device(t))
    shortlist = cutoffs[0]
    h = _linear(xp, x, head_weight)
    if head_bias is not None:
        h = h + head_bias
    # The head column of each target: itself in the shortlist, its cluster's column beyond.
    col = xp.where(t < shortlist, t, zero_t + shortlist)
    for i in range(1, len(cutoffs) - 1):
        col = xp.where(t >= cutoffs[i], zero_t + (shortlist + i), col)
    head_out, e, s = _log_softmax_at(xp, h, col)
    tail_out = xp.zeros(t.shape, dtype=h.dtype, device=device(h))
    clusters: list[Any] = []
    for i, (low, high) in enumerate(itertools.pairwise(cutoffs)):
        w1, w2 = tail[2 * i], tail[2 * i + 1]
        mask = (t >= low) & (t < high)
        rows = _rows(xp, mask)
        if rows is None:  # lazy: every row, the others masked below
            idx = pos = None
            xs, rel = x, xp.where(mask, t - low, zero_t)
        else:
            idx, pos = rows
            if idx.shape[0] == 0:  # PyTorch skips a cluster no target falls in
                clusters.append(None)
                continue
            xs, rel = xp.take(x, idx, axis=0), xp.take(t, idx, axis=0) - low
        hid = _linear(xp, xs, w1)
        picked, ez, sz = _log_softmax_at(xp, _linear(xp, hid, w2), rel)
        if pos is not None:
            picked = xp.take(picked, pos, axis=0)
        tail_out = xp.where(mask, picked, tail_out)
        clusters.append((mask, idx, pos, xs, hid, ez, sz, rel))
    # PyTorch's order: the cluster's term first, the head's added to it.
    loss = -(tail_out + head_out)
    return Forward(
        xp.reshape(loss, tuple(target.shape)),
        (x, tuple(input.shape), head_weight, head_bias, tail, e, s, col, clusters),
    )


def _bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, cutoffs: Any
) -> tuple[Any, ...]:
    x, in_shape, head_weight, head_bias, tail, e, s, col, clusters = res
    g = xp.reshape(g, (-1,))
    zero = xp.zeros((), dtype=x.dtype, device=device(x))
    # Head: h = x W^T + b, and the loss takes -log_softmax(h) at `col`.
    dh = _log_softmax_at_vjp(xp, e, s, col, g)
    gx = xp.matmul(dh, head_weight)
    g_head_w = xp.matmul(xp.matrix_transpose(dh), x)
    g_head_b = None if head_bias is None else xp.sum(dh, axis=0)
    g_tail = []
    for i, c in enumerate(clusters):
        w1, w2 = tail[2 * i], tail[2 * i + 1]
        if c is None:  # a cluster no target falls in: zero gradient
            g_tail += [xp.zeros_like(w1), xp.zeros_like(w2)]
            continue
        mask, idx, pos, xs, hid, ez, sz, rel = c
        gs = xp.where(mask, g, zero) if idx is None else xp.take(g, idx, axis=0)
        # z = (xs W1^T) W2^T, and the loss takes -log_softmax(z) at `rel`.
        dz = _log_softmax_at_vjp(xp, ez, sz, rel, gs)
        dhid = xp.matmul(dz, w2)
        g_tail.append(xp.matmul(xp.matrix_transpose(dhid), xs))
        g_tail.append(xp.matmul(xp.matrix_transpose(dz), hid))
        dxs = xp.matmul(dhid, w1)
        if pos is not None:
            dxs = xp.take(dxs, pos, axis=0)
        gx = gx + xp.where(xp.expand_dims(mask, axis=1), dxs, zero)
    return (xp.reshape(gx, in_shape), None, g_head_w, g_head_b, *g_tail)
