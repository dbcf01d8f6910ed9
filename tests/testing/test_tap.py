"""pyvo, the real client, against multilc.testing.tap.TAPStandin."""
import io
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import requests
from astropy import units as u
from astropy.io import votable
from astropy.table import Table

pyvo = pytest.importorskip("pyvo")
from pyvo.dal import DALOverflowWarning, DALQueryError  # noqa: E402

from multilc.testing import ADQLError, TAPStandin  # noqa: E402

VOTABLE_NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def _targets():
    return Table({"objectid": np.array([11, 12, 13], dtype=np.int64),
                  "ra": [10.5, 180.25, 359.75] * u.deg,
                  "dec": [-30.125, 0.5, 89.0] * u.deg})


def _upload_answer(calls):
    """An ``answer`` that echoes the upload with a made-up magnitude."""
    def answer(query, uploads, maxrec):
        calls.append((query, uploads, maxrec))
        if "syntax" in query:
            raise ADQLError("Could not parse your query: syntax error at 'FROMM'")
        targets = next(iter(uploads.values()), None)
        if targets is None:
            targets = Table({"objectid": np.arange(5), "ra": np.arange(5.0) * u.deg,
                             "dec": np.zeros(5) * u.deg})
        result = Table()
        result["objectid"] = targets["objectid"]
        result["ra"] = targets["ra"]
        result["mag"] = (15.0 + 0.5 * np.arange(len(targets))) * u.mag
        result["mjd"] = np.full(len(targets), 58000.5) * u.d
        return result
    return answer


@pytest.fixture
def calls():
    return []


@pytest.fixture
def tap(replay_server, calls):
    return TAPStandin(replay_server, _upload_answer(calls))


def test_run_sync_upload_arrives_intact(tap, calls, replay_server):
    targets = _targets()
    query = "SELECT * FROM TAP_UPLOAD.mytable AS t"
    result = pyvo.dal.TAPService(tap.url).run_sync(query, uploads={"mytable": targets})

    ((seen_query, uploads, maxrec),) = calls
    assert seen_query == query and maxrec is None
    received = uploads["mytable"]
    assert received["objectid"].tolist() == [11, 12, 13]
    np.testing.assert_array_equal(received["ra"], [10.5, 180.25, 359.75])
    np.testing.assert_array_equal(received["dec"], [-30.125, 0.5, 89.0])
    assert received["ra"].unit == u.deg

    # the request was the DALI multipart POST that pyvo sends
    request = replay_server.requests[-1]
    assert (request.method, request.path) == ("POST", "/tap/sync")
    assert request.form["UPLOAD"] == "mytable,param:mytable"
    assert request.form["LANG"] == "ADQL" and request.form["REQUEST"] == "doQuery"
    assert set(request.files) == {"mytable"}

    table = result.to_table()
    assert result.query_status == "OK"
    assert table["objectid"].tolist() == [11, 12, 13]
    np.testing.assert_allclose(table["mag"], [15.0, 15.5, 16.0])
    assert table["mag"].unit == u.mag and table["ra"].unit == u.deg
    assert table["mjd"].unit == u.d

    (record,) = tap.queries
    assert (record.mode, record.query, record.status, record.rows) == ("sync", query, "OK", 3)
    assert record.upload_rows == {"mytable": 3} and record.job_id is None


def test_client_maxrec_overflow(tap):
    service = pyvo.dal.TAPService(tap.url)
    with warnings.catch_warnings():
        # pyvo 1.9.1 stays silent when the row count equals the MAXREC it asked for
        warnings.simplefilter("error", DALOverflowWarning)
        result = service.run_sync("SELECT * FROM five_rows", maxrec=2)
    assert len(result) == 2
    assert result.query_status == "OVERFLOW"
    assert result.to_table()["objectid"].tolist() == [0, 1]
    assert tap.queries[-1].status == "OVERFLOW" and tap.queries[-1].maxrec == 2


