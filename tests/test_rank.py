import numpy as np

from preflm.factorize import RewardFactorization
from preflm.featurize import TextStatsFeaturizer
from preflm.generate import best_of_n
from preflm.data import AnswerMatrix, normalize_frame
import pandas as pd


def _length_model():
    short = ["Yes.", "No.", "Sure.", "Fine.", "Ok."]
    long = ["Here is a long and careful answer with many words in it, explained step by step.",
            "Let me explain this at length, with context, examples and a few caveats as well.",
            "This answer goes on for a while, covering background, details and a summary too."]
    rows = [{"user_id": user, "prompt": "q", "response_a": s, "response_b": l,
             "preference": "a" if user == "brief" else "b"} for user in ("brief", "wordy") for s in short for l in long]
    matrix = AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))
    featurizer = TextStatsFeaturizer()
    features = featurizer.transform(list(matrix.item_prompts), list(matrix.item_responses))
    return RewardFactorization(n_factors=2, val_fraction=0.0, featurizer=featurizer).fit(features, matrix, progress=False)


def test_best_of_n_prefers_what_the_user_rewards():
    model = _length_model()
    candidates = ["A short reply.", "A much longer reply that keeps going with detail after detail, on and on."]
    for user, best in (("brief", 0), ("wordy", 1)):
        ranking = best_of_n(model, model.user_weights_[model.user_index(user)], "q", candidates)
        assert ranking.best_index == best and ranking.best == candidates[best]
        assert ranking.scores.shape == (2,) and np.all(np.isfinite(ranking.scores))


def test_ranking_many_candidates_with_a_progress_bar_scores_them_all_the_same(capsys):
    model = _length_model()
    weights = model.user_weights_[model.user_index("wordy")]
    candidates = [" ".join(["word"] * (1 + i % 37)) + f" {i}." for i in range(2500)]
    plain = best_of_n(model, weights, "q", candidates)
    shown = best_of_n(model, weights, "q", candidates, progress=True)
    assert np.allclose(plain.scores, shown.scores)
    assert list(plain.order) == list(shown.order)
    assert "scoring" in capsys.readouterr().err
