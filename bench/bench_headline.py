"""The headline run of issue 12: the Yang 2018 sample against every archive reader.

30 targets (``bench/data/yang2018_targets.csv``) x the 12 readers of
``archives="all"``, against local stand-ins in each archive's protocol, with
``--latency`` seconds (default 0.2) added to every HTTP request:

======================  ========================================================
archives                stand-in
======================  ========================================================
tess, kepler, k2        `multilc.testing.mast.MastStandin` (MAST API crossmatch,
                        product lists, file downloads; SPOC/Kepler FITS files)
ztf                     IRSA light-curve API CSV (tests/archives/test_ztf.py)
panstarrs               MAST catalogs API mean + detection CSV
                        (tests/archives/test_panstarrs.py)
hcv                     MAST HSC API hcvsummary + hcv CSV (tests/archives/test_hcv.py)
gaia                    TAP upload crossmatch + DataLink zips
                        (`multilc.testing.TAPStandin`, tests/archives/test_gaia.py)
heasarc.fermi_gbm,      TAP upload (tests/archives/test_heasarc.py answer function)
heasarc.bepposax
icecube                 a local release folder (no HTTP: the reader downloads the
                        release once and caches it)
unwise, neowise         local HEALPix parquet catalogs (no HTTP: bulk readers)
======================  ========================================================

Each archive service's stand-in runs in a child process of its own, as real
archives are separate services (``--in-process`` puts them all in this
process, where their own CPU work competes with the readers for the GIL).
The helpers of the reader tests are imported from ``tests/archives`` and
their module-level sample data replaced by objects at the Yang positions.

Printed (each measured ``--repeat`` times; min and median):

* all archives at once (one ``multilc.collect(..., archives="all")``);
* each archive alone, and the slowest of them;
* ratio all-at-once / slowest single archive (goal <= 1.25);
* a per-target sequential loop (one ``collect`` per target and archive,
  ``concurrency=1``) and its ratio to all-at-once (goal >= 10);
* the absolute all-at-once time (goal < 15 s);
* HTTP requests per archive (MAST: crossmatch / product lists / downloads).

``--profile`` adds a cProfile of one all-at-once run (top functions by
cumulative and internal time).  Run from the repository root:
``PYTHONPATH=$PWD python bench/bench_headline.py [--repeat 3] [--latency 0.2]``.
"""
import argparse
import contextlib
import csv
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))          # the repository's tests/ package

import multilc  # noqa: E402
from multilc.testing import ReplayServer, TAPStandin  # noqa: E402
from multilc.testing import catalogs as cat_builders  # noqa: E402
from multilc.testing.mast import (DOWNLOAD_PATH, INVOKE_PATH, MastStandin,  # noqa: E402
                                  synthetic_observations)

GOAL_RATIO_SLOWEST = 1.25
GOAL_RATIO_LOOP = 10.0
GOAL_SECONDS = 15.0


