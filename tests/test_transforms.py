"""Every loss of ``torch.nn.functional``'s catalogue under the frameworks'
program transformations, against PyTorch's own numbers.

PyTorch, on both paths (fixture ``path``): ``native`` (the default: anyloss's
checks, then ``torch.nn.functional``) and ``own`` (anyloss's Array API code,
``anyloss.configure(native=False)``):

* ``torch.compile(fullgraph=True)`` of the loss, then ``.backward()``;
* ``torch.func``: ``grad``, ``vmap`` (per-sample values and gradients),
  ``jacrev``, ``jvp``, ``hessian``; ``torch.autograd.grad(is_grads_batched=True)``
  and ``torch.autograd.forward_ad``;
* the ``meta`` device;
* hyperparameters as 0-d tensors, where PyTorch takes them.

JAX: ``jax.jit``, ``jax.grad``, ``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``,
``jax.checkpoint`` and ``jax.lax.scan``; hyperparameters as traced arrays
(values, and ``jax.grad`` with respect to them); NumPy and JAX (or PyTorch) arrays mixed in
one call; and (integration) batch-sharded inputs over 8 host devices.

The cases are every loss's worked example (``spec.example``), plus
``cross_entropy`` with probability targets and with ``label_smoothing``
(tests/_transform_cases.py). Each test's reference is
``torch.nn.functional``'s loss under the same transformation. Where PyTorch's
own loss cannot go through it (found by running it, never listed by hand), the
reference is the eager equivalent computed with ``torch.autograd`` (a Jacobian
row by row, a loop for ``vmap``, central differences of the gradient for a
Hessian), and a failure of anyloss there is an expected failure naming
PyTorch's own error: anyloss is not asked to do what PyTorch cannot. Under
``torch.compile`` anyloss is asked anyway: it compiles every loss.

What that detection finds in torch 2.13 on the CPU, on these examples (a
record, not an input to the tests):

* torch.compile(fullgraph=True, backend="aot_eager") of torch.nn.functional's
  own loss: ``gaussian_nll_loss`` does not compile (a data-dependent guard on
  ``var``), nor ``ctc_loss`` ("Dynamic shape operator"); ``multilabel_margin_loss``
  compiles to another value than its eager one (2.05 for 0.85: the AOT
  decomposition ignores the -1 that ends a target's labels).
* torch.func: no forward-mode AD (jvp, forward_ad, hessian) for
  ``multi_margin_loss``, ``multilabel_margin_loss``, ``ctc_loss``, nor for the
  second derivative of ``soft_margin_loss`` (hessian); ``gaussian_nll_loss``
  cannot be vmapped (data-dependent check of ``var``).
* meta device: no meta kernel for ``ctc_loss``; ``gaussian_nll_loss`` reads
  ``var``'s values (``.item()``).
* 0-d tensor hyperparameters: only ``gaussian_nll_loss``'s ``eps`` and
  ``triplet_margin_with_distance_loss``'s ``margin`` (the others take a float).

Two references to keep in mind when reading a failure:

* The Hessian of ``smooth_l1_loss`` and ``huber_loss`` is taken at the worked
  example, where ``|input - target|`` equals beta/delta: a kink, where the
  reference is torch.func.hessian's choice (PyTorch's double backward chooses
  otherwise for huber_loss).
* PyTorch's CTC gradient is exp(log_probs) - (the true derivative), exact only
  on the tangent space of normalized log-probabilities; with no forward mode in
  PyTorch, the jvp reference is its reverse-mode Jacobian times the tangent, so
  a forward mode that gives the true derivative differs from it.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import anyloss

torch = pytest.importorskip("torch")

from _transform_cases import (  # noqa: E402
    BY_ID,
    CASES,
    SPECS,
    central_difference,
    eager,
    eager_hessian,
    eager_jacobian,
    eager_jvp,
    hyperparam_names,
    hyperparam_value,
    quiet,
    stacked,
    tangents,
    tensors,
    with_diff,
)

integration = pytest.mark.integration  # registered in tests/conftest.py

cases = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
# Dynamo says so each time it traces through a functools.lru_cache (array_api_compat's
# type tests, anyloss's optional-kernel probe): noise for these tests.
dynamo_quiet = pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
BASE_CASES = [c for c in CASES if c.id == c.name]  # one per loss


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def close(actual, expected, what, **tol):
    """``actual`` (a tensor, a JAX or NumPy array) equals the tensor ``expected``."""
    assert actual is not None, f"{what}: got None"
    if not isinstance(actual, torch.Tensor):
        actual = torch.from_numpy(np.array(actual, copy=True))
    actual = actual.detach()
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(actual.shape)} != torch's {tuple(expected.shape)}"
    )
    torch.testing.assert_close(actual, expected.detach(), msg=lambda m: f"{what}: {m}", **tol)


def close_all(actual, expected, what, **tol):
    actual, expected = tuple(actual), tuple(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} results, torch's {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected)):
        close(a, e, f"{what} [{k}]", **tol)


@pytest.fixture(params=["native", "own"])
def path(request):
    """The PyTorch path: ``native`` hands the call to torch.nn.functional after
    anyloss's checks; ``own`` runs anyloss's Array API code."""
    with anyloss.configure(native=request.param == "native"):
        yield request.param


# The worked examples of smooth_l1_loss and huber_loss sit exactly on their kink
# |x - y| = beta (delta). There the second derivative is a convention: PyTorch's
# own two paths disagree (huber's double backward gives 0, torch.func.hessian
# 0.25), and anyloss's backward differentiated by the framework gives a third.
DECLARED_LIMITS = {
    ("own", "smooth_l1_loss", "hessian"),
    ("jax", "smooth_l1_loss", "hessian"),
    ("jax", "huber_loss", "hessian"),
}


# is_grads_batched runs backward under PyTorch's legacy vmap, which has no batching
# rule for the slice of the cotangent that linear_cross_entropy takes per chunk of
# rows (aten::alias); torch.func.vmap and jacrev of the same backward work.
DECLARED_LIMITS.add(("own", "linear_cross_entropy", "grads_batched"))


def declared_limit(key):
    if key in DECLARED_LIMITS:
        pytest.xfail(reason="a declared limit (see DECLARED_LIMITS)")


def of_differentiated(case, fn, arrays):
    """``(argnums, primals, f, f_none)``: the loss as a function of the
    differentiated arrays only, with the example's reduction and with 'none'."""

    def f(*d, reduction=None):
        over = {} if reduction is None else {"reduction": reduction}
        return case.call(fn, with_diff(case, arrays, d), **over)

    primals = tuple(arrays[i] for i in case.diff)
    return tuple(range(len(case.diff))), primals, f, functools.partial(f, reduction="none")


