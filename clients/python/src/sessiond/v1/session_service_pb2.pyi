import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sessiond.v1 import event_pb2 as _event_pb2
from sessiond.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetSessionUserRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class GetSessionUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class GetSessionInfoRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class GetSessionInfoResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.SessionInfo
    def __init__(self, session: _Optional[_Union[_session_pb2.SessionInfo, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("user", "kind", "state", "page_size", "page_token", "states", "started_after", "started_before", "newest_first")
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    STARTED_AFTER_FIELD_NUMBER: _ClassVar[int]
    STARTED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    user: str
    kind: _session_pb2.SessionKind
    state: _session_pb2.SessionState
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[_session_pb2.SessionState]
    started_after: _timestamp_pb2.Timestamp
    started_before: _timestamp_pb2.Timestamp
    newest_first: bool
    def __init__(self, user: _Optional[str] = ..., kind: _Optional[_Union[_session_pb2.SessionKind, str]] = ..., state: _Optional[_Union[_session_pb2.SessionState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_session_pb2.SessionState, str]]] = ..., started_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., newest_first: bool = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[_session_pb2.SessionInfo]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[_session_pb2.SessionInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("user", "client")
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    user: str
    client: str
    def __init__(self, user: _Optional[str] = ..., client: _Optional[str] = ...) -> None: ...

class StartSessionResponse(_message.Message):
    __slots__ = ("session_id", "session_uuid", "session")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_UUID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    session_uuid: str
    session: _session_pb2.SessionInfo
    def __init__(self, session_id: _Optional[int] = ..., session_uuid: _Optional[str] = ..., session: _Optional[_Union[_session_pb2.SessionInfo, _Mapping]] = ...) -> None: ...

class TouchSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class TouchSessionResponse(_message.Message):
    __slots__ = ("last_activity_time",)
    LAST_ACTIVITY_TIME_FIELD_NUMBER: _ClassVar[int]
    last_activity_time: _timestamp_pb2.Timestamp
    def __init__(self, last_activity_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EndSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class EndSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.SessionInfo
    def __init__(self, session: _Optional[_Union[_session_pb2.SessionInfo, _Mapping]] = ...) -> None: ...

class OpenClientlessSessionRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class OpenClientlessSessionResponse(_message.Message):
    __slots__ = ("session_id", "session_uuid", "session")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_UUID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    session_uuid: str
    session: _session_pb2.SessionInfo
    def __init__(self, session_id: _Optional[int] = ..., session_uuid: _Optional[str] = ..., session: _Optional[_Union[_session_pb2.SessionInfo, _Mapping]] = ...) -> None: ...

class CloseClientlessSessionRequest(_message.Message):
    __slots__ = ("session_id", "grace")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    grace: _duration_pb2.Duration
    def __init__(self, session_id: _Optional[int] = ..., grace: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CloseClientlessSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.SessionInfo
    def __init__(self, session: _Optional[_Union[_session_pb2.SessionInfo, _Mapping]] = ...) -> None: ...

class OpenModuleRequest(_message.Message):
    __slots__ = ("session_id", "module_id", "parameters")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    module_id: str
    parameters: _struct_pb2.Struct
    def __init__(self, session_id: _Optional[int] = ..., module_id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class OpenModuleResponse(_message.Message):
    __slots__ = ("run_id", "state", "start_time", "acting_user")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTING_USER_FIELD_NUMBER: _ClassVar[int]
    run_id: int
    state: _session_pb2.RunState
    start_time: _timestamp_pb2.Timestamp
    acting_user: str
    def __init__(self, run_id: _Optional[int] = ..., state: _Optional[_Union[_session_pb2.RunState, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acting_user: _Optional[str] = ...) -> None: ...

class GetReturnValueRequest(_message.Message):
    __slots__ = ("session_id", "module_id", "timeout")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    module_id: str
    timeout: _duration_pb2.Duration
    def __init__(self, session_id: _Optional[int] = ..., module_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetReturnValueResponse(_message.Message):
    __slots__ = ("run_id", "state", "value", "failure", "start_time", "end_time", "acting_user")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTING_USER_FIELD_NUMBER: _ClassVar[int]
    run_id: int
    state: _session_pb2.RunState
    value: _struct_pb2.Value
    failure: ModuleFailure
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    acting_user: str
    def __init__(self, run_id: _Optional[int] = ..., state: _Optional[_Union[_session_pb2.RunState, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., failure: _Optional[_Union[ModuleFailure, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acting_user: _Optional[str] = ...) -> None: ...

class ModuleFailure(_message.Message):
    __slots__ = ("kind", "message", "exit_code", "signal", "stderr_tail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STDERR_TAIL_FIELD_NUMBER: _ClassVar[int]
    kind: _session_pb2.ModuleFailureKind
    message: str
    exit_code: int
    signal: int
    stderr_tail: str
    def __init__(self, kind: _Optional[_Union[_session_pb2.ModuleFailureKind, str]] = ..., message: _Optional[str] = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., stderr_tail: _Optional[str] = ...) -> None: ...

class WatchSessionsRequest(_message.Message):
    __slots__ = ("after_revision", "user", "session_id", "send_initial_state")
    AFTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEND_INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    after_revision: int
    user: str
    session_id: int
    send_initial_state: bool
    def __init__(self, after_revision: _Optional[int] = ..., user: _Optional[str] = ..., session_id: _Optional[int] = ..., send_initial_state: bool = ...) -> None: ...

class WatchSessionsResponse(_message.Message):
    __slots__ = ("event", "progress", "initial_state_end")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATE_END_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    progress: WatchProgress
    initial_state_end: WatchProgress
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., progress: _Optional[_Union[WatchProgress, _Mapping]] = ..., initial_state_end: _Optional[_Union[WatchProgress, _Mapping]] = ...) -> None: ...

class WatchProgress(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...
