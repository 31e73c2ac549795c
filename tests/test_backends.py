"""What each backend adds beyond the per-loss oracle (every loss's worked
example against PyTorch on every backend is tests/test_examples.py):

* JAX: ``jax.jit``, ``jax.jit(jax.grad)`` and ``jax.vmap`` of every loss;
  forward mode refused with a clear message; value checks eager only.
* PyTorch: float16 and bfloat16 wherever PyTorch computes the loss on the
  CPU; device, dtype and autograd attachment of the result.
* Dask: lazy loss and gradient for every loss; global denominators across
  chunks; a real ``dask.distributed`` cluster.

Each group runs when its backend is selected (``ANYLOSS_BACKENDS``) and
installed; it uses its library directly, not the ``xp`` fixture.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from helpers import _bind, _call_with, _get, assert_close, no_compute, stacked_copies, torch, torch_value_and_grads

SPECS = anyloss.losses()
# PyTorch's catalogue (the oracle here); tests/test_extras.py runs the extras on every backend.
NAMES = [n for n, s in SPECS.items() if s.catalogue == "torch"]
_SELECTED = os.environ.get("ANYLOSS_BACKENDS", "numpy,array_api_strict,torch,jax,dask").split(",")


def _backend(name):
    if name not in _SELECTED:
        pytest.skip(f"the {name} backend is not selected (ANYLOSS_BACKENDS)")
    return pytest.importorskip(name)


class Example:
    """A loss's worked example: its arrays (NumPy), which of them are
    differentiated (floating and in ``spec.differentiable``), and ``call``
    to run the loss on other arrays in their place."""

    def __init__(self, name):
        self.name, self.spec = name, SPECS[name]
        self.args, self.kwargs = self.spec.example(np)
        self.slots = _bind(name, self.args, self.kwargs)
        self.arrays = [_get(self.args, self.kwargs, s) for s, _ in self.slots]
        self.names = [p for _, p in self.slots]
        self.is_float = [np.issubdtype(a.dtype, np.floating) for a in self.arrays]
        self.diff = [
            i for i, (p, fl) in enumerate(zip(self.names, self.is_float)) if fl and p in self.spec.differentiable
        ]

    def call(self, *arrays, fn=None):
        return _call_with(fn or self.spec.functional, self.args, self.kwargs, self.slots, arrays)

    def torch_oracle(self):
        """PyTorch's value and its gradients (None for an argument it does not differentiate)."""
        out, grads, _, _ = torch_value_and_grads(self.name, self.args, self.kwargs, self.slots)
        assert [i for i, g in enumerate(grads) if g is not None] == self.diff
        return out, grads


# ============================================================================ JAX


@pytest.fixture(scope="module")
def jax():
    jax = _backend("jax")
    jax.config.update("jax_enable_x64", True)  # the examples are float64
    return jax


def _jnp(arrays):
    import jax.numpy as jnp

    return [jnp.asarray(a) for a in arrays]


@pytest.mark.parametrize("name", NAMES)
def test_jax_jit(jax, name):
    """jax.jit of the loss (options static by closure, every array an argument)
    gives the eager value, which is PyTorch's."""
    ex = Example(name)
    arrays = _jnp(ex.arrays)
    eager = ex.call(*arrays)
    jitted = jax.jit(ex.call)(*arrays)
    assert isinstance(jitted, jax.Array) and jitted.dtype == eager.dtype and jitted.shape == eager.shape
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-13, atol=0)
    assert_close(jitted, ex.torch_oracle()[0], f"{name} value under jax.jit")


@pytest.mark.parametrize("name", NAMES)
def test_jax_jit_grad(jax, name):
    """jax.jit(jax.grad) with respect to every differentiable argument at once
    equals torch.autograd's gradient."""
    ex = Example(name)
    _, t_grads = ex.torch_oracle()
    grads = jax.jit(jax.grad(ex.call, argnums=tuple(ex.diff)))(*_jnp(ex.arrays))
    assert len(grads) == len(ex.diff)
    for i, g in zip(ex.diff, grads):
        assert g.dtype == ex.arrays[i].dtype
        assert_close(g, t_grads[i], f"{name} jit(grad) of `{ex.names[i]}`")


