"""One record type for an answer, and readers for JSONL, CSV, Parquet and Hugging Face datasets.

Every reader returns the same normalized table (see :data:`PREFERENCE_COLUMNS`): one row per answer,
``preference`` as a float (1 = ``response_a`` preferred, 0 = ``response_b``, 0.5 = tie). Bad input
raises :class:`DataError` naming the file, row and field before anything is returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PREFERENCE_COLUMNS = ("user_id", "prompt", "response_a", "response_b", "preference")
TEXT_COLUMNS = ("prompt", "response_a", "response_b")
SPLITS = ("train", "pool", "test")
OPTIONAL_COLUMNS = ("split", "true_reward_a", "true_reward_b", "true_features_a", "true_features_b")

_LABELS = {"a": 1.0, "b": 0.0, "tie": 0.5, "1": 1.0, "0": 0.0, "0.5": 0.5, "1.0": 1.0, "0.0": 0.0}


class DataError(ValueError):
    """Invalid preference data; the message names the source, the row and the field."""

    def __init__(self, source: str, message: str, row: int | None = None, field: str | None = None):
        where = source
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
        self.source, self.row, self.field, self.detail = source, row, field, message


@dataclass(frozen=True)
class PreferenceRecord:
    """One user's answer: which of two responses to a prompt they prefer (1, 0, or 0.5 for a tie)."""

    user_id: str
    prompt: str
    response_a: str
    response_b: str
    preference: float
    split: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "preference", parse_preference(self.preference))


def parse_preference(value: Any) -> float:
    """Map ``a``/``b``/``tie`` or 1/0/0.5 (any case, str or number) to 1.0/0.0/0.5."""
    if isinstance(value, (bool, np.bool_)):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float, np.integer, np.floating)):
        if float(value) in (0.0, 0.5, 1.0):
            return float(value)
        raise ValueError(f"unknown preference {value!r} (expected a, b, tie, 1, 0 or 0.5)")
    if isinstance(value, str) and value.strip().lower() in _LABELS:
        return _LABELS[value.strip().lower()]
    raise ValueError(f"unknown preference {value!r} (expected a, b, tie, 1, 0 or 0.5)")


def _message_text(value: Any, last_only: bool) -> Any:
    """Flatten TRL conversational rows (lists of ``{role, content}``) into plain text."""
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) and all(isinstance(m, dict) for m in value):
        if last_only:
            return str(value[-1].get("content", ""))
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in value)
    return value


def _first_bad(values: pd.Series, is_bad) -> int | None:
    """Row of the first value for which ``is_bad(value)`` holds, testing each distinct value once.

    Columns of repeated texts or labels (the usual case) cost one hash pass instead of a Python call per
    row; unhashable values (lists) fall back to testing every row.
    """
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
    except TypeError:
        bad = np.fromiter((is_bad(v) for v in values.tolist()), dtype=bool, count=len(values))
        return int(np.flatnonzero(bad)[0]) if bad.any() else None
    unique_bad = np.fromiter((is_bad(v) for v in np.asarray(uniques, dtype=object)), dtype=bool, count=len(uniques))
    if not unique_bad.any():
        return None
    return int(np.flatnonzero(unique_bad[codes])[0])


def _check_texts(frame: pd.DataFrame, source: str) -> None:
    for column in TEXT_COLUMNS:
        values = frame[column]
        row = _first_bad(values, lambda v: not isinstance(v, str))
        if row is not None:
            raise DataError(source, f"text must be a string, got {type(values.iloc[row]).__name__}", row, column)
        row = _first_bad(values, lambda v: not v.strip())
        if row is not None:
            raise DataError(source, "empty text", row, column)


