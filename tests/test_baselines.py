"""Baselines: shared answer order, solvers, and each baseline on a planted problem where its model is true.

Each planted problem draws answers Bradley-Terry from the baseline's own model class, so the baseline
must come close to the oracle (the true rewards) on new users' held-out answers through the harness;
a poor number in the PReF comparison is then the model's limit, not a bug.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from preflm.baselines import (
    BASELINE_NAMES,
    lore_method,
    pal_method,
    per_user_method,
    pooled_method,
    register_baselines,
    vpl_method,
)
from preflm.baselines.common import fit_simplex_weights, project_to_simplex, simplex_objective
from preflm.baselines.per_user import fit_per_user_weights
from preflm.baselines.pooled import ridge_logistic
from preflm.data import split_answers
from preflm.eval.harness import HarnessConfig, evaluate_methods, summarize
from preflm.eval.onboarding import PaddedAnswers, first_answers, pad_answers, random_order
from preflm.factorize.users import fit_user_weights
from preflm.simulate.planted import planted_answers


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These models are tiny: one intra-op thread avoids spin contention on the shared CI cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def planted_split(item_rewards, features, n_seen, answers_per_seen, pool_size, test_size, n_pairs=600, seed=0):
    """Answers from true rewards (users x items): seen users train, new users pool/test; split column kept."""
    matrix, order = planted_answers(
        item_rewards, n_seen, answers_per_seen, pool_size, test_size, n_pairs, np.random.default_rng(seed)
    )
    return features[order], split_answers(matrix, protocol="seen-prompts")


def run_harness(method, features, split, budgets):
    config = HarnessConfig(budgets=list(budgets), strategies=("random",), seeds=1)
    results = summarize(*evaluate_methods(features, split, [method], config, progress=False))
    per_budget = results["methods"][method.name]["strategies"]["random"]
    return {b: per_budget[str(b)]["accuracy"]["mean"] for b in budgets}, results["oracle"]["accuracy"]["mean"]


def test_random_order_is_shared_and_puts_real_answers_first():
    mask = np.array([[True, True, True, False], [True, False, False, False]])
    order = random_order(mask, seed=3)
    assert np.array_equal(order, random_order(mask, seed=3))
    assert np.all(np.take_along_axis(mask, order, 1) == np.sort(mask, axis=1)[:, ::-1])
    answers = PaddedAnswers(np.arange(8).reshape(2, 4), np.ones((2, 4)), mask)
    taken = first_answers(answers, 2, seed=3)
    assert taken.pair.shape == (2, 2)
    assert taken.mask.tolist() == [[True, True], [True, False]]
    assert set(taken.pair[0]) <= {0, 1, 2}
    assert not np.array_equal(random_order(np.ones((50, 20), bool), 0), random_order(np.ones((50, 20), bool), 1))


def test_simplex_projection_and_fit():
    rng = np.random.default_rng(0)
    projected = project_to_simplex(rng.normal(size=(100, 5)) * 3)
    assert np.allclose(projected.sum(-1), 1) and np.all(projected >= 0)
    inside = rng.dirichlet(np.ones(4), size=10)
    assert np.allclose(project_to_simplex(inside), inside)

    differences = rng.normal(size=(6, 15, 3)) * 2
    labels = (rng.random((6, 15)) < 0.5).astype(float)
    mask = rng.random((6, 15)) < 0.8
    anchor = np.full(3, 1 / 3)
    for strength in (0.0, 2.0):
        w = fit_simplex_weights(differences, labels, mask, anchor, strength, iterations=500)
        assert np.allclose(w.sum(-1), 1) and np.all(w >= 0)
        best = simplex_objective(differences, labels, mask, anchor, strength, w)
        candidates = rng.dirichlet(np.ones(3), size=400)
        for c in candidates:
            assert np.all(best <= simplex_objective(differences, labels, mask, anchor, strength, c[None]) + 1e-6)


def test_per_user_span_solver_is_exact_and_pooled_counts_match_rows():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 7, 20))
    y = (rng.random((4, 7)) < 0.5).astype(float)
    mask = rng.random((4, 7)) < 0.8
    full, _ = fit_user_weights(z, y, np.zeros(20), 3.0 * np.eye(20), mask=mask)
    assert np.allclose(fit_per_user_weights(z, y, mask, 3.0), full, atol=1e-8)

    rows = rng.normal(size=(30, 5))
    repeats = rng.integers(1, 4, 30)
    labels = rng.random(30)
    expanded = ridge_logistic(np.repeat(rows, repeats, 0), np.repeat(labels, repeats), 0.5, np.ones(repeats.sum()))
    assert np.allclose(ridge_logistic(rows, labels, 0.5, counts=repeats.astype(float)), expanded, atol=1e-6)


def test_registered_baselines_build_methods_that_run_under_their_names():
    from preflm.eval.run import METHODS
    from preflm.factorize import FactorizeConfig

    register_baselines()
    rng = np.random.default_rng(8)
    features = rng.normal(size=(60, 3))
    features, split = planted_split(rng.normal(size=(14, 3)) @ features.T, features, 8, 30, 10, 10, n_pairs=120, seed=8)
    for name in BASELINE_NAMES:
        method = METHODS[name](FactorizeConfig(n_factors=2))
        accuracy, _ = run_harness(method, features, split, (2,))
        assert method.name == name and 0.0 <= accuracy[2] <= 1.0


def test_pooled_recovers_one_shared_reward():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 10))
    shared = 3.0 * rng.normal(size=10) / np.sqrt(10)
    rewards = np.tile(features @ shared, (60, 1))
    features, split = planted_split(rewards, features, 40, 100, 40, 60, seed=2)
    accuracy, oracle = run_harness(pooled_method(), features, split, (1, 40))
    assert accuracy[1] == accuracy[40]
    assert accuracy[1] >= oracle - 0.03


def test_per_user_learns_arbitrary_linear_users_from_many_answers():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(400, 6))
    weights = 3.0 * rng.normal(size=(50, 6)) / np.sqrt(6)
    features, split = planted_split(weights @ features.T, features, 30, 150, 200, 100, n_pairs=800, seed=3)
    accuracy, oracle = run_harness(per_user_method(), features, split, (5, 200))
    assert accuracy[200] >= oracle - 0.04
    assert accuracy[200] > accuracy[5] + 0.05


def _simplex_users(rng, n_users, n_prototypes):
    return rng.dirichlet(np.full(n_prototypes, 0.3), size=n_users)


def test_lore_recovers_simplex_mixtures_of_a_linear_basis():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(400, 12))
    basis = 6.0 * rng.normal(size=(12, 3)) / np.sqrt(12)
    mixing = _simplex_users(rng, 90, 3)
    features, split = planted_split(mixing @ (features @ basis).T, features, 60, 150, 40, 80, seed=4)
    accuracy, oracle = run_harness(lore_method(n_basis=3), features, split, (2, 40))
    assert accuracy[40] >= oracle - 0.05
    assert accuracy[40] > accuracy[2]


def test_pal_recovers_simplex_mixtures_of_nonlinear_prototypes():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(400, 8))
    projected = np.tanh(features @ rng.normal(size=(8, 6)) / np.sqrt(8) * 2)
    prototypes = 4.0 * rng.normal(size=(3, 6)) / np.sqrt(6)
    mixing = _simplex_users(rng, 90, 3)
    rewards = mixing @ (projected @ prototypes.T).T
    features, split = planted_split(rewards, features, 60, 150, 40, 80, seed=5)
    method = pal_method(n_prototypes=3, hidden_size=32, preference_dim=8)
    accuracy, oracle = run_harness(method, features, split, (2, 40))
    assert accuracy[40] >= oracle - 0.05
    assert accuracy[40] > accuracy[2]


def test_vpl_identifies_latent_user_types_from_few_answers():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(400, 8))
    types = 4.0 * rng.normal(size=(3, 8)) / np.sqrt(8)
    user_type = rng.integers(0, 3, 90)
    features, split = planted_split(types[user_type] @ features.T, features, 60, 150, 40, 80, seed=6)
    method = vpl_method(latent_dim=2, hidden_size=32, max_steps=1500)
    accuracy, oracle = run_harness(method, features, split, (1, 20))
    assert accuracy[20] >= oracle - 0.05
    assert accuracy[20] > accuracy[1] + 0.05


FEW_ANSWER_METHODS = {
    "per_user": lambda: per_user_method(),
    "vpl": lambda: vpl_method(latent_dim=2, hidden_size=16, max_steps=30),
    "pal": lambda: pal_method(n_prototypes=2, hidden_size=16, preference_dim=4, max_steps=30),
    "lore": lambda: lore_method(n_basis=2, max_steps=30),
}


@pytest.mark.parametrize("name", sorted(FEW_ANSWER_METHODS))
def test_baselines_use_exactly_the_first_answers_of_the_shared_order(name):
    """Scores at budget b change when one of the first b answers (shared order) changes, never otherwise."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(80, 4))
    weights = 3.0 * rng.normal(size=(16, 4))
    features, split = planted_split(weights @ features.T, features, 10, 40, 12, 10, n_pairs=150, seed=7)
    method = FEW_ANSWER_METHODS[name]()
    method.fit(features, split, seed=0)
    pool = pad_answers(split.pool, split.new_users)
    test = pad_answers(split.test, split.new_users)
    budget, seed = 3, 5
    before = method.test_scores(pool, test, [budget], "random", seed)[budget]
    order = random_order(pool.mask, seed)
    rows = np.arange(pool.mask.shape[0])[:, None]

    def flipped(columns):
        labels = pool.labels.copy()
        labels[rows, columns] = 1.0 - labels[rows, columns]
        return method.test_scores(replace(pool, labels=labels), test, [budget], "random", seed)[budget]

    assert np.allclose(flipped(order[:, budget:]), before)
    assert not np.allclose(flipped(order[:, :budget]), before)
