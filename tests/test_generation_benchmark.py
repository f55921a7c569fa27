"""Tests of the generation benchmark's scoring helpers (benchmarks/generation.py), on small arrays."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("generation_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_win_rates_count_ties_as_half(bench):
    personal = np.array([[1.0, 0.0, 0.5, 2.0]])
    default = np.array([[0.0, 1.0, 0.5, 1.0]])
    assert bench.win_rates(personal, default).tolist() == [(1 + 0 + 0.5 + 1) / 4]


def test_chosen_true_takes_the_true_reward_of_the_top_scored_candidate_among_the_first_n(bench):
    scores = np.array([[[0.1, 0.9, 0.5, 2.0]]])
    truth = np.array([[[10.0, 20.0, 30.0, 40.0]]])
    assert bench.chosen_true(scores, truth, 4).tolist() == [[40.0]]
    assert bench.chosen_true(scores, truth, 3).tolist() == [[20.0]]


def test_within_prompt_correlation_ignores_each_prompts_offset_and_scale_of_learned_rewards(bench):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(3, 5, 8))
    shifted = 2.0 * truth + rng.normal(size=(3, 5, 1)) * 10
    assert np.allclose(bench.within_prompt_correlation(shifted, truth), 1.0)
    assert np.allclose(bench.within_prompt_correlation(-truth, truth), -1.0)
    unrelated = bench.within_prompt_correlation(rng.normal(size=truth.shape), truth)
    assert np.all(np.abs(unrelated) < 0.5)


def test_arguments_are_checked_and_the_reward_data_choices_include_richer_supervision(bench):
    args = bench.parse_args(["--reward-data", "llm+world", "--answers-per-user", "500"])
    assert args.reward_data == "llm+world" and args.answers_per_user == 500
    assert bench.parse_args([]).answers_per_user == 300
    with pytest.raises(SystemExit):
        bench.parse_args(["--train-candidates", "1"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--reward-data", "templates"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--answers-per-user", "0"])


def test_markdown_describes_the_richer_supervision_setting(bench):
    report = {
        "generator": "fake", "device": "cpu", "machine": "x", "wall_seconds": 60.0, "command": "python benchmarks/generation.py",
        "settings": {"n_users": 2, "n_prompts": 1, "n_candidates": 4, "guided_n": 4, "max_new_tokens": 8, "styles": None, "temperature": 0.8, "main_budget": 10,
                     "guided_users": 1, "guided_prompts": 1, "reward_data": "llm+world", "train_candidates": 8,
                     "answers_per_user": 500},
        "reward_model": {"featurizer": "ngrams+stats", "n_factors": 8, "validation_accuracy": 0.7, "training_answers": 10,
                         "tied_share": 0.4},
        "vs_n": {"1": {"win_rate": 0.5, "ci95": [0.4, 0.6]}},
        "vs_answers": {"10": {"win_rate": 0.6, "ci95": [0.5, 0.7], "pairwise_accuracy": 0.64, "reward_alignment": 0.4}},
        "references": {}, "methods": {}, "candidates": {"by_style": {}}, "throughput": {},
        "example": {"user_id": "u", "true_weights": {}, "prompt": "p"},
    }
    text = bench.markdown(report)
    assert "also rated the world's template answers" in text and "500 answers per seen user and source of texts" in text
    assert "pairs of the LLM's answers to test prompts" in text
    report["settings"]["reward_data"] = "llm"
    assert "template answers" not in bench.markdown(report)


@pytest.fixture(scope="module")
def ceiling():
    import sys

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("generation_ceiling", SCRIPT.parent / "generation_ceiling.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_held_out_prompt_ceiling_is_one_for_a_phi_that_spans_the_truth_and_near_zero_for_noise(ceiling):
    rng = np.random.default_rng(1)
    attributes = rng.normal(size=(12, 16, 3))
    weights = rng.normal(size=(5, 3))
    truth = np.einsum("pna,ua->upn", attributes, weights)
    spanning = np.concatenate([attributes @ rng.normal(size=(3, 3)), rng.normal(size=(12, 16, 1))], axis=-1)
    exact = ceiling.ceilings(spanning, truth)
    assert exact["in_sample"] == pytest.approx(1.0, abs=1e-6) and exact["held_out_prompts"] == pytest.approx(1.0, abs=1e-6)
    noise = ceiling.ceilings(rng.normal(size=(12, 16, 20)), truth)
    assert noise["in_sample"] > 0.2 and abs(noise["held_out_prompts"]) < 0.15
    assert noise["held_out_prompts"] < noise["in_sample"]
