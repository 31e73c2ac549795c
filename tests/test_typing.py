"""The typed API: a static checker (mypy) accepts every library's arrays in the
loss functions and refuses what PyTorch refuses (an unknown reduction, a list);
and the package itself passes mypy in strict mode (pyproject.toml's [tool.mypy])."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
pytest.importorskip("mypy")

GOOD = """
    import jax.numpy as jnp
    import numpy as np
    import torch

    import anyloss
    import anyloss.functional as F
    from anyloss.extras import dice_loss
    from anyloss.typing import Array, Reduction

    x = np.ones((4, 3))
    t = np.array([0, 1, 2, 1])
    a: Array = F.cross_entropy(x, t, label_smoothing=0.1)
    b: Array = F.cross_entropy(torch.ones(4, 3), torch.tensor([0, 1, 2, 1]), reduction="sum")
    c: Array = F.mse_loss(jnp.ones(3), jnp.zeros(3), reduction="none")
    d: Array = F.kl_div(x, x, reduction="batchmean")
    e: Array = F.ctc_loss(np.zeros((5, 1, 3)), np.array([[1]]), [5], [1])

    value, g = anyloss.value_and_grad(F.mse_loss)(x, x)
    v: Array = value
    gx: Array = g
    value, (g0, g1) = anyloss.value_and_grad(F.mse_loss, argnums=(0, 1))(x, x)
    h: Array = anyloss.grad(F.l1_loss)(x, x)
    out, pullback = anyloss.vjp(F.l1_loss, x, x, reduction="none")
    gv: Array = pullback(np.ones(4))

    r: Reduction = "sum"
    m: Array = anyloss.MSELoss(reduction=r)(torch.ones(3), torch.zeros(3))
    k: Array = anyloss.KLDivLoss(reduction="batchmean")(x, x)
    dl: Array = dice_loss(x, x, reduction="mean")
    lin: Array = anyloss.LinearCrossEntropyLoss(3, 2)(x, t)
"""

BAD = """
    import numpy as np

    import anyloss
    import anyloss.functional as F

    F.mse_loss(np.ones(3), np.zeros(3), reduction="avg")
    F.nll_loss(np.ones((2, 3)), [0, 1])
    g: tuple = anyloss.grad(F.mse_loss)(np.ones(3), np.zeros(3))
    anyloss.MSELoss(reduction="avg")
    anyloss.MultiMarginLoss(p=3)
"""


def _mypy(tmp_path, source):
    path = tmp_path / "user.py"
    path.write_text(textwrap.dedent(source))
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--ignore-missing-imports",
        "--follow-imports=silent",
        "--no-incremental",
        str(path),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_arrays_of_every_library_type_check(tmp_path):
    res = _mypy(tmp_path, GOOD)
    assert res.returncode == 0, res.stdout + res.stderr


def test_wrong_calls_are_refused(tmp_path):
    res = _mypy(tmp_path, BAD)
    assert res.returncode == 1, res.stdout + res.stderr
    assert 'Argument "reduction" to "mse_loss"' in res.stdout
    assert 'Argument 2 to "nll_loss" has incompatible type "list[int]"; expected "Array"' in res.stdout
    assert 'Incompatible types in assignment (expression has type "Array", variable has type "tuple' in res.stdout
    assert 'Argument "reduction" to "MSELoss"' in res.stdout
    assert 'Argument "p" to "MultiMarginLoss"' in res.stdout


ROOT = Path(__file__).resolve().parents[1]


def test_package_passes_strict_mypy(tmp_path):
    """CI's static check: mypy over src/anyloss with pyproject.toml's [tool.mypy]
    (strict), from a fresh cache."""
    assert "\nstrict = true\n" in (ROOT / "pyproject.toml").read_text()
    cmd = [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("Success: no issues found"), res.stdout


def test_type_checkers_see_every_loss_class():
    """`import *` of the index's computed __all__ is opaque to a checker:
    anyloss/__init__.py names the classes again under TYPE_CHECKING."""
    import ast

    from anyloss.losses import CLASSES

    tree = ast.parse((ROOT / "src" / "anyloss" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "_TYPE_CHECKING")
    named = [a.asname for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names]
    assert named == list(CLASSES)
