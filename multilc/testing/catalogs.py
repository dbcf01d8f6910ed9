"""Local bulk catalogs in the archives' exact layouts, and a local S3 server.

Builders for tests and benchmarks of the bulk readers
(`multilc.catalogs`):

- `write_hive_catalog`: a hive-partitioned HEALPix parquet dataset
  (``healpix_k5=<pixel>/part0.snappy.parquet``, optionally under
  ``healpix_k0=<pixel>/`` as IRSA's NEOWISE tables) with the ``_metadata``
  and ``_common_metadata`` files IRSA publishes.
- `write_hats_catalog`: a HATS collection/catalog (``collection.properties``,
  ``hats.properties``, ``partition_info.csv``, ``dataset/_metadata``,
  ``dataset/_common_metadata``, leaves ``dataset/Norder=K/Dir=D/Npix=N.parquet``
  or ``.../Npix=N/part0.snappy.parquet``) with the ``_healpix_29`` index,
  rows sorted by it as hats-import writes them.
- Tables in the archives' schemas: `unwise_table`, `neowise_table`,
  `ztf_lightcurve_table`.
- `moto_s3`: a context manager serving local directories as a public S3
  bucket on 127.0.0.1 (`multilc.testing.s3.local_s3`; no moto needed).

Schemas follow the published descriptions: unWISE/unTimely catalog columns
(Meisner et al. 2023, AJ 165, 36, Table 2), NEOWISE single-exposure source
table (NEOWISE Explanatory Supplement sec. II.1.a), ZTF DR light-curve
files and the DR24 HATS light-curve catalog (one row per objectid/filter,
nested ``lightcurve`` stored by nested-pandas as a struct of lists).  Integer
widths that no document states (``band``, ``primary``, ``catflags``) are
marked where they are chosen; the readers cast, so they do not depend on them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["write_hive_catalog", "write_hats_catalog", "unwise_table", "neowise_table",
           "ztf_lightcurve_table", "ztf_lightcurve_schema", "moto_s3", "upload_directory"]


# --------------------------------------------------------------------------- layouts
def _pixels(ra, dec, order):
    import hpgeom

    return hpgeom.angle_to_pixel(hpgeom.order_to_nside(order), np.asarray(ra, float),
                                 np.asarray(dec, float), nest=True).astype("int64")


def write_hive_catalog(table, root, *, order=5, ra_column="ra", dec_column="dec",
                       partition_column=None, parent_order=None, row_group_size=None,
                       file_name="part0.snappy.parquet", sort_by=None):
    """Write *table* as a hive-partitioned HEALPix parquet dataset.

    Parameters
    ----------
    table : `pyarrow.Table`
        Rows in the archive's schema (without the partition column).
    root : str or path
        Dataset directory to create (IRSA names it ``<name>.parquet``).
    order : int
        HEALPix order of the partitioning (NESTED).
    partition_column : str, optional
        Default ``healpix_k<order>``.
    parent_order : int, optional
        Add an outer hive level ``healpix_k<parent_order>=`` (NEOWISE uses
        ``healpix_k0``).
    row_group_size : int, optional
        Rows per row group.
    file_name : str
        Leaf file name in each partition directory.
    sort_by : str, optional
        Sort rows inside each partition by this column (with small row
        groups, parquet statistics then let a position filter skip data).

    Returns
    -------
    dict
        ``{pixel: path}`` of the leaf files written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    partition_column = partition_column or f"healpix_k{order}"
    pix = _pixels(table[ra_column].to_numpy(), table[dec_column].to_numpy(), order)
    sort = (np.lexsort((table[sort_by].to_numpy(), pix)) if sort_by
            else np.argsort(pix, kind="stable"))
    table = table.take(pa.array(sort))
    pix = pix[sort]
    bounds = np.flatnonzero(np.diff(pix)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(pix)]])
    metadata = []
    paths = {}
    for s, e in zip(starts, stops):
        if e <= s:
            continue
        p = int(pix[s])
        rel = f"{partition_column}={p}/{file_name}"
        if parent_order is not None:
            parent = p >> (2 * (order - parent_order))
            rel = f"healpix_k{parent_order}={parent}/" + rel
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        collector = []
        pq.write_table(table.slice(s, e - s), path, row_group_size=row_group_size,
                       metadata_collector=collector)
        collector[-1].set_file_path(rel)
        metadata.extend(collector)
        paths[p] = str(path)
    pq.write_metadata(table.schema, root / "_common_metadata")
    pq.write_metadata(table.schema, root / "_metadata", metadata_collector=metadata)
    return paths


