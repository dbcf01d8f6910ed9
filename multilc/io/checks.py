"""The contract of multilc's own files, checked when they are read (and written).

A file is read into plain arrays first; everything here checks those arrays
before they become a `~multilc.MultiBandLightCurve`, and raises
`~multilc.errors.FileFormatError` (naming the file, the column and what was
wrong) for anything outside the contract:

* units: each column's declared unit must be convertible to the storage unit
  (``flux`` in mJy, ``time`` in days, ...); values are converted, so a file
  with flux in Jy reads correctly.  An incompatible unit is refused.
* types: integer ids and codes, float measurements, strings for names.
* references: every measurement's object id and band must be in the file's
  object and band tables (a row is never attributed to another object).
* values: times finite and within `TIME_RANGE_MJD`; no infinite value in
  any measurement; uncertainties, separations, energies and error radii not
  negative; positions on the sky.

The same value checks run before writing, so a file multilc writes is a file
multilc reads.
"""
import math
from contextlib import contextmanager

import numpy as np
from astropy import units as u

from multilc.errors import FileFormatError, MissingDependencyError
from multilc.lightcurve import (_BAND_VARS, _OPTIONAL_OBS, CALIBRATED_UNIT,
                                INSTRUMENTAL_UNIT, LightCurveError, TIME_FORMAT,
                                TIME_SCALE)

__all__ = ["TIME_RANGE_MJD", "OBS_UNITS", "boundary", "convert", "check_values",
           "tables_from_meta", "codes_for", "float_array", "int_array", "str_array"]

#: Plausible measurement and event times [MJD]: MJD 0 is 1858-11-17, before the
#: oldest photographic plates (Harvard, from 1885, MJD ~9300); MJD 100000 is in
#: 2132.  A time outside is a damaged value or a sentinel such as -999.
TIME_RANGE_MJD = (0.0, 100000.0)

#: Storage unit of each per-measurement column (None: no unit).
OBS_UNITS = {"time": u.day, "flux": CALIBRATED_UNIT, "flux_err": CALIBRATED_UNIT,
             "flux_instrumental": INSTRUMENTAL_UNIT,
             "flux_instrumental_err": INSTRUMENTAL_UNIT}
OBS_UNITS.update({name: (u.Unit(spec[2]) if spec[2] else None)
                  for name, spec in _OPTIONAL_OBS.items()})
#: Per-object, per-band and per-event values with a unit.
TABLE_UNITS = {"ra": u.deg, "dec": u.deg, "zero_point": u.Jy, "wavelength": u.AA,
               "event_time": u.day, "event_energy": u.GeV, "event_error_radius": u.deg,
               "event_separation": u.deg}
#: Columns that must not be negative (where not NaN).
_NON_NEGATIVE = ("flux_err", "flux_instrumental_err", "mag_err", "separation")
_EVENT_NON_NEGATIVE = ("energy", "error_radius", "separation")
_REQUIRED_OBS = ("time", "flux", "flux_err")


@contextmanager
def boundary(path, what):
    """Turn an error escaping a reader into a `FileFormatError` naming *path*.

    Only the errors a damaged file can provoke in numpy, astropy, JSON and the
    data model are translated (chained with ``from``); a missing file, a
    missing optional dependency and bugs (``AttributeError``, ``NameError``)
    pass unchanged.
    """
    try:
        yield
    except (FileFormatError, MissingDependencyError, FileNotFoundError,
            PermissionError, IsADirectoryError):
        raise
    except (LightCurveError, u.UnitsError) as exc:
        raise FileFormatError(path, f"not a valid multilc {what} file: {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, OSError,
            UnicodeError, RecursionError) as exc:
        raise FileFormatError(path, f"damaged or not a multilc {what} file "
                                    f"({type(exc).__name__}: {exc})") from exc


def _unit_of(declared, name, path):
    if isinstance(declared, u.UnitBase):
        return declared
    if not isinstance(declared, str):
        raise FileFormatError(path, f"column {name!r}: unit {declared!r} is not a string")
    try:
        return u.Unit(declared)
    except ValueError as exc:
        raise FileFormatError(path, f"column {name!r}: {declared!r} is not a unit") \
            from exc


