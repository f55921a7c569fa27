"""Pairwise accuracy and AUC for many users at once, and confidence intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats


def pairwise_accuracy(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-row share of decided answers (label != 0.5) whose sign the score predicts; NaN if none."""
    decided = mask & (labels != 0.5)
    correct = ((scores > 0) == (labels > 0.5)) & decided
    n = decided.sum(-1)
    return np.where(n > 0, correct.sum(-1) / np.maximum(n, 1), np.nan)


def pairwise_auc(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-row ROC AUC of scores for "a preferred" (ties excluded, averaged cells by their majority;
    NaN when a row has one class only).

    Mann-Whitney over all positive/negative pairs of a row, vectorized across rows.
    """
    pos = mask & (labels > 0.5)
    neg = mask & (labels < 0.5)
    greater = (scores[..., :, None] > scores[..., None, :]).astype(float)
    equal = (scores[..., :, None] == scores[..., None, :]).astype(float)
    weight = pos[..., :, None] & neg[..., None, :]
    n = weight.sum((-1, -2))
    wins = ((greater + 0.5 * equal) * weight).sum((-1, -2))
    return np.where(n > 0, wins / np.maximum(n, 1), np.nan)


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and a t-interval over the finite values (NaN interval with fewer than two)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half
