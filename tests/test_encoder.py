"""End-to-end encoder fine-tuning inside the factorization (preflm.factorize.encoder).

The fast tests run on a tiny randomly initialised BERT (hidden 32, 2 layers) saved with MiniLM's tokenizer.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer, BertConfig, BertModel

from preflm.data import AnswerMatrix, normalize_frame
from preflm.data.split import answer_prompts
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.factorize.encoder import EncoderTuneConfig, checkpoint_dirs, tune_encoder
from preflm.factorize.pipeline import featurize_items
from preflm.featurize import EncoderLayersFeaturizer
from preflm.featurize.embedding import DEFAULT_EMBEDDER, resolve_embedder_path

FILLER = ("apple river stone cloud table green house music light paper window garden yellow summer winter bread "
          "water chair glass silver forest ocean mountain valley city road train horse bird fish tree flower sun "
          "moon star rain snow wind fire earth metal wood salt sugar milk honey coffee tea lamp door").split()
MARKERS = ("indeed", "frankly")
# Each user's reward is weights . (response says "indeed", response says "frankly").
USER_WEIGHTS = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])


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


def filler_answers(n_prompts=30, per_prompt=6, length=32, seed=0) -> AnswerMatrix:
    """Responses of ``length`` random filler words; two of every three also carry one marker word.

    Users' tastes depend only on the markers, one word among ~33: in a frozen encoder's mean-pooled
    features it is drowned by the filler, which a tuned encoder can learn to ignore. Every user answers
    every pair of a prompt's responses on which their rewards differ.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        texts, has = [], np.zeros((per_prompt, 2))
        for r in range(per_prompt):
            words = list(rng.choice(FILLER, length))
            if r % 3 < 2:
                words.insert(int(rng.integers(length + 1)), MARKERS[r % 3])
                has[r, r % 3] = 1.0
            texts.append(" ".join(words))
        for i in range(per_prompt):
            for j in range(i + 1, per_prompt):
                for u, weights in enumerate(USER_WEIGHTS):
                    margin = weights @ (has[i] - has[j])
                    if margin != 0:
                        rows.append({"user_id": f"u{u}", "prompt": f"prompt {p}", "response_a": texts[i],
                                     "response_b": texts[j], "preference": float(margin > 0)})
    return AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT (hidden 32) with MiniLM's tokenizer, saved to disk."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_embedder_path(DEFAULT_EMBEDDER))
    tokenizer.save_pretrained(directory)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    return str(directory)


FACTORIZE = FactorizeConfig(n_factors=2, head="linear")


def tiny_config(tiny_bert, **overrides) -> EncoderTuneConfig:
    settings = dict(model=tiny_bert, train_layers=None, epochs=10, prompts_per_step=2, learning_rate=3e-3,
                    head_learning_rate=1e-2, max_length=64)
    return EncoderTuneConfig(**{**settings, **overrides})


