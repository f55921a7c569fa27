"""Measuring personalization: simulated onboarding, the harness (one long table) and its report."""

from preflm.eval.harness import (
    FewShotMethod,
    HarnessConfig,
    LinearUsers,
    Method,
    evaluate_methods,
    j_sweep,
    known_phi_method,
    paired_difference,
    pref_method,
    summarize,
)
from preflm.eval.onboarding import (
    PaddedAnswers,
    first_answers,
    pad_answers,
    pad_rows,
    random_order,
    score_weights,
    simulate_onboarding,
)

__all__ = [
    "FewShotMethod",
    "HarnessConfig",
    "LinearUsers",
    "Method",
    "PaddedAnswers",
    "evaluate_methods",
    "first_answers",
    "j_sweep",
    "known_phi_method",
    "pad_answers",
    "pad_rows",
    "paired_difference",
    "pref_method",
    "random_order",
    "score_weights",
    "simulate_onboarding",
    "summarize",
]
