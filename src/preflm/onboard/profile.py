"""A user's profile: their weights lambda, its covariance, and the answers it came from (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class UserProfile:
    """What preflm knows about one user; small enough to be plain JSON."""

    user_id: str
    weights: list[float]
    covariance: list[list[float]]
    answers: list[dict] = field(default_factory=list)
    model: str | None = None

    @property
    def weight_vector(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "UserProfile":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
            return cls(**values)
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a preflm user profile ({err})") from None
