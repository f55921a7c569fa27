"""Mean-pooled hidden states of several layers of a (frozen) transformer encoder, concatenated.

A sentence embedding keeps only the last layer, trained to match meanings; lower layers still carry
wording and register, the things users' tastes differ on, so several layers side by side give the
factorization head more to choose from at the cost of one forward pass.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np
import torch

from preflm.featurize.base import register_featurizer
from preflm.featurize.embedding import DEFAULT_EMBEDDER, resolve_embedder_path


def load_encoder(model: str):
    """(tokenizer, bare encoder) of a sentence-transformers or plain Hugging Face encoder."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_embedder_path(model)
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over non-pad tokens: (batch, tokens, width) -> (batch, width)."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


@register_featurizer("encoder-layers")
class EncoderLayersFeaturizer:
    """L2-normalized mean-pooled hidden states of ``layers`` (0 = token embeddings), concatenated.

    ``weights_id`` names one set of weights saved at ``model`` (a tuned encoder), so the feature cache
    never serves features of older weights saved at the same path.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDER,
        layers: Sequence[int] = (2, 4, 6),
        max_length: int = 256,
        text: str = "response",
        batch_size: int = 32,
        weights_id: str | None = None,
    ):
        if text not in ("response", "prompt_response"):
            raise ValueError(f"text must be 'response' or 'prompt_response', got {text!r}")
        if not layers or min(layers) < 0:
            raise ValueError(f"layers must be a non-empty list of indices >= 0, got {list(layers)}")
        self.model_name, self.layers, self.max_length = model, [int(i) for i in layers], max_length
        self.text, self.batch_size, self.weights_id = text, batch_size, weights_id

    @cached_property
    def _loaded(self):
        tokenizer, encoder = load_encoder(self.model_name)
        depth = encoder.config.num_hidden_layers
        if max(self.layers) > depth:
            raise ValueError(f"{self.model_name} has {depth} layers; cannot take layer {max(self.layers)}")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return tokenizer, encoder.float().to(device).eval()

    @property
    def dim(self) -> int:
        return len(self.layers) * int(self._loaded[1].config.hidden_size)

    def spec(self) -> dict:
        return {
            "type": "encoder-layers",
            "model": self.model_name,
            "layers": self.layers,
            "max_length": self.max_length,
            "text": self.text,
            "weights_id": self.weights_id,
        }

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        texts = list(responses) if self.text == "response" else [f"{p}\n\n{r}" for p, r in zip(prompts, responses)]
        tokenizer, encoder = self._loaded
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                tokens = tokenizer(
                    [texts[i] for i in batch], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                tokens = tokens.to(encoder.device)
                hidden = encoder(**tokens, output_hidden_states=True).hidden_states
                pooled = [mean_pool(hidden[i], tokens["attention_mask"]) for i in self.layers]
                out[batch] = torch.cat([torch.nn.functional.normalize(p, dim=-1) for p in pooled], -1).cpu().numpy()
        return out
