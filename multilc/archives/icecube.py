"""IceCube neutrino events near the targets: the 2008-2018 point-source release.

What is read
    The IceCube all-sky point-source event release "IceCube Data for Neutrino
    Point-Source Searches: Years 2008-2018" (IceCube Collaboration 2021,
    arXiv:2101.09836; IceTracks-DR1, doi:10.7910/DVN/VKL316): one
    whitespace-separated text file per detector season,
    ``events/IC40_exp.csv``, ``IC59``, ``IC79``, ``IC86_I`` ... ``IC86_VII``
    (the ``.csv`` extension notwithstanding), each starting with one header
    line (columns aligned with runs of spaces)::

        # MJD[days] log10(E/GeV) AngErr[deg] RA[deg] Dec[deg] Azimuth[deg] Zenith[deg]

    Columns are located by these header names, not by position.

Units and times (release ``readme.txt``)
    ``MJD[days]`` is the event time in **UT1** given to 1e-8 d (about 1 ms);
    the detector is at the South Pole, so times are converted with the time
    system ``"icecube.mjd_ut1"`` of `multilc.timescales` (UT1 -> TDB, plus the
    light travel time from the South Pole to the solar-system barycentre
    towards the *target*).  ``log10(E/GeV)`` is the reconstructed **muon**
    energy (not the neutrino energy); it is stored linear, in GeV
    (``10**log10E``).  ``AngErr[deg]`` is the symmetric angular uncertainty
    (floor 0.2 deg); ``RA[deg]``/``Dec[deg]`` are J2000 (treated as ICRS, the
    difference of < 0.1 arcsec is far below the degree-sized errors).

Match policy
    An event belongs to a target when the target lies inside the event's own
    angular-error circle (separation < AngErr, strictly, as the tutorial code
    users know) and within ``max_search_radius`` (default 2 deg) of it.  All
    targets are matched at once with a KD-tree
    (`astropy.coordinates.search_around_sky`).  Options: ``top_n`` keeps the N
    most energetic matched events per target (default None = all; today's
    tutorial uses 3), ``match="nearest"`` keeps only the closest event.  The
    ``radius`` common to all archives is not used.  Events removed by
    ``top_n``/``match`` are counted in the report's ``dropped``.

The release has no event identifier; ``event_id`` is ``"MJD<time>"`` with the
UT1 MJD written as in the file (8 decimals), the same for the HEASARC copy of
the release (``heasarc.icecube``), so results from both routes can be compared.

Duplicated event
    The release readme says one event of the IC86-2015 season is duplicated
    (which one is not said, and that season is not available offline here).
    Identical rows (same time, energy, error, position) matched to the same
    target are kept once and counted as ``dropped["duplicate event"]``.

Where the release comes from (settings)
    ``release``: a local folder holding ``events/<season>_exp.csv`` (at any
    depth) or the release zip file; empty (default) means: download
    ``release_url`` once into ``multilc.collect.default_cache_dir() /
    "icecube"``, unpack it there and reuse it from then on.  The original URL
    ``http://icecube.wisc.edu/data-releases/20210126_PS-IC40-IC86_VII.zip``
    stopped working in 2024 (nasa-fornax/fornax-demo-notebooks issue #697;
    nu-isance/icecube_tools issue #56: "the 10 year ps data release is now on
    dataverse"); the default is the Harvard Dataverse bulk download of
    doi:10.7910/DVN/VKL316, the URL used by icecube_tools after that move.  The
    layout inside the Dataverse zip (folders, nested zips) is not documented;
    season files are therefore searched for anywhere below the unpacked folder,
    and zip files found inside are unpacked as well.  Network use: one download
    of about 40 MB, then none.

File format ``icecube.events``
    ``MultiBandLightCurve.read(path, format="icecube.events", targets=...)``
    reads one season file with the same match; ``targets`` is required (an
    event list without targets has no objects to belong to).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.config import ConfigItem, ConfigNamespace
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table
from astropy.time import Time

from multilc.collect.api import (Archive, Batch, ParseResult, check_radius, http_request,
                                 register_archive)
from multilc.collect.contract import (MJD_RANGE, Field, ResponseContract, ResponseError,
                                      merge_dropped)
from multilc.errors import FileFormatError, InputError
from multilc.io.registry import register_file_format
from multilc.lightcurve import MultiBandLightCurve, make_events
from multilc.timescales import to_mjd_tdb

__all__ = ["IceCube", "conf", "read_season_file", "read_events_file", "SEASONS"]


# --------------------------------------------------------------------------- settings
class Conf(ConfigNamespace):
    """Settings of the IceCube reader (``MULTILC_ICECUBE_<NAME>`` overrides)."""

    release = ConfigItem(
        "", "Local copy of the release: a folder with events/<season>_exp.csv files "
        "(at any depth) or the release zip file.  Empty: download release_url once "
        "into the multilc cache folder.")
    release_url = ConfigItem(
        "https://dataverse.harvard.edu/api/access/dataset/:persistentId/"
        "?persistentId=doi:10.7910/DVN/VKL316",
        "URL of the release zip (IceTracks-DR1 on Harvard Dataverse).")
    chunk_size = ConfigItem(10_000, "Targets matched per batch (the match is local; a "
                            "batch's matches are one cached response).")


conf = Conf()

ARCHIVE_NAME = "icecube"

#: Season file stems of the release, in time order (release file list).
SEASONS = ("IC40", "IC59", "IC79", "IC86_I", "IC86_II", "IC86_III", "IC86_IV", "IC86_V",
           "IC86_VI", "IC86_VII")

#: Header names of the event files (release readme.txt and the IC40 file) -> our names.
EVENT_COLUMNS = {
    "MJD[days]": "mjd",
    "log10(E/GeV)": "log10_energy",
    "AngErr[deg]": "ang_err",
    "RA[deg]": "ra",
    "Dec[deg]": "dec",
    "Azimuth[deg]": "azimuth",
    "Zenith[deg]": "zenith",
}
#: Columns a file must have for the match (azimuth/zenith are not used).
REQUIRED_COLUMNS = ("MJD[days]", "log10(E/GeV)", "AngErr[deg]", "RA[deg]", "Dec[deg]")

#: Time system of the event MJDs (release readme: "The MJD time (ut1)").
TIME_SYSTEM = "icecube.mjd_ut1"

#: Columns of the candidate table that ``query`` returns and ``parse`` reads.
CANDIDATE_COLUMNS = ("objectid", "mjd", "energy_gev", "ang_err", "ra", "dec")

DEFAULT_OPTIONS = {"max_search_radius": 2 * u.deg, "top_n": None, "match": "all"}

#: What a row of a release event file must hold to be matched at all (same
#: ranges as `CANDIDATE_CONTRACT`, on the file's own columns).  Rows that
#: fail are left out of the match and counted (``read_season_file`` puts the
#: counts in the table's ``meta["dropped"]``).
EVENT_CONTRACT = ResponseContract(
    archive=ARCHIVE_NAME, what="release event file",
    fields=(Field("mjd", "float", unit=u.d, valid=MJD_RANGE),
            Field("log10_energy", "float", valid=(1.0, 10.0)),
            Field("ang_err", "float", unit=u.deg, positive=True, valid=(None, 180.0)),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0))))

#: What a candidate (target, event) row must hold, from whichever route
#: (release files or HEASARC's copy).  Plausible ranges: `MJD_RANGE`; the
#: release's muon-energy proxy spans 10**1.5 - 10**9 GeV (release readme and
#: the IC40 file: log10(E/GeV) 1.6-8.2), so energies outside 10 GeV - 1e10 GeV
#: are a unit or log/linear mix-up, dropped and counted; AngErr has a floor of
#: 0.2 deg (readme) and cannot exceed 180 deg.
CANDIDATE_CONTRACT = ResponseContract(
    archive=ARCHIVE_NAME, what="candidate events",
    fields=(Field("objectid", "int"),
            Field("mjd", "float", unit=u.d, valid=MJD_RANGE),
            Field("energy_gev", "float", unit=u.GeV, valid=(10.0, 1e10)),
            Field("ang_err", "float", unit=u.deg, positive=True, valid=(None, 180.0)),
            Field("ra", "float", unit=u.deg, valid=(0.0, 360.0)),
            Field("dec", "float", unit=u.deg, valid=(-90.0, 90.0))),
    source="IceCube 2008-2018 point-source release readme.txt")


# --------------------------------------------------------------------------- options
def check_event_options(archive, options):
    """Validate ``max_search_radius``, ``top_n`` and ``match``; return them normalised."""
    out = dict(options)
    out["max_search_radius"] = check_radius(out["max_search_radius"], archive=archive,
                                            name="max_search_radius").to(u.deg)
    top_n = out["top_n"]
    if top_n is not None:
        if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 1:
            raise InputError(f"{archive}: top_n must be a positive integer or None, "
                             f"got {top_n!r}")
        out["top_n"] = int(top_n)
    if out["match"] not in ("all", "nearest"):
        raise InputError(f"{archive}: match must be 'all' or 'nearest', got {out['match']!r}")
    return out


# --------------------------------------------------------------------------- files
def read_season_file(path):
    """Read one season event file of the release.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    `~astropy.table.Table`
        Columns ``mjd`` [d, UT1], ``log10_energy`` [log10(E/GeV)], ``ang_err``
        [deg], ``ra``, ``dec`` [deg] (plus ``azimuth``, ``zenith`` when present)
        and ``line`` (1-based line number in the file).  Rows outside
        `EVENT_CONTRACT` are left out and counted in ``meta["dropped"]``.

    Raises
    ------
    multilc.errors.FileFormatError
        When the header line is missing, required columns are absent, or a
        row cannot be read; the message names the file.
    """
    import pandas as pd

    path = Path(path)
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            first = fh.readline()
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read: {exc}") from exc
    if not first.startswith("#"):
        raise FileFormatError(
            path, f"does not start with the '#' header line of an IceCube "
            f"event file ('# MJD[days] log10(E/GeV) AngErr[deg] RA[deg] Dec[deg] ...'); "
            f"first line: {first.strip()[:80]!r}")
    names = first.lstrip("#").split()
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise FileFormatError(path, f"lacks the IceCube columns {missing} in its header "
                              f"(found {names})")
    if len(set(names)) != len(names):
        raise FileFormatError(path, f"repeats column names in its header {names}")
    try:
        with warnings.catch_warnings():
            # pandas only warns when rows have more values than the header names
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=r"\s+", comment="#", header=None, names=names,
                                dtype=np.float64, engine="c", index_col=False)
    except (ValueError, OverflowError, UnicodeError, pd.errors.ParserError,
            pd.errors.ParserWarning, pd.errors.EmptyDataError) as exc:
        raise FileFormatError(path, f"rows do not match the IceCube header {names}: "
                              f"{exc}") from None
    short = np.isnan(frame[list(REQUIRED_COLUMNS)].to_numpy()).any(axis=1)
    if short.any():
        bad = int(short.argmax()) + 2
        raise FileFormatError(path, f"line {bad} has fewer values than the "
                              f"{len(names)} columns of its IceCube header (cut off?)")
    table = Table({EVENT_COLUMNS.get(n, n): frame[n].to_numpy() for n in names})
    # Comment lines are only the header (checked above), so data row i is line i + 2.
    table["line"] = np.arange(2, len(table) + 2)
    checked = EVENT_CONTRACT.check(table)
    if len(checked) < len(table):
        table = table[checked.index]
    table.meta["dropped"] = dict(checked.dropped)
    return table


def _season_files(root):
    """Season event files below *root*, release order first; unpack nested zips."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*_exp.csv") if p.parent.name == "events")
    if not files:
        for inner in sorted(root.rglob("*.zip")):
            target = inner.with_suffix("")
            if not target.exists():
                _extract(inner, target)
        files = sorted(p for p in root.rglob("*_exp.csv") if p.parent.name == "events")
    order = {s: i for i, s in enumerate(SEASONS)}
    return sorted(files, key=lambda p: (order.get(p.stem[:-4], len(order)), str(p)))


