"""User contexts: a session's current one (:class:`UserContextInfo`), and
what a push (:class:`PushedScope`) and a pop (:class:`PoppedScope`) did."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UserContextInfo:
    """A session's user context (``GetUserContext``)."""

    user: str
    """The user work in the session acts as now."""
    session_user: str
    """The user the session belongs to."""
    depth: int
    """How many scopes are pushed and not yet popped."""


@dataclass(frozen=True)
class PushedScope:
    """A scope ``push_user_context`` opened."""

    scope_id: int
    """Pass it to ``pop_user_context``."""
    previous_user: str
    """The user context before the push: what the matching pop restores."""
    depth: int
    """Open scopes, this one included."""


@dataclass(frozen=True)
class PoppedScope:
    """What ``pop_user_context`` restored."""

    user: str
    """The user context now (the one from before the scope's push)."""
    depth: int
    """Scopes still open."""
