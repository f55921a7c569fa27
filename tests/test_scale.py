"""Training at scale: the streamed reader, the sparse SVD initialization and chunked batch scoring."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from preflm.api import load_training_answers
from preflm.data import AnswerMatrix, DataError, load_preferences, normalize_frame, read_answer_table
from preflm.factorize import RewardFactorization, svd_init
from preflm.factorize.svd_init import answer_factors, sparse_svd_factors, svd_factors
from preflm.featurize import TextStatsFeaturizer
from preflm.simulate.planted import make_planted_problem

FIELDS = (
    "item_prompts", "item_responses", "pairs", "user_ids", "answer_pair", "answer_user", "answer_value",
    "answer_count", "answer_split", "true_reward_diff", "item_true_features",
)


def assert_same_matrix(streamed: AnswerMatrix, reference: AnswerMatrix) -> None:
    for name in FIELDS:
        got, want = getattr(streamed, name), getattr(reference, name)
        if want is None:
            assert got is None, name
            continue
        assert got.shape == want.shape, name
        if want.dtype == object:
            assert list(got) == list(want), name
        else:
            np.testing.assert_allclose(got, want, err_msg=name)


def tricky_rows(n_users=5, n_prompts=4, seed=0):
    """Answers with ties, repeated and contradicting answers, both orientations, a split column and
    true rewards/features; the last rows bring items only ever seen as ``response_b``."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        split = "train" if user < 3 else ("pool" if user == 3 else "test")
        for prompt in range(n_prompts):
            for _ in range(3):
                a, b = rng.choice(4, 2, replace=False)
                label = rng.choice(["a", "b", "tie", 1, 0, 0.5])
                rows.append({"user_id": f"u{user}", "prompt": f"prompt {prompt}", "response_a": f"answer {a}",
                             "response_b": f"answer {b}", "preference": label, "split": split,
                             "true_reward_a": float(a), "true_reward_b": float(b),
                             "true_features_a": [float(a), 1.0], "true_features_b": [float(b), 1.0]})
    rows.append(dict(rows[0]))
    rows.append({**rows[1], "preference": "b" if rows[1]["preference"] != "b" else "a"})
    for extra in range(2):
        rows.append({**rows[2], "response_b": f"late answer {extra}", "true_features_b": [9.0, float(extra)]})
    return rows


def write(tmp_path, rows, kind):
    frame = pd.DataFrame(rows)
    frame["preference"] = frame["preference"].astype(str)
    path = tmp_path / f"answers.{kind}"
    if kind == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif kind == "csv":
        frame.drop(columns=["true_features_a", "true_features_b"]).to_csv(path, index=False)
    elif kind == "datasets":
        import datasets

        datasets.Dataset.from_pandas(frame).save_to_disk(str(path))
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet", "datasets"])
@pytest.mark.parametrize("chunk_rows", [1, 7, 100_000])
def test_streamed_reader_equals_whole_file_reader(tmp_path, kind, chunk_rows):
    path = write(tmp_path, tricky_rows(), kind)
    reference = AnswerMatrix.from_frame(load_preferences(path))
    assert reference.answer_count.max() > 1 and reference.answer_split is not None
    assert_same_matrix(read_answer_table(path, chunk_rows=chunk_rows), reference)


def test_training_answers_keep_only_train_rows_as_before(tmp_path):
    path = write(tmp_path, tricky_rows(), "parquet")
    frame = load_preferences(path)
    reference = AnswerMatrix.from_frame(frame[frame["split"] == "train"])
    assert_same_matrix(read_answer_table(path, chunk_rows=5, keep_split="train"), reference)
    assert_same_matrix(load_training_answers(path), reference)
    assert set(load_training_answers(path).answer_split) == {"train"}


