"""Read the Attributes world's JSON data tables (``preflm/simulate/data``).

The prompt bank and the style phrase tables are package data, read through
``importlib.resources`` so that a wheel install finds them as well as an
editable one. Readers fail with a ``ValueError`` naming the file and the
place in it, never with a bare ``KeyError`` deep inside a transform.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["DATA_DIR", "field", "load_table", "strings"]

DATA_DIR: Traversable = files(__package__) / "data"


def load_table(name: str, root: Traversable | Path | None = None) -> dict:
    """The JSON object in file ``name`` of ``root`` (default: the package's data folder)."""
    path = (DATA_DIR if root is None else root) / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"data table {name} is missing (looked for {path})") from None
    try:
        table = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(table, dict):
        raise ValueError(f"{name}: expected a JSON object at the top, got {type(table).__name__}")
    return table


def field(obj, key: str, where: str):
    """``obj[key]``, or a ``ValueError`` saying that ``where`` lacks it."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    return obj[key]


def strings(obj, key: str, where: str) -> tuple[str, ...]:
    """``obj[key]`` as a tuple of strings; it must be a non-empty list of non-empty strings."""
    value = field(obj, key, where)
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: field {key!r} must be a non-empty list of strings, got {value!r:.80}")
    for i, s in enumerate(value):
        if not isinstance(s, str) or not s:
            raise ValueError(f"{where}: field {key!r} row {i} must be a non-empty string, got {s!r:.80}")
    return tuple(value)
