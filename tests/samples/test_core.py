"""Tests for `multilc.samples.core`: building, validating, reading and writing Samples."""
import math
import pickle

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import Galactic, SkyCoord
from astropy.table import QTable, Table

from multilc.samples import Sample, SampleError, as_sample, example_targets
from multilc.samples.core import EXAMPLE_TARGETS_PATH

RA = [10.5, 200.25, 359.75]
DEC = [-5.0, 45.5, 89.0]


def _table(ra_name="ra", dec_name="dec", **extra):
    table = Table({ra_name: RA, dec_name: DEC, **extra})
    return table


# --------------------------------------------------------------------------------------
# coordinate column spellings


@pytest.mark.parametrize(
    ("ra_name", "dec_name"),
    [("ra", "dec"), ("RA", "DEC"), ("ra_deg", "dec_deg"), ("RAJ2000", "DEJ2000"),
     ("RA_ICRS", "DE_ICRS"), ("_RA", "_DE"), ("_RAJ2000", "_DEJ2000"), ("Ra", "Dec")],
)
def test_coordinate_column_spellings(ra_name, dec_name):
    sample = Sample.from_table(_table(ra_name, dec_name))
    assert np.allclose(sample.coord.ra.deg, RA, rtol=0, atol=1e-12)
    assert np.allclose(sample.coord.dec.deg, DEC, rtol=0, atol=1e-12)
    # the RA/Dec columns are folded into coord
    assert sample.colnames == ["objectid", "coord", "label"]


@pytest.mark.parametrize("name", ["coord", "coords", "skycoord"])
def test_skycoord_column(name):
    table = QTable({name: SkyCoord(RA * u.deg, DEC * u.deg)})
    sample = Sample.from_table(table)
    assert np.allclose(sample.coord.dec.deg, DEC, atol=1e-12)


def test_skycoord_in_other_frame_becomes_icrs():
    galactic_centre = SkyCoord(l=0 * u.deg, b=0 * u.deg, frame=Galactic)
    sample = Sample.from_table(QTable({"coord": galactic_centre.reshape((1,))}))
    assert sample.coord.frame.name == "icrs"
    # Galactic centre in ICRS: RA 266.405, Dec -28.936 deg (IAU 1958 definition via astropy)
    assert sample.coord.ra.deg[0] == pytest.approx(266.405, abs=1e-3)
    assert sample.coord.dec.deg[0] == pytest.approx(-28.936, abs=1e-3)


def test_explicit_column_names_and_units():
    table = Table({"alpha": [1.5], "delta": [-30.0]})
    table["alpha"].unit = u.hourangle
    table["delta"].unit = u.deg
    sample = Sample.from_table(table, ra="alpha", dec="delta")
    assert sample.coord.ra.deg[0] == pytest.approx(22.5)  # 1.5 h * 15 deg/h
    with pytest.raises(SampleError, match="both ra= and dec="):
        Sample.from_table(table, ra="alpha")


def test_radian_column_unit():
    table = QTable({"ra": [math.pi] * u.rad, "dec": [0.25] * u.rad})
    sample = Sample.from_table(table)
    assert sample.coord.ra.deg[0] == pytest.approx(180.0)
    assert sample.coord.dec.deg[0] == pytest.approx(0.25 * 180 / math.pi)


def test_sexagesimal_strings():
    table = Table({"RAJ2000": ["01 59 57.64", "12:30:00", "00h00m36s"],
                   "DEJ2000": ["+00 33 10.5", "-45:30:00", "10d30m00s"]})
    sample = Sample.from_table(table)
    expected_ra = [15 * (1 + 59 / 60 + 57.64 / 3600), 15 * 12.5, 15 * 36 / 3600]
    expected_dec = [33 / 60 + 10.5 / 3600, -45.5, 10.5]
    assert np.allclose(sample.coord.ra.deg, expected_ra, atol=1e-9)
    assert np.allclose(sample.coord.dec.deg, expected_dec, atol=1e-9)