def _process_lock(path):
    """A lock shared by every process using *path* (a ``<path>.lock`` file beside it).

    Two ``collect()`` runs in different processes may find the release missing
    at the same moment; the lock makes the second wait for the first's unpack
    (or download) and then use it, instead of replacing a folder in use.
    """
    from multilc.errors import require

    filelock = require("filelock", "archives", "the icecube reader")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(path) + ".lock")


def _extract(zip_path, folder):
    """Unpack *zip_path* into *folder* atomically (a half-unpacked folder never shows).

    Safe between threads and processes: whoever holds the folder's lock
    unpacks into a temporary folder and renames it; whoever waited finds the
    folder there and leaves it alone.
    """
    folder = Path(folder)
    with _process_lock(folder):
        if folder.exists():
            return
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-unpack-"))
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
            os.replace(tmp, folder)
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise


def load_events(files):
    """Read and stack season files; adds a ``season`` column."""
    from astropy.table import vstack

    tables = []
    for path in files:
        t = read_season_file(path)
        t["season"] = np.full(len(t), Path(path).stem.removesuffix("_exp"))
        tables.append(t)
    if not tables:
        raise ValueError(f"{ARCHIVE_NAME}: no season files given")
    dropped = {}
    for t in tables:
        merge_dropped(dropped, t.meta.get("dropped"))
    out = vstack(tables, metadata_conflicts="silent") if len(tables) > 1 else tables[0]
    out.meta["dropped"] = dropped
    return out


