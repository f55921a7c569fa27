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
        """Build from a normalized answers table (see :func:`preflm.data.normalize_frame`)."""
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
        item_prompts = np.asarray(items.get_level_values(0), dtype=object)
        item_responses = np.asarray(items.get_level_values(1), dtype=object)
        item_hash = np.array([_text_hash(p, r) for p, r in zip(item_prompts, item_responses)], dtype=np.uint64)

        if np.any(code_a == code_b):
            row = frame.index[int(np.flatnonzero(code_a == code_b)[0])]
            raise DataError(source, "response_a and response_b are the same text", int(row), "response_b")
        flip = item_hash[code_a] > item_hash[code_b]
        first = np.where(flip, code_b, code_a)
        second = np.where(flip, code_a, code_b)
        value = np.where(flip, 1.0 - frame["preference"].to_numpy(float), frame["preference"].to_numpy(float))
        pair_codes, pair_index = pd.MultiIndex.from_arrays([first, second]).factorize()
        pairs = np.stack([pair_index.get_level_values(0), pair_index.get_level_values(1)], axis=1).astype(np.int64)
        user_codes, user_ids = pd.factorize(frame["user_id"].astype(str))

        columns = {"pair": pair_codes, "user": user_codes, "value": value}
        keys = ["pair", "user"]
        if "split" in frame.columns:
            columns["split"] = frame["split"].to_numpy()
            keys.append("split")
        if "true_reward_a" in frame.columns:
            diff = frame["true_reward_a"].to_numpy(float) - frame["true_reward_b"].to_numpy(float)
            columns["true_diff"] = np.where(flip, -diff, diff)
        table = pd.DataFrame(columns)
        aggregations = {"value": ("value", "mean"), "count": ("value", "size")}
        if "true_diff" in table:
            aggregations["true_diff"] = ("true_diff", "mean")
        cells = table.groupby(keys, sort=False).agg(**aggregations).reset_index()

        item_true_features = None
        if "true_features_a" in frame.columns:
            features = np.zeros((len(item_prompts), len(frame["true_features_a"].iloc[0])))
            features[code_a] = np.asarray(frame["true_features_a"].tolist(), dtype=float)
            features[code_b] = np.asarray(frame["true_features_b"].tolist(), dtype=float)
            item_true_features = features
        return cls(
            item_prompts=item_prompts,
            item_responses=item_responses,
            pairs=pairs,
            user_ids=np.asarray(user_ids, dtype=object),
            answer_pair=cells["pair"].to_numpy(np.int64),
            answer_user=cells["user"].to_numpy(np.int64),
            answer_value=cells["value"].to_numpy(float),
            answer_count=cells["count"].to_numpy(np.int64),
            answer_split=cells["split"].to_numpy(dtype=object) if "split" in cells else None,
            true_reward_diff=cells["true_diff"].to_numpy(float) if "true_diff" in cells else None,
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
