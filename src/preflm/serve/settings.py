"""Settings of the preference service: one dataclass, filled by ``preflm serve`` or by tests."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

ADMIN_KEY_ENV = "PREFLM_ADMIN_KEY"
SETTINGS_ENV = "PREFLM_SERVE_SETTINGS"
LOCK_TIMEOUT_MS = 5000
"""PostgreSQL: how long an answer waits for its user's row lock before a 503 (0: no limit)."""


def default_db_url() -> str:
    """An SQLite file in the working directory: zero set-up."""
    return f"sqlite:///{Path.cwd() / 'preflm.db'}"


@dataclass
class ServeSettings:
    """Everything the service needs; limits bound the work one request can ask for.

    ``budget`` and ``target_confidence`` are the onboarding stopping rule: a user is done after ``budget``
    answers, or earlier once ``confidence`` (1 - posterior sd / prior sd of their weights) reaches the target.
    ``db_lock_timeout_ms``: how long a PostgreSQL statement waits for a row lock before the request fails with 503.
    """

    model_dir: str
    questions: str
    db_url: str = field(default_factory=default_db_url)
    admin_key: str | None = field(default_factory=lambda: os.environ.get(ADMIN_KEY_ENV) or None)
    generator: str | None = None
    budget: int = 10
    target_confidence: float = 0.9
    max_answers: int = 200
    chat_candidates: int = 4
    max_body_bytes: int = 1 << 20
    batch_window_ms: float = 2.0
    max_batch_texts: int = 512
    generator_timeout_s: float = 60.0
    db_lock_timeout_ms: int = LOCK_TIMEOUT_MS
    migrate: bool = True

    def __post_init__(self):
        if self.budget < 1:
            raise ValueError(f"budget must be at least 1, got {self.budget}")
        if not 0 < self.target_confidence <= 1:
            raise ValueError(f"target_confidence must lie in (0, 1], got {self.target_confidence}")
        if self.chat_candidates < 1:
            raise ValueError(f"chat_candidates must be at least 1, got {self.chat_candidates}")
        if self.db_lock_timeout_ms < 0:
            raise ValueError(f"db_lock_timeout_ms must be 0 (no limit) or more, got {self.db_lock_timeout_ms}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")

    def to_json(self) -> str:
        """For worker processes (uvicorn --workers): the admin key stays in the environment, not here."""
        values = asdict(self)
        values.pop("admin_key")
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        return cls(**json.loads(text))
