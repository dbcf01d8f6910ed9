"""Target samples: the `Sample` table, literature samples and merging.

This subpackage depends on astropy and numpy only (astroquery and platformdirs are
imported when a literature sample is fetched).
"""
from .core import (
    LABEL_SEPARATOR,
    Sample,
    SampleError,
    as_sample,
    example_targets,
    merge_samples,
)
from .literature import SampleFetchError, get_sample, list_samples, refresh_sample

__all__ = [
    "LABEL_SEPARATOR",
    "Sample",
    "SampleError",
    "SampleFetchError",
    "as_sample",
    "example_targets",
    "get_sample",
    "list_samples",
    "merge_samples",
    "refresh_sample",
]
