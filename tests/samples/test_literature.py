"""Literature samples fetched by the real astroquery code from local stand-in services.

NED, VizieR and SIMBAD are played by a werkzeug server on 127.0.0.1
(``pytest_httpserver``) answering in their real VOTable layouts (see ``standins.py``),
with rows built from the reference target lists in ``shared/samples``.
"""
import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from werkzeug import Response

from multilc.samples import (
    Sample,
    SampleError,
    as_sample,
    get_sample,
    list_samples,
    merge_samples,
    refresh_sample,
)
from multilc.samples.literature import SampleFetchError, literature_sample

from . import standins

pytest.importorskip("astroquery")
pytest.importorskip("pytest_httpserver")

# Sheng+20: the 7 NED positions seen for the paper, in RA order (shared/samples/SOURCES.md,
# "sheng_20.csv"); the Fornax rule keeps rows 0, 1 and 3.
SHENG_NED_POSITIONS = [
    (193.24467, 59.30910), (196.82077, 45.11259), (199.40802, 10.40775),
    (217.19465, 17.39810), (237.47337, 11.36345), (246.96747, 54.32018),
    (258.47436, 27.60753),
]
YANG_DUPLICATE_OFFSET = 0.55  # arcsec; NED lists J0159+0033 twice, 0.55 arcsec apart

# Positions for decoy rows that a selection rule must drop (arbitrary sky positions).
DECOYS = [(150.0, 10.0), (200.0, 20.0), (250.0, -30.0)]


