"""Namespace, shape and dtype helpers, and the few operations the Array API
standard lacks. Loss code calls these instead of branching on a backend; any
backend workaround lives here, with a comment naming the backend and why.
"""

from __future__ import annotations

from typing import Any

import array_api_compat as _compat
import array_api_extra as xpx
import numpy as np  # core dependency: NumPy scalars, and the in-place and layout forms NumPy has

from ._typing import Namespace


def size(x: Any) -> int:
    """Number of elements (the standard's ``x.size`` may be ``None`` for lazy arrays)."""
    n = 1
    for d in x.shape:  # a loop, not a generator: torch.compile traces this
        n *= int(d)
    return n


def item(x: Any) -> Any:
    """A Python scalar (bool, int or float, as the dtype) from a 0-d array."""
    if hasattr(x, "item"):
        return x.item()
    xp = _compat.array_namespace(x)  # array-api-strict: no .item()
    if x.dtype == xp.bool:
        return bool(x)
    return int(x) if xp.isdtype(x.dtype, "integral") else float(x)


def zero_dim(xp: Namespace, x: Any) -> Any:
    """NumPy reductions give NumPy scalars; the contract is a 0-d array."""
    return xp.asarray(x) if isinstance(x, np.generic) else x


def device(x: Any) -> Any:
    return _compat.device(x)


def broadcast_to(xp: Namespace, x: Any, shape: Any) -> Any:
    """``xp.broadcast_to``; on PyTorch ``Tensor.expand``, which the batching of
    ``torch.autograd.grad(..., is_grads_batched=True)`` knows (not broadcast_to)."""
    if _compat.is_torch_array(x):
        return x.expand(shape)
    return xp.broadcast_to(x, shape)


def vecdot(xp: Namespace, a: Any, b: Any) -> Any:
    """Dot products along the last axis of two real arrays of one dtype. On
    PyTorch ``torch.linalg.vecdot``: array-api-compat's goes through
    ``moveaxis``, which ``torch.func.vmap`` cannot batch."""
    if _compat.is_torch_array(a):
        import torch

        return torch.linalg.vecdot(a, b)
    return xp.vecdot(a, b)


