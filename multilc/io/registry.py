"""The package-own unified I/O registry behind ``MultiBandLightCurve.read``/``write``.

One `~astropy.io.registry.UnifiedIORegistry` holds three kinds of entries:

* file formats of multilc itself (``parquet``, ``netcdf``, ``ecsv``), identified
  by file extension;
* archive file formats (``icecube.events``, ``gaia.epoch_photometry``, ...):
  readers of files downloaded from an archive, registered by the archive's module;
* archives (``ztf``, ``heasarc.fermi_gbm``, ...): readers whose first argument is
  a set of targets; registered by `multilc.collect.register_archive`.  They are
  reached with ``read(targets, archive=...)`` (or ``format=``).
"""
import os

from astropy.io import registry as _astropy_registry

__all__ = ["readwrite_registry", "LightCurveRead", "LightCurveWrite", "archive_names",
           "register_file_format"]

readwrite_registry = _astropy_registry.UnifiedIORegistry()

#: Names of registered archives (kept in registration order).
_ARCHIVE_FORMATS = {}


def archive_names():
    """Names of the registered archives (sorted)."""
    return sorted(_ARCHIVE_FORMATS)


def _register_archive_format(name, reader, cls):
    """Register *reader* (targets -> light curve) as archive *name* (internal)."""
    _ARCHIVE_FORMATS[name] = reader
    readwrite_registry.register_reader(name, cls, reader, force=True)


def register_file_format(name, cls, reader=None, writer=None, extensions=(), identify=None):
    """Register a file format with optional identification by extension.

    Parameters
    ----------
    name : str
        Format name (``"parquet"``, ``"icecube.events"``).
    cls : type
        `~multilc.MultiBandLightCurve`.
    reader, writer : callable, optional
    extensions : sequence of str
        File-name endings that identify the format (``(".parquet", ".pq")``);
        a folder is not identified by its name's ending.
    identify : callable, optional
        ``identify(path) -> bool`` for formats not told by an extension
        (a dataset folder).
    """
    if reader is not None:
        readwrite_registry.register_reader(name, cls, reader, force=True)
    if writer is not None:
        readwrite_registry.register_writer(name, cls, writer, force=True)
    if extensions:
        def identify(origin, path, fileobj, *args, **kwargs):
            target = path if path is not None else (args[0] if args else None)
            return isinstance(target, (str, os.PathLike)) and \
                os.fspath(target).lower().endswith(tuple(extensions)) and \
                not os.path.isdir(target)
        readwrite_registry.register_identifier(name, cls, identify, force=True)
    elif identify is not None:
        def identify_path(origin, path, fileobj, *args, **kwargs):
            target = path if path is not None else (args[0] if args else None)
            return isinstance(target, (str, os.PathLike)) and bool(identify(target))
        readwrite_registry.register_identifier(name, cls, identify_path, force=True)


def _load_formats():
    """Import the modules that register formats, on first use of read/write.

    ``import multilc`` does not import them (they pull in pandas, xarray and
    every archive reader); ``MultiBandLightCurve.read``/``write`` must still
    know every format however the class was imported.
    """
    import multilc.archives  # noqa: F401  (archive file formats and archives)
    import multilc.io.formats  # noqa: F401  (parquet, netcdf, ecsv)


def _looks_like_file(obj):
    return isinstance(obj, (str, os.PathLike)) and os.path.exists(os.fspath(obj)) or \
        hasattr(obj, "read")


class LightCurveRead(_astropy_registry.UnifiedReadWrite):
    """Read a `~multilc.MultiBandLightCurve` from a file or from archives.

    ``MultiBandLightCurve.read(path)`` reads one of multilc's own files (the
    format is identified from the extension: ``.parquet``, ``.nc``,
    ``.ecsv``); ``read(path, format="icecube.events")`` reads a file
    downloaded from an archive; ``read(targets, archive="ztf")`` (or a list of
    archives, or ``"all"``) collects light curves of *targets* from archives
    through `multilc.collect`.

    ``MultiBandLightCurve.read.list_formats()`` lists everything registered.
    """

    def __init__(self, instance, cls):
        _load_formats()
        super().__init__(instance, cls, "read", registry=readwrite_registry)

    def __call__(self, *args, archive=None, format=None, **kwargs):
        if archive is not None:
            if format is not None:
                raise TypeError("give either archive= (targets) or format= (a file), "
                                "not both")
            if not args:
                raise TypeError("read(targets, archive=...) needs the targets")
            from multilc.collect import collect  # the engine imports this module

            return collect(args[0], archives=archive, **kwargs)
        if format is None and args and not _looks_like_file(args[0]):
            raise TypeError(
                f"cannot tell how to read {args[0]!r}: it is not an existing file. "
                "To collect light curves of targets give archive=, one of "
                f"{archive_names() or '(none registered)'} or 'all'; to read a file "
                "give its path (format from the extension) or format=, one of "
                f"{sorted(self._file_formats())}")
        if format is None and args and isinstance(args[0], (str, os.PathLike)):
            format = self._identify(os.fspath(args[0]), args[1:], kwargs)
        return self.registry.read(self._cls, *args, format=format, **kwargs)

    def _identify(self, path, args, kwargs):
        """The format of the file *path*: from its name, else from its first bytes.

        Returns None to let the registry decide (it raises its own error when
        several formats claim the file).

        Raises
        ------
        multilc.errors.FileFormatError
            Neither the name nor the content says which format the file is in.
        """
        found = self.registry.identify_format("read", self._cls, path, None, args, kwargs)
        if found:
            return None if len(found) > 1 else found[0]
        from multilc.errors import FileFormatError
        from multilc.io.formats import OWN_FORMATS, sniff

        sniffed = sniff(path)
        if sniffed is not None:
            return sniffed
        archive_files = sorted(n for n in self._file_formats()
                               if n.split(".")[0] not in OWN_FORMATS)
        own = ", ".join(f"{name} ({exts[0]})" for name, exts in OWN_FORMATS.items())
        raise FileFormatError(
            path, f"not a file multilc can identify: neither its name nor its content "
                  f"is one of the formats multilc writes: {own}. To read a file "
                  f"downloaded from an archive, name its format, for example "
                  f"MultiBandLightCurve.read(path, format=\"icecube.events\") "
                  f"(archive file formats: {', '.join(archive_files) or 'none'})")

    def _file_formats(self):
        table = self.registry.get_formats(self._cls, "Read")
        return [n for n in table["Format"] if n not in _ARCHIVE_FORMATS]

    def archives(self):
        """Names of the registered archives."""
        return archive_names()


class LightCurveWrite(_astropy_registry.UnifiedReadWrite):
    """Write a `~multilc.MultiBandLightCurve` to a file.

    The format comes from the extension (``.parquet`` default, ``.nc``,
    ``.ecsv``) or ``format=``.  ``overwrite=False`` refuses to replace a file.
    """

    def __init__(self, instance, cls):
        _load_formats()
        super().__init__(instance, cls, "write", registry=readwrite_registry)

    def __call__(self, *args, format=None, **kwargs):
        self.registry.write(self._instance, *args, format=format, **kwargs)