def test_overflow_info_follows_the_table(tap):
    reply = requests.post(tap.url + "/sync", data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": "SELECT * FROM t", "MAXREC": "3"},
        timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/x-votable+xml"
    root = ET.fromstring(reply.content)
    assert root.get("version") == "1.4"
    resource = root.find(f"{VOTABLE_NS}RESOURCE")
    assert resource.get("type") == "results"
    children = [(child.tag.replace(VOTABLE_NS, ""), child.get("value")) for child in resource]
    assert children == [("INFO", "OK"), ("TABLE", None), ("INFO", "OVERFLOW")]
    rows = resource.findall(f"{VOTABLE_NS}TABLE/{VOTABLE_NS}DATA/"
                            f"{VOTABLE_NS}TABLEDATA/{VOTABLE_NS}TR")
    assert len(rows) == 3


def test_maxrec_zero_returns_metadata_only(tap):
    # pyvo 1.9.1 drops maxrec=0 (``if maxrec:``), so send the request by hand
    reply = requests.post(tap.url + "/sync", data={
        "LANG": "ADQL", "QUERY": "SELECT * FROM five_rows", "MAXREC": "0"}, timeout=5)
    table = votable.parse(io.BytesIO(reply.content)).get_first_table()
    assert len(table.array) == 0
    assert [field.name for field in table.fields] == ["objectid", "ra", "mag", "mjd"]
    assert tap.queries[-1].status == "OVERFLOW"


def test_server_default_limit_warns(replay_server, calls):
    tap = TAPStandin(replay_server, _upload_answer(calls), default_maxrec=4)
    with pytest.warns(DALOverflowWarning, match="server limits"):
        result = pyvo.dal.TAPService(tap.url).run_sync("SELECT * FROM five_rows")
    assert len(result) == 4 and calls[0][2] == 4


def test_hard_limit_caps_client_maxrec(replay_server, calls):
    tap = TAPStandin(replay_server, _upload_answer(calls), hard_maxrec=3)
    with pytest.warns(DALOverflowWarning, match="truncated at 3 records"):
        result = pyvo.dal.TAPService(tap.url).run_sync("SELECT * FROM five_rows", maxrec=10)
    assert len(result) == 3


@pytest.mark.parametrize("error_status", [400, 200])
def test_adql_error_raises_dalqueryerror(replay_server, calls, error_status):
    tap = TAPStandin(replay_server, _upload_answer(calls), error_status=error_status)
    with pytest.raises(DALQueryError, match="syntax error at 'FROMM'"):
        pyvo.dal.TAPService(tap.url).run_sync("SELECT * FROMM syntax")
    assert tap.queries[-1].status == "ERROR"
    assert "FROMM" in tap.queries[-1].error


def _post_sync(tap, data, files=None):
    reply = requests.post(tap.url + "/sync", data=data, files=files, timeout=5)
    document = votable.parse(io.BytesIO(reply.content))
    (info,) = document.resources[0].infos
    return reply.status_code, info


@pytest.mark.parametrize("data, files, message", [
    ({"REQUEST": "doQuery", "LANG": "ADQL"}, None, "missing required parameter QUERY"),
    ({"REQUEST": "doQuery", "QUERY": "SELECT 1"}, None, "missing required parameter LANG"),
    ({"REQUEST": "doQuery", "LANG": "SQL", "QUERY": "SELECT 1"}, None, "LANG='SQL'"),
    ({"REQUEST": "getCapabilities", "LANG": "ADQL", "QUERY": "SELECT 1"}, None, "REQUEST"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1", "MAXREC": "many"}, None, "MAXREC"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1", "RESPONSEFORMAT": "csv"}, None, "RESPONSEFORMAT"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1", "UPLOAD": "t,param:t"},
     {"other": ("o.xml", b"<VOTABLE/>")}, "part 't'"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1", "UPLOAD": "t,param:t"},
     {"t": ("t.xml", b"this is not xml")}, "could not parse part 't' as a VOTable"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1", "UPLOAD": "t,http://example.org/t.xml"},
     None, "only inline"),
])
def test_malformed_requests_get_error_votable(tap, calls, data, files, message):
    status, info = _post_sync(tap, data, files)
    assert status == 400
    assert (info.name, info.value) == ("QUERY_STATUS", "ERROR")
    assert message in info.content
    assert calls == []  # the answer function never saw the malformed request


def test_parameter_names_are_case_insensitive_and_get_works(tap, calls):
    reply = requests.get(tap.url + "/sync", params={
        "lang": "ADQL", "query": "SELECT * FROM t", "maxrec": "1"}, timeout=5)
    assert reply.status_code == 200
    assert calls[0][0] == "SELECT * FROM t" and calls[0][2] == 1


