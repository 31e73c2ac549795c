"""The compiled elementwise kernels (_accel/kernels.py, numba), generated from
each elementwise loss's own fwd/bwd (_accel/trace.py): every such loss reruns
its own conformance cases through the kernel, with no minimum size, against
PyTorch: values, warnings and gradients."""

from __future__ import annotations

import warnings

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss import _config
from anyloss._accel import blocks as _blocks
from anyloss._accel import kernels as _kernels
from helpers import check_against_torch, loss_test_module, record_runs

pytest.importorskip("numba")
pytest.importorskip("torch")

ELEMENTWISE = sorted(name for name, spec in anyloss.losses().items() if spec.accel.elementwise)


CASES = [(name, c) for name in ELEMENTWISE for c in loss_test_module(name).CASES if "none" not in c.id]


@pytest.fixture
def kernel(monkeypatch):
    return record_runs(monkeypatch, _kernels)


def test_elementwise_losses():
    assert set(ELEMENTWISE) == {
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "gaussian_nll_loss",
        "soft_margin_loss",
        "poisson_nll_loss",
        "kl_div",
        "margin_ranking_loss",
        "hinge_embedding_loss",
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-{c.id}" for n, c in CASES])
def test_kernel_matches_torch(name, case, dtype, kernel):
    args, kwargs = case.make(np.random.default_rng(0), np.dtype(dtype))
    check_against_torch(name, args, kwargs, np_xp, grads=case.grads, tol=case.tol)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_kernel_runs_and_agrees_with_the_array_api_path(name, kernel, monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((300, 7)), rng.standard_normal((300, 7))
    x[0, :3] = [np.nan, np.inf, -np.inf]
    x[1, :3] = y[1, :3] + np.array([1.0, -1.0, 0.0])  # the kinks of smooth_l1/huber and of |d|
    fn = getattr(F, name)
    value, (gx, gy) = anyloss.value_and_grad(fn, argnums=(0, 1))(x, y, reduction="sum")
    assert kernel == [name]
    monkeypatch.setattr(_config, "compiled", False)
    monkeypatch.setattr(_blocks, "MIN_SIZE", 1 << 40)
    ref, (rx, ry) = anyloss.value_and_grad(fn, argnums=(0, 1))(x, y, reduction="sum")
    assert kernel == [name]
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(rx))
    np.testing.assert_allclose(gx, rx, rtol=1e-12, atol=0)
    np.testing.assert_allclose(gy, ry, rtol=1e-12, atol=0)
    assert np.isnan(value) and np.isnan(ref)


LAYOUTS = {
    "weight": lambda x, y, rng: ((x, y), {"weight": rng.uniform(size=x.shape)}),
    "broadcast target": lambda x, y, rng: ((x, y[0]), {}),
    "mixed dtypes": lambda x, y, rng: ((x, y.astype(np.float32)), {}),
    "fortran order": lambda x, y, rng: ((np.asfortranarray(x), y), {}),
    "float32": lambda x, y, rng: ((x.astype(np.float32), y.astype(np.float32)), {}),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_every_layout_uses_the_kernel(name, layout, kernel, monkeypatch):
    """Weights of any broadcast, broadcast targets, mixed dtypes and any memory
    order run the generated kernel too, and agree with the Array API path."""
    rng = np.random.default_rng(0)
    args, kwargs = LAYOUTS[layout](rng.standard_normal((60, 5)), rng.standard_normal((60, 5)), rng)
    fn = getattr(F, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the broadcast target's warning
        value, grads = anyloss.value_and_grad(fn, argnums=(0, 1))(*args, **kwargs)
        assert kernel == [name]
        monkeypatch.setattr(_config, "compiled", False)
        monkeypatch.setattr(_blocks, "MIN_SIZE", 1 << 40)
        ref, refs = anyloss.value_and_grad(fn, argnums=(0, 1))(*args, **kwargs)
    assert kernel == [name]
    tol = 1e-5 if value.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(value, ref, rtol=tol)
    for g, r in zip(grads, refs):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


@pytest.mark.parametrize("width", [7, 1024, 1500])
def test_a_repeated_trailing_block_over_many_stretches(width, kernel, monkeypatch):
    """A ``pos_weight`` of the trailing shape is read from its repeated block at
    each stretch's offset in it: several stretches of 1024 elements, blocks that
    divide a stretch, and blocks longer than one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000 // width + 3, width)).astype(np.float32)
    y = rng.random(x.shape, dtype=np.float32)
    pos_weight = rng.uniform(0.5, 2.0, width).astype(np.float32)
    fn = F.binary_cross_entropy_with_logits
    value, (gx, gy) = anyloss.value_and_grad(fn, argnums=(0, 1))(x, y, pos_weight=pos_weight)
    assert kernel == ["binary_cross_entropy_with_logits"]
    monkeypatch.setattr(_config, "compiled", False)
    monkeypatch.setattr(_blocks, "MIN_SIZE", 1 << 40)
    ref, (rx, ry) = anyloss.value_and_grad(fn, argnums=(0, 1))(x, y, pos_weight=pos_weight)
    np.testing.assert_allclose(value, ref, rtol=1e-5)
    np.testing.assert_allclose(gx, rx, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(gy, ry, rtol=1e-5, atol=1e-9)


def test_reduction_none_runs_as_written(kernel):
    rng = np.random.default_rng(0)
    F.mse_loss(rng.standard_normal((6, 5)), rng.standard_normal((6, 5)), reduction="none")
    assert kernel == []


def _ulps(got, want):
    """Distance in float32 ulps of the float32 ``got`` from the exact (float64) ``want``."""
    want32 = want.astype(np.float32)
    spacing = np.spacing(np.abs(want32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


def _elementwise(fn):
    """A compiled loop applying the numba function ``fn`` to each element."""
    import numba

    @numba.njit(error_model="numpy")
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = fn(x[i])
        return out

    return apply


def _every_exponent():
    """Float32 values of every exponent, both signs, 2^13 mantissas each."""
    bits = np.arange(0, 1 << 31, 1 << 10, dtype=np.uint32)
    return np.concatenate([bits.view(np.float32), -bits.view(np.float32)])


@pytest.mark.parametrize("name", ["exp", "log", "log1p"])
def test_vector_math_within_two_ulp(name):
    """Every exponent of the float32 range, both signs, 2^13 mantissas each, and the
    special values, against NumPy's float64 function (rounded once)."""
    from anyloss._accel import vmath

    apply = _elementwise(vmath.functions()[name])
    x = _every_exponent()
    x = x[np.isfinite(x)]
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x.astype(np.float64))
        got = apply(x)
        finite = np.isfinite(want) & (np.abs(want) <= np.finfo(np.float32).max)
        assert np.all(_ulps(got[finite], want[finite]) <= 2.0)
        # Beyond float32's range and outside the domain: the C library's inf, 0 and NaN.
        np.testing.assert_array_equal(got[~finite], want[~finite].astype(np.float32))
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1e-45, 88.8, -104.0], dtype=np.float32)
        np.testing.assert_array_equal(apply(special), getattr(np, name)(special.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("name", ["exp", "log"])
def test_rounded_math_is_the_float64_function_rounded_once(name):
    """vmath.rounded's float32 exp and log (the recurrences' loops) give what a
    definition's ``float32(exp(float64(x)))`` gives: every exponent of the float32
    range, both signs, 2^13 mantissas each, and the special values."""
    from anyloss._accel import vmath

    apply = _elementwise(vmath.rounded()[name])
    x = _every_exponent()
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1e-45, 88.72, 88.73, -103.9, -104.0], np.float32)
    x = np.concatenate([x, special])
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(apply(x), want)


