"""One customer's inputs as a run hands them to a sync task, and their compact JSON form.

A batch reads the org's whole order history once and groups it by customer; each sync task then
gets only its customer's orders in the message, so no task pages Alleaves again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import cast

from loyalty_worker.domain.models import AlpineProfile, Customer, LoyaltyRules, Order
from loyalty_worker.domain.phone import PhoneHash, mask_phone, normalize_phone
from loyalty_worker.domain.points import ledger_orders, merge_orders
from loyalty_worker.domain.profile import LOYALTY_FIELDS, STAMP_FIELDS, ProfileDocument
from loyalty_worker.ports.run import WorkPayload

log = logging.getLogger(__name__)

# What a sync needs of an existing profile: equity status, and the loyalty fields to tell
# whether anything changed (the stamps never decide that, and a datetime is no JSON).
PROFILE_FIELDS = ("equityStatus", *(f for f in LOYALTY_FIELDS if f not in STAMP_FIELDS))


# Part of every inputs digest: a change to what the digest covers, or to the rules' code,
# bumps it, so that no digest of an older worker ever matches.
_DIGEST_VERSION = "2"  # 2: the phone hash with its key id


def inputs_digest(
    rules: LoyaltyRules,
    customer: Customer,
    alpine: AlpineProfile | None,
    phone_hash: str | None,
) -> str:
    """A digest of everything a sync's outcome depends on except the orders and the profile's
    equity status: the org's rules, the customer's Alleaves record (its phone masked), Alpine
    IQ's answer and the phone hash with its key id (``CustomerWork.phone_hash``: a new key
    changes the digest, so a rotation re-syncs every customer with a phone).

    An incremental run leaves a customer without recent orders as the last sync left them when
    this digest is unchanged (``services.run.memo``). Only the masked phone goes in: the digest is
    kept in Redis.
    """
    parts = (
        _rules_key(rules),
        mask_phone(customer.phone) if customer.phone else None,
        customer.alpine_user_code,
        repr(alpine),
        phone_hash,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=64)
def _rules_key(rules: LoyaltyRules) -> str:
    return f"{_DIGEST_VERSION}:{rules!r}"


def profile_subset(profile: ProfileDocument | None) -> ProfileDocument | None:
    """The part of a profile a sync task needs, JSON-ready."""
    if profile is None:
        return None
    subset = {name: profile.get(name) for name in PROFILE_FIELDS if name in profile}
    return cast(ProfileDocument, subset)


@functools.cache
def _warn_no_phone_key() -> None:
    log.warning(
        "LOYALTY_PHONE_HASH_KEY is not set: profiles' phoneHash and phoneHashKeyId are left "
        "as they are (none written, none deleted); agents cannot find new customers by phone"
    )


def with_ledger(
    customer_id: int, orders: Sequence[Order], malformed: tuple[str, ...], ledger: Mapping[str, str]
) -> tuple[list[Order], tuple[str, ...]]:
    """The customer's orders with the older ones the profile's ledger (``loyaltyOrders``) keeps;
    a ledger edited by hand makes the customer malformed, with a reason, and nothing else."""
    try:
        return list(merge_orders(ledger_orders(customer_id, ledger), orders)), malformed
    except (ArithmeticError, ValueError, TypeError, AttributeError):
        return list(orders), (*malformed, "loyaltyOrders (the profile's order ledger)")


@dataclass(frozen=True, slots=True)
class AlpineAnswer:
    """Alpine IQ's answer fetched ahead (bulk listing): a profile, or None for "no account"."""

    profile: AlpineProfile | None


