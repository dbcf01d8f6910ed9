"""Check that a started DaCHS TAP server serves every loaded table in full.

Usage::

    python .ci/dachs/smoke_check.py TAP_URL MANIFEST_JSON

``MANIFEST_JSON`` is the ``multilc_tables.json`` written by make_tables.py.
For every table listed there (and the ``public`` copies of the HEASARC tables,
which make HEASARC's unqualified table names resolve), runs
``SELECT COUNT(*)`` through the TAP sync endpoint and compares with the number
of CSV rows written.  Uses only the standard library, so it does not depend
on the client code under test.  Exits non-zero with a message on mismatch.
"""
import csv
import io
import json
import sys
import urllib.parse
import urllib.request


def count_rows(tap_url, table):
    """Return ``SELECT COUNT(*) FROM table`` evaluated by the TAP server."""
    body = urllib.parse.urlencode({
        "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "csv",
        "QUERY": f"SELECT COUNT(*) AS n FROM {table}",
    }).encode()
    with urllib.request.urlopen(f"{tap_url}/sync", data=body, timeout=60) as response:
        text = response.read().decode()
    rows = list(csv.reader(io.StringIO(text)))
    try:
        return int(rows[1][0])
    except (IndexError, ValueError) as exc:
        raise RuntimeError(
            f"unexpected answer from {tap_url}/sync for {table}: {text[:500]!r}") from exc


def main(argv):
    tap_url, manifest_path = argv[1], argv[2]
    with open(manifest_path) as stream:
        expected = json.load(stream)["rows"]
    # gaia_source_lite and the public copies are loaded from the same CSV files
    expected = dict(expected)
    expected["gaiadr3.gaia_source_lite"] = expected["gaiadr3.gaia_source"]
    for name in ("fermigtrig", "saxgrbmgrb", "icecubepsc"):
        expected[f"{name}"] = expected[f"heasarc.{name}"]
    failures = []
    for table, n_expected in sorted(expected.items()):
        try:
            n_served = count_rows(tap_url, table)
        except Exception as exc:  # report every table, then fail
            failures.append(f"{table}: query failed: {exc}")
            continue
        status = "ok" if n_served == n_expected else "MISMATCH"
        print(f"  {table:28s} {n_served:7d} rows served, {n_expected:7d} written: {status}")
        if n_served != n_expected:
            failures.append(f"{table}: served {n_served} rows, loader wrote {n_expected}")
    if failures:
        print("ERROR: TAP server smoke check failed:\n  " + "\n  ".join(failures),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
