"""Tests of multilc.archives.tess_kepler (TESS, Kepler, K2 via lightkurve/MAST).

Light-curve files are written at test time in the mission layout (primary
header TELESCOP/MISSION/OBJECT/TICID|KEPLERID/SECTOR|QUARTER|CAMPAIGN/
RA_OBJ/DEC_OBJ; extension LIGHTCURVE with TIME, TIMECORR, CADENCENO,
SAP_FLUX(_ERR), PDCSAP_FLUX(_ERR), QUALITY|SAP_QUALITY and BJDREFI/BJDREFF/
TIMESYS/TIMEREF/TIMEUNIT).  The service route runs against
`multilc.testing.mast.MastStandin`: the MAST API (Mast.Caom.Crossmatch,
Mast.Caom.Products with paging and long polling)
and file downloads on a `multilc.testing.ReplayServer`; the tests assert on
what the reader sent (request counts, JSON request bodies) and compare values
with numbers computed here or by lightkurve's own reader.
"""
import math
import sys
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

import multilc
from multilc.lightcurve import MultiBandLightCurve
from multilc.archives import tess_kepler
from multilc.testing import Fault
from multilc.testing.mast import MastStandin, mission_observation, write_mission_lightcurve



TESS_REF = 2457000.0     # BTJD = BJD_TDB - 2457000 (TESS SDPDD)
KEPLER_REF = 2454833.0   # BKJD = BJD_TDB - 2454833 (Kepler Archive Manual)
MJD0 = 2400000.5


# --------------------------------------------------------------------------- fixtures
def write_lc(path, mission="tess", **kwargs):
    """Write a light-curve file in the SPOC / Kepler pipeline layout."""
    return write_mission_lightcurve(path, mission, **kwargs)


