"""Pieces every baseline shares: one random answer order, seen users' answers, simplex fits, a training loop.

The answer order is the fairness contract between baselines that cannot choose questions: for a given
seed every baseline sees each new user's pool answers in the same random order (``random_order``) and
takes the first ``budget`` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from preflm.data.split import DatasetSplit
from preflm.eval.onboarding import PaddedAnswers


def standardize(features: np.ndarray) -> np.ndarray:
    """Item features scaled to zero mean and unit variance per column (as PReF does before its head)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"expected item features of shape (n_items, d), got {features.shape}")
    return (features - features.mean(0)) / (features.std(0) + 1e-6)


def random_order(mask: np.ndarray, seed: int) -> np.ndarray:
    """(B, N) per-user random permutations of answer slots, real answers (mask) first.

    Every baseline calls this with the harness's seed, so all of them see the same answers in the same
    order.
    """
    rng = np.random.default_rng(seed)
    keys = rng.random(mask.shape)
    keys[~mask] = np.inf
    return np.argsort(keys, axis=1, kind="stable")


@dataclass(frozen=True)
class AnswerSet:
    """Per-user answers padded to a common width: pair (B, n) indices into the pairs table, labels, mask."""

    pair: np.ndarray
    labels: np.ndarray
    mask: np.ndarray

    @classmethod
    def from_padded(cls, padded: PaddedAnswers) -> "AnswerSet":
        return cls(padded.pair, padded.labels, padded.mask)

    @property
    def n_users(self) -> int:
        return self.pair.shape[0]

    def take(self, order: np.ndarray, start: int, stop: int | None = None) -> "AnswerSet":
        """Answers at positions [start, stop) of each user's ``order`` (missing ones masked out)."""
        columns = order[:, start:stop]
        take = lambda a: np.take_along_axis(a, columns, axis=1)  # noqa: E731
        return AnswerSet(take(self.pair), take(self.labels), take(self.mask))


def first_answers(pool: PaddedAnswers | AnswerSet, budget: int, seed: int) -> AnswerSet:
    """Each user's first ``budget`` pool answers in the shared random order for ``seed``."""
    answers = pool if isinstance(pool, AnswerSet) else AnswerSet.from_padded(pool)
    return answers.take(random_order(answers.mask, seed), 0, budget)


def pad_by_user(user: np.ndarray, pair: np.ndarray, label: np.ndarray, n_users: int) -> AnswerSet:
    """Group flat answers (user indices 0..n_users-1) into padded per-user rows."""
    order = np.argsort(user, kind="stable")
    user, pair, label = user[order], pair[order], label[order]
    counts = np.bincount(user, minlength=n_users)
    width = max(int(counts.max()) if len(counts) else 0, 1)
    position = np.arange(len(user)) - np.repeat(np.cumsum(counts) - counts, counts)
    out_pair = np.zeros((n_users, width), dtype=np.int64)
    out_label = np.full((n_users, width), 0.5)
    out_mask = np.zeros((n_users, width), dtype=bool)
    out_pair[user, position] = pair
    out_label[user, position] = label
    out_mask[user, position] = True
    return AnswerSet(out_pair, out_label, out_mask)


@dataclass(frozen=True)
class SeenAnswers:
    """Seen users' answers (users re-indexed 0..U-1) with a held-out share for early stopping and tuning."""

    pair: np.ndarray
    user: np.ndarray
    label: np.ndarray
    is_val: np.ndarray
    n_users: int

    @classmethod
    def from_split(cls, split: DatasetSplit, seed: int, val_fraction: float = 0.1) -> "SeenAnswers":
        train = split.train
        if train.n_answers == 0:
            raise ValueError("no seen-user answers to train on")
        users = train.answered_users()
        column = np.full(train.n_users, -1)
        column[users] = np.arange(len(users))
        is_val = np.random.default_rng(seed).random(train.n_answers) < val_fraction
        return cls(train.answer_pair, column[train.answer_user], train.answer_value, is_val, len(users))

    def part(self, which: str) -> AnswerSet:
        """Padded per-user answers: ``"train"``, ``"val"`` or ``"all"``."""
        keep = {"train": ~self.is_val, "val": self.is_val, "all": np.ones_like(self.is_val)}[which]
        return pad_by_user(self.user[keep], self.pair[keep], self.label[keep], self.n_users)


