"""Protocol-level tests of pyvo against the local GAVO DaCHS TAP server.

Every expected answer is computed here, independently of the ADQL engine,
with astropy separations on the CSV rows the server loaded (see
``tap_server_data_dir``).  These tests pin down what multilc's HEASARC and
Gaia readers rely on: uploads joined with CONTAINS/CIRCLE and DISTANCE, async
jobs, MAXREC overflow reporting, error reporting and the quoting of ``time``.
"""
import warnings
from collections import defaultdict

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from .conftest import read_loaded_table

pyvo = pytest.importorskip("pyvo")
from pyvo.dal.exceptions import DALOverflowWarning, DALQueryError  # noqa: E402

pytestmark = pytest.mark.tap_server

# Fornax's default error-radius cuts (archive-formats.md section 3.1).
SAX_MAX_ERROR_RADIUS_DEG = 3.0
FERMI_MAX_ERROR_RADIUS_DEG = 1.0
ICECUBE_SEARCH_RADIUS_DEG = 2.0
ICECUBE_TOP_N = 3

# Crossmatch ADQL of the HEASARC GRB tables as the readers send it.
GRB_MATCH_ADQL = """
SELECT cat.name, cat.ra, cat.dec, cat.error_radius, cat."time", mt.objectid, mt.label
FROM {table} AS cat, TAP_UPLOAD.mytable AS mt
WHERE cat.error_radius < {max_radius}
AND CONTAINS(POINT('ICRS', mt.ra, mt.dec), CIRCLE('ICRS', cat.ra, cat.dec, cat.error_radius)) = 1
"""


def _localised_rows(rows, max_radius):
    """Catalog rows with a position and error_radius < max_radius (floats)."""
    return [
        {**row, "ra": float(row["ra"]), "dec": float(row["dec"]),
         "error_radius": float(row["error_radius"])}
        for row in rows
        if row["ra"] is not None and row["dec"] is not None
        and row["error_radius"] is not None and float(row["error_radius"]) < max_radius
    ]


def _yang18_targets(shared_dir):
    sample = Table.read(shared_dir / "samples" / "yang_18.csv", format="ascii.csv")
    return list(zip(sample["ra_deg"].tolist(), sample["dec_deg"].tolist()))


