"""Gaia DR3 epoch photometry, G, BP and RP, from ESA (``archive="gaia"``).

What is queried
    ``route="service"`` (small samples)
        1. A TAP crossmatch of the targets, uploaded in batches of
           ``chunk_size`` rows, against ``gaiadr3.gaia_source`` on the Gaia
           archive TAP service (https://gea.esac.esa.int/tap-server/tap)::

               SELECT mt.objectid, gs.source_id, gs.ra, gs.dec,
                      gs.has_epoch_photometry,
                      DISTANCE(POINT('ICRS', mt.ra, mt.dec),
                               POINT('ICRS', gs.ra, gs.dec)) AS dist
               FROM gaiadr3.gaia_source AS gs
               JOIN TAP_UPLOAD.mytable AS mt
               ON 1 = CONTAINS(POINT('ICRS', gs.ra, gs.dec),
                               CIRCLE('ICRS', mt.ra, mt.dec, <radius deg>))

        2. DataLink ``EPOCH_PHOTOMETRY`` products of the matched sources that
           have epoch photometry, from https://gea.esac.esa.int/data-server/data
           (POST ``RETRIEVAL_TYPE=EPOCH_PHOTOMETRY``, ``ID=<comma list>``,
           ``DATA_STRUCTURE``, ``FORMAT``, ``RELEASE=Gaia DR3``,
           ``VALID_DATA=false``, ``USE_ZIP_ALWAYS=true``: the parameters of
           astroquery's ``Gaia.load_data``), at most 5,000 ids per request
           (the archive's DataLink limit: ESA Gaia archive "DataLink products"
           help page; also astroquery and today's Fornax tool).  The answer is
           a zip with one file per source (``EPOCH_PHOTOMETRY-Gaia DR3
           <source_id>.xml`` for ``INDIVIDUAL``).
    ``route="bulk"`` (large samples)
        The Gaia DR3 epoch-photometry HATS catalog
        (https://data.lsdb.io/hats/gaia_dr3_epoch_phot/): one row per source
        (``source_id``, ``ra``, ``dec``) with a nested ``epoch_photometry``
        column holding the DR3 ``epoch_photometry`` arrays (``g_transit_time``,
        ``g_transit_flux``, ..., ``bp_obs_time``, ``rp_flux``,
        ``variability_flag_g_reject``, ...).  Only the partitions the target
        cones touch are read.
    ``route="auto"`` (default) takes the bulk route from ``bulk_threshold``
    targets on.

Units
    Fluxes are in e-/s; they become mJy with
    `multilc.photometry.gaia_electrons_to_flux` (DR3 AB zero points, Riello et
    al. 2021, A&A 649, A3, Table 3).  The archive's Vega magnitude is kept in
    ``mag``.

Time
    ``time`` (``g_transit_time``, ``bp_obs_time``, ``rp_obs_time``) is the
    barycentric JD in TCB minus 2455197.5 (Gaia DR3 epoch-photometry data
    model); `multilc.timescales.to_mjd_tdb` with system ``"gaia.tcb_jd2010"``
    makes it MJD(TDB): MJD = time + 55197.0, then TCB -> TDB.  (Today's tool
    adds 55197.5 and is half a day late.)

Masks and flags
    Transits flagged ``rejected_by_photometry`` or ``rejected_by_variability``
    are dropped by default and counted under those names; the option
    ``drop_rejected`` names which flags drop a transit (``()`` or None keeps
    them all).  Transits without a flux (null) are dropped and counted as
    ``"flux null (unavailable)"``.  ``flag`` holds ``other_flags`` with
    multilc's bit 2**32 set for ``rejected_by_photometry`` and 2**33 for
    ``rejected_by_variability``, so kept rejected transits stay marked.

Match policy
    All Gaia sources within the radius (default 1 arcsec) are kept
    (``match="all"``); ``match="nearest"`` keeps the closest.  Gaia positions
    are at epoch J2016.0; proper motion is not applied.

Files
    ``MultiBandLightCurve.read(path, format="gaia.epoch_photometry")`` reads
    DataLink epoch-photometry products (VOTable, CSV, ECSV, FITS, or the zip
    the archive returns) in the per-transit layout (``INDIVIDUAL`` or
    ``COMBINED``) and the one-row-per-source ``RAW`` layout.
"""
from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
from astropy import config as _config
from astropy import units as u
from astropy.table import Table, vstack
from astropy.time import Time

from multilc.archives._bulk import bulk_concurrency, memory_released
from multilc.collect.api import (Archive, Failure, HTMLPageError, ParseResult, http_request,
                                 http_session, register_archive)
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, ResponseError,
                                      TruncatedResponse, html_answer_of,
                                      record_last_response, table_from_text)
from multilc.errors import FileFormatError, InputError, MultilcError
from multilc.io.registry import register_file_format
from multilc.lightcurve import MultiBandLightCurve
from multilc.photometry import gaia_electrons_to_flux
from multilc.timescales import to_mjd_tdb

__all__ = ["Conf", "conf", "Gaia", "read_epoch_photometry", "epoch_table_from_raw",
           "REJECTED_BY_PHOTOMETRY_BIT", "REJECTED_BY_VARIABILITY_BIT",
           "MAX_DATALINK_IDS"]

NAME = "gaia"


