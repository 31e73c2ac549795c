"""anyloss: every PyTorch loss, with exactly PyTorch's numbers and analytic
gradients, on any Array API library (NumPy by default).

``import anyloss.functional as F`` for the functions; the ``torch.nn``-style
classes live here, with ``value_and_grad``, ``grad``, ``vjp`` and the registry.
"""

from typing import Any

from . import functional
from ._config import configure
from ._checks import TypeNotImplementedError, TypeRuntimeError, ValueIndexError, ValueRuntimeError
from ._autodiff import grad, value_and_grad, vjp
from ._register import register, unregister
from ._spec import LossSpec, losses
from .losses import *  # noqa: F403 -- every loss class, from the index (anyloss.losses)
from .losses import CLASSES
from .losses._distance import Distance
from . import extras  # after the PyTorch catalogue: anyloss.losses() lists the extras last

# The one source of the version: pyproject.toml reads it from here (setuptools, without
# importing the package), `anyloss --version` prints it; CHANGELOG.md says what each one holds.
__version__ = "0.1.0"

__all__ = [
    "functional",
    "extras",
    "configure",
    "grad",
    "value_and_grad",
    "vjp",
    "LossSpec",
    "losses",
    "register",
    "unregister",
    "Distance",
    "ValueRuntimeError",
    "ValueIndexError",
    "TypeRuntimeError",
    "TypeNotImplementedError",
    *CLASSES,
]


def __getattr__(name: Any) -> Any:
    # The tooling modules load on first use: they import optional libraries
    # (matplotlib, Dask, ...) only when called, and `import anyloss` stays light.
    if name in ("plot", "stream", "compat"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