def convert(values, declared, expected, name, path):
    """*values* (float array) declared in unit *declared*, converted to *expected*.

    Parameters
    ----------
    values : numpy.ndarray
    declared : str, `~astropy.units.UnitBase` or None
        The unit the file declares for the column (None: none declared).
    expected : `~astropy.units.UnitBase` or None
        The storage unit; None for unitless columns (a declared unit must then
        be absent or dimensionless).
    name : str
        Column name for messages.
    path : str
        File name for messages.

    Returns
    -------
    numpy.ndarray
        *values* itself when no conversion is needed (no copy), else a new array.
    """
    if expected is None:
        if declared in (None, ""):
            return values
        unit = _unit_of(declared, name, path)
        if unit != u.dimensionless_unscaled:
            raise FileFormatError(path, f"column {name!r} has unit {declared!r} but is "
                                        "a number without unit")
        return values
    if declared in (None, ""):
        raise FileFormatError(path, f"column {name!r} has no unit (expected "
                                    f"{expected.to_string()})")
    unit = _unit_of(declared, name, path)
    if unit == expected:
        return values
    if expected == u.day and name in ("time", "event_time"):
        # MJD counts days; a time in seconds is not an MJD.
        raise FileFormatError(path, f"column {name!r} is in {unit.to_string()!r}; "
                                    f"multilc times are MJD in days ({TIME_SCALE.upper()})")
    try:
        factor = unit.to(expected)
    except u.UnitConversionError as exc:
        raise FileFormatError(path, f"column {name!r} is in {unit.to_string()!r}, which "
                                    f"cannot be converted to {expected.to_string()!r}") \
            from exc
    return np.asarray(values, dtype="float64") * factor


# --------------------------------------------------------------------------- arrays
def _one_dim(values, name, path, dtype=None):
    if isinstance(values, list):
        # JSON lists: keep Python objects (no silent bool -> int, str -> float)
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise FileFormatError(path, f"{name!r} is not a flat list of values")
    return arr


def float_array(values, name, path):
    """*values* as float64; integers are accepted, anything else refused."""
    arr = _one_dim(values, name, path)
    if arr.dtype.kind == "f":
        return arr.astype("float64", copy=False)
    if arr.dtype.kind in "iu":
        return arr.astype("float64")
    if arr.dtype == object:  # JSON lists: numbers and None (= NaN)
        out = np.empty(len(arr), dtype="float64")
        for i, v in enumerate(arr):
            if v is None:
                out[i] = np.nan
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[i] = v
            else:
                raise FileFormatError(path, f"{name!r} holds {v!r}, not a number")
        return out
    raise FileFormatError(path, f"{name!r} is of type {arr.dtype}, not numbers")


def int_array(values, name, path):
    """*values* as int64; floats, bools, strings refused."""
    arr = _one_dim(values, name, path)
    if arr.size == 0 and arr.ndim == 1:
        return np.zeros(0, "int64")
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo("int64").max:
            raise FileFormatError(path, f"{name!r} holds integers too large for int64")
        return arr.astype("int64", copy=False)
    if arr.dtype == object:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in arr):
            bad = next(v for v in arr if not isinstance(v, int) or isinstance(v, bool))
            raise FileFormatError(path, f"{name!r} holds {bad!r}, not an integer")
        try:
            return arr.astype("int64")
        except OverflowError as exc:
            raise FileFormatError(path, f"{name!r} holds integers too large for int64") \
                from exc
    raise FileFormatError(path, f"{name!r} is of type {arr.dtype}, not integers")


def str_array(values, name, path):
    """*values* as an object array of str."""
    arr = _one_dim(values, name, path)
    if arr.size == 0 and arr.ndim == 1:
        return np.zeros(0, dtype=object)
    if arr.dtype.kind in "US":
        return arr.astype(str).astype(object)
    if arr.dtype == object and all(isinstance(v, str) for v in arr):
        return arr
    raise FileFormatError(path, f"{name!r} must hold strings")


