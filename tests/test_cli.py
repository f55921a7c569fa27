import json
import re
import subprocess
import sys

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from preflm import __version__
from preflm.cli import _hoist_global_options, app

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


def train_small(tmp_path, data, *extra):
    model_dir = tmp_path / "model"
    result = runner.invoke(app, ["train", str(data), "--output-dir", str(model_dir), "--featurizer", "stats",
                                 "--n-factors", "2", *extra])
    assert result.exit_code == 0, result.output
    return model_dir


def write_questions(path, rows):
    """Short response always first, so a user who likes short answers always says 'a'."""
    path.write_text("\n".join(json.dumps({"prompt": r["prompt"],
                                          "response_a": min(r["response_a"], r["response_b"], key=len),
                                          "response_b": max(r["response_a"], r["response_b"], key=len)})
                              for r in rows) + "\n")


def all_commands():
    root = typer.main.get_command(app)
    stack = [(name, command) for name, command in root.commands.items()]
    while stack:
        name, command = stack.pop()
        if hasattr(command, "commands"):
            stack.extend((f"{name} {sub}", c) for sub, c in command.commands.items())
        else:
            yield name, command


def test_help_lists_each_command_and_renders_cleanly():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "onboard", "rank", "generate", "evaluate", "world", "dsp", "demo"):
        assert command in result.output
    for name, _ in all_commands():
        text = runner.invoke(app, [*name.split(), "--help"]).output
        assert "``" not in text and ":func:" not in text, name


def test_every_option_has_help_and_one_naming_scheme():
    """One word per concept across commands (TRL / Hugging Face style), kebab-case, every option explained."""
    banned = {"--model": "--reward-model or --model-name-or-path", "--lm": "--model-name-or-path",
              "--generator": "--model-name-or-path", "--out": "--output / --output-dir", "--user": "--user-id / --profile",
              "--strategies": "--selectors", "--strategy": "--selector", "--factors": "--n-factors",
              "--workdir": "--output-dir", "--report": "--report-dir", "--n": "-n / --num-candidates"}
    seen = {}
    for name, command in all_commands():
        for param in command.params:
            if param.param_type_name == "argument":
                assert param.help and param.help.strip(), f"{name} {param.name}: no help"
                assert "model" not in param.name, f"{name}: give the model as an option, not positionally"
                continue
            assert param.help and param.help.strip(), f"{name} {param.opts}: no help"
            for opt in param.opts + param.secondary_opts:
                assert opt not in banned, f"{name} {opt}: use {banned[opt]}"
                assert re.fullmatch(r"-[a-z]|--[a-z0-9]+(-[a-z0-9]+)*", opt), f"{name} {opt}: not kebab-case"
                assert "strateg" not in opt, f"{name} {opt}: question selection is called selector"
                seen.setdefault(opt, set()).add(name)
    assert {"onboard", "rank", "generate"} <= seen["--reward-model"]
    assert {"train", "generate"} <= seen["--model-name-or-path"]
    assert {"onboard", "rank", "generate"} <= seen["--user-id"] & seen["--profile"]
    assert {"rank", "onboard", "generate", "evaluate"} <= seen["--json"]


