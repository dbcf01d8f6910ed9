"""TESS, Kepler and K2 light curves from MAST (archives ``tess``, ``kepler``, ``k2``).

What is queried
    For each target, `lightkurve.search_lightcurve` (which asks the MAST
    portal API through `astroquery.mast.Observations`) lists the light-curve
    products of one mission within the match radius; `SearchResult.download_all`
    fetches them into lightkurve's download cache (a file already in the cache
    is not downloaded again).  Each archive is a per-target service: batches
    hold one target and run with bounded concurrency (``concurrency``
    setting, default 4).  The catalogue search of one target is serialised
    with a lock because astroquery's portal connection keeps per-request state
    on a shared object; downloads run concurrently.

Product selection (explicit, never "every product of every author")
    ``author`` defaults to the mission pipeline: ``"SPOC"`` (TESS), ``"Kepler"``,
    ``"K2"`` (lightkurve: official products have these author names).
    ``exptime`` defaults to 120 s for TESS (SPOC 2-min cadence; 20-s "fast"
    products duplicate it for a few targets) and ``"long"`` (30-min) for
    Kepler and K2; pass ``exptime=None`` for every cadence.
    ``flux_column`` is ``"pdcsap_flux"`` (default) or ``"sap_flux"``.

Columns used (extension ``LIGHTCURVE`` of the SPOC / Kepler pipeline files;
lightkurve io/tess.py, io/kepler.py; Kepler Archive Manual KDMC-10008-006
sec. 2.3.1; TESS Science Data Products Description Document EXP-TESS-ARC-ICD-0014)
    ``TIME``, ``PDCSAP_FLUX``/``PDCSAP_FLUX_ERR`` or ``SAP_FLUX``/``SAP_FLUX_ERR``
    (e-/s), ``QUALITY`` (TESS) or ``SAP_QUALITY`` (Kepler, K2), ``CADENCENO``;
    primary header ``TELESCOP``, ``MISSION`` (K2 files say ``K2``), ``OBJECT``,
    ``TICID``/``KEPLERID``, ``SECTOR``/``QUARTER``/``CAMPAIGN``,
    ``RA_OBJ``/``DEC_OBJ``; extension header ``BJDREFI``, ``BJDREFF``,
    ``TIMESYS``, ``TIMEREF``, ``TIMEUNIT``.

Units and time
    Flux stays a count rate in e-/s (bands ``tess:TESS``, ``kepler:Kepler``,
    ``k2:K2``; these have no absolute calibration).  ``TIME`` is BJD_TDB minus
    ``BJDREFI + BJDREFF`` days: TESS BTJD = BJD_TDB - 2457000, Kepler/K2 BKJD
    = BJD_TDB - 2454833 (lightkurve time.py; Kepler Archive Manual sec. 2.3.2).
    The reference is read from each file's header, so a file with a different
    reference is still converted right; times already barycentric TDB
    (``TIMEREF = 'SOLARSYSTEM'``, ``TIMESYS = 'TDB'``) become MJD(TDB) with
    `multilc.timescales` (systems ``tess.btjd``, ``kepler.bkjd``, ``k2.bkjd``).

Default masks (each counted in ``ParseResult.dropped``)
    cadences with NaN ``TIME``; cadences whose quality word has a bit of
    lightkurve's ``quality_bitmask`` preset (``"default"``; also ``"hard"``,
    ``"hardest"``, ``"none"`` or an int; presets read from
    `lightkurve.utils.TessQualityFlags` / `KeplerQualityFlags`); cadences with
    NaN flux or flux error in the chosen column.

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

Limits
    lightkurve resolves the position through the MAST name resolver
    (one extra request per target; its URL is fixed inside astroquery).
"""
from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np
from astropy import config as _config
from astropy import log
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time

from multilc.collect.api import (Archive, Failure, ParseResult, describe_targets,
                                 register_archive)
from multilc.io.registry import readwrite_registry, register_file_format
from multilc.lightcurve import MultiBandLightCurve
from multilc.timescales import TIME_SYSTEMS, to_mjd_tdb

__all__ = ["conf", "Conf", "MISSIONS", "MissionSpec", "TessArchive", "KeplerArchive",
           "K2Archive", "read_mission_file", "read_lightcurve_file", "bin_weighted"]


