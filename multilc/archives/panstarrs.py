"""Pan-STARRS1 DR2 single-epoch detections from MAST (``archive="panstarrs"``).

What is queried
    Two routes give the same light curves:

    ``route="service"`` (small samples)
        The MAST Catalogs API (https://catalogs.mast.stsci.edu/docs/panstarrs.html):
        a cone search of the DR2 ``mean`` object table (``ra``, ``dec``,
        ``radius`` in degrees, at most 0.5 deg; ``nDetections.min``), then one
        request to the ``detection`` table per matched ``objID``.  Responses are
        CSV (default), JSON or VOTable (setting ``response_format``).  Targets
        go in batches of ``chunk_size`` (default 1: the requests are per target
        anyway, and a one-target batch gets the engine's whole retry policy and
        its own cache entry); the engine keeps at most ``concurrency`` batches
        in flight.  With larger batches each target is still queried and
        parsed on its own (`~multilc.collect.contract.run_per_target`).
    ``route="bulk"`` (large samples)
        The PS1 HATS catalogs in MAST's public S3 bucket: the object table
        ``otmo`` (``objID``, ``raMean``, ``decMean``, ``nStackDetections``) is
        crossmatched with the targets, partition by partition, then the
        ``detection`` table is read from the partitions those objects fall in
        and joined **by objID**, not by position (as PS1 recommends: a
        detection's own position scatters around the mean).
    ``route="auto"`` (default) takes the bulk route for samples of at least
    ``bulk_threshold`` targets.

Columns and units
    ``psfFlux``/``psfFluxErr`` are PSF flux densities in Jy, AB system
    (Chambers et al. 2016, arXiv:1612.05560; MAST PS1 DR2 column
    documentation), converted to mJy with `multilc.photometry.jansky_to_flux`.
    ``filterID`` 1-5 are g, r, i, z, y (PS1 ``Filter`` table).  ``infoFlag``
    is kept unchanged in ``flag``.  The archive's ``objID`` is ``source_id``
    and ``separation`` is the distance from the target to the object's mean
    position (``raMean``, ``decMean``).  PS1 detections carry no magnitude,
    so ``mag`` is not filled.

Time
    ``obsTime`` is the MJD of the exposure mid-point in TAI at Haleakala (MAST
    PS1 FAQ "PS1 timing"; MAST "PS1 Detection table fields": "Note these are
    international atomic time rather than UTC"); it becomes MJD(TDB) at the solar-system barycentre
    with `multilc.timescales.to_mjd_tdb` (system ``"panstarrs.mjd"``), using
    the object's mean position for the light-travel time.

Missing values and masks
    Every answer is checked against the response contracts below
    (`DETECTION_CONTRACT`, `MEAN_CONTRACT`): MAST writes ``-999`` where a
    value is missing (MAST "PS1 Detection table fields", "Default Value"
    column); rows with ``-999`` or null in ``obsTime``, ``psfFlux``,
    ``psfFluxErr`` (or positions) are dropped and counted under named reasons
    (``"psfFlux == -999 (missing)"``), as are values outside the plausible
    ranges (time 1950-2050, ``filterID`` 1-5, ``psfFluxErr > 0``).  Declared
    units (VOTable, JSON ``info[].unit``, parquet metadata) are converted.
    An answer without the expected columns is a failure of its target.
    Negative fluxes are kept.  A CSV/JSON/VOTable answer cut short is a
    ``TruncatedResponse`` (retried); a CSV or JSON answer cut exactly after a
    complete row cannot be detected (no declared row count).
    ``infoflag_mask`` (default None: no mask) drops detections with any of
    its bits set in ``infoFlag``; they are counted under
    ``"infoFlag & <mask>"``.

Match policy
    All PS1 objects within the radius (default 1 arcsec) are kept
    (``match="all"``); ``match="nearest"`` keeps only the closest one per
    target.

Files
    ``MultiBandLightCurve.read(path, format="panstarrs.detection")`` reads a
    ``detection`` table saved from the API (CSV, JSON or VOTable).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from astropy import config as _config
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table
from astropy.time import Time

from multilc.archives._bulk import memory_released
from multilc.catalogs.match import angular_separation_deg
from multilc.collect.api import (Archive, HTMLPageError, ParseResult, http_request,
                                 register_archive)
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, ResponseError,
                                      TruncatedResponse, check_not_a_full_page,
                                      count_complete_csv_rows, failure_of,
                                      html_title, looks_like_html, merge_dropped,
                                      run_per_target, table_from_text)
from multilc.io.registry import register_file_format
from multilc.lightcurve import MultiBandLightCurve
from multilc.photometry import jansky_to_flux
from multilc.timescales import to_mjd_tdb

__all__ = ["Conf", "conf", "PanSTARRS", "read_detection_file", "FILTER_BANDS",
           "MISSING_VALUE"]


# --------------------------------------------------------------------------- settings
class Conf(_config.ConfigNamespace):
    """Settings of the Pan-STARRS reader (environment: ``MULTILC_PANSTARRS_<ITEM>``)."""

    api_url = _config.ConfigItem(
        "https://catalogs.mast.stsci.edu/api/v0.1/panstarrs",
        "Base URL of the MAST Catalogs API for Pan-STARRS (release and table are appended).")
    release = _config.ConfigItem(
        "dr2", "PS1 data release of the API (detections exist in dr2 only).")
    response_format = _config.ConfigItem(
        "csv", "Format asked from the API: csv, json or votable.")
    object_catalog = _config.ConfigItem(
        "s3://stpubdata/panstarrs/ps1/public/hats/otmo",
        "HATS object catalog (objID, raMean, decMean, nStackDetections).")
    detection_catalog = _config.ConfigItem(
        "s3://stpubdata/panstarrs/ps1/public/hats/detection",
        "HATS detection catalog (objID, detectID, obsTime, filterID, psfFlux, psfFluxErr).")
    s3_endpoint_url = _config.ConfigItem(
        "", "S3 endpoint for the bulk route (empty: AWS); tests point it at a local server.")
    s3_region = _config.ConfigItem("us-east-1", "Region of the S3 bucket.")
    bulk_threshold = _config.ConfigItem(
        200, "route='auto' takes the bulk route from this many targets on.")
    chunk_size = _config.ConfigItem(
        1, "Targets per service batch (requests are per target; 1 gives each target "
           "the engine's retry policy and its own cache entry).")
    concurrency = _config.ConfigItem(4, "Service batches in flight at once.")


conf = Conf()

# --------------------------------------------------------------------------- constants
#: ``filterID`` -> multilc band.  PS1 ``Filter`` table (MAST PS1 DR2 database
#: documentation): 1 g, 2 r, 3 i, 4 z, 5 y.
FILTER_BANDS = {1: "panstarrs:g", 2: "panstarrs:r", 3: "panstarrs:i", 4: "panstarrs:z",
                5: "panstarrs:y"}
#: Missing-value marker of the PS1 DR2 tables: ``default_value`` ``-999`` in the
#: MAST column metadata (``panstarrs/dr2/mean/metadata``, as recorded in
#: astroquery's ``mast/tests/data/panstarrs_columns.json``).
MISSING_VALUE = -999.0
#: Largest cone radius the MAST Catalogs API accepts (catalogs.mast.stsci.edu
#: API documentation: "radius ... maximum 0.5 degrees").
MAX_API_RADIUS = 0.5 * u.deg
#: Rows asked per answer (``pagesize``).  The MAST Catalogs API pages its
#: answers (parameters ``page``/``pagesize``: catalogs.mast.stsci.edu/docs;
#: astroquery's ``mast.conf.pagesize`` default is 50000).  An answer holding
#: exactly this many rows may have more on a next page: that is refused,
#: never taken as the whole answer (no PS1 object has that many detections;
#: only a very large cone in a dense field could fill a page).
PAGE_SIZE = 50000
#: Columns asked from the ``mean`` table in the cone search.
MEAN_COLUMNS = ("objID", "raMean", "decMean", "nDetections")
#: Columns asked from the ``detection`` table (names of the DR2 Detection table).
DETECTION_COLUMNS = ("objID", "detectID", "filterID", "obsTime", "ra", "dec", "psfFlux",
                     "psfFluxErr", "infoFlag")
#: Columns read from the HATS catalogs (bulk route).
HATS_OBJECT_COLUMNS = ("objID", "raMean", "decMean", "nStackDetections")
HATS_DETECTION_COLUMNS = ("objID", "detectID", "obsTime", "filterID", "psfFlux", "psfFluxErr")
#: Formats of the API and the file suffixes that identify them.
RESPONSE_FORMATS = ("csv", "json", "votable")
_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".xml": "votable", ".vot": "votable",
                   ".votable": "votable"}
NAME = "panstarrs"


# --------------------------------------------------------------------------- contracts
#: Where the PS1 DR2 column units, types and "no value" markers are documented:
#: the MAST "PS1 Detection table fields" and "PS1 MeanObject table fields" pages
#: (outerspace.stsci.edu/display/PANSTARRS), whose "Default Value" column gives
#: -999 for ``obsTime``, ``ra``, ``dec``, ``psfFlux``, ``psfFluxErr`` and whose
#: "Unit" column gives days (obsTime), degrees (ra, dec, raMean, decMean) and
#: Jy (psfFlux, psfFluxErr).
PS1_FIELDS_DOC = ("MAST PS1 DR2 'PS1 Detection table fields' / 'PS1 MeanObject table "
                  "fields' (outerspace.stsci.edu/display/PANSTARRS): units and the "
                  "default value -999 of each column")
#: Plausible PS1 flux density: PS1 saturates near 12-13 mag (Magnier et al. 2020,
#: ApJS 251, 6), i.e. ~0.05 Jy; anything beyond 10^4 Jy (AB mag -1.1) is not a
#: measurement.
MAX_FLUX_JY = 1e4
#: The ``detection`` answer (service route, HATS route and saved files).
DETECTION_CONTRACT = ResponseContract(
    archive="panstarrs", what="detection table", source=PS1_FIELDS_DOC,
    fields=(Field("objID", "int"),
            Field("filterID", "int", valid=(1, 5)),
            Field("obsTime", "float", unit=u.d, sentinels=(MISSING_VALUE,), valid=MJD_RANGE),
            Field("psfFlux", "float", unit=u.Jy, sentinels=(MISSING_VALUE,),
                  valid=(-MAX_FLUX_JY, MAX_FLUX_JY)),
            Field("psfFluxErr", "float", unit=u.Jy, sentinels=(MISSING_VALUE,),
                  positive=True, valid=(None, MAX_FLUX_JY)),
            Field("infoFlag", "int", required=False, nullable=True, fill=0)))
#: Detection positions (saved files only: the light-travel time uses them there).
POSITION_CONTRACT = ResponseContract(
    archive="panstarrs", what="detection table", source=PS1_FIELDS_DOC,
    fields=(Field("ra", "float", unit=u.deg, sentinels=(MISSING_VALUE,), valid=(0, 360)),
            Field("dec", "float", unit=u.deg, sentinels=(MISSING_VALUE,),
                  valid=(-90, 90))))
#: The ``mean`` cone-search answer.
MEAN_CONTRACT = ResponseContract(
    archive="panstarrs", what="mean-object cone answer", source=PS1_FIELDS_DOC,
    fields=(Field("objID", "int"),
            Field("raMean", "float", unit=u.deg, sentinels=(MISSING_VALUE,),
                  valid=(0, 360)),
            Field("decMean", "float", unit=u.deg, sentinels=(MISSING_VALUE,),
                  valid=(-90, 90))))

# JSON ``info[].type`` names of integer, float and boolean columns (MAST catalogs
# API JSON as recorded in astroquery's mast/tests/data/panstarrs.json).
_JSON_INT = ("long", "int", "short", "unsignedByte", "byte")
_JSON_FLOAT = ("double", "float")


# --------------------------------------------------------------------------- table parsing
def _json_doc(text, objectids=None, what="answer"):
    """Parse JSON text; a document cut off at its end is a `TruncatedResponse`."""
    try:
        return json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        pos = getattr(exc, "pos", None)
        if pos is not None and pos >= len(text.rstrip()) - 1:
            raise TruncatedResponse(f"{what}: the JSON answer ends before the document "
                                    "does: cut off in transmission", archive=NAME,
                                    objectids=objectids) from None
        raise ResponseError(f"{what}: not a readable JSON answer: {exc}", archive=NAME,
                            objectids=objectids) from None


def _table_from_json(text, objectids=None, what="answer"):
    """MAST catalogs JSON ``{"info": [...], "data": [[...]]}`` -> (Table, units).

    ``info`` entries carry ``name``, ``type``, ``db_type`` and ``description``
    (no unit in the recorded answers; a ``unit`` member, if present, is
    returned so the contract checks it).  The JSON answer declares no row
    count, so a cut after a complete row cannot be told from the end.
    """
    doc = _json_doc(text, objectids, what)
    if not isinstance(doc, dict) or "info" not in doc or "data" not in doc or \
            not isinstance(doc["info"], list) or not isinstance(doc["data"], list):
        raise ResponseError(f"{what}: JSON answer has no 'info' and 'data' lists",
                            archive=NAME, objectids=objectids)
    info, data = doc["info"], doc["data"]
    names, units = [], {}
    for col in info:
        if not isinstance(col, dict) or not isinstance(col.get("name"), str):
            raise ResponseError(f"{what}: malformed JSON 'info' entry {str(col)[:80]!r}",
                                archive=NAME, objectids=objectids)
        names.append(col["name"])
        if col.get("unit"):
            units[col["name"]] = str(col["unit"])
    for row in data:
        if not isinstance(row, list) or len(row) != len(names):
            have = len(row) if isinstance(row, list) else "no"
            raise ResponseError(f"{what}: a JSON data row has {have} "
                                f"values for {len(names)} columns", archive=NAME,
                                objectids=objectids)
    table = Table()
    for i, col in enumerate(info):
        values = [row[i] for row in data]
        kind = col.get("type")
        missing = np.array([v is None for v in values], dtype=bool)
        if kind in _JSON_INT or kind in _JSON_FLOAT:
            # 64-bit ids arrive as JSON strings.  Cells that are not numbers stay
            # text, for the contract to refuse with a clear message.
            try:
                if kind in _JSON_INT:
                    arr = np.array([0 if v is None else int(v) for v in values], "int64")
                else:
                    arr = np.array([np.nan if v is None else float(v) for v in values],
                                   "float64")
            except (ValueError, TypeError, OverflowError):
                arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
        elif kind == "boolean":
            arr = np.array([bool(v) if v is not None else False for v in values], dtype=bool)
        else:
            arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
        table[col["name"]] = MaskedColumn(arr, mask=missing) if missing.any() else arr
    return table, units


def parse_table(content, fmt, *, objectids=None, what="answer"):
    """Parse one MAST Catalogs API answer (*content*: str or bytes) of format *fmt*.

    Never treats the text as a file name or URL.  Returns an astropy Table
    (JSON numbers as text cells: `ResponseContract.check` types them).

    Raises
    ------
    ResponseError
        HTML, or text the format's reader rejects.
    TruncatedResponse
        A last CSV row, a JSON document or a VOTable cut short.
    """
    return _parse_with_units(content, fmt, objectids=objectids, what=what)[0]


def _parse_with_units(content, fmt, *, objectids=None, what="answer"):
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    if fmt not in RESPONSE_FORMATS:
        raise ValueError(f"unknown response format {fmt!r}; one of {RESPONSE_FORMATS}")
    if looks_like_html(text):
        raise ResponseError(f"{what}: an HTML page came where {fmt} was expected: "
                            f"{html_title(text)!r}", archive=NAME, objectids=objectids)
    if fmt == "json":
        if not text.strip():
            return Table(), {}
        return _table_from_json(text, objectids, what)
    return table_from_text(content, fmt, archive=NAME, what=what, objectids=objectids), {}


def _check(contract, content, fmt, objectids, what):
    """Parse an answer and check it against *contract*; empty text = no rows."""
    table, units = _parse_with_units(content, fmt, objectids=objectids, what=what)
    if not table.colnames and len(table) == 0:
        return None
    check_not_a_full_page(len(table), PAGE_SIZE, archive=NAME, what=what,
                          objectids=objectids)
    return contract.check(table, objectids=objectids, units=units)


def _check_cut_off(content, fmt, objectids, what):
    """Raise `TruncatedResponse` (or the whole-page error) for a cut-off answer.

    What the query needs to know before the target is let go; `parse` checks
    the rows against the contract.  A CSV answer is not parsed for this (a
    last row cut short, and the row count, are visible in the text: PS1 CSV
    cells hold numbers, never line breaks); JSON and VOTable answers are.
    """
    if fmt != "csv":
        _check(DETECTION_CONTRACT, content, fmt, objectids, what)
        return
    rows = count_complete_csv_rows(content, archive=NAME, what=what, objectids=objectids)
    check_not_a_full_page(rows, PAGE_SIZE, archive=NAME, what=what, objectids=objectids)


def _sniff_format(path, content):
    fmt = _SUFFIX_FORMATS.get(Path(path).suffix.lower()) if path else None
    if fmt:
        return fmt
    head = content.lstrip()[:1]
    return {b"{": "json", b"<": "votable"}.get(head if isinstance(head, bytes)
                                                else head.encode(), "csv")


# --------------------------------------------------------------------------- conversion
def detections_to_lightcurve(det, objectid, separation, ra, dec, *, infoflag_mask=None):
    """Convert checked PS1 detection rows to a light curve.

    Parameters
    ----------
    det : `~multilc.collect.contract.Checked`
        Rows of the DR2 ``detection`` table that passed `DETECTION_CONTRACT`
        (``objID``, ``filterID``, ``obsTime`` [d], ``psfFlux`` and
        ``psfFluxErr`` [Jy], ``infoFlag``).
    objectid : numpy.ndarray of int
        Target of each row.
    separation : `~astropy.units.Quantity`
        Target-object distance of each row [angle] (NaN if unknown).
    ra, dec : `~astropy.units.Quantity`
        Position used for the light-travel time of each row [angle].
    infoflag_mask : int or None
        Drop rows with any of these ``infoFlag`` bits set.

    Returns
    -------
    lc : `~multilc.MultiBandLightCurve`
    dropped : dict
        Rows removed by the mask, by reason (the contract's own drops are in
        ``det.dropped``).
    """
    dropped = {}
    n = len(det)
    if n == 0:
        return MultiBandLightCurve.empty(), dropped
    flags = det["infoFlag"]
    keep = np.ones(n, bool)
    if infoflag_mask is not None:
        masked = (flags & int(infoflag_mask)) != 0
        if masked.any():
            dropped[f"infoFlag & {int(infoflag_mask)}"] = int(masked.sum())
            keep &= ~masked
    idx = np.flatnonzero(keep)
    if not len(idx):
        return MultiBandLightCurve.empty(), dropped
    ra_deg = u.Quantity(ra).to_value(u.deg)[idx]
    dec_deg = u.Quantity(dec).to_value(u.deg)[idx]
    mjd = to_mjd_tdb(det["obsTime"][idx], "panstarrs.mjd", ra=ra_deg * u.deg,
                     dec=dec_deg * u.deg)
    f_mjy, e_mjy = jansky_to_flux(det["psfFlux"][idx], det["psfFluxErr"][idx])
    bands = np.array([FILTER_BANDS[int(f)] for f in det["filterID"][idx]])
    lc = MultiBandLightCurve.from_arrays(
        np.asarray(objectid, dtype="int64")[idx], bands,
        Time(mjd, format="mjd", scale="tdb"), f_mjy, e_mjy,
        flag=flags[idx], source_id=det["objID"][idx],
        separation=u.Quantity(separation)[idx])
    return lc, dropped


# --------------------------------------------------------------------------- archive
@register_archive
class PanSTARRS(Archive):
    """Pan-STARRS1 DR2 detections (MAST Catalogs API or HATS catalogs).

    Options: ``route`` (``"auto"``, ``"service"``, ``"bulk"``), ``match``
    (``"all"`` or ``"nearest"``), ``min_detections`` (``nDetections.min`` of
    the cone search, default 1), ``infoflag_mask`` (int or None).
    """

    name = NAME
    description = "Pan-STARRS1 DR2 detections g r i z y (MAST API or HATS), mJy"
    bands = tuple(FILTER_BANDS.values())
    chunk_size = 1
    concurrency = 4
    default_radius = 1 * u.arcsec
    default_options = {"route": "auto", "match": "all", "min_detections": 1,
                       "infoflag_mask": None}
    env_prefix = "PANSTARRS"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        self.check_choice("route", ("auto", "service", "bulk"))
        self.check_choice("match", ("all", "nearest"))
        if self.radius > MAX_API_RADIUS:
            raise ValueError(f"{NAME}: radius {self.radius} is larger than the "
                             f"{MAX_API_RADIUS} the MAST Catalogs API accepts")

    # ------------------------------------------------------------------ planning
    def _route_for(self, n_targets):
        route = self.options["route"]
        if route == "auto":
            return "bulk" if n_targets >= int(self.setting("bulk_threshold")) else "service"
        return route

    def plan(self, sample):
        route = self._route_for(len(sample))
        if route == "bulk":
            return _bulk_plan(self, sample)
        batches = super().plan(sample)
        for b in batches:
            b.options = {**b.options, "route": "service"}
        return batches

    # ------------------------------------------------------------------ query
    def query(self, batch):
        """Raw answers for *batch* (dict; see `parse`)."""
        if batch.options.get("route") == "bulk":
            return _bulk_query(self, batch)
        return self._query_service(batch)

    def _format(self):
        fmt = str(self.setting("response_format")).lower()
        if fmt not in RESPONSE_FORMATS:
            raise ValueError(f"{NAME}: response_format must be one of {RESPONSE_FORMATS}, "
                             f"got {fmt!r}")
        return fmt

    def _get(self, session, batch, table, params, fmt, objectid):
        base = str(self.setting("api_url")).rstrip("/")
        url = f"{base}/{self.setting('release')}/{table}.{fmt}"
        resp = http_request(self, batch, "GET", url, session=session, params=params,
                            timeout=self.timeout)
        text = resp.text
        if looks_like_html(text):
            # A portal/proxy page with status 200: worth one more try.
            title = html_title(text)
            raise HTMLPageError(f"{url} answered with an HTML page where {fmt} was "
                                f"expected: {title!r}", archive=self.name,
                                objectids=[objectid], title=title)
        return text

    def _query_service(self, batch):
        fmt = self._format()
        session = self.session()  # this worker thread's: connections are reused
        radius_deg = float(self.radius.to_value(u.deg))

        def one(i):
            oid, ra, dec = int(batch.objectid[i]), float(batch.ra[i]), float(batch.dec[i])
            # errors of this target's requests name this target only
            mine = batch.subset(np.arange(len(batch)) == i)
            params = {"ra": repr(ra), "dec": repr(dec), "radius": repr(radius_deg),
                      "nDetections.min": int(self.options["min_detections"]),
                      "pagesize": PAGE_SIZE,
                      "columns": "[" + ",".join(MEAN_COLUMNS) + "]"}
            mean = self._get(session, mine, "mean", params, fmt, oid)
            objects = self._matched_objects(mean, fmt, ra, dec, oid)
            detections = {}
            for obj_id in objects["objID"]:
                params = {"objID": str(int(obj_id)), "pagesize": PAGE_SIZE,
                          "columns": "[" + ",".join(DETECTION_COLUMNS) + "]"}
                text = self._get(session, mine, "detection", params, fmt, oid)
                # Check now: a cut-off answer is retried while the target is in hand.
                _check_cut_off(text, fmt, [oid], "detection table")
                detections[int(obj_id)] = text
            return {"mean": mean, "detections": detections}

        # One target's failure (of any kind) is that target's, not the batch's.
        entries = run_per_target(self, batch, one)
        answers = []
        for i, entry in enumerate(entries):
            answers.append({"objectid": int(batch.objectid[i]), "ra": float(batch.ra[i]),
                            "dec": float(batch.dec[i]), **entry.get("answer", {}),
                            "error": entry.get("error")})
        # "incomplete": some targets failed; such an answer should not be cached.
        return {"route": "service", "format": fmt, "targets": answers,
                "incomplete": any(a["error"] for a in answers)}

    def _matched_objects(self, mean_text, fmt, ra, dec, objectid, dropped=None):
        """Objects of a mean-table cone answer within the radius, nearest first.

        A structured array with ``objID``, ``raMean``, ``decMean`` [deg] and
        ``sep`` [arcsec] (plain numpy: this runs twice per target, in the
        query and the parse).
        """
        checked = _check(MEAN_CONTRACT, mean_text, fmt, [objectid], "mean-object cone answer")
        if checked is not None and dropped is not None:
            merge_dropped(dropped, checked.dropped)
        n = 0 if checked is None else len(checked)
        out = np.zeros(n, dtype=[("objID", "int64"), ("raMean", "float64"),
                                 ("decMean", "float64"), ("sep", "float64")])
        if not n:
            return out
        out["objID"] = checked["objID"]
        out["raMean"] = checked["raMean"]
        out["decMean"] = checked["decMean"]
        out["sep"] = angular_separation_deg(ra, dec, out["raMean"], out["decMean"]) * 3600.0
        out = out[out["sep"] <= self.radius.to_value(u.arcsec) * (1 + 1e-9)]
        out = out[np.argsort(out["sep"], kind="stable")]
        if self.options["match"] == "nearest":
            out = out[:1]
        return out

    # ------------------------------------------------------------------ parse
    def parse(self, raw, batch):
        """Turn `query`'s answers into a `~multilc.collect.ParseResult`."""
        if raw.get("route") == "bulk":
            return memory_released(_bulk_parse(self, raw, batch))
        fmt = raw["format"]
        pieces, failures, dropped = [], [], {}
        for entry in raw["targets"]:
            oid = entry["objectid"]
            if entry.get("error"):
                failures.append(failure_of(NAME, entry))
                continue
            drops = {}
            try:
                lc = self._parse_target(entry, fmt, drops)
            except Exception as exc:  # noqa: BLE001 - any failure is this target's only
                failures.append(_target_failure(exc, oid))
                continue
            merge_dropped(dropped, drops)
            if lc is not None:
                pieces.append(lc)
        lc = MultiBandLightCurve.concat(pieces) if pieces else MultiBandLightCurve.empty()
        return ParseResult(lc, dropped, failures)

    def _parse_target(self, entry, fmt, dropped):
        oid = entry["objectid"]
        objects = self._matched_objects(entry["mean"], fmt, entry["ra"], entry["dec"], oid,
                                        dropped)
        pieces = []
        for obj in objects:
            text = entry["detections"].get(int(obj["objID"]))
            if text is None:
                raise ResponseError(f"no detection answer kept for objID {int(obj['objID'])}",
                                    archive=NAME, objectids=[oid])
            det = _check(DETECTION_CONTRACT, text, fmt, [oid], "detection table")
            if det is None:
                continue
            merge_dropped(dropped, det.dropped)
            n = len(det)
            lc, drops = detections_to_lightcurve(
                det, np.full(n, oid), np.full(n, float(obj["sep"])) * u.arcsec,
                np.full(n, float(obj["raMean"])) * u.deg,
                np.full(n, float(obj["decMean"])) * u.deg,
                infoflag_mask=self.options["infoflag_mask"])
            merge_dropped(dropped, drops)
            if len(lc):
                pieces.append(lc)
        return MultiBandLightCurve.concat(pieces) if pieces else None