# --------------------------------------------------------------------------- match
def event_coordinates(events):
    """The events' positions as a `~astropy.coordinates.SkyCoord` (ICRS)."""
    return SkyCoord(np.asarray(events["ra"]) * u.deg, np.asarray(events["dec"]) * u.deg,
                    frame="icrs")


def match_candidates(events, batch, max_search_radius, event_coord=None):
    """Events whose error circle holds a target, within *max_search_radius*.

    Parameters
    ----------
    events : `~astropy.table.Table`
        From `read_season_file` / `load_events`.
    batch : `~multilc.collect.api.Batch`
    max_search_radius : `~astropy.units.Quantity`
    event_coord : `~astropy.coordinates.SkyCoord`, optional
        `event_coordinates` of *events*; pass the same object again to reuse
        the KD-tree astropy stores on it.

    Returns
    -------
    `~astropy.table.Table` with ``CANDIDATE_COLUMNS`` (energy linear, GeV).
    """
    targets = batch.coord
    if event_coord is None:
        event_coord = event_coordinates(events)
    if len(targets) == 0 or len(event_coord) == 0:
        it, ie = np.zeros(0, int), np.zeros(0, int)
    else:
        it, ie, d2d, _ = search_around_sky(targets, event_coord, max_search_radius,
                                           storekdtree="_multilc_kdtree")
        # Only pairs with the target inside the error circle travel on (parse
        # applies the rule again; this keeps cached responses small).
        inside = d2d.deg < np.asarray(events["ang_err"], dtype=float)[ie]
        it, ie = it[inside], ie[inside]
    order = np.lexsort((ie, it))
    it, ie = it[order], ie[order]
    out = Table()
    out["objectid"] = np.asarray(batch.objectid, dtype="int64")[it]
    out["mjd"] = np.asarray(events["mjd"], dtype=float)[ie]
    # release readme: column log10(E/GeV) -> E in GeV
    out["energy_gev"] = 10.0 ** np.asarray(events["log10_energy"], dtype=float)[ie]
    out["ang_err"] = np.asarray(events["ang_err"], dtype=float)[ie]
    out["ra"] = np.asarray(events["ra"], dtype=float)[ie]
    out["dec"] = np.asarray(events["dec"], dtype=float)[ie]
    return out