# --------------------------------------------------------------------------- settings
class Conf(_config.ConfigNamespace):
    """Settings of the Gaia reader (environment: ``MULTILC_GAIA_<ITEM>``)."""

    tap_url = _config.ConfigItem("https://gea.esac.esa.int/tap-server/tap",
                                 "Gaia archive TAP service.")
    source_table = _config.ConfigItem("gaiadr3.gaia_source", "Table crossmatched by TAP.")
    datalink_url = _config.ConfigItem("https://gea.esac.esa.int/data-server/data",
                                      "Gaia archive DataLink data server.")
    release = _config.ConfigItem("Gaia DR3", "DataLink RELEASE parameter.")
    data_structure = _config.ConfigItem(
        "INDIVIDUAL", "DataLink DATA_STRUCTURE: INDIVIDUAL, COMBINED or RAW.")
    product_format = _config.ConfigItem(
        "votable", "DataLink FORMAT: votable, csv, ecsv or fits.")
    datalink_chunk_size = _config.ConfigItem(
        5000, "Source ids per DataLink request (the archive accepts at most 5000).")
    hats_catalog = _config.ConfigItem(
        "https://data.lsdb.io/hats/gaia_dr3_epoch_phot/",
        "HATS catalog of DR3 sources with epoch photometry (bulk route).")
    s3_endpoint_url = _config.ConfigItem(
        "", "S3 endpoint when hats_catalog is an s3:// URL (empty: AWS).")
    s3_region = _config.ConfigItem("us-east-1", "Region of an s3:// hats_catalog.")
    bulk_threshold = _config.ConfigItem(
        500, "route='auto' takes the bulk route from this many targets on.")
    chunk_size = _config.ConfigItem(5000, "Targets per TAP upload (service batch).")
    concurrency = _config.ConfigItem(2, "Service batches in flight at once.")


conf = Conf()

# --------------------------------------------------------------------------- constants
#: The Gaia archive's limit of source ids per DataLink request (ESA Gaia
#: archive help, "DataLink products": "a maximum of 5000 sources"; the same
#: limit is hard-coded in today's Fornax tool).
MAX_DATALINK_IDS = 5000
#: Bits multilc adds to ``other_flags`` in ``flag`` for the two rejection
#: flags.  DR3 ``other_flags`` is a per-transit bit mask whose documented bits
#: are far below 2**32 (the real rows in pyvo's test file have 4097); bits 32
#: and 33 are therefore free.  This is a multilc convention, not the archive's.
REJECTED_BY_PHOTOMETRY_BIT = 1 << 32
REJECTED_BY_VARIABILITY_BIT = 1 << 33
#: Per-transit band names -> multilc bands.
BANDS = {"G": "gaia:G", "BP": "gaia:BP", "RP": "gaia:RP"}
#: DR3 ``epoch_photometry`` (RAW) array columns per band: time, flux, flux
#: error, magnitude, variability rejection, photometry rejection.  Column
#: names from the Gaia DR3 data model of ``gaiadr3.epoch_photometry``.  The
#: RAW layout has no single per-transit photometry-rejection flag for G (only
#: per-CCD ``photometry_flag_sm/af*_reject``); None there.  That BP/RP
#: ``photometry_flag_{bp,rp}_reject`` equal the per-transit
#: ``rejected_by_photometry`` of the INDIVIDUAL layout is our reading of the
#: data model, not stated in it.
RAW_BAND_COLUMNS = {
    "G": ("g_transit_time", "g_transit_flux", "g_transit_flux_error", "g_transit_mag",
          "variability_flag_g_reject", None),
    "BP": ("bp_obs_time", "bp_flux", "bp_flux_error", "bp_mag",
           "variability_flag_bp_reject", "photometry_flag_bp_reject"),
    "RP": ("rp_obs_time", "rp_flux", "rp_flux_error", "rp_mag",
           "variability_flag_rp_reject", "photometry_flag_rp_reject"),
}
#: Columns of the per-transit (INDIVIDUAL/COMBINED) layout that we use.
TRANSIT_COLUMNS = ("source_id", "transit_id", "band", "time", "mag", "flux", "flux_error",
                   "rejected_by_photometry", "rejected_by_variability", "other_flags")
DATA_STRUCTURES = ("INDIVIDUAL", "COMBINED", "RAW")
PRODUCT_FORMATS = ("votable", "csv", "ecsv", "fits")
REJECTION_FLAGS = ("photometry", "variability")
_NULL_FLUX_REASON = "flux null (unavailable)"
#: Gaia epoch-photometry times are BJD(TCB) - 2455197.5 (DR3 data model), i.e.
#: MJD - 55197: the plausible MJD range in that system.
GAIA_TIME_RANGE = (MJD_RANGE[0] - 55197.0, MJD_RANGE[1] - 55197.0)
_E_PER_S = u.electron / u.s
#: The Gaia archive declares epoch fluxes as ``s-1`` (electrons implicit) in
#: its DR3 VOTable products, for example the product in pyvo's test data
#: ``pyvo/mivot/tests/data/test.mivot_viewer.xml``: accepted as e-/s.
_FLUX_UNITS_SEEN = (1 / u.s,)

#: Units of the per-transit layout (DR3 data model of ``epoch_photometry``:
#: time [d], flux and flux_error [e-/s], mag [mag]).  A unit a product
#: declares (VOTable, ECSV and FITS products do) is converted; CSV products
#: declare none and are taken to be in these.  Nothing is dropped here: the
#: values are checked by `TRANSIT_CONTRACT` once every layout is normalised.
TRANSIT_UNITS = ResponseContract(
    archive=NAME, what="epoch-photometry product",
    fields=(Field("source_id", "int", nullable=True, required=False, fill=-1),
            Field("transit_id", "int", nullable=True, required=False, fill=-1),
            Field("band", "str", nullable=True),
            Field("time", "float", unit=u.d, nullable=True),
            Field("flux", "float", unit=_E_PER_S, nullable=True, accepts=_FLUX_UNITS_SEEN),
            Field("flux_error", "float", unit=_E_PER_S, nullable=True, required=False,
                  accepts=_FLUX_UNITS_SEEN),
            Field("mag", "float", unit=u.mag, nullable=True, required=False),
            Field("rejected_by_photometry", "bool", nullable=True, required=False),
            Field("rejected_by_variability", "bool", nullable=True, required=False),
            Field("other_flags", "int", nullable=True, required=False, fill=0)))
