"""New users' answers as padded arrays, and simulated onboarding of many new users at once.

Users are a batch dimension: each step selects one question per user and refits all of them with one
batched Newton solve, so the loop runs over budgets, never over users or candidates. Answers refer to
pairs by index, so every method reads them through its own pair representation (a Delta phi table for
PReF, raw feature differences for a per-user model, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preflm.data.matrix import AnswerMatrix
from preflm.factorize.users import fit_user_weights
from preflm.metrics import pairwise_accuracy, pairwise_auc
from preflm.onboard.select import QuestionSelector, get_selector


@dataclass(frozen=True)
class PaddedAnswers:
    """Per-user answers padded to a common width: ``pair`` (B, N) pair indices, ``labels``, ``mask``.

    ``true_diff`` (B, N), when the data has true rewards, is r(a) - r(b) under each user's true reward.
    """

    pair: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    true_diff: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return self.pair.shape[0]

    def take(self, order: np.ndarray, start: int, stop: int | None = None) -> "PaddedAnswers":
        """Answers at positions [start, stop) of each user's ``order`` (missing ones masked out)."""
        columns = order[:, start:stop]
        take = lambda a: None if a is None else np.take_along_axis(a, columns, axis=1)  # noqa: E731
        return PaddedAnswers(take(self.pair), take(self.labels), take(self.mask), take(self.true_diff))

    def gather(self, table: np.ndarray) -> np.ndarray:
        """Rows of a per-pair table (e.g. Delta phi, (P, J)) for every answer: (B, N, J), zero where masked."""
        return np.where(self.mask[..., None], table[self.pair], 0.0)


def pad_rows(
    row: np.ndarray, pair: np.ndarray, label: np.ndarray, n_rows: int, true_diff: np.ndarray | None = None
) -> PaddedAnswers:
    """Group flat answers (row indices 0..n_rows-1, in any order) into padded per-row answers."""
    order = np.argsort(row, kind="stable")
    row = row[order]
    counts = np.bincount(row, minlength=n_rows)
    width = max(int(counts.max()) if len(counts) else 0, 1)
    position = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)

    def padded(values: np.ndarray, fill, dtype) -> np.ndarray:
        out = np.full((n_rows, width), fill, dtype=dtype)
        out[row, position] = values[order]
        return out

    return PaddedAnswers(
        padded(pair, 0, np.int64),
        padded(label, 0.5, np.float64),
        padded(np.ones(len(row), dtype=bool), False, bool),
        None if true_diff is None else padded(true_diff, 0.0, np.float64),
    )


def pad_answers(answers: AnswerMatrix, users: np.ndarray) -> PaddedAnswers:
    """Each of ``users``' answers (pair, label, true reward difference), one padded row per user."""
    users = np.asarray(users)
    row_of = np.full(answers.n_users, -1)
    row_of[users] = np.arange(len(users))
    keep = row_of[answers.answer_user] >= 0
    true_diff = None if answers.true_reward_diff is None else answers.true_reward_diff[keep]
    return pad_rows(
        row_of[answers.answer_user[keep]], answers.answer_pair[keep], answers.answer_value[keep], len(users), true_diff
    )


def random_order(mask: np.ndarray, seed: int) -> np.ndarray:
    """(B, N) per-user random permutations of answer slots, real answers (mask) first.

    The fairness contract between methods that cannot choose questions: for a given seed every such
    method sees each new user's pool answers in the same order and takes the first ``budget``.
    """
    rng = np.random.default_rng(seed)
    keys = rng.random(mask.shape)
    keys[~mask] = np.inf
    return np.argsort(keys, axis=1, kind="stable")


def first_answers(pool: PaddedAnswers, budget: int, seed: int) -> PaddedAnswers:
    """Each user's first ``budget`` pool answers in the shared random order for ``seed``."""
    return pool.take(random_order(pool.mask, seed), 0, budget)


def simulate_onboarding(
    pool: PaddedAnswers,
    pair_differences: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    budgets: list[int],
    selector: str | QuestionSelector = "active",
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Weights (B, J) of every user after each budget of answers drawn from their own pool.

    ``pair_differences`` is Delta phi of every pair (P, J); questions are chosen among each user's pool.
    """
    selector = get_selector(selector) if isinstance(selector, str) else selector
    rng = np.random.default_rng(seed)
    z = pool.gather(pair_differences)
    B, N, J = z.shape
    available = pool.mask.copy()
    lam = np.broadcast_to(prior_mean, (B, J)).copy()
    covariance = np.broadcast_to(np.linalg.inv(prior_precision), (B, J, J)).copy()
    asked_z = np.zeros((B, 0, J))
    asked_y = np.zeros((B, 0))
    asked_mask = np.zeros((B, 0), dtype=bool)
    weights_at: dict[int, np.ndarray] = {}
    rows = np.arange(B)
    if 0 in budgets:
        weights_at[0] = lam.copy()
    for step in range(1, max(budgets) + 1):
        has_any = available.any(-1)
        choice = selector.select(z, lam, covariance, available, rng)
        available[rows, choice] = False
        asked_z = np.concatenate([asked_z, z[rows, choice][:, None]], axis=1)
        asked_y = np.concatenate([asked_y, pool.labels[rows, choice][:, None]], axis=1)
        asked_mask = np.concatenate([asked_mask, has_any[:, None]], axis=1)
        lam, covariance = fit_user_weights(asked_z, asked_y, prior_mean, prior_precision, mask=asked_mask, init=lam)
        if step in budgets:
            weights_at[step] = lam.copy()
    return weights_at


def score_weights(
    weights: np.ndarray, test: PaddedAnswers, pair_differences: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user accuracy and AUC of weights (B, J) on their test answers."""
    scores = np.einsum("bnj,bj->bn", test.gather(pair_differences), weights)
    return pairwise_accuracy(scores, test.labels, test.mask), pairwise_auc(scores, test.labels, test.mask)
