"""Tests of multilc.plotting: figures rendered headless with Agg."""
import math
import re
import subprocess
import sys
from datetime import datetime

import matplotlib
import matplotlib.figure
import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time
from matplotlib.colors import to_rgba

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import multilc.photometry  # noqa: E402
from multilc import MultiBandLightCurve, make_events  # noqa: E402
from multilc import plotting  # noqa: E402
from multilc.plotting import PlotError, band_style, plot, plot_all, running_mean  # noqa: E402

T0 = 58800.0


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lc(with_tess=True, with_events=True):
    """Target 1: ZTF g/r + WISE W1 (+ TESS, + events); target 2: ZTF g only."""
    oid, band, t, f, e, lim = [], [], [], [], [], []

    def add(o, name, times, flux, err, limit=None):
        n = len(times)
        oid.extend([o] * n)
        band.extend([name] * n)
        t.extend(times)
        f.extend(flux)
        e.extend(err)
        lim.extend(limit if limit is not None else [False] * n)

    # ztf:g of target 1: 8 detections of 1.0 mJy, a flagged limit with a
    # positive flux (0.05 mJy is the limit) and a non-positive flux
    # (-0.02 +- 0.01 mJy: drawn at 3 sigma = 0.03 mJy).
    add(1, "ztf:g", T0 + np.arange(10.0), [1.0] * 8 + [0.05, -0.02], [0.05] * 9 + [0.01],
        [False] * 8 + [True, False])
    add(1, "ztf:r", T0 + np.arange(5.0), [2.0] * 5, [0.1] * 5)
    add(1, "wise:W1", T0 + np.array([0.0, 180.0]), [3.0, 3.5], [0.2, 0.2])
    add(2, "ztf:g", T0 + np.arange(4.0), [0.5] * 4, [0.02] * 4)
    cal = MultiBandLightCurve.from_arrays(
        oid, band, Time(t, format="mjd", scale="tdb"), np.array(f) * u.mJy,
        np.array(e) * u.mJy, upper_limit=lim, label={1: "Yang 18", 2: "SDSS"},
        ra={1: 150.1 * u.deg, 2: 10.0 * u.deg}, dec={1: 2.2 * u.deg, 2: -5.0 * u.deg})
    pieces = [cal]
    if with_tess:
        tt = T0 + 20 + np.arange(50) / 48
        pieces.append(MultiBandLightCurve.from_arrays(
            np.ones(50, int), ["tess:TESS"] * 50, Time(tt, format="mjd", scale="tdb"),
            np.full(50, 60.0) * u.electron / u.s, np.full(50, 1.0) * u.electron / u.s))
    if with_events:
        ev = make_events([1, 1], ["icecube", "heasarc.fermi_gbm"],
                         Time([T0 + 30.0, T0 + 60.0], format="mjd", scale="tdb"),
                         event_id=["IC1", "bn1"], energy=[1.5e5, np.nan] * u.GeV)
        pieces.append(MultiBandLightCurve.from_events(ev))
    return MultiBandLightCurve.concat(pieces)


def _axes(fig):
    return {ax.get_label(): ax for ax in fig.axes}


def _containers(ax):
    return {c[0].get_gid(): c for c in ax.containers}


# --------------------------------------------------------------------------- panels
def test_panels_present_with_units():
    fig = plot(_lc(), objectid=1)
    axes = _axes(fig)
    assert set(axes) == {"events", "calibrated", "instrumental"}
    assert "mJy" in axes["calibrated"].get_ylabel()
    ylabel = axes["instrumental"].get_ylabel()
    assert "e^{-}" in ylabel and "s^{-1}" in ylabel and "Jy" not in ylabel
    assert "MJD (TDB)" in axes["instrumental"].get_xlabel()
    title = fig._suptitle.get_text()
    assert "objectid 1" in title and "Yang 18" in title and "150.10000" in title
    assert "+2.20000" in title


