"""multilc's own file formats: parquet (default), netCDF (CF ragged arrays), ECSV.

All three round-trip a `~multilc.MultiBandLightCurve` losslessly: values,
units, the time scale, per-object and per-band metadata, and events.

parquet
    A long table, one row per measurement (``objectid, label, band, time,
    flux, flux_err, ...``) that plain pandas/pyarrow can read; ``label`` and
    ``band`` are dictionary-encoded.  Units are in each field's metadata
    (``unit``); the object, band and event tables and the time scale are JSON
    in the file's key-value metadata under ``multilc``.
netCDF
    CF-1.10 discrete sampling geometry ``timeSeries`` in the *contiguous
    ragged array* representation: ``row_size(object)`` with
    ``sample_dimension = "obs"``; events use the *indexed ragged array*
    representation (``event_object`` with ``instance_dimension = "object"``).
    No MultiIndex on disk.  Needs ``h5netcdf``.
ECSV
    An astropy ECSV table, one row per measurement, with the object, band and
    event tables in the YAML header.
"""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
from astropy import units as u
from astropy.table import QTable

from multilc.io.registry import register_file_format
from multilc.lightcurve import (_BAND_VARS, LightCurveError,
                                MultiBandLightCurve, TIME_FORMAT, TIME_REFERENCE,
                                TIME_SCALE, _assemble)

__all__ = ["write_parquet", "read_parquet", "write_netcdf", "read_netcdf", "write_ecsv",
           "read_ecsv", "FORMAT_VERSION"]

#: Version of the on-disk layout written by this module.
FORMAT_VERSION = "1"
_META_KEY = b"multilc"


# --------------------------------------------------------------------------- metadata
def _json_safe(arr):
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        return [None if np.isnan(x) else float(x) for x in arr]
    if arr.dtype.kind in "iu":
        return [int(x) for x in arr]
    return [str(x) for x in arr]


def _tables_meta(ds):
    """Object, band and event tables of *ds* as JSON-ready dicts."""
    objects = {k: _json_safe(ds[k].values) for k in ("objectid", "label", "ra", "dec")}
    bands = {"band": _json_safe(ds["band"].values)}
    bands.update({k: _json_safe(ds[k].values) for k in _BAND_VARS})
    events = {k: _json_safe(ds[k].values) for k in
              ("event_object", "event_archive", "event_time", "event_id", "event_energy",
               "event_error_radius", "event_separation")}
    return {"format_version": FORMAT_VERSION, "time_scale": TIME_SCALE,
            "time_format": TIME_FORMAT, "time_reference": TIME_REFERENCE,
            "units": {name: ds[name].attrs["units"] for name in ds.data_vars
                      if "units" in ds[name].attrs},
            "objects": objects, "bands": bands, "events": events}


def _floats(values):
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def _restore_tables(meta, source):
    if meta.get("format_version") != FORMAT_VERSION:
        raise LightCurveError(f"{source}: multilc layout version "
                              f"{meta.get('format_version')!r} is not supported "
                              f"(this multilc writes {FORMAT_VERSION!r})")
    if meta.get("time_scale") != TIME_SCALE:
        raise LightCurveError(f"{source}: time scale {meta.get('time_scale')!r} "
                              f"is not {TIME_SCALE!r}")
    o = meta["objects"]
    objects = {"objectid": np.asarray(o["objectid"], dtype="int64"),
               "label": np.asarray(o["label"], dtype=object),
               "ra": _floats(o["ra"]), "dec": _floats(o["dec"])}
    b = meta["bands"]
    band_names = np.asarray(b["band"], dtype=object)
    band_table = {}
    for i, name in enumerate(band_names):
        rec = {k: b[k][i] for k in _BAND_VARS}
        for k in ("zero_point", "wavelength"):
            rec[k] = np.nan if rec[k] is None else rec[k]
        band_table[name] = rec
    e = meta["events"]
    codes = np.asarray(e["event_object"], dtype="int64")
    events = {"objectid": objects["objectid"][codes] if len(codes) else
              np.zeros(0, "int64"),
              "archive": np.asarray(e["event_archive"], dtype=object),
              "time": _floats(e["event_time"]),
              "event_id": np.asarray(e["event_id"], dtype=object),
              "energy": _floats(e["event_energy"]),
              "error_radius": _floats(e["event_error_radius"]),
              "separation": _floats(e["event_separation"])}
    return objects, band_names, band_table, events


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
    obs_obj = ds["obs_object"].values
    obs_band = ds["obs_band"].values.astype("int32")
    labels = ds["label"].values.astype(str)
    label_dict = np.unique(labels) if len(labels) else np.array([], dtype=str)
    label_codes = np.searchsorted(label_dict, labels).astype("int32")
    columns = {
        "objectid": pa.array(ds["objectid"].values[obs_obj] if len(obs_obj) else
                             np.zeros(0, "int64"), pa.int64()),
        "label": pa.DictionaryArray.from_arrays(
            pa.array(label_codes[obs_obj] if len(obs_obj) else np.zeros(0, "int32")),
            pa.array(label_dict, pa.string())),
        "band": pa.DictionaryArray.from_arrays(
            pa.array(obs_band), pa.array(np.asarray(ds["band"].values, dtype=str),
                                         pa.string())),
    }
    for name in ds.data_vars:
        if ds[name].dims != ("obs",) or name in ("obs_object", "obs_band"):
            continue
        values = ds[name].values
        columns[name] = pa.array(values.astype(str) if values.dtype == object else values)
    fields = []
    for name, arr in columns.items():
        unit = ds[name].attrs.get("units") if name in ds else None
        fields.append(pa.field(name, arr.type,
                               metadata={b"unit": unit.encode()} if unit else None))
    meta = _tables_meta(ds)
    schema = pa.schema(fields, metadata={_META_KEY: json.dumps(meta).encode()})
    table = pa.Table.from_arrays(list(columns.values()), schema=schema)
    pq.write_table(table, path, compression=compression)


