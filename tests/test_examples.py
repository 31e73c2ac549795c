"""Every loss's worked example (the demo's, the docs') agrees with PyTorch, and the demo runs."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

import anyloss
from helpers import check_against_torch

SPECS = anyloss.losses()


# The PyTorch catalogue; anyloss.extras have no torch.nn.functional twin: their worked
# examples are checked against torch-written references in tests/test_extras.py.
@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if s.catalogue == "torch"])
def test_example_matches_torch(name, xp):
    """On every backend: PyTorch's value and gradients, through torch's own
    .backward(), jax.vjp (the custom_vjp bridge) or anyloss.vjp, and on Dask
    nothing computed while the loss and its pullback are built."""
    spec = SPECS[name]
    assert spec.example is not None, f"{name} has no worked example"
    args, kwargs = spec.example(np)
    check_against_torch(name, args, kwargs, xp)


def test_quickstart_runs(capsys):
    runpy.run_path(str(Path(__file__).parents[1] / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    for name in SPECS:
        assert name in out


def test_out_of_core_example_runs(tmp_path):
    """The README's Dask example, small: it streams the files and checks its values against NumPy."""
    pytest.importorskip("dask.array")
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "examples" / "out_of_core.py"
    res = subprocess.run(
        [sys.executable, str(script), "--gb", "0.05", "--chunk-mb", "4", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "checked: the same values as NumPy" in res.stdout
