"""A local HTTP server that replays archive responses and injects faults.

`ReplayServer` runs werkzeug's threaded development server on 127.0.0.1 (a
free port chosen by the operating system) in a background thread.  Tests and
benchmarks register *routes* (static bodies or handler callables), optionally
queue *faults* (HTTP errors, truncated bodies, HTML error pages, hangs,
connection resets) and add *latency*; every request is recorded so a test can
assert what a client really sent.

werkzeug is a test-extra dependency (``pip install multilc[test]``); it is
imported when this module is imported, never by the rest of multilc.
"""
from __future__ import annotations

import mimetypes
from http import HTTPStatus
import socket
import struct
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

try:
    from werkzeug.datastructures import Headers
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import Map, Rule
    from werkzeug.serving import WSGIRequestHandler, make_server
    from werkzeug.wrappers import Request, Response
except ImportError as exc:  # pragma: no cover - exercised only without test extras
    raise ImportError(
        "multilc.testing needs werkzeug (a test-extra dependency); "
        "install it with `pip install multilc[test]`"
    ) from exc

__all__ = ["Fault", "RecordedRequest", "Reply", "ReplayServer"]

#: Media type of VOTable documents (VOTable 1.4 recommendation, section 1.3;
#: also the TAPRegExt "votable" output format).
VOTABLE_MEDIA_TYPE = "application/x-votable+xml"

_HOST = "127.0.0.1"
# How often the serving loop checks for a shutdown request, in seconds.  The
# standard library default (0.5 s) would make every ``stop()`` that slow.
_POLL_INTERVAL_S = 0.02


