"""``loyalty-worker demo``: the main job end to end on one machine, on embedded defaults.

Starts what is not already running (the sandbox with a generated dataset, the Firestore
emulator, a Celery worker, Flower, the API with its dashboard and Firebase's Auth emulator for
its sign-in; a private Redis when none answers), seeds Firestore, runs a full sync of the first
org with a progress bar and prints the summary. Then it stays up, printing the dashboard's
sign-in URL with a token generated for the demo's org (and Flower's URL with its login), until
Ctrl-C, SIGTERM or SIGHUP; ``exit_after`` (``--exit``) ends it with its run instead, for scripts
(no API, so no Auth emulator). Everything it started is stopped on exit, whatever ends it
(``devstack.supervise``); a run it leaves unfinished is closed and its org's lock released.

The token and Flower's generated password are printed to the terminal for the person running
the demo; they reach their processes in the environment only, never an argv, a URL or a file.

The demo works in a Redis database of its own (``--redis-db``, 15 by default), which it empties
when it starts: a demo never meets a worker deployment's queues or locks, and whatever a demo
killed outright (SIGKILL) left there does not block the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import redis
from google.cloud import firestore

from loyalty_worker import bootstrap, devstack
from loyalty_worker.adapters.members import FirestoreMemberStore
from loyalty_worker.adapters.publisher import TaskPublisher
from loyalty_worker.adapters.run_state import Progress, RunTracker
from loyalty_worker.adapters.seed import seed_firestore
from loyalty_worker.auth_emulator import AuthEmulator, create_account, launch_auth_emulator
from loyalty_worker.config import get_settings
from loyalty_worker.domain.access import Member, Role
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.firestore_emulator import EmulatorProcess, EmulatorUnavailable, start_emulator
from loyalty_worker.names import AUTH_EMULATOR_HOST_VAR, new_run_id
from loyalty_worker.progress import format_summary, watch_run
from loyalty_worker.sandbox.data import generate_dataset
from loyalty_worker.secret_strength import is_strong
from loyalty_worker.services.run.summary import SummaryBuilder
from loyalty_worker.services.run.triggers import enqueue_org_run

DEMO_DIR = Path(".demo")
# Who uses the demo's database: {host, pid, start}; "pid" is emptied when that demo ends.
OWNER_KEY = "loyalty:demo:owner"
# A worker given this long to finish or give back its tasks before it is killed; the whole stop
# stays well within the 15 s a supervisor (docker stop: 10 s) commonly allows.
WORKER_STOP_S = 8.0


def new_secret(nbytes: int) -> str:
    """A random URL-safe secret that the settings' check of secrets takes (``nbytes`` >= 16)."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if is_strong(value):
            return value


class DemoDatabaseBusy(RuntimeError):
    """The demo's Redis database is in use: by a running demo, or by something not a demo."""


