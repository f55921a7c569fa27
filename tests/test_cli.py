import json

import numpy as np
from typer.testing import CliRunner

from preflm.cli import app

runner = CliRunner()


def make_dataset(path, seed=0):
    """Two kinds of users (brief vs wordy) answering pairs of short and long responses."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(12):
        likes_short = u % 2 == 0
        for i in range(30):
            short = f"Short answer {i}."
            long = f"A long answer number {i} that explains everything, with detail, context and examples."
            a, b = (short, long) if rng.random() < 0.5 else (long, short)
            rows.append({"user_id": f"user{u}", "prompt": f"question {i % 10}", "response_a": a, "response_b": b,
                         "preference": "a" if (a == short) == likes_short else "b",
                         "split": "train"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def test_help_explains_each_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "onboard", "rank"):
        assert command in result.output


def test_train_onboard_rank_end_to_end(tmp_path):
    data = tmp_path / "answers.jsonl"
    rows = make_dataset(data)
    model_dir = tmp_path / "model"
    result = runner.invoke(app, ["train", str(data), "--out", str(model_dir), "--featurizer", "stats",
                                 "--factors", "2"])
    assert result.exit_code == 0, result.output
    assert (model_dir / "model.safetensors").is_file()

    questions = tmp_path / "questions.jsonl"
    # short response always first, so a user who likes short answers always says "a"
    questions.write_text("\n".join(json.dumps({"prompt": r["prompt"],
                                               "response_a": min(r["response_a"], r["response_b"], key=len),
                                               "response_b": max(r["response_a"], r["response_b"], key=len)})
                                   for r in rows[:20]) + "\n")
    answers = "maybe\n" + "a\n" * 4
    profile = tmp_path / "me.json"
    result = runner.invoke(app, ["onboard", str(model_dir), "--questions", str(questions), "--budget", "4",
                                 "--out", str(profile), "--user-id", "me"], input=answers)
    assert result.exit_code == 0, result.output
    assert "question 1 of 4" in result.output and "confidence" in result.output
    assert "please answer a, b, tie or q" in result.output
    saved = json.loads(profile.read_text())
    assert saved["user_id"] == "me" and len(saved["answers"]) == 4

    result = runner.invoke(app, ["rank", str(model_dir), "--user", str(profile), "--prompt", "question 1",
                                 "Short answer 99.",
                                 "A long answer number 99 that explains everything, with detail and context."])
    assert result.exit_code == 0, result.output
    assert "best for me: Short answer 99." in result.output


def test_onboard_from_answer_file_and_bad_input(tmp_path):
    data = tmp_path / "answers.jsonl"
    rows = make_dataset(data)
    model_dir = tmp_path / "model"
    assert runner.invoke(app, ["train", str(data), "--out", str(model_dir), "--featurizer", "stats",
                               "--factors", "2"]).exit_code == 0
    mine = tmp_path / "mine.jsonl"
    mine.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k not in ("user_id", "split")})
                              for r in rows[:8]) + "\n")
    result = runner.invoke(app, ["onboard", str(model_dir), "--answers", str(mine), "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "p.json").read_text())["answers"]) == 8

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"user_id": "u", "prompt": "p", "response_a": "x", "response_b": "y",
                               "preference": "left"}) + "\n")
    result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "m2"), "--featurizer", "stats"])
    assert result.exit_code == 2
    assert "row 0" in result.output and "preference" in result.output
    assert not (tmp_path / "m2").exists()


def test_clear_errors_instead_of_tracebacks(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    for args, message in [
        (["train", str(data), "--featurizer", "bogus"], "unknown featurizer"),
        (["train", str(data), "--head", "transformer"], "head must be"),
        (["evaluate", str(data), "--budgets", "1..40"], "cannot read '1..40'"),
        (["evaluate", str(data), "--strategies", "activ"], "unknown selector"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_onboard_answers_file_with_several_users(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    model_dir = tmp_path / "model"
    assert runner.invoke(app, ["train", str(data), "--out", str(model_dir), "--featurizer", "stats",
                               "--factors", "2"]).exit_code == 0
    result = runner.invoke(app, ["onboard", str(model_dir), "--answers", str(data), "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 2 and "pick one with --user-id" in result.output
    result = runner.invoke(app, ["onboard", str(model_dir), "--answers", str(data), "--user-id", "user3",
                                 "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "p.json").read_text())["answers"]) == 30
