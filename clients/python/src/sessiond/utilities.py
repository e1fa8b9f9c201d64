"""The seed's scripting API, with the seed's names and meaning.

::

    from sessiond import utilities

    with utilities.ClientlessSession('R41') as session:
        session.open_module(module_id='100000')
        data = session.get_return_value(module_id='100000', timeout=5)

    with utilities.UserContext('R41'):
        ...  # work in the current session acts as R41

**Where it works.** The functions talk to one server through one
:class:`sessiond.Client`, and the user-context functions act on the *current
session* — the seed's "this jython session":

- inside an exec module, the run's own session, through the server that runs
  it: the server hands the run ``SESSIOND_SESSION_ID``,
  ``SESSIOND_ENDPOINT`` and (when it authenticates callers)
  ``SESSIOND_TOKEN``, and they are read on first use. Nothing to configure;
- outside a module, the same variables, or :func:`connect`
  (``utilities.connect('sessiond:50051', token=…, session_id=…)``); without
  either, ``127.0.0.1:50051`` and no current session.

**Errors.** ``SessionNotFoundException`` is the seed's name for
:class:`sessiond.SessionNotFoundError`; every other reason the server gives
has its class too (all :class:`sessiond.SessiondError`, re-exported here).
The user-context functions raise :class:`sessiond.ConfigurationError` when
there is no current session.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional

from . import guards
from .client import Client
from .connection import DEFAULT_TIMEOUT, TlsSettings
from .errors import *  # noqa: F403 - the hierarchy, for `except utilities.…`
from .errors import ConfigurationError, SessionNotFoundError
from .retry import RetryPolicy
from .sessions import SessionInfo

#: The seed's name for :class:`sessiond.SessionNotFoundError`.
SessionNotFoundException = SessionNotFoundError

_lock = threading.Lock()
_client: Optional[Client] = None
_session_id: Optional[int] = None


def connect(
    endpoint: Optional[str] = None,
    *,
    token: Optional[str] = None,
    session_id: Optional[int] = None,
    tls: Optional[TlsSettings] = None,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    retry: Optional[RetryPolicy] = None,
) -> Client:
    """Says where the functions of this module work, and returns the client
    they use (the previous one is closed).

    Args:
        endpoint: the server (``None``: ``SESSIOND_ENDPOINT``, else
            ``127.0.0.1:50051``).
        token: the bearer token (``None``: ``SESSIOND_TOKEN``; ``""``: none).
        session_id: the current session, for ``get_user_context``,
            ``set_user_context`` and ``UserContext`` (``None``:
            ``SESSIOND_SESSION_ID``, else none).
        tls, timeout, retry: as :class:`sessiond.Client`.

    Raises:
        ConfigurationError: for a malformed endpoint, token or session id.
    """
    global _client, _session_id
    if session_id is None:
        from_env = os.environ.get("SESSIOND_SESSION_ID", "").strip()
        if from_env:
            if not from_env.isdigit():
                raise ConfigurationError(f"SESSIOND_SESSION_ID {from_env!r} is not a session id")
            session_id = int(from_env)
    new = Client(endpoint, token=token, tls=tls, timeout=timeout, retry=retry)
    with _lock:
        old, _client, _session_id = _client, new, session_id
    if old is not None:
        old.close()
    return new


def client() -> Client:
    """The client the functions use: the one :func:`connect` made, else one
    made from the environment on first use."""
    with _lock:
        current = _client
    return current if current is not None else connect()


def current_session_id() -> int:
    """The current session: inside a module, the run's own.

    Raises:
        ConfigurationError: when there is none (outside a module, pass
            ``session_id`` to :func:`connect`).
    """
    client()
    with _lock:
        session_id = _session_id
    if session_id is None:
        raise ConfigurationError(
            "there is no current session: inside a module SESSIOND_SESSION_ID names it; "
            "elsewhere call utilities.connect(session_id=...)"
        )
    return session_id


def get_session_user(session_id: int) -> str:
    """The user id of the session ``session_id``.

    Raises:
        SessionNotFoundException: when no session with this id exists.
    """
    return client().get_session_user(session_id)


def get_session_info(session_id: int) -> SessionInfo:
    """The :class:`~sessiond.SessionInfo` of the session ``session_id``:
    ``getUser()``, ``getTimeStamp()``, ``getSessionUUID()``,
    ``getStartTime()``, ``getEndTime()`` (``None`` while open),
    ``getReason()``.

    Raises:
        SessionNotFoundException: when no session with this id exists.
    """
    return client().get_session_info(session_id)


def open_clientless_session(user: str) -> int:
    """Starts a clientless session on behalf of ``user`` and returns its id;
    it stays open until :func:`close_clientless_session`.

    Raises:
        InvalidArgumentError: for a bad user name.
        TooManySessionsError: when the user has as many open sessions as
            the server allows.
    """
    return client().open_clientless_session(user).session_id


def close_clientless_session(clientless_session_id: int) -> None:
    """Closes a clientless session; its running modules conclude first.

    Raises:
        SessionNotFoundException: when no session with this id exists.
    """
    client().close_clientless_session(clientless_session_id)


def get_user_context() -> str:
    """The current user context of the current session.

    Raises:
        ConfigurationError: when there is no current session.
    """
    return client().get_user_context(current_session_id()).user


def set_user_context(user: str) -> None:
    """Sets the current user context of the current session.

    Raises:
        ConfigurationError: when there is no current session.
        PermissionDeniedError: when the caller may not act as ``user``.
    """
    client().set_user_context(current_session_id(), user)


class ClientlessSession(guards.ClientlessSession):
    """Context manager for clientless sessions: opened for ``user`` on
    entering the block, sent a shutdown on leaving it; modules still running
    conclude first. ``session.open_module(module_id=…, **parameters)`` and
    ``session.get_return_value(module_id=…, timeout=5)`` inside."""

    def __init__(self, user: str, *, grace: Optional[float] = None) -> None:
        super().__init__(client(), user, grace=grace)


class UserContext(guards.UserContextScope):
    """Context manager for the user context of the current session: work in
    the block acts as ``user``; leaving it restores exactly what was there
    before (also when the block raises)."""

    def __init__(self, user: str) -> None:
        super().__init__(client(), current_session_id(), user)