def test_panels_absent_when_empty():
    fig = plot(_lc(), objectid=2)
    assert set(_axes(fig)) == {"calibrated"}
    fig = plot(_lc(with_events=False), objectid=1)
    assert set(_axes(fig)) == {"calibrated", "instrumental"}
    fig = plot(_lc(with_tess=False), objectid=1)
    assert set(_axes(fig)) == {"events", "calibrated"}


def test_top_axis_shows_calendar_dates():
    fig = plot(_lc(), objectid=1)
    top = _axes(fig)["events"]
    assert len(top.child_axes) == 1  # the secondary (calendar) axis
    # 2020-07-01 00:00 UTC in matplotlib's date numbers, from astropy and datetime
    mjd = Time("2020-07-01T00:00:00", scale="utc").tdb.mjd
    num = mdates.date2num(datetime(2020, 7, 1))
    assert plotting._mjd_to_datenum(np.array([mjd]))[0] == pytest.approx(num, abs=2e-5)
    assert plotting._datenum_to_mjd(np.array([num]))[0] == pytest.approx(mjd, abs=2e-5)


def _labels(axis, which="major"):
    """Texts of the tick labels inside the view of an axis (after drawing)."""
    lo, hi = sorted(axis.get_view_interval())
    ticks = axis.get_major_ticks() if which == "major" else axis.get_minor_ticks()
    return [label.get_text() for t in ticks if lo <= t.get_loc() <= hi
            for label in (t.label1, t.label2) if label.get_visible() and label.get_text()]


PLAIN = re.compile(r"^[-\N{MINUS SIGN}]?\d+(\.\d+)?$")


def test_narrow_time_range_has_unique_dates_and_no_offset():
    # Events only: the axis spans 2 events +- 5 days padding.
    lc = MultiBandLightCurve.from_events(make_events(
        [3, 3], ["icecube", "heasarc.fermi_gbm"],
        Time([58020.3, 58024.1], format="mjd", scale="tdb"), energy=[1.7e5, np.nan] * u.GeV))
    fig = plot(lc)
    fig.canvas.draw()
    ax = _axes(fig)["events"]
    top = _labels(ax.child_axes[0].xaxis)
    assert len(top) >= 3 and len(set(top)) == len(top)
    # 58020.3 is 2017-09-25 (MJD 58021 = 2017-09-26): days are labelled.
    assert all(re.fullmatch(r"2017-(09|10)-\d\d", t) for t in top)
    assert ax.xaxis.get_offset_text().get_text() == ""
    assert all(PLAIN.match(t) for t in _labels(ax.xaxis))
    # A 30-day range with data: again distinct day labels, no offset.
    tr = Time([T0 - 5, T0 + 25], format="mjd", scale="tdb")
    fig = plot(_lc(), objectid=1, time_range=tr)   # the events lie outside
    fig.canvas.draw()
    ax = _axes(fig)["calibrated"]
    top = _labels(ax.child_axes[0].xaxis)
    assert len(set(top)) == len(top) >= 3
    assert ax.xaxis.get_offset_text().get_text() == ""
    # Years on a long axis.
    wide = MultiBandLightCurve.from_arrays(
        [1] * 3, ["ztf:g"] * 3, Time([55000.0, 57000.0, 60000.0], format="mjd", scale="tdb"),
        [1.0, 2.0, 1.5] * u.mJy, [0.1] * 3 * u.mJy)
    fig = plot(wide)
    fig.canvas.draw()
    top = _labels(_axes(fig)["calibrated"].child_axes[0].xaxis)
    assert all(re.fullmatch(r"20[0-2]\d", t) for t in top) and len(set(top)) == len(top)


