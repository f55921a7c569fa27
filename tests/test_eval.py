import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from preflm.cli import app
from preflm.metrics import mean_ci, pairwise_accuracy, pairwise_auc
from preflm.simulate import WorldConfig, write_world

runner = CliRunner()
DSP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dsp" / "domain_specific_preference.part1.json"


def test_metrics_match_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 40))
    labels = rng.choice([0.0, 0.5, 1.0], size=(3, 40))
    mask = rng.random((3, 40)) < 0.8
    auc = pairwise_auc(scores, labels, mask)
    accuracy = pairwise_accuracy(scores, labels, mask)
    for row in range(3):
        keep = mask[row] & (labels[row] != 0.5)
        assert np.isclose(auc[row], roc_auc_score(labels[row][keep], scores[row][keep]))
        assert np.isclose(accuracy[row], np.mean((scores[row][keep] > 0) == (labels[row][keep] == 1)))
    mean, low, high = mean_ci(np.array([1.0, 2.0, 3.0, np.nan]))
    assert mean == 2.0 and low < 2.0 < high


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "world.jsonl"
    config = WorldConfig(n_prompts=40, n_mixture_users=6, train_answers_per_user=120, pool_size=40, test_size=40)
    return write_world(path, config)


def test_evaluate_writes_json_and_report(small_world, tmp_path):
    out, report = tmp_path / "r.json", tmp_path / "report"
    result = runner.invoke(app, ["evaluate", str(small_world), "--featurizer", "stats", "--output", str(out),
                                 "--report-dir", str(report), "--budgets", "1,5,10,20,40", "--seeds", "2",
                                 "--n-factors", "4", "--j-sweep", "2,4"])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["split_from_file"] is True
    assert set(results["methods"]) == {"pref", "pref_svd_init", "pref_no_svd_init", "pref_no_l2", "pref_no_residual", "known_phi"}
    for name in ("pref", "known_phi"):
        for strategy in ("active", "random"):
            entry = results["methods"][name]["strategies"][strategy]["10"]
            low, high = entry["accuracy"]["ci"]
            assert 0.5 < entry["accuracy"]["mean"] <= 1 and low <= entry["accuracy"]["mean"] <= high
            assert 0.5 < entry["auc"]["mean"] <= 1
    assert results["oracle"]["accuracy"]["mean"] > 0.85
    known = results["methods"]["known_phi"]["strategies"]["active"]["40"]["accuracy"]["mean"]
    assert known > results["methods"]["known_phi"]["strategies"]["active"]["1"]["accuracy"]["mean"]
    assert set(results["j_sweep"]) == {"2", "4"}
    text = (report / "report.md").read_text()
    assert "| pref | active |" in text and "oracle" in text
    assert "| pref_no_l2 | random |" in text.split("Paired accuracy differences")[1]
    import pandas as pd

    from preflm.eval.harness import paired_difference, per_user_table
    from preflm.eval.run import table_path

    table = pd.read_csv(table_path(out))
    same = paired_difference(table, ("pref", "active"), ("pref", "active"), 10)
    assert same["mean"] == 0.0
    diff = paired_difference(table, ("known_phi", "active"), ("pref", "random"), 10)
    users = per_user_table(table)
    per_user = users[(users["method"] == "known_phi") & (users["strategy"] == "active") & (users["budget"] == 10)]
    assert len(per_user) == results["n_new_users"] and diff["ci"][0] <= diff["mean"] <= diff["ci"][1]
    for png in ("accuracy_vs_answers.png", "auc_vs_answers.png", "ablations.png", "j_sweep.png"):
        assert (report / png).stat().st_size > 1000


def test_evaluate_rejects_unknown_method(small_world, tmp_path):
    result = runner.invoke(app, ["evaluate", str(small_world), "--featurizer", "stats", "--methods", "pref,nope",
                                 "--output", str(tmp_path / "r.json"), "--budgets", "5", "--seeds", "1"])
    assert result.exit_code == 2 and "unknown method" in result.output


@pytest.mark.skipif(not DSP.is_file(), reason="shared DSP data not present")
def test_dsp_converter(tmp_path):
    from preflm.data import AnswerMatrix, load_preferences, split_answers
    from preflm.simulate.dsp import SOURCES

    out = tmp_path / "dsp.jsonl"
    result = runner.invoke(app, ["dsp", str(DSP), "--output", str(out), "--extra-new-users", "5"])
    assert result.exit_code == 0, result.output
    frame = load_preferences(out)
    assert frame.loc[frame["split"] != "train", "user_id"].nunique() == 15 + 5
    assert set(frame["split"]) == {"train", "pool", "test"}
    assert (frame["response_a"].str.strip() != frame["response_b"].str.strip()).all()
    matrix = AnswerMatrix.from_frame(frame)
    assert matrix.item_true_features.shape[1] == len(SOURCES)
    split_answers(matrix)  # raises if a new user's pool and test share a question
    assert {f"domain:{s}" for s in SOURCES} <= set(frame["user_id"])
    decided = frame[frame["preference"] != 0.5]
    agree = (decided["true_reward_a"] > decided["true_reward_b"]) == (decided["preference"] == 1.0)
    assert agree.mean() > 0.8


def test_report_without_ten_answers_or_active_questions(small_world, tmp_path):
    result = runner.invoke(app, ["evaluate", str(small_world), "--featurizer", "stats", "--output", str(tmp_path / "r.json"),
                                 "--report-dir", str(tmp_path / "report"), "--budgets", "1,5", "--seeds", "1",
                                 "--n-factors", "2", "--max-steps", "50", "--selectors", "random", "--j-sweep", "2"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "acc@5" in text and "Ablations" not in text
