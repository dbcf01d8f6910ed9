"""Tests of multilc.archives.heasarc against a local TAP stand-in.

The stand-in's tables are built from the real HEASARC exports in
``shared/archive_samples/heasarc`` (SAXGRBMGRB and FERMIGBRST values) plus error
radii generated here deterministically (the exports have none).  The
stand-in answers the reader's ADQL by computing the containment join with
astropy; expected values (matches, separations, barycentric TDB times) are
computed in this file with astropy, never with the code under test.
"""
import contextlib
import re

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord, search_around_sky
from astropy.io import votable
from astropy.table import QTable, Table
from astropy.time import Time
from astropy.utils import iers

import multilc
from multilc import MultiBandLightCurve
from multilc.archives import heasarc
from multilc.testing import ADQLError, Fault, TAPStandin

FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False)
GEOCENTRE = EarthLocation.from_geocentric(0 * u.m, 0 * u.m, 0 * u.m)
SERVED = {"heasarc.fermigtrig": "fermi", "saxgrbmgrb": "sax", "icecubepsc": "icecube"}


# --------------------------------------------------------------------------- catalogs
def _generated_error_radius(n, low, step, period):
    """Deterministic error radii [deg]: low, low+step, ... repeating every *period* rows."""
    return low + step * (np.arange(n) % period)


@pytest.fixture(scope="module")
def catalogs(shared_dir):
    base = shared_dir / "archive_samples" / "heasarc"
    sax = Table.read(base / "saxgrbmgrb.csv", format="ascii.csv")
    fermi = Table.read(base / "fermigbrst.csv", format="ascii.csv")
    # SAX 0.2 ... 5.0 deg (the 3 deg cap matters), Fermi 0.05 ... 1.85 deg (the 1 deg cap)
    sax["error_radius"] = _generated_error_radius(len(sax), 0.2, 0.3, 17)
    fermi["error_radius"] = _generated_error_radius(len(fermi), 0.05, 0.15, 13)
    ic = np.loadtxt(shared_dir / "archive_samples" / "icecube" / "events" / "IC40_exp.csv")
    icecube = Table({"time": ic[:, 0], "event_energy": 10 ** ic[:, 1],
                     "error_radius": ic[:, 2], "ra": ic[:, 3], "dec": ic[:, 4]})
    return {"sax": sax, "fermi": fermi, "icecube": icecube}


def _values(col):
    if isinstance(col, u.Quantity):
        col = col.to_value(u.deg) if col.unit.is_equivalent(u.deg) else col.value
    return np.ma.filled(np.ma.asarray(col, dtype=float), np.nan)


def grb_matches(cat, targets, cap_deg):
    """Independent containment join: list of (objectid, row index, separation deg)."""
    ra, dec, err = _values(cat["ra"]), _values(cat["dec"]), _values(cat["error_radius"])
    ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec) & (err <= cap_deg))
    tc = SkyCoord(_values(targets["ra"]) * u.deg, _values(targets["dec"]) * u.deg)
    cc = SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg)
    out = []
    for i, t in enumerate(tc):
        sep = t.separation(cc).deg
        for j in np.flatnonzero(sep <= err[ok]):
            out.append((int(targets["objectid"][i]), int(ok[j]), float(sep[j])))
    return out


def icecube_matches(cat, targets, radius_deg):
    tc = SkyCoord(_values(targets["ra"]) * u.deg, _values(targets["dec"]) * u.deg)
    cc = SkyCoord(cat["ra"] * u.deg, cat["dec"] * u.deg)
    it, ic, d2d, _ = search_around_sky(tc, cc, radius_deg * u.deg)
    keep = d2d.deg < np.asarray(cat["error_radius"])[ic]
    return [(int(targets["objectid"][a]), int(b), float(s))
            for a, b, s in zip(it[keep], ic[keep], d2d.deg[keep])]


