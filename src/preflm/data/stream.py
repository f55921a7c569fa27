"""Streamed reading of large answer files into an :class:`AnswerMatrix`, each text stored once.

Rows are read in chunks (Parquet row batches via pyarrow, JSONL/CSV via pandas, datasets in batches),
each chunk is validated by :func:`preflm.data.records.normalize_frame` (same rules and messages, rows
numbered within the whole file), and its texts, items and users are interned on the fly. What is kept
per answer is integer ids and a label, so memory grows by tens of bytes per answer rather than by the
size of its texts. The result equals ``AnswerMatrix.from_frame(load_preferences(path))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from preflm.data.matrix import AnswerMatrix
from preflm.data.records import SPLITS, DataError, normalize_frame, open_source

DEFAULT_CHUNK_ROWS = 262_144
_OPTIONAL = ("split", "true_reward_a", "true_reward_b", "true_features_a", "true_features_b")


def _file_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    suffix = path.suffix.lower()
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffix in (".jsonl", ".ndjson") or suffixes.endswith(".jsonl.gz"):
        with pd.read_json(path, lines=True, dtype=False, chunksize=chunk_rows) as reader:
            yield from reader
    elif suffix == ".json":
        with path.open() as handle:
            first = handle.read(4096).lstrip()[:1]
        if first != "[":
            with pd.read_json(path, lines=True, dtype=False, chunksize=chunk_rows) as reader:
                yield from reader
        else:
            frame = pd.read_json(path, dtype=False)
            for start in range(0, len(frame), chunk_rows):
                yield frame.iloc[start : start + chunk_rows]
    elif suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        with pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, chunksize=chunk_rows) as reader:
            yield from reader
    elif suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        if handle.metadata.num_rows == 0:
            yield handle.schema_arrow.empty_table().to_pandas()
        for batch in handle.iter_batches(batch_size=chunk_rows):
            yield pa.Table.from_batches([batch]).to_pandas()
    else:
        raise DataError(str(path), "unsupported file type (use .jsonl, .json, .csv, .tsv, .parquet or a datasets folder)")


def iter_chunks(source: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, hf_split: str = "train") -> Iterator[pd.DataFrame]:
    """Raw row chunks of a file, ``save_to_disk`` folder or ``hf:`` dataset (parse errors as :class:`DataError`)."""
    opened = open_source(source, hf_split)
    if not isinstance(opened, Path):
        yield from opened.to_pandas(batch_size=chunk_rows, batched=True)
        return
    chunks = _file_chunks(opened, chunk_rows)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except DataError:
            raise
        except (ValueError, OSError) as err:
            raise DataError(str(opened), f"cannot parse file: {err}") from None
        yield chunk


class _Interner:
    """Integer ids for values in order of first appearance; each chunk is hashed in C, new values once in Python."""

    def __init__(self) -> None:
        self.ids: dict = {}
        self.values: list = []

    def __call__(self, values: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(values)
        mapped = np.empty(len(uniques), dtype=np.int64)
        for index, value in enumerate(uniques.tolist()):
            known = self.ids.get(value)
            if known is None:
                known = self.ids[value] = len(self.values)
                self.values.append(value)
            mapped[index] = known
        return mapped[codes]


class _FirstSeen:
    """Row of each id's first appearance (``-1`` while unseen), over a stream of chunks."""

    def __init__(self) -> None:
        self.rows = np.empty(0, dtype=np.int64)

    def first_rows(self, n: int) -> np.ndarray:
        """First rows of ids ``0..n-1``."""
        rows = np.full(n, -1, dtype=np.int64)
        rows[: min(n, len(self.rows))] = self.rows[:n]
        return rows

    def update(self, codes: np.ndarray, offset: int) -> None:
        if len(codes) and codes.max() >= len(self.rows):
            grown = np.full(max(int(codes.max()) + 1, 2 * len(self.rows)), -1, dtype=np.int64)
            grown[: len(self.rows)] = self.rows
            self.rows = grown
        unique, first = np.unique(codes, return_index=True)
        unseen = self.rows[unique] < 0
        self.rows[unique[unseen]] = offset + first[unseen]