# --------------------------------------------------------------------------- settings
class Conf(_config.ConfigNamespace):
    """Settings of the TESS/Kepler/K2 readers (``MULTILC_MAST_<ITEM>`` overrides)."""

    url = _config.ConfigItem(
        "https://mast.stsci.edu",
        "MAST server for the portal API and downloads (astroquery.mast.conf.server).")
    download_dir = _config.ConfigItem(
        "", "Folder of downloaded light-curve files; empty: lightkurve's cache "
            "(lightkurve.config.get_cache_dir()).")
    concurrency = _config.ConfigItem(4, "Targets searched/downloaded at once per mission.")


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
_SEARCH_LOCK = threading.Lock()


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
    raise ValueError(f"{path}: TELESCOP={telescope or '(none)'!r}, MISSION="
                     f"{mission or '(none)'!r} is not a TESS, Kepler or K2 light-curve file")


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
        ``SAP_FLUX_ERR``, ``PDCSAP_FLUX``, ``PDCSAP_FLUX_ERR`` [e-/s],
        ``QUALITY`` (int64), plus ``flux_unit`` (the TUNIT of PDCSAP_FLUX).
    """
    source = path
    path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else \
        str(getattr(path, "name", "<file object>"))
    with fits.open(source, memmap=False) as hdul:
        primary = hdul[0].header
        mission = _mission_from_header(primary, path)
        spec = MISSIONS[mission]
        try:
            hdu = hdul[_LC_EXTENSION]
        except KeyError:
            raise ValueError(f"{path}: no {_LC_EXTENSION!r} extension; not a {spec.mission} "
                             "light-curve file") from None
        header = hdu.header
        data = hdu.data
        names = [n.upper() for n in data.columns.names]
        missing = [c for c in ("TIME", spec.quality_column) if c not in names]
        if missing:
            raise ValueError(f"{path}: extension {_LC_EXTENSION} lacks columns {missing}")
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
        n = len(data)
        for col in _READ_COLUMNS:
            out[col] = (np.asarray(data[col], dtype="float64") if col in names
                        else np.full(n, np.nan))
        out["QUALITY"] = np.asarray(data[spec.quality_column], dtype="int64")
        unit_key = f"TUNIT{names.index('PDCSAP_FLUX') + 1}" if "PDCSAP_FLUX" in names \
            else None
        out["flux_unit"] = str(header.get(unit_key, "e-/s")) if unit_key else "e-/s"
    return out


# --------------------------------------------------------------------------- parse
def _quality_bitmask(spec, option):
    """Integer bitmask from a lightkurve preset name or an int (None: no mask)."""
    if option is None:
        return 0
    if isinstance(option, (int, np.integer)) and not isinstance(option, bool):
        return int(option)
    from lightkurve import utils as lk_utils

    presets = getattr(lk_utils, spec.flags_class).OPTIONS
    try:
        value = presets[str(option).lower()]
    except KeyError:
        raise ValueError(f"{spec.archive}: quality_bitmask={option!r}; expected one of "
                         f"{sorted(k for k in presets if k)} or an int") from None
    return 0 if value is None else int(value)


def _flux_unit(text, path):
    """Count-rate unit of a file's flux column (SPOC/Kepler write 'e-/s')."""
    try:
        unit = u.Unit(str(text).replace("e-", "electron"))
    except ValueError:
        raise ValueError(f"{path}: flux unit {text!r} is not a count rate") from None
    if not unit.is_equivalent(u.electron / u.s):
        raise ValueError(f"{path}: flux unit {text!r} is not e-/s; this reader only takes "
                         "pipeline fluxes")
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
        raise ValueError(f"{path}: TIMESYS={product['timesys']}, TIMEREF="
                         f"{product['timeref']}, TIMEUNIT={product['timeunit']}; expected "
                         "barycentric TDB days (TIMESYS='TDB', TIMEREF='SOLARSYSTEM')")
    flux_column = options["flux_column"].upper()
    unit = _flux_unit(product["flux_unit"], path)
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
    scale = unit.to(u.electron / u.s)
    f, e = f * scale, e * scale
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


def _season_text(spec, season):
    try:
        return f"{spec.season_name} {int(season)}"
    except (TypeError, ValueError):
        return f"{spec.season_name} {season}" if season not in (None, "") else ""


