"""Tests of the Gaia DR3 epoch-photometry reader (multilc.archives.gaia).

Stand-ins: `TAPStandin` for the Gaia TAP crossmatch, a `ReplayServer` route
for the DataLink data server answering zips built here in the archive's
layout (``EPOCH_PHOTOMETRY-Gaia DR3 <source_id>.xml`` per source), and HATS
catalogs written at test time with the nested ``epoch_photometry`` column.
Expected fluxes and times are computed by hand or with astropy directly.
"""
import importlib.resources
import io
import json
import re
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from multilc import MultiBandLightCurve, collect
from multilc.errors import FileFormatError
from multilc.testing.tap import ADQLError, TAPStandin

gaia = pytest.importorskip("multilc.archives.gaia")

# Gaia DR3 AB zero points for fluxes in e-/s (Riello et al. 2021, A&A 649, A3,
# Table 3), typed here independently of multilc.photometry.
ZP_AB = {"G": 25.8010, "BP": 25.3540, "RP": 25.1040}
FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False, cache=False)


def mjy(flux_e_s, band):
    """Hand formula: 1 e-/s has AB magnitude ZP_AB, and AB m means
    f_nu = 10**(-0.4 (m + 48.60)) erg s-1 cm-2 Hz-1 (Oke & Gunn 1983) = that
    times 1e26 mJy."""
    return 10 ** (-0.4 * (ZP_AB[band] + 48.60)) * 1e26 * np.asarray(flux_e_s)


def mjd_tdb(gaia_time):
    """Gaia time (BJD_TCB - 2455197.5) -> MJD(TDB) with astropy."""
    t = Time(np.full(np.shape(gaia_time), 2455197.5), np.asarray(gaia_time),
             format="jd", scale="tcb")
    return t.tdb.mjd


# --------------------------------------------------------------------------- fake sky
SOURCES = [  # source_id, ra, dec, has_epoch_photometry
    (4111834567779557376, 150.000000, 2.000000, True),
    (4111834567779557377, 150.000100, 2.000000, True),   # 0.36" from the first
    (4111834567779557999, 150.010000, 2.000000, False),  # no epoch photometry
    (5813181197970338560, 210.500000, -30.250000, True),
]


def transits(source_id, seed):
    """Per-transit rows of one source in the DataLink INDIVIDUAL layout."""
    rows = []
    tid = 17091923342681275 + seed * 1000
    for band, n in (("G", 4), ("BP", 3), ("RP", 3)):
        for k in range(n):
            flux = 10000.0 + 500 * k + 100 * seed
            rows.append(dict(
                source_id=source_id, transit_id=tid + k, band=band,
                time=1705.9437360200984 + 30.25 * k + 0.01 * seed,
                mag=float(25.6874 - 2.5 * np.log10(flux)), flux=flux,
                flux_error=flux / 300, flux_over_error=300.0,
                rejected_by_photometry=(band == "BP" and k == 2),
                rejected_by_variability=(band == "G" and k == 3),
                other_flags=4097 if band == "G" else 0,
                solution_id=369295551293819386))
    t = Table(rows=rows)
    t["time"].unit = u.d
    t["mag"].unit = u.mag
    # the archive's unit string is "s-1" (pyvo's real file)
    t["flux"].unit = u.s**-1
    t["flux_error"].unit = u.s**-1
    return t


TRANSITS = {sid: transits(sid, i) for i, (sid, _, _, has) in enumerate(SOURCES) if has}


def raw_layout(table):
    """The RAW layout (one row per source, arrays) of per-transit rows."""
    out = {"source_id": [], "transit_id": []}
    names = {c: [] for cols in gaia.RAW_BAND_COLUMNS.values() for c in cols if c}
    out.update(names)
    for sid in np.unique(table["source_id"]):
        t = table[table["source_id"] == sid]
        out["source_id"].append(sid)
        g = t[t["band"] == "G"]
        out["transit_id"].append(np.asarray(g["transit_id"]))
        for band, (tc, fc, ec, mc, vc, pc) in gaia.RAW_BAND_COLUMNS.items():
            b = t[t["band"] == band]
            out[tc].append(np.asarray(b["time"]))
            out[fc].append(np.asarray(b["flux"]))
            out[ec].append(np.asarray(b["flux_error"]))
            out[mc].append(np.asarray(b["mag"]))
            out[vc].append(np.asarray(b["rejected_by_variability"]))
            if pc:
                out[pc].append(np.asarray(b["rejected_by_photometry"]))
    return out


