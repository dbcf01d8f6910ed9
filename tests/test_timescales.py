"""Tests for multilc.timescales.

Reference values come from the definitions of the archives' time systems
or from astropy's own complete computation (Time scales plus
``Time.light_travel_time``), never from the module under test.
"""

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time
from astropy.utils import iers
from numpy.testing import assert_allclose

from multilc import timescales as ts
from multilc.timescales import TIME_SYSTEMS, to_mjd_tdb

GEOCENTRE = EarthLocation.from_geocentric(0, 0, 0, u.m)


@pytest.fixture
def offline_iers():
    """Let astropy use its bundled IERS tables without downloading."""
    with (
        iers.conf.set_temp("auto_download", False),
        iers.conf.set_temp("auto_max_age", None),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def astropy_barycentric_mjd_tdb(values, system, coord):
    """astropy's full computation of the barycentric MJD(TDB), as (jd1, jd2)."""
    location = system.location if system.location is not None else GEOCENTRE
    t = Time(values, format="mjd", scale=system.scale, location=location)
    if system.reference == "heliocentric":
        t_obs = t
        for _ in range(3):
            t_obs = t - t_obs.light_travel_time(coord, "heliocentric")
        t = t_obs
    return (t.tdb + t.light_travel_time(coord, "barycentric")).tdb


def seconds_apart(mjd, reference_time):
    return np.abs((mjd - (reference_time.jd1 - 2400000.5)) - reference_time.jd2) * 86400.0


# --- barycentric archives: exact epochs -----------------------------------


def test_kepler_and_k2_bkjd_zero():
    # BKJD = BJD_TDB - 2454833.0, so BKJD 0 is MJD 2454833.0 - 2400000.5.
    assert to_mjd_tdb([0.0], "kepler.bkjd")[0] == 54832.5
    assert to_mjd_tdb([0.0], "k2.bkjd")[0] == 54832.5
    assert to_mjd_tdb(np.array([100.25]), "kepler.bkjd")[0] == 54932.75


def test_tess_btjd_zero():
    assert to_mjd_tdb([0.0], "tess.btjd")[0] == 56999.5


def test_kepler_and_tess_epochs_differ_by_2167_days():
    # The tutorial bug: Kepler/K2 times converted with the TESS offset land
    # 2167 days late.
    native = np.array([0.0, 1234.5])
    diff = to_mjd_tdb(native, "tess.btjd") - to_mjd_tdb(native, "kepler.bkjd")
    assert_allclose(diff, 2167.0, rtol=0, atol=0)


def test_identity_system():
    values = np.array([55000.123456789, 60000.5])
    assert_allclose(to_mjd_tdb(values, "mjd_tdb_bary"), values, rtol=0, atol=0)


@pytest.mark.parametrize("gaia_time", [0.0, 2000.0])
def test_gaia_tcb_time(gaia_time):
    result = to_mjd_tdb([gaia_time], "gaia.tcb_jd2010")[0]
    # Gaia time = BJD(TCB) - 2455197.5, i.e. MJD(TCB) = time + 55197.0.
    tcb = Time(55197.0 + gaia_time, format="mjd", scale="tcb")
    tdb = tcb.tdb
    expected_shift_s = ((tdb.jd1 - tcb.jd1) + (tdb.jd2 - tcb.jd2)) * 86400
    assert -25 < expected_shift_s < -10  # TCB runs ahead of TDB by ~16-19 s
    assert_allclose((result - (55197.0 + gaia_time)) * 86400, expected_shift_s, atol=1e-5)
    # Not the tutorial's +55197.5.
    assert abs(result - (gaia_time + 55197.5)) > 0.49


def test_barycentric_systems_ignore_coordinates():
    a = to_mjd_tdb([1.0], "tess.btjd")
    b = to_mjd_tdb([1.0], "tess.btjd", ra=10 * u.deg, dec=20 * u.deg)
    assert a[0] == b[0]


# --- systems needing a light-travel time: compare with astropy ------------


# Random times 1990-2026 plus the two UTC days that ended with a leap second
# in 1997 and 2016 (values late in the day stress the UTC MJD convention).
_RNG = np.random.default_rng(12345)
_TIMES = np.concatenate([_RNG.uniform(47892, 61000, 40), [50629.9, 57753.99, 57754.01]])
_RA = _RNG.uniform(0, 360, _TIMES.size) * u.deg
_DEC = np.degrees(np.arcsin(_RNG.uniform(-1, 1, _TIMES.size))) * u.deg


@pytest.mark.parametrize(
    "name", ["ztf.hmjd", "panstarrs.mjd", "wise.mjd", "mjd_utc_geocentric", "icecube.mjd_ut1"]
)
def test_matches_astropy_full_computation(name, offline_iers):
    system = TIME_SYSTEMS[name]
    ours = to_mjd_tdb(_TIMES, name, ra=_RA, dec=_DEC)
    reference = astropy_barycentric_mjd_tdb(_TIMES, system, SkyCoord(_RA, _DEC))
    diff = seconds_apart(ours, reference)
    # The requirement is < 1 s; the implementation achieves well under 1 ms.
    assert diff.max() < 1e-3, diff.max()


def test_ztf_hmjd_correction_is_not_trivial(offline_iers):
    # Sanity check that the heliocentric -> barycentric step does something
    # of the right size (Sun-barycentre offset: up to ~0.01 au ~ 5 s), and
    # that ignoring it would be wrong by more than our accuracy.
    ours = to_mjd_tdb(_TIMES, "ztf.hmjd", ra=_RA, dec=_DEC)
    t = Time(_TIMES, format="mjd", scale="utc")
    naive_tdb = t.tdb
    shift_s = (ours - (naive_tdb.jd1 - 2400000.5) - naive_tdb.jd2) * 86400
    assert np.abs(shift_s).max() < 10
    assert np.abs(shift_s).max() > 0.01


def test_panstarrs_is_tai_not_utc(offline_iers):
    coord = SkyCoord(150 * u.deg, 2 * u.deg)
    value = np.array([56000.3])
    ours = to_mjd_tdb(value, "panstarrs.mjd", ra=coord)
    as_utc = Time(value, format="mjd", scale="utc", location=ts.OBSERVATORIES["haleakala"])
    as_utc_bary = (as_utc.tdb + as_utc.light_travel_time(coord, "barycentric")).tdb
    # TAI - UTC was 34 s in 2012: reading obsTime as UTC would be 34 s late
    # (plus ~1 ms because the light-travel time changes by v/c over 34 s).
    assert_allclose(seconds_apart(ours, as_utc_bary), 34.0, atol=0.01)


def test_skycoord_and_scalar_coordinates():
    values = np.array([58000.1, 58100.2, 58200.3])
    coord = SkyCoord(30 * u.deg, -40 * u.deg)
    by_coord = to_mjd_tdb(values, "wise.mjd", ra=coord)
    by_angles = to_mjd_tdb(values, "wise.mjd", ra=30 * u.deg, dec=-40 * u.deg)
    per_value = to_mjd_tdb(
        values, "wise.mjd", ra=np.full(3, 30.0) * u.deg, dec=np.full(3, -40.0) * u.deg
    )
    assert_allclose(by_coord, by_angles, rtol=0, atol=1e-12)
    assert_allclose(by_coord, per_value, rtol=0, atol=1e-12)


def test_shape_and_quantity_input():
    values = np.array([[58000.1, 58000.2], [58000.3, 58000.4]])
    result = to_mjd_tdb(values, "wise.mjd", ra=1 * u.deg, dec=2 * u.deg)
    assert result.shape == (2, 2)
    assert result.dtype == np.float64
    quantity = to_mjd_tdb(values * u.day, "wise.mjd", ra=1 * u.deg, dec=2 * u.deg)
    assert_allclose(quantity, result, rtol=0, atol=0)
    assert to_mjd_tdb([], "wise.mjd").shape == (0,)
    scalar = to_mjd_tdb(1.0, "tess.btjd")
    assert scalar.shape == () and scalar == 57000.5


# --- errors ---------------------------------------------------------------


def test_unknown_system_lists_known_ones():
    with pytest.raises(ts.UnknownTimeSystemError) as info:
        to_mjd_tdb([1.0], "ztf.mjd")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, ValueError)
    message = str(err)
    assert "ztf.mjd" in message
    for name in ("ztf.hmjd", "kepler.bkjd", "gaia.tcb_jd2010", "icecube.mjd_ut1"):
        assert name in message


