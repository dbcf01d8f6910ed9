"""Shared mechanics of the bulk readers of HEALPix-partitioned catalogs.

Several archives publish their catalogs as parquet files partitioned by
HEALPix pixel (NESTED ordering) in cloud storage: IRSA's unWISE and NEOWISE
tables (hive layout ``healpix_k5=<pixel>/`` with a ``_metadata`` file) and
the HATS catalogs of ZTF, Pan-STARRS and Gaia (``Norder=K/Dir=D/Npix=N``).
A reader of such a catalog does four things, all provided here:

1. **Plan** (`plan_partition_batches`): find the partitions each target's
   cone touches (`hpgeom.query_circle`, inclusive) and group targets so that
   every partition is read once per run, by one batch holding all of its
   targets.  Partitions that share a target go into the same batch, so a
   target never has its matches split between batches (this keeps
   ``match="nearest"`` right at partition borders).
2. **Open** (`open_filesystem`): a pyarrow filesystem for ``s3://`` (via
   s3fs; anonymous by default, endpoint overridable for local stand-ins) or
   a local path, wrapped so that every file opened and every byte read is
   recorded in `read_log`.
3. **Read** (`HiveCatalog.read`, `HatsCatalog.read`): only the needed
   partitions and columns, with a row filter on a coarse RA/Dec box around
   the targets (and, for HATS, on ranges of the order-29 spatial index
   ``_healpix_29``), so parquet row-group statistics can skip data.
4. **Match** (`cone_match`): the exact cone match with astropy
   (`~astropy.coordinates.SkyCoord.search_around_sky`), returning the target
   of every matched row and the separation.

The public API is small on purpose: `plan_partition_batches`,
`partitions_touched`, `group_partitions`, `HiveCatalog`, `HatsCatalog`,
`cone_match`, `open_filesystem`, `read_log` / `ReadLog`.

HATS layout followed (from the ``hats`` package, ``hats/io/paths.py`` and
``hats/catalog/dataset/{table,collection}_properties.py``): a *collection*
directory holds ``collection.properties`` whose ``hats_primary_table_url``
names the catalog sub-directory; a catalog directory holds
``hats.properties`` (``hats_col_ra``, ``hats_col_dec``, ``hats_npix_suffix``
(``.parquet`` for one file per partition, ``/`` for a directory of files),
``hats_col_healpix``), ``partition_info.csv`` (columns ``Norder,Npix``) and
``dataset/`` with ``_metadata``, ``_common_metadata`` and the leaves
``dataset/Norder=K/Dir=D/Npix=N<suffix>`` where ``D = (N // 10000) * 10000``.
The partitions of a HATS catalog do not overlap but have different orders
(adaptive tiling).
"""
from __future__ import annotations

import collections
import os
import re
import threading

import numpy as np
from astropy import units as u

__all__ = ["partitions_touched", "group_partitions", "plan_partition_batches",
           "open_filesystem", "HiveCatalog", "HatsCatalog", "cone_match", "nearest_only",
           "coarse_filter", "healpix29_filter", "ReadLog", "read_log", "partition_of_path",
           "hats_leaf_path", "HEALPIX29_ORDER"]

#: Order of the HATS spatial index column ``_healpix_29`` (HATS convention,
#: ``hats_col_healpix_order``).
HEALPIX29_ORDER = 29

#: Largest number of RA/Dec boxes in one row filter; more targets are merged
#: into this many boxes (sorted by declination) to keep the filter cheap.
MAX_FILTER_BOXES = 32
#: Largest number of ``_healpix_29`` ranges in one HATS row filter.
MAX_INDEX_RANGES = 256

_HIVE_PIXEL = re.compile(r"healpix_k(\d+)=(\d+)")
_HATS_PIXEL = re.compile(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)")