# --------------------------------------------------------------------------- bands
def test_one_artist_per_band_with_fixed_colour():
    fig = plot(_lc(), objectid=1)
    axes = _axes(fig)
    cal = _containers(axes["calibrated"])
    assert set(cal) == {"ztf:g", "ztf:r", "wise:W1"}
    # Okabe & Ito colours written out here, not read from the module.
    expected = {"ztf:g": "#009E73", "ztf:r": "#D55E00", "wise:W1": "#000000"}
    for name, colour in expected.items():
        assert to_rgba(cal[name][0].get_color()) == to_rgba(colour)
        assert to_rgba(cal[name][2][0].get_color()) == to_rgba(colour)  # error bars
    assert set(_containers(axes["instrumental"])) == {"tess:TESS"}
    # Same band, same colour and marker for another target.
    other = _containers(_axes(plot(_lc(), objectid=2))["calibrated"])["ztf:g"][0]
    assert other.get_marker() == cal["ztf:g"][0].get_marker() == "o"
    assert to_rgba(other.get_color()) == to_rgba("#009E73")


def test_detections_in_flux_units_and_magnitudes():
    lc = _lc()
    line = _containers(_axes(plot(lc, objectid=1))["calibrated"])["ztf:g"][0]
    assert np.allclose(line.get_ydata(), 1.0)  # 8 detections of 1 mJy
    assert len(line.get_xdata()) == 8
    fig = plot(lc, objectid=1, flux_unit="uJy")
    ax = _axes(fig)["calibrated"]
    assert np.allclose(_containers(ax)["ztf:g"][0].get_ydata(), 1000.0)
    assert "Jy" in ax.get_ylabel() and "mu" in ax.get_ylabel()
    fig = plot(lc, objectid=1, magnitudes=True)
    ax = _axes(fig)["calibrated"]
    assert "AB mag" in ax.get_ylabel()
    lo, hi = ax.get_ylim()
    assert lo > hi  # inverted: bright at the top
    ab_1mjy = -2.5 * math.log10(1e-3 / 3630.780547701003)  # Oke & Gunn 1983
    assert np.allclose(_containers(ax)["ztf:g"][0].get_ydata(), ab_1mjy)
    # e-/s stays e-/s with magnitudes
    assert "e^{-}" in _axes(fig)["instrumental"].get_ylabel()


def test_log_flux_axis_labels_in_one_format():
    fig = plot(_lc(), objectid=1, log_flux=True)
    fig.canvas.draw()
    ax = _axes(fig)["calibrated"]
    assert ax.get_yscale() == "log"
    labels = _labels(ax.yaxis) + _labels(ax.yaxis, "minor")
    assert len(labels) >= 2
    assert all(PLAIN.match(t) for t in labels), labels   # no "6e-01" next to "2"
    # A range spanning 0.25-1.9: ticks from the 1-2-(3-)5 sequence, plainly.
    lc = MultiBandLightCurve.from_arrays(
        [1] * 20, ["ztf:g"] * 20, Time(T0 + np.arange(20.0), format="mjd", scale="tdb"),
        np.geomspace(0.25, 1.9, 20) * u.mJy, np.full(20, 0.01) * u.mJy)
    fig = plot(lc, log_flux=True)
    fig.canvas.draw()
    ax = _axes(fig)["calibrated"]
    labels = _labels(ax.yaxis)
    assert len(labels) >= 3 and set(labels) <= {"0.2", "0.3", "0.5", "1", "2"}, labels
    assert _labels(ax.yaxis, "minor") == []


def test_per_wavelength_unit_puts_scale_in_label():
    fig = plot(_lc(), objectid=1, flux_unit="erg / (s cm2 Angstrom)")
    fig.canvas.draw()
    ax = _axes(fig)["calibrated"]
    # F_lambda = F_nu c / lambda^2 by hand, at the ZTF g wavelength of the registry
    wav = multilc.photometry.get_band("ztf:g").wavelength.to_value(u.cm)
    flam = 1e-26 * 2.99792458e10 / wav**2 * 1e-8   # 1 mJy in erg/s/cm2/A
    assert 1e-16 < flam < 1e-14
    assert np.allclose(_containers(ax)["ztf:g"][0].get_ydata(), flam, rtol=1e-6)
    # largest value: ZTF r, 2 mJy at ~6400 A, ~1.5e-15: the label carries 10^-15
    assert "10^{-15}" in ax.get_ylabel()
    assert ax.yaxis.get_offset_text().get_text() == ""
    labels = _labels(ax.yaxis)
    assert labels and all(PLAIN.match(t) for t in labels), labels
    # the labelled numbers are the tick values divided by the scale in the label
    scale = 10.0 ** int(re.search(r"10\^\{(-?\d+)\}", ax.get_ylabel()).group(1))
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert float(labels[-1].replace("\N{MINUS SIGN}", "-")) == pytest.approx(
        ticks[-1] / scale)
    # mJy needs no scale
    ax = _axes(plot(_lc(), objectid=1))["calibrated"]
    assert "10^" not in ax.get_ylabel()


