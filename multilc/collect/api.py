"""The small API between the collection engine and the archive readers.

An archive reader subclasses `Archive` and fills in two methods:

``query(batch)``
    a batch of targets in, the archive's raw response out: text, bytes, or a
    tree of dicts/lists of plain values, NumPy arrays, astropy Tables and
    Quantities and pyarrow Tables.  The engine caches it as data only
    (`multilc.collect.cache`; never pickled), so other types are not cached.
    HTTP goes through `http_request` (``expect="csv"`` etc. refuses an HTML
    page, honours ``Retry-After`` and fails fast when a host does not resolve).
``parse(raw, batch)``
    the raw response in, a `ParseResult` (a `~multilc.MultiBandLightCurve`
    with units and times converted, counts of rows dropped by masks, and
    per-target failures) out.

Everything else (batching, concurrency, retries, timeouts, the cache,
checkpoints, progress) is the engine's business (`multilc.collect.engine`).
"""
from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import json
import math
import os
import re
import threading
import time
from typing import Any, ClassVar

import numpy as np
from astropy import units as u

from multilc.collect.cache import atomic_write, file_lock  # noqa: F401  (reader API)
from multilc.errors import InputError, MultilcError
from multilc.io.registry import _register_archive_format

__all__ = ["Archive", "Batch", "ParseResult", "Failure", "ArchiveError", "TransientError",
           "PermanentError", "register_archive", "get_archive", "ARCHIVES", "setting",
           "check_radius", "http_session", "http_request", "describe_targets", "scrub",
           "HTMLPageError", "check_not_html", "html_title", "file_lock", "atomic_write"]

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
        self.message = scrub(str(message))
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


class HTMLPageError(TransientError):
    """An HTML page (a portal's error or maintenance page) where data was expected.

    Often a short outage, so the engine retries it once; a second HTML page
    for the same batch is reported as a permanent failure quoting the page's
    ``<title>`` (`html_title`).
    """

    def __init__(self, message, *, archive=None, objectids=None, title=""):
        self.title = title
        super().__init__(message, archive=archive, objectids=objectids)


class _InputTypeError(InputError, TypeError):
    """Bad input of the wrong type (an `InputError` that is also a `TypeError`)."""


class _InputUnitsError(InputError, u.UnitsError):
    """Bad input with the wrong unit (an `InputError` that is also a `UnitsError`)."""


# --------------------------------------------------------------------------- credentials
# ``scheme://user:password@host`` (RFC 3986 section 3.2.1 userinfo) and the
# query parameters that commonly carry secrets.  Both are replaced by ``***``
# wherever multilc builds a message, a failure, a log line or a checkpoint.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_SECRET_PARAM = re.compile(
    r"(?P<name>\b(?:password|passwd|pwd|token|access_token|api_?key|apikey|secret|"
    r"signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s'\"<>]+",
    re.IGNORECASE)


