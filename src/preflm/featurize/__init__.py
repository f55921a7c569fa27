"""Featurizers: (prompt, response) -> vector. Composable, cached on disk, rebuildable from a spec."""

from importlib import import_module
from pathlib import Path

from preflm._lazy import lazy_exports
from preflm.featurize.base import ConcatFeaturizer, Featurizer, build_featurizer, register_featurizer

_EXPORTS = {
    "CachedFeaturizer": "preflm.featurize.cache",
    "DEFAULT_EMBEDDER": "preflm.featurize.embedding",
    "SentenceEmbeddingFeaturizer": "preflm.featurize.embedding",
    "EncoderLayersFeaturizer": "preflm.featurize.layers",
    "CausalLMFeaturizer": "preflm.featurize.lm",
    "HashedNgramFeaturizer": "preflm.featurize.ngrams",
    "StyleStatsFeaturizer": "preflm.featurize.style",
    "TextStatsFeaturizer": "preflm.featurize.text_stats",
}
"""Loaded on first use, so reading ``DEFAULT_FEATURIZER`` (``preflm --help``) does not import torch."""
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


DEFAULT_FEATURIZER = "ngrams+stats"
"""Hashed n-grams + text statistics: chosen on seen users' prompt-held-out validation, where it beat the
sentence embedding on both the Attributes world and DSP (benchmarks/results/unseen); needs no model."""

FEATURIZER_NAMES = "minilm, stats, style, ngrams, ngrams:<dim>, minilm-layers, st:<model>, st-layers:<model>, lm:<model>, lm-mean:<model>, lm-mean:<model>@<layer>"


def _part_from_name(name: str):
    from preflm.featurize.embedding import SentenceEmbeddingFeaturizer
    from preflm.featurize.ngrams import HashedNgramFeaturizer
    from preflm.featurize.style import StyleStatsFeaturizer
    from preflm.featurize.text_stats import TextStatsFeaturizer

    if name == "stats":
        return TextStatsFeaturizer()
    if name == "style":
        return StyleStatsFeaturizer()
    if name == "minilm":
        return SentenceEmbeddingFeaturizer()
    if name == "ngrams":
        return HashedNgramFeaturizer()
    if name.startswith("ngrams:"):
        dim = name[len("ngrams:"):]
        if not dim.isdigit():
            raise ValueError(f"ngrams:<dim> needs a whole number of columns, e.g. ngrams:8192, got {name!r}")
        return HashedNgramFeaturizer(dim=int(dim))
    if name == "minilm-layers" or name.startswith("st-layers:"):
        from preflm.featurize.layers import EncoderLayersFeaturizer

        if name.startswith("st-layers:"):
            return EncoderLayersFeaturizer(name[len("st-layers:"):])
        return EncoderLayersFeaturizer()
    if name.startswith("lm:") or name.startswith("lm-mean:"):
        from preflm.featurize.lm import CausalLMFeaturizer

        pooling, model = ("mean", name[len("lm-mean:"):]) if name.startswith("lm-mean:") else ("last", name[3:])
        base, _, suffix = model.rpartition("@")
        layer = None
        if base and suffix.isascii() and suffix.isdigit() and not Path(model).exists():
            model, layer = base, int(suffix)
        return CausalLMFeaturizer(model, pooling=pooling, layer=layer)
    if name.startswith("st:"):
        return SentenceEmbeddingFeaturizer(name[3:])
    raise ValueError(f"unknown featurizer {name!r}: combine with '+' any of {FEATURIZER_NAMES}")


def featurizer_from_name(name: str):
    """CLI names, parts joined by ``+`` and concatenated, e.g. ``ngrams+stats`` (the default) or ``minilm+stats``.

    Parts: ``minilm`` (sentence embedding), ``stats`` (text statistics), ``ngrams`` (hashed word and
    character n-grams, projected; ``ngrams:<dim>`` sets the projected width), ``style`` (layout, rhyme
    and register statistics), ``minilm-layers`` / ``st-layers:<model>`` (mean-pooled hidden states
    of several encoder layers), ``st:<hub id or path>``, and a causal-LM backbone ``lm:smollm2`` /
    ``lm:<hub id or path>`` (last-token pooling, as in the paper; ``lm-mean:<model>`` averages the hidden
    states over the tokens instead; ``@<layer>`` takes the output of that transformer block, counted from 1,
    instead of the last layer's, e.g. ``lm-mean:smollm2@20``).
    """
    parts = [_part_from_name(part) for part in name.split("+")]
    return ConcatFeaturizer(parts) if len(parts) > 1 else parts[0]


def register_builtin_featurizers() -> None:
    """Import every built-in featurizer module, so each registers its spec type for :func:`build_featurizer`."""
    for module in sorted(set(_EXPORTS.values())):
        import_module(module)


__all__ = [
    "CausalLMFeaturizer",
    "featurizer_from_name",
    "CachedFeaturizer",
    "ConcatFeaturizer",
    "DEFAULT_EMBEDDER",
    "DEFAULT_FEATURIZER",
    "EncoderLayersFeaturizer",
    "FEATURIZER_NAMES",
    "HashedNgramFeaturizer",
    "Featurizer",
    "SentenceEmbeddingFeaturizer",
    "StyleStatsFeaturizer",
    "TextStatsFeaturizer",
    "build_featurizer",
    "register_featurizer",
]
