"""Hubble Catalog of Variables light curves from the MAST catalogs API (archive ``hcv``).

What is queried
    The MAST catalogs API for HSC version 3
    (``https://catalogs.mast.stsci.edu/api/v0.1/hsc/v3``; spacetelescope/notebooks
    ``HCV_API_demo.ipynb``, MAST HSC API docs https://catalogs.mast.stsci.edu/docs/hsc.html):

    1. ``hcvsummary.csv?ra=..&dec=..&radius=..`` (cone search, radius in
       degrees, at most 0.5 deg): one row per HCV object and filter, columns
       ``MatchID, GroupID, SubGroupID, RA, Dec, AutoClass, ExpertClass, Filter,
       MeanMag, MeanCorrMag, MAD, Chi2, VarQualFlag, FilterDetFlag`` (notebook).
    2. ``hcv.csv?MatchID=<id>`` for each kept object: the light curve in
       **every** filter and instrument the HCV has for it (no ``Filter``
       constraint), columns ``MatchID, Filter, MJD, CorrMag, MagErr,
       ImageName`` used here.

    One target costs 1 + (kept objects) requests; the archive is a per-target
    service (``chunk_size`` 1, ``concurrency`` 4).

Match policy
    ``match="nearest"`` (default): the object (MatchID) nearest to the
    target by angular distance computed from the summary ``RA``/``Dec``
    (the API does not sort by distance, so the first row is not the
    nearest); ``match="all"`` keeps every object in the radius.  The
    default differs from the other readers because an HST field resolves
    many sources within an arcsecond of an extragalactic target.

Photometric system
    ``Filter`` values are ``<INSTRUMENT>_<FILTER>`` (``ACS_F814W``,
    ``WFC3_F475W``, ``WFPC2_F606W``) and become bands ``hst:ACS_F814W`` etc.
    HSC v3 / HCV magnitudes are AB magnitudes: "The candidate variables have
    AB magnitudes in the range 15-27 mag" (Bonanos et al. 2019, A&A 630, A92,
    abstract, doi:10.1051/0004-6361/201936026; the HSC source lists come
    from the HLA in ABMAG, Whitmore et al. 2016, AJ 151, 134).  So
    ``F = 3631 Jy * 10**(-0.4 CorrMag)``, ``sigma_F = 0.4 ln(10) F MagErr``
    (`multilc.photometry.mag_to_flux`).  Today's tutorial instead applies an
    ACS VEGAmag zero point and a wrong f_lambda -> f_nu factor (about two
    orders of magnitude off).  ``CorrMag`` is the HCV magnitude with local
    zero-point corrections (Bonanos et al. 2019 sec. 3); ``mag``/``mag_err``
    keep ``CorrMag``/``MagErr``.

Time
    ``MJD`` is taken as UTC at the geocentre (HST in low Earth orbit: < 23 ms)
    and converted to barycentric TDB with `multilc.timescales`
    (``mjd_utc_geocentric``).  NOTE: the HSC/HCV documentation readable here
    does not say whether MJD is the exposure start or mid-point, nor its time
    scale; UTC is assumed (HST archive convention).

Masks
    Rows with a missing ``CorrMag`` or ``MagErr`` are dropped and counted.
    The HCV pre-processing already removed bad images and outliers
    (Bonanos et al. 2019 sec. 3); no further flag is applied.
"""
from __future__ import annotations

import io
import os

import numpy as np
from astropy import config as _config
from astropy import log
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from multilc import photometry
from multilc.collect.api import (Archive, Failure, ParseResult, describe_targets,
                                 http_request, register_archive)
from multilc.io.registry import register_file_format
from multilc.lightcurve import MultiBandLightCurve
from multilc.timescales import to_mjd_tdb

__all__ = ["conf", "Conf", "HcvArchive", "read_hcv_file", "hcv_rows_to_lightcurve",
           "SUMMARY_COLUMNS", "LIGHTCURVE_COLUMNS"]


