"""The read-only S3 stand-in (multilc.testing.s3) with real S3 clients."""
import re

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from multilc.testing import ReplayServer
from multilc.testing.s3 import S3Standin, local_s3


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "cat"
    for k in range(3):
        part = root / "dataset" / f"Norder=1/Dir=0/Npix={k}.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"x": np.arange(k * 1000, (k + 1) * 1000),
                                 "y": np.linspace(0, 1, 1000)}), part, row_group_size=100)
    (root / "hats.properties").write_text("hats_col_ra=ra\n")
    return root


def _fs(endpoint):
    scheme, host = endpoint.split("://")
    return pafs.S3FileSystem(anonymous=True, region="us-east-1", endpoint_override=host,
                             scheme=scheme)


def test_pyarrow_lists_reads_and_filters(tree):
    with local_s3([(tree, "ztf/lc/hats")], bucket="pub") as endpoint:
        fs = _fs(endpoint)
        info = fs.get_file_info(pafs.FileSelector("pub/ztf/lc/hats", recursive=True))
        files = sorted(i.path for i in info if i.type == pafs.FileType.File)
        assert files == ["pub/ztf/lc/hats/dataset/Norder=1/Dir=0/Npix=0.parquet",
                         "pub/ztf/lc/hats/dataset/Norder=1/Dir=0/Npix=1.parquet",
                         "pub/ztf/lc/hats/dataset/Norder=1/Dir=0/Npix=2.parquet",
                         "pub/ztf/lc/hats/hats.properties"]
        assert fs.get_file_info("pub/ztf/lc/hats/dataset").type == pafs.FileType.Directory
        assert fs.get_file_info("pub/ztf/lc/nothing").type == pafs.FileType.NotFound
        with fs.open_input_file("pub/ztf/lc/hats/hats.properties") as f:
            assert f.read() == b"hats_col_ra=ra\n"
            assert f.read_at(5, 4) == b"_col_"  # (nbytes, offset)
        table = pds.dataset("pub/ztf/lc/hats/dataset", filesystem=fs, format="parquet") \
            .to_table(filter=pds.field("x") >= 2950)
        assert sorted(table["x"].to_pylist()) == list(range(2950, 3000))


def test_ranges_and_errors(tree):
    import requests

    with ReplayServer() as server:
        S3Standin(server, "pub", [(tree, "")])
        url = server.url + "/pub/hats.properties"
        assert requests.get(url, headers={"Range": "bytes=0-3"}).content == b"hats"
        r = requests.get(url, headers={"Range": "bytes=-3"})
        assert r.status_code == 206 and r.content == b"ra\n"
        assert r.headers["Content-Range"] == "bytes 12-14/15"
        assert requests.get(url, headers={"Range": "bytes=99-"}).status_code == 416
        head = requests.head(url)
        assert head.status_code == 200 and head.headers["Content-Length"] == "15"
        missing = requests.get(server.url + "/pub/nope")
        assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
        assert requests.put(url, data=b"x").status_code == 405
        # paging: one key per page, continuation tokens chain through every key
        keys, token = [], None
        while True:
            params = {"list-type": "2", "max-keys": "1"}
            if token:
                params["continuation-token"] = token
            text = requests.get(server.url + "/pub", params=params).text
            keys += re.findall(r"<Key>([^<]+)</Key>", text)
            if "<IsTruncated>true" not in text:
                break
            token = re.search(
                r"<NextContinuationToken>([^<]+)<", text).group(1)
        assert len(keys) == 4 and keys == sorted(keys)


def test_s3fs_reads_it_too(tree):
    s3fs = pytest.importorskip("s3fs")
    with local_s3([(tree, "cat")], bucket="pub") as endpoint:
        fs = s3fs.S3FileSystem(anon=True, client_kwargs={"endpoint_url": endpoint,
                                                         "region_name": "us-east-1"},
                               skip_instance_cache=True)
        assert sorted(fs.ls("pub/cat")) == ["pub/cat/dataset", "pub/cat/hats.properties"]
        with fs.open("pub/cat/dataset/Norder=1/Dir=0/Npix=1.parquet", "rb") as f:
            table = pq.read_table(f)
        assert table["x"].to_pylist() == list(range(1000, 2000))
