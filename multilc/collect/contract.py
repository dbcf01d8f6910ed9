"""Response contracts: what an archive's answer must look like before multilc uses it.

A reader declares, as data at the top of its module, the columns it needs
from each kind of answer (`Field`), grouped in a `ResponseContract`.  The
contract's `~ResponseContract.check` is the one place where an answer is
validated at the boundary:

* **presence** -- a required column that is missing is a `ResponseError`
  naming the archive, the answer and the targets (never "no data");
* **type** -- cells that are not numbers where numbers are expected are a
  `ResponseError`; masked/null cells become NaN (floats) and are treated as
  missing values;
* **units** -- where the answer declares a unit (VOTable ``unit``, ECSV or
  astropy ``Column.unit``, parquet field metadata ``unit``), it is checked
  against the unit the field must have and converted with `astropy.units`;
  an incompatible or unreadable unit is a `ResponseError`.  Where the answer
  declares none (CSV, JSON), the archive's documented unit is assumed;
* **sentinels and nulls** -- each archive's documented "missing" markers
  (``-999``, ``99.99``...) and NaN/null cells drop the row, counted under a
  named reason;
* **plausible ranges** -- values outside a field's range (a time before
  1950, a negative error, an error radius above 180 deg) drop the row,
  counted under a named reason.

Nothing is dropped silently: the counts go into `Checked.dropped` and from
there into ``lc.report.dropped``.  Truncation is checked by
`check_text_complete` (a last CSV row cut short) and `check_votable_status`
(a VOTable ``QUERY_STATUS`` of ``OVERFLOW`` or ``ERROR``), and
`table_from_text` reads answer text without ever taking it for a file name
or URL (astropy's ``Table.read`` does that for a one-line string).
"""
from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import numpy as np
from astropy import units as u

from multilc.collect.api import (HTMLPageError, PermanentError, TransientError, html_title,
                                 looks_like_html)

__all__ = ["Field", "ResponseContract", "Checked", "ResponseError", "TruncatedResponse",
           "html_answer_of", "record_last_response",
           "table_from_text", "check_text_complete", "count_complete_csv_rows",
           "check_not_a_full_page", "check_votable_status",
           "declared_unit", "merge_dropped",
           "run_per_target", "failure_of", "MJD_RANGE"]

#: Plausible range of an observation time, MJD: 1950-01-01 (33282) to
#: 2050-01-01 (69807).  Archival photometry and events in multilc's archives
#: start with the Hipparcos/BeppoSAX era; a value outside is a sentinel or a
#: unit error, not an observation.
MJD_RANGE = (33282.0, 69807.0)

# Unit strings archives write that astropy's parsers do not know, mapped to
# what they mean.  "MJD"/"mjd" is a time *coordinate* in days; HEASARC and
# MAST answers use it as a unit label.
_UNIT_ALIASES = {
    "mjd": u.d, "jd": u.d, "day": u.d, "days": u.d, "degree": u.deg,
    "degrees": u.deg, "arcsecond": u.arcsec, "arcseconds": u.arcsec,
    "electron/s": u.electron / u.s, "e-/s": u.electron / u.s, "e/s": u.electron / u.s,
    "magnitude": u.mag, "mags": u.mag, "jansky": u.Jy, "janskys": u.Jy, "": None,
}


class ResponseError(PermanentError):
    """An archive answer that breaks its contract (missing column, bad unit, type)."""


