"""Simplex mixtures of K prototype rewards, the model PAL-B and LoRe share.

r_u(item) = sum_k w_uk R_k(item) with w_u on the probability simplex and R = module(features) (n, K).
Seen users' weights are softmax(logits) trained jointly with the module by Bradley-Terry maximum
likelihood plus an L2 penalty on the prototype reward differences (Adam, early stopping on held-out
answers; the L2 strength with the lowest held-out loss among a few is kept). A new user fits only w_u
on the simplex with the prototypes frozen (batched projected gradient, :func:`fit_simplex_weights`),
shrunk towards the seen users' mean weight with a strength chosen on seen users' held-out answers
(0 = pure simplex MLE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from preflm.baselines.common import SeenAnswers, choose_strength, fit_simplex_weights, standardize
from preflm.eval.harness import FewShotMethod
from preflm.eval.onboarding import PaddedAnswers, random_order
from preflm.factorize.training import train_with_early_stopping
from preflm.metrics import pooled_accuracy

DEFAULT_STRENGTHS = (0.0, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_L2 = (1e-4, 1e-3, 1e-2)
TUNING_BUDGETS = (5, 10)
DENSE_CELL_LIMIT = 20_000_000
ModuleFactory = Callable[[int, int], torch.nn.Module]


@dataclass(frozen=True)
class _AnswerCells:
    """Seen answers as (asked pair row, user) cells of the pairs x users matrix."""

    first: torch.Tensor
    second: torch.Tensor
    row: torch.Tensor
    user: torch.Tensor
    n_users: int

    def logits(self, rewards: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Logits of the answers ``index`` under item rewards (n, K) and user weights (U, K).

        When it fits, all (asked pair, user) cells are computed densely and the answers gathered from
        them, which avoids scattering gradients answer by answer (several times faster on CPU).
        """
        differences = rewards[self.first] - rewards[self.second]
        row, user = self.row[index], self.user[index]
        if len(self.first) * self.n_users <= DENSE_CELL_LIMIT:
            return (differences @ weights.T).reshape(-1)[row * self.n_users + user]
        return (differences[row] * weights[user]).sum(-1)


