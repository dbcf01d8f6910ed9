"""The collection engine against a local stand-in service (multilc.testing.demo_archive)."""
import concurrent.futures as cf
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy import units as u

import multilc
from multilc.collect import Runtime, get_archive, run_batch
from multilc.testing import Fault, ReplayServer
from multilc.testing.demo_archive import DemoArchive, demo_service
from tests.collect.conftest import random_targets

PATH = "/demo/lightcurves"
FAST = dict(retries=3, backoff=0.01, timeout=2.0, progress=False)


targets = random_targets


def expected_flux(objectids, n_points=3):
    return np.repeat(np.asarray(objectids) / 10, n_points)


def test_batches_one_request_per_chunk(service):
    lc = multilc.collect(targets(120), archives="demo", chunk_size=50, **FAST)
    assert service.count(PATH) == 3  # ceil(120 / 50)
    sizes = sorted(len(r.args["id"].split(",")) for r in service.requests)
    assert sizes == [20, 50, 50]
    assert list(lc.objectids) == list(range(1, 121))
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_flux(range(1, 121)))
    assert lc.report.requests == {"demo": 3} and lc.report.ok


def test_targets_coordinates_sent(service):
    sky = targets(3)
    multilc.collect(sky, archives="demo", **FAST)
    sent = service.requests[0].args
    np.testing.assert_allclose([float(x) for x in sent["ra"].split(",")], sky.ra.deg,
                               atol=1e-7)


@pytest.mark.parametrize("fault", [Fault.status(503), Fault.status(429),
                                   Fault.status(500), Fault.truncated(), Fault.reset()])
def test_transient_fault_retried_with_identical_result(service, fault, tmp_path):
    clean = multilc.collect(targets(10), archives="demo", cache=False, **FAST)
    service.clear()
    service.faults(PATH, [fault])
    retried = multilc.collect(targets(10), archives="demo", cache=False, **FAST)
    assert retried == clean
    assert service.count(PATH) == 2
    assert retried.report.ok


def test_hang_past_timeout_is_retried(service):
    service.faults(PATH, [Fault.hang(1.5)])
    lc = multilc.collect(targets(4), archives="demo", cache=False, retries=2,
                         backoff=0.01, timeout=0.5, progress=False)
    assert lc.report.ok and len(lc) == 12
    assert service.count(PATH) == 2


def test_retries_exhausted_reported(service):
    service.faults(PATH, [Fault.status(503)] * 10)
    lc = multilc.collect(targets(5), archives="demo", cache=False, **FAST)
    assert len(lc) == 0
    (failure,) = lc.report.failures
    assert failure.archive == "demo" and failure.transient
    assert failure.objectids == [1, 2, 3, 4, 5]
    assert "503" in failure.message and "demo" in failure.message
    assert failure.attempts == 4 == service.count(PATH)


def test_permanent_fault_not_retried_and_other_chunks_survive(service):
    # The second chunk's request gets an HTTP 400; chunks 1 and 3 must survive.
    calls = {"n": 0}

    def fail_second(request):
        calls["n"] += 1
        ids = [int(x) for x in request.args["id"].split(",")]
        if 11 in ids:
            return (400, {"Content-Type": "text/plain"}, "bad position list")
        lines = ["objectid,mjd_tdb,flux_mjy,flux_err_mjy,band"]
        lines += [f"{k},{58000 + i},{k / 10},{k / 100},ztf:g" for k in ids for i in range(3)]
        return (200, {"Content-Type": "text/csv"}, "\n".join(lines))

    service.route(PATH, handler=fail_second)
    lc = multilc.collect(targets(30), archives="demo", chunk_size=10, cache=False, **FAST)
    assert calls["n"] == 3  # no retry of the 400
    (failure,) = lc.report.failures
    assert failure.objectids == list(range(11, 21))
    assert "HTTP 400" in failure.message and "bad position list" in failure.message
    assert not failure.transient
    # every requested target stays in the object table; the failed ones have no data
    assert sorted(lc.objectids) == list(range(1, 31))
    assert sorted(set(lc.objectid.tolist())) == list(range(1, 11)) + list(range(21, 31))


