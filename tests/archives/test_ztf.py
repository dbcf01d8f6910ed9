"""Tests of the ZTF reader: HATS bulk route, light-curve API, files."""
import threading
import time

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

pytest.importorskip("hpgeom")
pa = pytest.importorskip("pyarrow")

import multilc  # noqa: E402
from multilc import MultiBandLightCurve  # noqa: E402
from multilc.catalogs import hats as healpix  # noqa: E402
from multilc.testing import catalogs  # noqa: E402

FAST = dict(retries=1, backoff=0.01, timeout=5, progress=False)
#: Palomar (the ZTF site), independent of multilc's own table.
PALOMAR = EarthLocation.from_geodetic(-116.8599 * u.deg, 33.3563 * u.deg, 1712 * u.m)

API_HEADER = ("oid,expid,hjd,mjd,mag,magerr,catflags,filtercode,ra,dec,chi,sharp,"
              "filefracday,field,ccdid,qid,limitmag,magzp,magzprms,clrcoeff,clrcounc,"
              "exptime,airmass,programid")


def expected_mjy(mag, float32=True):
    """AB: m = -2.5 log10(f_nu / erg s-1 cm-2 Hz-1) - 48.60 (Oke & Gunn 1983), i.e.
    about 3631 Jy at m = 0; 1 erg s-1 cm-2 Hz-1 = 1e26 mJy.  Catalog magnitudes are
    float32."""
    m = np.asarray(mag, np.float32 if float32 else float).astype(float)
    return 1e26 * 10 ** (-0.4 * (m + 48.60))


def expected_tdb(hmjd, ra, dec):
    """Heliocentric MJD(UTC) -> barycentric MJD(TDB), straight astropy."""
    t = Time(np.asarray(hmjd, float), format="mjd", scale="utc", location=PALOMAR)
    c = SkyCoord(ra * u.deg, dec * u.deg)
    bary = t.light_travel_time(c, kind="barycentric")
    helio = t.light_travel_time(c, kind="heliocentric")
    return (t.tdb + bary - helio).mjd


# targets: three in different HATS partitions; target 1 has two g-band ZTF
# objects (different fields) and one r-band object within 1.5 arcsec
TARGETS = SkyCoord([150.0, 10.0, 250.0] * u.deg, [2.0, 40.0, -20.0] * u.deg)


def _objects():
    objs = []
    t0 = TARGETS[0]
    near = t0.directional_offset_by(90 * u.deg, 0.3 * u.arcsec)
    far = t0.directional_offset_by(0 * u.deg, 1.2 * u.arcsec)
    objs.append(dict(objectid=500101, filterid=1, objra=near.ra.deg, objdec=near.dec.deg,
                     hmjd=[58300.25, 58310.5, 58320.75], mag=[18.0, 18.2, 18.4],
                     magerr=[0.05, 0.06, 0.07], catflags=[0, 32768, 0]))
    objs.append(dict(objectid=900101, filterid=1, objra=far.ra.deg, objdec=far.dec.deg,
                     hmjd=[58400.25], mag=[18.1], magerr=[0.05], catflags=[0]))
    objs.append(dict(objectid=500201, filterid=2, objra=far.ra.deg, objdec=far.dec.deg,
                     hmjd=[58301.0, 58302.0], mag=[17.5, 17.6], magerr=[0.04, 0.04],
                     catflags=[2, 0]))
    objs.append(dict(objectid=600301, filterid=3, objra=10.0, objdec=40.0,
                     hmjd=[59000.0], mag=[19.0], magerr=[0.1], catflags=[0]))
    # unrelated object 5 arcsec from target 3 (outside the radius)
    off = TARGETS[2].directional_offset_by(0 * u.deg, 5 * u.arcsec)
    objs.append(dict(objectid=700101, filterid=1, objra=off.ra.deg, objdec=off.dec.deg,
                     hmjd=[59000.0], mag=[16.0], magerr=[0.1], catflags=[0]))
    rng = np.random.default_rng(0)
    for i in range(300):  # background spread over the sky
        objs.append(dict(objectid=10_000 + i, filterid=1 + i % 3,
                         objra=rng.uniform(0, 360), objdec=rng.uniform(-30, 80),
                         hmjd=[58500.0], mag=[20.0], magerr=[0.2], catflags=[0]))
    return objs


