"""TESS, Kepler and K2 light curves from MAST (archives ``tess``, ``kepler``, ``k2``).

What is queried (MAST API, https://mast.stsci.edu/api/v0/)
    Every request is a POST of ``request=<JSON>`` (form-encoded) to
    ``<url>/api/v0/invoke``; the answer is JSON ``{"status", "msg", "data",
    "fields", "paging"}`` (MAST API "MashupRequest" and "Result Dataset
    Formats" pages; astroquery ``mast/discovery_portal.py``).  For a batch of
    up to ``chunk_size`` targets (default 200):

    1. one ``Mast.Caom.Crossmatch`` request uploads the targets as a JSON
       table (``data = {"fields": [{"name": "ra", "type": "float"}, ...],
       "data": [{"ra": .., "dec": .., "objectid": ..}, ...]}``, params
       ``raColumn``, ``decColumn``, ``radius`` in degrees) and returns the
       CAOM observations of all MAST missions near each of them;
    2. the observations of this mission are kept (``obs_collection``,
       ``dataproduct_type = 'timeseries'``, ``provenance_name`` = author,
       ``t_exptime`` as lightkurve's ``exptime``), and every observation is
       given to each target whose position is within ``radius`` of the
       observation's ``s_ra``/``s_dec`` (computed here, so the answer's
       undocumented echo of the uploaded columns is not relied on);
    3. one ``Mast.Caom.Products`` request per ``products_chunk`` observations
       (``obsid`` = a comma-separated list, as the MAST API documents) lists
       their files; light-curve files are those whose ``productFilename``
       ends in ``lc.fits`` (lightkurve's rule);
    4. the files are fetched from ``<url>/api/v0.1/Download/file?uri=<dataURI>``
       by ``download_concurrency`` threads (default 8), streamed to the
       download folder in astroquery's layout
       (``mastDownload/<obs_collection>/<obs_id>/<file>``); a file already
       there with the size MAST lists is not fetched again.

    So N targets cost ceil(N / chunk_size) crossmatch requests, ceil(M /
    products_chunk) product-list requests for M observations and one request
    per file not yet downloaded.  ``status = "EXECUTING"`` answers (MAST long
    polling) are re-issued; a ``paging.pagesFiltered`` above 1 is followed page
    by page, and the rows received must add up to ``paging.rowsFiltered``
    (else the answer is treated as cut off: a transient error).  No lightkurve
    search or download function is called: they swap ``sys.stdout`` while
    running, which is unsafe in threads.

    Format details the MAST documentation does not give, and what is assumed:
    the unit of the crossmatch ``radius`` (assumed degrees, as for the
    documented cone services, whose example radii 0.001-0.2 it shares); the
    crossmatch answer's column list (assumed: the CAOM observation fields
    of ``Mast.Caom.Cone``, possibly with the uploaded columns echoed; only
    CAOM fields are used); whether the crossmatch radius applies to
    ``s_ra``/``s_dec`` or to footprints (the radius is re-applied here to
    ``s_ra``/``s_dec``, a cone on the target position like lightkurve's
    ``distance``); the largest upload accepted (``chunk_size`` 200 is a
    choice, not a documented limit).

Per-target isolation
    A file that cannot be downloaded (after ``download_retries`` retries of
    transient errors) or read (truncated, corrupt, wrong units, not barycentric
    TDB) becomes a failure of the targets that own it; the other targets of the
    batch keep their results.  A failing crossmatch or product-list request
    fails the batch (it carries every target of the batch).

Product selection (explicit, never "every product of every author")
    ``author`` defaults to the mission pipeline: ``"SPOC"`` (TESS), ``"Kepler"``,
    ``"K2"`` (MAST ``provenance_name``).  ``exptime`` defaults to 120 s for
    TESS (SPOC 2-min cadence; 20-s "fast" products duplicate it for a few
    targets) and ``"long"`` for Kepler and K2, with lightkurve's meaning
    (``"fast"`` < 60 s, ``"short"`` 60-200 s, ``"long"`` >= 200 s of
    ``t_exptime``; lightkurve ``search._mask_by_exptime``); pass
    ``exptime=None`` for every cadence.  ``flux_column`` is ``"pdcsap_flux"``
    (default) or ``"sap_flux"``.

Columns used (extension ``LIGHTCURVE`` of the SPOC / Kepler pipeline files;
lightkurve io/tess.py, io/kepler.py; Kepler Archive Manual KDMC-10008-006
sec. 2.3.1; TESS Science Data Products Description Document EXP-TESS-ARC-ICD-0014)
    ``TIME``, ``PDCSAP_FLUX``/``PDCSAP_FLUX_ERR`` or ``SAP_FLUX``/``SAP_FLUX_ERR``
    (e-/s, checked against each column's ``TUNIT``), ``QUALITY`` (TESS) or
    ``SAP_QUALITY`` (Kepler, K2), ``CADENCENO``; primary header ``TELESCOP``,
    ``MISSION`` (K2 files say ``K2``), ``OBJECT``, ``TICID``/``KEPLERID``,
    ``SECTOR``/``QUARTER``/``CAMPAIGN``, ``RA_OBJ``/``DEC_OBJ``; extension
    header ``BJDREFI``, ``BJDREFF``, ``TIMESYS``, ``TIMEREF``, ``TIMEUNIT``.

Units and time
    Flux stays a count rate in e-/s (bands ``tess:TESS``, ``kepler:Kepler``,
    ``k2:K2``; these have no absolute calibration).  ``TIME`` is BJD_TDB minus
    ``BJDREFI + BJDREFF`` days: TESS BTJD = BJD_TDB - 2457000, Kepler/K2 BKJD
    = BJD_TDB - 2454833 (lightkurve time.py; Kepler Archive Manual sec. 2.3.2).
    The reference is read from each file's header (lightkurve's TESS reader
    assumes 2457000), so a file with a different reference is still converted
    right; times already barycentric TDB (``TIMEREF = 'SOLARSYSTEM'``,
    ``TIMESYS = 'TDB'``) become MJD(TDB) with `multilc.timescales` (systems
    ``tess.btjd``, ``kepler.bkjd``, ``k2.bkjd``).

Default masks (each counted in ``ParseResult.dropped``)
    cadences with NaN ``TIME``; cadences whose quality word has a bit of
    lightkurve's ``quality_bitmask`` preset (``"default"``; also ``"hard"``,
    ``"hardest"``, ``"none"`` or an int; the values of
    `lightkurve.utils.TessQualityFlags` / `KeplerQualityFlags`, kept as data in
    `QUALITY_PRESETS`); cadences with
    NaN flux or a flux error that is NaN or not positive.

Binning
    ``bin_to`` (a time Quantity, default None = keep every cadence) averages
    the cadences of each product in bins of that width on a fixed grid of
    MJD(TDB) (bin k covers [k dt, (k+1) dt)), with the inverse-variance
    weighted mean ``f = sum(f_i/s_i^2)/sum(1/s_i^2)`` and its standard error
    ``s = 1/sqrt(sum(1/s_i^2))``; the bin time is the mean of its cadence
    times and its quality word the OR of theirs.

Match policy
    ``match="all"`` (default) keeps every mission target found within the
    radius; ``match="nearest"`` keeps the products of the target (TIC/KIC/EPIC
    id) closest to the position.  ``source_id`` is the TIC/KIC/EPIC id,
    ``separation`` the distance to ``RA_OBJ``/``DEC_OBJ``.

Band metadata
    ``band_notes`` lists the author, flux column and sectors/quarters/
    campaigns, as "; "-separated items (``"SPOC; PDCSAP_FLUX; sector 1;
    sector 2"``) so that notes of several batches merge cleanly.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import json
import os
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from astropy import config as _config
from astropy import log
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

from multilc.catalogs.match import angular_separation_deg
from multilc.collect.api import (Archive, ArchiveError, Failure, ParseResult,
                                 describe_targets, http_request, http_session,
                                 register_archive)
from multilc.errors import FileFormatError, require
from multilc.io.registry import readwrite_registry, register_file_format
from multilc.lightcurve import MultiBandLightCurve
from multilc.timescales import TIME_SYSTEMS, to_mjd_tdb

__all__ = ["conf", "Conf", "MISSIONS", "MissionSpec", "TessArchive", "KeplerArchive",
           "K2Archive", "read_mission_file", "read_lightcurve_file", "bin_weighted",
           "MissionFileError", "INVOKE_PATH", "DOWNLOAD_PATH"]


# --------------------------------------------------------------------------- settings
class Conf(_config.ConfigNamespace):
    """Settings of the TESS/Kepler/K2 readers (``MULTILC_MAST_<ITEM>`` overrides)."""

    url = _config.ConfigItem(
        "https://mast.stsci.edu",
        "MAST server for the portal API and downloads (astroquery.mast.conf.server).")
    download_dir = _config.ConfigItem(
        "", "Folder of downloaded light-curve files (astroquery's mastDownload/ layout "
            "inside); empty: <multilc cache folder>/mast.")
    concurrency = _config.ConfigItem(4, "Batches (crossmatch chunks) in flight per mission.")
    chunk_size = _config.ConfigItem(
        200, "Targets per Mast.Caom.Crossmatch request (a choice: MAST documents no "
             "upload limit, only ~500,000 result rows per request).")
    products_chunk = _config.ConfigItem(
        500, "Observation ids per Mast.Caom.Products request (comma-separated obsid).")
    pagesize = _config.ConfigItem(
        50000, "Rows per page asked of the MAST API (astroquery.mast.conf.pagesize).")
    download_concurrency = _config.ConfigItem(
        8, "Light-curve files downloaded at once within one batch.")
    download_retries = _config.ConfigItem(
        2, "Retries of a transient download error of one file (then that target fails).")
    poll_interval = _config.ConfigItem(
        0.2, "Seconds before re-issuing a request MAST answered with status EXECUTING.")
    poll_limit = _config.ConfigItem(
        300, "Most re-issues of one request answered EXECUTING (then a transient error).")


conf = Conf()


# --------------------------------------------------------------------------- constants
@dataclasses.dataclass(frozen=True)
class MissionSpec:
    """How one mission's light-curve files look and how to query them."""

    archive: str             # multilc archive name
    mission: str             # lightkurve ``mission=`` value, FITS MISSION/TELESCOP
    band: str                # multilc band
    time_system: str         # key of multilc.timescales.TIME_SYSTEMS
    bjdref: float            # nominal BJDREFI + BJDREFF of the files [d]
    author: str              # pipeline author (MAST provenance_name)
    exptime: object          # default lightkurve ``exptime=``
    quality_column: str
    id_keyword: str          # primary-header target id
    season_keyword: str      # primary-header sector/quarter/campaign
    season_name: str
    flags_class: str         # lightkurve.utils class with the bitmask presets


