"""What every converter shares: reading sources, cleaning text fields, the summary, and the final filters.

A converter turns a public dataset into candidate answers (``user_id, prompt, response_a, response_b,
preference`` as ``a``/``b``/``tie``, plus a ``group`` key) and hands them to :func:`finalize`, which drops
pairs of identical responses and repeated answers, applies the minimum number of answers per user,
assigns the unseen-prompt split and checks it. Every row left out is counted under a reason in the
:class:`ConversionSummary`, so nothing disappears silently.
"""

from __future__ import annotations

import ast
import gzip
import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflm.data.convert.split import SplitConfig, assign_unseen_prompt_split, check_unseen_prompt_split
from preflm.data.records import SPLITS, DataError

ANSWER_COLUMNS = ("user_id", "prompt", "response_a", "response_b", "preference")
TRUTH_COLUMNS = ("true_reward_a", "true_reward_b", "true_features_a", "true_features_b")
DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".parquet")
METADATA_FILES = ("dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json")
_LABEL_VALUE = {"a": 1.0, "b": 0.0, "tie": 0.5}
_BRACKET_QUOTED = re.compile(r"""^\[\s*(['"])(.*)\1\s*\]$""", re.DOTALL)


@dataclass(frozen=True)
class ConvertConfig:
    """Options shared by every converter.

    ``min_answers`` applies to every user before the split and again after it (a seen user's
    ``train`` answers, a new user's ``pool`` plus ``test`` answers). ``dedup`` keeps the first of
    repeated answers of one user to one prompt and pair. ``max_rows`` reads only the first rows of
    the source (a quick look at a large download).
    """

    min_answers: int = 10
    dedup: bool = True
    max_rows: int | None = None
    split: SplitConfig = field(default_factory=SplitConfig)

    def __post_init__(self) -> None:
        if self.min_answers < 1:
            raise ValueError(f"min_answers must be >= 1, got {self.min_answers}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows}")


@dataclass
class ConversionSummary:
    """What a conversion read, wrote and left out (with the reason for every row left out)."""

    dataset: str
    source: str
    rows_read: int = 0
    answers_built: int = 0
    answers_written: int = 0
    users: int = 0
    seen_users: int = 0
    new_users: int = 0
    prompts: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items left out for ``reason`` (the reason names its unit)."""
        count = int(count)
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"{self.dataset} from {self.source}",
            f"  source rows read:      {self.rows_read}",
            f"  candidate answers:     {self.answers_built}",
            f"  answers written:       {self.answers_written}",
            f"  users:                 {self.users} ({self.seen_users} seen, {self.new_users} new)",
            f"  prompts:               {self.prompts}",
        ]
        lines += [f"  split {name:<16} {self.splits.get(name, 0)}" for name in SPLITS]
        lines += [f"  dropped: {reason}: {count}" for reason, count in self.dropped.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def clean_text(value: Any) -> tuple[str | None, str | None]:
    """A text field as plain text, or ``(None, reason)`` when it holds no single text.

    Strips whitespace; unwraps one-element lists and their string forms (``"['text']"``, which is
    what a list becomes after a CSV round trip), refuses several texts in one field, non-text values
    and empty text. Text that merely looks bracketed (``"[1] see above"``, ``"[1, 2, 3]"``) is kept.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, "missing"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            return None, "empty list"
        if len(value) > 1:
            return None, "several texts in one field"
        return clean_text(value[0])
    if isinstance(value, dict):
        for key in ("content", "text"):
            if key in value:
                return clean_text(value[key])
        return None, "not text"
    if not isinstance(value, str):
        return None, "not text"
    text = value.strip()
    if not text:
        return None, "empty"
    parsed = _string_list(text)
    if parsed is not None:
        return clean_text(parsed)
    return text, None