def _target_positions(batch, objectid, archive):
    """Row of each *objectid* in *batch* (error if the response names a stranger)."""
    ids = np.asarray(batch.objectid, dtype="int64")
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids[order], objectid)
    pos = np.clip(pos, 0, max(len(ids) - 1, 0))
    found = (ids[order][pos] == objectid) if len(ids) else np.zeros(len(objectid), bool)
    if not np.all(found):
        strangers = sorted(set(np.asarray(objectid)[~found].tolist()))[:5]
        raise ResponseError(f"the response names objectid {strangers}, which are not in "
                            f"the batch ({batch.describe()})", archive=archive,
                            objectids=batch.objectid.tolist())
    return order[pos]


def _keep_per_target(objectid, sort_keys, n):
    """Mask keeping the first *n* rows per objectid after sorting by *sort_keys*."""
    order = np.lexsort(tuple(sort_keys[::-1]) + (objectid,))
    sorted_ids = objectid[order]
    start = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    keep = np.zeros(len(objectid), bool)
    keep[order[rank < n]] = True
    return keep


def events_from_candidates(candidates, batch, archive, options):
    """Turn candidate (target, event) pairs into a `ParseResult` of events.

    Shared by the release route (``icecube``), the HEASARC copy
    (``heasarc.icecube``) and the ``icecube.events`` file reader.

    Parameters
    ----------
    candidates : `~astropy.table.Table`
        ``CANDIDATE_COLUMNS``: objectid, mjd [d, UT1], energy_gev [GeV],
        ang_err [deg], ra, dec [deg].
    batch : `~multilc.collect.api.Batch`
    archive : str
        Archive name written on the events.
    options : dict
        ``max_search_radius``, ``top_n``, ``match`` (validated).
    """
    contract = dataclasses.replace(CANDIDATE_CONTRACT, archive=archive)
    checked = contract.check(candidates, objectids=batch.objectid.tolist())
    dropped = dict(checked.dropped)
    oid = checked["objectid"]
    mjd, energy, ang_err = checked["mjd"], checked["energy_gev"], checked["ang_err"]
    ra, dec = checked["ra"], checked["dec"]
    keep = np.ones(len(oid), bool)
    # The readme's duplicated event: identical rows for one target are kept once.
    rows = np.rec.fromarrays([oid, mjd, energy, ang_err, ra, dec])
    _, first = np.unique(rows, return_index=True)
    unique = np.zeros(len(oid), bool)
    unique[first] = True
    dup = keep & ~unique
    if dup.any():
        dropped["duplicate event"] = int(dup.sum())
    keep &= unique

    row = _target_positions(batch, oid, archive)
    t_ra, t_dec = np.asarray(batch.ra, float)[row], np.asarray(batch.dec, float)[row]
    sep = SkyCoord(t_ra * u.deg, t_dec * u.deg).separation(
        SkyCoord(np.nan_to_num(ra) * u.deg, np.nan_to_num(dec) * u.deg)).deg
    radius = options["max_search_radius"].to_value(u.deg)
    keep &= (sep < ang_err) & (sep <= radius)

    if options["match"] == "nearest":
        idx = np.flatnonzero(keep)
        best = _keep_per_target(oid[idx], [sep[idx]], 1)
        if (~best).any():
            dropped["not the nearest event (match='nearest')"] = int((~best).sum())
        keep[idx[~best]] = False
    if options["top_n"] is not None:
        idx = np.flatnonzero(keep)
        top = _keep_per_target(oid[idx], [-energy[idx], mjd[idx]], options["top_n"])
        if (~top).any():
            dropped[f"beyond the top_n={options['top_n']} most energetic"] = int((~top).sum())
        keep[idx[~top]] = False

    k = np.flatnonzero(keep)
    tdb = to_mjd_tdb(mjd[k], TIME_SYSTEM, ra=t_ra[k] * u.deg, dec=t_dec[k] * u.deg)
    events = make_events(
        oid[k], archive, Time(tdb, format="mjd", scale="tdb"),
        event_id=np.array([f"MJD{m:.8f}" for m in mjd[k]], dtype=str),
        energy=energy[k] * u.GeV, error_radius=ang_err[k] * u.deg,
        separation=sep[k] * u.deg)
    lc = MultiBandLightCurve.from_events(events, **_object_meta(batch, oid[k]))
    return ParseResult(lc, dropped=dropped)


