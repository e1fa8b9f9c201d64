"""Conversions between the package's values and the contract's well-known
types: times (``Timestamp`` ↔ aware UTC ``datetime``), durations (seconds as
``float`` ↔ ``Duration``) and module values (JSON-like Python values ↔
``Value`` / ``Struct``).

Module values follow protobuf's JSON mapping: ``None``, booleans, strings,
lists and dicts map one to one, numbers travel as doubles. A number read
back that is integral and within ±2⁵³ becomes an ``int`` again, so ``5``
round-trips as ``5``, not ``5.0`` (as the Rust client does).
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Mapping
from typing import Any, Optional

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from .errors import InvalidArgumentError, InvalidResponseError, FieldViolation

# The largest magnitude up to which every integer is exact in a double.
_MAX_EXACT_INTEGER = 2.0**53

UTC = datetime.timezone.utc


def to_datetime(timestamp: timestamp_pb2.Timestamp) -> datetime.datetime:
    """A ``Timestamp`` as an aware ``datetime`` in UTC (microseconds)."""
    return datetime.datetime.fromtimestamp(timestamp.seconds, UTC) + datetime.timedelta(
        microseconds=timestamp.nanos // 1000
    )


def required_datetime(message: Any, field: str) -> datetime.datetime:
    """A required timestamp field of a response.

    Raises:
        InvalidResponseError: when the server left it unset.
    """
    if not message.HasField(field):
        raise InvalidResponseError(f"{field} is unset")
    return to_datetime(getattr(message, field))


def optional_datetime(message: Any, field: str) -> Optional[datetime.datetime]:
    """An optional timestamp field of a response: ``None`` when unset."""
    return to_datetime(getattr(message, field)) if message.HasField(field) else None


def to_timestamp(moment: datetime.datetime) -> timestamp_pb2.Timestamp:
    """An aware ``datetime`` (a naive one is taken as UTC) as a ``Timestamp``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(moment.astimezone(UTC).replace(tzinfo=None))
    return timestamp


def to_duration(seconds: float) -> duration_pb2.Duration:
    """Seconds as a ``Duration``."""
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def to_uuid(text: str, field: str) -> uuid.UUID:
    """A UUID field of a response.

    Raises:
        InvalidResponseError: when it is not a UUID.
    """
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidResponseError(f"{field} {text!r} is not a UUID") from None


def to_value(value: Any) -> struct_pb2.Value:
    """A JSON-like Python value as a ``Value``.

    Raises:
        InvalidArgumentError: for what JSON cannot hold (a set, an object…).
    """
    message = struct_pb2.Value()
    if value is None:
        message.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, (int, float)):
        message.number_value = float(value)
    elif isinstance(value, str):
        message.string_value = value
    elif isinstance(value, Mapping):
        message.struct_value.CopyFrom(to_struct(value))
    elif isinstance(value, (list, tuple)):
        message.list_value.values.extend(to_value(item) for item in value)
    else:
        raise InvalidArgumentError(
            f"a module parameter of type {type(value).__name__} is not JSON",
            violations=[FieldViolation("parameters", "values must be JSON: None, bool, numbers, str, lists, dicts")],
        )
    return message


def to_struct(mapping: Mapping[str, Any]) -> struct_pb2.Struct:
    """A mapping with string keys as a ``Struct``."""
    struct = struct_pb2.Struct()
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(
                f"module parameter names must be strings, not {key!r}",
                violations=[FieldViolation("parameters", "keys must be strings")],
            )
        struct.fields[key].CopyFrom(to_value(item))
    return struct


def from_value(value: struct_pb2.Value) -> Any:
    """A ``Value`` as a JSON-like Python value; an unset kind is ``None``."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_EXACT_INTEGER:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    return [from_value(item) for item in value.list_value.values]


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as a ``dict``."""
    return {key: from_value(item) for key, item in struct.fields.items()}
