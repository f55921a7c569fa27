"""Train the causal-LM backbone of the base rewards (LoRA or full fine-tuning) with a J-output head.

Two phases, as in the PReF paper: (1) regress Delta phi of each training pair onto its SVD pair factor
with the users frozen at the SVD user factors, then (2) Bradley-Terry maximum likelihood (ties as soft
0.5 labels) with L2 on Delta phi and on the user weights. ``mode="frozen"`` instead computes the LM
features once (cached on disk) and fits the usual :class:`RewardFactorization` on them.

One script runs on a laptop CPU and on many GPUs through ``accelerate`` (DDP, bf16 autocast on GPU)::

    python benchmarks/train_backbone.py --mode lora --minutes 2                      # CPU or one GPU
    accelerate launch --num_processes 1 benchmarks/train_backbone.py --mode lora      # one GPU
    accelerate launch --multi_gpu --num_processes 8 benchmarks/train_backbone.py \\
        --model Qwen/Qwen2.5-0.5B --mode full --data world.jsonl                       # 8 GPUs, one node
    accelerate launch --multi_gpu --num_machines 2 --machine_rank $RANK \\
        --main_process_ip $HEAD --main_process_port 29500 --num_processes 16 \\
        benchmarks/train_backbone.py --model Qwen/Qwen2.5-3B --mode lora                # 2 nodes x 8 GPUs

``batch_size`` counts pairs per process and micro-step: one optimizer step sees
``batch_size x gradient_accumulation_steps x processes`` pairs. Every ``checkpoint_every`` steps
``Accelerator.save_state`` writes a checkpoint to ``output_dir/checkpoints/step-<step>`` (trainable
weights as safetensors, optimizer and RNG states, plus step and history as JSON), and calling
:func:`train_backbone` again with the same ``output_dir`` resumes from the newest one. Each step's
sampling and dropout are seeded from (seed, step, micro-step, process), so a resumed run repeats the
uninterrupted one. The result is a normal preflm model in ``output_dir``
(``RewardFactorization.load(output_dir)``), with the tuned backbone in ``output_dir/backbone``.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from preflm.data.matrix import AnswerMatrix
from preflm.factorize.checkpoints import numbered_checkpoints, publish_checkpoint
from preflm.factorize.config import ConfigDict, FactorizeConfig
from preflm.factorize.model import RewardFactorization, fit_logit_scale
from preflm.factorize.users import population_prior
from preflm.metrics import pairwise_accuracy
from preflm.factorize.svd_init import svd_factors
from preflm.featurize.lm import (
    DEFAULT_LM,
    POOLINGS,
    CausalLMFeaturizer,
    encode_tokens,
    length_batches,
    load_backbone,
    load_tokenizer,
    pad_token_ids,
    tokenize_texts,
)

MODES = ("frozen", "lora", "full")
CHECKPOINT_FORMAT = 2
# Settings a checkpoint must share with the run that resumes it (top level, and of the nested factorize config).
RESUME_KEYS = ("model", "mode", "pooling", "max_length", "chat_template", "lora_r", "lora_alpha", "lora_dropout",
               "lora_target_modules")
RESUME_FACTORIZE_KEYS = ("n_factors", "val_fraction", "seed")


@dataclass
class BackboneConfig(ConfigDict):
    """How to learn base rewards phi = head(LM(prompt, response)) and the seen users' weights.

    ``factorize`` holds the factorization settings: ``mode="frozen"`` fits with all of them; LoRA and
    full fine-tuning use its ``n_factors``, ``l2``, ``svd_rank``, ``svd_iterations``, ``val_fraction``,
    ``prior_strength`` and ``seed`` (always with a linear head and SVD init, as in the paper) and the
    step counts, batch size, rates and evaluation settings below instead of its own.
    ``learning_rate`` is for the backbone (LoRA ~2e-4, full fine-tuning ~2e-5); the freshly initialised
    head and the user weights get their own, larger rates. ``time_budget_minutes`` (optional) stops each
    phase early, sharing the budget in proportion to the phases' step counts.
    """

    model: str = DEFAULT_LM
    mode: str = "lora"
    pooling: str = "last"
    max_length: int = 512
    chat_template: bool = True
    factorize: FactorizeConfig = field(default_factory=lambda: FactorizeConfig(head="linear"))
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    learning_rate: float = 2e-4
    head_learning_rate: float = 1e-3
    user_learning_rate: float = 1e-2
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    encode_batch_size: int = 32
    phase1_steps: int = 200
    phase2_steps: int = 400
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    eval_every: int = 50
    eval_answers: int = 512
    time_budget_minutes: float | None = None
    output_dir: str = "preflm-backbone"
    checkpoint_every: int = 100
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("batch_size", "gradient_accumulation_steps", "encode_batch_size", "max_length",
                     "eval_every", "eval_answers", "checkpoint_every", "keep_checkpoints", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.phase1_steps < 0 or self.phase2_steps < 0:
            raise ValueError("phase1_steps and phase2_steps must be >= 0")
        if self.mode != "frozen" and (self.factorize.head != "linear" or self.factorize.svd_init is False):
            raise ValueError(
                f"mode={self.mode!r} trains a linear head from the SVD factors: set factorize.head='linear' and "
                f"factorize.svd_init on or auto (got head={self.factorize.head!r}, svd_init={self.factorize.svd_init})"
            )
        if self.mode != "frozen" and self.factorize.factor_choices:
            raise ValueError(
                f"n_factors_choices is for frozen features: mode={self.mode!r} trains one J; set n_factors instead"
            )


class BaseRewardModel(torch.nn.Module):
    """Backbone + J-output linear head. One forward call encodes every length-sorted chunk of a step,
    so DDP sees exactly one forward per backward."""

    def __init__(self, backbone: torch.nn.Module, n_factors: int, pooling: str):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = torch.nn.Linear(backbone.config.hidden_size, n_factors, bias=False)

    def forward(self, chunks: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        return torch.cat([self.head(encode_tokens(self.backbone, ids, mask, self.pooling)) for ids, mask in chunks])


class UserWeights(torch.nn.Module):
    """The seen users' weight vectors (users x J); forward returns the rows asked for and the L2 term."""

    def __init__(self, initial: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(initial.clone().float())

    def forward(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight[index], self.weight.pow(2).sum(-1).mean()


@dataclass
class _PhaseStats:
    steps: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    examples: int = 0
    items_encoded: int = 0

    def summary(self, processes: int) -> dict:
        rate = lambda n: n * processes / self.train_seconds if self.train_seconds else None  # noqa: E731
        return {
            **asdict(self),
            "examples": self.examples * processes,
            "items_encoded": self.items_encoded * processes,
            "examples_per_second": rate(self.examples),
            "items_per_second": rate(self.items_encoded),
        }


def peak_memory_bytes() -> int:
    """Peak GPU memory allocated by torch on a GPU; peak resident memory of this process on a CPU."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    return numbered_checkpoints(Path(output_dir) / "checkpoints", "step")


def train_backbone(
    train: AnswerMatrix,
    config: BackboneConfig | None = None,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> RewardFactorization:
    """Learn base rewards on an LM backbone from seen users' answers; saved to ``config.output_dir``.

    ``on_step(step)`` is called after every optimizer step (after its checkpoint, if any).
    """
    config = config or BackboneConfig()
    if train.n_answers == 0:
        raise ValueError("no answers to train on")
    if config.mode == "frozen":
        return _train_frozen(train, config, progress)
    return _BackboneTrainer(train, config, progress, on_step).run()


def _train_frozen(train: AnswerMatrix, config: BackboneConfig, progress: bool) -> RewardFactorization:
    """Features of a frozen LM computed once (and cached), then the usual factorization fit.

    Under a multi-process launch the main process does the work and the others load its result.
    """
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        model = _fit_frozen(train, config, progress)
    state.wait_for_everyone()
    if not state.is_main_process:
        model = RewardFactorization.load(config.output_dir)
        model.training_summary_ = json.loads((Path(config.output_dir) / "training_summary.json").read_text())
    return model


def _absolute_if_local(model: str) -> str:
    """A local model directory as an absolute path (a saved spec must not depend on the working directory)."""
    return str(Path(model).resolve()) if Path(model).exists() else model


def _fit_frozen(train: AnswerMatrix, config: BackboneConfig, progress: bool) -> RewardFactorization:
    """Featurize every item once through the on-disk cache, fit, save, and record the wall time of each stage."""
    from preflm.factorize.pipeline import featurize_items
    from preflm.featurize import CachedFeaturizer

    featurizer = CachedFeaturizer(
        CausalLMFeaturizer(
            _absolute_if_local(config.model), config.pooling, config.max_length, config.chat_template,
            batch_size=config.encode_batch_size, show_progress=progress,
        )
    )
    start = time.perf_counter()
    features = featurize_items(train, featurizer)
    featurize_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model = RewardFactorization(config.factorize, featurizer_spec=featurizer.spec())
    model.fit(features, train, progress=progress)
    fit_seconds = time.perf_counter() - start
    output_dir = Path(config.output_dir)
    model.save(output_dir)
    model.training_summary_ = {
        "config": config.to_dict(),
        "device": str(featurizer.inner.device),
        "num_processes": 1,
        "stages": {
            "featurize": {"seconds": featurize_seconds, "items": int(featurizer.misses),
                          "items_per_second": featurizer.misses / featurize_seconds if featurizer.misses else None,
                          "cache_hits": int(featurizer.hits)},
            "fit": {"seconds": fit_seconds},
        },
        "validation_accuracy": model.validation_accuracy_,
        "n_train_answers": int(train.n_answers),
        "peak_memory_bytes": peak_memory_bytes(),
    }
    (output_dir / "training_summary.json").write_text(json.dumps(model.training_summary_, indent=2))
    return model


def _keep_trainable_weights(models: list[torch.nn.Module], weights: list[dict], output_dir: str) -> None:
    """``save_state`` hook: checkpoint only the trained parameters, not the frozen base of a LoRA run."""
    for model, state in zip(models, weights):
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        for name in [name for name in state if name not in trainable]:
            del state[name]


class _BackboneTrainer:
    """State of one LoRA / full fine-tuning run: data, model, optimizers, checkpoints."""

    def __init__(self, train: AnswerMatrix, config: BackboneConfig, progress: bool, on_step):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        self.train, self.config, self.progress, self.on_step = train, config, progress, on_step
        self.accelerator = Accelerator(
            mixed_precision="bf16" if torch.cuda.is_available() else "no",
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            project_config=ProjectConfiguration(project_dir=config.output_dir),
        )
        self.accelerator.register_save_state_pre_hook(_keep_trainable_weights)
        self.output_dir = Path(config.output_dir)
        self.stages: dict[str, float] = {}
        self.phase_stats = {1: _PhaseStats(), 2: _PhaseStats()}
        self.history: list[dict] = []

    def run(self) -> RewardFactorization:
        self._timed("split_and_svd", self._prepare_answers)
        self._timed("tokenize", self._tokenize)
        self._timed("load_model", self._build_model)
        self.start_step = self._timed("resume", self._resume)
        self._train_steps()
        model = self._timed("save", self._finish)
        model.training_summary_ = self._summary()
        if self.accelerator.is_main_process:
            (self.output_dir / "training_summary.json").write_text(json.dumps(model.training_summary_, indent=2))
        return model

    def _timed(self, stage: str, function):
        start = time.perf_counter()
        result = function()
        self.stages[stage] = time.perf_counter() - start
        return result

    # ---- data -------------------------------------------------------------------------------
    def _prepare_answers(self) -> None:
        """Hold out answers for validation, then SVD of the dense train matrix (pair and user factors)."""
        cfg, fcfg, train = self.config, self.config.factorize, self.train
        users = train.answered_users()
        self.user_ids = np.asarray(train.user_ids[users], dtype=object)
        self.user_column = np.full(train.n_users, -1)
        self.user_column[users] = np.arange(len(users))
        rng = np.random.default_rng(fcfg.seed)
        is_val = rng.random(train.n_answers) < fcfg.val_fraction
        if is_val.all():
            is_val[:] = False
        self.train_answers, self.val_answers = np.flatnonzero(~is_val), np.flatnonzero(is_val)
        dense = train.subset(~is_val).dense(users=users)
        asked = ~np.isnan(dense).all(axis=1)
        pair_factors, user_factors = svd_factors(dense[asked], fcfg.n_factors, fcfg.svd_rank, fcfg.svd_iterations)
        self.target_pairs = np.flatnonzero(asked)
        self.pair_targets = torch.as_tensor(pair_factors, dtype=torch.float32)
        self.user_factors = torch.as_tensor(user_factors, dtype=torch.float32)
        monitor = self.val_answers if len(self.val_answers) else self.train_answers
        self.eval_sample = np.sort(rng.choice(monitor, min(cfg.eval_answers, len(monitor)), replace=False))
        n_scale = min(cfg.eval_answers, len(self.train_answers))
        self.scale_sample = np.sort(rng.choice(self.train_answers, n_scale, replace=False))

    def _tokenize(self) -> None:
        cfg = self.config
        self.tokenizer = load_tokenizer(cfg.model)
        self.item_ids = tokenize_texts(
            self.tokenizer, list(self.train.item_prompts), list(self.train.item_responses), cfg.max_length, cfg.chat_template
        )
        self.item_lengths = np.array([len(row) for row in self.item_ids])

    # ---- model ------------------------------------------------------------------------------
    def _build_model(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.factorize.seed)
        # LoRA on a GPU keeps the frozen base in bf16 (peft keeps the adapters in float32).
        on_gpu = self.accelerator.device.type == "cuda"
        backbone = load_backbone(cfg.model, torch.bfloat16 if cfg.mode == "lora" and on_gpu else torch.float32)
        if cfg.gradient_checkpointing:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.mode == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                target_modules=cfg.lora_target_modules, bias="none",
            )
            backbone = get_peft_model(backbone, lora)
        phi_model = BaseRewardModel(backbone, cfg.factorize.n_factors, cfg.pooling)
        users = UserWeights(self.user_factors)
        self.n_trainable = sum(p.numel() for p in phi_model.parameters() if p.requires_grad)
        self.n_parameters = sum(p.numel() for p in phi_model.parameters())

        def groups(with_users: bool) -> list[dict]:
            chosen = [
                {"params": [p for p in backbone.parameters() if p.requires_grad], "lr": cfg.learning_rate},
                {"params": list(phi_model.head.parameters()), "lr": cfg.head_learning_rate},
            ]
            if with_users:
                chosen.append({"params": list(users.parameters()), "lr": cfg.user_learning_rate})
            return chosen

        regression = torch.optim.AdamW(groups(False), weight_decay=0.0)
        likelihood = torch.optim.AdamW(groups(True), weight_decay=0.0)
        prepared = self.accelerator.prepare(phi_model, users, regression, likelihood)
        self.phi_model, self.users = prepared[0], prepared[1]
        self.optimizers = {1: prepared[2], 2: prepared[3]}
        self.phi_model.train()

    def _unwrapped(self) -> tuple[BaseRewardModel, UserWeights]:
        return self.accelerator.unwrap_model(self.phi_model), self.accelerator.unwrap_model(self.users)

    def _phi_items(self, model, items: np.ndarray) -> torch.Tensor:
        """phi of the given items, encoded in length-sorted chunks (one forward call), in item order."""
        device = self.accelerator.device
        batches = length_batches(self.item_lengths[items], self.config.encode_batch_size)
        pad_id, side = self.tokenizer.pad_token_id, self.tokenizer.padding_side
        chunks = []
        for batch in batches:
            ids, mask = pad_token_ids([self.item_ids[i] for i in items[batch]], pad_id, side)
            chunks.append((ids.to(device), mask.to(device)))
        phi_sorted = model(chunks).float()
        inverse = torch.as_tensor(np.argsort(np.concatenate(batches)), device=device)
        return phi_sorted[inverse]

    def _pair_deltas(self, model, pair_index: np.ndarray) -> tuple[torch.Tensor, int]:
        """Delta phi of the given pairs (each distinct item encoded once) and the number of items encoded."""
        items, inverse = np.unique(self.train.pairs[pair_index].ravel(), return_inverse=True)
        phi = self._phi_items(model, items)
        inverse = torch.as_tensor(inverse.reshape(-1, 2), device=phi.device)
        return phi[inverse[:, 0]] - phi[inverse[:, 1]], len(items)

    # ---- losses -----------------------------------------------------------------------------
    def _regression_loss(self, rng: np.random.Generator):
        """Phase 1: mean squared error between Delta phi and the SVD pair factors (returns loss, report, counts)."""
        pick = rng.choice(len(self.target_pairs), min(self.config.batch_size, len(self.target_pairs)), replace=False)
        deltas, n_items = self._pair_deltas(self.phi_model, self.target_pairs[pick])
        loss = (deltas - self.pair_targets[pick].to(deltas.device)).pow(2).mean()
        return loss, loss, len(pick), n_items

    def _likelihood_loss(self, rng: np.random.Generator):
        """Phase 2: Bradley-Terry cross-entropy (soft labels) + L2 on Delta phi and on the user weights."""
        train = self.train
        n_train = len(self.train_answers)
        answers = self.train_answers[rng.choice(n_train, min(self.config.batch_size, n_train), replace=False)]
        deltas, n_items = self._pair_deltas(self.phi_model, train.answer_pair[answers])
        device = deltas.device
        weights, user_penalty = self.users(torch.as_tensor(self.user_column[train.answer_user[answers]], device=device))
        logits = (deltas * weights.float()).sum(-1)
        labels = torch.as_tensor(train.answer_value[answers], dtype=torch.float32, device=device)
        fit = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        loss = fit + self.config.factorize.l2 * (deltas.pow(2).sum(-1).mean() + user_penalty.float())
        return loss, loss, len(answers), n_items

    def _optimizer_step(self, step: int, phase: int) -> float:
        """One optimizer step over ``gradient_accumulation_steps`` micro-batches; returns the mean loss."""
        cfg, accelerator = self.config, self.accelerator
        models = (self.phi_model,) if phase == 1 else (self.phi_model, self.users)
        optimizer = self.optimizers[phase]
        loss_fn = self._regression_loss if phase == 1 else self._likelihood_loss
        reported = []
        for micro in range(cfg.gradient_accumulation_steps):
            rng = np.random.default_rng([cfg.factorize.seed, step, micro, accelerator.process_index])
            torch.manual_seed(int(rng.integers(2**62)))
            with accelerator.accumulate(*models):
                loss, report, n_examples, n_items = loss_fn(rng)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(self.phi_model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            reported.append(report.item())
            self.phase_stats[phase].examples += n_examples
            self.phase_stats[phase].items_encoded += n_items
        return float(np.mean(reported))

    # ---- evaluation -------------------------------------------------------------------------
    def _logits(self, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and labels of the given answers, shared out over processes and gathered back."""
        from accelerate.utils import gather_object

        accelerator = self.accelerator
        shard = answers[accelerator.process_index :: accelerator.num_processes]
        rows: list[tuple[int, float]] = []
        if len(shard):
            phi_model, users = self._unwrapped()
            phi_model.eval()
            with torch.no_grad(), accelerator.autocast():
                deltas, _ = self._pair_deltas(phi_model, self.train.answer_pair[shard])
                index = torch.as_tensor(self.user_column[self.train.answer_user[shard]], device=deltas.device)
                logits = (deltas * users.weight[index].float()).sum(-1).float().cpu().numpy()
            phi_model.train()
            rows = list(zip(shard.tolist(), logits.tolist()))
        gathered = sorted(gather_object(rows)) if accelerator.num_processes > 1 else rows
        index = np.array([i for i, _ in gathered], dtype=np.int64)
        return np.array([v for _, v in gathered]), self.train.answer_value[index]

    def _evaluate(self, step: int, phase: int, train_loss: float) -> dict:
        logits, labels = self._logits(self.eval_sample)
        record = {"step": step, "phase": phase, "train_loss": train_loss, "val_accuracy": float(pairwise_accuracy(logits, labels))}
        if phase == 2:
            record["val_loss"] = float(
                torch.nn.functional.binary_cross_entropy_with_logits(torch.as_tensor(logits), torch.as_tensor(labels))
            )
        self.history.append(record)
        return record

    def _calibrate_users(self) -> None:
        """Before phase 2: one scalar on the SVD user factors, fitted by maximum likelihood (as in fit)."""
        raw, labels = self._logits(self.scale_sample)
        scale = fit_logit_scale(raw.astype(np.float64), labels)
        with torch.no_grad():
            self._unwrapped()[1].weight.mul_(scale)

    # ---- checkpoints ------------------------------------------------------------------------
    def _save_checkpoint(self, step: int) -> None:
        """``save_state`` into a ``.partial`` folder, renamed when complete (a kill never leaves a broken newest
        checkpoint); then only the newest ``keep_checkpoints`` are kept."""
        accelerator = self.accelerator
        root = Path(accelerator.project_dir) / "checkpoints"
        final, partial = root / f"step-{step:08d}", root / f"step-{step:08d}.partial"
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = {"format": CHECKPOINT_FORMAT, "step": step, "config": self.config.to_dict(), "history": self.history}
            (partial / "state.json").write_text(json.dumps(state, indent=2))
            publish_checkpoint(partial, final, "step", self.config.keep_checkpoints)
        accelerator.wait_for_everyone()

    def _resume(self) -> int:
        """``load_state`` of the newest checkpoint in output_dir, if any; returns its step (0 if none)."""
        found = checkpoint_dirs(self.output_dir)
        if not found:
            return 0
        latest = found[-1]
        state = json.loads((latest / "state.json").read_text())
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{latest} was written by another preflm version (checkpoint format {state.get('format')}, this one "
                f"reads {CHECKPOINT_FORMAT}): delete {latest.parent} to start over"
            )
        saved, current = state["config"], json.loads(json.dumps(self.config.to_dict()))
        differing = [k for k in RESUME_KEYS if saved.get(k) != current[k]] + [
            f"factorize.{k}" for k in RESUME_FACTORIZE_KEYS if saved["factorize"].get(k) != current["factorize"][k]
        ]
        if differing:
            raise ValueError(
                f"{self.output_dir} holds a checkpoint of a different run (settings {differing} differ): "
                "use another output_dir, or delete its checkpoints folder to start over"
            )
        try:
            # strict=False: checkpoints hold only the trainable weights (see _keep_trainable_weights).
            self.accelerator.load_state(str(latest), strict=False)
        except RuntimeError as err:
            raise ValueError(f"checkpoint {latest} does not match this model or these users: {err}") from err
        self.history = list(state["history"])
        return int(state["step"])

    # ---- loop -------------------------------------------------------------------------------
    def _out_of_time(self, deadline: float | None) -> bool:
        """All processes agree: the main process decides, accelerate's trigger spreads the decision."""
        if deadline is None:
            return False
        if self.accelerator.is_main_process and time.perf_counter() > deadline:
            self.accelerator.set_trigger()
        return self.accelerator.check_trigger()

    def _train_steps(self) -> None:
        cfg, start = self.config, self.start_step
        total = cfg.phase1_steps + cfg.phase2_steps
        remaining = {1: max(0, cfg.phase1_steps - start), 2: total - max(start, cfg.phase1_steps)}
        deadline = {1: None, 2: None}
        if cfg.time_budget_minutes is not None:
            now, budget = time.perf_counter(), 60.0 * cfg.time_budget_minutes
            deadline = {1: now + budget * remaining[1] / max(1, remaining[1] + remaining[2]), 2: now + budget}
        bar = tqdm(total=total, initial=min(start, total), desc="training backbone",
                   disable=not self.progress or not self.accelerator.is_main_process)
        self.last_step, step = start, start + 1
        while step <= total:
            phase = 1 if step <= cfg.phase1_steps else 2
            if phase == 2 and step == cfg.phase1_steps + 1 and start <= cfg.phase1_steps:
                self._calibrate_users()
            phase_start = time.perf_counter()
            loss = self._optimizer_step(step, phase)
            stats = self.phase_stats[phase]
            stats.steps += 1
            stats.train_seconds += time.perf_counter() - phase_start
            out_of_time = self._out_of_time(deadline[phase])
            last_of_phase = out_of_time or step == (cfg.phase1_steps if phase == 1 else total)
            if step % cfg.eval_every == 0 or last_of_phase:
                record = self._evaluate(step, phase, loss)
                bar.set_postfix(phase=phase, loss=f"{loss:.3f}", val_acc=f"{record['val_accuracy']:.3f}")
            finished = step == total or (phase == 2 and out_of_time)
            if step % cfg.checkpoint_every == 0 or finished:
                self._save_checkpoint(step)
            stats.seconds += time.perf_counter() - phase_start
            self.last_step = step
            bar.update(step - bar.n)
            if self.on_step is not None:
                self.on_step(step)
            if finished:
                break
            step = cfg.phase1_steps + 1 if (phase == 1 and out_of_time) else step + 1
        bar.close()

    # ---- result -----------------------------------------------------------------------------
    def _finish(self) -> RewardFactorization:
        """Save the tuned backbone and a RewardFactorization whose featurizer rebuilds it."""
        cfg, accelerator = self.config, self.accelerator
        accelerator.wait_for_everyone()
        phi_model, users = self._unwrapped()
        backbone_dir = (self.output_dir / "backbone").resolve()
        if accelerator.is_main_process:
            shutil.rmtree(backbone_dir, ignore_errors=True)
            phi_model.backbone.save_pretrained(str(backbone_dir))
            if cfg.mode == "full":
                self.tokenizer.save_pretrained(str(backbone_dir))
        featurizer = CausalLMFeaturizer(
            model=_absolute_if_local(cfg.model) if cfg.mode == "lora" else str(backbone_dir),
            pooling=cfg.pooling, max_length=cfg.max_length, chat_template=cfg.chat_template,
            adapter=str(backbone_dir) if cfg.mode == "lora" else None, weights_id=uuid.uuid4().hex,
        )
        # The backbone moves during training, so there are no fixed features to take residual directions from.
        factorize_config = replace(
            cfg.factorize, max_steps=max(1, cfg.phase1_steps + cfg.phase2_steps), residual_factors=0
        )
        model = RewardFactorization(factorize_config, featurizer_spec=featurizer.spec())
        hidden = phi_model.head.weight.shape[1]
        head = torch.nn.Linear(hidden, factorize_config.n_factors, bias=False)
        with torch.no_grad():
            head.weight.copy_(phi_model.head.weight.detach().float().cpu())
        model.head_ = head.eval()
        model.feature_mean_ = torch.zeros(hidden)
        model.feature_scale_ = torch.ones(hidden)
        model.user_ids_ = self.user_ids
        model.user_weights_ = users.weight.detach().float().cpu().numpy().astype(np.float64)
        model.best_step_ = self.last_step
        model.validation_accuracy_ = self.history[-1]["val_accuracy"] if self.history else float("nan")
        model.history_ = list(self.history)
        model.svd_init_used_ = True  # end-to-end training starts from the SVD factors
        model.prior_mean_, model.prior_cov_ = population_prior(model.user_weights_)
        if accelerator.is_main_process:
            model.save(self.output_dir)
        accelerator.wait_for_everyone()
        return model

    def _summary(self) -> dict:
        processes = self.accelerator.num_processes
        return {
            "config": self.config.to_dict(),
            "device": str(self.accelerator.device),
            "num_processes": processes,
            "mixed_precision": str(self.accelerator.mixed_precision),
            "stages": {
                **{name: {"seconds": seconds} for name, seconds in self.stages.items()},
                "phase1": self.phase_stats[1].summary(processes),
                "phase2": self.phase_stats[2].summary(processes),
            },
            "resumed_from_step": self.start_step,
            "final_step": self.last_step,
            "validation_accuracy": self.history[-1]["val_accuracy"] if self.history else None,
            "n_train_answers": int(len(self.train_answers)),
            "n_val_answers": int(len(self.val_answers)),
            "n_items": int(self.train.n_items),
            "mean_tokens_per_item": float(self.item_lengths.mean()),
            "trainable_parameters": int(self.n_trainable),
            "parameters": int(self.n_parameters),
            "peak_memory_bytes": peak_memory_bytes(),
        }
