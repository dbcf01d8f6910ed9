"""Tests for multilc.photometry.

Expected values are computed here from the defining formulas and the
published constants (typed in as literals), never from the module itself.
"""

import math

import numpy as np
import pytest
from astropy import constants
from astropy import units as u
from astropy.table import QTable
from numpy.testing import assert_allclose

from multilc import photometry as ph
from multilc.timescales import TIME_SYSTEMS

# Oke & Gunn (1983): m_AB = -2.5 log10(f_nu [erg s-1 cm-2 Hz-1]) - 48.60.
AB0_JY = 10 ** (-48.60 / 2.5) / 1e-23
POGSON = 0.4 * math.log(10)

# One real Gaia DR3 G-band epoch (pyvo mivot test file, source 5813181197970338560).
GAIA_FLUX_E_S = 15442.456273273616
GAIA_MAG = 15.216574774452164


# --- AB magnitudes --------------------------------------------------------


def test_ab_zero_point_is_3631_jy():
    assert_allclose(ph.AB_ZERO_POINT.to_value(u.Jy), 3631, rtol=1e-4)
    assert_allclose(ph.ab_zero_point.to_value(u.Jy), AB0_JY, rtol=1e-12)


def test_mag_to_flux_ab_reference_values():
    flux, err = ph.mag_to_flux([0.0, 23.9, 16.4], "ztf:g")
    assert err is None
    assert flux.unit == u.mJy
    expected_mjy = AB0_JY * 1e3 * 10 ** (-0.4 * np.array([0.0, 23.9, 16.4]))
    assert_allclose(flux.value, expected_mjy, rtol=1e-12)
    # 23.9 AB is 1 microJy, 16.4 AB is 1 mJy.
    assert_allclose(flux[1].to_value(u.uJy), 1.0, rtol=1e-9)
    assert_allclose(flux[2].to_value(u.mJy), 1.0, rtol=1e-9)


def test_mag_to_flux_generic_system_and_zero_point():
    by_system, _ = ph.mag_to_flux(np.array([18.0]), system="AB")
    assert_allclose(by_system.to_value(u.mJy), AB0_JY * 1e3 * 10 ** (-7.2), rtol=1e-12)
    vega, _ = ph.mag_to_flux([1.0], zero_point=1000 * u.Jy)
    assert_allclose(vega.to_value(u.Jy), 1000 * 10**-0.4, rtol=1e-12)
    with pytest.raises(ValueError, match="zero_point"):
        ph.mag_to_flux([1.0], system="Vega")
    with pytest.raises(ValueError, match="band"):
        ph.mag_to_flux([1.0])


def test_mag_to_flux_accepts_abmag_quantity():
    flux, _ = ph.mag_to_flux(20 * u.ABmag)
    assert_allclose(flux.to_value(u.mJy), AB0_JY * 1e3 * 10**-8, rtol=1e-9)
    with pytest.raises(u.UnitsError, match="wise:W1"):
        ph.mag_to_flux(20 * u.ABmag, "wise:W1")


def test_mag_error_propagation():
    mags = np.array([15.0, 20.0])
    errs = np.array([0.01, 0.2])
    flux, flux_err = ph.mag_to_flux(mags, "panstarrs:r", errs)
    assert_allclose(flux_err.value, POGSON * flux.value * errs, rtol=1e-12)
    mag_back, mag_err = ph.flux_to_mag(flux, "panstarrs:r", flux_err)
    assert_allclose(mag_back.to_value(u.mag), mags, rtol=0, atol=1e-10)
    assert_allclose(mag_err.to_value(u.mag), errs, rtol=1e-10)


def test_nan_magnitude_gives_nan_flux():
    flux, err = ph.mag_to_flux([np.nan, 17.0, 18.0], "ztf:r", [0.1, np.nan, 0.1])
    assert flux.shape == (3,)  # nothing dropped
    assert np.isnan(flux[0]) and np.all(np.isfinite(flux[1:]))
    assert np.isnan(err[0]) and np.isnan(err[1]) and np.isfinite(err[2])


