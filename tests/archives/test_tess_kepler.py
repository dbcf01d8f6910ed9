"""Tests of multilc.archives.tess_kepler (TESS, Kepler, K2 via lightkurve/MAST).

Light-curve files are written at test time in the mission layout (primary
header TELESCOP/MISSION/OBJECT/TICID|KEPLERID/SECTOR|QUARTER|CAMPAIGN/
RA_OBJ/DEC_OBJ; extension LIGHTCURVE with TIME, TIMECORR, CADENCENO,
SAP_FLUX(_ERR), PDCSAP_FLUX(_ERR), QUALITY|SAP_QUALITY and BJDREFI/BJDREFF/
TIMESYS/TIMEREF/TIMEUNIT).  The service route runs lightkurve's real search
and download against a local MAST stand-in (portal API, columns config,
name resolver, file download) built on `multilc.testing.ReplayServer`.
"""
import json
import warnings
from importlib import resources
from urllib.parse import unquote

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

import multilc
from multilc.lightcurve import MultiBandLightCurve
from multilc.archives import tess_kepler

pytest.importorskip("lightkurve")

TESS_REF = 2457000.0     # BTJD = BJD_TDB - 2457000 (TESS SDPDD)
KEPLER_REF = 2454833.0   # BKJD = BJD_TDB - 2454833 (Kepler Archive Manual)
MJD0 = 2400000.5


