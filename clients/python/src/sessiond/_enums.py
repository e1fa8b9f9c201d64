"""The shape of the contract's enums in the package: a Python ``Enum``
whose members are the contract's values without their prefix and without
the ``…_UNSPECIFIED`` zero, numbered as on the wire.

The members are written out, so that type checkers and editors know them;
a test checks each enum against the generated descriptor, so that one that
drifts from the contract fails CI.
"""

from __future__ import annotations

import enum
import re
from typing import Optional, TypeVar

from .errors import InvalidResponseError

E = TypeVar("E", bound="ContractEnum")


class ContractEnum(enum.Enum):
    """Base of the contract's enums."""

    @classmethod
    def from_wire(cls: type[E], number: int) -> Optional[E]:
        """The member numbered ``number`` on the wire; ``None`` for 0
        (unspecified).

        Raises:
            InvalidResponseError: for a number this version does not know.
        """
        if number == 0:
            return None
        try:
            return cls(number)
        except ValueError:
            raise InvalidResponseError(f"{cls.__name__} {number} is not known to this client") from None

    @classmethod
    def required(cls: type[E], number: int, field: str) -> E:
        """Like :meth:`from_wire`, for a field the contract always sets.

        Raises:
            InvalidResponseError: for 0 or a number this version does not know.
        """
        member = cls.from_wire(number)
        if member is None:
            raise InvalidResponseError(f"{field} is unspecified")
        return member

    @property
    def wire_name(self) -> str:
        """The value's name in the contract (``SessionKind.CLIENTLESS``:
        ``"SESSION_KIND_CLIENTLESS"``), which protobuf's constructors take."""
        return f"{_snake(type(self).__name__)}_{self.name}"

    def __str__(self) -> str:
        return self.name.lower()


def _snake(name: str) -> str:
    """``SessionKind`` → ``SESSION_KIND``: the prefix of its values."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