def test_streamed_reader_names_the_row_of_the_whole_file(tmp_path):
    rows = tricky_rows()
    rows[23]["preference"] = "maybe"
    path = write(tmp_path, rows, "jsonl")
    with pytest.raises(DataError) as whole:
        load_preferences(path)
    with pytest.raises(DataError) as streamed:
        read_answer_table(path, chunk_rows=4)
    assert str(streamed.value) == str(whole.value)
    assert streamed.value.row == 23 and streamed.value.field == "preference"

    rows = tricky_rows()
    rows[9]["response_b"] = rows[9]["response_a"]
    with pytest.raises(DataError, match=r"row 9, field 'response_b'.*same text"):
        read_answer_table(write(tmp_path, rows, "parquet"), chunk_rows=4)
    rows = tricky_rows()
    rows[13]["prompt"] = "  "
    with pytest.raises(DataError, match=r"row 13, field 'prompt': empty text"):
        read_answer_table(write(tmp_path, rows, "csv"), chunk_rows=4)


def test_from_ids_averages_repeated_answers_in_one_cell():
    matrix = AnswerMatrix.from_ids(
        item_prompts=np.array(["p", "p", "p"], dtype=object),
        item_responses=np.array(["x", "y", "z"], dtype=object),
        item_a=np.array([0, 1, 0, 0]),
        item_b=np.array([1, 0, 2, 1]),
        user=np.array([0, 0, 0, 1]),
        user_ids=np.array(["u", "v"], dtype=object),
        preference=np.array([1.0, 1.0, 0.5, 0.0]),
    )
    assert matrix.n_pairs == 2 and matrix.n_answers == 3
    assert matrix.answer_count.tolist() == [2, 1, 1]
    assert matrix.answer_value[0] == 0.5  # x over y, then y over x: a tie, counted twice
    with pytest.raises(DataError, match="same text"):
        AnswerMatrix.from_ids(np.array(["p"], dtype=object), np.array(["x"], dtype=object), [0], [0], [0],
                              np.array(["u"], dtype=object), [1.0])


def test_model_trained_from_parquet_equals_model_from_jsonl(tmp_path):
    rows = [r for r in tricky_rows(n_users=8, n_prompts=6, seed=1) if r["split"] == "train"]
    models = []
    for kind in ("jsonl", "parquet"):
        matrix = load_training_answers(write(tmp_path, rows, kind))
        features = TextStatsFeaturizer().transform(list(matrix.item_prompts), list(matrix.item_responses))
        models.append(RewardFactorization(n_factors=2, max_steps=40, eval_every=10, val_fraction=0.2, seed=3).fit(
            features, matrix, progress=False))
    assert models[0].model_id == models[1].model_id
    np.testing.assert_array_equal(models[0].user_weights_, models[1].user_weights_)


def test_sparse_svd_matches_dense_imputation_on_low_rank_data():
    rng = np.random.default_rng(0)
    truth = 1 / (1 + np.exp(-(rng.normal(size=(150, 3)) @ rng.normal(size=(3, 60)))))
    observed = np.where(rng.random(truth.shape) < 0.4, truth, np.nan)
    rows, cols = np.nonzero(~np.isnan(observed))
    dense_pairs, dense_users = svd_factors(observed, n_factors=3, rank=3, iterations=20)
    sparse_pairs, sparse_users = sparse_svd_factors(rows, cols, observed[rows, cols], observed.shape, 3, 3, 20)
    for dense, sparse in ((dense_pairs, sparse_pairs), (dense_users, sparse_users)):
        cosines = np.linalg.svd(np.linalg.qr(dense)[0].T @ np.linalg.qr(sparse)[0], compute_uv=False)
        assert cosines.min() > 0.99
        np.testing.assert_allclose(np.linalg.norm(sparse, axis=0), np.linalg.norm(dense, axis=0), rtol=0.05)


def test_sparse_initialization_trains_as_well_as_dense(monkeypatch):
    problem = make_planted_problem(n_items=600, n_pairs=400, n_seen_users=60, n_new_users=10, seed=0)
    train = problem.split.train
    asked, _, _ = answer_factors(train, train.answered_users(), 4)
    assert np.array_equal(asked, np.unique(train.answer_pair))
    settings = {"n_factors": 4, "head": "linear", "max_steps": 300, "seed": 0}
    dense = RewardFactorization(**settings).fit(problem.features, train, progress=False)
    monkeypatch.setattr(svd_init, "DENSE_CELL_LIMIT", 0)
    sparse = RewardFactorization(**settings).fit(problem.features, train, progress=False)
    assert sparse.validation_accuracy_ >= dense.validation_accuracy_ - 0.02
    assert sparse.score(problem.features, train) > 0.8


