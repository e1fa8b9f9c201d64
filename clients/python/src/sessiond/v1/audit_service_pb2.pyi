import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sessiond.v1 import event_pb2 as _event_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListEventsRequest(_message.Message):
    __slots__ = ("session_id", "user", "subject", "kinds", "start_time", "end_time", "after_revision", "page_size", "page_token", "newest_first")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    AFTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    user: str
    subject: str
    kinds: _containers.RepeatedScalarFieldContainer[_event_pb2.EventKind]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    after_revision: int
    page_size: int
    page_token: str
    newest_first: bool
    def __init__(self, session_id: _Optional[int] = ..., user: _Optional[str] = ..., subject: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[_event_pb2.EventKind, str]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., after_revision: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., newest_first: bool = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token", "compact_revision")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    next_page_token: str
    compact_revision: int
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., compact_revision: _Optional[int] = ...) -> None: ...

class VerifyLedgerRequest(_message.Message):
    __slots__ = ("from_revision", "to_revision")
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    from_revision: int
    to_revision: int
    def __init__(self, from_revision: _Optional[int] = ..., to_revision: _Optional[int] = ...) -> None: ...

class VerifyLedgerResponse(_message.Message):
    __slots__ = ("ok", "verified_events", "first_bad_revision", "head_revision", "head_hash", "problem")
    OK_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_REVISION_FIELD_NUMBER: _ClassVar[int]
    HEAD_REVISION_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    verified_events: int
    first_bad_revision: int
    head_revision: int
    head_hash: bytes
    problem: str
    def __init__(self, ok: bool = ..., verified_events: _Optional[int] = ..., first_bad_revision: _Optional[int] = ..., head_revision: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., problem: _Optional[str] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("head_revision", "head_hash", "compact_revision", "compact_hash")
    HEAD_REVISION_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    COMPACT_HASH_FIELD_NUMBER: _ClassVar[int]
    head_revision: int
    head_hash: bytes
    compact_revision: int
    compact_hash: bytes
    def __init__(self, head_revision: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., compact_revision: _Optional[int] = ..., compact_hash: _Optional[bytes] = ...) -> None: ...