def test_version_and_python_dash_m():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"preflm {__version__}"
    done = subprocess.run([sys.executable, "-m", "preflm", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"preflm {__version__}"


def test_global_options_are_moved_before_the_command():
    flags, valued = ("--quiet", "-q"), ("--threads",)
    assert _hoist_global_options(["rank", "x", "--threads", "1", "-q"], flags, valued) == ["--threads", "1", "-q", "rank", "x"]
    assert _hoist_global_options(["--threads", "2", "rank", "--threads=1"], flags, valued) == ["--threads=1", "--threads", "2", "rank"]
    assert _hoist_global_options(["rank", "--", "--quiet"], flags, valued) == ["rank", "--", "--quiet"]


def test_train_onboard_rank_end_to_end(tmp_path):
    data = tmp_path / "answers.jsonl"
    rows = make_dataset(data)
    model_dir = train_small(tmp_path, data, "--threads", "1")
    assert (model_dir / "model.safetensors").is_file()

    questions = tmp_path / "questions.jsonl"
    write_questions(questions, rows[:20])
    profiles = tmp_path / "profiles"
    base = ["onboard", "--reward-model", str(model_dir), "--questions", str(questions), "--budget", "4",
            "--user-id", "me", "--profiles-dir", str(profiles)]
    result = runner.invoke(app, base, input="maybe\n" + "a\n" * 4)
    assert result.exit_code == 0, result.output
    assert "question 1 of 4" in result.output and "please answer a, b, tie or q" in result.output
    progress = re.findall(r"(\d)/4 answered .* remaining uncertainty (\d+)%", result.output)
    assert [int(n) for n, _ in progress] == [1, 2, 3, 4]
    shares = [int(p) for _, p in progress]
    assert all(0 < s <= 100 for s in shares) and shares == sorted(shares, reverse=True) and shares[-1] < shares[0]
    profile = profiles / "me.json"
    saved = json.loads(profile.read_text())
    assert saved["user_id"] == "me" and len(saved["answers"]) == 4

    again = runner.invoke(app, base, input="a\n" * 4)
    assert again.exit_code == 2 and "--resume" in again.output and "--overwrite" in again.output
    assert len(json.loads(profile.read_text())["answers"]) == 4
    resumed = runner.invoke(app, [*base, "--resume", "--budget", "2", "--json"], input="a\n" * 2)
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout[resumed.stdout.index("{"):])  # the test runner echoes typed input
    saved = json.loads(profile.read_text())
    assert summary["answers"] == len(saved["answers"]) == 6 and summary["profile"] == str(profile)
    asked = [(a["prompt"], a["response_a"]) for a in saved["answers"]]
    assert len(set(asked)) == 6, "a resumed session asks new questions only"
    other = runner.invoke(app, [*base[:-4], "--user-id", "you", "--profiles-dir", str(profiles)], input="b\n" * 4)
    assert other.exit_code == 0 and (profiles / "you.json").is_file() and profile.is_file()

    short, wordy = "Short answer 99.", "A long answer number 99 that explains everything, with detail and context."
    ask = ["rank", "--reward-model", str(model_dir), "--user-id", "me", "--profiles-dir", str(profiles),
           "--prompt", "question 1", short, wordy]
    result = runner.invoke(app, [*ask, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"best for me: {short}"
    table = [line.split("\t") for line in result.output.splitlines()[:-1]]
    as_json = runner.invoke(app, [*ask, "--json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert table[0] == ["rank", "reward", "candidate"] and document["best"] == short
    assert [[str(r["rank"]), f"{r['reward']:+.3f}", r["candidate"]] for r in document["ranking"]] == table[1:]
    you = json.loads(runner.invoke(app, [*ask[:3], "--user-id", "you", *ask[5:], "--json"]).stdout)
    assert you["best"] == wordy


def test_onboard_from_answer_file_and_bad_input(tmp_path):
    data = tmp_path / "answers.jsonl"
    rows = make_dataset(data)
    model_dir = train_small(tmp_path, data)
    mine = tmp_path / "mine.jsonl"
    mine.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k not in ("user_id", "split")})
                              for r in rows[:8]) + "\n")
    result = runner.invoke(app, ["onboard", "--reward-model", str(model_dir), "--answers", str(mine)])
    assert result.exit_code == 2 and "give --user-id" in result.output
    result = runner.invoke(app, ["onboard", "--reward-model", str(model_dir), "--answers", str(mine),
                                 "--profile", str(tmp_path / "p.json"), "--user-id", "me"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "p.json").read_text())["answers"]) == 8

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"user_id": "u", "prompt": "p", "response_a": "x", "response_b": "y",
                               "preference": "left"}) + "\n")
    result = runner.invoke(app, ["train", str(bad), "--output-dir", str(tmp_path / "m2"), "--featurizer", "stats"])
    assert result.exit_code == 2
    assert "row 0" in result.output and "preference" in result.output
    assert not (tmp_path / "m2").exists()


