"""Measuring personalization: simulated onboarding, metrics, the harness and its report."""

from preflm.eval.harness import HarnessConfig, KnownPhiMethod, Method, PReFMethod, evaluate_methods, j_sweep
from preflm.eval.metrics import mean_ci, pairwise_accuracy, pairwise_auc
from preflm.eval.onboarding import PaddedAnswers, pad_answers, score_weights, simulate_onboarding

__all__ = [
    "HarnessConfig",
    "KnownPhiMethod",
    "Method",
    "PReFMethod",
    "PaddedAnswers",
    "evaluate_methods",
    "j_sweep",
    "mean_ci",
    "pad_answers",
    "pairwise_accuracy",
    "pairwise_auc",
    "score_weights",
    "simulate_onboarding",
]
