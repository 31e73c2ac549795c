"""The package as a user installs it: the sdist and wheel build and pass ``twine
check``, and the wheel, installed with no extras into a fresh virtual
environment, works on its own (no test file, benchmark or docs build needed)
and ``import anyloss`` loads nothing beyond NumPy, array-api-compat and array-api-extra."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import anyloss

pytestmark = pytest.mark.integration
pytest.importorskip("build")
pytest.importorskip("twine")

ROOT = Path(__file__).resolve().parents[1]

# Run by the fresh environment's Python, away from the source tree.
SMOKE = """
import sys

before = set(sys.modules)
import anyloss
import anyloss.functional as F
import numpy as np

loaded = {name.partition(".")[0] for name in set(sys.modules) - before}
assert loaded - set(sys.stdlib_module_names) <= {"anyloss", "numpy", "array_api_compat", "array_api_extra"}, sorted(loaded)
value, g = anyloss.value_and_grad(F.mse_loss)(np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]]))
assert float(value) == 1.5 and g.tolist() == [[0.5, 0.0], [-0.5, -1.0]], (value, g)
print(anyloss.__version__, anyloss.__file__)
"""


def _run(*args, cwd, env=None):
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"{args}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_wheel_installs_clean(tmp_path):
    dist = tmp_path / "dist"
    # The sdist, then the wheel from the sdist (so the sdist must be complete, and no
    # build/ directory is left in the source tree).
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("anyloss-*.whl")
    (sdist,) = dist.glob("anyloss-*.tar.gz")
    assert wheel.name.startswith(f"anyloss-{anyloss.__version__}-")
    _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, cwd=tmp_path)

    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("anyloss/", f"anyloss-{anyloss.__version__}.dist-info/")) for n in names), names
    assert "anyloss/py.typed" in names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # no system site-packages: only what the wheel asks for
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    # Nothing of the source tree or of this environment may leak in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=tmp_path, env=env)
    version, where = _run(python, "-c", SMOKE, cwd=tmp_path, env=env).split()
    assert version == anyloss.__version__ and Path(where).is_relative_to(env_dir)
    assert _run(bin_dir / "anyloss", "--version", cwd=tmp_path, env=env) == f"anyloss {anyloss.__version__}\n"
    listed = [line.split()[0] for line in _run(bin_dir / "anyloss", "list", cwd=tmp_path, env=env).splitlines()]
    assert listed == [name for name, spec in anyloss.losses().items() if spec.catalogue != "user"]
