"""Batching and concurrency of the collection engine against a local stand-in.

A local HTTP stand-in (multilc.testing.ReplayServer) adds 100 ms of latency to
every request.  500 targets are collected:

* batched: the demo archive's default (50 targets per request, 4 in flight);
* per-target sequential loop: one request per target, one at a time (what the
  tutorial code does for per-target services);
* several archives at once vs the slowest of them alone.

Run: ``python bench/bench_collect.py [--targets 500] [--latency 0.1]``.
Goals (issue 3): requests <= ceil(500/chunk) + 3 (vs >= 500 per target);
wall time >= 20x faster than the per-target loop; several archives together
<= 1.25x the slowest single archive.
"""
import argparse
import math
import time

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

import multilc
from multilc.collect import register_archive
from multilc.testing import ReplayServer
from multilc.testing.demo_archive import DemoArchive, demo_service


@register_archive
class DemoSlow(DemoArchive):
    """A second batched archive with smaller chunks (more requests)."""

    name = "demo.small_chunks"
    chunk_size = 20


@register_archive
class DemoPerTarget(DemoArchive):
    """A per-target service with bounded concurrency."""

    name = "demo.per_target"
    chunk_size = 1
    concurrency = 8


def run(sky, archives, **kw):
    t0 = time.perf_counter()
    lc = multilc.collect(sky, archives=archives, cache=False, progress=False, **kw)
    return time.perf_counter() - t0, lc


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    n = args.targets
    rng = np.random.default_rng(1)
    sky = SkyCoord(rng.uniform(0, 360, n) * u.deg,
                   np.degrees(np.arcsin(rng.uniform(-1, 1, n))) * u.deg)
    with ReplayServer(latency=args.latency) as server:
        import os

        os.environ["MULTILC_DEMO_URL"] = demo_service(server)
        chunk = DemoArchive.chunk_size

        server.clear()
        t_batch, lc = run(sky, "demo")
        req_batch = server.count()
        assert len(lc.objectids) == n and lc.report.ok
        print(f"batched ({chunk} targets per request, {DemoArchive.concurrency} in flight): "
              f"{req_batch} requests (goal <= {math.ceil(n / chunk) + 3}), {t_batch:.2f} s")

        server.clear()
        t_loop, lc_loop = run(sky, "demo", chunk_size=1, concurrency=1)
        req_loop = server.count()
        assert lc_loop == lc
        print(f"per-target sequential loop: {req_loop} requests, {t_loop:.2f} s")
        print(f"requests ratio {req_loop / req_batch:.0f}x; wall-time ratio "
              f"{t_loop / t_batch:.1f}x (goal >= 20x)")

        singles = {}
        for name in ("demo", "demo.small_chunks", "demo.per_target"):
            singles[name], _ = run(sky, name)
        slowest = max(singles, key=singles.get)
        t_all, lc_all = run(sky, list(singles))
        assert lc_all.report.ok
        print("single archives: " + ", ".join(f"{k} {v:.2f} s" for k, v in singles.items()))
        print(f"all three together: {t_all:.2f} s = {t_all / singles[slowest]:.2f}x the "
              f"slowest single archive ({slowest}) (goal <= 1.25x)")


if __name__ == "__main__":
    main()
