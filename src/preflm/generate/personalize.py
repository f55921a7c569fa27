"""Personalized generation: the same LLM answers each user differently, with no model trained per user.

* :func:`personalized_best_of_n` samples N candidates per prompt ONCE (optionally diversified by style
  instructions) and picks, for every user at once, the candidate with the highest r_u = lambda_u . phi.
* :func:`guided_decoding` steers decoding with the user's reward: blockwise best-of-K over short
  continuations of the partial answer, counting every generated token so it can be compared with
  best-of-N at equal cost.
* :func:`prompting_baseline` asks the same LLM to adapt itself, told what the user likes (the style
  instructions their learned reward ranks highest, or their answered pairs in context).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from preflm.generate.generators import GenerationConfig, Generator
from preflm.generate.rank import Ranking
from preflm.onboard.profile import UserProfile

DEFAULT_STYLES: tuple[str | None, ...] = (
    None,
    "Answer briefly, in one or two sentences.",
    "Answer in detail and explain your reasoning thoroughly.",
    "Answer in a warm, enthusiastic tone.",
    "Answer formally and precisely.",
    "Answer casually, like you are talking to a friend.",
    "Answer with a light joke or a bit of humour.",
    "End your answer by asking the user a follow-up question.",
)
"""System-prompt variants that spread candidates over styles; ``None`` keeps the model's default."""


def user_weight_matrix(users, n_factors: int | None = None) -> tuple[list[str], np.ndarray]:
    """(user ids, weights (U, J)) from a profile, profiles, {id: weights}, one vector (J,) or a matrix (U, J)."""
    if isinstance(users, UserProfile):
        users = [users]
    if isinstance(users, Mapping):
        ids = [str(u) for u in users]
        weights = np.asarray([np.asarray(w, dtype=np.float64) for w in users.values()])
    elif isinstance(users, (list, tuple)) and users and all(isinstance(u, UserProfile) for u in users):
        ids = [u.user_id for u in users]
        weights = np.asarray([u.weight_vector for u in users])
    else:
        weights = np.asarray(users, dtype=np.float64)
        if weights.ndim == 1:
            weights = weights[None, :]
        ids = ["user"] if len(weights) == 1 else [f"user-{i}" for i in range(len(weights))]
    if weights.ndim != 2 or len(weights) == 0:
        raise ValueError(f"expected user weights of shape (J,) or (U, J), got {weights.shape}")
    if n_factors is not None and weights.shape[1] != n_factors:
        raise ValueError(f"user weights have {weights.shape[1]} factors but the reward model has {n_factors}")
    return ids, weights


def _n_factors(model) -> int | None:
    weights = getattr(model, "user_weights_", None)
    return None if weights is None else int(np.shape(weights)[1])


def _with_style(base: str | None, style: str | None) -> str | None:
    if style is None:
        return base
    return style if base is None else f"{base} {style}"


def style_plan(n: int, styles: Sequence[str | None] | None) -> list[str | None]:
    """Style of each of n candidates, cycling through the styles so any first k cover k distinct ones."""
    styles = list(styles) if styles else [None]
    return [styles[i % len(styles)] for i in range(n)]


def _sample_styled(generator: Generator, prompts: Sequence[str], n: int, config: GenerationConfig, styles) -> list[list[str]]:
    """n samples per prompt, sample j under style j mod S; one batched generate call per distinct count."""
    plan = style_plan(n, styles)
    distinct = list(dict.fromkeys(plan))
    counts = {style: plan.count(style) for style in distinct}
    drawn: dict[str | None, list[list[str]]] = {}
    for count in sorted(set(counts.values())):
        group = [s for s in distinct if counts[s] == count]
        rows = [(p, s) for p in prompts for s in group]
        systems = [_with_style(config.system_prompt, s) for _, s in rows]
        texts = generator.generate([p for p, _ in rows], count, config, system_prompts=systems)
        for style_index, style in enumerate(group):
            drawn[style] = [texts[i * len(group) + style_index] for i in range(len(prompts))]
    taken = {style: 0 for style in distinct}
    out: list[list[str]] = [[] for _ in prompts]
    for style in plan:
        for i in range(len(prompts)):
            out[i].append(drawn[style][i][taken[style]])
        taken[style] += 1
    return out


