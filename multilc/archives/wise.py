"""WISE light curves from IRSA's parquet catalogs: unWISE neo7 time domain and NEOWISE.

Both catalogs are hive-partitioned parquet datasets in IRSA's public bucket
``nasa-irsa-wise`` (us-west-2), partitioned by HEALPix order 5 (NESTED) in
the column ``healpix_k5``, with a ``_metadata`` file holding every row
group's statistics (IRSA cloud access page; irsa-tutorials parquet notebooks).
Targets are grouped by the partitions their cones touch
(`multilc.catalogs`); each partition is read once per run, only the
needed columns, with a coarse RA/Dec box as row filter, then matched exactly
with astropy.

``archive="unwise"``: unWISE neo7 time-domain catalog
    (Meisner et al. 2023, AJ 165, 36, "unTimely"), setting ``unwise_url``
    (default ``s3://nasa-irsa-wise/unwise/neo7/catalogs/time_domain/healpix_k5/
    unwise-neo7-time_domain-healpix_k5.parquet``).  One row per detection in
    one ~6-month epoch coadd; columns used ``flux, dflux`` (Vega nanomaggies:
    m_Vega = 22.5 - 2.5 log10 flux, Meisner et al. 2023), ``ra, dec``,
    ``band`` (1 = W1, 2 = W2), ``MJDMEAN`` (mean MJD of the epoch's
    exposures), ``primary`` (1 inside the coadd tile's primary region),
    ``unwise_detid`` (detection id, kept as ``source_id``).

    - Flux: `multilc.photometry.nanomaggies_to_flux` (zero point option
      ``wise_zero_point``; default the Vega->AB offsets W1 2.699, W2 3.339 mag,
      WISE All-Sky Explanatory Supplement sec. IV.4.h).  Non-positive fluxes
      are forced-photometry non-detections: kept, with ``upper_limit=True``.
    - Default mask: rows with ``primary != 1`` are duplicates from
      overlapping coadd tiles and are dropped and counted (option
      ``primary_only``).

``archive="neowise"``: NEOWISE-R single-exposure source table
    (setting ``neowise_url``, a template with ``{year}``; ``neowise_years``
    default ``year1 ... year11 addendum``: IRSA
    ``.../p1bs_psd/healpix_k5/{year}/neowiser-healpix_k5-{year}.parquet``,
    hive levels ``healpix_k0=/healpix_k5=``).  One row per detection on one
    single exposure; columns used ``cntr`` (``source_id``), ``ra, dec``,
    ``mjd``, ``w1mpro, w1sigmpro, w2mpro, w2sigmpro`` (profile-fit Vega
    magnitudes; a null ``w?sigmpro`` means ``w?mpro`` is a 95 % confidence
    upper limit: NEOWISE Explanatory Supplement sec. II.1.a), ``cc_flags``,
    ``qual_frame``.  We use the magnitudes, not ``w1flux``/``w2flux``, which
    are raw profile-fit fluxes in DN with a frame-dependent zero point.

    - Flux: `multilc.photometry.mag_to_flux` with the band's Vega zero point
      (same convention as unWISE, option ``wise_zero_point``).
    - Default quality cut (option ``quality="irsa"``; None keeps all):
      ``cc_flags == "0000"`` (no artifact contamination; IRSA tutorial "Make
      Light Curves from NEOWISE Single-exposure Source Table") and
      ``qual_frame > 0`` (frames of quality 0 are unreliable: NEOWISE
      Explanatory Supplement sec. II.3.d).  Rows failing either are counted;
      null magnitudes are dropped per band and counted.

Time: ``MJDMEAN``/``mjd`` are MJD in UTC at the spacecraft (low Earth
orbit); converted with ``to_mjd_tdb(..., "wise.mjd")`` (geocentric, < 23 ms).

Match policy: neither catalog links detections across epochs (no object id),
so ``match="all"`` (default) keeps every detection within the radius and
``match="nearest"`` keeps, per target, band and epoch (``MJDMEAN`` or
``mjd``), the nearest detection.  ``separation`` is the target-detection
distance.
"""
from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.config import ConfigItem, ConfigNamespace
from astropy.time import Time

