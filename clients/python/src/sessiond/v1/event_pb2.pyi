import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sessiond.v1 import access_service_pb2 as _access_service_pb2
from sessiond.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_SESSION_STARTED: _ClassVar[EventKind]
    EVENT_KIND_CLIENTLESS_SESSION_OPENED: _ClassVar[EventKind]
    EVENT_KIND_SESSION_CLOSING: _ClassVar[EventKind]
    EVENT_KIND_SESSION_ENDED: _ClassVar[EventKind]
    EVENT_KIND_USER_CONTEXT_SET: _ClassVar[EventKind]
    EVENT_KIND_USER_CONTEXT_PUSHED: _ClassVar[EventKind]
    EVENT_KIND_USER_CONTEXT_POPPED: _ClassVar[EventKind]
    EVENT_KIND_RUN_STARTED: _ClassVar[EventKind]
    EVENT_KIND_RUN_CONCLUDED: _ClassVar[EventKind]
    EVENT_KIND_CALL_REFUSED: _ClassVar[EventKind]
    EVENT_KIND_SESSION_SNAPSHOT: _ClassVar[EventKind]
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_SESSION_STARTED: EventKind
EVENT_KIND_CLIENTLESS_SESSION_OPENED: EventKind
EVENT_KIND_SESSION_CLOSING: EventKind
EVENT_KIND_SESSION_ENDED: EventKind
EVENT_KIND_USER_CONTEXT_SET: EventKind
EVENT_KIND_USER_CONTEXT_PUSHED: EventKind
EVENT_KIND_USER_CONTEXT_POPPED: EventKind
EVENT_KIND_RUN_STARTED: EventKind
EVENT_KIND_RUN_CONCLUDED: EventKind
EVENT_KIND_CALL_REFUSED: EventKind
EVENT_KIND_SESSION_SNAPSHOT: EventKind

class Event(_message.Message):
    __slots__ = ("revision", "time", "kind", "session_id", "session_uuid", "user", "effective_user", "subject", "authentication_method", "peer", "run_id", "module_id", "end_reason", "run_state", "failure_kind", "request_id", "traceparent", "scope_id", "method", "error_reason", "session", "prev_hash", "hash")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_UUID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_USER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    RUN_STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_KIND_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    revision: int
    time: _timestamp_pb2.Timestamp
    kind: EventKind
    session_id: int
    session_uuid: str
    user: str
    effective_user: str
    subject: str
    authentication_method: _access_service_pb2.AuthenticationMethod
    peer: str
    run_id: int
    module_id: str
    end_reason: _session_pb2.EndReason
    run_state: _session_pb2.RunState
    failure_kind: _session_pb2.ModuleFailureKind
    request_id: str
    traceparent: str
    scope_id: int
    method: str
    error_reason: str
    session: _session_pb2.SessionInfo
    prev_hash: bytes
    hash: bytes
    def __init__(self, revision: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[EventKind, str]] = ..., session_id: _Optional[int] = ..., session_uuid: _Optional[str] = ..., user: _Optional[str] = ..., effective_user: _Optional[str] = ..., subject: _Optional[str] = ..., authentication_method: _Optional[_Union[_access_service_pb2.AuthenticationMethod, str]] = ..., peer: _Optional[str] = ..., run_id: _Optional[int] = ..., module_id: _Optional[str] = ..., end_reason: _Optional[_Union[_session_pb2.EndReason, str]] = ..., run_state: _Optional[_Union[_session_pb2.RunState, str]] = ..., failure_kind: _Optional[_Union[_session_pb2.ModuleFailureKind, str]] = ..., request_id: _Optional[str] = ..., traceparent: _Optional[str] = ..., scope_id: _Optional[int] = ..., method: _Optional[str] = ..., error_reason: _Optional[str] = ..., session: _Optional[_Union[_session_pb2.SessionInfo, _Mapping]] = ..., prev_hash: _Optional[bytes] = ..., hash: _Optional[bytes] = ...) -> None: ...