class Reply(NamedTuple):
    """A response returned by a route handler.

    A handler may also return a plain ``(status, headers, body)`` tuple, a
    werkzeug ``Response``, or just ``bytes``/``str`` (status 200).

    Attributes
    ----------
    status : int
        HTTP status code.
    headers : dict
        Extra response headers (``Content-Type`` included, if wanted).
    body : bytes or str
        Response body; `str` is encoded as UTF-8.
    """

    status: int
    headers: dict
    body: bytes | str


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it.

    Attributes
    ----------
    method : str
        HTTP method (``"GET"``, ``"POST"``, ...).
    path : str
        URL path without the query string, e.g. ``"/tap/sync"``.
    args : dict of str to str
        Query-string parameters (first value of a repeated name).
    form : dict of str to str
        Form fields of an urlencoded or multipart body (first value).
    files : dict of str to bytes
        Multipart file parts, by part name.
    headers : werkzeug.datastructures.Headers
        Request headers (case-insensitive look-up).
    body : bytes
        The raw request body.
    time : float
        Arrival time from `time.monotonic`, in seconds (compare two requests
        to measure a client's back-off).
    path_params : dict of str to str
        Values of ``<name>`` placeholders in the matched route pattern.
    query_string : str
        The raw query string.
    """

    method: str
    path: str
    args: dict
    form: dict
    files: dict
    headers: Headers
    body: bytes
    time: float
    path_params: dict = field(default_factory=dict)
    query_string: str = ""


class Fault:
    """A misbehaviour served instead of (or before) a route's normal response.

    Build faults with the class methods; queue them with
    ``ReplayServer.faults``.  Each queued fault is used for exactly one request.
    """

    def __init__(self, kind: str, **options: Any):
        self.kind = kind
        self.options = options

    def __repr__(self) -> str:
        opts = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"Fault.{self.kind}({opts})"

    @classmethod
    def status(cls, code: int, *, retry_after: int | str | None = None,
               body: bytes | str | None = None) -> "Fault":
        """An HTTP error status (e.g. 429, 500, 503) with a short text body.

        Parameters
        ----------
        code : int
            HTTP status code.
        retry_after : int or str, optional
            Value of the ``Retry-After`` header: delay in seconds (int) or an
            HTTP date (str), as RFC 9110 section 10.2.3 allows.
        body : bytes or str, optional
            Response body; a one-line plain-text message by default.
        """
        return cls("status", code=int(code), retry_after=retry_after, body=body)

    @classmethod
    def truncated(cls, *, fraction: float = 0.5,
                  declare_full_length: bool = True) -> "Fault":
        """The route's normal body cut short.

        Parameters
        ----------
        fraction : float
            Fraction of the body (in bytes) that is sent, 0 <= fraction < 1.
        declare_full_length : bool
            If True the ``Content-Length`` header announces the full body and
            the connection closes early, so HTTP clients see an incomplete
            read.  If False the header matches the cut body, so the transport
            succeeds and only parsing the (e.g. half a VOTable) body fails.
        """
        if not 0 <= fraction < 1:
            raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
        return cls("truncated", fraction=float(fraction),
                   declare_full_length=bool(declare_full_length))

    @classmethod
    def html_error(cls, code: int = 502) -> "Fault":
        """An HTML error page (as proxies send) where data was expected.

        Parameters
        ----------
        code : int
            HTTP status of the page; 200 imitates a portal that answers
            "successfully" with an HTML maintenance page.
        """
        return cls("html_error", code=int(code))

    @classmethod
    def hang(cls, seconds: float) -> "Fault":
        """Wait ``seconds`` (longer than the client's timeout), then respond
        normally.  Stopping the server ends the wait early."""
        return cls("hang", seconds=float(seconds))

    @classmethod
    def reset(cls) -> "Fault":
        """Close the connection without sending any response (TCP reset)."""
        return cls("reset")


@dataclass
class _Route:
    rule: str
    method: str | None
    response: bytes | str | Path | None
    handler: Callable[[RecordedRequest], Any] | None
    status: int
    content_type: str | None
    headers: dict
    latency: float


class _ResetConnection(ConnectionAbortedError):
    """Raised inside the WSGI app to drop the connection without a reply."""


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, quiet, and able to drop a connection on purpose."""

    def connection_dropped(self, error, environ=None):
        # werkzeug calls this when the client went away, and when our app
        # raises _ResetConnection.  Either way nothing more is sent on this
        # connection: without this the HTTP/1.1 handler would wait for a
        # next request line that never comes.
        self.close_connection = True
        if isinstance(error, _ResetConnection):
            # SO_LINGER with a zero timeout makes close() send RST, not FIN.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def log_request(self, code="-", size="-"):
        """Access logs are not printed; ``ReplayServer.requests`` has them."""

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        """Low-level server messages are not printed."""


class ReplayServer:
    """A threaded HTTP server on 127.0.0.1 serving canned and faulty replies.

    Parameters
    ----------
    latency : float, optional
        Seconds added before every response (all routes); settable later via
        the ``latency`` attribute.  Benchmarks use 0.1 s to imitate an archive.

    Examples
    --------
    >>> with ReplayServer() as server:              # doctest: +SKIP
    ...     server.route("/data.csv", "a,b\\n1,2\\n", content_type="text/csv")
    ...     server.faults("/data.csv", [Fault.status(503, retry_after=1)])
    ...     requests.get(server.url + "/data.csv").status_code  # 503
    ...     requests.get(server.url + "/data.csv").text         # "a,b\\n1,2\\n"
    """

    def __init__(self, *, latency: float = 0.0):
        self.latency = float(latency)
        self._lock = threading.RLock()
        self._routes: dict[tuple[str, str | None], _Route] = {}
        self._url_map: Map | None = None
        self._faults: dict[str, list[Fault]] = {}
        self._requests: list[RecordedRequest] = []
        self._errors: list[tuple[RecordedRequest, str]] = []
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------
    def start(self) -> "ReplayServer":
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(_HOST, 0, self._wsgi_app, threaded=True,
                                   request_handler=_RequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=f"ReplayServer:{self._server.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests and close the socket."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on (server must be started)."""
        if self._server is None:
            raise RuntimeError("ReplayServer is not running; call start() first")
        return self._server.port

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{_HOST}:{self.port}"

    def url_for(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.url + "/" + path.lstrip("/")

    # -- configuration ------------------------------------------------------
    def route(self, path: str, response: bytes | str | Path | None = None, *,
              method: str | None = "GET",
              handler: Callable[[RecordedRequest], Any] | None = None,
              status: int = 200, content_type: str | None = None,
              headers: dict | None = None, latency: float = 0.0) -> None:
        """Serve ``path`` with a static body or a handler.

        Parameters
        ----------
        path : str
            URL path; werkzeug rule placeholders such as
            ``"/tap/async/<job_id>"`` match one path segment and arrive in
            ``RecordedRequest.path_params``.
        response : bytes, str or pathlib.Path, optional
            Static body; a `~pathlib.Path` is read at request time.
        method : str or None
            HTTP method to answer; None answers any method.
        handler : callable, optional
            ``handler(request: RecordedRequest)`` returning a `Reply`, a
            ``(status, headers, body)`` tuple, a werkzeug ``Response``, or
            ``bytes``/``str``.  Exactly one of ``response``/``handler``.
        status : int
            Status of a static response.
        content_type : str, optional
            Content type of a static response; guessed from a file suffix,
            else ``text/plain; charset=utf-8`` for `str` and
            ``application/octet-stream`` for `bytes`.
        headers : dict, optional
            Extra headers of a static response.
        latency : float
            Seconds added to this route's responses, on top of ``latency``.

        Registering the same ``path`` and ``method`` again replaces the route.
        """
        if (response is None) == (handler is None):
            raise ValueError(
                f"route {path!r}: give exactly one of `response` or `handler`")
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/', got {path!r}")
        method = method.upper() if method else None
        new = _Route(path, method, response, handler, int(status), content_type,
                     dict(headers or {}), float(latency))
        with self._lock:
            self._routes[(path, method)] = new
            self._url_map = None

    def faults(self, path: str | None, faults: list[Fault]) -> None:
        """Queue faults served, in order, before the normal responses.

        Parameters
        ----------
        path : str or None
            Either a concrete request path (``"/tap/sync"``), a route pattern
            as given to ``route`` (``"/tap/async/<job_id>"``), or None for the
            next requests to any path.  A concrete path's queue is used
            first, then the pattern's, then the global one.
        faults : list of Fault
            Each fault answers one request, then the next takes over.
        """
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"expected Fault instances, got {fault!r}")
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def pending_faults(self, path: str | None = None) -> int:
        """Number of queued faults not yet served for ``path``."""
        with self._lock:
            return len(self._faults.get(path, []))

    # -- inspection ---------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[tuple[RecordedRequest, str]]:
        """``(request, traceback)`` for every handler that raised (a copy).

        A raising handler is answered with HTTP 500; the `replay_server`
        pytest fixture fails the test if this list is not empty.
        """
        with self._lock:
            return list(self._errors)

    def count(self, path: str | None = None, *, method: str | None = None) -> int:
        """Number of requests received for ``path`` (all paths if None)."""
        return sum(1 for request in self.requests
                   if (path is None or request.path == path)
                   and (method is None or request.method == method.upper()))

    def clear(self) -> None:
        """Forget recorded requests, handler errors and queued faults."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()
            self._faults.clear()

    # -- serving ------------------------------------------------------------
    def _match(self, path: str, method: str):
        with self._lock:
            if self._url_map is None:
                self._url_map = Map(
                    [Rule(route.rule, endpoint=key,
                          methods=[route.method] if route.method else None)
                     for key, route in self._routes.items()],
                    strict_slashes=False)
            adapter = self._url_map.bind(_HOST)
            key, path_params = adapter.match(path, method=method)
            return self._routes[key], path_params

    def _next_fault(self, path: str, rule: str | None) -> Fault | None:
        with self._lock:
            keys = [path] + ([rule] if rule and rule != path else []) + [None]
            for key in keys:
                queue = self._faults.get(key)
                if queue:
                    return queue.pop(0)
            return None

    def _record(self, request: Request, path_params: dict) -> RecordedRequest:
        # Read the body first (cached), so form parsing can reuse it.
        body = request.get_data(cache=True)
        files = {name: storage.read() for name, storage in request.files.items()}
        # Multipart parts are spooled to temporary files: close them now that
        # their bytes are copied (else they leak as unclosed-file warnings).
        request.close()
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            args=dict(request.args.items()),
            form=dict(request.form.items()),
            files=files,
            headers=Headers(request.headers),
            body=body,
            time=time.monotonic(),
            path_params=dict(path_params),
            query_string=request.query_string.decode("latin-1"),
        )
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _wsgi_app(self, environ, start_response):
        request = Request(environ)
        route, path_params, routing_error = None, {}, None
        try:
            route, path_params = self._match(request.path, request.method)
        except HTTPException as exc:  # 404 Not Found / 405 Method Not Allowed
            routing_error = exc
        recorded = self._record(request, path_params)
        fault = self._next_fault(recorded.path, route.rule if route else None)

        delay = self.latency + (route.latency if route else 0.0)
        if delay > 0:
            self._stopping.wait(delay)

        if fault is not None and fault.kind == "reset":
            raise _ResetConnection("ReplayServer Fault.reset()")
        if fault is not None and fault.kind == "status":
            return self._status_fault(fault)(environ, start_response)
        if fault is not None and fault.kind == "html_error":
            return _html_error_page(fault.options["code"])(environ, start_response)
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.options["seconds"])

        if routing_error is not None:
            response = routing_error.get_response(environ)
        else:
            response = self._respond(route, recorded)
        if fault is not None and fault.kind == "truncated":
            return self._truncate(response, **fault.options)(environ, start_response)
        return response(environ, start_response)

    def _respond(self, route: _Route, recorded: RecordedRequest) -> Response:
        if route.handler is None:
            body = route.response
            content_type = route.content_type
            if isinstance(body, Path):
                content_type = content_type or _guess_type(body)
                body = body.read_bytes()
            elif isinstance(body, str):
                content_type = content_type or "text/plain; charset=utf-8"
            else:
                content_type = content_type or "application/octet-stream"
            return Response(body, status=route.status, headers=route.headers,
                            content_type=content_type)
        try:
            return _as_response(route.handler(recorded))
        except Exception:
            text = traceback.format_exc()
            with self._lock:
                self._errors.append((recorded, text))
            return Response("ReplayServer handler raised:\n" + text, status=500,
                            content_type="text/plain; charset=utf-8")

    @staticmethod
    def _status_fault(fault: Fault) -> Response:
        code = fault.options["code"]
        body = fault.options["body"]
        if body is None:
            body = f"ReplayServer fault: HTTP {code}\n"
        response = Response(body, status=code, content_type="text/plain; charset=utf-8")
        if fault.options["retry_after"] is not None:
            response.headers["Retry-After"] = str(fault.options["retry_after"])
        return response

    @staticmethod
    def _truncate(response: Response, *, fraction: float, declare_full_length: bool):
        full = response.get_data()
        cut = full[:int(len(full) * fraction)]
        headers = [(key, value) for key, value in response.headers.items()
                   if key.lower() not in ("content-length", "transfer-encoding")]
        headers.append(("Content-Length", str(len(full) if declare_full_length else len(cut))))
        status = response.status

        def app(environ, start_response):
            # werkzeug's server always closes the connection after a response
            # ("Connection: close"), so a client that was promised more bytes
            # sees the end of stream as an incomplete read.
            start_response(status, headers)
            return [cut]

        return app


def _guess_type(path: Path) -> str:
    if path.suffix.lower() in (".vot", ".votable"):
        return VOTABLE_MEDIA_TYPE
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, (bytes, str)):
        return Response(result, status=200)
    if isinstance(result, tuple) and len(result) == 3:
        status, headers, body = result
        return Response(body, status=int(status), headers=dict(headers or {}))
    raise TypeError(
        "a ReplayServer handler must return a Reply, a (status, headers, body) "
        f"tuple, a werkzeug Response, bytes or str; got {type(result).__name__}")


_HTML_PAGE = """<!DOCTYPE html>
<html><head><title>{code} {reason}</title></head>
<body><h1>{reason}</h1>
<p>The server is temporarily unable to service your request.
Please try again later.</p>
<hr><address>ReplayServer (stand-in for a front-end proxy)</address>
</body></html>
"""


def _html_error_page(code: int) -> Response:
    try:
        reason = HTTPStatus(code).phrase
    except ValueError:
        reason = "Error"
    return Response(_HTML_PAGE.format(code=code, reason=reason), status=code,
                    content_type="text/html; charset=utf-8")
