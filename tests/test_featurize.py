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


def test_hashed_ngrams_are_stateless_and_rebuild_from_spec():
    from preflm.featurize import HashedNgramFeaturizer

    texts = ["Kindly note the attached report.", "lol that's wild!!", "Kindly note: the report is attached."]
    first = HashedNgramFeaturizer(dim=256, n_features=2**12).transform(["p"] * 3, texts)
    again = build_featurizer(HashedNgramFeaturizer(dim=256, n_features=2**12).spec()).transform(["p"] * 3, texts)
    assert first.shape == (3, 256) and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert first[0] @ first[2] > first[0] @ first[1] + 0.3
    other_seed = HashedNgramFeaturizer(dim=256, n_features=2**12, seed=1).transform(["p"] * 3, texts)
    assert not np.allclose(first, other_seed)
    unprojected = HashedNgramFeaturizer(dim=None, n_features=2**10).transform(["p"], texts[:1])
    assert unprojected.shape == (1, 2**11) and np.isclose(np.linalg.norm(unprojected), np.sqrt(2), atol=1e-5)


def test_featurizer_names_compose_with_plus():
    combined = featurizer_from_name("ngrams+stats")
    assert [p["type"] for p in combined.spec()["parts"]] == ["hashed-ngrams", "text-stats"]
    assert combined.dim == 1024 + TextStatsFeaturizer.dim
    assert featurizer_from_name("minilm-layers").spec()["layers"] == [2, 4, 6]
    assert featurizer_from_name("st-layers:some/encoder").spec()["model"] == "some/encoder"
    with pytest.raises(ValueError, match="unknown featurizer 'bogus'"):
        featurizer_from_name("ngrams+bogus")


def test_ngrams_generalize_to_unseen_prompts_where_stats_cannot():
    """Users prefer answers with a register marker; content words change with every prompt.

    Seen users' accuracy on prompts held out from fitting: the n-gram features see the marker, the
    surface statistics (same length, punctuation) cannot.
    """
    from preflm.data import AnswerMatrix, normalize_frame
    from preflm.data.split import prompt_holdout_mask
    from preflm.factorize import RewardFactorization
    from preflm.factorize.pipeline import featurize_items

    import pandas as pd

    rng = np.random.default_rng(0)
    markers = ["bravo", "delta", "kappa", "omega"]  # same length: identical surface statistics
    topics = [f"topic{i} thing{i} stuff{i}" for i in range(60)]
    rows = []
    for u in range(24):
        liked = markers[u % 4]
        for _ in range(90):
            q = int(rng.integers(60))
            a, b = rng.choice(4, 2, replace=False)
            text = lambda m: f"{m} the answer is about {topics[q]} here"  # noqa: E731
            rows.append({"user_id": f"u{u}", "prompt": f"question {q}", "response_a": text(markers[a]),
                         "response_b": text(markers[b]), "preference": "a" if markers[a] == liked else
                         ("b" if markers[b] == liked else "tie")})
    matrix = AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))
    held = prompt_holdout_mask(matrix, 0.25, seed=0)
    accuracy = {}
    for name in ("ngrams", "stats"):
        features = featurize_items(matrix, featurizer_from_name(name))
        model = RewardFactorization(n_factors=4, head="linear", max_steps=400, seed=0)
        model.fit(features, matrix.subset(~held), progress=False)
        accuracy[name] = model.score(features, matrix.subset(held))
    assert accuracy["ngrams"] > 0.9 and accuracy["stats"] < 0.75


@pytest.mark.slow
def test_encoder_layers_last_layer_matches_the_sentence_embedding():
    from preflm.featurize import EncoderLayersFeaturizer

    texts = ["I love dogs.", "Quarterly tax filing rules are strict, and they change every year."]
    layers = EncoderLayersFeaturizer(layers=[1, 6]).transform(["q"] * 2, texts)
    sentence = SentenceEmbeddingFeaturizer(show_progress=False).transform(["q"] * 2, texts)
    assert layers.shape == (2, 2 * 384)
    assert np.allclose(layers[:, 384:], sentence, atol=1e-4)
    assert not np.allclose(layers[:, :384], sentence, atol=1e-2)
    assert np.allclose(np.linalg.norm(layers[:, :384], axis=1), 1, atol=1e-4)


def test_ngrams_stats_spec_is_saved_with_the_model_and_reloads(tmp_path):
    from preflm.factorize import RewardFactorization
    from preflm.simulate.planted import planted_answers

    rng = np.random.default_rng(0)
    matrix, _ = planted_answers(rng.normal(size=(12, 40)), 10, 30, 5, 5, 200, rng)
    featurizer = featurizer_from_name("ngrams+stats")
    features = featurizer.transform(list(matrix.item_prompts), list(matrix.item_responses))
    model = RewardFactorization(n_factors=2, max_steps=50, featurizer_spec=featurizer.spec())
    model.fit(features, matrix.subset(matrix.answer_split == "train"), progress=False).save(tmp_path / "m")
    loaded = RewardFactorization.load(tmp_path / "m")
    again = loaded.featurizer().transform(list(matrix.item_prompts), list(matrix.item_responses))
    assert loaded.featurizer_spec == featurizer.spec()
    assert np.array_equal(again, features)
    assert np.allclose(loaded.base_rewards(again), model.base_rewards(features))
