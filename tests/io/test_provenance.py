"""Provenance in every file multilc writes, restored by MultiBandLightCurve.read."""
import datetime
import json

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.time import Time

import multilc
from multilc import MultiBandLightCurve
from multilc.collect.api import Failure
from multilc.collect.engine import CollectionReport
from multilc.errors import FileFormatError
from multilc.io import provenance

FORMATS = ["parquet", "nc", "ecsv"]


def collected_lc():
    """A light curve as collect() leaves it: meta and report attached."""
    lc = MultiBandLightCurve.from_arrays(
        [1, 2], ["ztf:g", "ztf:r"], Time([58000.0, 58001.0], format="mjd", scale="tdb"),
        [1.0, 2.0] * u.mJy, [0.1, 0.1] * u.mJy, label={1: "Mrk 590", 2: "b"})
    lc.meta = {"multilc_version": "9.9.9", "created": "2026-01-02T03:04:05Z",
               "archives": ["ztf", "heasarc.fermi_gbm"], "radius": "2.0 arcsec",
               "options": {"ztf": {"bad_catflags_mask": 32768}},
               "releases": {"ztf": "DR23", "heasarc.fermi_gbm":
                            "https://heasarc.gsfc.nasa.gov/xamin/vo/tap"}}
    lc.report = CollectionReport(
        failures=[Failure("heasarc.fermi_gbm", [2], "TransientError", "503 after 5 tries",
                          transient=True, attempts=5)],
        dropped={"ztf": {"catflags": 3, "sentinel magerr": 1}},
        requests={"ztf": 2, "heasarc.fermi_gbm": 5},
        batches={"ztf": {"total": 1, "cached": 0, "resumed": 0, "failed": 0}},
        seconds=12.5)
    return lc


@pytest.mark.parametrize("ext", FORMATS)
def test_meta_and_report_round_trip(tmp_path, ext):
    lc = collected_lc()
    path = tmp_path / f"lc.{ext}"
    lc.write(path)
    back = MultiBandLightCurve.read(path)
    assert back.meta["multilc_version"] == "9.9.9"  # the collection's, not the writer's
    assert back.meta["created"] == "2026-01-02T03:04:05Z"
    assert back.meta["archives"] == ["ztf", "heasarc.fermi_gbm"]
    assert u.Quantity(back.meta["radius"]) == 2 * u.arcsec
    assert back.meta["options"] == {"ztf": {"bad_catflags_mask": 32768}}
    assert back.meta["releases"]["ztf"] == "DR23"
    report = back.report
    assert isinstance(report, CollectionReport)
    assert report.failures == lc.report.failures  # dataclass equality, field by field
    assert isinstance(report.failures[0], Failure)
    assert report.dropped == {"ztf": {"catflags": 3, "sentinel magerr": 1}}
    assert report.requests == {"ztf": 2, "heasarc.fermi_gbm": 5}
    assert report.seconds == 12.5
    assert not report.ok
    # the agreed storage: JSON strings in the dataset attributes
    assert json.loads(back.ds.attrs["multilc_meta"])["releases"]["ztf"] == "DR23"
    assert json.loads(back.ds.attrs["multilc_report"])["failures"][0]["attempts"] == 5


@pytest.mark.parametrize("ext", FORMATS)
def test_every_file_records_version_and_time_of_writing(tmp_path, ext):
    lc = MultiBandLightCurve.from_arrays(
        [1], ["ztf:g"], Time([58000.0], format="mjd", scale="tdb"), [1.0] * u.mJy,
        [0.1] * u.mJy)
    path = tmp_path / f"lc.{ext}"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    lc.write(path)
    stamp = provenance.read_provenance(path)
    assert stamp["written"]["multilc_version"] == multilc.__version__
    created = datetime.datetime.fromisoformat(
        stamp["written"]["created"].replace("Z", "+00:00"))
    assert created.utcoffset().total_seconds() == 0
    assert before <= created <= before + datetime.timedelta(minutes=5)
    assert stamp["meta"] == {} and stamp["report"] is None
    back = MultiBandLightCurve.read(path)
    assert back.report is None
    assert back == lc  # the light curve is restored as it was, nothing added


