"""multilc's own file formats: parquet (default), netCDF (CF ragged arrays), ECSV.

All three round-trip a `~multilc.MultiBandLightCurve` losslessly: values,
units, the time scale, per-object and per-band metadata, events, and the
provenance (``lc.meta`` and ``lc.report``, see `multilc.io.provenance`).

parquet
    A long table, one row per measurement (``objectid, label, band, time,
    flux, flux_err, ...``).  ``label`` and ``band`` are plain string columns
    (parquet stores them dictionary-encoded on disk), so `pandas.read_parquet`,
    `pyarrow.parquet.read_table` and `astropy.table.QTable.read` all open the
    file.  Units are in each field's metadata (``unit``) and in an astropy
    ``table_meta_yaml`` header (so ``QTable.read`` gives Quantities); the
    object, band and event tables, the time scale and the provenance are JSON
    in the file's key-value metadata under ``multilc``.  Data pages carry
    CRC-32 checksums, verified on reading.
netCDF
    CF-1.10 discrete sampling geometry ``timeSeries`` in the *contiguous
    ragged array* representation: ``row_size(object)`` with
    ``sample_dimension = "obs"``; events use the *indexed ragged array*
    representation (``event_object`` with ``instance_dimension = "object"``).
    No MultiIndex on disk.  Numeric variables carry HDF5 Fletcher-32
    checksums.  The provenance is the JSON global attribute
    ``multilc_provenance``.  Needs ``h5netcdf`` (``pip install
    "multilc[netcdf]"``).
ECSV
    An astropy ECSV table, one row per measurement, with the object, band and
    event tables and the provenance in the YAML header.

Reading validates at the boundary (`multilc.io.checks`): declared units are
converted to the storage units or refused, rows referring to an object or
band the file does not describe are refused, values outside the contract
(non-finite times, negative uncertainties, ...) are refused.  Every problem
with a file is a `~multilc.errors.FileFormatError` naming the file.
"""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy import units as u

from multilc.errors import FileFormatError, require
from multilc.io import checks, provenance
from multilc.io.checks import boundary, convert
from multilc.io.registry import register_file_format
from multilc.lightcurve import (_BAND_VARS, LightCurveError, MultiBandLightCurve,
                                TIME_FORMAT, TIME_REFERENCE, TIME_SCALE, _assemble)

__all__ = ["write_parquet", "read_parquet", "write_netcdf", "read_netcdf", "write_ecsv",
           "read_ecsv", "FORMAT_VERSION", "OWN_FORMATS"]

#: Version of the on-disk layout written by this module.
FORMAT_VERSION = "1"
#: The formats multilc writes, with the file-name endings that select them.
OWN_FORMATS = {"parquet": (".parquet", ".pq"), "netcdf": (".nc", ".nc4", ".netcdf"),
               "ecsv": (".ecsv",)}
_META_KEY = b"multilc"
_PROVENANCE_KEY = "multilc_provenance"
#: Per-object variables stored in the object table (``name``: the target's
#: name, in light curves of multilc versions that have names).
_OBJECT_KEYS = ("objectid", "name", "label", "ra", "dec")
_EVENT_VARS = ("event_object", "event_archive", "event_time", "event_id", "event_energy",
               "event_error_radius", "event_separation")


# --------------------------------------------------------------------------- metadata
def _json_safe(arr):
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        return [None if np.isnan(x) else float(x) for x in arr]
    if arr.dtype.kind in "iu":
        return [int(x) for x in arr]
    return [str(x) for x in arr]


def _tables_meta(ds, columns=None):
    """Object, band and event tables of *ds* as JSON-ready dicts.

    With *columns* (the names of the file's columns) the number of rows and
    the column names are recorded too, so that a file cut at a line
    boundary, or with rows or columns removed, is refused on reading.
    """
    objects = {k: _json_safe(ds[k].values) for k in _OBJECT_KEYS if k in ds}
    bands = {"band": _json_safe(ds["band"].values)}
    bands.update({k: _json_safe(ds[k].values) for k in _BAND_VARS})
    events = {k: _json_safe(ds[k].values) for k in _EVENT_VARS}
    return {"format_version": FORMAT_VERSION, "time_scale": TIME_SCALE,
            "time_format": TIME_FORMAT, "time_reference": TIME_REFERENCE,
            "units": {name: ds[name].attrs["units"] for name in ds.data_vars
                      if "units" in ds[name].attrs},
            "objects": objects, "bands": bands, "events": events,
            **({"n_rows": int(ds.sizes.get("obs", 0)), "columns": list(columns)}
               if columns is not None else {})}


