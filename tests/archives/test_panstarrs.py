"""Tests of the Pan-STARRS1 DR2 reader (multilc.archives.panstarrs).

Stand-ins: a `ReplayServer` answering the MAST Catalogs API
(``/api/v0.1/panstarrs/dr2/{mean,detection}.{csv,json,votable}``) from a small
fake sky, in the API's real layouts (JSON ``{"info": [...], "data": [...]}``
with 64-bit ids as strings, as in astroquery's recorded
``mast/tests/data/panstarrs.json``), and HATS object/detection catalogs
written at test time.  Expected fluxes and times are computed by hand or with
astropy directly.
"""
import io
import json
import threading
import time

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.table import Table
from astropy.time import Time

from multilc import MultiBandLightCurve, collect
from multilc.errors import MultilcError

ps1 = pytest.importorskip("multilc.archives.panstarrs")

FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False, cache=False)
API = "/api/v0.1/panstarrs/dr2"

# --------------------------------------------------------------------------- fake sky
OBJECTS = [  # objID, raMean, decMean, nDetections
    (108001500000000001, 150.000000, 2.000000, 10),
    (108001500002000002, 150.000200, 2.000000, 10),   # 0.72" from the first
    (108001500009000003, 150.000000, 2.000833, 10),   # 3.0" away: outside 1"
    (72102105000000004, 210.500000, -30.250000, 10),
]


def detections_of(obj_id, ra, dec, seed):
    rows = []
    for k in range(10):
        filter_id = k % 5 + 1
        flux = 1e-4 * (1 + 0.1 * k + seed)          # Jy
        rows.append(dict(objID=obj_id, detectID=obj_id * 0 + 5000000 * seed + k,
                         filterID=filter_id, obsTime=55500.25 + 17.5 * k + seed,
                         ra=ra + 1e-5 * k, dec=dec, psfFlux=flux, psfFluxErr=flux / 50,
                         infoFlag=(1 << 3) * (k % 2)))
    rows[7]["psfFlux"] = -999.0        # missing measurement
    rows[8]["psfFluxErr"] = -999.0
    return rows


DETECTIONS = Table(rows=[r for i, (o, ra, dec, _) in enumerate(OBJECTS)
                         for r in detections_of(o, ra, dec, i)])
# A detection at target 11's exact position that belongs to the 3"-away object:
# a positional join would take it, the objID join must not.
DETECTIONS.add_row(dict(objID=OBJECTS[2][0], detectID=777, filterID=2, obsTime=56000.0,
                        ra=150.0, dec=2.0, psfFlux=5e-4, psfFluxErr=1e-5, infoFlag=0))

#: Rows with psfFlux or psfFluxErr == -999 among the three matched objects.
MISSING_6 = {"psfFlux == -999 (missing)": 3, "psfFluxErr == -999 (missing)": 3}

JSON_TYPES = {"objID": "long", "detectID": "long", "filterID": "unsignedByte",
              "obsTime": "double", "ra": "double", "dec": "double", "psfFlux": "float",
              "psfFluxErr": "float", "infoFlag": "int", "raMean": "double",
              "decMean": "double", "nDetections": "short"}


def render(table, fmt):
    if fmt == "csv":
        text = io.StringIO()
        table.write(text, format="ascii.csv")
        return text.getvalue()
    if fmt == "json":
        info = [{"name": c, "type": JSON_TYPES[c], "db_type": "NUMBER", "description": c}
                for c in table.colnames]
        data = [[str(int(v)) if JSON_TYPES[c] == "long" else v.item() for c, v in
                 zip(table.colnames, row)] for row in table.iterrows()]
        return json.dumps({"info": info, "data": data})
    buf = io.BytesIO()
    table.write(buf, format="votable")
    return buf.getvalue()


def columns_param(request):
    return request.args["columns"].strip("[]").split(",")


