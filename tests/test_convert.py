import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from preflm.cli import app
from preflm.data import DataError, load_preferences
from preflm.data.convert import (
    ConversionSummary,
    ConvertConfig,
    SplitConfig,
    assign_unseen_prompt_split,
    check_unseen_prompt_split,
    clean_text,
    convert,
    convert_personalllm,
    convert_prism,
    convert_tldr,
    looks_like_list_literal,
    write_answers,
)
from preflm.data.convert.arena import arena_answers
from preflm.data.convert.common import finalize, read_source
from preflm.data.convert.multipref import multipref_answers
from preflm.data.convert.prism import prism_answers
from preflm.data.convert.tldr import tldr_answers

FIXTURES = Path(__file__).parent / "fixtures" / "convert"
SMALL = ConvertConfig(min_answers=3, split=SplitConfig(new_user_fraction=0.34, heldout_fraction=0.5, seed=0))
PERSONAL = {"users": 12, "answers_per_user": 30, "new_user_answers": 30}
runner = CliRunner()


def candidates(parse, name, **options):
    summary = ConversionSummary(name, str(FIXTURES / name))
    return parse(read_source(FIXTURES / name), summary, **options), summary


def texts_of(frame):
    return pd.concat([frame["prompt"], frame["response_a"], frame["response_b"]], ignore_index=True)


def test_clean_text_unwraps_single_texts_and_refuses_the_rest():
    assert clean_text("  plain answer \n") == ("plain answer", None)
    assert clean_text(["one text"]) == ("one text", None)
    assert clean_text("['one text']") == ("one text", None)
    assert clean_text('["one text"]') == ("one text", None)
    assert clean_text(["['nested']"]) == ("nested", None)
    assert clean_text("['It's glued by hand']") == ("It's glued by hand", None)
    assert clean_text({"content": "from a message"}) == ("from a message", None)
    for value in (["a", "b"], "['a', 'b']", "['It's', 'two']", None, float("nan"), "", "  ", [], 3, True):
        text, reason = clean_text(value)
        assert text is None and reason
    for prose in ("[1] see the footnote", "[1, 2, 3]", "['a'] and ['b'] are lists", "He said 'yes'."):
        assert clean_text(prose) == (prose, None)
        assert not looks_like_list_literal(prose)
    assert looks_like_list_literal("['a', 'b']") and looks_like_list_literal('["x"]')