@dataclass(frozen=True, slots=True)
class CustomerWork:
    customer: Customer
    orders: tuple[Order, ...] = ()
    malformed_orders: tuple[str, ...] = ()
    # None: not known ahead, the sync looks the phone up itself.
    alpine: AlpineAnswer | None = None
    # The existing profile (its PROFILE_FIELDS), when the run read it ahead in bulk.
    profile: ProfileDocument | None = None
    profile_known: bool = False
    # The profile's phoneHash and its key id (``with_phone_hash``), computed while the raw
    # phone is at hand, as ``PhoneHash.to_text``. None: no key configured, the profile's
    # phoneHash is left as it is.
    phone_hash: str | None = None

    def with_phone_hash(self, key: bytes | None) -> CustomerWork:
        """This work with its customer's ``phoneHash`` under ``key``; without a key, none (the
        profile's hash is then left alone, and a warning says so once per process)."""
        if not key:
            _warn_no_phone_key()
            return replace(self, phone_hash=None)
        hashed = PhoneHash.of(normalize_phone(self.customer.phone), key)
        return replace(self, phone_hash=hashed.to_text())

    @property
    def hashed_phone(self) -> PhoneHash | None:
        """``phone_hash`` as a value: None leaves the profile's phoneHash untouched."""
        return PhoneHash.from_text(self.phone_hash)

    def phone_to_look_up(self) -> str | None:
        """The 10-digit phone the task must look up in Alpine IQ; None when the run answered
        Alpine IQ ahead, or the customer has no US phone."""
        return normalize_phone(self.customer.phone) if self.alpine is None else None

    def to_payload(self) -> WorkPayload:
        """Compact JSON for a task message: amounts as strings, never floats, and the phone
        masked: messages sit in the broker and show in Flower.

        A customer whose phone the task must look up is marked ``phoneKept``: the run keeps
        that phone beside the message (``services.run.phones``) and the task reads it there.
        """
        phone = self.customer.phone
        if phone:
            phone = mask_phone(phone)
        payload: WorkPayload = {
            "customer": [self.customer.customer_id, phone, self.customer.alpine_user_code],
            "orders": [
                [
                    o.order_id,
                    o.status,
                    str(o.subtotal),
                    str(o.discount),
                    str(o.refunded_amount),
                    *([o.placed_on.isoformat()] if o.placed_on else []),
                ]
                for o in self.orders
            ],
        }
        if self.malformed_orders:
            payload["malformed"] = list(self.malformed_orders)
        if self.alpine is not None:
            profile = self.alpine.profile
            payload["alpine"] = (
                None
                if profile is None
                else [profile.points, profile.tier, profile.last_visit, profile.contact_id]
            )
        if self.profile_known:
            payload["profile"] = profile_subset(self.profile)
        if self.phone_hash is not None:
            payload["phoneHash"] = self.phone_hash
        if self.phone_to_look_up() is not None:
            payload["phoneKept"] = True
        return payload

    @staticmethod
    def kept_phone_of(payload: WorkPayload) -> int | None:
        """The customer id of a payload whose phone the run keeps aside (None: not needed)."""
        return int(payload["customer"][0]) if payload.get("phoneKept") else None

    @classmethod
    def from_payload(cls, payload: WorkPayload, *, phone: str | None = None) -> CustomerWork:
        """The work a payload describes; ``phone``: the kept phone of a ``phoneKept`` payload
        (``kept_phone_of``), which must be given for one: its masked form cannot be looked up.
        """
        customer_id, shown, code = payload["customer"]
        if payload.get("phoneKept") and phone is None:
            raise ValueError(f"customer {customer_id}: the payload's phone is kept aside")
        orders = tuple(
            Order(
                order_id=int(o[0]),
                customer_id=int(customer_id),
                status=str(o[1]),
                subtotal=Decimal(o[2]),
                discount=Decimal(o[3]),
                refunded_amount=Decimal(o[4]),
                placed_on=date.fromisoformat(o[5]) if len(o) > 5 and o[5] else None,
            )
            for o in payload.get("orders", ())
        )
        alpine: AlpineAnswer | None = None
        if "alpine" in payload:
            row = payload["alpine"]
            alpine = AlpineAnswer(
                None if row is None else AlpineProfile(int(row[0]), row[1], row[2], row[3])
            )
        return cls(
            customer=Customer(int(customer_id), phone or shown, code),
            orders=orders,
            malformed_orders=tuple(payload.get("malformed", ())),
            alpine=alpine,
            profile=payload.get("profile"),
            profile_known="profile" in payload,
            phone_hash=payload.get("phoneHash"),
        )
