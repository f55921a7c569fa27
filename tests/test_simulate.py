"""Tests of the offline Attributes world (preflm.simulate)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from preflm.simulate import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    FRAME_COLUMNS,
    PROMPTS,
    SCORERS,
    TOPICS,
    WorldConfig,
    build_world,
    candidates_for_prompt,
    load_users,
    mixture_users,
    oracle_accuracy,
    paper_users,
    realize,
    score_text,
    score_texts,
    simulate_preferences,
    template_training_answers,
    true_reward,
    users_path,
    world_from_texts,
    write_world,
)
from preflm.simulate.bank import GENERIC_EXTRAS, TOPIC_EXTRAS, TOPIC_FOLLOWUPS, TOPIC_QUIPS, get_prompt, load_bank
from preflm.simulate.styles import load_styles
from preflm.simulate.tables import DATA_DIR

SMALL = dict(n_prompts=20, n_mixture_users=6, train_answers_per_user=40, pool_size=20, test_size=15)


@pytest.fixture(scope="module")
def small_world():
    return build_world(WorldConfig(seed=3, **SMALL))


@pytest.fixture(scope="module")
def default_world():
    return build_world(WorldConfig())


def _pair_keys(frame: pd.DataFrame) -> list[tuple[str, frozenset[str]]]:
    """Unordered (prompt, response pair) identity of each row."""
    return [(p, frozenset((a, b))) for p, a, b in zip(frame["prompt"], frame["response_a"], frame["response_b"])]


def test_bank_has_enough_prompts_and_topics():
    assert len(PROMPTS) >= 150
    assert len(TOPICS) >= 10 and len({p.topic for p in PROMPTS}) >= 10
    assert len({p.prompt_id for p in PROMPTS}) == len(PROMPTS)
    assert all(2 <= len(p.content) <= 4 and p.question.endswith("?") for p in PROMPTS)
    assert all(p.prompt_id.startswith(p.topic + ".") for p in PROMPTS)


def test_bank_table_loads_every_row_in_topic_order():
    raw = json.loads((DATA_DIR / "bank.json").read_text(encoding="utf-8"))["topics"]
    assert TOPICS == list(raw)
    assert len(PROMPTS) == sum(len(t["prompts"]) for t in raw.values())
    assert [p.topic for p in PROMPTS] == [t for t in TOPICS for _ in raw[t]["prompts"]]
    first = raw[TOPICS[0]]["prompts"][0]
    entry = get_prompt(f"{TOPICS[0]}.{first['slug']}")
    assert entry is PROMPTS[0] and entry.question == first["question"] and entry.content == tuple(first["content"])
    for table in (TOPIC_EXTRAS, TOPIC_FOLLOWUPS, TOPIC_QUIPS):
        assert list(table) == TOPICS and all(isinstance(v, tuple) and v for v in table.values())
    assert all(len(v) >= 2 for v in TOPIC_EXTRAS.values())  # long answers draw two distinct extras
    assert isinstance(GENERIC_EXTRAS, tuple) and GENERIC_EXTRAS
    poles, contract, expand, proper = load_styles()
    assert {"confident", "hedge", "formal", "informal", "polite", "rude", "elicit", "closure"} <= set(poles)
    assert all(all(len(v) > 0 for v in pole.values()) for pole in poles.values())
    assert len(expand) > len(contract) > 0 and "JavaScript" in proper and "Central" not in proper


def _broken_copy(tmp_path, name, edit):
    """A folder holding the package's table ``name`` after ``edit``."""
    table = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    edit(table)
    (tmp_path / name).write_text(json.dumps(table), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "loader, name, edit, message",
    [
        (load_bank, "bank.json", lambda t: t["topics"]["cooking"]["prompts"][1].pop("question"),
         r"bank.json: topic 'cooking' prompt 1: missing field 'question'"),
        (load_bank, "bank.json", lambda t: t["topics"]["travel"]["prompts"][0].update(content=[]),
         r"bank.json: topic 'travel' prompt 0: field 'content' must be a non-empty list"),
        (load_bank, "bank.json", lambda t: t["topics"]["home"]["prompts"].append(t["topics"]["home"]["prompts"][0]),
         r"bank.json: duplicate prompt ids \['home\."),
        (load_bank, "bank.json", lambda t: t["topics"]["science"].pop("quips"),
         r"bank.json: topic 'science': missing field 'quips'"),
        (load_styles, "styles.json", lambda t: t["poles"].pop("rude"), r"styles.json: 'poles': missing field 'rude'"),
        (load_styles, "styles.json", lambda t: t["poles"]["formal"]["words"].append(["(unclosed", "x"]),
         r"styles.json: pole 'formal': bad regex in 'words'"),
        (load_styles, "styles.json", lambda t: t["poles"]["hedge"]["long"].insert(1, 3),
         r"styles.json: pole 'hedge': field 'long' row 1 must be a non-empty string"),
        (load_styles, "styles.json", lambda t: t["contractions"].insert(2, ["cannot"]),
         r"styles.json: field 'contractions' row 2 must be a \[string, string\] pair"),
    ],
)
def test_malformed_table_raises_naming_the_place(tmp_path, loader, name, edit, message):
    with pytest.raises(ValueError, match=message):
        loader(_broken_copy(tmp_path, name, edit))


