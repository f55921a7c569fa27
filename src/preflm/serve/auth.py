"""Bearer keys: one admin key from the environment, one key per user stored as its SHA-256.

User keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed: guessing
a key or inverting SHA-256 of one is infeasible either way); the plain key is shown once, when the user
is created. Every request looks its key up in the database (no cache), so a deleted user's key stops
working at once in every worker. The lookup reads the caller's whole user row, which the routes reuse
instead of reading it again. Permission is checked before any lookup of the target user, so a user key
cannot even learn whether another user exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select

from preflm.serve import models
from preflm.serve.db import read_transaction, run_db

KEY_PREFIX = "pk_"
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_USER_ID = re.compile(USER_ID_PATTERN)

_USER_BY_KEY = select(models.users).where(models.users.c.key_hash == bindparam("key_hash"))

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`: the admin key or a user's key")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def valid_user_id(user_id: str) -> bool:
    return bool(_USER_ID.match(user_id))


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or one user (with their user row as read by the key lookup)."""

    user_id: str | None
    is_admin: bool
    row: object | None = field(default=None, compare=False, repr=False)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise HTTPException(403, "this endpoint needs the admin key")

    def require_access(self, user_id: str) -> None:
        """The admin may act on any user, a user only on themself."""
        if not self.is_admin and self.user_id != user_id:
            raise HTTPException(403, "a user key gives access to its own user only")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _user_by_key(engine, key_hash: str):
    with read_transaction(engine) as conn:
        return conn.execute(_USER_BY_KEY, {"key_hash": key_hash}).first()


async def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """The caller behind ``Authorization: Bearer <key>``; 401 when missing or unknown."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing API key: send `Authorization: Bearer <key>`")
    key = credentials.credentials
    admin_key = request.app.state.settings.admin_key
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(None, True)
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        raise _unauthorized("invalid API key")
    row = await run_db(request.app.state.engine, _user_by_key, request.app.state.engine, hash_key(key))
    if row is None:
        raise _unauthorized("invalid API key")
    return Principal(row.id, False, row)