def _grb_targets(catalog_rows, shared_dir, n_inside=5, n_outside=3):
    """Upload table: yang_18 targets plus positions inside/outside some error circles.

    Positions at 0.5 error radius from a GRB are matched by that GRB; positions
    at 1.6 error radii are not matched by it (other circles may still cover
    them: the expected answer is computed for every catalog row).
    """
    positions = _yang18_targets(shared_dir)
    picks = catalog_rows[:: max(1, len(catalog_rows) // (n_inside + n_outside))]
    for k, row in enumerate(picks[: n_inside + n_outside]):
        factor = 0.5 if k < n_inside else 1.6
        centre = SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg)
        moved = centre.directional_offset_by(
            (37.0 * k) * u.deg, factor * row["error_radius"] * u.deg)
        positions.append((moved.ra.deg, moved.dec.deg))
    table = Table()
    table["objectid"] = np.arange(1, len(positions) + 1, dtype=np.int32)
    table["label"] = [f"target {i}" for i in table["objectid"]]
    table["ra"] = [p[0] for p in positions] * u.deg
    table["dec"] = [p[1] for p in positions] * u.deg
    return table


def _target_coords(targets):
    """SkyCoord of the upload table rows (columns ra, dec in deg)."""
    return SkyCoord(np.asarray(targets["ra"]) * u.deg, np.asarray(targets["dec"]) * u.deg)


def _expected_circle_matches(targets, catalog_rows):
    """Set of (objectid, name): targets within a catalog row's error circle."""
    cat = SkyCoord([r["ra"] for r in catalog_rows] * u.deg,
                   [r["dec"] for r in catalog_rows] * u.deg)
    radii = np.array([r["error_radius"] for r in catalog_rows])
    expected = set()
    for objectid, position in zip(targets["objectid"], _target_coords(targets)):
        separation = position.separation(cat).deg
        for index in np.flatnonzero(separation < radii):
            expected.add((int(objectid), catalog_rows[index]["name"]))
    return expected


def test_sync_upload_crossmatch_saxgrbmgrb(tap_service, tap_server_data_dir, shared_dir):
    rows = read_loaded_table(tap_server_data_dir, "heasarc", "saxgrbmgrb")
    catalog = _localised_rows(rows, SAX_MAX_ERROR_RADIUS_DEG)
    targets = _grb_targets(catalog, shared_dir)

    result = tap_service.run_sync(
        GRB_MATCH_ADQL.format(table="heasarc.saxgrbmgrb", max_radius=SAX_MAX_ERROR_RADIUS_DEG),
        uploads={"mytable": targets}).to_table()

    expected = _expected_circle_matches(targets, catalog)
    got = {(int(oid), str(name)) for oid, name in zip(result["objectid"], result["name"])}
    assert len(expected) >= 5  # the five "inside" targets at least
    assert got == expected
    # no unlocalised GRB (NULL ra/dec) can take part in a geometric match
    assert not np.any(np.ma.getmaskarray(result["ra"]))
    assert np.all(np.asarray(result["error_radius"]) < SAX_MAX_ERROR_RADIUS_DEG)
    # units as the readers will see them
    assert result["ra"].unit == u.deg
    assert result["time"].unit == u.day


def test_async_job_upload_crossmatch_fermigtrig(tap_service, tap_server_data_dir, shared_dir):
    rows = read_loaded_table(tap_server_data_dir, "heasarc", "fermigtrig")
    catalog = _localised_rows(rows, FERMI_MAX_ERROR_RADIUS_DEG)
    targets = _grb_targets(catalog, shared_dir)

    job = tap_service.submit_job(
        GRB_MATCH_ADQL.format(table="heasarc.fermigtrig", max_radius=FERMI_MAX_ERROR_RADIUS_DEG),
        uploads={"mytable": targets})
    try:
        assert job.phase == "PENDING"
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        assert job.phase == "COMPLETED"
        result = job.fetch_result().to_table()
    finally:
        job.delete()

    expected = _expected_circle_matches(targets, catalog)
    got = {(int(oid), str(name)) for oid, name in zip(result["objectid"], result["name"])}
    assert len(expected) >= 5
    assert got == expected
    # time of a matched trigger is the burst time of the shared export (MJD)
    times = {r["name"]: float(r["time"]) for r in catalog}
    for name, time in zip(result["name"], result["time"]):
        assert time == pytest.approx(times[str(name)], abs=1e-8)


def test_maxrec_overflow_is_reported(tap_service, tap_server_data_dir):
    n_events = len(read_loaded_table(tap_server_data_dir, "heasarc", "icecubepsc"))
    assert n_events > 25

    # maxrec set by the client: pyvo reports OVERFLOW in query_status, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DALOverflowWarning)
        result = tap_service.run_sync(
            'SELECT "time", event_energy FROM heasarc.icecubepsc', maxrec=25)
    assert len(result) == 25
    assert result.query_status == "OVERFLOW"

    # no maxrec: the server's default MAXREC (DaCHS [async]defaultMAXREC, 20000)
    # truncates, and pyvo warns (a self-join: more rows than the served subset has)
    with pytest.warns(DALOverflowWarning, match="truncated"):
        result = tap_service.run_sync("SELECT a.event_energy FROM heasarc.icecubepsc AS a, "
                                      "heasarc.icecubepsc AS b")
    assert result.query_status == "OVERFLOW"
    assert len(result) == tap_service.maxrec < n_events ** 2

    # below the limit: no overflow
    result = tap_service.run_sync("SELECT TOP 10 event_energy FROM heasarc.icecubepsc",
                                  maxrec=25)
    assert len(result) == 10
    assert result.query_status == "OK"


def test_malformed_adql_raises_dalqueryerror_with_server_message(tap_service):
    with pytest.raises(DALQueryError, match="Could not parse your query") as info:
        tap_service.run_sync("SELEC name FROM heasarc.fermigtrig")
    assert "SELECT" in str(info.value)  # the parser says what it expected

    with pytest.raises(DALQueryError, match="Could not locate table"):
        tap_service.run_sync("SELECT name FROM heasarc.no_such_table")


def test_time_column_must_be_quoted(tap_service, tap_server_data_dir):
    rows = read_loaded_table(tap_server_data_dir, "heasarc", "saxgrbmgrb")
    low, high = 51000.0, 51100.0
    expected = sorted(r["name"] for r in rows if low <= float(r["time"]) <= high)
    assert expected

    result = tap_service.run_sync(
        'SELECT cat.name, cat."time" FROM heasarc.saxgrbmgrb AS cat '
        f'WHERE cat."time" BETWEEN {low} AND {high} ORDER BY cat."time"').to_table()
    assert sorted(str(n) for n in result["name"]) == expected
    assert list(result["time"]) == sorted(result["time"])
    assert result["time"].unit == u.day

    # strict ADQL reserves TIME: unquoted, the query is rejected
    with pytest.raises(DALQueryError, match="Could not parse your query"):
        tap_service.run_sync("SELECT cat.time FROM heasarc.saxgrbmgrb AS cat")


def test_icecube_distance_match_and_top_energies(tap_service, tap_server_data_dir, shared_dir):
    events = read_loaded_table(tap_server_data_dir, "heasarc", "icecubepsc")
    ev_ra = np.array([float(e["ra"]) for e in events])
    ev_dec = np.array([float(e["dec"]) for e in events])
    ev_err = np.array([float(e["error_radius"]) for e in events])
    ev_energy = np.array([float(e["event_energy"]) for e in events])

    positions = _yang18_targets(shared_dir)
    # plus targets 0.1 deg from a few events, so that matches are certain
    for index in np.linspace(0, len(ev_ra) - 1, 4).astype(int):
        moved = SkyCoord(ev_ra[index] * u.deg, ev_dec[index] * u.deg).directional_offset_by(
            45 * u.deg, 0.1 * u.deg)
        positions.append((moved.ra.deg, moved.dec.deg))
    targets = Table()
    targets["objectid"] = np.arange(1, len(positions) + 1, dtype=np.int32)
    targets["ra"] = [p[0] for p in positions] * u.deg
    targets["dec"] = [p[1] for p in positions] * u.deg

    result = tap_service.run_sync(f"""
        SELECT mt.objectid, cat."time", cat.event_energy, cat.error_radius
        FROM heasarc.icecubepsc AS cat, TAP_UPLOAD.mytable AS mt
        WHERE 1 = CONTAINS(POINT('ICRS', mt.ra, mt.dec),
                           CIRCLE('ICRS', cat.ra, cat.dec, {ICECUBE_SEARCH_RADIUS_DEG}))
        AND DISTANCE(POINT('ICRS', mt.ra, mt.dec), POINT('ICRS', cat.ra, cat.dec))
            < cat.error_radius
        """, uploads={"mytable": targets}, maxrec=100000)
    assert result.query_status == "OK"
    result = result.to_table()

    catalog = SkyCoord(ev_ra * u.deg, ev_dec * u.deg)
    expected_times = defaultdict(list)
    expected_energies = defaultdict(list)
    for objectid, position in zip(targets["objectid"], _target_coords(targets)):
        separation = position.separation(catalog).deg
        hits = (separation < ICECUBE_SEARCH_RADIUS_DEG) & (separation < ev_err)
        expected_times[int(objectid)] = sorted(
            float(events[i]["time"]) for i in np.flatnonzero(hits))
        expected_energies[int(objectid)] = sorted(ev_energy[hits], reverse=True)

    got_times = defaultdict(list)
    got_energies = defaultdict(list)
    for objectid, time, energy in zip(result["objectid"], result["time"], result["event_energy"]):
        got_times[int(objectid)].append(float(time))
        got_energies[int(objectid)].append(float(energy))

    assert sum(len(v) for v in expected_times.values()) >= 4
    for objectid in targets["objectid"]:
        objectid = int(objectid)
        assert sorted(got_times[objectid]) == pytest.approx(expected_times[objectid], abs=1e-8)
        top_got = sorted(got_energies[objectid], reverse=True)[:ICECUBE_TOP_N]
        top_expected = expected_energies[objectid][:ICECUBE_TOP_N]
        assert top_got == pytest.approx(top_expected, rel=1e-12)
    assert result["event_energy"].unit == u.GeV


def test_heasarc_unqualified_uppercase_names_resolve(tap_service, tap_server_data_dir):
    # HEASARC's service is queried as FROM FERMIGTRIG; the local server answers too
    n_rows = len(read_loaded_table(tap_server_data_dir, "heasarc", "fermigtrig"))
    for table in ("FERMIGTRIG", "fermigtrig", "heasarc.fermigtrig", "HEASARC.FERMIGTRIG"):
        result = tap_service.run_sync(f"SELECT COUNT(*) AS n FROM {table}").to_table()
        assert int(result["n"][0]) == n_rows, table


def test_upload_table_name_is_case_insensitive_unless_quoted(tap_service):
    targets = Table({"objectid": np.array([7, 8], dtype=np.int32),
                     "ra": [10.0, 20.0] * u.deg, "dec": [1.0, 2.0] * u.deg})
    result = tap_service.run_sync("SELECT mt.objectid FROM TAP_UPLOAD.mytable AS mt",
                                  uploads={"MyTable": targets}).to_table()
    assert sorted(result["objectid"]) == [7, 8]
    # a quoted mixed-case name is not found on this server (DaCHS 2.7)
    with pytest.raises(DALQueryError, match="Could not locate table"):
        tap_service.run_sync('SELECT mt.objectid FROM TAP_UPLOAD."MyTable" AS mt',
                             uploads={"MyTable": targets})


def test_gaia_upload_join_within_one_arcsec(tap_service, tap_server_data_dir, shared_dir):
    sources = read_loaded_table(tap_server_data_dir, "gaiadr3", "gaia_source")
    positions = _yang18_targets(shared_dir)
    targets = Table()
    targets["objectid"] = np.arange(1, len(positions) + 1, dtype=np.int32)
    targets["ra"] = [p[0] for p in positions] * u.deg
    targets["dec"] = [p[1] for p in positions] * u.deg
    radius = 1.0 * u.arcsec

    result = tap_service.run_sync(f"""
        SELECT mt.objectid, gs.source_id, gs.phot_g_mean_mag, gs.has_epoch_photometry,
               gs.ref_epoch, gs.parallax
        FROM gaiadr3.gaia_source AS gs, TAP_UPLOAD.mytable AS mt
        WHERE 1 = CONTAINS(POINT('ICRS', gs.ra, gs.dec),
                           CIRCLE('ICRS', mt.ra, mt.dec, {radius.to_value(u.deg)}))
        """, uploads={"mytable": targets}).to_table()

    catalog = SkyCoord([float(s["ra"]) for s in sources] * u.deg,
                       [float(s["dec"]) for s in sources] * u.deg)
    idx_target, idx_source, _, _ = catalog.search_around_sky(_target_coords(targets), radius)
    expected = {(int(targets["objectid"][i]), int(sources[j]["source_id"]))
                for i, j in zip(idx_target, idx_source)}
    got = {(int(o), int(s)) for o, s in zip(result["objectid"], result["source_id"])}
    assert len(expected) == len(positions)  # one counterpart per target
    assert got == expected

    by_id = {int(s["source_id"]): s for s in sources}
    for source_id, flag, g_mag in zip(result["source_id"], result["has_epoch_photometry"],
                                      result["phot_g_mean_mag"]):
        assert bool(flag) == (by_id[int(source_id)]["has_epoch_photometry"] == "true")
        assert float(g_mag) == pytest.approx(float(by_id[int(source_id)]["phot_g_mean_mag"]),
                                             rel=1e-6)  # stored as real (float32)
    assert result["source_id"].dtype == np.int64
    assert result["has_epoch_photometry"].dtype == bool
    assert result["parallax"].unit == u.mas
    assert np.all(result["ref_epoch"] == 2016.0)


def test_loaded_rows_keep_the_shared_values(tap_server_data_dir, shared_dir):
    """The loader copies name/ra/dec/time of the shared exports unchanged."""
    shared = Table.read(shared_dir / "archive_samples" / "heasarc" / "saxgrbmgrb.csv",
                        format="ascii.csv")
    loaded = read_loaded_table(tap_server_data_dir, "heasarc", "saxgrbmgrb")
    assert len(loaded) == len(shared) == 1082
    n_null = 0
    for source, row in zip(shared, loaded):
        assert row["name"] == source["name"]
        assert float(row["time"]) == pytest.approx(float(source["time"]), abs=0)
        if np.ma.is_masked(source["ra"]):
            assert row["ra"] is None and row["dec"] is None and row["error_radius"] is None
            n_null += 1
        else:
            assert float(row["ra"]) == float(source["ra"])
            assert 0.05 <= float(row["error_radius"]) <= 6.0
    assert n_null == 245

    fermi = read_loaded_table(tap_server_data_dir, "heasarc", "fermigtrig")
    assert all(r["trigger_name"] == "bn" + r["name"][3:] for r in fermi)
    assert all(0.02 <= float(r["error_radius"]) <= 15.0 for r in fermi)
