"""The collection engine: plan batches, run them, gather results and failures.

``collect(targets, archives)`` turns the targets into a
`~multilc.samples.Sample`, asks each archive for its plan (a list of
picklable `~multilc.collect.api.Batch`), and runs every batch through
`run_batch`, which adds, around the archive's own ``query``/``parse``:

* a response cache on disk keyed by the request (archive, settings, targets,
  options), and an offline mode that only reads it;
* retries of transient failures with exponential backoff and jitter;
* checkpoints: each finished batch is written to the checkpoint folder as it
  completes, and a rerun with the same folder skips it.

Archives run concurrently (one thread pool each, sized by the archive's
concurrency setting); with ``executor=`` the batches go to any executor with
``submit`` (a `concurrent.futures` pool or a ``dask.distributed.Client``),
since a batch and `run_batch` are plain picklable objects.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import os
import pickle
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from astropy import log

from multilc.collect.api import ARCHIVES, Failure, ParseResult, get_archive, setting
from multilc.lightcurve import MultiBandLightCurve

__all__ = ["collect", "run_batch", "Runtime", "BatchResult", "CollectionReport",
           "default_cache_dir"]


# --------------------------------------------------------------------------- settings
def default_cache_dir():
    """The response cache folder: ``$MULTILC_CACHE_DIR``, ``conf.cache_dir`` or
    the user cache directory."""
    from multilc import conf

    configured = setting(conf, "cache_dir")
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("multilc"))


@dataclasses.dataclass
class Runtime:
    """Engine settings for one run (picklable; shipped with every batch)."""

    cache_dir: str | None
    use_cache: bool = True
    offline: bool = False
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 60.0
    checkpoint_dir: str | None = None

    @classmethod
    def from_conf(cls, **overrides):
        from multilc import conf

        values = {name: setting(conf, name) for name in
                  ("timeout", "retries", "backoff", "backoff_max", "offline")}
        values["use_cache"] = setting(conf, "cache")
        values["cache_dir"] = None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["cache_dir"] is None:
            values["cache_dir"] = str(default_cache_dir())
        return cls(**values)


@dataclasses.dataclass
class BatchResult:
    """Outcome of one batch."""

    archive: str
    index: int
    key: str
    objectids: list
    lc: MultiBandLightCurve | None
    failures: list
    dropped: dict
    requests: int = 0
    from_cache: bool = False
    from_checkpoint: bool = False
    seconds: float = 0.0


@dataclasses.dataclass
class CollectionReport:
    """What happened during `collect`: failures, drops, requests, per archive.

    Attributes
    ----------
    failures : list of `~multilc.collect.api.Failure`
    dropped : dict
        ``{archive: {reason: count}}`` of rows removed by masks or sentinels.
    requests : dict
        ``{archive: number of queries sent}`` (retries included).
    batches : dict
        ``{archive: {"total", "cached", "resumed", "failed"}}``.
    seconds : float
        Wall time of the run.
    """

    failures: list = dataclasses.field(default_factory=list)
    dropped: dict = dataclasses.field(default_factory=dict)
    requests: dict = dataclasses.field(default_factory=dict)
    batches: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self):
        """True when nothing failed."""
        return not self.failures

    def failures_table(self):
        """Failures as an astropy Table (archive, objectids, error_type, message)."""
        from astropy.table import Table

        rows = [(f.archive, ",".join(map(str, f.objectids)), f.error_type, f.message,
                 f.transient, f.attempts) for f in self.failures]
        return Table(rows=rows or None, names=("archive", "objectids", "error_type",
                                               "message", "transient", "attempts"),
                     dtype=(str, str, str, str, bool, int))

    def summary(self):
        """Multi-line text for the command line."""
        lines = []
        for arch in sorted(self.batches):
            b = self.batches[arch]
            lines.append(f"{arch}: {b['total']} batches ({b['cached']} from cache, "
                         f"{b['resumed']} resumed, {b['failed']} failed), "
                         f"{self.requests.get(arch, 0)} requests")
            for reason, count in sorted(self.dropped.get(arch, {}).items()):
                lines.append(f"    dropped {count} rows: {reason}")
        if self.failures:
            lines.append(f"{len(self.failures)} failures:")
            for f in self.failures:
                lines.append(f"  [{f.archive}] {f.error_type}: {f.message}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- cache
def _cache_path(runtime, archive, key):
    return Path(runtime.cache_dir) / "responses" / archive / f"{key}.pickle"


def _atomic_write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _checkpoint_paths(runtime, archive, key):
    base = Path(runtime.checkpoint_dir) / archive
    return base / f"{key}.parquet", base / f"{key}.json"


# --------------------------------------------------------------------------- one batch
def _classify(exc):
    """True if *exc* is worth retrying."""
    transient = getattr(exc, "transient", None)
    if transient is not None:
        return bool(transient)
    try:
        import requests

        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            code = exc.response.status_code
            return code == 429 or code >= 500
        if isinstance(exc, requests.RequestException):
            return True
    except ImportError:  # pragma: no cover
        pass
    # pyvo wraps HTTP errors in DALServiceError with .code and .cause
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code == 429 or code >= 500
    cause = getattr(exc, "cause", None)
    if cause is not None and cause is not exc:
        return _classify(cause)
    return isinstance(exc, (TimeoutError, ConnectionError))


def run_batch(archive, batch, runtime):
    """Run one batch: checkpoint, cache, query with retries, parse.

    Never raises for archive problems: they come back as failures in the
    `BatchResult` so the other batches' results survive.

    Parameters
    ----------
    archive : `~multilc.collect.api.Archive`
    batch : `~multilc.collect.api.Batch`
    runtime : `Runtime`

    Returns
    -------
    `BatchResult`
    """
    start = time.monotonic()
    key = batch.key(archive.settings())
    ids = batch.objectid.tolist()
    result = BatchResult(archive.name, batch.index, key, ids, None, [], {})
    if runtime.checkpoint_dir:
        lc_path, meta_path = _checkpoint_paths(runtime, archive.name, key)
        if lc_path.exists() and meta_path.exists():
            from multilc.io.formats import read_parquet

            meta = json.loads(meta_path.read_text())
            result.lc = read_parquet(lc_path)
            result.dropped = meta.get("dropped", {})
            result.failures = [Failure(**f) for f in meta.get("failures", [])]
            result.from_checkpoint = True
            return result

    raw = None
    cache_file = _cache_path(runtime, archive.name, key) if runtime.cache_dir else None
    if cache_file is not None and (runtime.use_cache or runtime.offline) and \
            cache_file.exists():
        try:
            raw = pickle.loads(cache_file.read_bytes())
            result.from_cache = True
        except Exception as exc:  # a damaged cache entry is re-fetched
            log.warning(f"{archive.name}: ignoring unreadable cache entry {cache_file}: "
                        f"{exc}")
            raw = None
    if raw is None and runtime.offline:
        result.failures.append(Failure(
            archive.name, ids, "OfflineCacheMiss",
            f"{archive.name}: offline mode and no cached response for "
            f"{batch.describe()}", False, 0))
        return result

    if raw is None:
        archive.timeout = runtime.timeout
        attempt = 0
        while True:
            attempt += 1
            result.requests += 1
            try:
                raw = archive.query(batch)
                break
            except Exception as exc:  # noqa: BLE001 - classified, reported, never lost
                transient = _classify(exc)
                # Some transient failures deserve fewer retries (an HTML page
                # where data was expected: one more try, then it is permanent).
                limit = min(runtime.retries, getattr(exc, "retry_limit", runtime.retries))
                if transient and attempt <= limit:
                    delay = min(runtime.backoff_max, runtime.backoff * 2 ** (attempt - 1))
                    delay *= random.uniform(0.5, 1.0)  # jitter
                    log.debug(f"{archive.name}: {exc}; retry {attempt} in {delay:.2f} s")
                    time.sleep(delay)
                    continue
                result.failures.append(Failure(
                    archive.name, ids, type(exc).__name__, _message(archive, batch, exc),
                    transient and limit == runtime.retries, attempt))
                result.seconds = time.monotonic() - start
                return result
        if cache_file is not None and runtime.use_cache:
            try:
                _atomic_write(cache_file, pickle.dumps(raw, protocol=pickle.HIGHEST_PROTOCOL))
            except (OSError, pickle.PicklingError) as exc:
                log.warning(f"{archive.name}: could not cache the response: {exc}")

    try:
        parsed = archive.parse(raw, batch)
    except Exception as exc:  # noqa: BLE001
        result.failures.append(Failure(archive.name, ids, type(exc).__name__,
                                       _message(archive, batch, exc, parsing=True),
                                       False, result.requests))
        if cache_file is not None and cache_file.exists() and not result.from_cache:
            cache_file.unlink()  # do not keep a response we cannot read
        result.seconds = time.monotonic() - start
        return result
    if isinstance(parsed, MultiBandLightCurve):
        parsed = ParseResult(parsed)
    result.lc = parsed.lc
    result.dropped = dict(parsed.dropped)
    result.failures.extend(parsed.failures)
    if runtime.checkpoint_dir:
        _write_checkpoint(runtime, archive.name, key, result)
    result.seconds = time.monotonic() - start
    return result


def _message(archive, batch, exc, parsing=False):
    text = str(exc)
    if archive.name in text and ("target" in text or "objectid" in text):
        return text
    what = "could not parse the response" if parsing else "query failed"
    return f"{archive.name}: {what} for {batch.describe()}: {type(exc).__name__}: {text}"


def _write_checkpoint(runtime, archive_name, key, result):
    from multilc.io.formats import write_parquet

    lc_path, meta_path = _checkpoint_paths(runtime, archive_name, key)
    lc_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=lc_path.parent, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        write_parquet(result.lc, tmp, overwrite=True)
        os.replace(tmp, lc_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta = {"dropped": result.dropped, "failures": [f.to_dict() for f in result.failures],
            "objectids": result.objectids}
    # The JSON is written last: a batch counts as finished only when both exist.
    _atomic_write(meta_path, json.dumps(meta).encode())


# --------------------------------------------------------------------------- many batches
def _resolve_archives(archives):
    _load_archive_modules()
    if archives is None:
        raise TypeError(f"name the archives to collect from: one of "
                        f"{sorted(ARCHIVES)} or 'all'")
    if isinstance(archives, str):
        archives = [n for n, c in ARCHIVES.items() if c.in_all and
                    not n.startswith("demo")] if archives == "all" else \
            [a.strip() for a in archives.split(",") if a.strip()]
    names = list(dict.fromkeys(archives))
    for name in names:
        get_archive(name)
    return names


def _load_archive_modules():
    import multilc.archives  # noqa: F401  (archive modules register themselves)


def collect(targets, archives="all", *, radius=None, options=None, cache=None,
            cache_dir=None, offline=None, checkpoint=None, progress=None, timeout=None,
            retries=None, backoff=None, max_workers=None, executor=None, **common):
    """Collect light curves of *targets* from *archives*.

    Parameters
    ----------
    targets : `~multilc.samples.Sample`, `~astropy.coordinates.SkyCoord`, table, str
        Anything `multilc.samples.as_sample` accepts (a SkyCoord, a table
        with coordinates, object names, a sample name, a table file).
    archives : str or list of str
        Archive names, a comma-separated string, or ``"all"``.
    radius : `~astropy.units.Quantity`, optional
        Match radius for every archive (each has its own default).
    options : dict, optional
        Per-archive reader options: ``{"icecube": {"top_n": 3}}``.
    cache : bool, optional
        Reuse and store responses on disk (``conf.cache``).
    cache_dir : str or path, optional
        Cache folder (default `default_cache_dir`).
    offline : bool, optional
        Only use cached responses (``conf.offline``).
    checkpoint : str or path, optional
        Folder where each finished batch is written; a rerun skips them.
    progress : bool, optional
        Progress bars (default: on when stderr is a terminal).
    timeout, retries, backoff : optional
        Override ``conf.timeout``, ``conf.retries``, ``conf.backoff``.
    max_workers : int, optional
        Most requests in flight over all archives (``conf.max_workers``).
    executor : optional
        An executor with ``submit`` (``concurrent.futures`` pool or
        ``dask.distributed.Client``) to run batches on instead of threads.
    **common
        Reader options given to every archive that accepts them.

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        With a ``report`` attribute (`CollectionReport`).
    """
    from multilc import conf
    from multilc.samples import as_sample

    started = time.monotonic()
    names = _resolve_archives(archives)
    sample = as_sample(targets)
    runtime = Runtime.from_conf(cache_dir=str(cache_dir) if cache_dir else None,
                                use_cache=cache, offline=offline, timeout=timeout,
                                retries=retries, backoff=backoff,
                                checkpoint_dir=str(checkpoint) if checkpoint else None)
    if runtime.checkpoint_dir:
        _write_manifest(runtime.checkpoint_dir, names, sample)
    options = dict(options or {})
    unknown = set(options) - set(names)
    if unknown:
        raise TypeError(f"options given for archives not collected: {sorted(unknown)}")

    report = CollectionReport()
    plans = {}
    for name in names:
        cls = get_archive(name)
        kwargs = {k: v for k, v in common.items()
                  if k in cls.default_options or k in ("chunk_size", "concurrency")}
        if radius is not None:
            kwargs["radius"] = radius
        kwargs.update(options.get(name, {}))
        archive = cls(**kwargs)
        plans[name] = (archive, archive.plan(sample))
        report.batches[name] = {"total": len(plans[name][1]), "cached": 0, "resumed": 0,
                                "failed": 0}
    show = _show_progress(progress, conf)
    results = _run_plans(plans, runtime, show, executor,
                         max_workers or setting(conf, "max_workers"))
    pieces = []
    for res in results:
        if res.lc is not None:
            pieces.append(res.lc)
        report.failures.extend(res.failures)
        report.requests[res.archive] = report.requests.get(res.archive, 0) + res.requests
        drops = report.dropped.setdefault(res.archive, {})
        for reason, count in res.dropped.items():
            drops[reason] = drops.get(reason, 0) + int(count)
        b = report.batches[res.archive]
        b["cached"] += res.from_cache
        b["resumed"] += res.from_checkpoint
        b["failed"] += res.lc is None
    lc = MultiBandLightCurve.concat(pieces) if pieces else MultiBandLightCurve.empty()
    lc = _with_all_targets(lc, sample)
    report.seconds = time.monotonic() - started
    lc.report = report
    for f in report.failures:
        log.warning(f.message)
    return lc


def _with_all_targets(lc, sample):
    """Fill per-object metadata (label, ra, dec) from the sample."""
    ds = lc.ds
    if not ds.sizes["object"]:
        return lc
    ids = np.asarray(sample.objectid, dtype="int64")
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], ds["objectid"].values)
    pos = np.clip(pos, 0, len(ids) - 1)
    found = ids[order][pos] == ds["objectid"].values
    labels = np.asarray(sample.table["label"], dtype=object)[order][pos]
    coord = sample.coord.icrs
    ra = coord.ra.deg[order][pos]
    dec = coord.dec.deg[order][pos]
    ds = ds.copy()
    ds["label"] = ("object", np.where(found, labels, ds["label"].values).astype(object))
    ds["ra"] = ("object", np.where(found, ra, ds["ra"].values), {"units": "deg"})
    ds["dec"] = ("object", np.where(found, dec, ds["dec"].values), {"units": "deg"})
    return MultiBandLightCurve(ds)


def _show_progress(progress, conf):
    if progress is not None:
        return bool(progress)
    return bool(setting(conf, "progress")) and sys.stderr.isatty()


def _run_plans(plans, runtime, show, executor, max_workers):
    bars = {}
    if show:
        from tqdm.auto import tqdm

        for pos, (name, (_, batches)) in enumerate(plans.items()):
            bars[name] = tqdm(total=len(batches), desc=name, unit="batch", position=pos,
                              leave=True)
    lock = threading.Lock()
    failed = {name: 0 for name in plans}

    def done(res):
        with lock:
            if res.lc is None:
                failed[res.archive] += 1
            bar = bars.get(res.archive)
            if bar is not None:
                bar.update(1)
                if failed[res.archive]:
                    bar.set_postfix(failed=failed[res.archive])

    results = []
    try:
        if executor is not None:
            futures = [executor.submit(run_batch, archive, batch, runtime)
                       for archive, batches in plans.values() for batch in batches]
            for fut in futures:
                res = fut.result()
                done(res)
                results.append(res)
            results.sort(key=lambda r: (r.archive, r.index))
            return results
        pools = {}
        futures = []
        budget = max(1, int(max_workers))
        for name, (archive, batches) in plans.items():
            workers = max(1, min(archive.max_concurrency, budget, len(batches) or 1))
            pools[name] = cf.ThreadPoolExecutor(workers, thread_name_prefix=name)
        # Interleave submissions so every archive starts at once.
        queues = [[(name, archive, b) for b in batches]
                  for name, (archive, batches) in plans.items()]
        for row in _round_robin(queues):
            name, archive, batch = row
            futures.append(pools[name].submit(run_batch, archive, batch, runtime))
        for fut in cf.as_completed(futures):
            res = fut.result()
            done(res)
            results.append(res)
        for pool in pools.values():
            pool.shutdown()
    finally:
        for bar in bars.values():
            bar.close()
    results.sort(key=lambda r: (r.archive, r.index))
    return results


def _round_robin(queues):
    from collections import deque

    queues = [deque(q) for q in queues]
    while any(queues):
        for q in queues:
            if q:
                yield q.popleft()


def _write_manifest(folder, names, sample):
    path = Path(folder) / "manifest.json"
    info = {"archives": names, "n_targets": len(sample),
            "objectids": [int(i) for i in sample.objectid[:5]]}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("n_targets") != info["n_targets"]:
            log.warning(f"checkpoint folder {folder} was made for {old.get('n_targets')} "
                        f"targets, this run has {info['n_targets']}; finished batches "
                        "are reused only where the targets match exactly")
    _atomic_write(path, json.dumps(info).encode())