def test_upper_limits_are_down_arrows():
    ax = _axes(plot(_lc(), objectid=1))["calibrated"]
    (limits,) = [ln for ln in ax.lines if ln.get_gid() == "ztf:g upper limits"]
    assert np.allclose(limits.get_xdata(), [T0 + 8, T0 + 9])
    assert np.allclose(limits.get_ydata(), [0.05, 0.03])  # limit; 0 + 3 * 0.01
    verts = limits.get_marker().vertices
    assert verts[:, 1].max() == 0 and verts[:, 1].min() < 0  # hangs below the value
    assert to_rgba(limits.get_color()) == to_rgba("#009E73")
    assert "upper limit" in [t.get_text() for t in ax.figure.legends[0].get_texts()]


def _spiky(n=100, spike=40, seed=3):
    """ZTF r: 1 mJy with 0.02 mJy Gaussian noise and one point at 2 mJy."""
    rng = np.random.default_rng(seed)
    flux = 1.0 + rng.normal(0.0, 0.02, n)
    flux[spike] = 2.0
    t = T0 + np.arange(float(n))
    return MultiBandLightCurve.from_arrays(np.ones(n, int), ["ztf:r"] * n,
                                           Time(t, format="mjd", scale="tdb"),
                                           flux * u.mJy, np.full(n, 0.02) * u.mJy), flux


def test_sigma_clip_counts_outliers():
    lc, flux = _spiky()
    # By hand: the spike lies (2 - median) / std ~ 10 standard deviations out
    # (std ~ 0.1 with the spike in); without it the noise is ~0.02, so the
    # next-largest deviation is < 5 sigma and a second pass clips nothing.
    others = np.delete(flux, 40)
    assert np.max(np.abs(others - np.median(others))) < 5 * np.std(others)
    assert (2.0 - np.median(flux)) > 5 * np.std(flux)
    fig = plot(lc, sigma_clip=5)
    line = _containers(_axes(fig)["calibrated"])["ztf:r"][0]
    assert len(line.get_xdata()) == 99
    assert T0 + 40 not in line.get_xdata()
    assert "1 outlier clipped" in fig._suptitle.get_text()
    assert "ZTF r (1 clipped)" in [x.get_text() for x in fig.legends[0].get_texts()]
    # An upper-only limit above the spike keeps it; a lower-only one too.
    fig = plot(lc, sigma_clip=(5, 20))
    assert len(_containers(_axes(fig)["calibrated"])["ztf:r"][0].get_xdata()) == 100
    fig = plot(lc)
    assert len(_containers(_axes(fig)["calibrated"])["ztf:r"][0].get_xdata()) == 100
    assert "clipped" not in fig._suptitle.get_text()
    with pytest.raises(PlotError, match="sigma_clip"):
        plot(lc, sigma_clip=-1)
    with pytest.raises(PlotError, match="sigma_clip"):
        plot(lc, sigma_clip=(1, 2, 3))


