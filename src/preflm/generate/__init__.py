"""Alignment at inference time: generators, personalized best-of-N, reward-guided decoding, prompting."""

from preflm.generate.generators import (
    Answer,
    GenerationConfig,
    GenerationError,
    Generator,
    HFGenerator,
    OpenAIGenerator,
    load_generator,
)
from preflm.generate.personalize import (
    CandidateSet,
    guided_decoding,
    personalized_best_of_n,
    prompting_baseline,
)
from preflm.generate.rank import Ranking, best_of_n

__all__ = [
    "Answer",
    "CandidateSet",
    "GenerationConfig",
    "GenerationError",
    "Generator",
    "HFGenerator",
    "OpenAIGenerator",
    "Ranking",
    "best_of_n",
    "guided_decoding",
    "load_generator",
    "personalized_best_of_n",
    "prompting_baseline",
]
