"""Issue 11, library side: never lose an answer, never serve garbage.

Each table below is one area: a case (what is done to the library) -> the expected outcome (a clear
error naming the problem, or the behaviour that keeps data safe).
"""

import json
import shutil
import string

import numpy as np
import pandas as pd
import pytest
import torch

from preflm.data import AnswerMatrix, DataError, load_candidates, load_preferences, normalize_frame
from preflm.factorize import ModelFileError, RewardFactorization, model_id_of
from preflm.featurize import CachedFeaturizer, TextStatsFeaturizer, build_featurizer
from preflm.generate import best_of_n
from preflm.generate.generators import GenerationConfig, GenerationError, HFGenerator, check_context_fits
from preflm.onboard import AnswerJournal, JournalError, OnboardingSession, ProfileError, UserProfile

SHORT = ["Yes.", "No.", "Sure.", "Fine.", "Ok."]
LONG = ["Here is a long and careful answer with many words in it, explained step by step.",
        "Let me explain this at length, with context, examples and a few caveats as well.",
        "This answer goes on for a while, covering background, details and a summary too."]


def answer_rows(users=("brief", "wordy"), tie=False):
    return [{"user_id": user, "prompt": "q", "response_a": s, "response_b": l,
             "preference": "tie" if tie else ("a" if k % 2 == 0 else "b")}
            for k, user in enumerate(users) for s in SHORT for l in LONG]


def matrix_and_features(rows):
    matrix = AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))
    features = TextStatsFeaturizer().transform(list(matrix.item_prompts), list(matrix.item_responses))
    return matrix, features


def fit(rows=None, **overrides):
    matrix, features = matrix_and_features(rows or answer_rows())
    settings = {"n_factors": 2, "head": "linear", "val_fraction": 0.0, "max_steps": 50, **overrides}
    model = RewardFactorization(featurizer_spec=TextStatsFeaturizer().spec(), **settings)
    return model.fit(features, matrix, progress=False)


@pytest.fixture(scope="module")
def model():
    return fit()


@pytest.fixture(scope="module")
def other_model():
    return fit(max_steps=30)


@pytest.fixture
def saved(tmp_path, model):
    return model.save(tmp_path / "model")


# ---- 5. model files written atomically and checked when read ------------------------------------------


def _truncate_weights(folder):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def _edit_config(**changes):
    def edit(folder):
        meta = json.loads((folder / "config.json").read_text())
        for key, value in changes.items():
            if key == "n_factors":
                meta["config"]["n_factors"] = value
            else:
                meta[key] = value
        (folder / "config.json").write_text(json.dumps(meta))
    return edit


def _nan_weights(folder):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    tensors["user_weights"][0, 0] = float("nan")
    save_file(tensors, str(folder / "model.safetensors"))


