"""Concatenation, memory, pandas export and parquet read of MultiBandLightCurve.

Compares with a faithful minimal copy of today's pattern: each piece becomes a
MultiIndex ``[objectid, label, band, time] -> flux, err`` DataFrame and is
``pd.concat``-ed onto the accumulated frame (the tutorial's
``MultiIndexDFObject.append``), which copies everything gathered so far on
every append.

Run: ``python bench/bench_concat.py [--quick] [--pieces-only]``.  Prints times
and ratios.

The ``pieces`` case (issue 12, goal 2): 500 targets x 8 archives x 50 points
built as 4,000 light curves with ``from_arrays`` (including the Time and
Quantity objects a reader makes) and joined with one ``concat``, against
building the same 4,000 pandas DataFrames and one ``pd.concat``.  Goal: at
most 1.5x.  Min and median of 3 runs.
Goals (issue 2): >= 50x faster at 200k points, >= 100x at 1M; 500 targets
<= 12x the time of 50; <= 40 bytes per measurement; ``to_pandas`` <= 1.5x a
bare ``set_index().sort_index()``; parquet read >= 0.5x the speed of a bare
pyarrow read.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from astropy import units as u
from astropy.time import Time

from multilc import MultiBandLightCurve

BANDS = ["ztf:g", "ztf:r", "wise:W1", "wise:W2", "panstarrs:g", "gaia:G",
         "hst:ACS_F814W", "ztf:i"]  # one band per "archive", 8 archives


def make_pieces(n_targets, n_points, seed=0):
    """Per target and archive: (arrays, light curve) of one piece."""
    rng = np.random.default_rng(seed)
    arrays, lcs = [], []
    for oid in range(1, n_targets + 1):
        for band in BANDS:
            t = np.sort(rng.uniform(55000, 60000, n_points))
            f = rng.uniform(0.1, 2.0, n_points)
            e = f / 20
            arrays.append((oid, f"label{oid % 7}", band, t, f, e))
            lcs.append(MultiBandLightCurve.from_arrays(
                np.full(n_points, oid), np.full(n_points, band),
                Time(t, format="mjd", scale="tdb"), f * u.mJy, e * u.mJy,
                label={oid: f"label{oid % 7}"}))
    return arrays, lcs


class LegacyMultiIndexDF:
    """The tutorial's accumulate-by-pd.concat container (minimal copy of the pattern)."""

    def __init__(self):
        self.data = pd.DataFrame(columns=["objectid", "label", "band", "time", "flux",
                                          "err"]).set_index(["objectid", "label", "band",
                                                             "time"])

    def append(self, frame):
        if len(self.data) == 0:
            self.data = frame
        else:
            self.data = pd.concat([self.data, frame])


def legacy_concat(arrays):
    acc = LegacyMultiIndexDF()
    for oid, label, band, t, f, e in arrays:
        df = pd.DataFrame({"objectid": oid, "label": label, "band": band, "time": t,
                           "flux": f, "err": e}).set_index(["objectid", "label", "band",
                                                            "time"])
        acc.append(df)
    return acc.data


