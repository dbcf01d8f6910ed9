"""Native archive time systems -> MJD(TDB) at the solar-system barycentre.

multilc stores every time as a Modified Julian Date in the TDB scale,
referred to the solar-system barycentre, i.e. what
``Time(t, format="mjd", scale="tdb")`` means for a barycentric arrival
time.  Each archive reports its own kind of time; ``TIME_SYSTEMS``
describes each one and :func:`to_mjd_tdb` converts it.

How the conversion works (fast for millions of values):

1. value + offset -> MJD in the native scale (UTC, TAI, UT1, TCB, TDB).
2. scale -> TT: TAI + 32.184 s; UTC via astropy's leap-second table
   evaluated once per distinct UTC day; UT1 via the IERS-B table bundled
   with astropy (offline).  TT -> TDB with astropy's TDB-TT evaluated at
   whole days and interpolated linearly (TDB-TT has a 1.7 ms amplitude and a
   one-year period, so the interpolation error is below 0.1 microsecond).
3. Light-travel time to the barycentre, ``(r_observer . n) / c``:
   Earth (and Sun) barycentric positions and velocities come from
   :func:`astropy.coordinates.get_body_barycentric_posvel` (current solar-system
   ephemeris) at whole TDB days and are interpolated with cubic Hermite
   polynomials (error below 100 m, i.e. < 1 microsecond); the observatory's
   geocentric position is its ITRS position rotated by the Earth rotation
   angle (precession-nutation ignored: < 50 km, < 0.2 ms).

Measured against astropy's full computation
(``t.tdb + t.light_travel_time(coord, kind="barycentric", location=...)``)
on 20,000 random times 1990-2030 (UT1: 1990-2025) at random sky positions,
the maximum difference is 6e-5 s (Pan-STARRS and IceCube topocentric
times; 5e-6 s for ZTF, 1e-6 s for geocentric systems), far below the 1 s
target.  Converting 1,000,000 values takes 1.2-2.8 s on one core (astropy's
full computation: 130-720 s).  Rerun with ``bench/bench_timescales.py``.

This module imports nothing from the rest of multilc (see docs/dev/architecture.rst).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np
from astropy import constants
from astropy import units as u
from astropy.coordinates import (
    EarthLocation,
    Latitude,
    Longitude,
    SkyCoord,
    UnitSphericalRepresentation,
    get_body_barycentric_posvel,
    solar_system_ephemeris,
)
from astropy.time import Time
from astropy.utils import iers

__all__ = [
    "TIME_SYSTEMS",
    "TimeSystem",
    "UnknownTimeSystemError",
    "to_mjd_tdb",
    "OBSERVATORIES",
]

# --------------------------------------------------------------------------
# Constants, each with its source.
# --------------------------------------------------------------------------

SECONDS_PER_DAY = 86400.0
#: JD of MJD 0 (definition of MJD, IAU 1997 resolution B1).
MJD_ZERO_JD = 2400000.5
#: TT - TAI = 32.184 s exactly (IAU 1991 resolution A4).
TT_MINUS_TAI_S = 32.184
#: Light time for 1 au, seconds (IAU 2012 au, astropy constants).
AU_LIGHT_SECONDS = (constants.au / constants.c).to_value(u.s)
#: Start of the integer-second UTC era (1972-01-01); before it astropy's
#: exact per-value UTC conversion is used (UTC-TAI drifted continuously).
_UTC_LEAP_SECOND_ERA_MJD = 41317.0
#: Earth rotation angle, IERS Conventions (2010) eq. 5.15:
#: theta = 2 pi (0.7790572732640 + 1.00273781191135448 (JD_UT1 - 2451545.0)).
_ERA_AT_J2000_TURNS = 0.7790572732640
_ERA_RATE_TURNS_PER_DAY = 1.00273781191135448
_J2000_JD = 2451545.0

#: Observatory positions used for topocentric light-travel times.  Accurate
#: to ~1 km, which changes a light-travel time by at most 3.3 microseconds.
OBSERVATORIES = {
    # Samuel Oschin 48-inch (ZTF), Palomar Observatory, California;
    # approximate geodetic position of Palomar Mountain (MPC code I41 site).
    "palomar": EarthLocation.from_geodetic(
        lon=-116.8599 * u.deg, lat=33.3563 * u.deg, height=1712 * u.m
    ),
    # Pan-STARRS1, Haleakala, Maui (MPC code F51 site), approximate.
    "haleakala": EarthLocation.from_geodetic(
        lon=-156.2571 * u.deg, lat=20.7075 * u.deg, height=3055 * u.m
    ),
    # IceCube Neutrino Observatory at the geographic South Pole; surface
    # elevation ~2835 m (the in-ice detector is 1.45-2.45 km deeper: < 10 us).
    "south_pole": EarthLocation.from_geodetic(lon=0 * u.deg, lat=-90 * u.deg, height=2835 * u.m),
}

_REFERENCES = ("barycentric", "heliocentric", "geocentric", "topocentric")
_SCALES = ("utc", "tai", "tt", "ut1", "tdb", "tcb")


class UnknownTimeSystemError(KeyError, ValueError):
    """A time-system name that is not in ``TIME_SYSTEMS``."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, eq=False)