def _target_failure(exc, objectid):
    """A per-target `Failure` for any exception (typed multilc errors keep their text)."""
    from multilc.collect.api import ArchiveError, Failure

    text = str(exc)
    if not isinstance(exc, ArchiveError) or NAME not in text:
        text = (f"{NAME}: could not read the answer for objectid {objectid}: "
                f"{type(exc).__name__}: {text}")
    return Failure(NAME, [int(objectid)], type(exc).__name__, text,
                   bool(getattr(exc, "transient", False)))


# --------------------------------------------------------------------------- bulk route
#: Cone radius around a matched object's mean position inside which its
#: detections are looked for, for partition pruning only (rows are then
#: joined by objID).  A detection's position scatters around the mean by far
#: less than this (PS1 astrometry is good to ~0.1 arcsec; high proper-motion
#: stars move a few arcsec over 2009-2015).
DETECTION_SEARCH_RADIUS = 5 * u.arcsec


def _catalog(archive, setting_name):
    from multilc.catalogs import HatsCatalog

    return HatsCatalog(archive.setting(setting_name),
                       endpoint_url=archive.setting("s3_endpoint_url") or None,
                       region=archive.setting("s3_region") or None)


def _bulk_plan(archive, sample):
    """One batch per group of object-catalog partitions the target cones touch."""
    from multilc.archives._bulk import plan_partition_batches

    catalog = _catalog(archive, "object_catalog")
    coord = sample.coord.icrs
    groups = catalog.plan(coord.ra.deg, coord.dec.deg, archive.radius)
    batches = plan_partition_batches(archive, sample, groups)
    for b in batches:
        b.options = {**b.options, "route": "bulk"}
    return batches


