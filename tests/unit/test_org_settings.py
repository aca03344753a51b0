"""Org settings validation: a bad document names the org and the field."""

import logging
import math
from decimal import Decimal

import pytest

from loyalty_worker.domain.models import AlpineProfile, Order, SourceOfTruth
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.reconciliation import reconcile
from loyalty_worker.domain.tiers import assign_tier
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
        ({"alpine": {"uid": "../v2/wallet", "apiKey": "k"}}, "alpine.uid"),
        ({"alpine": {"uid": "12?start=0", "apiKey": "k"}}, "alpine.uid"),
        (
            {"alleaves": {"username": "u", "password": "p", "pin": "1", "partnerId": "a\r\nX: y"}},
            "alleaves.partnerId",
        ),
        ({"discordWebhookUrl": "http://discord.com/api/webhooks/1/abc"}, "discordWebhookUrl"),
        ({"discordWebhookUrl": "https://evil.example/api/webhooks/1/abc"}, "discordWebhookUrl"),
        (
            {"discordWebhookUrl": "https://discord.com.evil.example/api/webhooks/1/a"},
            "discordWebhookUrl",
        ),
        ({"discordWebhookUrl": "http://127.0.0.1:8900/discord/webhooks/1/a"}, "discordWebhookUrl"),
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


def test_default_tier_thresholds_names_and_timezone() -> None:
    settings = OrgSettings.parse("org-1", {})
    tiers = [(t.id, t.name, t.threshold) for t in settings.rules().tiers]
    assert tiers == [
        ("bronze", "Bronze", Decimal(0)),
        ("silver", "Silver", Decimal(500)),
        ("gold", "Gold", Decimal(1000)),
        ("platinum", "Platinum", Decimal(2500)),
    ]
    assert settings.timezone == "America/Los_Angeles"


def test_boundary_values_are_accepted() -> None:
    low = OrgSettings.parse(
        "org-1", {"pointsPerDollar": 0.01, "equityMultiplier": 1, "discrepancyThreshold": 0}
    ).rules()
    # pointsPerDollar > 0, equityMultiplier >= 1 (exactly 1 allowed), threshold a fraction 0..1
    assert (low.points_per_dollar, low.equity_multiplier) == (Decimal("0.01"), Decimal(1))
    assert low.discrepancy_threshold == 0
    high = OrgSettings.parse("org-1", {"discrepancyThreshold": 1}).rules()
    assert high.discrepancy_threshold == 1


def test_orders_as_source_of_truth_and_auto_adjust_are_read() -> None:
    rules = OrgSettings.parse("org-1", {"sourceOfTruth": "orders", "autoAdjust": True}).rules()
    assert rules.source_of_truth is SourceOfTruth.ORDERS
    assert rules.auto_adjust is True


def test_tiers_in_any_order_without_names_are_kept_as_given_and_assigned_by_threshold() -> None:
    document = {"tiers": [{"id": "gold", "threshold": 1000}, {"id": "base", "threshold": 0}]}
    tiers = OrgSettings.parse("org-1", document).rules().tiers
    assert [(t.id, t.name) for t in tiers] == [("gold", None), ("base", None)]
    assert assign_tier(999, tiers) == "base"  # 0 <= 999 < 1000
    assert assign_tier(1000, tiers) == "gold"  # 1000 <= 1000
    assert [t.id for t in tiers] == ["gold", "base"]  # not reordered by the assignment


