"""Pieces the extras share: checks, the class axis (softmax losses) and the
overlap ratios of the segmentation losses (Dice, Jaccard, Tversky)."""

from __future__ import annotations

import math
from typing import Any

from .._checks import check_bool, check_class_weight, check_floating, check_number, check_same_shape, check_values, fail
from .._checks import check_class_target as _check_class_target
from .._spec import Curve
from .._typing import Namespace
from .._xp import as_float, index_dtype, one_hot_mask, result_float_dtype, sigmoid, take_along

# --------------------------------------------------------------------------- checks


def check_unit_interval(xp: Namespace, name: Any, x: Any) -> Any:
    """Values in [0, 1] (probabilities, soft labels); returns ``x`` (``_checks.check_values``)."""
    return check_values(xp, name, x, lambda xp, v: (v >= 0) & (v <= 1), "have values in [0, 1]")


def float_pair(xp: Namespace, input: Any, target: Any) -> Any:
    """``input`` and ``target`` in their common floating dtype (PyTorch's promotion)."""
    dtype = result_float_dtype(xp, input, target)
    return as_float(xp, input, dtype), as_float(xp, target, dtype)


# --------------------------------------------------------------------------- class axis


def class_axis(x: Any) -> int:
    """PyTorch's class axis: 0 for a single sample (C,), else 1: (N, C, d1, ...)."""
    return 0 if x.ndim == 1 else 1


def check_class_target(
    xp: Namespace, input: Any, target: Any, ignore_index: Any, weight: Any = None, weight_name: str = "weight"
) -> Any:
    """A floating ``input`` (C,), (N, C) or (N, C, d1, ...) and its class-index
    ``target`` (:func:`anyloss._checks.check_class_target`, with the exact shape:
    no (1) for a (C,) input); an optional floating per-class ``weight``. Returns ``target``."""
    check_floating(xp, "input", input)
    target = _check_class_target(xp, input.shape, target, ignore_index, single=False)
    if weight is not None:
        check_floating(xp, weight_name, weight)
        check_class_weight(weight, input.shape[class_axis(input)], name=weight_name)
    return target


def class_pick(xp: Namespace, target: Any, ignore_index: Any, n: Any, axis: Any) -> Any:
    """``(valid, index, onehot)``: where the target is not ignored, the target as
    a safe index (0 where ignored) and its one-hot mask along ``axis``."""
    valid = target != ignore_index
    index = xp.astype(xp.where(valid, target, xp.zeros_like(target)), index_dtype(xp, target))
    return valid, index, one_hot_mask(xp, index, n, axis)


def gather(xp: Namespace, x: Any, index: Any, axis: Any) -> Any:
    """``x`` at ``index`` along ``axis`` (the axis dropped)."""
    return take_along(xp, x, index, axis)


def count(xp: Namespace, valid: Any, dtype: Any) -> Any:
    """Number of True in ``valid``, as a 0-d array of ``dtype`` (the 'mean' divisor)."""
    return xp.sum(xp.astype(valid, dtype))


# --------------------------------------------------------------------------- overlap ratios


def check_overlap(
    xp: Namespace, input: Any, target: Any, *, dim: Any, smooth: Any, eps: Any, from_logits: Any = None
) -> Any:
    """Checks shared by Dice, Jaccard and Tversky: same shapes, floating input,
    probabilities (unless ``from_logits``) and targets in [0, 1], ``dim`` valid
    for the input, ``smooth`` and ``eps`` >= 0. Returns ``(input, target)``."""
    check_floating(xp, "input", input)
    check_same_shape("input", input, "target", target)
    check_number("smooth", smooth, min=0.0)
    check_number("eps", eps, min=0.0)
    if from_logits is not None:
        check_bool("from_logits", from_logits)
        if not from_logits:
            input = check_unit_interval(xp, "input", input)
    target = check_unit_interval(xp, "target", target)
    axes(input.ndim, dim)
    return input, target