def products_to_lightcurve(targets, options, name):
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
        seps = []
        for p in products:
            if have_pos and np.isfinite(p["ra"]) and np.isfinite(p["dec"]):
                seps.append(SkyCoord(t_ra * u.deg, t_dec * u.deg).separation(
                    SkyCoord(p["ra"] * u.deg, p["dec"] * u.deg)).to_value(u.arcsec))
            else:
                seps.append(np.nan)
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
            except ValueError as exc:
                failures.append(Failure(name, [oid], "ValueError",
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
    """Light curves of one mission through lightkurve (see the module docstring).

    Options: ``author`` (default the mission pipeline), ``exptime``,
    ``flux_column`` (``"pdcsap_flux"`` or ``"sap_flux"``),
    ``quality_bitmask`` (lightkurve preset or int), ``bin_to`` (time
    Quantity or None), ``match`` (``"all"`` or ``"nearest"``).
    """

    spec: MissionSpec = None
    returns = "photometry"
    chunk_size = 1
    concurrency = 4
    default_radius = 1 * u.arcsec
    env_prefix = "MAST"
    conf = conf

    def __init__(self, **options):
        super().__init__(**options)
        self.options = _check_options(self.name, self.options)
        _quality_bitmask(self.spec, self.options["quality_bitmask"])

    # ------------------------------------------------------------------ query
    def _download_dir(self):
        folder = self.setting("download_dir")
        if folder:
            return str(folder)
        from lightkurve import config as lk_config

        return lk_config.get_cache_dir()

    def _configure_mast(self):
        """Point astroquery's MAST portal connection at the configured server."""
        from astroquery.mast import Observations

        server = str(self.setting("url")).rstrip("/")
        portal = Observations._portal_api_connection
        portal.MAST_REQUEST_URL = server + "/api/v0/invoke"
        portal.COLUMNS_CONFIG_URL = server + "/portal/Mashup/Mashup.asmx/columnsconfig"
        portal.MAST_DOWNLOAD_URL = server + "/api/v0.1/Download/file"
        portal.MAST_BUNDLE_URL = server + "/api/v0.1/Download/bundle"
        if self.timeout is not None:
            portal.TIMEOUT = self.timeout

    def _search(self, coord, batch):
        import lightkurve as lk

        opts = self.options
        author = opts["author"]
        with _SEARCH_LOCK:
            self._configure_mast()
            return lk.search_lightcurve(coord, radius=self.radius, mission=self.spec.mission,
                                        author=None if author in ("any", "all") else author,
                                        exptime=opts["exptime"])

    def query(self, batch):
        """Search and download each target's products; return their arrays.

        Returns
        -------
        dict
            ``{"targets": [{"objectid", "ra", "dec", "label", "products":
            [read_lightcurve_file dicts]}]}`` (picklable).
        """
        import requests

        out = []
        download_dir = self._download_dir()
        Path(download_dir).mkdir(parents=True, exist_ok=True)
        for i, oid in enumerate(batch.objectid):
            coord = SkyCoord(batch.ra[i] * u.deg, batch.dec[i] * u.deg, frame="icrs")
            who = [int(oid)]
            try:
                result = self._search(coord, batch)
                products = []
                if result is not None and len(result) > 0:
                    # lightkurve itself silences the download progress output.
                    collection = result.download_all(download_dir=download_dir,
                                                     quality_bitmask="none")
                    for lc, row in zip(collection or [], result.table):
                        products.append(read_lightcurve_file(
                            lc.meta["FILENAME"], author=str(row["author"])))
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else 0
                raise self.error(f"MAST answered HTTP {code}: {exc}", objectids=who,
                                 transient=code == 429 or code >= 500) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise self.error(f"MAST could not be reached: {exc}", objectids=who,
                                 transient=True) from exc
            except OSError as exc:  # unreadable/truncated download
                raise self.error(f"downloaded light curve unreadable: {exc}", objectids=who,
                                 transient=True) from exc
            except Exception as exc:
                if type(exc).__name__ in ("LightkurveError", "SearchError",
                                          "RemoteServiceError", "InvalidQueryError"):
                    raise self.error(f"lightkurve search/download failed: {exc}",
                                     objectids=who, transient="Download of" in str(exc)) \
                        from exc
                raise
            out.append({"objectid": int(oid), "ra": float(batch.ra[i]),
                        "dec": float(batch.dec[i]), "label": str(batch.label[i]),
                        "products": products})
        return {"targets": out}

    # ------------------------------------------------------------------ parse
    def parse(self, raw, batch):
        if not isinstance(raw, dict) or "targets" not in raw:
            raise self.error(f"unexpected raw response of type {type(raw).__name__}", batch)
        return products_to_lightcurve(raw["targets"], self.options, self.name)


def _options_for(spec):
    return {"author": spec.author, "exptime": spec.exptime, "flux_column": "pdcsap_flux",
            "quality_bitmask": "default", "bin_to": None, "match": "all"}


@register_archive
class TessArchive(_MissionArchive):
    __doc__ = _MissionArchive.__doc__
    name = "tess"
    description = "TESS SPOC 2-min light curves (PDCSAP e-/s) from MAST via lightkurve"
    spec = MISSIONS["tess"]
    bands = ("tess:TESS",)
    default_options = _options_for(MISSIONS["tess"])


@register_archive
class KeplerArchive(_MissionArchive):
    __doc__ = _MissionArchive.__doc__
    name = "kepler"
    description = "Kepler long-cadence light curves (PDCSAP e-/s) from MAST via lightkurve"
    spec = MISSIONS["kepler"]
    bands = ("kepler:Kepler",)
    default_options = _options_for(MISSIONS["kepler"])


@register_archive
class K2Archive(_MissionArchive):
    __doc__ = _MissionArchive.__doc__
    name = "k2"
    description = "K2 long-cadence light curves (PDCSAP e-/s) from MAST via lightkurve"
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
            raise ValueError(f"{p['path']}: the header says {MISSIONS[p['mission']].mission} "
                             f"(TELESCOP/MISSION), not {MISSIONS[mission].mission}; use "
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
                   "bin_to": bin_to, "match": "all"}, name)
    if result.failures:
        raise ValueError("; ".join(f.message for f in result.failures))
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