def test_flux_to_mag_values_and_non_positive_flux():
    mag, mag_err = ph.flux_to_mag(
        [1.0, 0.0, -3.0, np.nan] * u.mJy, "ztf:i", [0.1, 0.1, 0.1, 0.1] * u.mJy
    )
    assert mag.unit == u.mag
    assert mag.shape == (4,)  # nothing dropped
    assert_allclose(mag[0].value, -2.5 * np.log10(1e-3 / AB0_JY), rtol=1e-12)
    assert_allclose(mag[0].value, 16.4, atol=1e-6)
    assert np.all(np.isnan(mag[1:]))
    assert_allclose(mag_err[0].value, 2.5 / math.log(10) * 0.1, rtol=1e-12)
    assert np.all(np.isnan(mag_err[1:]))


def test_flux_to_mag_accepts_other_flux_density_units():
    band = ph.get_band("ztf:r")
    mag_jy, _ = ph.flux_to_mag(3631 * u.Jy, band)
    assert abs(mag_jy.value) < 1e-3
    # f_lambda at the band wavelength: f_nu = f_lambda * lambda**2 / c.
    f_lambda = 1e-16 * u.erg / u.s / u.cm**2 / u.AA
    lam_cm = band.wavelength.to_value(u.cm)
    f_nu_cgs = 1e-16 * 1e8 * lam_cm**2 / constants.c.cgs.value
    expected = -2.5 * np.log10(f_nu_cgs) - 48.60
    mag, _ = ph.flux_to_mag(f_lambda, band)
    assert_allclose(mag.value, expected, atol=1e-9)


def test_flux_to_mag_rejects_plain_numbers_and_bad_units():
    with pytest.raises(TypeError, match="Quantity"):
        ph.flux_to_mag(np.array([1.0]), "ztf:g")
    with pytest.raises(u.UnitsError, match="ztf:g"):
        ph.flux_to_mag([1.0] * u.m, "ztf:g")


@pytest.mark.parametrize("name", ["tess:TESS", "kepler:Kepler", "k2:K2"])
def test_instrumental_bands_refuse_conversion(name):
    band = ph.get_band(name)
    assert band.system == "instrumental"
    assert band.zero_point is None
    assert band.flux_unit == u.electron / u.s
    with pytest.raises(u.UnitsError, match=name):
        ph.flux_to_mag([100.0] * u.electron / u.s, name)
    with pytest.raises(u.UnitsError, match=name):
        ph.mag_to_flux([10.0], name)
    with pytest.raises(u.UnitsError, match=name):
        ph.convert_flux([1.0] * u.mJy, name, u.Jy)


# --- Gaia -----------------------------------------------------------------


def test_gaia_vega_zero_point_matches_real_epoch_row():
    zp_real = GAIA_MAG + 2.5 * np.log10(GAIA_FLUX_E_S)
    assert abs(zp_real - ph.GAIA_VEGA_ZERO_POINTS["G"]) < 0.002
    # Riello et al. 2021, Table 3.
    assert ph.GAIA_VEGA_ZERO_POINTS == {"G": 25.6874, "BP": 25.3385, "RP": 24.7479}
    assert ph.GAIA_AB_ZERO_POINTS == {"G": 25.8010, "BP": 25.3540, "RP": 25.1040}


def test_gaia_electrons_to_flux():
    flux, err = ph.gaia_electrons_to_flux(GAIA_FLUX_E_S / u.s, "gaia:G", 44.151258712309364 / u.s)
    expected_mjy = AB0_JY * 1e3 * 10 ** (-0.4 * 25.8010) * GAIA_FLUX_E_S
    assert_allclose(flux.to_value(u.mJy), expected_mjy, rtol=1e-12)
    assert_allclose(
        err.to_value(u.mJy), expected_mjy * 44.151258712309364 / GAIA_FLUX_E_S, rtol=1e-12
    )
    # Back to a Vega magnitude with the registered band: the archive's own mag.
    mag, _ = ph.flux_to_mag(flux, "gaia:G")
    assert abs(mag.value - GAIA_MAG) < 0.002
    # Fornax's bug: treating the Vega mag as AB is ~0.11 mag off.
    fornax_mjy = 10 ** (-0.4 * (GAIA_MAG - 23.9)) / 1e3
    assert abs(2.5 * np.log10(fornax_mjy / flux.to_value(u.mJy))) > 0.1