def adopt_numpy(xp: Namespace, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    """``arrays`` with any NumPy array among arrays of another library ``xp``
    converted to ``xp``, on the device of the first of the others."""
    if _compat.is_numpy_namespace(xp):
        return arrays
    where = None
    for a in arrays:
        if a is not None and not _compat.is_numpy_array(a):
            where = device(a)
            break
    out = []
    for a in arrays:
        out.append(xp.asarray(a, device=where) if _compat.is_numpy_array(a) else a)
    return tuple(out)


def origin(a: Any) -> Any:
    """The array a checked Dask array stands for (``_checks.check_values``), else ``a``."""
    return getattr(a, "anyloss_checks", a)


def any_complex(xp: Namespace, arrays: Any) -> bool:
    """Whether one of ``arrays`` (``None`` entries skipped) has a complex dtype."""
    for a in arrays:
        if a is not None and xp.isdtype(a.dtype, "complex floating"):
            return True
    return False


def broadcast_shapes(*shapes: Any) -> tuple[Any, ...]:
    """NumPy/PyTorch broadcasting of shapes; ``ValueError`` if they do not broadcast."""
    # Plain loops (no generators, no sets): torch.compile traces this. Kept by hand:
    # array-api-extra's is deprecated (for xp.broadcast_shapes of the 2025.12
    # standard, which not every namespace has yet) and warns, which Dynamo cannot trace.
    ndim = 0
    for s in shapes:
        ndim = max(ndim, len(s))
    out = []
    for axis in range(ndim):
        dim = 1
        for s in shapes:
            k = axis - ndim + len(s)
            if k >= 0 and s[k] != 1:
                if dim not in (1, s[k]):
                    raise ValueError(f"shapes {shapes} do not broadcast")
                dim = s[k]
        out.append(dim)
    return tuple(out)


def result_float_dtype(xp: Namespace, *arrays: Any) -> Any:
    """PyTorch's type promotion for a loss: floating arrays (real or complex)
    promote among themselves (float32 with float64 gives float64), integer and
    boolean arrays never widen a floating one (float32 with int64 stays float32,
    unlike NumPy)."""
    floats = [a.dtype for a in arrays if a is not None and xp.isdtype(a.dtype, ("real floating", "complex floating"))]
    return xp.result_type(*floats)


def as_float(xp: Namespace, x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype`` (no copy when it already is)."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


def sum_to_shape(xp: Namespace, g: Any, shape: Any) -> Any:
    """Sum a broadcast cotangent ``g`` back to ``shape`` (the VJP of broadcasting)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    if axes:
        g = xp.sum(g, axis=axes)
    return xp.reshape(g, shape)


def _half_dtype(xp: Namespace, x: Any) -> Any:
    """``x``'s dtype if it is float16 or bfloat16, else None. PyTorch's CPU kernels
    for sigmoid, softplus and log_sigmoid compute those in float32 and round once;
    op by op in half precision, 1 + exp(-|x|) alone loses the bits that matter."""
    halves = [getattr(xp, n) for n in ("float16", "bfloat16") if hasattr(xp, n)]
    return x.dtype if any(x.dtype == h for h in halves) else None


def clip(xp: Namespace, x: Any, min: Any = None, max: Any = None) -> Any:
    """``xp.clip``; on NumPy arrays NumPy's own (array-api-compat's wrapper costs
    about 20 us a call, ``np.clip`` 7: ``ctc_loss`` bounds its index tables
    with a dozen of them a call)."""
    if _compat.is_numpy_array(x) and not isinstance(x, np.generic):
        return np.clip(x, min, max)
    return xp.clip(x, min=min, max=max)


def where(xp: Namespace, cond: Any, a: Any, b: Any) -> Any:
    """``xp.where(cond, a, b)``; on NumPy arrays (``a`` and ``b`` of one float dtype,
    broadcasting as ``where``'s do) a bitwise select, ``b ^ ((a ^ b) & -cond)`` on
    their bits: the same values, NaN payloads and signed zeros included. NumPy's
    ``where`` branches on each element: on 2^18 float32 elements 150 us, and 950 us
    where ``cond`` is random (a loss's data on both sides of its kink), against 120
    us for the select."""
    if not (
        type(a) is np.ndarray
        and type(b) is np.ndarray
        and type(cond) is np.ndarray
        and a.dtype == b.dtype
        and a.dtype.kind == "f"
        and cond.dtype == np.bool_
    ):
        return xp.where(cond, a, b)
    bits = np.dtype(f"u{a.dtype.itemsize}")
    mask = cond.view(np.uint8).astype(bits)
    np.negative(mask, out=mask)  # all ones where cond
    b_bits = b.view(bits)
    out = np.bitwise_and(np.bitwise_xor(a.view(bits), b_bits), mask)
    np.bitwise_xor(out, b_bits, out=out)
    return out.view(a.dtype)


def torch_sign(xp: Namespace, x: Any) -> Any:
    """``sign(x)`` of a real ``x`` with ``sign(NaN) = 0``, as ``torch.sign`` (PyTorch's
    subgradient of ``|x|``); NumPy's and JAX's sign of NaN is NaN. On PyTorch
    tensors ``torch.sign`` itself: array-api-compat's ``sign`` sets NaN back with an
    in-place ``index_put``, after which ``torch.compile`` keeps boolean masks for
    the backward, whose stores inductor's CPU code makes slow."""
    if _compat.is_torch_array(x):
        return x.sign()
    return xp.where(xp.isnan(x), xp.zeros_like(x), xp.sign(x))


def softplus(xp: Namespace, x: Any) -> Any:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    half = _half_dtype(xp, x)
    if half is not None:
        return xp.astype(softplus(xp, xp.astype(x, xp.float32)), half)
    # max(x, 0) against a 0-d zero: array-api-compat's maximum with a Python
    # scalar asks torch.result_type, which torch.compile cannot trace.
    zero = xp.zeros((), dtype=x.dtype, device=device(x))
    return xp.maximum(x, zero) + xp.log1p(xp.exp(-xp.abs(x)))


def sigmoid(xp: Namespace, x: Any) -> Any:
    """1 / (1 + exp(-x)), computed from exp(-|x|) so that it never overflows."""
    half = _half_dtype(xp, x)
    if half is not None:
        return xp.astype(sigmoid(xp, xp.astype(x, xp.float32)), half)
    # exp(-|x|) written as a select, not abs: differentiated again (a Hessian),
    # abs's subgradient 0 at x = 0 would make sigmoid'(0) 0 instead of 1/4.
    e = xp.exp(xp.where(x >= 0, -x, x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_sigmoid(xp: Namespace, x: Any, *, parts: bool = False) -> Any:
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), PyTorch's form: it never
    overflows and equals -softplus(-x). With ``parts``, ``(log_sigmoid(x), e, l)``
    with ``e = exp(-|x|)`` and ``l = log1p(e)`` (in float32 for a half ``x``), for a
    gradient that reuses them: sigmoid(x) = max(e, [x >= 0]) / (1 + e), and
    log_sigmoid(-x) = min(-x, 0) - l.

    >>> import numpy as np
    >>> [f"{v:.4f}" for v in log_sigmoid(np, np.array([-800.0, 0.0, 800.0]))]
    ['-800.0000', '-0.6931', '0.0000']
    """
    half = _half_dtype(xp, x)
    xw = x if half is None else xp.astype(x, xp.float32)
    e = xp.exp(-xp.abs(xw))
    lg = log1p_unit(xp, e)
    zero = xp.zeros((), dtype=xw.dtype, device=device(xw))  # not 0.0: see softplus
    out = as_float(xp, xp.minimum(xw, zero) - lg, x.dtype)
    return (out, e, lg) if parts else out


def shifted_by_max(xp: Namespace, x: Any, axis: Any, *, overwrite: bool = False, m: Any = None) -> Any:
    """``x - max(x)`` along ``axis`` (an int or a tuple): the first step of
    log-softmax, so that no exponential overflows. With ``overwrite`` (``x`` is
    the caller's own temporary) ``x`` is shifted in place where the library
    allows it (in-place operators rebind on JAX and Dask). ``m``: the maximum
    (kept dims) if the caller has it. An empty ``x`` needs no shift (and Dask
    cannot take the max of an empty array)."""
    if not size(x):
        return x
    if m is None:
        m = xp.max(x, axis=axis, keepdims=True)
    if overwrite:
        x -= m
        return x
    return x - m


def log_softmax_parts(xp: Namespace, x: Any, axis: Any, *, overwrite: bool = False) -> Any:
    """``(shifted, e, s)`` along ``axis`` (kept dims): ``shifted = x - max``,
    ``e = exp(shifted)``, ``s = sum(e)``; then ``log_softmax = shifted - log(s)``
    and ``softmax = e / s``. PyTorch's order of operations: nothing overflows,
    nothing is rounded at the logits' magnitude (as ``x - logsumexp(x)`` is),
    and no ``log`` of a softmax that underflowed. A row holding ``+inf``, or
    only ``-inf``, gives NaN, as in PyTorch. ``overwrite``: see
    :func:`shifted_by_max` (a caller that needs ``shifted`` only until its
    exponential takes the two steps itself, exponentiating in place)."""
    shifted = shifted_by_max(xp, x, axis, overwrite=overwrite)
    e = xp.exp(shifted)
    return shifted, e, xp.sum(e, axis=axis, keepdims=True)


def log_softmax(xp: Namespace, x: Any, axis: Any) -> Any:
    """``log(softmax(x))`` along ``axis``, as :func:`log_softmax_parts` computes it.

    >>> import numpy as np
    >>> print(np.round(log_softmax(np, np.array([1000.0, 0.0, -1000.0]), 0), 4))
    [    0. -1000. -2000.]
    """
    shifted, _, s = log_softmax_parts(xp, x, axis)
    return shifted - xp.log(s)


def logsumexp(xp: Namespace, x: Any, axis: Any, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` along ``axis`` (an int or a tuple): ``m + log(sum(exp(x - m)))``
    with ``m`` the max, or 0 where that is not finite (SciPy's, JAX's and
    TensorFlow's way): a row of ``-inf`` gives ``-inf``, one holding ``+inf`` gives ``+inf``."""
    if size(x):
        m = xp.max(x, axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), dtype=x.dtype, device=device(x)))
    else:
        m = xp.zeros_like(xp.sum(x, axis=axis, keepdims=True))
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def ignored(xp: Namespace, t: Any, ignore_index: Any) -> Any:
    """``t == ignore_index`` for class-index targets ``t``, or None when an integer
    ``t``'s dtype cannot hold ``ignore_index`` (then no target is ignored)."""
    if xp.isdtype(t.dtype, "integral"):
        info = xp.iinfo(t.dtype)
        if not info.min <= ignore_index <= info.max:
            return None
    return t == ignore_index


def is_lazy(x: Any) -> bool:
    """True when ``x``'s values cannot be read without tracing or computing
    (JAX tracers under ``jit``/``grad``/``vmap``, Dask arrays): the test
    ``_checks.check_values`` uses to skip. A loss whose static sizes depend on
    values (``ctc_loss``'s longest concatenated target) falls back to a static
    bound then.

    array-api-compat calls every JAX array lazy; a concrete one (an eager
    ``jax.Array``, not a tracer) is read like a NumPy array here, so eager JAX
    calls get every value check. PyTorch tensors count as lazy where reading
    them would break a trace or synchronise with a device (below)."""
    if _compat.is_jax_array(x):
        from jax.core import Tracer  # jax is imported already: x is one of its arrays

        return isinstance(x, Tracer)
    if _compat.is_torch_array(x):
        return _torch_unreadable(x)
    return _compat.is_lazy_array(x)


def _torch_unreadable(x: Any) -> bool:
    """A PyTorch tensor whose values are not read on the host: while
    ``torch.compile`` traces (a read would break the graph), inside a
    ``torch.func`` transform (``vmap``'s batched tensors have no ``.item()``),
    on the ``meta`` device (no data) or on an accelerator (a read would wait
    for the device)."""
    import torch  # imported already: x is one of its tensors

    return (
        torch.compiler.is_compiling()
        or x.device.type != "cpu"
        or torch._C._functorch.is_functorch_wrapped_tensor(x)
        or torch._C._functorch.is_legacy_batchedtensor(x)
    )  # is_grads_batched's vmap


def on_host(xp: Namespace, *arrays: Any) -> tuple[Namespace, tuple[Any, ...]] | None:
    """``(namespace, arrays)`` in which to check the values of ``arrays`` now:
    PyTorch CPU tensors as NumPy views of their memory (no copy; a value check
    is a dozen operations on small index arrays, each costing PyTorch several
    times NumPy's dispatch), other readable arrays as they are; ``None`` where
    one of them cannot be read now (:func:`is_lazy`)."""
    if any(is_lazy(a) for a in arrays):
        return None
    if all(_compat.is_torch_array(a) for a in arrays):
        try:
            views = tuple(a.detach().numpy() for a in arrays)
        except (TypeError, RuntimeError):  # a dtype NumPy lacks (bfloat16), a conjugate view
            return xp, arrays
        return _compat.array_namespace(*views), views
    return xp, arrays


def read(x: Any) -> Any:
    """The Python scalar of the 0-d array ``x``, or None when it cannot be read
    without tracing or computing (see :func:`is_lazy`). A value computed from a
    concrete JAX array inside ``jit`` is a tracer, so the test is on ``x``."""
    return None if is_lazy(x) else item(x)


def index_dtype(xp: Namespace, x: Any = None) -> Any:
    """The namespace's default integer dtype for indexing: int64 on NumPy,
    PyTorch and Dask, int32 on JAX without x64 (so no int64 request warns)."""
    try:
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=None if x is None else device(x))["indexing"]
    except (AttributeError, KeyError, TypeError):  # a namespace older than the 2023.12 inspection API
        return xp.int64


def take_along(xp: Namespace, x: Any, index: Any, axis: Any) -> Any:
    """``x`` picked at ``index`` along ``axis``: ``out[n, d] = x[n, index[n, d], d]``.

    ``index`` has ``x``'s shape without ``axis``, an integer dtype and values
    in range. Costs memory in ``index``'s size only where the namespace has
    ``take_along_axis``."""
    if hasattr(xp, "take_along_axis"):  # Array API 2024.12
        idx = xp.expand_dims(index, axis=axis)
        return xp.squeeze(xp.take_along_axis(x, idx, axis=axis), axis=axis)
    # Namespaces without it (array-api-compat 1.16's Dask): the sum of ``x`` over
    # a one-hot mask of ``index``. Costs a pass over ``x`` instead of a gather, but
    # it is blockwise, so a Dask array chunked along the batch stays chunk-local
    # (a gather through flat indices would shuffle, and hold, far more than a chunk).
    picked = xp.where(one_hot_mask(xp, index, x.shape[axis], axis), x, xp.zeros((), dtype=x.dtype, device=device(x)))
    return xp.sum(picked, axis=axis)


def one_hot_mask(xp: Namespace, index: Any, n: Any, axis: Any) -> Any:
    """Boolean ``index == c`` for every class ``c`` in ``range(n)``, the class
    axis inserted at ``axis``: the scatter pattern of :func:`take_along`'s VJP.
    ``index`` should have a dtype that holds ``n`` (see :func:`index_dtype`)."""
    # Kept by hand: array-api-extra's one_hot calls torch.nn.functional.one_hot on
    # tensors, which reads their values (no torch.func.vmap, torch.compile or meta).
    shape = [1] * (index.ndim + 1)
    shape[axis] = n
    classes = xp.reshape(xp.arange(n, dtype=index.dtype, device=device(index)), tuple(shape))
    return xp.expand_dims(index, axis=axis) == classes


def add_at(xp: Namespace, x: Any, key: Any, y: Any) -> Any:
    """``x[key] += y``; returns ``x``. In place where arrays are mutable (NumPy,
    PyTorch, CuPy, Dask, array-api-strict), so a loop accumulating into a large
    array (``linear_cross_entropy``'s weight gradient) allocates nothing of its
    size per step. JAX arrays are immutable: ``x.at[key].add(y)`` (which ``jit``
    turns into an in-place update)."""
    if size(y) == 0:  # nothing to add (and Dask refuses to assign an empty block)
        return x
    if _compat.is_torch_array(x) and (is_lazy(x) or is_lazy(y)):
        # Traced or batched by torch.func (where x may not be batched and y is):
        # out of place, y padded to x's shape. (array-api-extra's `at` updates in
        # place there, and torch.compile cannot trace it.)
        keys = key if isinstance(key, tuple) else (key,)
        return x + _padded(y, keys, x.shape)
    return xpx.at(x, key).add(y, copy=None, xp=xp)


def _padded(y: Any, keys: Any, shape: Any) -> Any:
    """PyTorch ``y`` zero-padded to ``shape``, placed at ``keys`` (slices of step 1
    and at most one Ellipsis) -- an out-of-place ``zeros(shape)[keys] = y``."""
    import torch.nn.functional as F

    if Ellipsis in keys:
        i = keys.index(Ellipsis)
        keys = keys[:i] + (slice(None),) * (len(shape) - len(keys) + 1) + keys[i + 1 :]
    keys = keys + (slice(None),) * (len(shape) - len(keys))
    pads = []
    for k, n in reversed(list(zip(keys, shape))):  # F.pad lists the last axis first
        start, stop, _ = k.indices(n)
        pads += [start, n - stop]
    return F.pad(y, pads)


def exp_into(xp: Namespace, x: Any) -> Any:
    """``exp(x)``, written over ``x`` where the library allows it (NumPy,
    PyTorch), else a new array: for a large temporary that is not needed
    afterwards (``linear_cross_entropy``'s chunk of logits), so that its
    exponential costs no second array of its size. ``x`` must be the
    caller's own array, not a view of user data."""
    if _compat.is_numpy_array(x) and not isinstance(x, np.generic):
        return np.exp(x, out=x)
    if _compat.is_torch_array(x) and not x.requires_grad and not is_lazy(x):
        return x.exp_()
    return xp.exp(x)


def log1p_unit(xp: Namespace, x: Any) -> Any:
    """``log(1 + x)`` for ``x`` in [0, 1] (``exp(-|z|)`` in a softplus), to an ulp.

    NumPy's ``log1p`` costs several of its ``log``; there it is ``log(u)``
    with ``u = 1 + x``, corrected by the rounding of ``u``:
    ``log(1 + x) = log(u) + (x - (u - 1)) / u`` to first order, where
    ``u - 1`` is exact. Other libraries' ``log1p`` is used as it is."""
    if _compat.is_numpy_array(x) or isinstance(x, np.generic):
        u = 1.0 + x  # type: ignore[operator]  # numpy's stubs give a bare np.generic no arithmetic
        return xp.log(u) + (x - (u - 1.0)) / u  # type: ignore[operator]  # (as above)
    return xp.log1p(x)


def _jax_explicit(*arrays: Any) -> bool:
    """Whether one of these JAX arrays has a sharding in its type (explicit mode)."""
    import jax

    for a in arrays:
        sharding = getattr(jax.typeof(a), "sharding", None)
        mesh = getattr(sharding, "mesh", None)
        if mesh is not None and any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
            return True
    return False


def add_along(xp: Namespace, x: Any, index: Any, values: Any, axis: Any) -> Any:
    """``x`` plus ``values`` at ``index`` along ``axis`` (the VJP of
    :func:`take_along`): ``x[n, index[n, d], d] += values[n, d]``. ``x`` must be
    the caller's own array: NumPy and PyTorch add into it in place, touching
    one element per row instead of a pass over a one-hot mask."""
    idx = xp.expand_dims(index, axis=axis)
    v = xp.expand_dims(values, axis=axis)
    if _compat.is_numpy_array(x) and not isinstance(x, np.generic):
        np.put_along_axis(x, idx, np.take_along_axis(x, idx, axis=axis) + v, axis=axis)
        return x
    if _compat.is_jax_array(x) and not _jax_explicit(x, index):
        # A scatter-add, as JAX differentiates take_along_axis. With the one-hot
        # select below, XLA's CPU backend fuses the reduction that made ``values``
        # with their broadcast back to x's shape: one more array of x's size. (In
        # JAX's explicit sharding mode a scatter needs an output sharding: the select.)
        axis %= x.ndim
        grids = [
            xp.reshape(xp.arange(d), tuple(d if k == j else 1 for k in range(index.ndim)))
            for j, d in enumerate(index.shape)
        ]
        key = tuple(grids[:axis]) + (index,) + tuple(grids[axis:])
        return x.at[key].add(xp.astype(values, x.dtype))
    if _compat.is_torch_array(x) and not x.requires_grad:
        if is_lazy(x) or is_lazy(values):  # traced or batched by torch.func: no in-place update
            return x.scatter_add(axis, xp.astype(idx, xp.int64), xp.astype(v, x.dtype))
        return x.scatter_add_(axis, xp.astype(idx, xp.int64), xp.astype(v, x.dtype))
    hit = one_hot_mask(xp, index, x.shape[axis], axis)
    return x + xp.where(hit, v, xp.zeros((), dtype=x.dtype, device=device(x)))