def test_sigma_clip_matches_astropy_per_band():
    # Two bands of one object, each with its own outlier: clipped per band, as
    # astropy.stats.sigma_clip (median, std, 5 iterations) clips each alone.
    from astropy.stats import sigma_clip

    lc, flux = _spiky()
    lc2, flux2 = _spiky(n=60, spike=7, seed=11)
    lc2 = MultiBandLightCurve.from_arrays(
        np.ones(60, int), ["ztf:g"] * 60, lc2.time, flux2 * u.mJy, np.full(60, 0.02) * u.mJy)
    both = lc + lc2
    fig = plot(both, sigma_clip=3)
    cont = _containers(_axes(fig)["calibrated"])
    for name, values in (("ztf:r", flux), ("ztf:g", flux2)):
        expected = sigma_clip(values, sigma=3, maxiters=5, cenfunc="median", stdfunc="std")
        assert len(cont[name][0].get_ydata()) == int((~expected.mask).sum())


def test_sigma_clip_ignores_upper_limits():
    # 30 detections at 1 mJy (+-0.01 noise) and 3 flagged limits at 50 mJy: the
    # limits neither enter the statistics nor get clipped; a spike at 2 does.
    rng = np.random.default_rng(5)
    flux = np.r_[1.0 + rng.normal(0.0, 0.01, 30), 2.0, 50.0, 50.0, 50.0]
    limit = np.r_[np.zeros(31, bool), np.ones(3, bool)]
    lc = MultiBandLightCurve.from_arrays(
        np.ones(34, int), ["ztf:g"] * 34, Time(T0 + np.arange(34.0), format="mjd", scale="tdb"),
        flux * u.mJy, np.full(34, 0.01) * u.mJy, upper_limit=limit)
    ax = _axes(plot(lc, sigma_clip=5))["calibrated"]
    assert len(_containers(ax)["ztf:g"][0].get_xdata()) == 30      # the spike is gone
    (limits,) = [ln for ln in ax.lines if ln.get_gid() == "ztf:g upper limits"]
    assert np.allclose(limits.get_ydata(), 50.0)                    # all three limits stay


def test_no_zero_outliers_in_title():
    t = T0 + np.arange(30.0)
    flat = MultiBandLightCurve.from_arrays(np.ones(30, int), ["ztf:g"] * 30,
                                           Time(t, format="mjd", scale="tdb"),
                                           (1.0 + 0.01 * np.sin(t)) * u.mJy,
                                           np.full(30, 0.02) * u.mJy)
    fig = plot(flat, sigma_clip=5)
    assert "outlier" not in fig._suptitle.get_text()
    assert "clipped" not in " ".join(x.get_text() for x in fig.legends[0].get_texts())


# --------------------------------------------------------------------------- events
def test_events_in_their_strip():
    fig = plot(_lc(), objectid=1)
    ax = _axes(fig)["events"]
    colls = {c.get_gid(): c for c in ax.collections}
    nu = colls["events icecube"].get_segments()
    gamma = colls["events heasarc.fermi_gbm"].get_segments()
    assert len(nu) == 1 and nu[0][0, 0] == pytest.approx(T0 + 30)
    assert len(gamma) == 1 and gamma[0][0, 0] == pytest.approx(T0 + 60)
    assert "150 TeV" in [t.get_text() for t in ax.texts]  # 1.5e5 GeV
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "IceCube neutrino" in legend and "Fermi GBM trigger" in legend
    assert not _axes(plot(_lc(), objectid=1, events=False)).get("events")


# --------------------------------------------------------------------------- zoom
def test_running_mean_by_hand():
    t = np.array([0.0, 1.0, 2.0, 10.0])
    y = np.array([1.0, 2.0, 4.0, 5.0])
    e = np.array([1.0, 0.5, 1.0, 2.0])
    tm, mean, err = running_mean(t, y, e, 2.5 * u.day)
    # window +-1.25 d: point 0 sees 0,1; point 1 sees 0,1,2; point 2 sees 1,2
    w = 1 / e**2
    assert np.allclose(tm, t)
    assert mean[0] == pytest.approx((1 * 1 + 2 * 4) / (1 + 4))
    assert mean[1] == pytest.approx((1 * 1 + 2 * 4 + 4 * 1) / 6)
    assert mean[2] == pytest.approx((2 * 4 + 4 * 1) / 5)
    assert mean[3] == 5.0 and err[3] == pytest.approx(2.0)
    assert err[1] == pytest.approx(1 / math.sqrt(w[:3].sum()))
    with pytest.raises(u.UnitsError, match="Quantity"):
        running_mean(t, y, e, 2.5)


