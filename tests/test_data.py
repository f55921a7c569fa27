import json

import numpy as np
import pandas as pd
import pytest

from preflm.data import (
    AnswerMatrix,
    DataError,
    PreferenceRecord,
    load_preferences,
    load_questions,
    split_answers,
)

ROWS = [
    {"user_id": "u1", "prompt": "p", "response_a": "x", "response_b": "y", "preference": "a"},
    {"user_id": "u1", "prompt": "p", "response_a": "y", "response_b": "z", "preference": "tie"},
    {"user_id": "u2", "prompt": "p", "response_a": "x", "response_b": "y", "preference": 0},
]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet", "datasets"])
def test_readers_agree(tmp_path, kind):
    frame = pd.DataFrame(ROWS)
    frame["preference"] = frame["preference"].astype(str)
    if kind == "jsonl":
        path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    elif kind == "csv":
        path = tmp_path / "a.csv"
        frame.to_csv(path, index=False)
    elif kind == "parquet":
        path = tmp_path / "a.parquet"
        frame.to_parquet(path)
    else:
        import datasets

        path = tmp_path / "ds"
        datasets.Dataset.from_pandas(frame).save_to_disk(str(path))
    loaded = load_preferences(path)
    assert list(loaded["preference"]) == [1.0, 0.5, 0.0]
    assert list(loaded["user_id"]) == ["u1", "u1", "u2"]


def test_trl_rows_with_user_column(tmp_path):
    rows = [{"worker": 7, "prompt": "q", "chosen": "good", "rejected": "bad"}]
    loaded = load_preferences(write_jsonl(tmp_path / "t.jsonl", rows), user_column="worker")
    assert loaded.iloc[0].to_dict() == {
        "user_id": "7", "prompt": "q", "response_a": "good", "response_b": "bad", "preference": 1.0
    }


def test_trl_conversational_rows(tmp_path):
    rows = [{"user_id": "u", "prompt": [{"role": "user", "content": "hi"}],
             "chosen": [{"role": "assistant", "content": "hello"}],
             "rejected": [{"role": "assistant", "content": "go away"}]}]
    loaded = load_preferences(write_jsonl(tmp_path / "c.jsonl", rows))
    assert loaded.iloc[0]["response_a"] == "hello" and loaded.iloc[0]["prompt"] == "user: hi"