# --------------------------------------------------------------------------- read log
class ReadLog:
    """Thread-safe record of the catalog files opened and bytes read.

    Every filesystem returned by `open_filesystem` reports here, so tests and
    benchmarks can check that each partition was opened once.  The log is
    process-wide (`read_log`); call `clear` before the run you measure.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.clear()

    def clear(self):
        """Forget everything recorded so far."""
        with getattr(self, "_lock", threading.Lock()):
            self.opens = []               # paths, in opening order
            self.bytes_by_path = collections.Counter()

    def _opened(self, path):
        with self._lock:
            self.opens.append(path)

    def _read(self, path, nbytes):
        with self._lock:
            self.bytes_by_path[path] += int(nbytes)

    @property
    def bytes_read(self):
        """Total bytes read through the logged filesystems."""
        with self._lock:
            return int(sum(self.bytes_by_path.values()))

    def data_bytes_read(self):
        """Bytes read from partition (leaf) files only, not metadata files."""
        with self._lock:
            return int(sum(n for p, n in self.bytes_by_path.items()
                           if partition_of_path(p) is not None))

    def partition_opens(self):
        """`collections.Counter` of file opens per partition.

        Keys are ``(dataset_root, order, pixel)``; metadata files
        (``_metadata``, properties, ...) are not counted.
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
        first = hive[0]
        last = hive[-1]
        return path[:first.start()].rstrip("/"), int(last.group(1)), int(last.group(2))
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

    def readinto(self, buffer):  # pragma: no cover - pyarrow uses read()
        n = self._raw.readinto(buffer)
        self._log._read(self._path, n or 0)
        return n

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
            self._log._opened(path)
            return PythonFile(_CountingFile(raw, path, self._log), mode="r")

        def open_input_file(self, path):
            return self._open(path)

        def open_input_stream(self, path):
            return self._open(path)

    return CountingHandler


def open_filesystem(url, *, endpoint_url=None, anonymous=True, region=None, log=None):
    """A pyarrow filesystem for *url* and the path inside it.

    Parameters
    ----------
    url : str
        ``s3://bucket/key``, ``http(s)://...`` or a local path (``file://``
        accepted).
    endpoint_url : str, optional
        S3 endpoint (e.g. ``http://127.0.0.1:5000`` for a local stand-in);
        None uses AWS.
    anonymous : bool
        Unsigned S3 requests (public buckets such as IRSA's).
    region : str, optional
        AWS region of the bucket (IRSA's buckets are in ``us-west-2``).
    log : `ReadLog`, optional
        Where opened files and bytes are recorded (default `read_log`).

    Returns
    -------
    filesystem : `pyarrow.fs.FileSystem`
    path : str
        *url* without its scheme, as the filesystem expects it.
    """
    from pyarrow.fs import PyFileSystem

    log = read_log if log is None else log
    url = str(url)
    if url.startswith("s3://"):
        import s3fs

        client_kwargs = {}
        if endpoint_url:
            client_kwargs["endpoint_url"] = endpoint_url
        if region:
            client_kwargs["region_name"] = region
        fs = s3fs.S3FileSystem(anon=anonymous, client_kwargs=client_kwargs,
                               skip_instance_cache=True)
        # No read-ahead cache: every byte pyarrow asks for is one range
        # request, so the byte count is what crossed the network.
        open_kwargs = {"cache_type": "none"}
        path = url[len("s3://"):].rstrip("/")
    elif url.startswith(("http://", "https://")):
        import fsspec

        # HATS catalogs served over HTTP(S) (the Gaia DR3 epoch catalog on
        # data.lsdb.io); fsspec's HTTP filesystem needs aiohttp.
        fs = fsspec.filesystem("https" if url.startswith("https") else "http")
        open_kwargs = {}
        path = url.rstrip("/")
    else:
        from fsspec.implementations.local import LocalFileSystem

        if url.startswith("file://"):
            url = url[len("file://"):]
        fs = LocalFileSystem()
        open_kwargs = {}
        path = os.path.abspath(os.path.expanduser(url)).replace("\\", "/")
    handler = _counting_handler_class()(fs, log, open_kwargs)
    return PyFileSystem(handler), path


