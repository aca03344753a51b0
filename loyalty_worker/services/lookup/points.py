"""An agent's loyalty look-up by phone (the seed's ``LoyaltyTools.checkPoints``).

Two views of one customer, side by side: the **calculated** one from their Markitbot profile (what
the last sync wrote) and the **live** Alpine IQ balance, reconciled by the org's rules.

Finding the profile from a phone: profiles hold no raw phone, so the look-up tries, in order,

1. ``phoneHash``: the keyed hash of the normalised phone (``domain.phone.phone_hash``) that the
   sync writes when ``LOYALTY_PHONE_HASH_KEY`` is set. It finds every synced customer with a
   phone, Alpine IQ account or not, and works while Alpine IQ is down. It needs nothing from
   Alpine IQ, so it runs beside the live look-up;
2. ``alpineUserId``: Alpine IQ's ``contactID`` from the live look-up, which the sync copies from
   Alleaves' ``alpine_user_code``. Finds only customers with an Alpine IQ account, and only while
   Alpine IQ answers.

Each ``phoneHash`` has a ``phoneHashKeyId`` beside it (``domain.phone.phone_key_id``): a short,
non-secret fingerprint of the key it was made with. The look-up compares it with its own key's:
a profile found by contact id whose key id differs, or a miss by hash while no profile of the
org carries this key's id, means the workers and the API hold different keys. That is logged
as a warning and said in the answer's note, instead of look-ups silently missing.

Alpine IQ down (or refusing the org's key) is not an error here: the answer comes from Firestore
alone, with ``alpineAvailable: false`` and a note, and Alpine's side as of the last sync.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from loyalty_worker.domain.models import AlpineProfile, LoyaltyRules
from loyalty_worker.domain.phone import mask_phone, normalize_phone, phone_hash, phone_key_id
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.domain.reconciliation import displayed_loyalty, reconcile
from loyalty_worker.domain.tiers import assign_tier, known_tier
from loyalty_worker.errors import LoyaltyError, TransientError
from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.profiles import PointsStore
from loyalty_worker.ports.sources import LoyaltyLookup
from loyalty_worker.services.lookup.points_answer import (
    AlpineView,
    CalculatedView,
    DisplayedView,
    PointsCheck,
)

log = logging.getLogger(__name__)

PHONE_HASH_FIELD = "phoneHash"
PHONE_KEY_ID_FIELD = "phoneHashKeyId"
ALPINE_ID_FIELD = "alpineUserId"
# More than one profile per phone is a data problem worth a note, not a reason to read them all.
MAX_MATCHES = 5


class InvalidPhone(ValueError):
    """The text given is not a 10-digit US phone number (the message shows it masked)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """The reconciliation an answer shows: live, as the last sync stored it, or none and why."""

    reconciled: bool | None
    discrepancy: int | None
    status: str
    displayed: DisplayedView | None


def check_points(
    org_id: str,
    phone: str,
    *,
    store: PointsStore,
    alpine: LoyaltyLookup | None,
    phone_key: bytes | None = None,
) -> PointsCheck:
    """Both views of the customer with this phone, reconciled (phone masked).

    Raises InvalidPhone for text that is no US number, UnknownOrg/SettingsInvalid for the org,
    TransientError when Firestore is unavailable. ``alpine`` None: the org has no Alpine IQ.
    """
    phone10 = normalize_phone(phone)
    if phone10 is None:
        raise InvalidPhone(f"not a 10-digit US phone number: {mask_phone(phone)}")
    org = store.get_org_settings(org_id)
    rules = org.rules()
    notes: list[str] = []

    live: AlpineProfile | None = None
    alpine_available = False
    with ContextThreadPool(max_workers=1) as beside:
        # The profile's look-up by phoneHash needs nothing from Alpine IQ: it runs while Alpine
        # IQ answers (or is tried again), so the agent waits for the slower of the two only.
        by_hash = (
            beside.submit(
                store.find_profiles,
                org_id,
                PHONE_HASH_FIELD,
                phone_hash(phone10, phone_key),
                limit=MAX_MATCHES,
            )
            if phone_key is not None
            else None
        )
        if alpine is None:
            notes.append("this org has no Alpine IQ credentials")
        else:
            try:
                live = alpine.lookup(phone10)
                alpine_available = True
            except TransientError as exc:
                notes.append(f"Alpine IQ is unavailable ({exc.reason}); showing Firestore only")
            except LoyaltyError as exc:
                notes.append(
                    f"Alpine IQ refused the look-up ({exc.reason}); showing Firestore only"
                )
        hashed = by_hash.result() if by_hash is not None else None

    profile = _find_profile(org_id, live, hashed, store=store, phone_key=phone_key, notes=notes)
    return _answer(profile, live, alpine_available, rules, notes, phone=mask_phone(phone10))


