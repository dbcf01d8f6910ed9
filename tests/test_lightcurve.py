"""Tests of the MultiBandLightCurve data model."""
import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.table import QTable
from astropy.time import Time

from multilc import LightCurveError, MultiBandLightCurve, make_events


def mjd(values, scale="tdb"):
    return Time(values, format="mjd", scale=scale)


@pytest.fixture
def lc():
    return MultiBandLightCurve.from_arrays(
        objectid=[2, 1, 1, 1], band=["gaia:G", "ztf:g", "ztf:g", "wise:W1"],
        time=mjd([58002.0, 58001.0, 58000.0, 58003.0]),
        flux=[3.0, 1.5, 1.0, 2.0] * u.mJy, flux_err=[0.3, 0.15, 0.1, 0.2] * u.mJy,
        label={1: "Yang 18", 2: "SDSS"}, ra={1: 10 * u.deg, 2: 20 * u.deg},
        dec={1: -5 * u.deg, 2: 5 * u.deg})


@pytest.fixture
def tess_lc():
    return MultiBandLightCurve.from_arrays(
        objectid=[3, 3], band=["tess:TESS", "tess:TESS"], time=mjd([58010.0, 58011.0]),
        flux=[100.0, 110.0] * u.electron / u.s, flux_err=[1.0, 1.1] * u.electron / u.s)


def test_issue_example_api():
    lc = MultiBandLightCurve.from_arrays(
        objectid=[1, 1, 2], band=["ztf:g", "wise:W1", "gaia:G"],
        time=Time([58000.0, 58001.0, 58002.0], format="mjd", scale="tdb"),
        flux=[1.0, 2.0, 3.0] * u.mJy, flux_err=[0.1, 0.2, 0.3] * u.mJy,
        label={1: "Yang 18", 2: "SDSS"})
    assert isinstance(lc.time, Time) and lc.time.scale == "tdb"
    assert lc.flux.unit == u.mJy and lc.flux_err.unit == u.mJy
    df = lc.to_pandas()
    assert list(df.index.names) == ["objectid", "label", "band", "time"]
    assert list(df.columns) == ["flux", "err"]
    assert df.loc[(2, "SDSS", "gaia:G", 58002.0), "flux"] == 3.0


def test_sorted_by_object_band_time(lc):
    assert list(lc.objectid) == [1, 1, 1, 2]
    assert list(lc.band) == ["wise:W1", "ztf:g", "ztf:g", "gaia:G"]
    np.testing.assert_array_equal(lc.time.mjd, [58003.0, 58000.0, 58001.0, 58002.0])
    # flux travelled with its row
    np.testing.assert_array_equal(lc.flux.value, [2.0, 1.0, 1.5, 3.0])
    assert len(lc) == 4
    assert list(lc.objectids) == [1, 2]
    assert lc.bands == ["gaia:G", "wise:W1", "ztf:g"]


def test_units_converted_on_input():
    lc = MultiBandLightCurve.from_arrays(
        [1], ["ztf:g"], mjd([58000.0]), [2.0] * u.Jy, [0.5] * u.Jy)
    assert lc.flux.to_value(u.mJy)[0] == pytest.approx(2000.0)
    assert lc.ds["flux"].attrs["units"] == "mJy"


def test_time_scale_converted_on_input():
    t_utc = Time([58000.0], format="mjd", scale="utc")
    lc = MultiBandLightCurve.from_arrays([1], ["ztf:g"], t_utc, [1] * u.mJy, [1] * u.mJy)
    # TT - UTC in 2017 is 69.184 s (37 leap seconds + 32.184 s); TDB-TT < 2 ms
    assert (lc.time.mjd[0] - 58000.0) * 86400 == pytest.approx(69.184, abs=0.002)


def test_flux_density_per_wavelength_uses_band_wavelength():
    from multilc.photometry import get_band

    wav = get_band("ztf:g").wavelength
    flam = 1e-16 * u.erg / u.s / u.cm**2 / u.AA
    lc = MultiBandLightCurve.from_arrays([1], ["ztf:g"], mjd([58000.0]), [flam.value] *
                                         flam.unit, [flam.value / 10] * flam.unit)
    # F_nu = F_lambda * lambda^2 / c
    expected = (flam * wav**2 / (2.99792458e18 * u.AA / u.s)).to_value(u.mJy)
    assert lc.flux.value[0] == pytest.approx(expected, rel=1e-9)


