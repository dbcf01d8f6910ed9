"""Streamed output: a partitioned parquet dataset written batch by batch.

``collect(targets, archives, output="lc.parquet")`` writes each finished
batch, where it ran (a thread, a process, a dask worker), as one part of a
folder laid out as a Hive-partitioned parquet dataset::

    lc.parquet/
        _manifest.json                      the run: archives, number of targets
        _multilc.json                       the parts of the run, in order, and its report
        archive=ztf/part-<batch key>.parquet
        archive=ztf/_part-<batch key>.json  the part's checksum, targets, drops, failures
        archive=icecube/part-<batch key>.parquet
        ...

Each part is an ordinary multilc parquet file (`multilc.io.formats`), so
``pyarrow.dataset``, pandas, dask and polars read the folder as one table
(with an ``archive`` partition column).  The driver holds only the report,
and `collect` returns a `CollectedDataset`: the folder, the report, and
`CollectedDataset.read` to open it with a selection.

``MultiBandLightCurve.read("lc.parquet")`` on such a folder calls
`read_dataset`, which reads only the parts of the archives asked for and,
inside each part, only the rows passing the objectid/band/time filters
(pyarrow filters: row groups whose statistics exclude them are skipped) and
the columns asked for.

The folder is also the run's checkpoint: a rerun with the same ``output=``
verifies and skips the parts already written (`multilc.collect.checkpoint`).
Parts of an earlier run with other targets stay on disk but are not read:
`read_dataset` reads the parts the last run listed in ``_multilc.json``.  A
run removes that index when it starts and writes it when it ends, so while a
run is going (or after it was killed) every verified part on disk is read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["CollectedDataset", "read_dataset", "dataset_parts", "is_dataset",
           "DATASET_FORMAT"]

#: Layout version written in ``_multilc.json``.
DATASET_FORMAT = "multilc-dataset/1"
_INDEX = "_multilc.json"
#: The sample's targets (objects without data) of the last finished run.
_OBJECTS = "_objects.parquet"
#: Parquet columns every light curve needs (the rest can be left out).
REQUIRED_COLUMNS = ("objectid", "label", "band", "time", "flux", "flux_err")


def start_output(folder):
    """Mark *folder* as a run in progress: its index names the last finished run
    only while no other run is writing there."""
    for name in (_INDEX, _OBJECTS):
        try:
            (Path(folder) / name).unlink()
        except FileNotFoundError:
            pass


def finish_output(folder, report, parts, sample, targets=None, meta=None):
    """Write ``_multilc.json``: the run's parts (in batch order) and its report.

    *targets* (a light curve of the sample's objects, no data) is written as
    ``_objects.parquet``, so that reading the dataset keeps every requested
    target, as the in-memory result does.
    """
    from multilc.collect.cache import atomic_write

    folder = Path(folder)
    if targets is not None:
        import tempfile

        from multilc.io.formats import write_parquet

        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".parquet")
        os.close(fd)
        try:
            write_parquet(targets, tmp, overwrite=True)
            os.replace(tmp, folder / _OBJECTS)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    listed = {arch: [os.path.relpath(p, folder) for p in paths]
              for arch, paths in sorted(parts.items())}
    index = {"format": DATASET_FORMAT, "parts": listed, "n_targets": len(sample),
             "report": report.to_dict(), "meta": meta or {}}
    atomic_write(folder / _INDEX, json.dumps(index, indent=1).encode())


def is_dataset(path):
    """True when *path* is a folder written by ``collect(output=...)``."""
    p = Path(path)
    return p.is_dir() and ((p / _INDEX).is_file() or any(p.glob("archive=*/part-*.parquet")))


def dataset_parts(folder, archive=None):
    """The part files of the dataset in *folder* (those of the last run).

    Parameters
    ----------
    folder : str or path
    archive : str or sequence of str, optional
        Only these archives' parts.

    Returns
    -------
    list of `pathlib.Path`
    """
    from multilc.errors import FileFormatError

    folder = Path(folder)
    if not folder.is_dir():
        raise FileFormatError(folder, "not a folder; a collect(output=...) dataset is one")
    index_path = folder / _INDEX
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text())
            listed = index["parts"]
            if index.get("format") != DATASET_FORMAT or not isinstance(listed, dict):
                raise ValueError(f"not a {DATASET_FORMAT} index")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FileFormatError(index_path, f"unreadable dataset index ({exc})") from None
        parts = [(arch, folder / rel) for arch in listed for rel in listed[arch]]
        root = folder.resolve()
        outside = [p for _, p in parts if root not in p.resolve().parents]
        if outside:
            raise FileFormatError(index_path, f"names parts outside the dataset folder: "
                                              f"{[str(p) for p in outside[:3]]}")
    else:  # a run still going, or killed: every part on disk
        parts = sorted((p.parent.name.split("=", 1)[1], p)
                       for p in folder.glob("archive=*/part-*.parquet"))
    if archive is not None:
        wanted = {archive} if isinstance(archive, str) else set(archive)
        parts = [(a, p) for a, p in parts if a in wanted]
    return [p for _, p in parts]


def _time_bounds(time_range):
    """``(lo, hi)`` MJD TDB from a 2-element `~astropy.time.Time` or numbers."""
    from astropy.time import Time

    if isinstance(time_range, Time):
        values = np.asarray(time_range.tdb.mjd, float)
    else:
        values = np.asarray(time_range, float)
    if values.shape != (2,):
        raise ValueError(f"time_range must hold two times (start, end), got {time_range!r}")
    return float(values[0]), float(values[1])


def _row_filter(objectid=None, band=None, time_range=None):
    import pyarrow.compute as pc

    expr = None

    def both(a, b):
        return b if a is None else a & b

    if objectid is not None:
        ids = np.atleast_1d(np.asarray(objectid, dtype="int64")).tolist()
        expr = both(expr, pc.field("objectid").isin(ids))
    if band is not None:
        bands = [band] if isinstance(band, str) else list(band)
        expr = both(expr, pc.field("band").isin(bands))
    if time_range is not None:
        lo, hi = _time_bounds(time_range)
        expr = both(expr, (pc.field("time") >= lo) & (pc.field("time") <= hi))
    return expr


def read_dataset(path, *, archives=None, objectid=None, band=None, time_range=None,
                 columns=None):
    """Open a ``collect(output=...)`` dataset, reading only what is asked for.

    Parameters
    ----------
    path : str or path
        The dataset folder.
    archives : str or sequence of str, optional
        Only these archives' parts are opened.  (Not ``archive=``: with
        ``MultiBandLightCurve.read`` that word means "collect from".)
    objectid : int or sequence of int, optional
    band : str or sequence of str, optional
        Band names (``"ztf:g"``).
    time_range : `~astropy.time.Time` of length 2, or two MJD (TDB) numbers, optional
        Inclusive interval.
    columns : sequence of str, optional
        Measurement columns to read besides those every light curve has
        (``objectid, label, band, time, flux, flux_err``); default all.

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        With the collection report of the run as ``report`` when the dataset
        has one (a plain dict, as written).
    """
    from multilc.errors import FileFormatError
    from multilc.io.formats import read_parquet
    from multilc.lightcurve import MultiBandLightCurve

    files = dataset_parts(path, archives)
    expr = _row_filter(objectid, band, time_range)
    cols = None
    if columns is not None:
        cols = list(dict.fromkeys(list(REQUIRED_COLUMNS) + list(columns)))
    pieces = []
    for part in files:
        kwargs = {}
        if expr is not None:
            kwargs["filters"] = expr
        if cols is not None:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(part).names)
            kwargs["columns"] = [c for c in cols if c in present]
        try:
            pieces.append(read_parquet(part, **kwargs))
        except FileFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the part
            raise FileFormatError(part, f"unreadable dataset part: {type(exc).__name__}: "
                                        f"{exc}") from exc
    objects = Path(path) / _OBJECTS
    if objects.is_file():
        # every requested target, also those without data (written last by
        # finish_output, so present only for a finished run)
        pieces.insert(0, read_parquet(objects))
    lc = MultiBandLightCurve.concat(pieces, duplicates="keep") if pieces else \
        MultiBandLightCurve.empty()
    if objectid is not None or band is not None or time_range is not None:
        # The row filters do not reach the object and event tables of each part.
        select = {}
        if objectid is not None:
            select["objectid"] = objectid
        if band is not None:
            select["band"] = band
        if time_range is not None:
            from astropy.time import Time

            lo, hi = _time_bounds(time_range)
            select["time_range"] = Time([lo, hi], format="mjd", scale="tdb")
        lc = lc.select(**select)
    index = Path(path) / _INDEX
    if index.is_file():
        try:
            saved = json.loads(index.read_text())
        except (OSError, ValueError):  # pragma: no cover - checked in dataset_parts
            saved = {}
        if saved.get("meta"):
            lc.meta = saved["meta"]
        if saved.get("report") is not None:
            lc.report = saved["report"]
    return lc


class CollectedDataset:
    """What ``collect(..., output=folder)`` returns: the folder and the report.

    Attributes
    ----------
    path : `pathlib.Path`
        The dataset folder.
    report : `~multilc.collect.CollectionReport`
        The run's report (failures, drops, requests, batches).
    """

    def __init__(self, path, report):
        self.path = Path(path)
        self.report = report

    @property
    def parts(self):
        """The part files of this run."""
        return dataset_parts(self.path)

    def read(self, **selection):
        """The light curve (or a selection of it); see `read_dataset`."""
        lc = read_dataset(self.path, **selection)
        lc.report = self.report
        return lc

    def to_dask(self, **kwargs):
        """The measurements as a ``dask.dataframe`` (one partition per part)."""
        from multilc.errors import require

        dd = require("dask.dataframe", "dask", "CollectedDataset.to_dask")
        return dd.read_parquet([str(p) for p in self.parts], **kwargs)

    def __fspath__(self):
        return str(self.path)

    def __repr__(self):
        return (f"<CollectedDataset {str(self.path)!r}: {len(self.parts)} parts, "
                f"{len(self.report.failures)} failures>")


def _register():
    from multilc.io.registry import register_file_format
    from multilc.lightcurve import MultiBandLightCurve

    register_file_format("parquet.dataset", MultiBandLightCurve, reader=read_dataset,
                         identify=is_dataset)


_register()
