"""An IVOA TAP 1.1 stand-in mounted on a ``ReplayServer``.

`TAPStandin` speaks the protocol that pyvo's ``TAPService`` uses -- DALI
parameters on ``{base}/sync``, UWS 1.1 jobs under ``{base}/async``, inline
table uploads, VOSI capabilities/availability/tables -- and nothing more
lenient.  It does not understand ADQL: every query is handed to a
test-supplied ``answer`` callable, which computes the result table (usually
with astropy) or raises `ADQLError`.

Standards followed (the documents, not any implementation):

- TAP 1.1 (IVOA REC 2019-09-27): ``/sync``, ``/async``, ``LANG``,
  ``QUERY``, ``MAXREC``, ``UPLOAD``; the ``QUERY_STATUS`` INFO before the
  TABLE, and ``QUERY_STATUS=OVERFLOW`` after the TABLE when MAXREC cut the
  result.
- DALI 1.1: case-insensitive parameter names, ``RESPONSEFORMAT``,
  ``UPLOAD=name,param:part`` with the table in the multipart part ``part``,
  VOTable error documents with ``QUERY_STATUS=ERROR``.
- UWS 1.1 (namespace ``http://www.ivoa.net/xml/UWS/v1.0``, ``version="1.1"``):
  job document, phases, ``PHASE=RUN|ABORT``, 303 redirects, ``DELETE``.
- VOSI 1.1 / TAPRegExt 1.0 / VODataService 1.1 for capabilities,
  availability and tables.

Details the standards leave open and that are choices of this stand-in are
marked "stand-in choice" in the comments.
"""
from __future__ import annotations

import io
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from astropy.io import votable
from astropy.io.votable.tree import Info, Resource, VOTableFile
from astropy.table import Table

from .replay import VOTABLE_MEDIA_TYPE, RecordedRequest, Reply, ReplayServer

__all__ = ["ADQLError", "TAPQueryRecord", "TAPStandin"]

# XML namespaces (each from the schema of the standard named).
_NS_UWS = "http://www.ivoa.net/xml/UWS/v1.0"  # UWS 1.1 keeps the 1.0 namespace
_NS_XLINK = "http://www.w3.org/1999/xlink"
_NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NS_VOSI_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
_NS_VOSI_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
_NS_VOSI_TABLES = "http://www.ivoa.net/xml/VOSITables/v1.0"
_NS_VR = "http://www.ivoa.net/xml/VOResource/v1.0"
_NS_VS = "http://www.ivoa.net/xml/VODataService/v1.1"
_NS_TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"

# RESPONSEFORMAT values that mean "VOTable" (DALI 1.1 section 3.4.2 and the
# TAPRegExt output-format aliases).  Only TABLEDATA serialisation is served.
_VOTABLE_FORMATS = {
    "votable", "votable/td", "application/x-votable+xml", "text/xml",
    "application/x-votable+xml;serialization=tabledata",
    "application/x-votable+xml; serialization=tabledata",
}
# TAP 1.1 section 2.3.2: LANG is required; ADQL may carry a version suffix.
_ADQL_LANG = re.compile(r"^ADQL(-2\.[01])?$")
# ADQL 2.0 section 2.1.3: a regular identifier.
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Phases after which a UWS job no longer changes (UWS 1.1 section 2.1.3).
_FINAL_PHASES = {"COMPLETED", "ERROR", "ABORTED"}


class ADQLError(Exception):
    """Raised by an ``answer`` callable to make the service report an error.

    The message becomes the content of ``<INFO name="QUERY_STATUS"
    value="ERROR">`` (sync) or the UWS ``errorSummary`` message (async).
    """


@dataclass(frozen=True)
class TAPQueryRecord:
    """One query execution seen by the stand-in.

    Attributes
    ----------
    mode : {"sync", "async"}
        Endpoint used.
    query : str or None
        The ADQL text as received (None if the request had no QUERY).
    lang : str or None
        The LANG parameter.
    maxrec : int or None
        Row limit applied (client MAXREC, capped by the hard limit, or the
        service default); None means unlimited.
    upload_rows : dict of str to int
        Row count of each uploaded table, by upload name.
    job_id : str or None
        UWS job id for async queries.
    status : {"OK", "OVERFLOW", "ERROR"}
        The QUERY_STATUS the service reported.
    error : str or None
        The error message when ``status == "ERROR"``.
    rows : int
        Number of rows returned.
    """

    mode: str
    query: str | None
    lang: str | None
    maxrec: int | None
    upload_rows: dict
    job_id: str | None
    status: str
    error: str | None = None
    rows: int = 0