def make_answer(catalogs, seen):
    """The stand-in server: reads table and limits from the ADQL, joins with astropy."""
    def answer(query, uploads, maxrec):
        seen.append(query)
        table = re.search(r"FROM\s+(\S+)\s+AS\s+cat", query).group(1)
        if table not in SERVED:
            raise ADQLError(f"Table '{table}' not found")
        cat = catalogs[SERVED[table]]
        mt = uploads["mytable"]
        if SERVED[table] == "icecube":
            radius = float(re.search(r"CIRCLE\('ICRS', mt\.ra, mt\.dec, ([0-9.eE+-]+)\)",
                                     query).group(1))
            pairs = icecube_matches(cat, mt, radius)
            rows = [p[1] for p in pairs]
            result = Table({c: np.asarray(cat[c])[rows] for c in
                            ("ra", "dec", "error_radius", "time", "event_energy")})
        else:
            cap = float(re.search(r"error_radius <= ([0-9.eE+-]+)", query).group(1))
            pairs = grb_matches(cat, mt, cap)
            rows = [p[1] for p in pairs]
            result = Table({"name": np.asarray(cat["name"]).astype(str)[rows]
                            if rows else np.zeros(0, "U12")})
            for c in ("ra", "dec", "error_radius", "time"):
                result[c] = _values(cat[c])[rows]
        result["objectid"] = np.array([p[0] for p in pairs], dtype="int64")
        for c in ("ra", "dec", "error_radius"):
            result[c].unit = u.deg
        result["time"].unit = u.d
        return result
    return answer


@pytest.fixture
def seen():
    return []


@pytest.fixture
def tap(replay_server, catalogs, seen, monkeypatch):
    service = TAPStandin(replay_server, make_answer(catalogs, seen))
    monkeypatch.setenv("MULTILC_HEASARC_TAP_URL", service.url)
    monkeypatch.setenv("MULTILC_HEASARC_FERMI_GBM_TABLE", "heasarc.fermigtrig")
    return service


def _targets(catalogs, n_near=30, n_random=10, which="sax", seed=7):
    """Targets near real bursts (inside or near their error circles) plus random ones."""
    rng = np.random.default_rng(seed)
    cat = catalogs[which]
    ok = np.flatnonzero(np.isfinite(_values(cat["ra"])))
    rows = ok[np.linspace(0, len(ok) - 1, n_near).astype(int)]
    ra = _values(cat["ra"])[rows] + rng.uniform(-0.5, 0.5, n_near)
    dec = np.clip(_values(cat["dec"])[rows] + rng.uniform(-0.5, 0.5, n_near), -89.5, 89.5)
    ra = np.r_[ra, rng.uniform(0, 360, n_random)] % 360
    dec = np.r_[dec, np.degrees(np.arcsin(rng.uniform(-1, 1, n_random)))]
    n = n_near + n_random
    return QTable({"objectid": np.arange(101, 101 + n), "ra": ra * u.deg, "dec": dec * u.deg,
                   "label": np.full(n, "test")})


def expected_grb_events(cat, targets, cap_deg):
    """{(objectid, name): (separation deg, MJD TDB)} by astropy."""
    out = {}
    pos = {int(o): (r, d) for o, r, d in zip(targets["objectid"], _values(targets["ra"]),
                                            _values(targets["dec"]))}
    for oid, row, sep in grb_matches(cat, targets, cap_deg):
        r, d = pos[oid]
        t = Time(_values(cat["time"])[row], format="mjd", scale="utc", location=GEOCENTRE)
        bary = (t.tdb + t.light_travel_time(SkyCoord(r * u.deg, d * u.deg), "barycentric")).tdb
        out[(oid, str(cat["name"][row]))] = (sep, bary.mjd)
    return out


def got_events(lc, archive):
    ev = lc.events[lc.events["archive"] == archive]
    return {(int(o), str(n)): (s, t) for o, n, s, t in
            zip(ev["objectid"], ev["event_id"], ev["separation"].to_value(u.deg),
                ev["time"].tdb.mjd)}


def assert_same_events(got, expected, time_tol_s=1e-3):
    assert sorted(got) == sorted(expected)
    for key, (sep, mjd) in expected.items():
        assert got[key][0] == pytest.approx(sep, abs=1e-9), key
        assert abs(got[key][1] - mjd) * 86400 < time_tol_s, key


@pytest.fixture
def offline_iers():
    with contextlib.ExitStack() as stack:
        stack.enter_context(iers.conf.set_temp("auto_download", False))
        stack.enter_context(iers.conf.set_temp("auto_max_age", None))
        yield