class TimeSystem:
    """How one archive reports time, and how to convert it.

    The native value ``v`` means: the MJD ``v + mjd_offset`` in time scale
    ``scale``, of the arrival of light at ``reference`` (the barycentre,
    the Sun's centre, the geocentre, or ``location`` on Earth).

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"ztf.hmjd"``.
    description : str
        What the archive's number is.
    citation : str
        Where that is documented.
    scale : {"utc", "tai", "tt", "ut1", "tdb", "tcb"}
        astropy time scale of the values.
    mjd_offset : float
        Days to add to a value to get an MJD (e.g. 54832.5 for Kepler BKJD).
    reference : {"barycentric", "heliocentric", "geocentric", "topocentric"}
        Where the arrival time is referred to.
    location : `~astropy.coordinates.EarthLocation`, optional
        Observer for "topocentric" and "heliocentric" times (None: geocentre).
    """

    name: str
    description: str
    citation: str
    scale: str
    mjd_offset: float
    reference: str
    location: EarthLocation | None = None

    def __post_init__(self):
        if self.scale not in _SCALES:
            raise ValueError(f"time system {self.name!r}: scale must be one of {_SCALES}")
        if self.reference not in _REFERENCES:
            raise ValueError(f"time system {self.name!r}: reference must be one of {_REFERENCES}")
        if self.reference == "barycentric" and self.scale not in ("tdb", "tcb"):
            raise ValueError(f"time system {self.name!r}: barycentric times must be in TDB or TCB")

    @property
    def needs_coordinates(self):
        """bool: whether converting needs the target's sky position."""
        return self.reference != "barycentric"

    def to_mjd_tdb(self, values, *, ra=None, dec=None):
        """Convert values of this system; see :func:`to_mjd_tdb`."""
        return _convert(self, values, ra, dec)


