"""Bridges to astropy TimeSeries, lightkurve and nested-pandas (issues 11 and 12)."""
import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time
from astropy.timeseries import TimeSeries

from multilc import MultiBandLightCurve, make_events
from multilc.errors import InputError


def mjd(values):
    return Time(values, format="mjd", scale="tdb")


@pytest.fixture
def lc():
    cal = MultiBandLightCurve.from_arrays(
        [1, 1, 1, 2], ["ztf:g", "ztf:g", "wise:W1", "gaia:G"],
        mjd([58000.123456789, 58001.5, 58002.0, 58003.25]),
        [1.0, 1.5, -0.002, 3.0] * u.mJy, [0.1, 0.15, 0.2, 0.3] * u.mJy,
        mag=[16.4, 15.96, np.nan, 15.2] * u.mag, upper_limit=[False, False, True, False],
        flag=[0, 1 << 40, 3, 0], separation=[0.1, 0.2, 0.3, 0.4] * u.arcsec,
        name={1: "Mrk 590", 2: "3C 273"}, label={1: "Yang 18", 2: "SDSS"},
        ra={1: 33.6 * u.deg, 2: 187.28 * u.deg}, dec={1: -0.77 * u.deg, 2: 2.05 * u.deg})
    tess = MultiBandLightCurve.from_arrays(
        [1, 1, 1], ["tess:TESS"] * 3, mjd([59000.0, 59000.02, 59000.04]),
        [100.0, 101.0, 99.5] * u.electron / u.s, [1.0, 1.0, 1.1] * u.electron / u.s,
        flag=[0, 0, 0], upper_limit=[False] * 3, separation=[0.1] * 3 * u.arcsec,
        mag=[np.nan] * 3 * u.mag,
        band_meta={"tess:TESS": {"band_notes": "SPOC; sector 27"}})
    return cal + tess


def test_timeseries_one_per_object_and_band(lc):
    series = lc.to_timeseries()
    assert sorted(series) == [(1, "tess:TESS"), (1, "wise:W1"), (1, "ztf:g"), (2, "gaia:G")]
    g = series[(1, "ztf:g")]
    assert isinstance(g, TimeSeries)
    np.testing.assert_array_equal(g["flux"].to_value(u.mJy), [1.0, 1.5])
    assert g["flux"].unit == u.mJy
    assert series[(1, "tess:TESS")]["flux"].unit == u.electron / u.s
    assert g.meta["multilc"]["name"] == "Mrk 590" and g.meta["OBJECT"] == "Mrk 590"
    # periodogram-ready: time in the TDB scale, values as stored
    np.testing.assert_array_equal(g.time.tdb.mjd, [58000.123456789, 58001.5])
    single = lc.to_timeseries(objectid=2, band="gaia:G")
    assert isinstance(single, TimeSeries) and len(single) == 1


def test_timeseries_round_trip(lc):
    back = MultiBandLightCurve.from_timeseries(lc.to_timeseries())
    assert back == lc


def test_timeseries_foreign_series_needs_object_and_band():
    ts = TimeSeries(time=mjd([58000.0, 58001.0]))
    ts["flux"] = [2.0, 3.0] * u.Jy
    with pytest.raises(InputError, match="objectid"):
        MultiBandLightCurve.from_timeseries(ts)
    lc = MultiBandLightCurve.from_timeseries(ts, objectid=5, band="ztf:r", name="X")
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), [2000.0, 3000.0])
    assert lc.names == {5: "X"}
    assert np.isnan(lc.flux_err.value).all()


def test_lightkurve_round_trip_and_tools(lc):
    lk = pytest.importorskip("lightkurve")
    coll = lc.to_lightkurve()
    assert isinstance(coll, lk.LightCurveCollection) and len(coll) == 4
    tess = lc.to_lightkurve(objectid=1, band="tess:TESS")
    assert isinstance(tess, lk.LightCurve)
    assert tess.meta["MISSION"] == "TESS" and tess.meta["OBJECT"] == "Mrk 590"
    np.testing.assert_allclose(tess.flux.to_value(u.electron / u.s), [100.0, 101.0, 99.5])
    # lightkurve's own tools work on it: normalize divides by the median
    np.testing.assert_allclose(tess.normalize().flux.value, np.array([100, 101, 99.5]) / 100)
    assert MultiBandLightCurve.from_lightkurve(coll) == lc


def test_from_foreign_lightkurve():
    lk = pytest.importorskip("lightkurve")
    t = Time([2000.0, 2000.1, 2000.2, 2000.3], format="btjd", scale="tdb")
    t[2] = np.ma.masked  # TESS files have rows without a time
    one = lk.LightCurve(time=t, flux=[10.0, 11.0, 12.0, 13.0] * u.electron / u.s,
                        flux_err=[1.0] * 4 * u.electron / u.s)
    one["quality"] = np.array([0, 8, 0, 0], dtype="int32")
    one.meta.update({"MISSION": "TESS", "OBJECT": "TIC 12345"})
    with pytest.warns(UserWarning, match="1 rows without a time"):
        lc = MultiBandLightCurve.from_lightkurve(one, objectid=7)
    assert lc.bands == ["tess:TESS"] and len(lc) == 3
    assert lc.names == {7: "TIC 12345"}
    np.testing.assert_allclose(lc.time.mjd, t[[0, 1, 3]].tdb.mjd, rtol=0, atol=1e-9)
    assert lc.flag.tolist() == [0, 8, 0]
    with pytest.raises(InputError, match="normalized"):
        MultiBandLightCurve.from_lightkurve(one.normalize(), objectid=7)


def test_nested_round_trip(lc):
    pytest.importorskip("nested_pandas")
    ev = MultiBandLightCurve.from_events(make_events(
        [2, 3], ["icecube", "icecube"], mjd([58100.0, 58200.0]), event_id=["a", "b"],
        energy=[10.0, 20.0] * u.GeV), name={3: "only events"})
    nodata = MultiBandLightCurve.from_objects([9], name=["empty"], ra=[1.0] * u.deg,
                                              dec=[2.0] * u.deg)
    full = MultiBandLightCurve.concat([lc, ev, nodata])
    full.meta = {"run": "test"}
    nf = full.to_nested()
    assert list(nf.index) == [1, 2, 3, 9]
    assert nf.loc[1, "name"] == "Mrk 590"
    flat = nf["lightcurve"].nest.to_flat()
    assert len(flat.loc[1]) == 6 and len(flat) == len(full)
    back = MultiBandLightCurve.from_nested(nf)
    assert back.names == full.names
    assert back.meta == {"run": "test"}
    assert back == full
