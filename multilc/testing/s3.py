"""A read-only Amazon S3 stand-in serving local folders, mounted on a ``ReplayServer``.

`S3Standin` answers the part of the S3 REST API that readers of public
buckets use -- anonymous ``GetObject`` (with ``Range``), ``HeadObject``,
``HeadBucket`` and ``ListObjectsV2`` (``prefix``, ``delimiter``,
``max-keys``, ``continuation-token``, ``start-after``) -- with path-style
addressing (``http://127.0.0.1:PORT/bucket/key``), which is what clients use
when given an endpoint (``pyarrow.fs.S3FileSystem(endpoint_override=...,
scheme="http")``, ``s3fs``/``botocore`` with ``endpoint_url``).  Objects are
the files of local folders, read at request time, so nothing is copied.

`local_s3` is the context manager tests use: it starts a server, mounts the
stand-in and yields the endpoint URL (the same call as the former moto-based
helper: ``local_s3([(local_dir, prefix)], bucket="...")``).  It needs no AWS
SDK, so the test extras need neither moto nor boto3, whose botocore pins
fought s3fs's aiobotocore in pip's resolver.

Behaviour follows the Amazon S3 API Reference (GetObject, HeadObject,
HeadBucket, ListObjectsV2; "Error responses"); choices of this stand-in are
marked "stand-in choice".
"""
from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from .replay import RecordedRequest, ReplayServer

__all__ = ["S3Standin", "local_s3"]

