"""Featurizers: (prompt, response) -> vector. Composable, cached on disk, rebuildable from a spec."""

from preflm.featurize.base import ConcatFeaturizer, Featurizer, build_featurizer, register_featurizer
from preflm.featurize.cache import CachedFeaturizer
from preflm.featurize.embedding import DEFAULT_EMBEDDER, SentenceEmbeddingFeaturizer
from preflm.featurize.lm import CausalLMFeaturizer
from preflm.featurize.text_stats import TextStatsFeaturizer


def default_featurizer(model: str = DEFAULT_EMBEDDER, stats: bool = True, text: str = "response"):
    """Sentence embedding (+ text statistics): the offline default."""
    parts = [SentenceEmbeddingFeaturizer(model, text=text)]
    if stats:
        parts.append(TextStatsFeaturizer())
    return ConcatFeaturizer(parts) if len(parts) > 1 else parts[0]


def featurizer_from_name(name: str):
    """CLI names: ``minilm+stats`` (default), ``minilm``, ``stats``, ``st:<hub id or path>[+stats]``,
    or a causal-LM backbone ``lm:smollm2`` / ``lm:<hub id or path>`` (last-token pooling, as in the paper)."""
    with_stats = name.endswith("+stats")
    base = name[: -len("+stats")] if with_stats else name
    if base == "stats":
        return TextStatsFeaturizer()
    if base == "minilm":
        return default_featurizer(stats=with_stats)
    if base.startswith("lm:"):
        backbone = CausalLMFeaturizer(base[3:])
        return ConcatFeaturizer([backbone, TextStatsFeaturizer()]) if with_stats else backbone
    if base.startswith("st:"):
        return default_featurizer(base[3:], stats=with_stats)
    raise ValueError(
        f"unknown featurizer {name!r}: use minilm+stats, minilm, stats, st:<model>[+stats] or lm:<model>[+stats]"
    )


__all__ = [
    "CausalLMFeaturizer",
    "featurizer_from_name",
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
