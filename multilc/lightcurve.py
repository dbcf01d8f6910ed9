"""The multi-band light-curve container.

`MultiBandLightCurve` wraps one `xarray.Dataset` with four dimensions:

``obs``
    every measurement, sorted by (object, band, time). Integer codes
    ``obs_object`` and ``obs_band`` point into the ``object`` and ``band``
    dimensions, so a measurement costs 30 bytes with the required variables
    (time, flux, flux_err: float64; object code: int32; band code: int16).
``object``
    per-target metadata: ``objectid``, ``name`` (the target's name, such as
    ``"Mrk 590"``; ``""`` when unknown), ``label``, ``ra``, ``dec``.
``band``
    per-band metadata: name (``ztf:g``), archive, photometric system, zero
    point, effective wavelength, flux unit, the archive's native time system.
``event``
    single events that are not fluxes (neutrinos, gamma-ray triggers).

Flux storage never mixes units.  Bands with an absolute calibration are stored
in mJy in ``flux``/``flux_err``; bands without one (TESS, Kepler and K2
count rates in e-/s) are stored in ``flux_instrumental``/
``flux_instrumental_err`` with their own unit, and hold NaN in the other pair.
Times are MJD in the TDB scale at the solar-system barycentre; readers convert
archive-native times with `multilc.timescales`.

Metadata travels in the dataset's attributes as JSON strings, so that every
file format can store it: ``ds.attrs["multilc_meta"]`` holds `lc.meta` (a
free dict: provenance, user notes) and ``ds.attrs["multilc_report"]`` the
collection report of the run that made the light curve.

Construction is cheap: the ``from_*`` constructors and `concat` validate
their input once and keep plain numpy columns; the `xarray.Dataset` is built
only when it is first needed (``lc.ds``, selection, export).  Readers can
therefore build one light curve per target and concatenate them at a cost
close to one `pandas.concat` of the same data.
"""
from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from astropy import units as u
from astropy.table import QTable
from astropy.time import Time

from multilc import photometry
from multilc.errors import InputError, MultilcError, require
from multilc.io.registry import LightCurveRead, LightCurveWrite
from astropy.io.registry import UnifiedReadWriteMethod

__all__ = ["MultiBandLightCurve", "LightCurveError", "SelectionError",
           "ObjectNotFoundError", "DuplicateDataWarning", "TIME_SCALE", "TIME_FORMAT",
           "CALIBRATED_UNIT", "INSTRUMENTAL_UNIT", "EVENT_COLUMNS", "make_events",
           "clip_mask"]

#: The one time scale of the model: MJD, TDB, barycentric.
TIME_SCALE = "tdb"
TIME_FORMAT = "mjd"
TIME_REFERENCE = "solar system barycentre"
#: Unit of calibrated flux densities in storage.
CALIBRATED_UNIT = u.mJy
#: Unit of uncalibrated count rates (TESS, Kepler, K2) in storage.
INSTRUMENTAL_UNIT = u.electron / u.s
ENERGY_UNIT = u.GeV
ANGLE_UNIT = u.deg
SEPARATION_UNIT = u.arcsec

# Optional per-measurement variables: name -> (dtype, fill value for pieces
# that lack the variable, unit or None).
_OPTIONAL_OBS = {
    "mag": ("float64", np.nan, "mag"),
    "mag_err": ("float64", np.nan, "mag"),
    "upper_limit": ("bool", False, None),
    "flag": ("int64", 0, None),
    "source_id": ("int64", -1, None),
    "separation": ("float64", np.nan, "arcsec"),
    # number of measurements averaged into a row by `MultiBandLightCurve.bin`
    "n_binned": ("int64", 1, None),
}
_FLUX_PAIRS = {"calibrated": ("flux", "flux_err"),
               "instrumental": ("flux_instrumental", "flux_instrumental_err")}
_BAND_VARS = ("archive", "system", "zero_point", "wavelength", "flux_unit",
              "native_time", "band_notes")
#: Event-table columns, their storage dtypes and units.
EVENT_COLUMNS = {
    "objectid": ("int64", None),
    "archive": ("str", None),
    "time": ("float64", "d"),
    "event_id": ("str", None),
    "energy": ("float64", "GeV"),
    "error_radius": ("float64", "deg"),
    "separation": ("float64", "deg"),
}


class LightCurveError(MultilcError, ValueError):
    """Input that cannot become a valid `MultiBandLightCurve`."""


class SelectionError(LightCurveError, InputError):
    """A selection that names nothing: unknown object, reversed time range."""


class ObjectNotFoundError(SelectionError, KeyError):
    """An object id or name that is not in the light curve (``lc[key]``)."""

    def __str__(self):
        # KeyError would show the repr of the message (quoted); show it plainly.
        return str(self.args[0]) if self.args else ""


class DuplicateDataWarning(UserWarning):
    """`MultiBandLightCurve.concat` met the same measurement more than once."""


#: Object variables (dimension ``object``).
_OBJECT_VARS = ("objectid", "name", "label", "ra", "dec")
#: Event variables (dimension ``event``).
_EVENT_VARS = ("event_object", "event_archive", "event_time", "event_id", "event_energy",
               "event_error_radius", "event_separation")
_NORMALIZED_ATTR = "multilc_normalized"
_META_ATTR = "multilc_meta"
_REPORT_ATTR = "multilc_report"


# --------------------------------------------------------------------------- helpers
def _as_1d(name, values, n=None, dtype=None):
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full(n if n is not None else 1, arr.item() if dtype is not object else arr)
    if arr.ndim != 1:
        raise LightCurveError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise LightCurveError(
            f"{name} has {len(arr)} values but there are {n} measurements; "
            "every per-measurement array must have the same length")
    return arr


def _quantity_values(name, value, unit, n, *, equivalencies=None):
    """Return float64 values of *value* in *unit*; plain numbers are refused."""
    if not isinstance(value, u.Quantity):
        raise u.UnitsError(
            f"{name} must be an astropy Quantity with a unit convertible to {unit}, "
            f"got {type(value).__name__} without a unit")
    try:
        arr = value.to_value(unit, equivalencies=equivalencies or [])
    except u.UnitConversionError as exc:
        raise u.UnitsError(f"{name} is in {value.unit}, which cannot be converted "
                           f"to {unit}") from exc
    return _as_1d(name, arr, n, dtype="float64")


def _time_values(time, n=None):
    """MJD TDB values from an astropy Time (any scale/format)."""
    if not isinstance(time, Time):
        raise LightCurveError(
            "time must be an astropy.time.Time (so that its scale is explicit), "
            f"got {type(time).__name__}")
    mask = np.atleast_1d(np.asarray(time.mask, dtype=bool)) if time.masked else False
    if np.any(mask):
        raise LightCurveError(f"time has {int(np.sum(mask))} missing (masked/NaN) values; "
                              "every measurement needs a time")
    tdb = time if time.scale == TIME_SCALE else time.tdb
    # MJD = (jd1 - 2400000.5) + jd2: the subtraction is exact (jd1 holds whole
    # or half days), so this is astropy's TimeMJD value without its
    # general-purpose overhead (~0.1 ms a call, 4,000 calls per run).
    values = np.atleast_1d(np.asarray(tdb.jd1 - 2400000.5, dtype="float64")
                           + np.asarray(tdb.jd2, dtype="float64"))
    if n is not None and len(values) != n:
        raise LightCurveError(f"time has {len(values)} values but there are {n} "
                              "measurements")
    if np.isnan(values).any():
        raise LightCurveError(f"time contains {int(np.isnan(values).sum())} NaN values; "
                              "every measurement needs a time")
    return values


def _codes(values):
    """Factorize to (codes, uniques) with uniques sorted."""
    if len(values) and values[0] == values[-1] and (values == values[0]).all():
        # the usual reader piece: one object, one band
        return np.zeros(len(values), "int64"), values[:1].copy()
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1), uniques


def _band_record(name):
    """Band metadata for *name* from `multilc.photometry` (a fresh dict)."""
    return dict(_band_record_cached(str(name)))


@functools.lru_cache(maxsize=1024)
def _band_record_cached(name):
    # Band lookups and unit formatting cost ~50 us; readers build one piece
    # per target and band, so the record is computed once per band name.
    band = photometry.get_band(name)
    return {
        "archive": band.archive,
        "system": band.system,
        "zero_point": (np.nan if band.zero_point is None
                       else band.zero_point.to_value(u.Jy)),
        "wavelength": (np.nan if band.wavelength is None
                       else band.wavelength.to_value(u.AA)),
        "flux_unit": band.flux_unit.to_string(),
        "native_time": band.native_time or "",
        "band_notes": "",
    }


@functools.lru_cache(maxsize=256)
def _is_instrumental(unit_string):
    return u.Unit(unit_string).physical_type != u.mJy.physical_type


@functools.lru_cache(maxsize=256)
def _parse_unit(unit_string):
    return u.Unit(unit_string)


_NO_EVENTS = {k: np.array([], dtype=object if dt == "str" else dt)
              for k, (dt, _) in EVENT_COLUMNS.items()}


def _empty_events():
    # shared read-only arrays: _canonical copies what it keeps
    return _NO_EVENTS