def _object_meta(batch, objectids):
    """label/ra/dec mappings of the matched targets, for `from_events`."""
    ids = set(int(i) for i in objectids)
    meta = {"label": {}, "ra": {}, "dec": {}}
    for oid, r, d, lab in zip(batch.objectid, batch.ra, batch.dec, batch.label):
        if int(oid) in ids:
            meta["label"][int(oid)] = str(lab)
            meta["ra"][int(oid)] = float(r) * u.deg
            meta["dec"][int(oid)] = float(d) * u.deg
    return meta


def batch_from_targets(targets, archive, options):
    """A `Batch` of all *targets* (anything `multilc.samples.as_sample` takes)."""
    from multilc.samples import as_sample

    if targets is None:
        raise TypeError(f"{archive}: reading this file needs targets= (the positions to "
                        "match events to: a SkyCoord, a table with ra/dec, names, a Sample)")
    sample = as_sample(targets)
    coord = sample.coord.icrs
    return Batch(archive, 0, np.asarray(sample.objectid, dtype="int64"), coord.ra.deg,
                 coord.dec.deg, np.asarray(sample.table["label"], dtype=str), options)


# --------------------------------------------------------------------------- release
_RELEASE_LOCK = threading.Lock()
_EVENTS_CACHE = {}  # season-file tuple -> stacked events (one entry kept)


