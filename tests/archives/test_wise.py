"""Tests of the unWISE and NEOWISE bulk readers against local parquet catalogs."""
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

hpgeom = pytest.importorskip("hpgeom")
pa = pytest.importorskip("pyarrow")

import multilc  # noqa: E402
from multilc.catalogs import hats as healpix  # noqa: E402
from multilc.testing import catalogs  # noqa: E402

FAST = dict(retries=1, backoff=0.01, timeout=5, progress=False)
#: Vega -> AB offsets W1, W2 (WISE All-Sky Explanatory Supplement IV.4.h).
AB_OFFSET = {1: 2.699, 2: 3.339}


def ab_mjy(m_ab):
    """AB magnitude -> mJy by the definition m = -2.5 log10 f_nu[cgs] - 48.60."""
    return 1e26 * 10 ** (-0.4 * (np.asarray(m_ab, float) + 48.60))


def nmgy_mjy(flux_nmgy, band):
    """Vega nanomaggies: m_Vega = 22.5 - 2.5 log10 f, m_AB = m_Vega + offset."""
    return np.asarray(flux_nmgy, float) * ab_mjy(22.5 + AB_OFFSET[band])


def expected_tdb(mjd_utc, ra, dec):
    """Geocentric MJD(UTC) -> barycentric MJD(TDB), straight astropy."""
    from astropy.coordinates import EarthLocation

    t = Time(np.asarray(mjd_utc, float), format="mjd", scale="utc",
             location=EarthLocation.from_geocentric(0, 0, 0, unit=u.m))
    return (t.tdb + t.light_travel_time(SkyCoord(ra * u.deg, dec * u.deg))).mjd


def pixel5(ra, dec):
    return int(hpgeom.angle_to_pixel(32, ra, dec, nest=True))


# three targets in different order-5 pixels, well inside them
TARGETS = SkyCoord([30.0, 120.0, 300.0] * u.deg, [10.0, -40.0, 60.0] * u.deg)


def _unwise_rows():
    t0 = TARGETS[0]
    near = t0.directional_offset_by(0 * u.deg, 0.4 * u.arcsec)
    far = t0.directional_offset_by(90 * u.deg, 1.5 * u.arcsec)
    rows = [  # (coord, mjd, flux, dflux, band, primary)
        (near, 55300.5, 120.0, 3.0, 1, 1),
        (near, 55480.25, -4.0, 3.0, 1, 1),     # non-positive: kept, upper limit
        (near, 55300.5, 80.0, 2.0, 2, 1),
        (near, 55300.5, 121.0, 3.0, 1, 0),     # secondary duplicate: dropped
        (far, 55300.5, 60.0, 3.0, 1, 1),       # second detection, same epoch
        (TARGETS[1], 56000.0, 10.0, 1.0, 2, 1),
        # inside the coarse RA/Dec box but 2.6" away: read, then rejected by the cone
        (TARGETS[2].directional_offset_by(45 * u.deg, 2.6 * u.arcsec), 56000.0, 9.0, 1.0, 1, 1),
    ]
    rng = np.random.default_rng(1)
    ra = [c.ra.deg for c, *_ in rows] + list(rng.uniform(0, 360, 2000))
    dec = [c.dec.deg for c, *_ in rows] + list(rng.uniform(-80, 80, 2000))
    n_bg = 2000
    return catalogs.unwise_table(
        ra, dec, mjd=[r[1] for r in rows] + [57000.0] * n_bg,
        flux=[r[2] for r in rows] + [1.0] * n_bg, dflux=[r[3] for r in rows] + [1.0] * n_bg,
        band=[r[4] for r in rows] + [1] * n_bg, primary=[r[5] for r in rows] + [1] * n_bg)


@pytest.fixture
def unwise_root(tmp_path, monkeypatch):
    root = tmp_path / "unwise-neo7-time_domain-healpix_k5.parquet"
    catalogs.write_hive_catalog(_unwise_rows(), root, order=5)
    monkeypatch.setenv("MULTILC_UNWISE_UNWISE_URL", str(root))
    return root


