"""Sphinx configuration: the API reference from the docstrings, the config reference from
the JSON schema, the Markdown pages and the tutorial notebook, executed at build time.

Build: ``.venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT / "workflow" / "lib"), str(DOCS / "_ext")]
# the tutorial's kernel imports the packages too, and reads the tests' real files
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "workflow" / "lib"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
).rstrip(os.pathsep)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import interpretable_ae  # noqa: E402

project = "interpretable-ae"
author = "the interpretable-ae authors"
copyright = "2020-2026, " + author
release = version = interpretable_ae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "myst_nb",
    "config_schema",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]

# API reference: one page per module (autosummary), numpydoc sections through napoleon
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = True
nitpicky = False

# intersphinx needs the network; links to other projects' pages are left as text offline
intersphinx_mapping = {}

# Markdown pages: the repository's docs/*.md, read with MyST
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# the tutorial runs at every build; an error in it fails the build
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

html_theme = "alabaster"
html_title = f"interpretable-ae {release}"
html_static_path = []