def _check_shape(meta, n_rows, columns, path):
    """Compare the rows and columns found with those the writer recorded."""
    if n_rows is not None and "n_rows" in meta and meta["n_rows"] != n_rows:
        raise FileFormatError(path, f"the file holds {n_rows} measurements, but was "
                                    f"written with {meta['n_rows']!r} (truncated or "
                                    "edited?)")
    if columns is not None and "columns" in meta and (
            not isinstance(meta["columns"], list) or
            sorted(map(str, meta["columns"])) != sorted(columns)):
        raise FileFormatError(path, f"the file has the columns {sorted(columns)}, but "
                                    f"was written with {meta['columns']!r}")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _load_json(raw, what, path):
    """Parse JSON from a file; NaN/Infinity tokens and non-objects are refused."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise FileFormatError(path, f"the {what} is damaged (not valid JSON: {exc})") \
            from exc
    if not isinstance(value, dict):
        raise FileFormatError(path, f"the {what} is not a JSON object")
    return value


def _provenance_from(block, path):
    try:
        return provenance.check_provenance(block)
    except ValueError as exc:
        raise FileFormatError(path, f"the provenance is damaged: {exc}") from exc


def _finish(path, data, objects, band_names, band_table, events, prov):
    """Check values, build the light curve, restore provenance."""
    checks.check_values(data, objects, band_table, events, path)
    lc = MultiBandLightCurve(_assemble(data, objects, band_names, band_table, events))
    meta, report = _provenance_from(prov, path)
    try:
        return provenance.restore(lc, meta, report)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(path, f"the stored failure report is damaged: {exc}") \
            from exc


def _write_error(path, message):
    raise LightCurveError(f"cannot write {path}: {message}; a file must hold values "
                          "multilc can read back")


def _check_before_write(ds, path):
    data = {name: ds[name].values for name in ds.data_vars if ds[name].dims == ("obs",)}
    objects = {"ra": ds["ra"].values, "dec": ds["dec"].values}
    band_table = {str(name): {"zero_point": float(zp), "wavelength": float(wl)}
                  for name, zp, wl in zip(ds["band"].values, ds["zero_point"].values,
                                          ds["wavelength"].values)}
    events = {"time": ds["event_time"].values, "energy": ds["event_energy"].values,
              "error_radius": ds["event_error_radius"].values,
              "separation": ds["event_separation"].values}
    checks.check_values(data, objects, band_table, events, os.fspath(path),
                        error=_write_error)


def _obs_columns(ds):
    """Names of the per-measurement variables written as columns."""
    return [name for name in ds.data_vars
            if ds[name].dims == ("obs",) and name not in ("obs_object", "obs_band")]


# --------------------------------------------------------------------------- parquet
def write_parquet(lc, path, *, overwrite=False, compression="zstd"):
    """Write *lc* as a long parquet table (see module docstring).

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
    path : str or path-like
    overwrite : bool
        Replace an existing file.
    compression : str
        Parquet compression codec.
    """
    _check_overwrite(path, overwrite)
    ds = lc.ds
    _check_before_write(ds, path)
    obs_obj = ds["obs_object"].values
    obs_band = ds["obs_band"].values.astype("int32")
    labels = ds["label"].values.astype(str)
    label_dict = np.unique(labels) if len(labels) else np.array([], dtype=str)
    label_codes = np.searchsorted(label_dict, labels).astype("int32")
    band_names = np.asarray(ds["band"].values, dtype=str)
    # Plain string columns (decoded here in C++); the parquet writer
    # dictionary-encodes them on disk, and the reader asks for dictionaries
    # back (read_dictionary), so neither side pays per-row Python strings.
    columns = {
        "objectid": pa.array(ds["objectid"].values[obs_obj] if len(obs_obj) else
                             np.zeros(0, "int64"), pa.int64()),
        "label": pa.DictionaryArray.from_arrays(
            pa.array(label_codes[obs_obj] if len(obs_obj) else np.zeros(0, "int32")),
            pa.array(label_dict, pa.string())).dictionary_decode(),
        "band": pa.DictionaryArray.from_arrays(
            pa.array(obs_band), pa.array(band_names, pa.string())).dictionary_decode(),
    }
    for name in _obs_columns(ds):
        values = ds[name].values
        columns[name] = pa.array(values.astype(str) if values.dtype == object else values)
    fields = []
    for name, arr in columns.items():
        unit = ds[name].attrs.get("units") if name in ds else None
        fields.append(pa.field(name, arr.type,
                               metadata={b"unit": unit.encode()} if unit else None))
    prov = provenance.file_provenance(lc)
    meta = _tables_meta(ds, columns)
    meta[_PROVENANCE_KEY] = prov
    schema_meta = {_META_KEY: json.dumps(meta, allow_nan=False).encode()}
    schema_meta.update(_astropy_header(columns, ds, prov))
    schema = pa.schema(fields, metadata=schema_meta)
    table = pa.Table.from_arrays(list(columns.values()), schema=schema)
    pq.write_table(table, path, compression=compression, write_page_checksum=True)


def _astropy_header(columns, ds, prov):
    """The ``table_meta_yaml`` (and string lengths) `astropy.table.Table.read` uses.

    With it, ``QTable.read(path)`` gives Quantity columns with units and the
    provenance in ``meta``.  Built from a zero-row table, so it costs nothing
    per measurement.
    """
    from astropy.table import QTable, meta as table_meta

    t = QTable(meta={"multilc": {"provenance": prov,
                                 "note": "written by multilc; read it with "
                                         "multilc.MultiBandLightCurve.read"}})
    lengths = {}
    for name, arr in columns.items():
        if pa.types.is_string(arr.type):
            width = max(1, max((len(s) for s in _unique_strings(arr)), default=1))
            lengths[f"table::len::{name}".encode()] = str(width).encode()
            t[name] = np.zeros(0, dtype=f"U{width}")
            continue
        dtype = arr.type.to_pandas_dtype()
        unit = ds[name].attrs.get("units") if name in ds else None
        t[name] = np.zeros(0, dtype=dtype) * u.Unit(unit) if unit else \
            np.zeros(0, dtype=dtype)
    header = "\n".join(table_meta.get_yaml_from_table(t))
    return {b"table_meta_yaml": header.encode(), **lengths}


def _unique_strings(arr):
    return arr.unique().to_pylist() if len(arr) else []


def read_parquet(path, **kwargs):
    """Read a file written by `write_parquet`.

    Parameters
    ----------
    path : str or path-like
    **kwargs
        Passed to `pyarrow.parquet.read_table` (for example ``filesystem``).

    Raises
    ------
    multilc.errors.FileFormatError
        If the file is not a readable multilc parquet file (damaged,
        truncated, foreign, values or units outside the contract).
    """
    path = _path_of(path)
    name = _name_of(path)
    with boundary(name, "parquet"):
        return _read_parquet(path, name, kwargs)


def _read_parquet(path, name, kwargs):
    kwargs.setdefault("page_checksum_verification", True)
    try:
        table = pq.read_table(path, read_dictionary=["label", "band"], **kwargs)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError,
            IndexError) as exc:
        # ArrowInvalid, ArrowIOError, checksum failures, bad thrift metadata
        raise FileFormatError(name, f"not a readable parquet file (truncated or "
                                    f"damaged?): {exc}") from exc
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise FileFormatError(name, "parquet file has no multilc metadata; read a plain "
                                    "table with MultiBandLightCurve.from_pandas("
                                    "pandas.read_parquet(path), ...)")
    meta = _load_json(raw, "multilc metadata", name)
    objects, band_names, band_table, events = checks.tables_from_meta(meta, name)
    units = meta.get("units", {})

    for required in ("objectid", "band", "time", "flux", "flux_err"):
        if required not in table.column_names:
            raise FileFormatError(name, f"the column {required!r} is missing")
    if len(set(table.column_names)) != len(table.column_names):
        raise FileFormatError(name, "column names are repeated")
    # a row filter or a column selection (reading a part of a dataset) changes
    # what is found; the recorded shape is then not comparable
    _check_shape(meta, None if kwargs.get("filters") is not None else table.num_rows,
                 None if kwargs.get("columns") is not None else table.column_names, name)
    data = {}
    oid = table.column("objectid")
    if not pa.types.is_integer(oid.type) or oid.null_count:
        raise FileFormatError(name, f"objectid must be integers without nulls, is "
                                    f"{oid.type} with {oid.null_count} nulls")
    data["obs_object"] = checks.codes_for(
        checks.int_array(oid.to_numpy(), "objectid", name), objects["objectid"],
        "object id", name)
    data["obs_band"] = _band_codes(table.column("band"), band_names, name)
    for col_name in table.column_names:
        if col_name in ("objectid", "label", "band"):
            continue
        field = table.schema.field(col_name)
        declared = (field.metadata or {}).get(b"unit")
        declared = declared.decode("utf-8", "replace") if declared is not None else \
            units.get(col_name)
        data[col_name] = _obs_values(col_name, table.column(col_name), declared, name)
    _check_instrumental_pair(data, name)
    return _finish(name, data, objects, band_names, band_table, events,
                   meta.get(_PROVENANCE_KEY))


def _band_codes(col, band_names, name):
    if col.null_count:
        raise FileFormatError(name, f"the band column has {col.null_count} nulls")
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if isinstance(col.type, pa.DictionaryType):
        if not pa.types.is_string(col.type.value_type):
            raise FileFormatError(name, "the band column must hold strings")
        file_names = np.asarray(col.dictionary.to_pylist(), dtype=object)
        codes = col.indices.to_numpy(zero_copy_only=False)
        if not len(codes):
            return np.zeros(0, "int16")
        if codes.min() < 0 or codes.max() >= len(file_names):
            raise FileFormatError(name, "the band column is damaged")
        used = np.flatnonzero(np.bincount(codes, minlength=len(file_names)))
        remap = np.zeros(len(file_names), "int32")
        remap[used] = checks.codes_for(file_names[used], band_names, "band", name)
        if np.array_equal(remap, np.arange(len(remap))):
            return codes.astype("int16")  # the usual case: same order
        return remap[codes].astype("int16")
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise FileFormatError(name, f"the band column must hold strings, is {col.type}")
    return checks.codes_for(np.asarray(col.to_pylist(), dtype=object), band_names,
                            "band", name).astype("int16")


def _obs_values(col_name, col, declared, name):
    """One per-measurement column as a numpy array in its storage unit."""
    spec = _obs_spec(col_name, name)
    kind, unit = spec
    t = col.type
    if kind == "float":
        if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
            raise FileFormatError(name, f"column {col_name!r} must be numbers, is {t}")
        values = col.to_numpy().astype("float64", copy=False)  # nulls -> NaN
        return convert(values, declared, unit, col_name, name)
    if col.null_count:
        raise FileFormatError(name, f"column {col_name!r} has {col.null_count} nulls")
    convert(np.zeros(0), declared, unit, col_name, name)  # a unit must not be there
    if kind == "bool":
        if not pa.types.is_boolean(t):
            raise FileFormatError(name, f"column {col_name!r} must be booleans, is {t}")
        return col.to_numpy()
    if kind == "int":
        if not pa.types.is_integer(t):
            raise FileFormatError(name, f"column {col_name!r} must be integers, is {t}")
        return checks.int_array(col.to_numpy(), col_name, name)
    # "int_or_str": source ids are integers, or strings for some archives
    if pa.types.is_integer(t):
        return checks.int_array(col.to_numpy(), col_name, name)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.asarray(col.to_pylist(), dtype=object)
    raise FileFormatError(name, f"column {col_name!r} must be integers or strings, is {t}")


def _obs_spec(col_name, name):
    """(kind, storage unit) of a per-measurement column; unknown columns refused."""
    from multilc.lightcurve import _OPTIONAL_OBS

    if col_name in checks.OBS_UNITS and (col_name not in _OPTIONAL_OBS or
                                         _OPTIONAL_OBS[col_name][0] == "float64"):
        return "float", checks.OBS_UNITS[col_name]
    if col_name == "source_id":
        return "int_or_str", None
    if col_name in _OPTIONAL_OBS:
        dtype = _OPTIONAL_OBS[col_name][0]
        return ("bool" if dtype == "bool" else "int"), None
    raise FileFormatError(name, f"unknown column {col_name!r} (a newer multilc, or not "
                                "a multilc file)")


def _check_instrumental_pair(data, name):
    if ("flux_instrumental" in data) != ("flux_instrumental_err" in data):
        raise FileFormatError(name, "flux_instrumental and flux_instrumental_err must "
                                    "come together")


# --------------------------------------------------------------------------- netCDF
_MJD_EPOCH = "days since 1858-11-17 00:00:00"
_CF_STEPS = {"day": 1.0, "days": 1.0, "d": 1.0, "hour": 1 / 24, "hours": 1 / 24,
             "h": 1 / 24, "minute": 1 / 1440, "minutes": 1 / 1440, "min": 1 / 1440,
             "second": 1 / 86400, "seconds": 1 / 86400, "s": 1 / 86400}


def write_netcdf(lc, path, *, overwrite=False):
    """Write *lc* as CF-1.10 netCDF4 (contiguous ragged array).

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
    path : str or path-like
    overwrite : bool
    """
    _check_overwrite(path, overwrite)
    require("h5netcdf", "netcdf", "writing netCDF files")
    _check_before_write(lc.ds, path)
    prov = provenance.file_provenance(lc)
    ds = lc.ds.copy()
    counts = np.bincount(ds["obs_object"].values, minlength=ds.sizes["object"])
    ds["row_size"] = ("object", counts.astype("int64"),
                      {"long_name": "number of measurements of each object",
                       "sample_dimension": "obs"})
    ds = ds.drop_vars("obs_object")
    ds["objectid"].attrs.update({"cf_role": "timeseries_id", "long_name": "target id"})
    ds["event_object"].attrs.update({"instance_dimension": "object",
                                     "long_name": "index of the event's object"})
    ds["obs_band"].attrs.update({"long_name": "index into the band dimension"})
    for name in ("time", "event_time"):
        ds[name].attrs.update({"units": _MJD_EPOCH, "calendar": "standard",
                               "standard_name": "time", "time_scale": TIME_SCALE,
                               "comment": "MJD in the TDB scale at the solar-system "
                                          "barycentre; CF has no TDB calendar, so the "
                                          "time_scale attribute is authoritative"})
    for key in (provenance.META_ATTR, provenance.REPORT_ATTR):
        ds.attrs.pop(key, None)
    written = prov["written"]
    ds.attrs.update({"Conventions": "CF-1.10", "featureType": "timeSeries",
                     "multilc_format_version": FORMAT_VERSION,
                     "multilc_n_rows": np.int64(ds.sizes.get("obs", 0)),
                     "history": f"{written['created']} written by multilc "
                                f"{written['multilc_version']}",
                     _PROVENANCE_KEY: json.dumps(prov, allow_nan=False)})
    # Fletcher-32 checksums on numeric data (HDF5 verifies them on reading);
    # HDF5 cannot chunk a dataset of length zero, so those go without.
    encoding = {}
    for name in ds.variables:
        if ds[name].dtype == object:
            encoding[name] = {"dtype": str}
        elif ds[name].size:
            encoding[name] = {"_FillValue": None, "fletcher32": True}
        else:
            encoding[name] = {"_FillValue": None}
    # netCDF cannot hold Python ints as bool: store the flag as int8 and mark it.
    if "upper_limit" in ds:
        ds["upper_limit"] = ds["upper_limit"].astype("int8")
        ds["upper_limit"].attrs["multilc_dtype"] = "bool"
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)


def read_netcdf(path):
    """Read a file written by `write_netcdf`.

    Raises
    ------
    multilc.errors.FileFormatError
        If the file is not a readable multilc netCDF file.
    """
    require("h5py", "netcdf", "reading netCDF files")
    path = _path_of(path)
    name = _name_of(path)
    with boundary(name, "netCDF"):
        return _read_netcdf(path, name)


_VAR_ATTRS = ("units", "time_scale", "multilc_dtype", "NAME")
_NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable"


def _attr_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind == "S" and value.ndim == 0:
        return value.item().decode("utf-8")
    if isinstance(value, np.generic) and value.dtype.kind == "S":
        return bytes(value).decode("utf-8")
    return value


def _open_netcdf(path, name):
    """Global attributes and ``{variable: (values, attrs)}`` of a netCDF4 file.

    Read with h5py directly: a netCDF4 file is an HDF5 file, and xarray's
    generic machinery costs 10-30 times more for the small files multilc
    writes.  Dimension-only datasets (no values) are skipped; the sizes of
    dimensions are checked by the caller from the variables' lengths.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            present = set(f.attrs.keys())
            attrs = {k: _attr_value(f.attrs[k]) for k in ("multilc_format_version",
                                                           "multilc_n_rows",
                                                           _PROVENANCE_KEY)
                     if k in present}
            variables = {}
            for key, item in f.items():
                if not isinstance(item, h5py.Dataset):
                    continue
                # only the attributes used (each costs an HDF5 call)
                item_attrs = item.attrs
                var_attrs = {k: _attr_value(item_attrs[k]) for k in _VAR_ATTRS
                             if k in item_attrs}
                label = var_attrs.get("NAME")
                if isinstance(label, str) and \
                        label.startswith(_NOT_A_VARIABLE.decode()):
                    continue
                if h5py.check_string_dtype(item.dtype) is not None:
                    values = np.asarray(item.asstr()[()], dtype=object)
                else:
                    values = item[()]
                variables[key] = (values, var_attrs)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # noqa: BLE001 - h5py/HDF5 raise many types on damage
        raise FileFormatError(name, f"not a readable netCDF4/HDF5 file (truncated or "
                                    f"damaged?): {type(exc).__name__}: {exc}") from exc
    return attrs, variables