@dataclass
class _Job:
    job_id: str
    params: dict
    files: dict
    creation_time: datetime
    phase: str = "PENDING"
    start_time: datetime | None = None
    end_time: datetime | None = None
    upcoming_phases: deque = field(default_factory=deque)
    final_phase: str | None = None
    result: bytes | None = None
    error: str | None = None


class _RequestError(Exception):
    """A request that breaks the protocol (answered like an ADQL error)."""


class TAPStandin:
    """An IVOA TAP 1.1 service answering ADQL with a test-supplied function.

    Parameters
    ----------
    server : ReplayServer
        Server to mount the service on (started before the first request).
    answer : callable
        ``answer(query: str, uploads: dict[str, astropy.table.Table],
        maxrec: int | None) -> astropy.table.Table``.  Raise `ADQLError`
        to report a query error.  Units on the returned columns are written
        to the VOTable FIELDs.  The stand-in applies MAXREC itself (cuts the
        table and flags OVERFLOW), so ``answer`` may ignore it.
    base : str
        URL path of the service, e.g. ``"/tap"``; the TAP base URL is
        ``server.url + base`` (see ``url``).
    default_maxrec : int, optional
        Row limit when the client sends no MAXREC (TAPRegExt
        ``outputLimit/default``); None means unlimited.
    hard_maxrec : int, optional
        Largest MAXREC honoured (TAPRegExt ``outputLimit/hard``).
    queued_polls, executing_polls : int
        After ``PHASE=RUN``, the number of reads of the job (job document or
        ``/phase``) that report ``QUEUED``, then ``EXECUTING``, before the job
        reports its final phase.  Both 0: final at the first read.
    error_status : int
        HTTP status of sync error documents.  Stand-in choice: 400, as the
        ADQL error responses of the services we mirror; DALI 1.1 does not fix
        the status and pyvo reads the VOTable error document either way.
    tables : dict of str to astropy.table.Table, optional
        Tables listed by ``{base}/tables``: qualified name (``"schema.table"``)
        to a template table whose columns (names, dtypes, units) are
        described.
    available : bool
        What ``{base}/availability`` reports.

    Attributes
    ----------
    queries : list of TAPQueryRecord
        Every query execution, in order (a copy).
    """

    def __init__(self, server: ReplayServer, answer: Callable, *, base: str = "/tap",
                 default_maxrec: int | None = None, hard_maxrec: int | None = None,
                 queued_polls: int = 0, executing_polls: int = 0,
                 error_status: int = 400, tables: dict | None = None,
                 available: bool = True):
        if not callable(answer):
            raise TypeError(f"answer must be callable, got {answer!r}")
        self.server = server
        self.answer = answer
        self.base = "/" + base.strip("/")
        self.default_maxrec = default_maxrec
        self.hard_maxrec = hard_maxrec
        self.queued_polls = int(queued_polls)
        self.executing_polls = int(executing_polls)
        self.error_status = int(error_status)
        self.tables = dict(tables or {})
        self.available = bool(available)
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._queries: list[TAPQueryRecord] = []
        self._mount()

    # -- public -------------------------------------------------------------
    @property
    def url(self) -> str:
        """The TAP base URL to give to ``pyvo.dal.TAPService``."""
        return self.server.url + self.base

    @property
    def queries(self) -> list[TAPQueryRecord]:
        with self._lock:
            return list(self._queries)

    @property
    def jobs(self) -> dict[str, str]:
        """Current UWS jobs: job id to phase (deleted jobs are gone)."""
        with self._lock:
            return {job_id: job.phase for job_id, job in self._jobs.items()}

    # -- routing ------------------------------------------------------------
    def _mount(self) -> None:
        base, route = self.base, self.server.route
        route(f"{base}/sync", method=None, handler=self._sync)
        route(f"{base}/async", method=None, handler=self._async_list)
        route(f"{base}/async/<job_id>", method=None, handler=self._job_resource)
        route(f"{base}/async/<job_id>/phase", method=None, handler=self._job_phase)
        route(f"{base}/async/<job_id>/parameters", method=None,
              handler=self._job_parameters)
        route(f"{base}/async/<job_id>/results/result", method="GET",
              handler=self._job_result)
        route(f"{base}/async/<job_id>/error", method="GET", handler=self._job_error)
        route(f"{base}/capabilities", method="GET", handler=self._capabilities)
        route(f"{base}/availability", method="GET", handler=self._availability)
        route(f"{base}/tables", method="GET", handler=self._tables)

    def _job_url(self, job_id: str) -> str:
        return f"{self.url}/async/{job_id}"

    # -- sync -----------------------------------------------------------------
    def _sync(self, request: RecordedRequest):
        if request.method not in ("GET", "POST"):
            return _method_not_allowed("GET, POST")
        params = _dali_params(request)
        record, document = self._execute("sync", params, request.files, job_id=None)
        status = 200 if record.status != "ERROR" else self.error_status
        return Reply(status, {"Content-Type": VOTABLE_MEDIA_TYPE}, document)

    def _execute(self, mode: str, params: dict, files: dict, job_id: str | None):
        """Validate, run ``answer``, serialise; return (record, VOTable bytes)."""
        query, lang, maxrec, upload_rows = params.get("QUERY"), params.get("LANG"), None, {}
        try:
            query, maxrec, uploads = self._validate(params, files)
            upload_rows = {name: len(table) for name, table in uploads.items()}
            try:
                table = self.answer(query, uploads, maxrec)
            except ADQLError as exc:
                raise _RequestError(str(exc)) from None
            if not isinstance(table, Table):
                raise TypeError(
                    f"TAPStandin answer must return an astropy Table, got "
                    f"{type(table).__name__}")
        except _RequestError as exc:
            record = TAPQueryRecord(mode, query, lang, maxrec, upload_rows, job_id,
                                    "ERROR", error=str(exc))
            self._remember(record)
            return record, _error_votable(str(exc))
        overflow = maxrec is not None and len(table) > maxrec
        if overflow:
            table = table[:maxrec]
        record = TAPQueryRecord(mode, query, lang, maxrec, upload_rows, job_id,
                                "OVERFLOW" if overflow else "OK", rows=len(table))
        self._remember(record)
        return record, _result_votable(table, overflow)

    def _remember(self, record: TAPQueryRecord) -> None:
        with self._lock:
            self._queries.append(record)

    def _validate(self, params: dict, files: dict):
        request = params.get("REQUEST")
        # TAP 1.1 section 2.3.1 made REQUEST optional; if sent it must be doQuery.
        if request is not None and request != "doQuery":
            raise _RequestError(f"unsupported REQUEST={request!r}; only 'doQuery'")
        lang = params.get("LANG")
        if lang is None:
            raise _RequestError("missing required parameter LANG")
        if not _ADQL_LANG.match(lang):
            raise _RequestError(f"unsupported LANG={lang!r}; this service speaks ADQL")
        query = params.get("QUERY")
        if query is None or not query.strip():
            raise _RequestError("missing required parameter QUERY")
        response_format = params.get("RESPONSEFORMAT", params.get("FORMAT"))
        if response_format is not None and response_format.lower() not in _VOTABLE_FORMATS:
            raise _RequestError(
                f"unsupported RESPONSEFORMAT={response_format!r}; this service "
                "returns VOTable (TABLEDATA) only")
        maxrec = self._maxrec(params.get("MAXREC"))
        uploads = _parse_uploads(params.get("UPLOAD"), files)
        return query, maxrec, uploads

    def _maxrec(self, text: str | None) -> int | None:
        if text is None:
            return self.default_maxrec
        try:
            maxrec = int(text)
        except ValueError:
            raise _RequestError(f"MAXREC must be an integer, got {text!r}") from None
        if maxrec < 0:
            raise _RequestError(f"MAXREC must be >= 0, got {maxrec}")
        if self.hard_maxrec is not None:
            maxrec = min(maxrec, self.hard_maxrec)
        return maxrec

    # -- async (UWS) ------------------------------------------------------------
    def _async_list(self, request: RecordedRequest):
        if request.method == "POST":
            return self._create_job(request)
        if request.method != "GET":
            return _method_not_allowed("GET, POST")
        root = ET.Element(f"{{{_NS_UWS}}}jobs", {"version": "1.1"})
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            ref = ET.SubElement(root, f"{{{_NS_UWS}}}jobref", {
                "id": job.job_id, f"{{{_NS_XLINK}}}type": "simple",
                f"{{{_NS_XLINK}}}href": self._job_url(job.job_id)})
            ET.SubElement(ref, f"{{{_NS_UWS}}}phase").text = job.phase
            ET.SubElement(ref, f"{{{_NS_UWS}}}creationTime").text = _iso(job.creation_time)
        return _xml_reply(root)

    def _create_job(self, request: RecordedRequest):
        params = _dali_params(request)
        job = _Job(job_id=uuid.uuid4().hex[:12], params=params, files=dict(request.files),
                   creation_time=_now())
        with self._lock:
            self._jobs[job.job_id] = job
        # UWS 1.1 section 2.2.3.1: a PHASE=RUN given at creation starts the job.
        if params.get("PHASE", "").upper() == "RUN":
            self._run(job)
        return _see_other(self._job_url(job.job_id))

    def _get_job(self, request: RecordedRequest) -> _Job | None:
        with self._lock:
            return self._jobs.get(request.path_params["job_id"])

    def _job_resource(self, request: RecordedRequest):
        job = self._get_job(request)
        if job is None:
            return _not_found(request)
        action = _dali_params(request).get("ACTION", "").upper()
        if request.method == "DELETE" or (request.method == "POST" and action == "DELETE"):
            with self._lock:
                self._jobs.pop(job.job_id, None)
            # UWS 1.1 section 2.2.3.2: redirect to the job list.
            return _see_other(f"{self.url}/async")
        if request.method != "GET":
            return _method_not_allowed("GET, POST, DELETE")
        # Stand-in choice: the WAIT parameter (UWS 1.1 blocking) is answered
        # at once, which UWS allows (a service may end the wait early); every
        # read of the job reports its phase, then advances it one step.
        reply = _xml_reply(self._job_document(job))
        self._advance(job)
        return reply

    def _job_phase(self, request: RecordedRequest):
        job = self._get_job(request)
        if job is None:
            return _not_found(request)
        if request.method == "GET":
            reply = Reply(200, {"Content-Type": "text/plain; charset=utf-8"}, job.phase)
            self._advance(job)
            return reply
        if request.method != "POST":
            return _method_not_allowed("GET, POST")
        phase = _dali_params(request).get("PHASE", "").upper()
        if phase == "RUN":
            if job.phase != "PENDING":
                return _bad_request(f"job {job.job_id} is {job.phase}, not PENDING")
            self._run(job)
        elif phase == "ABORT":
            with self._lock:
                if job.phase not in _FINAL_PHASES:
                    job.phase, job.upcoming_phases, job.final_phase = "ABORTED", deque(), "ABORTED"
                    job.end_time = _now()
        else:
            return _bad_request(f"PHASE must be RUN or ABORT, got {phase!r}")
        return _see_other(self._job_url(job.job_id))

    def _job_parameters(self, request: RecordedRequest):
        job = self._get_job(request)
        if job is None:
            return _not_found(request)
        if request.method == "GET":
            return _xml_reply(self._parameters_element(job))
        if request.method != "POST":
            return _method_not_allowed("GET, POST")
        if job.phase != "PENDING":
            # UWS 1.1 section 2.2.3: parameters may change only while PENDING.
            return _bad_request(f"job {job.job_id} is {job.phase}; parameters are frozen")
        with self._lock:
            job.params.update(_dali_params(request))
            job.files.update(request.files)
        return _see_other(self._job_url(job.job_id))

    def _job_result(self, request: RecordedRequest):
        job = self._get_job(request)
        if job is None or job.phase != "COMPLETED":
            return _not_found(request)
        return Reply(200, {"Content-Type": VOTABLE_MEDIA_TYPE}, job.result)

    def _job_error(self, request: RecordedRequest):
        job = self._get_job(request)
        if job is None or job.phase != "ERROR":
            return _not_found(request)
        return Reply(200, {"Content-Type": VOTABLE_MEDIA_TYPE}, _error_votable(job.error))

    def _run(self, job: _Job) -> None:
        # Stand-in choice: the query runs at once; the configured number of
        # QUEUED/EXECUTING reads only delays when clients see the outcome.
        record, document = self._execute("async", job.params, job.files, job.job_id)
        with self._lock:
            job.start_time = _now()
            job.end_time = _now()
            if record.status == "ERROR":
                job.final_phase, job.error = "ERROR", record.error
            else:
                job.final_phase, job.result = "COMPLETED", document
            job.upcoming_phases = deque(
                ["QUEUED"] * self.queued_polls + ["EXECUTING"] * self.executing_polls)
            job.phase = job.upcoming_phases[0] if job.upcoming_phases else job.final_phase

    def _advance(self, job: _Job) -> None:
        """After a client read of the job: move on to the next phase."""
        with self._lock:
            if job.final_phase is None or job.phase in _FINAL_PHASES:
                return
            job.upcoming_phases.popleft()
            job.phase = job.upcoming_phases[0] if job.upcoming_phases else job.final_phase

    def _parameters_element(self, job: _Job) -> ET.Element:
        element = ET.Element(f"{{{_NS_UWS}}}parameters")
        for name, value in sorted(job.params.items()):
            ET.SubElement(element, f"{{{_NS_UWS}}}parameter", {"id": name.lower()}).text = value
        return element

    def _job_document(self, job: _Job) -> ET.Element:
        """The UWS 1.1 ``uws:job`` element, children in schema order."""
        uws = f"{{{_NS_UWS}}}"
        nil = {f"{{{_NS_XSI}}}nil": "true"}
        root = ET.Element(f"{uws}job", {"version": "1.1"})
        ET.SubElement(root, f"{uws}jobId").text = job.job_id
        ET.SubElement(root, f"{uws}ownerId", nil)
        ET.SubElement(root, f"{uws}phase").text = job.phase
        ET.SubElement(root, f"{uws}creationTime").text = _iso(job.creation_time)
        started = job.start_time if job.phase not in ("PENDING", "QUEUED") else None
        ended = job.end_time if job.phase in _FINAL_PHASES else None
        for tag, moment in (("startTime", started), ("endTime", ended)):
            if moment is None:
                ET.SubElement(root, f"{uws}{tag}", nil)
            else:
                ET.SubElement(root, f"{uws}{tag}").text = _iso(moment)
        # UWS 1.1 section 2.2.1: executionDuration 0 means unlimited.
        ET.SubElement(root, f"{uws}executionDuration").text = "0"
        ET.SubElement(root, f"{uws}destruction").text = _iso(
            job.creation_time + timedelta(days=1))
        root.append(self._parameters_element(job))
        results = ET.SubElement(root, f"{uws}results")
        if job.phase == "COMPLETED":
            ET.SubElement(results, f"{uws}result", {
                "id": "result", f"{{{_NS_XLINK}}}type": "simple",
                f"{{{_NS_XLINK}}}href": f"{self._job_url(job.job_id)}/results/result",
                "mime-type": VOTABLE_MEDIA_TYPE})
        if job.phase == "ERROR":
            summary = ET.SubElement(root, f"{uws}errorSummary",
                                    {"type": "fatal", "hasDetail": "true"})
            ET.SubElement(summary, f"{uws}message").text = job.error
        return root

    # -- VOSI -----------------------------------------------------------------
    def _capabilities(self, request: RecordedRequest):
        root = ET.Element(f"{{{_NS_VOSI_CAP}}}capabilities")
        # xsi:type values name types by prefix, so those prefixes must be
        # declared even though no element uses them.
        root.set("xmlns:vr", _NS_VR)
        root.set("xmlns:vs", _NS_VS)
        root.set("xmlns:tr", _NS_TR)
        xsi_type = f"{{{_NS_XSI}}}type"

        tap = ET.SubElement(root, "capability", {
            "standardID": "ivo://ivoa.net/std/TAP", xsi_type: "tr:TableAccess"})
        interface = ET.SubElement(tap, "interface",
                                  {xsi_type: "vs:ParamHTTP", "role": "std", "version": "1.1"})
        ET.SubElement(interface, "accessURL", {"use": "base"}).text = self.url
        language = ET.SubElement(tap, "language")
        ET.SubElement(language, "name").text = "ADQL"
        ET.SubElement(language, "version",
                      {"ivo-id": "ivo://ivoa.net/std/ADQL#v2.0"}).text = "2.0"
        ET.SubElement(language, "description").text = (
            "ADQL answered by a test-supplied function (multilc TAPStandin)")
        output = ET.SubElement(tap, "outputFormat",
                               {"ivo-id": "ivo://ivoa.net/std/TAPRegExt#output-votable-td"})
        ET.SubElement(output, "mime").text = VOTABLE_MEDIA_TYPE
        ET.SubElement(output, "alias").text = "votable"
        ET.SubElement(tap, "uploadMethod",
                      {"ivo-id": "ivo://ivoa.net/std/TAPRegExt#upload-inline"})
        if self.default_maxrec is not None or self.hard_maxrec is not None:
            limit = ET.SubElement(tap, "outputLimit")
            if self.default_maxrec is not None:
                ET.SubElement(limit, "default", {"unit": "row"}).text = str(self.default_maxrec)
            if self.hard_maxrec is not None:
                ET.SubElement(limit, "hard", {"unit": "row"}).text = str(self.hard_maxrec)

        for name in ("capabilities", "availability", "tables"):
            capability = ET.SubElement(root, "capability",
                                       {"standardID": f"ivo://ivoa.net/std/VOSI#{name}"})
            interface = ET.SubElement(capability, "interface", {xsi_type: "vs:ParamHTTP"})
            ET.SubElement(interface, "accessURL", {"use": "full"}).text = f"{self.url}/{name}"
        return _xml_reply(root, content_type="text/xml")

    def _availability(self, request: RecordedRequest):
        root = ET.Element(f"{{{_NS_VOSI_AVAIL}}}availability")
        ET.SubElement(root, f"{{{_NS_VOSI_AVAIL}}}available").text = (
            "true" if self.available else "false")
        return _xml_reply(root, content_type="text/xml")

    def _tables(self, request: RecordedRequest):
        root = ET.Element(f"{{{_NS_VOSI_TABLES}}}tableset")
        root.set("xmlns:vs", _NS_VS)
        schemas: dict[str, ET.Element] = {}
        if not self.tables:
            # VODataService 1.1 requires at least one schema in a tableset.
            ET.SubElement(ET.SubElement(root, "schema"), "name").text = "default"
        for qualified_name, template in self.tables.items():
            schema_name = qualified_name.split(".")[0] if "." in qualified_name else "default"
            if schema_name not in schemas:
                schemas[schema_name] = ET.SubElement(root, "schema")
                ET.SubElement(schemas[schema_name], "name").text = schema_name
            table_element = ET.SubElement(schemas[schema_name], "table")
            ET.SubElement(table_element, "name").text = qualified_name
            # The VOTable FIELD astropy would write gives each column's VOTable
            # datatype, arraysize and unit.
            fields = votable.from_table(Table(template)[:0]).get_first_table().fields
            for vot_field in fields:
                column = ET.SubElement(table_element, "column")
                ET.SubElement(column, "name").text = vot_field.name
                if vot_field.unit is not None:
                    ET.SubElement(column, "unit").text = vot_field.unit.to_string("vounit")
                attributes = {f"{{{_NS_XSI}}}type": "vs:VOTableType"}
                if vot_field.arraysize is not None:
                    attributes["arraysize"] = vot_field.arraysize
                ET.SubElement(column, "dataType", attributes).text = vot_field.datatype
        return _xml_reply(root, content_type="text/xml")