def test_decimal_strings_are_degrees():
    sample = Sample.from_table(Table({"ra": ["10.5"], "dec": ["-5.25"]}))
    assert sample.coord.ra.deg[0] == pytest.approx(10.5)
    assert sample.coord.dec.deg[0] == pytest.approx(-5.25)


def test_pandas_dataframe():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"ra_deg": RA, "dec_deg": DEC, "name": ["a", "b", "c"],
                          "objectid": [7, 8, 9]}, index=[5, 6, 7])
    sample = Sample.from_table(frame, label="mine")
    assert sample.objectid.tolist() == [7, 8, 9]
    assert list(sample["name"]) == ["a", "b", "c"]
    assert np.allclose(sample.coord.ra.deg, RA)
    assert list(sample.label) == ["mine"] * 3
    back = sample.to_pandas()
    assert list(back.columns[:4]) == ["objectid", "ra", "dec", "label"]
    assert np.allclose(back["dec"], DEC)


# --------------------------------------------------------------------------------------
# bad input


def test_missing_coordinates_lists_spellings():
    with pytest.raises(SampleError, match=r"no coordinate columns.*RAJ2000/DEJ2000.*_RA/_DE"):
        Sample.from_table(Table({"x": [1.0], "y": [2.0]}))


def test_nan_coordinates_name_row_and_objectid():
    table = Table({"objectid": [11, 12, 13], "ra": [1.0, np.nan, 3.0], "dec": [0.0, 0.0, 0.0]})
    with pytest.raises(SampleError, match=r"NaN.*row 1 \(objectid 12\)"):
        Sample.from_table(table)


def test_masked_coordinates_are_missing():
    table = Table({"ra": [1.0, 2.0], "dec": [0.0, 0.0]}, masked=True)
    table["dec"].mask = [False, True]
    with pytest.raises(SampleError, match=r"row 1 \(objectid 2\)"):
        Sample.from_table(table)


@pytest.mark.parametrize("dec", [90.5, -91.0])
def test_dec_out_of_range(dec):
    with pytest.raises(SampleError, match=r"Dec outside \[-90, 90\].*row 0"):
        Sample.from_table(Table({"ra": [1.0], "dec": [dec]}))


@pytest.mark.parametrize("ra", [360.0, -0.1, 400.0])
def test_ra_out_of_range(ra):
    with pytest.raises(SampleError, match=r"RA outside \[0, 360\).*row 0"):
        Sample.from_table(Table({"ra": [ra], "dec": [1.0]}))


def test_unreadable_string_coordinate():
    with pytest.raises(SampleError, match=r"row 1.*'abc'.*column 'ra'"):
        Sample.from_table(Table({"ra": ["10.0", "abc"], "dec": ["1", "2"]}))


def test_duplicated_objectids_named():
    table = _table(objectid=[4, 5, 4])
    with pytest.raises(SampleError, match=r"duplicated objectid: objectid 4 in rows \[0, 2\]"):
        Sample.from_table(table)


def test_non_integer_objectids_rejected():
    with pytest.raises(SampleError, match="integers"):
        Sample.from_table(_table(objectid=[1.0, 2.5, 3.0]))


def test_angle_unit_required():
    table = QTable({"ra": [1.0] * u.m, "dec": [1.0] * u.deg})
    with pytest.raises(SampleError, match="not an angle"):
        Sample.from_table(table)


def test_unsupported_input_type():
    with pytest.raises(SampleError, match="cannot make a Sample from int"):
        as_sample(42)


# --------------------------------------------------------------------------------------
# ids, labels, extra columns


def test_default_objectids_and_labels():
    sample = Sample.from_table(_table())
    assert sample.objectid.dtype == np.int64
    assert sample.objectid.tolist() == [1, 2, 3]
    assert list(sample.label) == ["", "", ""]


def test_objectid_column_name_and_extra_columns_kept():
    table = _table(src_id=[30, 10, 20], name=["x", "y", "z"], redshift=[0.1, 0.2, 0.3])
    sample = Sample.from_table(table, objectid="src_id")
    assert sample.objectid.tolist() == [30, 10, 20]
    assert sample.colnames == ["objectid", "coord", "label", "name", "redshift"]
    assert sample["redshift"][1] == pytest.approx(0.2)