def _release_root(archive, batch):
    """Folder holding the unpacked release (downloading it once if needed)."""
    from multilc.collect import default_cache_dir

    location = archive.setting("release").strip()
    cache = Path(default_cache_dir()) / "icecube"
    if location:
        path = Path(location).expanduser()
        if path.is_dir():
            return path
        if path.is_file() and zipfile.is_zipfile(path):
            stat = path.stat()
            folder = cache / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
            with _RELEASE_LOCK:
                if not folder.exists():
                    _extract(path, folder)
            return folder
        raise archive.error(f"release setting {location!r} is neither a folder nor a zip "
                            "file", batch)
    url = archive.setting("release_url")
    name = Path(url.split("?")[0].rstrip("/")).name or "release"
    stem = name.removesuffix(".zip") if name.endswith(".zip") else \
        "release-" + _short_hash(url)
    folder = cache / stem
    if folder.exists():
        return folder
    with _RELEASE_LOCK, _process_lock(cache / f"{stem}.download"):
        if folder.exists():  # unpacked by another thread or process meanwhile
            return folder
        zip_path = cache / f"{stem}.zip"
        if not zip_path.exists():
            _download(archive, batch, url, zip_path)
        if not zipfile.is_zipfile(zip_path):
            zip_path.unlink()
            raise archive.error(f"{url} did not return a zip file", batch)
        _extract(zip_path, folder)
    return folder