def test_html_page_with_200_is_retried_once(service):
    clean = multilc.collect(targets(3), archives="demo", cache=False, **FAST)
    service.clear()
    service.faults(PATH, [Fault.html_error(code=200)])
    lc = multilc.collect(targets(3), archives="demo", cache=False, **FAST)
    assert lc.report.ok and lc == clean
    assert service.count(PATH) == 2


def test_html_page_twice_is_permanent_with_its_title(service):
    service.faults(PATH, [Fault.html_error(code=200)] * 5)
    lc = multilc.collect(targets(3), archives="demo", cache=False, **FAST)
    (failure,) = lc.report.failures
    assert service.count(PATH) == 2  # once retried, then permanent (retries=3)
    assert not failure.transient and failure.attempts == 2
    assert "demo" in failure.message and "HTML page" in failure.message
    assert "1, 2, 3" in failure.message
    assert "title" in failure.message and "OK" in failure.message


def test_cache_hit_makes_no_request(service, tmp_path):
    first = multilc.collect(targets(7), archives="demo", cache_dir=tmp_path, **FAST)
    assert service.count(PATH) == 1
    second = multilc.collect(targets(7), archives="demo", cache_dir=tmp_path, **FAST)
    assert service.count(PATH) == 1 and second == first
    assert second.report.batches["demo"]["cached"] == 1
    # a different radius is a different request
    multilc.collect(targets(7), archives="demo", cache_dir=tmp_path, radius=2 * u.arcsec,
                    **FAST)
    assert service.count(PATH) == 2


def test_offline_uses_only_the_cache(service, tmp_path):
    lc = multilc.collect(targets(4), archives="demo", cache_dir=tmp_path, offline=True,
                         **FAST)
    assert service.count(PATH) == 0 and len(lc) == 0
    assert lc.report.failures[0].error_type == "OfflineCacheMiss"
    online = multilc.collect(targets(4), archives="demo", cache_dir=tmp_path, **FAST)
    offline = multilc.collect(targets(4), archives="demo", cache_dir=tmp_path,
                              offline=True, **FAST)
    assert service.count(PATH) == 1 and offline == online


def test_checkpoint_resume_skips_finished_batches(service, tmp_path):
    ckpt = tmp_path / "ckpt"
    first = multilc.collect(targets(40), archives="demo", chunk_size=10, cache=False,
                            checkpoint=ckpt, **FAST)
    assert service.count(PATH) == 4
    assert len(list((ckpt / "demo").glob("*.json"))) == 4
    again = multilc.collect(targets(40), archives="demo", chunk_size=10, cache=False,
                            checkpoint=ckpt, **FAST)
    assert service.count(PATH) == 4 and again == first
    assert again.report.batches["demo"]["resumed"] == 4


