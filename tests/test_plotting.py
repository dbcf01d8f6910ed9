"""Tests of multilc.plotting: figures rendered headless with Agg."""
import math
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time
from matplotlib.colors import to_rgba

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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


def test_top_axis_shows_calendar_years():
    fig = plot(_lc(), objectid=1)
    top = _axes(fig)["events"]
    assert len(top.child_axes) == 1  # the secondary (year) axis
    # 2020-07-01 00:00 UTC is decimal year 2020 + 182/366
    mjd = Time("2020-07-01T00:00:00", scale="utc").tdb.mjd
    assert plotting._mjd_to_year(np.array([mjd]))[0] == pytest.approx(2020 + 182 / 366,
                                                                       abs=1e-9)
    assert plotting._year_to_mjd(np.array([2020 + 182 / 366]))[0] == pytest.approx(mjd,
                                                                                   abs=1e-6)


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


def test_log_flux_axis():
    ax = _axes(plot(_lc(), objectid=1, log_flux=True))["calibrated"]
    assert ax.get_yscale() == "log"


def test_upper_limits_are_down_arrows():
    ax = _axes(plot(_lc(), objectid=1))["calibrated"]
    (limits,) = [ln for ln in ax.lines if ln.get_gid() == "ztf:g upper limits"]
    assert np.allclose(limits.get_xdata(), [T0 + 8, T0 + 9])
    assert np.allclose(limits.get_ydata(), [0.05, 0.03])  # limit; 0 + 3 * 0.01
    verts = limits.get_marker().vertices
    assert verts[:, 1].max() == 0 and verts[:, 1].min() < 0  # hangs below the value
    assert to_rgba(limits.get_color()) == to_rgba("#009E73")
    assert "upper limit" in [t.get_text() for t in ax.figure.legends[0].get_texts()]


def test_sigma_clip_counts_outliers():
    t = T0 + np.arange(40.0)
    flux = 1.0 + np.where((t > T0 + 15) & (t < T0 + 25), 2.0, 0.0)  # 9-point flare
    flux = flux + 0.01 * np.sin(np.arange(40.0))
    flux[5] = 4.0  # one spike
    lc = MultiBandLightCurve.from_arrays(np.ones(40, int), ["ztf:r"] * 40,
                                         Time(t, format="mjd", scale="tdb"),
                                         flux * u.mJy, np.full(40, 0.02) * u.mJy)
    fig = plot(lc, sigma_clip=5)
    line = _containers(_axes(fig)["calibrated"])["ztf:r"][0]
    assert len(line.get_xdata()) == 39
    assert T0 + 5 not in line.get_xdata()
    assert np.sum(line.get_ydata() > 2.5) == 9  # the flare is kept
    assert "1 outlier clipped" in fig._suptitle.get_text()
    assert "ZTF r (1 clipped)" in [x.get_text() for x in fig.legends[0].get_texts()]
    fig = plot(lc)
    assert len(_containers(_axes(fig)["calibrated"])["ztf:r"][0].get_xdata()) == 40
    assert "clipped" not in fig._suptitle.get_text()


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
    assert out is fig and set(_containers(ax)) == {"ztf:g", "ztf:r", "wise:W1"}


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
