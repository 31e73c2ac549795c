"""The documentation site builds in strict mode, from the library itself.

One build (``sphinx-build -W --keep-going``, a subprocess so the registry and
matplotlib of this process stay untouched) serves every test here: a page per
loss with its plot and its example computed at build time, the gallery, the
compat page with its outputs, the CLI page with the real ``anyloss list``.
Then every page is opened in headless Chromium with no network but the local
server of the site: formulas typeset, images loaded, no console error
(skipped without Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import threading
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
pytest.importorskip("sphinx-mathjax-offline")
pytest.importorskip("matplotlib")

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    res = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", "-j", "1", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return res, out


def text_of(page: Path) -> str:
    """The visible text of an HTML page's article."""
    s = page.read_text(encoding="utf-8")
    s = s[s.index("<article") : s.index("</article>")]
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


def test_gallery_shows_every_curve_with_its_gradient(site):
    _, out = site
    raw = (out / "generated" / "gallery.html").read_text(encoding="utf-8")
    shown = set(re.findall(r'<img[^>]*src="[^"]*/([a-z0-9_]+)\.png"', raw))
    assert shown == {name for name in documented() if has_curve(name)}
    for name in shown:  # the same image as the loss's own page: the curve and its gradient panel
        assert f'href="losses/{name}.html"' in raw, name


def test_pages_load_only_local_scripts_and_styles(site):
    _, out = site
    for page in out.rglob("*.html"):
        raw = page.read_text(encoding="utf-8")
        urls = re.findall(r'<script[^>]*\ssrc="([^"]*)"', raw)
        urls += re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]*)"', raw)
        assert urls and not [u for u in urls if "//" in u], (page, urls)
    assert '_static/mathjax/tex-chtml.js"' in (out / "gradients.html").read_text(encoding="utf-8")


# Run in each page once it has loaded: wait for MathJax and every image, then report.
_INSPECT = """
const done = arguments[arguments.length - 1];
function prose() {  // the article's text outside code blocks (`anyloss show` prints TeX there)
  const article = (document.querySelector("article") || document.body).cloneNode(true);
  article.querySelectorAll("pre").forEach(e => e.remove());
  return article.textContent;
}
const typeset = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
const images = [...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; }));
Promise.all([typeset, ...images]).then(() => done({
  math: document.querySelectorAll(".math").length,
  typeset: document.querySelectorAll("mjx-container").length,
  errors: document.querySelectorAll("mjx-merror").length,
  text: prose(),
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  resources: performance.getEntriesByType("resource").map(e => e.name),
}));
"""


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip(
            "no headless browser: the site check needs Chromium and its driver "
            "(Debian: apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # No network: every host name but the site's server fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))  # no driver download
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_every_page_renders_in_a_browser_offline(site, browser):
    _, out = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    problems, formulas, images = [], 0, 0
    try:
        for page in pages:
            browser.get(base + page)
            seen = browser.execute_async_script(_INSPECT)
            # The browser asks for /favicon.ico by itself; the site has none.
            console = [
                e["message"]
                for e in browser.get_log("browser")
                if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]
            ]
            raw_tex = re.findall(r"\\[A-Za-z_(\[{]\w*", seen["text"])  # \frac, \begin, \(, log\_softmax
            remote = [u for u in seen["resources"] if not u.startswith(base)]
            found = {
                "formulas not typeset": seen["math"] - seen["typeset"],
                "MathJax errors": seen["errors"],
                "raw TeX": raw_tex,
                "broken images": seen["broken"],
                "console errors": console,
                "remote resources": remote,
            }
            if any(v for v in found.values()):
                problems.append((page, {k: v for k, v in found.items() if v}))
            formulas += seen["typeset"]
            images += len(browser.find_elements("tag name", "img"))
    finally:
        server.shutdown()
        server.server_close()
    assert not problems, problems
    # The check saw the formulas, and each loss's plot twice (its page, the gallery) beside the others.
    assert formulas > 100
    assert images > 2 * sum(has_curve(name) for name in documented())