def scrub(text):
    """*text* with credentials in URLs replaced by ``***``.

    ``https://user:password@host/path`` becomes ``https://***@host/path``, and
    the values of query parameters such as ``password=``, ``token=``,
    ``apikey=`` and S3 signatures become ``***``.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    if not isinstance(text, str):
        text = str(text)
    if "@" in text:
        text = _USERINFO.sub(r"\g<scheme>***@", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(r"\g<name>***", text)
    return text


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

    def __post_init__(self):
        self.message = scrub(self.message)
        self.objectids = [int(i) for i in (self.objectids or [])]

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
#: Units of engine settings, for messages about bad values.
_SETTING_UNITS = {"timeout": "seconds", "backoff": "seconds", "backoff_max": "seconds",
                  "retry_after_max": "seconds", "async_wait": "seconds"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def setting(conf, name, env_prefix=""):
    """Value of configuration item *name*, an environment variable winning.

    ``setting(heasarc.conf, "tap_url", "HEASARC")`` returns
    ``$MULTILC_HEASARC_TAP_URL`` if set, else ``heasarc.conf.tap_url``.
    The environment value is converted to the item's type.

    Raises
    ------
    multilc.errors.InputError
        The environment value does not parse as the item's type; the message
        names the variable, its value and the setting
        (``MULTILC_TIMEOUT=abc: not a number (timeout, seconds)``).
    """
    env_name = "MULTILC_" + (env_prefix + "_" if env_prefix else "") + name.upper()
    default = getattr(conf, name)
    raw = os.environ.get(env_name)
    if raw is None:
        return default
    what = name + (f", {_SETTING_UNITS[name]}" if name in _SETTING_UNITS else "")
    text = raw.strip().lower()
    if isinstance(default, bool):
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InputError(f"{env_name}={raw}: not a yes/no value ({what}); use one of "
                         f"{', '.join(_TRUE[:2])} or {', '.join(_FALSE[:2])}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{env_name}={raw}: not an integer ({what})") from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{env_name}={raw}: not a number ({what})") from None
        if not math.isfinite(value):
            raise InputError(f"{env_name}={raw}: not a finite number ({what})")
        return value
    return raw


def check_radius(radius, *, archive, name="radius", max_radius=None):
    """Return *radius* as an angle Quantity [arcsec] or raise a clear error.

    Parameters
    ----------
    radius : `~astropy.units.Quantity`
        A scalar angle, finite and positive.
    archive : str
        For the message.
    name : str
        The option's name, for the message.
    max_radius : `~astropy.units.Quantity`, optional
        The largest radius allowed (the archive's `Archive.max_radius`).

    Raises
    ------
    multilc.errors.InputError
        (also a `TypeError` or `~astropy.units.UnitsError` where that is the
        kind of mistake) naming the archive and the option.
    """
    if not isinstance(radius, u.Quantity):
        raise _InputTypeError(f"{archive}: {name} must be an angle Quantity such as "
                              f"1 * u.arcsec, got {radius!r} without a unit")
    if not radius.unit.is_equivalent(u.deg):
        raise _InputUnitsError(f"{archive}: {name} must be an angle, got {radius}")
    if not radius.isscalar:
        raise _InputTypeError(f"{archive}: {name} must be a single angle, got an array of "
                              f"shape {radius.shape}")
    if not np.isfinite(radius.value):
        raise InputError(f"{archive}: {name} must be finite, got {radius}")
    if not radius.value > 0:
        raise InputError(f"{archive}: {name} must be positive, got {radius}")
    if max_radius is not None and radius > max_radius:
        raise InputError(f"{archive}: {name} = {radius} is larger than this archive's "
                         f"maximum of {max_radius} (a cone this wide is not a light-curve "
                         "match)")
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
    #: Largest radius accepted (`check_radius`); readers whose service allows
    #: wider cones (or whose matches are error circles) override it.
    max_radius: ClassVar[u.Quantity] = 1 * u.deg
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
                                   archive=self.name, max_radius=self.max_radius)
        chunk = options.pop("chunk_size", None)
        self.chunk = _positive_int(self.name, "chunk_size", chunk) if chunk is not None \
            else self.setting_or("chunk_size", self.chunk_size)
        if self.chunk < 1:
            raise InputError(f"{self.name}: chunk_size must be at least 1")
        conc = options.pop("concurrency", None)
        self.max_concurrency = _positive_int(self.name, "concurrency", conc) \
            if conc is not None else self.setting_or("concurrency", self.concurrency)
        #: True when the caller chose the concurrency (option or setting)
        self.concurrency_chosen = conc is not None or self.max_concurrency != self.concurrency
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise _InputTypeError(f"{self.name}: unknown options {sorted(unknown)}; this reader "
                            f"takes radius, chunk_size, concurrency and "
                            f"{sorted(self.default_options) or 'nothing else'}")
        self.options = {**self.default_options, **options}
        self.timeout = None  # set by the engine before query()

    def concurrency_for(self, batches):
        """How many of *batches* the engine runs at once (threads, one run).

        `max_concurrency` (the ``concurrency`` option or setting: the polite
        limit of the archive's service).  Readers whose batches are CPU work
        rather than waiting may lower it (`multilc.archives._bulk`).

        Parameters
        ----------
        batches : list of `Batch`
            This run's batches of this archive (the plan).

        Returns
        -------
        int
        """
        return self.max_concurrency

    def session(self):
        """This thread's `requests.Session` for this archive (see `http_session`).

        Requests that one engine worker thread makes to one archive reuse
        the session's connections (HTTP keep-alive; over HTTPS the TLS
        handshake is made once per thread instead of once per request); a
        session is never used by two threads at once.  The engine closes them
        when the run ends (`close_sessions`).
        """
        sessions = self.__dict__.setdefault("_sessions", {})
        key = threading.get_ident()
        session = sessions.get(key)
        if session is None:
            session = sessions[key] = http_session(self.timeout)
        return session

    def close_sessions(self):
        """Close the sessions of `session` (their pooled connections)."""
        for session in list(self.__dict__.pop("_sessions", {}).values()):
            session.close()

    def __getstate__(self):
        # open connections stay behind when a reader goes to another process
        state = self.__dict__.copy()
        state.pop("_sessions", None)
        return state

    def check_choice(self, option, allowed):
        """Return option *option*, or raise naming the archive and the choices."""
        value = self.options[option]
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
            raise InputError(f"{self.name}: {option} must be {choices}, got {value!r}")
        return value

    def setting(self, name):
        """An endpoint/setting of this archive (environment variable first).

        After `freeze_settings` the values read then are used, so a batch
        shipped to another process or machine asks what the driver would.
        """
        frozen = self.__dict__.get("_frozen_settings")
        if frozen is not None and name in frozen:
            return frozen[name]
        return setting(self.conf, name, self.env_prefix)

    def freeze_settings(self):
        """Read every setting now and keep the values with this reader.

        The engine calls this before planning, so batches that run in worker
        processes (``executor=``) use the driver's settings, not whatever the
        worker's environment or configuration file says.
        """
        self._frozen_settings = None
        self._frozen_settings = self.settings()

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


def _positive_int(archive, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{archive}: {name} must be a positive integer, got {value!r}")
    return int(value)


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
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), ARCHIVES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownArchiveError(f"unknown archive {name!r}.{hint} Known archives: "
                                  f"{', '.join(sorted(ARCHIVES))}") from None


class UnknownArchiveError(InputError, KeyError):
    """An archive name that is not registered (also a `KeyError`)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


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


#: What `http_request` may be told to expect, with the media-type hints and
#: first bytes of each; anything but ``"html"`` refuses an HTML page.
EXPECT = ("bytes", "csv", "json", "votable", "fits", "zip", "text", "html")


def http_request(archive, batch, method, url, *, session=None, timeout=None,
                 expect=None, **kwargs):
    """Make one HTTP request and classify failures.

    Parameters
    ----------
    archive : `Archive`
        Names the archive in messages.
    batch : `Batch` or None
        Names the targets in messages.
    method, url : str
    session : `requests.Session`, optional
    timeout : float, optional
        Seconds.
    expect : str, optional
        What the answer should be: ``"csv"``, ``"json"``, ``"votable"``,
        ``"fits"``, ``"zip"``, ``"text"`` or ``"bytes"`` (anything but an
        HTML page).  A 2xx answer that is an HTML page where data was expected
        raises `HTMLPageError` (see `check_not_html`); the engine retries it
        once.  None or ``"html"``: no check (the reader checks the body).
    **kwargs
        Passed to `requests.Session.request`.

    Returns
    -------
    `requests.Response`
        On 2xx.

    Raises
    ------
    TransientError
        Timeouts, connection resets, truncated bodies, HTTP 429 and 5xx.  For
        429/503 with a ``Retry-After`` header (RFC 9110 section 10.2.3:
        delay-seconds or an HTTP-date) the wait asked for is in the error's
        ``retry_after`` attribute [s], which the engine honours.
    HTMLPageError
        An HTML page with status 2xx where *expect* is data.
    PermanentError
        Other HTTP errors, and a host name that does not resolve (``cannot
        resolve HOST: no network?``; never retried).
    """
    import requests

    if expect is not None and expect not in EXPECT:
        raise ValueError(f"http_request: expect must be one of {EXPECT}, got {expect!r}")
    if session is not None:
        sess = session
    elif isinstance(archive, Archive):
        sess = archive.session()
    else:
        sess = http_session(timeout)
    try:
        resp = sess.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:
        raise archive.error(f"no answer from {url} within {timeout} s", batch,
                            transient=True) from exc
    except requests.ConnectionError as exc:
        host = dns_failure(exc)
        if host is not None:
            err = archive.error(f"cannot resolve {host}: no network?", batch)
            err.dns = True
            raise err from exc
        raise archive.error(f"connection to {url} failed: {exc}", batch,
                            transient=True) from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader) as exc:
        raise archive.error(f"cannot request {url}: {exc} (check the archive's URL "
                            "setting)", batch) from exc
    except requests.RequestException as exc:  # truncated body, bad chunking, ...
        raise archive.error(f"broken response from {url}: {exc}", batch,
                            transient=True) from exc
    if resp.status_code == 429 or resp.status_code >= 500:
        err = archive.error(f"HTTP {resp.status_code} from {url}", batch, transient=True)
        err.retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        raise err
    if resp.status_code >= 400:
        snippet = resp.text[:200].strip().replace("\n", " ")
        raise archive.error(f"HTTP {resp.status_code} from {url}: {snippet}", batch)
    if expect not in (None, "html"):
        check_not_html(archive, batch, resp.content, resp.headers.get("Content-Type"),
                       url=url, expect=expect)
    return resp


