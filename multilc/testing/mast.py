"""A local stand-in for MAST: the API ``invoke`` endpoint and file downloads.

`MastStandin` mounts two routes on a `~multilc.testing.ReplayServer`:

``POST /api/v0/invoke``
    The MAST API (https://mast.stsci.edu/api/v0/): one form field ``request``
    holding a JSON "MashupRequest" (``service``, ``params``, ``data``,
    ``format``, ``pagesize``, ``page``).  Answers JSON ``{"status", "msg",
    "data", "fields", "paging"}`` as MAST does (shape of astroquery's recorded
    answers ``astroquery/mast/tests/data/caom.json`` and ``products.json``:
    ``paging`` = ``page``, ``pageSize``, ``pagesFiltered``, ``rows``,
    ``rowsFiltered``, ``rowsTotal``).  Services:

    * ``Mast.Caom.Crossmatch``: ``data`` is an uploaded table ``{"fields":
      [{"name", "type"}], "data": [{...}]}``, ``params`` ``raColumn``,
      ``decColumn``, ``radius`` [deg] (MAST API services page).  One answer row
      per (uploaded row, observation within ``radius`` of its ``s_ra``/``s_dec``).
      The MAST documentation does not list the answer's columns; the stand-in
      echoes the uploaded columns and adds the CAOM observation fields, a
      guess that the reader does not depend on.
    * ``Mast.Caom.Products``: ``params.obsid`` is one id or a comma-separated
      list; rows carry the product fields of astroquery's ``products.json``.
    * anything else: ``status = "ERROR"``.

``GET /api/v0.1/Download/file?uri=<dataURI>``
    The file's bytes (``application/fits``), 404 for an unknown URI.

Paging follows the request's ``pagesize``/``page`` (``max_pagesize`` caps it
to force several pages); ``executing`` answers that many requests with
``status = "EXECUTING"`` (MAST long polling) before answering for real.

`write_mission_lightcurve` writes a light-curve FITS file in the SPOC (TESS) or
Kepler/K2 pipeline layout with `astropy.io.fits`; `synthetic_observations`
builds a reproducible set of observations and files for many targets
(benchmarks).
"""
from __future__ import annotations

import io
import json
import math
import threading
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = ["MastStandin", "write_mission_lightcurve", "mission_observation",
           "synthetic_observations", "TESS_BJDREF", "KEPLER_BJDREF", "CAOM_FIELDS"]

#: BTJD = BJD_TDB - 2457000 (TESS Science Data Products Description Document);
#: BKJD = BJD_TDB - 2454833 (Kepler Archive Manual KDMC-10008-006, sec. 2.3.2).
TESS_BJDREF = 2457000
KEPLER_BJDREF = 2454833

#: CAOM observation fields answered (names and types as in astroquery's
#: recorded ``caom.json``; ``provenance_name`` and ``sequence_number`` are
#: CAOM fields of the MAST API field list that the recording predates).
CAOM_FIELDS = [("dataproduct_type", "string"), ("calib_level", "int"),
               ("obs_collection", "string"), ("project", "string"), ("obs_id", "string"),
               ("target_name", "string"), ("s_ra", "float"), ("s_dec", "float"),
               ("t_min", "float"), ("t_max", "float"), ("t_exptime", "float"),
               ("provenance_name", "string"), ("sequence_number", "int"),
               ("obsid", "string")]

#: Product fields, as in astroquery's recorded ``products.json``.
PRODUCT_FIELDS = [("obsID", "string"), ("obs_collection", "string"),
                  ("dataproduct_type", "string"), ("obs_id", "string"),
                  ("description", "string"), ("type", "string"), ("dataURI", "string"),
                  ("productType", "string"), ("productGroupDescription", "string"),
                  ("productSubGroupDescription", "string"),
                  ("productDocumentationURL", "string"), ("project", "string"),
                  ("prvversion", "string"), ("productFilename", "string"),
                  ("size", "int"), ("_selected_", "boolean")]