def test_instrumental_bands_never_mjy(lc, tess_lc):
    both = MultiBandLightCurve.concat([lc, tess_lc])
    with pytest.raises(u.UnitsError, match="tess:TESS"):
        _ = both.flux
    with pytest.raises(u.UnitsError, match="tess:TESS"):
        both.get_flux(u.Jy)
    assert tess_lc.flux.unit == u.electron / u.s
    np.testing.assert_array_equal(both.select(calibrated=False).flux.value, [100.0, 110.0])
    assert both.select(calibrated=True).flux.unit == u.mJy
    with pytest.raises(u.UnitsError, match="gaia:G"):
        both.get_flux(u.electron / u.s)
    # the mJy column of an instrumental band holds NaN, never a count rate
    df = both.to_pandas()
    assert df.xs("tess:TESS", level="band")["flux"].isna().all()
    assert df.attrs["units"]["flux_instrumental"] == "electron / s"


def test_instrumental_flux_given_in_mjy_is_refused():
    with pytest.raises(u.UnitsError, match="kepler:Kepler"):
        MultiBandLightCurve.from_arrays([1], ["kepler:Kepler"], mjd([55000.0]),
                                        [1.0] * u.mJy, [0.1] * u.mJy)


def test_get_flux_other_units(lc):
    f_jy, e_jy = lc.get_flux(u.Jy)
    np.testing.assert_allclose(f_jy.value, lc.flux.value / 1000)
    f_lam, _ = lc.get_flux(u.erg / u.s / u.cm**2 / u.AA)
    wav = lc.ds["wavelength"].values[lc.ds["obs_band"].values] * u.AA
    c = 2.99792458e18 * u.AA / u.s
    expected = (lc.flux * c / wav**2).to_value(u.erg / u.s / u.cm**2 / u.AA)
    np.testing.assert_allclose(f_lam.value, expected, rtol=1e-9)


def test_to_abmag(lc):
    mag, mag_err = lc.to_abmag()
    # astropy's AB definition (0 AB = 3630.78 Jy, not the rounded 3631 Jy):
    # 1 mJy is AB 16.4 exactly
    expected = lc.flux.to(u.ABmag).value
    np.testing.assert_allclose(mag.value, expected, rtol=0, atol=1e-12)
    assert abs(mag.value[lc.flux.value == 1.0][0] - 16.4) < 1e-12
    np.testing.assert_allclose(mag_err.value, 1.0857362047581294 * lc.flux_err.value /
                               lc.flux.value)


def test_non_positive_flux_kept_nan_mag():
    lc = MultiBandLightCurve.from_arrays([1, 1], ["wise:W1", "wise:W1"],
                                         mjd([58000.0, 58001.0]), [-0.1, 0.2] * u.mJy,
                                         [0.1, 0.1] * u.mJy, upper_limit=[True, False])
    mag, _ = lc.to_abmag()
    assert len(lc) == 2
    assert np.isnan(mag[0]) and np.isfinite(mag[1])
    assert list(lc.upper_limit) == [True, False]


@pytest.mark.parametrize("kwargs, match", [
    (dict(objectid=[1, 2], band=["ztf:g"], time=mjd([1.0]), flux=[1] * u.mJy,
          flux_err=[1] * u.mJy), "band has 1 values but there are 2"),
    (dict(objectid=[1], band=["ztf:g"], time=mjd(np.ma.masked_invalid([np.nan])),
          flux=[1] * u.mJy, flux_err=[1] * u.mJy), "missing"),
    (dict(objectid=[1], band=["ztf:q"], time=mjd([1.0]), flux=[1] * u.mJy,
          flux_err=[1] * u.mJy), "ztf:q"),
    (dict(objectid=[1], band=["ztf:g"], time=[1.0], flux=[1] * u.mJy,
          flux_err=[1] * u.mJy), "astropy.time.Time"),
])
def test_bad_input_messages(kwargs, match):
    with pytest.raises((LightCurveError, KeyError, ValueError), match=match):
        MultiBandLightCurve.from_arrays(**kwargs)


