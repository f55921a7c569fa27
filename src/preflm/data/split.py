"""Split answers by user (seen users to train on; new users to onboard) and by pair (pool vs test).

When the data carries a ``split`` column it is used exactly as given, so a dataset prepared
elsewhere is evaluated the same way by every command.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preflm.data.matrix import AnswerMatrix
from preflm.data.records import DataError


@dataclass(frozen=True)
class DatasetSplit:
    """Answers of seen users (``train``) and of new users (``pool`` to ask from, ``test`` to score)."""

    train: AnswerMatrix
    pool: AnswerMatrix
    test: AnswerMatrix

    @property
    def new_users(self) -> np.ndarray:
        """Indices of new users that have both pool and test answers."""
        return np.intersect1d(self.pool.answered_users(), self.test.answered_users())


def split_answers(
    matrix: AnswerMatrix, new_user_fraction: float = 0.2, test_fraction: float = 0.4, seed: int = 0
) -> DatasetSplit:
    """Honour the ``split`` column when present; else draw new users and split their pairs at random."""
    if matrix.answer_split is not None:
        splits = matrix.answer_split
        overlap = np.intersect1d(matrix.answer_user[splits == "train"], matrix.answer_user[splits != "train"])
        if overlap.size:
            raise DataError(
                "<split column>", f"user {matrix.user_ids[overlap[0]]!r} has both train and pool/test answers"
            )
        cell = matrix.answer_user * matrix.n_pairs + matrix.answer_pair
        shared = np.intersect1d(cell[splits == "pool"], cell[splits == "test"])
        if shared.size:
            user, pair = divmod(int(shared[0]), matrix.n_pairs)
            raise DataError(
                "<split column>",
                f"user {matrix.user_ids[user]!r} has the same pair in pool and test "
                f"(prompt {matrix.item_prompts[matrix.pairs[pair, 0]][:60]!r}): it would be scored on a question it was asked",
            )
        return DatasetSplit(*(matrix.subset(splits == name) for name in ("train", "pool", "test")))
    if not 0.0 < new_user_fraction < 1.0 or not 0.0 < test_fraction < 1.0:
        raise ValueError("new_user_fraction and test_fraction must lie strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    users = matrix.answered_users()
    n_new = max(1, int(round(new_user_fraction * len(users))))
    if n_new >= len(users):
        raise ValueError(f"need at least two users to split, got {len(users)}")
    is_new = np.zeros(matrix.n_users, dtype=bool)
    is_new[rng.choice(users, n_new, replace=False)] = True
    new_answer = is_new[matrix.answer_user]
    is_test = new_answer & (rng.random(matrix.n_answers) < test_fraction)
    return DatasetSplit(
        train=matrix.subset(~new_answer),
        pool=matrix.subset(new_answer & ~is_test),
        test=matrix.subset(is_test),
    )
