"""Names, indexing, duplicates, metadata and the table round trip (issue 11)."""
import json
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable
from astropy.time import Time

from multilc import LightCurveError, MultiBandLightCurve, make_events, photometry
from multilc.errors import InputError, MultilcError
from multilc.lightcurve import DuplicateDataWarning, ObjectNotFoundError, SelectionError


def mjd(values):
    return Time(values, format="mjd", scale="tdb")


@pytest.fixture
def lc():
    return MultiBandLightCurve.from_arrays(
        objectid=[4, 4, 4, 7, 7], band=["ztf:g", "ztf:g", "ztf:r", "wise:W1", "wise:W1"],
        time=mjd([58000.0, 58001.0, 58000.5, 58002.0, 58003.0]),
        flux=[1.0, 1.2, 2.0, 3.0, 3.3] * u.mJy, flux_err=[0.1] * 5 * u.mJy,
        name={4: "Mrk 590", 7: "NGC 4151"}, label={4: "Yang 18", 7: "Yang 18; SDSS"},
        ra={4: 33.6398 * u.deg, 7: 182.6358 * u.deg},
        dec={4: -0.7667 * u.deg, 7: 39.4057 * u.deg})


@pytest.fixture
def mixed():
    """Calibrated + TESS + events + an object without data, with meta and report."""
    cal = MultiBandLightCurve.from_arrays(
        [1, 1, 2], ["ztf:g", "wise:W1", "gaia:G"], mjd([58000.1, 58001.5, 58002.25]),
        [1.0, -0.002, 3.0] * u.mJy, [0.1, 0.2, 0.3] * u.mJy,
        mag=[16.4, np.nan, 15.2] * u.mag, upper_limit=[False, True, False],
        flag=[0, 3, 1 << 40], separation=[0.1, 0.2, 0.3] * u.arcsec,
        name={1: "Mrk 590", 2: "3C 273"}, label={1: "Yang 18", 2: "SDSS"},
        ra={1: 33.6 * u.deg, 2: 187.28 * u.deg}, dec={1: -0.77 * u.deg, 2: 2.05 * u.deg})
    tess = MultiBandLightCurve.from_arrays(
        [3, 3], ["tess:TESS"] * 2, mjd([59000.0, 59000.02]),
        [100.0, 101.0] * u.electron / u.s, [1.0, 1.0] * u.electron / u.s,
        name={3: "TIC 1"}, band_meta={"tess:TESS": {"band_notes": "SPOC; sector 27"}})
    ev = MultiBandLightCurve.from_events(make_events(
        [1, 5], ["icecube", "heasarc.bepposax"], mjd([58100.0, 51000.5]),
        event_id=["IC1", "GRB 980425"], energy=[2500.0, np.nan] * u.GeV,
        error_radius=[0.5, 2.0] * u.deg, separation=[0.3, 1.2] * u.deg),
        name={5: "GRB host"})
    nodata = MultiBandLightCurve.from_objects([9], name=["No data galaxy"],
                                              ra=[10.0] * u.deg, dec=[20.0] * u.deg)
    out = MultiBandLightCurve.concat([cal, tess, ev, nodata])
    out.meta = {"created_by": "test", "radius_arcsec": 1.0}
    out.report = {"failures": [{"archive": "ztf", "objectids": [2]}], "requests": {"ztf": 3}}
    return out


# ----------------------------------------------------------------------------- names
def test_names_stored_and_shown(lc):
    assert lc.names == {4: "Mrk 590", 7: "NGC 4151"}
    assert list(lc.objects["name"]) == ["Mrk 590", "NGC 4151"]
    assert "Mrk 590" in repr(lc) and "NGC 4151" in repr(lc)
    assert "Mrk 590" in lc.summary()
    assert list(lc.ds["name"].dims) == ["object"]


def test_names_default_empty_and_per_measurement():
    lc = MultiBandLightCurve.from_arrays([1, 2], ["ztf:g", "ztf:g"], mjd([1.0, 2.0]),
                                         [1.0, 2.0] * u.mJy, [0.1, 0.1] * u.mJy)
    assert lc.names == {1: "", 2: ""}
    per_row = MultiBandLightCurve.from_arrays([2, 1, 2], ["ztf:g"] * 3, mjd([1, 2, 3.0]),
                                              [1, 2, 3.0] * u.mJy, [0.1] * 3 * u.mJy,
                                              name=["b", "a", "b"])
    assert per_row.names == {1: "a", 2: "b"}


