"""Photometric bands and magnitude <-> flux-density conversions.

Every band that multilc stores is described once, here, by a :class:`Band`:
its magnitude system, the flux density of magnitude 0 in that system, a
representative wavelength, the unit its fluxes are stored in and the native
time system of its archive.  All conversions read these numbers from the
registry, so a band name is the only thing an archive reader has to know.

Calibrated fluxes are stored in mJy.  Space-photometry bands of TESS, Kepler
and K2 are *instrumental* (electrons per second, no zero point) and are
stored as such; every conversion refuses them with a
:class:`~astropy.units.UnitsError`.

This module imports nothing from the rest of multilc (see docs/dev/architecture.rst).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from astropy import units as u
from astropy.table import QTable

__all__ = [
    "AB_ZERO_POINT",
    "ab_zero_point",
    "BANDS",
    "Band",
    "UnknownBandError",
    "band_table",
    "band_table_rst",
    "convert_flux",
    "flux_to_mag",
    "gaia_electrons_to_flux",
    "get_band",
    "jansky_to_flux",
    "mag_to_flux",
    "nanomaggies_to_flux",
    "register_band",
    "GAIA_AB_ZERO_POINTS",
    "GAIA_VEGA_ZERO_POINTS",
    "WISE_AB_OFFSETS",
    "WISE_ISOPHOTAL_ZERO_POINTS",
    "HST_PIVOT_WAVELENGTHS",
]

# --------------------------------------------------------------------------
# Constants.  Every number carries its source.
# --------------------------------------------------------------------------

#: Flux density of AB magnitude 0.  Oke & Gunn (1983, ApJ 266, 713) define
#: m_AB = -2.5 log10(f_nu / [erg s-1 cm-2 Hz-1]) - 48.60, i.e. 3630.78 Jy
#: ("3631 Jy" to four digits).  Taken from astropy's ``u.ABmag`` so that our
#: conversions agree exactly with ``(m * u.ABmag).to(u.Jy)``; with this
#: definition AB 23.9 is exactly 1 microJy.
AB_ZERO_POINT = (0 * u.ABmag).to(u.Jy)
#: Alias of ``AB_ZERO_POINT``.
ab_zero_point = AB_ZERO_POINT

#: Unit in which calibrated fluxes are stored.
CALIBRATED_FLUX_UNIT = u.mJy
#: Unit in which instrumental (TESS/Kepler/K2) fluxes are stored.
INSTRUMENTAL_FLUX_UNIT = u.electron / u.s

#: 0.4 ln(10): d(flux)/flux per unit magnitude (Pogson's ratio, 2.5 log10).
_MAG_TO_FRACTIONAL_FLUX = 0.4 * np.log(10.0)

#: Magnitude of 1 nanomaggy: m = 22.5 - 2.5 log10(f / nmgy) (SDSS convention,
#: used by unWISE in the Vega system: Meisner et al. 2023, AJ 165, 36; Lang
#: 2014, AJ 147, 108).
NANOMAGGY_MAGNITUDE = 22.5

#: Gaia DR3 (= EDR3) photometric zero points, VEGAMAG and AB, in mag for a
#: flux in e-/s.  Riello et al. 2021, A&A 649, A3, Table 3; also Gaia EDR3
#: documentation sec. 5.3.6 ("Photometric calibration", Table 5.2).  The
#: values were checked against two independent public transcriptions of that
#: table (they agree to 1e-4 mag) and against real DR3 epoch rows
#: (pyvo mivot test file: mag + 2.5 log10(flux) = 25.68837 for G, i.e.
#: within 0.001 mag of 25.6874).
GAIA_VEGA_ZERO_POINTS = {"G": 25.6874, "BP": 25.3385, "RP": 24.7479}
GAIA_AB_ZERO_POINTS = {"G": 25.8010, "BP": 25.3540, "RP": 25.1040}

#: Representative wavelengths lambda_0 of the Gaia EDR3 passbands (nm),
#: Riello et al. 2021, Table 3 (as transcribed in public code; not re-read
#: in the paper itself here).
_GAIA_WAVELENGTH_NM = {"G": 639.07, "BP": 518.26, "RP": 782.51}

#: WISE Vega -> AB offsets, m_AB = m_Vega + dm.  WISE All-Sky Explanatory
#: Supplement sec. IV.4.h.i.3 ("Vega to AB magnitudes"); the same numbers are
#: used by today's Fornax tool (code_src/fluxconversions.py).
WISE_AB_OFFSETS = {"W1": 2.699, "W2": 3.339}

#: WISE isophotal zero-magnitude flux densities F_nu0 (Jy) for an
#: F_nu ~ nu^-2 reference spectrum.  Jarrett et al. 2011, ApJ 735, 112;
#: WISE All-Sky Explanatory Supplement sec. IV.4.h.i.1, Eq. 1 and Table 1.
WISE_ISOPHOTAL_ZERO_POINTS = {"W1": 309.540 * u.Jy, "W2": 171.787 * u.Jy}

#: WISE isophotal wavelengths (micron), Jarrett et al. 2011 / Explanatory
#: Supplement sec. IV.4.h.v (values not re-read in a primary copy here).
_WISE_WAVELENGTH_UM = {"W1": 3.3526, "W2": 4.6028}

#: The two WISE zero-point conventions the user may choose between.
WISE_ZERO_POINT_CHOICES = ("ab_offset", "isophotal")

#: Default WISE convention.  "ab_offset" puts WISE on the same AB (flat
#: f_nu, 3631 Jy) basis as every other calibrated band in multilc (ZTF,
#: Pan-STARRS, HST, Gaia via its AB zero points), so fluxes of different
#: archives are directly comparable in one light curve; it also reproduces
#: today's Fornax numbers.  "isophotal" (Jarrett+2011 F_nu0) is the
#: Supplement's own magnitude -> flux-density formula for a nu^-2 source and
#: is 2.4 % (W1) / 2.4 % (W2) higher.
DEFAULT_WISE_ZERO_POINT = "ab_offset"

#: Pan-STARRS1 effective wavelengths (nm) of g, r, i, z, y: Tonry et al.
#: 2012, ApJ 750, 99; Chambers et al. 2016, arXiv:1612.05560 (rounded to
#: 1 nm; not re-read in the papers here).
_PS1_WAVELENGTH_NM = {"g": 481.0, "r": 617.0, "i": 752.0, "z": 866.0, "y": 962.0}

#: ZTF band centres (nm): midpoints of the band edges that ZTF publishes for
#: its schedule reporting service (IVOA ObsLocTAP em_min/em_max):
#: g 416.700-542.756, r 568.941-717.164, i 722.536-869.910 nm
#: (zwickytransientfacility.github.io/schedule_reporting_service).  These
#: are band centres, not pivot wavelengths (may differ by 1-2 %).
_ZTF_WAVELENGTH_NM = {
    "g": (416.700 + 542.756) / 2,
    "r": (568.941 + 717.164) / 2,
    "i": (722.536 + 869.910) / 2,
}

#: Approximate centres of the instrumental space-photometry passbands (nm):
#: TESS 600-1000 nm centred on 786.5 nm (Ricker et al. 2015, JATIS 1,
#: 014003); Kepler (and K2, same photometer) 420-900 nm, ~640 nm
#: (Koch et al. 2010, ApJ 713, L79).  Only used for plotting order.
_SPACE_WAVELENGTH_NM = {"TESS": 786.5, "Kepler": 640.0, "K2": 640.0}

#: Pivot wavelengths (Angstrom) of common HST filters, rounded to ~10 A,
#: from the STScI instrument handbooks (ACS IHB sec. 5 / ACS zero-point
#: tables; WFC3 IHB Tables 6.2 and 7.2; WFPC2 IHB Table 6.1).  NOTE: these
#: were transcribed without an offline copy of the handbooks to re-check
#: them; treat them as good to ~1 %.  They are only used to convert to
#: per-wavelength units (f_lambda); AB magnitude -> Jy needs no wavelength.
HST_PIVOT_WAVELENGTHS = {
    "ACS": {
        "F435W": 4330,
        "F475W": 4750,
        "F555W": 5360,
        "F606W": 5920,
        "F625W": 6310,
        "F658N": 6580,
        "F775W": 7690,
        "F814W": 8050,
        "F850LP": 9030,
    },
    "WFC3": {
        "F225W": 2370,
        "F275W": 2710,
        "F336W": 3360,
        "F390W": 3920,
        "F438W": 4330,
        "F475W": 4770,
        "F555W": 5310,
        "F606W": 5890,
        "F625W": 6240,
        "F775W": 7650,
        "F814W": 8040,
        "F850LP": 9170,
        "F105W": 10550,
        "F110W": 11530,
        "F125W": 12490,
        "F140W": 13920,
        "F160W": 15370,
    },
    "WFPC2": {
        "F300W": 2990,
        "F336W": 3340,
        "F439W": 4310,
        "F450W": 4560,
        "F555W": 5440,
        "F606W": 6000,
        "F675W": 6720,
        "F702W": 6920,
        "F814W": 8000,
    },
}

#: Citation for HSC / HCV magnitudes.  HSC v3 photometry (from the Hubble
#: Legacy Archive source lists) is in the ABMAG system: the HCV paper states
#: that its candidate variables "have AB magnitudes in the range 15-27"
#: (Bonanos et al. 2019, A&A 630, A92, abstract; arXiv:1803.04974), and the
#: HSC is described in Whitmore et al. 2016, AJ 151, 134.  (Today's Fornax
#: tool instead applies ACS VEGAmag zero points to these magnitudes.)
_HST_CITATION = (
    "HSC v3 / HCV magnitudes are ABMAG (Bonanos et al. 2019 A&A 630 A92; "
    "Whitmore et al. 2016 AJ 151 134); pivot wavelength from the STScI "
    "instrument handbook (approximate, about 1 percent)"
)

_HST_NAME = re.compile(r"^hst:(ACS|WFC3|WFPC2)_(F(\d{3,4})(W|M|N|LP|X|BW|W2)?)$", re.IGNORECASE)
_SYSTEMS = ("AB", "Vega", "instrumental")


# --------------------------------------------------------------------------
# Band and the registry.
# --------------------------------------------------------------------------


class UnknownBandError(KeyError, ValueError):
    """A band name that is not registered (and cannot be synthesised).

    Subclass of both :class:`KeyError` (registry look-up) and
    :class:`ValueError` (bad argument value).
    """

    def __str__(self):
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Band:
    """One photometric band of one archive.

    Parameters
    ----------
    name : str
        Registry key, ``"<archive>:<band>"``, e.g. ``"ztf:g"``.
    archive : str
        Archive short name, e.g. ``"ztf"``.
    band : str
        Band name inside the archive, e.g. ``"g"``.
    system : {"AB", "Vega", "instrumental"}
        Magnitude system of the archive's magnitudes for this band.
    zero_point : `~astropy.units.Quantity` or None
        Flux density (Jy) of magnitude 0 in ``system``; None for
        instrumental bands.
    wavelength : `~astropy.units.Quantity` or None
        Representative (pivot, effective or central; see ``citation``)
        wavelength in Angstrom; None when unknown.
    flux_unit : `~astropy.units.UnitBase`
        Unit the band's fluxes are stored in: mJy for calibrated bands,
        electron / s for instrumental ones.
    native_time : str
        Key of ``multilc.timescales.TIME_SYSTEMS`` in which the archive
        reports this band's times.
    citation : str
        Where the system, zero point and wavelength come from.
    """

    name: str
    archive: str
    band: str
    system: str
    zero_point: u.Quantity | None
    wavelength: u.Quantity | None
    flux_unit: u.UnitBase
    native_time: str
    citation: str

    def __post_init__(self):
        if self.name != f"{self.archive}:{self.band}":
            raise ValueError(
                f"band name {self.name!r} must be '<archive>:<band>' = "
                f"{self.archive + ':' + self.band!r}"
            )
        if self.system not in _SYSTEMS:
            raise ValueError(
                f"band {self.name!r}: system must be one of {_SYSTEMS}, got {self.system!r}"
            )
        if self.system == "instrumental":
            if self.zero_point is not None:
                raise ValueError(f"band {self.name!r}: instrumental bands have no zero point")
        else:
            if not isinstance(
                self.zero_point, u.Quantity
            ) or not self.zero_point.unit.is_equivalent(u.Jy):
                raise u.UnitsError(
                    f"band {self.name!r}: zero_point must be a flux-density Quantity (Jy), "
                    f"got {self.zero_point!r}"
                )
            object.__setattr__(self, "zero_point", self.zero_point.to(u.Jy))
        if self.wavelength is not None:
            if not isinstance(
                self.wavelength, u.Quantity
            ) or not self.wavelength.unit.is_equivalent(u.AA):
                raise u.UnitsError(f"band {self.name!r}: wavelength must be a length Quantity")
            object.__setattr__(self, "wavelength", self.wavelength.to(u.AA))
        object.__setattr__(self, "flux_unit", u.Unit(self.flux_unit))
        if not self.citation:
            raise ValueError(f"band {self.name!r}: a citation is required")

    @property
    def calibrated(self):
        """bool: True when the band has a zero point (fluxes in mJy)."""
        return self.system != "instrumental"


#: The band registry: name -> :class:`Band`.  HST bands not listed here are
#: synthesised on demand by :func:`get_band`.
BANDS: dict[str, Band] = {}


def register_band(band, overwrite=False):
    """Add a band to ``BANDS``.

    Parameters
    ----------
    band : `Band`
        The band to register (keyed by ``band.name``).
    overwrite : bool, optional
        Replace an existing band of the same name.  Default False.

    Raises
    ------
    TypeError
        If ``band`` is not a `Band`.
    ValueError
        If a band of that name exists and ``overwrite`` is False.
    """
    if not isinstance(band, Band):
        raise TypeError(f"register_band expects a Band, got {type(band).__name__}")
    if band.name in BANDS and not overwrite:
        raise ValueError(
            f"band {band.name!r} is already registered; pass overwrite=True to replace it"
        )
    BANDS[band.name] = band
    return band


def get_band(name):
    """Return the registered `Band` called ``name``.

    Well-formed HST names ``"hst:<INSTRUMENT>_<FILTER>"`` (INSTRUMENT one of
    ACS, WFC3, WFPC2; FILTER like F814W, F850LP, F658N) that are not
    registered are synthesised (see the HST notes in the docs).

    Parameters
    ----------
    name : str or `Band`
        Band name such as ``"ztf:g"``; a `Band` is returned unchanged.

    Raises
    ------
    UnknownBandError
        If the band is unknown; the message lists close known names.
    """
    if isinstance(name, Band):
        return name
    if not isinstance(name, str):
        raise UnknownBandError(f"band name must be a string, got {type(name).__name__}: {name!r}")
    band = BANDS.get(name)
    if band is not None:
        return band
    match = _HST_NAME.match(name)
    if match:
        return _hst_band(match.group(1).upper(), match.group(2).upper())
    close = difflib.get_close_matches(name, list(BANDS), n=5, cutoff=0.5)
    if not close:  # try case-insensitively, e.g. "GAIA:g" -> "gaia:G"
        lower = {key.lower(): key for key in BANDS}
        close = [
            lower[k] for k in difflib.get_close_matches(name.lower(), list(lower), n=5, cutoff=0.5)
        ]
    hint = (
        f"close matches: {', '.join(close)}"
        if close
        else ("known archives: " + ", ".join(sorted({b.archive for b in BANDS.values()})))
    )
    raise UnknownBandError(
        f"unknown photometric band {name!r}; {hint}. "
        "HST bands are written 'hst:<ACS|WFC3|WFPC2>_<FILTER>'; "
        "see multilc.photometry.BANDS for all names."
    )


@lru_cache(maxsize=None)
def _hst_band(instrument, filter_name):
    """Build the `Band` for an HSC/HCV ``<instrument>_<filter>`` magnitude.

    HSC v3 magnitudes are ABMAG, so every HST band is AB with the 3631 Jy
    zero point.  The wavelength is the tabulated pivot wavelength
    (``HST_PIVOT_WAVELENGTHS``) when known; otherwise it is approximated
    from the filter number, which is the central wavelength in nm for ACS,
    WFPC2 and WFC3/UVIS, and in units of 10 nm for WFC3/IR filters (WFC3
    filters numbered below 200, e.g. F160W = 1600 nm).  Such approximations
    can be off by several percent and are marked in the citation.
    """
    pivot = HST_PIVOT_WAVELENGTHS.get(instrument, {}).get(filter_name)
    if pivot is not None:
        wavelength = pivot * u.AA
        citation = _HST_CITATION
    else:
        number = int(re.match(r"F(\d+)", filter_name).group(1))
        scale_nm = 10 if (instrument == "WFC3" and number < 200) else 1
        wavelength = (number * scale_nm * u.nm).to(u.AA)
        citation = (
            "HSC v3 / HCV magnitudes are ABMAG (Bonanos et al. 2019 A&A 630 A92); "
            "wavelength APPROXIMATED from the filter number (not a pivot wavelength)"
        )
    return Band(
        name=f"hst:{instrument}_{filter_name}",
        archive="hst",
        band=f"{instrument}_{filter_name}",
        system="AB",
        zero_point=AB_ZERO_POINT,
        wavelength=wavelength,
        flux_unit=CALIBRATED_FLUX_UNIT,
        native_time="mjd_utc_geocentric",
        citation=citation,
    )


def _register_builtin_bands():
    ztf_cite = (
        "AB, calibrated to Pan-STARRS1 (Masci et al. 2019 PASP 131 018003); "
        "wavelength = band centre from ZTF ObsLocTAP band edges"
    )
    for b in ("g", "r", "i"):
        register_band(
            Band(
                f"ztf:{b}",
                "ztf",
                b,
                "AB",
                AB_ZERO_POINT,
                (_ZTF_WAVELENGTH_NM[b] * u.nm).to(u.AA),
                CALIBRATED_FLUX_UNIT,
                "ztf.hmjd",
                ztf_cite,
            )
        )
    ps1_cite = (
        "AB; archive psfFlux in Jy (Chambers et al. 2016 arXiv:1612.05560); "
        "effective wavelength from Tonry et al. 2012 ApJ 750 99"
    )
    for b in ("g", "r", "i", "z", "y"):
        register_band(
            Band(
                f"panstarrs:{b}",
                "panstarrs",
                b,
                "AB",
                AB_ZERO_POINT,
                (_PS1_WAVELENGTH_NM[b] * u.nm).to(u.AA),
                CALIBRATED_FLUX_UNIT,
                "panstarrs.mjd",
                ps1_cite,
            )
        )
    for b in ("G", "BP", "RP"):
        # Vega zero point as a flux density: a source of Vega magnitude 0
        # gives 10**(0.4 ZP_Vega) e-/s, whose AB magnitude is ZP_AB - ZP_Vega,
        # i.e. f0 = 3631 Jy * 10**(-0.4 (ZP_AB - ZP_Vega)).
        zp = AB_ZERO_POINT * 10 ** (-0.4 * (GAIA_AB_ZERO_POINTS[b] - GAIA_VEGA_ZERO_POINTS[b]))
        register_band(
            Band(
                f"gaia:{b}",
                "gaia",
                b,
                "Vega",
                zp,
                (_GAIA_WAVELENGTH_NM[b] * u.nm).to(u.AA),
                CALIBRATED_FLUX_UNIT,
                "gaia.tcb_jd2010",
                f"Gaia DR3 VEGAMAG; zero points Vega {GAIA_VEGA_ZERO_POINTS[b]} / "
                f"AB {GAIA_AB_ZERO_POINTS[b]} mag (Riello et al. 2021 A&A 649 A3 Table 3; "
                "Gaia EDR3 documentation sec. 5.3.6)",
            )
        )
    for b in ("W1", "W2"):
        # Default zero point: the AB-offset convention (see
        # DEFAULT_WISE_ZERO_POINT for why): f0 = 3631 Jy * 10**(-0.4 dm).
        zp = AB_ZERO_POINT * 10 ** (-0.4 * WISE_AB_OFFSETS[b])
        register_band(
            Band(
                f"wise:{b}",
                "wise",
                b,
                "Vega",
                zp,
                (_WISE_WAVELENGTH_UM[b] * u.um).to(u.AA),
                CALIBRATED_FLUX_UNIT,
                "wise.mjd",
                f"Vega; unWISE nanomaggies m = 22.5 - 2.5 log10 f (Meisner et al. 2023 AJ 165 36); "
                f"zero point from Vega->AB offset {WISE_AB_OFFSETS[b]} mag (WISE All-Sky "
                f"Explanatory Supplement sec. IV.4.h); isophotal alternative "
                f"{WISE_ISOPHOTAL_ZERO_POINTS[b].value} Jy (Jarrett et al. 2011 ApJ 735 112)",
            )
        )
    space = {
        "tess": ("TESS", "tess.btjd", "Ricker et al. 2015 JATIS 1 014003"),
        "kepler": ("Kepler", "kepler.bkjd", "Koch et al. 2010 ApJ 713 L79"),
        "k2": ("K2", "k2.bkjd", "Koch et al. 2010 ApJ 713 L79; Howell et al. 2014 PASP 126 398"),
    }
    for archive, (b, time_system, ref) in space.items():
        register_band(
            Band(
                f"{archive}:{b}",
                archive,
                b,
                "instrumental",
                None,
                (_SPACE_WAVELENGTH_NM[b] * u.nm).to(u.AA),
                INSTRUMENTAL_FLUX_UNIT,
                time_system,
                f"instrumental SPOC/Kepler pipeline flux in e-/s, no zero point; "
                f"approximate band centre from {ref}",
            )
        )
    for instrument, filters in HST_PIVOT_WAVELENGTHS.items():
        for filter_name in filters:
            register_band(_hst_band(instrument, filter_name))


_register_builtin_bands()


# --------------------------------------------------------------------------
# Conversions.
# --------------------------------------------------------------------------


def _calibrated_band(band, what):
    band = get_band(band)
    if not band.calibrated:
        raise u.UnitsError(
            f"{what}: band {band.name!r} is instrumental ({band.flux_unit}) and has no "
            "magnitude zero point; its fluxes cannot be converted to a flux density"
        )
    return band


def _plain(values, what):
    """Float ndarray from array-like or dimensionless/mag Quantity."""
    if isinstance(values, u.Quantity):
        if values.unit in (u.mag, u.dimensionless_unscaled):
            return np.asarray(values.value, dtype=float)
        raise u.UnitsError(
            f"{what} must be plain numbers or a u.mag Quantity, got unit {values.unit}"
        )
    return np.asarray(values, dtype=float)


def _flux_quantity(flux, band, what):
    """``flux`` as a Quantity in mJy, using the band wavelength if needed."""
    if not isinstance(flux, u.Quantity):
        raise TypeError(
            f"{what} for band {band.name!r} must be an astropy Quantity with a flux-density "
            f"unit (e.g. flux * u.mJy), got {type(flux).__name__}"
        )
    equivalencies = u.spectral_density(band.wavelength) if band.wavelength is not None else []
    try:
        return flux.to(CALIBRATED_FLUX_UNIT, equivalencies=equivalencies)
    except u.UnitConversionError as err:
        raise u.UnitsError(
            f"{what} for band {band.name!r}: cannot convert unit {flux.unit} to "
            f"{CALIBRATED_FLUX_UNIT}"
            + ("" if band.wavelength is not None else " (band has no wavelength)")
        ) from err


def mag_to_flux(mag, band=None, mag_err=None, *, system=None, zero_point=None):
    """Convert magnitudes to flux densities in mJy.

    ``F = F0 * 10**(-0.4 m)`` and ``sigma_F = 0.4 ln(10) F sigma_m``.

    Parameters
    ----------
    mag : array-like or `~astropy.units.Quantity`
        Magnitudes (plain numbers or ``u.mag``).  A Quantity in a physical
        magnitude unit such as ``u.ABmag`` is converted by astropy directly
        (only allowed with AB bands or without a band).  NaN gives NaN.
    band : str or `Band`, optional
        Band whose system and zero point to use.
    mag_err : array-like or `~astropy.units.Quantity`, optional
        1-sigma magnitude errors (mag).
    system : {"AB"}, optional
        Without ``band``: use the AB zero point.
    zero_point : `~astropy.units.Quantity`, optional
        Without ``band`` (or to override it): flux density of magnitude 0,
        e.g. a Vega zero point in Jy.

    Returns
    -------
    flux, flux_err : `~astropy.units.Quantity`
        Flux density and its error in mJy; ``flux_err`` is None when
        ``mag_err`` is None.

    Raises
    ------
    astropy.units.UnitsError
        For instrumental bands or incompatible units.
    ValueError
        If neither band, system nor zero_point tells the zero point.
    """
    if band is not None:
        band = _calibrated_band(band, "mag_to_flux")
    physical = isinstance(mag, u.Quantity) and isinstance(mag.unit, u.FunctionUnitBase)
    if physical:
        if band is not None and band.system != "AB" and zero_point is None:
            raise u.UnitsError(
                f"mag_to_flux: got {mag.unit} magnitudes for {band.system} band {band.name!r}; "
                "pass plain magnitudes in the band's own system"
            )
        wl = band.wavelength if band is not None else None
        eq = u.spectral_density(wl) if wl is not None else []
        flux = mag.physical.to(CALIBRATED_FLUX_UNIT, equivalencies=eq)
    else:
        if zero_point is not None:
            if not isinstance(zero_point, u.Quantity) or not zero_point.unit.is_equivalent(u.Jy):
                raise u.UnitsError(
                    f"zero_point must be a flux-density Quantity (Jy), got {zero_point!r}"
                )
            zp = zero_point
        elif band is not None:
            zp = band.zero_point
        elif system == "AB":
            zp = AB_ZERO_POINT
        elif system is None:
            raise ValueError("mag_to_flux needs a band, system='AB' or a zero_point")
        else:
            raise ValueError(
                f"mag_to_flux: system {system!r} needs a zero_point (only 'AB' has a "
                "universal one); pass zero_point=<flux density of magnitude 0>"
            )
        values = _plain(mag, "mag")
        flux = (zp * 10 ** (-0.4 * values)).to(CALIBRATED_FLUX_UNIT)
    if mag_err is None:
        return flux, None
    err = _plain(mag_err, "mag_err")
    return flux, np.abs(flux) * _MAG_TO_FRACTIONAL_FLUX * err


def flux_to_mag(flux, band, flux_err=None):
    """Convert flux densities to magnitudes in the band's own system.

    ``m = -2.5 log10(F / F0)`` and ``sigma_m = 2.5 / ln(10) * sigma_F / F``.
    Non-positive (and NaN) fluxes give NaN magnitudes: they are never
    dropped, so the caller decides how to flag them.

    Parameters
    ----------
    flux : `~astropy.units.Quantity`
        Flux density in any unit convertible to mJy, including
        per-wavelength units (converted at the band wavelength).
    band : str or `Band`
        A calibrated band.
    flux_err : `~astropy.units.Quantity`, optional
        1-sigma flux error, same kind of unit as ``flux``.

    Returns
    -------
    mag, mag_err : `~astropy.units.Quantity`
        Magnitudes as a plain ``u.mag`` Quantity (the system is the band's
        ``system``, not encoded in the unit); ``mag_err`` is None when
        ``flux_err`` is None.

    Raises
    ------
    astropy.units.UnitsError
        For instrumental bands or units not convertible to a flux density.
    TypeError
        If ``flux`` is not a Quantity.
    """
    band = _calibrated_band(band, "flux_to_mag")
    f = _flux_quantity(flux, band, "flux").value
    zp = band.zero_point.to_value(CALIBRATED_FLUX_UNIT)
    positive = f > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(positive, -2.5 * np.log10(np.where(positive, f, 1.0) / zp), np.nan)
    if flux_err is None:
        return mag * u.mag, None
    ferr = _flux_quantity(flux_err, band, "flux_err").value
    with np.errstate(divide="ignore", invalid="ignore"):
        mag_err = np.where(
            positive, ferr / (_MAG_TO_FRACTIONAL_FLUX * np.where(positive, f, 1.0)), np.nan
        )
    return mag * u.mag, mag_err * u.mag


def _wise_vega_zero_point(band, wise_zero_point):
    if wise_zero_point not in WISE_ZERO_POINT_CHOICES:
        raise ValueError(
            f"wise_zero_point must be one of {WISE_ZERO_POINT_CHOICES}, got {wise_zero_point!r}"
        )
    if band.archive != "wise":
        if wise_zero_point != DEFAULT_WISE_ZERO_POINT:
            raise ValueError(f"wise_zero_point applies to WISE bands only, not {band.name!r}")
        return band.zero_point
    if wise_zero_point == "isophotal":
        return WISE_ISOPHOTAL_ZERO_POINTS[band.band]
    return AB_ZERO_POINT * 10 ** (-0.4 * WISE_AB_OFFSETS[band.band])


def nanomaggies_to_flux(flux_nmgy, band, flux_err=None, *, wise_zero_point=DEFAULT_WISE_ZERO_POINT):
    """Convert fluxes in nanomaggies of the band's system to mJy.

    1 nanomaggy is magnitude 22.5 in the band's system, so
    ``F = F0 * 10**(-0.4 * 22.5) * f_nmgy``.  The conversion is linear and
    keeps zero and negative fluxes (forced photometry) as they are.  unWISE
    fluxes are Vega nanomaggies.

    Parameters
    ----------
    flux_nmgy : array-like
        Fluxes in nanomaggies (plain numbers or dimensionless).
    band : str or `Band`
        A calibrated band, typically ``"wise:W1"`` or ``"wise:W2"``.
    flux_err : array-like, optional
        Errors in nanomaggies.
    wise_zero_point : {"ab_offset", "isophotal"}, optional
        WISE zero-magnitude flux density: from the Vega->AB offsets
        (W1 2.699, W2 3.339 mag; default, see the docs for why) or the
        isophotal F_nu0 (309.540 / 171.787 Jy, Jarrett et al. 2011), which
        gives 2.4 % larger fluxes.

    Returns
    -------
    flux, flux_err : `~astropy.units.Quantity`
        mJy; ``flux_err`` None when not given.
    """
    band = _calibrated_band(band, "nanomaggies_to_flux")
    zp = _wise_vega_zero_point(band, wise_zero_point)
    per_nmgy = (zp * 10 ** (-0.4 * NANOMAGGY_MAGNITUDE)).to(CALIBRATED_FLUX_UNIT)
    flux = _plain(flux_nmgy, "flux_nmgy") * per_nmgy
    err = None if flux_err is None else _plain(flux_err, "flux_err") * per_nmgy
    return flux, err


def _electron_rate(values, what):
    if isinstance(values, u.Quantity):
        try:
            return values.to_value(u.electron / u.s, equivalencies=[(u.electron / u.s, u.s**-1)])
        except u.UnitConversionError as err:
            raise u.UnitsError(f"{what} must be in e-/s (or s-1), got {values.unit}") from err
    return np.asarray(values, dtype=float)


def gaia_electrons_to_flux(flux_e_s, band, flux_err=None):
    """Convert Gaia epoch fluxes in e-/s to mJy.

    Gaia magnitudes are ``m = ZP - 2.5 log10(flux[e-/s])``.  With the DR3
    *AB* zero point, a flux of 1 e-/s has AB magnitude ZP_AB, i.e. a flux
    density of 3631 Jy * 10**(-0.4 ZP_AB); the conversion is linear, so
    ``F = 3631 Jy * 10**(-0.4 ZP_AB) * flux``.  Using the flux column (not
    the Vega magnitude) avoids any ambiguity about the magnitude system and
    keeps faint/negative fluxes.

    Parameters
    ----------
    flux_e_s : array-like or `~astropy.units.Quantity`
        Fluxes in e-/s (Quantity in ``electron / s`` or ``1 / s``, or plain).
    band : str or `Band`
        ``"gaia:G"``, ``"gaia:BP"`` or ``"gaia:RP"``.
    flux_err : array-like or `~astropy.units.Quantity`, optional
        Flux errors, same unit.

    Returns
    -------
    flux, flux_err : `~astropy.units.Quantity`
        mJy; ``flux_err`` None when not given.
    """
    band = get_band(band)
    if band.archive != "gaia":
        raise ValueError(f"gaia_electrons_to_flux needs a Gaia band, got {band.name!r}")
    per_e_s = (AB_ZERO_POINT * 10 ** (-0.4 * GAIA_AB_ZERO_POINTS[band.band])).to(
        CALIBRATED_FLUX_UNIT
    )
    flux = _electron_rate(flux_e_s, "flux_e_s") * per_e_s
    err = None if flux_err is None else _electron_rate(flux_err, "flux_err") * per_e_s
    return flux, err


def jansky_to_flux(flux_jy, flux_err=None):
    """Convert fluxes in Jy (e.g. Pan-STARRS ``psfFlux``) to mJy.

    Parameters
    ----------
    flux_jy : array-like or `~astropy.units.Quantity`
        Plain numbers are taken to be Jy; Quantities may be any
        frequency-flux-density unit.
    flux_err : array-like or `~astropy.units.Quantity`, optional

    Returns
    -------
    flux, flux_err : `~astropy.units.Quantity`
        mJy; ``flux_err`` None when not given.
    """

    def conv(values, what):
        if isinstance(values, u.Quantity):
            try:
                return values.to(CALIBRATED_FLUX_UNIT)
            except u.UnitConversionError as err:
                raise u.UnitsError(
                    f"{what} must be a flux density per frequency, got {values.unit}"
                ) from err
        return (np.asarray(values, dtype=float) * u.Jy).to(CALIBRATED_FLUX_UNIT)

    return conv(flux_jy, "flux_jy"), (None if flux_err is None else conv(flux_err, "flux_err"))


def convert_flux(flux, band, unit):
    """Convert a calibrated band's flux densities to another unit.

    Per-wavelength units (e.g. erg s-1 cm-2 A-1) use the band wavelength
    through :func:`~astropy.units.spectral_density`.

    Parameters
    ----------
    flux : `~astropy.units.Quantity`
        Flux densities of ``band``.
    band : str or `Band`
        A calibrated band.
    unit : str or `~astropy.units.UnitBase`
        Target unit.

    Returns
    -------
    `~astropy.units.Quantity`

    Raises
    ------
    astropy.units.UnitsError
        For instrumental bands or impossible conversions.
    """
    band = _calibrated_band(band, "convert_flux")
    if not isinstance(flux, u.Quantity):
        raise TypeError(
            f"convert_flux for band {band.name!r} needs a Quantity, got {type(flux).__name__}"
        )
    equivalencies = u.spectral_density(band.wavelength) if band.wavelength is not None else []
    try:
        return flux.to(unit, equivalencies=equivalencies)
    except u.UnitConversionError as err:
        raise u.UnitsError(
            f"convert_flux: cannot convert {flux.unit} to {unit} for band {band.name!r}"
        ) from err


# --------------------------------------------------------------------------
# Tables for the docs.
# --------------------------------------------------------------------------


def band_table():
    """All registered bands as an `~astropy.table.QTable`.

    Columns: name, archive, band, system, zero_point (Jy; NaN when
    instrumental), wavelength (Angstrom; NaN when unknown), flux_unit,
    native_time, citation.  One row per band, sorted by name.
    """
    bands = [BANDS[k] for k in sorted(BANDS)]
    nan_jy = np.nan * u.Jy
    nan_aa = np.nan * u.AA
    return QTable(
        {
            "name": [b.name for b in bands],
            "archive": [b.archive for b in bands],
            "band": [b.band for b in bands],
            "system": [b.system for b in bands],
            "zero_point": u.Quantity(
                [b.zero_point if b.zero_point is not None else nan_jy for b in bands], u.Jy
            ),
            "wavelength": u.Quantity(
                [b.wavelength if b.wavelength is not None else nan_aa for b in bands], u.AA
            ),
            "flux_unit": [b.flux_unit.to_string() for b in bands],
            "native_time": [b.native_time for b in bands],
            "citation": [b.citation for b in bands],
        }
    )


def _rst_escape(text):
    text = str(text)
    for char in ("\\", "*", "`", "|", "_", "<", ">"):
        text = text.replace(char, "\\" + char)
    return text


def band_table_rst(title="Registered photometric bands"):
    """The band table as a complete reStructuredText ``list-table``.

    Parameters
    ----------
    title : str, optional
        Table title (the directive argument).

    Returns
    -------
    str
        rst text, ending in a newline, ready to ``.. include::``.
    """
    table = band_table()
    header = [
        "Band",
        "System",
        "Zero point (Jy)",
        "Wavelength (Å)",
        "Stored unit",
        "Native time",
        "Source",
    ]
    lines = [
        f".. list-table:: {_rst_escape(title)}",
        "   :header-rows: 1",
        "   :widths: 14 8 10 10 8 12 38",
        "",
    ]

    def row(cells):
        out = []
        for i, cell in enumerate(cells):
            out.append(("   * - " if i == 0 else "     - ") + cell)
        return out

    lines += row(header)
    for rec in table:
        zp = rec["zero_point"].to_value(u.Jy)
        wl = rec["wavelength"].to_value(u.AA)
        lines += row(
            [
                f"``{rec['name']}``",
                _rst_escape(rec["system"]),
                "n/a" if np.isnan(zp) else f"{zp:.2f}",
                "n/a" if np.isnan(wl) else f"{wl:.0f}",
                _rst_escape(rec["flux_unit"]),
                f"``{rec['native_time']}``",
                _rst_escape(rec["citation"]),
            ]
        )
    return "\n".join(lines) + "\n"