def with_db(url: str, db: int) -> str:
    """``url`` with its database number replaced by ``db``."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), "" where that cannot be
    read, None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(owner: dict[str, str]) -> bool:
    pid = owner.get("pid", "")
    if not pid.isdigit():
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another machine's demo: not ours to judge
    if Path("/proc").is_dir():
        return _process_start(int(pid)) == owner.get("start")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_database(client: redis.Redis, url: str) -> str | None:
    """Make the demo's database this demo's: refused while another demo uses it or when it holds
    keys no demo wrote; emptied otherwise. Says what a stopped demo left there, if anything."""
    raw = cast(dict[bytes, bytes], client.hgetall(OWNER_KEY))
    owner = {k.decode(): v.decode() for k, v in raw.items()}
    if owner and _owner_alive(owner):
        raise DemoDatabaseBusy(
            f"another demo (pid {owner['pid']} on {owner.get('host')}) is using {url}: stop it, "
            "or give this one another database (--redis-db)"
        )
    if not owner and client.dbsize():
        raise DemoDatabaseBusy(
            f"{url} holds keys no demo wrote: give the demo an empty database (--redis-db)"
        )
    locks = sorted(key.decode() for key in client.scan_iter("loyalty:lock:*"))
    client.flushdb()
    pid = os.getpid()
    start = _process_start(pid) or ""
    client.hset(OWNER_KEY, mapping={"host": socket.gethostname(), "pid": pid, "start": start})
    if locks:
        return f"cleared what a demo that was killed left behind ({', '.join(locks)})"
    return None


def close_run(tracker: RunTracker, org_id: str, run_id: str, reason: str) -> str:
    """Close a run the demo leaves unfinished (as ``incomplete``, with what its results add up
    to) and release the org's lock; what was done, for the demo to say ("" for a run that had
    ended)."""
    meta = tracker.meta(run_id)
    if RunStatus.of(meta.get("status")).ended and "summary" in meta:
        tracker.release_lock(org_id, run_id)
        return ""
    if "orgId" in meta:
        now = time.time()
        builder = SummaryBuilder(
            run_id=run_id,
            org_id=org_id,
            listed=int(meta.get("listed", 0)),
            dry_run=meta.get("dryRun") == "1",
        )
        summary = builder.add_all(tracker.iter_results(run_id)).build(
            started_at=float(meta.get("startedAt", now)),
            finished_at=now,
            status=RunStatus.INCOMPLETE,
        )
        summary["error"] = reason
        tracker.finish(run_id, RunStatus.INCOMPLETE, summary)
    tracker.release_lock(org_id, run_id)
    return f"run {run_id} closed as incomplete, org {org_id}'s run lock released"


def run_demo(
    *,
    customers: int,
    seed: int = 1,
    flower: bool = True,
    redis_db: int = 15,
    exit_after: bool = False,
) -> int:
    """Run the demo; returns the process exit code (128 + the signal's number when stopped).

    Without ``exit_after`` the demo stays up after its run until it is stopped."""
    with devstack.supervise("demo"):  # stops, at its end, a child the demo had not listed yet
        try:
            return _run_demo(
                customers=customers,
                seed=seed,
                flower=flower,
                redis_db=redis_db,
                exit_after=exit_after,
            )
        except devstack.Stopped as exc:
            stopped = exc
    devstack.say(f"demo: stopped ({stopped}); everything it started is stopped")
    return stopped.exit_code


def _run_demo(*, customers: int, seed: int, flower: bool, redis_db: int, exit_after: bool) -> int:
    started = time.monotonic()
    demo = _Demo()
    try:
        if not exit_after:  # it starts while the rest does: ready by the time the API starts
            demo.launch_auth_emulator()
        stack = demo.start_stack(customers, seed, redis_db)
        # The dashboard's address is known before the worker starts: its alert links there.
        api_port = None if exit_after else devstack.free_port()
        if api_port is not None:
            stack.env["LOYALTY_PUBLIC_URL"] = f"http://127.0.0.1:{api_port}"
        demo.start_worker(stack.env)
        flower_line = demo.start_flower(stack.env) if flower else ""
        api = None if api_port is None else demo.start_api(stack, api_port)
        progress = demo.follow_run(stack)
        if progress.summary is None and exit_after:
            return 1
        messages = stack.sandbox.messages()
        print(
            f"\nDiscord messages received by the sandbox: {len(messages)} "
            f"({stack.sandbox.base_url}/discord/messages)"
        )
        print(
            f"Firestore profiles: customers/{stack.org_id}_<id_customer> on {stack.emulator_host}"
        )
        print(f"demo wall time: {time.monotonic() - started:.1f} s")
        if exit_after:
            return 0 if progress.status == RunStatus.COMPLETED else 1
        if flower_line:
            print(flower_line)
        assert api is not None
        dashboard_url, token, admin = api
        print(
            f"\ndashboard: {dashboard_url}/sign-in\n"
            f"sign in:   {admin.email}\n"
            f"password:  {admin.password}  (admin of org {stack.org_id}, in the local Auth "
            "emulator)\n"
            f"api token: {token}  (for machines: /api and /metrics, as bearer)\n"
            "\nThe stack stays up: press Ctrl-C to stop everything.",
            flush=True,
        )
        while True:  # until a stop signal raises devstack.Stopped
            signal.pause()
    except (devstack.StartupError, EmulatorUnavailable, DemoDatabaseBusy) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except devstack.Stopped as exc:
        demo.stopped_by = f"the demo was stopped ({exc})"
        devstack.say(f"\ndemo: {demo.stopped_by}: stopping what it started")
        raise
    finally:
        demo.stop()


@dataclass(frozen=True)
class DemoAdmin:
    """The demo's admin: an account in the local Auth emulator, admin of the demo's org."""

    email: str
    password: str


@dataclass(frozen=True)
class _Stack:
    """The services the demo's processes use, and the environment that names them."""

    env: dict[str, str]
    client: redis.Redis  # the demo's own database
    sandbox: devstack.Sandbox
    emulator_host: str
    org_id: str  # the org the demo runs (the dataset's first)


class _Demo:
    """The demo's steps, each keeping what it started, and ``stop`` for all of it."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self.services: list[devstack.ChildProcess | None] = []  # stopped last: the workers use them
        self.workers: list[devstack.ChildProcess] = []
        self.emulator: EmulatorProcess | None = None
        self.auth_emulator: AuthEmulator | None = None
        self.client: redis.Redis | None = None
        self.run: tuple[str, str] | None = None  # (org, run id) once started
        self.stopped_by = "the demo ended before its run did"

    def start_stack(self, customers: int, seed: int, redis_db: int) -> _Stack:
        """Redis, the emulator and the sandbox serving a generated dataset; Firestore seeded
        with that dataset."""
        client, redis_url = self._start_redis(redis_db)
        emulator_host = os.environ.get("FIRESTORE_EMULATOR_HOST")
        if not emulator_host:
            self.emulator = start_emulator()
            emulator_host = self.emulator.host
        print(f"firestore emulator: {emulator_host}")

        DEMO_DIR.mkdir(exist_ok=True)
        dataset = generate_dataset(customers, seed)
        dataset_path = DEMO_DIR / "dataset.json"
        dataset_path.write_text(json.dumps(dataset))
        sandbox = devstack.start_sandbox("--dataset", str(dataset_path), "--latency-ms", "50")
        base_url = sandbox.base_url
        self.services.append(sandbox.child)
        print(f"sandbox (Alleaves, Alpine IQ, Discord; 50 ms per call): {base_url}")

        env = {
            "LOYALTY_REDIS_URL": redis_url,
            "FIRESTORE_EMULATOR_HOST": emulator_host,
            "LOYALTY_FIRESTORE_PROJECT": self.settings.firestore_project,
            "LOYALTY_ALLEAVES_BASE_URL": f"{base_url}/alleaves",
            "LOYALTY_ALPINE_BASE_URL": f"{base_url}/alpine",
            "LOYALTY_DISCORD_WEBHOOK_URL": f"{base_url}/discord/webhooks/demo/token",
            # generated as the dashboard's token is: the profiles get a phoneHash, so the
            # dashboard finds customers by phone
            "LOYALTY_PHONE_HASH_KEY": new_secret(32),
        }
        os.environ.update(env)
        bootstrap.reset()  # settings are read again, with the addresses above
        fs = firestore.Client(project=self.settings.firestore_project)
        counts = seed_firestore(fs, dataset)
        fs.close()  # type: ignore[no-untyped-call]  # google-cloud-firestore is untyped here
        print(f"seeded Firestore: {counts}")
        return _Stack(env, client, sandbox, emulator_host, org_id=dataset["orgs"][0]["orgId"])

    def launch_auth_emulator(self) -> None:
        """Firebase's Auth emulator for the API's sign-in, unless FIREBASE_AUTH_EMULATOR_HOST
        names one: started, not waited for (``start_api`` waits)."""
        if not os.environ.get(AUTH_EMULATOR_HOST_VAR):
            self.auth_emulator = launch_auth_emulator(project_id=self.settings.firebase_project_id)
            self.services.append(self.auth_emulator.child)

    def _auth_emulator_host(self) -> str:
        """The Auth emulator's ``host:port``, once it answers."""
        if self.auth_emulator is None:
            return os.environ[AUTH_EMULATOR_HOST_VAR]
        self.auth_emulator.wait_until_ready()
        return self.auth_emulator.host

    def _start_redis(self, redis_db: int) -> tuple[redis.Redis, str]:
        """The demo's own database, on the Redis that answers or a private one: a client of it,
        and its URL."""
        server_url, redis_child = devstack.ensure_redis(self.settings.redis_url)
        self.services.append(redis_child)
        redis_url = with_db(server_url, redis_db)
        self.client = redis.Redis.from_url(redis_url)
        cleared = claim_database(self.client, redis_url)
        where = " (private, started for the demo)" if redis_child else ", the demo's own database"
        print(f"redis: {redis_url}{where}")
        if cleared:
            print(f"redis: {cleared}")
        return self.client, redis_url

    def start_worker(self, env: dict[str, str]) -> None:
        port = devstack.free_port()
        self.workers.append(devstack.start_worker({**env, "LOYALTY_METRICS_PORT": str(port)}))
        print(f"celery worker: started; its metrics: http://127.0.0.1:{port}/metrics")

    def start_flower(self, env: dict[str, str]) -> str:
        """Flower on a free port; the line that says how to sign in to it."""
        port = devstack.free_port()
        # A generated password when none is set: Flower's controls are never left open.
        password = self.settings.flower_password
        flower_password = password.get_secret_value() if password is not None else new_secret(16)
        flower_env = {**env, "LOYALTY_FLOWER_PASSWORD": flower_password}
        self.workers.append(devstack.start_flower(flower_env, port=port, auth=True))
        print(f"flower: http://127.0.0.1:{port}")
        shown = "LOYALTY_FLOWER_PASSWORD" if password is not None else flower_password
        return (
            f"flower: http://127.0.0.1:{port} (user {self.settings.flower_user}, password {shown})"
        )

    def start_api(self, stack: _Stack, api_port: int) -> tuple[str, str, DemoAdmin]:
        """The API with its dashboard on ``api_port``: the dashboard's URL, a token generated
        for the demo's org (a machine's: ``/api`` and ``/metrics``), and the demo's admin, an
        account made in the Auth emulator and granted ``admin`` of the org."""
        token = new_secret(24)
        auth_host = self._auth_emulator_host()
        project = self.settings.firebase_project_id
        print(f"firebase auth emulator: {auth_host} (project {project})")
        # An e-mail of the run's own: an emulator named by FIREBASE_AUTH_EMULATOR_HOST may hold
        # an earlier demo's admin.
        admin = DemoAdmin(f"admin-{secrets.token_hex(3)}@demo.example.com", new_secret(16))
        uid = create_account(auth_host, admin.email, admin.password, project_id=project)
        fs = firestore.Client(project=self.settings.firestore_project)
        FirestoreMemberStore(fs).put_member(
            Member(stack.org_id, uid, admin.email, Role.ADMIN, "demo", datetime.now(UTC))
        )
        fs.close()  # type: ignore[no-untyped-call]  # google-cloud-firestore is untyped here
        api_env = {
            **stack.env,
            "LOYALTY_API_TOKENS": json.dumps({token: [stack.org_id]}),
            AUTH_EMULATOR_HOST_VAR: auth_host,
            "LOYALTY_FIREBASE_PROJECT_ID": project,
        }
        self.workers.append(devstack.start_api(api_env, port=api_port))
        dashboard_url = f"http://127.0.0.1:{api_port}/dashboard"
        print(f"api: http://127.0.0.1:{api_port} (dashboard: {dashboard_url})")
        print(f"api metrics: http://127.0.0.1:{api_port}/metrics (the demo's token, as bearer)")
        return dashboard_url, token, admin

    def follow_run(self, stack: _Stack) -> Progress:
        """Start the org's full run as every run starts, and follow it to its summary."""
        from loyalty_worker.celery_app import app  # configured by the environment set above

        org_id = stack.org_id
        run_id = new_run_id(org_id)
        self.run = (org_id, run_id)
        tracker = RunTracker(stack.client)
        enqueue_org_run(org_id, run_id, runs=tracker, enqueuer=TaskPublisher(app))
        print(f"run {run_id}: org {org_id}", flush=True)
        progress = watch_run(tracker, run_id)
        if progress.summary is None:
            print(f"run {run_id} ended {progress.status}: {progress.error}", file=sys.stderr)
        else:
            print(format_summary(progress.summary))
        return progress

    def stop(self) -> None:
        """Stop everything: the workers first (each finishes or gives back its tasks), then the
        run they leave, then the services they used."""
        devstack.stopping()  # a signal now (Ctrl-C twice) hurries this, cannot cut it short
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        devstack.stop_all(self.workers, out=sys.stderr, label="demo: ", timeout_s=WORKER_STOP_S)
        if self.client is not None:
            _release(self.client, self.run, self.stopped_by)
        devstack.stop_all(self.services, out=sys.stderr, label="demo: ")
        if self.auth_emulator is not None:
            self.auth_emulator.stop()  # stopped with the services: its directory goes now
        if self.emulator is not None:
            if self.emulator.running():
                devstack.say("demo: stopping firestore emulator")
            self.emulator.stop()


def _release(client: redis.Redis, run: tuple[str, str] | None, reason: str) -> None:
    """Close the demo's run if it is still open, and give the database back."""
    try:
        if run is not None:
            done = close_run(RunTracker(client), *run, reason=reason)
            if done:
                devstack.say(f"demo: {done}")
        client.hset(OWNER_KEY, "pid", "")
    except redis.RedisError as exc:
        devstack.say(f"demo: could not close the run in Redis: {exc}")
    finally:
        client.close()