def test_flux_without_unit_refused():
    with pytest.raises(u.UnitsError, match="Quantit"):
        MultiBandLightCurve.from_arrays([1], ["ztf:g"], mjd([1.0]), [1.0], [0.1])


def test_flux_wrong_unit_refused():
    with pytest.raises(u.UnitsError, match="ztf:g"):
        MultiBandLightCurve.from_arrays([1], ["ztf:g"], mjd([1.0]), [1.0] * u.s,
                                        [0.1] * u.s)


def test_validation_rejects_bad_dataset(lc):
    ds = lc.ds.copy()
    ds["flux"].attrs["units"] = "not_a_unit"
    with pytest.raises(LightCurveError, match="unparseable units"):
        MultiBandLightCurve(ds)
    with pytest.raises(LightCurveError, match="lacks variables"):
        MultiBandLightCurve(lc.ds.drop_vars("flux_err"))
    ds = lc.ds.copy()
    ds["obs_band"] = ds["obs_band"] + 10
    with pytest.raises(LightCurveError, match="outside the band"):
        MultiBandLightCurve(ds)


def test_select(lc):
    sub = lc.select(band="ztf:g")
    assert sub.bands == ["ztf:g"] and len(sub) == 2 and list(sub.objectids) == [1]
    assert len(lc.select(objectid=2)) == 1
    assert len(lc.select(archive=["ztf", "wise"])) == 3
    t = lc.select(time_range=mjd([58000.5, 58002.0]))
    np.testing.assert_array_equal(np.sort(t.time.mjd), [58001.0, 58002.0])
    assert len(lc.select(label="SDSS")) == 1
    # codes stay consistent after subsetting
    assert list(sub.band) == ["ztf:g", "ztf:g"]


def test_iteration_per_object(lc):
    seen = {oid: len(part) for oid, part in lc}
    assert seen == {1: 3, 2: 1}
    for oid, part in lc:
        assert list(part.objectids) == [oid]


def test_concat_merges_objects_and_bands(lc, tess_lc):
    extra = MultiBandLightCurve.from_arrays(
        [1], ["ztf:r"], mjd([58005.0]), [5.0] * u.mJy, [0.5] * u.mJy,
        label={1: "MacLeod 16"}, ra={1: 10 * u.deg}, dec={1: -5 * u.deg})
    both = MultiBandLightCurve.concat([lc, tess_lc, extra])
    assert len(both) == len(lc) + len(tess_lc) + 1
    assert both.labels[1] == "Yang 18; MacLeod 16"
    assert set(both.bands) == {"gaia:G", "wise:W1", "ztf:g", "ztf:r", "tess:TESS"}
    sel = both.select(objectid=1, band="ztf:r")
    assert sel.flux.value.tolist() == [5.0]


def test_concat_conflicting_positions_refused(lc):
    moved = MultiBandLightCurve.from_arrays(
        [1], ["ztf:r"], mjd([58005.0]), [5.0] * u.mJy, [0.5] * u.mJy,
        ra={1: 11 * u.deg}, dec={1: -5 * u.deg})
    with pytest.raises(LightCurveError, match="object 1 has two different positions"):
        MultiBandLightCurve.concat([lc, moved])


def test_concat_fills_missing_optional_columns(lc):
    with_mag = MultiBandLightCurve.from_arrays(
        [5], ["ztf:g"], mjd([58000.0]), [1.0] * u.mJy, [0.1] * u.mJy,
        mag=[16.4] * u.mag, flag=[32768], source_id=[123456789012])
    both = MultiBandLightCurve.concat([lc, with_mag])
    assert np.isnan(both.mag.value[:4]).all() and both.mag.value[4] == 16.4
    assert list(both.flag) == [0, 0, 0, 0, 32768]
    assert list(both.source_id) == [-1, -1, -1, -1, 123456789012]


