"""sessiond for asyncio: :class:`Client` and its context managers, with the
sync client's types and errors (``sessiond.SessionInfo``,
``sessiond.SessionNotFoundError``, …)."""

from .client import Client
from .guards import ClientlessSession, UserContextScope
from .watch import WatchStream

__all__ = ["Client", "ClientlessSession", "UserContextScope", "WatchStream"]