# --------------------------------------------------------------------------- planning
def _radius_deg(radius):
    if not isinstance(radius, u.Quantity):
        raise TypeError(f"radius must be an angle Quantity, got {radius!r}")
    return float(radius.to_value(u.deg))


def partitions_touched(ra, dec, radius, partitions):
    """The partitions each cone touches.

    Parameters
    ----------
    ra, dec : array-like of float
        Cone centres [deg, ICRS].
    radius : `~astropy.units.Quantity`
        Cone radius (angle).
    partitions : int or array-like of (order, pixel)
        A fixed HEALPix order (every pixel of that order is a partition, as in
        the hive catalogs), or the catalog's partitions (HATS adaptive
        tiling; pixels that are not partitions are ignored).

    Returns
    -------
    list of list of tuple
        For each cone, the ``(order, pixel)`` keys it touches (NESTED,
        ``inclusive=True`` so border pixels are never missed).
    """
    import hpgeom

    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    rdeg = _radius_deg(radius)
    if np.isscalar(partitions) or np.ndim(partitions) == 0:
        orders = {int(partitions): None}
    else:
        keys = np.asarray(partitions, dtype="int64").reshape(-1, 2)
        orders = {}
        for order in np.unique(keys[:, 0]):
            orders[int(order)] = set(keys[keys[:, 0] == order, 1].tolist())
    touched = []
    for r, d in zip(ra, dec):
        keys = []
        for order, present in orders.items():
            pix = hpgeom.query_circle(hpgeom.order_to_nside(order), r, d, rdeg,
                                      nest=True, inclusive=True)
            keys.extend((order, int(p)) for p in pix
                        if present is None or int(p) in present)
        touched.append(sorted(keys))
    return touched


def group_partitions(touched):
    """Group partitions that share a target (connected components).

    Parameters
    ----------
    touched : list of list of tuple
        Output of `partitions_touched`.

    Returns
    -------
    list of (list of tuple, numpy.ndarray)
        For each group, its partition keys (sorted) and the indices of the
        targets whose cones touch it; groups sorted by their first partition.
        Targets touching no partition are in no group.
    """
    parent = {}

    def find(key):
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for keys in touched:
        for key in keys:
            parent.setdefault(key, key)
        for a, b in zip(keys[:-1], keys[1:]):
            ra_, rb_ = find(a), find(b)
            if ra_ != rb_:
                parent[max(ra_, rb_)] = min(ra_, rb_)
    members = collections.defaultdict(set)
    for key in parent:
        members[find(key)].add(key)
    targets = collections.defaultdict(list)
    for i, keys in enumerate(touched):
        if keys:
            targets[find(keys[0])].append(i)
    groups = [(sorted(members[root]), np.asarray(targets[root], dtype=int))
              for root in members]
    groups.sort(key=lambda g: g[0][0])
    return groups


def plan_partition_batches(archive, sample, touched, max_partitions=1):
    """Batches of an `~multilc.collect.Archive`, one per partition group.

    Use in ``Archive.plan``::

        def plan(self, sample):
            touched = self.catalog().touched(ra, dec, self.radius)
            return plan_partition_batches(self, sample, touched)

    Each batch's ``options["partitions"]`` lists its ``[order, pixel]``
    keys (part of the batch's cache key).  Groups of partitions sharing a
    target always stay together; consecutive groups (NESTED order, so
    neighbours on the sky) are merged until a batch holds at least
    *max_partitions* partitions, which cuts the per-batch overhead when
    every partition holds few targets.  Every partition is still in exactly
    one batch.

    Parameters
    ----------
    archive : `~multilc.collect.Archive`
    sample : `~multilc.samples.Sample`
    touched : list of list of tuple
        `partitions_touched` of the sample's targets, in sample order.
    max_partitions : int
        Partitions per batch to aim for (default 1: one batch per group).

    Returns
    -------
    list of `~multilc.collect.Batch`
    """
    from multilc.collect.api import Batch

    ra = sample.coord.icrs.ra.deg
    dec = sample.coord.icrs.dec.deg
    ids = np.asarray(sample.objectid, dtype="int64")
    labels = np.asarray(sample.table["label"], dtype=str)
    opts = archive.batch_options()
    merged = []
    for keys, idx in group_partitions(touched):
        if merged and len(merged[-1][0]) < max(1, int(max_partitions)):
            merged[-1] = (merged[-1][0] + keys, np.concatenate([merged[-1][1], idx]))
        else:
            merged.append((list(keys), idx))
    batches = []
    for i, (keys, idx) in enumerate(merged):
        idx = np.unique(idx)
        batches.append(Batch(archive.name, i, ids[idx], ra[idx], dec[idx], labels[idx],
                             {**opts, "partitions": [[int(o), int(p)] for o, p in keys]}))
    return batches