INVOKE_PATH = "/api/v0/invoke"
DOWNLOAD_PATH = "/api/v0.1/Download/file"


# --------------------------------------------------------------------------- files
def write_mission_lightcurve(path=None, mission="tess", *, time, pdcsap, pdcsap_err,
                             sap=None, sap_err=None, quality=None, target_id=25155310,
                             season=1, ra=10.0, dec=-20.0, bjdrefi=None, bjdreff=0.0,
                             timesys="TDB", timeref="SOLARSYSTEM", flux_unit="e-/s"):
    """Write a light-curve file in the SPOC / Kepler pipeline layout.

    Primary header ``ORIGIN``, ``TELESCOP``, ``MISSION`` (Kepler/K2),
    ``OBJECT``, ``TICID``/``KEPLERID``, ``SECTOR``/``QUARTER``/``CAMPAIGN``,
    ``RA_OBJ``/``DEC_OBJ``; extension ``LIGHTCURVE`` with ``TIME``,
    ``TIMECORR``, ``CADENCENO``, ``SAP_FLUX(_ERR)``, ``SAP_BKG(_ERR)``,
    ``PDCSAP_FLUX(_ERR)`` [``flux_unit``], ``QUALITY``/``SAP_QUALITY`` and the
    header ``TIMEREF``, ``TIMESYS``, ``BJDREFI``, ``BJDREFF``, ``TIMEUNIT``
    (TESS SDPDD; Kepler Archive Manual sec. 2.3).

    Parameters
    ----------
    path : str or path-like, optional
        Where to write; None returns the file's bytes.
    mission : {"tess", "kepler", "k2"}
    time : array
        TIME [d] relative to ``bjdrefi + bjdreff``.
    pdcsap, pdcsap_err, sap, sap_err : array
        Fluxes [``flux_unit``]; SAP defaults to PDCSAP.
    flux_unit : str or None
        TUNIT of the flux columns (None: no unit declared).

    Returns
    -------
    path or bytes
    """
    n = len(time)
    sap = pdcsap if sap is None else sap
    sap_err = pdcsap_err if sap_err is None else sap_err
    quality = np.zeros(n, "int32") if quality is None else np.asarray(quality, "int32")
    primary = fits.PrimaryHDU()
    h = primary.header
    h["ORIGIN"] = "NASA/Ames"
    if mission == "tess":
        h["CREATOR"] = "1003 LightCurveExporterPipelineModule"
        h["TELESCOP"] = "TESS"
        h["INSTRUME"] = "TESS Photometer"
        h["OBJECT"] = f"TIC {target_id}"
        h["TICID"] = target_id
        h["SECTOR"] = season
        ref, qname, tunit = TESS_BJDREF, "QUALITY", "BJD - 2457000, days"
    else:
        h["CREATOR"] = "17211 FluxExporter2PipelineModule"
        h["TELESCOP"] = "Kepler"
        h["INSTRUME"] = "Kepler Photometer"
        h["MISSION"] = "Kepler" if mission == "kepler" else "K2"
        h["OBJECT"] = f"{'KIC' if mission == 'kepler' else 'EPIC'} {target_id}"
        h["KEPLERID"] = target_id
        h["QUARTER" if mission == "kepler" else "CAMPAIGN"] = season
        ref, qname, tunit = KEPLER_BJDREF, "SAP_QUALITY", "BJD - 2454833"
    h["RADESYS"] = "ICRS"
    h["RA_OBJ"] = ra
    h["DEC_OBJ"] = dec

    def flux(name, values):
        return fits.Column(name, "E", unit=flux_unit, array=np.asarray(values, float))

    cols = [
        fits.Column("TIME", "D", unit=tunit, array=np.asarray(time, float)),
        fits.Column("TIMECORR", "E", unit="d", array=np.full(n, 0.001)),
        fits.Column("CADENCENO", "J", array=np.arange(n) + 1000),
        flux("SAP_FLUX", sap), flux("SAP_FLUX_ERR", sap_err),
        flux("SAP_BKG", np.zeros(n)), flux("SAP_BKG_ERR", np.zeros(n)),
        flux("PDCSAP_FLUX", pdcsap), flux("PDCSAP_FLUX_ERR", pdcsap_err),
        fits.Column(qname, "J", array=quality),
    ]
    ext = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    e = ext.header
    e["TELESCOP"] = h["TELESCOP"]
    e["TIMEREF"] = timeref
    e["TASSIGN"] = "SPACECRAFT"
    e["TIMESYS"] = timesys
    e["BJDREFI"] = int(ref if bjdrefi is None else bjdrefi)
    e["BJDREFF"] = bjdreff
    e["TIMEUNIT"] = "d"
    hdul = fits.HDUList([primary, ext])
    if path is None:
        buffer = io.BytesIO()
        hdul.writeto(buffer)
        return buffer.getvalue()
    hdul.writeto(path, overwrite=True)
    return path