def test_run_async_with_upload(tap, calls):
    targets = _targets()
    result = pyvo.dal.TAPService(tap.url).run_async(
        "SELECT * FROM TAP_UPLOAD.mytable", uploads={"mytable": targets})
    assert calls[0][1]["mytable"]["objectid"].tolist() == [11, 12, 13]
    assert result.to_table()["objectid"].tolist() == [11, 12, 13]
    assert result.to_table()["mag"].unit == u.mag
    (record,) = tap.queries
    assert record.mode == "async" and record.job_id is not None
    assert tap.jobs == {}  # run_async deletes its job


def test_async_job_goes_through_phases(replay_server, calls):
    tap = TAPStandin(replay_server, _upload_answer(calls), queued_polls=1, executing_polls=2)
    service = pyvo.dal.TAPService(tap.url)
    job = service.submit_job("SELECT * FROM five_rows", maxrec=3)
    assert job.phase == "PENDING" and calls == []
    assert job.query == "SELECT * FROM five_rows"
    job.run()  # pyvo follows the 303 to the job document: that read reported QUEUED
    assert [job.phase, job.phase, job.phase, job.phase] == [
        "EXECUTING", "EXECUTING", "COMPLETED", "COMPLETED"]
    assert job.result_uri == f"{tap.url}/async/{job.job_id}/results/result"
    result = job.fetch_result()
    assert len(result) == 3 and result.query_status == "OVERFLOW"

    summary = service.get_job(job.job_id)
    assert summary.phase == "COMPLETED" and summary.version == "1.1"
    parameters = {parameter.id_: parameter.content for parameter in summary.parameters}
    assert parameters["query"] == "SELECT * FROM five_rows" and parameters["maxrec"] == "3"
    assert [j.jobid for j in service.get_job_list()] == [job.job_id]

    job.delete()
    assert tap.jobs == {}
    assert requests.get(f"{tap.url}/async/{summary.jobid}", timeout=5).status_code == 404


def test_async_upload_through_job_parameters(tap, calls):
    job = pyvo.dal.TAPService(tap.url).submit_job("SELECT * FROM TAP_UPLOAD.later")
    job.upload(later=_targets())
    job.run().wait(timeout=5)
    assert calls[0][1]["later"]["objectid"].tolist() == [11, 12, 13]
    assert len(job.fetch_result()) == 3


def test_async_error_and_abort(tap):
    service = pyvo.dal.TAPService(tap.url)
    with pytest.raises(DALQueryError, match="Query Error: Could not parse your query"):
        service.run_async("SELECT * FROMM syntax")

    job = service.submit_job("SELECT * FROMM syntax")
    job.run().wait(timeout=5)
    assert job.phase == "ERROR"
    assert "FROMM" in job._job.errorsummary.message.content
    error = requests.get(f"{job.url}/error", timeout=5)
    info = votable.parse(io.BytesIO(error.content)).resources[0].infos[0]
    assert info.value == "ERROR" and "FROMM" in info.content
    assert requests.get(job.result_uri or f"{job.url}/results/result", timeout=5).status_code == 404

    pending = service.submit_job("SELECT 1")
    pending.abort()
    assert pending.phase == "ABORTED"
    assert requests.post(f"{pending.url}/phase", data={"PHASE": "RUN"},
                         timeout=5).status_code == 400


def test_vosi_capabilities_availability_tables(replay_server, calls):
    template = Table({"oid": np.array([], dtype=np.int64), "mag": np.array([]) * u.mag})
    tap = TAPStandin(replay_server, _upload_answer(calls), default_maxrec=2000,
                     hard_maxrec=50000, tables={"ztf.objects": template})
    service = pyvo.dal.TAPService(tap.url)
    assert (service.maxrec, service.hardlimit) == (2000, 50000)
    assert [m.ivo_id for m in service.upload_methods] == [
        "ivo://ivoa.net/std/TAPRegExt#upload-inline"]
    standard_ids = {str(capability.standardid) for capability in service.capabilities}
    assert "ivo://ivoa.net/std/TAP" in standard_ids
    assert "ivo://ivoa.net/std/VOSI#availability" in standard_ids

    columns = service.tables["ztf.objects"].columns
    assert [column.name for column in columns] == ["oid", "mag"]
    assert columns[1].unit == "mag"
    assert columns[0].datatype.content == "long"

    reply = requests.get(tap.url + "/availability", timeout=5)
    availability = pyvo.io.vosi.parse_availability(io.BytesIO(reply.content))
    assert availability.available is True
