"""Write the CSV files that the local DaCHS TAP server loads (tap_server test tier).

The tables copy the schemas of the archive tables multilc queries:

* ``heasarc.fermigtrig``, ``heasarc.saxgrbmgrb``, ``heasarc.icecubepsc``
  (HEASARC TAP, https://heasarc.gsfc.nasa.gov/xamin/vo/tap), and
* ``gaiadr3.gaia_source`` / ``gaiadr3.gaia_source_lite`` (ESA Gaia archive TAP).

Real values are read at run time from the repository's test data
(``$MULTILC_SHARED_DIR``, default ``<repo>/tests/data``: small cited subsets
of the public files, see tests/data/SOURCES.md).  Values that the shared files lack are generated
deterministically (fixed seeds below), in the real units and realistic ranges.

Usage::

    python .ci/dachs/make_tables.py OUT_DIR

writes ``OUT_DIR/heasarc/data/*.csv`` and ``OUT_DIR/gaiadr3/data/*.csv``
(``OUT_DIR`` is normally the DaCHS inputs directory, ``/var/gavo/inputs``),
plus ``OUT_DIR/multilc_tables.json`` listing row counts and seeds.
"""
import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]

# Seeds of the generated columns.  Changing one changes the loaded tables; the
# tests read the written CSV files, so they follow automatically.
SEED_FERMI_ERROR_RADIUS = 20080711   # Fermi GBM trigger enabled 2008-07-12
SEED_SAX_ERROR_RADIUS = 19960723     # first BeppoSAX GRBM GRB in the sample
SEED_GAIA = 20220613                 # Gaia DR3 release date

# Error-radius ranges (deg) of the generated, log-uniform error circles.  The
# shared HEASARC exports have no error_radius column (archive_samples/SOURCES.md).
# Fermi GBM: statistical+systematic location errors reach ~15 deg, and bursts
# localised by other instruments carry much smaller radii
# (https://gcn.gsfc.nasa.gov/fermi.html: "GBM location uncertainties range from
# 5-15deg (1 sigma)").  BeppoSAX GRBM/WFC/IPN positions: arcminutes to degrees.
FERMI_ERROR_RADIUS_DEG = (0.02, 15.0)
SAX_ERROR_RADIUS_DEG = (0.05, 6.0)

# Gaia DR3 reference epoch of positions and proper motions: J2016.0 (Gaia DR3
# documentation, gaia_source.ref_epoch).
GAIA_DR3_REF_EPOCH_YR = 2016.0
# Gaia source_id = HEALPix level-12 nested index * 2**35 + a running number
# (Gaia DR3 documentation, gaia_source.source_id).
GAIA_SOURCE_ID_HEALPIX_FACTOR = 2**35
GAIA_HEALPIX_NSIDE = 2**12


class SharedDataMissing(RuntimeError):
    """The shared folder or one of its files is absent."""


def shared_dir():
    """Return the shared folder, failing loudly when it is absent."""
    env = os.environ.get("MULTILC_SHARED_DIR")
    # The same small real files the tests compare with (tests/data, cited in
    # tests/data/SOURCES.md), so that the server and the tests agree.
    path = Path(env) if env else REPO_ROOT / "tests" / "data"
    if not path.is_dir():
        raise SharedDataMissing(
            f"tap_server tables: shared folder not found at {path}; set "
            "MULTILC_SHARED_DIR to the project's shared/ folder (it holds the real "
            "HEASARC/IceCube sample files the tables are made from)")
    return path


def _require(path):
    if not path.is_file():
        raise SharedDataMissing(f"tap_server tables: required shared file missing: {path}")
    return path


def _float_or_none(text):
    text = text.strip()
    return float(text) if text else None


def _log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(math.log(low), math.log(high), size))


def _fmt(value, digits):
    """Format a float for CSV; None (SQL NULL) becomes an empty field."""
    if value is None:
        return ""
    return f"{value:.{digits}f}"


def _write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def read_heasarc_export(path):
    """Read one of the shared HEASARC CSV exports (``name,ra,dec,time,fluence``)."""
    with _require(path).open(newline="") as stream:
        reader = csv.DictReader(stream)
        expected = {"name", "ra", "dec", "time", "fluence"}
        if not expected <= set(reader.fieldnames or ()):
            raise SharedDataMissing(
                f"tap_server tables: {path} lacks columns {expected - set(reader.fieldnames)}")
        rows = []
        for row in reader:
            # keep the exact text of every value (no re-rounding); parse only
            # to check that it is a number or empty (SQL NULL)
            for key in ("ra", "dec", "time", "fluence"):
                row[key] = row[key].strip()
                _float_or_none(row[key])
            row["name"] = row["name"].strip()
            rows.append(row)
        return rows