def codes_for(values, uniques, what, path):
    """Positions of *values* in *uniques*; every value must be there.

    Files are written sorted by object, so the values come in runs: the check
    is done once per run (then repeated), not once per row.
    """
    values = np.asarray(values)
    if not len(values):
        return np.zeros(0, "int32")
    if not len(uniques):
        raise FileFormatError(path, f"{len(values)} rows refer to {what}s but the "
                                    f"file's {what} table is empty")
    uniques = np.asarray(uniques)
    order = np.argsort(uniques, kind="stable")
    ordered = uniques[order]
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    if len(starts) * 4 < len(values):
        runs = values[np.concatenate(([0], starts))]
        lengths = np.diff(np.concatenate(([0], starts, [len(values)])))
        pos = np.searchsorted(ordered, runs)
        _check_found(runs, pos, ordered, what, path)
        return np.repeat(order[pos].astype("int32"), lengths)
    pos = np.searchsorted(ordered, values)
    _check_found(values, pos, ordered, what, path)
    return order[pos].astype("int32")


def _check_found(values, codes, uniques, what, path):
    clipped = np.minimum(codes, len(uniques) - 1)
    missing = uniques[clipped] != values
    if np.any(missing):
        absent = np.unique(values[missing])
        shown = ", ".join(map(repr, absent[:5].tolist()))
        raise FileFormatError(
            path, f"{int(missing.sum())} rows refer to {what} {shown}"
                  f"{' ...' if len(absent) > 5 else ''} which the file's {what} table "
                  "does not have")


# --------------------------------------------------------------------------- tables
def _lists(block, keys, name, path):
    if not isinstance(block, dict):
        raise FileFormatError(path, f"the {name} table in the metadata is not an object")
    out = {}
    for key in keys:
        value = block.get(key)
        if not isinstance(value, (list, np.ndarray)):
            raise FileFormatError(path, f"the {name} table lacks the list {key!r}")
        out[key] = value
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise FileFormatError(path, f"the {name} table's columns have different lengths")
    return out


def tables_from_meta(meta, path):
    """Object, band and event tables from the metadata a file stores.

    *meta* is the JSON the parquet and ECSV writers store (``objects``,
    ``bands``, ``events``, ``units``, ``time_scale``, ...); the netCDF
    reader builds the same shape from the file's variables.

    Returns
    -------
    objects : dict of arrays
    band_names : numpy.ndarray of str (object)
    band_table : dict of band name -> dict
    events : dict of arrays (``objectid``, ``archive``, ``time``, ...)
    """
    from multilc.io.formats import FORMAT_VERSION

    if not isinstance(meta, dict):
        raise FileFormatError(path, "the multilc metadata is not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise FileFormatError(path, f"multilc layout version {meta.get('format_version')!r}"
                                    f" is not supported (this multilc reads "
                                    f"{FORMAT_VERSION!r})")
    if meta.get("time_scale") != TIME_SCALE or meta.get("time_format", TIME_FORMAT) != \
            TIME_FORMAT:
        raise FileFormatError(path, f"times are {meta.get('time_format')!r} in scale "
                                    f"{meta.get('time_scale')!r}; multilc files hold "
                                    f"{TIME_FORMAT} in {TIME_SCALE!r}")
    units = meta.get("units", {})
    if not isinstance(units, dict):
        raise FileFormatError(path, "the units in the metadata are not an object")

    o = _lists(meta.get("objects"), ("objectid", "label", "ra", "dec"), "object", path)
    objects = {"objectid": int_array(o["objectid"], "objectid", path),
               "label": str_array(o["label"], "label", path)}
    if "name" in meta["objects"]:  # target names (optional: older files lack them)
        names = str_array(meta["objects"]["name"], "name", path)
        if len(names) != len(objects["objectid"]):
            raise FileFormatError(path, "the object table's columns have different "
                                        "lengths")
        objects["name"] = names
    for key in ("ra", "dec"):
        objects[key] = convert(float_array(o[key], key, path), units.get(key, "deg"),
                               TABLE_UNITS[key], key, path)
    ids = objects["objectid"]
    if len(ids) > 1 and np.any(np.diff(ids) <= 0):
        raise FileFormatError(path, "object ids in the object table are not unique and "
                                    "sorted")

    b = _lists(meta.get("bands"), ("band",) + _BAND_VARS, "band", path)
    band_names = str_array(b["band"], "band", path)
    if len(set(band_names.tolist())) != len(band_names):
        raise FileFormatError(path, "band names in the band table are not unique")
    columns = {}
    for key in _BAND_VARS:
        if key in ("zero_point", "wavelength"):
            columns[key] = convert(float_array(b[key], key, path),
                                   units.get(key, TABLE_UNITS[key].to_string()),
                                   TABLE_UNITS[key], key, path)
        else:
            columns[key] = str_array(b[key], key, path)
    for value in columns["flux_unit"]:
        _unit_of(value, "flux_unit", path)
    band_table = {name: {key: (columns[key][i] if key not in ("zero_point", "wavelength")
                               else float(columns[key][i])) for key in _BAND_VARS}
                  for i, name in enumerate(band_names)}

    e = _lists(meta.get("events"), ("event_object", "event_archive", "event_time",
                                    "event_id", "event_energy", "event_error_radius",
                                    "event_separation"), "event", path)
    codes = int_array(e["event_object"], "event_object", path)
    if len(codes) and (codes.min() < 0 or codes.max() >= len(ids)):
        raise FileFormatError(path, "events refer to objects the object table does not "
                                    "have")
    events = {"objectid": ids[codes] if len(codes) else np.zeros(0, "int64"),
              "archive": str_array(e["event_archive"], "event_archive", path),
              "event_id": str_array(e["event_id"], "event_id", path)}
    for key, short in (("event_time", "time"), ("event_energy", "energy"),
                       ("event_error_radius", "error_radius"),
                       ("event_separation", "separation")):
        events[short] = convert(float_array(e[key], key, path),
                                units.get(key, TABLE_UNITS[key].to_string()),
                                TABLE_UNITS[key], key, path)
    return objects, band_names, band_table, events


