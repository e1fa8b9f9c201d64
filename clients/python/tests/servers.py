"""Real sessiond servers for the tests, each a child process of the
sessiond binary on an ephemeral port with a database of its own.

The binary is ``$SESSIOND_BIN`` (``tests/python_package.rs`` builds this
workspace's and sets it), else cargo's debug build
(``$CARGO_TARGET_DIR/debug/sessiond``, else ``target/debug/sessiond``).

Servers run exec modules with this interpreter as ``python3`` (its folder
first on ``PATH``) and with this package's source first on ``PYTHONPATH``,
so that modules written on the package run the code under test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

import sessiond

REPO_ROOT = Path(__file__).resolve().parents[3]
PACKAGE_SOURCE = REPO_ROOT / "clients" / "python" / "src"
EXAMPLE_MODULES = REPO_ROOT / "examples" / "modules.toml"
EXAMPLE_POLICY = REPO_ROOT / "examples" / "policy.toml"
# How long a server may take to start listening.
START_TIMEOUT = 30.0
_LISTENING = re.compile(r"sessiond listening address=(\S+)")


def sessiond_binary() -> Path:
    """The sessiond binary the tests start.

    Raises:
        RuntimeError: when there is none.
    """
    named = os.environ.get("SESSIOND_BIN")
    if named:
        return Path(named)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    binary = target / "debug" / "sessiond"
    if not binary.is_file():
        raise RuntimeError(
            f"no sessiond binary: set SESSIOND_BIN, or build one (cargo build -p sessiond) at {binary}"
        )
    return binary


def unique_user(prefix: str) -> str:
    """A user name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def module_environment() -> dict[str, str]:
    """The environment a server (and so its modules) runs with: this one
    without sessiond's settings, with this interpreter as ``python3`` and
    the package's source first on ``PYTHONPATH``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SESSIOND_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in [str(PACKAGE_SOURCE), env.get("PYTHONPATH", "")] if part
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("RUST_LOG", "info")
    return env


class Server:
    """A sessiond child process; ``stop`` and ``start`` again keep its
    address and database."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = list(args)
        self.address = "127.0.0.1:0"
        self.log = directory / "sessiond.log"
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def endpoint(self) -> str:
        """``HOST:PORT``."""
        return self.address

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (as a module's ``SESSIOND_ENDPOINT``)."""
        return f"http://{self.address}"

    def start(self) -> Server:
        """Starts the server and waits until it listens."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(sessiond_binary()),
                    "--listen",
                    self.address,
                    "--database",
                    f"sqlite://{self.directory / 'sessiond.db'}",
                    *self.args,
                ],
                cwd=self.directory,
                env=module_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with self.log.open("rb") as log:
                log.seek(offset)
                match = _LISTENING.search(log.read().decode(errors="replace"))
            if match:
                self.address = match.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sessiond did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        """Stops the server (SIGTERM: its graceful shutdown) and waits."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def client(self, **settings: object) -> sessiond.Client:
        """A sync client of this server."""
        return sessiond.Client(self.endpoint, **settings)  # type: ignore[arg-type]