#: XML namespace of S3 responses (S3 API Reference, ListObjectsV2 response syntax).
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
#: Largest page of ListObjectsV2 (S3 API Reference: max-keys default and maximum 1000).
_MAX_KEYS = 1000
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _http_date(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class S3Standin:
    """A public, read-only S3 bucket serving local folders.

    Parameters
    ----------
    server : ReplayServer
        Server to mount the bucket on (path ``/<bucket>``).
    bucket : str
        Bucket name.
    uploads : sequence of (local_dir, prefix)
        Each file below *local_dir* is the object ``prefix/<relative path>``.
    """

    def __init__(self, server: ReplayServer, bucket: str, uploads=()):
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ValueError(f"{bucket!r} is not a valid S3 bucket name")
        self.server = server
        self.bucket = bucket
        self._objects: dict[str, Path] = {}
        for local_dir, prefix in uploads:
            self.add_folder(local_dir, prefix)
        server.route(f"/{bucket}", method=None, handler=self._bucket)
        server.route(f"/{bucket}/<path:key>", method=None, handler=self._object)

    @property
    def endpoint(self) -> str:
        """Endpoint URL for clients (``http://127.0.0.1:PORT``)."""
        return self.server.url

    def add_folder(self, local_dir, prefix=""):
        """Serve every file below *local_dir* under *prefix*."""
        local_dir = Path(local_dir)
        prefix = str(prefix).strip("/")
        for path in sorted(local_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(local_dir).as_posix()
                self._objects[f"{prefix}/{rel}" if prefix else rel] = path

    def add_file(self, path, key):
        """Serve the local file *path* as object *key*."""
        self._objects[str(key).lstrip("/")] = Path(path)

    @property
    def keys(self) -> list[str]:
        """Object keys, sorted (S3 lists keys in UTF-8 binary order)."""
        return sorted(self._objects, key=lambda k: k.encode())

    # -- responses ----------------------------------------------------------
    def _error(self, status, code, message, resource):
        from werkzeug.wrappers import Response

        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"<Resource>{escape(resource)}</Resource><RequestId>standin</RequestId>"
                "</Error>")
        return Response(body, status=status, content_type="application/xml")

    def _bucket(self, request: RecordedRequest):
        from werkzeug.wrappers import Response

        if request.method == "HEAD":
            return Response(b"", status=200, headers={"x-amz-bucket-region": "us-east-1"})
        if request.method != "GET":
            return self._error(405, "MethodNotAllowed", "this stand-in is read-only",
                               f"/{self.bucket}")
        if "location" in request.args:
            return Response(f'<?xml version="1.0" encoding="UTF-8"?>\n'
                            f'<LocationConstraint xmlns="{_NS}"/>',
                            content_type="application/xml")
        return self._list(request)

    def _list(self, request):
        from werkzeug.wrappers import Response

        args = request.args
        prefix = args.get("prefix", "")
        delimiter = args.get("delimiter", "")
        try:
            max_keys = min(int(args.get("max-keys", _MAX_KEYS)), _MAX_KEYS)
        except ValueError:
            return self._error(400, "InvalidArgument", "max-keys must be an integer",
                               f"/{self.bucket}")
        # stand-in choice: the continuation token is the last key returned
        after = args.get("continuation-token") or args.get("start-after") or ""
        v2 = args.get("list-type") == "2"
        if not v2:  # ListObjects (v1) pages with marker
            after = args.get("marker", "")
        contents, prefixes, truncated, last = [], [], False, ""
        for key in self.keys:
            if not key.startswith(prefix) or (after and key.encode() <= after.encode()):
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                if prefixes and prefixes[-1] == common:
                    continue
                if after and common.encode() <= after.encode():
                    continue
                item = ("prefix", common)
            else:
                item = ("key", key)
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if item[0] == "prefix":
                prefixes.append(item[1])
                last = item[1]
            else:
                contents.append(key)
                last = key
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 f'<ListBucketResult xmlns="{_NS}">',
                 f"<Name>{escape(self.bucket)}</Name>",
                 f"<Prefix>{escape(prefix)}</Prefix>",
                 f"<MaxKeys>{max_keys}</MaxKeys>",
                 f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
        if delimiter:
            parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        if v2:
            parts.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>")
            if args.get("continuation-token"):
                parts.append("<ContinuationToken>"
                             f"{escape(args['continuation-token'])}</ContinuationToken>")
            if args.get("start-after"):
                parts.append(f"<StartAfter>{escape(args['start-after'])}</StartAfter>")
            if truncated:
                parts.append(f"<NextContinuationToken>{escape(last)}"
                             "</NextContinuationToken>")
        else:
            parts.append(f"<Marker>{escape(args.get('marker', ''))}</Marker>")
            if truncated:
                parts.append(f"<NextMarker>{escape(last)}</NextMarker>")
        for key in contents:
            stat = self._objects[key].stat()
            parts.append(f"<Contents><Key>{escape(key)}</Key>"
                         f"<LastModified>{_iso(stat.st_mtime)}</LastModified>"
                         f"<ETag>&quot;{self._etag(key)}&quot;</ETag>"
                         f"<Size>{stat.st_size}</Size>"
                         "<StorageClass>STANDARD</StorageClass></Contents>")
        for common in prefixes:
            parts.append(f"<CommonPrefixes><Prefix>{escape(common)}</Prefix>"
                         "</CommonPrefixes>")
        parts.append("</ListBucketResult>")
        return Response("".join(parts), content_type="application/xml")

    def _etag(self, key):
        # stand-in choice: MD5 of path, size and mtime (S3 uses the MD5 of the
        # content for simple uploads; clients only compare ETags for equality)
        stat = self._objects[key].stat()
        text = f"{self._objects[key]}:{stat.st_size}:{stat.st_mtime_ns}"
        return hashlib.md5(text.encode()).hexdigest()

    def _object(self, request: RecordedRequest):
        from werkzeug.wrappers import Response

        key = request.path_params["key"]
        resource = f"/{self.bucket}/{key}"
        if request.method not in ("GET", "HEAD"):
            return self._error(405, "MethodNotAllowed", "this stand-in is read-only",
                               resource)
        path = self._objects.get(key)
        if path is None or not path.is_file():
            if request.method == "HEAD":  # HEAD responses have no body
                return Response(b"", status=404)
            return self._error(404, "NoSuchKey", "The specified key does not exist.",
                               resource)
        data = path.read_bytes()
        size = len(data)
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{self._etag(key)}"',
                   "Last-Modified": _http_date(path.stat().st_mtime)}
        status = 200
        wanted = request.headers.get("Range")
        if wanted:
            found = _RANGE.match(wanted.strip())
            if not found or found.group(1) == found.group(2) == "":
                return self._error(416, "InvalidRange", f"cannot serve {wanted!r}",
                                   resource)
            first, last = found.groups()
            if first == "":  # suffix range: the last N bytes
                start, stop = max(size - int(last), 0), size - 1
            else:
                start = int(first)
                stop = min(int(last), size - 1) if last else size - 1
            if start >= size or stop < start:
                response = self._error(416, "InvalidRange",
                                       "The requested range is not satisfiable", resource)
                response.headers["Content-Range"] = f"bytes */{size}"
                return response
            data = data[start:stop + 1]
            headers["Content-Range"] = f"bytes {start}-{stop}/{size}"
            status = 206
        return Response(data, status=status, headers=headers,
                        content_type="application/octet-stream")


@contextlib.contextmanager
def local_s3(uploads=(), *, bucket="multilc-test"):
    """Serve local folders as a public S3 bucket on 127.0.0.1; yield the endpoint URL.

    Parameters
    ----------
    uploads : sequence of (local_dir, prefix)
        Folders served under the given key prefixes.
    bucket : str
        Bucket name.

    Yields
    ------
    str
        ``http://127.0.0.1:<port>``; give it to the reader's endpoint setting,
        or to ``pyarrow.fs.S3FileSystem(endpoint_override="127.0.0.1:<port>",
        scheme="http", anonymous=True)``.
    """
    with ReplayServer() as server:
        S3Standin(server, bucket, uploads)
        yield server.url
