"""Run the offline examples of the user guide and keep the figures they draw.

The tutorial (``guide/tutorial.rst``), the notebook guide
(``guide/from_notebook.rst``) and the figure guide with its gallery
(``guide/plotting.rst``) show two kinds of example: plain code blocks that
need the network (never run here) and doctest blocks (``>>>``) that run
offline.  This script runs the doctest blocks of each page, exactly as
printed, in a fresh temporary folder, checks their printed output, and copies
the PNG files they save into ``docs/generated/`` where the pages include them
with ``.. figure::``.  So the figures in the docs are the ones the examples
draw, and an example that stops working breaks the docs build.

Used by ``docs/conf.py`` at build time and by ``tests/test_docs_examples.py``;
by hand::

    python docs/make_figures.py            # writes docs/generated/*.png

``docs/generated/`` is in ``.gitignore``: the figures are build products,
remade by every docs build, never committed.
"""
from __future__ import annotations

import doctest
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Pages whose doctest blocks are run, relative to the docs folder.
PAGES = ("guide/tutorial.rst", "guide/from_notebook.rst", "guide/plotting.rst")
#: Where the figures go (the docs build includes them from here).
GENERATED = HERE / "generated"
#: Output comparison: ``...`` matches anything, runs of whitespace are equal.
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class PageRun:
    """Outcome of running the doctest blocks of one page.

    Attributes
    ----------
    page : str
        Page path relative to the docs folder.
    attempted, failed : int
        Examples run and examples whose output differed (or that raised).
    report : str
        doctest's description of every failure (empty when none failed).
    namespace : dict
        The names the examples defined, for further checks by tests.
    files : list of pathlib.Path
        Files the examples wrote (in *workdir*).
    """

    page: str
    attempted: int
    failed: int
    report: str
    namespace: dict = field(repr=False)
    files: list = field(default_factory=list)


def load_examples(page: str) -> doctest.DocTest:
    """The doctest examples of *page* (a path relative to the docs folder)."""
    path = HERE / page
    text = path.read_text(encoding="utf-8")
    return doctest.DocTestParser().get_doctest(text, {}, page, str(path), 0)


@contextmanager
def _working_directory(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_page(page: str, workdir: Path) -> PageRun:
    """Run the doctest examples of *page* inside *workdir*.

    matplotlib is switched to the Agg backend first (no display needed); the
    pages themselves do not choose a backend, so the same code runs in a
    notebook.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = load_examples(page)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS, verbose=False)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with _working_directory(workdir):
            result = runner.run(test, out=out.append, clear_globs=False)
    finally:
        plt.close("all")
    files = sorted(p for p in workdir.rglob("*") if p.is_file())
    return PageRun(page, result.attempted, result.failed, "".join(out), test.globs, files)


def main(out_dir: Path | str = GENERATED, pages=PAGES, *, workdir=None) -> list[PageRun]:
    """Run every page's examples; copy the PNG files they write to *out_dir*.

    Parameters
    ----------
    out_dir : path-like
        Where the figures go (default ``docs/generated``).
    pages : sequence of str
        Pages to run, relative to the docs folder.
    workdir : path-like, optional
        Run each page in ``workdir/<page name>`` and keep what the examples
        wrote there (for tests); by default a temporary folder that is
        removed afterwards.

    Returns
    -------
    list of `PageRun`
        ``files`` lists what the examples wrote (in *workdir* when given,
        else the copied figures).

    Raises
    ------
    RuntimeError
        If an example of any page fails (the message holds doctest's report),
        so that the docs build stops instead of showing stale figures.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for page in pages:
        with tempfile.TemporaryDirectory(prefix="multilc-docs-") as tmp:
            where = Path(workdir) / Path(page).stem if workdir is not None else Path(tmp)
            run = run_page(page, where)
            if run.failed:
                raise RuntimeError(f"{run.failed} of {run.attempted} examples of {page} "
                                   f"failed:\n{run.report}")
            for png in (p for p in run.files if p.suffix == ".png"):
                shutil.copyfile(png, out_dir / png.name)
            if workdir is None:
                run.files = [out_dir / p.name for p in run.files if p.suffix == ".png"]
            runs.append(run)
    return runs


if __name__ == "__main__":
    for run in main():
        names = ", ".join(p.name for p in run.files) or "no figures"
        print(f"{run.page}: {run.attempted} examples passed; {names}", file=sys.stderr)