# --------------------------------------------------------------------------- settings
class Conf(_config.ConfigNamespace):
    """Settings of the HCV reader (``MULTILC_HCV_<ITEM>`` overrides)."""

    url = _config.ConfigItem("https://catalogs.mast.stsci.edu/api/v0.1/hsc",
                             "Base URL of the MAST HSC catalogs API.")
    release = _config.ConfigItem("v3", "HSC release holding the HCV tables.")
    summary_table = _config.ConfigItem("hcvsummary", "HCV summary table (cone search).")
    lightcurve_table = _config.ConfigItem("hcv", "HCV light-curve table (by MatchID).")
    concurrency = _config.ConfigItem(4, "Targets queried at once.")


conf = Conf()

# --------------------------------------------------------------------------- constants
#: Columns of ``hcvsummary`` this reader needs (HCV_API_demo.ipynb).
SUMMARY_COLUMNS = ("MatchID", "RA", "Dec", "Filter")
#: Columns of ``hcv`` this reader needs (HCV_API_demo.ipynb).
LIGHTCURVE_COLUMNS = ("MatchID", "Filter", "MJD", "CorrMag", "MagErr")
#: Largest cone radius the API accepts (HCV_API_demo.ipynb: "<= 0.5 degrees").
MAX_RADIUS = 0.5 * u.deg
#: Time system of ``MJD`` (see the module docstring).
TIME_SYSTEM = "mjd_utc_geocentric"


