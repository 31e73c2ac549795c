"""The public surface matches PyTorch 2.13: names and signatures."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

import anyloss
import anyloss.functional as F

torch = pytest.importorskip("torch")

from anyloss.losses import CLASSES as INDEX_CLASSES
from anyloss.losses import FUNCTIONS

# PyTorch's own lists: its loss functions (torch.nn.functional has no list of
# them: the names of its loss family) and its loss modules.
TORCH_FUNCTIONS = sorted(
    n
    for n in dir(torch.nn.functional)
    if not n.startswith("_")
    and callable(getattr(torch.nn.functional, n))
    and (n.endswith("_loss") or "cross_entropy" in n or n == "kl_div")
)
TORCH_CLASSES = sorted(torch.nn.modules.loss.__all__) + ["AdaptiveLogSoftmaxWithLoss"]
# Losses that own parameters: PyTorch's constructor plus keyword-only `xp` and `seed`.
PARAMETER_CLASSES = ["LinearCrossEntropyLoss", "AdaptiveLogSoftmaxWithLoss"]
CLASSES = [n for n in INDEX_CLASSES if n not in PARAMETER_CLASSES]


def test_every_torch_loss_is_in_the_index():
    assert sorted(FUNCTIONS) == TORCH_FUNCTIONS
    assert sorted(INDEX_CLASSES) == sorted(TORCH_CLASSES)


def test_public_lists_derive_from_the_index():
    assert list(F.__all__) == list(FUNCTIONS)
    assert all(callable(getattr(F, n)) for n in F.__all__)
    assert [n for n in anyloss.__all__ if n in INDEX_CLASSES] == list(INDEX_CLASSES)


def _params(fn):
    """Names, kinds and defaults; annotations are PyTorch's own types and are not compared."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signature(name):
    assert _params(getattr(F, name)) == _params(getattr(torch.nn.functional, name))


@pytest.mark.parametrize("name", CLASSES)
def test_class_signature(name):
    ours, theirs = getattr(anyloss, name), getattr(torch.nn, name)
    assert _params(ours.__init__) == _params(theirs.__init__)
    assert _params(ours.forward) == _params(theirs.forward)


@pytest.mark.parametrize("name", PARAMETER_CLASSES)
def test_parameter_class_signature(name):
    ours, theirs = getattr(anyloss, name), getattr(torch.nn, name)
    extra = [(n, inspect.Parameter.KEYWORD_ONLY, None) for n in ("xp", "seed")]
    assert _params(ours.__init__) == _params(theirs.__init__) + extra
    assert _params(ours.forward) == _params(theirs.forward)


def test_registry_covers_functional():
    """Every functional is a registered loss whose spec points back at it and at its class."""
    specs = anyloss.losses()
    for name in F.__all__:
        assert name in specs
        assert specs[name].functional is getattr(F, name)
        assert getattr(anyloss, specs[name].cls.__name__) is specs[name].cls


def test_each_loss_has_a_test_file():
    here = os.path.join(os.path.dirname(__file__), "losses")
    for name in F.__all__:
        assert os.path.exists(os.path.join(here, f"test_{name}.py")), name


def test_each_loss_has_its_home():
    for name, spec in anyloss.losses().items():
        mod = sys.modules[spec.functional.__module__]
        home = {"torch": "F", "extras": "anyloss.extras"}.get(spec.catalogue)
        if home is not None:  # a user's own loss lives wherever its author put it
            assert mod.__doc__.startswith(f"Home of {home}.{name}"), mod.__name__


def test_import_is_light():
    """`import anyloss` and a NumPy loss import neither torch, jax nor dask."""
    code = (
        "import sys, numpy as np, anyloss, anyloss.functional as F\n"
        "F.mse_loss(np.ones(3), np.zeros(3)); anyloss.value_and_grad(F.mse_loss)(np.ones(3), np.zeros(3))\n"
        "bad = [m for m in ('torch', 'jax', 'dask') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
