"""What a plan lists before it reads anything else: the org's customers (Alleaves) and which
phones have a loyalty account (Alpine IQ's contacts, with their balances where the listing
carries them), and Alpine IQ's answer for each customer that follows from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from loyalty_worker.domain.models import AlpineProfile, Customer
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.errors import MalformedRecord, PermanentError
from loyalty_worker.ports.sources import CustomerSource, LoyaltyLookup
from loyalty_worker.services.sync.deadline import Deadline, check
from loyalty_worker.services.sync.inputs import AlpineAnswer
from loyalty_worker.services.sync.listing import customer_pages
from loyalty_worker.services.sync.lookups import PlanLookups
from loyalty_worker.services.sync.paging import Paging

# Phone → the contact's balance; None: the contact exists, but the listing carried no balance.
AlpineBalances = dict[str, AlpineProfile | None]


@dataclass(frozen=True)
class Listing:
    """The org's customers (and the records that could not be trusted), Alpine IQ's contacts,
    and the look-ups a full run made while its history was read (``PlanLookups``)."""

    customers: Sequence[Customer]
    malformed: Sequence[MalformedRecord] = ()
    balances: Mapping[str, AlpineProfile | None] = field(default_factory=dict)
    lookups: PlanLookups | None = None
    # A partial run's: only the selected customers (the others' orders are not "unowned").
    partial: bool = False

    @property
    def listed(self) -> int:
        """Every record of the listing: each gets a result."""
        return len(self.customers) + len(self.malformed)

    def alpine_answer(self, phone: str | None) -> AlpineAnswer | None:
        """Alpine IQ's answer from the listing, or None when only a look-up can tell."""
        balances = self.balances
        if phone is None or phone not in balances:
            # Every loyalty account is a contact: no contact with that phone, no account.
            return AlpineAnswer(None)
        profile = balances[phone]
        if profile is not None:
            return AlpineAnswer(profile)
        return self.lookups.answer(phone) if self.lookups is not None else None


def phones_to_look_up(
    customers: Sequence[Customer], balances: Mapping[str, AlpineProfile | None]
) -> list[str]:
    """The customers' phones that only a look-up can answer (a contact listed without its
    balance), once each."""
    phones = (normalize_phone(c.phone) for c in customers)
    wanted = (p for p in phones if p is not None and p in balances)
    return [p for p in dict.fromkeys(wanted) if balances[p] is None]


def list_customers(
    source: CustomerSource, paging: Paging
) -> tuple[list[Customer], list[MalformedRecord]]:
    """Every customer and every malformed record of the listing; duplicates dropped.

    A listing still full at ``paging.max_pages`` pages raises PermanentError: a run on part of
    the customers would report the others as nothing at all."""
    customers: list[Customer] = []
    malformed: list[MalformedRecord] = []
    seen: set[int] = set()
    max_pages = paging.max_pages
    for pages, records in enumerate(customer_pages(source, paging), start=1):
        if max_pages is not None and pages == max_pages and len(records) >= source.page_size:
            raise PermanentError(
                "alleaves", f"customer listing still full at {max_pages} pages (LOYALTY_MAX_PAGES)"
            )
        for record in records:
            if isinstance(record, MalformedRecord):
                malformed.append(record)
            elif record.customer_id not in seen:
                seen.add(record.customer_id)
                customers.append(record)
    return customers, malformed


def alpine_balances(alpine: LoyaltyLookup, deadline: Deadline | None = None) -> AlpineBalances:
    """Every contact's balance by phone, from the contacts listing (this also proves the key)."""
    balances: AlpineBalances = {}
    for contact in alpine.iter_contacts():
        check(deadline, "Alpine IQ contacts listing")
        if contact.phone is not None:
            balances[contact.phone] = contact.profile
    return balances