def axes(ndim: int, dim: Any) -> tuple[Any, ...]:
    """The axes a ratio sums over: ``dim`` normalized (sorted, non-negative);
    ``None`` is every axis but the first (one ratio per sample)."""
    if dim is None:
        if ndim < 2:
            fail(
                ValueError,
                "input",
                "have a batch axis and at least one more, (N, *), when `dim` is None (pass dim=0 for a single sample)",
                f"a {ndim}-d array",
            )
        return tuple(range(1, ndim))
    dims = (dim,) if isinstance(dim, int) and not isinstance(dim, bool) else dim
    if (
        not isinstance(dims, (tuple, list))
        or not dims
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
    ):
        fail(TypeError, "dim", "be None, an int or a non-empty tuple of ints", repr(dim))
    out = []
    for d in dims:
        if not -ndim <= d < ndim:
            fail(ValueError, "dim", f"name axes of the {ndim}-d input, in [{-ndim}, {ndim})", repr(dim))
        out.append(d % ndim)
    if len(set(out)) != len(out):
        fail(ValueError, "dim", "name each axis once", repr(dim))
    return tuple(sorted(out))


def probabilities(xp: Namespace, input: Any, from_logits: Any) -> Any:
    return sigmoid(xp, input) if from_logits else input


class Ratio:
    """``R = (cn TP + s) / max(ct TP + cp sum(p^k) + cq sum(t^k) + s, eps)`` over
    ``axes``, with TP = sum(p t): the one shape of the Dice, Jaccard and
    Tversky indices (their coefficients are in each loss's docstring)."""

    def __init__(
        self,
        xp: Namespace,
        p: Any,
        t: Any,
        ax: Any,
        *,
        cn: Any,
        ct: Any,
        cp: Any,
        cq: Any,
        k: int = 1,
        smooth: Any,
        eps: Any,
    ) -> None:
        self.xp, self.p, self.t, self.ax = xp, p, t, ax
        self.cn, self.ct, self.cp, self.cq, self.k = cn, ct, cp, cq, k
        tp = xp.sum(p * t, axis=ax, keepdims=True)
        sp = xp.sum(p if k == 1 else p * p, axis=ax, keepdims=True)
        st = xp.sum(t if k == 1 else t * t, axis=ax, keepdims=True)
        num = cn * tp + smooth
        self.den = ct * tp + cp * sp + cq * st + smooth
        self.den_c = xp.maximum(self.den, eps)  # the clamp only matters when smooth is 0 and the sums are too
        self.eps = eps
        self.ratio = num / self.den_c  # keepdims shape

    def reduced(self, x: Any) -> Any:
        """``x`` of the keepdims shape with the summed axes dropped."""
        shape = tuple(d for i, d in enumerate(self.p.shape) if i not in self.ax)
        return self.xp.reshape(x, shape)

    def expand(self, g: Any) -> Any:
        """The cotangent ``g`` of a reduced value back in the keepdims shape."""
        shape = tuple(1 if i in self.ax else d for i, d in enumerate(self.p.shape))
        return self.xp.reshape(g, shape)

    def vjp(self, g_ratio: Any) -> Any:
        """Cotangent of ``p`` given that of ``R`` (keepdims shape). dR/dp =
        (dnum - R dden) / den, where dden vanishes below the ``eps`` clamp
        (PyTorch's clamp_min passes the gradient where den >= eps)."""
        xp = self.xp
        dden = self.ct * self.t + (self.cp if self.k == 1 else 2.0 * self.cp * self.p)
        r = xp.where(self.den >= self.eps, self.ratio, xp.zeros_like(self.ratio))
        return (g_ratio / self.den_c) * (self.cn * self.t - r * dden)


def mean_over(xp: Namespace, x: Any, ax: Any, shape: Any) -> Any:
    """Mean of ``x`` over ``ax`` (kept), NaN for no elements as PyTorch's 0/0."""
    n = math.prod(shape[a] for a in ax)
    return xp.sum(x, axis=ax, keepdims=True) / (float(n) if n else float("nan"))


def overlap_example(xp: Namespace) -> Any:
    """The worked example of the overlap losses (Dice, Jaccard, Tversky): two
    samples of four pixels, probabilities against binary masks."""
    input = xp.asarray([[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.6, 0.4]], dtype=xp.float64)
    target = xp.asarray([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]], dtype=xp.float64)
    return (input, target), {}


def overlap_curve(xp: Namespace, x: Any) -> Any:
    """The overlap losses' plot: one pixel per sample, target 1, against its probability."""
    return Curve(
        (x[:, None], xp.ones((x.shape[0], 1), dtype=x.dtype)), "probability p of a pixel (target 1)", domain=(0.0, 1.0)
    )
