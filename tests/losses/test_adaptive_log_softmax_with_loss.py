"""anyloss.AdaptiveLogSoftmaxWithLoss against torch.nn.AdaptiveLogSoftmaxWithLoss.

A torch module's state_dict is loaded into ours; then forward (output and
loss), log_prob, predict and the gradients of the loss with respect to the
input and every parameter (torch.autograd on the module) must agree.
"""

import warnings

import array_api_compat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anyloss
from helpers import (
    HYPOTHESIS_BACKENDS,
    assert_caught_as_torchs,
    assert_close,
    backend_of,
    hypothesis_namespace,
    no_compute,
    re_arg,
    to_numpy,
)

torch = pytest.importorskip("torch")

Ours = anyloss.AdaptiveLogSoftmaxWithLoss

# (in_features, n_classes, cutoffs, div_value, head_bias)
CONFIGS = {
    "two-clusters": (8, 10, [3, 6], 4.0, False),
    "two-clusters-bias": (8, 10, [3, 6], 4.0, True),
    "three-clusters-div2": (16, 20, [2, 5, 12], 2.0, True),
    "one-cluster-div1": (6, 5, [4], 1.0, False),
    "empty-hidden": (8, 12, [1, 4, 8], 4.0, True),  # hidden sizes 2, 0, 0
    "last-cutoff": (5, 7, [6], 4.0, False),  # the last cluster holds one class
    "no-features": (0, 6, [2], 4.0, True),  # PyTorch allows in_features = 0: the bias alone decides
}
# (batch, how targets are drawn)
BATCHES = {
    "N7": 7,
    "N1": 1,
    "N0": 0,
    "unbatched": None,
}


def _torch_module(cfg, dtype, seed=0):
    in_features, n_classes, cutoffs, div_value, head_bias = cfg
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
        m = torch.nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value, head_bias)
    return m.to(getattr(torch, dtype))


def _ours(cfg, xp, dtype, module=None):
    in_features, n_classes, cutoffs, div_value, head_bias = cfg
    ours = Ours(in_features, n_classes, cutoffs, div_value, head_bias, dtype=getattr(xp, dtype), xp=xp, seed=1)
    if module is not None:
        ours.load_state_dict(module.state_dict())
    return ours


def _inputs(rng, cfg, batch, dtype, targets=None):
    in_features, n_classes = cfg[0], cfg[1]
    shape = (in_features,) if batch is None else (batch, in_features)
    x = rng.uniform(-2.0, 2.0, size=shape).astype(dtype)
    if targets is None:
        t = rng.integers(0, n_classes, size=() if batch is None else (batch,))
    else:
        t = np.asarray(targets, dtype=np.int64)
    return x, t


def _torch_grads(module, x, t):
    """torch's output, loss, and d loss / d (input, every parameter), zeros where unused."""
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    out, loss = module(tx, torch.from_numpy(np.asarray(t)))
    named = dict(module.named_parameters())
    grads = torch.autograd.grad(loss, [tx, *named.values()], allow_unused=True)
    ref = {
        name: torch.zeros_like(p) if g is None else g for (name, p), g in zip([("input", tx), *named.items()], grads)
    }
    return out.detach(), loss.detach(), ref


def _check_all(cfg, xp, dtype, x, t, module, tol=None):
    tol = tol or {}
    ours = _ours(cfg, xp, dtype, module)
    t_out, t_loss, t_grads = _torch_grads(module, x, t)
    X, T = xp.asarray(x), xp.asarray(t)

    res = ours(X, T)
    assert type(res).__name__ == "_ASMoutput" and res._fields == ("output", "loss")
    out, loss = res
    assert array_api_compat.array_namespace(out) is array_api_compat.array_namespace(X)
    assert_close(out, t_out, "output", **tol)
    assert_close(loss, t_loss, "loss", **tol)

    value, grads = ours.value_and_grad(X, T)
    assert_close(value, t_loss, "value_and_grad value", **tol)
    assert list(grads) == list(t_grads), "gradient names differ from torch's (input, then named_parameters)"
    for name, g in grads.items():
        assert array_api_compat.array_namespace(g) is array_api_compat.array_namespace(X)
        assert_close(g, t_grads[name], f"gradient of `{name}`", **tol)

    if x.ndim == 2:
        tx = torch.from_numpy(x.copy())
        with torch.no_grad():
            assert_close(ours.log_prob(X), module.log_prob(tx), "log_prob", **tol)
            assert_close(ours.predict(X), module.predict(tx), "predict")


