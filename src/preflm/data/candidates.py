"""Candidate responses to rank, read from a file: a JSON list of strings, or one candidate per line."""

from __future__ import annotations

import json
from pathlib import Path

from preflm.data.records import DataError


def parse_candidates(text: str, source: str = "<candidates>") -> list[str]:
    """Candidates from text: a JSON list (when it starts with ``[``) or one per non-blank line.

    Every candidate must be a non-empty string; anything else is a :class:`DataError` naming the entry.
    """
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(source, f"not a valid JSON list ({err.msg} at line {err.lineno}, column {err.colno})") from None
        if not isinstance(values, list):
            raise DataError(source, f"expected a JSON list of strings, got {type(values).__name__}")
        for row, value in enumerate(values):
            if not isinstance(value, str):
                raise DataError(source, f"candidate must be a string, got {type(value).__name__}", row)
            if not value.strip():
                raise DataError(source, "empty candidate", row)
        candidates = values
    else:
        candidates = [line for line in text.splitlines() if line.strip()]
    if not candidates:
        raise DataError(source, "no candidates in the file")
    return candidates


def load_candidates(path: str | Path) -> list[str]:
    """Read candidates from ``path`` (UTF-8); a missing, unreadable or malformed file is a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found" if not path.exists() else "not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(str(path), f"not UTF-8 text (bad byte at offset {err.start})") from None
    return parse_candidates(text, str(path))
