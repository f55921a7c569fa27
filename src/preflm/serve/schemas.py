"""Request and response bodies; the limits here are part of the OpenAPI spec (violations answer 422)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from preflm.serve.auth import USER_ID_PATTERN

MAX_TEXT_CHARS = 32_000
MAX_RESPONSES = 64
MAX_ITEMS = 256
MAX_MESSAGES = 64

BoundedText = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
ShortText = Annotated[str, Field(max_length=200)]


class ErrorBody(BaseModel):
    detail: str


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(None, pattern=USER_ID_PATTERN, description="Optional id; a random one otherwise.")


class CreatedUser(BaseModel):
    user_id: str
    api_key: str = Field(description="Shown once; only its hash is stored.")


class Question(BaseModel):
    done: bool = Field(description="True once the stopping rule says the profile is confident (or the budget is spent).")
    question_id: int | None = None
    prompt: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    confidence: float
    answers: int


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question_id: int = Field(ge=0, le=2**31 - 1)
    preference: Literal["a", "b", "tie"]


class AnswerOut(BaseModel):
    question_id: int
    preference: Literal["a", "b", "tie"]
    answers: int
    confidence: float
    done: bool
    replayed: bool = Field(description="True when this idempotency key was already stored: nothing new was written.")


class ProfileOut(BaseModel):
    user_id: str
    model_id: str
    weights: list[float]
    covariance: list[list[float]]
    answers: int
    confidence: float
    done: bool


class ScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=MAX_TEXT_CHARS)
    responses: list[BoundedText] = Field(min_length=1, max_length=MAX_RESPONSES)
    user_id: str | None = Field(None, pattern=USER_ID_PATTERN, description="Whose reward (admin only; default: the caller).")


class ScoreOut(BaseModel):
    rewards: list[float]
    best: int


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ChatIn(BaseModel):
    """OpenAI chat-completions request; ``n`` candidates are drawn (default: the server's) and one returned."""

    model: str | None = Field(None, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    user: str | None = Field(None, pattern=USER_ID_PATTERN, description="Whose profile ranks the candidates.")
    n: int | None = Field(None, ge=1, le=32, description="How many candidates to draw (best-of-n).")
    max_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: str


class PreflmExtra(BaseModel):
    user: str
    model_id: str
    generator: str
    candidates: list[str]
    rewards: list[float]
    best: int


class ChatOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    preflm: PreflmExtra


class RewardIn(BaseModel):
    """OpenRLHF remote reward request: ``query`` holds prompt + response; ``prompts`` lets us split them."""

    query: list[BoundedText] = Field(min_length=1, max_length=MAX_ITEMS)
    prompts: list[BoundedText] | None = Field(None, max_length=MAX_ITEMS)
    labels: list[ShortText | None] | None = Field(None, max_length=MAX_ITEMS)
    user_ids: list[ShortText | None] | None = Field(None, max_length=MAX_ITEMS)


class RewardOut(BaseModel):
    rewards: list[float]
    scores: list[float]


class Health(BaseModel):
    status: str
    model_id: str
    questions: int
    database: str
