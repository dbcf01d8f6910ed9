"""Exact cone matching of catalog rows to targets, and per-target selections.

`cone_match` pairs targets with catalog rows within a radius using a k-d
tree on unit vectors (scipy's ``cKDTree``, as astropy's
``search_around_sky`` does, without building `~astropy.coordinates.SkyCoord`
objects for the rows: at 500,000 targets the SkyCoord construction and frame
checks cost more than the tree).  Separations come from the Vincenty
formula (as `astropy.coordinates.angular_separation`), and the radius cut is
applied to them, so a row exactly at the radius is decided the same way
whatever the tree's floating-point chord says.

This module imports nothing from multilc.
"""
from __future__ import annotations

import numpy as np
from astropy import units as u

__all__ = ["unit_vectors", "angular_separation_deg", "cone_match", "cone_pairs",
           "nearest_only", "unique_pairs"]


def unit_vectors(ra, dec):
    """``(n, 3)`` unit vectors of positions [deg]."""
    ra = np.deg2rad(np.asarray(ra, dtype=float))
    dec = np.deg2rad(np.asarray(dec, dtype=float))
    cosd = np.cos(dec)
    return np.stack([cosd * np.cos(ra), cosd * np.sin(ra), np.sin(dec)], axis=-1)


def angular_separation_deg(ra1, dec1, ra2, dec2):
    """Angular distance [deg] between positions [deg].

    astropy's `~astropy.coordinates.angular_separation` (the Vincenty
    formula, as ``SkyCoord.separation`` uses) on plain arrays, without the
    cost of building `~astropy.coordinates.SkyCoord` objects.  NaN where any
    input is NaN.
    """
    from astropy.coordinates import angular_separation

    l1, b1, l2, b2 = (np.deg2rad(np.asarray(x, dtype=float)) for x in (ra1, dec1, ra2, dec2))
    return np.rad2deg(angular_separation(l1, b1, l2, b2))


def cone_pairs(target_ra, target_dec, ra, dec, rdeg):
    """(target, row, separation [deg]) of every row within *rdeg* of a target.

    Parameters
    ----------
    target_ra, target_dec, ra, dec : array-like of float
        Positions [deg].
    rdeg : float
        Radius [deg].

    Returns
    -------
    target_index, row_index : numpy.ndarray of int64
        Sorted by target, then row.
    separation : numpy.ndarray of float
        [deg].
    """
    from scipy.spatial import cKDTree

    target_ra = np.atleast_1d(np.asarray(target_ra, dtype=float))
    target_dec = np.atleast_1d(np.asarray(target_dec, dtype=float))
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    empty = np.zeros(0, "int64"), np.zeros(0, "int64"), np.zeros(0)
    if not len(ra) or not len(target_ra):
        return empty
    # Chord of the radius, widened by 1e-9 relative so the tree never drops
    # a pair the exact separation below keeps.
    chord = 2 * np.sin(np.deg2rad(min(rdeg, 180.0)) / 2) * (1 + 1e-9) + 1e-15
    tt = cKDTree(unit_vectors(target_ra, target_dec))
    tr = cKDTree(unit_vectors(ra, dec))
    pairs = tt.sparse_distance_matrix(tr, chord, output_type="ndarray")
    ti = pairs["i"].astype("int64")
    ri = pairs["j"].astype("int64")
    sep = angular_separation_deg(target_ra[ti], target_dec[ti], ra[ri], dec[ri])
    ok = sep <= rdeg
    ti, ri, sep = ti[ok], ri[ok], sep[ok]
    order = np.lexsort((ri, ti))
    return ti[order], ri[order], sep[order]


def cone_match(target_ra, target_dec, ra, dec, radius):
    """Exact cone match of catalog rows to targets.

    Parameters
    ----------
    target_ra, target_dec : array-like
        Targets [deg].
    ra, dec : array-like
        Catalog rows [deg].
    radius : `~astropy.units.Quantity`

    Returns
    -------
    target_index, row_index : numpy.ndarray of int
        One entry per (target, row) pair within *radius*, sorted by target
        then row.
    separation : `~astropy.units.Quantity`
        Angular distance [arcsec].
    """
    if not isinstance(radius, u.Quantity):
        raise TypeError(f"radius must be an angle Quantity, got {radius!r}")
    ti, ri, sep = cone_pairs(target_ra, target_dec, ra, dec, float(radius.to_value(u.deg)))
    return ti, ri, (sep * 3600.0) * u.arcsec


def nearest_only(target_index, separation, source_id):
    """Mask keeping, per target, the rows of its nearest archive object.

    All rows (epochs) of the nearest ``source_id`` are kept; ties go to the
    smaller id.  Vectorised: one sort, no loop over targets.
    """
    target_index = np.asarray(target_index)
    keep = np.zeros(len(target_index), bool)
    if not len(target_index):
        return keep
    sep = np.asarray(u.Quantity(separation).to_value(u.arcsec)
                     if isinstance(separation, u.Quantity) else separation, dtype=float)
    sid = np.asarray(source_id)
    if sid.dtype.kind in "OUS":
        sid_key = np.unique(sid.astype(str), return_inverse=True)[1]
    else:
        sid_key = sid
    order = np.lexsort((sid_key, sep, target_index))
    t_sorted = target_index[order]
    first = np.ones(len(order), bool)
    first[1:] = t_sorted[1:] != t_sorted[:-1]
    # best source per target, broadcast back to every row of that target
    group = np.cumsum(first) - 1
    best = sid_key[order][first][group]
    keep[order] = sid_key[order] == best
    return keep


def unique_pairs(target_index, source_key):
    """Mask keeping the first row of each (target, source) pair.

    Used to de-duplicate matches when the same catalog row could be read
    twice (e.g. from a partition and from a neighbour's margin).
    """
    target_index = np.asarray(target_index, dtype="int64")
    source_key = np.asarray(source_key)
    keep = np.zeros(len(target_index), bool)
    if not len(target_index):
        return keep
    _, first = np.unique(np.stack([target_index, source_key.astype("int64")], axis=1),
                         axis=0, return_index=True)
    keep[first] = True
    return keep
