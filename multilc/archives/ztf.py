"""ZTF light curves from IRSA: the DR light-curve HATS catalog, the light-curve API, files.

Routes (option ``route``):

``"bulk"``
    The ZTF DR light-curve HATS catalog in IRSA's public S3 bucket
    (setting ``hats_url``, default ``s3://ipac-irsa-ztf/ztf/enhanced/dr24/lc/hats``,
    a HATS *collection* whose primary catalog is ``ztf_dr24_lc-hats``; IRSA
    tutorial "Access ZTF DR24 Light Curves from HATS Catalog").  One row per
    ZTF object, i.e. per (field, CCD quadrant, filter): ``objectid``,
    ``filterid`` (1 = g, 2 = r, 3 = i), ``objra``, ``objdec``, ``nepochs`` and
    the nested column ``lightcurve`` with per-epoch ``hmjd, mag, magerr,
    clrcoeff, catflags``.  nested-pandas stores a nested column in parquet as
    a struct of equal-length lists (``lightcurve: struct<hmjd: list<double>,
    mag: list<float>, ...>``; nested-pandas ``read_parquet`` docs: partial
    loading works on struct-of-list columns), so only the needed leaves
    (``lightcurve.hmjd`` ...) are read.  The exact list element widths of the
    DR24 catalog are not documented anywhere we could read (``catflags`` may
    be int16 or int32); values are cast, so the reader does not depend on
    them.  Targets are grouped by the HATS partitions their cones touch
    (`multilc.catalogs`), each partition is read once per run, for
    all filters at once.
``"api"``
    The IRSA light-curve API ``nph_light_curves`` (setting ``api_url``), one
    request per target: ``POS=CIRCLE <ra> <dec> <radius_deg>``,
    ``BANDNAME=g,r,i``, ``FORMAT=csv`` (IRSA "ZTF Lightcurve Queries"
    documentation), at most ``concurrency`` requests in flight (IRSA asks
    for bulk downloads instead of many API calls).  CSV columns
    ``oid,expid,hjd,mjd,mag,magerr,catflags,filtercode,ra,dec,...``.
``"auto"`` (default)
    ``bulk`` for more than ``bulk_min_targets`` targets, else ``api``.

Files: ``format="ztf.api"`` (the API's CSV or IPAC-table output) and
``format="ztf.parquet"`` (DR light-curve parquet files with list columns, or
a HATS leaf file with the nested ``lightcurve`` column).

Units and time
    ``mag`` is an AB magnitude calibrated to Pan-STARRS1 (Masci et al. 2019,
    PASP 131, 018003); flux = 3631 Jy 10^(-0.4 mag) via
    `multilc.photometry.mag_to_flux` (band ``ztf:g``/``ztf:r``/``ztf:i``).
    ``hmjd`` is the heliocentric MJD of mid-exposure, taken as UTC (an
    ASSUMPTION: no ZTF document we could find states its scale; 69.184 s at
    stake if it were TDB; see `multilc.timescales`); it is converted
    to barycentric MJD(TDB) with ``to_mjd_tdb(hmjd, "ztf.hmjd")`` at the ZTF
    object's position.  The API CSV has both ``hjd`` and ``mjd``: we use
    ``hjd - 2400000.5``, the same heliocentric quantity as the DR files'
    ``hmjd`` (so both routes give identical times); the API documentation
    does not say whether ``mjd`` marks the start or the middle of the
    exposure, so it is not used.
Response contracts
    `API_CONTRACT` (API CSV/IPAC) and `EPOCH_CONTRACT` (DR/HATS rows) are
    checked before any conversion: missing columns and wrong types are
    errors; the markers ``mag == 99.99`` and ``magerr == -999`` (seen in
    answers, not documented), ``magerr <= 0``, values outside the plausible
    ranges and unknown filters drop the row, counted by reason.  API text is
    read with `~multilc.collect.contract.table_from_text` (never as a file
    name); a last row cut short is a ``TruncatedResponse`` (retried), a cut
    after a complete row cannot be seen in CSV.  On the API route one
    target's failure is that target's only (`run_per_target`).
Default mask
    Epochs with ``catflags & 32768`` (bit 15, "bad" epoch: ZTF DR
    explanatory supplement; today's Fornax tool keeps ``catflags < 32768``)
    are dropped and counted; option ``catflags_mask`` (None keeps all).  The
    flags are kept in ``flag``.
Match policy
    ZTF has several objectids per sky position (one per field, CCD quadrant
    and filter).  ``match="all"`` (default) keeps every object within the
    radius; ``match="nearest"`` keeps, per target and filter, the nearest
    objectid.  ``source_id`` is the ZTF objectid, ``separation`` the
    distance from the target to ``objra/objdec`` (bulk) or to the epoch
    position (API).
"""
from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.config import ConfigItem, ConfigNamespace
from astropy.time import Time

