"""The evaluation harness: train on seen users, onboard new users from their pool, score on their test set.

Every method gets the same seen users, the same new users and the same answers. A method is anything
with ``fit(features, split, seed)`` and ``test_scores(...)`` (see :class:`Method`); PReF, its ablations,
the known-phi bound and every baseline are :class:`FewShotMethod` adapters around a fitted model.
:func:`evaluate_methods` returns one long table (method, strategy, seed, budget, user, accuracy, auc);
summaries, paired differences and the report are group-bys over it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from preflm.data.matrix import AnswerMatrix
from preflm.data.split import DatasetSplit
from preflm.eval.onboarding import PaddedAnswers, first_answers, pad_answers, simulate_onboarding
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.factorize.users import fit_user_weights, population_prior
from preflm.metrics import mean_ci, pairwise_accuracy, pairwise_auc

TABLE_COLUMNS = ("method", "strategy", "seed", "budget", "user", "accuracy", "auc")


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


FitModel = Callable[[np.ndarray, DatasetSplit, int], "tuple[Any, dict]"]


class FewShotMethod:
    """The one harness adapter: fit a model on seen users, infer each new user from pool answers, score.

    ``fit_model(features, split, seed)`` returns ``(model, info)``; the model has ``fit_users(answers)``
    (weights of users from their padded answers) and ``scores(weights, pair_index)``. With
    ``supports_active`` the model is a :class:`LinearUsers` and chooses its questions (any registered
    selector); otherwise every method sees the pool answers in one shared random order.
    """

    def __init__(self, name: str, fit_model: FitModel, supports_active: bool = False):
        self.name, self.fit_model, self.supports_active = name, fit_model, supports_active

    def fit(self, features, split, seed):
        self.model, info = self.fit_model(features, split, seed)
        return info

    def test_scores(self, pool, test, budgets, strategy, seed):
        model = self.model
        if self.supports_active:
            weights = simulate_onboarding(
                pool, model.pair_differences, model.prior_mean, model.prior_precision, budgets, strategy, seed
            )
        else:
            weights = {budget: model.fit_users(first_answers(pool, budget, seed)) for budget in budgets}
        return {budget: np.where(test.mask, model.scores(w, test.pair), 0.0) for budget, w in weights.items()}


@dataclass(frozen=True)
class LinearUsers:
    """Users as weights over fixed pair features with a Gaussian prior: PReF's view of new users."""

    pair_differences: np.ndarray
    prior_mean: np.ndarray
    prior_precision: np.ndarray

    def fit_users(self, answers: PaddedAnswers) -> np.ndarray:
        weights, _ = fit_user_weights(
            answers.gather(self.pair_differences), answers.labels, self.prior_mean, self.prior_precision,
            mask=answers.mask,
        )
        return weights

    def scores(self, weights: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
        return np.einsum("bnj,bj->bn", self.pair_differences[pair_index], weights)


def pref_method(name: str = "pref", config: FactorizeConfig | None = None) -> FewShotMethod:
    """Reward factorization: learned base rewards, lambda by MAP Newton, questions by any selector.

    Each harness seed trains with ``seed`` = that seed index (the config's own seed is replaced), so
    every method sees the same seeds.
    """
    config = config or FactorizeConfig()

    def fit(features, split, seed):
        model = RewardFactorization(replace(config, seed=seed)).fit(features, split.train, progress=False)
        users = LinearUsers(model.pair_differences(features, split.train.pairs), model.prior_mean_, model.prior_precision())
        info = {"validation_accuracy": model.validation_accuracy_, "svd_init_used": float(model.svd_init_used_)}
        if model.n_factors_selection_:
            info["n_factors_used"] = float(model.config.n_factors)
        if model.residual_directions_ is not None:
            info["residual_strength_used"] = float(model.config.residual_strength)
        return users, info

    return FewShotMethod(name, fit, supports_active=True)


def known_phi_method(item_true_features: np.ndarray) -> FewShotMethod:
    """Upper bound on feature learning: the true base features, lambda learned from the same answers.

    Seen users' weights are fitted on the true features to form the population prior.
    """

    def fit(features, split, seed):
        phi = item_true_features
        z = phi[split.train.pairs[:, 0]] - phi[split.train.pairs[:, 1]]
        seen = pad_answers(split.train, split.train.answered_users())
        J = z.shape[1]
        weights, _ = fit_user_weights(seen.gather(z), seen.labels, np.zeros(J), 1e-2 * np.eye(J), mask=seen.mask)
        mean, cov = population_prior(weights)
        return LinearUsers(z, mean, np.linalg.inv(cov)), {}

    return FewShotMethod("known_phi", fit, supports_active=True)


@dataclass
class HarnessConfig:
    """What to measure: budgets of answers, question strategies, seeds."""

    budgets: list[int] = field(default_factory=lambda: list(range(1, 41)))
    strategies: tuple[str, ...] = ("active", "random")
    seeds: int = 3

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        if not self.budgets or min(self.budgets) < 0:
            raise ValueError(f"budgets must be answer counts >= 0, got {self.budgets}")
        if not self.strategies:
            raise ValueError("name at least one question selector")


def evaluate_methods(
    features: np.ndarray,
    split: DatasetSplit,
    methods: list[Method],
    config: HarnessConfig | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Run every method through the same users and answers.

    Returns the long table (one row per method, strategy, seed, budget and new user) and a dict of facts
    about the run (sizes, the oracle's per-user figures, each method's fit info and time).
    """
    config = config or HarnessConfig()
    users = split.new_users
    if len(users) == 0:
        raise ValueError("no new users with both pool and test answers: nothing to evaluate")
    pool = pad_answers(split.pool, users)
    test = pad_answers(split.test, users)
    largest_pool = int(pool.mask.sum(1).max())
    if max(config.budgets) > largest_pool:
        raise ValueError(
            f"budgets go up to {max(config.budgets)} answers but no new user has more than {largest_pool} pool answers"
        )
    info: dict = {
        "n_seen_users": int(len(split.train.answered_users())),
        "n_new_users": int(len(users)),
        "n_train_answers": int(split.train.n_answers),
        "mean_pool_size": float(pool.mask.sum(1).mean()),
        "mean_test_size": float(test.mask.sum(1).mean()),
        "budgets": list(config.budgets),
        "seeds": config.seeds,
        "fit": {},
    }
    if test.true_diff is not None:
        info["oracle"] = {
            "accuracy": pairwise_accuracy(test.true_diff, test.labels, test.mask),
            "auc": pairwise_auc(test.true_diff, test.labels, test.mask),
        }
    total = sum(len(config.strategies if m.supports_active else ("random",)) for m in methods) * config.seeds
    bar = tqdm(total=total, desc="evaluating", disable=not progress)
    blocks = []
    for method in methods:
        strategies = config.strategies if method.supports_active else ("random",)
        fit_info, fit_seconds = [], []
        for seed in range(config.seeds):
            start = time.perf_counter()
            fit_info.append(method.fit(features, split, seed))
            fit_seconds.append(time.perf_counter() - start)
            for strategy in strategies:
                bar.set_postfix(method=method.name, strategy=strategy, seed=seed)
                scores = method.test_scores(pool, test, config.budgets, strategy, seed)
                for budget in config.budgets:
                    blocks.append(pd.DataFrame({
                        "method": method.name, "strategy": strategy, "seed": seed, "budget": budget,
                        "user": np.arange(len(users)),
                        "accuracy": pairwise_accuracy(scores[budget], test.labels, test.mask),
                        "auc": pairwise_auc(scores[budget], test.labels, test.mask),
                    }))
                bar.update(1)
        entry = {"train_seconds": float(np.mean(fit_seconds))}
        entry.update({key: float(np.mean([f[key] for f in fit_info])) for key in fit_info[0]})
        if "n_factors_used" in fit_info[0]:
            entry["n_factors_by_seed"] = [int(f["n_factors_used"]) for f in fit_info]
        if "residual_strength_used" in fit_info[0]:
            entry["residual_strength_by_seed"] = [f["residual_strength_used"] for f in fit_info]
        info["fit"][method.name] = entry
    bar.close()
    return pd.concat(blocks, ignore_index=True), info


def _summarize(values) -> dict:
    mean, low, high = mean_ci(np.asarray(values, dtype=float))
    return {"mean": mean, "ci": [low, high]}


def per_user_table(table: pd.DataFrame) -> pd.DataFrame:
    """Each new user's figures averaged over seeds: (method, strategy, budget, user) -> accuracy, auc."""
    return table.groupby(["method", "strategy", "budget", "user"], sort=False)[["accuracy", "auc"]].mean().reset_index()


def summarize(table: pd.DataFrame, info: dict) -> dict:
    """The JSON-able results: per method, strategy and budget, mean and 95% interval over new users."""
    results = {k: v for k, v in info.items() if k not in ("fit", "oracle")}
    if "oracle" in info:
        results["oracle"] = {metric: _summarize(values) for metric, values in info["oracle"].items()}
    results["methods"] = {}
    users = per_user_table(table)
    for (name, strategy), group in users.groupby(["method", "strategy"], sort=False):
        entry = results["methods"].setdefault(name, {**info["fit"].get(name, {}), "strategies": {}})
        entry["strategies"][strategy] = {
            str(budget): {"accuracy": _summarize(rows["accuracy"]), "auc": _summarize(rows["auc"])}
            for budget, rows in group.groupby("budget", sort=False)
        }
    return results


def paired_difference(table: pd.DataFrame, first: tuple[str, str], second: tuple[str, str], budget: int) -> dict:
    """Mean per-user accuracy difference (first - second) at a budget, with a paired 95% t-interval.

    ``first``/``second`` are (method, strategy). Both saw the same new users, so pairing removes the
    user-to-user spread that makes unpaired intervals overlap.
    """
    users = per_user_table(table[table["budget"] == budget])

    def per_user(key):
        rows = users[(users["method"] == key[0]) & (users["strategy"] == key[1])]
        return rows.set_index("user")["accuracy"]

    return _summarize((per_user(first) - per_user(second)).to_numpy())


def standard_methods(
    matrix: AnswerMatrix,
    config: FactorizeConfig,
    ablations: bool = True,
    known_phi: bool = True,
) -> list[Method]:
    """PReF, its ablations and the known-phi bound (where the data has true features).

    The ablations: SVD init forced on (the paper) and off (``pref`` itself chooses between the two on
    seen users' held-out prompts when ``svd_init="auto"``), no L2, and no residual base rewards (when the
    config has them).
    """
    methods: list[Method] = [pref_method("pref", config)]
    if ablations:
        methods.append(pref_method("pref_svd_init", replace(config, svd_init=True)))
        methods.append(pref_method("pref_no_svd_init", replace(config, svd_init=False)))
        methods.append(pref_method("pref_no_l2", replace(config, l2=0.0)))
        if config.residual_factors:
            methods.append(pref_method("pref_no_residual", replace(config, residual_factors=0)))
    if known_phi and matrix.item_true_features is not None:
        methods.append(known_phi_method(matrix.item_true_features))
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
    methods = [pref_method(f"J={J}", replace(config, n_factors=J, n_factors_choices="")) for J in factors]
    results = summarize(*evaluate_methods(features, split, methods, harness, progress))
    return {str(J): results["methods"][f"J={J}"]["strategies"]["active"] for J in factors}
