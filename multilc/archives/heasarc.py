"""Gamma-ray-burst triggers and IceCube events from HEASARC, through TAP.

Archives
    ``heasarc.fermi_gbm``
        Fermi GBM Trigger Catalog, HEASARC table ``FERMIGTRIG`` (every GBM
        trigger; bursts are a subset, also in ``FERMIGBRST``).
    ``heasarc.bepposax``
        BeppoSAX GRBM GRB catalog, HEASARC table ``SAXGRBMGRB``.
    ``heasarc.icecube``
        HEASARC's copy of the IceCube 2008-2018 point-source event release,
        table ``icecubepsc`` (the same events as the ``icecube`` archive, which
        reads the release files; see `multilc.archives.icecube`).

Service
    HEASARC Xamin TAP, ``https://heasarc.gsfc.nasa.gov/xamin/vo/tap``
    (astroquery 0.4.11 ``Heasarc.VO_URL + "/tap"``; still the TAP base used in
    public code in 2026, e.g. ``.../xamin/vo/tap/sync`` queries of
    ``fermigbrst`` and ``icecubepsc``; no move of the TAP service was found).
    Targets go up as a TAP upload ``TAP_UPLOAD.mytable`` (columns ``objectid``
    int64, ``ra``, ``dec`` float64 deg), ``chunk_size`` targets per request
    (default 50,000, the chunk size the tutorial code ran 500,000 targets
    with; 500 for ``heasarc.icecube``, whose answers are ~100 rows per target).

Sync or async
    Uploads of up to ``sync_max_targets`` targets (default 5,000) use a
    synchronous query (``TAPService.run_sync``: one HTTP POST, least overhead);
    bigger uploads run as asynchronous UWS jobs (``run_async``), because a
    50,000-target join took 35-45 s per chunk in the tutorial's 500,000-target
    run and a single HTTP request held open that long is what proxies and
    load balancers cut.  Both send the same ADQL and upload.  ``MAXREC`` is
    ``maxrec`` (default 1,000,000); a result the service cut
    (``QUERY_STATUS=OVERFLOW``) is an error advising a smaller chunk size,
    never a silent truncation.

Query (GRB catalogs)::

    SELECT cat.name, cat.ra, cat.dec, cat.error_radius, cat."time", mt.objectid
    FROM <table> AS cat, TAP_UPLOAD.mytable AS mt
    WHERE cat.error_radius <= <max_error_radius in deg>
    AND CONTAINS(POINT('ICRS', mt.ra, mt.dec),
                 CIRCLE('ICRS', cat.ra, cat.dec, cat.error_radius)) = 1

    A target matches a trigger when it lies inside the trigger's own error
    circle; circles larger than ``max_error_radius`` (default 1 deg Fermi,
    3 deg BeppoSAX, the caps of the tutorial code) are ignored.  ``"time"`` is
    quoted because strict ADQL 2.0 reserves TIME; HEASARC accepts both.  Rows
    without a position (null ra/dec/error_radius; 245 of the 1,082 SAXGRBMGRB
    bursts) cannot satisfy CONTAINS.  ``match="nearest"`` keeps only the
    closest trigger per target (default ``"all"``).

Columns and units
    ``name`` (trigger/burst name -> ``event_id``), ``ra``, ``dec`` [deg,
    J2000], ``error_radius`` [deg], ``time`` [MJD].  These names are those of
    HEASARC's TAP tables as used by the tutorial code's working query
    (nasa-fornax/fornax-demo-notebooks ``code_src/heasarc_functions.py``; the
    older Browse interface it used until 2023 returned ``TRIGGER_TIME`` for
    FERMIGTRIG, TAP exposes the standardised ``time``).  NOT verified against
    HEASARC's own column metadata (the TAP_SCHEMA could not be read here):
    that ``error_radius`` is in degrees (the tutorial's 1/3 deg caps assume
    so) and that ``time`` is UTC.  The separation is
    computed here (astropy) between the target and the trigger position.

Times
    The trigger MJDs are spacecraft (low Earth orbit) times: time system
    ``"mjd_utc_geocentric"`` of `multilc.timescales` (UTC, geocentric, < 23 ms
    from the spacecraft), converted to MJD(TDB) at the barycentre towards the
    target.  Events carry no energy (NaN).

``heasarc.icecube``::

    SELECT cat.ra, cat.dec, cat.error_radius, cat."time", cat.event_energy, mt.objectid
    FROM icecubepsc AS cat, TAP_UPLOAD.mytable AS mt
    WHERE 1 = CONTAINS(POINT('ICRS', cat.ra, cat.dec),
                       CIRCLE('ICRS', mt.ra, mt.dec, <max_search_radius in deg>))
    AND DISTANCE(POINT('ICRS', mt.ra, mt.dec), POINT('ICRS', cat.ra, cat.dec))
        < cat.error_radius

    ``event_energy`` is linear GeV and ``time`` the release's UT1 MJD: both
    from public code using the table (the tutorial takes log10 of
    ``event_energy``; another selects ``event_energy >= 1e6`` for "> 1 PeV"),
    not from HEASARC's documentation.  ``top_n``, ``match``, the duplicate
    rule and the time conversion are those of the ``icecube`` archive (one
    implementation, `multilc.archives.icecube.events_from_candidates`).

Errors
    An ADQL error document (HTTP 400, ``QUERY_STATUS=ERROR``) or an answer
    that is not a VOTable (an HTML page) is a permanent failure naming the
    archive and the targets; HTTP 429/5xx, timeouts and broken connections are
    transient (retried by the engine).  A failed chunk never discards other
    chunks or archives.

File format ``heasarc.catalog``
    A table exported from HEASARC (CSV with a header such as
    ``name,ra,dec,time[,error_radius,...]``, or a VOTable) matched locally to
    given targets with the same rule::

        MultiBandLightCurve.read(path, format="heasarc.catalog", targets=...,
                                 catalog="bepposax", error_radius=2 * u.deg)

    Exports without an ``error_radius`` column need ``error_radius=`` (an
    angle Quantity used for every row).  Rows without a position or time are
    skipped and counted (``lc.report.dropped``).
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.config import ConfigItem, ConfigNamespace
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table
from astropy.time import Time

from multilc.archives import icecube as _icecube
from multilc.collect.api import Archive, ParseResult, check_radius, http_session, \
    register_archive
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, html_answer_of,
                                      merge_dropped, record_last_response)
from multilc.errors import FileFormatError, InputError
from multilc.io.registry import register_file_format
from multilc.lightcurve import MultiBandLightCurve, make_events
from multilc.timescales import to_mjd_tdb

__all__ = ["FermiGBM", "BeppoSAX", "HeasarcIceCube", "conf", "grb_adql", "icecube_adql",
           "read_catalog_file", "CATALOGS"]


# --------------------------------------------------------------------------- settings
class Conf(ConfigNamespace):
    """Settings of the HEASARC readers (``MULTILC_HEASARC_<NAME>`` overrides)."""

    tap_url = ConfigItem("https://heasarc.gsfc.nasa.gov/xamin/vo/tap",
                         "Base URL of HEASARC's TAP service.")
    fermi_gbm_table = ConfigItem("fermigtrig", "TAP table of the Fermi GBM trigger catalog.")
    bepposax_table = ConfigItem("saxgrbmgrb", "TAP table of the BeppoSAX GRBM GRB catalog.")
    icecube_table = ConfigItem("icecubepsc", "TAP table of the IceCube point-source events.")
    chunk_size = ConfigItem(50_000, "Targets per upload for the GRB catalogs.")
    icecube_chunk_size = ConfigItem(500, "Targets per upload for heasarc.icecube.")
    sync_max_targets = ConfigItem(5_000, "Largest upload sent as a synchronous query; "
                                  "bigger ones run as asynchronous jobs.")
    maxrec = ConfigItem(1_000_000, "MAXREC sent with every query (0: service default).")
    async_wait = ConfigItem(3600.0, "Longest wait for an asynchronous job [s].")


conf = Conf()

#: Name of the uploaded target table (``TAP_UPLOAD.mytable``).
UPLOAD_NAME = "mytable"

#: ``catalog=`` keyword of the file reader -> archive name.
CATALOGS = {"fermi_gbm": "heasarc.fermi_gbm", "bepposax": "heasarc.bepposax"}

#: Columns the GRB query selects (TAP column names, see the module docstring).
GRB_COLUMNS = ("name", "ra", "dec", "error_radius", "time", "objectid")
#: Columns the IceCube query selects.
ICECUBE_COLUMNS = ("ra", "dec", "error_radius", "time", "event_energy", "objectid")

#: Time system of the trigger times (see `multilc.timescales.TIME_SYSTEMS`).
TIME_SYSTEM = "mjd_utc_geocentric"

#: What a GRB-catalog join must hold.  Units are those of HEASARC's TAP
#: columns as the module docstring gives them; a unit the VOTable declares is
#: converted (an ``error_radius`` declared in arcsec is not taken for degrees).
#: Positions and times may be null (245 SAXGRBMGRB bursts have no position):
#: such rows are counted as "no position" / "no time".  Plausible ranges:
#: RA 0-360 deg, Dec -90-90 deg, an error radius above 0 and at most 180 deg
#: (half the sky; larger is not an angle on the sphere), and `MJD_RANGE`.
GRB_CONTRACT = ResponseContract(
    archive="heasarc", what="GRB catalog join",
    fields=(Field("objectid", "int"),
            Field("name", "str", nullable=True),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0), nullable=True),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0), nullable=True),
            Field("error_radius", "float", unit=u.deg, positive=True, valid=(None, 180.0),
                  nullable=True),
            Field("time", "float", unit=u.d, valid=MJD_RANGE, nullable=True)),
    source="HEASARC TAP tables fermigtrig / saxgrbmgrb (columns relied on by the "
           "tutorial code's query)")
#: What a ``heasarc.icecube`` join must hold.  ``event_energy`` must be a
#: linear energy: the 2008-2018 release's muon-energy proxy spans
#: 10**1.5 - 10**9 GeV, so values outside 10 GeV - 1e10 GeV (for instance
#: log10 values of 2-8, were the table ever served in the release's log10
#: form) are dropped and counted, never stored as GeV.  The HEASARC table
#: documentation saying linear or log10 could not be read here; see
#: docs/archives/heasarc.rst.
ICECUBE_CONTRACT = ResponseContract(
    archive="heasarc.icecube", what="icecubepsc join",
    fields=(Field("objectid", "int"),
            Field("time", "float", unit=u.d, valid=MJD_RANGE),
            Field("event_energy", "float", unit=u.GeV, valid=(10.0, 1e10)),
            Field("error_radius", "float", unit=u.deg, positive=True, valid=(None, 180.0)),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0))),
    source="HEASARC TAP table icecubepsc")

# ADQL 2.0 section 2.1.3 regular identifiers, optionally schema-qualified: a
# table name from the settings must be one, so that it cannot change the query.
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")


# --------------------------------------------------------------------------- ADQL
def _table_name(name, archive):
    if not _TABLE_NAME.match(name):
        raise ValueError(f"{archive}: table name {name!r} is not an ADQL identifier")
    return name


def grb_adql(table, max_error_radius):
    """ADQL joining a GRB catalog with the uploaded targets.

    Parameters
    ----------
    table : str
        TAP table name (``"fermigtrig"``, ``"saxgrbmgrb"``).
    max_error_radius : `~astropy.units.Quantity`
        Largest trigger error radius considered (angle).
    """
    cap = float(max_error_radius.to_value(u.deg))
    return (f'SELECT cat.name, cat.ra, cat.dec, cat.error_radius, cat."time", mt.objectid\n'
            f"FROM {table} AS cat, TAP_UPLOAD.{UPLOAD_NAME} AS mt\n"
            f"WHERE cat.error_radius <= {cap!r}\n"
            "AND CONTAINS(POINT('ICRS', mt.ra, mt.dec), "
            "CIRCLE('ICRS', cat.ra, cat.dec, cat.error_radius)) = 1")


def icecube_adql(table, max_search_radius):
    """ADQL selecting IceCube events whose error circle holds an uploaded target.

    Parameters
    ----------
    table : str
        TAP table name (``"icecubepsc"``).
    max_search_radius : `~astropy.units.Quantity`
        Largest target-event distance considered (angle).
    """
    radius = float(max_search_radius.to_value(u.deg))
    return ('SELECT cat.ra, cat.dec, cat.error_radius, cat."time", cat.event_energy, '
            "mt.objectid\n"
            f"FROM {table} AS cat, TAP_UPLOAD.{UPLOAD_NAME} AS mt\n"
            "WHERE 1 = CONTAINS(POINT('ICRS', cat.ra, cat.dec), "
            f"CIRCLE('ICRS', mt.ra, mt.dec, {radius!r}))\n"
            "AND DISTANCE(POINT('ICRS', mt.ra, mt.dec), POINT('ICRS', cat.ra, cat.dec)) "
            "< cat.error_radius")


def upload_table(batch):
    """The target table sent as ``TAP_UPLOAD.mytable``."""
    return Table({"objectid": np.asarray(batch.objectid, dtype="int64"),
                  "ra": np.asarray(batch.ra, dtype="float64") * u.deg,
                  "dec": np.asarray(batch.dec, dtype="float64") * u.deg})


# --------------------------------------------------------------------------- parse
def grb_events(raw, batch, archive, options):
    """Trigger rows joined with targets -> `ParseResult` of events.

    Shared by the TAP route and the ``heasarc.catalog`` file reader.

    Parameters
    ----------
    raw : `~astropy.table.Table`
        Columns ``name, ra, dec, error_radius, time, objectid`` (deg, MJD UTC;
        declared units are converted), checked against `GRB_CONTRACT`.
    batch : `~multilc.collect.api.Batch`
    archive : str
    options : dict
        ``match`` (``"all"``/``"nearest"``).
    """
    contract = dataclasses.replace(GRB_CONTRACT, archive=archive)
    checked = contract.check(raw, objectids=batch.objectid.tolist())
    dropped = dict(checked.dropped)
    oid = checked["objectid"]
    ra, dec, err, mjd = (checked[c] for c in ("ra", "dec", "error_radius", "time"))
    names = np.asarray(checked["name"]).astype(str)
    no_pos = ~(np.isfinite(ra) & np.isfinite(dec) & np.isfinite(err))
    no_time = ~no_pos & ~np.isfinite(mjd)
    for reason, mask in (("no position", no_pos), ("no time", no_time)):
        if mask.any():
            dropped[reason] = dropped.get(reason, 0) + int(mask.sum())
    keep = ~(no_pos | no_time)
    row = _icecube._target_positions(batch, oid, archive)
    t_ra, t_dec = np.asarray(batch.ra, float)[row], np.asarray(batch.dec, float)[row]
    sep = SkyCoord(t_ra * u.deg, t_dec * u.deg).separation(
        SkyCoord(np.nan_to_num(ra) * u.deg, np.nan_to_num(dec) * u.deg)).deg
    if options.get("match", "all") == "nearest":
        idx = np.flatnonzero(keep)
        best = _icecube._keep_per_target(oid[idx], [sep[idx], mjd[idx]], 1)
        if (~best).any():
            dropped["not the nearest trigger (match='nearest')"] = int((~best).sum())
        keep[idx[~best]] = False
    k = np.flatnonzero(keep)
    tdb = to_mjd_tdb(mjd[k], TIME_SYSTEM, ra=t_ra[k] * u.deg, dec=t_dec[k] * u.deg)
    events = make_events(oid[k], archive, Time(tdb, format="mjd", scale="tdb"),
                         event_id=names[k], error_radius=err[k] * u.deg,
                         separation=sep[k] * u.deg)
    lc = MultiBandLightCurve.from_events(events, **_icecube._object_meta(batch, oid[k]))
    return ParseResult(lc, dropped=dropped)


def _icecube_candidates(raw, archive, objectids=None):
    """The join's rows as the candidate table of `multilc.archives.icecube`.

    Returns the table and the rows dropped by `ICECUBE_CONTRACT`.
    """
    contract = dataclasses.replace(ICECUBE_CONTRACT, archive=archive)
    checked = contract.check(raw, objectids=objectids)
    out = Table()
    out["objectid"] = checked["objectid"]
    out["mjd"] = checked["time"]
    out["energy_gev"] = checked["event_energy"]  # linear GeV (ICECUBE_CONTRACT)
    out["ang_err"] = checked["error_radius"]
    out["ra"] = checked["ra"]
    out["dec"] = checked["dec"]
    return out, checked.dropped


# --------------------------------------------------------------------------- archives
class _HeasarcTAP(Archive):
    """A HEASARC table joined with the uploaded targets through TAP."""

    returns = "events"
    concurrency = 2
    chunk_size = 50_000
    env_prefix = "HEASARC"
    conf = conf
    #: Conf item holding this archive's table name.
    table_setting: str = ""
    #: Conf item holding this archive's chunk size.
    chunk_setting: str = "chunk_size"

    def setting_or(self, name, default):
        if name == "chunk_size":
            name = self.chunk_setting
        return super().setting_or(name, default)

    def table(self):
        """The TAP table name (from the settings)."""
        return _table_name(self.setting(self.table_setting), self.name)

    def adql(self, batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def query(self, batch):
        """Run the join for *batch*; return the result as an astropy Table."""
        return self._run_tap(batch, self.adql(batch))

    def _run_tap(self, batch, adql):
        import pyvo
        import requests
        from pyvo.dal import DALFormatError, DALOverflowWarning, DALQueryError, \
            DALServiceError

        url = self.setting("tap_url")
        session = record_last_response(http_session(self.timeout))
        service = pyvo.dal.TAPService(url, session=session)
        uploads = {UPLOAD_NAME: upload_table(batch)}
        maxrec = int(self.setting("maxrec")) or None
        use_async = len(batch) > int(self.setting("sync_max_targets"))
        with warnings.catch_warnings():
            # An overflow is checked below and reported as an error.
            warnings.simplefilter("ignore", DALOverflowWarning)
            try:
                if use_async:
                    result = service.run_async(adql, uploads=uploads, maxrec=maxrec,
                                               timeout=float(self.setting("async_wait")))
                else:
                    result = service.run_sync(adql, uploads=uploads, maxrec=maxrec)
                table = result.to_table()
            except DALQueryError as exc:
                raise self.error(f"the TAP service at {url} rejected the query: {exc}",
                                 batch) from exc
            except (DALFormatError, DALServiceError) as exc:
                if _connection_problem(exc):
                    raise self.error(f"TAP request to {url} failed: {_short(exc)}", batch,
                                     transient=True) from exc
                if isinstance(exc, DALFormatError):
                    _raise_if_html(session, self.name, batch, exc)
                    raise self.error(f"the answer from {url} is not a TAP result VOTable: "
                                     f"{_short(exc)}", batch) from exc
                code = getattr(exc, "code", None)
                transient = code is None or code == 429 or code >= 500
                raise self.error(f"TAP request to {url} failed: {_short(exc)}", batch,
                                 transient=transient) from exc
            except requests.RequestException as exc:
                raise self.error(f"TAP request to {url} failed: {exc}", batch,
                                 transient=True) from exc
            except Exception as exc:  # e.g. an HTML page the VOTable parser chokes on
                _raise_if_html(session, self.name, batch, exc)
                raise self.error(f"the answer from {url} is not a TAP result VOTable: "
                                 f"{type(exc).__name__}: {_short(exc)}", batch) from exc
        if str(getattr(result, "query_status", "OK")).upper() == "OVERFLOW":
            raise self.error(f"the service cut the result at {len(table)} rows (its row "
                             "limit); use a smaller chunk_size", batch)
        return Table(table, masked=False)


def _raise_if_html(session, archive, batch, exc):
    """Raise `~multilc.collect.api.HTMLPageError` (retried once) when the service sent
    an HTML page."""
    html = html_answer_of(session, archive=archive, what="TAP answer",
                          objectids=batch.objectid.tolist())
    if html is not None:
        raise html from exc


def _connection_problem(exc):
    """True when a pyvo error wraps a timeout, reset or broken transfer.

    pyvo reports a connection dropped while the VOTable is read as a
    DALFormatError whose ``cause`` is the requests/urllib3 error; such
    failures are worth retrying, unlike a body that is not a VOTable.
    """
    import requests
    import urllib3

    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code == 429 or code >= 500
    cause = getattr(exc, "cause", None)
    return isinstance(cause, (requests.RequestException, urllib3.exceptions.HTTPError,
                              ConnectionError, TimeoutError))


def _short(exc, limit=300):
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


class _GRBCatalog(_HeasarcTAP):
    """Triggers whose error circle contains a target (see `multilc.archives.heasarc`)."""

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _check_grb_options(self.name, self.options)

    def adql(self, batch):
        return grb_adql(self.table(), batch.options["max_error_radius"])

    def parse(self, raw, batch):
        return grb_events(raw, batch, self.name, batch.options)


def _check_grb_options(archive, options):
    out = dict(options)
    out["max_error_radius"] = check_radius(out["max_error_radius"], archive=archive,
                                           name="max_error_radius").to(u.deg)
    if out["match"] not in ("all", "nearest"):
        raise ValueError(f"{archive}: match must be 'all' or 'nearest', got {out['match']!r}")
    return out


@register_archive
class FermiGBM(_GRBCatalog):
    """Fermi GBM triggers (HEASARC FERMIGTRIG) whose error circle holds the target.

    Options: ``max_error_radius`` (angle Quantity, default 1 deg),
    ``match`` (``"all"`` or ``"nearest"``).  See `multilc.archives.heasarc`.
    """

    name = "heasarc.fermi_gbm"
    description = "Fermi GBM trigger catalog (HEASARC FERMIGTRIG) via TAP"
    bands = ("heasarc.fermi_gbm",)
    table_setting = "fermi_gbm_table"
    # Tutorial code's cap, "chosen based on a histogram" of error radii.
    default_options = {"max_error_radius": 1 * u.deg, "match": "all"}


@register_archive
class BeppoSAX(_GRBCatalog):
    """BeppoSAX GRBM bursts (HEASARC SAXGRBMGRB) whose error circle holds the target.

    Options: ``max_error_radius`` (angle Quantity, default 3 deg),
    ``match`` (``"all"`` or ``"nearest"``).  See `multilc.archives.heasarc`.
    """

    name = "heasarc.bepposax"
    description = "BeppoSAX GRBM GRB catalog (HEASARC SAXGRBMGRB) via TAP"
    bands = ("heasarc.bepposax",)
    table_setting = "bepposax_table"
    default_options = {"max_error_radius": 3 * u.deg, "match": "all"}


@register_archive
class HeasarcIceCube(_HeasarcTAP):
    """IceCube point-source events from HEASARC's ``icecubepsc`` table.

    Same options and match as the ``icecube`` archive: ``max_search_radius``
    (default 2 deg), ``top_n`` (default None = all), ``match``.
    """

    name = "heasarc.icecube"
    # The same events as the "icecube" release reader: not part of "all".
    in_all = False
    description = "IceCube 2008-2018 point-source events (HEASARC icecubepsc) via TAP"
    bands = ("heasarc.icecube",)
    chunk_size = 500
    table_setting = "icecube_table"
    chunk_setting = "icecube_chunk_size"
    default_options = _icecube.DEFAULT_OPTIONS

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _icecube.check_event_options(self.name, self.options)

    def adql(self, batch):
        return icecube_adql(self.table(), batch.options["max_search_radius"])

    def parse(self, raw, batch):
        options = _icecube.check_event_options(self.name, batch.options)
        candidates, dropped = _icecube_candidates(raw, self.name, batch.objectid.tolist())
        result = _icecube.events_from_candidates(candidates, batch, self.name, options)
        merge_dropped(result.dropped, dropped)
        return result


# --------------------------------------------------------------------------- file format
#: What an exported catalog file must hold (a HEASARC Browse/Xamin export:
#: CSV without units, or a VOTable that declares them).
FILE_CONTRACT = ResponseContract(
    archive="heasarc.catalog", what="catalog file",
    fields=(Field("name", "str", nullable=True),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0), nullable=True),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0), nullable=True),
            Field("time", "float", unit=u.d, valid=MJD_RANGE, nullable=True),
            Field("error_radius", "float", unit=u.deg, positive=True, valid=(None, 180.0),
                  nullable=True, required=False)))


def _read_table(path, table_format):
    path = Path(path)
    if table_format is None:
        suffix = path.suffix.lower()
        table_format = {".xml": "votable", ".vot": "votable", ".votable": "votable",
                        ".fits": "fits", ".fit": "fits", ".csv": "ascii.csv",
                        ".ecsv": "ascii.ecsv"}.get(suffix)
    if not path.is_file():
        raise FileFormatError(path, "no such file")
    try:
        if table_format is None:
            return Table.read(path, format="ascii")
        return Table.read(path, format=table_format)
    except Exception as exc:
        raise FileFormatError(path, f"cannot be read as a table "
                              f"({table_format or 'ascii'}): {exc}") from exc


def read_catalog_file(path, targets=None, *, catalog=None, error_radius=None,
                      max_error_radius=None, match="all", table_format=None):
    """Read a HEASARC GRB-catalog export and match it to *targets*.

    Parameters
    ----------
    path : str or path-like
        CSV (``name,ra,dec,time[,error_radius,...]``, ra/dec in deg, time in
        MJD) or VOTable exported from HEASARC.
    targets : SkyCoord, table, names or `~multilc.samples.Sample`
        Required.
    catalog : {"fermi_gbm", "bepposax"}
        Which catalog the file is (sets the archive name and default cap).
    error_radius : `~astropy.units.Quantity`, optional
        Error radius for every row; required when the file has no
        ``error_radius`` column, and wins over the column when given.
    max_error_radius : `~astropy.units.Quantity`, optional
        Rows with a larger error radius are skipped (default 1 deg Fermi,
        3 deg BeppoSAX).
    match : {"all", "nearest"}
    table_format : str, optional
        astropy format of the file; default from the extension.

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        Events only; ``report.dropped`` counts skipped rows by reason.
    """
    from multilc.collect.engine import CollectionReport

    if catalog not in CATALOGS:
        raise ValueError(f"heasarc.catalog: catalog= must be one of {sorted(CATALOGS)}, "
                         f"got {catalog!r}")
    archive = CATALOGS[catalog]
    cls = FermiGBM if catalog == "fermi_gbm" else BeppoSAX
    options = dict(cls.default_options, match=match)
    if max_error_radius is not None:
        options["max_error_radius"] = max_error_radius
    options = _check_grb_options(archive, options)
    batch = _icecube.batch_from_targets(targets, archive, options)

    table = _read_table(path, table_format)
    try:
        checked = FILE_CONTRACT.check(table)
    except Exception as exc:
        raise FileFormatError(path, f"not a {archive} catalog export: {exc}") from exc
    dropped = dict(checked.dropped)
    if error_radius is not None:
        radius = check_radius(error_radius, archive=archive, name="error_radius")
        err = np.full(len(checked), radius.to_value(u.deg))
    elif "error_radius" in {c.lower() for c in table.colnames}:
        err = checked["error_radius"]
    else:
        raise InputError(f"{archive}: {path} has no error_radius column; give the error "
                         "radius to use for every row, e.g. error_radius=2 * u.deg")

    ra, dec, mjd = checked["ra"], checked["dec"], checked["time"]
    names = np.asarray(checked["name"]).astype(str)
    no_pos = ~(np.isfinite(ra) & np.isfinite(dec) & np.isfinite(err))
    no_time = ~no_pos & ~np.isfinite(mjd)
    cap = options["max_error_radius"].to_value(u.deg)
    too_big = ~no_pos & ~no_time & (err > cap)
    for reason, mask in (("no position", no_pos), ("no time", no_time),
                         (f"error_radius > max_error_radius ({cap:g} deg)", too_big)):
        if mask.any():
            dropped[reason] = dropped.get(reason, 0) + int(mask.sum())
    usable = np.flatnonzero(~(no_pos | no_time | too_big))

    it = ie = np.zeros(0, int)
    sep = np.zeros(0)
    if len(usable) and len(batch):
        trig = SkyCoord(ra[usable] * u.deg, dec[usable] * u.deg, frame="icrs")
        it, ie, d2d, _ = search_around_sky(batch.coord, trig, err[usable].max() * u.deg)
        sep = d2d.deg
    inside = sep <= err[usable][ie]
    it, rows = it[inside], usable[ie[inside]]
    order = np.lexsort((rows, it))
    it, rows = it[order], rows[order]
    raw = Table({"name": names[rows], "ra": ra[rows], "dec": dec[rows],
                 "error_radius": err[rows], "time": mjd[rows],
                 "objectid": np.asarray(batch.objectid, dtype="int64")[it]})
    result = grb_events(raw, batch, archive, options)
    merge_dropped(result.dropped, dropped)
    result.lc.report = CollectionReport(dropped={archive: dict(result.dropped)})
    return result.lc


register_file_format("heasarc.catalog", MultiBandLightCurve, reader=read_catalog_file)
