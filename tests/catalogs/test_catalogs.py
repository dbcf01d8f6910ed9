"""Tests of the bulk catalog room (multilc.catalogs): planning, matching, reading."""
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

hpgeom = pytest.importorskip("hpgeom")
pa = pytest.importorskip("pyarrow")

from multilc.catalogs import hats, match, plan  # noqa: E402
from multilc.testing import catalogs  # noqa: E402


def _pixel_centres(order, pixels):
    ra, dec = hpgeom.pixel_to_angle(hpgeom.order_to_nside(order), np.asarray(pixels),
                                    nest=True)
    return np.asarray(ra, float), np.asarray(dec, float)


def _sky(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def _brute_touched(ra, dec, radius, tiling, order=None):
    """Partitions under points filling each cone (centre, 12 rings x 180 angles)."""
    out = []
    for r, d in zip(ra, dec):
        centre = SkyCoord(r * u.deg, d * u.deg)
        ang = np.tile(np.linspace(0, 360, 180, endpoint=False), 12) * u.deg
        dist = np.repeat(np.linspace(0.05, 0.9999, 12), 180) * radius
        pts = centre.directional_offset_by(ang, dist)
        p29 = plan.pixel29(np.append(pts.ra.deg, r), np.append(pts.dec.deg, d))
        parts = tiling.locate29(p29)
        out.append({tuple(int(x) for x in tiling.key(p)) for p in parts[parts >= 0]})
    return out


# --------------------------------------------------------------------------- planning
@pytest.mark.parametrize("radius", [1 * u.arcsec, 20 * u.arcsec, 0.5 * u.deg])
def test_cone_partitions_cover_every_partition_the_cone_reaches(radius):
    # cones near pixel corners and edges (where misses would happen), near the
    # poles and at random
    ra0, dec0 = _sky(40, 1)
    corners = np.concatenate([np.asarray(hpgeom.boundaries(32, np.arange(0, 12288, 997),
                                                            step=1, nest=True)[i]).ravel()
                              for i in (0, 1)]).reshape(2, -1)
    rng = np.random.default_rng(2)
    jitter = rng.normal(0, radius.to_value(u.deg) / 2, corners.shape)
    ra = np.concatenate([ra0, corners[0] + jitter[0], [10.0, 200.0]])
    dec = np.clip(np.concatenate([dec0, corners[1] + jitter[1], [89.99, -89.99]]), -90, 90)
    for tiling in (plan.Tiling(5), plan.Tiling([(2, p) for p in range(4, 192)]
                                               + [(3, p) for p in range(16)])):
        t, p = plan.cone_partitions(ra, dec, radius, tiling)
        got = [set() for _ in ra]
        for ti, key in zip(t, tiling.key(p)):
            got[ti].add(tuple(int(x) for x in key))
        want = _brute_touched(ra, dec, radius, tiling)
        for i, (g, w) in enumerate(zip(got, want)):
            assert w <= g, (i, ra[i], dec[i], w - g)


def test_cone_partitions_are_tight_for_small_cones():
    # query_circle(inclusive=True) at the partition order gives ~1.5 partitions
    # per 1" cone; the fine-pixel test must give almost exactly one
    ra, dec = _sky(20_000, 3)
    tiling = plan.Tiling(5)
    t, _ = plan.cone_partitions(ra, dec, 1 * u.arcsec, tiling)
    assert len(np.unique(t)) == len(ra)
    assert len(t) / len(ra) < 1.01
    inclusive = np.mean([len(hpgeom.query_circle(32, r, d, 1 / 3600, nest=True,
                                                 inclusive=True))
                         for r, d in zip(ra[:2000], dec[:2000])])
    assert inclusive > 1.2   # the old planner's over-count, for the record


def test_plan_groups_home_partitions_bounded_and_not_chained():
    ra, dec = _sky(5000, 4)
    tiling = plan.Tiling(2)   # 192 partitions, ~26 targets each
    groups = plan.plan_groups(ra, dec, 1 * u.arcsec, tiling, max_targets=20)
    idx = np.concatenate([g.targets for g in groups])
    assert np.array_equal(np.sort(idx), np.arange(5000))   # each target exactly once
    assert max(len(g.targets) for g in groups) <= 20
    home = hpgeom.angle_to_pixel(4, ra, dec, nest=True)
    for g in groups:
        assert {(2, int(p)) for p in home[g.targets]} == {tuple(k) for k in g.partitions}
    assert len(groups) >= 5000 / 20
    merged = plan.plan_groups(ra, dec, 1 * u.arcsec, tiling, min_partitions=8)
    assert all(len(g.partitions) <= 8 for g in merged)
    assert len(merged) == -(-len({int(p) for p in home}) // 8)


def test_tiling_locates_adaptive_partitions():
    tiling = plan.Tiling([(2, 0), (2, 1), (2, 2), (2, 3)] + [(1, p) for p in range(1, 48)])
    ra, dec = _pixel_centres(2, [1, 30])
    part = plan.home_partitions(ra, dec, tiling)
    assert [tuple(map(int, tiling.key(p))) for p in part] == [(2, 1), (1, 7)]
    missing = plan.Tiling([(1, 5)])
    assert plan.home_partitions(ra, dec, missing).tolist() == [-1, -1]


# --------------------------------------------------------------------------- matching
def test_cone_match_equals_astropy_search_around_sky():
    ra, dec = _sky(3000, 6)
    rng = np.random.default_rng(7)
    tra = np.concatenate([ra[:400] + rng.normal(0, 1e-4, 400), [0.0, 359.99995]])
    tdec = np.concatenate([dec[:400] + rng.normal(0, 1e-4, 400), [0.0, 0.0]])
    ra = np.append(ra, [359.99999, 0.00001])
    dec = np.append(dec, [0.0, 0.0])
    radius = 1.5 * u.arcsec
    ti, ri, sep = match.cone_match(tra, tdec, ra, dec, radius)
    rows = SkyCoord(ra * u.deg, dec * u.deg)
    ai, aj, asep, _ = rows.search_around_sky(SkyCoord(tra * u.deg, tdec * u.deg), radius)
    order = np.lexsort((aj, ai))
    assert np.array_equal(ti, ai[order]) and np.array_equal(ri, aj[order])
    np.testing.assert_allclose(sep.to_value(u.arcsec), asep[order].to_value(u.arcsec),
                               rtol=0, atol=1e-9)
    assert len(ti) > 400   # includes the pairs across RA = 0


def test_nearest_only_matches_a_loop():
    rng = np.random.default_rng(8)
    target = rng.integers(0, 50, 600)
    sep = rng.uniform(0, 2, 600)
    source = rng.integers(0, 30, 600)
    sep[(target == 3)] = 1.0       # a tie: the smaller id wins
    keep = match.nearest_only(target, sep * u.arcsec, source)
    for t in np.unique(target):
        sel = np.flatnonzero(target == t)
        best = min(zip(sep[sel], source[sel]))[1]
        assert np.array_equal(keep[sel], source[sel] == best)


# --------------------------------------------------------------------------- reading
def _ztf_objects(ra, dec):
    return [dict(objectid=i, filterid=1 + i % 3, objra=ra[i], objdec=dec[i],
                 hmjd=[58000.0 + i, 58001.0 + i], mag=[15.0 + i / 1000] * 2,
                 magerr=[0.01, 0.02], catflags=[0, 0]) for i in range(len(ra))]


def _expected_pairs(tra, tdec, ra, dec, radius):
    ti, ri, _ = match.cone_match(tra, tdec, ra, dec, radius)
    return sorted(zip(ti.tolist(), ri.tolist()))


@pytest.mark.parametrize("suffix", ["/", ".parquet"])
def test_hats_crossmatch_exact_across_partition_borders(tmp_path, suffix):
    # objects in pairs 2" apart straddling the order-2/3 partition boundaries,
    # plus random ones; no margin cache: border cones read their neighbours
    rng = np.random.default_rng(9)
    ra, dec = _sky(2000, 10)
    bra, bdec = hpgeom.boundaries(4, np.arange(0, 192, 7), step=2, nest=True)
    bra, bdec = np.asarray(bra).ravel(), np.asarray(bdec).ravel()
    ra = np.concatenate([ra, bra + 0.5 / 3600, bra - 0.5 / 3600])
    dec = np.concatenate([dec, bdec, bdec])
    table = catalogs.ztf_lightcurve_table(_ztf_objects(ra, dec))

    def tiling(h29):  # finer partitions in base pixel 0..3
        return 3 if (h29 >> 2 * (29 - 0)) < 4 else 2

    root = tmp_path / "coll"
    catalogs.write_hats_catalog(table, root, catalog_name="cat", ra_column="objra",
                                dec_column="objdec", partitions=tiling, npix_suffix=suffix)
    cat = hats.HatsCatalog(root)
    assert cat.margin_threshold_deg() is None
    # float32 positions as stored
    sra = table["objra"].to_numpy().astype(float)
    sdec = table["objdec"].to_numpy().astype(float)
    tra = np.concatenate([bra, sra[:300] + rng.normal(0, 2e-4, 300)])
    tdec = np.concatenate([bdec, sdec[:300] + rng.normal(0, 2e-4, 300)])
    radius = 2 * u.arcsec
    got = hats.crossmatch(cat, tra, tdec, radius, ["objectid", "lightcurve.mag"],
                          max_targets=50)
    pairs = sorted(zip(got["_target"].to_pylist(), got["objectid"].to_pylist()))
    assert pairs == _expected_pairs(tra, tdec, sra, sdec, radius)
    assert len(pairs) > 2 * len(bra)
    assert got.schema.field("lightcurve.mag").type == pa.list_(pa.float32())
    # the separations are the exact ones, sorted per target
    sep = match.angular_separation_deg(tra[got["_target"].to_numpy()],
                                       tdec[got["_target"].to_numpy()],
                                       sra[got["objectid"].to_numpy()],
                                       sdec[got["objectid"].to_numpy()]) * 3600
    np.testing.assert_allclose(got["_separation_arcsec"].to_numpy(), sep, atol=1e-9)
    # unique rows: read()
    rows = cat.read(cat.partitions.tolist(), ["objectid"], ra=tra, dec=tdec, radius=radius)
    assert sorted(rows["objectid"].to_pylist()) == sorted({r for _, r in pairs})


def test_hats_reads_each_home_partition_once_and_skips_the_rest(tmp_path):
    ra, dec = _sky(3000, 11)
    table = catalogs.ztf_lightcurve_table(_ztf_objects(ra, dec))
    root = tmp_path / "c"
    written = catalogs.write_hats_catalog(table, root, catalog_name="c", ra_column="objra",
                                          dec_column="objdec", order=2, collection=False)
    cat = hats.HatsCatalog(root)
    pick = np.arange(0, 3000, 150)
    hats.read_log.clear()
    got = hats.crossmatch(cat, ra[pick], dec[pick], 1 * u.arcsec, ["objectid"])
    assert sorted(got["objectid"].to_pylist()) == sorted(pick.tolist())
    opens = hats.read_log.partition_opens()
    home = {(2, int(p)) for p in hpgeom.angle_to_pixel(4, ra[pick], dec[pick], nest=True)}
    assert {(o, p) for _, o, p in opens} == home
    assert set(opens.values()) == {1}
    assert len(written) > len(home)


def test_row_groups_without_matches_are_not_decoded(tmp_path):
    ra, dec = _sky(20_000, 12)
    table = catalogs.unwise_table(ra, dec, mjd=np.full(len(ra), 57000.0),
                                  flux=np.arange(len(ra)), dflux=np.ones(len(ra)),
                                  band=np.ones(len(ra), int))
    root = tmp_path / "u.parquet"
    catalogs.write_hive_catalog(table, root, order=1, sort_by="dec", row_group_size=256)
    hats.read_log.count_bytes = True
    try:
        cat = hats.HiveCatalog(root, order=1)
        hats.read_log.clear()
        got = hats.crossmatch(cat, ra[:3], dec[:3], 1 * u.arcsec, ["flux", "band"])
        data = hats.read_log.data_bytes_read()
    finally:
        hats.read_log.count_bytes = False
    assert sorted(np.asarray(got["flux"]).astype(int).tolist()) == [0, 1, 2]
    full = sum(f.stat().st_size for f in root.rglob("*.parquet") if f.is_file())
    assert 0 < data < full / 20


def test_filter_on_matched_rows(tmp_path):
    ra, dec = _sky(500, 13)
    ra = np.repeat(ra, 2)
    dec = np.repeat(dec, 2)
    table = catalogs.unwise_table(ra, dec, mjd=np.full(len(ra), 57000.0),
                                  flux=np.arange(len(ra)), dflux=np.ones(len(ra)),
                                  band=np.tile([1, 2], 500))
    root = tmp_path / "u.parquet"
    catalogs.write_hive_catalog(table, root, order=2)
    import pyarrow.compute as pc

    cat = hats.HiveCatalog(root, order=2)
    got = hats.crossmatch(cat, ra[::2], dec[::2], 1 * u.arcsec, ["flux", "band"])
    assert set(got["band"].to_pylist()) == {1, 2}
    groups = cat.plan(ra[::2], dec[::2], 1 * u.arcsec)
    g = groups[0]
    one = cat.crossmatch(g.partitions, ["flux", "band"], ra=ra[::2][g.targets],
                         dec=dec[::2][g.targets], radius=1 * u.arcsec,
                         filter=pc.field("band") == 2)
    assert one.num_rows == len(g.targets) and set(one["band"].to_pylist()) == {2}


def test_not_a_hats_catalog(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a HATS catalog"):
        hats.HatsCatalog(tmp_path).info()


def test_catalog_room_imports_nothing_else_from_multilc():
    import ast
    import pathlib

    import multilc.catalogs

    for path in pathlib.Path(multilc.catalogs.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
            elif isinstance(node, ast.Import):
                mod = node.names[0].name
            else:
                continue
            if mod.startswith("multilc"):
                assert mod.startswith(("multilc.catalogs", "multilc.errors")), (path, mod)


def test_hive_through_local_s3_server(tmp_path):
    ra, dec = _sky(2000, 14)
    table = catalogs.unwise_table(ra, dec, mjd=np.full(len(ra), 57000.0),
                                  flux=np.arange(len(ra)), dflux=np.ones(len(ra)),
                                  band=np.ones(len(ra), int))
    root = tmp_path / "cat.parquet"
    catalogs.write_hive_catalog(table, root, order=3)
    with catalogs.moto_s3([(root, "cats/cat.parquet")]) as endpoint:
        remote = hats.HiveCatalog("s3://multilc-test/cats/cat.parquet", order=3,
                                  endpoint_url=endpoint)
        hats.read_log.clear()
        got = hats.crossmatch(remote, ra[:4], dec[:4], 1 * u.arcsec, ["flux"])
        opens = hats.read_log.partition_opens()
    assert sorted(np.asarray(got["flux"]).astype(int).tolist()) == [0, 1, 2, 3]
    assert all(r.startswith("multilc-test/cats/cat.parquet") for r, _, _ in opens)
    assert set(opens.values()) == {1}


def test_hive_discovery_shared_and_renewed_when_the_catalog_changes(tmp_path, monkeypatch):
    """``_metadata`` is read once per process for a catalog, by any number of
    HiveCatalog objects; a local catalog rewritten in place is read anew."""
    monkeypatch.setattr(hats, "_discovered", {})
    ra, dec = _sky(500, 21)
    root = tmp_path / "cat.parquet"

    def write(flux):
        table = catalogs.unwise_table(ra, dec, mjd=np.full(len(ra), 57000.0),
                                      flux=flux, dflux=np.ones(len(ra)),
                                      band=np.ones(len(ra), int))
        catalogs.write_hive_catalog(table, root, order=3)

    write(np.arange(len(ra), dtype=float))
    reads = []
    real = hats.HiveCatalog._discover
    monkeypatch.setattr(hats.HiveCatalog, "_discover",
                        lambda self: reads.append(self.url) or real(self))
    first = [hats.crossmatch(hats.HiveCatalog(root, order=3), ra[:3], dec[:3],
                             1 * u.arcsec, ["flux"]) for _ in range(3)]
    assert len(reads) == 1
    def by_target(t):
        return np.asarray(t["flux"])[np.argsort(np.asarray(t["_target"]))].tolist()

    assert all(by_target(t) == [0.0, 1.0, 2.0] for t in first)
    import os
    import time

    time.sleep(0.01)
    write(np.arange(len(ra), dtype=float) + 100)   # same path, new content
    os.utime(root / "_metadata", ns=(time.time_ns(), time.time_ns()))
    again = hats.crossmatch(hats.HiveCatalog(root, order=3), ra[:3], dec[:3],
                            1 * u.arcsec, ["flux"])
    assert len(reads) == 2
    assert by_target(again) == [100.0, 101.0, 102.0]
