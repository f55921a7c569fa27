"""The pairs x users answer matrix, stored sparsely.

Texts are interned once: *items* are unique (prompt, response) texts, *pairs* are unordered item
pairs oriented by a content hash (so "chosen first" files do not make every label 1), and *answers*
are (pair, user, value) triples. Repeated answers of one user to one pair are averaged into one
cell (two opposite answers become a tie) and counted, so nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from preflm.data.records import DataError


def _text_hash(prompt: str, response: str) -> int:
    digest = hashlib.blake2b(f"{prompt}\x00{response}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class AnswerMatrix:
    """Sparse pairs x users answer matrix with its interned texts."""

    item_prompts: np.ndarray
    item_responses: np.ndarray
    pairs: np.ndarray
    user_ids: np.ndarray
    answer_pair: np.ndarray
    answer_user: np.ndarray
    answer_value: np.ndarray
    answer_count: np.ndarray
    answer_split: np.ndarray | None = None
    true_reward_diff: np.ndarray | None = None
    item_true_features: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.item_prompts)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_answers(self) -> int:
        return len(self.answer_value)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "<answers>") -> "AnswerMatrix":
        """Build from a normalized answers table (see :func:`preflm.data.normalize_frame`).

        Items are numbered in order of first appearance over all ``response_a`` texts, then all
        ``response_b`` texts; :meth:`from_ids` does the rest.
        """
        texts = pd.concat(
            [
                pd.DataFrame({"prompt": frame["prompt"], "response": frame["response_a"]}),
                pd.DataFrame({"prompt": frame["prompt"], "response": frame["response_b"]}),
            ],
            ignore_index=True,
        )
        item_codes, items = pd.MultiIndex.from_frame(texts).factorize()
        n = len(frame)
        code_a, code_b = item_codes[:n], item_codes[n:]
        user_codes, user_ids = pd.factorize(frame["user_id"].astype(str))
        split_codes = split_labels = None
        if "split" in frame.columns:
            split_codes, split_labels = pd.factorize(frame["split"].to_numpy())
        true_diff = None
        if "true_reward_a" in frame.columns:
            true_diff = frame["true_reward_a"].to_numpy(float) - frame["true_reward_b"].to_numpy(float)
        item_true_features = None
        if "true_features_a" in frame.columns:
            item_true_features = np.zeros((len(items), len(frame["true_features_a"].iloc[0])))
            item_true_features[code_a] = np.asarray(frame["true_features_a"].tolist(), dtype=float)
            item_true_features[code_b] = np.asarray(frame["true_features_b"].tolist(), dtype=float)
        return cls.from_ids(
            item_prompts=np.asarray(items.get_level_values(0), dtype=object),
            item_responses=np.asarray(items.get_level_values(1), dtype=object),
            item_a=code_a,
            item_b=code_b,
            user=user_codes,
            user_ids=np.asarray(user_ids, dtype=object),
            preference=frame["preference"].to_numpy(float),
            split=split_codes,
            split_labels=split_labels,
            true_reward_diff=true_diff,
            item_true_features=item_true_features,
            rows=frame.index.to_numpy(),
            source=source,
        )

    @classmethod
    def from_ids(
        cls,
        item_prompts: np.ndarray,
        item_responses: np.ndarray,
        item_a: np.ndarray,
        item_b: np.ndarray,
        user: np.ndarray,
        user_ids: np.ndarray,
        preference: np.ndarray,
        split: np.ndarray | None = None,
        split_labels: np.ndarray | None = None,
        true_reward_diff: np.ndarray | None = None,
        item_true_features: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        source: str = "<answers>",
    ) -> "AnswerMatrix":
        """Build from integer ids: one row per answer (items ``item_a``/``item_b``, ``user``, ``preference``).

        The one implementation of orientation (a pair's items ordered by content hash, the label flipped
        with them), pair numbering (first appearance) and cells (repeated answers of a user to a pair,
        within one split, averaged and counted, in order of first appearance). ``split`` holds codes
        into ``split_labels``; ``rows`` (the file's row numbers) only name the row in errors.
        """
        item_a = np.asarray(item_a, dtype=np.int64)
        item_b = np.asarray(item_b, dtype=np.int64)
        preference = np.asarray(preference, dtype=np.float64)
        same = item_a == item_b
        if same.any():
            first_bad = int(np.flatnonzero(same)[0])
            row = int(rows[first_bad]) if rows is not None else first_bad
            raise DataError(source, "response_a and response_b are the same text", row, "response_b")
        item_hash = np.array([_text_hash(p, r) for p, r in zip(item_prompts, item_responses)], dtype=np.uint64)
        flip = item_hash[item_a] > item_hash[item_b]
        first = np.where(flip, item_b, item_a)
        second = np.where(flip, item_a, item_b)
        del item_a, item_b
        value = np.where(flip, 1.0 - preference, preference)
        n_items = max(len(item_prompts), 1)
        pair_codes, pair_keys = pd.factorize(first * n_items + second)
        del first, second
        pairs = np.stack([pair_keys // n_items, pair_keys % n_items], axis=1).astype(np.int64)

        n_users = max(len(user_ids), 1)
        key = pair_codes.astype(np.int64) * n_users + np.asarray(user, dtype=np.int64)
        if split is not None:
            n_splits = max(len(split_labels), 1)
            key = key * n_splits + np.asarray(split, dtype=np.int64)
        cell, cell_keys = pd.factorize(key)
        del key
        count = np.bincount(cell, minlength=len(cell_keys))
        mean = lambda values: np.bincount(cell, weights=values, minlength=len(cell_keys)) / count  # noqa: E731
        answer_split = None
        if split is not None:
            answer_split = np.asarray(split_labels, dtype=object)[cell_keys % n_splits]
            cell_keys = cell_keys // n_splits
        diff = None
        if true_reward_diff is not None:
            diff = mean(np.where(flip, -np.asarray(true_reward_diff, dtype=float), true_reward_diff))
        return cls(
            item_prompts=np.asarray(item_prompts, dtype=object),
            item_responses=np.asarray(item_responses, dtype=object),
            pairs=pairs,
            user_ids=np.asarray(user_ids, dtype=object),
            answer_pair=(cell_keys // n_users).astype(np.int64),
            answer_user=(cell_keys % n_users).astype(np.int64),
            answer_value=mean(value),
            answer_count=count.astype(np.int64),
            answer_split=answer_split,
            true_reward_diff=diff,
            item_true_features=item_true_features,
        )

    def subset(self, mask: np.ndarray) -> "AnswerMatrix":
        """The same items, pairs and users with only the selected answers."""
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return replace(
            self,
            answer_pair=self.answer_pair[mask],
            answer_user=self.answer_user[mask],
            answer_value=self.answer_value[mask],
            answer_count=self.answer_count[mask],
            answer_split=pick(self.answer_split),
            true_reward_diff=pick(self.true_reward_diff),
        )

    def answered_users(self) -> np.ndarray:
        """Indices of users with at least one answer in this matrix, in index order."""
        return np.unique(self.answer_user)

    def dense(self, users: np.ndarray | None = None) -> np.ndarray:
        """(pairs x users) array of answers with NaN where missing; columns follow ``users``."""
        users = self.answered_users() if users is None else np.asarray(users)
        column = np.full(self.n_users, -1, dtype=np.int64)
        column[users] = np.arange(len(users))
        keep = column[self.answer_user] >= 0
        out = np.full((self.n_pairs, len(users)), np.nan)
        out[self.answer_pair[keep], column[self.answer_user[keep]]] = self.answer_value[keep]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Back to a table: one row per cell, pairs in stored orientation.

        ``preference`` is the cell's mean answer (1, 0, 0.5, or e.g. 2/3 for a pair answered three
        times) and ``count`` how many answers it averages, so nothing collapses silently.
        """
        a, b = self.pairs[self.answer_pair, 0], self.pairs[self.answer_pair, 1]
        frame = pd.DataFrame(
            {
                "user_id": self.user_ids[self.answer_user],
                "prompt": self.item_prompts[a],
                "response_a": self.item_responses[a],
                "response_b": self.item_responses[b],
                "preference": self.answer_value,
                "count": self.answer_count,
            }
        )
        if self.answer_split is not None:
            frame["split"] = self.answer_split
        return frame