_OBJECT_VARS = ("row_size", "objectid", "label", "ra", "dec")  # required


def _read_netcdf(path, name):
    attrs, variables = _open_netcdf(path, name)
    if attrs.get("multilc_format_version") != FORMAT_VERSION:
        raise FileFormatError(name, f"not a multilc netCDF file of layout version "
                                    f"{FORMAT_VERSION} (attribute multilc_format_version "
                                    f"is {attrs.get('multilc_format_version')!r})")
    groups = {"object": _OBJECT_VARS, "band": ("band",) + _BAND_VARS,
              "event": _EVENT_VARS, "obs": ("time", "obs_band", "flux", "flux_err")}
    sizes = {}
    for dim, names in groups.items():
        for var in names:
            if var not in variables:
                raise FileFormatError(name, f"the variable {var!r} is missing")
            values = variables[var][0]
            if np.ndim(values) != 1:
                raise FileFormatError(name, f"the variable {var!r} is not one-dimensional")
            if sizes.setdefault(dim, len(values)) != len(values):
                raise FileFormatError(name, f"the variable {var!r} has {len(values)} "
                                            f"values, other {dim} variables "
                                            f"{sizes[dim]}")

    def values(var):
        return variables[var][0]

    def attr_unit(var):
        return variables[var][1].get("units")

    time_units = {}
    for var in ("time", "event_time"):
        scale = variables[var][1].get("time_scale")
        if scale != TIME_SCALE:
            raise FileFormatError(name, f"{var} has time_scale {scale!r}, expected "
                                        f"{TIME_SCALE!r}")
        time_units[var] = attr_unit(var)
    meta = {"format_version": FORMAT_VERSION, "time_scale": TIME_SCALE,
            "units": {k: attr_unit(k) for k in ("ra", "dec", "zero_point", "wavelength",
                                                "event_energy", "event_error_radius",
                                                "event_separation")},
            "objects": {k: values(k) for k in _OBJECT_KEYS if k in variables},
            "bands": {k: values(k) for k in ("band",) + _BAND_VARS},
            "events": {k: values(k) for k in _EVENT_VARS}}
    meta["units"]["event_time"] = "d"
    meta["events"]["event_time"] = _cf_time(values("event_time"), time_units["event_time"],
                                            "event_time", name)
    objects, band_names, band_table, events = checks.tables_from_meta(meta, name)

    row_size = checks.int_array(values("row_size"), "row_size", name)
    n_obs = sizes["obs"]
    if "multilc_n_rows" in attrs and attrs["multilc_n_rows"] != n_obs:
        raise FileFormatError(name, f"the file holds {n_obs} measurements, but was "
                                    f"written with {attrs['multilc_n_rows']!r}")
    if (row_size < 0).any() or int(row_size.sum()) != n_obs:
        raise FileFormatError(name, f"row_size (sum {int(row_size.sum())}) does not "
                                    f"match the {n_obs} measurements")
    data = {"obs_object": np.repeat(np.arange(len(row_size)), row_size).astype("int32")}
    codes = checks.int_array(values("obs_band"), "obs_band", name)
    if len(codes) and (codes.min() < 0 or codes.max() >= len(band_names)):
        raise FileFormatError(name, "obs_band points outside the band table")
    data["obs_band"] = codes.astype("int16")
    data["time"] = _cf_time(values("time"), time_units["time"], "time", name)
    known = set(_OBJECT_VARS) | set(_OBJECT_KEYS) | set(groups["band"]) | \
        set(_EVENT_VARS) | {"time", "obs_band"}
    for var, (vals, var_attrs) in variables.items():
        if var in known:
            continue
        kind, unit = _obs_spec(var, name)
        if np.ndim(vals) != 1 or len(vals) != n_obs:
            raise FileFormatError(name, f"the variable {var!r} does not have one value "
                                        "per measurement")
        if kind == "float":
            data[var] = convert(checks.float_array(vals, var, name), attr_unit(var),
                                unit, var, name)
        elif kind == "bool":
            if var_attrs.get("multilc_dtype") != "bool" or vals.dtype.kind not in \
                    "iub" or np.any((vals != 0) & (vals != 1)):
                raise FileFormatError(name, f"{var} must be a 0/1 flag")
            data[var] = vals.astype(bool)
        elif kind == "int":
            data[var] = checks.int_array(vals, var, name)
        else:
            data[var] = checks.int_array(vals, var, name) if vals.dtype.kind in "iu" \
                else checks.str_array(vals, var, name)
    _check_instrumental_pair(data, name)
    prov = attrs.get(_PROVENANCE_KEY)
    if prov is not None and not isinstance(prov, str):
        raise FileFormatError(name, "the provenance attribute is not text")
    prov = _load_json(prov, "provenance", name) if prov is not None else None
    return _finish(name, data, objects, band_names, band_table, events, prov)


