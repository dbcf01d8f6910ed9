"""Named changing-look AGN samples from the literature, fetched once and cached.

Each sample is a `LiteratureSample` record: the paper (bibcode), the label multilc
gives its objects, the service that lists them (a NED reference code, a VizieR
catalogue or a SIMBAD bibliography query) and the selection rule applied to the
service's answer, written down as code (``select``) and as text (``rule``). The rules
reproduce what the NASA Fornax ``light_curve_collector`` notebook selects today
(``code_src/sample_selection.py``), so results can be compared with it.

`get_sample` runs the query through astroquery once and stores the resulting
`~multilc.samples.Sample` as ECSV in the cache folder; later calls read that file and
need no network. `refresh_sample` re-runs the query and reports what changed.

Service addresses
-----------------
The addresses come, in order of preference, from the environment variables
``MULTILC_NED_URL``, ``MULTILC_VIZIER_URL`` and ``MULTILC_SIMBAD_URL`` (full URL with
scheme, e.g. ``http://127.0.0.1:8080``), else from astroquery's own configuration
(``astroquery.ipac.ned.conf.server``, ``astroquery.vizier.conf.server``,
``astroquery.simbad.conf.server``), read at call time so ``conf.set_temp`` works.
The paths appended are the ones astroquery 0.4.11 requests:

* NED: ``<base>objsearch`` (``base`` ends with ``/``, default
  ``https://ned.ipac.caltech.edu/cgi-bin/``), GET with ``search_type=Search`` and
  ``refcode=<bibcode>``, answer a VOTable (``of=xml_main``).
* VizieR: ``<base>/viz-bin/votable``, POST of a VizieR script (``-source=<catalog>``).
* SIMBAD: TAP at ``<base>/simbad/sim-tap``; astroquery first reads
  ``<base>/simbad/sim-tap/capabilities`` (for the output limit) and then POSTs ADQL to
  ``<base>/simbad/sim-tap/sync``.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import QTable, Table

from .core import Sample, SampleError, merge_samples

__all__ = [
    "DEFAULT_SAMPLE",
    "LiteratureSample",
    "SampleFetchError",
    "cache_directory",
    "get_sample",
    "is_known_sample",
    "list_samples",
    "literature_sample",
    "refresh_sample",
]

#: The sample used when none is named (the Fornax notebook's default).
DEFAULT_SAMPLE = "yang2018"

#: NED sometimes lists one object under two names a fraction of an arcsec apart
#: (Yang+18: J0159+0033 twice, 0.55 arcsec). Rows of one service answer closer than
#: this are merged with `merge_samples`.
DUPLICATE_RADIUS = 1 * u.arcsec

#: VizieR computed ICRS/J2000 position columns requested in addition to the default ones.
VIZIER_COLUMNS = ["*", "_RAJ2000", "_DEJ2000"]

_SERVICE_LOCK = threading.Lock()


class SampleFetchError(SampleError):
    """A literature sample could not be fetched from its service."""


# --------------------------------------------------------------------------------------
# selection rules (applied to the service's table, in the service's row order)


def _all_rows(table: Table) -> Table:
    return table


def _rows(indices: tuple[int, ...]) -> Callable[[Table], Table]:
    def select(table: Table) -> Table:
        missing = [i for i in indices if i >= len(table)]
        if missing:
            raise SampleFetchError(
                f"selection needs rows {list(indices)} but the service returned only "
                f"{len(table)} rows"
            )
        return table[list(indices)]

    return select


def _find_column(table: Table, *candidates: str) -> str:
    for name in candidates:
        if name in table.colnames:
            return name
    raise SampleFetchError(
        f"none of the columns {list(candidates)} in the service answer (columns: {table.colnames})"
    )


def _filled(column, fill):
    return np.asarray(np.ma.filled(np.ma.asarray(column), fill))


def _macleod2019_select(table: Table) -> Table:
    # VizieR FIELD "CLQ?" becomes column "CLQ_" in astropy (invalid XML id characters
    # are replaced by "_"); accept either spelling.
    clq = _filled(table[_find_column(table, "CLQ_", "CLQ?", "CLQ")], 0).astype(float)
    nsigma = _filled(table[_find_column(table, "Nsigma")], np.nan).astype(float)
    return table[(clq > 0) & (nsigma > 3)]


def _green2022_select(table: Table) -> Table:
    notes = _filled(table[_find_column(table, "Notes")], "").astype(str)
    return table[np.char.find(notes, "CLQ") >= 0]


# --------------------------------------------------------------------------------------
# the registry

# The ten changing-look quasars of MacLeod et al. 2016 (their CLQ table: 4 "appear",
# 5 "disappear", 1 "both"), as SDSS designations with redshift. Source: N. P. Ross's
# transcription of that table, d80b2t/WISE_LCs:NPRs_CLQ_list.lis@c349c868 (rows with a
# BEL behaviour; the rows marked "Ruan et al.", "Runnoe et al.", "Gezari et al." are
# previously known objects and not part of the ten). The paper's abstract confirms
# 10 objects, 4 emerging, 5 disappearing, 1 both, 0.20 < z < 0.63.
# Doubt: this list writes J015957.64+003310.4 where LaMassa et al. 2015 write +003310.5.
MACLEOD2016_DESIGNATIONS = (
    ("SDSS J002311.06+003517.5", 0.422),
    ("SDSS J015957.64+003310.4", 0.312),
    ("SDSS J022556.07+003026.7", 0.504),
    ("SDSS J022652.24-003916.5", 0.625),
    ("SDSS J100220.17+450927.3", 0.400),
    ("SDSS J102152.34+464515.6", 0.204),
    ("SDSS J132457.29+480241.2", 0.272),
    ("SDSS J214613.31+000930.8", 0.621),
    ("SDSS J225240.37+010958.7", 0.534),
    ("SDSS J233317.38-002303.4", 0.513),
)


@dataclass(frozen=True)
class LiteratureSample:
    """One named literature sample: where its objects come from and how they are chosen.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"yang2018"``.
    label : str
        Label given to its objects, e.g. ``"Yang 18"``.
    bibcode : str
        ADS bibcode of the paper.
    service : str
        ``"ned"``, ``"vizier"``, ``"simbad"`` or ``"designations"`` (names listed here).
    query : str
        NED reference code, VizieR catalogue or SIMBAD bibcode.
    rule : str
        The selection rule in words (what ``select`` does).
    select : callable
        Table -> Table, applied to the service's answer in its row order.
    positions : str
        Which columns give the positions.
    """

    name: str
    label: str
    bibcode: str
    service: str
    query: str
    rule: str
    select: Callable[[Table], Table]
    positions: str
    aliases: tuple[str, ...] = ()


_REGISTRY_LIST = [
    LiteratureSample(
        "yang2018", "Yang 18", "2018ApJ...862..109Y", "ned", "2018ApJ...862..109Y",
        "every object NED ties to the paper (31 rows; J0159+0033 is listed twice 0.55 "
        "arcsec apart, so 30 objects after merging rows within 1 arcsec)",
        _all_rows, "NED RA/DEC", ("yang18", "yang"),
    ),
    LiteratureSample(
        "lamassa2015", "LaMassa 15", "2015ApJ...800..144L", "ned", "2015ApJ...800..144L",
        "NED row 0 only (the changing-look quasar SDSS J015957.64+003310.5)",
        _rows((0,)), "NED RA/DEC", ("lamassa15", "lamassa"),
    ),
    LiteratureSample(
        "macleod2016", "MacLeod 16", "2016MNRAS.457..389M", "designations",
        "MacLeod et al. 2016 CLQ table",
        "the 10 changing-look quasars of the paper's CLQ table; positions from their SDSS "
        "designations (no service: NED also ties 7 previously known CL AGN to the paper, "
        "and the paper's table is only available as journal HTML)",
        _all_rows, "SDSS designation", ("macleod16",),
    ),
    LiteratureSample(
        "ruan2016", "Ruan 16", "2016ApJ...826..188R", "ned", "2016ApJ...826..188R",
        "every NED row (3: two new CLQs and LaMassa's J0159+0033)",
        _all_rows, "NED RA/DEC", ("ruan16", "ruan"),
    ),
    LiteratureSample(
        "macleod2019", "MacLeod 19", "2019ApJ...874....8M", "vizier", "J/ApJ/874/8",
        "first table of VizieR J/ApJ/874/8, rows with CLQ? > 0 and Nsigma > 3 (17)",
        _macleod2019_select, "VizieR _RAJ2000/_DEJ2000", ("macleod19",),
    ),
    LiteratureSample(
        "sheng2020", "Sheng 20", "2020ApJ...889...46S", "ned", "2020ApJ...889...46S",
        "NED rows 0, 1 and 3 (NED sorts by RA; the Fornax notebook keeps these as the "
        "paper's objects; uncertain)",
        _rows((0, 1, 3)), "NED RA/DEC", ("sheng20", "sheng"),
    ),
    LiteratureSample(
        "green2022", "Green 22", "2022ApJ...933..180G", "vizier", "J/ApJ/933/180",
        "first table of VizieR J/ApJ/933/180, rows whose Notes contain 'CLQ' (19)",
        _green2022_select, "SDSS designation in column SDSS", ("green22", "green"),
    ),
    LiteratureSample(
        "lyu2022", "Lyu 22", "2022ApJ...927..227L", "ned", "2022ApJ...927..227L",
        "every NED row (68; a literature compilation of known CL AGN)",
        _all_rows, "NED RA/DEC", ("lyu22", "lyu2021", "lyu"),
    ),
    LiteratureSample(
        "lopez_navas2022", "Lopez-Navas 22", "2022MNRAS.513L..57L", "simbad",
        "2022MNRAS.513L..57L",
        "SIMBAD objects of the paper, rows 0-3 in SIMBAD's order (the 4 confirmed CL AGN "
        "picked by hand in the Fornax notebook; fragile: SIMBAD does not promise an order)",
        _rows((0, 1, 2, 3)), "SIMBAD ra/dec", ("lopeznavas22", "lopeznavas2022", "lopeznavas"),
    ),
    LiteratureSample(
        "hon2022", "Hon 22", "2022MNRAS.511...54H", "ned", "2022MNRAS.511...54H",
        "every NED row (29)",
        _all_rows, "NED RA/DEC", ("hon22", "hon"),
    ),
]
REGISTRY: dict[str, LiteratureSample] = {entry.name: entry for entry in _REGISTRY_LIST}


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-.+]", "", name.lower())


_LOOKUP: dict[str, str] = {}
for _entry in _REGISTRY_LIST:
    for _key in (_entry.name, _entry.label, *_entry.aliases):
        _LOOKUP[_normalise(_key)] = _entry.name
del _entry, _key


def is_known_sample(name: str) -> bool:
    """Whether ``name`` (key, label or alias, any case) names a literature sample."""
    return isinstance(name, str) and _normalise(name) in _LOOKUP


def literature_sample(name: str) -> LiteratureSample:
    """The registry record of a literature sample.

    Parameters
    ----------
    name : str
        Key (``"yang2018"``), label (``"Yang 18"``) or alias (``"yang18"``).

    Raises
    ------
    SampleError
        Unknown name; the message lists the known ones.
    """
    key = _LOOKUP.get(_normalise(name)) if isinstance(name, str) else None
    if key is None:
        raise SampleError(
            f"unknown literature sample {name!r}; known samples: {', '.join(REGISTRY)}"
        )
    return REGISTRY[key]


# --------------------------------------------------------------------------------------
# cache


def cache_directory(cache_dir=None) -> Path:
    """The folder holding cached literature samples.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        Used as is when given.

    Returns
    -------
    Path
        ``cache_dir``, else ``$MULTILC_CACHE_DIR/samples``, else
        ``platformdirs.user_cache_dir("multilc")/samples``.
    """
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MULTILC_CACHE_DIR")
    if env:
        return Path(env) / "samples"
    try:
        import platformdirs
    except ImportError:  # platformdirs is in the "archives" extra
        return Path.home() / ".cache" / "multilc" / "samples"
    return Path(platformdirs.user_cache_dir("multilc")) / "samples"


def _cache_path(entry: LiteratureSample, cache_dir) -> Path:
    return cache_directory(cache_dir) / f"{entry.name}.ecsv"


def _write_cache(sample: Sample, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sample.write(tmp, overwrite=True, format="ecsv")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


# --------------------------------------------------------------------------------------
# service access


def _timeout_seconds(timeout) -> float:
    if isinstance(timeout, u.Quantity):
        return float(timeout.to_value(u.s))
    return float(timeout)


def _base_url(env_name: str, configured: str, *, trailing_slash: bool) -> str:
    url = os.environ.get(env_name)
    if not url:
        url = configured if "://" in configured else "https://" + configured
    url = url.rstrip("/")
    return url + "/" if trailing_slash else url


def ned_url() -> str:
    """Base URL for NED queries (``objsearch`` is appended by astroquery)."""
    from astroquery.ipac.ned import conf

    return _base_url("MULTILC_NED_URL", conf.server, trailing_slash=True)


def vizier_url() -> str:
    """Base URL for VizieR (``/viz-bin/votable`` is appended)."""
    from astroquery.vizier import conf

    return _base_url("MULTILC_VIZIER_URL", conf.server, trailing_slash=False)


def simbad_url() -> str:
    """Base URL for SIMBAD (``/simbad/sim-tap`` is appended)."""
    from astroquery.simbad import conf

    return _base_url("MULTILC_SIMBAD_URL", conf.server, trailing_slash=False)


@contextlib.contextmanager
def _no_astroquery_cache():
    # astroquery keeps its own response cache on disk; multilc caches the final sample
    # instead, and refresh_sample must really reach the service.
    from astroquery import cache_conf

    with cache_conf.set_temp("cache_active", False):
        yield


def _query_ned(refcode: str, timeout: float) -> tuple[Table, str]:
    from astroquery.ipac.ned import core as ned_core

    base = ned_url()
    # astroquery 0.4.11 copies conf.server into NedClass.OBJ_SEARCH_URL at import time and
    # query_refcode reads it from the module-level ``Ned`` instance, so the address must
    # be set on that instance (restored afterwards, under a lock).
    ned = ned_core.Ned
    with _SERVICE_LOCK, _no_astroquery_cache():
        saved = ned.__dict__.get("OBJ_SEARCH_URL"), ned.__dict__.get("TIMEOUT")
        ned.OBJ_SEARCH_URL = base + "objsearch"
        ned.TIMEOUT = timeout
        try:
            # query_refcode = query_refcode_async + _parse_result; split here so an HTTP
            # error status is raised (and retried) instead of parsed as a VOTable.
            response = ned.query_refcode_async(refcode)
            response.raise_for_status()
            table = ned._parse_result(response)
        finally:
            for attr, value in zip(("OBJ_SEARCH_URL", "TIMEOUT"), saved):
                if value is None:
                    ned.__dict__.pop(attr, None)
                else:
                    setattr(ned, attr, value)
    return table, base + "objsearch"


def _query_vizier(catalog: str, timeout: float) -> tuple[Table, str]:
    from astroquery.vizier import VizierClass

    base = vizier_url()

    class _Vizier(VizierClass):
        # astroquery builds "https://" + server; a full URL (scheme included) is needed
        # to reach a local stand-in over http.
        def _server_to_url(self, return_type="votable"):
            return f"{base}/viz-bin/{return_type}"

    vizier = _Vizier(columns=VIZIER_COLUMNS, row_limit=-1, timeout=timeout)
    with _no_astroquery_cache():
        # get_catalogs = get_catalogs_async + _parse_result; split to raise HTTP errors.
        response = vizier.get_catalogs_async(catalog)
        response.raise_for_status()
        tables = vizier._parse_result(response)
    if len(tables) == 0:
        raise SampleFetchError(f"VizieR returned no table for catalogue {catalog}")
    return tables[0], f"{base}/viz-bin/votable"


def _query_simbad(bibcode: str, timeout: float) -> tuple[Table, str]:
    from astroquery.simbad import SimbadClass
    from pyvo.dal import TAPService

    tap_url = f"{simbad_url()}/simbad/sim-tap"

    class _Simbad(SimbadClass):
        # astroquery builds "https://<mirror>/simbad/sim-tap" and accepts only the two
        # official mirrors; the stand-in needs an arbitrary URL.
        @property
        def tap(self):
            if self._tap is None:
                self._tap = TAPService(baseurl=tap_url, session=self._session)
            return self._tap

    simbad = _Simbad()
    simbad._session.request = _with_timeout(simbad._session.request, timeout)
    table = simbad.query_bibobj(bibcode)
    return table, tap_url


def _with_timeout(request, timeout: float):
    # pyvo passes no timeout to requests; give every SIMBAD request one.
    def wrapped(method, url, **kwargs):
        kwargs.setdefault("timeout", timeout)
        return request(method, url, **kwargs)

    return wrapped


def _is_transient(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout, TimeoutError)):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return status >= 500 or status == 429
    try:
        from pyvo.dal.exceptions import DALServiceError

        if isinstance(exc, DALServiceError):
            code = getattr(exc, "code", None)
            return code is None or code >= 500 or code == 429
    except ImportError:  # pragma: no cover
        pass
    return False


_QUERIES = {"ned": _query_ned, "vizier": _query_vizier, "simbad": _query_simbad}
_SERVICE_NAMES = {"ned": "NED", "vizier": "VizieR", "simbad": "SIMBAD"}


def _fetch_raw(entry: LiteratureSample, timeout: float, retries: int, retry_wait: float):
    query = _QUERIES[entry.service]
    service = _SERVICE_NAMES[entry.service]
    last = None
    for attempt in range(retries + 1):
        try:
            with warnings.catch_warnings():
                # NED/VizieR VOTables trigger astropy VOTable spec warnings; not actionable.
                warnings.simplefilter("ignore", category=Warning)
                return query(entry.query, timeout)
        except Exception as exc:  # network and parse errors come in many types
            last = exc
            if not _is_transient(exc) or attempt == retries:
                break
            time.sleep(retry_wait * 2**attempt)
    raise SampleFetchError(
        f"{service} query {entry.query!r} for literature sample {entry.name!r} failed after "
        f"{attempt + 1} attempt(s): {type(last).__name__}: {last}"
    ) from last


# --------------------------------------------------------------------------------------
# service answer -> Sample

_SDSS_NAME = re.compile(
    r"J?(?P<h>\d{2})(?P<m>\d{2})(?P<s>\d{2}(?:\.\d+)?)(?P<sign>[+\-\u2212])"
    r"(?P<d>\d{2})(?P<dm>\d{2})(?P<ds>\d{2}(?:\.\d+)?)"
)


def position_from_designation(name: str) -> tuple[float, float]:
    """RA, Dec (deg) from an IAU/SDSS-style designation ``Jhhmmss.ss+ddmmss.s``.

    RA = 15 * (hh + mm/60 + ss/3600) deg, Dec = sign * (dd + mm/60 + ss/3600) deg.
    SDSS truncates rather than rounds, so the result can differ from the catalogue
    position by up to about 0.15 arcsec.
    """
    match = _SDSS_NAME.search(str(name).replace(" ", "").removeprefix("SDSS"))
    if match is None:
        raise SampleError(f"{name!r} is not a Jhhmmss.ss+ddmmss.s designation")
    g = match.groupdict()
    ra = 15.0 * (int(g["h"]) + int(g["m"]) / 60 + float(g["s"]) / 3600)
    sign = -1.0 if g["sign"] in "-\u2212" else 1.0
    dec = sign * (int(g["d"]) + int(g["dm"]) / 60 + float(g["ds"]) / 3600)
    return ra, dec


def _column_or_none(table: Table, *names):
    for name in names:
        if name in table.colnames:
            return table[name]
    return None


def _text(column, n) -> np.ndarray:
    if column is None:
        return np.array([""] * n, dtype=str)
    values = _filled(column, "")
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=str)


def _redshift(column, n) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan)
    return _filled(column, np.nan).astype(float)


def _standard_table(entry: LiteratureSample, raw: Table) -> QTable:
    """Columns ``name, ra, dec, redshift`` from a service answer (after selection)."""
    n = len(raw)
    out = QTable()
    if entry.service == "ned":
        out["name"] = _text(_column_or_none(raw, "Object Name"), n)
        ra = raw[_find_column(raw, "RA", "RA(deg)")]
        dec = raw[_find_column(raw, "DEC", "DEC(deg)")]
        out["ra"] = _filled(ra, np.nan).astype(float) * u.deg
        out["dec"] = _filled(dec, np.nan).astype(float) * u.deg
        out["redshift"] = _redshift(_column_or_none(raw, "Redshift"), n)
    elif entry.service == "simbad":
        out["name"] = _text(_column_or_none(raw, "main_id", "MAIN_ID"), n)
        # astroquery >= 0.4.8 (TAP) gives ra/dec in deg; older versions RA/DEC strings.
        if "ra" in raw.colnames:
            out["ra"] = _filled(raw["ra"], np.nan).astype(float) * u.deg
            out["dec"] = _filled(raw["dec"], np.nan).astype(float) * u.deg
        else:
            out["ra"] = raw[_find_column(raw, "RA")]
            out["dec"] = raw[_find_column(raw, "DEC")]
        out["redshift"] = np.full(n, np.nan)
    elif entry.service == "vizier":
        sdss = _column_or_none(raw, "SDSS")
        names = _text(sdss, n)
        out["name"] = np.array(
            [("SDSS " + x if x and not x.startswith("SDSS") else x) for x in names], dtype=str
        )
        if entry.positions.startswith("SDSS designation"):
            if sdss is None:
                raise SampleFetchError(
                    f"VizieR {entry.query}: no SDSS column to read positions from")
            ra_dec = [position_from_designation(x) for x in names]
            out["ra"] = np.array([p[0] for p in ra_dec]) * u.deg
            out["dec"] = np.array([p[1] for p in ra_dec]) * u.deg
        else:
            ra_name = _find_column(raw, "_RAJ2000", "_RA", "RAJ2000", "RA_ICRS")
            dec_name = {"_RAJ2000": "_DEJ2000", "_RA": "_DE", "RAJ2000": "DEJ2000",
                        "RA_ICRS": "DE_ICRS"}[ra_name]
            out["ra"] = raw[ra_name]
            out["dec"] = raw[_find_column(raw, dec_name)]
        out["redshift"] = _redshift(_column_or_none(raw, "z", "zspec", "Z"), n)
    else:  # pragma: no cover - registry is fixed
        raise AssertionError(entry.service)
    out["service_row"] = np.asarray(raw["_service_row"], dtype=np.int64)
    return out


def _designation_sample_table() -> QTable:
    names = [name for name, _ in MACLEOD2016_DESIGNATIONS]
    positions = [position_from_designation(name) for name in names]
    out = QTable()
    out["name"] = np.array(names, dtype=str)
    out["ra"] = np.array([p[0] for p in positions]) * u.deg
    out["dec"] = np.array([p[1] for p in positions]) * u.deg
    out["redshift"] = np.array([z for _, z in MACLEOD2016_DESIGNATIONS], dtype=float)
    out["service_row"] = np.arange(len(names), dtype=np.int64)
    return out


def _build_sample(entry: LiteratureSample, timeout: float, retries: int,
                  retry_wait: float) -> Sample:
    if entry.service == "designations":
        table = _designation_sample_table()
        n_rows, url = len(table), ""
    else:
        raw, url = _fetch_raw(entry, timeout, retries, retry_wait)
        n_rows = len(raw)
        if n_rows == 0:
            raise SampleFetchError(
                f"{_SERVICE_NAMES[entry.service]} returned no rows for {entry.query!r} "
                f"(literature sample {entry.name!r}); nothing was cached"
            )
        raw = Table(raw, copy=True)
        raw["_service_row"] = np.arange(n_rows)
        try:
            selected = entry.select(raw)
        except SampleFetchError as exc:
            raise SampleFetchError(f"literature sample {entry.name!r}: {exc}") from None
        table = _standard_table(entry, selected)
    try:
        sample = Sample.from_table(table, label=entry.label, ra="ra", dec="dec")
    except SampleError as exc:
        raise SampleFetchError(
            f"literature sample {entry.name!r} ({entry.service} {entry.query}): {exc}"
        ) from None
    n_selected = len(sample)
    sample, _report = merge_samples([sample], radius=DUPLICATE_RADIUS)
    sample.meta.clear()
    sample.meta.update(
        {
            "name": entry.name,
            "label": entry.label,
            "bibcode": entry.bibcode,
            "service": entry.service,
            "query": entry.query,
            "url": url,
            "rule": entry.rule,
            "positions": entry.positions,
            "service_rows": int(n_rows),
            "selected_rows": int(n_selected),
            "duplicate_radius_arcsec": float(DUPLICATE_RADIUS.to_value(u.arcsec)),
            "retrieved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    return sample


# --------------------------------------------------------------------------------------
# public functions


def get_sample(name: str = DEFAULT_SAMPLE, *, refresh: bool = False, cache_dir=None,
               timeout=60.0, retries: int = 2, retry_wait: float = 5.0) -> Sample:
    """A literature sample, from the cache or else fetched from its service.

    Parameters
    ----------
    name : str, optional
        Registry key, label or alias (see `list_samples`); default ``"yang2018"``.
    refresh : bool, optional
        Fetch again even if a cached copy exists (the cache is replaced).
    cache_dir : str or path-like, optional
        Folder for the cached ECSV files (default: see `cache_directory`).
    timeout : float or `~astropy.units.Quantity`, optional
        Per-request time limit, seconds.
    retries : int, optional
        Extra attempts after a connection error, time-out or server error (5xx).
    retry_wait : float, optional
        Seconds to wait before the first retry; doubled for each further one.

    Returns
    -------
    Sample
        Columns ``objectid, coord, label, name, redshift, service_row`` (the row of the
        object in the service answer); ``meta`` records the bibcode, service, query,
        URL, selection rule and retrieval time.

    Raises
    ------
    SampleError
        Unknown sample name.
    SampleFetchError
        The service failed after all retries, or returned no rows (nothing is cached then).
    """
    entry = literature_sample(name)
    path = _cache_path(entry, cache_dir)
    if path.is_file() and not refresh:
        try:
            return Sample.read(path)
        except SampleError as exc:
            warnings.warn(f"ignoring unreadable cached sample {path}: {exc}", stacklevel=2)
    sample = _build_sample(entry, _timeout_seconds(timeout), int(retries), float(retry_wait))
    _write_cache(sample, path)
    return sample


def refresh_sample(name: str = DEFAULT_SAMPLE, *, cache_dir=None, timeout=60.0,
                   retries: int = 2, retry_wait: float = 5.0,
                   match_radius: u.Quantity = 2 * u.arcsec,
                   tolerance: u.Quantity = 0.01 * u.arcsec):
    """Fetch a literature sample again, replace the cache, and report what changed.

    Parameters
    ----------
    name : str, optional
        As in `get_sample`.
    cache_dir, timeout, retries, retry_wait
        As in `get_sample`.
    match_radius : `~astropy.units.Quantity`, optional
        An old and a new object closer than this are the same object.
    tolerance : `~astropy.units.Quantity`, optional
        The same object counts as ``"moved"`` when its position changed by more.

    Returns
    -------
    sample : Sample
        The fresh sample (now cached).
    differences : `~astropy.table.QTable`
        One row per change: ``change`` (``"added"``, ``"removed"`` or ``"moved"``),
        ``name``, ``ra``, ``dec`` (deg; new position, old one for removed objects),
        ``shift`` (arcsec; for moved objects, else 0). Empty when nothing changed or
        there was no cached copy to compare with.
    """
    for value, what in ((match_radius, "match_radius"), (tolerance, "tolerance")):
        if not isinstance(value, u.Quantity):
            raise TypeError(f"{what} must be an angle Quantity (e.g. 1 * u.arcsec), got {value!r}")
    entry = literature_sample(name)
    path = _cache_path(entry, cache_dir)
    old = None
    if path.is_file():
        try:
            old = Sample.read(path)
        except SampleError:
            old = None
    new = get_sample(entry.name, refresh=True, cache_dir=cache_dir, timeout=timeout,
                     retries=retries, retry_wait=retry_wait)
    return new, compare_samples(old, new, match_radius=match_radius, tolerance=tolerance)


def compare_samples(old: Sample | None, new: Sample, *, match_radius=2 * u.arcsec,
                    tolerance=0.01 * u.arcsec) -> QTable:
    """Objects added, removed or moved between two versions of a sample.

    Each new object is matched to the nearest old object within ``match_radius``;
    matched pairs further apart than ``tolerance`` are ``"moved"``. See
    `refresh_sample` for the columns.
    """
    rows: list[tuple] = []
    if old is not None and len(old) and len(new):
        idx, sep, _ = new.coord.match_to_catalog_sky(old.coord)
        matched = sep <= match_radius
        used = set(int(i) for i in idx[matched])
        for k in range(len(new)):
            if not matched[k]:
                rows.append(("added", k, None, 0.0))
            elif sep[k] > tolerance:
                rows.append(("moved", k, None, float(sep[k].to_value(u.arcsec))))
        for j in range(len(old)):
            if j not in used:
                rows.append(("removed", None, j, 0.0))
    elif old is not None and len(old):
        rows = [("removed", None, j, 0.0) for j in range(len(old))]
    elif old is not None:
        rows = [("added", k, None, 0.0) for k in range(len(new))]

    def describe(sample, i):
        name = str(sample["name"][i]) if "name" in sample.colnames else ""
        return name, float(sample.coord[i].ra.deg), float(sample.coord[i].dec.deg)

    out = QTable(
        names=("change", "name", "ra", "dec", "shift"),
        dtype=(str, str, float, float, float),
    )
    for change, k, j, shift in rows:
        name, ra, dec = describe(new, k) if k is not None else describe(old, j)
        out.add_row((change, name, ra, dec, shift))
    out["ra"].unit = u.deg
    out["dec"].unit = u.deg
    out["shift"].unit = u.arcsec
    return QTable(out)


def list_samples(cache_dir=None) -> QTable:
    """The literature samples multilc knows.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``name, label, bibcode, service, query, rule, cached`` (bool) and
        ``n_cached`` (objects in the cached copy, -1 when not cached).
    """
    rows = []
    for entry in REGISTRY.values():
        path = _cache_path(entry, cache_dir)
        n_cached = -1
        if path.is_file():
            try:
                n_cached = len(Sample.read(path))
            except SampleError:
                n_cached = -1
        rows.append((entry.name, entry.label, entry.bibcode, entry.service, entry.query,
                     entry.rule, n_cached >= 0, n_cached))
    return QTable(
        rows=rows,
        names=("name", "label", "bibcode", "service", "query", "rule", "cached", "n_cached"),
        dtype=(str, str, str, str, str, str, bool, np.int64),
    )
