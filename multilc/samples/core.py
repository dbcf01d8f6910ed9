"""The `Sample`: one table of sky positions with object ids and labels.

A `Sample` is the single input every multilc archive reader receives. It wraps an
`astropy.table.QTable` with three fixed columns

``objectid``
    ``int64``, unique within the sample. Results from every archive are keyed by it.
``coord``
    `~astropy.coordinates.SkyCoord` array in the ICRS frame.
``label``
    ``str``. An object may belong to several labelled samples (for instance a quasar
    found by both LaMassa et al. 2015 and Yang et al. 2018). All its labels are stored
    in this one string, joined by ``"; "`` (`LABEL_SEPARATOR`) in the order in which
    they were first seen, e.g. ``"LaMassa 15; Yang 18"``. `Sample.labels` splits
    them back into a list. A single label therefore must not contain ``";"``.

Any other column a user supplies (``name``, ``redshift``, ...) is kept unchanged after
these three.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from multilc.errors import InputError
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Column, QTable, Table, vstack

__all__ = [
    "LABEL_SEPARATOR",
    "Sample",
    "SampleError",
    "as_sample",
    "example_targets",
    "merge_samples",
]

#: Separator between the labels of an object that belongs to several samples.
LABEL_SEPARATOR = "; "

#: Column names recognised as a ready-made SkyCoord column, in order of preference.
SKYCOORD_COLUMNS = ("coord", "coords", "skycoord")

#: (RA, Dec) column-name pairs recognised in input tables, in order of preference.
#: ``RAJ2000/DEJ2000``, ``RA_ICRS/DE_ICRS``, ``_RAJ2000/_DEJ2000`` and ``_RA/_DE`` are
#: VizieR spellings (the underscored ones are positions VizieR computes).
COORDINATE_COLUMN_PAIRS = (
    ("ra", "dec"),
    ("RA", "DEC"),
    ("RA", "Dec"),
    ("ra_deg", "dec_deg"),
    ("RAJ2000", "DEJ2000"),
    ("RA_ICRS", "DE_ICRS"),
    ("_RAJ2000", "_DEJ2000"),
    ("_RA", "_DE"),
)

#: Path of the example target table shipped with the package.
EXAMPLE_TARGETS_PATH = Path(__file__).resolve().parents[1] / "data" / "example_targets.ecsv"

_FIXED_COLUMNS = ("objectid", "coord", "label")
# A sexagesimal string has a field separator (space, colon) or an h/d/m/s letter.
_SEXAGESIMAL = re.compile(r"[:\shdms°'\"]", re.IGNORECASE)


class SampleError(InputError):
    """Raised for a target list that cannot become a valid `Sample`."""


# --------------------------------------------------------------------------------------
# label helpers


def split_labels(label: str) -> list[str]:
    """Split a joined label string into its labels (empty parts dropped, order kept).

    Parameters
    ----------
    label : str
        Labels joined by ``";"`` (spaces around the separator are ignored).

    Returns
    -------
    list of str
    """
    if label is None or label is np.ma.masked:
        return []
    out: list[str] = []
    for part in str(label).split(";"):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def join_labels(labels: Iterable[str]) -> str:
    """Join labels with `LABEL_SEPARATOR`, dropping empties and repeats, keeping order."""
    out: list[str] = []
    for label in labels:
        for part in split_labels(label):
            if part not in out:
                out.append(part)
    return LABEL_SEPARATOR.join(out)


# --------------------------------------------------------------------------------------
# coordinate parsing


def _as_plain_values(column):
    """Return ``(values, unit, mask)`` for a table column of numbers or strings."""
    unit = getattr(column, "unit", None)
    if isinstance(column, u.Quantity):
        return np.asarray(column.value), column.unit, np.zeros(len(column), bool)
    mask = np.asarray(np.ma.getmaskarray(column)) if hasattr(column, "mask") else None
    values = np.asarray(np.ma.getdata(column) if mask is not None else column)
    if mask is None:
        mask = np.zeros(len(values), bool)
    return values, unit, mask


def _angles_from_column(column, *, is_ra: bool, name: str):
    """Convert one RA or Dec column to a float array in degrees.

    Numeric columns use their unit, else degrees. String columns may hold decimal
    degrees or sexagesimal text; sexagesimal RA is read as hours, sexagesimal Dec as
    degrees (the universal convention for ``hh:mm:ss`` / ``dd:mm:ss`` positions),
    unless the column's unit says otherwise.
    """
    from astropy.coordinates import Angle

    values, unit, mask = _as_plain_values(column)
    if unit is not None and not isinstance(unit, u.UnitBase):
        try:
            unit = u.Unit(unit)
        except ValueError:
            unit = None
    if isinstance(unit, u.UnrecognizedUnit):
        # VizieR labels sexagesimal columns "h:m:s" / "d:m:s", which astropy cannot parse.
        text = str(unit)
        unit = u.hourangle if text.startswith("h") else u.deg if text.startswith("d") else None

    if values.dtype.kind in "iuf":
        deg = values.astype(float)
        if unit is not None and unit != u.dimensionless_unscaled:
            try:
                deg = (deg * unit).to_value(u.deg)
            except u.UnitConversionError as exc:
                raise SampleError(
                    f"coordinate column {name!r} has unit {unit}, which is not an angle"
                ) from exc
        deg = np.where(mask, np.nan, deg)
        return deg

    # Strings (or objects): decide per entry.
    deg = np.full(len(values), np.nan)
    for i, (value, masked) in enumerate(zip(values, mask)):
        if masked or value is None:
            continue
        text = str(value).strip()
        if not text or text.lower() in {"nan", "--", "none"}:
            continue
        try:
            number = float(text)
        except ValueError:
            number = None
        try:
            if number is not None and unit in (None, u.deg):
                deg[i] = number
            elif number is not None:
                deg[i] = (number * unit).to_value(u.deg)
            else:
                text_unit = unit if unit is not None else (u.hourangle if is_ra else u.deg)
                if not _SEXAGESIMAL.search(text):
                    raise ValueError("not a number and not sexagesimal")
                deg[i] = Angle(text, unit=text_unit).to_value(u.deg)
        except (ValueError, u.UnitsError) as exc:
            raise SampleError(
                f"row {i}: cannot read {value!r} in column {name!r} as an angle ({exc})"
            ) from None
    return deg


def _find_coordinate_columns(table, ra: str | None, dec: str | None):
    """Return ``("skycoord", name)`` or ``("radec", ra_name, dec_name)``."""
    names = list(table.colnames)
    if (ra is None) != (dec is None):
        raise SampleError("give both ra= and dec= column names, or neither")
    if ra is not None:
        missing = [n for n in (ra, dec) if n not in names]
        if missing:
            raise SampleError(f"coordinate column(s) {missing} not in table columns {names}")
        if ra == dec and isinstance(table[ra], SkyCoord):
            return ("skycoord", ra)
        return ("radec", ra, dec)

    for candidate in SKYCOORD_COLUMNS:
        for name in names:
            if name.lower() == candidate and isinstance(table[name], SkyCoord):
                return ("skycoord", name)
    for ra_name, dec_name in COORDINATE_COLUMN_PAIRS:
        if ra_name in names and dec_name in names:
            return ("radec", ra_name, dec_name)
    # Same spellings, any letter case.
    lower = {n.lower(): n for n in names}
    for ra_name, dec_name in COORDINATE_COLUMN_PAIRS:
        if ra_name.lower() in lower and dec_name.lower() in lower:
            return ("radec", lower[ra_name.lower()], lower[dec_name.lower()])
    accepted = ", ".join(SKYCOORD_COLUMNS) + " (SkyCoord column) or pairs " + ", ".join(
        f"{r}/{d}" for r, d in COORDINATE_COLUMN_PAIRS
    )
    raise SampleError(
        f"no coordinate columns found among {names}; accepted spellings: {accepted}; "
        "or pass ra= and dec= column names"
    )


def _row_names(objectids, rows) -> str:
    shown = ", ".join(f"row {r} (objectid {objectids[r]})" for r in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return shown + more


def _check_coordinates(ra_deg, dec_deg, objectids):
    """Raise `SampleError` for NaN or out-of-range coordinates, naming the rows."""
    bad = np.flatnonzero(~np.isfinite(ra_deg) | ~np.isfinite(dec_deg))
    if bad.size:
        raise SampleError(f"missing (NaN) coordinates in {_row_names(objectids, bad)}")
    bad = np.flatnonzero((dec_deg < -90) | (dec_deg > 90))
    if bad.size:
        raise SampleError(
            f"Dec outside [-90, 90] deg in {_row_names(objectids, bad)}: "
            f"{dec_deg[bad][:10].tolist()}"
        )
    bad = np.flatnonzero((ra_deg < 0) | (ra_deg >= 360))
    if bad.size:
        raise SampleError(
            f"RA outside [0, 360) deg in {_row_names(objectids, bad)}: "
            f"{ra_deg[bad][:10].tolist()}"
        )


def _objectids_from_column(column, n: int) -> np.ndarray:
    values, _, mask = _as_plain_values(column)
    if mask.any():
        raise SampleError(f"objectid missing in rows {np.flatnonzero(mask)[:10].tolist()}")
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
            raise SampleError(f"objectid must be integers; rows {bad[:10].tolist()} are not")
    elif values.dtype.kind not in "iu":
        try:
            values = np.array([int(str(v)) for v in values])
        except ValueError as exc:
            raise SampleError(f"objectid must be integers ({exc})") from None
    ids = values.astype(np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        dups = unique[counts > 1]
        details = "; ".join(
            f"objectid {d} in rows {np.flatnonzero(ids == d).tolist()}" for d in dups[:10]
        )
        raise SampleError(f"duplicated objectid: {details}")
    return ids


def _labels_from_column(column, default: str) -> np.ndarray:
    values, _, mask = _as_plain_values(column)
    out = []
    for value, masked in zip(values, mask):
        text = "" if masked or value is None else str(value)
        text = join_labels([text])
        out.append(text if text else join_labels([default]))
    return np.array(out, dtype=str) if out else np.array([], dtype=str)


# --------------------------------------------------------------------------------------
# the Sample


class Sample:
    """Sky positions to collect light curves for: ``objectid``, ``coord``, ``label``.

    Build one with `Sample.from_table`, `Sample.from_coords`, `Sample.read` or
    `as_sample`; the constructor accepts the same inputs as `Sample.from_table`.

    Parameters
    ----------
    table : `~astropy.table.Table`, `~astropy.table.QTable` or `pandas.DataFrame`
        Target table; see `Sample.from_table` for the accepted columns.
    **kwargs
        Passed to `Sample.from_table`.

    Notes
    -----
    ``objectid`` is unique (``int64``), ``coord`` is an ICRS `~astropy.coordinates.SkyCoord`
    and ``label`` holds every label of an object joined by ``"; "`` in order of first
    appearance (see `Sample.labels`). Extra columns are kept after these three.
    A Sample is picklable, so batches of it can be sent to worker processes.
    """

    __slots__ = ("_table",)

    def __init__(self, table=None, **kwargs):
        if table is None:
            table = QTable({"objectid": np.array([], np.int64),
                            "coord": SkyCoord([] * u.deg, [] * u.deg, frame="icrs"),
                            "label": np.array([], dtype=str)})
        built = self._build(table, **kwargs)
        self._table = built

    # -- construction -----------------------------------------------------------------

    @classmethod
    def _from_validated(cls, table: QTable) -> Sample:
        new = cls.__new__(cls)
        new._table = table
        return new

    @staticmethod
    def _build(table, *, ra=None, dec=None, objectid=None, label=None,
               label_column="label") -> QTable:
        if isinstance(table, Sample):
            table = table._table
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a dependency
            pd = None
        if pd is not None and isinstance(table, pd.DataFrame):
            table = QTable.from_pandas(table.reset_index(drop=True))
        elif isinstance(table, Table):
            table = QTable(table, copy=False)
        else:
            raise SampleError(
                f"cannot build a Sample from {type(table).__name__}; give an astropy "
                "Table/QTable, a pandas DataFrame or a SkyCoord"
            )
        if label is not None and not isinstance(label, str):
            raise SampleError(f"label must be a str, got {type(label).__name__}")
        default_label = label or ""
        n = len(table)

        # objectid first, so coordinate errors can name it.
        id_name = objectid if objectid is not None else "objectid"
        if objectid is not None and objectid not in table.colnames:
            raise SampleError(f"objectid column {objectid!r} not in {table.colnames}")
        if id_name in table.colnames:
            ids = _objectids_from_column(table[id_name], n)
        else:
            ids = np.arange(1, n + 1, dtype=np.int64)

        found = _find_coordinate_columns(table, ra, dec)
        if found[0] == "skycoord":
            coord = table[found[1]]
            try:
                coord = coord.icrs
            except Exception as exc:  # frame transforms raise many kinds of errors
                raise SampleError(f"cannot transform column {found[1]!r} to ICRS: {exc}") from exc
            ra_deg = np.atleast_1d(coord.ra.deg).astype(float)
            dec_deg = np.atleast_1d(coord.dec.deg).astype(float)
            _check_coordinates(ra_deg, dec_deg, ids)
            used = [found[1]]
        else:
            ra_deg = _angles_from_column(table[found[1]], is_ra=True, name=found[1])
            dec_deg = _angles_from_column(table[found[2]], is_ra=False, name=found[2])
            _check_coordinates(ra_deg, dec_deg, ids)
            coord = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs")
            used = [found[1], found[2]]

        if label_column in table.colnames:
            labels = _labels_from_column(table[label_column], default_label)
            used.append(label_column)
        else:
            labels = np.array([join_labels([default_label])] * n, dtype=str)

        out = QTable()
        out["objectid"] = Column(ids, dtype=np.int64)
        out["coord"] = coord
        out["label"] = Column(labels, dtype=str)
        skip = set(used) | {id_name}
        for name in table.colnames:
            if name in skip or name in _FIXED_COLUMNS:
                continue
            out[name] = table[name]
        out.meta.update(table.meta)
        return out

    @classmethod
    def from_table(cls, table, *, ra=None, dec=None, objectid=None, label=None,
                   label_column="label") -> Sample:
        """Build a Sample from a table of positions.

        Parameters
        ----------
        table : `~astropy.table.Table`, `~astropy.table.QTable` or `pandas.DataFrame`
            One row per object. Positions come from a SkyCoord column named ``coord``,
            ``coords`` or ``skycoord``, or from an RA/Dec column pair spelled
            ``ra/dec``, ``RA/DEC``, ``ra_deg/dec_deg``, ``RAJ2000/DEJ2000``,
            ``RA_ICRS/DE_ICRS`` or ``_RA/_DE`` (first match wins; letter case is
            ignored if no exact match). Numbers take the column's unit, else degrees.
            Strings may be decimal degrees or sexagesimal (RA in hours, Dec in degrees).
            The RA/Dec columns are folded into ``coord`` and dropped.
        ra, dec : str, optional
            Names of the RA and Dec columns, overriding the search above.
        objectid : str, optional
            Name of the object-id column (default ``"objectid"``). Without one, ids are
            ``1..N`` in row order.
        label : str, optional
            Label for rows with no label (no label column, or an empty entry).
        label_column : str, optional
            Column holding the labels (default ``"label"``); several labels per row may
            be joined with ``";"``.

        Returns
        -------
        Sample

        Raises
        ------
        SampleError
            No coordinate columns (the message lists the accepted spellings), NaN or
            out-of-range coordinates (Dec outside [-90, 90] deg, RA outside [0, 360)
            deg), or repeated object ids; the message names the rows and objectids.
        """
        return cls._from_validated(
            cls._build(table, ra=ra, dec=dec, objectid=objectid, label=label,
                       label_column=label_column)
        )

    @classmethod
    def from_coords(cls, coords: SkyCoord, objectid=None, label=None) -> Sample:
        """Build a Sample from a `~astropy.coordinates.SkyCoord` (scalar or array).

        Parameters
        ----------
        coords : `~astropy.coordinates.SkyCoord`
            Positions in any frame; converted to ICRS.
        objectid : array-like of int, optional
            Object ids; default ``1..N``.
        label : str or sequence of str, optional
            One label for all objects, or one per object.
        """
        if not isinstance(coords, SkyCoord):
            raise SampleError(f"from_coords needs a SkyCoord, got {type(coords).__name__}")
        coords = coords.reshape(-1) if not coords.isscalar else coords.reshape((1,))
        table = QTable({"coord": coords})
        if objectid is not None:
            table["objectid"] = np.atleast_1d(np.asarray(objectid))
        default = None
        if label is None or isinstance(label, str):
            default = label
        else:
            labels = list(label)
            if len(labels) != len(coords):
                raise SampleError(f"{len(labels)} labels given for {len(coords)} positions")
            table["label"] = np.array([str(x) for x in labels], dtype=str)
        return cls.from_table(table, label=default)

    # -- file input/output ----------------------------------------------------------------

    @staticmethod
    def _format_for(path: Path, format: str | None) -> str:
        if format is not None:
            fmt = format.lower().removeprefix("ascii.")
        else:
            fmt = path.suffix.lower().lstrip(".")
        if fmt not in {"ecsv", "csv"}:
            raise SampleError(
                f"{path}: unknown sample file format {fmt!r}; use .ecsv or .csv (or format=)"
            )
        return fmt

    @classmethod
    def read(cls, path, format: str | None = None, **kwargs) -> Sample:
        """Read a Sample from an ECSV or CSV file.

        Parameters
        ----------
        path : str or path-like
            File to read.
        format : {"ecsv", "csv"}, optional
            Default from the file extension.
        **kwargs
            Passed to `Sample.from_table` (``ra=``, ``dec=``, ``label=`` ...).
        """
        path = Path(path)
        fmt = cls._format_for(path, format)
        if not path.is_file():
            raise SampleError(f"sample file not found: {path}")
        try:
            table = QTable.read(path, format=f"ascii.{fmt}")
        except Exception as exc:  # astropy's readers raise many kinds of errors
            raise SampleError(f"cannot read sample file {path}: {exc}") from exc
        try:
            return cls.from_table(table, **kwargs)
        except SampleError as exc:
            raise SampleError(f"{path}: {exc}") from None

    def write(self, path, overwrite: bool = False, format: str | None = None) -> None:
        """Write the Sample to ECSV (exact round trip) or CSV.

        CSV files get columns ``objectid, ra, dec`` (ICRS, degrees), ``label`` and the
        extra columns; ECSV keeps the SkyCoord column and units.

        Parameters
        ----------
        path : str or path-like
            Destination; the extension chooses the format unless ``format`` is given.
        overwrite : bool, optional
            Replace an existing file.
        format : {"ecsv", "csv"}, optional
        """
        path = Path(path)
        fmt = self._format_for(path, format)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if fmt == "ecsv":
            self._table.write(path, format="ascii.ecsv", overwrite=True)
            return
        out = Table()
        out["objectid"] = self._table["objectid"]
        out["ra"] = Column(self.coord.ra.deg, unit=u.deg)
        out["dec"] = Column(self.coord.dec.deg, unit=u.deg)
        out["label"] = self._table["label"]
        for name in self.extra_columns:
            out[name] = self._table[name]
        out.write(path, format="ascii.csv", overwrite=True)

    # -- access -----------------------------------------------------------------------------

    @property
    def table(self) -> QTable:
        """A copy of the underlying `~astropy.table.QTable`."""
        return self._table.copy()

    @property
    def coord(self) -> SkyCoord:
        """ICRS positions, a `~astropy.coordinates.SkyCoord` array."""
        return self._table["coord"]

    @property
    def objectid(self) -> np.ndarray:
        """Object ids, an ``int64`` array."""
        return np.asarray(self._table["objectid"], dtype=np.int64)

    @property
    def label(self) -> np.ndarray:
        """Joined label strings, one per object (see `Sample.labels`)."""
        return np.asarray(self._table["label"], dtype=str)

    @property
    def colnames(self) -> list[str]:
        """All column names."""
        return list(self._table.colnames)

    @property
    def extra_columns(self) -> list[str]:
        """Names of the user columns beyond ``objectid``, ``coord`` and ``label``."""
        return [n for n in self._table.colnames if n not in _FIXED_COLUMNS]

    @property
    def meta(self) -> dict:
        """The table's metadata (source, bibcode, ...)."""
        return self._table.meta

    def labels(self, objectid: int) -> list[str]:
        """Labels of one object, in order of first appearance.

        Parameters
        ----------
        objectid : int

        Raises
        ------
        KeyError
            No object with this id.
        """
        rows = np.flatnonzero(self.objectid == objectid)
        if rows.size == 0:
            raise KeyError(f"no object with objectid {objectid} in this sample")
        return split_labels(self._table["label"][rows[0]])

    def unique_labels(self) -> list[str]:
        """Every label present, in order of first appearance."""
        return split_labels(LABEL_SEPARATOR.join(self.label))

    def has_label(self, label: str) -> np.ndarray:
        """Boolean mask of the objects carrying ``label``."""
        return np.array([label in split_labels(x) for x in self.label], dtype=bool)

    def to_pandas(self):
        """A `pandas.DataFrame` with ``objectid, ra, dec`` (deg), ``label`` and extras."""
        out = Table()
        out["objectid"] = self._table["objectid"]
        out["ra"] = self.coord.ra.deg
        out["dec"] = self.coord.dec.deg
        out["label"] = self._table["label"]
        for name in self.extra_columns:
            column = self._table[name]
            out[name] = column.value if isinstance(column, u.Quantity) else column
        return out.to_pandas()

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self):
        return iter(self._table)

    def __getitem__(self, key):
        """``sample["name"]`` gives a column, ``sample[i]`` a row, slices/masks a Sample."""
        if isinstance(key, str):
            return self._table[key]
        if isinstance(key, (int, np.integer)):
            return self._table[key]
        return Sample._from_validated(self._table[key])

    def __eq__(self, other):
        if not isinstance(other, Sample):
            return NotImplemented
        return (
            self.colnames == other.colnames
            and np.array_equal(self.objectid, other.objectid)
            and np.array_equal(self.label, other.label)
            and (len(self) == 0 or bool(np.all(self.coord.separation(other.coord) < 1 * u.marcsec)))
        )

    __hash__ = None

    def __getstate__(self):
        return {"table": self._table}

    def __setstate__(self, state):
        self._table = state["table"]

    def __repr__(self) -> str:
        n = len(self)
        counts: dict[str, int] = {}
        for joined in self.label:
            for lab in split_labels(joined) or ["(no label)"]:
                counts[lab] = counts.get(lab, 0) + 1
        shown = ", ".join(f"{k!r}: {v}" for k, v in list(counts.items())[:8])
        if len(counts) > 8:
            shown += f", ... ({len(counts)} labels)"
        head = f"<Sample: {n} object{'s' if n != 1 else ''}; labels {{{shown}}}"
        if self.extra_columns:
            head += f"; extra columns {self.extra_columns}"
        head += ">"
        if n == 0:
            return head
        lines = self._table.pformat(max_lines=12, max_width=100)
        return head + "\n" + "\n".join(lines)

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        return self._table._repr_html_()