@pytest.mark.parametrize("name", NAMES)
def test_jax_vmap(jax, name):
    """jax.vmap over a batch of 3 different examples (every array batched,
    integer targets and CTC lengths included) equals 3 separate eager calls;
    jax.vmap(jax.grad) (per-example gradients) equals anyloss's gradient of
    each example on NumPy (the same analytic gradient, without JAX)."""
    ex = Example(name)
    np_batch = stacked_copies(ex)
    batch = _jnp(np_batch)
    values = jax.vmap(ex.call)(*batch)
    grads = jax.vmap(jax.grad(ex.call, argnums=tuple(ex.diff)))(*batch)
    assert values.shape == (3,) and all(g.shape == b.shape for g, b in zip(grads, (batch[i] for i in ex.diff)))
    for k in range(3):
        np.testing.assert_allclose(
            np.asarray(values[k]), np.asarray(ex.call(*[b[k] for b in batch])), rtol=1e-12, atol=1e-15
        )
        _, want = anyloss.value_and_grad(ex.call, argnums=tuple(ex.diff))(*[b[k] for b in np_batch])
        for g_batched, g_one in zip(grads, want):
            np.testing.assert_allclose(np.asarray(g_batched[k]), g_one, rtol=1e-10, atol=1e-14)


def test_jax_forward_mode(jax):
    """anyloss's JAX gradient is a custom_jvp built on the analytic VJP:
    jax.jvp, jax.jacfwd (also through an outer jit) and jax.hessian give
    PyTorch's numbers."""
    import jax.numpy as jnp

    x = jnp.asarray([0.8, 0.3, 0.6])
    y = jnp.asarray([1.0, 0.0, 1.0])
    tx, ty = torch.tensor([0.8, 0.3, 0.6], dtype=torch.float64), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    tangent = jnp.asarray([1.0, -2.0, 0.5])

    def f(a):
        return F.binary_cross_entropy(a, y)

    def t_f(a):
        return torch.nn.functional.binary_cross_entropy(a, ty)

    t_value, t_tangent = torch.func.jvp(t_f, (tx,), (torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64),))
    for fn in (f, jax.jit(f)):
        value, out_tangent = jax.jvp(fn, (x,), (tangent,))
        assert_close(value, t_value, "jax.jvp value")
        assert_close(out_tangent, t_tangent, "jax.jvp tangent")
    jac = jax.jacfwd(lambda a: F.binary_cross_entropy(a, y, reduction="none"))(x)
    t_jac = torch.func.jacfwd(lambda a: torch.nn.functional.binary_cross_entropy(a, ty, reduction="none"))(tx)
    assert_close(jac, t_jac, "jax.jacfwd")
    assert_close(jax.hessian(f)(x), torch.func.hessian(t_f)(tx), "jax.hessian")


def test_jax_value_checks_eager_only(jax):
    """A value check runs on concrete JAX arrays and is skipped under jax.jit
    (no exception, no tracer error): there the loss is computed as it comes."""
    import jax.numpy as jnp

    x, y = jnp.asarray([0.5, 1.5]), jnp.asarray([1.0, 0.0])
    with pytest.raises(ValueError, match="`input` must have all elements between 0 and 1"):
        F.binary_cross_entropy(x, y)
    out = jax.jit(F.binary_cross_entropy)(x, y)  # traced: the check cannot read values
    assert out.shape == () and out.dtype == x.dtype
    with pytest.raises(ValueError, match="`var`"):
        F.gaussian_nll_loss(jnp.zeros(2), jnp.zeros(2), jnp.asarray([1.0, -1.0]))
    jax.jit(F.gaussian_nll_loss)(jnp.zeros(2), jnp.zeros(2), jnp.asarray([1.0, -1.0]))


# ============================================================================ PyTorch

