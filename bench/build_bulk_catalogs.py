"""Build the benchmark HATS catalogs with ``hats-import`` (not multilc's own writer).

Three HATS *collections* (catalog + margin cache, ``collection.properties``)
in ``--out`` (default ``~/.cache/multilc-bench/hats``), never in the repo:

``ztf``     ZTF-like light curves: one row per object, nested ``lightcurve``
            struct of lists (``hmjd, mag, magerr, clrcoeff, catflags``) as
            nested-pandas writes the ZTF DR24 HATS catalog (default 500,000
            objects, ~10 epochs each: ~5 M epochs).
``unwise``  unWISE-like flat table, one row per detection (default 3,000,000).
``gaia``    Gaia-like sources with a nested ``epoch_photometry`` struct of
            lists (default 200,000 sources, ~20 transits each).

Sky model: half the rows uniform over ``dec > -30`` (ZTF's sky), half in
20 dense fields of 2 deg radius, so "clustered" samples have crowded
partitions (hats-import then splits those into finer orders).  Each
collection gets a margin cache of ``--margin`` arcsec (default 10).

Run (in a venv with hats-import): ``python bench/build_bulk_catalogs.py``;
takes a few minutes on 2 cores.  ``--scale 0.1`` builds a small version.
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np

#: Centres of the dense fields (deg), fixed so every build is the same.
FIELD_SEED = 7
N_FIELDS = 20
FIELD_RADIUS_DEG = 2.0


def default_out():
    return os.path.join(os.path.expanduser("~"), ".cache", "multilc-bench", "hats")


def fields():
    rng = np.random.default_rng(FIELD_SEED)
    ra = rng.uniform(0, 360, N_FIELDS)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-25)), np.sin(np.radians(80)),
                                           N_FIELDS)))
    return ra, dec


def sky(rng, n):
    """Positions: half uniform over dec > -30, half in the dense fields."""
    n_uni = n // 2
    ra = rng.uniform(0, 360, n_uni)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-30)), 1, n_uni)))
    fra, fdec = fields()
    k = rng.integers(0, N_FIELDS, n - n_uni)
    # uniform in a disc (small-angle: offsets in the tangent plane)
    r = FIELD_RADIUS_DEG * np.sqrt(rng.uniform(size=n - n_uni))
    th = rng.uniform(0, 2 * np.pi, n - n_uni)
    cdec = np.clip(fdec[k] + r * np.sin(th), -89.9, 89.9)
    cra = np.mod(fra[k] + r * np.cos(th) / np.cos(np.radians(cdec)), 360)
    return np.concatenate([ra, cra]), np.concatenate([dec, cdec])


def _lists(rng, counts, maker, dtype):
    import pyarrow as pa

    offsets = np.concatenate([[0], np.cumsum(counts)]).astype("int32")
    values = np.asarray(maker(int(offsets[-1])), dtype=dtype)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values))


def ztf_chunk(rng, n, first_id):
    import pyarrow as pa

    ra, dec = sky(rng, n)
    counts = rng.poisson(10, n) + 1
    nested = pa.StructArray.from_arrays(
        [_lists(rng, counts, lambda m: rng.uniform(58200, 60400, m), "float64"),
         _lists(rng, counts, lambda m: rng.normal(19, 1, m), "float32"),
         _lists(rng, counts, lambda m: rng.uniform(0.01, 0.2, m), "float32"),
         _lists(rng, counts, lambda m: rng.normal(0, 0.05, m), "float32"),
         _lists(rng, counts, lambda m: np.where(rng.uniform(size=m) < 0.02, 32768, 0),
                "int32")],
        names=["hmjd", "mag", "magerr", "clrcoeff", "catflags"])
    return pa.table({
        "objectid": pa.array(np.arange(first_id, first_id + n, dtype="int64")),
        "filterid": pa.array(rng.integers(1, 4, n).astype("int8")),
        "fieldid": pa.array(rng.integers(200, 900, n).astype("int16")),
        "rcid": pa.array(rng.integers(0, 64, n).astype("int8")),
        "objra": pa.array(ra.astype("float32")),
        "objdec": pa.array(dec.astype("float32")),
        "nepochs": pa.array(counts.astype("int64")),
        "lightcurve": nested,
    })


def unwise_chunk(rng, n, first_id):
    import pyarrow as pa

    ra, dec = sky(rng, n)
    return pa.table({
        "ra": ra, "dec": dec,
        "flux": rng.normal(100, 30, n).astype("float32"),
        "dflux": np.full(n, 3.0, "float32"),
        "band": rng.integers(1, 3, n).astype("int16"),
        "MJDMEAN": rng.uniform(55200, 59000, n),
        "primary": (rng.uniform(size=n) > 0.05).astype("int16"),
        "unwise_detid": pa.array([f"{i:016d}" for i in range(first_id, first_id + n)]),
    })


def gaia_chunk(rng, n, first_id):
    import pyarrow as pa

    ra, dec = sky(rng, n)
    counts = rng.poisson(20, n) + 1
    nested = pa.StructArray.from_arrays(
        [_lists(rng, counts, lambda m: rng.integers(0, 2**40, m), "int64"),
         _lists(rng, counts, lambda m: rng.uniform(1700, 2700, m), "float64"),
         _lists(rng, counts, lambda m: rng.normal(1e4, 100, m), "float64"),
         _lists(rng, counts, lambda m: rng.uniform(5, 50, m), "float64")],
        names=["transit_id", "g_transit_time", "g_transit_flux", "g_transit_flux_error"])
    return pa.table({
        "source_id": pa.array(np.arange(first_id, first_id + n, dtype="int64") * 7919),
        "ra": ra, "dec": dec,
        "epoch_photometry": nested,
    })


KINDS = {
    # name: (maker, default rows, ra column, dec column, pixel_threshold)
    "ztf": (ztf_chunk, 500_000, "objra", "objdec", 8_000),
    "unwise": (unwise_chunk, 3_000_000, "ra", "dec", 40_000),
    "gaia": (gaia_chunk, 200_000, "ra", "dec", 4_000),
}


def build(kind, out, rows, margin_arcsec, tmp, seed=0):
    import pyarrow.parquet as pq
    from dask.distributed import Client
    from hats_import import pipeline_with_client
    from hats_import.collection.arguments import CollectionArguments

    maker, _, ra_col, dec_col, threshold = KINDS[kind]
    rng = np.random.default_rng(seed)
    in_dir = os.path.join(tmp, kind + "_input")
    os.makedirs(in_dir, exist_ok=True)
    chunk = 250_000
    for i, start in enumerate(range(0, rows, chunk)):
        n = min(chunk, rows - start)
        pq.write_table(maker(rng, n, start), os.path.join(in_dir, f"part{i:03d}.parquet"))
    target = os.path.join(out, kind)
    if os.path.exists(target):
        shutil.rmtree(target)
    args = (CollectionArguments(output_artifact_name=kind, output_path=out, tmp_dir=tmp,
                                progress_bar=False, resume=False)
            .catalog(input_path=in_dir, file_reader="parquet", ra_column=ra_col,
                     dec_column=dec_col, pixel_threshold=threshold,
                     output_artifact_name=f"{kind}_catalog")
            .add_margin(margin_threshold=float(margin_arcsec), is_default=True,
                        output_artifact_name=f"{kind}_{int(margin_arcsec)}arcs"))
    with Client(n_workers=2, threads_per_worker=1, processes=True,
                memory_limit="4GiB", dashboard_address=None) as client:
        pipeline_with_client(args, client)
    shutil.rmtree(in_dir, ignore_errors=True)
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=default_out())
    parser.add_argument("--kinds", default="ztf,unwise,gaia")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--margin", type=float, default=10.0, help="margin [arcsec]")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for kind in args.kinds.split(","):
        rows = max(1000, int(KINDS[kind][1] * args.scale))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=args.out) as tmp:
            path = build(kind, args.out, rows, args.margin, tmp)
        print(f"{kind}: {rows:,} rows -> {path} in {time.perf_counter() - t0:.0f} s",
              flush=True)


if __name__ == "__main__":
    main()
