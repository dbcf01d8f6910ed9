"""A data-only response cache: nothing read from it can execute code.

Each entry is two files in ``<cache_dir>/responses/<archive>/``:

``<key>.payload``
    The raw response.  A `str` is stored as its UTF-8 bytes and a `bytes`
    answer as is; a structured answer (the dicts, NumPy arrays, astropy and
    pyarrow tables some readers return from ``query``) as a ZIP archive
    holding ``tree.json`` (the structure, JSON) and one blob per array:
    ``.npy`` files (read with ``numpy.load(allow_pickle=False)``), Arrow IPC
    streams for pyarrow tables, raw bytes for long strings and bytes.
``<key>.json``
    A small sidecar: format, request key, archive, content type, size,
    SHA-256 of the payload, multilc version, creation time.

`ResponseCache.load` checks the sidecar's key and archive against the
request (an entry copied from another batch is refused) and the payload's
size and checksum, then decodes it; any failure deletes the entry and is
reported as a warning, and the engine fetches the response again.  A type
the encoder does not know is not cached (a warning), never pickled.

Writers and readers of one entry hold a file lock (the ``filelock``
package) so concurrent processes sharing a cache folder never see half of
one writer's entry and half of another's; each file is also written to a
temporary name and renamed, so a killed writer leaves no partial entry.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["ResponseCache", "encode_response", "decode_response", "UnsupportedResponse",
           "CacheEntryError", "CACHE_FORMAT", "file_lock", "atomic_write", "sha256_file"]

#: Layout version written in every sidecar.
CACHE_FORMAT = "multilc-cache/1"
TEXT_TYPE = "text/plain; charset=utf-8"
BYTES_TYPE = "application/octet-stream"
TREE_TYPE = "application/vnd.multilc.tree+zip"
#: Strings longer than this go to a blob instead of the JSON tree [characters].
_LONG_STRING = 4096
#: Seconds to wait for another process's lock on one entry before giving up
#: on the cache for that batch (the batch is then fetched without it).
LOCK_TIMEOUT = 120.0


class UnsupportedResponse(TypeError):
    """A response holding a type the data-only encoder does not store."""


class CacheEntryError(ValueError):
    """A cache entry or checkpoint that fails verification (message says why)."""


# --------------------------------------------------------------------------- files
def file_lock(path, timeout=LOCK_TIMEOUT):
    """A cross-process lock on ``.<name>.lock`` beside *path* (a no-op without
    ``filelock``).

    The lock is an ``fcntl``/``msvcrt`` lock held through an open file, so it
    also excludes other threads of the same process, and the operating system
    releases it when a process dies.
    """
    try:
        from filelock import FileLock
    except ImportError:  # pragma: no cover - filelock is in the archives extra
        return contextlib.nullcontext()
    path = Path(path)
    # A hidden name: parquet dataset discovery skips it, listings stay clean.
    lock_path = path.parent / f".{path.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=timeout)


def atomic_write(path, data):
    """Write *data* (bytes) to *path* through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        # No fsync: the rename protects against a killed process, and the
        # checksum verified on every load catches what a power cut may leave.
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sha256_file(path):
    """Hex SHA-256 and size [bytes] of the file at *path*."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _version():
    try:
        from multilc import __version__
    except ImportError:  # pragma: no cover
        return "unknown"
    return __version__


# --------------------------------------------------------------------------- encoding
class _Encoder:
    def __init__(self):
        self.blobs = {}

    def blob(self, data, suffix):
        name = f"b/{len(self.blobs)}.{suffix}"
        self.blobs[name] = data
        return name

    def array(self, arr):
        arr = np.asarray(arr)
        if arr.dtype == object and arr.size and all(
                type(v) is str and not v.endswith("\x00") for v in arr.flat):
            # Columns of text (VOTable char columns): one .npy blob, not a JSON list.
            return {"$objstr": self.array(arr.astype(str))}
        if arr.dtype.hasobject:
            return {"$objarray": [self(v) for v in arr.ravel().tolist()],
                    "shape": list(arr.shape)}
        if arr.dtype.kind not in "biufcSUVMm":
            raise UnsupportedResponse(f"numpy dtype {arr.dtype}")
        buf = io.BytesIO()
        np.save(buf, arr if arr.flags.c_contiguous else arr.copy(order="C"),
                allow_pickle=False)
        return {"$npy": self.blob(buf.getvalue(), "npy")}

    def __call__(self, obj):  # noqa: C901 - one branch per supported type
        if obj is None or isinstance(obj, (bool, int, float)) and \
                not isinstance(obj, np.generic):
            if isinstance(obj, float) and not np.isfinite(obj):
                return {"$float": repr(obj)}
            return obj
        if isinstance(obj, str):
            if len(obj) > _LONG_STRING:
                return {"$str": self.blob(obj.encode("utf-8", "surrogatepass"), "txt")}
            return obj
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return {"$bytes": self.blob(bytes(obj), "bin")}
        if isinstance(obj, np.generic):
            return {"$npscalar": self.array(np.asarray(obj))}
        if isinstance(obj, dict):
            return {"$dict": [[self(k), self(v)] for k, v in obj.items()]}
        if isinstance(obj, list):
            return [self(v) for v in obj]
        if isinstance(obj, tuple):
            return {"$tuple": [self(v) for v in obj]}
        mod = type(obj).__module__
        if mod.startswith("pyarrow"):
            import pyarrow as pa

            if isinstance(obj, pa.Table):
                sink = io.BytesIO()
                with pa.ipc.new_stream(sink, obj.schema) as writer:
                    writer.write_table(obj)
                return {"$arrow": self.blob(sink.getvalue(), "arrows")}
        if mod.startswith("astropy"):
            from astropy import units as u
            from astropy.table import Table

            if isinstance(obj, Table):
                return self.table(obj)
            if isinstance(obj, u.Quantity) and type(obj) is u.Quantity:
                return {"$quantity": self.array(obj.value), "unit": obj.unit.to_string()}
            if isinstance(obj, u.UnitBase):
                return {"$unit": obj.to_string()}
        if isinstance(obj, np.ma.MaskedArray):
            return {"$masked": self.array(np.ma.getdata(obj)),
                    "mask": self.array(np.ma.getmaskarray(obj))}
        if isinstance(obj, np.ndarray):
            return self.array(obj)
        raise UnsupportedResponse(f"{type(obj).__module__}.{type(obj).__qualname__}")

    def table(self, table):
        from astropy import units as u
        from astropy.table import Column, MaskedColumn

        columns = []
        for name in table.colnames:
            col = table[name]
            entry = {"name": name}
            if isinstance(col, MaskedColumn):
                entry["data"] = self.array(np.ma.getdata(col))
                entry["mask"] = self.array(np.ma.getmaskarray(col))
            elif isinstance(col, Column):
                entry["data"] = self.array(np.asarray(col))
            elif type(col) is u.Quantity:
                entry["data"] = self.array(col.value)
                entry["quantity"] = True
            else:
                raise UnsupportedResponse(f"table column {name!r} of type "
                                          f"{type(col).__qualname__}")
            unit = getattr(col, "unit", None)
            if unit is not None:
                entry["unit"] = unit.to_string()
            info = col.info
            for attr in ("description", "format"):
                value = getattr(info, attr, None)
                if isinstance(value, str):
                    entry[attr] = value
            meta = self.optional(dict(getattr(info, "meta", None) or {}))
            if meta is not None:
                entry["meta"] = meta
            columns.append(entry)
        out = {"$table": type(table).__name__, "columns": columns}
        meta = self.optional(dict(table.meta or {}))
        if meta is not None:
            out["meta"] = meta
        return out

    def optional(self, meta):
        """Metadata dict encoded, keeping only the entries that are plain data."""
        probe = _Probe()
        kept = {}
        for k, v in meta.items():
            try:
                probe(k)
                probe(v)
            except UnsupportedResponse:
                continue
            kept[k] = v
        return self(kept) if kept else None


class _Probe(_Encoder):
    """An encoder that only checks that a value can be encoded."""

    def blob(self, data, suffix):
        return "probe"


def encode_response(raw):
    """Encode a ``query`` answer as data only.

    Parameters
    ----------
    raw : object
        `str`, `bytes`, or a tree of dicts, lists, tuples, numbers, strings,
        bytes, NumPy arrays and scalars (masked or not, object arrays of
        these), astropy Tables (plain, masked or Quantity columns) and
        Quantities, pyarrow Tables.

    Returns
    -------
    content_type : str
    payload : bytes

    Raises
    ------
    UnsupportedResponse
        A type outside that list (the response is then not cached).
    """
    if isinstance(raw, str):
        return TEXT_TYPE, raw.encode("utf-8", "surrogatepass")
    if isinstance(raw, (bytes, bytearray)):
        return BYTES_TYPE, bytes(raw)
    enc = _Encoder()
    tree = enc(raw)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("tree.json", json.dumps({"format": CACHE_FORMAT, "tree": tree}))
        for name, data in enc.blobs.items():
            zf.writestr(name, data)
    return TREE_TYPE, buf.getvalue()


def decode_response(content_type, payload):
    """Invert `encode_response` (never unpickles; raises `CacheEntryError`)."""
    if content_type == TEXT_TYPE:
        try:
            return payload.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise CacheEntryError(f"text payload is not UTF-8: {exc}") from None
    if content_type == BYTES_TYPE:
        return payload
    if content_type != TREE_TYPE:
        raise CacheEntryError(f"unknown content type {content_type!r}")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            head = json.loads(zf.read("tree.json"))
            if not isinstance(head, dict) or head.get("format") != CACHE_FORMAT:
                raise CacheEntryError("payload is not a multilc cache tree")
            return _Decoder(zf)(head["tree"])
    except CacheEntryError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything odd in the file means damaged
        raise CacheEntryError(f"undecodable payload: {type(exc).__name__}: {exc}") from None


class _Decoder:
    def __init__(self, zf):
        self.zf = zf

    def blob(self, name):
        if not isinstance(name, str) or not name.startswith("b/"):
            raise CacheEntryError(f"bad blob reference {name!r}")
        return self.zf.read(name)

    def array(self, node):
        if "$objstr" in node:
            return self.array(node["$objstr"]).astype(object)
        if "$objarray" in node:
            items = [self(v) for v in node["$objarray"]]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(node["shape"])
        return np.load(io.BytesIO(self.blob(node["$npy"])), allow_pickle=False)

    def __call__(self, node):  # noqa: C901
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self(v) for v in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise CacheEntryError(f"unexpected node {type(node).__name__}")
        tag = next(iter(node))
        if tag == "$float":
            return float(node["$float"])
        if tag == "$str":
            return self.blob(node["$str"]).decode("utf-8", "surrogatepass")
        if tag == "$bytes":
            return self.blob(node["$bytes"])
        if tag == "$npscalar":
            return self.array(node["$npscalar"])[()]
        if tag in ("$npy", "$objarray", "$objstr"):
            return self.array(node)
        if tag == "$masked":
            return np.ma.MaskedArray(self.array(node["$masked"]),
                                     mask=self.array(node["mask"]))
        if tag == "$dict":
            return {_hashable(self(k)): self(v) for k, v in node["$dict"]}
        if tag == "$tuple":
            return tuple(self(v) for v in node["$tuple"])
        if tag == "$arrow":
            import pyarrow as pa

            with pa.ipc.open_stream(self.blob(node["$arrow"])) as reader:
                return reader.read_all()
        if tag == "$quantity":
            from astropy import units as u

            return u.Quantity(self.array(node["$quantity"]), node["unit"], copy=False)
        if tag == "$unit":
            from astropy import units as u

            return u.Unit(node["$unit"])
        if tag == "$table":
            return self.table(node)
        raise CacheEntryError(f"unknown tag {tag!r}")

    def table(self, node):
        from astropy import units as u
        from astropy.table import Column, MaskedColumn, QTable, Table

        cls = QTable if node["$table"] == "QTable" else Table
        out = cls()
        for entry in node["columns"]:
            data = self.array(entry["data"])
            unit = entry.get("unit")
            kwargs = {k: entry[k] for k in ("description", "format") if k in entry}
            if entry.get("quantity"):
                col = u.Quantity(data, unit)
            elif "mask" in entry:
                col = MaskedColumn(data, mask=self.array(entry["mask"]), unit=unit,
                                   name=entry["name"], **kwargs)
            else:
                col = Column(data, unit=unit, name=entry["name"], **kwargs)
            if "meta" in entry and hasattr(col, "meta"):
                col.meta.update(self(entry["meta"]))
            out[str(entry["name"])] = col
        if "meta" in node:
            out.meta.update(self(node["meta"]))
        return out


def _hashable(key):
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


# --------------------------------------------------------------------------- the cache
class ResponseCache:
    """Raw archive responses on disk, verified on every load.

    Parameters
    ----------
    folder : str or path
        The cache folder (``responses/<archive>/`` is made inside).
    """

    def __init__(self, folder):
        self.folder = Path(folder)

    def paths(self, archive, key):
        """``(payload, sidecar)`` paths of entry *key* of *archive*."""
        base = self.folder / "responses" / archive
        return base / f"{key}.payload", base / f"{key}.json"

    def store(self, archive, key, raw):
        """Store *raw*; raises `UnsupportedResponse` or `OSError`."""
        content_type, payload = encode_response(raw)
        payload_path, meta_path = self.paths(archive, key)
        meta = {"format": CACHE_FORMAT, "key": key, "archive": archive,
                "content_type": content_type, "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
                "multilc_version": _version(),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        with file_lock(payload_path):
            atomic_write(payload_path, payload)
            # The sidecar last: an entry exists only once both files are there.
            atomic_write(meta_path, json.dumps(meta, indent=1).encode())

    def load(self, archive, key):
        """The cached response of *key*, or None if there is none.

        Raises
        ------
        CacheEntryError
            The entry exists but fails verification or decoding; it has been
            deleted (the message says why).
        """
        payload_path, meta_path = self.paths(archive, key)
        if not meta_path.exists() and not payload_path.exists():
            return None
        with file_lock(payload_path):
            try:
                return self._verified(archive, key, payload_path, meta_path)
            except CacheEntryError:
                self._remove(payload_path, meta_path)
                raise

    def _verified(self, archive, key, payload_path, meta_path):
        where = f"cache entry {meta_path}"
        try:
            meta = json.loads(meta_path.read_bytes())
        except FileNotFoundError:
            raise CacheEntryError(f"{where}: sidecar missing") from None
        except (OSError, ValueError) as exc:
            raise CacheEntryError(f"{where}: unreadable sidecar ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            raise CacheEntryError(f"{where}: not a {CACHE_FORMAT} sidecar")
        if meta.get("key") != key or meta.get("archive") != archive:
            raise CacheEntryError(
                f"{where}: made for another request ({meta.get('archive')!r} key "
                f"{meta.get('key')!r}, expected {archive!r} key {key!r}); refused")
        try:
            payload = payload_path.read_bytes()
        except OSError as exc:
            raise CacheEntryError(f"{where}: payload unreadable ({exc})") from None
        if len(payload) != meta.get("size") or \
                hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
            raise CacheEntryError(f"{where}: payload size or checksum does not match "
                                  "the sidecar (damaged or altered)")
        try:
            return decode_response(meta.get("content_type"), payload)
        except CacheEntryError as exc:
            raise CacheEntryError(f"{where}: {exc}") from None

    def delete(self, archive, key):
        """Remove entry *key* (no error if absent)."""
        payload_path, meta_path = self.paths(archive, key)
        with file_lock(payload_path):
            self._remove(payload_path, meta_path)

    @staticmethod
    def _remove(*paths):
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
