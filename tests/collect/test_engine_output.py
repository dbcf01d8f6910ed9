"""Streamed output (collect(output=...)) and runs on a dask cluster (issue 12).

The demo stand-in's answers are known without multilc: target k has 3 points in
ztf:g of flux k/10 mJy at MJD 58000, 58001, 58002.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time

import multilc
from multilc import MultiBandLightCurve
from multilc.collect import CollectedDataset, register_archive
from multilc.testing import Fault, ReplayServer
from multilc.testing.demo_archive import DemoArchive, demo_service
from tests.collect.conftest import random_targets

PATH = "/demo/lightcurves"
FAST = dict(retries=3, backoff=0.01, timeout=5.0, progress=False, cache=False)


targets = random_targets


@register_archive
class _OtherDemo(DemoArchive):
    """The demo service under a second name, for a two-archive dataset."""

    name = "demo_other"
    bands = ("ztf:r",)

    def parse(self, raw, batch):
        return super().parse(raw.replace("ztf:g", "ztf:r"), batch)


def test_streamed_output_equals_the_in_memory_result(service, tmp_path):
    memory = multilc.collect(targets(30), archives="demo", chunk_size=7, **FAST)
    out = multilc.collect(targets(30), archives="demo", chunk_size=7,
                          output=tmp_path / "lc.parquet", **FAST)
    assert isinstance(out, CollectedDataset) and out.report.ok
    assert len(out.parts) == 5  # ceil(30 / 7), one part per batch
    assert all(p.parent.name == "archive=demo" for p in out.parts)
    assert out.read() == memory
    assert MultiBandLightCurve.read(tmp_path / "lc.parquet") == memory
    assert MultiBandLightCurve.read(str(tmp_path / "lc.parquet")) == memory
    assert out.report.requests == memory.report.requests == {"demo": 5}
    # values computed independently of multilc
    lc = out.read()
    np.testing.assert_allclose(lc.flux.to_value(u.mJy),
                               np.repeat(np.arange(1, 31) / 10, 3))
    # the folder is a plain Hive-partitioned parquet dataset
    import pyarrow.dataset as pds

    table = pds.dataset(tmp_path / "lc.parquet", format="parquet",
                        partitioning="hive").to_table()
    assert table.num_rows == 90 and set(table["archive"].to_pylist()) == {"demo"}


def test_two_archives_partition_and_selection(service, tmp_path):
    memory = multilc.collect(targets(12), archives=["demo", "demo_other"], chunk_size=5,
                             **FAST)
    out = multilc.collect(targets(12), archives=["demo", "demo_other"], chunk_size=5,
                          output=tmp_path / "two", **FAST)
    assert out.read() == memory
    assert sorted({p.parent.name for p in out.parts}) == ["archive=demo",
                                                         "archive=demo_other"]
    only = out.read(archives="demo_other")
    assert set(only.bands) == {"ztf:r"} and len(only) == 36
    assert MultiBandLightCurve.read(tmp_path / "two", archives=["demo_other"],
                                    objectid=[1, 2]) == only.select(objectid=[1, 2])
    # row selection by object, band and time, against the in-memory selection
    window = Time([58000.5, 58002.0], format="mjd", scale="tdb")
    picked = out.read(objectid=[3, 4, 11], band="ztf:g", time_range=window)
    expect = memory.select(objectid=[3, 4, 11], band="ztf:g", time_range=window)
    assert picked == expect
    assert sorted(picked.objectids) == [3, 4, 11] and len(picked) == 6
    np.testing.assert_allclose(np.sort(picked.flux.to_value(u.mJy)),
                               np.sort(np.repeat([0.3, 0.4, 1.1], 2)))
    # MJD numbers work as a time range too
    assert out.read(time_range=[58000.5, 58002.0]) == memory.select(time_range=window)
    # column selection keeps what a light curve needs
    slim = out.read(columns=[])
    assert len(slim) == len(memory)


def test_rerun_with_the_same_output_resumes(service, tmp_path):
    first = multilc.collect(targets(20), archives="demo", chunk_size=5,
                            output=tmp_path / "o", **FAST)
    assert service.count(PATH) == 4
    again = multilc.collect(targets(20), archives="demo", chunk_size=5,
                            output=tmp_path / "o", **FAST)
    assert service.count(PATH) == 4
    assert again.report.batches["demo"]["resumed"] == 4
    assert again.read() == first.read()


def test_damaged_part_is_reported_and_rerun(service, tmp_path):
    first = multilc.collect(targets(20), archives="demo", chunk_size=5,
                            output=tmp_path / "o", **FAST).read()
    part = sorted((tmp_path / "o" / "archive=demo").glob("part-*.parquet"))[2]
    part.write_bytes(part.read_bytes()[:100])
    again = multilc.collect(targets(20), archives="demo", chunk_size=5,
                            output=tmp_path / "o", **FAST)
    assert service.count(PATH) == 5
    assert len(again.report.warnings) == 1 and "checksum" in again.report.warnings[0]
    assert again.read() == first


def test_failed_batch_in_streamed_mode(service, tmp_path):
    service.faults(PATH, [Fault.status(400)])
    out = multilc.collect(targets(15), archives="demo", chunk_size=5, concurrency=1,
                          output=tmp_path / "o", **FAST)
    (failure,) = out.report.failures
    assert failure.objectids == [1, 2, 3, 4, 5] and "HTTP 400" in failure.message
    assert len(out.parts) == 2 and out.report.batches["demo"]["failed"] == 1
    lc = out.read()
    assert sorted(set(lc.objectid.tolist())) == list(range(6, 16))
    index = json.loads((tmp_path / "o" / "_multilc.json").read_text())
    assert index["report"]["failures"][0]["objectids"] == [1, 2, 3, 4, 5]
    # the rerun only asks for the failed batch
    again = multilc.collect(targets(15), archives="demo", chunk_size=5, concurrency=1,
                            output=tmp_path / "o", **FAST)
    assert again.report.ok and service.count(PATH) == 4
    assert sorted(again.read().objectids) == list(range(1, 16))


def test_parts_of_an_earlier_run_are_not_read(service, tmp_path):
    multilc.collect(targets(10), archives="demo", chunk_size=3, output=tmp_path / "o",
                    **FAST)
    small = multilc.collect(targets(4), archives="demo", chunk_size=2,
                            output=tmp_path / "o", **FAST)
    assert sorted(small.read().objectids) == [1, 2, 3, 4]
    assert len(small.parts) == 2


def test_to_dask(service, tmp_path):
    pytest.importorskip("dask.dataframe")
    out = multilc.collect(targets(9), archives="demo", chunk_size=4, output=tmp_path / "o",
                          **FAST)
    frame = out.to_dask()
    assert frame.npartitions == 3 and len(frame) == 27
    assert sorted(frame["objectid"].compute().unique().tolist()) == list(range(1, 10))


def test_killed_streaming_run_resumes(tmp_path):
    """SIGKILL a streaming run; the rerun sends only what was not written."""
    n_targets, chunk = 60, 5
    with ReplayServer(latency=0.25) as server:
        url = demo_service(server)
        out = tmp_path / "o"
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
                            cache=False, output={str(out)!r}, progress=False, retries=0)
        """)
        env = dict(os.environ, MULTILC_DEMO_URL=url)
        proc = subprocess.Popen([sys.executable, "-c", script], env=env)
        folder = out / "archive=demo"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if folder.exists() and len(list(folder.glob("_part-*.json"))) >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = len(list(folder.glob("_part-*.json")))
        total = n_targets // chunk
        assert 4 <= finished < total, "the kill should land mid-run"
        assert not (out / "_multilc.json").exists()  # the run never finished
        # the unfinished dataset is readable already (every verified part on disk)
        partial = MultiBandLightCurve.read(out)
        assert len(partial.objectids) >= 4 * chunk
        sent = server.count(PATH)
        os.environ["MULTILC_DEMO_URL"] = url
        try:
            resumed = multilc.collect(targets(n_targets), archives="demo",
                                      chunk_size=chunk, concurrency=2, output=out, **FAST)
        finally:
            del os.environ["MULTILC_DEMO_URL"]
        assert server.count(PATH) - sent == total - finished
        assert resumed.report.batches["demo"]["resumed"] == finished
        lc = resumed.read()
        assert list(lc.objectids) == list(range(1, n_targets + 1))
        np.testing.assert_allclose(lc.flux.to_value(u.mJy),
                                   np.repeat(np.arange(1, n_targets + 1) / 10, 3))


