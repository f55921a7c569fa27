"""The evaluation harness: train on seen users, onboard new users from their pool, score on their test set.

Every method gets the same seen users, the same new users and the same answers. A method is anything
with ``fit(features, train, seed)`` and ``weights_at(...)``-style scoring (see :class:`Method`); PReF,
its ablations and the known-phi bound are methods here, baselines plug in the same way. For each
budget of answers the harness reports pairwise accuracy (ties excluded) and AUC, averaged over new
users (each user's figure first averaged over seeds) with 95% t-intervals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from preflm.data.matrix import AnswerMatrix
from preflm.data.split import DatasetSplit
from preflm.eval.metrics import mean_ci, pairwise_accuracy, pairwise_auc
from preflm.eval.onboarding import PaddedAnswers, pad_answers, simulate_onboarding
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.onboard.newton import fit_user_weights


class Method(Protocol):
    """A personalization method under evaluation.

    ``fit`` learns from seen users; ``test_scores`` returns, for each budget, scores (B, M) on the new
    users' test pairs (positive = first response preferred) after seeing that many pool answers.
    """

    name: str
    supports_active: bool

    def fit(self, features: np.ndarray, split: DatasetSplit, seed: int) -> dict: ...

    def test_scores(
        self, pool: PaddedAnswers, test: PaddedAnswers, budgets: list[int], strategy: str, seed: int
    ) -> dict[int, np.ndarray]: ...


class PReFMethod:
    """Reward factorization: learned base rewards, lambda by MAP Newton, active or random questions."""

    supports_active = True

    def __init__(self, name: str = "pref", config: FactorizeConfig | None = None):
        self.name, self.config = name, config or FactorizeConfig()

    def fit(self, features, split, seed):
        self.model = RewardFactorization(replace(self.config, seed=seed)).fit(features, split.train, progress=False)
        self.z = self.model.pair_differences(features, split.train.pairs)
        return {"validation_accuracy": self.model.validation_accuracy_}

    def test_scores(self, pool, test, budgets, strategy, seed):
        weights = simulate_onboarding(
            pool.with_z(self.z), self.model.prior_mean_, self.model.prior_precision(), budgets, strategy, seed
        )
        test_z = test.with_z(self.z).z
        return {b: np.einsum("bnj,bj->bn", test_z, w) for b, w in weights.items()}


class KnownPhiMethod:
    """Upper bound on feature learning: the true base features, lambda learned from the same answers.

    Seen users' weights are fitted on the true features to form the population prior.
    """

    name = "known_phi"
    supports_active = True

    def __init__(self, item_true_features: np.ndarray):
        self.item_true_features = item_true_features

    def fit(self, features, split, seed):
        phi = self.item_true_features
        self.z = phi[split.train.pairs[:, 0]] - phi[split.train.pairs[:, 1]]
        users = split.train.answered_users()
        padded = pad_answers(split.train, users, self.z)
        J = self.z.shape[1]
        weights, _ = fit_user_weights(padded.z, padded.labels, np.zeros(J), 1e-2 * np.eye(J), mask=padded.mask)
        self.prior_mean = weights.mean(0)
        self.prior_precision = np.linalg.inv(np.cov(weights, rowvar=False) + 1e-3 * np.eye(J))
        return {}

    def test_scores(self, pool, test, budgets, strategy, seed):
        weights = simulate_onboarding(pool.with_z(self.z), self.prior_mean, self.prior_precision, budgets, strategy, seed)
        test_z = test.with_z(self.z).z
        return {b: np.einsum("bnj,bj->bn", test_z, w) for b, w in weights.items()}


@dataclass
class HarnessConfig:
    """What to measure: budgets of answers, question strategies, seeds."""

    budgets: list[int] = field(default_factory=lambda: list(range(1, 41)))
    strategies: tuple[str, ...] = ("active", "random")
    seeds: int = 3


def _summarize(per_user: np.ndarray) -> dict:
    mean, low, high = mean_ci(per_user)
    return {"mean": mean, "ci": [low, high]}


def evaluate_methods(
    features: np.ndarray,
    split: DatasetSplit,
    methods: list[Method],
    config: HarnessConfig | None = None,
    progress: bool = True,
) -> dict:
    """Run every method through the same users and answers; returns a JSON-able dict of results."""
    config = config or HarnessConfig()
    users = split.new_users
    if len(users) == 0:
        raise ValueError("no new users with both pool and test answers: nothing to evaluate")
    empty_z = np.zeros((split.train.n_pairs, 1))
    pool = pad_answers(split.pool, users, empty_z)
    test = pad_answers(split.test, users, empty_z)
    results: dict = {
        "n_seen_users": int(len(split.train.answered_users())),
        "n_new_users": int(len(users)),
        "n_train_answers": int(split.train.n_answers),
        "mean_pool_size": float(pool.mask.sum(1).mean()),
        "mean_test_size": float(test.mask.sum(1).mean()),
        "budgets": list(config.budgets),
        "seeds": config.seeds,
        "methods": {},
    }
    if split.test.true_reward_diff is not None:
        results["oracle"] = {
            "accuracy": _summarize(pairwise_accuracy(test.true_diff, test.labels, test.mask)),
            "auc": _summarize(pairwise_auc(test.true_diff, test.labels, test.mask)),
        }
    total = sum(len(config.strategies if m.supports_active else ("random",)) for m in methods) * config.seeds
    bar = tqdm(total=total, desc="evaluating", disable=not progress)
    for method in methods:
        strategies = config.strategies if method.supports_active else ("random",)
        accuracy = {s: np.full((config.seeds, len(config.budgets), len(users)), np.nan) for s in strategies}
        auc = {s: np.full_like(accuracy[s], np.nan) for s in strategies}
        fit_info, fit_seconds = [], []
        for seed in range(config.seeds):
            start = time.perf_counter()
            fit_info.append(method.fit(features, split, seed))
            fit_seconds.append(time.perf_counter() - start)
            for strategy in strategies:
                bar.set_postfix(method=method.name, strategy=strategy, seed=seed)
                scores = method.test_scores(pool, test, config.budgets, strategy, seed)
                for i, budget in enumerate(config.budgets):
                    accuracy[strategy][seed, i] = pairwise_accuracy(scores[budget], test.labels, test.mask)
                    auc[strategy][seed, i] = pairwise_auc(scores[budget], test.labels, test.mask)
                bar.update(1)
        entry: dict = {"train_seconds": float(np.mean(fit_seconds)), "strategies": {}}
        for key in fit_info[0]:
            entry[key] = float(np.mean([info[key] for info in fit_info]))
        for strategy in strategies:
            acc_users = np.nanmean(accuracy[strategy], axis=0)
            auc_users = np.nanmean(auc[strategy], axis=0)
            entry["strategies"][strategy] = {
                str(budget): {
                    "accuracy": _summarize(acc_users[i]),
                    "auc": _summarize(auc_users[i]),
                    "per_user_accuracy": [None if np.isnan(v) else float(v) for v in acc_users[i]],
                }
                for i, budget in enumerate(config.budgets)
            }
        results["methods"][method.name] = entry
    bar.close()
    return results


def paired_difference(results: dict, first: tuple[str, str], second: tuple[str, str], budget: int) -> dict:
    """Mean per-user accuracy difference (first - second) at a budget, with a paired 95% t-interval.

    ``first``/``second`` are (method, strategy). Both saw the same new users, so pairing removes the
    user-to-user spread that makes unpaired intervals overlap.
    """
    def per_user(key):
        values = results["methods"][key[0]]["strategies"][key[1]][str(budget)]["per_user_accuracy"]
        return np.array([np.nan if v is None else v for v in values])

    return _summarize(per_user(first) - per_user(second))


def standard_methods(
    matrix: AnswerMatrix,
    config: FactorizeConfig,
    ablations: bool = True,
    known_phi: bool = True,
) -> list[Method]:
    """PReF, its SVD/L2 ablations and the known-phi bound (where the data has true features)."""
    methods: list[Method] = [PReFMethod("pref", config)]
    if ablations:
        methods.append(PReFMethod("pref_no_svd_init", replace(config, svd_init=False)))
        methods.append(PReFMethod("pref_no_l2", replace(config, l2=0.0)))
    if known_phi and matrix.item_true_features is not None:
        methods.append(KnownPhiMethod(matrix.item_true_features))
    return methods


def j_sweep(
    features: np.ndarray,
    split: DatasetSplit,
    config: FactorizeConfig,
    factors: list[int],
    budgets: tuple[int, ...] = (10, 40),
    seeds: int = 2,
    progress: bool = True,
) -> dict:
    """Accuracy and AUC with active questions as the number of base rewards J varies."""
    harness = HarnessConfig(budgets=list(budgets), strategies=("active",), seeds=seeds)
    methods = [PReFMethod(f"J={J}", replace(config, n_factors=J)) for J in factors]
    out = evaluate_methods(features, split, methods, harness, progress)
    return {
        str(J): out["methods"][f"J={J}"]["strategies"]["active"] for J in factors
    }
