"""The small API between the collection engine and the archive readers.

An archive reader subclasses `Archive` and fills in two methods:

``query(batch)``
    a batch of targets in, the archive's raw response out (bytes, text, a
    VOTable, parquet rows...).  It must be picklable: the engine caches it.
``parse(raw, batch)``
    the raw response in, a `ParseResult` (a `~multilc.MultiBandLightCurve`
    with units and times converted, counts of rows dropped by masks, and
    per-target failures) out.

Everything else (batching, concurrency, retries, timeouts, the cache,
checkpoints, progress) is the engine's business (`multilc.collect.engine`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, ClassVar

import numpy as np
from astropy import units as u

from multilc.errors import MultilcError
from multilc.io.registry import _register_archive_format

__all__ = ["Archive", "Batch", "ParseResult", "Failure", "ArchiveError", "TransientError",
           "PermanentError", "register_archive", "get_archive", "ARCHIVES", "setting",
           "check_radius", "http_session", "http_request", "describe_targets"]

#: Registered archive classes by name.
ARCHIVES: dict[str, type[Archive]] = {}


# --------------------------------------------------------------------------- errors
class ArchiveError(MultilcError):
    """A failure talking to an archive; names the archive and the targets.

    Parameters
    ----------
    message : str
        What was wrong.
    archive : str, optional
    objectids : sequence of int, optional
        The targets concerned (all targets of the batch if unknown).
    """

    transient = False

    def __init__(self, message, *, archive=None, objectids=None):
        self.archive = archive
        self.objectids = list(objectids) if objectids is not None else None
        self.message = message
        super().__init__(self._text())

    def _text(self):
        where = f"{self.archive}: " if self.archive else ""
        who = ""
        if self.objectids:
            shown = ", ".join(str(i) for i in self.objectids[:10])
            more = f" and {len(self.objectids) - 10} more" if len(self.objectids) > 10 else ""
            who = f" (targets {shown}{more})"
        return f"{where}{self.message}{who}"


class TransientError(ArchiveError):
    """A failure that may go away on retry (timeout, reset, HTTP 429/5xx)."""

    transient = True


class PermanentError(ArchiveError):
    """A failure that will not go away on retry (HTTP 4xx, malformed response)."""


@dataclasses.dataclass
class Failure:
    """One failed archive/batch/target, as reported by `multilc.collect`.

    Attributes
    ----------
    archive : str
    objectids : list of int
        Targets whose results are missing because of this failure.
    error_type : str
        Exception class name.
    message : str
    transient : bool
        True if retries were exhausted on a transient error.
    attempts : int
    """

    archive: str
    objectids: list
    error_type: str
    message: str
    transient: bool = False
    attempts: int = 1

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ParseResult:
    """What `Archive.parse` returns.

    Attributes
    ----------
    lc : `~multilc.MultiBandLightCurve`
    dropped : dict of str to int
        Rows removed on purpose, by reason (``"catflags & 32768"``,
        ``"no position"``, ``"psfFlux == -999"``): nothing is dropped silently.
    failures : list of `Failure`
        Per-target problems that did not stop the batch.
    """

    lc: Any
    dropped: dict = dataclasses.field(default_factory=dict)
    failures: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Batch:
    """A picklable unit of work: one archive, a chunk of targets, options.

    Attributes
    ----------
    archive : str
        Archive name.
    index : int
        Position of the batch in the archive's plan.
    objectid : numpy.ndarray of int64
    ra, dec : numpy.ndarray of float64
        Target coordinates [deg, ICRS].
    label : numpy.ndarray of str
    options : dict
        Resolved reader options (radius as a Quantity, ...).
    """

    archive: str
    index: int
    objectid: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    label: np.ndarray
    options: dict

    def __len__(self):
        return len(self.objectid)

    @property
    def coord(self):
        """Targets as a `~astropy.coordinates.SkyCoord` (ICRS)."""
        from astropy.coordinates import SkyCoord

        return SkyCoord(self.ra * u.deg, self.dec * u.deg, frame="icrs")

    def key(self, settings=None):
        """A stable hash of what this batch asks (for the cache and checkpoints)."""
        payload = {
            "archive": self.archive,
            "targets": [[int(o), round(float(r), 9), round(float(d), 9)]
                        for o, r, d in zip(self.objectid, self.ra, self.dec)],
            "options": _jsonable(self.options),
            "settings": _jsonable(settings or {}),
        }
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self):
        """Short text naming the targets, for error messages."""
        return describe_targets(self.objectid)

    def subset(self, mask):
        """A batch with only the targets where *mask* is true."""
        m = np.asarray(mask)
        return dataclasses.replace(self, objectid=self.objectid[m], ra=self.ra[m],
                                   dec=self.dec[m], label=self.label[m])


def describe_targets(objectids):
    ids = [int(i) for i in objectids]
    if len(ids) <= 5:
        return "objectid " + ", ".join(map(str, ids))
    return f"{len(ids)} targets (objectid {ids[0]} ... {ids[-1]})"


def _jsonable(obj):
    if isinstance(obj, u.Quantity):
        return [_jsonable(obj.value.tolist()), obj.unit.to_string()]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


# --------------------------------------------------------------------------- settings
def setting(conf, name, env_prefix=""):
    """Value of configuration item *name*, an environment variable winning.

    ``setting(heasarc.conf, "tap_url", "HEASARC")`` returns
    ``$MULTILC_HEASARC_TAP_URL`` if set, else ``heasarc.conf.tap_url``.
    The environment value is converted to the item's type.
    """
    env_name = "MULTILC_" + (env_prefix + "_" if env_prefix else "") + name.upper()
    default = getattr(conf, name)
    raw = os.environ.get(env_name)
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def check_radius(radius, *, archive, name="radius"):
    """Return *radius* as an angle Quantity or raise a clear error."""
    if not isinstance(radius, u.Quantity):
        raise TypeError(f"{archive}: {name} must be an angle Quantity such as "
                        f"1 * u.arcsec, got {radius!r} without a unit")
    if not radius.unit.is_equivalent(u.deg):
        raise u.UnitsError(f"{archive}: {name} must be an angle, got {radius}")
    if not np.all(radius > 0):
        raise ValueError(f"{archive}: {name} must be positive, got {radius}")
    return radius.to(u.arcsec)


# --------------------------------------------------------------------------- archives
class Archive:
    """Base class of an archive reader.

    Subclasses set the class attributes and implement `query` and `parse`.

    Parameters
    ----------
    **options
        Reader options; ``radius`` (angle Quantity) is common to all.
        Unknown options are an error.
    """

    #: Registry name, lower case (``"ztf"``, ``"heasarc.fermi_gbm"``).
    name: ClassVar[str] = ""
    #: One line for ``multilc archives``.
    description: ClassVar[str] = ""
    #: ``"photometry"`` or ``"events"``.
    returns: ClassVar[str] = "photometry"
    #: Bands (or event archive names) this reader produces.
    bands: ClassVar[tuple] = ()
    #: Default number of targets per request (1 for per-target services).
    chunk_size: ClassVar[int] = 1
    #: Default number of requests in flight for this archive.
    concurrency: ClassVar[int] = 4
    #: Default match radius.
    default_radius: ClassVar[u.Quantity] = 1 * u.arcsec
    #: Option names accepted besides ``radius``, with defaults.
    default_options: ClassVar[dict] = {}
    #: Prefix of this archive's environment variables (``MULTILC_<PREFIX>_...``).
    env_prefix: ClassVar[str] = ""
    #: The module-level ConfigNamespace holding endpoints (set by subclasses).
    conf: ClassVar[Any] = None
    #: Part of ``archives="all"``.  False for a second route to data another
    #: archive already returns (``heasarc.icecube`` repeats ``icecube``).
    in_all: ClassVar[bool] = True

    def __init__(self, **options):
        radius = options.pop("radius", None)
        self.radius = check_radius(self.default_radius if radius is None else radius,
                                   archive=self.name)
        chunk = options.pop("chunk_size", None)
        self.chunk = int(chunk) if chunk is not None else self.setting_or(
            "chunk_size", self.chunk_size)
        if self.chunk < 1:
            raise ValueError(f"{self.name}: chunk_size must be at least 1")
        conc = options.pop("concurrency", None)
        self.max_concurrency = int(conc) if conc is not None else self.setting_or(
            "concurrency", self.concurrency)
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise TypeError(f"{self.name}: unknown options {sorted(unknown)}; this reader "
                            f"takes radius, chunk_size, concurrency and "
                            f"{sorted(self.default_options) or 'nothing else'}")
        self.options = {**self.default_options, **options}
        self.timeout = None  # set by the engine before query()

    def check_choice(self, option, allowed):
        """Return option *option*, or raise naming the archive and the choices."""
        value = self.options[option]
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
            raise ValueError(f"{self.name}: {option} must be {choices}, got {value!r}")
        return value

    def setting(self, name):
        """An endpoint/setting of this archive (environment variable first)."""
        return setting(self.conf, name, self.env_prefix)

    def setting_or(self, name, default):
        if self.conf is not None and hasattr(type(self.conf), name):
            return self.setting(name)
        return default

    def settings(self):
        """Settings that change what a query returns (part of the cache key)."""
        if self.conf is None:
            return {}
        return {name: self.setting(name) for name in type(self.conf).__dict__
                if not name.startswith("_") and isinstance(
                    type(self.conf).__dict__[name], _config_item_type())}

    def batch_options(self):
        """Options sent with every batch (part of the cache key)."""
        return {"radius": self.radius, **self.options}

    def plan(self, sample):
        """Split *sample* into batches of at most ``self.chunk`` targets.

        Readers of HEALPix-partitioned catalogs override this to group
        targets by partition.
        """
        n = len(sample)
        ra = sample.coord.icrs.ra.deg
        dec = sample.coord.icrs.dec.deg
        ids = np.asarray(sample.objectid, dtype="int64")
        labels = np.asarray(sample.table["label"], dtype=str)
        opts = self.batch_options()
        return [Batch(self.name, i, ids[s:s + self.chunk], ra[s:s + self.chunk],
                      dec[s:s + self.chunk], labels[s:s + self.chunk], opts)
                for i, s in enumerate(range(0, n, self.chunk))]

    def query(self, batch):  # pragma: no cover - abstract
        """Ask the archive about *batch*; return the raw response."""
        raise NotImplementedError

    def parse(self, raw, batch):  # pragma: no cover - abstract
        """Turn the raw response into a `ParseResult`."""
        raise NotImplementedError

    def error(self, message, batch=None, *, transient=False, objectids=None):
        """Build an `ArchiveError` naming this archive and the batch's targets."""
        cls = TransientError if transient else PermanentError
        ids = objectids if objectids is not None else (
            batch.objectid.tolist() if batch is not None else None)
        return cls(message, archive=self.name, objectids=ids)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} radius={self.radius}>"