TIME_SYSTEMS: dict[str, TimeSystem] = {
    system.name: system
    for system in (
        TimeSystem(
            "mjd_tdb_bary",
            "MJD in TDB at the solar-system barycentre (multilc's own scale).",
            "multilc convention",
            "tdb",
            0.0,
            "barycentric",
        ),
        TimeSystem(
            "ztf.hmjd",
            "ZTF light-curve 'hmjd': heliocentric MJD (UTC) at mid-exposure, Palomar.",
            "ZTF DR explanatory notes (IRSA); Masci et al. 2019 PASP 131 018003. The time "
            "SCALE of hmjd (UTC or TDB) is not stated in any ZTF document we could read "
            "(nor in the ZTF Explanatory Supplement, as noted in "
            "ZwickyTransientFacility/ztf-avro-alert issue #11, 2025); UTC is ASSUMED: if it "
            "were TDB, times would be 69.184 s late (TDB-UTC since 2017). Whether the "
            "observatory or the geocentre was used for the heliocentric correction is not "
            "documented either; the two differ by < 21 ms. Palomar is assumed.",
            "utc",
            0.0,
            "heliocentric",
            OBSERVATORIES["palomar"],
        ),
        TimeSystem(
            "panstarrs.mjd",
            "Pan-STARRS1 Detection 'obsTime': MJD of the exposure mid-point in TAI (not UTC), "
            "Haleakala.",
            "MAST PS1 FAQ, 'PS1 Timing': Detection.obsTime is TAI (34-37 s ahead of UTC) and "
            "the mean time of the exposure (start + 15 s); MAST 'PS1 Detection table "
            "fields': obsTime 'Modified Julian Date at the midpoint of the observation. "
            "Note these are international atomic time rather than UTC'",
            "tai",
            0.0,
            "topocentric",
            OBSERVATORIES["haleakala"],
        ),
        TimeSystem(
            "wise.mjd",
            "WISE/NEOWISE/unWISE MJD (UTC); spacecraft in low Earth orbit, taken at the geocentre "
            "(< 23 ms error).",
            "WISE All-Sky Explanatory Supplement (mjd column, UTC); Meisner et al. 2023 AJ 165 36 "
            "(unWISE MJDMEAN = mean MJD of the epoch's exposures)",
            "utc",
            0.0,
            "geocentric",
        ),
        TimeSystem(
            "gaia.tcb_jd2010",
            "Gaia epoch 'time': barycentric JD in TCB minus 2455197.5 d (J2010.0).",
            "Gaia DR3 documentation (epoch photometry datamodel); VOTable TIMESYS "
            "timeorigin=2455197.5 timescale=TCB refposition=BARYCENTER",
            "tcb",
            2455197.5 - MJD_ZERO_JD,
            "barycentric",
        ),
        TimeSystem(
            "tess.btjd",
            "TESS BTJD = BJD_TDB - 2457000.0.",
            "TESS SPOC light-curve headers BJDREFI=2457000, BJDREFF=0, TIMESYS=TDB, "
            "TIMEREF=SOLARSYSTEM (lightkurve time.py)",
            "tdb",
            2457000.0 - MJD_ZERO_JD,
            "barycentric",
        ),
        TimeSystem(
            "kepler.bkjd",
            "Kepler BKJD = BJD_TDB - 2454833.0.",
            "Kepler light-curve headers BJDREFI=2454833, BJDREFF=0, TIMESYS=TDB "
            "(Kepler Archive Manual; lightkurve time.py)",
            "tdb",
            2454833.0 - MJD_ZERO_JD,
            "barycentric",
        ),
        TimeSystem(
            "k2.bkjd",
            "K2 BKJD = BJD_TDB - 2454833.0 (same as Kepler).",
            "K2 light-curve headers BJDREFI=2454833, BJDREFF=0, TIMESYS=TDB (lightkurve time.py)",
            "tdb",
            2454833.0 - MJD_ZERO_JD,
            "barycentric",
        ),
        TimeSystem(
            "mjd_utc_geocentric",
            "MJD (UTC) measured on a spacecraft in low Earth orbit (HEASARC Fermi GBM and "
            "BeppoSAX trigger times, HST), taken at the geocentre (< 23 ms error).",
            "HEASARC FERMIGTRIG / SAXGRBMGRB table 'time' column (MJD); scale assumed UTC. "
            "For the HCV 'MJD' column no document we could read (MAST HSC/HCV API docs, "
            "HCV_API_demo.ipynb, Bonanos et al. 2019) states the scale; UTC is ASSUMED "
            "(if it were TT: 60-69 s late over 1993-2017)",
            "utc",
            0.0,
            "geocentric",
        ),
        TimeSystem(
            "icecube.mjd_ut1",
            "IceCube event MJD in UT1, detector at the South Pole.",
            "IceCube 2008-2018 point-source release readme.txt: 'The MJD time (ut1) of the event'",
            "ut1",
            0.0,
            "topocentric",
            OBSERVATORIES["south_pole"],
        ),
    )
}


# --------------------------------------------------------------------------
# Public function.
# --------------------------------------------------------------------------


def to_mjd_tdb(values, system, *, ra=None, dec=None):
    """Convert native archive times to MJD(TDB) at the solar-system barycentre.

    Accuracy: at most 6e-5 s difference from astropy's full computation
    over 1990-2030 (measured; see the module docstring and
    ``bench/bench_timescales.py``).

    Parameters
    ----------
    values : array-like or `~astropy.units.Quantity`
        Native times (days; a Quantity is converted to days).
    system : str or `TimeSystem`
        Key of ``TIME_SYSTEMS``, e.g. ``"ztf.hmjd"``.
    ra, dec : `~astropy.units.Quantity`, optional
        ICRS target position (angles), scalar or one per value.  ``ra``
        may instead be a `~astropy.coordinates.SkyCoord` (then ``dec`` must
        be None).  Required unless the system is already barycentric.

    Returns
    -------
    numpy.ndarray
        float64 MJD(TDB), barycentric, same shape as ``values``.

    Raises
    ------
    UnknownTimeSystemError
        Unknown ``system`` (the message lists the known ones).
    ValueError
        NaN/inf values (the message gives the count), or missing
        coordinates for a system that needs them.
    TypeError
        Coordinates given as plain numbers.
    """
    return _convert(_get_system(system), values, ra, dec)


