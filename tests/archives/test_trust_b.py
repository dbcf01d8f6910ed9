"""Trust at the boundary for the HEASARC, Gaia and IceCube readers.

Malformed but plausible answers (declared units, sentinels, truncation, HTML
pages, damaged zips) and transport faults served by the local stand-ins.
Every case must end as correct data, rows dropped and counted under a named
reason, or a typed multilc error / failure naming the archive and targets;
other targets and archives keep their results.
"""
import io
import multiprocessing
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import votable
from astropy.table import Table

import multilc
from multilc.archives import gaia, heasarc, icecube
from multilc.collect.api import Batch
from multilc.collect.contract import MJD_RANGE, ResponseError
from multilc.errors import MultilcError
from multilc.testing import Fault, TAPStandin
from tests.archives.test_gaia import (SOURCES, TRANSITS, datalink_zip, product_bytes,
                                      services, targets as gaia_targets)  # noqa: F401
from tests.archives.test_heasarc import (FAST, _targets, _values, catalogs,  # noqa: F401
                                         expected_grb_events, got_events, make_answer,
                                         offline_iers, seen, tap)

GAIA_FAST = dict(FAST, cache=False)


# --------------------------------------------------------------------------- HEASARC
def _answer_with(cats, queries, change):
    """The stand-in's join, then *change*(result) applied to the VOTable columns."""
    base = make_answer(cats, queries)

    def answer(query, uploads, maxrec):
        result = base(query, uploads, maxrec)
        change(result, query)
        return result
    return answer


def _arcsec(result, query):
    if "error_radius" in result.colnames:
        result["error_radius"] = np.asarray(result["error_radius"]) * 3600.0
        result["error_radius"].unit = u.arcsec


def test_heasarc_declared_arcsec_error_radius_is_converted(replay_server, catalogs, seen,  # noqa: F811 -- imported fixtures
                                                           monkeypatch, offline_iers):  # noqa: F811 -- imported fixtures
    service = TAPStandin(replay_server, _answer_with(catalogs, seen, _arcsec))
    monkeypatch.setenv("MULTILC_HEASARC_TAP_URL", service.url)
    targets = _targets(catalogs)
    lc = multilc.collect(targets, archives="heasarc.bepposax", **FAST)
    assert lc.report.ok, lc.report.summary()
    ev = lc.events
    # 1800 arcsec is stored as 0.5 deg, never as 1800 deg
    assert ev["error_radius"].unit == u.deg
    assert np.all(ev["error_radius"].to_value(u.deg) <= 5.0)
    expected = expected_grb_events(catalogs["sax"], targets, 3.0)
    assert sorted(got_events(lc, "heasarc.bepposax")) == sorted(expected)


