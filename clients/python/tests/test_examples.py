"""The runnable examples of ``clients/python/examples``, as a user runs
them: the seed's two examples against a server."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from .servers import PACKAGE_SOURCE, REPO_ROOT, Server

EXAMPLES = REPO_ROOT / "clients" / "python" / "examples"


def run_example(name: str, server: Server) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SESSIOND_")}
    env["SESSIOND_ENDPOINT"] = server.endpoint
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(PACKAGE_SOURCE), env.get("PYTHONPATH", "")] if p)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def seed_code(path: Path) -> str:
    """The example's code without its docstring."""
    tree = ast.parse(path.read_text())
    return ast.unparse(ast.Module(body=tree.body[1:], type_ignores=[]))


def test_the_first_example_is_the_seeds_but_for_the_import(server: Server) -> None:
    assert seed_code(EXAMPLES / "clientless_session.py") == "\n".join(
        [
            "from sessiond import utilities",
            "with utilities.ClientlessSession('R41') as session:",
            "    session.open_module(module_id='100000')",
            "    data = session.get_return_value(module_id='100000', timeout=5)",
            "print(data)",
        ]
    )
    printed = run_example("clientless_session.py", server)
    assert "'module': '100000'" in printed and "'user': 'R41'" in printed


def test_the_second_example_acts_as_r41_inside_its_block_only(server: Server) -> None:
    printed = run_example("user_context.py", server).splitlines()
    assert printed == [
        "before the block: SYSTEM",
        "in the block: R41",
        "module whoami ran as: R41",
        "after the block: SYSTEM",
    ]
