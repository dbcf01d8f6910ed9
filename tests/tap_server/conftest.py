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
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

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


# --------------------------------------------------------------------------- server logs
#: DaCHS defaults (``dachs config logDir`` / ``stateDir`` on the Debian package).
DEFAULT_LOG_DIR = Path("/var/gavo/logs")
DEFAULT_STATE_DIR = Path("/var/gavo/state")

# dcInfos: "2026-11-24 07:35:11,163 [INFO 1800] Sending to postgres: 'SELECT ...'"
_SQL_LINE = re.compile(r"\[INFO (?P<pid>\d+)\] Sending to postgres: '(?P<sql>.*)'\s*$")
# dcInfos: "... [INFO 1800] taprunner for 9wkwmfd0 finished"
_TAPRUNNER_LINE = re.compile(r"\[INFO (?P<pid>\d+)\] taprunner for (?P<job>\S+) finished")
# web.log access lines: ... "'POST' '/tap/sync' 'HTTP/1.1'" 200 956 "-" "-"
_ACCESS_LINE = re.compile(r"\"'(?P<method>[A-Z]+)' '(?P<path>[^']*)' 'HTTP/[0-9.]+'\" "
                          r"(?P<status>\d{3}) ")


_DECIMAL = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")


def _has_marker(sql, marker):
    """True when *sql* holds *marker* (a string, or a float compared as a number)."""
    if isinstance(marker, str):
        return marker in sql
    return any(abs(float(x) - marker) <= 1e-12 * abs(marker) for x in _DECIMAL.findall(sql))


class ServerQuery(NamedTuple):
    """One SQL statement the DaCHS server sent to PostgreSQL."""

    sql: str
    pid: int
    #: UWS job id when an async job (a ``taprunner`` process) ran it, else None.
    job: str | None


class AccessRecord(NamedTuple):
    """One HTTP request in the DaCHS access log."""

    method: str
    path: str
    status: int


class DachsLogs:
    """What the DaCHS server logged since this object was made.

    Reads the server's own logs: ``dcInfos`` (every SQL statement sent to
    PostgreSQL, with the process id: the web server for sync queries, a
    ``taprunner`` process per async job) and ``web.log`` (the access log).
    Only lines appended after construction are seen, so counts belong to
    the test; tests tell their queries apart from concurrent users of the
    server by a marker (a unique number) in the ADQL.
    """

    def __init__(self, log_dir, state_dir):
        self.info_path = Path(log_dir) / "dcInfos"
        self.access_path = Path(log_dir) / "web.log"
        self.server_pid = int((Path(state_dir) / "web.pid").read_text().strip())
        self._start = {p: p.stat().st_size for p in (self.info_path, self.access_path)}

    def _new_lines(self, path):
        start = self._start[path]
        with path.open("rb") as stream:
            if path.stat().st_size < start:   # rotated: read the new file whole
                start = 0
            stream.seek(start)
            return stream.read().decode("utf-8", "replace").splitlines()

    def queries(self, marker, expect=None, wait=10.0):
        """SQL statements containing *marker*, oldest first, with their async job ids.

        A float *marker* matches any decimal number in the SQL within a relative
        1e-12 of it: the server prints what the reader sent after its unit
        conversions (1.99999891 deg may arrive as ``1.9999989099999997``).

        Waits up to *wait* seconds until at least *expect* statements (and
        the end of every async job that ran one) are logged.
        """
        deadline = time.monotonic() + wait
        while True:
            found, pending = [], {}
            for line in self._new_lines(self.info_path):
                sql = _SQL_LINE.search(line)
                if sql and _has_marker(sql["sql"], marker):
                    pid = int(sql["pid"])
                    found.append([sql["sql"], pid, None])
                    if pid != self.server_pid:
                        pending.setdefault(pid, []).append(found[-1])
                    continue
                end = _TAPRUNNER_LINE.search(line)
                if end and int(end["pid"]) in pending:
                    for entry in pending.pop(int(end["pid"])):
                        entry[2] = end["job"]
            done = (expect is None or len(found) >= expect) and not pending
            if done or time.monotonic() > deadline:
                return [ServerQuery(*entry) for entry in found]
            time.sleep(0.2)

    def requests(self):
        """HTTP requests in the access log since construction."""
        out = []
        for line in self._new_lines(self.access_path):
            hit = _ACCESS_LINE.search(line)
            if hit:
                out.append(AccessRecord(hit["method"], hit["path"], int(hit["status"])))
        return out

    def job_requests(self, job):
        """Access-log records of the UWS job *job* (``.../async/<job>[/...]``)."""
        pattern = re.compile(rf"/async/{re.escape(job)}(?:[/?]|$)")
        return [r for r in self.requests() if pattern.search(r.path)]


@pytest.fixture
def dachs_logs(request, tap_server_url):
    """A `DachsLogs` started at the beginning of the test.

    ``MULTILC_DACHS_LOG_DIR`` / ``MULTILC_DACHS_STATE_DIR`` (written to
    server.env by .ci/dachs/start), else the DaCHS defaults.
    """
    log_dir = Path(os.environ.get("MULTILC_DACHS_LOG_DIR")
                   or _server_env_value("MULTILC_DACHS_LOG_DIR") or DEFAULT_LOG_DIR)
    state_dir = Path(os.environ.get("MULTILC_DACHS_STATE_DIR")
                     or _server_env_value("MULTILC_DACHS_STATE_DIR") or DEFAULT_STATE_DIR)
    try:
        return DachsLogs(log_dir, state_dir)
    except (OSError, ValueError) as exc:
        _missing(request.config, f"cannot read the DaCHS logs in {log_dir} or the server "
                 f"pid in {state_dir}: {exc}")