def test_to_pandas_names(lc):
    df = lc.to_pandas()
    assert list(df.index.names) == ["objectid", "label", "band", "time"]
    col = lc.to_pandas(names="column")
    assert list(col.index.names) == ["objectid", "label", "band", "time"]
    assert col["name"].tolist() == ["Mrk 590"] * 3 + ["NGC 4151"] * 2
    idx = lc.to_pandas(names="index")
    assert list(idx.index.names) == ["objectid", "name", "label", "band", "time"]
    assert idx.loc[(7, "NGC 4151", "Yang 18; SDSS", "wise:W1", 58003.0), "flux"] == 3.3
    long = lc.to_pandas(layout="long", names="column")
    back = MultiBandLightCurve.from_pandas(long)
    assert back.names == lc.names
    assert MultiBandLightCurve.from_pandas(idx).names == lc.names


def test_concat_keeps_names_and_fills_missing(lc):
    other = MultiBandLightCurve.from_arrays([4, 8], ["gaia:G", "gaia:G"], mjd([1.0, 2.0]),
                                            [1.0, 2.0] * u.mJy, [0.1, 0.1] * u.mJy,
                                            name={8: "Ark 120"})
    both = lc + other
    assert both.names == {4: "Mrk 590", 7: "NGC 4151", 8: "Ark 120"}
    assert len(both) == len(lc) + 2


def test_with_names(lc):
    renamed = lc.with_names({7: "M 106?", 99: "not here"})
    assert renamed.names == {4: "Mrk 590", 7: "M 106?"}
    assert lc.names[7] == "NGC 4151"  # the original is unchanged


def test_coords(lc):
    c = lc.coords
    assert isinstance(c, SkyCoord) and len(c) == 2
    expected = SkyCoord(182.6358 * u.deg, 39.4057 * u.deg)
    assert c[1].separation(expected).to_value(u.arcsec) < 1e-6


# ----------------------------------------------------------------------------- indexing
def test_getitem_by_id_name_label(lc):
    one = lc[7]
    assert list(one.objectids) == [7] and len(one) == 2
    assert lc["Mrk 590"].objectids.tolist() == [4]
    assert len(lc["Mrk 590"]) == 3
    assert lc["SDSS"].objectids.tolist() == [7]  # unique label part
    assert lc[np.int64(4)].objectids.tolist() == [4]
    assert lc[[7, "Mrk 590"]].objectids.tolist() == [4, 7]


def test_getitem_errors(lc):
    with pytest.raises(ObjectNotFoundError, match="object 5 is not in"):
        lc[5]
    with pytest.raises(KeyError):
        lc["Ark 120"]
    with pytest.raises(SelectionError, match="2 objects"):
        lc["Yang 18"]  # label shared by both objects
    with pytest.raises(ObjectNotFoundError, match="is a band"):
        lc["ztf:g"]
    err = pytest.raises(ObjectNotFoundError, lc.__getitem__, 5).value
    assert isinstance(err, InputError) and isinstance(err, MultilcError)
    assert isinstance(err, ValueError) and "'" not in str(err)[:2]


def test_select_errors_not_empty(lc):
    with pytest.raises(ObjectNotFoundError):
        lc.select(objectid=[4, 5])
    with pytest.raises(SelectionError, match="reversed"):
        lc.select(time_range=mjd([58003.0, 58000.0]))
    with pytest.raises(SelectionError):
        lc.select(band="ztf:q")
    with pytest.raises(ObjectNotFoundError):
        lc.select(name="nobody")
    assert lc.select(name="NGC 4151").objectids.tolist() == [7]
    assert len(lc.select(band="ztf:g")) == 2


def test_lightcurve_error_types():
    assert issubclass(LightCurveError, MultilcError)
    assert issubclass(LightCurveError, ValueError)


