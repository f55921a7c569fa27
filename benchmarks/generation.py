"""Personalized generation benchmark: does a user prefer the answer picked by their learned reward?

Simulated users of the Attributes world (whose true reward of any text is known) are onboarded with 5, 10
and 20 answers; a real LLM answers prompts of the world's bank. For every user the personalized answer is
judged against the same LLM's default (greedy) answer with the user's TRUE reward: the win rate (ties
count half) with 95% t-intervals over users, versus N candidates, versus the number of answers, and for
best-of-N vs reward-guided decoding (equal generated tokens) vs prompting the LLM with what the user likes.

Where the reward model learns (``--reward-data``): ``llm`` (default) is the deployment setting: seen users
rated the same LLM's answers to the bank's other prompts (``--train-candidates`` per prompt, style-
diversified), and new users are asked about and tested on the LLM's answers too; no benchmark prompt is
rated by anyone. ``llm+world`` adds richer supervision: the same seen users also rate the world's template
answers to their training prompts, whose styles contrast far more than a small LLM's answers do (the new
users' questions and tests stay the LLM's answers). ``world`` trains on the world's template texts and so
measures transfer to the LLM's wording. References bound the result: the true attribute scores as phi with weights from the same answers
(known phi), and the learned phi with each user's least-squares best weights (the ceiling of its r, in
sample; ``benchmarks/generation_ceiling.py`` gives it held out by prompt).

    python benchmarks/generation.py                          # SmolLM2-135M, ~10 min on 2 CPU cores
    python benchmarks/generation.py --reward-data world      # trained on the template texts (transfer)
    python benchmarks/generation.py --generator hf:Qwen/Qwen2.5-1.5B-Instruct --device cuda

Candidates are generated once per prompt and reranked for every user; only guided decoding and the
prompting baseline generate per user, so they run on a subset of users and prompts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: much faster on shared CPUs

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from preflm.data import AnswerMatrix, load_preferences, split_answers
from preflm.eval.harness import known_phi_method
from preflm.eval.onboarding import pad_answers, score_weights, simulate_onboarding
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.factorize.pipeline import featurize_items, train_reward_model
from preflm.featurize import DEFAULT_FEATURIZER, CachedFeaturizer, featurizer_from_name
from preflm.generate.generators import GenerationConfig, GenerationError, load_generator
from preflm.generate.personalize import DEFAULT_STYLES, CandidateSet, guided_decoding, prompting_baseline, style_plan
from preflm.metrics import mean_ci
from preflm.simulate import (
    ATTRIBUTE_NAMES, PROMPTS, WorldConfig, load_users, score_texts, template_training_answers, true_reward,
    world_from_texts, write_world,
)

ROOT = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="smollm2", help="smollm2, hf:<hub id or path> or openai:<url>#<model>")
    parser.add_argument("--n-prompts", type=int, default=24, help="prompts from the world's bank (spread over topics)")
    parser.add_argument("--n-users", type=int, default=0, help="new users to judge (0 = all the world's new users)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--n-candidates", type=int, default=16, help="largest N; the N curve uses 1, 4, 8, 16")
    parser.add_argument("--budgets", type=int, nargs="+", default=[5, 10, 20], help="answers per new user")
    parser.add_argument("--main-budget", type=int, default=10, help="answers behind the N curve and the methods")
    parser.add_argument("--guided-users", type=int, default=8, help="users for guided decoding and prompting")
    parser.add_argument("--guided-prompts", type=int, default=6, help="prompts for guided decoding and prompting")
    parser.add_argument("--guided-n", type=int, default=4, help="continuations per block (compared with best-of-this)")
    parser.add_argument("--block-tokens", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--no-styles", action="store_true", help="plain sampling, no style instructions")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward pass of a local model")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/generation-benchmark"), help="world, model, candidates")
    parser.add_argument("--model-dir", type=Path, default=None, help="load this reward model instead of training one")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="folder for generation_<tag>.json/.md")
    parser.add_argument("--tag", default=None, help="results name (default: from the generator)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--featurizer", default=DEFAULT_FEATURIZER, help="featurizer of the reward model, as for preflm train")
    parser.add_argument("--reward-data", choices=("llm", "llm+world", "world"), default="llm",
                        help="llm: users rated the LLM's answers to the other bank prompts; llm+world: seen users also rated "
                             "the world's template answers to those prompts; world: the template texts")
    parser.add_argument("--train-candidates", type=int, default=8, help="LLM answers per training prompt (--reward-data llm and llm+world)")
    parser.add_argument("--answers-per-user", type=int, default=WorldConfig().train_answers_per_user,
                        help="answers of each seen user (per source of texts under llm+world)")
    parser.add_argument("--residual-factors", type=int, default=FactorizeConfig().residual_factors,
                        help="residual base rewards K, as for preflm train (0: the learned J alone)")
    parser.add_argument("--n-factors-choices", default="", help="J values to choose from on seen users, as for preflm train")
    args = parser.parse_args(argv)
    if args.train_candidates < 2:
        parser.error("--train-candidates must be at least 2 (pairs of answers are compared)")
    if args.answers_per_user < 1:
        parser.error("--answers-per-user must be at least 1")
    return args


class Clock:
    """Prints each phase with the time since the start."""

    def __init__(self):
        self.start = time.perf_counter()

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", flush=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def win_rates(personal: np.ndarray, default: np.ndarray) -> np.ndarray:
    """Per-user share of prompts where the personalized answer has the higher true reward (ties = 1/2)."""
    return np.mean((personal > default) + 0.5 * (personal == default), axis=-1)


def summarize(per_user: np.ndarray, **extra) -> dict:
    """Mean win rate and its 95% t-interval over users (clipped to [0, 1])."""
    mean, low, high = mean_ci(per_user)
    ci = [float(np.clip(low, 0, 1)), float(np.clip(high, 0, 1))]
    return {"win_rate": mean, "ci95": ci, "n_users": int(np.isfinite(per_user).sum()), **extra}


def pick_prompts(n: int, seed: int) -> list:
    """n prompts of the bank, spread evenly over its topics."""
    rng = np.random.default_rng(seed)
    topics = sorted({p.topic for p in PROMPTS})
    by_topic = {t: [p for p in PROMPTS if p.topic == t] for t in topics}
    order = {t: list(rng.permutation(len(ps))) for t, ps in by_topic.items()}
    chosen = []
    while len(chosen) < min(n, len(PROMPTS)):
        for t in topics:
            if order[t] and len(chosen) < n:
                chosen.append(by_topic[t][order[t].pop(0)])
    return chosen


def own_true_reward(true_weights: np.ndarray, texts: list[list[str]]) -> np.ndarray:
    """True reward (U, P) of each user's own answers (texts[u][p]) under that user's true weights."""
    U, P = len(texts), len(texts[0])
    attributes = score_texts([t for row in texts for t in row]).reshape(U, P, -1)
    return np.einsum("upa,ua->up", attributes, true_weights)


def within_prompt_correlation(learned: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per user: Pearson correlation of learned and true rewards (U, P, N) across candidates, centred per prompt."""
    a = learned - learned.mean(-1, keepdims=True)
    b = truth - truth.mean(-1, keepdims=True)
    return (a * b).sum((1, 2)) / np.sqrt((a**2).sum((1, 2)) * (b**2).sum((1, 2)) + 1e-12)


