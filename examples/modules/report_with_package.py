"""Module 100000 written on sessiond's Python package (module `100000-py` in
modules.toml): the value of `report.py`, with the session's facts read back
through `sessiond.utilities` instead of the environment.

Inside a module, `utilities` acts on the run's own session, through the
server that runs it (SESSIOND_SESSION_ID, SESSIOND_ENDPOINT and, when the
server authenticates callers, the run's SESSIOND_TOKEN). With the parameter
`owner`, the rows are made inside `with utilities.UserContext(owner):` —
the seed's second example: work in the block acts as that user, and leaving
it restores exactly the user context from before.

It needs the package in the interpreter that runs it (`python3` on the
server's PATH): `pip install ./clients/python` (README, Python).
"""

import contextlib
import json
import os
import sys

from sessiond import utilities


def on_web_load(parameters):
    """Builds the report the seed's example reads with get_return_value."""
    session_id = utilities.current_session_id()
    info = utilities.get_session_info(session_id)
    acting_user = utilities.get_user_context()
    owner = parameters.get("owner")
    acting = utilities.UserContext(owner) if owner else contextlib.nullcontext()
    with acting:
        rows = [
            {"project": "P-100", "owner": utilities.get_user_context()},
            {"project": "P-101", "owner": utilities.get_user_context()},
        ]
    return {
        "module": os.environ.get("SESSIOND_MODULE_ID", "100000-py"),
        "session_id": session_id,
        "session_uuid": str(info.getSessionUUID()),
        "user": info.getUser(),
        "acting_user": acting_user,
        "started": info.getStartTime().isoformat(),
        "title": parameters.get("title", "Projects"),
        "rows": rows,
        "acting_user_after": utilities.get_user_context(),
    }


if __name__ == "__main__":
    json.dump(on_web_load(json.load(sys.stdin)), sys.stdout)
