"""Fine-tune a sentence encoder end to end inside the reward factorization (the base rewards' backbone).

phi(x, y) = head(standardize(normalize(mean_pool(encoder(y))))) and P(u prefers a) =
sigmoid(lambda_u . (phi(a) - phi(b))). The head, the user weights and the standardization start from a
:class:`RewardFactorization` fitted on the frozen encoder's features (so SVD initialization and L2 carry
over); then the encoder's top ``train_layers`` layers (all when None), the head and the users are trained
together on the Bradley-Terry loss. Each step takes a batch of *prompts* and all of their answers, so
every item is encoded once per epoch. Early stopping holds out whole prompts, as in the unseen-prompts
protocol. The tuned encoder is saved as a plain Hugging Face folder; its features are those of
``EncoderLayersFeaturizer(folder, layers=[last])``, on which a fresh factorization is then fitted.

With ``checkpoint_dir`` set, the end of every epoch writes ``checkpoint_dir/epoch-<n>`` (written under a
``.partial`` name, then renamed, so a kill never leaves a broken newest checkpoint): accelerate's
``save_accelerator_state`` files, as in :mod:`preflm.factorize.backbone` (trained weights, head, user weights
and standardization as safetensors; optimizer and RNG states), the best encoder weights so far as
safetensors, and epoch, history, best loss and a fingerprint of the settings and the answers as JSON.
Each epoch's prompt order and dropout are seeded from (seed, epoch), so calling :func:`tune_encoder` again
with the same ``checkpoint_dir`` continues after the last finished epoch and ends where an uninterrupted
run ends; a checkpoint of other settings or other answers is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from preflm.data.matrix import AnswerMatrix
from preflm.data.split import answer_prompts, prompt_holdout_mask
from preflm.factorize.checkpoints import numbered_checkpoints, publish_checkpoint
from preflm.factorize.config import ConfigDict, FactorizeConfig
from preflm.factorize.model import RewardFactorization, make_head
from preflm.metrics import pooled_accuracy

CHECKPOINT_FORMAT = 1
# Settings a run may change when it resumes a checkpoint; every other setting must match.
RESUMABLE_CHANGES = ("epochs", "checkpoint_dir")


@dataclass
class EncoderTuneConfig(ConfigDict):
    """How to fine-tune the encoder: which layers, how long, how fast, how regularized, where to checkpoint."""

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
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.prompts_per_step < 1:
            raise ValueError(f"prompts_per_step must be >= 1, got {self.prompts_per_step}")
        if self.train_layers is not None and self.train_layers < 0:
            raise ValueError(f"train_layers must be >= 0 or None (all layers), got {self.train_layers}")
        if not 0.0 < self.val_prompt_fraction < 1.0:
            raise ValueError(
                f"val_prompt_fraction must be in (0, 1): early stopping needs held-out prompts, got {self.val_prompt_fraction}"
            )


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


# ---- checkpoints ------------------------------------------------------------------------------
def checkpoint_dirs(checkpoint_dir: str | Path) -> list[Path]:
    """Complete epoch checkpoints under ``checkpoint_dir``, oldest first."""
    return numbered_checkpoints(checkpoint_dir, "epoch")


def _resume_settings(cfg: EncoderTuneConfig, factorize: FactorizeConfig) -> dict:
    """The settings a checkpoint must share with the run that resumes it (JSON-normalized)."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE_CHANGES}
    return json.loads(json.dumps({**settings, "factorize": factorize.to_dict()}))


def _answers_digest(train: AnswerMatrix) -> str:
    """SHA-256 of the training answers and their texts (a checkpoint is only resumed on the same answers)."""
    digest = hashlib.sha256()
    for array in (train.pairs, train.answer_pair, train.answer_user, train.answer_value):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    for texts in (train.item_prompts, train.item_responses, train.user_ids):
        digest.update(json.dumps([str(t) for t in texts]).encode())
    return digest.hexdigest()


