"""Fuzzing the ZTF, Pan-STARRS, HCV and WISE readers with malformed answers.

For each reader, at least 300 answers derived from a valid one with a fixed
seed (truncation at a random byte, bit flips, cells replaced by NaN/inf/
sentinels/huge numbers/text, columns dropped or renamed or upper-cased, empty
answers, header-only answers, HTML pages, wrong unit strings, wrong column
types, nulls) go through the reader's ``parse`` (the step after the HTTP
request; ZTF also through its parquet file reader).  Every case must end as

* data -- nothing dropped;
* rows dropped and counted by a named reason (``ParseResult.dropped``);
* a typed multilc error: raised (`multilc.errors.MultilcError`), or a
  per-target `~multilc.collect.Failure` whose ``error_type`` is a multilc
  error type;

and no value outside the contract may reach the light curve: observation
time outside ``MJD_RANGE``, a non-finite flux, an uncertainty that is not
> 0 (NaN only for an upper limit).  To keep the suite fast, the two slow
steps after the checks are replaced by recorders that assert exactly that:
`multilc.timescales.to_mjd_tdb` (sees the native times) and
``MultiBandLightCurve.from_arrays`` (sees the final columns).
"""
import io
import json
import re
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

pa = pytest.importorskip("pyarrow")

from multilc.archives import hcv, panstarrs, wise, ztf  # noqa: E402
from multilc.collect.api import Batch, ParseResult  # noqa: E402
from multilc.collect.contract import MJD_RANGE  # noqa: E402
from multilc.errors import MultilcError  # noqa: E402

SEED = 20261202
N_CASES = 320
#: Most seconds one case may take (a hang is a failure).
CASE_SECONDS = 5.0

POOL = ["nan", "NaN", "inf", "-inf", "-999", "-999.0", "99.99", "1e308", "-1e308",
        "1e400", "abc", "", "0", "-0.0", "9223372036854775808", "1e-320", "TRUE",
        "2400000.5", "-1", "\x00", "𝓍"]
UNITS = ["Jy", "mJy", "uJy", "s", "furlong", "", "deg", "MJD", "mag", "nanomaggies",
         "ct/s", "erg/s/cm2/Hz", "%%bad%%"]
HTML = "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>" \
       "<body>down</body></html>"