def test_resumed_tuning_ends_where_an_uninterrupted_run_ends(tiny_bert, tmp_path):
    matrix = filler_answers(n_prompts=12, length=12)
    # Dropout stays on (BERT's 0.1): the resumed run must draw the same dropout masks as the straight one.
    settings = dict(train_layers=1, epochs=3)
    straight = tune_encoder(matrix, tiny_config(tiny_bert, **settings, checkpoint_dir=str(tmp_path / "straight")),
                            FACTORIZE, progress=False)

    run = tmp_path / "interrupted"
    first = tune_encoder(matrix, tiny_config(tiny_bert, **{**settings, "epochs": 1}, checkpoint_dir=str(run)),
                         FACTORIZE, progress=False)
    assert [p.name for p in checkpoint_dirs(run)] == ["epoch-0001"] and len(first["history"]) == 2
    with safe_open(str(run / "epoch-0001" / "model.safetensors"), "pt") as saved:
        names = set(saved.keys())  # the trained top layer, head, users and standardization, not the frozen base
    rest = {"head.weight", "user_weights", "mean", "scale"}
    assert rest <= names and all(n.startswith("encoder.encoder.layer.1.") for n in names - rest)
    (run / "epoch-0002.partial").mkdir()  # as a kill while writing the next checkpoint leaves it

    config = tiny_config(tiny_bert, **settings, checkpoint_dir=str(run))
    resumed = tune_encoder(matrix, config, FACTORIZE, progress=False)
    assert resumed["resumed_from_epoch"] == 1 and straight["resumed_from_epoch"] == 0
    assert [p.name for p in checkpoint_dirs(run)] == ["epoch-0003"] and not (run / "epoch-0002.partial").exists()
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2, 3]
    for key in ("val_loss", "val_accuracy"):
        np.testing.assert_allclose([h[key] for h in resumed["history"]], [h[key] for h in straight["history"]],
                                   atol=1e-6)
    assert resumed["best_epoch"] == straight["best_epoch"] > 0
    for (name, a), (_, b) in zip(resumed["encoder"].named_parameters(), straight["encoder"].named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)
    with safe_open(str(run / "epoch-0003" / "model.safetensors"), "pt") as a, \
            safe_open(str(tmp_path / "straight" / "epoch-0003" / "model.safetensors"), "pt") as b:
        for name in ("head.weight", "user_weights", "encoder.encoder.layer.1.output.dense.weight"):
            torch.testing.assert_close(a.get_tensor(name), b.get_tensor(name), atol=1e-6, rtol=0)

    with pytest.raises(ValueError, match=r"different run \(settings \['learning_rate'\] differ\)"):
        tune_encoder(matrix, tiny_config(tiny_bert, **settings, learning_rate=1e-3, checkpoint_dir=str(run)),
                     FACTORIZE, progress=False)
    with pytest.raises(ValueError, match="training answers differ"):
        tune_encoder(matrix.subset(matrix.answer_user != 0), config, FACTORIZE, progress=False)
    with pytest.raises(ValueError, match="at least 3 epochs"):
        tune_encoder(matrix, tiny_config(tiny_bert, **{**settings, "epochs": 2}, checkpoint_dir=str(run)),
                     FACTORIZE, progress=False)


def test_tuned_encoder_beats_the_frozen_one_on_unseen_prompts(tiny_bert, tmp_path):
    matrix = filler_answers()
    codes, prompts = answer_prompts(matrix)
    held_out = np.isin(codes, np.random.default_rng(0).choice(len(prompts), len(prompts) // 3, replace=False))
    train, test = matrix.subset(~held_out), matrix.subset(held_out)
    assert not set(codes[held_out]) & set(codes[~held_out])

    def unseen_prompt_accuracy(featurizer) -> float:
        """Seen users' pairwise accuracy on the held-out prompts, of a factorization fitted on the training prompts."""
        features = featurize_items(matrix, featurizer)
        return RewardFactorization(FACTORIZE).fit(features, train, progress=False).score(features, test)

    frozen = unseen_prompt_accuracy(EncoderLayersFeaturizer(tiny_bert, layers=[2]))
    tuned_run = tune_encoder(train, tiny_config(tiny_bert), FACTORIZE, out_dir=tmp_path / "tuned", progress=False)
    tuned = unseen_prompt_accuracy(EncoderLayersFeaturizer(tuned_run["path"], layers=[2],
                                                           weights_id=tuned_run["weights_id"]))
    assert frozen < 0.9  # the markers are hard to read from the frozen features...
    assert tuned >= frozen + 0.1  # ...and the tuned encoder reads them on prompts it was not tuned on


@pytest.mark.slow
def test_tuning_trains_only_the_top_layers_and_saves_a_loadable_encoder(tmp_path):
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


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_tuning_refuses_no_held_out_prompts(fraction):
    with pytest.raises(ValueError, match="val_prompt_fraction"):
        EncoderTuneConfig(val_prompt_fraction=fraction)
