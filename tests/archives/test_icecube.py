"""Tests of multilc.archives.icecube against the real IC40 season file.

Expected values are computed here with numpy/astropy from the file read by
``numpy.loadtxt`` (not by the reader), with brute-force separations.
"""
import contextlib
import io
import time
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.table import QTable
from astropy.time import Time
from astropy.utils import iers

import multilc
from multilc import MultiBandLightCurve
from multilc.archives import icecube
from multilc.collect import default_cache_dir
from multilc.errors import FileFormatError

FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False)
# IceCube sits at the geographic South Pole, 2835 m altitude (IceCube detector paper,
# JINST 12 P03012 (2017): surface at 2835 m).
SOUTH_POLE = EarthLocation.from_geodetic(lon=0 * u.deg, lat=-90 * u.deg, height=2835 * u.m)


@pytest.fixture(scope="module")
def ic40_path(shared_dir):
    return shared_dir / "archive_samples" / "icecube" / "events" / "IC40_exp.csv"


@pytest.fixture(scope="module")
def ic40(ic40_path):
    """The IC40 events as plain arrays, read with numpy (not with the reader)."""
    data = np.loadtxt(ic40_path, comments="#")
    return {"mjd": data[:, 0], "logE": data[:, 1], "angerr": data[:, 2],
            "ra": data[:, 3], "dec": data[:, 4]}


@pytest.fixture(scope="module")
def targets(ic40):
    """40 targets: 25 placed near real events (so matches exist), 15 random."""
    rng = np.random.default_rng(20210126)
    near = np.linspace(0, len(ic40["mjd"]), 25, endpoint=False).astype(int)
    ra = np.r_[ic40["ra"][near] + rng.uniform(-0.3, 0.3, 25), rng.uniform(0, 360, 15)] % 360
    dec = np.r_[np.clip(ic40["dec"][near] + rng.uniform(-0.3, 0.3, 25), -89, 89),
                np.degrees(np.arcsin(rng.uniform(-1, 1, 15)))]
    return QTable({"objectid": np.arange(1, 41), "ra": ra * u.deg, "dec": dec * u.deg})


def expected_matches(ic40, targets, radius_deg=2.0, top_n=None):
    """Brute force: {objectid: [(energy GeV, sep deg, angerr, mjd), ...]} by energy."""
    ev = SkyCoord(ic40["ra"] * u.deg, ic40["dec"] * u.deg)
    out = {}
    for row in targets:
        sep = SkyCoord(row["ra"], row["dec"]).separation(ev).deg
        sel = np.flatnonzero((sep < ic40["angerr"]) & (sep <= radius_deg))
        rows = sorted(((10 ** ic40["logE"][i], sep[i], ic40["angerr"][i], ic40["mjd"][i])
                       for i in sel), key=lambda r: (-r[0], r[3]))
        if top_n is not None:
            rows = rows[:top_n]
        if rows:
            out[int(row["objectid"])] = rows
    return out


def got_matches(lc):
    ev = lc.events
    out = {}
    for oid, e, s, a in zip(ev["objectid"], ev["energy"].to_value(u.GeV),
                            ev["separation"].to_value(u.deg), ev["error_radius"].to_value(u.deg)):
        out.setdefault(int(oid), []).append((e, s, a))
    return {k: sorted(v, key=lambda r: -r[0]) for k, v in out.items()}


def assert_same(got, expected):
    assert sorted(got) == sorted(expected)
    for oid in expected:
        g, x = got[oid], expected[oid]
        assert len(g) == len(x), oid
        np.testing.assert_allclose([r[0] for r in g], [r[0] for r in x], rtol=1e-12)
        np.testing.assert_allclose([r[1] for r in g], [r[1] for r in x], atol=1e-9)
        np.testing.assert_allclose([r[2] for r in g], [r[2] for r in x], rtol=0)


@pytest.fixture
def offline_iers():
    with contextlib.ExitStack() as stack:
        stack.enter_context(iers.conf.set_temp("auto_download", False))
        stack.enter_context(iers.conf.set_temp("auto_max_age", None))
        yield


# --------------------------------------------------------------------------- file format
def test_read_ic40_matches_independent_computation(ic40_path, ic40, targets):
    lc = MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=targets)
    expected = expected_matches(ic40, targets)
    assert sum(len(v) for v in expected.values()) > 50  # the test has teeth
    assert_same(got_matches(lc), expected)
    assert set(lc.events["archive"]) == {"icecube"}
    assert lc.report.dropped == {"icecube": {}}