def _string_list(text: str) -> list | None:
    """The list a string spells (``'["a"]'`` or ``"['a']"``) when it is a list of strings, else None.

    A bracketed quoted text that is no valid literal (``['It's']``, glued together by hand) still
    counts: one text, or several when quote-comma-quote separators show.
    """
    if not (text.startswith("[") and text.endswith("]")):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, list) and all(isinstance(item, (str, list)) for item in parsed):
            return parsed
        return None
    quoted = _BRACKET_QUOTED.match(text)
    if quoted is None or "[" in quoted.group(2) or "]" in quoted.group(2):
        return None
    inner = quoted.group(2)
    return inner.split("', '") if re.search(r"""['"]\s*,\s*['"]""", inner) else [inner]


def looks_like_list_literal(text: str) -> bool:
    """Whether ``text`` is a stringified list of strings (a mis-parsed field), e.g. ``"['a', 'b']"``."""
    return isinstance(text, str) and _string_list(text.strip()) is not None


def as_list(value: Any) -> list | None:
    """A list-valued field as a list; accepts arrays and the JSON or Python string form of a list."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(value.strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            return parsed if isinstance(parsed, list) else None
    return None


def as_dict(value: Any) -> dict | None:
    """A record-valued field as a dict; accepts its JSON or Python string form."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(value.strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            return parsed if isinstance(parsed, dict) else None
    return None


def as_float(value: Any) -> float | None:
    """A finite number, or None for missing, non-numeric or NaN values (booleans are not scores)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
        return float(value)
    return None


def clean_id(value: Any) -> str | None:
    """A user or item id as a non-empty string (numbers allowed), else None."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    text, _ = clean_text(value)
    return text


def render_messages(messages: list[tuple[str, str]]) -> str:
    """Conversation turns as ``role: text`` lines, the same form the readers give TRL conversations."""
    return "\n".join(f"{role}: {text}" for role, text in messages)


def read_source(
    source: str | Path,
    hf_config: str | None = None,
    prefer: tuple[str, ...] = (),
    max_rows: int | None = None,
) -> list[dict]:
    """Rows of a dataset as dicts: a file, a folder of files as downloaded, a ``datasets`` folder, or ``hf:<id>``.

    ``hf:<id>[#config]`` loads from the Hugging Face hub (online) and joins all its splits, noting
    each row's split under ``_hf_split``. In a folder, the first file named in ``prefer`` is read,
    or else every data file (JSON lines, JSON, Parquet) below it, in name order, skipping hidden
    folders (``.cache``, ``.argilla``) and ``datasets`` metadata files.
    """
    text = str(source)
    if text.startswith("hf:"):
        hub_id, _, config = text[3:].partition("#")
        return _read_hub(text, hub_id, config or hf_config, max_rows)
    path = Path(source)
    if not path.exists():
        raise DataError(text, "file or folder not found")
    if path.is_dir():
        if any((path / name).is_file() for name in ("dataset_info.json", "dataset_dict.json", "state.json")):
            return _read_saved_dataset(path, max_rows)
        files = [path / name for name in prefer if (path / name).is_file()][:1]
        if not files:
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.name.lower().endswith(DATA_SUFFIXES)
                and p.name not in METADATA_FILES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        if not files:
            raise DataError(text, f"no data files ({', '.join(DATA_SUFFIXES)}) in the folder")
    else:
        files = [path]
    rows: list[dict] = []
    for file in files:
        for row in _iter_file(file):
            if max_rows is not None and len(rows) >= max_rows:
                return rows
            rows.append(row)
    return rows


def _iter_file(path: Path) -> Iterator[dict]:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    if not name.endswith((".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz")):
        raise DataError(str(path), "unsupported file type (use JSON lines, JSON or Parquet as downloaded)")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        head = handle.read(1)
        while head and head.isspace():
            head = handle.read(1)
        if head == "[":
            try:
                records = json.loads(head + handle.read())
            except json.JSONDecodeError as err:
                raise DataError(str(path), f"not valid JSON: {err}") from None
            for row, record in enumerate(records):
                if not isinstance(record, dict):
                    raise DataError(str(path), f"expected an object, got {type(record).__name__}", row)
                yield record
            return
        handle.seek(0)
        for line_number, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(str(path), f"not valid JSON: {err}", line_number) from None
            if not isinstance(record, dict):
                raise DataError(str(path), f"expected an object, got {type(record).__name__}", line_number)
            yield record