# Half precision on the CPU (PyTorch 2.13): PyTorch computes every loss in
# float16 and bfloat16 except these, whose CPU kernels raise
# NotImplementedError ("... not implemented for 'Half'" / "'BFloat16'"):
#
#   loss                     float16   bfloat16
#   multi_margin_loss        no        no
#   multilabel_margin_loss   no        no
#   ctc_loss                 no        no
#   (all 19 others)          yes       yes
#
# (The test checks that PyTorch still raises for these, so the table stays true.)
TORCH_NO_HALF = {"multi_margin_loss", "multilabel_margin_loss", "ctc_loss"}

# Where anyloss's own half-precision numbers differ from PyTorch's by more than
# assert_close's float16 tolerance (rtol 1e-3: one unit in the last place)
# because PyTorch rounds to float16 in another order. Strict expected failures
# of anyloss's own code (native delegation gives PyTorch's numbers).
HALF_DEVIATIONS = {
    (
        "float16",
        "binary_cross_entropy",
    ): "input gradient 2 ulp off: PyTorch's backward kernel divides (x - y) / ((1 - x) x) by N last, "
    "rounding each step to float16; anyloss multiplies by the rounded 1/N first",
    (
        "float16",
        "nll_loss",
    ): "value 2 ulp off: PyTorch's CPU nll_loss sums the picked losses in float16 (cascade sum); anyloss "
    "sums in float32 (as torch.sum of float16 does) and rounds once",
    (
        "float16",
        "cross_entropy",
    ): "input gradient up to 3 ulp off (both are 2-2.5 ulp from the exact gradient): PyTorch's backward "
    "starts from its float16-rounded log_softmax output and nll_loss's float16 -1/N; anyloss rounds "
    "exp(x - max), their sum and the quotient to float16",
}

HALF_CASES = [
    pytest.param(
        path,
        dt,
        name,
        id=f"{path}-{dt}-{name}",
        marks=[pytest.mark.xfail(reason=HALF_DEVIATIONS[dt, name], strict=True)]
        if (dt, name) in HALF_DEVIATIONS and path == "own"
        else [],
    )
    for path in ("native", "own")
    for dt in ("float16", "bfloat16")
    for name in NAMES
]


@pytest.fixture(scope="module")
def torch_backend():
    return _backend("torch")


def _torch_tensors(ex, dtype, grad=True):
    out = []
    for i, a in enumerate(ex.arrays):
        t = torch.from_numpy(a.copy())
        if ex.is_float[i]:
            t = t.to(dtype)
            if grad and i in ex.diff:
                t.requires_grad_(True)
        out.append(t)
    return out


@pytest.mark.parametrize("path, dtype, name", HALF_CASES)
def test_torch_half_precision(torch_backend, path, dtype, name):
    """float16 and bfloat16 tensors: wherever PyTorch computes the loss,
    anyloss gives a result of the same dtype, and value and .grad within
    assert_close's default tolerance for that dtype."""
    with anyloss.configure(native=path == "native"):
        _check_half_precision(dtype, name)


