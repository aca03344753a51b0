"""Customers' syncs as workers run them: retried while transient errors last, then failed;
every result recorded in its run, the last one closing it; the phones to look up read from the
run's kept phones, never from the message."""

from __future__ import annotations

from datetime import date, datetime

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.models import AlpineProfile, Customer
from loyalty_worker.domain.results import SyncResultDocument, SyncStatus
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import WorkPayload
from loyalty_worker.services.run.context import BatchOptions, OrgAdapters, RunPorts
from loyalty_worker.services.run.jobs import Job, sync_alone, sync_run_chunk
from loyalty_worker.services.run.phones import hand_over
from loyalty_worker.services.sync.inputs import AlpineAnswer, CustomerWork
from loyalty_worker.services.sync.retries import Attempt, RetryLater
from tests.fakes import FakeAlleaves, FakeAlpine, FakeOrg, InMemoryProfileStore, InMemoryRunPhones

OPTIONS = BatchOptions(
    history_start=date(2026, 1, 1), window_days=30, parallelism=2, lock_ttl_s=60, chunk_size=5
)


class Worker:
    def __init__(self) -> None:
        self.store = InMemoryProfileStore()
        self.store.settings["org-1"] = {}
        self.ledger = RunTracker(fakeredis.FakeRedis())
        self.alpine = FakeAlpine({"5550000001": AlpineProfile(12)})
        self.alleaves = FakeAlleaves([Customer(1, "5550000001")], [], page_size=5)
        self.closed: list[str] = []
        self.alone: list[CustomerWork] = []
        self.ports = RunPorts(self.org_for, self.store, self.ledger, OPTIONS)
        self.phones = InMemoryRunPhones()
        self.sent: list[WorkPayload] = []

    def org_for(self, org_id: str) -> OrgAdapters:
        return FakeOrg(self.store.get_org_settings(org_id), self.alleaves, self.alpine)

    def alone_sync(
        self,
        attempt: Attempt,
        run_id: str | None = None,
        *,
        customer_id: int = 1,
        payload: WorkPayload | None = None,
    ) -> SyncResultDocument:
        return sync_alone(
            "org-1",
            customer_id,
            run_id=run_id,
            dry_run=False,
            payload=payload,
            job=self.job(attempt),
        ).to_dict()

    def job(self, attempt: Attempt) -> Job:
        return Job(self.ports, self.phones, attempt, close_run=self.closed.append)

    def chunk(self, works: list[CustomerWork], attempt: Attempt) -> dict[str, int]:
        """The chunk as the run sends it (``hand_over``: phones kept aside) and a task runs it."""
        payloads = hand_over("r1", works, phones=self.phones)
        self.sent += payloads
        return sync_run_chunk(
            "org-1",
            "r1",
            payloads,
            dry_run=False,
            job=self.job(attempt),
            retry_alone=self.alone.append,
        )


def test_a_customer_alone_is_found_synced_and_kept_in_the_memo() -> None:
    worker = Worker()
    result = worker.alone_sync(Attempt())
    assert (result["status"], result["customerId"]) == ("synced", 1)
    assert worker.store.profiles["org-1_1"]["loyaltyStatus"]
    assert 1 in worker.ledger.recall("org-1", [1])
    assert worker.closed == []


def test_a_transient_error_retries_then_fails_the_customer() -> None:
    worker = Worker()
    worker.alpine.error = TransientError("alpine", "503")
    with pytest.raises(RetryLater) as raised:
        worker.alone_sync(Attempt(retries=1, max_retries=2))
    assert raised.value.countdown == 2
    worker.ledger.start("r1", "org-1")
    worker.ledger.set_listed("r1", 1)
    result = worker.alone_sync(Attempt(retries=2, max_retries=2), run_id="r1")
    assert (result["status"], result["reason"]) == ("failed", "alpine_unavailable")
    datetime.fromisoformat(result["updatedAt"])  # ISO, like every result
    assert worker.closed == ["r1"]  # its result completed the run


def test_a_chunk_hands_a_customer_with_a_transient_error_on_alone() -> None:
    worker = Worker()
    worker.ledger.start("r1", "org-1")
    worker.ledger.set_listed("r1", 2)
    known = CustomerWork(Customer(1, "5550000001"), alpine=AlpineAnswer(AlpineProfile(12)))
    look_up = CustomerWork(Customer(2, "5550000002"))  # Alpine IQ must be asked: it is down
    worker.alpine.error = TransientError("alpine", "503")
    assert worker.chunk([known, look_up], Attempt(max_retries=5)) == {"results": 1, "retried": 1}
    assert [work.customer.customer_id for work in worker.alone] == [2]
    assert worker.closed == []


