"""End-to-end encoder fine-tuning inside the factorization (preflm.factorize.encoder)."""

import numpy as np
import pandas as pd
import pytest
import torch

from preflm.data import AnswerMatrix, normalize_frame


def marker_answers(n_users=8, n_prompts=12, per_user=30, seed=0):
    rng = np.random.default_rng(seed)
    markers = ["bravo", "delta", "kappa", "omega"]
    rows = []
    for u in range(n_users):
        liked = markers[u % 4]
        for _ in range(per_user):
            q = int(rng.integers(n_prompts))
            a, b = rng.choice(4, 2, replace=False)
            text = lambda m: f"{m}: the answer to question {q} is {q * 7}."  # noqa: E731
            rows.append({"user_id": f"u{u}", "prompt": f"question {q}", "response_a": text(markers[a]),
                         "response_b": text(markers[b]),
                         "preference": "a" if markers[a] == liked else ("b" if markers[b] == liked else "tie")})
    return AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))


@pytest.mark.slow
def test_tuning_trains_only_the_top_layers_and_saves_a_loadable_encoder(tmp_path):
    from preflm.factorize.encoder import EncoderTuneConfig, tune_encoder
    from preflm.featurize import EncoderLayersFeaturizer
    from preflm.featurize.layers import load_encoder

    matrix = marker_answers()
    config = EncoderTuneConfig(train_layers=1, epochs=1, prompts_per_step=4, learning_rate=1e-3, max_length=32)
    result = tune_encoder(matrix, config, out_dir=tmp_path / "enc", progress=False)
    assert [h["epoch"] for h in result["history"]] == [0, 1]
    _, base = load_encoder(config.model)
    tuned = result["encoder"].to("cpu")
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))  # noqa: E731
    assert same(base.encoder.layer[0], tuned.encoder.layer[0]) and same(base.embeddings, tuned.embeddings)
    if result["best_epoch"] == 1:
        assert not same(base.encoder.layer[-1], tuned.encoder.layer[-1])
    featurizer = EncoderLayersFeaturizer(str(tmp_path / "enc"), layers=[6], weights_id=result["weights_id"])
    x = featurizer.transform(["q"], ["bravo: the answer is 7."])
    assert x.shape == (1, 384) and np.isclose(np.linalg.norm(x), 1, atol=1e-4)
    assert featurizer.spec()["weights_id"] == result["weights_id"]