LOAD_CASES = {
    "truncated weights": (_truncate_weights, ModelFileError, r"model\.safetensors: is not a readable safetensors file.*truncated or corrupt"),
    "garbage weights": (lambda f: (f / "model.safetensors").write_bytes(b"\x00garbage" * 10), ModelFileError, r"model\.safetensors.*corrupt"),
    "empty config": (lambda f: (f / "config.json").write_text(""), ModelFileError, r"config\.json: is empty"),
    "broken config": (lambda f: (f / "config.json").write_text('{"format_version": 1,'), ModelFileError, r"config\.json: is not valid JSON"),
    "config not an object": (lambda f: (f / "config.json").write_text("[1, 2]"), ModelFileError, r"config\.json: must hold a JSON object"),
    "unknown format_version": (_edit_config(format_version=99), ModelFileError, r"unknown format_version 99"),
    "config does not match weights (J)": (_edit_config(n_factors=3), ModelFileError, r"config\.json: does not match model\.safetensors: user_weights"),
    "config does not match weights (model_id)": (_edit_config(user_ids=["x", "y"]), ModelFileError, r"does not match model\.safetensors \(model_id"),
    "NaN in weights": (_nan_weights, ModelFileError, r"model\.safetensors: tensor 'user_weights' holds NaN or inf"),
    "weights missing": (lambda f: (f / "model.safetensors").unlink(), FileNotFoundError, r"not a preflm model"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_loading_a_damaged_model_gives_one_line_naming_the_file(saved, case):
    damage, error, message = LOAD_CASES[case]
    damage(saved)
    with pytest.raises(error, match=message) as info:
        RewardFactorization.load(saved)
    assert "\n" not in str(info.value)


def test_model_id_is_stable_across_save_and_load_and_tells_models_apart(saved, model, other_model):
    loaded = RewardFactorization.load(saved)
    assert loaded.model_id == model.model_id == model_id_of(saved)
    assert json.loads((saved / "config.json").read_text())["model_id"] == model.model_id
    assert other_model.model_id != model.model_id


def test_save_replaces_a_model_folder_and_keeps_what_else_is_there(tmp_path, model, other_model):
    folder = other_model.save(tmp_path / "m")
    (folder / "backbone").mkdir()
    (folder / "backbone" / "weights.bin").write_bytes(b"tuned")
    model.save(folder)
    assert RewardFactorization.load(folder).model_id == model.model_id
    assert (folder / "backbone" / "weights.bin").read_bytes() == b"tuned"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left behind


def test_an_interrupted_overwrite_is_caught_on_load(tmp_path, model, other_model):
    """Weights of the new model renamed in, config of the old one still there: the pair does not match."""
    old, new = model.save(tmp_path / "old"), other_model.save(tmp_path / "new")
    shutil.copy(new / "model.safetensors", old / "model.safetensors")
    with pytest.raises(ModelFileError, match="partly overwritten"):
        RewardFactorization.load(old)


def test_save_refuses_a_path_that_is_a_file(tmp_path, model):
    target = tmp_path / "model"
    target.write_text("not a folder")
    with pytest.raises(ModelFileError, match="exists and is not a folder"):
        model.save(target)
    assert target.read_text() == "not a folder"


# ---- 6. degenerate training data refused ----------------------------------------------------------


def _nan_features(matrix, features):
    features = features.copy()
    features[3, 0] = np.nan
    return features


FIT_CASES = {
    "all ties": (answer_rows(tie=True), {}, None, r"all 30 answers are ties"),
    "a single user": (answer_rows(users=("alone",)), {}, None, r"at least 2 users, got only user 'alone'"),
    "fewer answers than needed": (answer_rows()[:1] + answer_rows()[15:16], {}, None, r"fewer answers than needed: 2 non-tie"),
    "n_factors beyond the data": (answer_rows(), {"n_factors": 3}, None, r"n_factors=3 is larger than the data supports.*at most 2"),
    "max_steps < 1": (answer_rows(), {"max_steps": 0}, None, r"max_steps must be >= 1, got 0"),
    "NaN features": (answer_rows(), {}, _nan_features, r"features are not finite.*first row 3"),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_refuses_degenerate_data(case):
    rows, overrides, spoil, message = FIT_CASES[case]
    matrix, features = matrix_and_features(rows)
    if spoil is not None:
        features = spoil(matrix, features)
    settings = {"n_factors": 2, "head": "linear", "val_fraction": 0.0, "max_steps": 20, **overrides}
    with pytest.raises(ValueError, match=message):
        RewardFactorization(**settings).fit(features, matrix, progress=False)


def test_fit_users_never_returns_nan(model):
    n = model.n_weights
    z = np.eye(2, n)
    z[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit_users(z, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=f"{n + 1} entries but the model's users have {n}"):
        model.fit_users(np.ones((2, n + 1)), np.array([1.0, 0.0]))
    weights, covariance = model.fit_users(np.eye(2, n), np.array([1.0, 0.0]))
    assert np.isfinite(weights).all() and np.isfinite(covariance).all()


# ---- 2./3. profiles bound to their model, checked when read ------------------------------------------


def _profile(model, answers=2, **changes):
    n = model.n_weights
    values = {"user_id": "me", "weights": np.linspace(0.1, -0.2, n).tolist(), "covariance": np.eye(n).tolist(),
              "answers": [{"question": i, "preference": 1.0} for i in range(answers)], "model_id": model.model_id}
    return UserProfile(**{**values, **changes})


PROFILE_FILE_CASES = {
    "not JSON": ("{oops", r"not a preflm user profile"),
    "not UTF-8": (b"\xff\xfe\x00garbage", r"not a preflm user profile"),
    "a JSON list": ("[1, 2]", r"not a preflm user profile"),
    "NaN weight": ('{"user_id": "me", "weights": [NaN, 1.0], "covariance": [[1, 0], [0, 1]]}', r"NaN or inf"),
    "covariance of the wrong shape": ('{"user_id": "me", "weights": [0, 1], "covariance": [[1, 0, 0]]}', r"covariance has shape \(1, 3\) but 2 weights"),
    "weights not numbers": ('{"user_id": "me", "weights": ["x"], "covariance": [[1]]}', r"must be numbers"),
    "empty weights": ('{"user_id": "me", "weights": [], "covariance": []}', r"non-empty list"),
}


@pytest.mark.parametrize("case", list(PROFILE_FILE_CASES))
def test_loading_a_bad_profile_names_the_file_and_the_problem(tmp_path, case):
    content, message = PROFILE_FILE_CASES[case]
    path = tmp_path / "me.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ProfileError, match=message) as info:
        UserProfile.load(path)
    assert str(path) in str(info.value)


def test_profile_is_refused_by_another_model(model, other_model, saved):
    profile = _profile(model)
    profile.check_model(model)
    profile.check_model(RewardFactorization.load(saved))
    with pytest.raises(ProfileError, match=f"learned with model {model.model_id}.*not with this model"):
        profile.check_model(other_model)
    with pytest.raises(ProfileError, match=f"has 3 weights but the model's users have {model.n_weights}"):
        _profile(model, weights=[0.0, 0.0, 0.0], covariance=np.eye(3).tolist()).check_model(model)
    _profile(model, model_id=None).check_model(other_model)  # profiles from before model ids: J is still checked


SAVE_CASES = {
    "richer over poorer": (2, 5, {}, None),
    "same number of answers": (3, 3, {}, None),
    "poorer over richer": (5, 2, {}, r"holds a profile with 5 answers; not replacing it with one of 2"),
    "poorer over richer, asked to": (5, 2, {"overwrite_poorer": True}, None),
}


@pytest.mark.parametrize("case", list(SAVE_CASES))
def test_a_profile_is_never_replaced_by_a_poorer_one_unasked(tmp_path, model, case):
    before, after, options, message = SAVE_CASES[case]
    path = _profile(model, answers=before).save(tmp_path / "me.json")
    if message is None:
        _profile(model, answers=after).save(path, **options)
        assert len(UserProfile.load(path).answers) == after
    else:
        with pytest.raises(ProfileError, match=message):
            _profile(model, answers=after).save(path, **options)
        assert len(UserProfile.load(path).answers) == before
    assert [p.name for p in tmp_path.iterdir()] == ["me.json"]


def test_a_profile_does_not_replace_a_file_that_is_not_a_profile(tmp_path, model):
    path = tmp_path / "notes.json"
    path.write_text("my notes")
    with pytest.raises(ProfileError, match="not a readable preflm profile"):
        _profile(model).save(path)
    assert path.read_text() == "my notes"


# ---- 1. answers are never lost: the append-only journal ----------------------------------------------


@pytest.fixture
def questions():
    return pd.DataFrame({"prompt": ["q"] * 15, "response_a": [s for s in SHORT for _ in LONG],
                         "response_b": [l for _ in SHORT for l in LONG]})


def test_each_answer_is_on_disk_when_recorded_and_a_session_resumes(tmp_path, model, questions):
    journal = tmp_path / "me.answers.jsonl"
    session = OnboardingSession.from_questions(model, questions, user_id="me")
    assert session.attach_journal(journal) == 0
    for n, (index, label) in enumerate([(3, 1.0), (7, 0.0), (11, 0.5)], 1):
        session.record(index, label)
        header, answers = AnswerJournal(journal).read()
        assert len(answers) == n and answers[-1]["question"] == index and answers[-1]["preference"] == label
    assert header["model_id"] == model.model_id and answers[0]["response_a"] == questions["response_a"][3]
    del session  # Ctrl-C, end of input or a crash: nothing but the journal survives

    resumed = OnboardingSession.from_questions(model, questions, user_id="me")
    assert resumed.attach_journal(journal) == 3
    assert resumed.asked == [3, 7, 11] and resumed.labels == [1.0, 0.0, 0.5]
    resumed.record(0, 1.0)
    assert len(AnswerJournal(journal).read()[1]) == 4
    profile = resumed.profile()
    assert profile.model_id == model.model_id and len(profile.answers) == 4


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_answer(tmp_path, model, questions):
    journal = tmp_path / "j.jsonl"
    session = OnboardingSession.from_questions(model, questions, user_id="me")
    session.attach_journal(journal)
    session.record(2, 1.0)
    with open(journal, "a") as handle:
        handle.write('{"question": 5, "prefer')  # the process died mid-write
    resumed = OnboardingSession.from_questions(model, questions, user_id="me")
    assert resumed.attach_journal(journal) == 1
    resumed.record(5, 0.0)
    lines = journal.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)


JOURNAL_CASES = {
    "another user": ({"user_id": "someone-else"}, r"written for user_id 'me', not 'someone-else'"),
    "another model": ({"model_id": "0123456789abcdef"}, r"written for model_id"),
    "another question pool": ({"pool": "changed"}, r"written for pool"),
}


@pytest.mark.parametrize("case", list(JOURNAL_CASES))
def test_a_journal_resumes_only_the_session_it_was_written_for(tmp_path, model, questions, case):
    journal = tmp_path / "j.jsonl"
    first = OnboardingSession.from_questions(model, questions, user_id="me")
    first.attach_journal(journal)
    first.record(1, 1.0)
    change, message = JOURNAL_CASES[case]
    session = OnboardingSession.from_questions(model, questions, user_id=change.get("user_id", "me"),
                                               model_id=change.get("model_id", model.model_id))
    if "pool" in change:
        session = OnboardingSession.from_questions(model, questions.iloc[::-1], user_id="me")
    with pytest.raises(JournalError, match=message):
        session.attach_journal(journal)


def test_a_corrupt_journal_line_is_reported_with_its_number(tmp_path, model, questions):
    journal = tmp_path / "j.jsonl"
    session = OnboardingSession.from_questions(model, questions, user_id="me")
    session.attach_journal(journal)
    session.record(1, 1.0)
    session.record(2, 0.0)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], "garbage", lines[2]]) + "\n")
    with pytest.raises(JournalError, match=r"j\.jsonl, line 2: not a JSON record"):
        OnboardingSession.from_questions(model, questions, user_id="me").attach_journal(journal)


