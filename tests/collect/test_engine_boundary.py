"""The engine's boundary (issue 10): safe cache, verified checkpoints, retries by the
book, scrubbed credentials, typed failures, input validation, cross-process safety.

Everything runs against the local demo stand-in (multilc.testing.demo_archive),
whose answers are known without multilc: target k has 3 points of flux k/10 mJy.
"""
import email.utils
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import time

import numpy as np
import pyarrow as pa
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table

import multilc
from multilc.collect import ParseResult, engine, register_archive
from multilc.collect.api import (Failure, dns_failure, html_title, parse_retry_after, scrub,
                                 setting)
from multilc.collect.cache import (BYTES_TYPE, TEXT_TYPE, TREE_TYPE, CacheEntryError,
                                   ResponseCache, UnsupportedResponse, decode_response,
                                   encode_response)
from multilc.collect.checkpoint import CheckpointStore
from multilc.errors import InputError
from multilc.testing import Fault
from multilc.testing.demo_archive import DemoArchive
from tests.collect.conftest import random_targets

PATH = "/demo/lightcurves"
FAST = dict(retries=3, backoff=0.01, timeout=2.0, progress=False)


targets = random_targets


@pytest.fixture
def sleeps(monkeypatch):
    """Record the engine's waits between retries instead of sleeping."""
    waited = []
    monkeypatch.setattr(engine, "_sleep", waited.append)
    return waited


def expected_flux(objectids, n_points=3):
    return np.repeat(np.asarray(objectids) / 10, n_points)


def entries(cache_dir, archive="demo"):
    folder = cache_dir / "responses" / archive
    return sorted(folder.glob("*.json")) if folder.exists() else []


# =========================================================================== cache
def test_cache_entry_is_raw_bytes_with_a_sidecar(service, tmp_path):
    lc = multilc.collect(targets(4), archives="demo", cache_dir=tmp_path, **FAST)
    (sidecar,) = entries(tmp_path)
    meta = json.loads(sidecar.read_text())
    payload = sidecar.with_suffix(".payload").read_bytes()
    assert meta["content_type"] == TEXT_TYPE and meta["archive"] == "demo"
    assert meta["key"] == sidecar.stem and meta["size"] == len(payload)
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert meta["multilc_version"] == multilc.__version__
    assert payload.startswith(b"objectid,mjd_tdb")  # the service's own bytes
    assert not list(tmp_path.rglob("*.pickle"))
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_flux(range(1, 5)))


def _reader_shapes():
    """One value of each shape the readers' query() returns (see multilc/archives)."""
    masked = Table({"objectid": np.array([1, 2], "int64"),
                    "name": np.array(["a", "bé"], dtype=object)},
                   meta={"QUERY_STATUS": "OK", "description": "heasarc-like"})
    masked["error_radius"] = MaskedColumn([0.5, 1800.0], mask=[False, True], unit="arcsec",
                                          description="radius")
    qt = QTable({"mjd": [58000.0, 58001.0], "flux": [1.0, 2.0] * u.mJy})
    return {
        "ztf/demo": "objectid,mjd\n1,58000\n",
        "gaia datalink zips": {"route": "service", "zips": [b"PK\x03\x04" + bytes(range(256))],
                               "matches": {"objectid": np.array([1, 2], "int64"),
                                           "sep_arcsec": np.array([0.1, np.nan])},
                               "data_structure": "INDIVIDUAL", "format": "csv"},
        "panstarrs service": {"route": "service", "format": "csv", "targets": [
            {"objectid": 1, "ra": 10.0, "dec": -5.0, "mean": "x" * 10000,
             "detections": {123456789012345678: "objID,obsTime\n"}, "error": None}]},
        "panstarrs bulk": {"route": "bulk", "matches": {"objID": np.array([5], "int64")},
                           "detections": pa.table({"objID": [5, 5], "psfFlux": [1.0, None]})},
        "wise/ztf bulk": pa.table({"ra": [1.0], "_target": pa.array([0], pa.int64()),
                                   "lc": pa.array([[1.0, 2.0]])}),
        "heasarc table": masked,
        "icecube table": qt,
        "tess products": {"targets": [{"objectid": 7, "season": np.int64(14),
                                       "products": [{"TIME": np.arange(3.0),
                                                     "QUALITY": np.zeros(3, "int64"),
                                                     "flux_unit": "e-/s", "bjdref": 2457000.0,
                                                     "shape": (3,)}]}]},
        "misc": {"u": u.deg, "q": 3 * u.arcsec, "inf": float("inf"), "b": True,
                 "masked": np.ma.MaskedArray([1.0, 2.0], mask=[True, False]),
                 "strs": np.array(["g", "r"]), "2d": np.arange(6).reshape(2, 3)[:, ::2]},
        "bytes": b"\x00\x01binary",
    }


