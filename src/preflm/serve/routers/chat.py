"""OpenAI-compatible chat completions: N candidates from the configured generator, the user's best first.

The generator sees the system message(s) and the last user message; earlier turns are not sent.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request

from preflm.serve import store
from preflm.serve.auth import Principal, principal
from preflm.serve.routers.common import engine, errors, service, settings
from preflm.serve.routers.score import target_user
from preflm.serve.schemas import ChatChoice, ChatIn, ChatMessage, ChatOut, PreflmExtra

router = APIRouter(tags=["generation"])


@router.post("/v1/chat/completions", response_model=ChatOut, responses=errors(400, 403, 404, 502))
def chat_completions(request: Request, body: ChatIn, who: Principal = Depends(principal)) -> ChatOut:
    """Best-of-n personalized answer; ``user`` names the profile (default: the caller's)."""
    from preflm.generate import GenerationConfig, GenerationError

    generator = request.app.state.generator
    if generator is None:
        raise HTTPException(503, "no generator configured: start the server with --model-name-or-path openai:URL#model or hf:...")
    user_id = target_user(who, body.user)
    if body.messages[-1].role != "user":
        raise HTTPException(400, f"the last message must come from the user, not {body.messages[-1].role!r}")
    system = "\n\n".join(m.content for m in body.messages if m.role in ("system", "developer")) or None
    prompt = body.messages[-1].content
    svc = service(request)
    profile, _ = store.load_profile(engine(request), svc, user_id)
    options = {k: v for k, v in (("max_new_tokens", body.max_tokens), ("temperature", body.temperature),
                                 ("top_p", body.top_p), ("seed", body.seed)) if v is not None}
    n = body.n or settings(request).chat_candidates
    try:
        with request.app.state.generator_lock:
            candidates = generator.generate([prompt], n=n, config=GenerationConfig(**options), system_prompts=[system])[0]
    except (GenerationError, ValueError) as err:
        raise HTTPException(502, f"generator {generator.name} failed: {err}") from None
    if not candidates:
        raise HTTPException(502, f"generator {generator.name} returned no candidates")
    rewards = svc.base_rewards([prompt] * len(candidates), candidates) @ profile.weights
    best = int(np.argmax(rewards))
    return ChatOut(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=body.model or generator.name,
        choices=[ChatChoice(index=0, message=ChatMessage(role="assistant", content=candidates[best]), finish_reason="stop")],
        preflm=PreflmExtra(user=user_id, model_id=svc.model_id, generator=generator.name, candidates=candidates,
                           rewards=rewards.tolist(), best=best),
    )
