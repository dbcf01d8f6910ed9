"""Plotting speed: many targets into one multipage PDF with `multilc.plotting.plot_all`.

Each synthetic target looks like a real multi-archive light curve: ZTF g/r
2018-2023 (every ~3 nights in season) with a flare, a few ZTF upper limits
and outliers, WISE W1/W2 every 6 months 2014-2023 with a delayed infrared
echo, Gaia G 2014-2017, Pan-STARRS grizy 2010-2014, two TESS sectors at
30-minute cadence in e-/s, one IceCube neutrino (with energy) and one Fermi
GBM trigger (without).  About 3,500 measurements per target.

Run::

    python bench/bench_plotting.py                # 100 targets, extrapolated to 500
    python bench/bench_plotting.py --targets 500  # the full 500 (about 4 min)
    python bench/bench_plotting.py --demo /tmp/   # write demo PNGs/PDF only

Prints seconds per target and the extrapolation to 500 targets when fewer
were drawn (the default draws 100 to stay under two minutes on a shared
two-core machine; the time per target does not depend on the sample size,
since targets are drawn one after another).  Goal (issue 6): 500 targets
into one PDF, reported as seconds per target.
"""
import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.time import Time

from multilc import MultiBandLightCurve, make_events
from multilc.plotting import plot, plot_all


def _seasons(rng, start, stop, step, season_days=240):
    """Observation times [MJD] every ~step days, visible season_days per year."""
    t = np.arange(start, stop, step) + rng.uniform(-0.4 * step, 0.4 * step,
                                                   int(np.ceil((stop - start) / step)))
    phase = (t - start) % 365.25
    return np.sort(t[phase < season_days])


def _flare(t, peak, amplitude, rise=30.0, decay=120.0):
    """Gaussian rise, exponential decay [same unit as amplitude]."""
    return np.where(t < peak, amplitude * np.exp(-0.5 * ((t - peak) / rise) ** 2),
                    amplitude * np.exp(-(t - peak) / decay))


