"""Round trips through parquet, netCDF and ECSV, and the I/O registry."""
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
from astropy import units as u
from astropy.table import QTable
from astropy.time import Time

from multilc import LightCurveError, MultiBandLightCurve, make_events
from multilc.errors import FileFormatError

FORMATS = ["parquet", "nc", "ecsv"]
PROVENANCE_ATTRS = ("multilc_meta", "multilc_report")


def data_of(lc):
    """The dataset without the provenance attributes (which a write adds)."""
    ds = lc.ds.copy()
    for key in PROVENANCE_ATTRS:
        ds.attrs.pop(key, None)
    return ds


def same_data(a, b):
    return data_of(a).identical(data_of(b))


@pytest.fixture
def full_lc():
    """Every optional variable, an uncalibrated band, events, labels, positions."""
    cal = MultiBandLightCurve.from_arrays(
        objectid=[1, 1, 2, 2], band=["ztf:g", "wise:W1", "gaia:G", "ztf:g"],
        time=Time([58000.123456789012, 58001.5, 58002.25, 58003.0], format="mjd",
                  scale="tdb"),
        flux=[1.0, -0.002, 3.0, 0.1234567890123] * u.mJy,
        flux_err=[0.1, 0.2, 0.3, 0.01] * u.mJy,
        mag=[16.4, np.nan, 15.2, 18.67] * u.mag, mag_err=[0.1, np.nan, 0.01, 0.1] * u.mag,
        upper_limit=[False, True, False, False], flag=[0, 3, 1 << 40, 32768],
        source_id=[101, 102, 5813181197970338560, 104],
        separation=[0.1, 0.2, 0.3, 0.4] * u.arcsec,
        label={1: "Yang 18", 2: "MacLeod 16; Green 22"},
        ra={1: 29.990167 * u.deg, 2: 150.1 * u.deg},
        dec={1: 0.552917 * u.deg, 2: -2.5 * u.deg})
    tess = MultiBandLightCurve.from_arrays(
        [3, 3], ["tess:TESS"] * 2, Time([59000.0, 59000.02], format="mjd", scale="tdb"),
        [100.0, 101.0] * u.electron / u.s, [1.0, 1.0] * u.electron / u.s,
        band_meta={"tess:TESS": {"band_notes": "SPOC; sector 27"}})
    ev = MultiBandLightCurve.from_events(make_events(
        [1, 4], ["icecube", "heasarc.bepposax"],
        Time([58100.0, 51000.5], format="mjd", scale="tdb"), event_id=["IC1", "GRB 980425"],
        energy=[2500.0, np.nan] * u.GeV, error_radius=[0.5, 2.0] * u.deg,
        separation=[0.3, 1.2] * u.deg))
    return MultiBandLightCurve.concat([cal, tess, ev])


@pytest.mark.parametrize("ext", FORMATS)
def test_lossless_roundtrip(full_lc, tmp_path, ext):
    path = tmp_path / f"lc.{ext}"
    full_lc.write(path)
    back = MultiBandLightCurve.read(path)
    assert back == full_lc  # xarray identical(): values, dtypes, attrs, coords
    assert back.labels[2] == "MacLeod 16; Green 22"
    assert back.band_info["band_notes"][list(back.bands).index("tess:TESS")] == \
        "SPOC; sector 27"
    assert back.events["event_id"].tolist() == ["IC1", "GRB 980425"]
    assert back.time.scale == "tdb"