# --------------------------------------------------------------------------- class
class MultiBandLightCurve:
    """Multi-band photometry and events of many targets, with units.

    Parameters
    ----------
    ds : `xarray.Dataset`
        A dataset in the layout described in the module docstring (for
        example ``other.ds``).  It is validated; use the ``from_*``
        constructors to build one from arrays or tables.

    Notes
    -----
    The storage is columnar: one flat ``obs`` dimension for all targets and
    bands, so adding targets costs memory and time linear in the number of
    measurements.  The public API returns `~astropy.units.Quantity` and
    `~astropy.time.Time`; ``lc.ds`` gives the raw dataset.
    """

    def __init__(self, ds):
        if isinstance(ds, MultiBandLightCurve):
            ds = ds.ds
        if not isinstance(ds, xr.Dataset):
            raise LightCurveError(f"expected an xarray.Dataset, got {type(ds).__name__}")
        self._dsv = _validate(ds)
        self._cols = None
        self._lazy_attrs = None
        self._meta = self._meta_raw = None
        self._report_obj = None

    @classmethod
    def _from_columns(cls, cols, attrs=None):
        """Trusted fast constructor from canonical columns (see `_canonical`).

        The columns were validated by the caller (a ``from_*`` constructor,
        `concat` or a reader); the Dataset is assembled on first use.
        """
        self = cls.__new__(cls)
        self._dsv = None
        self._cols = cols
        self._lazy_attrs = dict(attrs or {})
        self._meta = self._meta_raw = None
        self._report_obj = None
        return self

    def _derive(self, ds=None, cols=None, attrs=None):
        """A new light curve carrying this one's meta and report."""
        if ds is not None:
            out = type(self).__new__(type(self))
            out._dsv, out._cols, out._lazy_attrs = ds, None, None
            out._meta = out._meta_raw = out._report_obj = None
        else:
            out = type(self)._from_columns(cols, attrs if attrs is not None
                                           else self._attrs)
        out._attrs.update({k: v for k, v in self._attrs.items()
                           if k in (_META_ATTR, _REPORT_ATTR)})
        if self._meta is not None:
            self._sync_attrs()
            if self._meta is not None:
                out.meta = self._meta
        out._report_obj = self._report_obj
        return out

    @property
    def _ds(self):
        if self._dsv is None:
            self._dsv = _dataset_from_columns(self._cols, self._lazy_attrs)
            self._cols = self._lazy_attrs = None
        return self._dsv

    @property
    def _attrs(self):
        """The live attribute dict (the Dataset's, or the lazy one)."""
        return self._dsv.attrs if self._dsv is not None else self._lazy_attrs

    def _columns(self):
        """Plain numpy columns keyed by dataset variable name."""
        if self._cols is not None:
            return self._cols
        return {name: var.values for name, var in self._dsv.variables.items()}

    # ------------------------------------------------------------------ metadata
    @property
    def meta(self):
        """Free metadata (provenance, notes) as a dict; must be JSON-serialisable.

        Stored as JSON in ``lc.ds.attrs["multilc_meta"]``, so that every file
        format keeps it.  Kept by `select`; merged by `concat` (first piece
        wins for a key set differently in several pieces).
        """
        raw = self._attrs.get(_META_ATTR)
        if self._meta is None or raw != self._meta_raw:
            # first use, or ds.attrs["multilc_meta"] was written directly
            self._meta = json.loads(raw) if raw else {}
            self._meta_raw = raw
        return self._meta

    @meta.setter
    def meta(self, value):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise InputError(f"meta must be a dict, got {type(value).__name__}")
        value = dict(value)
        raw = _meta_json(value) if value else None
        if raw is None:
            self._attrs.pop(_META_ATTR, None)
        else:
            self._attrs[_META_ATTR] = raw
        self._meta, self._meta_raw = value, raw

    def _sync_attrs(self):
        """Write the (possibly mutated) meta dict back to the attributes."""
        if self._meta is None:
            return
        if self._attrs.get(_META_ATTR) != self._meta_raw:
            self._meta = None  # attrs written directly: they win
            return
        raw = _meta_json(self._meta) if self._meta else None
        if raw is None:
            self._attrs.pop(_META_ATTR, None)
        else:
            self._attrs[_META_ATTR] = raw
        self._meta_raw = raw

    @property
    def report(self):
        """The collection report of the run that made this light curve, or None.

        A `~multilc.collect.CollectionReport` when it came from
        `multilc.collect` (or its ``to_dict()`` was stored); stored as JSON in
        ``lc.ds.attrs["multilc_report"]`` so files keep it, and kept by
        `select` and `concat` (reports of several runs are merged: lists
        joined, counts added).
        """
        if self._report_obj is None:
            raw = self._attrs.get(_REPORT_ATTR)
            if not raw:
                return None
            self._report_obj = _report_from_dict(json.loads(raw))
        return self._report_obj

    @report.setter
    def report(self, value):
        if value is None:
            self._attrs.pop(_REPORT_ATTR, None)
            self._report_obj = None
            return
        self._attrs[_REPORT_ATTR] = json.dumps(_report_to_dict(value), default=str)
        self._report_obj = value

    # ------------------------------------------------------------------ I/O
    read = UnifiedReadWriteMethod(LightCurveRead)
    write = UnifiedReadWriteMethod(LightCurveWrite)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, objectid, band, time, flux, flux_err, *, mag=None, mag_err=None,
                    upper_limit=None, flag=None, source_id=None, separation=None,
                    label=None, ra=None, dec=None, name=None, band_meta=None,
                    events=None):
        """Build a light curve from per-measurement arrays.

        Parameters
        ----------
        objectid : array-like of int
            Target identifier of each measurement.
        band : array-like of str
            Band of each measurement, ``archive:band`` (see
            `multilc.photometry.BANDS`).
        time : `~astropy.time.Time`
            Time of each measurement, any scale; stored as MJD (TDB).
            Barycentric correction is the caller's (the reader's) job.
        flux, flux_err : `~astropy.units.Quantity`
            Flux density (any unit convertible to mJy, through the band's
            wavelength for per-wavelength units) or, for uncalibrated bands,
            a count rate in e-/s.  Each band must carry the kind of unit its
            metadata declares.
        mag, mag_err : `~astropy.units.Quantity` or array-like, optional
            The archive's own magnitude, in the band's system [mag].
        upper_limit : array-like of bool, optional
            True where the flux is an upper limit (or non-positive).
        flag : array-like of int, optional
            Archive-native quality bits.
        source_id : array-like of int, optional
            The archive's own object id.
        separation : `~astropy.units.Quantity`, optional
            Distance between target and archive object [angle].
        label : str or mapping of objectid to str, optional
            Per-object label (for example the literature sample).
        name : str, mapping of objectid to str, or array-like, optional
            Per-object target name (``{4: "Mrk 590"}``); an array may hold
            one value per object (in sorted objectid order) or per
            measurement.  Default ``""``.
        ra, dec : `~astropy.units.Quantity` or mapping, optional
            Per-object target coordinates: a mapping objectid -> angle or an
            angle Quantity per measurement.
        band_meta : mapping of band name to mapping, optional
            Overrides of band metadata (for example ``{"tess:TESS":
            {"band_notes": "SPOC sectors 1-3"}}``).
        events : `~astropy.table.Table`, optional
            Events with the columns of `EVENT_COLUMNS` (see `make_events`).

        Returns
        -------
        `MultiBandLightCurve`
        """
        objectid = _as_1d("objectid", objectid)
        n = len(objectid)
        if n and not np.issubdtype(objectid.dtype, np.integer):
            try:
                as_int = objectid.astype("int64")
            except (TypeError, ValueError) as exc:
                raise LightCurveError("objectid must be integers") from exc
            if not np.array_equal(as_int, objectid.astype(float)):
                raise LightCurveError("objectid must be integers")
            objectid = as_int
        objectid = objectid.astype("int64")
        band = _as_1d("band", band, n).astype(str)
        tvals = _time_values(time, n) if n else np.array([], dtype="float64")

        obj_codes, obj_ids = _codes(objectid)
        band_codes, band_names = _codes(band)
        band_table = {name: _band_record(name) for name in band_names}
        for bname, overrides in (band_meta or {}).items():
            if bname in band_table:
                band_table[bname].update(overrides)

        instrumental_band = np.array([_is_instrumental(band_table[b]["flux_unit"])
                                      for b in band_names], dtype=bool)
        is_instr = instrumental_band[band_codes] if n else np.zeros(0, bool)

        # flux: one unit per storage array
        if not isinstance(flux, u.Quantity) or not isinstance(flux_err, u.Quantity):
            raise u.UnitsError("flux and flux_err must be astropy Quantities "
                               "(mJy-compatible, or e-/s for uncalibrated bands)")
        flux_unit = flux.unit
        ins = ins_err = None
        fv = _as_1d("flux", flux.value, n, dtype="float64")
        fe = _as_1d("flux_err", flux_err.to_value(flux_unit)
                    if flux_err.unit.is_equivalent(flux_unit) else
                    _raise_unit("flux_err", flux_err.unit, flux_unit), n, dtype="float64")
        if is_instr.any():
            bad = np.unique(band[is_instr])
            if not flux_unit.is_equivalent(INSTRUMENTAL_UNIT):
                raise u.UnitsError(
                    f"bands {', '.join(bad)} have no absolute calibration and are stored "
                    f"in {INSTRUMENTAL_UNIT}; their flux was given in {flux_unit}")
            ins = np.full(n, np.nan)
            ins_err = np.full(n, np.nan)
            scale = flux_unit.to(INSTRUMENTAL_UNIT)
            ins[is_instr] = fv[is_instr] * scale
            ins_err[is_instr] = fe[is_instr] * scale
        fast = not is_instr.any() and n and flux_unit.is_equivalent(u.mJy)
        if fast:
            # the usual piece: calibrated only, no masking needed
            scale = flux_unit.to(u.mJy)
            cal = fv * scale if scale != 1 else fv.copy()
            cal_err = fe * scale if scale != 1 else fe.copy()
        else:
            cal = np.full(n, np.nan)
            cal_err = np.full(n, np.nan)
        if not fast and (~is_instr).any():
            cal_mask = ~is_instr
            if flux_unit.is_equivalent(u.mJy):
                scale = flux_unit.to(u.mJy)
                cal[cal_mask] = fv[cal_mask] * scale
                cal_err[cal_mask] = fe[cal_mask] * scale
            elif flux_unit.is_equivalent(u.erg / u.s / u.cm**2 / u.AA):
                for code in np.unique(band_codes[cal_mask]):
                    sel = band_codes == code
                    wav = band_table[band_names[code]]["wavelength"] * u.AA
                    eq = u.spectral_density(wav)
                    cal[sel] = (fv[sel] * flux_unit).to_value(u.mJy, eq)
                    cal_err[sel] = (fe[sel] * flux_unit).to_value(u.mJy, eq)
            else:
                bad = np.unique(band[cal_mask])
                raise u.UnitsError(
                    f"flux for calibrated bands {', '.join(bad)} must be a spectral flux "
                    f"density convertible to mJy, got {flux_unit}")

        data = {
            "time": tvals,
            "obs_object": obj_codes.astype("int32"),
            "obs_band": band_codes.astype("int16"),
            "flux": cal,
            "flux_err": cal_err,
        }
        if ins is not None:
            data["flux_instrumental"] = ins
            data["flux_instrumental_err"] = ins_err
        if mag is not None:
            data["mag"] = _as_1d("mag", mag.to_value(u.mag) if isinstance(mag, u.Quantity)
                                 else mag, n, dtype="float64")
        if mag_err is not None:
            data["mag_err"] = _as_1d("mag_err", mag_err.to_value(u.mag)
                                     if isinstance(mag_err, u.Quantity) else mag_err,
                                     n, dtype="float64")
        if upper_limit is not None:
            data["upper_limit"] = _as_1d("upper_limit", upper_limit, n, dtype=bool)
        if flag is not None:
            data["flag"] = _as_1d("flag", flag, n, dtype="int64")
        if source_id is not None:
            sid = _as_1d("source_id", source_id, n)
            data["source_id"] = (sid.astype("int64") if np.issubdtype(sid.dtype, np.integer)
                                 else sid.astype(str).astype(object))
        if separation is not None:
            data["separation"] = _quantity_values("separation", separation,
                                                  SEPARATION_UNIT, n)

        objects = _object_table(obj_ids, objectid, obj_codes, label, ra, dec, name)
        ev = _events_from_table(events) if events is not None else _empty_events()
        if len(ev["objectid"]):
            # events may name objects without photometry: add them
            extra = np.setdiff1d(np.unique(ev["objectid"]), obj_ids)
            if len(extra):
                more = _object_table(extra, extra, np.arange(len(extra)), label, ra, dec,
                                     name if not _per_measurement(name, n) else None)
                objects = _merge_object_tables(objects, more)
                # obs codes pointed into obj_ids: point them into the union
                remap = np.searchsorted(objects["objectid"], obj_ids)
                data["obs_object"] = remap[obj_codes].astype("int32")
        return cls._from_columns(_canonical(data, objects, band_names, band_table, ev,
                                            one_group=len(obj_ids) == 1 and
                                            len(band_names) == 1))

    @classmethod
    def from_events(cls, events, *, label=None, ra=None, dec=None, name=None):
        """A light curve holding only events (no photometry).

        Parameters
        ----------
        events : `~astropy.table.Table`
            As built by `make_events`.
        label, ra, dec, name : mapping, optional
            Per-object metadata keyed by objectid.
        """
        ev = _events_from_table(events)
        ids = np.unique(ev["objectid"]).astype("int64")
        objects = _object_table(ids, ids, np.arange(len(ids)), label, ra, dec, name)
        return cls._from_columns(_canonical(_empty_obs(), objects, np.array([], dtype=str),
                                            {}, ev))

    @classmethod
    def from_objects(cls, objectid, *, label=None, ra=None, dec=None, name=None):
        """A light curve holding objects with no data yet (a sample's targets).

        Concatenating it with the collected data keeps every requested target
        in the object table, also those no archive returned anything for.

        Parameters
        ----------
        objectid : array-like of int
        label, ra, dec, name : optional
            As in `from_arrays` (a mapping keyed by objectid, or one value
            per object in the order of *objectid*).
        """
        ids = _as_1d("objectid", objectid).astype("int64")
        order = np.argsort(ids, kind="stable")
        uniq = ids[order]
        if len(uniq) > 1 and np.any(np.diff(uniq) == 0):
            raise LightCurveError("objectid values must be unique")

        def reorder(value):
            if value is None or isinstance(value, (Mapping, str)):
                return value
            arr = value if isinstance(value, u.Quantity) else np.asarray(value,
                                                                          dtype=object)
            return arr[order] if np.ndim(arr) and len(arr) == len(ids) else arr
        objects = _object_table(uniq, uniq, np.arange(len(uniq)), reorder(label),
                                reorder(ra), reorder(dec), reorder(name))
        return cls._from_columns(_canonical(_empty_obs(), objects,
                                            np.array([], dtype=str), {}, _empty_events()))

    @classmethod
    def empty(cls):
        """A light curve with no objects, measurements or events."""
        return cls.from_events(make_events([], [], Time([], format="mjd", scale="tdb")))

    @classmethod
    def from_table(cls, table, *, label=None, ra=None, dec=None, name=None, events=None):
        """Build from an astropy Table/QTable with one row per measurement.

        The inverse of `to_table`: ``from_table(lc.to_table()) == lc``.

        Required columns: ``objectid``, ``band``, ``time`` (a `~astropy.time.Time`
        column), ``flux``, ``flux_err`` (with units).  Rows of uncalibrated
        bands (TESS, Kepler, K2) take their values from ``flux_instrumental``/
        ``flux_instrumental_err`` when those columns are present (as
        `to_table` writes them), else from ``flux``/``flux_err`` in e-/s.
        Optional: ``mag``, ``mag_err``, ``upper_limit``, ``flag``,
        ``source_id``, ``separation``, ``n_binned``, and per-object ``name``,
        ``label``, ``ra``, ``dec`` (taken from the first row of each object).

        ``table.meta`` as written by `to_table` adds what rows cannot hold:
        ``objects`` (objects without data keep their place), ``bands`` (band
        metadata), ``events``, ``multilc_meta`` and ``multilc_report``.
        Keyword arguments override the table's values.
        """
        t = QTable(table)
        missing = [c for c in ("objectid", "band", "time", "flux", "flux_err")
                   if c not in t.colnames]
        if missing:
            raise LightCurveError(f"table lacks required columns {missing}; it has "
                                  f"{t.colnames}")
        meta = dict(t.meta or {})
        for key in ("objects", "bands", "events"):
            if isinstance(meta.get(key), Mapping):
                try:
                    meta[key] = QTable(dict(meta[key]))
                except (TypeError, ValueError) as exc:
                    raise LightCurveError(f"table.meta[{key!r}] is not a table: "
                                          f"{exc}") from exc
        ids = _as_1d("objectid", np.asarray(t["objectid"]))
        per_object = {"label": label, "ra": ra, "dec": dec, "name": name}
        mobj = meta.get("objects")
        for col, given in list(per_object.items()):
            if given is not None:
                continue
            mapping = {}
            if mobj is not None and col in getattr(mobj, "colnames", ()):
                for oid, val in zip(np.asarray(mobj["objectid"]), mobj[col]):
                    mapping[int(oid)] = val
            if col in t.colnames:
                _, first = np.unique(ids, return_index=True)
                for i in first:
                    mapping.setdefault(int(ids[i]), t[col][i])
            if mapping:
                if col in ("ra", "dec"):
                    mapping = {k: (v if isinstance(v, u.Quantity) else
                                   (np.nan if v is None else float(v)) * u.deg)
                               for k, v in mapping.items()}
                per_object[col] = mapping
        band_meta = {}
        mbands = meta.get("bands")
        if mbands is not None and "band" in getattr(mbands, "colnames", ()):
            for row in mbands:
                rec = {}
                for var in _BAND_VARS:
                    if var not in mbands.colnames:
                        continue
                    val = row[var]
                    if var == "zero_point":
                        val = val.to_value(u.Jy) if isinstance(val, u.Quantity) else val
                    elif var == "wavelength":
                        val = val.to_value(u.AA) if isinstance(val, u.Quantity) else val
                    elif var not in ("zero_point", "wavelength"):
                        val = str(val)
                    rec[var] = float(val) if var in ("zero_point", "wavelength") else val
                band_meta[str(row["band"])] = rec
        if events is None and meta.get("events") is not None and len(meta["events"]):
            events = meta["events"]
        bands = np.asarray(t["band"]).astype(str)
        uniq_bands = np.unique(bands)
        instr_band = {b: _is_instrumental(band_meta.get(b, {}).get(
            "flux_unit", _band_record_cached(b)["flux_unit"])) for b in uniq_bands}
        is_instr = np.array([instr_band[b] for b in bands], bool) if len(bands) else \
            np.zeros(0, bool)
        has_instr_cols = "flux_instrumental" in t.colnames
        pieces = []
        kinds = [(~is_instr, "flux", "flux_err")]
        kinds.append((is_instr, "flux_instrumental", "flux_instrumental_err")
                     if has_instr_cols else (is_instr, "flux", "flux_err"))
        for rows, fcol, ecol in kinds:
            if not rows.any():
                continue
            idx = np.flatnonzero(rows)
            kw = {c: t[c][idx] for c in _OPTIONAL_OBS if c in t.colnames}
            pieces.append(cls.from_arrays(
                ids[idx], bands[idx], t["time"][idx], t[fcol][idx], t[ecol][idx],
                band_meta={b: m for b, m in band_meta.items()},
                **per_object, **kw))
        if events is not None:
            ev = QTable(events)
            pieces.append(cls.from_events(ev, **per_object))
        if mobj is not None and len(mobj):
            pieces.append(cls.from_objects(np.asarray(mobj["objectid"]), **per_object))
        if not pieces:
            pieces.append(cls.from_arrays(ids, bands, t["time"], t["flux"],
                                          t["flux_err"], **per_object))
        out = cls.concat(pieces, duplicates="keep")
        if meta.get("multilc_meta"):
            out.meta = meta["multilc_meta"]
        if meta.get("multilc_report"):
            out.report = meta["multilc_report"]
        return out

    @classmethod
    def from_pandas(cls, df, *, flux_unit=None, time_system="mjd_tdb_bary",
                    band_map=None, events_bands=None, name=None):
        """Build from a pandas DataFrame.

        Two layouts are accepted:

        * the long layout written by `to_pandas` (``layout="long"``) or any
          frame with columns ``objectid``, ``band``, ``time``, ``flux`` and
          ``flux_err`` (or ``err``), units in ``df.attrs["units"]``;
        * the legacy MultiIndex ``[objectid, label, band, time] -> flux, err``
          of the tutorial notebooks, whose flux column has no unit: declare it
          with *flux_unit* (for example ``u.mJy``).

        Parameters
        ----------
        df : `pandas.DataFrame`
        flux_unit : `~astropy.units.Unit`, optional
            Unit of ``flux``/``err`` when ``df.attrs`` does not say.  Rows of
            TESS/Kepler/K2 bands are taken as e-/s whatever this says.
        time_system : str, optional
            Native time system of ``time`` (a key of
            `multilc.timescales.TIME_SYSTEMS`).  The legacy notebooks mixed
            systems under the name "MJD"; state what your frame holds.
        band_map : mapping, optional
            Legacy band name -> multilc band name, added to the built-in map
            (``W1`` -> ``wise:W1``, ``zg`` -> ``ztf:g``, ...).
        events_bands : mapping, optional
            Legacy band name -> event archive; rows of these bands become
            events, not fluxes (defaults cover ``IceCube``, ``FERMIGTRIG``,
            ``SAXGRBMGRB``).
        name : mapping of objectid to str, optional
            Target names; by default taken from a ``name`` column or index
            level when there is one (``to_pandas(names="index")``).
        """
        from multilc import timescales

        if not isinstance(df, pd.DataFrame):
            raise LightCurveError(f"expected a pandas DataFrame, got {type(df).__name__}")
        flat = df.reset_index() if isinstance(df.index, pd.MultiIndex) or \
            df.index.name in ("objectid", "time") else df
        if "err" in flat.columns and "flux_err" not in flat.columns:
            flat = flat.rename(columns={"err": "flux_err"})
        missing = [c for c in ("objectid", "band", "time", "flux", "flux_err")
                   if c not in flat.columns]
        if missing:
            raise LightCurveError(f"DataFrame lacks columns {missing}; it has "
                                  f"{list(flat.columns)}")
        units = dict(df.attrs.get("units", {}))
        if flux_unit is None and "flux" not in units:
            raise u.UnitsError("the DataFrame does not say the unit of its flux column "
                               "(df.attrs['units']); pass flux_unit=, e.g. u.mJy")
        funit = u.Unit(flux_unit) if flux_unit is not None else u.Unit(units["flux"])
        if "time_system" in df.attrs and time_system == "mjd_tdb_bary":
            time_system = df.attrs["time_system"]

        bmap = dict(LEGACY_BAND_MAP)
        bmap.update(band_map or {})
        emap = dict(LEGACY_EVENT_BANDS)
        emap.update(events_bands or {})
        raw_band = flat["band"].astype(str).to_numpy()
        is_event = np.isin(raw_band, list(emap))
        labels = {}
        if "label" in flat.columns:
            for oid, lab in zip(flat["objectid"].to_numpy(), flat["label"].to_numpy()):
                labels.setdefault(int(oid), str(lab))
        names = dict(name) if isinstance(name, Mapping) else {}
        if "name" in flat.columns and not isinstance(name, Mapping):
            for oid, nm in zip(flat["objectid"].to_numpy(), flat["name"].to_numpy()):
                names.setdefault(int(oid), "" if pd.isna(nm) else str(nm))
        ra_map = dec_map = None
        if "ra" in flat.columns and "dec" in flat.columns:
            ra_map, dec_map = {}, {}
            for oid, r, d in zip(flat["objectid"], flat["ra"], flat["dec"]):
                ra_map.setdefault(int(oid), r * u.deg)
                dec_map.setdefault(int(oid), d * u.deg)

        ph = flat[~is_event]
        bands = np.array([bmap.get(b, b) for b in raw_band[~is_event]], dtype=object)
        unknown = sorted({b for b in bands if ":" not in b})
        if unknown:
            raise LightCurveError(
                f"legacy band names {unknown} are not known; pass band_map= "
                "to map them onto multilc band names such as 'ztf:g'")
        tvals = ph["time"].to_numpy(dtype="float64")
        if np.isnan(tvals).any():
            raise LightCurveError(f"time contains {int(np.isnan(tvals).sum())} NaN values")
        mjd = timescales.to_mjd_tdb(tvals, time_system,
                                    ra=_per_row(ph, ra_map), dec=_per_row(ph, dec_map)) \
            if time_system != "mjd_tdb_bary" else tvals
        instr = np.array([_is_instrumental(_band_record(b)["flux_unit"]) for b in bands],
                         dtype=bool) if len(bands) else np.zeros(0, bool)
        fv = ph["flux"].to_numpy(dtype="float64")
        fe = ph["flux_err"].to_numpy(dtype="float64")
        pieces = []
        for mask, unit in ((~instr, funit), (instr, INSTRUMENTAL_UNIT)):
            if mask.any():
                kw = {}
                for c in _OPTIONAL_OBS:
                    if c in ph.columns:
                        vals = ph[c].to_numpy()[mask]
                        kw[c] = vals * u.Unit(units[c]) if c in units and c in (
                            "separation",) else vals
                if "separation" in kw and not isinstance(kw["separation"], u.Quantity):
                    kw["separation"] = kw["separation"] * SEPARATION_UNIT
                pieces.append(cls.from_arrays(
                    ph["objectid"].to_numpy()[mask], bands[mask],
                    Time(mjd[mask], format="mjd", scale="tdb"),
                    fv[mask] * unit, fe[mask] * unit, label=labels,
                    ra=ra_map, dec=dec_map, name=names, **kw))
        if is_event.any():
            evrows = flat[is_event]
            etime = evrows["time"].to_numpy(dtype="float64")
            if time_system != "mjd_tdb_bary":
                etime = timescales.to_mjd_tdb(etime, time_system,
                                              ra=_per_row(evrows, ra_map),
                                              dec=_per_row(evrows, dec_map))
            ev_archive = np.array([emap[b] for b in raw_band[is_event]], dtype=object)
            # The notebooks stored IceCube's log10(E/GeV) in the flux column;
            # the gamma-ray triggers' flux was a placeholder (0.1).
            energy = np.where(ev_archive == "icecube",
                              10 ** evrows["flux"].to_numpy(dtype="float64"), np.nan)
            pieces.append(cls.from_events(make_events(
                evrows["objectid"].to_numpy(), ev_archive,
                Time(etime, format="mjd", scale="tdb"), energy=energy * ENERGY_UNIT),
                label=labels, ra=ra_map, dec=dec_map, name=names))
        if not pieces:
            return cls.empty()
        return cls.concat(pieces)

    # ------------------------------------------------------------------ combining
    @classmethod
    def concat(cls, pieces, *, duplicates="warn"):
        """Concatenate light curves in time linear in the total size.

        Objects with the same ``objectid`` are the same target: their
        positions must agree (within 1 arcsec), labels are merged and the
        first non-empty name is kept.  Bands with the same name must have the
        same metadata.  ``lc1 + lc2`` is ``concat([lc1, lc2])``.

        Parameters
        ----------
        pieces : iterable of `MultiBandLightCurve`
        duplicates : {"warn", "drop", "keep", "raise"}
            What to do with a measurement present more than once (same
            object, band, time and flux, and for events the same object,
            archive, time and event id), as when the same data are collected
            twice: ``"warn"`` (default) keeps every row and emits a
            `DuplicateDataWarning` with the count; ``"drop"`` keeps the first
            occurrence only; ``"keep"`` keeps all silently; ``"raise"``
            raises `LightCurveError`.

        Returns
        -------
        `MultiBandLightCurve`
            ``meta`` is the union of the pieces' meta (the first piece wins
            for a key set differently); the collection reports are merged.
        """
        return cls._concat_pieces(pieces, duplicates=duplicates, stacklevel=4)

    @classmethod
    def _concat_pieces(cls, pieces, *, duplicates="warn", consume=False, stacklevel=3):
        """`concat`; with *consume*, the pieces' measurements are freed as they
        are joined and the pieces must not be used again (the collection
        engine's join of a run's batches; see `_concat_columns`)."""
        if duplicates not in ("warn", "drop", "keep", "raise"):
            raise InputError(f"duplicates must be 'warn', 'drop', 'keep' or 'raise', "
                             f"got {duplicates!r}")
        pieces = [p for p in pieces]
        for i, p in enumerate(pieces):
            if not isinstance(p, MultiBandLightCurve):
                raise LightCurveError(f"concat item {i} is a {type(p).__name__}, "
                                      "not a MultiBandLightCurve")
        if not pieces:
            return cls.empty()
        if len(pieces) == 1:
            return pieces[0]
        normalized = {p._attrs.get(_NORMALIZED_ATTR) for p in pieces}
        if len(normalized) > 1:
            raise LightCurveError("cannot concatenate normalized and not normalized "
                                  "light curves (their fluxes have different units)")
        cols = _concat_columns([p._columns() for p in pieces], consume=consume)
        attrs = {}
        norm = normalized.pop()
        if norm:
            attrs[_NORMALIZED_ATTR] = norm
        out = cls._from_columns(cols, attrs)
        merged_meta = {}
        for p in pieces:
            if p._meta is not None or p._attrs.get(_META_ATTR):
                for k, v in p.meta.items():
                    merged_meta.setdefault(k, v)
        if merged_meta:
            out.meta = merged_meta
        reports = [p for p in pieces if p._attrs.get(_REPORT_ATTR)]
        if len(reports) == 1 or (reports and all(
                r._attrs[_REPORT_ATTR] == reports[0]._attrs[_REPORT_ATTR] for r in reports)):
            out._attrs[_REPORT_ATTR] = reports[0]._attrs[_REPORT_ATTR]
            out._report_obj = reports[0]._report_obj
        elif reports:
            out._attrs[_REPORT_ATTR] = json.dumps(_merge_reports(
                [json.loads(r._attrs[_REPORT_ATTR]) for r in reports]), default=str)
        if duplicates != "keep":
            out = out._handle_duplicates(duplicates, stacklevel=stacklevel)
        return out

    def _handle_duplicates(self, mode, stacklevel=3):
        """Find repeated measurements/events; warn, drop or raise (see `concat`).

        *stacklevel* is the warning's (3: the caller of this method's caller).
        """
        cols = self._columns()
        dup_obs = _duplicate_rows(
            [cols["obs_object"], cols["obs_band"], cols["time"], cols["flux"]]
            + ([cols["flux_instrumental"]] if "flux_instrumental" in cols else []))
        # events are sorted by (object, time) only
        dup_ev = _duplicate_rows([cols["event_object"], cols["event_archive"],
                                  cols["event_time"], cols["event_id"]], lead=(0, 2))
        n_obs, n_ev = int(dup_obs.sum()), int(dup_ev.sum())
        if not n_obs and not n_ev:
            return self
        what = f"{n_obs} measurements and {n_ev} events" if n_ev else \
            f"{n_obs} measurements"
        if mode == "raise":
            raise LightCurveError(f"concat: {what} appear more than once (same object, "
                                  "band, time and flux); pass duplicates='drop' to keep "
                                  "one of each")
        if mode == "warn":
            warnings.warn(f"concat: {what} appear more than once (same object, band, "
                          "time and flux) and were kept; pass duplicates='drop' to keep "
                          "one of each, or duplicates='keep' to silence this",
                          DuplicateDataWarning, stacklevel=stacklevel)
            return self
        keep_obs, keep_ev = ~dup_obs, ~dup_ev
        new = {}
        for k, v in cols.items():
            dim = _dim_of(k)
            new[k] = v[keep_obs] if dim == "obs" else v[keep_ev] if dim == "event" else v
        return self._derive(cols=new)

    def __add__(self, other):
        if not isinstance(other, MultiBandLightCurve):
            return NotImplemented
        return type(self).concat([self, other])

    # ------------------------------------------------------------------ access
    @property
    def ds(self):
        """The underlying `xarray.Dataset` (not a copy).

        ``ds.attrs["multilc_meta"]`` and ``ds.attrs["multilc_report"]`` hold
        `meta` and `report` as JSON.
        """
        ds = self._ds
        self._sync_attrs()
        return ds

    def __len__(self):
        if self._cols is not None:
            return len(self._cols["time"])
        return self._ds.sizes["obs"]

    @property
    def n_events(self):
        """Number of events."""
        if self._cols is not None:
            return len(self._cols["event_time"])
        return self._ds.sizes["event"]

    @property
    def objectids(self):
        """Object identifiers (int64 array, sorted)."""
        if self._cols is not None:
            return self._cols["objectid"]
        return self._ds["objectid"].values

    @property
    def objectids_with_data(self):
        """Identifiers of the objects with at least one measurement or event.

        A collected light curve keeps every requested target in its object
        table (`objectids`), also those no archive returned anything for.
        """
        ds = self.ds
        used = np.union1d(np.unique(ds["obs_object"].values),
                          np.unique(ds["event_object"].values)).astype("int64")
        return self.objectids[used]

    def drop_empty(self):
        """A copy without the objects that have no measurement and no event."""
        keep = self.objectids_with_data
        if len(keep) == len(self.objectids):
            return self
        return self.select(objectid=keep) if len(keep) else type(self).empty()

    @property
    def labels(self):
        """Mapping objectid -> label."""
        return dict(zip(self.objectids.tolist(), self._ds["label"].values.tolist()))

    @property
    def names(self):
        """Mapping objectid -> target name (``""`` where unknown)."""
        return dict(zip(self.objectids.tolist(),
                        [str(x) for x in self._ds["name"].values.tolist()]))

    def with_names(self, names):
        """A copy with target names set (others unchanged).

        Parameters
        ----------
        names : mapping of objectid to str
            For example ``dict(zip(sample["objectid"], sample["name"]))``.
            Ids not in this light curve are ignored (a sample may hold
            targets without data); an empty or missing name leaves the
            stored one.

        Returns
        -------
        `MultiBandLightCurve`
        """
        if not isinstance(names, Mapping):
            raise InputError(f"names must be a mapping objectid -> name, got "
                             f"{type(names).__name__}")
        cols = dict(self._columns())
        current = np.asarray(cols["name"], dtype=object).copy()
        pos = {int(oid): i for i, oid in enumerate(cols["objectid"].tolist())}
        for oid, nm in names.items():
            i = pos.get(int(oid))
            if i is not None and nm is not None and str(nm) and not (
                    isinstance(nm, float) and np.isnan(nm)):
                current[i] = str(nm)
        cols["name"] = current
        if self._dsv is not None:
            ds = self._dsv.copy()
            ds["name"] = ("object", current)
            return self._derive(ds=ds)
        return self._derive(cols=cols)

    @property
    def coords(self):
        """Target positions as one `~astropy.coordinates.SkyCoord` (ICRS).

        One entry per object, in the order of `objectids`; NaN where the
        position is unknown.  ``lc.coords[i]`` belongs to ``lc.objectids[i]``.
        """
        from astropy.coordinates import SkyCoord

        return SkyCoord(self._ds["ra"].values * u.deg, self._ds["dec"].values * u.deg,
                        frame="icrs")

    def _object_code(self, key):
        """Position along ``object`` of an objectid, a name or a unique label."""
        ids = self.objectids
        if isinstance(key, (bool, np.bool_)):
            raise InputError(f"cannot index a light curve with {key!r}")
        if isinstance(key, (int, np.integer)):
            pos = int(np.searchsorted(ids, key))
            if pos < len(ids) and ids[pos] == key:
                return pos
            raise ObjectNotFoundError(
                f"object {key} is not in this light curve (objectids: "
                f"{_preview(ids.tolist())})")
        if isinstance(key, str):
            names = np.asarray(self._ds["name"].values, dtype=object)
            hit = np.flatnonzero(names == key)
            if len(hit) == 1:
                return int(hit[0])
            if len(hit) > 1:
                raise SelectionError(f"name {key!r} is shared by objects "
                                     f"{ids[hit].tolist()}; index by objectid")
            labels = self._ds["label"].values
            hit = np.flatnonzero([key in str(lab).split("; ") for lab in labels])
            if len(hit) == 1:
                return int(hit[0])
            if len(hit) > 1:
                raise SelectionError(
                    f"label {key!r} belongs to {len(hit)} objects; use "
                    f"lc.select(label={key!r}) for all of them, or index by objectid")
            hint = (f"; {key!r} is a band: use lc.select(band={key!r})"
                    if key in self.bands else "")
            known = [n for n in names.tolist() if n]
            raise ObjectNotFoundError(
                f"no object named or labelled {key!r} in this light curve (names: "
                f"{_preview(known) if known else 'none set'}){hint}")
        raise InputError(f"index a light curve by objectid (int) or name (str), got "
                         f"{type(key).__name__}")

    def __getitem__(self, key):
        """The light curve of one object: ``lc[4]``, ``lc["Mrk 590"]``.

        A string is matched against names first, then against labels (when
        exactly one object carries the label).  A list selects several
        objects.  Unknown keys raise `ObjectNotFoundError` (a `KeyError`).
        """
        if isinstance(key, (list, tuple, np.ndarray)):
            codes = sorted({self._object_code(k.item() if isinstance(k, np.generic)
                                              else k) for k in key})
        else:
            codes = [self._object_code(key)]
        return self.select(objectid=self.objectids[codes])

    @property
    def bands(self):
        """Band names present (sorted list of str)."""
        return [str(b) for b in self._ds["band"].values]

    @property
    def archives(self):
        """Archives with photometry or events, sorted."""
        names = set(self._ds["archive"].values.tolist())
        names.update(self._ds["event_archive"].values.tolist())
        return sorted(str(n) for n in names)

    @property
    def time(self):
        """Measurement times, `~astropy.time.Time` (MJD, TDB, barycentric)."""
        return Time(self._ds["time"].values, format=TIME_FORMAT, scale=TIME_SCALE)

    @property
    def objectid(self):
        """Object identifier of each measurement."""
        return self.objectids[self._ds["obs_object"].values]

    @property
    def band(self):
        """Band name of each measurement (object array of str)."""
        names = np.asarray(self.bands, dtype=object)
        return names[self._ds["obs_band"].values] if len(names) else \
            np.array([], dtype=object)

    @property
    def normalized(self):
        """True when fluxes were divided by their median (see `normalize`)."""
        return bool(self._attrs.get(_NORMALIZED_ATTR))

    def _instrumental_bands(self):
        if self.normalized:
            return []
        units = self._ds["flux_unit"].values
        return [b for b, unit in zip(self.bands, units) if _is_instrumental(unit)]

    @property
    def flux(self):
        """Flux of each measurement as a `~astropy.units.Quantity`.

        Raises `~astropy.units.UnitsError` when calibrated (mJy) and
        uncalibrated (e-/s) bands are mixed: select one kind first, or use
        `get_flux`.
        """
        return self.get_flux()[0]

    @property
    def flux_err(self):
        """Flux uncertainty of each measurement (see `flux`)."""
        return self.get_flux()[1]

    def get_flux(self, unit=None):
        """Fluxes and uncertainties in *unit*.

        Parameters
        ----------
        unit : `~astropy.units.Unit` or str, optional
            Target unit.  Flux-density units (Jy, erg/s/cm2/Hz, erg/s/cm2/AA,
            ...) convert each band through its effective wavelength.  By
            default: mJy, or e-/s when all bands are uncalibrated.

        Returns
        -------
        flux, flux_err : `~astropy.units.Quantity`

        Raises
        ------
        astropy.units.UnitsError
            If the requested unit is a flux density and uncalibrated bands
            (TESS/Kepler/K2 e-/s) are present, or the reverse.
        """
        if self.normalized:
            unit = u.dimensionless_unscaled if unit is None else u.Unit(unit)
            if not unit.is_equivalent(u.dimensionless_unscaled):
                raise u.UnitsError(f"this light curve is normalized (fluxes divided by "
                                   f"their median): its fluxes are dimensionless, not {unit}")
            return ((self._ds["flux"].values * u.dimensionless_unscaled).to(unit),
                    (self._ds["flux_err"].values * u.dimensionless_unscaled).to(unit))
        instr = self._instrumental_bands()
        if unit is None:
            unit = INSTRUMENTAL_UNIT if instr and len(instr) == len(self.bands) \
                else CALIBRATED_UNIT
        unit = u.Unit(unit)
        if unit.is_equivalent(INSTRUMENTAL_UNIT):
            calibrated = [b for b in self.bands if b not in instr]
            if calibrated:
                raise u.UnitsError(
                    f"bands {', '.join(calibrated)} are calibrated flux densities and "
                    f"cannot be given in {unit}; select the uncalibrated bands first")
            if not len(self):
                return np.zeros(0) * unit, np.zeros(0) * unit
            return ((self._ds["flux_instrumental"].values * INSTRUMENTAL_UNIT).to(unit),
                    (self._ds["flux_instrumental_err"].values * INSTRUMENTAL_UNIT).to(unit))
        if instr:
            raise u.UnitsError(
                f"bands {', '.join(instr)} have no absolute calibration (stored in "
                f"{INSTRUMENTAL_UNIT}) and cannot be given in {unit}; select the "
                "calibrated bands first, e.g. lc.select(calibrated=True)")
        flux = self._ds["flux"].values * CALIBRATED_UNIT
        err = self._ds["flux_err"].values * CALIBRATED_UNIT
        if unit.is_equivalent(CALIBRATED_UNIT) or unit.physical_type == "unknown":
            return flux.to(unit), err.to(unit)
        wav = self._ds["wavelength"].values[self._ds["obs_band"].values] * u.AA
        eq = u.spectral_density(wav)
        return flux.to(unit, eq), err.to(unit, eq)

    def to_abmag(self):
        """AB magnitudes and uncertainties of calibrated measurements.

        Non-positive fluxes give NaN (they stay in the light curve and are
        flagged by ``upper_limit`` where the reader knew).

        Returns
        -------
        mag, mag_err : `~astropy.units.Quantity` [mag]
        """
        flux, err = self.get_flux(u.mJy)
        # One AB zero point for the whole package: astropy's u.ABmag
        # definition (Oke & Gunn 1983), the same constant photometry.flux_to_mag
        # and the storage conversions use.
        zp = photometry.AB_ZERO_POINT.to_value(u.mJy)
        f = flux.to_value(u.mJy)
        positive = f > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(positive, -2.5 * np.log10(np.where(positive, f, 1.0) / zp),
                           np.nan)
            mag_err = np.where(positive, 2.5 / np.log(10) * err.to_value(u.mJy) / f, np.nan)
        return mag * u.mag, mag_err * u.mag

    def __getattr__(self, name):
        # Optional per-measurement variables as Quantities / arrays.
        if name in _OPTIONAL_OBS:
            if "_cols" not in self.__dict__:
                raise AttributeError(name)
            cols = self._columns()
            if name not in cols:
                raise AttributeError(f"this light curve has no '{name}' values")
            unit = _OPTIONAL_OBS[name][2]
            vals = cols[name]
            return vals * u.Unit(unit) if unit else vals
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def events(self):
        """Events as a `~astropy.table.QTable` with a Time column."""
        ds = self._ds
        t = QTable()
        oid = ds["objectid"].values
        codes = ds["event_object"].values
        t["objectid"] = oid[codes] if len(codes) else np.zeros(0, "int64")
        t["label"] = ds["label"].values[codes] if len(codes) else np.zeros(0, str)
        t["archive"] = ds["event_archive"].values.astype(str)
        t["time"] = Time(ds["event_time"].values, format=TIME_FORMAT, scale=TIME_SCALE)
        t["event_id"] = ds["event_id"].values.astype(str)
        t["energy"] = ds["event_energy"].values * ENERGY_UNIT
        t["error_radius"] = ds["event_error_radius"].values * ANGLE_UNIT
        t["separation"] = ds["event_separation"].values * ANGLE_UNIT
        return t

    @property
    def objects(self):
        """Per-object metadata as a `~astropy.table.QTable`.

        Columns ``objectid``, ``name``, ``label``, ``ra``, ``dec`` [deg],
        ``n_obs`` and ``n_events``; objects without data have zero counts.
        """
        t = QTable()
        t["objectid"] = self.objectids
        t["name"] = self._ds["name"].values.astype(str)
        t["label"] = self._ds["label"].values.astype(str)
        t["ra"] = self._ds["ra"].values * u.deg
        t["dec"] = self._ds["dec"].values * u.deg
        counts = np.bincount(self._ds["obs_object"].values, minlength=len(t["objectid"]))
        t["n_obs"] = counts
        t["n_events"] = np.bincount(self._ds["event_object"].values,
                                    minlength=len(t["objectid"]))
        return t

    @property
    def band_info(self):
        """Per-band metadata as a `~astropy.table.QTable`."""
        ds = self._ds
        t = QTable()
        t["band"] = np.asarray(self.bands, dtype=str)
        for var in _BAND_VARS:
            t[var] = ds[var].values
        t["zero_point"] = ds["zero_point"].values * u.Jy
        t["wavelength"] = ds["wavelength"].values * u.AA
        t["n_obs"] = np.bincount(ds["obs_band"].values, minlength=len(t["band"]))
        return t

    # ------------------------------------------------------------------ selection
    def select(self, *, objectid=None, band=None, archive=None, time_range=None,
               calibrated=None, label=None, name=None):
        """A new light curve holding a subset of the measurements and events.

        Parameters
        ----------
        objectid : int or sequence of int, optional
            Unknown ids raise `ObjectNotFoundError`.
        band : str or sequence of str, optional
            Band names (``"ztf:g"``).  A name no archive has raises
            `SelectionError`; a known band absent here warns (empty result).
        archive : str or sequence of str, optional
            Archive names (``"ztf"``, ``"icecube"``); applies to events too.
        time_range : `~astropy.time.Time` of length 2, optional
            Inclusive interval; a reversed one raises `SelectionError`.
        calibrated : bool, optional
            True keeps only bands in mJy, False only uncalibrated bands.
        label : str, optional
            Objects whose label contains this string.
        name : str or sequence of str, optional
            Objects with these names; unknown names raise
            `ObjectNotFoundError`.

        Returns
        -------
        `MultiBandLightCurve`
            Objects left without measurements or events are dropped, except
            those asked for by *objectid* or *name*.
        """
        ds = self._ds
        keep_obs = np.ones(len(self), bool)
        keep_ev = np.ones(self.n_events, bool)
        obj_keep = np.ones(ds.sizes["object"], bool)
        if objectid is not None:
            try:
                wanted = np.atleast_1d(np.asarray(objectid, dtype="int64"))
            except (TypeError, ValueError) as exc:
                raise InputError(f"objectid must be integers, got {objectid!r}") from exc
            unknown = np.setdiff1d(wanted, self.objectids)
            if len(unknown):
                raise ObjectNotFoundError(
                    f"objects {_preview(unknown.tolist())} are not in this light curve "
                    f"(objectids: {_preview(self.objectids.tolist())})")
            obj_keep &= np.isin(self.objectids, wanted)
        if name is not None:
            wanted = [name] if isinstance(name, str) else list(name)
            have = ds["name"].values.astype(object)
            unknown = sorted(set(wanted) - set(have.tolist()))
            if unknown:
                raise ObjectNotFoundError(f"no objects named {unknown} in this light curve")
            obj_keep &= np.isin(have, wanted)
        if label is not None:
            obj_keep &= np.array([label in str(lab) for lab in ds["label"].values], bool)
        keep_obs &= obj_keep[ds["obs_object"].values]
        keep_ev &= obj_keep[ds["event_object"].values]
        band_keep = np.ones(ds.sizes["band"], bool)
        if band is not None:
            wanted = [band] if isinstance(band, str) else list(band)
            for b in wanted:
                try:
                    photometry.get_band(b)
                except (KeyError, ValueError, LookupError) as exc:
                    if b not in self.bands:
                        raise SelectionError(f"select: {exc}") from exc
            unknown = set(wanted) - set(self.bands)
            if unknown and not set(wanted) & set(self.bands):
                warnings.warn(f"select: bands {sorted(unknown)} are not in this light "
                              f"curve (it has {self.bands})", stacklevel=2)
            band_keep &= np.isin(np.asarray(self.bands, dtype=object), wanted)
            keep_ev &= False if archive is None else True
        if archive is not None:
            wanted = [archive] if isinstance(archive, str) else list(archive)
            band_keep &= np.isin(ds["archive"].values, wanted)
            keep_ev &= np.isin(ds["event_archive"].values, wanted)
        if calibrated is not None:
            instr = np.array([_is_instrumental(x) for x in ds["flux_unit"].values], bool)
            band_keep &= ~instr if calibrated else instr
            if not calibrated:
                keep_ev &= False
        keep_obs &= band_keep[ds["obs_band"].values] if len(band_keep) else keep_obs
        if time_range is not None:
            tr = _time_values(time_range)
            if len(tr) != 2:
                raise SelectionError(f"time_range must hold two times (start, end), got "
                                     f"{len(tr)}")
            lo, hi = tr
            if lo > hi:
                raise SelectionError(
                    f"time_range is reversed: start MJD {lo:.5f} is after end MJD "
                    f"{hi:.5f}")
            t = ds["time"].values
            keep_obs &= (t >= lo) & (t <= hi)
            et = ds["event_time"].values
            keep_ev &= (et >= lo) & (et <= hi)
        # objects asked for by id or name stay, with or without data left
        force = obj_keep if (objectid is not None or name is not None) else None
        return self._derive(ds=_subset(ds, keep_obs, keep_ev, obj_keep, band_keep, force))

    def __iter__(self) -> Iterator[tuple[int, MultiBandLightCurve]]:
        """Iterate over ``(objectid, light curve of that object)``."""
        ds = self._ds
        obs_obj = ds["obs_object"].values
        ev_obj = ds["event_object"].values
        starts = np.searchsorted(obs_obj, np.arange(ds.sizes["object"] + 1))
        for code, oid in enumerate(self.objectids):
            keep_obs = np.zeros(len(self), bool)
            keep_obs[starts[code]:starts[code + 1]] = True
            obj_keep = np.zeros(ds.sizes["object"], bool)
            obj_keep[code] = True
            bands_here = np.zeros(ds.sizes["band"], bool)
            bands_here[np.unique(ds["obs_band"].values[keep_obs])] = True
            yield int(oid), self._derive(ds=_subset(ds, keep_obs, ev_obj == code,
                                                    obj_keep, bands_here, obj_keep))

    # ------------------------------------------------------------------ operations
    def _row_values(self):
        """Per-row flux and error in each band's storage unit, and the group bounds.

        Returns ``(values, errors, instrumental_rows, upper_limit, starts)``;
        rows of one (object, band) are ``starts[i]:starts[i + 1]``.
        """
        ds = self._ds
        vals = ds["flux"].values.copy()
        errs = ds["flux_err"].values.copy()
        instr = np.zeros(len(vals), bool)
        if "flux_instrumental" in ds and not self.normalized:
            instr_band = np.array([_is_instrumental(x) for x in ds["flux_unit"].values],
                                  bool)
            instr = instr_band[ds["obs_band"].values]
            vals[instr] = ds["flux_instrumental"].values[instr]
            errs[instr] = ds["flux_instrumental_err"].values[instr]
        ul = ds["upper_limit"].values.astype(bool) if "upper_limit" in ds else \
            np.zeros(len(vals), bool)
        key = ds["obs_object"].values.astype("int64") * 65536 + \
            ds["obs_band"].values.astype("int64")
        starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1, [len(key)])) \
            if len(key) else np.zeros(1, "int64")
        return vals, errs, instr, ul, starts

    def _with_obs(self, data, attrs=None):
        """A copy whose obs columns are *data* (already sorted); other dims kept."""
        cols = {k: v for k, v in self._columns().items() if _dim_of(k) != "obs"}
        cols.update(data)
        attrs = dict(self._attrs if attrs is None else attrs)
        return self._derive(cols=cols, attrs=attrs)

    def remove_outliers(self, sigma=5.0, *, sigma_lower=None, sigma_upper=None, maxiters=5,
                        return_counts=False):
        """Remove outliers by sigma clipping, per object and band.

        Uses `astropy.stats.sigma_clip` (centre: median, spread: standard
        deviation, iterated up to *maxiters* times) on the flux of each
        (object, band), in its storage unit.  Upper limits are neither used
        for the statistics nor removed; NaN fluxes are left alone; events are
        untouched; objects and bands stay even if all their points go.  The
        same test is available per array as `clip_mask` (the plotting module
        uses it).

        Parameters
        ----------
        sigma : float
            Clipping threshold in standard deviations.
        sigma_lower, sigma_upper : float, optional
            Separate thresholds below and above the median (default
            *sigma*; lightkurve users may want ``sigma_lower=float("inf")``
            to keep dips).
        maxiters : int or None
            Iterations of sigma clipping (None: until convergence).
        return_counts : bool
            Also return ``{(objectid, band): number removed}``.

        Returns
        -------
        `MultiBandLightCurve`, or (light curve, dict) with *return_counts*
        """
        vals, _, _, ul, starts = self._row_values()
        clipped = np.zeros(len(vals), bool)
        counts = {}
        ds = self._ds
        ids, bands = self.objectids, self.bands
        oo, ob = ds["obs_object"].values, ds["obs_band"].values
        for a, b in zip(starts[:-1], starts[1:]):
            if b <= a:
                continue
            clipped[a:b] = clip_mask(vals[a:b], sigma, sigma_lower=sigma_lower,
                                     sigma_upper=sigma_upper, maxiters=maxiters,
                                     ignore=ul[a:b])
            key = (int(ids[oo[a]]), bands[ob[a]])
            counts[key] = int(clipped[a:b].sum())
        keep = np.flatnonzero(~clipped)
        out = self._derive(ds=ds.isel(obs=keep)) if clipped.any() else self
        return (out, counts) if return_counts else out

    def normalize(self):
        """Divide flux and error by the median flux of each object and band.

        The median is taken over detections (not upper limits, finite
        values).  Upper limits are divided by the same number and stay
        flagged; events are untouched; the archive's own ``mag`` columns are
        kept unchanged.  Fluxes become dimensionless, so calibrated and
        uncalibrated (TESS/Kepler/K2) bands share the ``flux`` column and
        `get_flux` returns a dimensionless Quantity; `to_abmag` no longer
        applies.  An (object, band) whose median is not positive gets NaN
        fluxes and a warning.

        Returns
        -------
        `MultiBandLightCurve`
        """
        vals, errs, _, ul, starts = self._row_values()
        scale = np.full(len(vals), np.nan)
        bad = []
        ds = self._ds
        for a, b in zip(starts[:-1], starts[1:]):
            if b <= a:
                continue
            det = vals[a:b][~ul[a:b] & np.isfinite(vals[a:b])]
            med = np.median(det) if len(det) else np.nan
            if not med > 0:
                bad.append((int(self.objectids[ds["obs_object"].values[a]]),
                            self.bands[ds["obs_band"].values[a]]))
            else:
                scale[a:b] = med
        if bad:
            warnings.warn(f"normalize: no positive median flux for {_preview(bad)}; "
                          "their fluxes are NaN", stacklevel=2)
        data = {k: v for k, v in self._columns().items() if _dim_of(k) == "obs"
                and not k.startswith("flux_instrumental")}
        data["flux"] = vals / scale
        data["flux_err"] = errs / scale
        attrs = dict(self._attrs)
        attrs[_NORMALIZED_ATTR] = "median"
        return self._with_obs(data, attrs)

    def bin(self, width, *, time_bin_start=None):
        """Average measurements in time bins, per object and band.

        Each bin's flux is the inverse-variance weighted mean
        ``sum(w f) / sum(w)`` with ``w = 1 / flux_err**2``, its error
        ``1 / sqrt(sum(w))``, its time the bin centre, and ``n_binned`` the
        number of measurements averaged.  Measurements without a positive
        finite error, and upper limits, do not enter the means.  A bin
        holding only upper limits gives one upper limit: the smallest
        (most constraining) one, flagged ``upper_limit``.  Per-measurement
        columns that do not average (``mag``, ``flag``, ``source_id``,
        ``separation``) are dropped; compute magnitudes of the bins with
        `to_abmag`.  Events are untouched.

        Parameters
        ----------
        width : `~astropy.units.Quantity`
            Bin width (a time, e.g. ``1 * u.day``).
        time_bin_start : `~astropy.time.Time`, optional
            Start of the first bin for every group; by default each (object,
            band) starts at its first measurement.

        Returns
        -------
        `MultiBandLightCurve`
        """
        if not isinstance(width, u.Quantity) or not width.unit.is_equivalent(u.day):
            raise InputError(f"bin width must be a time Quantity (e.g. 1 * u.day), got "
                             f"{width!r}")
        w_days = float(width.to_value(u.day))
        if not np.isfinite(w_days) or w_days <= 0:
            raise InputError(f"bin width must be positive and finite, got {width}")
        vals, errs, instr, ul, starts = self._row_values()
        ds = self._ds
        t = ds["time"].values
        n = len(t)
        if not n:
            return self
        group = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        if time_bin_start is not None:
            origin = np.full(len(starts) - 1, _time_values(time_bin_start)[0])
        else:
            origin = t[starts[:-1]]
        bin_idx = np.floor((t - origin[group]) / w_days).astype("int64")
        new_seg = np.ones(n, bool)
        new_seg[1:] = (group[1:] != group[:-1]) | (bin_idx[1:] != bin_idx[:-1])
        seg = np.cumsum(new_seg) - 1
        seg_starts = np.flatnonzero(new_seg)
        n_seg = len(seg_starts)
        valid = ~ul & np.isfinite(vals) & np.isfinite(errs) & (errs > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(valid, 1.0 / np.where(valid, errs, 1.0) ** 2, 0.0)
        sw = np.bincount(seg, w, minlength=n_seg)
        swf = np.bincount(seg, w * np.where(valid, vals, 0.0), minlength=n_seg)
        # rows binned before count for the measurements they hold
        held = ds["n_binned"].values if "n_binned" in ds else np.ones(n, "int64")
        n_valid = np.bincount(seg, valid * held, minlength=n_seg).astype("int64")
        n_ul = np.bincount(seg, (ul & np.isfinite(vals)) * held,
                           minlength=n_seg).astype("int64")
        with np.errstate(divide="ignore", invalid="ignore"):
            flux = swf / sw
            err = 1.0 / np.sqrt(sw)
        # bins of upper limits only: keep the most constraining limit
        ul_only = (n_valid == 0) & (n_ul > 0)
        if ul_only.any():
            order = np.lexsort((np.where(ul & np.isfinite(vals), vals, np.inf), seg))
            chosen = order[seg_starts]
            flux = np.where(ul_only, vals[chosen], flux)
            err = np.where(ul_only, errs[chosen], err)
        keep = (n_valid > 0) | ul_only
        counts = np.where(n_valid > 0, n_valid, n_ul)
        first = seg_starts
        seg_instr = instr[first]
        data = {
            "time": (origin[group[first]] + (bin_idx[first] + 0.5) * w_days)[keep],
            "obs_object": ds["obs_object"].values[first][keep],
            "obs_band": ds["obs_band"].values[first][keep],
            "flux": np.where(seg_instr, np.nan, flux)[keep],
            "flux_err": np.where(seg_instr, np.nan, err)[keep],
        }
        if "flux_instrumental" in ds and not self.normalized:
            data["flux_instrumental"] = np.where(seg_instr, flux, np.nan)[keep]
            data["flux_instrumental_err"] = np.where(seg_instr, err, np.nan)[keep]
        if "upper_limit" in ds:
            data["upper_limit"] = ul_only[keep]
        data["n_binned"] = counts[keep]
        return self._with_obs(data)

    # ------------------------------------------------------------------ exports
    def to_pandas(self, *, layout="multiindex", columns=None, events=False, names=None):
        """Export to pandas.

        Parameters
        ----------
        layout : {"multiindex", "long"}
            ``"multiindex"`` (default) gives the index ``[objectid, label,
            band, time]`` with columns ``flux``, ``err`` in mJy, the layout of
            the tutorial notebooks and their ML pipelines.  ``"long"`` gives a
            flat frame with one column per variable.
        columns : sequence of str or "all", optional
            Extra per-measurement columns (``mag``, ``flag``, ``source_id``,
            ``separation``, ...).  ``"all"`` adds every one present.
        events : bool
            If True return the events as a (second) DataFrame:
            ``(photometry, events)``.
        names : {None, "column", "index"}
            Add the target names: as a ``name`` column, or (multiindex
            layout) as an index level after ``objectid`` giving ``[objectid,
            name, label, band, time]``.  The default leaves the legacy layout.

        Returns
        -------
        `pandas.DataFrame` or tuple of two
            Units and the time scale are in ``df.attrs``.  Uncalibrated
            bands keep their rows with NaN ``flux``/``err`` and their values
            in ``flux_instrumental``/``err_instrumental`` (e-/s): a column
            never mixes units.
        """
        ds = self._ds
        if layout not in ("multiindex", "long"):
            raise InputError(f"layout must be 'multiindex' or 'long', got {layout!r}")
        if names not in (None, "column", "index"):
            raise InputError(f"names must be None, 'column' or 'index', got {names!r}")
        obs_obj = ds["obs_object"].values
        band_cat = pd.Categorical.from_codes(ds["obs_band"].values.astype("int32"),
                                             categories=self.bands) if len(self.bands) \
            else pd.Categorical([])
        labels = ds["label"].values.astype(object)
        err_name = "err" if layout == "multiindex" else "flux_err"
        data = {
            "objectid": self.objectids[obs_obj] if len(obs_obj) else np.zeros(0, "int64")}
        if names:
            obj_names = ds["name"].values.astype(object)
            data["name"] = obj_names[obs_obj] if len(obs_obj) else np.zeros(0, object)
        data.update({
            "label": labels[obs_obj] if len(obs_obj) else np.zeros(0, object),
            "band": band_cat,
            "time": ds["time"].values,
            "flux": ds["flux"].values,
            err_name: ds["flux_err"].values,
        })
        funit = ds["flux"].attrs.get("units", "mJy")
        units = {"time": "d", "flux": funit, err_name: funit}
        if "flux_instrumental" in ds:
            ierr = "err_instrumental" if layout == "multiindex" else "flux_instrumental_err"
            data["flux_instrumental"] = ds["flux_instrumental"].values
            data[ierr] = ds["flux_instrumental_err"].values
            units["flux_instrumental"] = units[ierr] = INSTRUMENTAL_UNIT.to_string()
        extra = [c for c in _OPTIONAL_OBS if c in ds] if columns == "all" else \
            list(columns or [])
        for c in extra:
            if c not in ds:
                raise KeyError(f"no per-measurement column {c!r}; present: "
                               f"{[k for k in _OPTIONAL_OBS if k in ds]}")
            data[c] = ds[c].values
            if _OPTIONAL_OBS[c][2]:
                units[c] = _OPTIONAL_OBS[c][2]
        df = pd.DataFrame(data, copy=False)
        if layout == "multiindex":
            df = df.set_index(["objectid", "name", "label", "band", "time"]
                              if names == "index" else ["objectid", "label", "band", "time"])
        df.attrs.update(_frame_attrs(units))
        if events:
            return df, self._events_frame()
        return df

    def _events_frame(self):
        ev = self.events
        df = pd.DataFrame({
            "objectid": np.asarray(ev["objectid"]), "label": np.asarray(ev["label"]),
            "archive": np.asarray(ev["archive"]), "time": ev["time"].mjd,
            "event_id": np.asarray(ev["event_id"]),
            "energy": ev["energy"].to_value(ENERGY_UNIT),
            "error_radius": ev["error_radius"].to_value(u.deg),
            "separation": ev["separation"].to_value(u.deg)})
        df.attrs.update(_frame_attrs({"time": "d", "energy": "GeV", "error_radius": "deg",
                                      "separation": "deg"}))
        return df

    def to_table(self):
        """Export measurements to an astropy `~astropy.table.QTable`.

        One row per measurement, a `~astropy.time.Time` column ``time`` and
        Quantity columns.  ``meta`` holds what rows cannot: ``objects``
        (`objects`, including objects without data), ``bands``
        (`band_info`), ``events`` (`events`), ``multilc_meta`` (`meta`) and
        ``multilc_report`` (the report as a dict).  `from_table` inverts it
        exactly.
        """
        t = QTable()
        obs_obj = self._ds["obs_object"].values
        t["objectid"] = self.objectid
        t["name"] = self._ds["name"].values.astype(str)[obs_obj] if len(self) else \
            np.zeros(0, str)
        t["label"] = self._ds["label"].values.astype(str)[obs_obj] if len(self) else \
            np.zeros(0, str)
        t["band"] = self.band.astype(str)
        t["time"] = self.time
        funit = CALIBRATED_UNIT if not self.normalized else u.dimensionless_unscaled
        t["flux"] = self._ds["flux"].values * funit
        t["flux_err"] = self._ds["flux_err"].values * funit
        if "flux_instrumental" in self._ds:
            t["flux_instrumental"] = self._ds["flux_instrumental"].values * INSTRUMENTAL_UNIT
            t["flux_instrumental_err"] = (self._ds["flux_instrumental_err"].values
                                          * INSTRUMENTAL_UNIT)
        for c, (_, _, unit) in _OPTIONAL_OBS.items():
            if c in self._ds:
                vals = self._ds[c].values
                t[c] = vals * u.Unit(unit) if unit else vals
        # Columns as plain lists, Quantities and Times (not tables): astropy
        # writes those into ECSV/parquet headers, so t.write() keeps them;
        # QTable(t.meta["objects"]) makes a table again.
        t.meta["objects"] = _table_as_meta(self.objects)
        t.meta["bands"] = _table_as_meta(self.band_info)
        t.meta["events"] = _table_as_meta(self.events)
        if self.meta:
            t.meta["multilc_meta"] = json.loads(_meta_json(self.meta))
        if self._attrs.get(_REPORT_ATTR):
            t.meta["multilc_report"] = json.loads(self._attrs[_REPORT_ATTR])
        return t

    # ------------------------------------------------------------------ bridges
    def to_timeseries(self, objectid=None, band=None):
        """astropy TimeSeries, one per object and band; see `multilc.bridges.to_timeseries`."""
        from multilc import bridges

        return bridges.to_timeseries(self, objectid, band)

    @classmethod
    def from_timeseries(cls, series, *, objectid=None, band=None, name=None):
        """From astropy TimeSeries; see `multilc.bridges.from_timeseries`."""
        from multilc import bridges

        return bridges.from_timeseries(series, objectid=objectid, band=band, name=name)

    def to_lightkurve(self, objectid=None, band=None):
        """lightkurve LightCurve(Collection); see `multilc.bridges.to_lightkurve`."""
        from multilc import bridges

        return bridges.to_lightkurve(self, objectid, band)

    @classmethod
    def from_lightkurve(cls, obj, *, objectid=None, band=None, name=None):
        """From lightkurve light curves; see `multilc.bridges.from_lightkurve`."""
        from multilc import bridges

        return bridges.from_lightkurve(obj, objectid=objectid, band=band, name=name)

    def to_nested(self):
        """nested-pandas NestedFrame, one row per object; see `multilc.bridges.to_nested`."""
        from multilc import bridges

        return bridges.to_nested(self)

    @classmethod
    def from_nested(cls, nf, **kwargs):
        """From a nested-pandas NestedFrame; see `multilc.bridges.from_nested`."""
        from multilc import bridges

        return bridges.from_nested(nf, **kwargs)

    # ------------------------------------------------------------------ display
    def plot(self, objectid=None, **kwargs):
        """One figure of one target; see `multilc.plotting.plot`.

        Returns
        -------
        `matplotlib.figure.Figure`
        """
        require("matplotlib", "plot", "MultiBandLightCurve.plot")
        from multilc.plotting import plot

        return plot(self, objectid, **kwargs)

    def plot_all(self, path, **kwargs):
        """One PNG per target (folder) or one multipage PDF; see
        `multilc.plotting.plot_all`.

        Returns
        -------
        list of `pathlib.Path`
        """
        require("matplotlib", "plot", "MultiBandLightCurve.plot_all")
        from multilc.plotting import plot_all

        return plot_all(self, path, **kwargs)

    def summary(self, max_objects=20):
        """A short multi-line text summary (bands, points, time span, objects).

        Parameters
        ----------
        max_objects : int
            Objects listed (id, name, points, events, label) at most.
        """
        lines = [f"MultiBandLightCurve: {len(self.objectids)} objects, "
                 f"{len(self.bands)} bands, {len(self)} measurements, "
                 f"{self.n_events} events"]
        if len(self):
            t = self._ds["time"].values
            lines.append(f"  time span: MJD {t.min():.3f} - {t.max():.3f} (TDB, barycentric)")
        info = self.band_info
        for row in info:
            unit = "mJy" if not _is_instrumental(row["flux_unit"]) else row["flux_unit"]
            lines.append(f"  {row['band']:<22s} {row['n_obs']:>9d} points  [{unit}]")
        if self.n_events:
            ev = self.events
            for arch in np.unique(np.asarray(ev["archive"])):
                n = int((np.asarray(ev["archive"]) == arch).sum())
                lines.append(f"  {arch:<22s} {n:>9d} events")
        objs = self.objects
        if len(objs):
            lines.append("  objects:")
            for row in objs[:max_objects]:
                desc = row["name"] or "(no name)"
                label = f"  [{row['label']}]" if row["label"] else ""
                lines.append(f"    {row['objectid']:>8d}  {desc:<24s} {row['n_obs']:>8d} "
                             f"points {row['n_events']:>5d} events{label}")
            if len(objs) > max_objects:
                lines.append(f"    ... {len(objs) - max_objects} more objects")
        if self.normalized:
            lines.append("  fluxes normalized by their median per object and band "
                         "(dimensionless)")
        return "\n".join(lines)

    def __repr__(self):
        names = [n for n in self._ds["name"].values.tolist() if n]
        shown = ""
        if names:
            shown = " (" + ", ".join(names[:3]) + (", ..." if len(names) > 3 else "") + ")"
        n_obj = len(self.objectids)
        return (f"<MultiBandLightCurve: {n_obj} object{'s' if n_obj != 1 else ''}{shown}, "
                f"{len(self.bands)} bands, {len(self)} measurements, "
                f"{self.n_events} events>")

    def __eq__(self, other):
        """Same data, units, object/band metadata, events and `meta`.

        The collection report is not compared: it describes the run (times,
        request counts), not the light curve; nor are the moments in `meta`
        (``created``, ``written``) at which the same data were collected or
        written.
        """
        if not isinstance(other, MultiBandLightCurve):
            return NotImplemented
        a, b = self.ds, other.ds
        if any(k in d.attrs for k in (_REPORT_ATTR, _META_ATTR) for d in (a, b)):
            a, b = a.copy(deep=False), b.copy(deep=False)
            a.attrs = {k: v for k, v in a.attrs.items()
                       if k not in (_REPORT_ATTR, _META_ATTR)}
            b.attrs = {k: v for k, v in b.attrs.items()
                       if k not in (_REPORT_ATTR, _META_ATTR)}
            if _lasting_meta(self.meta) != _lasting_meta(other.meta):
                return False
        return a.identical(b)

    __hash__ = None

    def nbytes(self):
        """Memory held by the arrays, in bytes."""
        return int(self._ds.nbytes)


#: Entries of `meta` that say when, not what: left out of ``==``.
_MOMENTS = ("created", "written")


def _lasting_meta(meta):
    return {k: v for k, v in (meta or {}).items() if k not in _MOMENTS}


def _row_groups(lc):
    """(object code, band code, slice) of each (object, band) with measurements."""
    ds = lc.ds
    oo, ob = ds["obs_object"].values, ds["obs_band"].values
    if not len(oo):
        return []
    key = oo.astype("int64") * 65536 + ob.astype("int64")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1, [len(key)]))
    return [(int(oo[a]), int(ob[a]), slice(int(a), int(b)))
            for a, b in zip(starts[:-1], starts[1:])]