def read_parquet(path, **kwargs):
    """Read a file written by `write_parquet`.

    Parameters
    ----------
    path : str or path-like
    **kwargs
        Passed to `pyarrow.parquet.read_table` (for example ``filesystem``).
    """
    path = source = _path_of(path)
    table = pq.read_table(path, **kwargs)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise LightCurveError(f"{source}: parquet file has no multilc metadata; read a "
                              "plain table with MultiBandLightCurve.from_pandas")
    meta = json.loads(raw)
    objects, band_names, band_table, events = _restore_tables(meta, source)
    data = {}
    oid = table.column("objectid").to_numpy()
    data["obs_object"] = _codes_of(oid, objects["objectid"])
    band_col = table.column("band").combine_chunks()
    if isinstance(band_col.type, pa.DictionaryType):
        file_names = np.asarray(band_col.dictionary.to_pylist(), dtype=object)
        remap = np.searchsorted(band_names, file_names) if len(file_names) else \
            np.zeros(0, "int64")
        codes = band_col.indices.to_numpy(zero_copy_only=False)
        if len(remap) and np.array_equal(remap, np.arange(len(remap))):
            data["obs_band"] = codes.astype("int16")  # the usual case: same order
        else:
            data["obs_band"] = remap[codes].astype("int16") if len(codes) else \
                np.zeros(0, "int16")
    else:
        data["obs_band"] = np.searchsorted(band_names, np.asarray(
            band_col.to_pylist(), dtype=object)).astype("int16")
    for name in table.column_names:
        if name in ("objectid", "label", "band"):
            continue
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            data[name] = np.asarray(col.to_pylist(), dtype=object)
        else:
            data[name] = col.to_numpy()
    return MultiBandLightCurve(_assemble(data, objects, band_names, band_table, events))


# --------------------------------------------------------------------------- netCDF
_MJD_EPOCH = "days since 1858-11-17 00:00:00"


def write_netcdf(lc, path, *, overwrite=False):
    """Write *lc* as CF-1.10 netCDF4 (contiguous ragged array).

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
    path : str or path-like
    overwrite : bool
    """
    _check_overwrite(path, overwrite)
    _require("h5netcdf", "netCDF files")
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
                               "standard_name": "time",
                               "comment": "MJD in the TDB scale at the solar-system "
                                          "barycentre; CF has no TDB calendar, so the "
                                          "time_scale attribute is authoritative"})
    ds.attrs.update({"Conventions": "CF-1.10", "featureType": "timeSeries",
                     "multilc_format_version": FORMAT_VERSION})
    encoding = {name: {"dtype": str} if ds[name].dtype == object else {"_FillValue": None}
                for name in ds.variables}
    # netCDF cannot hold Python ints as bool: store the flag as int8 and mark it.
    if "upper_limit" in ds:
        ds["upper_limit"] = ds["upper_limit"].astype("int8")
        ds["upper_limit"].attrs["multilc_dtype"] = "bool"
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)