def _check_half_precision(dtype, name):
    ex = Example(name)
    dt = getattr(torch, dtype)
    t_in = _torch_tensors(ex, dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in TORCH_NO_HALF:
            with pytest.raises(NotImplementedError, match="not implemented for"):
                ex.call(*t_in, fn=getattr(torch.nn.functional, name))
            return  # PyTorch has no such kernel on the CPU (TORCH_NO_HALF): nothing to compare with
        t_out = ex.call(*t_in, fn=getattr(torch.nn.functional, name))
        t_out.backward(torch.ones_like(t_out))
        a_in = _torch_tensors(ex, dt)
        a_out = ex.call(*a_in)
    assert a_out.dtype == t_out.dtype == dt
    assert a_out.requires_grad
    a_out.backward(torch.ones_like(a_out))
    torch.testing.assert_close(a_out.detach(), t_out.detach(), msg=lambda m: f"{name} {dtype} value: {m}")
    for i in ex.diff:
        assert a_in[i].grad.dtype == dt
        torch.testing.assert_close(
            a_in[i].grad,
            t_in[i].grad,
            msg=lambda m: f"{name} {dtype} gradient of `{ex.names[i]}`: {m}",  # noqa: B023
        )  # noqa: B023


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_torch_result_device_dtype_autograd(torch_backend, name, dtype):
    """The result is on the input's device, in its dtype, and attached to
    autograd exactly when an input requires a gradient (and grad mode is on);
    under torch.no_grad() it is a plain tensor."""
    ex = Example(name)
    dt = getattr(torch, dtype)
    plain = ex.call(*_torch_tensors(ex, dt, grad=False))
    assert isinstance(plain, torch.Tensor) and plain.dtype == dt and plain.device == torch.device("cpu")
    assert not plain.requires_grad and plain.grad_fn is None

    tensors = _torch_tensors(ex, dt)
    out = ex.call(*tensors)
    assert out.dtype == dt and out.device == tensors[0].device
    assert out.requires_grad and out.grad_fn is not None
    out.backward()
    for i in ex.diff:
        g = tensors[i].grad
        assert g is not None and g.dtype == dt and g.device == tensors[i].device and g.shape == tensors[i].shape
    np.testing.assert_allclose(plain.numpy(), out.detach().numpy(), rtol=0, atol=0)

    with torch.no_grad():
        out = ex.call(*_torch_tensors(ex, dt))
    assert not out.requires_grad and out.grad_fn is None and out.dtype == dt
    np.testing.assert_allclose(out.numpy(), plain.numpy(), rtol=0, atol=0)


# ============================================================================ Dask


@pytest.fixture(scope="module")
def da():
    _backend("dask")
    return pytest.importorskip("dask.array")


def _dask_xp():
    from array_api_compat.dask import array as xp

    return xp


def _chunked(da, a, rows=3, axis=0):
    """``a`` as a Dask array of chunks of ``rows`` along ``axis`` (whole along the others)."""
    if a.ndim == 0:
        return da.from_array(a)
    chunks = tuple(rows if k == axis else -1 for k in range(a.ndim))
    return da.from_array(a, chunks=chunks)


def _value_and_grad_lazily(fn, args, argnums, kwargs):
    """anyloss.value_and_grad on Dask arrays, building only: nothing may be computed."""
    with no_compute(_dask_xp()):
        value, grads = anyloss.value_and_grad(fn, argnums=argnums)(*args, **kwargs)
    return value, grads


def _assert_like_numpy(da, fn, np_args, dask_args, argnums=0, np_kwargs=None, dask_kwargs=None, compute=None):
    """The lazy Dask value and gradients (a tuple ``argnums``), once computed, equal NumPy's."""
    import dask

    np_kwargs = np_kwargs or {}
    argnums = argnums if isinstance(argnums, tuple) else (argnums,)
    value, grads = _value_and_grad_lazily(fn, dask_args, argnums, np_kwargs if dask_kwargs is None else dask_kwargs)
    assert isinstance(value, da.Array) and all(isinstance(g, da.Array) for g in grads)
    got_value, *got_grads = (compute or dask.compute)(value, *grads)
    want_value, want_grads = anyloss.value_and_grad(fn, argnums=argnums)(*np_args, **np_kwargs)
    assert len(got_grads) == len(want_grads) == len(argnums)
    assert np.isfinite(want_value)
    np.testing.assert_allclose(got_value, want_value, rtol=1e-12, atol=0)
    for g, w in zip(got_grads, want_grads):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_dask_value_and_grad_stay_lazy(da, name):
    """For every loss: anyloss.value_and_grad on chunked Dask arrays (chunks of
    one row) builds a Dask value and Dask gradients without computing anything,
    and they compute to NumPy's numbers."""
    ex = Example(name)
    # The examples pass their arrays positionally, options by keyword.
    assert all(isinstance(s, int) for s, _ in ex.slots) and len(ex.slots) == len(ex.args)
    _assert_like_numpy(
        da, ex.spec.functional, ex.args, [_chunked(da, a, 1) for a in ex.args], tuple(ex.diff), ex.kwargs
    )


# Global denominators: a batch of N = 10 in chunks of 3 rows (3, 3, 3, 1), so
# each 'mean' divides one sum over all chunks by one total over all chunks.
N = 10


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def test_dask_cross_entropy_weight_ignore_index(da):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, 5))
    t = rng.integers(0, 5, N)
    t[[1, 4, 9]] = 2  # ignore_index is a real class here: rows of class 2 drop out of the total weight
    w = rng.uniform(0.5, 2.0, 5)
    _assert_like_numpy(
        da,
        F.cross_entropy,
        (x, t, w),
        (_chunked(da, x), _chunked(da, t), _chunked(da, w)),
        0,
        dict(ignore_index=2, reduction="mean"),
    )