def test_a_chunk_fails_all_its_customers_on_a_permanent_error() -> None:
    worker = Worker()
    worker.ledger.start("r1", "org-1")
    worker.ledger.set_listed("r1", 1)
    del worker.store.settings["org-1"]  # the org is gone: no retry helps
    works = [CustomerWork(Customer(1, "5550000001"))]
    assert worker.chunk(works, Attempt(max_retries=5)) == {"results": 1, "retried": 0}
    (result,) = worker.ledger.iter_results("r1")
    assert (result.status, result.reason) == (SyncStatus.FAILED, "unknown_org")
    assert worker.closed == ["r1"]


def test_a_chunk_looks_up_the_kept_phone_its_message_does_not_carry() -> None:
    worker = Worker()
    worker.ledger.start("r1", "org-1")
    worker.ledger.set_listed("r1", 2)
    worker.alpine.accounts["5550000002"] = AlpineProfile(40)
    known = CustomerWork(Customer(1, "(555) 000-0001"), alpine=AlpineAnswer(AlpineProfile(12)))
    look_up = CustomerWork(Customer(2, "+1 555.000.0002"))
    assert worker.chunk([known, look_up], Attempt()) == {"results": 2, "retried": 0}
    assert worker.phones.runs == {"r1": {2: "5550000002"}}  # only the one a look-up needs
    assert "0000001" not in str(worker.sent) and "0000002" not in str(worker.sent)
    assert worker.sent[1]["customer"][1] == "***-***-0002"
    assert worker.alpine.lookups == ["5550000002"]
    results = {r.customer_id: r for r in worker.ledger.iter_results("r1")}
    outcome = results[2].outcome
    assert outcome is not None and outcome.alpine is not None and outcome.alpine.points == 40
    assert results[2].phone == "***-***-0002"
    assert worker.closed == ["r1"]


def test_a_customer_retried_alone_reads_its_phone_again() -> None:
    worker = Worker()
    worker.ledger.start("r1", "org-1")
    worker.ledger.set_listed("r1", 1)
    worker.alpine.accounts["5550000002"] = AlpineProfile(40)
    worker.alpine.error = TransientError("alpine", "503")
    assert worker.chunk([CustomerWork(Customer(2, "5550000002"))], Attempt()) == {
        "results": 0,
        "retried": 1,
    }
    (handed_on,) = worker.alone
    payload = handed_on.to_payload()  # what the retry's message carries
    assert "5550000002" not in str(payload)
    worker.alpine.error = None
    result = worker.alone_sync(Attempt(), "r1", customer_id=2, payload=payload)
    alpine = result["alpine"]
    assert result["status"] == "synced" and alpine is not None and alpine["points"] == 40
    assert worker.alpine.lookups[-1] == "5550000002"


def test_a_customer_whose_phone_is_no_longer_kept_fails_and_the_others_sync() -> None:
    worker = Worker()
    worker.ledger.start("r1", "org-1")
    worker.ledger.set_listed("r1", 2)
    payloads = hand_over(
        "r1",
        [
            CustomerWork(Customer(1, "5550000001"), alpine=AlpineAnswer(AlpineProfile(12))),
            CustomerWork(Customer(2, "5550000002")),
        ],
        phones=worker.phones,
    )
    worker.phones.forget("r1")  # expired, or Redis lost it
    counts = sync_run_chunk(
        "org-1",
        "r1",
        payloads,
        dry_run=False,
        job=worker.job(Attempt(max_retries=5)),  # permanent: no retry helps
        retry_alone=worker.alone.append,
    )
    assert counts == {"results": 2, "retried": 0}
    results = {r.customer_id: r for r in worker.ledger.iter_results("r1")}
    assert results[1].status is SyncStatus.SYNCED
    assert (results[2].status, results[2].reason) == (SyncStatus.FAILED, "phone_not_kept")
    assert worker.alpine.lookups == []  # never "no account" from a masked phone
    result = worker.alone_sync(Attempt(max_retries=5), "r1", customer_id=2, payload=payloads[1])
    assert (result["status"], result["reason"]) == ("failed", "phone_not_kept")