# -- helpers ---------------------------------------------------------------------
def _dali_params(request: RecordedRequest) -> dict:
    """Request parameters with upper-cased names (DALI 1.1 section 3.1: names
    are case-insensitive); form fields win over query-string ones."""
    params = {name.upper(): value for name, value in request.args.items()}
    params.update({name.upper(): value for name, value in request.form.items()})
    return params


def _parse_uploads(upload: str | None, files: dict) -> dict:
    """Read ``UPLOAD=name,param:part[;...]`` tables from multipart parts."""
    if upload is None:
        return {}
    tables = {}
    for item in filter(None, (part.strip() for part in upload.split(";"))):
        name, _, reference = item.partition(",")
        if not _IDENTIFIER.match(name) or not reference:
            raise _RequestError(
                f"malformed UPLOAD item {item!r}; expected 'tablename,URI'")
        if not reference.startswith("param:"):
            # Stand-in choice: it never fetches remote URIs.
            raise _RequestError(
                f"UPLOAD {name!r}: only inline 'param:' uploads are supported, got "
                f"{reference!r}")
        part = reference[len("param:"):]
        if part not in files:
            raise _RequestError(
                f"UPLOAD {name!r} refers to multipart part {part!r}, which the "
                "request does not contain")
        try:
            tables[name] = Table.read(io.BytesIO(files[part]), format="votable")
        except Exception as exc:
            raise _RequestError(
                f"UPLOAD {name!r}: could not parse part {part!r} as a VOTable: {exc}"
            ) from None
    return tables


