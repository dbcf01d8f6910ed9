"""The offline examples of the tutorial and the notebook guide run, as printed.

``docs/make_figures.py`` runs the doctest blocks (``>>>``) of
``docs/guide/tutorial.rst`` and ``docs/guide/from_notebook.rst`` and copies
the figures they draw to the docs.  These tests run it once, then check the
outcome against numbers worked out here by hand or with astropy alone: the
synthetic light curve's cadences, the notebook-repair arithmetic, the figure
sizes, and that no example that needs the network is executed.
"""
import doctest
import importlib.util
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

DOCS = Path(__file__).resolve().parents[1] / "docs"
TUTORIAL = "guide/tutorial.rst"
NOTEBOOK = "guide/from_notebook.rst"

#: Calls that reach a remote service; they may appear only in blocks that are
#: not executed (no ``>>>`` prompt, or ``# doctest: +SKIP``).
NETWORK_CALLS = ("collect(", "get_sample(", "refresh_sample(", "from_name(",
                 "search_lightcurve(", "as_sample(\"yang", "as_sample('yang")


def _load_make_figures():
    name = "_multilc_docs_make_figures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DOCS / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Run both pages once: (runs by page, figure folder, work folder)."""
    make_figures = _load_make_figures()
    figures = tmp_path_factory.mktemp("generated")
    work = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MULTILC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        runs = make_figures.main(figures, workdir=work)
    return {run.page: run for run in runs}, figures, work


def test_every_offline_example_runs(built):
    runs, _, _ = built
    assert {TUTORIAL, NOTEBOOK} <= set(runs)   # and the figure gallery
    for run in runs.values():
        assert run.failed == 0, run.report
    # Guards against prompts being lost: the pages hold this many examples.
    assert runs[TUTORIAL].attempted >= 80
    assert runs[NOTEBOOK].attempted >= 30


def test_network_examples_are_not_executed():
    parser = doctest.DocTestParser()
    for page in (TUTORIAL, NOTEBOOK):
        text = (DOCS / page).read_text(encoding="utf-8")
        for example in parser.get_examples(text):
            skipped = example.options.get(doctest.SKIP, False)
            for call in NETWORK_CALLS:
                assert skipped or call not in example.source, (
                    f"{page} line {example.lineno + 1} runs {call!r}, which needs the "
                    "network; show it in a block without >>> prompts")
    # ... but the tutorial does show the networked workflow.
    tutorial = (DOCS / TUTORIAL).read_text(encoding="utf-8")
    assert 'get_sample("yang2018")' in tutorial
    assert "multilc.collect(" in tutorial
    assert 'archives="all"' in tutorial


def _png_size(path):
    """(width, height) in pixels from the PNG IHDR chunk."""
    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", data[16:24])


def test_figures_in_the_pages_are_the_ones_drawn(built):
    _, figures, _ = built
    text = (DOCS / TUTORIAL).read_text(encoding="utf-8")
    referenced = re.findall(r"\.\. (?:figure|image):: \.\./generated/(\S+)", text)
    assert referenced == ["tutorial_flare.png", "tutorial_quiet.png"]
    # width [inch] * dpi of each example's plot(...) / savefig(...) call
    expected_width = {"tutorial_flare.png": 7.0 * 110, "tutorial_quiet.png": 3.5 * 150}
    for name in referenced:
        width, height = _png_size(figures / name)
        assert width == pytest.approx(expected_width[name], abs=1)
        assert height > width / 3


def _visits(start, stop, step, seasons):
    t = np.arange(start, stop, step, dtype=float)
    return t[(t - start) % 365.25 < 240.0] if seasons else t