def candidate_styles(candidates: CandidateSet) -> dict:
    """Does the LLM follow the style instructions? Mean words and attribute scores of each style's candidates."""
    attributes = score_texts([t for row in candidates.candidates for t in row]).reshape(len(candidates.prompts), candidates.n, -1)
    plan = candidates.styles[0]
    by_style = {}
    for style in dict.fromkeys(plan):
        columns = [j for j, s in enumerate(plan) if s == style]
        words = np.mean([len(row[j].split()) for row in candidates.candidates for j in columns])
        means = attributes[:, columns].mean((0, 1))
        by_style[style or "(default)"] = {"words": round(float(words), 1), **dict(zip(ATTRIBUTE_NAMES, np.round(means, 3).tolist()))}
    spread = attributes.std(1).mean(0)
    return {"attribute_std_within_prompt": dict(zip(ATTRIBUTE_NAMES, np.round(spread, 3).tolist())), "by_style": by_style}


def centred_fit(phi: np.ndarray, truth: np.ndarray, fit: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Rewards (U, P, N) on the ``score`` prompts under weights least-squares fitted on the ``fit`` prompts.

    ``phi`` (P, N, D) and ``truth`` (U, P, N) are centred within prompt first; other prompts are left 0."""
    phi = phi - phi.mean(1, keepdims=True)
    centred = truth - truth.mean(-1, keepdims=True)
    weights = np.linalg.lstsq(phi[fit].reshape(-1, phi.shape[-1]), centred[:, fit].reshape(len(truth), -1).T, rcond=None)[0]
    out = np.zeros_like(truth)
    out[:, score] = (phi[score].reshape(-1, phi.shape[-1]) @ weights).T.reshape(len(truth), int(score.sum()), -1)
    return out


def best_fitting_rewards(model, candidates: CandidateSet, truth: np.ndarray) -> np.ndarray:
    """Rewards (U, P, N) of the learned phi under each user's least-squares best weights for ``truth`` (within prompt).

    Unit weights over the J learned base rewards give phi itself, so phi comes from the candidates' scoring call;
    the residual base rewards are left out (weight 0): this is the ceiling of what was learned from seen users."""
    phi = candidates.rewards(model, np.eye(model.n_weights)[: model.config.n_factors]).transpose(1, 2, 0)
    every = np.ones(len(phi), dtype=bool)
    return centred_fit(phi, truth, every, every)


def chosen_true(scores: np.ndarray, truth: np.ndarray, n: int) -> np.ndarray:
    """True reward (U, P) of the candidate each user's learned reward ranks first among the first n."""
    best = np.argmax(scores[..., :n], axis=-1)
    return np.take_along_axis(truth[..., :n], best[..., None], axis=-1)[..., 0]


def training_world(args, generator, benchmark_prompts, styles, clock: Clock) -> tuple[Path, dict]:
    """The answers the reward model learns from: the template world, or the world's users rating the LLM.

    Under ``llm`` the LLM answers every bank prompt outside the benchmark's; those answers are cached in the
    work folder and reused while the generator, prompts and sampling settings stay the same. Returns the
    world's path and what generating the training answers cost (empty under ``world``).
    """
    config = WorldConfig(seed=args.seed, train_answers_per_user=args.answers_per_user)
    if args.reward_data == "world":
        world_path = args.work_dir / f"world-seed{args.seed}.jsonl"
        write_world(world_path, config)
        return world_path, {}
    held_out = {e.prompt_id for e in benchmark_prompts}
    entries = [e for e in PROMPTS if e.prompt_id not in held_out]
    if not entries:
        raise SystemExit(f"--n-prompts {args.n_prompts} leaves no bank prompt to train on ({len(PROMPTS)} in the bank)")
    prompts = [e.question for e in entries]
    sampling = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed + 1)
    cache = args.work_dir / f"train-candidates-{tag_for(args.generator)}.json"
    saved = CandidateSet.load(cache) if cache.is_file() else None
    reused = (
        saved is not None and saved.prompts == prompts and saved.n == args.train_candidates
        and saved.generator == generator.name and saved.config == json.loads(json.dumps(asdict(sampling)))
        and saved.styles[0] == style_plan(args.train_candidates, styles)
    )
    if reused:
        clock.log(f"reusing {cache} ({len(prompts)} prompts x {saved.n} answers)")
    else:
        saved = CandidateSet.generate(generator, prompts, args.train_candidates, sampling, styles)
        saved.save(cache)
        clock.log(f"the LLM answered {len(prompts)} training prompts x {saved.n}: "
                  f"{saved.tokens_generated} tokens in {saved.seconds:.0f} s")
    world_path = args.work_dir / f"llm-world-{args.tag}-seed{args.seed}.jsonl"
    templates = template_training_answers(entries, config) if args.reward_data == "llm+world" else None
    world_from_texts(entries, saved.candidates, config).write(world_path, extra_answers=templates)
    cost = {"prompts": len(prompts), "answers_per_prompt": saved.n, "tokens": saved.tokens_generated,
            "seconds": round(saved.seconds, 1), "reused_from_cache": reused}
    return world_path, cost


