"""Fixtures shared by all tests: the backend (`xp`) and the floating dtype."""

from __future__ import annotations

import enum
import fnmatch
import importlib
import os
import sys
import zlib

import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))  # `import helpers` from tests/losses/

try:  # PyTorch's intra-op threads thrash on a small shared machine; the cases are tiny.
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass

import anyloss  # noqa: E402

# CI is deterministic (the same examples every run); the long profile explores.
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("long", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class Backend(enum.Enum):
    """Array libraries the suite runs on. One that is not installed skips."""

    NUMPY = "numpy"
    ARRAY_API_STRICT = "array_api_strict"
    TORCH = "torch"  # as users run it: built-ins handed to torch.nn.functional after anyloss's checks
    TORCH_OWN = "torch-own"  # anyloss's own Array API code on tensors (anyloss.configure(native=False))
    JAX = "jax"
    DASK = "dask"

    def namespace(self):
        if self is Backend.NUMPY:
            from array_api_compat import numpy as xp

            return xp
        if self is Backend.JAX:
            jax = pytest.importorskip("jax")
            jax.config.update("jax_enable_x64", True)  # float64 and int64 cases stay what they are
            return importlib.import_module("jax.numpy")
        if self is Backend.DASK:
            pytest.importorskip("dask.array")
            from array_api_compat.dask import array as xp

            return xp
        if self in (Backend.TORCH, Backend.TORCH_OWN):
            pytest.importorskip("torch")
            from array_api_compat import torch as xp

            return xp
        return pytest.importorskip(self.value)


# ANYLOSS_BACKENDS=numpy,jax selects backends (default: all five; one not installed skips).
_SELECTED = [Backend(b) for b in os.environ.get("ANYLOSS_BACKENDS", ",".join(b.value for b in Backend)).split(",")]

# ANYLOSS_PROFILE=full runs every oracle case on every backend. The default
# ('ci') runs them all on NumPy, array-api-strict and PyTorch; on JAX (which
# compiles every new shape) and Dask (which schedules a graph per call) it runs
# a fixed sample of each test's cases, at least SAMPLE_MIN and 1/SAMPLE_RATE of
# them, spread over the dtypes, options and shapes by a hash of the test id.
# Error tests and the backend tests run in full everywhere.
PROFILE = os.environ.get("ANYLOSS_PROFILE", "ci")
SAMPLED = {Backend.JAX, Backend.DASK}
SAMPLE_MIN, SAMPLE_RATE = 8, 10

# Where a backend itself cannot give PyTorch's number, the test is declared
# here once, with the reason (and listed in the README): (backend, test id
# glob, reason). Such a test is an expected failure, strictly: if it starts
# passing, the suite says so.
EXCEPTIONS = [
    (
        Backend.JAX,
        "tests/losses/test_binary_cross_entropy.py::test_matches_torch[[]jax-float32-tiny-*",
        "XLA on the CPU flushes float32 subnormal inputs (1e-45, 1e-40) to zero, so the target's gradient "
        "-logit(x) is inf where PyTorch's is finite",
    ),
    (
        Backend.JAX,
        "tests/losses/test_triplet_margin_loss.py::test_matches_torch[[]jax-float32-one-feature-p=2.5]",
        "XLA on the CPU flushes float32 subnormals to zero: |d|^(p-1) of d = 1e-30 gives 0 * inf = NaN in the gradient",
    ),
    (
        Backend.JAX,
        "tests/losses/test_triplet_margin_loss.py::test_matches_torch[[]jax-float32-0d-p=2]",
        "XLA rewrites sqrt(d * d) as |d| under jit, so a float32 distance of 4e20 stays finite where PyTorch's "
        "d * d overflows (inf - inf = NaN)",
    ),
]


def pytest_configure(config):
    config.addinivalue_line("markers", "numpy_only: a variant run on NumPy only (its reason in the test)")
    config.addinivalue_line(
        "markers",
        "integration: slow end-to-end runs (docs build, benchmark smoke run, "
        "Dask clusters, subprocesses, inductor); CI runs them, `-m 'not integration'` skips them",
    )


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    groups: dict = {}
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = params.get("xp")
        if backend is not None and backend is not Backend.NUMPY and item.get_closest_marker("numpy_only"):
            drop.append(item)
            continue
        if PROFILE != "full" and backend in SAMPLED and "case" in params:
            groups.setdefault((item.nodeid.split("[")[0], backend), []).append(item)
        keep.append(item)
        for b, pattern, reason in EXCEPTIONS:
            if backend is b and fnmatch.fnmatchcase(item.nodeid, pattern):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    for group in groups.values():
        n = max(SAMPLE_MIN, -(-len(group) // SAMPLE_RATE))
        drop += sorted(group, key=lambda it: zlib.crc32(it.nodeid.encode()))[n:]
    if drop:
        dropped = set(map(id, drop))
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in keep if id(it) not in dropped]


@pytest.fixture(params=_SELECTED, ids=[b.value for b in _SELECTED])
def xp(request):
    namespace = request.param.namespace()
    with anyloss.configure(native=request.param is not Backend.TORCH_OWN):
        yield namespace


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param
