from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetUserContextRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class GetUserContextResponse(_message.Message):
    __slots__ = ("user", "session_user", "depth")
    USER_FIELD_NUMBER: _ClassVar[int]
    SESSION_USER_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    user: str
    session_user: str
    depth: int
    def __init__(self, user: _Optional[str] = ..., session_user: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class SetUserContextRequest(_message.Message):
    __slots__ = ("session_id", "user")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    user: str
    def __init__(self, session_id: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class SetUserContextResponse(_message.Message):
    __slots__ = ("previous_user",)
    PREVIOUS_USER_FIELD_NUMBER: _ClassVar[int]
    previous_user: str
    def __init__(self, previous_user: _Optional[str] = ...) -> None: ...

class PushUserContextRequest(_message.Message):
    __slots__ = ("session_id", "user")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    user: str
    def __init__(self, session_id: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class PushUserContextResponse(_message.Message):
    __slots__ = ("scope_id", "previous_user", "depth")
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_USER_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    scope_id: int
    previous_user: str
    depth: int
    def __init__(self, scope_id: _Optional[int] = ..., previous_user: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class PopUserContextRequest(_message.Message):
    __slots__ = ("session_id", "scope_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    scope_id: int
    def __init__(self, session_id: _Optional[int] = ..., scope_id: _Optional[int] = ...) -> None: ...

class PopUserContextResponse(_message.Message):
    __slots__ = ("user", "depth")
    USER_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    user: str
    depth: int
    def __init__(self, user: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...
