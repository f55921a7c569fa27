"""Personalized rewards of candidate responses."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request

from preflm.serve import store
from preflm.serve.auth import Caller, Principal, caller
from preflm.serve.db import read_transaction, run_db
from preflm.serve.routers.common import engine, errors, service
from preflm.serve.schemas import ScoreIn, ScoreOut

router = APIRouter(tags=["scoring"])


def target_user(who: Principal, named: str | None) -> str:
    """Whose reward: the caller; an admin must name a user; a user may name only themself."""
    if named is None:
        if who.is_admin:
            raise HTTPException(400, "the admin key has no profile of its own: name the user (user_id / user)")
        return who.user_id
    who.require_access(named)
    return named


@router.post("/v1/score", response_model=ScoreOut, responses=errors(400, 403, 404))
async def score(request: Request, body: ScoreIn, who: Caller = Depends(caller)) -> ScoreOut:
    """r_u = lambda_u . phi(prompt, response) for each response, and the index of the best."""
    svc, db = service(request), engine(request)
    profile = await run_db(db, _profile_of, db, svc, who, body.user_id)
    phi = await svc.base_rewards_async([body.prompt] * len(body.responses), body.responses)
    rewards = phi @ profile.weights
    return ScoreOut(rewards=rewards.tolist(), best=int(np.argmax(rewards)))


def _profile_of(db, svc, key: Caller, named: str | None):
    """Key lookup, permission and the target's profile on one connection (the caller's own profile is on
    the row the key lookup read: one query)."""
    with read_transaction(db) as conn:
        who = key.principal(conn)
        return store.profile_on(conn, svc, target_user(who, named), False, who.row)[0]