def test_firestore_floats_keep_the_rules_exact() -> None:
    document = {"pointsPerDollar": 1.15, "equityMultiplier": 1.15, "discrepancyThreshold": 0.3}
    rules = OrgSettings.parse("org-1", document).rules()
    result = calculate_points([Order(1, 7, "completed", Decimal(100))], rules, equity=True)
    # base floor(100 * 1.15) = 115 (float 1.15 * 100 = 114.99999999999999 would give 114);
    # bonus floor(115 * 0.15) = floor(17.25) = 17; total 132
    assert (result.base_points, result.equity_bonus, result.points_from_orders) == (115, 17, 132)
    # r = |70 - 100| / 100 = 0.3 exactly: within a 0.3 threshold (float 0.3 is 0.29999...)
    assert reconcile(100, AlpineProfile(70), rules).status.value == "within_tolerance"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"discrepancyThreshold": -0.1}, "discrepancyThreshold"),
        ({"pointsPerDollar": "abc"}, "pointsPerDollar"),
        ({"tiers": [{"id": "", "threshold": 0}]}, "tiers.0.id"),
        ({"tiers": [{"id": "a"}]}, "tiers.0.threshold"),
        ({"tiers": [{"id": "a", "threshold": 0}, {"id": "A", "threshold": 5}]}, "tiers"),
        ({"alleavesRateLimit": 0}, "alleavesRateLimit"),
        ({"alleavesRateLimit": -5}, "alleavesRateLimit"),
        ({"alleavesRateLimit": "20"}, "alleavesRateLimit"),
        ({"alpineRateLimit": True}, "alpineRateLimit"),
        ({"alpineRateLimit": math.nan}, "alpineRateLimit"),
        ({"alpineRateLimit": math.inf}, "alpineRateLimit"),
    ],
)
def test_more_bad_documents_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        OrgSettings.parse("org-9", document)
    assert (caught.value.org_id, caught.value.field) == ("org-9", field)


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com/api/webhooks/123456789/tok_EN-1",
        "https://discordapp.com/api/webhooks/1/t",
        "https://canary.discord.com/api/webhooks/1/t",
    ],
)
def test_discord_webhook_urls_are_taken(url: str) -> None:
    settings = OrgSettings.parse("org-1", {"discordWebhookUrl": url})
    assert settings.discord_webhook_url is not None
    assert settings.discord_webhook_url.get_secret_value() == url


def test_a_refused_webhook_url_is_not_repeated_in_the_error() -> None:
    url = "https://evil.example/api/webhooks/1/secret-token-123"
    with pytest.raises(SettingsInvalid) as caught:
        OrgSettings.parse("org-1", {"discordWebhookUrl": url})
    assert "secret-token-123" not in str(caught.value)


def test_weight_defaults_to_one_and_takes_any_positive_number() -> None:
    assert OrgSettings.parse("org-1", {}).weight == 1.0
    assert OrgSettings.parse("org-1", {"weight": 3}).weight == 3.0
    assert OrgSettings.parse("org-1", {"weight": 0.25}).weight == 0.25


@pytest.mark.parametrize(
    "weight", [0, -2, -0.5, "2", "heavy", True, False, None, math.nan, math.inf, -math.inf, 10**400]
)
def test_a_bad_weight_counts_as_one_with_a_warning_naming_the_org(
    weight: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="loyalty_worker.org_settings"):
        settings = OrgSettings.parse("org-7", {"weight": weight, "pointsPerDollar": 2})
    assert settings.weight == 1.0
    assert settings.points_per_dollar == 2  # the rest of the document is read as usual
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "org org-7" in record.getMessage()
    assert "'weight'" in record.getMessage()


def test_a_bad_weight_does_not_hide_a_bad_field() -> None:
    with pytest.raises(SettingsInvalid) as caught:
        OrgSettings.parse("org-7", {"weight": "x", "pointsPerDollar": 0})
    assert caught.value.field == "pointsPerDollar"


def test_rate_limits_are_the_orgs_own_requests_per_second_else_unset() -> None:
    settings = OrgSettings.parse("org-1", {"alleavesRateLimit": 20, "alpineRateLimit": 2.5})
    assert (settings.alleaves_rate_limit, settings.alpine_rate_limit) == (20.0, 2.5)
    unset = OrgSettings.parse("org-1", {})
    assert (unset.alleaves_rate_limit, unset.alpine_rate_limit) == (None, None)