def _bulk_query(archive, batch):
    """Object partitions -> cone match -> detection partitions joined by objID."""
    import pyarrow.compute as pc

    from multilc.catalogs import cone_match, nearest_only

    objects = _catalog(archive, "object_catalog")
    partitions = [tuple(p) for p in batch.options["partitions"]]
    obj = objects.read(partitions, list(HATS_OBJECT_COLUMNS), ra=batch.ra, dec=batch.dec,
                       radius=archive.radius)
    missing = [c for c in ("objID", "raMean", "decMean") if c not in obj.column_names]
    if missing:
        raise archive.error(f"object catalog {objects.url} lacks columns {missing}", batch)
    obj_ra = obj["raMean"].to_numpy(zero_copy_only=False)
    obj_dec = obj["decMean"].to_numpy(zero_copy_only=False)
    ti, ri, sep = cone_match(batch.ra, batch.dec, obj_ra, obj_dec, archive.radius)
    obj_id = obj["objID"].to_numpy(zero_copy_only=False).astype("int64")
    if archive.options["match"] == "nearest" and len(ti):
        keep = nearest_only(ti, sep, obj_id[ri])
        ti, ri, sep = ti[keep], ri[keep], sep[keep]
    matches = {"objectid": np.asarray(batch.objectid, "int64")[ti], "objID": obj_id[ri],
               "raMean": obj_ra[ri], "decMean": obj_dec[ri],
               "sep_arcsec": sep.to_value(u.arcsec)}
    detections = None
    if len(ri):
        det_cat = _catalog(archive, "detection_catalog")
        ids = np.unique(obj_id[ri])
        first = {int(i): k for k, i in reversed(list(enumerate(obj_id[ri])))}
        pos_ra = np.array([obj_ra[ri][first[int(i)]] for i in ids])
        pos_dec = np.array([obj_dec[ri][first[int(i)]] for i in ids])
        det_parts = sorted({key for keys in det_cat.touched(pos_ra, pos_dec,
                                                            DETECTION_SEARCH_RADIUS)
                            for key in keys})
        if det_parts:
            detections = det_cat.read(
                det_parts, list(HATS_DETECTION_COLUMNS), ra=pos_ra, dec=pos_dec,
                radius=DETECTION_SEARCH_RADIUS,
                filter=pc.field("objID").isin(ids.tolist()))
            detections = detections.select(
                [c for c in HATS_DETECTION_COLUMNS if c in detections.column_names])
    return {"route": "bulk", "matches": matches, "detections": detections}


