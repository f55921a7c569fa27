"""The unseen-prompt split: seen users train; new users are onboarded and tested on prompts nobody trained on.

Rows are (user, prompt) answers. New users are drawn at random; prompts are linked into *units* (a
prompt, plus every prompt sharing a ``group`` with it, e.g. the turns of one conversation, or the
same post) and each unit goes to one side: ``train`` for seen users, held out for new users, where it
is ``pool`` (questions to ask) or ``test`` (to score). So no pool or test prompt appears in a train
row, and pool and test prompts are disjoint. Answers on the wrong side are dropped and counted.

A unit only seen users answered goes to train and one only new users answered is held out, so
datasets whose prompts are each one user's own (PRISM, Chatbot Arena) lose nearly nothing; a unit
both kinds answered is held out with probability ``heldout_fraction``. A new user's own units are
split between pool and test per user (``test_fraction`` of them, at least one each), so every new
user with two or more units gets both; shared held-out units are drawn, and if all land on one side
one is moved across, so neither pool nor test is ever empty.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

DROP_SEEN = "answers of seen users on held-out prompts"
DROP_NEW = "answers of new users on training prompts"


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of the unseen-prompt split.

    ``new_user_fraction`` of users are new; a prompt unit answered by both seen and new users is
    held out with probability ``heldout_fraction``; ``test_fraction`` of held-out units are test.
    """

    new_user_fraction: float = 0.2
    heldout_fraction: float = 0.3
    test_fraction: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("new_user_fraction", "heldout_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")


def prompt_units(frame: pd.DataFrame, group_column: str | None = None) -> np.ndarray:
    """Unit index per row: connected components of prompts linked by equal text or a shared group."""
    prompt_code, prompts = pd.factorize(frame["prompt"])
    if group_column is None or group_column not in frame.columns:
        return prompt_code.astype(np.int64)
    group_code, groups = pd.factorize(frame[group_column].astype(str))
    n_prompts, n_nodes = len(prompts), len(prompts) + len(groups)
    edges = coo_matrix(
        (np.ones(len(frame)), (prompt_code, n_prompts + group_code)), shape=(n_nodes, n_nodes)
    )
    _, labels = connected_components(edges, directed=False)
    return pd.factorize(labels[prompt_code])[0].astype(np.int64)


def assign_unseen_prompt_split(
    frame: pd.DataFrame,
    config: SplitConfig | None = None,
    group_column: str | None = None,
    new_users: Collection[str] | None = None,
    heldout_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows with a ``split`` column (train / pool / test), and counts of the rows dropped by reason.

    ``new_users`` fixes the new users instead of drawing ``new_user_fraction`` of them;
    ``heldout_column`` (booleans) fixes each unit's side instead: a unit is held out when any of its
    rows is marked (e.g. a dataset's own validation posts). Deterministic given the seed and rows.
    """
    config = config or SplitConfig()
    rng = np.random.default_rng(config.seed)
    frame = frame.reset_index(drop=True)
    unit = prompt_units(frame, group_column)
    n_units = int(unit.max()) + 1 if len(unit) else 0
    user_code, users = pd.factorize(frame["user_id"].astype(str))
    if new_users is None:
        if len(users) < 2:
            raise ValueError(f"need at least two users to split, got {len(users)}")
        n_new = min(len(users) - 1, max(1, int(round(config.new_user_fraction * len(users)))))
        ordered = np.sort(np.asarray(users, dtype=object))
        chosen = set(ordered[rng.permutation(len(ordered))[:n_new]])
    else:
        chosen = {str(u) for u in new_users}
    is_new_user = pd.Index(users).isin(list(chosen))
    row_new = is_new_user[user_code]

    side_draw = rng.random(n_units) < config.heldout_fraction
    test_draw = rng.random(n_units) < config.test_fraction
    unit_key = rng.random(n_units)
    if heldout_column is not None:
        heldout = np.zeros(n_units, dtype=bool)
        heldout[unit[frame[heldout_column].to_numpy(bool)]] = True
    else:
        seen_count = np.bincount(unit[~row_new], minlength=n_units)
        new_count = np.bincount(unit[row_new], minlength=n_units)
        heldout = np.where(new_count == 0, False, np.where(seen_count == 0, True, side_draw))

    is_test = test_draw.copy()
    held_new = row_new & heldout[unit]
    owners = (
        pd.DataFrame({"unit": unit[held_new], "user": user_code[held_new]})
        .drop_duplicates()
        .groupby("unit")["user"]
        .agg(["nunique", "first"])
    )
    owned = owners[owners["nunique"] == 1]
    if len(owned):
        units = owned.index.to_numpy()
        table = pd.DataFrame({"owner": owned["first"].to_numpy(), "key": unit_key[units]})
        rank = table.groupby("owner")["key"].rank(method="first").to_numpy() - 1
        k = table.groupby("owner")["key"].transform("size").to_numpy()
        n_test = np.clip(np.rint(config.test_fraction * k), 1, np.maximum(k - 1, 1))
        per_user = k >= 2
        is_test[units[per_user]] = rank[per_user] < n_test[per_user]

    used = np.unique(unit[held_new])
    if len(used) >= 2 and len(np.unique(is_test[used])) == 1:
        flip = used[np.argmin(unit_key[used])]  # all held-out units landed on one side: move one across
        is_test[flip] = not is_test[flip]

    row_held = heldout[unit]
    split = np.where(
        row_new,
        np.where(row_held, np.where(is_test[unit], "test", "pool"), DROP_NEW),
        np.where(row_held, DROP_SEEN, "train"),
    )
    drops = {reason: int((split == reason).sum()) for reason in (DROP_SEEN, DROP_NEW)}
    keep = np.isin(split, ("train", "pool", "test"))
    out = frame.loc[keep].copy()
    out["split"] = split[keep]
    return out, drops


def check_unseen_prompt_split(frame: pd.DataFrame) -> None:
    """Raise ValueError unless users are seen or new (not both) and train, pool and test prompts are disjoint."""
    split = frame["split"].to_numpy()
    bad = ~np.isin(split, ("train", "pool", "test"))
    if bad.any():
        raise ValueError(f"row {int(np.flatnonzero(bad)[0])}: unknown split {split[bad][0]!r}")
    user, prompt = frame["user_id"].to_numpy(), frame["prompt"].to_numpy()
    both = np.intersect1d(user[split == "train"].astype(str), user[split != "train"].astype(str))
    if both.size:
        raise ValueError(f"user {str(both[0])!r} has both train and pool/test answers")
    for first, second in (("train", "pool"), ("train", "test"), ("pool", "test")):
        shared = set(prompt[split == first]) & set(prompt[split == second])
        if shared:
            example = next(iter(shared))
            raise ValueError(f"prompt {example[:60]!r} is in both {first} and {second} rows")