@pytest.fixture
def hats_root(tmp_path, monkeypatch):
    root = tmp_path / "ztf" / "lc" / "hats"
    catalogs.write_hats_catalog(catalogs.ztf_lightcurve_table(_objects()), root,
                                catalog_name="ztf_dr24_lc-hats", ra_column="objra",
                                dec_column="objdec", order=3, npix_suffix="/")
    monkeypatch.setenv("MULTILC_ZTF_HATS_URL", str(root))
    return root


# --------------------------------------------------------------------------- bulk
def test_bulk_values_times_mask_and_partitions(hats_root):
    healpix.read_log.clear()
    lc = multilc.collect(TARGETS, archives=["ztf"], radius=1.5 * u.arcsec,
                         options={"ztf": {"route": "bulk"}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    # partitions: one per target at order 3, each opened once
    expected = {(3, int(hpgeom_pixel(3, c.ra.deg, c.dec.deg))) for c in TARGETS}
    opens = healpix.read_log.partition_opens()
    assert {(o, p) for _, o, p in opens} == expected
    assert set(opens.values()) == {1}
    assert lc.report.dropped["ztf"] == {"catflags & 32768": 1}

    t1 = lc.select(objectid=1)
    assert sorted(set(t1.source_id.tolist())) == [500101, 500201, 900101]
    g = lc.select(objectid=1, band="ztf:g")
    order = np.argsort(g.ds["mag"].values)
    mags = np.array([18.0, 18.1, 18.4])
    np.testing.assert_allclose(np.sort(g.ds["mag"].values), mags, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g.flux)[order], expected_mjy(mags), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g.flux_err)[order],
                               expected_mjy(mags) * 0.4 * np.log(10)
                               * np.array([0.05, 0.05, 0.07], np.float32),
                               rtol=1e-10)
    # times vs astropy, at the ZTF object position
    near = TARGETS[0].directional_offset_by(90 * u.deg, 0.3 * u.arcsec)
    far = TARGETS[0].directional_offset_by(0 * u.deg, 1.2 * u.arcsec)
    want = np.sort(np.concatenate([
        expected_tdb([58300.25, 58320.75], near.ra.deg, near.dec.deg),
        expected_tdb([58400.25], far.ra.deg, far.dec.deg)]))
    np.testing.assert_allclose(np.sort(g.time.mjd), want, atol=2e-6, rtol=0)
    seps = np.asarray(lc.select(objectid=1).ds["separation"])
    assert np.all(seps <= 1.5) and np.nanmax(seps) == pytest.approx(1.2, abs=1e-3)
    # target 3 has nothing within the radius; target 2 has its i-band object
    assert 3 not in lc.objectids_with_data
    assert lc.select(objectid=2).bands == ["ztf:i"]


def hpgeom_pixel(order, ra, dec):
    import hpgeom

    return hpgeom.angle_to_pixel(hpgeom.order_to_nside(order), ra, dec, nest=True)


def test_bulk_nearest_and_mask_disabled(hats_root):
    lc = multilc.collect(TARGETS[:1], archives=["ztf"], radius=1.5 * u.arcsec,
                         options={"ztf": {"route": "bulk", "match": "nearest",
                                          "catflags_mask": None}}, **FAST)
    # nearest per filter: g -> 500101 (0.3"), r -> 500201 (only r object)
    assert sorted(set(lc.source_id.tolist())) == [500101, 500201]
    assert lc.report.dropped["ztf"] == {"not the nearest ZTF object (match='nearest')": 1}
    g = lc.select(band="ztf:g")
    assert sorted(g.flag.tolist()) == [0, 0, 32768]


def test_auto_route_uses_bulk_above_threshold(hats_root, monkeypatch, replay_server):
    monkeypatch.setenv("MULTILC_ZTF_BULK_MIN_TARGETS", "2")
    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    replay_server.route("/api", "should not be asked")
    lc = multilc.collect(TARGETS, archives=["ztf"], radius=1.5 * u.arcsec, **FAST)
    assert replay_server.count() == 0
    assert 1 in lc.objectids_with_data