def timed(fn, *args, repeat=1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def compare(n_targets, n_points, legacy=True):
    arrays, lcs = make_pieces(n_targets, n_points)
    n = sum(len(p) for p in lcs)
    t_new, lc = timed(MultiBandLightCurve.concat, lcs, repeat=3)
    assert len(lc) == n
    line = f"{n_targets} targets x 8 archives x {n_points} points = {n:,} points: " \
           f"MultiBandLightCurve.concat {t_new:.3f} s"
    t_old = None
    if legacy:
        t_old, df = timed(legacy_concat, arrays)
        assert len(df) == n
        line += f"; legacy pd.concat loop {t_old:.2f} s; ratio {t_old / t_new:.0f}x"
    print(line)
    return t_new, t_old, lc


def raw_pieces(n_targets=500, n_points=50, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for oid in range(1, n_targets + 1):
        for band in BANDS:
            t = np.sort(rng.uniform(55000, 60000, n_points))
            f = rng.uniform(0.1, 2.0, n_points)
            out.append((oid, f"label{oid % 7}", band, t, f, f / 20))
    return out


def build_lightcurve(raw):
    """What a reader does per piece, then one concat."""
    lcs = [MultiBandLightCurve.from_arrays(
        np.full(len(t), oid), np.full(len(t), band), Time(t, format="mjd", scale="tdb"),
        f * u.mJy, e * u.mJy, label={oid: label}) for oid, label, band, t, f, e in raw]
    return MultiBandLightCurve.concat(lcs)


def build_frames(raw, multiindex=False):
    """The same pieces as pandas frames and one pd.concat."""
    frames = []
    for oid, label, band, t, f, e in raw:
        df = pd.DataFrame({"objectid": oid, "label": label, "band": band, "time": t,
                           "flux": f, "err": e})
        if multiindex:
            df = df.set_index(["objectid", "label", "band", "time"])
        frames.append(df)
    return pd.concat(frames)


def pieces_case(repeat=3):
    raw = raw_pieces()
    n = sum(len(p[3]) for p in raw)
    # (MultiIndex frames, the notebooks' layout, take ~10x longer to
    # pd.concat; the flat frames are the stricter baseline.)
    runs = {"lc": [], "flat": []}
    for _ in range(repeat):
        for key, fn in (("flat", lambda: build_frames(raw)),
                        ("lc", lambda: build_lightcurve(raw))):
            t0 = time.perf_counter()
            out = fn()
            runs[key].append(time.perf_counter() - t0)
            assert len(out) == n
    med = {k: float(np.median(v)) for k, v in runs.items()}
    low = {k: min(v) for k, v in runs.items()}
    print(f"4,000 pieces ({n:,} points): from_arrays x 4000 + concat "
          f"min {low['lc']:.2f} s / median {med['lc']:.2f} s; 4000 DataFrames + one "
          f"pd.concat min {low['flat']:.2f} s / median {med['flat']:.2f} s")
    print(f"ratio: min {low['lc'] / low['flat']:.2f}x, median "
          f"{med['lc'] / med['flat']:.2f}x (goal <= 1.5x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="skip the 1M-point legacy run (minutes)")
    parser.add_argument("--pieces-only", action="store_true",
                        help="run only the 4,000-pieces case (issue 12, goal 2)")
    args = parser.parse_args()

    print("== pieces: build 4,000 light curves and concat (goal <= 1.5x one pd.concat)")
    pieces_case()
    if args.pieces_only:
        return

    print("== concat (goal: >= 50x at 200k, >= 100x at 1M)")
    t200, old200, lc200 = compare(500, 50)
    if not args.quick:
        t1m, old1m, lc1m = compare(500, 250)
    else:
        t1m, _, lc1m = compare(500, 250, legacy=False)
    t50, _, _ = compare(50, 50, legacy=False)
    print(f"scaling: 500 targets / 50 targets = {t200 / t50:.1f}x time for 10x targets "
          "(goal <= 12x)")

    print("== memory (goal <= 40 bytes per measurement)")
    print(f"{lc1m.nbytes() / len(lc1m):.1f} bytes per measurement "
          f"({lc1m.nbytes() / 1e6:.1f} MB for {len(lc1m):,} points; legacy frame: "
          f"{legacy_bytes(lc1m) / len(lc1m):.1f} bytes per measurement)")

    print("== to_pandas on 1M points (goal <= 1.5x a bare set_index().sort_index())")
    ds = lc1m.ds
    labels = ds["label"].values[ds["obs_object"].values]
    bands = np.asarray(lc1m.bands, dtype=object)[ds["obs_band"].values]
    flat = {"objectid": lc1m.objectid, "label": labels, "band": bands,
            "time": ds["time"].values, "flux": ds["flux"].values,
            "err": ds["flux_err"].values}

    def bare():
        return pd.DataFrame(flat).set_index(["objectid", "label", "band",
                                             "time"]).sort_index()
    t_bare, _ = timed(bare, repeat=3)
    t_ours, _ = timed(lc1m.to_pandas, repeat=3)
    print(f"to_pandas {t_ours:.3f} s, bare {t_bare:.3f} s, ratio {t_ours / t_bare:.2f}x")

    print("== parquet read of 1M points (goal: >= 0.5x the speed of a bare pyarrow read)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lc.parquet")
        lc1m.write(path)
        t_bare, _ = timed(lambda: pq.read_table(path).to_pandas(), repeat=5)
        t_read, back = timed(MultiBandLightCurve.read, path, repeat=5)
        assert back == lc1m
        print(f"MultiBandLightCurve.read {t_read:.3f} s, pyarrow read_table().to_pandas() "
              f"{t_bare:.3f} s, speed ratio {t_bare / t_read:.2f}x")
        t_arrow, _ = timed(lambda: pq.read_table(path), repeat=5)
        print(f"(pyarrow read_table alone {t_arrow:.3f} s, speed ratio "
              f"{t_arrow / t_read:.2f}x)")


def legacy_bytes(lc):
    df = lc.to_pandas()
    legacy = df.reset_index()
    legacy["band"] = legacy["band"].astype(object)
    legacy["label"] = legacy["label"].astype(object)
    legacy = legacy.set_index(["objectid", "label", "band", "time"])
    return legacy.memory_usage(deep=True, index=True).sum()


if __name__ == "__main__":
    main()
