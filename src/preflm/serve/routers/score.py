"""Personalized rewards of candidate responses."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request

from preflm.serve import store
from preflm.serve.db import run_db
from preflm.serve.auth import Principal, principal
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
async def score(request: Request, body: ScoreIn, who: Principal = Depends(principal)) -> ScoreOut:
    """r_u = lambda_u . phi(prompt, response) for each response, and the index of the best."""
    user_id = target_user(who, body.user_id)
    svc, db = service(request), engine(request)
    profile, _ = await run_db(db, store.load_profile, db, svc, user_id, False, who.row)
    phi = await svc.base_rewards_async([body.prompt] * len(body.responses), body.responses)
    rewards = phi @ profile.weights
    return ScoreOut(rewards=rewards.tolist(), best=int(np.argmax(rewards)))