@pytest.mark.parametrize("loader, name", [(load_bank, "bank.json"), (load_styles, "styles.json")])
def test_missing_or_unparsable_table_raises_naming_the_file(tmp_path, loader, name):
    with pytest.raises(FileNotFoundError, match=f"data table {name} is missing"):
        loader(tmp_path)
    (tmp_path / name).write_text('{"topics": {"cooking": [}', encoding="utf-8")
    with pytest.raises(ValueError, match=f"{name}: malformed JSON at line 1, column 25"):
        loader(tmp_path)
    (tmp_path / name).write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{name}: expected a JSON object"):
        loader(tmp_path)


@pytest.mark.parametrize("j", range(len(ATTRIBUTES)), ids=ATTRIBUTE_NAMES)
def test_scorer_separates_poles(j):
    rng = np.random.default_rng(11)
    entries = [PROMPTS[int(i)] for i in rng.choice(len(PROMPTS), size=40, replace=False)]
    means = {}
    for pole in (-1, 1):
        texts = []
        for entry in entries:
            style = rng.choice([-1, 0, 1], size=len(ATTRIBUTES))
            style[j] = pole
            texts.append(realize(entry, style, rng))
        means[pole] = score_texts(texts)[:, j].mean()
    neutral = score_texts([realize(e, np.zeros(len(ATTRIBUTES)), rng) for e in entries])[:, j].mean()
    assert means[1] - means[-1] > 0.8
    assert means[-1] < neutral < means[1]
    assert abs(neutral) < 0.2


def test_neutral_realisation_is_the_plain_content():
    rng = np.random.default_rng(0)
    texts = [realize(e, np.zeros(len(ATTRIBUTES), dtype=int), rng) for e in PROMPTS]
    assert texts[0] == " ".join(PROMPTS[0].content)
    scores = score_texts(texts)
    assert np.all(np.abs(scores[:, 1:]) < 0.25)
    assert np.all(np.abs(scores[:, 0]) < 0.75) and abs(scores[:, 0].mean()) < 0.15


def test_scorers_read_any_text():
    texts = [
        "Thank you so much for asking, I hope this helps and good luck!",
        "Obviously this is basic. Figure it out yourself.",
        "Maybe it works, I think, but I'm not entirely sure.",
        "Definitely do this. It works every time, without a doubt.",
        "",
    ]
    scores = score_texts(texts)
    assert scores.shape == (len(texts), len(ATTRIBUTES))
    assert np.all(np.abs(scores) < 1.0)
    pol, conf = ATTRIBUTE_NAMES.index("politeness"), ATTRIBUTE_NAMES.index("confidence")
    assert scores[0, pol] > 0.3 > -0.3 > scores[1, pol]
    assert scores[3, conf] > 0.3 > -0.3 > scores[2, conf]
    assert np.allclose(score_text(texts[2]), scores[2])
    for name, scorer in SCORERS.items():
        assert scorer(texts[0]) == pytest.approx(scores[0, ATTRIBUTE_NAMES.index(name)])
    with pytest.raises(TypeError):
        score_texts("a single string")


def test_candidates_differ_in_style():
    cands = candidates_for_prompt(PROMPTS[5], 6, np.random.default_rng(2))
    styles = np.stack([s for _, s in cands])
    assert len(cands) == 6 and styles.shape == (6, len(ATTRIBUTES))
    assert len({tuple(s) for s in styles}) == 6
    assert set(np.unique(styles)) <= {-1, 0, 1}
    assert len({t for t, _ in cands}) == 6


def test_paper_users_are_the_84_pole_pairs():
    names, weights = paper_users()
    assert len(names) == len(set(names)) == 84
    assert weights.shape == (84, len(ATTRIBUTES))
    assert len({tuple(w) for w in weights}) == 84
    assert np.all(np.count_nonzero(weights, axis=1) == 2)
    assert set(np.unique(weights)) == {-1.0, 0.0, 1.0}
    assert names[0] == "paper:verbose+formal" and all(n.startswith("paper:") for n in names)


