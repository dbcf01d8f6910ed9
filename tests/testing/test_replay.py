"""Tests of multilc.testing.replay.ReplayServer against a real HTTP client."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from multilc.testing import Fault, ReplayServer

VOTABLE_BODY = (b'<?xml version="1.0"?>\n<VOTABLE version="1.4"><RESOURCE type="results">'
                b'<TABLE><FIELD name="x" datatype="int"/><DATA><TABLEDATA>'
                b'<TR><TD>1</TD></TR><TR><TD>2</TD></TR></TABLEDATA></DATA></TABLE>'
                b'</RESOURCE></VOTABLE>\n')


def test_static_routes_and_content_types(replay_server, tmp_path):
    path = tmp_path / "sample.vot"
    path.write_bytes(VOTABLE_BODY)
    replay_server.route("/text", "héllo")
    replay_server.route("/file", path)
    replay_server.route("/csv", b"a,b\n1,2\n", content_type="text/csv", status=201,
                        headers={"X-Archive": "test"})

    text = requests.get(replay_server.url + "/text", timeout=5)
    assert text.status_code == 200 and text.text == "héllo"
    assert text.headers["Content-Type"].startswith("text/plain")

    file_reply = requests.get(replay_server.url_for("file"), timeout=5)
    assert file_reply.content == VOTABLE_BODY
    assert file_reply.headers["Content-Type"] == "application/x-votable+xml"

    csv_reply = requests.get(replay_server.url + "/csv", timeout=5)
    assert (csv_reply.status_code, csv_reply.content) == (201, b"a,b\n1,2\n")
    assert csv_reply.headers["X-Archive"] == "test"
    assert csv_reply.headers["Content-Type"] == "text/csv"


def test_unknown_path_and_wrong_method(replay_server):
    replay_server.route("/only-post", "ok", method="POST")
    replay_server.route("/any", "any", method=None)
    assert requests.get(replay_server.url + "/nowhere", timeout=5).status_code == 404
    assert requests.get(replay_server.url + "/only-post", timeout=5).status_code == 405
    assert requests.post(replay_server.url + "/only-post", timeout=5).text == "ok"
    assert requests.delete(replay_server.url + "/any", timeout=5).text == "any"
    # unmatched requests are recorded too
    assert replay_server.count("/nowhere") == 1


def test_route_is_replaced_and_arguments_checked(replay_server):
    replay_server.route("/x", "first")
    replay_server.route("/x", "second")
    assert requests.get(replay_server.url + "/x", timeout=5).text == "second"
    with pytest.raises(ValueError, match="exactly one"):
        replay_server.route("/y")
    with pytest.raises(ValueError, match="exactly one"):
        replay_server.route("/y", "body", handler=lambda request: "x")
    with pytest.raises(ValueError, match="start with '/'"):
        replay_server.route("y", "body")


def test_handler_receives_parsed_request(replay_server):
    seen = []

    def handler(request):
        seen.append(request)
        return 202, {"Content-Type": "text/plain", "X-Job": request.path_params["job"]}, "done"

    replay_server.route("/jobs/<job>", handler=handler, method="POST")
    reply = requests.post(
        replay_server.url + "/jobs/abc", params={"page": "2"},
        data={"QUERY": "SELECT 1", "LANG": "ADQL"},
        files={"mytable": ("t.xml", b"<VOTABLE/>")},
        headers={"X-Client": "pytest"}, timeout=5)
    assert (reply.status_code, reply.text, reply.headers["X-Job"]) == (202, "done", "abc")

    (request,) = seen
    assert request.method == "POST" and request.path == "/jobs/abc"
    assert request.args == {"page": "2"}
    assert request.query_string == "page=2"
    assert request.form == {"QUERY": "SELECT 1", "LANG": "ADQL"}
    assert request.files == {"mytable": b"<VOTABLE/>"}
    assert request.headers["x-client"] == "pytest"
    assert b"SELECT 1" in request.body and b"<VOTABLE/>" in request.body
    assert replay_server.requests == [request]
    assert replay_server.count() == 1
    assert replay_server.count("/jobs/abc", method="post") == 1
    assert replay_server.count("/jobs/abc", method="GET") == 0


def test_handler_exception_gives_500_and_is_recorded():
    def broken(request):
        raise RuntimeError("handler bug")

    with ReplayServer() as server:
        server.route("/broken", handler=broken)
        reply = requests.get(server.url + "/broken", timeout=5)
        assert reply.status_code == 500
        assert "handler bug" in reply.text
        ((request, text),) = server.errors
        assert request.path == "/broken" and "RuntimeError" in text


def test_status_faults_are_consumed_in_order(replay_server):
    replay_server.route("/data", "payload")
    replay_server.faults("/data", [Fault.status(429, retry_after=7), Fault.status(500),
                                   Fault.status(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")])
    assert replay_server.pending_faults("/data") == 3
    replies = [requests.get(replay_server.url + "/data", timeout=5) for _ in range(4)]
    assert [r.status_code for r in replies] == [429, 500, 503, 200]
    assert replies[0].headers["Retry-After"] == "7"
    assert "Retry-After" not in replies[1].headers
    assert replies[2].headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert replies[3].text == "payload"
    assert replay_server.pending_faults("/data") == 0
    assert replay_server.count("/data") == 4


def test_fault_on_route_pattern_and_global_fault(replay_server):
    replay_server.route("/job/<job_id>", "job document")
    replay_server.faults("/job/<job_id>", [Fault.status(500)])
    replay_server.faults(None, [Fault.status(503)])
    # the pattern queue is used before the global one
    assert requests.get(replay_server.url + "/job/1", timeout=5).status_code == 500
    assert requests.get(replay_server.url + "/job/2", timeout=5).status_code == 503
    assert requests.get(replay_server.url + "/job/3", timeout=5).status_code == 200


def test_truncated_with_full_length_is_an_incomplete_read(replay_server):
    replay_server.route("/table.vot", VOTABLE_BODY, content_type="application/x-votable+xml")
    replay_server.faults("/table.vot", [Fault.truncated(fraction=0.5)])
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        _ = requests.get(replay_server.url + "/table.vot", timeout=5).content
    assert requests.get(replay_server.url + "/table.vot", timeout=5).content == VOTABLE_BODY


def test_truncated_with_honest_length_is_a_short_body(replay_server):
    replay_server.route("/table.vot", VOTABLE_BODY)
    replay_server.faults("/table.vot", [Fault.truncated(fraction=0.25, declare_full_length=False)])
    reply = requests.get(replay_server.url + "/table.vot", timeout=5)
    assert reply.status_code == 200
    assert reply.content == VOTABLE_BODY[:len(VOTABLE_BODY) // 4]
    assert not reply.content.rstrip().endswith(b"</VOTABLE>")
    with pytest.raises(ValueError, match="fraction"):
        Fault.truncated(fraction=1.0)


@pytest.mark.parametrize("code", [200, 502])
def test_html_error_page(replay_server, code):
    replay_server.route("/data.csv", "a,b\n", content_type="text/csv")
    replay_server.faults("/data.csv", [Fault.html_error(code)])
    reply = requests.get(replay_server.url + "/data.csv", timeout=5)
    assert reply.status_code == code
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.lstrip().startswith("<!DOCTYPE html>")
    assert requests.get(replay_server.url + "/data.csv", timeout=5).text == "a,b\n"


def test_hang_exceeds_client_timeout(replay_server):
    replay_server.route("/slow", "finally")
    replay_server.faults("/slow", [Fault.hang(2.0)])
    start = time.perf_counter()
    with pytest.raises(requests.Timeout):
        requests.get(replay_server.url + "/slow", timeout=0.5)
    waited = time.perf_counter() - start
    assert 0.45 < waited < 1.5
    # the next request is answered normally while the hung one still sleeps
    assert requests.get(replay_server.url + "/slow", timeout=5).text == "finally"


def test_stop_releases_a_hung_request():
    server = ReplayServer().start()
    server.route("/slow", "late")
    server.faults("/slow", [Fault.hang(30.0)])
    outcome = []
    client = threading.Thread(target=lambda: outcome.append(
        requests.get(server.url + "/slow", timeout=10).text))
    client.start()
    while server.count("/slow") == 0:
        time.sleep(0.01)
    start = time.perf_counter()
    server.stop()
    client.join(timeout=5)
    assert time.perf_counter() - start < 2.0
    assert outcome == ["late"]


def test_reset_closes_without_response(replay_server):
    replay_server.route("/data", "ok")
    replay_server.faults("/data", [Fault.reset()])
    with pytest.raises(requests.ConnectionError):
        requests.get(replay_server.url + "/data", timeout=5)
    assert requests.get(replay_server.url + "/data", timeout=5).text == "ok"


def test_faults_reject_non_fault_objects(replay_server):
    with pytest.raises(TypeError, match="Fault"):
        replay_server.faults("/x", [503])


def test_latency_global_and_per_route(replay_server):
    replay_server.route("/fast", "f")
    replay_server.route("/slow", "s", latency=0.15)
    start = time.perf_counter()
    requests.get(replay_server.url + "/slow", timeout=5)
    assert time.perf_counter() - start >= 0.15

    replay_server.latency = 0.1
    start = time.perf_counter()
    requests.get(replay_server.url + "/fast", timeout=5)
    assert time.perf_counter() - start >= 0.1
    start = time.perf_counter()
    requests.get(replay_server.url + "/slow", timeout=5)
    assert time.perf_counter() - start >= 0.25


def test_concurrent_requests_are_served_in_parallel():
    with ReplayServer(latency=0.2) as server:
        server.route("/item", "x")
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=10) as pool:
            texts = list(pool.map(
                lambda _: requests.get(server.url + "/item", timeout=5).text, range(10)))
        elapsed = time.perf_counter() - start
    assert texts == ["x"] * 10
    # served one after the other this would take 10 * 0.2 s = 2 s
    assert 0.2 <= elapsed < 1.0
    assert server.count("/item") == 10