def test_a_session_refuses_non_finite_pair_differences(model):
    with pytest.raises(ValueError, match="question 1"):
        OnboardingSession(np.array([[1.0, 0.0], [np.inf, 0.0]]), model.prior_mean_, model.prior_precision())


# ---- 5. the feature cache: broken shards rebuilt, local weights part of the key ------------------


class CountingFeaturizer:
    dim = 2

    def __init__(self, model="none"):
        self.model, self.calls = model, 0

    def spec(self):
        return {"type": "counting", "model": self.model}

    def transform(self, prompts, responses):
        self.calls += len(responses)
        return np.array([[len(p), len(r)] for p, r in zip(prompts, responses)], dtype=np.float32)


SHARD_DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"\x07" * len(data),
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("case", list(SHARD_DAMAGE))
def test_a_broken_cache_shard_is_reported_set_aside_and_rebuilt(tmp_path, case):
    inner = CountingFeaturizer()
    expected = CachedFeaturizer(inner, tmp_path).transform(["p", "p"], ["a", "bb"])
    (shard,) = tmp_path.glob("*/shard-*.safetensors")
    shard.write_bytes(SHARD_DAMAGE[case](shard.read_bytes()))
    fresh = CachedFeaturizer(inner, tmp_path)
    with pytest.warns(UserWarning, match="unreadable.*recomputed"):
        again = fresh.transform(["p", "p"], ["a", "bb"])
    assert np.array_equal(again, expected) and inner.calls == 4
    assert len(list(tmp_path.glob("*/shard-*.corrupt"))) == 1
    third = CachedFeaturizer(inner, tmp_path)
    assert np.array_equal(third.transform(["p", "p"], ["a", "bb"]), expected) and third.hits == 2 and inner.calls == 4


