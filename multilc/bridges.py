"""Conversions between `~multilc.MultiBandLightCurve` and other libraries.

* astropy `~astropy.timeseries.TimeSeries`: `to_timeseries` / `from_timeseries`
* lightkurve ``LightCurve`` / ``LightCurveCollection``: `to_lightkurve` /
  `from_lightkurve` (lightkurve is imported only when used)
* nested-pandas ``NestedFrame`` (one row per object, the light curve nested):
  `to_nested` / `from_nested` (extra ``multilc[nested]``)

Why one series per object and band
----------------------------------
A `~astropy.timeseries.TimeSeries` (and lightkurve's ``LightCurve``, a
subclass) is one quantity sampled in time: the tools built on it (Lomb-Scargle
and box-least-squares periodograms, ``aggregate_downsample``, lightkurve's
``fold``/``flatten``/``bin``) treat every row as a sample of the same signal,
and a column has one unit.  A band column in one series would let such a tool
mix ZTF g with WISE W1 without a warning, and TESS count rates (e-/s) cannot
share a column with mJy.  So each (object, band) becomes one series with plain
``time``, ``flux`` and ``flux_err`` columns in the band's own unit, and the
object's and band's metadata in ``meta`` (``meta["multilc"]``), from which the
``from_*`` functions rebuild the light curve exactly.  Events (neutrinos,
gamma-ray triggers) are not time series of a flux and are left out: use
``lc.events``.

The nested-pandas layout is the opposite choice, made for catalogue-scale
work (LSDB): one row per object, every band in one nested table with a
``band`` column, units in ``attrs``.
"""
import json

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.table import QTable
from astropy.time import Time

from multilc.errors import InputError, require

__all__ = ["to_timeseries", "from_timeseries", "to_lightkurve", "from_lightkurve",
           "to_nested", "from_nested", "LIGHTKURVE_BANDS"]

#: lightkurve ``meta["MISSION"]`` -> multilc band of that mission's photometry.
LIGHTKURVE_BANDS = {"TESS": "tess:TESS", "KEPLER": "kepler:Kepler", "K2": "k2:K2"}
#: Per-measurement columns carried over when present (besides time, flux, error).
_EXTRA = ("mag", "mag_err", "upper_limit", "flag", "source_id", "separation", "n_binned")


def _groups(lc, objectid=None, band=None):
    """Yield (objectid, band, row slice) for each (object, band) with data."""
    from multilc.lightcurve import _row_groups

    sub = lc
    if objectid is not None:
        sub = sub.select(objectid=objectid)
    if band is not None:
        sub = sub.select(band=band)
    return sub, _row_groups(sub)


def _series_parts(lc, rows, oid_code, band_code):
    """Columns and meta of one (object, band): plain numpy and dicts."""
    ds = lc.ds
    bname = lc.bands[band_code]
    band_rec = {v: _plain(ds[v].values[band_code]) for v in
                ("archive", "system", "zero_point", "wavelength", "flux_unit",
                 "native_time", "band_notes")}
    if lc.normalized:
        unit = u.dimensionless_unscaled
        fv, fe = ds["flux"].values[rows], ds["flux_err"].values[rows]
    elif _instrumental(band_rec["flux_unit"]):
        # uncalibrated bands live in flux_instrumental (always present with them)
        unit = u.Unit(ds["flux_instrumental"].attrs["units"])
        fv = ds["flux_instrumental"].values[rows]
        fe = ds["flux_instrumental_err"].values[rows]
    else:
        unit = u.Unit(ds["flux"].attrs["units"])
        fv, fe = ds["flux"].values[rows], ds["flux_err"].values[rows]
    cols = {"time": Time(ds["time"].values[rows], format="mjd", scale="tdb"),
            "flux": fv * unit, "flux_err": fe * unit}
    for c in _EXTRA:
        if c in ds:
            vals = ds[c].values[rows]
            unit_c = ds[c].attrs.get("units")
            cols[c] = vals * u.Unit(unit_c) if unit_c else vals
    meta = {"objectid": int(lc.objectids[oid_code]),
            "name": str(ds["name"].values[oid_code]),
            "label": str(ds["label"].values[oid_code]),
            "ra": _plain(ds["ra"].values[oid_code]),
            "dec": _plain(ds["dec"].values[oid_code]),
            "band": bname, "band_meta": band_rec, "normalized": lc.normalized}
    return cols, meta


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value if value is None else str(value)


def _instrumental(unit_string):
    from multilc.lightcurve import _is_instrumental

    return _is_instrumental(unit_string)