def test_top_n_keeps_most_energetic(ic40_path, ic40, targets):
    lc = MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=targets,
                                  top_n=3)
    expected = expected_matches(ic40, targets, top_n=3)
    assert_same(got_matches(lc), expected)
    all_matches = expected_matches(ic40, targets)
    cut = sum(max(len(v) - 3, 0) for v in all_matches.values())
    assert cut > 0
    assert lc.report.dropped["icecube"] == {"beyond the top_n=3 most energetic": cut}


def test_smaller_search_radius_and_nearest(ic40_path, ic40, targets):
    lc = MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=targets,
                                  max_search_radius=30 * u.arcmin)
    assert_same(got_matches(lc), expected_matches(ic40, targets, radius_deg=0.5))
    nearest = MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=targets,
                                       match="nearest")
    expected = expected_matches(ic40, targets)
    got = got_matches(nearest)
    assert sorted(got) == sorted(expected)
    for oid, rows in expected.items():
        assert len(got[oid]) == 1
        assert got[oid][0][1] == pytest.approx(min(r[1] for r in rows), abs=1e-9)


def test_energy_unit_time_and_event_id(ic40_path, offline_iers):
    # First event of the file: 54562.37911273 3.31 0.48 203.024 16.760 ...
    target = SkyCoord(203.024 * u.deg, 16.860 * u.deg)
    lc = MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=target)
    ev = lc.events[lc.events["event_id"] == "MJD54562.37911273"]
    assert len(ev) == 1
    assert ev["energy"].unit == u.GeV
    assert ev["energy"][0].to_value(u.TeV) == pytest.approx(10 ** 3.31 / 1000, rel=1e-12)
    assert ev["error_radius"][0] == 0.48 * u.deg
    assert ev["separation"][0].to_value(u.deg) == pytest.approx(0.1, abs=1e-9)
    # UT1 at the South Pole -> TDB at the barycentre, by astropy directly.
    t = Time(54562.37911273, format="mjd", scale="ut1", location=SOUTH_POLE)
    bary = (t.tdb + t.light_travel_time(target, "barycentric")).tdb
    got = ev["time"][0]
    assert abs((got.tdb - bary).to_value(u.s)) < 1e-3
    # and the correction is not trivial (minutes)
    assert abs((got.tdb - Time(54562.37911273, format="mjd", scale="tt")).to_value(u.s)) > 60


def test_duplicate_event_kept_once(ic40_path, tmp_path):
    lines = ic40_path.read_text().splitlines()
    dup = tmp_path / "IC86_V_exp.csv"
    dup.write_text("\n".join(lines[:50] + [lines[10]] + lines[50:60]) + "\n")
    ra, dec = (float(x) for x in lines[10].split()[3:5])
    lc = MultiBandLightCurve.read(dup, format="icecube.events",
                                  targets=SkyCoord(ra * u.deg, dec * u.deg))
    mjd = lines[10].split()[0]
    assert list(lc.events["event_id"]).count(f"MJD{mjd}") == 1
    assert lc.report.dropped["icecube"]["duplicate event"] == 1


@pytest.mark.parametrize("text, words", [
    ("54562.37911273 3.31 0.48 203.024 16.760 218.374 106.712\n", ["header", "x.csv"]),
    ("# MJD[days] log10(E/GeV) RA[deg] Dec[deg]\n1 2 3 4\n", ["AngErr[deg]", "x.csv"]),
    ("# MJD[days] log10(E/GeV) AngErr[deg] RA[deg] Dec[deg]\n1 2 3 4 5\n1 2 3\n",
     ["line 3", "x.csv"]),
    ("# MJD[days] log10(E/GeV) AngErr[deg] RA[deg] Dec[deg]\n1 2 3 4 5 6\n",
     ["x.csv", "header"]),
    ("# MJD[days] log10(E/GeV) AngErr[deg] RA[deg] Dec[deg]\n1 2 abc 4 5\n", ["x.csv"]),
])
def test_bad_files_name_the_file(tmp_path, text, words):
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(FileFormatError) as info:
        MultiBandLightCurve.read(path, format="icecube.events",
                                 targets=SkyCoord(1 * u.deg, 2 * u.deg))
    for word in words:
        assert word in str(info.value)
    assert "icecube" in str(info.value).lower()


def test_targets_and_options_are_checked(ic40_path):
    with pytest.raises(TypeError, match="targets="):
        MultiBandLightCurve.read(ic40_path, format="icecube.events")
    target = SkyCoord(1 * u.deg, 2 * u.deg)
    with pytest.raises(TypeError, match="max_search_radius"):
        MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=target,
                                 max_search_radius=2.0)
    with pytest.raises(ValueError, match="top_n"):
        MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=target, top_n=0)
    with pytest.raises(TypeError, match="max_search_radius"):
        icecube.IceCube(max_search_radius=2)