from multilc.collect.api import Archive, ParseResult, register_archive
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, ResponseError,
                                      merge_dropped)
from multilc.lightcurve import MultiBandLightCurve
from multilc.photometry import WISE_ZERO_POINT_CHOICES, mag_to_flux, nanomaggies_to_flux
from multilc.timescales import to_mjd_tdb

__all__ = ["UnWISE", "NEOWISE", "conf", "UNWISE_BANDS"]


# --------------------------------------------------------------------------- settings
class Conf(ConfigNamespace):
    """Settings of the unWISE and NEOWISE readers.

    Environment overrides: ``MULTILC_UNWISE_<NAME>`` for ``archive="unwise"``,
    ``MULTILC_NEOWISE_<NAME>`` for ``archive="neowise"``.
    """

    unwise_url = ConfigItem(
        "s3://nasa-irsa-wise/unwise/neo7/catalogs/time_domain/healpix_k5/"
        "unwise-neo7-time_domain-healpix_k5.parquet",
        "unWISE neo7 time-domain catalog (hive parquet dataset with _metadata).")
    neowise_url = ConfigItem(
        "s3://nasa-irsa-wise/wise/neowiser/catalogs/p1bs_psd/healpix_k5/{year}/"
        "neowiser-healpix_k5-{year}.parquet",
        "NEOWISE-R single-exposure source table, one dataset per {year}.")
    neowise_years = ConfigItem(
        " ".join([f"year{i}" for i in range(1, 12)] + ["addendum"]),
        "NEOWISE years (space separated) substituted into neowise_url.")
    healpix_order = ConfigItem(5, "HEALPix order (NESTED) of the partitioning.")
    s3_endpoint = ConfigItem("", "S3 endpoint URL override (local stand-ins); empty = AWS.")
    s3_region = ConfigItem("us-west-2", "AWS region of the bucket.")
    s3_anonymous = ConfigItem(True, "Unsigned (anonymous) S3 requests.")
    concurrency = ConfigItem(4, "Partition groups read at once.")
    partitions_per_batch = ConfigItem(
        16, "Partitions read per batch (neighbours merged to cut per-batch overhead).")


conf = Conf()

# --------------------------------------------------------------------------- constants
#: unWISE ``band`` values -> multilc bands (Meisner et al. 2023: 1 = W1, 2 = W2).
UNWISE_BANDS = {1: "wise:W1", 2: "wise:W2"}
UNWISE_COLUMNS = ["flux", "dflux", "band", "MJDMEAN", "primary", "unwise_detid"]
#: NEOWISE magnitude columns per band (NEOWISE Explanatory Supplement II.1.a).
NEOWISE_BANDS = {"wise:W1": ("w1mpro", "w1sigmpro"), "wise:W2": ("w2mpro", "w2sigmpro")}
NEOWISE_COLUMNS = ["cntr", "mjd", "w1mpro", "w1sigmpro", "w2mpro", "w2sigmpro",
                   "cc_flags", "qual_frame"]
#: cc_flags value of an uncontaminated detection (4 bands, '0' each).
CLEAN_CC_FLAGS = "0000"

#: Units multilc accepts for unWISE ``flux``/``dflux`` if the parquet schema
#: declares one: Vega-relative nanomaggies (Meisner et al. 2023).  astropy's
#: ``nanomaggy`` is AB-relative, so no conversion is attempted: any other
#: declared unit is refused.
UNWISE_FLUX_UNITS = ("nanomaggies", "nanomaggy", "nmgy", "nmaggy", "nmaggies")
_UNWISE_SOURCE = ("Meisner et al. 2023 (AJ 165, 36), unTimely catalog columns; nulls "
                  "are parquet nulls (no numeric 'missing' marker is documented)")
