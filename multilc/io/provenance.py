"""Provenance of a light curve: what made it, and how that is kept in files.

Two things travel with a `~multilc.MultiBandLightCurve`:

``lc.meta``
    A plain dict filled by `multilc.collect.collect`: the archives asked, the
    search radius, the reader options, each archive's data release or service
    URL, and so on.  Kept in ``lc.ds.attrs["multilc_meta"]`` as a JSON string.
``lc.report``
    The `~multilc.collect.engine.CollectionReport` of the run (failures,
    dropped rows per reason, requests, batches).  Kept in
    ``lc.ds.attrs["multilc_report"]`` as a JSON string.

Every file multilc writes stores both, and a ``written`` stamp: the
multilc version and the UTC time of writing.  Reading a file restores
``lc.meta`` and ``lc.report`` as they were (so ``read(write(lc)) == lc``);
`read_provenance` returns all three from a file without reading its data.
`multilc.collect.collect` puts its own ``multilc_version`` and ``created``
(the time of the collection) in ``lc.meta``.

Everything here is plain JSON: nothing read from a file is ever executed or
unpickled, and the report is rebuilt field by field from known names.
"""
import dataclasses
import datetime
import json
import math

__all__ = ["META_ATTR", "REPORT_ATTR", "get_meta", "get_report_dict", "file_provenance",
           "restore", "read_provenance", "report_to_dict", "report_from_dict",
           "jsonable"]

#: Dataset attributes holding the provenance as JSON strings (agreed with the
#: data model: ``lc.meta`` and ``lc.report`` read/write these).
META_ATTR = "multilc_meta"
REPORT_ATTR = "multilc_report"


def _version():
    try:
        from multilc import __version__
    except ImportError:  # pragma: no cover - a broken install
        return "unknown"
    return str(__version__)


def utc_now():
    """The current time as an ISO 8601 UTC string with a ``Z`` (seconds precision)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) \
        .isoformat().replace("+00:00", "Z")


def jsonable(obj):
    """*obj* as plain JSON values (dict, list, str, int, float, bool, None).

    Quantities become strings that `astropy.units.Quantity` parses back
    (``"2.0 arcsec"``); times their ISO form; non-finite floats ``None``; other
    objects their ``str``.  Keys become strings.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    # numpy scalars and arrays, astropy Quantity/Time, without importing them here
    module = type(obj).__module__ or ""
    if module.startswith("astropy.units"):
        return str(obj)
    if module.startswith("astropy.time"):
        return str(obj.isot) if obj.isscalar else [str(x) for x in obj.isot]
    if module.startswith("numpy"):
        if hasattr(obj, "tolist"):
            return jsonable(obj.tolist())
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    return str(obj)


# --------------------------------------------------------------------------- report
def report_to_dict(report):
    """A `CollectionReport` (or None, or a dict) as a plain JSON-ready dict."""
    if report is None:
        return None
    if isinstance(report, dict):
        return jsonable(report)
    to_dict = getattr(report, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if dataclasses.is_dataclass(report):
        return jsonable(dataclasses.asdict(report))
    raise TypeError(f"cannot store a report of type {type(report).__name__}")


def report_from_dict(data):
    """Rebuild a `~multilc.collect.engine.CollectionReport` from `report_to_dict` output.

    Unknown keys are ignored and known ones must have the right JSON type, so
    a report written by another multilc version still reads.  Returns None for
    None.

    Raises
    ------
    ValueError
        If *data* is not a report (a dict of the expected shape).
    """
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"the stored report is a {type(data).__name__}, not an object")
    # late imports: the engine imports the data model, which imports this package
    from multilc.collect.api import Failure
    from multilc.collect.engine import CollectionReport

    from_dict = getattr(CollectionReport, "from_dict", None)
    if callable(from_dict):
        return from_dict(data)
    failures = []
    for item in data.get("failures") or []:
        if not isinstance(item, dict):
            raise ValueError("a stored failure is not an object")
        failures.append(_dataclass_from(Failure, item))
    rest = {k: v for k, v in data.items() if k != "failures"}
    report = _dataclass_from(CollectionReport, rest)
    report.failures = failures
    return report


