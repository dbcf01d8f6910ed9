"""The ``multilc`` command.

Exit status: 0 when everything worked, 1 when some archives or targets failed
(the result is still written), 2 for usage errors.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


class _UsageError(Exception):
    pass


def _quantity(text):
    from astropy import units as u

    try:
        q = u.Quantity(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a quantity such as 1arcsec") \
            from exc
    if q.unit == u.dimensionless_unscaled:
        raise argparse.ArgumentTypeError(f"{text!r} has no unit; write e.g. 1arcsec or "
                                         "0.5deg")
    return q


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="multilc",
        description="Collect, inspect and plot multi-archive light curves with units.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("collect", help="collect light curves of targets from archives",
                       description="Collect light curves of TARGETS from archives and "
                                   "write them to a file (parquet, .nc or .ecsv).")
    p.add_argument("targets", help="a table file (ECSV/CSV with ra/dec or coord), a "
                                   "literature sample name (see 'multilc samples'), or "
                                   "'example' for the shipped example targets")
    p.add_argument("--archives", default="all",
                   help="comma-separated archive names, or 'all' (see 'multilc archives')")
    p.add_argument("--radius", type=_quantity, default=None,
                   help="match radius for every archive, e.g. 1arcsec (default: each "
                        "archive's own)")
    p.add_argument("-o", "--output", required=True, help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace the output file")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="write each finished batch here; rerunning skips finished batches")
    p.add_argument("--offline", action="store_true", help="use cached responses only")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--cache-dir", metavar="DIR", help="response cache folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--timeout", type=float, help="seconds per request")
    p.add_argument("--retries", type=int, help="retries of transient failures")
    p.add_argument("--option", action="append", type=_option, default=[],
                   metavar="ARCHIVE.OPTION=VALUE",
                   help="reader option, e.g. icecube.top_n=3 (repeatable)")

    p = sub.add_parser("archives", help="list the archives and what they return")
    p.set_defaults()

    p = sub.add_parser("info", help="summarise a light-curve file")
    p.add_argument("path")

    p = sub.add_parser("samples", help="list literature samples, or refresh one")
    p.add_argument("action", nargs="?", choices=["list", "refresh"], default="list")
    p.add_argument("name", nargs="?", help="sample name (for refresh)")

    p = sub.add_parser("plot", help="plot every target of a light-curve file")
    p.add_argument("path")
    p.add_argument("-o", "--output", required=True,
                   help="a folder (one PNG per target) or a .pdf file (one page each)")
    p.add_argument("--no-progress", action="store_true")
    return parser


def _cmd_collect(args):
    import multilc
    from multilc.samples import as_sample

    if Path(args.output).exists() and not args.overwrite:
        raise _UsageError(f"{args.output} exists; pass --overwrite to replace it")
    try:
        targets = as_sample(args.targets)
    except (ValueError, KeyError, OSError) as exc:
        raise _UsageError(f"cannot read targets {args.targets!r}: {exc}") from exc
    options = {}
    for archive, key, value in args.option:
        options.setdefault(archive, {})[key] = value
    try:
        lc = multilc.collect(
            targets, archives=args.archives, radius=args.radius, options=options,
            cache=False if args.no_cache else None, cache_dir=args.cache_dir,
            offline=args.offline or None, checkpoint=args.checkpoint,
            progress=False if args.no_progress else None, timeout=args.timeout,
            retries=args.retries)
    except (KeyError, TypeError) as exc:
        raise _UsageError(str(exc).strip("'\"")) from exc
    lc.write(args.output, overwrite=True)
    print(lc.summary())
    print(lc.report.summary())
    print(f"wrote {args.output}")
    return EXIT_PARTIAL if lc.report.failures else EXIT_OK


def _cmd_archives(args):
    from multilc.collect import ARCHIVES
    from multilc.collect.engine import _load_archive_modules

    _load_archive_modules()
    width = max((len(n) for n in ARCHIVES), default=10)
    for name in sorted(ARCHIVES):
        cls = ARCHIVES[name]
        bands = ", ".join(cls.bands) if cls.bands else "-"
        print(f"{name:<{width}}  {cls.returns:<10}  {cls.description}")
        print(f"{'':<{width}}  {'':<10}  bands/events: {bands}; default radius "
              f"{cls.default_radius}; {cls.chunk_size} targets per request")
    return EXIT_OK


def _cmd_info(args):
    from multilc import MultiBandLightCurve

    if not Path(args.path).exists():
        raise _UsageError(f"no such file: {args.path}")
    lc = MultiBandLightCurve.read(args.path)
    print(lc.summary())
    return EXIT_OK


def _cmd_samples(args):
    from multilc import samples

    if args.action == "refresh":
        if not args.name:
            raise _UsageError("multilc samples refresh NAME: give a sample name")
        sample, differences = samples.refresh_sample(args.name)
        print(f"{args.name}: {len(sample)} objects")
        print(differences)
        return EXIT_OK
    table = samples.list_samples()
    table.pprint_all()
    return EXIT_OK


def _cmd_plot(args):
    from multilc import MultiBandLightCurve

    if not Path(args.path).exists():
        raise _UsageError(f"no such file: {args.path}")
    lc = MultiBandLightCurve.read(args.path)
    from multilc.plotting import plot_all

    written = plot_all(lc, args.output, progress=not args.no_progress)
    print(f"wrote {len(written)} file(s) under {args.output}")
    return EXIT_OK


_COMMANDS = {"collect": _cmd_collect, "archives": _cmd_archives, "info": _cmd_info,
             "samples": _cmd_samples, "plot": _cmd_plot}


def main(argv=None):
    """Entry point of the ``multilc`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        print(f"multilc {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
