"""Tests of the response contracts (multilc.collect.contract)."""

import numpy as np
import pyarrow as pa
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, Table

from multilc.collect.api import HTMLPageError, html_title, looks_like_html
from multilc.collect.contract import (Field, ResponseContract, ResponseError,
                                      TruncatedResponse, check_text_complete,
                                      check_not_a_full_page, count_complete_csv_rows,
                                      parse_unit_string, table_from_text)
from multilc.errors import MultilcError

CONTRACT = ResponseContract(
    archive="demo", what="detection table",
    fields=(Field("id", "int"),
            Field("time", "float", unit=u.d, valid=(33282.0, 69807.0)),
            Field("flux", "float", unit=u.Jy, sentinels=(-999.0,)),
            Field("err", "float", unit=u.Jy, sentinels=(-999.0,), positive=True),
            Field("flag", "int", required=False, fill=0)))


def _table(**over):
    cols = {"id": [1, 2, 3, 4], "time": [58000.0, 58001.0, -999.0, 58003.0],
            "flux": [1.0, -999.0, 3.0, 4.0], "err": [0.1, 0.2, 0.3, -0.4]}
    cols.update(over)
    return Table(cols)


def test_sentinels_ranges_and_signs_are_dropped_and_counted():
    checked = CONTRACT.check(_table())
    assert checked["id"].tolist() == [1]
    assert checked.dropped == {"flux == -999 (missing)": 1,
                               "time outside [33282, 69807] d": 1, "err <= 0": 1}
    assert checked.n_rows == 4 and checked.index.tolist() == [0]
    # optional column absent: filled, no drop
    assert checked["flag"].tolist() == [0]


def test_each_bad_row_is_counted_once():
    t = _table(flux=[1.0, -999.0, -999.0, 4.0], err=[0.1, -999.0, 0.3, 0.4])
    checked = CONTRACT.check(t)
    assert sum(checked.dropped.values()) + len(checked) == 4


def test_declared_units_are_converted_or_refused():
    t = _table()
    t["flux"].unit = u.mJy
    t["err"].unit = u.mJy
    checked = CONTRACT.check(t)
    assert checked["flux"][0] == pytest.approx(1e-3)
    assert checked.quantity("flux").unit == u.Jy
    t["flux"].unit = u.s
    with pytest.raises(ResponseError, match="declared in s"):
        CONTRACT.check(t, objectids=[7])


def test_units_given_beside_the_table_and_in_arrow_metadata():
    t = _table()
    checked = CONTRACT.check(t, units={"flux": "mJy"})
    assert checked["flux"][0] == pytest.approx(1e-3)
    arrow = pa.table({k: np.asarray(t[k]) for k in t.colnames})
    field = arrow.schema.field("flux").with_metadata({b"unit": b"uJy"})
    arrow = arrow.set_column(2, field, arrow["flux"])
    assert CONTRACT.check(arrow)["flux"][0] == pytest.approx(1e-6)


def test_unreadable_unit_is_an_error():
    t = _table()
    t["time"].unit = u.Unit("blargs", parse_strict="silent")
    with pytest.raises(ResponseError, match="blargs"):
        CONTRACT.check(t)
    assert parse_unit_string("MJD") == u.d
    assert parse_unit_string("e-/s") == u.electron / u.s


def test_missing_columns_and_wrong_types_are_typed_errors():
    with pytest.raises(ResponseError) as info:
        CONTRACT.check(Table({"ID": [1], "TIME": [1.0]}), objectids=[3, 4])
    err = info.value
    assert isinstance(err, MultilcError)
    assert err.archive == "demo" and err.objectids == [3, 4]
    assert "flux" in str(err) and "detection table" in str(err)
    with pytest.raises(ResponseError, match="should hold float"):
        CONTRACT.check(_table(flux=["a", "b", "c", "d"]))
    with pytest.raises(ResponseError, match="should hold int"):
        CONTRACT.check(_table(id=[1.5, 2, 3, 4]))


def test_case_variants_and_masked_cells():
    t = Table({"ID": [1, 2], "Time": [58000.0, 58001.0],
               "FLUX": MaskedColumn([1.0, 2.0], mask=[False, True]), "err": [1.0, 1.0]})
    checked = CONTRACT.check(t)
    assert checked["id"].tolist() == [1]
    assert checked.dropped == {"flux missing (null/NaN)": 1}


def test_large_integer_ids_stay_exact():
    big = 2 ** 60 + 1
    t = _table(id=np.array([big, 2, 3, 4], dtype="int64"))
    assert CONTRACT.check(t)["id"][0] == big
    text = "id,time,flux,err\n%d,58000,1,0.1\n" % big
    t = table_from_text(text, "csv", archive="demo", what="x")
    assert CONTRACT.check(t)["id"][0] == big