def run_or_excuse(run, torch_error, what):
    """``run()``; if it fails where PyTorch's own loss failed too
    (``torch_error``), an expected failure naming PyTorch's error."""
    try:
        return run()
    except Exception as e:
        if torch_error is not None:
            pytest.xfail(f"torch.nn.functional itself fails {what}: {torch_error} (anyloss: {first_line(e)})")
        raise


# ============================================================================ torch.compile


def compiled_value_and_grads(case, fn, backend="aot_eager"):
    """``torch.compile(fullgraph=True)`` of a function calling ``fn``; the value
    and, after ``.backward()``, the gradients of the differentiated arrays."""

    def loss(*arrays):
        return case.call(fn, arrays)

    compiled = torch.compile(loss, fullgraph=True, backend=backend)
    ts = tensors(case, requires_grad=True)
    out = compiled(*ts)
    out.backward()
    return out.detach(), [ts[i].grad for i in case.diff]


# PyTorch's own gaussian_nll_loss and ctc_loss do not compile fullgraph and its
# multilabel_margin_loss compiles to a wrong value (the module's docstring); anyloss
# compiles every loss, those included, on both paths (its own code stands in where
# PyTorch's does not trace), so a failure here is a failure, whatever PyTorch does.
@dynamo_quiet
@cases
def test_compile(case, path):
    """torch.compile(fullgraph=True, backend="aot_eager"): no graph break;
    value and gradients equal torch.nn.functional's eager ones."""
    t_value, t_grads = eager(case.id)
    torch._dynamo.reset()
    try:
        value, grads = compiled_value_and_grads(case, case.anyloss_fn)
    finally:
        torch._dynamo.reset()
    close(value, t_value, f"{case.id} compiled value")
    close_all(grads, t_grads, f"{case.id} compiled gradients")


