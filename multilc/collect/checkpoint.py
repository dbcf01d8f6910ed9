"""Finished batches on disk that verify themselves: checkpoints and streamed output.

A finished batch is a parquet file (`multilc.io.formats.write_parquet`) and
a JSON sidecar holding the batch's request key, archive, objectids, the
parquet file's size and SHA-256, and the batch's drop counts and per-target
failures.  Two layouts share this code:

checkpoint (``collect(..., checkpoint=folder)``)
    ``<folder>/<archive>/<key>.parquet`` and ``<key>.json``.
output (``collect(..., output=folder)``)
    a partitioned parquet dataset, ``<folder>/archive=<archive>/part-<key>.parquet``
    with the sidecar ``_part-<key>.json`` beside it (pyarrow's dataset
    discovery skips names starting with ``_`` and ``.``).  The output folder
    is its own checkpoint: a rerun with the same ``output=`` skips the parts
    already there.

On resume the sidecar must parse, name the same key, archive and objectids
as the batch, and the parquet file must have the recorded size and checksum
and be readable; otherwise the pair is removed, a warning says why, and the
batch runs again.  The parquet file is written first and the sidecar last,
each through a temporary file and a rename under a file lock, so a killed
or concurrent writer never leaves a pair that passes these checks with the
wrong content.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from multilc.collect.cache import (CacheEntryError, _version, atomic_write, file_lock,
                                   sha256_file)

__all__ = ["CheckpointStore", "CHECKPOINT_FORMAT"]

#: Layout version written in every sidecar.
CHECKPOINT_FORMAT = "multilc-checkpoint/1"


class CheckpointStore:
    """Finished batches in *folder* (see the module docstring).

    Parameters
    ----------
    folder : str or path
    layout : {"checkpoint", "output"}
    """

    def __init__(self, folder, layout="checkpoint"):
        if layout not in ("checkpoint", "output"):
            raise ValueError(f"layout must be 'checkpoint' or 'output', got {layout!r}")
        self.folder = Path(folder)
        self.layout = layout

    def paths(self, archive, key):
        """``(parquet, sidecar)`` paths of batch *key* of *archive*."""
        if self.layout == "output":
            base = self.folder / f"archive={archive}"
            return base / f"part-{key}.parquet", base / f"_part-{key}.json"
        base = self.folder / archive
        return base / f"{key}.parquet", base / f"{key}.json"

    # ------------------------------------------------------------------ write
    def save(self, archive, key, objectids, lc, *, dropped=None, failures=(),
             requests=0):
        """Write one finished batch; returns the parquet path."""
        from multilc.collect.api import scrub
        from multilc.io.formats import write_parquet

        lc_path, meta_path = self.paths(archive, key)
        lc_path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lc_path):
            tmp = lc_path.with_name(f".tmp-{lc_path.name}")
            try:
                write_parquet(lc, tmp, overwrite=True)
                digest, size = sha256_file(tmp)
                tmp.replace(lc_path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            meta = {"format": CHECKPOINT_FORMAT, "key": key, "archive": archive,
                    "objectids": [int(i) for i in objectids], "parquet": lc_path.name,
                    "size": size, "sha256": digest, "dropped": dict(dropped or {}),
                    "failures": [f.to_dict() for f in failures], "requests": int(requests),
                    "multilc_version": _version()}
            # The sidecar is written last: a batch counts as finished only when
            # it exists and matches the parquet file.
            atomic_write(meta_path, scrub(json.dumps(meta, indent=1)).encode())
        return lc_path

    # ------------------------------------------------------------------ read
    def exists(self, archive, key):
        """True when a sidecar for *key* is there (verified only by `load`)."""
        return self.paths(archive, key)[1].exists()

    def load(self, archive, key, objectids, *, read=True):
        """The finished batch *key*, verified, or None if there is none.

        Parameters
        ----------
        archive, key : str
        objectids : sequence of int
            The batch's targets; the checkpoint must name the same.
        read : bool
            Read the light curve (False: verify the file only, return its path
            in place of the light curve).

        Returns
        -------
        None or dict
            ``{"lc", "path", "dropped", "failures", "requests"}``.

        Raises
        ------
        CacheEntryError
            The checkpoint exists but is damaged or belongs to another batch;
            it has been removed and the message says why.
        """
        from multilc.collect.api import Failure

        lc_path, meta_path = self.paths(archive, key)
        if not meta_path.exists():
            return None
        with file_lock(lc_path):
            try:
                meta = self._verified(archive, key, objectids, lc_path, meta_path)
                lc = self._read(lc_path) if read else self._check_footer(lc_path)
                failures = [Failure(**f) for f in meta.get("failures", [])]
                dropped = {str(k): int(v) for k, v in dict(meta.get("dropped", {})).items()}
            except CacheEntryError:
                self._remove(lc_path, meta_path)
                raise
            except Exception as exc:  # noqa: BLE001 - a bad field is a damaged file
                self._remove(lc_path, meta_path)
                raise CacheEntryError(f"checkpoint {meta_path}: unusable ({type(exc).__name__}: "
                                      f"{exc})") from None
        return {"lc": lc, "path": lc_path, "dropped": dropped, "failures": failures,
                "requests": int(meta.get("requests", 0))}

    def _verified(self, archive, key, objectids, lc_path, meta_path):
        where = f"checkpoint {meta_path}"
        try:
            meta = json.loads(meta_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CacheEntryError(f"{where}: unreadable sidecar ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise CacheEntryError(f"{where}: not a {CHECKPOINT_FORMAT} sidecar (written by "
                                  "another multilc version or damaged)")
        if meta.get("key") != key or meta.get("archive") != archive:
            raise CacheEntryError(f"{where}: belongs to another batch ({meta.get('archive')!r}"
                                  f" key {meta.get('key')!r}); refused")
        stored = meta.get("objectids")
        if not isinstance(stored, list) or [int(i) for i in stored] != \
                [int(i) for i in objectids]:
            raise CacheEntryError(f"{where}: made for other targets than this batch; refused")
        if meta.get("parquet") != lc_path.name:
            raise CacheEntryError(f"{where}: names parquet file {meta.get('parquet')!r}, "
                                  f"not {lc_path.name!r}")
        try:
            digest, size = sha256_file(lc_path)
        except OSError as exc:
            raise CacheEntryError(f"{where}: parquet file unreadable ({exc})") from None
        if size != meta.get("size") or digest != meta.get("sha256"):
            raise CacheEntryError(f"{where}: parquet file size or checksum does not match "
                                  "(damaged or altered)")
        return meta

    @staticmethod
    def _read(lc_path):
        from multilc.io.formats import read_parquet

        try:
            return read_parquet(lc_path)
        except Exception as exc:  # noqa: BLE001
            raise CacheEntryError(f"checkpoint {lc_path}: unreadable parquet "
                                  f"({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _check_footer(lc_path):
        """Check that the parquet footer and multilc metadata are there (cheap)."""
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(lc_path).metadata or {}
        except Exception as exc:  # noqa: BLE001
            raise CacheEntryError(f"checkpoint {lc_path}: unreadable parquet "
                                  f"({type(exc).__name__}: {exc})") from None
        if b"multilc" not in meta:
            raise CacheEntryError(f"checkpoint {lc_path}: parquet file without multilc "
                                  "metadata")
        return None

    def remove(self, archive, key):
        """Remove batch *key* (no error if absent)."""
        lc_path, meta_path = self.paths(archive, key)
        with file_lock(lc_path):
            self._remove(lc_path, meta_path)

    @staticmethod
    def _remove(*paths):
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
