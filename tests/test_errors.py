"""A missing optional dependency is a `MissingDependencyError` naming the extra.

Each case hides one module (``sys.modules[name] = None`` makes its import
fail, as when it is not installed) and calls the public API that needs it.
"""
import sys

import pytest

import multilc
from multilc.errors import MissingDependencyError, MultilcError, require
from tests.collect.conftest import random_targets, service  # noqa: F401 - a fixture


def hide(monkeypatch, *names):
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_require_names_the_extra_and_keeps_the_cause(monkeypatch):
    hide(monkeypatch, "platformdirs")
    with pytest.raises(MissingDependencyError) as info:
        require("platformdirs", "archives", "the response cache")
    message = str(info.value)
    assert 'pip install "multilc[archives]"' in message
    assert message.startswith("the response cache needs platformdirs")
    # catchable as multilc's own error and as the ImportError it stands for
    assert isinstance(info.value, MultilcError) and isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)
    assert require("json", "archives").dumps([1]) == "[1]"


@pytest.mark.parametrize("method, args", [("plot", ()), ("plot_all", ("figs",))])
def test_plotting_without_matplotlib(method, args, monkeypatch, tmp_path):
    lc = multilc.MultiBandLightCurve.empty()
    hide(monkeypatch, "matplotlib", "matplotlib.pyplot")
    with pytest.raises(MissingDependencyError, match=r'multilc\[plot\]') as info:
        getattr(lc, method)(*[tmp_path / a for a in args])
    assert f"MultiBandLightCurve.{method} needs matplotlib" in str(info.value)
    assert not (tmp_path / "figs").exists()


def test_cache_folder_without_platformdirs(monkeypatch):
    from multilc.collect.engine import default_cache_dir

    monkeypatch.delenv("MULTILC_CACHE_DIR", raising=False)
    hide(monkeypatch, "platformdirs")
    with multilc.conf.set_temp("cache_dir", ""):
        with pytest.raises(MissingDependencyError, match=r'multilc\[archives\]') as info:
            default_cache_dir()
    assert "MULTILC_CACHE_DIR" in str(info.value)
    # the setting needs no platformdirs
    monkeypatch.setenv("MULTILC_CACHE_DIR", "/some/folder")
    assert str(default_cache_dir()) == "/some/folder"


def test_progress_bars_without_tqdm(service, monkeypatch):  # noqa: F811
    from multilc.collect import engine

    hide(monkeypatch, "tqdm", "tqdm.auto")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    # automatic (progress=None) on a terminal: no bars, no error
    assert engine._show_progress(None, multilc.conf) is False
    lc = multilc.collect(random_targets(3), archives="demo", cache=False, retries=0)
    assert lc.report.ok and len(lc.objectids) == 3
    # asked for explicitly: the extra is named, and no request was made
    before = service.count("/demo/lightcurves")
    with pytest.raises(MissingDependencyError,
                       match=r'progress=True needs tqdm.*multilc\[plot\]'):
        multilc.collect(random_targets(3), archives="demo", cache=False, progress=True)
    assert service.count("/demo/lightcurves") == before
