"""A profile store that refuses what Firestore cannot encode (kept apart from ``tests.fakes``).

Firestore stores integers as int64, doubles as IEEE floats and strings as UTF-8: a value
outside those fails the write with a plain ``ValueError`` (or ``UnicodeEncodeError``), not a
Google API error. This store raises the same way, so that tests see what a real write would do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from loyalty_worker.domain.profile import ProfileUpdate
from tests.fakes import InMemoryProfileStore

INT64 = (-(2**63), 2**63 - 1)


def check_encodable(value: Any, where: str = "value") -> None:
    """Raise as the Firestore client's encoder would for a value it cannot store."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"{where}: value out of range for int64: {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            return  # Firestore stores NaN and infinities as doubles
    elif isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
    elif isinstance(value, dict):
        for key, item in value.items():
            check_encodable(str(key), f"{where} key")
            check_encodable(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            check_encodable(item, where)


class EncodingProfileStore(InMemoryProfileStore):
    """``InMemoryProfileStore`` whose writes fail, all of a batch, on an unencodable value."""

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        for update in updates:
            for name, value in update.fields.items():
                check_encodable(value, f"{update.document_id}.{name}")
        super().write_profiles(updates)