def test_zoom_panel_on_densest_band():
    fig = plot(_lc(), objectid=1, zoom="auto", running_mean_window=3 * u.day)
    axes = _axes(fig)
    assert "zoom" in axes
    assert "ZTF g" in axes["zoom"].get_title(loc="left")  # 8 detections: densest
    (mean,) = [ln for ln in axes["zoom"].lines if ln.get_gid() == "running mean"]
    assert np.allclose(mean.get_ydata()[np.isfinite(mean.get_ydata())], 1.0)
    fig = plot(_lc(), objectid=1, zoom="ztf:r")
    assert "ZTF r" in _axes(fig)["zoom"].get_title(loc="left")
    with pytest.raises(PlotError, match="zoom band"):
        plot(_lc(), objectid=2, zoom="ztf:r")


# --------------------------------------------------------------------------- styles
def test_band_style_fallbacks_are_deterministic():
    # WFC3/IR F160W: pivot 15370 A -> the H/K colour (Tol olive) and the HST star
    style = band_style("hst:WFC3_F160W")
    assert style.color == "#999933" and style.marker == "*"
    assert style.label == "HST WFC3 F160W"
    unknown = band_style("myarchive:X")
    assert unknown == band_style("myarchive:X")
    assert unknown.marker in plotting._FALLBACK_MARKERS
    for name, st in plotting.BAND_STYLES.items():
        assert band_style(name) is st


# --------------------------------------------------------------------------- errors
def test_clear_errors():
    lc = _lc()
    with pytest.raises(PlotError, match="holds 2 targets.*objectid="):
        plot(lc)
    with pytest.raises(PlotError, match="unknown objectid 99.*1, 2"):
        plot(lc, objectid=99)
    empty_range = Time([T0 + 1000, T0 + 2000], format="mjd", scale="tdb")
    with pytest.raises(PlotError, match="objectid 1 has no measurements.*MJD"):
        plot(lc, objectid=1, time_range=empty_range)
    with pytest.raises(PlotError, match="time_range must be an astropy Time"):
        plot(lc, objectid=1, time_range=(T0, T0 + 5))
    with pytest.raises(PlotError, match="not in this light curve"):
        plot(lc, objectid=1, bands=["ztf:i"])
    with pytest.raises(PlotError, match="not a flux density"):
        plot(lc, objectid=1, flux_unit="electron / s")


def test_bands_and_time_range_select():
    tr = Time([T0 - 1, T0 + 3.5], format="mjd", scale="tdb")
    fig = plot(_lc(), objectid=1, bands=["ztf:g", "tess:TESS"], time_range=tr)
    axes = _axes(fig)
    assert set(axes) == {"calibrated"}  # TESS and events lie outside the range
    line = _containers(axes["calibrated"])["ztf:g"][0]
    assert np.allclose(line.get_xdata(), T0 + np.arange(4.0))
    assert axes["calibrated"].get_xlim() == pytest.approx(tuple(tr.mjd))


def test_draw_into_given_axes():
    fig, ax = plt.subplots()
    with pytest.warns(UserWarning, match="tess:TESS"):
        out = plot(_lc(), objectid=1, ax=ax)
    assert out is ax and fig.axes == [ax]
    assert set(_containers(ax)) == {"ztf:g", "ztf:r", "wise:W1"}
    assert "mJy" in ax.get_ylabel() and "Yang 18" in ax.get_title(loc="left")
    assert "ZTF g" in [t.get_text() for t in ax.get_legend().get_texts()]
    # Count rates alone are drawn into the Axes too (no warning).
    tess = _lc().select(objectid=1, band="tess:TESS")
    fig, ax = plt.subplots()
    assert plot(tess, ax=ax) is ax
    assert set(_containers(ax)) == {"tess:TESS"} and "e^{-}" in ax.get_ylabel()
    # Without ax= the figure of panels, as before.
    assert isinstance(plot(_lc(), objectid=1), matplotlib.figure.Figure)


