"""Fine-tune a sentence encoder end to end inside the reward factorization (the base rewards' backbone).

phi(x, y) = head(standardize(normalize(mean_pool(encoder(y))))) and P(u prefers a) =
sigmoid(lambda_u . (phi(a) - phi(b))). The head, the user weights and the standardization start from a
:class:`RewardFactorization` fitted on the frozen encoder's features (so SVD initialization and L2 carry
over); then the encoder's top ``train_layers`` layers (all when None), the head and the users are trained
together on the Bradley-Terry loss. Each step takes a batch of *prompts* and all of their answers, so
every item is encoded once per epoch. Early stopping holds out whole prompts, as in the unseen-prompts
protocol. The tuned encoder is saved as a plain Hugging Face folder; its features are those of
``EncoderLayersFeaturizer(folder, layers=[last])``, on which a fresh factorization is then fitted.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from preflm.data.matrix import AnswerMatrix
from preflm.data.split import answer_prompts, prompt_holdout_mask
from preflm.factorize.config import ConfigDict, FactorizeConfig
from preflm.factorize.model import RewardFactorization
from preflm.metrics import pooled_accuracy


@dataclass
class EncoderTuneConfig(ConfigDict):
    """How to fine-tune the encoder: which layers, how long, how fast, how regularized."""

    model: str = "all-MiniLM-L6-v2"
    train_layers: int | None = 2
    max_length: int = 256
    epochs: int = 3
    prompts_per_step: int = 16
    learning_rate: float = 3e-5
    head_learning_rate: float = 1e-3
    l2: float = 1e-3
    val_prompt_fraction: float = 0.15
    seed: int = 0


class _Tuned(torch.nn.Module):
    def __init__(self, encoder, head, user_weights, mean, scale):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.user_weights = torch.nn.Parameter(user_weights)
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def embed(self, ids, mask):
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def phi(self, ids, mask):
        return self.head((self.embed(ids, mask) - self.mean) / self.scale)


def _encode_items(tokenizer, texts, max_length):
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def _batch(token_ids, items, pad_id, device):
    rows = [token_ids[i] for i in items]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        ids[k, : len(row)] = torch.as_tensor(row)
        mask[k, : len(row)] = 1
    return ids.to(device), mask.to(device)


def frozen_embeddings(model: _Tuned, token_ids, items, pad_id, device, batch_size=64) -> torch.Tensor:
    """Normalized mean-pooled embeddings of ``items`` without gradients (length-sorted batches)."""
    order = np.argsort([len(token_ids[i]) for i in items], kind="stable")
    out = torch.zeros(len(items), model.mean.shape[0])
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            ids, mask = _batch(token_ids, [items[i] for i in chosen], pad_id, device)
            out[torch.as_tensor(chosen)] = model.embed(ids, mask).float().cpu()
    return out


def tune_encoder(
    train: AnswerMatrix,
    config: EncoderTuneConfig | None = None,
    factorize: FactorizeConfig | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune the encoder on seen users' answers; save it to ``out_dir``; return the history.

    ``train`` holds only training answers (under the unseen-prompts protocol: training prompts).
    """
    from preflm.featurize.layers import load_encoder

    cfg = config or EncoderTuneConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, encoder = load_encoder(cfg.model)
    encoder = encoder.float()
    layers = encoder.encoder.layer if hasattr(encoder, "encoder") else None
    if cfg.train_layers is not None:
        if layers is None:
            raise ValueError(f"{cfg.model}: train_layers needs a BERT-style encoder (encoder.layer); use None")
        for p in encoder.parameters():
            p.requires_grad_(False)
        for layer in layers[len(layers) - cfg.train_layers :]:
            for p in layer.parameters():
                p.requires_grad_(True)

    held = prompt_holdout_mask(train, cfg.val_prompt_fraction, seed=rng)
    fit_part = train.subset(~held)
    items = np.unique(train.pairs[train.answer_pair].ravel())
    token_ids = {}
    for i, row in zip(items, _encode_items(tokenizer, train.item_responses[items], cfg.max_length)):
        token_ids[int(i)] = row
    pad_id = tokenizer.pad_token_id
    frozen = _Tuned(encoder, torch.nn.Identity(), torch.zeros(1, 1), torch.zeros(encoder.config.hidden_size),
                    torch.ones(encoder.config.hidden_size)).to(device)
    features = np.zeros((train.n_items, encoder.config.hidden_size), dtype=np.float32)
    features[items] = frozen_embeddings(frozen, token_ids, [int(i) for i in items], pad_id, device).numpy()
    features[np.setdiff1d(np.arange(train.n_items), items)] = features[items].mean(0)  # keeps the standardization
    start = RewardFactorization(replace(factorize or FactorizeConfig(), seed=cfg.seed, l2=cfg.l2))
    start.fit(features, fit_part, progress=False)

    users = fit_part.answered_users()
    column = np.full(train.n_users, -1)
    column[users] = np.arange(len(users))
    model = _Tuned(
        encoder,
        copy.deepcopy(start.head_).train(),
        torch.as_tensor(start.user_weights_, dtype=torch.float32),
        start.feature_mean_.float(),
        start.feature_scale_.float(),
    ).to(device)
    trainable = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": trainable, "lr": cfg.learning_rate},
         {"params": list(model.head.parameters()) + [model.user_weights], "lr": cfg.head_learning_rate}],
        weight_decay=0.0,
    )
    prompt_of_answer, _ = answer_prompts(fit_part)
    fit_prompts = np.unique(prompt_of_answer)
    val = train.subset(held)

    def loss_on(matrix: AnswerMatrix, answers: np.ndarray, phi_of: dict, grad: bool):
        pairs = matrix.pairs[matrix.answer_pair[answers]]
        a = torch.stack([phi_of[int(i)] for i in pairs[:, 0]])
        b = torch.stack([phi_of[int(i)] for i in pairs[:, 1]])
        w = model.user_weights[torch.as_tensor(column[matrix.answer_user[answers]], device=device)]
        logits = ((a - b) * w).sum(-1)
        labels = torch.as_tensor(matrix.answer_value[answers], dtype=torch.float32, device=device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        if grad:
            loss = loss + cfg.l2 * ((a - b).pow(2).sum(-1).mean() + w.pow(2).sum(-1).mean())
        return loss, logits

    def validate() -> tuple[float, float]:
        model.eval()
        known = val.subset(column[val.answer_user] >= 0)
        val_items = [int(i) for i in np.unique(known.pairs[known.answer_pair].ravel())]
        with torch.no_grad():
            emb = frozen_embeddings(model, token_ids, val_items, pad_id, device).to(device)
            phi = model.head((emb - model.mean) / model.scale)
            phi_of = {i: phi[k] for k, i in enumerate(val_items)}
            loss, logits = loss_on(known, np.arange(known.n_answers), phi_of, grad=False)
        model.train()
        return float(loss), pooled_accuracy(logits.cpu().numpy(), known.answer_value)

    history = [dict(zip(("val_loss", "val_accuracy"), validate()), epoch=0, seconds=0.0)]
    best = (history[0]["val_loss"], copy.deepcopy(model.encoder.state_dict()), 0)
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        order = rng.permutation(fit_prompts)
        for s in range(0, len(order), cfg.prompts_per_step):
            answers = np.flatnonzero(np.isin(prompt_of_answer, order[s : s + cfg.prompts_per_step]))
            step_items = [int(i) for i in np.unique(fit_part.pairs[fit_part.answer_pair[answers]].ravel())]
            ids, mask = _batch(token_ids, step_items, pad_id, device)
            phi = model.phi(ids, mask)
            loss, _ = loss_on(fit_part, answers, {i: phi[k] for k, i in enumerate(step_items)}, grad=True)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss, val_acc = validate()
        history.append({"epoch": epoch, "val_loss": val_loss, "val_accuracy": val_acc,
                        "seconds": time.perf_counter() - started})
        if progress:
            print(f"encoder epoch {epoch}: val loss {val_loss:.4f} acc {val_acc:.3f} ({history[-1]['seconds']:.0f}s)")
        if val_loss < best[0] - 1e-5:
            best = (val_loss, copy.deepcopy(model.encoder.state_dict()), epoch)
    model.encoder.load_state_dict(best[1])
    result = {"history": history, "best_epoch": best[2], "config": cfg.to_dict(), "weights_id": uuid.uuid4().hex}
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.encoder.to("cpu").save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        result["path"] = str(out_dir)
    result["encoder"] = model.encoder
    if not math.isfinite(best[0]):
        raise ValueError("the held-out loss was never finite while tuning the encoder")
    return result
