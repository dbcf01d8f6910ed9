"""Tests of the shared bulk-catalog mechanics (multilc.collect.healpix)."""
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

hpgeom = pytest.importorskip("hpgeom")
pa = pytest.importorskip("pyarrow")

from multilc.collect import healpix  # noqa: E402
from multilc.testing import catalogs  # noqa: E402


def _pixel_centres(order, pixels):
    ra, dec = hpgeom.pixel_to_angle(hpgeom.order_to_nside(order), np.asarray(pixels),
                                    nest=True)
    return np.asarray(ra, float), np.asarray(dec, float)


def _sky(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


# --------------------------------------------------------------------------- planning
def test_partitions_touched_contains_every_pixel_of_the_cone():
    ra, dec = _sky(30, 1)
    radius = 0.5 * u.deg
    touched = healpix.partitions_touched(ra, dec, radius, 5)
    nside = hpgeom.order_to_nside(5)
    for r, d, keys in zip(ra, dec, touched):
        # independent check: points on the cone's edge and centre
        centre = SkyCoord(r * u.deg, d * u.deg)
        ring = centre.directional_offset_by(np.linspace(0, 360, 72) * u.deg, radius * 0.999)
        pix = set(hpgeom.angle_to_pixel(nside, ring.ra.deg, ring.dec.deg, nest=True).tolist())
        pix.add(int(hpgeom.angle_to_pixel(nside, r, d, nest=True)))
        assert pix <= {p for o, p in keys}
        assert all(o == 5 for o, _ in keys)


def test_partitions_touched_respects_an_adaptive_tiling():
    # order-1 pixel 0 is split into its four order-2 children; everything else order 1
    tiling = [(2, 0), (2, 1), (2, 2), (2, 3)] + [(1, p) for p in range(1, 48)]
    ra, dec = _pixel_centres(2, [1])
    touched = healpix.partitions_touched(ra, dec, 1 * u.arcsec, tiling)
    assert touched == [[(2, 1)]]
    ra, dec = _pixel_centres(1, [7])
    assert healpix.partitions_touched(ra, dec, 1 * u.arcsec, tiling) == [[(1, 7)]]


def test_group_partitions_links_partitions_sharing_a_target():
    touched = [[(5, 1)], [(5, 1), (5, 2)], [(5, 3)], [], [(5, 2), (5, 4)], [(5, 3)]]
    groups = healpix.group_partitions(touched)
    assert [g[0] for g in groups] == [[(5, 1), (5, 2), (5, 4)], [(5, 3)]]
    assert groups[0][1].tolist() == [0, 1, 4]
    assert groups[1][1].tolist() == [2, 5]


def test_plan_partition_batches_puts_each_partition_in_one_batch():
    from multilc.collect.api import Archive
    from multilc.samples import as_sample

    class Dummy(Archive):
        name = "dummy"

    ra, dec = _sky(200, 2)
    sample = as_sample(SkyCoord(ra * u.deg, dec * u.deg))
    touched = healpix.partitions_touched(ra, dec, 0.3 * u.deg, 3)
    batches = healpix.plan_partition_batches(Dummy(), sample, touched)
    seen = [tuple(k) for b in batches for k in b.options["partitions"]]
    assert len(seen) == len(set(seen)) == len({k for t in touched for k in t})
    by_id = {int(i): n for n, i in enumerate(np.asarray(sample.objectid))}
    for b in batches:
        keys = {tuple(k) for k in b.options["partitions"]}
        for oid in b.objectid:
            assert set(touched[by_id[int(oid)]]) <= keys
    assert sum(len(b) for b in batches) == len(ra)


# --------------------------------------------------------------------------- matching
def test_cone_match_against_direct_separations():
    ra, dec = _sky(500, 3)
    targets_ra, targets_dec = ra[:5] + 0.0001, dec[:5]
    ti, ri, sep = healpix.cone_match(targets_ra, targets_dec, ra, dec, 2 * u.arcsec)
    expected = []
    for t in range(5):
        d = SkyCoord(targets_ra[t] * u.deg, targets_dec[t] * u.deg).separation(
            SkyCoord(ra * u.deg, dec * u.deg)).arcsec
        expected += [(t, i, d[i]) for i in np.flatnonzero(d <= 2.0)]
    assert [(a, b) for a, b, _ in expected] == list(zip(ti.tolist(), ri.tolist()))
    np.testing.assert_allclose(sep.to_value(u.arcsec), [c for _, _, c in expected],
                               rtol=1e-9)


def test_coarse_filter_handles_ra_wrap():
    table = pa.table({"ra": [359.9999, 0.0001, 180.0, 0.5], "dec": [10.0, 10.0, 10.0, 10.0]})
    expr = healpix.coarse_filter("ra", "dec", [0.0], [10.0], 2 * u.arcsec)
    kept = table.filter(expr)["ra"].to_pylist()
    assert sorted(kept) == [0.0001, 359.9999]


# --------------------------------------------------------------------------- reading
@pytest.fixture
def hive_catalog(tmp_path):
    ra, dec = _sky(20000, 4)
    table = catalogs.unwise_table(ra, dec, mjd=np.full(len(ra), 57000.0),
                                  flux=np.arange(len(ra)), dflux=np.ones(len(ra)),
                                  band=np.ones(len(ra)))
    root = tmp_path / "cat.parquet"
    catalogs.write_hive_catalog(table, root, order=3)
    return root, ra, dec


def test_hive_read_opens_each_touched_partition_once(hive_catalog):
    root, ra, dec = hive_catalog
    # targets on catalog rows well inside their order-3 pixels
    pix = hpgeom.angle_to_pixel(8, ra, dec, nest=True)
    cra, cdec = _pixel_centres(3, pix)
    inner = np.flatnonzero(SkyCoord(ra * u.deg, dec * u.deg).separation(
        SkyCoord(cra * u.deg, cdec * u.deg)).deg < 1.0)[:12]
    catalog = healpix.HiveCatalog(root, order=3)
    touched = catalog.touched(ra[inner], dec[inner], 1 * u.arcsec)
    keys = sorted({k for t in touched for k in t})
    assert keys == sorted({(3, int(p)) for p in pix[inner]})
    healpix.read_log.clear()
    table = catalog.read(keys, ["flux"], ra=ra[inner], dec=dec[inner], radius=1 * u.arcsec)
    opens = healpix.read_log.partition_opens()
    assert sorted((o, p) for _, o, p in opens) == keys
    assert set(opens.values()) == {1}
    assert set(inner.tolist()) <= set(np.asarray(table["flux"]).astype(int).tolist())
    full = sum(f.stat().st_size for f in root.rglob("part0.snappy.parquet"))
    assert 0 < healpix.read_log.data_bytes_read() < full / 10


def test_hats_read_directory_and_file_leaves(tmp_path):
    ra, dec = _sky(3000, 5)
    objects = [dict(objectid=i, filterid=1, objra=ra[i], objdec=dec[i], hmjd=[58000.0 + i],
                    mag=[15.0 + i / 1000], magerr=[0.01], catflags=[0]) for i in range(len(ra))]
    table = catalogs.ztf_lightcurve_table(objects)

    def tiling(h29):  # finer partitions in the northern sky
        return 3 if (h29 >> 2 * (29 - 0)) < 4 else 2

    for suffix in ("/", ".parquet"):
        root = tmp_path / f"coll{len(suffix)}"
        written = catalogs.write_hats_catalog(table, root, catalog_name="cat-hats",
                                              ra_column="objra", dec_column="objdec",
                                              partitions=tiling, npix_suffix=suffix)
        catalog = healpix.HatsCatalog(root)
        assert sorted(map(tuple, catalog.partitions.tolist())) == sorted(written)
        pick = np.array([0, 1, 2, 1500])
        touched = catalog.touched(ra[pick], dec[pick], 1 * u.arcsec)
        keys = sorted({k for t in touched for k in t})
        healpix.read_log.clear()
        got = catalog.read(keys, ["objectid", "lightcurve.mag"], ra=ra[pick], dec=dec[pick],
                           radius=1 * u.arcsec)
        assert set(pick.tolist()) <= set(got["objectid"].to_pylist())
        assert got.schema.field("lightcurve.mag").type == pa.list_(pa.float32())
        opens = healpix.read_log.partition_opens()
        assert {(o, p) for _, o, p in opens} <= set(keys)
        assert set(opens.values()) == {1}


def test_hats_catalog_without_collection(tmp_path):
    objects = [dict(objectid=7, filterid=2, objra=12.0, objdec=-3.0, hmjd=[58000.0],
                    mag=[15.0], magerr=[0.01], catflags=[0])]
    catalogs.write_hats_catalog(catalogs.ztf_lightcurve_table(objects), tmp_path / "c",
                                catalog_name="c", ra_column="objra", dec_column="objdec",
                                collection=False)
    catalog = healpix.HatsCatalog(tmp_path / "c")
    assert catalog.info()["ra_column"] == "objra"
    got = catalog.read(catalog.touched([12.0], [-3.0], 1 * u.arcsec)[0], ["objectid"],
                       ra=[12.0], dec=[-3.0], radius=1 * u.arcsec)
    assert got["objectid"].to_pylist() == [7]


def test_not_a_hats_catalog(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a HATS catalog"):
        healpix.HatsCatalog(tmp_path).info()


def test_hive_read_through_local_s3_server(hive_catalog):
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    root, ra, dec = hive_catalog
    local = healpix.HiveCatalog(root, order=3)
    targets = slice(0, 4)
    keys = sorted({k for t in local.touched(ra[targets], dec[targets], 1 * u.arcsec)
                   for k in t})
    expected = local.read(keys, ["flux"], ra=ra[targets], dec=dec[targets],
                          radius=1 * u.arcsec)
    with catalogs.moto_s3([(root, "cats/cat.parquet")]) as endpoint:
        remote = healpix.HiveCatalog("s3://multilc-test/cats/cat.parquet", order=3,
                                     endpoint_url=endpoint)
        healpix.read_log.clear()
        got = remote.read(keys, ["flux"], ra=ra[targets], dec=dec[targets],
                          radius=1 * u.arcsec)
        opens = healpix.read_log.partition_opens()
    assert sorted(got["flux"].to_pylist()) == sorted(expected["flux"].to_pylist())
    assert all(root_.startswith("multilc-test/cats/cat.parquet") for root_, _, _ in opens)
    assert set(opens.values()) == {1}
