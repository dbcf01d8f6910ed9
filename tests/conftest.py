"""Shared pytest fixtures for the multilc test suite."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_dir():
    """Folder of the small real archive files and target lists the tests read.

    ``tests/data`` (see ``tests/data/SOURCES.md`` for the origin of every
    file), laid out like the project's reference folder: ``archive_samples/``
    and ``samples/``.  ``MULTILC_SHARED_DIR`` points the tests at another folder
    with the same layout (for example the complete IceCube season file).
    """
    env = os.environ.get("MULTILC_SHARED_DIR")
    path = Path(env) if env else DATA_DIR
    if not path.is_dir():
        pytest.fail(f"MULTILC_SHARED_DIR={env} is not a folder")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point every multilc cache at a per-test temporary folder."""
    cache = tmp_path_factory.mktemp("multilc-cache")
    monkeypatch.setenv("MULTILC_CACHE_DIR", str(cache))
    yield cache


pytest_plugins = ["multilc.testing.pytest_plugin"]
