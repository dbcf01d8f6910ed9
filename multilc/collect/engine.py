"""The collection engine: plan batches, run them, gather results and failures.

``collect(targets, archives)`` turns the targets into a
`~multilc.samples.Sample`, asks each archive for its plan (a list of
picklable `~multilc.collect.api.Batch`), and runs every batch through
`run_batch`, which adds, around the archive's own ``query``/``parse``:

* a data-only response cache on disk keyed by the request (archive,
  settings, targets, options), verified on every load
  (`multilc.collect.cache`), and an offline mode that only reads it;
* retries of transient failures with exponential backoff and jitter,
  honouring ``Retry-After`` (capped by ``conf.retry_after_max``), one retry
  of an HTML page where data was expected, no retry of a host name that does
  not resolve;
* verified checkpoints: each finished batch is written to the checkpoint
  folder (or the streamed output dataset) as it completes, and a rerun with
  the same folder skips it (`multilc.collect.checkpoint`).

Archives run concurrently (one thread pool each, sized by the archive's
concurrency setting); with ``executor=`` the batches go to any executor with
``submit`` (a `concurrent.futures` pool or a ``dask.distributed.Client``),
since a batch and `run_batch` are plain picklable objects.  With
``output=`` each batch's light curve is written where the batch ran and only
the report travels back (`multilc.collect.output`).
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import math
import numbers
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy import log

from multilc.collect.api import (ARCHIVES, Failure, HTMLPageError, ParseResult,
                                 dns_failure, get_archive, scrub, setting)
from multilc.collect.cache import (CacheEntryError, ResponseCache, UnsupportedResponse,
                                   atomic_write)
from multilc.collect.checkpoint import CheckpointStore
from multilc.errors import InputError, MultilcError, require
from multilc.lightcurve import MultiBandLightCurve

__all__ = ["collect", "run_batch", "Runtime", "BatchResult", "CollectionReport",
           "default_cache_dir"]


#: The engine's wait between retries (a name of its own so tests can record it).
_sleep = time.sleep


# --------------------------------------------------------------------------- settings
def default_cache_dir():
    """The response cache folder: ``$MULTILC_CACHE_DIR``, ``conf.cache_dir`` or
    the user cache directory."""
    from multilc import conf

    configured = setting(conf, "cache_dir")
    if configured:
        return Path(configured)
    platformdirs = require("platformdirs", "archives",
                           "the response cache folder (unless MULTILC_CACHE_DIR is set)")
    return Path(platformdirs.user_cache_dir("multilc"))


def _check_number(name, value, *, minimum=0.0, strict=False, integer=False, unit=""):
    """*value* as float/int, or InputError naming the setting."""
    what = f"{name}" + (f" [{unit}]" if unit else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "an integer" if integer else "a number"
        raise InputError(f"{what} must be {kind}, got {value!r}")
    if integer:
        if not isinstance(value, numbers.Integral) and not float(value).is_integer():
            raise InputError(f"{what} must be an integer, got {value!r}")
        value = int(value)
    elif not math.isfinite(float(value)):
        raise InputError(f"{what} must be finite, got {value!r}")
    if value < minimum or (strict and value <= minimum):
        rel = "greater than" if strict else "at least"
        raise InputError(f"{what} must be {rel} {minimum:g}, got {value!r}")
    return value if integer else float(value)


@dataclasses.dataclass
class Runtime:
    """Engine settings for one run (picklable; shipped with every batch).

    Raises `~multilc.errors.InputError` naming the setting when a value is
    out of range (timeout not positive, retries negative or not an integer,
    a negative backoff).
    """

    cache_dir: str | None
    use_cache: bool = True
    offline: bool = False
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 60.0
    checkpoint_dir: str | None = None
    retry_after_max: float = 120.0
    output_dir: str | None = None

    def __post_init__(self):
        self.timeout = _check_number("timeout", self.timeout, strict=True, unit="s")
        self.retries = _check_number("retries", self.retries, integer=True)
        self.backoff = _check_number("backoff", self.backoff, unit="s")
        self.backoff_max = _check_number("backoff_max", self.backoff_max, unit="s")
        self.retry_after_max = _check_number("retry_after_max", self.retry_after_max,
                                             unit="s")

    @classmethod
    def from_conf(cls, **overrides):
        from multilc import conf

        values = {name: setting(conf, name) for name in
                  ("timeout", "retries", "backoff", "backoff_max", "offline",
                   "retry_after_max")}
        values["use_cache"] = setting(conf, "cache")
        values["cache_dir"] = None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["cache_dir"] is None:
            values["cache_dir"] = str(default_cache_dir())
        return cls(**values)


@dataclasses.dataclass
class BatchResult:
    """Outcome of one batch.

    ``lc`` is None when the batch failed, and also when its light curve was
    written to the streamed output (then ``part`` is the file and ``rows``
    its number of measurements).
    """

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
    warnings: list = dataclasses.field(default_factory=list)
    part: str | None = None
    rows: int = 0

    @property
    def failed(self):
        """True when the batch produced no light curve."""
        return self.lc is None and self.part is None


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
    warnings : list of str
        Things the engine repaired on its way (a damaged cache entry or
        checkpoint removed and fetched again, a response not cached).
    output : str or None
        The streamed output dataset, when ``collect(output=...)`` was used.
    """

    failures: list = dataclasses.field(default_factory=list)
    dropped: dict = dataclasses.field(default_factory=dict)
    requests: dict = dataclasses.field(default_factory=dict)
    batches: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    warnings: list = dataclasses.field(default_factory=list)
    output: str | None = None

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

    def to_dict(self):
        """The report as plain JSON-ready data (credentials scrubbed)."""
        out = dataclasses.asdict(self)
        out["failures"] = [f.to_dict() for f in self.failures]
        return json.loads(scrub(json.dumps(out)))

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
        if self.output:
            lines.append(f"output: {self.output}")
        return scrub("\n".join(lines))