# --------------------------------------------------------------------------- fixtures
def write_lc(path, mission="tess", *, time, pdcsap, pdcsap_err, sap=None, sap_err=None,
             quality=None, target_id=25155310, season=1, ra=10.0, dec=-20.0,
             bjdrefi=None, bjdreff=0.0, timesys="TDB", timeref="SOLARSYSTEM"):
    """Write a light-curve file in the SPOC / Kepler pipeline layout."""
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
        ref, qname, tunit = TESS_REF, "QUALITY", "BJD - 2457000, days"
    else:
        h["CREATOR"] = "17211 FluxExporter2PipelineModule"
        h["TELESCOP"] = "Kepler"
        h["INSTRUME"] = "Kepler Photometer"
        h["MISSION"] = "Kepler" if mission == "kepler" else "K2"
        h["OBJECT"] = f"{'KIC' if mission == 'kepler' else 'EPIC'} {target_id}"
        h["KEPLERID"] = target_id
        h["QUARTER" if mission == "kepler" else "CAMPAIGN"] = season
        ref, qname, tunit = KEPLER_REF, "SAP_QUALITY", "BJD - 2454833"
    h["RADESYS"] = "ICRS"
    h["RA_OBJ"] = ra
    h["DEC_OBJ"] = dec
    cols = [
        fits.Column("TIME", "D", unit=tunit, array=np.asarray(time, float)),
        fits.Column("TIMECORR", "E", unit="d", array=np.full(n, 0.001)),
        fits.Column("CADENCENO", "J", array=np.arange(n) + 1000),
        fits.Column("SAP_FLUX", "E", unit="e-/s", array=np.asarray(sap, float)),
        fits.Column("SAP_FLUX_ERR", "E", unit="e-/s", array=np.asarray(sap_err, float)),
        fits.Column("SAP_BKG", "E", unit="e-/s", array=np.zeros(n)),
        fits.Column("SAP_BKG_ERR", "E", unit="e-/s", array=np.zeros(n)),
        fits.Column("PDCSAP_FLUX", "E", unit="e-/s", array=np.asarray(pdcsap, float)),
        fits.Column("PDCSAP_FLUX_ERR", "E", unit="e-/s", array=np.asarray(pdcsap_err, float)),
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
    fits.HDUList([primary, ext]).writeto(path, overwrite=True)
    return path


# --------------------------------------------------------------------------- file reader
def test_tess_and_kepler_times_pinned(tmp_path):
    """BTJD + 2457000 and BKJD + 2454833 (today's tools add 2457000 to both)."""
    t = [1500.0, 1500.5]
    tess = write_lc(tmp_path / "tess_lc.fits", "tess", time=t, pdcsap=[100, 101],
                    pdcsap_err=[1, 1])
    kep = write_lc(tmp_path / "kplr_llc.fits", "kepler", time=t, pdcsap=[100, 101],
                   pdcsap_err=[1, 1], target_id=11904151, season=3)
    k2 = write_lc(tmp_path / "ktwo_llc.fits", "k2", time=t, pdcsap=[100, 101],
                  pdcsap_err=[1, 1], target_id=201367065, season=5)
    lc_t = MultiBandLightCurve.read(tess, format="tess.lightcurve")
    lc_k = MultiBandLightCurve.read(kep, format="kepler.lightcurve")
    lc_2 = MultiBandLightCurve.read(k2, format="k2.lightcurve")
    np.testing.assert_allclose(lc_t.time.mjd, [58499.5, 58500.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc_k.time.mjd, [56332.5, 56333.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc_2.time.mjd, [56332.5, 56333.0], rtol=0, atol=1e-9)
    # The bug of today's tools: Kepler shifted by TESS_REF - KEPLER_REF = 2167 d.
    assert lc_t.time.mjd[0] - lc_k.time.mjd[0] == pytest.approx(2167.0)
    assert lc_t.time.scale == "tdb"
    assert lc_t.bands == ["tess:TESS"] and lc_k.bands == ["kepler:Kepler"]
    assert lc_2.bands == ["k2:K2"]


def test_reference_date_read_from_header(tmp_path):
    path = write_lc(tmp_path / "odd_lc.fits", "tess", time=[10.0], pdcsap=[5.0],
                    pdcsap_err=[0.1], bjdrefi=2450000, bjdreff=0.25)
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve")
    assert lc.time.mjd[0] == pytest.approx(10.0 + 2450000.25 - MJD0, abs=1e-9)


def test_flux_unit_masks_and_metadata(tmp_path):
    quality = [0, 1, 2048, 0, 0]      # 1 = AttitudeTweak (default), 2048 = Straylight (hard)
    pdc = [100.0, 200.0, 300.0, np.nan, 500.0]
    path = write_lc(tmp_path / "tess2018-s0001_lc.fits", "tess",
                    time=[1, 2, 3, 4, np.nan], pdcsap=pdc, pdcsap_err=[1, 2, 3, 4, 5],
                    sap=[10, 20, 30, 40, 50], sap_err=[.1, .2, .3, .4, .5], quality=quality,
                    dec=-20.0 + 0.5 / 3600)
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve", ra=10 * u.deg,
                                  dec=-20 * u.deg)
    assert lc.flux.unit == u.electron / u.s
    np.testing.assert_allclose(lc.flux.value, [100.0, 300.0])
    np.testing.assert_allclose(lc.flux_err.value, [1.0, 3.0])
    assert lc.ds["flux_instrumental"].attrs["units"] != "mJy"
    assert np.isnan(lc.ds["flux"].values).all()          # never stored as mJy
    np.testing.assert_array_equal(lc.ds["flag"].values, [0, 2048])
    np.testing.assert_array_equal(lc.ds["source_id"].values, [25155310, 25155310])
    np.testing.assert_allclose(lc.ds["separation"].values, 0.5, atol=1e-6)
    notes = str(lc.ds["band_notes"].values[0])
    assert notes.split("; ") == ["SPOC", "PDCSAP_FLUX", "sector 1"]
    # "hard" also removes Straylight; SAP flux on request
    hard = MultiBandLightCurve.read(path, format="tess.lightcurve", quality_bitmask="hard",
                                    flux_column="sap_flux")
    np.testing.assert_allclose(hard.flux.value, [10.0, 40.0])   # SAP_FLUX is not NaN there
    # "none" keeps flagged cadences, NaN flux and time still dropped
    none = MultiBandLightCurve.read(path, format="tess.lightcurve", quality_bitmask="none")
    np.testing.assert_allclose(none.flux.value, [100.0, 200.0, 300.0])


def test_drop_counts(tmp_path):
    from multilc.archives.tess_kepler import products_to_lightcurve, read_lightcurve_file

    path = write_lc(tmp_path / "a_lc.fits", "tess", time=[1, 2, 3, np.nan],
                    pdcsap=[1, 2, np.nan, 4], pdcsap_err=[1, 1, 1, 1], quality=[0, 8, 0, 0])
    res = products_to_lightcurve(
        [{"objectid": 7, "ra": 10.0, "dec": -20.0, "products": [read_lightcurve_file(path)]}],
        {"flux_column": "pdcsap_flux", "quality_bitmask": "default", "bin_to": None,
         "match": "all"}, "tess")
    reasons = res.dropped
    assert reasons.pop("TIME is NaN") == 1
    assert reasons.pop("PDCSAP_FLUX is NaN") == 1
    (quality_reason, n), = reasons.items()
    assert n == 1 and quality_reason.startswith("QUALITY & ")   # bit 8 = EarthPoint
    assert len(res.lc.time) == 1


def test_binning_inverse_variance(tmp_path):
    dt = 30 * u.min
    width = dt.to_value(u.day)
    # MJD = BTJD + 56999.5; choose times so that cadences fall in two bins.
    k0 = np.ceil((1000.0 + 56999.5) / width)
    base = k0 * width - 56999.5                   # BTJD at a bin edge
    t = base + np.array([0.001, 0.004, 0.008, width + 0.002, width + 0.006])
    f = np.array([10.0, 12.0, 11.0, 20.0, 22.0])
    e = np.array([1.0, 2.0, 0.5, 1.0, 1.0])
    path = write_lc(tmp_path / "bin_lc.fits", "tess", time=t, pdcsap=f, pdcsap_err=e,
                    quality=[0, 0, 4096, 0, 0])   # 4096 is not in the default mask
    lc = MultiBandLightCurve.read(path, format="tess.lightcurve", bin_to=dt)
    w = 1 / e[:3] ** 2
    expect_f1 = (w * f[:3]).sum() / w.sum()
    expect_e1 = 1 / np.sqrt(w.sum())
    np.testing.assert_allclose(lc.flux.value, [expect_f1, 21.0], rtol=1e-6)
    np.testing.assert_allclose(lc.flux_err.value, [expect_e1, 1 / np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(lc.time.mjd, [t[:3].mean() + 56999.5, t[3:].mean() + 56999.5],
                               atol=1e-6)
    np.testing.assert_array_equal(lc.ds["flag"].values, [4096, 0])
    with pytest.raises(TypeError, match="bin_to must be a time Quantity"):
        MultiBandLightCurve.read(path, format="tess.lightcurve", bin_to=0.02)


def test_mission_detected_from_header(tmp_path):
    kep = write_lc(tmp_path / "kplr_llc.fits", "kepler", time=[1.0], pdcsap=[1.0],
                   pdcsap_err=[1.0], target_id=1)
    tess = write_lc(tmp_path / "tess_lc.fits", "tess", time=[1.0], pdcsap=[1.0],
                    pdcsap_err=[1.0])
    with pytest.raises(ValueError, match="header says Kepler.*kepler.lightcurve"):
        MultiBandLightCurve.read(kep, format="tess.lightcurve")
    # no format: identified from TELESCOP/MISSION
    assert MultiBandLightCurve.read(kep).bands == ["kepler:Kepler"]
    assert MultiBandLightCurve.read(tess).bands == ["tess:TESS"]


def test_non_barycentric_file_refused(tmp_path):
    path = write_lc(tmp_path / "x_lc.fits", "tess", time=[1.0], pdcsap=[1.0],
                    pdcsap_err=[1.0], timeref="LOCAL")
    with pytest.raises(ValueError, match="TIMEREF=LOCAL"):
        MultiBandLightCurve.read(path, format="tess.lightcurve")


def test_options_checked():
    with pytest.raises(ValueError, match="flux_column"):
        tess_kepler.TessArchive(flux_column="kspsap_flux")
    with pytest.raises(ValueError, match="quality_bitmask"):
        tess_kepler.KeplerArchive(quality_bitmask="strict")
    with pytest.raises(TypeError, match="radius must be an angle Quantity"):
        tess_kepler.TessArchive(radius=2.0)
    arch = tess_kepler.TessArchive()
    assert arch.options["author"] == "SPOC" and arch.options["exptime"] == 120
    assert tess_kepler.K2Archive().options["author"] == "K2"


# --------------------------------------------------------------------------- MAST stand-in
def _astroquery_data(name):
    return json.loads(resources.files("astroquery.mast.tests").joinpath("data", name)
                      .read_text())


class MastStandin:
    """MAST portal API + name resolver + downloads, answering from a product list.

    Real formats: the columns config, Mast.Caom.Filtered.Position and
    Mast.Caom.Products answers follow astroquery's recorded MAST responses
    (astroquery/mast/tests/data/columnsconfig.json, advSearchPos.json,
    products.json, resolver.json).  The recorded columns config predates the
    ``provenance_name`` and ``sequence_number`` CAOM fields that lightkurve
    filters on, so they are added here (CAOM field list, MAST API docs).
    """

    OBS_FIELDS = [("dataproduct_type", "string"), ("calib_level", "int"),
                  ("obs_collection", "string"), ("obs_id", "string"),
                  ("target_name", "string"), ("s_ra", "float"), ("s_dec", "float"),
                  ("t_min", "float"), ("t_max", "float"), ("t_exptime", "float"),
                  ("provenance_name", "string"), ("sequence_number", "int"),
                  ("project", "string"), ("obsid", "string"), ("distance", "float")]

    def __init__(self, server, observations):
        self.server = server
        self.observations = observations      # list of dicts incl. "file", "product"
        self.invocations = []
        colconf = _astroquery_data("columnsconfig.json")
        colconf["provenance_name"] = {"text": "Provenance Name", "vot.datatype": "char",
                                      "vot.name": "provenance_name", "separator": ";"}
        colconf["sequence_number"] = {"text": "Sequence Number", "vot.datatype": "int",
                                      "vot.name": "sequence_number"}
        self.products_template = _astroquery_data("products.json")
        server.route("/portal/Mashup/Mashup.asmx/columnsconfig", json.dumps(colconf),
                     method="POST", content_type="application/json")
        server.route("/api/v0/invoke", handler=self.invoke, method="POST")
        server.route("/Santa-war/query", handler=self.resolve)
        server.route("/api/v0.1/Download/file", handler=self.download, method=None)

    def resolve(self, req):
        name = req.args["name"]
        ra, dec = (float(x) for x in name.split(","))
        return json.dumps({"resolvedCoordinate": [{"searchString": name.lower(),
                                                   "resolver": "NED", "ra": ra,
                                                   "decl": dec, "canonicalName": name}],
                           "status": ""})

    def invoke(self, req):
        request = json.loads(req.form["request"])
        self.invocations.append(request)
        service = request["service"]
        if service == "Mast.Caom.Filtered.Position":
            ra, dec, radius = (float(x) for x in request["params"]["position"].split(","))
            filters = {f["paramName"]: f["values"] for f in request["params"]["filters"]}
            rows = []
            centre = SkyCoord(ra * u.deg, dec * u.deg)
            for obs in self.observations:
                sep = centre.separation(SkyCoord(obs["s_ra"] * u.deg, obs["s_dec"] * u.deg))
                if sep.deg > radius or obs["project"] not in filters["project"]:
                    continue
                if "provenance_name" in filters and \
                        obs["provenance_name"] not in filters["provenance_name"]:
                    continue
                row = {k: obs[k] for k, _ in self.OBS_FIELDS if k in obs}
                row["distance"] = sep.to_value(u.arcsec)
                rows.append(row)
            fields = [{"name": n, "type": t} for n, t in self.OBS_FIELDS]
        elif service == "Mast.Caom.Products":
            wanted = request["params"]["obsid"].split(",")
            rows = []
            for obs in self.observations:
                if obs["obsid"] in wanted:
                    rows.append({"obsID": obs["obsid"], "obs_collection": obs["obs_collection"],
                                 "dataproduct_type": "timeseries", "obs_id": obs["obs_id"],
                                 "description": "Light curves", "type": "S",
                                 "dataURI": f"mast:{obs['project']}/product/{obs['file'].name}",
                                 "productType": "SCIENCE", "productGroupDescription":
                                 "Minimum Recommended Products", "productSubGroupDescription":
                                 "LC", "productDocumentationURL": "", "project": obs["project"],
                                 "prvversion": "", "productFilename": obs["file"].name,
                                 "size": obs["file"].stat().st_size, "_selected_": None})
            fields = self.products_template["fields"]
        else:
            raise AssertionError(f"unexpected MAST service {service}")
        return json.dumps({"status": "COMPLETE", "msg": "", "data": rows, "fields": fields,
                           "paging": {"page": 1, "pageSize": len(rows), "pagesFiltered": 1,
                                      "rows": len(rows), "rowsFiltered": len(rows),
                                      "rowsTotal": len(rows)}})

    def download(self, req):
        uri = unquote(req.args["uri"])
        for obs in self.observations:
            if uri.endswith("/" + obs["file"].name):
                return (200, {"Content-Type": "application/fits"},
                        obs["file"].read_bytes())
        return (404, {}, "not found")

    @property
    def downloads(self):
        return sum(1 for r in self.server.requests
                   if r.path == "/api/v0.1/Download/file" and r.method == "GET")


@pytest.fixture
def mast(replay_server, monkeypatch, tmp_path):
    """Point lightkurve/astroquery at the stand-in; return a factory."""
    import astroquery.mast.utils as mast_utils
    import lightkurve.search as lk_search
    from astroquery.mast import Observations

    monkeypatch.setenv("MULTILC_MAST_URL", replay_server.url)
    monkeypatch.setenv("MULTILC_MAST_DOWNLOAD_DIR", str(tmp_path / "lkcache"))
    # astroquery hard-codes the MAST name-resolver host; send it to the stand-in.
    real = mast_utils._simple_request

    def local_resolver(url, params=None):
        assert "mastresolver.stsci.edu/Santa-war/query" in url
        return real(replay_server.url + "/Santa-war/query", params)

    monkeypatch.setattr(mast_utils, "_simple_request", local_resolver)
    portal = Observations._portal_api_connection
    for attr in ("MAST_REQUEST_URL", "COLUMNS_CONFIG_URL", "MAST_DOWNLOAD_URL",
                 "MAST_BUNDLE_URL", "TIMEOUT"):
        monkeypatch.setattr(portal, attr, getattr(portal, attr))   # restored afterwards
    monkeypatch.setattr(portal, "_column_configs", {})
    lk_search.search_lightcurve.cache_clear()
    yield lambda observations: MastStandin(replay_server, observations)
    lk_search.search_lightcurve.cache_clear()


def _obs(path, *, project, author, exptime, seq, ra, dec, obsid, target):
    return {"file": path, "project": project, "obs_collection": project,
            "provenance_name": author, "t_exptime": float(exptime), "sequence_number": seq,
            "s_ra": ra, "s_dec": dec, "obsid": str(obsid), "obs_id": path.name[:-8],
            "target_name": str(target), "dataproduct_type": "timeseries", "calib_level": 3,
            "t_min": 58000.0, "t_max": 58027.0}


def test_collect_tess_through_mast_standin(mast, tmp_path):
    ra, dec = 150.0, 2.0
    files = tmp_path / "files"
    files.mkdir()
    s1 = write_lc(files / "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits", "tess",
                  time=[1325.5, 1325.6], pdcsap=[1000.0, 1010.0], pdcsap_err=[2.0, 2.0],
                  quality=[0, 32], ra=ra, dec=dec, season=1)
    s2 = write_lc(files / "tess2018234235059-s0002-0000000025155310-0120-s_lc.fits", "tess",
                  time=[1354.2], pdcsap=[990.0], pdcsap_err=[2.0], ra=ra, dec=dec, season=2)
    qlp = write_lc(files / "hlsp_qlp_tess_ffi_s0001-0000000025155310_tess_v01_llc.fits",
                   "tess", time=[1325.7], pdcsap=[5.0], pdcsap_err=[1.0], ra=ra, dec=dec)
    fast = write_lc(files / "tess2018206045859-s0001-0000000025155310-0091-a_fast-lc.fits",
                    "tess", time=[1325.5], pdcsap=[7.0], pdcsap_err=[1.0], ra=ra, dec=dec)
    standin = mast([
        _obs(s1, project="TESS", author="SPOC", exptime=120, seq=1, ra=ra, dec=dec,
             obsid=1001, target=25155310),
        _obs(s2, project="TESS", author="SPOC", exptime=120, seq=2, ra=ra, dec=dec,
             obsid=1002, target=25155310),
        _obs(qlp, project="TESS", author="QLP", exptime=1800, seq=1, ra=ra, dec=dec,
             obsid=1003, target=25155310),
        _obs(fast, project="TESS", author="SPOC", exptime=20, seq=1, ra=ra, dec=dec,
             obsid=1004, target=25155310),
    ])
    coords = SkyCoord([ra, ra + 1.0] * u.deg, [dec, dec] * u.deg)    # second: nothing there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = multilc.collect(coords, archives=["tess"], radius=2 * u.arcsec, retries=1,
                             backoff=0.01, timeout=5, progress=False)
    assert lc.report.failures == []
    # What was asked: SPOC only, the TESS project, a 2-arcsec cone.
    searches = [r for r in standin.invocations if r["service"] == "Mast.Caom.Filtered.Position"]
    assert len(searches) == 2
    filters = {f["paramName"]: f["values"] for f in searches[0]["params"]["filters"]}
    assert filters["provenance_name"] == ["SPOC"] and filters["project"] == ["TESS"]
    radius_deg = float(searches[0]["params"]["position"].split(",")[2])
    assert radius_deg == pytest.approx(2 / 3600)
    # Only the two 2-min SPOC files were downloaded (not QLP, not 20-s).
    assert standin.downloads == 2
    np.testing.assert_allclose(lc.time.mjd, [1325.5 + 56999.5, 1354.2 + 56999.5], atol=1e-6)
    np.testing.assert_allclose(lc.flux.to_value(u.electron / u.s), [1000.0, 990.0])
    (reason, count), = lc.report.dropped["tess"].items()     # bit 32 = Desat
    assert count == 1 and reason.startswith("QUALITY & ")
    assert str(lc.ds["band_notes"].values[0]).split("; ") == \
        ["SPOC", "PDCSAP_FLUX", "sector 1", "sector 2"]
    np.testing.assert_array_equal(lc.objectids, [1])

    # Second run without the response cache: lightkurve's download cache is used.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = multilc.collect(coords[:1], archives=["tess"], radius=2 * u.arcsec,
                                cache=False, retries=1, backoff=0.01, timeout=5,
                                progress=False)
    assert standin.downloads == 2
    np.testing.assert_allclose(again.flux.value, lc.flux.value)


def test_collect_kepler_nearest_and_failure(mast, tmp_path, replay_server):
    from multilc.testing import Fault

    ra, dec = 290.0, 44.0
    files = tmp_path / "files"
    files.mkdir()
    near = write_lc(files / "kplr011904151-2009259160929_llc.fits", "kepler",
                    time=[200.0, 200.02], pdcsap=[50.0, 51.0], pdcsap_err=[0.5, 0.5],
                    target_id=11904151, season=3, ra=ra, dec=dec + 0.3 / 3600)
    far = write_lc(files / "kplr011904152-2009259160929_llc.fits", "kepler",
                   time=[200.0], pdcsap=[9.0], pdcsap_err=[0.5], target_id=11904152,
                   season=3, ra=ra, dec=dec + 1.5 / 3600)
    standin = mast([
        _obs(near, project="Kepler", author="Kepler", exptime=1800, seq=None, ra=ra,
             dec=dec + 0.3 / 3600, obsid=2001, target="kplr011904151"),
        _obs(far, project="Kepler", author="Kepler", exptime=1800, seq=None, ra=ra,
             dec=dec + 1.5 / 3600, obsid=2002, target="kplr011904152"),
    ])
    for obs in standin.observations:
        obs.pop("sequence_number")       # Kepler prime leaves it empty at MAST
    # The portal fails permanently for the first target's search (HTTP 400).
    replay_server.faults("/api/v0/invoke", [Fault.status(400)])
    coords = SkyCoord([ra - 1, ra] * u.deg, [dec, dec] * u.deg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = multilc.collect(coords, archives=["kepler"], radius=3 * u.arcsec,
                             options={"kepler": {"match": "nearest", "concurrency": 1}},
                             retries=0, backoff=0.01, timeout=5, progress=False)
    (failure,) = lc.report.failures
    assert failure.archive == "kepler" and failure.objectids == [1]
    assert "400" in failure.message
    np.testing.assert_array_equal(lc.ds["source_id"].values, [11904151, 11904151])
    np.testing.assert_allclose(lc.time.mjd, [200.0 + 54832.5, 200.02 + 54832.5], atol=1e-6)
    np.testing.assert_allclose(lc.ds["separation"].values, 0.3, atol=1e-3)
    assert lc.report.dropped["kepler"]["not the nearest target (match='nearest')"] == 1
    assert "quarter 3" in str(lc.ds["band_notes"].values[0])


@pytest.mark.remote_data
def test_remote_tess():
    lc = multilc.collect(SkyCoord.from_name("pi Men"), archives=["tess"],
                         radius=2 * u.arcsec, progress=False)
    assert "tess:TESS" in lc.bands
    assert (lc.time.mjd > 58300).all()


@pytest.mark.remote_data
def test_remote_kepler_and_k2():
    lc = multilc.collect(SkyCoord(285.67942179, 50.24130576, unit="deg"),   # Kepler-10
                         archives=["kepler"], radius=2 * u.arcsec, progress=False)
    assert lc.bands == ["kepler:Kepler"]
    assert (lc.time.mjd > 54900).all() and (lc.time.mjd < 56500).all()
    k2 = multilc.collect(SkyCoord(172.560141, 7.588391, unit="deg"),        # K2-18
                         archives=["k2"], radius=2 * u.arcsec, progress=False)
    assert k2.bands == ["k2:K2"]