@dataclass
class CandidateSet:
    """N candidate answers per prompt, generated once and reranked for any number of users (JSON-able)."""

    prompts: list[str]
    candidates: list[list[str]]
    styles: list[list[str | None]]
    generator: str = ""
    tokens_generated: int = 0
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.candidates) != len(self.prompts) or len(self.styles) != len(self.prompts):
            raise ValueError("need one list of candidates and styles per prompt")
        sizes = {len(c) for c in self.candidates} | {len(s) for s in self.styles}
        if len(sizes) > 1:
            raise ValueError(f"every prompt needs the same number of candidates, got sizes {sorted(sizes)}")

    @property
    def n(self) -> int:
        return len(self.candidates[0]) if self.candidates else 0

    @classmethod
    def generate(
        cls,
        generator: Generator,
        prompts: Sequence[str],
        n: int,
        config: GenerationConfig | None = None,
        style_instructions: Sequence[str | None] | None = None,
    ) -> "CandidateSet":
        """Sample n candidates per prompt; with style instructions, candidate j uses style j mod S."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        config = config or GenerationConfig()
        tokens, seconds = generator.tokens_generated, generator.seconds
        candidates = _sample_styled(generator, prompts, n, config, style_instructions)
        plan = style_plan(n, style_instructions)
        return cls(
            prompts=list(prompts),
            candidates=candidates,
            styles=[list(plan) for _ in prompts],
            generator=getattr(generator, "name", type(generator).__name__),
            tokens_generated=generator.tokens_generated - tokens,
            seconds=generator.seconds - seconds,
            config=json.loads(json.dumps(asdict(config))),
        )

    def head(self, n: int) -> "CandidateSet":
        """The first n candidates of every prompt (what best-of-n would have drawn)."""
        if not 1 <= n <= self.n:
            raise ValueError(f"can take 1 to {self.n} candidates, asked for {n}")
        share = n / self.n
        return CandidateSet(
            self.prompts,
            [c[:n] for c in self.candidates],
            [s[:n] for s in self.styles],
            self.generator,
            int(round(self.tokens_generated * share)),
            self.seconds * share,
            self.config,
        )

    def rewards(self, model, users) -> np.ndarray:
        """Personalized rewards (U, P, N): every candidate featurized in one call, all users at once."""
        _, weights = user_weight_matrix(users, _n_factors(model))
        flat_prompts = [p for p, c in zip(self.prompts, self.candidates) for _ in c]
        flat_texts = [t for c in self.candidates for t in c]
        scores = model.rewards(flat_prompts, flat_texts, weights)
        return np.asarray(scores).reshape(len(weights), len(self.prompts), self.n)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CandidateSet":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a preflm candidate set ({err})") from None


@dataclass
class PersonalizedAnswers:
    """Best-of-N picks: ``scores`` (U, P, N) of each user for each candidate, best first per (user, prompt)."""

    user_ids: list[str]
    candidates: CandidateSet
    scores: np.ndarray

    @property
    def best_index(self) -> np.ndarray:
        """(U, P) index of each user's best candidate (first one on ties)."""
        return np.argmax(self.scores, axis=-1)

    def _user(self, user: int | str) -> int:
        return self.user_ids.index(user) if isinstance(user, str) else int(user)

    def answers(self, user: int | str = 0) -> list[str]:
        """The chosen answer to every prompt for one user."""
        u = self._user(user)
        return [c[i] for c, i in zip(self.candidates.candidates, self.best_index[u])]

    def ranking(self, user: int | str = 0, prompt: int = 0) -> Ranking:
        scores = self.scores[self._user(user), prompt]
        return Ranking(self.candidates.prompts[prompt], list(self.candidates.candidates[prompt]), scores, np.argsort(-scores, kind="stable"))


def personalized_best_of_n(
    generator: Generator | None,
    model,
    profiles_or_weights,
    prompts: Sequence[str],
    n: int = 8,
    config: GenerationConfig | None = None,
    style_instructions: Sequence[str | None] | None = None,
    candidates: CandidateSet | None = None,
) -> PersonalizedAnswers:
    """Each user's best of n candidates per prompt. Pass ``candidates`` to rerank an existing set."""
    user_ids, weights = user_weight_matrix(profiles_or_weights, _n_factors(model))
    if candidates is None:
        if generator is None:
            raise ValueError("need a generator or an existing candidate set")
        candidates = CandidateSet.generate(generator, prompts, n, config, style_instructions)
    elif list(candidates.prompts) != list(prompts):
        raise ValueError("the candidate set answers other prompts")
    return PersonalizedAnswers(user_ids, candidates, candidates.rewards(model, weights))


