"""The multilc command line."""
import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable
from astropy.time import Time

from multilc import MultiBandLightCurve, make_events
from multilc.cli import build_parser, main
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
    assert f"wrote 2 figures to {out}" in capsys.readouterr().out
    pdf = tmp_path / "all.pdf"
    assert main(["plot", str(path), "-o", str(pdf), "--no-progress"]) == 0
    import re

    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes())) == 2


# --------------------------------------------------------------------------- one-line errors
def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


@pytest.mark.parametrize("radius, words", [
    ("1kg", ["--radius", "'1kg' is not an angle"]),
    ("-1arcsec", ["--radius", "positive"]),
    ("1", ["--radius", "no unit"]),
    ("abc", ["--radius", "not a quantity"]),
])
def test_bad_radius_is_one_line_exit_2(radius, words, targets_file, tmp_path, capsys):
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "demo", f"--radius={radius}",
                 "-o", str(out)])
    assert code == 2
    _one_line_error(capsys, *words)
    assert not out.exists()


def test_bad_reader_option_is_one_line_exit_2(targets_file, tmp_path, capsys):
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "icecube", "--option",
                 "icecube.top_n=abc", "-o", str(out), "--no-progress"])
    assert code == 2
    _one_line_error(capsys, "icecube", "top_n", "'abc'")
    code = main(["collect", str(targets_file), "--archives", "demo", "--option",
                 "demo.nosuch=1", "-o", str(out), "--no-progress"])
    assert code == 2
    _one_line_error(capsys, "nosuch")
    assert main(["collect", str(targets_file), "--archives", "demo", "--option",
                 "top_n=3", "-o", str(out)]) == 2
    _one_line_error(capsys, "ARCHIVE.OPTION=VALUE")