def clip_mask(flux, sigma=5.0, *, sigma_lower=None, sigma_upper=None, maxiters=5,
              ignore=None):
    """True where sigma clipping rejects a value (one array).

    The test `MultiBandLightCurve.remove_outliers` applies per object and
    band: `astropy.stats.sigma_clip` with median centre and standard-deviation
    spread.  Use it on the values of one band (the plotting module does).

    Parameters
    ----------
    flux : array-like or `~astropy.units.Quantity`
        Values of one object and band.
    sigma : float
        Threshold in standard deviations.
    sigma_lower, sigma_upper : float, optional
        Separate thresholds below and above the centre (default *sigma*).
    maxiters : int or None
        Iterations (None: until convergence).
    ignore : array-like of bool, optional
        Values neither used for the statistics nor flagged (upper limits).

    Returns
    -------
    `numpy.ndarray` of bool
        True for outliers.  NaN/inf values and ignored ones are False; with
        fewer than 3 usable values nothing is flagged.
    """
    from astropy.stats import sigma_clip

    vals = np.asarray(flux.value if isinstance(flux, u.Quantity) else flux, dtype=float)
    use = np.isfinite(vals)
    if ignore is not None:
        use &= ~np.asarray(ignore, dtype=bool)
    out = np.zeros(vals.shape, bool)
    if use.sum() < 3:
        return out
    clipped = sigma_clip(vals[use], sigma=sigma, sigma_lower=sigma_lower,
                         sigma_upper=sigma_upper, maxiters=maxiters, cenfunc="median",
                         stdfunc="std", masked=True)
    out[np.flatnonzero(use)] = np.ma.getmaskarray(clipped)
    return out