@pytest.mark.parametrize("batch", list(BATCHES.values()), ids=list(BATCHES))
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_torch(cfg, batch, xp, dtype):
    rng = np.random.default_rng(0)
    x, t = _inputs(rng, cfg, batch, dtype)
    _check_all(cfg, xp, dtype, x, t, _torch_module(cfg, dtype))


TARGETS = {
    "head-only": [0, 1, 2, 0, 2],  # no cluster evaluated: zero tail gradients (torch: unused)
    "one-per-cluster": [0, 3, 6],
    "last-cluster-only": [9, 9, 8, 6],
    "every-class": list(range(10)),
    "repeated": [4, 4, 4, 4],
}


@pytest.mark.parametrize("targets", list(TARGETS.values()), ids=list(TARGETS))
@pytest.mark.parametrize("head_bias", [False, True])
def test_targets_matter(targets, head_bias, xp, dtype):
    cfg = (8, 10, [3, 6], 4.0, head_bias)
    rng = np.random.default_rng(1)
    x, t = _inputs(rng, cfg, len(targets), dtype, targets)
    _check_all(cfg, xp, dtype, x, t, _torch_module(cfg, dtype))


@pytest.mark.parametrize("target_dtype", ["int32", "int64", "int16", "uint8"])
def test_integer_target_dtypes(target_dtype, xp):
    # torch's gather only takes int32/int64 indices; any integer dtype means the same classes here.
    cfg = CONFIGS["two-clusters-bias"]
    rng = np.random.default_rng(2)
    x, t = _inputs(rng, cfg, 6, "float64")
    module = _torch_module(cfg, "float64")
    ours = _ours(cfg, xp, "float64", module)
    out, loss = ours(xp.asarray(x), xp.asarray(t.astype(target_dtype)))
    t_out, t_loss, _ = _torch_grads(module, x, t)
    assert_close(out, t_out, "output")
    assert_close(loss, t_loss, "loss")


@pytest.mark.parametrize("bias_shift", [-20.0, 20.0, 0.0], ids=["all-shortlist", "all-clusters", "mixed"])
def test_predict_branches(bias_shift, xp, dtype):
    # PyTorch's predict has three branches: every head argmax in the shortlist,
    # none in it, some; push the cluster columns' bias to reach each.
    cfg = (8, 10, [3, 6], 4.0, True)
    module = _torch_module(cfg, dtype)
    with torch.no_grad():
        module.head.bias[3:] += bias_shift
        if bias_shift == 0.0:
            module.head.weight.mul_(8.0)
    rng = np.random.default_rng(3)
    x, _ = _inputs(rng, cfg, 16, dtype)
    tx = torch.from_numpy(x)
    with torch.no_grad():
        expected = module.predict(tx)
        beyond = torch.argmax(module.head(tx), dim=1) >= 3
    if bias_shift == 0.0:
        assert beyond.any() and not beyond.all()
    ours = _ours(cfg, xp, dtype, module)
    assert_close(ours.predict(xp.asarray(x)), expected, "predict")


