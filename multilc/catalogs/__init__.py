"""Bulk access to HEALPix-partitioned catalogs (HATS with margin caches, hive parquet).

The room of the bulk catalog readers, separate from the collection engine
(`multilc.collect` knows batches, not catalogs; it never imports this
package).  Archive readers (`multilc.archives.ztf`, ``wise``, ``gaia``,
``panstarrs``) use it in three steps:

1. **Plan** (`multilc.catalogs.plan`): each target goes to the partition
   holding its centre; groups of targets are bounded in size and never
   chained through shared partitions (`HatsCatalog.plan`).
2. **Read and match** (`multilc.catalogs.hats`): for each group, the home
   partitions (plus the margin cache, or the neighbouring partitions for the
   few cones crossing a boundary) are read with pyarrow, position columns
   first, and matched with a k-d tree (`multilc.catalogs.match`);
   `HatsCatalog.crossmatch` returns the matched rows with their target and
   separation.
3. **Select** (`nearest_only`): per-target choices made by the readers.

`crossmatch` runs the three steps for a whole sample without the engine.
This package imports nothing else from multilc.
"""
from multilc.catalogs.hats import (HatsCatalog, HiveCatalog, ReadLog, crossmatch,  # noqa: F401
                                   hats_leaf_path, open_filesystem, partition_of_path,
                                   read_log)
from multilc.catalogs.match import cone_match, cone_pairs, nearest_only  # noqa: F401
from multilc.catalogs.plan import (HEALPIX29_ORDER, PartitionGroup, Tiling,  # noqa: F401
                                   cone_partitions, plan_groups)

__all__ = ["HatsCatalog", "HiveCatalog", "ReadLog", "read_log", "crossmatch",
           "open_filesystem", "partition_of_path", "hats_leaf_path", "cone_match",
           "cone_pairs", "nearest_only", "HEALPIX29_ORDER", "PartitionGroup", "Tiling",
           "cone_partitions", "plan_groups"]