#: Mission definitions.  Reference dates: TESS BJDREFI = 2457000 (TESS SDPDD),
#: Kepler/K2 BJDREFI = 2454833 (Kepler Archive Manual sec. 2.3.2); both with
#: BJDREFF = 0.  K2 files carry TELESCOP = 'Kepler' and MISSION = 'K2'.
MISSIONS = {
    "tess": MissionSpec("tess", "TESS", "tess:TESS", "tess.btjd", 2457000.0, "SPOC", 120,
                        "QUALITY", "TICID", "SECTOR", "sector", "TessQualityFlags"),
    "kepler": MissionSpec("kepler", "Kepler", "kepler:Kepler", "kepler.bkjd", 2454833.0,
                          "Kepler", "long", "SAP_QUALITY", "KEPLERID", "QUARTER", "quarter",
                          "KeplerQualityFlags"),
    "k2": MissionSpec("k2", "K2", "k2:K2", "k2.bkjd", 2454833.0, "K2", "long",
                      "SAP_QUALITY", "KEPLERID", "CAMPAIGN", "campaign",
                      "KeplerQualityFlags"),
}

FLUX_COLUMNS = ("pdcsap_flux", "sap_flux")
#: JD of MJD 0 (MJD definition).
_MJD_ZERO_JD = 2400000.5
_LC_EXTENSION = "LIGHTCURVE"
_READ_COLUMNS = ("TIME", "CADENCENO", "SAP_FLUX", "SAP_FLUX_ERR", "PDCSAP_FLUX",
                 "PDCSAP_FLUX_ERR")
#: MAST API paths (MAST API documentation: "The MAST Request Url" and the
#: download examples of https://mast.stsci.edu/api/v0/pyex.html).
INVOKE_PATH = "/api/v0/invoke"
DOWNLOAD_PATH = "/api/v0.1/Download/file"
#: FITS files are sequences of 2880-byte blocks (FITS Standard 4.0, sec. 3.1):
#: a size that is not a multiple of it is a cut-off file.
_FITS_BLOCK = 2880
#: Characters allowed in a file or folder name taken from a MAST answer.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: lightkurve's exptime words (search._mask_by_exptime): seconds of t_exptime.
_EXPTIME_WORDS = {"fast": (0.0, 60.0), "short": (60.0, 200.0), "long": (200.0, np.inf),
                  "ffi": (200.0, np.inf)}


#: lightkurve's quality_bitmask presets (``lightkurve.utils.TessQualityFlags.OPTIONS``
#: and ``KeplerQualityFlags.OPTIONS`` of lightkurve 2.6.0: sums of the quality
#: bits of the TESS SDPDD sec. 9 and Kepler Archive Manual table 2-3).  Kept
#: as data so that reading needs no lightkurve import (several seconds); the
#: tests compare them with the installed lightkurve.
QUALITY_PRESETS = {
    "TessQualityFlags": {"none": 0, "default": 17087, "hard": 24319, "hardest": 65535},
    "KeplerQualityFlags": {"none": 0, "default": 1130799, "hard": 1664431,
                           "hardest": 2096639},
}


class MissionFileError(FileFormatError, ValueError):
    """A TESS/Kepler/K2 light-curve file that cannot be read (truncated,
    corrupt, not a mission file, undeclared or wrong units)."""