def test_text_is_never_taken_for_a_file_name(tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("id,time,flux,err\n1,58000,1,0.1\n")
    with pytest.raises(ResponseError):
        t = table_from_text(str(path), "csv", archive="demo", what="answer")
        CONTRACT.check(t)


def test_cut_off_last_row_is_flagged():
    text = "id,time,flux,err\n1,58000,1,0.1\n2,58001,1"
    with pytest.raises(TruncatedResponse) as info:
        table_from_text(text, "csv", archive="demo", what="answer", objectids=[5])
    assert info.value.transient and info.value.objectids == [5]
    check_text_complete("id,time\n1,2")  # complete row without newline: fine


def test_csv_rows_are_counted_without_parsing_and_a_cut_row_is_flagged():
    text = "id,time,flux,err\n1,58000,1,0.1\n\n2,58001,1,0.1\n"
    # the number of rows astropy reads from the same text
    assert count_complete_csv_rows(text, archive="demo") == \
        len(table_from_text(text, "csv", archive="demo", what="answer")) == 2
    assert count_complete_csv_rows("id,time,flux,err\n", archive="demo") == 0
    assert count_complete_csv_rows("", archive="demo") == 0
    with pytest.raises(TruncatedResponse) as info:
        count_complete_csv_rows(text + "3,580", archive="demo", what="answer",
                                objectids=[7])
    assert info.value.transient and info.value.objectids == [7]
    assert info.value.archive == "demo"


def test_an_answer_filling_a_whole_page_is_refused():
    check_not_a_full_page(49_999, 50_000, archive="demo")  # fewer rows: whole
    with pytest.raises(ResponseError, match=r"fills a whole page \(50000 rows") as info:
        check_not_a_full_page(50_000, 50_000, archive="demo", what="answer", objectids=[3])
    assert info.value.archive == "demo" and info.value.objectids == [3]
    assert not info.value.transient  # asking again gives the same page


def test_html_is_recognised_with_its_title():
    page = "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
    assert looks_like_html(page) and looks_like_html(page.encode())
    assert html_title(page) == "503 Service Unavailable"
    with pytest.raises(HTMLPageError, match="503 Service Unavailable"):
        table_from_text(page, "csv", archive="demo", what="answer")


def _votable(status):
    return f"""<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><INFO name="QUERY_STATUS" value="{status}">why</INFO>
<TABLE><FIELD name="id" datatype="long"/><FIELD name="time" datatype="double" unit="d"/>
<FIELD name="flux" datatype="double" unit="mJy"/><FIELD name="err" datatype="double" unit="mJy"/>
<DATA><TABLEDATA><TR><TD>1</TD><TD>58000</TD><TD>5</TD><TD>1</TD></TR></TABLEDATA></DATA>
</TABLE></RESOURCE></VOTABLE>"""


def test_votable_status_and_units():
    t = table_from_text(_votable("OK").encode(), "votable", archive="demo", what="v")
    checked = CONTRACT.check(t)
    assert checked["flux"][0] == pytest.approx(5e-3)
    for status, match in (("OVERFLOW", "truncated"), ("ERROR", "reported an error")):
        with pytest.raises(ResponseError, match=match):
            table_from_text(_votable(status), "votable", archive="demo", what="v")
    cut = _votable("OK")[:-60]
    # a document without its closing tag was cut off in transmission (transient)
    with pytest.raises(TruncatedResponse, match="cut off"):
        table_from_text(cut, "votable", archive="demo", what="v")


def test_fuzzed_csv_answers_end_in_data_drops_or_typed_errors():
    rng = np.random.default_rng(12345)
    good = "id,time,flux,err\n" + "".join(
        f"{i},{58000 + i},{rng.normal(5, 1):.4f},{abs(rng.normal(0.2, 0.05)):.4f}\n"
        for i in range(20))
    outcomes = {"data": 0, "error": 0}
    for _ in range(300):
        b = bytearray(good.encode())
        for _ in range(rng.integers(1, 4)):
            action = rng.integers(0, 4)
            if action == 0:
                b = b[:rng.integers(0, len(b))]
            elif action == 1 and len(b):
                b[rng.integers(0, len(b))] = int(rng.integers(32, 127))
            elif action == 2:
                b = b.replace(b"5", b"-999", 1)
            elif action == 3:
                b = b.replace(b"0.", b"nan,", 1)
        try:
            t = table_from_text(bytes(b), "csv", archive="demo", what="fuzz")
            checked = CONTRACT.check(t)
        except MultilcError:
            outcomes["error"] += 1
            continue
        outcomes["data"] += 1
        assert np.all(np.isfinite(checked["flux"])) and np.all(checked["err"] > 0)
        assert np.all((checked["time"] >= 33282) & (checked["time"] <= 69807))
        assert len(checked) + sum(checked.dropped.values()) == checked.n_rows
    assert outcomes["data"] > 0 and outcomes["error"] > 0