def _dataclass_from(cls, data):
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data or not field.init:
            continue
        value = data[field.name]
        kind = field.type if isinstance(field.type, str) else \
            getattr(field.type, "__name__", "")
        expect = {"list": list, "dict": dict, "str": str, "bool": bool,
                  "int": int, "float": (int, float)}.get(kind)
        if expect is not None and value is not None and (
                not isinstance(value, expect) or
                (kind in ("int", "float") and isinstance(value, bool))):
            raise ValueError(f"{cls.__name__}.{field.name} is a {type(value).__name__}, "
                             f"expected {kind}")
        kwargs[field.name] = value
    return cls(**kwargs)


# --------------------------------------------------------------------------- lc side
def get_meta(lc):
    """``lc.meta`` as a dict (``{}`` when the light curve has none)."""
    meta = getattr(lc, "meta", None)
    if isinstance(meta, dict):
        return meta
    raw = lc.ds.attrs.get(META_ATTR)
    if raw:
        value = json.loads(raw)
        if isinstance(value, dict):
            return value
    return {}


def get_report_dict(lc):
    """``lc.report`` as a plain dict, or None."""
    report = getattr(lc, "report", None)
    if report is not None:
        return report_to_dict(report)
    raw = lc.ds.attrs.get(REPORT_ATTR)
    if raw:
        value = json.loads(raw)
        if isinstance(value, dict):
            return value
    return None


def file_provenance(lc):
    """The provenance block a file stores.

    ``{"meta": lc.meta, "report": lc.report as a dict or None, "written":
    {"multilc_version": ..., "created": UTC ISO time of writing}}``.  The
    light curve itself is not changed (except that its report is also kept
    in ``lc.ds.attrs``, the agreed place), so ``read(write(lc)) == lc``.
    """
    meta = jsonable(get_meta(lc))
    report = get_report_dict(lc)
    if report is not None and REPORT_ATTR not in lc.ds.attrs:
        lc.ds.attrs[REPORT_ATTR] = _dumps(report)
    return {"meta": meta, "report": report,
            "written": {"multilc_version": _version(), "created": utc_now()}}


def _dumps(value):
    # sorted keys: the same dict gives the same attribute string everywhere
    return json.dumps(value, allow_nan=False, sort_keys=True)


def _set_meta(lc, meta):
    """Store *meta* as ``lc.meta`` and in ``lc.ds.attrs`` (the agreed place)."""
    if meta:
        lc.ds.attrs[META_ATTR] = _dumps(meta)
    attr = getattr(type(lc), "meta", None)
    if isinstance(attr, property) and attr.fset is None:
        return  # the class reads it from ds.attrs
    try:
        lc.meta = dict(meta)
    except AttributeError:  # pragma: no cover - a read-only descriptor
        pass


def check_provenance(block):
    """Validate a provenance block read from a file; returns (meta, report dict).

    Raises
    ------
    ValueError
        If the block is not of the shape `file_provenance` writes.
    """
    if block is None:
        return {}, None
    if not isinstance(block, dict):
        raise ValueError("the provenance block is not an object")
    meta = block.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError("the stored meta is not an object")
    report = block.get("report")
    if report is not None and not isinstance(report, dict):
        raise ValueError("the stored report is not an object")
    return meta, report


def restore(lc, meta, report):
    """Attach *meta* (dict) and *report* (dict or None) to a freshly read *lc*.

    The JSON goes to ``lc.ds.attrs`` (the agreed place); ``lc.meta`` and
    ``lc.report`` are set as attributes unless the class provides read-only
    properties over the attrs.  Returns *lc*.
    """
    if report is not None:
        lc.ds.attrs[REPORT_ATTR] = _dumps(report)
    rebuilt = report_from_dict(report)
    _set_meta(lc, meta)
    attr = getattr(type(lc), "report", None)
    if not (isinstance(attr, property) and attr.fset is None):
        try:
            lc.report = rebuilt
        except AttributeError:  # pragma: no cover - a read-only descriptor
            pass
    return lc


