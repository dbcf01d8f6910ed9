"""Batches of a bulk catalog reader from the catalog room's partition groups.

The one place where `multilc.catalogs` (which knows partitions, not
batches) meets the reader API (`multilc.collect.api.Batch`, which knows
batches, not catalogs).
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["plan_partition_batches", "memory_released", "bulk_concurrency"]


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


def _cpu_count():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def bulk_concurrency(archive, catalogs):
    """Bulk batches to read at once: an ``Archive.concurrency_for`` for bulk routes.

    Reading a catalog on a local disk is CPU work (decompressing, decoding,
    matching), so batches in flight beyond the CPUs gain no time and hold
    more memory: ZTF-like catalog, 5,000 targets, 2 CPUs, 3 runs each
    (bench/bench_bulk_scale.py's catalogs): 4 batches at once 2.0-2.4 s and
    302-311 MiB peak RSS, 2 at once 1.9-2.3 s and 273-275 MiB.  For a
    remote catalog (S3, HTTP) batches mostly wait on the network, and the
    archive's concurrency stands; so does a concurrency the caller chose.

    Parameters
    ----------
    archive : `~multilc.collect.Archive`
    catalogs : list of `~multilc.catalogs.HatsCatalog` or `~multilc.catalogs.HiveCatalog`
        The catalogs the batches read.

    Returns
    -------
    int
    """
    n = archive.max_concurrency
    if archive.concurrency_chosen or not all(c.local for c in catalogs):
        return n
    return max(1, min(n, _cpu_count()))