def test_events_separate_from_flux(lc):
    ev = make_events([1, 2], ["icecube", "heasarc.fermi_gbm"], mjd([58100.0, 58050.0]),
                     event_id=["IC-1", "GRB170101"], energy=[1e4, np.nan] * u.GeV,
                     error_radius=[0.5, 3.0] * u.deg, separation=[0.2, 1.0] * u.deg)
    with_ev = MultiBandLightCurve.concat([lc, MultiBandLightCurve.from_events(ev)])
    assert with_ev.n_events == 2 and len(with_ev) == len(lc)
    t = with_ev.events
    assert t["energy"].unit == u.GeV and isinstance(t["time"], Time)
    assert dict(zip(t["event_id"], t["archive"])) == {"IC-1": "icecube",
                                                      "GRB170101": "heasarc.fermi_gbm"}
    assert "icecube" in with_ev.archives
    # events are not in the flux table
    assert "icecube" not in with_ev.bands
    photometry, events = with_ev.to_pandas(events=True)
    assert len(events) == 2 and events.attrs["units"]["energy"] == "GeV"
    assert with_ev.select(archive="icecube").n_events == 1
    assert with_ev.select(band="ztf:g").n_events == 0


def test_event_energy_units_converted():
    ev = make_events([1], "icecube", mjd([58000.0]), energy=[2.0] * u.TeV)
    assert MultiBandLightCurve.from_events(ev).events["energy"].to_value(u.GeV)[0] == 2000


def test_to_pandas_long_and_extra_columns(lc):
    long = lc.to_pandas(layout="long")
    assert {"objectid", "label", "band", "time", "flux", "flux_err"} <= set(long.columns)
    assert long.attrs["time_scale"] == "tdb"
    with pytest.raises(KeyError, match="mag"):
        lc.to_pandas(columns=["mag"])


def test_to_table(lc):
    t = lc.to_table()
    assert isinstance(t, QTable) and isinstance(t["time"], Time)
    assert t["flux"].unit == u.mJy and len(t) == 4


def test_from_table_roundtrip(lc):
    t = lc.to_table()
    back = MultiBandLightCurve.from_table(t)
    np.testing.assert_array_equal(back.flux.value, lc.flux.value)
    assert back.labels == lc.labels


def test_from_pandas_legacy_multiindex():
    legacy = pd.DataFrame({
        "objectid": [1, 1, 1, 2, 2], "label": ["Yang 18"] * 3 + ["SDSS"] * 2,
        "band": ["zg", "W1", "IceCube", "TESS", "G"],
        "time": [58000.0, 58001.0, 58002.0, 58003.0, 58004.0],
        "flux": [1.0, 2.0, 3.5, 500.0, 4.0], "err": [0.1, 0.2, 0.0, 5.0, 0.4],
    }).set_index(["objectid", "label", "band", "time"])
    with pytest.raises(u.UnitsError, match="flux_unit"):
        MultiBandLightCurve.from_pandas(legacy)
    lc = MultiBandLightCurve.from_pandas(legacy, flux_unit=u.mJy)
    assert set(lc.bands) == {"ztf:g", "wise:W1", "tess:TESS", "gaia:G"}
    # the IceCube "flux" (log10 GeV) became an event, not a flux
    assert lc.n_events == 1 and lc.events["archive"][0] == "icecube"
    assert lc.events["energy"][0].to_value(u.GeV) == pytest.approx(10 ** 3.5)
    assert lc.select(calibrated=False).flux.unit == u.electron / u.s
    assert lc.labels == {1: "Yang 18", 2: "SDSS"}


def test_from_pandas_roundtrip_long(lc):
    back = MultiBandLightCurve.from_pandas(lc.to_pandas(layout="long"))
    np.testing.assert_array_equal(back.flux.value, lc.flux.value)
    np.testing.assert_array_equal(back.time.mjd, lc.time.mjd)


def test_from_pandas_unknown_legacy_band():
    df = pd.DataFrame({"objectid": [1], "band": ["Rubin u"], "time": [1.0],
                       "flux": [1.0], "err": [0.1]})
    with pytest.raises(LightCurveError, match="band_map"):
        MultiBandLightCurve.from_pandas(df, flux_unit=u.mJy)


