"""preflm: personalize LLMs to individual users with reward factorization (PReF).

Pipeline, one package per stage: ``data`` -> ``featurize`` -> ``factorize`` -> ``onboard`` ->
``generate`` -> ``serve``; ``simulate`` and ``eval`` stand beside them and ``cli`` is a thin shell.
The names a user needs are importable from here (loaded on first use, so ``import preflm`` and
``preflm --version`` stay fast).
"""

from preflm._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "PReF": "preflm.api",
    "remaining_uncertainty": "preflm.api",
    "RewardFactorization": "preflm.factorize",
    "FactorizeConfig": "preflm.factorize",
    "OnboardingSession": "preflm.onboard",
    "UserProfile": "preflm.onboard",
    "register_selector": "preflm.onboard",
    "Ranking": "preflm.generate.rank",
    "best_of_n": "preflm.generate.rank",
    "AnswerMatrix": "preflm.data",
    "DataError": "preflm.data",
    "load_preferences": "preflm.data",
    "load_questions": "preflm.data",
    "featurizer_from_name": "preflm.featurize",
    "WorldConfig": "preflm.simulate",
    "write_world": "preflm.simulate",
}

__all__ = ["__version__", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
