"""A user's profile: their weights lambda, its covariance, and the answers it came from (JSON).

A profile is bound to the model it was learned with (``model_id``, a content hash of that model's
weights and config): :meth:`UserProfile.check_model` refuses to pair it with any other model. Saving is
atomic (temporary file, fsync, rename) and never replaces a profile holding more answers unless asked.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


class ProfileError(ValueError):
    """A profile that cannot be read, saved over, or used with a given model; the message says why."""


@dataclass
class UserProfile:
    """What preflm knows about one user; small enough to be plain JSON."""

    user_id: str
    weights: list[float]
    covariance: list[list[float]]
    answers: list[dict] = field(default_factory=list)
    model: str | None = None
    model_id: str | None = None

    @property
    def weight_vector(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)

    def validate(self, source: str = "<profile>") -> "UserProfile":
        """Check types, shapes (weights (J,), covariance (J, J)) and that every number is finite."""
        if not isinstance(self.user_id, str):
            raise ProfileError(f"{source}: user_id must be a string, got {type(self.user_id).__name__}")
        try:
            weights = np.asarray(self.weights, dtype=np.float64)
            covariance = np.asarray(self.covariance, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ProfileError(f"{source}: weights and covariance must be numbers ({err})") from None
        if weights.ndim != 1 or weights.size == 0:
            raise ProfileError(f"{source}: weights must be a non-empty list of numbers, got shape {weights.shape}")
        if covariance.shape != (weights.size, weights.size):
            raise ProfileError(
                f"{source}: covariance has shape {covariance.shape} but {weights.size} weights need "
                f"({weights.size}, {weights.size})"
            )
        if not (np.isfinite(weights).all() and np.isfinite(covariance).all()):
            raise ProfileError(f"{source}: weights or covariance hold NaN or inf; onboard this user again")
        if not isinstance(self.answers, list):
            raise ProfileError(f"{source}: answers must be a list, got {type(self.answers).__name__}")
        return self

    def check_model(self, model) -> None:
        """Refuse a model this profile was not learned with (other ``model_id`` or other number of factors)."""
        expected = model.n_weights
        if len(self.weights) != expected:
            raise ProfileError(
                f"profile of {self.user_id!r} has {len(self.weights)} weights but the model's users have {expected}: "
                "it was learned with another model; onboard this user again with this model"
            )
        if self.model_id is not None and self.model_id != model.model_id:
            where = f" ({self.model})" if self.model else ""
            raise ProfileError(
                f"profile of {self.user_id!r} was learned with model {self.model_id}{where}, not with this model "
                f"({model.model_id}); onboard this user again with this model"
            )

    def save(self, path: str | Path, overwrite_poorer: bool = False) -> Path:
        """Write the profile as JSON, atomically (temporary file, fsync, rename).

        An existing profile at ``path`` with more answers than this one is kept and :class:`ProfileError`
        raised, unless ``overwrite_poorer=True``; so is a file there that is not a profile at all.
        """
        self.validate(str(path))
        path = Path(path)
        if path.exists() and not overwrite_poorer:
            try:
                existing = UserProfile.load(path)
            except ProfileError as err:
                raise ProfileError(f"{path} exists and is not a readable preflm profile ({err}); not replacing it") from None
            if len(existing.answers) > len(self.answers):
                raise ProfileError(
                    f"{path} holds a profile with {len(existing.answers)} answers; not replacing it with one of "
                    f"{len(self.answers)} answers (pass overwrite_poorer=True, or save elsewhere)"
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(self), indent=2))
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "UserProfile":
        """Read and validate a profile; any problem is one :class:`ProfileError` naming the file."""
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(values, dict):
                raise TypeError(f"expected a JSON object, got {type(values).__name__}")
            profile = cls(**values)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as err:
            raise ProfileError(f"{path}: not a preflm user profile ({err})") from None
        return profile.validate(str(path))