def prepare_model(args, world_path: Path, clock: Clock):
    """The answer matrix of ``world_path`` and a reward model trained on its seen users."""
    matrix = AnswerMatrix.from_frame(load_preferences(world_path))
    split = split_answers(matrix, seed=args.seed)
    featurizer = CachedFeaturizer(featurizer_from_name(args.featurizer))
    features = featurize_items(matrix, featurizer)
    clock.log(f"{args.reward_data} answers: {matrix.n_answers} answers, {matrix.n_users} users, {matrix.n_items} texts featurized")
    if args.model_dir is not None:
        model = RewardFactorization.load(args.model_dir)
        clock.log(f"loaded reward model {args.model_dir}")
    else:
        config = FactorizeConfig(seed=args.seed, n_factors_choices=args.n_factors_choices, residual_factors=args.residual_factors)
        model = train_reward_model(split.train, features, featurizer, config, progress=False)
        model.save(args.work_dir / f"model-{args.tag}")
        clock.log(f"trained reward model: J={model.config.n_factors}, held-out accuracy {model.validation_accuracy_:.3f}")
    return matrix, split, featurizer, features, model


def onboard(args, matrix, split, features, model, world_path, clock: Clock):
    """New users' ids, learned weights after 0 and each budget of active answers, known-phi weights after
    the main budget (true attribute scores as phi, its own active questions from the same pool), true
    weights, and held-out pairwise accuracy by budget."""
    users = split.new_users
    if args.n_users and args.n_users < len(users):
        users = np.sort(np.random.default_rng(args.seed).choice(users, args.n_users, replace=False))
    diffs = model.pair_differences(features, matrix.pairs)
    pool = pad_answers(split.pool, users)
    test = pad_answers(split.test, users)
    budgets = sorted({0, *args.budgets, args.main_budget})
    learned = simulate_onboarding(pool, diffs, model.prior_mean_, model.prior_precision(), budgets, "active", args.seed)
    accuracy = {b: float(np.nanmean(score_weights(w, test, diffs)[0])) for b, w in learned.items()}
    known, _ = known_phi_method(matrix.item_true_features).fit_model(features, split, args.seed)
    known_weights = simulate_onboarding(
        pool, known.pair_differences, known.prior_mean, known.prior_precision, [args.main_budget], "active", args.seed
    )[args.main_budget]
    truth = load_users(world_path)
    ids = [str(u) for u in matrix.user_ids[users]]
    clock.log(f"onboarded {len(ids)} new users; held-out pairwise accuracy by answers: "
              + ", ".join(f"{b}: {a:.3f}" for b, a in accuracy.items()))
    return ids, learned, known_weights, np.stack([truth[i] for i in ids]), accuracy