def test_debug_shows_the_traceback(targets_file, tmp_path, capsys):
    argv = ["collect", str(targets_file), "--archives", "icecube", "--option",
            "icecube.top_n=abc", "-o", str(tmp_path / "lc.parquet"), "--no-progress"]
    assert main(["--debug"] + argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "top_n" in err.splitlines()[-1]
    assert main(argv + ["--debug"]) == 2  # after the command too
    assert "Traceback" in capsys.readouterr().err


def test_version(capsys):
    import multilc

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"multilc {multilc.__version__}"
    assert main(["--version"]) == 0


@pytest.fixture
def corrupt_files(tmp_path):
    import pandas as pd

    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    truncated = tmp_path / "truncated.ecsv"
    truncated.write_text("# %ECSV 1.0\n# ---\n")
    return {"bad": bad, "foreign": foreign, "text": text, "truncated": truncated}


@pytest.mark.parametrize("command", ["info", "plot"])
@pytest.mark.parametrize("which", ["bad", "foreign", "text", "truncated"])
def test_info_and_plot_on_corrupt_or_foreign_file(command, which, corrupt_files, tmp_path,
                                                  capsys):
    path = corrupt_files[which]
    argv = [command, str(path)] + (["-o", str(tmp_path / "figs")] if command == "plot"
                                   else [])
    assert main(argv) == 2
    err = _one_line_error(capsys, path.name)
    assert "IORegistryError" not in err and "Format" not in err


def test_samples_refresh_errors(monkeypatch, capsys):
    assert main(["samples", "refresh", "nosuch"]) == 2
    _one_line_error(capsys, "unknown sample 'nosuch'", "yang2018")
    assert main(["samples", "refresh"]) == 2
    _one_line_error(capsys, "give a sample name")

    from multilc import samples
    from multilc.samples.literature import SampleFetchError

    def offline(name, **kwargs):
        # what requests/urllib3 say without DNS, wrapped as the fetchers wrap it
        raise SampleFetchError(
            f"NED query for literature sample {name!r} failed after 3 attempt(s): "
            "ConnectionError: HTTPSConnectionPool(host='ned.ipac.caltech.edu', port=443): "
            "Max retries exceeded (Caused by NameResolutionError(\"Failed to resolve "
            "'ned.ipac.caltech.edu' ([Errno -2] Name or service not known)\"))")

    monkeypatch.setattr(samples, "refresh_sample", offline)
    assert main(["samples", "refresh", "yang2018"]) == 2
    err = _one_line_error(capsys, "yang2018", "cannot resolve ned.ipac.caltech.edu",
                          "no network?")
    assert "HTTPSConnectionPool" not in err


def test_samples_listing_fits_100_columns(capsys):
    assert main(["samples"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "not cached" in out and "-1" not in out
    assert main(["samples", "--long"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "rule:" in out


def test_archives_listing(capsys):
    assert main(["archives"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    blocks = {}
    name = None
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = line
        else:
            blocks[name] += " " + line.strip()
    # per-target services say so in the singular
    assert "; 1 target per request" in blocks["hcv"]
    assert "targets per request" in blocks["heasarc.bepposax"]
    # event archives match error circles: no radius shown
    for name in ("heasarc.bepposax", "heasarc.fermi_gbm", "icecube"):
        assert "no match radius" in blocks[name] and "arcsec" not in blocks[name]
    assert "match radius 1 arcsec" in blocks["ztf"]


@pytest.fixture
def two_targets(tmp_path):
    lc = MultiBandLightCurve.concat([
        MultiBandLightCurve.from_arrays(
            [1, 1, 1, 2, 2], ["ztf:g", "ztf:r", "ztf:g", "ztf:g", "wise:W1"],
            Time([58000.0, 58001.0, 58100.0, 58002.0, 58003.0], format="mjd"),
            [1, 2, 3, 4, 5] * u.mJy, [0.1] * 5 * u.mJy, label={1: "a", 2: "b"}),
        MultiBandLightCurve.from_events(make_events([2], "icecube",
                                                    Time([58030.0], format="mjd")))])
    path = tmp_path / "lc.parquet"
    lc.write(path)
    return path


def test_info_lists_objects(two_targets, capsys):
    assert main(["info", str(two_targets)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()
            if line.strip() and line.split()[0] in ("1", "2")}
    assert "ztf:g, ztf:r" in rows["1"] and " 3 " in rows["1"]
    assert "58000.0-58100.0" in rows["1"]
    assert "icecube" in rows["2"] and "wise:W1" in rows["2"] and "58002.0-58030.0" in rows["2"]
    assert "objectid" in out and "points" in out


def test_plot_options(two_targets, tmp_path, capsys):
    figs = tmp_path / "figs"
    assert main(["plot", str(two_targets), "-o", str(figs), "--objects", "2",
                 "--format", "svg", "--magnitudes"]) == 0
    written = sorted(figs.glob("*.svg"))
    assert [p.name for p in written] == ["2_b.svg"]
    assert f"wrote 1 figures to {figs}/" in capsys.readouterr().out
    assert main(["plot", str(two_targets), "-o", str(tmp_path / "g"), "--bands", "ztf:g",
                 "--start", "57990", "--stop", "2017-12-31"]) == 0
    assert len(list((tmp_path / "g").glob("*.png"))) == 2
    assert main(["plot", str(two_targets), "-o", str(tmp_path / "one.pdf"),
                 "--objects", "1"]) == 0
    assert "wrote 1 figures to" in capsys.readouterr().out
    for argv, words in [
        (["--bands", "ztf:z"], ["ztf:z", "not in the file"]),
        (["--objects", "9"], ["no object 9"]),
        (["--objects", "Mrk 590"], ["no object named 'Mrk 590'"]),
        (["--start", "58100", "--stop", "58000"], ["--stop must be after --start"]),
        (["--start", "yesterday"], ["neither an MJD nor a date"]),
    ]:
        assert main(["plot", str(two_targets), "-o", str(tmp_path / "x")] + argv) == 2
        _one_line_error(capsys, *words)


def test_plot_of_empty_file_says_why(tmp_path, capsys):
    path = tmp_path / "empty.parquet"
    MultiBandLightCurve.empty().write(path)
    assert main(["plot", str(path), "-o", str(tmp_path / "figs")]) == 2
    _one_line_error(capsys, "nothing to plot", "multilc info")


def test_each_failure_printed_once(service, targets_file, tmp_path, capsys):
    service.faults("/demo/lightcurves", [Fault.status(503)] * 5)
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "demo", "-o", str(out),
                 "--no-progress", "--option", "demo.chunk_size=1",
                 "--option", "demo.concurrency=1"])
    assert code == 1
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert both.count("503") == 2  # two failed batches, each said once


def test_name_resolution_failure_said_in_one_short_line(targets_file, tmp_path, capsys,
                                                        monkeypatch):
    # a host name that cannot resolve (RFC 6761 reserves .invalid)
    monkeypatch.setenv("MULTILC_DEMO_URL", "http://archive.invalid/demo")
    monkeypatch.setenv("MULTILC_RETRIES", "0")
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "demo", "-o", str(out),
                 "--no-progress"])
    assert code == 1
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert both.count("archive.invalid") == 1
    assert "[demo] cannot resolve archive.invalid: no network?" in captured.out
    assert out.exists()


@pytest.mark.parametrize("module, command, extra", [
    ("matplotlib", "plot", "plot"),
    ("platformdirs", "collect", "archives"),
])
def test_missing_extra_names_the_extra(module, command, extra, monkeypatch, two_targets,
                                       targets_file, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    monkeypatch.delenv("MULTILC_CACHE_DIR", raising=False)
    if command == "plot":
        argv = ["plot", str(two_targets), "-o", str(tmp_path / "figs")]
    else:
        argv = ["collect", str(targets_file), "--archives", "demo", "-o",
                str(tmp_path / "new.parquet"), "--no-progress"]
    assert main(argv) == 2
    err = _one_line_error(capsys, f"needs {module}", f'pip install "multilc[{extra}]"')
    assert err.startswith(f"multilc {command}"), err


# --------------------------------------------------------------------------- start-up cost
def test_import_and_help_do_not_load_heavy_modules():
    heavy = ("pandas", "xarray", "pyarrow", "matplotlib", "pyvo", "astroquery", "scipy",
             "multilc.lightcurve", "multilc.collect", "multilc.archives")
    code = ("import sys, multilc, multilc.cli, contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert multilc.cli.main(['--help']) == 0\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_lazy_names_are_the_real_objects():
    code = ("import multilc\n"
            "from multilc.collect import engine\n"  # imports the subpackage multilc.collect
            "assert multilc.collect is engine.collect, multilc.collect\n"
            "from multilc.lightcurve import MultiBandLightCurve\n"
            "assert multilc.MultiBandLightCurve is MultiBandLightCurve\n"
            "assert 'parquet' in list(MultiBandLightCurve.read.list_formats(out=None) or "
            "MultiBandLightCurve.read.registry.get_formats(MultiBandLightCurve)['Format'])\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip().endswith("ok"), result.stderr


# --------------------------------------------------------------------------- demo
def test_demo_runs_offline_and_says_so(tmp_path, capsys, _isolated_cache):
    pytest.importorskip("matplotlib")
    import pyarrow.parquet as pq
    from astropy.coordinates import SkyCoord

    from multilc.testing.demo_services import DEMO_NOTE, demo_data_dir

    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(DEMO_NOTE.split(";")[0][:60]) >= 1
    assert "local stand-ins" in printed and "not fetched from the archives" in printed.replace(
        "\n", " ")
    assert f"wrote 7 figures to {out / 'figs'}/" in printed
    # the file says it too, in its metadata
    meta = pq.read_schema(out / "lc.parquet").metadata
    assert b"local stand-ins" in meta[b"multilc.demo"]
    assert "local stand-ins" in (out / "report.txt").read_text()
    assert len(list((out / "figs").glob("*.png"))) == 7
    # the real engine wrote every example target, with the events of the real files
    lc = MultiBandLightCurve.read(out / "lc.parquet")
    assert list(lc.objectids) == [1, 2, 3, 4, 5, 6, 7]
    ev = lc.events
    assert set(ev["archive"]) == {"icecube", "heasarc.bepposax", "heasarc.fermi_gbm"}
    # IceCube: independent brute force over the bundled events (error circle, 2 deg cap)
    data = np.loadtxt(demo_data_dir() / "IC40_exp.csv", comments="#")
    events = SkyCoord(data[:, 3] * u.deg, data[:, 4] * u.deg)
    targets = lc.objects
    for row in targets:
        sep = SkyCoord(row["ra"], row["dec"]).separation(events).deg
        expected = np.sort(10 ** data[(sep < data[:, 2]) & (sep <= 2), 1])
        got = ev[(ev["archive"] == "icecube") & (ev["objectid"] == row["objectid"])]
        np.testing.assert_allclose(np.sort(got["energy"].to_value(u.GeV)), expected,
                                   rtol=1e-12)
    assert (ev["archive"] == "icecube").sum() > 10
    # the demo's data never reach the user's cache
    assert not any(_isolated_cache.rglob("*"))
    # a second demo into the same folder needs --overwrite
    assert main(["demo", "-o", str(out), "--no-figures"]) == 2
    _one_line_error(capsys, "--overwrite")


def test_output_folder_must_exist(targets_file, tmp_path, capsys):
    out = tmp_path / "nosuch" / "lc.parquet"
    assert main(["collect", str(targets_file), "--archives", "demo", "-o", str(out)]) == 2
    _one_line_error(capsys, "does not exist")
    assert main(["collect", str(targets_file), "--archives", "demo", "-o",
                 str(tmp_path / "lc.txt")]) == 2
    _one_line_error(capsys, ".parquet, .nc or .ecsv")


def test_reader_missing_module_names_the_extra(service, targets_file, tmp_path, capsys,
                                               monkeypatch):
    # the demo reader's query needs requests; without it each batch fails, and the
    # report line says which extra brings it
    monkeypatch.setitem(sys.modules, "requests", None)
    out = tmp_path / "lc.parquet"
    code = main(["collect", str(targets_file), "--archives", "demo", "-o", str(out),
                 "--no-progress"])
    captured = capsys.readouterr()
    if code == 2:  # the engine itself stopped before any batch: one line naming the extra
        assert 'pip install "multilc[archives]"' in captured.err
    else:
        assert code == 1
        assert '[demo] needs requests, which is not installed: pip install ' \
               '"multilc[archives]"' in captured.out


def test_info_reads_a_light_curve_file_by_content(two_targets, tmp_path, capsys):
    renamed = tmp_path / "lightcurve.dat"
    renamed.write_bytes(two_targets.read_bytes())
    code = main(["info", str(renamed)])
    captured = capsys.readouterr()
    if code == 0:  # the registry identifies parquet by content
        assert "2 objects" in captured.out
    else:  # or says in one line that it cannot tell the format
        assert code == 2 and len(captured.err.strip().splitlines()) == 1