def test_bulk_through_local_s3(hats_root, monkeypatch):
    with catalogs.moto_s3([(hats_root, "ztf/enhanced/dr24/lc/hats")]) as endpoint:
        monkeypatch.setenv("MULTILC_ZTF_HATS_URL",
                           "s3://multilc-test/ztf/enhanced/dr24/lc/hats")
        monkeypatch.setenv("MULTILC_ZTF_S3_ENDPOINT", endpoint)
        healpix.read_log.clear()
        lc = multilc.collect(TARGETS, archives=["ztf"], radius=1.5 * u.arcsec,
                             options={"ztf": {"route": "bulk"}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    assert sorted(set(lc.source_id.tolist())) == [500101, 500201, 600301, 900101]
    opens = healpix.read_log.partition_opens()
    assert all(r.startswith("multilc-test/") for r, _, _ in opens)
    assert len(opens) == 3 and set(opens.values()) == {1}


def test_bulk_batches_at_once_at_most_the_cpus_for_a_local_catalog(hats_root, monkeypatch):
    from multilc.archives import _bulk
    from multilc.archives.ztf import ZTF

    state = {"now": 0, "most": 0, "calls": 0}
    lock = threading.Lock()
    real = ZTF._query_bulk

    def spy(self, batch):
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.1)  # batches submitted together overlap here if allowed to
        try:
            return real(self, batch)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(ZTF, "_query_bulk", spy)
    monkeypatch.setattr(_bulk, "_cpu_count", lambda: 1)
    monkeypatch.setenv("MULTILC_ZTF_PARTITIONS_PER_BATCH", "1")  # a batch per partition
    run = dict(radius=1.5 * u.arcsec, cache=False, **FAST)
    one_cpu = multilc.collect(TARGETS, archives=["ztf"], options={"ztf": {"route": "bulk"}},
                              **run)
    assert one_cpu.report.ok, one_cpu.report.summary()
    # one batch per target's partition, read one after another on one CPU
    assert state["calls"] == len(TARGETS) and state["most"] == 1
    # a concurrency the caller chose stands
    state.update(most=0, calls=0)
    chosen = multilc.collect(TARGETS, archives=["ztf"],
                             options={"ztf": {"route": "bulk", "concurrency": 3}}, **run)
    assert state["calls"] == len(TARGETS) and state["most"] > 1
    assert chosen == one_cpu


def test_bulk_concurrency_of_a_remote_catalog_is_the_archives(monkeypatch):
    from multilc.archives import _bulk
    from multilc.archives.ztf import ZTF

    monkeypatch.setattr(_bulk, "_cpu_count", lambda: 1)
    monkeypatch.setenv("MULTILC_ZTF_HATS_URL", "s3://bucket/ztf/lc/hats")
    remote = ZTF()
    assert not remote.catalog().local
    assert _bulk.bulk_concurrency(remote, [remote.catalog()]) == remote.max_concurrency == 4
    monkeypatch.setenv("MULTILC_ZTF_HATS_URL", "/data/ztf/lc/hats")
    local = ZTF()
    assert local.catalog().local and not local.concurrency_chosen
    assert _bulk.bulk_concurrency(local, [local.catalog()]) == 1
    assert _bulk.bulk_concurrency(ZTF(concurrency=3), [local.catalog()]) == 3


def test_missing_catalog_is_a_reported_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTILC_ZTF_HATS_URL", str(tmp_path / "nothing"))
    lc = multilc.collect(TARGETS, archives=["ztf"], options={"ztf": {"route": "bulk"}},
                         **FAST)
    assert len(lc) == 0
    (failure,) = lc.report.failures
    assert failure.archive == "ztf" and failure.objectids == [1, 2, 3]
    assert "HATS" in failure.message


def test_radius_must_be_a_quantity():
    with pytest.raises(TypeError, match="ztf: radius must be an angle Quantity"):
        multilc.collect(TARGETS, archives=["ztf"], radius=1.0, **FAST)


# --------------------------------------------------------------------------- API
def _api_csv(rows):
    lines = [API_HEADER]
    for oid, hjd, mag, magerr, flags, code, ra, dec in rows:
        lines.append(f"{oid},1,{hjd},{hjd - 2400000.5 - 0.0004},{mag},{magerr},{flags},{code},"
                     f"{ra},{dec},1.0,0.01,20180101,600,1,1,20.5,26.1,0.02,0.05,0.01,30,"
                     f"1.2,1")
    return "\n".join(lines) + "\n"


def test_api_route_requests_concurrency_and_values(replay_server, monkeypatch):
    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/ztf/nph_light_curves"))
    active, peak, lock = [0], [0], threading.Lock()

    def handler(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        _, ra, dec, _ = request.args["POS"].split()
        ra, dec = float(ra), float(dec)
        if abs(ra - 150.0) < 1e-6:
            return _api_csv([(633101100012345, 2458300.75, 18.0, 0.05, 0, "zg", ra, dec),
                             (633101100012345, 2458301.75, 18.5, 0.05, 32768, "zg", ra, dec),
                             (633201100054321, 2458302.75, 17.0, 0.03, 0, "zr", ra,
                              dec + 0.5 / 3600)])
        return API_HEADER + "\n"

    replay_server.route("/ztf/nph_light_curves", handler=handler)
    targets = SkyCoord([150.0, 10.0, 250.0, 20.0] * u.deg, [2.0, 40.0, -20.0, 5.0] * u.deg)
    lc = multilc.collect(targets, archives=["ztf"], radius=1 * u.arcsec,
                         options={"ztf": {"route": "api", "concurrency": 2}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    assert replay_server.count("/ztf/nph_light_curves") == 4
    assert peak[0] == 2
    args = [r.args for r in replay_server.requests]
    assert {a["BANDNAME"] for a in args} == {"g,r,i"}
    assert {a["FORMAT"] for a in args} == {"csv"}
    pos = sorted(a["POS"] for a in args)[0].split()
    assert pos[0] == "CIRCLE" and float(pos[3]) == pytest.approx(1 / 3600)
    assert lc.report.dropped["ztf"] == {"catflags & 32768": 1}
    np.testing.assert_allclose(np.sort(lc.flux.to_value(u.mJy)),
                               np.sort(expected_mjy([18.0, 17.0])),
                               rtol=1e-10)
    g = lc.select(band="ztf:g")
    np.testing.assert_allclose(g.time.mjd, expected_tdb([2458300.75 - 2400000.5], 150.0, 2.0),
                               atol=2e-6, rtol=0)
    r = lc.select(band="ztf:r")
    assert np.asarray(r.ds["separation"])[0] == pytest.approx(0.5, abs=1e-6)
    assert sorted(set(lc.source_id.tolist())) == [633101100012345, 633201100054321]


def test_api_html_error_page_is_a_failure_naming_the_target(replay_server, monkeypatch):
    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    replay_server.route("/api", "<html><body>Service busy</body></html>",
                        content_type="text/html")
    lc = multilc.collect(TARGETS[:1], archives=["ztf"], options={"ztf": {"route": "api"}},
                         **FAST)
    (failure,) = lc.report.failures
    assert failure.objectids == [1]
    assert "ztf" in failure.message and "HTML" in failure.message


def test_api_server_error_is_retried(replay_server, monkeypatch):
    from multilc.testing import Fault

    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    replay_server.route("/api", _api_csv([(1, 2458300.75, 18.0, 0.05, 0, "zg", 150.0, 2.0)]))
    replay_server.faults("/api", [Fault.status(503)])
    lc = multilc.collect(TARGETS[:1], archives=["ztf"], options={"ztf": {"route": "api"}},
                         **FAST)
    assert lc.report.ok and len(lc) == 1
    assert replay_server.count("/api") == 2


# --------------------------------------------------------------------------- files
def test_read_api_csv_and_ipac_files(tmp_path):
    from astropy.table import Table

    csv = tmp_path / "lc.csv"
    csv.write_text(_api_csv([(42, 2458300.75, 18.0, 0.05, 0, "zg", 150.0, 2.0),
                             (42, 2458301.75, 18.3, 0.05, 32768, "zg", 150.0, 2.0),
                             (43, 2458302.75, 17.0, 0.03, 0, "zi", 150.0, 2.0)]))
    lc = MultiBandLightCurve.read(csv, format="ztf.api")
    assert sorted(lc.objectids_with_data) == [42, 43]
    assert lc.report.dropped["ztf"] == {"catflags & 32768": 1}
    np.testing.assert_allclose(np.sort(lc.flux.to_value(u.mJy)),
                               np.sort(expected_mjy([18.0, 17.0])))
    ipac = tmp_path / "lc.tbl"
    Table.read(csv, format="ascii.csv").write(ipac, format="ascii.ipac")
    lc2 = MultiBandLightCurve.read(ipac, format="ztf.api", objectid=7, catflags_mask=None)
    assert lc2.objectids == [7] and len(lc2) == 3
    np.testing.assert_allclose(np.sort(lc2.time.mjd), np.sort(expected_tdb(
        np.array([2458300.75, 2458301.75, 2458302.75]) - 2400000.5, 150.0, 2.0)),
        atol=2e-6, rtol=0)


def test_read_dr_parquet_file(tmp_path):
    import pyarrow.parquet as pq

    objs = [dict(objectid=686103400034440, filterid=2, objra=298.0025, objdec=29.87147,
                 hmjd=[58250.5, 58260.5], mag=[15.5, 15.6], magerr=[0.01, 0.02],
                 catflags=[0, 32768])]
    path = tmp_path / "ztf_000686_zr_c10_q3_dr18.parquet"
    pq.write_table(catalogs.ztf_lightcurve_table(objs, nested=False), path)
    lc = MultiBandLightCurve.read(path, format="ztf.parquet")
    assert lc.objectids_with_data == [686103400034440] and lc.bands == ["ztf:r"]
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_mjy([15.5]))
    np.testing.assert_allclose(lc.time.mjd, expected_tdb([58250.5], 298.0025, 29.87147),
                               atol=2e-6, rtol=0)
    assert lc.report.dropped["ztf"] == {"catflags & 32768": 1}
    bad = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), bad)
    with pytest.raises(multilc.errors.FileFormatError,
                       match="not a ZTF light-curve parquet file"):
        MultiBandLightCurve.read(bad, format="ztf.parquet")


# --------------------------------------------------------------------------- live
@pytest.mark.remote_data
def test_live_bulk():
    lc = multilc.collect(SkyCoord(298.0025 * u.deg, 29.87147 * u.deg), archives=["ztf"],
                         options={"ztf": {"route": "bulk"}}, progress=False)
    assert lc.report.ok and len(lc) > 0


@pytest.mark.remote_data
def test_live_api():
    lc = multilc.collect(SkyCoord(298.0025 * u.deg, 29.87147 * u.deg), archives=["ztf"],
                         options={"ztf": {"route": "api"}}, progress=False)
    assert lc.report.ok and len(lc) > 0


# --------------------------------------------------------------------------- issue 10: trust
def test_api_sentinels_are_dropped_and_counted_not_fluxes(replay_server, monkeypatch):
    """Issue 10: magerr = -999 became a flux error of -529 mJy; mag = 99.99 was kept."""
    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    replay_server.route("/api", _api_csv([
        (1, 2458300.75, 18.0, 0.05, 0, "zg", 150.0, 2.0),
        (1, 2458301.75, 18.0, -999, 0, "zg", 150.0, 2.0),
        (1, 2458302.75, 99.99, 0.05, 0, "zg", 150.0, 2.0),
        (1, 2458303.75, 18.0, 0.0, 0, "zg", 150.0, 2.0),
        (1, 2400003.75, 18.0, 0.05, 0, "zg", 150.0, 2.0),      # 1858: not a ZTF epoch
        (1, 2458304.75, 18.0, 0.05, 0, "zq", 150.0, 2.0)]))    # unknown filter
    lc = multilc.collect(TARGETS[:1], archives=["ztf"], options={"ztf": {"route": "api"}},
                         cache=False, **FAST)
    assert lc.report.ok, lc.report.summary()
    assert len(lc) == 1 and (lc.flux_err.to_value(u.mJy) > 0).all()
    assert lc.report.dropped["ztf"] == {"magerr == -999 (missing)": 1,
                                        "mag == 99.99 (missing)": 1, "magerr <= 0": 1,
                                        "hjd outside [2433282.5, 2469807.5] d": 1,
                                        "unknown filtercode 'zq'": 1}


def test_api_one_line_answer_is_never_opened_as_a_file(replay_server, monkeypatch,
                                                        tmp_path):
    decoy = tmp_path / "decoy.csv"
    decoy.write_text(_api_csv([(1, 2458300.75, 18.0, 0.05, 0, "zg", 150.0, 2.0)]))
    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    replay_server.route("/api", str(decoy))
    lc = multilc.collect(TARGETS[:1], archives=["ztf"], options={"ztf": {"route": "api"}},
                         cache=False, **FAST)
    assert len(lc) == 0
    (failure,) = lc.report.failures
    assert failure.objectids == [1] and "lacks columns" in failure.message


def test_api_batches_of_several_targets_isolate_each(replay_server, monkeypatch):
    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    monkeypatch.setenv("MULTILC_BACKOFF", "0.01")

    def handler(request):
        _, ra, dec, _ = request.args["POS"].split()
        if float(ra) == 10.0:
            return (503, {}, "busy")
        if float(ra) == 250.0:
            return API_HEADER + "\n1,1,2458300.75,58300,18.0,0.05,0,zg,abc,2.0" + ",1" * 14 + "\n"
        return _api_csv([(7, 2458300.75, 18.0, 0.05, 0, "zg", float(ra), float(dec))])

    replay_server.route("/api", handler=handler)
    lc = multilc.collect(TARGETS, archives=["ztf"], cache=False,
                         options={"ztf": {"route": "api", "chunk_size": 3}}, **FAST)
    failures = {f.objectids[0]: f for f in lc.report.failures}
    assert sorted(failures) == [2, 3]
    assert failures[2].transient and "503" in failures[2].message
    assert "targets 2)" in failures[2].message          # names only its own target
    assert "'ra' should hold float" in failures[3].message
    assert lc.objectids_with_data == [1] and len(lc) == 1


def test_api_epochs_of_a_batch_are_converted_once(replay_server, monkeypatch):
    """One conversion (and one light curve) per batch, not per target; when it
    fails, each target is converted alone and only the culprit fails."""
    from multilc.archives import ztf

    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))

    def handler(request):
        _, ra, dec, _ = request.args["POS"].split()
        return _api_csv([(int(float(ra)), 2458300.75 + k, 18.0 + 0.1 * k, 0.05, 0,
                          ("zg", "zr")[k % 2], float(ra), float(dec)) for k in range(4)])

    replay_server.route("/api", handler=handler)
    calls = []
    convert = ztf._epochs_to_lightcurve

    def spy(**kwargs):
        calls.append(sorted(set(kwargs["objectid"].tolist())))
        if fail_on is not None and fail_on in calls[-1]:
            raise FloatingPointError("a bad epoch")
        return convert(**kwargs)

    monkeypatch.setattr(ztf, "_epochs_to_lightcurve", spy)
    fail_on = None
    options = {"ztf": {"route": "api", "chunk_size": 3}}
    lc = multilc.collect(TARGETS, archives=["ztf"], cache=False, options=options, **FAST)
    assert lc.report.ok and calls == [[1, 2, 3]]
    assert list(lc.objectids_with_data) == [1, 2, 3] and len(lc.time) == 12
    # the same fluxes as converting each target alone
    alone = [multilc.collect(TARGETS[i:i + 1], archives=["ztf"], cache=False,
                             options=options, **FAST) for i in range(3)]
    np.testing.assert_array_equal(lc.flux.to_value(u.mJy),
                                  np.concatenate([a.flux.to_value(u.mJy) for a in alone]))
    np.testing.assert_array_equal(lc.time.mjd, np.concatenate([a.time.mjd for a in alone]))

    calls.clear()
    fail_on = 2
    lc = multilc.collect(TARGETS, archives=["ztf"], cache=False, options=options, **FAST)
    assert calls == [[1, 2, 3], [1], [2], [3]]
    assert [f.objectids for f in lc.report.failures] == [[2]]
    assert "a bad epoch" in lc.report.failures[0].message
    assert list(lc.objectids_with_data) == [1, 3]


