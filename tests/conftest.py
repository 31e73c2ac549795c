"""Fixtures shared by all tests: the backend (`xp`) and the floating dtype."""

from __future__ import annotations

import enum
import importlib
import os
import sys

import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))  # `import helpers` from tests/losses/

settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("long", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class Backend(enum.Enum):
    """Array libraries the suite runs on. One that is not installed skips."""

    NUMPY = "numpy"
    ARRAY_API_STRICT = "array_api_strict"

    def namespace(self):
        if self is Backend.NUMPY:
            from array_api_compat import numpy as xp

            return xp
        return pytest.importorskip(self.value) if self.value not in sys.modules else importlib.import_module(self.value)


@pytest.fixture(params=list(Backend), ids=[b.value for b in Backend])
def xp(request):
    return request.param.namespace()


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param
