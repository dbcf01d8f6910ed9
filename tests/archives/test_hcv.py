"""Tests of multilc.archives.hcv against a local MAST catalogs-API stand-in.

The stand-in answers ``/api/v0.1/hsc/v3/hcvsummary.csv`` (cone search in
degrees) and ``/api/v0.1/hsc/v3/hcv.csv`` (by MatchID) with CSV in the
column layout of the MAST HSC API as used in spacetelescope/notebooks
HCV_API_demo.ipynb (summary: MatchID, GroupID, SubGroupID, RA, Dec,
AutoClass, ExpertClass, Filter, MeanMag, MeanCorrMag, MAD, Chi2,
VarQualFlag, FilterDetFlag; light curve: MatchID, Filter, MJD, CorrMag,
MagErr, ImageName).
"""
import io

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.table import Table
from astropy.time import Time

import multilc
from multilc.archives import hcv
from multilc.lightcurve import MultiBandLightCurve
from multilc.testing import Fault

SUMMARY_COLS = ["MatchID", "GroupID", "SubGroupID", "RA", "Dec", "AutoClass", "ExpertClass",
                "Filter", "MeanMag", "MeanCorrMag", "MAD", "Chi2", "VarQualFlag",
                "FilterDetFlag"]
LC_COLS = ["MatchID", "Filter", "MJD", "CorrMag", "MagErr", "ImageName"]
TARGET = SkyCoord(187.7059 * u.deg, 12.3911 * u.deg)     # M87 field
NEAR, FAR = 1905457, 1905999


def _csv(rows, cols):
    if not rows:
        return ""
    out = io.StringIO()
    Table(rows=rows, names=cols).write(out, format="ascii.csv")
    return out.getvalue()


def _objects():
    ra, dec = TARGET.ra.deg, TARGET.dec.deg
    # FAR is listed first: the first row is not the nearest match.
    return {
        FAR: {"ra": ra, "dec": dec + 0.8 / 3600, "filters": ["ACS_F814W"]},
        NEAR: {"ra": ra, "dec": dec + 0.2 / 3600, "filters": ["ACS_F814W", "WFC3_F475W"]},
    }


LIGHTCURVES = {
    NEAR: [
        (NEAR, "ACS_F814W", 53000.25, 20.0, 0.05, "hst_10543_a1_acs_wfc_f814w"),
        (NEAR, "ACS_F814W", 53010.75, 20.5, 0.06, "hst_10543_a2_acs_wfc_f814w"),
        (NEAR, "ACS_F606W", 53000.30, 21.0, 0.08, "hst_10543_a1_acs_wfc_f606w"),
        (NEAR, "WFC3_F475W", 55500.10, 22.0, 0.10, "hst_12345_01_wfc3_uvis_f475w"),
        (NEAR, "WFPC2_F814W", 50500.00, 19.5, 0.04, "hst_05001_01_wfpc2_f814w_wf"),
    ],
    FAR: [(FAR, "ACS_F814W", 53000.25, 24.0, 0.2, "hst_10543_a1_acs_wfc_f814w")],
}


@pytest.fixture
def hsc_api(replay_server, monkeypatch):
    objects = _objects()

    def summary(req):
        ra, dec, radius = (float(req.args[k]) for k in ("ra", "dec", "radius"))
        centre = SkyCoord(ra * u.deg, dec * u.deg)
        rows = []
        for mid, obj in objects.items():
            if centre.separation(SkyCoord(obj["ra"] * u.deg, obj["dec"] * u.deg)).deg > radius:
                continue
            for f in obj["filters"]:
                rows.append((mid, 100, 1, obj["ra"], obj["dec"], 1, 0, f, 20.1, 20.2, 0.3,
                             5.0, "AAAAA", 1))
        # The real API answers an empty body when nothing matches.
        return (200, {"Content-Type": "text/csv"}, _csv(rows, SUMMARY_COLS))

    def lightcurve(req):
        rows = [r for r in LIGHTCURVES.get(int(req.args["MatchID"]), [])
                if "Filter" not in req.args or r[1] == req.args["Filter"]]
        return (200, {"Content-Type": "text/csv"}, _csv(rows, LC_COLS))

    replay_server.route("/api/v0.1/hsc/v3/hcvsummary.csv", handler=summary)
    replay_server.route("/api/v0.1/hsc/v3/hcv.csv", handler=lightcurve)
    monkeypatch.setenv("MULTILC_HCV_URL", replay_server.url + "/api/v0.1/hsc")
    return replay_server


def expected_mjy(mag):
    """AB: 3631 Jy at magnitude 0 (Oke & Gunn 1983), in mJy.

    The exact AB definition (-48.60 mag in erg/s/cm2/Hz) gives 3630.78 Jy,
    hence rtol=1e-4 when comparing with the rounded 3631 Jy.
    """
    return 3631e3 * 10 ** (-0.4 * np.asarray(mag))


def exact_ab_mjy(mag):
    """Straight astropy: AB magnitude -> mJy."""
    return (np.asarray(mag) * u.ABmag).to_value(u.mJy)