def test_empty_batch_gives_nan_loss(xp):
    cfg = CONFIGS["two-clusters"]
    module = _torch_module(cfg, "float64")
    ours = _ours(cfg, xp, "float64", module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy "mean of empty slice"
        out, loss = ours(xp.zeros((0, 8), dtype=xp.float64), xp.zeros((0,), dtype=xp.int64))
    assert out.shape == (0,) and np.isnan(to_numpy(loss))


# --------------------------------------------------------------------------- surface and parameters


def _params(fn):
    import inspect

    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_like_torch():
    """torch's constructor, plus the keyword-only `xp` and `seed`; torch's forward, log_prob, predict."""
    import inspect

    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss
    ours = _params(Ours.__init__)
    assert ours[:-2] == _params(theirs.__init__)
    assert ours[-2:] == [("xp", inspect.Parameter.KEYWORD_ONLY, None), ("seed", inspect.Parameter.KEYWORD_ONLY, None)]
    for method in ("forward", "log_prob", "predict"):
        assert _params(getattr(Ours, method)) == _params(getattr(theirs, method)), method


def test_parameters_like_torch():
    for cfg in CONFIGS.values():
        module = _torch_module(cfg, "float32")
        ours = Ours(*cfg, seed=0)
        names = [(n, tuple(p.shape)) for n, p in module.named_parameters()]
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters().items()] == names
        assert list(ours.state_dict()) == list(module.state_dict())
        for n, p in ours.named_parameters().items():
            assert p.dtype == np.float32
            fan_in = p.shape[1] if p.ndim == 2 else cfg[0]
            # nn.Linear's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); a bias of fan_in 0 is 0.
            bound = 1.0 / np.sqrt(fan_in) if fan_in else 0.0
            assert np.all(np.abs(p) <= bound), n
        assert ours.shortlist_size == module.shortlist_size
        assert ours.n_clusters == module.n_clusters and ours.head_size == module.head_size
        assert ours.cutoffs == module.cutoffs
        # PyTorch's attribute paths reach the same arrays.
        assert ours.head.weight is ours.named_parameters()["head.weight"]
        assert ours.tail[0][1].weight.shape == tuple(module.tail[0][1].weight.shape)


def test_reset_parameters():
    ours = Ours(8, 10, [3, 6], head_bias=True, seed=0)
    before = {n: np.array(p) for n, p in ours.named_parameters().items()}
    ours.reset_parameters()
    assert list(ours.named_parameters()) == list(before)
    for n, p in ours.named_parameters().items():
        assert p.shape == before[n].shape
        assert p.size == 0 or not np.array_equal(p, before[n]), n  # tail.1 is (0, 8) and (4, 0) here


def test_init_is_seeded_and_in_xp(xp, dtype):
    a = Ours(16, 20, [4, 10], head_bias=True, dtype=getattr(xp, dtype), xp=xp, seed=7)
    b = Ours(16, 20, [4, 10], head_bias=True, dtype=getattr(xp, dtype), xp=xp, seed=7)
    c = Ours(16, 20, [4, 10], head_bias=True, dtype=getattr(xp, dtype), xp=xp, seed=8)
    named = [m.named_parameters().items() for m in (a, b, c)]
    for (n, p), (_, q), (_, r) in zip(*named):
        assert array_api_compat.array_namespace(p) is xp and p.dtype == getattr(xp, dtype)
        np.testing.assert_array_equal(to_numpy(p), to_numpy(q))
        assert not np.array_equal(to_numpy(p), to_numpy(r)), n
    # The Linear bound: weights spread over +-1/sqrt(16), not beyond.
    w = to_numpy(a.state_dict()["head.weight"])
    assert 0.2 < np.abs(w).max() <= 0.25


def test_load_state_dict_strict():
    module = _torch_module(CONFIGS["two-clusters-bias"], "float32")
    ours = Ours(8, 10, [3, 6], head_bias=True)
    sd = dict(module.state_dict())
    sd.pop("tail.1.0.weight")
    with pytest.raises((KeyError, ValueError), match="tail.1.0.weight"):
        ours.load_state_dict(sd)
    sd = dict(module.state_dict())
    sd["head.weight"] = sd["head.weight"][:, :4]
    with pytest.raises(ValueError, match="head.weight"):
        ours.load_state_dict(sd)


# --------------------------------------------------------------------------- bad input