@pytest.mark.parametrize("ext", FORMATS)
def test_overwrite_protection(full_lc, tmp_path, ext):
    path = tmp_path / f"lc.{ext}"
    full_lc.write(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        full_lc.write(path)
    full_lc.write(path, overwrite=True)


@pytest.mark.parametrize("ext", FORMATS)
def test_empty_roundtrip(tmp_path, ext):
    path = tmp_path / f"empty.{ext}"
    MultiBandLightCurve.empty().write(path)
    assert len(MultiBandLightCurve.read(path)) == 0


def test_parquet_readable_by_plain_tools(full_lc, tmp_path):
    path = tmp_path / "lc.parquet"
    full_lc.write(path)
    df = pd.read_parquet(path)
    assert {"objectid", "label", "band", "time", "flux", "flux_err"} <= set(df.columns)
    assert len(df) == len(full_lc)
    table = pq.read_table(path)
    assert table.schema.field("flux").metadata[b"unit"] == b"mJy"
    assert table.schema.field("flux_instrumental").metadata[b"unit"] == b"electron / s"
    meta = json.loads(table.schema.metadata[b"multilc"])
    assert meta["time_scale"] == "tdb"
    assert meta["objects"]["objectid"] == [1, 2, 3, 4]
    # a pandas user can rebuild the notebook MultiIndex from the plain file
    idx = df.set_index(["objectid", "label", "band", "time"]).sort_index()
    assert idx.loc[(1, "Yang 18", "ztf:g")]["flux"].iloc[0] == 1.0


def test_netcdf_is_cf_ragged(full_lc, tmp_path):
    path = tmp_path / "lc.nc"
    full_lc.write(path)
    with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as raw:
        assert raw.attrs["featureType"] == "timeSeries"
        assert raw.attrs["Conventions"].startswith("CF-")
        assert raw["row_size"].attrs["sample_dimension"] == "obs"
        assert raw["objectid"].attrs["cf_role"] == "timeseries_id"
        assert raw["event_object"].attrs["instance_dimension"] == "object"
        assert "obs_object" not in raw  # reconstructed from row_size
        assert int(raw["row_size"].sum()) == raw.sizes["obs"]
        assert raw["time"].attrs["units"].startswith("days since 1858-11-17")


def test_parquet_without_metadata_is_refused(tmp_path):
    path = tmp_path / "plain.parquet"
    pd.DataFrame({"objectid": [1], "band": ["ztf:g"], "time": [1.0], "flux": [1.0],
                  "flux_err": [0.1]}).to_parquet(path)
    with pytest.raises(FileFormatError, match="from_pandas"):
        MultiBandLightCurve.read(path)


def test_format_explicit_and_listing(full_lc, tmp_path):
    path = tmp_path / "lc.data"
    full_lc.write(path, format="parquet")
    assert same_data(MultiBandLightCurve.read(path, format="parquet"), full_lc)
    names = list(MultiBandLightCurve.read.registry.get_formats(MultiBandLightCurve)["Format"])
    assert {"parquet", "netcdf", "ecsv"} <= set(names)


def test_read_without_archive_or_file_names_the_choices():
    with pytest.raises(TypeError, match="archive=") as info:
        MultiBandLightCurve.read("yang2018")
    assert "parquet" in str(info.value)


def test_read_archive_and_format_conflict():
    with pytest.raises(TypeError, match="not both"):
        MultiBandLightCurve.read("x", archive="icecube", format="parquet")


# --------------------------------------------------------------------------- issue 10
def small_lc():
    return MultiBandLightCurve.from_arrays(
        objectid=[1, 1, 2], band=["ztf:g", "ztf:r", "ztf:g"],
        time=Time([58000.0, 58001.0, 58002.0], format="mjd", scale="tdb"),
        flux=[1.0, 2.0, 3.0] * u.mJy, flux_err=[0.1, 0.2, 0.3] * u.mJy,
        label={1: "a", 2: "b"})


def rewrite_parquet(path, change):
    """Apply *change* to the pyarrow table of *path* (metadata kept) and write it back."""
    table = change(pq.read_table(path))
    pq.write_table(table, path)


def set_field_unit(table, name, unit):
    i = table.column_names.index(name)
    field = table.schema.field(name).with_metadata({b"unit": unit.encode()})
    return table.set_column(i, field, table.column(name))


def test_ecsv_in_jy_written_by_astropy_is_converted(tmp_path):
    path = tmp_path / "lc.ecsv"
    small_lc().write(path)
    t = QTable.read(path)
    t["flux"] = t["flux"].to(u.Jy)
    t["flux_err"] = t["flux_err"].to(u.Jy)
    t.write(path, overwrite=True)
    assert "unit: Jy" in path.read_text()
    back = MultiBandLightCurve.read(path)
    # independent expectation: the values written, in mJy
    np.testing.assert_allclose(back.flux.to_value(u.mJy), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(back.flux_err.to_value(u.mJy), [0.1, 0.2, 0.3])


def test_ecsv_unit_edited_by_hand_is_honoured(tmp_path):
    path = tmp_path / "lc.ecsv"
    small_lc().write(path)
    text = path.read_text()
    assert text.count("unit: mJy") == 2  # flux and flux_err, nowhere else
    path.write_text(text.replace("unit: mJy", "unit: Jy"))
    back = MultiBandLightCurve.read(path)
    np.testing.assert_allclose(back.flux.to_value(u.mJy), [1000.0, 2000.0, 3000.0])
    path.write_text(text.replace("{name: flux, unit: mJy", "{name: flux, unit: s"))
    with pytest.raises(FileFormatError, match=r"flux.*cannot be converted") as info:
        MultiBandLightCurve.read(path)
    assert str(path) in str(info.value)


def test_ecsv_time_in_seconds_is_refused(tmp_path):
    path = tmp_path / "lc.ecsv"
    small_lc().write(path)
    path.write_text(path.read_text().replace("{name: time, unit: d", "{name: time, unit: s"))
    with pytest.raises(FileFormatError, match="time"):
        MultiBandLightCurve.read(path)


def test_parquet_field_units_are_honoured(tmp_path):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)
    rewrite_parquet(path, lambda t: set_field_unit(set_field_unit(t, "flux", "uJy"),
                                                   "flux_err", "Jy"))
    back = MultiBandLightCurve.read(path)
    np.testing.assert_allclose(back.flux.to_value(u.mJy), [0.001, 0.002, 0.003])
    np.testing.assert_allclose(back.flux_err.to_value(u.mJy), [100.0, 200.0, 300.0])


@pytest.mark.parametrize("column,unit", [("flux", "s"), ("flux_err", "mag"),
                                         ("time", "s"), ("flux", "not a unit")])
def test_parquet_incompatible_units_are_refused(tmp_path, column, unit):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)
    rewrite_parquet(path, lambda t: set_field_unit(t, column, unit))
    with pytest.raises(FileFormatError, match=column) as info:
        MultiBandLightCurve.read(path)
    assert str(path) in str(info.value)