def _checkpointed_names(model: _Tuned) -> set[str]:
    """State-dict names a checkpoint holds: the trained parameters and the standardization (not the frozen base)."""
    return {name for name, p in model.named_parameters() if p.requires_grad} | {"mean", "scale"}


def _save_checkpoint(root: Path, epoch: int, model: _Tuned, optimizer, state: dict, best_weights: dict) -> None:
    """Write ``root/epoch-<epoch>`` via a ``.partial`` folder renamed when complete; keep only the newest one."""
    from accelerate import PartialState
    from accelerate.checkpointing import save_accelerator_state
    from safetensors.torch import save_file

    PartialState()  # accelerate's save and log helpers need its process state
    final, partial = root / f"epoch-{epoch:04d}", root / f"epoch-{epoch:04d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    keep = _checkpointed_names(model)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in keep}
    save_accelerator_state(str(partial), [weights], [optimizer], [], [], process_index=0, step=epoch)
    best = {k: v.detach().cpu().contiguous() for k, v in best_weights.items()}
    save_file(best, str(partial / "best_encoder.safetensors"))
    (partial / "state.json").write_text(json.dumps({"format": CHECKPOINT_FORMAT, "epoch": epoch, **state}, indent=1))
    publish_checkpoint(partial, final, "epoch", keep=1)


def _read_checkpoint(root: Path, settings: dict, answers: str) -> dict | None:
    """state.json of the newest checkpoint under ``root`` (None if there is none), refused unless it is this run's."""
    found = checkpoint_dirs(root)
    if not found:
        return None
    latest = found[-1]
    state = json.loads((latest / "state.json").read_text())
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{latest} is not an encoder-tuning checkpoint of format {CHECKPOINT_FORMAT}: "
                         f"use another checkpoint_dir, or delete {root} to start over")
    differing = sorted(k for k in set(settings) | set(state["settings"]) if settings.get(k) != state["settings"].get(k))
    if differing or state["answers"] != answers:
        what = f"settings {differing} differ" if differing else "the training answers differ"
        raise ValueError(f"{root} holds a checkpoint of a different run ({what}): "
                         "use another checkpoint_dir, or delete it to start over")
    return {**state, "path": latest}


def _load_checkpoint(state: dict, model: _Tuned, optimizer) -> dict:
    """Load weights, optimizer and RNG states of a checkpoint into ``model``; returns the best encoder weights."""
    from accelerate import PartialState
    from accelerate.checkpointing import load_accelerator_state
    from safetensors.torch import load_file

    PartialState()  # accelerate's load and log helpers need its process state
    path = state["path"]
    try:
        # strict=False: a checkpoint holds only the trained weights and the standardization.
        load_accelerator_state(str(path), [model], [optimizer], [], [], process_index=0, strict=False)
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(f"checkpoint {path} does not match this encoder or these users: {err}") from err
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in load_file(str(path / "best_encoder.safetensors")).items()}