def _result_votable(table: Table, overflow: bool) -> bytes:
    """Serialise ``table`` as a VOTable 1.4 TAP result document."""
    document = votable.from_table(Table(table))
    resource = document.resources[0]
    resource.type = "results"
    resource.infos.insert(0, Info(name="QUERY_STATUS", value="OK"))
    buffer = io.BytesIO()
    document.to_xml(buffer, tabledata_format="tabledata")
    xml = buffer.getvalue()
    if overflow:
        # TAP 1.1 / DALI 1.1: the OVERFLOW INFO goes after the TABLE inside
        # the results RESOURCE.  astropy writes RESOURCE INFOs only before
        # the TABLE, so the element is inserted into the serialised text.
        end = xml.rindex(b"</TABLE>") + len(b"</TABLE>")
        xml = (xml[:end] + b'\n  <INFO name="QUERY_STATUS" value="OVERFLOW"/>'
               + xml[end:])
    return xml


def _error_votable(message: str) -> bytes:
    """A DALI error document: a results RESOURCE with QUERY_STATUS=ERROR."""
    document = VOTableFile(version="1.4")
    resource = Resource(type="results")
    info = Info(name="QUERY_STATUS", value="ERROR")
    info.content = message
    resource.infos.append(info)
    document.resources.append(resource)
    buffer = io.BytesIO()
    document.to_xml(buffer)
    return buffer.getvalue()