def _bulk_parse(archive, raw, batch):
    matches = raw["matches"]
    det = raw["detections"]
    if det is None or det.num_rows == 0 or not len(matches["objID"]):
        return ParseResult(MultiBandLightCurve.empty())
    # The HATS parquet schema may declare units in field metadata: checked.
    checked = DETECTION_CONTRACT.check(det, objectids=batch.objectid.tolist())
    dropped = dict(checked.dropped)
    by_obj = {}
    for i, o in enumerate(checked["objID"]):
        by_obj.setdefault(int(o), []).append(i)
    rows, oids, seps, ras, decs = [], [], [], [], []
    # One copy of an object's detections per target it matched (match="all").
    for k in range(len(matches["objID"])):
        hit = by_obj.get(int(matches["objID"][k]), [])
        rows.extend(hit)
        oids.extend([int(matches["objectid"][k])] * len(hit))
        seps.extend([float(matches["sep_arcsec"][k])] * len(hit))
        ras.extend([float(matches["raMean"][k])] * len(hit))
        decs.extend([float(matches["decMean"][k])] * len(hit))
    order = np.asarray(rows, int)
    sub = dataclasses.replace(checked, columns={k: v[order] for k, v in
                                                checked.columns.items()},
                              index=checked.index[order])
    lc, drops = detections_to_lightcurve(
        sub, np.asarray(oids, "int64"), np.asarray(seps) * u.arcsec,
        np.asarray(ras) * u.deg, np.asarray(decs) * u.deg,
        infoflag_mask=archive.options["infoflag_mask"])
    return ParseResult(lc, merge_dropped(dropped, drops))