#: Plausible unWISE fluxes: W1 saturates near 8 Vega mag (~10^5.8 nanomaggies);
#: |flux| above 10^8 nanomaggies (Vega mag 2.5) is not a measurement.
MAX_NMGY = 1e8
UNWISE_CONTRACT = ResponseContract(
    archive="unwise", what="unWISE time-domain rows", source=_UNWISE_SOURCE,
    fields=(Field("flux", "float", valid=(-MAX_NMGY, MAX_NMGY)),
            Field("dflux", "float", positive=True, valid=(None, MAX_NMGY)),
            Field("band", "int", valid=(1, 2)),
            Field("MJDMEAN", "float", unit=u.d, valid=MJD_RANGE),
            Field("primary", "int"),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0)),
            Field("unwise_detid", "str", required=False, nullable=True),
            Field("_target", "int"),
            Field("_separation_arcsec", "float", valid=(0.0, None))))
_NEOWISE_SOURCE = ("NEOWISE Explanatory Supplement sec. II.1.a (columns, Vega mag, a null "
                   "w?sigmpro marks a 95% upper limit in w?mpro) and II.3.d (qual_frame)")
NEOWISE_CONTRACT = ResponseContract(
    archive="neowise", what="NEOWISE single-exposure rows", source=_NEOWISE_SOURCE,
    fields=(Field("cntr", "int"),
            Field("mjd", "float", unit=u.d, valid=MJD_RANGE),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0)),
            Field("cc_flags", "str", nullable=True),
            Field("qual_frame", "int", nullable=True, fill=0),
            Field("_target", "int"),
            Field("_separation_arcsec", "float", valid=(0.0, None))))
#: Per band: the magnitude may be null (no detection in that band: counted),
#: the error may be null (upper limit); values outside the ranges are dropped.
NEOWISE_BAND_CONTRACTS = {
    band: ResponseContract(
        archive="neowise", what=f"NEOWISE {band} photometry", source=_NEOWISE_SOURCE,
        fields=(Field(mcol, "float", unit=u.mag, nullable=True, valid=(-5.0, 30.0)),
                Field(ecol, "float", unit=u.mag, nullable=True, positive=True,
                      valid=(None, 10.0))))
    for band, (mcol, ecol) in NEOWISE_BANDS.items()}


def _check_flux_units(table, archive):
    """Refuse a declared unWISE flux unit other than (Vega) nanomaggies."""
    for name in ("flux", "dflux"):
        try:
            meta = table.schema.field(name).metadata or {}
        except KeyError:
            continue
        raw = meta.get(b"unit") or meta.get(b"units")
        if raw and raw.decode("utf-8", "replace").strip().lower() not in UNWISE_FLUX_UNITS:
            raise ResponseError(f"unWISE rows: column {name!r} is declared in "
                                f"{raw.decode('utf-8', 'replace')!r}, not Vega nanomaggies",
                                archive=archive)

_COMMON_OPTIONS = {"match": "all", "bands": ("W1", "W2"), "wise_zero_point": "ab_offset"}


def _check_common(name, options):
    opts = dict(options)
    if opts["match"] not in ("all", "nearest"):
        raise ValueError(f"{name}: match must be 'all' or 'nearest', got {opts['match']!r}")
    bands = opts["bands"]
    bands = tuple(bands.split(",")) if isinstance(bands, str) else tuple(bands)
    if not bands or set(bands) - {"W1", "W2"}:
        raise ValueError(f"{name}: bands must be among 'W1', 'W2', got {bands}")
    opts["bands"] = bands
    if opts["wise_zero_point"] not in WISE_ZERO_POINT_CHOICES:
        raise ValueError(f"{name}: wise_zero_point must be one of {WISE_ZERO_POINT_CHOICES}, "
                         f"got {opts['wise_zero_point']!r}")
    return opts