def synthetic_answers(n_users=12, n_prompts=40, per_user=25, own_prompts=3, seed=0):
    """Users answering shared prompts, each also with prompts of their own (as in PRISM)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        shared = rng.choice(n_prompts, per_user, replace=False)
        names = [f"shared {p}" for p in shared] + [f"own {u}-{k}" for k in range(own_prompts)]
        for prompt in names:
            rows.append({"user_id": f"u{u}", "prompt": prompt, "response_a": "x", "response_b": "y",
                         "preference": "a", "group": prompt})
    return pd.DataFrame(rows)


def test_unseen_prompt_split_keeps_prompts_disjoint_and_counts_drops():
    frame = synthetic_answers()
    config = SplitConfig(new_user_fraction=0.25, heldout_fraction=0.3, test_fraction=0.4, seed=3)
    out, drops = assign_unseen_prompt_split(frame, config, group_column="group")
    check_unseen_prompt_split(out)
    assert len(out) + sum(drops.values()) == len(frame)
    assert drops["answers of seen users on held-out prompts"] > 0 and drops["answers of new users on training prompts"] > 0
    new_users = set(out.loc[out["split"] != "train", "user_id"])
    assert len(new_users) == 3
    # a user's own prompts are never lost, and every new user gets pool and test from them
    own = out[out["prompt"].str.startswith("own")]
    assert len(own) == (frame["prompt"].str.startswith("own")).sum()
    for user in new_users:
        splits = set(own.loc[own["user_id"] == user, "split"])
        assert splits == {"pool", "test"}
    again, _ = assign_unseen_prompt_split(frame, config, group_column="group")
    pd.testing.assert_frame_equal(out, again)
    drawn = set()
    for seed in range(4):
        other, _ = assign_unseen_prompt_split(frame, SplitConfig(0.25, 0.3, 0.4, seed=seed), group_column="group")
        drawn.add(frozenset(other.loc[other["split"] != "train", "user_id"]))
    assert len(drawn) > 1


def test_split_groups_link_prompts_and_fixed_sides_are_honoured():
    frame = synthetic_answers(n_users=6, own_prompts=0)
    frame["group"] = "conversation " + (frame.index // 3).astype(str)  # three prompts per group
    out, _ = assign_unseen_prompt_split(frame, SplitConfig(seed=1), group_column="group")
    check_unseen_prompt_split(out)
    assert out.groupby("group")["split"].nunique().max() == 1  # a group's prompts share one side
    ungrouped, _ = assign_unseen_prompt_split(frame, SplitConfig(seed=1))
    assert ungrouped.groupby("group")["split"].nunique().max() > 1
    frame["heldout"] = frame["prompt"].str.endswith(("1", "2"))
    fixed, drops = assign_unseen_prompt_split(frame, SplitConfig(seed=1), new_users={"u0", "u1"}, heldout_column="heldout")
    assert set(fixed.loc[fixed["split"] != "train", "user_id"]) <= {"u0", "u1"}
    assert fixed.loc[fixed["split"] == "train", "prompt"].isin(frame.loc[~frame["heldout"], "prompt"]).all()
    assert fixed.loc[fixed["split"] != "train", "prompt"].isin(frame.loc[frame["heldout"], "prompt"]).all()


def test_split_check_names_the_violation():
    base = {"response_a": "x", "response_b": "y", "preference": "a"}
    rows = [dict(base, user_id="u1", prompt="p1", split="train"), dict(base, user_id="u2", prompt="p1", split="pool")]
    with pytest.raises(ValueError, match="'p1' is in both train and pool"):
        check_unseen_prompt_split(pd.DataFrame(rows))
    rows[1].update(user_id="u1", prompt="p2")
    with pytest.raises(ValueError, match="user 'u1' has both"):
        check_unseen_prompt_split(pd.DataFrame(rows))
    rows = [dict(base, user_id="u2", prompt="p3", split="pool"), dict(base, user_id="u3", prompt="p3", split="test")]
    with pytest.raises(ValueError, match="both pool and test"):
        check_unseen_prompt_split(pd.DataFrame(rows))


def test_repeated_answers_keep_the_first_and_are_counted():
    frame = synthetic_answers(n_users=4, own_prompts=2)
    repeats = frame.iloc[:3].copy()
    repeats.loc[repeats.index[0], ["response_a", "response_b", "preference"]] = ["y", "x", "b"]  # same answer, flipped
    repeats.loc[repeats.index[1], "preference"] = "b"  # contradicts the first
    summary = ConversionSummary("test", "synthetic")
    out = finalize(pd.concat([frame, repeats]), summary, ConvertConfig(min_answers=1, split=SplitConfig(seed=0)))
    assert summary.dropped["repeated answers of a user to the same prompt and pair (first kept)"] == 2
    assert summary.dropped["repeated answers contradicting the user's first answer (first kept)"] == 1
    assert summary.answers_written == len(out) and sum(summary.splits.values()) == len(out)


def test_prism_pairs_by_score_with_ties_and_counted_drops():
    answers, summary = candidates(prism_answers, "prism")
    recipe = answers[answers["prompt"] == "Give me a simple recipe for dinner tonight."]
    assert len(recipe) == 6  # four responses, every pair
    tie = recipe[recipe["response_a"].str.startswith("Pasta") & recipe["response_b"].str.startswith("Try a vegetable")]
    assert tie["preference"].tolist() == ["tie"]  # both scored 64
    best = recipe[recipe["response_b"].str.startswith("Sheet pan")]
    assert set(best["preference"]) == {"b"}  # 92 beats everything
    assert summary.dropped["model responses without a score"] == 1
    assert summary.dropped["turns with fewer than two scored responses"] == 1  # the one-response turn
    assert summary.dropped["model responses without usable text (several texts in one field)"] == 1
    sleep = answers[answers["prompt"] == "How can I sleep better?"]  # the prompt was a one-element list
    assert len(sleep) == 6
    assert "Keep a regular schedule, avoid screens an hour before bed, and keep your bedroom cool and dark." in set(sleep["response_a"])
    assert "Try a warm shower, a short walk in the evening, and less coffee after lunch." in set(sleep["response_a"])
    follow = answers[answers["prompt"].str.contains("What if I wake up at 3am?")]
    assert follow["prompt"].iloc[0] == (
        "user: How can I sleep better?\nassistant: Keep a regular schedule, avoid screens an hour before bed, "
        "and keep your bedroom cool and dark.\nuser: What if I wake up at 3am?"
    )
    assert not texts_of(answers).map(looks_like_list_literal).any()
    plain, _ = candidates(prism_answers, "prism", history=False, turns="first")
    assert len(plain) < len(answers) and not plain["prompt"].str.contains("assistant:").any()


def test_prism_utterances_and_conversations_give_the_same_answers():
    def converted(path):
        frame, summary = convert_prism(path, SMALL)
        return frame.sort_values(list(frame.columns)).reset_index(drop=True), summary

    conversations, from_conversations = converted(FIXTURES / "prism")
    utterances, from_utterances = converted(FIXTURES / "prism" / "utterances.jsonl")
    pd.testing.assert_frame_equal(conversations, utterances)
    assert from_conversations.dropped == from_utterances.dropped
    assert from_conversations.rows_read == 12 and from_utterances.rows_read == 71


def test_tldr_reads_the_download_root_and_skips_the_axis_evals(tmp_path):
    root = tmp_path / "summarize-from-feedback"
    shutil.copytree(FIXTURES / "tldr" / "comparisons", root / "comparisons")
    (root / "axis_evals").mkdir()
    (root / "axis_evals" / "cnndm1.json").write_text(json.dumps(
        {"info": {"id": "a1", "site": "dailymail", "title": "T", "article": "A"}, "split": "test",
         "summary": {"text": "S", "policy": "ref", "note": None, "axes": {"overall": 3}}, "worker": "w", "batch": "cnndm1"}) + "\n")
    from_root, _ = convert_tldr(root, SMALL)
    from_folder, _ = convert_tldr(FIXTURES / "tldr" / "comparisons", SMALL)
    pd.testing.assert_frame_equal(from_root, from_folder)


def test_tldr_comparisons_and_the_pal_worker_split():
    answers, summary = candidates(tldr_answers, "tldr")
    first = answers.iloc[0]
    assert first["prompt"].startswith("SUBREDDIT: r/relationships\nTITLE: My (24F) boyfriend")
    assert "\nPOST: We have been together two years." in first["prompt"]
    assert first["response_a"] == "Boyfriend keeps forgetting our plans and I feel unimportant; how do I talk to him without a fight?"
    raw = [json.loads(line) for path in sorted((FIXTURES / "tldr" / "comparisons").glob("*.json"))
           for line in path.read_text().splitlines()]
    plain = [r for r in raw if r["worker"] and r["choice"] in (0, 1) and len(r["summaries"]) == 2
             and all(isinstance(s["text"], str) and not s["text"].startswith("[") for s in r["summaries"])]
    keyed = answers.set_index(["user_id", "response_a", "response_b"])["preference"]
    for r in plain:
        key = (r["worker"], r["summaries"][0]["text"].strip(), r["summaries"][1]["text"].strip())
        assert set(np.atleast_1d(keyed.loc[key])) == {"ab"[r["choice"]]}
    for reason in ("comparisons without exactly two summaries", "comparisons without a valid choice (0 or 1)",
                   "comparisons without a worker id", "comparisons with an unusable summary text (several texts in one field)"):
        assert summary.dropped[reason] == 1
    assert not texts_of(answers).map(looks_like_list_literal).any()
    assert not texts_of(answers).str.startswith(" ").any()

    frame, pal = convert_tldr(FIXTURES / "tldr", ConvertConfig(min_answers=2), workers="pal",
                              pal_seen_workers=3, pal_min_unseen_answers=3)
    check_unseen_prompt_split(frame)
    supervised = answers[answers["supervised"]]
    top = supervised[~supervised["heldout"]]["user_id"].value_counts()
    seen = set(frame.loc[frame["split"] == "train", "user_id"])
    assert seen <= set(top.index[:3])
    valid_prompts = set(supervised.loc[supervised["heldout"], "prompt"])
    assert set(frame.loc[frame["split"] != "train", "prompt"]) <= valid_prompts
    assert not set(frame.loc[frame["split"] == "train", "prompt"]) & valid_prompts
    assert pal.dropped["PAL: comparisons not between two supervised-policy summaries"] > 0
    assert any("PAL worker split" in note for note in pal.notes)


def test_multipref_evaluators_are_users():
    answers, summary = candidates(multipref_answers, "multipref")
    raw = [json.loads(line) for line in (FIXTURES / "multipref" / "multipref.jsonl").read_text().splitlines()]
    expected = {"A-is-clearly-better": "a", "A-is-slightly-better": "a", "Tie": "tie",
                "B-is-slightly-better": "b", "B-is-clearly-better": "b"}
    first = raw[0]
    for annotation in first["normal_worker_annotations"] + first["expert_worker_annotations"]:
        got = answers[(answers["user_id"] == annotation["evaluator"]) & (answers["prompt"] == first["text"])]
        assert got["preference"].tolist() == [expected[annotation["overall_pref"]]]
    assert raw[2]["text"].startswith("['") and (answers["prompt"] == "Write a limerick about a forgetful cat.").sum() == 4
    assert summary.dropped["annotations without a valid overall_pref"] == 1
    assert summary.dropped["annotations without an evaluator id"] == 1
    assert summary.dropped["comparisons with an unusable completion_a (several texts in one field)"] == 1
    experts, _ = candidates(multipref_answers, "multipref", annotators="expert", aspect="truthful")
    assert set(experts["user_id"]) == {"ev_x1", "ev_x2"} and set(experts["preference"]) == {"tie"}


def test_arena_judges_winners_and_multi_turn():
    answers, summary = candidates(arena_answers, "arena")
    raw = [json.loads(line) for line in (FIXTURES / "arena" / "arena.jsonl").read_text().splitlines()]
    assert raw[0]["winner"] == "tie (bothbad)"
    first = answers[(answers["user_id"] == raw[0]["judge"]) & (answers["prompt"] == raw[0]["conversation_a"][0]["content"])]
    assert first["preference"].tolist() == ["tie"]
    assert summary.dropped["battles without a valid winner"] == 1
    assert summary.dropped["multi-turn battles (multi_turn=true keeps them)"] == 1
    assert len(answers) == len(raw) - 2  # the JSON-string conversation and the list-valued reply are kept
    assert not texts_of(answers).map(looks_like_list_literal).any()
    turns, _ = candidates(arena_answers, "arena", multi_turn=True, language="English")
    multi = turns[turns["response_a"].str.contains("\nuser: And in Italian?")]
    assert len(multi) == 1 and multi["response_a"].iloc[0].endswith("assistant: Buongiorno.")
    assert len(turns) == len(answers)  # one multi-turn battle kept, the Spanish one left out


def test_personalllm_simulated_users_and_true_rewards():
    frame, summary = convert_personalllm(FIXTURES / "personalllm", SMALL, **PERSONAL)
    check_unseen_prompt_split(frame)
    assert frame["user_id"].nunique() == 12
    gap = frame["true_reward_a"] - frame["true_reward_b"]
    assert ((gap > 0) == (frame["preference"] == "a")).all()
    features = np.array(frame["true_features_a"].tolist())
    assert features.shape[1] == 10  # one standardized score per reward model
    counts = frame.groupby("user_id").size()
    assert counts.max() == 30
    assert summary.dropped["responses with a missing reward-model score"] == 1
    assert summary.dropped["responses repeating an earlier response to the same prompt"] == 1
    again, _ = convert_personalllm(FIXTURES / "personalllm", SMALL, **PERSONAL)
    pd.testing.assert_frame_equal(frame, again)
    noisy, _ = convert_personalllm(FIXTURES / "personalllm", SMALL, temperature=0.5, **PERSONAL)
    noisy_gap = noisy["true_reward_a"] - noisy["true_reward_b"]
    assert ((noisy_gap > 0) != (noisy["preference"] == "a")).any()


def test_personalllm_reads_parquet_as_downloaded(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "personalllm" / "personalllm.jsonl").read_text().splitlines()]
    folder = tmp_path / "PersonalLLM" / "data"
    folder.mkdir(parents=True)
    table = pd.DataFrame(rows)
    for column in table.columns:  # parquet needs one type per column: keep the list-valued texts as strings
        if table[column].map(lambda v: isinstance(v, list)).any():
            table[column] = table[column].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
    table.to_parquet(folder / "train-00000-of-00001.parquet")
    hidden = tmp_path / "PersonalLLM" / ".cache" / "huggingface"
    hidden.mkdir(parents=True)
    (hidden / "download.json").write_text('{"etag": "abc"}\n')  # what a hub download leaves beside the data
    (tmp_path / "PersonalLLM" / "dataset_infos.json").write_text('{"default": {}}\n')
    (tmp_path / "PersonalLLM" / "README.md").write_text("# PersonalLLM\n")
    from_parquet, _ = convert_personalllm(tmp_path / "PersonalLLM", SMALL, **PERSONAL)
    from_json, _ = convert_personalllm(FIXTURES / "personalllm", SMALL, **PERSONAL)
    pd.testing.assert_frame_equal(from_parquet, from_json)


@pytest.mark.parametrize("name", ["prism", "tldr", "multipref", "arena", "personalllm"])
def test_every_converter_writes_a_dataset_that_trains_and_evaluates(name, tmp_path):
    options = PERSONAL if name == "personalllm" else {}
    frame, summary = convert(name, FIXTURES / name, SMALL, **options)
    check_unseen_prompt_split(frame)
    assert summary.answers_written == len(frame) > 0 and summary.seen_users > 0 and summary.new_users > 0
    assert summary.answers_built == summary.answers_written + sum(
        count for reason, count in summary.dropped.items() if reason.startswith(("answers", "repeated"))
    )
    texts = texts_of(frame)
    assert not texts.map(looks_like_list_literal).any()
    assert not texts.str.match(r"^\s|.*\s$|^\[['\"]").any()
    path = write_answers(frame, tmp_path / f"{name}.jsonl")
    loaded = load_preferences(path)
    assert len(loaded) == len(frame) and set(loaded["split"]) == {"train", "pool", "test"}

    model = tmp_path / "model"
    result = runner.invoke(app, ["train", str(path), "--output-dir", str(model), "--featurizer", "stats",
                                 "--n-factors", "2", "--max-steps", "20"])
    assert result.exit_code == 0, result.output
    assert (model / "model.safetensors").is_file()
    result = runner.invoke(app, ["evaluate", str(path), "--output", str(tmp_path / "eval.json"), "--featurizer", "stats",
                                 "--n-factors", "2", "--budgets", "1,2", "--seeds", "1", "--no-ablations",
                                 "--selectors", "random"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["split_from_file"] and results["n_new_users"] == summary.new_users
    assert ("oracle" in results) == (name == "personalllm")


def test_convert_command_prints_the_summary_and_writes_the_file(tmp_path):
    out = tmp_path / "arena.csv"
    result = runner.invoke(app, ["convert", "chatbot-arena", str(FIXTURES / "arena"), "--output", str(out),
                                 "--min-answers", "3", "--new-user-fraction", "0.34", "--heldout-fraction", "0.5",
                                 "-o", "multi_turn=true", "-o", "language=English"])
    assert result.exit_code == 0, result.output
    for line in ("answers written", "split pool", "dropped: battles not in English", "battles without a valid winner"):
        assert line in result.output
    assert len(load_preferences(out)) > 0

    for args, message in [
        (["convert", "prism", str(FIXTURES / "prism"), "--output", str(tmp_path / "x.jsonl"), "-o", "colour=red"],
         "unknown option(s) ['colour']"),
        (["convert", "prism", str(FIXTURES / "prism"), "--output", str(tmp_path / "x.jsonl"), "-o", "history"],
         "KEY=VALUE"),
        (["convert", "prism", str(FIXTURES / "prism"), "--output", str(tmp_path / "x.jsonl"), "-o", "history=maybe"],
         "option history takes true or false"),
        (["convert", "prism", str(FIXTURES / "prism"), "--output", str(tmp_path / "x.jsonl"), "-o", "turns=last"],
         "turns must be 'all' or 'first'"),
        (["convert", "reddit", str(FIXTURES / "tldr"), "--output", str(tmp_path / "x.jsonl")], "unknown dataset 'reddit'"),
        (["convert", "arena", str(FIXTURES / "prism"), "--output", str(tmp_path / "x.jsonl")], "missing field(s) ['judge'"),
        (["convert", "tldr", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x.jsonl")], "not found"),
        (["convert", "prism", str(FIXTURES / "prism"), "--output", str(tmp_path / "x.jsonl"), "--min-answers", "500"],
         "the split needs two or more"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_bad_json_line_names_file_and_line(tmp_path):
    bad = tmp_path / "arena.jsonl"
    lines = (FIXTURES / "arena" / "arena.jsonl").read_text().splitlines()[:3]
    bad.write_text("\n".join(lines[:2] + ["{not json"]) + "\n")
    with pytest.raises(DataError, match=r"arena.jsonl, row 2: not valid JSON"):
        convert("arena", bad, SMALL)


def test_saved_hugging_face_dataset_folder_reads_like_the_download(tmp_path):
    """The ``datasets`` path (as ``hf:<id>`` uses, offline here): a saved DatasetDict with nested annotations."""
    import datasets

    rows = [json.loads(line) for line in (FIXTURES / "multipref" / "multipref.jsonl").read_text().splitlines()]
    for row in rows:  # Arrow needs one type per column: the fixture's list-valued texts become their string form
        for field in ("text", "completion_a", "completion_b"):
            if isinstance(row[field], list):
                row[field] = json.dumps(row[field])
    half = len(rows) // 2
    saved = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:half]),
                                  "test": datasets.Dataset.from_list(rows[half:])})
    saved.save_to_disk(str(tmp_path / "multipref"))
    from_disk, disk_summary = convert("multipref", tmp_path / "multipref", SMALL)
    from_json, json_summary = convert("multipref", FIXTURES / "multipref", SMALL)
    pd.testing.assert_frame_equal(from_disk, from_json)
    assert disk_summary.dropped == json_summary.dropped