# --------------------------------------------------------------------------- files
def read_detection_file(path, *, objectid=None, target=None, infoflag_mask=None,
                        file_format=None):
    """Read a PS1 DR2 ``detection`` table saved from the MAST Catalogs API.

    Parameters
    ----------
    path : str or path-like
        CSV, JSON (``{"info": [...], "data": [...]}``) or VOTable file.
    objectid : int, optional
        Target id given to every row (default: the PS1 ``objID`` of each row).
    target : `~astropy.coordinates.SkyCoord`, optional
        Target position: ``separation`` is measured from it to each
        detection's position (else NaN).
    infoflag_mask : int, optional
        Drop detections with any of these ``infoFlag`` bits set (counted).
    file_format : {"csv", "json", "votable"}, optional
        Default: from the suffix or the first character of the file.

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        The counts of dropped rows are in ``lc.ds.attrs["dropped"]`` (JSON).
    """
    from multilc.errors import FileFormatError

    content = Path(path).read_bytes()
    fmt = file_format or _sniff_format(path, content)
    try:
        table, units = _parse_with_units(content, fmt, what=f"detection file {path}")
        det = DETECTION_CONTRACT.check(table, units=units)
        # Positions of the rows the detection contract kept (no row counted twice).
        pos = POSITION_CONTRACT.check(table[det.index], units=units)
    except (ResponseError, TruncatedResponse) as exc:
        raise FileFormatError(path, f"not a readable PS1 detection {fmt} table: "
                              f"{exc.message}") from exc
    dropped = merge_dropped(dict(det.dropped), pos.dropped)
    det = det.subset(np.isin(np.arange(len(det)), pos.index))
    ids = (np.full(len(det), int(objectid)) if objectid is not None else det["objID"])
    ra = pos["ra"] * u.deg
    dec = pos["dec"] * u.deg
    if target is not None:
        sep = target.separation(SkyCoord(ra, dec)).to(u.arcsec)
        sep = np.broadcast_to(sep, (len(det),)) * 1
    else:
        sep = np.full(len(det), np.nan) * u.arcsec
    lc, drops = detections_to_lightcurve(det, ids, sep, ra, dec,
                                         infoflag_mask=infoflag_mask)
    merge_dropped(dropped, drops)
    lc.ds.attrs["dropped"] = json.dumps(dropped)
    return lc


register_file_format("panstarrs.detection", MultiBandLightCurve, reader=read_detection_file)