# --------------------------------------------------------------------------- layout
def _tess_sectors(starts, n=27 * 24, with_optical=True, step=1 / 24):
    """Target 1: sparse ZTF g over 14 years and TESS sectors (27 d, 1 h cadence)."""
    pieces = []
    if with_optical:
        t = np.linspace(55000.0, 60100.0, 60)
        pieces.append(MultiBandLightCurve.from_arrays(
            np.ones(60, int), ["ztf:g"] * 60, Time(t, format="mjd", scale="tdb"),
            np.full(60, 1.0) * u.mJy, np.full(60, 0.05) * u.mJy))
    for s0 in starts:
        t = s0 + np.arange(n) * step
        pieces.append(MultiBandLightCurve.from_arrays(
            np.ones(n, int), ["tess:TESS"] * n, Time(t, format="mjd", scale="tdb"),
            (100.0 + np.sin(t)) * u.electron / u.s, np.full(n, 0.5) * u.electron / u.s))
    return MultiBandLightCurve.concat(pieces)


def test_short_count_rate_stretches_get_their_own_panels():
    starts = [58650.0, 59380.0, 60110.0]
    fig = plot(_tess_sectors(starts), objectid=1)
    axes = _axes(fig)
    seg = [axes[f"instrumental {i}"] for i in (1, 2, 3)]
    assert "instrumental" not in axes and set(axes) >= {"calibrated"}
    for ax, s0 in zip(seg, starts):
        lo, hi = ax.get_xlim()
        # each panel spans its own sector (27 d), not the 14-year axis
        assert lo < s0 and hi > s0 + 27 - 1 / 24 and hi - lo < 30
        (line,) = [ln for ln in ax.lines if ln.get_gid() == "tess:TESS"]
        assert line.get_xdata().min() >= s0 and line.get_xdata().max() < s0 + 27
        assert "TESS" in ax.get_title(loc="left")
    assert "e^{-}" in seg[0].get_ylabel()
    # where the sectors lie is marked on the shared time axis
    marks = [ln for ln in axes["calibrated"].lines if ln.get_gid() == "count-rate segment"]
    assert [tuple(m.get_xdata()) for m in marks] == [(s, s + 27 - 1 / 24) for s in starts]
    # Twelve sectors: at most two rows of four panels; the closest merge.
    many = [58000.0 + 120.0 * k for k in range(12)]
    axes = _axes(plot(_tess_sectors(many, n=54, step=0.5), objectid=1))
    seg = sorted(name for name in axes if name.startswith("instrumental"))
    assert len(seg) == 8
    shown = np.concatenate([[ln.get_xdata() for ln in axes[name].lines
                             if ln.get_gid() == "tess:TESS"][0] for name in seg])
    assert shown.size == 12 * 54          # every point is in some panel
    # A target with one sector and nothing else: one ordinary panel.
    fig = plot(_tess_sectors([58650.0], with_optical=False), objectid=1)
    assert set(_axes(fig)) == {"instrumental"}
    # Kepler-like coverage (4 years of 14): one count-rate panel sharing the time axis.
    long = _tess_sectors([55000.0], n=4 * 365, step=1.0)
    axes = _axes(plot(long, objectid=1))
    assert set(axes) == {"calibrated", "instrumental"}
    assert axes["instrumental"].get_xlim() == axes["calibrated"].get_xlim()


