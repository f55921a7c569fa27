"""Held-out answers and the one early-stopping training loop every learned model here uses.

Validation answers decide when to stop and which regularization to keep. Under the unseen-prompt
protocol they are whole prompts (every answer about a held-out prompt), so model selection rewards
what generalizes to prompts no one has rated, not what memorizes texts.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from preflm.data.matrix import AnswerMatrix
from preflm.data.split import prompt_holdout_mask
from preflm.factorize.config import DEFAULT_VALIDATION_BY, VALIDATION_UNITS


def validation_mask(answers: AnswerMatrix, fraction: float, seed: int, by: str = DEFAULT_VALIDATION_BY) -> np.ndarray:
    """Which answers to hold out: whole prompts (``by="prompt"``, :func:`preflm.data.split.prompt_holdout_mask`)
    or random answers (``by="answer"``)."""
    if by not in VALIDATION_UNITS:
        raise ValueError(f"validation by {by!r}: use one of {VALIDATION_UNITS}")
    if by == "prompt":
        return prompt_holdout_mask(answers, fraction, seed)
    return np.random.default_rng(seed).random(answers.n_answers) < fraction


def process_group() -> tuple[int, int]:
    """(number of processes, this process's rank): (1, 0) unless ``torch.distributed`` runs several."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def average_gradients(parameters: list[torch.Tensor]) -> None:
    """All-reduce the gradients of ``parameters`` to their mean over processes (data-parallel step)."""
    world, _ = process_group()
    for parameter in parameters:
        if parameter.grad is not None:
            torch.distributed.all_reduce(parameter.grad)
            parameter.grad.div_(world)


def broadcast_parameters(parameters: list[torch.Tensor]) -> None:
    """Copy rank 0's values of ``parameters`` to every process, so all start from the same point."""
    with torch.no_grad():
        for parameter in parameters:
            torch.distributed.broadcast(parameter.data, src=0)


def reduce_sums(values: list[float]) -> list[float]:
    """Sums of ``values`` over all processes (float64), e.g. per-process loss sums and counts."""
    tensor = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def train_with_early_stopping(
    parameters: list[torch.Tensor],
    train_loss: Callable[[int], torch.Tensor],
    validate: Callable[[], dict],
    max_steps: int,
    learning_rate: float,
    eval_every: int = 25,
    patience: int = 8,
    progress: bool = False,
    description: str = "training",
    after_backward: Callable[[], None] | None = None,
) -> dict:
    """Adam on ``train_loss(step)``; keeps the parameters with the lowest validation ``"loss"``.

    ``validate()`` returns a dict with ``"loss"`` and any other figures to record. The best parameters
    are restored in place. Returns the best step, its validation loss, the number of steps run and
    the history (one dict per evaluation: step, train_loss and the validation figures).
    ``after_backward()`` runs between the backward pass and the optimizer step (data-parallel
    training averages the gradients of all processes there, see :func:`average_gradients`).
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    best_loss, best_step, stale = math.inf, 0, 0
    best_state = [p.detach().clone() for p in parameters]
    history: list[dict] = []
    bar = tqdm(total=max_steps, desc=description, disable=not progress, leave=False)
    for step in range(1, max_steps + 1):
        loss = train_loss(step)
        optimizer.zero_grad()
        loss.backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        bar.update(1)
        if step % eval_every and step != max_steps:
            continue
        with torch.no_grad():
            figures = {key: float(value) for key, value in validate().items()}
        history.append({"step": step, "train_loss": float(loss.detach()), **{f"val_{k}": v for k, v in figures.items()}})
        bar.set_postfix({"loss": f"{float(loss.detach()):.3f}", **{k: f"{v:.3f}" for k, v in figures.items()}})
        if figures["loss"] < best_loss - 1e-5:
            best_loss, best_step, stale = figures["loss"], step, 0
            best_state = [p.detach().clone() for p in parameters]
        else:
            stale += 1
            if stale >= patience:
                break
    bar.close()
    with torch.no_grad():
        for parameter, saved in zip(parameters, best_state):
            parameter.copy_(saved)
    return {"best_step": best_step, "best_validation_loss": best_loss, "steps": step, "history": history}
