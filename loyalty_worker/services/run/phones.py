"""Customers' phones kept beside a run's task messages, never in them.

Task messages sit in the broker (Redis) and show in Flower, so a customer's work travels with
its phone masked (``CustomerWork.to_payload``). A customer whose Alpine IQ balance only a look-up
by phone gives needs the real number: the run keeps it aside (``ports.RunPhones``) before the
message is published, and the customer's task, and any retry of it, reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loyalty_worker.errors import PhoneNotKept
from loyalty_worker.ports.run import RunPhones, WorkPayload
from loyalty_worker.services.sync.inputs import CustomerWork


def hand_over(
    run_id: str, works: Sequence[CustomerWork], *, phones: RunPhones
) -> list[WorkPayload]:
    """The works' task payloads, phones masked; the phones their tasks must look up are kept
    for the run first, in one write, so that no task starts without its phone."""
    wanted: dict[int, str] = {}
    for work in works:
        phone = work.phone_to_look_up()
        if phone is not None:
            wanted[work.customer.customer_id] = phone
    if wanted:
        phones.keep(run_id, wanted)
    return [work.to_payload() for work in works]


@dataclass
class Unpacked:
    """A task's payloads as works, their kept phones restored; the customers whose phone the
    run no longer keeps, with the error to report for each."""

    works: list[CustomerWork] = field(default_factory=list)
    lost: list[PhoneNotKept] = field(default_factory=list)


def unpack(run_id: str | None, payloads: Sequence[WorkPayload], *, phones: RunPhones) -> Unpacked:
    """The payloads' works, each with its kept phone (one read for them all)."""
    wanted = [cid for cid in map(CustomerWork.kept_phone_of, payloads) if cid is not None]
    kept = phones.phones(run_id, wanted) if wanted and run_id is not None else {}
    unpacked = Unpacked()
    for payload in payloads:
        cid = CustomerWork.kept_phone_of(payload)
        if cid is not None and cid not in kept:
            unpacked.lost.append(PhoneNotKept(run_id, cid))
            continue
        phone = kept.get(cid) if cid is not None else None
        unpacked.works.append(CustomerWork.from_payload(payload, phone=phone))
    return unpacked


def unpack_one(run_id: str | None, payload: WorkPayload, *, phones: RunPhones) -> CustomerWork:
    """One payload's work with its kept phone; PhoneNotKept when the run no longer keeps it."""
    unpacked = unpack(run_id, [payload], phones=phones)
    if unpacked.lost:
        raise unpacked.lost[0]
    return unpacked.works[0]
