"""Archive readers: one module per archive, each registering itself.

Importing this package imports every module in it; a module registers its
archive(s) with `multilc.collect.register_archive` and its file formats with
`multilc.io.registry.register_file_format`.  Network clients (pyvo,
astroquery, lightkurve, ...) are imported only when a query runs.
"""
import importlib
import pkgutil

_LOADED = []
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        _LOADED.append(importlib.import_module(f"{__name__}.{_info.name}"))

__all__ = []