def test_changed_local_weights_are_never_served_stale_features(tmp_path):
    weights = tmp_path / "my-model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"version one")
    before = CachedFeaturizer(CountingFeaturizer(str(weights)), tmp_path / "cache")
    assert CachedFeaturizer(CountingFeaturizer(str(weights)), tmp_path / "cache").directory == before.directory
    (weights / "model.safetensors").write_bytes(b"version two, retrained")
    after = CachedFeaturizer(CountingFeaturizer(str(weights)), tmp_path / "cache")
    assert after.directory != before.directory
    hub = CachedFeaturizer(CountingFeaturizer("org/hub-model"), tmp_path / "cache")
    assert hub.directory == CachedFeaturizer(CountingFeaturizer("org/hub-model"), tmp_path / "cache").directory


# ---- 7. no surprise network -------------------------------------------------------------------------


@pytest.fixture
def hub_calls(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, *args, **kwargs):
        calls.append(name)
        return datasets.Dataset.from_pandas(pd.DataFrame(answer_rows()))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls


DATA_SOURCE_CASES = {
    "name without extension": ("org/some-dataset", DataError, r"file not found \(to read a Hugging Face Hub dataset, write hf:org/some-dataset\)", []),
    "missing file": ("nowhere/answers.jsonl", DataError, r"answers\.jsonl: file not found", []),
    "asked for the Hub": ("hf:org/some-dataset", None, None, ["org/some-dataset"]),
    "hf: without a name": ("hf:", DataError, r"give a dataset name", []),
}