def expected_tdb(mjd_utc, coord):
    t = Time(mjd_utc, format="mjd", scale="utc",
             location=EarthLocation.from_geocentric(0, 0, 0, unit=u.m))
    return (t.tdb + t.light_travel_time(coord, kind="barycentric")).mjd


def _collect(targets, **kw):
    return multilc.collect(targets, archives=["hcv"], retries=2, backoff=0.01, timeout=5,
                           progress=False, **kw)


def test_nearest_match_all_filters_ab_fluxes(hsc_api):
    lc = _collect(TARGET)
    assert lc.report.failures == []
    # What was asked: one cone search in degrees, then one light curve request
    # for the NEAREST object, without a Filter restriction.
    (cone,) = [r for r in hsc_api.requests if r.path.endswith("hcvsummary.csv")]
    assert float(cone.args["radius"]) == pytest.approx(1 / 3600)
    assert float(cone.args["ra"]) == pytest.approx(TARGET.ra.deg)
    (curve,) = [r for r in hsc_api.requests if r.path.endswith("hcv.csv")]
    assert curve.args == {"MatchID": str(NEAR), "pagesize": str(hcv.PAGE_SIZE)}
    # All instruments and filters of the match.
    assert lc.bands == ["hst:ACS_F606W", "hst:ACS_F814W", "hst:WFC3_F475W", "hst:WFPC2_F814W"]
    rows = sorted(LIGHTCURVES[NEAR], key=lambda r: ("hst:" + r[1], r[2]))
    mags = np.array([r[3] for r in rows])
    errs = np.array([r[4] for r in rows])
    flux = lc.flux.to_value(u.mJy)
    np.testing.assert_allclose(flux, expected_mjy(mags), rtol=1e-4)
    np.testing.assert_allclose(flux, exact_ab_mjy(mags), rtol=1e-10)
    # magnitude 20 -> 0.03631 mJy (today's VEGAmag/missing-lambda^2 route: ~4.8 "mJy")
    assert flux[rows.index(LIGHTCURVES[NEAR][0])] == pytest.approx(0.03631, rel=1e-4)
    np.testing.assert_allclose(lc.flux_err.to_value(u.mJy),
                               0.4 * np.log(10) * exact_ab_mjy(mags) * errs, rtol=1e-10)
    np.testing.assert_allclose(lc.ds["mag"].values, mags)
    np.testing.assert_allclose(lc.time.mjd, expected_tdb([r[2] for r in rows], TARGET),
                               rtol=0, atol=1e-8)
    np.testing.assert_array_equal(lc.ds["source_id"].values, NEAR)
    np.testing.assert_allclose(lc.ds["separation"].values, 0.2, atol=1e-4)
    assert set(lc.ds["system"].values) == {"AB"}


def test_match_all_and_empty_target(hsc_api):
    empty = SkyCoord(10 * u.deg, -30 * u.deg)
    lc = _collect(SkyCoord([TARGET, empty]), options={"hcv": {"match": "all"}})
    assert lc.report.failures == []
    assert sorted(set(lc.ds["source_id"].values.tolist())) == [NEAR, FAR]
    assert hsc_api.count("/api/v0.1/hsc/v3/hcv.csv") == 2
    np.testing.assert_array_equal(np.unique(lc.objectid), [1])
    far = lc.ds["source_id"].values == FAR
    np.testing.assert_allclose(lc.flux.to_value(u.mJy)[far], expected_mjy([24.0]), rtol=1e-4)


def test_transient_failure_retried_and_html_error(hsc_api):
    hsc_api.faults("/api/v0.1/hsc/v3/hcvsummary.csv", [Fault.status(503)])
    lc = _collect(TARGET)
    assert lc.report.failures == [] and len(lc.time) == 5
    assert hsc_api.count("/api/v0.1/hsc/v3/hcvsummary.csv") == 2
    hsc_api.faults("/api/v0.1/hsc/v3/hcv.csv", [Fault.html_error(502)] * 3)
    lc = _collect(TARGET, cache=False)
    (failure,) = lc.report.failures
    assert failure.archive == "hcv" and failure.objectids == [1]
    assert "502" in failure.message or "HTML" in failure.message


def test_missing_magnitudes_counted():
    rows = Table(rows=[(NEAR, "ACS_F814W", 53000.0, 20.0, 0.05, "a"),
                       (NEAR, "ACS_F814W", 53001.0, np.nan, 0.05, "b"),
                       (NEAR, "ACS_F814W", 53002.0, 21.0, np.nan, "c"),
                       (NEAR, "XYZ_F999Q", 53003.0, 21.0, 0.1, "d")], names=LC_COLS)
    lc, dropped, failures = hcv.hcv_rows_to_lightcurve(rows, 3, ra=10.0, dec=20.0)
    assert dropped["CorrMag missing (null/NaN)"] == 1
    assert dropped["MagErr missing (null/NaN)"] == 1
    assert dropped["unknown HST band hst:XYZ_F999Q"] == 1
    assert len(failures) == 1 and "objectid 3" in failures[0].message
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_mjy([20.0]), rtol=1e-4)