def mission_observation(file, *, project, author, exptime, seq, ra, dec, obsid, target,
                        filename=None, extra_products=()):
    """One CAOM observation with its light-curve file.

    Parameters
    ----------
    file : path-like or bytes
        The light-curve file (a path is read when downloaded).
    project : {"TESS", "Kepler", "K2", ...}
        ``obs_collection`` and ``project``.
    author : str
        ``provenance_name`` (``"SPOC"``, ``"Kepler"``, ``"K2"``, ``"QLP"``).
    exptime : float
        ``t_exptime`` [s].
    seq : int or None
        ``sequence_number`` (sector/campaign; empty for Kepler at MAST).
    ra, dec : float
        ``s_ra``, ``s_dec`` [deg].
    obsid : int or str
    target : str
        ``target_name``.
    filename : str, optional
        ``productFilename`` (default the file's name).
    extra_products : sequence of str
        Names of other (not light-curve) products of the observation.
    """
    name = filename or Path(file).name
    stem = name.rsplit("_", 1)[0]
    obs = {"obs_collection": project, "project": project, "provenance_name": author,
           "t_exptime": float(exptime), "sequence_number": seq, "s_ra": float(ra),
           "s_dec": float(dec), "obsid": str(obsid), "obs_id": stem,
           "target_name": str(target), "dataproduct_type": "timeseries", "calib_level": 3,
           "t_min": 58000.0, "t_max": 58027.0}
    obs["products"] = [{"filename": name, "content": file, "description": "Light curves",
                        "subgroup": "LC"}]
    obs["products"] += [{"filename": extra, "content": b"", "description": "other",
                         "subgroup": extra.rsplit("_", 1)[-1].split(".")[0].upper()}
                        for extra in extra_products]
    return obs