# --------------------------------------------------------------------------- filters
def _boxes(ra, dec, rdeg):
    """At most MAX_FILTER_BOXES (ra_min, ra_max, dec_min, dec_max) boxes.

    RA limits may wrap (ra_min > ra_max means the box crosses RA = 0).
    """
    order = np.argsort(dec)
    ra, dec = np.asarray(ra)[order], np.asarray(dec)[order]
    boxes = []
    for chunk in np.array_split(np.arange(len(ra)), min(len(ra), MAX_FILTER_BOXES)):
        if not len(chunk):
            continue
        d0 = float(dec[chunk].min()) - rdeg
        d1 = float(dec[chunk].max()) + rdeg
        if d0 <= -90 or d1 >= 90:
            boxes.append((0.0, 360.0, max(d0, -90.0), min(d1, 90.0)))
            continue
        # RA half-width of a cone at the worst declination of the chunk.
        cosd = np.cos(np.deg2rad(max(abs(d0), abs(d1))))
        half = min(180.0, rdeg / max(cosd, 1e-12))
        r = np.mod(ra[chunk], 360.0)
        # Smallest arc holding all RA: cut the circle at the largest gap.
        srt = np.sort(r)
        gaps = np.diff(np.concatenate([srt, [srt[0] + 360.0]]))
        k = int(np.argmax(gaps))
        lo, hi = srt[(k + 1) % len(srt)], srt[k]
        width = (hi - lo) % 360.0
        if width + 2 * half >= 360.0:
            boxes.append((0.0, 360.0, d0, d1))
        else:
            boxes.append(((lo - half) % 360.0, (hi + half) % 360.0, d0, d1))
    return boxes


def coarse_filter(ra_column, dec_column, ra, dec, radius):
    """A pyarrow expression keeping rows in boxes around the cones.

    The boxes are supersets of the cones (RA half-width ``r / cos(dec)`` at
    the box's largest ``|dec|``); the exact cut is `cone_match`.
    """
    import pyarrow.compute as pc

    rdeg = _radius_deg(radius)
    fra, fdec = pc.field(ra_column), pc.field(dec_column)
    expr = None
    for ra0, ra1, d0, d1 in _boxes(ra, dec, rdeg):
        box = (fdec >= d0) & (fdec <= d1)
        if not (ra0 == 0.0 and ra1 == 360.0):
            if ra0 <= ra1:
                box = box & (fra >= ra0) & (fra <= ra1)
            else:  # wraps through RA = 0
                box = box & ((fra >= ra0) | (fra <= ra1))
        expr = box if expr is None else expr | box
    return expr


