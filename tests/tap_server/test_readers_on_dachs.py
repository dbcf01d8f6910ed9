"""The HEASARC and Gaia readers' real TAP code against the local GAVO DaCHS server.

Every test goes through `multilc.collect` with the readers pointed at the
server by their settings (environment variables).  Expected answers are
computed here with astropy from the CSV rows the server loaded
(``tap_server_data_dir``): error-circle containment with the error-radius cap,
separations, barycentric TDB times, top-N by energy.  What the server received
(how many queries, sync or async, which UWS jobs were polled, fetched and
deleted) is read from the server's own logs (`DachsLogs`).

Each test puts a marker in its ADQL, a radius or cap with unusual trailing
digits (for example ``max_error_radius=0.99999871 deg``), so that the
server-side counts belong to this test even when others use the server.
The marker is compared as a number: the server may print it with more
digits (``1.9999987900000002``) after the readers' unit conversions.
"""
import io
import warnings
import zipfile
from collections import Counter

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.table import Table
from astropy.time import Time
from astropy.utils import iers

from .conftest import read_loaded_table

pytest.importorskip("pyvo")
from pyvo.dal import DALOverflowWarning  # noqa: E402

from multilc import collect  # noqa: E402

pytestmark = pytest.mark.tap_server

#: Engine settings: no cache (every run must reach the server), no retries
#: of permanent errors, a timeout long enough for an async job's blocking poll.
ENGINE = dict(retries=1, backoff=0.01, timeout=30, progress=False, cache=False)
#: Trigger times are taken at the geocentre (Fermi, BeppoSAX in low Earth orbit).
GEOCENTRE = EarthLocation.from_geocentric(0 * u.m, 0 * u.m, 0 * u.m)
#: IceCube at the geographic South Pole, surface elevation ~2835 m (IceCube
#: collaboration, detector description); typed here independently of
#: multilc.timescales.
SOUTH_POLE = EarthLocation.from_geodetic(lon=0 * u.deg, lat=-90 * u.deg, height=2835 * u.m)

GRB_ARCHIVES = {
    # archive: (table setting, loaded table, cap marker used as max_error_radius [deg])
    "heasarc.fermi_gbm": ("MULTILC_HEASARC_FERMI_GBM_TABLE", "fermigtrig", 0.99999871),
    "heasarc.bepposax": ("MULTILC_HEASARC_BEPPOSAX_TABLE", "saxgrbmgrb", 2.99999873),
}


# --------------------------------------------------------------------------- loaded rows
def _floats(rows, name):
    return np.array([np.nan if r[name] is None else float(r[name]) for r in rows])


@pytest.fixture(scope="module")
def loaded(tap_server_data_dir):
    """The rows the server loaded, as column arrays (NULL -> NaN)."""
    out = {}
    for table in ("fermigtrig", "saxgrbmgrb"):
        rows = read_loaded_table(tap_server_data_dir, "heasarc", table)
        out[table] = {"name": np.array([r["name"] for r in rows]),
                      **{c: _floats(rows, c) for c in ("ra", "dec", "error_radius", "time")}}
    rows = read_loaded_table(tap_server_data_dir, "heasarc", "icecubepsc")
    out["icecubepsc"] = {c: _floats(rows, c)
                         for c in ("time", "event_energy", "error_radius", "ra", "dec")}
    rows = read_loaded_table(tap_server_data_dir, "gaiadr3", "gaia_source")
    out["gaia_source"] = {"source_id": np.array([int(r["source_id"]) for r in rows]),
                          "ra": _floats(rows, "ra"), "dec": _floats(rows, "dec"),
                          "has_epoch_photometry": np.array(
                              [r["has_epoch_photometry"] == "true" for r in rows])}
    return out


@pytest.fixture
def offline_iers():
    """UT1 conversions from astropy's bundled IERS-B table, no download."""
    with iers.conf.set_temp("auto_download", False), \
            iers.conf.set_temp("auto_max_age", None):
        yield


def _targets(ra, dec, first_id=1):
    n = len(ra)
    return Table({"objectid": np.arange(first_id, first_id + n, dtype="int64"),
                  "ra": np.asarray(ra, float) % 360, "dec": np.asarray(dec, float)})