# --------------------------------------------------------------------------------------
# merging


def _check_radius(radius) -> u.Quantity:
    if not isinstance(radius, u.Quantity):
        raise TypeError(
            f"radius must be an angle Quantity such as 1 * u.arcsec, got {radius!r} "
            f"({type(radius).__name__}); plain numbers are ambiguous (arcsec or deg?)"
        )
    if radius.unit.physical_type != "angle":
        raise u.UnitTypeError(f"radius must be an angle, got unit {radius.unit}")
    if not radius.isscalar or not np.isfinite(radius.value) or radius.value < 0:
        raise ValueError(f"radius must be a finite non-negative scalar angle, got {radius}")
    return radius.to(u.arcsec)


def merge_samples(samples: Sequence, radius: u.Quantity = 1 * u.arcsec):
    """Combine samples into one, merging objects that lie within ``radius``.

    Rule (deterministic, not friends-of-friends): every object of every sample is
    visited in order (samples in the given order, rows in table order). It is matched
    to the *nearest already-kept* object within ``radius`` of the kept object's
    position; if there is one, it is merged into it (its labels are appended to the
    kept object's labels, nothing else changes, the kept position stays that of the
    first appearance); otherwise it becomes a new kept object. So for a chain A-B-C
    where A-B and B-C are within ``radius`` but A-C is not, B merges into A and C stays
    a separate object. Objects of the same input sample can merge with each other
    (e.g. a catalogue listing one object twice).

    Kept objects get new ids ``1..N`` in order of first appearance, so the same inputs
    always give the same ids. Extra columns are the union over samples; a merged object
    keeps the extra values of its first appearance (missing values are masked).

    Parameters
    ----------
    samples : sequence of `Sample` (or anything `as_sample` accepts)
        The samples to combine.
    radius : `~astropy.units.Quantity`
        Matching radius, an angle. Plain floats are rejected.

    Returns
    -------
    merged : `Sample`
    report : `~astropy.table.QTable`
        One row per merged-in object: ``objectid`` (id in ``merged`` of the kept
        object), ``kept_label`` (the kept object's label at first appearance),
        ``sample_index`` (which input sample), ``source_objectid``,
        ``source_label`` and ``source_name`` (the ``name`` column, or ``""``) of the
        merged-in object, and ``separation`` (arcsec) from the kept position.
    """
    radius = _check_radius(radius)
    if isinstance(samples, (Sample, SkyCoord, Table, str)):
        samples = [samples]
    samples = [as_sample(s) for s in samples]

    parts = []
    for index, sample in enumerate(samples):
        table = sample._table.copy()
        table["_sample_index"] = np.full(len(table), index, dtype=np.int64)
        table.meta = {}
        parts.append(table)
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        return Sample(), _empty_report()
    try:
        combined = vstack(nonempty, join_type="outer", metadata_conflicts="silent")
    except Exception as exc:  # astropy raises TableMergeError or NotImplementedError
        raise SampleError(
            f"cannot combine the extra columns of these samples ({exc}); make the "
            "same-named columns the same type"
        ) from exc

    n = len(combined)
    coord = combined["coord"]
    # All earlier neighbours within radius, from a KD-tree search.
    neighbours: dict[int, list[tuple[int, float]]] = {}
    if n > 1 and radius.value > 0:
        i1, i2, sep, _ = coord.search_around_sky(coord, radius)
        keep = i2 < i1
        for a, b, s in zip(i1[keep], i2[keep], sep[keep].to_value(u.arcsec)):
            neighbours.setdefault(int(a), []).append((int(b), float(s)))

    kept_of = np.full(n, -1, dtype=np.int64)  # index of the kept row each row belongs to
    is_kept = np.zeros(n, bool)
    merges: list[tuple[int, int, float]] = []
    for i in range(n):
        best = None
        for j, s in neighbours.get(i, ()):
            if is_kept[j] and (best is None or s < best[1] or (s == best[1] and j < best[0])):
                best = (j, s)
        if best is None:
            is_kept[i] = True
            kept_of[i] = i
        else:
            kept_of[i] = best[0]
            merges.append((i, best[0], best[1]))

    kept_rows = np.flatnonzero(is_kept)
    new_id = np.zeros(n, dtype=np.int64)
    new_id[kept_rows] = np.arange(1, kept_rows.size + 1)
    labels = np.asarray(combined["label"], dtype=str)
    label_lists = {int(k): [labels[k]] for k in kept_rows}
    for i, k, _ in merges:
        label_lists[k].append(labels[i])

    out = combined[kept_rows]
    out["objectid"] = new_id[kept_rows]
    out["label"] = Column([join_labels(label_lists[int(k)]) for k in kept_rows], dtype=str)
    out.remove_column("_sample_index")
    out.meta = {"merged_from": [s.meta.get("name", f"sample {i}") for i, s in enumerate(samples)],
                "merge_radius_arcsec": float(radius.value)}

    merged_in = np.array([m[0] for m in merges], dtype=np.int64)
    kept = np.array([m[1] for m in merges], dtype=np.int64)
    if "name" in combined.colnames:
        names = np.asarray(np.ma.filled(np.ma.asarray(combined["name"]).astype(str), ""))
    else:
        names = np.full(n, "", dtype=str)
    report = QTable(
        {
            "objectid": new_id[kept],
            "kept_label": labels[kept] if kept.size else np.array([], dtype=str),
            "sample_index": np.asarray(combined["_sample_index"], np.int64)[merged_in],
            "source_objectid": np.asarray(combined["objectid"], np.int64)[merged_in],
            "source_label": labels[merged_in] if kept.size else np.array([], dtype=str),
            "source_name": names[merged_in] if kept.size else np.array([], dtype=str),
            "separation": np.array([m[2] for m in merges], dtype=float) * u.arcsec,
        }
    )
    return Sample._from_validated(out), report


