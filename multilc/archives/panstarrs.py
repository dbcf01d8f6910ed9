"""Pan-STARRS1 DR2 single-epoch detections from MAST (``archive="panstarrs"``).

What is queried
    Two routes give the same light curves:

    ``route="service"`` (small samples)
        The MAST Catalogs API (https://catalogs.mast.stsci.edu/docs/panstarrs.html):
        a cone search of the DR2 ``mean`` object table (``ra``, ``dec``,
        ``radius`` in degrees, at most 0.5 deg; ``nDetections.min``), then one
        request to the ``detection`` table per matched ``objID``.  Responses are
        CSV (default), JSON or VOTable (setting ``response_format``).  Targets
        go in batches of ``chunk_size``; the engine keeps at most
        ``concurrency`` batches in flight.
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
    PS1 FAQ "PS1 timing"); it becomes MJD(TDB) at the solar-system barycentre
    with `multilc.timescales.to_mjd_tdb` (system ``"panstarrs.mjd"``), using
    the object's mean position for the light-travel time.

Missing values and masks
    MAST writes ``-999`` where a value is missing (``default_value`` in the
    DR2 column metadata).  Detections whose ``psfFlux`` or ``psfFluxErr`` is
    missing have no measurement: they are dropped and counted under
    ``"psfFlux or psfFluxErr == -999 (missing)"``.  Negative fluxes are kept.
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

import io
import json
from pathlib import Path

import numpy as np
from astropy import config as _config
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table, vstack
from astropy.time import Time

from multilc.collect.api import (Archive, Failure, ParseResult, PermanentError,
                                 http_request, http_session, register_archive)
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
    chunk_size = _config.ConfigItem(10, "Targets per service batch.")
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
_MISSING_REASON = "psfFlux or psfFluxErr == -999 (missing)"
NAME = "panstarrs"


# --------------------------------------------------------------------------- table parsing
def _json_column(name, values, kind):
    """One column of a MAST catalogs JSON answer, typed from ``info[].type``."""
    missing = np.array([v is None for v in values], dtype=bool)
    if kind in ("long", "int", "short", "unsignedByte", "byte"):
        # 64-bit ids arrive as JSON strings (they do not fit a double).
        arr = np.array([0 if v is None else int(v) for v in values], dtype="int64")
    elif kind in ("double", "float"):
        arr = np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
        missing = np.zeros(len(values), bool)
    elif kind == "boolean":
        arr = np.array([bool(v) if v is not None else False for v in values], dtype=bool)
    else:
        arr = np.array(["" if v is None else str(v) for v in values], dtype=str)
    if missing.any():
        return MaskedColumn(arr, name=name, mask=missing)
    return arr


def _table_from_json(text):
    doc = json.loads(text)
    if not isinstance(doc, dict) or "info" not in doc or "data" not in doc:
        raise ValueError("JSON answer has no 'info' and 'data' members")
    info, data = doc["info"], doc["data"]
    table = Table()
    for i, col in enumerate(info):
        values = [row[i] for row in data]
        table[col["name"]] = _json_column(col["name"], values, col.get("type"))
    return table


def _table_from_votable(content):
    from astropy.io import votable

    data = content.encode() if isinstance(content, str) else content
    return votable.parse_single_table(io.BytesIO(data)).to_table()


def _table_from_csv(text):
    if not text.strip():
        return Table()
    return Table.read(text, format="ascii.csv")


def parse_table(content, fmt):
    """Parse one MAST Catalogs API answer (*content*: str or bytes) of format *fmt*."""
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    if fmt == "json":
        return _table_from_json(text)
    if fmt == "votable":
        return _table_from_votable(content)
    if fmt == "csv":
        return _table_from_csv(text)
    raise ValueError(f"unknown response format {fmt!r}; one of {RESPONSE_FORMATS}")


def _looks_like_html(text):
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype html") or head.startswith("<html")


def _sniff_format(path, content):
    fmt = _SUFFIX_FORMATS.get(Path(path).suffix.lower()) if path else None
    if fmt:
        return fmt
    head = content.lstrip()[:1]
    return {b"{": "json", b"<": "votable"}.get(head if isinstance(head, bytes)
                                                else head.encode(), "csv")


def _column(table, name, dtype="float64"):
    """A table column as a plain array, masked cells as -999 (the archive's marker)."""
    col = table[name]
    if hasattr(col, "mask") and np.any(col.mask):
        return np.ma.filled(col.astype(dtype), MISSING_VALUE)
    return np.asarray(col, dtype=dtype)


# --------------------------------------------------------------------------- conversion
def detections_to_lightcurve(det, objectid, separation, ra, dec, *, infoflag_mask=None):
    """Convert PS1 detection rows to a light curve.

    Parameters
    ----------
    det : `~astropy.table.Table`
        Rows of the DR2 ``detection`` table: ``objID``, ``filterID``,
        ``obsTime``, ``psfFlux``, ``psfFluxErr`` and optionally ``infoFlag``.
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
        Rows removed, by reason.
    """
    dropped = {}
    n = len(det)
    if n == 0:
        return MultiBandLightCurve.empty(), dropped
    flux = _column(det, "psfFlux")
    err = _column(det, "psfFluxErr")
    keep = np.ones(n, bool)
    missing = ~np.isfinite(flux) | ~np.isfinite(err) | (flux == MISSING_VALUE) | \
        (err == MISSING_VALUE)
    if missing.any():
        dropped[_MISSING_REASON] = int(missing.sum())
        keep &= ~missing
    flags = (_column(det, "infoFlag", "int64") if "infoFlag" in det.colnames
             else np.zeros(n, "int64"))
    if infoflag_mask is not None:
        masked = keep & ((flags & int(infoflag_mask)) != 0)
        if masked.any():
            dropped[f"infoFlag & {int(infoflag_mask)}"] = int(masked.sum())
            keep &= ~masked
    filter_id = _column(det, "filterID", "int64")
    bad_filter = keep & ~np.isin(filter_id, list(FILTER_BANDS))
    if bad_filter.any():
        raise ValueError(f"{NAME}: unknown filterID values "
                         f"{sorted(set(filter_id[bad_filter].tolist()))}; PS1 uses 1-5 (grizy)")
    idx = np.flatnonzero(keep)
    if not len(idx):
        return MultiBandLightCurve.empty(), dropped
    ra_deg = u.Quantity(ra).to_value(u.deg)[idx]
    dec_deg = u.Quantity(dec).to_value(u.deg)[idx]
    mjd = to_mjd_tdb(_column(det, "obsTime")[idx], "panstarrs.mjd", ra=ra_deg * u.deg,
                     dec=dec_deg * u.deg)
    f_mjy, e_mjy = jansky_to_flux(flux[idx], err[idx])
    bands = np.array([FILTER_BANDS[int(f)] for f in filter_id[idx]])
    lc = MultiBandLightCurve.from_arrays(
        np.asarray(objectid, dtype="int64")[idx], bands,
        Time(mjd, format="mjd", scale="tdb"), f_mjy, e_mjy,
        flag=flags[idx], source_id=_column(det, "objID", "int64")[idx],
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
    chunk_size = 10
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
        if _looks_like_html(text):
            raise self.error(f"{url} answered with an HTML page where {fmt} was expected",
                             objectids=[objectid])
        return text

    def _query_service(self, batch):
        fmt = self._format()
        session = http_session(self.timeout)
        radius_deg = float(self.radius.to_value(u.deg))
        answers = []
        for oid, ra, dec in zip(batch.objectid, batch.ra, batch.dec):
            oid = int(oid)
            entry = {"objectid": oid, "ra": float(ra), "dec": float(dec), "mean": None,
                     "detections": {}, "error": None}
            try:
                params = {"ra": repr(float(ra)), "dec": repr(float(dec)),
                          "radius": repr(radius_deg),
                          "nDetections.min": int(self.options["min_detections"]),
                          "columns": "[" + ",".join(MEAN_COLUMNS) + "]"}
                entry["mean"] = self._get(session, batch, "mean", params, fmt, oid)
                objects = self._matched_objects(entry["mean"], fmt, ra, dec, oid)
                for obj_id in objects["objID"]:
                    params = {"objID": str(int(obj_id)),
                              "columns": "[" + ",".join(DETECTION_COLUMNS) + "]"}
                    entry["detections"][int(obj_id)] = self._get(
                        session, batch, "detection", params, fmt, oid)
            except PermanentError as exc:
                # One target's bad answer must not discard the batch's others.
                entry["error"] = str(exc)
            answers.append(entry)
        return {"route": "service", "format": fmt, "targets": answers}

    def _matched_objects(self, mean_text, fmt, ra, dec, objectid):
        """Objects of a mean-table cone answer within the radius, nearest first."""
        try:
            mean = parse_table(mean_text, fmt)
        except Exception as exc:
            raise self.error(f"could not read the mean-table {fmt} answer: {exc}",
                             objectids=[objectid]) from exc
        if len(mean) == 0:
            return Table({"objID": np.zeros(0, "int64"), "raMean": np.zeros(0),
                          "decMean": np.zeros(0), "sep": np.zeros(0)})
        missing = [c for c in ("objID", "raMean", "decMean") if c not in mean.colnames]
        if missing:
            raise self.error(f"mean-table answer lacks columns {missing}",
                             objectids=[objectid])
        target = SkyCoord(ra * u.deg, dec * u.deg)
        obj = SkyCoord(_column(mean, "raMean") * u.deg, _column(mean, "decMean") * u.deg)
        sep = target.separation(obj).to(u.arcsec)
        out = Table({"objID": _column(mean, "objID", "int64"),
                     "raMean": _column(mean, "raMean"), "decMean": _column(mean, "decMean"),
                     "sep": sep.value})
        out = out[out["sep"] <= self.radius.to_value(u.arcsec) * (1 + 1e-9)]
        out.sort("sep")
        if self.options["match"] == "nearest":
            out = out[:1]
        return out

    # ------------------------------------------------------------------ parse
    def parse(self, raw, batch):
        """Turn `query`'s answers into a `~multilc.collect.ParseResult`."""
        if raw.get("route") == "bulk":
            return _bulk_parse(self, raw, batch)
        fmt = raw["format"]
        pieces, failures, dropped = [], [], {}
        for entry in raw["targets"]:
            oid = entry["objectid"]
            if entry["error"]:
                failures.append(Failure(NAME, [oid], "PermanentError", entry["error"]))
                continue
            try:
                objects = self._matched_objects(entry["mean"], fmt, entry["ra"],
                                                entry["dec"], oid)
                tables = []
                for obj in objects:
                    det = parse_table(entry["detections"][int(obj["objID"])], fmt)
                    if len(det) == 0:
                        continue
                    det = det[[c for c in DETECTION_COLUMNS if c in det.colnames]]
                    det["_sep"] = obj["sep"]
                    det["_ra"] = obj["raMean"]
                    det["_dec"] = obj["decMean"]
                    tables.append(det)
                if not tables:
                    continue
                det = vstack(tables, metadata_conflicts="silent")
                lc, drops = detections_to_lightcurve(
                    det, np.full(len(det), oid), np.asarray(det["_sep"]) * u.arcsec,
                    np.asarray(det["_ra"]) * u.deg, np.asarray(det["_dec"]) * u.deg,
                    infoflag_mask=self.options["infoflag_mask"])
            except PermanentError as exc:
                failures.append(Failure(NAME, [oid], "PermanentError", str(exc)))
                continue
            except (ValueError, KeyError) as exc:
                failures.append(Failure(NAME, [oid], type(exc).__name__,
                                        f"{NAME}: could not read the answer for objectid "
                                        f"{oid}: {exc}"))
                continue
            pieces.append(lc)
            for k, v in drops.items():
                dropped[k] = dropped.get(k, 0) + v
        lc = MultiBandLightCurve.concat(pieces) if pieces else MultiBandLightCurve.empty()
        return ParseResult(lc, dropped, failures)


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
    table = Table({c: det[c].to_numpy(zero_copy_only=False) for c in det.column_names})
    det_obj = np.asarray(table["objID"], "int64")
    by_obj = {}
    for i, o in enumerate(det_obj):
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
    lc, dropped = detections_to_lightcurve(
        table[np.asarray(rows, int)], np.asarray(oids, "int64"),
        np.asarray(seps) * u.arcsec, np.asarray(ras) * u.deg, np.asarray(decs) * u.deg,
        infoflag_mask=archive.options["infoflag_mask"])
    return ParseResult(lc, dropped)


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
    content = Path(path).read_bytes()
    fmt = file_format or _sniff_format(path, content)
    try:
        det = parse_table(content, fmt)
    except Exception as exc:
        raise ValueError(f"{NAME}: {path} is not a readable PS1 detection {fmt} table: "
                         f"{exc}") from exc
    required = ("objID", "filterID", "obsTime", "psfFlux", "psfFluxErr", "ra", "dec")
    missing = [c for c in required if c not in det.colnames]
    if missing:
        raise ValueError(f"{NAME}: {path} lacks detection columns {missing}; "
                         f"it has {det.colnames}")
    ids = (np.full(len(det), int(objectid)) if objectid is not None
           else _column(det, "objID", "int64"))
    ra = _column(det, "ra") * u.deg
    dec = _column(det, "dec") * u.deg
    if target is not None:
        sep = target.separation(SkyCoord(ra, dec)).to(u.arcsec)
        sep = np.broadcast_to(sep, (len(det),)) * 1
    else:
        sep = np.full(len(det), np.nan) * u.arcsec
    lc, dropped = detections_to_lightcurve(det, ids, sep, ra, dec,
                                           infoflag_mask=infoflag_mask)
    lc.ds.attrs["dropped"] = json.dumps(dropped)
    return lc


register_file_format("panstarrs.detection", MultiBandLightCurve, reader=read_detection_file)