def test_nan_times_raise_with_count():
    with pytest.raises(ValueError, match=r"2 of 3 times in system 'tess.btjd'"):
        to_mjd_tdb([1.0, np.nan, np.nan], "tess.btjd")
    with pytest.raises(ValueError, match="ztf.hmjd"):
        to_mjd_tdb([np.inf], "ztf.hmjd", ra=1 * u.deg, dec=1 * u.deg)


def test_missing_or_bad_coordinates():
    with pytest.raises(ValueError, match="needs the target position"):
        to_mjd_tdb([58000.0], "ztf.hmjd")
    with pytest.raises(TypeError, match="Quantities"):
        to_mjd_tdb([58000.0], "ztf.hmjd", ra=10.0, dec=20.0)
    with pytest.raises(ValueError, match="one per time"):
        to_mjd_tdb([58000.0, 58001.0, 58002.0], "wise.mjd", ra=[1, 2] * u.deg, dec=[1, 2] * u.deg)
    with pytest.raises(TypeError, match="SkyCoord"):
        to_mjd_tdb([58000.0], "wise.mjd", ra=SkyCoord(1 * u.deg, 1 * u.deg), dec=1 * u.deg)


def test_registry_contents():
    assert set(TIME_SYSTEMS) == {
        "mjd_tdb_bary",
        "ztf.hmjd",
        "panstarrs.mjd",
        "wise.mjd",
        "gaia.tcb_jd2010",
        "tess.btjd",
        "kepler.bkjd",
        "k2.bkjd",
        "mjd_utc_geocentric",
        "icecube.mjd_ut1",
    }
    for system in TIME_SYSTEMS.values():
        assert system.description and system.citation
        assert system.needs_coordinates == (system.reference != "barycentric")
    assert TIME_SYSTEMS["panstarrs.mjd"].scale == "tai"
    assert TIME_SYSTEMS["icecube.mjd_ut1"].scale == "ut1"
    assert TIME_SYSTEMS["gaia.tcb_jd2010"].scale == "tcb"
    # TimeSystem.to_mjd_tdb is the same conversion.
    assert TIME_SYSTEMS["tess.btjd"].to_mjd_tdb([0.0])[0] == 56999.5