def test_mixture_users_are_seeded_mixtures():
    names, weights = mixture_users(10, np.random.default_rng(4))
    _, again = mixture_users(10, np.random.default_rng(4))
    assert names[3] == "mix:003" and weights.shape == (10, len(ATTRIBUTES))
    assert np.array_equal(weights, again)
    assert np.allclose(np.abs(weights).sum(axis=1), 2.0)
    assert np.any(weights < 0) and np.any(weights > 0)


def test_simulate_preferences_is_rowwise_bradley_terry():
    n = 4000
    a = np.zeros((n, len(ATTRIBUTES)))
    b = np.zeros((n, len(ATTRIBUTES)))
    a[:, 0], b[:, 0] = 1.0, -1.0
    weights = np.zeros((n, len(ATTRIBUTES)))
    weights[: n // 2, 0] = 1.0
    weights[n // 2 :, 0] = -1.0
    answers = simulate_preferences(weights, a, b, temperature=0.2, tie_margin=0.02, rng=np.random.default_rng(0))
    assert set(np.unique(answers)) <= {0.0, 0.5, 1.0}
    assert answers[: n // 2].mean() > 0.99 and answers[n // 2 :].mean() < 0.01
    soft = simulate_preferences(weights * 0.05, a, b, temperature=0.2, rng=np.random.default_rng(0))
    assert 0.55 < soft[: n // 2].mean() < 0.75
    ties = simulate_preferences(weights * 0.001, a, b, tie_margin=0.02, rng=np.random.default_rng(0))
    assert np.all(ties == 0.5)
    again = simulate_preferences(weights * 0.05, a, b, temperature=0.2, rng=np.random.default_rng(0))
    assert np.array_equal(soft, again)


def test_same_seed_same_world_and_new_seed_differs(small_world):
    again = build_world(WorldConfig(seed=3, **SMALL)).to_frame()
    pd.testing.assert_frame_equal(small_world.to_frame(), again)
    other = build_world(WorldConfig(seed=4, **SMALL)).to_frame()
    assert not other.equals(again)


def test_splits_and_answers(small_world):
    frame = small_world.to_frame()
    assert list(frame.columns) == FRAME_COLUMNS
    users = small_world.users_frame()
    new_ids = set(users.loc[users["is_new"], "user_id"])
    assert len(users) == 84 + 6 and len(new_ids) == round(0.25 * len(users))
    seen = frame[~frame["user_id"].isin(new_ids)]
    new = frame[frame["user_id"].isin(new_ids)]
    assert set(seen["split"]) == {"train"} and set(new["split"]) == {"pool", "test"}
    assert (seen.groupby("user_id").size() == SMALL["train_answers_per_user"]).all()
    for _, rows in new.groupby("user_id"):
        pool = _pair_keys(rows[rows["split"] == "pool"])
        test = _pair_keys(rows[rows["split"] == "test"])
        assert len(pool) == SMALL["pool_size"] and len(test) == SMALL["test_size"]
        assert not set(pool) & set(test)
    assert (frame["response_a"] != frame["response_b"]).all()
    assert set(frame["preference"]) <= {"a", "b", "tie"}
    assert 0.35 < (frame["preference"] == "a").mean() < 0.65
    assert oracle_accuracy(frame) > 0.75
    decided = frame[frame["preference"] != "tie"]
    winner = np.where(decided["preference"] == "a", decided["true_reward_a"], decided["true_reward_b"])
    loser = np.where(decided["preference"] == "a", decided["true_reward_b"], decided["true_reward_a"])
    assert (winner - loser).mean() > 0.3


def test_default_world_size_and_oracle_accuracy(default_world):
    frame = default_world.to_frame()
    n_new = round(0.25 * 120)
    assert len(default_world.users) == 120
    counts = frame["split"].value_counts().to_dict()
    assert counts == {"train": 300 * (120 - n_new), "pool": 120 * n_new, "test": 100 * n_new}
    assert 0.85 <= oracle_accuracy(frame) <= 0.95


def test_write_world_round_trip(tmp_path):
    cfg = WorldConfig(seed=1, **SMALL)
    path = write_world(tmp_path / "world.jsonl", cfg)
    assert path == tmp_path / "world.jsonl"
    frame = pd.read_json(path, lines=True)
    assert list(frame.columns) == FRAME_COLUMNS
    for col in ("user_id", "prompt", "response_a", "response_b", "preference", "split"):
        assert pd.api.types.is_string_dtype(frame[col]), col
    for col in ("true_reward_a", "true_reward_b"):
        assert frame[col].dtype == np.float64
    assert all(isinstance(v, list) and len(v) == len(ATTRIBUTES) for v in frame["true_features_a"])
    expected = build_world(cfg).to_frame()
    assert frame["preference"].tolist() == expected["preference"].tolist()
    assert np.allclose(frame["true_reward_a"], expected["true_reward_a"])

    sidecar = users_path(path)
    assert sidecar.name == "world.users.json" and sidecar.exists()
    meta = json.loads(sidecar.read_text())
    assert meta["attributes"] == ATTRIBUTE_NAMES
    users = load_users(path)
    direct = load_users(sidecar)
    assert users.keys() == direct.keys() and all(np.array_equal(users[k], direct[k]) for k in users)
    weights = {u.user_id: u.weights for u in build_world(cfg).users}
    assert all(np.allclose(users[k], weights[k]) for k in weights)
    assert set(users) == set(frame["user_id"]) | {u["user_id"] for u in meta["users"]}
    row = frame.iloc[7]
    judged = true_reward(users[row["user_id"]], [row["response_a"], row["response_b"]])
    assert judged == pytest.approx([row["true_reward_a"], row["true_reward_b"]])
    many = true_reward(np.stack(list(users.values())), [row["response_a"]])
    assert many.shape == (1, len(users))


def _split_prompts(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {name: set(rows["prompt"]) for name, rows in frame.groupby("split")}


def test_world_writes_unseen_prompt_splits_by_default(small_world):
    from preflm.data import AnswerMatrix, normalize_frame, split_answers

    frame = small_world.to_frame()
    prompts = _split_prompts(frame)
    assert not prompts["train"] & prompts["pool"] and not prompts["train"] & prompts["test"]
    assert not prompts["pool"] & prompts["test"]
    assert len(prompts["train"]) == 14 and len(prompts["pool"]) == len(prompts["test"]) == 3
    split = split_answers(AnswerMatrix.from_frame(normalize_frame(frame)))
    assert len(split.new_users) == round(0.25 * 90)


def _given_answers(entries) -> list[list[str]]:
    """Five distinct answers per prompt, written elsewhere than the world (as an LLM's would be)."""
    return [[f"{e.question} Short.", f"{e.content[0]} Furthermore, it is advisable to verify this.",
             f"{e.content[0]} Would you like to know more?", f"Wow! {e.content[0]} Amazing!",
             f"Maybe {e.content[0].lower()} I think it depends."] for e in entries]


def test_world_from_given_texts_judges_them_with_the_same_users():
    """Any answers (e.g. an LLM's) get the world's users, an unseen-prompt split and answers by true reward."""
    entries = PROMPTS[:20]
    texts = _given_answers(entries)
    cfg = WorldConfig(seed=3, **{**SMALL, "n_prompts": None})
    world = world_from_texts(entries, texts, cfg)
    frame = world.to_frame()
    assert set(frame["response_a"]) | set(frame["response_b"]) <= {t for row in texts for t in row}
    prompts = _split_prompts(frame)
    assert not prompts["train"] & prompts["pool"] and not prompts["pool"] & prompts["test"]
    assert not prompts["train"] & prompts["test"]
    assert world.styles.shape == (100, 0) and len(world.texts) == 100
    weights = {u.user_id: u.weights for u in world.users}
    template = build_world(WorldConfig(seed=3, **SMALL))
    assert [(u.user_id, u.is_new) for u in world.users] == [(u.user_id, u.is_new) for u in template.users]
    assert all(np.array_equal(weights[u.user_id], u.weights) for u in template.users)
    k = template.config.candidates_per_prompt
    own = [template.texts[i : i + k] for i in range(0, len(template.texts), k)]
    assert world_from_texts(template.prompts, own, template.config).to_frame().equals(template.to_frame())
    row = frame.iloc[5]
    assert true_reward(weights[row["user_id"]], [row["response_a"]])[0] == pytest.approx(row["true_reward_a"])
    decided = frame[frame["preference"] != "tie"]
    agree = (decided["true_reward_a"] > decided["true_reward_b"]) == (decided["preference"] == "a")
    assert agree.mean() > 0.8
    assert world_from_texts(entries, texts, cfg).to_frame().equals(frame)
    with pytest.raises(ValueError, match="same number"):
        world_from_texts(entries, [row[: 2 + i % 2] for i, row in enumerate(texts)], cfg)
    with pytest.raises(ValueError, match="one list of answers per prompt"):
        world_from_texts(entries, texts[:-1], cfg)
    with pytest.raises(ValueError, match="at least 2"):
        world_from_texts(entries, [row[:1] for row in texts], cfg)
    with pytest.raises(ValueError, match="blank or repeated answer"):
        world_from_texts(entries, [row[:-1] + [row[0] + " "] for row in texts], cfg)


def test_template_training_answers_supplement_an_llm_world_on_its_training_prompts_only(tmp_path):
    """Seen users also rate the world's template answers, on the LLM world's training prompts and nowhere else."""
    from preflm.data import AnswerMatrix, load_preferences, split_answers

    entries = PROMPTS[:20]
    texts = _given_answers(entries)
    cfg = WorldConfig(seed=5, **{**SMALL, "n_prompts": None})
    llm = world_from_texts(entries, texts, cfg)
    extra = template_training_answers(entries, cfg)
    seen = {u.user_id for u in llm.users if not u.is_new}
    assert set(extra["user_id"]) == seen and set(extra["split"]) == {"train"}
    assert (extra.groupby("user_id").size() == cfg.train_answers_per_user).all()
    llm_prompts = _split_prompts(llm.to_frame())
    assert set(extra["prompt"]) <= llm_prompts["train"]
    llm_texts = {t for row in texts for t in row}
    assert not (set(extra["response_a"]) | set(extra["response_b"])) & llm_texts
    assert extra.equals(template_training_answers(entries, cfg))

    path = llm.write(tmp_path / "mixed.jsonl", extra_answers=extra)
    frame = load_preferences(path)
    assert len(frame) == len(llm.to_frame()) + len(extra)
    split = split_answers(AnswerMatrix.from_frame(frame))
    assert split.train.n_answers == 2 * len(extra)
    assert load_users(path).keys() == {u.user_id for u in llm.users}
    with pytest.raises(ValueError, match="this world's users"):
        llm.write(tmp_path / "bad.jsonl", extra_answers=extra.assign(user_id="stranger"))
    with pytest.raises(ValueError, match="not both"):
        build_world(WorldConfig(seed=5, **SMALL), prompts=entries)


def test_world_seen_prompts_option_and_too_few_prompts():
    frame = build_world(WorldConfig(seed=3, protocol="seen-prompts", **SMALL)).to_frame()
    prompts = _split_prompts(frame)
    assert prompts["pool"] & prompts["train"] and prompts["test"] & prompts["train"]
    with pytest.raises(ValueError, match="new users' pool answers need 60 distinct pairs"):
        build_world(WorldConfig(seed=3, **{**SMALL, "pool_size": 60}))
    with pytest.raises(ValueError, match="protocol must be one of"):
        WorldConfig(protocol="by-pair")


def test_dsp_unseen_queries(tmp_path):
    """A tiny DSP-format file: queries never straddle train, pool and test; seen-prompts mixes them."""
    from preflm.simulate.dsp import SOURCES, dsp_frame

    rng = np.random.default_rng(0)
    items = [{"query": f"query {q}", "responses": {s: f"{s} answer {q} {rng.integers(1000)}" for s in SOURCES}}
             for q in range(40)]
    path = tmp_path / "dsp.json"
    path.write_text(json.dumps(items))
    small = dict(n_mixture_users=15, train_answers_per_user=60, pool_size=20, test_size=20)
    prompts = _split_prompts(dsp_frame(path, seed=1, **small))
    assert not prompts["train"] & prompts["pool"] and not prompts["train"] & prompts["test"]
    assert not prompts["pool"] & prompts["test"] and len(prompts["pool"]) == 6
    mixed = _split_prompts(dsp_frame(path, seed=1, protocol="seen-prompts", **small))
    assert mixed["pool"] & mixed["train"]
    with pytest.raises(ValueError, match="the pool queries have only 60"):
        dsp_frame(path, seed=1, **{**small, "pool_size": 100})
    base = dsp_frame(path, seed=1, **small)
    more = dsp_frame(path, seed=1, extra_new_users=7, **small)
    assert more.iloc[: len(base)].equals(base)
    added = more.iloc[len(base):]
    assert added["user_id"].nunique() == 7 and not set(added["user_id"]) & set(base["user_id"])
    assert set(added["split"]) == {"pool", "test"} and len(added) == 7 * 40
    assert set(added.loc[added["split"] == "pool", "prompt"]) <= prompts["pool"]
    with pytest.raises(ValueError, match="extra_new_users"):
        dsp_frame(path, seed=1, extra_new_users=-1, **small)