@pytest.fixture(scope="module")
def cluster():
    """A dask LocalCluster with two worker processes."""
    distributed = pytest.importorskip("distributed")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cl = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                      dashboard_address=None, host="127.0.0.1")
        client = distributed.Client(cl)
    yield client
    client.close()
    cl.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dask_local_cluster_equals_single_process(service, cluster, tmp_path):
    here = multilc.collect(targets(25), archives=["demo", "demo_other"], chunk_size=4,
                           **FAST)
    there = multilc.collect(targets(25), archives=["demo", "demo_other"], chunk_size=4,
                            executor=cluster, **FAST)
    assert there == here and there.report.ok
    assert len(service.requests) == 2 * 2 * 7  # 7 batches per archive, each run twice
    workers = cluster.run(os.getpid)
    assert len(workers) == 2 and os.getpid() not in workers.values()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dask_workers_write_their_parts(service, cluster, tmp_path):
    here = multilc.collect(targets(25), archives=["demo", "demo_other"], chunk_size=4,
                           **FAST)
    service.faults(PATH, [Fault.status(503)] * 2 + [Fault.status(400)])
    out = multilc.collect(targets(25), archives=["demo", "demo_other"], chunk_size=4,
                          executor=cluster, output=tmp_path / "dist", **FAST)
    # one batch failed permanently on a worker; the report says which, nothing else lost
    (failure,) = out.report.failures
    assert "HTTP 400" in failure.message and len(out.parts) == 13
    again = multilc.collect(targets(25), archives=["demo", "demo_other"], chunk_size=4,
                            executor=cluster, output=tmp_path / "dist", **FAST)
    assert again.report.ok and again.report.batches["demo"]["resumed"] + \
        again.report.batches["demo_other"]["resumed"] == 13
    assert again.read() == here