def _raise_unit(name, have, want):
    raise u.UnitsError(f"{name} is in {have}, which is not convertible to {want}")


def _per_row(frame, mapping):
    if mapping is None:
        return None
    return u.Quantity([mapping[int(o)] for o in frame["objectid"].to_numpy()])


def _frame_attrs(units):
    return {"units": units, "time_scale": TIME_SCALE, "time_format": TIME_FORMAT,
            "time_reference": TIME_REFERENCE, "time_system": "mjd_tdb_bary"}


#: Band names of the tutorial notebooks -> multilc band names.
LEGACY_BAND_MAP = {
    "W1": "wise:W1", "W2": "wise:W2", "WISE_W1": "wise:W1", "WISE_W2": "wise:W2",
    "Pan-STARRS g": "panstarrs:g", "Pan-STARRS r": "panstarrs:r",
    "Pan-STARRS i": "panstarrs:i", "Pan-STARRS z": "panstarrs:z",
    "Pan-STARRS y": "panstarrs:y",
    "Gaia_G": "gaia:G", "Gaia_BP": "gaia:BP", "Gaia_RP": "gaia:RP",
    "HST_F814W": "hst:ACS_F814W", "F814W": "hst:ACS_F814W",
    "zg": "ztf:g", "zr": "ztf:r", "zi": "ztf:i",
    "ztf_g": "ztf:g", "ztf_r": "ztf:r", "ztf_i": "ztf:i",
    "panstarrs g": "panstarrs:g", "panstarrs r": "panstarrs:r",
    "panstarrs i": "panstarrs:i", "panstarrs z": "panstarrs:z",
    "panstarrs y": "panstarrs:y",
    "G": "gaia:G", "BP": "gaia:BP", "RP": "gaia:RP",
    "Gaia g": "gaia:G", "Gaia bp": "gaia:BP", "Gaia rp": "gaia:RP",
    "TESS": "tess:TESS", "Kepler": "kepler:Kepler", "K2": "k2:K2",
    "HCV": "hst:ACS_F814W",
}
#: Legacy "bands" that are really events.
LEGACY_EVENT_BANDS = {"IceCube": "icecube", "FERMIGTRIG": "heasarc.fermi_gbm",
                      "SAXGRBMGRB": "heasarc.bepposax"}