# --------------------------------------------------------------------------- shared bulk route
class _HivePartitionArchive(Archive):
    """Plan/query of a HEALPix hive catalog; subclasses parse."""

    columns: list = []

    def catalogs(self):
        """The `~multilc.catalogs.HiveCatalog` objects read (cached)."""
        from multilc.catalogs import HiveCatalog

        if getattr(self, "_catalogs", None) is None:
            self._catalogs = [
                HiveCatalog(url, order=int(self.setting("healpix_order")),
                            endpoint_url=self.setting("s3_endpoint"),
                            anonymous=self.setting("s3_anonymous"),
                            region=self.setting("s3_region"))
                for url in self.urls()]
        return self._catalogs

    def plan(self, sample):
        from multilc.archives._bulk import plan_partition_batches

        coord = sample.coord.icrs
        groups = self.catalogs()[0].plan(
            coord.ra.deg, coord.dec.deg, self.radius,
            min_partitions=int(self.setting("partitions_per_batch")))
        return plan_partition_batches(self, sample, groups)

    def concurrency_for(self, batches):
        from multilc.archives._bulk import bulk_concurrency

        return bulk_concurrency(self, self.catalogs())

    def row_filter(self, options):
        """Extra pyarrow filter (None: none)."""
        return None

    def query(self, batch):
        import pyarrow as pa

        pieces = []
        for catalog in self.catalogs():
            try:
                pieces.append(catalog.crossmatch(
                    [tuple(k) for k in batch.options["partitions"]], self.columns,
                    ra=batch.ra, dec=batch.dec, radius=self.radius,
                    filter=self.row_filter(batch.options)))
            except FileNotFoundError as exc:
                raise self.error(f"missing file in {catalog.url}: {exc}", batch) from exc
            except OSError as exc:
                raise self.error(f"reading {catalog.url} failed: {exc}", batch,
                                 transient=True) from exc
        return pa.concat_tables(pieces, promote_options="permissive") if len(pieces) > 1 \
            else pieces[0]


def _nearest_per_epoch(target, band, epoch, separation):
    """Mask keeping the nearest detection per (target, band, epoch)."""
    keep = np.zeros(len(target), bool)
    if not len(target):
        return keep
    order = np.lexsort((np.asarray(separation), epoch, band, target))
    t, b, e = target[order], band[order], epoch[order]
    first = np.ones(len(order), bool)
    first[1:] = (t[1:] != t[:-1]) | (b[1:] != b[:-1]) | (e[1:] != e[:-1])
    keep[order[first]] = True
    return keep


# --------------------------------------------------------------------------- unWISE
@register_archive
class UnWISE(_HivePartitionArchive):
    """unWISE neo7 time-domain W1/W2 photometry (IRSA parquet in S3).

    Options: ``match`` (``"all"``/``"nearest"`` per band and epoch),
    ``bands`` (W1, W2), ``primary_only`` (default True: drop and count
    ``primary != 1``), ``wise_zero_point`` (``"ab_offset"``/``"isophotal"``).
    See `multilc.archives.wise`.
    """

    name = "unwise"
    description = "unWISE neo7 time-domain W1/W2 epoch-coadd photometry (IRSA parquet)"
    bands = tuple(UNWISE_BANDS.values())
    chunk_size = 1
    concurrency = 4
    default_options = {**_COMMON_OPTIONS, "primary_only": True}
    env_prefix = "UNWISE"
    conf = conf
    columns = UNWISE_COLUMNS

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _check_common(self.name, self.options)
        self._catalogs = None

    def urls(self):
        return [self.setting("unwise_url")]

    def row_filter(self, options):
        import pyarrow.compute as pc

        if len(options["bands"]) == 2:
            return None
        codes = [k for k, v in UNWISE_BANDS.items() if v.split(":")[1] in options["bands"]]
        return pc.field("band").isin(codes)

    def parse(self, raw, batch):
        options = _check_common(self.name, {k: batch.options[k] for k in self.default_options})
        if not raw.num_rows:
            return ParseResult(MultiBandLightCurve.empty(), {})
        _check_flux_units(raw, self.name)
        c = UNWISE_CONTRACT.check(raw, objectids=batch.objectid.tolist())
        dropped = dict(c.dropped)
        band = np.array([UNWISE_BANDS[int(b)] for b in c["band"]], dtype="<U8")
        keep = np.ones(len(c), bool)
        if options["primary_only"]:
            secondary = c["primary"] != 1
            if secondary.any():
                dropped["primary != 1"] = int(secondary.sum())
            keep &= ~secondary
        target = c["_target"]
        if ((target < 0) | (target >= len(batch))).any():
            raise ResponseError("unWISE rows: match index outside the batch",
                                archive=self.name, objectids=batch.objectid.tolist())
        mjd, sep = c["MJDMEAN"], c["_separation_arcsec"]
        if options["match"] == "nearest" and keep.any():
            sel = np.flatnonzero(keep)
            best = _nearest_per_epoch(target[sel], band[sel], mjd[sel], sep[sel])
            if (~best).any():
                dropped["not the nearest detection (match='nearest')"] = int((~best).sum())
            keep[sel[~best]] = False
        idx = np.flatnonzero(keep)
        if not len(idx):
            return ParseResult(MultiBandLightCurve.empty(), dropped)
        flux_nmgy, dflux_nmgy = c["flux"][idx], c["dflux"][idx]
        ra, dec = c["ra"][idx], c["dec"][idx]
        flux = np.empty(len(idx))
        flux_err = np.empty(len(idx))
        for name in np.unique(band[idx]):
            sel = band[idx] == name
            f, e = nanomaggies_to_flux(flux_nmgy[sel], name, dflux_nmgy[sel],
                                       wise_zero_point=options["wise_zero_point"])
            flux[sel] = f.to_value(u.mJy)
            flux_err[sel] = e.to_value(u.mJy)
        time = to_mjd_tdb(mjd[idx], "wise.mjd", ra=ra * u.deg, dec=dec * u.deg)
        ti = target[idx]
        lc = MultiBandLightCurve.from_arrays(
            batch.objectid[ti], band[idx], Time(time, format="mjd", scale="tdb"),
            flux * u.mJy, flux_err * u.mJy, upper_limit=flux_nmgy <= 0,
            source_id=c["unwise_detid"][idx].astype(str),
            separation=sep[idx] * u.arcsec, ra=batch.ra[ti] * u.deg, dec=batch.dec[ti] * u.deg)
        return ParseResult(lc, dropped)


