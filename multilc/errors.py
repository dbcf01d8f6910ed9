"""The exception types multilc raises.

Every error that leaves multilc on purpose is a `MultilcError`, so a caller
(or the ``multilc`` command, which turns them into one-line messages) can
tell a problem multilc recognised from a bug.  Each type also derives from
the built-in exception a Python user would expect (`ValueError` for bad
input, `OSError` for an unreadable file, `ImportError` for a missing optional
dependency), so existing ``except ValueError`` code keeps working.

* `InputError` -- something the user gave is wrong (targets, radius,
  archive names, settings); the command line exits with status 2.
* `~multilc.collect.api.ArchiveError` (and its `TransientError` /
  `PermanentError`) -- an archive's answer could not be had or used; names
  the archive and the targets.  Raised inside readers; `collect` turns it
  into an entry of the failure report.
* `FileFormatError` -- a file is not a readable multilc (or archive) file;
  names the file and what was wrong.
* `MissingDependencyError` -- an optional dependency is not installed; names
  the extra that brings it (``pip install "multilc[plot]"``).
"""

__all__ = ["MultilcError", "InputError", "FileFormatError", "MissingDependencyError",
           "require"]


class MultilcError(Exception):
    """Base class of the errors multilc raises on purpose."""


class InputError(MultilcError, ValueError):
    """Bad user input: targets, radius, archive names, options or settings."""


class FileFormatError(MultilcError, OSError):
    """A file that is not readable as the format asked for.

    Parameters
    ----------
    path : str or path-like
        The file.
    message : str
        What was wrong with it.
    """

    def __init__(self, path, message):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __str__(self):
        return f"{self.path}: {self.message}"


class MissingDependencyError(MultilcError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module, extra, what=None):
    """Import and return *module*, or raise `MissingDependencyError`.

    Parameters
    ----------
    module : str
        Module name (``"matplotlib.pyplot"``).
    extra : str
        The multilc extra that installs it (``"plot"``).
    what : str, optional
        What needs it, for the message (``"multilc plot"``).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        need = f"{what} needs" if what else "this needs"
        raise MissingDependencyError(
            f"{need} {top}, which is not installed: pip install \"multilc[{extra}]\"") \
            from exc
