"""Figures of multi-band light curves: one figure per target.

The layout follows the multi-wavelength flare figures of van Velzen et al.
(2021, arXiv:2111.09391): a main panel with every calibrated band as flux
density against time (MJD TDB, calendar dates on the top axis), events
(neutrinos, gamma-ray triggers) in their own strip above it, uncalibrated
count rates (TESS, Kepler, K2 in e-/s) in their own panel below it, or, when
they come in stretches too short for the shared time axis (a 27-day sector
on a 14-year axis), in one panel per stretch (a broken axis), and an
optional zoom panel on the densest band with an inverse-variance weighted
running mean.  Panels appear only when they have something to show.  With
``ax=`` one panel is drawn into the caller's Axes instead.

Every band has one fixed colour and marker (`BAND_STYLES`, `band_style`),
the same in every figure.  Colours come from the colour-blind-safe palette
of Okabe & Ito (2008, "Color Universal Design", jfly.uni-koeln.de/color)
and, for the fallback of unknown bands, Paul Tol's "muted" scheme (Tol 2021,
SRON/EPS/TN/09-002, personal.sron.nl/~pault).  Colour encodes the wavelength
range (g-like bands share a colour), the marker encodes the archive.  Dense
bands are drawn first and translucent, so that sparser bands stay visible.

Tick labels are plain decimals in one format per axis; a power of ten goes
into the axis label (`multilc._plot_axes`).  Titles and file names use the
object's ``name`` when the light curve has one.

matplotlib is imported lazily, and no backend is chosen here: figures render
headless (Agg) as well as in notebooks.  Importing this module registers the
``ds.multilc`` accessor on `xarray.Dataset`.
"""
from __future__ import annotations

import re
import textwrap
import warnings
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.time import Time
from erfa import ErfaWarning

from multilc import photometry
from multilc.lightcurve import MultiBandLightCurve, clip_mask

__all__ = ["BandStyle", "BAND_STYLES", "EventStyle", "EVENT_STYLES", "PlotError",
           "band_style", "band_label", "event_style", "running_mean", "plot", "plot_all",
           "MultiLCAccessor"]


class PlotError(ValueError):
    """A figure that cannot be drawn from the given light curve and options."""


# --------------------------------------------------------------------------- styles
# Okabe & Ito (2008) colour-universal-design palette (hex values as published
# on jfly.uni-koeln.de/color, also in Wong 2011, Nature Methods 8, 441).
_OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
    "bluish_green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
    "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
# Paul Tol's "muted" qualitative scheme (Tol 2021, SRON/EPS/TN/09-002), used
# for bands outside the table and for events.
_TOL_MUTED = {
    "indigo": "#332288", "cyan": "#88CCEE", "teal": "#44AA99", "green": "#117733",
    "olive": "#999933", "sand": "#DDCC77", "rose": "#CC6677", "wine": "#882255",
    "purple": "#AA4499",
}
_GREY = "#7A7A7A"

#: Wavelength ranges [Angstrom] -> colour, for bands without a table entry
#: (HST filters and bands registered later).  Same families as the table:
#: g-like bands green, r-like vermillion, i-like purple, z blue, y/near-IR sky
#: blue, mid-IR black.
_WAVELENGTH_COLOURS = (
    (4000.0, _TOL_MUTED["indigo"]),        # ultraviolet, U
    (5500.0, _OKABE_ITO["bluish_green"]),  # B, g, V
    (7000.0, _OKABE_ITO["vermillion"]),    # r, R
    (8300.0, _OKABE_ITO["reddish_purple"]),  # i, I
    (9300.0, _OKABE_ITO["blue"]),          # z
    (12000.0, _OKABE_ITO["sky_blue"]),     # y, Y, J
    (30000.0, _TOL_MUTED["olive"]),        # H, K
    (np.inf, _OKABE_ITO["black"]),         # mid-infrared
)
#: One marker per archive, so that "circles are ZTF" holds in every figure.
ARCHIVE_MARKERS = {"ztf": "o", "panstarrs": "s", "gaia": "D", "wise": "^", "hst": "*",
                   "tess": "o", "kepler": "s", "k2": "D"}
#: Display names of archives in legends.
ARCHIVE_NAMES = {"ztf": "ZTF", "panstarrs": "PS1", "gaia": "Gaia", "wise": "WISE",
                 "hst": "HST", "tess": "TESS", "kepler": "Kepler", "k2": "K2"}
_FALLBACK_MARKERS = ("P", "X", "h", "p", "<", ">", "8", "d")
_FALLBACK_COLOURS = tuple(_TOL_MUTED.values())


@dataclass(frozen=True)
class BandStyle:
    """How one band is drawn in every figure.

    Parameters
    ----------
    color : str
        Matplotlib colour (hex).
    marker : str
        Matplotlib marker.
    label : str
        Name in legends, e.g. ``"ZTF g"``.
    """

    color: str
    marker: str
    label: str


def _style(color, archive, band):
    return BandStyle(color, ARCHIVE_MARKERS[archive], f"{ARCHIVE_NAMES[archive]} {band}")


#: The band style table: band name -> `BandStyle`.  Fixed so that a band looks
#: the same in every figure of every target.
BAND_STYLES = {
    "ztf:g": _style(_OKABE_ITO["bluish_green"], "ztf", "g"),
    "ztf:r": _style(_OKABE_ITO["vermillion"], "ztf", "r"),
    "ztf:i": _style(_OKABE_ITO["reddish_purple"], "ztf", "i"),
    "panstarrs:g": _style(_OKABE_ITO["bluish_green"], "panstarrs", "g"),
    "panstarrs:r": _style(_OKABE_ITO["vermillion"], "panstarrs", "r"),
    "panstarrs:i": _style(_OKABE_ITO["reddish_purple"], "panstarrs", "i"),
    "panstarrs:z": _style(_OKABE_ITO["blue"], "panstarrs", "z"),
    "panstarrs:y": _style(_OKABE_ITO["sky_blue"], "panstarrs", "y"),
    "gaia:BP": _style(_OKABE_ITO["bluish_green"], "gaia", "BP"),
    "gaia:G": _style(_OKABE_ITO["orange"], "gaia", "G"),
    "gaia:RP": _style(_OKABE_ITO["reddish_purple"], "gaia", "RP"),
    "wise:W1": _style(_OKABE_ITO["black"], "wise", "W1"),
    "wise:W2": _style(_GREY, "wise", "W2"),
    "tess:TESS": BandStyle(_OKABE_ITO["blue"], "o", "TESS"),
    "kepler:Kepler": BandStyle(_OKABE_ITO["vermillion"], "s", "Kepler"),
    "k2:K2": BandStyle(_OKABE_ITO["orange"], "D", "K2"),
}


def band_label(name):
    """Legend name of a band: ``"ztf:g"`` -> ``"ZTF g"``, ``"hst:ACS_F814W"`` ->
    ``"HST ACS F814W"``; unknown archives keep their own spelling."""
    if name in BAND_STYLES:
        return BAND_STYLES[name].label
    archive, _, band = str(name).partition(":")
    return f"{ARCHIVE_NAMES.get(archive, archive)} {band.replace('_', ' ')}".strip()