# --------------------------------------------------------------------------- TimeSeries
def to_timeseries(lc, objectid=None, band=None):
    """One astropy `~astropy.timeseries.TimeSeries` per object and band.

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
    objectid : int, optional
        Only this object.
    band : str, optional
        Only this band.

    Returns
    -------
    `~astropy.timeseries.TimeSeries` or dict
        With both *objectid* and *band* given: one series.  Otherwise
        ``{(objectid, band): TimeSeries}``.  Each series has ``time`` (MJD,
        TDB), ``flux`` and ``flux_err`` in the band's unit (mJy, or e-/s for
        TESS/Kepler/K2), the optional per-measurement columns present, and
        ``meta["multilc"]`` (object and band metadata) plus ``meta["OBJECT"]``
        (the name, or the objectid when there is none).  See the module
        docstring for why there is no band column.
    """
    from astropy.timeseries import TimeSeries

    sub, groups = _groups(lc, objectid, band)
    out = {}
    for oid_code, band_code, rows in groups:
        cols, meta = _series_parts(sub, rows, oid_code, band_code)
        ts = TimeSeries(time=cols.pop("time"))
        for k, v in cols.items():
            ts[k] = v
        ts.meta["multilc"] = meta
        ts.meta["OBJECT"] = meta["name"] or str(meta["objectid"])
        out[(meta["objectid"], meta["band"])] = ts
    if objectid is not None and band is not None:
        return out[(int(objectid), band)]
    return out


def _pieces_from_series(items, cls, objectid=None, band=None, name=None, default_band=None,
                        flag_column=None):
    """Build light curves from TimeSeries-like tables with multilc meta."""
    pieces = []
    for ts in items:
        meta = dict(ts.meta.get("multilc") or {})
        oid = objectid if objectid is not None else meta.get("objectid")
        bname = band if band is not None else meta.get("band", default_band)
        if oid is None:
            raise InputError("cannot tell which object this series belongs to: pass "
                             "objectid= (it has no meta['multilc']['objectid'])")
        if bname is None:
            raise InputError("cannot tell the band of this series: pass band= (for "
                             "example 'ztf:g')")
        if "flux" not in ts.colnames:
            raise InputError(f"series of object {oid} has no 'flux' column; it has "
                             f"{ts.colnames}")
        flux = ts["flux"]
        if not isinstance(flux, u.Quantity):
            raise u.UnitsError(f"the flux column of object {oid} has no unit")
        if flux.unit.is_equivalent(u.dimensionless_unscaled):
            raise InputError(
                f"object {oid}: the flux is dimensionless (normalized); multilc stores "
                "calibrated flux densities or count rates: convert the un-normalized "
                "light curve")
        err = ts["flux_err"] if "flux_err" in ts.colnames else np.full(len(ts), np.nan) * \
            flux.unit
        time = ts.time if hasattr(ts, "time") else ts["time"]
        keep = np.ones(len(ts), bool)
        if getattr(time, "masked", False):
            keep &= ~np.asarray(time.mask, bool)
        jd = np.asarray(time.jd1, float) + np.asarray(time.jd2, float)
        keep &= np.isfinite(jd)
        if not keep.all():
            import warnings
            warnings.warn(f"object {oid}, {bname}: {int((~keep).sum())} rows without a "
                          "time were left out", stacklevel=3)
        idx = np.flatnonzero(keep)
        kw = {}
        for c in _EXTRA:
            if c in ts.colnames:
                col = ts[c]
                kw[c] = col[idx] if isinstance(col, u.Quantity) else \
                    np.asarray(col)[idx]
        if flag_column and flag_column in ts.colnames and "flag" not in kw:
            kw["flag"] = np.asarray(ts[flag_column]).astype("int64")[idx]
        n = len(idx)
        oid = int(oid)
        obj_meta = {}
        for key in ("label", "name"):
            if meta.get(key):
                obj_meta[key] = {oid: meta[key]}
        if name is not None:
            obj_meta["name"] = {oid: name}
        for key in ("ra", "dec"):
            if meta.get(key) is not None:
                obj_meta[key] = {oid: meta[key] * u.deg}
        band_meta = {bname: {k: (np.nan if v is None else v) for k, v in
                             meta.get("band_meta", {}).items()}} \
            if meta.get("band_meta") else None
        pieces.append(cls.from_arrays(
            np.full(n, oid), np.full(n, bname), time[idx], flux[idx], err[idx],
            band_meta=band_meta, **obj_meta, **kw))
    return pieces


def _as_list(obj):
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, (list, tuple)):
        return list(obj)
    return [obj]