def _typed_names():
    names, todo = set(), [MultilcError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names | {"UnknownBandError"}       # HCV's per-band failure label


TYPED = _typed_names()


# --------------------------------------------------------------------------- recorders
class Violations(list):
    def check(self, ok, what):
        if not np.all(ok):
            self.append(what)


VIOLATIONS = Violations()


class StubLC:
    """Stands in for MultiBandLightCurve in the readers; checks what reaches it."""

    def __init__(self, n=0):
        self.n = n
        self.ds = SimpleNamespace(attrs={})      # file readers note drops here

    def __len__(self):
        return self.n

    @classmethod
    def empty(cls):
        return cls(0)

    @classmethod
    def concat(cls, pieces):
        return cls(sum(len(p) for p in pieces))

    @classmethod
    def from_arrays(cls, objectid, band, time, flux, flux_err, **kw):
        t = np.asarray(time.mjd, float)
        f = u.Quantity(flux).to_value(u.mJy)
        e = u.Quantity(flux_err).to_value(u.mJy)
        upper = np.asarray(kw.get("upper_limit", np.zeros(len(f), bool)), bool)
        V = VIOLATIONS
        V.check(len(t) == len(f) == len(e) == len(objectid) == len(band), "lengths")
        # barycentric correction < 0.01 d; the contract bounds the native time
        V.check((t > MJD_RANGE[0] - 1) & (t < MJD_RANGE[1] + 1), f"time {t}")
        V.check(np.isfinite(f), f"flux {f}")
        V.check((np.isfinite(e) & (e > 0)) | (upper & np.isnan(e)), f"flux_err {e}")
        if "mag" in kw:
            m = u.Quantity(kw["mag"]).to_value(u.mag)
            # every reader's magnitude range lies inside [-5, 40] (ZTF [-2, 30],
            # HCV [0, 40], NEOWISE [-5, 30]): 99.99 or -999 must not get through
            V.check(np.isfinite(m) & (m >= -5) & (m <= 40), f"mag {m}")
        return cls(len(t))


def fake_tdb(values, system, ra=None, dec=None):
    v = np.asarray(values, float)
    VIOLATIONS.check(np.isfinite(v) & (v >= MJD_RANGE[0]) & (v <= MJD_RANGE[1]),
                     f"native time {v} ({system})")
    if ra is not None:
        r = u.Quantity(ra).to_value(u.deg)
        d = u.Quantity(dec).to_value(u.deg)
        VIOLATIONS.check(np.isfinite(r) & np.isfinite(d) & (np.abs(d) <= 90), "position")
    return v


@pytest.fixture(autouse=True)
def recorders(monkeypatch):
    for mod in (ztf, panstarrs, hcv, wise):
        monkeypatch.setattr(mod, "MultiBandLightCurve", StubLC)
        monkeypatch.setattr(mod, "to_mjd_tdb", fake_tdb)
    VIOLATIONS.clear()
    yield


# --------------------------------------------------------------------------- mutators
def _csv_rows(text):
    lines = text.splitlines()
    return [line.split(",") for line in lines]


def mutate_text(text, rng, *, kind="csv"):
    """One malformed variant of *text* (CSV, JSON or VOTable text)."""
    ops = rng.integers(1, 4)
    out = text
    for _ in range(ops):
        op = int(rng.integers(0, 13))
        if op in (11, 12):                                    # negate / zero numbers
            nums = list(re.finditer(r"(?<![\w.+-])\d+(\.\d+)?(e[-+]?\d+)?", out))
            for m in reversed([m for m in nums if rng.random() < 0.3]):
                new = "-" + m.group(0) if op == 11 else "0"
                out = out[:m.start()] + new + out[m.end():]
        elif op == 0 and out:                                 # cut at a random byte
            b = out.encode("utf-8", "surrogatepass")
            out = b[:int(rng.integers(0, len(b)))].decode("utf-8", "replace")
        elif op == 1 and out:                                 # bit flip
            b = bytearray(out.encode("utf-8", "surrogatepass"))
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
            out = bytes(b).decode("utf-8", "replace")
        elif op == 2:                                         # a cell -> odd value
            if kind == "csv":
                rows = _csv_rows(out)
                if len(rows) > 1:
                    r = int(rng.integers(1, len(rows)))
                    if rows[r]:
                        rows[r][int(rng.integers(0, len(rows[r])))] = str(rng.choice(POOL))
                    out = "\n".join(",".join(x) for x in rows) + "\n"
            else:
                nums = list(re.finditer(r"-?\d+\.?\d*(e[-+]?\d+)?", out))
                if nums:
                    m = nums[int(rng.integers(0, len(nums)))]
                    new = str(rng.choice(POOL))
                    if kind == "json" and new in ("abc", "", "\x00", "𝓍", "TRUE"):
                        new = json.dumps(new)
                    out = out[:m.start()] + new + out[m.end():]
        elif op == 3 and kind == "csv":                       # drop / rename a column
            rows = _csv_rows(out)
            if rows and rows[0]:
                j = int(rng.integers(0, len(rows[0])))
                if rng.random() < 0.5:
                    rows = [[c for k, c in enumerate(r) if k != j] for r in rows]
                else:
                    rows[0][j] = rows[0][j] + "_x"
                out = "\n".join(",".join(x) for x in rows) + "\n"
        elif op == 4:                                         # empty answer
            out = ""
        elif op == 5 and kind == "csv":                       # header only
            out = out.split("\n", 1)[0] + "\n"
        elif op == 6:                                         # HTML instead of data
            out = HTML
        elif op == 7 and kind == "csv":                       # duplicate / shuffle rows
            rows = _csv_rows(out)
            if len(rows) > 2:
                body = rows[1:]
                rng.shuffle(body)
                body.append(body[0])
                out = "\n".join(",".join(x) for x in [rows[0]] + body) + "\n"
        elif op == 8:                                         # upper-case names
            head, _, rest = out.partition("\n")
            out = head.upper() + "\n" + rest
        elif op == 9:                                         # wrong unit strings
            unit = str(rng.choice(UNITS))
            if kind == "votable":
                out = re.sub(r'unit="[^"]*"', f'unit="{unit}"', out, count=1) \
                    if 'unit="' in out else out.replace('<FIELD ', f'<FIELD unit="{unit}" ', 1)
            elif kind == "json":
                out = out.replace('"type":', f'"unit": "{unit}", "type":', 1)
        elif op == 10:                                        # huge numbers
            out = re.sub(r"\b0\.0\d+", "1e300", out, count=1)
    return out


def mutate_arrow(table, rng):
    """One malformed variant of an arrow table."""
    ops = rng.integers(1, 4)
    t = table
    for _ in range(ops):
        op = int(rng.integers(0, 10))
        names = [n for n in t.column_names if not n.startswith("_")]
        if not names:
            break
        name = names[int(rng.integers(0, len(names)))]
        i = t.schema.get_field_index(name)
        col = t[name]
        if op == 0:                                           # drop a column
            t = t.remove_column(i)
        elif op == 1:                                         # rename / upper-case
            new = name.upper() if rng.random() < 0.5 else name + "_x"
            t = t.rename_columns([new if n == name else n for n in t.column_names])
        elif op == 2 and t.num_rows:                          # odd values
            if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
                vals = col.to_numpy(zero_copy_only=False).astype(float)
                k = int(rng.integers(0, len(vals)))
                vals[k] = rng.choice([np.nan, np.inf, -np.inf, -999.0, 99.99, 1e308,
                                      -1e308, 0.0, -1.0, 1e30])
                try:
                    arr = pa.array(vals).cast(col.type, safe=False)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    arr = pa.array(vals)
                t = t.set_column(i, pa.field(name, arr.type, metadata=t.schema.field(i).metadata),
                                 arr)
        elif op == 3 and t.num_rows:                          # nulls
            mask = rng.random(t.num_rows) < 0.4
            arr = pa.array(col.to_pylist(), col.type, mask=mask)
            t = t.set_column(i, t.schema.field(i), arr)
        elif op == 4:                                         # wrong type: text
            arr = pa.array([str(v) + ("x" if rng.random() < 0.3 else "")
                            for v in col.to_pylist()], pa.string())
            t = t.set_column(i, pa.field(name, pa.string()), arr)
        elif op == 5:                                         # empty table
            t = t.slice(0, 0)
        elif op == 6:                                         # wrong unit metadata
            unit = str(rng.choice(UNITS)).encode()
            t = t.set_column(i, t.schema.field(i).with_metadata({b"unit": unit}), col)
        elif op == 7 and t.num_rows:                          # huge values
            if pa.types.is_floating(col.type):
                with np.errstate(over="ignore"):
                    vals = col.to_numpy(zero_copy_only=False).astype(float) * 1e200
                t = t.set_column(i, t.schema.field(i), pa.array(vals).cast(col.type,
                                                                           safe=False))
        elif op == 8 and t.num_rows:                          # cut rows
            t = t.slice(0, int(rng.integers(0, t.num_rows)))
        elif op == 9 and t.num_rows and pa.types.is_floating(col.type):   # signs
            vals = col.to_numpy(zero_copy_only=False).astype(float)
            with np.errstate(invalid="ignore"):
                vals = np.where(rng.random(len(vals)) < 0.5, -vals, 0.0 * vals)
            t = t.set_column(i, t.schema.field(i), pa.array(vals).cast(col.type))
    return t


# --------------------------------------------------------------------------- running
def run_case(fn):
    """'data' | 'dropped' | 'typed error'; anything else fails the test."""
    start = time.monotonic()
    n_before = len(VIOLATIONS)
    try:
        res = fn()
    except MultilcError:
        outcome = "typed error"
    else:
        if isinstance(res, ParseResult):
            bad = [f for f in res.failures if f.error_type not in TYPED]
            assert not bad, f"untyped failure: {bad[0]}"
            for reason, count in res.dropped.items():
                assert isinstance(reason, str) and reason and int(count) > 0
            outcome = "typed error" if res.failures else (
                "dropped" if res.dropped else "data")
        else:
            outcome = "data" if len(res) else "typed error"
    assert time.monotonic() - start < CASE_SECONDS, "case took too long"
    assert len(VIOLATIONS) == n_before, f"value outside the contract: {VIOLATIONS[-1]}"
    return outcome


def _batch(name, n=1, **options):
    return Batch(name, 0, np.arange(1, n + 1), np.full(n, 150.0), np.full(n, 2.0),
                 np.array([""] * n), options)


def _report(reader, outcomes):
    print(f"\n[fuzz {reader}] {sum(outcomes.values())} cases: " +
          ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    assert sum(outcomes.values()) >= 300


# --------------------------------------------------------------------------- ZTF
ZTF_HEADER = ("oid,expid,hjd,mjd,mag,magerr,catflags,filtercode,ra,dec,chi,sharp,"
              "filefracday,field,ccdid,qid,limitmag,magzp,magzprms,clrcoeff,clrcounc,"
              "exptime,airmass,programid")


def _ztf_csv():
    lines = [ZTF_HEADER]
    for e in range(6):
        lines.append(f"70{e % 2},{e},{2458300.75 + 3.5 * e},0,{17.0 + 0.1 * e},0.02{e},"
                     f"{32768 if e == 5 else 0},{'zg' if e % 2 else 'zr'},150.0,2.0"
                     + ",1" * 14)
    return "\n".join(lines) + "\n"


def _ztf_rows():
    lists = lambda vals, t: pa.array(vals, pa.list_(t))  # noqa: E731
    return pa.table({
        "objectid": pa.array([101, 102], pa.int64()),
        "filterid": pa.array([1, 2], pa.int8()),
        "objra": pa.array([150.0, 150.0001], pa.float32()),
        "objdec": pa.array([2.0, 2.0], pa.float32()),
        "lightcurve.hmjd": lists([[58300.5, 58301.5, 58302.5], [58310.5, 58311.5]],
                                 pa.float64()),
        "lightcurve.mag": lists([[18.0, 18.1, 18.2], [17.0, 17.1]], pa.float32()),
        "lightcurve.magerr": lists([[0.05, 0.05, 0.06], [0.03, 0.03]], pa.float32()),
        "lightcurve.catflags": lists([[0, 0, 32768], [0, 0]], pa.int32()),
        "_target": pa.array([0, 0], pa.int64()),
        "_separation_arcsec": pa.array([0.1, 0.4], pa.float64())})


def test_fuzz_ztf(tmp_path):
    rng = np.random.default_rng(SEED)
    arch = ztf.ZTF(route="api")
    base_opts = {"catflags_mask": 32768, "match": "all", "bands": ("g", "r", "i")}
    api_batch = _batch("ztf", route="api", **base_opts)
    bulk_batch = _batch("ztf", route="bulk", **base_opts)
    good_csv, good_rows = _ztf_csv(), _ztf_rows()
    assert run_case(lambda: arch.parse({"route": "api", "targets": [
        {"objectid": 1, "answer": good_csv}]}, api_batch)) == "dropped"   # catflags
    outcomes = Counter()
    for k in range(N_CASES):
        if k % 3 == 0:
            rows = mutate_arrow(good_rows, rng)
            outcomes[run_case(lambda rows=rows: arch.parse(rows, bulk_batch))] += 1
        elif k % 10 == 1:
            # a DR parquet file, bytes damaged: the file reader's typed errors
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(good_rows.drop(["_target", "_separation_arcsec"]).rename_columns(
                [c.replace("lightcurve.", "") for c in good_rows.column_names
                 if not c.startswith("_")]), buf)
            b = bytearray(buf.getvalue())
            for _ in range(int(rng.integers(1, 4))):
                j = int(rng.integers(0, len(b)))
                b[j] ^= 1 << int(rng.integers(0, 8))
            if rng.random() < 0.3:
                b = b[:int(rng.integers(0, len(b)))]
            path = tmp_path / f"case{k}.parquet"
            path.write_bytes(bytes(b))
            outcomes[run_case(lambda path=path: ztf.read_parquet_file(path))] += 1
        else:
            text = mutate_text(good_csv, rng)
            outcomes[run_case(lambda text=text: arch.parse(
                {"route": "api", "targets": [{"objectid": 1, "answer": text}]},
                api_batch))] += 1
    _report("ztf", outcomes)


# --------------------------------------------------------------------------- Pan-STARRS
PS1_TYPES = {"objID": "long", "detectID": "long", "filterID": "unsignedByte",
             "obsTime": "double", "ra": "double", "dec": "double", "psfFlux": "float",
             "psfFluxErr": "float", "infoFlag": "int", "raMean": "double",
             "decMean": "double", "nDetections": "short"}
PS1_OBJ = 108001500000000001


def _ps1_tables():
    det = Table({"objID": np.full(6, PS1_OBJ), "detectID": np.arange(6),
                 "filterID": np.arange(6) % 5 + 1, "obsTime": 55500.25 + 7.5 * np.arange(6),
                 "ra": np.full(6, 150.0), "dec": np.full(6, 2.0),
                 "psfFlux": 1e-4 * (1 + 0.1 * np.arange(6)), "psfFluxErr": np.full(6, 2e-6),
                 "infoFlag": np.zeros(6, int)})
    det["psfFlux"][4] = -999.0
    mean = Table({"objID": [PS1_OBJ], "raMean": [150.0], "decMean": [2.0],
                  "nDetections": [6]})
    return mean, det


def _ps1_render(table, fmt):
    if fmt == "csv":
        out = io.StringIO()
        table.write(out, format="ascii.csv")
        return out.getvalue()
    if fmt == "json":
        info = [{"name": c, "type": PS1_TYPES[c], "db_type": "x"} for c in table.colnames]
        data = [[str(int(v)) if PS1_TYPES[c] == "long" else v.item()
                 for c, v in zip(table.colnames, row)] for row in table.iterrows()]
        return json.dumps({"info": info, "data": data})
    buf = io.BytesIO()
    t = table.copy()
    if "psfFlux" in t.colnames:
        t["psfFlux"].unit = u.Jy
        t["psfFluxErr"].unit = u.Jy
    t.write(buf, format="votable")
    return buf.getvalue().decode()


def test_fuzz_panstarrs(tmp_path):
    rng = np.random.default_rng(SEED + 1)
    arch = panstarrs.PanSTARRS(route="service")
    batch = _batch("panstarrs", route="service")
    mean, det = _ps1_tables()
    outcomes = Counter()
    for k in range(N_CASES):
        fmt = ("csv", "json", "votable")[k % 3]
        mean_text, det_text = _ps1_render(mean, fmt), _ps1_render(det, fmt)
        if k % 8 == 7:
            # a saved detection file, damaged: the file reader's typed errors
            path = tmp_path / f"case{k}.{ {'votable': 'xml'}.get(fmt, fmt)}"
            path.write_bytes(mutate_text(det_text, rng, kind=fmt).encode("utf-8",
                                                                         "surrogatepass"))
            outcomes[run_case(lambda path=path: panstarrs.read_detection_file(path))] += 1
            continue
        if k % 5 == 0:
            mean_text = mutate_text(mean_text, rng, kind=fmt)
        else:
            det_text = mutate_text(det_text, rng, kind=fmt)
        raw = {"route": "service", "format": fmt, "targets": [
            {"objectid": 1, "ra": 150.0, "dec": 2.0, "mean": mean_text,
             "detections": {PS1_OBJ: det_text}, "error": None}]}
        outcomes[run_case(lambda raw=raw: arch.parse(raw, batch))] += 1
    _report("panstarrs", outcomes)


# --------------------------------------------------------------------------- HCV
def _hcv_texts():
    summary = "MatchID,RA,Dec,Filter\n1905457,150.0,2.00005,ACS_F814W\n"
    rows = ["MatchID,Filter,MJD,CorrMag,MagErr,ImageName"]
    for e in range(6):
        rows.append(f"1905457,{'ACS_F814W' if e % 2 else 'WFC3_F475W'},{53000.25 + 9.5 * e},"
                    f"{20.0 + 0.1 * e},0.05,img{e}")
    return summary, "\n".join(rows) + "\n"


def test_fuzz_hcv(tmp_path):
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(SEED + 2)
    arch = hcv.HcvArchive()
    batch = _batch("hcv", match="nearest")
    good_summary, good_lc = _hcv_texts()
    outcomes = Counter()
    for k in range(N_CASES):
        summary, lc_text = good_summary, good_lc
        if k % 8 == 7:
            path = tmp_path / f"case{k}.csv"
            path.write_bytes(mutate_text(lc_text, rng).encode("utf-8", "surrogatepass"))
            coord = SkyCoord(150.0 * u.deg, 2.0 * u.deg)
            outcomes[run_case(
                lambda path=path, coord=coord: hcv.read_hcv_file(path, coord=coord))] += 1
            continue
        if k % 4 == 0:
            summary = mutate_text(summary, rng)
        else:
            lc_text = mutate_text(lc_text, rng)
        raw = {"targets": [{"objectid": 1, "ra": 150.0, "dec": 2.0, "label": "",
                            "summary": summary, "lightcurves": {1905457: lc_text}}]}
        outcomes[run_case(lambda raw=raw: arch.parse(raw, batch))] += 1
    _report("hcv", outcomes)


# --------------------------------------------------------------------------- WISE
def _with_match(table):
    n = table.num_rows
    return table.append_column("_target", pa.array(np.zeros(n, "int64"))).append_column(
        "_separation_arcsec", pa.array(np.linspace(0.1, 0.9, n)))


def test_fuzz_wise():
    from multilc.testing import catalogs

    rng = np.random.default_rng(SEED + 3)
    unwise = wise.UnWISE()
    neowise = wise.NEOWISE()
    ub = _batch("unwise", **unwise.batch_options())
    nb = _batch("neowise", **neowise.batch_options())
    good_u = _with_match(catalogs.unwise_table(
        [150.0] * 5, [2.0] * 5, mjd=55300.5 + 180 * np.arange(5),
        flux=[120.0, -4.0, 80.0, 121.0, 60.0], dflux=[3.0] * 5, band=[1, 1, 2, 1, 2],
        primary=[1, 1, 1, 0, 1]))
    good_n = _with_match(catalogs.neowise_table(
        [150.0] * 4, [2.0] * 4, mjd=56700.1 + np.arange(4), w1mpro=[14.0, 14.1, 14.2, 12.0],
        w1sigmpro=[0.02, np.nan, 0.02, 0.01], w2mpro=[13.5, np.nan, 13.6, 11.5],
        w2sigmpro=[0.03, np.nan, 0.03, 0.01], cc_flags=["0000", "0000", "D000", "0000"],
        qual_frame=[10, 10, 10, 0]))
    outcomes = Counter()
    for k in range(N_CASES):
        if k % 2:
            t = mutate_arrow(good_u, rng)
            outcomes[run_case(lambda t=t: unwise.parse(t, ub))] += 1
        else:
            t = mutate_arrow(good_n, rng)
            outcomes[run_case(lambda t=t: neowise.parse(t, nb))] += 1
    _report("wise", outcomes)