def test_match_is_fast(ic40_path):
    rng = np.random.default_rng(5)
    targets = SkyCoord(rng.uniform(0, 360, 500) * u.deg,
                       np.degrees(np.arcsin(rng.uniform(-1, 1, 500))) * u.deg)
    start = time.perf_counter()
    lc = MultiBandLightCurve.read(ic40_path, format="icecube.events", targets=targets)
    seconds = time.perf_counter() - start
    assert lc.n_events > 20
    assert seconds < 10, seconds  # about 0.3 s here; brute force astropy takes ~10x longer


# --------------------------------------------------------------------------- archive
def test_collect_from_local_release_folder(monkeypatch, shared_dir, ic40, targets, tmp_path):
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE", str(shared_dir / "archive_samples" / "icecube"))
    lc = multilc.collect(targets, archives=["icecube"], options={"icecube": {"top_n": 3}},
                         cache_dir=tmp_path, **FAST)
    assert lc.report.ok
    assert_same(got_matches(lc), expected_matches(ic40, targets, top_n=3))
    # the same request again is answered from the response cache, even offline
    again = multilc.collect(targets, archives=["icecube"], options={"icecube": {"top_n": 3}},
                            cache_dir=tmp_path, offline=True, **FAST)
    assert again.report.batches["icecube"]["cached"] == 1
    assert again.report.requests.get("icecube", 0) == 0
    assert_same(got_matches(again), expected_matches(ic40, targets, top_n=3))


def _release_zip(ic40_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ic40_path, "icecube_10year_ps/events/IC40_exp.csv")
        zf.writestr("icecube_10year_ps/uptime/IC40_exp.csv",
                    "#  MJD_start[days]  MJD_stop[days]\n   54562.37203080   54562.70626163\n")
    return buf.getvalue()


def test_release_downloaded_once_and_cached(monkeypatch, replay_server, ic40_path, ic40,
                                            targets):
    from multilc.testing import Fault

    replay_server.route("/data-releases/20210126_PS-IC40-IC86_VII.zip", _release_zip(ic40_path),
                        content_type="application/zip")
    replay_server.faults("/data-releases/20210126_PS-IC40-IC86_VII.zip", [Fault.status(503)])
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE", "")
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE_URL",
                       replay_server.url_for("/data-releases/20210126_PS-IC40-IC86_VII.zip"))
    first = multilc.collect(targets[:20], archives="icecube", cache=False, **FAST)
    second = multilc.collect(targets[20:], archives="icecube", cache=False, **FAST)
    assert first.report.ok and second.report.ok
    # one 503 (retried by the engine), then one download; the second run reads the cache
    assert replay_server.count("/data-releases/20210126_PS-IC40-IC86_VII.zip") == 2
    folder = default_cache_dir() / "icecube"
    assert (folder / "20210126_PS-IC40-IC86_VII.zip").is_file()
    assert (folder / "20210126_PS-IC40-IC86_VII" / "icecube_10year_ps" / "events"
            / "IC40_exp.csv").is_file()
    combined = {**got_matches(first), **got_matches(second)}
    assert_same(combined, expected_matches(ic40, targets))


def test_release_given_as_zip_file(monkeypatch, tmp_path, ic40_path, ic40, targets):
    path = tmp_path / "release.zip"
    path.write_bytes(_release_zip(ic40_path))
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE", str(path))
    lc = multilc.collect(targets, archives="icecube", cache=False, **FAST)
    assert lc.report.ok
    assert_same(got_matches(lc), expected_matches(ic40, targets))


def test_download_of_non_zip_is_a_clear_failure(monkeypatch, replay_server, targets):
    replay_server.route("/release.zip", "<html><body>moved</body></html>",
                        content_type="text/html")
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE", "")
    monkeypatch.setenv("MULTILC_ICECUBE_RELEASE_URL", replay_server.url_for("/release.zip"))
    lc = multilc.collect(targets[:3], archives="icecube", cache=False, **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "icecube" and failure.objectids == [1, 2, 3]
    assert "did not return a zip file" in failure.message


@pytest.mark.remote_data
def test_live_release_download():
    lc = multilc.collect(SkyCoord(40.669 * u.deg, -0.013 * u.deg), archives="icecube",
                         options={"icecube": {"top_n": 3}}, progress=False)
    assert lc.report.ok
    assert lc.n_events == 3
