"""Hashed word and character n-gram features, randomly projected to a small dense vector.

Lexical features generalize to prompts no one has rated better than a frozen sentence embedding:
the embedding is trained to ignore register and wording (a business vs a literary answer to one
question embed close together), which is exactly what users' tastes differ on. Everything here is
stateless (feature hashing, a projection drawn from a fixed seed), so the spec alone rebuilds the
featurizer with nothing fitted to save.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np

from preflm.featurize.base import register_featurizer


@register_featurizer("hashed-ngrams")
class HashedNgramFeaturizer:
    """log(1 + count) of hashed word 1..``word_n``-grams and char ``char_min``..``char_max``-grams.

    Each block (words, characters) is L2-normalized, then the two are concatenated and, when ``dim``
    is set, mapped by a seeded sparse random projection (Johnson-Lindenstrauss: inner products are
    kept) to ``dim`` dense columns, which suits the standardized input of the factorization head.
    """

    def __init__(
        self,
        dim: int | None = 1024,
        n_features: int = 2**16,
        word_n: int = 2,
        char_min: int = 2,
        char_max: int = 5,
        text: str = "response",
        seed: int = 0,
    ):
        if text not in ("response", "prompt_response"):
            raise ValueError(f"text must be 'response' or 'prompt_response', got {text!r}")
        if word_n < 1 or not 1 <= char_min <= char_max:
            raise ValueError(f"need word_n >= 1 and 1 <= char_min <= char_max, got {word_n}, {char_min}, {char_max}")
        if dim is not None and dim < 1:
            raise ValueError(f"dim must be >= 1 or None, got {dim}")
        self.out_dim, self.n_features, self.word_n = dim, n_features, word_n
        self.char_min, self.char_max, self.text, self.seed = char_min, char_max, text, seed

    @property
    def dim(self) -> int:
        return self.out_dim if self.out_dim is not None else 2 * self.n_features

    def spec(self) -> dict:
        return {
            "type": "hashed-ngrams",
            "dim": self.out_dim,
            "n_features": self.n_features,
            "word_n": self.word_n,
            "char_min": self.char_min,
            "char_max": self.char_max,
            "text": self.text,
            "seed": self.seed,
        }

    @cached_property
    def _vectorizers(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        common = dict(n_features=self.n_features, alternate_sign=False, norm=None)
        words = HashingVectorizer(analyzer="word", ngram_range=(1, self.word_n), token_pattern=r"(?u)\b\w+\b|[^\w\s]", **common)
        chars = HashingVectorizer(analyzer="char_wb", ngram_range=(self.char_min, self.char_max), **common)
        return words, chars

    @cached_property
    def _projection(self):
        """(2 * n_features, dim) sparse matrix, eight entries +-1/sqrt(8) per row, drawn from ``seed``."""
        import scipy.sparse as sp

        rng = np.random.default_rng(self.seed)
        rows = 2 * self.n_features
        per_row = min(8, self.out_dim)
        cols = rng.integers(0, self.out_dim, size=rows * per_row)
        signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=rows * per_row) / np.sqrt(per_row)
        return sp.csr_matrix((signs, (np.repeat(np.arange(rows), per_row), cols)), shape=(rows, self.out_dim))

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        texts = list(responses) if self.text == "response" else [f"{p}\n\n{r}" for p, r in zip(prompts, responses)]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        blocks = []
        for vectorizer in self._vectorizers:
            counts = vectorizer.transform(texts).astype(np.float32)
            counts.data = np.log1p(counts.data)
            blocks.append(normalize(counts))
        stacked = sp.hstack(blocks, format="csr")
        dense = stacked @ self._projection if self.out_dim is not None else stacked
        return np.asarray(dense.todense() if sp.issparse(dense) else dense, dtype=np.float32)
