"""Bulk catalog route at scale: peak memory against the result, and growth 5,000 -> 500,000.

Goals (issue 12, goals 4 and 5):

* peak RSS during a bulk collection <= 3x the result's in-memory size +
  300 MiB;
* 500,000 targets against ZTF-, unWISE- and Gaia-like HATS catalogs finish
  with peak RSS <= 8 GiB, and the cost grows no faster than linearly from
  5,000 to 500,000 targets (growth factor = (t_500k / t_5k) / 100 <= 1).

Each measurement runs in a fresh process (peak RSS is the process's
``ru_maxrss``).  Two routes:

``catalog``  `multilc.catalogs.crossmatch` (plan, read, match; the result is
             the matched pyarrow table), for every catalog kind;
``collect``  ``multilc.collect(targets, archives=["ztf"], route="bulk")``
             through the ZTF reader and the engine (result: the light curve's
             xarray Dataset), for the ZTF-like catalog.

Catalogs: ``python bench/build_bulk_catalogs.py`` first.  Run:
``python bench/bench_bulk_scale.py [--kinds ztf,unwise,gaia] [--sizes 5000,500000]``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _rss_mib():
    """Peak RSS of this process [MiB] (VmHWM; ``ru_maxrss`` is inherited from
    the parent across fork on Linux, so a child could report the parent's)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(args):
    from astropy import units as u

    from bench_bulk_lsdb import KINDS

    data = np.load(args.targets)
    ra, dec = data["ra"], data["dec"]
    root = os.path.join(args.root, args.kind)
    if args.route == "catalog":
        from multilc.catalogs import HatsCatalog, crossmatch

        base = _rss_mib()
        t0 = time.perf_counter()
        table = crossmatch(HatsCatalog(root), ra, dec, 1 * u.arcsec, KINDS[args.kind][0],
                           workers=2)
        elapsed = time.perf_counter() - t0
        size, rows = table.nbytes, table.num_rows
    else:
        os.environ["MULTILC_ZTF_HATS_URL"] = root
        from astropy.coordinates import SkyCoord

        import multilc

        coords = SkyCoord(ra * u.deg, dec * u.deg)
        base = _rss_mib()
        t0 = time.perf_counter()
        lc = multilc.collect(coords, archives=["ztf"], radius=1 * u.arcsec,
                             options={"ztf": {"route": "bulk"}}, cache=False,
                             progress=False)
        elapsed = time.perf_counter() - t0
        if not lc.report.ok:
            raise SystemExit(lc.report.summary())
        size, rows = lc.ds.nbytes, len(lc)
    print(json.dumps({"time": elapsed, "rss_mib": _rss_mib(), "base_mib": base,
                      "result_mib": size / 2**20, "rows": int(rows)}))


def run(route, kind, root, tfile, pool):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--route", route,
           "--kind", kind, "--root", root, "--targets", tfile]
    env = dict(os.environ)
    if pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode:
        raise RuntimeError(f"{route}/{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    from build_bulk_catalogs import default_out

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_out())
    parser.add_argument("--kinds", default="ztf,unwise,gaia")
    parser.add_argument("--routes", default="catalog,collect")
    parser.add_argument("--sizes", default="5000,50000,500000")
    parser.add_argument("--layout", default="random")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--arrow-pool", default="",
                        help="ARROW_DEFAULT_MEMORY_POOL of the workers (default '': "
                             "pyarrow's own, mimalloc, as users run it; multilc returns "
                             "the pool's freed pages after each batch)")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--route", default="catalog")
    parser.add_argument("--kind", default="ztf")
    parser.add_argument("--targets")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    if not os.path.isdir(os.path.join(args.root, "ztf")):
        print(f"skipped: no benchmark catalogs in {args.root}; build them with "
              "bench/build_bulk_catalogs.py (needs hats-import: pip install multilc[bench])")
        return 0

    from bench_bulk_lsdb import make_targets

    sizes = [int(s) for s in args.sizes.split(",")]
    print("goals: peak RSS <= 3 x result + 300 MiB; 500k targets <= 8 GiB; "
          "growth (t_N / t_5000) / (N / 5000) <= 1; "
          f"ARROW_DEFAULT_MEMORY_POOL={args.arrow_pool or '(default)'}")
    print(f"{'route':8} {'catalog':8} {'targets':>8} {'rows':>10} {'time s':>14} "
          f"{'peak MiB':>9} {'result MiB':>10} {'bound MiB':>9} {'ok':>3} {'growth':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for route in args.routes.split(","):
            for kind in args.kinds.split(","):
                if route == "collect" and kind != "ztf":
                    continue
                first = None
                for n in sizes:
                    ra, dec = make_targets(args.root, kind, n, args.layout, seed=n)
                    tfile = os.path.join(tmp, "t.npz")
                    np.savez(tfile, ra=ra, dec=dec)
                    res = [run(route, kind, args.root, tfile, args.arrow_pool)
                           for _ in range(args.runs)]
                    t = [r["time"] for r in res]
                    med = statistics.median(t)
                    peak = max(r["rss_mib"] for r in res)
                    result = res[0]["result_mib"]
                    bound = 3 * result + 300
                    if first is None:
                        first = (n, med)
                    growth = (med / first[1]) / (n / first[0])
                    print(f"{route:8} {kind:8} {n:8d} {res[0]['rows']:10d} "
                          f"{min(t):6.1f}/{med:6.1f} {peak:9.0f} {result:10.1f} {bound:9.0f} "
                          f"{'yes' if peak <= bound else 'no':>3} {growth:7.2f}", flush=True)


if __name__ == "__main__":
    main()