#: What a per-transit row must hold to become a measurement.  Null fluxes
#: and times are counted separately (``flux null (unavailable)``), after the
#: rejection flags; here: times outside `GAIA_TIME_RANGE`, non-positive flux
#: errors and non-finite values.
TRANSIT_CONTRACT = ResponseContract(
    archive=NAME, what="epoch photometry",
    fields=(Field("time", "float", unit=u.d, valid=GAIA_TIME_RANGE, nullable=True),
            Field("flux", "float", unit=_E_PER_S, nullable=True),
            Field("flux_error", "float", unit=_E_PER_S, positive=True, nullable=True),
            Field("mag", "float", unit=u.mag, valid=(-5.0, 30.0), nullable=True)))
#: What the TAP crossmatch must hold (``dist`` in deg as ADQL DISTANCE
#: returns; a declared unit is converted).
MATCH_CONTRACT = ResponseContract(
    archive=NAME, what="TAP crossmatch",
    fields=(Field("objectid", "int"), Field("source_id", "int"),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0)),
            Field("dist", "float", unit=u.deg, valid=(0.0, 180.0)),
            Field("has_epoch_photometry", "bool", required=False, nullable=True,
                  fill=True)))


# --------------------------------------------------------------------------- layouts
def _plain(col, dtype, fill):
    """A column as a plain array with masked cells replaced by *fill*."""
    if hasattr(col, "mask") and np.any(col.mask):
        return np.ma.filled(np.ma.asarray(col).astype(dtype), fill)
    return np.asarray(col).astype(dtype)


def _as_bool(col):
    """Booleans from bool, int or 'true'/'false' text (CSV) columns; masked -> False."""
    arr = np.ma.asarray(col)
    if arr.dtype.kind in "US O".replace(" ", ""):
        text = np.char.lower(np.ma.filled(arr.astype(str), "false"))
        return np.isin(text, ("true", "t", "1"))
    return np.ma.filled(arr.astype(bool), False)


def _array_cells(col):
    """List of 1-d arrays from an array column (VOTable/FITS/ECSV) or text cells (CSV).

    How the Gaia archive writes RAW array cells in CSV is not documented where
    we could read it; "(1.0, 2.0)", "[1.0, 2.0]" and "{1.0 2.0}" are accepted.
    """
    try:
        return _array_cells_unchecked(col)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ResponseError(f"array column {getattr(col, 'name', '')!r} holds cells that "
                            f"are not numbers: {exc}", archive=NAME) from None


def _array_cells_unchecked(col):
    cells = []
    for cell in col:
        if isinstance(cell, (str, bytes)):
            text = cell.decode() if isinstance(cell, bytes) else cell
            parts = [p for p in re.split(r"[\s,()\[\]{}]+", text) if p]
            cells.append(np.array([np.nan if p.lower() in ("null", "nan", "")
                                   else float(p) if p.lower() not in ("true", "false")
                                   else float(p.lower() == "true") for p in parts]))
        elif cell is None or (np.ma.isMaskedArray(cell) and cell.size == 0):
            cells.append(np.zeros(0))
        elif isinstance(cell, list):  # from pyarrow lists: None -> NaN
            cells.append(np.array([np.nan if v is None else v for v in cell], dtype=float))
        else:
            # Booleans (rejection flags) become 0/1; masked cells NaN.
            cells.append(np.ma.filled(np.ma.asarray(cell).astype(float), np.nan))
    return cells


def _unit_factor(table, name, unit):
    """Factor turning column *name*'s declared unit into *unit* (1 if none declared)."""
    from multilc.collect.contract import declared_unit

    try:
        have = declared_unit(table, name)
    except ValueError as exc:
        raise ResponseError(f"column {name!r}: {exc}", archive=NAME) from None
    field = Field(name, unit=unit, accepts=_FLUX_UNITS_SEEN if unit == _E_PER_S else ())
    try:
        return field.factor(have)
    except u.UnitConversionError:
        raise ResponseError(f"column {name!r} is declared in {have}, which cannot be "
                            f"converted to {unit}", archive=NAME) from None


def _scaled(cells, factor):
    return cells if factor == 1.0 else [c * factor for c in cells]


