"""Which calls are retried, and how long to wait between attempts.

Only ``UNAVAILABLE`` is retried. Reads, and the writes the contract makes
idempotent (``EndSession``, ``CloseClientlessSession``, ``TouchSession``),
are retried on any ``UNAVAILABLE``. Other writes are retried only when the
server says ``STORE_UNAVAILABLE``, which guarantees that nothing was
changed; a transport failure leaves their outcome unknown, so they are never
retried blindly. (The same rules as the Rust client's.)
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any

import grpc

from .errors import StoreUnavailableError, reason_of


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently retryable calls are retried (and a watch
    resumes).

    The default: four attempts, waiting about 50 ms, 100 ms and 200 ms in
    between. ``RetryPolicy.never()``: one attempt.
    """

    max_attempts: int = 4
    """Attempts in all, the first included; 1 means no retry."""
    initial_backoff: float = 0.05
    """Seconds before the first retry; doubled for every retry after it."""
    max_backoff: float = 1.0
    """The longest wait between two attempts, in seconds."""

    @classmethod
    def never(cls) -> RetryPolicy:
        """No retries: every call is attempted once."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1):
        exponential, capped, with "equal jitter" (between half and all of
        it) so that clients that failed together do not retry together."""
        full: float = min(self.initial_backoff * 2.0 ** min(max(attempt - 1, 0), 20), self.max_backoff)
        return full / 2 + random.uniform(0, full / 2)


class CallKind(enum.Enum):
    """How a call may be retried."""

    READ = "read"
    """Changes nothing: retried on any ``UNAVAILABLE``."""
    IDEMPOTENT_WRITE = "idempotent write"
    """A write the contract makes idempotent: retried on any ``UNAVAILABLE``."""
    WRITE = "write"
    """Any other write: retried only on ``STORE_UNAVAILABLE``."""

    def may_retry(self, error: Any) -> bool:
        """Whether a call of this kind that failed with ``error`` (a
        ``grpc.RpcError`` / ``grpc.aio.AioRpcError``) may be sent again."""
        if error.code() != grpc.StatusCode.UNAVAILABLE:
            return False
        if self is not CallKind.WRITE:
            return True
        return reason_of(error) == StoreUnavailableError.REASON