def _empty_report() -> QTable:
    return QTable(
        {
            "objectid": np.array([], np.int64),
            "kept_label": np.array([], dtype=str),
            "sample_index": np.array([], np.int64),
            "source_objectid": np.array([], np.int64),
            "source_label": np.array([], dtype=str),
            "source_name": np.array([], dtype=str),
            "separation": np.array([], float) * u.arcsec,
        }
    )


# --------------------------------------------------------------------------------------
# resolving anything into a Sample


def example_targets() -> Sample:
    """The small example target list shipped with multilc (a few changing-look AGN).

    Read from ``multilc/data/example_targets.ecsv``; the file's meta gives the source of
    every position. ``as_sample("example")`` returns the same.
    """
    sample = Sample.read(EXAMPLE_TARGETS_PATH)
    return sample


def _resolve_names(names: Sequence[str], label) -> Sample:
    """Resolve object names with Sesame (`SkyCoord.from_name`); needs the network."""
    from astropy.coordinates.name_resolve import NameResolveError

    ras, decs, failed = [], [], []
    for name in names:
        try:
            c = SkyCoord.from_name(name, frame="icrs")
        except NameResolveError as exc:
            failed.append(f"{name!r} ({exc})")
            continue
        ras.append(c.ra.deg)
        decs.append(c.dec.deg)
    if failed:
        raise SampleError("could not resolve object name(s) with Sesame: " + "; ".join(failed))
    table = QTable()
    table["coord"] = SkyCoord(np.array(ras) * u.deg, np.array(decs) * u.deg, frame="icrs")
    table["name"] = np.array(list(names), dtype=str)
    return Sample.from_table(table, label=label)


