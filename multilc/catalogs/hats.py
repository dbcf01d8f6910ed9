"""Reading HEALPix-partitioned parquet catalogs: HATS (with margin caches) and hive.

Several archives publish their catalogs as parquet files partitioned by
HEALPix pixel (NESTED ordering): IRSA's unWISE and NEOWISE tables (hive
layout ``healpix_k5=<pixel>/`` with a ``_metadata`` file) and the HATS
catalogs of ZTF, Pan-STARRS and Gaia (``Norder=K/Dir=D/Npix=N``).

`HatsCatalog` and `HiveCatalog` offer the same four calls:

``plan(ra, dec, radius)``
    Groups of targets by home partition (`multilc.catalogs.plan`), bounded
    in size, never chained.
``crossmatch(partitions, columns, ra=, dec=, radius=)``
    The rows within *radius* of each target homed in *partitions*, with the
    target index and separation: for each file, the position columns are
    read and matched first (k-d tree, `multilc.catalogs.match`), then the
    other columns only of the row groups holding matches, and only the
    matched rows are kept.  Cones crossing the home partition's boundary
    are completed from the HATS margin cache when ``radius <= margin
    threshold``, else from the neighbouring partitions (read for those
    cones only).  Every (target, row) pair is returned once.
``read(...)``
    Unique rows within *radius* of any of the targets (for readers that
    join further, e.g. Pan-STARRS detections).
``touched(ra, dec, radius)``
    For each cone, the partitions it touches.

Files are opened through pyarrow's native filesystems (local paths, and
``s3://`` through `pyarrow.fs.S3FileSystem`); opens are recorded in `read_log`
at no cost.
Counting bytes needs a Python wrapper around every file (thousands of
Python-level ``read`` calls on a bulk run): it is installed only while
``read_log.count_bytes`` is True (tests and benchmarks that report bytes).

HATS layout followed (``hats`` package, ``hats/io/paths.py`` and
``hats/catalog/dataset/{table,collection}_properties.py``): a *collection*
directory holds ``collection.properties`` whose ``hats_primary_table_url``
names the catalog sub-directory and ``default_margin`` (or the first of
``all_margins``) the margin catalog; a catalog directory holds
``hats.properties`` (``hats_col_ra``, ``hats_col_dec``, ``hats_npix_suffix``,
``hats_col_healpix``; for a margin ``hats_margin_threshold`` [arcsec]),
``partition_info.csv`` (``Norder,Npix``) and the leaves
``dataset/Norder=K/Dir=D/Npix=N<suffix>`` with ``D = (N // 10000) * 10000``.
A margin catalog's leaf for partition P holds the rows of P's neighbours
within the threshold of P (hats-import writes leaves only where there are
such rows).

This module imports nothing from multilc.
"""
from __future__ import annotations

import collections
import os
import re
import threading

import numpy as np

from multilc.catalogs.match import cone_pairs
from multilc.catalogs.plan import (HEALPIX29_ORDER, Tiling, cone_partitions, home_partitions,
                                   plan_groups, radius_deg)

__all__ = ["HatsCatalog", "HiveCatalog", "open_filesystem", "ReadLog", "read_log",
           "partition_of_path", "hats_leaf_path", "crossmatch"]

_HIVE_PIXEL = re.compile(r"healpix_k(\d+)=(\d+)")
_HATS_PIXEL = re.compile(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)")