# --------------------------------------------------------------------------- one batch
def _chain(exc):
    """*exc* and the exceptions it wraps (cause, context, pyvo's ``cause``)."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__, getattr(e, "cause", None)])


def _classify(exc):
    """True if *exc* is worth retrying.

    A host name that does not resolve never is (the network is down or the
    name is wrong; retrying only delays the message).
    """
    if getattr(exc, "dns", False) or dns_failure(exc) is not None:
        return False
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


def _retry_after(exc):
    """Seconds a server asked to wait (``Retry-After``) anywhere in *exc*'s chain."""
    from multilc.collect.api import parse_retry_after

    for e in _chain(exc):
        value = getattr(e, "retry_after", None)
        if value is not None:
            return float(value)
        response = getattr(e, "response", None)
        headers = getattr(response, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            value = parse_retry_after(headers.get("Retry-After"))
            if value is not None:
                return value
    return None


def _html_page(exc):
    for e in _chain(exc):
        if isinstance(e, HTMLPageError):
            return e
    return None


def run_batch(archive, batch, runtime):
    """Run one batch: checkpoint, cache, query with retries, parse.

    Never raises for archive, cache or checkpoint problems: they come back as
    failures (or warnings) in the `BatchResult`, so the other batches'
    results survive.

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
    ids = [int(i) for i in batch.objectid]
    try:
        key = batch.key(archive.settings())
    except Exception as exc:  # noqa: BLE001 - e.g. a setting that does not parse
        return BatchResult(archive.name, batch.index, "", ids, None, [Failure(
            archive.name, ids, type(exc).__name__,
            _message(archive, batch, exc, what="could not prepare the request"))], {})
    result = BatchResult(archive.name, batch.index, key, ids, None, [], {})
    try:
        _run_batch(archive, batch, runtime, result)
    except Exception as exc:  # noqa: BLE001 - the last line of defence, never lost
        result.lc = None
        result.part = None
        result.failures.append(Failure(archive.name, ids, type(exc).__name__,
                                       _message(archive, batch, exc, what="failed"),
                                       False, max(1, result.requests)))
    result.seconds = time.monotonic() - start
    return result


def _incomplete(raw):
    """True for an answer a reader marked as missing some targets' parts.

    Readers of per-target services put ``"incomplete": True`` in their answer
    when some targets failed (after the reader's own retries) while others
    were answered; such an answer is used but not cached, so that a rerun
    asks again for the targets that failed.
    """
    return isinstance(raw, dict) and bool(raw.get("incomplete"))


def _store(runtime):
    if runtime.output_dir:
        return CheckpointStore(runtime.output_dir, "output")
    if runtime.checkpoint_dir:
        return CheckpointStore(runtime.checkpoint_dir, "checkpoint")
    return None


def _warn(result, text):
    text = scrub(text)
    result.warnings.append(text)
    log.warning(text)


def _run_batch(archive, batch, runtime, result):
    name, key, ids = archive.name, result.key, result.objectids
    store = _store(runtime)
    if store is not None:
        try:
            done = store.load(name, key, ids, read=runtime.output_dir is None)
        except CacheEntryError as exc:
            _warn(result, f"{name}: {exc}; running {batch.describe()} again")
            done = None
        if done is not None:
            result.lc = done["lc"]
            if runtime.output_dir:
                result.part = str(done["path"])
            result.dropped = done["dropped"]
            result.failures = done["failures"]
            result.from_checkpoint = True
            return

    cache = ResponseCache(runtime.cache_dir) if runtime.cache_dir else None
    raw = None
    if cache is not None and (runtime.use_cache or runtime.offline):
        try:
            raw = cache.load(name, key)
        except CacheEntryError as exc:
            _warn(result, f"{name}: {exc}; fetching it again")
        except OSError as exc:  # e.g. a lock that cannot be taken
            _warn(result, f"{name}: response cache unusable ({exc}); not using it")
        result.from_cache = raw is not None
    for _round in range(2):
        if raw is None:
            if runtime.offline:
                what = "no usable" if result.warnings else "no"
                result.failures.append(Failure(
                    name, ids, "OfflineCacheMiss",
                    f"{name}: offline mode and {what} cached response for "
                    f"{batch.describe()}", False, 0))
                return
            raw = _fetch(archive, batch, runtime, result)
            if raw is None:
                return
            if cache is not None and runtime.use_cache and not _incomplete(raw):
                try:
                    cache.store(name, key, raw)
                except UnsupportedResponse as exc:
                    _warn(result, f"{name}: response not cached: it holds a {exc}, "
                                  "which the data-only cache does not store")
                except OSError as exc:
                    _warn(result, f"{name}: could not cache the response: {exc}")
        try:
            parsed = archive.parse(raw, batch)
            if isinstance(parsed, MultiBandLightCurve):
                parsed = ParseResult(parsed)
            if not isinstance(parsed, ParseResult) or \
                    not isinstance(parsed.lc, MultiBandLightCurve):
                raise TypeError(f"parse returned {type(parsed).__name__}, not a "
                                "ParseResult holding a MultiBandLightCurve")
        except Exception as exc:  # noqa: BLE001 - any parse error is this batch's failure
            if result.from_cache:
                # A response kept from an earlier run that no longer parses (a
                # damaged file, a changed reader): drop it and ask again, once.
                _warn(result, f"{name}: the cached response for {batch.describe()} "
                              f"could not be parsed ({type(exc).__name__}: {exc}); "
                              "deleted, fetching it again")
                _delete(cache, name, key)
                raw, result.from_cache = None, False
                continue
            result.failures.append(Failure(name, ids, type(exc).__name__,
                                           _message(archive, batch, exc, parsing=True),
                                           False, result.requests))
            if runtime.use_cache:
                _delete(cache, name, key)  # do not keep a response we cannot read
            return
        break
    # Parts on disk carry their targets' labels and positions; in memory this
    # is done once for the whole result (`_with_all_targets`).
    lc = _with_batch_targets(parsed.lc, batch) if store is not None else parsed.lc
    result.dropped = {str(k): int(v) for k, v in dict(parsed.dropped).items()}
    result.failures.extend(parsed.failures)
    if store is not None:
        try:
            path = store.save(name, key, ids, lc, dropped=result.dropped,
                              failures=result.failures, requests=result.requests)
        except Exception as exc:  # noqa: BLE001
            if runtime.output_dir:
                raise  # the result has nowhere else to go: a failure of the batch
            _warn(result, f"{name}: could not write the checkpoint of "
                          f"{batch.describe()}: {type(exc).__name__}: {exc}")
        else:
            if runtime.output_dir:
                result.part, result.rows = str(path), len(lc)
                return
    result.lc = lc


def _delete(cache, name, key):
    if cache is None:
        return
    try:
        cache.delete(name, key)
    except OSError:  # pragma: no cover - a read-only cache folder
        pass


def _fetch(archive, batch, runtime, result):
    """``archive.query(batch)`` with retries; None (and a failure) if it fails."""
    archive.timeout = runtime.timeout
    # Readers that retry target by target inside one batch (run_per_target)
    # follow the run's settings too.
    archive.retries, archive.backoff = runtime.retries, runtime.backoff
    archive.backoff_max = runtime.backoff_max
    attempt = 0
    html_pages = 0
    while True:
        attempt += 1
        result.requests += 1
        try:
            return archive.query(batch)
        except Exception as exc:  # noqa: BLE001 - classified, reported, never lost
            transient = _classify(exc)
            page = _html_page(exc)
            message = None
            host = dns_failure(exc)
            if host is not None and "cannot resolve" not in str(exc):
                # one short line: the host once, the targets; the chained
                # exception keeps the client's own words for --debug
                message = (f"{archive.name}: cannot resolve {host}: no network? (query for "
                           f"{batch.describe()})")
            if page is not None:
                html_pages += 1
                if html_pages >= 2:  # an HTML page twice: not a blip
                    transient = False
                    message = f"{page}; the same again on retry, so not retried further"
            exhausted = getattr(exc, "retries_exhausted", False)
            if transient and attempt <= runtime.retries and not exhausted:
                delay = min(runtime.backoff_max, runtime.backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # jitter
                asked = _retry_after(exc)
                if asked is not None:
                    delay = max(delay, min(asked, runtime.retry_after_max))
                log.debug(scrub(f"{archive.name}: {exc}; retry {attempt} in {delay:.2f} s"))
                _sleep(delay)
                continue
            result.failures.append(Failure(
                archive.name, result.objectids, type(exc).__name__,
                message or _message(archive, batch, exc), transient,
                getattr(exc, "attempts", attempt) if exhausted else attempt))
            return None


def _message(archive, batch, exc, parsing=False, what=None):
    text = scrub(str(exc))
    if isinstance(exc, MultilcError) and archive.name in text and (
            "target" in text or "objectid" in text):
        return text
    what = what or ("could not parse the response" if parsing else "query failed")
    return f"{archive.name}: {what} for {batch.describe()}: {type(exc).__name__}: {text}"


def _with_batch_targets(lc, batch):
    """Fill per-object metadata (label, ra, dec) of *lc* from *batch*."""
    from multilc.lightcurve import _with_object_metadata

    return _with_object_metadata(lc, np.asarray(batch.objectid, "int64"),
                                 np.asarray(batch.label, dtype=object),
                                 np.asarray(batch.ra, float), np.asarray(batch.dec, float))


# --------------------------------------------------------------------------- many batches
def _resolve_archives(archives):
    _load_archive_modules()
    if archives is None:
        raise InputError(f"archives: name the archives to collect from: one or more of "
                         f"{sorted(ARCHIVES)} or 'all'")
    if isinstance(archives, str):
        archives = [n for n, c in ARCHIVES.items() if c.in_all and
                    not n.startswith("demo")] if archives.strip() == "all" else \
            [a.strip() for a in archives.split(",") if a.strip()]
    else:
        try:
            archives = list(archives)
        except TypeError:
            raise InputError(f"archives must be a name, a comma-separated string or a "
                             f"list of names, got {archives!r}") from None
        bad = [a for a in archives if not isinstance(a, str)]
        if bad:
            raise InputError(f"archives must be names (str), got {bad!r}")
        archives = [a.strip() for a in archives]
    names = list(dict.fromkeys(a for a in archives if a))
    if not names:
        raise InputError(f"archives is empty: name one or more of {sorted(ARCHIVES)} or "
                         "'all'")
    for name in names:
        get_archive(name)
    return names


def _load_archive_modules():
    import multilc.archives  # noqa: F401  (archive modules register themselves)


def _check_sample(sample):
    """Refuse an empty sample and targets without a finite position."""
    if len(sample) == 0:
        raise InputError("targets: the sample is empty; give at least one target")
    coord = sample.coord.icrs
    ra, dec = np.atleast_1d(coord.ra.deg), np.atleast_1d(coord.dec.deg)
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        ids = np.asarray(sample.objectid)[bad]
        shown = ", ".join(str(int(i)) for i in ids[:10])
        more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
        raise InputError(f"targets: {len(ids)} target(s) without a finite position "
                         f"(NaN or infinite ra/dec): objectid {shown}{more}")


def collect(targets, archives="all", *, radius=None, options=None, cache=None,
            cache_dir=None, offline=None, checkpoint=None, output=None, progress=None,
            timeout=None, retries=None, backoff=None, max_workers=None, executor=None,
            **common):
    """Collect light curves of *targets* from *archives*.

    Parameters
    ----------
    targets : `~multilc.samples.Sample`, `~astropy.coordinates.SkyCoord`, table, str
        Anything `multilc.samples.as_sample` accepts (a SkyCoord, a table
        with coordinates, object names, a sample name, a table file).
    archives : str or list of str
        Archive names, a comma-separated string, or ``"all"``.
    radius : `~astropy.units.Quantity`, optional
        Match radius for every archive (each has its own default and maximum).
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
    output : str or path, optional
        Stream the result to this folder, a partitioned parquet dataset
        (``archive=<name>/part-<batch key>.parquet``), one part per batch as
        it finishes, written where the batch runs; the driver keeps only the
        report.  The folder is also a checkpoint: a rerun skips the parts
        already written.  See `multilc.collect.output`.
    progress : bool, optional
        Progress bars (default: on when stderr is a terminal).
    timeout : float, optional
        Seconds to wait for one answer (``conf.timeout``); must be positive.
    retries : int, optional
        Retries of a transient failure (``conf.retries``); at least 0.
    backoff : float, optional
        Base of the exponential backoff [s] (``conf.backoff``); at least 0.
    max_workers : int, optional
        Most requests in flight over all archives (``conf.max_workers``).
    executor : optional
        An executor with ``submit`` (``concurrent.futures`` pool or
        ``dask.distributed.Client``) to run batches on instead of threads.
    **common
        Reader options given to every archive that accepts them.

    Returns
    -------
    `~multilc.MultiBandLightCurve` or `~multilc.collect.output.CollectedDataset`
        The light curve with a ``report`` attribute (`CollectionReport`);
        with ``output=``, a `~multilc.collect.output.CollectedDataset` (the
        folder, the report, and ``read()`` to open it with a selection).

    Raises
    ------
    multilc.errors.InputError
        Bad targets (empty, a position that is not finite), archives (none,
        unknown), radius, timeout, retries, backoff or options.  Problems of
        the archives themselves never raise: they are in ``report.failures``.
    """
    from multilc import conf
    from multilc.samples import as_sample

    started = time.monotonic()
    names = _resolve_archives(archives)
    if max_workers is not None:
        max_workers = _check_number("max_workers", max_workers, minimum=1, integer=True)
    runtime = Runtime.from_conf(cache_dir=str(cache_dir) if cache_dir else None,
                                use_cache=cache, offline=offline, timeout=timeout,
                                retries=retries, backoff=backoff,
                                checkpoint_dir=str(checkpoint) if checkpoint else None,
                                output_dir=str(output) if output else None)
    if checkpoint and output:
        log.warning("collect: output= is its own checkpoint; checkpoint= is not used "
                    "when output= is given")
        checkpoint = runtime.checkpoint_dir = None
    for what, folder in (("checkpoint", checkpoint), ("output", output)):
        if folder and Path(folder).exists() and not Path(folder).is_dir():
            raise InputError(f"{what}={str(folder)!r} exists and is not a folder; "
                             f"{what} must name a folder (made if missing)")
    sample = as_sample(targets)
    _check_sample(sample)
    options = dict(options or {})
    unknown = set(options) - set(names)
    if unknown:
        raise InputError(f"options given for archives not collected: {sorted(unknown)}")

    report = CollectionReport(output=str(output) if output else None)
    plans = {}
    archives_used = {}
    for name in names:
        cls = get_archive(name)
        kwargs = {k: v for k, v in common.items()
                  if k in cls.default_options or k in ("chunk_size", "concurrency")}
        if radius is not None:
            kwargs["radius"] = radius
        kwargs.update(options.get(name, {}))
        archive = cls(**kwargs)  # option errors are the user's: they raise
        archive.freeze_settings()
        archives_used[name] = archive
        try:
            batches = archive.plan(sample)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a catalog that cannot be opened
            ids = [int(i) for i in sample.objectid]
            report.failures.append(Failure(
                name, ids, type(exc).__name__,
                f"{name}: could not plan the requests for "
                f"{len(ids)} targets: {type(exc).__name__}: {scrub(str(exc))}",
                _classify(exc), 1))
            batches = []
        plans[name] = (archive, batches)
        report.batches[name] = {"total": len(batches), "cached": 0, "resumed": 0,
                                "failed": 0 if batches else 1}
    for folder, manifest in ((runtime.checkpoint_dir, "manifest.json"),
                             (runtime.output_dir, "_manifest.json")):
        if folder:
            _write_manifest(folder, manifest, names, sample)
    if runtime.output_dir:
        from multilc.collect.output import start_output

        start_output(runtime.output_dir)
    show = _show_progress(progress, conf)
    try:
        results = _run_plans(plans, runtime, show, executor,
                             max_workers or setting(conf, "max_workers"))
    finally:
        for archive, _ in plans.values():
            archive.close_sessions()
    pieces = []
    parts = {}
    for res in results:
        if res.lc is not None:
            pieces.append(res.lc)
        if res.part is not None:
            parts.setdefault(res.archive, []).append(res.part)
        report.failures.extend(res.failures)
        report.warnings.extend(res.warnings)
        report.requests[res.archive] = report.requests.get(res.archive, 0) + res.requests
        drops = report.dropped.setdefault(res.archive, {})
        for reason, count in res.dropped.items():
            drops[reason] = drops.get(reason, 0) + int(count)
        b = report.batches[res.archive]
        b["cached"] += res.from_cache
        b["resumed"] += res.from_checkpoint
        b["failed"] += res.failed
    report.seconds = time.monotonic() - started
    for f in report.failures:
        log.warning(f.message)
    if runtime.output_dir:
        from multilc.collect.output import CollectedDataset, finish_output

        try:
            finish_output(runtime.output_dir, report, parts, sample,
                          targets=_targets_lightcurve(sample),
                          meta=_provenance(plans, sample))
        except OSError as exc:  # the parts are written; keep the report
            report.warnings.append(scrub(f"could not write the dataset index in "
                                         f"{runtime.output_dir}: {exc}"))
            log.warning(report.warnings[-1])
        return CollectedDataset(runtime.output_dir, report)
    lc = _concat(pieces, results, report)
    # the batches' pieces are in *lc* now: let them go before the targets join
    pieces.clear()
    for res in results:
        res.lc = None
    lc = _with_all_targets(lc, sample)
    lc.meta = _provenance(plans, sample)
    lc.report = report
    return lc


def _provenance(plans, sample):
    """``lc.meta`` of a run: version, time, archives, radius, options, services."""
    from multilc.io.provenance import collection_meta

    return collection_meta([archive for archive, _ in plans.values()],
                           extra={"n_targets": len(sample)})


def _concat(pieces, results, report):
    """One light curve from the batches' pieces; a piece that cannot join the
    others (conflicting band definitions, ...) becomes a failure, not a crash."""
    if not pieces:
        return MultiBandLightCurve.empty()
    try:
        # consume: each measurement column of the pieces is freed once joined
        # (the pieces are not used again; a join that fails does so before
        # any column is taken, so the search for the culprit below still has
        # them whole)
        return MultiBandLightCurve._concat_pieces(pieces, consume=True)
    except Exception:  # noqa: BLE001 - find the culprit below
        pass
    kept = []
    for res in results:
        if res.lc is None:
            continue
        try:
            MultiBandLightCurve.concat(kept + [res.lc])
        except Exception as exc:  # noqa: BLE001
            report.failures.append(Failure(
                res.archive, res.objectids, type(exc).__name__,
                f"{res.archive}: the light curve of objectid "
                f"{', '.join(map(str, res.objectids[:10]))} could not be combined with the "
                f"other batches': {type(exc).__name__}: {scrub(str(exc))}"))
            report.batches[res.archive]["failed"] += 1
            continue
        kept.append(res.lc)
    return MultiBandLightCurve.concat(kept) if kept else MultiBandLightCurve.empty()


def _with_all_targets(lc, sample):
    """Every requested target in the object table, with the sample's metadata.

    Targets no archive returned anything for are kept (with no data), so that
    a result always says which targets were asked.  Labels, positions and
    names (a sample's ``name`` column, or names resolved with
    ``SkyCoord.from_name``) come from the sample.  The measurements are not
    copied (`multilc.lightcurve._with_object_metadata`).
    """
    from multilc.lightcurve import _with_object_metadata

    coord = sample.coord.icrs
    ids = np.asarray(sample.objectid, dtype="int64")
    if not len(ids):
        return lc
    return _with_object_metadata(lc, ids, np.asarray(sample.table["label"], dtype=object),
                                 np.asarray(coord.ra.deg, float),
                                 np.asarray(coord.dec.deg, float),
                                 name=_sample_names(sample), add=True)


def _targets_lightcurve(sample):
    """The sample's targets as a light curve with objects and no data."""
    coord = sample.coord.icrs
    return MultiBandLightCurve.from_objects(
        np.asarray(sample.objectid, dtype="int64"),
        label=np.asarray(sample.table["label"], dtype=object),
        ra=np.asarray(coord.ra.deg, float) * u.deg,
        dec=np.asarray(coord.dec.deg, float) * u.deg, name=_sample_names(sample))


def _sample_names(sample):
    """The sample's object names (its ``name`` column), or None."""
    for column in sample.colnames:
        if column.lower() in ("name", "object_name", "objname"):
            values = np.ma.filled(np.ma.asarray(sample.table[column]).astype(str), "")
            return np.array([str(v).strip() for v in values], dtype=object)
    return None


def _show_progress(progress, conf):
    """Whether to draw progress bars: as asked, or (``progress=None``) on a
    terminal when the setting allows and tqdm is installed."""
    if progress is not None:
        return bool(progress)
    import importlib.util

    return (bool(setting(conf, "progress")) and sys.stderr.isatty()
            and importlib.util.find_spec("tqdm") is not None)


def _lost(archive, batch, exc):
    """A BatchResult for a batch whose runner itself died (worker lost, ...)."""
    ids = [int(i) for i in batch.objectid]
    return BatchResult(archive.name, batch.index, "", ids, None, [Failure(
        archive.name, ids, type(exc).__name__,
        f"{archive.name}: the batch for {batch.describe()} did not come back from its "
        f"worker: {type(exc).__name__}: {scrub(str(exc))}", True, 1)], {})


def _is_dask_client(executor):
    return type(executor).__module__.startswith("distributed") and \
        hasattr(executor, "gather")


def _run_plans(plans, runtime, show, executor, max_workers):
    bars = {}
    if show:
        tqdm = require("tqdm.auto", "plot", "progress=True").tqdm

        for pos, (name, (_, batches)) in enumerate(plans.items()):
            bars[name] = tqdm(total=len(batches), desc=name, unit="batch", position=pos,
                              leave=True)
    lock = threading.Lock()
    failed = {name: 0 for name in plans}

    def done(res):
        with lock:
            if res.failed:
                failed[res.archive] += 1
            bar = bars.get(res.archive)
            if bar is not None:
                bar.update(1)
                if failed[res.archive]:
                    bar.set_postfix(failed=failed[res.archive])

    def outcome(fut, archive, batch):
        try:
            res = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker costs only its batch
            res = _lost(archive, batch, exc)
        done(res)
        return res

    results = []
    try:
        if executor is not None:
            work = [(archive, batch) for archive, batches in plans.values()
                    for batch in batches]
            if _is_dask_client(executor):
                from distributed import as_completed

                futures = {executor.submit(run_batch, a, b, runtime, pure=False): (a, b)
                           for a, b in work}
                for fut in as_completed(list(futures)):
                    results.append(outcome(fut, *futures[fut]))
                    fut.release()
            else:
                futures = {}
                for a, b in work:
                    try:
                        futures[executor.submit(run_batch, a, b, runtime)] = (a, b)
                    except Exception as exc:  # noqa: BLE001 - e.g. cannot pickle
                        results.append(_lost(a, b, exc))
                for fut in cf.as_completed(futures):
                    results.append(outcome(fut, *futures[fut]))
        else:
            pools = {}
            futures = {}
            budget = max(1, int(max_workers))
            for name, (archive, batches) in plans.items():
                workers = max(1, min(archive.concurrency_for(batches), budget,
                                     len(batches) or 1))
                pools[name] = cf.ThreadPoolExecutor(workers, thread_name_prefix=name)
            # Interleave submissions so every archive starts at once.
            queues = [[(name, archive, b) for b in batches]
                      for name, (archive, batches) in plans.items()]
            for name, archive, batch in _round_robin(queues):
                futures[pools[name].submit(run_batch, archive, batch, runtime)] = \
                    (archive, batch)
            for fut in cf.as_completed(futures):
                results.append(outcome(fut, *futures[fut]))
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


def _write_manifest(folder, filename, names, sample):
    path = Path(folder) / filename
    info = {"archives": names, "n_targets": len(sample),
            "objectids": [int(i) for i in sample.objectid[:5]]}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        try:
            old = json.loads(path.read_text())
            n_old = old.get("n_targets") if isinstance(old, dict) else None
        except (OSError, ValueError):
            n_old = None
            log.warning(f"{path} was unreadable; rewriting it")
        if n_old is not None and n_old != info["n_targets"]:
            log.warning(f"folder {folder} was made for {n_old} targets, this run has "
                        f"{info['n_targets']}; finished batches are reused only where "
                        "the targets match exactly")
    atomic_write(path, json.dumps(info).encode())
