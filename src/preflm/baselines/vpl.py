"""Variational Preference Learning (Poddar et al. 2024, "Personalizing RLHF with VPL").

An encoder embeds each answered pair (chosen, rejected) with an MLP, pools a user's pairs (masked mean,
permutation invariant) and outputs a Gaussian posterior q(z | answers) over a latent z. The reward
r(item, z) is an MLP on [features, z]. Training maximizes the ELBO on seen users: for each user a
random context of their answers (1..max_context, one size per step) gives q, a sampled z scores
other answers of the same user (Bradley-Terry), minus beta * KL(q || N(0, I)); early stopping on
held-out answers. A new user's z is the posterior mean given the same answers the other methods see.

Defaults (beta = 0.01, 128 hidden units, learning rate 1e-3) were picked by seen users' held-out
loss on the Attributes world; beta = 1 collapses the posterior (z ignored: a pooled reward).
"""

from __future__ import annotations

import numpy as np
import torch

from preflm.baselines.common import SeenAnswers, standardize
from preflm.eval.harness import FewShotMethod
from preflm.eval.onboarding import PaddedAnswers, random_order
from preflm.factorize.training import train_with_early_stopping
from preflm.metrics import pooled_accuracy

VALIDATION_CONTEXTS = (5, 20)


class VPLNetwork(torch.nn.Module):
    """Pair encoder -> Gaussian posterior over z; reward MLP on [features, z].

    The first layers are linear in the item features, so they are computed once per item and gathered
    for pairs; ties enter the encoder as soft chosen/rejected mixtures (label y weighs a as chosen).
    """

    def __init__(self, input_dim: int, latent_dim: int = 8, hidden_size: int = 128):
        super().__init__()
        self.latent_dim = latent_dim
        self.chosen = torch.nn.Linear(input_dim, hidden_size)
        self.rejected = torch.nn.Linear(input_dim, hidden_size, bias=False)
        self.pair_mlp = torch.nn.Sequential(torch.nn.GELU(), torch.nn.Linear(hidden_size, hidden_size), torch.nn.GELU())
        self.posterior = torch.nn.Linear(hidden_size, 2 * latent_dim)
        self.item_layer = torch.nn.Linear(input_dim, hidden_size)
        self.latent_layer = torch.nn.Linear(latent_dim, hidden_size, bias=False)
        self.reward_out = torch.nn.Linear(hidden_size, 1, bias=False)

    def encode(
        self, x: torch.Tensor, first: torch.Tensor, second: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
    ):
        """Posterior mean and log-variance (B, L) from answered pairs (B, n) of items ``first``/``second``."""
        hidden = self.chosen.out_features
        projected = torch.cat([self.chosen(x), self.rejected(x)], dim=-1)
        at_a, at_b = projected[first], projected[second]
        y = labels.unsqueeze(-1)
        pre = y * (at_a[..., :hidden] + at_b[..., hidden:]) + (1 - y) * (at_b[..., :hidden] + at_a[..., hidden:])
        embedded = self.pair_mlp(pre) * mask.unsqueeze(-1)
        pooled = embedded.sum(-2) / mask.sum(-1, keepdim=True).clamp(min=1)
        mean, log_var = self.posterior(pooled).chunk(2, dim=-1)
        return mean, log_var.clamp(-8.0, 8.0)

    def reward_differences(self, x: torch.Tensor, first: torch.Tensor, second: torch.Tensor, z: torch.Tensor):
        """r(a, z_u) - r(b, z_u) for pairs (B, M) and latents (B, L)."""
        items = self.item_layer(x)
        user = self.latent_layer(z).unsqueeze(-2)
        reward = lambda i: self.reward_out(torch.nn.functional.gelu(items[i] + user)).squeeze(-1)  # noqa: E731
        return reward(first) - reward(second)


def _kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)


