"""Reward factorization: J base rewards phi = head(features) and one weight vector per seen user.

P(user u prefers a over b) = sigmoid(lambda_u . (phi(a) - phi(b))). Fitting is logistic matrix
factorization: SVD initialization (closed-form ridge fit of a linear head to the top-J pair factors),
then regularized maximum likelihood with early stopping on held-out answers. Saved as safetensors
(tensors) + JSON (config, user ids, featurizer spec); never pickle. Saving is atomic per file (written
to a temporary folder, fsynced, renamed into place) and ``config.json`` records the ``model_id`` (a content
hash of weights and config), so a partial overwrite, a truncated file or swapped files are caught on load.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from scipy.special import expit
from tqdm.auto import tqdm

from preflm.data.matrix import AnswerMatrix
from preflm.factorize.config import FactorizeConfig
from preflm.factorize.svd_init import answer_factors
from preflm.factorize.training import (
    average_gradients,
    broadcast_parameters,
    process_group,
    reduce_sums,
    train_with_early_stopping,
    validation_mask,
)
from preflm.factorize.users import fit_user_weights, population_prior
from preflm.metrics import pairwise_accuracy

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MIN_ANSWERS_PER_FACTOR = 2
SELECTION_ONLY_FIELDS = ("n_factors_choices", "selection_answers", "residual_strength_choices", "residual_selection_answers")
"""Config fields that only steer choices at fit time (J, the residual strength): not part of a fitted model's identity."""
RESIDUAL_FIELDS = ("residual_factors", "residual_strength")
"""Config fields of the residual base rewards; left out of the identity of a model without them, so models
saved before the residual existed keep their ids."""
EXACT_SVD_LIMIT = 2048
"""Feature matrices whose smaller side is at most this get an exact SVD for the residual directions."""


