"""Fault injection over the local stand-ins of the per-target HTTP readers.

Readers: ``ztf`` (light-curve API route), ``panstarrs`` (MAST catalogs API
route, CSV and VOTable answers) and ``hcv`` (MAST HSC API).  Each stand-in
answers three targets from a small fake sky; every fault of
`multilc.testing.Fault` is injected on every request path of the reader:

* served **once**: the result must equal the fault-free run (the engine or
  the reader retries);
* served **always** (for the first target's requests, concurrency 1 so the
  order is known): the failure report names the archive and that target,
  and the other targets' results equal the fault-free run.

The counts (faults injected / survived / target results lost) are printed
(``pytest -s``) and checked.
"""
import io
import time

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

import multilc
from multilc.testing import Fault

TIMEOUT = 0.5
RETRIES = 2
RUN = dict(retries=RETRIES, backoff=0.01, timeout=TIMEOUT, progress=False, cache=False)
TARGETS = Table({"objectid": [1, 2, 3], "ra": [150.0, 10.0, 250.0],
                 "dec": [2.0, 40.0, -20.0]})

FAULTS = {
    "429+Retry-After": lambda: Fault.status(429, retry_after=1),
    "500": lambda: Fault.status(500),
    "502": lambda: Fault.status(502),
    "503": lambda: Fault.status(503),
    "truncated, full Content-Length": lambda: Fault.truncated(fraction=0.6,
                                                              declare_full_length=True),
    "truncated, matching Content-Length": lambda: Fault.truncated(
        fraction=0.6, declare_full_length=False),
    "connection reset": lambda: Fault.reset(),
    "hang past the timeout": lambda: Fault.hang(3 * TIMEOUT),
    "HTML with 200": lambda: Fault.html_error(200),
}


# --------------------------------------------------------------------------- stand-ins
def _csv(table):
    out = io.StringIO()
    table.write(out, format="ascii.csv")
    return out.getvalue()


def _which(ra):
    """Index of the target at *ra* (the stand-ins answer by position)."""
    return int(np.argmin(np.abs(np.asarray(TARGETS["ra"]) - float(ra))))


ZTF_HEADER = ("oid,expid,hjd,mjd,mag,magerr,catflags,filtercode,ra,dec,chi,sharp,"
              "filefracday,field,ccdid,qid,limitmag,magzp,magzprms,clrcoeff,clrcounc,"
              "exptime,airmass,programid")


def ztf_standin(server, monkeypatch):
    def handler(request):
        _, ra, dec, _ = request.args["POS"].split()
        k = _which(ra)
        lines = [ZTF_HEADER]
        for e in range(6):
            lines.append(f"{700 + k},{e},{2458300.75 + 3.5 * e + k},0,{17.0 + 0.1 * e + k},"
                         f"{0.02 + 0.001 * e},0,{'zg' if e % 2 else 'zr'},{ra},{dec}"
                         + ",1" * 14)
        return (200, {"Content-Type": "text/csv"}, "\n".join(lines) + "\n")

    server.route("/ztf/lc", handler=handler)
    monkeypatch.setenv("MULTILC_ZTF_API_URL", server.url_for("/ztf/lc"))
    return "ztf", {"ztf": {"route": "api"}}, ["/ztf/lc"]


def panstarrs_standin(fmt):
    def setup(server, monkeypatch):
        def render(table):
            if fmt == "csv":
                return (200, {"Content-Type": "text/csv"}, _csv(table))
            buf = io.BytesIO()
            table.write(buf, format="votable")
            return (200, {"Content-Type": "text/xml"}, buf.getvalue())

        def mean(request):
            k = _which(request.args["ra"])
            return render(Table({"objID": [108000000000 + k], "raMean": [float(request.args["ra"])],
                                 "decMean": [float(request.args["dec"])],
                                 "nDetections": [8]}))

        def detection(request):
            k = int(request.args["objID"]) - 108000000000
            n = 8
            return render(Table({
                "objID": np.full(n, 108000000000 + k), "detectID": np.arange(n),
                "filterID": np.arange(n) % 5 + 1,
                "obsTime": 55500.25 + 11.5 * np.arange(n) + k,
                "ra": np.full(n, TARGETS["ra"][k]), "dec": np.full(n, TARGETS["dec"][k]),
                "psfFlux": 1e-4 * (1 + 0.05 * np.arange(n) + k),
                "psfFluxErr": np.full(n, 2e-6), "infoFlag": np.zeros(n, int)}))

        base = "/api/v0.1/panstarrs/dr2"
        server.route(f"{base}/mean.{fmt}", handler=mean)
        server.route(f"{base}/detection.{fmt}", handler=detection)
        monkeypatch.setenv("MULTILC_PANSTARRS_API_URL",
                           server.url_for("/api/v0.1/panstarrs"))
        monkeypatch.setenv("MULTILC_PANSTARRS_RESPONSE_FORMAT", fmt)
        return ("panstarrs", {"panstarrs": {"route": "service", "chunk_size": 1}},
                [f"{base}/mean.{fmt}", f"{base}/detection.{fmt}"])

    return setup


