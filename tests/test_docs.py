"""The documentation site builds in strict mode, from the library itself.

One build (``sphinx-build -W --keep-going``, a subprocess so the registry and
matplotlib of this process stay untouched) serves every test here: a page per
loss with its plot and its example computed at build time, the compat page
with its outputs, the CLI page with the real ``anyloss list``.
"""

from __future__ import annotations

import contextlib
import html
import importlib.util
import io
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

import anyloss
from anyloss import _doc
from anyloss.cli import main

pytest.importorskip("sphinx")
pytest.importorskip("furo")
pytest.importorskip("matplotlib")

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    res = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", "-j", "1",
                          str(DOCS), str(out)], capture_output=True, text=True, timeout=300)
    return res, out


def text_of(page: Path) -> str:
    """The visible text of an HTML page's article."""
    s = page.read_text(encoding="utf-8")
    s = s[s.index("<article"):s.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", s))


def documented():
    import anyloss.extras  # noqa: F401  (registers the extras)

    return {n: s for n, s in anyloss.losses().items() if s.catalogue in ("torch", "extras")}


def example_value(spec) -> str:
    args, kwargs = spec.example(np)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(np.asarray(spec.functional(*args, **kwargs)))


def has_curve(name) -> bool:
    import matplotlib.pyplot as plt

    from anyloss import plot

    try:
        fig = plot.figure([name])
    except ValueError:
        return False
    plt.close(fig)
    return True


def test_build_is_strict_and_clean(site):
    res, out = site
    assert res.returncode == 0, res.stdout + res.stderr
    assert "WARNING" not in res.stderr and "ERROR" not in res.stderr
    assert (out / "index.html").exists()


def test_a_page_per_loss_with_plot_and_computed_example(site):
    _, out = site
    specs = documented()
    assert {s.catalogue for s in specs.values()} == {"torch", "extras"}
    curves = 0
    for name, spec in specs.items():
        page = out / "generated" / "losses" / f"{name}.html"
        assert page.exists(), name
        raw = page.read_text(encoding="utf-8")
        text = text_of(page)
        assert f"loss = {example_value(spec)}" in text, name
        assert f"d loss / d {spec.differentiable[0]} = " in text, name
        assert spec.functional.__name__ in text, name  # the autodoc'd function
        img = re.search(rf'<img[^>]*src="([^"]*{name}\.png)"', raw)
        if has_curve(name):
            curves += 1
            assert img is not None, name
            assert (page.parent / img.group(1)).resolve().stat().st_size > 1000, name
        else:
            assert img is None, name
    assert curves >= 10  # most losses have a curve; a few (ctc_loss, ...) do not
    index = text_of(out / "generated" / "losses.html")
    assert all(name in index for name in specs)


def test_compat_page_shows_each_difference_computed(site):
    from anyloss import compat

    _, out = site
    text = text_of(out / "generated" / "compat.html")
    differences = compat.differences()
    assert differences
    # with TensorFlow installed (the tf extra) the tf.nn entries also show TensorFlow's own numbers
    with_tf = importlib.util.find_spec("tensorflow") is not None
    assert ("TensorFlow itself" in text) == with_tf
    for d in differences:
        assert d["title"] in text
        namespace = {"__name__": "__docs__"}
        for key in ["code"] + (["tensorflow"] if with_tf and "tensorflow" in d else []):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(d[key], "<compat>", "exec"), namespace)
            assert printed.getvalue().strip(), d["title"]  # each difference prints what it shows
            assert printed.getvalue().strip() in text, (d["title"], key)


def test_cli_and_executed_pages_show_real_output(site, capsys):
    _, out = site
    main(["list"])
    listing = capsys.readouterr().out
    cli = text_of(out / "cli.html")
    for line in listing.splitlines():
        assert line.split()[0] in cli
    assert listing.splitlines()[0].strip() in cli
    custom = text_of(out / "custom_losses.html")
    assert "True" in custom  # the finite-difference check printed True at build time
    assert "log_cosh_loss" not in anyloss.losses()  # built in a subprocess; nothing leaked here
    assert "benchmark" in text_of(out / "benchmarks.html").lower()


def test_show_and_docs_share_the_example_text(site, capsys):
    _, out = site
    for name in ("smooth_l1_loss", "cross_entropy", "dice_loss"):
        spec = documented()[name]
        example = _doc.example_text(spec)
        assert main(["show", name]) == 0
        shown = capsys.readouterr().out
        assert shown == _doc.show_text(spec) + "\n"
        assert example in shown
        page = text_of(out / "generated" / "losses" / f"{name}.html")
        for line in example.splitlines():
            assert line.strip() in page, (name, line)
