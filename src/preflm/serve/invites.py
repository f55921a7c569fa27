"""Single-use, expiring invite links and the cookie sessions they open (web pages only).

An invite token and a session token are 256-bit random strings; the database keeps only their SHA-256,
as it does for API keys. Redeeming an invite marks it used and opens a session in one transaction, so a
link works once even when it is clicked twice at the same moment.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from preflm.serve import models, store
from preflm.serve.auth import hash_key
from preflm.serve.db import read_transaction, write_transaction

SESSION_HOURS = 24 * 30


class InviteError(store.StoreError):
    """The link cannot be used; ``reason`` is one of unknown, used, expired (the page says which)."""

    status = 410

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Session:
    user_id: str | None
    study_id: str | None
    is_admin: bool


def create_invite(engine: Engine, user_id: str | None = None, expires_hours: float = 72.0,
                  study_id: str | None = None) -> tuple[str, str]:
    """(user id, invite token): the user is created when missing; the token is shown once."""
    if expires_hours <= 0:
        raise store.StoreError(f"expires_hours must be positive, got {expires_hours}")
    with read_transaction(engine) as conn:
        exists = user_id is not None and conn.execute(select(models.users.c.id).where(models.users.c.id == user_id)).first()
    if not exists:
        user_id, _ = store.create_user(engine, user_id)
    token = secrets.token_urlsafe(32)
    with write_transaction(engine) as conn:
        conn.execute(insert(models.invites).values(
            token_hash=hash_key(token), user_id=user_id, study_id=study_id, expires_at=time.time() + expires_hours * 3600,
        ))
    return user_id, token


def invite_status(engine: Engine, token: str) -> None:
    """Raise :class:`InviteError` when the link is unknown, used or expired."""
    with read_transaction(engine) as conn:
        _check(conn.execute(select(models.invites).where(models.invites.c.token_hash == hash_key(token))).first())


def _check(row) -> None:
    if row is None:
        raise InviteError("unknown", "This invite link is not valid. Check that you copied all of it, or ask for a new one.")
    if row.used_at is not None:
        raise InviteError("used", "This invite link was already used. Open the page in the browser where you used it, "
                                  "or ask for a new link.")
    if row.expires_at < time.time():
        raise InviteError("expired", "This invite link has expired. Ask the person who sent it for a new one.")


def redeem_invite(engine: Engine, token: str) -> tuple[str, Session]:
    """Use the invite once: (session token for the cookie, session)."""
    session_token = secrets.token_urlsafe(32)
    i = models.invites.c
    with write_transaction(engine) as conn:
        row = conn.execute(select(models.invites).where(i.token_hash == hash_key(token)).with_for_update()).first()
        _check(row)
        conn.execute(update(models.invites).where(i.token_hash == row.token_hash).values(used_at=time.time()))
        conn.execute(insert(models.sessions).values(
            token_hash=hash_key(session_token), user_id=row.user_id, study_id=row.study_id, is_admin=False,
            expires_at=time.time() + SESSION_HOURS * 3600,
        ))
    return session_token, Session(row.user_id, row.study_id, False)


def admin_session(engine: Engine) -> str:
    """A session token for the admin (after the admin key was checked)."""
    token = secrets.token_urlsafe(32)
    with write_transaction(engine) as conn:
        conn.execute(insert(models.sessions).values(token_hash=hash_key(token), is_admin=True,
                                                    expires_at=time.time() + 12 * 3600))
    return token


def lookup_session(engine: Engine, token: str | None) -> Session | None:
    if not token or len(token) > 100:
        return None
    s = models.sessions.c
    with read_transaction(engine) as conn:
        row = conn.execute(select(models.sessions).where(s.token_hash == hash_key(token))).first()
    if row is None or row.expires_at < time.time():
        return None
    return Session(row.user_id, row.study_id, bool(row.is_admin))


def end_session(engine: Engine, token: str) -> None:
    with write_transaction(engine) as conn:
        conn.execute(delete(models.sessions).where(models.sessions.c.token_hash == hash_key(token)))