def test_label_column_multi_labels_and_default():
    table = _table(label=["A; B", "", "B;A ;B"])
    sample = Sample.from_table(table, label="fallback")
    assert list(sample.label) == ["A; B", "fallback", "B; A"]
    assert sample.labels(1) == ["A", "B"]
    assert sample.labels(3) == ["B", "A"]
    assert sample.unique_labels() == ["A", "B", "fallback"]
    assert sample.has_label("A").tolist() == [True, False, True]
    with pytest.raises(KeyError, match="objectid 99"):
        sample.labels(99)


def test_from_coords_scalar_and_array():
    scalar = Sample.from_coords(SkyCoord(10 * u.deg, 20 * u.deg), label="one")
    assert len(scalar) == 1 and scalar.label[0] == "one"
    array = Sample.from_coords(SkyCoord(RA * u.deg, DEC * u.deg), objectid=[5, 6, 7],
                               label=["a", "b", "c"])
    assert array.objectid.tolist() == [5, 6, 7]
    assert list(array.label) == ["a", "b", "c"]
    with pytest.raises(SampleError, match="2 labels given for 3 positions"):
        Sample.from_coords(SkyCoord(RA * u.deg, DEC * u.deg), label=["a", "b"])


# --------------------------------------------------------------------------------------
# container behaviour


def test_len_iter_getitem_repr():
    sample = Sample.from_table(_table(name=["a", "b", "c"]), label="L")
    assert len(sample) == 3
    assert [row["name"] for row in sample] == ["a", "b", "c"]
    part = sample[1:]
    assert isinstance(part, Sample) and part.objectid.tolist() == [2, 3]
    masked = sample[sample.objectid != 2]
    assert isinstance(masked, Sample) and masked.objectid.tolist() == [1, 3]
    assert sample[0]["name"] == "a"
    assert list(sample["name"]) == ["a", "b", "c"]
    text = repr(sample)
    assert text.startswith("<Sample: 3 objects; labels {'L': 3}; extra columns ['name']>")
    assert "200.25" in text


def test_table_property_is_a_copy():
    sample = Sample.from_table(_table())
    table = sample.table
    table["objectid"][0] = 99
    assert sample.objectid[0] == 1
    assert isinstance(table, QTable)


def test_pickle_round_trip():
    sample = Sample.from_table(_table(name=["a", "b", "c"], label=["x", "y", "x; y"]))
    clone = pickle.loads(pickle.dumps(sample))
    assert clone == sample
    assert clone.labels(3) == ["x", "y"]
    assert list(clone["name"]) == ["a", "b", "c"]


def test_empty_sample():
    sample = Sample()
    assert len(sample) == 0
    assert repr(sample) == "<Sample: 0 objects; labels {}>"


# --------------------------------------------------------------------------------------
# files


@pytest.mark.parametrize("suffix", [".ecsv", ".csv"])
def test_write_read_round_trip(tmp_path, suffix):
    sample = Sample.from_table(
        _table(objectid=[3, 1, 2], name=["a", "b", "c"], label=["P; Q", "", "Q"])
    )
    path = tmp_path / f"targets{suffix}"
    sample.write(path)
    back = Sample.read(path)
    assert back.objectid.tolist() == [3, 1, 2]
    assert list(back.label) == ["P; Q", "", "Q"]
    assert back.labels(3) == ["P", "Q"]
    assert list(back["name"]) == ["a", "b", "c"]
    sep = back.coord.separation(SkyCoord(RA * u.deg, DEC * u.deg)).to_value(u.arcsec)
    assert np.all(sep < 1e-6)
    with pytest.raises(FileExistsError):
        sample.write(path)
    sample.write(path, overwrite=True)


def test_csv_has_ra_dec_degrees(tmp_path):
    sample = Sample.from_table(_table())
    path = tmp_path / "t.csv"
    sample.write(path)
    header = path.read_text().splitlines()[0]
    assert header == "objectid,ra,dec,label"
    plain = Table.read(path, format="ascii.csv")
    assert np.allclose(plain["ra"], RA)