def _read_hub(source: str, hub_id: str, config: str | None, max_rows: int | None) -> list[dict]:
    import datasets

    try:
        loaded = datasets.load_dataset(hub_id, config) if config else datasets.load_dataset(hub_id)
    except Exception as err:
        raise DataError(source, f"cannot load from the Hugging Face hub: {err}") from None
    return _dataset_rows(loaded, max_rows)


def _read_saved_dataset(path: Path, max_rows: int | None) -> list[dict]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:
        raise DataError(str(path), f"cannot load as a saved Hugging Face dataset: {err}") from None
    return _dataset_rows(loaded, max_rows)


def _dataset_rows(loaded, max_rows: int | None) -> list[dict]:
    import datasets

    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    rows: list[dict] = []
    for split_name, part in parts:
        take = part if max_rows is None else part.select(range(min(len(part), max_rows - len(rows))))
        for row in take.to_list():
            if split_name is not None:
                row["_hf_split"] = split_name
            rows.append(row)
        if max_rows is not None and len(rows) >= max_rows:
            break
    return rows


def require_fields(rows: list[dict], source: str, fields: tuple[str, ...], dataset: str) -> None:
    """Fail early, naming the missing fields, when the first row is not in the dataset's schema."""
    if not rows:
        raise DataError(source, "no rows in the source")
    missing = [name for name in fields if name not in rows[0]]
    if missing:
        raise DataError(
            source, f"not the {dataset} schema: missing field(s) {missing}; found {sorted(rows[0])}", 0
        )


def open_source(
    dataset: str, source, config: ConvertConfig | None, folder: str | None = None, files: tuple[str, ...] = ()
) -> tuple[ConvertConfig, ConversionSummary, list[dict]]:
    """The start of every converter: its config (defaults if none), a fresh summary and the source's rows."""
    config = config or ConvertConfig()
    summary = ConversionSummary(dataset, str(source))
    rows = read_source(source, folder, files, config.max_rows)
    summary.rows_read = len(rows)
    return config, summary, rows


def finalize(
    answers: pd.DataFrame,
    summary: ConversionSummary,
    config: ConvertConfig,
    new_users: set[str] | None = None,
    heldout_column: str | None = None,
) -> pd.DataFrame:
    """Filter candidate answers, assign the unseen-prompt split, check it, and fill in the summary.

    ``answers`` has the standard columns (preference as ``a``/``b``/``tie``), a ``group`` column
    (prompts of one group, e.g. the turns of one conversation, share a side of the split), and
    optionally the true-reward columns. ``summary.answers_built`` is set here unless the converter
    already counted its candidates (before filters of its own). ``new_users`` and ``heldout_column`` fix the split's users
    and prompt sides instead of drawing them (see :func:`assign_unseen_prompt_split`).
    """
    frame = answers.reset_index(drop=True)
    summary.answers_built = summary.answers_built or len(frame)
    if frame.empty:
        raise DataError(summary.source, f"no usable answers; left out: {summary.dropped}")
    same = (frame["response_a"] == frame["response_b"]).to_numpy()
    summary.drop("answers whose two responses are the same text", same.sum())
    frame = frame[~same]
    if config.dedup:
        frame = _drop_repeats(frame, summary)
    frame = _min_answers(frame, config.min_answers, summary, "answers of users with fewer than {n} answers")
    users_left = frame["user_id"].nunique()
    if users_left < 2:
        raise DataError(
            summary.source,
            f"{users_left} user(s) with at least {config.min_answers} answers; the split needs two or more "
            f"(lower min_answers); left out: {summary.dropped}",
        )
    frame, drops = assign_unseen_prompt_split(
        frame, config.split, group_column="group", new_users=new_users, heldout_column=heldout_column
    )
    for reason, count in drops.items():
        summary.drop(reason, count)
    frame = _after_split(frame, config.min_answers, summary)
    if not (frame["split"] == "train").any() or not (frame["split"] != "train").any():
        raise DataError(
            summary.source,
            "no seen users or no new users left after the split (lower min_answers, change the fractions, "
            f"or convert more rows); left out: {summary.dropped}",
        )
    check_unseen_prompt_split(frame)
    for column in ("prompt", "response_a", "response_b"):
        bad = frame[column].map(looks_like_list_literal).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(summary.source, "text is a stringified list (converter bug)", row, column)
    order = frame["split"].map({name: i for i, name in enumerate(SPLITS)})
    frame = frame.assign(_order=order).sort_values(["_order", "user_id"], kind="stable")
    keep = list(ANSWER_COLUMNS) + ["split"] + [c for c in TRUTH_COLUMNS if c in frame.columns]
    frame = frame[keep].reset_index(drop=True)

    summary.answers_written = len(frame)
    summary.users = int(frame["user_id"].nunique())
    summary.seen_users = int(frame.loc[frame["split"] == "train", "user_id"].nunique())
    summary.new_users = summary.users - summary.seen_users
    summary.prompts = int(frame["prompt"].nunique())
    summary.splits = {name: int((frame["split"] == name).sum()) for name in SPLITS}
    return frame


