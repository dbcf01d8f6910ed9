"""The multilc command line."""
import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable
from astropy.time import Time

from multilc import MultiBandLightCurve, make_events
from multilc.cli import main
from multilc.testing import Fault, ReplayServer
from multilc.testing.demo_archive import demo_service  # registers "demo"


@pytest.fixture
def targets_file(tmp_path):
    t = QTable()
    t["objectid"] = [1, 2, 3]
    t["ra"] = [10.0, 20.0, 30.0] * u.deg
    t["dec"] = [-1.0, 0.0, 1.0] * u.deg
    t["label"] = ["a", "b", "c"]
    path = tmp_path / "targets.ecsv"
    t.write(path)
    return path


@pytest.fixture
def service(monkeypatch):
    with ReplayServer() as server:
        monkeypatch.setenv("MULTILC_DEMO_URL", demo_service(server))
        monkeypatch.setenv("MULTILC_RETRIES", "1")
        monkeypatch.setenv("MULTILC_BACKOFF", "0.01")
        yield server


def test_collect_writes_file_exit_0(service, targets_file, tmp_path, capsys):
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "demo", "--radius", "2arcsec",
                 "-o", str(out), "--no-progress"])
    assert code == 0
    lc = MultiBandLightCurve.read(out)
    assert list(lc.objectids) == [1, 2, 3]
    assert lc.labels == {1: "a", 2: "b", 3: "c"}
    np.testing.assert_allclose(lc.flux.value, np.repeat([0.1, 0.2, 0.3], 3))
    assert "demo: 1 batches" in capsys.readouterr().out
    assert service.count() == 1


def test_collect_partial_failure_exit_1_file_still_written(service, targets_file, tmp_path,
                                                           capsys):
    service.faults("/demo/lightcurves", [Fault.status(503)] * 5)
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "demo", "-o", str(out),
                 "--no-progress", "--option", "demo.chunk_size=1",
                 "--option", "demo.concurrency=1"])
    assert code == 1
    captured = capsys.readouterr().out
    assert "failures" in captured and "[demo]" in captured and "503" in captured
    lc = MultiBandLightCurve.read(out)
    # 5 faults with 2 attempts per batch: the first two batches fail, the third works;
    # every target asked for stays in the file, the failed ones without data
    assert list(lc.objectids) == [1, 2, 3]
    assert sorted(set(lc.objectid.tolist())) == [3]


@pytest.mark.parametrize("argv, message", [
    (["collect", "nonexistent.ecsv", "--archives", "demo", "-o", "x.parquet"],
     "cannot read targets"),
    (["collect", "TARGETS", "--archives", "nosuch", "-o", "OUT"], "unknown archive"),
    (["collect", "TARGETS", "--archives", "demo", "-o", "OUT", "--radius", "1"],
     "no unit"),
    (["info", "missing.parquet"], "no such file"),
])
def test_usage_errors_exit_2(argv, message, targets_file, tmp_path, capsys):
    argv = [str(targets_file) if a == "TARGETS" else a for a in argv]
    argv = [str(tmp_path / "o.parquet") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_collect_refuses_to_overwrite(targets_file, tmp_path, capsys):
    out = tmp_path / "lc.parquet"
    out.write_text("keep me")
    assert main(["collect", str(targets_file), "--archives", "demo", "-o", str(out)]) == 2
    assert out.read_text() == "keep me"


def test_archives_lists_registered_readers(capsys):
    assert main(["archives"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "photometry" in out


def test_info_summarises_file(tmp_path, capsys):
    lc = MultiBandLightCurve.concat([
        MultiBandLightCurve.from_arrays([1, 1, 2], ["ztf:g", "ztf:g", "wise:W1"],
                                        Time([58000.0, 58010.0, 58020.0], format="mjd"),
                                        [1, 2, 3] * u.mJy, [0.1, 0.1, 0.1] * u.mJy),
        MultiBandLightCurve.from_events(make_events([2], "icecube",
                                                    Time([58030.0], format="mjd")))])
    path = tmp_path / "lc.nc"
    lc.write(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 objects" in out and "ztf:g" in out and "icecube" in out
    assert "MJD 58000" in out


def test_help_and_no_command(capsys):
    assert main(["--help"]) == 0
    assert main([]) == 2
    assert main(["collect", "--help"]) == 0
    assert "--checkpoint" in capsys.readouterr().out


def test_installed_entry_point():
    result = subprocess.run([sys.executable, "-m", "multilc.cli", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in ("collect", "archives", "info", "samples", "plot"):
        assert command in result.stdout


def test_samples_lists_literature_samples(capsys):
    assert main(["samples"]) == 0
    out = capsys.readouterr().out
    assert "yang2018" in out and "2018ApJ...862..109Y" in out
    assert main(["samples", "refresh"]) == 2


def test_plot_writes_one_png_per_target(tmp_path, capsys):
    lc = MultiBandLightCurve.from_arrays(
        [1, 1, 2, 2], ["ztf:g", "ztf:r", "ztf:g", "wise:W1"],
        Time([58000.0, 58001.0, 58002.0, 58003.0], format="mjd"),
        [1, 2, 3, 4] * u.mJy, [0.1] * 4 * u.mJy, label={1: "a", 2: "b"})
    path = tmp_path / "lc.parquet"
    lc.write(path)
    out = tmp_path / "figs"
    assert main(["plot", str(path), "-o", str(out), "--no-progress"]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 2 and pngs[0].startswith("1") and pngs[1].startswith("2")
    assert "wrote 2 file(s)" in capsys.readouterr().out
    pdf = tmp_path / "all.pdf"
    assert main(["plot", str(path), "-o", str(pdf), "--no-progress"]) == 0
    import re

    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes())) == 2