def make_events(objectid, archive, time, *, event_id=None, energy=None,
                error_radius=None, separation=None):
    """Build an event table (neutrinos, gamma-ray triggers).

    Parameters
    ----------
    objectid : array-like of int
        Target each event belongs to.
    archive : str or array-like of str
        Event archive (``"icecube"``, ``"heasarc.fermi_gbm"``, ...).
    time : `~astropy.time.Time`
        Event times (stored as MJD TDB).
    event_id : array-like of str, optional
        The archive's own event/trigger identifier.
    energy : `~astropy.units.Quantity`, optional
        Event energy (energy unit; NaN where unknown).
    error_radius, separation : `~astropy.units.Quantity`, optional
        Localisation error radius and target-event separation [angle].

    Returns
    -------
    `~astropy.table.QTable`
    """
    objectid = _as_1d("event objectid", objectid).astype("int64")
    n = len(objectid)
    t = QTable()
    t["objectid"] = objectid
    arch = np.asarray(archive, dtype=object)
    t["archive"] = np.full(n, arch.item(), dtype=object) if arch.ndim == 0 else \
        _as_1d("event archive", arch, n)
    t["time"] = Time(_time_values(time, n) if n else np.zeros(0), format="mjd", scale="tdb")
    t["event_id"] = _as_1d("event_id", event_id, n).astype(str) if event_id is not None \
        else np.full(n, "", dtype=object)
    for name, value, unit in (("energy", energy, ENERGY_UNIT),
                              ("error_radius", error_radius, ANGLE_UNIT),
                              ("separation", separation, ANGLE_UNIT)):
        if value is None:
            t[name] = np.full(n, np.nan) * unit
        else:
            t[name] = _quantity_values(f"event {name}", value, unit, n) * unit
    return t