def test_memory_per_measurement():
    n = 100_000
    rng = np.random.default_rng(1)
    lc = MultiBandLightCurve.from_arrays(
        rng.integers(0, 500, n), rng.choice(["ztf:g", "ztf:r", "wise:W1"], n),
        mjd(rng.uniform(55000, 60000, n)), rng.uniform(0, 1, n) * u.mJy,
        rng.uniform(0, 1, n) * u.mJy)
    assert lc.nbytes() / n <= 40


def test_empty():
    lc = MultiBandLightCurve.empty()
    assert len(lc) == 0 and lc.n_events == 0 and lc.bands == []
    assert len(MultiBandLightCurve.concat([])) == 0
    assert len(lc.to_pandas()) == 0


# --------------------------------------------------------------------------- engine joins
def _random_pieces(seed, n_pieces=6):
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(n_pieces):
        n = int(rng.integers(5, 40))
        oid = rng.choice([1, 2, 3, 4, 5, 6, 7, 8], n)
        band = rng.choice(["ztf:g", "ztf:r"], n)
        pieces.append(MultiBandLightCurve.from_arrays(
            oid, band, Time(rng.uniform(58000, 59000, n), format="mjd", scale="tdb"),
            rng.normal(1, 0.1, n) * u.mJy, np.full(n, 0.05) * u.mJy,
            source_id=rng.integers(0, 10**12, n),
            ra={o: (10.0 + o) * u.deg for o in range(1, 9)},
            dec={o: (-5.0 + o) * u.deg for o in range(1, 9)}))
    return pieces


def test_consuming_concat_equals_concat_and_frees_the_pieces():
    """The engine's join (consume=True) gives exactly concat's result, and the
    pieces' measurement columns are gone (freed) afterwards."""
    expected = MultiBandLightCurve.concat(_random_pieces(4), duplicates="keep")
    pieces = _random_pieces(4)
    got = MultiBandLightCurve._concat_pieces(pieces, duplicates="keep", consume=True)
    assert got == expected
    for p in pieces:
        assert not {"time", "flux", "flux_err", "obs_object", "source_id"} & set(p._cols)
        assert "objectid" in p._cols                    # objects are not taken


def test_object_metadata_join_shares_measurements_and_equals_concat():
    """Adding a sample's targets copies no measurement and gives what
    concatenating with the targets' object table gave."""
    from multilc.lightcurve import _with_object_metadata

    lc = MultiBandLightCurve.concat(_random_pieces(7), duplicates="keep")
    ids = np.array([9, 2, 11, 5])
    labels = np.array(["new", "sample two", "other", "sample five"], dtype=object)
    ra, dec = np.array([50.0, 12.0, 51.0, 15.0]), np.array([1.0, -3.0, 2.0, 0.0])
    names = np.array(["Nine", "", "Eleven", "Five"], dtype=object)
    flux_before = lc._columns()["flux"]
    out = _with_object_metadata(lc, ids, labels, ra, dec, name=names, add=True)
    assert np.shares_memory(out._columns()["flux"], flux_before)
    assert list(out.objectids) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    ds = out.ds
    by_id = {int(o): i for i, o in enumerate(ds["objectid"].values)}
    assert ds["label"].values[by_id[2]] == "sample two"
    assert ds["name"].values[by_id[5]] == "Five" and ds["name"].values[by_id[2]] == ""
    assert ds["ra"].values[by_id[11]] == 51.0 and ds["dec"].values[by_id[2]] == -3.0
    assert len(out.select(objectid=9).time) == 0
    # the same measurements per object as before, objects renumbered
    for oid in range(1, 9):
        np.testing.assert_array_equal(out.select(objectid=oid).flux.value,
                                      lc.select(objectid=oid).flux.value)
    # the former way: targets' object table concatenated with the data
    targets = MultiBandLightCurve.from_objects(
        ids, label=labels, ra=ra * u.deg, dec=dec * u.deg, name=names)
    filled = _with_object_metadata(lc, ids, labels, ra, dec)
    former = MultiBandLightCurve.concat([targets, filled], duplicates="keep")
    assert out == former