def test_unwise_values_times_flags_and_partitions(unwise_root):
    healpix.read_log.clear()
    lc = multilc.collect(TARGETS, archives=["unwise"], radius=2 * u.arcsec, **FAST)
    assert lc.report.ok, lc.report.summary()
    opens = healpix.read_log.partition_opens()
    assert {p for _, _, p in opens} == {pixel5(c.ra.deg, c.dec.deg) for c in TARGETS}
    assert set(opens.values()) == {1}
    assert lc.report.dropped["unwise"] == {"primary != 1": 1}

    w1 = lc.select(objectid=1, band="wise:W1")
    flux = np.sort(w1.flux.to_value(u.mJy))
    np.testing.assert_allclose(flux, np.sort(nmgy_mjy([120.0, -4.0, 60.0], 1)), rtol=1e-6)
    np.testing.assert_allclose(w1.flux_err.to_value(u.mJy), nmgy_mjy([3.0] * 3, 1), rtol=1e-6)
    limits = np.asarray(w1.upper_limit)
    assert limits.sum() == 1 and w1.flux.to_value(u.mJy)[limits][0] < 0
    w2 = lc.select(objectid=1, band="wise:W2")
    np.testing.assert_allclose(w2.flux.to_value(u.mJy), nmgy_mjy([80.0], 2), rtol=1e-6)
    near = TARGETS[0].directional_offset_by(0 * u.deg, 0.4 * u.arcsec)
    np.testing.assert_allclose(w2.time.mjd, expected_tdb([55300.5], near.ra.deg, near.dec.deg),
                               atol=1e-7, rtol=0)
    np.testing.assert_allclose(np.sort(np.asarray(w1.ds["separation"])), [0.4, 0.4, 1.5],
                               atol=1e-4)
    assert lc.select(objectid=2).bands == ["wise:W2"]
    assert 3 not in lc.objectids_with_data  # its only detection is 2.6" away


def test_unwise_nearest_per_epoch_and_options(unwise_root):
    lc = multilc.collect(TARGETS[:1], archives=["unwise"], radius=2 * u.arcsec,
                         options={"unwise": {"match": "nearest", "primary_only": False,
                                             "bands": ["W1"]}}, **FAST)
    # epoch 55300.5 W1: primary 120 (0.4"), secondary 121 (0.4") and 60 (1.5")
    assert lc.bands == ["wise:W1"]
    assert lc.report.dropped["unwise"] == {"not the nearest detection (match='nearest')": 2}
    assert len(lc) == 2


def test_unwise_isophotal_zero_point(unwise_root):
    lc = multilc.collect(TARGETS[1:2], archives=["unwise"], radius=2 * u.arcsec,
                         options={"unwise": {"wise_zero_point": "isophotal"}}, **FAST)
    # W2 F_nu0 = 171.787 Jy (Jarrett et al. 2011): 10 nmgy = 10 * 10**(-9) * F_nu0
    np.testing.assert_allclose(lc.flux.to_value(u.mJy), 10 * 1e-9 * 171.787e3, rtol=1e-9)


def test_unwise_bad_options():
    with pytest.raises(ValueError, match="unwise: match must be"):
        multilc.collect(TARGETS, archives=["unwise"], options={"unwise": {"match": "x"}},
                        **FAST)
    with pytest.raises(TypeError, match="unwise: radius must be an angle Quantity"):
        multilc.collect(TARGETS, archives=["unwise"], radius=2.0, **FAST)


def test_unwise_through_local_s3(unwise_root, monkeypatch):
    prefix = "unwise/neo7/catalogs/time_domain/healpix_k5/" + unwise_root.name
    with catalogs.moto_s3([(unwise_root, prefix)]) as endpoint:
        monkeypatch.setenv("MULTILC_UNWISE_UNWISE_URL", f"s3://multilc-test/{prefix}")
        monkeypatch.setenv("MULTILC_UNWISE_S3_ENDPOINT", endpoint)
        healpix.read_log.clear()
        lc = multilc.collect(TARGETS, archives=["unwise"], radius=2 * u.arcsec, **FAST)
    assert lc.report.ok, lc.report.summary()
    assert len(lc) == 5
    np.testing.assert_allclose(np.sort(lc.select(band="wise:W2").flux.to_value(u.mJy)),
                               np.sort([nmgy_mjy(80.0, 2), nmgy_mjy(10.0, 2)]), rtol=1e-6)
    opens = healpix.read_log.partition_opens()
    assert len(opens) == 3 and set(opens.values()) == {1}
    assert all(root.startswith("multilc-test/") for root, _, _ in opens)