def _drop_repeats(frame: pd.DataFrame, summary: ConversionSummary) -> pd.DataFrame:
    """Keep the first answer of a user to a prompt and unordered pair; count the repeats that agree or not."""
    a, b = frame["response_a"].to_numpy(object), frame["response_b"].to_numpy(object)
    swap = a > b
    value = frame["preference"].map(_LABEL_VALUE).to_numpy(float)
    key = pd.DataFrame(
        {
            "user": frame["user_id"].to_numpy(),
            "prompt": frame["prompt"].to_numpy(),
            "low": np.where(swap, b, a),
            "high": np.where(swap, a, b),
            "value": np.where(swap, 1.0 - value, value),
        }
    )
    columns = ["user", "prompt", "low", "high"]
    repeat = key.duplicated(columns, keep="first").to_numpy()
    first_value = key.groupby(columns, sort=False)["value"].transform("first").to_numpy()
    disagree = repeat & (key["value"].to_numpy() != first_value)
    summary.drop("repeated answers of a user to the same prompt and pair (first kept)", (repeat & ~disagree).sum())
    summary.drop("repeated answers contradicting the user's first answer (first kept)", disagree.sum())
    return frame[~repeat]


def _min_answers(frame: pd.DataFrame, n: int, summary: ConversionSummary, reason: str) -> pd.DataFrame:
    counts = frame.groupby("user_id")["user_id"].transform("size").to_numpy()
    few = counts < n
    summary.drop(reason.format(n=n), few.sum())
    return frame[~few]


def _after_split(frame: pd.DataFrame, n: int, summary: ConversionSummary) -> pd.DataFrame:
    """Seen users need ``n`` train answers; new users ``n`` pool+test answers with at least one of each."""
    split = frame["split"]
    per_user = pd.crosstab(frame["user_id"], split).reindex(columns=list(SPLITS), fill_value=0)
    seen = per_user["train"] > 0
    held = per_user["pool"] + per_user["test"]
    few_seen = seen & (per_user["train"] < n)
    bad_new = ~seen & ((held < n) | (per_user["pool"] == 0) | (per_user["test"] == 0))
    user = frame["user_id"]
    drop_seen = user.isin(per_user.index[few_seen]).to_numpy()
    drop_new = user.isin(per_user.index[bad_new]).to_numpy()
    summary.drop(f"answers of seen users left with fewer than {n} train answers", drop_seen.sum())
    summary.drop(
        f"answers of new users left without {n} pool+test answers including one of each", drop_new.sum()
    )
    return frame[~(drop_seen | drop_new)]


def write_answers(frame: pd.DataFrame, out_path: str | Path) -> Path:
    """Write converted answers as JSON lines (default), CSV or Parquet, by the file's suffix."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    suffix = out_path.suffix.lower()
    if suffix == ".csv":
        table = frame.copy()
        for column in ("true_features_a", "true_features_b"):
            if column in table.columns:
                table[column] = table[column].map(json.dumps)
        table.to_csv(tmp, index=False)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(tmp, index=False)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    else:
        raise ValueError(f"{out_path}: unsupported output type (use .jsonl, .csv or .parquet)")
    tmp.replace(out_path)
    return out_path
