"""Sphinx configuration for multilc (built with ``sphinx-build -W``)."""
import datetime
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import multilc  # noqa: E402
from multilc import photometry  # noqa: E402

project = "multilc"
author = "multilc developers"
copyright = f"{datetime.date.today().year}, {author}"
release = multilc.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_automodapi.automodapi",
    "sphinx_automodapi.smart_resolver",
]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
autosummary_generate = True
default_role = "obj"
nitpicky = False
exclude_patterns = ["_build", "generated/*.rst"]
templates_path = []

# Intersphinx: links to the documentation of astropy, numpy, pandas, xarray,
# lightkurve and pyvo.  Fetching their inventories needs the network, and a
# failed fetch is only a warning that ``sphinx-build -W`` turns into an error,
# so offline builds (CI, tox -e docs) leave the mapping empty and the
# cross-references fall back to plain text.  Online builds turn it on with
# MULTILC_DOCS_INTERSPHINX=1 (the weekly remote-data job and Read the Docs).
INTERSPHINX = {
    "python": ("https://docs.python.org/3/", None),
    "astropy": ("https://docs.astropy.org/en/stable/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "pandas": ("https://pandas.pydata.org/docs/", None),
    "xarray": ("https://docs.xarray.dev/en/stable/", None),
    "lightkurve": ("https://lightkurve.github.io/lightkurve/", None),
    "pyvo": ("https://pyvo.readthedocs.io/en/latest/", None),
}
_online = os.environ.get("MULTILC_DOCS_INTERSPHINX", "").lower() not in ("", "0", "no",
                                                                         "false")
intersphinx_mapping = INTERSPHINX if (_online or os.environ.get("READTHEDOCS")) else {}

html_theme = "alabaster"
html_static_path = []
html_title = f"multilc {release}"

# The band table is generated from the band registry, so docs and code agree.
(HERE / "generated").mkdir(exist_ok=True)
(HERE / "generated" / "band_table.rst").write_text(photometry.band_table_rst())
# The tutorial's figures are made by running its offline examples.
import runpy  # noqa: E402
runpy.run_path(str(HERE / "make_figures.py"))["main"](HERE / "generated")

suppress_warnings = ["ref.obj", "ref.ref"] if not intersphinx_mapping else []