def from_timeseries(series, *, objectid=None, band=None, name=None):
    """Build a light curve from astropy TimeSeries (the inverse of `to_timeseries`).

    Parameters
    ----------
    series : `~astropy.timeseries.TimeSeries`, or a dict or list of them
        Series as written by `to_timeseries` carry their object and band in
        ``meta["multilc"]``.  Any other series needs *objectid* and *band*,
        a ``flux`` column with a unit (a flux density, or e-/s for
        TESS/Kepler/K2) and optionally ``flux_err``.  A table with
        ``objectid`` and ``band`` columns goes through
        `MultiBandLightCurve.from_table`.
    objectid : int, optional
    band : str, optional
    name : str, optional
        Target name.

    Returns
    -------
    `~multilc.MultiBandLightCurve`
    """
    from multilc.lightcurve import MultiBandLightCurve

    items = _as_list(series)
    if not items:
        return MultiBandLightCurve.empty()
    tables = [ts for ts in items if "objectid" in ts.colnames and "band" in ts.colnames]
    rest = [ts for ts in items if not ("objectid" in ts.colnames and "band" in ts.colnames)]
    pieces = [MultiBandLightCurve.from_table(QTable(t)) for t in tables]
    pieces += _pieces_from_series(rest, MultiBandLightCurve, objectid, band, name)
    return MultiBandLightCurve.concat(pieces, duplicates="keep")


# --------------------------------------------------------------------------- lightkurve
def to_lightkurve(lc, objectid=None, band=None):
    """lightkurve light curves, one per object and band.

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
    objectid : int, optional
    band : str, optional

    Returns
    -------
    ``lightkurve.LightCurve`` or ``lightkurve.LightCurveCollection``
        One ``LightCurve`` when both *objectid* and *band* are given, else a
        collection ordered by (objectid, band).  Time is MJD (TDB,
        barycentric), flux in the band's unit (e-/s for TESS/Kepler/K2, mJy
        otherwise), so lightkurve's ``normalize``, ``flatten``, ``fold``,
        ``bin`` and periodograms apply to any band.  ``meta`` has lightkurve's
        keys (``OBJECT``, ``LABEL``, ``MISSION`` for TESS/Kepler/K2,
        ``FILTER``, ``RA``, ``DEC``) and ``meta["multilc"]``, which
        `from_lightkurve` uses to rebuild the light curve exactly.  The
        archive's quality bits stay in ``flag``.
    """
    lk = require("lightkurve", "missions", "to_lightkurve")
    sub, groups = _groups(lc, objectid, band)
    out = []
    missions = {v: k for k, v in LIGHTKURVE_BANDS.items()}
    for oid_code, band_code, rows in groups:
        cols, meta = _series_parts(sub, rows, oid_code, band_code)
        one = lk.LightCurve(time=cols.pop("time"), flux=cols.pop("flux"),
                            flux_err=cols.pop("flux_err"))
        for k, v in cols.items():
            one[k] = v
        one.meta.update({
            "OBJECT": meta["name"] or str(meta["objectid"]),
            "LABEL": meta["name"] or str(meta["objectid"]),
            "FILTER": meta["band"],
            "RA": meta["ra"], "DEC": meta["dec"],
            "multilc": meta})
        mission = missions.get(meta["band"])
        if mission:
            one.meta["MISSION"] = "Kepler" if mission == "KEPLER" else mission
        out.append(one)
    if objectid is not None and band is not None:
        if not out:
            raise InputError(f"no data of object {objectid} in {band}")
        return out[0]
    return lk.LightCurveCollection(out)


def from_lightkurve(obj, *, objectid=None, band=None, name=None):
    """Build a light curve from lightkurve ``LightCurve`` objects.

    Parameters
    ----------
    obj : ``lightkurve.LightCurve``, ``LightCurveCollection`` or list
        Light curves written by `to_lightkurve` rebuild exactly from their
        ``meta["multilc"]``.  Others (for example
        ``lightkurve.search_lightcurve(...).download()``) need *objectid*; the
        band comes from ``meta["MISSION"]`` (TESS, Kepler, K2) unless given.
        Their flux must be a count rate or a flux density, not normalized.
        Rows without a time (NaN or masked) are left out with a warning;
        lightkurve's ``quality`` becomes ``flag``.
    objectid : int, optional
    band : str, optional
        multilc band name (``"tess:TESS"``, ``"ztf:g"``).
    name : str, optional
        Target name (default ``meta["OBJECT"]`` of a lightkurve file).

    Returns
    -------
    `~multilc.MultiBandLightCurve`
    """
    from multilc.lightcurve import MultiBandLightCurve

    items = list(obj) if not hasattr(obj, "colnames") else [obj]
    pieces = []
    for one in items:
        meta = one.meta
        default_band = None
        if not meta.get("multilc"):
            mission = str(meta.get("MISSION", "")).upper()
            default_band = LIGHTKURVE_BANDS.get(mission)
            if band is None and default_band is None:
                raise InputError(f"cannot tell the band of this light curve (MISSION "
                                 f"{meta.get('MISSION')!r}): pass band=")
        nm = name
        if nm is None and not meta.get("multilc"):
            obj_name = meta.get("OBJECT") or meta.get("LABEL")
            nm = str(obj_name) if obj_name else None
        pieces += _pieces_from_series([one], MultiBandLightCurve, objectid, band, nm,
                                      default_band=default_band, flag_column="quality")
    return MultiBandLightCurve.concat(pieces, duplicates="keep")


