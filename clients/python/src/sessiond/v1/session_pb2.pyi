import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_KIND_UNSPECIFIED: _ClassVar[SessionKind]
    SESSION_KIND_INTERACTIVE: _ClassVar[SessionKind]
    SESSION_KIND_CLIENTLESS: _ClassVar[SessionKind]

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    SESSION_STATE_OPEN: _ClassVar[SessionState]
    SESSION_STATE_CLOSING: _ClassVar[SessionState]
    SESSION_STATE_ENDED: _ClassVar[SessionState]

class EndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_REASON_UNSPECIFIED: _ClassVar[EndReason]
    END_REASON_CLOSED_BY_CLIENT: _ClassVar[EndReason]
    END_REASON_IDLE_TIMEOUT: _ClassVar[EndReason]
    END_REASON_MAX_LIFETIME: _ClassVar[EndReason]
    END_REASON_SERVER_SHUTDOWN: _ClassVar[EndReason]
    END_REASON_SERVER_RESTART: _ClassVar[EndReason]
    END_REASON_NODE_LOST: _ClassVar[EndReason]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]

class ModuleFailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODULE_FAILURE_KIND_UNSPECIFIED: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_ERROR: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_EXIT_STATUS: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_SIGNAL: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_INVALID_OUTPUT: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_OUTPUT_TOO_LARGE: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_TIMEOUT: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_CANCELLED: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_INTERRUPTED: _ClassVar[ModuleFailureKind]
    MODULE_FAILURE_KIND_SPAWN_FAILED: _ClassVar[ModuleFailureKind]
SESSION_KIND_UNSPECIFIED: SessionKind
SESSION_KIND_INTERACTIVE: SessionKind
SESSION_KIND_CLIENTLESS: SessionKind
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_OPEN: SessionState
SESSION_STATE_CLOSING: SessionState
SESSION_STATE_ENDED: SessionState
END_REASON_UNSPECIFIED: EndReason
END_REASON_CLOSED_BY_CLIENT: EndReason
END_REASON_IDLE_TIMEOUT: EndReason
END_REASON_MAX_LIFETIME: EndReason
END_REASON_SERVER_SHUTDOWN: EndReason
END_REASON_SERVER_RESTART: EndReason
END_REASON_NODE_LOST: EndReason
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState
MODULE_FAILURE_KIND_UNSPECIFIED: ModuleFailureKind
MODULE_FAILURE_KIND_ERROR: ModuleFailureKind
MODULE_FAILURE_KIND_EXIT_STATUS: ModuleFailureKind
MODULE_FAILURE_KIND_SIGNAL: ModuleFailureKind
MODULE_FAILURE_KIND_INVALID_OUTPUT: ModuleFailureKind
MODULE_FAILURE_KIND_OUTPUT_TOO_LARGE: ModuleFailureKind
MODULE_FAILURE_KIND_TIMEOUT: ModuleFailureKind
MODULE_FAILURE_KIND_CANCELLED: ModuleFailureKind
MODULE_FAILURE_KIND_INTERRUPTED: ModuleFailureKind
MODULE_FAILURE_KIND_SPAWN_FAILED: ModuleFailureKind

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "session_uuid", "user", "kind", "state", "start_time", "end_time", "last_activity_time", "end_reason", "effective_user", "client", "user_context_depth", "owner_node")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_UUID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_TIME_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    USER_CONTEXT_DEPTH_FIELD_NUMBER: _ClassVar[int]
    OWNER_NODE_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    session_uuid: str
    user: str
    kind: SessionKind
    state: SessionState
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    last_activity_time: _timestamp_pb2.Timestamp
    end_reason: EndReason
    effective_user: str
    client: str
    user_context_depth: int
    owner_node: str
    def __init__(self, session_id: _Optional[int] = ..., session_uuid: _Optional[str] = ..., user: _Optional[str] = ..., kind: _Optional[_Union[SessionKind, str]] = ..., state: _Optional[_Union[SessionState, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_activity_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[_Union[EndReason, str]] = ..., effective_user: _Optional[str] = ..., client: _Optional[str] = ..., user_context_depth: _Optional[int] = ..., owner_node: _Optional[str] = ...) -> None: ...
