"""Fixtures shared by the engine tests: the demo archive's local service."""
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from multilc.testing import ReplayServer
from multilc.testing.demo_archive import demo_service


def random_targets(n, seed=42):
    """*n* targets spread uniformly over the sky (fixed seed)."""
    rng = np.random.default_rng(seed)
    return SkyCoord(rng.uniform(0, 360, n) * u.deg,
                    np.degrees(np.arcsin(rng.uniform(-1, 1, n))) * u.deg)


@pytest.fixture
def service(monkeypatch):
    """The demo archive's stand-in on 127.0.0.1 (``MULTILC_DEMO_URL`` points at it)."""
    with ReplayServer() as server:
        monkeypatch.setenv("MULTILC_DEMO_URL", demo_service(server))
        yield server