@pytest.mark.parametrize("ext", FORMATS)
def test_read_provenance_without_the_data(tmp_path, ext):
    lc = collected_lc()
    path = tmp_path / f"lc.{ext}"
    lc.write(path)
    stamp = provenance.read_provenance(path)
    assert stamp["meta"]["releases"]["ztf"] == "DR23"
    assert stamp["report"]["failures"][0]["objectids"] == [2]
    with pytest.raises(FileFormatError):
        provenance.read_provenance(__file__)


def test_provenance_is_visible_to_other_tools(tmp_path):
    lc = collected_lc()
    lc.write(tmp_path / "lc.parquet")
    lc.write(tmp_path / "lc.nc")
    meta = json.loads(pq.read_schema(tmp_path / "lc.parquet").metadata[b"multilc"])
    assert meta["multilc_provenance"]["report"]["dropped"]["ztf"]["catflags"] == 3
    with h5py.File(tmp_path / "lc.nc") as f:
        block = json.loads(f.attrs["multilc_provenance"])
        assert block["meta"]["releases"]["ztf"] == "DR23"
        assert f"multilc {multilc.__version__}" in f.attrs["history"]


def test_written_file_round_trips_again(tmp_path):
    """read -> write -> read keeps the provenance (the copy does not reset it)."""
    lc = collected_lc()
    lc.write(tmp_path / "a.parquet")
    once = MultiBandLightCurve.read(tmp_path / "a.parquet")
    once.write(tmp_path / "b.ecsv")
    twice = MultiBandLightCurve.read(tmp_path / "b.ecsv")
    assert twice.meta == once.meta
    assert twice.report == once.report


def test_damaged_report_is_a_format_error(tmp_path):
    path = tmp_path / "lc.nc"
    collected_lc().write(path)
    with h5py.File(path, "r+") as f:
        f.attrs["multilc_provenance"] = '{"meta": {}, "report": {"failures": [3]}}'
    with pytest.raises(FileFormatError, match="report"):
        MultiBandLightCurve.read(path)
    with h5py.File(path, "r+") as f:
        f.attrs["multilc_provenance"] = '{"meta": {}, "report": {"seconds": "soon"}}'
    with pytest.raises(FileFormatError, match="seconds"):
        MultiBandLightCurve.read(path)


def test_report_dict_conversion_ignores_unknown_keys():
    data = provenance.report_to_dict(collected_lc().report)
    data["from_the_future"] = 1
    data["failures"][0]["also_new"] = True
    report = provenance.report_from_dict(data)
    assert report.failures[0].attempts == 5
    assert provenance.report_from_dict(None) is None


def test_jsonable():
    value = provenance.jsonable({"r": 2 * u.arcsec, "t": Time("2020-01-01T00:00:00"),
                                 "n": np.int64(3), "x": float("nan"), 4: {"s": {1, 2}},
                                 "a": np.array([1.5, 2.5])})
    assert value == {"r": "2.0 arcsec", "t": "2020-01-01T00:00:00.000", "n": 3,
                     "x": None, "4": {"s": [1, 2]}, "a": [1.5, 2.5]}
    json.dumps(value, allow_nan=False)


def test_collection_meta_names_archives_radius_options_services(monkeypatch):
    from multilc.collect import get_archive

    monkeypatch.setenv("MULTILC_ZTF_API_URL",
                       "https://user:secret@irsa.example/cgi-bin/ZTF/nph_light_curves")
    ztf = get_archive("ztf")(radius=2 * u.arcsec)
    meta = provenance.collection_meta([ztf], extra={"n_targets": 3})
    assert meta["archives"] == ["ztf"]
    assert u.Quantity(meta["radius"]["ztf"]) == 2 * u.arcsec
    assert meta["options"]["ztf"]["catflags_mask"] == ztf.options["catflags_mask"]
    services = meta["services"]["ztf"]
    assert any("dr" in v for v in services.values())  # the HATS URL names the release
    assert "secret" not in json.dumps(meta)
    assert meta["n_targets"] == 3 and meta["multilc_version"] == multilc.__version__
    lc = MultiBandLightCurve.from_arrays(
        [1], ["ztf:g"], Time([58000.0], format="mjd", scale="tdb"), [1.0] * u.mJy,
        [0.1] * u.mJy)
    lc.meta = meta  # JSON values only, as the data model requires
    assert json.loads(json.dumps(lc.meta)) == meta