def _events_from_table(events):
    t = QTable(events)
    missing = [c for c in ("objectid", "archive", "time") if c not in t.colnames]
    if missing:
        raise LightCurveError(f"event table lacks columns {missing}; build it with "
                              "multilc.lightcurve.make_events")
    n = len(t)
    out = {"objectid": np.asarray(t["objectid"], dtype="int64"),
           "archive": np.asarray(t["archive"]).astype(str).astype(object),
           "time": _time_values(t["time"], n) if n else np.zeros(0)}
    out["event_id"] = (np.asarray(t["event_id"]).astype(str).astype(object)
                       if "event_id" in t.colnames else np.full(n, "", dtype=object))
    for name, unit in (("energy", ENERGY_UNIT), ("error_radius", ANGLE_UNIT),
                       ("separation", ANGLE_UNIT)):
        out[name] = (_quantity_values(f"event {name}", t[name], unit, n)
                     if name in t.colnames else np.full(n, np.nan))
    return out


def _object_table(obj_ids, objectid, obj_codes, label, ra, dec, name=None):
    """Per-object label/name/ra/dec from scalars, mappings or per-measurement arrays."""
    n_obj = len(obj_ids)

    def per_object(name, value, unit=None, default=None):
        if value is None:
            return np.full(n_obj, default, dtype=object if unit is None else float)
        if n_obj == 1 and isinstance(value, Mapping) and unit is None:
            return np.array([value.get(int(obj_ids[0]), default)], dtype=object)
        if isinstance(value, Mapping):
            out = []
            for oid in obj_ids:
                v = value.get(int(oid), default)
                if unit is not None and v is not default:
                    v = _angle(name, v, oid)
                out.append(v)
            return np.array(out, dtype=object if unit is None else float)
        if unit is not None:
            if not isinstance(value, u.Quantity):
                raise u.UnitsError(f"{name} must be an angle Quantity or a mapping "
                                   "objectid -> angle Quantity")
            arr = np.atleast_1d(value.to_value(u.deg))
        else:
            arr = np.atleast_1d(np.asarray(value, dtype=object))
        if len(arr) == 1:
            return np.full(n_obj, arr[0], dtype=object if unit is None else float)
        if len(arr) == len(objectid):
            out = np.empty(n_obj, dtype=object if unit is None else float)
            out[obj_codes] = arr
            return out
        if len(arr) == n_obj:
            return arr
        raise LightCurveError(f"{name} has {len(arr)} values; expected one per object "
                              f"({n_obj}) or per measurement ({len(objectid)})")

    labels = per_object("label", label, default="")
    names = per_object("name", name, default="") if name is not None else \
        np.full(n_obj, "", dtype=object)
    return {
        "objectid": np.asarray(obj_ids, dtype="int64"),
        "name": names if name is None else np.array([_text(v) for v in names],
                                                     dtype=object),
        "label": np.array([_text(v) for v in labels], dtype=object),
        "ra": per_object("ra", ra, unit=u.deg, default=np.nan).astype(float),
        "dec": per_object("dec", dec, unit=u.deg, default=np.nan).astype(float),
    }


