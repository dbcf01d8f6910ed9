"""multilc: unit-safe multi-archive, multi-band light curves.

>>> from multilc import MultiBandLightCurve   # doctest: +SKIP
"""
try:
    from multilc._version import version as __version__
except ImportError:  # pragma: no cover - not installed
    __version__ = "0.0.0"

import sys as _sys
import types as _types

from astropy import config as _config


class Conf(_config.ConfigNamespace):
    """Settings of the collection engine (``multilc.conf``).

    Each setting can be overridden by an environment variable
    ``MULTILC_<NAME>`` (for example ``MULTILC_TIMEOUT=5``), which wins over
    the configuration file.  Archive endpoints live in each archive module's
    own ``conf`` (``multilc.archives.heasarc.conf``).
    """

    cache_dir = _config.ConfigItem(
        "", "Folder of the response cache; empty means the user cache directory "
        "(platformdirs.user_cache_dir('multilc')).")
    cache = _config.ConfigItem(True, "Keep archive responses on disk and reuse them.")
    offline = _config.ConfigItem(False, "Use only cached responses; never query.")
    timeout = _config.ConfigItem(60.0, "Seconds to wait for one archive response.")
    retries = _config.ConfigItem(4, "Retries of a transient failure (timeouts, "
                                 "connection resets, HTTP 429 and 5xx).")
    backoff = _config.ConfigItem(1.0, "Base of the exponential retry backoff [s].")
    backoff_max = _config.ConfigItem(60.0, "Longest wait between retries [s].")
    retry_after_max = _config.ConfigItem(
        120.0, "Longest wait honoured when a server's Retry-After header asks for one "
        "[s]; a longer request is shortened to this.")
    max_workers = _config.ConfigItem(16, "Most requests in flight over all archives.")
    progress = _config.ConfigItem(True, "Show progress bars on a terminal.")


conf = Conf()

# The data model, the file formats, the collection engine and the archive readers
# import pandas, xarray, pyarrow and the network clients: seconds of start-up that
# ``import multilc`` and ``multilc --help`` should not pay.  They are imported on
# first use of the names below (PEP 562 module ``__getattr__``).
_LAZY = {
    "MultiBandLightCurve": "multilc.lightcurve",
    "LightCurveError": "multilc.lightcurve",
    "make_events": "multilc.lightcurve",
    "collect": "multilc.collect",
}
# Imported with the data model because they register things on import: the
# file formats (``MultiBandLightCurve.read/write``) and the ``ds.multilc``
# xarray accessor.  (The engine imports the archive readers when it runs.)
_WITH_DATA_MODEL = ("multilc.io.formats", "multilc.plotting")


def __getattr__(name):
    import importlib

    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home)
    for extra in _WITH_DATA_MODEL:
        importlib.import_module(extra)
    value = getattr(module, name)
    globals()[name] = value
    return value


class _Package(_types.ModuleType):
    """The ``multilc`` module, keeping ``multilc.collect`` the function.

    Importing the subpackage ``multilc.collect`` (``from multilc.collect
    import ...``) makes Python set the package attribute ``collect`` to the
    subpackage once it is loaded; the function of the same name was the
    public API long before the laziness, so it wins.
    """

    def __setattr__(self, name, value):
        if name == "collect" and isinstance(value, _types.ModuleType):
            value = getattr(value, "collect", value)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = ["conf", "MultiBandLightCurve", "LightCurveError", "make_events", "collect",
           "__version__"]