def _find_profile(
    org_id: str,
    live: AlpineProfile | None,
    hashed: list[ProfileDocument] | None,
    *,
    store: PointsStore,
    phone_key: bytes | None,
    notes: list[str],
) -> ProfileDocument | None:
    """The customer's profile by ``phoneHash`` (``hashed``: the profiles found by it, None
    without a key), else by Alpine IQ's contact id."""
    if hashed:
        return _most_recent(hashed, notes)
    if live is not None and live.contact_id:
        matches = store.find_profiles(org_id, ALPINE_ID_FIELD, live.contact_id, limit=MAX_MATCHES)
        if matches:
            found = _most_recent(matches, notes)
            if phone_key is not None:
                _check_key_id(org_id, found.get(PHONE_KEY_ID_FIELD), phone_key, notes)
            return found
    if phone_key is not None:
        _check_key_in_use(org_id, phone_key, store=store, notes=notes)
    if phone_key is None and live is None:
        notes.append(
            "no synced profile can be found by phone without Alpine IQ's contact id "
            "(profiles carry no phoneHash)"
        )
    else:
        notes.append("no synced Markitbot profile found for this phone")
    return None


def _check_key_id(org_id: str, stored: object, phone_key: bytes, notes: list[str]) -> None:
    """A profile found by other means whose hash was made under another key: say so."""
    own = phone_key_id(phone_key)
    if isinstance(stored, str) and stored != own:
        _key_mismatch(
            org_id,
            f"this profile's phoneHash was made with key id {stored}, this API's key id is {own}",
            notes,
        )


def _check_key_in_use(
    org_id: str, phone_key: bytes, *, store: PointsStore, notes: list[str]
) -> None:
    """A miss by hash: when no profile of the org carries this API's key id at all, the
    workers hash with another key (or have not synced with one yet)."""
    own = phone_key_id(phone_key)
    if not store.find_profiles(org_id, PHONE_KEY_ID_FIELD, own, limit=1):
        _key_mismatch(
            org_id,
            f"no profile of this org carries this API's phone-hash key id {own}: "
            "the workers use another LOYALTY_PHONE_HASH_KEY, or have not synced with one yet",
            notes,
        )


def _key_mismatch(org_id: str, detail: str, notes: list[str]) -> None:
    log.warning(
        "org %s: phone-hash key mismatch: %s; set the same LOYALTY_PHONE_HASH_KEY on the "
        "workers and the API, then run a full sync",
        org_id,
        detail,
        extra={"outcome": "phone_hash_key_mismatch"},
    )
    notes.append(f"phone-hash key mismatch: {detail}")


def _most_recent(matches: list[ProfileDocument], notes: list[str]) -> ProfileDocument:
    """One profile per phone is the norm; several (duplicate Alleaves customers) are named."""
    if len(matches) == 1:
        return matches[0]
    chosen = max(matches, key=lambda p: _sortable_time(p.get("pointsLastCalculated")))
    notes.append(
        f"{len(matches)}{'+' if len(matches) >= MAX_MATCHES else ''} profiles share this phone; "
        f"showing the most recently synced (customer {chosen.get('alleavesCustomerId')})"
    )
    return chosen