# --------------------------------------------------------------------------- files
def _mission_from_header(header, path):
    """Archive name ('tess', 'kepler', 'k2') from a primary header."""
    telescope = str(header.get("TELESCOP", "")).strip().upper()
    mission = str(header.get("MISSION", "")).strip().upper()
    if telescope == "TESS" or mission == "TESS":
        return "tess"
    if mission == "K2":
        return "k2"
    if telescope == "KEPLER" or mission == "KEPLER":
        # Kepler-prime files carry QUARTER, K2 files CAMPAIGN (some old K2
        # products lack MISSION).
        return "k2" if "CAMPAIGN" in header and "QUARTER" not in header else "kepler"
    raise MissionFileError(path, f"TELESCOP={telescope or '(none)'!r}, MISSION="
                                 f"{mission or '(none)'!r} is not a TESS, Kepler or K2 "
                                 "light-curve file")


def read_lightcurve_file(path, *, author=None):
    """Read one mission light-curve FITS file into plain arrays.

    Parameters
    ----------
    path : str, path-like or binary file object
        A SPOC (TESS) or Kepler/K2 pipeline light-curve file.
    author : str, optional
        Product author from the search; by default the pipeline author of the
        mission when the header says ``ORIGIN = 'NASA/Ames'``, else ORIGIN.

    Returns
    -------
    dict
        ``mission`` (archive name), ``path``, ``author``, ``target_id``,
        ``object``, ``season`` (sector/quarter/campaign), ``ra``/``dec`` [deg],
        ``bjdref`` [d], ``timesys``, ``timeref``, ``timeunit``, ``quality_column``
        and the arrays ``TIME`` [d], ``CADENCENO``, ``SAP_FLUX``,
        ``SAP_FLUX_ERR``, ``PDCSAP_FLUX``, ``PDCSAP_FLUX_ERR`` (in the units
        of ``units``), ``QUALITY`` (int64), plus ``units`` (TUNIT of each
        flux column present, None where the file declares none) and
        ``flux_unit`` (that of PDCSAP_FLUX).

    Raises
    ------
    MissionFileError
        The file is cut off (size not a whole number of 2880-byte FITS
        blocks), corrupt, or not a TESS/Kepler/K2 light-curve file.
    """
    source = path
    path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else \
        str(getattr(path, "name", "<file object>"))
    if isinstance(source, (str, os.PathLike)) and not path.lower().endswith(".gz"):
        try:
            size = os.path.getsize(source)
        except OSError as exc:
            raise MissionFileError(path, f"cannot be read: {exc}") from exc
        if size == 0 or size % _FITS_BLOCK:
            raise MissionFileError(path, f"truncated: {size} bytes is not a whole number "
                                         f"of {_FITS_BLOCK}-byte FITS blocks")
    try:
        with warnings.catch_warnings():
            # astropy warns (and pads) when a file ends early: an error here.
            warnings.filterwarnings("error", message=".*truncated.*")
            return _read_hdul(source, path, author)
    except MissionFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a damaged file is typed
        raise MissionFileError(path, f"corrupt or truncated FITS file: "
                                     f"{type(exc).__name__}: {exc}") from exc


# Scalar binary-table column types read straight from the table's bytes
# (FITS Standard 4.0, section 7.3.3.1, table 18: TFORM codes and widths; data
# are big-endian, section 5).  Other types, vectors, and columns with
# TSCAL/TZERO go through astropy.
_TFORM_WIDTHS = {"L": 1, "X": None, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4,
                 "D": 8, "C": 8, "M": 16, "P": 8, "Q": 16}