@integration
@dynamo_quiet
@pytest.mark.parametrize("case_id", ["mse_loss", "cross_entropy", "ctc_loss"])
def test_compile_inductor(case_id, path):
    """The default backend (inductor, C++ on the CPU) on three losses."""
    case = BY_ID[case_id]
    t_value, t_grads = eager(case_id)
    torch._dynamo.reset()
    try:
        value, grads = compiled_value_and_grads(case, case.anyloss_fn, "inductor")
    finally:
        torch._dynamo.reset()
    close(value, t_value, f"{case.id} inductor value")
    close_all(grads, t_grads, f"{case.id} inductor gradients")


# ============================================================================ torch.func and friends

TORCH_TRANSFORMS = ["grad", "vmap", "jacrev", "jvp", "hessian", "grads_batched", "forward_ad"]
BATCHED_COTANGENTS = 3


def batched_cotangents(shape):
    rng = np.random.default_rng(2)
    return torch.from_numpy(rng.standard_normal((BATCHED_COTANGENTS, *shape)))


def run_transform(case, fn, transform):
    """``fn`` (torch.nn.functional's loss or anyloss's) under ``transform``, as
    a tuple of tensors. Differentiated: the float arrays PyTorch
    differentiates (``case.diff``); the others are constants."""
    ts = tensors(case)
    argnums, primals, f, f_none = of_differentiated(case, fn, ts)
    if transform == "grad":
        return tuple(torch.func.grad(f, argnums=argnums)(*primals))
    if transform == "vmap":  # per-sample values and gradients, the example's reduction inside
        batch = [torch.from_numpy(a) for a in stacked(case)]

        def value(*arrays):
            return case.call(fn, arrays)

        def grads(*arrays):
            def g(*d):
                return case.call(fn, with_diff(case, arrays, d))

            return torch.func.grad(g, argnums=argnums)(*(arrays[i] for i in case.diff))

        return (torch.func.vmap(value)(*batch), *torch.func.vmap(grads)(*batch))
    if transform == "jacrev":
        return tuple(torch.func.jacrev(f_none, argnums=argnums)(*primals))
    if transform == "jvp":
        return tuple(torch.func.jvp(f_none, primals, tuple(tangents(case))))
    if transform == "hessian":

        def f_first(x):
            full = list(ts)
            full[case.first] = x
            return case.call(fn, full)

        return (torch.func.hessian(f_first)(ts[case.first]),)
    if transform == "grads_batched":
        ts = tensors(case, requires_grad=True)
        out = case.call(fn, ts, reduction="none")
        return tuple(
            torch.autograd.grad(out, [ts[i] for i in case.diff], batched_cotangents(out.shape), is_grads_batched=True)
        )
    if transform == "forward_ad":
        import torch.autograd.forward_ad as fwAD

        with fwAD.dual_level():
            full = list(ts)
            for i, t in zip(case.diff, tangents(case)):
                full[i] = fwAD.make_dual(ts[i], t)
            primal, tangent = fwAD.unpack_dual(case.call(fn, full, reduction="none"))
        return (primal, tangent)
    raise ValueError(transform)


def eager_equivalent(case, transform):
    """What ``transform`` of torch.nn.functional's loss gives, computed eagerly
    with torch.autograd."""
    if transform == "grad":
        return eager(case.id)[1]
    if transform == "vmap":
        values, grads = [], []
        for _k, arrays in enumerate(zip(*stacked(case))):
            ts = [torch.from_numpy(np.array(a, copy=True)) for a in arrays]
            for i in case.diff:
                ts[i].requires_grad_(True)
            out = quiet(case.call)(case.torch_fn, ts)
            values.append(out.detach())
            grads.append(torch.autograd.grad(out, [ts[i] for i in case.diff]))
        return (torch.stack(values), *(torch.stack(g) for g in zip(*grads)))
    if transform == "jacrev":
        return eager_jacobian(case.id)[1]
    if transform in ("jvp", "forward_ad"):
        return eager_jvp(case.id, tangents(case))
    if transform == "hessian":
        return (eager_hessian(case.id),)
    if transform == "grads_batched":
        out, jacs = eager_jacobian(case.id)
        cts = batched_cotangents(out.shape)
        return tuple(
            torch.stack([torch.tensordot(ct, j, dims=out.ndim) if out.ndim else ct * j for ct in cts]) for j in jacs
        )
    raise ValueError(transform)