def _short_hash(text):
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _download(archive, batch, url, zip_path):
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    resp = http_request(archive, batch, "GET", url, timeout=archive.timeout, stream=True)
    fd, tmp = tempfile.mkstemp(dir=zip_path.parent, prefix=".tmp-download-")
    try:
        with os.fdopen(fd, "wb") as fh:
            for block in resp.iter_content(1 << 20):
                fh.write(block)
        os.replace(tmp, zip_path)
    except Exception as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise archive.error(f"download of {url} broke off: {exc}", batch,
                            transient=True) from exc


def _release_events(archive, batch):
    root = _release_root(archive, batch)
    files = tuple(_season_files(root))
    if not files:
        raise archive.error(f"no season event files (events/<season>_exp.csv) found in "
                            f"{root}", batch)
    with _RELEASE_LOCK:
        cached = _EVENTS_CACHE.get(files)
        if cached is None:
            events = load_events(files)
            cached = (events, event_coordinates(events))
            _EVENTS_CACHE.clear()
            _EVENTS_CACHE[files] = cached
    return cached


# --------------------------------------------------------------------------- archive
@register_archive
class IceCube(Archive):
    """IceCube 2008-2018 point-source events near the targets (local match).

    Options: ``max_search_radius`` (angle Quantity, default 2 deg), ``top_n``
    (keep the N most energetic events per target; default None = all),
    ``match`` (``"all"`` or ``"nearest"``).  See `multilc.archives.icecube`.
    """

    name = ARCHIVE_NAME
    description = "IceCube 2008-2018 point-source neutrino events (release files, local match)"
    returns = "events"
    bands = (ARCHIVE_NAME,)
    chunk_size = 10_000
    concurrency = 1
    default_options = DEFAULT_OPTIONS
    env_prefix = "ICECUBE"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        self.options = check_event_options(self.name, self.options)

    def query(self, batch):
        """Candidate events within ``max_search_radius`` of the batch's targets."""
        events, coord = _release_events(self, batch)
        candidates = match_candidates(events, batch, batch.options["max_search_radius"],
                                      coord)
        # Rows of the release itself left out (EVENT_CONTRACT) are counted once,
        # in the report of the plan's first batch.
        release_dropped = dict(events.meta.get("dropped", {})) if batch.index == 0 else {}
        return {"candidates": candidates, "release_dropped": release_dropped}

    def parse(self, raw, batch):
        result = events_from_candidates(raw["candidates"], batch, self.name,
                                        check_event_options(self.name, batch.options))
        merge_dropped(result.dropped, raw.get("release_dropped"))
        return result


# --------------------------------------------------------------------------- file format
def read_events_file(path, targets=None, *, max_search_radius=2 * u.deg, top_n=None,
                     match="all"):
    """Read one season file of the release and match it to *targets*.

    Parameters
    ----------
    path : str or path-like
        A release event file, e.g. ``events/IC40_exp.csv``.
    targets : SkyCoord, table, names or `~multilc.samples.Sample`
        Required.
    max_search_radius : `~astropy.units.Quantity`
        Angle; default 2 deg.
    top_n : int, optional
        Keep the N most energetic matched events per target.
    match : {"all", "nearest"}

    Returns
    -------
    `~multilc.MultiBandLightCurve`
        Events only; ``report.dropped`` counts removed events.
    """
    from multilc.collect.engine import CollectionReport

    options = check_event_options(ARCHIVE_NAME, {"max_search_radius": max_search_radius,
                                                 "top_n": top_n, "match": match})
    batch = batch_from_targets(targets, ARCHIVE_NAME, options)
    events = read_season_file(path)
    candidates = match_candidates(events, batch, options["max_search_radius"])
    result = events_from_candidates(candidates, batch, ARCHIVE_NAME, options)
    merge_dropped(result.dropped, events.meta.get("dropped"))
    result.lc.report = CollectionReport(dropped={ARCHIVE_NAME: dict(result.dropped)})
    return result.lc


register_file_format("icecube.events", MultiBandLightCurve, reader=read_events_file)