def _arcsec_between(ra1, dec1, ra2, dec2):
    """Great-circle separation in arcsec (haversine), independent of astropy."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(math.sqrt(h))) * 3600


def _assert_matches_reference(sample, reference, tol_arcsec=0.01):
    """Every reference row has exactly one sample object within tol, and vice versa."""
    assert len(sample) == len(reference)
    ras, decs = sample.coord.ra.deg, sample.coord.dec.deg
    for row in reference:
        seps = [_arcsec_between(row["ra_deg"], row["dec_deg"], r, d) for r, d in zip(ras, decs)]
        assert sum(s < tol_arcsec for s in seps) == 1, row["name"]


class StandIn:
    """Serve NED, VizieR and SIMBAD answers from reference lists."""

    def __init__(self, httpserver, shared_dir):
        self.server = httpserver
        self.shared = shared_dir / "samples"
        self.ned = {}  # refcode -> list of (name, ra, dec, z)
        self.vizier = {}  # catalog -> xml
        self.simbad = {}  # bibcode -> list of (name, ra, dec)
        self.fail_next = 0  # number of 503 answers to give before serving
        httpserver.expect_request("/cgi-bin/objsearch", method="GET").respond_with_handler(
            self._ned_handler)
        httpserver.expect_request("/viz-bin/votable", method="POST").respond_with_handler(
            self._vizier_handler)
        httpserver.expect_request("/simbad/sim-tap/capabilities").respond_with_handler(
            self._capabilities_handler)
        httpserver.expect_request("/simbad/sim-tap/sync", method="POST").respond_with_handler(
            self._simbad_handler)

    def reference(self, filename):
        return standins.read_reference(self.shared / filename)

    # handlers ---------------------------------------------------------------------------
    def _maybe_fail(self):
        if self.fail_next:
            self.fail_next -= 1
            return Response("service busy", status=503)
        return None

    def _ned_handler(self, request):
        failed = self._maybe_fail()
        if failed:
            return failed
        refcode = request.args.get("refcode")
        objects = self.ned.get(refcode, [])
        return Response(standins.ned_votable(refcode, objects), content_type="text/xml")

    def _vizier_handler(self, request):
        failed = self._maybe_fail()
        if failed:
            return failed
        body = request.get_data(as_text=True)
        source = [line.split("=", 1)[1] for line in body.splitlines()
                  if line.startswith("-source=")][0]
        return Response(self.vizier[source], content_type="application/x-votable+xml")

    def _capabilities_handler(self, request):
        return Response(standins.tap_capabilities(self.server.url_for("/simbad/sim-tap")),
                        content_type="text/xml")

    def _simbad_handler(self, request):
        failed = self._maybe_fail()
        if failed:
            return failed
        query = request.form.get("QUERY", "")
        bibcode = [b for b in self.simbad if f"'{b}'" in query]
        objects = self.simbad[bibcode[0]] if bibcode else []
        return Response(standins.simbad_votable(bibcode[0] if bibcode else "", objects),
                        content_type="application/x-votable+xml")

    # request log ----------------------------------------------------------------------
    def requests(self, path=None):
        return [req for req, _ in self.server.log if path is None or req.path == path]


@pytest.fixture
def services(httpserver, shared_dir, monkeypatch):
    stand_in = StandIn(httpserver, shared_dir)
    base = httpserver.url_for("/").rstrip("/")
    monkeypatch.setenv("MULTILC_NED_URL", base + "/cgi-bin/")
    monkeypatch.setenv("MULTILC_VIZIER_URL", base)
    monkeypatch.setenv("MULTILC_SIMBAD_URL", base)

    def ned_rows(filename):
        return [(r["name"], r["ra_deg"], r["dec_deg"], r["redshift"])
                for r in stand_in.reference(filename)]

    # Yang 18: 30 reference objects; NED lists J0159+0033 a second time 0.55 arcsec north.
    yang = ned_rows("yang_18.csv")
    j0159 = next(i for i, row in enumerate(yang) if "J015957" in row[0])
    name, ra, dec, z = yang[j0159]
    yang.insert(j0159 + 1, ("WISEA J015957.63+003310.3", ra, dec + YANG_DUPLICATE_OFFSET / 3600, z))
    stand_in.ned["2018ApJ...862..109Y"] = yang
    # LaMassa 15: row 0 is the CLQ, further rows must be ignored.
    stand_in.ned["2015ApJ...800..144L"] = ned_rows("lamassa_15.csv") + [
        (f"DECOY {i}", r, d, None) for i, (r, d) in enumerate(DECOYS)]
    stand_in.ned["2016ApJ...826..188R"] = ned_rows("ruan_16.csv")
    stand_in.ned["2022ApJ...927..227L"] = ned_rows("lyu_22.csv")
    stand_in.ned["2022MNRAS.511...54H"] = ned_rows("hon_22.csv")
    stand_in.ned["2020ApJ...889...46S"] = [
        (f"SHENG ROW {i}", r, d, None) for i, (r, d) in enumerate(SHENG_NED_POSITIONS)]

    # MacLeod 19: the 17 CLQs (CLQ?=1, Nsigma=5) plus rows failing either condition.
    macleod19 = stand_in.reference("macleod_19.csv")
    rows = [[r["name"].removeprefix("SDSS "), r["redshift"], 1, 5.0, f"{r['ra_deg']:.6f}",
             f"{r['dec_deg']:.6f}"] for r in macleod19]
    rows.insert(3, ["J100000.00+100000.0", 0.3, 0, 5.0, "150.000000", "10.000000"])
    rows.insert(7, ["J133320.00+200000.0", 0.4, 1, 2.5, "200.000000", "20.000000"])
    rows.append(["J164000.00-300000.0", 0.5, 1, None, "250.000000", "-30.000000"])
    stand_in.vizier["J/ApJ/874/8"] = standins.vizier_votable(
        "J/ApJ/874/8", "table1",
        [{"name": "SDSS", "ucd": "meta.id;meta.main", "datatype": "char", "arraysize": "19"},
         {"name": "z", "ucd": "src.redshift", "datatype": "double", "width": "6", "precision": "4"},
         {"name": "CLQ?", "ucd": "meta.code", "datatype": "short", "width": "2"},
         {"name": "Nsigma", "ucd": "stat.value", "datatype": "float", "width": "5",
          "precision": "1"},
         standins.RA_FIELD, standins.DE_FIELD],
        rows)

    # Green 22: 17 CLQs (Notes mention CLQ) plus non-CLQ rows. _RAJ2000/_DEJ2000 are set
    # 0.3 arcsec off the designation, so the test can tell which one was used.
    green = stand_in.reference("green_22.csv")
    rows = [[r["name"].removeprefix("SDSS "), "CLQ, turn-off" if i % 2 else "CLQ",
             f"{r['ra_deg']:.6f}", f"{r['dec_deg'] + 0.3 / 3600:.6f}"] for i, r in enumerate(green)]
    rows.insert(2, ["J100000.00+100000.00", "EVQ", "150.000000", "10.000000"])
    rows.append(["J133320.00+200000.00", "", "200.000000", "20.000000"])
    stand_in.vizier["J/ApJ/933/180"] = standins.vizier_votable(
        "J/ApJ/933/180", "table2",
        [{"name": "SDSS", "ucd": "meta.id;meta.main", "datatype": "char", "arraysize": "20"},
         {"name": "Notes", "ucd": "meta.note", "datatype": "char", "arraysize": "*"},
         standins.RA_FIELD, standins.DE_FIELD],
        rows)

    # Lopez-Navas 22: rows 0-3 are the CL AGN; SIMBAD also lists other objects.
    stand_in.simbad["2022MNRAS.513L..57L"] = [
        (r["name"], r["ra_deg"], r["dec_deg"]) for r in stand_in.reference("lopez_navas_22.csv")
    ] + [(f"DECOY {i}", r, d) for i, (r, d) in enumerate(DECOYS)]
    return stand_in


# --------------------------------------------------------------------------------------


def test_yang_default_sample_counts_bibcode_and_request(services):
    sample = get_sample(retry_wait=0)  # yang2018 is the default
    assert len(sample) == 30
    assert sample.meta["service_rows"] == 31
    assert sample.meta["bibcode"] == "2018ApJ...862..109Y"
    assert set(sample.label) == {"Yang 18"}
    assert sample.objectid.tolist() == list(range(1, 31))
    _assert_matches_reference(sample, services.reference("yang_18.csv"))
    # The duplicate was merged into the first NED row (position of first appearance).
    j0159 = sample[np.flatnonzero(np.char.find(sample["name"].astype(str), "J015957") >= 0)]
    assert len(j0159) == 1
    assert abs(j0159.coord.dec.deg[0] - 0.553010) < 1e-9
    # What the stand-in was asked.
    (request,) = services.requests("/cgi-bin/objsearch")
    assert request.args["refcode"] == "2018ApJ...862..109Y"
    assert request.args["search_type"] == "Search"
    assert request.args["of"] == "xml_main"


@pytest.mark.parametrize(
    ("name", "filename", "refcode", "label"),
    [
        ("lamassa2015", "lamassa_15.csv", "2015ApJ...800..144L", "LaMassa 15"),
        ("ruan2016", "ruan_16.csv", "2016ApJ...826..188R", "Ruan 16"),
        ("lyu2022", "lyu_22.csv", "2022ApJ...927..227L", "Lyu 22"),
        ("hon2022", "hon_22.csv", "2022MNRAS.511...54H", "Hon 22"),
    ],
)
def test_ned_samples_match_reference_lists(services, name, filename, refcode, label):
    sample = get_sample(name, retry_wait=0)
    reference = services.reference(filename)
    _assert_matches_reference(sample, reference)
    assert set(sample.label) == {label}
    assert sample.meta["bibcode"] == reference[0]["bibcode"] == refcode
    assert [r.args["refcode"] for r in services.requests("/cgi-bin/objsearch")] == [refcode]


def test_sheng_keeps_ned_rows_0_1_3(services, shared_dir):
    sample = get_sample("sheng2020", retry_wait=0)
    assert sample.meta["service_rows"] == 7
    assert sample["service_row"].tolist() == [0, 1, 3]
    _assert_matches_reference(sample, services.reference("sheng_20.csv"))
    assert sorted(sample["name"]) == ["SHENG ROW 0", "SHENG ROW 1", "SHENG ROW 3"]


def test_macleod2019_vizier_clq_and_nsigma_rule(services):
    sample = get_sample("macleod2019", retry_wait=0)
    assert sample.meta["service_rows"] == 20
    assert len(sample) == 17
    _assert_matches_reference(sample, services.reference("macleod_19.csv"))
    assert set(sample.label) == {"MacLeod 19"}
    (request,) = services.requests("/viz-bin/votable")
    script = request.get_data(as_text=True).splitlines()
    assert "-source=J/ApJ/874/8" in script
    assert "-out.max=unlimited" in script  # no silent 50-row VizieR default


def test_green2022_notes_rule_and_positions_from_designation(services):
    sample = get_sample("green2022", retry_wait=0)
    assert len(sample) == 17
    # Positions are the designations' (reference list), not the 0.3" offset _RAJ2000/_DEJ2000.
    _assert_matches_reference(sample, services.reference("green_22.csv"), tol_arcsec=0.01)
    assert all(name.startswith("SDSS J") for name in sample["name"])
    (request,) = services.requests("/viz-bin/votable")
    assert "-source=J/ApJ/933/180" in request.get_data(as_text=True)


def test_lopez_navas_simbad_rows_0_to_3(services):
    sample = get_sample("lopez_navas2022", retry_wait=0)
    assert len(sample) == 4
    _assert_matches_reference(sample, services.reference("lopez_navas_22.csv"))
    assert set(sample.label) == {"Lopez-Navas 22"}
    assert len(services.requests("/simbad/sim-tap/capabilities")) >= 1
    (request,) = services.requests("/simbad/sim-tap/sync")
    assert "bibcode = '2022MNRAS.513L..57L'" in request.form["QUERY"]
    assert request.form["LANG"] == "ADQL"


def test_macleod2016_from_designations_without_network(services):
    sample = get_sample("macleod2016")
    assert len(services.requests()) == 0
    reference = services.reference("macleod_16.csv")
    _assert_matches_reference(sample, reference, tol_arcsec=0.01)
    assert sample.meta["bibcode"] == "2016MNRAS.457..389M"
    # Redshifts as listed (independent spot check: J102152.34+464515.6 at z = 0.204).
    row = list(sample["name"]).index("SDSS J102152.34+464515.6")
    assert sample["redshift"][row] == pytest.approx(0.204)


def test_second_call_uses_cache(services, _isolated_cache):
    first = get_sample("yang2018", retry_wait=0)
    n_requests = len(services.requests())
    cached_file = _isolated_cache / "samples" / "yang2018.ecsv"
    assert cached_file.is_file()
    second = get_sample("yang2018")
    assert len(services.requests()) == n_requests == 1
    assert second == first
    assert second.meta["bibcode"] == "2018ApJ...862..109Y"
    services.server.clear_all_handlers()  # service gone: the cache must be enough
    assert len(get_sample("yang2018")) == 30
    assert len(services.requests()) == n_requests


def test_cache_dir_argument(services, tmp_path):
    get_sample("ruan2016", cache_dir=tmp_path, retry_wait=0)
    assert (tmp_path / "ruan2016.ecsv").is_file()
    table = list_samples(cache_dir=tmp_path)
    row = table[list(table["name"]).index("ruan2016")]
    assert bool(row["cached"]) and row["n_cached"] == 3


def test_list_samples(services):
    table = list_samples()
    assert len(table) == 10
    assert not table["cached"].any()
    get_sample("hon2022", retry_wait=0)
    table = list_samples()
    assert table["cached"].tolist().count(True) == 1
    row = table[list(table["name"]).index("yang2018")]
    assert (row["label"], row["bibcode"], row["service"]) == (
        "Yang 18", "2018ApJ...862..109Y", "ned")
    expected_labels = {"Yang 18", "LaMassa 15", "MacLeod 16", "Ruan 16", "MacLeod 19",
                       "Sheng 20", "Green 22", "Lyu 22", "Lopez-Navas 22", "Hon 22"}
    assert set(table["label"]) == expected_labels


def test_refresh_reports_differences(services):
    get_sample("ruan2016", retry_wait=0)
    ruan = services.ned["2016ApJ...826..188R"]
    moved = (ruan[1][0], ruan[1][1], ruan[1][2] + 0.5 / 3600, ruan[1][3])
    services.ned["2016ApJ...826..188R"] = [ruan[0], moved, ("NEW OBJECT", 150.0, 10.0, None)]
    sample, diff = refresh_sample("ruan2016", retry_wait=0)
    assert len(sample) == 3
    changes = dict(zip(diff["change"], diff["name"]))
    assert changes == {"moved": ruan[1][0], "added": "NEW OBJECT", "removed": ruan[2][0]}
    shift = diff["shift"][list(diff["change"]).index("moved")]
    assert shift.to_value(u.arcsec) == pytest.approx(0.5, abs=1e-3)
    # The cache now holds the new version.
    assert get_sample("ruan2016") == sample


def test_refresh_without_changes_is_empty(services):
    get_sample("hon2022", retry_wait=0)
    _, diff = refresh_sample("hon2022", retry_wait=0)
    assert len(diff) == 0
    assert len(services.requests("/cgi-bin/objsearch")) == 2


def test_retries_after_server_error(services):
    services.fail_next = 2
    sample = get_sample("hon2022", retries=2, retry_wait=0)
    assert len(sample) == 29
    assert len(services.requests("/cgi-bin/objsearch")) == 3


def test_failure_names_service_and_sample(services, _isolated_cache):
    services.fail_next = 5
    with pytest.raises(SampleFetchError, match=r"NED.*2022MNRAS\.511\.\.\.54H.*hon2022.*2 attempt"):
        get_sample("hon2022", retries=1, retry_wait=0)
    assert not (_isolated_cache / "samples" / "hon2022.ecsv").exists()


def test_empty_answer_is_an_error_and_not_cached(services, _isolated_cache):
    services.ned["2022MNRAS.511...54H"] = []
    with pytest.raises(SampleFetchError, match="no rows"):
        get_sample("hon2022", retry_wait=0)
    assert not (_isolated_cache / "samples" / "hon2022.ecsv").exists()


def test_service_urls_default_to_astroquery_conf_and_env_overrides(monkeypatch):
    from astroquery.vizier import conf as vizier_conf

    from multilc.samples.literature import ned_url, simbad_url, vizier_url

    for name in ("MULTILC_NED_URL", "MULTILC_VIZIER_URL", "MULTILC_SIMBAD_URL"):
        monkeypatch.delenv(name, raising=False)
    assert ned_url() == "https://ned.ipac.caltech.edu/cgi-bin/"
    assert simbad_url() == "https://simbad.cds.unistra.fr"
    # astroquery's conf accepts only the listed mirrors; the choice is read at call time.
    with vizier_conf.set_temp("server", "vizier.cfa.harvard.edu"):
        assert vizier_url() == "https://vizier.cfa.harvard.edu"
    monkeypatch.setenv("MULTILC_NED_URL", "http://127.0.0.1:9/ned")
    assert ned_url() == "http://127.0.0.1:9/ned/"


def test_names_labels_and_aliases():
    assert literature_sample("Yang 18").name == "yang2018"
    assert literature_sample("lopez-navas 22").name == "lopez_navas2022"
    with pytest.raises(SampleError, match="unknown literature sample 'nosuch'.*yang2018"):
        get_sample("nosuch")


def test_as_sample_accepts_literature_names(services):
    sample = as_sample("Yang 18")
    assert isinstance(sample, Sample) and len(sample) == 30


def test_merging_literature_samples_keeps_every_label(services):
    merged, report = merge_samples(
        [get_sample("lamassa2015", retry_wait=0), get_sample("ruan2016", retry_wait=0),
         get_sample("yang2018", retry_wait=0)],
        radius=1 * u.arcsec,
    )
    j0159 = SkyCoord(29.990167 * u.deg, 0.552917 * u.deg)  # LaMassa designation position
    row = int(np.argmin(merged.coord.separation(j0159)))
    assert merged.labels(merged.objectid[row]) == ["LaMassa 15", "Ruan 16", "Yang 18"]
    # Ruan's other two CLQs are also Yang objects: 1 + 3 + 30 objects, 3 + 1 merged away.
    assert len(merged) == 30
    assert len(report) == 4