# --------------------------------------------------------------------------- TAP route
def test_collect_grb_catalogs_match_independent_join(tap, catalogs, seen, offline_iers):
    targets = _targets(catalogs)
    lc = multilc.collect(targets, archives=["heasarc.bepposax", "heasarc.fermi_gbm"], **FAST)
    assert lc.report.ok
    expected_sax = expected_grb_events(catalogs["sax"], targets, 3.0)
    assert len(expected_sax) >= 15  # the test has teeth
    assert_same_events(got_events(lc, "heasarc.bepposax"), expected_sax)
    assert_same_events(got_events(lc, "heasarc.fermi_gbm"),
                       expected_grb_events(catalogs["fermi"], targets, 1.0))
    ev = lc.events
    assert np.all(np.isnan(ev["energy"].value))
    assert ev["error_radius"].unit == u.deg
    # what was asked
    by_table = {re.search(r"FROM\s+(\S+)", q).group(1): q for q in seen}
    assert set(by_table) == {"saxgrbmgrb", "heasarc.fermigtrig"}
    for table, cap in (("saxgrbmgrb", "3.0"), ("heasarc.fermigtrig", "1.0")):
        q = by_table[table]
        assert f"WHERE cat.error_radius <= {cap}\n" in q
        assert ("CONTAINS(POINT('ICRS', mt.ra, mt.dec), "
                "CIRCLE('ICRS', cat.ra, cat.dec, cat.error_radius)) = 1") in q
        assert 'cat."time"' in q and "TAP_UPLOAD.mytable AS mt" in q
    assert all(r.mode == "sync" for r in tap.queries)


def test_upload_carries_the_targets(tap, catalogs, replay_server):
    targets = _targets(catalogs, n_near=5, n_random=3)
    multilc.collect(targets, archives="heasarc.bepposax", **FAST)
    (record,) = tap.queries
    assert record.upload_rows == {"mytable": 8}
    request = [r for r in replay_server.requests if r.path == "/tap/sync"][-1]
    sent = Table.read(__import__("io").BytesIO(request.files["mytable"]), format="votable")
    assert sent.colnames == ["objectid", "ra", "dec"]
    assert sent["objectid"].tolist() == list(range(101, 109))
    np.testing.assert_array_equal(sent["ra"], targets["ra"].to_value(u.deg))
    np.testing.assert_array_equal(sent["dec"], targets["dec"].to_value(u.deg))
    assert sent["ra"].unit == u.deg


def test_chunking_and_async(tap, catalogs, monkeypatch, offline_iers):
    targets = _targets(catalogs, n_near=100, n_random=20)
    lc = multilc.collect(targets, archives="heasarc.bepposax", chunk_size=50, **FAST)
    assert sorted(r.upload_rows["mytable"] for r in tap.queries) == [20, 50, 50]
    assert lc.report.requests["heasarc.bepposax"] == 3
    expected = expected_grb_events(catalogs["sax"], targets, 3.0)
    assert_same_events(got_events(lc, "heasarc.bepposax"), expected)
    # above sync_max_targets the same queries run as UWS jobs, with the same answer
    monkeypatch.setenv("MULTILC_HEASARC_SYNC_MAX_TARGETS", "10")
    again = multilc.collect(targets, archives="heasarc.bepposax", chunk_size=50, cache=False,
                            **FAST)
    assert [r.mode for r in tap.queries[3:]] == ["async"] * 3
    assert_same_events(got_events(again, "heasarc.bepposax"), expected)


def test_transient_fault_is_retried(tap, catalogs, replay_server):
    targets = _targets(catalogs, n_near=10, n_random=0)
    clean = multilc.collect(targets, archives="heasarc.bepposax", cache=False, **FAST)
    replay_server.faults("/tap/sync", [Fault.status(503)])
    lc = multilc.collect(targets, archives="heasarc.bepposax", cache=False, **FAST)
    assert lc.report.ok
    assert lc.report.requests["heasarc.bepposax"] == 2
    assert got_events(lc, "heasarc.bepposax") == got_events(clean, "heasarc.bepposax")
    assert len(got_events(lc, "heasarc.bepposax")) > 0


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.truncated(fraction=0.5),
                                   Fault.html_error(502), Fault.hang(3)],
                         ids=["reset", "truncated", "html502", "timeout"])
def test_connection_faults_are_transient(tap, catalogs, replay_server, fault):
    targets = _targets(catalogs, n_near=5, n_random=0)
    replay_server.faults("/tap/sync", [fault])
    lc = multilc.collect(targets, archives="heasarc.bepposax", cache=False,
                         **{**FAST, "timeout": 1})
    assert lc.report.ok, lc.report.failures
    assert lc.report.requests["heasarc.bepposax"] == 2
    assert len(lc.events) > 0


