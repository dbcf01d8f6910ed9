"""Tests for `multilc.samples.merge_samples`."""
import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from multilc.samples import Sample, SampleError, merge_samples

ARCSEC = 1 / 3600  # deg


def _sample(positions, label, **extra):
    ra = [p[0] for p in positions]
    dec = [p[1] for p in positions]
    return Sample.from_table(Table({"ra": ra, "dec": dec, **extra}), label=label)


def test_labels_kept_and_ids_in_order_of_first_appearance():
    a = _sample([(10.0, 0.0), (20.0, 0.0)], "A", name=["a1", "a2"])
    b = _sample([(30.0, 0.0), (20.0, 0.5 * ARCSEC)], "B", name=["b1", "b2"])
    merged, report = merge_samples([a, b], radius=1 * u.arcsec)
    assert merged.objectid.tolist() == [1, 2, 3]
    assert np.allclose(merged.coord.ra.deg, [10.0, 20.0, 30.0])
    assert merged.labels(2) == ["A", "B"]
    assert merged.labels(3) == ["B"]
    # the kept object keeps its first appearance's extra values
    assert list(merged["name"]) == ["a1", "a2", "b1"]
    assert len(report) == 1
    assert report["objectid"][0] == 2
    assert report["source_name"][0] == "b2"
    assert report["source_label"][0] == "B"
    assert report["sample_index"][0] == 1
    assert report["source_objectid"][0] == 2
    assert report["separation"][0].to_value(u.arcsec) == pytest.approx(0.5, abs=1e-6)


def test_same_inputs_same_ids():
    a = _sample([(5.0, 5.0), (6.0, 6.0)], "A")
    b = _sample([(6.0, 6.0 + 0.2 * ARCSEC), (7.0, 7.0)], "B")
    first, _ = merge_samples([a, b])
    second, _ = merge_samples([a, b])
    assert first.objectid.tolist() == second.objectid.tolist() == [1, 2, 3]
    assert list(first.label) == list(second.label) == ["A", "A; B", "B"]
    # order of inputs decides ids and label order
    swapped, _ = merge_samples([b, a])
    assert list(swapped.label) == ["B; A", "B", "A"]


def test_chain_is_not_friends_of_friends():
    # A-B 0.8", B-C 0.8", A-C 1.6": with a 1" radius B joins A, C stays separate.
    chain = _sample([(100.0, 0.0), (100.0, 0.8 * ARCSEC), (100.0, 1.6 * ARCSEC)], "X",
                    name=["A", "B", "C"])
    merged, report = merge_samples([chain], radius=1 * u.arcsec)
    assert len(merged) == 2
    assert list(merged["name"]) == ["A", "C"]
    assert list(report["source_name"]) == ["B"]


def test_nearest_kept_object_wins():
    kept = _sample([(50.0, 0.0), (50.0, 1.5 * ARCSEC)], "K", name=["k1", "k2"])
    incoming = _sample([(50.0, 1.0 * ARCSEC)], "I", name=["i"])  # 1.0" from k1, 0.5" from k2
    merged, report = merge_samples([kept, incoming], radius=1.2 * u.arcsec)
    assert merged.labels(2) == ["K", "I"]
    assert merged.labels(1) == ["K"]
    assert report["separation"][0].to_value(u.arcsec) == pytest.approx(0.5, abs=1e-6)


def test_radius_is_respected():
    a = _sample([(0.5, 10.0)], "A")
    b = _sample([(0.5, 10.0 + 2.0 * ARCSEC)], "B")
    assert len(merge_samples([a, b], radius=1 * u.arcsec)[0]) == 2
    assert len(merge_samples([a, b], radius=2.5 * u.arcsec)[0]) == 1
    assert len(merge_samples([a, b], radius=0.001 * u.deg)[0]) == 1  # 3.6"


def test_float_radius_rejected():
    a = _sample([(0.5, 10.0)], "A")
    with pytest.raises(TypeError, match="angle Quantity"):
        merge_samples([a], radius=1.0)
    with pytest.raises(u.UnitTypeError, match="angle"):
        merge_samples([a], radius=1 * u.m)


def test_extra_columns_union_and_merge_across_ra_zero():
    # 359.99995 deg and 0.00005 deg on the equator are 0.36" apart across RA = 0.
    a = _sample([(359.99995, 0.0)], "A", redshift=[0.3])
    b = _sample([(0.00005, 0.0), (10.0, 0.0)], "B", name=["n1", "n2"])
    merged, report = merge_samples([a, b], radius=1 * u.arcsec)
    assert len(merged) == 2
    assert merged.colnames == ["objectid", "coord", "label", "redshift", "name"]
    assert merged["redshift"][0] == pytest.approx(0.3)
    assert np.ma.is_masked(merged["redshift"][1])
    assert merged.labels(1) == ["A", "B"]
    assert report["separation"][0].to_value(u.arcsec) == pytest.approx(0.36, abs=1e-6)


def test_merged_sample_is_valid():
    a = _sample([(1.0, 1.0), (2.0, 2.0)], "A")
    merged, _ = merge_samples([a, a])
    # every object of the second copy merges into the first
    assert merged.objectid.tolist() == [1, 2]
    assert list(merged.label) == ["A", "A"]
    Sample.from_table(merged.table)  # passes validation again


def test_incompatible_extra_columns_reported():
    a = _sample([(1.0, 1.0)], "A", flag=["yes"])
    b = _sample([(2.0, 2.0)], "B")
    b_table = b.table
    b_table["flag"] = [1.5] * u.m
    with pytest.raises(SampleError, match="cannot combine the extra columns"):
        merge_samples([a, Sample.from_table(b_table)])
