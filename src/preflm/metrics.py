"""Pairwise accuracy, AUC and confidence intervals: the one place every stage measures answers.

Scores are logits of "first response preferred"; labels are 1 / 0 / 0.5 (tie). Leading dimensions are
rows (users); the last dimension holds their answers.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def pairwise_accuracy(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-row share of decided answers (label != 0.5) whose sign the score predicts; NaN if none.

    A score of exactly 0 counts as predicting the second response (as ``score > 0`` decides a choice).

    Pass flat arrays for one pooled figure (a 0-d array; ``float()`` it).
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    decided = labels != 0.5
    if mask is not None:
        decided = decided & mask
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
    """Mean and a t-interval (``scipy.stats.t``) over the finite values (NaN interval with fewer than two)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if len(values) < 2 or np.all(values == values[0]):
        half = float("nan") if len(values) < 2 else 0.0
        return mean, mean - half, mean + half
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def pooled_accuracy(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """One accuracy over all decided answers of all rows (NaN if none)."""
    flat_mask = None if mask is None else np.ravel(mask)
    return float(pairwise_accuracy(np.ravel(scores), np.ravel(labels), flat_mask))