def healpix29_filter(column, ra, dec, radius, min_order):
    """A pyarrow expression on the order-29 spatial index covering the cones.

    Pixels of an order fine enough for the radius (but not coarser than
    *min_order*) are converted to ``[p << 2(29-k), (p+1) << 2(29-k))``
    ranges; adjacent ranges merge.  Sorted HATS leaves then skip row groups.
    """
    import hpgeom
    import pyarrow.compute as pc

    rdeg = _radius_deg(radius)
    # Order whose pixels are about as wide as the cone: resolution(k) ~ 58.6/2^k deg.
    k = int(np.clip(np.floor(np.log2(58.6 / max(rdeg * 4, 1e-9))), min_order, 20))
    pix = np.unique(np.concatenate([
        hpgeom.query_circle(hpgeom.order_to_nside(k), r, d, rdeg, nest=True, inclusive=True)
        for r, d in zip(np.atleast_1d(ra), np.atleast_1d(dec))]).astype("int64"))
    shift = 2 * (HEALPIX29_ORDER - k)
    starts = pix << shift
    stops = (pix + 1) << shift
    ranges = []
    for s, e in zip(starts, stops):
        if ranges and s <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], e)
        else:
            ranges.append([int(s), int(e)])
    while len(ranges) > MAX_INDEX_RANGES:  # merge the closest neighbours
        gaps = [ranges[i + 1][0] - ranges[i][1] for i in range(len(ranges) - 1)]
        i = int(np.argmin(gaps))
        ranges[i][1] = ranges[i + 1][1]
        del ranges[i + 1]
    field = pc.field(column)
    expr = None
    for s, e in ranges:
        term = (field >= s) & (field < e)
        expr = term if expr is None else expr | term
    return expr


# --------------------------------------------------------------------------- matching
def cone_match(target_ra, target_dec, ra, dec, radius):
    """Exact cone match of catalog rows to targets (astropy).

    Parameters
    ----------
    target_ra, target_dec : array-like
        Targets [deg].
    ra, dec : array-like
        Catalog rows [deg].
    radius : `~astropy.units.Quantity`

    Returns
    -------
    target_index, row_index : numpy.ndarray of int
        One entry per (target, row) pair within *radius*, sorted by target
        then row.
    separation : `~astropy.units.Quantity`
        Angular distance [arcsec].
    """
    from astropy.coordinates import SkyCoord

    ra = np.asarray(ra, dtype=float)
    if not len(ra) or not len(np.atleast_1d(target_ra)):
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0) * u.arcsec
    targets = SkyCoord(np.atleast_1d(target_ra) * u.deg, np.atleast_1d(target_dec) * u.deg)
    rows = SkyCoord(ra * u.deg, np.asarray(dec, dtype=float) * u.deg)
    ti, ri, sep, _ = rows.search_around_sky(targets, radius)
    order = np.lexsort((ri, ti))
    return ti[order], ri[order], sep[order].to(u.arcsec)


def nearest_only(target_index, separation, source_id):
    """Mask keeping, per target, the rows of its nearest archive object.

    All rows (epochs) of the nearest ``source_id`` are kept; ties go to the
    smaller id.
    """
    target_index = np.asarray(target_index)
    keep = np.zeros(len(target_index), bool)
    sep = np.asarray(u.Quantity(separation).to_value(u.arcsec))
    sid = np.asarray(source_id)
    for t in np.unique(target_index):
        sel = np.flatnonzero(target_index == t)
        order = np.lexsort((sid[sel].astype(str) if sid.dtype.kind in "OUS" else sid[sel],
                            sep[sel]))
        best = sid[sel][order[0]]
        keep[sel[sid[sel] == best]] = True
    return keep


