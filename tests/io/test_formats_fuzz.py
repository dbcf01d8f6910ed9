"""Fuzz multilc's own file formats with malformed files (fixed seed).

For each format (parquet, netCDF, ECSV) at least 300 malformed files are made
from one valid file: truncation at a random byte, bit flips, zeroed byte
ranges, missing/renamed/duplicated columns, wrong types, NaN/inf/sentinels,
wrong unit strings, empty tables, damaged metadata JSON/YAML, orphan object
ids, foreign times.  Every case must end as

* a `FileFormatError` naming the file, or
* a light curve that satisfies the contract, checked here independently of
  `multilc.io.checks`: times finite and plausible, no infinite values,
  uncertainties not negative, every row's object and band described, units
  the storage units.

Any other exception, or a contract violation reaching the result, fails the
test.  The outcome counts are printed (``pytest -s``) for the closing note.
"""
import collections
import json
import re
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.time import Time

from multilc import MultiBandLightCurve, make_events
from multilc.errors import FileFormatError

SEED = 20261202
N_CASES = 300
UNIT_POOL = ["Jy", "s", "", "blah", "mag", "erg / (s cm2 Angstrom)", "W m-2 Hz-1",
             "uJy", "electron / s", "deg", "d", "yr", "nan", "mJy mJy", "1e3 mJy"]
VALUE_POOL = [np.nan, np.inf, -np.inf, -999.0, 99.99, 1e300, -1.0, 0.0, 2 ** 63]


def base_lc():
    cal = MultiBandLightCurve.from_arrays(
        objectid=[1, 1, 1, 2, 2, 3, 3, 3],
        band=["ztf:g", "ztf:g", "ztf:r", "wise:W1", "ztf:g", "gaia:G", "gaia:G", "ztf:r"],
        time=Time(np.linspace(58000, 58100, 8), format="mjd", scale="tdb"),
        flux=np.linspace(0.5, 4.0, 8) * u.mJy, flux_err=np.full(8, 0.05) * u.mJy,
        mag=np.linspace(16, 18, 8) * u.mag, mag_err=np.full(8, 0.02) * u.mag,
        upper_limit=[False] * 7 + [True], flag=np.arange(8),
        source_id=np.arange(100, 108), separation=np.full(8, 0.3) * u.arcsec,
        label={1: "A", 2: "B", 3: "C"}, ra={1: 10 * u.deg, 2: 20 * u.deg, 3: 30 * u.deg},
        dec={1: -5 * u.deg, 2: 5 * u.deg, 3: 15 * u.deg})
    ev = MultiBandLightCurve.from_events(make_events(
        [2], ["icecube"], Time([58050.5], format="mjd", scale="tdb"), event_id=["IC7"],
        energy=[1000.0] * u.GeV, error_radius=[0.5] * u.deg, separation=[0.2] * u.deg))
    lc = MultiBandLightCurve.concat([cal, ev])
    lc.meta = {"archives": ["ztf", "wise"], "radius": "2.0 arcsec"}
    return lc


def contract_problems(lc):
    """Independent check of a light curve read from a fuzzed file."""
    problems = []
    t = np.asarray(lc.time.mjd)
    if not np.all(np.isfinite(t)) or np.any((t < 0) | (t > 1e5)):
        problems.append("time outside 0-1e5 MJD or not finite")
    if lc.time.scale != "tdb":
        problems.append("time scale")
    ds = lc.ds
    if ds["flux"].attrs.get("units") != "mJy":
        problems.append("flux unit")
    for name in ("flux", "flux_err", "mag", "mag_err", "separation"):
        if name in ds and np.isinf(ds[name].values).any():
            problems.append(f"inf in {name}")
    for name in ("flux_err", "mag_err", "separation"):
        if name in ds and np.any(ds[name].values < 0):
            problems.append(f"negative {name}")
    oo, ob = ds["obs_object"].values, ds["obs_band"].values
    if len(oo) and (oo.min() < 0 or oo.max() >= ds.sizes["object"]):
        problems.append("object code outside the object table")
    if len(ob) and (ob.min() < 0 or ob.max() >= ds.sizes["band"]):
        problems.append("band code outside the band table")
    et = ds["event_time"].values
    if not np.all(np.isfinite(et)) or np.any((et < 0) | (et > 1e5)):
        problems.append("event time")
    ra, dec = ds["ra"].values, ds["dec"].values
    if np.any((ra < 0) | (ra > 360)) or np.any(np.abs(dec) > 90):
        problems.append("position")
    return problems


