"""The main job, end to end on the offline Attributes world.

World -> features (cached) -> base rewards -> one new simulated user answers 10 actively chosen
questions -> personalized best-of-N picks vs the default answer, judged by the user's true reward ->
accuracy at 5/10/20 answers, active vs random vs oracle.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from preflm.data import AnswerMatrix, load_preferences, split_answers
from preflm.api import remaining_uncertainty
from preflm.metrics import pairwise_accuracy
from preflm.eval.onboarding import pad_answers, score_weights, simulate_onboarding
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.factorize.pipeline import featurize_items
from preflm.featurize import DEFAULT_FEATURIZER, CachedFeaturizer, featurizer_from_name
from preflm.generate import best_of_n
from preflm.onboard import OnboardingSession
from preflm.simulate import (
    ATTRIBUTES,
    PROMPTS,
    WorldConfig,
    candidates_for_prompt,
    load_users,
    realize,
    true_reward,
    write_world,
)

QUESTIONS = 10


def _describe(weights: np.ndarray) -> str:
    order = np.argsort(-np.abs(weights))[:2]
    return " and ".join(
        f"{ATTRIBUTES[i].positive if weights[i] > 0 else ATTRIBUTES[i].negative}" for i in order if weights[i] != 0
    )


def _llm_answer(model, session, truth, seed: int, console: Console) -> None:
    """Best-of-8 answers of SmolLM2 (offline), reranked for this user, judged by the user's true reward."""
    from preflm.generate import GenerationConfig, load_generator, personalized_best_of_n
    from preflm.generate.personalize import DEFAULT_STYLES

    prompt = PROMPTS[seed % len(PROMPTS)].question
    generator = load_generator("smollm2")
    config = GenerationConfig(max_new_tokens=64, temperature=0.0, seed=seed)
    default = generator.generate([prompt], 1, config)[0][0]
    answers = personalized_best_of_n(
        generator, model, [session.weights], [prompt], n=8, config=config.replace(temperature=0.8),
        style_instructions=DEFAULT_STYLES,
    )
    best = answers.answers(0)[0]
    rewards = true_reward(truth, [default, best])
    console.print(f"   [bold]{prompt}[/bold]")
    console.print(f"      SmolLM2 default (greedy): {default}")
    console.print(f"      personalized best-of-8:   {best}")
    console.print(f"      true reward {rewards[0]:+.2f} -> {rewards[1]:+.2f}")