def test_batch_rewards_in_chunks_equal_one_call_per_user():
    featurizer = TextStatsFeaturizer()
    matrix = AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(tricky_rows(n_users=4, n_prompts=5))))
    features = featurizer.transform(list(matrix.item_prompts), list(matrix.item_responses))
    model = RewardFactorization(n_factors=2, max_steps=20, val_fraction=0.2, featurizer=featurizer).fit(
        features, matrix, progress=False)
    prompts, responses = list(matrix.item_prompts), list(matrix.item_responses)
    weights = np.random.default_rng(0).normal(size=(5, model.n_weights))
    batch = model.rewards(prompts, responses, weights, chunk_size=3)
    assert batch.shape == (5, len(prompts))
    for user, lam in enumerate(weights):
        np.testing.assert_allclose(batch[user], model.rewards(prompts, responses, lam), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="prompts but"):
        model.rewards(prompts, responses[:-1], weights)



def taste_answers(path, n_prompts=24, n_users=60, answers_per_user=80, seed=0):
    """Users with 2-dimensional tastes over the text statistics of responses that differ in form."""
    rng = np.random.default_rng(seed)
    prompts = [f"Question {i} about topic {i % 5}?" for i in range(n_prompts)]
    responses = [[(" ".join(["word"] * (2 + 3 * j)) + ("!" if (i + j) % 3 == 0 else ".")) * (1 + (i + j) % 3)
                  for j in range(5)] for i in range(n_prompts)]
    flat = [(p, r) for p, row in zip(prompts, responses) for r in row]
    stats = TextStatsFeaturizer().transform([p for p, _ in flat], [r for _, r in flat])
    stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-9)
    reward = stats @ rng.normal(size=(stats.shape[1], 2)) @ (3 * rng.normal(size=(2, n_users)))
    rows = []
    for user in range(n_users):
        for _ in range(answers_per_user):
            prompt = int(rng.integers(n_prompts))
            a, b = rng.choice(5, 2, replace=False)
            ia, ib = prompt * 5 + a, prompt * 5 + b
            p_a = 1 / (1 + np.exp(-(reward[ia, user] - reward[ib, user])))
            rows.append({"user_id": f"u{user}", "prompt": prompts[prompt], "response_a": flat[ia][1],
                         "response_b": flat[ib][1], "preference": "a" if rng.random() < p_a else "b"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_two_process_training_reaches_one_process_accuracy(tmp_path):
    pytest.importorskip("accelerate")
    data = taste_answers(tmp_path / "answers.jsonl")
    settings = ["--featurizer", "stats", "--n-factors", "2", "--max-steps", "300", "--batch-size", "512",
                "--eval-every", "20", "--seed", "1"]
    env = {**os.environ, "PREFLM_CACHE": str(tmp_path / "cache"), "PYTHONPATH": os.pathsep.join(sys.path),
           "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    accuracy = {}
    for processes in (1, 2):
        output = tmp_path / f"model-{processes}"
        # On a machine without GPUs, --multi_gpu makes accelerate start the processes through torchrun.
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", str(29500 + os.getpid() % 1000), "-m", "preflm", "--threads", "1"]
        if processes == 1:
            launch = [sys.executable, "-m", "preflm", "--threads", "1"]
        done = subprocess.run([*launch, "train", str(data), "--output-dir", str(output), *settings],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        assert done.stdout.count("answers from 60 users") == processes  # every process read the data
        model = RewardFactorization.load(output)
        assert model.user_weights_.shape == (60, 2 + model.config.residual_factors)
        accuracy[processes] = model.validation_accuracy_
    assert accuracy[1] > 0.75
    assert abs(accuracy[2] - accuracy[1]) < 0.04  # about 3 standard errors on ~650 held-out answers