# --------------------------------------------------------------------------- catalogs
class _Catalog:
    """Common parts of the two catalog kinds."""

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

    def _row_filter(self, ra, dec, radius, extra):
        expr = coarse_filter(self.ra_column, self.dec_column, ra, dec, radius)
        return expr if extra is None else expr & extra


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

    def dataset(self):
        """The `pyarrow.dataset.Dataset` built from ``_metadata`` (cached)."""
        import pyarrow.dataset as ds

        with self._lock:
            if self._cache_dataset is None:
                fs, root = self.filesystem
                self._cache_dataset = ds.parquet_dataset(
                    root + "/_metadata", partitioning="hive", filesystem=fs)
            return self._cache_dataset

    def touched(self, ra, dec, radius):
        """`partitions_touched` for this catalog's order."""
        return partitions_touched(ra, dec, radius, self.order)

    def read(self, partitions, columns, *, ra, dec, radius, filter=None):
        """Rows of *partitions* near the targets.

        Parameters
        ----------
        partitions : list of (order, pixel)
            Partitions to open (each once).
        columns : list of str
            Columns to read (the position columns are added).
        ra, dec : array-like
            Targets [deg], for the coarse row filter.
        radius : `~astropy.units.Quantity`
        filter : `pyarrow.compute.Expression`, optional
            An extra row filter ANDed with the others.

        Returns
        -------
        `pyarrow.Table`
        """
        pixels = sorted({int(p) for o, p in partitions if int(o) == self.order})
        bad = [(o, p) for o, p in partitions if int(o) != self.order]
        if bad:
            raise ValueError(f"partitions {bad} are not of order {self.order}")
        import pyarrow.dataset as ds

        dataset = self.dataset()
        index = self._fragment_index()
        fragments = [f for p in pixels for f in index.get(p, ())]
        names = _with_positions(columns, self.ra_column, self.dec_column)
        # A dataset of just these partitions' fragments: filtering the whole
        # catalog would test every fragment's statistics on every call.
        subset = ds.FileSystemDataset(fragments, dataset.schema, dataset.format,
                                      dataset.filesystem)
        return subset.to_table(columns=names,
                               filter=self._row_filter(ra, dec, radius, filter))

    def _fragment_index(self):
        """``{pixel: [fragments]}`` from ``_metadata`` (cached, built once)."""
        import pyarrow.dataset as ds

        dataset = self.dataset()
        with self._lock:
            if self._cache_index is None:
                index = collections.defaultdict(list)
                for fragment in dataset.get_fragments():
                    keys = ds.get_partition_keys(fragment.partition_expression)
                    if self.partition_column in keys:
                        index[int(keys[self.partition_column])].append(fragment)
                    else:  # no hive key: fall back to the file path
                        part = partition_of_path(fragment.path)
                        if part is not None:
                            index[part[2]].append(fragment)
                self._cache_index = dict(index)
            return self._cache_index

    def full_scan(self, columns):
        """Every row of *columns* (for benchmarks)."""
        return self.dataset().to_table(columns=list(columns))