# --------------------------------------------------------------------------- values
def _where(mask):
    return int(np.count_nonzero(mask))


def check_values(data, objects, band_table, events, path, error=FileFormatError):
    """Refuse values outside the contract (see the module docstring).

    *error* is called as ``error(path, message)``; the writers pass a
    function raising `~multilc.LightCurveError`.
    """
    lo, hi = TIME_RANGE_MJD
    for name, arr in (("time", data["time"]), ("event time", events["time"])):
        bad = ~((arr >= lo) & (arr <= hi))  # also NaN
        if bad.any():
            raise error(path, f"{_where(bad)} {name} values are NaN, infinite or outside "
                              f"MJD {lo:g}-{hi:g} (first: {arr[bad][0]!r})")
    for name, arr in data.items():
        if name in ("time", "obs_object", "obs_band") or arr.dtype.kind != "f":
            continue
        if np.isinf(arr).any():
            raise error(path, f"{_where(np.isinf(arr))} {name} values are infinite")
        if name in _NON_NEGATIVE and (arr < 0).any():
            raise error(path, f"{_where(arr < 0)} {name} values are negative")
    for name in _EVENT_NON_NEGATIVE:
        arr = events[name]
        if np.isinf(arr).any() or (arr < 0).any():
            raise error(path, f"event {name} holds negative or infinite values")
    ra, dec = objects["ra"], objects["dec"]
    if np.any((ra < 0) | (ra > 360)) or np.any(np.abs(dec) > 90) or \
            np.isinf(ra).any() or np.isinf(dec).any():
        raise error(path, "object positions outside 0 <= ra <= 360 deg, "
                          "-90 <= dec <= 90 deg")
    for name, rec in band_table.items():
        for key in ("zero_point", "wavelength"):
            value = rec[key]
            if not (math.isnan(value) or (math.isfinite(value) and value > 0)):
                raise error(path, f"band {name}: {key} {value!r} is not positive")
    for name in _REQUIRED_OBS:
        if name not in data:
            raise error(path, f"the measurements lack the column {name!r}")