def epoch_table_from_raw(raw):
    """Per-transit table from the RAW (one row per source, arrays) layout.

    Parameters
    ----------
    raw : `~astropy.table.Table`
        Columns ``source_id`` and the band arrays of `RAW_BAND_COLUMNS`
        (any band may be absent).

    Returns
    -------
    `~astropy.table.Table`
        One row per source, band and transit, with the columns of
        `TRANSIT_COLUMNS`.  Null times or fluxes become NaN.
    """
    out = {c: [] for c in TRANSIT_COLUMNS}
    source = _plain(raw["source_id"], "int64", -1)
    transit = (_array_cells(raw["transit_id"]) if "transit_id" in raw.colnames else None)
    for band, (tcol, fcol, ecol, mcol, vcol, pcol) in RAW_BAND_COLUMNS.items():
        if tcol not in raw.colnames or fcol not in raw.colnames:
            continue
        times = _scaled(_array_cells(raw[tcol]), _unit_factor(raw, tcol, u.d))
        fluxes = _scaled(_array_cells(raw[fcol]), _unit_factor(raw, fcol, _E_PER_S))
        errs = (_scaled(_array_cells(raw[ecol]), _unit_factor(raw, ecol, _E_PER_S))
                if ecol in raw.colnames else None)
        mags = (_scaled(_array_cells(raw[mcol]), _unit_factor(raw, mcol, u.mag))
                if mcol in raw.colnames else None)
        var = _array_cells(raw[vcol]) if vcol in raw.colnames else None
        phot = _array_cells(raw[pcol]) if pcol and pcol in raw.colnames else None
        for i in range(len(raw)):
            n = len(times[i])
            if len(fluxes[i]) != n:
                raise ResponseError(f"source {source[i]} has {n} {tcol} values but "
                                    f"{len(fluxes[i])} {fcol} values", archive=NAME)

            def get(cells, fill, i=i, n=n):
                return cells[i] if cells is not None and len(cells[i]) == n else np.full(n, fill)

            out["source_id"].append(np.full(n, source[i]))
            out["transit_id"].append(np.nan_to_num(get(transit, -1), nan=-1).astype("int64"))
            out["band"].append(np.full(n, band))
            out["time"].append(times[i])
            out["mag"].append(get(mags, np.nan))
            out["flux"].append(fluxes[i])
            out["flux_error"].append(get(errs, np.nan))
            out["rejected_by_photometry"].append(np.nan_to_num(get(phot, 0)) != 0)
            out["rejected_by_variability"].append(np.nan_to_num(get(var, 0)) != 0)
            out["other_flags"].append(np.zeros(n, "int64"))
    dtypes = {"source_id": "int64", "transit_id": "int64", "band": str, "time": float,
              "mag": float, "flux": float, "flux_error": float,
              "rejected_by_photometry": bool, "rejected_by_variability": bool,
              "other_flags": "int64"}
    return Table({c: (np.concatenate(v).astype(dtypes[c]) if v else np.zeros(0, dtypes[c]))
                  for c, v in out.items()})


def _normalise(table, where):
    """Per-transit table (TRANSIT_COLUMNS) from either layout; clear error otherwise."""
    cols = set(table.colnames)
    if {"band", "time", "flux"} <= cols:
        if "source_id" not in cols:
            sid = table.meta.get("SOURCEID", table.meta.get("source_id"))
            if sid is None:
                raise ResponseError(f"{where} has no source_id column or SOURCEID header",
                                    archive=NAME)
            table = table.copy(copy_data=False)
            try:
                table["source_id"] = np.full(len(table), int(sid), dtype="int64")
            except (TypeError, ValueError) as exc:
                raise ResponseError(f"{where}: SOURCEID header {sid!r} is not an id",
                                    archive=NAME) from exc
        checked = TRANSIT_UNITS.check(table)
        out = Table({c: checked[c] for c in TRANSIT_COLUMNS})
        out["band"] = np.char.strip(np.asarray(out["band"], dtype=str))
        return out
    if "source_id" in cols and any(c[0] in cols for c in RAW_BAND_COLUMNS.values()):
        return epoch_table_from_raw(table)
    raise ResponseError(f"{where} is not an epoch-photometry table (neither the "
                        "per-transit columns band/time/flux nor the RAW arrays "
                        f"g_transit_time/...); it has {table.colnames}", archive=NAME)


def _tables_from_bytes(content, name):
    """Epoch-photometry tables in one product file (by name suffix)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".xml", ".vot", ".votable"):
        from astropy.io import votable

        from multilc.collect.contract import check_votable_status

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", votable.exceptions.VOWarning)
                vot = votable.parse(io.BytesIO(content))
            tables = [t.to_table(use_names_over_ids=True) for t in vot.iter_tables()]
        except Exception as exc:  # noqa: BLE001 - any parser failure is the product's
            raise ResponseError(f"{name} is not a readable VOTable: {type(exc).__name__}: "
                                f"{str(exc)[:200]}", archive=NAME) from exc
        check_votable_status(vot, archive=NAME, what=name)
        epoch = [t for t in tables if {"band", "time", "flux"} <= set(t.colnames)
                 or "g_transit_time" in t.colnames or "bp_obs_time" in t.colnames]
        return epoch or tables
    if suffix in (".ecsv", ".csv"):
        # Answer text is parsed as text, never opened as a file name or URL.
        return [table_from_text(content, suffix[1:], archive=NAME, what=name)]
    if suffix in (".fits", ".fit"):
        from astropy.io import fits

        out = []
        try:
            with fits.open(io.BytesIO(content)) as hdul:
                for hdu in hdul[1:]:
                    if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                        out.append(Table.read(hdu))
        except Exception as exc:  # noqa: BLE001
            raise ResponseError(f"{name} is not a readable FITS table: "
                                f"{type(exc).__name__}: {str(exc)[:200]}",
                                archive=NAME) from exc
        return out
    if suffix == ".zip":
        return [t for member, data in _zip_members(content, name)
                for t in _tables_from_bytes(data, member)]
    raise ResponseError(f"cannot tell the format of {name!r} (expected .xml, .vot, "
                        ".csv, .ecsv, .fits or .zip)", archive=NAME)


def _zip_members(content, name):
    """``(member name, bytes)`` for each file in the zip *content* (checked: CRCs)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            return [(m, zf.read(m)) for m in zf.namelist() if not m.endswith("/")]
    except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib.error, EOFError, ...
        raise ResponseError(f"{name} is not a readable zip (cut off or damaged): "
                            f"{type(exc).__name__}: {exc}", archive=NAME) from exc