@register_archive
class _PerTarget(DemoArchive):
    """Target 3's rows are refused by the reader (a per-target failure)."""

    name = "demo_pertarget"

    def parse(self, raw, batch):
        from multilc.collect import Failure, ParseResult

        lines = raw.splitlines()
        kept = [line for line in lines if not line.startswith("3,")]
        result = super().parse("\n".join(kept) + "\n", batch)
        failures = [Failure(self.name, [3], "ValueError", "demo_pertarget: target 3 "
                            "refused")] if 3 in batch.objectid else []
        return ParseResult(result.lc, {"refused rows": len(lines) - len(kept)}, failures)


def test_per_target_failures_and_drops_survive_streaming_and_resume(service, tmp_path):
    memory = multilc.collect(targets(6), archives="demo_pertarget", chunk_size=4, **FAST)
    out = multilc.collect(targets(6), archives="demo_pertarget", chunk_size=4,
                          output=tmp_path / "o", **FAST)
    again = multilc.collect(targets(6), archives="demo_pertarget", chunk_size=4,
                            output=tmp_path / "o", **FAST)
    for report in (memory.report, out.report, again.report):
        (failure,) = report.failures
        assert failure.objectids == [3]
        assert report.dropped == {"demo_pertarget": {"refused rows": 3}}
    assert again.report.batches["demo_pertarget"]["resumed"] == 2
    assert out.read() == memory == again.read()
    assert 3 not in memory.objectid and len(set(memory.objectid.tolist())) == 5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dask_run_uses_and_fills_the_cache(service, cluster, tmp_path):
    kw = dict(archives="demo", chunk_size=5, executor=cluster, progress=False,
              retries=1, timeout=5.0, cache_dir=tmp_path / "cache")
    first = multilc.collect(targets(15), **kw)
    assert service.count(PATH) == 3
    second = multilc.collect(targets(15), **kw)
    assert service.count(PATH) == 3 and second == first
    assert second.report.batches["demo"]["cached"] == 3


def test_part_replaced_with_matching_checksum_but_no_parquet_is_rerun(service, tmp_path):
    import hashlib

    first = multilc.collect(targets(10), archives="demo", chunk_size=5,
                            output=tmp_path / "o", **FAST).read()
    sidecar = sorted((tmp_path / "o" / "archive=demo").glob("_part-*.json"))[0]
    part = sidecar.with_name(sidecar.name[1:].replace(".json", ".parquet"))
    part.write_bytes(b"not parquet")
    meta = json.loads(sidecar.read_text())
    meta.update(size=11, sha256=hashlib.sha256(b"not parquet").hexdigest())
    sidecar.write_text(json.dumps(meta))
    again = multilc.collect(targets(10), archives="demo", chunk_size=5,
                            output=tmp_path / "o", **FAST)
    assert service.count(PATH) == 3
    assert "unreadable parquet" in again.report.warnings[0]
    assert again.read() == first


def test_dataset_index_cannot_point_outside_its_folder(service, tmp_path):
    from multilc.errors import FileFormatError

    multilc.collect(targets(3), archives="demo", output=tmp_path / "o", **FAST)
    index = tmp_path / "o" / "_multilc.json"
    data = json.loads(index.read_text())
    data["parts"]["demo"] = ["../elsewhere/part-x.parquet"]
    index.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="outside the dataset folder"):
        MultiBandLightCurve.read(tmp_path / "o")
    index.write_text("{cut")
    with pytest.raises(FileFormatError, match="unreadable dataset index"):
        MultiBandLightCurve.read(tmp_path / "o")
