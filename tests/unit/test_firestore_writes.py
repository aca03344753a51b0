"""The worker's merge writes are the very messages the official client's merge-set builds.

Each case encodes the same data both ways, ``merge_write_pb`` and ``WriteBatch.set(reference,
data, merge=[FieldPath(name) for name in data] or True)``, and compares the protobuf messages
whole: a value encoded differently, a field left out of the mask or a map deep-merged instead of
replaced fails the comparison.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_worker.adapters.firestore_writes import merge_write_pb

_CLIENT = firestore.Client(
    project="demo-writes",
    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
)
_REFERENCE = _CLIENT.collection("customers").document("org-1_42")


def official(data: dict[str, Any]) -> Any:
    batch = _CLIENT.batch()
    batch.set(_REFERENCE, data, merge=[FieldPath(name) for name in data] or True)
    [write] = batch._write_pbs
    return write._pb


def ours(data: dict[str, Any]) -> Any:
    return merge_write_pb(_REFERENCE._document_path, data)


def test_a_profile_update_with_deletes_and_its_history_entry() -> None:
    now = datetime(2026, 12, 2, 6, 30, 15, 123456, tzinfo=UTC)
    profile = {
        "orgId": "org-1",
        "alleavesCustomerId": 42,
        "points": 1234,
        "pointsLastCalculated": now,
        "loyaltyReconciled": True,
        "totalSpent": 1234.56,
        "loyaltyOrders": {"1001": "120.50", "1002": "0.99"},
        "lastLoyaltySyncRunId": None,
        "pointsFromAlpine": firestore.DELETE_FIELD,
        "alpineUserId": firestore.DELETE_FIELD,
    }
    history = {"at": now, "runId": "run-1", "before": {"points": None}, "after": {"points": 1234}}
    assert ours(profile) == official(profile)
    assert ours(history) == official(history)


def test_names_that_need_quoting_stay_one_top_level_field() -> None:
    data = {"a.b": 1, "with space": "x", "`tick`": 2.5, "ünï": True, "9lives": None}
    assert ours(data) == official(data)


def test_no_fields_still_creates_the_document() -> None:
    assert ours({}) == official({})


def test_empty_maps_and_lists_are_written_as_such() -> None:
    data = {"ledger": {}, "items": [], "nested": {"inner": {}, "list": [[], {}]}}
    assert ours(data) == official(data)


def test_times_in_every_form_the_client_takes() -> None:
    data = {
        "utc": datetime(2026, 1, 1, tzinfo=UTC),
        "offset": datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-7))),
        "naive": datetime(2026, 1, 1, 12, 30),
        "nanos": DatetimeWithNanoseconds(  # type: ignore[no-untyped-call]
            2026, 1, 1, nanosecond=123456789, tzinfo=UTC
        ),
        "early": datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=1),
    }
    assert ours(data) == official(data)


@pytest.mark.parametrize("value", [object(), {1, 2}, firestore.SERVER_TIMESTAMP])
def test_a_value_the_worker_never_writes_is_refused_by_type(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot write a"):
        ours({"field": value})


def test_a_delete_inside_a_map_is_refused() -> None:
    with pytest.raises(TypeError, match="Sentinel"):
        ours({"field": {"inner": firestore.DELETE_FIELD}})


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=16)
    | st.datetimes(timezones=st.just(UTC))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1), inner, max_size=4)
    ),
    max_leaves=12,
)
_NAMES = st.text(min_size=1)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_NAMES, _VALUES | st.just(firestore.DELETE_FIELD), max_size=8),
)
def test_any_data_the_worker_could_write_encodes_as_the_client_does(
    data: dict[str, Any],
) -> None:
    assert ours(data) == official(data)
