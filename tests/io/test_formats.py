"""Round trips through parquet, netCDF and ECSV, and the I/O registry."""
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
from astropy import units as u
from astropy.time import Time

from multilc import MultiBandLightCurve, make_events
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
    assert same_data(back, full_lc)  # xarray identical(): values, dtypes, attrs, coords
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