@functools.cache
def torch_transform_reference(case_id, transform):
    """(reference, error): torch.nn.functional's loss under ``transform`` and
    None; where that fails, the eager equivalent and PyTorch's error."""
    case = BY_ID[case_id]
    try:
        return quiet(run_transform)(case, case.torch_fn, transform), None
    except Exception as e:
        return eager_equivalent(case, transform), first_line(e)


@pytest.mark.parametrize("transform", TORCH_TRANSFORMS)
@cases
def test_torch_func(case, transform, path):
    """torch.func.grad / vmap / jacrev / jvp / hessian,
    torch.autograd.grad(is_grads_batched=True) and forward-mode AD of anyloss's
    loss equal the same transformation of torch.nn.functional's."""
    ref, torch_error = torch_transform_reference(case.id, transform)
    if (path, case.id, transform) in DECLARED_LIMITS:
        with pytest.raises((AssertionError, RuntimeError)):  # strict: fails until the limit is lifted
            close_all(quiet(run_transform)(case, case.anyloss_fn, transform), ref, case.id)
        declared_limit((path, case.id, transform))
    got = run_or_excuse(
        lambda: quiet(run_transform)(case, case.anyloss_fn, transform), torch_error, f"under {transform}"
    )
    close_all(got, ref, f"{case.id} under {transform}")


# ============================================================================ meta device


@cases
def test_meta(case, path):
    """On meta tensors the loss is a meta tensor of torch.nn.functional's shape
    and dtype: the example's reduction with the differentiated arrays
    requiring grad, and reduction='none' without."""
    for reduction, grad in ((None, True), ("none", False)):
        over = {} if reduction is None else {"reduction": reduction}
        try:
            t_out = quiet(case.call)(case.torch_fn, tensors(case, grad, device="meta"), **over)
            torch_error = None
        except Exception as e:  # PyTorch's own loss has no meta kernel: its CPU result's shape and dtype
            t_out, torch_error = quiet(case.call)(case.torch_fn, tensors(case), **over), first_line(e)
        out = run_or_excuse(
            lambda: quiet(case.call)(case.anyloss_fn, tensors(case, grad, device="meta"), **over),  # noqa: B023
            torch_error,
            "on the meta device",
        )
        what = f"{case.id} (reduction={reduction or 'example'}) on meta"
        assert isinstance(out, torch.Tensor) and out.device.type == "meta", f"{what}: not a meta tensor"
        assert (tuple(out.shape), out.dtype) == (tuple(t_out.shape), t_out.dtype), (
            f"{what}: {tuple(out.shape)} {out.dtype}, torch's {tuple(t_out.shape)} {t_out.dtype}"
        )
        assert out.requires_grad == grad, f"{what}: requires_grad {out.requires_grad}"


# ============================================================================ 0-d tensor hyperparameters

# Values away from special cases (margin 0, label_smoothing 0): the example's
# where it sets one, else these; eps keeps PyTorch's default.
HYPERPARAM_VALUES = {"margin": 0.3, "beta": 0.8, "delta": 0.8, "p": 2.0, "label_smoothing": 0.1}


def hyperparam_test_value(case, param):
    if param in case.kwargs or param not in HYPERPARAM_VALUES:
        return hyperparam_value(case, param)
    return HYPERPARAM_VALUES[param]


HYPERPARAMS = [(c, p) for c in BASE_CASES for p in hyperparam_names(c.name)]