# --------------------------------------------------------------------------- nested-pandas
_NEST = "lightcurve"
_EVENTS = "events"


def to_nested(lc):
    """A nested-pandas ``NestedFrame``: one row per object, light curve nested.

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`

    Returns
    -------
    ``nested_pandas.NestedFrame``
        Index ``objectid``; base columns ``name``, ``label``, ``ra``, ``dec``
        [deg]; nested column ``lightcurve`` with ``band``, ``time`` (MJD TDB),
        ``flux``, ``flux_err`` [mJy] (``flux_instrumental``,
        ``flux_instrumental_err`` [e-/s] when TESS/Kepler/K2 are present)
        and the optional per-measurement columns; nested column ``events``
        when there are events.  Objects without data have an empty
        (missing) ``lightcurve``.  Units, band metadata and ``lc.meta`` are in
        ``attrs`` (``units``, ``multilc_bands``, ``multilc_meta`` as JSON).
    """
    npd = require("nested_pandas", "nested", "to_nested")
    ds = lc.ds
    base = pd.DataFrame({"name": ds["name"].values.astype(str),
                         "label": ds["label"].values.astype(str),
                         "ra": ds["ra"].values, "dec": ds["dec"].values},
                        index=pd.Index(lc.objectids, name="objectid"))
    flat = lc.to_pandas(layout="long", columns="all")
    units = dict(flat.attrs.get("units", {}))
    flat = flat.drop(columns=["label"]).set_index("objectid")
    flat["band"] = flat["band"].astype(str)
    nf = npd.NestedFrame(base)
    join = getattr(nf, "join_nested", None) or nf.add_nested
    nf = join(flat, _NEST)
    if lc.n_events:
        _, ev = lc.to_pandas(layout="long", events=True)
        units.update({f"event_{k}": v for k, v in ev.attrs["units"].items()})
        ev = ev.drop(columns=["label"]).set_index("objectid")
        join = getattr(nf, "join_nested", None) or nf.add_nested
        nf = join(ev, _EVENTS)
    units.update({"ra": "deg", "dec": "deg"})
    bands = lc.band_info
    band_meta = {str(row["band"]): {k: _plain(row[k].value if isinstance(row[k], u.Quantity)
                                              else row[k])
                                    for k in ("archive", "system", "zero_point",
                                              "wavelength", "flux_unit", "native_time",
                                              "band_notes")} for row in bands}
    nf.attrs["units"] = units
    nf.attrs["multilc_bands"] = json.dumps(band_meta)
    nf.attrs["multilc_meta"] = json.dumps(lc.meta)
    nf.attrs["time_scale"] = "tdb"
    nf.attrs["time_format"] = "mjd"
    return nf