def tag_for(spec: str) -> str:
    name = spec.split("#")[-1] if spec.startswith("openai:") else spec.removeprefix("hf:")
    return re.sub(r"[^a-z0-9.]+", "-", Path(name).name.lower()).strip("-") or "generator"


def run(args) -> dict:
    clock = Clock()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    options = {} if args.generator.startswith("openai:") else {"batch_size": args.batch_size}
    generator = load_generator(args.generator, device=args.device, **options)
    clock.log(f"loaded generator {generator.name} on {getattr(generator, 'device', 'endpoint')}")
    entries = pick_prompts(args.n_prompts, args.seed)
    prompts = [e.question for e in entries]
    styles = None if args.no_styles else DEFAULT_STYLES
    world_path, training_answers = training_world(args, generator, entries, styles, clock)
    matrix, split, featurizer, features, model = prepare_model(args, world_path, clock)
    ids, learned, known_weights, true_weights, accuracy = onboard(args, matrix, split, features, model, world_path, clock)

    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    throughput = {}

    tokens, seconds = generator.tokens_generated, generator.seconds
    default = [c[0] for c in generator.generate(prompts, 1, config.replace(temperature=0.0))]
    throughput["default_greedy"] = _rate(generator, tokens, seconds)
    clock.log(f"default answers: {throughput['default_greedy']}")
    candidates = CandidateSet.generate(generator, prompts, args.n_candidates, config, styles)
    candidates.save(args.work_dir / f"candidates-{args.tag}.json")
    throughput["best_of_n_candidates"] = {
        "tokens": candidates.tokens_generated,
        "seconds": round(candidates.seconds, 2),
        "tokens_per_second": round(candidates.tokens_generated / max(candidates.seconds, 1e-9), 1),
    }
    clock.log(f"{args.n_candidates} candidates x {len(prompts)} prompts: {throughput['best_of_n_candidates']}")

    U, P, N = len(ids), len(prompts), args.n_candidates
    budgets = sorted(learned)
    all_weights = np.concatenate([learned[b] for b in budgets])
    scores = candidates.rewards(model, all_weights).reshape(len(budgets), U, P, N)
    scores = dict(zip(budgets, scores))
    flat = [t for c in candidates.candidates for t in c]
    truth = true_reward(true_weights, flat).reshape(P, N, U).transpose(2, 0, 1)
    default_truth = true_reward(true_weights, default).T
    main = args.main_budget

    n_values = sorted({n for n in (1, 4, 8, 16, N) if n <= N})
    results: dict = {"vs_n": {}, "vs_answers": {}, "references": {}, "methods": {}}
    for n in n_values:
        results["vs_n"][str(n)] = summarize(win_rates(chosen_true(scores[main], truth, n), default_truth))
    for b in budgets:
        results["vs_answers"][str(b)] = summarize(
            win_rates(chosen_true(scores[b], truth, N), default_truth),
            pairwise_accuracy=accuracy[b],
            reward_alignment=float(np.nanmean(within_prompt_correlation(scores[b], truth))),
        )
    results["candidates"] = candidate_styles(candidates)
    any_candidate = np.mean((truth > default_truth[..., None]) + 0.5 * (truth == default_truth[..., None]), axis=(1, 2))
    known_scores = np.einsum("pna,ua->upn", score_texts(flat).reshape(P, N, -1), known_weights)
    fitted_scores = best_fitting_rewards(model, candidates, truth)
    results["references"] = {
        f"random candidate of {N}": summarize(any_candidate),
        f"best of {N} by the true attributes as phi, weights from {main} active answers of the same pool (known-phi bound)": summarize(
            win_rates(chosen_true(known_scores, truth, N), default_truth),
            reward_alignment=float(np.nanmean(within_prompt_correlation(known_scores, truth))),
        ),
        f"best of {N} by the learned phi, weights least-squares fitted to the true rewards of these candidates "
        "(the ceiling of the learned phi's r, in sample)": summarize(
            win_rates(chosen_true(fitted_scores, truth, N), default_truth),
            reward_alignment=float(np.nanmean(within_prompt_correlation(fitted_scores, truth))),
        ),
        f"best of {N} by another user's reward": summarize(
            win_rates(chosen_true(np.roll(scores[main], U // 2, axis=0), truth, N), default_truth)
        ),
        f"best of {N} by the true reward (oracle)": summarize(win_rates(truth.max(-1), default_truth)),
    }
    clock.log("best-of-N win rates: " + ", ".join(f"N={n}: {r['win_rate']:.3f}" for n, r in results["vs_n"].items()))

    gu = np.arange(min(args.guided_users, U))
    gp = np.arange(min(args.guided_prompts, P))
    sub_default = default_truth[np.ix_(gu, gp)]
    K = min(args.guided_n, N)
    subset_scores, subset_truth = scores[main][np.ix_(gu, gp)], truth[np.ix_(gu, gp)]
    per_prompt_tokens = candidates.tokens_generated / (P * N)
    results["methods"][f"best-of-{K}"] = summarize(
        win_rates(chosen_true(subset_scores, subset_truth, K), sub_default),
        tokens_per_answer=round(K * per_prompt_tokens, 1), generated_per_user=False,
    )
    results["methods"][f"best-of-{N}"] = summarize(
        win_rates(chosen_true(subset_scores, subset_truth, N), sub_default),
        tokens_per_answer=round(N * per_prompt_tokens, 1), generated_per_user=False,
    )
    tokens, seconds = generator.tokens_generated, generator.seconds
    sub_prompts = [prompts[i] for i in gp]
    try:
        guided = guided_decoding(
            generator, model, learned[main][gu], sub_prompts, K, args.block_tokens, config, styles, progress=True
        )
        throughput["guided_decoding"] = _rate(generator, tokens, seconds)
        guided_truth = own_true_reward(true_weights[gu], guided.texts)
        results["methods"][f"guided decoding ({K} x {args.block_tokens}-token blocks)"] = summarize(
            win_rates(guided_truth, sub_default),
            tokens_per_answer=round(float(guided.tokens.mean()), 1), generated_per_user=True,
        )
        clock.log(f"guided decoding: {throughput['guided_decoding']}")
    except GenerationError as err:  # an endpoint without token-level continuation
        results["methods"]["guided decoding"] = {"skipped": str(err)}
        guided = None
    tokens, seconds = generator.tokens_generated, generator.seconds
    prompted = prompting_baseline(
        generator, model, learned[main][gu], sub_prompts, config.replace(temperature=0.0), candidates
    )
    throughput["prompting_baseline"] = _rate(generator, tokens, seconds)
    prompted_truth = own_true_reward(true_weights[gu], prompted.texts)
    results["methods"]["prompting baseline (liked styles in the system prompt)"] = summarize(
        win_rates(prompted_truth, sub_default),
        tokens_per_answer=round(prompted.tokens_generated / prompted_truth.size, 1), generated_per_user=True,
    )
    clock.log(f"prompting baseline: {throughput['prompting_baseline']}")

    total_tokens = sum(t["tokens"] for t in throughput.values())
    total_seconds = sum(t["seconds"] for t in throughput.values())
    throughput["all_generation"] = {
        "tokens": total_tokens, "seconds": round(total_seconds, 2), "tokens_per_second": round(total_tokens / total_seconds, 1)
    }
    example_user = 0
    example = {
        "user_id": ids[example_user],
        "true_weights": dict(zip(ATTRIBUTE_NAMES, np.round(true_weights[example_user], 3).tolist())),
        "prompt": prompts[0],
        "default": default[0],
        f"best_of_{N}": candidates.candidates[0][int(np.argmax(scores[main][example_user, 0]))],
        "guided": guided.texts[example_user][0] if guided is not None else None,
        "prompting_system_prompt": prompted.system_prompts[example_user],
        "prompting": prompted.texts[example_user][0],
    }
    return {
        "generator": generator.name,
        "device": getattr(generator, "device", "endpoint"),
        "machine": f"{platform.machine()} cores={os.cpu_count()} threads={_threads()}",
        "settings": {
            "n_prompts": P, "n_users": U, "n_candidates": N, "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature, "styles": list(styles) if styles else None, "main_budget": main,
            "guided_users": int(len(gu)), "guided_prompts": int(len(gp)), "guided_n": K, "block_tokens": args.block_tokens,
            "seed": args.seed, "reward_data": args.reward_data,
            "train_candidates": args.train_candidates if args.reward_data != "world" else None,
            "answers_per_user": args.answers_per_user, "judge": "each user's true reward (Attributes world); win = higher than the greedy default, tie = 1/2",
        },
        "reward_model": {"n_factors": model.config.n_factors, "validation_accuracy": model.validation_accuracy_,
                         "residual_factors": model.config.residual_factors,
                         "residual_strength": model.config.residual_strength if model.config.residual_factors else None,
                         "training_answers": int(matrix.n_answers), "tied_share": float(np.mean(matrix.answer_value == 0.5)),
                         "training_answers_generated": training_answers,
                         "featurizer": args.featurizer, "n_factors_choices": args.n_factors_choices or None},
        **results,
        "throughput": throughput,
        "example": example,
        "wall_seconds": round(clock.elapsed, 1),
        "command": " ".join(["python benchmarks/generation.py", *args.argv]),
    }


def _rate(generator, tokens: int, seconds: float) -> dict:
    t, s = generator.tokens_generated - tokens, generator.seconds - seconds
    return {"tokens": t, "seconds": round(s, 2), "tokens_per_second": round(t / max(s, 1e-9), 1)}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _fmt(entry: dict) -> str:
    if "skipped" in entry:
        return f"skipped: {entry['skipped']}"
    low, high = entry["ci95"]
    return f"{entry['win_rate']:.3f} [{low:.3f}, {high:.3f}]"


def _test_answers(settings: dict) -> str:
    if settings.get("reward_data", "world") != "world":
        return "pairs of the LLM's answers to test prompts held out from training"
    return "pairs of the world's template texts"


def _reward_model_line(info: dict) -> str:
    chosen = f", chosen from {info['n_factors_choices']}" if info.get("n_factors_choices") else ""
    residual = (f" + {info['residual_factors']} residual base rewards (prior strength {info['residual_strength']:g})"
                if info.get("residual_factors") else "")
    line = (f" Featurizer `{info['featurizer']}`, J = {info['n_factors']}{chosen}{residual}; seen users' held-out-prompt "
            f"accuracy {info['validation_accuracy']:.3f}. {info['training_answers']} simulated answers, "
            f"{info['tied_share']:.0%} of them ties.")
    generated = info.get("training_answers_generated")
    if generated:
        line += (f" The LLM's {generated['prompts']} x {generated['answers_per_prompt']} training answers took "
                 f"{generated['seconds'] / 60:.1f} min to generate{' (cached from an earlier run)' if generated['reused_from_cache'] else ''}.")
    return line


def _alignment(entry: dict) -> str:
    return f" (r = {entry['reward_alignment']:.3f})" if "reward_alignment" in entry else ""


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"# Personalized generation: {report['generator']}",
        "",
        "Reward model trained on " + (
            f"the world's users rating {report['generator']}'s answers ({s['train_candidates']} per prompt) to the bank's "
            f"other prompts (seen users rate training prompts; new users are asked on pool prompts and tested on test "
            f"prompts); no benchmark prompt was rated by anyone."
            + (" Seen users also rated the world's template answers (contrasting styles) to their training prompts."
               if s.get("reward_data") == "llm+world" else "")
            + f" {s.get('answers_per_user', 300)} answers per seen user{' and source of texts' if s.get('reward_data') == 'llm+world' else ''}."
            if s.get("reward_data", "world") != "world" else "the Attributes world's template texts (transfer to the LLM's wording)."
        ) + _reward_model_line(report["reward_model"]),
        "",
        f"Win rate of the personalized answer over the same LLM's greedy answer, judged by {s['n_users']} simulated "
        f"new users of the Attributes world with their true reward (ties = 1/2); mean and 95% t-interval over users. "
        f"{s['n_prompts']} prompts, {s['max_new_tokens']} new tokens, candidates {'diversified by style instructions' if s['styles'] else 'plain samples'}, "
        f"temperature {s['temperature']}. Device: {report['device']} ({report['machine']}). Wall time {report['wall_seconds'] / 60:.1f} min.",
        "",
        f"## Best-of-N vs N ({s['main_budget']} answers per user)",
        "",
        "| N | win rate [95% CI] |",
        "|---|---|",
        *[f"| {n} | {_fmt(r)} |" for n, r in report["vs_n"].items()],
        "",
        f"## Best-of-{s['n_candidates']} vs answers per user",
        "",
        "| answers | win rate [95% CI] | held-out pairwise accuracy | learned vs true reward on the candidates (r) |",
        "|---|---|---|---|",
        *[
            f"| {b}{' (prior)' if b == '0' else ''} | {_fmt(r)} | {r['pairwise_accuracy']:.3f} | {r['reward_alignment']:.3f} |"
            for b, r in report["vs_answers"].items()
        ],
        "",
        f"Held-out pairwise accuracy is on the new users' test answers ({_test_answers(s)}); r is the per-user correlation (within prompt)",
        "between the learned and the true reward across the LLM's candidates, averaged over users.",
        "",
        "## References",
        "",
        "| pick | win rate [95% CI] |",
        "|---|---|",
        *[f"| {name} | {_fmt(r)}{_alignment(r)} |" for name, r in report["references"].items()],
        "",
        f"## Methods ({s['guided_users']} users x {s['guided_prompts']} prompts, {s['main_budget']} answers)",
        "",
        "| method | win rate [95% CI] | tokens generated per answer | generated per user |",
        "|---|---|---|---|",
        *[
            f"| {name} | {_fmt(r)} | {r.get('tokens_per_answer', '')} | {'yes' if r.get('generated_per_user') else 'no (shared by all users)'} |"
            for name, r in report["methods"].items()
        ],
        "",
        "## Candidates by style instruction (mean words and true attribute scores)",
        "",
        "| style | words | " + " | ".join(ATTRIBUTE_NAMES) + " |",
        "|---|---|" + "---|" * len(ATTRIBUTE_NAMES),
        *[
            f"| {style} | {v['words']} | " + " | ".join(f"{v[a]:+.2f}" for a in ATTRIBUTE_NAMES) + " |"
            for style, v in report["candidates"]["by_style"].items()
        ],
        "",
        "## Throughput",
        "",
        "| phase | tokens | seconds | tokens/s |",
        "|---|---|---|---|",
        *[f"| {name} | {t['tokens']} | {t['seconds']} | {t['tokens_per_second']} |" for name, t in report["throughput"].items()],
        "",
        f"## Example: {report['example']['user_id']}",
        "",
        f"True weights: {report['example']['true_weights']}",
        "",
        f"Prompt: {report['example']['prompt']}",
        "",
        *[f"- **{key}**: {json.dumps(report['example'][key])}" for key in report["example"] if key not in ("user_id", "true_weights", "prompt")],
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.tag = args.tag or tag_for(args.generator) + {"llm": "", "llm+world": "_llm_world", "world": "_world"}[args.reward_data]
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"generation_{args.tag}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path = args.out / f"generation_{args.tag}.md"
    md_path.write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