def product_bytes(table, fmt):
    """Serialise per-transit rows as a DataLink product file."""
    if fmt in ("csv", "ecsv"):
        text = io.StringIO()
        table.write(text, format=f"ascii.{fmt}")
        return text.getvalue().encode()
    buf = io.BytesIO()
    table.write(buf, format="votable" if fmt == "votable" else "fits")
    return buf.getvalue()


SUFFIX = {"votable": "xml", "csv": "csv", "ecsv": "ecsv", "fits": "fits"}


def datalink_zip(ids, fmt="votable", structure="INDIVIDUAL"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        present = [i for i in ids if i in TRANSITS]
        if structure == "INDIVIDUAL":
            for sid in present:
                zf.writestr(f"EPOCH_PHOTOMETRY-Gaia DR3 {sid}.{SUFFIX[fmt]}",
                            product_bytes(TRANSITS[sid], fmt))
        elif present:
            from astropy.table import vstack

            zf.writestr(f"EPOCH_PHOTOMETRY_COMBINED.{SUFFIX[fmt]}",
                        product_bytes(vstack([TRANSITS[s] for s in present]), fmt))
    return buf.getvalue()


def tap_answer(calls):
    """Answer the crossmatch ADQL with astropy; records what was asked."""
    cat = Table(rows=SOURCES, names=("source_id", "ra", "dec", "has_epoch_photometry"))

    def answer(query, uploads, maxrec):
        calls.append((query, {k: len(v) for k, v in uploads.items()}))
        m = re.search(r"CIRCLE\('ICRS', mt\.ra, mt\.dec, ([0-9.eE+-]+)\)", query)
        if "gaiadr3.gaia_source" not in query or "TAP_UPLOAD.mytable" not in query or not m:
            raise ADQLError("unexpected query")
        up = uploads["mytable"]
        radius = float(m.group(1)) * u.deg
        tc = SkyCoord(np.asarray(up["ra"]) * u.deg, np.asarray(up["dec"]) * u.deg)
        cc = SkyCoord(np.asarray(cat["ra"]) * u.deg, np.asarray(cat["dec"]) * u.deg)
        it, ic, sep, _ = cc.search_around_sky(tc, radius)
        return Table({"objectid": np.asarray(up["objectid"], "int64")[it],
                      "source_id": np.asarray(cat["source_id"], "int64")[ic],
                      "ra": np.asarray(cat["ra"])[ic], "dec": np.asarray(cat["dec"])[ic],
                      "has_epoch_photometry": np.asarray(cat["has_epoch_photometry"])[ic],
                      "dist": sep.to_value(u.deg)})
    return answer


@pytest.fixture
def services(replay_server, monkeypatch):
    calls = []
    tap = TAPStandin(replay_server, tap_answer(calls), base="/tap-server/tap")

    def datalink(request):
        ids = [int(i) for i in request.form["ID"].split(",") if i]
        return (200, {"Content-Type": "application/zip"},
                datalink_zip(ids, request.form["FORMAT"], request.form["DATA_STRUCTURE"]))

    replay_server.route("/data-server/data", method="POST", handler=datalink)
    monkeypatch.setenv("MULTILC_GAIA_TAP_URL", tap.url)
    monkeypatch.setenv("MULTILC_GAIA_DATALINK_URL",
                       replay_server.url_for("/data-server/data"))
    return replay_server, tap, calls


def targets():
    return Table({"objectid": [11, 12, 13],
                  "ra": [150.0, 210.5, 40.0], "dec": [2.0, -30.25, 40.0]})


# --------------------------------------------------------------------------- files
def test_reads_real_pyvo_epoch_photometry_votable():
    path = importlib.resources.files("pyvo") / "mivot/tests/data/test.mivot_viewer.xml"
    lc = MultiBandLightCurve.read(str(path), format="gaia.epoch_photometry")
    ds = lc.ds
    assert ds.sizes["obs"] == 3
    assert list(ds["band"].values) == ["gaia:G"]
    assert set(ds["source_id"].values) == {5813181197970338560}
    first = int(np.argmin(ds["time"].values))
    # time 1705.9437360200984 d = BJD(TCB) - 2455197.5, converted by astropy.
    expected_t = Time(2455197.5, 1705.9437360200984, format="jd", scale="tcb").tdb.mjd
    assert ds["time"].values[first] == pytest.approx(expected_t, abs=1e-9)
    # not today's tool's +55197.5 (half a day late)
    assert abs(ds["time"].values[first] - (1705.9437360200984 + 55197.5)) > 0.49
    # flux 15442.456273273616 e-/s with ZP_AB(G) = 25.8010 (AB: m = -2.5 log10
    # f_nu[erg/s/cm2/Hz] - 48.60; 1 mJy = 1e-26 erg/s/cm2/Hz)
    assert ds["flux"].values[first] == pytest.approx(
        10 ** (-0.4 * (25.8010 + 48.60)) * 1e26 * 15442.456273273616, rel=1e-6)
    assert ds["mag"].values[first] == pytest.approx(15.216574774452164, rel=1e-6)
    assert ds["flag"].values[first] == 4097


@pytest.mark.parametrize("fmt", ["votable", "csv", "ecsv", "fits"])
def test_individual_product_formats(tmp_path, fmt):
    sid = SOURCES[0][0]
    path = tmp_path / f"EPOCH_PHOTOMETRY-Gaia DR3 {sid}.{SUFFIX[fmt]}"
    path.write_bytes(product_bytes(TRANSITS[sid], fmt))
    lc = MultiBandLightCurve.read(path, format="gaia.epoch_photometry")
    t = TRANSITS[sid]
    keep = ~(np.asarray(t["rejected_by_photometry"]) | np.asarray(t["rejected_by_variability"]))
    ds = lc.ds
    assert ds.sizes["obs"] == keep.sum() == 8
    assert json.loads(ds.attrs["dropped"]) == {"rejected_by_photometry": 1,
                                               "rejected_by_variability": 1}
    assert sorted(ds["band"].values) == ["gaia:BP", "gaia:G", "gaia:RP"]
    band_of = np.asarray(ds["band"].values)[ds["obs_band"].values]
    for band in ("G", "BP", "RP"):
        sel = band_of == f"gaia:{band}"
        rows = t[keep & (np.asarray(t["band"]) == band)]
        np.testing.assert_allclose(np.sort(ds["flux"].values[sel]),
                                   np.sort(mjy(rows["flux"], band)), rtol=1e-9)
        np.testing.assert_allclose(np.sort(ds["time"].values[sel]),
                                   np.sort(mjd_tdb(rows["time"])), atol=1e-9)


def test_keep_rejected_marks_flag_bits(tmp_path):
    sid = SOURCES[0][0]
    path = tmp_path / "p.xml"
    path.write_bytes(product_bytes(TRANSITS[sid], "votable"))
    lc = MultiBandLightCurve.read(path, format="gaia.epoch_photometry", drop_rejected=())
    flags = lc.ds["flag"].values
    assert lc.ds.sizes["obs"] == 10
    assert ((flags & (1 << 32)) != 0).sum() == 1     # rejected_by_photometry (BP)
    assert ((flags & (1 << 33)) != 0).sum() == 1     # rejected_by_variability (G)
    assert ((flags & 0xFFFFFFFF) == 4097).sum() == 4  # G other_flags kept
    only_var = MultiBandLightCurve.read(path, format="gaia.epoch_photometry",
                                        drop_rejected=["variability"])
    assert only_var.ds.sizes["obs"] == 9


@pytest.mark.parametrize("fmt", ["votable", "ecsv", "fits"])
def test_raw_layout(tmp_path, fmt):
    from astropy.table import vstack

    both = vstack([TRANSITS[SOURCES[0][0]], TRANSITS[SOURCES[3][0]]])
    raw = raw_layout(both)
    t = Table()
    t["source_id"] = np.asarray(raw.pop("source_id"), "int64")
    for name, cells in raw.items():
        # equal lengths per column here, so plain 2-d array columns
        t[name] = np.stack(cells)
    path = tmp_path / f"raw.{SUFFIX[fmt]}"
    path.write_bytes(product_bytes(t, fmt))
    lc = MultiBandLightCurve.read(path, format="gaia.epoch_photometry")
    ds = lc.ds
    # RAW has no per-transit G photometry flag: G k=3 is dropped by variability,
    # BP k=2 by photometry_flag_bp_reject.
    assert ds.sizes["obs"] == 2 * 8
    assert json.loads(ds.attrs["dropped"]) == {"rejected_by_photometry": 2,
                                               "rejected_by_variability": 2}
    band_of = np.asarray(ds["band"].values)[ds["obs_band"].values]
    sel = (band_of == "gaia:RP") & (ds["source_id"].values == SOURCES[3][0])
    rows = TRANSITS[SOURCES[3][0]]
    rows = rows[np.asarray(rows["band"]) == "RP"]
    np.testing.assert_allclose(np.sort(ds["flux"].values[sel]), mjy(rows["flux"], "RP"))
    np.testing.assert_allclose(np.sort(ds["time"].values[sel]), mjd_tdb(rows["time"]),
                               atol=1e-9)


def test_zip_and_combined_layout(tmp_path):
    ids = [SOURCES[0][0], SOURCES[3][0]]
    for structure in ("INDIVIDUAL", "COMBINED"):
        path = tmp_path / f"{structure}.zip"
        path.write_bytes(datalink_zip(ids, "ecsv", structure))
        lc = MultiBandLightCurve.read(path, format="gaia.epoch_photometry")
        assert set(lc.objectids_with_data) == set(ids)   # objectid = source_id
        assert lc.ds.sizes["obs"] == 16


def test_bad_file_names_archive(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="x.csv.*gaia: .*not an epoch-photometry table"):
        MultiBandLightCurve.read(path, format="gaia.epoch_photometry")


# --------------------------------------------------------------------------- service
def test_service_end_to_end(services):
    server, tap, calls = services
    lc = collect(targets(), archives=["gaia"], options={"gaia": {"route": "service"}},
                 **FAST)
    assert lc.report.ok, lc.report.summary()
    # one upload of the three targets, the ADQL asks gaia_source within 1 arcsec
    assert [q.upload_rows for q in tap.queries] == [{"mytable": 3}]
    assert f"{1 / 3600!r}" in tap.queries[0].query
    # DataLink asked only sources with epoch photometry, with astroquery's parameters
    (req,) = [r for r in server.requests if r.path == "/data-server/data"]
    assert sorted(int(i) for i in req.form["ID"].split(",")) == sorted(
        [SOURCES[0][0], SOURCES[1][0], SOURCES[3][0]])
    assert req.form["RETRIEVAL_TYPE"] == "EPOCH_PHOTOMETRY"
    assert req.form["DATA_STRUCTURE"] == "INDIVIDUAL"
    assert req.form["FORMAT"] == "votable"
    assert req.form["RELEASE"] == "Gaia DR3"
    ds = lc.ds
    # target 11 matched two sources (match="all"), target 12 one, 13 none
    assert sorted(set(lc.objectids_with_data)) == [11, 12]
    assert lc.report.dropped["gaia"] == {"rejected_by_photometry": 3,
                                         "rejected_by_variability": 3}
    obj = np.asarray(ds["objectid"].values)[ds["obs_object"].values]
    sel = (obj == 11) & (ds["source_id"].values == SOURCES[1][0])
    assert sel.sum() == 8
    # separation of source 2 from target 11: astropy
    sep = SkyCoord(150 * u.deg, 2 * u.deg).separation(
        SkyCoord(150.0001 * u.deg, 2 * u.deg)).to_value(u.arcsec)
    np.testing.assert_allclose(ds["separation"].values[sel], sep, rtol=1e-6)
    # hand-computed G fluxes and times of source 2 (seed 1)
    band_of = np.asarray(ds["band"].values)[ds["obs_band"].values]
    g = sel & (band_of == "gaia:G")
    np.testing.assert_allclose(np.sort(ds["flux"].values[g]),
                               mjy([10100.0, 10600.0, 11100.0], "G"), rtol=1e-9)
    np.testing.assert_allclose(np.sort(ds["time"].values[g]),
                               mjd_tdb(1705.9437360200984 + 0.01 + 30.25 * np.arange(3)),
                               atol=1e-9)


def test_service_nearest_and_upload_chunks(services):
    server, tap, calls = services
    t = Table({"objectid": np.arange(1, 8), "ra": [150.0] * 7,
               "dec": [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]})
    lc = collect(t, archives=["gaia"], chunk_size=3,
                 options={"gaia": {"route": "service", "match": "nearest"}}, **FAST)
    assert lc.report.ok
    assert [q.upload_rows["mytable"] for q in tap.queries] == [3, 3, 1]
    assert set(lc.ds["source_id"].values) == {SOURCES[0][0]}   # the nearest only
    assert server.count("/data-server/data") == 3


def test_datalink_chunks_of_5000(services):
    server, tap, calls = services
    n = 12000
    # 12,000 targets on one source each: the TAP answer gives 12,000 ids.
    def answer(query, uploads, maxrec):
        up = uploads["mytable"]
        return Table({"objectid": np.asarray(up["objectid"], "int64"),
                      "source_id": 10**15 + np.asarray(up["objectid"], "int64"),
                      "ra": np.asarray(up["ra"]), "dec": np.asarray(up["dec"]),
                      "has_epoch_photometry": np.ones(len(up), bool),
                      "dist": np.zeros(len(up))})
    tap.answer = answer
    t = Table({"objectid": np.arange(1, n + 1), "ra": np.linspace(0, 359, n),
               "dec": np.zeros(n)})
    lc = collect(t, archives=["gaia"], chunk_size=n, options={"gaia": {"route": "service"}},
                 **FAST)
    assert lc.report.ok
    reqs = [r for r in server.requests if r.path == "/data-server/data"]
    sizes = [len(r.form["ID"].split(",")) for r in reqs]
    assert sizes == [5000, 5000, 2000]
    asked = sorted(int(i) for r in reqs for i in r.form["ID"].split(","))
    assert asked == list(10**15 + np.arange(1, n + 1))


def test_datalink_html_page_is_a_named_failure(services):
    server, tap, calls = services
    server.route("/data-server/data", "<html><body>Service down</body></html>",
                 method="POST", content_type="text/html")
    lc = collect(targets(), archives=["gaia"], options={"gaia": {"route": "service"}},
                 **FAST)
    (failure,) = lc.report.failures
    assert failure.archive == "gaia"
    assert "HTML page" in failure.message and "11" in failure.message
    assert lc.ds.sizes["obs"] == 0


def test_tap_503_is_retried(services):
    from multilc.testing.replay import Fault

    server, tap, calls = services
    server.faults("/tap-server/tap/sync", [Fault.status(503)])
    lc = collect(targets(), archives=["gaia"], options={"gaia": {"route": "service"}},
                 **FAST)
    assert lc.report.ok
    assert lc.report.requests["gaia"] == 2
    assert lc.ds.sizes["obs"] > 0


def test_radius_must_be_quantity():
    with pytest.raises(TypeError, match="gaia: radius must be an angle Quantity"):
        gaia.Gaia(radius=1.0)
    with pytest.raises(ValueError, match="drop_rejected"):
        gaia.Gaia(drop_rejected=["bogus"])


# --------------------------------------------------------------------------- bulk (HATS)
def hats_rows():
    """DR3 sources with epoch photometry in the HATS layout (nested struct of lists)."""
    import pyarrow as pa

    from astropy.table import vstack

    # plus a decoy far from every target, in a partition that must stay unread
    decoy = transits(999, 7)
    chosen = [s for s in SOURCES if s[3]] + [(999, 300.0, -70.0, True)]
    raw = raw_layout(vstack([TRANSITS[s[0]] for s in chosen[:-1]] + [decoy]))
    order = {int(s): i for i, s in enumerate(raw["source_id"])}
    idx = [order[s[0]] for s in chosen]
    fields, arrays = [], []
    for name in ["transit_id"] + [c for cols in gaia.RAW_BAND_COLUMNS.values()
                                  for c in cols if c]:
        values = [np.asarray(raw[name][i]).tolist() for i in idx]
        typ = (pa.list_(pa.bool_()) if "flag" in name else pa.list_(pa.int64())
               if name == "transit_id" else pa.list_(pa.float64()))
        fields.append(name)
        arrays.append(pa.array(values, typ))
    nested = pa.StructArray.from_arrays(arrays, names=fields)
    return pa.table({"source_id": pa.array([s[0] for s in chosen], pa.int64()),
                     "ra": pa.array([s[1] for s in chosen], pa.float64()),
                     "dec": pa.array([s[2] for s in chosen], pa.float64()),
                     "epoch_photometry": nested})


@pytest.fixture
def hats_catalog(tmp_path):
    from multilc.testing.catalogs import write_hats_catalog

    root = tmp_path / "gaia_dr3_epoch_phot"
    paths = write_hats_catalog(hats_rows(), root, catalog_name="gaia_dr3_epoch_phot",
                               ra_column="ra", dec_column="dec", order=3)
    return root, paths


def _check_bulk(lc):
    ds = lc.ds
    assert sorted(set(lc.objectids_with_data)) == [11, 12]
    assert lc.report.dropped["gaia"] == {"rejected_by_photometry": 3,
                                         "rejected_by_variability": 3}
    obj = np.asarray(ds["objectid"].values)[ds["obs_object"].values]
    band_of = np.asarray(ds["band"].values)[ds["obs_band"].values]
    sel = (obj == 12) & (band_of == "gaia:BP")
    rows = TRANSITS[SOURCES[3][0]]
    rows = rows[(np.asarray(rows["band"]) == "BP") & ~np.asarray(rows["rejected_by_photometry"])]
    np.testing.assert_allclose(np.sort(ds["flux"].values[sel]), mjy(rows["flux"], "BP"))
    np.testing.assert_allclose(np.sort(ds["time"].values[sel]), mjd_tdb(rows["time"]),
                               atol=1e-9)


def test_bulk_local_hats_opens_each_touched_partition_once(hats_catalog, monkeypatch):
    import hpgeom

    from multilc.catalogs import read_log

    root, paths = hats_catalog
    monkeypatch.setenv("MULTILC_GAIA_HATS_CATALOG", str(root))
    read_log.clear()
    lc = collect(targets(), archives=["gaia"], options={"gaia": {"route": "bulk"}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    _check_bulk(lc)
    # partitions the 1" cones touch, computed with hpgeom, among those written
    touched = set()
    for r, d in zip(targets()["ra"], targets()["dec"]):
        for p in hpgeom.query_circle(hpgeom.order_to_nside(3), r, d, 1 / 3600, nest=True,
                                     inclusive=True):
            if (3, int(p)) in paths:
                touched.add((3, int(p)))
    opens = read_log.partition_opens()
    assert {(o, p) for (_, o, p) in opens} == touched
    assert set(opens.values()) == {1}
    assert len(paths) > len(touched)   # some partitions were never opened


def test_bulk_through_s3(hats_catalog, monkeypatch):
    from multilc.testing.catalogs import moto_s3

    root, _ = hats_catalog
    with moto_s3([(root, "hats/gaia_dr3_epoch_phot")], bucket="gaia-test") as endpoint:
        monkeypatch.setenv("MULTILC_GAIA_HATS_CATALOG", "s3://gaia-test/hats/gaia_dr3_epoch_phot")
        monkeypatch.setenv("MULTILC_GAIA_S3_ENDPOINT_URL", endpoint)
        lc = collect(targets(), archives=["gaia"], options={"gaia": {"route": "bulk"}},
                     **FAST)
    assert lc.report.ok, lc.report.summary()
    _check_bulk(lc)


def test_bulk_over_https_like_data_lsdb_io(hats_catalog, replay_server, monkeypatch):
    """The default catalog is served over HTTP(S): serve the local one so."""
    root, _ = hats_catalog

    def files(request):
        path = root / request.path_params["rest"]
        if not path.is_file():
            return (404, {}, "not found")
        return (200, {"Content-Type": "application/octet-stream"}, path.read_bytes())

    replay_server.route("/hats/<path:rest>", handler=files, method=None)
    monkeypatch.setenv("MULTILC_GAIA_HATS_CATALOG", replay_server.url_for("/hats"))
    lc = collect(targets(), archives=["gaia"], options={"gaia": {"route": "bulk"}}, **FAST)
    assert lc.report.ok, lc.report.summary()
    _check_bulk(lc)
    leaves = {r.path for r in replay_server.requests if "/Npix=" in r.path}
    assert len(leaves) == 2          # the two partitions holding targets 11 and 12


# --------------------------------------------------------------------------- live
KNOWN_SOURCE = 5813181197970338560   # the source of pyvo's real epoch-photometry file


def _live_position():
    """Position of KNOWN_SOURCE, asked from the live archive (not typed here)."""
    import pyvo

    tap = pyvo.dal.TAPService(gaia.conf.tap_url)
    row = tap.run_sync(f"SELECT ra, dec FROM gaiadr3.gaia_source "
                       f"WHERE source_id = {KNOWN_SOURCE}").to_table()[0]
    return Table({"objectid": [1], "ra": [float(row["ra"])], "dec": [float(row["dec"])]})


@pytest.mark.remote_data
@pytest.mark.parametrize("route", ["service", "bulk"])
def test_live_routes(route):
    lc = collect(_live_position(), archives=["gaia"], options={"gaia": {"route": route}},
                 progress=False, cache=False)
    assert lc.report.ok, lc.report.summary()
    assert KNOWN_SOURCE in set(lc.ds["source_id"].values)
    # the three real transits of pyvo's file are among them (time converted)
    expected = Time(2455197.5, 1705.9437360200984, format="jd", scale="tcb").tdb.mjd
    assert np.min(np.abs(lc.ds["time"].values - expected)) < 1e-6