def read_answer_table(
    source: str | Path,
    user_column: str = "user_id",
    hf_split: str = "train",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_split: str | None = None,
    default_user: str | None = None,
) -> AnswerMatrix:
    """Stream answers from a file, ``save_to_disk`` folder or ``hf:<name>`` into an :class:`AnswerMatrix`.

    ``keep_split="train"`` keeps only rows of that split when the data has a split column (the rows
    read and the numbering in errors are those of the whole file). Raises :class:`DataError` naming
    the file, row and field on bad input, as :func:`preflm.data.load_preferences` does.
    """
    source_name = str(source)
    texts, items, users = _Interner(), _Interner(), _Interner()
    first_a, first_b = _FirstSeen(), _FirstSeen()
    parts: dict[str, list[np.ndarray]] = {"a": [], "b": [], "user": [], "label": [], "split": [], "diff": []}
    features = np.zeros((0, 0))
    set_by_b = np.zeros(0, dtype=bool)
    optional: tuple | None = None
    offset = kept = 0
    for raw in iter_chunks(source, chunk_rows, hf_split):
        if len(raw) == 0:
            continue
        try:
            chunk = normalize_frame(raw, source_name, user_column, default_user)
        except DataError as err:
            if err.row is None:
                raise
            raise DataError(source_name, err.detail, err.row + offset, err.field) from None
        present = tuple(c for c in _OPTIONAL if c in chunk.columns)
        if optional is None:
            optional = present
        elif present != optional:
            raise DataError(
                source_name, f"columns {sorted(set(present) ^ set(optional))} are present in some rows but not others", offset
            )
        rows = np.arange(offset, offset + len(chunk))
        if keep_split is not None and "split" in chunk.columns:
            keep = (chunk["split"] == keep_split).to_numpy()
            chunk, rows = chunk[keep], rows[keep]
        offset += len(raw)
        if len(chunk) == 0:
            continue
        prompt = texts(chunk["prompt"].to_numpy(dtype=object))
        response_a = texts(chunk["response_a"].to_numpy(dtype=object))
        response_b = texts(chunk["response_b"].to_numpy(dtype=object))
        code_a = items((prompt << 32) | response_a)
        code_b = items((prompt << 32) | response_b)
        same = code_a == code_b
        if same.any():
            raise DataError(source_name, "response_a and response_b are the same text", int(rows[same][0]), "response_b")
        first_a.update(code_a, kept)
        first_b.update(code_b, kept)
        kept += len(chunk)
        parts["a"].append(code_a.astype(np.int32))
        parts["b"].append(code_b.astype(np.int32))
        parts["user"].append(users(chunk["user_id"].to_numpy(dtype=object)).astype(np.int32))
        parts["label"].append(chunk["preference"].to_numpy(np.float32))
        if "split" in chunk.columns:
            parts["split"].append(pd.Categorical(chunk["split"], categories=SPLITS).codes.astype(np.int8))
        if "true_reward_a" in chunk.columns:
            parts["diff"].append(chunk["true_reward_a"].to_numpy(float) - chunk["true_reward_b"].to_numpy(float))
        if "true_features_a" in chunk.columns:
            rows_a = np.asarray(chunk["true_features_a"].tolist(), dtype=float)
            rows_b = np.asarray(chunk["true_features_b"].tolist(), dtype=float)
            if len(features) <= max(code_a.max(), code_b.max()):
                grown = np.zeros((len(items.values) * 2, rows_a.shape[1]))
                grown[: len(features), : features.shape[1]] = features
                features, set_by_b = grown, np.concatenate([set_by_b, np.zeros(len(grown) - len(set_by_b), bool)])
            from_a = ~set_by_b[code_a]
            features[code_a[from_a]] = rows_a[from_a]
            features[code_b] = rows_b
            set_by_b[code_b] = True
    if offset == 0:
        raise DataError(source_name, "no answers in the data")
    if kept == 0:
        raise DataError(source_name, f"the split column has no {keep_split!r} rows")

    # Number items as from_frame does: first appearance over all response_a texts, then all response_b texts.
    n_items = len(items.values)
    seen_a, seen_b = first_a.first_rows(n_items), first_b.first_rows(n_items)
    order = np.argsort(np.where(seen_a >= 0, seen_a, kept + seen_b), kind="stable")
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items)
    item_keys = np.asarray(items.values, dtype=np.int64)[order]
    text_table = np.empty(len(texts.values), dtype=object)
    text_table[:] = texts.values
    concat = lambda name: np.concatenate(parts[name]) if parts[name] else None  # noqa: E731
    split = concat("split")
    return AnswerMatrix.from_ids(
        item_prompts=text_table[item_keys >> 32],
        item_responses=text_table[item_keys & 0xFFFFFFFF],
        item_a=rank[concat("a")],
        item_b=rank[concat("b")],
        user=concat("user"),
        user_ids=np.asarray(users.values, dtype=object),
        preference=concat("label").astype(np.float64),
        split=split,
        split_labels=np.asarray(SPLITS, dtype=object) if split is not None else None,
        true_reward_diff=concat("diff"),
        item_true_features=features[:n_items][order] if features.size else None,
        source=source_name,
    )
