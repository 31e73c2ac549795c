"""Fixtures shared by all tests: the backend (`xp`) and the floating dtype."""

from __future__ import annotations

import enum
import importlib
import os
import sys

import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))  # `import helpers` from tests/losses/

try:  # PyTorch's intra-op threads thrash on a small shared machine; the cases are tiny.
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass

settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("long", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class Backend(enum.Enum):
    """Array libraries the suite runs on. One that is not installed skips."""

    NUMPY = "numpy"
    ARRAY_API_STRICT = "array_api_strict"
    TORCH = "torch"
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
        if self is Backend.TORCH:
            pytest.importorskip("torch")
            from array_api_compat import torch as xp

            return xp
        return pytest.importorskip(self.value)


# ANYLOSS_BACKENDS=numpy,jax selects backends (default: numpy and array-api-strict).
_SELECTED = [Backend(b) for b in os.environ.get("ANYLOSS_BACKENDS", "numpy,array_api_strict").split(",")]


@pytest.fixture(params=_SELECTED, ids=[b.value for b in _SELECTED])
def xp(request):
    return request.param.namespace()


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param