def test_gaia_electrons_plain_numbers_and_wrong_band():
    flux, _ = ph.gaia_electrons_to_flux([1.0, -2.0], "gaia:RP")
    per = AB0_JY * 1e3 * 10 ** (-0.4 * 25.1040)
    assert_allclose(flux.to_value(u.mJy), [per, -2 * per], rtol=1e-12)
    with pytest.raises(ValueError, match="ztf:g"):
        ph.gaia_electrons_to_flux([1.0], "ztf:g")


# --- WISE -----------------------------------------------------------------


def test_wise_nanomaggies_ab_offset_default():
    flux, err = ph.nanomaggies_to_flux([1.0, -2.0, 0.0], "wise:W1", [0.5, 0.5, 0.5])
    one_nmgy = AB0_JY * 1e3 * 10 ** (-0.4 * (22.5 + 2.699))
    assert_allclose(one_nmgy, 3.0227e-4, rtol=1e-4)
    assert_allclose(flux.to_value(u.mJy), [one_nmgy, -2 * one_nmgy, 0.0], rtol=1e-12)
    assert_allclose(err.to_value(u.mJy), 0.5 * one_nmgy, rtol=1e-12)
    w2, _ = ph.nanomaggies_to_flux([1.0], "wise:W2")
    assert_allclose(w2.to_value(u.mJy), AB0_JY * 1e3 * 10 ** (-0.4 * (22.5 + 3.339)), rtol=1e-12)


def test_wise_nanomaggies_isophotal_choice():
    flux, _ = ph.nanomaggies_to_flux([1.0], "wise:W1", wise_zero_point="isophotal")
    expected = 309.540e3 * 10 ** (-0.4 * 22.5)
    assert_allclose(flux.to_value(u.mJy), expected, rtol=1e-12)
    assert_allclose(expected, 3.0954e-4, rtol=1e-4)
    default, _ = ph.nanomaggies_to_flux([1.0], "wise:W1")
    assert 0.02 < flux.value[0] / default.value[0] - 1 < 0.03  # the documented 2.4 %
    w2, _ = ph.nanomaggies_to_flux([1.0], "wise:W2", wise_zero_point="isophotal")
    assert_allclose(w2.to_value(u.mJy), 171.787e3 * 1e-9, rtol=1e-12)


def test_wise_zero_point_choice_validated():
    with pytest.raises(ValueError, match="wise_zero_point"):
        ph.nanomaggies_to_flux([1.0], "wise:W1", wise_zero_point="vega")
    with pytest.raises(ValueError, match="WISE"):
        ph.nanomaggies_to_flux([1.0], "ztf:g", wise_zero_point="isophotal")


def test_wise_mag_to_flux_consistent_with_nanomaggies():
    # m_Vega = 22.5 - 2.5 log10(f_nmgy): 10 nmgy is m = 20.
    from_mag, _ = ph.mag_to_flux([20.0], "wise:W2")
    from_nmgy, _ = ph.nanomaggies_to_flux([10.0], "wise:W2")
    assert_allclose(from_mag.value, from_nmgy.value, rtol=1e-12)


# --- Pan-STARRS and generic ----------------------------------------------


def test_jansky_to_flux():
    flux, err = ph.jansky_to_flux([1.0, 2.5e-6], [1e-6, 1e-7])
    assert flux.unit == u.mJy
    assert_allclose(flux.value, [1000.0, 2.5e-3])
    assert_allclose(err.value, [1e-3, 1e-4])
    cgs, none = ph.jansky_to_flux(1e-26 * u.erg / u.s / u.cm**2 / u.Hz)
    assert none is None
    assert_allclose(cgs.to_value(u.mJy), 1e-3 * 1e3)
    with pytest.raises(u.UnitsError):
        ph.jansky_to_flux([1.0] * u.m)