CTOR_ERRORS = {
    "empty-cutoffs": (dict(cutoffs=[]), ValueError, "cutoffs"),
    "repeated": (dict(cutoffs=[3, 3]), ValueError, "cutoffs"),
    "unsorted": (dict(cutoffs=[6, 3]), ValueError, "cutoffs"),
    "zero": (dict(cutoffs=[0, 3]), ValueError, "cutoffs"),
    "too-large": (dict(cutoffs=[3, 10]), ValueError, "cutoffs"),
    "fraction": (dict(cutoffs=[3.5]), ValueError, "cutoffs"),
    "float-int": (dict(cutoffs=[3.0]), TypeError, "cutoffs"),
    "n_classes-1": (dict(n_classes=1, cutoffs=[1]), ValueError, "cutoffs"),
    "div-zero": (dict(div_value=0.0), ValueError, "div_value"),
    "div-negative": (dict(div_value=-2.0), ValueError, "div_value"),
    "in-features-float": (dict(in_features=8.0), TypeError, "in_features"),
    "n_classes-float": (dict(n_classes=10.0), TypeError, "n_classes"),
}


@pytest.mark.parametrize("kwargs,exc,arg", list(CTOR_ERRORS.values()), ids=list(CTOR_ERRORS))
def test_constructor_errors(kwargs, exc, arg):
    full = dict(in_features=8, n_classes=10, cutoffs=[3, 6], **{}) | kwargs
    with pytest.raises(exc, match=re_arg(arg)) as raised:
        Ours(**full)
    with warnings.catch_warnings(), pytest.raises(Exception) as torch_raised:
        warnings.simplefilter("ignore")
        torch.nn.AdaptiveLogSoftmaxWithLoss(**full)
    assert_caught_as_torchs(raised.value, torch_raised.value)


def _bad_calls():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 8))
    t = np.array([0, 4, 7, 9])
    return {
        "target-too-large": ("forward", (x, np.array([0, 4, 7, 10])), ValueError, "target"),
        "target-negative": ("forward", (x, np.array([0, -1, 7, 9])), ValueError, "target"),
        "target-float": ("forward", (x, t.astype(np.float64)), TypeError, "target"),
        "target-bool": ("forward", (x, t > 3), TypeError, "target"),
        "target-2d": ("forward", (x, t[:, None]), ValueError, "target"),
        "batch-mismatch": ("forward", (x, t[:3]), ValueError, "target"),
        "input-3d": ("forward", (x[:, None, :], t), ValueError, "input"),
        "input-2d-target-0d": ("forward", (x, t[0]), ValueError, "input"),
        "features": ("forward", (x[:, :7], t), ValueError, "input"),
        "input-dtype": ("forward", (x.astype(np.float32), t), TypeError, "input"),
        "input-int": ("forward", (t[:, None] * np.ones((1, 8), dtype=np.int64), t), TypeError, "input"),
        "log_prob-1d": ("log_prob", (x[0],), ValueError, "input"),
        "predict-1d": ("predict", (x[0],), ValueError, "input"),
        "log_prob-features": ("log_prob", (x[:, :5],), ValueError, "input"),
    }


BAD_CALLS = _bad_calls()


# The class-range checks read values: on Dask they are skipped, and the call stays lazy.
NEEDS_VALUES = {"target-too-large", "target-negative"}


@pytest.mark.parametrize("call", list(BAD_CALLS))
def test_call_errors(call, xp):
    method, args, exc, arg = BAD_CALLS[call]
    cfg = CONFIGS["two-clusters"]
    module = _torch_module(cfg, "float64")
    ours = _ours(cfg, xp, "float64", module)
    if call in NEEDS_VALUES and backend_of(xp) == "dask":
        with no_compute(xp):
            getattr(ours, method)(*(xp.asarray(a) for a in args))
        return
    with pytest.raises(exc, match=re_arg(arg)) as raised:
        getattr(ours, method)(*(xp.asarray(a) for a in args))
    if method == "forward":
        with pytest.raises(exc, match=re_arg(arg)):
            ours.value_and_grad(*(xp.asarray(a) for a in args))
    with pytest.raises(Exception) as torch_raised:
        getattr(module, method)(*(torch.from_numpy(np.asarray(a)) for a in args))
    assert_caught_as_torchs(raised.value, torch_raised.value)