@pytest.mark.parametrize("case,param", HYPERPARAMS, ids=[f"{c.id}-{p}" for c, p in HYPERPARAMS])
def test_torch_hyperparam_tensor(case, param, path):
    """A 0-d float64 tensor margin/beta/delta/eps/p/label_smoothing, where
    torch.nn.functional takes one: anyloss's value and gradients (the
    hyperparameter's included, where PyTorch gives one) equal PyTorch's."""
    v = hyperparam_test_value(case, param)

    def run(fn):
        ts = tensors(case, requires_grad=True)
        m = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        out = quiet(case.call)(fn, ts, **{param: m})
        grads = torch.autograd.grad(out, [ts[i] for i in case.diff] + [m], allow_unused=True)
        return out.detach(), grads

    try:
        t_out, t_grads = run(case.torch_fn)
    except Exception as e:
        pytest.skip(f"torch.nn.functional.{case.name} takes no tensor `{param}`: {first_line(e)}")
    out, grads = run(case.anyloss_fn)
    close(out, t_out, f"{case.id} value with a tensor {param}")
    for k, (g, t) in enumerate(zip(grads, t_grads)):
        what = f"{case.id} gradient of {param if k == len(case.diff) else case.names[case.diff[k]]}"
        if t is None:
            assert g is None or not torch.any(g), f"{what}: torch gives none, anyloss {g}"
        else:
            close(g, t, what)


# ============================================================================ JAX


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)  # the examples are float64
    return jax


JAX_TRANSFORMS = ["jit", "grad", "jvp", "jacfwd", "hessian", "checkpoint", "scan"]


def eager_on(case, arrays):
    """torch.nn.functional's eager value and gradients on other NumPy arrays."""
    ts = [torch.from_numpy(np.array(a, copy=True)) for a in arrays]
    for i in case.diff:
        ts[i].requires_grad_(True)
    out = quiet(case.call)(case.torch_fn, ts)
    return out.detach(), torch.autograd.grad(out, [ts[i] for i in case.diff])


@pytest.mark.parametrize("transform", JAX_TRANSFORMS)
@cases
def test_jax_transform(jax, case, transform):
    """jax.jit / grad / jvp / jacfwd / hessian / checkpoint / lax.scan of
    anyloss on JAX arrays equal torch.autograd's eager numbers on the same
    inputs (the Hessian: torch.func.hessian of torch.nn.functional's loss)."""
    import jax.numpy as jnp

    fn = case.anyloss_fn
    arrays = [jnp.asarray(a) for a in case.arrays]
    argnums, primals, f, f_none = of_differentiated(case, fn, arrays)
    what = f"{case.id} under jax.{transform}"
    # jax.grad runs as users call it; the other transformations run under
    # jax.jit (called op by op they cost several times the time, and anyloss
    # sees tracers either way).
    if transform == "jit":
        close(jax.jit(lambda *a: case.call(fn, a))(*arrays), eager(case.id)[0], what)
    elif transform == "grad":
        close_all(jax.grad(f, argnums=argnums)(*primals), eager(case.id)[1], what)
    elif transform == "jvp":
        tans = tangents(case)
        out, t_out = jax.jit(lambda p, t: jax.jvp(f_none, p, t))(primals, tuple(jnp.asarray(t.numpy()) for t in tans))
        close_all((out, t_out), eager_jvp(case.id, tans), what)
    elif transform == "jacfwd":
        close_all(jax.jit(jax.jacfwd(f_none, argnums=argnums))(*primals), eager_jacobian(case.id)[1], what)
    elif transform == "hessian":

        def f_first(x):
            full = list(arrays)
            full[case.first] = x
            return case.call(fn, full)

        ref, _ = torch_transform_reference(case.id, "hessian")
        got = (jax.jit(jax.hessian(f_first))(arrays[case.first]),)
        if ("jax", case.id, "hessian") in DECLARED_LIMITS:
            with pytest.raises(AssertionError):  # strict: fails until the convention is settled
                close_all(got, ref, what)
            declared_limit(("jax", case.id, "hessian"))
        close_all(got, ref, what)
    elif transform == "checkpoint":
        value, grads = jax.jit(jax.value_and_grad(jax.checkpoint(f), argnums=argnums))(*primals)
        t_value, t_grads = eager(case.id)
        close(value, t_value, f"{what}: value")
        close_all(grads, t_grads, f"{what}: gradients")
    elif transform == "scan":  # the loss summed over a scanned stack of 3 examples
        np_stack = stacked(case)
        stack = [jnp.asarray(a) for a in np_stack]

        def total(*d_stack):
            full = with_diff(case, stack, d_stack)

            def body(carry, xs):
                return carry + case.call(fn, list(xs)), None

            return jax.lax.scan(body, jnp.zeros((), jnp.float64), tuple(full))[0]

        value, grads = jax.jit(jax.value_and_grad(total, argnums=argnums))(*(stack[i] for i in case.diff))
        per = [eager_on(case, arrays) for arrays in zip(*np_stack)]
        t_value = sum(v for v, _ in per)
        t_grads = [torch.stack(g) for g in zip(*(g for _, g in per))]
        close(value, t_value.to(torch.float64), f"{what}: value")
        close_all(grads, t_grads, f"{what}: gradients")


