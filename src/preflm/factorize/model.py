"""Reward factorization: J base rewards phi = head(features) and one weight vector per seen user.

P(user u prefers a over b) = sigmoid(lambda_u . (phi(a) - phi(b))). Fitting is logistic matrix
factorization: SVD initialization (closed-form ridge fit of a linear head to the top-J pair factors),
then regularized maximum likelihood with early stopping on held-out answers. Saved as safetensors
(tensors) + JSON (config, user ids, featurizer spec); never pickle.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy.special import expit

from preflm.data.matrix import AnswerMatrix
from preflm.factorize.config import FactorizeConfig
from preflm.factorize.svd_init import svd_factors
from preflm.factorize.training import train_with_early_stopping, validation_mask
from preflm.factorize.users import fit_user_weights, population_prior
from preflm.metrics import pairwise_accuracy

FORMAT_VERSION = 1


def make_head(config: FactorizeConfig, input_dim: int) -> torch.nn.Module:
    """Linear map (bias cancels in differences) or a one-hidden-layer MLP onto J base rewards."""
    if config.head == "linear":
        return torch.nn.Linear(input_dim, config.n_factors, bias=False)
    return torch.nn.Sequential(
        torch.nn.Linear(input_dim, config.hidden_size),
        torch.nn.GELU(),
        torch.nn.Linear(config.hidden_size, config.n_factors, bias=False),
    )


class RewardFactorization:
    """Estimator for base rewards and user weights (scikit-learn style: ``fit``, ``score``).

    ``fit(features, answers)`` takes item features (one row per item of ``answers``) and the seen users'
    answers. ``featurizer`` (an instance, kept loaded) or ``featurizer_spec`` (rebuilt on first use) tells
    how texts become features, for :meth:`rewards` and onboarding questions given as texts. After fitting: ``user_ids_``, ``user_weights_`` (users x J), ``prior_mean_``/``prior_cov_``
    (population of user weights, the prior for new users) and ``history_``.
    """

    def __init__(
        self, config: FactorizeConfig | None = None, featurizer_spec: dict | None = None, featurizer=None, **overrides
    ):
        base = config.to_dict() if config is not None else {}
        self.config = FactorizeConfig(**{**base, **overrides})
        self.featurizer_spec = featurizer.spec() if featurizer is not None else featurizer_spec
        self._featurizer = featurizer
        self.head_: torch.nn.Module | None = None
        self.history_: list[dict] = []

    def _check_fitted(self) -> None:
        if self.head_ is None:
            raise RuntimeError("this RewardFactorization is not fitted yet: call fit() or load()")

    def _standardize(self, features: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.feature_mean_.shape[0]:
            raise ValueError(f"expected features of shape (n, {self.feature_mean_.shape[0]}), got {tuple(x.shape)}")
        return (x - self.feature_mean_) / self.feature_scale_

    def base_rewards(self, features: np.ndarray) -> np.ndarray:
        """phi(x, y) for each row of features: (n, J)."""
        self._check_fitted()
        with torch.no_grad():
            return self.head_(self._standardize(features)).numpy().astype(np.float64)

    def pair_differences(self, features: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """Delta phi = phi(a) - phi(b) for item-index pairs (n, 2): (n, J)."""
        phi = self.base_rewards(features)
        return phi[pairs[:, 0]] - phi[pairs[:, 1]]

    def user_index(self, user_id: str) -> int:
        self._check_fitted()
        matches = np.flatnonzero(self.user_ids_ == str(user_id))
        if not matches.size:
            raise KeyError(f"unknown user {user_id!r}: not among the {len(self.user_ids_)} seen users")
        return int(matches[0])

    def decision_function(self, features: np.ndarray, answers: AnswerMatrix) -> np.ndarray:
        """Logit of "a preferred" for each answer of a seen user."""
        self._check_fitted()
        diffs = self.pair_differences(features, answers.pairs)
        index = np.full(answers.n_users, -1)
        for user in answers.answered_users():
            index[user] = self.user_index(answers.user_ids[user])
        weights = self.user_weights_[index[answers.answer_user]]
        return np.einsum("nj,nj->n", diffs[answers.answer_pair], weights)

    def score(self, features: np.ndarray, answers: AnswerMatrix) -> float:
        """Pairwise accuracy on seen users' answers (ties excluded)."""
        return float(pairwise_accuracy(self.decision_function(features, answers), answers.answer_value))

    def fit(self, features: np.ndarray, answers: AnswerMatrix, progress: bool = True) -> "RewardFactorization":
        """Learn the head and the user weights from seen users' answers."""
        cfg = self.config
        features = np.asarray(features, dtype=np.float32)
        if features.shape[0] != answers.n_items:
            raise ValueError(f"features have {features.shape[0]} rows but the answers have {answers.n_items} items")
        if answers.n_answers == 0:
            raise ValueError("no answers to train on")
        torch.manual_seed(cfg.seed)

        users = answers.answered_users()
        user_column = np.full(answers.n_users, -1)
        user_column[users] = np.arange(len(users))
        self.user_ids_ = np.asarray(answers.user_ids[users], dtype=object)
        self.feature_mean_ = torch.as_tensor(features.mean(0))
        self.feature_scale_ = torch.as_tensor(features.std(0) + 1e-6)
        x = self._standardize(features)

        is_val = validation_mask(answers, cfg.val_fraction, cfg.seed, by=cfg.validation_by)
        pair = torch.tensor(answers.answer_pair)
        user = torch.tensor(user_column[answers.answer_user])
        label = torch.tensor(answers.answer_value, dtype=torch.float32)
        train_idx = torch.as_tensor(np.flatnonzero(~is_val))
        val_idx = torch.as_tensor(np.flatnonzero(is_val))
        monitor = val_idx if len(val_idx) else train_idx
        pairs = torch.tensor(answers.pairs)

        head = make_head(cfg, x.shape[1])
        user_weights = torch.nn.Parameter(0.1 * torch.randn(len(users), cfg.n_factors))
        if cfg.svd_init:
            self._svd_initialize(head, user_weights, x, answers, user_column, ~is_val)
        item_a, item_b = pairs[pair, 0], pairs[pair, 1]
        lam_l2 = torch.tensor(cfg.l2)

        def logits_for(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            phi = head(x)
            diffs = phi[item_a[index]] - phi[item_b[index]]
            return (diffs * user_weights[user[index]]).sum(-1), diffs

        def train_loss(step: int) -> torch.Tensor:
            batch = train_idx
            if len(train_idx) > cfg.batch_size:
                batch = train_idx[torch.randint(len(train_idx), (cfg.batch_size,))]
            logits, diffs = logits_for(batch)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, label[batch])
            return loss + lam_l2 * (diffs.pow(2).sum(-1).mean() + user_weights.pow(2).sum(-1).mean())

        def validate() -> dict:
            logits, _ = logits_for(monitor)
            return {
                "loss": float(torch.nn.functional.binary_cross_entropy_with_logits(logits, label[monitor])),
                "accuracy": float(pairwise_accuracy(logits.numpy(), label[monitor].numpy())),
            }

        run = train_with_early_stopping(
            list(head.parameters()) + [user_weights], train_loss, validate, cfg.max_steps, cfg.learning_rate,
            cfg.eval_every, cfg.patience, progress, "training base rewards",
        )
        if run["best_step"] == 0:
            raise ValueError(
                "the held-out loss was never finite: check the features for NaN/inf, or use l2 > 0 / a lower learning rate"
            )
        self.head_ = head.eval()
        self.user_weights_ = user_weights.detach().numpy().astype(np.float64)
        self.history_ = run["history"]
        self.best_step_ = run["best_step"]
        self.validation_accuracy_ = next(h["val_accuracy"] for h in self.history_ if h["step"] == run["best_step"])
        self.prior_mean_, self.prior_cov_ = population_prior(self.user_weights_)
        return self

    def _svd_initialize(self, head, user_weights, x, answers, user_column, train_mask) -> None:
        """Users <- V_J sqrt(S_J); head <- ridge fit of Delta features onto U_J sqrt(S_J); then one logit scale.

        The scale is split evenly between the head's output layer and the users, so neither side starts
        much larger than the other (a lopsided start overfits within a few hundred steps).
        """
        cfg = self.config
        train = answers.subset(train_mask)
        dense = train.dense(users=answers.answered_users())
        asked = ~np.isnan(dense).all(axis=1)
        pair_factors, user_factors = svd_factors(dense[asked], cfg.n_factors, cfg.svd_rank, cfg.svd_iterations)
        pairs = answers.pairs[asked]
        delta_x = (x[pairs[:, 0]] - x[pairs[:, 1]]).double()
        target = torch.as_tensor(pair_factors)
        with torch.no_grad():
            if cfg.head == "linear":
                gram = delta_x.T @ delta_x + max(cfg.l2, 1e-3) * len(delta_x) * torch.eye(delta_x.shape[1], dtype=torch.float64)
                head.weight.copy_(torch.linalg.solve(gram, delta_x.T @ target).T.float())
            user_weights.copy_(torch.as_tensor(user_factors, dtype=torch.float32))
        if cfg.head == "mlp":
            optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate)
            phi_target = target.float()
            for _ in range(self.config.svd_head_steps):
                phi = head(x)
                loss = (phi[pairs[:, 0]] - phi[pairs[:, 1]] - phi_target).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            phi = head(x)
            diffs = phi[answers.pairs[train.answer_pair, 0]] - phi[answers.pairs[train.answer_pair, 1]]
            raw = (diffs * user_weights[user_column[train.answer_user]]).sum(-1).double()
        root = math.sqrt(fit_logit_scale(raw.numpy(), train.answer_value))
        output_layer = head if cfg.head == "linear" else head[-1]
        with torch.no_grad():
            output_layer.weight.mul_(root)
            user_weights.mul_(root)

    def prior_precision(self) -> np.ndarray:
        """Precision of the population prior for a new user's weights (scaled by ``prior_strength``)."""
        self._check_fitted()
        return self.config.prior_strength * np.linalg.inv(self.prior_cov_)

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"head.{k}": v.contiguous() for k, v in self.head_.state_dict().items()}
        tensors.update(
            feature_mean=self.feature_mean_,
            feature_scale=self.feature_scale_,
            user_weights=torch.as_tensor(self.user_weights_),
            prior_mean=torch.as_tensor(self.prior_mean_),
            prior_cov=torch.as_tensor(self.prior_cov_),
        )
        save_file(tensors, str(directory / "model.safetensors"))
        meta = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "featurizer": self.featurizer_spec,
            "user_ids": [str(u) for u in self.user_ids_],
            "input_dim": int(self.feature_mean_.shape[0]),
            "best_step": int(self.best_step_),
            "validation_accuracy": self.validation_accuracy_,
            "history": self.history_,
        }
        (directory / "config.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "RewardFactorization":
        """Load a model written by :meth:`save`."""
        directory = Path(directory)
        if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
            raise FileNotFoundError(f"{directory} is not a preflm model (needs config.json and model.safetensors)")
        meta = json.loads((directory / "config.json").read_text())
        model = cls(FactorizeConfig.from_dict(meta["config"]), featurizer_spec=meta.get("featurizer"))
        tensors = load_file(str(directory / "model.safetensors"))
        head = make_head(model.config, meta["input_dim"])
        head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")})
        model.head_ = head.eval()
        model.feature_mean_ = tensors["feature_mean"]
        model.feature_scale_ = tensors["feature_scale"]
        model.user_weights_ = tensors["user_weights"].numpy()
        model.prior_mean_ = tensors["prior_mean"].numpy()
        model.prior_cov_ = tensors["prior_cov"].numpy()
        model.user_ids_ = np.asarray(meta["user_ids"], dtype=object)
        model.best_step_ = meta["best_step"]
        model.validation_accuracy_ = meta["validation_accuracy"]
        model.history_ = meta["history"]
        return model

    def featurizer(self):
        """The featurizer this model was trained with (cached on disk), built once and kept loaded."""
        if self._featurizer is None:
            from preflm.featurize import CachedFeaturizer, build_featurizer

            if self.featurizer_spec is None:
                raise ValueError("this model was trained on raw features and has no featurizer to embed texts")
            self._featurizer = CachedFeaturizer(build_featurizer(self.featurizer_spec))
        return self._featurizer

    def text_base_rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """phi(x, y) (n, J) of texts, embedded by the model's featurizer."""
        return self.base_rewards(self.featurizer().transform(list(prompts), list(responses)))

    def text_pair_differences(
        self, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
    ) -> np.ndarray:
        """Delta phi = phi(x, a) - phi(x, b) (n, J) of question texts, in one featurizer call."""
        n = len(prompts)
        phi = self.text_base_rewards(list(prompts) * 2, list(responses_a) + list(responses_b))
        return phi[:n] - phi[n:]

    def rewards(self, prompts: Sequence[str], responses: Sequence[str], weights: np.ndarray) -> np.ndarray:
        """Personalized rewards lambda . phi(x, y): weights (J,) give (n,), weights (U, J) give (U, n)."""
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape[-1] != self.config.n_factors:
            raise ValueError(f"weights have {weights.shape[-1]} factors but the model has {self.config.n_factors}")
        return weights @ self.text_base_rewards(prompts, responses).T

    def fit_users(
        self, z: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None, init: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """New users' weights and Laplace covariance from their answers, base rewards and prior fixed.

        z: (..., n, J) Delta phi of the answered pairs, labels (..., n) in {0, 0.5, 1}; leading dims batch
        users. MAP Newton under the seen users' population prior (as ``implicit``'s ``recalculate_user``).
        """
        self._check_fitted()
        return fit_user_weights(z, labels, self.prior_mean_, self.prior_precision(), mask=mask, init=init)


def fit_logit_scale(raw: np.ndarray, labels: np.ndarray, iterations: int = 25) -> float:
    """Scalar s > 0 maximizing the Bradley-Terry likelihood of sigmoid(s * raw) (1-D Newton)."""
    s = 1.0
    for _ in range(iterations):
        p = expit(s * raw)
        grad = np.sum((p - labels) * raw)
        hess = np.sum(p * (1 - p) * raw**2) + 1e-9
        s = float(np.clip(s - grad / hess, 1e-3, 1e3))
    return s