from multilc.collect.api import Archive, HTMLPageError, ParseResult, register_archive
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, ResponseError,
                                      TruncatedResponse, count_complete_csv_rows,
                                      failure_of, html_title, looks_like_html,
                                      merge_dropped, run_per_target, table_from_text)
from multilc.io.registry import register_file_format
from multilc.lightcurve import MultiBandLightCurve
from multilc.photometry import mag_to_flux
from multilc.archives._bulk import bulk_concurrency, memory_released
from multilc.timescales import to_mjd_tdb

__all__ = ["ZTF", "conf", "read_api_file", "read_parquet_file", "FILTERS"]

ARCHIVE_NAME = "ztf"


# --------------------------------------------------------------------------- settings
class Conf(ConfigNamespace):
    """Settings of the ZTF reader (``MULTILC_ZTF_<NAME>`` overrides)."""

    hats_url = ConfigItem(
        "s3://ipac-irsa-ztf/ztf/enhanced/dr24/lc/hats",
        "HATS collection (or catalog) of ZTF DR light curves (IRSA cloud access page).")
    s3_endpoint = ConfigItem("", "S3 endpoint URL override (local stand-ins); empty = AWS.")
    s3_region = ConfigItem("us-west-2", "AWS region of the bucket.")
    s3_anonymous = ConfigItem(True, "Unsigned (anonymous) S3 requests.")
    api_url = ConfigItem("https://irsa.ipac.caltech.edu/cgi-bin/ZTF/nph_light_curves",
                         "IRSA ZTF light-curve API.")
    bulk_min_targets = ConfigItem(
        100, "route='auto' uses the bulk catalog for more targets than this.")
    concurrency = ConfigItem(4, "Requests (or partition reads) in flight.")
    partitions_per_batch = ConfigItem(
        4, "HATS partitions read per batch (bulk route; neighbours merged).")


conf = Conf()

# --------------------------------------------------------------------------- constants
#: ZTF filter ids and codes -> multilc band (ZTF DR explanatory supplement:
#: filterid 1 = g, 2 = r, 3 = i; filtercode zg, zr, zi).
FILTERS = {1: "ztf:g", 2: "ztf:r", 3: "ztf:i"}
FILTERCODES = {"zg": "ztf:g", "zr": "ztf:r", "zi": "ztf:i"}
#: JD of MJD 0 (definition of MJD).
MJD_ZERO_JD = 2400000.5
#: Bulk catalog columns read (nested leaves of ``lightcurve``).
HATS_COLUMNS = ["objectid", "filterid", "lightcurve.hmjd", "lightcurve.mag",
                "lightcurve.magerr", "lightcurve.catflags"]
#: Columns the API CSV must have.
API_COLUMNS = ("oid", "hjd", "mag", "magerr", "catflags", "filtercode", "ra", "dec")
_SOURCE = ("IRSA 'ZTF Lightcurve Queries' (API CSV columns); ZTF DR explanatory supplement "
           "(mag AB, catflags); Masci et al. 2019 PASP 131 018003.  No numeric 'missing' "
           "marker is documented; -999 (magerr) and 99.99 (mag) have been seen in answers")
#: Plausible ZTF PSF-fit magnitudes: ZTF saturates near 12.5-13 mag and reaches
#: ~21-21.5 mag (Bellm et al. 2019, PASP 131 018002); [-2, 30] keeps every real
#: measurement and refuses markers (99.99, -999).  An error above 10 mag is no
#: measurement.
MAG_RANGE = (-2.0, 30.0)
MAGERR_MAX = 10.0
#: Sentinels seen in API answers (see ``_SOURCE``): counted under their own name.
MAG_SENTINELS = (99.99, -999.0)
MAGERR_SENTINELS = (-999.0, 99.99)
#: The light-curve API's CSV/IPAC answer (one row per epoch).  ``hjd`` is a JD.
API_CONTRACT = ResponseContract(
    archive="ztf", what="light-curve API answer", source=_SOURCE,
    fields=(Field("oid", "int"),
            Field("hjd", "float", unit=u.d, valid=(MJD_RANGE[0] + MJD_ZERO_JD,
                                                   MJD_RANGE[1] + MJD_ZERO_JD)),
            Field("mag", "float", unit=u.mag, sentinels=MAG_SENTINELS, valid=MAG_RANGE),
            Field("magerr", "float", unit=u.mag, sentinels=MAGERR_SENTINELS,
                  positive=True, valid=(None, MAGERR_MAX)),
            Field("catflags", "int"),
            Field("filtercode", "str"),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0))))