def parse_retry_after(value, now=None):
    """Seconds to wait from a ``Retry-After`` header value, or None.

    Parameters
    ----------
    value : str or None
        delay-seconds (``"120"``) or an HTTP-date (``"Fri, 31 Dec 1999
        23:59:59 GMT"``), RFC 9110 section 10.2.3.
    now : float, optional
        Current POSIX time (for tests).

    Returns
    -------
    float or None
        Seconds, at least 0; None when absent or unreadable.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def dns_failure(exc):
    """The host name whose resolution failed somewhere in *exc*'s chain, or None.

    Looks for `socket.gaierror` and urllib3's ``NameResolutionError`` among the
    causes, contexts and ``args`` of *exc* (requests wraps them in
    ``ConnectionError(MaxRetryError(NameResolutionError(...)))``).
    """
    import socket

    seen = set()
    todo = [exc]
    host = None
    found = False
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        if type(e).__name__ == "NameResolutionError" or isinstance(e, socket.gaierror):
            found = True
        host = host or getattr(e, "host", None) or getattr(getattr(e, "pool", None),
                                                           "host", None)
        for attr in ("__cause__", "__context__", "reason", "cause"):
            todo.append(getattr(e, attr, None))
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    if not found:
        return None
    if not host:
        match = re.search(r"host='([^']+)'", str(exc))
        host = match.group(1) if match else "the archive's host"
    return str(host)


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def html_title(body):
    """The ``<title>`` of an HTML page (str, at most 120 characters) or ``""``."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    match = _TITLE.search(body[:65536])
    if not match:
        return ""
    title = " ".join(match.group(1).decode("utf-8", "replace").split())
    return title[:120]