def _config_item_type():
    from astropy.config import ConfigItem

    return ConfigItem


def register_archive(cls):
    """Class decorator: register an `Archive` subclass under ``cls.name``.

    The archive becomes reachable as ``MultiBandLightCurve.read(targets,
    archive=cls.name)`` and is listed by ``read.list_formats()`` and
    ``multilc archives``.
    """
    if not cls.name or cls.name != cls.name.lower():
        raise ValueError(f"archive name must be lower case and non-empty: {cls.name!r}")
    ARCHIVES[cls.name] = cls
    from multilc.lightcurve import MultiBandLightCurve

    def read_archive(targets, **kwargs):
        from multilc.collect.engine import collect

        return collect(targets, archives=[cls.name], **kwargs)

    read_archive.__doc__ = (f"Collect light curves of targets from {cls.name}: "
                            f"{cls.description}\n\n{cls.__doc__ or ''}")
    _register_archive_format(cls.name, read_archive, MultiBandLightCurve)
    return cls


def get_archive(name):
    """The registered archive class called *name* (clear error otherwise)."""
    try:
        return ARCHIVES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, ARCHIVES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown archive {name!r}.{hint} Known archives: "
                       f"{', '.join(sorted(ARCHIVES))}") from None


# --------------------------------------------------------------------------- HTTP
def http_session(timeout=None):
    """A `requests.Session` whose requests default to *timeout* seconds.

    pyvo and astroquery accept a session; this is how the engine's timeout
    reaches their requests.
    """
    import requests

    class TimeoutSession(requests.Session):
        def request(self, method, url, **kwargs):
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    session = TimeoutSession()
    session.headers["User-Agent"] = "multilc (https://github.com/multilc)"
    return session


def http_request(archive, batch, method, url, *, session=None, timeout=None, **kwargs):
    """Make one HTTP request and classify failures.

    Returns the `requests.Response` on 2xx.  Raises `TransientError` for
    timeouts, connection errors, HTTP 429 and 5xx, and `PermanentError` for
    other HTTP errors; both name the archive and the batch's targets.
    """
    import requests

    sess = session or http_session(timeout)
    try:
        resp = sess.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:
        raise archive.error(f"no answer from {url} within {timeout} s", batch,
                            transient=True) from exc
    except requests.ConnectionError as exc:
        raise archive.error(f"connection to {url} failed: {exc}", batch,
                            transient=True) from exc
    except requests.RequestException as exc:  # truncated body, bad chunking, ...
        raise archive.error(f"broken response from {url}: {exc}", batch,
                            transient=True) from exc
    if resp.status_code == 429 or resp.status_code >= 500:
        raise archive.error(f"HTTP {resp.status_code} from {url}", batch, transient=True)
    if resp.status_code >= 400:
        snippet = resp.text[:200].strip().replace("\n", " ")
        raise archive.error(f"HTTP {resp.status_code} from {url}: {snippet}", batch)
    return resp