def epoch_table_from_bytes(content, name):
    """One per-transit table (`TRANSIT_COLUMNS`) from a product file or zip."""
    tables = [_normalise(t, name) for t in _tables_from_bytes(content, name)]
    if not tables:
        return _normalise(Table({"source_id": np.zeros(0, "int64"), "band": np.zeros(0, str),
                                 "time": np.zeros(0), "flux": np.zeros(0)}), name)
    return vstack(tables, metadata_conflicts="silent") if len(tables) > 1 else tables[0]


# --------------------------------------------------------------------------- conversion
def _check_drop(drop_rejected):
    drops = tuple(drop_rejected or ())
    bad = [d for d in drops if d not in REJECTION_FLAGS]
    if bad:
        raise InputError(f"{NAME}: drop_rejected entries must be among {REJECTION_FLAGS}, "
                         f"got {bad}")
    return drops


def transits_to_lightcurve(ep, objectid, separation, *, drop_rejected=REJECTION_FLAGS):
    """Convert per-transit rows to a light curve.

    Parameters
    ----------
    ep : `~astropy.table.Table`
        Columns `TRANSIT_COLUMNS`.
    objectid : numpy.ndarray of int
        Target of each row.
    separation : `~astropy.units.Quantity`
        Target-source distance of each row [angle] (NaN if unknown).
    drop_rejected : sequence of {"photometry", "variability"}
        Rejection flags that drop a transit.

    Returns
    -------
    lc : `~multilc.MultiBandLightCurve`
    dropped : dict
        Rows removed, by reason.
    """
    drops = _check_drop(drop_rejected)
    dropped = {}
    n = len(ep)
    if n == 0:
        return MultiBandLightCurve.empty(), dropped
    checked = TRANSIT_CONTRACT.check(ep)
    dropped.update(checked.dropped)
    if len(checked) < n:
        ep, objectid = ep[checked.index], np.asarray(objectid)[checked.index]
        separation = u.Quantity(separation)[checked.index]
        n = len(ep)
    band = np.asarray(ep["band"], dtype=str)
    unknown = ~np.isin(band, list(BANDS))
    if unknown.any():
        raise ResponseError(f"unknown band values {sorted(set(band[unknown]))[:5]}; Gaia "
                            "epoch photometry has G, BP and RP", archive=NAME)
    flux = np.asarray(ep["flux"], dtype=float)
    time = np.asarray(ep["time"], dtype=float)
    rej_p = np.asarray(ep["rejected_by_photometry"], dtype=bool)
    rej_v = np.asarray(ep["rejected_by_variability"], dtype=bool)
    keep = np.ones(n, bool)
    # Rejection first, so a rejected transit counts under its flag even if the
    # archive also nulled its flux.
    for name, rej in (("photometry", rej_p), ("variability", rej_v)):
        if name in drops:
            hit = keep & rej
            if hit.any():
                dropped[f"rejected_by_{name}"] = int(hit.sum())
            keep &= ~hit
    null = keep & (~np.isfinite(flux) | ~np.isfinite(time))
    if null.any():
        dropped[_NULL_FLUX_REASON] = int(null.sum())
        keep &= ~null
    idx = np.flatnonzero(keep)
    if not len(idx):
        return MultiBandLightCurve.empty(), dropped
    mjd = to_mjd_tdb(time[idx], "gaia.tcb_jd2010")
    f_mjy = np.empty(len(idx))
    e_mjy = np.empty(len(idx))
    for b in BANDS:
        sel = band[idx] == b
        if sel.any():
            f, e = gaia_electrons_to_flux(flux[idx][sel], BANDS[b],
                                          np.asarray(ep["flux_error"], float)[idx][sel])
            f_mjy[sel] = f.to_value(u.mJy)
            e_mjy[sel] = e.to_value(u.mJy)
    flags = (np.asarray(ep["other_flags"], dtype="int64")
             | np.where(rej_p, REJECTED_BY_PHOTOMETRY_BIT, 0)
             | np.where(rej_v, REJECTED_BY_VARIABILITY_BIT, 0))
    lc = MultiBandLightCurve.from_arrays(
        np.asarray(objectid, dtype="int64")[idx], np.array([BANDS[b] for b in band[idx]]),
        Time(mjd, format="mjd", scale="tdb"), f_mjy * u.mJy, e_mjy * u.mJy,
        mag=np.asarray(ep["mag"], float)[idx] * u.mag, flag=flags[idx],
        source_id=np.asarray(ep["source_id"], dtype="int64")[idx],
        separation=u.Quantity(separation)[idx])
    return lc, dropped


def _attach_targets(ep, matches):
    """Rows of *ep* repeated for each (objectid, separation) its source matched."""
    if len(matches) == 0 or len(ep) == 0:
        return np.zeros(0, int), np.zeros(0, "int64"), np.zeros(0)
    sid = np.asarray(ep["source_id"], dtype="int64")
    m_sid = np.asarray(matches["source_id"], dtype="int64")
    rows, oids, seps = [], [], []
    order = np.argsort(m_sid, kind="stable")
    # For each match (a source may match several targets) take that source's rows.
    by_source = {}
    for i, s in enumerate(sid):
        by_source.setdefault(int(s), []).append(i)
    for j in order:
        hit = by_source.get(int(m_sid[j]))
        if hit:
            rows.extend(hit)
            oids.extend([int(matches["objectid"][j])] * len(hit))
            seps.extend([float(matches["sep_arcsec"][j])] * len(hit))
    return np.asarray(rows, int), np.asarray(oids, "int64"), np.asarray(seps, float)