def make_target(objectid, seed=0, label="synthetic TDE"):
    """One synthetic target as a `MultiBandLightCurve` (see module docstring)."""
    rng = np.random.default_rng(seed + 1000 * objectid)
    peak = 58950.0 + rng.uniform(-200, 200)
    oid, band, t_all, f_all, e_all, lim_all = [], [], [], [], [], []

    def add(name, t, flux, rel_err, limit=None):
        err = np.abs(flux) * rel_err + 0.004
        obs = flux + rng.normal(0, err)
        oid.append(np.full(len(t), objectid))
        band.append(np.full(len(t), name))
        t_all.append(t)
        f_all.append(obs)
        e_all.append(err)
        lim_all.append(np.zeros(len(t), bool) if limit is None else limit)

    # ZTF g/r: host 0.18/0.25 mJy plus a flare; 2018-03 to 2023-12.
    for name, host, amp in (("ztf:g", 0.18, 0.55), ("ztf:r", 0.25, 0.40)):
        t = _seasons(rng, 58200.0, 60300.0, 3.0)
        f = host + _flare(t, peak, amp)
        limit = np.zeros(len(t), bool)
        if name == "ztf:g":
            limit[:4] = True  # early non-detections: flux holds the limit itself
            f[:4] = 0.12
            f[[40, 200]] *= 3.0  # isolated outliers (bad subtractions)
        add(name, t, f, 0.03, limit)
    # WISE: one binned visit every 6 months, infrared echo 250 d after the optical peak.
    t = np.arange(56700.0, 60300.0, 182.6) + rng.uniform(-3, 3, 20)[:len(
        np.arange(56700.0, 60300.0, 182.6))]
    add("wise:W1", t, 0.9 + _flare(t, peak + 250, 0.7, 100, 400), 0.02)
    add("wise:W2", t, 1.1 + _flare(t, peak + 250, 1.0, 100, 400), 0.03)
    # Gaia G: ~45 epochs 2014-08 to 2017-05.
    t = np.sort(rng.uniform(56880.0, 57900.0, 45))
    add("gaia:G", t, np.full(len(t), 0.26), 0.01)
    # Pan-STARRS grizy: ~12 epochs each, 2010-2014.
    for name, f0 in (("panstarrs:g", 0.17), ("panstarrs:r", 0.24), ("panstarrs:i", 0.30),
                     ("panstarrs:z", 0.34), ("panstarrs:y", 0.38)):
        t = np.sort(rng.uniform(55200.0, 56700.0, 12))
        add(name, t, np.full(len(t), f0), 0.05 if name != "panstarrs:y" else 0.12)
    calibrated = MultiBandLightCurve.from_arrays(
        np.concatenate(oid), np.concatenate(band),
        Time(np.concatenate(t_all), format="mjd", scale="tdb"),
        np.concatenate(f_all) * u.mJy, np.concatenate(e_all) * u.mJy,
        upper_limit=np.concatenate(lim_all), label={objectid: label},
        ra={objectid: (150.0 + objectid * 0.01) * u.deg},
        dec={objectid: (2.2 + objectid * 0.005) * u.deg})
    # TESS: two sectors of 27 d at 30-min cadence, count rates in e-/s.
    t = np.concatenate([np.arange(58600.0, 58627.0, 1 / 48),
                        np.arange(59330.0, 59357.0, 1 / 48)])
    rate = 60 + 0.5 * np.sin(t / 3.0) + rng.normal(0, 1.2, len(t))
    tess = MultiBandLightCurve.from_arrays(
        np.full(len(t), objectid), np.full(len(t), "tess:TESS"),
        Time(t, format="mjd", scale="tdb"), rate * u.electron / u.s,
        np.full(len(t), 1.2) * u.electron / u.s, label={objectid: label})
    events = make_events([objectid, objectid], ["icecube", "heasarc.fermi_gbm"],
                         Time([peak + 160.0, peak - 420.0], format="mjd", scale="tdb"),
                         event_id=["IC191001A", "bn180710123"],
                         energy=[2.0e5, np.nan] * u.GeV)
    ev = MultiBandLightCurve.from_events(events, label={objectid: label})
    return MultiBandLightCurve.concat([calibrated, tess, ev])


def demo(outdir):
    """Write the demo figures looked at during development."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lc = make_target(1)
    written = []
    for name, kw in (("wide", {}), ("narrow", {"width": 3.5}),
                     ("zoom", {"zoom": "auto", "sigma_clip": 5}),
                     ("zoom_narrow", {"zoom": "auto", "sigma_clip": 5, "width": 3.5}),
                     ("mag", {"magnitudes": True, "zoom": "ztf:r"}),
                     ("log", {"log_flux": True})):
        fig = plot(lc, **kw)
        out = outdir / f"demo_{name}.png"
        fig.savefig(out, dpi=300 if "narrow" in name else 150)
        written.append(out)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--demo", metavar="DIR", help="only write demo figures to DIR")
    args = parser.parse_args()
    if args.demo:
        import matplotlib

        matplotlib.use("Agg")
        for path in demo(args.demo):
            print(path)
        return
    t0 = time.perf_counter()
    lc = MultiBandLightCurve.concat([make_target(i) for i in range(1, args.targets + 1)])
    t_make = time.perf_counter() - t0
    print(f"built {args.targets} targets, {len(lc)} measurements, in {t_make:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "all.pdf"
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning here is a bug
            plot_all(lc, out, progress=False, zoom="auto")
        elapsed = time.perf_counter() - t0
        size = out.stat().st_size
    per = elapsed / args.targets
    print(f"plot_all -> one PDF: {elapsed:.1f} s for {args.targets} targets = "
          f"{per:.3f} s per target ({size / 1e6:.1f} MB)")
    if args.targets != 500:
        print(f"extrapolated to 500 targets: {500 * per:.0f} s")


if __name__ == "__main__":
    main()
