"""Module 100000, mirroring the seed: its on_web_load() returns the value that
GetReturnValue reads.

sessiond runs it as a child process: the run's facts are in SESSIOND_*
environment variables, its parameters arrive as one JSON object on stdin, and
the JSON document printed on stdout is the module's return value.
"""

import json
import os
import sys


def on_web_load(parameters):
    """Builds the report the seed's example reads with get_return_value."""
    return {
        "module": os.environ["SESSIOND_MODULE_ID"],
        "session_id": int(os.environ["SESSIOND_SESSION_ID"]),
        "session_uuid": os.environ["SESSIOND_SESSION_UUID"],
        "user": os.environ["SESSIOND_USER"],
        "acting_user": os.environ["SESSIOND_ACTING_USER"],
        "title": parameters.get("title", "Projects"),
        "rows": [
            {"project": "P-100", "owner": os.environ["SESSIOND_ACTING_USER"]},
            {"project": "P-101", "owner": os.environ["SESSIOND_ACTING_USER"]},
        ],
    }


if __name__ == "__main__":
    json.dump(on_web_load(json.load(sys.stdin)), sys.stdout)
