"""Local stand-ins that serve small subsets of real public data for ``multilc demo``.

`demo_services` starts one `~multilc.testing.ReplayServer` on 127.0.0.1 and
mounts on it

* an IVOA TAP service (`~multilc.testing.TAPStandin`) standing in for
  HEASARC's: it answers the readers' real ADQL (the upload join of
  ``heasarc.bepposax``, ``heasarc.fermi_gbm`` and ``heasarc.icecube``) from
  the bundled BeppoSAX and Fermi GBM burst lists and IceCube IC40 events,
  with astropy doing the join the service would do;
* the IceCube release download: a zip laid out as the collaboration's release
  (``icecube_10year_ps/events/IC40_exp.csv``), built from the bundled subset.

and points the readers at them through their ``MULTILC_*`` settings, with a
private cache folder, so that the real engine and the real readers run end to
end without the network and nothing from the demo ever reaches the user's
cache.  The data (``multilc/data/demo``, cited in its ``SOURCES`` file) are a
few hundred kilobytes of real public files; they are not complete archive
contents, and the burst lists carry no error radii (see `ERROR_RADIUS_DEG`).

Everything the demo prints and writes says so (`DEMO_NOTE`).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["DEMO_ARCHIVES", "DEMO_NOTE", "ERROR_RADIUS_DEG", "demo_data_dir",
           "demo_catalogs", "demo_services"]

#: One line saying where the demo's data come from (printed, and stored in files).
DEMO_NOTE = ("DEMO: these data were served by local stand-ins on 127.0.0.1 from small "
             "subsets of public files bundled with multilc (multilc/data/demo/SOURCES), "
             "not fetched from the archives; they are not complete archive contents")

#: Archives the demo collects from (the readers are the real ones).
DEMO_ARCHIVES = ("heasarc.fermi_gbm", "heasarc.bepposax", "icecube")

#: The burst-list exports have no error radius; the stand-in gives each burst
#: this one [deg] (round values inside the readers' default caps of 1 deg for
#: Fermi GBM and 3 deg for BeppoSAX), so that HEASARC's containment join can run.
ERROR_RADIUS_DEG = {"saxgrbmgrb": 2.0, "fermigbrst": 1.0}

#: TAP table names the stand-in serves, as the readers' settings name them.
_TABLES = {"saxgrbmgrb": "saxgrbmgrb", "fermigbrst": "fermigbrst", "icecubepsc": "icecube"}
_RELEASE_PATH = "/demo/icecube/IC40-demo-subset.zip"
_SEASON_MEMBER = "icecube_10year_ps/events/IC40_exp.csv"


def demo_data_dir():
    """Folder of the bundled demo data (``multilc/data/demo``)."""
    return Path(str(resources.files("multilc") / "data" / "demo"))


def demo_catalogs():
    """The bundled tables as the stand-in serves them.

    Returns
    -------
    dict of str to `~astropy.table.Table`
        ``"saxgrbmgrb"`` and ``"fermigbrst"`` (columns ``name, ra, dec,
        error_radius, time`` in deg, deg, deg, MJD; bursts without a position
        left out) and ``"icecube"`` (``ra, dec, error_radius, time,
        event_energy``: deg, deg, deg, MJD UT1, linear GeV as in HEASARC's
        ``icecubepsc``).
    """
    from astropy.table import Table

    base = demo_data_dir()
    out = {}
    for key in ("saxgrbmgrb", "fermigbrst"):
        cat = Table.read(base / f"{key}.csv", format="ascii.csv")
        ra = np.ma.filled(np.ma.asarray(cat["ra"], dtype=float), np.nan)
        dec = np.ma.filled(np.ma.asarray(cat["dec"], dtype=float), np.nan)
        ok = np.isfinite(ra) & np.isfinite(dec)
        out[key] = Table({"name": np.asarray(cat["name"]).astype(str)[ok],
                          "ra": ra[ok], "dec": dec[ok],
                          "error_radius": np.full(ok.sum(), ERROR_RADIUS_DEG[key]),
                          "time": np.asarray(cat["time"], dtype=float)[ok]})
    ic = np.loadtxt(base / "IC40_exp.csv", comments="#", ndmin=2)
    # release columns: MJD, log10(E/GeV), AngErr, RA, Dec (release readme.txt)
    out["icecube"] = Table({"ra": ic[:, 3], "dec": ic[:, 4], "error_radius": ic[:, 2],
                            "time": ic[:, 0], "event_energy": 10 ** ic[:, 1]})
    return out


def _number(pattern, query):
    found = re.search(pattern, query)
    if not found:
        from multilc.testing.tap import ADQLError

        raise ADQLError(f"the demo stand-in does not understand this query: {query!r}")
    return float(found.group(1))


def _answer(catalogs):
    """The stand-in's ADQL answer: the readers' joins, done with astropy."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    from multilc.testing.tap import ADQLError

    def answer(query, uploads, maxrec):
        found = re.search(r"FROM\s+(\S+)\s+AS\s+cat", query)
        table = found.group(1).lower() if found else ""
        if table not in _TABLES:
            raise ADQLError(f"Table '{table}' not found (the demo stand-in serves "
                            f"{sorted(_TABLES)})")
        cat = catalogs[_TABLES[table]]
        mt = uploads["mytable"]
        targets = SkyCoord(np.asarray(mt["ra"], float) * u.deg,
                           np.asarray(mt["dec"], float) * u.deg)
        where = SkyCoord(np.asarray(cat["ra"]) * u.deg, np.asarray(cat["dec"]) * u.deg)
        err = np.asarray(cat["error_radius"], float)
        if table == "icecubepsc":
            radius = _number(r"CIRCLE\('ICRS', mt\.ra, mt\.dec, ([0-9.eE+-]+)\)", query)
            it, ic, sep, _ = where.search_around_sky(targets, radius * u.deg)
            keep = sep.deg < err[ic]
            columns = ("ra", "dec", "error_radius", "time", "event_energy")
        else:
            cap = _number(r"error_radius <= ([0-9.eE+-]+)", query)
            ok = err <= cap
            it, ic, sep, _ = where.search_around_sky(targets, max(cap, 1e-9) * u.deg)
            keep = ok[ic] & (sep.deg <= err[ic])
            columns = ("name", "ra", "dec", "error_radius", "time")
        rows = ic[keep]
        result = Table({c: np.asarray(cat[c])[rows] for c in columns})
        result["objectid"] = np.asarray(mt["objectid"], dtype="int64")[it[keep]]
        for c in ("ra", "dec", "error_radius"):
            result[c].unit = u.deg
        result["time"].unit = u.d
        if "event_energy" in result.colnames:
            result["event_energy"].unit = u.GeV
        return result

    return answer