def test_clear_errors_instead_of_tracebacks(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    (tmp_path / "settings.json").write_text(json.dumps({"n_factors": 2, "heads": "mlp"}))
    for args, message in [
        (["train", str(data), "--featurizer", "bogus"], "unknown featurizer"),
        (["train", str(data), "--head", "transformer"], "head must be"),
        (["train", str(data), "--config", str(tmp_path / "settings.json")], "unknown setting(s) ['heads']"),
        (["evaluate", str(data), "--budgets", "1..40"], "cannot read '1..40'"),
        (["evaluate", str(data), "--selectors", "activ"], "unknown selector"),
        (["rank", "--reward-model", str(tmp_path), "--prompt", "p", "x", "--user-id", "../etc"], "cannot be a file name"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_config_file_with_command_line_overrides(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"n_factors": 3, "l2": 0.5, "max_steps": 50}))
    model_dir = train_small(tmp_path, data, "--config", str(settings), "--max-steps", "30")
    saved = json.loads((model_dir / "config.json").read_text())["config"]
    assert (saved["n_factors"], saved["l2"], saved["max_steps"]) == (2, 0.5, 30)
    again = tmp_path / "again"
    result = runner.invoke(app, ["train", str(data), "--output-dir", str(again), "--featurizer", "stats",
                                 "--config", str(model_dir / "config.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((again / "config.json").read_text())["config"] == saved


def test_onboard_answers_file_with_several_users(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    model_dir = train_small(tmp_path, data)
    base = ["onboard", "--reward-model", str(model_dir), "--answers", str(data), "--profiles-dir", str(tmp_path)]
    result = runner.invoke(app, base + ["--user-id", "nobody"])
    assert result.exit_code == 2 and "none of 'nobody'" in result.output
    result = runner.invoke(app, base + ["--user-id", "user3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answers"] == 30
    assert len(json.loads((tmp_path / "user3.json").read_text())["answers"]) == 30


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from preflm.simulate import WorldConfig, write_world

    config = WorldConfig(n_prompts=30, n_mixture_users=6, train_answers_per_user=60, pool_size=20, test_size=20)
    return write_world(tmp_path_factory.mktemp("world") / "world.jsonl", config)


def test_evaluate_json_matches_the_table(tiny_world, tmp_path):
    args = ["evaluate", str(tiny_world), "--featurizer", "stats", "--output", str(tmp_path / "r.json"),
            "--budgets", "5,10", "--seeds", "1", "--n-factors", "2", "--max-steps", "100", "--no-ablations",
            "--no-known-phi", "--selectors", "active,random"]
    table = runner.invoke(app, [*args, "--quiet"])
    assert table.exit_code == 0, table.output
    lines = [line.split("\t") for line in table.stdout.splitlines()]
    document = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert lines[0] == ["method", "selector", "acc@5", "acc@10", "acc@20", "acc@40"]
    expected = [[r["method"], r["selector"], *(f"{r['accuracy'][b]:.3f}" if b in r["accuracy"] else "-"
                                               for b in ("5", "10", "20", "40"))] for r in document["summary"]]
    assert lines[1:] == expected
    assert [(r["method"], r["selector"]) for r in document["summary"]] == [("pref", "active"), ("pref", "random"), ("oracle", "-")]


def test_interrupted_onboarding_keeps_its_answers_and_a_stop_never_empties_a_profile(tmp_path):
    """End of input after two answers saves them; a later run that stops at once leaves the profile as it was."""
    data = tmp_path / "answers.jsonl"
    rows = make_dataset(data)
    model_dir = train_small(tmp_path, data)
    questions = tmp_path / "questions.jsonl"
    write_questions(questions, rows[:20])
    args = ["onboard", "--reward-model", str(model_dir), "--questions", str(questions), "--user-id", "ann",
            "--profiles-dir", str(tmp_path / "profiles")]
    result = runner.invoke(app, args, input="a\nb\n")
    assert result.exit_code == 0, result.output
    profile = tmp_path / "profiles" / "ann.json"
    assert len(json.loads(profile.read_text())["answers"]) == 2
    assert not profile.with_suffix(".answers.jsonl").exists()
    result = runner.invoke(app, [*args, "--overwrite"], input="q\n")
    assert result.exit_code != 0 and "left as it was" in result.output
    assert len(json.loads(profile.read_text())["answers"]) == 2


@pytest.fixture(scope="module")
def degenerate_setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("degenerate")
    data = tmp / "answers.jsonl"
    rows = make_dataset(data)
    write_questions(tmp / "questions.jsonl", rows[:20])
    train_small(tmp, data)
    (tmp / "a-file").write_text("not a folder")
    return tmp


DEGENERATE_CASES = {
    "train into a file": (["train", "{t}/answers.jsonl", "--output-dir", "{t}/a-file", "--featurizer", "stats"], "is a file"),
    "train --max-steps 0": (["train", "{t}/answers.jsonl", "--output-dir", "{t}/m0", "--featurizer", "stats",
                             "--max-steps", "0"], "max_steps"),
    "train with more factors than the data supports": (["train", "{t}/answers.jsonl", "--output-dir", "{t}/m1",
                                                        "--featurizer", "stats", "--n-factors", "500"], "n_factors"),
    "train a path without extension": (["train", "{t}/some-dataset", "--output-dir", "{t}/m2"], "hf:"),
    "evaluate --seeds 0": (["evaluate", "{t}/answers.jsonl", "--featurizer", "stats", "--seeds", "0",
                            "--output", "{t}/e.json"], "seeds"),
    "onboard --budget 0": (["onboard", "--reward-model", "{t}/model", "--questions", "{t}/questions.jsonl",
                            "--user-id", "z", "--budget", "0", "--profiles-dir", "{t}/p"], "--budget"),
    "onboard --questions with --answers": (["onboard", "--reward-model", "{t}/model", "--questions",
                                            "{t}/questions.jsonl", "--answers", "{t}/questions.jsonl",
                                            "--user-id", "z"], "either"),
    "rank a missing candidates file": (["rank", "--reward-model", "{t}/model", "--profile", "{t}/none.json",
                                        "--prompt", "x", "--candidates-file", "{t}/missing.txt"], "not found"),
}


@pytest.mark.parametrize("case", sorted(DEGENERATE_CASES))
def test_degenerate_commands_fail_with_one_clear_line(case, degenerate_setup):
    """Each case: exit status 2, an error line naming the problem, no traceback, nothing written."""
    args, fragment = DEGENERATE_CASES[case]
    result = runner.invoke(app, [a.format(t=degenerate_setup) for a in args])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert fragment in result.output and "Traceback" not in result.output


def test_evaluate_refuses_budgets_beyond_the_pool(tiny_world, tmp_path):
    result = runner.invoke(app, ["evaluate", str(tiny_world), "--featurizer", "stats", "--budgets", "5,100",
                                 "--seeds", "1", "--n-factors", "2", "--max-steps", "50", "--output", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "no new user has more than" in result.output


def test_config_of_a_saved_model_feeds_evaluate_and_user_columns_never_clash(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    model_dir = train_small(tmp_path, data)
    result = runner.invoke(app, ["evaluate", str(data), "--config", str(model_dir / "config.json"), "--featurizer",
                                 "stats", "--budgets", "2", "--seeds", "1", "--output", str(tmp_path / "e.json")])
    assert "unknown setting" not in result.output
    clash = tmp_path / "clash.jsonl"
    rows = [json.loads(line) | {"annotator": "x"} for line in data.read_text().splitlines()]
    clash.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(app, ["train", str(clash), "--user-column", "annotator", "--output-dir", str(tmp_path / "m2"),
                                 "--featurizer", "stats"])
    assert result.exit_code == 2 and "both 'annotator'" in result.output


def test_onboard_refuses_answers_of_someone_else(tmp_path):
    data = tmp_path / "answers.jsonl"
    rows = make_dataset(data)
    model_dir = train_small(tmp_path, data)
    bob = tmp_path / "bob.jsonl"
    bob.write_text("\n".join(json.dumps(r | {"user_id": "bob"}) for r in rows[:10]) + "\n")
    result = runner.invoke(app, ["onboard", "--reward-model", str(model_dir), "--user-id", "alice", "--answers", str(bob),
                                 "--profiles-dir", str(tmp_path / "p")])
    assert result.exit_code == 2 and "not of 'alice'" in result.output
    assert not (tmp_path / "p" / "alice.json").exists()


def test_train_says_which_svd_initialization_it_kept(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    common = ["train", str(data), "--featurizer", "stats", "--n-factors", "2", "--max-steps", "50"]
    auto = runner.invoke(app, [*common, "--output-dir", str(tmp_path / "auto")])
    assert auto.exit_code == 0, auto.output
    assert re.search(r"SVD initialization (on|off) \(held-out accuracy on [01]\.\d+, off [01]\.\d+\)", auto.output)
    off = runner.invoke(app, [*common, "--output-dir", str(tmp_path / "off"), "--svd-init", "off"])
    assert off.exit_code == 0 and "SVD initialization" not in off.output
    bad = runner.invoke(app, [*common, "--output-dir", str(tmp_path / "bad"), "--svd-init", "maybe"])
    assert bad.exit_code != 0 and "on, off or auto" in bad.output and "Traceback" not in bad.output


def test_train_chooses_j_from_choices_and_says_so(tmp_path):
    data = tmp_path / "answers.jsonl"
    make_dataset(data)
    common = ["train", str(data), "--featurizer", "stats", "--max-steps", "50", "--svd-init", "off"]
    result = runner.invoke(app, [*common, "--output-dir", str(tmp_path / "m"), "--n-factors-choices", "1,2"])
    assert result.exit_code == 0, result.output
    said = re.search(r"J = ([12]) \(held-out accuracy of seen users refit from 10 answers: J=1 [01]\.\d+, J=2 [01]\.\d+\)", result.output)
    assert said
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["config"]["n_factors"] == int(said.group(1)) and set(saved["n_factors_selection"]) == {"1", "2"}
    bad = runner.invoke(app, [*common, "--output-dir", str(tmp_path / "bad"), "--n-factors-choices", "two"])
    assert bad.exit_code != 0 and "comma-separated whole numbers" in bad.output and "Traceback" not in bad.output
    lora = runner.invoke(app, ["train", str(data), "--backbone", "lora", "--n-factors-choices", "1,2",
                               "--output-dir", str(tmp_path / "lora")])
    assert lora.exit_code == 2 and "n_factors_choices is for frozen features" in lora.output
    assert lora.exception is None or isinstance(lora.exception, SystemExit)
