"""People on the dashboard: sessions that end, roles that decide, an audit that names who did
it, limits on every door, cookies decided by the public URL, CSRF on every cookie change."""

from __future__ import annotations

import base64
import json
import logging
import warnings
from collections.abc import Iterator
from typing import cast

import fakeredis
import pytest

from loyalty_worker.adapters.sessions import SESSION, RedisSessionStore
from loyalty_worker.api.app import create_app
from loyalty_worker.api.settings import ApiSettings, get_api_settings
from loyalty_worker.cli import main
from loyalty_worker.config import get_settings
from loyalty_worker.domain.access import Role
from loyalty_worker.ports.people import SignInRefused
from tests.fake_people import member
from tests.unit.dashboard_app import BASE, ORG1_TOKEN, Dash, bearer, csrf_of
from tests.unit.test_dashboard_api import _ana_reyes_without_an_account

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from fastapi.testclient import TestClient


# --- Sessions ---------------------------------------------------------------------------------


def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(dash: Dash) -> None:
    csrf = dash.sign_in()
    copied = dict(dash.client.cookies)
    answer = dash.client.post("/dashboard/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    thief = TestClient(dash.client.app, base_url=BASE, cookies=copied)
    overview = thief.get("/dashboard/orgs/org-1", follow_redirects=False)
    assert overview.status_code == 303 and overview.headers["location"] == "/dashboard/sign-in"
    dry = thief.post(
        "/dashboard/orgs/org-1/runs", data={"kind": "dry", "csrf": csrf}, follow_redirects=False
    )
    assert dry.status_code == 303 and dry.headers["location"] == "/dashboard/sign-in"
    assert dash.enqueuer.org_runs == []
    csv = thief.get("/dashboard/orgs/org-1/no-account/enrollment.csv", follow_redirects=False)
    assert csv.status_code == 303
    assert thief.get("/api/loyalty/orgs/org-1/overview").status_code == 401


def test_sign_out_needs_the_sessions_csrf_token(dash: Dash) -> None:
    dash.sign_in()
    refused = dash.client.post("/dashboard/sign-out", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert dash.client.get("/dashboard/orgs/org-1").status_code == 200


def test_the_session_cookie_holds_a_random_id_and_nothing_of_the_person(
    dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dash.sign_in(uid="uid-rita")
    value = dash.client.cookies["lw_session"]
    assert len(value) >= 43 and "rita" not in value
    assert value not in caplog.text
    assert not any(token in caplog.text for token in dash.accounts.tokens)


def test_sessions_end_when_idle_and_at_their_absolute_end() -> None:
    client = fakeredis.FakeRedis()
    store = RedisSessionStore(client, idle_s=1800, max_s=12 * 3600)
    session_id, record = store.open("uid-1", "a@example.com", now=1000.0)
    assert 1799 <= ttl_of(client, SESSION + record.key) <= 1800  # the idle time
    assert store.use(session_id, now=1000.0 + 11 * 3600) is not None  # used: idle restarts
    ttl_near_the_end = ttl_of(client, SESSION + record.key)
    assert ttl_near_the_end <= 3600  # never past opened + 12 h
    assert store.use(session_id, now=1000.0 + 12 * 3600 + 1) is None  # the absolute end
    again, record = store.open("uid-1", "a@example.com", now=1000.0)
    client.delete(SESSION + record.key)  # what Redis does once the idle time passed unused
    assert store.use(again, now=1000.0 + 60) is None


def ttl_of(client: fakeredis.FakeRedis, key: str) -> int:
    return int(cast(int, client.ttl(key)))


def test_an_admin_can_list_and_end_a_persons_sessions() -> None:
    store = RedisSessionStore(fakeredis.FakeRedis(), idle_s=1800, max_s=43200)
    first, _ = store.open("uid-1", "a@example.com", now=10.0)
    second, _ = store.open("uid-1", "a@example.com", now=20.0)
    other, _ = store.open("uid-2", "b@example.com", now=30.0)
    assert [s.created_at for s in store.sessions_of("uid-1")] == [10.0, 20.0]
    assert store.end_sessions_of("uid-1") == 2
    assert store.use(first, now=40.0) is None and store.use(second, now=40.0) is None
    assert store.use(other, now=40.0) is not None


# --- Sign-in ----------------------------------------------------------------------------------


def test_sign_in_refuses_a_refused_token_a_person_with_no_org_and_a_missing_csrf(
    dash: Dash,
) -> None:
    account = dash.accounts.add("nobody@example.com", uid="uid-nobody")
    form = dash.client.get("/dashboard/sign-in")
    no_org = dash.client.post(
        "/dashboard/sign-in",
        data={"idToken": dash.accounts.token_for(account), "csrf": csrf_of(form.text)},
    )
    assert no_org.status_code == 403 and "holds no role in any dispensary" in no_org.text
    dash.accounts.error = SignInRefused("your sign-in expired; sign in again")
    form = dash.client.get("/dashboard/sign-in")
    expired = dash.client.post(
        "/dashboard/sign-in", data={"idToken": "expired", "csrf": csrf_of(form.text)}
    )
    assert expired.status_code == 401 and "your sign-in expired" in expired.text
    dash.accounts.error = None
    no_csrf = dash.client.post(
        "/dashboard/sign-in", data={"idToken": dash.accounts.token_for(account)}
    )
    assert no_csrf.status_code == 403
    assert "lw_session" not in dash.client.cookies


def test_a_sign_in_form_posts_once(dash: Dash) -> None:
    account = dash.accounts.add("ana@example.com", uid="uid-ana")
    dash.members.put_member(member("org-1", account, Role.VIEWER))
    form = dash.client.get("/dashboard/sign-in")
    data = {"idToken": dash.accounts.token_for(account), "csrf": csrf_of(form.text)}
    assert (
        dash.client.post("/dashboard/sign-in", data=data, follow_redirects=False).status_code == 303
    )
    replay = TestClient(dash.client.app, base_url=BASE, cookies={"lw_signin": "x" * 43})
    assert replay.post("/dashboard/sign-in", data=data).status_code == 403


def test_the_audit_names_the_signed_in_person_never_a_typed_name(
    dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    account = dash.accounts.add("alice@example.com", uid="uid-alice")
    dash.members.put_member(member("org-1", account, Role.REVIEWER))
    form = dash.client.get("/dashboard/sign-in")
    dash.client.post(
        "/dashboard/sign-in",
        data={
            "idToken": dash.accounts.token_for(account),
            "csrf": csrf_of(form.text),
            "name": "sync\nINFO forged line",
        },
    )
    csrf = csrf_of(dash.client.get("/dashboard/orgs/org-1/discrepancies").text)
    answer = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review",
        data={"to": "acknowledged", "csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert dash.dash.audit[("org-1", 2)][-1].by == "alice@example.com (uid-alice)"
    assert "forged" not in caplog.text


def test_an_api_token_does_not_open_the_dashboard(dash: Dash) -> None:
    page = dash.client.get(
        "/dashboard/orgs/org-1", headers=bearer(ORG1_TOKEN), follow_redirects=False
    )
    assert page.status_code == 303 and page.headers["location"] == "/dashboard/sign-in"


# --- Roles ------------------------------------------------------------------------------------


def test_a_viewer_reads_with_contacts_masked_and_cannot_review_trigger_or_export(
    dash: Dash,
) -> None:
    csrf = dash.sign_in(Role.VIEWER)
    overview = dash.client.get("/dashboard/orgs/org-1").text
    assert 'id="run-full"' not in overview and 'id="nav-people"' not in overview
    listed = dash.client.get("/dashboard/orgs/org-1/discrepancies").text
    assert 'class="ack"' not in listed and 'id="bulk"' not in listed and "Resolve<" not in listed
    review = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review", data={"to": "acknowledged", "csrf": csrf}
    )
    assert review.status_code == 403 and "(viewer) may not review" in review.text
    json_review = dash.client.post(
        "/api/loyalty/orgs/org-1/discrepancies/2/review",
        json={"to": "acknowledged"},
        headers={"X-CSRF-Token": csrf},
    )
    assert json_review.status_code == 403
    run = dash.client.post("/dashboard/orgs/org-1/runs", data={"kind": "full", "csrf": csrf})
    assert run.status_code == 403 and dash.enqueuer.org_runs == []
    sync = dash.client.post("/dashboard/orgs/org-1/customers/2/sync", data={"csrf": csrf})
    assert sync.status_code == 403 and dash.enqueuer.customer_syncs == []
    csv = dash.client.get("/dashboard/orgs/org-1/no-account/enrollment.csv")
    assert csv.status_code == 403
    assert dash.client.get("/api/loyalty/orgs/org-1/enrollment").status_code == 403
    _ana_reyes_without_an_account(dash)
    enrollment = dash.client.get("/dashboard/orgs/org-1/no-account").text
    assert 'id="enrollment-csv"' not in enrollment
    assert "***-***-6718" in enrollment and "a***@example.com" in enrollment
    assert "708-6718" not in enrollment and "ana@example.com" not in enrollment
    dash.store.contacts["org-1_2"] = {**dash.store.contacts["org-1_5"], "customerId": 2}
    customer = dash.client.get("/dashboard/orgs/org-1/customers/2").text
    assert "***-***-6718" in customer and "tel:" not in customer


def test_a_reviewer_reviews_and_sees_contacts_but_cannot_trigger_or_export(dash: Dash) -> None:
    csrf = dash.sign_in(Role.REVIEWER)
    review = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review",
        data={"to": "acknowledged", "csrf": csrf},
        follow_redirects=False,
    )
    assert review.status_code == 303
    assert dash.client.get("/api/loyalty/orgs/org-1/enrollment").status_code == 200
    run = dash.client.post("/dashboard/orgs/org-1/runs", data={"kind": "dry", "csrf": csrf})
    assert run.status_code == 403
    assert dash.client.get("/dashboard/orgs/org-1/no-account/enrollment.csv").status_code == 403
    assert 'id="run-full"' not in dash.client.get("/dashboard/orgs/org-1").text


def test_an_admin_triggers_exports_and_sees_the_people_link(dash: Dash) -> None:
    csrf = dash.sign_in(Role.ADMIN)
    overview = dash.client.get("/dashboard/orgs/org-1").text
    assert 'id="run-full"' in overview and 'id="nav-people"' in overview
    run = dash.client.post(
        "/dashboard/orgs/org-1/runs", data={"kind": "dry", "csrf": csrf}, follow_redirects=False
    )
    assert run.status_code == 303 and dash.enqueuer.org_runs
    assert dash.client.get("/dashboard/orgs/org-1/no-account/enrollment.csv").status_code == 200


def test_a_person_with_roles_in_two_orgs_acts_by_each(dash: Dash) -> None:
    dash.store.settings["org-2"] = {}
    csrf = dash.sign_in(Role.VIEWER, uid="uid-sam", org="org-1")
    account = dash.accounts.add("sam@example.com", uid="uid-sam")
    dash.members.put_member(member("org-2", account, Role.ADMIN))
    home = dash.client.get("/dashboard").text
    assert "org-1" in home and "org-2" in home
    assert (
        dash.client.post(
            "/dashboard/orgs/org-1/runs", data={"kind": "dry", "csrf": csrf}
        ).status_code
        == 403
    )
    assert (
        dash.client.post(
            "/dashboard/orgs/org-2/runs", data={"kind": "dry", "csrf": csrf}, follow_redirects=False
        ).status_code
        == 303
    )


# --- CSRF and tasks ---------------------------------------------------------------------------


def test_a_cookie_never_reaches_the_machine_routes_and_a_twin_change_needs_csrf(
    dash: Dash,
) -> None:
    dash.sign_in()
    sync = dash.client.post("/api/loyalty/sync", json={"orgId": "org-1"})
    assert sync.status_code == 401
    assert dash.enqueuer.org_runs == []
    twin = dash.client.post("/api/loyalty/orgs/org-1/runs", json={"kind": "dry"})
    assert twin.status_code == 403 and dash.enqueuer.org_runs == []


def test_the_customer_page_shows_only_its_orgs_sync_now_result(dash: Dash) -> None:
    csrf = dash.sign_in()
    dash.client.post("/dashboard/orgs/org-1/customers/2/sync", data={"csrf": csrf})
    (own,) = dash.tasks.owners
    assert dash.client.get(f"/dashboard/orgs/org-1/customers/2?task={own}").status_code == 200
    dash.tasks.outcomes["other-org-task"] = {"state": "FAILURE"}
    dash.tasks.owners["other-org-task"] = "org-2"
    page = dash.client.get("/dashboard/orgs/org-1/customers/2?task=other-org-task")
    assert page.status_code == 404
    assert dash.client.get("/api/loyalty/orgs/org-1/tasks/other-org-task").status_code == 404
    never_claimed = dash.client.get("/dashboard/orgs/org-1/customers/2?task=some-task")
    assert never_claimed.status_code == 404


# --- Limits on every door ---------------------------------------------------------------------


def test_on_the_defaults_the_601st_request_and_the_31st_search_get_429(dash: Dash) -> None:
    settings = ApiSettings(tokens={ORG1_TOKEN: ["org-1"]})
    assert settings.rate_limit_per_min == 600 and settings.search_limit_per_min == 30
    dash.sign_in()  # the person's first request: the org's page
    for n in range(30):
        page = dash.client.get(f"/dashboard/orgs/org-1/customers?q=555-01{n:02d}")
        assert page.status_code == 200, n
    search = dash.client.get("/dashboard/orgs/org-1/customers?q=5550199")
    assert search.status_code == 429 and search.headers["content-type"].startswith("text/html")
    assert int(search.headers["retry-after"]) >= 1
    json_search = dash.client.get("/api/loyalty/orgs/org-1/customers?q=5550199")
    assert json_search.status_code == 429 and "retry-after" in json_search.headers
    for _ in range(600 - 1 - 32):
        assert dash.client.get("/api/loyalty/orgs/org-1/overview").status_code == 200
    page = dash.client.get("/dashboard/orgs/org-1")
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert dash.client.get("/api/loyalty/orgs/org-1/overview").status_code == 429
    # Changes count too: a review post and a Sync Now are refused before they run.
    review = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review", data={"to": "acknowledged", "csrf": "-"}
    )
    sync = dash.client.post("/dashboard/orgs/org-1/customers/2/sync", data={"csrf": "-"})
    assert (review.status_code, sync.status_code) == (429, 429)
    assert dash.dash.audit.get(("org-1", 2), []) == [] and dash.enqueuer.customer_syncs == []


def test_metrics_and_the_sign_in_posts_are_limited_too(dash: Dash) -> None:
    app = dash.client.app
    for _ in range(10):
        dash.client.post("/dashboard/sign-in", data={"idToken": "x.y.z", "csrf": "-"})
    eleventh = dash.client.post("/dashboard/sign-in", data={"idToken": "x.y.z", "csrf": "-"})
    assert eleventh.status_code == 429 and eleventh.headers["content-type"].startswith("text/html")
    state = app.state.api  # type: ignore[attr-defined]
    limiter = state.limiter
    for _ in range(600):
        limiter.try_acquire(f"token:{bearer_fingerprint()}")
    assert dash.client.get("/metrics", headers=bearer(ORG1_TOKEN)).status_code == 429


def bearer_fingerprint() -> str:
    from loyalty_worker.api.auth import fingerprint

    return fingerprint(ORG1_TOKEN)


# --- Cookies by the public URL ----------------------------------------------------------------


@pytest.fixture
def https_app(dash: Dash) -> Iterator[TestClient]:
    """The same services behind ``LOYALTY_PUBLIC_URL=https://loyalty.example.com``."""
    app = dash.client.app
    state = app.state.api  # type: ignore[attr-defined]
    served = create_app(
        state.services,
        state.settings,
        app.state.dashboard,  # type: ignore[attr-defined]
        public_url="https://loyalty.example.com",
    )
    with TestClient(served, base_url=BASE) as client:
        yield client


def test_secure_and_host_prefix_follow_the_public_url_never_the_host_header(
    dash: Dash, https_app: TestClient
) -> None:
    account = dash.accounts.add("ana@example.com", uid="uid-ana")
    dash.members.put_member(member("org-1", account, Role.ADMIN))
    form = https_app.get("/dashboard/sign-in", headers={"Host": "127.0.0.1:8000"})
    pre = form.headers["set-cookie"]
    assert pre.startswith("__Host-lw_signin=") and "Secure" in pre and "Path=/" in pre
    form_id = pre.split(";")[0].split("=", 1)[1]
    answer = https_app.post(
        "/dashboard/sign-in",
        headers={"Host": "127.0.0.1:8000", "Cookie": f"__Host-lw_signin={form_id}"},
        data={"idToken": dash.accounts.token_for(account), "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("__Host-lw_session=")
    )
    assert "Secure" in cookie and "HttpOnly" in cookie and "Domain" not in cookie
    plain = dash.client.get("/dashboard/sign-in", headers={"Host": "dash.example.com"})
    assert "Secure" not in plain.headers["set-cookie"]


# --- The People page --------------------------------------------------------------------------


def test_an_admin_grants_changes_revokes_and_ends_a_persons_sessions(dash: Dash) -> None:
    csrf = dash.sign_in(Role.ADMIN)
    bo = dash.accounts.add("bo@example.com", uid="uid-bo")
    unknown = dash.client.post(
        "/dashboard/orgs/org-1/people",
        data={"email": "nobody@example.com", "role": "viewer", "csrf": csrf},
    )
    assert unknown.status_code == 409 and "no Markitbot account has the e-mail" in unknown.text
    granted = dash.client.post(
        "/dashboard/orgs/org-1/people",
        data={"email": " Bo@Example.com ", "role": "viewer", "csrf": csrf},
        follow_redirects=False,
    )
    assert granted.status_code == 303
    assert dash.members.roles_of("uid-bo") == {"org-1": Role.VIEWER}
    listed = dash.client.get("/api/loyalty/orgs/org-1/people").json()
    assert {(p["email"], p["role"]) for p in listed["items"]} == {
        ("rita@example.com", "admin"),
        ("bo@example.com", "viewer"),
    }
    # Bo signs in elsewhere; the admin ends his sessions: his cookie opens nothing after.
    bo_client = TestClient(dash.client.app, base_url=BASE)
    form = bo_client.get("/dashboard/sign-in")
    bo_client.post(
        "/dashboard/sign-in",
        data={"idToken": dash.accounts.token_for(bo), "csrf": csrf_of(form.text)},
    )
    assert bo_client.get("/dashboard/orgs/org-1").status_code == 200
    page = dash.client.get("/dashboard/orgs/org-1/people").text
    assert 'class="end-sessions"' in page and "1 open" in page
    people = dash.client.get("/api/loyalty/orgs/org-1/people").json()["items"]
    (bo_listed,) = [p for p in people if p["email"] == "bo@example.com"]
    assert len(bo_listed["sessions"]) == 1 and bo_listed["sessions"][0]["openedAt"]
    ended = dash.client.post(
        "/dashboard/orgs/org-1/people/sessions/end",
        data={"uid": "uid-bo", "csrf": csrf},
        follow_redirects=False,
    )
    assert ended.status_code == 303
    assert bo_client.get("/dashboard/orgs/org-1", follow_redirects=False).status_code == 303
    revoked = dash.client.post(
        "/dashboard/orgs/org-1/people/revoke",
        data={"email": "bo@example.com", "csrf": csrf},
        follow_redirects=False,
    )
    assert revoked.status_code == 303 and dash.members.roles_of("uid-bo") == {}
    last_admin = dash.client.post(
        "/dashboard/orgs/org-1/people/revoke", data={"email": "rita@example.com", "csrf": csrf}
    )
    assert last_admin.status_code == 409 and "admin" in last_admin.text


def test_only_admins_reach_the_people_page_and_its_json(dash: Dash) -> None:
    csrf = dash.sign_in(Role.REVIEWER)
    assert dash.client.get("/dashboard/orgs/org-1/people").status_code == 403
    assert dash.client.get("/api/loyalty/orgs/org-1/people").status_code == 403
    grant = dash.client.post(
        "/dashboard/orgs/org-1/people",
        data={"email": "rita@example.com", "role": "admin", "csrf": csrf},
    )
    assert grant.status_code == 403 and dash.members.roles_of("uid-rita") == {
        "org-1": Role.REVIEWER
    }
    by_token = dash.client.get("/api/loyalty/orgs/org-1/people", headers=bearer(ORG1_TOKEN))
    assert by_token.status_code == 403


def test_every_change_is_recorded_with_who_did_it_and_shown_to_admins(dash: Dash) -> None:
    csrf = dash.sign_in(Role.ADMIN)
    dash.client.post("/dashboard/orgs/org-1/runs", data={"kind": "dry", "csrf": csrf})
    dash.client.post("/dashboard/orgs/org-1/customers/2/sync", data={"csrf": csrf})
    dash.client.post("/api/loyalty/orgs/org-1/customers/2/sync", headers={"X-CSRF-Token": csrf})
    dash.accounts.add("bo@example.com", uid="uid-bo")
    dash.client.post(
        "/dashboard/orgs/org-1/people",
        data={"email": "bo@example.com", "role": "reviewer", "csrf": csrf},
    )
    dash.client.post(
        "/dashboard/orgs/org-1/people/revoke", data={"email": "bo@example.com", "csrf": csrf}
    )
    recorded = [(r["by"], r["action"], r["detail"]) for r in dash.activity.records]
    rita = "rita@example.com (uid-rita)"
    assert recorded == [
        (rita, "run.dry", "org-1-run-1"),
        (rita, "sync_now", "customer 2"),
        (rita, "sync_now", "customer 2"),
        (rita, "people.grant", "bo@example.com as reviewer"),
        (rita, "people.revoke", "bo@example.com"),
    ]
    page = dash.client.get("/dashboard/orgs/org-1/people").text
    assert "Started a dry run" in page and "Granted a role" in page and "Revoked a role" in page


def test_sign_ins_for_one_account_are_limited_whatever_the_address(dash: Dash) -> None:
    account = dash.accounts.add("ana@example.com", uid="uid-ana")
    dash.accounts.error = SignInRefused("that sign-in is not valid")  # a wrong guess, each time
    claimed = "e30." + _claims({"sub": account.uid}) + ".x"
    answers = []
    for n in range(11):  # from eleven addresses, one attempt each
        client = TestClient(dash.client.app, base_url=BASE, client=(f"10.0.0.{n + 1}", 4000))
        form = client.get("/dashboard/sign-in")
        answer = client.post(
            "/dashboard/sign-in", data={"idToken": claimed, "csrf": csrf_of(form.text)}
        )
        answers.append(answer.status_code)
    assert answers == [401] * 10 + [429]


def _claims(claims: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("emulator", "project", "named"),
    [
        ("127.0.0.1:9099", "markitbot-prod", "FIREBASE_AUTH_EMULATOR_HOST is set"),
        (None, "demo-markitbot", "FIREBASE_AUTH_EMULATOR_HOST is unset"),
    ],
)
def test_the_api_refuses_to_start_with_an_emulator_beside_a_real_project(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    emulator: str | None,
    project: str,
    named: str,
) -> None:
    """The Admin SDK takes the Auth emulator's unsigned tokens for any project it is given."""
    if emulator is None:
        monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    else:
        monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", emulator)
    monkeypatch.setenv("LOYALTY_FIREBASE_PROJECT_ID", project)
    monkeypatch.setenv("LOYALTY_API_TOKENS", json.dumps({ORG1_TOKEN: ["org-1"]}))
    get_settings.cache_clear()
    get_api_settings.cache_clear()
    try:
        assert main(["api", "--port", "0"]) == 2
    finally:
        get_settings.cache_clear()
        get_api_settings.cache_clear()
    assert named in capsys.readouterr().err
