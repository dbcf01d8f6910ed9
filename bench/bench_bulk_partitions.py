"""unWISE bulk route on the IRSA hive layout: partitions opened, bytes, byte-counting cost.

Builds an all-sky unWISE-like hive catalog (HEALPix order 5, NESTED,
``_metadata``; ``--rows`` rows, default 2,000,000, rows sorted by dec in
``--row-group-size`` row groups as IRSA's files allow) in a temporary
folder, then collects ``--targets`` targets (half on catalog rows, 1 arcsec)
with ``archive="unwise"`` and prints:

* batches, partitions opened vs distinct home partitions (each once?);
* the end-to-end time with files opened natively (default) vs through the
  Python byte-counting wrapper (``read_log.count_bytes = True``, the old hot
  path): the wrapper's cost;
* bytes read from partition files vs a full scan of the same columns.

Run: ``python bench/bench_bulk_partitions.py [--rows N] [--targets N]``.
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
    write_hive_catalog(table, root, order=5, sort_by="dec", row_group_size=row_group_size)
    return ra, dec


def collect_once(targets, radius, count_bytes):
    import multilc
    from multilc.catalogs import read_log

    read_log.count_bytes = count_bytes
    read_log.clear()
    t0 = time.perf_counter()
    lc = multilc.collect(targets, archives=["unwise"], radius=radius, cache=False,
                         progress=False)
    elapsed = time.perf_counter() - t0
    read_log.count_bytes = False
    return lc, elapsed, read_log.partition_opens(), read_log.data_bytes_read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--row-group-size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from multilc.archives.wise import UnWISE
    from multilc.catalogs import HiveCatalog, read_log
    from multilc.samples import as_sample

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "unwise-neo7-time_domain-healpix_k5.parquet")
        t0 = time.perf_counter()
        ra, dec = build(root, args.rows, args.row_group_size)
        print(f"built {args.rows:,} rows in {time.perf_counter() - t0:.1f} s")
        os.environ["MULTILC_UNWISE_UNWISE_URL"] = root
        rng = np.random.default_rng(1)
        half = args.targets // 2
        pick = rng.choice(len(ra), half, replace=False)
        tra = np.concatenate([ra[pick], rng.uniform(0, 360, args.targets - half)])
        tdec = np.concatenate([dec[pick], np.degrees(np.arcsin(
            rng.uniform(-1, 1, args.targets - half)))])
        targets = SkyCoord(tra * u.deg, tdec * u.deg)
        radius = 1 * u.arcsec
        archive = UnWISE(radius=radius)
        batches = archive.plan(as_sample(targets))
        homes = {tuple(k) for b in batches for k in b.options["partitions"]}
        print(f"targets {args.targets}: {len(batches)} batches (largest "
              f"{max(len(b) for b in batches)} targets), {len(homes)} home partitions")

        native, wrapped = [], []
        for _ in range(args.runs):   # alternate, side by side
            lc, t, opens, _ = collect_once(targets, radius, False)
            native.append(t)
            lc2, t2, opens2, nbytes = collect_once(targets, radius, True)
            wrapped.append(t2)
        assert len(lc) == len(lc2)
        print(f"measurements {len(lc):,}, failures {len(lc.report.failures)}; partitions "
              f"opened {len(opens)} (max {max(opens.values())} opens each)")
        print(f"end to end: native files min/median {min(native):.2f}/"
              f"{np.median(native):.2f} s; through the Python byte-counting wrapper "
              f"{min(wrapped):.2f}/{np.median(wrapped):.2f} s: the wrapper cost "
              f"{np.median(wrapped) / np.median(native):.2f}x")

        read_log.count_bytes = True
        catalog = HiveCatalog(root, order=5)
        read_log.clear()
        full = catalog.full_scan(["ra", "dec"] + UnWISE.columns)
        bytes_full = read_log.data_bytes_read()
        read_log.count_bytes = False
        print(f"bytes read: route {nbytes:,}, full scan {bytes_full:,} "
              f"({full.num_rows:,} rows): {bytes_full / max(nbytes, 1):.1f}x fewer")


if __name__ == "__main__":
    main()
