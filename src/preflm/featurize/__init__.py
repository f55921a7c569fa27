"""Featurizers: (prompt, response) -> vector. Composable, cached on disk, rebuildable from a spec."""

from preflm.featurize.base import ConcatFeaturizer, Featurizer, build_featurizer, register_featurizer
from preflm.featurize.cache import CachedFeaturizer
from preflm.featurize.embedding import DEFAULT_EMBEDDER, SentenceEmbeddingFeaturizer
from preflm.featurize.text_stats import TextStatsFeaturizer


def default_featurizer(model: str = DEFAULT_EMBEDDER, stats: bool = True, text: str = "response"):
    """Sentence embedding (+ text statistics): the offline default."""
    parts = [SentenceEmbeddingFeaturizer(model, text=text)]
    if stats:
        parts.append(TextStatsFeaturizer())
    return ConcatFeaturizer(parts) if len(parts) > 1 else parts[0]


__all__ = [
    "CachedFeaturizer",
    "ConcatFeaturizer",
    "DEFAULT_EMBEDDER",
    "Featurizer",
    "SentenceEmbeddingFeaturizer",
    "TextStatsFeaturizer",
    "build_featurizer",
    "default_featurizer",
    "register_featurizer",
]
