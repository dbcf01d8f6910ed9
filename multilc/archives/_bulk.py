"""Batches of a bulk catalog reader from the catalog room's partition groups.

The one place where `multilc.catalogs` (which knows partitions, not
batches) meets the reader API (`multilc.collect.api.Batch`, which knows
batches, not catalogs).
"""
from __future__ import annotations

import numpy as np

__all__ = ["plan_partition_batches", "memory_released"]


def plan_partition_batches(archive, sample, groups):
    """One `~multilc.collect.Batch` per `~multilc.catalogs.PartitionGroup`.

    Use in ``Archive.plan``::

        def plan(self, sample):
            coord = sample.coord.icrs
            groups = self.catalog().plan(coord.ra.deg, coord.dec.deg, self.radius)
            return plan_partition_batches(self, sample, groups)

    Each batch's ``options["partitions"]`` lists its home ``[order, pixel]``
    keys (part of the batch's cache key); its targets are the group's.

    Parameters
    ----------
    archive : `~multilc.collect.Archive`
    sample : `~multilc.samples.Sample`
    groups : list of `~multilc.catalogs.PartitionGroup`

    Returns
    -------
    list of `~multilc.collect.Batch`
    """
    from multilc.collect.api import Batch

    coord = sample.coord.icrs
    ra = coord.ra.deg
    dec = coord.dec.deg
    ids = np.asarray(sample.objectid, dtype="int64")
    labels = np.asarray(sample.table["label"], dtype=str)
    opts = archive.batch_options()
    batches = []
    for i, group in enumerate(groups):
        idx = np.sort(np.asarray(group.targets, dtype=int))
        batches.append(Batch(archive.name, i, ids[idx], ra[idx], dec[idx], labels[idx],
                             {**opts, "partitions": [[int(o), int(p)]
                                                     for o, p in group.partitions]}))
    return batches


def memory_released(result):
    """*result*, after returning the memory pyarrow keeps for reuse.

    A bulk ``parse`` turns a batch's matched rows (pyarrow) into numpy
    columns; the intermediate pyarrow arrays it freed stay with pyarrow's
    pool (mimalloc or jemalloc) unless released.  Each bulk reader's parse
    returns through this (`multilc.catalogs.hats.release_unused_memory` does
    the same after each catalog read), which took a 500,000-target ZTF
    collection's peak RSS from 937 to the figure in bench/bench_bulk_scale.py.
    """
    from multilc.catalogs.hats import release_unused_memory

    release_unused_memory()
    return result