def test_bulk_rows_outside_the_contract_are_dropped_and_counted(tmp_path):
    import pyarrow.parquet as pq

    objs = [dict(objectid=686103400034440, filterid=2, objra=298.0025, objdec=29.87147,
                 hmjd=[58250.5, -999.0, 58252.5, 58253.5, 58254.5],
                 mag=[15.5, 15.6, 99.99, np.nan, 15.7],
                 magerr=[0.01, 0.02, 0.02, 0.02, -999.0], catflags=[0, 0, 0, 0, 0])]
    path = tmp_path / "ztf.parquet"
    pq.write_table(catalogs.ztf_lightcurve_table(objs, nested=False), path)
    lc = MultiBandLightCurve.read(path, format="ztf.parquet")
    assert len(lc) == 1
    assert lc.report.dropped["ztf"] == {"hmjd outside [33282, 69807] d": 1,
                                        "mag outside [-2, 30] mag": 1,
                                        "mag missing (null/NaN)": 1,
                                        "magerr == -999 (missing)": 1}


def test_ipac_answer_declaring_more_rows_than_it_holds_is_truncated(tmp_path):
    """IPAC tables may declare their row count (RowsRetrieved): a cut after a
    complete row is then visible, unlike in CSV."""
    from astropy.table import Table

    from multilc.errors import FileFormatError

    csv = tmp_path / "lc.csv"
    csv.write_text(_api_csv([(42, 2458300.75 + k, 18.0, 0.05, 0, "zg", 150.0, 2.0)
                             for k in range(3)]))
    t = Table.read(csv, format="ascii.csv")
    t.meta["keywords"] = {"RowsRetrieved": {"value": "3"}}
    whole, cut = tmp_path / "whole.tbl", tmp_path / "cut.tbl"
    t.write(whole, format="ascii.ipac")
    t[:2].write(cut, format="ascii.ipac")
    assert len(MultiBandLightCurve.read(whole, format="ztf.api")) == 3
    with pytest.raises(FileFormatError, match="declares 3 rows"):
        MultiBandLightCurve.read(cut, format="ztf.api")