class VPLModel:
    """Estimator: amortized latent-variable reward model trained on seen users (``fit``), applied by ``encode``."""

    def __init__(
        self,
        latent_dim: int = 8,
        hidden_size: int = 128,
        kl_weight: float = 0.01,
        max_context: int = 40,
        target_size: int = 32,
        learning_rate: float = 1e-3,
        max_steps: int = 3000,
        eval_every: int = 25,
        patience: int = 30,
    ):
        self.latent_dim, self.hidden_size, self.kl_weight = latent_dim, hidden_size, kl_weight
        self.max_context, self.target_size = max_context, target_size
        self.learning_rate, self.max_steps = learning_rate, max_steps
        self.eval_every, self.patience = eval_every, patience

    def fit(self, features: np.ndarray, pairs: np.ndarray, seen: SeenAnswers, seed: int) -> "VPLModel":
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        self.x_ = torch.as_tensor(standardize(features), dtype=torch.float32)
        self.pairs_ = torch.as_tensor(pairs)
        self.network_ = network = VPLNetwork(self.x_.shape[1], self.latent_dim, self.hidden_size)
        train = seen.part("train")
        pair, labels = torch.as_tensor(train.pair), torch.as_tensor(train.labels, dtype=torch.float32)
        mask = torch.as_tensor(train.mask)
        n_users, width = pair.shape
        largest_context = max(1, min(self.max_context, width - 1))

        def train_loss(step: int) -> torch.Tensor:
            """One ELBO estimate: every user's answers shuffled, the first c are context, the next are targets.

            c is drawn per step (1..max_context) so the encoder learns every budget; users with fewer
            answers simply contribute fewer context/target entries (masked).
            """
            size = int(torch.randint(1, largest_context + 1, (1,), generator=generator))
            keys = torch.rand((n_users, width), generator=generator).masked_fill(~mask, 2.0)
            order = keys.argsort(dim=1)[:, : size + self.target_size]
            p, y, m = pair.gather(1, order), labels.gather(1, order), mask.gather(1, order)
            context, target = slice(0, size), slice(size, None)
            first, second = self.pairs_[p, 0], self.pairs_[p, 1]
            mean, log_var = network.encode(self.x_, first[:, context], second[:, context], y[:, context], m[:, context])
            z = mean + torch.randn(mean.shape, generator=generator) * (0.5 * log_var).exp()
            logits = network.reward_differences(self.x_, first[:, target], second[:, target], z)
            nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[:, target], reduction="none")
            in_target = m[:, target]
            has_context = m[:, context].any(-1)
            kl = (_kl_to_standard_normal(mean, log_var) * has_context).sum()
            return ((nll * in_target).sum() + self.kl_weight * kl) / in_target.sum().clamp(min=1)

        held_out = seen.part("val")
        fixed_order = random_order(train.mask, seed)

        def validation_loss() -> dict:
            contexts = [train.take(fixed_order, 0, c) for c in VALIDATION_CONTEXTS]
            return {"loss": float(np.mean([self._held_out_loss(context, held_out)[0] for context in contexts]))}

        self.history_ = train_with_early_stopping(
            list(network.parameters()), train_loss, validation_loss, self.max_steps, self.learning_rate,
            self.eval_every, self.patience,
        )
        network.eval()
        with torch.no_grad():
            self.validation_accuracy_ = float(
                np.mean([self._held_out_loss(train.take(fixed_order, 0, c), held_out)[1] for c in VALIDATION_CONTEXTS])
            )
        return self

    def _held_out_loss(self, context: PaddedAnswers, target: PaddedAnswers) -> tuple[float, float]:
        """BCE and accuracy on ``target`` answers with z = posterior mean from ``context``."""
        z = self.fit_users(context)
        logits = self.scores(z, target.pair)
        labels = torch.as_tensor(target.labels)
        nll = torch.nn.functional.binary_cross_entropy_with_logits(torch.as_tensor(logits), labels, reduction="none")
        loss = float((nll * torch.as_tensor(target.mask)).sum() / max(target.mask.sum(), 1))
        return loss, pooled_accuracy(logits, target.labels, target.mask)

    def fit_users(self, answers: PaddedAnswers) -> np.ndarray:
        """Posterior mean z (B, L) of each user given their answers."""
        p = torch.as_tensor(answers.pair)
        with torch.no_grad():
            mean, _ = self.network_.encode(
                self.x_, self.pairs_[p, 0], self.pairs_[p, 1],
                torch.as_tensor(answers.labels, dtype=torch.float32), torch.as_tensor(answers.mask),
            )
        return mean.double().numpy()

    def scores(self, z: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
        """Reward differences (B, M) of each user's pairs under their latent z (B, L)."""
        p = torch.as_tensor(pair_index)
        with torch.no_grad():
            out = self.network_.reward_differences(
                self.x_, self.pairs_[p, 0], self.pairs_[p, 1], torch.as_tensor(z, dtype=torch.float32)
            )
        return out.double().numpy()


def vpl_method(name: str = "vpl", **model_options) -> FewShotMethod:
    """Harness adapter: z of each new user from their first answers (shared random order)."""

    def fit(features, split, seed):
        model = VPLModel(**model_options).fit(features, split.train.pairs, SeenAnswers.from_split(split, seed), seed)
        return model, {"validation_accuracy": model.validation_accuracy_, "best_step": model.history_["best_step"]}

    return FewShotMethod(name, fit)