def run_demo(workdir: Path, seed: int = 0, console: Console | None = None, llm: bool = True) -> dict:
    """Run the demo, print as it goes, and return its key figures."""
    console = console or Console()
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    world_path = workdir / "world.jsonl"
    if not world_path.is_file():
        console.print("[bold]1. Generating the Attributes world[/bold] (84 paper users + 36 mixtures)")
        write_world(world_path, WorldConfig(seed=seed))
    else:
        console.print(f"[bold]1. Reusing the Attributes world[/bold] at {world_path}")
    frame = load_preferences(world_path)
    matrix = AnswerMatrix.from_frame(frame)
    split = split_answers(matrix)
    users = load_users(world_path)

    console.print(f"[bold]2. Featurizing {matrix.n_items} responses[/bold] ({DEFAULT_FEATURIZER}, cached)")
    featurizer = CachedFeaturizer(featurizer_from_name(DEFAULT_FEATURIZER))
    features = featurize_items(matrix, featurizer)
    console.print(f"   {featurizer.hits} from cache, {featurizer.misses} computed")

    console.print(
        f"[bold]3. Training base rewards[/bold] on {split.train.n_answers} answers of "
        f"{len(split.train.answered_users())} seen users"
    )
    model = RewardFactorization(FactorizeConfig(seed=seed), featurizer=featurizer)
    model.fit(features, split.train)
    model.save(workdir / "model")
    console.print(f"   held-out accuracy on seen users: {model.validation_accuracy_:.3f}")

    z = model.pair_differences(features, matrix.pairs)
    new_users = split.new_users
    demo_index = int(new_users[seed % len(new_users)])
    user_id = str(matrix.user_ids[demo_index])
    truth = users[user_id]
    console.print(f"[bold]4. Onboarding new user {user_id}[/bold] (true taste: {_describe(truth)})")
    pool_mask = split.pool.answer_user == demo_index
    pool_pairs = split.pool.answer_pair[pool_mask]
    pool_labels = split.pool.answer_value[pool_mask]
    session = OnboardingSession(
        z[pool_pairs], model.prior_mean_, model.prior_precision(), user_id=user_id,
        model_path=str(workdir / "model"), seed=seed,
    )
    for number in range(1, QUESTIONS + 1):
        index = session.next_question()
        a, b = matrix.pairs[pool_pairs[index]]
        answer = pool_labels[index]
        session.record(index, float(answer))
        label = {1.0: "A", 0.0: "B", 0.5: "tie"}[float(answer)]
        console.print(f"   Q{number}: {matrix.item_prompts[a]}")
        console.print(f"      A: {matrix.item_responses[a][:110]}...")
        console.print(f"      B: {matrix.item_responses[b][:110]}...")
        console.print(
            f"      answer: [bold]{label}[/bold]   remaining uncertainty {remaining_uncertainty(session):.0%} "
            "of the population's spread"
        )
    profile_path = session.profile().save(workdir / "profile.json")
    console.print(f"   profile saved to {profile_path}")

    console.print("[bold]5. Default answer vs personalized best-of-8[/bold] (judged by the user's true reward)")
    rng = np.random.default_rng(seed + 1)
    prompts = [PROMPTS[i] for i in rng.choice(len(PROMPTS), 4, replace=False)]
    wins = 0.0
    for entry in prompts:
        default = realize(entry, np.zeros(len(ATTRIBUTES), dtype=int), rng)
        candidates = [default] + [text for text, _ in candidates_for_prompt(entry, 7, rng)]
        ranking = best_of_n(model, session.weights, entry.question, candidates)
        rewards = true_reward(truth, [default, ranking.best])
        verdict = "prefers the pick" if rewards[1] > rewards[0] else "prefers the default" if rewards[1] < rewards[0] else "tie"
        wins += 1.0 if rewards[1] > rewards[0] else 0.5 if rewards[1] == rewards[0] else 0.0
        console.print(f"   [bold]{entry.question}[/bold]")
        console.print(f"      default:      {default}")
        console.print(f"      personalized: {ranking.best}")
        console.print(f"      true reward {rewards[0]:+.2f} -> {rewards[1]:+.2f}: the user {verdict}")

    console.print("[bold]6. Accuracy on new users' held-out answers[/bold] (all new users, one seed)")
    pool = pad_answers(split.pool, new_users)
    test = pad_answers(split.test, new_users)
    budgets = [5, 10, 20]
    table = Table("answers", "active (PReF)", "random", "oracle")
    oracle = float(np.nanmean(pairwise_accuracy(test.true_diff, test.labels, test.mask)))
    curves = {}
    for strategy in ("active", "random"):
        weights = simulate_onboarding(pool, z, model.prior_mean_, model.prior_precision(), budgets, strategy, seed)
        curves[strategy] = {b: float(np.nanmean(score_weights(weights[b], test, z)[0])) for b in budgets}
    for b in budgets:
        table.add_row(str(b), f"{curves['active'][b]:.3f}", f"{curves['random'][b]:.3f}", f"{oracle:.3f}")
    console.print(table)
    if llm:
        console.print("[bold]7. A real LLM personalized at inference time[/bold] (SmolLM2-135M-Instruct, CPU)")
        _llm_answer(model, session, truth, seed, console)
    elapsed = time.perf_counter() - started
    console.print(f"done in {elapsed:.0f} s")
    return {"curves": curves, "oracle": oracle, "wins": wins / len(prompts), "seconds": elapsed, "user": user_id}