def test_unreadable_catalog_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTILC_UNWISE_UNWISE_URL", str(tmp_path / "missing.parquet"))
    lc = multilc.collect(TARGETS, archives=["unwise"], **FAST)
    assert len(lc) == 0
    assert {f.archive for f in lc.report.failures} == {"unwise"}
    assert sorted(i for f in lc.report.failures for i in f.objectids) == [1, 2, 3]


# --------------------------------------------------------------------------- NEOWISE
@pytest.fixture
def neowise_template(tmp_path, monkeypatch):
    t0 = TARGETS[0].directional_offset_by(0 * u.deg, 0.3 * u.arcsec)
    t1 = TARGETS[1]
    rows = {
        "year1": [  # ra, dec, mjd, w1, w1sig, w2, w2sig, cc_flags, qual_frame
            (t0, 56700.1, 14.0, 0.02, 13.5, 0.03, "0000", 10),
            (t0, 56700.2, 14.1, np.nan, np.nan, np.nan, "0000", 10),   # W1 limit, W2 null
            (t0, 56700.3, 14.2, 0.02, 13.6, 0.03, "D000", 10),         # contaminated
            (t1, 56800.0, 12.0, 0.01, 11.5, 0.01, "0000", 0),          # bad frame
        ],
        "year2": [(t0, 57100.5, 14.3, 0.02, 13.7, 0.03, "0000", 5)],
    }
    for year, rr in rows.items():
        table = catalogs.neowise_table(
            [r[0].ra.deg for r in rr], [r[0].dec.deg for r in rr], mjd=[r[1] for r in rr],
            w1mpro=[r[2] for r in rr], w1sigmpro=[r[3] for r in rr],
            w2mpro=[r[4] for r in rr], w2sigmpro=[r[5] for r in rr],
            cc_flags=[r[6] for r in rr], qual_frame=[r[7] for r in rr],
            cntr=[1000 * int(year[-1]) + i for i in range(len(rr))])
        catalogs.write_hive_catalog(table, tmp_path / year / f"neowiser-healpix_k5-{year}.parquet",
                                    order=5, parent_order=0)
    template = str(tmp_path / "{year}" / "neowiser-healpix_k5-{year}.parquet")
    monkeypatch.setenv("MULTILC_NEOWISE_NEOWISE_URL", template)
    monkeypatch.setenv("MULTILC_NEOWISE_NEOWISE_YEARS", "year1 year2")
    return template


def test_neowise_quality_cut_limits_and_years(neowise_template):
    healpix.read_log.clear()
    lc = multilc.collect(TARGETS, archives=["neowise"], radius=1 * u.arcsec, **FAST)
    assert lc.report.ok, lc.report.summary()
    assert lc.report.dropped["neowise"] == {"cc_flags != '0000'": 1, "qual_frame == 0": 1,
                                            "w2mpro is null": 1}
    opens = healpix.read_log.partition_opens()
    # 3 target partitions x 2 years; empty partitions have no file to open
    assert set(opens.values()) == {1}
    assert {root.split("/")[-2] for root, _, _ in opens} == {"year1", "year2"}
    assert {p for _, _, p in opens} <= {pixel5(c.ra.deg, c.dec.deg) for c in TARGETS}
    w1 = lc.select(band="wise:W1")
    order = np.argsort(w1.time.mjd)
    np.testing.assert_allclose(w1.flux.to_value(u.mJy)[order],
                               ab_mjy(np.array([14.0, 14.1, 14.3]) + 2.699), rtol=1e-9)
    assert np.asarray(w1.upper_limit)[order].tolist() == [False, True, False]
    assert np.isnan(w1.flux_err.to_value(u.mJy)[order][1])
    np.testing.assert_allclose(w1.flux_err.to_value(u.mJy)[order][0],
                               ab_mjy(16.699) * 0.4 * np.log(10) * 0.02, rtol=1e-9)
    t0 = TARGETS[0].directional_offset_by(0 * u.deg, 0.3 * u.arcsec)
    np.testing.assert_allclose(w1.time.mjd[order],
                               expected_tdb([56700.1, 56700.2, 57100.5], t0.ra.deg, t0.dec.deg),
                               atol=1e-7, rtol=0)
    w2 = lc.select(band="wise:W2")
    np.testing.assert_allclose(np.sort(w2.flux.to_value(u.mJy)),
                               np.sort(ab_mjy(np.array([13.5, 13.7]) + 3.339)), rtol=1e-9)
    assert sorted(set(lc.source_id.tolist())) == [1000, 1001, 2000]
    assert lc.objectids_with_data == [1]


