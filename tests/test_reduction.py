"""Reductions and PyTorch's legacy size_average/reduce, tested once for all losses."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from anyloss._reduction import legacy_reduction, reduce, reduce_vjp
from helpers import torch

LEGACY = [None, True, False]


@pytest.mark.parametrize("size_average,reduce_", list(itertools.product(LEGACY, LEGACY)))
def test_legacy_matches_torch(size_average, reduce_):
    from torch.nn import _reduction as torch_reduction

    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = legacy_reduction(size_average, reduce_, "sum")
    if size_average is None and reduce_ is None:
        assert got == "sum" and not ours
        return
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        want = torch_reduction.legacy_get_string(size_average, reduce_)
    assert got == want
    assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in theirs]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(0,), (3,), (2, 5), ()])
def test_reduce_and_vjp_match_torch(reduction, shape):
    loss = np.random.default_rng(0).standard_normal(shape)
    t = torch.from_numpy(loss.copy()).requires_grad_()
    if reduction == "none":
        t_out = t
    elif reduction == "sum":
        t_out = t.sum()
    else:
        t_out = t.mean()
    ct = np.random.default_rng(1).standard_normal(tuple(t_out.shape))
    t_out.backward(torch.from_numpy(ct))
    from array_api_compat import numpy as xp

    out = reduce(xp, loss, reduction)
    assert isinstance(out, np.ndarray) and out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(out, t_out.detach().numpy(), equal_nan=True)
    g, g_div = reduce_vjp(xp, xp.asarray(ct), reduction, loss)
    assert g_div is None
    np.testing.assert_allclose(g, t.grad.numpy())


def test_mean_with_divisor_gradient():
    """A 'mean' divided by a total weight: the divisor's cotangent is -g * sum / d^2."""
    from array_api_compat import numpy as xp

    loss = np.array([1.0, 2.0, 3.0])
    d = np.asarray(4.0)
    assert float(reduce(xp, loss, "mean", d)) == 1.5
    g, g_div = reduce_vjp(xp, xp.asarray(1.0), "mean", loss, d)
    np.testing.assert_allclose(g, np.full(3, 0.25))
    np.testing.assert_allclose(g_div, -6.0 / 16.0)
