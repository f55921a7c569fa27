"""Training settings for base reward functions, as one dataclass (TRL style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import get_type_hints

from preflm.factorize.training import DEFAULT_VALIDATION_BY


class ConfigDict:
    """JSON round trip for config dataclasses, nested ones included; unknown keys (from newer versions) are ignored."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        types = get_type_hints(cls)
        known = {}
        for f in fields(cls):
            if f.name in values:
                value, kind = values[f.name], types[f.name]
                nested = isinstance(kind, type) and issubclass(kind, ConfigDict) and isinstance(value, dict)
                known[f.name] = kind.from_dict(value) if nested else value
        return cls(**known)


@dataclass
class FactorizeConfig(ConfigDict):
    """How to learn J base rewards phi = head(features) and the seen users' weights.

    ``svd_init`` and ``l2`` are the two stabilisers of the paper; set ``svd_init=False`` or ``l2=0``
    for the ablations.
    """

    n_factors: int = 8
    head: str = "mlp"
    hidden_size: int = 128
    svd_init: bool = True
    svd_rank: int = 100
    svd_iterations: int = 10
    svd_head_steps: int = 300
    l2: float = 1e-3
    learning_rate: float = 1e-2
    max_steps: int = 2000
    batch_size: int = 8192
    eval_every: int = 25
    patience: int = 8
    val_fraction: float = 0.1
    validation_by: str = DEFAULT_VALIDATION_BY
    prior_strength: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_factors < 1:
            raise ValueError(f"n_factors must be >= 1, got {self.n_factors}")
        if self.head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp', got {self.head!r}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.validation_by not in ("prompt", "answer"):
            raise ValueError(f"validation_by must be 'prompt' or 'answer', got {self.validation_by!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
