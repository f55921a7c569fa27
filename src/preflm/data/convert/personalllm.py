"""PersonalLLM (Zollo et al. 2025, ``namkoong-lab/PersonalLLM``): simulated users over reward models' scores.

Each row is a ``prompt`` with eight responses ``response_1`` ... ``response_8`` and each response's
score by ten reward models in ``response_<k>_<model>`` (e.g. ``response_3_gemma_7b``). A simulated
user is a Dirichlet(``alpha``) weighting of the reward models, as in the PersonalLLM paper; its reward
of a response is the weighted sum of the scores (each model's scores standardized over the dataset
first, by default, so no model dominates by its scale). Answers prefer the higher reward, or are drawn
Bradley-Terry with ``temperature`` > 0. The true rewards and the standardized scores (the true base
features) are written too, for the oracle and known-phi figures.

Prompts are split first (held-out ones into pool and test by the split config); seen users answer
pairs on train prompts, new users on held-out ones, so nothing is drawn only to be dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from preflm.data.convert.common import (
    ConversionSummary,
    ConvertConfig,
    as_float,
    clean_text,
    finalize,
    open_source,
)
from preflm.data.records import DataError

REWARD_MODELS = (
    "gemma_2b",
    "gemma_7b",
    "mistral_raft",
    "llama3_sfairx",
    "oasst_deberta_v3",
    "beaver_7b",
    "oasst_pythia_7b",
    "oasst_pythia_1b",
    "mistral_ray",
    "mistral_weqweasdas",
)
_SCORE_COLUMN = re.compile(r"^response_(\d+)_(.+)$")


def convert_personalllm(
    source: str | Path,
    config: ConvertConfig | None = None,
    *,
    users: int = 100,
    alpha: float = 0.1,
    answers_per_user: int = 100,
    new_user_answers: int = 100,
    temperature: float = 0.0,
    tie_margin: float = 0.0,
    standardize: bool = True,
    reward_models: str | None = None,
) -> tuple[pd.DataFrame, ConversionSummary]:
    """Answers of ``users`` simulated users: ``answers_per_user`` train answers per seen user and
    ``new_user_answers`` pool+test answers per new user.

    ``reward_models``: comma-separated names to weight (default: every ``response_<k>_<name>`` score
    column present). Reward gaps within ``tie_margin`` are ties.
    """
    if users < 2 or alpha <= 0 or answers_per_user < 1 or new_user_answers < 2 or temperature < 0:
        raise ValueError("need users >= 2, alpha > 0, answers_per_user >= 1, new_user_answers >= 2, temperature >= 0")
    config, summary, rows = open_source("personalllm", source, config)
    names = _reward_models(rows, str(source), reward_models)
    prompts, texts, scores = _table(rows, names, summary)
    if standardize:
        mean = np.nanmean(scores, axis=(0, 1))
        std = np.nanstd(scores, axis=(0, 1))
        scores = (scores - mean) / np.where(std > 0, std, 1.0)
    cells = _pair_cells(prompts, texts, summary)
    split = config.split
    rng = np.random.default_rng(split.seed)
    weights = rng.dirichlet(np.full(len(names), alpha), size=users)
    n_new = min(users - 1, max(1, int(round(split.new_user_fraction * users))))
    is_new = np.zeros(users, dtype=bool)
    is_new[rng.permutation(users)[:n_new]] = True
    heldout = _heldout_prompts(len(prompts), np.unique(cells[:, 0]), split.heldout_fraction, rng, str(source))
    cell_heldout = heldout[cells[:, 0]]
    user_ids = [f"sim:{u:04d}" for u in range(users)]

    candidates = {False: np.flatnonzero(~cell_heldout), True: np.flatnonzero(cell_heldout)}
    frames = []
    for user in range(users):
        pool = candidates[bool(is_new[user])]
        size = min(len(pool), new_user_answers if is_new[user] else answers_per_user)
        picked = cells[rng.choice(pool, size, replace=False)]
        swap = rng.random(size) < 0.5
        first = np.where(swap, picked[:, 2], picked[:, 1])
        second = np.where(swap, picked[:, 1], picked[:, 2])
        features_a, features_b = scores[picked[:, 0], first], scores[picked[:, 0], second]
        reward_a, reward_b = features_a @ weights[user], features_b @ weights[user]
        labels = _answers(reward_a - reward_b, temperature, tie_margin, rng)
        frames.append(
            pd.DataFrame(
                {
                    "user_id": user_ids[user],
                    "prompt": prompts[picked[:, 0]],
                    "response_a": texts[picked[:, 0], first],
                    "response_b": texts[picked[:, 0], second],
                    "preference": labels,
                    "group": picked[:, 0],
                    "heldout": heldout[picked[:, 0]],
                    "true_reward_a": reward_a,
                    "true_reward_b": reward_b,
                    "true_features_a": features_a.tolist(),
                    "true_features_b": features_b.tolist(),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    summary.notes.append(
        f"{users} simulated users ({n_new} new): Dirichlet({alpha}) weights over {len(names)} reward models "
        f"({'standardized' if standardize else 'raw'} scores); "
        + ("answers prefer the higher reward" if temperature == 0 else f"Bradley-Terry answers, temperature {temperature}")
    )
    new_users = {user_ids[u] for u in np.flatnonzero(is_new)}
    return finalize(frame, summary, config, new_users=new_users, heldout_column="heldout"), summary


def _reward_models(rows: list[dict], source: str, requested: str | None) -> list[str]:
    if not rows:
        raise DataError(source, "no rows in the source")
    if "prompt" not in rows[0] or "response_1" not in rows[0]:
        raise DataError(source, f"not the PersonalLLM schema: need 'prompt' and 'response_1'...; found {sorted(rows[0])}", 0)
    present = []
    for column in rows[0]:
        match = _SCORE_COLUMN.match(column)
        if match and match.group(1) == "1" and match.group(2) not in present:
            values = [row.get(column) for row in rows[:50]]
            if any(as_float(v) is not None for v in values) and all(v is None or as_float(v) is not None for v in values):
                present.append(match.group(2))
    if requested:
        names = [name.strip() for name in requested.split(",") if name.strip()]
        missing = [name for name in names if name not in present]
        if missing:
            raise DataError(source, f"no score columns response_<k>_<name> for {missing}; found {present}", 0)
        return names
    if not present:
        raise DataError(source, f"no reward-model score columns (response_<k>_<model>, e.g. {REWARD_MODELS[:2]})", 0)
    return present


def _table(rows: list[dict], names: list[str], summary: ConversionSummary):
    """Prompts (P,), response texts (P, K) with None where unusable, scores (P, K, R) with NaN where missing."""
    k_max = max(int(m.group(1)) for column in rows[0] if (m := re.match(r"^response_(\d+)$", column)))
    prompts = np.empty(len(rows), dtype=object)
    texts = np.full((len(rows), k_max), None, dtype=object)
    scores = np.full((len(rows), k_max, len(names)), np.nan)
    for p, row in enumerate(rows):
        prompts[p], why = clean_text(row.get("prompt"))
        if prompts[p] is None:
            summary.drop(f"prompts without usable text ({why})")
            continue
        for k in range(k_max):
            text, why = clean_text(row.get(f"response_{k + 1}"))
            if text is None:
                summary.drop(f"responses without usable text ({why})")
                continue
            if text in texts[p, :k]:
                summary.drop("responses repeating an earlier response to the same prompt")
                continue
            values = [as_float(row.get(f"response_{k + 1}_{name}")) for name in names]
            if any(v is None for v in values):
                summary.drop("responses with a missing reward-model score")
                continue
            texts[p, k] = text
            scores[p, k] = values
    return prompts, texts, scores


def _pair_cells(prompts: np.ndarray, texts: np.ndarray, summary: ConversionSummary) -> np.ndarray:
    """(prompt, i, j) of every pair of usable responses to one prompt (their texts differ)."""
    first, second = np.triu_indices(texts.shape[1], k=1)
    usable = np.array([[t is not None for t in row] for row in texts], dtype=bool)
    prompt, pair = np.nonzero(usable[:, first] & usable[:, second])
    few = (usable.sum(1) < 2) & np.array([p is not None for p in prompts], dtype=bool)
    summary.drop("prompts with fewer than two usable responses", few.sum())
    return np.stack([prompt, first[pair], second[pair]], axis=1)


def _heldout_prompts(n: int, usable: np.ndarray, fraction: float, rng: np.random.Generator, source: str) -> np.ndarray:
    """Held-out prompts: ``fraction`` of the usable ones, at least two (pool and test), at least one left to train."""
    if len(usable) < 3:
        raise DataError(source, f"{len(usable)} prompt(s) with two usable responses; the split needs three or more")
    n_held = min(len(usable) - 1, max(2, int(round(fraction * len(usable)))))
    heldout = np.zeros(n, dtype=bool)
    heldout[rng.permutation(usable)[:n_held]] = True
    return heldout


def _answers(gap: np.ndarray, temperature: float, tie_margin: float, rng: np.random.Generator) -> np.ndarray:
    """``a`` / ``b`` / ``tie`` per reward gap: the higher reward, or Bradley-Terry draws when temperature > 0."""
    if temperature > 0:
        prefer_a = rng.random(len(gap)) < expit(gap / temperature)
    else:
        prefer_a = gap > 0
    return np.where(np.abs(gap) <= tie_margin, "tie", np.where(prefer_a, "a", "b"))