def load_questions(source: str | Path) -> pd.DataFrame:
    """Candidate questions to ask a new user: rows with ``prompt, response_a, response_b`` (other columns ignored)."""
    path = Path(source)
    if not path.is_file():
        raise DataError(str(source), "file not found")
    frame = _read_table(path).reset_index(drop=True)
    missing = [c for c in TEXT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(str(source), f"missing column(s) {missing}; found {list(frame.columns)}")
    if frame.empty:
        raise DataError(str(source), "no questions in the file")
    _check_texts(frame, str(source))
    return frame[list(TEXT_COLUMNS)].drop_duplicates(ignore_index=True)


def normalize_frame(
    frame: pd.DataFrame, source: str = "<frame>", user_column: str = "user_id", default_user: str | None = None
) -> pd.DataFrame:
    """Validate a table of answers and return it in the standard schema.

    Accepts the standard columns or TRL-style ``prompt, chosen, rejected`` plus a user column.
    ``default_user`` fills a missing user column (single-user files, e.g. one user's onboarding answers).
    """
    frame = frame.reset_index(drop=True).copy()
    if user_column != "user_id" and user_column in frame.columns:
        if "user_id" in frame.columns:
            raise DataError(source, f"both {user_column!r} (the user column asked for) and 'user_id' are present: "
                            "drop or rename one", None, "user_id")
        frame = frame.rename(columns={user_column: "user_id"})
    if "user_id" not in frame.columns and default_user is not None:
        frame["user_id"] = default_user
    if "response_a" not in frame.columns and {"chosen", "rejected"} <= set(frame.columns):
        frame = frame.rename(columns={"chosen": "response_a", "rejected": "response_b"})
        if "preference" not in frame.columns:
            frame["preference"] = 1.0
        frame["response_a"] = [_message_text(v, True) for v in frame["response_a"]]
        frame["response_b"] = [_message_text(v, True) for v in frame["response_b"]]
        if "prompt" in frame.columns:
            frame["prompt"] = [_message_text(v, False) for v in frame["prompt"]]
    missing = [c for c in PREFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        hint = " (use --user-column to name it)" if "user_id" in missing else ""
        raise DataError(source, f"missing column(s) {missing}; found {list(frame.columns)}{hint}")
    if frame.empty:
        raise DataError(source, "no answers in the data")

    _check_texts(frame, source)
    users = frame["user_id"]
    row = _first_bad(users, lambda v: pd.isna(v) or not str(v).strip())
    if row is not None:
        raise DataError(source, "missing user id", row, "user_id")
    frame["user_id"] = users.astype(str)
    frame["preference"] = _parse_labels(frame["preference"], source)

    if "split" in frame.columns:
        split = frame["split"].astype(str).str.strip().str.lower()
        bad = ~split.isin(SPLITS)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(source, f"unknown split {frame['split'].iloc[row]!r} (expected {SPLITS})", row, "split")
        frame["split"] = split
    for column in ("true_features_a", "true_features_b"):
        if column in frame.columns:
            frame[column] = [json.loads(v) if isinstance(v, str) else list(v) for v in frame[column]]
    keep = [c for c in PREFERENCE_COLUMNS + OPTIONAL_COLUMNS if c in frame.columns]
    return frame[keep]


def _parse_labels(values: pd.Series, source: str) -> np.ndarray:
    """:func:`parse_preference` of every row, each distinct label parsed once; the first bad row is named."""

    def parse(value: Any) -> float:
        try:
            return parse_preference(value)
        except ValueError:
            return np.nan

    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        parsed = np.fromiter((parse(v) for v in np.asarray(uniques, dtype=object)), dtype=float, count=len(uniques))
        labels = parsed[codes]
    except TypeError:
        labels = np.fromiter((parse(v) for v in values.tolist()), dtype=float, count=len(values))
    bad = np.isnan(labels)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        try:
            parse_preference(values.iloc[row])
        except ValueError as err:
            raise DataError(source, str(err), row, "preference") from None
    return labels


def _read_table(path: Path) -> pd.DataFrame:
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() in (".jsonl", ".ndjson") or suffixes.endswith(".jsonl.gz"):
        return pd.read_json(path, lines=True, dtype=False)
    if path.suffix.lower() == ".json":
        with path.open() as handle:
            first = handle.read(4096).lstrip()[:1]
        return pd.read_json(path, lines=first != "[", dtype=False)
    if path.suffix.lower() in (".csv", ".tsv"):
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise DataError(str(path), "unsupported file type (use .jsonl, .json, .csv, .tsv, .parquet or a datasets folder)")


HUB_PREFIX = "hf:"


def open_source(source: str | Path, hf_split: str = "train"):
    """A file's path, or the loaded ``datasets.Dataset`` for ``hf:<name>`` and ``save_to_disk`` folders.

    A Hub dataset is read only when asked for as ``hf:<name>``; a missing path is a :class:`DataError`.
    """
    text = str(source)
    path = Path(source)
    if text.startswith(HUB_PREFIX) or path.is_dir():
        import datasets

        name = text[len(HUB_PREFIX) :]
        if text.startswith(HUB_PREFIX) and not name.strip():
            raise DataError(text, f"give a dataset name after {HUB_PREFIX!r}, e.g. hf:org/name")
        try:
            loaded = datasets.load_from_disk(str(path)) if path.is_dir() else datasets.load_dataset(name)
        except Exception as err:
            raise DataError(text, f"cannot load as a Hugging Face dataset: {err}") from None
        if isinstance(loaded, datasets.DatasetDict):
            if hf_split not in loaded:
                raise DataError(text, f"no split {hf_split!r}; available: {list(loaded)}")
            loaded = loaded[hf_split]
        return loaded
    if path.is_file():
        return path
    if not path.suffix:
        raise DataError(text, f"file not found (to read a Hugging Face Hub dataset, write {HUB_PREFIX}{text})")
    raise DataError(text, "file not found")


def load_preferences(
    source: str | Path,
    user_column: str = "user_id",
    hf_split: str = "train",
    default_user: str | None = None,
) -> pd.DataFrame:
    """Read answers from a file, a ``datasets.save_to_disk`` folder or a Hugging Face Hub dataset.

    A Hub dataset is read only when asked for as ``hf:<name>``: a path that does not exist is a
    :class:`DataError`, never a silent network request. Returns the normalized table
    (:func:`normalize_frame`); raises :class:`DataError` on bad input.
    """
    text = str(source)
    opened = open_source(source, hf_split)
    if isinstance(opened, Path):
        try:
            frame = _read_table(opened)
        except (ValueError, OSError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(str(opened), f"cannot parse file: {err}") from None
    else:
        frame = opened.to_pandas()
    return normalize_frame(frame, text, user_column, default_user)


def records_to_frame(records: list[PreferenceRecord]) -> pd.DataFrame:
    """Standard table from records (split column only when some record has one)."""
    frame = pd.DataFrame([r.__dict__ for r in records])
    if "split" in frame.columns and frame["split"].isna().all():
        frame = frame.drop(columns="split")
    return normalize_frame(frame)
