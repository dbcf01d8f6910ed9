"""The ``multilc`` command.

Exit status: 0 when everything worked; 1 when some archives or targets failed
(the result is still written, with the failure report); 2 for a usage or
input error (one line on stderr naming what was wrong; ``--debug`` adds the
traceback); 3 for an unexpected internal error (a bug: please report it with
the ``--debug`` traceback).

Only the standard library is imported at module level, so that ``multilc
--help`` and ``multilc --version`` start fast; each command imports what it
needs.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import textwrap
import traceback
from pathlib import Path

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

#: Width the listings fit in (``multilc archives``, ``multilc samples``).
WIDTH = 100

#: Which extra installs a module the commands may import (pyproject.toml).
EXTRAS = {
    "matplotlib": "plot", "tqdm": "plot",
    "platformdirs": "archives", "pyvo": "archives", "astroquery": "archives",
    "requests": "archives", "hpgeom": "archives", "fsspec": "archives",
    "aiohttp": "archives",
    "lightkurve": "missions",
    "h5netcdf": "netcdf", "h5py": "netcdf",
    "dask": "dask", "distributed": "dask",
    "werkzeug": "demo",
}

#: File name endings of multilc's own light-curve files.
LC_SUFFIXES = (".parquet", ".pq", ".nc", ".ecsv")


class _UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (``multilc collect: error: ...``)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- argument types
def _radius(text):
    """``1arcsec`` -> a positive angle Quantity."""
    from astropy import units as u

    try:
        q = u.Quantity(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a quantity such as 1arcsec") \
            from exc
    if q.unit == u.dimensionless_unscaled:
        raise argparse.ArgumentTypeError(f"{text!r} has no unit; write e.g. 1arcsec or "
                                         "0.5deg")
    if not q.unit.is_equivalent(u.deg):
        raise argparse.ArgumentTypeError(f"{text!r} is not an angle; write e.g. 1arcsec "
                                         "or 0.5deg")
    if not q.isscalar or not q.value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive angle")
    return q


def _positive(kind):
    def convert(text):
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value
    return convert


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _option(text):
    """``archive.key=value`` -> (archive, key, value) with a Quantity/number/str value."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r} is not ARCHIVE.OPTION=VALUE "
                                         "(e.g. icecube.top_n=3)")
    left, value = text.split("=", 1)
    archive, key = left.rsplit(".", 1)
    return archive, key, _parse_value(value)


def _parse_value(value):
    from astropy import units as u

    lowered = value.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    try:
        q = u.Quantity(value)
        if q.unit != u.dimensionless_unscaled:
            return q
    except (TypeError, ValueError):
        pass
    return value


def _time(text):
    """An MJD number or an ISO date/time -> astropy Time."""
    from astropy.time import Time

    try:
        return Time(float(text), format="mjd", scale="tdb")
    except ValueError:
        pass
    try:
        return Time(text, scale="utc")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an MJD nor a date such as "
                                         "2019-01-31") from exc


