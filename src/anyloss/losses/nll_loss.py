"""Home of F.nll_loss and anyloss.NLLLoss (and the deprecated anyloss.NLLLoss2d)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .._accel import Hints
from .._call import apply
from .._checks import TypeNotImplementedError, check_class_target, check_class_weight, check_floating
from .._module import WeightedLoss
from .._reduction import check_reduction, legacy_reduction
from .._spec import Forward, LossSpec, register_spec
from .._typing import Array, Namespace, Reduction
from .._xp import add_along, device, ignored, index_dtype, item, log_softmax, take_along
from ._curves import nll_two_class


def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Negative log likelihood of class-index targets, given log-probabilities.

    For a sample with log-probabilities :math:`x` over :math:`C` classes and
    target class :math:`y`,

    .. math::
        \ell = -w_y x_y, \qquad w_c = \text{weight}[c] \cdot 1\{c \ne \text{ignore\_index}\},

    reduced by ``'none'`` (:math:`\ell` per sample, 0 where ignored), ``'sum'``
    (:math:`\sum_n \ell_n`) or ``'mean'`` (:math:`\sum_n \ell_n / \sum_n w_{y_n}`:
    the sum of the weights of the non-ignored targets, the count of them
    without ``weight``). When every target is ignored that divisor is 0 and
    ``'mean'`` is 0/0 = NaN, as in PyTorch (an empty batch too).

    Args:
        input: log-probabilities, floating: (C), (N, C) or (N, C, d1, ..., dK).
        target: class indices in [0, C) or ``ignore_index``, any integer dtype:
            () (or (1)) for (C) input, (N) for (N, C), (N, d1, ..., dK) for the
            K-dimensional case.
        weight: optional per-class weights, 1-D of length C, ``input``'s dtype.
        size_average, reduce: deprecated; see ``reduction``.
        ignore_index: a target value that contributes neither loss, gradient
            nor divisor; any int, including a valid class (default -100).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        output scalar, or ``target``'s shape for ``'none'`` (() for (C) input).

    Gradients: ``input`` only; PyTorch refuses a ``weight`` that requires grad.
    The range of ``target`` is not checked under ``jax.jit`` or on lazy Dask arrays.

    Example:
        >>> import numpy as np, anyloss.functional as F
        >>> logp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
        >>> print(f"{F.nll_loss(logp, np.array([0, 2])):.4f}")
        0.2899
    """
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    xp, (input, target, weight) = SPEC.adopt(input=input, target=target, weight=weight)
    check_floating(xp, "input", input, TypeNotImplementedError)
    target = check_class_target(xp, input.shape, target, ignore_index)
    check_class_weight(weight, input.shape[0 if input.ndim == 1 else 1], input.dtype)
    return apply(SPEC, xp, (input, target, weight), reduction, ignore_index=int(ignore_index))


# ----------------------------------------------------------------- forward and gradient


def _fwd(xp: Namespace, input: Any, target: Any, weight: Any, *, ignore_index: Any, shift: Any = None) -> Forward:
    # shift (cross_entropy's): subtracted from each picked value, input_y - shift.
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    t = target if input.ndim != 1 else xp.reshape(target, ())
    safe, valid, wt = _class_weights(xp, t, weight, ignore_index, n_classes, input.dtype)
    zero = xp.zeros((), dtype=input.dtype, device=device(input))
    if n_classes == 0:  # nothing to look up: every target is ignored (checked)
        picked = xp.zeros(safe.shape, dtype=input.dtype, device=device(input))
    else:
        picked = take_along(xp, input, safe, class_dim)
        if shift is not None:
            picked = picked - shift
    loss = xp.where(valid, -picked if weight is None else -picked * wt, zero)
    # 'mean' divides by the total weight of the non-ignored targets; 0/0 = NaN
    # when all are ignored, as in PyTorch.
    return Forward(loss, (safe, valid, wt, class_dim, n_classes), xp.sum(wt))