# ----------------------------------------------------------------------------- duplicates
def test_concat_duplicates(lc):
    with pytest.warns(DuplicateDataWarning, match="5 measurements"):
        twice = lc + lc
    assert len(twice) == 10
    dropped = MultiBandLightCurve.concat([lc, lc], duplicates="drop")
    assert dropped == lc
    with pytest.raises(LightCurveError, match="more than once"):
        MultiBandLightCurve.concat([lc, lc], duplicates="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(MultiBandLightCurve.concat([lc, lc], duplicates="keep")) == 10
    with pytest.raises(InputError):
        MultiBandLightCurve.concat([lc, lc], duplicates="maybe")


def test_same_time_different_flux_is_not_duplicate():
    a = MultiBandLightCurve.from_arrays([1, 1], ["ztf:g"] * 2, mjd([1.0, 1.0]),
                                        [1.0, 2.0] * u.mJy, [0.1, 0.1] * u.mJy)
    b = MultiBandLightCurve.from_arrays([1], ["ztf:g"], mjd([1.0]), [1.0] * u.mJy,
                                        [0.1] * u.mJy)
    with pytest.warns(DuplicateDataWarning, match="1 measurements"):
        both = a + b
    assert len(both) == 3
    out = MultiBandLightCurve.concat([a, b], duplicates="drop")
    assert sorted(out.flux.value.tolist()) == [1.0, 2.0]


def test_event_duplicates_dropped():
    ev = MultiBandLightCurve.from_events(make_events([1], ["icecube"], mjd([58000.0]),
                                                     event_id=["IC1"]))
    out = MultiBandLightCurve.concat([ev, ev], duplicates="drop")
    assert out.n_events == 1
    # same object and time, two archives, interleaved: only true repeats go
    two = MultiBandLightCurve.from_events(make_events(
        [1, 1], ["icecube", "heasarc.fermi_gbm"], mjd([58000.0, 58000.0]),
        event_id=["IC1", "GBM1"]))
    out = MultiBandLightCurve.concat([two, two, two], duplicates="drop")
    assert sorted(out.events["event_id"].tolist()) == ["GBM1", "IC1"]


# ----------------------------------------------------------------------------- meta
def test_meta_and_report_in_attrs(mixed):
    attrs = mixed.ds.attrs
    assert json.loads(attrs["multilc_meta"]) == {"created_by": "test", "radius_arcsec": 1.0}
    assert json.loads(attrs["multilc_report"])["requests"] == {"ztf": 3}
    sub = mixed.select(objectid=1)
    assert sub.meta == mixed.meta
    assert json.loads(sub.ds.attrs["multilc_report"]) == json.loads(attrs["multilc_report"])
    with pytest.raises(InputError):
        mixed.meta = {"bad": object()}


def test_meta_mutation_reaches_attrs(lc):
    lc.meta["note"] = "checked by eye"
    assert json.loads(lc.ds.attrs["multilc_meta"]) == {"note": "checked by eye"}
    assert lc.select(objectid=4).meta == {"note": "checked by eye"}
    # a direct write to the attributes (as a file reader does) wins
    lc.ds.attrs["multilc_meta"] = json.dumps({"from_file": True})
    assert lc.meta == {"from_file": True}
    lc.meta["more"] = 1
    assert json.loads(lc.ds.attrs["multilc_meta"]) == {"from_file": True, "more": 1}


def test_equality_ignores_report_not_meta(lc):
    other = lc.select(objectid=[4, 7])
    other.report = {"seconds": 3.0}
    assert other == lc
    other.meta = {"x": 1}
    assert other != lc


def test_concat_merges_meta_and_reports(lc):
    a = lc.select(objectid=4)
    b = lc.select(objectid=7)
    a.meta = {"x": 1, "shared": "a"}
    b.meta = {"y": 2, "shared": "b"}
    a.report = {"requests": {"ztf": 2}, "failures": [{"archive": "ztf"}]}
    b.report = {"requests": {"ztf": 3, "wise": 1}, "failures": []}
    out = a + b
    assert out.meta == {"x": 1, "y": 2, "shared": "a"}
    rep = json.loads(out.ds.attrs["multilc_report"])
    assert rep["requests"] == {"ztf": 5, "wise": 1}
    assert rep["failures"] == [{"archive": "ztf"}]


# ----------------------------------------------------------------------------- table
def test_table_round_trip_with_tess_events_and_empty_object(mixed):
    t = mixed.to_table()
    assert {"objects", "bands", "events"} <= set(t.meta)
    assert 9 in list(t.meta["objects"]["objectid"])  # object without data
    assert t.meta["bands"]["band_notes"][list(t.meta["bands"]["band"]).index(
        "tess:TESS")] == "SPOC; sector 27"
    back = MultiBandLightCurve.from_table(t)
    assert back == mixed
    assert back.ds.attrs == mixed.ds.attrs  # report included
    assert QTable(t.meta["objects"])["ra"].unit == u.deg


@pytest.mark.parametrize("fmt", ["ascii.ecsv", "parquet"])
def test_to_table_writes_and_reads_back(mixed, tmp_path, fmt):
    """The table astropy users write themselves keeps everything."""
    path = tmp_path / ("lc.ecsv" if fmt == "ascii.ecsv" else "lc.parquet")
    mixed.to_table().write(path, format=fmt)
    back = MultiBandLightCurve.from_table(QTable.read(path, format=fmt))
    assert back == mixed
    assert back.names[9] == "No data galaxy"
    assert back.meta == mixed.meta


def test_object_without_data_can_be_selected(mixed):
    nine = mixed[9]
    assert nine.objectids.tolist() == [9] and len(nine) == 0 and nine.n_events == 0
    assert nine.names == {9: "No data galaxy"}
    ids = [oid for oid, _ in mixed]
    assert ids == [1, 2, 3, 5, 9]
    assert len(mixed.select(objectid=[1, 9], band="ztf:g").objectids) == 2
    # without an explicit object request, objects left without data go
    assert mixed.select(band="ztf:g").objectids.tolist() == [1]


def test_from_table_plain_table_with_tess_in_flux():
    t = QTable()
    t["objectid"] = [1, 1]
    t["band"] = ["tess:TESS", "tess:TESS"]
    t["time"] = mjd([59000.0, 59000.1])
    t["flux"] = [5.0, 6.0] * u.electron / u.s
    t["flux_err"] = [0.5, 0.5] * u.electron / u.s
    t["name"] = ["TIC 9", "TIC 9"]
    lc = MultiBandLightCurve.from_table(t)
    np.testing.assert_array_equal(lc.get_flux()[0].value, [5.0, 6.0])
    assert lc.names == {1: "TIC 9"}


# ----------------------------------------------------------------------------- AB
def test_to_abmag_agrees_with_flux_to_mag():
    flux = np.array([1e-3, 0.5, 1.0, 3630.78, 17.3]) * u.mJy
    err = flux / 10
    lc = MultiBandLightCurve.from_arrays([1] * 5, ["ztf:g"] * 5, mjd(np.arange(5.0)),
                                         flux, err)
    mag, mag_err = lc.to_abmag()
    ref, ref_err = photometry.flux_to_mag(flux, "ztf:g", err)
    np.testing.assert_allclose(mag.value, ref.value, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mag_err.value, ref_err.value, rtol=0, atol=1e-9)
    # and with astropy's AB magnitude directly
    np.testing.assert_allclose(mag.value, flux.to(u.ABmag).value, rtol=0, atol=1e-9)


def test_datamodel_guide_examples_run():
    """The ``>>>`` examples of docs/guide/datamodel.rst run as printed."""
    import doctest
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "guide" / "datamodel.rst"
    result = doctest.testfile(str(page), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 15
    assert result.failed == 0


def test_engine_path_from_objects_plus_pieces():
    """How the engine keeps every target and its sample name (see with_names too)."""
    from astropy.table import Table

    sample = Table({"objectid": [30, 10, 20], "name": ["Mrk 590", "", "NGC 4151"],
                    "label": ["Yang 18", "Yang 18", "SDSS"]})
    coord = SkyCoord([33.64, 10.0, 182.64] * u.deg, [-0.77, 5.0, 39.41] * u.deg)
    base = MultiBandLightCurve.from_objects(sample["objectid"], name=sample["name"],
                                            label=sample["label"], ra=coord.ra,
                                            dec=coord.dec)
    piece = MultiBandLightCurve.from_arrays([30, 30], ["ztf:g"] * 2, mjd([1.0, 2.0]),
                                            [1.0, 2.0] * u.mJy, [0.1, 0.1] * u.mJy,
                                            ra={30: 33.64 * u.deg}, dec={30: -0.77 * u.deg})
    lc = MultiBandLightCurve.concat([base, piece])
    assert lc.objectids.tolist() == [10, 20, 30]
    assert lc.names == {10: "", 20: "NGC 4151", 30: "Mrk 590"}
    assert lc.labels == {10: "Yang 18", 20: "SDSS", 30: "Yang 18"}
    np.testing.assert_allclose(lc.objects["ra"].to_value(u.deg), [10.0, 182.64, 33.64])
    assert lc.objects["n_obs"].tolist() == [0, 0, 2]
    assert lc["Mrk 590"].flux.value.tolist() == [1.0, 2.0]


def test_from_arrays_events_of_objects_without_photometry():
    lc = MultiBandLightCurve.from_arrays(
        [5, 5, 9], ["ztf:g", "ztf:g", "ztf:r"], mjd([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0] * u.mJy,
        [0.1] * 3 * u.mJy, name={5: "five", 9: "nine", 2: "two"},
        events=make_events([2, 9], ["icecube", "icecube"], mjd([4.0, 5.0])))
    assert lc.objectids.tolist() == [2, 5, 9]
    assert lc.names == {2: "two", 5: "five", 9: "nine"}
    assert lc.objectid.tolist() == [5, 5, 9]  # measurements still on their objects
    assert lc[9].flux.value.tolist() == [3.0]
    assert lc[2].n_events == 1 and len(lc[2]) == 0