@pytest.mark.parametrize("case", list(DATA_SOURCE_CASES))
def test_data_goes_to_the_hub_only_when_asked(hub_calls, case):
    source, error, message, expected_calls = DATA_SOURCE_CASES[case]
    if error is None:
        assert len(load_preferences(source)) == 30
    else:
        with pytest.raises(error, match=message):
            load_preferences(source)
    assert hub_calls == expected_calls


@pytest.mark.parametrize("spec", [
    {"type": "sentence-embedding", "model": "nobody/absent-model", "text": "response", "normalize": True},
    {"type": "causal-lm", "model": "nobody/absent-lm", "pooling": "last", "max_length": 64, "chat_template": True,
     "dtype": "auto", "adapter": None, "weights_id": None},
])
def test_a_saved_models_featurizer_is_loaded_from_local_files_only(tmp_path, model, spec):
    copy = RewardFactorization.load(model.save(tmp_path / "m"))
    copy.featurizer_spec = {"type": "concat", "parts": [spec, {"type": "text-stats"}]}
    with pytest.raises(FileNotFoundError, match="not available locally.*allow_download=True"):
        copy.text_base_rewards(["q"], ["an answer"])
    assert build_featurizer(spec).allow_download and not build_featurizer(spec, allow_download=False).allow_download


# ---- 4. candidates validated -------------------------------------------------------------------------


CANDIDATE_FILES = {
    "JSON list": ('["first", "second\\nwith a newline"]', ["first", "second\nwith a newline"], None),
    "one per line": ("first\n\n  \nsecond\n", ["first", "second"], None),
    "broken JSON": ('["first", "sec', None, r"not a valid JSON list"),
    "JSON with a number": ('["first", 2]', None, r"row 1: candidate must be a string, got int"),
    "JSON with an empty string": ('["first", "  "]', None, r"row 1: empty candidate"),
    "nothing in it": ("\n \n", None, r"no candidates in the file"),
    "not UTF-8": (b"caf\xe9\n", None, r"not UTF-8 text \(bad byte at offset 3\)"),
    "missing": (None, None, r"file not found"),
}


@pytest.mark.parametrize("case", list(CANDIDATE_FILES))
def test_reading_a_candidates_file(tmp_path, case):
    content, expected, message = CANDIDATE_FILES[case]
    path = tmp_path / "candidates.txt"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if message is None:
        assert load_candidates(path) == expected
    else:
        with pytest.raises(DataError, match=message) as info:
            load_candidates(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize("candidates, message", [
    ([], "at least one candidate"),
    (["fine", ""], "candidate 1 is empty"),
    (["fine", " \n\t"], "candidate 1 is empty or whitespace only"),
    (["fine", None], "candidate 1 is not a string"),
])
def test_best_of_n_refuses_empty_candidates(model, candidates, message):
    with pytest.raises(ValueError, match=message):
        best_of_n(model, model.user_weights_[0], "q", candidates)


def test_best_of_n_refuses_non_finite_weights(model):
    with pytest.raises(ValueError, match="NaN or inf"):
        best_of_n(model, np.array([np.nan, 1.0]), "q", ["a", "b"])


# ---- 8. limits: prompts beyond the model's context ---------------------------------------------------


@pytest.mark.parametrize("lengths, max_new_tokens, message", [
    ([10, 20], 44, None),
    ([10, 21], 44, r"prompt 1 is 21 tokens; with max_new_tokens=44 it exceeds m's context of 64 tokens \(1 prompt"),
    ([70], 1, r"prompt 0 is 70 tokens"),
])
def test_context_check(lengths, max_new_tokens, message):
    if message is None:
        check_context_fits(lengths, max_new_tokens, 64, "m")
    else:
        with pytest.raises(GenerationError, match=message):
            check_context_fits(lengths, max_new_tokens, 64, "m")


@pytest.fixture(scope="module")
def short_context_generator(tmp_path_factory):
    """A random 1-layer Llama with a 48-position context and a character-level tokenizer."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = list(string.ascii_letters + string.digits + string.punctuation + " \n")
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=48,
                         bos_token_id=None, eos_token_id=1, pad_token_id=0)
    path = tmp_path_factory.mktemp("short-context-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return HFGenerator(str(path), device="cpu")


def test_hf_generator_refuses_a_prompt_beyond_its_context(short_context_generator):
    config = GenerationConfig(max_new_tokens=8, temperature=0.0)
    assert short_context_generator.context_limit == 48
    assert len(short_context_generator.generate(["short"], n=1, config=config)[0]) == 1
    with pytest.raises(GenerationError, match=r"prompt 1 is 60 tokens; with max_new_tokens=8 it exceeds .*context of 48"):
        short_context_generator.generate(["short", "x" * 60], n=1, config=config)
