"""A planted low-rank preference problem: known phi = X A on numeric features and known user weights.

Used to check that training recovers held-out accuracy close to the oracle (the true weights and
base rewards) and that active question choice beats random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from preflm.data.matrix import AnswerMatrix
from preflm.data.split import DatasetSplit, split_answers


@dataclass(frozen=True)
class PlantedProblem:
    features: np.ndarray
    true_phi: np.ndarray
    user_weights: np.ndarray
    matrix: AnswerMatrix
    split: DatasetSplit


def planted_answers(
    item_rewards: np.ndarray,
    n_seen_users: int,
    answers_per_seen_user: int,
    pool_size: int,
    test_size: int,
    n_pairs: int,
    rng: np.random.Generator,
) -> tuple[AnswerMatrix, np.ndarray]:
    """Bradley-Terry answers from true rewards (users x items), with a split column.

    The first ``n_seen_users`` answer ``answers_per_seen_user`` pairs (train); the others answer
    ``pool_size`` + ``test_size`` distinct pairs (pool, then test). All draw from one set of at most
    ``n_pairs`` distinct unordered item pairs. Returns the matrix and, per matrix item, its index
    in ``item_rewards``' columns.
    """
    n_users, n_items = item_rewards.shape
    counts = np.where(np.arange(n_users) < n_seen_users, answers_per_seen_user, pool_size + test_size)
    user = np.repeat(np.arange(n_users), counts)
    first = rng.integers(0, n_items, size=n_pairs)
    second = (first + rng.integers(1, n_items, size=n_pairs)) % n_items
    _, unique = np.unique(np.minimum(first, second) * n_items + np.maximum(first, second), return_index=True)
    first, second, n_pairs = first[np.sort(unique)], second[np.sort(unique)], len(unique)
    asked = np.concatenate([rng.choice(n_pairs, c, replace=False) for c in counts])
    a, b = first[asked], second[asked]
    reward_a, reward_b = item_rewards[user, a], item_rewards[user, b]
    preference = (rng.random(len(user)) < 1 / (1 + np.exp(-(reward_a - reward_b)))).astype(float)
    position = np.concatenate([np.arange(c) for c in counts])
    split = np.where(user < n_seen_users, "train", np.where(position < pool_size, "pool", "test"))
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u:04d}" for u in user],
            "prompt": "planted",
            "response_a": [f"item{i}" for i in a],
            "response_b": [f"item{i}" for i in b],
            "preference": preference,
            "split": split,
            "true_reward_a": reward_a,
            "true_reward_b": reward_b,
        }
    )
    matrix = AnswerMatrix.from_frame(frame)
    return matrix, np.array([int(r[4:]) for r in matrix.item_responses])


def make_planted_problem(
    n_items: int = 1500,
    n_pairs: int = 1000,
    dim: int = 24,
    n_factors: int = 4,
    n_seen_users: int = 80,
    n_new_users: int = 40,
    answers_per_seen_user: int = 200,
    pool_size: int = 200,
    test_size: int = 100,
    signal: float = 3.0,
    seed: int = 0,
) -> PlantedProblem:
    """Users answer Bradley-Terry with true logit lambda_u . (phi(a) - phi(b)); ``signal`` scales lambda.

    All users draw their questions from one set of ``n_pairs`` pairs, so the answer matrix has shared
    rows as in real collections (each pair asked of many users).
    """
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_items, dim))
    mixing = rng.normal(size=(dim, n_factors)) / np.sqrt(dim)
    true_phi = features @ mixing
    n_users = n_seen_users + n_new_users
    weights = signal * rng.normal(size=(n_users, n_factors)) / np.sqrt(n_factors)
    matrix, order = planted_answers(
        weights @ true_phi.T, n_seen_users, answers_per_seen_user, pool_size, test_size, n_pairs, rng
    )
    matrix = AnswerMatrix(**{**matrix.__dict__, "item_true_features": true_phi[order]})
    split = split_answers(matrix, protocol="seen-prompts")  # one shared prompt: pairs, not prompts, are held out
    return PlantedProblem(features[order], true_phi[order], weights, matrix, split)
