"""Sphinx extension that builds anyloss's documentation from the library itself.

At ``builder-inited`` it writes ``docs/generated/`` (not committed):

* ``losses.rst``: every registered loss, by catalogue (PyTorch's, then the
  extras), with a page each in ``losses/<name>.rst``: the summary, the plot of
  its curve and gradient (``anyloss.plot.save``, the code behind ``anyloss
  plot``; left out for a loss that has no 1-D curve), its worked example
  computed now (``anyloss._doc.example_text``, the text ``anyloss show``
  prints) and the autodoc of its function and class (formula, parameters,
  shapes);
* ``gallery.rst``: those plots together on one page;
* ``compat.rst``: each of ``anyloss.compat.differences()`` run now, its code
  beside its output; where TensorFlow is installed (the ``tf`` extra), each
  ``tf.nn`` entry's ``tensorflow`` snippet too: TensorFlow's own numbers.

Directives for the hand-written pages:

``.. anyloss-exec::``
    Runs its Python content now and shows it with what it printed (one
    namespace per page, so a page's examples build on each other).
``.. anyloss-command:: ARGS``
    Runs ``anyloss ARGS`` in-process and shows the command and its output.

Anything that fails while running is a warning, so a strict build
(``-W``) fails on it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import re
import shlex
import sys
import traceback
import warnings
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

GENERATED = "generated"
CATALOGUES = {
    "torch": (
        "PyTorch's losses",
        "Every loss of ``torch.nn.functional`` and ``torch.nn``, with PyTorch 2.13's numbers and gradients.",
    ),
    "extras": (
        "Extras",
        "Losses PyTorch does not ship (``anyloss.extras``), built on ``anyloss.register`` "
        "like a user's own loss; each docstring gives its reference.",
    ),
}


# --------------------------------------------------------------------------- generation


def _write(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps incremental builds incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic: two builds at once never see half a page


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


def _indent(text: str, n: int = 3) -> str:
    return "\n".join((" " * n + line) if line.strip() else "" for line in text.splitlines())


def _literal(text: str, language: str = "text") -> str:
    return f".. code-block:: {language}\n\n{_indent(text)}\n"


def _load_catalogues() -> None:
    """Import the modules that register losses beyond the built-ins."""
    if importlib.util.find_spec("anyloss.extras") is not None:
        importlib.import_module("anyloss.extras")


def doc_specs() -> dict:
    """The losses that get a page: every registered loss of a catalogue that
    ships with anyloss, by catalogue."""
    import anyloss

    _load_catalogues()
    by = {c: {} for c in CATALOGUES}
    for name, spec in anyloss.losses().items():
        if spec.catalogue in by:
            by[spec.catalogue][name] = spec
    return by


def _object_path(spec) -> str:
    """The dotted path autodoc imports the loss's function from."""
    if spec.catalogue == "torch":
        return f"anyloss.functional.{spec.name}"
    extras = importlib.import_module("anyloss.extras")
    if getattr(extras, spec.name, None) is spec.functional:
        return f"anyloss.extras.{spec.name}"
    return f"{spec.functional.__module__}.{spec.name}"


def _save_plot(names, path: Path, **kwargs) -> bool:
    """Draw ``names`` with ``anyloss.plot.save``; False for a loss without a 1-D curve."""
    from anyloss import plot

    tmp = path.with_name(f".{os.getpid()}.{path.name}")  # keeps the suffix that picks the format
    try:
        plot.save(names, str(tmp), **kwargs)
    except ValueError:
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, path)
    return True


def _loss_page(spec, plotted: bool) -> str:
    from anyloss._doc import call_name, example_text

    lines = [f".. _loss-{spec.name}:", "", _title(spec.name)]
    if spec.summary:
        lines += [_escape(spec.summary[0].upper() + spec.summary[1:]) + ".", ""]
    call = f"``{call_name(spec)}``"
    if spec.cls is not None:
        call += f", ``anyloss.{spec.cls.__name__}``"
    grads = (
        ", ".join(f"``{a}``" for a in spec.differentiable) if spec.bwd is not None else "none (no analytic gradient)"
    )
    lines += [f":Call: {call}", f":Differentiable: {grads}", f":Catalogue: ``{spec.catalogue}``", ""]
    if plotted:
        lines += [".. image:: " + f"{spec.name}.png", f"   :alt: {_ALT.format(spec.name)}", ""]
    example = example_text(spec)
    if example is not None:
        lines += [
            _title("Worked example", "-"),
            f"Computed on NumPy when these pages were built; ``anyloss show {spec.name}`` prints the same.",
            "",
            _literal(example),
        ]
    lines += [_title("Function", "-"), f".. autofunction:: {_object_path(spec)}", ""]
    if spec.cls is not None:
        lines += [_title("Class", "-"), f".. autoclass:: anyloss.{spec.cls.__name__}", "   :members:", ""]
        if spec.name == "nll_loss":  # the deprecated 2-D form shares the function
            lines += [".. autoclass:: anyloss.NLLLoss2d", ""]
    return "\n".join(lines)


