"""Append-only answer journal: every onboarding answer is on disk the moment it is given.

One JSON object per line (JSONL). The first line is a header naming the user, the model (``model_id``)
and the question pool (a hash of its texts); each later line is one answer ``{"question", "preference",
...}``. Each line is flushed and fsynced before :meth:`AnswerJournal.append` returns, so Ctrl-C, end of
input or a crash loses at most the answer being written. A last line cut off mid-write (no newline, not
valid JSON) was never acknowledged: it is ignored when read and cut before the next append.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

JOURNAL_KIND = "preflm-answer-journal"
JOURNAL_VERSION = 1


class JournalError(ValueError):
    """A journal that cannot be read or does not belong to this session; the message names file and line."""


def pool_fingerprint(prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]) -> str:
    """Hash of a question pool's texts, in order (question indices in a journal refer to this order)."""
    digest = hashlib.sha256()
    for texts in zip(prompts, responses_a, responses_b):
        digest.update(json.dumps(list(texts)).encode())
    return digest.hexdigest()[:16]


class AnswerJournal:
    """One session's answers, appended line by line to ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _scan(self) -> tuple[list[dict], int]:
        """Records of the complete lines and the byte length they span (a torn last line excluded)."""
        if not self.path.exists():
            return [], 0
        data = self.path.read_bytes()
        records, offset = [], 0
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, 1):
            is_last = number == len(lines)
            if is_last and not raw.strip():
                break
            try:
                record = json.loads(raw.decode("utf-8")) if raw.strip() else None
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                if is_last:
                    break
                raise JournalError(f"{self.path}, line {number}: not a JSON record ({err})") from None
            if record is not None and not isinstance(record, dict):
                raise JournalError(f"{self.path}, line {number}: expected a JSON object, got {type(record).__name__}")
            if record is not None:
                records.append(record)
            offset += len(raw) + (0 if is_last else 1)
        return records, offset

    def read(self) -> tuple[dict | None, list[dict]]:
        """(header or None when the journal is new/empty, answers in the order given)."""
        records, _ = self._scan()
        if not records:
            return None, []
        header = records[0]
        if header.get("kind") != JOURNAL_KIND:
            raise JournalError(f"{self.path}, line 1: not a preflm answer journal (no {JOURNAL_KIND!r} header)")
        if header.get("version") != JOURNAL_VERSION:
            raise JournalError(f"{self.path}: journal version {header.get('version')!r} is not supported")
        for number, answer in enumerate(records[1:], 2):
            if not isinstance(answer.get("question"), int) or answer.get("preference") not in (0, 0.5, 1):
                raise JournalError(f"{self.path}, line {number}: an answer needs an integer question and a preference 1, 0 or 0.5")
        return header, records[1:]

    def open(self, header: dict) -> list[dict]:
        """Start the journal (writing ``header``) or resume it: check it was written for the same session.

        ``header`` holds ``user_id``, ``model_id`` and ``pool`` (see :func:`pool_fingerprint`); any that
        differ from the recorded ones raise :class:`JournalError`. Returns the recorded answers.
        """
        header = {"kind": JOURNAL_KIND, "version": JOURNAL_VERSION, **header}
        recorded, answers = self.read()
        if recorded is None:
            self._append_line(header)
            return []
        for key in ("user_id", "model_id", "pool"):
            if recorded.get(key) != header.get(key):
                raise JournalError(
                    f"{self.path} was written for {key} {recorded.get(key)!r}, not {header.get(key)!r}: "
                    "resume with the same user, model and questions, or start a new journal"
                )
        return answers

    def append(self, answer: dict) -> None:
        """Add one answer and force it to disk before returning."""
        self._append_line(answer)

    def _append_line(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _, valid = self._scan()
        with open(self.path, "ab") as handle:
            if handle.tell() != valid:
                handle.truncate(valid)
            if valid and not self._ends_with_newline(valid):
                line = b"\n" + line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self, length: int) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(length - 1)
            return handle.read(1) == b"\n"
