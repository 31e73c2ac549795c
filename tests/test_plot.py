"""`anyloss plot` and anyloss.plot: valid images, and curves whose numbers are the losses' own."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import anyloss
import anyloss.functional as F
from anyloss import plot
from anyloss.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CATALOGUE = [name for name, spec in anyloss.losses().items() if spec.catalogue in ("torch", "extras")]
# The losses of torch.nn.functional that have no 1-D curve, by design.
NO_CURVE = {"ctc_loss"}


def test_cli_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "smooth_l1_vs_l1.png"
    assert main(["plot", "smooth_l1_loss", "l1_loss", "--grad", "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.read_bytes()[:8] == PNG_MAGIC
    image = imread(out)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300 and image.shape[2] in (3, 4)


def test_cli_writes_a_reproducible_svg(tmp_path):
    pytest.importorskip("matplotlib")
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    for path in (a, b):
        assert main(["plot", "huber_loss", "--param", "delta=2.0", "--range", "-4", "4", "-o", str(path)]) == 0
    root = ET.parse(a).getroot()
    assert root.tag.endswith("svg")
    assert a.read_bytes() == b.read_bytes()


def test_smooth_l1_curve_is_smooth_l1_loss():
    (c,) = plot.curves("smooth_l1_loss", params={"beta": 0.5}, grad=True, num=101)
    zeros = np.zeros_like(c.x)
    np.testing.assert_array_equal(c.y, F.smooth_l1_loss(c.x, zeros, reduction="none", beta=0.5))
    _, pullback = anyloss.vjp(F.smooth_l1_loss, c.x, zeros, reduction="none", beta=0.5)
    np.testing.assert_array_equal(c.dy, pullback(np.ones_like(c.x)))
    assert c.x[0] == -3.0 and c.x[-1] == 3.0 and c.legend == "smooth_l1_loss (beta=0.5)"


def test_params_go_to_every_loss_that_takes_them():
    huber, l1 = plot.curves(["huber_loss", "l1_loss"], params={"delta": 2.0}, range=(-1.0, 5.0), num=7)
    assert huber.legend == "huber_loss (delta=2.0)" and l1.legend == "l1_loss"
    np.testing.assert_array_equal(huber.x, np.linspace(-1.0, 5.0, 7))
    np.testing.assert_array_equal(huber.y, F.huber_loss(huber.x, np.zeros(7), reduction="none", delta=2.0))
    assert not np.array_equal(huber.y, F.huber_loss(huber.x, np.zeros(7), reduction="none"))
    np.testing.assert_array_equal(l1.y, F.l1_loss(l1.x, np.zeros(7), reduction="none"))


def test_options_reach_the_curve():
    (rate,) = plot.curves("poisson_nll_loss", params={"log_input": False}, num=5)
    assert rate.xlabel.startswith("rate") and rate.x[0] > 0  # the rate's domain (0, inf)
    np.testing.assert_array_equal(rate.y, F.poisson_nll_loss(rate.x, np.ones(5), log_input=False, reduction="none"))
    (smoothed,) = plot.curves("cross_entropy", params={"label_smoothing": 0.2}, num=5)
    logits = np.stack([np.zeros(5), smoothed.x], axis=1)
    np.testing.assert_array_equal(
        smoothed.y, F.cross_entropy(logits, np.ones(5, dtype=np.int64), label_smoothing=0.2, reduction="none")
    )


def test_probability_domain():
    (default,) = plot.curves("binary_cross_entropy", num=11)
    assert 0.0 < default.x[0] and default.x[-1] < 1.0 and np.isfinite(default.y).all()
    (wide,) = plot.curves("binary_cross_entropy", range=(-1.0, 2.0), grad=True, num=31)
    inside = (wide.x >= 0.0) & (wide.x <= 1.0)
    assert np.isnan(wide.y[~inside]).all() and np.isnan(wide.dy[~inside]).all()
    np.testing.assert_array_equal(
        wide.y[inside], F.binary_cross_entropy(wide.x[inside], np.ones(int(inside.sum())), reduction="none")
    )


@pytest.mark.parametrize("name", CATALOGUE)
def test_gradient_curve_is_the_derivative_of_the_value_curve(name):
    """Every loss that ships with anyloss either gives a curve whose derivative
    curve matches finite differences, or says it has no 1-D curve."""
    try:
        (c,) = plot.curves(name, grad=True, num=2001)
    except ValueError as e:
        assert "1-D curve" in str(e) and name in NO_CURVE
        return
    assert name not in NO_CURVE
    ok = np.isfinite(c.y)
    assert ok.mean() > 0.9 and np.isfinite(c.dy[ok]).all()
    h = c.x[1] - c.x[0]
    fd = (c.y[2:] - c.y[:-2]) / (2 * h)
    mid = c.dy[1:-1]
    # Away from kinks (where the gradient jumps between neighbours), central differences are the derivative.
    smooth = np.isfinite(fd) & (np.abs(c.dy[2:] - c.dy[:-2]) <= 0.05 * (1.0 + np.abs(mid)))
    assert smooth.mean() > 0.9
    np.testing.assert_allclose(mid[smooth], fd[smooth], rtol=2e-3, atol=2e-3)
    assert np.ptp(c.y[ok]) > 0.1  # a curve worth drawing, not a constant


def test_every_loss_draws_or_refuses():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    for name in CATALOGUE:
        try:
            fig = plot.figure(name, grad=True, num=41)
        except ValueError as e:
            assert "1-D curve" in str(e)
            continue
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        assert fig.axes[-1].get_xlabel().startswith("x: ")


def test_a_users_loss_plots_by_default_and_with_its_curve(tmp_path):
    pytest.importorskip("matplotlib")

    def _pseudo_huber(xp, input, target):
        return xp.sqrt(1.0 + (input - target) ** 2) - 1.0

    def _grad(xp, g, input, target):
        d = g * (input - target) / xp.sqrt(1.0 + (input - target) ** 2)
        return d, -d

    def _hinge(xp, input, target):
        return xp.maximum(1.0 - target * input, 0.0)

    elementwise = anyloss.register(
        _pseudo_huber, name="plot_test_pseudo_huber", gradient=_grad, differentiable=("input", "target")
    )
    margin = anyloss.register(
        _hinge, name="plot_test_hinge", curve=lambda xp, x: ((x, xp.ones_like(x)), "margin target · input")
    )
    try:
        c, m = plot.curves(["plot_test_pseudo_huber", "plot_test_hinge"], grad=False, num=9)
        np.testing.assert_array_equal(c.y, np.sqrt(1.0 + c.x**2) - 1.0)
        assert c.xlabel == "input (target = 0)"
        np.testing.assert_array_equal(m.y, np.maximum(1.0 - m.x, 0.0))
        assert m.xlabel == "margin target · input"
        (g,) = plot.curves("plot_test_pseudo_huber", grad=True, num=9)
        np.testing.assert_allclose(g.dy, g.x / np.sqrt(1.0 + g.x**2))
        with pytest.raises(ValueError, match="no analytic gradient"):
            plot.curves("plot_test_hinge", grad=True)
        out = tmp_path / "mine.svg"
        assert main(["plot", "plot_test_pseudo_huber", "plot_test_hinge", "-o", str(out)]) == 0
        assert ET.parse(out).getroot().tag.endswith("svg")
    finally:
        for loss in (elementwise, margin):
            anyloss.unregister(loss.name)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no_such_loss"):
        plot.curves("no_such_loss")
    with pytest.raises(ValueError, match="'gamma'"):
        plot.curves(["smooth_l1_loss", "huber_loss"], params={"beta": 0.5, "gamma": 2.0})
    with pytest.raises(ValueError, match="no 1-D curve"):
        plot.curves("ctc_loss")
    with pytest.raises(ValueError, match="`range`"):
        plot.curves("l1_loss", range=(1.0, -1.0))
    bad = tmp_path / "loss.pdf"
    with pytest.raises(ValueError, match="loss.pdf"):
        plot.save("l1_loss", bad)
    assert not bad.exists()


def test_cli_errors_exit_2(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["plot", "no_such_loss", "-o", out]) == 2
    assert "no_such_loss" in capsys.readouterr().err
    assert main(["plot", "l1_loss", "--param", "gamma=2", "-o", out]) == 2
    assert "'gamma'" in capsys.readouterr().err
    assert main(["plot", "l1_loss", "-o", str(tmp_path / "x.jpg")]) == 2
    assert "x.jpg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", "l1_loss"])  # -o is required


def test_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'anyloss\[plot\]'"):
        plot.figure("l1_loss")
    out = tmp_path / "x.png"
    assert main(["plot", "l1_loss", "-o", str(out)]) == 2
    assert "pip install 'anyloss[plot]'" in capsys.readouterr().err
    assert not out.exists()
    assert len(plot.curves("l1_loss", num=5)[0].y) == 5  # the numbers need NumPy only


def test_import_anyloss_does_not_import_matplotlib():
    import subprocess

    code = "import sys, anyloss; assert 'matplotlib' not in sys.modules and 'anyloss.plot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
