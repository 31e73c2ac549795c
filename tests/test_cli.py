"""The `anyloss` command: list, show and check, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import anyloss
from anyloss.cli import main


def test_list_names_every_loss(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(anyloss.losses())
    assert any(line.split()[1] == "CrossEntropyLoss" for line in out)


def test_show_computes_the_worked_example(capsys):
    assert main(["show", "smooth_l1_loss"]) == 0
    out = capsys.readouterr().out
    assert "beta" in out and "Worked example" in out
    value = float(anyloss.functional.smooth_l1_loss(np.ones((2, 2)), np.array([[0.0, 1.0], [2.0, 3.0]])))
    assert f"loss = {value}" in out


def test_show_unknown_loss(capsys):
    assert main(["show", "no_such_loss"]) == 2
    assert "anyloss list" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_check_agrees_with_torch(capsys, backend):
    pytest.importorskip("torch")
    assert main(["check", "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert "every loss agrees" in out
    assert out.count(" ok ") >= len(anyloss.losses())


def test_python_dash_m_and_help():
    res = subprocess.run([sys.executable, "-m", "anyloss", "--help"], capture_output=True, text=True, check=True)
    for command in ("list", "show", "check"):
        assert command in res.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"anyloss {anyloss.__version__}\n"