def test_convert_flux_per_wavelength():
    band = ph.get_band("panstarrs:i")
    out = ph.convert_flux([1.0] * u.mJy, band, u.erg / u.s / u.cm**2 / u.AA)
    lam_aa = band.wavelength.to_value(u.AA)
    expected = 1e-26 * (constants.c.to_value(u.AA / u.s)) / lam_aa**2
    assert_allclose(out.value, expected, rtol=1e-10)
    with pytest.raises(u.UnitsError, match="panstarrs:i"):
        ph.convert_flux([1.0] * u.mJy, band, u.s)
    with pytest.raises(TypeError):
        ph.convert_flux([1.0], band, u.Jy)


# --- registry -------------------------------------------------------------


EXPECTED_BANDS = {
    "ztf:g": "AB",
    "ztf:r": "AB",
    "ztf:i": "AB",
    "panstarrs:g": "AB",
    "panstarrs:r": "AB",
    "panstarrs:i": "AB",
    "panstarrs:z": "AB",
    "panstarrs:y": "AB",
    "gaia:G": "Vega",
    "gaia:BP": "Vega",
    "gaia:RP": "Vega",
    "wise:W1": "Vega",
    "wise:W2": "Vega",
    "tess:TESS": "instrumental",
    "kepler:Kepler": "instrumental",
    "k2:K2": "instrumental",
    "hst:ACS_F814W": "AB",
    "hst:WFC3_F475W": "AB",
    "hst:WFPC2_F606W": "AB",
}


@pytest.mark.parametrize("name,system", sorted(EXPECTED_BANDS.items()))
def test_registered_bands(name, system):
    band = ph.get_band(name)
    assert band.name == name
    assert band.system == system
    assert band.citation
    assert band.native_time in TIME_SYSTEMS
    if system == "instrumental":
        assert band.flux_unit == u.electron / u.s
    else:
        assert band.flux_unit == u.mJy
        assert band.zero_point.unit == u.Jy


def test_every_band_has_citation_and_known_time_system():
    for band in ph.BANDS.values():
        assert band.citation.strip()
        assert band.native_time in TIME_SYSTEMS, band.name


def test_vega_zero_points_from_published_numbers():
    gaia_g = ph.get_band("gaia:G").zero_point.to_value(u.Jy)
    assert_allclose(gaia_g, AB0_JY * 10 ** (-0.4 * (25.8010 - 25.6874)), rtol=1e-12)
    w1 = ph.get_band("wise:W1").zero_point.to_value(u.Jy)
    assert_allclose(w1, AB0_JY * 10 ** (-0.4 * 2.699), rtol=1e-12)


def test_unknown_band_error():
    with pytest.raises(ph.UnknownBandError) as info:
        ph.get_band("ztf_g")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, ValueError)
    message = str(err)
    assert "ztf_g" in message
    assert "ztf:g" in message  # close match suggested
    assert not message.startswith("'")  # not KeyError's quoted repr
    with pytest.raises(KeyError, match="GAIA:g|gaia:G"):
        ph.get_band("GAIA:g")


def test_unknown_band_without_close_match_lists_archives():
    with pytest.raises(ph.UnknownBandError, match="known archives: .*gaia"):
        ph.get_band("zzzzzzzzzzzz")


