"""multilc: unit-safe multi-archive, multi-band light curves.

>>> from multilc import MultiBandLightCurve   # doctest: +SKIP
"""
try:
    from multilc._version import version as __version__
except ImportError:  # pragma: no cover - not installed
    __version__ = "0.0.0"

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

from multilc.lightcurve import MultiBandLightCurve, LightCurveError, make_events  # noqa: E402
from multilc.io import formats as _formats  # noqa: E402,F401  (registers file formats)
from multilc import plotting as _plotting  # noqa: E402,F401  (registers ds.multilc)
from multilc.collect import collect  # noqa: E402
from multilc import archives as _archives  # noqa: E402,F401  (registers archives)

__all__ = ["conf", "MultiBandLightCurve", "LightCurveError", "make_events", "collect", "__version__"]