def _get_system(system):
    if isinstance(system, TimeSystem):
        return system
    try:
        return TIME_SYSTEMS[system]
    except (KeyError, TypeError):
        raise UnknownTimeSystemError(
            f"unknown time system {system!r}; known systems: {', '.join(sorted(TIME_SYSTEMS))}"
        ) from None


# --------------------------------------------------------------------------
# Implementation.
# --------------------------------------------------------------------------


def _as_days(values, system):
    if isinstance(values, u.Quantity):
        values = values.to_value(u.day)
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"times for system {system.name!r} must be numbers: {err}") from None
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {array.size} times in system {system.name!r} are NaN or "
            "infinite; remove or flag them before converting"
        )
    return array


def _direction(ra, dec, size, system):
    """Unit vectors towards the target(s), shape (3, size) or (3, 1)."""
    if ra is None and dec is None:
        raise ValueError(
            f"time system {system.name!r} ({system.reference}) needs the target position "
            "for the light-travel time: pass ra=..., dec=... (Quantity) or ra=<SkyCoord>"
        )
    if isinstance(ra, SkyCoord):
        if dec is not None:
            raise TypeError("pass either a SkyCoord as ra (and no dec) or ra and dec Quantities")
        xyz = ra.icrs.represent_as(UnitSphericalRepresentation).to_cartesian().xyz.value
    else:
        if not (isinstance(ra, u.Quantity) and isinstance(dec, u.Quantity)):
            raise TypeError(
                f"ra and dec for time system {system.name!r} must be angle Quantities "
                "(e.g. ra * u.deg) or a SkyCoord, not plain numbers"
            )
        # ICRS angles: astropy's representation straight from them (with its
        # angle checks: Latitude refuses |dec| > 90 deg), without the cost of
        # building a SkyCoord frame; the same vectors, bit for bit
        xyz = UnitSphericalRepresentation(Longitude(ra), Latitude(dec)).to_cartesian().xyz.value
    xyz = np.asarray(xyz, dtype=np.float64).reshape(3, -1)
    if xyz.shape[1] not in (1, size):
        raise ValueError(
            f"got {xyz.shape[1]} target positions for {size} times in system {system.name!r}; "
            "give one position or one per time"
        )
    return xyz


def _tt_minus_utc_days(mjd_utc):
    """TT - UTC (days) for UTC MJDs, via astropy once per distinct UTC day."""
    nodes, left = _day_nodes(mjd_utc)
    offset = _day_store("tt-utc").at(nodes)
    start, end = offset[left], offset[left + 1]
    result = start.copy()
    # Days with a leap second (offset changes by the end of the day) or in
    # the pre-1972 rubber-second era: use astropy for those values directly.
    special = (np.abs(end - start) > 0.5 / SECONDS_PER_DAY) | (
        mjd_utc < _UTC_LEAP_SECOND_ERA_MJD
    )
    if special.any():
        t_special = Time(mjd_utc[special], format="mjd", scale="utc")
        tt_special = t_special.tt
        result[special] = (tt_special.jd1 - t_special.jd1) + (tt_special.jd2 - t_special.jd2)
    return result


def _ut1_to_utc(mjd_ut1, system):
    """UTC MJD from UT1 MJD with the IERS-B table bundled with astropy."""
    table = iers.IERS_B.open()
    dut1, status = table.ut1_utc(np.full(mjd_ut1.shape, MJD_ZERO_JD), mjd_ut1, return_status=True)
    dut1 = np.asarray(u.Quantity(dut1, u.s).to_value(u.s), dtype=np.float64)
    outside = status != iers.FROM_IERS_B
    if outside.any():
        # |UT1 - UTC| < 0.9 s by the definition of UTC, so taking 0 keeps
        # these times within 0.9 s.
        dut1 = np.where(outside, 0.0, dut1)
        warnings.warn(
            f"{int(outside.sum())} time(s) of system {system.name!r} lie outside the bundled "
            "IERS-B table; UT1-UTC taken as 0 (error < 0.9 s)",
            stacklevel=4,
        )
    mjd_utc = mjd_ut1 - dut1 / SECONDS_PER_DAY
    # On a day that ends with a leap second, UTC MJD fractions are seconds
    # / 86401, so the subtraction above is off by up to 1 s; let astropy
    # (erfa.ut1utc) convert those few values exactly, with the same table.
    special = _on_leap_second_day(mjd_utc) & ~outside
    if special.any():
        with iers.earth_orientation_table.set(table):
            t = Time(mjd_ut1[special], format="mjd", scale="ut1").utc
        mjd_utc[special] = (t.jd1 - MJD_ZERO_JD) + t.jd2
    return mjd_utc