def make_fermigtrig(shared, out):
    """FERMIGTRIG rows from the GBM *burst* catalog export (fermigbrst.csv).

    The shared folder has no trigger-catalog export; every burst is also a
    trigger (HEASARC FERMIGTRIG description: "a burst will be found in both the
    Trigger and Burst Catalogs"), so the burst rows are a real subset of
    FERMIGTRIG with trigger_type 'GRB'.  name, ra, dec and time are the real
    values; trigger_name follows the documented scheme bnyymmddfff for a name
    GRByymmddfff; error_radius is generated (see FERMI_ERROR_RADIUS_DEG);
    reliability is not in the export and is left NULL.
    """
    rows = read_heasarc_export(shared / "archive_samples" / "heasarc" / "fermigbrst.csv")
    rng = np.random.default_rng(SEED_FERMI_ERROR_RADIUS)
    radii = _log_uniform(rng, *FERMI_ERROR_RADIUS_DEG, len(rows))
    table = []
    for row, radius in zip(rows, radii):
        name = row["name"]
        trigger_name = "bn" + name[3:] if name.startswith("GRB") else ""
        has_position = bool(row["ra"] and row["dec"])
        table.append([
            name, trigger_name, row["ra"], row["dec"],
            _fmt(float(radius) if has_position else None, 4),
            row["time"], "GRB", "",
        ])
    header = ["name", "trigger_name", "ra", "dec", "error_radius", "time",
              "trigger_type", "reliability"]
    return _write_csv(out / "heasarc" / "data" / "fermigtrig.csv", header, table)


def make_saxgrbmgrb(shared, out):
    """SAXGRBMGRB rows: all 1,082 real GRBs (name, ra, dec, time, fluence).

    Rows without a localisation keep NULL ra/dec/error_radius (245 rows); a
    reader must skip them.  error_radius is generated (SAX_ERROR_RADIUS_DEG).
    """
    rows = read_heasarc_export(shared / "archive_samples" / "heasarc" / "saxgrbmgrb.csv")
    rng = np.random.default_rng(SEED_SAX_ERROR_RADIUS)
    radii = _log_uniform(rng, *SAX_ERROR_RADIUS_DEG, len(rows))
    table = []
    for row, radius in zip(rows, radii):
        has_position = bool(row["ra"] and row["dec"])
        table.append([
            row["name"], row["ra"], row["dec"],
            _fmt(float(radius) if has_position else None, 4),
            row["time"], row["fluence"],
        ])
    header = ["name", "ra", "dec", "error_radius", "time", "fluence"]
    return _write_csv(out / "heasarc" / "data" / "saxgrbmgrb.csv", header, table)


def make_icecubepsc(shared, out):
    """ICECUBEPSC rows: every event of the real IC40 season file.

    Release columns ``MJD[days] log10(E/GeV) AngErr[deg] RA[deg] Dec[deg] ...``
    map to HEASARC's ``time`` (MJD), ``event_energy`` (GeV, = 10**log10(E/GeV)),
    ``error_radius`` (deg), ``ra``, ``dec`` (deg).  event_energy keeps 6
    significant digits, more than the 2 decimals of log10(E) in the release.
    """
    path = _require(shared / "archive_samples" / "icecube" / "events" / "IC40_exp.csv")
    table = []
    with path.open() as stream:
        for line in stream:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            if len(fields) != 7:
                raise SharedDataMissing(
                    f"tap_server tables: unexpected line in {path}: {line!r}")
            mjd, log_e, ang_err, ra, dec = fields[:5]
            # exact release text for time, error_radius, ra, dec
            table.append([mjd, f"{10.0 ** float(log_e):.6g}", ang_err, ra, dec])
    header = ["time", "event_energy", "error_radius", "ra", "dec"]
    return _write_csv(out / "heasarc" / "data" / "icecubepsc.csv", header, table)


def read_targets(shared):
    """Target positions (deg) of samples/yang_18.csv."""
    path = _require(shared / "samples" / "yang_18.csv")
    with path.open(newline="") as stream:
        return [(float(r["ra_deg"]), float(r["dec_deg"])) for r in csv.DictReader(stream)]


def _offset(ra, dec, sep_deg, pa_deg):
    """Position at separation ``sep_deg`` and position angle ``pa_deg`` (deg).

    Spherical direct problem (great-circle offset), exact at any separation.
    """
    ra1, dec1 = np.radians(ra), np.radians(dec)
    sep, pa = np.radians(sep_deg), np.radians(pa_deg)
    dec2 = np.arcsin(np.sin(dec1) * np.cos(sep) + np.cos(dec1) * np.sin(sep) * np.cos(pa))
    ra2 = ra1 + np.arctan2(np.sin(pa) * np.sin(sep) * np.cos(dec1),
                           np.cos(sep) - np.sin(dec1) * np.sin(dec2))
    return np.degrees(ra2) % 360.0, np.degrees(dec2)