class ModelFileError(ValueError):
    """A saved model folder that cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: str | Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = Path(path)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _write_synced(path: Path, data: bytes) -> None:
    """Write bytes and force them to disk, so a rename after this never exposes a partial file."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def tensors_digest(tensors: dict[str, torch.Tensor], identity: dict) -> str:
    """Content hash of named tensors (dtype, shape, bytes) and a JSON-able identity: 16 hex characters."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def model_id_of(directory: str | Path) -> str:
    """The ``model_id`` of a saved model folder, recomputed from its files (the same as the fitted model's)."""
    return RewardFactorization.load(directory).model_id


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
    how texts become features, for :meth:`rewards` and onboarding questions given as texts. After fitting: ``user_ids_``, ``user_weights_`` (users x (J + K): K residual weights, 0 for seen users), ``prior_mean_``/``prior_cov_``
    (population of user weights, the prior for new users) and ``history_``.
    """

    def __init__(
        self, config: FactorizeConfig | None = None, featurizer_spec: dict | None = None, featurizer=None, **overrides
    ):
        base = config.to_dict() if config is not None else {}
        self.config = FactorizeConfig(**{**base, **overrides})
        self.featurizer_spec = featurizer.spec() if featurizer is not None else featurizer_spec
        self._featurizer = featurizer
        self.allow_download = False
        self.head_: torch.nn.Module | None = None
        self.history_: list[dict] = []
        self.svd_init_used_: bool | None = None
        self.svd_init_selection_: dict = {}
        self.n_factors_selection_: dict = {}
        self.residual_directions_: torch.Tensor | None = None
        self.residual_selection_: dict = {}

    def _check_fitted(self) -> None:
        if self.head_ is None:
            raise RuntimeError("this RewardFactorization is not fitted yet: call fit() or load()")

    def _standardize(self, features: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.feature_mean_.shape[0]:
            raise ValueError(f"expected features of shape (n, {self.feature_mean_.shape[0]}), got {tuple(x.shape)}")
        return (x - self.feature_mean_) / self.feature_scale_

    @property
    def n_weights(self) -> int:
        """Length of a user's weight vector: the J learned base rewards plus the K residual ones."""
        self._check_fitted()
        residual = 0 if self.residual_directions_ is None else int(self.residual_directions_.shape[0])
        return int(self.config.n_factors) + residual

    def base_rewards(self, features: np.ndarray) -> np.ndarray:
        """phi(x, y) for each row of features: the J learned base rewards, then the K residual ones (n, J + K).

        The residual base rewards are the features' coordinates along their top principal directions
        (fixed at fit time): seen users' weights on them are 0 and a new user's prior there is zero-mean
        with precision ``residual_strength``, so with few answers a user is PReF and with many answers
        their reward can leave the span of the shared base rewards.
        """
        self._check_fitted()
        with torch.no_grad():
            return self._phi(self._standardize(features)).numpy().astype(np.float64)

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        """Base rewards of standardized features: the head's J, then the K residual coordinates."""
        phi = self.head_(x)
        if self.residual_directions_ is not None:
            phi = torch.cat([phi, x @ self.residual_directions_.T], dim=1)
        return phi

    def pair_differences(self, features: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """Delta phi = phi(a) - phi(b) for item-index pairs (n, 2): (n, J + K)."""
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
        answered = answers.answered_users()
        found = pd.Index(self.user_ids_.astype(str)).get_indexer(answers.user_ids[answered].astype(str))
        if (found < 0).any():
            self.user_index(answers.user_ids[answered[np.flatnonzero(found < 0)[0]]])
        index[answered] = found
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
        choices = cfg.factor_choices or [cfg.n_factors]
        self._check_trainable(features, answers, max(choices))
        is_val = validation_mask(answers, cfg.val_fraction, cfg.seed, by=cfg.validation_by)
        if is_val.all():
            raise ValueError(
                f"all {answers.n_answers} answers were held out for validation: give more answers or lower val_fraction"
            )
        users = answers.answered_users()
        user_column = np.full(answers.n_users, -1)
        user_column[users] = np.arange(len(users))
        self.user_ids_ = np.asarray(answers.user_ids[users], dtype=object)
        self.feature_mean_ = torch.as_tensor(features.mean(0))
        self.feature_scale_ = torch.as_tensor(features.std(0) + 1e-6)
        x = self._standardize(features)

        best, fitted, self.n_factors_selection_ = None, None, {}
        for n_factors in choices:
            suffix = f" J={n_factors}" if len(choices) > 1 else ""
            candidate = self._fit_factors(n_factors, x, answers, is_val, user_column, progress, suffix)
            if len(choices) == 1:
                best, fitted = n_factors, candidate
                break
            with torch.no_grad():
                z_all = _answer_differences(candidate["run"]["head"](x), answers)
            seen_mean, seen_cov = population_prior(candidate["run"]["user_weights"].detach().double().numpy())
            score = self._few_answer_accuracy(
                z_all, seen_mean, prior_precision(seen_cov, cfg.prior_strength), answers, is_val, user_column,
                cfg.selection_answers,
            )
            self.n_factors_selection_[str(n_factors)] = {
                "few_answer_accuracy": score, "validation_accuracy": candidate["run"]["validation_accuracy"],
            }
            # Highest few-answer accuracy; choices ascend, so a tie keeps the smaller J (fewer weights to learn).
            if math.isfinite(score) and (fitted is None or score > fitted["score"]):
                best, fitted = n_factors, {**candidate, "score": score}
        if fitted is None:
            raise ValueError(
                "n_factors_choices needs held-out prompts to score each J on: set val_fraction > 0 "
                "(and give seen users answers on more than one prompt)"
            )
        self.config.n_factors = best
        head, user_weights, run = fitted["run"]["head"], fitted["run"]["user_weights"], fitted["run"]
        self.svd_init_used_, self.svd_init_selection_ = fitted["svd_init_used"], fitted["svd_init_selection"]
        self.head_ = head.eval()
        self.history_ = run["history"]
        self.best_step_ = run["best_step"]
        self.validation_accuracy_ = run["validation_accuracy"]
        seen_weights = user_weights.detach().numpy().astype(np.float64)
        prior_mean, prior_cov = population_prior(seen_weights)
        self.residual_directions_, self.residual_selection_ = None, {}
        directions = self._residual_directions(x, answers, cfg.residual_factors, cfg.seed)
        if directions is not None:
            self.residual_directions_ = directions
            K = directions.shape[0]
            strength = self._choose_residual_strength(K, x, answers, is_val, user_column, prior_mean, prior_cov)
            self.config.residual_factors, self.config.residual_strength = int(K), strength
            seen_weights = np.hstack([seen_weights, np.zeros((len(seen_weights), K))])
            prior_mean, prior_cov = self._with_residual_prior(prior_mean, prior_cov, K, strength)
        else:
            self.config.residual_factors = 0
        self.user_weights_ = seen_weights
        self.prior_mean_, self.prior_cov_ = prior_mean, prior_cov
        return self

    @staticmethod
    def _residual_directions(x: torch.Tensor, answers: AnswerMatrix, k: int, seed: int) -> torch.Tensor | None:
        """Top ``k`` principal directions (k, d) of the standardized features of the items seen users answered."""
        answered = np.unique(answers.pairs[answers.answer_pair].ravel())
        k = min(k, len(answered) - 1, x.shape[1])
        if k < 1:
            return None
        rows = x[torch.as_tensor(answered)]
        if min(rows.shape) <= EXACT_SVD_LIMIT:
            rows = rows.double()
            _, _, vt = torch.linalg.svd(rows - rows.mean(0), full_matrices=False)
            directions = vt[:k]
        else:  # float32 and randomized: the feature matrix may be large
            rows = rows - rows.mean(0)
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            _, _, v = torch.svd_lowrank(rows, q=min(k + 20, min(rows.shape)), niter=4)
            torch.random.set_rng_state(generator_state)
            directions = v[:, :k].T
        return directions.float().contiguous()

    @staticmethod
    def _with_residual_prior(mean: np.ndarray, cov: np.ndarray, k: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
        """The population prior over J weights extended by k residual weights ~ N(0, I / strength)."""
        J = len(mean)
        full = np.zeros((J + k, J + k))
        full[:J, :J] = cov
        full[J:, J:] = np.eye(k) / strength
        return np.concatenate([mean, np.zeros(k)]), full

    def _choose_residual_strength(self, k, x, answers, is_val, user_column, prior_mean, prior_cov) -> float:
        """The residual prior's precision: the choice with the best held-out accuracy of seen users refit from
        ``residual_selection_answers`` answers each (see :meth:`_few_answer_accuracy`)."""
        cfg = self.config
        choices = cfg.residual_strengths
        if not choices:
            return float(cfg.residual_strength)
        with torch.no_grad():
            z_all = _answer_differences(self._phi(x), answers)
        best, best_score = None, -1.0
        for strength in sorted(choices, reverse=True):
            mean, cov = self._with_residual_prior(prior_mean, prior_cov, k, strength)
            score = self._few_answer_accuracy(
                z_all, mean, prior_precision(cov, cfg.prior_strength), answers, is_val, user_column,
                cfg.residual_selection_answers,
            )
            self.residual_selection_[f"{strength:g}"] = {"few_answer_accuracy": score}
            # Strictly better only: from the strongest prior down, so a tie keeps the one closer to plain PReF.
            if math.isfinite(score) and score > best_score:
                best, best_score = strength, score
        return float(cfg.residual_strength if best is None else best)

    def _fit_factors(self, n_factors, x, answers, is_val, user_column, progress, label_suffix="") -> dict:
        """Train with J = ``n_factors``: with and without the SVD start under ``svd_init="auto"``, keeping the better."""
        cfg = self.config
        choices = [True, False] if cfg.svd_init == "auto" else [bool(cfg.svd_init)]
        runs = {}
        for use_svd in choices:
            label = "training base rewards" + label_suffix
            label += f" (SVD init {'on' if use_svd else 'off'})" if len(choices) > 1 else ""
            runs[use_svd] = self._train(x, answers, is_val, user_column, use_svd, progress, label, n_factors)

        # Best held-out accuracy (the held-out answers are whole prompts by default), then lower loss;
        # on a tie the paper's SVD initialization is kept.
        def rank_of(choice: bool) -> tuple[float, float]:
            accuracy = runs[choice]["validation_accuracy"]
            return (accuracy if math.isfinite(accuracy) else -1.0, -runs[choice]["best_validation_loss"])

        chosen = max(choices, key=rank_of)
        selection = {
            ("on" if c else "off"): {"validation_accuracy": runs[c]["validation_accuracy"],
                                     "validation_loss": runs[c]["best_validation_loss"], "best_step": runs[c]["best_step"]}
            for c in choices
        }
        return {"run": runs[chosen], "svd_init_used": chosen, "svd_init_selection": selection}

    def _few_answer_accuracy(
        self, z_all, prior_mean, precision, answers, is_val, user_column, k: int, draws: int = 8
    ) -> float:
        """Held-out accuracy of seen users whose weights are refit from only ``k`` answers each.

        A new user gives about ten answers, so a J that fits seen users' hundreds of answers best can still
        be too many weights to learn from ten; this scores each J (and each residual strength) the way new
        users meet it. ``z_all`` is the pair difference of every answer. For every seen user: draw
        ``k`` of their training answers (``draws`` times), fit the weights under the prior
        (``prior_mean``, ``precision``), and score the user's held-out-prompt answers.
        """
        cfg = self.config
        column = user_column[answers.answer_user]
        train = np.flatnonzero(~is_val & (answers.answer_value != 0.5))
        held_out = np.flatnonzero(is_val)
        n_users = int((user_column >= 0).sum())
        counts = np.bincount(column[train], minlength=n_users)
        if not held_out.size or not counts.any():
            return float("nan")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # A user with fewer than k answers is refit from those alone (the rest of the row is masked out).
        slots = np.minimum(np.arange(k)[None, :], np.maximum(counts, 1)[:, None] - 1)
        mask = (np.arange(k)[None, :] < counts[:, None]).astype(float)
        rng = np.random.default_rng(cfg.seed)
        scores = []
        for _ in range(draws):
            # Each user's answers in a fresh random order (memory O(answers)), then the first k of them.
            order = train[np.lexsort((rng.random(len(train)), column[train]))]
            picked = order[np.minimum(starts[:, None] + slots, len(order) - 1)]
            weights, _ = fit_user_weights(z_all[picked], answers.answer_value[picked], prior_mean, precision, mask=mask)
            logits = np.einsum("nj,nj->n", z_all[held_out], weights[column[held_out]])
            scores.append(pairwise_accuracy(logits, answers.answer_value[held_out]))
        return float(np.nanmean(scores))

    def _train(
        self, x, answers, is_val, user_column, use_svd: bool, progress: bool, description: str, n_factors: int
    ) -> dict:
        """One training run of head and user weights (early stopping on the held-out answers ``is_val``)."""
        cfg = replace(self.config, n_factors=n_factors)
        torch.manual_seed(cfg.seed)
        n_users = int((user_column >= 0).sum())
        pair = torch.tensor(answers.answer_pair)
        user = torch.tensor(user_column[answers.answer_user])
        label = torch.tensor(answers.answer_value, dtype=torch.float32)
        train_idx = torch.as_tensor(np.flatnonzero(~is_val))
        val_idx = torch.as_tensor(np.flatnonzero(is_val))
        monitor = val_idx if len(val_idx) else train_idx
        pairs = torch.tensor(answers.pairs)

        head = make_head(cfg, x.shape[1])
        user_weights = torch.nn.Parameter(0.1 * torch.randn(n_users, cfg.n_factors))
        if use_svd:
            self._svd_initialize(cfg, head, user_weights, x, answers, user_column, ~is_val)
        item_a, item_b = pairs[pair, 0], pairs[pair, 1]
        lam_l2 = torch.tensor(cfg.l2)
        parameters = list(head.parameters()) + [user_weights]
        world, rank = process_group()
        batch_size, after_backward = cfg.batch_size, None
        if world > 1:
            # Data-parallel over answers: each process draws its share of every batch from its own
            # slice of the training answers and scores its slice of the held-out ones; gradients and
            # held-out sums are averaged, so every process takes the same steps and stops together.
            broadcast_parameters(parameters)
            train_idx, monitor = train_idx[rank::world], monitor[rank::world]
            batch_size = max(1, cfg.batch_size // world)
            after_backward = lambda: average_gradients(parameters)  # noqa: E731

        def logits_for(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            phi = head(x)
            diffs = phi[item_a[index]] - phi[item_b[index]]
            return (diffs * user_weights[user[index]]).sum(-1), diffs

        def train_loss(step: int) -> torch.Tensor:
            batch = train_idx
            if len(train_idx) > batch_size:
                batch = train_idx[torch.randint(len(train_idx), (batch_size,))]
            logits, diffs = logits_for(batch)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, label[batch])
            return loss + lam_l2 * (diffs.pow(2).sum(-1).mean() + user_weights.pow(2).sum(-1).mean())

        def validate() -> dict:
            logits, _ = logits_for(monitor)
            if world == 1:
                return {
                    "loss": float(torch.nn.functional.binary_cross_entropy_with_logits(logits, label[monitor])),
                    "accuracy": float(pairwise_accuracy(logits.numpy(), label[monitor].numpy())),
                }
            labels = label[monitor]
            decided = labels != 0.5
            loss_sum, n, correct, n_decided = reduce_sums([
                float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")),
                float(len(labels)),
                float((((logits > 0) == (labels > 0.5)) & decided).sum()),
                float(decided.sum()),
            ])
            return {"loss": loss_sum / n, "accuracy": correct / n_decided if n_decided else float("nan")}

        run = train_with_early_stopping(
            parameters, train_loss, validate, cfg.max_steps, cfg.learning_rate,
            cfg.eval_every, cfg.patience, progress and rank == 0, description, after_backward,
        )
        if run["best_step"] == 0:
            raise ValueError(
                "the held-out loss was never finite: check the features for NaN/inf, or use l2 > 0 / a lower learning rate"
            )
        if not all(torch.isfinite(p).all() for p in head.parameters()) or not torch.isfinite(user_weights).all():
            raise ValueError("training produced non-finite weights: use l2 > 0 or a lower learning_rate")
        run["head"], run["user_weights"] = head, user_weights
        run["validation_accuracy"] = next(h["val_accuracy"] for h in run["history"] if h["step"] == run["best_step"])
        return run

    def _check_trainable(self, features: np.ndarray, answers: AnswerMatrix, n_factors: int) -> None:
        """Refuse data that cannot define J base rewards, with a message naming the problem.

        Needs: ``max_steps >= 1``; finite features; answers from at least two users (the prior for new
        users is the spread of seen users); at least one answer that is not a tie; at least
        ``MIN_ANSWERS_PER_FACTOR * J`` decisive answers; and J no larger than the rank the pairs x users
        answer matrix can have, min(users, pairs answered).
        """
        cfg = self.config
        if cfg.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {cfg.max_steps}")
        if answers.n_answers == 0:
            raise ValueError("no answers to train on")
        bad_rows = np.flatnonzero(~np.isfinite(features).all(axis=1)) if features.ndim == 2 else np.array([])
        if bad_rows.size:
            raise ValueError(f"features are not finite (NaN or inf) in {bad_rows.size} row(s), first row {bad_rows[0]}")
        users = answers.answered_users()
        if len(users) < 2:
            only = answers.user_ids[users[0]] if len(users) else None
            raise ValueError(
                f"needs answers from at least 2 users, got only user {only!r}: the prior for new users is the "
                "spread of seen users' weights"
            )
        decisive = int(np.sum(answers.answer_value != 0.5))
        if decisive == 0:
            raise ValueError(f"all {answers.n_answers} answers are ties: there is no preference to learn")
        needed = MIN_ANSWERS_PER_FACTOR * n_factors
        if decisive < needed:
            raise ValueError(
                f"fewer answers than needed: {decisive} non-tie answers for n_factors={n_factors} "
                f"(needs at least {needed}); collect more answers or lower n_factors"
            )
        n_pairs = len(np.unique(answers.answer_pair))
        supported = min(len(users), n_pairs)
        if n_factors > supported:
            raise ValueError(
                f"n_factors={n_factors} is larger than the data supports: {len(users)} users answered "
                f"{n_pairs} pairs, so at most {supported} factors; lower n_factors"
            )

    def _svd_initialize(self, cfg, head, user_weights, x, answers, user_column, train_mask) -> None:
        """Users <- V_J sqrt(S_J); head <- ridge fit of Delta features onto U_J sqrt(S_J); then one logit scale.

        The scale is split evenly between the head's output layer and the users, so neither side starts
        much larger than the other (a lopsided start overfits within a few hundred steps).
        """
        train = answers.subset(train_mask)
        asked, pair_factors, user_factors = answer_factors(
            train, answers.answered_users(), cfg.n_factors, cfg.svd_rank, cfg.svd_iterations, cfg.seed
        )
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
            for _ in range(cfg.svd_head_steps):
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
        return prior_precision(self.prior_cov_, self.config.prior_strength)

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"head.{k}": v.detach().contiguous() for k, v in self.head_.state_dict().items()}
        tensors.update(
            feature_mean=torch.as_tensor(self.feature_mean_),
            feature_scale=torch.as_tensor(self.feature_scale_),
            user_weights=torch.as_tensor(self.user_weights_),
            prior_mean=torch.as_tensor(self.prior_mean_),
            prior_cov=torch.as_tensor(self.prior_cov_),
        )
        if self.residual_directions_ is not None:
            tensors["residual_directions"] = self.residual_directions_.contiguous()
        return tensors

    def _identity(self) -> dict:
        """What besides the tensors decides the model's outputs (hashed into ``model_id``)."""
        # How J was chosen does not change the outputs (the chosen J is n_factors), and leaving it out keeps
        # the ids of models saved before n_factors_choices existed.
        left_out = SELECTION_ONLY_FIELDS + (RESIDUAL_FIELDS if self.residual_directions_ is None else ())
        config = {k: v for k, v in self.config.to_dict().items() if k not in left_out}
        return {
            "config": config,
            "featurizer": self.featurizer_spec,
            "user_ids": [str(u) for u in self.user_ids_],
            "input_dim": int(self.feature_mean_.shape[0]),
        }

    @property
    def model_id(self) -> str:
        """Content hash of the weights and config: equal for a model and its saved-then-loaded copy.

        Profiles record it, so weights learned against one model are never served with another.
        """
        self._check_fitted()
        return tensors_digest(self._tensors(), self._identity())

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``, each atomically.

        Both files are written and fsynced in a temporary sibling folder first. A new folder is then
        renamed into place in one step; into an existing folder the weights are renamed first and the
        config last, and other files there (a tuned ``backbone/``, summaries) are left alone. The config
        records the ``model_id``, so a save interrupted between the two renames is reported by :meth:`load`.
        """
        self._check_fitted()
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ModelFileError(directory, "exists and is not a folder; choose another path to save the model")
        tensors = self._tensors()
        meta = {
            "format_version": FORMAT_VERSION,
            "model_id": tensors_digest(tensors, self._identity()),
            **self._identity(),
            "config": self.config.to_dict(),
            "best_step": int(self.best_step_),
            "validation_accuracy": self.validation_accuracy_,
            "svd_init_used": self.svd_init_used_,
            "svd_init_selection": self.svd_init_selection_,
            "n_factors_selection": self.n_factors_selection_,
            "residual_selection": self.residual_selection_,
            "history": self.history_,
        }
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".saving", dir=directory.parent))
        try:
            _write_synced(staging / WEIGHTS_FILE, save_safetensors(tensors))
            _write_synced(staging / CONFIG_FILE, json.dumps(meta, indent=2).encode())
            _fsync_directory(staging)
            if not directory.exists():
                staging.rename(directory)
            else:
                os.replace(staging / WEIGHTS_FILE, directory / WEIGHTS_FILE)
                os.replace(staging / CONFIG_FILE, directory / CONFIG_FILE)
                staging.rmdir()
            _fsync_directory(directory)
            _fsync_directory(directory.parent)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return directory

    @staticmethod
    def _read_config(path: Path) -> dict:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(path, "is not UTF-8 text; the file is corrupt") from None
        if not text.strip():
            raise ModelFileError(path, "is empty (an interrupted save?); retrain or restore the model")
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelFileError(path, f"is not valid JSON ({err}); the file is truncated or corrupt") from None
        if not isinstance(meta, dict):
            raise ModelFileError(path, f"must hold a JSON object, got {type(meta).__name__}")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelFileError(
                path, f"unknown format_version {version!r}: this preflm reads format_version {FORMAT_VERSION}"
            )
        missing = [k for k in ("config", "user_ids", "input_dim") if k not in meta]
        if missing:
            raise ModelFileError(path, f"missing field(s) {missing}")
        return meta

    @staticmethod
    def _read_weights(path: Path) -> dict[str, torch.Tensor]:
        try:
            tensors = load_safetensors(path.read_bytes())
        except Exception as err:  # safetensors raises its own error type for every kind of bad file
            raise ModelFileError(path, f"is not a readable safetensors file ({_one_line(err)}); it is truncated or corrupt") from None
        required = ("feature_mean", "feature_scale", "user_weights", "prior_mean", "prior_cov")
        missing = [k for k in required if k not in tensors]
        if missing:
            raise ModelFileError(path, f"missing tensor(s) {missing}")
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise ModelFileError(path, f"tensor {name!r} holds NaN or inf values; the model cannot be used")
        return tensors

    @classmethod
    def load(cls, directory: str | Path, allow_download: bool = False) -> "RewardFactorization":
        """Load a model written by :meth:`save`; a bad file gives one :class:`ModelFileError` naming it.

        Its featurizer reads its models from local files only unless ``allow_download=True``.
        """
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(f"{directory} is not a preflm model (needs config.json and model.safetensors)")
        meta = cls._read_config(config_path)
        tensors = cls._read_weights(weights_path)
        try:
            config = FactorizeConfig.from_dict(meta["config"])
        except (TypeError, ValueError) as err:
            raise ModelFileError(config_path, f"invalid config ({_one_line(err)})") from None
        if "residual_factors" not in meta["config"]:
            config.residual_factors = 0  # saved before the residual existed
        model = cls(config, featurizer_spec=meta.get("featurizer"))
        model.allow_download = allow_download
        mismatch = f"does not match {weights_path.name}"
        n_users, n_weights = len(meta["user_ids"]), config.n_factors + config.residual_factors
        shapes = {
            "feature_mean": (meta["input_dim"],),
            "feature_scale": (meta["input_dim"],),
            "user_weights": (n_users, n_weights),
            "prior_mean": (n_weights,),
            "prior_cov": (n_weights, n_weights),
        }
        if config.residual_factors:
            if "residual_directions" not in tensors:
                raise ModelFileError(weights_path, "missing tensor 'residual_directions' (the config has residual_factors)")
            shapes["residual_directions"] = (config.residual_factors, meta["input_dim"])
        for name, shape in shapes.items():
            if tuple(tensors[name].shape) != shape:
                raise ModelFileError(
                    config_path, f"{mismatch}: {name} has shape {tuple(tensors[name].shape)}, the config implies {shape}"
                )
        head = make_head(config, meta["input_dim"])
        try:
            head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")})
        except RuntimeError as err:
            raise ModelFileError(config_path, f"{mismatch}: the head's weights do not fit ({_one_line(err)[:300]})") from None
        model.head_ = head.eval()
        model.feature_mean_ = tensors["feature_mean"]
        model.feature_scale_ = tensors["feature_scale"]
        model.user_weights_ = tensors["user_weights"].numpy()
        model.prior_mean_ = tensors["prior_mean"].numpy()
        model.prior_cov_ = tensors["prior_cov"].numpy()
        model.user_ids_ = np.asarray(meta["user_ids"], dtype=object)
        model.best_step_ = meta.get("best_step", 0)
        model.validation_accuracy_ = meta.get("validation_accuracy", float("nan"))
        model.history_ = meta.get("history", [])
        model.svd_init_used_ = meta.get("svd_init_used", config.svd_init if isinstance(config.svd_init, bool) else None)
        model.svd_init_selection_ = meta.get("svd_init_selection", {})
        model.n_factors_selection_ = meta.get("n_factors_selection", {})
        model.residual_selection_ = meta.get("residual_selection", {})
        model.residual_directions_ = tensors["residual_directions"] if config.residual_factors else None
        recorded = meta.get("model_id")
        if recorded is not None and recorded != model.model_id:
            raise ModelFileError(
                config_path,
                f"{mismatch} (model_id {recorded} recorded, {model.model_id} computed): the folder was partly "
                "overwritten, e.g. by an interrupted save; save or restore the model again",
            )
        return model

    def featurizer(self):
        """The featurizer this model was trained with (cached on disk), built once and kept loaded.

        Rebuilt from the spec with local files only, unless ``allow_download`` is set (see :meth:`load`).
        """
        if self._featurizer is None:
            from preflm.featurize import CachedFeaturizer, build_featurizer

            if self.featurizer_spec is None:
                raise ValueError("this model was trained on raw features and has no featurizer to embed texts")
            self._featurizer = CachedFeaturizer(build_featurizer(self.featurizer_spec, self.allow_download))
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

    def rewards(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        weights: np.ndarray,
        chunk_size: int = 65_536,
        progress: bool = False,
    ) -> np.ndarray:
        """Personalized rewards lambda . phi(x, y): weights (J,) give (n,), weights (U, J) give (U, n).

        Offline batch scoring: candidates are embedded ``chunk_size`` at a time (a progress bar with
        ``progress``), so many users x many candidates take one call and the featurizer's memory stays bounded.
        """
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape[-1] != self.n_weights:
            raise ValueError(f"weights have {weights.shape[-1]} entries but the model's users have {self.n_weights}")
        prompts, responses = list(prompts), list(responses)
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        out = np.empty(weights.shape[:-1] + (len(prompts),))
        starts = range(0, len(prompts), chunk_size)
        for start in tqdm(starts, desc="scoring", unit="chunk", disable=not progress, leave=False):
            stop = start + chunk_size
            out[..., start:stop] = weights @ self.text_base_rewards(prompts[start:stop], responses[start:stop]).T
        return out

    def fit_users(
        self, z: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None, init: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """New users' weights and Laplace covariance from their answers, base rewards and prior fixed.

        z: (..., n, J) Delta phi of the answered pairs, labels (..., n) in {0, 0.5, 1}; leading dims batch
        users. MAP Newton under the seen users' population prior (as ``implicit``'s ``recalculate_user``).
        """
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        if z.shape[-1:] != (self.n_weights,):
            raise ValueError(f"z has {z.shape[-1] if z.ndim else 0} entries but the model's users have {self.n_weights}")
        if not np.isfinite(z).all():
            raise ValueError("pair differences z hold NaN or inf: check the features of the answered pairs")
        weights, covariance = fit_user_weights(z, labels, self.prior_mean_, self.prior_precision(), mask=mask, init=init)
        if not (np.isfinite(weights).all() and np.isfinite(covariance).all()):
            raise ValueError("fitting user weights gave NaN or inf; the answers or the model's prior are degenerate")
        return weights, covariance


def _answer_differences(phi: torch.Tensor, answers: AnswerMatrix) -> np.ndarray:
    """phi(a) - phi(b) of the pair of every answer (n_answers, columns of phi), in float64."""
    phi = phi.double().numpy()
    pairs = answers.pairs[answers.answer_pair]
    return phi[pairs[:, 0]] - phi[pairs[:, 1]]


def prior_precision(prior_cov: np.ndarray, strength: float) -> np.ndarray:
    """Precision of the population prior for a new user's weights, scaled by ``prior_strength``."""
    return strength * np.linalg.inv(prior_cov)


def fit_logit_scale(raw: np.ndarray, labels: np.ndarray, iterations: int = 25) -> float:
    """Scalar s > 0 maximizing the Bradley-Terry likelihood of sigmoid(s * raw) (1-D Newton)."""
    s = 1.0
    for _ in range(iterations):
        p = expit(s * raw)
        grad = np.sum((p - labels) * raw)
        hess = np.sum(p * (1 - p) * raw**2) + 1e-9
        s = float(np.clip(s - grad / hess, 1e-3, 1e3))
    return s