def _on_leap_second_day(mjd_utc):
    """True for UTC MJDs on a day whose TAI-UTC changes at its end."""
    nodes, left = _day_nodes(mjd_utc)
    # TT - TAI is constant, so TT - UTC changes exactly where TAI - UTC does
    offset = _day_store("tt-utc").at(nodes)
    return np.abs(offset[left + 1] - offset[left]) > 0.5 / SECONDS_PER_DAY


# Whole-day node values (barycentric Earth and Sun, TDB - TT, TT - UTC) are kept for
# the life of the process.  The targets of one sample share their nights, so
# a collection evaluates each day once instead of once per target: the
# per-call evaluation was 74 % of the ZTF light-curve API parse
# (bench/bench_headline.py, profiled with py-spy).  Only the days asked for
# are computed (sparse light curves over decades need few), all missing days
# of a call in one vectorised astropy call.
_MAX_STORED_DAYS = 400_000  # about 20 MB per table; then the store starts over


class _DayStore:
    """Values of one quantity at whole-day MJDs, computed once (thread-safe)."""

    def __init__(self, compute):
        self._compute = compute
        self._lock = threading.Lock()
        self._days = np.empty(0)
        self._values = None

    def at(self, days):
        """Stored values at the sorted, distinct whole days *days* (..., n)."""
        with self._lock:
            stored, values = self._days, self._values
        idx = np.searchsorted(stored, days)
        found = idx < stored.size
        found[found] = stored[idx[found]] == days[found]
        if not found.all():
            new_days = days[~found]
            new_values = np.asarray(self._compute(new_days))
            with self._lock:
                if self._days.size + new_days.size > _MAX_STORED_DAYS:
                    self._days, self._values = np.empty(0), None
                merged = np.concatenate([self._days, new_days])
                merged_values = (
                    new_values
                    if self._values is None
                    else np.concatenate([self._values, new_values], axis=-1)
                )
                # another thread may have stored some of the same days meanwhile
                merged, first = np.unique(merged, return_index=True)
                self._days, self._values = merged, merged_values[..., first]
                stored, values = self._days, self._values
            idx = np.searchsorted(stored, days)
        return values[..., idx]


def _tt_minus_utc_at(days):
    t = Time(days, format="mjd", scale="utc")
    tt = t.tt
    return (tt.jd1 - t.jd1) + (tt.jd2 - t.jd2)


def _tdb_minus_tt_at(days):
    t = Time(days, format="mjd", scale="tt")
    tdb = t.tdb
    return (tdb.jd1 - t.jd1) + (tdb.jd2 - t.jd2)


def _posvel_at(body, ephemeris):
    def compute(days):
        t = Time(days, format="mjd", scale="tdb")
        pos, vel = get_body_barycentric_posvel(body, t, ephemeris=ephemeris)
        # (6, n): positions in au, velocities in au/day
        return np.concatenate([pos.xyz.to_value(u.au), vel.xyz.to_value(u.au / u.day)])

    return compute


_day_stores = {}
_day_stores_lock = threading.Lock()


def _day_store(kind):
    """The store of *kind*: ``"tdb-tt"``, ``"tt-utc"`` or a body (current ephemeris).

    The ephemeris (``solar_system_ephemeris``) is part of the key, so that
    changing it never serves positions computed with another one.
    """
    time_scales = {"tdb-tt": _tdb_minus_tt_at, "tt-utc": _tt_minus_utc_at}
    key = kind if kind in time_scales else (kind, solar_system_ephemeris.get())
    with _day_stores_lock:
        store = _day_stores.get(key)
        if store is None:
            compute = time_scales[kind] if kind in time_scales else _posvel_at(*key)
            store = _day_stores[key] = _DayStore(compute)
    return store


def _day_nodes(mjd):
    """Whole-day nodes bracketing every value: (nodes, index of left node)."""
    day = np.floor(mjd)
    nodes = np.union1d(day, day + 1)
    left = np.searchsorted(nodes, day)
    return nodes, left


def _tdb_minus_tt_days(mjd_tt):
    """TDB - TT (days), linear between whole-day values (|error| < 1 ns)."""
    nodes, left = _day_nodes(mjd_tt)
    diff = _day_store("tdb-tt").at(nodes)
    return diff[left] + (diff[left + 1] - diff[left]) * (mjd_tt - nodes[left])