# --------------------------------------------------------------------------- read log
class ReadLog:
    """Thread-safe record of the catalog files opened (and bytes, on request).

    The log is process-wide (`read_log`); call `clear` before the run you
    measure.  Set ``count_bytes = True`` *before* the catalogs are opened to
    also count bytes (this wraps every file in Python and slows reading).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.count_bytes = False
        self.clear()

    def clear(self):
        """Forget everything recorded so far."""
        with self._lock:
            self.opens = []               # paths, in opening order
            self.bytes_by_path = collections.Counter()

    def _opened(self, path):
        with self._lock:
            self.opens.append(str(path))

    def _read(self, path, nbytes):
        with self._lock:
            self.bytes_by_path[path] += int(nbytes)

    @property
    def bytes_read(self):
        """Total bytes read through byte-counting filesystems."""
        with self._lock:
            return int(sum(self.bytes_by_path.values()))

    def data_bytes_read(self):
        """Bytes read from partition (leaf) files only (needs ``count_bytes``)."""
        with self._lock:
            return int(sum(n for p, n in self.bytes_by_path.items()
                           if partition_of_path(p) is not None))

    def partition_opens(self):
        """`collections.Counter` of data-file opens per partition.

        Keys are ``(dataset_root, order, pixel)``; metadata files are not
        counted.
        """
        with self._lock:
            opens = list(self.opens)
        counts = collections.Counter()
        for path in opens:
            part = partition_of_path(path)
            if part is not None:
                counts[part] += 1
        return counts


#: The process-wide `ReadLog`.
read_log = ReadLog()


def partition_of_path(path):
    """``(dataset_root, order, pixel)`` of a partition file path, else None.

    Understands the hive layout (``.../healpix_k5=1234/part0.parquet``; the
    deepest ``healpix_kN=`` level wins, as NEOWISE nests ``healpix_k0`` above
    ``healpix_k5``) and the HATS layout (``.../Norder=5/Dir=0/Npix=12.parquet``).
    """
    path = str(path).replace("\\", "/")
    hats = _HATS_PIXEL.search(path)
    if hats:
        return path[:hats.start()].rstrip("/"), int(hats.group(1)), int(hats.group(2))
    hive = list(_HIVE_PIXEL.finditer(path))
    if hive:
        return path[:hive[0].start()].rstrip("/"), int(hive[-1].group(1)), int(hive[-1].group(2))
    return None


# --------------------------------------------------------------------------- filesystem
class _CountingFile:
    """A file object that reports the bytes read through it."""

    def __init__(self, raw, path, log):
        self._raw = raw
        self._path = path
        self._log = log

    def read(self, nbytes=-1):
        data = self._raw.read(nbytes)
        self._log._read(self._path, len(data))
        return data

    def __getattr__(self, name):
        return getattr(self._raw, name)


def _counting_handler_class():
    from pyarrow import PythonFile
    from pyarrow.fs import FSSpecHandler

    class CountingHandler(FSSpecHandler):
        """fsspec handler whose input files count the bytes read."""

        def __init__(self, fs, log, open_kwargs):
            super().__init__(fs)
            self._log = log
            self._open_kwargs = open_kwargs

        def _open(self, path):
            raw = self.fs.open(path, mode="rb", **self._open_kwargs)
            return PythonFile(_CountingFile(raw, path, self._log), mode="r")

        def open_input_file(self, path):
            return self._open(path)

        def open_input_stream(self, path):
            return self._open(path)

    return CountingHandler


def open_filesystem(url, *, endpoint_url=None, anonymous=True, region=None, log=None):
    """A pyarrow filesystem for *url* and the path inside it.

    Local paths and S3 use pyarrow's native filesystems; HTTP(S) goes through
    fsspec (aiohttp).  When ``log.count_bytes`` is
    True every file is wrapped to count bytes (slow; for measurements).

    Parameters
    ----------
    url : str
        ``s3://bucket/key``, ``http(s)://...`` or a local path (``file://``
        accepted).
    endpoint_url : str, optional
        S3 endpoint (e.g. ``http://127.0.0.1:5000`` for a local stand-in).
    anonymous : bool
        Unsigned S3 requests (public buckets such as IRSA's).
    region : str, optional
        AWS region of the bucket (IRSA's buckets are in ``us-west-2``).
    log : `ReadLog`, optional
        Default `read_log`.

    Returns
    -------
    filesystem : `pyarrow.fs.FileSystem`
    path : str
        *url* without its scheme, as the filesystem expects it.
    """
    from pyarrow.fs import FSSpecHandler, LocalFileSystem, PyFileSystem

    log = read_log if log is None else log
    url = str(url)
    if url.startswith("s3://"):
        # pyarrow's own S3 client: no s3fs/aiobotocore (whose botocore pins
        # made pip resolves take many minutes), and pyarrow asks for exactly
        # the byte ranges it needs (footer, then column chunks).
        from pyarrow.fs import S3FileSystem

        kwargs = {"anonymous": anonymous}
        if region:
            kwargs["region"] = region
        if endpoint_url:
            scheme, _, host = str(endpoint_url).partition("://")
            kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
        native = S3FileSystem(**kwargs)
        path = url[len("s3://"):].rstrip("/")
        if not log.count_bytes:
            return native, path
        from fsspec.implementations.arrow import ArrowFSWrapper

        fs = ArrowFSWrapper(native)
        open_kwargs = {}
    elif url.startswith(("http://", "https://")):
        import fsspec

        fs = fsspec.filesystem("https" if url.startswith("https") else "http")
        open_kwargs = {}
        path = url.rstrip("/")
    else:
        if url.startswith("file://"):
            url = url[len("file://"):]
        path = os.path.abspath(os.path.expanduser(url)).replace("\\", "/")
        if not log.count_bytes:
            return LocalFileSystem(), path
        from fsspec.implementations.local import LocalFileSystem as FsspecLocal

        fs = FsspecLocal()
        open_kwargs = {}
    if log.count_bytes:
        return PyFileSystem(_counting_handler_class()(fs, log, open_kwargs)), path
    return PyFileSystem(FSSpecHandler(fs)), path


# --------------------------------------------------------------------------- helpers
def hats_leaf_path(catalog_dir, order, pixel, suffix=".parquet"):
    """``<catalog_dir>/dataset/Norder=K/Dir=D/Npix=N<suffix>`` (HATS layout)."""
    directory = (int(pixel) // 10_000) * 10_000
    return (f"{catalog_dir}/dataset/Norder={int(order)}/Dir={directory}/"
            f"Npix={int(pixel)}{suffix}")


def _parse_properties(text):
    """Key/value pairs of a Java-style properties file (``key=value`` lines)."""
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            props[match.group(1)] = match.group(2).strip()
        else:
            props[line] = ""
    return props


def _read_columns(pf, row_groups, names):
    """Read *names* (``a`` or nested ``a.b``) of *row_groups* as flat columns."""
    import pyarrow as pa

    if not names:
        return None
    table = pf.read_row_groups(row_groups, columns=list(names), use_threads=False)
    out = {}
    for name in names:
        top, _, sub = name.partition(".")
        col = table[top]
        if sub:
            col = pa.chunked_array([chunk.field(sub) for chunk in col.chunks],
                                   type=col.type.field(sub).type)
        out[name] = col
    return pa.table(out)


def _rg_ranges(md, column):
    """``(min, max)`` statistics of *column* for each row group, or None."""
    try:
        idx = md.schema.to_arrow_schema().get_field_index(column)
    except Exception:  # noqa: BLE001 - no statistics then
        return None
    if idx < 0:
        return None
    lo, hi = [], []
    for i in range(md.num_row_groups):
        col = md.row_group(i).column(idx)
        st = col.statistics
        if st is None or not st.has_min_max:
            return None
        lo.append(st.min)
        hi.append(st.max)
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


class _Task:
    """One file to read for some of a batch's targets."""

    __slots__ = ("path", "targets", "metadata")

    def __init__(self, path, targets, metadata=None):
        self.path = path
        self.targets = targets
        self.metadata = metadata


# --------------------------------------------------------------------------- catalogs
class _Catalog:
    """Common parts of the two catalog kinds."""

    kind = None

    def __init__(self, url, *, ra_column, dec_column, endpoint_url=None, anonymous=True,
                 region=None, log=None):
        self.url = str(url).rstrip("/")
        self.ra_column = ra_column
        self.dec_column = dec_column
        self.endpoint_url = endpoint_url or None
        self.anonymous = anonymous
        self.region = region or None
        self.log = read_log if log is None else log
        self._lock = threading.Lock()
        self._fs = None
        self._root = None

    @property
    def local(self):
        """True for a catalog on a local file system (not ``s3://`` or HTTP)."""
        return not self.url.startswith(("s3://", "http://", "https://"))

    def __getstate__(self):  # picklable for process executors: drop open handles
        state = self.__dict__.copy()
        state.update(_lock=None, _fs=None, _root=None)
        for key in list(state):
            if key.startswith("_cache"):
                state[key] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def filesystem(self):
        """``(pyarrow filesystem, root path)``, opened on first use."""
        if self._fs is None:
            self._fs, self._root = open_filesystem(
                self.url, endpoint_url=self.endpoint_url, anonymous=self.anonymous,
                region=self.region, log=self.log)
        return self._fs, self._root

    # ---- to be provided
    def tiling(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def margin_threshold_deg(self):
        """Margin threshold [deg] of the margin cache, None without one."""
        return None

    def _files(self, key, margin=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def _names(self):
        return self.ra_column, self.dec_column

    # ---- planning
    def touched(self, ra, dec, radius):
        """For each cone, the ``(order, pixel)`` partitions it touches (sorted)."""
        tiling = self.tiling()
        t, p = cone_partitions(ra, dec, radius, tiling)
        keys = tiling.key(p)
        out = [[] for _ in range(len(np.atleast_1d(ra)))]
        for ti, (o, pix) in zip(t.tolist(), keys.tolist()):
            out[ti].append((int(o), int(pix)))
        return out

    def plan(self, ra, dec, radius, *, max_targets=None, min_partitions=1):
        """`~multilc.catalogs.plan.plan_groups` against this catalog's tiling."""
        from multilc.catalogs.plan import MAX_TARGETS

        return plan_groups(ra, dec, radius, self.tiling(),
                           max_targets=max_targets or MAX_TARGETS,
                           min_partitions=min_partitions)

    def _tasks(self, partitions, ra, dec, radius, margins=True):
        """The files to read for the targets homed in *partitions*.

        Returns a list of `_Task` and the indices of the targets handled.
        """
        tiling = self.tiling()
        rdeg = radius_deg(radius)
        n = len(ra)
        home = home_partitions(ra, dec, tiling) if n else np.zeros(0, "int64")
        t_all, p_all = cone_partitions(ra, dec, radius, tiling)
        wanted = {tuple(int(x) for x in k) for k in partitions}
        numbers = [self._partition_number(k) for k in sorted(wanted)]
        numbers = np.asarray([x for x in numbers if x is not None], "int64")
        # Targets whose centre is in no partition: homed in the first touched one.
        lost = np.flatnonzero(home < 0)
        if len(lost):
            in_lost = np.isin(t_all, lost)
            tl, pl = t_all[in_lost], p_all[in_lost]
            first = np.unique(tl, return_index=True)[1]
            home = home.copy()
            home[tl[first]] = pl[first]
        homed = np.isin(home, numbers) & (home >= 0)
        threshold = self.margin_threshold_deg()
        use_margin = margins and threshold is not None and rdeg <= threshold
        by_file = collections.OrderedDict()

        def add(path, targets, md=None):
            if path in by_file:
                by_file[path].targets.append(targets)
            else:
                by_file[path] = _Task(path, [targets], md)

        # margin mode: a target with its centre in home partition P reads P and
        # the margin of P; otherwise it reads every partition its cone touches.
        margin_mode = np.zeros(n, bool)
        if use_margin:
            centre = home_partitions(ra, dec, tiling) if n else home
            margin_mode = homed & (centre >= 0)
        for pnum in numbers.tolist():
            key = tuple(int(x) for x in tiling.key(pnum))
            primary = np.flatnonzero(homed & margin_mode & (home == pnum))
            if len(primary):
                for path, md in self._files(key):
                    add(path, primary, md)
                for path, md in self._files(key, margin=True):
                    add(path, primary, md)
        other = homed & ~margin_mode
        if other.any():
            sel = other[t_all]
            for pnum in np.unique(p_all[sel]):
                targets = t_all[sel & (p_all == pnum)]
                key = tuple(int(x) for x in tiling.key(pnum))
                for path, md in self._files(key):
                    add(path, targets, md)
        tasks = []
        for task in by_file.values():
            task.targets = np.unique(np.concatenate(task.targets))
            tasks.append(task)
        return tasks, np.flatnonzero(homed)

    def _partition_number(self, key):
        tiling = self.tiling()
        o, p = int(key[0]), int(key[1])
        if tiling.keys is None:
            return p if o == tiling.fixed_order else None
        start = p << (2 * (HEALPIX29_ORDER - o))
        i = int(tiling.locate29(np.array([start]))[0])
        if i < 0 or tuple(int(x) for x in tiling.keys[i]) != (o, p):
            return None
        return i

    # ---- reading
    def _open_parquet(self, path, metadata=None):
        import pyarrow.parquet as pq

        fs, _ = self.filesystem
        self.log._opened(path)
        return pq.ParquetFile(fs.open_input_file(path), metadata=metadata,
                              pre_buffer=True)

    def _prune_row_groups(self, pf, ra, dec, rdeg):
        """Row groups whose position statistics may hold rows near a target."""
        md = pf.metadata
        nrg = md.num_row_groups
        if nrg <= 1:
            return list(range(nrg))
        ra_c, dec_c = self._names()
        dec_rng = _rg_ranges(md, dec_c)
        if dec_rng is None:
            return list(range(nrg))
        lo, hi = dec_rng
        dec = np.sort(np.asarray(dec, float))
        # any target with dec in [lo - r, hi + r]
        a = np.searchsorted(dec, lo - rdeg, side="left")
        b = np.searchsorted(dec, hi + rdeg, side="right")
        keep = b > a
        ra_rng = _rg_ranges(md, ra_c)
        if ra_rng is not None and keep.any():
            rlo, rhi = ra_rng
            cosd = np.cos(np.deg2rad(np.clip(np.maximum(np.abs(lo), np.abs(hi)) + rdeg,
                                             0, 89.999)))
            half = np.minimum(180.0, rdeg / np.maximum(cosd, 1e-12))
            ra_s = np.sort(np.mod(np.asarray(ra, float), 360.0))
            for i in np.flatnonzero(keep):
                if half[i] >= 180 or rlo[i] - half[i] < 0 or rhi[i] + half[i] > 360:
                    continue  # wraps: keep
                a = np.searchsorted(ra_s, rlo[i] - half[i], side="left")
                b = np.searchsorted(ra_s, rhi[i] + half[i], side="right")
                keep[i] = b > a
        return np.flatnonzero(keep).tolist()

    def _match_file(self, task, columns, ra, dec, rdeg, filter=None):
        """Matched rows of one file: (table of *columns*, target idx, sep [deg])."""
        import pyarrow as pa

        ra_c, dec_c = self._names()
        pf = self._open_parquet(task.path, task.metadata)
        t_ra, t_dec = ra[task.targets], dec[task.targets]
        rgs = self._prune_row_groups(pf, t_ra, t_dec, rdeg)
        if not rgs:
            return None
        pos = pf.read_row_groups(rgs, columns=[ra_c, dec_c], use_threads=False)
        r = pos[ra_c].to_numpy()
        d = pos[dec_c].to_numpy()
        ti, ri, sep = cone_pairs(t_ra, t_dec, r, d, rdeg)
        if not len(ti):
            return None
        rows, inverse = np.unique(ri, return_inverse=True)
        # Read the other columns only of the row groups holding matched rows.
        sizes = np.array([pf.metadata.row_group(g).num_rows for g in rgs], "int64")
        offs = np.concatenate([[0], np.cumsum(sizes)])
        which = np.searchsorted(offs, rows, side="right") - 1
        needed = np.unique(which)
        sub_offs = np.concatenate([[0], np.cumsum(sizes[needed])])
        pos_in_needed = np.searchsorted(needed, which)
        local = rows - offs[which] + sub_offs[pos_in_needed]
        others = [c for c in columns if c not in (ra_c, dec_c)]
        rest = _read_columns(pf, [rgs[i] for i in needed], others)
        take = pa.array(local, pa.int64())
        cols = {}
        for c in columns:
            if c == ra_c or c == dec_c:
                cols[c] = pos[c].take(pa.array(rows, pa.int64()))
            else:
                cols[c] = rest[c].take(take)
        table = pa.table(cols)
        if filter is not None:
            mask = filter(table)
            keep_rows = np.flatnonzero(mask)
            remap = np.full(len(rows), -1, "int64")
            remap[keep_rows] = np.arange(len(keep_rows))
            table = table.take(pa.array(keep_rows, pa.int64()))
            new = remap[inverse]
            ok = new >= 0
            return table, task.targets[ti[ok]], new[ok], sep[ok]
        return table, task.targets[ti], inverse, sep

    def crossmatch(self, partitions, columns, *, ra, dec, radius, filter=None):
        """Rows within *radius* of the targets homed in *partitions*.

        Parameters
        ----------
        partitions : list of (order, pixel)
            The batch's home partitions (`PartitionGroup.partitions`).
        columns : list of str
            Columns to return (nested sub-columns as ``"lightcurve.hmjd"``,
            returned flat under that name); the position columns are added.
        ra, dec : array-like of float
            The batch's targets [deg].
        radius : `~astropy.units.Quantity`
        filter : `pyarrow.compute.Expression`, optional
            Extra row condition on the catalog columns (evaluated on the
            matched rows only).

        Returns
        -------
        `pyarrow.Table`
            One row per (target, catalog row) pair, sorted by target then
            separation, with ``_target`` (index into *ra*) and
            ``_separation_arcsec`` appended.
        """
        import pyarrow as pa

        ra = np.atleast_1d(np.asarray(ra, dtype=float))
        dec = np.atleast_1d(np.asarray(dec, dtype=float))
        rdeg = radius_deg(radius)
        names = self._columns(columns)
        tasks, _ = self._tasks(partitions, ra, dec, radius)
        flt = self._filter_fn(filter)
        pieces, targets, seps = [], [], []
        for task in tasks:
            got = self._match_file(task, names, ra, dec, rdeg, flt)
            if got is None:
                continue
            table, tgt, inverse, sep = got
            pieces.append(table.take(pa.array(inverse, pa.int64())))
            targets.append(tgt)
            seps.append(sep)
        if not pieces:
            return self._empty(names)
        table = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
        tgt = np.concatenate(targets)
        sep = np.concatenate(seps) * 3600.0
        order = np.lexsort((sep, tgt))
        table = table.take(pa.array(order, pa.int64()))
        table = table.append_column("_target", pa.array(tgt[order], pa.int64()))
        table = table.append_column("_separation_arcsec", pa.array(sep[order], pa.float64()))
        release_unused_memory()
        return table

    def read(self, partitions, columns, *, ra, dec, radius, filter=None):
        """Unique rows within *radius* of the targets homed in *partitions*.

        Unlike `crossmatch`, each catalog row comes back once, without
        target columns; cones crossing a boundary are completed from the
        neighbouring partitions (never from the margin cache, whose rows may
        also be read from their own partition).
        """
        import pyarrow as pa

        ra = np.atleast_1d(np.asarray(ra, dtype=float))
        dec = np.atleast_1d(np.asarray(dec, dtype=float))
        rdeg = radius_deg(radius)
        names = self._columns(columns)
        tasks, _ = self._tasks(partitions, ra, dec, radius, margins=False)
        flt = self._filter_fn(filter)
        pieces = []
        for task in tasks:
            got = self._match_file(task, names, ra, dec, rdeg, flt)
            if got is not None:
                pieces.append(got[0])
        if not pieces:
            return self._empty(names, targets=False)
        return pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]

    def _columns(self, columns):
        ra_c, dec_c = self._names()
        names = list(dict.fromkeys(columns))
        for col in (ra_c, dec_c):
            if col not in names:
                names.append(col)
        return names

    def _filter_fn(self, filter):
        """A pyarrow expression -> callable returning a row mask of a table.

        The expression is evaluated on the matched rows, so the columns it
        refers to must be among the columns read.
        """
        if filter is None:
            return None
        return lambda table: _evaluate(filter, table)

    def _empty(self, names, targets=True):
        import pyarrow as pa

        schema = self.schema()
        fields = []
        for name in names:
            top, _, sub = name.partition(".")
            typ = schema.field(top).type
            if sub:
                typ = typ.field(sub).type
            fields.append(pa.field(name, typ))
        if targets:
            fields += [pa.field("_target", pa.int64()),
                       pa.field("_separation_arcsec", pa.float64())]
        return pa.schema(fields).empty_table()


def _evaluate(expr, table):
    """Evaluate a boolean pyarrow expression on *table* -> numpy bool mask."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    marked = table.append_column("__row", pa.array(np.arange(table.num_rows), pa.int64()))
    kept = ds.dataset(marked).to_table(filter=expr, columns=["__row"])["__row"].to_numpy()
    mask = np.zeros(table.num_rows, bool)
    mask[kept] = True
    return mask


def release_unused_memory():
    """Give memory that allocators hold for reuse back to the system.

    A batch decodes whole row groups and keeps a few matched rows.  pyarrow's
    default pool (mimalloc or jemalloc) keeps the freed pages for later
    allocations, and so do glibc's per-thread malloc arenas for the numpy
    temporaries of each worker thread.  Without this a 5,000-target ZTF
    collection peaked at 372 MiB instead of 231 MiB, and a 500,000-target one
    held ~200 MiB of freed memory while joining its batches
    (bench/bench_bulk_scale.py).  ``malloc_trim`` is what dask.distributed's
    workers call for the same reason; it is used only where glibc provides it.
    Called after each bulk batch's read and parse; cheap when nothing is held.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_trim = []


def _malloc_trim():
    """glibc's ``malloc_trim``, or None elsewhere (looked up once)."""
    if not _trim:
        fn = None
        try:
            import ctypes
            import sys

            if sys.platform.startswith("linux"):
                fn = ctypes.CDLL("libc.so.6").malloc_trim
                fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            fn = None
        _trim.append(fn)
    return _trim[0]


# HiveCatalog discovery results shared within the process (see _discovered)
_discovered = {}
_discovered_lock = threading.Lock()
_MAX_DISCOVERED = 32


class HiveCatalog(_Catalog):
    """A hive-partitioned HEALPix parquet catalog with a ``_metadata`` file.

    Parameters
    ----------
    url : str
        Dataset root (the directory holding ``_metadata``), ``s3://`` or local.
    order : int
        HEALPix order of the partitioning (NESTED).
    partition_column : str, optional
        Hive partition column (default ``healpix_k<order>``).
    ra_column, dec_column : str
        Position columns [deg].
    endpoint_url, anonymous, region :
        See `open_filesystem`.
    """

    kind = "hive"

    def __init__(self, url, *, order, partition_column=None, ra_column="ra",
                 dec_column="dec", **kwargs):
        super().__init__(url, ra_column=ra_column, dec_column=dec_column, **kwargs)
        self.order = int(order)
        self.partition_column = partition_column or f"healpix_k{self.order}"
        self._cache_dataset = None
        self._cache_index = None

    def tiling(self):
        return Tiling(self.order)

    def dataset(self):
        """The `pyarrow.dataset.Dataset` built from ``_metadata`` (cached)."""
        return self._discovered()[0]

    def _discovered(self):
        """``(dataset, {pixel: [(path, metadata)]})``, shared within the process.

        Reading ``_metadata`` and indexing its fragments by pixel took half of
        a NEOWISE batch's CPU time on every run (bench/bench_headline.py,
        py-spy); a catalog is a fixed release, so the result is kept for the
        process, keyed by URL -- and, for local catalogs, by the size and
        modification time of ``_metadata``, so a rewritten catalog is read anew.
        """
        with self._lock:
            if self._cache_dataset is None:
                key = self._discovery_key()
                with _discovered_lock:
                    found = _discovered.get(key)
                if found is None:
                    found = self._discover()
                    with _discovered_lock:
                        if len(_discovered) >= _MAX_DISCOVERED:
                            _discovered.clear()
                        _discovered[key] = found
                self._cache_dataset, self._cache_index = found
            return self._cache_dataset, self._cache_index

    def _discovery_key(self):
        import pyarrow.fs as pafs

        fs, root = self.filesystem
        token = None
        if isinstance(fs, pafs.LocalFileSystem):
            info = fs.get_file_info(root + "/_metadata")
            token = (info.size, info.mtime_ns)
        return (self.url, self.endpoint_url, self.order, self.partition_column, token)

    def _discover(self):
        import pyarrow.dataset as ds

        fs, root = self.filesystem
        dataset = ds.parquet_dataset(root + "/_metadata", partitioning="hive", filesystem=fs)
        index = collections.defaultdict(list)
        for fragment in dataset.get_fragments():
            keys = ds.get_partition_keys(fragment.partition_expression)
            if self.partition_column in keys:
                pixel = int(keys[self.partition_column])
            else:  # no hive key: fall back to the file path
                part = partition_of_path(fragment.path)
                if part is None:
                    continue
                pixel = part[2]
            index[pixel].append((fragment.path, fragment.metadata))
        return dataset, dict(index)

    def schema(self):
        """The dataset schema (from ``_metadata``)."""
        return self.dataset().schema

    def _fragment_index(self):
        """``{pixel: [(path, metadata)]}`` from ``_metadata`` (cached, built once)."""
        return self._discovered()[1]

    def _files(self, key, margin=False):
        if margin or int(key[0]) != self.order:
            return []
        return self._fragment_index().get(int(key[1]), [])

    def read(self, partitions, columns, *, ra, dec, radius, filter=None):
        bad = [(o, p) for o, p in partitions if int(o) != self.order]
        if bad:
            raise ValueError(f"partitions {bad} are not of order {self.order}")
        return super().read(partitions, columns, ra=ra, dec=dec, radius=radius,
                            filter=filter)

    def full_scan(self, columns):
        """Every row of *columns* (for benchmarks)."""
        return self.dataset().to_table(columns=list(columns))


class HatsCatalog(_Catalog):
    """A HATS catalog (or collection, with its margin cache) read with pyarrow.

    Parameters
    ----------
    url : str
        A HATS collection (``collection.properties``) or catalog
        (``hats.properties``) directory, ``s3://`` or local.
    ra_column, dec_column : str, optional
        Position columns; default from ``hats_col_ra``/``hats_col_dec``.
    margin : str or False, optional
        Margin catalog: a path, a name inside the collection, or False for
        none.  Default: the collection's ``default_margin`` (or first of
        ``all_margins``).
    endpoint_url, anonymous, region :
        See `open_filesystem`.
    """

    kind = "hats"

    def __init__(self, url, *, ra_column=None, dec_column=None, margin=None, **kwargs):
        super().__init__(url, ra_column=ra_column, dec_column=dec_column, **kwargs)
        self.margin = margin
        self._cache_info = None
        self._cache_tiling = None
        self._cache_schema = None

    # ---- metadata
    def _read_text(self, path):
        fs, _ = self.filesystem
        with fs.open_input_stream(path) as fh:
            return fh.read().decode("utf-8")

    def _exists(self, path):
        from pyarrow.fs import FileType

        fs, _ = self.filesystem
        return fs.get_file_info(path).type != FileType.NotFound

    def info(self):
        """Catalog metadata: directory, properties, partitions, margin (cached)."""
        with self._lock:
            if self._cache_info is None:
                self._cache_info = self._load_info()
            return self._cache_info

    def _catalog_props(self, catalog_dir):
        for name in ("hats.properties", "properties"):
            if self._exists(catalog_dir + "/" + name):
                return _parse_properties(self._read_text(catalog_dir + "/" + name))
        return None

    def _partition_info(self, catalog_dir):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        text = self._read_text(catalog_dir + "/partition_info.csv")
        table = pacsv.read_csv(pa.py_buffer(text.encode()))
        if table.num_rows == 0:
            return np.zeros((0, 2), "int64")
        return np.stack([np.asarray(table["Norder"], dtype="int64"),
                         np.asarray(table["Npix"], dtype="int64")], axis=1)

    def _load_info(self):
        _, root = self.filesystem
        catalog_dir = root
        margin_dir = None
        if self._exists(root + "/collection.properties"):
            cprops = _parse_properties(self._read_text(root + "/collection.properties"))
            primary = cprops.get("hats_primary_table_url")
            if not primary:
                raise ValueError(f"{self.url}: collection.properties has no "
                                 "hats_primary_table_url")
            catalog_dir = root + "/" + primary.strip("/")
            margin_name = cprops.get("default_margin") or \
                (cprops.get("all_margins") or "").split(" ")[0].split(",")[0]
            if self.margin is None and margin_name:
                margin_dir = root + "/" + margin_name.strip("/")
        if self.margin:
            margin_dir = str(self.margin)
            if "/" not in margin_dir and root:
                margin_dir = root + "/" + margin_dir
            if not margin_dir.startswith(root) and "://" not in margin_dir:
                margin_dir = os.path.abspath(os.path.expanduser(margin_dir))
        props = self._catalog_props(catalog_dir)
        if props is None:
            raise FileNotFoundError(f"{self.url}: not a HATS catalog or collection "
                                    "(no collection.properties or hats.properties)")
        margin = None
        if margin_dir:
            mprops = self._catalog_props(margin_dir)
            if mprops is not None and mprops.get("hats_margin_threshold"):
                margin = {"dir": margin_dir,
                          "threshold_deg": float(mprops["hats_margin_threshold"]) / 3600.0,
                          "npix_suffix": mprops.get("hats_npix_suffix", ".parquet"),
                          "partitions": {tuple(k) for k in
                                         self._partition_info(margin_dir).tolist()}}
        return {
            "catalog_dir": catalog_dir,
            "properties": props,
            "partitions": self._partition_info(catalog_dir),
            "npix_suffix": props.get("hats_npix_suffix", ".parquet"),
            "ra_column": self.ra_column or props.get("hats_col_ra"),
            "dec_column": self.dec_column or props.get("hats_col_dec"),
            "healpix_column": props.get("hats_col_healpix", "_healpix_29"),
            "margin": margin,
        }

    def _names(self):
        info = self.info()
        self.ra_column, self.dec_column = info["ra_column"], info["dec_column"]
        return self.ra_column, self.dec_column

    @property
    def partitions(self):
        """``(n, 2)`` array of the catalog's ``(Norder, Npix)``."""
        return self.info()["partitions"]

    def tiling(self):
        if self._cache_tiling is None:
            self._cache_tiling = Tiling(self.partitions)
        return self._cache_tiling

    def margin_threshold_deg(self):
        margin = self.info()["margin"]
        return None if margin is None else margin["threshold_deg"]

    def _leaf_files(self, catalog_dir, suffix, order, pixel):
        from pyarrow.fs import FileSelector, FileType

        leaf = hats_leaf_path(catalog_dir, order, pixel, suffix)
        if not suffix.endswith("/"):
            return [leaf]
        fs, _ = self.filesystem
        entries = fs.get_file_info(FileSelector(leaf.rstrip("/"), allow_not_found=True))
        return sorted(e.path for e in entries if e.type == FileType.File
                      and not os.path.basename(e.path).startswith((".", "_")))

    def _files(self, key, margin=False):
        info = self.info()
        o, p = int(key[0]), int(key[1])
        if margin:
            m = info["margin"]
            if m is None or (o, p) not in m["partitions"]:
                return []
            return [(f, None) for f in self._leaf_files(m["dir"], m["npix_suffix"], o, p)]
        return [(f, None) for f in self._leaf_files(info["catalog_dir"], info["npix_suffix"],
                                                    o, p)]

    def leaf_files(self, partitions):
        """Parquet files of *partitions* (directories are listed)."""
        return [f for key in partitions for f, _ in self._files(key)]

    def schema(self):
        """The catalog schema from ``dataset/_common_metadata`` (cached)."""
        import pyarrow.parquet as pq

        if self._cache_schema is None:
            fs, _ = self.filesystem
            self._cache_schema = pq.read_schema(
                self.info()["catalog_dir"] + "/dataset/_common_metadata", filesystem=fs)
        return self._cache_schema

    def full_scan(self, columns):
        """Every row of *columns* in every partition (for benchmarks)."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        fs, _ = self.filesystem
        files = self.leaf_files(self.partitions.tolist())
        dataset = ds.dataset(files, format="parquet", filesystem=fs, schema=self.schema())
        return dataset.to_table(columns={n: pc.field(*n.split(".")) for n in columns})


# --------------------------------------------------------------------------- whole route
def crossmatch(catalog, ra, dec, radius, columns, *, workers=2, max_targets=None):
    """Plan, read and match a whole sample against *catalog* (no engine).

    The bulk route without the collection engine: `plan` the targets, run
    `crossmatch` on each group with *workers* threads (pyarrow decoding and
    the k-d tree release the GIL), concatenate.

    Returns
    -------
    `pyarrow.Table`
        Matched rows with ``_target`` (index into *ra*) and
        ``_separation_arcsec``; group after group (NESTED order of the home
        partitions), sorted by target then separation within a group.  The
        groups' tables are concatenated without copying: a global sort would
        hold a second copy of the result.
    """
    import concurrent.futures as cf

    import pyarrow as pa

    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    groups = catalog.plan(ra, dec, radius, max_targets=max_targets)

    def run(group):
        idx = group.targets
        table = catalog.crossmatch(group.partitions, columns, ra=ra[idx], dec=dec[idx],
                                   radius=radius)
        return table.set_column(table.schema.get_field_index("_target"), "_target",
                                pa.array(idx[table["_target"].to_numpy()], pa.int64()))

    if workers and workers > 1 and len(groups) > 1:
        with cf.ThreadPoolExecutor(workers) as pool:
            pieces = list(pool.map(run, groups))
    else:
        pieces = [run(g) for g in groups]
    pieces = [p for p in pieces if p.num_rows]
    if not pieces:
        return catalog._empty(catalog._columns(columns))
    return pa.concat_tables(pieces)
