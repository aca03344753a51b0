"""Dashboard sessions in Redis, shared by every API process.

A session's id is 32 random bytes that only its cookie holds; Redis keeps the session under the
id's SHA-256 (``loyalty:session:{digest}``: uid, e-mail, CSRF token, opened and last seen), so a
copy of Redis opens no session. Its key expires after the idle time, restarted by each use but
never past the absolute end (``opened + max``). Each person's sessions are indexed in
``loyalty:sessions:{uid}`` (digest → opened), so an admin can list and end them; the index
drops ended ones as it is read.

A sign-in form's pre-session (``loyalty:signin:{digest}``) holds the form's CSRF token for the
form's lifetime, so the sign-in post is tied to the page that showed it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import cast

import redis

from loyalty_worker.ports.people import SessionRecord

SESSION = "loyalty:session:"
PEOPLE = "loyalty:sessions:"
SIGN_IN = "loyalty:signin:"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class RedisSessionStore:
    """``ports.people.SessionStore`` in Redis; ``idle_s`` and ``max_s`` bound every session."""

    def __init__(self, client: redis.Redis, *, idle_s: float, max_s: float) -> None:
        self._redis = client
        self._idle_s = idle_s
        self._max_s = max_s

    def open(self, uid: str, email: str, now: float) -> tuple[str, SessionRecord]:
        session_id = secrets.token_urlsafe(32)
        key = _digest(session_id)
        record = SessionRecord(key, uid, email, secrets.token_urlsafe(24), now, now)
        pipe = self._redis.pipeline()
        pipe.hset(
            SESSION + key,
            mapping={
                "uid": uid,
                "email": email,
                "csrf": record.csrf,
                "created": repr(now),
                "seen": repr(now),
            },
        )
        pipe.expire(SESSION + key, self._ttl(now, now))
        pipe.zadd(PEOPLE + uid, {key: now})
        pipe.expire(PEOPLE + uid, math.ceil(self._max_s))
        pipe.execute()
        return session_id, record

    def use(self, session_id: str, now: float) -> SessionRecord | None:
        if not session_id or len(session_id) > 128:
            return None
        key = _digest(session_id)
        record = self._read(key)
        if record is None:
            return None
        ttl = self._ttl(record.created_at, now)
        if ttl <= 0:
            self._drop(record)
            return None
        pipe = self._redis.pipeline()
        pipe.hset(SESSION + key, "seen", repr(now))
        pipe.expire(SESSION + key, ttl)
        pipe.execute()
        return SessionRecord(key, record.uid, record.email, record.csrf, record.created_at, now)

    def end(self, session_id: str) -> None:
        record = self._read(_digest(session_id))
        if record is not None:
            self._drop(record)

    def sessions_of(self, uid: str) -> list[SessionRecord]:
        found: list[SessionRecord] = []
        members = cast(list[bytes | str], self._redis.zrange(PEOPLE + uid, 0, -1))
        for raw in members:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            record = self._read(key)
            if record is None or record.uid != uid:
                self._redis.zrem(PEOPLE + uid, key)
                continue
            found.append(record)
        return found

    def end_sessions_of(self, uid: str) -> int:
        live = self.sessions_of(uid)
        for record in live:
            self._drop(record)
        return len(live)

    def _ttl(self, created_at: float, now: float) -> int:
        """Seconds the session may live from ``now``: the idle time, up to the absolute end."""
        return math.ceil(min(self._idle_s, created_at + self._max_s - now))

    def _read(self, key: str) -> SessionRecord | None:
        fields = cast(dict[bytes | str, bytes | str], self._redis.hgetall(SESSION + key))
        if not fields:
            return None
        text = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        try:
            return SessionRecord(
                key,
                text["uid"],
                text["email"],
                text["csrf"],
                float(text["created"]),
                float(text["seen"]),
            )
        except (KeyError, ValueError):
            return None

    def _drop(self, record: SessionRecord) -> None:
        pipe = self._redis.pipeline()
        pipe.delete(SESSION + record.key)
        pipe.zrem(PEOPLE + record.uid, record.key)
        pipe.execute()

    # --- The sign-in form's pre-session ---------------------------------------------------------

    def open_sign_in(self, ttl_s: int) -> tuple[str, str]:
        """A sign-in form's pre-session: its id (for its cookie) and the form's CSRF token."""
        form_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        self._redis.set(SIGN_IN + _digest(form_id), csrf, ex=ttl_s)
        return form_id, csrf

    def take_sign_in(self, form_id: str) -> str | None:
        """The CSRF token of a sign-in form's pre-session, which ends here (one post a form)."""
        if not form_id or len(form_id) > 128:
            return None
        value = self._redis.getdel(SIGN_IN + _digest(form_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