def _select_matches(matches, match):
    """Apply the match policy to a table objectid, source_id, sep_arcsec."""
    if match == "nearest" and len(matches):
        matches = matches.copy()
        matches.sort(["objectid", "sep_arcsec"])
        first = np.ones(len(matches), bool)
        first[1:] = matches["objectid"][1:] != matches["objectid"][:-1]
        matches = matches[first]
    return matches


# --------------------------------------------------------------------------- archive
@register_archive
class Gaia(Archive):
    """Gaia DR3 epoch photometry (TAP + DataLink, or the HATS catalog).

    Options: ``route`` (``"auto"``, ``"service"``, ``"bulk"``), ``match``
    (``"all"``/``"nearest"``), ``drop_rejected`` (which of
    ``("photometry", "variability")`` drop a transit; ``()`` keeps all).
    """

    name = NAME
    description = "Gaia DR3 epoch photometry G, BP, RP (TAP+DataLink or HATS), mJy"
    bands = tuple(BANDS.values())
    chunk_size = 5000
    concurrency = 2
    default_radius = 1 * u.arcsec
    default_options = {"route": "auto", "match": "all", "drop_rejected": REJECTION_FLAGS}
    env_prefix = "GAIA"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        self.check_choice("route", ("auto", "service", "bulk"))
        self.check_choice("match", ("all", "nearest"))
        self.options["drop_rejected"] = _check_drop(self.options["drop_rejected"])

    # ------------------------------------------------------------------ planning
    def concurrency_for(self, batches):
        if batches and batches[0].options.get("route") == "bulk":
            return bulk_concurrency(self, [_catalog(self)])
        return self.max_concurrency

    def plan(self, sample):
        route = self.options["route"]
        if route == "auto":
            route = "bulk" if len(sample) >= int(self.setting("bulk_threshold")) else "service"
        if route == "bulk":
            return _bulk_plan(self, sample)
        batches = super().plan(sample)
        for b in batches:
            b.options = {**b.options, "route": "service"}
        return batches

    # ------------------------------------------------------------------ query
    def query(self, batch):
        """Raw answers for *batch*: the crossmatch and the DataLink zips (dict)."""
        if batch.options.get("route") == "bulk":
            return _bulk_query(self, batch)
        checked = MATCH_CONTRACT.check(self._crossmatch(batch),
                                       objectids=batch.objectid.tolist())
        ids = np.unique(checked["source_id"][checked["has_epoch_photometry"]])
        zips = self._datalink(batch, ids)
        return {"route": "service", "matches": _matches_table(checked), "zips": zips,
                "match_dropped": checked.dropped, "data_structure": self._structure(),
                "format": self._product_format()}

    def _structure(self):
        value = str(self.setting("data_structure")).upper()
        if value not in DATA_STRUCTURES:
            raise InputError(f"{NAME}: data_structure must be one of {DATA_STRUCTURES}, "
                             f"got {value!r}")
        return value

    def _product_format(self):
        value = str(self.setting("product_format")).lower()
        if value not in PRODUCT_FORMATS:
            raise InputError(f"{NAME}: product_format must be one of {PRODUCT_FORMATS}, "
                             f"got {value!r}")
        return value

    def adql(self):
        """The ADQL crossmatch query sent with each upload."""
        r_deg = float(self.radius.to_value(u.deg))
        return (
            "SELECT mt.objectid, gs.source_id, gs.ra, gs.dec, gs.has_epoch_photometry, "
            "DISTANCE(POINT('ICRS', mt.ra, mt.dec), POINT('ICRS', gs.ra, gs.dec)) AS dist "
            f"FROM {self.setting('source_table')} AS gs "
            "JOIN TAP_UPLOAD.mytable AS mt "
            "ON 1 = CONTAINS(POINT('ICRS', gs.ra, gs.dec), "
            f"CIRCLE('ICRS', mt.ra, mt.dec, {r_deg!r}))")

    def _crossmatch(self, batch):
        import pyvo
        import requests
        from pyvo.dal import DALFormatError, DALQueryError, DALServiceError

        upload = Table({"objectid": np.asarray(batch.objectid, "int64"),
                        "ra": np.asarray(batch.ra, float), "dec": np.asarray(batch.dec, float)})
        session = record_last_response(http_session(self.timeout))
        service = pyvo.dal.TAPService(self.setting("tap_url"), session=session)
        try:
            with warnings.catch_warnings():
                # An overflow is checked below and reported as a failure.
                warnings.simplefilter("ignore", pyvo.dal.DALOverflowWarning)
                result = service.run_sync(self.adql(), uploads={"mytable": upload})
        except DALQueryError as exc:
            raise self.error(f"the TAP crossmatch was refused: {exc}", batch) from exc
        except requests.RequestException as exc:
            raise self.error(f"TAP request failed: {exc}", batch, transient=True) from exc
        except (DALFormatError, ValueError) as exc:  # not a VOTable (HTML, cut, ...)
            if isinstance(getattr(exc, "cause", None), requests.RequestException):
                # pyvo wraps a connection broken while reading the VOTable
                raise self.error(f"TAP answer broke off: {exc}", batch,
                                 transient=True) from exc
            problem = html_answer_of(session, archive=NAME, what="TAP crossmatch answer",
                                     objectids=batch.objectid.tolist())
            if problem is not None:
                raise problem from exc
            raise self.error(f"the TAP service answered something that is not a "
                             f"VOTable: {exc}", batch) from exc
        except DALServiceError as exc:
            code = getattr(exc, "code", None)
            transient = code is None or code == 429 or (isinstance(code, int) and code >= 500)
            raise self.error(f"TAP service error: {exc}", batch,
                             transient=transient) from exc
        if str(getattr(result, "query_status", "OK")).upper() == "OVERFLOW":
            raise self.error(f"the TAP service cut the crossmatch at {len(result)} rows "
                             "(its row limit); use a smaller chunk_size or radius", batch)
        return result.to_table()

    def _datalink(self, batch, ids):
        chunk = int(self.setting("datalink_chunk_size"))
        if not 1 <= chunk <= MAX_DATALINK_IDS:
            raise InputError(f"{NAME}: datalink_chunk_size must be 1-{MAX_DATALINK_IDS} "
                             f"(the archive's limit), got {chunk}")
        session = http_session(self.timeout)
        url = self.setting("datalink_url")
        zips = []
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            data = {"RETRIEVAL_TYPE": "EPOCH_PHOTOMETRY",
                    "ID": ",".join(str(int(i)) for i in part),
                    "DATA_STRUCTURE": self._structure(), "FORMAT": self._product_format(),
                    "RELEASE": self.setting("release"), "VALID_DATA": "false",
                    "USE_ZIP_ALWAYS": "true"}
            resp = http_request(self, batch, "POST", url, session=session, data=data,
                                timeout=self.timeout)
            body = resp.content
            problem = html_answer_of(resp, archive=NAME, what="DataLink answer",
                                     objectids=batch.objectid.tolist())
            if isinstance(problem, HTMLPageError):
                raise problem
            if not body.startswith(b"PK"):
                head = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
                raise self.error(f"DataLink answered something that is not a zip for "
                                 f"{len(part)} source ids: {head!r}", batch)
            try:
                with zipfile.ZipFile(io.BytesIO(body)) as zf:
                    damaged = zf.testzip()
            except Exception as exc:  # noqa: BLE001 - BadZipFile, EOFError, zlib.error
                damaged = f"{type(exc).__name__}: {exc}"
            if damaged is not None:
                # A zip cut short in transmission (its central directory is at
                # the end): worth asking again.
                raise TruncatedResponse(f"DataLink zip for {len(part)} source ids is cut "
                                        f"off or damaged ({damaged})", archive=NAME,
                                        objectids=batch.objectid.tolist())
            zips.append(body)
        return zips

    # ------------------------------------------------------------------ parse
    def parse(self, raw, batch):
        """Crossmatch + epoch photometry -> `~multilc.collect.ParseResult`."""
        if raw.get("route") == "bulk":
            return memory_released(_bulk_parse(self, raw, batch))
        matches = _select_matches(Table(raw["matches"]), self.options["match"])
        dropped = dict(raw.get("match_dropped", {}))
        failures, pieces = [], []
        for k, content in enumerate(raw["zips"]):
            try:
                members = _zip_members(content, f"DataLink zip {k + 1}")
            except MultilcError as exc:
                failures.append(_failure(matches, None, exc))
                continue
            for member, data in members:
                # One source's product failing costs that source's targets only.
                sid = _source_id_of(member)
                try:
                    ep = epoch_table_from_bytes(data, member)
                    rows, oids, seps = _attach_targets(ep, matches)
                    if not len(rows):
                        continue
                    lc, drops = transits_to_lightcurve(
                        ep[rows], oids, seps * u.arcsec,
                        drop_rejected=self.options["drop_rejected"])
                except Exception as exc:  # noqa: BLE001 - reported per source
                    failures.append(_failure(matches, sid, exc, member))
                    continue
                pieces.append(lc)
                for reason, count in drops.items():
                    dropped[reason] = dropped.get(reason, 0) + count
        lc = MultiBandLightCurve.concat(pieces) if pieces else MultiBandLightCurve.empty()
        return ParseResult(lc, dropped, failures)