def _same(a, b):
    if isinstance(a, pa.Table):
        return a.equals(b)
    if isinstance(a, Table):
        return type(a) is type(b) and a.colnames == b.colnames and all(
            np.array_equal(np.ma.getmaskarray(a[c]), np.ma.getmaskarray(b[c])) and
            np.array_equal(np.asarray(a[c]), np.asarray(b[c])) and
            getattr(a[c], "unit", None) == getattr(b[c], "unit", None)
            for c in a.colnames) and dict(a.meta) == dict(b.meta)
    if isinstance(a, np.ma.MaskedArray):
        return np.array_equal(a.mask, b.mask) and np.array_equal(a.data, b.data)
    if isinstance(a, u.Quantity):
        return a.unit == b.unit and np.array_equal(a.value, b.value)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
            a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and np.isnan(a):
        return np.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("shape", list(_reader_shapes()))
def test_every_reader_shape_round_trips_data_only(shape):
    raw = _reader_shapes()[shape]
    content_type, payload = encode_response(raw)
    assert b"\x80\x04\x95" not in payload  # no pickle protocol-4 frame anywhere
    back = decode_response(content_type, payload)
    assert _same(raw, back), shape


@pytest.mark.parametrize("value", [{1, 2}, object(), {"a": [lambda: 1]},
                                   np.array([object()], dtype=object)])
def test_unsupported_types_are_refused_not_pickled(value):
    with pytest.raises(UnsupportedResponse):
        encode_response(value)