def test_netcdf_units_attributes_are_honoured(tmp_path):
    import h5py

    path = tmp_path / "lc.nc"
    small_lc().write(path)
    with h5py.File(path, "r+") as f:
        f["flux"].attrs["units"] = "Jy"
        f["time"].attrs["units"] = "hours since 1858-11-18 00:00:00"
    back = MultiBandLightCurve.read(path)
    np.testing.assert_allclose(back.flux.to_value(u.mJy), [1000.0, 2000.0, 3000.0])
    # 58000 d written, now read as hours after MJD 1: 1 + 58000 / 24
    np.testing.assert_allclose(back.time.mjd, 1 + np.array([58000.0, 58001.0,
                                                            58002.0]) / 24)
    with h5py.File(path, "r+") as f:
        f["flux_err"].attrs["units"] = "s"
    with pytest.raises(FileFormatError, match="flux_err"):
        MultiBandLightCurve.read(path)


def test_netcdf_time_scale_is_checked(tmp_path):
    import h5py

    path = tmp_path / "lc.nc"
    small_lc().write(path)
    with h5py.File(path, "r+") as f:
        f["time"].attrs["time_scale"] = "utc"
    with pytest.raises(FileFormatError, match="time_scale"):
        MultiBandLightCurve.read(path)


def test_parquet_rows_of_unknown_objects_are_refused(tmp_path):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)

    def orphan(table):
        oid = table.column("objectid").to_numpy().copy()
        oid[-1] = 7  # the object table has 1 and 2
        return table.set_column(0, table.schema.field("objectid"), pa.array(oid))
    rewrite_parquet(path, orphan)
    with pytest.raises(FileFormatError, match="object id 7") as info:
        MultiBandLightCurve.read(path)
    assert str(path) in str(info.value)


