"""Training settings for base reward functions, as one dataclass (TRL style)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import get_type_hints

VALIDATION_UNITS = ("prompt", "answer")
DEFAULT_VALIDATION_BY = "prompt"


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


def _parse_choices(text, kind, name: str, expected: str) -> list:
    """Comma-separated values of ``kind`` (sorted, unique); [] for an empty text."""
    text = str(text).strip()
    if not text:
        return []
    try:
        return sorted({kind(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"{name} must be comma-separated {expected}, got {text!r}") from None


@dataclass
class FactorizeConfig(ConfigDict):
    """How to learn J base rewards phi = head(features) and the seen users' weights.

    ``svd_init`` and ``l2`` are the two stabilisers of the paper; set ``svd_init=False`` or ``l2=0``
    for the ablations. ``svd_init="auto"`` (the default) trains with and without it and keeps the run
    with the better held-out accuracy: on prompts no one has rated, the SVD start helps on some data
    (DSP) and hurts on other (the Attributes world), see benchmarks/results.
    """

    n_factors: int = field(default=8, metadata={"help": "J, the number of base reward functions."})
    n_factors_choices: str = field(
        default="",
        metadata={"help": "J values to choose from, e.g. 4,6,8 (empty: use n_factors): each is trained and the one "
                  "whose seen users, refit from only selection_answers answers each, best predict their held-out "
                  "prompts is kept, so J suits users who give few answers."},
    )
    selection_answers: int = field(default=10, metadata={"help": "Answers per seen user when choosing J from n_factors_choices."})
    head: str = field(default="mlp", metadata={"help": "mlp (one hidden layer, the default) or linear (as in the paper)."})
    hidden_size: int = field(default=128, metadata={"help": "Hidden units of the mlp head."})
    svd_init: bool | str = field(
        default="auto",
        metadata={"help": "SVD initialization: on (as in the paper), off (the ablation), or auto: train both and "
                  "keep the one with the higher accuracy on the held-out (prompt) answers."},
    )
    svd_rank: int = field(default=100, metadata={"help": "Rank of the iterative SVD imputation of the answer matrix."})
    svd_iterations: int = field(default=10, metadata={"help": "Iterations of the SVD imputation."})
    svd_head_steps: int = field(default=300, metadata={"help": "Optimizer steps fitting the head to the top-J SVD factors."})
    l2: float = field(default=1e-3, metadata={"help": "L2 regularization strength (0 for the ablation)."})
    learning_rate: float = field(default=1e-2, metadata={"help": "Adam learning rate."})
    max_steps: int = field(default=2000, metadata={"help": "Most optimizer steps (early stopping on held-out answers)."})
    batch_size: int = field(default=8192, metadata={"help": "Answers per optimizer step."})
    eval_every: int = field(default=25, metadata={"help": "Steps between held-out evaluations."})
    patience: int = field(default=8, metadata={"help": "Held-out evaluations without improvement before stopping."})
    val_fraction: float = field(default=0.1, metadata={"help": "Share of seen users' answers held out for early stopping."})
    validation_by: str = field(default=DEFAULT_VALIDATION_BY, metadata={"help": "Hold out whole prompts (prompt) or single answers (answer)."})
    prior_strength: float = field(default=1.0, metadata={"help": "Scale of the population prior's precision for new users' weights."})
    residual_factors: int = field(
        default=32,
        metadata={"help": "K residual base rewards beside the J learned ones: the top principal directions of the "
                  "standardized features, fixed, with a zero-mean prior for new users' weights on them, so a user "
                  "with many answers is not confined to what seen users share (0: off)."},
    )
    residual_strength: float = field(
        default=100.0,
        metadata={"help": "Precision of new users' prior on their residual weights (larger: closer to plain PReF). "
                  "Used as given only when residual_strength_choices is empty; otherwise the chosen value is stored here."},
    )
    residual_strength_choices: str = field(
        default="30,100,300,1000",
        metadata={"help": "residual_strength values to choose from, e.g. 30,100 (empty: use residual_strength): the "
                  "one whose seen users, refit from residual_selection_answers answers each, best predict their "
                  "held-out prompts is kept."},
    )
    residual_selection_answers: int = field(
        default=40,
        metadata={"help": "Answers per seen user when choosing residual_strength: the residual matters for users "
                  "who give many answers (with ten, a user's weights stay near the shared ones at any strength)."},
    )
    seed: int = field(default=0, metadata={"help": "Random seed (initialization, held-out draw)."})

    @property
    def residual_strengths(self) -> list[float]:
        """The values of ``residual_strength_choices`` (sorted, unique), or [] when the strength is fixed."""
        return _parse_choices(self.residual_strength_choices, float, "residual_strength_choices", "numbers, e.g. 30,100")

    @property
    def factor_choices(self) -> list[int]:
        """The J values of ``n_factors_choices`` (sorted, unique), or [] when J is fixed."""
        return _parse_choices(self.n_factors_choices, int, "n_factors_choices", "whole numbers, e.g. 4,6,8")

    def __post_init__(self) -> None:
        if isinstance(self.svd_init, str):
            named = {"on": True, "true": True, "off": False, "false": False, "auto": "auto"}
            if self.svd_init.lower() not in named:
                raise ValueError(f"svd_init must be on, off or auto, got {self.svd_init!r}")
            self.svd_init = named[self.svd_init.lower()]
        elif not isinstance(self.svd_init, bool):
            raise ValueError(f"svd_init must be on, off or auto, got {self.svd_init!r}")
        if self.n_factors < 1:
            raise ValueError(f"n_factors must be >= 1, got {self.n_factors}")
        choices = self.factor_choices
        if any(j < 1 for j in choices):
            raise ValueError(f"n_factors_choices must be whole numbers >= 1, got {self.n_factors_choices!r}")
        if self.residual_factors < 0:
            raise ValueError(f"residual_factors must be >= 0 (0 turns the residual off), got {self.residual_factors}")
        if not all(math.isfinite(v) and v > 0 for v in [self.residual_strength, *self.residual_strengths]):
            raise ValueError(
                f"residual strengths must be finite numbers > 0, got {self.residual_strength!r} and "
                f"choices {self.residual_strength_choices!r}"
            )
        if self.selection_answers < 1:
            raise ValueError(f"selection_answers must be >= 1, got {self.selection_answers}")
        if self.residual_selection_answers < 1:
            raise ValueError(f"residual_selection_answers must be >= 1, got {self.residual_selection_answers}")
        if self.head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp', got {self.head!r}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.validation_by not in ("prompt", "answer"):
            raise ValueError(f"validation_by must be 'prompt' or 'answer', got {self.validation_by!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