# --------------------------------------------------------------------------- helpers
def _read_table(text, what):
    """Table from the API's CSV (or a VOTable); empty text -> empty Table."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = text.strip()
    if not stripped:
        return Table()
    head = stripped[:200].lower()
    if head.startswith("<!doctype html") or head.startswith("<html"):
        raise ValueError(f"{what}: got an HTML page instead of CSV")
    if head.startswith("<?xml") or "<votable" in head:
        from astropy.io.votable import parse_single_table

        return parse_single_table(io.BytesIO(stripped.encode())).to_table()
    return Table.read(stripped, format="ascii.csv")


def _require(table, columns, what):
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; has {table.colnames}")


def _floats(column):
    values = np.ma.filled(np.ma.asarray(column, dtype="float64"), np.nan)
    return np.asarray(values, dtype="float64")


def _choose_matches(summary, ra, dec, match):
    """MatchIDs to fetch and their separations [arcsec], nearest first."""
    if len(summary) == 0:
        return [], {}
    ids = np.asarray(summary["MatchID"], dtype="int64")
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
        SkyCoord(_floats(summary["RA"]) * u.deg, _floats(summary["Dec"]) * u.deg)
    ).to_value(u.arcsec)
    best = {}
    for i, s in zip(ids, sep):
        best[int(i)] = min(best.get(int(i), np.inf), float(s))
    order = sorted(best, key=best.get)
    return (order[:1] if match == "nearest" else order), best


def hcv_rows_to_lightcurve(rows, objectid, *, ra, dec, separation=None, label="",
                           name="hcv"):
    """Convert ``hcv`` light-curve rows of one target to a light curve.

    Parameters
    ----------
    rows : `~astropy.table.Table`
        Rows with the columns of `LIGHTCURVE_COLUMNS`.
    objectid : int
        multilc object id.
    ra, dec : float
        Target position [deg] (for the barycentric correction).
    separation : dict of int to float, optional
        Distance target-object [arcsec] by MatchID.
    label : str
    name : str
        Archive name for messages.

    Returns
    -------
    lc, dropped, failures
        `MultiBandLightCurve` (or None), counts of dropped rows by reason,
        list of `~multilc.collect.Failure`.
    """
    dropped, failures = {}, []
    what = f"{name}: light curve of {describe_targets([objectid])}"
    _require(rows, LIGHTCURVE_COLUMNS, what)
    mag = _floats(rows["CorrMag"])
    err = _floats(rows["MagErr"])
    mjd = _floats(rows["MJD"])
    filters = np.asarray([str(f).strip() for f in rows["Filter"]], dtype=object)
    match_ids = np.asarray(rows["MatchID"], dtype="int64")
    keep = np.isfinite(mjd)
    if (~keep).sum():
        dropped["MJD missing"] = int((~keep).sum())
    bad = keep & ~np.isfinite(mag)
    if bad.sum():
        dropped["CorrMag missing"] = int(bad.sum())
    keep &= ~bad
    bad = keep & ~np.isfinite(err)
    if bad.sum():
        dropped["MagErr missing"] = int(bad.sum())
    keep &= ~bad
    bands = np.array(["hst:" + f for f in filters], dtype=object)
    for band in np.unique(bands[keep]):
        try:
            photometry.get_band(band)
        except KeyError:
            sel = keep & (bands == band)
            dropped[f"unknown HST band {band}"] = int(sel.sum())
            failures.append(Failure(name, [int(objectid)], "UnknownBandError",
                                    f"{what}: filter {band[4:]!r} is not an "
                                    "<INSTRUMENT>_<FILTER> band multilc knows; "
                                    f"{int(sel.sum())} rows skipped"))
            keep &= bands != band
    if not keep.any():
        return None, dropped, failures
    mag, err, mjd, bands, match_ids = mag[keep], err[keep], mjd[keep], bands[keep], \
        match_ids[keep]
    flux = np.empty(len(mag))
    flux_err = np.empty(len(mag))
    for band in np.unique(bands):
        sel = bands == band
        f, fe = photometry.mag_to_flux(mag[sel], band, err[sel])
        flux[sel] = f.to_value(u.mJy)
        flux_err[sel] = fe.to_value(u.mJy)
    tdb = to_mjd_tdb(mjd, TIME_SYSTEM, ra=ra * u.deg, dec=dec * u.deg)
    sep = np.array([(separation or {}).get(int(m), np.nan) for m in match_ids])
    lc = MultiBandLightCurve.from_arrays(
        np.full(len(mag), int(objectid)), bands.astype(str),
        Time(tdb, format="mjd", scale="tdb"), flux * u.mJy, flux_err * u.mJy,
        mag=mag * u.mag, mag_err=err * u.mag, source_id=match_ids,
        separation=sep * u.arcsec, label={int(objectid): label},
        ra={int(objectid): ra * u.deg}, dec={int(objectid): dec * u.deg})
    return lc, dropped, failures


# --------------------------------------------------------------------------- archive
@register_archive
class HcvArchive(Archive):
    """Hubble Catalog of Variables light curves (MAST HSC v3 catalogs API).

    Options: ``match`` (``"nearest"``, default, or ``"all"``).  The radius
    must not exceed 0.5 deg (API limit).
    """

    name = "hcv"
    description = "Hubble Catalog of Variables light curves, all filters (MAST HSC v3 API)"
    returns = "photometry"
    chunk_size = 1
    concurrency = 4
    default_radius = 1 * u.arcsec
    default_options = {"match": "nearest"}
    env_prefix = "HCV"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["match"] not in ("nearest", "all"):
            raise ValueError(f"hcv: match={self.options['match']!r}; expected 'nearest' "
                             "or 'all'")
        if self.radius > MAX_RADIUS:
            raise ValueError(f"hcv: radius {self.radius.to(u.deg)} exceeds the API limit "
                             f"of {MAX_RADIUS}")

    def _url(self, table):
        base = str(self.setting("url")).rstrip("/")
        return f"{base}/{self.setting('release')}/{self.setting(table)}.csv"

    def _get(self, batch, url, params, who):
        resp = http_request(self, batch, "GET", url, params=params, timeout=self.timeout)
        text = resp.text
        head = text.lstrip()[:100].lower()
        if head.startswith("<!doctype html") or head.startswith("<html"):
            # A proxy/error page with status 200: worth retrying.
            raise self.error(f"{url} returned an HTML page instead of CSV", objectids=who,
                             transient=True)
        return text

    def query(self, batch):
        """Cone-search hcvsummary, then fetch hcv by MatchID for each kept object.

        Returns
        -------
        dict
            ``{"targets": [{"objectid", "ra", "dec", "label", "summary": csv
            text, "lightcurves": {MatchID: csv text}}]}``.
        """
        out = []
        radius_deg = self.radius.to_value(u.deg)
        for i, oid in enumerate(batch.objectid):
            who = [int(oid)]
            ra, dec = float(batch.ra[i]), float(batch.dec[i])
            summary_text = self._get(batch, self._url("summary_table"),
                                     {"ra": ra, "dec": dec, "radius": radius_deg}, who)
            try:
                summary = _read_table(summary_text, "hcvsummary")
                if len(summary):
                    _require(summary, SUMMARY_COLUMNS, "hcvsummary")
            except ValueError as exc:
                raise self.error(f"unreadable hcvsummary answer: {exc}", objectids=who) \
                    from exc
            ids, _ = _choose_matches(summary, ra, dec, self.options["match"])
            curves = {mid: self._get(batch, self._url("lightcurve_table"),
                                     {"MatchID": mid}, who) for mid in ids}
            out.append({"objectid": int(oid), "ra": ra, "dec": dec,
                        "label": str(batch.label[i]), "summary": summary_text,
                        "lightcurves": curves})
        return {"targets": out}

    def parse(self, raw, batch):
        pieces, dropped, failures = [], {}, []
        for target in raw["targets"]:
            oid = target["objectid"]
            try:
                summary = _read_table(target["summary"], "hcvsummary")
                _, seps = _choose_matches(summary, target["ra"], target["dec"],
                                          self.options["match"])
                for mid, text in target["lightcurves"].items():
                    rows = _read_table(text, f"hcv MatchID {mid}")
                    if len(rows) == 0:
                        dropped["object without light-curve rows"] = \
                            dropped.get("object without light-curve rows", 0) + 1
                        continue
                    lc, drops, fails = hcv_rows_to_lightcurve(
                        rows, oid, ra=target["ra"], dec=target["dec"], separation=seps,
                        label=target["label"], name=self.name)
                    for k, v in drops.items():
                        dropped[k] = dropped.get(k, 0) + v
                    failures.extend(fails)
                    if lc is not None:
                        pieces.append(lc)
            except ValueError as exc:  # one bad target never sinks the others
                failures.append(Failure(self.name, [oid], "ValueError",
                                        f"{self.name}: {exc} ({describe_targets([oid])})"))
        lc = MultiBandLightCurve.concat(pieces) if pieces else MultiBandLightCurve.empty()
        return ParseResult(lc, dropped, failures)


# --------------------------------------------------------------------------- files
def read_hcv_file(path, *, objectid=None, coord=None, label=""):
    """Read an ``hcv`` light-curve table saved from the API (CSV or VOTable).

    Parameters
    ----------
    path : str or path-like
        File with the columns ``MatchID, Filter, MJD, CorrMag, MagErr``.
    objectid : int, optional
        multilc object id; default the file's (single) MatchID.
    coord : `~astropy.coordinates.SkyCoord`, optional
        Target position, needed for the barycentric correction unless the
        file has ``RA``/``Dec`` columns (then their mean is used).
    label : str, optional

    Returns
    -------
    `MultiBandLightCurve`
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        content = fh.read()
    rows = _read_table(content, f"hcv file {path}")
    if len(rows) == 0:
        raise ValueError(f"hcv file {path} has no rows")
    _require(rows, LIGHTCURVE_COLUMNS, f"hcv file {path}")
    match_ids = np.unique(np.asarray(rows["MatchID"], dtype="int64"))
    if objectid is None:
        if len(match_ids) > 1:
            raise ValueError(f"hcv file {path} holds {len(match_ids)} MatchIDs; give "
                             "objectid= (one target per file)")
        objectid = int(match_ids[0])
    if coord is not None:
        if not isinstance(coord, SkyCoord):
            raise TypeError(f"coord must be a SkyCoord, got {type(coord).__name__}")
        ra, dec = float(coord.icrs.ra.deg), float(coord.icrs.dec.deg)
    elif "RA" in rows.colnames and "Dec" in rows.colnames:
        ra, dec = float(np.nanmean(_floats(rows["RA"]))), float(np.nanmean(_floats(rows["Dec"])))
    else:
        raise ValueError(f"hcv file {path} has no RA/Dec columns: pass coord= (SkyCoord) "
                         "for the barycentric time correction")
    lc, dropped, failures = hcv_rows_to_lightcurve(rows, objectid, ra=ra, dec=dec,
                                                   label=label)
    if failures:
        raise ValueError("; ".join(f.message for f in failures))
    if dropped:
        log.info("hcv file: dropped " + ", ".join(f"{n} ({k})" for k, n in dropped.items()))
    return lc if lc is not None else MultiBandLightCurve.empty()


register_file_format("hcv", MultiBandLightCurve, reader=read_hcv_file)