def from_nested(nf, *, lightcurve=_NEST, events=_EVENTS, flux_unit=None):
    """Build a light curve from a nested-pandas ``NestedFrame`` (inverse of `to_nested`).

    Parameters
    ----------
    nf : ``nested_pandas.NestedFrame``
        One row per object (index or column ``objectid``); base columns
        ``name``, ``label``, ``ra``, ``dec`` [deg] are optional.
    lightcurve : str
        Name of the nested light-curve column: ``band``, ``time`` (MJD
        TDB), ``flux``, ``flux_err`` and optional columns.
    events : str
        Name of the nested event column, if any.
    flux_unit : unit, optional
        Unit of ``flux`` when ``nf.attrs["units"]`` does not say.

    Returns
    -------
    `~multilc.MultiBandLightCurve`
    """
    from multilc.lightcurve import (EVENT_COLUMNS, MultiBandLightCurve, make_events)

    require("nested_pandas", "nested", "from_nested")
    frame = nf
    if "objectid" in getattr(frame, "columns", ()):
        frame = frame.set_index("objectid")
    ids = np.asarray(frame.index, dtype="int64")
    units = dict(nf.attrs.get("units", {}))
    per_object = {}
    for col in ("name", "label"):
        if col in frame.columns:
            per_object[col] = {int(i): ("" if pd.isna(v) else str(v))
                               for i, v in zip(ids, frame[col])}
    for col in ("ra", "dec"):
        if col in frame.columns:
            unit = u.Unit(units.get(col, "deg"))
            per_object[col] = {int(i): float(v) * unit for i, v in zip(ids, frame[col])}
    pieces = [MultiBandLightCurve.from_objects(ids, **{
        k: [v[int(i)] for i in ids] if k in ("name", "label") else
        u.Quantity([v[int(i)] for i in ids]) for k, v in per_object.items()})]
    if lightcurve in frame.columns:
        flat = frame[lightcurve].nest.to_flat().reset_index()
        flat = pd.DataFrame({c: flat[c].to_numpy() for c in flat.columns})
        flat = flat[~pd.isna(flat["time"])]
        flat.attrs["units"] = units
        if "flux" not in units and flux_unit is None:
            raise u.UnitsError("the NestedFrame does not say the unit of flux "
                               "(attrs['units']); pass flux_unit=")
        if flux_unit is not None:
            flat.attrs["units"]["flux"] = u.Unit(flux_unit).to_string()
        if "flux_instrumental" in flat.columns:
            instr = ~pd.isna(flat["flux_instrumental"]) & pd.isna(flat["flux"])
            flat.loc[instr, "flux"] = flat.loc[instr, "flux_instrumental"]
            flat.loc[instr, "flux_err"] = flat.loc[instr, "flux_instrumental_err"]
            flat = flat.drop(columns=["flux_instrumental", "flux_instrumental_err"])
        t = QTable()
        t["objectid"] = flat["objectid"].to_numpy().astype("int64")
        t["band"] = flat["band"].astype(str).to_numpy()
        t["time"] = Time(flat["time"].to_numpy(dtype=float), format="mjd", scale="tdb")
        funit = u.Unit(flat.attrs["units"]["flux"])
        band_meta = json.loads(nf.attrs.get("multilc_bands", "{}"))
        fv = flat["flux"].to_numpy(dtype=float)
        fe = flat["flux_err"].to_numpy(dtype=float)
        for c in ("mag", "mag_err", "upper_limit", "flag", "source_id", "separation",
                  "n_binned"):
            if c in flat.columns:
                vals = flat[c].to_numpy()
                if c == "upper_limit":
                    vals = vals.astype(bool)
                elif c in ("flag", "n_binned"):
                    vals = vals.astype("int64")
                unit = units.get(c)
                t[c] = vals.astype(float) * u.Unit(unit) if unit else vals
        from multilc.lightcurve import _band_record_cached, _is_instrumental

        instr_rows = np.array([_is_instrumental(band_meta.get(b, {}).get(
            "flux_unit") or _band_record_cached(b)["flux_unit"]) for b in t["band"]], bool)
        for rows, unit in ((~instr_rows, funit),
                           (instr_rows, u.Unit(units.get("flux_instrumental", "electron / s")))):
            if rows.any():
                sub = t[rows]
                sub["flux"] = fv[rows] * unit
                sub["flux_err"] = fe[rows] * unit
                pieces.append(MultiBandLightCurve.from_arrays(
                    np.asarray(sub["objectid"]), np.asarray(sub["band"]), sub["time"],
                    sub["flux"], sub["flux_err"],
                    band_meta={b: {k: (np.nan if v is None else v) for k, v in m.items()}
                               for b, m in band_meta.items()},
                    **per_object, **{c: sub[c] for c in _EXTRA if c in sub.colnames}))
    if events in frame.columns:
        ev = frame[events].nest.to_flat().reset_index()
        ev = ev[~pd.isna(ev["time"])]
        if len(ev):
            kw = {}
            for c in ("energy", "error_radius", "separation"):
                if c in ev.columns:
                    kw[c] = ev[c].to_numpy(dtype=float) * u.Unit(
                        units.get(f"event_{c}", EVENT_COLUMNS[c][1]))
            pieces.append(MultiBandLightCurve.from_events(make_events(
                ev["objectid"].to_numpy().astype("int64"), ev["archive"].astype(str)
                .to_numpy(), Time(ev["time"].to_numpy(dtype=float), format="mjd",
                                  scale="tdb"),
                event_id=ev["event_id"].astype(str).to_numpy() if "event_id" in ev
                else None, **kw), **per_object))
    out = MultiBandLightCurve.concat(pieces, duplicates="keep")
    meta = nf.attrs.get("multilc_meta")
    if meta:
        out.meta = json.loads(meta)
    return out