def _with_default_label(sample: Sample, label) -> Sample:
    if not label:
        return sample
    if not isinstance(label, str):
        raise SampleError(f"label must be a str, got {type(label).__name__}")
    current = sample.label
    empty = np.array([not x for x in current], dtype=bool)
    if not empty.any():
        return sample
    table = sample._table.copy()
    filled = np.where(empty, join_labels([label]), current)
    table["label"] = Column(filled.astype(str), dtype=str)
    return Sample._from_validated(table)


def as_sample(targets, *, label: str | None = None) -> Sample:
    """Turn any supported description of targets into a `Sample`.

    Parameters
    ----------
    targets : `Sample`, `~astropy.coordinates.SkyCoord`, table, str, path or list of str
        * a `Sample` (returned as is);
        * a `~astropy.coordinates.SkyCoord`, scalar or array;
        * an `~astropy.table.Table`, `~astropy.table.QTable` or `pandas.DataFrame`
          (see `Sample.from_table`);
        * ``"example"``: the shipped `example_targets`;
        * the name of a literature sample (``"yang2018"``; see `list_samples`),
          fetched or read from the cache with `get_sample`;
        * a path to an ``.ecsv`` or ``.csv`` file (`Sample.read`);
        * any other string, or a list of strings: object names resolved with
          `~astropy.coordinates.SkyCoord.from_name` (needs the network). The names are
          kept in a ``name`` column.
    label : str, optional
        Label for objects that have none; labels already present are kept.

    Returns
    -------
    Sample

    Raises
    ------
    SampleError
        Unsupported input, an unreadable file, or names that cannot be resolved
        (all unresolved names are listed).
    """
    if isinstance(targets, Sample):
        return _with_default_label(targets, label)
    if isinstance(targets, SkyCoord):
        return Sample.from_coords(targets, label=label)
    if isinstance(targets, Table):
        return Sample.from_table(targets, label=label)
    try:
        import pandas as pd

        if isinstance(targets, pd.DataFrame):
            return Sample.from_table(targets, label=label)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(targets, Path):
        return _with_default_label(Sample.read(targets), label)
    if isinstance(targets, str):
        key = targets.strip()
        if key.lower() == "example":
            return _with_default_label(example_targets(), label)
        from . import literature

        if literature.is_known_sample(key):
            return _with_default_label(literature.get_sample(key), label)
        if key.lower().endswith((".ecsv", ".csv")) or Path(key).is_file():
            return _with_default_label(Sample.read(key), label)
        return _resolve_names([key], label)
    if isinstance(targets, Iterable):
        items = list(targets)
        if items and all(isinstance(x, str) for x in items):
            return _resolve_names(items, label)
        if not items:
            return Sample()
    raise SampleError(
        f"cannot make a Sample from {type(targets).__name__}; give a Sample, SkyCoord, "
        "Table/QTable/DataFrame, 'example', a literature sample name, an .ecsv/.csv path "
        "or object name(s)"
    )