def test_dense_band_does_not_hide_sparse_band():
    t_r = T0 + np.arange(0.0, 600.0, 0.5)          # 1200 points of ZTF r
    t_g = T0 + np.arange(0.0, 600.0, 6.0)          # 100 points of ZTF g, same flux
    lc = MultiBandLightCurve.from_arrays(
        [1] * (t_r.size + t_g.size), ["ztf:r"] * t_r.size + ["ztf:g"] * t_g.size,
        Time(np.r_[t_r, t_g], format="mjd", scale="tdb"),
        np.ones(t_r.size + t_g.size) * u.mJy, np.full(t_r.size + t_g.size, 0.05) * u.mJy)
    cont = _containers(_axes(plot(lc))["calibrated"])
    g, r = cont["ztf:g"][0], cont["ztf:r"][0]
    assert g.get_zorder() > r.get_zorder()        # the sparse band is drawn on top
    assert cont["ztf:g"][2][0].get_zorder() > r.get_zorder()  # with its error bars
    assert r.get_alpha() < 0.5 < g.get_alpha()    # and the dense one lets it through
    # the legend shows both at full opacity
    legend = plt.gcf().legends[0]
    assert all(h.get_alpha() in (None, 1) for h in legend.legend_handles)


def test_one_column_zoom_title_fits():
    fig = plot(_lc(), objectid=1, zoom="auto", width=3.5)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    for ax in fig.axes:
        for text in (ax.title, ax._left_title, ax.xaxis.label, ax.yaxis.label):
            if text.get_text():
                box = text.get_window_extent(renderer)
                assert box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1, text.get_text()
    zoom = _axes(fig)["zoom"]
    labels = [t for t in zoom.get_xticklabels() if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))   # tick labels do not overlap


# --------------------------------------------------------------------------- names
def _named(names):
    lc = _lc()
    return MultiBandLightCurve(lc.ds.assign(name=("object", names)))


def test_names_in_titles_and_file_names(tmp_path):
    lc = _named(["Mrk 590", ""])
    fig = plot(lc, objectid=1)
    title = fig._suptitle.get_text()
    assert title.startswith("Mrk 590") and "objectid" not in title and "Yang 18" in title
    assert plot(lc, "Mrk 590")._suptitle.get_text() == title          # by name
    assert plot(lc, "2")._suptitle.get_text().startswith("objectid 2")   # "2" as typed
    assert plot(lc, objectid=2)._suptitle.get_text().startswith("objectid 2")  # empty name
    with pytest.raises(PlotError, match="no object is named 'NGC 1'"):
        plot(lc, "NGC 1")
    written = plot_all(lc, tmp_path, progress=False)
    assert sorted(p.name for p in written) == ["2_SDSS.png", "Mrk_590.png"]
    # the same name twice: the second file gets its objectid
    written = plot_all(_named(["PKS 2155-304", "PKS 2155-304"]), tmp_path / "dup",
                       progress=False)
    assert sorted(p.name for p in written) == ["PKS_2155-304.png", "PKS_2155-304_2.png"]


# --------------------------------------------------------------------------- many targets
def test_plot_all_pngs(tmp_path):
    written = plot_all(_lc(), tmp_path / "figs", progress=False)
    names = sorted(p.name for p in written)
    assert names == ["1_Yang_18.png", "2_SDSS.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_all_pdf_pages(tmp_path):
    out = tmp_path / "all.pdf"
    assert plot_all(_lc(), out, progress=False, zoom="auto") == [out]
    raw = out.read_bytes()
    n_pages = raw.count(b"/Type /Page") - raw.count(b"/Type /Pages")
    assert n_pages == 2


def test_plot_all_skips_targets_without_data(tmp_path):
    tr = Time([T0 + 9.5, T0 + 100], format="mjd", scale="tdb")  # target 2 ends at T0+3
    with pytest.warns(UserWarning, match="skipped 1 of 2 targets.*2: objectid 2"):
        written = plot_all(_lc(), tmp_path, progress=False, time_range=tr)
    assert [p.name for p in written] == ["1_Yang_18.png"]


# --------------------------------------------------------------------------- accessor
def test_dataset_accessor():
    lc = _lc()
    fig = lc.ds.multilc.plot(objectid=2)
    assert set(_axes(fig)) == {"calibrated"}
    assert lc.ds.multilc.lc == lc
    assert callable(lc.ds.plot)  # xarray's own .plot is untouched


def test_import_chooses_no_backend():
    code = ("import sys, multilc.plotting; "
            "print('matplotlib.pyplot' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
