"""Home of F.multilabel_margin_loss and anyloss.MultiLabelMarginLoss."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import (
    TypeNotImplementedError,
    TypeRuntimeError,
    ValueRuntimeError,
    check_floating,
    check_integer,
    check_values,
    fail,
)
from .._module import Loss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, native_call, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import device, index_dtype, read, size, take_along
from ._curves import multilabel_two_class


def multilabel_margin_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Multi-label hinge loss: every target class should score at least 1
    above every non-target class.

    For a sample with scores :math:`x` over :math:`C` classes and target labels
    :math:`y_0, y_1, \dots` (the entries of ``target`` before its first ``-1``),

    .. math::
        \ell = \frac{1}{C} \sum_{j} \sum_{i \notin \{y\}} \max(0, 1 - (x_{y_j} - x_i))

    reduced by ``'none'`` (:math:`\ell`), ``'sum'`` (:math:`\sum_n \ell_n`) or
    ``'mean'`` (:math:`\sum_n \ell_n / N`).

    As in PyTorch: entries after the first ``-1`` are ignored (but must still be
    in [-1, C)); a label repeated before it counts once per repetition in the
    outer sum and once in the set :math:`\{y\}`.

    Args:
        input: scores, (N, C) or (C); as in PyTorch a 0-d input is one sample of one class.
        target: labels in [-1, C), any integer dtype, ``input``'s shape (for a single
            sample any array of C elements, at most 1-D), padded with -1.
        size_average, reduce: deprecated; see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        ``input`` (N, C) or (C), ``target`` likewise; output scalar, or for
        ``'none'`` (N), or () for a single sample.

    Gradients: ``input`` only. A pair whose hinge is exactly at its kink
    (:math:`1 - x_{y_j} + x_i = 0`) contributes neither loss nor gradient, as in
    PyTorch's kernel; so does a NaN pair. The range of ``target`` is not checked
    under ``jax.jit`` or on lazy Dask arrays. On an empty batch ``'mean'`` is NaN
    and ``'sum'`` is 0 (PyTorch 2.13 returns uninitialized memory there).

    Computed for all (target class, class) pairs at once, a repeated label
    weighted by its count, in (N, C, C) arrays: no loop over samples (memory
    grows as N C^2).

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> x = np.array([[0.1, 0.2, 0.4, 0.8]])
        >>> y = np.array([[3, 0, -1, 1]])  # labels 3 and 0
        >>> print(f"{F.multilabel_margin_loss(x, y):.4f}")
        0.8500
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target) = SPEC.adopt(input=input, target=target)
    check_floating(xp, "input", input, TypeNotImplementedError)
    check_integer(xp, "target", target, TypeRuntimeError)
    if input.ndim > 2 or (input.ndim > 0 and input.shape[-1] == 0):
        fail(ValueRuntimeError, "input", "be (N, C) or (C) with C > 0", f"shape {tuple(input.shape)}")
    c = input.shape[-1] if input.ndim else 1
    if input.ndim == 2:
        if tuple(target.shape) != tuple(input.shape):
            fail(
                ValueRuntimeError,
                "target",
                f"have `input`'s shape {tuple(input.shape)}",
                f"shape {tuple(target.shape)}",
            )
    elif target.ndim > 1 or size(target) != c:
        fail(
            ValueRuntimeError,
            "target",
            f"have shape ({c},) for `input` of shape {tuple(input.shape)}",
            f"shape {tuple(target.shape)}",
        )
    target = check_values(
        xp, "target", target, lambda xp, t: (t >= -1) & (t < c), f"be labels in [0, {c}) or -1", ValueRuntimeError
    )
    c = input.shape[-1] if input.ndim else 1
    return apply(SPEC, xp, (input, target), reduction, computed={"positions": _positions(xp, target, c)})


def _positions(xp: Namespace, target: Any, c: int) -> int:
    """How many leading positions of a row can hold labels: the longest run before
    a row's first -1 (C where there is none), read from ``target`` when it can be;
    C, the static bound, when it is lazy (JAX under ``jit``, Dask)."""
    if size(target) == 0:
        return c
    t = xp.reshape(target, (-1, c))
    pad = xp.astype(t < 0, index_dtype(xp))
    # Index of the first -1 per row: the number of positions before any pad.
    before = xp.sum(xp.astype(xp.cumulative_sum(pad, axis=1) == 0, index_dtype(xp)), axis=1)
    longest = read(xp.max(before))
    return c if longest is None else max(int(longest), 1)


def _fwd(xp: Namespace, input: Any, target: Any, *, positions: Any = None) -> Forward:
    n = input.shape[0] if input.ndim == 2 else 1
    c = input.shape[-1] if input.ndim else 1
    p = c if positions is None else min(positions, c)
    x = xp.reshape(input, (n, c))
    t = xp.reshape(xp.astype(target, index_dtype(xp)), (n, c))
    # Positions from the first -1 on (cumulative count of -1s > 0) hold no label;
    # only the first `p` positions can hold one.
    valid = (xp.cumulative_sum(xp.astype(t < 0, index_dtype(xp)), axis=1) == 0)[:, :p]
    # hit[n, j, i]: position j holds label i (a position without a label holds C,
    # no class). A repeated label counts once per repetition, as in PyTorch's
    # loop over positions.
    label = xp.where(valid, t[:, :p], xp.full((), c, dtype=t.dtype, device=device(t)))
    classes = xp.arange(c, dtype=index_dtype(xp), device=device(x))
    hit = label[:, :, None] == classes
    is_target = xp.any(hit, axis=1)
    # z[n, j, k] = 1 - x_{label_j} + x_k: the hinge of the label at position j over
    # class k, with the pairs that do not count made -inf (or NaN): a position
    # without a label reads x = +inf, a target class k reads x_k = -inf.
    inf = xp.asarray(math.inf, dtype=x.dtype, device=device(x))
    x_label = take_along(xp, xp.broadcast_to(x[:, None, :], (n, p, c)), xp.where(valid, label, 0), 2)
    x_label = xp.where(valid, x_label, inf)
    z = (1.0 - x_label)[:, :, None] + xp.where(is_target, -inf, x)[:, None, :]
    # Strictly positive terms only: the kink z == 0 and NaN add nothing (PyTorch's `if (z > 0)`).
    active = z > 0
    terms = xp.where(active, z, xp.zeros((), dtype=z.dtype, device=device(z)))
    # Sum, then divide by C, in input's dtype: a float32 sum overflows where PyTorch's does.
    loss = xp.sum(xp.sum(terms, axis=2), axis=1) / float(c)
    out_shape = (n,) if target.ndim == 2 else ()
    return Forward(xp.reshape(loss, out_shape), (active, hit, tuple(input.shape)))


def _bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, positions: Any = None
) -> tuple[Any, ...]:
    active, hit, shape = res
    dtype = g.dtype  # the loss's, input's
    n, c = active.shape[0], active.shape[2]
    pairs = xp.astype(active, dtype)
    # Each active pair (position j, class k) adds +1 to d/dx_k and -1 to d/dx of
    # the label at position j.
    g_k = xp.sum(pairs, axis=1)
    g_i = xp.matmul(xp.sum(pairs, axis=2)[:, None, :], xp.astype(hit, dtype))[:, 0, :]
    gx = (g_k - g_i) * (xp.reshape(g, (n, 1)) / float(c))
    return xp.reshape(gx, shape), None


class MultiLabelMarginLoss(Loss):
    """Object form of :func:`multilabel_margin_loss` (``torch.nn.MultiLabelMarginLoss``)."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Array, target: Array) -> Array:
        return multilabel_margin_loss(input, target, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


# Under torch.compile PyTorch 2.13's decomposition of multilabel_margin_loss gives another value (2.05 for
# the worked example's 0.85): anyloss's own code runs while compiling.
SPEC = register_spec(
    LossSpec(
        name="multilabel_margin_loss",
        native_traces=False,
        native=native_call("multilabel_margin_loss"),
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": 0}),
        argnames=("input", "target"),
        differentiable=("input",),
        summary="multi-label hinge sum_{j, i not a label} max(0, 1 - (x_{y_j} - x_i)) / C; multi-label classification",
        functional=multilabel_margin_loss,
        cls=MultiLabelMarginLoss,
        example=lambda xp: ((xp.asarray([[0.1, 0.2, 0.4, 0.8]], dtype=xp.float64), xp.asarray([[3, 0, -1, 1]])), {}),
        curve=multilabel_two_class,
    )
)