@dataclass
class GuidedAnswers:
    """Answers built block by block for each (user, prompt), with the tokens each one cost."""

    user_ids: list[str]
    prompts: list[str]
    texts: list[list[str]]
    rewards: np.ndarray
    tokens: np.ndarray
    steps: int

    @property
    def tokens_generated(self) -> int:
        return int(self.tokens.sum())


def guided_decoding(
    generator: Generator,
    model,
    profiles_or_weights,
    prompts: Sequence[str],
    n: int = 4,
    block_tokens: int = 16,
    config: GenerationConfig | None = None,
    style_instructions: Sequence[str | None] | None = None,
    progress: bool = False,
) -> GuidedAnswers:
    """Blockwise reward-guided decoding (controlled decoding over segments).

    For every user and prompt: sample ``n`` continuations of ``block_tokens`` tokens of the current partial
    answer, score partial answer + continuation with lambda_u . phi, keep the best, and repeat until it ends
    (EOS) or reaches ``config.max_new_tokens``. All (user, prompt) states advance together in one batch per
    block. With ``n`` and ``max_new_tokens`` equal, it costs at most as many tokens as best-of-n.
    """
    from tqdm.auto import tqdm

    config = config or GenerationConfig()
    if n < 1 or block_tokens < 1:
        raise ValueError("n and block_tokens must be at least 1")
    user_ids, weights = user_weight_matrix(profiles_or_weights, _n_factors(model))
    U, P = len(user_ids), len(prompts)
    state_user = np.repeat(np.arange(U), P)
    state_prompt = np.tile(np.arange(P), U)
    texts = [""] * (U * P)
    length = np.zeros(U * P, dtype=int)
    spent = np.zeros(U * P, dtype=int)
    rewards = np.zeros(U * P)
    done = np.zeros(U * P, dtype=bool)
    plan = style_plan(n, style_instructions)
    distinct = list(dict.fromkeys(plan))
    steps = 0
    bar = tqdm(total=config.max_new_tokens, desc="guided decoding", unit="tok", disable=not progress, leave=False)
    while not done.all():
        active = np.flatnonzero(~done)
        block = int(min(block_tokens, (config.max_new_tokens - length[active]).max()))
        block_config = config.replace(max_new_tokens=block, seed=config.seed + 1000 * steps)
        options = _extend(generator, prompts, texts, active, state_prompt, plan, distinct, block_config)
        flat = [(i, option) for i, opts in enumerate(options) for option in opts]
        owner = np.array([i for i, _ in flat])
        scores = model.rewards(
            [prompts[state_prompt[active[i]]] for i in owner], [option.text for _, option in flat], weights
        )
        own_scores = np.asarray(scores)[state_user[active[owner]], np.arange(len(flat))]
        for i, s in enumerate(active):
            mine = np.flatnonzero(owner == i)
            best = mine[int(np.argmax(own_scores[mine]))]
            option = flat[best][1]
            texts[s], rewards[s] = option.text, own_scores[best]
            length[s] += option.new_tokens
            spent[s] += sum(o.new_tokens for o in options[i])
            done[s] = option.finished or option.new_tokens == 0 or length[s] >= config.max_new_tokens
        bar.update(block)
        steps += 1
    bar.close()
    return GuidedAnswers(
        user_ids,
        list(prompts),
        [[texts[u * P + p].strip() for p in range(P)] for u in range(U)],
        rewards.reshape(U, P),
        spent.reshape(U, P),
        steps,
    )


def _extend(generator, prompts, texts, active, state_prompt, plan, distinct, config) -> list[list]:
    """n continuations of every active state's partial answer, continuation j under style j mod S."""
    rows = [(s, style) for s in active for style in distinct]
    counts = [plan.count(style) for _, style in rows]
    position = {s: i for i, s in enumerate(active)}
    options: list[list] = [[] for _ in active]
    for count in sorted(set(counts)):
        chosen = [r for r, c in zip(rows, counts) if c == count]
        continued = generator.continue_text(
            [prompts[state_prompt[s]] for s, _ in chosen],
            [texts[s] for s, _ in chosen],
            count,
            config,
            system_prompts=[_with_style(config.system_prompt, style) for _, style in chosen],
        )
        for (s, _), extensions in zip(chosen, continued):
            options[position[s]].extend(extensions)
    return options