def _coords(table):
    return SkyCoord(np.asarray(table["ra"]) * u.deg, np.asarray(table["dec"]) * u.deg)


def grb_targets(cat, cap_deg, n_inside=4, n_outside=2, n_over_cap=1):
    """Positions at 0.5 error radius of bursts under the cap, at 1.6 radii of
    others, and at 0.3 radius of a burst whose circle is over the cap."""
    ok = np.flatnonzero(np.isfinite(cat["ra"]) & np.isfinite(cat["error_radius"]))
    under = ok[cat["error_radius"][ok] <= cap_deg]
    over = ok[cat["error_radius"][ok] > cap_deg]
    picks = ([(i, 0.5) for i in under[:: len(under) // n_inside][:n_inside]]
             + [(i, 1.6) for i in under[7:: len(under) // n_outside][:n_outside]]
             + [(i, 0.3) for i in over[:: len(over) // n_over_cap][:n_over_cap]])
    ra, dec = [], []
    for k, (row, factor) in enumerate(picks):
        moved = SkyCoord(cat["ra"][row] * u.deg, cat["dec"][row] * u.deg).directional_offset_by(
            (53.0 * k) * u.deg, factor * cat["error_radius"][row] * u.deg)
        ra.append(moved.ra.deg)
        dec.append(moved.dec.deg)
    return _targets(ra, dec)


def expected_grb_events(cat, targets, cap_deg):
    """{(objectid, name): (separation deg, MJD TDB)}: targets inside error circles.

    A circle counts when its error radius is at most the cap; times are UTC
    MJDs taken at the geocentre, moved to the barycentre towards the target.
    """
    usable = np.flatnonzero(np.isfinite(cat["ra"]) & np.isfinite(cat["dec"])
                            & (cat["error_radius"] <= cap_deg))
    circles = SkyCoord(cat["ra"][usable] * u.deg, cat["dec"][usable] * u.deg)
    out = {}
    for objectid, target in zip(targets["objectid"], _coords(targets)):
        sep = target.separation(circles).deg
        for j in np.flatnonzero(sep <= cat["error_radius"][usable]):
            row = usable[j]
            t = Time(cat["time"][row], format="mjd", scale="utc", location=GEOCENTRE)
            bary = (t.tdb + t.light_travel_time(target, "barycentric")).tdb
            out[(int(objectid), str(cat["name"][row]))] = (float(sep[j]), bary.mjd)
    return out


def got_events(lc, archive):
    ev = lc.events
    ev = ev[ev["archive"] == archive]
    return {(int(o), str(n)): (s, t) for o, n, s, t in
            zip(ev["objectid"], ev["event_id"], ev["separation"].to_value(u.deg),
                ev["time"].tdb.mjd)}


def assert_same_events(got, expected, time_tol_s=1e-3):
    assert sorted(got) == sorted(expected)
    for key, (sep, mjd) in expected.items():
        assert got[key][0] == pytest.approx(sep, abs=1e-9), key
        assert abs(got[key][1] - mjd) * 86400 < time_tol_s, key


def grb_setup(monkeypatch, readers_on_tap_server, archive):
    env, table, cap = GRB_ARCHIVES[archive]
    monkeypatch.setenv(env, readers_on_tap_server[table])
    return table, cap


# --------------------------------------------------------------------------- GRB catalogs
@pytest.mark.parametrize("archive", sorted(GRB_ARCHIVES))
def test_grb_events_equal_astropy_containment(archive, loaded, readers_on_tap_server,
                                              dachs_logs, monkeypatch):
    table, cap = grb_setup(monkeypatch, readers_on_tap_server, archive)
    monkeypatch.setenv("MULTILC_HEASARC_CHUNK_SIZE", "3")
    cat = loaded[table]
    targets = grb_targets(cat, cap)
    expected = expected_grb_events(cat, targets, cap)

    lc = collect(targets, archives=[archive],
                 options={archive: {"max_error_radius": cap * u.deg}}, **ENGINE)

    assert lc.report.ok, lc.report.summary()
    assert len(expected) >= 4   # the four targets at half an error radius at least
    # the target inside a circle larger than the cap is matched by nothing bigger
    assert all(e[0] <= cap for e in expected.values())
    assert_same_events(got_events(lc, archive), expected)
    # 7 targets in uploads of 3: three synchronous queries reached the server
    queries = dachs_logs.queries(cap, expect=3)
    assert len(queries) == 3
    assert all(q.job is None and q.pid == dachs_logs.server_pid for q in queries)
    assert lc.report.requests[archive] == 3


def test_chunks_are_separate_jobs_async_polled_and_fetched(loaded, readers_on_tap_server,
                                                          dachs_logs, monkeypatch):
    archive = "heasarc.fermi_gbm"
    table, _ = grb_setup(monkeypatch, readers_on_tap_server, archive)
    cap = 0.99999877   # marker of this test's queries
    monkeypatch.setenv("MULTILC_HEASARC_CHUNK_SIZE", "3")
    # uploads of 3 targets run as async jobs; the last chunk (1 target) is sync
    monkeypatch.setenv("MULTILC_HEASARC_SYNC_MAX_TARGETS", "2")
    cat = loaded[table]
    targets = grb_targets(cat, cap)
    assert len(targets) == 7
    expected = expected_grb_events(cat, targets, cap)

    lc = collect(targets, archives=[archive],
                 options={archive: {"max_error_radius": cap * u.deg}}, **ENGINE)

    assert lc.report.ok, lc.report.summary()
    # the async results were fetched and parsed: same events as computed here
    assert_same_events(got_events(lc, archive), expected)
    queries = dachs_logs.queries(cap, expect=3)
    assert len(queries) == 3
    jobs = [q.job for q in queries if q.job is not None]
    assert len(jobs) == 2 and len(set(jobs)) == 2   # two chunks, two UWS jobs
    assert sum(q.pid == dachs_logs.server_pid for q in queries) == 1   # one sync
    for job in jobs:
        seen = Counter((r.method, r.path.split("?")[0].rsplit(job, 1)[1], r.status)
                       for r in dachs_logs.job_requests(job))
        assert seen[("POST", "/phase", 303)] == 1          # started once
        polls = sum(n for (m, rest, s), n in seen.items() if m == "GET" and rest == "")
        assert polls >= 1                                   # its phase was polled
        assert seen[("GET", "/results/result", 200)] == 1  # the result fetched once
        assert seen[("DELETE", "", 303)] == 1               # and the job deleted
    created = [r for r in dachs_logs.requests() if r.method == "POST" and r.path == "/tap/async"]
    assert len(created) >= 2


# --------------------------------------------------------------------------- IceCube
def icecube_targets(ev):
    """Targets 0.1 deg from some events (certain matches) plus two random ones."""
    ra, dec = [], []
    # seven events spread over the served table (tests/data holds an IC40 subset)
    spread = np.linspace(0, len(ev["ra"]) - 1, 7).astype(int)
    for k, index in enumerate(spread):
        moved = SkyCoord(ev["ra"][index] * u.deg, ev["dec"][index] * u.deg).directional_offset_by(
            (45.0 + 30 * k) * u.deg, 0.1 * u.deg)
        ra.append(moved.ra.deg)
        dec.append(moved.dec.deg)
    return _targets(ra + [12.3, 250.1], dec + [-45.6, 33.3])


def expected_icecube_events(ev, targets, radius_deg, top_n):
    """{(objectid, time MJD UT1): (energy GeV, separation deg, MJD TDB)} by astropy.

    An event counts when the target is inside its error circle and within the
    search radius; identical rows count once; per target the top_n most
    energetic are kept (ties: earlier first).
    """
    events = SkyCoord(ev["ra"] * u.deg, ev["dec"] * u.deg)
    out = {}
    n_beyond = 0
    for objectid, target in zip(targets["objectid"], _coords(targets)):
        sep = target.separation(events).deg
        hits = np.flatnonzero((sep < ev["error_radius"]) & (sep <= radius_deg))
        rows = {}
        for i in hits:   # identical rows are one event
            rows.setdefault(tuple(ev[c][i] for c in ("time", "event_energy", "error_radius",
                                                      "ra", "dec")), i)
        ranked = sorted(rows.values(), key=lambda i: (-ev["event_energy"][i], ev["time"][i]))
        n_beyond += max(0, len(ranked) - top_n)
        for i in ranked[:top_n]:
            t = Time(ev["time"][i], format="mjd", scale="ut1", location=SOUTH_POLE)
            bary = (t.tdb + t.light_travel_time(target, "barycentric")).tdb
            out[(int(objectid), round(ev["time"][i], 8))] = (ev["event_energy"][i], sep[i],
                                                             bary.mjd)
    return out, n_beyond


def test_icecube_top_n_by_energy(loaded, readers_on_tap_server, dachs_logs, monkeypatch,
                                 offline_iers):
    archive = "heasarc.icecube"
    monkeypatch.setenv("MULTILC_HEASARC_ICECUBE_TABLE", readers_on_tap_server["icecubepsc"])
    monkeypatch.setenv("MULTILC_HEASARC_ICECUBE_CHUNK_SIZE", "4")
    radius = 1.99999879   # deg; also the marker of this test's queries
    top_n = 3
    ev = loaded["icecubepsc"]
    targets = icecube_targets(ev)
    expected, n_beyond = expected_icecube_events(ev, targets, radius, top_n)

    lc = collect(targets, archives=[archive],
                 options={archive: {"max_search_radius": radius * u.deg, "top_n": top_n}},
                 **ENGINE)

    assert lc.report.ok, lc.report.summary()
    got_ev = lc.events[lc.events["archive"] == archive]
    got = {(int(o), round(float(e[3:]), 8)): (en, s, t) for o, e, en, s, t in zip(
        got_ev["objectid"], got_ev["event_id"], got_ev["energy"].to_value(u.GeV),
        got_ev["separation"].to_value(u.deg), got_ev["time"].tdb.mjd)}
    assert len(expected) >= 7 and n_beyond >= 1   # top_n really cut something
    assert sorted(got) == sorted(expected)
    for key, (energy, sep, mjd) in expected.items():
        assert got[key][0] == pytest.approx(energy, rel=1e-12), key
        assert got[key][1] == pytest.approx(sep, abs=1e-9), key
        assert abs(got[key][2] - mjd) * 86400 < 1e-3, key
    beyond = f"beyond the top_n={top_n} most energetic"
    assert lc.report.dropped[archive][beyond] == n_beyond
    # 9 targets in uploads of 4: three queries
    queries = dachs_logs.queries(radius, expect=3)
    assert len(queries) == 3


# --------------------------------------------------------------------------- Gaia
def _one_transit_votable(source_id):
    """A DataLink INDIVIDUAL product (Gaia DR3 epoch_photometry columns), one G transit."""
    t = Table({"source_id": [source_id], "transit_id": [17091923342681275],
               "band": ["G"], "time": [1705.94373602] * u.d, "mag": [15.0] * u.mag,
               "flux": [10000.0] / u.s, "flux_error": [30.0] / u.s,
               "rejected_by_photometry": [False], "rejected_by_variability": [False],
               "other_flags": [0]})
    buf = io.BytesIO()
    t.write(buf, format="votable")
    return buf.getvalue()


@pytest.fixture
def datalink_standin(replay_server, monkeypatch):
    """DataLink stand-in (not on DaCHS): a zip with one product per requested id."""
    def answer(request):
        ids = [int(i) for i in request.form["ID"].split(",") if i]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for sid in ids:
                zf.writestr(f"EPOCH_PHOTOMETRY-Gaia DR3 {sid}.xml", _one_transit_votable(sid))
        return 200, {"Content-Type": "application/zip"}, buf.getvalue()

    replay_server.route("/data-server/data", method="POST", handler=answer)
    monkeypatch.setenv("MULTILC_GAIA_DATALINK_URL", replay_server.url_for("/data-server/data"))
    return replay_server


def test_gaia_crossmatch_on_dachs(loaded, readers_on_tap_server, datalink_standin, dachs_logs,
                                  monkeypatch, shared_dir):
    monkeypatch.setenv("MULTILC_GAIA_SOURCE_TABLE", readers_on_tap_server["gaia_source"])
    monkeypatch.setenv("MULTILC_GAIA_CHUNK_SIZE", "7")
    sample = Table.read(shared_dir / "samples" / "yang_18.csv", format="ascii.csv")  # 30 rows
    targets = _targets(sample["ra_deg"], sample["dec_deg"])
    radius = 0.00833329 * u.deg   # 29.9998": 20 neighbours within 60" of each target

    lc = collect(targets, archives=["gaia"], radius=radius,
                 options={"gaia": {"route": "service"}}, **ENGINE)

    assert lc.report.ok, lc.report.summary()
    src = loaded["gaia_source"]
    catalog = SkyCoord(src["ra"] * u.deg, src["dec"] * u.deg)
    it, ic, d2d, _ = catalog.search_around_sky(_coords(targets), radius)
    with_ep = src["has_epoch_photometry"][ic]
    expected = {(int(targets["objectid"][a]), int(src["source_id"][b])): s
                for a, b, s, e in zip(it, ic, d2d.to_value(u.arcsec), with_ep) if e}
    # neighbours too, not only the counterparts; most matches have no epoch photometry
    assert max(Counter(oid for oid, _ in expected).values()) >= 2
    assert (~with_ep).sum() > len(expected)
    ds = lc.ds
    obj = np.asarray(ds["objectid"].values)[ds["obs_object"].values]
    got = {(int(o), int(s)): float(sep) for o, s, sep in
           zip(obj, ds["source_id"].values, ds["separation"].values)}
    assert sorted(got) == sorted(expected)
    for key, sep in expected.items():
        assert got[key] == pytest.approx(sep, abs=1e-6), key
    # DataLink was asked exactly the matched sources with epoch photometry
    asked = {int(i) for r in datalink_standin.requests if r.path == "/data-server/data"
             for i in r.form["ID"].split(",")}
    assert asked == {sid for _, sid in expected}
    assert not asked & set(src["source_id"][ic][~with_ep].tolist())
    # uploads of 7 targets: one crossmatch query per chunk on the server, all sync
    n_chunks = -(-len(targets) // 7)
    assert n_chunks >= 3
    queries = dachs_logs.queries(radius.to_value(u.deg), expect=n_chunks)
    assert len(queries) == n_chunks
    assert all(q.job is None for q in queries)
    assert "gaiadr3.gaia_source" in queries[0].sql


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("archive, env, option", [
    ("heasarc.fermi_gbm", "MULTILC_HEASARC_FERMI_GBM_TABLE",
     {"max_error_radius": 0.99999883 * u.deg}),
    ("heasarc.icecube", "MULTILC_HEASARC_ICECUBE_TABLE",
     {"max_search_radius": 1.99999883 * u.deg}),
    ("gaia", "MULTILC_GAIA_SOURCE_TABLE", {"route": "service"}),
])
def test_wrong_table_is_a_named_failure(archive, env, option, loaded, readers_on_tap_server,
                                        datalink_standin, monkeypatch):
    monkeypatch.setenv(env, "heasarc.no_such_table")
    monkeypatch.setenv("MULTILC_HEASARC_BEPPOSAX_TABLE", readers_on_tap_server["saxgrbmgrb"])
    cap = 2.99999883
    cat = loaded["saxgrbmgrb"]
    targets = grb_targets(cat, cap)

    lc = collect(targets, archives=[archive, "heasarc.bepposax"],
                 options={archive: option, "heasarc.bepposax": {"max_error_radius": cap * u.deg}},
                 **ENGINE)

    assert not lc.report.ok
    (failure,) = lc.report.failures
    assert failure.archive == archive
    assert sorted(failure.objectids) == sorted(targets["objectid"].tolist())
    assert "Could not locate table" in failure.message        # DaCHS's own words
    assert "no_such_table" in failure.message
    assert not failure.transient and failure.attempts == 1    # permanent: not retried
    assert archive not in set(lc.events["archive"])
    # the other archive of the same run is unharmed
    assert_same_events(got_events(lc, "heasarc.bepposax"),
                       expected_grb_events(cat, targets, cap))


def _icecube_counts(ev, targets, radius_deg):
    events = SkyCoord(ev["ra"] * u.deg, ev["dec"] * u.deg)
    return [int(((t.separation(events).deg < ev["error_radius"])
                 & (t.separation(events).deg <= radius_deg)).sum()) for t in _coords(targets)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_overflow_is_a_named_failure(mode, loaded, readers_on_tap_server, dachs_logs,
                                     monkeypatch, offline_iers):
    archive = "heasarc.icecube"
    monkeypatch.setenv("MULTILC_HEASARC_ICECUBE_TABLE", readers_on_tap_server["icecubepsc"])
    monkeypatch.setenv("MULTILC_HEASARC_ICECUBE_CHUNK_SIZE", "1")
    if mode == "async":
        monkeypatch.setenv("MULTILC_HEASARC_SYNC_MAX_TARGETS", "0")
    radius = 1.99999889 if mode == "sync" else 1.99999891   # marker
    ev = loaded["icecubepsc"]
    candidates = icecube_targets(ev)
    counts = _icecube_counts(ev, candidates, radius)
    big, small = int(np.argmax(counts)), int(np.argmin([c or 10**9 for c in counts]))
    assert counts[big] > counts[small] + 1 >= 2
    maxrec = counts[small] + 1   # above the small answer, below the big one
    monkeypatch.setenv("MULTILC_HEASARC_MAXREC", str(maxrec))
    targets = candidates[[big, small]]

    lc = collect(targets, archives=[archive],
                 options={archive: {"max_search_radius": radius * u.deg}}, **ENGINE)

    assert not lc.report.ok
    (failure,) = lc.report.failures
    assert failure.archive == archive
    assert failure.objectids == [int(targets["objectid"][0])]
    assert f"cut the result at {maxrec} rows" in failure.message
    assert not failure.transient
    events = lc.events[lc.events["archive"] == archive]
    assert set(events["objectid"].tolist()) == {int(targets["objectid"][1])}
    assert len(events) == counts[small]
    # the server applied the reader's MAXREC, in the mode asked for
    queries = dachs_logs.queries(radius, expect=2)
    assert len(queries) == 2
    assert all(q.sql.rstrip().endswith(f"LIMIT {maxrec}") for q in queries)
    assert all((q.job is not None) == (mode == "async") for q in queries)


def test_gaia_crossmatch_overflow_is_a_named_failure(loaded, readers_on_tap_server,
                                                    replay_server, dachs_logs, monkeypatch):
    # The reader has no maxrec setting, so the server's default MAXREC (DaCHS
    # [async]defaultMAXREC = 20000) is the limit: 24 targets x 2630 sources
    # within 90 deg (DaCHS's largest CIRCLE) is more than that.
    monkeypatch.setenv("MULTILC_GAIA_SOURCE_TABLE", readers_on_tap_server["gaia_source"])
    empty_zip = io.BytesIO()
    zipfile.ZipFile(empty_zip, "w").close()
    replay_server.route("/data-server/data", empty_zip.getvalue(), method="POST")
    monkeypatch.setenv("MULTILC_GAIA_DATALINK_URL", replay_server.url_for("/data-server/data"))
    targets = _targets(np.arange(24) * 15.0, np.linspace(-60, 60, 24))
    radius = 89.9999987 * u.deg
    # a cone far wider than a light-curve match allows, only to overflow the server
    from multilc.archives.gaia import Gaia
    monkeypatch.setattr(Gaia, "max_radius", 90 * u.deg)
    src = loaded["gaia_source"]
    n_pairs = len(SkyCoord(src["ra"] * u.deg, src["dec"] * u.deg).search_around_sky(
        _coords(targets), radius)[0])
    assert n_pairs > 20000

    with warnings.catch_warnings():
        # pyvo's warning must not decide the outcome (under -W error it would
        # turn into an exception the engine reports): the reader must.
        warnings.simplefilter("ignore", DALOverflowWarning)
        lc = collect(targets, archives=["gaia"], radius=radius,
                     options={"gaia": {"route": "service"}}, **ENGINE)

    # the server did cut the answer (it ran the query with its default limit) ...
    (query,) = dachs_logs.queries(radius.to_value(u.deg), expect=1)
    assert query.sql.rstrip().endswith("LIMIT 20000")
    # ... which must come back as a failure naming the archive and the targets
    assert not lc.report.ok
    (failure,) = lc.report.failures
    assert failure.archive == "gaia"
    assert sorted(failure.objectids) == sorted(targets["objectid"].tolist())