def test_file_formats(tmp_path):
    rows = Table(rows=LIGHTCURVES[NEAR], names=LC_COLS)
    csv = tmp_path / "hcv_1905457.csv"
    rows.write(csv, format="ascii.csv")
    vot = tmp_path / "hcv_1905457.xml"
    rows.write(vot, format="votable")
    lc_csv = MultiBandLightCurve.read(csv, format="hcv", coord=TARGET)
    lc_vot = MultiBandLightCurve.read(vot, format="hcv", coord=TARGET)
    order = np.argsort(["hst:" + r[1] + f"{r[2]:012.5f}" for r in LIGHTCURVES[NEAR]])
    mags = np.array([r[3] for r in LIGHTCURVES[NEAR]])[order]
    for lc in (lc_csv, lc_vot):
        assert lc.objectids.tolist() == [NEAR]
        np.testing.assert_allclose(lc.flux.to_value(u.mJy), expected_mjy(mags), rtol=1e-4)
    with pytest.raises(ValueError, match="pass coord="):
        MultiBandLightCurve.read(csv, format="hcv")


def test_radius_checks():
    with pytest.raises(TypeError, match="angle Quantity"):
        hcv.HcvArchive(radius=1 / 3600)
    with pytest.raises(ValueError, match="0.5 deg"):
        hcv.HcvArchive(radius=1 * u.deg)
    with pytest.raises(ValueError, match="match="):
        hcv.HcvArchive(match="first")


@pytest.mark.remote_data
def test_remote_hcv_nova_m87():
    # MatchID 1905457 (nova in M87, Bonanos et al. 2019 fig. 9); position from HSC.
    summary = Table.read(
        "https://catalogs.mast.stsci.edu/api/v0.1/hsc/v3/hcvsummary.csv?MatchID=1905457",
        format="ascii.csv")
    coord = SkyCoord(summary["RA"][0] * u.deg, summary["Dec"][0] * u.deg)
    lc = multilc.collect(coord, archives=["hcv"], progress=False)
    assert {"hst:ACS_F606W", "hst:ACS_F814W"} <= set(lc.bands)
    assert (lc.ds["source_id"].values == 1905457).all()


# --------------------------------------------------------------------------- issue 10: trust
def test_sentinels_and_out_of_range_values_dropped_and_counted(hsc_api):
    LIGHTCURVES[NEAR].extend([
        (NEAR, "ACS_F814W", -999.0, 20.0, 0.05, "bad_time"),
        (NEAR, "ACS_F814W", 53020.0, 99.99, 0.05, "bad_mag"),
        (NEAR, "ACS_F814W", 53021.0, 20.0, -999.0, "bad_err"),
    ])
    try:
        lc = _collect(TARGET, cache=False)
    finally:
        del LIGHTCURVES[NEAR][-3:]
    assert lc.report.ok, lc.report.summary()
    assert len(lc.time) == 5
    assert lc.report.dropped["hcv"] == {"MJD outside [48005, 69807] d": 1,
                                        "CorrMag outside [0, 40] mag": 1,
                                        "MagErr <= 0": 1}
    assert (lc.flux_err.to_value(u.mJy) > 0).all()


def test_one_line_answer_is_never_opened_as_a_file(hsc_api, tmp_path):
    decoy = tmp_path / "decoy.csv"
    Table(rows=LIGHTCURVES[NEAR], names=LC_COLS).write(decoy, format="ascii.csv")
    hsc_api.route("/api/v0.1/hsc/v3/hcv.csv", str(decoy))
    lc = _collect(TARGET, cache=False)
    assert len(lc.time) == 0
    (failure,) = lc.report.failures
    assert failure.objectids == [1] and "lacks columns" in failure.message


def test_one_targets_persistent_failure_keeps_the_others(hsc_api, monkeypatch):
    monkeypatch.setenv("MULTILC_BACKOFF", "0.01")
    monkeypatch.setenv("MULTILC_RETRIES", "1")
    good = hsc_api._routes[("/api/v0.1/hsc/v3/hcvsummary.csv", "GET")].handler

    def summary(req):
        if float(req.args["ra"]) > 200:
            return (503, {}, "busy")
        if float(req.args["ra"]) < 100:
            return (200, {}, "MatchID,RA,Dec\nnot-a-number,1,2\n")
        return good(req)

    hsc_api.route("/api/v0.1/hsc/v3/hcvsummary.csv", handler=summary)
    targets = SkyCoord([TARGET.ra.deg, 250.0, 50.0] * u.deg, [TARGET.dec.deg, 0, 0] * u.deg)
    lc = _collect(targets, cache=False, chunk_size=3)
    failures = {f.objectids[0]: f for f in lc.report.failures}
    assert sorted(failures) == [2, 3]
    assert failures[2].transient and "503" in failures[2].message
    assert "MatchID" in failures[3].message and not failures[3].transient
    assert len(lc.time) == 5 and set(np.unique(lc.objectid)) == {1}
