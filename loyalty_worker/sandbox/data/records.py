"""The dataset's JSON, typed: one ``TypedDict`` per kind of record the package docstring lists.

Keys keep the wire's names (Alleaves' snake_case, Alpine IQ's and Markitbot's camelCase), since
these dicts are what the sandbox serves. A key is required where the sandbox reads it without a
default; one a dataset file may leave out, or the malformed share removes, is not. A file's extra
keys pass through untouched: a typed dict describes keys, it drops none.
"""

from __future__ import annotations

from typing import NotRequired, TypeAlias, TypedDict

# Any JSON value, as a request body or a webhook's payload arrives.
JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
# Alleaves sends amounts as numbers or as strings ("12.50"); a broken one may be any text.
Amount: TypeAlias = "float | str"


class TierRecord(TypedDict):
    id: str
    name: NotRequired[str]
    threshold: float


class SettingsRecord(TypedDict, total=False):
    """``loyalty_settings/{orgId}``'s rules as LOYALTY_RULES.md names them; any may be absent."""

    pointsPerDollar: float
    equityMultiplier: float
    tiers: list[TierRecord]
    discrepancyThreshold: float
    sourceOfTruth: str
    autoAdjust: bool
    timezone: str


class AlleavesLogin(TypedDict):
    username: str
    password: str
    pin: str
    locationId: NotRequired[int | str]


class AlpineAccount(TypedDict):
    uid: str
    apiKey: str


class CustomerRecord(TypedDict, total=False):
    """An Alleaves customer as /customer/search returns it (the malformed share has no id)."""

    id_customer: int
    name_first: str
    name_last: str
    full_name: str
    email: str
    phone: str | None
    date_of_birth: str | None
    date_created: str
    loyalty_points: int | None
    alpine_user_code: str | None


class OrderItem(TypedDict):
    id_item: int
    item: str
    quantity: int
    price: float
    category: str


class OrderKey(TypedDict):
    """What an order must carry to be served: the sandbox sorts and replaces orders by these."""

    id_order: int
    date_created: str


class OrderRecord(OrderKey, total=False):
    """A flat Alleaves order as /order returns it."""

    id_customer: int  # 0 or absent: an anonymous order
    order_number: str
    name_first: str
    name_last: str
    email: str
    phone: str
    date_updated: str
    status: str  # in any case, and not always one Alleaves lists
    subtotal: Amount  # absent or "n/a" in the malformed share
    tax: Amount
    discount: Amount | None
    total: Amount
    refunded_amount: Amount
    payment_method: str
    items: list[OrderItem]
    loyalty: float
    points_earned: float | None
    loyalties: list[JsonValue]


class AlpineContact(TypedDict):
    """An Alpine IQ loyalty account of the org."""

    contactID: str
    points: int
    phone: NotRequired[str]  # ten digits
    firstName: NotRequired[str]
    lastName: NotRequired[str]
    tier: NotRequired[str | None]
    lastVisit: NotRequired[str | None]


class ProfileFields(TypedDict, total=False):
    """A Markitbot profile's own fields: what the seed writes to ``customers/{orgId}_{id}``."""

    equityStatus: bool
    firstName: str
    lastName: str
    email: str
    marketingOptIn: bool
    notes: str


class ProfileRecord(ProfileFields):
    customerId: int  # the Alleaves id_customer


class OrgFields(TypedDict):
    """An org of the dataset but its orders (the store keeps those encoded, not as dicts)."""

    orgId: str
    name: NotRequired[str]  # shown as the Alleaves company
    settings: SettingsRecord
    alleaves: AlleavesLogin
    alpine: AlpineAccount
    customers: list[CustomerRecord]
    alpineContacts: list[AlpineContact]
    profiles: list[ProfileRecord]


class OrgRecord(OrgFields):
    orders: list[OrderRecord]  # newest first


class DatasetFields(TypedDict, total=False):
    """The dataset but its orgs."""

    asOf: str  # every timestamp lies before this day (UTC)


class Dataset(DatasetFields):
    orgs: list[OrgRecord]
