"""Customers' names for the pages that list them: one batched read of their contacts a page."""

from __future__ import annotations

from collections.abc import Iterable

from loyalty_worker.domain.contact import ContactDocument, mask_email
from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.ports.contacts import ContactStore


def contacts_of(
    contacts: ContactStore | None, org_id: str, ids: Iterable[object]
) -> dict[int, ContactDocument]:
    """The contacts of the listed customers that have one (ids that are no number are passed
    over: a malformed record's), in one batched read; none without a contact store."""
    wanted = [i for i in dict.fromkeys(ids) if isinstance(i, int) and not isinstance(i, bool)]
    if contacts is None or not wanted:
        return {}
    return contacts.get_contacts(org_id, wanted)


def names_of(contacts: ContactStore | None, org_id: str, ids: Iterable[object]) -> dict[int, str]:
    """The names of the listed customers that have one."""
    return {
        cid: name
        for cid, contact in contacts_of(contacts, org_id, ids).items()
        if isinstance(name := contact.get("name"), str) and name
    }


def masked(contact: ContactDocument) -> ContactDocument:
    """A contact as a person who may not see contact details sees it: the phone's last four
    digits, the e-mail's first letter and domain."""
    shown = ContactDocument(**contact)
    if contact.get("phone"):
        shown["phone"] = mask_phone(contact.get("phone"))
    if contact.get("email"):
        shown["email"] = mask_email(contact.get("email"))
    return shown
