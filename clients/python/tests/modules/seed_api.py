"""A test module written on the package: it runs the seed's user-context
calls against its own session, through the server that runs it, and
reports what it saw (the tests' ``seed-api`` module).

Parameters: ``act_as`` (a user for a ``UserContext`` block), ``set`` (a user
for ``set_user_context`` inside that block), ``forbidden`` (a user it tries
to act as and expects to be refused), ``ca`` (the CA file of a server that
serves TLS with a CA of its own).
"""

import json
import sys
from typing import Any

from sessiond import PermissionDeniedError, TlsSettings, utilities


def run(parameters: dict[str, Any]) -> dict[str, object]:
    if "ca" in parameters:
        utilities.connect(tls=TlsSettings.from_files(ca=parameters["ca"]))
    session_id = utilities.current_session_id()
    seen: dict[str, object] = {"session_id": session_id}
    me = utilities.client().who_am_i()
    seen["method"] = str(me.method)
    seen["token_session_id"] = me.session_id
    seen["before"] = utilities.get_user_context()
    with utilities.UserContext(parameters["act_as"]):
        seen["inside"] = utilities.get_user_context()
        if "set" in parameters:
            utilities.set_user_context(parameters["set"])
            seen["after_set"] = utilities.get_user_context()
    seen["after"] = utilities.get_user_context()
    if "forbidden" in parameters:
        try:
            with utilities.UserContext(parameters["forbidden"]):
                seen["forbidden"] = "allowed"
        except PermissionDeniedError as error:
            seen["forbidden"] = error.permission
    seen["session_user"] = utilities.get_session_user(session_id)
    return seen


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