def band_style(name):
    """The fixed `BandStyle` of a band.

    Bands in `BAND_STYLES` use their entry.  Others (HST filters such as
    ``hst:WFC3_F160W``, bands registered by the user) get a deterministic
    style: the colour of their wavelength range when the band is registered
    in `multilc.photometry` with a wavelength, else a colour picked by a CRC32
    hash of the name; the archive's marker, else one picked by the hash.  The
    same name therefore always gets the same style.

    Parameters
    ----------
    name : str
        Band name, ``"<archive>:<band>"``.

    Returns
    -------
    `BandStyle`
    """
    name = str(name)
    if name in BAND_STYLES:
        return BAND_STYLES[name]
    digest = zlib.crc32(name.encode())  # stable across runs, unlike hash()
    archive = name.partition(":")[0]
    marker = ARCHIVE_MARKERS.get(archive, _FALLBACK_MARKERS[digest % len(_FALLBACK_MARKERS)])
    colour = _FALLBACK_COLOURS[(digest // 7) % len(_FALLBACK_COLOURS)]
    try:
        wavelength = photometry.get_band(name).wavelength
    except photometry.UnknownBandError:
        wavelength = None
    if wavelength is not None:
        wav = wavelength.to_value(u.AA)
        colour = next(c for edge, c in _WAVELENGTH_COLOURS if wav < edge)
    return BandStyle(colour, marker, band_label(name))


@dataclass(frozen=True)
class EventStyle:
    """How events of one archive are drawn: colour, marker, legend label."""

    color: str
    marker: str
    label: str


#: Event archive -> `EventStyle`.  Colours from Tol's muted scheme, distinct
#: from the band colours they sit next to.
EVENT_STYLES = {
    "icecube": EventStyle(_TOL_MUTED["indigo"], r"$\nu$", "IceCube neutrino"),
    "heasarc.icecube": EventStyle(_TOL_MUTED["indigo"], r"$\nu$", "IceCube neutrino"),
    "heasarc.fermi_gbm": EventStyle(_TOL_MUTED["wine"], r"$\gamma$", "Fermi GBM trigger"),
    "heasarc.bepposax": EventStyle(_TOL_MUTED["teal"], r"$\gamma$", "BeppoSAX GRB"),
}


def event_style(archive):
    """The `EventStyle` of an event archive (a grey bar for unknown ones)."""
    return EVENT_STYLES.get(str(archive), EventStyle("#555555", "|", str(archive)))


# --------------------------------------------------------------------------- numerics
def running_mean(time, value, error, window):
    """Inverse-variance weighted running mean in a sliding time window.

    For each time ``t_i`` the mean is ``sum(w_j y_j) / sum(w_j)`` with
    ``w_j = 1 / sigma_j**2`` over the points with ``|t_j - t_i| <= window/2``,
    and its uncertainty ``1 / sqrt(sum(w_j))``.  Points with non-finite or
    non-positive errors are ignored.

    Parameters
    ----------
    time : array-like
        Times [d], any order.
    value, error : array-like
        Values and their 1-sigma uncertainties (same unit).
    window : `~astropy.units.Quantity`
        Full width of the window [time].

    Returns
    -------
    time, mean, mean_error : `numpy.ndarray`
        Sorted times of the used points and the running mean there.
    """
    if not isinstance(window, u.Quantity):
        raise u.UnitsError(f"window must be a time Quantity (e.g. 10 * u.day), got {window!r}")
    half = window.to_value(u.day) / 2
    t, y, e = (np.asarray(a, dtype=float) for a in (time, value, error))
    ok = np.isfinite(t) & np.isfinite(y) & np.isfinite(e) & (e > 0)
    order = np.argsort(t[ok], kind="stable")
    t, y, e = t[ok][order], y[ok][order], e[ok][order]
    w = 1.0 / e**2
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cwy = np.concatenate([[0.0], np.cumsum(w * y)])
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    sum_w = cw[hi] - cw[lo]
    return t, (cwy[hi] - cwy[lo]) / sum_w, 1.0 / np.sqrt(sum_w)


def _sigma_pair(sigma_clip):
    """(sigma_lower, sigma_upper) from the ``sigma_clip`` option, or None."""
    if sigma_clip is None:
        return None
    pair = (sigma_clip, sigma_clip) if np.ndim(sigma_clip) == 0 else tuple(sigma_clip)
    try:
        ok = len(pair) == 2 and all(float(x) > 0 for x in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise PlotError("sigma_clip must be a positive number of standard deviations or a "
                        f"pair (lower, upper) of them, got {sigma_clip!r}")
    return float(pair[0]), float(pair[1])


# --------------------------------------------------------------------------- data prep
@dataclass
class _Band:
    """One band of one target, ready to draw (display units)."""

    name: str
    style: BandStyle
    time: np.ndarray
    y: np.ndarray
    yerr: np.ndarray
    limit_time: np.ndarray
    limit_y: np.ndarray
    n_clipped: int
    flux: np.ndarray      # detections in storage unit (mJy or e-/s), for the zoom
    flux_err: np.ndarray
    wavelength: float = np.nan  # [Angstrom], for the drawing order


def _time_bounds(time_range):
    if time_range is None:
        return None
    if not isinstance(time_range, Time) or time_range.shape != (2,):
        raise PlotError("time_range must be an astropy Time of length 2, e.g. "
                        "Time(['2018-01-01', '2024-01-01'], scale='utc'); "
                        f"got {time_range!r}")
    lo, hi = time_range.tdb.mjd
    if not lo < hi:
        raise PlotError(f"time_range must be increasing, got MJD {lo} to {hi}")
    return float(lo), float(hi)


def _prepare_bands(lc, calibrated, *, flux_unit, magnitudes, sigma_clip, limit_sigma):
    """Per-band arrays of one target's calibrated or uncalibrated bands."""
    ds = lc.ds
    names = lc.bands
    if not names:
        return []
    codes = ds["obs_band"].values
    time = ds["time"].values
    if calibrated:
        flux, err = (q.to_value(u.mJy) for q in lc.get_flux(u.mJy))
    else:
        flux = ds["flux_instrumental"].values
        err = ds["flux_instrumental_err"].values
    flagged = ds["upper_limit"].values if "upper_limit" in ds else np.zeros(len(time), bool)
    wavelengths = ds["wavelength"].values
    starts = np.searchsorted(codes, np.arange(len(names) + 1))  # obs sorted by band
    out = []
    for code, name in enumerate(names):
        sl = slice(starts[code], starts[code + 1])
        t, f, e, lim = time[sl], flux[sl], err[sl], flagged[sl]
        # Clipping sees what remove_outliers sees: every finite flux of the
        # band except the rows flagged as upper limits.
        clipped = (clip_mask(f, sigma_lower=sigma_clip[0], sigma_upper=sigma_clip[1],
                             ignore=lim) if sigma_clip is not None
                   else np.zeros(len(f), bool))
        if calibrated:
            # Non-positive fluxes cannot be detections on a flux-density or
            # magnitude scale: they are drawn as upper limits.
            lim = lim | (f <= 0)
        det = ~lim & np.isfinite(f) & ~clipped
        lim = lim & ~clipped
        # The data model does not define what the flux of an upper_limit row
        # holds.  We take a positive flux as the limit itself, and for a
        # non-positive (forced-photometry) flux draw max(flux, 0) +
        # limit_sigma * flux_err.
        lim_value = np.where(f > 0, f, np.fmax(f, 0) + limit_sigma * e)
        lim = lim & np.isfinite(lim_value) & (lim_value > 0)
        td, fd, ed = t[det], f[det], e[det]
        tl, fl = t[lim], lim_value[lim]
        if calibrated and magnitudes:
            with np.errstate(divide="ignore", invalid="ignore"):
                # m_AB = -2.5 log10(F / 3631 Jy) (Oke & Gunn 1983), via astropy
                y = (fd * u.mJy).to_value(u.ABmag)
                yerr = 2.5 / np.log(10) * ed / fd
                ylim = (fl * u.mJy).to_value(u.ABmag)
        elif calibrated:
            factor = _unit_factor(flux_unit, wavelengths[code], name)
            y, yerr, ylim = fd * factor, ed * factor, fl * factor
        else:
            y, yerr, ylim = fd, ed, fl
        out.append(_Band(name, band_style(name), td, y, yerr, tl, ylim,
                         int(clipped.sum()), fd, ed, float(wavelengths[code])))
    out = [b for b in out if len(b.time) or len(b.limit_time)]
    # Legend order: archives in a fixed order, then by wavelength.
    rank = {name: i for i, name in enumerate(ARCHIVE_NAMES)}
    order = {name: (rank.get(name.partition(":")[0], len(rank)), name.partition(":")[0],
                    np.nan_to_num(wav, nan=np.inf), name)
             for name, wav in zip(names, wavelengths)}
    return sorted(out, key=lambda b: order[b.name])


@lru_cache(maxsize=256)
def _unit_factor(unit, wavelength_aa, band):
    """Display-unit value of 1 mJy in *band* (linear for any flux density)."""
    try:
        return (1 * u.mJy).to_value(unit, u.spectral_density(wavelength_aa * u.AA))
    except u.UnitConversionError as exc:
        raise PlotError(f"flux_unit {unit} is not a flux density (band {band}); use a "
                        "unit such as mJy, uJy, erg/s/cm2/Hz or erg/s/cm2/Angstrom, "
                        "or magnitudes=True") from exc


def _object_names(lc):
    """objectid -> display name, for objects with a non-empty ``name``.

    The ``name`` variable on the object dimension is optional (files written
    before names existed have none), and so is each value in it.
    """
    ds = lc.ds
    if "name" not in ds or "objectid" not in ds:
        return {}
    out = {}
    for oid, name in zip(ds["objectid"].values.tolist(), ds["name"].values.tolist()):
        if name is None or (isinstance(name, float) and not np.isfinite(name)):
            continue
        text = str(name).strip()
        if text:
            out[int(oid)] = text
    return out


def _describe(oid, name):
    """How an object is named in messages: ``objectid 4 (Mrk 590)``."""
    return f"objectid {oid}" + (f" ({name})" if name else "")


def _resolve_target(lc, objectid):
    ids = lc.objectids
    if objectid is None:
        if len(ids) == 1:
            return int(ids[0])
        if not len(ids):
            raise PlotError("the light curve is empty: no target to plot")
        shown = ", ".join(str(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise PlotError(f"the light curve holds {len(ids)} targets (objectids {shown}); "
                        "pass objectid= to plot one, or use plot_all() for every target")
    if isinstance(objectid, str):
        matches = [oid for oid, name in _object_names(lc).items() if name == objectid]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise PlotError(f"the name {objectid!r} belongs to objectids {matches}; pass "
                            "one objectid")
        if objectid.strip().lstrip("+-").isdigit():  # "4" from a command line
            return _resolve_target(lc, int(objectid))
        raise PlotError(f"no object is named {objectid!r} in this light curve; pass an "
                        "objectid or one of its names")
    if int(objectid) not in set(ids.tolist()):
        shown = ", ".join(str(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise PlotError(f"unknown objectid {objectid}: this light curve holds objectids "
                        f"{shown}")
    return int(objectid)


def _target_data(lc, objectid, bands, time_range, *, flux_unit, magnitudes, sigma_clip,
                 limit_sigma):
    """Everything the figure of one target needs."""
    oid = _resolve_target(lc, objectid)
    one = lc.select(objectid=oid) if len(lc.objectids) > 1 else lc
    bounds = _time_bounds(time_range)
    events = one.events
    phot = one
    if bands is not None:
        wanted = [bands] if isinstance(bands, str) else list(bands)
        unknown = [b for b in wanted if b not in lc.bands]
        if unknown:
            raise PlotError(f"bands {unknown} are not in this light curve; it has "
                            f"{lc.bands}")
        present = [b for b in wanted if b in one.bands]
        phot = one.select(band=present) if present else None
    if bounds is not None:
        tr = Time(list(bounds), format="mjd", scale="tdb")
        if phot is not None:
            phot = phot.select(time_range=tr)
        et = events["time"].mjd
        events = events[(et >= bounds[0]) & (et <= bounds[1])]
    meta = one.objects[0]
    label = meta["label"]
    data = {"objectid": oid, "name": _object_names(one).get(oid, ""),
            "label": "" if label is None or label is np.ma.masked else str(label),
            "ra": meta["ra"],
            "dec": meta["dec"], "events": events, "bounds": bounds,
            "calibrated": [], "instrumental": []}
    if phot is not None and len(phot):
        info = phot.band_info
        instr = [u.Unit(x).physical_type != u.mJy.physical_type for x in info["flux_unit"]]
        kw = dict(flux_unit=u.Unit(flux_unit), magnitudes=magnitudes, sigma_clip=sigma_clip,
                  limit_sigma=limit_sigma)
        if not all(instr):
            data["calibrated"] = _prepare_bands(phot.select(calibrated=True), True, **kw)
        if any(instr):
            data["instrumental"] = _prepare_bands(phot.select(calibrated=False), False, **kw)
    if not (data["calibrated"] or data["instrumental"] or len(events)):
        where = "" if bounds is None else f" between MJD {bounds[0]:.2f} and {bounds[1]:.2f}"
        which = "" if bands is None else f" in bands {bands}"
        raise PlotError(f"{_describe(oid, data['name'])} has no measurements or "
                        f"events{which}{where}")
    return data


# --------------------------------------------------------------------------- drawing
def _arrow_marker():
    """Down arrow with a bar at the top: the limit sits on the bar."""
    from matplotlib.path import Path as MplPath

    verts = [(-0.35, 0.0), (0.35, 0.0),            # bar at the limit value
             (0.0, 0.0), (0.0, -0.72),             # shaft
             (-0.28, -0.62), (0.28, -0.62), (0.0, -1.0), (0.0, 0.0)]  # head
    codes = [MplPath.MOVETO, MplPath.LINETO, MplPath.MOVETO, MplPath.LINETO,
             MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.CLOSEPOLY]
    return MplPath(verts, codes)


#: Sizes per figure width: fonts [pt], markers [pt], panel heights [inch],
#: count-rate segment panels per row, most ticks on a time axis.
_SIZES = {"narrow": dict(font=7.0, marker=3.0, arrow=11.0, main=1.9, events=0.32,
                         instrumental=0.95, segments=1.25, zoom=1.3, columns=2,
                         time_ticks=4, date_ticks=4),
          "wide": dict(font=8.5, marker=3.5, arrow=13.0, main=2.6, events=0.38,
                       instrumental=1.2, segments=1.5, zoom=1.5, columns=4,
                       time_ticks=8, date_ticks=9)}
_RASTERIZE_ABOVE = 3000  # points per artist above which PDF output is rasterised
#: Bands with more points than this in a panel are drawn translucent (opacity
#: falling as 1/sqrt(n)) and below the sparser bands, so that a dense band
#: does not hide the others.
_DENSE = 100
_OPAQUE = 0.85
#: Count rates in a stretch shorter than this fraction of the time axis (a
#: 27-day TESS sector on a 14-year axis is 0.5 %) get panels of their own.
_SHORT_SEGMENT = 0.05


@lru_cache(maxsize=1)
def _year_nodes():
    """MJD (TDB) of 1 January 0h UTC of the years 1800-2200, from astropy."""
    years = np.arange(1800, 2201)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # "dubious year" (no leap-second table)
        mjd = Time([f"{y}-01-01T00:00:00" for y in years], scale="utc").tdb.mjd
    return years, mjd


@lru_cache(maxsize=4)
def _date_nodes(epoch):
    """(MJD TDB, matplotlib date number) of 1 January 0h UTC of 1800-2200.

    Date numbers count UTC days since matplotlib's *epoch* without leap
    seconds, as `datetime` does.  Within a calendar year both scales are
    uniform to better than a second (one leap second at most, and TDB-TT
    below 2 ms), so linear interpolation between these nodes converts MJD
    (TDB) to calendar dates (UTC) to within a second; converting every tick
    through `~astropy.time.Time` would cost ~1 ms per call, and the top axis
    is transformed thousands of times per figure.
    """
    from datetime import datetime

    from matplotlib.dates import date2num

    years, mjd = _year_nodes()
    return mjd, np.asarray(date2num([datetime(int(y), 1, 1) for y in years]), dtype=float)


def _interp_nodes(x, xs, ys):
    x = np.asarray(x, dtype=float)
    out = np.interp(x, xs, ys)
    # Beyond 1800-2200: days are days on both scales.
    out = np.where(x < xs[0], ys[0] + (x - xs[0]), out)
    return np.where(x > xs[-1], ys[-1] + (x - xs[-1]), out)


def _mjd_to_datenum(mjd):
    from matplotlib.dates import get_epoch

    nodes, nums = _date_nodes(get_epoch())
    return _interp_nodes(mjd, nodes, nums)


def _datenum_to_mjd(num):
    from matplotlib.dates import get_epoch

    nodes, nums = _date_nodes(get_epoch())
    return _interp_nodes(num, nums, nodes)


def _add_date_axis(ax, sizes):
    """Calendar dates (UTC) on the top axis: years, or months or days for short spans."""
    from matplotlib.dates import AutoDateLocator, YearLocator

    from multilc._plot_axes import CalendarFormatter

    sec = ax.secondary_xaxis("top", functions=(_mjd_to_datenum, _datenum_to_mjd))
    sec.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=sizes["date_ticks"]))
    sec.xaxis.set_major_formatter(CalendarFormatter())
    lo, hi = ax.get_xlim()
    if hi - lo >= 4 * 365.25:  # unlabelled ticks at every new year
        sec.xaxis.set_minor_locator(YearLocator(1))
    sec.tick_params(labelsize=sizes["font"], direction="in", which="both")
    sec.set_label("calendar date")
    return sec


def _time_axis(ax, sizes, nbins=None):
    """MJD ticks as plain numbers: no "+5.8e4" offset, whatever the span."""
    from matplotlib.ticker import MaxNLocator

    from multilc._plot_axes import PlainFormatter

    ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins or sizes["time_ticks"],
                                           steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(PlainFormatter())


def _band_order(bands):
    """Drawing order: densest band first (lowest), sparsest last (on top).

    Bands within a factor 2 in number of points count as equally dense; among
    those the longer wavelength goes first, so that ZTF g stays visible on
    top of a ZTF r band sampled as densely.
    """
    return sorted(bands, key=lambda b: (-int(np.log2(max(len(b.time), 1))),
                                        -np.nan_to_num(b.wavelength, nan=0.0), b.name))


def _draw_bands(ax, bands, sizes, arrow):
    """One errorbar container per band; limits as down arrows in the band colour.

    Each band is a marker line plus one line holding all its error bars as
    NaN-separated segments, grouped in an `~matplotlib.container.ErrorbarContainer`
    (``ax.containers``, so that ``ax.legend()`` lists the bands).  One path
    per band instead of one per error bar (what ``Axes.errorbar`` makes)
    keeps dense bands fast to draw and PDFs small.  Dense bands are drawn
    first, translucent and a little smaller, so that sparser bands stay
    visible on top of them.
    """
    from matplotlib.container import ErrorbarContainer

    for rank, b in enumerate(_band_order(bands)):
        st = b.style
        n = len(b.time)
        alpha = _OPAQUE if n <= _DENSE else max(0.3, _OPAQUE * np.sqrt(_DENSE / n))
        ms = sizes["marker"] * (1.0 if n <= _DENSE else 0.8)
        z = 3 + 0.01 * rank
        xs = np.repeat(b.time, 3)
        ys = np.column_stack([b.y - b.yerr, b.y + b.yerr, np.full(n, np.nan)]).ravel()
        (bars,) = ax.plot(xs, ys, color=st.color, lw=0.6 if n <= _DENSE else 0.45,
                          alpha=0.65 * alpha, zorder=z - 0.005,
                          label=f"_{b.name} error bars")
        (points,) = ax.plot(b.time, b.y, ls="none", marker=st.marker, color=st.color,
                            ms=ms, mew=0.4, alpha=alpha, zorder=z, label=f"_{b.name}",
                            gid=b.name)
        container = ErrorbarContainer((points, (), (bars,)), has_xerr=False, has_yerr=True,
                                      label=_legend_label(b))
        ax.add_container(container)
        if n > _RASTERIZE_ABOVE:
            points.set_rasterized(True)
            bars.set_rasterized(True)
        if len(b.limit_time):
            ax.plot(b.limit_time, b.limit_y, ls="none", marker=arrow, ms=sizes["arrow"],
                    mew=0.8, color=st.color, alpha=0.8, zorder=2 + 0.01 * rank,
                    label=f"_{b.name} upper limits", gid=f"{b.name} upper limits")


def _legend_label(band):
    return band.style.label + (f" ({band.n_clipped} clipped)" if band.n_clipped else "")


def _legend_entries(bands, sizes, arrow):
    """(handle, label) per band, opaque whatever the band's drawing opacity."""
    from matplotlib.lines import Line2D

    entries = [(Line2D([], [], ls="none", marker=b.style.marker, color=b.style.color,
                       ms=sizes["marker"], mew=0.4), _legend_label(b)) for b in bands]
    if any(len(b.limit_time) for b in bands):
        entries.append((Line2D([], [], ls="none", marker=arrow, ms=sizes["arrow"], mew=0.8,
                               color="#444444"), "upper limit"))
    return entries


def _event_label(energy_gev):
    if not np.isfinite(energy_gev) or energy_gev <= 0:
        return None
    q = energy_gev * u.GeV
    for unit in (u.PeV, u.TeV, u.GeV):
        if q >= 1 * unit or unit is u.GeV:
            return f"{q.to_value(unit):.3g} {unit}"


def _draw_events(ax, events, fontsize):
    """Events as vertical lines with a glyph per archive and energy labels."""
    from matplotlib.lines import Line2D

    handles = []
    times = events["time"].mjd
    archives = np.asarray(events["archive"]).astype(str)
    energies = events["energy"].to_value(u.GeV)
    trans = ax.get_xaxis_transform()
    for arch in sorted(set(archives)):
        st = event_style(arch)
        sel = archives == arch
        coll = ax.vlines(times[sel], 0.0, 0.5, transform=trans, color=st.color, lw=1.0,
                         label=st.label)
        coll.set_gid(f"events {arch}")
        ax.plot(times[sel], np.full(sel.sum(), 0.72), ls="none", marker=st.marker,
                ms=fontsize, color=st.color, transform=trans, clip_on=False)
        for t, e in zip(times[sel], energies[sel]):
            text = _event_label(e)
            if text:
                ax.annotate(text, (t, 0.22), xycoords=trans, xytext=(2.5, 0),
                            textcoords="offset points", va="center", ha="left",
                            fontsize=fontsize - 1, color=st.color)
        handles.append((Line2D([], [], color=st.color, marker=st.marker, ls="none",
                               ms=fontsize), st.label))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("events", fontsize=fontsize, rotation=0, ha="right", va="center")
    for side in ("left", "right"):
        ax.spines[side].set_visible(False)
    return handles


def _event_guides(ax, events, xlim=None):
    """Faint vertical lines carrying the events into the data panels."""
    times = events["time"].mjd
    archives = np.asarray(events["archive"]).astype(str)
    if xlim is not None:
        keep = (times >= xlim[0]) & (times <= xlim[1])
        times, archives = times[keep], archives[keep]
    for t, arch in zip(times, archives):
        ax.axvline(t, color=event_style(arch).color, lw=0.6, ls=":", alpha=0.7, zorder=0)


def _axis_label(kind, unit, exponent=0):
    """``Flux density [10^-15 erg s^-1 cm^-2 A^-1]``: the scale sits in the label."""
    tex = u.Unit(unit).to_string("latex_inline").strip("$")
    scale = rf"10^{{{exponent}}}\," if exponent else ""
    return f"{kind} [${scale}{tex}$]"


def _drawn_values(bands):
    return np.concatenate([np.concatenate([b.y, b.limit_y]) for b in bands] or [[]])


def _finish_flux_axis(ax, bands, flux_unit, magnitudes, log_flux, fontsize):
    """Label and ticks of a flux-density (or magnitude) axis, in one plain format."""
    from matplotlib.ticker import LogLocator, NullFormatter

    from multilc._plot_axes import LogTicks, PlainFormatter, scale_exponent

    if magnitudes:
        ax.set_ylabel("AB magnitude [mag]", fontsize=fontsize)
        ax.yaxis.set_major_formatter(PlainFormatter())
        ax.yaxis.minorticks_on()
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
        return
    exponent = scale_exponent(_drawn_values(bands))
    ax.set_ylabel(_axis_label("Flux density", flux_unit, exponent), fontsize=fontsize)
    if log_flux:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogTicks())
        ax.yaxis.set_major_formatter(PlainFormatter(10.0**exponent, log=True))
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=99))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.yaxis.set_major_formatter(PlainFormatter(10.0**exponent))
        ax.yaxis.minorticks_on()


def _finish_count_axis(ax, bands, fontsize, label=True):
    from multilc._plot_axes import PlainFormatter, scale_exponent

    exponent = scale_exponent(_drawn_values(bands))
    if label:
        ax.set_ylabel(_axis_label("Count rate", "electron / s", exponent), fontsize=fontsize)
    ax.yaxis.set_major_formatter(PlainFormatter(10.0**exponent))
    ax.yaxis.minorticks_on()


def _xlim(data, panels_bands):
    if data["bounds"] is not None:
        return data["bounds"]
    ts = [b.time for b in panels_bands] + [b.limit_time for b in panels_bands]
    ts.append(data["events"]["time"].mjd)
    t = np.concatenate([np.asarray(x, float) for x in ts])
    lo, hi = float(np.min(t)), float(np.max(t))
    pad = max(0.03 * (hi - lo), 5.0)
    return lo - pad, hi + pad


def _heading(data):
    """The object's name, else ``objectid N``."""
    return data["name"] or f"objectid {data['objectid']}"


def _short_title(data):
    """Name (or objectid) and label, for a single panel."""
    label = data["label"] if data["label"] and data["label"] != data["name"] else ""
    return _heading(data) + (f"  |  {label}" if label else "")


def _title(data, n_clipped, sigma_clip, width):
    parts = [_heading(data)]
    if data["label"] and data["label"] != data["name"]:
        parts.append(data["label"])
    ra, dec = data["ra"], data["dec"]
    if np.isfinite(ra.value) and np.isfinite(dec.value):
        parts.append(f"RA {ra.to_value(u.deg):.5f}°, Dec {dec.to_value(u.deg):+.5f}°")
    budget = int(width * 14)  # characters per line at the title font size
    lines = [""]
    for part in parts:  # break between parts, never inside a coordinate
        joined = f"{lines[-1]}  |  {part}" if lines[-1] else part
        if len(joined) <= budget or not lines[-1]:
            lines[-1] = joined
        else:
            lines.append(part)
    lines = [wrapped for line in lines for wrapped in textwrap.wrap(line, budget)]
    if sigma_clip is not None and n_clipped:  # nothing to say when nothing was clipped
        lo, hi = sigma_clip
        limits = f"{lo:g}" if lo == hi else f"-{lo:g}/+{hi:g}"
        lines.append(f"{n_clipped} outlier{'s' if n_clipped != 1 else ''} clipped "
                     f"({limits} sigma, see legend)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- count-rate segments
def _segments(times, gap, most):
    """(start, end) of the stretches of *times* with no gap longer than *gap* [d].

    When there are more than *most* stretches, the two closest neighbours
    are merged until *most* remain.
    """
    t = np.unique(np.asarray(times, dtype=float))
    t = t[np.isfinite(t)]
    if not t.size:
        return []
    cut = np.flatnonzero(np.diff(t) > gap)
    starts, ends = np.r_[t[0], t[cut + 1]], np.r_[t[cut], t[-1]]
    while len(starts) > most:
        k = int(np.argmin(starts[1:] - ends[:-1]))
        starts, ends = np.delete(starts, k + 1), np.delete(ends, k)
    return [(float(a), float(b)) for a, b in zip(starts, ends)]


def _count_rate_segments(ins, xlim, sizes):
    """Stretches of count rates that need panels of their own, or [] for one panel.

    Count rates (TESS sectors, K2 campaigns) are short, densely sampled
    stretches: on a time axis of many years a 27-day sector is a vertical
    stripe.  When any stretch covers less than `_SHORT_SEGMENT` of the axis,
    each stretch gets a panel with its own time range (a broken axis);
    stretches are split at gaps longer than 10 days or 1 % of the axis, and
    at most two rows of panels are drawn.
    """
    span = xlim[1] - xlim[0]
    times = np.concatenate([np.concatenate([b.time, b.limit_time]) for b in ins])
    segments = _segments(times, max(10.0, 0.01 * span), 2 * sizes["columns"])
    if any(end - start < _SHORT_SEGMENT * span for start, end in segments):
        return segments
    return []


def _within(band, lo, hi):
    """The part of *band* between MJD *lo* and *hi*."""
    det = (band.time >= lo) & (band.time <= hi)
    lim = (band.limit_time >= lo) & (band.limit_time <= hi)
    return replace(band, time=band.time[det], y=band.y[det], yerr=band.yerr[det],
                   flux=band.flux[det], flux_err=band.flux_err[det],
                   limit_time=band.limit_time[lim], limit_y=band.limit_y[lim])


def _draw_segments(fig, spec, ins, segments, events, sizes, arrow):
    """Count rates as a broken time axis: one panel per stretch, in rows."""
    fs = sizes["font"]
    n = len(segments)
    columns = min(n, sizes["columns"])
    rows = -(-n // columns)
    grid = spec.subgridspec(rows, columns)
    starts = Time([s for s, _ in segments], format="mjd", scale="tdb").utc.iso
    axes = []
    for i, (lo, hi) in enumerate(segments):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        ax.set_label("instrumental" if n == 1 else f"instrumental {i + 1}")
        parts = [b for b in (_within(b, lo, hi) for b in ins)
                 if len(b.time) or len(b.limit_time)]
        _draw_bands(ax, parts, sizes, arrow)
        pad = max(0.03 * (hi - lo), 0.3)
        ax.set_xlim(lo - pad, hi + pad)
        _event_guides(ax, events, ax.get_xlim())
        _finish_count_axis(ax, ins, fs, label=i % columns == 0)
        _time_axis(ax, sizes, nbins=3 if columns > 2 or sizes["columns"] == 2 else 5)
        ax.tick_params(labelsize=fs, direction="in", which="both", right=True)
        ax.set_xlabel("MJD (TDB)", fontsize=fs)
        names = " + ".join(dict.fromkeys(b.style.label for b in parts))
        ax.set_title(f"{names}  {starts[i][:10]}, {hi - lo:.3g} d", fontsize=fs - 0.5,
                     loc="left", pad=2)
        axes.append(ax)
    return axes


def _mark_segments(ax, ins, segments):
    """A short bar at the foot of an overview panel where each count-rate stretch lies."""
    trans = ax.get_xaxis_transform()
    for lo, hi in segments:
        inside = [b for b in ins if np.any((b.time >= lo) & (b.time <= hi))]
        colour = inside[0].style.color if inside else _GREY
        # A projecting cap keeps a 27-day bar visible on a 14-year axis.
        (bar,) = ax.plot([lo, hi], [0.012, 0.012], transform=trans, color=colour, lw=4,
                         solid_capstyle="projecting", alpha=0.8, zorder=1,
                         label="_count-rate segment")
        bar.set_gid("count-rate segment")


# --------------------------------------------------------------------------- zoom
def _default_window(time):
    if len(time) < 2:
        return 10 * u.day
    step = float(np.median(np.diff(np.sort(time))))
    return max(1.0, round(7 * step)) * u.day


def _draw_zoom(ax, band, data, *, zoom_range, window, magnitudes, flux_unit, sizes,
               wavelength_aa, width):
    """The zoom panel: one band, its points and its running mean."""
    st = band.style
    t, y, yerr = band.time, band.y, band.yerr
    if zoom_range is not None:
        lo, hi = _time_bounds(zoom_range)
    else:
        lo, hi = float(t.min()), float(t.max())
    keep = (t >= lo) & (t <= hi)
    if not keep.any():
        raise PlotError(f"{_describe(data['objectid'], data['name'])}: band {band.name} "
                        f"has no points in the zoom range MJD {lo:.2f}-{hi:.2f}")
    window = _default_window(t[keep]) if window is None else window
    ax.errorbar(t[keep], y[keep], yerr=yerr[keep], fmt=st.marker, color=st.color,
                ms=sizes["marker"], mew=0.4, elinewidth=0.5, capsize=0, alpha=0.45, zorder=2)
    # The mean is taken in flux (inverse-variance weights of flux errors) and
    # converted to the axis unit afterwards.
    tm, mean, mean_err = running_mean(band.time[keep], band.flux[keep],
                                      band.flux_err[keep], window)
    if magnitudes:
        with np.errstate(divide="ignore", invalid="ignore"):
            centre = (mean * u.mJy).to_value(u.ABmag)
            upper = (np.clip(mean - mean_err, 1e-30, None) * u.mJy).to_value(u.ABmag)
            lower = ((mean + mean_err) * u.mJy).to_value(u.ABmag)
    else:
        factor = (_unit_factor(flux_unit, wavelength_aa, band.name)
                  if wavelength_aa is not None else 1.0)
        centre, lower, upper = mean * factor, (mean - mean_err) * factor, \
            (mean + mean_err) * factor
    # Break the curve where the data have gaps longer than the window.
    gap = np.flatnonzero(np.diff(tm) > window.to_value(u.day)) + 1
    tm, centre, lower, upper = (np.insert(np.asarray(a, float), gap, np.nan)
                                for a in (tm, centre, lower, upper))
    ax.fill_between(tm, lower, upper, color=st.color, alpha=0.3, lw=0, zorder=3)
    (line,) = ax.plot(tm, centre, color="black", lw=1.0, zorder=4)
    line.set_gid("running mean")
    win = window.to_value(u.day)
    title = f"{st.label}: inverse-variance weighted running mean, {win:g} d window"
    # Wrapped to the figure width: a one-column figure must not clip it.
    ax.set_title("\n".join(textwrap.wrap(title, int(width * 13))), fontsize=sizes["font"],
                 loc="left", pad=3)
    ax.set_xlim(lo - 0.02 * (hi - lo) - 0.5, hi + 0.02 * (hi - lo) + 0.5)
    _time_axis(ax, sizes)
    return window


# --------------------------------------------------------------------------- one figure
def plot(lc, objectid=None, *, bands=None, time_range=None, flux_unit="mJy",
         magnitudes=False, log_flux=False, sigma_clip=None, zoom=None, zoom_range=None,
         running_mean_window=None, limit_sigma=3.0, events=True, width=7.0,
         figsize=None, fig=None, ax=None):
    """Draw the light curve of one target.

    Without *ax*: a figure of stacked panels (events, flux densities, count
    rates, optional zoom).  With *ax*: one panel in that Axes, returned, as
    matplotlib's own plotting functions do.

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
        Light curve of one or more targets.
    objectid : int or str, optional
        Target to draw, by objectid or by name (when the light curve has
        names); required when *lc* holds several targets.
    bands : str or sequence of str, optional
        Bands to draw (``"ztf:g"``); default all.  Events are kept.
    time_range : `~astropy.time.Time` of length 2, optional
        Time interval to draw (any scale; the axis is MJD TDB).
    flux_unit : str or `~astropy.units.Unit`, optional
        Unit of the flux-density axis (default mJy).  Per-wavelength units
        (erg/s/cm2/Angstrom) convert through each band's wavelength.  A power
        of ten the numbers need goes into the axis label
        (``[10^-15 erg s^-1 cm^-2 A^-1]``), not above the axis.
    magnitudes : bool, optional
        Draw AB magnitudes (inverted axis) instead of flux densities.
    log_flux : bool, optional
        Logarithmic flux axis (ignored with *magnitudes*); ticks are plain
        decimals (0.2, 0.5, 1, 2).
    sigma_clip : float or (float, float), optional
        Drop outliers per band by iterative sigma clipping
        (`astropy.stats.sigma_clip`, median centre, standard deviation, at
        most 5 iterations; the semantics of
        ``MultiBandLightCurve.remove_outliers``): points further than this
        many standard deviations from the band's median, or a pair (lower,
        upper) of limits below and above it, over the points in the drawn
        time range.  Upper limits neither count nor are clipped.
        Off by default; the number dropped is shown in the title and legend
        when it is not zero.
    zoom : None, "auto" or str, optional
        Add a zoom panel on one band: ``"auto"`` takes the calibrated band
        with most detections, or name a band.
    zoom_range : `~astropy.time.Time` of length 2, optional
        Time interval of the zoom panel (default: the band's whole span).
    running_mean_window : `~astropy.units.Quantity`, optional
        Full width of the running-mean window [time]; default seven times the
        median interval between the band's points (at least 1 d).
    limit_sigma : float, optional
        Upper limits of non-positive fluxes are drawn at
        ``max(flux, 0) + limit_sigma * flux_err`` (default 3).
    events : bool, optional
        Draw events (neutrinos, gamma-ray triggers).  Default True.
    width : float, optional
        Figure width [inch]; 3.5 gives a one-column figure with smaller
        fonts, 7 (default) a two-column one.  Height follows the panels.
    figsize : (float, float), optional
        Overrides *width* and the computed height [inch].
    fig : `matplotlib.figure.Figure`, optional
        An empty figure to draw into (default: a new pyplot figure).
    ax : `matplotlib.axes.Axes`, optional
        Draw one panel into this Axes: the calibrated bands (flux densities),
        or the count rates when the target has nothing else, with events as
        dotted vertical lines and a legend.  Count rates next to calibrated
        bands are left out with a warning (they have no flux scale).

    Returns
    -------
    `matplotlib.figure.Figure` or `matplotlib.axes.Axes`
        The figure; with *ax*, that Axes.

    Raises
    ------
    PlotError
        Several targets and no *objectid*, an unknown objectid, name or band,
        or nothing to draw in the chosen bands and time range.
    """
    if not isinstance(lc, MultiBandLightCurve):
        lc = MultiBandLightCurve(lc)
    clip = _sigma_pair(sigma_clip)
    data = _target_data(lc, objectid, bands, time_range, flux_unit=flux_unit,
                        magnitudes=magnitudes, sigma_clip=clip, limit_sigma=limit_sigma)
    if not events:
        data["events"] = data["events"][:0]
    width = figsize[0] if figsize else (ax.figure.get_figwidth() if ax is not None else width)
    sizes = dict(_SIZES["narrow" if width < 5 else "wide"])
    if ax is not None:
        return _plot_into(ax, data, sizes, flux_unit, magnitudes, log_flux)
    return _plot_figure(lc, data, sizes, fig=fig, figsize=figsize, width=width, zoom=zoom,
                        zoom_range=zoom_range, window=running_mean_window,
                        flux_unit=flux_unit, magnitudes=magnitudes, log_flux=log_flux,
                        clip=clip)


def _plot_into(ax, data, sizes, flux_unit, magnitudes, log_flux):
    """`plot` with ``ax=``: one panel into the given Axes, which is returned."""
    cal, ins, ev = data["calibrated"], data["instrumental"], data["events"]
    fs = sizes["font"]
    arrow = _arrow_marker()
    if cal and ins:
        warnings.warn("plot(ax=...) draws one panel, the calibrated bands; uncalibrated "
                      f"bands {[b.name for b in ins]} (e-/s) are left out; call plot() "
                      "without ax= for every panel", stacklevel=3)
    drawn = cal or ins
    entries = []
    if drawn:
        _draw_bands(ax, drawn, sizes, arrow)
        _event_guides(ax, ev)
        if cal:
            _finish_flux_axis(ax, cal, flux_unit, magnitudes, log_flux, fs)
        else:
            _finish_count_axis(ax, ins, fs)
        entries = _legend_entries(drawn, sizes, arrow)
        for arch in sorted(set(np.asarray(ev["archive"]).astype(str))):
            from matplotlib.lines import Line2D

            entries.append((Line2D([], [], color=event_style(arch).color, lw=0.8, ls=":"),
                            event_style(arch).label))
    else:
        entries = _draw_events(ax, ev, fs)
    ax.set_xlim(*_xlim(data, drawn))
    _time_axis(ax, sizes)
    ax.set_xlabel("MJD (TDB)", fontsize=fs)
    ax.tick_params(labelsize=fs, direction="in", which="both", right=True)
    if not ax.get_title(loc="left"):
        ax.set_title(_short_title(data), fontsize=fs, loc="left")
    if entries:
        ax.legend([h for h, _ in entries], [lab for _, lab in entries], fontsize=fs - 0.5,
                  frameon=False, handletextpad=0.3, ncols=1 + (len(entries) > 4))
    return ax


def _plot_figure(lc, data, sizes, *, fig, figsize, width, zoom, zoom_range, window,
                 flux_unit, magnitudes, log_flux, clip):
    """`plot` without ``ax=``: the figure of stacked panels."""
    cal, ins, ev = data["calibrated"], data["instrumental"], data["events"]
    fs = sizes["font"]
    arrow = _arrow_marker()
    n_clipped = sum(b.n_clipped for b in cal + ins)
    zoom_band = _pick_zoom(zoom, cal, ins, data)
    xlim = _xlim(data, cal + ins)
    segments = _count_rate_segments(ins, xlim, sizes) if ins else []
    stack = [name for name, present in (("events", len(ev) > 0), ("calibrated", bool(cal)),
                                        ("instrumental", bool(ins) and not segments))
             if present]
    heights = [sizes["main" if p == "calibrated" else p] for p in stack]
    if segments:
        heights.append(sizes["segments"] * -(-len(segments) // sizes["columns"]))
    if zoom_band is not None:
        heights.append(sizes["zoom"])
    if figsize is None:
        figsize = (width, sum(heights) + 1.1 + 0.15 * (zoom_band is not None))
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize, layout="constrained")
    else:
        fig.set_size_inches(*figsize)
        fig.set_layout_engine("constrained")
    fig.get_layout_engine().set(h_pad=0.02, w_pad=0.03, hspace=0.0)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    axes = {}
    first = None
    for i, name in enumerate(stack):
        axes[name] = fig.add_subplot(grid[i], sharex=first)
        axes[name].set_label(name)
        first = first or axes[name]
    handles = []
    if cal:
        _draw_bands(axes["calibrated"], cal, sizes, arrow)
        _finish_flux_axis(axes["calibrated"], cal, flux_unit, magnitudes, log_flux, fs)
    if "instrumental" in axes:
        _draw_bands(axes["instrumental"], ins, sizes, arrow)
        _finish_count_axis(axes["instrumental"], ins, fs)
    handles += _legend_entries(cal + ins, sizes, arrow)
    if len(ev):
        handles = _draw_events(axes["events"], ev, fs) + handles
        for name in ("calibrated", "instrumental"):
            if name in axes:
                _event_guides(axes[name], ev)
    shared = [axes[p] for p in stack]
    for a in shared:
        a.tick_params(labelsize=fs, direction="in", which="both", top=False, right=True)
    for a in shared[:-1]:
        a.tick_params(labelbottom=False)
    if shared:
        shared[0].set_xlim(*xlim)
        _time_axis(shared[-1], sizes)
        shared[-1].set_xlabel("MJD (TDB)", fontsize=fs)
        _add_date_axis(shared[0], sizes)
        if segments:
            _mark_segments(shared[-1], ins, segments)
    row = len(stack)
    if segments:
        _draw_segments(fig, grid[row], ins, segments, ev, sizes, arrow)
        row += 1
    if zoom_band is not None:
        zax = fig.add_subplot(grid[row])
        zax.set_label("zoom")
        wav = _band_wavelength(lc, zoom_band.name)
        is_cal = zoom_band in cal
        _draw_zoom(zax, zoom_band, data, zoom_range=zoom_range, window=window,
                   magnitudes=magnitudes and is_cal, flux_unit=flux_unit, sizes=sizes,
                   wavelength_aa=wav if is_cal else None, width=figsize[0])
        if is_cal:
            _finish_flux_axis(zax, [zoom_band], flux_unit, magnitudes, log_flux, fs)
        else:
            _finish_count_axis(zax, [zoom_band], fs)
        zax.tick_params(labelsize=fs, direction="in", which="both", right=True)
        zax.set_xlabel("MJD (TDB)", fontsize=fs)
        _event_guides(zax, ev, zax.get_xlim())
    fig.suptitle(_title(data, n_clipped, clip, figsize[0]), fontsize=fs, x=0.01,
                 ha="left")
    ncols = min(len(handles), 3 if figsize[0] < 5 else 5)
    fig.legend([h for h, _ in handles], [lab for _, lab in handles],
               loc="outside lower center", ncols=max(ncols, 1),
               fontsize=fs - 0.5, frameon=False, handletextpad=0.3, columnspacing=1.0,
               borderaxespad=0.2)
    return fig


def _band_wavelength(lc, name):
    wav = lc.band_info["wavelength"][np.asarray(lc.bands) == name]
    return float(wav[0].to_value(u.AA)) if len(wav) else None


def _pick_zoom(zoom, cal, ins, data):
    if zoom is None:
        return None
    who = _describe(data["objectid"], data["name"])
    if zoom == "auto":
        pool = cal or ins
        if not pool:
            return None
        return max(pool, key=lambda b: (len(b.time), b.name))
    for b in cal + ins:
        if b.name == zoom:
            if not len(b.time):
                raise PlotError(f"{who}: zoom band {zoom} has only upper limits in the "
                                "chosen range")
            return b
    raise PlotError(f"{who}: zoom band {zoom!r} has no data in the chosen bands and time "
                    f"range (plotted: {[b.name for b in cal + ins]})")


# --------------------------------------------------------------------------- many targets
def _slug(text):
    """A file-name-safe form of *text*: runs of other characters become ``_``.

    Letters, digits, ``+``, ``-`` and ``.`` are kept, so that ``PKS 2155-304``
    gives ``PKS_2155-304`` and ``J1234+5678`` stays as it is.
    """
    return re.sub(r"[^A-Za-z0-9+\-.]+", "_", str(text)).strip("_.")[:60]


def _file_stem(objectid, label, name=""):
    """File name (without suffix) of one target's figure.

    The object's name when it has one (``Mrk 590`` -> ``Mrk_590``), else
    ``<objectid>_<label>`` as before names existed.
    """
    if name and _slug(name):
        return _slug(name)
    slug = _slug(label) if label is not None else ""
    return f"{objectid}_{slug}" if slug else str(objectid)


def plot_all(lc, path, *, progress=True, dpi=150, **plot_kwargs):
    """Draw every target: one PNG each in a folder, or one multipage PDF.

    Parameters
    ----------
    lc : `~multilc.MultiBandLightCurve`
    path : str or `pathlib.Path`
        A path ending in ``.pdf`` gives one PDF with one page per target;
        anything else is a folder (created if needed) that receives one PNG
        per target, named after the object (``Mrk_590.png``), or
        ``<objectid>_<label>.png`` for objects without a name.  Two objects
        with the same name get their objectid appended to the second.
    progress : bool, optional
        Show a tqdm progress bar.
    dpi : float, optional
        Resolution of PNG files and of rasterised dense artists in the PDF.
    **plot_kwargs
        Passed to `plot` (bands, time_range, magnitudes, zoom, width, ...).

    Returns
    -------
    list of `pathlib.Path`
        The files written (one PDF, or one PNG per drawn target).  Targets
        with nothing to draw are skipped with a warning naming them.
    """
    from matplotlib.figure import Figure
    from tqdm.auto import tqdm

    if not isinstance(lc, MultiBandLightCurve):
        lc = MultiBandLightCurve(lc)
    for key in ("objectid", "fig", "ax"):
        if key in plot_kwargs:
            raise PlotError(f"plot_all draws every target; {key}= is not accepted "
                            "(use lc.select(objectid=...) to choose targets)")
    path = Path(path)
    n = len(lc.objectids)
    if not n:
        raise PlotError("the light curve is empty: no target to plot")
    labels = lc.labels
    names = _object_names(lc)
    skipped, written, stems = [], [], set()
    pdf = None
    if path.suffix.lower() == ".pdf":
        from matplotlib.backends.backend_pdf import PdfPages

        path.parent.mkdir(parents=True, exist_ok=True)
        pdf = PdfPages(path)
    else:
        path.mkdir(parents=True, exist_ok=True)
    try:
        with tqdm(total=n, desc="plotting", unit="target", disable=not progress) as bar:
            for oid, one in lc:
                # A bare Figure (no pyplot) keeps no global state between targets.
                fig = Figure()
                try:
                    plot(one, oid, fig=fig, **plot_kwargs)
                except PlotError as exc:
                    skipped.append(f"{oid}: {exc}")
                    bar.update()
                    continue
                if pdf is not None:
                    pdf.savefig(fig, dpi=dpi)
                else:
                    stem = _file_stem(oid, labels.get(oid), names.get(oid, ""))
                    if stem.lower() in stems:  # case-insensitive file systems too
                        stem = f"{stem}_{oid}"
                    stems.add(stem.lower())
                    out = path / f"{stem}.png"
                    fig.savefig(out, dpi=dpi)
                    written.append(out)
                bar.update()
    finally:
        if pdf is not None:
            n_pages = pdf.get_pagecount()
            pdf.close()
            if n_pages:
                written.append(path)
            else:
                path.unlink(missing_ok=True)
    if skipped:
        warnings.warn(f"plot_all skipped {len(skipped)} of {n} targets with nothing to "
                      "draw: " + "; ".join(skipped[:5]) + ("; ..." if len(skipped) > 5
                                                           else ""), stacklevel=2)
    return written


# --------------------------------------------------------------------------- accessor
@xr.register_dataset_accessor("multilc")
class MultiLCAccessor:
    """``ds.multilc``: multilc figures for a Dataset in the multilc layout.

    ``ds.multilc.plot(...)`` is `plot` on ``MultiBandLightCurve(ds)``;
    ``ds.multilc.plot_all(path)`` is `plot_all`.  The name does not clash
    with xarray's own ``ds.plot``.
    """

    def __init__(self, ds):
        self._ds = ds

    @property
    def lc(self):
        """The Dataset as a validated `~multilc.MultiBandLightCurve`."""
        return MultiBandLightCurve(self._ds)

    def plot(self, objectid=None, **kwargs):
        """`plot` of this Dataset (see `multilc.plotting.plot`)."""
        return plot(self.lc, objectid, **kwargs)

    def plot_all(self, path, **kwargs):
        """`plot_all` of this Dataset (see `multilc.plotting.plot_all`)."""
        return plot_all(self.lc, path, **kwargs)