def looks_like_html(body, content_type=None):
    """True when *body* is an HTML page.

    Decided on the body, not on ``Content-Type`` alone (some services label
    CSV as ``text/html``): an HTML doctype or ``<html>``/``<head>``/``<body>``
    near the start, or a body starting with ``<`` labelled ``text/html``.
    """
    if isinstance(body, str):
        body = body[:1024].encode("utf-8", "replace")
    head = bytes(body[:1024]).lstrip().lower()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if not head.startswith(b"<"):
        return False
    if head.startswith((b"<!doctype html", b"<html")):
        return True
    if any(tag in head for tag in (b"<html", b"<head>", b"<body")):
        return True
    return bool(content_type) and "text/html" in content_type.lower()


def check_not_html(archive, batch, body, content_type=None, *, url="", expect="data"):
    """Raise `HTMLPageError` if *body* is an HTML page where data was expected.

    Readers that get their answer some other way than `http_request` (pyvo,
    astroquery) call this on the raw body.  The engine retries the first such
    page of a batch and reports the second as permanent, with the page's title.
    """
    if not looks_like_html(body, content_type):
        return
    title = html_title(body)
    named = f" titled {title!r}" if title else ""
    where = f"{url} " if url else ""
    raise HTMLPageError(f"{where}answered with an HTML page{named} where {expect} was "
                        "expected", archive=archive.name,
                        objectids=batch.objectid.tolist() if batch is not None else None,
                        title=title)
