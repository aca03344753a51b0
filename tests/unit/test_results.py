"""A result survives its camelCase form unchanged, whatever its shape."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import cast

import pytest

from loyalty_worker.domain.models import (
    Action,
    Adjustment,
    AlpineProfile,
    DisplayedLoyalty,
    LoyaltyOutcome,
    PointsCalculation,
    Reconciliation,
    ReconciliationStatus,
    TierSource,
)
from loyalty_worker.domain.results import SyncResult, SyncResultDocument, SyncStatus, utc_stamp

STAMP = "2026-03-01T12:00:00.123456+00:00"

ALPINES = (
    None,
    AlpineProfile(640),
    AlpineProfile(1200, tier="gold", last_visit="2026-02-27", contact_id="C-9"),
)
ADJUSTMENTS = (None, Adjustment("alpine_iq", 600, 640))
RECONCILIATIONS = (
    Reconciliation(ReconciliationStatus.NO_ALPINE_ACCOUNT, None, None, Action.NONE),
    Reconciliation(ReconciliationStatus.MATCHED, 0, True, Action.NONE),
    Reconciliation(ReconciliationStatus.ALPINE_HIGHER, 40, False, Action.ALERT_ADMIN),
    Reconciliation(ReconciliationStatus.CALCULATED_HIGHER, -75, False, Action.AUTO_ADJUST),
)


def outcomes() -> Iterator[LoyaltyOutcome]:
    for alpine, adjustment, rec, tier in itertools.product(
        ALPINES, ADJUSTMENTS, RECONCILIATIONS, (None, "silver")
    ):
        yield LoyaltyOutcome(
            calculation=PointsCalculation(500, 100, 600, 7, Decimal("300.50")),
            alpine=alpine,
            reconciliation=rec,
            displayed=DisplayedLoyalty(
                600, tier, TierSource.ALPINE_IQ if alpine else TierSource.CALCULATED
            ),
            adjustment=adjustment,
        )


def shapes() -> Iterator[SyncResult]:
    """Every shape a result takes: failed (with a reason, from a malformed record too),
    unchanged or synced with every kind of outcome, a tier change or none, carried, dry run."""
    customer_ids: tuple[int | str, ...] = (42, "page 3 #7")
    for customer_id, reason, phone, dry_run in itertools.product(
        customer_ids, ("malformed", "alpine_auth"), (None, "(555) 123-4567"), (False, True)
    ):
        yield SyncResult(
            "org-1",
            customer_id,
            SyncStatus.FAILED,
            STAMP,
            reason=reason,
            detail=f"{reason}: what went wrong",
            phone=phone,
            dry_run=dry_run,
        )
    for status, outcome, previous_tier, inputs, carried, previous_points in itertools.product(
        (SyncStatus.SYNCED, SyncStatus.UNCHANGED),
        outcomes(),
        (None, "bronze", "silver"),
        (None, "d1g3st"),
        (False, True),
        (None, 0, 550),
    ):
        yield SyncResult(
            "org-1",
            42,
            status,
            STAMP,
            outcome=outcome,
            phone="5551234567",
            previous_tier=previous_tier,
            inputs=inputs,
            carried=carried,
            previous_points=previous_points,
        )


ALL_SHAPES = list(shapes())


def test_every_shape_round_trips_through_json() -> None:
    assert len(ALL_SHAPES) > 500
    for result in ALL_SHAPES:
        data = json.loads(json.dumps(result.to_dict()))
        assert SyncResult.from_dict(data) == result, data
        assert SyncResult.from_dict(data).to_dict() == data


def test_the_shapes_cover_what_consumers_read() -> None:
    dicts = [result.to_dict() for result in ALL_SHAPES]
    assert {d["status"] for d in dicts} == {"failed", "unchanged", "synced"}
    assert any("tierChange" in d for d in dicts)
    assert any("adjustment" in d for d in dicts)
    assert any(d.get("alpine") is None and "calculated" in d for d in dicts)
    assert any(d.get("carried") for d in dicts)
    assert any(d.get("previousPoints") == 0 for d in dicts)


def test_a_result_keeps_only_the_masked_phone_and_no_order_ledger() -> None:
    outcome = next(outcomes())
    calculation = PointsCalculation(1, 0, 1, 1, Decimal(1), counted=((9, Decimal(1)),))
    result = SyncResult(
        "org-1",
        1,
        SyncStatus.SYNCED,
        STAMP,
        outcome=LoyaltyOutcome(
            calculation, outcome.alpine, outcome.reconciliation, outcome.displayed
        ),
        phone="(555) 123-4567",
    )
    assert result.phone == "***-***-4567"
    assert result.outcome is not None and result.outcome.calculation.counted == ()
    assert SyncResult.from_dict(result.to_dict()) == result


def test_tier_change_is_derived_and_shown() -> None:
    result = next(r for r in ALL_SHAPES if r.tier_change is not None)
    assert result.to_dict()["tierChange"] == {
        "from": result.tier_change[0],  # type: ignore[index]
        "to": result.tier_change[1],  # type: ignore[index]
    }


def test_an_epoch_stamp_written_before_one_format_reads_as_iso_utc() -> None:
    data = {"status": "failed", "orgId": "o", "customerId": "m:1", "updatedAt": 1772366400.0}
    assert SyncResult.from_dict(cast(SyncResultDocument, data)).updated_at == (
        "2026-03-01T12:00:00+00:00"
    )
    assert utc_stamp().endswith("+00:00")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"status": "nope", "orgId": "o", "customerId": 1, "updatedAt": STAMP},
        {"status": "synced", "orgId": "o", "customerId": None, "updatedAt": STAMP},
        {"status": "synced", "orgId": "o", "customerId": 1, "updatedAt": STAMP, "calculated": {}},
    ],
)
def test_what_is_not_a_result_is_refused(data: dict[str, object]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        SyncResult.from_dict(cast(SyncResultDocument, data))