def read_netcdf(path):
    """Read a file written by `write_netcdf`."""
    _require("h5netcdf", "netCDF files")
    path = _path_of(path)
    with xr.open_dataset(path, engine="h5netcdf", decode_times=False,
                         mask_and_scale=False) as opened:
        ds = opened.load()
    if ds.attrs.get("multilc_format_version") != FORMAT_VERSION:
        raise LightCurveError(f"{path}: not a multilc netCDF file of layout version "
                              f"{FORMAT_VERSION}")
    counts = ds["row_size"].values
    ds["obs_object"] = ("obs", np.repeat(np.arange(len(counts)), counts).astype("int32"))
    ds = ds.drop_vars("row_size")
    for name in ("time", "event_time"):
        for key in ("calendar", "standard_name", "comment"):
            ds[name].attrs.pop(key, None)
        ds[name].attrs["units"] = "d"
    for key in ("cf_role", "long_name"):
        ds["objectid"].attrs.pop(key, None)
    ds["event_object"].attrs.clear()
    ds["obs_band"].attrs.clear()
    if "upper_limit" in ds:
        ds["upper_limit"] = ds["upper_limit"].astype(bool)
        ds["upper_limit"].attrs.clear()
    for name in list(ds.variables):
        if ds[name].dtype.kind in "US":
            ds[name] = ds[name].astype(object)
    for key in ("Conventions", "featureType", "multilc_format_version"):
        ds.attrs.pop(key, None)
    ds = ds.assign_coords(band=ds["band"].astype(object))
    return MultiBandLightCurve(ds)


# --------------------------------------------------------------------------- ECSV
def write_ecsv(lc, path, *, overwrite=False):
    """Write *lc* as an ECSV table with its metadata in the header."""
    _check_overwrite(path, overwrite)
    ds = lc.ds
    t = QTable()
    obs_obj = ds["obs_object"].values
    t["objectid"] = ds["objectid"].values[obs_obj] if len(obs_obj) else np.zeros(0, int)
    t["band"] = np.asarray(lc.band, dtype=str)
    for name in ds.data_vars:
        if ds[name].dims != ("obs",) or name in ("obs_object", "obs_band"):
            continue
        vals = ds[name].values
        unit = ds[name].attrs.get("units")
        if vals.dtype == object:
            vals = vals.astype(str)
        t[name] = vals * u.Unit(unit) if unit else vals
    t.meta["multilc"] = _tables_meta(ds)
    t.write(path, format="ascii.ecsv", overwrite=True)


def read_ecsv(path):
    """Read a file written by `write_ecsv`."""
    path = _path_of(path)
    t = QTable.read(path, format="ascii.ecsv")
    meta = t.meta.get("multilc")
    if meta is None:
        raise LightCurveError(f"{path}: ECSV file has no multilc metadata")
    objects, band_names, band_table, events = _restore_tables(meta, path)
    data = {"obs_object": np.searchsorted(objects["objectid"],
                                          np.asarray(t["objectid"])).astype("int32"),
            "obs_band": np.searchsorted(band_names, np.asarray(t["band"], dtype=object)
                                        ).astype("int16")}
    for name in t.colnames:
        if name in ("objectid", "band"):
            continue
        col = t[name]
        vals = col.value if isinstance(col, u.Quantity) else np.asarray(col)
        if name == "source_id" and vals.dtype.kind in "US":
            vals = vals.astype(object)
        data[name] = vals
    return MultiBandLightCurve(_assemble(data, objects, band_names, band_table, events))


# --------------------------------------------------------------------------- helpers
def _codes_of(values, uniques):
    """Positions of *values* in the sorted *uniques* (int32).

    Files are written sorted by object, so the codes are runs: find the run
    starts and repeat, instead of a binary search per row.
    """
    if not len(values):
        return np.zeros(0, "int32")
    starts = np.flatnonzero(np.diff(values)) + 1
    if np.all(values[starts] > values[starts - 1]):
        run_values = values[np.concatenate(([0], starts))]
        lengths = np.diff(np.concatenate(([0], starts, [len(values)])))
        return np.repeat(np.searchsorted(uniques, run_values).astype("int32"), lengths)
    return np.searchsorted(uniques, values).astype("int32")


def _path_of(obj):
    """The file name behind a file object opened by the registry, else *obj*."""
    if not hasattr(obj, "read"):
        return obj
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) else obj


def _check_overwrite(path, overwrite):
    import os

    if not overwrite and isinstance(path, (str, os.PathLike)) and os.path.exists(path):
        raise FileExistsError(f"{os.fspath(path)} exists; pass overwrite=True to replace it")


def _require(module, what):
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} need the optional dependency {module!r}: "
                          f"pip install {module}") from exc


register_file_format("parquet", MultiBandLightCurve, read_parquet, write_parquet,
                     extensions=(".parquet", ".pq"))
register_file_format("netcdf", MultiBandLightCurve, read_netcdf, write_netcdf,
                     extensions=(".nc", ".nc4", ".netcdf"))
register_file_format("ecsv", MultiBandLightCurve, read_ecsv, write_ecsv,
                     extensions=(".ecsv",))