def _xml_reply(root: ET.Element, content_type: str = "text/xml") -> Reply:
    ET.register_namespace("uws", _NS_UWS)
    ET.register_namespace("xlink", _NS_XLINK)
    ET.register_namespace("xsi", _NS_XSI)
    ET.register_namespace("vosi", _NS_VOSI_CAP)
    ET.register_namespace("avail", _NS_VOSI_AVAIL)
    ET.register_namespace("vtm", _NS_VOSI_TABLES)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Reply(200, {"Content-Type": f"{content_type}; charset=utf-8"}, body)


def _see_other(location: str) -> Reply:
    return Reply(303, {"Location": location}, b"")


def _not_found(request: RecordedRequest) -> Reply:
    return Reply(404, {"Content-Type": "text/plain; charset=utf-8"},
                 f"no such resource: {request.path}\n")


def _bad_request(message: str) -> Reply:
    return Reply(400, {"Content-Type": "text/plain; charset=utf-8"}, message + "\n")


def _method_not_allowed(allowed: str) -> Reply:
    return Reply(405, {"Allow": allowed, "Content-Type": "text/plain; charset=utf-8"},
                 f"method not allowed; use {allowed}\n")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    """UWS/DALI timestamp: ISO 8601 UTC with a Z suffix (DALI 1.1 section 3.3.3)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
