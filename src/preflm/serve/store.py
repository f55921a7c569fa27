"""Users, answers and profiles in the database; shared by the HTTP routers and ``preflm users``.

``record_answer`` (``answer_on`` inside a transaction the caller opened) is the one write path of
onboarding: it locks the user (row lock, or SQLite's write lock), stores the answer, refits the profile
from every stored answer and commits, all in one transaction, so concurrent answers of one user are
never lost and a replayed idempotency key is stored once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from preflm.serve import models
from preflm.serve.auth import hash_key, new_key, valid_user_id
from preflm.serve.core import LABEL_NAMES, PreferenceService, Profile
from preflm.serve.db import read_transaction, write_transaction


# Statements built once: building a SQLAlchemy statement costs more than executing a cached one.
_USER_BY_ID = select(models.users).where(models.users.c.id == bindparam("user_id"))
_USER_BY_ID_LOCKED = _USER_BY_ID.with_for_update()
_ANSWERS = (select(models.answers.c.question_id, models.answers.c.preference, models.answers.c.idempotency_key)
            .where(models.answers.c.user_id == bindparam("user_id")).order_by(models.answers.c.id))
_INSERT_ANSWER = insert(models.answers)
_UPDATE_PROFILE = update(models.users).where(models.users.c.id == bindparam("user_id")).values(
    model_id=bindparam("new_model_id"), weights=bindparam("new_weights"), covariance=bindparam("new_covariance"),
    n_answers=bindparam("new_n_answers"), confidence=bindparam("new_confidence"),
)


class StoreError(Exception):
    """An error the caller caused; ``status`` is its HTTP status."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


def create_user(engine: Engine, user_id: str | None = None) -> tuple[str, str]:
    """A new user and their key (the only time the plain key exists)."""
    import uuid

    if user_id is not None and not valid_user_id(user_id):
        raise StoreError(f"invalid user id {user_id!r}: use letters, digits and _.@- (at most 64)")
    user_id = user_id or uuid.uuid4().hex
    key = new_key()
    try:
        with write_transaction(engine) as conn:
            conn.execute(insert(models.users).values(id=user_id, key_hash=hash_key(key)))
    except IntegrityError:
        raise Conflict(f"user {user_id!r} already exists") from None
    return user_id, key


def list_users(engine: Engine) -> list[dict]:
    u = models.users.c
    with read_transaction(engine) as conn:
        rows = conn.execute(select(u.id, u.created_at, u.n_answers, u.confidence).order_by(u.created_at, u.id)).all()
    return [dict(row._mapping) for row in rows]


def delete_user(engine: Engine, user_id: str) -> None:
    """Remove the user, their answers and their profile."""
    with write_transaction(engine) as conn:
        for table in (models.answers, models.invites, models.sessions, models.participants, models.judgments):
            conn.execute(delete(table).where(table.c.user_id == user_id))
        if conn.execute(delete(models.users).where(models.users.c.id == user_id)).rowcount == 0:
            raise NotFound(f"no user {user_id!r}")


def _stored_profile(row, service: PreferenceService) -> Profile | None:
    """The profile on the user row, or None when it is missing or was fit by another model."""
    if row.weights is None or row.model_id != service.model_id:
        return None
    return Profile(np.asarray(json.loads(row.weights)), np.asarray(json.loads(row.covariance)), row.n_answers, row.confidence)


def _user_row(conn: Connection, user_id: str, lock: bool = False):
    row = conn.execute(_USER_BY_ID_LOCKED if lock else _USER_BY_ID, {"user_id": user_id}).first()
    if row is None:
        raise NotFound(f"no user {user_id!r}")
    return row


def load_profile(engine: Engine, service: PreferenceService, user_id: str, with_answers: bool = False):
    """(profile, answered question ids or None); refit on the fly if the stored one is stale."""
    with read_transaction(engine) as conn:
        return profile_on(conn, service, user_id, with_answers)


def profile_on(conn: Connection, service: PreferenceService, user_id: str, with_answers: bool = False, row=None,
               answers: list | None = None):
    """:func:`load_profile` on an open connection. ``row`` (and ``answers``, rows with ``question_id`` and
    ``preference``): the user's row (and answers) when the caller already read them (the key lookup reads
    the caller's), which saves reading them again; used only when it is that user's row."""
    if row is None or row.id != user_id:
        row, answers = _user_row(conn, user_id), None
    profile = _stored_profile(row, service)
    answered = None
    if profile is None or with_answers:
        if answers is None:
            answers = conn.execute(_ANSWERS, {"user_id": user_id}).all()
        answered, labels = [r.question_id for r in answers], [r.preference for r in answers]
    if profile is None:
        profile = service.fit(answered, labels)
    return profile, answered


