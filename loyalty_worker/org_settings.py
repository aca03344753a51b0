"""An org's loyalty settings document (``loyalty_settings/{orgId}``), validated at the edge.

Firestore hands back plain values (floats, strings); this model turns them into the domain's
``LoyaltyRules`` and the org's integration credentials, or fails with ``SettingsInvalid``
naming the org and the field, before any customer is touched. The one exception is ``weight``
(the org's share of the workers): a bad one counts as 1, with a warning naming the org.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from loyalty_worker.domain.models import LoyaltyRules, SourceOfTruth, Tier
from loyalty_worker.domain.tiers import validate_tiers
from loyalty_worker.errors import SettingsInvalid

logger = logging.getLogger(__name__)

# What may go into a request path or header: ids, never a path, a query or a line break.
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Alerts go to Discord and nowhere else: a settings document cannot point them at another host
# (the process-wide LOYALTY_DISCORD_WEBHOOK_URL, set by the operator, is taken as given).
DISCORD_WEBHOOK = re.compile(
    r"https://(?:(?:canary|ptb)\.)?(?:discord\.com|discordapp\.com)/api/webhooks/\d+/[A-Za-z0-9_-]+"
)


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class TierSetting(_Model):
    id: str = Field(min_length=1)
    name: str | None = None
    threshold: Decimal = Field(ge=0)


def _default_tiers() -> list[TierSetting]:
    return [
        TierSetting(id="bronze", name="Bronze", threshold=Decimal(0)),
        TierSetting(id="silver", name="Silver", threshold=Decimal(500)),
        TierSetting(id="gold", name="Gold", threshold=Decimal(1000)),
        TierSetting(id="platinum", name="Platinum", threshold=Decimal(2500)),
    ]


class AlleavesCredentials(_Model):
    username: str = Field(min_length=1)
    password: SecretStr
    pin: SecretStr
    location_id: int | Annotated[str, Field(pattern=SAFE_ID)] | None = Field(
        default=None, alias="locationId"
    )
    partner_id: str | None = Field(default=None, alias="partnerId", pattern=SAFE_ID)


class AlpineCredentials(_Model):
    uid: str = Field(pattern=SAFE_ID)
    api_key: SecretStr = Field(alias="apiKey")


class OrgSettings(_Model):
    """Loyalty rules, schedule and integrations of one org."""

    org_id: str
    points_per_dollar: Decimal = Field(default=Decimal(1), alias="pointsPerDollar", gt=0)
    equity_multiplier: Decimal = Field(default=Decimal(1), alias="equityMultiplier", ge=1)
    tiers: list[TierSetting] = Field(default_factory=_default_tiers, min_length=1)
    discrepancy_threshold: Decimal = Field(
        default=Decimal("0.10"), alias="discrepancyThreshold", ge=0, le=1
    )
    source_of_truth: SourceOfTruth = Field(default=SourceOfTruth.ALPINE_IQ, alias="sourceOfTruth")
    auto_adjust: bool = Field(default=False, alias="autoAdjust")
    timezone: str = "America/Los_Angeles"
    alleaves: AlleavesCredentials | None = None
    alpine: AlpineCredentials | None = None
    discord_webhook_url: SecretStr | None = Field(default=None, alias="discordWebhookUrl")
    disabled: bool = False
    # Requests per second the org's own account may make (None: the process-wide
    # LOYALTY_ALLEAVES_RATE_LIMIT / LOYALTY_ALPINE_RATE_LIMIT). Strict: a bool or text is an error.
    alleaves_rate_limit: float | None = Field(
        default=None, alias="alleavesRateLimit", gt=0, allow_inf_nan=False, strict=True
    )
    alpine_rate_limit: float | None = Field(
        default=None, alias="alpineRateLimit", gt=0, allow_inf_nan=False, strict=True
    )
    # The org's share of the workers when many orgs wait for them (1: an equal share).
    weight: float = 1.0

    @field_validator("tiers")
    @classmethod
    def _tiers_usable(cls, tiers: list[TierSetting]) -> list[TierSetting]:
        validate_tiers([Tier(t.id, t.threshold, t.name) for t in tiers])
        return tiers

    @field_validator("discord_webhook_url")
    @classmethod
    def _discord_only(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not DISCORD_WEBHOOK.fullmatch(url.get_secret_value()):
            # never repeats the value: it holds the webhook's token
            raise ValueError("must be a https://discord.com/api/webhooks/{id}/{token} URL")
        return url

    @field_validator("weight", mode="before")
    @classmethod
    def _weight_or_one(cls, weight: object, info: ValidationInfo) -> float:
        # A bad weight only shifts the org's share of the workers: it is not worth stopping
        # the org's runs for, so it counts as 1 and says so.
        value = _positive_finite(weight)
        if value is not None:
            return value
        logger.warning(
            "org %s: loyalty settings field 'weight' must be a positive number, not %.40r; "
            "counting it as 1",
            info.data.get("org_id", "?"),
            weight,
        )
        return 1.0

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {name!r}") from exc
        return name

    @classmethod
    def parse(cls, org_id: str, document: Mapping[str, Any]) -> OrgSettings:
        """Validate a settings document; SettingsInvalid names the org and the first bad field."""
        try:
            return cls.model_validate({**document, "org_id": org_id})
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(part) for part in error["loc"]) or "<document>"
            raise SettingsInvalid(org_id, field, error["msg"]) from None

    def secrets(self) -> list[str]:
        """Every secret these settings hold (credentials, the webhook URL): what logs mask."""
        held = [self.discord_webhook_url]
        if self.alleaves is not None:
            held += [self.alleaves.password, self.alleaves.pin]
        if self.alpine is not None:
            held.append(self.alpine.api_key)
        return [secret.get_secret_value() for secret in held if secret is not None]

    def rules(self) -> LoyaltyRules:
        """The domain's view of these settings."""
        return LoyaltyRules(
            points_per_dollar=self.points_per_dollar,
            equity_multiplier=self.equity_multiplier,
            tiers=tuple(Tier(t.id, t.threshold, t.name) for t in self.tiers),
            discrepancy_threshold=self.discrepancy_threshold,
            source_of_truth=self.source_of_truth,
            auto_adjust=self.auto_adjust,
        )


def _positive_finite(value: object) -> float | None:
    """``value`` as a float when it is a number (not a bool), finite and above 0; else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past float's range
        return None
    return number if math.isfinite(number) and number > 0 else None