class SimplexMixtureModel:
    """Prototype rewards ``build_module(d, K)`` over standardized features; users on the simplex.

    ``l2`` penalizes the prototype reward differences (as PReF's L2 does); with several values, one
    model is trained per value and the one with the lowest held-out loss is kept.
    """

    def __init__(
        self,
        build_module: ModuleFactory,
        n_prototypes: int = 8,
        l2: float | tuple[float, ...] = DEFAULT_L2,
        learning_rate: float = 1e-2,
        max_steps: int = 2000,
        eval_every: int = 25,
        patience: int = 8,
        strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
    ):
        if n_prototypes < 1:
            raise ValueError(f"n_prototypes must be >= 1, got {n_prototypes}")
        self.build_module, self.n_prototypes = build_module, n_prototypes
        self.l2_candidates = tuple(l2) if isinstance(l2, (tuple, list)) else (float(l2),)
        self.learning_rate, self.max_steps = learning_rate, max_steps
        self.eval_every, self.patience = eval_every, patience
        self.strengths = strengths

    def fit(self, features: np.ndarray, pairs: np.ndarray, seen: SeenAnswers, seed: int) -> "SimplexMixtureModel":
        x = torch.as_tensor(standardize(features), dtype=torch.float32)
        asked = np.unique(seen.pair)
        row_of = np.full(len(pairs), -1)
        row_of[asked] = np.arange(len(asked))
        cells = _AnswerCells(
            first=torch.as_tensor(pairs[asked, 0]),
            second=torch.as_tensor(pairs[asked, 1]),
            row=torch.as_tensor(row_of[seen.pair]),
            user=torch.as_tensor(seen.user),
            n_users=seen.n_users,
        )
        label = torch.as_tensor(seen.label, dtype=torch.float32)
        train = torch.as_tensor(np.flatnonzero(~seen.is_val))
        val = torch.as_tensor(np.flatnonzero(seen.is_val)) if seen.is_val.any() else train
        runs = [self._train(x, cells, label, train, val, l2, seed) for l2 in self.l2_candidates]
        best = min(range(len(runs)), key=lambda i: runs[i][2]["best_validation_loss"])
        module, user_logits, self.history_ = runs[best]
        self.l2_ = self.l2_candidates[best]
        self.l2_losses_ = {l2: run[2]["best_validation_loss"] for l2, run in zip(self.l2_candidates, runs)}
        with torch.no_grad():
            val_logits = cells.logits(module(x), torch.softmax(user_logits, -1), val)
            rewards = module(x).double().numpy()
            self.user_weights_ = torch.softmax(user_logits, -1).double().numpy()
        self.module_ = module
        self.validation_accuracy_ = pooled_accuracy(val_logits.numpy(), label[val].numpy())
        self.pair_rewards_ = rewards[pairs[:, 0]] - rewards[pairs[:, 1]]
        self.anchor_ = self.user_weights_.mean(0)
        self._choose_strength(seen, seed)
        return self

    def _train(self, x, cells: "_AnswerCells", label, train, val, l2: float, seed: int):
        """Joint Bradley-Terry fit of the module and seen users' softmax weights for one L2 value."""
        torch.manual_seed(seed)
        module = self.build_module(x.shape[1], self.n_prototypes)
        user_logits = torch.nn.Parameter(torch.zeros(cells.n_users, self.n_prototypes))

        def train_loss(step: int) -> torch.Tensor:
            rewards = module(x)
            logits = cells.logits(rewards, torch.softmax(user_logits, -1), train)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, label[train])
            differences = rewards[cells.first] - rewards[cells.second]
            return loss + l2 * differences.pow(2).sum(-1).mean()

        def validation_loss() -> dict:
            logits = cells.logits(module(x), torch.softmax(user_logits, -1), val)
            return {"loss": float(torch.nn.functional.binary_cross_entropy_with_logits(logits, label[val]))}

        history = train_with_early_stopping(
            list(module.parameters()) + [user_logits], train_loss, validation_loss,
            self.max_steps, self.learning_rate, self.eval_every, self.patience,
        )
        return module.eval(), user_logits, history

    def _choose_strength(self, seen: SeenAnswers, seed: int) -> None:
        """Shrinkage towards the mean weight that best predicts seen users' held-out answers."""
        held_out = seen.part("val")
        order = random_order(held_out.mask, seed)
        target = held_out.take(order, max(TUNING_BUDGETS))

        def accuracy(strength: float) -> float:
            values = []
            for budget in TUNING_BUDGETS:
                weights = self.fit_users(held_out.take(order, 0, budget), strength)
                values.append(pooled_accuracy(self.scores(weights, target.pair), target.labels, target.mask))
            finite = [v for v in values if np.isfinite(v)]
            return float(np.mean(finite)) if finite else float("nan")

        self.strength_, self.strength_scores_ = choose_strength(self.strengths, accuracy)

    def fit_users(self, answers: PaddedAnswers, strength: float | None = None) -> np.ndarray:
        """Simplex weights (B, K) of each user from their answers, prototypes frozen."""
        strength = self.strength_ if strength is None else strength
        return fit_simplex_weights(
            self.pair_rewards_[answers.pair], answers.labels, answers.mask, self.anchor_, strength
        )

    def scores(self, weights: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
        """Each user's reward differences on their pairs (B, M)."""
        return np.einsum("bmk,bk->bm", self.pair_rewards_[pair_index], weights)


def simplex_mixture_method(name: str, make_model: Callable[[], SimplexMixtureModel]) -> FewShotMethod:
    """Harness adapter for simplex-mixture models: fit prototypes on seen users, new users' weights only."""

    def fit(features, split, seed):
        model = make_model().fit(features, split.train.pairs, SeenAnswers.from_split(split, seed), seed)
        return model, {"validation_accuracy": model.validation_accuracy_, "best_step": model.history_["best_step"]}

    return FewShotMethod(name, fit)