def test_ecsv_rows_of_unknown_objects_or_bands_are_refused(tmp_path):
    path = tmp_path / "lc.ecsv"
    small_lc().write(path)
    text = path.read_text()
    assert "\n2 ztf:g 58002.0" in text
    path.write_text(text.replace("\n2 ztf:g 58002.0", "\n3 ztf:g 58002.0"))
    with pytest.raises(FileFormatError, match="object id 3"):
        MultiBandLightCurve.read(path)
    path.write_text(text.replace("\n2 ztf:g 58002.0", "\n2 ztf:i 58002.0"))
    with pytest.raises(FileFormatError, match="band 'ztf:i'"):
        MultiBandLightCurve.read(path)


def test_netcdf_row_size_mismatch_is_refused(tmp_path):
    import h5py

    path = tmp_path / "lc.nc"
    small_lc().write(path)
    with h5py.File(path, "r+") as f:
        f["row_size"][...] = [1, 1]
    with pytest.raises(FileFormatError, match="row_size"):
        MultiBandLightCurve.read(path)


@pytest.mark.parametrize("ext", FORMATS)
def test_truncated_files_name_the_file_and_chain_the_cause(tmp_path, ext):
    path = tmp_path / f"lc.{ext}"
    small_lc().write(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(FileFormatError) as info:
        MultiBandLightCurve.read(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, OSError)  # FileFormatError is an OSError too
    if ext != "ecsv":  # ECSV: the row count check, no third-party error to chain
        assert info.value.__cause__ is not None


def test_parquet_damaged_metadata_json(tmp_path):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)

    def damage(table):
        meta = dict(table.schema.metadata)
        meta[b"multilc"] = meta[b"multilc"][:-10]
        return table.replace_schema_metadata(meta)
    rewrite_parquet(path, damage)
    with pytest.raises(FileFormatError, match="not valid JSON") as info:
        MultiBandLightCurve.read(path)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_parquet_metadata_without_objects_is_a_format_error(tmp_path):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)

    def damage(table):
        meta = dict(table.schema.metadata)
        doc = json.loads(meta[b"multilc"])
        del doc["objects"]
        meta[b"multilc"] = json.dumps(doc).encode()
        return table.replace_schema_metadata(meta)
    rewrite_parquet(path, damage)
    with pytest.raises(FileFormatError, match="object table"):
        MultiBandLightCurve.read(path)


def test_parquet_bit_flip_in_data_is_detected(tmp_path):
    """Data pages carry CRC-32 checksums: a flipped bit in a value is refused."""
    path = tmp_path / "lc.parquet"
    lc = small_lc()
    lc.write(path, compression="none")
    data = bytearray(path.read_bytes())
    needle = np.float64(58001.0).tobytes()  # the second time value, uncompressed
    at = bytes(data).index(needle)
    data[at + 2] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="parquet"):
        MultiBandLightCurve.read(path)


def test_values_outside_the_contract_are_refused_on_read_and_write(tmp_path):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)

    def negative_error(table):
        err = table.column("flux_err").to_numpy().copy()
        err[1] = -999.0
        i = table.column_names.index("flux_err")
        return table.set_column(i, table.schema.field("flux_err"), pa.array(err))
    rewrite_parquet(path, negative_error)
    with pytest.raises(FileFormatError, match="1 flux_err values are negative"):
        MultiBandLightCurve.read(path)
    bad = MultiBandLightCurve.from_arrays(
        [1], ["ztf:g"], Time([58000.0], format="mjd", scale="tdb"), [1.0] * u.mJy,
        [-1.0] * u.mJy)
    with pytest.raises(LightCurveError, match="negative"):
        bad.write(tmp_path / "bad.parquet")
    assert not (tmp_path / "bad.parquet").exists()


def test_unknown_column_is_refused(tmp_path):
    path = tmp_path / "lc.parquet"
    small_lc().write(path)
    rewrite_parquet(path, lambda t: t.rename_columns(
        [("flxu" if n == "flux" else n) for n in t.column_names]
    ).replace_schema_metadata(t.schema.metadata))
    with pytest.raises(FileFormatError, match="'flux' is missing"):
        MultiBandLightCurve.read(path)
    small_lc().write(path, overwrite=True)
    rewrite_parquet(path, lambda t: t.append_column("extra", pa.array([1.0, 2.0, 3.0])))
    with pytest.raises(FileFormatError, match="'extra'.*but was written with"):
        MultiBandLightCurve.read(path)


