"""Finding a customer as people type: by Alleaves id, by phone (its ``phoneHash``), by e-mail
(whole, any case) or by the start of a full or last name (any case), from the contacts the
runs keep (``loyalty_contacts``); without them, by the profile's exact name."""

from __future__ import annotations

from loyalty_worker.domain.contact import ContactDocument
from loyalty_worker.domain.phone import normalize_phone, phone_hash
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.ports.contacts import ContactStore
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.names import names_of
from loyalty_worker.services.dashboard.page import PageModel

FOUND_LIMIT = 20
# Profiles of one last name read to find the first name among them.
SAME_NAME_LIMIT = 50


class FoundCustomer(PageModel):
    customer_id: int
    name: str | None
    tier: str | None
    points: int | None
    loyalty_status: str | None


class Found(PageModel):
    """The customers a search found (at most 20)."""

    org_id: str
    items: list[FoundCustomer]
    hint: str | None = None  # why a phone could not be looked for, when it could not


# What a search for a phone says when no phone-hash key is configured.
NO_PHONE_KEY = (
    "Phone search needs LOYALTY_PHONE_HASH_KEY (the key of the profiles' phoneHash); "
    "search by Alleaves id or name meanwhile."
)


def find_customers(
    org_id: str,
    query: str,
    store: DashboardStore,
    *,
    phone_key: bytes | None,
    contacts: ContactStore | None = None,
) -> Found:
    """Customers by Alleaves id, by name, by e-mail, or by phone: a US number in any of the
    ways people type one ("(707) 708-6718", "707-708-6718", "7077086718", "+1 707 708 6718") is
    hashed with the profiles' ``phone_key`` and found by ``phoneHash``; without a key, the
    answer says so. Names and e-mails are looked for in ``contacts`` when given."""
    query = query.strip()
    phone = normalize_phone(query) if sum(ch.isdigit() for ch in query) >= 10 else None
    if phone is not None and phone_key is None:
        return Found(org_id=org_id, items=[], hint=NO_PHONE_KEY)
    hashed = phone_hash(phone, phone_key) if phone is not None and phone_key is not None else None
    found: list[ProfileDocument] = []
    if query.isdigit() and len(query) < 10:
        profile = store.get_profile(org_id, int(query))
        found = [profile] if profile else []
    elif hashed:
        found = store.list_profiles(org_id, "phoneHash", [hashed], limit=FOUND_LIMIT)
    if not found and query and contacts is not None:
        items = _by_contact(org_id, query, store, contacts)
        if items:
            return Found(org_id=org_id, items=items)
    if not found and query:
        found = _by_name(org_id, query, store)
    names = names_of(contacts, org_id, [p.get("alleavesCustomerId") for p in found])
    return Found(org_id=org_id, items=[_found(p, names) for p in found])


def _by_contact(
    org_id: str, query: str, store: DashboardStore, contacts: ContactStore
) -> list[FoundCustomer]:
    """Customers whose e-mail is the query (any case), or whose full or last name starts with
    it (any case); their loyalty from their profiles, in one batched read."""
    key = " ".join(query.lower().split())
    hits: list[ContactDocument]
    if "@" in key:
        hits = contacts.find_equal(org_id, "emailKey", key, limit=FOUND_LIMIT)
    else:
        hits = contacts.find_by_prefix(org_id, "nameKey", key, limit=FOUND_LIMIT)
        hits += contacts.find_by_prefix(org_id, "lastNameKey", key, limit=FOUND_LIMIT)
    by_id = {int(c["customerId"]): c for c in hits if isinstance(c.get("customerId"), int)}
    ids = list(by_id)[:FOUND_LIMIT]
    profiles = store.read_profiles(
        org_id, ids, ("alleavesCustomerId", "tier", "points", "loyaltyStatus")
    )
    return [
        FoundCustomer(
            customer_id=cid,
            name=by_id[cid].get("name"),
            tier=profiles.get(cid, {}).get("tier"),
            points=profiles.get(cid, {}).get("points"),
            loyalty_status=profiles.get(cid, {}).get("loyaltyStatus"),
        )
        for cid in ids
    ]


def _found(profile: ProfileDocument, names: dict[int, str]) -> FoundCustomer:
    cid = int(profile.get("alleavesCustomerId") or 0)
    parts = (profile.get("firstName"), profile.get("lastName"))
    return FoundCustomer(
        customer_id=cid,
        name=names.get(cid) or " ".join(str(name) for name in parts if name) or None,
        tier=profile.get("tier"),
        points=profile.get("points"),
        loyalty_status=profile.get("loyaltyStatus"),
    )


def _by_name(org_id: str, query: str, store: DashboardStore) -> list[ProfileDocument]:
    """Profiles whose Markitbot ``firstName``/``lastName`` equal the words given (as typed, or
    capitalised): "Ana Reyes" both, one word either."""
    parts = query.split()
    spellings = {tuple(parts), tuple(part.capitalize() for part in parts)}
    found: dict[int | None, ProfileDocument] = {}
    for words in sorted(spellings):
        if len(words) >= 2:
            first, last = words[0], " ".join(words[1:])
            for p in store.list_profiles(org_id, "lastName", [last], limit=SAME_NAME_LIMIT):
                if p.get("firstName") == first:
                    found[p.get("alleavesCustomerId")] = p
        else:
            for field in ("lastName", "firstName"):
                for p in store.list_profiles(org_id, field, list(words), limit=FOUND_LIMIT):
                    found[p.get("alleavesCustomerId")] = p
    return list(found.values())[:FOUND_LIMIT]
