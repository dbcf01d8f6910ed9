"""bin, remove_outliers, normalize and clip_mask (issue 11), checked by hand."""
import numpy as np
import pytest
from astropy import units as u
from astropy.stats import sigma_clip
from astropy.time import Time

from multilc import MultiBandLightCurve, make_events
from multilc.errors import InputError
from multilc.lightcurve import clip_mask


def mjd(values):
    return Time(values, format="mjd", scale="tdb")


@pytest.fixture
def lc():
    # object 1, ztf:g: times 0.1, 0.4 (bin 0), 1.2 (bin 1), 2.5 upper limit (bin 2)
    # object 1, tess:TESS (e-/s): 10.0, 10.2
    # object 2, wise:W1: 3 points in one bin, one with zero error
    cal = MultiBandLightCurve.from_arrays(
        [1, 1, 1, 1, 2, 2, 2], ["ztf:g"] * 4 + ["wise:W1"] * 3,
        mjd([0.1, 0.4, 1.2, 2.5, 5.0, 5.1, 5.2]),
        [1.0, 2.0, 4.0, 0.5, 3.0, 5.0, 100.0] * u.mJy,
        [0.1, 0.2, 0.4, 0.1, 1.0, 2.0, 0.0] * u.mJy,
        upper_limit=[False, False, False, True, False, False, False],
        mag=[16.4, 15.6, 14.9, 17.2, 15.2, 14.7, 11.4] * u.mag)
    tess = MultiBandLightCurve.from_arrays(
        [1, 1], ["tess:TESS"] * 2, mjd([10.0, 10.2]), [100.0, 110.0] * u.electron / u.s,
        [2.0, 1.0] * u.electron / u.s)
    ev = MultiBandLightCurve.from_events(make_events([2], ["icecube"], mjd([5.05])))
    return MultiBandLightCurve.concat([cal, tess, ev])


def test_bin_weighted_means(lc):
    b = lc.bin(1 * u.day)
    g = b.select(band="ztf:g")
    # bin 0: weights 100 and 25
    w = np.array([1 / 0.1**2, 1 / 0.2**2])
    np.testing.assert_allclose(g.flux.value[0], (w * [1.0, 2.0]).sum() / w.sum())
    np.testing.assert_allclose(g.flux_err.value[0], 1 / np.sqrt(w.sum()))
    np.testing.assert_allclose(g.time.mjd, [0.6, 1.6, 2.6])  # centres from t0 = 0.1
    assert g.n_binned.tolist() == [2, 1, 1]
    # the upper-limit-only bin keeps the limit, flagged
    assert g.upper_limit.tolist() == [False, False, True]
    assert g.flux.value[2] == 0.5
    # zero-error point excluded from the mean
    w1 = b.select(band="wise:W1")
    ww = np.array([1.0, 1 / 4.0])
    np.testing.assert_allclose(w1.flux.value, [(ww * [3.0, 5.0]).sum() / ww.sum()])
    assert w1.n_binned.tolist() == [2]
    # instrumental band binned in its own unit
    t = b.select(band="tess:TESS")
    wt = np.array([1 / 4.0, 1.0])
    np.testing.assert_allclose(t.get_flux()[0].to_value(u.electron / u.s),
                               [(wt * [100.0, 110.0]).sum() / wt.sum()])
    # events untouched, magnitudes dropped
    assert b.n_events == 1 and b.events["time"].mjd[0] == 5.05
    assert "mag" not in b.ds


def test_rebinning_counts_measurements(lc):
    g = lc.select(band="ztf:g")
    once = g.bin(1 * u.day, time_bin_start=mjd([0.0])).bin(
        4 * u.day, time_bin_start=mjd([0.0]))
    direct = g.bin(4 * u.day, time_bin_start=mjd([0.0]))
    assert once.n_binned.tolist() == direct.n_binned.tolist() == [3]
    np.testing.assert_allclose(once.flux.value, direct.flux.value)
    np.testing.assert_allclose(once.flux_err.value, direct.flux_err.value)


def test_bin_time_bin_start_and_errors(lc):
    b = lc.select(band="ztf:g").bin(2 * u.day, time_bin_start=mjd([0.0]))
    np.testing.assert_allclose(b.time.mjd, [1.0, 3.0])
    assert b.n_binned.tolist() == [3, 1]
    with pytest.raises(InputError):
        lc.bin(1 * u.m)
    with pytest.raises(InputError):
        lc.bin(-1 * u.day)


def test_remove_outliers_matches_sigma_clip():
    rng = np.random.default_rng(3)
    f = rng.normal(10, 0.1, 60)
    f[[5, 40]] = [30.0, -5.0]
    ul = np.zeros(60, bool)
    ul[7] = True
    f[7] = 500.0  # an upper limit far off: neither used nor removed
    t = np.arange(60.0)
    lc = MultiBandLightCurve.from_arrays(
        [1] * 60 + [2] * 60, ["ztf:r"] * 120, mjd(np.concatenate([t, t])),
        np.concatenate([f, f + 1]) * u.mJy, np.full(120, 0.1) * u.mJy,
        upper_limit=np.concatenate([ul, ul]))
    out, counts = lc.remove_outliers(sigma=4, return_counts=True)
    ref = sigma_clip(np.delete(f, 7), sigma=4, maxiters=5).mask.sum()
    assert ref == 2
    assert counts == {(1, "ztf:r"): 2, (2, "ztf:r"): 2}
    assert len(out) == 116
    assert 500.0 in out.select(objectid=1).flux.value  # the upper limit stays
    assert 30.0 not in out.flux.value


def test_clip_mask_per_array():
    # 12 values near 1 and one at 50: with the outlier, std ~ 13.1 and
    # |50 - 1| / 13.1 = 3.7 > 3; after removing it nothing else is off.
    vals = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95] * 2 + [50.0, np.nan])
    m = clip_mask(vals, sigma=3)
    assert m.tolist() == [False] * 12 + [True, False]
    assert not clip_mask(vals, sigma=3, ignore=np.arange(14) == 12).any()
    assert not clip_mask([1.0, 100.0]).any()  # too few values to judge
    # one-sided: a dip as deep as the peak is high is kept with sigma_lower=inf
    vals2 = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95] * 3 + [50.0, -48.0])
    both = clip_mask(vals2, sigma=3)
    upper_only = clip_mask(vals2, sigma=3, sigma_lower=np.inf)
    ref = sigma_clip(vals2, sigma=3, sigma_lower=np.inf, maxiters=5).mask
    assert both[-2:].tolist() == [True, True]
    assert upper_only.tolist() == ref.tolist() and upper_only[-1] == False  # noqa: E712


def test_normalize(lc):
    n = lc.normalize()
    assert n.normalized
    g = n.select(band="ztf:g")
    med = np.median([1.0, 2.0, 4.0])  # upper limit excluded from the median
    np.testing.assert_allclose(g.flux.value, np.array([1.0, 2.0, 4.0, 0.5]) / med)
    np.testing.assert_allclose(g.flux_err.value, np.array([0.1, 0.2, 0.4, 0.1]) / med)
    assert g.flux.unit == u.dimensionless_unscaled
    t = n.select(band="tess:TESS")
    np.testing.assert_allclose(t.flux.value, [100 / 105, 110 / 105])
    assert n.flux.unit == u.dimensionless_unscaled  # TESS and ztf in one column
    with pytest.raises(u.UnitsError):
        n.get_flux(u.mJy)
    assert n.to_pandas().attrs["units"]["flux"] == ""
    assert n.n_events == 1
    with pytest.raises(Exception, match="normalized"):
        n + lc
