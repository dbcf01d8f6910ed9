"""Local stand-ins for archive services, for tests and benchmarks.

Nothing here is imported by the rest of multilc.  The stand-ins need the
test extras (werkzeug, pyvo); they are imported on first attribute access so
that ``import multilc.testing`` itself stays cheap.

- `ReplayServer`, `Fault`, `Reply`, `RecordedRequest`: a threaded HTTP server
  on 127.0.0.1 with canned responses, fault injection and request recording
  (``multilc.testing.replay``).
- `TAPStandin`, `ADQLError`, `TAPQueryRecord`: an IVOA TAP 1.1 service
  mounted on a `ReplayServer`, answering ADQL through a test-supplied
  callable (``multilc.testing.tap``).
- `MastStandin`: the MAST API (crossmatch, product lists) and file
  downloads (``multilc.testing.mast``).
- The ``replay_server`` pytest fixture lives in
  ``multilc.testing.pytest_plugin``.
"""
import importlib

__all__ = ["ADQLError", "Fault", "MastStandin", "RecordedRequest", "Reply", "ReplayServer",
           "TAPQueryRecord", "TAPStandin"]

_HOMES = {
    "Fault": "replay", "RecordedRequest": "replay", "Reply": "replay",
    "ReplayServer": "replay",
    "MastStandin": "mast",
    "ADQLError": "tap", "TAPQueryRecord": "tap", "TAPStandin": "tap",
}


def __getattr__(name):
    if name in _HOMES:
        module = importlib.import_module(f"{__name__}.{_HOMES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
