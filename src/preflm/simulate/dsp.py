"""Domain-Specific Preference (DSP) data as multi-user answers in the standard format.

Each DSP item is a query with five responses, one per source (academy, business, entertainment,
literature, normal). A user is a weighting over the sources (the five pure-domain users plus random
mixtures); the reward of a response is the weight of its source, so the true base features are the
source indicator, giving an oracle and a known-phi bound. Answers are drawn Bradley-Terry.

By default (``protocol="unseen-prompts"``) the queries are partitioned into train / pool / test
groups: seen users answer on train queries only, new users are asked on pool queries and tested on
test queries, so the evaluation measures base rewards on queries no one has rated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from preflm.data.split import DEFAULT_PROMPT_FRACTIONS, PROTOCOLS, partition_prompts
from preflm.simulate.world import simulate_preferences

SOURCES = ("academy", "business", "entertainment", "literature", "normal")


def dsp_users(n_mixture: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Five pure-domain users and ``n_mixture`` Dirichlet mixtures over the sources."""
    pure = np.eye(len(SOURCES))
    mixed = rng.dirichlet(np.full(len(SOURCES), 0.5), size=n_mixture)
    names = [f"domain:{s}" for s in SOURCES] + [f"mix:{i:03d}" for i in range(n_mixture)]
    return names, np.vstack([pure, mixed])


def dsp_frame(
    source_json: str | Path,
    seed: int = 0,
    n_mixture_users: int = 55,
    new_user_fraction: float = 0.25,
    train_answers_per_user: int = 300,
    pool_size: int = 120,
    test_size: int = 100,
    temperature: float = 0.1,
    tie_margin: float = 0.02,
    protocol: str = "unseen-prompts",
    prompt_fractions: tuple[float, float, float] = DEFAULT_PROMPT_FRACTIONS,
    extra_new_users: int = 0,
) -> pd.DataFrame:
    """Answers table (with split, true rewards and true features) built from the DSP json file.

    Items with a missing or empty response are left out (one in the public file), and so are pairs
    whose two responses are the same text (some domain answers repeat the Alpaca one) and repeats of
    a pair already listed (a few queries occur twice), so no new user is tested on a question it was asked.
    Under ``unseen-prompts`` the groups partition the distinct query texts (``prompt_fractions``: train,
    pool, test), so a repeated query never straddles two groups.

    ``extra_new_users`` adds that many more new (mixture) users, drawn after all the others from a stream
    of their own: every other row stays exactly as without them, so a larger test population leaves the
    seen users' answers, and so the trained model, unchanged.
    """
    if extra_new_users < 0:
        raise ValueError(f"extra_new_users must be >= 0, got {extra_new_users}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    items = [
        item
        for item in json.loads(Path(source_json).read_text())
        if all(isinstance(item["responses"].get(s), str) and item["responses"][s].strip() for s in SOURCES)
    ]
    rng = np.random.default_rng(seed)
    names, weights = dsp_users(n_mixture_users, rng)
    n_users = len(names)
    is_new = np.zeros(n_users, dtype=bool)
    is_new[rng.choice(n_users, max(1, int(round(new_user_fraction * n_users))), replace=False)] = True
    first, second = np.triu_indices(len(SOURCES), k=1)
    query = np.repeat(np.arange(len(items)), len(first))
    src_a, src_b = np.tile(first, len(items)), np.tile(second, len(items))
    seen: set[tuple[str, frozenset]] = set()
    keep = np.zeros(len(query), dtype=bool)
    for i, (q, a, b) in enumerate(zip(query, src_a, src_b)):
        texts = frozenset((items[q]["responses"][SOURCES[a]].strip(), items[q]["responses"][SOURCES[b]].strip()))
        key = (items[q]["query"], texts)
        keep[i] = len(texts) == 2 and key not in seen
        seen.add(key)
    query, src_a, src_b = query[keep], src_a[keep], src_b[keep]
    n_pairs = len(query)
    if protocol == "unseen-prompts":
        texts, code = np.unique([items[q]["query"] for q in query], return_inverse=True)
        group = partition_prompts(len(texts), prompt_fractions, rng)[code.reshape(-1)]
    else:
        group = np.full(n_pairs, "any")
    by_group = {g: np.flatnonzero(group == g) for g in np.unique(group)}
    wanted = [("train", train_answers_per_user), ("pool", pool_size), ("test", test_size)]
    if protocol == "seen-prompts":
        wanted = [("any", train_answers_per_user), ("any", pool_size + test_size)]
    for name, need in wanted:
        if need > len(by_group[name]):
            raise ValueError(
                f"DSP {protocol}: {need} answers per user need as many distinct pairs, "
                f"but the {name} queries have only {len(by_group[name])}"
            )
    rows: list[dict] = []

    def answer(user_id: str, user_weights: np.ndarray, new: bool, draws: np.random.Generator) -> None:
        """Append one user's rows: train answers for a seen user, pool and test answers for a new one."""
        if new and protocol == "unseen-prompts":
            asked = np.concatenate([draws.choice(by_group["pool"], pool_size, replace=False),
                                    draws.choice(by_group["test"], test_size, replace=False)])
            split = np.array(["pool"] * pool_size + ["test"] * test_size)
        elif new:
            asked = draws.choice(n_pairs, pool_size + test_size, replace=False)
            split = np.array(["pool"] * pool_size + ["test"] * test_size)
        else:
            asked = draws.choice(by_group["train" if protocol == "unseen-prompts" else "any"],
                               train_answers_per_user, replace=False)
            split = np.full(len(asked), "train")
        swap = draws.random(len(asked)) < 0.5
        a = np.where(swap, src_b[asked], src_a[asked])
        b = np.where(swap, src_a[asked], src_b[asked])
        eye = np.eye(len(SOURCES))
        answers = simulate_preferences(user_weights, eye[a], eye[b], temperature, tie_margin, draws)
        for i, q in enumerate(query[asked]):
            responses = items[q]["responses"]
            rows.append(
                {
                    "user_id": user_id,
                    "prompt": items[q]["query"],
                    "response_a": responses[SOURCES[a[i]]],
                    "response_b": responses[SOURCES[b[i]]],
                    "preference": {1.0: "a", 0.0: "b", 0.5: "tie"}[answers[i]],
                    "split": split[i],
                    "true_reward_a": float(user_weights[a[i]]),
                    "true_reward_b": float(user_weights[b[i]]),
                    "true_features_a": eye[a[i]].tolist(),
                    "true_features_b": eye[b[i]].tolist(),
                }
            )

    for user in range(n_users):
        answer(names[user], weights[user], bool(is_new[user]), rng)
    extra_rng = np.random.default_rng([seed, 1])
    extra_weights = extra_rng.dirichlet(np.full(len(SOURCES), 0.5), size=extra_new_users)
    for i, user_weights in enumerate(extra_weights):
        answer(f"mix:{n_mixture_users + i:03d}", user_weights, True, extra_rng)
    return pd.DataFrame(rows)


def write_dsp_dataset(source_json: str | Path, out_path: str | Path, seed: int = 0, **kwargs) -> Path:
    """Convert the DSP json into a JSONL dataset in the standard format."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame = dsp_frame(source_json, seed=seed, **kwargs)
    tmp = out_path.with_suffix(".tmp")
    frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    tmp.replace(out_path)
    return out_path