# --------------------------------------------------------------------------- parser
def build_parser():
    """The argument parser of the ``multilc`` command."""
    from multilc import __version__

    parser = _Parser(
        prog="multilc",
        description="Collect, inspect and plot multi-archive light curves with units. "
                    "Start with 'multilc demo' (offline, local stand-ins).",
        epilog="Exit status: 0 success, 1 some archives failed (the file is still "
               "written), 2 usage or input error, 3 internal error.")
    parser.add_argument("--version", action="version", version=f"multilc {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, **kwargs):
        p = sub.add_parser(name, **kwargs)
        # after the command too; SUPPRESS keeps a --debug given before it
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of errors")
        return p

    p = command("demo", help="offline demonstration: the real readers against local "
                             "stand-ins serving bundled public data",
                description="Run the real engine and readers end to end against local "
                            "stand-ins (on 127.0.0.1) that serve small bundled subsets of "
                            "real public data (BeppoSAX and Fermi GBM burst lists, IceCube "
                            "IC40 neutrino events) in each archive's format. No network. "
                            "Writes the light-curve file, the report and the figures; all "
                            "say that the data come from local stand-ins.")
    p.add_argument("-o", "--output", default="multilc-demo", metavar="DIR",
                   help="folder for lc.parquet, report.txt and figs/ (default: "
                        "%(default)s)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of an earlier demo in DIR")

    p = command("collect", help="collect light curves of targets from archives",
                description="Collect light curves of TARGETS from archives and "
                            "write them to a file (parquet, .nc or .ecsv).")
    p.add_argument("targets", help="a table file (ECSV/CSV with ra/dec or coord), a "
                                   "literature sample name (see 'multilc samples'), or "
                                   "'example' for the shipped example targets")
    p.add_argument("--archives", default="all",
                   help="comma-separated archive names, or 'all' (see 'multilc archives')")
    p.add_argument("--radius", type=_radius, default=None,
                   help="match radius for every archive that uses one, e.g. 1arcsec "
                        "(default: each archive's own)")
    p.add_argument("-o", "--output", required=True, help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace the output file")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="write each finished batch here; rerunning skips finished batches")
    p.add_argument("--offline", action="store_true", help="use cached responses only")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--cache-dir", metavar="DIR", help="response cache folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--timeout", type=_positive(float), help="seconds per request")
    p.add_argument("--retries", type=_non_negative_int,
                   help="retries of transient failures")
    p.add_argument("--option", action="append", type=_option, default=[],
                   metavar="ARCHIVE.OPTION=VALUE",
                   help="reader option, e.g. icecube.top_n=3 (repeatable)")

    command("archives", help="list the archives and what they return")

    p = command("info", help="summarise a light-curve file: objects, bands, provenance")
    p.add_argument("path")

    p = command("samples", help="list literature samples, or refresh one")
    p.add_argument("action", nargs="?", choices=["list", "refresh"], default="list")
    p.add_argument("name", nargs="?", help="sample name (for refresh)")
    p.add_argument("--long", action="store_true",
                   help="also show each sample's service query and selection rule")

    p = command("plot", help="plot the targets of a light-curve file",
                description="Draw one figure per target of a light-curve file.")
    p.add_argument("path")
    p.add_argument("-o", "--output", required=True,
                   help="a folder (one file per target) or a .pdf file (one page each)")
    p.add_argument("--objects", metavar="ID[,ID...]",
                   help="targets to draw: object ids or names (default: all)")
    p.add_argument("--bands", metavar="BAND[,BAND...]",
                   help="bands to draw, e.g. ztf:g,ztf:r (default: all; events are kept)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--magnitudes", action="store_true",
                       help="AB magnitudes instead of flux densities")
    scale.add_argument("--flux", action="store_true",
                       help="flux densities (the default)")
    p.add_argument("--flux-unit", default="mJy", help="flux density unit (default mJy)")
    p.add_argument("--start", type=_time, help="start of the time range (MJD or date)")
    p.add_argument("--stop", type=_time, help="end of the time range (MJD or date)")
    p.add_argument("--format", choices=["png", "pdf", "svg"], default=None,
                   help="figure format (default: pdf when OUTPUT ends in .pdf, else png)")
    p.add_argument("--no-progress", action="store_true")
    return parser


# --------------------------------------------------------------------------- helpers
def _out(text=""):
    print(text)


def _err(text):
    print(text, file=sys.stderr)


def _missing_module_message(exc, command):
    name = getattr(exc, "name", None) or getattr(exc.__cause__, "name", None) or ""
    name = name.split(".")[0]
    extra = EXTRAS.get(name)
    if not name:
        return str(exc)
    if extra is None:
        return f"multilc {command} needs {name}, which is not installed: pip install {name}"
    return (f"multilc {command} needs {name}, which is not installed: "
            f"pip install \"multilc[{extra}]\"")


@contextlib.contextmanager
def _user_errors(prefix=""):
    """Turn the errors that bad input raises into a one-line usage error."""
    from astropy import units as u

    try:
        yield
    except (_UsageError, ImportError):
        raise
    except (ValueError, TypeError, KeyError, u.UnitsError) as exc:
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        text = _short_network_error(text.strip())
        raise _UsageError(f"{prefix}{text}" if prefix else text) from exc


def _short_network_error(text):
    """A requests/urllib3 name-resolution error as "cannot resolve HOST: no network?"."""
    import re

    said = re.search(r"cannot resolve (\S+): no network\?", text)
    if said:  # the engine's own words: keep just them
        return said.group(0)
    if any(s in text for s in ("NameResolutionError", "Failed to resolve",
                               "Name or service not known",
                               "Temporary failure in name resolution")):
        host = re.search(r"host='([^']+)'", text) or re.search(r"resolve '([^']+)'", text)
        return f"cannot resolve {host.group(1) if host else 'the server'}: no network?"
    return text


class _HoldWarnings(logging.Filter):
    """Hold back multilc's log warnings during a run (printed once afterwards)."""

    def __init__(self):
        super().__init__()
        self.held = []

    def filter(self, record):
        origin = str(getattr(record, "origin", "") or record.name)
        if record.levelno >= logging.WARNING and origin.startswith("multilc"):
            self.held.append(record.getMessage())
            return False
        return True


@contextlib.contextmanager
def _held_log_warnings():
    from astropy import log

    hold = _HoldWarnings()
    log.addFilter(hold)
    try:
        yield hold.held
    finally:
        log.removeFilter(hold)


def _print_unreported(held, report):
    """Print held warnings that the failure report does not already say."""
    said = [f"{f.archive}: {f.message}" for f in getattr(report, "failures", [])] + \
        [f.message for f in getattr(report, "failures", [])]
    seen = set()
    for message in held:
        if message in seen or any(message in s or s in message for s in said if s):
            continue
        seen.add(message)
        _err(f"warning: {message}")


def _report_text(report):
    """The report's summary, with name-resolution failures said in one short line."""
    import re

    lines = []
    for line in report.summary().splitlines():
        found = re.match(r"^(\s*\[[^\]]+\] )", line)
        short = _short_network_error(line)
        missing = re.search(r"No module named '([A-Za-z0-9_]+)", line) or \
            re.search(r"import of ([A-Za-z0-9_]+) halted", line)
        if found and missing:
            name = missing.group(1)
            extra = EXTRAS.get(name)
            hint = f'pip install "multilc[{extra}]"' if extra else f"pip install {name}"
            short = f"needs {name}, which is not installed: {hint}"
        lines.append(found.group(1) + short if found and short != line else line)
    return "\n".join(lines)


def _read_lc(path, command):
    """Read one of multilc's files, or raise a one-line usage error."""
    from multilc.errors import MissingDependencyError

    path = Path(path)
    if not path.exists():
        raise _UsageError(f"no such file: {path}")
    if path.is_dir():
        raise _UsageError(f"{path} is a folder, not a light-curve file")
    if not path.name.lower().endswith(LC_SUFFIXES) and not _has_lc_magic(path):
        raise _UsageError(f"{path} is not a multilc light-curve file: give a .parquet, .nc "
                          "or .ecsv file written by multilc")
    from multilc import MultiBandLightCurve

    try:
        return MultiBandLightCurve.read(path)
    except (MissingDependencyError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read is the file's fault
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _UsageError(f"cannot read {path} as a multilc light curve: {first}") from exc


#: First bytes of the formats multilc writes: parquet ("PAR1", Apache Parquet
#: file format), netCDF-4/HDF5 (HDF5 format signature), ECSV ("# %ECSV",
#: ECSV 1.0 specification).
_MAGIC = (b"PAR1", b"\x89HDF\r\n\x1a\n", b"# %ECSV")


def _has_lc_magic(path):
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith(_MAGIC)


def _demo_stamp(path):
    """The demo note stored in *path*'s parquet metadata, or None."""
    if not str(path).lower().endswith((".parquet", ".pq")):
        return None
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - no stamp to show
        return None
    value = meta.get(_DEMO_KEY)
    return value.decode() if value else None


_DEMO_KEY = b"multilc.demo"


def _stamp_demo(path, note):
    """Add the demo note to the key-value metadata of the parquet file *path*."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = dict(table.schema.metadata or {})
    meta[_DEMO_KEY] = note.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


# --------------------------------------------------------------------------- commands
def _cmd_collect(args):
    import multilc
    from multilc.samples import as_sample

    if Path(args.output).exists() and not args.overwrite:
        raise _UsageError(f"{args.output} exists; pass --overwrite to replace it")
    if not Path(args.output).name.lower().endswith(LC_SUFFIXES):
        raise _UsageError(f"output {args.output!r}: give a .parquet, .nc or .ecsv file name")
    folder = Path(args.output).parent
    if not folder.is_dir():
        raise _UsageError(f"output folder {folder} does not exist")
    with _user_errors(f"cannot read targets {args.targets!r}: "):
        targets = as_sample(args.targets)
    options = {}
    for archive, key, value in args.option:
        options.setdefault(archive, {})[key] = value
    with _user_errors(), _held_log_warnings() as held:
        lc = multilc.collect(
            targets, archives=args.archives, radius=args.radius, options=options,
            cache=False if args.no_cache else None, cache_dir=args.cache_dir,
            offline=args.offline or None, checkpoint=args.checkpoint,
            progress=False if args.no_progress else None, timeout=args.timeout,
            retries=args.retries)
    _print_unreported(held, lc.report)
    lc.write(args.output, overwrite=True)
    _out(lc.summary())
    _out(_report_text(lc.report))
    _out(f"wrote {args.output}")
    return EXIT_PARTIAL if lc.report.failures else EXIT_OK


def _cmd_demo(args):
    from multilc.errors import require

    require("werkzeug", "demo", "multilc demo")
    require("pyvo", "demo", "multilc demo")
    if not args.no_figures:
        require("matplotlib", "demo", "multilc demo")
    import multilc
    from multilc.testing.demo_services import DEMO_ARCHIVES, DEMO_NOTE, demo_services

    out = Path(args.output)
    lc_path, report_path, figs = out / "lc.parquet", out / "report.txt", out / "figs"
    if lc_path.exists() and not args.overwrite:
        raise _UsageError(f"{lc_path} exists (an earlier demo?); pass --overwrite or "
                          "another -o folder")
    out.mkdir(parents=True, exist_ok=True)
    banner = ("=" * 78 + "\n" + textwrap.fill(DEMO_NOTE, 78) + "\n" + "=" * 78)
    _out(banner)
    _out(f"collecting the {len(DEMO_ARCHIVES)} demo archives ({', '.join(DEMO_ARCHIVES)}) "
         "for the 7 example targets ...")
    with demo_services() as services, _held_log_warnings() as held:
        lc = multilc.collect("example", archives=list(DEMO_ARCHIVES), progress=False,
                             retries=1, timeout=60)
        n_requests = services["server"].count()
    _print_unreported(held, lc.report)
    if hasattr(type(lc), "meta"):  # provenance kept by every file format
        lc.meta = {**dict(lc.meta or {}), "demo": DEMO_NOTE}
    lc.write(lc_path, overwrite=True)
    _stamp_demo(lc_path, DEMO_NOTE)
    summary = lc.summary()
    report = _report_text(lc.report)
    text = "\n".join([DEMO_NOTE, "", summary, "", report, "",
                      f"{n_requests} HTTP requests answered by the local stand-ins",
                      _DEMO_DATA_NOTE])
    report_path.write_text(text + "\n")
    _out(summary)
    _out(report)
    _out(f"{n_requests} HTTP requests answered by the local stand-ins on 127.0.0.1")
    _out(textwrap.fill(_DEMO_DATA_NOTE, 78))
    _out(f"wrote {lc_path} and {report_path} (demo data, marked as such)")
    if not args.no_figures:
        from multilc.plotting import plot_all

        with warnings_as_lines():
            written = plot_all(lc, figs, progress=False)
        (figs / "DEMO-DATA.txt").write_text(DEMO_NOTE + "\n")
        _out(f"wrote {len(written)} figures to {figs}/ (demo data)")
    _out("next: multilc info " + str(lc_path) + "   |   the live command: see README.md")
    _out(banner)
    return EXIT_PARTIAL if lc.report.failures else EXIT_OK


_DEMO_DATA_NOTE = (
    "Data: multilc/data/demo/SOURCES. heasarc.fermi_gbm is answered from an export of "
    "the Fermi GBM burst catalog (FERMIGBRST), heasarc.bepposax from one of SAXGRBMGRB, "
    "icecube from events of the IC40 season near the example targets. The burst lists "
    "have no error radii: the stand-in gives BeppoSAX bursts 2 deg and Fermi GBM bursts "
    "1 deg.")


@contextlib.contextmanager
def warnings_as_lines():
    """Show Python warnings as one ``warning: ...`` line each (no source lines)."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        _err(f"warning: {message}")

    old = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = old


def _uses_radius(cls):
    """Whether an archive matches targets within a radius (events use error circles)."""
    explicit = getattr(cls, "uses_radius", None)
    if explicit is not None:
        return bool(explicit)
    return cls.returns != "events"


def _cmd_archives(args):
    from multilc.collect import ARCHIVES
    from multilc.collect.engine import _load_archive_modules

    _load_archive_modules()
    width = max((len(n) for n in ARCHIVES), default=10)
    indent = " " * (width + 2)
    for name in sorted(ARCHIVES):
        cls = ARCHIVES[name]
        _out(textwrap.fill(f"{name:<{width}}  {cls.description} [{cls.returns}]",
                           WIDTH, subsequent_indent=indent))
        bands = ", ".join(cls.bands) if cls.bands else "any filter the archive has"
        what = "events" if cls.returns == "events" else "bands"
        n = int(cls.chunk_size)
        per = "1 target per request" if n == 1 else f"up to {n:,} targets per request"
        if _uses_radius(cls):
            match = f"match radius {cls.default_radius:g} (--radius changes it)"
        else:
            match = "matches each event's own error circle (no match radius)"
        extra = "" if getattr(cls, "in_all", True) else "; not part of 'all'"
        _out(textwrap.fill(f"{what}: {bands}; {match}; {per}{extra}", WIDTH,
                           initial_indent=indent, subsequent_indent=indent))
    return EXIT_OK


def _object_rows(lc):
    """Per object: id, name, label, bands, points, events, time span (MJD)."""
    import numpy as np

    ds = lc.ds
    oids = lc.objectids
    names = None
    for var in ("name", "object_name"):
        if var in ds:
            names = [str(x) for x in ds[var].values]
            break
    labels = [str(x) for x in ds["label"].values]
    obs_obj = ds["obs_object"].values
    obs_band = ds["obs_band"].values
    times = ds["time"].values
    ev_obj = ds["event_object"].values
    ev_time = ds["event_time"].values
    ev_arch = ds["event_archive"].values
    bands = np.asarray(lc.bands, dtype=object)
    rows = []
    for k, oid in enumerate(oids):
        sel = obs_obj == k
        esel = ev_obj == k
        got = sorted(set(bands[np.unique(obs_band[sel])].tolist()) |
                     set(str(a) for a in ev_arch[esel]))
        t = np.r_[times[sel], ev_time[esel]]
        span = f"{t.min():.1f}-{t.max():.1f}" if len(t) else "-"
        rows.append((int(oid), names[k] if names else "", labels[k], ", ".join(got) or "-",
                     int(sel.sum()), int(esel.sum()), span))
    return rows


def _print_provenance(lc, path):
    stamp = _demo_stamp(path)
    if stamp:
        _out("")
        _out(textwrap.fill(stamp, WIDTH))
    meta = getattr(lc, "meta", None)
    if meta:
        _out("")
        _out("provenance:")
        for key, value in meta.items():
            if key in ("objects", "bands", "events") or (key == "demo" and stamp):
                continue
            text = value if isinstance(value, str) else repr(value)
            _out(textwrap.fill(f"{key}: {text}", WIDTH, initial_indent="  ",
                               subsequent_indent="      "))
    report = getattr(lc, "report", None)
    if report is not None and hasattr(report, "summary"):
        text = _report_text(report)
        if text:
            _out("")
            _out("collection report:")
            for line in text.splitlines():
                _out("  " + line)


def _cmd_info(args):
    lc = _read_lc(args.path, "info")
    _out(lc.summary())
    rows = _object_rows(lc)
    if rows:
        _out("")
        has_names = any(r[1] for r in rows)
        head = ("objectid", "name", "label", "bands/events", "points", "events",
                "MJD span") if has_names else ("objectid", "label", "bands/events",
                                                "points", "events", "MJD span")
        table = [tuple(str(x) for x in (r if has_names else r[:1] + r[2:])) for r in rows]
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head)]
        # keep to WIDTH columns: the band list is the one that gives way
        band_col = head.index("bands/events")
        spare = WIDTH - (sum(widths) + 2 * (len(widths) - 1) - widths[band_col])
        widths[band_col] = max(len(head[band_col]), min(widths[band_col], spare))

        def fmt(row):
            cells = []
            for i, cell in enumerate(row):
                if len(cell) > widths[i]:
                    cell = cell[:widths[i] - 3] + "..."
                cells.append(cell.rjust(widths[i]) if head[i] in ("objectid", "points",
                                                                  "events") else
                             cell.ljust(widths[i]))
            return "  ".join(cells).rstrip()
        _out(fmt(head))
        for row in table:
            _out(fmt(row))
    _print_provenance(lc, args.path)
    return EXIT_OK


def _cmd_samples(args):
    from multilc import samples

    if args.action == "refresh":
        if not args.name:
            raise _UsageError("give a sample name: multilc samples refresh NAME "
                              "(see 'multilc samples')")
        known = [str(n) for n in samples.list_samples()["name"]]
        if args.name not in known:
            raise _UsageError(f"unknown sample {args.name!r}; known: {', '.join(known)}")
        with _user_errors(f"cannot refresh {args.name}: "):
            try:
                sample, differences = samples.refresh_sample(args.name)
            except OSError as exc:  # network trouble below the sample fetchers
                raise ValueError(f"{exc} (no network?)") from exc
        _out(f"{args.name}: {len(sample)} objects")
        if len(differences):
            differences.pprint_all()
        else:
            _out("no change from the cached copy (or none was cached)")
        return EXIT_OK
    if args.name:
        raise _UsageError("a sample name goes with 'refresh': multilc samples refresh NAME")
    table = samples.list_samples()
    rows = []
    for row in table:
        n = int(row["n_cached"])
        cached = f"{n} objects" if n >= 0 and bool(row["cached"]) else "not cached"
        rows.append((str(row["name"]), str(row["label"]), str(row["bibcode"]),
                     str(row["service"]), cached))
    head = ("name", "label", "bibcode", "service", "cached")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    _out("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for k, r in enumerate(rows):
        _out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if args.long:
            entry = table[k]
            _out(textwrap.fill(f"query: {entry['query']}", WIDTH, initial_indent="    ",
                               subsequent_indent="      "))
            _out(textwrap.fill(f"rule: {entry['rule']}", WIDTH, initial_indent="    ",
                               subsequent_indent="      "))
    _out("'multilc samples refresh NAME' fetches one again; --long shows how each is "
         "selected")
    return EXIT_OK


def _pick_objects(lc, text):
    """``--objects 1,3,Mrk 590`` -> object ids (names matched if the file has them)."""
    import numpy as np

    ids = [int(x) for x in lc.objectids]
    names = {}
    for var in ("name", "object_name"):
        if var in lc.ds:
            names = {str(n): int(o) for n, o in zip(lc.ds[var].values, lc.objectids)}
            break
    wanted = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in names:
            wanted.append(names[part])
            continue
        try:
            oid = int(part)
        except ValueError:
            raise _UsageError(f"--objects: no object named {part!r} in the file") from None
        if oid not in ids:
            shown = ", ".join(str(i) for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
            raise _UsageError(f"--objects: no object {oid} in the file (it has {shown})")
        wanted.append(oid)
    return np.unique(wanted)


def _cmd_plot(args):
    from multilc.errors import require

    require("matplotlib", "plot", "multilc plot")
    lc = _read_lc(args.path, "plot")
    out = Path(args.output)
    fmt = args.format or ("pdf" if out.suffix.lower() == ".pdf" else "png")
    if fmt == "pdf" and out.suffix.lower() != ".pdf":
        out = out / "lightcurves.pdf"
    if fmt != "pdf" and out.suffix.lower() == ".pdf":
        raise _UsageError(f"-o {out} ends in .pdf but --format is {fmt}")
    if args.objects:
        lc = lc.select(objectid=_pick_objects(lc, args.objects))
    if not len(lc) and not lc.n_events:
        raise _UsageError(f"nothing to plot: {args.path} holds no measurements or events "
                          f"({len(lc.objectids)} targets; did every archive fail? see "
                          f"'multilc info {args.path}')")
    kwargs = {"magnitudes": bool(args.magnitudes), "flux_unit": args.flux_unit}
    if args.bands:
        bands = [b.strip() for b in args.bands.split(",") if b.strip()]
        unknown = sorted(set(bands) - set(lc.bands))
        if unknown:
            raise _UsageError(f"--bands: {', '.join(unknown)} not in the file (it has "
                              f"{', '.join(lc.bands) or 'no bands, only events'})")
        kwargs["bands"] = bands
    if args.start is not None or args.stop is not None:
        from astropy.time import Time

        start = args.start if args.start is not None else Time(-1e5, format="mjd")
        stop = args.stop if args.stop is not None else Time(1e6, format="mjd")
        if stop <= start:
            raise _UsageError("--stop must be after --start")
        kwargs["time_range"] = Time([start.tdb.mjd, stop.tdb.mjd], format="mjd",
                                    scale="tdb")
    from multilc.plotting import plot_all

    progress = not args.no_progress and sys.stderr.isatty()
    with _user_errors(), warnings_as_lines():
        if fmt in ("png", "pdf"):
            written = plot_all(lc, out, progress=progress, **kwargs)
        else:
            written = _plot_each(lc, out, fmt, kwargs)
    if fmt == "pdf":
        _out(f"wrote {len(lc.objectids)} figures to {out}" if written else
             "wrote no figures: nothing to draw in the chosen bands and time range")
    else:
        _out(f"wrote {len(written)} figures to {out}/")
    return EXIT_OK if written else EXIT_USAGE


def _plot_each(lc, folder, fmt, kwargs):
    """One file per target in *fmt* (formats plot_all does not write)."""
    import re
    import warnings

    from matplotlib.figure import Figure

    from multilc.plotting import PlotError, plot

    folder.mkdir(parents=True, exist_ok=True)
    labels = lc.labels
    written, skipped = [], []
    for oid, one in lc:
        fig = Figure()
        try:
            plot(one, oid, fig=fig, **kwargs)
        except PlotError as exc:
            skipped.append(f"{oid}: {exc}")
            continue
        stem = re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{oid}_{labels[oid]}").strip("_")
        path = folder / f"{stem}.{fmt}"
        fig.savefig(path)
        written.append(path)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} targets with nothing to draw: "
                      + "; ".join(skipped[:5]), stacklevel=2)
    return written


_COMMANDS = {"demo": _cmd_demo, "collect": _cmd_collect, "archives": _cmd_archives,
             "info": _cmd_info, "samples": _cmd_samples, "plot": _cmd_plot}


# --------------------------------------------------------------------------- main
def _classify(exc, command):
    """(exit status, one-line message) for an exception, or None for a bug."""
    from multilc.errors import MultilcError

    if isinstance(exc, _UsageError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ImportError) and not isinstance(exc, MultilcError):
        return EXIT_USAGE, _missing_module_message(exc, command)
    if isinstance(exc, MultilcError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (FileExistsError, FileNotFoundError, PermissionError,
                        IsADirectoryError, NotADirectoryError)):
        return EXIT_USAGE, str(exc)
    return None


def main(argv=None):
    """Entry point of the ``multilc`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or usage error (2)
        return int(exc.code or 0)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _err(f"multilc {args.command}: interrupted")
        return 130
    except BrokenPipeError:  # `multilc archives | head`: stop quietly
        import os

        with contextlib.suppress(Exception):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the command line boundary
        if args.debug:
            traceback.print_exc()
        found = _classify(exc, args.command)
        if found is None:
            first = (str(exc).strip().splitlines() or [""])[0]
            _err(f"multilc {args.command}: internal error: {type(exc).__name__}: {first}"
                 + ("" if args.debug else " (a bug? run again with --debug and report "
                    "the traceback)"))
            return EXIT_INTERNAL
        code, message = found
        _err(f"multilc {args.command}: error: {message}")
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
