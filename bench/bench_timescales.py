"""Benchmark multilc.timescales.to_mjd_tdb: speed for 1M values and accuracy.

Prints, for each native time system that needs a light-travel time:

* seconds to convert 1,000,000 random times (1990-2030, random sky
  positions, one position per value) with ``to_mjd_tdb``;
* seconds astropy's own full computation takes for a subset, and the
  extrapolated ratio;
* the maximum absolute difference (seconds) between the two on that subset.

Run: ``python bench/bench_timescales.py [n_values] [n_reference]``.
"""

import sys
import time
import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time
from astropy.utils import iers

from multilc.timescales import TIME_SYSTEMS, to_mjd_tdb

MJD_1990, MJD_2030 = 47892.0, 62502.0
# IERS-B bundled with astropy ends in 2026: UT1 tests stop earlier.
MJD_UT1_END = 61000.0


def astropy_reference(values, system, coord):
    """Barycentric MJD(TDB) computed entirely with astropy (slow, exact)."""
    location = system.location
    if location is None:
        location = EarthLocation.from_geocentric(0, 0, 0, u.m)
    t = Time(values, format="mjd", scale=system.scale, location=location)
    if system.reference == "heliocentric":
        t_obs = t
        for _ in range(3):
            t_obs = t - t_obs.light_travel_time(coord, "heliocentric")
        t = t_obs
    ref = (t.tdb + t.light_travel_time(coord, "barycentric")).tdb
    return ref


def main(n_values=1_000_000, n_reference=20_000):
    rng = np.random.default_rng(42)
    print(f"to_mjd_tdb on {n_values:,} values vs astropy full computation on {n_reference:,}")
    print(
        f"{'system':22s} {'ours [s]':>9s} {'astropy [s, extrapolated]':>26s} "
        f"{'ratio':>7s} {'max |diff| [s]':>15s}"
    )
    for name, system in TIME_SYSTEMS.items():
        if not system.needs_coordinates:
            continue
        end = MJD_UT1_END if system.scale == "ut1" else MJD_2030
        values = rng.uniform(MJD_1990, end, n_values)
        ra = rng.uniform(0, 360, n_values) * u.deg
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_values))) * u.deg

        with warnings.catch_warnings():
            # erfa warns "dubious year" for UTC dates after the leap-second
            # table's end (2027-2030 here): expected, not an error.
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            ours = to_mjd_tdb(values, name, ra=ra, dec=dec)
            ours_s = time.perf_counter() - start

        sub = slice(0, n_reference)
        coord = SkyCoord(ra[sub], dec[sub])
        with (
            iers.conf.set_temp("auto_download", False),
            iers.conf.set_temp("auto_max_age", None),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            ref = astropy_reference(values[sub], system, coord)
            ref_s = (time.perf_counter() - start) * n_values / n_reference
        diff_s = np.abs((ours[sub] - (ref.jd1 - 2400000.5)) - ref.jd2) * 86400.0
        print(f"{name:22s} {ours_s:9.2f} {ref_s:26.1f} {ref_s / ours_s:7.0f} {diff_s.max():15.2e}")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
