"""The local emulator behaves like Firestore where the worker depends on it, and fails fast.

``start.mjs`` patches two write paths of @firestore-emulator/server 0.3.15 (field-mask deletes and
whole-document sets); these checks go through the real Python client so they prove what the
worker will see.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.domain.profile import ProfileUpdate
from loyalty_worker.errors import TransientError
from loyalty_worker.firestore_emulator import EmulatorProcess, start_emulator

pytestmark = pytest.mark.integration


@pytest.fixture
def document(firestore_client: firestore.Client) -> firestore.DocumentReference:
    reference = firestore_client.collection("probe").document("doc")
    reference.set({"a": 1, "b": 2, "dotted.name": 3})
    return reference


@pytest.fixture
def private_emulator() -> Iterator[EmulatorProcess]:
    with start_emulator() as emulator:
        yield emulator


def test_merge_set_with_delete_field_removes_the_field(
    document: firestore.DocumentReference,
) -> None:
    document.set({"b": firestore.DELETE_FIELD, "c": 4}, merge=True)

    assert document.get().to_dict() == {"a": 1, "c": 4, "dotted.name": 3}


def test_update_with_delete_field_removes_the_field(document: firestore.DocumentReference) -> None:
    document.update({"b": firestore.DELETE_FIELD})

    assert document.get().to_dict() == {"a": 1, "dotted.name": 3}


def test_delete_field_reaches_names_that_need_quoting(
    document: firestore.DocumentReference,
) -> None:
    document.update({FieldPath("dotted.name").to_api_repr(): firestore.DELETE_FIELD})

    assert document.get().to_dict() == {"a": 1, "b": 2}


def test_plain_set_replaces_the_whole_document(document: firestore.DocumentReference) -> None:
    document.set({"z": 9})

    assert document.get().to_dict() == {"z": 9}


def test_server_transforms_still_merge_into_the_document(
    document: firestore.DocumentReference,
) -> None:
    document.set({"b": firestore.DELETE_FIELD, "at": firestore.SERVER_TIMESTAMP}, merge=True)
    document.update({"a": firestore.Increment(2)})

    result = document.get().to_dict()
    assert result is not None
    assert sorted(result) == ["a", "at", "dotted.name"]
    assert result["a"] == 3


def test_emulator_listens_on_loopback_until_stopped(private_emulator: EmulatorProcess) -> None:
    assert private_emulator.host == f"127.0.0.1:{private_emulator.port}"
    assert _answers(private_emulator.port)

    private_emulator.stop()
    private_emulator.stop()

    assert not private_emulator.running()
    assert not _answers(private_emulator.port)


def test_a_stopped_emulator_is_a_transient_error_within_seconds(
    private_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", private_emulator.host)
    with closing(firestore.Client(project="test-stopped")) as client:
        store = FirestoreProfileStore(client)
        store.write_profiles([ProfileUpdate("org", 1, {"points": 1}, ())])

        private_emulator.stop()

        for call in (
            lambda: store.get_org_settings("org"),
            lambda: store.write_profiles([ProfileUpdate("org", 1, {"points": 2}, ())]),
        ):
            started = time.monotonic()
            with pytest.raises(TransientError) as caught:
                call()
            # The store's default retry budget is 3 s; the client's own default is minutes.
            assert time.monotonic() - started < 6
            assert caught.value.service == "firestore"


def test_the_foreground_command_prints_the_host_and_stops_on_ctrl_c() -> None:
    command = [
        sys.executable,
        "-c",
        "from loyalty_worker.firestore_emulator import main_emulator; "
        "raise SystemExit(main_emulator())",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        name, _, host = line.partition("=")
        port = int(host.rpartition(":")[2])
        assert name == "FIRESTORE_EMULATOR_HOST"
        assert _answers(port)

        process.send_signal(signal.SIGINT)

        assert process.wait(timeout=10) == 0
    assert not _answers(port)


def test_the_emulator_dies_with_a_killed_parent() -> None:
    command = [
        sys.executable,
        "-c",
        "from loyalty_worker.firestore_emulator import start_emulator; "
        "import time; print(start_emulator().port, flush=True); time.sleep(60)",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        process.kill()

    deadline = time.monotonic() + 5
    while _answers(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _answers(port)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False
