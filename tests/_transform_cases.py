"""Cases and PyTorch references for tests/test_transforms.py.

A :class:`Case` is one call of a loss of ``torch.nn.functional``'s catalogue,
built from the loss's worked example (``spec.example(np)``: float64 NumPy
arrays), with the arguments PyTorch differentiates (``Case.diff``, found by
asking ``torch.autograd``, not from anyloss's spec). ``Case.call(fn, arrays)``
runs ``torch.nn.functional.<name>`` or ``anyloss.functional.<name>`` on other
arrays (tensors, JAX arrays) in the example's places.

The references are PyTorch's: its eager value and ``torch.autograd``
gradients, and the eager equivalents of the transformations (a Jacobian row by
row, a loop for ``vmap``, central differences of the gradient for a Hessian)
for where ``torch.nn.functional``'s own loss cannot go through a transformation.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from dataclasses import dataclass

import numpy as np
import torch  # noqa: E402  (the caller has checked it is installed)

import anyloss
import anyloss.functional as AF
from helpers import _bind, _call_with, _get, stacked_copies

TF = torch.nn.functional
SPECS = anyloss.losses()
NAMES = [n for n, s in SPECS.items() if s.catalogue == "torch"]


@dataclass(eq=False)
class Case:
    id: str
    name: str
    args: tuple
    kwargs: dict

    def __post_init__(self):
        self.slots = _bind(self.name, self.args, self.kwargs)
        self.arrays = [np.asarray(_get(self.args, self.kwargs, s)) for s, _ in self.slots]
        self.names = [p for _, p in self.slots]
        self.is_float = [np.issubdtype(a.dtype, np.floating) for a in self.arrays]
        self.diff = _torch_differentiates(self)
        self.first = self.diff[0]  # the first float argument PyTorch differentiates (the Hessian's)

    def call(self, fn, arrays, **over):
        """``fn`` (``TF.<name>``, ``AF.<name>``) on ``arrays`` in the example's
        array places, with options ``over`` replacing the example's."""
        return _call_with(fn, self.args, {**self.kwargs, **over}, self.slots, arrays)

    @property
    def torch_fn(self):
        return getattr(TF, self.name)

    @property
    def anyloss_fn(self):
        return getattr(AF, self.name)

    def __repr__(self):
        return f"Case({self.id})"


def _torch_differentiates(case) -> list[int]:
    """Indices of the float arrays torch.autograd gives a gradient for."""
    diff = []
    for i, fl in enumerate(case.is_float):
        if not fl:
            continue
        ts = tensors(case)
        ts[i].requires_grad_(True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = case.call(case.torch_fn, ts)
                torch.autograd.grad(out.sum(), [ts[i]])
        except RuntimeError:  # "not differentiable with respect to argument", "not implemented"
            continue
        diff.append(i)
    return diff


def _prob_target_case():
    args, kwargs = SPECS["cross_entropy"].example(np)
    logits = np.asarray(args[0])
    p = np.random.default_rng(0).random(logits.shape)
    return Case("cross_entropy-probs", "cross_entropy", (logits, p / p.sum(axis=1, keepdims=True)), dict(kwargs))


def _label_smoothing_case():
    args, kwargs = SPECS["cross_entropy"].example(np)
    return Case("cross_entropy-label_smoothing", "cross_entropy", tuple(args), {**kwargs, "label_smoothing": 0.1})


def make_cases() -> list[Case]:
    out = []
    for name in NAMES:
        args, kwargs = SPECS[name].example(np)
        out.append(Case(name, name, tuple(args), dict(kwargs)))
        if name == "cross_entropy":
            out += [_prob_target_case(), _label_smoothing_case()]
    return out


# ---------------------------------------------------------------------------- tensors


def tensors(case, requires_grad=False, device=None) -> list:
    """The example's arrays as fresh tensors (float64 as given); the ones PyTorch
    differentiates with ``requires_grad`` if asked."""
    ts = [torch.from_numpy(np.array(a, copy=True)) for a in case.arrays]
    if device is not None:
        ts = [t.to(device) for t in ts]
    if requires_grad:
        for i in case.diff:
            ts[i].requires_grad_(True)
    return ts


def tangents(case, seed=1) -> list:
    """One float64 tangent per differentiated array (fixed numbers)."""
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.standard_normal(case.arrays[i].shape)) for i in case.diff]


def with_diff(case, full, diff_values) -> list:
    """``full`` with the differentiated arrays replaced by ``diff_values``."""
    full = list(full)
    for i, v in zip(case.diff, diff_values):
        full[i] = v
    return full