def decided_accuracy(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    """Pooled share of non-tie answers whose sign the scores predict (NaN if none)."""
    decided = mask & (labels != 0.5)
    if not decided.any():
        return float("nan")
    return float(np.mean((scores[decided] > 0) == (labels[decided] > 0.5)))


def choose_strength(candidates: Iterable[float], score: Callable[[float], float]) -> tuple[float, dict]:
    """The candidate with the highest ``score`` (held-out accuracy); returns it and every score."""
    scores = {float(c): float(score(float(c))) for c in candidates}
    best = max(scores, key=lambda c: (np.nan_to_num(scores[c], nan=-1.0), c))
    return best, scores


def project_to_simplex(values: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row (..., K) onto the probability simplex (sort-based, batched)."""
    K = values.shape[-1]
    ordered = -np.sort(-values, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1) - 1.0
    ranks = np.arange(1, K + 1)
    support = ordered - cumulative / ranks > 0
    last = K - 1 - np.argmax(support[..., ::-1], axis=-1)
    threshold = np.take_along_axis(cumulative, last[..., None], axis=-1) / (last[..., None] + 1)
    return np.maximum(values - threshold, 0.0)


def _log_sigmoid_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, logits) - labels * logits


def fit_simplex_weights(
    differences: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    anchor: np.ndarray,
    strength: float,
    iterations: int = 300,
) -> np.ndarray:
    """MAP simplex weights per user, batched: accelerated projected gradient (FISTA).

    Minimizes sum_n mask * BCE(differences_n . w, y_n) + strength/2 ||w - anchor||^2 over the simplex;
    the problem is convex in w, so the step 1/L (L bounds the Hessian) converges. differences:
    (B, n, K) prototype reward differences of the answered pairs; returns (B, K).
    """
    differences = np.asarray(differences, dtype=np.float64)
    weight = np.asarray(mask, dtype=np.float64)
    B, _, K = differences.shape
    anchor = np.broadcast_to(project_to_simplex(np.asarray(anchor, dtype=np.float64)), (B, K))
    curvature = 0.25 * np.einsum("bni,bn,bnj->bij", differences, weight, differences)
    lipschitz = np.linalg.eigvalsh(curvature)[..., -1] + strength + 1e-9
    step = (1.0 / lipschitz)[:, None]

    def gradient(w: np.ndarray) -> np.ndarray:
        logits = np.einsum("bnk,bk->bn", differences, w)
        residual = weight * (0.5 * (1.0 + np.tanh(0.5 * logits)) - labels)
        return np.einsum("bnk,bn->bk", differences, residual) + strength * (w - anchor)

    w = anchor.copy()
    momentum_point, t = w.copy(), 1.0
    for _ in range(iterations):
        updated = project_to_simplex(momentum_point - step * gradient(momentum_point))
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        momentum_point = updated + ((t - 1.0) / t_next) * (updated - w)
        w, t = updated, t_next
    return w


def simplex_objective(differences, labels, mask, anchor, strength, w) -> np.ndarray:
    """The objective ``fit_simplex_weights`` minimizes, per user (for tests and diagnostics)."""
    logits = np.einsum("bnk,bk->bn", differences, w)
    nll = np.sum(mask * _log_sigmoid_loss(logits, labels), axis=-1)
    return nll + 0.5 * strength * np.sum((w - anchor) ** 2, axis=-1)


def train_with_early_stopping(
    parameters: list[torch.Tensor],
    train_loss: Callable[[int], torch.Tensor],
    validation_loss: Callable[[], float],
    max_steps: int,
    learning_rate: float,
    eval_every: int = 25,
    patience: int = 8,
) -> dict:
    """Adam on ``train_loss(step)``; keeps the parameters with the lowest ``validation_loss``.

    The best parameters are restored in place; returns the best step, its validation loss and the
    validation curve [(step, loss)].
    """
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    best_loss, best_step, stale = math.inf, 0, 0
    best_state = [p.detach().clone() for p in parameters]
    curve: list[tuple[int, float]] = []
    for step in range(1, max_steps + 1):
        loss = train_loss(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % eval_every and step != max_steps:
            continue
        with torch.no_grad():
            current = float(validation_loss())
        curve.append((step, current))
        if current < best_loss - 1e-5:
            best_loss, best_step, stale = current, step, 0
            best_state = [p.detach().clone() for p in parameters]
        else:
            stale += 1
            if stale >= patience:
                break
    with torch.no_grad():
        for parameter, saved in zip(parameters, best_state):
            parameter.copy_(saved)
    return {"best_step": best_step, "best_validation_loss": best_loss, "steps": step, "curve": curve}


class FewShotMethod:
    """Harness adapter base: each new user is inferred from their first ``budget`` pool answers
    (shared random order), then their test pairs are scored. Subclasses set ``self.model``."""

    supports_active = False

    def infer_users(self, answers: AnswerSet):
        return self.model.fit_users(answers)

    def test_scores(self, pool, test, budgets, strategy, seed):
        return {
            budget: np.where(test.mask, self.model.scores(self.infer_users(first_answers(pool, budget, seed)), test.pair), 0.0)
            for budget in budgets
        }
