"""OpenRLHF remote reward model: ``POST /get_reward`` with ``query`` (prompt + response) per item."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request

from preflm.serve import store
from preflm.serve.auth import Principal, principal
from preflm.serve.routers.common import engine, errors, service
from preflm.serve.schemas import RewardIn, RewardOut

router = APIRouter(tags=["scoring"])


def _same_length(name: str, values: list | None, n: int) -> list:
    if values is None:
        return [None] * n
    if len(values) != n:
        raise HTTPException(400, f"{name} has {len(values)} items but query has {n}")
    return values


@router.post("/get_reward", response_model=RewardOut, responses=errors(400, 403, 404))
def get_reward(request: Request, body: RewardIn, who: Principal = Depends(principal)) -> RewardOut:
    """Each item's reward for its user (from ``user_ids``, else ``labels``, else the caller)."""
    n = len(body.query)
    prompts = [p or "" for p in _same_length("prompts", body.prompts, n)]
    named = [u if u is not None else label for u, label in
             zip(_same_length("user_ids", body.user_ids, n), _same_length("labels", body.labels, n))]
    if who.is_admin and any(u is None for u in named):
        raise HTTPException(400, "the admin key has no profile of its own: give user_ids (or labels) for every item")
    users = [u if u is not None else who.user_id for u in named]
    for user_id in dict.fromkeys(users):
        who.require_access(user_id)
    responses = [q[len(p):] if p and q.startswith(p) else q for q, p in zip(body.query, prompts)]
    svc = service(request)
    weights = store.profiles_for(engine(request), svc, users)
    item_weights = np.stack([weights[u] for u in users])
    phi = svc.base_rewards(prompts, responses)
    rewards = np.einsum("nj,nj->n", phi, item_weights).tolist()
    return RewardOut(rewards=rewards, scores=rewards)
