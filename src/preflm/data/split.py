"""Split answers by user (seen users to train on; new users to onboard) and by prompt or pair.

Two protocols:

- ``unseen-prompts`` (default): prompts are partitioned into train / pool / test groups. Seen users
  keep only their answers on train prompts; new users are asked on pool prompts and scored on test
  prompts. No prompt of a new user's pool or test appears in training, so the base rewards must hold
  on prompts no one has rated, which is how preflm is used.
- ``seen-prompts``: the older protocol; a new user's pool and test pairs are drawn from all pairs, and
  only the (user, pair) cells of pool and test must differ.

When the data carries a ``split`` column it is used exactly as given (so a dataset prepared elsewhere
is evaluated the same way by every command) and checked against the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preflm.data.matrix import AnswerMatrix
from preflm.data.records import DataError

PROTOCOLS = ("unseen-prompts", "seen-prompts")
DEFAULT_PROTOCOL = "unseen-prompts"
DEFAULT_PROMPT_FRACTIONS = (0.7, 0.15, 0.15)
"""Shares of prompts for training, new users' pool and new users' test under ``unseen-prompts``."""


@dataclass(frozen=True)
class DatasetSplit:
    """Answers of seen users (``train``) and of new users (``pool`` to ask from, ``test`` to score)."""

    train: AnswerMatrix
    pool: AnswerMatrix
    test: AnswerMatrix
    protocol: str = DEFAULT_PROTOCOL

    @property
    def new_users(self) -> np.ndarray:
        """Indices of new users that have both pool and test answers."""
        return np.intersect1d(self.pool.answered_users(), self.test.answered_users())


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def pair_prompts(matrix: AnswerMatrix) -> tuple[np.ndarray, np.ndarray]:
    """(prompt code of each pair, unique prompt texts): a pair's prompt is its first item's prompt."""
    prompts, codes = np.unique(matrix.item_prompts[matrix.pairs[:, 0]].astype(str), return_inverse=True)
    return codes.reshape(-1).astype(np.int64), prompts


def answer_prompts(matrix: AnswerMatrix) -> tuple[np.ndarray, np.ndarray]:
    """(prompt code of each answer, unique prompt texts)."""
    codes, prompts = pair_prompts(matrix)
    return codes[matrix.answer_pair], prompts


def partition_prompts(n_prompts: int, fractions=DEFAULT_PROMPT_FRACTIONS, seed=0) -> np.ndarray:
    """A random ``"train"`` / ``"pool"`` / ``"test"`` label for each of ``n_prompts`` prompts.

    Each group gets at least one prompt; ``seed`` is an int or a ``numpy`` Generator.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions <= 0):
        raise ValueError(f"prompt fractions must be three positive shares (train, pool, test), got {fractions.tolist()}")
    if n_prompts < 3:
        raise ValueError(f"the unseen-prompts protocol needs at least 3 distinct prompts, got {n_prompts}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    fractions = fractions / fractions.sum()
    n_pool = max(1, int(round(fractions[1] * n_prompts)))
    n_test = max(1, int(round(fractions[2] * n_prompts)))
    n_train = n_prompts - n_pool - n_test
    if n_train < 1:
        raise ValueError(f"{n_prompts} prompts leave none for training with fractions {fractions.tolist()}")
    labels = np.array(["train"] * n_train + ["pool"] * n_pool + ["test"] * n_test)
    return labels[rng.permutation(n_prompts)]


def prompt_holdout_mask(matrix: AnswerMatrix, fraction: float, seed=0) -> np.ndarray:
    """Boolean mask over answers: True for answers on a random ``fraction`` of the prompts.

    For validation (early stopping, model selection) that, like the unseen-prompts protocol, scores
    base rewards on prompts they were not fitted on. With a single prompt, pairs are held out instead.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    codes, prompts = answer_prompts(matrix)
    if fraction == 0.0 or matrix.n_answers == 0:
        return np.zeros(matrix.n_answers, dtype=bool)
    if len(prompts) < 2:
        held = rng.random(matrix.n_pairs) < fraction
        return held[matrix.answer_pair]
    asked = np.unique(codes)
    n_held = min(len(asked) - 1, max(1, int(round(fraction * len(asked)))))
    held = np.zeros(len(prompts), dtype=bool)
    held[rng.choice(asked, n_held, replace=False)] = True
    return held[codes]


def check_split(matrix: AnswerMatrix, splits: np.ndarray, protocol: str = DEFAULT_PROTOCOL) -> None:
    """Raise a ``DataError`` unless ``splits`` (one label per answer) is valid under ``protocol``.

    Always: no user on both sides, no (user, pair) in both pool and test. Under ``unseen-prompts``
    also: no prompt in both train and pool/test, and no prompt in both pool and test.
    """
    _check_protocol(protocol)
    unknown = sorted(set(np.unique(splits.astype(str))) - {"train", "pool", "test"})
    if unknown:
        raise DataError("<split column>", f"unknown split {unknown[0]!r}: use train, pool or test")
    overlap = np.intersect1d(matrix.answer_user[splits == "train"], matrix.answer_user[splits != "train"])
    if overlap.size:
        raise DataError("<split column>", f"user {matrix.user_ids[overlap[0]]!r} has both train and pool/test answers")
    cell = matrix.answer_user * matrix.n_pairs + matrix.answer_pair
    shared = np.intersect1d(cell[splits == "pool"], cell[splits == "test"])
    if shared.size:
        user, pair = divmod(int(shared[0]), matrix.n_pairs)
        raise DataError(
            "<split column>",
            f"user {matrix.user_ids[user]!r} has the same pair in pool and test "
            f"(prompt {matrix.item_prompts[matrix.pairs[pair, 0]][:60]!r}): it would be scored on a question it was asked",
        )
    if protocol != "unseen-prompts":
        return
    codes, prompts = answer_prompts(matrix)
    hint = "; evaluate with protocol seen-prompts to allow it, or re-split the data by prompt"
    for first, second in (("train", "pool"), ("train", "test"), ("pool", "test")):
        both = np.intersect1d(codes[splits == first], codes[splits == second])
        if both.size:
            raise DataError(
                "<split column>",
                f"prompt {prompts[both[0]][:60]!r} appears in both {first} and {second} answers, "
                f"which the unseen-prompts protocol forbids{hint}",
            )


def split_answers(
    matrix: AnswerMatrix,
    new_user_fraction: float = 0.2,
    test_fraction: float = 0.4,
    seed: int = 0,
    protocol: str = DEFAULT_PROTOCOL,
    prompt_fractions=DEFAULT_PROMPT_FRACTIONS,
) -> DatasetSplit:
    """Honour (and check) the ``split`` column when present; else split users and prompts or pairs.

    Without a split column, ``new_user_fraction`` of the users become new users. Under
    ``unseen-prompts`` prompts are partitioned by ``prompt_fractions`` (train, pool, test) and answers
    outside a user's groups are dropped; under ``seen-prompts`` each new-user answer goes to test with
    probability ``test_fraction``.
    """
    _check_protocol(protocol)
    if matrix.answer_split is not None:
        splits = matrix.answer_split.astype(str)
        check_split(matrix, splits, protocol)
        return DatasetSplit(*(matrix.subset(splits == name) for name in ("train", "pool", "test")), protocol=protocol)
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
    if protocol == "seen-prompts":
        is_test = new_answer & (rng.random(matrix.n_answers) < test_fraction)
        return DatasetSplit(
            train=matrix.subset(~new_answer),
            pool=matrix.subset(new_answer & ~is_test),
            test=matrix.subset(is_test),
            protocol=protocol,
        )
    codes, prompts = answer_prompts(matrix)
    group = partition_prompts(len(prompts), prompt_fractions, rng)[codes]
    return DatasetSplit(
        train=matrix.subset(~new_answer & (group == "train")),
        pool=matrix.subset(new_answer & (group == "pool")),
        test=matrix.subset(new_answer & (group == "test")),
        protocol=protocol,
    )