#: DR parquet / HATS rows, flattened to one row per epoch (object columns
#: repeated).  Unknown ``filterid`` values are dropped and counted.
EPOCH_CONTRACT = ResponseContract(
    archive="ztf", what="DR light-curve rows", source=_SOURCE,
    fields=(Field("objectid", "int"),
            Field("filterid", "int", valid=(1, 3)),
            Field("objra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("objdec", "float", unit=u.deg, valid=(-90.0, 90.0)),
            Field("hmjd", "float", unit=u.d, valid=MJD_RANGE),
            Field("mag", "float", unit=u.mag, sentinels=MAG_SENTINELS, valid=MAG_RANGE),
            Field("magerr", "float", unit=u.mag, sentinels=MAGERR_SENTINELS,
                  positive=True, valid=(None, MAGERR_MAX)),
            Field("catflags", "int")))
DEFAULT_OPTIONS = {"route": "auto", "catflags_mask": 32768, "match": "all",
                   "bands": ("g", "r", "i")}


def _check_options(options):
    opts = dict(options)
    if opts["route"] not in ("auto", "bulk", "api"):
        raise ValueError(f"{ARCHIVE_NAME}: route must be 'auto', 'bulk' or 'api', "
                         f"got {opts['route']!r}")
    if opts["match"] not in ("all", "nearest"):
        raise ValueError(f"{ARCHIVE_NAME}: match must be 'all' or 'nearest', "
                         f"got {opts['match']!r}")
    mask = opts["catflags_mask"]
    if mask is not None and (isinstance(mask, bool) or int(mask) != mask or mask < 0):
        raise ValueError(f"{ARCHIVE_NAME}: catflags_mask must be a non-negative integer "
                         f"bit mask or None, got {mask!r}")
    bands = tuple(str(b) for b in (opts["bands"] if not isinstance(opts["bands"], str)
                                   else opts["bands"].split(",")))
    if not bands or set(bands) - {"g", "r", "i"}:
        raise ValueError(f"{ARCHIVE_NAME}: bands must be among 'g', 'r', 'i', got {bands}")
    opts["bands"] = bands
    return opts


# --------------------------------------------------------------------------- parse (shared)
def _epochs_to_lightcurve(*, objectid, oid, band, hmjd, mag, magerr, catflags, src_ra,
                          src_dec, separation, options, target_ra=None, target_dec=None,
                          where=""):
    """Per-epoch arrays -> `ParseResult` (the one place ZTF values are converted)."""
    dropped = {}
    n = len(objectid)
    keep = np.ones(n, bool)
    wanted = {f"ztf:{b}" for b in options["bands"]}
    not_wanted = ~np.isin(band, list(wanted))
    if not_wanted.any():
        # epochs of a filter the caller did not ask for (the bulk catalog holds
        # all filters of a partition): removed on purpose, counted too
        dropped[f"band not requested (bands={','.join(options['bands'])})"] = \
            int(not_wanted.sum())
    keep &= ~not_wanted
    mask = options["catflags_mask"]
    if mask is not None:
        bad = keep & ((catflags.astype("int64") & int(mask)) != 0)
        if bad.any():
            dropped[f"catflags & {int(mask)}"] = int(bad.sum())
        keep &= ~bad
    nomag = keep & ~np.isfinite(mag)
    if nomag.any():
        dropped["mag is NaN"] = int(nomag.sum())
    keep &= ~nomag
    if options["match"] == "nearest" and keep.any():
        from multilc.catalogs import nearest_only

        sel = np.flatnonzero(keep)
        # one ZTF object per target *and filter*: nearest per (target, band)
        group = np.unique(np.char.add(objectid[sel].astype(str),
                                      np.char.add("|", band[sel].astype(str))),
                          return_inverse=True)[1]
        best = nearest_only(group, separation[sel], oid[sel])
        farther = ~best
        if farther.any():
            dropped["not the nearest ZTF object (match='nearest')"] = int(farther.sum())
        keep[sel[farther]] = False
    idx = np.flatnonzero(keep)
    if not len(idx):
        return ParseResult(MultiBandLightCurve.empty(), dropped)
    mjd_tdb = to_mjd_tdb(hmjd[idx], "ztf.hmjd", ra=src_ra[idx] * u.deg,
                         dec=src_dec[idx] * u.deg)
    flux = np.empty(len(idx))
    flux_err = np.empty(len(idx))
    for name in np.unique(band[idx]):
        sel = band[idx] == name
        f, e = mag_to_flux(mag[idx][sel], name, magerr[idx][sel])
        flux[sel] = f.to_value(u.mJy)
        flux_err[sel] = e.to_value(u.mJy)
    kwargs = {}
    if target_ra is not None:
        kwargs["ra"] = target_ra[idx] * u.deg
        kwargs["dec"] = target_dec[idx] * u.deg
    lc = MultiBandLightCurve.from_arrays(
        objectid[idx], band[idx], Time(mjd_tdb, format="mjd", scale="tdb"),
        flux * u.mJy, flux_err * u.mJy, mag=mag[idx] * u.mag, mag_err=magerr[idx] * u.mag,
        flag=catflags[idx].astype("int64"), source_id=oid[idx].astype("int64"),
        separation=separation[idx], **kwargs)
    return ParseResult(lc, dropped)


def _flatten_nested(table, prefix="lightcurve."):
    """Object rows with list columns -> per-epoch arrays (object columns repeated).

    Raises `ResponseError` when the lists of one object differ in length.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        hmjd_list = table[prefix + "hmjd"].combine_chunks()
        parent = pc.list_parent_indices(hmjd_list).to_numpy().astype(int)
        out = {}
        for name in ("hmjd", "mag", "magerr", "catflags"):
            flat = pc.list_flatten(table[prefix + name].combine_chunks())
            if len(flat) != len(parent):
                raise ResponseError(f"{EPOCH_CONTRACT.what}: lightcurve lists of unequal "
                                    f"length ({name})", archive=ARCHIVE_NAME)
            out[name] = flat
        for name in ("objectid", "filterid", "objra", "objdec"):
            out[name] = table[name].combine_chunks().take(pa.array(parent, pa.int64()))
    except (pa.ArrowException, KeyError, TypeError) as exc:
        raise ResponseError(f"{EPOCH_CONTRACT.what}: unreadable list columns: "
                            f"{type(exc).__name__}: {exc}", archive=ARCHIVE_NAME) from exc
    return pa.table(out), parent


def _parse_catalog_rows(table, options, *, objectid, separation, target_ra=None,
                        target_dec=None, prefix="lightcurve.", where=""):
    """Matched object rows (one per objectid/filter) -> `ParseResult`."""
    if table.num_rows == 0:
        return ParseResult(MultiBandLightCurve.empty(), {})
    flat, parent = _flatten_nested(table, prefix)
    checked = EPOCH_CONTRACT.check(flat)
    p = parent[checked.index]
    result = _epochs_to_lightcurve(
        objectid=np.asarray(objectid)[p], oid=checked["objectid"],
        band=np.array([FILTERS[int(f)] for f in checked["filterid"]], dtype="<U8"),
        hmjd=checked["hmjd"], mag=checked["mag"], magerr=checked["magerr"],
        catflags=checked["catflags"], src_ra=checked["objra"], src_dec=checked["objdec"],
        separation=u.Quantity(separation)[p], options=options,
        target_ra=None if target_ra is None else np.asarray(target_ra)[p],
        target_dec=None if target_dec is None else np.asarray(target_dec)[p], where=where)
    result.dropped = merge_dropped(dict(checked.dropped), result.dropped)
    return result


def _api_format(text, where="", objectids=None):
    """``"csv"`` or ``"ipac"``: the format of an API answer's text.

    Raises `ResponseError` for an empty answer, or HTML/XML where a table
    was expected.
    """
    stripped = text.lstrip()
    if not stripped:
        raise ResponseError(f"{API_CONTRACT.what}: empty response{where}",
                            archive=ARCHIVE_NAME, objectids=objectids)
    if looks_like_html(stripped) or stripped.startswith("<"):
        raise ResponseError(f"{API_CONTRACT.what}: expected CSV or an IPAC table, got "
                            f"HTML/XML{where}: {html_title(stripped)!r}",
                            archive=ARCHIVE_NAME, objectids=objectids)
    return "ipac" if stripped.startswith(("\\", "|")) else "csv"


def _read_api_table(content, where="", objectids=None):
    """The API's CSV or IPAC-table text -> astropy Table (never a file name or URL)."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    fmt = _api_format(text, where, objectids)
    table = table_from_text(text, fmt, archive=ARCHIVE_NAME, what=API_CONTRACT.what,
                            objectids=objectids)
    if fmt == "ipac":
        _check_rows_retrieved(table, objectids)
    return table


def _check_api_answer_whole(text, objectids=None):
    """Raise unless an API answer is a whole table (what the query must know).

    A CSV answer is not parsed for this: a last row cut short is visible in
    its text (ZTF CSV cells hold numbers and filter codes, never line
    breaks); its rows are read and checked once, by `ZTF.parse`.  An IPAC
    answer is read, to compare its rows with ``RowsRetrieved``.
    """
    if _api_format(text, objectids=objectids) == "csv":
        count_complete_csv_rows(text, archive=ARCHIVE_NAME, what=API_CONTRACT.what,
                                objectids=objectids)
    else:
        _read_api_table(text, objectids=objectids)


def _check_rows_retrieved(table, objectids=None):
    """An IPAC table declaring ``\\RowsRetrieved = N`` must hold N rows.

    IRSA's IPAC-table answers may carry this keyword (as IRSA Gator answers
    do: astropy's ``irsa-nph-m31.xml`` test file records it); fewer rows
    than declared means the answer was cut off after a complete row, which
    CSV cannot reveal.
    """
    keywords = table.meta.get("keywords", {}) if hasattr(table, "meta") else {}
    entry = keywords.get("RowsRetrieved")
    if entry is None:
        return
    value = entry.get("value") if isinstance(entry, dict) else entry
    try:
        declared = int(str(value).strip().strip("'\""))
    except ValueError:
        return
    if declared != len(table):
        raise TruncatedResponse(f"{API_CONTRACT.what}: the IPAC table declares "
                                f"{declared} rows (RowsRetrieved) but holds {len(table)}",
                                archive=ARCHIVE_NAME, objectids=objectids)


def _api_epochs(table, where="", objectids=None):
    """Checked API rows -> per-epoch arrays, and the rows dropped by reason."""
    checked = API_CONTRACT.check(table, objectids=objectids)
    dropped = dict(checked.dropped)
    codes = np.asarray([str(c).strip() for c in checked["filtercode"]], dtype=object)
    unknown = ~np.isin(codes, list(FILTERCODES))
    if unknown.any():
        for code in sorted(set(codes[unknown])):
            merge_dropped(dropped, {f"unknown filtercode {code!r}":
                                    int((codes == code).sum())})
        checked = checked.subset(~unknown)
        codes = codes[~unknown]
    return {"oid": checked["oid"],
            "band": np.array([FILTERCODES[c] for c in codes], dtype="<U8"),
            "hmjd": checked["hjd"] - MJD_ZERO_JD, "mag": checked["mag"],
            "magerr": checked["magerr"], "catflags": checked["catflags"],
            "ra": checked["ra"], "dec": checked["dec"]}, dropped


# --------------------------------------------------------------------------- archive
@register_archive
class ZTF(Archive):
    """ZTF DR light curves from IRSA (HATS catalog in S3, or the light-curve API).

    Options: ``route`` (``"auto"``, ``"bulk"``, ``"api"``), ``catflags_mask``
    (default 32768; None keeps all epochs), ``match`` (``"all"`` or
    ``"nearest"`` per target and filter), ``bands`` (subset of g, r, i).
    See `multilc.archives.ztf`.
    """

    name = ARCHIVE_NAME
    description = "ZTF DR light curves (IRSA HATS catalog in S3 or light-curve API)"
    bands = tuple(FILTERS.values())
    chunk_size = 1
    concurrency = 4
    default_options = DEFAULT_OPTIONS
    env_prefix = "ZTF"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _check_options(self.options)
        self._catalog = None

    def catalog(self):
        """The bulk `~multilc.catalogs.HatsCatalog` (from the settings)."""
        from multilc.catalogs import HatsCatalog

        if self._catalog is None:
            self._catalog = HatsCatalog(
                self.setting("hats_url"), endpoint_url=self.setting("s3_endpoint"),
                anonymous=self.setting("s3_anonymous"), region=self.setting("s3_region"))
        return self._catalog

    def route_for(self, n_targets):
        """``"bulk"`` or ``"api"`` for a sample of *n_targets*."""
        route = self.options["route"]
        if route == "auto":
            route = "bulk" if n_targets > int(self.setting("bulk_min_targets")) else "api"
        return route

    def plan(self, sample):
        route = self.route_for(len(sample))
        if route == "api":
            batches = super().plan(sample)
        else:
            batches = _plan_bulk(self, sample)
        for b in batches:
            b.options = {**b.options, "route": route}
        return batches

    def concurrency_for(self, batches):
        if batches and batches[0].options.get("route") == "bulk":
            return bulk_concurrency(self, [self.catalog()])
        return self.max_concurrency

    # ---- query
    def query(self, batch):
        if batch.options.get("plan_error"):
            raise self.error(batch.options["plan_error"], batch, transient=True)
        if batch.options["route"] == "api":
            return self._query_api(batch)
        return self._query_bulk(batch)

    def _query_api(self, batch):
        from multilc.collect.api import http_request

        radius = f"{self.radius.to_value(u.deg):.10g}"

        def one(i):
            ra, dec = float(batch.ra[i]), float(batch.dec[i])
            who = [int(batch.objectid[i])]
            params = {"POS": f"CIRCLE {ra:.9f} {dec:.9f} {radius}",
                      "BANDNAME": ",".join(batch.options["bands"]), "FORMAT": "csv"}
            resp = http_request(self, batch.subset(np.arange(len(batch)) == i), "GET",
                                self.setting("api_url"), params=params, timeout=self.timeout)
            text = resp.text
            if looks_like_html(text) or text.lstrip().startswith("<"):
                title = html_title(text)
                raise HTMLPageError("the light-curve API answered with an HTML/XML page "
                                    f"instead of CSV: {title!r}", archive=self.name,
                                    objectids=who, title=title)
            _check_api_answer_whole(text, who)  # a cut-off answer is retried now
            return text

        # One target per request; one target's failure is that target's only.
        entries = run_per_target(self, batch, one)
        # "incomplete": some targets failed; such an answer should not be cached
        # (a rerun must ask again for them).
        return {"route": "api", "targets": entries,
                "incomplete": any("error" in e for e in entries)}

    def _query_bulk(self, batch):
        catalog = self.catalog()
        try:
            return catalog.crossmatch([tuple(k) for k in batch.options["partitions"]],
                                      HATS_COLUMNS, ra=batch.ra, dec=batch.dec,
                                      radius=self.radius)
        except FileNotFoundError as exc:
            raise self.error(f"HATS partition missing in {catalog.url}: {exc}", batch) \
                from exc
        except OSError as exc:
            raise self.error(f"reading {catalog.url} failed: {exc}", batch,
                             transient=True) from exc

    # ---- parse
    def parse(self, raw, batch):
        options = _check_options({k: batch.options[k] for k in DEFAULT_OPTIONS})
        where = f" ({batch.describe()})"
        if batch.options["route"] == "api":
            if isinstance(raw, (str, bytes)):
                # an answer cached by an older multilc: the text of one target
                raw = {"route": "api", "targets": [
                    {"objectid": int(batch.objectid[0]), "answer": raw}]}
            return self._parse_api(raw, batch, options, where)
        ti = raw["_target"].to_numpy()
        return memory_released(_parse_catalog_rows(
            raw, options, objectid=batch.objectid[ti],
            separation=raw["_separation_arcsec"].to_numpy() * u.arcsec,
            target_ra=batch.ra[ti], target_dec=batch.dec[ti], where=where))

    def _parse_api(self, raw, batch, options, where):
        from multilc.catalogs.match import angular_separation_deg
        from multilc.collect.api import ArchiveError, Failure

        dropped, failures = {}, []
        epochs = []            # (objectid, per-epoch arrays) of the readable answers
        position = {int(o): (float(r), float(d))
                    for o, r, d in zip(batch.objectid, batch.ra, batch.dec)}

        def failure(oid, exc):
            text = str(exc)
            if not isinstance(exc, ArchiveError) or self.name not in text:
                text = (f"{self.name}: could not read the answer for objectid {oid}: "
                        f"{type(exc).__name__}: {text}")
            return Failure(self.name, [oid], type(exc).__name__, text,
                           bool(getattr(exc, "transient", False)))

        for entry in raw["targets"]:
            oid = int(entry["objectid"])
            if "error" in entry:
                failures.append(failure_of(self.name, entry))
                continue
            try:
                table = _read_api_table(entry["answer"], where, [oid])
                if len(table) == 0:
                    # no epochs, but even a header alone must be the API's
                    API_CONTRACT.check(table, objectids=[oid])
                    continue
                e, drops = _api_epochs(table, where, [oid])
                ra, dec = position[oid]
                e["separation"] = angular_separation_deg(ra, dec, e["ra"], e["dec"]) * 3600.0
            except Exception as exc:  # noqa: BLE001 - this target's failure only
                failures.append(failure(oid, exc))
                continue
            merge_dropped(dropped, drops)
            epochs.append((oid, e))

        def convert(group):
            """One light curve from the epochs of *group* (converted at once)."""
            n = [len(e["oid"]) for _, e in group]
            oids = np.repeat([oid for oid, _ in group], n)
            cat = {k: np.concatenate([e[k] for _, e in group])
                   for k in ("oid", "band", "hmjd", "mag", "magerr", "catflags", "ra",
                             "dec", "separation")}
            return _epochs_to_lightcurve(
                objectid=oids, oid=cat["oid"], band=cat["band"], hmjd=cat["hmjd"],
                mag=cat["mag"], magerr=cat["magerr"], catflags=cat["catflags"],
                src_ra=cat["ra"], src_dec=cat["dec"], separation=cat["separation"] * u.arcsec,
                options=options,
                target_ra=np.repeat([position[oid][0] for oid, _ in group], n),
                target_dec=np.repeat([position[oid][1] for oid, _ in group], n), where=where)

        # The epochs of every readable answer are converted together: one
        # time-scale conversion and one light curve per batch, not per target.
        # Should that fail, each target is converted alone so that the
        # failure stays with the target that caused it.
        pieces = []
        if epochs:
            try:
                results = [convert(epochs)]
            except Exception:  # noqa: BLE001 - retried target by target below
                results = []
                for oid, e in epochs:
                    try:
                        results.append(convert([(oid, e)]))
                    except Exception as exc:  # noqa: BLE001 - this target's only
                        failures.append(failure(oid, exc))
            for res in results:
                merge_dropped(dropped, res.dropped)
                if len(res.lc):
                    pieces.append(res.lc)
        lc = MultiBandLightCurve.concat(pieces) if pieces else MultiBandLightCurve.empty()
        return ParseResult(lc, dropped, failures)


def _plan_bulk(archive, sample):
    """One batch per group of HATS partitions (each partition read once)."""
    from multilc.archives._bulk import plan_partition_batches

    try:
        catalog = archive.catalog()
        groups = catalog.plan(sample.coord.icrs.ra.deg, sample.coord.icrs.dec.deg,
                              archive.radius,
                              min_partitions=int(archive.setting("partitions_per_batch")))
    except Exception as exc:  # noqa: BLE001 - reported as this archive's failure
        batch = Archive.plan(archive, sample)
        message = (f"could not read the HATS catalog metadata at "
                   f"{archive.setting('hats_url')}: {type(exc).__name__}: {exc}")
        merged = batch[0]
        if len(batch) > 1:
            import dataclasses

            merged = dataclasses.replace(
                merged, objectid=np.concatenate([b.objectid for b in batch]),
                ra=np.concatenate([b.ra for b in batch]),
                dec=np.concatenate([b.dec for b in batch]),
                label=np.concatenate([b.label for b in batch]))
        merged.options = {**merged.options, "plan_error": message}
        return [merged]
    return plan_partition_batches(archive, sample, groups)


# --------------------------------------------------------------------------- files
def _file_result(result):
    from multilc.collect.engine import CollectionReport

    result.lc.report = CollectionReport(dropped={ARCHIVE_NAME: dict(result.dropped)})
    return result.lc


def read_api_file(path, *, objectid=None, catflags_mask=32768, match="all",
                  bands=("g", "r", "i")):
    """Read a file saved from the IRSA light-curve API (CSV or IPAC table).

    Parameters
    ----------
    path : str or path-like
    objectid : int, optional
        Target id for every row (the file answers one target); default: each
        ZTF ``oid`` is its own object.
    catflags_mask : int or None
        Drop epochs with any of these bits set (default 32768).
    match : {"all", "nearest"}
        With ``objectid``: keep only the nearest oid per filter (distance
        from the mean position of all rows).
    bands : sequence of str

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        ``report.dropped`` counts removed epochs.
    """
    from astropy.coordinates import SkyCoord

    options = _check_options({"route": "api", "catflags_mask": catflags_mask,
                              "match": match, "bands": bands})
    from multilc.errors import FileFormatError, InputError

    if objectid is None and match == "nearest":
        raise InputError(f"{ARCHIVE_NAME}: match='nearest' needs objectid= (a target)")
    with open(path, "rb") as fh:
        content = fh.read()
    where = f" (file {path})"
    try:
        table = _read_api_table(content, where)
        if len(table) == 0:
            API_CONTRACT.check(table)
            return _file_result(ParseResult(MultiBandLightCurve.empty(), {}))
        e, dropped = _api_epochs(table, where)
    except (ResponseError, TruncatedResponse) as exc:
        raise FileFormatError(path, exc.message) from exc
    if objectid is None:
        ids = e["oid"]
        sep = np.full(len(ids), np.nan) * u.arcsec
    else:
        ids = np.full(len(e["oid"]), int(objectid))
        from astropy.coordinates import CartesianRepresentation

        pos = SkyCoord(e["ra"] * u.deg, e["dec"] * u.deg)
        if len(pos):
            centre = SkyCoord(CartesianRepresentation(pos.cartesian.xyz.mean(axis=1)))
            sep = centre.separation(pos).to(u.arcsec)
        else:
            sep = np.zeros(0) * u.arcsec
    result = _epochs_to_lightcurve(
        objectid=ids, oid=e["oid"], band=e["band"], hmjd=e["hmjd"], mag=e["mag"],
        magerr=e["magerr"], catflags=e["catflags"], src_ra=e["ra"], src_dec=e["dec"],
        separation=sep, options=options, target_ra=e["ra"], target_dec=e["dec"],
        where=where)
    result.dropped = merge_dropped(dropped, result.dropped)
    return _file_result(result)


def read_parquet_file(path, *, catflags_mask=32768, bands=("g", "r", "i")):
    """Read a ZTF DR light-curve parquet file.

    Accepts the DR files (``ztf_<field>_<filter>_c<ccd>_q<q>_dr<N>.parquet``,
    list columns ``hmjd, mag, magerr, clrcoeff, catflags``) and HATS leaf
    files (nested ``lightcurve`` struct).  Each ZTF objectid becomes one
    object (``objectid`` = ``source_id`` = ZTF objectid, position
    ``objra/objdec``).

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        ``report.dropped`` counts removed epochs.
    """
    import pyarrow.parquet as pq

    options = _check_options({"route": "bulk", "catflags_mask": catflags_mask,
                              "match": "all", "bands": bands})
    import pyarrow as pa

    from multilc.errors import FileFormatError

    where = f" (file {path})"
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileFormatError(path, f"not a readable parquet file: {exc}") from exc
    nested = "lightcurve" in schema.names
    prefix = "lightcurve." if nested else ""
    needed = ["objectid", "filterid", "objra", "objdec"] + \
        [prefix + c for c in ("hmjd", "mag", "magerr", "catflags")]
    lc_type = schema.field("lightcurve").type if nested else None
    have = set(schema.names) | ({f"lightcurve.{f.name}" for f in lc_type}
                                if nested and pa.types.is_struct(lc_type) else set())
    missing = [c for c in needed if c not in have]
    if missing:
        raise FileFormatError(path, f"not a ZTF light-curve parquet file: "
                              f"missing columns {missing}")
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    try:
        table = ds.dataset(str(path), format="parquet").to_table(
            columns={c: pc.field(*c.split(".")) for c in needed})
        oid = table["objectid"].to_numpy(zero_copy_only=False)
        ra = np.asarray(table["objra"].to_numpy(zero_copy_only=False), float)
        dec = np.asarray(table["objdec"].to_numpy(zero_copy_only=False), float)
        result = _parse_catalog_rows(
            table, options, objectid=oid, separation=np.full(len(oid), np.nan) * u.arcsec,
            target_ra=ra, target_dec=dec, prefix=prefix, where=where)
    except (ResponseError, TruncatedResponse) as exc:
        raise FileFormatError(path, exc.message) from exc
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise FileFormatError(path, f"unreadable ZTF light-curve parquet file: "
                              f"{type(exc).__name__}: {exc}") from exc
    return _file_result(result)


register_file_format("ztf.api", MultiBandLightCurve, reader=read_api_file)
register_file_format("ztf.parquet", MultiBandLightCurve, reader=read_parquet_file)
