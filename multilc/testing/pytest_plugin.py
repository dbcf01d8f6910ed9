"""pytest fixtures for the multilc test stand-ins.

Register in ``tests/conftest.py`` (or a downstream plugin's conftest) with::

    pytest_plugins = ["multilc.testing.pytest_plugin"]
"""
import pytest

__all__ = ["replay_server"]


@pytest.fixture
def replay_server():
    """A started ``multilc.testing.ReplayServer``, stopped after the test.

    The test fails at teardown if a route handler raised, since such a bug
    would otherwise only show up as an HTTP 500 seen by the client.
    """
    from multilc.testing.replay import ReplayServer

    server = ReplayServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    errors = server.errors
    if errors:
        request, text = errors[0]
        pytest.fail(f"{len(errors)} ReplayServer handler(s) raised; first one, for "
                    f"{request.method} {request.path}:\n{text}", pytrace=False)
