"""The bulk route on a real ``hats-import`` catalog with a margin cache, against LSDB.

Skipped unless hats-import and lsdb are installed (``pip install
multilc[bench]``; CI installs them).  The catalog is small (a few thousand
rows, several partitions at different orders, a 10" margin cache) and built
in a temporary folder.
"""
import numpy as np
import pytest
from astropy import units as u

pytest.importorskip("hats_import")
lsdb = pytest.importorskip("lsdb")
hpgeom = pytest.importorskip("hpgeom")

from multilc.catalogs import HatsCatalog, crossmatch, match, read_log  # noqa: E402

RADIUS_ARCSEC = 2.0


@pytest.fixture(scope="module")
def hats_collection(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dask.distributed import Client, LocalCluster
    from hats_import import pipeline_with_client
    from hats_import.collection.arguments import CollectionArguments

    tmp = tmp_path_factory.mktemp("hats")
    rng = np.random.default_rng(0)
    n = 6000
    # a dense patch (split into finer partitions) and a sparse sky
    ra = np.concatenate([rng.uniform(0, 360, n // 2), rng.normal(45.0, 1.0, n // 2)])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, n // 2))),
                          rng.normal(10.0, 1.0, n // 2)])
    # pairs of rows 1" on either side of partition borders of orders 1-3
    bra, bdec = hpgeom.boundaries(8, np.arange(0, 768, 5), step=1, nest=True)
    bra, bdec = np.asarray(bra).ravel(), np.asarray(bdec).ravel()
    ra = np.concatenate([ra, bra + 1 / 3600, bra - 1 / 3600])
    dec = np.concatenate([dec, bdec, bdec])
    ra = np.mod(ra, 360)
    dec = np.clip(dec, -89.9, 89.9)
    ids = np.arange(len(ra), dtype="int64")
    in_dir = tmp / "input"
    in_dir.mkdir()
    pq.write_table(pa.table({"id": ids, "ra": ra, "dec": dec,
                             "flux": rng.normal(10, 1, len(ra))}), in_dir / "part0.parquet")
    args = (CollectionArguments(output_artifact_name="cat", output_path=tmp, tmp_dir=tmp,
                                progress_bar=False, resume=False)
            .catalog(input_path=in_dir, file_reader="parquet", ra_column="ra",
                     dec_column="dec", pixel_threshold=1500, output_artifact_name="main")
            .add_margin(margin_threshold=10.0, is_default=True,
                        output_artifact_name="margin_10arcs"))
    # TCP on the loopback only: an in-process cluster's default (inproc
    # protocol) starts its HTTP server on every interface, which the offline
    # tests (pytest-remotedata) refuse
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pipeline_with_client(args, client)
    return tmp / "cat", ra, dec, bra, bdec


def _targets(ra, dec, bra, bdec):
    rng = np.random.default_rng(1)
    on = rng.integers(0, len(ra), 300)
    tra = np.concatenate([ra[on] + rng.normal(0, 3e-4, 300), bra, rng.uniform(0, 360, 200)])
    tdec = np.concatenate([dec[on] + rng.normal(0, 3e-4, 300), bdec,
                           np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))])
    return np.mod(tra, 360), np.clip(tdec, -90, 90)


def test_bulk_route_returns_lsdb_crossmatch_rows(hats_collection):
    import pandas as pd

    root, ra, dec, bra, bdec = hats_collection
    tra, tdec = _targets(ra, dec, bra, bdec)
    cat = HatsCatalog(root)
    assert cat.margin_threshold_deg() == pytest.approx(10 / 3600)
    assert len(cat.partitions) > 4 and len(set(cat.partitions[:, 0])) > 1
    read_log.clear()
    got = crossmatch(cat, tra, tdec, RADIUS_ARCSEC * u.arcsec, ["id", "flux"])
    opens = read_log.partition_opens()
    # each primary and margin file about once (a cone whose centre lies in no
    # partition reads the partitions it touches, maybe read by their own group too)
    assert sum(opens.values()) <= len(opens) + 3
    ours = sorted(zip(got["_target"].to_pylist(), got["id"].to_pylist()))

    left = lsdb.from_dataframe(pd.DataFrame({"tid": np.arange(len(tra)), "ra": tra,
                                             "dec": tdec}), ra_column="ra", dec_column="dec")
    right = lsdb.read_hats(root, columns=["id", "flux"])
    res = left.crossmatch(right, radius_arcsec=RADIUS_ARCSEC, n_neighbors=32,
                          suffixes=("_t", "")).compute()
    theirs = sorted(zip(res["tid_t"].tolist(), res["id"].tolist()))
    assert ours == theirs
    # and both equal brute force (every row within the radius, margins included)
    ti, ri, _ = match.cone_match(tra, tdec, ra, dec, RADIUS_ARCSEC * u.arcsec)
    assert ours == sorted(zip(ti.tolist(), ri.tolist()))
    assert len(ours) > len(bra)        # the border pairs are all there


def test_without_margin_the_neighbours_complete_border_cones(hats_collection):
    root, ra, dec, bra, bdec = hats_collection
    tra, tdec = _targets(ra, dec, bra, bdec)
    cat = HatsCatalog(root, margin=False)
    assert cat.margin_threshold_deg() is None
    got = crossmatch(cat, tra, tdec, RADIUS_ARCSEC * u.arcsec, ["id"], max_targets=40)
    ti, ri, _ = match.cone_match(tra, tdec, ra, dec, RADIUS_ARCSEC * u.arcsec)
    assert sorted(zip(got["_target"].to_pylist(), got["id"].to_pylist())) == \
        sorted(zip(ti.tolist(), ri.tolist()))
    # a radius above the margin threshold falls back to the neighbours too
    wide = 20 * u.arcsec
    got = crossmatch(HatsCatalog(root), tra[:200], tdec[:200], wide, ["id"])
    ti, ri, _ = match.cone_match(tra[:200], tdec[:200], ra, dec, wide)
    assert sorted(zip(got["_target"].to_pylist(), got["id"].to_pylist())) == \
        sorted(zip(ti.tolist(), ri.tolist()))