_SOURCE_ID_IN_NAME = re.compile(r"(\d{6,})(?!.*\d{6,})")


def _source_id_of(member):
    """The Gaia source_id in a DataLink member name (``... Gaia DR3 <id>.xml``)."""
    m = _SOURCE_ID_IN_NAME.search(Path(member).name)
    return int(m.group(1)) if m else None


def _failure(matches, source_id, exc, member=None):
    """A `Failure` for the targets matched to *source_id* (all if unknown)."""
    sid = np.asarray(matches["source_id"], "int64")
    oid = np.asarray(matches["objectid"], "int64")
    who = oid[sid == source_id] if source_id is not None else oid
    if not len(who):
        who = oid
    where = f"product {member!r}" if member else "DataLink answer"
    text = str(exc) if isinstance(exc, MultilcError) else f"{type(exc).__name__}: {exc}"
    return Failure(NAME, sorted(set(int(i) for i in who)), type(exc).__name__,
                   f"{NAME}: {where} could not be read: {text}")


def _matches_table(checked):
    """Plain crossmatch columns (from `MATCH_CONTRACT`): objectid, source_id, ra, dec,
    sep_arcsec."""
    return {"objectid": checked["objectid"], "source_id": checked["source_id"],
            "ra": checked["ra"], "dec": checked["dec"],
            "sep_arcsec": checked["dist"] * 3600.0}


# --------------------------------------------------------------------------- bulk route
#: Fields of the nested ``epoch_photometry`` column read on the bulk route
#: (those present in the catalog's schema are read; the rest are skipped).
HATS_NESTED = "epoch_photometry"
HATS_FIELDS = tuple(["transit_id"] + [c for cols in RAW_BAND_COLUMNS.values()
                                      for c in cols if c])


