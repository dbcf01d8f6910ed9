"""Benchmark of the bulk HEALPix-partition route (unWISE-like catalog, 500 targets).

Builds an all-sky unWISE-like hive catalog (HEALPix order 5, NESTED,
``_metadata``; ``--rows`` rows, default 2,000,000) in a temporary folder, then
collects 500 targets (placed on catalog rows, 1 arcsec radius) with
``archive="unwise"`` and prints:

* partitions opened vs distinct partitions the cones touch (each once?);
* bytes read from partition files vs a full scan of the same columns
  (goal: at least 20x fewer);
* read speed of the reader's partition reads vs a bare pyarrow read of the
  same partition files and columns (goal: ratio >= 0.5), and the end-to-end
  time including the exact match, unit and time conversion.

Run: ``python bench/bench_bulk_partitions.py [--rows N] [--targets N]``.
Needs hpgeom; builds in ~30-60 s on one core.
"""
import argparse
import os
import tempfile
import time

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord


def build(root, n_rows, row_group_size, seed=0):
    from multilc.testing.catalogs import unwise_table, write_hive_catalog

    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n_rows)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_rows)))
    table = unwise_table(ra, dec, mjd=rng.uniform(55200, 59000, n_rows),
                         flux=rng.normal(100, 30, n_rows), dflux=np.full(n_rows, 3.0),
                         band=rng.integers(1, 3, n_rows),
                         primary=(rng.uniform(size=n_rows) > 0.05).astype(int))
    # rows sorted by dec inside each partition, in small row groups, so the
    # coarse RA/Dec filter can skip row groups by their statistics
    write_hive_catalog(table, root, order=5, sort_by="dec", row_group_size=row_group_size)
    return ra, dec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--row-group-size", type=int, default=64)
    args = parser.parse_args()

    import pyarrow.dataset as ds

    import multilc
    from multilc.archives.wise import UnWISE
    from multilc.collect import healpix
    from multilc.samples import as_sample

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "unwise-neo7-time_domain-healpix_k5.parquet")
        t0 = time.perf_counter()
        ra, dec = build(root, args.rows, args.row_group_size)
        print(f"built {args.rows:,} rows in {time.perf_counter() - t0:.1f} s")
        os.environ["MULTILC_UNWISE_UNWISE_URL"] = root
        rng = np.random.default_rng(1)
        pick = rng.choice(len(ra), args.targets, replace=False)
        targets = SkyCoord(ra[pick] * u.deg, dec[pick] * u.deg)
        radius = 1 * u.arcsec

        touched = healpix.partitions_touched(ra[pick], dec[pick], radius, 5)
        distinct = {k for t in touched for k in t}

        # ---- end to end through collect (no cache)
        healpix.read_log.clear()
        t0 = time.perf_counter()
        lc = multilc.collect(targets, archives=["unwise"], radius=radius, cache=False,
                             progress=False)
        t_total = time.perf_counter() - t0
        opens = healpix.read_log.partition_opens()
        bytes_route = healpix.read_log.data_bytes_read()
        print(f"targets {args.targets}, measurements {len(lc):,}, "
              f"dropped {lc.report.dropped.get('unwise', {})}, failures {len(lc.report.failures)}")
        print(f"partitions: opened {len(opens)}, distinct touched {len(distinct)}, "
              f"max opens per partition {max(opens.values())}, "
              f"opened-but-not-touched {len({(o, p) for _, o, p in opens} - distinct)}")

        # ---- full scan of the same columns
        catalog = healpix.HiveCatalog(root, order=5)
        columns = ["ra", "dec"] + UnWISE.columns
        healpix.read_log.clear()
        t0 = time.perf_counter()
        full = catalog.full_scan(columns)
        t_full = time.perf_counter() - t0
        bytes_full = healpix.read_log.data_bytes_read()
        print(f"bytes read: route {bytes_route:,}, full scan {bytes_full:,} "
              f"({full.num_rows:,} rows, {t_full:.1f} s): {bytes_full / bytes_route:.1f}x fewer")

        # ---- read speed: the reader's partition reads vs bare pyarrow on the same files
        archive = UnWISE(radius=radius)
        batches = archive.plan(as_sample(targets))
        healpix.read_log.clear()
        t0 = time.perf_counter()
        n_ours = 0
        for b in batches:
            n_ours += catalog.read([tuple(k) for k in b.options["partitions"]], UnWISE.columns,
                                   ra=b.ra, dec=b.dec, radius=radius).num_rows
        t_ours = time.perf_counter() - t0
        files = sorted({os.path.join(root, f"healpix_k5={p}", "part0.snappy.parquet")
                        for _, _, p in opens})
        print(f"batches: {len(batches)} (partitions per batch setting "
              f"{archive.setting('partitions_per_batch')})")
        # bare pyarrow, native local filesystem, same files, columns and row filters
        by_pixel = {}
        for b in batches:
            for _, p in b.options["partitions"]:
                by_pixel[p] = b
        t0 = time.perf_counter()
        n_same = 0
        for b in batches:
            paths = [f for f in (os.path.join(root, f"healpix_k5={p}", "part0.snappy.parquet")
                                 for _, p in b.options["partitions"]) if os.path.exists(f)]
            if paths:
                n_same += ds.dataset(paths, format="parquet").to_table(
                    columns=columns, filter=healpix.coarse_filter(
                        "ra", "dec", b.ra, b.dec, radius)).num_rows
        t_same = time.perf_counter() - t0
        t0 = time.perf_counter()
        bare = ds.dataset(files, format="parquet").to_table(columns=columns)
        t_bare = time.perf_counter() - t0
        print(f"read: reader {t_ours:.2f} s ({n_ours:,} rows) vs bare pyarrow with the same "
              f"files, columns and row filters {t_same:.2f} s ({n_same:,} rows): speed ratio "
              f"{t_same / t_ours:.2f}")
        print(f"      bare pyarrow reading the {len(files)} opened files whole "
              f"(no row filter) {t_bare:.2f} s ({bare.num_rows:,} rows): ratio "
              f"{t_bare / t_ours:.2f}")
        print(f"end to end (plan, read, match, convert, assemble): {t_total:.2f} s, "
              f"ratio to bare read {t_bare / t_total:.2f}")


if __name__ == "__main__":
    main()