def test_heasarc_incompatible_unit_fails_that_archive_only(replay_server, catalogs, seen,  # noqa: F811 -- imported fixtures
                                                           monkeypatch, offline_iers):  # noqa: F811 -- imported fixtures
    def seconds(result, query):
        if "saxgrbmgrb" in query:
            result["error_radius"].unit = u.s

    service = TAPStandin(replay_server, _answer_with(catalogs, seen, seconds))
    monkeypatch.setenv("MULTILC_HEASARC_TAP_URL", service.url)
    monkeypatch.setenv("MULTILC_HEASARC_FERMI_GBM_TABLE", "heasarc.fermigtrig")
    targets = _targets(catalogs, n_near=20, n_random=0)
    lc = multilc.collect(targets, archives=["heasarc.bepposax", "heasarc.fermi_gbm"], **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "heasarc.bepposax"
    assert "error_radius" in failure.message and "declared in s" in failure.message
    assert failure.objectids == [int(i) for i in targets["objectid"]]
    assert not failure.transient
    # the other archive of the same run is intact
    assert got_events(lc, "heasarc.fermi_gbm") == got_events(
        multilc.collect(targets, archives="heasarc.fermi_gbm", **FAST), "heasarc.fermi_gbm")


def test_heasarc_sentinels_and_out_of_range_rows_are_counted(catalogs, offline_iers):  # noqa: F811 -- imported fixtures
    targets = _targets(catalogs, n_near=30, n_random=0)
    batch = Batch("heasarc.bepposax", 0, np.asarray(targets["objectid"], "int64"),
                  _values(targets["ra"]), _values(targets["dec"]),
                  np.asarray(targets["label"]), {"match": "all"})
    sax = catalogs["sax"]
    n = 12
    raw = Table({"name": np.asarray(sax["name"][:n]).astype(str),
                 "ra": _values(sax["ra"])[:n], "dec": _values(sax["dec"])[:n],
                 "error_radius": np.full(n, 1.0), "time": _values(sax["time"])[:n],
                 "objectid": np.asarray(targets["objectid"][:n], "int64")})
    raw["ra"][:n] = _values(targets["ra"])[:n]
    raw["dec"][:n] = _values(targets["dec"])[:n]
    raw["time"][0] = -999.0          # a sentinel
    raw["time"][1] = 1e9             # far future
    raw["error_radius"][2] = 0.0     # not an error circle
    raw["error_radius"][3] = 400.0   # more than the sphere
    raw["dec"][4] = 95.0             # not a declination
    raw["ra"][5] = np.nan            # no position
    result = heasarc.grb_events(raw, batch, "heasarc.bepposax", {"match": "all"})
    d = result.dropped
    assert d["time outside [33282, 69807] d"] == 2
    assert d["error_radius <= 0"] == 1
    assert d["error_radius outside [-inf, 180] deg"] == 1
    assert d["dec outside [-90, 90] deg"] == 1
    assert d["no position"] == 1
    assert len(result.lc.events) + sum(d.values()) == n
    mjd = result.lc.events["time"].tdb.mjd
    assert np.all((mjd > MJD_RANGE[0]) & (mjd < MJD_RANGE[1]))


def test_heasarc_icecube_log_energies_are_not_stored_as_gev(replay_server, catalogs, seen,  # noqa: F811 -- imported fixtures
                                                            monkeypatch, offline_iers):  # noqa: F811 -- imported fixtures
    def log10(result, query):
        if "event_energy" in result.colnames:
            result["event_energy"] = np.log10(np.asarray(result["event_energy"]))

    service = TAPStandin(replay_server, _answer_with(catalogs, seen, log10))
    monkeypatch.setenv("MULTILC_HEASARC_TAP_URL", service.url)
    ic = catalogs["icecube"]
    targets = Table({"objectid": [1, 2], "ra": np.asarray(ic["ra"][:2]),
                     "dec": np.asarray(ic["dec"][:2])})
    lc = multilc.collect(targets, archives="heasarc.icecube", **FAST)
    assert lc.n_events == 0
    (reason,) = lc.report.dropped["heasarc.icecube"]
    assert reason == "event_energy outside [10, 1e+10] GeV"
    assert lc.report.dropped["heasarc.icecube"][reason] > 0


FAULTS = [Fault.status(429, retry_after=1), Fault.status(500), Fault.status(502),
          Fault.status(503), Fault.truncated(fraction=0.5),
          Fault.truncated(fraction=0.6, declare_full_length=False), Fault.reset(),
          Fault.hang(3), Fault.html_error(200)]
FAULT_IDS = ["429", "500", "502", "503", "cut", "cut-same-length", "reset", "hang",
             "html200"]


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_heasarc_fault_served_once_changes_nothing(tap, catalogs, replay_server, fault,  # noqa: F811 -- imported fixtures
                                                   offline_iers):  # noqa: F811 -- imported fixtures
    targets = _targets(catalogs, n_near=10, n_random=0)
    clean = multilc.collect(targets, archives="heasarc.bepposax", cache=False, **FAST)
    replay_server.faults("/tap/sync", [fault])
    lc = multilc.collect(targets, archives="heasarc.bepposax", cache=False,
                         **{**FAST, "timeout": 1.5})
    assert lc.report.ok, lc.report.summary()
    assert got_events(lc, "heasarc.bepposax") == got_events(clean, "heasarc.bepposax")
    assert len(got_events(clean, "heasarc.bepposax")) > 0


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_heasarc_fault_served_always_costs_one_chunk(tap, catalogs, replay_server, fault,  # noqa: F811 -- imported fixtures
                                                     offline_iers):  # noqa: F811 -- imported fixtures
    targets = _targets(catalogs, n_near=20, n_random=0)
    first, second = targets[:10], targets[10:]
    # concurrency 1: the first chunk's request (and its retries) meet the faults
    replay_server.faults("/tap/sync", [fault] * 3)
    lc = multilc.collect(targets, archives="heasarc.bepposax", chunk_size=10, cache=False,
                         options={"heasarc.bepposax": {"concurrency": 1}},
                         **{**FAST, "timeout": 1.5})
    (failure,) = lc.report.failures
    assert failure.archive == "heasarc.bepposax"
    assert failure.objectids == [int(i) for i in first["objectid"]]
    assert "heasarc.bepposax" in failure.message
    assert_same = expected_grb_events(catalogs["sax"], second, 3.0)
    assert sorted(got_events(lc, "heasarc.bepposax")) == sorted(assert_same)


# --------------------------------------------------------------------------- Gaia
def test_gaia_one_bad_product_costs_its_source_only(services, monkeypatch):  # noqa: F811 -- imported fixtures
    server, _, _ = services
    bad_sid = SOURCES[3][0]

    def datalink(request):
        ids = [int(i) for i in request.form["ID"].split(",") if i]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for sid in ids:
                if sid not in TRANSITS:
                    continue
                data = product_bytes(TRANSITS[sid], "votable")
                if sid == bad_sid:
                    data = data[: len(data) // 2]  # a product cut in half
                zf.writestr(f"EPOCH_PHOTOMETRY-Gaia DR3 {sid}.xml", data)
        return 200, {"Content-Type": "application/zip"}, buf.getvalue()

    server.route("/data-server/data", method="POST", handler=datalink)
    lc = multilc.collect(gaia_targets(), archives="gaia",
                         options={"gaia": {"route": "service"}}, **GAIA_FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "gaia" and failure.objectids == [12]  # 210.5, -30.25
    assert str(bad_sid) in failure.message
    # target 11 keeps both of its sources' transits
    assert set(lc.ds["source_id"].values) == {SOURCES[0][0], SOURCES[1][0]}
    assert set(lc.objectids_with_data) == {11}


def test_gaia_truncated_zip_is_retried(services):  # noqa: F811 -- imported fixtures
    server, _, _ = services
    clean = multilc.collect(gaia_targets(), archives="gaia",
                            options={"gaia": {"route": "service"}}, **GAIA_FAST)
    server.faults("/data-server/data", [Fault.truncated(fraction=0.7,
                                                        declare_full_length=False)])
    lc = multilc.collect(gaia_targets(), archives="gaia",
                         options={"gaia": {"route": "service"}}, **GAIA_FAST)
    assert lc.report.ok, lc.report.summary()
    assert lc == clean


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
@pytest.mark.parametrize("path", ["/tap-server/tap/sync", "/data-server/data"])
def test_gaia_fault_served_once_changes_nothing(services, fault, path):  # noqa: F811 -- imported fixtures
    server, _, _ = services
    clean = multilc.collect(gaia_targets(), archives="gaia",
                            options={"gaia": {"route": "service"}}, **GAIA_FAST)
    server.faults(path, [fault])
    lc = multilc.collect(gaia_targets(), archives="gaia",
                         options={"gaia": {"route": "service"}},
                         **{**GAIA_FAST, "timeout": 1.5})
    assert lc.report.ok, lc.report.summary()
    assert lc == clean and len(lc) > 0


def test_gaia_csv_answer_is_never_opened_as_a_path(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("band,time,flux,source_id\nG,1700.0,100.0,1\n")
    with pytest.raises(MultilcError):
        gaia.epoch_table_from_bytes(str(secret).encode(), "answer.csv")


def test_gaia_declared_flux_units_are_checked():
    t = TRANSITS[SOURCES[0][0]].copy()
    ref = gaia.epoch_table_from_bytes(product_bytes(t, "votable"), "p.xml")  # "s-1"
    t["flux"].unit = u.electron / u.s
    got = gaia.epoch_table_from_bytes(product_bytes(t, "votable"), "p.xml")
    np.testing.assert_allclose(got["flux"], ref["flux"], rtol=1e-12)
    # a time column declared in years is converted to days
    t["time"] = np.asarray(t["time"]) / 365.25
    t["time"].unit = u.yr
    got = gaia.epoch_table_from_bytes(product_bytes(t, "votable"), "p.xml")
    np.testing.assert_allclose(got["time"], ref["time"], rtol=1e-12)
    t["flux"].unit = u.mJy
    with pytest.raises(ResponseError, match="cannot be converted"):
        gaia.epoch_table_from_bytes(product_bytes(t, "votable"), "p.xml")


# --------------------------------------------------------------------------- IceCube
def _unpack_in_child(args):
    zip_path, cache_dir = args
    import os

    os.environ["MULTILC_CACHE_DIR"] = cache_dir
    os.environ["MULTILC_ICECUBE_RELEASE"] = zip_path
    from astropy.coordinates import SkyCoord as _SkyCoord

    import multilc as _multilc

    lc = _multilc.collect(_SkyCoord([40.0, 120.0], [10.0, -20.0], unit="deg"),
                          archives="icecube", progress=False, cache=False)
    return lc.report.ok, lc.n_events, sorted(lc.events["event_id"].tolist())


def test_two_processes_unpacking_the_release_both_succeed(shared_dir, tmp_path):
    events = shared_dir / "archive_samples" / "icecube" / "events" / "IC40_exp.csv"
    zip_path = tmp_path / "release.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        # a big-enough member so that the unpacks overlap in time
        for k in range(4):
            zf.write(events, f"icecube_10year_ps/copy{k}/IC40_exp.csv")
        zf.write(events, "icecube_10year_ps/events/IC40_exp.csv")
    cache = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_unpack_in_child, [(str(zip_path), cache)] * 2)
    assert all(ok for ok, _, _ in results), results
    assert results[0][1] > 0 and results[0] == results[1]


def test_icecube_candidates_out_of_range_are_counted():
    batch = Batch("icecube", 0, np.array([1, 2], "int64"), np.array([10.0, 20.0]),
                  np.array([0.0, 5.0]), np.array(["a", "b"]),
                  dict(icecube.DEFAULT_OPTIONS))
    cand = Table({"objectid": np.array([1, 1, 2, 2], "int64"),
                  "mjd": [55000.0, -999.0, 55001.0, 55002.0],
                  "energy_gev": [1e3, 1e3, 3.2, 1e4],
                  "ang_err": [1.0, 1.0, 1.0, 0.0],
                  "ra": [10.1, 10.1, 20.1, 20.1], "dec": [0.0, 0.0, 5.0, 5.0]})
    result = icecube.events_from_candidates(cand, batch, "icecube",
                                            icecube.check_event_options(
                                                "icecube", dict(icecube.DEFAULT_OPTIONS)))
    assert result.dropped == {"mjd outside [33282, 69807] d": 1,
                              "energy_gev outside [10, 1e+10] GeV": 1,
                              "ang_err <= 0": 1}
    assert result.lc.n_events == 1


# --------------------------------------------------------------------------- fuzz
def _mutations(rng, data, n):
    """*n* deterministic corruptions of *data* (bytes)."""
    out = []
    tokens = [b"-999", b"NaN", b"inf", b"1e308", b"", b"abc", b"<html>", b"99.99", b"-1"]
    for _ in range(n):
        b = bytearray(data)
        kind = rng.integers(0, 6)
        if kind == 0:      # truncation at a random byte
            b = b[: rng.integers(0, len(b))]
        elif kind == 1:    # bit flips
            for _ in range(rng.integers(1, 8)):
                i = rng.integers(0, len(b))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:    # a cell replaced by a sentinel / wrong type / huge value
            tok = tokens[rng.integers(0, len(tokens))]
            for _ in range(rng.integers(1, 4)):
                starts = [i for i in range(len(b) - 1) if b[i:i + 4] == b"<TD>"]
                if not starts:
                    break
                i = starts[rng.integers(0, len(starts))] + 4
                j = b.find(b"</TD>", i)
                b[i:j] = tok
        elif kind == 3:    # a column renamed
            b = bytes(b).replace(b'name="%s"' % rng.choice(
                [b"time", b"ra", b"error_radius", b"flux", b"objectid", b"band"]),
                b'name="renamed"', 1)
        elif kind == 4:    # a wrong unit string
            b = bytes(b).replace(b'unit="deg"', rng.choice(
                [b'unit="s"', b'unit="arcsec"', b'unit="blargs"', b'unit="mas"']), 1)
            b = bytes(b).replace(b'unit="d"', rng.choice(
                [b'unit="yr"', b'unit="s"', b'unit="kg"']), 1)
        else:              # HTML instead of data / empty
            b = rng.choice([b"<!DOCTYPE html><html><title>Down</title></html>", b""])
        out.append(bytes(b))
    return out


def _votable_bytes(table):
    buf = io.BytesIO()
    votable.writeto(votable.from_table(table), buf)
    return buf.getvalue()


def _check_outcome(fn, outcomes, check_values):
    try:
        value = fn()
    except MultilcError:
        outcomes["typed error"] += 1
        return
    outcomes["data" if not getattr(value, "dropped", None) else "data + counted drops"] += 1
    check_values(value)


def test_fuzz_heasarc_grb_answers(catalogs, offline_iers):  # noqa: F811 -- imported fixtures
    rng = np.random.default_rng(2026)
    targets = _targets(catalogs, n_near=20, n_random=0)
    batch = Batch("heasarc.bepposax", 0, np.asarray(targets["objectid"], "int64"),
                  _values(targets["ra"]), _values(targets["dec"]),
                  np.asarray(targets["label"]), {"match": "all"})
    sax = catalogs["sax"]
    rows = np.flatnonzero(np.isfinite(_values(sax["ra"])))[:20]
    good = Table({"name": np.asarray(sax["name"])[rows].astype(str),
                  "ra": _values(targets["ra"]), "dec": _values(targets["dec"]),
                  "error_radius": np.full(20, 1.0), "time": _values(sax["time"])[rows],
                  "objectid": np.asarray(targets["objectid"], "int64")})
    for c in ("ra", "dec", "error_radius"):
        good[c].unit = u.deg
    good["time"].unit = u.d
    data = _votable_bytes(good)
    outcomes = {"data": 0, "data + counted drops": 0, "typed error": 0}

    def values_ok(result):
        ev = result.lc.events
        assert len(ev) + sum(result.dropped.values()) >= 0
        if len(ev):
            err = ev["error_radius"].to_value(u.deg)
            assert np.all((err > 0) & (err <= 180))
            mjd = ev["time"].tdb.mjd
            assert np.all((mjd > MJD_RANGE[0] - 1) & (mjd < MJD_RANGE[1] + 1))
            assert set(ev["objectid"]) <= set(batch.objectid.tolist())

    cases = _mutations(rng, data, 320)
    for content in cases:
        def run(content=content):
            from multilc.collect.contract import table_from_text

            table = table_from_text(content, "votable", archive="heasarc.bepposax",
                                    what="fuzz")
            return heasarc.grb_events(table, batch, "heasarc.bepposax", {"match": "all"})
        _check_outcome(run, outcomes, values_ok)
    assert sum(outcomes.values()) == len(cases) >= 300
    assert outcomes["typed error"] > 0 and outcomes["data"] + outcomes[
        "data + counted drops"] > 0
    print("heasarc fuzz outcomes:", outcomes)


def test_fuzz_gaia_products():
    rng = np.random.default_rng(7)
    sid = SOURCES[0][0]
    cases = []
    for fmt in ("votable", "csv", "ecsv"):
        data = product_bytes(TRANSITS[sid], fmt)
        cases += [(m, fmt) for m in _mutations(rng, data, 110)]
    zipped = datalink_zip([s for s, *_ in SOURCES])
    cases += [(m, "zip") for m in _mutations(rng, zipped, 40)]
    outcomes = {"data": 0, "data + counted drops": 0, "typed error": 0}
    suffix = {"votable": "xml", "csv": "csv", "ecsv": "ecsv", "zip": "zip"}

    def values_ok(lc_dropped):
        lc, dropped = lc_dropped
        if len(lc):
            assert np.all(np.isfinite(lc.ds["flux"].values))
            err = lc.ds["flux_err"].values
            assert np.all(err[np.isfinite(err)] > 0)
            t = lc.ds["time"].values
            assert np.all((t > MJD_RANGE[0] - 1) & (t < MJD_RANGE[1] + 1))

    for content, fmt in cases:
        def run(content=content, fmt=fmt):
            ep = gaia.epoch_table_from_bytes(content, f"p.{suffix[fmt]}")
            ids = np.asarray(ep["source_id"], "int64")
            return gaia.transits_to_lightcurve(ep, ids, np.full(len(ep), np.nan) * u.arcsec)

        try:
            value = run()
        except MultilcError:
            outcomes["typed error"] += 1
            continue
        outcomes["data + counted drops" if value[1] else "data"] += 1
        values_ok(value)
    assert len(cases) >= 300
    assert outcomes["typed error"] > 0
    print("gaia fuzz outcomes:", outcomes)


def test_fuzz_icecube_season_files(shared_dir, tmp_path):
    rng = np.random.default_rng(40)
    events = shared_dir / "archive_samples" / "icecube" / "events" / "IC40_exp.csv"
    lines = events.read_text().splitlines(keepends=True)
    data = "".join(lines[:60]).encode()
    ra, dec = (float(v) for v in lines[5].split()[3:5])
    target = SkyCoord(ra, dec, unit="deg")
    outcomes = {"data": 0, "data + counted drops": 0, "typed error": 0}
    cases = []
    tokens = [b"-999", b"nan", b"inf", b"1e308", b"abc", b"-1"]
    for k in range(310):
        b = bytearray(data)
        kind = k % 4
        if kind == 0:
            b = b[: rng.integers(0, len(b))]
        elif kind == 1:
            for _ in range(rng.integers(1, 6)):
                i = rng.integers(0, len(b))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:
            body = bytes(b).split(b"\n")
            i = int(rng.integers(1, len(body) - 1))
            cells = body[i].split()
            if cells:
                cells[int(rng.integers(0, len(cells)))] = tokens[rng.integers(0, len(tokens))]
            body[i] = b"  ".join(cells)
            b = b"\n".join(body)
        else:
            b = bytes(b).replace(b"AngErr[deg]", b"AngErr[rad]", 1)
        cases.append(bytes(b))
    for k, content in enumerate(cases):
        path = tmp_path / f"f{k}.csv"
        path.write_bytes(content)
        try:
            lc = multilc.MultiBandLightCurve.read(path, format="icecube.events",
                                                  targets=target)
        except MultilcError:
            outcomes["typed error"] += 1
            continue
        dropped = lc.report.dropped.get("icecube", {}) if lc.report else {}
        outcomes["data + counted drops" if dropped else "data"] += 1
        ev = lc.events
        if len(ev):
            assert np.all(ev["energy"].to_value(u.GeV) >= 10)
            assert np.all(ev["error_radius"].to_value(u.deg) > 0)
    assert len(cases) >= 300 and outcomes["typed error"] > 0
    print("icecube fuzz outcomes:", outcomes)