# --------------------------------------------------------------------------- issue 11
def test_parquet_opens_in_qtable_and_pandas(full_lc, tmp_path):
    import warnings

    path = tmp_path / "lc.parquet"
    full_lc.write(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "guessing string length" warnings
        t = QTable.read(path)
    assert len(t) == len(full_lc)
    assert t["flux"].unit == u.mJy and t["time"].unit == u.day
    assert t["flux_instrumental"].unit == u.electron / u.s
    assert t["band"].dtype.kind == "U" and set(t["band"]) == set(full_lc.bands)
    assert t["label"][0] == "Yang 18"
    np.testing.assert_array_equal(t["time"].value, full_lc.time.mjd)
    assert "multilc_version" in t.meta["multilc"]["provenance"]["written"]
    df = pd.read_parquet(path)
    assert list(df["band"]) == list(full_lc.band)
    assert df["source_id"].tolist() == full_lc.ds["source_id"].values.tolist()


def test_foreign_file_names_the_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a light curve\n")
    with pytest.raises(FileFormatError) as info:
        MultiBandLightCurve.read(path)
    message = str(info.value)
    assert str(path) in message
    for name in ("parquet", "netcdf", "ecsv", 'format="icecube.events"'):
        assert name in message
    assert "IORegistryError" not in message


def test_own_format_found_from_content(tmp_path):
    lc = small_lc()
    for fmt in ("parquet", "netcdf", "ecsv"):
        path = tmp_path / f"lc-{fmt}.dat"
        lc.write(path, format=fmt)
        assert same_data(MultiBandLightCurve.read(path), lc)


@pytest.mark.parametrize("ext", FORMATS)
def test_wrong_content_under_own_extension(tmp_path, ext):
    path = tmp_path / f"lc.{ext}"
    path.write_bytes(b"PK\x03\x04 a zip file, not a light curve")
    with pytest.raises(FileFormatError) as info:
        MultiBandLightCurve.read(path)
    assert str(path) in str(info.value)


def test_parquet_read_with_filters_and_columns(tmp_path):
    """Reading part of a file (as the streamed-output dataset does) is not 'truncated'."""
    import pyarrow.compute as pc

    from multilc.io.formats import read_parquet

    path = tmp_path / "lc.parquet"
    small_lc().write(path)
    part = read_parquet(path, filters=pc.field("band") == "ztf:g",
                        columns=["objectid", "label", "band", "time", "flux", "flux_err"])
    assert list(part.band) == ["ztf:g", "ztf:g"]
    np.testing.assert_array_equal(part.flux.to_value(u.mJy), [1.0, 3.0])


def test_ecsv_header_cannot_run_code(tmp_path):
    """The YAML header is read with a safe loader: a python tag is refused, not run."""
    path = tmp_path / "lc.ecsv"
    small_lc().write(path)
    marker = tmp_path / "ran"
    text = path.read_text().replace(
        "# meta: !!omap\n",
        f"# meta: !!omap\n# - evil: !!python/object/apply:os.system ['touch {marker}']\n")
    path.write_text(text)
    with pytest.raises(FileFormatError, match="not a readable ECSV"):
        MultiBandLightCurve.read(path)
    assert not marker.exists()


def test_files_of_the_previous_layout_still_read(tmp_path):
    """Before: dictionary-typed label/band, no row count, columns or provenance."""
    import h5py

    lc = small_lc()
    path = tmp_path / "old.parquet"
    lc.write(path)

    def old_layout(table):
        meta = dict(table.schema.metadata)
        doc = json.loads(meta[b"multilc"])
        for key in ("n_rows", "columns", "multilc_provenance"):
            del doc[key]
        meta = {b"multilc": json.dumps(doc).encode()}
        for name in ("label", "band"):
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(name).dictionary_encode())
        return table.replace_schema_metadata(meta)
    rewrite_parquet(path, old_layout)
    assert pa.types.is_dictionary(pq.read_schema(path).field("band").type)
    assert same_data(MultiBandLightCurve.read(path), lc)

    path = tmp_path / "old.nc"
    lc.write(path)
    with h5py.File(path, "r+") as f:
        for key in ("multilc_n_rows", "multilc_provenance"):
            del f.attrs[key]
    assert same_data(MultiBandLightCurve.read(path), lc)
