"""Onboarding: the next question (bandit rule + stopping rule), answers, the profile.

Each route's database work (key lookup, permission check, then the user's data) is one function run by
one :func:`run_db` call. On SQLite (one writer at a time) an answer checks the key (401), permission (403)
and question id (404) with a plain read inline before it queues for the writer thread, so refusals never
wait for the write lock; on a server the write transaction does those checks itself (a refusal locks no
other user's row), in one thread hop.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request, Response

from preflm.serve import metrics, store
from preflm.serve.auth import Caller, caller
from preflm.serve.core import PREFERENCE_LABELS
from preflm.serve.db import is_sqlite, read_transaction, run_db, write_transaction
from preflm.serve.routers.common import UserPath, engine, errors, service, settings
from preflm.serve.schemas import AnswerIn, AnswerOut, ProfileOut, Question

router = APIRouter(prefix="/v1/users/{user_id}", tags=["onboarding"])


@router.post("/questions/next", response_model=Question, responses=errors(403, 404))
async def next_question(request: Request, user_id: str = UserPath, who: Caller = Depends(caller)) -> Question:
    """The most informative unanswered question for this user, or ``done`` once the profile is confident."""
    svc, db = service(request), engine(request)
    profile, answered = await run_db(db, _profile, db, svc, who, user_id, True)
    index = svc.next_question(profile, answered)
    if index is None:
        return Question(done=True, confidence=profile.confidence, answers=len(answered))
    prompt, response_a, response_b = svc.question_texts[index]
    return Question(
        done=False, question_id=index, prompt=prompt, response_a=response_a,
        response_b=response_b, confidence=profile.confidence, answers=len(answered),
    )


@router.post("/answers", status_code=201, response_model=AnswerOut, responses={200: {"model": AnswerOut, "description": "A replay of an idempotency key already stored"}, **errors(403, 404, 409)})
async def answer(
    request: Request,
    response: Response,
    body: AnswerIn,
    user_id: str = UserPath,
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", max_length=200, pattern=r"^[!-~]+$",
        description="Retries with the same key store the answer once (printable ASCII, at most 200).",
    ),
    who: Caller = Depends(caller),
) -> AnswerOut:
    """Store an answer; acknowledged only after it is committed together with the refit profile."""
    db = engine(request)
    args = (db, service(request), who, user_id, body.question_id, PREFERENCE_LABELS[body.preference], idempotency_key,
            settings(request).max_answers)
    if is_sqlite(db):
        # One writer at a time: refuse bad keys and unknown questions before queueing for the write lock.
        await run_db(db, _check_access, db, who, user_id)
        store.check_question(service(request), body.question_id)
    result = await run_db(db, _answer, *args, write=True)
    if result.replayed:
        response.status_code = 200
    else:
        metrics.ANSWERS.inc()
    return AnswerOut(**vars(result))


@router.get("/profile", response_model=ProfileOut, responses=errors(403, 404))
async def profile(request: Request, user_id: str = UserPath, who: Caller = Depends(caller)) -> ProfileOut:
    """The user's weights, their covariance, answer count and confidence, and the model they belong to."""
    svc, db = service(request), engine(request)
    prof, _ = await run_db(db, _profile, db, svc, who, user_id, False)
    return ProfileOut(
        user_id=user_id, model_id=svc.model_id, weights=prof.weights.tolist(), covariance=prof.covariance.tolist(),
        answers=prof.n_answers, confidence=prof.confidence, done=svc.done(prof, prof.n_answers),
    )


def _profile(db, svc, key: Caller, user_id: str, with_answers: bool):
    """Key lookup (401; for a user key it reads their answers in the same query), permission (403, before
    anything about another ``user_id`` is read), then the profile."""
    with read_transaction(db) as conn:
        who = key.principal(conn, with_answers=with_answers)
        who.require_access(user_id)
        return store.profile_on(conn, svc, user_id, with_answers, who.row, who.answers)


def _check_access(db, key: Caller, user_id: str) -> None:
    """Key lookup (401) and permission (403) on a read: refusals take no write lock."""
    if key.is_admin:
        return
    with read_transaction(db) as conn:
        key.principal(conn).require_access(user_id)


def _answer(db, svc, key: Caller, user_id: str, question_id: int, label: float, idempotency_key, max_answers: int):
    """Key lookup (401) and permission (403) again inside the answer's write transaction (a key deleted
    since the check is refused); a user answering for themself has their row locked by the lookup itself."""
    with write_transaction(db) as conn:
        who = key.principal(conn, lock=True)
        who.require_access(user_id)
        return store.answer_on(conn, svc, user_id, question_id, label, idempotency_key, max_answers,
                               locked_row=who.row)