# ---- training ---------------------------------------------------------------------------------
def tune_encoder(
    train: AnswerMatrix,
    config: EncoderTuneConfig | None = None,
    factorize: FactorizeConfig | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune the encoder on seen users' answers; save it to ``out_dir``; return the history.

    ``train`` holds only training answers (under the unseen-prompts protocol: training prompts). With
    ``config.checkpoint_dir``, a rerun continues from the newest checkpoint there (see the module docstring).
    """
    from preflm.featurize.layers import load_encoder

    cfg = config or EncoderTuneConfig()
    factorize_cfg = replace(factorize or FactorizeConfig(), seed=cfg.seed, l2=cfg.l2)
    root = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir is not None else None
    settings, answers_digest, saved = None, None, None
    if root is not None:
        settings, answers_digest = _resume_settings(cfg, factorize_cfg), _answers_digest(train)
        saved = _read_checkpoint(root, settings, answers_digest)
    if saved is not None and saved["epoch"] > cfg.epochs:
        raise ValueError(f"{saved['path']} is past epoch {cfg.epochs}: ask for at least {saved['epoch']} epochs, "
                         f"or delete {root} to start over")
    torch.manual_seed(cfg.seed)
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

    held = prompt_holdout_mask(train, cfg.val_prompt_fraction, seed=np.random.default_rng(cfg.seed))
    fit_part = train.subset(~held)
    items = np.unique(train.pairs[train.answer_pair].ravel())
    token_ids = {}
    for i, row in zip(items, _encode_items(tokenizer, train.item_responses[items], cfg.max_length)):
        token_ids[int(i)] = row
    pad_id = tokenizer.pad_token_id
    hidden = encoder.config.hidden_size
    users = fit_part.answered_users()
    column = np.full(train.n_users, -1)
    column[users] = np.arange(len(users))
    if saved is None:
        start = _start_factorization(encoder, token_ids, items, pad_id, device, train, fit_part, factorize_cfg)
        head, user_weights = copy.deepcopy(start.head_), torch.as_tensor(start.user_weights_, dtype=torch.float32)
        mean, scale = start.feature_mean_.float(), start.feature_scale_.float()
    else:  # shapes only: the checkpoint supplies the values
        head, user_weights = make_head(factorize_cfg, hidden), torch.zeros(len(users), factorize_cfg.n_factors)
        mean, scale = torch.zeros(hidden), torch.ones(hidden)
    model = _Tuned(encoder, head.train(), user_weights, mean, scale).to(device)
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

    def encoder_weights() -> dict:
        return {name: p.detach().clone() for name, p in model.encoder.named_parameters() if p.requires_grad}

    if saved is None:
        history = [dict(zip(("val_loss", "val_accuracy"), validate()), epoch=0, seconds=0.0)]
        best_loss, best_weights, best_epoch, first = history[0]["val_loss"], encoder_weights(), 0, 1
    else:
        best_weights = _load_checkpoint(saved, model, optimizer)
        history, best_loss, best_epoch = list(saved["history"]), saved["best_loss"], saved["best_epoch"]
        first = saved["epoch"] + 1
        if progress:
            print(f"encoder tuning resumes after epoch {saved['epoch']} ({saved['path']})")
    started = time.perf_counter() - history[-1]["seconds"]
    for epoch in range(first, cfg.epochs + 1):
        model.train()
        rng = np.random.default_rng([cfg.seed, epoch])
        torch.manual_seed(int(rng.integers(2**62)))
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
        if val_loss < best_loss - 1e-5:
            best_loss, best_weights, best_epoch = val_loss, encoder_weights(), epoch
        if root is not None:
            state = {"settings": settings, "answers": answers_digest, "history": history,
                     "best_loss": best_loss, "best_epoch": best_epoch}
            _save_checkpoint(root, epoch, model, optimizer, state, best_weights)
    model.encoder.load_state_dict(best_weights, strict=False)
    result = {"history": history, "best_epoch": best_epoch, "config": cfg.to_dict(), "weights_id": uuid.uuid4().hex,
              "resumed_from_epoch": 0 if saved is None else saved["epoch"]}
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.encoder.to("cpu").save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        result["path"] = str(out_dir)
    result["encoder"] = model.encoder
    if not math.isfinite(best_loss):
        raise ValueError("the held-out loss was never finite while tuning the encoder")
    return result


def _start_factorization(encoder, token_ids, items, pad_id, device, train, fit_part, factorize_cfg):
    """A RewardFactorization fitted on the frozen encoder's features: the starting head, users and standardization."""
    hidden = encoder.config.hidden_size
    frozen = _Tuned(encoder, torch.nn.Identity(), torch.zeros(1, 1), torch.zeros(hidden), torch.ones(hidden)).to(device)
    features = np.zeros((train.n_items, hidden), dtype=np.float32)
    features[items] = frozen_embeddings(frozen, token_ids, [int(i) for i in items], pad_id, device).numpy()
    features[np.setdiff1d(np.arange(train.n_items), items)] = features[items].mean(0)  # keeps the standardization
    # The tuned encoder moves its features, so the start has no residual base rewards over the frozen ones.
    return RewardFactorization(replace(factorize_cfg, residual_factors=0)).fit(features, fit_part, progress=False)