def test_killed_run_resumes_losing_only_batches_in_flight(tmp_path):
    """Kill a collecting process with SIGKILL, rerun, compare with a clean run."""
    n_targets, chunk = 60, 5
    with ReplayServer(latency=0.25) as server:
        url = demo_service(server)
        ckpt = tmp_path / "ckpt"
        script = textwrap.dedent(f"""
            import numpy as np, astropy.units as u
            from astropy.coordinates import SkyCoord
            import multilc
            import multilc.testing.demo_archive
            rng = np.random.default_rng(42)
            n = {n_targets}
            sky = SkyCoord(rng.uniform(0, 360, n) * u.deg,
                           np.degrees(np.arcsin(rng.uniform(-1, 1, n))) * u.deg)
            multilc.collect(sky, archives="demo", chunk_size={chunk}, concurrency=2,
                            cache=False, checkpoint={str(ckpt)!r}, progress=False,
                            retries=0)
        """)
        env = dict(os.environ, MULTILC_DEMO_URL=url)
        proc = subprocess.Popen([sys.executable, "-c", script], env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = list((ckpt / "demo").glob("*.json")) if (ckpt / "demo").exists() else []
            if len(done) >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = len(list((ckpt / "demo").glob("*.json")))
        total = n_targets // chunk
        assert 4 <= finished < total, "the kill should land mid-run"
        sent_before = server.count(PATH)
        # no half-written checkpoint is mistaken for a finished batch
        assert not list((ckpt / "demo").glob("*.parquet.tmp"))

        import multilc.testing.demo_archive  # noqa: F401
        os.environ["MULTILC_DEMO_URL"] = url
        try:
            resumed = multilc.collect(targets(n_targets), archives="demo",
                                      chunk_size=chunk, concurrency=2, cache=False,
                                      checkpoint=ckpt, **FAST)
        finally:
            del os.environ["MULTILC_DEMO_URL"]
        resent = server.count(PATH) - sent_before
        assert resent == total - finished
        assert resumed.report.batches["demo"]["resumed"] == finished
        assert list(resumed.objectids) == list(range(1, n_targets + 1))
        np.testing.assert_allclose(resumed.flux.value,
                                   expected_flux(range(1, n_targets + 1)))


def test_batches_and_results_are_picklable(service):
    archive = DemoArchive(chunk_size=4)
    sample = multilc.samples.as_sample(targets(8))
    batches = archive.plan(sample)
    runtime = Runtime.from_conf(use_cache=False, retries=0, timeout=2.0)
    restored = pickle.loads(pickle.dumps((archive, batches[0], runtime)))
    result = run_batch(*restored)
    assert pickle.loads(pickle.dumps(result)).lc == result.lc
    assert list(result.lc.objectids) == [1, 2, 3, 4]


def test_external_executor_processes(service):
    """Batches run on another executor (here processes) give the same result."""
    here = multilc.collect(targets(20), archives="demo", chunk_size=5, cache=False,
                           **FAST)
    with cf.ProcessPoolExecutor(2) as pool:
        there = multilc.collect(targets(20), archives="demo", chunk_size=5, cache=False,
                                executor=pool, **FAST)
    assert there == here


def test_concurrency_is_bounded(service):
    service.latency = 0.2
    multilc.collect(targets(40), archives="demo", chunk_size=5, concurrency=3,
                    cache=False, **FAST)
    times = sorted(r.time for r in service.requests)
    # with 3 in flight and 0.2 s each, 8 requests arrive in about 3 waves
    waves = np.diff(times) > 0.1
    assert 2 <= waves.sum() <= 3
    assert service.count(PATH) == 8


def test_unknown_archive_and_options():
    with pytest.raises(KeyError, match="Known archives"):
        multilc.collect(targets(1), archives="ztff")
    with pytest.raises(TypeError, match="unknown options"):  # also an InputError
        DemoArchive(color="red")
    with pytest.raises(TypeError, match="angle Quantity"):
        DemoArchive(radius=1.0)
    with pytest.raises(u.UnitsError, match="angle"):
        DemoArchive(radius=1 * u.s)
    assert get_archive("demo") is DemoArchive


def test_read_with_archive_goes_through_collect(service):
    lc = multilc.MultiBandLightCurve.read(targets(3), archive="demo", **FAST)
    assert list(lc.objectids) == [1, 2, 3]
    assert "demo" in multilc.MultiBandLightCurve.read.archives()
    table = multilc.MultiBandLightCurve.read.registry.get_formats(
        multilc.MultiBandLightCurve)
    assert "demo" in list(table["Format"])


@pytest.mark.filterwarnings("ignore:Couldn't detect a suitable IP address")
def test_dask_distributed_client(service):
    """The same batches run on a dask.distributed cluster give the same result."""
    distributed = pytest.importorskip("distributed")
    here = multilc.collect(targets(20), archives="demo", chunk_size=5, cache=False,
                           **FAST)
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1,
                            dashboard_address="127.0.0.1:0",
                            worker_dashboard_address="127.0.0.1:0") as client:
        there = multilc.collect(targets(20), archives="demo", chunk_size=5, cache=False,
                                executor=client, **FAST)
        assert sum(len(v) for v in client.processing().values()) == 0
    assert there == here
    assert service.count(PATH) == 8  # 4 batches each time