# ---------------------------------------------------------------------------- hyperparameters as JAX arrays

JAX_HYPERPARAMS = [(c, p) for c in BASE_CASES for p in hyperparam_names(c.name)]


def _fd_step(v):
    return 1e-6 if abs(v) >= 1e-3 else abs(v) * 1e-3


@pytest.mark.parametrize("case,param", JAX_HYPERPARAMS, ids=[f"{c.id}-{p}" for c, p in JAX_HYPERPARAMS])
def test_jax_hyperparam_array(jax, case, param):
    """``jax.jit(f)(*arrays, margin=m)`` with ``m`` a 0-d JAX array, and
    jax.grad with respect to it: PyTorch's value at the same float, and its
    derivative (torch.autograd where PyTorch takes a tensor, else central
    differences of its float64 values)."""
    import jax.numpy as jnp

    fn = case.anyloss_fn
    v = hyperparam_test_value(case, param)
    arrays = [jnp.asarray(a) for a in case.arrays]
    m = jnp.asarray(v, dtype=jnp.float64)

    def f(*arrs, **hp):
        return case.call(fn, arrs, **hp)

    value = jax.jit(f)(*arrays, **{param: m})
    g = jax.grad(lambda mm: f(*arrays, **{param: mm}))(m)

    def torch_at(x):
        return quiet(case.call)(case.torch_fn, tensors(case), **{param: x})

    close(value, torch_at(v), f"{case.id} value with a traced {param}")
    try:
        mt = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        (t_g,) = torch.autograd.grad(torch_at(mt), mt, allow_unused=True)
        t_g = torch.zeros((), dtype=torch.float64) if t_g is None else t_g
        tol = {}
    except Exception:  # PyTorch takes a float only
        t_g = torch.tensor(central_difference(torch_at, v, _fd_step(v)), dtype=torch.float64)
        tol = {"rtol": 1e-5, "atol": 1e-6}
    close(g, t_g, f"{case.id} jax.grad with respect to {param}", **tol)


def _float_params(fn, names):
    params = inspect.signature(fn).parameters
    return [p for p in names if p in params and isinstance(params[p].default, float)]


# The extras' float alpha, gamma (focal losses) and beta (Tversky); softmax_focal_loss's alpha is an array.
EXTRA_HYPERPARAMS = [
    (n, p)
    for n, s in SPECS.items()
    if s.catalogue == "extras"
    for p in _float_params(s.functional, ("alpha", "gamma", "beta"))
]


