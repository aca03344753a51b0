"""``loyalty-worker demo``: the main job end to end on one machine, on embedded defaults.

Starts what is not already running (the sandbox with a generated dataset, the Firestore
emulator, a Celery worker, Flower; a private Redis when none answers), seeds Firestore, runs a
full sync of the first org with a progress bar and prints the summary. Everything it started is
stopped on exit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import redis
from google.cloud import firestore

from loyalty_worker import bootstrap, devstack
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.seed import seed_firestore
from loyalty_worker.config import get_settings
from loyalty_worker.firestore_emulator import start_emulator
from loyalty_worker.progress import format_summary, watch_run
from loyalty_worker.sandbox.data import generate_dataset

DEMO_DIR = Path(".demo")


def run_demo(*, customers: int, seed: int = 1, flower: bool = True) -> int:
    """Run the demo; returns the process exit code."""
    started = time.monotonic()
    settings = get_settings()
    children: list[devstack.ChildProcess | None] = []
    emulator = None
    try:
        redis_url, redis_child = devstack.ensure_redis(settings.redis_url)
        children.append(redis_child)
        print(f"redis: {redis_url}" + (" (private, started for the demo)" if redis_child else ""))

        emulator_host = os.environ.get("FIRESTORE_EMULATOR_HOST")
        if not emulator_host:
            emulator = start_emulator()
            emulator_host = emulator.host
        print(f"firestore emulator: {emulator_host}")

        DEMO_DIR.mkdir(exist_ok=True)
        dataset = generate_dataset(customers, seed)
        dataset_path = DEMO_DIR / "dataset.json"
        dataset_path.write_text(json.dumps(dataset))
        sandbox = devstack.start_sandbox("--dataset", str(dataset_path), "--latency-ms", "50")
        base_url = sandbox.base_url
        children.append(sandbox.child)
        print(f"sandbox (Alleaves, Alpine IQ, Discord; 50 ms per call): {base_url}")

        env = {
            "LOYALTY_REDIS_URL": redis_url,
            "FIRESTORE_EMULATOR_HOST": emulator_host,
            "LOYALTY_FIRESTORE_PROJECT": settings.firestore_project,
            "LOYALTY_ALLEAVES_BASE_URL": f"{base_url}/alleaves",
            "LOYALTY_ALPINE_BASE_URL": f"{base_url}/alpine",
            "LOYALTY_DISCORD_WEBHOOK_URL": f"{base_url}/discord/webhooks/demo/token",
        }
        os.environ.update(env)
        bootstrap.reset()  # settings are read again, with the addresses above
        client = firestore.Client(project=settings.firestore_project)
        counts = seed_firestore(client, dataset)
        client.close()  # type: ignore[no-untyped-call]  # google-cloud-firestore is untyped here
        print(f"seeded Firestore: {counts}")

        children.append(devstack.start_worker(env))
        print("celery worker: started")
        if flower:
            port = devstack.free_port()
            auth = settings.flower_password is not None
            children.append(devstack.start_flower(env, port=port, auth=auth))
            who = f"user {settings.flower_user}" if auth else "no login: loopback only"
            print(f"flower: http://127.0.0.1:{port} ({who})")

        from loyalty_worker.names import new_run_id

        org_id = dataset["orgs"][0]["orgId"]
        run_id = new_run_id(org_id)
        from loyalty_worker.celery_app import app

        app.send_task("loyalty.sync_org", args=[org_id], kwargs={"run_id": run_id})
        tracker = RunTracker(redis.Redis.from_url(redis_url))
        progress = watch_run(tracker, run_id)
        if progress.summary is None:
            print(f"run {run_id} ended {progress.status}: {progress.error}", file=sys.stderr)
            return 1
        print(format_summary(progress.summary))
        messages = sandbox.messages()
        print(
            f"\nDiscord messages received by the sandbox: {len(messages)} "
            f"({base_url}/discord/messages)"
        )
        print(f"Firestore profiles: customers/{org_id}_<id_customer> on {emulator_host}")
        print(f"demo wall time: {time.monotonic() - started:.1f} s")
        return 0 if progress.status == "completed" else 1
    except devstack.StartupError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    finally:
        devstack.stop_all(children)
        if emulator is not None:
            emulator.stop()
