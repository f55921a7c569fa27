"""The Attributes world: simulated users judging styled answers to bank prompts.

Each user's true reward of a text is ``weights @ score_texts([text])[0]``, a
weighted sum of the seven attribute scores (the PReF setting with known base
rewards). Users answer pairwise comparisons by a Bradley-Terry draw on their
reward difference. ``build_world`` samples candidates, users and answers from
one seed, so the same config always gives the same dataset.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from preflm.data.split import DEFAULT_PROMPT_FRACTIONS, PROTOCOLS, partition_prompts

from .attributes import ATTRIBUTE_NAMES, ATTRIBUTES, score_texts
from .bank import PROMPTS, PromptEntry
from .styles import DEFAULT_STYLE_PROBS, candidates_for_prompt

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TIE_MARGIN",
    "FRAME_COLUMNS",
    "User",
    "World",
    "WorldConfig",
    "build_world",
    "load_users",
    "mixture_users",
    "oracle_accuracy",
    "paper_users",
    "simulate_preferences",
    "template_training_answers",
    "true_reward",
    "users_path",
    "world_from_texts",
    "write_world",
]

DEFAULT_TEMPERATURE = 0.2
"""Bradley-Terry temperature on reward differences (rewards span about [-2, 2]).

Tuned so the default world's oracle accuracy (answers agreeing with the sign of
the true reward gap, ties excluded) is about 92%."""
DEFAULT_TIE_MARGIN = 0.02
"""Reward gaps below this are answered as ties."""
MIXTURE_L1 = 2.0
"""L1 norm of mixture users' weights: the same as a paper user's two +-1 weights."""

FRAME_COLUMNS = [
    "user_id",
    "prompt",
    "response_a",
    "response_b",
    "preference",
    "split",
    "true_reward_a",
    "true_reward_b",
    "true_features_a",
    "true_features_b",
]


def paper_users() -> tuple[list[str], np.ndarray]:
    """The 84 users of the PReF paper: every pair of poles of two different attributes.

    Weight +1 for a chosen first pole, -1 for a chosen second pole, 0 elsewhere.
    Names look like ``"paper:verbose+formal"``.
    """
    names: list[str] = []
    rows: list[np.ndarray] = []
    for i, j in combinations(range(len(ATTRIBUTES)), 2):
        for si in (1, -1):
            for sj in (1, -1):
                w = np.zeros(len(ATTRIBUTES))
                w[i], w[j] = si, sj
                pole_i = ATTRIBUTES[i].positive if si > 0 else ATTRIBUTES[i].negative
                pole_j = ATTRIBUTES[j].positive if sj > 0 else ATTRIBUTES[j].negative
                names.append(f"paper:{pole_i}+{pole_j}")
                rows.append(w)
    return names, np.stack(rows)


def mixture_users(n: int, rng: np.random.Generator, alpha: float = 0.5) -> tuple[list[str], np.ndarray]:
    """``n`` users who mix all attributes: Dirichlet(alpha) magnitudes times random signs.

    Weights are scaled to L1 norm ``MIXTURE_L1`` so rewards share the paper users' scale.
    Names look like ``"mix:003"``.
    """
    k = len(ATTRIBUTES)
    magnitudes = rng.dirichlet(np.full(k, alpha), size=n)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n, k))
    return [f"mix:{i:03d}" for i in range(n)], MIXTURE_L1 * magnitudes * signs


def simulate_preferences(
    weights: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    temperature: float = DEFAULT_TEMPERATURE,
    tie_margin: float = DEFAULT_TIE_MARGIN,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Draw one answer per row: 1.0 if a is preferred, 0.0 if b, 0.5 for a tie.

    Row i is judged by ``weights[i]`` (or one shared (7,) weight vector) with
    Bradley-Terry P(a) = sigmoid((r_a - r_b) / temperature); gaps smaller than
    ``tie_margin`` are ties. ``rng`` defaults to a fixed seed so results stay
    reproducible.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    a = np.atleast_2d(np.asarray(scores_a, dtype=float))
    b = np.atleast_2d(np.asarray(scores_b, dtype=float))
    w = np.broadcast_to(np.asarray(weights, dtype=float), a.shape)
    gap = np.einsum("ij,ij->i", w, a - b)
    p_a = 0.5 * (1.0 + np.tanh(gap / (2.0 * temperature)))
    draws = rng.random(len(gap))
    answers = (draws < p_a).astype(float)
    answers[np.abs(gap) < tie_margin] = 0.5
    return answers


def true_reward(user_weights: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """True reward of texts: shape (n,) for one (7,) user, (n, U) for (U, 7) users."""
    return score_texts(list(texts)) @ np.asarray(user_weights, dtype=float).T


def oracle_accuracy(frame: pd.DataFrame) -> float:
    """Share of non-tie answers that agree with the sign of the true reward gap."""
    decided = frame[frame["preference"] != "tie"]
    truth = np.where(decided["true_reward_a"] > decided["true_reward_b"], "a", "b")
    return float(np.mean(truth == decided["preference"].to_numpy()))


@dataclass
class WorldConfig:
    """Knobs of ``build_world``; the defaults give ~120 users and ~34k answers.

    ``protocol="unseen-prompts"`` (default) partitions the prompts by ``prompt_fractions`` (train,
    pool, test): seen users answer on train prompts only, new users are asked on pool prompts and
    tested on test prompts. ``"seen-prompts"`` draws everyone's pairs from all prompts.
    """

    seed: int = 0
    n_prompts: int | None = None
    candidates_per_prompt: int = 6
    n_mixture_users: int = 36
    n_new_users: float | int = 0.25
    train_answers_per_user: int = 300
    pool_size: int = 120
    test_size: int = 100
    temperature: float = DEFAULT_TEMPERATURE
    tie_margin: float = DEFAULT_TIE_MARGIN
    style_probs: tuple[float, float, float] = DEFAULT_STYLE_PROBS
    protocol: str = "unseen-prompts"
    prompt_fractions: tuple[float, float, float] = DEFAULT_PROMPT_FRACTIONS

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")


@dataclass(frozen=True)
class User:
    """A simulated user: reward = weights . attribute scores; new users are held out."""

    user_id: str
    weights: np.ndarray
    is_new: bool


@dataclass
class World:
    """Candidates, users and answers of one simulated world.

    Candidate c answers ``prompts[cand_prompt[c]]`` with ``texts[c]`` written in
    ``styles[c]`` (a level per attribute; no columns when the texts came from
    elsewhere, see ``world_from_texts``), scoring ``scores[c]``. Answer k is user ``answer_user[k]``
    comparing candidates ``answer_a[k]`` and ``answer_b[k]`` (1.0 = a preferred,
    0.0 = b, 0.5 = tie) in split ``answer_split[k]``.
    """

    config: WorldConfig
    prompts: list[PromptEntry]
    cand_prompt: np.ndarray
    texts: list[str]
    styles: np.ndarray
    scores: np.ndarray
    users: list[User]
    answer_user: np.ndarray
    answer_a: np.ndarray
    answer_b: np.ndarray
    answer: np.ndarray
    answer_split: np.ndarray
    weights: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.weights = np.stack([u.weights for u in self.users])

    def to_frame(self) -> pd.DataFrame:
        """One row per answer with the columns of ``FRAME_COLUMNS``."""
        u, a, b = self.answer_user, self.answer_a, self.answer_b
        w = self.weights[u]
        ids = np.array([x.user_id for x in self.users], dtype=object)
        questions = np.array([p.question for p in self.prompts], dtype=object)
        texts = np.array(self.texts, dtype=object)
        preference = np.where(self.answer == 1.0, "a", np.where(self.answer == 0.0, "b", "tie"))
        return pd.DataFrame(
            {
                "user_id": ids[u],
                "prompt": questions[self.cand_prompt[a]],
                "response_a": texts[a],
                "response_b": texts[b],
                "preference": preference.astype(object),
                "split": self.answer_split.astype(object),
                "true_reward_a": np.einsum("ij,ij->i", w, self.scores[a]),
                "true_reward_b": np.einsum("ij,ij->i", w, self.scores[b]),
                "true_features_a": self.scores[a].tolist(),
                "true_features_b": self.scores[b].tolist(),
            },
            columns=FRAME_COLUMNS,
        )

    def users_frame(self) -> pd.DataFrame:
        """One row per user: user_id, is_new, weights (list of 7 floats)."""
        return pd.DataFrame(
            {
                "user_id": [u.user_id for u in self.users],
                "is_new": [u.is_new for u in self.users],
                "weights": [u.weights.tolist() for u in self.users],
            }
        )

    def candidates_frame(self) -> pd.DataFrame:
        """One row per candidate response: prompt_id, prompt, text, style, scores."""
        return pd.DataFrame(
            {
                "prompt_id": [self.prompts[i].prompt_id for i in self.cand_prompt],
                "prompt": [self.prompts[i].question for i in self.cand_prompt],
                "text": self.texts,
                "style": self.styles.tolist(),
                "scores": self.scores.tolist(),
            }
        )

    def write(self, path: str | Path, extra_answers: pd.DataFrame | None = None) -> Path:
        """Write answers as JSONL at ``path`` and users to ``users_path(path)``.

        ``extra_answers`` (rows of ``to_frame``'s columns by the same users, e.g. ``template_training_answers``)
        are written after the world's own."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = self.to_frame()
        if extra_answers is not None:
            unknown = set(extra_answers["user_id"]) - {u.user_id for u in self.users}
            if list(extra_answers.columns) != FRAME_COLUMNS or unknown:
                raise ValueError(f"extra answers need the columns {FRAME_COLUMNS} and this world's users "
                                 f"(unknown: {sorted(unknown)[:3]})")
            frame = pd.concat([frame, extra_answers], ignore_index=True)
        frame.to_json(path, orient="records", lines=True, force_ascii=False, double_precision=15)
        sidecar = {
            "attributes": ATTRIBUTE_NAMES,
            "poles": [[a.positive, a.negative] for a in ATTRIBUTES],
            "config": asdict(self.config),
            "users": self.users_frame().to_dict(orient="records"),
        }
        users_path(path).write_text(json.dumps(sidecar, indent=1) + "\n")
        return path


def users_path(path: str | Path) -> Path:
    """Sidecar holding the users of the world written at ``path``: ``<stem>.users.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".users.json")


def load_users(path: str | Path) -> dict[str, np.ndarray]:
    """Users' weights by user_id, from a sidecar or from the JSONL it sits beside."""
    path = Path(path)
    if not path.name.endswith(".users.json"):
        path = users_path(path)
    data = json.loads(path.read_text())
    return {u["user_id"]: np.asarray(u["weights"], dtype=float) for u in data["users"]}


def _count_new(spec: float | int, total: int) -> int:
    """Number of held-out users: a fraction in [0, 1] (float) or a count (int)."""
    if isinstance(spec, bool):
        raise TypeError("n_new_users must be a fraction or a count, not a bool")
    if isinstance(spec, numbers.Integral):
        k = int(spec)
    elif 0.0 <= float(spec) <= 1.0:
        k = int(round(float(spec) * total))
    else:
        raise ValueError(f"n_new_users as a float must be a fraction in [0, 1], got {spec}")
    if not 0 <= k <= total:
        raise ValueError(f"n_new_users={spec} is outside [0, {total}] users")
    return k


def build_world(config: WorldConfig | None = None, prompts: Sequence[PromptEntry] | None = None) -> World:
    """Sample candidates, users and answers for ``config``; deterministic in ``config.seed``.

    ``prompts`` replaces the bank (then ``config.n_prompts`` must be unset). The users and the prompt split
    depend only on the seed and the number of prompts, so a world built here and one from ``world_from_texts``
    over the same prompts and config share both: see ``template_training_answers``.
    """
    cfg = WorldConfig() if config is None else config
    k = cfg.candidates_per_prompt
    if k < 2:
        raise ValueError("candidates_per_prompt must be at least 2 to form pairs")
    streams = _streams(cfg.seed)
    rng_prompts, rng_cands = streams[:2]

    if prompts is not None:
        if cfg.n_prompts is not None:
            raise ValueError("give either prompts or config.n_prompts, not both")
        if not prompts:
            raise ValueError("prompts is empty: the world needs at least one prompt")
        prompts = list(prompts)
    elif cfg.n_prompts is not None:
        if not 1 <= cfg.n_prompts <= len(PROMPTS):
            raise ValueError(f"n_prompts must be in [1, {len(PROMPTS)}], got {cfg.n_prompts}")
        keep = np.sort(rng_prompts.choice(len(PROMPTS), size=cfg.n_prompts, replace=False))
        prompts = [PROMPTS[int(i)] for i in keep]
    else:
        prompts = list(PROMPTS)

    texts: list[str] = []
    styles: list[np.ndarray] = []
    for entry in prompts:
        for text, style in candidates_for_prompt(entry, k, rng_cands, cfg.style_probs):
            texts.append(text)
            styles.append(style)
    return _answer(cfg, prompts, texts, np.stack(styles).astype(np.int8), streams[2:])


def world_from_texts(
    prompts: Sequence[PromptEntry], texts: Sequence[Sequence[str]], config: WorldConfig | None = None
) -> World:
    """The world's users and answers over given answers (``texts[p]`` answer ``prompts[p]``), e.g. an LLM's samples.

    The users, the prompt split and the answers are drawn as in ``build_world`` (same seed streams), so
    ``build_world``'s own texts give ``build_world``'s world; ``config.n_prompts``, ``candidates_per_prompt``
    and ``style_probs`` do not apply, and the candidates have no style labels (``styles`` has no columns).
    Every prompt needs the same number of distinct, non-blank answers: a pair of equal texts is no question.
    """
    cfg = WorldConfig() if config is None else config
    if len(prompts) != len(texts) or not prompts:
        raise ValueError(f"need one list of answers per prompt, got {len(texts)} lists for {len(prompts)} prompts")
    sizes = {len(row) for row in texts}
    if len(sizes) != 1 or min(sizes) < 2:
        raise ValueError(f"every prompt needs the same number (at least 2) of answers, got sizes {sorted(sizes)}")
    for entry, row in zip(prompts, texts):
        stripped = [str(t).strip() for t in row]
        if not all(stripped) or len(set(stripped)) < len(stripped):
            raise ValueError(f"prompt {entry.prompt_id!r} has a blank or repeated answer; every answer must be distinct")
    flat = [str(t) for row in texts for t in row]
    styles = np.zeros((len(flat), 0), dtype=np.int8)
    return _answer(replace(cfg, candidates_per_prompt=sizes.pop()), list(prompts), flat, styles, _streams(cfg.seed)[2:])


def template_training_answers(prompts: Sequence[PromptEntry], config: WorldConfig | None = None) -> pd.DataFrame:
    """Seen users' training answers over the world's own template answers to ``prompts`` (``to_frame`` rows).

    Supervision with more contrast than an LLM's answers, whose styles vary little: appended to the
    answers of ``world_from_texts(prompts, llm_texts, config)``, they come from the same users and lie only
    on that world's training prompts, so its new users' pool and test prompts stay unrated. The template
    world has ``config.candidates_per_prompt`` answers per prompt, whatever the LLM world has.
    """
    frame = build_world(config, prompts).to_frame()
    return frame[frame["split"] == "train"].reset_index(drop=True)


def _streams(seed: int) -> list[np.random.Generator]:
    """The world's seven random streams: prompts, candidates, users, new users, pairs, answers, prompt groups."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]


def _answer(cfg: WorldConfig, prompts: list[PromptEntry], texts: list[str], styles: np.ndarray, streams) -> World:
    """Users, pairs and answers over ``texts`` (``cfg.candidates_per_prompt`` consecutive texts per prompt)."""
    rng_users, rng_new, rng_pairs, rng_answers, rng_groups = streams
    k = cfg.candidates_per_prompt
    cand_prompt = np.repeat(np.arange(len(prompts)), k)
    scores = score_texts(texts)

    names, weights = paper_users()
    mix_names, mix_weights = mixture_users(cfg.n_mixture_users, rng_users)
    names, weights = names + mix_names, np.concatenate([weights, mix_weights])
    n_new = _count_new(cfg.n_new_users, len(names))
    is_new = np.zeros(len(names), dtype=bool)
    is_new[rng_new.choice(len(names), size=n_new, replace=False)] = True
    users = [User(n, w, bool(f)) for n, w, f in zip(names, weights, is_new)]

    first, second = np.triu_indices(k, 1)
    offsets = np.arange(len(prompts))[:, None] * k
    pair_a = (offsets + first).ravel()
    pair_b = (offsets + second).ravel()
    pair_prompt = np.repeat(np.arange(len(prompts)), len(first))
    if cfg.protocol == "unseen-prompts":
        group = partition_prompts(len(prompts), cfg.prompt_fractions, rng_groups)[pair_prompt]
        train_pairs, pool_pairs, test_pairs = (np.flatnonzero(group == g) for g in ("train", "pool", "test"))
    else:
        train_pairs = pool_pairs = test_pairs = np.arange(len(pair_a))
    needs = [("seen users' train", cfg.train_answers_per_user if n_new < len(users) else 0, train_pairs)]
    if cfg.protocol == "unseen-prompts":
        needs += [("new users' pool", cfg.pool_size if n_new else 0, pool_pairs),
                  ("new users' test", cfg.test_size if n_new else 0, test_pairs)]
    else:
        needs += [("new users' pool + test", cfg.pool_size + cfg.test_size if n_new else 0, pool_pairs)]
    for what, need, available in needs:
        if need > len(available):
            raise ValueError(
                f"{what} answers need {need} distinct pairs but the world has only {len(available)} there "
                f"({len(prompts)} prompts x {len(first)} pairs, protocol {cfg.protocol}): "
                "use more prompts or candidates_per_prompt, or fewer answers per user"
            )

    user_idx, pair_idx, splits = [], [], []
    for i, user in enumerate(users):
        if not user.is_new:
            chosen = rng_pairs.choice(train_pairs, size=cfg.train_answers_per_user, replace=False)
            split = np.full(cfg.train_answers_per_user, "train")
        elif cfg.protocol == "unseen-prompts":
            chosen = np.concatenate([rng_pairs.choice(pool_pairs, size=cfg.pool_size, replace=False),
                                     rng_pairs.choice(test_pairs, size=cfg.test_size, replace=False)])
            split = np.array(["pool"] * cfg.pool_size + ["test"] * cfg.test_size)
        else:
            chosen = rng_pairs.choice(pool_pairs, size=cfg.pool_size + cfg.test_size, replace=False)
            split = np.array(["pool"] * cfg.pool_size + ["test"] * cfg.test_size)
        user_idx.append(np.full(len(chosen), i))
        pair_idx.append(chosen)
        splits.append(split)
    answer_user = np.concatenate(user_idx).astype(np.int64)
    chosen = np.concatenate(pair_idx).astype(np.int64)
    swap = rng_pairs.random(len(chosen)) < 0.5
    answer_a = np.where(swap, pair_b[chosen], pair_a[chosen])
    answer_b = np.where(swap, pair_a[chosen], pair_b[chosen])
    answer = simulate_preferences(
        weights[answer_user], scores[answer_a], scores[answer_b], cfg.temperature, cfg.tie_margin, rng_answers
    )
    return World(
        config=cfg,
        prompts=prompts,
        cand_prompt=cand_prompt,
        texts=texts,
        styles=styles,
        scores=scores,
        users=users,
        answer_user=answer_user,
        answer_a=answer_a,
        answer_b=answer_b,
        answer=answer,
        answer_split=np.concatenate(splits).astype(str),
    )


def write_world(path: str | Path, config: WorldConfig | None = None) -> Path:
    """Build the world for ``config`` and write it (JSONL + users sidecar); returns ``path``."""
    return build_world(config).write(path)