def yang_sample():
    with open(HERE / "data" / "yang2018_targets.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    ra = np.array([float(r["ra_deg"]) for r in rows])
    dec = np.array([float(r["dec_deg"]) for r in rows])
    return SkyCoord(ra * u.deg, dec * u.deg)


def offset(coord, arcsec, angle=45):
    return coord.directional_offset_by(angle * u.deg, arcsec * u.arcsec)


# --------------------------------------------------------------------------- stand-ins
def mast_standin(server, sky):
    obs, _ = synthetic_observations(sky.ra.deg, sky.dec.deg, seed=18, n_cadences=1000)
    os.environ["MULTILC_MAST_URL"] = server.url
    return MastStandin(server, obs)


def ztf_standin(server, sky):
    from tests.archives import test_ztf

    known = {round(c.ra.deg, 6): c for c in sky}

    def handler(request):
        _, ra, dec, _ = request.args["POS"].split()
        c = known.get(round(float(ra), 6))
        if c is None:
            return test_ztf.API_HEADER + "\n"
        near = offset(c, 0.3)
        rows = [(633101100000000 + k % 3, 2458300.75 + 3.1 * k, 18.0 + 0.01 * k, 0.05,
                 32768 if k % 17 == 0 else 0, ("zg", "zr", "zi")[k % 3],
                 near.ra.deg, near.dec.deg) for k in range(150)]
        return test_ztf._api_csv(rows)

    server.route("/ztf/nph_light_curves", handler=handler)
    os.environ["MULTILC_ZTF_API_URL"] = server.url_for("/ztf/nph_light_curves")


def panstarrs_standin(server, sky):
    from tests.archives import test_panstarrs

    objects = [(108000000000000000 + 1000 * i, offset(c, 0.2).ra.deg,
                offset(c, 0.2).dec.deg, 10) for i, c in enumerate(sky)]
    test_panstarrs.OBJECTS = objects
    test_panstarrs.DETECTIONS = Table(rows=[r for i, (o, ra, dec, _) in enumerate(objects)
                                            for r in test_panstarrs.detections_of(o, ra, dec,
                                                                                  i % 5)])
    test_panstarrs.mast_api(server, "csv")
    os.environ["MULTILC_PANSTARRS_API_URL"] = server.url_for("/api/v0.1/panstarrs")


def hcv_standin(server, sky):
    from tests.archives import test_hcv

    objects = {1_900_000 + i: offset(c, 0.2) for i, c in enumerate(sky) if i % 3 == 0}

    def summary(req):
        ra, dec, radius = (float(req.args[k]) for k in ("ra", "dec", "radius"))
        centre = SkyCoord(ra * u.deg, dec * u.deg)
        rows = [(mid, 100, 1, c.ra.deg, c.dec.deg, 1, 0, f, 20.1, 20.2, 0.3, 5.0, "AAAAA", 1)
                for mid, c in objects.items() if centre.separation(c).deg <= radius
                for f in ("ACS_F814W", "WFC3_F475W")]
        return (200, {"Content-Type": "text/csv"}, test_hcv._csv(rows, test_hcv.SUMMARY_COLS))

    def lightcurve(req):
        mid = int(req.args["MatchID"])
        rows = [(mid, f, 53000.25 + 10 * k, 20.0 + 0.1 * k, 0.05, f"hst_{k}_{f.lower()}")
                for k in range(8) for f in ("ACS_F814W", "WFC3_F475W")
                if "Filter" not in req.args or f == req.args["Filter"]] if mid in objects else []
        return (200, {"Content-Type": "text/csv"}, test_hcv._csv(rows, test_hcv.LC_COLS))

    server.route("/api/v0.1/hsc/v3/hcvsummary.csv", handler=summary)
    server.route("/api/v0.1/hsc/v3/hcv.csv", handler=lightcurve)
    os.environ["MULTILC_HCV_URL"] = server.url + "/api/v0.1/hsc"


def gaia_standin(server, sky):
    from tests.archives import test_gaia

    sources = [(4_000_000_000_000_000_000 + i, offset(c, 0.1).ra.deg, offset(c, 0.1).dec.deg,
                i % 2 == 0) for i, c in enumerate(sky)]
    test_gaia.SOURCES = sources
    test_gaia.TRANSITS = {sid: test_gaia.transits(sid, i % 7)
                          for i, (sid, _, _, has) in enumerate(sources) if has}
    tap = TAPStandin(server, test_gaia.tap_answer([]), base="/tap-server/tap")

    def datalink(request):
        ids = [int(i) for i in request.form["ID"].split(",") if i]
        return (200, {"Content-Type": "application/zip"},
                test_gaia.datalink_zip(ids, request.form["FORMAT"],
                                       request.form["DATA_STRUCTURE"]))

    server.route("/data-server/data", method="POST", handler=datalink)
    os.environ["MULTILC_GAIA_TAP_URL"] = tap.url
    os.environ["MULTILC_GAIA_DATALINK_URL"] = server.url_for("/data-server/data")


def heasarc_standin(server, sky):
    from tests.archives import test_heasarc

    rng = np.random.default_rng(12)

    def grbs(n, prefix, err):
        ra = rng.uniform(0, 360, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        return Table({"name": [f"{prefix}{i:06d}" for i in range(n)], "ra": ra, "dec": dec,
                      "error_radius": rng.uniform(*err, n),
                      "time": rng.uniform(48000, 60000, n)})

    catalogs = {"sax": grbs(1082, "GRB", (0.2, 5.0)), "fermi": grbs(1956, "bn", (0.05, 1.9)),
                "icecube": Table({"ra": [0.0], "dec": [0.0], "error_radius": [1.0],
                                  "time": [55000.0], "event_energy": [1000.0]})}
    tap = TAPStandin(server, test_heasarc.make_answer(catalogs, []))
    os.environ["MULTILC_HEASARC_TAP_URL"] = tap.url
    os.environ["MULTILC_HEASARC_FERMI_GBM_TABLE"] = "heasarc.fermigtrig"


def icecube_release(folder, sky):
    """A synthetic season file in the release's whitespace layout (IC40 columns)."""
    rng = np.random.default_rng(40)
    n = 36900                                     # as many events as IC40
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    near = rng.choice(len(sky), 60)
    ra[:60] = (sky.ra.deg[near] + rng.uniform(-0.5, 0.5, 60)) % 360
    dec[:60] = np.clip(sky.dec.deg[near] + rng.uniform(-0.5, 0.5, 60), -89, 89)
    mjd = np.sort(rng.uniform(54562.4, 54971.2, n))
    events = folder / "icecube_10year_ps" / "events"
    events.mkdir(parents=True)
    lines = ["# MJD[days]    log10(E/GeV)    AngErr[deg]    RA[deg]    Dec[deg]    "
             "Azimuth[deg]    Zenith[deg]"]
    lines += [f"{m:.8f} {e:.2f} {a:.2f} {r:.3f} {d:.3f} {r:.3f} {90 - d:.3f}"
              for m, e, a, r, d in zip(mjd, rng.uniform(2, 6, n), rng.uniform(0.2, 3.0, n),
                                       ra, dec)]
    (events / "IC40_exp.csv").write_text("\n".join(lines) + "\n")
    os.environ["MULTILC_ICECUBE_RELEASE"] = str(folder)


def wise_catalogs(folder, sky):
    rng = np.random.default_rng(5)
    n_bg = 3000
    ra = np.r_[np.repeat(offset(sky, 0.4).ra.deg, 20), rng.uniform(0, 360, n_bg)]
    dec = np.r_[np.repeat(offset(sky, 0.4).dec.deg, 20),
                np.degrees(np.arcsin(rng.uniform(-1, 1, n_bg)))]
    n = len(ra)
    mjd = rng.uniform(55200, 60000, n)
    unwise = cat_builders.unwise_table(ra, dec, mjd=mjd, flux=rng.uniform(100, 200, n),
                                       dflux=np.full(n, 5.0), band=1 + np.arange(n) % 2)
    root = folder / "unwise.parquet"
    cat_builders.write_hive_catalog(unwise, root, order=5)
    os.environ["MULTILC_UNWISE_UNWISE_URL"] = str(root)
    years = []
    for year in ("year1", "year2"):
        table = cat_builders.neowise_table(ra, dec, mjd=mjd, w1mpro=np.full(n, 14.0),
                                           w1sigmpro=np.full(n, 0.02), w2mpro=np.full(n, 13.5),
                                           w2sigmpro=np.full(n, 0.03))
        cat_builders.write_hive_catalog(table, folder / "neowise" / year / "n.parquet",
                                        order=5, parent_order=0)
        years.append(year)
    os.environ["MULTILC_NEOWISE_NEOWISE_URL"] = str(folder / "neowise" / "{year}" / "n.parquet")
    os.environ["MULTILC_NEOWISE_NEOWISE_YEARS"] = " ".join(years)


# --------------------------------------------------------------------------- runs
def run(sky, archives, **kw):
    os.environ["MULTILC_MAST_DOWNLOAD_DIR"] = tempfile.mkdtemp(prefix="mastdl-")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = multilc.collect(sky, archives=archives, cache=False, progress=False,
                             retries=1, backoff=0.05, timeout=60, **kw)
    return time.perf_counter() - t0, lc


def per_target_loop(sky, names):
    """One collect per (target, archive), one request at a time."""
    t0 = time.perf_counter()
    for name in names:
        for k in range(len(sky)):
            run(sky[k:k + 1], [name], concurrency=1)
    return time.perf_counter() - t0


def stats(values):
    runs = " ".join(f"{v:.2f}" for v in values)
    return f"min {min(values):6.2f} s, median {statistics.median(values):6.2f} s  [{runs}]"


# One server process per archive service, as the real archives are separate
# services on separate machines: MAST's portal (TESS/Kepler/K2 searches and
# downloads), MAST's catalogs API (Pan-STARRS), MAST's HSC API (HCV), IRSA
# (ZTF), ESA (Gaia) and HEASARC.  In one shared process, one stand-in's CPU
# work (a Gaia zip, 71 FITS downloads) held up every other stand-in's answers
# behind that process's GIL, which no real archive does.
SERVICES = {
    "mast": lambda server, sky, work: mast_standin(server, sky),
    "panstarrs": lambda server, sky, work: panstarrs_standin(server, sky),
    "hcv": lambda server, sky, work: hcv_standin(server, sky),
    "ztf": lambda server, sky, work: ztf_standin(server, sky),
    "gaia": lambda server, sky, work: gaia_standin(server, sky),
    "heasarc": lambda server, sky, work: heasarc_standin(server, sky),
}


def setup_local(sky, work):
    """The archives read from local files (no server): IceCube, unWISE, NEOWISE."""
    icecube_release(work / "icecube", sky)
    wise_catalogs(work / "wise", sky)


def setup_service(name, server, sky, work):
    """Mount the stand-in of service *name* on *server*; the MAST stand-in or None."""
    standin = SERVICES[name](server, sky, work)
    return standin if isinstance(standin, MastStandin) else None


def _serve(conn, latency, work, names):
    """Child process: run the stand-ins *names*, answer the parent's commands."""
    before = dict(os.environ)
    with ReplayServer(latency=latency) as server:
        standins = [setup_service(n, server, yang_sample(), work) for n in names]
        mast = next((m for m in standins if m is not None), None)
        conn.send({k: v for k, v in os.environ.items() if before.get(k) != v})
        while True:
            cmd, arg = conn.recv()
            if cmd == "latency":
                server.latency = arg
                conn.send(None)
            elif cmd == "clear":
                server.clear()
                if mast is not None:
                    mast.invocations.clear()
                conn.send(None)
            elif cmd == "requests":
                conn.send(_requests(server, mast))
            else:
                conn.send(None)
                break


class Standins:
    """The stand-ins: one child process per service (default), or all in this process.

    In this process, the stand-ins' own CPU work (rendering CSV, VOTables,
    zips) competes with the readers for this process's GIL; in child
    processes it does not, as with real archives.
    """

    def __init__(self, latency, work, *, in_process=False):
        self.in_process = in_process
        setup_local(yang_sample(), work)
        if in_process:
            self.server = ReplayServer(latency=latency).start()
            found = [setup_service(n, self.server, yang_sample(), work) for n in SERVICES]
            self.mast = next(m for m in found if m is not None)
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            self.children = []
            for name in SERVICES:
                conn, child = ctx.Pipe()
                process = ctx.Process(target=_serve, args=(child, latency, work, [name]),
                                      daemon=True)
                process.start()
                self.children.append((conn, process))
            for conn, _ in self.children:
                os.environ.update(conn.recv())

    def _ask(self, cmd, arg=None):
        for conn, _ in self.children:
            conn.send((cmd, arg))
        return [conn.recv() for conn, _ in self.children]

    def set_latency(self, value):
        if self.in_process:
            self.server.latency = value
        else:
            self._ask("latency", value)

    def clear(self):
        if self.in_process:
            self.server.clear()
            self.mast.invocations.clear()
        else:
            self._ask("clear")

    def requests(self):
        if self.in_process:
            return _requests(self.server, self.mast)
        total = {}
        for part in self._ask("requests"):
            for key, value in part.items():
                total[key] = total.get(key, 0) + value
        total["total"] = total.pop("total")
        return total

    def stop(self):
        if self.in_process:
            self.server.stop()
        else:
            self._ask("stop")
            for _, process in self.children:
                process.join(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loop-repeat", type=int, default=1,
                        help="repetitions of the (slow) per-target sequential loop")
    parser.add_argument("--no-loop", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--archives", default="all")
    parser.add_argument("--in-process", action="store_true",
                        help="run the stand-ins in this process (their CPU then competes "
                             "with the readers for the GIL)")
    parser.add_argument("--processes", type=int, default=0,
                        help="also time the all-at-once run with batches on a process "
                             "pool of this size")
    args = parser.parse_args()

    sky = yang_sample()
    work = Path(tempfile.mkdtemp(prefix="bench-headline-"))
    os.environ["MULTILC_CACHE_DIR"] = str(work / "cache")
    standins = Standins(args.latency, work, in_process=args.in_process)
    try:
        from multilc.collect.engine import _resolve_archives

        names = _resolve_archives(args.archives)
        print(f"{len(sky)} targets x {len(names)} archives ({', '.join(names)}); "
              f"{args.latency * 1000:.0f} ms latency per HTTP request; stand-ins "
              f"{'in this process' if args.in_process else 'one child process per service'}\n")

        # warm-up: imports and astropy/IERS state, not timed
        standins.set_latency(0.0)
        run(sky[:2], names)
        standins.set_latency(args.latency)

        # all at once
        together, requests = [], None
        for _ in range(args.repeat):
            standins.clear()
            t, lc = run(sky, names)
            together.append(t)
            if requests is None:
                requests = standins.requests()
                report = lc.report
        failed = [f for f in report.failures]
        print(f"all {len(names)} archives at once: {stats(together)}"
              f"  ({len(lc.time)} points, {len(failed)} failures)")
        for f in failed[:5]:
            print(f"    failure: {f.message[:150]}")
        print("    HTTP requests: " + ", ".join(f"{k} {v}" for k, v in requests.items()))

        singles = {}
        for name in names:
            times = []
            for _ in range(args.repeat):
                t, _ = run(sky, [name])
                times.append(t)
            singles[name] = times
        order = sorted(singles, key=lambda n: -statistics.median(singles[n]))
        print("\neach archive alone (median, slowest first):")
        for name in order:
            print(f"    {name:18s} {stats(singles[name])}")
        slowest = order[0]
        t_all = statistics.median(together)
        t_slow = statistics.median(singles[slowest])
        ratios = [a / statistics.median(singles[slowest]) for a in together]
        print(f"\nslowest single archive: {slowest} ({t_slow:.2f} s median)")
        print(f"ratio all-at-once / slowest single: {t_all / t_slow:.2f} "
              f"(min {min(ratios):.2f}) (goal <= {GOAL_RATIO_SLOWEST})")
        print(f"absolute all-at-once: {t_all:.2f} s median, {min(together):.2f} s min "
              f"(goal < {GOAL_SECONDS:.0f} s)")

        if args.processes:
            import concurrent.futures as cf

            times = []
            with cf.ProcessPoolExecutor(args.processes) as pool:
                run(sky[:2], names, executor=pool)          # warm the workers
                for _ in range(args.repeat):
                    t, _ = run(sky, names, executor=pool)
                    times.append(t)
            print(f"\nall at once, batches on {args.processes} processes: {stats(times)} "
                  f"(threads: {t_all:.2f} s median)")

        if not args.no_loop:
            loops = [per_target_loop(sky, names) for _ in range(args.loop_repeat)]
            print(f"\nper-target sequential loop: {stats(loops)}")
            print(f"ratio loop / all-at-once: {statistics.median(loops) / t_all:.1f}x "
                  f"(goal >= {GOAL_RATIO_LOOP:.0f}x)")

        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            run(sky, names)
            prof.disable()
            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            st.sort_stats("cumulative").print_stats(30)
            st.sort_stats("tottime").print_stats(20)
            print(out.getvalue())
    finally:
        standins.stop()


def _requests(server, mast):
    by_path = {}
    for r in server.requests:
        by_path[r.path] = by_path.get(r.path, 0) + 1
    out = {}
    if mast is not None:
        out = {"MAST crossmatch": mast.count("Mast.Caom.Crossmatch"),
               "MAST product lists": mast.count("Mast.Caom.Products"),
               "MAST downloads": by_path.pop(DOWNLOAD_PATH, 0)}
        by_path.pop(INVOKE_PATH, None)
    out.update(sorted(by_path.items()))
    out["total"] = len(server.requests)
    return out


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