def test_read_errors(tmp_path):
    with pytest.raises(SampleError, match="not found"):
        Sample.read(tmp_path / "missing.ecsv")
    with pytest.raises(SampleError, match="unknown sample file format 'txt'"):
        Sample.read(tmp_path / "x.txt")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,x\na,1\n")
    with pytest.raises(SampleError, match=r"bad\.csv: no coordinate columns"):
        Sample.read(bad)


# --------------------------------------------------------------------------------------
# as_sample and the example targets


def test_example_targets():
    sample = example_targets()
    assert 5 <= len(sample) <= 8
    assert sample.objectid.tolist() == list(range(1, len(sample) + 1))
    assert "description" in sample.meta
    assert set(sample.meta["position_sources"]) == set(sample["name"])
    # SDSS J015957.64+003310.5: RA = 15*(1 + 59/60 + 57.64/3600), Dec = 33/60 + 10.5/3600
    row = list(sample["name"]).index("SDSS J015957.64+003310.5")
    expected = SkyCoord(15 * (1 + 59 / 60 + 57.64 / 3600) * u.deg,
                        (33 / 60 + 10.5 / 3600) * u.deg)
    assert sample.coord[row].separation(expected) < 0.01 * u.arcsec
    assert as_sample("example") == sample
    assert Sample.read(EXAMPLE_TARGETS_PATH) == sample


def test_as_sample_inputs(tmp_path):
    coords = SkyCoord(RA * u.deg, DEC * u.deg)
    from_coords = as_sample(coords, label="c")
    assert list(from_coords.label) == ["c"] * 3
    assert as_sample(from_coords) is from_coords
    assert len(as_sample(SkyCoord(1 * u.deg, 2 * u.deg))) == 1
    assert len(as_sample(_table())) == 3
    path = tmp_path / "t.ecsv"
    from_coords.write(path)
    assert as_sample(str(path)) == from_coords
    assert as_sample(path) == from_coords
    # label fills only missing labels
    relabelled = as_sample(Sample.from_table(_table(label=["x", "", "y"])), label="z")
    assert list(relabelled.label) == ["x", "z", "y"]


# --------------------------------------------------------------------------------------
# object names, resolved by a local Sesame stand-in


@pytest.fixture
def sesame(httpserver):
    from astropy.coordinates import name_resolve
    from werkzeug import Response

    known = {"Mrk 590": (33.639850, -0.766720), "NGC 2617": (128.911680, -4.088320)}

    def handler(request):
        name = request.query_string.decode()
        from urllib.parse import unquote

        name = unquote(name)
        if name in known:
            ra, dec = known[name]
            body = f"# {name}\n#=S=Simbad: 1\n%J {ra:.6f} {dec:+.6f} = stand-in\n"
        else:
            body = f"# {name}\n#! *** Nothing found ***\n"
        return Response(body, content_type="text/plain")

    httpserver.expect_request("/cgi-bin/nph-sesame/SNV").respond_with_handler(handler)
    with name_resolve.sesame_url.set([httpserver.url_for("/cgi-bin/nph-sesame/")]):
        yield known


def test_object_names_resolved(sesame):
    sample = as_sample(["Mrk 590", "NGC 2617"], label="named")
    assert list(sample["name"]) == ["Mrk 590", "NGC 2617"]
    assert sample.coord.ra.deg[1] == pytest.approx(128.911680, abs=1e-6)
    assert list(sample.label) == ["named", "named"]
    single = as_sample("Mrk 590")
    assert single.coord.dec.deg[0] == pytest.approx(-0.766720, abs=1e-6)


def test_unresolvable_name_is_named(sesame):
    with pytest.raises(SampleError, match="could not resolve.*'No Such Object'"):
        as_sample(["Mrk 590", "No Such Object"])


@pytest.mark.remote_data
def test_object_name_resolved_by_real_sesame():
    sample = as_sample("Mrk 590")
    # Mrk 590 lies at RA 02h14m33.6s, Dec -00d46m00s (NED); 1 arcsec tolerance
    expected = SkyCoord("02h14m33.56s", "-00d46m00.1s")
    assert sample.coord[0].separation(expected) < 1 * u.arcsec
