"""Shared pytest fixtures for the multilc test suite."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir():
    env = os.environ.get("MULTILC_SHARED_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir():
    """The project's ``shared/`` folder (reference data beside the checkout).

    Tests that read real archive files from it skip cleanly when it is absent;
    nothing from it is ever copied into the repository.
    """
    path = _shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared reference folder not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point every multilc cache at a per-test temporary folder."""
    cache = tmp_path_factory.mktemp("multilc-cache")
    monkeypatch.setenv("MULTILC_CACHE_DIR", str(cache))
    yield cache


pytest_plugins = ["multilc.testing.pytest_plugin"]