def _table_as_meta(table):
    """A table as a dict of columns astropy can write into file headers."""
    out = {}
    for name in table.colnames:
        col = table[name]
        if isinstance(col, (u.Quantity, Time)):
            out[name] = col
        elif col.dtype.kind in "OUS":
            out[name] = [str(x) for x in col]
        else:
            out[name] = np.asarray(col)
    return out


def _text(value):
    """A per-object string: None, NaN and masked values become ""."""
    if value is None or value is np.ma.masked or (isinstance(value, float)
                                                  and np.isnan(value)):
        return ""
    return str(value)


def _per_measurement(value, n):
    return value is not None and not isinstance(value, (Mapping, str)) and \
        np.ndim(value) and len(value) == n and n > 1


def _merge_object_tables(a, b):
    """Union of two object dicts with disjoint ids, sorted by objectid."""
    out = {k: np.concatenate([a[k], b[k]]) for k in a}
    order = np.argsort(out["objectid"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def _empty_obs():
    return {"time": np.zeros(0), "obs_object": np.zeros(0, "int32"),
            "obs_band": np.zeros(0, "int16"), "flux": np.zeros(0), "flux_err": np.zeros(0)}


def _preview(values, n=10):
    values = list(values)
    return ", ".join(map(str, values[:n])) + (f", ... ({len(values)} in all)"
                                              if len(values) > n else "")


def _meta_json(meta):
    try:
        return json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"lc.meta must be JSON-serialisable (str, numbers, lists, "
                         f"dicts): {exc}") from exc


def _report_to_dict(report):
    """A JSON-ready dict of a collection report (or of a dict)."""
    import dataclasses

    if isinstance(report, Mapping):
        return dict(report)
    if hasattr(report, "to_dict"):
        return report.to_dict()
    if dataclasses.is_dataclass(report):
        return dataclasses.asdict(report)
    raise InputError(f"report must be a CollectionReport or a dict, got "
                     f"{type(report).__name__}")


def _report_from_dict(data):
    """Rebuild a `~multilc.collect.CollectionReport` (late import), else the dict."""
    try:
        # the file formats' rebuilder, when present, checks every field
        from multilc.io.provenance import report_from_dict
    except ImportError:
        report_from_dict = None
    if report_from_dict is not None:
        try:
            return report_from_dict(data)
        except (TypeError, ValueError, KeyError, ImportError):
            return data
    try:
        # The one place where the data model reaches the engine: only when a
        # stored report is read back, never at import time.
        from multilc.collect.engine import CollectionReport
    except ImportError:
        return data
    from_dict = getattr(CollectionReport, "from_dict", None)
    if from_dict is None:
        return data
    try:
        return from_dict(data)
    except (TypeError, ValueError, KeyError):
        return data


def _merge_reports(reports):
    """Merge report dicts of several runs: lists joined, numbers added."""
    def merge(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(out[k], v) if k in out else v
            return out
        if isinstance(a, list) and isinstance(b, list):
            return a + b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
                not isinstance(a, bool) and not isinstance(b, bool):
            return a + b
        return a
    out = reports[0]
    for r in reports[1:]:
        out = merge(out, r)
    return out


def _duplicate_rows(keys, lead=(0, 1, 2)):
    """Boolean mask of rows equal (NaN == NaN) to an earlier row in all *keys*.

    Rows must be sorted so that equal values of the *lead* keys are adjacent.
    """
    n = len(keys[0])
    dup = np.zeros(n, bool)
    if n < 2:
        return dup
    norm = []
    for k in keys:
        k = np.asarray(k)
        if k.dtype == object:
            k = np.unique(k.astype(str), return_inverse=True)[1].reshape(-1)
        elif k.dtype.kind == "f":
            k = np.where(np.isnan(k), np.inf, k)
        norm.append(k)
    # Rows are sorted by (object, band, time): equal rows can only sit inside a
    # run of equal leading keys, so test adjacent rows first (O(n)), then sort
    # only the candidate runs fully.
    same_lead = np.ones(n - 1, bool)
    for k in (norm[i] for i in lead):
        same_lead &= k[1:] == k[:-1]
    if not same_lead.any():
        return dup
    cand = np.zeros(n, bool)
    cand[1:] |= same_lead
    cand[:-1] |= same_lead
    idx = np.flatnonzero(cand)
    order = np.lexsort([k[idx] for k in reversed(norm)] + [])
    # lexsort is stable: the first occurrence in the original order stays first
    srt = idx[order]
    eq = np.ones(len(srt) - 1, bool)
    for k in norm:
        ks = k[srt]
        eq &= ks[1:] == ks[:-1]
    dup[srt[1:][eq]] = True
    return dup


_DIMS = {**{k: "object" for k in _OBJECT_VARS}, **{k: "event" for k in _EVENT_VARS},
         **{k: "band" for k in _BAND_VARS}, "band": "band"}


def _dim_of(name):
    return _DIMS.get(name, "obs")


def _angle(name, value, oid):
    if isinstance(value, u.Quantity):
        try:
            return value.to_value(u.deg)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f"{name} of object {oid} is not an angle: {value}") from exc
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    raise u.UnitsError(f"{name} of object {oid} must be an angle Quantity, got {value!r}")


def _assemble(data, objects, band_names, band_table, events, attrs=None):
    """Make the Dataset from plain arrays; sorts obs by (object, band, time).

    Parameters are as for `_canonical`; *attrs* are extra dataset attributes
    (``multilc_meta``, ``multilc_report`` as JSON strings).
    """
    return _dataset_from_columns(_canonical(data, objects, band_names, band_table,
                                            events), attrs)


def _canonical(data, objects, band_names, band_table, events, one_group=False):
    """Canonical columns keyed by dataset variable name, rows sorted.

    *data* (a dict the caller made for this call; its entries are replaced
    by their sorted versions) holds the obs arrays (``time``, ``obs_object``, ``obs_band``,
    ``flux``, ``flux_err`` and optional ones), *objects* the per-object arrays
    (``objectid`` sorted, ``label``, ``ra``, ``dec``, optional ``name``),
    *band_names* the sorted band names with their records in *band_table*,
    and *events* the event arrays keyed as in `EVENT_COLUMNS`.
    """
    n = len(data["time"])
    if one_group:
        # one object and one band (the caller knows): only time order matters
        t = data["time"]
        if n > 1 and not (t[1:] >= t[:-1]).all():
            order = np.argsort(t, kind="stable")
            data = {k: v[order] for k, v in data.items()}
    elif n > 1 and not _is_sorted(data["obs_object"], data["obs_band"], data["time"]):
        order = _sort_order(data)
        # Column by column, in the caller's dict: each unsorted column is
        # released as soon as its sorted copy exists, so sorting needs one
        # column's worth of memory more, not a second copy of every column
        # (bench/bench_bulk_scale.py, 500,000 targets).
        for k in list(data):
            data[k] = data[k][order]
    cols = dict(data)
    n_obj = len(objects["objectid"])
    obj_ids = np.asarray(objects["objectid"], dtype="int64")
    cols["objectid"] = obj_ids
    cols["name"] = (np.asarray(objects["name"], dtype=object) if "name" in objects
                    else np.full(n_obj, "", dtype=object))
    cols["label"] = np.asarray(objects["label"], dtype=object)
    cols["ra"] = np.asarray(objects["ra"], dtype="float64")
    cols["dec"] = np.asarray(objects["dec"], dtype="float64")
    if events is _NO_EVENTS:
        # the usual piece has no events: shared empty columns (never written to)
        cols.update(_NO_EVENT_COLS)
        return _band_columns(cols, band_names, band_table)
    # events sorted by (object, time)
    ev_ids = np.asarray(events["objectid"], dtype="int64")
    ev_codes = np.searchsorted(obj_ids, ev_ids).astype("int32")
    if len(ev_ids) and (np.any(ev_codes >= n_obj) or
                        np.any(obj_ids[np.minimum(ev_codes, n_obj - 1)] != ev_ids)):
        missing = sorted(set(ev_ids.tolist()) - set(obj_ids.tolist()))
        raise LightCurveError(f"events refer to objects {missing[:10]} with no metadata")
    ev_order = np.lexsort((events["time"], ev_codes)) if len(ev_codes) else np.arange(0)
    cols["event_object"] = ev_codes[ev_order]
    cols["event_archive"] = np.asarray(events["archive"])[ev_order].astype(object)
    cols["event_time"] = np.asarray(events["time"], dtype="float64")[ev_order]
    cols["event_id"] = np.asarray(events["event_id"])[ev_order].astype(object)
    cols["event_energy"] = np.asarray(events["energy"], dtype="float64")[ev_order]
    cols["event_error_radius"] = np.asarray(events["error_radius"],
                                            dtype="float64")[ev_order]
    cols["event_separation"] = np.asarray(events["separation"], dtype="float64")[ev_order]
    return _band_columns(cols, band_names, band_table)


def _band_columns(cols, band_names, band_table):
    if len(band_names) == 1:
        rec = band_table[band_names[0]]
        try:
            cached = _one_band_columns(str(band_names[0]),
                                       tuple(rec[v] for v in _BAND_VARS))
        except TypeError:  # unhashable override value
            cached = None
        if cached is not None:
            # copies: a light curve's arrays are its own
            cols.update({k: v.copy() for k, v in cached.items()})
            return cols
    cols["band"] = np.asarray(band_names, dtype=object)
    for var in _BAND_VARS:
        vals = [band_table[b][var] for b in band_names]
        if var in ("zero_point", "wavelength"):
            cols[var] = np.asarray(vals, dtype=float)
        else:
            cols[var] = np.asarray(vals, dtype=object) if vals else np.array([], object)
    return cols


@functools.lru_cache(maxsize=1024)
def _one_band_columns(name, values):
    cols = {"band": np.array([name], dtype=object)}
    for var, val in zip(_BAND_VARS, values):
        cols[var] = np.array([val], dtype=float if var in ("zero_point", "wavelength")
                             else object)
    return cols


_NO_EVENT_COLS = {
    "event_object": np.zeros(0, "int32"), "event_archive": np.zeros(0, object),
    "event_time": np.zeros(0), "event_id": np.zeros(0, object),
    "event_energy": np.zeros(0), "event_error_radius": np.zeros(0),
    "event_separation": np.zeros(0)}


def _dataset_from_columns(cols, attrs=None):
    """The `xarray.Dataset` of canonical columns (see `_canonical`)."""
    attrs = dict(attrs or {})
    normalized = bool(attrs.get(_NORMALIZED_ATTR))
    time_attrs = {"units": "d", "time_scale": TIME_SCALE, "time_format": TIME_FORMAT,
                  "time_reference": TIME_REFERENCE}
    variables = {}
    for name, arr in cols.items():
        if name == "band":
            continue
        dim = _dim_of(name)
        var_attrs = {}
        if name == "time":
            var_attrs = {**time_attrs,
                         "long_name": "time of measurement, MJD (TDB, barycentric)"}
        elif name == "event_time":
            var_attrs = dict(time_attrs)
        elif name in ("flux", "flux_err"):
            var_attrs = {"units": "" if normalized else CALIBRATED_UNIT.to_string()}
        elif name.startswith("flux_instrumental"):
            var_attrs = {"units": INSTRUMENTAL_UNIT.to_string()}
        elif dim == "obs" and name in _OPTIONAL_OBS and _OPTIONAL_OBS[name][2]:
            var_attrs = {"units": _OPTIONAL_OBS[name][2]}
        elif name == "event_energy":
            var_attrs = {"units": "GeV"}
        elif name in ("event_error_radius", "event_separation", "ra", "dec"):
            var_attrs = {"units": "deg"}
        elif name == "zero_point":
            var_attrs = {"units": "Jy"}
        elif name == "wavelength":
            var_attrs = {"units": "Angstrom"}
        variables[name] = (dim, arr, var_attrs)
    # xarray's constructor checks every variable (~0.1 ms each); build the
    # Variables directly, the columns are already validated.
    ds = xr.Dataset(
        {k: xr.Variable(*v) for k, v in variables.items()},
        coords={"band": ("band", np.asarray(cols["band"], dtype=object))},
        attrs={"multilc_layout": "1", "time_scale": TIME_SCALE, "time_format": TIME_FORMAT,
               "time_reference": TIME_REFERENCE, **attrs},
    )
    return ds


def _sort_order(data):
    """Row order by (object, band, time).

    Pieces arrive sorted within themselves, so a stable sort on the
    (object, band) group key (timsort: linear on pre-sorted runs) usually
    leaves times in order inside each group; a full lexsort is the fallback.
    Temporaries are replaced as soon as they are used: at 2.7 million rows
    each is 21 MB, and this runs while the pieces and their concatenation are
    both in memory (bench/bench_bulk_scale.py).
    """
    key = data["obs_object"].astype("int64")
    key *= int(data["obs_band"].max()) + 1
    key += data["obs_band"]
    order = np.argsort(key, kind="stable")
    key = key[order]
    time = data["time"][order]
    in_order = bool(np.all((key[1:] != key[:-1]) | (time[1:] >= time[:-1])))
    del key, time
    if in_order:
        return order
    return np.lexsort((data["time"], data["obs_band"], data["obs_object"]))


def _is_sorted(obj, band, time):
    """True if rows are ordered by (object, band, time); O(n)."""
    if obj[0] == obj[-1] and band[0] == band[-1]:
        # one object and band (if sorted at all): only time order matters,
        # provided the codes are constant
        if (obj == obj[0]).all() and (band == band[0]).all():
            return bool((time[1:] >= time[:-1]).all())
    d_obj = np.diff(obj.astype("int64"))
    d_band = np.diff(band.astype("int64"))
    d_time = np.diff(time)
    return bool(np.all((d_obj > 0) | ((d_obj == 0) & ((d_band > 0) |
                                                      ((d_band == 0) & (d_time >= 0))))))


_REQUIRED = {"time": "obs", "obs_object": "obs", "obs_band": "obs", "flux": "obs",
             "flux_err": "obs", "objectid": "object", "label": "object", "ra": "object",
             "dec": "object", "event_object": "event", "event_archive": "event",
             "event_time": "event", "event_id": "event", "event_energy": "event",
             "event_error_radius": "event", "event_separation": "event"}


def _validate(ds):
    missing = [k for k in _REQUIRED if k not in ds.variables]
    missing += [k for k in _BAND_VARS if k not in ds.variables]
    if "band" not in ds.variables:
        missing.append("band")
    if missing:
        raise LightCurveError(f"dataset lacks variables {missing}; build light curves "
                              "with MultiBandLightCurve.from_arrays or read them from files")
    for k, dim in _REQUIRED.items():
        if ds[k].dims != (dim,):
            raise LightCurveError(f"variable {k} must have dimension ({dim!r},), "
                                  f"has {ds[k].dims}")
    for name, var in ds.variables.items():
        if "units" in var.attrs:
            try:
                _parse_unit(var.attrs["units"])
            except ValueError as exc:
                raise LightCurveError(f"variable {name} has unparseable units "
                                      f"{var.attrs['units']!r}") from exc
    for k in ("flux_unit",):
        for val in ds[k].values:
            try:
                u.Unit(val)
            except ValueError as exc:
                raise LightCurveError(f"band flux_unit {val!r} is not a unit") from exc
    n_obj, n_band = ds.sizes.get("object", 0), ds.sizes.get("band", 0)
    oo, ob = ds["obs_object"].values, ds["obs_band"].values
    if len(oo) and (oo.min() < 0 or oo.max() >= n_obj):
        raise LightCurveError("obs_object codes point outside the object dimension")
    if len(ob) and (ob.min() < 0 or ob.max() >= n_band):
        raise LightCurveError("obs_band codes point outside the band dimension")
    ids = ds["objectid"].values
    if len(ids) > 1 and np.any(np.diff(ids) <= 0):
        raise LightCurveError("objectid must be unique and sorted along 'object'")
    t = ds["time"].values
    if np.isnan(t).any():
        raise LightCurveError(f"time contains {int(np.isnan(t).sum())} NaN values")
    if ds["time"].attrs.get("time_scale", TIME_SCALE) != TIME_SCALE:
        raise LightCurveError("time must be stored in the TDB scale")
    if "flux_instrumental" in ds and "flux_instrumental_err" not in ds:
        raise LightCurveError("flux_instrumental needs flux_instrumental_err")
    if "name" not in ds.variables:
        # files written before names existed
        ds = ds.assign(name=("object", np.full(ds.sizes.get("object", 0), "",
                                               dtype=object)))
    elif ds["name"].dims != ("object",):
        raise LightCurveError(f"variable name must have dimension ('object',), has "
                              f"{ds['name'].dims}")
    return ds


def _subset(ds, keep_obs, keep_ev, obj_keep, band_keep, force_objects=None):
    """Subset obs/events, then drop objects/bands no longer used (and recode).

    Objects in *force_objects* (a boolean mask) stay even without data.
    """
    obs_idx = np.flatnonzero(keep_obs)
    ev_idx = np.flatnonzero(keep_ev)
    used_obj = np.zeros(ds.sizes["object"], bool) if force_objects is None else \
        np.asarray(force_objects, bool).copy()
    used_obj[ds["obs_object"].values[obs_idx]] = True
    used_obj[ds["event_object"].values[ev_idx]] = True
    used_band = np.zeros(ds.sizes["band"], bool)
    used_band[ds["obs_band"].values[obs_idx]] = True
    obj_idx = np.flatnonzero(used_obj)
    band_idx = np.flatnonzero(used_band)
    obj_map = np.full(ds.sizes["object"], -1, "int64")
    obj_map[obj_idx] = np.arange(len(obj_idx))
    band_map = np.full(ds.sizes["band"], -1, "int64")
    band_map[band_idx] = np.arange(len(band_idx))
    out = ds.isel(obs=obs_idx, event=ev_idx, object=obj_idx, band=band_idx)
    out["obs_object"] = out["obs_object"].copy(
        data=obj_map[out["obs_object"].values].astype("int32"))
    out["obs_band"] = out["obs_band"].copy(
        data=band_map[out["obs_band"].values].astype("int16"))
    out["event_object"] = out["event_object"].copy(
        data=obj_map[out["event_object"].values].astype("int32"))
    if "flux_instrumental" in out and len(out["flux_instrumental"]) and \
            np.isnan(out["flux_instrumental"].values).all():
        out = out.drop_vars(["flux_instrumental", "flux_instrumental_err"])
    return out


def _concat_datasets(dss):
    """Concatenate datasets in O(total size) plus one sort (kept for callers)."""
    return _dataset_from_columns(_concat_columns(
        [{name: var.values for name, var in d.variables.items()} for d in dss]))


def _concat_columns(dss, consume=False):
    """Concatenate canonical column dicts in O(total size) plus one sort.

    With *consume*, each obs column of the pieces is removed from its dict
    (and so freed, if nothing else holds it) as soon as it is concatenated:
    the collection engine joins a run's batches this way, holding one copy
    of the measurements plus one column instead of two copies.  The dicts
    are then unusable; objects and bands, which can make the join fail, are
    merged before anything is removed.
    """

    def obs_parts(name):
        parts = [d[name] for d in dss]
        if consume:
            for d in dss:
                del d[name]
        return parts

    # Plain numpy arrays: indexing an xarray Dataset costs ~10 us a call,
    # which dominates when thousands of small pieces are joined.
    # objects: union keyed by objectid
    all_ids = np.concatenate([d["objectid"] for d in dss])
    uniq_ids, first = np.unique(all_ids, return_index=True)
    labels_all = np.concatenate([d["label"].astype(object) for d in dss])
    names_all = np.concatenate([d["name"].astype(object) if "name" in d else
                                np.full(len(d["objectid"]), "", dtype=object)
                                for d in dss])
    ra_all = np.concatenate([d["ra"] for d in dss])
    dec_all = np.concatenate([d["dec"] for d in dss])
    inverse = np.searchsorted(uniq_ids, all_ids)
    labels = labels_all[first].copy()
    names = names_all[first].copy()
    ra = ra_all[first].copy()
    dec = dec_all[first].copy()
    if len(all_ids) != len(uniq_ids):
        # Merge labels of repeated objects; fill missing names and coordinates.
        # Only rows that differ from the object's first row need a look (in
        # per-target pieces of one sample, usually none).
        need = (labels_all != labels[inverse]) | ((names_all != "") &
                                                  (names_all != names[inverse]))
        nan_here, nan_first = np.isnan(ra_all), np.isnan(ra[inverse])
        with np.errstate(invalid="ignore"):
            moved = (np.abs(ra_all - ra[inverse]) > 1e-6) | \
                (np.abs(dec_all - dec[inverse]) > 1e-6)
        need |= (nan_here != nan_first) | (~nan_here & ~nan_first & moved)
        order = np.argsort(inverse, kind="stable")
        for pos in order[need[order]]:
            code = inverse[pos]
            if labels_all[pos] != labels[code]:
                have = [x for x in str(labels[code]).split("; ") if x]
                new = [x for x in str(labels_all[pos]).split("; ")
                       if x and x not in have]
                if new:
                    labels[code] = "; ".join(have + new)
            if names_all[pos] and names_all[pos] != names[code]:
                if not names[code]:
                    names[code] = names_all[pos]
                else:
                    warnings.warn(f"object {uniq_ids[code]} is named {names[code]!r} "
                                  f"and {names_all[pos]!r} in the pieces; keeping "
                                  f"{names[code]!r}", stacklevel=4)
            if np.isnan(ra[code]) and not np.isnan(ra_all[pos]):
                ra[code], dec[code] = ra_all[pos], dec_all[pos]
            elif not np.isnan(ra_all[pos]) and not np.isnan(ra[code]):
                if abs(ra_all[pos] - ra[code]) > 1e-6 or abs(dec_all[pos] - dec[code]) > 1e-6:
                    _check_same_position(uniq_ids[code], ra[code], dec[code],
                                         ra_all[pos], dec_all[pos])
    objects = {"objectid": uniq_ids, "name": names, "label": labels, "ra": ra,
               "dec": dec}

    # bands: union keyed by name, metadata must agree
    band_all = np.concatenate([np.asarray(d["band"], dtype=object) for d in dss])
    band_vals = {v: np.concatenate([d[v] for d in dss]) for v in _BAND_VARS}
    if len(band_all):
        ub, bfirst, binv = np.unique(band_all.astype(str), return_index=True,
                                     return_inverse=True)
        binv = binv.reshape(-1)
    else:
        ub, bfirst, binv = np.array([], str), np.zeros(0, int), np.zeros(0, int)
    band_table = {str(name): {v: band_vals[v][i] for v in _BAND_VARS}
                  for name, i in zip(ub, bfirst)}
    differs = np.zeros(len(band_all), bool)
    for vals in band_vals.values():
        ref = vals[bfirst][binv]
        if vals.dtype.kind == "f":
            differs |= ~np.isclose(vals, ref, equal_nan=True)
        else:
            differs |= vals != ref
    for pos in np.flatnonzero(differs):
        name = str(band_all[pos])
        rec = {v: band_vals[v][pos] for v in _BAND_VARS}
        prev = band_table[name]
        if not _same_band(prev, rec):
            if prev.get("band_notes") != rec.get("band_notes"):
                notes = [x for x in (prev["band_notes"], rec["band_notes"]) if x]
                prev["band_notes"] = "; ".join(dict.fromkeys(
                    "; ".join(notes).split("; ")))
            if not _same_band(prev, rec, ignore=("band_notes",)):
                raise LightCurveError(f"band {name} has different metadata in the "
                                      f"pieces: {prev} vs {rec}")
    band_names = np.array(list(ub), dtype=object)  # np.unique: sorted

    # obs arrays: local codes + the piece's offset index the global maps
    sizes = [len(d["time"]) for d in dss]
    n_objs = np.array([len(d["objectid"]) for d in dss])
    n_bands = np.array([len(d["band"]) for d in dss])
    obj_off = np.concatenate(([0], np.cumsum(n_objs)[:-1]))
    band_off = np.concatenate(([0], np.cumsum(n_bands)[:-1]))
    # piece by piece, so that no temporary is as long as the result
    obs_object = np.empty(sum(sizes), dtype="int32")
    obs_band = np.empty(sum(sizes), dtype="int16")
    pos = 0
    for i, (local_obj, local_band) in enumerate(zip(obs_parts("obs_object"),
                                                    obs_parts("obs_band"))):
        stop = pos + sizes[i]
        obs_object[pos:stop] = inverse[obj_off[i]:obj_off[i] + n_objs[i]][local_obj]
        obs_band[pos:stop] = binv[band_off[i]:band_off[i] + n_bands[i]][local_band]
        pos = stop
    data = {"time": np.concatenate(obs_parts("time")), "obs_object": obs_object,
            "obs_band": obs_band}
    ev_sizes = [len(d["event_time"]) for d in dss]
    local_ev = np.concatenate([d["event_object"] for d in dss]).astype("int64")
    ev_codes = [inverse[local_ev + np.repeat(obj_off, ev_sizes)]] if len(local_ev) \
        else []
    total = sum(sizes)
    for name in ("flux", "flux_err"):
        data[name] = np.concatenate(obs_parts(name))
    optional = ["flux_instrumental", "flux_instrumental_err", *_OPTIONAL_OBS]
    for name in optional:
        if not any(name in d for d in dss):
            continue
        if name.startswith("flux_instrumental"):
            dtype, fill = "float64", np.nan
        else:
            dtype, fill, _ = _OPTIONAL_OBS[name]
        parts = [d[name] if name in d else None for d in dss]
        if consume:
            for d in dss:
                d.pop(name, None)
        if name == "source_id" and any(p is not None and p.dtype == object for p in parts):
            dtype, fill = object, ""
            parts = [p.astype(str).astype(object) if p is not None else None for p in parts]
        out = np.empty(total, dtype=dtype)
        pos = 0
        for p, size in zip(parts, sizes):
            out[pos:pos + size] = fill if p is None else p
            pos += size
        data[name] = out
    events = {
        "objectid": uniq_ids[np.concatenate(ev_codes)] if ev_codes else np.zeros(0, "int64"),
        "archive": np.concatenate([d["event_archive"] for d in dss]).astype(object),
        "time": np.concatenate([d["event_time"] for d in dss]),
        "event_id": np.concatenate([d["event_id"] for d in dss]).astype(object),
        "energy": np.concatenate([d["event_energy"] for d in dss]),
        "error_radius": np.concatenate([d["event_error_radius"] for d in dss]),
        "separation": np.concatenate([d["event_separation"] for d in dss]),
    }
    return _canonical(data, objects, band_names, band_table, events)


def _with_object_metadata(lc, objectid, label, ra, dec, name=None, *, add=False):
    """*lc* with the given objects' label, position (and name) set.

    For the collection engine: objects of *lc* that are among *objectid* take
    the given ``label``, ``ra``, ``dec`` [deg] and, where not empty, ``name``;
    with ``add=True`` the objects *lc* has no data for join its object table
    (with no data), so that a result lists every requested target.

    No measurement is copied: the obs and event arrays are shared with *lc*
    (only the object codes are renumbered when objects are added), so *lc*
    must not be used afterwards.  Joining a 500,000-target result with its
    sample this way used one more copy of no column (``concat`` made a
    third copy of every measurement; bench/bench_bulk_scale.py).
    """
    objectid = np.asarray(objectid, dtype="int64")
    if not len(objectid):
        return lc
    cols = dict(lc._columns())
    old_ids = cols["objectid"]
    if add:
        ids = np.union1d(old_ids, objectid)
    else:
        ids = old_ids
    n = len(ids)
    at_old = np.searchsorted(ids, old_ids)          # == arange when nothing is added
    label_out = np.full(n, "", dtype=object)
    name_out = np.full(n, "", dtype=object)
    ra_out = np.full(n, np.nan)
    dec_out = np.full(n, np.nan)
    label_out[at_old] = cols["label"]
    name_out[at_old] = cols["name"]
    ra_out[at_old] = cols["ra"]
    dec_out[at_old] = cols["dec"]
    at_new = np.searchsorted(ids, objectid)
    found = at_new < n
    found[found] = ids[at_new[found]] == objectid[found]
    at = at_new[found]
    label_out[at] = np.asarray(label, dtype=object)[found]
    ra_out[at] = np.asarray(ra, dtype="float64")[found]
    dec_out[at] = np.asarray(dec, dtype="float64")[found]
    if name is not None:
        given = np.asarray(name, dtype=object)[found]
        has = np.array([bool(v) for v in given], dtype=bool)
        name_out[at[has]] = given[has]
    cols.update(objectid=ids, label=label_out, name=name_out, ra=ra_out, dec=dec_out)
    if n != len(old_ids):
        # monotonic renumbering: the (object, band, time) order is unchanged
        cols["obs_object"] = at_old[cols["obs_object"]].astype("int32")
        cols["event_object"] = at_old[cols["event_object"]].astype("int32")
    return lc._derive(cols=cols)


def _check_same_position(oid, ra1, dec1, ra2, dec2):
    from astropy.coordinates import SkyCoord
    sep = SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg"))
    if sep > 1 * u.arcsec:
        raise LightCurveError(
            f"object {oid} has two different positions in the pieces "
            f"({ra1:.6f}, {dec1:.6f}) and ({ra2:.6f}, {dec2:.6f}) deg, "
            f"{sep.to(u.arcsec):.2f} apart; objectids must identify one target")


def _same_band(a, b, ignore=()):
    for k in _BAND_VARS:
        if k in ignore:
            continue
        x, y = a[k], b[k]
        if isinstance(x, float) or isinstance(y, float):
            if not (np.isnan(x) and np.isnan(y)) and not np.isclose(x, y):
                return False
        elif x != y:
            return False
    return True
