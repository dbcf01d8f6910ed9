"""Collecting light curves from archives: the engine and the reader API.

>>> import multilc
>>> lc = multilc.collect(targets, archives=["heasarc.fermi_gbm", "icecube"])  # doctest: +SKIP
>>> print(lc.report.summary())                                              # doctest: +SKIP
"""
from multilc.collect.api import (ARCHIVES, Archive, ArchiveError, Batch, Failure,  # noqa: F401
                                 HTMLPageError, ParseResult, PermanentError,
                                 TransientError, check_not_html, check_radius, get_archive,
                                 http_request, http_session, register_archive, scrub,
                                 setting)
from multilc.collect.engine import (BatchResult, CollectionReport, Runtime,  # noqa: F401
                                    collect, default_cache_dir, run_batch)
from multilc.collect.output import CollectedDataset, read_dataset  # noqa: F401,E402

__all__ = ["collect", "run_batch", "Archive", "Batch", "ParseResult", "Failure",
           "ArchiveError", "TransientError", "PermanentError", "register_archive",
           "get_archive", "ARCHIVES", "CollectionReport", "BatchResult", "Runtime",
           "setting", "check_radius", "http_request", "http_session", "default_cache_dir",
           "HTMLPageError", "check_not_html", "scrub", "CollectedDataset", "read_dataset"]