def test_api_answer_cached_by_an_older_version_still_parses():
    from multilc.collect.api import Batch

    arch = multilc.archives.ztf.ZTF(route="api")
    batch = Batch("ztf", 0, np.array([4]), np.array([150.0]), np.array([2.0]),
                  np.array([""]), {**arch.batch_options(), "route": "api"})
    text = _api_csv([(1, 2458300.75, 18.0, 0.05, 0, "zg", 150.0, 2.0)])
    res = arch.parse(text, batch)
    assert len(res.lc) == 1 and not res.failures


def test_api_requests_of_a_worker_share_one_session(replay_server, monkeypatch):
    """Each engine worker thread keeps one requests.Session per archive for
    all its requests (so that real archives' kept-alive connections and TLS
    sessions are reused; the werkzeug stand-in itself closes every
    connection), and the engine closes them when the run ends."""
    from multilc.collect import api

    monkeypatch.setenv("MULTILC_ZTF_API_URL", replay_server.url_for("/api"))
    replay_server.route("/api", handler=lambda request: API_HEADER + "\n")
    made, used = [], []
    real_session = api.http_session

    def counting_session(timeout=None):
        session = real_session(timeout)
        made.append(session)
        real_close, real_request = session.close, session.request

        def close():
            session.closed_by_engine = True
            real_close()

        def request(*args, **kwargs):
            used.append(session)
            return real_request(*args, **kwargs)
        session.close, session.request = close, request
        return session

    monkeypatch.setattr(api, "http_session", counting_session)
    targets = SkyCoord(np.arange(6) * 10.0 * u.deg, np.zeros(6) * u.deg)
    for concurrency in (1, 2):
        made.clear()
        used.clear()
        lc = multilc.collect(targets, archives=["ztf"], cache=False, options={
            "ztf": {"route": "api", "concurrency": concurrency}}, **FAST)
        assert lc.report.ok and len(used) == 6
        assert 1 <= len(made) <= concurrency
        assert {id(s) for s in used} == {id(s) for s in made}
        assert all(getattr(s, "closed_by_engine", False) for s in made)