_TFORM_DTYPES = {"B": ">u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM = re.compile(r"\s*(\d*)\s*([LXBIJKAEDCMPQ])")


def _table_columns(raw, data_start, header, wanted):
    """Columns *wanted* of a binary table whose data start at byte *data_start*.

    astropy's `~astropy.io.fits.FITS_rec` builds a ``Column`` for every column
    and reads its configuration on every card; for the few scalar columns
    this reader needs that was ~70 % of a file's reading time (5 of 7 ms per
    file; bench/bench_headline.py reads 71 files per run).  Returns None
    (the caller then uses astropy) when the layout is not plain: a column
    of another type, a vector, scaled values, a heap, or fewer bytes than
    ``NAXIS1 x NAXIS2``.
    """
    if header.get("XTENSION") != "BINTABLE":
        return None
    try:
        row_width, n_rows = int(header["NAXIS1"]), int(header["NAXIS2"])
        n_fields = int(header["TFIELDS"])
    except (KeyError, TypeError, ValueError):
        return None
    offsets, formats, offset = {}, {}, 0
    for i in range(1, n_fields + 1):
        match = _TFORM.match(str(header.get(f"TFORM{i}", "")))
        if match is None:
            return None
        repeat = int(match[1]) if match[1] else 1
        code = match[2]
        width = (repeat + 7) // 8 if code == "X" else repeat * _TFORM_WIDTHS[code]
        name = str(header.get(f"TTYPE{i}", "")).strip().upper()
        if name in wanted:
            scaled = (float(header.get(f"TSCAL{i}", 1)) != 1
                      or float(header.get(f"TZERO{i}", 0)) != 0)
            if repeat != 1 or code not in _TFORM_DTYPES or scaled or name in offsets:
                return None
            offsets[name], formats[name] = offset, _TFORM_DTYPES[code]
        offset += width
    size = row_width * n_rows
    if offset != row_width or n_rows < 1 or int(header.get("PCOUNT", 0)) != 0 \
            or len(raw) < data_start + size:
        return None
    names = list(offsets)
    rows = np.frombuffer(raw, dtype=np.dtype({"names": names,
                                              "formats": [formats[n] for n in names],
                                              "offsets": [offsets[n] for n in names],
                                              "itemsize": row_width}),
                         count=n_rows, offset=data_start)
    return {name: rows[name] for name in names}


def _headers_from_bytes(raw, count):
    """The first *count* HDU headers of a FITS file's bytes, with data offsets.

    Walks the 2880-byte blocks (FITS Standard 4.0, sections 3.3 and 4.4): a
    header ends with the block holding its END card; its data follow, padded
    to whole blocks, of ``|BITPIX| / 8 x GCOUNT x (PCOUNT + NAXIS1 x ... x
    NAXISn)`` bytes.  astropy parses each header's cards (lazily).  None when
    the bytes do not walk cleanly (the caller then opens the file with
    astropy, which says what is wrong).
    """
    out, pos = [], 0
    while len(out) < count:
        end = None
        for block in range(pos, len(raw) - _FITS_BLOCK + 1, _FITS_BLOCK):
            for card in range(block, block + _FITS_BLOCK, 80):
                if raw[card:card + 8] == b"END     ":
                    end = block + _FITS_BLOCK
                    break
            if end is not None:
                break
        if end is None:
            return None
        header = fits.Header.fromstring(raw[pos:end].decode("ascii"))
        naxis = int(header.get("NAXIS", 0))
        elements = int(np.prod([int(header[f"NAXIS{k}"]) for k in range(1, naxis + 1)])) \
            if naxis else 0
        size = abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1)) * \
            (int(header.get("PCOUNT", 0)) + elements) if naxis else 0
        out.append((header, end))
        pos = end + -(-size // _FITS_BLOCK) * _FITS_BLOCK
    return out


def _column_names(header):
    """TTYPE1..TTYPEn of a binary-table header, upper case."""
    return [str(header.get(f"TTYPE{i}", "")).strip().upper()
            for i in range(1, int(header.get("TFIELDS", 0)) + 1)]


def _plain_file(source, wanted_for):
    """``(primary header, light-curve header, columns)`` read without fits.open.

    For a file on disk whose second HDU is the ``LIGHTCURVE`` binary table
    with plain columns (the SPOC and Kepler layouts): ``fits.open`` and its
    HDU list (resize checks re-serialise every header) were most of the
    remaining reading time.  None otherwise, or on anything unexpected; the
    caller then reads the file with astropy.
    """
    if not isinstance(source, (str, os.PathLike)) or os.fspath(source).lower().endswith(".gz"):
        return None
    try:
        with open(source, "rb") as fh:
            raw = fh.read()
        headers = _headers_from_bytes(raw, 2)
        if headers is None:
            return None
        (primary, _), (header, data_start) = headers
        if str(header.get("EXTNAME", "")).strip().upper() != _LC_EXTENSION:
            return None
        wanted = wanted_for(primary, header)
        if wanted is None:
            return None
        columns = _table_columns(raw, data_start, header, wanted)
    except Exception:  # noqa: BLE001 - astropy reads it, and names the damage
        return None
    if columns is None:
        return None
    return primary, header, columns


def _read_hdul(source, path, author):
    def wanted_for(primary, header):
        try:
            spec = MISSIONS[_mission_from_header(primary, path)]
        except MissionFileError:
            return None
        names = _column_names(header)
        return {c for c in (*_READ_COLUMNS, spec.quality_column) if c in names}

    plain = _plain_file(source, wanted_for)
    if plain is not None:
        primary, header, columns = plain
        return _lightcurve_arrays(primary, header, columns, path, author)
    with fits.open(source, memmap=False) as hdul:
        primary = hdul[0].header
        spec = MISSIONS[_mission_from_header(primary, path)]
        try:
            hdu = hdul[_LC_EXTENSION]
        except KeyError:
            raise MissionFileError(path, f"no {_LC_EXTENSION!r} extension; not a "
                                         f"{spec.mission} light-curve file") from None
        header = hdu.header
        if not header.get("TFIELDS"):
            raise MissionFileError(path, f"extension {_LC_EXTENSION} has no table")
        data = hdu.data
        if data is None:
            raise MissionFileError(path, f"extension {_LC_EXTENSION} has no table")
        names = [n.upper() for n in data.columns.names]
        columns = {c: data[c] for c in (*_READ_COLUMNS, spec.quality_column) if c in names}
        return _lightcurve_arrays(primary, header, columns, path, author)


def _lightcurve_arrays(primary, header, columns, path, author):
    """`read_lightcurve_file`'s dict from the headers and the read columns."""
    mission = _mission_from_header(primary, path)
    spec = MISSIONS[mission]
    names = _column_names(header)
    missing = [c for c in ("TIME", spec.quality_column) if c not in columns]
    if missing:
        raise MissionFileError(path, f"extension {_LC_EXTENSION} lacks columns {missing}")
    if "BJDREFI" in header:
        bjdref = float(header["BJDREFI"]) + float(header.get("BJDREFF", 0.0))
    else:
        # Not in the header: fall back on the mission's documented reference.
        bjdref = spec.bjdref
    out = {
        "mission": mission,
        "path": path,
        "target_id": int(primary.get(spec.id_keyword, -1) or -1),
        "object": str(primary.get("OBJECT", "")),
        "season": primary.get(spec.season_keyword),
        "ra": float(primary.get("RA_OBJ", np.nan)),
        "dec": float(primary.get("DEC_OBJ", np.nan)),
        "bjdref": bjdref,
        "timesys": str(header.get("TIMESYS", "TDB")).strip().upper(),
        "timeref": str(header.get("TIMEREF", "SOLARSYSTEM")).strip().upper(),
        "timeunit": str(header.get("TIMEUNIT", "d")).strip().lower(),
        "quality_column": spec.quality_column,
    }
    origin = str(primary.get("ORIGIN", "")).strip()
    out["author"] = author or (spec.author if origin == "NASA/Ames" or not origin
                               else origin)
    n = len(columns["TIME"])
    units = {}
    for col in _READ_COLUMNS:
        if col in columns:
            out[col] = np.asarray(columns[col], dtype="float64")
            unit = header.get(f"TUNIT{names.index(col) + 1}")
            units[col] = None if unit is None else str(unit).strip()
        else:
            out[col] = np.full(n, np.nan)
    out["QUALITY"] = np.asarray(columns[spec.quality_column], dtype="int64")
    out["units"] = units
    out["flux_unit"] = units.get("PDCSAP_FLUX")
    return out


# --------------------------------------------------------------------------- parse
def _quality_bitmask(spec, option):
    """Integer bitmask from a lightkurve preset name or an int (None: no mask)."""
    if option is None:
        return 0
    if isinstance(option, (int, np.integer)) and not isinstance(option, bool):
        return int(option)
    presets = QUALITY_PRESETS[spec.flags_class]
    try:
        value = presets[str(option).lower()]
    except KeyError:
        raise ValueError(f"{spec.archive}: quality_bitmask={option!r}; expected one of "
                         f"{sorted(presets)} or an int") from None
    return int(value)


@functools.lru_cache(maxsize=64)
def _unit_of_text(text):
    """``u.Unit(text)``, parsed once per process (every file of a mission
    writes the same few TUNIT strings; astropy's parser is not cached)."""
    return u.Unit(text)


def _flux_unit(text, path, column="PDCSAP_FLUX"):
    """Count-rate unit of a file's flux column (SPOC/Kepler write TUNIT 'e-/s').

    A column without a declared unit, or with a unit that is not a count rate
    (normalised community products, 'ppm'), is refused: the reader never
    guesses the unit of a flux.
    """
    if text is None or not str(text).strip():
        raise MissionFileError(path, f"{column} has no unit (TUNIT); expected e-/s")
    try:
        unit = _unit_of_text(str(text).replace("e-", "electron"))
    except ValueError:
        raise MissionFileError(path, f"{column} unit {text!r} is not a count rate") \
            from None
    if not unit.is_equivalent(u.electron / u.s):
        raise MissionFileError(path, f"{column} unit {text!r} is not e-/s; this reader "
                                     "only takes pipeline fluxes")
    return unit


def bin_weighted(time, flux, flux_err, flag, width):
    """Inverse-variance weighted means in bins of *width* days.

    Parameters
    ----------
    time : numpy.ndarray
        MJD(TDB) [d].
    flux, flux_err : numpy.ndarray
        Flux and 1-sigma error, same unit, errors positive and finite.
    flag : numpy.ndarray of int
        Quality words.
    width : float
        Bin width [d]; bin k covers [k width, (k+1) width) in MJD.

    Returns
    -------
    time, flux, flux_err, flag : numpy.ndarray
        One value per non-empty bin: mean time, weighted mean flux,
        ``1/sqrt(sum(1/err^2))`` and the OR of the quality words.
    """
    if len(time) == 0:
        return time, flux, flux_err, flag
    index = np.floor(time / width).astype("int64")
    keys, inverse = np.unique(index, return_inverse=True)
    weight = 1.0 / flux_err ** 2
    sum_w = np.bincount(inverse, weights=weight)
    mean_flux = np.bincount(inverse, weights=weight * flux) / sum_w
    mean_time = np.bincount(inverse, weights=time) / np.bincount(inverse)
    err = 1.0 / np.sqrt(sum_w)
    flags = np.zeros(len(keys), dtype="int64")
    np.bitwise_or.at(flags, inverse, flag.astype("int64"))
    return mean_time, mean_flux, err, flags


def _add(dropped, reason, count):
    if count:
        dropped[reason] = dropped.get(reason, 0) + int(count)


def _product_arrays(product, options, dropped):
    """Masked (and binned) arrays of one product; counts drops in *dropped*."""
    spec = MISSIONS[product["mission"]]
    path = product["path"]
    if product["timeref"] != "SOLARSYSTEM" or product["timesys"] != "TDB" or \
            product["timeunit"] not in ("d", "day", "days"):
        raise MissionFileError(path, f"TIMESYS={product['timesys']}, TIMEREF="
                                     f"{product['timeref']}, TIMEUNIT={product['timeunit']}; "
                                     "expected barycentric TDB days (TIMESYS='TDB', "
                                     "TIMEREF='SOLARSYSTEM')")
    flux_column = options["flux_column"].upper()
    units = product.get("units", {flux_column: product.get("flux_unit"),
                                  flux_column + "_ERR": product.get("flux_unit")})
    unit = _flux_unit(units.get(flux_column), path, flux_column)
    err_unit = _flux_unit(units.get(flux_column + "_ERR"), path, flux_column + "_ERR")
    t = product["TIME"]
    f = product[flux_column]
    e = product[flux_column + "_ERR"]
    q = product["QUALITY"]
    keep = np.isfinite(t)
    _add(dropped, "TIME is NaN", (~keep).sum())
    bitmask = _quality_bitmask(spec, options["quality_bitmask"])
    if bitmask:
        bad = keep & ((q & bitmask) != 0)
        _add(dropped, f"{spec.quality_column} & {bitmask} (quality_bitmask="
                      f"{options['quality_bitmask']!r})", bad.sum())
        keep &= ~bad
    bad = keep & ~np.isfinite(f)
    _add(dropped, f"{flux_column} is NaN", bad.sum())
    keep &= ~bad
    bad = keep & ~(np.isfinite(e) & (e > 0))
    _add(dropped, f"{flux_column}_ERR is NaN or not positive", bad.sum())
    keep &= ~bad
    t, f, e, q = t[keep], f[keep], e[keep], q[keep]
    # The file's own reference date, relative to the system's nominal one.
    system = TIME_SYSTEMS[spec.time_system]
    nominal_jd = system.mjd_offset + _MJD_ZERO_JD
    mjd = to_mjd_tdb(t + (product["bjdref"] - nominal_jd), spec.time_system)
    f = f * unit.to(u.electron / u.s)
    e = e * err_unit.to(u.electron / u.s)
    bin_to = options.get("bin_to")
    if bin_to is not None:
        n_before = len(mjd)
        mjd, f, e, q = bin_weighted(mjd, f, e, q, bin_to.to_value(u.day))
        _add(dropped, f"binned to {bin_to} (cadences merged)", n_before - len(mjd))
    return mjd, f, e, q


def _check_options(name, options):
    flux_column = str(options.get("flux_column", "pdcsap_flux")).lower()
    if flux_column not in FLUX_COLUMNS:
        raise ValueError(f"{name}: flux_column={options.get('flux_column')!r}; expected one "
                         f"of {FLUX_COLUMNS}")
    bin_to = options.get("bin_to")
    if bin_to is not None:
        if not isinstance(bin_to, u.Quantity) or not bin_to.unit.is_equivalent(u.day):
            raise TypeError(f"{name}: bin_to must be a time Quantity such as 30 * u.min, "
                            f"got {bin_to!r}")
        if not bin_to > 0:
            raise ValueError(f"{name}: bin_to must be positive, got {bin_to}")
    match = options.get("match", "all")
    if match not in ("all", "nearest"):
        raise ValueError(f"{name}: match={match!r}; expected 'all' or 'nearest'")
    return {**options, "flux_column": flux_column}


def _separation_arcsec(ra1, dec1, ra2, dec2):
    """Angular distance [arcsec] between positions in degrees (NaN if any is NaN)."""
    return angular_separation_deg(ra1, dec1, ra2, dec2) * 3600.0


def _season_text(spec, season):
    try:
        return f"{spec.season_name} {int(season)}"
    except (TypeError, ValueError):
        return f"{spec.season_name} {season}" if season not in (None, "") else ""


def products_to_lightcurve(targets, options, name, *, raise_errors=False):
    """Build a light curve from products of several targets.

    Parameters
    ----------
    targets : list of dict
        ``{"objectid": int, "ra": deg or NaN, "dec": deg or NaN,
        "label": str, "products": [read_lightcurve_file(...) dicts]}``.
    options : dict
        ``flux_column``, ``quality_bitmask``, ``bin_to``, ``match``.
    name : str
        Archive name for messages.
    raise_errors : bool
        Raise a product's error instead of reporting it as that target's
        failure (file reading).

    Returns
    -------
    `~multilc.collect.ParseResult`
    """
    options = _check_options(name, options)
    dropped, failures = {}, []
    cols = {k: [] for k in ("objectid", "band", "time", "flux", "err", "flag", "sid", "sep")}
    notes = {}
    ra_map, dec_map, labels = {}, {}, {}
    for target in targets:
        oid = int(target["objectid"])
        products = list(target["products"])
        t_ra, t_dec = target.get("ra", np.nan), target.get("dec", np.nan)
        have_pos = np.isfinite(t_ra) and np.isfinite(t_dec)
        seps = [_separation_arcsec(t_ra, t_dec, p["ra"], p["dec"]) if have_pos else np.nan
                for p in products]
        if options["match"] == "nearest" and products and np.isfinite(seps).any():
            nearest_id = products[int(np.nanargmin(seps))]["target_id"]
            others = [i for i, p in enumerate(products) if p["target_id"] != nearest_id]
            for i in others:
                _add(dropped, "not the nearest target (match='nearest')",
                     len(products[i]["TIME"]))
            products = [p for i, p in enumerate(products) if i not in others]
            seps = [s for i, s in enumerate(seps) if i not in others]
        for p, sep in zip(products, seps):
            spec = MISSIONS[p["mission"]]
            if spec.archive != name and name in MISSIONS:
                failures.append(Failure(name, [oid], "WrongMission",
                                        f"{name}: {p['path']} is a {spec.mission} file "
                                        f"({describe_targets([oid])})"))
                continue
            try:
                mjd, f, e, q = _product_arrays(p, options, dropped)
            except Exception as exc:  # noqa: BLE001 - one file fails its target only
                if raise_errors:
                    raise
                failures.append(Failure(name, [oid], type(exc).__name__,
                                        f"{name}: {exc} ({describe_targets([oid])})"))
                continue
            n = len(mjd)
            cols["objectid"].append(np.full(n, oid, "int64"))
            cols["band"].append(np.full(n, spec.band, dtype=object))
            cols["time"].append(mjd)
            cols["flux"].append(f)
            cols["err"].append(e)
            cols["flag"].append(q)
            cols["sid"].append(np.full(n, p["target_id"], "int64"))
            cols["sep"].append(np.full(n, sep))
            items = notes.setdefault(spec.band, {"author": [], "seasons": []})
            items["author"].append(p["author"])
            season = _season_text(spec, p["season"])
            if season:
                items["seasons"].append((p["season"], season))
        ra_map[oid] = t_ra * u.deg if have_pos else None
        dec_map[oid] = t_dec * u.deg if have_pos else None
        labels[oid] = target.get("label", "")
    band_meta = {}
    for band, items in notes.items():
        seasons = [text for _, text in sorted(set(items["seasons"]),
                                              key=lambda s: (str(type(s[0])), s[0]))]
        parts = list(dict.fromkeys(items["author"])) + [options["flux_column"].upper()] + \
            seasons
        band_meta[band] = {"band_notes": "; ".join(parts)}
    if cols["time"]:
        cat = {k: np.concatenate(v) for k, v in cols.items()}
    else:
        cat = {k: np.array([], dtype="float64") for k in cols}
    if not len(cat["time"]):
        return ParseResult(MultiBandLightCurve.empty(), dropped, failures)
    rate = u.electron / u.s
    lc = MultiBandLightCurve.from_arrays(
        cat["objectid"], cat["band"].astype(str), Time(cat["time"], format="mjd", scale="tdb"),
        cat["flux"] * rate, cat["err"] * rate, flag=cat["flag"], source_id=cat["sid"],
        separation=cat["sep"] * u.arcsec,
        label={k: v for k, v in labels.items()},
        ra={k: v for k, v in ra_map.items() if v is not None} or None,
        dec={k: v for k, v in dec_map.items() if v is not None} or None,
        band_meta=band_meta)
    return ParseResult(lc, dropped, failures)


# --------------------------------------------------------------------------- archives
class _MissionArchive(Archive):
    """Light curves of one mission from MAST (see the module docstring).

    Options: ``author`` (default the mission pipeline; ``"any"`` for all),
    ``exptime`` (seconds, ``"fast"``/``"short"``/``"long"`` or None),
    ``flux_column`` (``"pdcsap_flux"`` or ``"sap_flux"``),
    ``quality_bitmask`` (lightkurve preset or int), ``bin_to`` (time
    Quantity or None), ``match`` (``"all"`` or ``"nearest"``).
    """

    spec: MissionSpec = None
    returns = "photometry"
    chunk_size = 200
    concurrency = 4
    default_radius = 1 * u.arcsec
    env_prefix = "MAST"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _check_options(self.name, self.options)
        _quality_bitmask(self.spec, self.options["quality_bitmask"])
        _exptime_range(self.name, self.options["exptime"])

    # ------------------------------------------------------------------ settings
    def _server(self):
        return str(self.setting("url")).rstrip("/")

    def _download_dir(self):
        """``download_dir`` setting, else ``<multilc cache>/mast``."""
        folder = self.setting("download_dir")
        if folder:
            return Path(folder)
        import multilc
        from multilc.collect.api import setting

        base = setting(multilc.conf, "cache_dir")
        if not base:
            platformdirs = require("platformdirs", "archives", "the MAST download "
                                   "folder (unless MULTILC_MAST_DOWNLOAD_DIR is set)")
            base = platformdirs.user_cache_dir("multilc")
        return Path(base) / "mast"

    # ------------------------------------------------------------------ MAST API
    def _invoke(self, batch, session, request):
        """Send one MAST API request; follow long polling and paging.

        Parameters
        ----------
        batch : `~multilc.collect.api.Batch`
            The targets concerned (for error messages).
        session : requests.Session
        request : dict
            The MashupRequest without ``page``/``pagesize``.

        Returns
        -------
        rows : list of dict
            The ``data`` rows of every page.
        requests : int
            HTTP requests sent.
        """
        url = self._server() + INVOKE_PATH
        pagesize = int(self.setting("pagesize"))
        poll_limit = int(self.setting("poll_limit"))
        poll_interval = float(self.setting("poll_interval"))
        rows, sent, page, expected = [], 0, 1, None
        while True:
            body = dict(request, format="json", pagesize=pagesize, page=page)
            polls = 0
            while True:
                # The MAST API takes one form field, ``request``, holding the JSON.
                resp = http_request(self, batch, "POST", url, session=session,
                                    timeout=self.timeout,
                                    data={"request": json.dumps(body)},
                                    headers={"Accept": "application/json"})
                sent += 1
                answer = self._json(resp, batch, request["service"])
                status = str(answer.get("status", "")).upper()
                if status != "EXECUTING":
                    break
                # Long polling: MAST asks the client to send the same request again.
                polls += 1
                if polls > poll_limit:
                    raise self.error(f"{request['service']} still EXECUTING after "
                                     f"{polls} polls", batch, transient=True)
                time.sleep(poll_interval)
            if status != "COMPLETE":
                msg = str(answer.get("msg") or "").strip() or "no message"
                raise self.error(f"{request['service']} answered status "
                                 f"{status or '(none)'}: {msg[:300]}", batch)
            data = answer.get("data")
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise self.error(f"{request['service']} answer has no list of rows in "
                                 "'data'", batch)
            paging = answer.get("paging") or {}
            if not isinstance(paging, dict):
                paging = {}
            declared = paging.get("rows")
            if declared is not None and int(declared) != len(data):
                raise self.error(f"{request['service']} page {page} declares {declared} "
                                 f"rows but holds {len(data)} (cut off)", batch,
                                 transient=True)
            rows.extend(data)
            if paging.get("rowsFiltered") is not None:
                expected = int(paging["rowsFiltered"])
            pages = int(paging.get("pagesFiltered") or 1)
            if page >= pages or not data:
                break
            page += 1
        if expected is not None and expected != len(rows):
            raise self.error(f"{request['service']} declares {expected} rows "
                             f"(paging.rowsFiltered) but {len(rows)} arrived over {page} "
                             "page(s); the answer is incomplete", batch, transient=True)
        return rows, sent

    def _json(self, resp, batch, service):
        text_type = resp.headers.get("Content-Type", "")
        try:
            answer = resp.json()
        except ValueError:
            head = resp.text[:300]
            title = re.search(r"<title>(.*?)</title>", head, re.I | re.S)
            what = f"an HTML page ({title.group(1).strip()})" if title else \
                f"non-JSON content ({text_type or 'no content type'})"
            raise self.error(f"{service} answered with {what}", batch,
                             transient=True) from None
        if not isinstance(answer, dict):
            raise self.error(f"{service} answer is not a JSON object", batch)
        return answer

    def _crossmatch(self, batch, session):
        """CAOM observations of this mission near each target of *batch*.

        Returns
        -------
        observations : dict
            ``{obsid: {CAOM fields..., "objectids": [..]}}``.
        requests : int
        """
        radius_deg = self.radius.to_value(u.deg)
        upload = {"fields": [{"name": "ra", "type": "float"},
                             {"name": "dec", "type": "float"},
                             {"name": "objectid", "type": "int"}],
                  "data": [{"ra": float(r), "dec": float(d), "objectid": int(o)}
                           for o, r, d in zip(batch.objectid, batch.ra, batch.dec)]}
        request = {"service": "Mast.Caom.Crossmatch", "data": upload,
                   "params": {"raColumn": "ra", "decColumn": "dec", "radius": radius_deg}}
        rows, sent = self._invoke(batch, session, request)
        lo, hi = _exptime_range(self.name, self.options["exptime"])
        author = self.options["author"]
        authors = None if author in (None, "any", "all") else \
            {a.lower() for a in np.atleast_1d(author)}
        observations = {}
        tol = self.radius.to_value(u.arcsec) * (1 + 1e-9) + 1e-6
        for row in rows:
            collection = str(row.get("obs_collection") or row.get("project") or "")
            if collection.lower() != self.spec.mission.lower():
                continue
            if str(row.get("dataproduct_type") or "").lower() != "timeseries":
                continue
            if authors is not None and \
                    str(row.get("provenance_name") or "").lower() not in authors:
                continue
            exptime = _float(row.get("t_exptime"))
            if lo is not None and not (lo <= exptime < hi):
                continue
            obsid = str(row.get("obsid") or "").strip()
            s_ra, s_dec = _float(row.get("s_ra")), _float(row.get("s_dec"))
            if not obsid or not (np.isfinite(s_ra) and np.isfinite(s_dec)):
                continue
            sep = _separation_arcsec(batch.ra, batch.dec, s_ra, s_dec)
            owners = [int(o) for o in batch.objectid[sep <= tol]]
            if not owners:
                continue
            obs = observations.setdefault(obsid, {
                "obsid": obsid, "obs_id": str(row.get("obs_id") or ""),
                "obs_collection": collection, "author": str(row.get("provenance_name") or
                                                            self.spec.author),
                "exptime": exptime, "season": row.get("sequence_number"),
                "objectids": []})
            obs["objectids"] = sorted(set(obs["objectids"]) | set(owners))
        return observations, sent

    def _products(self, batch, session, observations):
        """Light-curve files of *observations* (``Mast.Caom.Products``)."""
        obsids = sorted(observations)
        chunk = max(1, int(self.setting("products_chunk")))
        products, sent = {}, 0
        for start in range(0, len(obsids), chunk):
            part = obsids[start:start + chunk]
            request = {"service": "Mast.Caom.Products", "params": {"obsid": ",".join(part)}}
            rows, n = self._invoke(batch, session, request)
            sent += n
            for row in rows:
                obs = observations.get(str(row.get("obsID") or row.get("obsid") or ""))
                name = str(row.get("productFilename") or "")
                uri = str(row.get("dataURI") or "")
                # lightkurve's rule for light-curve files (search._filter_products).
                if obs is None or not name.lower().endswith("lc.fits") or not uri:
                    continue
                size = _float(row.get("size"))
                products.setdefault(uri, {
                    "dataURI": uri, "filename": name,
                    "obs_id": str(row.get("obs_id") or obs["obs_id"]),
                    "obs_collection": obs["obs_collection"], "author": obs["author"],
                    "size": int(size) if np.isfinite(size) and size > 0 else None,
                    "objectids": obs["objectids"]})
        return products, sent

    # ------------------------------------------------------------------ files
    def _local_path(self, folder, product):
        parts = [product["obs_collection"], product["obs_id"], product["filename"]]
        for part in parts:
            if not _SAFE_NAME.match(part) or part in (".", ".."):
                raise ArchiveError(f"MAST product name {part!r} is not a safe file name",
                                   archive=self.name, objectids=product["objectids"])
        return folder.joinpath("mastDownload", *parts)

    def _download(self, batch, session, product, path):
        """Stream one file to *path* (atomically); True if it was fetched."""
        size = product["size"]
        if path.exists() and (size is None or path.stat().st_size == size):
            return False
        owners = batch.subset(np.isin(batch.objectid, product["objectids"]))
        resp = http_request(self, owners, "GET", self._server() + DOWNLOAD_PATH,
                            session=session, timeout=self.timeout,
                            params={"uri": product["dataURI"]}, stream=True)
        import requests

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        written = 0
        try:
            with resp, os.fdopen(fd, "wb") as out:
                ctype = resp.headers.get("Content-Type", "")
                if "html" in ctype.lower():
                    raise self.error(f"download of {product['filename']} answered with an "
                                     "HTML page", owners, transient=True)
                declared = resp.headers.get("Content-Length")
                try:
                    for block in resp.iter_content(1 << 16):
                        out.write(block)
                        written += len(block)
                except requests.RequestException as exc:
                    raise self.error(f"download of {product['filename']} broke off after "
                                     f"{written} bytes: {exc}", owners,
                                     transient=True) from exc
                for what, expect in (("Content-Length", declared),
                                     ("the size MAST lists", size)):
                    if expect is not None and int(expect) != written:
                        raise self.error(f"download of {product['filename']} gave "
                                         f"{written} bytes, {what} says {int(expect)}",
                                         owners, transient=True)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True

    def _fetch_and_read(self, batch, local, sessions, product, folder):
        """Download (with retries of transient errors) and read one product."""
        if not hasattr(local, "session"):
            local.session = http_session(self.timeout)
            sessions.append(local.session)
        path = self._local_path(folder, product)
        retries = max(0, int(self.setting("download_retries")))
        for attempt in range(retries + 1):
            try:
                fetched = self._download(batch, local.session, product, path)
                break
            except ArchiveError as exc:
                if not exc.transient or attempt == retries:
                    raise
                time.sleep(min(4.0, 0.5 * 2 ** attempt))
        try:
            return read_lightcurve_file(path, author=product["author"]), fetched
        except MissionFileError:
            # A damaged file must not stay in the download folder, where it
            # would fail every later run without a request.
            path.unlink(missing_ok=True)
            raise

    def query(self, batch):
        """Find, download and read the light-curve files of *batch*'s targets.

        Returns
        -------
        dict
            ``{"targets": [{"objectid", "ra", "dec", "label", "products":
            [read_lightcurve_file dicts]}], "failures": [{"objectids",
            "error_type", "message", "transient"}], "requests": {"search",
            "download"}}`` (picklable); one target's failure never removes
            another target's products.
        """
        session = http_session(self.timeout)
        observations, n_search = self._crossmatch(batch, session)
        products, n_products = ({}, 0) if not observations else \
            self._products(batch, session, observations)
        folder = self._download_dir()
        per_target = {int(o): [] for o in batch.objectid}
        failures = []
        fetched = 0
        if products:
            local = threading.local()
            sessions = []            # one requests.Session per download thread
            workers = max(1, min(int(self.setting("download_concurrency")), len(products)))
            with cf.ThreadPoolExecutor(workers, thread_name_prefix=f"{self.name}-dl") as pool:
                futures = {pool.submit(self._fetch_and_read, batch, local, sessions, p,
                                       folder): p
                           for p in products.values()}
                for fut in cf.as_completed(futures):
                    product = futures[fut]
                    try:
                        arrays, got = fut.result()
                    except Exception as exc:  # noqa: BLE001 - isolated per target
                        failures.append({
                            "objectids": list(product["objectids"]),
                            "error_type": type(exc).__name__,
                            "message": f"{self.name}: {product['filename']}: "
                                       f"{getattr(exc, 'message', None) or exc} "
                                       f"({describe_targets(product['objectids'])})",
                            "transient": bool(getattr(exc, "transient", False))})
                        continue
                    fetched += got
                    for oid in product["objectids"]:
                        per_target[oid].append((product["dataURI"], arrays))
            for sess in sessions:
                sess.close()
        session.close()
        targets = []
        for i, oid in enumerate(batch.objectid):
            found = sorted(per_target[int(oid)], key=lambda item: item[0])
            targets.append({"objectid": int(oid), "ra": float(batch.ra[i]),
                            "dec": float(batch.dec[i]), "label": str(batch.label[i]),
                            "products": [arrays for _, arrays in found]})
        return {"targets": targets, "failures": failures,
                "requests": {"search": n_search + n_products, "download": fetched}}

    # ------------------------------------------------------------------ parse
    def parse(self, raw, batch):
        if not isinstance(raw, dict) or "targets" not in raw:
            raise self.error(f"unexpected raw response of type {type(raw).__name__}", batch)
        result = products_to_lightcurve(raw["targets"], self.options, self.name)
        for f in raw.get("failures", []):
            result.failures.append(Failure(self.name, list(f["objectids"]), f["error_type"],
                                           f["message"], bool(f.get("transient", False))))
        return result


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _exptime_range(name, exptime):
    """``(low, high)`` seconds of t_exptime for an ``exptime`` option (None: all)."""
    if exptime is None:
        return None, None
    if isinstance(exptime, str):
        try:
            return _EXPTIME_WORDS[exptime.lower()]
        except KeyError:
            raise ValueError(f"{name}: exptime={exptime!r}; expected seconds, 'fast', "
                             "'short', 'long' or None") from None
    if isinstance(exptime, u.Quantity):
        exptime = exptime.to_value(u.s)
    value = float(exptime)
    # lightkurve compares exposure times for equality; MAST lists them as floats.
    return value - 0.5, value + 0.5


def _options_for(spec):
    return {"author": spec.author, "exptime": spec.exptime, "flux_column": "pdcsap_flux",
            "quality_bitmask": "default", "bin_to": None, "match": "all"}


@register_archive
class TessArchive(_MissionArchive):
    __doc__ = _MissionArchive.__doc__
    name = "tess"
    description = "TESS SPOC 2-min light curves (PDCSAP e-/s) from MAST"
    spec = MISSIONS["tess"]
    bands = ("tess:TESS",)
    default_options = _options_for(MISSIONS["tess"])


@register_archive
class KeplerArchive(_MissionArchive):
    __doc__ = _MissionArchive.__doc__
    name = "kepler"
    description = "Kepler long-cadence light curves (PDCSAP e-/s) from MAST"
    spec = MISSIONS["kepler"]
    bands = ("kepler:Kepler",)
    default_options = _options_for(MISSIONS["kepler"])


@register_archive
class K2Archive(_MissionArchive):
    __doc__ = _MissionArchive.__doc__
    name = "k2"
    description = "K2 long-cadence light curves (PDCSAP e-/s) from MAST"
    spec = MISSIONS["k2"]
    bands = ("k2:K2",)
    default_options = _options_for(MISSIONS["k2"])


# --------------------------------------------------------------------------- file readers
def read_mission_file(path, *, mission=None, objectid=None, label=None, ra=None, dec=None,
                      flux_column="pdcsap_flux", quality_bitmask="default", bin_to=None):
    """Read TESS/Kepler/K2 light-curve FITS file(s) into a `MultiBandLightCurve`.

    Parameters
    ----------
    path : str, path-like, binary file object or list of them
        Light-curve files of one target (e.g. several sectors).
    mission : {"tess", "kepler", "k2"}, optional
        Expected mission; the header (TELESCOP/MISSION) must agree.
    objectid : int, optional
        multilc object id; default the TIC/KIC/EPIC id of the first file.
    label : str, optional
        Object label; default the header OBJECT.
    ra, dec : `~astropy.units.Quantity`, optional
        Target position (for ``separation``); default RA_OBJ/DEC_OBJ.
    flux_column, quality_bitmask, bin_to
        As for the archive reader.

    Returns
    -------
    `MultiBandLightCurve`
        Rows removed by masks are logged (astropy log, INFO) with counts.
    """
    single = isinstance(path, (str, os.PathLike)) or hasattr(path, "read")
    paths = [path] if single else list(path)
    if not paths:
        raise ValueError("no light-curve file given")
    products = [read_lightcurve_file(p) for p in paths]
    for p in products:
        if mission is not None and p["mission"] != mission:
            raise MissionFileError(p["path"], f"the header says "
                                              f"{MISSIONS[p['mission']].mission} (TELESCOP/"
                                              f"MISSION), not {MISSIONS[mission].mission}; use "
                                              f"format='{p['mission']}.lightcurve'")
    first = products[0]
    for name, value in (("ra", ra), ("dec", dec)):
        if value is not None and not (isinstance(value, u.Quantity)
                                      and value.unit.is_equivalent(u.deg)):
            raise TypeError(f"{name} must be an angle Quantity, got {value!r}")
    target = {
        "objectid": int(objectid if objectid is not None else first["target_id"]),
        "ra": ra.to_value(u.deg) if ra is not None else first["ra"],
        "dec": dec.to_value(u.deg) if dec is not None else first["dec"],
        "label": label if label is not None else first["object"],
        "products": products,
    }
    name = mission or first["mission"]
    result = products_to_lightcurve(
        [target], {"flux_column": flux_column, "quality_bitmask": quality_bitmask,
                   "bin_to": bin_to, "match": "all"}, name, raise_errors=True)
    if result.failures:
        raise MissionFileError(", ".join(str(p["path"]) for p in products),
                               "; ".join(f.message for f in result.failures))
    if result.dropped:
        log.info(f"{name}.lightcurve: dropped " + ", ".join(
            f"{n} ({reason})" for reason, n in result.dropped.items()))
    return result.lc


def _file_reader(mission):
    def reader(path, **kwargs):
        return read_mission_file(path, mission=mission, **kwargs)

    reader.__doc__ = (f"Read {MISSIONS[mission].mission} light-curve FITS file(s); "
                      "see `multilc.archives.tess_kepler.read_mission_file`.")
    return reader


def _identifier(mission):
    def identify(origin, path, fileobj, *args, **kwargs):
        target = path if path is not None else (args[0] if args else None)
        if origin != "read" or not isinstance(target, (str, os.PathLike)):
            return False
        text = os.fspath(target).lower()
        if not text.endswith((".fits", ".fits.gz", ".fit")) or not os.path.isfile(text):
            return False
        try:
            with fits.open(target, memmap=False) as hdul:
                return _LC_EXTENSION in hdul and \
                    _mission_from_header(hdul[0].header, target) == mission
        except (OSError, ValueError):
            return False
    return identify


for _name in MISSIONS:
    register_file_format(f"{_name}.lightcurve", MultiBandLightCurve,
                         reader=_file_reader(_name))
    readwrite_registry.register_identifier(f"{_name}.lightcurve", MultiBandLightCurve,
                                           _identifier(_name), force=True)
