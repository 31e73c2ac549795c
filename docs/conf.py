"""Sphinx configuration of anyloss's documentation.

Build (strict: a warning fails it)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

Nothing is fetched over the network while building (no intersphinx), nor by
the built site: MathJax comes from the ``sphinx-mathjax-offline`` package. The page
of each loss, its plot and its worked example are made at build time by
``_ext/anyloss_docs.py`` into ``docs/generated/`` (not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))  # document this checkout, not another installed anyloss

import anyloss  # noqa: E402

project = "anyloss"
author = "the anyloss authors"
copyright = "anyloss authors"
version = release = anyloss.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # MathJax 3 shipped in the package, copied into _static/mathjax: formulas render offline.
    "sphinx-mathjax-offline",
    "anyloss_docs",
]

# MathJax 3 shows \text{log\_softmax} with its backslash unless textmacros is loaded.
mathjax3_config = {"loader": {"load": ["[tex]/textmacros"]}, "tex": {"packages": {"[+]": ["textmacros"]}}}

html_theme = "furo"
html_title = f"anyloss {release}"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
smartquotes = False  # 'sum' in prose stays the string Python prints
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["anyloss.css"]  # the gallery's grid

# The docstrings are reST with Google-style Args/Returns, and two sections of
# their own: "Shape" (PyTorch's) and "Gradients".
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Shape", "Gradients"]
napoleon_use_rtype = False

autodoc_member_order = "bysource"
# The signatures read like PyTorch's; the types (anyloss.typing) go in the
# parameter lists below them, under the names users annotate with.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_type_aliases = {
    "Array": "anyloss.typing.Array",
    "Reduction": "anyloss.typing.Reduction",
    "KLDivReduction": "anyloss.typing.KLDivReduction",
    "Namespace": "typing.Any",
}