# --------------------------------------------------------------------------- file reader
def test_tess_and_kepler_times_pinned(tmp_path):
    """BTJD + 2457000 and BKJD + 2454833 (today's tools add 2457000 to both)."""
    t = [1500.0, 1500.5]
    tess = write_lc(tmp_path / "tess_lc.fits", "tess", time=t, pdcsap=[100, 101],
                    pdcsap_err=[1, 1])
    kep = write_lc(tmp_path / "kplr_llc.fits", "kepler", time=t, pdcsap=[100, 101],
                   pdcsap_err=[1, 1], target_id=11904151, season=3)
    k2 = write_lc(tmp_path / "ktwo_llc.fits", "k2", time=t, pdcsap=[100, 101],
                  pdcsap_err=[1, 1], target_id=201367065, season=5)
    lc_t = MultiBandLightCurve.read(tess, format="tess.lightcurve")
    lc_k = MultiBandLightCurve.read(kep, format="kepler.lightcurve")
    lc_2 = MultiBandLightCurve.read(k2, format="k2.lightcurve")
    np.testing.assert_allclose(lc_t.time.mjd, [58499.5, 58500.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc_k.time.mjd, [56332.5, 56333.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc_2.time.mjd, [56332.5, 56333.0], rtol=0, atol=1e-9)
    # The bug of today's tools: Kepler shifted by TESS_REF - KEPLER_REF = 2167 d.
    assert lc_t.time.mjd[0] - lc_k.time.mjd[0] == pytest.approx(2167.0)
    assert lc_t.time.scale == "tdb"
    assert lc_t.bands == ["tess:TESS"] and lc_k.bands == ["kepler:Kepler"]
    assert lc_2.bands == ["k2:K2"]


def test_reference_date_read_from_header(tmp_path):
    path = write_lc(tmp_path / "odd_lc.fits", "tess", time=[10.0], pdcsap=[5.0],
                    pdcsap_err=[0.1], bjdrefi=2450000, bjdreff=0.25)
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve")
    assert lc.time.mjd[0] == pytest.approx(10.0 + 2450000.25 - MJD0, abs=1e-9)


def test_flux_unit_masks_and_metadata(tmp_path):
    quality = [0, 1, 2048, 0, 0]      # 1 = AttitudeTweak (default), 2048 = Straylight (hard)
    pdc = [100.0, 200.0, 300.0, np.nan, 500.0]
    path = write_lc(tmp_path / "tess2018-s0001_lc.fits", "tess",
                    time=[1, 2, 3, 4, np.nan], pdcsap=pdc, pdcsap_err=[1, 2, 3, 4, 5],
                    sap=[10, 20, 30, 40, 50], sap_err=[.1, .2, .3, .4, .5], quality=quality,
                    dec=-20.0 + 0.5 / 3600)
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve", ra=10 * u.deg,
                                  dec=-20 * u.deg)
    assert lc.flux.unit == u.electron / u.s
    np.testing.assert_allclose(lc.flux.value, [100.0, 300.0])
    np.testing.assert_allclose(lc.flux_err.value, [1.0, 3.0])
    assert lc.ds["flux_instrumental"].attrs["units"] != "mJy"
    assert np.isnan(lc.ds["flux"].values).all()          # never stored as mJy
    np.testing.assert_array_equal(lc.ds["flag"].values, [0, 2048])
    np.testing.assert_array_equal(lc.ds["source_id"].values, [25155310, 25155310])
    np.testing.assert_allclose(lc.ds["separation"].values, 0.5, atol=1e-6)
    notes = str(lc.ds["band_notes"].values[0])
    assert notes.split("; ") == ["SPOC", "PDCSAP_FLUX", "sector 1"]
    # "hard" also removes Straylight; SAP flux on request
    hard = MultiBandLightCurve.read(path, format="tess.lightcurve", quality_bitmask="hard",
                                    flux_column="sap_flux")
    np.testing.assert_allclose(hard.flux.value, [10.0, 40.0])   # SAP_FLUX is not NaN there
    # "none" keeps flagged cadences, NaN flux and time still dropped
    none = MultiBandLightCurve.read(path, format="tess.lightcurve", quality_bitmask="none")
    np.testing.assert_allclose(none.flux.value, [100.0, 200.0, 300.0])


def test_drop_counts(tmp_path):
    from multilc.archives.tess_kepler import products_to_lightcurve, read_lightcurve_file

    path = write_lc(tmp_path / "a_lc.fits", "tess", time=[1, 2, 3, np.nan],
                    pdcsap=[1, 2, np.nan, 4], pdcsap_err=[1, 1, 1, 1], quality=[0, 8, 0, 0])
    res = products_to_lightcurve(
        [{"objectid": 7, "ra": 10.0, "dec": -20.0, "products": [read_lightcurve_file(path)]}],
        {"flux_column": "pdcsap_flux", "quality_bitmask": "default", "bin_to": None,
         "match": "all"}, "tess")
    reasons = res.dropped
    assert reasons.pop("TIME is NaN") == 1
    assert reasons.pop("PDCSAP_FLUX is NaN") == 1
    (quality_reason, n), = reasons.items()
    assert n == 1 and quality_reason.startswith("QUALITY & ")   # bit 8 = EarthPoint
    assert len(res.lc.time) == 1


def test_binning_inverse_variance(tmp_path):
    dt = 30 * u.min
    width = dt.to_value(u.day)
    # MJD = BTJD + 56999.5; choose times so that cadences fall in two bins.
    k0 = np.ceil((1000.0 + 56999.5) / width)
    base = k0 * width - 56999.5                   # BTJD at a bin edge
    t = base + np.array([0.001, 0.004, 0.008, width + 0.002, width + 0.006])
    f = np.array([10.0, 12.0, 11.0, 20.0, 22.0])
    e = np.array([1.0, 2.0, 0.5, 1.0, 1.0])
    path = write_lc(tmp_path / "bin_lc.fits", "tess", time=t, pdcsap=f, pdcsap_err=e,
                    quality=[0, 0, 4096, 0, 0])   # 4096 is not in the default mask
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve", bin_to=dt)
    w = 1 / e[:3] ** 2
    expect_f1 = (w * f[:3]).sum() / w.sum()
    expect_e1 = 1 / np.sqrt(w.sum())
    np.testing.assert_allclose(lc.flux.value, [expect_f1, 21.0], rtol=1e-6)
    np.testing.assert_allclose(lc.flux_err.value, [expect_e1, 1 / np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(lc.time.mjd, [t[:3].mean() + 56999.5, t[3:].mean() + 56999.5],
                               atol=1e-6)
    np.testing.assert_array_equal(lc.ds["flag"].values, [4096, 0])
    with pytest.raises(TypeError, match="bin_to must be a time Quantity"):
        MultiBandLightCurve.read(path, format="tess.lightcurve", bin_to=0.02)


def test_mission_detected_from_header(tmp_path):
    kep = write_lc(tmp_path / "kplr_llc.fits", "kepler", time=[1.0], pdcsap=[1.0],
                   pdcsap_err=[1.0], target_id=1)
    tess = write_lc(tmp_path / "tess_lc.fits", "tess", time=[1.0], pdcsap=[1.0],
                    pdcsap_err=[1.0])
    with pytest.raises(ValueError, match="header says Kepler.*kepler.lightcurve"):
        MultiBandLightCurve.read(kep, format="tess.lightcurve")
    # no format: identified from TELESCOP/MISSION
    assert MultiBandLightCurve.read(kep).bands == ["kepler:Kepler"]
    assert MultiBandLightCurve.read(tess).bands == ["tess:TESS"]


def test_non_barycentric_file_refused(tmp_path):
    path = write_lc(tmp_path / "x_lc.fits", "tess", time=[1.0], pdcsap=[1.0],
                    pdcsap_err=[1.0], timeref="LOCAL")
    with pytest.raises(ValueError, match="TIMEREF=LOCAL"):
        MultiBandLightCurve.read(path, format="tess.lightcurve")


def test_options_checked():
    with pytest.raises(ValueError, match="flux_column"):
        tess_kepler.TessArchive(flux_column="kspsap_flux")
    with pytest.raises(ValueError, match="quality_bitmask"):
        tess_kepler.KeplerArchive(quality_bitmask="strict")
    with pytest.raises(TypeError, match="radius must be an angle Quantity"):
        tess_kepler.TessArchive(radius=2.0)
    arch = tess_kepler.TessArchive()
    assert arch.options["author"] == "SPOC" and arch.options["exptime"] == 120
    assert tess_kepler.K2Archive().options["author"] == "K2"


# --------------------------------------------------------------------------- lightkurve parity
def test_quality_presets_match_lightkurve():
    lk_utils = pytest.importorskip("lightkurve.utils")
    assert tess_kepler.QUALITY_PRESETS["TessQualityFlags"] == \
        {k: int(v or 0) for k, v in lk_utils.TessQualityFlags.OPTIONS.items()}
    assert tess_kepler.QUALITY_PRESETS["KeplerQualityFlags"] == \
        {k: int(v or 0) for k, v in lk_utils.KeplerQualityFlags.OPTIONS.items()}


@pytest.mark.parametrize("mission", ["tess", "kepler"])
def test_values_match_lightkurve_reader(tmp_path, mission):
    """Same cadences, times and fluxes as lightkurve.read with its default mask."""
    lk = pytest.importorskip("lightkurve")
    rng = np.random.default_rng(5)
    n = 200
    t = np.sort(rng.uniform(100, 120, n))
    f = rng.normal(500, 3, n)
    e = rng.uniform(1, 2, n)
    q = np.where(rng.random(n) < 0.2, rng.choice([1, 4, 32, 2048, 4096, 128], n), 0)
    f[[3, 17]] = np.nan
    path = write_lc(tmp_path / f"{mission}_lc.fits", mission, time=t, pdcsap=f,
                    pdcsap_err=e, quality=q, season=2, target_id=11904151)
    ours = MultiBandLightCurve.read(path, format=f"{mission}.lightcurve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lk.read(str(path), quality_bitmask="default")
    keep = np.isfinite(theirs.flux.value) & np.isfinite(theirs.time.value)
    np.testing.assert_allclose(ours.time.mjd, theirs.time.tdb.mjd[keep], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.flux.to_value(u.electron / u.s),
                               theirs.flux.to_value(u.electron / u.s)[keep], rtol=1e-6)
    np.testing.assert_allclose(ours.flux_err.to_value(u.electron / u.s),
                               theirs.flux_err.to_value(u.electron / u.s)[keep], rtol=1e-6)


@pytest.mark.parametrize("mission", ["tess", "kepler", "k2"])
def test_bytes_reader_equals_astropy_table_reader(tmp_path, mission, monkeypatch):
    """Reading the file's bytes directly gives exactly what astropy's fits.open
    and FITS_rec give."""
    rng = np.random.default_rng(8)
    n = 300
    path = write_lc(tmp_path / f"{mission}_lc.fits", mission,
                    time=np.sort(rng.uniform(100, 130, n)), pdcsap=rng.normal(500, 3, n),
                    pdcsap_err=rng.uniform(1, 2, n),
                    quality=np.where(rng.random(n) < 0.2, 1024, 0))
    raw = path.read_bytes()
    (primary, _), (header, start) = tess_kepler._headers_from_bytes(raw, 2)
    with fits.open(path) as hdul:
        assert start == hdul.fileinfo(1)["datLoc"]
        assert dict(primary) == dict(hdul[0].header)
        assert dict(header) == dict(hdul[1].header)
        direct = tess_kepler._table_columns(raw, start, header,
                                            {"TIME", "PDCSAP_FLUX", "QUALITY", "SAP_QUALITY"})
        assert direct is not None                     # the plain layout takes the fast path
        table = hdul["LIGHTCURVE"].data
        for name, values in direct.items():
            np.testing.assert_array_equal(values, table[name])
    fast = tess_kepler.read_lightcurve_file(path)
    monkeypatch.setattr(tess_kepler, "_plain_file", lambda *a, **k: None)
    slow = tess_kepler.read_lightcurve_file(path)
    assert fast.keys() == slow.keys()
    for key in fast:
        if isinstance(fast[key], np.ndarray):
            assert fast[key].dtype == slow[key].dtype
            np.testing.assert_array_equal(fast[key], slow[key])
        else:
            assert fast[key] == slow[key]


def test_bytes_reader_leaves_scaled_and_vector_columns_to_astropy(tmp_path):
    """TZERO/TSCAL, a vector column or a cut data unit: astropy decodes (it
    applies the scaling, and names the damage)."""
    rng = np.random.default_rng(9)
    n = 50
    path = write_lc(tmp_path / "tess_lc.fits", "tess", time=np.sort(rng.uniform(1, 2, n)),
                    pdcsap=rng.normal(500, 3, n), pdcsap_err=np.full(n, 2.0),
                    quality=np.zeros(n, int))
    raw = path.read_bytes()
    (_, _), (_, start) = tess_kepler._headers_from_bytes(raw, 2)
    with fits.open(path) as hdul:
        cols = hdul["LIGHTCURVE"].columns
        quality = fits.Column(name="QUALITY", format="I", bzero=32768,
                              array=np.full(n, 40000, dtype="uint16"))
        vector = fits.Column(name="PDCSAP_FLUX", format="2E",
                             array=np.ones((n, 2), dtype="float32"))
        scaled = fits.BinTableHDU.from_columns(
            [c for c in cols if c.name != "QUALITY"] + [quality], header=hdul[1].header)
        vectors = fits.BinTableHDU.from_columns(
            [c for c in cols if c.name != "PDCSAP_FLUX"] + [vector], header=hdul[1].header)
        for hdu in (scaled, vectors):
            assert tess_kepler._table_columns(raw, start, hdu.header,
                                              {"TIME", "QUALITY", "PDCSAP_FLUX"}) is None
        assert tess_kepler._table_columns(raw[:start + 100], start, hdul[1].header,
                                          {"TIME"}) is None
        fits.HDUList([hdul[0].copy(), scaled]).writeto(tmp_path / "scaled_lc.fits")
    assert tess_kepler._plain_file(tmp_path / "scaled_lc.fits", lambda p, h: {"QUALITY"}) \
        is None
    arrays = tess_kepler.read_lightcurve_file(tmp_path / "scaled_lc.fits")
    assert (arrays["QUALITY"] == 40000).all()         # TZERO applied, by astropy


# --------------------------------------------------------------------------- file faults
def test_truncated_file_is_a_typed_error(tmp_path):
    from multilc.errors import FileFormatError

    path = write_lc(tmp_path / "t_lc.fits", "tess", time=np.arange(500.0),
                    pdcsap=np.ones(500), pdcsap_err=np.ones(500))
    data = path.read_bytes()
    for cut in (len(data) - 2880, len(data) - 100, 3000, 10):
        bad = tmp_path / f"cut{cut}_lc.fits"
        bad.write_bytes(data[:cut])
        with pytest.raises(tess_kepler.MissionFileError, match=bad.name) as info:
            tess_kepler.read_lightcurve_file(bad)
        assert isinstance(info.value, FileFormatError)


@pytest.mark.parametrize("unit, message", [(None, "has no unit"), ("ppm", "not e-/s")])
def test_flux_unit_checked(tmp_path, unit, message):
    path = write_lc(tmp_path / "u_lc.fits", "tess", time=[1.0], pdcsap=[1.0],
                    pdcsap_err=[1.0], flux_unit=unit)
    with pytest.raises(tess_kepler.MissionFileError, match=message):
        MultiBandLightCurve.read(path, format="tess.lightcurve")


def test_flux_unit_converted(tmp_path):
    """A flux declared in electron/min is converted, not taken as e-/s."""
    path = write_lc(tmp_path / "m_lc.fits", "tess", time=[1.0], pdcsap=[60.0],
                    pdcsap_err=[6.0], flux_unit="electron/min")
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve")
    np.testing.assert_allclose(lc.flux.to_value(u.electron / u.s), [1.0])
    np.testing.assert_allclose(lc.flux_err.to_value(u.electron / u.s), [0.1])


# --------------------------------------------------------------------------- MAST stand-in
@pytest.fixture
def mast(replay_server, monkeypatch, tmp_path):
    """Point the readers at a MAST stand-in; return a factory of stand-ins."""
    monkeypatch.setenv("MULTILC_MAST_URL", replay_server.url)
    monkeypatch.setenv("MULTILC_MAST_DOWNLOAD_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("MULTILC_MAST_POLL_INTERVAL", "0.01")
    return lambda observations, **kw: MastStandin(replay_server, observations, **kw)


def _collect(coords, archives, **kw):
    kw.setdefault("retries", 1)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return multilc.collect(coords, archives=archives, progress=False, cache=False, **kw)


def _tess_targets(tmp_path):
    ra, dec = 150.0, 2.0
    files = tmp_path / "files"
    files.mkdir()
    s1 = write_lc(files / "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits", "tess",
                  time=[1325.5, 1325.6], pdcsap=[1000.0, 1010.0], pdcsap_err=[2.0, 2.0],
                  quality=[0, 32], ra=ra, dec=dec, season=1)
    s2 = write_lc(files / "tess2018234235059-s0002-0000000025155310-0120-s_lc.fits", "tess",
                  time=[1354.2], pdcsap=[990.0], pdcsap_err=[2.0], ra=ra, dec=dec, season=2)
    qlp = write_lc(files / "hlsp_qlp_tess_ffi_s0001-0000000025155310_tess_v01_llc.fits",
                   "tess", time=[1325.7], pdcsap=[5.0], pdcsap_err=[1.0], ra=ra, dec=dec)
    fast = write_lc(files / "tess2018206045859-s0001-0000000025155310-0091-a_fast-lc.fits",
                    "tess", time=[1325.5], pdcsap=[7.0], pdcsap_err=[1.0], ra=ra, dec=dec)
    obs = [
        mission_observation(s1, project="TESS", author="SPOC", exptime=120, seq=1, ra=ra,
                            dec=dec, obsid=1001, target=25155310,
                            extra_products=["tess2018206045859-s0001-0000000025155310-0120"
                                            "-s_tp.fits"]),
        mission_observation(s2, project="TESS", author="SPOC", exptime=120, seq=2, ra=ra,
                            dec=dec, obsid=1002, target=25155310),
        mission_observation(qlp, project="TESS", author="QLP", exptime=1800, seq=1, ra=ra,
                            dec=dec, obsid=1003, target=25155310),
        mission_observation(fast, project="TESS", author="SPOC", exptime=20, seq=1, ra=ra,
                            dec=dec, obsid=1004, target=25155310),
        # an HST image at the same place: not a TESS time series
        {**mission_observation(b"", project="HST", author="CALWF3", exptime=500, seq=None,
                               ra=ra, dec=dec, obsid=1005, target="X",
                               filename="hst_x_drz.fits"), "dataproduct_type": "image"},
        # a TESS target 3 arcsec away: outside the 2-arcsec radius
        mission_observation(s2, project="TESS", author="SPOC", exptime=120, seq=2, ra=ra,
                            dec=dec + 3 / 3600, obsid=1006, target=99,
                            filename="tess-s0002-0000000000000099-s_lc.fits"),
    ]
    return ra, dec, obs


def test_collect_tess_through_mast_standin(mast, tmp_path):
    ra, dec, obs = _tess_targets(tmp_path)
    standin = mast(obs)
    coords = SkyCoord([ra, ra + 1.0] * u.deg, [dec, dec] * u.deg)    # second: nothing there
    lc = _collect(coords, ["tess"], radius=2 * u.arcsec)
    assert lc.report.failures == []
    # What was asked: one crossmatch for both targets, in the MAST API request shape.
    (xmatch,) = [r for r in standin.invocations if r["service"] == "Mast.Caom.Crossmatch"]
    assert xmatch["format"] == "json" and xmatch["page"] == 1 and xmatch["pagesize"] >= 1
    assert xmatch["params"]["raColumn"] == "ra" and xmatch["params"]["decColumn"] == "dec"
    assert xmatch["params"]["radius"] == pytest.approx(2 / 3600, rel=1e-12)   # degrees
    assert [f["name"] for f in xmatch["data"]["fields"]] == ["ra", "dec", "objectid"]
    assert xmatch["data"]["data"] == [{"ra": ra, "dec": dec, "objectid": 1},
                                      {"ra": ra + 1.0, "dec": dec, "objectid": 2}]
    # One product list, for the two SPOC 2-min observations only.
    (products,) = [r for r in standin.invocations if r["service"] == "Mast.Caom.Products"]
    assert products["params"]["obsid"] == "1001,1002"
    assert standin.count() == 2
    # Only the two light-curve files were downloaded (not the TPF, QLP, fast, HST).
    assert standin.downloads == 2
    np.testing.assert_allclose(lc.time.mjd, [1325.5 + 56999.5, 1354.2 + 56999.5], atol=1e-6)
    np.testing.assert_allclose(lc.flux.to_value(u.electron / u.s), [1000.0, 990.0])
    (reason, count), = lc.report.dropped["tess"].items()     # bit 32 = Desat
    assert count == 1 and reason.startswith("QUALITY & ")
    assert str(lc.ds["band_notes"].values[0]).split("; ") == \
        ["SPOC", "PDCSAP_FLUX", "sector 1", "sector 2"]
    np.testing.assert_array_equal(lc.objectids_with_data, [1])

    # Second run: the files already downloaded are not fetched again.
    again = _collect(coords[:1], ["tess"], radius=2 * u.arcsec)
    assert standin.downloads == 2 and standin.count() == 4
    np.testing.assert_allclose(again.flux.value, lc.flux.value)


def test_crossmatch_requests_are_ceil_n_over_chunk(mast, tmp_path):
    rng = np.random.default_rng(2)
    n, chunk = 23, 10
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-80, 80, n)
    obs = []
    for i in range(0, n, 3):     # every third target has one sector
        data = write_mission_lightcurve(None, "tess", time=[1500.0 + i], pdcsap=[100.0 + i],
                                        pdcsap_err=[1.0], target_id=1000 + i, ra=ra[i],
                                        dec=dec[i])
        obs.append(mission_observation(data, project="TESS", author="SPOC", exptime=120,
                                       seq=1, ra=ra[i], dec=dec[i], obsid=5000 + i,
                                       target=1000 + i, filename=f"tess-{1000 + i}-s_lc.fits"))
    standin = mast(obs)
    lc = _collect(SkyCoord(ra * u.deg, dec * u.deg), ["tess"], chunk_size=chunk)
    assert lc.report.ok
    xmatches = [r for r in standin.invocations if r["service"] == "Mast.Caom.Crossmatch"]
    assert len(xmatches) == math.ceil(n / chunk) == 3
    uploaded = sorted(row["objectid"] for r in xmatches for row in r["data"]["data"])
    assert uploaded == list(range(1, n + 1))
    assert max(len(r["data"]["data"]) for r in xmatches) == chunk
    products = [r for r in standin.invocations if r["service"] == "Mast.Caom.Products"]
    assert len(products) == 3       # one per batch that found something
    assert standin.downloads == len(obs)
    np.testing.assert_array_equal(lc.objectids_with_data, np.arange(1, n + 1, 3))
    np.testing.assert_allclose(lc.flux.value, 100.0 + np.arange(0, n, 3))
    np.testing.assert_allclose(lc.time.mjd, 1500.0 + np.arange(0, n, 3) + 56999.5,
                               atol=1e-6)


def test_paging_and_long_polling(mast, tmp_path):
    ra, dec, obs = _tess_targets(tmp_path)
    standin = mast(obs, max_pagesize=2, executing=2)
    coords = SkyCoord([ra] * u.deg, [dec] * u.deg)
    lc = _collect(coords, ["tess"], radius=2 * u.arcsec)
    assert lc.report.ok
    np.testing.assert_allclose(lc.flux.value, [1000.0, 990.0])
    pages = [(r["service"], r["page"]) for r in standin.invocations]
    # 2 EXECUTING answers re-issued as the same request; crossmatch rows: 5
    # observations within 2 arcsec (not the one at 3 arcsec) -> 3 pages of 2.
    assert pages == [("Mast.Caom.Crossmatch", 1)] * 3 + \
        [("Mast.Caom.Crossmatch", 2), ("Mast.Caom.Crossmatch", 3),
         ("Mast.Caom.Products", 1), ("Mast.Caom.Products", 2)]


def test_incomplete_answer_is_a_transient_failure(mast, tmp_path):
    ra, dec, obs = _tess_targets(tmp_path)
    standin = mast(obs)
    real = standin._json

    def short(obj):           # declares one row more than it sends
        if obj.get("paging"):
            obj["paging"]["rowsFiltered"] += 1
        return real(obj)

    standin._json = short
    coords = SkyCoord([ra, ra + 1] * u.deg, [dec, dec] * u.deg)
    lc = _collect(coords, ["tess"], radius=2 * u.arcsec, retries=1)
    (failure,) = lc.report.failures
    assert failure.objectids == [1, 2] and failure.transient and failure.attempts == 2
    assert "incomplete" in failure.message and "rowsFiltered" in failure.message


def test_status_error_and_http_error_fail_the_batch(mast, tmp_path, replay_server):
    ra, dec, obs = _tess_targets(tmp_path)
    mast(obs)
    replay_server.faults("/api/v0/invoke", [Fault.status(400)])
    lc = _collect(SkyCoord([ra] * u.deg, [dec] * u.deg), ["tess"], retries=0)
    (failure,) = lc.report.failures
    assert failure.archive == "tess" and failure.objectids == [1] and "400" in failure.message
    # a transient 503 is retried and the result equals the fault-free one
    replay_server.faults("/api/v0/invoke", [Fault.status(503)])
    lc = _collect(SkyCoord([ra] * u.deg, [dec] * u.deg), ["tess"], radius=2 * u.arcsec)
    assert lc.report.ok and len(lc.time) == 2


def test_per_target_isolation(mast, tmp_path, replay_server):
    """A truncated file, a wrong unit and a missing file fail their own target only."""
    files = tmp_path / "files"
    files.mkdir()
    pos = [(10.0, 5.0), (20.0, 5.0), (30.0, 5.0), (40.0, 5.0)]
    obs = []
    for i, (ra, dec) in enumerate(pos):
        path = write_lc(files / f"tess-{i}-s_lc.fits", "tess", time=np.arange(100.0) + i,
                        pdcsap=np.full(100, 10.0 * (i + 1)), pdcsap_err=np.ones(100),
                        ra=ra, dec=dec, target_id=i + 1,
                        flux_unit="ppm" if i == 1 else "e-/s")
        content = path.read_bytes()
        if i == 0:
            content = content[:len(content) - 4000]      # cut off, size listed as cut
        obs.append(mission_observation(content, project="TESS", author="SPOC",
                                       exptime=120, seq=1, ra=ra, dec=dec, obsid=700 + i,
                                       target=i + 1, filename=path.name))
    standin = mast(obs)
    standin._files.pop(MastStandin.uri(obs[2], obs[2]["products"][0]))   # 404
    coords = SkyCoord([p[0] for p in pos] * u.deg, [p[1] for p in pos] * u.deg)
    lc = _collect(coords, ["tess"])
    failures = {tuple(f.objectids): f for f in lc.report.failures}
    assert set(failures) == {(1,), (2,), (3,)}
    assert failures[(1,)].error_type == "MissionFileError"
    assert "truncated" in failures[(1,)].message and "tess-0-s_lc.fits" in failures[(1,)].message
    assert failures[(2,)].error_type == "MissionFileError" and "ppm" in failures[(2,)].message
    assert "404" in failures[(3,)].message and not failures[(3,)].transient
    np.testing.assert_array_equal(np.unique(lc.objectids_with_data), [4])
    np.testing.assert_allclose(lc.flux.value, np.full(100, 40.0))
    # the damaged file is not kept in the download folder
    assert not list((tmp_path / "downloads").rglob("tess-0-s_lc.fits"))


def test_transient_download_fault_is_retried(mast, tmp_path, replay_server):
    ra, dec, obs = _tess_targets(tmp_path)
    standin = mast(obs)
    replay_server.faults("/api/v0.1/Download/file",
                         [Fault.status(503),
                          Fault.truncated(fraction=0.5, declare_full_length=True)])
    lc = _collect(SkyCoord([ra] * u.deg, [dec] * u.deg), ["tess"], radius=2 * u.arcsec)
    assert lc.report.ok
    np.testing.assert_allclose(lc.flux.value, [1000.0, 990.0])
    assert standin.downloads == 4          # 2 files + 2 faults retried


def test_kepler_nearest(mast, tmp_path):
    ra, dec = 290.0, 44.0
    files = tmp_path / "files"
    files.mkdir()
    near = write_lc(files / "kplr011904151-2009259160929_llc.fits", "kepler",
                    time=[200.0, 200.02], pdcsap=[50.0, 51.0], pdcsap_err=[0.5, 0.5],
                    target_id=11904151, season=3, ra=ra, dec=dec + 0.3 / 3600)
    far = write_lc(files / "kplr011904152-2009259160929_llc.fits", "kepler",
                   time=[200.0], pdcsap=[9.0], pdcsap_err=[0.5], target_id=11904152,
                   season=3, ra=ra, dec=dec + 1.5 / 3600)
    short = write_lc(files / "kplr011904151-2009259160929_slc.fits", "kepler",
                     time=[200.0], pdcsap=[9.0], pdcsap_err=[0.5], target_id=11904151,
                     season=3, ra=ra, dec=dec + 0.3 / 3600)
    standin = mast([
        mission_observation(near, project="Kepler", author="Kepler", exptime=1800,
                            seq=None, ra=ra, dec=dec + 0.3 / 3600, obsid=2001,
                            target="kplr011904151"),
        mission_observation(far, project="Kepler", author="Kepler", exptime=1800, seq=None,
                            ra=ra, dec=dec + 1.5 / 3600, obsid=2002, target="kplr011904152"),
        mission_observation(short, project="Kepler", author="Kepler", exptime=60, seq=None,
                            ra=ra, dec=dec + 0.3 / 3600, obsid=2003, target="kplr011904151"),
    ])
    lc = _collect(SkyCoord([ra] * u.deg, [dec] * u.deg), ["kepler"], radius=3 * u.arcsec,
                  options={"kepler": {"match": "nearest"}})
    assert lc.report.ok
    (products,) = [r for r in standin.invocations if r["service"] == "Mast.Caom.Products"]
    assert products["params"]["obsid"] == "2001,2002"      # long cadence only
    np.testing.assert_array_equal(lc.ds["source_id"].values, [11904151, 11904151])
    np.testing.assert_allclose(lc.time.mjd, [200.0 + 54832.5, 200.02 + 54832.5], atol=1e-6)
    np.testing.assert_allclose(lc.ds["separation"].values, 0.3, atol=1e-3)
    assert lc.report.dropped["kepler"]["not the nearest target (match='nearest')"] == 1
    assert "quarter 3" in str(lc.ds["band_notes"].values[0])


def test_three_missions_at_once_leave_stdout_alone(mast, monkeypatch):
    """No lightkurve search/download call, no sys.stdout swap, no lock."""
    from multilc.testing.mast import synthetic_observations

    lk_search = pytest.importorskip("lightkurve.search")
    for name in ("search_lightcurve", "search_targetpixelfile"):
        monkeypatch.setattr(lk_search, name, lambda *a, **k: pytest.fail("lightkurve search"))
    rng = np.random.default_rng(9)
    ra, dec = rng.uniform(0, 360, 12), rng.uniform(-60, 60, 12)
    obs, expected = synthetic_observations(ra, dec, seed=4, n_cadences=50)
    mast(obs)
    stdout = sys.stdout
    lc = _collect(SkyCoord(ra * u.deg, dec * u.deg), ["tess", "kepler", "k2"],
                  chunk_size=5, quality_bitmask="none")
    assert sys.stdout is stdout and not sys.stdout.closed
    assert lc.report.ok
    for (i, mission), pieces in expected.items():
        band = tess_kepler.MISSIONS[mission].band
        got = np.sort(lc.select(objectid=i + 1, band=band).flux.value)
        want = np.sort(np.concatenate([f for _, f in pieces]))
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.remote_data
def test_remote_tess():
    lc = multilc.collect(SkyCoord.from_name("pi Men"), archives=["tess"],
                         radius=2 * u.arcsec, progress=False)
    assert "tess:TESS" in lc.bands
    assert (lc.time.mjd > 58300).all()


@pytest.mark.remote_data
def test_remote_kepler_and_k2():
    lc = multilc.collect(SkyCoord(285.67942179, 50.24130576, unit="deg"),   # Kepler-10
                         archives=["kepler"], radius=2 * u.arcsec, progress=False)
    assert lc.bands == ["kepler:Kepler"]
    assert (lc.time.mjd > 54900).all() and (lc.time.mjd < 56500).all()
    k2 = multilc.collect(SkyCoord(172.560141, 7.588391, unit="deg"),        # K2-18
                         archives=["k2"], radius=2 * u.arcsec, progress=False)
    assert k2.bands == ["k2:K2"]


# --------------------------------------------------------------------------- fuzz
def test_fuzz_damaged_files_end_as_data_or_typed_error(tmp_path):
    """300 damaged copies of a SPOC file (seed 12): each is read as valid data
    or refused with a multilc error; never another exception, never a NaN,
    negative error or non-finite time in the result."""
    from multilc.errors import MultilcError

    rng = np.random.default_rng(12)
    n = 300
    t = np.sort(rng.uniform(1000, 1027, n))
    good = write_lc(tmp_path / "good_lc.fits", "tess", time=t,
                    pdcsap=rng.normal(1000, 5, n), pdcsap_err=np.full(n, 5.0),
                    quality=np.where(rng.random(n) < 0.1, 32, 0)).read_bytes()
    outcomes = {"data": 0, "error": 0}
    for case in range(300):
        data = bytearray(good)
        kind = case % 3
        if kind == 0:                               # cut at a random byte
            data = data[:int(rng.integers(0, len(data)))]
        elif kind == 1:                             # flip 1-8 random bits
            for _ in range(int(rng.integers(1, 9))):
                i = int(rng.integers(0, len(data)))
                data[i] ^= 1 << int(rng.integers(0, 8))
        else:                                       # overwrite a run with garbage
            i = int(rng.integers(0, len(data) - 64))
            data[i:i + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        path = tmp_path / f"case{case}_lc.fits"
        path.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lc = MultiBandLightCurve.read(path, format="tess.lightcurve")
        except MultilcError:
            outcomes["error"] += 1
            continue
        outcomes["data"] += 1
        assert np.isfinite(lc.time.mjd).all()
        assert np.isfinite(lc.flux.value).all()
        assert (lc.flux_err.value > 0).all() and np.isfinite(lc.flux_err.value).all()
    assert outcomes["data"] > 0 and outcomes["error"] > 0