class TruncatedResponse(TransientError):
    """An archive answer that was cut off (retrying may give the whole of it)."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One column an answer must (or may) have.

    Parameters
    ----------
    name : str
        Column name in the answer.
    kind : {"float", "int", "str", "bool"}
        What the cells must be.
    unit : `~astropy.units.Unit` or str, optional
        The unit multilc uses for this column.  A unit the answer declares
        is converted to it; without a declared unit the values are taken to
        be in it already (the archive's documented unit).
    sentinels : tuple of float, optional
        The archive's documented "no value" markers; rows holding one are
        dropped and counted ("``name == -999 (missing)``").
    valid : (low, high), optional
        Plausible range, inclusive (either end None: open); rows outside are
        dropped and counted.
    positive : bool
        Values must be > 0 (uncertainties); zero and negatives are dropped.
    required : bool
        A missing column is an error (else it is filled with *fill*).
    nullable : bool
        NaN/null cells are allowed and kept (else the row is dropped).
    fill : optional
        Value of an absent optional column (and of null int cells).
    aliases : tuple of str
        Other names the archive uses for the column (case variants, older
        releases); the first one present is used.
    accepts : tuple of units
        Units an archive declares that mean *unit* with a factor of 1, where
        astropy cannot see it (the Gaia archive writes epoch fluxes in
        electrons per second as ``s-1``: the electron is a count).
    """

    name: str
    kind: str = "float"
    unit: Any = None
    sentinels: tuple = ()
    valid: tuple | None = None
    positive: bool = False
    required: bool = True
    nullable: bool = False
    fill: Any = None
    aliases: tuple = ()
    accepts: tuple = ()

    def __post_init__(self):
        if self.kind not in ("float", "int", "str", "bool"):
            raise ValueError(f"Field {self.name}: kind must be float, int, str or bool")
        if self.unit is not None and not isinstance(self.unit, u.UnitBase):
            object.__setattr__(self, "unit", u.Unit(self.unit))
        object.__setattr__(self, "accepts", tuple(u.Unit(a) for a in self.accepts))

    def factor(self, declared):
        """Factor from the *declared* unit to this field's unit.

        Raises
        ------
        astropy.units.UnitConversionError
            When the declared unit cannot be converted.
        """
        if declared is None or self.unit is None or declared == self.unit or \
                any(declared == a for a in self.accepts):
            return 1.0
        return float(declared.to(self.unit))


@dataclasses.dataclass
class Checked:
    """The columns of an answer that passed its contract.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        Each field's values for the rows kept, converted to the field's unit
        (plain arrays; ``quantity(name)`` adds the unit).
    index : numpy.ndarray of int
        Positions of the kept rows in the answer, to pick other columns.
    dropped : dict of str to int
        Rows removed, by reason.
    n_rows : int
        Rows in the answer before checking.
    units : dict of str to Unit
    """

    columns: dict
    index: np.ndarray
    dropped: dict
    n_rows: int
    units: dict

    def __getitem__(self, name):
        return self.columns[name]

    def __contains__(self, name):
        return name in self.columns

    def __len__(self):
        return len(self.index)

    def quantity(self, name):
        """Column *name* as a Quantity in the field's unit."""
        unit = self.units.get(name)
        return self.columns[name] * unit if unit is not None else self.columns[name]

    def subset(self, mask):
        """Only the kept rows where *mask* is true (drops are not counted again)."""
        m = np.asarray(mask, bool)
        return dataclasses.replace(self, columns={k: v[m] for k, v in self.columns.items()},
                                   index=self.index[m])


def merge_dropped(into, more):
    """Add the counts of *more* to *into* (both ``{reason: count}``); returns *into*."""
    for reason, count in (more or {}).items():
        into[reason] = into.get(reason, 0) + int(count)
    return into