def _index_page(by: dict) -> str:
    lines = [
        _title("Losses"),
        "One page per loss: its formula, parameters and shapes (from its docstring), the plot of "
        "its curve and a worked example computed when these pages were built.",
        "",
    ]
    for catalogue, specs in by.items():
        if not specs:
            continue
        heading, blurb = CATALOGUES[catalogue]
        lines += [
            _title(heading, "-"),
            blurb,
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - loss",
            "     - class",
            "     - what it is for",
        ]
        for name, spec in specs.items():
            cls = f"``{spec.cls.__name__}``" if spec.cls is not None else ""
            lines += [f"   * - :doc:`losses/{name}`", f"     - {cls}", f"     - {_escape(spec.summary)}"]
        lines += ["", ".. toctree::", "   :hidden:", ""] + [f"   losses/{name}" for name in specs] + [""]
    return "\n".join(lines)


_ALT = "{} and its gradient against the error or margin"


def _gallery_page(by: dict, plotted: dict) -> str:
    lines = [
        _title("Gallery"),
        "Every loss against the error or margin that drives it (top) and its derivative from the "
        "loss's own analytic gradient (bottom), drawn by ``anyloss.plot`` when these pages were "
        "built (``anyloss plot NAME --grad`` draws the same). A plot opens full size; a name opens "
        "the loss's page.",
        "",
    ]
    for catalogue, specs in by.items():
        if not specs:
            continue
        lines += [_title(CATALOGUES[catalogue][0], "-"), ".. container:: anyloss-gallery", ""]
        for name in specs:
            if plotted[name]:
                lines += [
                    f"   .. figure:: losses/{name}.png",
                    f"      :alt: {_ALT.format(name)}",
                    "      :width: 100%",
                    "",
                    f"      :doc:`losses/{name}`",
                    "",
                ]
        flat = [f":doc:`losses/{name}`" for name in specs if not plotted[name]]
        if flat:
            lines += ["No 1-D curve: " + ", ".join(flat) + ".", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Plain text safe inside reST (no accidental markup)."""
    return "".join("\\" + c if c in "\\*`|_[]" else c for c in text)


def _run(code: str, namespace: dict | None = None) -> str:
    """Execute ``code`` in ``namespace`` (a fresh one by default); what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"} if namespace is None else namespace)
    return out.getvalue()


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 to /dev/null: TensorFlow's C++ runtime writes notices there
    (absl's 'WARNING: All log messages before absl::InitializeLog()...' and oneDNN's,
    which TF_CPP_MIN_LOG_LEVEL does not silence) on import and on its first op."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _tensorflow_version() -> str | None:
    """TensorFlow's version where it is installed (the ``tf`` extra), else None."""
    if importlib.util.find_spec("tensorflow") is None:
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with warnings.catch_warnings(), _native_stderr_silenced():
            warnings.simplefilter("ignore")
            tf = importlib.import_module("tensorflow")
            tf.constant(0.0) + 1.0  # the first op: its notices go to /dev/null too
            return tf.__version__
    except Exception:
        logger.warning("anyloss docs: tensorflow is installed but does not import:\n%s", traceback.format_exc())
        return None


def _compat_page() -> str:
    lines = [
        _title("Porting from TensorFlow, optax and Keras"),
        "``anyloss.compat`` has TensorFlow's, optax's and Keras's losses with *their own* "
        "semantics (axis, reduction, clipping). Where a loss of the same name means something "
        "else in PyTorch, the difference is shown below, computed when these pages were built: "
        "the code, what it printed, and why.",
        "",
    ]
    from anyloss import compat

    tf_version = _tensorflow_version()
    if tf_version is not None:
        lines += [
            f"The ``tf.nn`` examples are followed by the same inputs in TensorFlow {tf_version} itself, "
            "run when these pages were built.",
            "",
        ]
    for _i, d in enumerate(compat.differences()):
        namespace = {"__name__": "__docs__"}
        try:
            output = _run(d["code"], namespace)
        except Exception:
            logger.warning("anyloss docs: compat example %r failed:\n%s", d["title"], traceback.format_exc())
            output = "(failed)"
        lines += [
            _title(d["title"], "-"),
            _literal(d["code"].rstrip(), "python"),
            "Output:",
            "",
            _literal(output.rstrip() or "(nothing printed)"),
        ]
        if tf_version is not None and "tensorflow" in d:  # without TensorFlow, the page shows anyloss's numbers
            try:
                tf_output = _run(d["tensorflow"], namespace)
            except Exception:
                logger.warning("anyloss docs: TensorFlow example %r failed:\n%s", d["title"], traceback.format_exc())
                tf_output = "(failed)"
            lines += [
                f"The same in TensorFlow {tf_version}, continuing the code above:",
                "",
                _literal(d["tensorflow"].rstrip(), "python"),
                "Output:",
                "",
                _literal(tf_output.rstrip() or "(nothing printed)"),
            ]
        lines += [d["why"].strip(), ""]
    return "\n".join(lines)


def generate(app) -> None:
    import anyloss

    out = Path(app.srcdir) / GENERATED
    folder = out / "losses"
    folder.mkdir(parents=True, exist_ok=True)
    by = doc_specs()
    app.env.anyloss_registered = set(anyloss.losses())
    pages = {name: spec for specs in by.values() for name, spec in specs.items()}
    plotted = {name: _save_plot(name, folder / f"{name}.png", grad=True) for name in pages}
    for name, spec in pages.items():
        _write(folder / f"{name}.rst", _loss_page(spec, plotted[name]))
    for stale in folder.iterdir():  # a loss no longer registered
        if stale.stem not in pages and not stale.name.startswith("."):
            stale.unlink()
    _write(out / "losses.rst", _index_page(by))
    _write(out / "gallery.rst", _gallery_page(by, plotted))
    _save_plot(["smooth_l1_loss", "l1_loss"], out / "smooth_l1_vs_l1.png")
    _write(out / "compat.rst", _compat_page())


def forget_user_losses(app, doctree) -> None:
    """Unregister the losses a page's examples registered, so each page sees
    the registry as it was when the build started."""
    import anyloss

    for name in set(anyloss.losses()) - getattr(app.env, "anyloss_registered", set()):
        anyloss.unregister(name)


# --------------------------------------------------------------------------- directives


class ExecDirective(SphinxDirective):
    """Run the content as Python now; show it and what it printed."""

    has_content = True
    option_spec = {"hide-code": directives.flag}

    def run(self):
        code = "\n".join(self.content)
        namespace = self.env.current_document.setdefault("anyloss_exec_ns", {"__name__": "__docs__"})
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"<{self.env.docname}>", "exec"), namespace)
        except Exception:
            logger.warning("anyloss-exec failed:\n%s", traceback.format_exc(), location=self.get_location())
        result = []
        if "hide-code" not in self.options:
            block = nodes.literal_block(code, code, language="python")
            self.set_source_info(block)
            result.append(block)
        if out.getvalue():
            text = out.getvalue().rstrip("\n")
            block = nodes.literal_block(text, text, language="text", classes=["anyloss-output"])
            self.set_source_info(block)
            result.append(block)
        return result


