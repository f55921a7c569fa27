import numpy as np
import pytest

from preflm.featurize import (
    CachedFeaturizer,
    ConcatFeaturizer,
    SentenceEmbeddingFeaturizer,
    TextStatsFeaturizer,
    build_featurizer,
    featurizer_from_name,
)


class CountingFeaturizer:
    """Deterministic toy featurizer that counts how many texts it embedded."""

    dim = 3

    def __init__(self):
        self.calls = 0

    def spec(self):
        return {"type": "counting"}

    def transform(self, prompts, responses):
        self.calls += len(responses)
        return np.array([[len(p), len(r), r.count("!")] for p, r in zip(prompts, responses)], dtype=np.float32)


def test_text_stats_react_to_surface_form():
    stats = TextStatsFeaturizer().transform(["p", "p"], ["Short.", "This is much longer! Is it? Yes, it is!"])
    assert stats.shape == (2, TextStatsFeaturizer.dim)
    assert stats[1, 0] > stats[0, 0] and stats[1, 4] > 0 and stats[0, 4] == 0


def test_concat_and_spec_round_trip():
    combined = ConcatFeaturizer([TextStatsFeaturizer(), TextStatsFeaturizer()])
    rebuilt = build_featurizer(combined.spec())
    x = rebuilt.transform(["p"], ["Hello there, friend!"])
    assert x.shape == (1, 2 * TextStatsFeaturizer.dim)
    assert np.allclose(x[:, :12], x[:, 12:])
    with pytest.raises(ValueError, match="unknown featurizer"):
        build_featurizer({"type": "nope"})


def test_cache_embeds_nothing_twice(tmp_path):
    inner = CountingFeaturizer()
    cached = CachedFeaturizer(inner, tmp_path)
    first = cached.transform(["p", "p", "p"], ["a", "bb", "a"])
    assert inner.calls == 2
    fresh = CachedFeaturizer(inner, tmp_path)
    second = fresh.transform(["p", "q"], ["bb", "a"])
    assert inner.calls == 3 and fresh.hits == 1 and fresh.misses == 1
    assert np.array_equal(first[1], second[0])
    other_spec = CachedFeaturizer(TextStatsFeaturizer(), tmp_path)
    assert other_spec.directory != cached.directory


def test_featurizer_names():
    assert isinstance(featurizer_from_name("stats"), TextStatsFeaturizer)
    assert featurizer_from_name("minilm+stats").spec()["parts"][1] == {"type": "text-stats"}
    with pytest.raises(ValueError):
        featurizer_from_name("bogus")


@pytest.mark.slow
def test_bundled_minilm_embeds_offline():
    embedder = SentenceEmbeddingFeaturizer(show_progress=False)
    x = embedder.transform(["q"] * 3, ["I love dogs.", "Dogs are my favourite.", "Quarterly tax filing rules."])
    assert x.shape == (3, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)
    assert x[0] @ x[1] > x[0] @ x[2]