def _decoded(values):
    """Byte strings (netCDF attributes/variables) as str."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        return values.astype(str).astype(object)
    if isinstance(values, np.ndarray) and values.dtype == object and len(values) and \
            isinstance(values[0], bytes):
        return np.asarray([v.decode("utf-8") if isinstance(v, bytes) else v
                           for v in values], dtype=object)
    return values


def _cf_time(values, units, var, name):
    """CF time values (``<unit> since <epoch>``, TDB) as MJD days."""
    values = checks.float_array(values, var, name)
    if units == _MJD_EPOCH:
        return values
    if not isinstance(units, str):
        raise FileFormatError(name, f"{var} has no units attribute")
    parts = units.strip().split(" since ")
    if len(parts) == 1:
        return convert(values, units, u.day, var, name)  # "d"
    step, epoch = parts[0].strip().lower(), parts[1].strip()
    if step not in _CF_STEPS:
        raise FileFormatError(name, f"{var} has units {units!r}: {step!r} is not a CF "
                                    "time unit")
    from astropy.time import Time

    try:
        zero = Time(epoch.replace("T", " ").rstrip("Z"), format="iso", scale=TIME_SCALE)
    except ValueError as exc:
        raise FileFormatError(name, f"{var} has units {units!r}: the epoch is not a "
                                    "date") from exc
    return values * _CF_STEPS[step] + zero.mjd


# --------------------------------------------------------------------------- ECSV
def write_ecsv(lc, path, *, overwrite=False):
    """Write *lc* as an ECSV table with its metadata in the header."""
    from astropy.table import Column, Table

    _check_overwrite(path, overwrite)
    ds = lc.ds
    _check_before_write(ds, path)
    # A Table with unit-carrying Columns (not Quantities): the unit is then
    # only in the ``datatype`` header line, so editing it by hand changes
    # the unit (Quantity columns would repeat it in __serialized_columns__).
    t = Table()
    obs_obj = ds["obs_object"].values
    t["objectid"] = ds["objectid"].values[obs_obj] if len(obs_obj) else np.zeros(0, int)
    t["band"] = np.asarray(lc.band, dtype=str)
    for name in _obs_columns(ds):
        vals = ds[name].values
        unit = ds[name].attrs.get("units")
        if vals.dtype == object:
            vals = vals.astype(str)
        t[name] = Column(vals, unit=unit or None)
    t.meta["multilc"] = _tables_meta(ds, t.colnames)
    t.meta["multilc"][_PROVENANCE_KEY] = provenance.file_provenance(lc)
    t.write(path, format="ascii.ecsv", overwrite=True)


def read_ecsv(path):
    """Read a file written by `write_ecsv`.

    Raises
    ------
    multilc.errors.FileFormatError
        If the file is not a readable multilc ECSV file.
    """
    path = _path_of(path)
    name = _name_of(path)
    with boundary(name, "ECSV"):
        return _read_ecsv(path, name)


def _read_ecsv(path, name):
    from astropy.table import QTable
    from astropy.time import Time

    try:
        t = QTable.read(path, format="ascii.ecsv")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # noqa: BLE001 - the ECSV/YAML parsers raise many types
        raise FileFormatError(name, f"not a readable ECSV file (truncated or damaged?): "
                                    f"{type(exc).__name__}: {exc}") from exc
    meta = t.meta.get("multilc")
    if meta is None:
        raise FileFormatError(name, "ECSV file has no multilc metadata; read a plain "
                                    "table with MultiBandLightCurve.from_table("
                                    "QTable.read(path), ...)")
    meta = provenance.jsonable(meta)  # YAML may give dates etc.
    objects, band_names, band_table, events = checks.tables_from_meta(meta, name)
    units = meta.get("units", {})
    for required in ("objectid", "band", "time", "flux", "flux_err"):
        if required not in t.colnames:
            raise FileFormatError(name, f"the column {required!r} is missing")
    _check_shape(meta, len(t), t.colnames, name)
    data = {"obs_object": checks.codes_for(
                checks.int_array(_unmasked(t["objectid"], "objectid", name), "objectid",
                                 name),
                objects["objectid"], "object id", name),
            "obs_band": checks.codes_for(
                checks.str_array(_unmasked(t["band"], "band", name), "band", name),
                band_names, "band", name).astype("int16")}
    for col_name in t.colnames:
        if col_name in ("objectid", "band"):
            continue
        col = t[col_name]
        kind, unit = _obs_spec(col_name, name)
        if isinstance(col, Time):
            if col_name != "time":
                raise FileFormatError(name, f"column {col_name!r} is a time")
            data[col_name] = np.asarray(col.tdb.mjd, dtype="float64")
            continue
        if kind == "float":
            declared = col.unit if isinstance(col, u.Quantity) else \
                getattr(col, "unit", None) or units.get(col_name)
            raw = col.value if isinstance(col, u.Quantity) else np.asarray(col)
            values = checks.float_array(_filled(col, raw), col_name, name)
            data[col_name] = convert(values, declared, unit, col_name, name)
            continue
        if getattr(col, "unit", None) not in (None, u.dimensionless_unscaled):
            raise FileFormatError(name, f"column {col_name!r} has unit {col.unit} but is "
                                        "a number without unit")
        values = _unmasked(col, col_name, name)
        if kind == "bool":
            if values.dtype.kind != "b":
                raise FileFormatError(name, f"column {col_name!r} must be booleans")
            data[col_name] = values
        elif kind == "int" or values.dtype.kind in "iu":
            data[col_name] = checks.int_array(values, col_name, name)
        else:
            data[col_name] = checks.str_array(values, col_name, name)
    _check_instrumental_pair(data, name)
    return _finish(name, data, objects, band_names, band_table, events,
                   meta.get(_PROVENANCE_KEY))


def _filled(col, raw):
    """Masked float entries (empty ECSV fields) as NaN."""
    mask = getattr(col, "mask", None)
    if mask is None or not np.any(mask):
        return np.asarray(raw)
    out = np.array(raw, dtype="float64")
    out[np.asarray(mask, dtype=bool)] = np.nan
    return out


def _unmasked(col, col_name, name):
    mask = getattr(col, "mask", None)
    if mask is not None and np.any(mask):
        raise FileFormatError(name, f"column {col_name!r} has {int(np.sum(mask))} "
                                    "missing values")
    return np.asarray(col.value if isinstance(col, u.Quantity) else col)


# --------------------------------------------------------------------------- helpers
def _path_of(obj):
    """The file name behind a file object opened by the registry, else *obj*."""
    if not hasattr(obj, "read"):
        return obj
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) else obj


def _name_of(path):
    """A printable name of *path* for messages."""
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path)
    return getattr(path, "name", None) or repr(path)


def _check_overwrite(path, overwrite):
    if not overwrite and isinstance(path, (str, os.PathLike)) and os.path.exists(path):
        raise FileExistsError(f"{os.fspath(path)} exists; pass overwrite=True to replace it")


def sniff(path):
    """The own format a file's first bytes say it is in, or None.

    parquet files start with ``PAR1``, netCDF4 files with the HDF5 signature,
    ECSV files with ``# %ECSV``.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "netcdf"
    if head.lstrip().startswith(b"# %ECSV"):
        return "ecsv"
    return None


for _fmt, _exts in OWN_FORMATS.items():
    register_file_format(_fmt, MultiBandLightCurve, globals()[f"read_{_fmt}"],
                         globals()[f"write_{_fmt}"], extensions=_exts)