def _class_weights(xp: Namespace, target: Any, weight: Any, ignore_index: Any, n_classes: Any, dtype: Any) -> Any:
    """``(safe, valid, wt)`` of class-index targets: the indices (in the index
    dtype) with ignored ones at class 0 (any valid index would do; they are
    masked), the mask of the others, and each target's weight in ``dtype``
    (0 where ignored)."""
    t = xp.astype(target, index_dtype(xp, target))
    hit = ignored(xp, t, ignore_index)
    valid = xp.ones(t.shape, dtype=xp.bool, device=device(t)) if hit is None else ~hit
    safe = xp.where(valid, t, xp.zeros((), dtype=t.dtype, device=device(t)))
    if weight is None:
        return safe, valid, xp.astype(valid, dtype)
    zero = xp.zeros((), dtype=dtype, device=device(t))
    if n_classes == 0:
        return safe, valid, xp.zeros(t.shape, dtype=dtype, device=device(t))
    wt = xp.reshape(xp.take(weight, xp.reshape(safe, (-1,)), axis=0), tuple(t.shape))
    return safe, valid, xp.where(valid, wt, zero)


def _bwd(
    xp: Namespace, res: Any, g: Any, *, g_divisor: Any = None, wanted: Any = None, ignore_index: Any, base: Any = None
) -> tuple[Any, ...]:
    """Cotangent of ``input``: ``-w_y g`` at each target class, 0 elsewhere.

    ``base`` (used by ``cross_entropy``) is a dense array of ``input``'s shape
    that the scattered cotangent is added to, in the same pass.
    """
    safe, valid, wt, class_dim, n_classes = res
    # An ignored target gets exactly 0, even when g is inf or NaN (the 0/0 'mean').
    coef = xp.where(valid, -(wt * g), xp.zeros((), dtype=wt.dtype, device=device(wt)))
    if base is None:
        shape = list(safe.shape)
        shape.insert(class_dim, n_classes)
        base = xp.zeros(tuple(shape), dtype=coef.dtype, device=device(coef))
    gi = add_along(xp, base, safe, coef, class_dim) if n_classes else base
    return gi, None, None


def _rows_divisor(xp: Namespace, arrays: Any, options: Any, computed: Any) -> Any:
    """The 'mean' divisor of a whole call (for ``cross_entropy``'s row blocks):
    the total weight of the targets that are not ignored (also nll_loss's own, for
    its compiled row kernel)."""
    input, target, weight = arrays[:3]
    target = xp.astype(target, index_dtype(xp, target))
    valid = target != options["ignore_index"]
    if weight is None:
        return float(item(xp.sum(xp.astype(valid, xp.float64))))
    safe = xp.where(valid, target, xp.zeros((), dtype=target.dtype, device=device(target)))
    w = xp.astype(xp.take(weight, xp.reshape(safe, (-1,)), axis=0), xp.float64)
    return float(item(xp.sum(w * xp.astype(xp.reshape(valid, (-1,)), xp.float64))))


# ----------------------------------------------------------------- classes


class NLLLoss(WeightedLoss):
    """Object form of :func:`nll_loss` (``torch.nn.NLLLoss``)."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Array, target: Array) -> Array:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)

    if TYPE_CHECKING:  # what Loss gives: the constructor's reduction, and a call that is `forward`
        reduction: Reduction
        __call__ = forward


_NLLLOSS2D_DEPRECATION = (
    "`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in replacement and see "
    "https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details."
)


class NLLLoss2d(NLLLoss):
    """Deprecated alias of :class:`NLLLoss` (``torch.nn.NLLLoss2d``): constructing
    one emits PyTorch's ``FutureWarning``; it then behaves exactly as ``NLLLoss``."""

    def __init__(
        self,
        weight: Array | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        warnings.warn(_NLLLOSS2D_DEPRECATION, FutureWarning, stacklevel=2)
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


def _example(xp: Namespace) -> Any:
    # PyTorch's docs example: log_softmax of a (3, 5) input, targets [1, 0, 4].
    x = xp.asarray(
        [[0.3, -1.2, 0.8, 0.1, -0.5], [1.5, 0.2, -0.3, 0.0, 0.4], [-0.7, 0.9, 0.2, -1.1, 1.3]], dtype=xp.float64
    )
    return (log_softmax(xp, x, 1), xp.asarray([1, 0, 4])), {}


SPEC = register_spec(
    LossSpec(
        name="nll_loss",
        fwd=_fwd,
        bwd=_bwd,
        accel=Hints(rows={"input": 0, "target": -1}, rows_divisor=_rows_divisor, blocks=False),
        argnames=("input", "target", "weight"),
        optional=("weight",),
        differentiable=("input",),
        summary="negative log likelihood -w_y x_y of class indices, given log-probabilities; classification",
        functional=nll_loss,
        cls=NLLLoss,
        example=_example,
        curve=nll_two_class,
    )
)