class CommandDirective(SphinxDirective):
    """``anyloss ARGS`` run in-process now; the command line and its output."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"lines": directives.positive_int}

    def run(self):
        from anyloss.cli import main

        argv = shlex.split(self.arguments[0])
        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # argparse's help width
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    code = main(argv)
                except SystemExit as e:  # --help
                    code = e.code or 0
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        if code:
            logger.warning(
                "`anyloss %s` exited with %s:\n%s",
                self.arguments[0],
                code,
                out.getvalue(),
                location=self.get_location(),
            )
        lines = out.getvalue().rstrip("\n").splitlines()
        if "lines" in self.options and len(lines) > self.options["lines"]:
            lines = lines[: self.options["lines"]] + ["..."]
        text = "\n".join([f"$ anyloss {self.arguments[0]}"] + lines)
        block = nodes.literal_block(text, text, language="console")
        self.set_source_info(block)
        return [block]


# --------------------------------------------------------------------------- docstrings

_SHAPE_STAR = re.compile(r"(?<=[(,] )\*(?=[,)])|(?<=\()\*(?=[,)])")


def escape_shape_stars(app, what, name, obj, options, lines) -> None:
    """PyTorch's shape wildcard ``(N, *)`` is reST emphasis markup: escape its
    ``*`` outside inline literals, so the docstrings stay as PyTorch writes them."""
    for i, line in enumerate(lines):
        parts = line.split("``")
        for j in range(0, len(parts), 2):  # even parts are outside ``literals``
            parts[j] = _SHAPE_STAR.sub(r"\\*", parts[j])
        lines[i] = "``".join(parts)


def resolve_loss_names(app, env, node, contnode):
    """A bare ``:func:`smooth_l1_loss``` in a class's docstring (its module is
    ``anyloss``) means the function of ``anyloss.functional``."""
    if node.get("refdomain") != "py" or "." in node["reftarget"]:
        return None
    import anyloss.functional

    if not hasattr(anyloss.functional, node["reftarget"]):
        return None
    py = env.domains["py"]
    return py.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], f"anyloss.functional.{node['reftarget']}", node, contnode
    )


def setup(app):
    app.connect("missing-reference", resolve_loss_names)
    app.connect("builder-inited", generate)
    app.connect("autodoc-process-docstring", escape_shape_stars)
    app.connect("doctree-read", forget_user_losses)
    app.add_directive("anyloss-exec", ExecDirective)
    app.add_directive("anyloss-command", CommandDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
