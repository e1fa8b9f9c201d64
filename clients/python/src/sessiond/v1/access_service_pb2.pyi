from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthenticationMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHENTICATION_METHOD_UNSPECIFIED: _ClassVar[AuthenticationMethod]
    AUTHENTICATION_METHOD_NONE: _ClassVar[AuthenticationMethod]
    AUTHENTICATION_METHOD_TLS_CLIENT_CERTIFICATE: _ClassVar[AuthenticationMethod]
    AUTHENTICATION_METHOD_JWT: _ClassVar[AuthenticationMethod]
    AUTHENTICATION_METHOD_STATIC_TOKEN: _ClassVar[AuthenticationMethod]
    AUTHENTICATION_METHOD_MODULE_RUN: _ClassVar[AuthenticationMethod]

class Permission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERMISSION_UNSPECIFIED: _ClassVar[Permission]
    PERMISSION_READ_SESSION: _ClassVar[Permission]
    PERMISSION_START_SESSION: _ClassVar[Permission]
    PERMISSION_OPEN_CLIENTLESS_SESSION: _ClassVar[Permission]
    PERMISSION_TOUCH_SESSION: _ClassVar[Permission]
    PERMISSION_END_SESSION: _ClassVar[Permission]
    PERMISSION_ACT_AS: _ClassVar[Permission]
    PERMISSION_RUN_MODULE: _ClassVar[Permission]
    PERMISSION_READ_AUDIT: _ClassVar[Permission]
AUTHENTICATION_METHOD_UNSPECIFIED: AuthenticationMethod
AUTHENTICATION_METHOD_NONE: AuthenticationMethod
AUTHENTICATION_METHOD_TLS_CLIENT_CERTIFICATE: AuthenticationMethod
AUTHENTICATION_METHOD_JWT: AuthenticationMethod
AUTHENTICATION_METHOD_STATIC_TOKEN: AuthenticationMethod
AUTHENTICATION_METHOD_MODULE_RUN: AuthenticationMethod
PERMISSION_UNSPECIFIED: Permission
PERMISSION_READ_SESSION: Permission
PERMISSION_START_SESSION: Permission
PERMISSION_OPEN_CLIENTLESS_SESSION: Permission
PERMISSION_TOUCH_SESSION: Permission
PERMISSION_END_SESSION: Permission
PERMISSION_ACT_AS: Permission
PERMISSION_RUN_MODULE: Permission
PERMISSION_READ_AUDIT: Permission

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("subject", "groups", "method", "session_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    subject: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    method: AuthenticationMethod
    session_id: int
    def __init__(self, subject: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., method: _Optional[_Union[AuthenticationMethod, str]] = ..., session_id: _Optional[int] = ...) -> None: ...

class CheckAccessRequest(_message.Message):
    __slots__ = ("permission", "session_id", "user", "module_id")
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    permission: Permission
    session_id: int
    user: str
    module_id: str
    def __init__(self, permission: _Optional[_Union[Permission, str]] = ..., session_id: _Optional[int] = ..., user: _Optional[str] = ..., module_id: _Optional[str] = ...) -> None: ...

class CheckAccessResponse(_message.Message):
    __slots__ = ("allowed", "reason")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    def __init__(self, allowed: bool = ..., reason: _Optional[str] = ...) -> None: ...