@pytest.mark.parametrize("name", ["exp", "log"])
def test_rounded_on_an_array_is_the_float64_function_rounded_once(name):
    """kernels.rounded (ctc_loss's gradient formula): the loop of vmath's rounded
    function over a float32 array of any shape, size and layout, threads
    included; ``None`` for what it does not take (float64)."""
    x = np.concatenate([_every_exponent(), np.array([-np.inf, np.inf, np.nan, 0.0], np.float32)])
    x = np.resize(x, (2, 3 * _kernels.THREADED_SIZE // 2))[:, ::3]  # a strided view, past the threads' size
    with np.errstate(all="ignore"):
        wide = x.astype(np.float64)
        want = getattr(np, name)(wide).astype(np.float32)
    got = _kernels.rounded(name, x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert _kernels.rounded(name, wide) is None
    np.testing.assert_array_equal(_kernels.rounded(name, x[:, :10]), want[:, :10])


def test_a_schedule_of_numbers_compiles_twice(kernel, monkeypatch):
    """The first value of ``beta`` is a constant of its kernel; from the second on,
    one kernel takes it as a parameter: two compilations for four values, each
    value PyTorch's."""
    import torch

    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((300, 7)), rng.standard_normal((300, 7))
    monkeypatch.setattr(_kernels, "_KERNELS", {})
    monkeypatch.setattr(_kernels, "_SEEN", {})
    for beta in (0.5, 0.7, 0.9, 1.1):
        value, grad = anyloss.value_and_grad(F.smooth_l1_loss)(x, y, beta=beta)
        xt = torch.tensor(x, requires_grad=True)
        ref = torch.nn.functional.smooth_l1_loss(xt, torch.tensor(y), beta=beta)
        ref.backward()
        torch.testing.assert_close(torch.tensor(np.asarray(value)), ref.detach())
        torch.testing.assert_close(torch.tensor(grad), xt.grad)
    assert kernel == ["smooth_l1_loss"] * 4
    assert len(_kernels._KERNELS) == 2


@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy_with_logits"])
def test_threaded_kernel_agrees_with_the_array_api_path(name, kernel, monkeypatch):
    """A call large enough to be split over threads (the default configuration)."""
    rng = np.random.default_rng(6)
    shape = (1 << 10, (_kernels.THREADED_SIZE >> 10) + 3)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.uniform(size=shape).astype(np.float32)
    fn = getattr(F, name)
    value, (gx, gy) = anyloss.value_and_grad(fn, argnums=(0, 1))(x, y)
    assert kernel == [name]
    monkeypatch.setattr(_config, "compiled", False)
    ref, (rx, ry) = anyloss.value_and_grad(fn, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(value, ref, rtol=1e-5)
    np.testing.assert_allclose(gx, rx, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(gy, ry, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize(
    "name,make",
    [
        ("binary_cross_entropy_with_logits", lambda rng: (rng.standard_normal(5000), rng.uniform(size=5000))),
        ("cross_entropy", lambda rng: (rng.standard_normal((64, 300)) * 4, rng.integers(0, 300, 64))),
    ],
)
def test_float32_sum_buffers_give_the_double_buffers_bits(name, make, monkeypatch):
    """kernels.sum_buffer keeps a float32 loop's sum buffer in float32 where the
    loop calls vmath's functions (bce_with_logits' elementwise kernel,
    cross_entropy's rows); the sum widens each element as it adds it: the same
    bits as buffering doubles."""
    from anyloss._accel import rows as _rows

    x, y = make(np.random.default_rng(3))
    x = x.astype(np.float32)
    y = y.astype(np.float32) if y.dtype.kind == "f" else y
    for module in (_kernels, _rows):
        monkeypatch.setattr(module, "MIN_SIZE", 0)
    monkeypatch.setattr(_kernels, "_KERNELS", {})
    assert _kernels.sum_buffer(_probe_body(), np.float32) == "float32"
    fn = anyloss.value_and_grad(getattr(F, name), argnums=0)
    value, grad = fn(x, y, reduction="sum")
    monkeypatch.setattr(_kernels, "_KERNELS", {})
    monkeypatch.setattr(_kernels, "sum_buffer", lambda body, dtype: "float64")
    wide, wide_grad = fn(x, y, reduction="sum")
    assert value.dtype == np.float32 and value.tobytes() == wide.tobytes()
    np.testing.assert_array_equal(grad, wide_grad)


def _probe_body():
    from anyloss._accel import trace

    return trace.Body([("t0", "FN_exp(a0)")], ["a0"], [], ["t0"], [np.dtype(np.float32)])


@pytest.mark.parametrize("var_shape", [(6,), (6, 1), (1, 6), (6, 6)])
def test_gaussian_nll_var_broadcasts_by_pytorchs_rule_in_the_kernel(var_shape, kernel):
    """gaussian_nll_loss's var of input's shape without its last dimension is one
    variance per row (PyTorch's unsqueeze(-1)), not NumPy's broadcast along the
    last axis: on a square input the kernel broadcasts it as a column
    (``Hints.views``), and gives its gradient in var's own shape."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 6, 6)).astype(np.float32)
    var = rng.uniform(0.5, 1.5, var_shape).astype(np.float32)
    for reduction in ("mean", "sum"):
        check_against_torch("gaussian_nll_loss", (x, y, var), {"reduction": reduction}, np_xp)
    assert kernel == ["gaussian_nll_loss"] * 2