class _Boom:
    """Unpickling this creates the file named in the marker (a harmless stand-in for
    arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(cache_dir, key, content_type, payload, archive="demo"):
    """Write a cache entry with a *valid* sidecar (checksum and key match)."""
    folder = cache_dir / "responses" / archive
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.payload").write_bytes(payload)
    (folder / f"{key}.json").write_text(json.dumps({
        "format": "multilc-cache/1", "key": key, "archive": archive,
        "content_type": content_type, "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(), "multilc_version": "x"}))
    # and the old pickle cache name, which must never be read again
    (folder / f"{key}.pickle").write_bytes(pickle.dumps(_Boom(str(cache_dir / "pwned"))))


def _key_of(n, **kw):
    archive = DemoArchive(**kw)
    archive.freeze_settings()
    (batch,) = archive.plan(multilc.samples.as_sample(targets(n)))
    return batch.key(archive.settings())


@pytest.mark.parametrize("how", ["pickle-as-tree", "pickle-npy-blob", "pickle-octet",
                                 "pickle-unknown-type"])
def test_crafted_cache_file_cannot_execute_code(service, tmp_path, how):
    import io
    import zipfile

    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Boom(str(marker)))
    key = _key_of(3)
    if how == "pickle-npy-blob":
        buf = io.BytesIO()
        np.save(buf, np.array([_Boom(str(marker))], dtype=object), allow_pickle=True)
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w") as zf:
            zf.writestr("tree.json", json.dumps({"format": "multilc-cache/1",
                                                 "tree": {"$npy": "b/0.npy"}}))
            zf.writestr("b/0.npy", buf.getvalue())
        ctype, payload = TREE_TYPE, zbuf.getvalue()
    elif how == "pickle-as-tree":
        ctype, payload = TREE_TYPE, evil
    elif how == "pickle-octet":
        ctype, payload = BYTES_TYPE, evil  # decodes to bytes: parse refuses them
    else:
        ctype, payload = "application/x-python-pickle", evil
    _plant(tmp_path, key, ctype, payload)
    lc = multilc.collect(targets(3), archives="demo", cache_dir=tmp_path, **FAST)
    assert not marker.exists()
    assert not (tmp_path / "pwned").exists()
    # the planted entry was refused or failed to parse: deleted, fetched again, once
    assert service.count(PATH) == 1 and lc.report.ok
    assert lc.report.warnings and "demo" in lc.report.warnings[0]
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_flux([1, 2, 3]))
    # the fresh entry is a verified text entry again
    (sidecar,) = entries(tmp_path)
    assert json.loads(sidecar.read_text())["content_type"] == TEXT_TYPE


@pytest.mark.parametrize("damage", ["flip-byte", "truncate", "empty", "cut-sidecar",
                                    "sidecar-garbage", "payload-missing"])
def test_damaged_cache_entry_is_deleted_and_fetched_again(service, tmp_path, damage):
    first = multilc.collect(targets(5), archives="demo", cache_dir=tmp_path, **FAST)
    (sidecar,) = entries(tmp_path)
    payload = sidecar.with_suffix(".payload")
    data = payload.read_bytes()
    if damage == "flip-byte":
        payload.write_bytes(data[:10] + bytes([data[10] ^ 0x01]) + data[11:])
    elif damage == "truncate":
        payload.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        payload.write_bytes(b"")
    elif damage == "cut-sidecar":
        sidecar.write_text(sidecar.read_text()[:20])
    elif damage == "sidecar-garbage":
        sidecar.write_bytes(os.urandom(64))
    else:
        payload.unlink()
    again = multilc.collect(targets(5), archives="demo", cache_dir=tmp_path, **FAST)
    assert again == first and again.report.ok
    assert service.count(PATH) == 2
    assert any("fetching it again" in w for w in again.report.warnings)
    third = multilc.collect(targets(5), archives="demo", cache_dir=tmp_path, **FAST)
    assert service.count(PATH) == 2 and third == first  # repaired entry is used


def test_cache_entry_copied_from_another_batch_is_refused(service, tmp_path):
    multilc.collect(targets(4), archives="demo", chunk_size=2, cache_dir=tmp_path, **FAST)
    a, b = entries(tmp_path)
    # copy batch A's entry over batch B's names (what a careless copy would do)
    b.with_suffix(".payload").write_bytes(a.with_suffix(".payload").read_bytes())
    b.write_bytes(a.read_bytes())
    lc = multilc.collect(targets(4), archives="demo", chunk_size=2, cache_dir=tmp_path,
                         **FAST)
    assert any("another request" in w and "refused" in w for w in lc.report.warnings)
    assert service.count(PATH) == 3  # only the refused batch asked again
    assert list(lc.objectids) == [1, 2, 3, 4]
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_flux([1, 2, 3, 4]))


def test_cached_response_that_fails_to_parse_is_fetched_again_once(service, tmp_path):
    key = _key_of(3)
    _plant(tmp_path, key, TEXT_TYPE, b"this is not the demo CSV")
    lc = multilc.collect(targets(3), archives="demo", cache_dir=tmp_path, **FAST)
    assert lc.report.ok and service.count(PATH) == 1
    assert any("could not be parsed" in w for w in lc.report.warnings)
    # offline: a bad entry is a clear failure, not a crash
    _plant(tmp_path, key, TEXT_TYPE, b"still not CSV")
    off = multilc.collect(targets(3), archives="demo", cache_dir=tmp_path, offline=True,
                          **FAST)
    assert [f.error_type for f in off.report.failures] == ["OfflineCacheMiss"]
    assert service.count(PATH) == 1


def test_unparseable_fresh_response_is_not_cached(service, tmp_path):
    service.faults(PATH, [Fault.status(200, body="garbage")])
    lc = multilc.collect(targets(2), archives="demo", cache_dir=tmp_path, **FAST)
    assert not lc.report.ok and not entries(tmp_path)


_OBJ_CALLS = {"n": 0}


@register_archive
class _SetArchive(DemoArchive):
    """A reader whose raw answer holds a type the cache does not store."""

    name = "demo_unsupported"

    def query(self, batch):
        _OBJ_CALLS["n"] += 1
        return {"text": super().query(batch), "ids": set(batch.objectid.tolist())}

    def parse(self, raw, batch):
        return super().parse(raw["text"], batch)


def test_unsupported_response_is_used_but_not_cached(service, tmp_path):
    _OBJ_CALLS["n"] = 0
    lc = multilc.collect(targets(3), archives="demo_unsupported", cache_dir=tmp_path,
                         **FAST)
    assert lc.report.ok and len(lc) == 9
    assert any("not cached" in w and "set" in w for w in lc.report.warnings)
    assert not entries(tmp_path, "demo_unsupported")
    multilc.collect(targets(3), archives="demo_unsupported", cache_dir=tmp_path, **FAST)
    assert _OBJ_CALLS["n"] == 2


# =========================================================================== checkpoints
def _ckpt_files(ckpt):
    return sorted((ckpt / "demo").glob("*.json"))


@pytest.mark.parametrize("damage", ["half-parquet", "empty-parquet", "cut-json", "empty-json",
                                    "foreign", "other-targets", "old-format",
                                    "empty-parquet-matching-checksum", "parquet-missing"])
def test_damaged_checkpoint_is_reported_and_its_batch_rerun(service, tmp_path, damage):
    ckpt = tmp_path / "ckpt"
    kw = dict(chunk_size=5, cache=False, checkpoint=ckpt, **FAST)
    clean = multilc.collect(targets(20), archives="demo", **kw)
    assert service.count(PATH) == 4
    sidecars = _ckpt_files(ckpt)
    victim, other = sidecars[1], sidecars[2]
    parquet = victim.with_suffix(".parquet")
    meta = json.loads(victim.read_text())
    if damage == "half-parquet":
        parquet.write_bytes(parquet.read_bytes()[: parquet.stat().st_size // 2])
    elif damage == "empty-parquet":
        parquet.write_bytes(b"")
    elif damage == "cut-json":
        victim.write_text(victim.read_text()[: 40])
    elif damage == "empty-json":
        victim.write_text("")
    elif damage == "foreign":  # another batch's checkpoint copied over this one
        victim.write_bytes(other.read_bytes())
        parquet.write_bytes(other.with_suffix(".parquet").read_bytes())
    elif damage == "other-targets":
        meta["objectids"] = [99, 98, 97, 96, 95]
        victim.write_text(json.dumps(meta))
    elif damage == "old-format":
        victim.write_text(json.dumps({"dropped": {}, "failures": [],
                                      "objectids": meta["objectids"]}))
    elif damage == "empty-parquet-matching-checksum":
        parquet.write_bytes(b"")
        meta.update(size=0, sha256=hashlib.sha256(b"").hexdigest())
        victim.write_text(json.dumps(meta))
    else:
        parquet.unlink()
    again = multilc.collect(targets(20), archives="demo", **kw)
    assert again == clean and again.report.ok
    assert service.count(PATH) == 5  # exactly the damaged batch ran again
    assert again.report.batches["demo"]["resumed"] == 3
    assert len(again.report.warnings) == 1 and "running" in again.report.warnings[0]
    assert "checkpoint" in again.report.warnings[0]
    # and it was rewritten in good order
    third = multilc.collect(targets(20), archives="demo", **kw)
    assert service.count(PATH) == 5 and third.report.batches["demo"]["resumed"] == 4


def test_checkpoint_write_failure_keeps_the_result(service, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "demo").write_text("a file where the folder should be")
    lc = multilc.collect(targets(4), archives="demo", cache=False, checkpoint=ckpt, **FAST)
    assert lc.report.ok and len(lc) == 12
    assert any("could not write the checkpoint" in w for w in lc.report.warnings)


# =========================================================================== retries
def test_retry_after_seconds_is_honoured(service, sleeps):
    service.faults(PATH, [Fault.status(503, retry_after=7)])
    lc = multilc.collect(targets(2), archives="demo", cache=False, **FAST)
    assert lc.report.ok and service.count(PATH) == 2
    assert sleeps == [7.0]  # the server's 7 s, not the 0.005-0.01 s backoff


def test_retry_after_http_date_is_honoured(service, sleeps):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    service.faults(PATH, [Fault.status(429, retry_after=when)])
    lc = multilc.collect(targets(2), archives="demo", cache=False, **FAST)
    assert lc.report.ok
    (wait,) = sleeps
    assert 25 <= wait <= 30


def test_retry_after_is_capped_by_the_setting(service, sleeps, monkeypatch):
    monkeypatch.setenv("MULTILC_RETRY_AFTER_MAX", "4")
    service.faults(PATH, [Fault.status(503, retry_after=3600)] * 2)
    lc = multilc.collect(targets(2), archives="demo", cache=False, **FAST)
    assert lc.report.ok and sleeps == [4.0, 4.0]


def test_parse_retry_after():
    now = 1_000_000_000.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) == 90
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0
    for bad in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(bad) is None


def test_dns_failure_fails_fast(service, monkeypatch, sleeps):
    # RFC 6761: names under .invalid never resolve.
    monkeypatch.setenv("MULTILC_DEMO_URL", "http://archive.invalid/demo")
    lc = multilc.collect(targets(3), archives="demo", cache=False, **FAST)
    (failure,) = lc.report.failures
    assert failure.attempts == 1 and not failure.transient and sleeps == []
    assert "cannot resolve archive.invalid: no network?" in failure.message
    assert failure.objectids == [1, 2, 3]


class _PyvoLike(DemoArchive):
    """A reader that talks HTTP itself and wraps errors its own way (as pyvo does)."""

    def query(self, batch):
        import requests

        try:
            requests.get("http://tap.archive.invalid/sync", timeout=2)
        except requests.ConnectionError as exc:
            raise self.error(f"TAP request failed: {exc}", batch, transient=True) from exc


def test_dns_failure_in_any_reader_fails_fast_with_the_message(sleeps):
    archive = _PyvoLike()
    archive.freeze_settings()
    (batch,) = archive.plan(multilc.samples.as_sample(targets(2)))
    res = engine.run_batch(archive, batch, engine.Runtime.from_conf(use_cache=False,
                                                                   retries=4))
    (failure,) = res.failures
    assert failure.attempts == 1 and sleeps == [] and not failure.transient
    assert failure.message.startswith("demo: cannot resolve tap.archive.invalid: no network?")


def test_dns_failure_inside_a_transient_wrapper_is_not_retried():
    import socket

    from multilc.collect.api import TransientError

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as inner:
            raise TransientError("TAP request failed", archive="x") from inner
    except TransientError as exc:
        outer = exc
    assert dns_failure(outer) is not None
    assert engine._classify(outer) is False
    assert engine._classify(TransientError("HTTP 503", archive="x")) is True


def test_html_title():
    assert html_title(b"<html><head><TITLE>\n Down for\n maintenance </TITLE>") == \
        "Down for maintenance"
    assert html_title("no title here") == ""


# =========================================================================== credentials
@pytest.mark.parametrize("text, secret", [
    ("https://user:pa55w0rd@host.org/tap", "pa55w0rd"),
    ("connection to http://alice:s3cr3t@127.0.0.1:8080/x failed", "s3cr3t"),
    ("s3://AKIAEXAMPLE:wJalrXUt@bucket/key", "wJalrXUt"),
    ("GET https://h/x?ra=1&token=abcdef123&dec=2", "abcdef123"),
    ("https://h/x?X-Amz-Signature=deadbeef", "deadbeef"),
    ("https://h/x?apikey=K3Y", "K3Y"),
])
def test_scrub(text, secret):
    out = scrub(text)
    assert secret not in out and "***" in out
    assert scrub("https://host.org/path?ra=1") == "https://host.org/path?ra=1"
    assert scrub("mail me at a@b.org") == "mail me at a@b.org"


def test_credentials_never_reach_messages_reports_logs_or_checkpoints(service, monkeypatch,
                                                                      tmp_path, caplog):
    url = service.url.rstrip("/").replace("http://", "http://alice:s3cr3t@") + "/demo"
    monkeypatch.setenv("MULTILC_DEMO_URL", url)
    service.faults(PATH, [Fault.status(400)] + [Fault.status(503)] * 4)
    ckpt = tmp_path / "ckpt"
    with caplog.at_level(logging.DEBUG):
        lc = multilc.collect(targets(6), archives="demo", chunk_size=2, concurrency=1,
                             cache=False, checkpoint=ckpt, **FAST)
    # a per-target failure stored in a checkpoint, with the URL in its message
    CheckpointStore(ckpt).save("demo", "f" * 32, [7], lc, failures=[
        Failure("demo", [7], "PermanentError", f"{url}/lightcurves: HTTP 404")])
    assert len(lc.report.failures) == 2  # one permanent (400), one out of retries (503)
    texts = [f.message for f in lc.report.failures] + [lc.report.summary(),
                                                      json.dumps(lc.report.to_dict()),
                                                      str(lc.report.failures_table())]
    texts += [r.getMessage() for r in caplog.records]
    texts += [p.read_text() for p in ckpt.rglob("*.json")]
    assert any("***@" in t for t in texts)
    for t in texts:
        assert "s3cr3t" not in t


def test_failure_and_archive_error_scrub_themselves():
    from multilc.collect.api import PermanentError

    f = Failure("x", [1], "E", "see https://u:pw@h/x")
    assert f.message == "see https://***@h/x"
    assert "pw" not in str(PermanentError("at https://u:pw@h/", archive="x"))


# =========================================================================== typed failures
class _Flaky(DemoArchive):
    """Parse (or query) raises an arbitrary exception type for one batch."""

    fail_at = "parse"
    exc = OverflowError

    def query(self, batch):
        if self.fail_at == "query" and 6 in batch.objectid:
            raise self.exc("boom in query")
        return super().query(batch)

    def parse(self, raw, batch):
        if self.fail_at == "parse" and 6 in batch.objectid:
            raise self.exc("boom in parse")
        return super().parse(raw, batch)


@pytest.mark.parametrize("fail_at", ["query", "parse"])
@pytest.mark.parametrize("exc", [OverflowError, KeyError, TypeError, ZeroDivisionError,
                                 RecursionError, MemoryError, UnicodeDecodeError])
def test_any_exception_of_one_batch_is_a_failure_and_others_survive(service, fail_at, exc):
    if exc is UnicodeDecodeError:
        exc = type("BadBytes", (UnicodeDecodeError,), {
            "__init__": lambda self, msg: UnicodeDecodeError.__init__(
                self, "utf-8", b"\xff", 0, 1, msg)})
    archive = type("A", (_Flaky,), {"fail_at": fail_at, "exc": exc})(chunk_size=5)
    archive.freeze_settings()
    sample = multilc.samples.as_sample(targets(15))
    runtime = engine.Runtime.from_conf(use_cache=False, retries=1, backoff=0.0,
                                       timeout=2.0)
    results = engine._run_plans({"demo": (archive, archive.plan(sample))}, runtime,
                                False, None, 4)
    failed = [r for r in results if r.failed]
    assert len(failed) == 1 and failed[0].objectids == [6, 7, 8, 9, 10]
    (failure,) = failed[0].failures
    assert failure.error_type == exc.__name__ and "6" in failure.message
    kept = sorted(int(i) for r in results if not r.failed for i in r.lc.objectids)
    assert kept == [1, 2, 3, 4, 5, 11, 12, 13, 14, 15]


@register_archive
class _PlanFails(DemoArchive):
    name = "demo_planfails"

    def plan(self, sample):
        raise OSError("catalog index unreadable")


def test_plan_failure_is_reported_and_other_archives_run(service):
    lc = multilc.collect(targets(3), archives=["demo", "demo_planfails"], cache=False,
                         **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "demo_planfails" and failure.objectids == [1, 2, 3]
    assert failure.error_type == "OSError" and "catalog index unreadable" in failure.message
    assert len(lc) == 9 and lc.report.batches["demo_planfails"]["failed"] == 1


class _HalfBrokenExecutor:
    """An executor whose second submitted batch dies (as a lost dask worker would)."""

    def __init__(self):
        self.n = 0

    def submit(self, fn, *args):
        import concurrent.futures as cf

        self.n += 1
        fut = cf.Future()
        if self.n == 2:
            fut.set_exception(RuntimeError("worker lost"))
        else:
            fut.set_result(fn(*args))
        return fut


def test_lost_worker_costs_only_its_batch(service):
    lc = multilc.collect(targets(15), archives="demo", chunk_size=5, cache=False,
                         executor=_HalfBrokenExecutor(), **FAST)
    (failure,) = lc.report.failures
    assert failure.objectids == [6, 7, 8, 9, 10] and "worker lost" in failure.message
    assert sorted(set(lc.objectid.tolist())) == [1, 2, 3, 4, 5, 11, 12, 13, 14, 15]


# =========================================================================== input validation
BAD_INPUTS = {
    "empty sample": (dict(targets=SkyCoord([] * u.deg, [] * u.deg)), "targets"),
    "archives empty string": (dict(archives=""), "archives"),
    "archives blank": (dict(archives=" , "), "archives"),
    "archives empty list": (dict(archives=[]), "archives"),
    "archives None": (dict(archives=None), "archives"),
    "archives not names": (dict(archives=[1]), "archives"),
    "archive unknown": (dict(archives="dmeo"), "unknown archive"),
    "radius inf": (dict(radius=np.inf * u.arcsec), "radius"),
    "radius nan": (dict(radius=np.nan * u.arcsec), "radius"),
    "radius negative": (dict(radius=-1 * u.arcsec), "radius"),
    "radius zero": (dict(radius=0 * u.arcsec), "radius"),
    "radius too large": (dict(radius=200 * u.deg), "maximum"),
    "radius array": (dict(radius=[1, 2] * u.arcsec), "radius"),
    "radius no unit": (dict(radius=1.0), "radius"),
    "radius not angle": (dict(radius=1 * u.s), "radius"),
    "timeout zero": (dict(timeout=0), "timeout"),
    "timeout negative": (dict(timeout=-1), "timeout"),
    "timeout text": (dict(timeout="abc"), "timeout"),
    "timeout nan": (dict(timeout=float("nan")), "timeout"),
    "retries negative": (dict(retries=-1), "retries"),
    "retries fraction": (dict(retries=1.5), "retries"),
    "retries text": (dict(retries="two"), "retries"),
    "backoff negative": (dict(backoff=-0.5), "backoff"),
    "max_workers zero": (dict(max_workers=0), "max_workers"),
    "chunk_size zero": (dict(chunk_size=0), "chunk_size"),
    "chunk_size fraction": (dict(chunk_size=2.5), "chunk_size"),
    "options unknown archive": (dict(options={"ztf": {}}), "options"),
    "output is a file": (dict(output=__file__), "output"),
    "checkpoint is a file": (dict(checkpoint=__file__), "checkpoint"),
    "nan position": (dict(targets=SkyCoord([10.0, np.nan] * u.deg, [5.0, 1.0] * u.deg)),
                     "objectid 2"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_an_input_error_naming_the_setting(service, case):
    kwargs, needle = BAD_INPUTS[case]
    call = dict(targets=targets(2), archives="demo", **FAST)
    call.update(kwargs)
    with pytest.raises(InputError, match=needle):
        multilc.collect(call.pop("targets"), **call)
    assert service.count(PATH) == 0


@pytest.mark.parametrize("var, value, message", [
    ("MULTILC_TIMEOUT", "abc", "MULTILC_TIMEOUT=abc: not a number (timeout, seconds)"),
    ("MULTILC_TIMEOUT", "-3", "timeout"),
    ("MULTILC_TIMEOUT", "inf", "MULTILC_TIMEOUT=inf: not a finite number"),
    ("MULTILC_RETRIES", "two", "MULTILC_RETRIES=two: not an integer (retries)"),
    ("MULTILC_RETRIES", "-1", "retries"),
    ("MULTILC_BACKOFF", "fast", "MULTILC_BACKOFF=fast: not a number (backoff, seconds)"),
    ("MULTILC_OFFLINE", "maybe", "MULTILC_OFFLINE=maybe: not a yes/no value"),
    ("MULTILC_RETRY_AFTER_MAX", "x", "retry_after_max"),
])
def test_bad_environment_override_names_the_variable(service, monkeypatch, var, value,
                                                     message):
    monkeypatch.setenv(var, value)
    with pytest.raises(InputError) as info:
        multilc.collect(targets(2), archives="demo", progress=False)
    assert message in str(info.value)
    assert service.count(PATH) == 0


def test_good_environment_overrides_still_work(monkeypatch):
    monkeypatch.setenv("MULTILC_TIMEOUT", " 5 ")
    monkeypatch.setenv("MULTILC_OFFLINE", "Yes")
    assert setting(multilc.conf, "timeout") == 5.0
    assert setting(multilc.conf, "offline") is True


def test_max_radius_is_per_archive():
    class Wide(DemoArchive):
        max_radius = 5 * u.deg

    assert Wide(radius=2 * u.deg).radius == 7200 * u.arcsec
    with pytest.raises(InputError, match="maximum of 5.0 deg"):
        Wide(radius=6 * u.deg)


# =========================================================================== cross-process
def _hammer_cache(folder, worker, rounds, out):
    cache = ResponseCache(folder)
    bad = 0
    for i in range(rounds):
        value = {"worker": worker, "i": i, "data": np.full(2000, worker, "int64"),
                 "text": f"w{worker}" * 3000}
        cache.store("demo", "k" * 32, value)
        try:
            got = cache.load("demo", "k" * 32)
        except CacheEntryError:
            bad += 1
            continue
        if got is not None and not (np.all(got["data"] == got["worker"]) and
                                    got["text"] == f"w{got['worker']}" * 3000):
            bad += 1
    out.put(bad)


def test_concurrent_processes_writing_one_cache_entry(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer_cache, args=(tmp_path, w, 40, out)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert sum(out.get(timeout=5) for _ in procs) == 0
    assert ResponseCache(tmp_path).load("demo", "k" * 32)["worker"] in range(4)
    assert not list((tmp_path / "responses" / "demo").glob(".tmp-*"))


def _hammer_checkpoint(folder, worker, rounds, out):
    from multilc import MultiBandLightCurve
    from astropy.time import Time

    store = CheckpointStore(folder)
    bad = 0
    for _ in range(rounds):
        n = 5 + worker
        lc = MultiBandLightCurve.from_arrays(
            np.ones(n, "int64"), ["ztf:g"] * n,
            Time(58000 + np.arange(n), format="mjd", scale="tdb"),
            np.full(n, float(worker)) * u.mJy, np.full(n, 0.1) * u.mJy)
        store.save("demo", "k" * 32, [1], lc)
        try:
            got = store.load("demo", "k" * 32, [1])
        except CacheEntryError:
            bad += 1
            continue
        flux = got["lc"].flux.to_value(u.mJy)
        if len(flux) != 5 + int(flux[0]):
            bad += 1
    out.put(bad)


def test_concurrent_processes_writing_one_checkpoint(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer_checkpoint, args=(tmp_path, w, 15, out))
             for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sum(out.get(timeout=5) for _ in procs) == 0


def test_cache_entry_error_is_raised_for_a_foreign_sidecar(tmp_path):
    cache = ResponseCache(tmp_path)
    cache.store("demo", "a" * 32, "text A")
    pa_, ma = cache.paths("demo", "a" * 32)
    pb, mb = cache.paths("demo", "b" * 32)
    pb.write_bytes(pa_.read_bytes())
    mb.write_bytes(ma.read_bytes())
    with pytest.raises(CacheEntryError, match="refused"):
        cache.load("demo", "b" * 32)
    assert not pb.exists() and not mb.exists()
    assert cache.load("demo", "a" * 32) == "text A"


def test_parse_result_type_is_checked(service):
    class Wrong(DemoArchive):
        def parse(self, raw, batch):
            return {"not": "a ParseResult"}

    archive = Wrong()
    archive.freeze_settings()
    (batch,) = archive.plan(multilc.samples.as_sample(targets(2)))
    res = engine.run_batch(archive, batch, engine.Runtime.from_conf(use_cache=False))
    assert res.failed and res.failures[0].error_type == "TypeError"
    assert isinstance(ParseResult, type)


# =========================================================================== fault storm
STORM = [Fault.status(500), Fault.status(502), Fault.status(503),
         Fault.status(429, retry_after=2), Fault.status(503, retry_after="Wed, 21 Oct 2015 "
                                                                        "07:28:00 GMT"),
         Fault.truncated(declare_full_length=True), Fault.reset(), Fault.hang(0.8),
         Fault.html_error(code=200), Fault.html_error(code=502)]


def test_fault_storm_served_once_gives_the_clean_result(service, sleeps):
    """Every batch meets one fault of every kind in turn, then a good answer."""
    n_batches = 3 * len(STORM)
    kw = dict(archives="demo", chunk_size=2, concurrency=1, cache=False, retries=3,
              backoff=0.01, timeout=0.4, progress=False)
    clean = multilc.collect(targets(2 * n_batches), **kw)
    service.clear()
    faults = []
    for i in range(n_batches):
        faults += [STORM[i % len(STORM)], Fault.hang(0.0)]  # a fault, then a clean answer
    service.faults(PATH, faults)
    stormy = multilc.collect(targets(2 * n_batches), **kw)
    assert service.pending_faults(PATH) == 0  # all injected
    assert stormy.report.ok and stormy == clean  # all survived, nothing lost
    assert stormy.report.requests == {"demo": 2 * n_batches}
    assert sleeps.count(2.0) == 3  # Retry-After: 2 honoured; a past date means now


def test_fault_storm_served_always_costs_only_its_batch(service):
    """One batch's answers are always broken; every other target keeps its result."""
    calls = {}

    def handler(request):
        ids = [int(x) for x in request.args["id"].split(",")]
        calls[ids[0]] = calls.get(ids[0], 0) + 1
        if 5 in ids:
            return (503, {"Retry-After": "0"}, "down")
        lines = ["objectid,mjd_tdb,flux_mjy,flux_err_mjy,band"]
        lines += [f"{k},{58000 + i},{k / 10},{k / 100},ztf:g" for k in ids for i in range(3)]
        return (200, {"Content-Type": "text/csv"}, "\n".join(lines))

    service.route(PATH, handler=handler)
    lc = multilc.collect(targets(20), archives="demo", chunk_size=2, cache=False, **FAST)
    (failure,) = lc.report.failures
    assert failure.objectids == [5, 6] and failure.transient and failure.attempts == 4
    assert "demo" in failure.message and "5, 6" in failure.message
    assert sorted(set(lc.objectid.tolist())) == [i for i in range(1, 21) if i not in (5, 6)]
    np.testing.assert_allclose(lc.flux.to_value(u.mJy),
                               expected_flux([i for i in range(1, 21) if i not in (5, 6)]))


class _RefusingExecutor:
    """An executor that cannot take the second batch (as when it cannot be pickled)."""

    def __init__(self):
        self.n = 0

    def submit(self, fn, *args):
        import concurrent.futures as cf

        self.n += 1
        if self.n == 2:
            raise TypeError("cannot pickle '_thread.lock' object")
        fut = cf.Future()
        fut.set_result(fn(*args))
        return fut


def test_batch_an_executor_refuses_is_a_failure(service):
    lc = multilc.collect(targets(15), archives="demo", chunk_size=5, cache=False,
                         executor=_RefusingExecutor(), **FAST)
    failures = lc.report.failures
    assert [f.objectids for f in failures] == [[6, 7, 8, 9, 10]]
    assert "cannot pickle" in failures[0].message
    assert sorted(set(lc.objectid.tolist())) == [1, 2, 3, 4, 5, 11, 12, 13, 14, 15]