def hcv_standin(server, monkeypatch):
    def summary(request):
        k = _which(request.args["ra"])
        return (200, {"Content-Type": "text/csv"}, _csv(Table({
            "MatchID": [5000 + k], "RA": [float(request.args["ra"])],
            "Dec": [float(request.args["dec"])], "Filter": ["ACS_F814W"]})))

    def lightcurve(request):
        k = int(request.args["MatchID"]) - 5000
        n = 7
        return (200, {"Content-Type": "text/csv"}, _csv(Table({
            "MatchID": np.full(n, 5000 + k),
            "Filter": np.where(np.arange(n) % 2, "ACS_F814W", "WFC3_F475W"),
            "MJD": 53000.25 + 9.5 * np.arange(n) + k, "CorrMag": 20.0 + 0.1 * np.arange(n) + k,
            "MagErr": np.full(n, 0.05), "ImageName": [f"img{i}" for i in range(n)]})))

    server.route("/api/v0.1/hsc/v3/hcvsummary.csv", handler=summary)
    server.route("/api/v0.1/hsc/v3/hcv.csv", handler=lightcurve)
    monkeypatch.setenv("MULTILC_HCV_URL", server.url + "/api/v0.1/hsc")
    return "hcv", {"hcv": {}}, ["/api/v0.1/hsc/v3/hcvsummary.csv", "/api/v0.1/hsc/v3/hcv.csv"]


def batched(setup):
    """The same stand-in with all three targets in one batch: faults are then
    met by the reader's own per-target isolation and retries."""
    def wrapped(server, monkeypatch):
        # the engine does not (yet) hand its retry settings to the reader
        monkeypatch.setenv("MULTILC_BACKOFF", "0.01")
        monkeypatch.setenv("MULTILC_RETRIES", str(RETRIES))
        archive, options, paths = setup(server, monkeypatch)
        options = {archive: {**options[archive], "chunk_size": 3}}
        return archive, options, paths
    return wrapped


STANDINS = {"ztf": ztf_standin, "panstarrs-csv": panstarrs_standin("csv"),
            "panstarrs-votable": panstarrs_standin("votable"), "hcv": hcv_standin,
            "panstarrs-csv-batched": batched(panstarrs_standin("csv")),
            "hcv-batched": batched(hcv_standin)}
#: Readers whose faults are tried "once" only: in a batch of three targets a
#: path's fault queue is met by whichever target asks next, so "always for
#: target 1" cannot be staged with queued faults (see the handler-based
#: persistent-failure tests in test_panstarrs.py / test_hcv.py instead).
ONCE_ONLY = {"panstarrs-csv-batched", "hcv-batched"}
#: Faults tried per reader (the VOTable variant differs from CSV only in how a
#: cut-off body is recognised).
FAULTS_OF = {"panstarrs-votable": ("truncated, full Content-Length",
                                   "truncated, matching Content-Length", "HTML with 200")}


# --------------------------------------------------------------------------- helpers
def rows_of(lc, objectids=None):
    """(objectid, band, time, flux, flux_err) rows, sorted, for comparison."""
    ds = lc.ds
    if not len(lc):
        return []
    obj = np.asarray(ds["objectid"].values)[ds["obs_object"].values]
    band = np.asarray(ds["band"].values)[ds["obs_band"].values]
    rows = sorted(zip(obj.tolist(), band.tolist(), np.round(lc.time.mjd, 9).tolist(),
                      lc.flux.to_value(u.mJy).tolist(), lc.flux_err.to_value(u.mJy).tolist()))
    if objectids is not None:
        rows = [r for r in rows if r[0] in objectids]
    return rows


def collect(archive, options, concurrency=None):
    opts = {k: dict(v) for k, v in options.items()}
    if concurrency is not None:
        opts[archive]["concurrency"] = concurrency
    return multilc.collect(TARGETS, archives=[archive], options=opts, **RUN)


# --------------------------------------------------------------------------- the suite
@pytest.mark.parametrize("reader", sorted(STANDINS))
def test_faults_served_once_and_always(reader, replay_server, monkeypatch):
    archive, options, paths = STANDINS[reader](replay_server, monkeypatch)
    clean = collect(archive, options)
    assert clean.report.ok, clean.report.summary()
    baseline = rows_of(clean)
    assert {r[0] for r in baseline} == {1, 2, 3}
    injected = survived = lost = 0
    problems = []
    for path in paths:
        for name, make in FAULTS.items():
            if name not in FAULTS_OF.get(reader, FAULTS):
                continue
            # ---- once: the result equals the fault-free run
            replay_server.clear()
            replay_server.faults(path, [make()])
            lc = collect(archive, options)
            injected += 1
            if lc.report.ok and rows_of(lc) == baseline:
                survived += 1
            else:
                problems.append(f"once {name} on {path}: {lc.report.summary()}")
            lost += len({r[0] for r in baseline} - {r[0] for r in rows_of(lc)})
            if reader in ONCE_ONLY:
                continue
            # ---- always (for target 1, concurrency 1): target 1 fails, named;
            # the others keep exactly their fault-free results
            replay_server.clear()
            replay_server.faults(path, [make() for _ in range(RETRIES + 1)])
            lc = collect(archive, options, concurrency=1)
            injected += 1
            failed = sorted(i for f in lc.report.failures for i in f.objectids)
            named = all(f.archive == archive and "1" in f.message for f in lc.report.failures)
            others = rows_of(lc, {2, 3}) == rows_of(clean, {2, 3})
            if failed == [1] and named and others:
                survived += 1
            else:
                problems.append(f"always {name} on {path}: failed={failed} named={named} "
                                f"others intact={others}: {lc.report.summary()}")
            lost += len({2, 3} - {r[0] for r in rows_of(lc)})
    print(f"\n[{reader}] faults injected {injected}, survived {survived}, "
          f"other-target results lost {lost}")
    assert not problems, "\n".join(problems)
    assert lost == 0 and survived == injected