def test_html_page_once_is_retried(tap, catalogs, replay_server, offline_iers):
    targets = _targets(catalogs, n_near=20, n_random=0)
    clean = multilc.collect(targets, archives=["heasarc.bepposax"], cache=False, **FAST)
    replay_server.faults("/tap/sync", [Fault.html_error(200)])
    lc = multilc.collect(targets, archives=["heasarc.bepposax"], cache=False, **FAST)
    assert lc.report.ok and lc.report.requests["heasarc.bepposax"] == 2
    assert got_events(lc, "heasarc.bepposax") == got_events(clean, "heasarc.bepposax")


def test_html_page_fails_one_chunk_only(tap, catalogs, replay_server, offline_iers):
    targets = _targets(catalogs, n_near=20, n_random=0)
    replay_server.faults("/tap/sync", [Fault.html_error(200)] * 2)
    lc = multilc.collect(targets, archives=["heasarc.bepposax"], chunk_size=10,
                         options={"heasarc.bepposax": {"concurrency": 1}}, **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "heasarc.bepposax"
    assert failure.objectids == list(range(101, 111))
    # one more try, then permanent, with the page's title
    assert not failure.transient and failure.attempts == 2
    assert "HTML page" in failure.message and "HTTP 200" in failure.message
    assert "heasarc.bepposax" in failure.message and "101" in failure.message
    # the other chunk survives
    second = targets[10:]
    assert_same_events(got_events(lc, "heasarc.bepposax"),
                       expected_grb_events(catalogs["sax"], second, 3.0))


def test_adql_error_is_permanent_and_other_archive_survives(tap, catalogs, monkeypatch,
                                                           offline_iers):
    monkeypatch.setenv("MULTILC_HEASARC_BEPPOSAX_TABLE", "saxgrbmgrb_missing")
    targets = _targets(catalogs, n_near=10, n_random=2, which="fermi")
    lc = multilc.collect(targets, archives=["heasarc.bepposax", "heasarc.fermi_gbm"], **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "heasarc.bepposax" and failure.attempts == 1
    assert "rejected the query" in failure.message
    assert "saxgrbmgrb_missing" in failure.message and "not found" in failure.message
    expected = expected_grb_events(catalogs["fermi"], targets, 1.0)
    assert len(expected) > 0
    assert_same_events(got_events(lc, "heasarc.fermi_gbm"), expected)


def test_row_limit_overflow_is_an_error(replay_server, catalogs, seen, monkeypatch):
    service = TAPStandin(replay_server, make_answer(catalogs, seen), hard_maxrec=2)
    monkeypatch.setenv("MULTILC_HEASARC_TAP_URL", service.url)
    lc = multilc.collect(_targets(catalogs, n_near=10, n_random=0), archives="heasarc.bepposax",
                         **FAST)
    (failure,) = lc.report.failures
    assert "row limit" in failure.message and "chunk_size" in failure.message


def test_second_run_uses_cache_and_offline(tap, catalogs, tmp_path):
    targets = _targets(catalogs, n_near=10, n_random=2)
    first = multilc.collect(targets, archives="heasarc.bepposax", cache_dir=tmp_path, **FAST)
    n = len(tap.queries)
    second = multilc.collect(targets, archives="heasarc.bepposax", cache_dir=tmp_path, **FAST)
    offline = multilc.collect(targets, archives="heasarc.bepposax", cache_dir=tmp_path,
                              offline=True, **FAST)
    assert len(tap.queries) == n == 1
    for lc in (second, offline):
        assert lc.report.batches["heasarc.bepposax"]["cached"] == 1
        assert got_events(lc, "heasarc.bepposax") == got_events(first, "heasarc.bepposax")


def test_options(tap, catalogs, seen, offline_iers):
    targets = _targets(catalogs)
    lc = multilc.collect(targets, archives="heasarc.bepposax",
                         options={"heasarc.bepposax": {"max_error_radius": 90 * u.arcmin}},
                         **FAST)
    assert "WHERE cat.error_radius <= 1.5\n" in seen[-1]
    assert_same_events(got_events(lc, "heasarc.bepposax"),
                       expected_grb_events(catalogs["sax"], targets, 1.5))
    nearest = multilc.collect(targets, archives="heasarc.bepposax",
                              options={"heasarc.bepposax": {"match": "nearest"}}, **FAST)
    expected = expected_grb_events(catalogs["sax"], targets, 3.0)
    best = {}
    for (oid, name), (sep, _) in expected.items():
        if oid not in best or sep < best[oid][1]:
            best[oid] = (name, sep)
    got = got_events(nearest, "heasarc.bepposax")
    assert sorted(got) == sorted((oid, name) for oid, (name, _) in best.items())
    with pytest.raises(TypeError, match="max_error_radius"):
        heasarc.FermiGBM(max_error_radius=1.0)
    with pytest.raises(ValueError, match="match"):
        heasarc.BeppoSAX(match="closest")


def test_adql_text_is_strict():
    q = heasarc.grb_adql("fermigtrig", 1 * u.deg)
    assert q.startswith('SELECT cat.name, cat.ra, cat.dec, cat.error_radius, cat."time", '
                        "mt.objectid\nFROM fermigtrig AS cat, TAP_UPLOAD.mytable AS mt\n")
    with pytest.raises(ValueError, match="not an ADQL identifier"):
        heasarc._table_name("fermigtrig; DROP TABLE x", "heasarc.fermi_gbm")


def test_time_conversion_against_astropy(tap, catalogs, offline_iers):
    cat = catalogs["sax"]
    row = int(np.flatnonzero(np.isfinite(_values(cat["ra"])))[0])
    ra, dec = _values(cat["ra"])[row], _values(cat["dec"])[row]
    target = SkyCoord(ra * u.deg, dec * u.deg)
    lc = multilc.collect(target, archives="heasarc.bepposax", **FAST)
    ev = lc.events[lc.events["event_id"] == str(cat["name"][row])]
    assert len(ev) == 1 and ev["separation"][0] < 1e-9 * u.deg
    t = Time(_values(cat["time"])[row], format="mjd", scale="utc", location=GEOCENTRE)
    bary = (t.tdb + t.light_travel_time(target, "barycentric")).tdb
    assert abs((ev["time"][0] - bary).to_value(u.s)) < 1e-3
    assert abs((ev["time"][0] - t.tdb).to_value(u.s)) > 10  # the correction is not skipped


# --------------------------------------------------------------------------- heasarc.icecube
def test_heasarc_icecube_route_matches_release_route(tap, catalogs, seen, monkeypatch,
                                                     shared_dir):
    cat = catalogs["icecube"]
    rng = np.random.default_rng(3)
    rows = np.linspace(0, len(cat), 25, endpoint=False).astype(int)
    targets = QTable({"objectid": np.arange(1, len(rows) + 1),
                      "ra": (np.asarray(cat["ra"])[rows] + rng.uniform(-.2, .2, len(rows)))
                      % 360 * u.deg,
                      "dec": np.clip(np.asarray(cat["dec"])[rows] + rng.uniform(-.2, .2,
                                                                                len(rows)),
                                     -89, 89) * u.deg})
    lc = multilc.collect(targets, archives="heasarc.icecube",
                         options={"heasarc.icecube": {"top_n": 3}}, **FAST)
    assert lc.report.ok
    q = seen[-1]
    assert "FROM icecubepsc AS cat" in q and "CIRCLE('ICRS', mt.ra, mt.dec, 2.0)" in q
    assert ("DISTANCE(POINT('ICRS', mt.ra, mt.dec), POINT('ICRS', cat.ra, cat.dec)) "
            "< cat.error_radius") in q
    # independent: top 3 by energy among events with separation < error radius
    pairs = icecube_matches(cat, targets, 2.0)
    expected = {}
    for oid, row, sep in pairs:
        expected.setdefault(oid, []).append((cat["event_energy"][row], sep))
    expected = {k: sorted(v, reverse=True)[:3] for k, v in expected.items()}
    ev = lc.events
    got = {}
    for oid, e, s in zip(ev["objectid"], ev["energy"].to_value(u.GeV),
                         ev["separation"].to_value(u.deg)):
        got.setdefault(int(oid), []).append((e, s))
    assert sorted(got) == sorted(expected)
    for oid in expected:
        np.testing.assert_allclose(sorted(got[oid], reverse=True), expected[oid], rtol=1e-12,
                                   atol=1e-9)
    # the release route (icecube archive, IC40 file) gives the very same events
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE",
                       str(shared_dir / "archive_samples" / "icecube"))
    release = multilc.collect(targets, archives="icecube", options={"icecube": {"top_n": 3}},
                              **FAST)
    a = release.events
    assert sorted(zip(a["objectid"], a["event_id"])) == sorted(zip(ev["objectid"],
                                                                   ev["event_id"]))
    np.testing.assert_allclose(np.sort(a["time"].mjd), np.sort(ev["time"].mjd), atol=1e-11)


# --------------------------------------------------------------------------- file format
def test_catalog_file_without_error_radius_needs_one(shared_dir):
    path = shared_dir / "archive_samples" / "heasarc" / "saxgrbmgrb.csv"
    with pytest.raises(ValueError, match="error_radius="):
        MultiBandLightCurve.read(path, format="heasarc.catalog", catalog="bepposax",
                                 targets=SkyCoord(10 * u.deg, 10 * u.deg))
    with pytest.raises(ValueError, match="catalog="):
        MultiBandLightCurve.read(path, format="heasarc.catalog",
                                 targets=SkyCoord(10 * u.deg, 10 * u.deg),
                                 error_radius=1 * u.deg)
    with pytest.raises(TypeError, match="error_radius"):
        MultiBandLightCurve.read(path, format="heasarc.catalog", catalog="bepposax",
                                 targets=SkyCoord(10 * u.deg, 10 * u.deg), error_radius=1.0)


def test_real_sax_export_reads_and_counts_rows_without_position(shared_dir, catalogs,
                                                                 offline_iers):
    path = shared_dir / "archive_samples" / "heasarc" / "saxgrbmgrb.csv"
    targets = _targets(catalogs)
    lc = MultiBandLightCurve.read(path, format="heasarc.catalog", catalog="bepposax",
                                  targets=targets, error_radius=2 * u.deg)
    assert lc.report.dropped == {"heasarc.bepposax": {"no position": 245}}
    cat = Table.read(path, format="ascii.csv")
    cat["error_radius"] = np.full(len(cat), 2.0)
    expected = expected_grb_events(cat, targets, 3.0)
    assert len(expected) >= 20
    assert_same_events(got_events(lc, "heasarc.bepposax"), expected)


def test_real_fermi_export_and_votable(shared_dir, catalogs, tmp_path, offline_iers):
    targets = _targets(catalogs, which="fermi")
    path = shared_dir / "archive_samples" / "heasarc" / "fermigbrst.csv"
    lc = MultiBandLightCurve.read(path, format="heasarc.catalog", catalog="fermi_gbm",
                                  targets=targets, error_radius=0.5 * u.deg)
    cat = Table.read(path, format="ascii.csv")
    cat["error_radius"] = np.full(len(cat), 0.5)
    assert_same_events(got_events(lc, "heasarc.fermi_gbm"),
                       expected_grb_events(cat, targets, 1.0))
    # a VOTable export with its own error_radius column [arcmin here] and upper-case names
    fermi = catalogs["fermi"].copy()
    vot = Table({"NAME": fermi["name"], "RA": fermi["ra"] * u.deg, "DEC": fermi["dec"] * u.deg,
                 "TIME": fermi["time"] * u.d,
                 "ERROR_RADIUS": fermi["error_radius"] * 60 * u.arcmin})
    vot_path = tmp_path / "fermigtrig.xml"
    votable.writeto(votable.from_table(vot), str(vot_path))
    lc = MultiBandLightCurve.read(vot_path, format="heasarc.catalog", catalog="fermi_gbm",
                                  targets=targets)
    expected = expected_grb_events(catalogs["fermi"], targets, 1.0)
    assert len(expected) > 5
    assert_same_events(got_events(lc, "heasarc.fermi_gbm"), expected)
    too_big = int((catalogs["fermi"]["error_radius"] > 1.0).sum())
    assert lc.report.dropped["heasarc.fermi_gbm"] == {
        "error_radius > max_error_radius (1 deg)": too_big}


# --------------------------------------------------------------------------- live
@pytest.mark.remote_data
@pytest.mark.parametrize("archive", ["heasarc.fermi_gbm", "heasarc.bepposax", "heasarc.icecube"])
def test_live_heasarc(archive):
    # GRB 970228 (BeppoSAX) and TXS 0506+056 (IceCube) positions
    targets = SkyCoord([75.4 * u.deg, 77.358 * u.deg], [11.78 * u.deg, 5.693 * u.deg])
    lc = multilc.collect(targets, archives=archive, progress=False)
    assert lc.report.ok
    assert lc.n_events > 0