def profiles_for(engine: Engine, service: PreferenceService, user_ids: list[str]) -> dict[str, np.ndarray]:
    """Weights of several users (one query); NotFound names the first unknown one."""
    u = models.users.c
    wanted = sorted(set(user_ids))
    invalid = [w for w in wanted if not valid_user_id(w)]
    if invalid:
        raise NotFound(f"no user {invalid[0][:80]!r}")
    with read_transaction(engine) as conn:
        rows = {r.id: r for r in conn.execute(select(models.users).where(u.id.in_(wanted))).all()}
    missing = [w for w in wanted if w not in rows]
    if missing:
        raise NotFound(f"no user {missing[0]!r}")
    weights = {}
    for user_id, row in rows.items():
        profile = _stored_profile(row, service)
        weights[user_id] = profile.weights if profile is not None else load_profile(engine, service, user_id)[0].weights
    return weights


@dataclass
class AnswerResult:
    question_id: int
    preference: str
    answers: int
    confidence: float
    done: bool
    replayed: bool


def check_question(service: PreferenceService, question_id: int) -> None:
    """404 for a question id outside the service's question set."""
    if not 0 <= question_id < len(service.questions):
        raise NotFound(f"no question {question_id}: the question set has {len(service.questions)} (ids 0..{len(service.questions) - 1})")


def record_answer(
    engine: Engine, service: PreferenceService, user_id: str, question_id: int, label: float,
    idempotency_key: str | None, max_answers: int, budget: int | None = None,
) -> AnswerResult:
    """Store one answer and refit the profile, atomically; a known idempotency key replays the first result."""
    check_question(service, question_id)
    with write_transaction(engine) as conn:
        return answer_on(conn, service, user_id, question_id, label, idempotency_key, max_answers, budget)


def answer_on(
    conn: Connection, service: PreferenceService, user_id: str, question_id: int, label: float,
    idempotency_key: str | None, max_answers: int, budget: int | None = None, locked_row=None,
) -> AnswerResult:
    """:func:`record_answer` in an open write transaction (committed by the caller, which acknowledges
    only after that). ``locked_row``: the user's row when the caller already read it ``FOR UPDATE`` in
    this transaction; otherwise it is read and locked here."""
    check_question(service, question_id)
    row = locked_row if locked_row is not None and locked_row.id == user_id else _user_row(conn, user_id, lock=True)
    stored = _stored_profile(row, service)
    rows = conn.execute(_ANSWERS, {"user_id": user_id}).all()
    ids, labels = [r.question_id for r in rows], [r.preference for r in rows]
    earlier = next((r for r in rows if idempotency_key is not None and r.idempotency_key == idempotency_key), None)
    if earlier is not None:
        if earlier.question_id != question_id or earlier.preference != label:
            raise Conflict("this Idempotency-Key was already used for a different answer")
        profile = service.fit(ids, labels)
        return AnswerResult(question_id, LABEL_NAMES[label], len(ids), profile.confidence,
                            service.done(profile, len(ids), budget), True)
    if question_id in ids:
        raise Conflict(f"question {question_id} was already answered by this user")
    if len(ids) >= max_answers:
        raise Conflict(f"this user already gave the most answers the server keeps ({max_answers})")
    conn.execute(_INSERT_ANSWER, {
        "user_id": user_id, "question_id": question_id, "preference": label, "idempotency_key": idempotency_key,
    })
    ids, labels = ids + [question_id], labels + [label]
    # Newton starts from the stored weights (the MAP of all answers but this one): fewer steps, same optimum.
    profile = service.fit(ids, labels, init=None if stored is None else stored.weights)
    conn.execute(_UPDATE_PROFILE, {
        "user_id": user_id, "new_model_id": service.model_id, "new_weights": json.dumps(profile.weights.tolist()),
        "new_covariance": json.dumps(profile.covariance.tolist()), "new_n_answers": len(ids),
        "new_confidence": profile.confidence,
    })
    return AnswerResult(question_id, LABEL_NAMES[label], len(ids), profile.confidence,
                        service.done(profile, len(ids), budget), False)


def count_answers(engine: Engine, user_id: str | None = None) -> int:
    query = select(func.count()).select_from(models.answers)
    if user_id is not None:
        query = query.where(models.answers.c.user_id == user_id)
    with read_transaction(engine) as conn:
        return int(conn.execute(query).scalar())


def check_question_set(engine: Engine, question_hash: str) -> None:
    """Refuse a question set different from the one stored answers refer to (ids would mean other questions)."""
    m = models.service_meta.c
    with write_transaction(engine) as conn:
        stored = conn.execute(select(m.value).where(m.key == "question_set")).scalar()
        if stored is None:
            conn.execute(insert(models.service_meta).values(key="question_set", value=question_hash))
            return
        if stored == question_hash:
            return
        has_answers = conn.execute(select(func.count()).select_from(models.answers)).scalar()
        if has_answers:
            raise ValueError(
                f"this database holds answers to another question set (hash {stored}, this one {question_hash}): "
                "serve the same --questions file, or use a new --db"
            )
        conn.execute(update(models.service_meta).where(m.key == "question_set").values(value=question_hash))