def write_hats_catalog(table, root, *, catalog_name, ra_column, dec_column, order=None,
                       partitions=None, npix_suffix=".parquet", collection=True,
                       row_group_size=None):
    """Write *table* as a HATS catalog, inside a HATS collection by default.

    Parameters
    ----------
    table : `pyarrow.Table`
        Rows in the archive's schema.  A ``_healpix_29`` column is added.
    root : str or path
        Collection directory (or catalog directory if ``collection=False``).
    catalog_name : str
        Catalog directory name inside the collection
        (IRSA: ``ztf_dr24_lc-hats``).
    ra_column, dec_column : str
        Position columns [deg] (``hats_col_ra``/``hats_col_dec``).
    order : int, optional
        Single partition order for every row (default 2) ...
    partitions : callable, optional
        ... or ``partitions(pixel29) -> order`` for an adaptive tiling: each
        row goes to the pixel of that order containing it.  The result must
        be a valid tiling (no overlapping partitions); tests use, e.g.,
        order 3 in one region and order 2 elsewhere.
    npix_suffix : {".parquet", "/"}
        One file per partition, or one directory per partition holding
        ``part0.snappy.parquet`` (ZTF DR24 at IRSA uses directories).
    collection : bool
        Wrap the catalog in a collection (``collection.properties``).
    row_group_size : int, optional

    Returns
    -------
    dict
        ``{(order, pixel): path}`` of the leaf files written.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from multilc.catalogs.hats import hats_leaf_path

    root = Path(root)
    catalog_dir = root / catalog_name if collection else root
    (catalog_dir / "dataset").mkdir(parents=True, exist_ok=True)
    hp29 = _pixels(table[ra_column].to_numpy(), table[dec_column].to_numpy(), 29)
    if "_healpix_29" in table.column_names:
        table = table.drop_columns(["_healpix_29"])
    table = table.add_column(0, "_healpix_29", pa.array(hp29, pa.int64()))
    sort = np.argsort(hp29, kind="stable")
    table = table.take(pa.array(sort))
    hp29 = hp29[sort]
    if partitions is None:
        orders = np.full(len(hp29), 2 if order is None else int(order), dtype="int64")
    else:
        orders = np.asarray([int(partitions(int(h))) for h in hp29], dtype="int64")
    pixel = hp29 >> (2 * (29 - orders))
    keys = sorted(set(zip(orders.tolist(), pixel.tolist())))
    metadata = []
    paths = {}
    for k, p in keys:
        sel = np.flatnonzero((orders == k) & (pixel == p))
        leaf = hats_leaf_path(str(catalog_dir), k, p, npix_suffix)
        path = Path(leaf + "part0.snappy.parquet") if npix_suffix.endswith("/") else Path(leaf)
        path.parent.mkdir(parents=True, exist_ok=True)
        collector = []
        pq.write_table(table.take(pa.array(sel)), path, row_group_size=row_group_size,
                       metadata_collector=collector)
        collector[-1].set_file_path(os.path.relpath(path, catalog_dir / "dataset")
                                    .replace(os.sep, "/"))
        metadata.extend(collector)
        paths[(k, p)] = str(path)
    pq.write_metadata(table.schema, catalog_dir / "dataset" / "_common_metadata")
    pq.write_metadata(table.schema, catalog_dir / "dataset" / "_metadata",
                      metadata_collector=metadata)
    info = pa.table({"Norder": pa.array([k for k, _ in keys], pa.int64()),
                     "Npix": pa.array([p for _, p in keys], pa.int64())})
    pacsv.write_csv(info, catalog_dir / "partition_info.csv",
                    pacsv.WriteOptions(quoting_style="none"))
    props = {
        "obs_collection": catalog_name,
        "dataproduct_type": "object",
        "hats_nrows": str(len(table)),
        "hats_col_ra": ra_column,
        "hats_col_dec": dec_column,
        "hats_col_healpix": "_healpix_29",
        "hats_col_healpix_order": "29",
        "hats_npix_suffix": npix_suffix,
        "hats_max_rows": str(max(len(np.flatnonzero((orders == k) & (pixel == p)))
                                 for k, p in keys) if keys else 0),
        "hats_version": "v1.0",
    }
    text = "#HATS catalog\n" + "".join(f"{k}={v}\n" for k, v in props.items())
    (catalog_dir / "hats.properties").write_text(text)
    if collection:
        ctext = ("#HATS Collection\n" f"obs_collection={root.name}\n"
                 f"hats_primary_table_url={catalog_name}\n")
        (root / "collection.properties").write_text(ctext)
    return paths


# --------------------------------------------------------------------------- schemas
def unwise_table(ra, dec, *, mjd, flux, dflux, band, primary=None, detid=None):
    """Rows of the unWISE neo7 time-domain catalog.

    Column names and meaning: Meisner et al. 2023 (AJ 165, 36), unTimely
    catalog Table 2, as served by IRSA in parquet.  Types: positions float64,
    fluxes float32 (nanomaggies, Vega), ``MJDMEAN`` float64; ``band`` and
    ``primary`` as int16 (width not documented; readers cast).
    """
    import pyarrow as pa

    n = len(ra)
    primary = np.ones(n, "int16") if primary is None else np.asarray(primary, "int16")
    detid = (np.array([f"{i:016d}" for i in range(n)]) if detid is None
             else np.asarray(detid, str))
    return pa.table({
        "ra": pa.array(np.asarray(ra, float), pa.float64()),
        "dec": pa.array(np.asarray(dec, float), pa.float64()),
        "flux": pa.array(np.asarray(flux, "float32"), pa.float32()),
        "dflux": pa.array(np.asarray(dflux, "float32"), pa.float32()),
        "band": pa.array(np.asarray(band, "int16"), pa.int16()),
        "MJDMEAN": pa.array(np.asarray(mjd, float), pa.float64()),
        "primary": pa.array(primary, pa.int16()),
        "unwise_detid": pa.array(detid, pa.string()),
        "qf": pa.array(np.ones(n, "float32"), pa.float32()),
    })


def neowise_table(ra, dec, *, mjd, w1mpro, w1sigmpro, w2mpro, w2sigmpro, cntr=None,
                  cc_flags=None, qual_frame=None, source_id=None):
    """Rows of the NEOWISE-R single-exposure source table (a column subset).

    Columns from the NEOWISE Explanatory Supplement sec. II.1.a: ``cntr``
    (int64), ``source_id`` (str), ``ra``, ``dec``, ``mjd`` (float64),
    ``w1mpro``/``w1sigmpro``/``w2mpro``/``w2sigmpro`` (Vega mag, float64;
    null sigma = upper limit), ``cc_flags`` (4-character str), ``qual_frame``
    (int; width not documented here, int64 chosen).
    """
    import pyarrow as pa

    n = len(ra)
    cntr = np.arange(1, n + 1, dtype="int64") if cntr is None else np.asarray(cntr, "int64")
    cc_flags = np.array(["0000"] * n) if cc_flags is None else np.asarray(cc_flags, str)
    qual_frame = np.full(n, 10, "int64") if qual_frame is None else \
        np.asarray(qual_frame, "int64")
    source_id = (np.array([f"{i:05d}a{i % 999:03d}-{i:06d}" for i in range(n)])
                 if source_id is None else np.asarray(source_id, str))

    def mags(values):
        values = np.asarray(values, float)
        return pa.array(values, pa.float64(), mask=~np.isfinite(values))

    return pa.table({
        "cntr": pa.array(cntr, pa.int64()),
        "source_id": pa.array(source_id, pa.string()),
        "ra": pa.array(np.asarray(ra, float), pa.float64()),
        "dec": pa.array(np.asarray(dec, float), pa.float64()),
        "mjd": pa.array(np.asarray(mjd, float), pa.float64()),
        "w1mpro": mags(w1mpro),
        "w1sigmpro": mags(w1sigmpro),
        "w2mpro": mags(w2mpro),
        "w2sigmpro": mags(w2sigmpro),
        "cc_flags": pa.array(cc_flags, pa.string()),
        "qual_frame": pa.array(qual_frame, pa.int64()),
    })


def ztf_lightcurve_schema(nested=True):
    """Schema of ZTF DR light curves, one row per objectid (and filter).

    ``nested=False``: the DR parquet files (``objectid int64, filterid int8,
    fieldid int16, rcid int8, objra float32, objdec float32, nepochs int64``,
    list columns ``hmjd<double>, mag<float>, magerr<float>, clrcoeff<float>,
    catflags<int32>``).  ``nested=True``: the DR24 HATS catalog, where the
    list columns sit in the struct ``lightcurve`` (nested-pandas stores a
    nested frame as a struct of equal-length lists).  The catflags list
    width is not documented (int32 chosen; readers cast).
    """
    import pyarrow as pa

    top = [("objectid", pa.int64()), ("filterid", pa.int8()), ("fieldid", pa.int16()),
           ("rcid", pa.int8()), ("objra", pa.float32()), ("objdec", pa.float32()),
           ("nepochs", pa.int64())]
    lists = [("hmjd", pa.list_(pa.float64())), ("mag", pa.list_(pa.float32())),
             ("magerr", pa.list_(pa.float32())), ("clrcoeff", pa.list_(pa.float32())),
             ("catflags", pa.list_(pa.int32()))]
    if nested:
        return pa.schema(top + [("lightcurve", pa.struct(lists))])
    return pa.schema(top + lists)


def ztf_lightcurve_table(objects, *, nested=True):
    """ZTF light-curve rows from a list of dicts.

    Each dict has ``objectid, filterid, objra, objdec`` and the per-epoch
    sequences ``hmjd, mag, magerr, catflags`` (``clrcoeff``, ``fieldid``,
    ``rcid`` optional).
    """
    import pyarrow as pa

    schema = ztf_lightcurve_schema(nested)
    cols = {name: [] for name in ("objectid", "filterid", "fieldid", "rcid", "objra",
                                  "objdec", "nepochs", "hmjd", "mag", "magerr",
                                  "clrcoeff", "catflags")}
    for obj in objects:
        n = len(obj["hmjd"])
        cols["objectid"].append(int(obj["objectid"]))
        cols["filterid"].append(int(obj["filterid"]))
        cols["fieldid"].append(int(obj.get("fieldid", 600)))
        cols["rcid"].append(int(obj.get("rcid", 10)))
        cols["objra"].append(float(obj["objra"]))
        cols["objdec"].append(float(obj["objdec"]))
        cols["nepochs"].append(n)
        for name in ("hmjd", "mag", "magerr", "catflags"):
            cols[name].append(list(obj[name]))
        cols["clrcoeff"].append(list(obj.get("clrcoeff", [0.0] * n)))
    arrays = {name: pa.array(cols[name], schema.field(name).type)
              for name in ("objectid", "filterid", "fieldid", "rcid", "objra", "objdec",
                           "nepochs")}
    list_types = {f.name: f.type for f in ztf_lightcurve_schema(False)}
    lists = {name: pa.array(cols[name], list_types[name])
             for name in ("hmjd", "mag", "magerr", "clrcoeff", "catflags")}
    if nested:
        arrays["lightcurve"] = pa.StructArray.from_arrays(list(lists.values()),
                                                          names=list(lists))
    else:
        arrays.update(lists)
    return pa.table(arrays, schema=schema)


# --------------------------------------------------------------------------- S3
def upload_directory(client, bucket, local_dir, prefix):
    """Upload every file under *local_dir* to ``s3://bucket/prefix/...``."""
    local_dir = Path(local_dir)
    for path in sorted(local_dir.rglob("*")):
        if path.is_file():
            key = prefix.strip("/") + "/" + path.relative_to(local_dir).as_posix()
            client.upload_file(str(path), bucket, key)


def moto_s3(uploads=(), *, bucket="multilc-test"):
    """Serve local folders as a public S3 bucket on 127.0.0.1; yield its endpoint URL.

    Kept under its old name; it is now `multilc.testing.s3.local_s3` (a
    read-only S3 stand-in needing neither moto nor boto3).
    """
    from multilc.testing.s3 import local_s3

    return local_s3(uploads, bucket=bucket)