def test_neowise_quality_disabled(neowise_template):
    lc = multilc.collect(TARGETS, archives=["neowise"], radius=1 * u.arcsec,
                         options={"neowise": {"quality": None}}, **FAST)
    assert "cc_flags != '0000'" not in lc.report.dropped["neowise"]
    assert sorted(lc.objectids_with_data) == [1, 2]


# --------------------------------------------------------------------------- live
@pytest.mark.remote_data
def test_live_unwise():
    lc = multilc.collect(SkyCoord(150.0 * u.deg, 2.0 * u.deg), archives=["unwise"],
                         radius=2 * u.arcsec, progress=False)
    assert lc.report.ok


@pytest.mark.remote_data
def test_live_neowise():
    import os

    os.environ.setdefault("MULTILC_NEOWISE_NEOWISE_YEARS", "year10")
    lc = multilc.collect(SkyCoord(150.0 * u.deg, 2.0 * u.deg), archives=["neowise"],
                         radius=2 * u.arcsec, progress=False)
    assert lc.report.ok


# --------------------------------------------------------------------------- issue 10: trust
def _unwise_parse(table, **options):
    from multilc.archives.wise import UnWISE
    from multilc.collect.api import Batch

    arch = UnWISE(**options)
    n = table.num_rows
    table = table.append_column("_target", pa.array(np.zeros(n, "int64")))
    table = table.append_column("_separation_arcsec", pa.array(np.full(n, 0.1)))
    batch = Batch("unwise", 0, np.array([5]), np.array([30.0]), np.array([10.0]),
                  np.array([""]), {**arch.batch_options(), "partitions": []})
    return arch.parse(table, batch)


def test_unwise_values_outside_the_contract_are_counted():
    t = catalogs.unwise_table([30.0] * 5, [10.0] * 5, mjd=[55300.5, -999.0, 55301, 55302, 55303],
                              flux=[10.0, 10.0, np.nan, 10.0, 10.0],
                              dflux=[1.0, 1.0, 1.0, -1.0, 1.0], band=[1, 1, 1, 1, 3])
    res = _unwise_parse(t)
    assert len(res.lc) == 1
    assert res.dropped == {"MJDMEAN outside [33282, 69807] d": 1,
                           "flux missing (null/NaN)": 1, "dflux <= 0": 1,
                           "band outside [1, 2]": 1}


def test_unwise_declared_flux_unit_other_than_nanomaggies_is_refused():
    from multilc.collect.contract import ResponseError

    t = catalogs.unwise_table([30.0], [10.0], mjd=[55300.5], flux=[10.0], dflux=[1.0],
                              band=[1])
    i = t.schema.get_field_index("flux")
    t = t.set_column(i, t.schema.field("flux").with_metadata({b"unit": b"Jy"}), t["flux"])
    with pytest.raises(ResponseError, match="not Vega nanomaggies"):
        _unwise_parse(t)
    t = t.set_column(i, t.schema.field("flux").with_metadata({b"unit": b"nanomaggies"}),
                     t["flux"])
    assert len(_unwise_parse(t).lc) == 1
