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
    (``mjd_utc_geocentric``).  ASSUMPTION: the HSC/HCV documentation we could
    find (MAST HSC API docs, HCV_API_demo.ipynb, Bonanos et al. 2019) says
    neither whether MJD is the exposure start or mid-point nor its time
    scale; UTC is assumed (HST archive convention).  At stake: 60-69 s if
    it were TT; up to half an exposure for start versus mid-point.

Response contract and masks
    Answers are read with `~multilc.collect.contract.table_from_text` (never
    as a file name or URL) and checked against `SUMMARY_CONTRACT` and
    `LIGHTCURVE_CONTRACT`: missing columns or wrong types fail the target;
    null cells and values outside the plausible ranges (MJD from HST's
    launch to 2050, CorrMag 0-40, 0 < MagErr <= 10) are dropped and counted
    by reason.  No numeric "missing" marker is documented for the HCV.
    The HCV pre-processing already removed bad images and outliers
    (Bonanos et al. 2019 sec. 3); no further flag is applied.
"""
from __future__ import annotations

import os

import numpy as np
from astropy import config as _config
from astropy import log
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from multilc import photometry
from multilc.catalogs.match import angular_separation_deg
from multilc.collect.api import (Archive, ArchiveError, Failure, HTMLPageError, ParseResult,
                                 describe_targets, http_request, register_archive)
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, ResponseError,
                                      TruncatedResponse, check_not_a_full_page,
                                      count_complete_csv_rows, failure_of, html_title,
                                      looks_like_html, merge_dropped, run_per_target,
                                      table_from_text)
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
#: Rows asked per answer (``pagesize`` of the MAST catalogs API, which pages
#: its answers: catalogs.mast.stsci.edu/docs; astroquery's default 50000).
#: An answer with exactly this many rows may continue on a next page: refused.
PAGE_SIZE = 50000
#: Time system of ``MJD`` (see the module docstring).
TIME_SYSTEM = "mjd_utc_geocentric"
#: First HST observations: launch 1990 April 24 = MJD 48005 (NASA HST mission
#: page); an HCV time before it is not an observation.
HST_FIRST_MJD = 48005.0
_SOURCE = ("MAST HSC v3 catalogs API (catalogs.mast.stsci.edu/docs/hsc.html), "
           "HCV_API_demo.ipynb; missing values arrive as empty cells (no documented "
           "numeric sentinel); magnitudes AB 15-27 (Bonanos et al. 2019, A&A 630, A92)")
#: The ``hcvsummary`` cone answer.
SUMMARY_CONTRACT = ResponseContract(
    archive="hcv", what="hcvsummary cone answer", source=_SOURCE,
    fields=(Field("MatchID", "int"),
            Field("RA", "float", unit=u.deg, valid=(0, 360)),
            Field("Dec", "float", unit=u.deg, valid=(-90, 90)),
            Field("Filter", "str", required=False, nullable=True)))
#: The ``hcv`` light-curve answer.  No numeric "missing" marker is documented
#: for the HSC/HCV tables; the plausible ranges catch any that appear
#: (-999, 99.99, ...) and count them.
LIGHTCURVE_CONTRACT = ResponseContract(
    archive="hcv", what="hcv light-curve answer", source=_SOURCE,
    fields=(Field("MatchID", "int"),
            Field("Filter", "str"),
            Field("MJD", "float", unit=u.d, valid=(HST_FIRST_MJD, MJD_RANGE[1])),
            Field("CorrMag", "float", unit=u.mag, valid=(0.0, 40.0)),
            Field("MagErr", "float", unit=u.mag, positive=True, valid=(None, 10.0))))


# --------------------------------------------------------------------------- helpers
def _answer_format(text, what, objectids=None):
    """``"csv"``, ``"votable"``, or None for an empty answer; HTML is an error."""
    stripped = text.strip()
    if not stripped:
        return None
    if looks_like_html(stripped):
        raise ResponseError(f"{what}: an HTML page came where CSV was expected: "
                            f"{html_title(stripped)!r}", archive="hcv", objectids=objectids)
    head = stripped[:200].lower()
    return "votable" if head.startswith("<?xml") or "<votable" in head else "csv"


def _read_table(content, what, objectids=None):
    """Table from the API's CSV (or a VOTable); empty text -> empty Table.

    Never takes the text for a file name or URL (`table_from_text`).
    """
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) \
        else content
    fmt = _answer_format(text, what, objectids)
    if fmt is None:
        return Table()
    table = table_from_text(content, fmt, archive="hcv", what=what, objectids=objectids)
    check_not_a_full_page(len(table), PAGE_SIZE, archive="hcv", what=what,
                          objectids=objectids)
    return table


def _check_answer_whole(text, what, objectids=None):
    """Raise unless a light-curve answer is whole (what the query must know).

    A CSV answer is not parsed for this: a last row cut short, and the row
    count, are visible in its text (HCV cells hold numbers and filter names,
    never line breaks); its rows are read and checked once, by `HCV.parse`.
    A VOTable answer is read.
    """
    fmt = _answer_format(text, what, objectids)
    if fmt == "csv":
        rows = count_complete_csv_rows(text, archive="hcv", what=what, objectids=objectids)
        check_not_a_full_page(rows, PAGE_SIZE, archive="hcv", what=what,
                              objectids=objectids)
    elif fmt is not None:
        _read_table(text, what, objectids)


def _checked_summary(content, objectids=None):
    table = _read_table(content, "hcvsummary cone answer", objectids)
    if not table.colnames and not len(table):
        return None
    return SUMMARY_CONTRACT.check(table, objectids=objectids)


def _choose_matches(summary, ra, dec, match):
    """MatchIDs to fetch and their separations [arcsec], nearest first."""
    if summary is None or len(summary) == 0:
        return [], {}
    ids = summary["MatchID"]
    sep = angular_separation_deg(ra, dec, summary["RA"], summary["Dec"]) * 3600.0
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
        Rows with the columns of `LIGHTCURVE_COLUMNS`; checked against
        `LIGHTCURVE_CONTRACT` (declared units converted, nulls and values
        outside the plausible ranges dropped and counted).
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

    Raises
    ------
    ResponseError
        Missing columns, wrong types, incompatible declared units.
    """
    failures = []
    what = f"{name}: light curve of {describe_targets([objectid])}"
    checked = LIGHTCURVE_CONTRACT.check(rows, objectids=[int(objectid)])
    dropped = dict(checked.dropped)
    mag, err, mjd = checked["CorrMag"], checked["MagErr"], checked["MJD"]
    filters = np.asarray([str(f).strip() for f in checked["Filter"]], dtype=object)
    match_ids = checked["MatchID"]
    keep = np.ones(len(checked), bool)
    bands = np.array(["hst:" + f for f in filters], dtype=object)
    for band in np.unique(bands) if len(bands) else []:
        try:
            photometry.get_band(band)
        except KeyError:
            sel = bands == band
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
        if looks_like_html(text):
            # A proxy/error page with status 200: worth retrying.
            title = html_title(text)
            raise HTMLPageError(f"{url} returned an HTML page instead of CSV: {title!r}",
                                archive=self.name, objectids=who, title=title)
        return text

    def query(self, batch):
        """Cone-search hcvsummary, then fetch hcv by MatchID for each kept object.

        Each target is fetched on its own (`run_per_target`): one target's
        failure never costs the others their answers.

        Returns
        -------
        dict
            ``{"targets": [{"objectid", "ra", "dec", "label", "summary": csv
            text, "lightcurves": {MatchID: csv text}} or {"objectid",
            "error"}]}``.
        """
        radius_deg = self.radius.to_value(u.deg)

        def one(i):
            who = [int(batch.objectid[i])]
            ra, dec = float(batch.ra[i]), float(batch.dec[i])
            mine = batch.subset(np.arange(len(batch)) == i)  # errors name this target
            summary_text = self._get(mine, self._url("summary_table"),
                                     {"ra": ra, "dec": dec, "radius": radius_deg,
                                      "pagesize": PAGE_SIZE}, who)
            summary = _checked_summary(summary_text, who)
            ids, _ = _choose_matches(summary, ra, dec, self.options["match"])
            curves = {}
            for mid in ids:
                text = self._get(mine, self._url("lightcurve_table"),
                                 {"MatchID": mid, "pagesize": PAGE_SIZE}, who)
                _check_answer_whole(text, f"hcv MatchID {mid}", who)  # cut-off: asked again
                curves[mid] = text
            return {"summary": summary_text, "lightcurves": curves}

        out = []
        for i, entry in enumerate(run_per_target(self, batch, one)):
            item = {"objectid": int(batch.objectid[i]), "ra": float(batch.ra[i]),
                    "dec": float(batch.dec[i]), "label": str(batch.label[i])}
            if "error" in entry:
                item["error"] = entry["error"]
            else:
                item.update(entry["answer"])
            out.append(item)
        # "incomplete": some targets failed; such an answer should not be cached.
        return {"targets": out, "incomplete": any("error" in t for t in out)}

    def parse(self, raw, batch):
        pieces, dropped, failures = [], {}, []
        for target in raw["targets"]:
            oid = target["objectid"]
            if target.get("error"):
                failures.append(failure_of(self.name, target))
                continue
            drops, fails, lcs = {}, [], []
            try:
                summary = _checked_summary(target["summary"], [oid])
                if summary is not None:
                    merge_dropped(drops, summary.dropped)
                _, seps = _choose_matches(summary, target["ra"], target["dec"],
                                          self.options["match"])
                for mid, text in target["lightcurves"].items():
                    rows = _read_table(text, f"hcv MatchID {mid}", [oid])
                    if len(rows) == 0:
                        if rows.colnames:  # a header alone must still be the right one
                            LIGHTCURVE_CONTRACT.check(rows, objectids=[oid])
                        merge_dropped(drops, {"object without light-curve rows": 1})
                        continue
                    lc, d, f = hcv_rows_to_lightcurve(
                        rows, oid, ra=target["ra"], dec=target["dec"], separation=seps,
                        label=target["label"], name=self.name)
                    merge_dropped(drops, d)
                    fails.extend(f)
                    if lc is not None:
                        lcs.append(lc)
            except Exception as exc:  # noqa: BLE001 - one bad target never sinks the others
                text = str(exc)
                if not isinstance(exc, ArchiveError) or self.name not in text:
                    text = (f"{self.name}: could not read the answer for "
                            f"{describe_targets([oid])}: {type(exc).__name__}: {text}")
                failures.append(Failure(self.name, [oid], type(exc).__name__, text,
                                        bool(getattr(exc, "transient", False))))
                continue
            merge_dropped(dropped, drops)
            failures.extend(fails)
            pieces.extend(lcs)
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
    from multilc.errors import FileFormatError, InputError

    try:
        rows = _read_table(content, f"hcv file {path}")
        if len(rows) == 0:
            raise ResponseError("the file has no rows", archive="hcv")
        # columns, types and the MatchIDs of the valid rows (the rows are checked
        # again, and their drops counted, when converted below)
        match_ids = np.unique(LIGHTCURVE_CONTRACT.check(rows)["MatchID"])
    except (ResponseError, TruncatedResponse) as exc:
        raise FileFormatError(path, f"not a readable HCV light-curve table: "
                              f"{exc.message}") from exc
    if objectid is None:
        if len(match_ids) > 1:
            raise InputError(f"hcv file {path} holds {len(match_ids)} MatchIDs; give "
                             "objectid= (one target per file)")
        if not len(match_ids):
            return MultiBandLightCurve.empty()
        objectid = int(match_ids[0])
    if coord is not None:
        if not isinstance(coord, SkyCoord):
            raise InputError(f"coord must be a SkyCoord, got {type(coord).__name__}")
        ra, dec = float(coord.icrs.ra.deg), float(coord.icrs.dec.deg)
    elif "RA" in rows.colnames and "Dec" in rows.colnames:
        try:
            pos = SUMMARY_CONTRACT.check(rows)
        except ResponseError as exc:
            raise FileFormatError(path, exc.message) from exc
        if not len(pos):
            raise FileFormatError(path, "no row has a valid RA/Dec")
        ra, dec = float(np.mean(pos["RA"])), float(np.mean(pos["Dec"]))
    else:
        raise InputError(f"hcv file {path} has no RA/Dec columns: pass coord= (SkyCoord) "
                         "for the barycentric time correction")
    try:
        lc, dropped, failures = hcv_rows_to_lightcurve(rows, objectid, ra=ra, dec=dec,
                                                       label=label)
    except ResponseError as exc:
        raise FileFormatError(path, exc.message) from exc
    if failures:
        raise FileFormatError(path, "; ".join(f.message for f in failures))
    if dropped:
        log.info("hcv file: dropped " + ", ".join(f"{n} ({k})" for k, n in dropped.items()))
    return lc if lc is not None else MultiBandLightCurve.empty()


register_file_format("hcv", MultiBandLightCurve, reader=read_hcv_file)