@pytest.mark.parametrize("name,param", EXTRA_HYPERPARAMS, ids=[f"{n}-{p}" for n, p in EXTRA_HYPERPARAMS])
def test_jax_extras_hyperparam_array(jax, name, param):
    """The extras' float alpha/gamma/beta as traced 0-d JAX arrays: the value
    of anyloss on NumPy at the same float, and central differences of it."""
    import jax.numpy as jnp

    spec = SPECS[name]
    args, kwargs = spec.example(np)
    v = float(kwargs.get(param, inspect.signature(spec.functional).parameters[param].default))
    arrays = [jnp.asarray(a) for a in args]

    def f(*arrs, **hp):
        return spec.functional(*arrs, **{**kwargs, **hp})

    value = jax.jit(f)(*arrays, **{param: jnp.asarray(v)})
    g = jax.grad(lambda mm: f(*arrays, **{param: mm}))(jnp.asarray(v))

    def numpy_at(x):
        return spec.functional(*args, **{**kwargs, param: x})

    np.testing.assert_allclose(np.asarray(value), np.asarray(numpy_at(v)), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(g), central_difference(numpy_at, v, _fd_step(v)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- NumPy and JAX in one call


@pytest.mark.parametrize("first", ["jax", "numpy"])
@cases
def test_jax_numpy_mixed(jax, case, first):
    """The first array JAX and the others NumPy (``F.cross_entropy(jax_logits,
    numpy_labels)``), or the other way round: a JAX array of PyTorch's value."""
    import jax.numpy as jnp

    arrays = [jnp.asarray(a) if (k == 0) == (first == "jax") else np.asarray(a) for k, a in enumerate(case.arrays)]
    out = case.call(case.anyloss_fn, arrays)
    assert isinstance(out, jax.Array), f"{case.id}: a {type(out).__name__}, not a JAX array"
    close(out, eager(case.id)[0], f"{case.id} value, {first} first")


@pytest.mark.parametrize("first", ["torch", "numpy"])
@cases
def test_torch_numpy_mixed(path, case, first):
    """The same on PyTorch, on both paths: NumPy arrays beside tensors become
    tensors on their device, and the tensors' gradients are PyTorch's."""
    ts = [torch.from_numpy(np.array(a, copy=True)) for a in case.arrays]
    for k in case.diff:
        ts[k].requires_grad_(True)
    arrays = [t if (k == 0) == (first == "torch") else np.asarray(a) for k, (t, a) in enumerate(zip(ts, case.arrays))]
    out = case.call(case.anyloss_fn, arrays)
    assert isinstance(out, torch.Tensor), f"{case.id}: a {type(out).__name__}, not a tensor"
    value, grads = eager(case.id)
    close(out, value, f"{case.id} value, {first} first")
    tensors = [k for k in case.diff if isinstance(arrays[k], torch.Tensor)]
    if tensors and out.ndim == 0:
        got = torch.autograd.grad(out.sum(), [arrays[k] for k in tensors], allow_unused=True)
        for k, g in zip(tensors, got):
            close(g, grads[case.diff.index(k)], f"{case.id} grad of array {k}, {first} first")


# ---------------------------------------------------------------------------- sharding

# The batch axis of each array of the losses whose arrays are not all
# batch-first rows (spec.accel.rows): CTC's log_probs are (T, N, C).
BATCH_AXES = {
    "nll_loss": {"input": 0, "target": 0},
    "linear_cross_entropy": {"input": 0, "target": 0},
    "ctc_loss": {"log_probs": 1, "targets": 0, "input_lengths": 0, "target_lengths": 0},
    "triplet_margin_with_distance_loss": {"anchor": 0, "positive": 0, "negative": 0},
}

SHARDING_SCRIPT = textwrap.dedent(r"""
    import json, traceback
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P
    import anyloss

    BATCH_AXES = json.loads(%(batch_axes)r)
    ROWS = 16
    assert len(jax.devices()) == 8, jax.devices()
    Auto, Explicit = jax.sharding.AxisType.Auto, jax.sharding.AxisType.Explicit
    summary = {}
    for mode, axis_type in (("auto", Auto), ("explicit", Explicit)):
      if mode != %(mode)r:
          continue
      mesh = jax.make_mesh((8,), ("batch",), axis_types=(axis_type,))
      for name, spec in anyloss.losses().items():
        if spec.catalogue != "torch":
            continue
        try:
            args, kwargs = spec.example(np)
            assert not any(isinstance(v, np.ndarray) for v in kwargs.values())
            axes = BATCH_AXES.get(name) or {k: 0 for k in (spec.accel.rows or {})}
            # The first array must have a batch axis.
            assert spec.argnames[0] in axes, "no batch axis"
            arrays, shardings, diff = [], [], []
            for i, a in enumerate(args):
                a = np.asarray(a)
                pname = spec.argnames[i]
                ax = axes.get(pname)
                if ax is not None and a.ndim > ax:
                    n = a.shape[ax]
                    a = np.take(a, np.arange(ROWS) %% n, axis=ax)  # tiled to 16 rows
                    if np.issubdtype(a.dtype, np.floating) and pname in spec.differentiable:
                        scale = (1.0 - 0.01 * np.arange(ROWS)).reshape([-1 if k == ax else 1 for k in range(a.ndim)])
                        a = (a * scale).astype(a.dtype)
                    shardings.append(NamedSharding(mesh, P(*([None] * ax), "batch")))
                else:
                    shardings.append(NamedSharding(mesh, P()))
                if np.issubdtype(a.dtype, np.floating) and pname in spec.differentiable:
                    diff.append(i)
                arrays.append(a)

            def f(*arrs, spec=spec, kwargs=kwargs):
                return spec.functional(*arrs, **kwargs)

            value = jax.jit(f)
            grad = jax.jit(jax.grad(f, argnums=tuple(diff)))
            plain = [jnp.asarray(a) for a in arrays]
            sharded = [jax.device_put(a, s) for a, s in zip(arrays, shardings)]
            v0, g0 = value(*plain), grad(*plain)
            v1, g1 = value(*sharded), grad(*sharded)
            np.testing.assert_allclose(np.asarray(v1), np.asarray(v0), rtol=1e-10, atol=1e-12,
                                       err_msg="value")
            for i, a, b in zip(diff, g1, g0):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12,
                                           err_msg=f"gradient of {spec.argnames[i]}")
            summary[f"{mode}/{name}"] = {"ok": True, "error": None,
                                         "sharded": [spec.argnames[i] for i, s in enumerate(shardings) if s.spec != P()]}
        except Exception as e:
            text = str(e).strip()
            first = text.splitlines()[0] if text else ""
            summary[f"{mode}/{name}"] = {"ok": False, "error": f"{type(e).__name__}: {first}"[:400]}
    print("SUMMARY " + json.dumps(summary))
""")


def sharded_summary(mode):
    """{"<mode>/<loss>": {"ok", "error"}} from one subprocess."""
    code = SHARDING_SCRIPT % {"batch_axes": json.dumps(BATCH_AXES), "mode": mode}
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SUMMARY ")]
    assert proc.returncode == 0 and lines, f"the subprocess failed:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("SUMMARY ") :])


# JAX's explicit sharding mode (sharding in the types) refuses what it cannot
# decide alone; automatic sharding (XLA propagates) runs every loss. Declared,
# strictly: a loss that starts working in explicit mode fails the test.
EXPLICIT_LIMITS = {
    "linear_cross_entropy": "the contraction with linear_weight has an ambiguous output sharding",
    "ctc_loss": "the recursion flattens the batch into a (T, N*K + 1) table, whose axis 8 devices cannot divide",
}


@integration
@pytest.mark.parametrize("mode", ["auto", "explicit"])
def test_jax_sharded_batch(mode):
    """Every loss with its inputs' batch axis sharded over 8 host devices
    (NamedSharding(mesh, P("batch")), 16 rows tiled from the example): the
    jitted value and jax.grad equal the unsharded ones. ``auto``: a mesh of
    AxisType.Auto (XLA propagates the shardings); ``explicit``: AxisType.Explicit
    (sharding in types, jax.make_mesh's default in recent JAX). The batch is
    run in a subprocess: the device count is fixed when JAX starts."""
    pytest.importorskip("jax")
    summary = {k.split("/", 1)[1]: r for k, r in sharded_summary(mode).items()}
    expected = {n for n, s in SPECS.items() if s.catalogue == "torch"}
    assert set(summary) == expected
    failed = {n: r["error"] for n, r in summary.items() if not r["ok"]}
    expected_failures = set(EXPLICIT_LIMITS) if mode == "explicit" else set()
    assert set(failed) == expected_failures, "sharded != unsharded:\n" + "\n".join(
        f"  {n}: {e}" for n, e in failed.items()
    )
