"""Prompt and content bank of the Attributes world, read from ``data/bank.json``.

Each prompt carries a question and a short neutral core answer (2-4 factual
sentences, the first one answering on its own). The neutral content avoids
the scorers' marker words so that an unstyled answer scores near 0 on every
attribute; style transforms then add the markers. Prompt ids are
``"<topic>.<slug>"`` and never depend on list position, so they stay stable.

``bank.json`` holds ``{"topics": {topic: {"prompts": [{"slug", "question",
"content"}], "extras", "followups", "quips"}}, "generic_extras": [...]}``:
the topic's prompts, then the sentences a long answer may append, the
follow-up questions and the topic jokes that style transforms draw from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .tables import field, load_table, strings

__all__ = [
    "PromptEntry",
    "PROMPTS",
    "TOPICS",
    "TOPIC_EXTRAS",
    "GENERIC_EXTRAS",
    "TOPIC_FOLLOWUPS",
    "TOPIC_QUIPS",
    "get_prompt",
    "load_bank",
]

BANK_FILE = "bank.json"


@dataclass(frozen=True)
class PromptEntry:
    """A user prompt and its neutral core answer sentences."""

    prompt_id: str
    topic: str
    question: str
    content: tuple[str, ...]


Phrases = tuple[str, ...]


def load_bank(root: Path | None = None) -> tuple[list[PromptEntry], dict[str, dict[str, Phrases]], Phrases]:
    """Read ``bank.json`` from ``root`` (default: package data).

    Returns (prompts in file order, per-topic ``extras``/``followups``/``quips``, generic extras).
    """
    table = load_table(BANK_FILE, root)
    topics = field(table, "topics", BANK_FILE)
    if not isinstance(topics, dict) or not topics:
        raise ValueError(f"{BANK_FILE}: 'topics' must be a non-empty object of topic name -> table")
    prompts: list[PromptEntry] = []
    phrases: dict[str, dict[str, Phrases]] = {}
    for topic, spec in topics.items():
        where = f"{BANK_FILE}: topic {topic!r}"
        rows = field(spec, "prompts", where)
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{where}: 'prompts' must be a non-empty list")
        for i, row in enumerate(rows):
            at = f"{where} prompt {i}"
            slug, question = field(row, "slug", at), field(row, "question", at)
            if not (isinstance(slug, str) and slug and isinstance(question, str) and question):
                raise ValueError(f"{at}: 'slug' and 'question' must be non-empty strings")
            prompts.append(PromptEntry(f"{topic}.{slug}", topic, question, strings(row, "content", at)))
        phrases[topic] = {key: strings(spec, key, where) for key in ("extras", "followups", "quips")}
    ids = [p.prompt_id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{BANK_FILE}: duplicate prompt ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return prompts, phrases, strings(table, "generic_extras", BANK_FILE)


PROMPTS, _PHRASES, GENERIC_EXTRAS = load_bank()
TOPICS: list[str] = list(_PHRASES)
TOPIC_EXTRAS = {topic: p["extras"] for topic, p in _PHRASES.items()}
TOPIC_FOLLOWUPS = {topic: p["followups"] for topic, p in _PHRASES.items()}
TOPIC_QUIPS = {topic: p["quips"] for topic, p in _PHRASES.items()}

_BY_ID = {p.prompt_id: p for p in PROMPTS}


def get_prompt(prompt_id: str) -> PromptEntry:
    """Look up a prompt by its stable id, e.g. ``"cooking.fluffy-rice"``."""
    return _BY_ID[prompt_id]