# --- the per-process store of whole-day values ----------------------------
def test_day_store_serves_later_calls_and_threads_the_same_values(offline_iers, monkeypatch):
    """Values come from the store after the first call (no second evaluation
    of a day), equal those of a fresh computation, and stay right when the
    store starts over or many threads fill it at once."""
    import concurrent.futures as cf

    monkeypatch.setattr(ts, "_day_stores", {})
    reference = {name: to_mjd_tdb(_TIMES, name, ra=_RA, dec=_DEC)
                 for name in ("ztf.hmjd", "panstarrs.mjd", "icecube.mjd_ut1")}
    computed = []
    real = ts._posvel_at

    def counting(body, ephemeris):
        compute = real(body, ephemeris)

        def wrapped(days):
            computed.append(len(days))
            return compute(days)
        return wrapped

    monkeypatch.setattr(ts, "_day_stores", {})
    monkeypatch.setattr(ts, "_posvel_at", counting)
    first = to_mjd_tdb(_TIMES, "ztf.hmjd", ra=_RA, dec=_DEC)
    n_first = len(computed)
    again = to_mjd_tdb(_TIMES[::-1], "ztf.hmjd", ra=_RA[::-1], dec=_DEC[::-1])
    assert len(computed) == n_first and n_first > 0     # nothing evaluated again
    np.testing.assert_array_equal(first, reference["ztf.hmjd"])
    np.testing.assert_array_equal(again[::-1], reference["ztf.hmjd"])

    # a store that starts over (tiny limit) and 8 threads at once: same values
    monkeypatch.setattr(ts, "_day_stores", {})
    monkeypatch.setattr(ts, "_MAX_STORED_DAYS", 50)
    rng = np.random.default_rng(3)
    jobs = [(name, rng.permutation(_TIMES.size)) for name in reference for _ in range(6)]
    with cf.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda job: (job, to_mjd_tdb(
            _TIMES[job[1]], job[0], ra=_RA[job[1]], dec=_DEC[job[1]])), jobs))
    for (name, order), values in got:
        np.testing.assert_array_equal(values, reference[name][order])


def test_day_store_follows_the_solar_system_ephemeris(offline_iers, monkeypatch):
    """Positions are stored per ephemeris: changing it never serves old ones."""
    monkeypatch.setattr(ts, "_day_stores", {})
    to_mjd_tdb(_TIMES, "ztf.hmjd", ra=_RA, dec=_DEC)
    assert ("earth", "builtin") in ts._day_stores
    seen = []
    real = ts._posvel_at

    def spy(body, ephemeris):
        seen.append(ephemeris)
        return real(body, "builtin")         # no download in the test
    monkeypatch.setattr(ts, "_posvel_at", spy)
    # as if solar_system_ephemeris.set("de432s") (which needs jplephem)
    monkeypatch.setattr(ts.solar_system_ephemeris, "get", classmethod(lambda cls: "de432s"))
    to_mjd_tdb(_TIMES, "ztf.hmjd", ra=_RA, dec=_DEC)
    assert set(seen) == {"de432s"} and ("earth", "de432s") in ts._day_stores