@pytest.mark.parametrize(
    "change, field, row, message",
    [
        ({"preference": "maybe"}, "preference", 1, "unknown preference"),
        ({"prompt": "   "}, "prompt", 1, "empty text"),
        ({"response_b": 3}, "response_b", 1, "must be a string"),
        ({"split": "dev"}, "split", 1, "unknown split"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, change, field, row, message):
    rows = [dict(r, split="train") for r in ROWS]
    rows[row] = {**rows[row], **change}
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_preferences(path)
    text = str(info.value)
    assert str(path) in text and f"row {row}" in text and f"'{field}'" in text and message in text


def test_missing_column_and_missing_file(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{k: v for k, v in r.items() if k != "user_id"} for r in ROWS])
    with pytest.raises(DataError, match="missing column.*user_id.*--user-column"):
        load_preferences(path)
    with pytest.raises(DataError, match="file not found"):
        load_preferences(tmp_path / "nope.jsonl")


def test_record_parses_labels():
    assert PreferenceRecord("u", "p", "a", "b", "B").preference == 0.0
    with pytest.raises(ValueError):
        PreferenceRecord("u", "p", "a", "b", 0.7)


def test_matrix_dedups_and_orients_by_content():
    rows = ROWS + [
        {"user_id": "u1", "prompt": "p", "response_a": "y", "response_b": "x", "preference": "a"},
    ]
    matrix = AnswerMatrix.from_frame(load_preferences_frame(rows))
    assert matrix.n_items == 3 and matrix.n_pairs == 2 and matrix.n_users == 2
    # u1 answered (x, y) twice with opposite choices: one cell, a tie, counted twice
    cell = np.flatnonzero((matrix.answer_user == 0) & (matrix.answer_count == 2))
    assert len(cell) == 1 and matrix.answer_value[cell[0]] == 0.5
    dense = matrix.dense()
    assert dense.shape == (2, 2) and np.isnan(dense).sum() == 1
    table = matrix.to_frame()
    assert len(table) == matrix.n_answers and table["count"].sum() == len(rows)
    assert table.loc[table["count"] == 2, "preference"].tolist() == [0.5]
    # the same answer written in swapped order gives the same cell value
    swapped = AnswerMatrix.from_frame(load_preferences_frame(
        [{"user_id": "u", "prompt": "p", "response_a": "y", "response_b": "x", "preference": "b"}]))
    straight = AnswerMatrix.from_frame(load_preferences_frame(
        [{"user_id": "u", "prompt": "p", "response_a": "x", "response_b": "y", "preference": "a"}]))
    assert swapped.answer_value[0] == straight.answer_value[0]
    assert set(swapped.item_responses[swapped.pairs[0]]) == {"x", "y"}


def test_chosen_first_files_are_not_all_ones():
    rows = [{"user_id": "u", "prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(200)]
    matrix = AnswerMatrix.from_frame(load_preferences_frame(rows))
    assert 0.3 < matrix.answer_value.mean() < 0.7


def load_preferences_frame(rows):
    from preflm.data import normalize_frame

    return normalize_frame(pd.DataFrame(rows))


def test_split_column_is_honoured():
    rows = [dict(r, split="train") for r in ROWS] + [
        {"user_id": "new", "prompt": "p", "response_a": "x", "response_b": "z", "preference": "a", "split": "pool"},
        {"user_id": "new", "prompt": "p", "response_a": "y", "response_b": "z", "preference": "b", "split": "test"},
    ]
    split = split_answers(AnswerMatrix.from_frame(load_preferences_frame(rows)), seed=123, protocol="seen-prompts")
    assert split.train.n_answers == 3 and split.pool.n_answers == 1 and split.test.n_answers == 1
    assert list(split.new_users) == [2]


def test_split_column_rejects_a_pair_in_both_pool_and_test():
    rows = [dict(ROWS[0], split="train"),
            {"user_id": "n", "prompt": "p", "response_a": "x", "response_b": "y", "preference": "a", "split": "pool"},
            {"user_id": "n", "prompt": "p", "response_a": "y", "response_b": "x", "preference": "b", "split": "test"}]
    with pytest.raises(DataError, match="same pair in pool and test"):
        split_answers(AnswerMatrix.from_frame(load_preferences_frame(rows)), protocol="seen-prompts")


def test_json_array_file(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS))
    assert len(load_preferences(path)) == 3


def test_split_column_rejects_user_in_both_sides():
    rows = [dict(ROWS[0], split="train"), dict(ROWS[1], split="test")]
    with pytest.raises(DataError, match="both train and pool/test"):
        split_answers(AnswerMatrix.from_frame(load_preferences_frame(rows)))


def test_random_split_by_user_and_pair():
    rng = np.random.default_rng(0)
    rows = [
        {"user_id": f"u{u}", "prompt": "p", "response_a": f"r{i}", "response_b": f"r{i + 1}",
         "preference": float(rng.random() < 0.5)}
        for u in range(20) for i in range(30)
    ]
    matrix = AnswerMatrix.from_frame(load_preferences_frame(rows))
    split = split_answers(matrix, new_user_fraction=0.25, seed=1, protocol="seen-prompts")
    seen, new = set(split.train.answer_user), set(split.pool.answer_user) | set(split.test.answer_user)
    assert len(new) == 5 and not seen & new
    for user in new:
        pool_pairs = set(split.pool.answer_pair[split.pool.answer_user == user])
        test_pairs = set(split.test.answer_pair[split.test.answer_user == user])
        assert pool_pairs and test_pairs and not pool_pairs & test_pairs
    again = split_answers(matrix, new_user_fraction=0.25, seed=1, protocol="seen-prompts")
    assert np.array_equal(again.test.answer_pair, split.test.answer_pair)


def many_prompt_rows(n_users=20, n_prompts=30, seed=0):
    """Every user answers two pairs (of four responses) on each of ``n_prompts`` prompts."""
    rng = np.random.default_rng(seed)
    return [
        {"user_id": f"u{u}", "prompt": f"question {q}", "response_a": f"q{q} r{i}", "response_b": f"q{q} r{i + 1}",
         "preference": float(rng.random() < 0.5)}
        for u in range(n_users) for q in range(n_prompts) for i in (0, 2)
    ]


def split_prompts(split):
    return [set(part.item_prompts[part.pairs[part.answer_pair, 0]]) for part in (split.train, split.pool, split.test)]


def test_unseen_prompts_split_never_shares_a_prompt():
    matrix = AnswerMatrix.from_frame(load_preferences_frame(many_prompt_rows()))
    split = split_answers(matrix, new_user_fraction=0.25, seed=3)
    assert split.protocol == "unseen-prompts"
    train, pool, test = split_prompts(split)
    assert train and pool and test
    assert not train & pool and not train & test and not pool & test
    assert len(train) == 22 and len(pool) == len(test) == 4
    seen, new = set(split.train.answer_user), set(split.pool.answer_user) | set(split.test.answer_user)
    assert len(new) == 5 and not seen & new and len(split.new_users) == 5
    assert split.train.n_answers == 15 * 22 * 2 and split.pool.n_answers == 5 * 4 * 2
    again = split_answers(matrix, new_user_fraction=0.25, seed=3)
    assert split_prompts(again) == [train, pool, test]
    assert split_prompts(split_answers(matrix, new_user_fraction=0.25, seed=4)) != [train, pool, test]


@pytest.mark.parametrize("extra, message", [
    ({"prompt": "question 0", "split": "pool"}, "both train and pool"),
    ({"prompt": "question 1", "response_a": "q1 r2", "response_b": "q1 r3", "split": "test"}, "both pool and test"),
])
def test_split_column_rejects_a_shared_prompt_under_unseen_prompts(extra, message):
    def row(user, prompt, split, a="r0", b="r1"):
        return {"user_id": user, "prompt": prompt, "response_a": a, "response_b": b, "preference": "a", "split": split}

    rows = [row("u1", "question 0", "train"), row("u2", "question 0", "train"),
            row("n", "question 1", "pool"), row("n", "question 2", "test")]
    assert split_answers(AnswerMatrix.from_frame(load_preferences_frame(rows))).pool.n_answers == 1
    rows.append({**row("n", "", ""), **extra})
    matrix = AnswerMatrix.from_frame(load_preferences_frame(rows))
    with pytest.raises(DataError, match=message):
        split_answers(matrix)
    assert split_answers(matrix, protocol="seen-prompts").protocol == "seen-prompts"


def test_unseen_prompts_needs_three_prompts_and_a_known_protocol():
    matrix = AnswerMatrix.from_frame(load_preferences_frame(many_prompt_rows(n_prompts=2)))
    with pytest.raises(ValueError, match="at least 3 distinct prompts"):
        split_answers(matrix)
    with pytest.raises(ValueError, match="protocol must be one of"):
        split_answers(matrix, protocol="by-pair")


def test_prompt_holdout_mask_holds_out_whole_prompts():
    from preflm.data.split import answer_prompts, prompt_holdout_mask

    matrix = AnswerMatrix.from_frame(load_preferences_frame(many_prompt_rows()))
    held = prompt_holdout_mask(matrix, 0.2, seed=0)
    codes, _ = answer_prompts(matrix)
    assert len(np.unique(codes[held])) == 6
    assert not set(codes[held]) & set(codes[~held])
    assert not prompt_holdout_mask(matrix, 0.0).any()


def test_load_questions(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"prompt": "p", "response_a": "x", "response_b": "y"}] * 2)
    assert len(load_questions(path)) == 1
    with pytest.raises(DataError, match="missing column"):
        load_questions(write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p"}]))