def synthetic_observations(ra, dec, *, seed=0, n_cadences=500, tess_sectors=(1, 3),
                           kepler_fraction=0.3, k2_fraction=0.3, distractors=2):
    """Observations and files for many targets (deterministic; for benchmarks).

    Each target gets between ``tess_sectors[0]`` and ``tess_sectors[1]`` SPOC
    2-min TESS sectors, a Kepler long-cadence quarter with probability
    ``kepler_fraction``, a K2 campaign with probability ``k2_fraction``, plus
    ``distractors`` observations the readers must ignore (an HST image, a QLP
    light curve, a 20-s "fast" TESS light curve).

    Returns
    -------
    observations : list of dict
        For `MastStandin`.
    expected : dict
        ``{(target index, mission): [(time, flux) arrays of each file]}``.
    """
    rng = np.random.default_rng(seed)
    observations, expected = [], {}
    obsid = 9_000_000
    for i, (r, d) in enumerate(zip(np.atleast_1d(ra), np.atleast_1d(dec))):
        plan = [("tess", s + 1) for s in range(rng.integers(tess_sectors[0],
                                                            tess_sectors[1] + 1))]
        if rng.random() < kepler_fraction:
            plan.append(("kepler", int(rng.integers(1, 17))))
        if rng.random() < k2_fraction:
            plan.append(("k2", int(rng.integers(1, 19))))
        for mission, season in plan:
            obsid += 1
            tid = 100_000_000 + i
            t = np.sort(rng.uniform(1000, 1027, n_cadences))
            f = rng.normal(1000.0, 5.0, n_cadences)
            data = write_mission_lightcurve(None, mission, time=t, pdcsap=f,
                                            pdcsap_err=np.full(n_cadences, 5.0),
                                            target_id=tid, season=season, ra=r, dec=d)
            if mission == "tess":
                name = f"tess2018-s{season:04d}-{tid:016d}-0120-s_lc.fits"
                obs = mission_observation(data, project="TESS", author="SPOC", exptime=120,
                                          seq=season, ra=r, dec=d, obsid=obsid,
                                          target=tid, filename=name,
                                          extra_products=(name.replace("_lc", "_tp"),))
            else:
                prefix = "kplr" if mission == "kepler" else "ktwo"
                name = f"{prefix}{tid:09d}-c{season:02d}_llc.fits"
                obs = mission_observation(data, project="Kepler" if mission == "kepler"
                                          else "K2", author="Kepler" if mission == "kepler"
                                          else "K2", exptime=1800,
                                          seq=None if mission == "kepler" else season,
                                          ra=r, dec=d, obsid=obsid, target=f"{prefix}{tid}",
                                          filename=name)
            observations.append(obs)
            expected.setdefault((i, mission), []).append((t, f))
        for k in range(distractors):
            obsid += 1
            kind = k % 3
            project, author, exptime, name = [
                ("HST", "CALWF3", 500.0, f"hst_{obsid}_drz.fits"),
                ("TESS", "QLP", 1800.0, f"hlsp_qlp_tess_ffi_{obsid}_llc.fits"),
                ("TESS", "SPOC", 20.0, f"tess-{obsid}-a_fast-lc.fits")][kind]
            obs = mission_observation(b"", project=project, author=author, exptime=exptime,
                                      seq=1, ra=r, dec=d, obsid=obsid, target=str(obsid),
                                      filename=name)
            if project == "HST":
                obs["dataproduct_type"] = "image"
            observations.append(obs)
    return observations, expected