def mast_api(server, fmt, calls=None):
    objects = Table(rows=OBJECTS, names=("objID", "raMean", "decMean", "nDetections"))

    def mean(request):
        if calls is not None:
            calls.append(request)
        ra, dec = float(request.args["ra"]), float(request.args["dec"])
        radius = float(request.args["radius"]) * u.deg
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
            SkyCoord(objects["raMean"] * u.deg, objects["decMean"] * u.deg))
        sel = (sep <= radius) & (objects["nDetections"] >= int(request.args["nDetections.min"]))
        return render(objects[sel][columns_param(request)], fmt)

    def detection(request):
        sel = DETECTIONS["objID"] == int(request.args["objID"])
        return render(DETECTIONS[sel][columns_param(request)], fmt)

    server.route(f"{API}/mean.{fmt}", handler=mean)
    server.route(f"{API}/detection.{fmt}", handler=detection)


@pytest.fixture
def api(replay_server, monkeypatch):
    monkeypatch.setenv("MULTILC_PANSTARRS_API_URL", replay_server.url_for("/api/v0.1/panstarrs"))
    return replay_server


def targets():
    return Table({"objectid": [11, 12, 13], "ra": [150.0, 210.5, 40.0],
                  "dec": [2.0, -30.25, 40.0]})


def expected_mjd_tdb(obs_time, ra, dec):
    """obsTime (MJD, TAI) -> barycentric MJD(TDB) with astropy (geocentre: the
    Haleakala offset is < 21 ms, inside the tolerance used)."""
    t = Time(np.asarray(obs_time, float), format="mjd", scale="tai",
             location=EarthLocation.from_geocentric(0, 0, 0, unit=u.m))
    ltt = t.light_travel_time(SkyCoord(ra * u.deg, dec * u.deg), kind="barycentric")
    return (t.tdb + ltt).mjd


def _values(lc, objectid, source_id):
    ds = lc.ds
    obj = np.asarray(ds["objectid"].values)[ds["obs_object"].values]
    sel = (obj == objectid) & (ds["source_id"].values == source_id)
    band = np.asarray(ds["band"].values)[ds["obs_band"].values][sel]
    return sel, band


def _check_object(lc, objectid, index):
    obj_id, ra, dec, _ = OBJECTS[index]
    sel, band = _values(lc, objectid, obj_id)
    rows = DETECTIONS[(DETECTIONS["objID"] == obj_id) & (DETECTIONS["psfFlux"] != -999)
                      & (DETECTIONS["psfFluxErr"] != -999)]
    assert sel.sum() == len(rows) == 8
    ds = lc.ds
    order = np.argsort(ds["time"].values[sel])
    rows.sort("obsTime")
    # psfFlux [Jy] * 1000 = mJy; filterID 1..5 = g r i z y
    np.testing.assert_allclose(ds["flux"].values[sel][order], rows["psfFlux"] * 1e3,
                               rtol=1e-6)
    np.testing.assert_allclose(ds["flux_err"].values[sel][order], rows["psfFluxErr"] * 1e3,
                               rtol=1e-6)
    assert list(band[order]) == [f"panstarrs:{'grizy'[f - 1]}" for f in rows["filterID"]]
    np.testing.assert_allclose(ds["time"].values[sel][order],
                               expected_mjd_tdb(rows["obsTime"], ra, dec), atol=5e-7)
    np.testing.assert_array_equal(ds["flag"].values[sel][order], rows["infoFlag"])
    return sel