def _catalog(archive):
    from multilc.catalogs import HatsCatalog

    url = str(archive.setting("hats_catalog"))
    catalog = HatsCatalog(url, endpoint_url=archive.setting("s3_endpoint_url") or None,
                          region=archive.setting("s3_region") or None)
    return catalog


def _bulk_plan(archive, sample):
    from multilc.archives._bulk import plan_partition_batches

    coord = sample.coord.icrs
    groups = _catalog(archive).plan(coord.ra.deg, coord.dec.deg, archive.radius)
    batches = plan_partition_batches(archive, sample, groups)
    for b in batches:
        b.options = {**b.options, "route": "bulk"}
    return batches


def _bulk_query(archive, batch):
    """Read the touched partitions, keep the rows within the radius of a target."""
    import pyarrow as pa

    from multilc.catalogs import cone_match

    catalog = _catalog(archive)
    schema = catalog.schema()
    if HATS_NESTED not in schema.names:
        raise archive.error(f"HATS catalog {catalog.url} has no nested "
                            f"{HATS_NESTED!r} column; it has {schema.names}", batch)
    nested_type = schema.field(HATS_NESTED).type
    if pa.types.is_struct(nested_type):          # nested-pandas: struct of lists
        present = {nested_type.field(i).name for i in range(nested_type.num_fields)}
    else:
        raise archive.error(f"{HATS_NESTED!r} of {catalog.url} is {nested_type}, not the "
                            "struct of lists nested-pandas writes", batch)
    fields = [f for f in HATS_FIELDS if f in present]
    columns = ["source_id"] + [f"{HATS_NESTED}.{f}" for f in fields]
    partitions = [tuple(p) for p in batch.options["partitions"]]
    rows = catalog.read(partitions, columns, ra=batch.ra, dec=batch.dec,
                        radius=archive.radius)
    info = catalog.info()
    ti, ri, sep = cone_match(batch.ra, batch.dec,
                             rows[info["ra_column"]].to_numpy(zero_copy_only=False),
                             rows[info["dec_column"]].to_numpy(zero_copy_only=False),
                             archive.radius)
    kept = np.unique(ri)
    rows = rows.take(pa.array(kept, pa.int64()))
    sid = rows["source_id"].to_numpy(zero_copy_only=False).astype("int64")
    matched_sid = sid[np.searchsorted(kept, ri)] if len(ri) else np.zeros(0, "int64")
    matches = {"objectid": np.asarray(batch.objectid, "int64")[ti],
               "source_id": matched_sid,
               "sep_arcsec": sep.to_value(u.arcsec)}
    rename = {f"{HATS_NESTED}.{f}": f for f in fields}
    rows = rows.rename_columns([rename.get(c, c) for c in rows.column_names])
    return {"route": "bulk", "matches": matches, "rows": rows}


def _bulk_parse(archive, raw, batch):
    rows = raw["rows"]
    matches = _select_matches(Table(raw["matches"]), archive.options["match"])
    if rows.num_rows == 0 or not len(matches):
        return ParseResult(MultiBandLightCurve.empty())
    table = Table()
    for name in rows.column_names:
        col = rows[name]
        values = col.to_pylist()
        if name in HATS_FIELDS:
            cells = np.empty(len(values), dtype=object)
            cells[:] = [[] if v is None else v for v in values]
            table[name] = cells
        else:
            table[name] = np.asarray(values)
    ep = epoch_table_from_raw(table)
    idx, oids, seps = _attach_targets(ep, matches)
    lc, dropped = transits_to_lightcurve(ep[idx], oids, seps * u.arcsec,
                                         drop_rejected=archive.options["drop_rejected"])
    return ParseResult(lc, dropped)


# --------------------------------------------------------------------------- files
def read_epoch_photometry(path, *, objectid=None, drop_rejected=REJECTION_FLAGS):
    """Read a Gaia DR3 DataLink epoch-photometry product.

    Parameters
    ----------
    path : str or path-like
        A VOTable (``.xml``/``.vot``), CSV, ECSV or FITS product in the
        per-transit (INDIVIDUAL/COMBINED) or RAW layout, or the DataLink zip.
    objectid : int, optional
        Target id given to every row (default: each row's Gaia ``source_id``).
    drop_rejected : sequence of {"photometry", "variability"}
        Rejection flags that drop a transit (default both; ``()`` keeps all).

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        Counts of dropped rows are in ``lc.ds.attrs["dropped"]`` (JSON).

    Raises
    ------
    multilc.errors.FileFormatError
        The file is not a readable product (names the file and the problem).
    """
    path = Path(path)
    drop_rejected = _check_drop(drop_rejected)
    try:
        ep = epoch_table_from_bytes(path.read_bytes(), path.name)
        ids = (np.full(len(ep), int(objectid)) if objectid is not None
               else np.asarray(ep["source_id"], "int64"))
        lc, dropped = transits_to_lightcurve(ep, ids, np.full(len(ep), np.nan) * u.arcsec,
                                             drop_rejected=drop_rejected)
    except MultilcError as exc:
        raise FileFormatError(path, f"not a readable Gaia epoch-photometry product: "
                              f"{exc}") from exc
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read: {exc}") from exc
    lc.ds.attrs["dropped"] = json.dumps(dropped)
    return lc


register_file_format("gaia.epoch_photometry", MultiBandLightCurve,
                     reader=read_epoch_photometry)
