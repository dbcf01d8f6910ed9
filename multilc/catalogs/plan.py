"""Planning a bulk read: which partitions each target's cone needs, and in what groups.

A HEALPix-partitioned catalog (a HATS catalog's adaptive tiling, or a hive
catalog with every pixel of one order) is described by a `Tiling`.  For a
set of cones, planning answers two questions, both vectorised with numpy and
hpgeom (no Python loop over targets except for the few cones that straddle
a partition boundary):

* **Which partitions does each cone touch?**  (`cone_partitions`)  The cone
  centre's pixel at a *fine* order (pixels at least four radii wide) and its
  eight neighbours cover the whole cone.  When those nine fine pixels all
  lie in one partition (nearly every target: a 1" cone near a 1 degree
  partition boundary is rare) that partition is the answer.  Only the other
  cones get an exact `hpgeom.query_circle` at an order finer than the cone.
  ``query_circle(inclusive=True)`` at the *partition* order, used before,
  reports 1.5 partitions on average for a 1" cone: its inclusive mode tests
  bounding circles of the coarse pixels, so it over-covers by up to a pixel.
* **Which targets go together?**  (`plan_groups`)  Every target has one
  *home* partition: the one holding its centre.  A group is a home partition
  (or a few neighbouring ones) with the targets homed there, never chained
  through shared partitions, and never more than ``max_targets`` targets, so
  batches stay bounded and can be streamed.  A cone that crosses its home
  partition's boundary is completed either by the HATS *margin* catalog
  (when ``radius <= margin threshold``: the margin of partition P holds the
  rows of P's neighbours within the threshold of P) or, without a margin, by
  reading the neighbouring partitions it touches for that cone only (see
  `multilc.catalogs.hats`).  Each target is in exactly one group, so its
  matches are never split (``match="nearest"`` stays right at borders) and
  no (target, row) pair is returned twice.

This module imports nothing from multilc.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from astropy import units as u

__all__ = ["HEALPIX29_ORDER", "Tiling", "PartitionGroup", "pixel29", "fine_order",
           "cone_partitions", "home_partitions", "plan_groups", "radius_deg"]

#: Order of the HATS spatial index column ``_healpix_29`` (HATS convention,
#: ``hats_col_healpix_order``).
HEALPIX29_ORDER = 29

#: A fine pixel must be at least this many cone radii wide (HEALPix
#: resolution, ``sqrt(pixel area)``) for the 3x3 block of fine pixels
#: around the centre's pixel to contain the whole cone.  The narrowest
#: HEALPix pixels (polar caps) are about half the resolution wide; 4 leaves
#: a factor of two of margin, checked against brute force in the tests.
FINE_PIXEL_RADII = 4.0

#: Default largest number of targets in one group (bounded batches).
MAX_TARGETS = 20_000


def radius_deg(radius):
    """A cone radius (angle `~astropy.units.Quantity`) in degrees."""
    if not isinstance(radius, u.Quantity):
        raise TypeError(f"radius must be an angle Quantity, got {radius!r}")
    return float(radius.to_value(u.deg))


def pixel29(ra, dec):
    """NESTED pixel at order 29 of each position [deg] (the HATS spatial index)."""
    import hpgeom

    return hpgeom.angle_to_pixel(2 ** HEALPIX29_ORDER, np.asarray(ra, float),
                                 np.asarray(dec, float), nest=True).astype("int64")


class Tiling:
    """The partitions of a catalog as non-overlapping ranges of order-29 pixels.

    Parameters
    ----------
    partitions : int or array-like of (order, pixel)
        A fixed order (every pixel of that order is a partition: hive
        catalogs) or the list of ``(Norder, Npix)`` of a HATS catalog
        (adaptive tiling, NESTED).
    """

    def __init__(self, partitions):
        if np.isscalar(partitions) or np.ndim(partitions) == 0:
            self.fixed_order = int(partitions)
            self.keys = None
            self.max_order = self.fixed_order
            return
        self.fixed_order = None
        keys = np.asarray(partitions, dtype="int64").reshape(-1, 2)
        shift = 2 * (HEALPIX29_ORDER - keys[:, 0])
        starts = keys[:, 1] << shift
        order = np.argsort(starts, kind="stable")
        self.keys = keys[order]
        self.starts = starts[order]
        self.stops = (self.keys[:, 1] + 1) << shift[order]
        self.max_order = int(self.keys[:, 0].max()) if len(self.keys) else 0

    def __len__(self):
        return 12 * 4 ** self.fixed_order if self.keys is None else len(self.keys)

    def key(self, index):
        """``(order, pixel)`` of partition number *index* (array-like ok)."""
        index = np.asarray(index, dtype="int64")
        if self.keys is None:
            return np.stack([np.full(index.shape, self.fixed_order), index], axis=-1)
        return self.keys[index]

    def locate29(self, p29):
        """Partition number holding each order-29 pixel, -1 where none."""
        p29 = np.asarray(p29, dtype="int64")
        if self.keys is None:
            return p29 >> (2 * (HEALPIX29_ORDER - self.fixed_order))
        if not len(self.keys):
            return np.full(p29.shape, -1, "int64")
        i = np.searchsorted(self.starts, p29, side="right") - 1
        ok = (i >= 0) & (p29 < self.stops[np.clip(i, 0, None)])
        return np.where(ok, i, -1)

    def locate(self, pixels, order):
        """Partition number of each pixel of *order* (>= every partition order)."""
        pixels = np.asarray(pixels, dtype="int64")
        out = self.locate29(np.where(pixels < 0, 0, pixels) << (2 * (HEALPIX29_ORDER - order)))
        return np.where(pixels < 0, -1, out)


@dataclasses.dataclass
class PartitionGroup:
    """Targets planned together and the home partitions they live in.

    Attributes
    ----------
    partitions : list of (int, int)
        ``(order, pixel)`` home partitions of the group's targets.
    targets : numpy.ndarray of int
        Indices of the targets (into the arrays given to `plan_groups`).
    """

    partitions: list
    targets: np.ndarray


def fine_order(rdeg, max_order=HEALPIX29_ORDER):
    """Finest order whose pixels are at least `FINE_PIXEL_RADII` radii wide."""
    rdeg = max(float(rdeg), 1e-9)
    # HEALPix resolution(k) = sqrt(4 pi / (12 4^k)) rad = 58.63 deg / 2^k.
    k = int(np.floor(np.log2(np.degrees(np.sqrt(np.pi / 3)) / (FINE_PIXEL_RADII * rdeg))))
    return int(np.clip(k, 0, max_order))


def _fine_block(ra, dec, kf):
    """Centre pixel at order *kf* and its 8 neighbours, ``(n, 9)`` (-1 = none)."""
    import hpgeom

    nside = 2 ** kf
    centre = hpgeom.angle_to_pixel(nside, ra, dec, nest=True).astype("int64")
    if kf == 0:  # neighbours of order-0 pixels: the cone may touch any of them
        return np.concatenate([centre[:, None], np.tile(np.arange(12), (len(centre), 1))],
                              axis=1)
    nb = np.asarray(hpgeom.neighbors(nside, centre, nest=True), dtype="int64").reshape(-1, 8)
    return np.concatenate([centre[:, None], nb], axis=1)


def cone_partitions(ra, dec, radius, tiling):
    """Partitions each cone touches.

    Parameters
    ----------
    ra, dec : array-like of float
        Cone centres [deg, ICRS].
    radius : `~astropy.units.Quantity`
    tiling : `Tiling`

    Returns
    -------
    target, partition : numpy.ndarray of int
        One entry per (cone, partition number) pair, sorted by cone.  A
        partition that a cone only grazes within ~one fine pixel may be
        included (never one it misses).
    """
    import hpgeom

    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    n = len(ra)
    if not n or not len(tiling):
        return np.zeros(0, "int64"), np.zeros(0, "int64")
    rdeg = radius_deg(radius)
    kf = fine_order(rdeg)
    if kf >= tiling.max_order:
        block = tiling.locate(_fine_block(ra, dec, kf), kf)
        simple = np.all(block == block[:, :1], axis=1)
    else:  # cone wider than the finest partitions: exact query for every cone
        block = np.full((n, 1), -1, "int64")
        simple = np.zeros(n, bool)
    t_simple = np.flatnonzero(simple & (block[:, 0] >= 0))
    pairs_t = [t_simple]
    pairs_p = [block[t_simple, 0]]
    # The rest straddle a boundary: exact cover at an order finer than the cone.
    kq = int(min(HEALPIX29_ORDER, max(tiling.max_order, kf + 2)))
    nside = 2 ** kq
    for i in np.flatnonzero(~simple):
        pix = hpgeom.query_circle(nside, ra[i], dec[i], rdeg, nest=True, inclusive=True)
        parts = np.unique(tiling.locate(np.asarray(pix, "int64"), kq))
        parts = parts[parts >= 0]
        pairs_t.append(np.full(len(parts), i, "int64"))
        pairs_p.append(parts)
    t = np.concatenate(pairs_t).astype("int64")
    p = np.concatenate(pairs_p).astype("int64")
    order = np.lexsort((p, t))
    return t[order], p[order]


def home_partitions(ra, dec, tiling):
    """Partition number holding each cone centre (-1 where none)."""
    return tiling.locate29(pixel29(np.atleast_1d(ra), np.atleast_1d(dec)))


def plan_groups(ra, dec, radius, tiling, *, max_targets=MAX_TARGETS, min_partitions=1):
    """Group targets by home partition, bounded in size, without chaining.

    Parameters
    ----------
    ra, dec : array-like of float
        Targets [deg, ICRS].
    radius : `~astropy.units.Quantity`
    tiling : `Tiling`
    max_targets : int
        Largest number of targets per group; a partition with more targets
        is split into several groups (targets sorted along the NESTED curve,
        so each group is compact on the sky).
    min_partitions : int
        Consecutive home partitions (NESTED order: sky neighbours) are merged
        until a group holds this many, to cut per-batch overhead when each
        partition holds few targets.

    Returns
    -------
    list of `PartitionGroup`
        Targets whose cone touches no partition are in no group.  A target
        whose centre lies outside every partition but whose cone touches one
        is homed in the first partition it touches.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    max_targets = max(1, int(max_targets))
    p29 = pixel29(ra, dec)
    home = tiling.locate29(p29)
    lost = np.flatnonzero(home < 0)
    if len(lost):  # centre in no partition: maybe the cone reaches one
        t, p = cone_partitions(ra[lost], dec[lost], radius, tiling)
        first = np.unique(t, return_index=True)[1]
        home[lost[t[first]]] = p[first]
    keep = np.flatnonzero(home >= 0)
    order = keep[np.lexsort((p29[keep], home[keep]))]
    homes = home[order]
    bounds = np.flatnonzero(np.diff(homes)) + 1
    groups = []
    pending_parts, pending_targets = [], []

    def flush():
        if pending_targets:
            groups.append(PartitionGroup(list(pending_parts),
                                         np.concatenate(pending_targets)))
        pending_parts.clear()
        pending_targets.clear()

    for chunk in np.split(order, bounds) if len(order) else []:
        key = tuple(int(x) for x in tiling.key(home[chunk[0]]))
        if len(chunk) > max_targets:
            flush()
            for piece in np.array_split(chunk, -(-len(chunk) // max_targets)):
                groups.append(PartitionGroup([key], piece))
            continue
        size = sum(len(x) for x in pending_targets)
        if pending_parts and (len(pending_parts) >= max(1, int(min_partitions))
                              or size + len(chunk) > max_targets):
            flush()
        pending_parts.append(key)
        pending_targets.append(chunk)
    flush()
    return groups