# --------------------------------------------------------------------------- server
class MastStandin:
    """MAST API + downloads answering from a list of observations.

    Parameters
    ----------
    server : `~multilc.testing.ReplayServer`
        A started server; the routes are added to it.
    observations : list of dict
        CAOM fields (see `CAOM_FIELDS`) plus ``products``: ``[{"filename",
        "content" (bytes or path), "description", "subgroup"}]``; build them
        with `mission_observation`.
    max_pagesize : int, optional
        Cap on the page size (forces paging).
    executing : int
        Requests answered ``status = "EXECUTING"`` before real answers.

    Attributes
    ----------
    invocations : list of dict
        Every MashupRequest received (parsed JSON), in order.
    """

    def __init__(self, server, observations, *, max_pagesize=None, executing=0):
        self.server = server
        self.observations = list(observations)
        self.max_pagesize = max_pagesize
        self.executing = int(executing)
        self.invocations = []
        self._lock = threading.Lock()
        self._files = {}
        for obs in self.observations:
            for product in obs.get("products", []):
                self._files[self.uri(obs, product)] = product["content"]
        server.route(INVOKE_PATH, handler=self.invoke, method="POST")
        server.route(DOWNLOAD_PATH, handler=self.download, method="GET")

    @staticmethod
    def uri(obs, product):
        """``mast:<collection>/product/<file>``, MAST's dataURI form."""
        return f"mast:{obs['obs_collection']}/product/{product['filename']}"

    # -- counting -------------------------------------------------------------
    def count(self, service=None):
        """MashupRequests received (for one service if given)."""
        with self._lock:
            return sum(1 for r in self.invocations if service in (None, r.get("service")))

    @property
    def downloads(self):
        """Download requests received."""
        return self.server.count(DOWNLOAD_PATH, method="GET")

    # -- answers --------------------------------------------------------------
    def invoke(self, req):
        text = req.form.get("request")
        if text is None:
            return (400, {"Content-Type": "text/plain"}, "missing form field 'request'")
        request = json.loads(text)
        with self._lock:
            self.invocations.append(request)
            if self.executing > 0:
                self.executing -= 1
                return self._json({"status": "EXECUTING", "msg": "", "data": [],
                                   "fields": [], "paging": None})
        service = request.get("service")
        if service == "Mast.Caom.Crossmatch":
            rows, fields = self._crossmatch(request)
        elif service == "Mast.Caom.Products":
            rows, fields = self._products(request)
        else:
            return self._json({"status": "ERROR", "msg": f"Unknown service {service}",
                               "data": [], "fields": []})
        pagesize = int(request.get("pagesize") or 50000)
        if self.max_pagesize:
            pagesize = min(pagesize, int(self.max_pagesize))
        page = int(request.get("page") or 1)
        chunk = rows[(page - 1) * pagesize:page * pagesize]
        return self._json({
            "status": "COMPLETE", "msg": "", "data": chunk,
            "fields": [{"name": n, "type": t} for n, t in fields],
            "paging": {"page": page, "pageSize": pagesize,
                       "pagesFiltered": max(1, math.ceil(len(rows) / pagesize)),
                       "rows": len(chunk), "rowsFiltered": len(rows),
                       "rowsTotal": len(rows)}})

    @staticmethod
    def _json(obj):
        return (200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(obj))

    def _crossmatch(self, request):
        upload = request["data"]
        params = request.get("params", {})
        ra_col = params.get("raColumn", "ra")
        dec_col = params.get("decColumn", "dec")
        radius = float(params.get("radius", 0.002))     # degrees (MAST API default)
        in_fields = [(f["name"], f["type"]) for f in upload["fields"]]
        rows = []
        obs_ra = np.radians([o["s_ra"] for o in self.observations])
        obs_dec = np.radians([o["s_dec"] for o in self.observations])
        for item in upload["data"]:
            ra, dec = np.radians(float(item[ra_col])), np.radians(float(item[dec_col]))
            # haversine distance, independent of the reader's astropy formula
            hav = np.sin((obs_dec - dec) / 2) ** 2 + \
                np.cos(dec) * np.cos(obs_dec) * np.sin((obs_ra - ra) / 2) ** 2
            sep = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))
            for k in np.flatnonzero(sep <= radius):
                obs = self.observations[k]
                row = dict(item)
                row.update({n: obs.get(n) for n, _ in CAOM_FIELDS})
                rows.append(row)
        return rows, in_fields + CAOM_FIELDS

    def _products(self, request):
        wanted = {s.strip() for s in str(request["params"]["obsid"]).split(",")}
        rows = []
        for obs in self.observations:
            if obs["obsid"] not in wanted:
                continue
            for product in obs.get("products", []):
                content = product["content"]
                size = Path(content).stat().st_size if isinstance(content, (str, Path)) \
                    else len(content)
                rows.append({
                    "obsID": obs["obsid"], "obs_collection": obs["obs_collection"],
                    "dataproduct_type": obs["dataproduct_type"], "obs_id": obs["obs_id"],
                    "description": product["description"], "type": "S",
                    "dataURI": self.uri(obs, product), "productType": "SCIENCE",
                    "productGroupDescription": "Minimum Recommended Products",
                    "productSubGroupDescription": product["subgroup"],
                    "productDocumentationURL": "", "project": obs["project"],
                    "prvversion": "", "productFilename": product["filename"],
                    "size": size, "_selected_": None})
        return rows, PRODUCT_FIELDS

    def download(self, req):
        uri = req.args.get("uri", "")
        content = self._files.get(uri)
        if content is None:
            return (404, {"Content-Type": "text/plain"}, f"no such file: {uri}")
        body = Path(content).read_bytes() if isinstance(content, (str, Path)) else content
        return (200, {"Content-Type": "application/fits"}, body)