# --------------------------------------------------------------------------- units
def parse_unit_string(text):
    """An answer's unit string as an astropy unit (None for no unit).

    Tries the VOUnit, CDS and generic parsers, then a short table of labels
    archives write that are not units (``MJD``, ``degrees``, ``e-/s``).

    Raises
    ------
    ValueError
        If the string means nothing multilc knows.
    """
    if text is None:
        return None
    if isinstance(text, u.UnitBase):
        return text
    s = str(text).strip()
    if s.lower() in _UNIT_ALIASES:
        return _UNIT_ALIASES[s.lower()]
    import warnings

    for fmt in ("vounit", "generic", "cds"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", u.UnitsWarning)
                unit = u.Unit(s, format=fmt)
        except (ValueError, TypeError):
            continue
        if not isinstance(unit, u.UnrecognizedUnit):
            return unit
    raise ValueError(f"unit {s!r} is not a unit astropy or multilc recognises")


def declared_unit(table, name):
    """The unit *table* declares for column *name* (None if none).

    Understands astropy `~astropy.table.Table` columns (``.unit``, which is
    how VOTable and ECSV units arrive) and pyarrow tables (field metadata
    ``unit``).
    """
    try:
        import pyarrow as pa

        if isinstance(table, (pa.Table, pa.RecordBatch)):
            meta = table.schema.field(name).metadata or {}
            raw = meta.get(b"unit") or meta.get(b"units")
            return parse_unit_string(raw.decode()) if raw else None
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        pass
    col = table[name]
    unit = getattr(col, "unit", None)
    if unit is None:
        return None
    if isinstance(unit, u.UnrecognizedUnit):
        return parse_unit_string(unit.name)
    # Parsed again from its text: a VOTable parser may have built a unit from
    # another registry (an "electron" that is not astropy's electron).
    return parse_unit_string(unit.to_string())


# --------------------------------------------------------------------------- contract
@dataclasses.dataclass(frozen=True)
class ResponseContract:
    """The columns one kind of answer of one archive must have.

    Parameters
    ----------
    archive : str
        Archive name (for messages).
    what : str
        The kind of answer ("detection table", "light-curve CSV").
    fields : tuple of `Field`
    source : str
        Where the contract comes from (documentation cited), for the docs.
    """

    archive: str
    what: str
    fields: tuple
    source: str = ""

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def error(self, message, objectids=None, cls=None):
        cls = cls or ResponseError
        return cls(f"{self.what}: {message}", archive=self.archive, objectids=objectids)

    def check(self, table, *, objectids=None, units=None):
        """Validate *table* against this contract.

        Parameters
        ----------
        table : astropy Table, pyarrow Table, pandas DataFrame or dict of arrays
            The answer.
        objectids : sequence of int, optional
            The targets the answer is about (named in errors).
        units : dict of str to unit string, optional
            Units declared outside the table (a JSON answer's ``info`` block).

        Returns
        -------
        `Checked`

        Raises
        ------
        ResponseError
            A required column is missing, holds values of the wrong type, or
            declares a unit incompatible with the field's.
        """
        names = _column_names(table)
        n = _n_rows(table, names)
        present = {}
        missing = []
        for f in self.fields:
            name = next((c for c in (f.name, *f.aliases) if c in names), None)
            if name is None:
                lower = {c.lower(): c for c in names}
                name = lower.get(f.name.lower())
            if name is None and f.required:
                missing.append(f.name)
            present[f.name] = name
        if missing:
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise self.error(f"lacks columns {missing} (it has: {shown or 'no columns'})",
                             objectids)
        keep = np.ones(n, bool)
        dropped = {}
        columns = {}
        out_units = {}
        for f in self.fields:
            name = present[f.name]
            if name is None:
                columns[f.name] = np.full(n, f.fill if f.fill is not None else
                                          _default_fill(f.kind),
                                          dtype=_numpy_kind(f.kind))
                out_units[f.name] = f.unit
                continue
            values, null = self._values(table, name, f, objectids)
            if f.unit is not None:
                given = (units or {}).get(name)
                try:
                    have = parse_unit_string(given) if given is not None else \
                        declared_unit(table, name)
                except ValueError as exc:
                    raise self.error(f"column {name!r}: {exc}", objectids) from None
                if have is not None:
                    try:
                        scale = f.factor(have)
                        if scale != 1.0:
                            values = values * scale
                    except u.UnitConversionError:
                        raise self.error(
                            f"column {name!r} is declared in {have}, which cannot be "
                            f"converted to {f.unit}", objectids) from None
                out_units[f.name] = f.unit
            bad = self._bad_rows(f, values, null, keep, dropped)
            keep &= ~bad
            columns[f.name] = values
        index = np.flatnonzero(keep)
        return Checked({k: v[index] for k, v in columns.items()}, index, dropped, n,
                       out_units)

    def _values(self, table, name, f, objectids):
        col = table[name]
        null = _null_mask(col)
        if f.kind == "str":
            arr = np.asarray(_plain(col, ""), dtype=object)
            return np.array([("" if m else str(v)) for v, m in zip(arr, null)],
                            dtype=object), null
        try:
            if f.kind == "bool":
                raw = np.asarray(_plain(col, False))
                if raw.dtype.kind in "US O".replace(" ", ""):
                    text = np.char.lower(raw.astype(str))
                    ok = np.isin(text, ["true", "false", "t", "f", "1", "0", ""])
                    if not ok.all():
                        raise ValueError(f"not booleans: {sorted(set(text[~ok]))[:3]}")
                    return np.isin(text, ["true", "t", "1"]), null
                return raw.astype(bool), null
            raw = _plain(col, np.nan if f.kind == "float" else 0)
            arr = np.asarray(raw)
            if f.kind == "int":
                return _integers(arr, null)
            if arr.dtype.kind in "USO":
                arr = _numbers_from_text(arr)
            return arr.astype("float64"), null
        except (ValueError, TypeError, OverflowError) as exc:
            raise self.error(f"column {name!r} should hold {f.kind} values: {exc}",
                             objectids) from None

    @staticmethod
    def _bad_rows(f, values, null, keep, dropped):
        bad = np.zeros(len(values), bool)

        def count(mask, reason):
            # *reason* is a callable: its text (unit formatting, comparisons)
            # is made only when rows are dropped, not on every answer
            new = mask & keep & ~bad
            if new.any():
                text = reason()
                dropped[text] = dropped.get(text, 0) + int(new.sum())
            return mask

        if f.kind in ("float", "int"):
            for s in f.sentinels:
                bad |= count(values == s, lambda s=s: f"{f.name} == {s:g} (missing)")
            if f.kind == "float":
                nan = np.isnan(values) | null
                if not f.nullable:
                    bad |= count(nan, lambda: f"{f.name} missing (null/NaN)")
                bad |= count(np.isinf(values), lambda: f"{f.name} not finite")
            elif not f.nullable:
                bad |= count(null, lambda: f"{f.name} missing (null)")
            with np.errstate(invalid="ignore"):
                if f.positive:
                    bad |= count(values <= 0, lambda: f"{f.name} <= 0")
                if f.valid is not None:
                    lo, hi = f.valid
                    out = np.zeros(len(values), bool)
                    if lo is not None:
                        out |= values < lo
                    if hi is not None:
                        out |= values > hi

                    def outside():
                        unit = f" {f.unit}" if f.unit is not None and f.unit != u.one \
                            else ""
                        # 10 significant digits: a JD range stays readable
                        lo_s = "-inf" if lo is None else f"{lo:.10g}"
                        hi_s = "inf" if hi is None else f"{hi:.10g}"
                        return f"{f.name} outside [{lo_s}, {hi_s}]{unit}"

                    bad |= count(out, outside)
        elif not f.nullable:
            bad |= count(null, lambda: f"{f.name} missing (null)")
        return bad


def _numpy_kind(kind):
    return {"float": "float64", "int": "int64", "str": object, "bool": bool}[kind]


def _default_fill(kind):
    return {"float": np.nan, "int": 0, "str": "", "bool": False}[kind]


def _column_names(table):
    if hasattr(table, "colnames"):
        return list(table.colnames)
    if hasattr(table, "column_names"):
        return list(table.column_names)
    if hasattr(table, "columns"):
        return [str(c) for c in table.columns]
    return list(table.keys())


def _n_rows(table, names):
    if hasattr(table, "num_rows"):
        return int(table.num_rows)
    if not names:
        return len(table) if hasattr(table, "__len__") and not isinstance(table, dict) else 0
    return len(table[names[0]])


def _null_mask(col):
    try:
        import pyarrow as pa

        if isinstance(col, (pa.ChunkedArray, pa.Array)):
            return np.asarray(col.is_null().to_numpy(zero_copy_only=False), bool)
    except ImportError:  # pragma: no cover
        pass
    mask = getattr(col, "mask", None)
    if mask is not None and mask is not np.ma.nomask:
        m = np.asarray(mask, bool)
        if m.shape == np.shape(col):
            return m
    try:
        import pandas as pd

        if isinstance(col, pd.Series):
            return col.isna().to_numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(col, dtype=object) if np.asarray(col).dtype.kind == "O" else None
    if arr is not None:
        return np.array([v is None for v in arr], bool)
    return np.zeros(len(col), bool)


def _plain(col, fill):
    """Column values as a plain numpy array, null cells as *fill*."""
    try:
        import pyarrow as pa

        if isinstance(col, (pa.ChunkedArray, pa.Array)):
            if col.null_count:
                import pyarrow.compute as pc

                try:
                    col = pc.fill_null(col, fill)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
                    return np.array([fill if v is None else v
                                     for v in col.to_pylist()], dtype=object)
            return col.to_numpy(zero_copy_only=False)
    except ImportError:  # pragma: no cover
        pass
    if hasattr(col, "filled"):
        try:
            return np.asarray(col.filled(fill))
        except (TypeError, ValueError):
            return np.asarray(col.astype(object).filled(fill))
    if hasattr(col, "to_numpy"):
        return col.to_numpy()
    arr = np.asarray(col)
    if arr.dtype.kind == "O":
        arr = np.array([fill if v is None else v for v in arr], dtype=object)
    return arr


def _integers(arr, null):
    """Integer cells (int64 ids stay exact); non-finite cells become null."""
    if arr.dtype.kind in "iu":
        return arr.astype("int64"), null
    if arr.dtype.kind == "b":
        return arr.astype("int64"), null
    if arr.dtype.kind in "USO":
        out = np.zeros(len(arr), "int64")
        null = null.copy()
        for i, v in enumerate(arr):
            s = (v.decode() if isinstance(v, bytes) else str(v)).strip() if v is not None \
                else ""
            if s == "" or s.lower() in ("nan", "null", "none", "--"):
                null[i] = True
                continue
            try:
                out[i] = int(s)
            except ValueError:
                value = float(s)  # ValueError for text that is not a number
                if not np.isfinite(value):
                    null[i] = True
                elif value != round(value):
                    raise ValueError(f"non-integer value {s!r}") from None
                else:
                    out[i] = int(value)
        return out, null
    farr = arr.astype("float64")
    nonfinite = ~np.isfinite(farr)
    frac = ~nonfinite & (farr != np.round(farr))
    if frac.any():
        raise ValueError(f"non-integer values such as {farr[frac][0]!r}")
    if (np.abs(farr[~nonfinite]) > 2.0 ** 63).any():
        raise OverflowError("integer values beyond int64")
    return np.where(nonfinite, 0, farr).astype("int64"), null | nonfinite


def _numbers_from_text(arr):
    """Text cells -> float64; empty cells -> NaN; anything else is an error."""
    out = np.empty(len(arr), "float64")
    for i, v in enumerate(arr):
        if v is None:
            out[i] = np.nan
            continue
        s = v.decode() if isinstance(v, bytes) else str(v)
        s = s.strip()
        if s == "" or s.lower() in ("nan", "null", "none", "--"):
            out[i] = np.nan
        else:
            out[i] = float(s)  # ValueError for text that is not a number
    return out


# --------------------------------------------------------------------------- answer text
def check_text_complete(text, *, contract=None, archive=None, what="answer",
                        objectids=None, delimiter=","):
    """Raise `TruncatedResponse` if the last row of delimited *text* was cut short.

    A row with fewer fields than the header, at the end of an answer that
    does not end with a newline, is the mark of a response cut off in
    transmission.  (A cut that falls exactly after a complete row cannot be
    seen in CSV, which declares no row count; archives whose formats do
    declare one are checked by their readers.)
    """
    if not text or text.endswith("\n"):
        return
    lines = text.splitlines()
    header = next((line for line in lines if line.strip() and not line.startswith("#")),
                  None)
    if header is None or len(lines) < 2:
        return
    try:
        n_head = len(next(csv.reader([header], delimiter=delimiter)))
        n_last = len(next(csv.reader([lines[-1]], delimiter=delimiter)))
    except (csv.Error, StopIteration):
        n_head, n_last = 0, -1
    if n_last != n_head:
        name = contract.archive if contract is not None else archive
        label = contract.what if contract is not None else what
        raise TruncatedResponse(
            f"{label}: the answer ends in the middle of a row ({n_last} of {n_head} "
            f"fields in its last line): cut off in transmission",
            archive=name, objectids=objectids)


def count_complete_csv_rows(text, *, archive, what="answer", objectids=None, delimiter=","):
    """The number of data rows of CSV *text*, after checking it was not cut off.

    For the query step of per-target readers, which must know whether an
    answer is whole before letting the target go (a cut-off answer is asked
    again), without parsing cells that `ResponseContract.check` reads later.
    Counts the non-blank lines after the header (as astropy's CSV reader
    reads them), so it is only for answers whose cells hold no line breaks
    (numbers and short codes, as in the MAST and IRSA answers using it).

    Raises
    ------
    TruncatedResponse
        The last row was cut short (`check_text_complete`).
    """
    check_text_complete(text, archive=archive, what=what, objectids=objectids,
                        delimiter=delimiter)
    return max(sum(1 for line in text.splitlines() if line.strip()) - 1, 0)


def check_not_a_full_page(rows, page_size, *, archive, what="answer", objectids=None):
    """Raise `ResponseError` when an answer of a paged API fills a whole page.

    Such an answer may continue on a next page, so it is never taken as the
    whole answer (the MAST catalogs API pages with ``page``/``pagesize``).
    """
    if rows >= page_size:
        raise ResponseError(f"{what}: the answer fills a whole page ({rows} rows, "
                            f"pagesize {page_size}); more rows may exist and are not "
                            "taken as the whole answer", archive=archive,
                            objectids=objectids)


def table_from_text(content, fmt, *, archive, what, objectids=None):
    """Read an answer's text as an astropy Table; never as a file name or URL.

    Parameters
    ----------
    content : str or bytes
    fmt : {"csv", "ipac", "votable", "ecsv", "tsv"}
    archive, what : str
        For messages.
    objectids : sequence of int, optional

    Raises
    ------
    ResponseError
        HTML where data was expected, or text the format's reader rejects.
    TruncatedResponse
        A CSV whose last row was cut short.
    """
    from astropy.io import ascii as _ascii

    if isinstance(content, bytes):
        raw = content
        text = content.decode("utf-8", errors="replace")
    else:
        text = content
        raw = None
    if looks_like_html(text):
        title = html_title(text)
        raise HTMLPageError(f"{what}: an HTML page came where {fmt} was expected: "
                            f"{title!r}", archive=archive, objectids=objectids, title=title)
    try:
        if fmt == "votable":
            from astropy.io import votable

            data = raw if raw is not None else text.encode()
            # A VOTable document ends with its root's closing tag; one that does
            # not was cut off in transmission (the XML parser would only say
            # "no element found").
            if text.strip() and not text.rstrip().lower().endswith("</votable>"):
                raise TruncatedResponse(f"{what}: the VOTable answer ends before its "
                                        "closing </VOTABLE> tag: cut off in transmission",
                                        archive=archive, objectids=objectids)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", votable.exceptions.VOWarning)
                vot = votable.parse(io.BytesIO(data))
            check_votable_status(vot, archive=archive, what=what, objectids=objectids)
            return vot.get_first_table().to_table()
        if not text.strip():
            from astropy.table import Table

            return Table()
        lines = text.splitlines()
        if fmt in ("csv", "tsv"):
            check_text_complete(text, archive=archive, what=what, objectids=objectids,
                                delimiter="," if fmt == "csv" else "\t")
            return _ascii.read(lines, format="csv" if fmt == "csv" else "tab", guess=False)
        if fmt == "ipac":
            return _ascii.read(lines, format="ipac", guess=False)
        if fmt == "ecsv":
            return _ascii.read(lines, format="ecsv", guess=False)
    except (ResponseError, TruncatedResponse):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the answer's fault
        raise ResponseError(f"{what}: not a readable {fmt} answer: "
                            f"{type(exc).__name__}: {str(exc)[:200]}", archive=archive,
                            objectids=objectids) from exc
    raise ValueError(f"table_from_text: unknown format {fmt!r}")


def check_votable_status(vot, *, archive, what="VOTable", objectids=None):
    """Raise if a parsed VOTable says the query failed or overflowed.

    The IVOA DALI/TAP conventions put ``<INFO name="QUERY_STATUS"
    value="OK|ERROR|OVERFLOW">`` in the RESOURCE (TAP 1.1 sec. 2.9; DALI 1.1
    sec. 4.4.1).  ``OVERFLOW`` means the table was cut at MAXREC: rows are
    missing, which multilc never passes off as the whole answer.
    """
    infos = list(getattr(vot, "infos", []))
    for res in getattr(vot, "resources", []):
        infos.extend(getattr(res, "infos", []))
    for info in infos:
        if getattr(info, "name", "") != "QUERY_STATUS":
            continue
        value = str(info.value).upper()
        if value == "ERROR":
            text = (info.content or "").strip() if hasattr(info, "content") else ""
            raise ResponseError(f"{what}: the service reported an error: {text[:200]}",
                                archive=archive, objectids=objectids)
        if value == "OVERFLOW":
            raise ResponseError(f"{what}: the answer was truncated at the service's row "
                                "limit (QUERY_STATUS=OVERFLOW); use smaller batches",
                                archive=archive, objectids=objectids)


def html_answer_of(session_or_response, *, archive, what, objectids=None):
    """A transient error if the last HTTP answer was an HTML page or a cut VOTable.

    Returns `~multilc.collect.api.HTMLPageError`, `TruncatedResponse` or None.

    For clients such as pyvo that parse the body themselves and report an
    HTML page only as "not a VOTable": pass the `requests.Session` they used
    after `record_last_response` was attached to it.
    """
    resp = getattr(session_or_response, "multilc_last_response", session_or_response)
    if resp is None or not hasattr(resp, "headers"):
        return None
    ctype = resp.headers.get("Content-Type", "").lower()
    try:
        body = resp.content[:20000]
    except Exception:  # noqa: BLE001 - a body already consumed or broken
        body = b""
    if looks_like_html(body, ctype):
        title = html_title(body)
        return HTMLPageError(f"{what}: an HTML page (HTTP {resp.status_code}) came where "
                             f"data was expected: {title!r}", archive=archive,
                             objectids=objectids, title=title)
    try:
        tail = resp.content[-400:]
    except Exception:  # noqa: BLE001
        tail = b""
    head = body[:400].lstrip().lower()
    if (head.startswith(b"<?xml") or b"<votable" in head) and \
            b"</votable>" not in tail.lower():
        # A VOTable whose closing tag never came: cut off in transmission
        # (the transport may not notice when Content-Length matched the cut).
        return TruncatedResponse(f"{what}: the VOTable ends before its closing "
                                 "</VOTABLE> tag: cut off in transmission",
                                 archive=archive, objectids=objectids)
    return None


class _BufferedBody(io.BytesIO):
    """A response body already read, offered again to clients that read ``raw``."""

    def read(self, size=-1, decode_content=True, **kwargs):  # urllib3's signature
        return super().read(size)


def record_last_response(session):
    """Make *session* remember its last response (``session.multilc_last_response``).

    The body is read at once (and offered again through ``response.raw``) so
    that, when the client's parser fails, the body can still be looked at:
    was it an HTML page, a VOTable cut short?
    """
    session.multilc_last_response = None

    def hook(resp, *args, **kwargs):
        data = resp.content  # transport errors surface here, as requests errors
        resp.raw = _BufferedBody(data)
        session.multilc_last_response = resp
        return resp

    session.hooks.setdefault("response", []).append(hook)
    return session


# --------------------------------------------------------------------------- per target
def run_per_target(archive, batch, fetch, *, retries=None, backoff=None):
    """Call ``fetch(i)`` for each target *i* of *batch*, isolating failures.

    Readers of per-target services (one or more requests per target) use
    this so that one target's failure -- of any exception type -- becomes
    that target's entry, never the loss of the batch's other targets.

    * A target whose call raised a transient error is tried again (up to
      *retries* more rounds, exponential *backoff* with the error's
      ``retry_after`` if it has one) while the others keep their answers.
    * If **every** target failed, the first error is raised (a multilc
      `ArchiveError`; other exception types are chained into a
      `PermanentError`) so that the engine applies its own retry policy and
      caches nothing.

    Parameters
    ----------
    archive : `~multilc.collect.api.Archive`
    batch : `~multilc.collect.api.Batch`
    fetch : callable
        ``fetch(i) -> answer`` for target index *i*.
    retries, backoff : optional
        Default: the archive's ``retries``/``backoff`` attributes if the
        engine set them, else ``multilc.conf``.

    Returns
    -------
    list of dict
        One per target: ``{"objectid", "answer"}`` or ``{"objectid",
        "error": {"type", "message", "transient", "attempts"}}``.
    """
    import random
    import time

    from multilc import conf
    from multilc.collect.api import ArchiveError, setting

    if retries is None:
        retries = getattr(archive, "retries", None)
    if backoff is None:
        backoff = getattr(archive, "backoff", None)
    if retries is None:
        retries = int(setting(conf, "retries"))
    if backoff is None:
        backoff = float(setting(conf, "backoff"))
    # the longest wait between rounds, also for a server's Retry-After
    longest = float(getattr(archive, "backoff_max", None) or setting(conf, "backoff_max"))
    n = len(batch)
    out = [None] * n
    errors = {}
    tries = [0] * n
    pages = [0] * n
    todo = list(range(n))
    for attempt in range(int(retries) + 1):
        again = []
        wait = 0.0
        for i in todo:
            oid = int(batch.objectid[i])
            tries[i] += 1
            try:
                out[i] = {"objectid": oid, "answer": fetch(i)}
                errors.pop(i, None)
            except Exception as exc:  # noqa: BLE001 - isolated, reported per target
                errors[i] = exc
                if isinstance(exc, HTMLPageError):
                    # an HTML page is worth one more try, not more
                    pages[i] += 1
                    if pages[i] >= 2:
                        exc.transient = False
                if getattr(exc, "transient", False):
                    again.append(i)
                    after = getattr(exc, "retry_after", None)
                    if after:
                        wait = max(wait, float(after))
        todo = again
        if not todo or attempt == int(retries) or len(errors) == n:
            break
        delay = max(wait, backoff * 2 ** attempt * random.uniform(0.5, 1.0))
        time.sleep(min(delay, longest))
    if n and len(errors) == n:
        first = errors[min(errors)]
        if not isinstance(first, ArchiveError):
            wrapped = PermanentError(f"{type(first).__name__}: {first}",
                                     archive=archive.name, objectids=batch.objectid.tolist())
            wrapped.__cause__ = first
            first = wrapped
        if max(tries) > 1:
            # Retried here already, target by target: the engine must not
            # retry the whole batch again (that would multiply the requests).
            first.retries_exhausted = True
            first.attempts = max(tries)
        raise first
    for i, exc in errors.items():
        oid = int(batch.objectid[i])
        text = str(exc)
        if archive.name not in text:
            text = f"{archive.name}: objectid {oid}: {type(exc).__name__}: {text}"
        out[i] = {"objectid": oid, "error": {"type": type(exc).__name__, "message": text,
                                             "transient": bool(getattr(exc, "transient",
                                                                       False)),
                                             "attempts": tries[i]}}
    return out


def failure_of(archive_name, entry):
    """The `~multilc.collect.api.Failure` of a `run_per_target` error entry."""
    from multilc.collect.api import Failure

    err = entry["error"]
    if not isinstance(err, dict):  # answers cached by older versions: a message only
        return Failure(archive_name, [int(entry["objectid"])], "PermanentError", str(err))
    return Failure(archive_name, [int(entry["objectid"])], err["type"], err["message"],
                   bool(err.get("transient", False)), int(err.get("attempts", 1)))
