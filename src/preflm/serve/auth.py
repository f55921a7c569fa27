"""Bearer keys: one admin key from the environment, one key per user stored as its SHA-256.

User keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed: guessing
a key or inverting SHA-256 of one is infeasible either way); the plain key is shown once, when the user
is created. Every request looks its key up in the database (no cache), so a deleted user's key stops
working at once in every worker. The lookup reads the caller's whole user row, which the routes reuse
instead of reading it again. Permission is checked before any lookup of the target user, so a user key
cannot even learn whether another user exists.

The hot routes take a :class:`Caller` (the checked header, no database work yet) and look the key up
on the connection of their own database work: one thread hand-off and one connection per request
instead of two. Other routes take a :class:`Principal` (the lookup done by the dependency).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, bindparam, select

from preflm.serve import models
from preflm.serve.db import read_transaction, run_db

KEY_PREFIX = "pk_"
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_USER_ID = re.compile(USER_ID_PATTERN)

_USER_BY_KEY = select(models.users).where(models.users.c.key_hash == bindparam("key_hash"))
_USER_BY_KEY_LOCKED = _USER_BY_KEY.with_for_update()
# The caller's row with their answers in one query (one row per answer; user columns only when none).
_USER_AND_ANSWERS_BY_KEY = (
    select(models.users, models.answers.c.question_id, models.answers.c.preference)
    .select_from(models.users.outerjoin(models.answers, models.answers.c.user_id == models.users.c.id))
    .where(models.users.c.key_hash == bindparam("key_hash"))
    .order_by(models.answers.c.id)
)

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`: the admin key or a user's key")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def valid_user_id(user_id: str) -> bool:
    return bool(_USER_ID.match(user_id))


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or one user (with their user row as read by the key lookup, and their
    answers' rows when the lookup read them too)."""

    user_id: str | None
    is_admin: bool
    row: object | None = field(default=None, compare=False, repr=False)
    answers: list | None = field(default=None, compare=False, repr=False)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise HTTPException(403, "this endpoint needs the admin key")

    def require_access(self, user_id: str) -> None:
        """The admin may act on any user, a user only on themself."""
        if not self.is_admin and self.user_id != user_id:
            raise HTTPException(403, "a user key gives access to its own user only")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class Caller:
    """The bearer key of a request, checked for form (and against the admin key) but not yet looked up."""

    is_admin: bool
    key_hash: str | None = field(default=None, repr=False)

    def principal(self, conn: Connection, lock: bool = False, with_answers: bool = False) -> Principal:
        """Look the key up on ``conn`` (401 when unknown).

        ``lock``: read the caller's row ``FOR UPDATE`` (an answer then needs no second read to lock it when
        the caller answers for themself). ``with_answers``: read the caller's answers in the same query
        (for reads only: a locking read must read answers in a statement after the lock, to see the answers
        of the transaction it waited for).
        """
        if self.is_admin:
            return ADMIN
        params = {"key_hash": self.key_hash}
        if with_answers:
            rows = conn.execute(_USER_AND_ANSWERS_BY_KEY, params).all()
            if not rows:
                raise _unauthorized("invalid API key")
            return Principal(rows[0].id, False, rows[0], [r for r in rows if r.question_id is not None])
        row = conn.execute(_USER_BY_KEY_LOCKED if lock else _USER_BY_KEY, params).first()
        if row is None:
            raise _unauthorized("invalid API key")
        return Principal(row.id, False, row)


ADMIN = Principal(None, True)


async def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """The caller behind ``Authorization: Bearer <key>``; 401 when missing or malformed (looked up later)."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing API key: send `Authorization: Bearer <key>`")
    key = credentials.credentials
    admin_key = request.app.state.settings.admin_key
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Caller(True)
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        raise _unauthorized("invalid API key")
    return Caller(False, hash_key(key))


def _lookup(engine, who: Caller) -> Principal:
    with read_transaction(engine) as conn:
        return who.principal(conn)


async def principal(request: Request, who: Caller = Depends(caller)) -> Principal:
    """The caller with their key looked up; 401 when missing or unknown."""
    if who.is_admin:
        return ADMIN
    engine = request.app.state.engine
    return await run_db(engine, _lookup, engine, who)