def _release_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(demo_data_dir() / "IC40_exp.csv", _SEASON_MEMBER)
        zf.write(demo_data_dir() / "SOURCES", "SOURCES")
    return buf.getvalue()


@contextlib.contextmanager
def demo_services(cache_dir=None):
    """Run the demo stand-ins and point the readers at them.

    Parameters
    ----------
    cache_dir : str or path, optional
        Cache folder for the run (responses, the IceCube release download);
        default a temporary folder removed afterwards.  Never the user's
        cache: demo data must not answer a later live run.

    Yields
    ------
    dict
        ``tap_url``, ``release_url``, ``cache_dir``, ``server`` (the
        `~multilc.testing.ReplayServer`, for counting requests) and ``tap``
        (the `~multilc.testing.TAPStandin`).

    Notes
    -----
    The settings are environment variables (``MULTILC_HEASARC_TAP_URL``,
    ``MULTILC_ICECUBE_RELEASE_URL``, ``MULTILC_CACHE_DIR``, ...), restored on
    exit; run one demo at a time in a process.
    """
    from multilc.testing.replay import ReplayServer
    from multilc.testing.tap import TAPStandin

    catalogs = demo_catalogs()
    saved = {}

    def setenv(name, value):
        saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    with contextlib.ExitStack() as stack:
        if cache_dir is None:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(
                prefix="multilc-demo-"))
        server = stack.enter_context(ReplayServer())
        tap = TAPStandin(server, _answer(catalogs), base="/demo/heasarc/tap")
        server.route(_RELEASE_PATH, _release_zip(), content_type="application/zip")
        try:
            setenv("MULTILC_CACHE_DIR", str(cache_dir))
            setenv("MULTILC_HEASARC_TAP_URL", tap.url)
            setenv("MULTILC_HEASARC_FERMI_GBM_TABLE", "fermigbrst")
            setenv("MULTILC_HEASARC_BEPPOSAX_TABLE", "saxgrbmgrb")
            setenv("MULTILC_HEASARC_ICECUBE_TABLE", "icecubepsc")
            setenv("MULTILC_ICECUBE_RELEASE", "")
            setenv("MULTILC_ICECUBE_RELEASE_URL", server.url_for(_RELEASE_PATH))
            yield {"tap_url": tap.url, "release_url": server.url_for(_RELEASE_PATH),
                   "cache_dir": Path(cache_dir), "server": server, "tap": tap}
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
