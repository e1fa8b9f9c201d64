"""The tests' fixtures: the servers they share (``servers.py`` says how a
server is started), a client, and ``sessiond.utilities`` reset around each
test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiond
from sessiond import utilities

from .servers import EXAMPLE_MODULES, REPO_ROOT, Server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without authentication running the example modules of
    ``examples/modules.toml`` as the README's quick start does (so module
    ``100000-py`` runs on this package where the manifest runs it)."""
    directory = tmp_path_factory.mktemp("server")
    server = Server(directory, "--modules", str(EXAMPLE_MODULES), "--watch-progress-interval", "1s")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of the tests' own modules: ``seed-api`` (a module written
    on the package, tests/modules/seed_api.py), ``broken`` (fails) and
    ``slow`` (the example's)."""
    directory = tmp_path_factory.mktemp("modules")
    here = Path(__file__).resolve().parent
    manifest = directory / "modules.toml"
    manifest.write_text(
        f"""
[modules.seed-api]
command = ["python3", "{here / 'modules' / 'seed_api.py'}"]
timeout = "60s"

[modules.broken]
command = ["sh", "-c", "echo 'disk full' >&2; exit 4"]

[modules.slow]
command = ["sh", "{REPO_ROOT / 'examples' / 'modules' / 'slow.sh'}"]
"""
    )
    return manifest


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[sessiond.Client]:
    """A sync client of ``server``."""
    with server.client() as client:
        yield client


@pytest.fixture(autouse=True)
def _isolated_utilities(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with ``sessiond.utilities`` unconfigured and no
    ``SESSIOND_*`` variables of the surroundings."""
    for name in list(os.environ):
        if name.startswith("SESSIOND_") and name != "SESSIOND_BIN":
            monkeypatch.delenv(name)
    monkeypatch.setattr(utilities, "_client", None)
    monkeypatch.setattr(utilities, "_session_id", None)
    yield
    current = utilities._client
    if current is not None:
        current.close()