def test_synthetic_light_curve_file(built):
    """The parquet file of the tutorial holds the cadences the text describes."""
    _, _, work = built
    table = pq.read_table(work / "tutorial" / "synthetic.parquet")
    df = table.to_pandas()
    assert table.schema.field("flux").metadata[b"unit"] == b"mJy"
    counts = df.groupby(["objectid", "band"], observed=True).size()
    ztf = _visits(58200, 60300, 3, True).size
    assert counts[(1, "ztf:g")] == counts[(2, "ztf:r")] == ztf == 480
    assert counts[(1, "gaia:G")] == np.arange(56880, 57900, 30).size == 34
    assert counts[(2, "wise:W2")] == np.arange(56650, 60300, 182.6).size == 20
    assert counts[(1, "panstarrs:r")] == _visits(55200, 56600, 40, True).size
    assert (2, "tess:TESS") not in counts.index
    tess = df[df["band"] == "tess:TESS"]
    np.testing.assert_allclose(tess["time"], np.arange(58650.0, 58677.0, 0.25), atol=1e-9)
    assert tess["flux"].isna().all()          # e-/s never lands in the mJy column
    # The quiet target's model is 0.04 mJy times the band colour.
    quiet_g = df[(df["objectid"] == 2) & (df["band"] == "ztf:g")]["flux"]
    assert abs(quiet_g.median() - 0.04) < 0.005


def test_tutorial_feature_matrix(built):
    runs, _, _ = built
    ns = runs[TUTORIAL].namespace
    n_bins = int((60500 - 55000) / 250)
    assert ns["features"].shape == (2, 7 * n_bins)
    assert ns["X"].shape == (2, 7 * n_bins)
    # Target 1 flares: its ZTF r median in the peak bin is well above the host.
    peak_bin = 55000.0 + 250.0 * ((58700 - 55000) // 250)
    assert ns["features"].loc[1, ("ztf:r", peak_bin)] > 1.2 * 0.3 * 2


def test_merge_example_separation(built):
    runs, _, _ = built
    ns = runs[TUTORIAL].namespace
    kept = SkyCoord(33.63985 * u.deg, -0.76672 * u.deg)
    mine = SkyCoord(33.63990 * u.deg, -0.76670 * u.deg)
    sep = ns["merged"]["separation"][0]
    assert sep.to_value(u.arcsec) == pytest.approx(kept.separation(mine).arcsec, abs=1e-6)


def test_notebook_repairs(built):
    """The careful loading of a notebook frame undoes each known error."""
    runs, _, _ = built
    fixed = runs[NOTEBOOK].namespace["fixed"]
    # Kepler: the notebook added BTJD's 56999.5 d; BKJD needs 54832.5 d.
    assert fixed.select(band="kepler:Kepler").time.mjd[0] == pytest.approx(57200.0 - 2167.0,
                                                                           abs=1e-9)
    # Gaia: notebook time - 55197.5 + 55197.0 is MJD(TCB), then TCB -> TDB.
    gaia = fixed.select(band="gaia:G")
    expected = Time(57300.0 - 0.5, format="mjd", scale="tcb").tdb.mjd
    assert gaia.time.mjd[0] == pytest.approx(expected, abs=1e-8)
    # ... and Vega G read as AB: DR3 zero points 25.6874 (Vega), 25.8010 (AB).
    assert gaia.flux[0].to_value(u.mJy) == pytest.approx(0.45 * 10 ** (-0.4 * 0.1136),
                                                         rel=1e-9)
    # IceCube "flux" was log10(E / GeV).
    assert fixed.events["energy"][0].to_value(u.GeV) == pytest.approx(10 ** 5.3, rel=1e-12)
    # ZTF hmjd (heliocentric UTC) -> barycentric TDB, checked with astropy's
    # own light-travel times at the geocentre (observatory vs geocentre < 21 ms).
    target = SkyCoord(29.990167 * u.deg, 0.552917 * u.deg)
    geocentre = EarthLocation.from_geocentric(0.0, 0.0, 0.0, unit=u.m)
    t = Time(58300.25, format="mjd", scale="utc", location=geocentre)
    bary = (t.tdb + t.light_travel_time(target, "barycentric")
            - t.light_travel_time(target, "heliocentric")).mjd
    ztf_g = fixed.select(objectid=1, band="ztf:g")
    assert abs(ztf_g.time.mjd[0] - bary) * 86400 < 0.05