def _hermite(nodes, left, pos, vel, mjd):
    """Cubic Hermite interpolation of (3, n) positions with velocities per day."""
    h = nodes[left + 1] - nodes[left]  # 1 day
    s = (mjd - nodes[left]) / h
    s2, s3 = s * s, s * s * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    return (
        h00 * pos[:, left]
        + h10 * h * vel[:, left]
        + h01 * pos[:, left + 1]
        + h11 * h * vel[:, left + 1]
    )


def _body_au(body, mjd_tdb):
    """Barycentric position (3, n) in au of *body* at TDB MJDs (Hermite per day)."""
    nodes, left = _day_nodes(mjd_tdb)
    posvel = _day_store(body).at(nodes)
    return _hermite(nodes, left, posvel[:3], posvel[3:], mjd_tdb)


def _observer_geocentric_au(location, mjd_ut1):
    """Approximate GCRS position (au) of an observatory: ITRS rotated by the ERA."""
    itrs = u.Quantity(location.geocentric).to_value(u.au)
    theta = (
        2
        * np.pi
        * (_ERA_AT_J2000_TURNS + _ERA_RATE_TURNS_PER_DAY * (mjd_ut1 + MJD_ZERO_JD - _J2000_JD))
    )
    cos, sin = np.cos(theta), np.sin(theta)
    x, y, z = itrs
    return np.stack([x * cos - y * sin, x * sin + y * cos, np.full_like(theta, z)])


def _convert(system, values, ra, dec):
    array = _as_days(values, system)
    shape = array.shape
    mjd = array.ravel() + system.mjd_offset
    if mjd.size == 0:
        return np.empty(shape, dtype=np.float64)

    if system.scale == "tdb":
        mjd_tdb = mjd
    elif system.scale == "tcb":
        # TCB -> TDB is a linear relation (IAU 2006 resolution B3); astropy
        # applies it.  Split the JD for precision.
        t = Time(np.full(mjd.shape, MJD_ZERO_JD), mjd, format="jd", scale="tcb").tdb
        mjd_tdb = (t.jd1 - MJD_ZERO_JD) + t.jd2

    if system.reference == "barycentric":
        return mjd_tdb.reshape(shape)

    n = _direction(ra, dec, mjd.size, system)

    # Native scale -> UTC (for the Earth rotation angle) and TT.
    if system.scale == "utc":
        mjd_utc = mjd
        mjd_tt = mjd + _tt_minus_utc_days(mjd)
    elif system.scale == "ut1":
        mjd_utc = _ut1_to_utc(mjd, system)
        mjd_tt = mjd_utc + _tt_minus_utc_days(mjd_utc)
    else:
        mjd_tt = mjd + (TT_MINUS_TAI_S / SECONDS_PER_DAY if system.scale == "tai" else 0.0)
        # UTC only feeds the Earth rotation angle here; evaluating TT-UTC at
        # the TT value is exact except within a minute of a leap second.
        mjd_utc = mjd_tt - _tt_minus_utc_days(mjd_tt)
    mjd_tdb = mjd_tt + _tdb_minus_tt_days(mjd_tt)


    def observer_bary_au(t_tdb, t_utc):
        pos = _body_au("earth", t_tdb)
        if system.location is not None and system.reference in ("topocentric", "heliocentric"):
            pos = pos + _observer_geocentric_au(system.location, t_utc)
        return pos

    def light_days(pos_au):
        return np.einsum("ij,ij->j", pos_au, np.broadcast_to(n, pos_au.shape)) * (
            AU_LIGHT_SECONDS / SECONDS_PER_DAY
        )

    if system.reference == "heliocentric":
        # value = t_obs + (r_obs - r_sun).n / c  ->  solve for t_obs (two
        # fixed-point iterations; the change over 500 s is < 0.05 s, and
        # the second iteration brings it below 10 microseconds).
        t_obs, t_obs_utc = mjd_tdb, mjd_utc
        for _ in range(2):
            helio = observer_bary_au(t_obs, t_obs_utc) - _body_au("sun", t_obs)
            delay = light_days(helio)
            t_obs = mjd_tdb - delay
            t_obs_utc = mjd_utc - delay
        return (t_obs + light_days(observer_bary_au(t_obs, t_obs_utc))).reshape(shape)

    return (mjd_tdb + light_days(observer_bary_au(mjd_tdb, mjd_utc))).reshape(shape)
