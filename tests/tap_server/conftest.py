"""Fixtures of the ``tap_server`` tier: tests against a real GAVO DaCHS TAP server.

The server is started outside pytest by ``.ci/dachs/start`` (see
docs/dev/tap_server.rst), which loads tables in the schemas of the archives
multilc queries (``heasarc.fermigtrig``, ``heasarc.saxgrbmgrb``,
``heasarc.icecubepsc``, ``gaiadr3.gaia_source``) and writes the TAP URL to
``.ci/dachs/run/tap_url``.

Where the server is found
    ``MULTILC_TAP_SERVER_URL``, else the URL in ``.ci/dachs/run/tap_url``.
What happens when it is not
    The tests skip, except when the tier was selected (``-m tap_server``) and
    the environment variable ``CI`` is set: then they fail, so a CI run that
    asked for this tier cannot pass without it.
"""
import csv
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = REPO_ROOT / ".ci" / "dachs" / "run"
TAP_URL_FILE = RUN_DIR / "tap_url"
SERVER_ENV_FILE = RUN_DIR / "server.env"
DEFAULT_DATA_DIR = Path("/var/gavo/inputs")

#: Tables on the local server, by the logical names readers use.  HEASARC's
#: own service takes unqualified names; the local server answers both the
#: qualified names below and the unqualified ones (copies in schema public).
LOCAL_TABLES = {
    "fermigtrig": "heasarc.fermigtrig",
    "saxgrbmgrb": "heasarc.saxgrbmgrb",
    "icecubepsc": "heasarc.icecubepsc",
    "gaia_source": "gaiadr3.gaia_source",
    "gaia_source_lite": "gaiadr3.gaia_source_lite",
}


def _tier_selected(config):
    """True when the run asked for this tier with ``-m`` (e.g. ``-m tap_server``)."""
    markexpr = config.getoption("markexpr", default="") or ""
    return "tap_server" in markexpr and "not tap_server" not in markexpr


def _missing(config, message):
    """Fail (CI and tier selected) or skip with ``message``."""
    if os.environ.get("CI") and _tier_selected(config):
        pytest.fail(f"tap_server tier selected under CI but {message}", pytrace=False)
    pytest.skip(message)


def _server_env_value(name):
    """Value of ``export NAME=...`` in .ci/dachs/run/server.env, or None."""
    try:
        lines = SERVER_ENV_FILE.read_text().splitlines()
    except OSError:
        return None
    prefix = f"export {name}="
    for line in lines:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def configured_tap_url():
    """The TAP URL from the environment or from .ci/dachs/run/tap_url (None if neither)."""
    url = os.environ.get("MULTILC_TAP_SERVER_URL", "").strip()
    if not url and TAP_URL_FILE.is_file():
        url = TAP_URL_FILE.read_text().strip()
    return url.rstrip("/") or None


@pytest.fixture(scope="session")
def tap_server_url(request):
    """Base URL of the running local TAP server (``.../tap``), checked to answer."""
    url = configured_tap_url()
    if url is None:
        _missing(request.config,
                 "no local TAP server configured: run .ci/dachs/install && .ci/dachs/start "
                 "and export MULTILC_TAP_SERVER_URL (docs/dev/tap_server.rst)")
    try:
        with urllib.request.urlopen(f"{url}/availability", timeout=10) as response:
            answer = response.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        _missing(request.config, f"the TAP server at {url} does not answer: {exc}")
    if "<avl:available>true</avl:available>" not in answer.replace(" ", ""):
        _missing(request.config, f"the TAP server at {url} reports itself unavailable")
    return url


@pytest.fixture(scope="session")
def tap_service(tap_server_url):
    """A :class:`pyvo.dal.TAPService` on the local server."""
    pyvo = pytest.importorskip("pyvo")
    return pyvo.dal.TAPService(tap_server_url)


@pytest.fixture(scope="session")
def tap_server_data_dir(request, tap_server_url):
    """Folder holding the CSV files the server loaded (``<dir>/heasarc/data/*.csv``).

    ``MULTILC_TAP_SERVER_DATA``, else the value .ci/dachs/start recorded, else
    the DaCHS default ``/var/gavo/inputs``.  Tests compute their expected
    answers from these files, i.e. from exactly the rows the server holds.
    """
    path = Path(os.environ.get("MULTILC_TAP_SERVER_DATA")
                or _server_env_value("MULTILC_TAP_SERVER_DATA")
                or DEFAULT_DATA_DIR)
    if not (path / "multilc_tables.json").is_file():
        _missing(request.config,
                 f"the loaded table files are not in {path} (set MULTILC_TAP_SERVER_DATA)")
    return path


def read_loaded_table(data_dir, schema, table):
    """Rows of a loaded CSV as a list of dicts; empty fields (SQL NULL) are None."""
    path = Path(data_dir) / schema / "data" / f"{table}.csv"
    with path.open(newline="") as stream:
        return [{key: (value if value != "" else None) for key, value in row.items()}
                for row in csv.DictReader(stream)]


@pytest.fixture
def readers_on_tap_server(monkeypatch, tap_server_url):
    """Point the HEASARC and Gaia readers at the local server for one test.

    Sets ``MULTILC_HEASARC_TAP_URL`` and ``MULTILC_GAIA_TAP_URL`` and returns
    :data:`LOCAL_TABLES`, the table names to give the readers' table settings.
    """
    monkeypatch.setenv("MULTILC_HEASARC_TAP_URL", tap_server_url)
    monkeypatch.setenv("MULTILC_GAIA_TAP_URL", tap_server_url)
    return dict(LOCAL_TABLES)