def describe_user(model, weights, candidates: CandidateSet, top: int = 2) -> tuple[list[str], np.ndarray]:
    """The style instructions a user's learned reward ranks highest, probed on a styled candidate set.

    A style's advantage is the mean, over prompts, of (reward of its candidates - mean reward of all
    candidates of that prompt). Returns the ``top`` instructions with a positive advantage (best first)
    and the advantage of every distinct style (in order of first appearance; the default style included).
    """
    _, matrix = user_weight_matrix(weights, _n_factors(model))
    return _describe_from_scores(candidates.rewards(model, matrix[:1]), candidates, top)[0]


def _describe_from_scores(scores: np.ndarray, candidates: CandidateSet, top: int) -> list[tuple[list[str], np.ndarray]]:
    """For each user of ``scores`` (U, P, N): (liked style instructions, advantage of every style)."""
    styles = candidates.styles[0]
    distinct = list(dict.fromkeys(styles))
    relative = scores - scores.mean(-1, keepdims=True)
    member = np.array([[style == d for style in styles] for d in distinct], dtype=float)
    advantage = np.einsum("upn,sn->us", relative, member) / member.sum(1) / len(candidates.prompts)
    out = []
    for row in advantage:
        order = [int(i) for i in np.argsort(-row, kind="stable") if distinct[i] is not None and row[i] > 0]
        out.append(([distinct[i] for i in order[:top]], row))
    return out


def user_system_prompt(liked: Sequence[str], answers: Sequence[dict] = (), base: str | None = None, max_examples: int = 4) -> str:
    """A system prompt telling the LLM about the user: the styles they like, or answers they preferred."""
    lines = [base or "You are a helpful assistant. Adapt your answer to this user."]
    if liked:
        lines.append("From their feedback, this user likes answers that follow these instructions:")
        lines.extend(f"- {instruction}" for instruction in liked)
    examples = [a for a in answers if {"prompt", "response_a", "response_b"} <= set(a) and a.get("preference") != 0.5]
    if examples:
        lines.append("Answers this user preferred (chosen) over others (rejected):")
        for a in examples[:max_examples]:
            chosen, rejected = (a["response_a"], a["response_b"]) if a["preference"] > 0.5 else (a["response_b"], a["response_a"])
            lines.append(f"Question: {a['prompt'][:200]}\nChosen: {chosen[:300]}\nRejected: {rejected[:300]}")
    return "\n".join(lines)


@dataclass
class PromptedAnswers:
    """Answers of the LLM told about each user, and what it was told."""

    user_ids: list[str]
    prompts: list[str]
    texts: list[list[str]]
    system_prompts: list[str]
    tokens_generated: int


def prompting_baseline(
    generator: Generator,
    model,
    profiles_or_weights,
    prompts: Sequence[str],
    config: GenerationConfig | None = None,
    candidates: CandidateSet | None = None,
    mode: str = "attributes",
    top: int = 2,
) -> PromptedAnswers:
    """The same LLM, with a system prompt describing the user, answering every prompt (greedy by default).

    ``mode="attributes"``: the style instructions the user's learned reward ranks highest on ``candidates``
    (a styled candidate set, see :func:`describe_user`). ``mode="answers"``: the user's answered pairs in
    context (needs :class:`UserProfile` objects whose answers carry their texts).
    """
    config = config or GenerationConfig(temperature=0.0)
    user_ids, weights = user_weight_matrix(profiles_or_weights, _n_factors(model))
    if mode == "attributes":
        if candidates is None or len({s for row in candidates.styles for s in row}) < 2:
            raise ValueError("mode='attributes' needs a candidate set generated with several style instructions")
        described = _describe_from_scores(candidates.rewards(model, weights), candidates, top)
        systems = [user_system_prompt(liked, base=config.system_prompt) for liked, _ in described]
    elif mode == "answers":
        profiles = [profiles_or_weights] if isinstance(profiles_or_weights, UserProfile) else profiles_or_weights
        if not all(isinstance(p, UserProfile) for p in profiles):
            raise ValueError("mode='answers' needs UserProfile objects with their answers")
        systems = [user_system_prompt([], p.answers, base=config.system_prompt) for p in profiles]
    else:
        raise ValueError(f"mode must be 'attributes' or 'answers', got {mode!r}")
    before = generator.tokens_generated
    rows = [(u, p) for u in range(len(user_ids)) for p in prompts]
    texts = generator.generate([p for _, p in rows], 1, config, system_prompts=[systems[u] for u, _ in rows])
    P = len(prompts)
    return PromptedAnswers(
        user_ids,
        list(prompts),
        [[texts[u * P + i][0] for i in range(P)] for u in range(len(user_ids))],
        systems,
        generator.tokens_generated - before,
    )