def make_gaia_source(shared, out, n_random=2000, n_neighbours=20):
    """gaia_source rows in the real DR3 columns, types and units.

    For every yang_18 target: one counterpart within 0.3 arcsec and
    ``n_neighbours`` stars within 60 arcsec; plus ``n_random`` sources spread
    over the sky.  Values are generated (seed SEED_GAIA): the shared folder has
    no gaia_source extract.
    """
    try:
        import hpgeom
    except ImportError as exc:  # pragma: no cover - environment problem
        raise SystemExit("tap_server tables: hpgeom is needed for Gaia source_id "
                         f"(pip install hpgeom): {exc}") from exc
    rng = np.random.default_rng(SEED_GAIA)
    targets = read_targets(shared)
    ra, dec, kind = [], [], []
    for t_ra, t_dec in targets:
        c_ra, c_dec = _offset(t_ra, t_dec, rng.uniform(0.0, 0.3) / 3600.0, rng.uniform(0, 360))
        ra.append(c_ra)
        dec.append(c_dec)
        kind.append("counterpart")
        sep = rng.uniform(2.0, 60.0, n_neighbours) / 3600.0
        n_ra, n_dec = _offset(t_ra, t_dec, sep, rng.uniform(0, 360, n_neighbours))
        ra.extend(n_ra)
        dec.extend(n_dec)
        kind.extend(["neighbour"] * n_neighbours)
    ra.extend(rng.uniform(0.0, 360.0, n_random))
    # uniform on the sphere: sin(dec) uniform
    dec.extend(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_random))))
    kind.extend(["random"] * n_random)
    ra, dec, kind = np.asarray(ra), np.asarray(dec), np.asarray(kind)
    n = len(ra)

    pixels = hpgeom.angle_to_pixel(GAIA_HEALPIX_NSIDE, ra, dec, nest=True)
    running = {}
    source_id = []
    for pix in pixels:
        running[int(pix)] = running.get(int(pix), 0) + 1
        source_id.append(int(pix) * GAIA_SOURCE_ID_HEALPIX_FACTOR + running[int(pix)])

    is_agn = kind == "counterpart"
    # AGN: parallax ~0 and proper motion ~0 within DR3-like errors; stars: a few mas.
    parallax = np.where(is_agn, rng.normal(0.0, 0.3, n), rng.uniform(0.05, 5.0, n))
    pmra = np.where(is_agn, rng.normal(0.0, 0.3, n), rng.normal(0.0, 8.0, n))
    pmdec = np.where(is_agn, rng.normal(0.0, 0.3, n), rng.normal(-3.0, 8.0, n))
    g_mag = np.where(is_agn, rng.uniform(17.0, 20.5, n), rng.uniform(12.0, 21.0, n))
    # Gaia DR3 published epoch photometry for about 11.7 million sources; make it
    # common among the counterparts so readers have something to fetch.
    has_epoch = np.where(is_agn, rng.random(n) < 0.7, rng.random(n) < 0.05)
    # About a fifth of DR3 sources are 2-parameter solutions without parallax
    # and proper motion: leave some NULL so readers meet them.
    two_param = (~is_agn) & (rng.random(n) < 0.2)

    table = []
    for i in range(n):
        astrometry = [None, None, None] if two_param[i] else [parallax[i], pmra[i], pmdec[i]]
        table.append([
            source_id[i], _fmt(ra[i], 10), _fmt(dec[i], 10),
            *(_fmt(v, 6) for v in astrometry),
            _fmt(g_mag[i], 6), _fmt(GAIA_DR3_REF_EPOCH_YR, 1),
            "true" if has_epoch[i] else "false",
        ])
    header = ["source_id", "ra", "dec", "parallax", "pmra", "pmdec",
              "phot_g_mean_mag", "ref_epoch", "has_epoch_photometry"]
    return _write_csv(out / "gaiadr3" / "data" / "gaia_source.csv", header, table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path,
                        help="folder receiving heasarc/data and gaiadr3/data")
    args = parser.parse_args(argv)
    try:
        shared = shared_dir()
        counts = {
            "heasarc.fermigtrig": make_fermigtrig(shared, args.out_dir),
            "heasarc.saxgrbmgrb": make_saxgrbmgrb(shared, args.out_dir),
            "heasarc.icecubepsc": make_icecubepsc(shared, args.out_dir),
            "gaiadr3.gaia_source": make_gaia_source(shared, args.out_dir),
        }
    except SharedDataMissing as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    manifest = {
        "shared_dir": str(shared),
        "rows": counts,
        "seeds": {
            "fermigtrig.error_radius": SEED_FERMI_ERROR_RADIUS,
            "saxgrbmgrb.error_radius": SEED_SAX_ERROR_RADIUS,
            "gaia_source": SEED_GAIA,
        },
    }
    (args.out_dir / "multilc_tables.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for table, count in counts.items():
        print(f"  {table}: {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