# --------------------------------------------------------------------------- NEOWISE
@register_archive
class NEOWISE(_HivePartitionArchive):
    """NEOWISE-R single-exposure W1/W2 photometry (IRSA parquet in S3, all years).

    Options: ``match`` (``"all"``/``"nearest"`` per band and exposure),
    ``bands`` (W1, W2), ``quality`` (``"irsa"``: ``cc_flags == "0000"`` and
    ``qual_frame > 0``; None keeps all), ``wise_zero_point``.
    See `multilc.archives.wise`.
    """

    name = "neowise"
    description = "NEOWISE-R single-exposure W1/W2 photometry (IRSA parquet, all years)"
    bands = ("wise:W1", "wise:W2")
    chunk_size = 1
    concurrency = 4
    default_options = {**_COMMON_OPTIONS, "quality": "irsa"}
    env_prefix = "NEOWISE"
    conf = conf
    columns = NEOWISE_COLUMNS

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _check_common(self.name, self.options)
        if self.options["quality"] not in ("irsa", None):
            raise ValueError(f"{self.name}: quality must be 'irsa' or None, "
                             f"got {self.options['quality']!r}")
        self._catalogs = None

    def urls(self):
        template = self.setting("neowise_url")
        years = str(self.setting("neowise_years")).replace(",", " ").split()
        if "{year}" not in template:
            return [template]
        return [template.format(year=y) for y in years]

    def parse(self, raw, batch):
        options = {k: batch.options[k] for k in self.default_options}
        options = _check_common(self.name, options)
        if not raw.num_rows:
            return ParseResult(MultiBandLightCurve.empty(), {})
        c = NEOWISE_CONTRACT.check(raw, objectids=batch.objectid.tolist())
        dropped = dict(c.dropped)
        target = c["_target"]
        if ((target < 0) | (target >= len(batch))).any():
            raise ResponseError("NEOWISE rows: match index outside the batch",
                                archive=self.name, objectids=batch.objectid.tolist())
        keep = np.ones(len(c), bool)
        if options["quality"] == "irsa":
            contaminated = np.array([f != CLEAN_CC_FLAGS for f in c["cc_flags"]], bool)
            if contaminated.any():
                dropped[f"cc_flags != '{CLEAN_CC_FLAGS}'"] = int(contaminated.sum())
            keep &= ~contaminated
            low = keep & ~(c["qual_frame"] > 0)
            if low.any():
                dropped["qual_frame == 0"] = int(low.sum())
            keep &= ~low
        mjd, sep, ra, dec, cntr = c["mjd"], c["_separation_arcsec"], c["ra"], c["dec"], \
            c["cntr"]
        rows, bands, mags, errs = [], [], [], []
        for band, (mcol, ecol) in NEOWISE_BANDS.items():
            if band.split(":")[1] not in options["bands"]:
                continue
            kept = np.flatnonzero(keep)
            # the band's columns, for the rows still kept (each drop counted once)
            bc = NEOWISE_BAND_CONTRACTS[band].check(raw.take(c.index[kept]),
                                                    objectids=batch.objectid.tolist())
            merge_dropped(dropped, bc.dropped)
            m, e = bc[mcol], bc[ecol]
            null = ~np.isfinite(m)
            if null.any():
                dropped[f"{mcol} is null"] = dropped.get(f"{mcol} is null", 0) + \
                    int(null.sum())
            sel = kept[bc.index][~null]
            rows.append(sel)
            bands.append(np.full(len(sel), band))
            mags.append(m[~null])
            errs.append(e[~null])
        rows = np.concatenate(rows) if rows else np.zeros(0, int)
        band = np.concatenate(bands) if bands else np.zeros(0, str)
        mag = np.concatenate(mags) if mags else np.zeros(0)
        err = np.concatenate(errs) if errs else np.zeros(0)
        if options["match"] == "nearest" and len(rows):
            best = _nearest_per_epoch(target[rows], band, mjd[rows], sep[rows])
            if (~best).any():
                dropped["not the nearest detection (match='nearest')"] = int((~best).sum())
            rows, band, mag, err = rows[best], band[best], mag[best], err[best]
        if not len(rows):
            return ParseResult(MultiBandLightCurve.empty(), dropped)
        upper = ~np.isfinite(err)
        flux = np.empty(len(rows))
        flux_err = np.empty(len(rows))
        for name in np.unique(band):
            sel = band == name
            zp = _vega_zero_point(name, options["wise_zero_point"])
            f, fe = mag_to_flux(mag[sel], name, np.where(upper[sel], 0.0, err[sel]),
                                zero_point=zp)
            flux[sel] = f.to_value(u.mJy)
            # an upper limit has no error: NaN, not 0
            flux_err[sel] = np.where(upper[sel], np.nan, fe.to_value(u.mJy))
        time = to_mjd_tdb(mjd[rows], "wise.mjd", ra=ra[rows] * u.deg, dec=dec[rows] * u.deg)
        ti = target[rows]
        lc = MultiBandLightCurve.from_arrays(
            batch.objectid[ti], band, Time(time, format="mjd", scale="tdb"),
            flux * u.mJy, flux_err * u.mJy, mag=mag * u.mag,
            mag_err=np.where(upper, np.nan, err) * u.mag, upper_limit=upper,
            source_id=cntr[rows], separation=sep[rows] * u.arcsec,
            ra=batch.ra[ti] * u.deg, dec=batch.dec[ti] * u.deg)
        return ParseResult(lc, dropped)


def _vega_zero_point(band, wise_zero_point):
    """Flux density of Vega magnitude 0 for a WISE band, by convention.

    Same conventions as `multilc.photometry.nanomaggies_to_flux`: the Vega->AB
    offsets (WISE All-Sky Explanatory Supplement sec. IV.4.h) or the
    isophotal F_nu0 (Jarrett et al. 2011).
    """
    from multilc.photometry import (AB_ZERO_POINT, WISE_AB_OFFSETS,
                                    WISE_ISOPHOTAL_ZERO_POINTS)

    name = band.split(":")[1]
    if wise_zero_point == "isophotal":
        return WISE_ISOPHOTAL_ZERO_POINTS[name]
    return AB_ZERO_POINT * 10 ** (-0.4 * WISE_AB_OFFSETS[name])