# --------------------------------------------------------------------------- service
@pytest.mark.parametrize("fmt", ["csv", "json", "votable"])
def test_service_end_to_end(api, monkeypatch, fmt):
    monkeypatch.setenv("MULTILC_PANSTARRS_RESPONSE_FORMAT", fmt)
    mast_api(api, fmt)
    lc = collect(targets(), archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    # one cone per target, one detection request per matched objID
    means = [r for r in api.requests if r.path == f"{API}/mean.{fmt}"]
    dets = [r for r in api.requests if r.path == f"{API}/detection.{fmt}"]
    assert len(means) == 3
    assert sorted(int(r.args["objID"]) for r in dets) == sorted(
        [OBJECTS[0][0], OBJECTS[1][0], OBJECTS[3][0]])
    m = [r for r in means if float(r.args["ra"]) == 150.0][0]
    assert float(m.args["radius"]) == pytest.approx(1 / 3600)
    assert m.args["nDetections.min"] == "1"
    assert sorted(set(lc.objectids_with_data)) == [11, 12]
    _check_object(lc, 11, 0)
    _check_object(lc, 11, 1)
    _check_object(lc, 12, 3)
    # -999 rows: 2 per matched object, counted
    assert lc.report.dropped["panstarrs"] == MISSING_6
    # separation from the mean position, by astropy
    sel, _ = _values(lc, 11, OBJECTS[1][0])
    sep = SkyCoord(150 * u.deg, 2 * u.deg).separation(
        SkyCoord(150.0002 * u.deg, 2 * u.deg)).to_value(u.arcsec)
    np.testing.assert_allclose(lc.ds["separation"].values[sel], sep, rtol=1e-6)
    # the 3"-away object's detection at the target position is not taken
    assert OBJECTS[2][0] not in set(lc.ds["source_id"].values)


def test_service_nearest_and_infoflag_mask(api):
    mast_api(api, "csv")
    lc = collect(targets(), archives=["panstarrs"],
                 options={"panstarrs": {"route": "service", "match": "nearest",
                                        "infoflag_mask": 8}}, **FAST)
    assert lc.report.ok
    dets = [r for r in api.requests if r.path == f"{API}/detection.csv"]
    assert len(dets) == 2                      # the nearest object of each target
    assert set(lc.ds["source_id"].values) == {OBJECTS[0][0], OBJECTS[3][0]}
    # odd k have infoFlag 8: k=1,3,5,9 (k=7 is already -999) -> 4 per object, 2 objects
    assert lc.report.dropped["panstarrs"] == {"psfFlux == -999 (missing)": 2,
                                              "psfFluxErr == -999 (missing)": 2,
                                              "infoFlag & 8": 8}
    assert not (lc.ds["flag"].values & 8).any()


def test_service_bounded_concurrency(api):
    active, peak, lock = [0], [0], threading.Lock()

    def mean(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return "objID,raMean,decMean,nDetections\n"

    api.route(f"{API}/mean.csv", handler=mean)
    t = Table({"objectid": np.arange(1, 9), "ra": np.linspace(10, 20, 8), "dec": np.zeros(8)})
    lc = collect(t, archives=["panstarrs"], chunk_size=1, concurrency=2,
                 options={"panstarrs": {"route": "service"}}, **FAST)
    assert lc.report.ok
    assert api.count(f"{API}/mean.csv") == 8
    assert peak[0] == 2


def test_one_bad_target_keeps_the_others(api):
    mast_api(api, "csv")
    good_mean = api._routes[(f"{API}/mean.csv", "GET")].handler

    def mean(request):
        if float(request.args["ra"]) == 210.5:
            return (400, {}, "Bad request: something about this target")
        return good_mean(request)

    api.route(f"{API}/mean.csv", handler=mean)
    lc = collect(targets(), archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "panstarrs" and failure.objectids == [12]
    assert "HTTP 400" in failure.message
    assert sorted(set(lc.objectids_with_data)) == [11]


def test_html_page_is_a_named_failure(api):
    api.route(f"{API}/mean.csv", "<!DOCTYPE html><html><body>maintenance</body></html>",
              content_type="text/html")
    lc = collect(targets()[:1], archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    (failure,) = lc.report.failures
    assert "HTML page" in failure.message and "11" in failure.message


def test_options_checked():
    with pytest.raises(TypeError, match="panstarrs: radius must be an angle Quantity"):
        ps1.PanSTARRS(radius=2)
    with pytest.raises(ValueError, match="0.5 deg"):
        ps1.PanSTARRS(radius=1 * u.deg)
    with pytest.raises(ValueError, match="match must be"):
        ps1.PanSTARRS(match="best")


def test_json_template_matches_astroquery_recording():
    """Our JSON stand-in follows the real layout: parse the real recording."""
    import importlib.resources

    path = importlib.resources.files("astroquery") / "mast/tests/data/panstarrs.json"
    table = ps1.parse_table(path.read_text(), "json")
    assert table["objID"].dtype == np.int64
    assert table["objID"][0] == 68960059717834079     # a JSON string in the file
    assert table["lambda"][0] == pytest.approx(350.9591004254081)


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("json", ".json"),
                                        ("votable", ".xml")])
def test_detection_file(tmp_path, fmt, suffix):
    obj_id = OBJECTS[3][0]
    rows = DETECTIONS[DETECTIONS["objID"] == obj_id][list(ps1.DETECTION_COLUMNS)]
    path = tmp_path / f"detection{suffix}"
    content = render(rows, fmt)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    lc = MultiBandLightCurve.read(path, format="panstarrs.detection", objectid=12)
    assert json.loads(lc.ds.attrs["dropped"]) == {
        "psfFlux == -999 (missing)": 1, "psfFluxErr == -999 (missing)": 1}
    good = rows[(rows["psfFlux"] != -999) & (rows["psfFluxErr"] != -999)]
    good.sort("obsTime")
    order = np.argsort(lc.ds["time"].values)
    np.testing.assert_allclose(lc.ds["flux"].values[order], good["psfFlux"] * 1e3, rtol=1e-6)
    # light-travel time from each detection's own position (file has no mean)
    np.testing.assert_allclose(lc.ds["time"].values[order],
                               expected_mjd_tdb(good["obsTime"], good["ra"], good["dec"]),
                               atol=5e-7)
    assert set(lc.objectids_with_data) == {12}
    assert set(lc.ds["source_id"].values) == {obj_id}


def test_detection_file_errors(tmp_path):
    path = tmp_path / "detection.csv"
    path.write_text("objID,psfFlux\n1,2\n")
    with pytest.raises(MultilcError, match="detection.csv: .* lacks columns"):
        MultiBandLightCurve.read(path, format="panstarrs.detection")


# --------------------------------------------------------------------------- bulk (HATS)
def _hats(tmp_path):
    import pyarrow as pa

    from multilc.testing.catalogs import write_hats_catalog

    extra = [(99, 300.0, -70.0, 3)]        # far away: its partition stays unread
    objs = OBJECTS + extra
    otmo = pa.table({"objID": pa.array([o[0] for o in objs], pa.int64()),
                     "raMean": pa.array([o[1] for o in objs], pa.float64()),
                     "decMean": pa.array([o[2] for o in objs], pa.float64()),
                     "nStackDetections": pa.array([o[3] for o in objs], pa.int16())})
    det = DETECTIONS.copy()
    det.add_row(dict(objID=99, detectID=1, filterID=1, obsTime=56000.0, ra=300.0,
                     dec=-70.0, psfFlux=1e-4, psfFluxErr=1e-6, infoFlag=0))
    # HATS detection table: the columns today's tool reads, plus the positions
    # it is partitioned on (types as in the MAST DR2 Detection table).
    detection = pa.table({
        "objID": pa.array(det["objID"], pa.int64()),
        "detectID": pa.array(det["detectID"], pa.int64()),
        "ra": pa.array(det["ra"], pa.float64()), "dec": pa.array(det["dec"], pa.float64()),
        "obsTime": pa.array(det["obsTime"], pa.float64()),
        "filterID": pa.array(det["filterID"], pa.int16()),
        "psfFlux": pa.array(det["psfFlux"], pa.float32()),
        "psfFluxErr": pa.array(det["psfFluxErr"], pa.float32())})
    root = tmp_path / "hats"
    opaths = write_hats_catalog(otmo, root / "otmo", catalog_name="otmo", ra_column="raMean",
                                dec_column="decMean", order=4)
    dpaths = write_hats_catalog(detection, root / "detection", catalog_name="detection",
                                ra_column="ra", dec_column="dec", order=3)
    return root, opaths, dpaths


def _touched(ra, dec, radius_deg, order, paths):
    import hpgeom

    keys = set()
    for r, d in zip(ra, dec):
        for p in hpgeom.query_circle(hpgeom.order_to_nside(order), r, d, radius_deg,
                                     nest=True, inclusive=True):
            if (order, int(p)) in paths:
                keys.add((order, int(p)))
    return keys


def _check_bulk(lc):
    assert lc.report.ok, lc.report.summary()
    assert sorted(set(lc.objectids_with_data)) == [11, 12]
    for objectid, index in ((11, 0), (11, 1), (12, 3)):
        sel, _ = _values(lc, objectid, OBJECTS[index][0])
        obj_id, ra, dec, _ = OBJECTS[index]
        rows = DETECTIONS[(DETECTIONS["objID"] == obj_id) & (DETECTIONS["psfFlux"] != -999)
                          & (DETECTIONS["psfFluxErr"] != -999)]
        rows.sort("obsTime")
        order = np.argsort(lc.ds["time"].values[sel])
        np.testing.assert_allclose(lc.ds["flux"].values[sel][order], rows["psfFlux"] * 1e3,
                                   rtol=1e-6)
        np.testing.assert_allclose(lc.ds["time"].values[sel][order],
                                   expected_mjd_tdb(rows["obsTime"], ra, dec), atol=5e-7)
    assert OBJECTS[2][0] not in set(lc.ds["source_id"].values)
    assert lc.report.dropped["panstarrs"] == MISSING_6


def test_bulk_local_partitions_opened_once(tmp_path, monkeypatch):
    from multilc.catalogs import read_log

    root, opaths, dpaths = _hats(tmp_path)
    monkeypatch.setenv("MULTILC_PANSTARRS_OBJECT_CATALOG", str(root / "otmo"))
    monkeypatch.setenv("MULTILC_PANSTARRS_DETECTION_CATALOG", str(root / "detection"))
    read_log.clear()
    lc = collect(targets(), archives=["panstarrs"], options={"panstarrs": {"route": "bulk"}},
                 **FAST)
    _check_bulk(lc)
    opens = read_log.partition_opens()
    by_root = {}
    for (r, o, p), n in opens.items():
        assert n == 1, f"partition {(o, p)} of {r} opened {n} times"
        by_root.setdefault("otmo" if "/otmo" in r else "detection", set()).add((o, p))
    t = targets()
    assert by_root["otmo"] == _touched(t["ra"], t["dec"], 1 / 3600, 4, opaths)
    matched = [OBJECTS[i] for i in (0, 1, 3)]
    assert by_root["detection"] == _touched([o[1] for o in matched], [o[2] for o in matched],
                                            5 / 3600, 3, dpaths)
    assert len(by_root["otmo"]) < len(opaths) and len(by_root["detection"]) < len(dpaths)


def test_bulk_through_s3(tmp_path, monkeypatch):
    from multilc.testing.catalogs import moto_s3

    root, _, _ = _hats(tmp_path)
    with moto_s3([(root, "panstarrs/ps1/public/hats")], bucket="stpubdata") as endpoint:
        monkeypatch.setenv("MULTILC_PANSTARRS_S3_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("MULTILC_PANSTARRS_OBJECT_CATALOG",
                           "s3://stpubdata/panstarrs/ps1/public/hats/otmo")
        monkeypatch.setenv("MULTILC_PANSTARRS_DETECTION_CATALOG",
                           "s3://stpubdata/panstarrs/ps1/public/hats/detection")
        lc = collect(targets(), archives=["panstarrs"],
                     options={"panstarrs": {"route": "bulk"}}, **FAST)
    _check_bulk(lc)


def test_auto_route_threshold(monkeypatch):
    from multilc.samples import as_sample

    arch = ps1.PanSTARRS()
    monkeypatch.setenv("MULTILC_PANSTARRS_BULK_THRESHOLD", "1000")
    batches = arch.plan(as_sample(targets()))
    assert {b.options["route"] for b in batches} == {"service"}
    # one target per batch by default (requests are per target)
    assert [len(b) for b in batches] == [1, 1, 1]


# --------------------------------------------------------------------------- live
# 3C 273 (ICRS 12h29m06.6997s +02d03m08.598s), bright and well observed by PS1.
LIVE = Table({"objectid": [1], "ra": [187.2779154], "dec": [2.0523883]})


@pytest.mark.remote_data
@pytest.mark.parametrize("route", ["service", "bulk"])
def test_live_routes(route):
    lc = collect(LIVE, archives=["panstarrs"], options={"panstarrs": {"route": route}},
                 progress=False, cache=False)
    assert lc.report.ok, lc.report.summary()
    assert lc.ds.sizes["obs"] > 10
    assert set(lc.ds["band"].values) <= {f"panstarrs:{b}" for b in "grizy"}
    assert np.all(lc.ds["time"].values > 54900)     # PS1 began in 2009


# --------------------------------------------------------------------------- issue 10: trust
def _detection_csv(rows, header="objID,detectID,filterID,obsTime,ra,dec,psfFlux,psfFluxErr,"
                                "infoFlag"):
    return header + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows)


def _one_object_api(api, detection_text, fmt="csv", content_type="text/csv"):
    """Every cone finds OBJECTS[0]; its detection answer is *detection_text*."""
    obj_id, ra, dec, n = OBJECTS[0]

    def mean(request):
        return (200, {"Content-Type": "text/csv"},
                f"objID,raMean,decMean,nDetections\n{obj_id},{float(request.args['ra'])},"
                f"{float(request.args['dec'])},{n}\n")

    api.route(f"{API}/mean.{fmt}", handler=mean)
    api.route(f"{API}/detection.{fmt}", detection_text, content_type=content_type)


def test_missing_obstime_is_dropped_and_counted_not_a_time(api):
    """Issue 10: an empty obsTime filled with -999 came out as time -999 MJD."""
    o = OBJECTS[0][0]
    _one_object_api(api, _detection_csv([
        (o, 1, 1, 55500.25, 150.0, 2.0, 1e-4, 2e-6, 0),
        (o, 2, 2, -999.0, 150.0, 2.0, 1e-4, 2e-6, 0),       # missing time
        (o, 3, 3, "", 150.0, 2.0, 1e-4, 2e-6, 0),           # empty cell
        (o, 4, 4, 12.5, 150.0, 2.0, 1e-4, 2e-6, 0),         # not an MJD of PS1
        (o, 5, 9, 55501.25, 150.0, 2.0, 1e-4, 2e-6, 0),     # unknown filter
        (o, 6, 5, 55502.25, 150.0, 2.0, 1e-4, -1e-6, 0)]))  # negative error
    lc = collect(targets()[:1], archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    assert len(lc) == 1
    assert lc.time.mjd[0] == pytest.approx(expected_mjd_tdb([55500.25], 150.0, 2.0)[0],
                                           abs=5e-7)
    assert lc.report.dropped["panstarrs"] == {
        "obsTime == -999 (missing)": 1, "obsTime missing (null/NaN)": 1,
        "obsTime outside [33282, 69807] d": 1, "filterID outside [1, 5]": 1,
        "psfFluxErr <= 0": 1}


def test_declared_units_are_converted(api):
    """Issue 10: units declared by the answer were ignored (VOTable, JSON info)."""
    o = OBJECTS[0][0]
    t = Table(rows=[(o, 1, 1, 55500.25, 150.0, 2.0, 0.1, 0.002, 0)],
              names=("objID", "detectID", "filterID", "obsTime", "ra", "dec", "psfFlux",
                     "psfFluxErr", "infoFlag"))
    t["psfFlux"].unit = u.mJy
    t["psfFluxErr"].unit = u.uJy
    buf = io.BytesIO()
    t.write(buf, format="votable")
    _one_object_api(api, buf.getvalue(), fmt="votable", content_type="text/xml")
    api.route(f"{API}/mean.votable", handler=lambda r: render(Table(
        rows=[OBJECTS[0]], names=("objID", "raMean", "decMean", "nDetections")), "votable"))
    import os

    os.environ["MULTILC_PANSTARRS_RESPONSE_FORMAT"] = "votable"
    try:
        lc = collect(targets()[:1], archives=["panstarrs"],
                     options={"panstarrs": {"route": "service"}}, **FAST)
    finally:
        del os.environ["MULTILC_PANSTARRS_RESPONSE_FORMAT"]
    assert lc.report.ok, lc.report.summary()
    assert lc.flux.to_value(u.mJy)[0] == pytest.approx(0.1)       # not 100 mJy
    assert lc.flux_err.to_value(u.mJy)[0] == pytest.approx(0.002e-3)
    # A JSON answer whose info declares a unit is converted too; an impossible one
    # (seconds for a flux) is refused for that target.
    doc = {"info": [{"name": c, "type": JSON_TYPES[c]} for c in t.colnames],
           "data": [[str(o), "1", 1, 55500.25, 150.0, 2.0, 0.1, 0.002, 0]]}
    doc["info"][6]["unit"] = "mJy"
    checked = ps1._check(ps1.DETECTION_CONTRACT, json.dumps(doc), "json", [1], "det")
    assert checked["psfFlux"][0] == pytest.approx(1e-4)            # Jy
    doc["info"][6]["unit"] = "s"
    with pytest.raises(MultilcError, match="declared in s"):
        ps1._check(ps1.DETECTION_CONTRACT, json.dumps(doc), "json", [1], "det")


@pytest.mark.parametrize("answer", [
    "Error: column 'psfFlux' is not in table detection\n",           # plain-text error
    "OBJID,FILTER,TIME\n1,2,3\n",                                     # other columns
    "objID,filterID,obsTime\n1,2,55000\n",                            # some missing
])
def test_detection_answer_without_expected_columns_is_a_failure(api, answer):
    """Issue 10: such an answer was treated as 'no detections'."""
    _one_object_api(api, answer)
    lc = collect(targets()[:1], archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "panstarrs" and failure.objectids == [11]
    assert "lacks columns" in failure.message
    assert len(lc) == 0


def test_one_line_answer_is_never_opened_as_a_file(api, tmp_path):
    """Issue 10: an answer consisting of a local path turned that file into data."""
    o = OBJECTS[0][0]
    decoy = tmp_path / "decoy.csv"
    decoy.write_text(_detection_csv([(o, 1, 1, 55500.25, 150.0, 2.0, 1e-4, 2e-6, 0)]))
    _one_object_api(api, str(decoy))
    lc = collect(targets()[:1], archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    assert len(lc) == 0
    (failure,) = lc.report.failures
    assert failure.objectids == [11] and "lacks columns" in failure.message


def test_persistent_503_of_one_target_keeps_the_batch(api, monkeypatch):
    """Issue 10: one target's persistent 503 discarded its whole batch."""
    monkeypatch.setenv("MULTILC_BACKOFF", "0.01")
    monkeypatch.setenv("MULTILC_RETRIES", "2")
    mast_api(api, "csv")
    good_mean = api._routes[(f"{API}/mean.csv", "GET")].handler

    def mean(request):
        if float(request.args["ra"]) == 210.5:
            return (503, {}, "Service Unavailable")
        return good_mean(request)

    api.route(f"{API}/mean.csv", handler=mean)
    lc = collect(targets(), archives=["panstarrs"], chunk_size=3,
                 options={"panstarrs": {"route": "service"}}, **FAST)
    (failure,) = lc.report.failures
    assert failure.objectids == [12] and failure.transient
    assert failure.attempts == 3                    # MULTILC_RETRIES=2 more tries
    assert "503" in failure.message
    _check_object(lc, 11, 0)
    _check_object(lc, 11, 1)


@pytest.mark.parametrize("exc", [OverflowError, TypeError, KeyError, ZeroDivisionError])
def test_any_exception_parsing_one_target_is_that_targets_failure(api, monkeypatch, exc):
    """Issue 10: an OverflowError/TypeError while parsing one target lost the batch."""
    mast_api(api, "csv")
    real = ps1.detections_to_lightcurve

    def flaky(det, objectid, *args, **kwargs):
        if int(np.asarray(objectid)[0]) == 12:
            raise exc("boom")
        return real(det, objectid, *args, **kwargs)

    monkeypatch.setattr(ps1, "detections_to_lightcurve", flaky)
    lc = collect(targets(), archives=["panstarrs"], chunk_size=3,
                 options={"panstarrs": {"route": "service"}}, **FAST)
    (failure,) = lc.report.failures
    assert failure.objectids == [12] and failure.error_type == exc.__name__
    assert "panstarrs" in failure.message and "12" in failure.message
    _check_object(lc, 11, 0)
    _check_object(lc, 11, 1)


def test_cut_off_answers_are_truncated_not_data():
    from multilc.collect.contract import TruncatedResponse

    o = OBJECTS[0][0]
    text = _detection_csv([(o, 1, 1, 55500.25, 150.0, 2.0, 1e-4, 2e-6, 0)] * 3)
    with pytest.raises(TruncatedResponse):
        ps1._check(ps1.DETECTION_CONTRACT, text[:-9], "csv", [1], "det")
    doc = json.dumps({"info": [{"name": "objID", "type": "long"}], "data": [["1"], ["2"]]})
    with pytest.raises(TruncatedResponse):
        ps1._check(ps1.DETECTION_CONTRACT, doc[:-3], "json", [1], "det")
    vot = render(DETECTIONS[:3], "votable")
    with pytest.raises(TruncatedResponse):
        ps1._check(ps1.DETECTION_CONTRACT, vot[:len(vot) // 2], "votable", [1], "det")
    # the query's check before letting a target go: the same cuts, CSV unparsed
    with pytest.raises(TruncatedResponse):
        ps1._check_cut_off(text[:-9], "csv", [1], "det")
    with pytest.raises(TruncatedResponse):
        ps1._check_cut_off(vot[:len(vot) // 2], "votable", [1], "det")
    ps1._check_cut_off(text, "csv", [1], "det")              # whole: no error
    with pytest.raises(ps1.ResponseError, match="fills a whole page"):
        ps1._check_cut_off(text.split("\n", 1)[0] + "\n" + "1,2\n" * ps1.PAGE_SIZE,
                           "csv", [1], "det")


def test_a_full_page_is_not_taken_as_the_whole_answer(api, monkeypatch):
    """The MAST catalogs API pages its answers: a full page may continue."""
    monkeypatch.setattr(ps1, "PAGE_SIZE", 5)
    mast_api(api, "csv")
    lc = collect(targets()[:1], archives=["panstarrs"],
                 options={"panstarrs": {"route": "service"}}, **FAST)
    (failure,) = lc.report.failures
    assert failure.objectids == [11] and "fills a whole page" in failure.message
    assert {r.args["pagesize"] for r in api.requests} == {"5"}


def test_votable_overflow_status_is_not_a_whole_answer():
    vot = render(DETECTIONS[:3], "votable").decode()
    flagged = vot.replace("<RESOURCE", '<RESOURCE', 1).replace(
        "<TABLE", '<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n<TABLE', 1)
    assert "OVERFLOW" in flagged
    with pytest.raises(MultilcError, match="OVERFLOW"):
        ps1._check(ps1.DETECTION_CONTRACT, flagged, "votable", [1], "det")
    assert len(ps1._check(ps1.DETECTION_CONTRACT, vot, "votable", [1], "det")) == 3