def test_dask_nll_loss_chunk_all_ignored(da):
    rng = np.random.default_rng(2)
    x = _log_softmax(rng.standard_normal((N, 4)), 1)
    t = rng.integers(0, 4, N)
    t[3:6] = -100  # the second chunk: every target ignored
    w = rng.uniform(0.5, 2.0, 4)
    _assert_like_numpy(da, F.nll_loss, (x, t, w), (_chunked(da, x), _chunked(da, t), _chunked(da, w)))
    _assert_like_numpy(da, F.nll_loss, (x, t), (_chunked(da, x), _chunked(da, t)))


def test_dask_kl_div_batchmean(da):
    rng = np.random.default_rng(3)
    x = _log_softmax(rng.standard_normal((N, 4)), 1)
    p = np.exp(_log_softmax(rng.standard_normal((N, 4)), 1))
    _assert_like_numpy(da, F.kl_div, (x, p), (_chunked(da, x), _chunked(da, p)), (0, 1), dict(reduction="batchmean"))


def test_dask_ctc_loss_mean(da):
    """'mean' divides each loss by its own target length (max(S_n, 1)), then by N."""
    rng = np.random.default_rng(4)
    T, C, S = 6, 4, 3
    log_probs = _log_softmax(rng.standard_normal((T, N, C)), 2)
    targets = rng.integers(1, C, (N, S))
    target_lengths = np.array([3, 0, 2, 1, 3, 2, 0, 1, 2, 3])
    input_lengths = np.array([6, 5, 6, 4, 6, 3, 2, 6, 5, 6])
    np_args = (log_probs, targets, input_lengths, target_lengths)
    dask_args = (
        _chunked(da, log_probs, axis=1),
        _chunked(da, targets),
        _chunked(da, input_lengths),
        _chunked(da, target_lengths),
    )
    _assert_like_numpy(da, F.ctc_loss, np_args, dask_args, 0, dict(reduction="mean"))


def test_dask_bce_with_logits_pos_weight(da):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, 4)) * 2
    y = rng.uniform(0, 1, (N, 4))
    pw = rng.uniform(0.5, 3.0, 4)
    _assert_like_numpy(
        da,
        F.binary_cross_entropy_with_logits,
        (x, y),
        (_chunked(da, x), _chunked(da, y)),
        (0, 1),
        dict(pos_weight=pw),
        dict(pos_weight=_chunked(da, pw)),
    )


@pytest.fixture(scope="module")
def dask_client(da):
    """A real cluster: 2 worker processes of one thread each. Not the default
    scheduler (set_as_default=False), so no other test computes on it."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.mark.integration
def test_dask_distributed_cluster(da, dask_client):
    """Mean binary_cross_entropy_with_logits and cross_entropy, value and
    gradient, built lazily and computed by the cluster's worker processes."""
    assert len(dask_client.scheduler_info()["workers"]) == 2

    def compute(*xs):
        return dask_client.gather(dask_client.compute(list(xs)))

    rng = np.random.default_rng(6)
    x = rng.standard_normal((12, 5))
    y = rng.uniform(0, 1, (12, 5))
    _assert_like_numpy(
        da, F.binary_cross_entropy_with_logits, (x, y), (_chunked(da, x), _chunked(da, y)), (0, 1), compute=compute
    )
    t = rng.integers(0, 5, 12)
    t[5:8] = -100
    w = rng.uniform(0.5, 2.0, 5)
    _assert_like_numpy(
        da, F.cross_entropy, (x, t, w), (_chunked(da, x), _chunked(da, t), _chunked(da, w)), compute=compute
    )