def read_provenance(path):
    """The provenance a multilc file records, without reading its measurements.

    Parameters
    ----------
    path : str or path-like
        A parquet, netCDF or ECSV file written by multilc.

    Returns
    -------
    dict
        ``{"meta": dict, "report": dict or None, "written": {"multilc_version",
        "created"}}`` (``written`` is ``{}`` for files from before it existed).

    Raises
    ------
    multilc.errors.FileFormatError
        If the file is not a multilc file or its provenance is damaged.
    """
    import os

    from multilc.errors import FileFormatError
    from multilc.io.formats import OWN_FORMATS, sniff

    name = os.fspath(path)
    kind = sniff(name)
    if kind is None:
        raise FileFormatError(name, f"not a file in one of the formats multilc writes "
                                    f"({', '.join(OWN_FORMATS)})")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            raw = (pq.read_schema(name).metadata or {}).get(b"multilc")
            block = json.loads(raw)["multilc_provenance"] if raw else None
        elif kind == "netcdf":
            import h5py

            with h5py.File(name, "r") as f:
                raw = f.attrs.get("multilc_provenance")
            block = json.loads(raw) if raw is not None else None
        else:
            from astropy.table import meta as table_meta

            lines = []
            with open(name, encoding="utf-8") as fh:
                for line in fh:
                    if not line.startswith("#"):
                        break
                    lines.append(line[2:].rstrip("\n") if line.startswith("# ")
                                 else line[1:].rstrip("\n"))
            header = table_meta.get_header_from_yaml(lines[1:])  # after "%ECSV 1.0"
            block = jsonable(header.get("meta", {}).get("multilc", {})
                             .get("multilc_provenance"))
        if block is None:
            raise FileFormatError(name, "the file records no multilc provenance")
        meta, report = check_provenance(block)
        written = block.get("written") or {}
        if not isinstance(written, dict):
            raise ValueError("the 'written' stamp is not an object")
    except FileFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged metadata of three formats
        raise FileFormatError(name, f"the provenance cannot be read: "
                                    f"{type(exc).__name__}: {exc}") from exc
    return {"meta": meta, "report": report, "written": written}


# --------------------------------------------------------------------------- collect side
def collection_meta(archives, *, extra=None):
    """The ``lc.meta`` a collection run should carry (for `multilc.collect.collect`).

    Parameters
    ----------
    archives : iterable of `~multilc.collect.api.Archive`
        The configured readers of the run (after their options are set).
    extra : dict, optional
        More entries (for example ``{"n_targets": 30}``).

    Returns
    -------
    dict
        ``multilc_version``; ``created`` (UTC ISO time of the run);
        ``archives`` (names asked); ``radius`` and ``options`` per archive
        (radius as a string such as ``"1.0 arcsec"``); ``services`` per
        archive: each setting that is a service URL or a data release (URLs
        name the release, e.g. ``.../ztf/enhanced/dr24/...``), with any
        credentials in URLs removed.
    """
    from multilc.collect.api import scrub

    meta = {"multilc_version": _version(), "created": utc_now(), "archives": [],
            "radius": {}, "options": {}, "services": {}}
    for archive in archives:
        name = archive.name
        meta["archives"].append(name)
        meta["radius"][name] = str(getattr(archive, "radius", None))
        meta["options"][name] = jsonable(dict(getattr(archive, "options", {}) or {}))
        services = {}
        conf = getattr(archive, "conf", None)
        for key in (conf or ()):
            try:
                value = archive.setting(key)
            except Exception:  # noqa: BLE001 - a setting that cannot be read is left out
                continue
            if isinstance(value, str) and ("://" in value or "release" in key):
                services[key] = scrub(value)
        meta["services"][name] = services
    if extra:
        meta.update(jsonable(extra))
    return meta