class HatsCatalog(_Catalog):
    """A HATS catalog (or collection) read with pyarrow only.

    Parameters
    ----------
    url : str
        A HATS collection (``collection.properties``) or catalog
        (``hats.properties``) directory, ``s3://`` or local.
    ra_column, dec_column : str, optional
        Position columns; default from ``hats_col_ra``/``hats_col_dec``.
    endpoint_url, anonymous, region :
        See `open_filesystem`.
    """

    kind = "hats"

    def __init__(self, url, *, ra_column=None, dec_column=None, **kwargs):
        super().__init__(url, ra_column=ra_column, dec_column=dec_column, **kwargs)
        self._cache_info = None

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
        """Catalog metadata: directory, properties, partitions (cached)."""
        with self._lock:
            if self._cache_info is None:
                self._cache_info = self._load_info()
            return self._cache_info

    def _load_info(self):
        _, root = self.filesystem
        catalog_dir = root
        if self._exists(root + "/collection.properties"):
            props = _parse_properties(self._read_text(root + "/collection.properties"))
            primary = props.get("hats_primary_table_url")
            if not primary:
                raise ValueError(f"{self.url}: collection.properties has no "
                                 "hats_primary_table_url")
            catalog_dir = root + "/" + primary.strip("/")
        for name in ("hats.properties", "properties"):
            if self._exists(catalog_dir + "/" + name):
                props = _parse_properties(self._read_text(catalog_dir + "/" + name))
                break
        else:
            raise FileNotFoundError(f"{self.url}: not a HATS catalog or collection "
                                    "(no collection.properties or hats.properties)")
        import pyarrow.csv as pacsv
        import pyarrow as pa

        text = self._read_text(catalog_dir + "/partition_info.csv")
        table = pacsv.read_csv(pa.py_buffer(text.encode()))
        partitions = np.stack([np.asarray(table["Norder"], dtype="int64"),
                               np.asarray(table["Npix"], dtype="int64")], axis=1)
        return {
            "catalog_dir": catalog_dir,
            "properties": props,
            "partitions": partitions,
            "npix_suffix": props.get("hats_npix_suffix", ".parquet"),
            "ra_column": self.ra_column or props.get("hats_col_ra"),
            "dec_column": self.dec_column or props.get("hats_col_dec"),
            "healpix_column": props.get("hats_col_healpix", "_healpix_29"),
        }

    @property
    def partitions(self):
        """``(n, 2)`` array of the catalog's ``(Norder, Npix)``."""
        return self.info()["partitions"]

    def touched(self, ra, dec, radius):
        """`partitions_touched` against the catalog's adaptive tiling."""
        return partitions_touched(ra, dec, radius, self.partitions)

    def leaf_files(self, partitions):
        """Parquet files of *partitions* (directories are listed)."""
        from pyarrow.fs import FileSelector, FileType

        info = self.info()
        fs, _ = self.filesystem
        files = []
        for order, pixel in partitions:
            leaf = hats_leaf_path(info["catalog_dir"], order, pixel, info["npix_suffix"])
            if info["npix_suffix"].endswith("/"):
                entries = fs.get_file_info(FileSelector(leaf.rstrip("/"), allow_not_found=True))
                files.extend(sorted(e.path for e in entries if e.type == FileType.File
                                    and not os.path.basename(e.path).startswith((".", "_"))))
            else:
                files.append(leaf)
        return files

    def schema(self):
        """The catalog schema from ``dataset/_common_metadata``."""
        import pyarrow.parquet as pq

        fs, _ = self.filesystem
        return pq.read_schema(self.info()["catalog_dir"] + "/dataset/_common_metadata",
                              filesystem=fs)

    def read(self, partitions, columns, *, ra, dec, radius, filter=None):
        """Rows of *partitions* near the targets (see `HiveCatalog.read`).

        Nested sub-columns are given as ``"lightcurve.hmjd"`` and come back
        as flat list columns of that name.
        """
        import pyarrow.dataset as ds
        import pyarrow.compute as pc

        info = self.info()
        self.ra_column, self.dec_column = info["ra_column"], info["dec_column"]
        fs, _ = self.filesystem
        files = self.leaf_files(partitions)
        schema = self.schema()
        dataset = ds.dataset(files, format="parquet", filesystem=fs, schema=schema)
        names = _with_positions(columns, self.ra_column, self.dec_column)
        projection = {name: pc.field(*name.split(".")) for name in names}
        expr = self._row_filter(ra, dec, radius, filter)
        hp_col = info["healpix_column"]
        if hp_col in schema.names:
            min_order = int(min(o for o, _ in partitions)) if len(partitions) else 0
            expr = expr & healpix29_filter(hp_col, ra, dec, radius, min_order)
        return dataset.to_table(columns=projection, filter=expr)

    def full_scan(self, columns):
        """Every row of *columns* in every partition (for benchmarks)."""
        import pyarrow.dataset as ds
        import pyarrow.compute as pc

        fs, _ = self.filesystem
        files = self.leaf_files(self.partitions.tolist())
        dataset = ds.dataset(files, format="parquet", filesystem=fs, schema=self.schema())
        return dataset.to_table(columns={n: pc.field(*n.split(".")) for n in columns})


def hats_leaf_path(catalog_dir, order, pixel, suffix=".parquet"):
    """``<catalog_dir>/dataset/Norder=K/Dir=D/Npix=N<suffix>`` (HATS layout)."""
    directory = (int(pixel) // 10_000) * 10_000
    return (f"{catalog_dir}/dataset/Norder={int(order)}/Dir={directory}/"
            f"Npix={int(pixel)}{suffix}")


def _with_positions(columns, ra_column, dec_column):
    names = list(dict.fromkeys(columns))
    for col in (ra_column, dec_column):
        if col not in names:
            names.append(col)
    return names


def _parse_properties(text):
    """Key/value pairs of a Java-style properties file (``key=value`` lines)."""
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, value = _split_property(line)
        props[key] = value
    return props


def _split_property(line):
    match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
    if not match:
        return line, ""
    return match.group(1), match.group(2).strip()