def test_always_failing_html_page_is_named_with_its_title(replay_server, monkeypatch):
    archive, options, paths = hcv_standin(replay_server, monkeypatch)
    replay_server.faults(paths[1], [Fault.html_error(200) for _ in range(RETRIES + 1)])
    lc = collect(archive, {"hcv": {}}, concurrency=1)
    (failure,) = lc.report.failures
    assert failure.objectids == [1] and "HTML" in failure.message
    assert "200 OK" in failure.message        # the page's title


def test_retry_after_is_honoured(replay_server, monkeypatch):
    archive, options, paths = ztf_standin(replay_server, monkeypatch)
    replay_server.faults(paths[0], [Fault.status(429, retry_after=1)])
    lc = multilc.collect(TARGETS[:1], archives=[archive], options=options, **RUN)
    assert lc.report.ok
    first, second = replay_server.requests[:2]
    assert second.time - first.time >= 0.95


def test_html_200_is_retried_once_then_permanent(replay_server, monkeypatch):
    archive, options, paths = ztf_standin(replay_server, monkeypatch)
    replay_server.faults(paths[0], [Fault.html_error(200) for _ in range(10)])
    started = time.monotonic()
    lc = multilc.collect(TARGETS[:1], archives=[archive], options=options,
                         **{**RUN, "retries": 5})
    assert not lc.report.ok and time.monotonic() - started < 5
    assert replay_server.count(paths[0]) == 2


def test_incomplete_answers_are_not_cached(replay_server, monkeypatch, tmp_path):
    archive, options, paths = hcv_standin(replay_server, monkeypatch)
    failing = {"left": RETRIES + 1}   # target 1's summary fails every try of the run
    good = replay_server._match(paths[0], "GET")[0].handler

    def summary(request):
        if _which(request.args["ra"]) == 0 and failing["left"] > 0:
            failing["left"] -= 1
            return 503, {"Content-Type": "text/plain"}, "busy"
        return good(request)

    replay_server.route(paths[0], handler=summary)
    opts = {"hcv": {"chunk_size": 3, "concurrency": 1}}
    run = {**RUN, "cache": True, "cache_dir": tmp_path}
    first = multilc.collect(TARGETS, archives=[archive], options=opts, **run)
    assert sorted(i for f in first.report.failures for i in f.objectids) == [1]
    assert {r[0] for r in rows_of(first)} == {2, 3}
    # the answer missed target 1, so it was not cached: the rerun asks again
    again = multilc.collect(TARGETS, archives=[archive], options=opts, **run)
    assert again.report.ok and {r[0] for r in rows_of(again)} == {1, 2, 3}
    assert again.report.batches["hcv"]["cached"] == 0


def test_run_per_target_isolates_and_retries():
    from multilc.collect.api import Archive, Batch, PermanentError, TransientError
    from multilc.collect.contract import failure_of, run_per_target

    class Demo(Archive):
        name = "demo_isolation"

    arch = Demo()
    batch = Batch("demo_isolation", 0, np.array([7, 8, 9]), np.zeros(3), np.zeros(3),
                  np.array(["", "", ""]), {})
    calls = []

    def fetch(i):
        calls.append(i)
        if i == 0 and calls.count(0) == 1:
            raise TransientError("busy", archive=arch.name, objectids=[7])
        if i == 1:
            raise TypeError("bad cell")
        return f"answer {i}"

    out = run_per_target(arch, batch, fetch, retries=2, backoff=0.001)
    assert [e.get("answer") for e in out] == ["answer 0", None, "answer 2"]
    assert calls.count(0) == 2 and calls.count(1) == 1 and calls.count(2) == 1
    f = failure_of(arch.name, out[1])
    assert f.objectids == [8] and f.error_type == "TypeError" and not f.transient
    assert f.attempts == 1
    assert "demo_isolation" in f.message and "8" in f.message
    # every target failing: the batch fails as a whole, as a multilc error
    def boom(i):
        raise OverflowError("x") if i == 0 else ZeroDivisionError("y")

    with pytest.raises(PermanentError, match="OverflowError") as info:
        run_per_target(arch, batch, boom, retries=0, backoff=0)
    assert info.value.objectids == [7, 8, 9]
    assert isinstance(info.value.__cause__, OverflowError)