def test_hst_band_synthesis():
    known = ph.get_band("hst:ACS_F814W")
    assert known.system == "AB"
    assert_allclose(known.zero_point.to_value(u.Jy), AB0_JY, rtol=1e-12)
    assert 7900 < known.wavelength.to_value(u.AA) < 8200

    # Not in the pivot table: synthesised, wavelength from the filter number.
    synth = ph.get_band("hst:ACS_F502N")
    assert synth.name == "hst:ACS_F502N"
    assert synth.system == "AB"
    assert_allclose(synth.wavelength.to_value(u.AA), 5020.0)
    assert "APPROXIMATED" in synth.citation
    assert "hst:ACS_F502N" not in ph.BANDS  # synthesis does not grow the registry

    # WFC3/IR filter numbers are in units of 10 nm.
    assert_allclose(ph.get_band("hst:WFC3_F153M").wavelength.to_value(u.AA), 15300.0)
    # Case-insensitive, normalised to upper case.
    assert ph.get_band("hst:wfc3_f475w").name == "hst:WFC3_F475W"
    # AB magnitudes convert with 3631 Jy (not ACS VEGAmag zero points).
    flux, _ = ph.mag_to_flux([21.0], "hst:WFPC2_F606W")
    assert_allclose(flux.to_value(u.mJy), AB0_JY * 1e3 * 10 ** (-8.4), rtol=1e-12)


@pytest.mark.parametrize("bad", ["hst:NICMOS_F110W", "hst:ACS_814W", "hst:ACS-F814W", "hst:"])
def test_malformed_hst_names(bad):
    with pytest.raises(ph.UnknownBandError):
        ph.get_band(bad)


def test_register_band(monkeypatch):
    monkeypatch.setattr(ph, "BANDS", dict(ph.BANDS))
    band = ph.Band(
        "test:x", "test", "x", "AB", 3631 * u.Jy, 5000 * u.AA, u.mJy, "mjd_tdb_bary", "a test"
    )
    ph.register_band(band)
    assert ph.get_band("test:x") is band
    with pytest.raises(ValueError, match="already registered"):
        ph.register_band(band)
    other = ph.Band(
        "test:x", "test", "x", "Vega", 1000 * u.Jy, None, u.mJy, "mjd_tdb_bary", "another"
    )
    ph.register_band(other, overwrite=True)
    assert ph.get_band("test:x").system == "Vega"
    with pytest.raises(TypeError):
        ph.register_band("test:y")


def test_band_validation():
    with pytest.raises(ValueError, match="archive"):
        ph.Band("a:b", "a", "c", "AB", 3631 * u.Jy, None, u.mJy, "mjd_tdb_bary", "x")
    with pytest.raises(ValueError, match="zero point"):
        ph.Band(
            "a:b", "a", "b", "instrumental", 1 * u.Jy, None, u.electron / u.s, "mjd_tdb_bary", "x"
        )
    with pytest.raises(u.UnitsError):
        ph.Band("a:b", "a", "b", "AB", 3631 * u.m, None, u.mJy, "mjd_tdb_bary", "x")
    with pytest.raises(ValueError, match="system"):
        ph.Band("a:b", "a", "b", "ST", 3631 * u.Jy, None, u.mJy, "mjd_tdb_bary", "x")


# --- tables for the docs --------------------------------------------------


def test_band_table():
    table = ph.band_table()
    assert isinstance(table, QTable)
    assert len(table) == len(ph.BANDS)
    assert set(table.colnames) >= {
        "name",
        "system",
        "zero_point",
        "wavelength",
        "citation",
        "native_time",
    }
    row = table[list(table["name"]).index("tess:TESS")]
    assert np.isnan(row["zero_point"].value)
    row = table[list(table["name"]).index("ztf:g")]
    assert_allclose(row["zero_point"].to_value(u.Jy), AB0_JY)


def test_band_table_rst_is_valid_list_table():
    docutils_core = pytest.importorskip("docutils.core")
    from docutils import nodes

    text = ph.band_table_rst()
    assert text.startswith(".. list-table:: ")
    doctree = docutils_core.publish_doctree(
        text, settings_overrides={"report_level": 5, "halt_level": 5, "warning_stream": False}
    )
    messages = list(doctree.findall(nodes.system_message))
    assert messages == [], [m.astext() for m in messages]
    tables = list(doctree.findall(nodes.table))
    assert len(tables) == 1
    assert tables[0].next_node(nodes.title).astext() == "Registered photometric bands"
    rows = list(tables[0].findall(nodes.row))
    assert len(rows) == len(ph.BANDS) + 1
    body = tables[0].astext()
    assert "Riello" in body and "wise:W1" in body