def test_mixed_libraries():
    ours = Ours(8, 10, [3, 6], dtype="float64")
    with pytest.raises(TypeError, match=re_arg("input")):
        ours(torch.zeros(2, 8, dtype=torch.float64), np.array([1, 2]))


# --------------------------------------------------------------------------- backends with autodiff


def test_torch_backward():
    """With xp = PyTorch and parameters that require grad, loss.backward() fills
    .grad through the shared torch bridge, as torch's own module does."""
    from array_api_compat import torch as txp

    cfg = CONFIGS["three-clusters-div2"]
    module = _torch_module(cfg, "float64")
    ours = _ours(cfg, txp, "float64", module)
    for _, p in ours.named_parameters().items():
        p.requires_grad_(True)
    rng = np.random.default_rng(4)
    x, t = _inputs(rng, cfg, 9, "float64")
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    out, loss = ours(tx, torch.from_numpy(t))
    (out.sum() + loss).backward()
    t_x = torch.from_numpy(x.copy()).requires_grad_(True)
    t_out, t_loss = module(t_x, torch.from_numpy(t))
    (t_out.sum() + t_loss).backward()
    torch.testing.assert_close(out.detach(), t_out.detach())
    torch.testing.assert_close(tx.grad, t_x.grad)
    for (name, p), (_, q) in zip(ours.named_parameters().items(), module.named_parameters()):
        torch.testing.assert_close(p.grad, torch.zeros_like(p) if q.grad is None else q.grad, msg=name)


def test_jax_grad_and_jit():
    """JAX arrays are lazy: every cluster runs on every row, masked; jax.grad
    and jax.jit go through the shared custom_vjp with the analytic gradient."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    cfg = CONFIGS["three-clusters-div2"]
    module = _torch_module(cfg, "float64")
    ours = _ours(cfg, jnp, "float64", module)
    rng = np.random.default_rng(5)
    x, t = _inputs(rng, cfg, 9, "float64")
    t_out, t_loss, t_grads = _torch_grads(module, x, t)
    jx, jt = jnp.asarray(x), jnp.asarray(t)
    # Jitted throughout: eager JAX would compile every operation on its own (slow).
    value, gx = jax.jit(jax.value_and_grad(lambda a, b: ours(a, b).loss))(jx, jt)
    assert_close(value, t_loss, "jax loss")
    assert_close(gx, t_grads["input"], "jax input gradient")
    assert_close(jax.jit(lambda a, b: ours(a, b).output)(jx, jt), t_out, "jitted output")
    value, grads = jax.jit(ours.value_and_grad)(jx, jt)
    for name, g in grads.items():
        assert_close(g, t_grads[name], f"jax gradient of `{name}`")
    with torch.no_grad():
        expected = module.predict(torch.from_numpy(x))
    assert_close(jax.jit(ours.predict)(jx), expected, "jax predict")


# --------------------------------------------------------------------------- random configurations


@st.composite
def _configs(draw):
    n_classes = draw(st.integers(2, 14))
    k = draw(st.integers(1, min(3, n_classes - 1)))
    cutoffs = sorted(draw(st.lists(st.integers(1, n_classes - 1), min_size=k, max_size=k, unique=True)))
    in_features = draw(st.integers(0, 9))
    div_value = draw(st.sampled_from([1.0, 1.5, 2.0, 4.0]))
    return (in_features, n_classes, cutoffs, div_value, draw(st.booleans()))


@settings(max_examples=15, deadline=None)
@given(
    cfg=_configs(),
    batch=st.sampled_from([None, 0, 1, 3, 12]),
    scale=st.sampled_from([1.0, 30.0]),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
@HYPOTHESIS_BACKENDS
def test_random_configurations(hxp, cfg, batch, scale, dtype, seed):
    xp = hypothesis_namespace(hxp)

    rng = np.random.default_rng(seed)
    x, t = _inputs(rng, cfg, batch, dtype)
    x = (x * scale).astype(dtype)  # large logits: the log-softmax shift matters
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" and scale > 1 else None
    _check_all(cfg, xp, dtype, x, t, _torch_module(cfg, dtype, seed=seed % 100), tol=tol)
