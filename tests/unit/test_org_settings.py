"""Org settings validation: a bad document names the org and the field."""

from decimal import Decimal

import pytest

from loyalty_worker.domain.models import SourceOfTruth
from loyalty_worker.errors import SettingsInvalid
from loyalty_worker.org_settings import OrgSettings


def test_defaults_follow_the_rules() -> None:
    rules = OrgSettings.parse("org-1", {}).rules()
    assert rules.points_per_dollar == 1
    assert rules.equity_multiplier == 1
    assert [t.id for t in rules.tiers] == ["bronze", "silver", "gold", "platinum"]
    assert rules.discrepancy_threshold == Decimal("0.10")
    assert rules.source_of_truth is SourceOfTruth.ALPINE_IQ
    assert rules.auto_adjust is False


def test_firestore_floats_become_exact_decimals() -> None:
    rules = OrgSettings.parse("org-1", {"pointsPerDollar": 1.1, "equityMultiplier": 1.5}).rules()
    assert rules.points_per_dollar == Decimal("1.1")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"pointsPerDollar": -1}, "pointsPerDollar"),
        ({"pointsPerDollar": 0}, "pointsPerDollar"),
        ({"equityMultiplier": 0.9}, "equityMultiplier"),
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"id": "a", "threshold": -5}]}, "tiers.0.threshold"),
        ({"discrepancyThreshold": 2}, "discrepancyThreshold"),
        ({"sourceOfTruth": "gut_feeling"}, "sourceOfTruth"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"alleaves": {"username": "u"}}, "alleaves.password"),
    ],
)
def test_bad_documents_name_org_and_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        OrgSettings.parse("org-9", document)
    assert caught.value.org_id == "org-9"
    assert caught.value.field == field
    assert "org-9" in str(caught.value)
    assert caught.value.reason == "settings_invalid"


def test_secrets_do_not_show_in_repr() -> None:
    settings = OrgSettings.parse(
        "org-1",
        {
            "alleaves": {"username": "u", "password": "hunter2-secret", "pin": "8812"},
            "alpine": {"uid": "1", "apiKey": "ak-live-123"},
        },
    )
    text = repr(settings) + str(settings)
    assert "hunter2-secret" not in text
    assert "ak-live-123" not in text
    assert "8812" not in text