def _answer(
    profile: ProfileDocument | None,
    live: AlpineProfile | None,
    alpine_available: bool,
    rules: LoyaltyRules,
    notes: list[str],
    *,
    phone: str,
) -> PointsCheck:
    """The answer from the profile found, if any, and Alpine IQ's balance, if it answered."""
    calculated_points = _int_or_none(profile.get("pointsFromOrders")) if profile else None
    calculated = (
        None
        if calculated_points is None
        else CalculatedView(
            points=calculated_points,
            tier=assign_tier(calculated_points, rules.tiers),
            source="orders",
        )
    )
    if profile is not None and calculated is None:
        notes.append("the profile has not been synced yet")

    if alpine_available:
        alpine_view = None if live is None else _alpine_view(live, rules, live=True)
    else:
        alpine_view = _cached_alpine_view(profile, rules)

    if calculated_points is not None and alpine_available:
        comparison = _live_comparison(calculated_points, live, rules)
    elif profile is not None and calculated_points is not None:
        comparison = _stored_comparison(profile)
    else:
        comparison = _no_comparison(profile, live, alpine_available, rules)
    return PointsCheck(
        calculated=calculated,
        alpine=alpine_view,
        reconciled=comparison.reconciled,
        discrepancy=comparison.discrepancy,
        status=comparison.status,
        displayed=comparison.displayed,
        last_sync_at=_iso(profile.get("pointsLastCalculated")) if profile else None,
        customer_id=profile.get("alleavesCustomerId") if profile else None,
        phone=phone,
        alpine_available=alpine_available,
        note="; ".join(notes) or None,
    )


def _live_comparison(
    calculated_points: int, live: AlpineProfile | None, rules: LoyaltyRules
) -> Comparison:
    """Live Alpine IQ against the points of the last sync, reconciled by the org's rules."""
    # A small gap on the day of a purchase is Alpine's lag, as the rules say.
    reconciliation = reconcile(calculated_points, live, rules)
    shown = displayed_loyalty(calculated_points, live, rules)
    return Comparison(
        reconciled=reconciliation.reconciled,
        discrepancy=reconciliation.discrepancy,
        status=reconciliation.status.value,
        displayed=DisplayedView(
            points=shown.points, tier=shown.tier, source=shown.tier_source.value
        ),
    )


def _stored_comparison(profile: ProfileDocument) -> Comparison:
    """Alpine IQ unavailable: the reconciliation of the last sync, as stored."""
    return Comparison(
        reconciled=profile.get("loyaltyReconciled"),
        discrepancy=profile.get("loyaltyDiscrepancy"),
        status=profile.get("loyaltyStatus") or "unknown",
        displayed=DisplayedView(
            points=profile.get("points"),
            tier=profile.get("tier"),
            source=profile.get("tierSource"),
        ),
    )


def _no_comparison(
    profile: ProfileDocument | None,
    live: AlpineProfile | None,
    alpine_available: bool,
    rules: LoyaltyRules,
) -> Comparison:
    """No calculated points to compare: why, and Alpine IQ's balance when it is all there is."""
    if not alpine_available:
        status = "unknown"
    elif live is None:
        status = "not_found" if profile is None else "no_alpine_account"
    else:
        status = "not_synced"
    shown_alpine = alpine_available and live is not None
    return Comparison(
        reconciled=None,
        discrepancy=None,
        status=status,
        displayed=_alpine_only_display(live, rules) if shown_alpine else None,
    )


def _alpine_view(alpine: AlpineProfile, rules: LoyaltyRules, *, live: bool) -> AlpineView:
    """Alpine IQ's balance; its tier named as the profile would show it (rules, "Displayed")."""
    tier = known_tier(alpine.tier, rules.tiers) or assign_tier(alpine.points, rules.tiers)
    return AlpineView(
        points=alpine.points,
        tier=tier,
        source="alpine_iq",
        live=live,
        last_visit=alpine.last_visit,
    )


def _cached_alpine_view(profile: ProfileDocument | None, rules: LoyaltyRules) -> AlpineView | None:
    """Alpine IQ's side as the last sync stored it (``pointsFromAlpine``), marked not live."""
    if profile is None:
        return None
    points = _int_or_none(profile.get("pointsFromAlpine"))
    if points is None:
        return None
    stored_tier = profile.get("tier") if profile.get("tierSource") == "alpine_iq" else None
    tier = stored_tier if isinstance(stored_tier, str) else None
    return _alpine_view(AlpineProfile(points, tier), rules, live=False)


def _alpine_only_display(alpine: AlpineProfile | None, rules: LoyaltyRules) -> DisplayedView:
    """No synced profile: Alpine IQ's balance is all there is, whatever the source of truth."""
    assert alpine is not None
    view = _alpine_view(alpine, rules, live=True)
    return DisplayedView(points=view.points, tier=view.tier, source="alpine_iq")


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _iso(value: object) -> str | None:
    """Firestore timestamps come back as datetimes; fakes may hold strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str) else None


def _sortable_time(value: object) -> str:
    return _iso(value) or ""
