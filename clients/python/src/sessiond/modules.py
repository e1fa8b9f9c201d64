"""Module runs: a run as it started (:class:`ModuleRun`), its state, and why
one failed (:class:`ModuleFailure`)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Optional

from . import _wire
from ._enums import ContractEnum
from .errors import ModuleFailedError
from .v1 import session_service_pb2


class RunState(ContractEnum):
    """The state of one module run."""

    RUNNING = 1
    SUCCEEDED = 2
    FAILED = 3
    CANCELLED = 4
    """Stopped before it concluded: its session closed and the grace ran out."""


class ModuleFailureKind(ContractEnum):
    """The kinds of module failure."""

    ERROR = 1
    """An in-process module reported an error."""
    EXIT_STATUS = 2
    """The module's process exited with a non-zero status."""
    SIGNAL = 3
    """The module's process was ended by a signal."""
    INVALID_OUTPUT = 4
    """The output was not one JSON document."""
    OUTPUT_TOO_LARGE = 5
    TIMEOUT = 6
    """The run took longer than the module's timeout."""
    CANCELLED = 7
    INTERRUPTED = 8
    """The server stopped while the run was running."""
    SPAWN_FAILED = 9
    """The module could not be started."""


@dataclass(frozen=True)
class ModuleRun:
    """A run of a module, as ``open_module`` started it."""

    run_id: int
    state: RunState
    """``RUNNING``, or already concluded for very fast modules."""
    start_time: datetime.datetime
    acting_user: str
    """The user context the run acts as."""

    @classmethod
    def from_pb(cls, response: session_service_pb2.OpenModuleResponse) -> ModuleRun:
        """Decodes ``OpenModuleResponse``."""
        return cls(
            run_id=response.run_id,
            state=RunState.required(response.state, "state"),
            start_time=_wire.required_datetime(response, "start_time"),
            acting_user=response.acting_user,
        )


@dataclass(frozen=True)
class ModuleFailure:
    """Why a module run failed or was cancelled."""

    kind: Optional[ModuleFailureKind]
    message: str
    exit_code: Optional[int]
    """The exit code of an exec module's process, when it exited."""
    signal: Optional[int]
    """The signal that ended an exec module's process, when one did."""
    stderr_tail: str
    """The last part (at most 4 KiB) of an exec module's standard error."""

    @classmethod
    def from_pb(cls, failure: session_service_pb2.ModuleFailure) -> ModuleFailure:
        """Decodes the contract's ``ModuleFailure``."""
        return cls(
            kind=ModuleFailureKind.from_wire(failure.kind),
            message=failure.message,
            exit_code=failure.exit_code if failure.HasField("exit_code") else None,
            signal=failure.signal if failure.HasField("signal") else None,
            stderr_tail=failure.stderr_tail,
        )


def return_value(
    session_id: int, module_id: str, response: session_service_pb2.GetReturnValueResponse
) -> Any:
    """The value of a concluded run (``GetReturnValueResponse``).

    Raises:
        ModuleFailedError: when the run failed or was cancelled.
    """
    state = RunState.required(response.state, "state")
    if state is RunState.SUCCEEDED:
        return _wire.from_value(response.value)
    failure = (
        ModuleFailure.from_pb(response.failure)
        if response.HasField("failure")
        else ModuleFailure(None, f"the run is {state}", None, None, "")
    )
    raise ModuleFailedError(
        session_id=session_id,
        module_id=module_id,
        run_id=response.run_id,
        state=state,
        failure=failure,
    )

