"""Onboarding: the next question (bandit rule + stopping rule), answers, the profile."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request, Response

from preflm.serve import metrics, store
from preflm.serve.auth import Principal, principal
from preflm.serve.core import PREFERENCE_LABELS
from preflm.serve.db import run_db
from preflm.serve.routers.common import UserPath, engine, errors, service, settings
from preflm.serve.schemas import AnswerIn, AnswerOut, ProfileOut, Question

router = APIRouter(prefix="/v1/users/{user_id}", tags=["onboarding"])


@router.post("/questions/next", response_model=Question, responses=errors(403, 404))
async def next_question(request: Request, user_id: str = UserPath, who: Principal = Depends(principal)) -> Question:
    """The most informative unanswered question for this user, or ``done`` once the profile is confident."""
    who.require_access(user_id)
    svc, db = service(request), engine(request)
    profile, answered = await run_db(db, store.load_profile, db, svc, user_id, True, who.row)
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
    who: Principal = Depends(principal),
) -> AnswerOut:
    """Store an answer; acknowledged only after it is committed together with the refit profile."""
    who.require_access(user_id)
    db = engine(request)
    result = await run_db(db, store.record_answer, db, service(request), user_id, body.question_id,
                          PREFERENCE_LABELS[body.preference], idempotency_key, settings(request).max_answers)
    if result.replayed:
        response.status_code = 200
    else:
        metrics.ANSWERS.inc()
    return AnswerOut(**vars(result))


@router.get("/profile", response_model=ProfileOut, responses=errors(403, 404))
async def profile(request: Request, user_id: str = UserPath, who: Principal = Depends(principal)) -> ProfileOut:
    """The user's weights, their covariance, answer count and confidence, and the model they belong to."""
    who.require_access(user_id)
    svc, db = service(request), engine(request)
    prof, _ = await run_db(db, store.load_profile, db, svc, user_id, False, who.row)
    return ProfileOut(
        user_id=user_id, model_id=svc.model_id, weights=prof.weights.tolist(), covariance=prof.covariance.tolist(),
        answers=prof.n_answers, confidence=prof.confidence, done=svc.done(prof, prof.n_answers),
    )