# --------------------------------------------------------------------------- mutations
def flip_bits(data, rng):
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))
    return bytes(data)


def byte_mutation(data, rng):
    kind = rng.choice(["truncate", "flip", "zero", "garbage", "empty", "duplicate"],
                      p=[0.35, 0.4, 0.1, 0.05, 0.05, 0.05])
    if kind == "truncate":
        return "truncate", data[:int(rng.integers(len(data)))]
    if kind == "flip":
        return "bit flips", flip_bits(data, rng)
    if kind == "zero":
        i = int(rng.integers(len(data)))
        n = int(rng.integers(1, 64))
        return "zeroed range", data[:i] + b"\0" * min(n, len(data) - i) + data[i + n:]
    if kind == "garbage":
        return "garbage", rng.bytes(int(rng.integers(1, 2000)))
    if kind == "empty":
        return "empty file", b""
    i = int(rng.integers(len(data)))
    return "duplicated tail", data[:i] + data[i // 2:]


# parquet ------------------------------------------------------------------
def parquet_structural(path, rng):
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    kind = rng.choice(["drop", "rename", "retype", "values", "unit", "json", "empty",
                       "orphan", "json_value", "dup"])
    names = table.column_names
    if kind == "drop":
        name = str(rng.choice(names))
        table = table.drop_columns([name])
        desc = f"drop column {name}"
    elif kind == "rename":
        i = int(rng.integers(len(names)))
        new = list(names)
        new[i] = str(rng.choice(["FLUX", "flux ", "time2", "objid", names[i].upper()]))
        table = table.rename_columns(new)
        desc = f"rename {names[i]} -> {new[i]}"
    elif kind == "retype":
        name = str(rng.choice(names))
        target = rng.choice(["string", "float64", "int8", "bool"])
        try:
            col = table.column(name).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            col = pa.array([str(x) for x in table.column(name).to_pylist()])
        table = table.set_column(names.index(name), pa.field(name, col.type,
                                 metadata=table.schema.field(name).metadata), col)
        desc = f"retype {name} -> {col.type}"
    elif kind == "values":
        name = str(rng.choice([n for n in names if n not in ("label", "band")]))
        col = table.column(name).to_numpy().astype("float64")
        col[int(rng.integers(len(col)))] = rng.choice(VALUE_POOL)
        field = table.schema.field(name)
        arr = pa.array(col)
        if pa.types.is_integer(field.type):
            arr = pa.array(col, pa.float64())
        table = table.set_column(names.index(name), pa.field(name, arr.type,
                                 metadata=field.metadata), arr)
        desc = f"value in {name}"
    elif kind == "unit":
        name = str(rng.choice(names))
        unit = str(rng.choice(UNIT_POOL))
        field = table.schema.field(name)
        table = table.set_column(names.index(name), field.with_metadata(
            {b"unit": unit.encode()}), table.column(name))
        desc = f"unit of {name} -> {unit!r}"
    elif kind == "json":
        raw = meta[b"multilc"]
        cut = int(rng.integers(len(raw)))
        meta[b"multilc"] = rng.choice([raw[:cut], raw[:cut] + b"}" + raw[cut + 1:],
                                       b"[]", b"null", b"NaN", raw.replace(b'"', b"'", 1)])
        desc = "damaged metadata JSON"
    elif kind == "json_value":
        doc = json.loads(meta[b"multilc"])
        block = str(rng.choice(["objects", "bands", "events", "units",
                                "multilc_provenance", "time_scale", "format_version"]))
        if isinstance(doc[block], dict) and doc[block]:
            key = str(rng.choice(sorted(doc[block])))
            choices = [None, "x", [1, 2], {"a": 1}, [None] * 5, -1, [], ["1"],
                       [1.5, -1.5], [True], [1e308, -1e308]]
            doc[block][key] = choices[int(rng.integers(len(choices)))]
            desc = f"metadata {block}.{key} changed"
        else:
            doc[block] = ["utc", 2, None, {}][int(rng.integers(4))]
            desc = f"metadata {block} changed"
        meta[b"multilc"] = json.dumps(doc).encode()
    elif kind == "empty":
        table = table.slice(0, 0)
        desc = "empty table"
    elif kind == "orphan":
        oid = table.column("objectid").to_numpy().copy()
        oid[int(rng.integers(len(oid)))] = int(rng.choice([0, 4, 99, -1, 2 ** 40]))
        table = table.set_column(names.index("objectid"), table.schema.field("objectid"),
                                 pa.array(oid))
        desc = "orphan objectid"
    else:
        name = str(rng.choice(names))
        table = table.append_column(table.schema.field(name), table.column(name))
        desc = f"duplicate column {name}"
    table = table.replace_schema_metadata(meta)
    pq.write_table(table, path)
    return desc


# netCDF -------------------------------------------------------------------
def _recreate(f, name, values):
    """Replace dataset *name* by *values*, keeping its plain attributes."""
    import h5py

    keep = {k: v for k, v in f[name].attrs.items()
            if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME")}
    del f[name]
    if values.dtype.kind == "U":
        f.create_dataset(name, data=values.astype(object),
                         dtype=h5py.string_dtype())
    else:
        f.create_dataset(name, data=values)
    f[name].attrs.update(keep)


def netcdf_structural(path, rng):
    """Change one thing in the netCDF file, in place with h5py (fast)."""
    import h5py

    with h5py.File(path, "r+") as f:
        names = [n for n in f if n not in ("obs", "object", "event")]  # dimensions
        kind = rng.choice(["drop", "rename", "retype", "values", "unit", "json", "attr",
                           "row_size", "codes", "empty"])
        name = str(rng.choice(names))
        if kind == "drop":
            del f[name]
            desc = f"drop {name}"
        elif kind == "rename":
            new = str(rng.choice(["FLUX", "time2", name.upper() + "_"]))
            f.move(name, new)
            desc = f"rename {name} -> {new}"
        elif kind == "retype":
            values = f[name][()]
            target = str(rng.choice(["float32", "int8", "U", "float64"]))
            try:
                values = values.astype(target)
            except (ValueError, TypeError):
                target = "U"
                values = np.asarray([str(v) for v in values])
            _recreate(f, name, values)
            desc = f"retype {name} -> {target}"
        elif kind == "values":
            numeric = [n for n in names if f[n].dtype.kind in "fiu" and f[n].size]
            name = str(rng.choice(numeric))
            values = f[name][()]
            i = int(rng.integers(len(values)))
            if values.dtype.kind == "f":
                values[i] = rng.choice(VALUE_POOL)
            else:
                values[i] = int(rng.choice([-1, 999, np.iinfo(values.dtype).max]))
            f[name][...] = values
            desc = f"value in {name}"
        elif kind == "unit":
            unit = str(rng.choice(UNIT_POOL + ["hours since 1858-11-17 00:00:00",
                                               "days since 2000-01-01",
                                               "days since never"]))
            f[name].attrs["units"] = unit
            desc = f"units of {name} -> {unit!r}"
        elif kind == "json":
            raw = f.attrs["multilc_provenance"]
            cut = int(rng.integers(len(raw)))
            f.attrs["multilc_provenance"] = [raw[:cut], "[]", "NaN", '{"meta": 3}',
                                             '{"report": {"failures": [1]}}',
                                             '{"report": {"seconds": "x"}}'][
                int(rng.integers(6))]
            desc = "damaged provenance JSON"
        elif kind == "attr":
            if rng.random() < 0.5:
                f["time"].attrs["time_scale"] = str(rng.choice(["utc", "tt", ""]))
                desc = "time_scale attribute"
            else:
                f.attrs["multilc_format_version"] = str(rng.choice(["2", "", "1.0"]))
                desc = "format version attribute"
        elif kind == "row_size":
            rs = f["row_size"][()]
            rs[int(rng.integers(len(rs)))] += int(rng.choice([-1, 1, -100, 5]))
            f["row_size"][...] = rs
            desc = "row_size changed"
        elif kind == "codes":
            var = str(rng.choice(["obs_band", "event_object"]))
            vals = f[var][()]
            vals[int(rng.integers(len(vals)))] = int(rng.choice([-1, 7, 100]))
            f[var][...] = vals
            desc = f"{var} out of range"
        else:
            n_obs = len(f["time"])
            for var in [n for n in names if n != "row_size" and len(f[n]) == n_obs]:
                _recreate(f, var, f[var][()][:0])
            f["row_size"][...] = 0
            desc = "no measurements"
    return desc


# ECSV ---------------------------------------------------------------------
def ecsv_structural(text, rng):
    lines = text.splitlines(keepends=True)
    header = [i for i, line in enumerate(lines) if line.startswith("#")]
    body = [i for i, line in enumerate(lines) if not line.startswith("#")]
    kind = rng.choice(["unit", "token", "drop_line", "dup_line", "yaml", "empty",
                       "orphan", "column"])
    if kind == "unit":
        units = re.findall(r"unit: ([^,}]+)", text)
        old = str(rng.choice(units))
        new = str(rng.choice(UNIT_POOL)) or "''"
        return f"unit {old} -> {new!r}", text.replace(f"unit: {old}", f"unit: {new}", 1)
    if kind == "token":
        i = int(rng.choice(body[1:]))
        tokens = lines[i].split(" ")
        j = int(rng.integers(len(tokens)))
        tokens[j] = str(rng.choice(["nan", "inf", "-inf", "-999", "abc", '""', "1e400",
                                    "True", "-0.5", "99999999999999999999"]))
        lines[i] = " ".join(tokens).rstrip("\n") + "\n"
        return f"token {j} of line {i}", "".join(lines)
    if kind == "drop_line":
        i = int(rng.choice(header + body))
        return f"drop line {i}", "".join(lines[:i] + lines[i + 1:])
    if kind == "dup_line":
        i = int(rng.choice(body[1:]))
        return f"duplicate line {i}", "".join(lines[:i + 1] + lines[i:])
    if kind == "yaml":
        i = int(rng.choice(header))
        junk = str(rng.choice(["# - {", "#   objects: 3", "# meta: [", "#\t",
                               "#     objectid: [1, 2, 3, 3]", "#     time_scale: utc",
                               "#     format_version: '9'", "#   !!python/object:os.system"]))
        return f"yaml line {i} -> {junk!r}", "".join(lines[:i] + [junk + "\n"] +
                                                     lines[i + 1:])
    if kind == "empty":
        return "header only", "".join(lines[:body[0] + 1])
    if kind == "orphan":
        i = int(rng.choice(body[1:]))
        tokens = lines[i].split(" ")
        tokens[0] = str(rng.choice(["0", "4", "-1", "99"]))
        lines[i] = " ".join(tokens)
        return "orphan objectid", "".join(lines)
    i = body[0]
    names = lines[i].split()
    j = int(rng.integers(len(names)))
    names[j] = str(rng.choice(["FLUX", "time2", names[j] + "x"]))
    return "renamed column in the column line", "".join(
        lines[:i] + [" ".join(names) + "\n"] + lines[i + 1:])


# --------------------------------------------------------------------------- runner
def _data(lc):
    ds = lc.ds.copy()
    ds.attrs.clear()
    return ds


def run_case(path, original):
    """'ok' (the original data), 'ok-changed' (other data within the contract) or
    'error' (a FileFormatError naming the file); AssertionError on a broken contract.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lc = MultiBandLightCurve.read(path)
    except FileFormatError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        return "error"
    problems = contract_problems(lc)
    assert not problems, problems
    return "ok" if _data(lc).identical(original) else "ok-changed"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-originals")
    lc = base_lc()
    out = {}
    for ext in ("parquet", "nc", "ecsv"):
        path = folder / f"lc.{ext}"
        lc.write(path)
        out[ext] = path.read_bytes()
    return lc, out


@pytest.mark.parametrize("ext", ["parquet", "nc", "ecsv"])
def test_fuzz_own_format(originals, tmp_path, ext):
    lc, data = originals
    rng = np.random.default_rng([SEED, ["parquet", "nc", "ecsv"].index(ext)])
    outcomes = collections.Counter()
    kinds = collections.Counter()
    expected = _data(lc)
    for case in range(N_CASES):
        path = tmp_path / f"case{case}.{ext}"
        path.write_bytes(data[ext])
        if rng.random() < 0.5:
            desc, mutated = byte_mutation(data[ext], rng)
            path.write_bytes(mutated)
        elif ext == "parquet":
            desc = parquet_structural(path, rng)
        elif ext == "nc":
            desc = netcdf_structural(path, rng)
        else:
            desc, text = ecsv_structural(data[ext].decode(), rng)
            path.write_text(text)
        try:
            outcome = run_case(path, expected)
        except AssertionError as exc:
            pytest.fail(f"case {case} ({desc}): {exc}")
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"case {case} ({desc}): untyped {type(exc).__name__}: {exc}")
        outcomes[outcome] += 1
        kinds[desc.split(" ")[0]] += 1
        path.unlink()
    print(f"\n{ext}: {N_CASES} cases, outcomes {dict(outcomes)}")
    assert sum(outcomes.values()) == N_CASES
    # the generator is not degenerate: most malformed files are refused, some survive
    assert outcomes["error"] > N_CASES // 2