def stacked(case, n=3) -> list[np.ndarray]:
    """``n`` different copies of the example's arrays stacked on a new leading
    axis (helpers.stacked_copies: the same rule as test_backends')."""
    return stacked_copies(case, n)


def quiet(fn):
    """``fn`` with warnings silenced (kl_div's 'mean', PyTorch's vmap fallbacks)."""

    @functools.wraps(fn)
    def run(*a, **k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*a, **k)

    return run


# ---------------------------------------------------------------------------- eager references


@functools.cache
def eager(case_id, reduction=None):
    """``torch.nn.functional``'s value and gradients (one per ``case.diff``),
    eager ``torch.autograd``; ``reduction`` None is the example's."""
    case = BY_ID[case_id]
    over = {} if reduction is None else {"reduction": reduction}
    ts = tensors(case, requires_grad=True)
    out = quiet(case.call)(case.torch_fn, ts, **over)
    if out.ndim == 0:
        grads = torch.autograd.grad(out, [ts[i] for i in case.diff])
    else:
        grads = (None,) * len(case.diff)
    return out.detach(), tuple(grads)


@functools.cache
def eager_jacobian(case_id, reduction="none"):
    """The value and, per differentiated array, the Jacobian (``out.shape +
    arg.shape``), row by row with eager reverse mode."""
    case = BY_ID[case_id]
    ts = tensors(case, requires_grad=True)
    out = quiet(case.call)(case.torch_fn, ts, reduction=reduction)
    diff = [ts[i] for i in case.diff]
    rows = [[] for _ in diff]
    flat = out.reshape(-1)
    for k in range(flat.numel()):
        gs = torch.autograd.grad(flat[k], diff, retain_graph=True, allow_unused=True)
        for r, g, t in zip(rows, gs, diff):
            r.append(torch.zeros_like(t) if g is None else g)
    jacs = tuple(torch.stack(r).reshape(*out.shape, *t.shape) for r, t in zip(rows, diff))
    return out.detach(), jacs


def contract(jac, t):
    """J . t over t's axes (the last t.ndim axes of J)."""
    return torch.tensordot(jac, t, dims=t.ndim) if t.ndim else jac * t


def eager_jvp(case_id, tans, reduction="none"):
    out, jacs = eager_jacobian(case_id, reduction)
    return out, sum(contract(j, t) for j, t in zip(jacs, tans))


def eager_hessian(case_id):
    """Hessian of the example's (scalar) loss w.r.t. its first differentiated
    array: double backward, or, where PyTorch has no double backward (CTC),
    central differences of its eager gradient."""
    case = BY_ID[case_id]
    ts = tensors(case)
    x0 = ts[case.first]

    def f(x):
        full = list(ts)
        full[case.first] = x
        return quiet(case.call)(case.torch_fn, full)

    try:
        return torch.autograd.functional.hessian(f, x0)
    except (RuntimeError, NotImplementedError):
        pass

    def grad_at(x):
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(f(x), x)[0]

    h = 1e-6
    cols = []
    for k in range(x0.numel()):
        e = torch.zeros(x0.numel(), dtype=x0.dtype)
        e[k] = h
        e = e.reshape(x0.shape)
        cols.append((grad_at(x0 + e) - grad_at(x0 - e)) / (2 * h))
    return torch.stack(cols, dim=-1).reshape(*x0.shape, *x0.shape)


def hyperparam_names(name) -> list[str]:
    """The float hyperparameters of ``torch.nn.functional.<name>``: margin,
    beta, delta, eps, p, label_smoothing where its signature takes a float (not
    an int, as multi_margin_loss's p)."""
    sig = inspect.signature(getattr(TF, name))
    out = []
    for p in ("margin", "beta", "delta", "eps", "p", "label_smoothing"):
        if p in sig.parameters:
            ann = str(sig.parameters[p].annotation)
            if "int" in ann and "float" not in ann:
                continue
            out.append(p)
    return out


def hyperparam_value(case, param) -> float:
    """The example's value of a hyperparameter, else PyTorch's default."""
    if param in case.kwargs:
        return float(case.kwargs[param])
    return float(inspect.signature(case.torch_fn).parameters[param].default)


def central_difference(f, v: float, h: float) -> float:
    return (float(f(v + h)) - float(f(v - h))) / (2 * h)


# Built last: a Case asks torch.autograd what it differentiates (tensors above).
CASES = make_cases()
BY_ID = {c.id: c for c in CASES}
