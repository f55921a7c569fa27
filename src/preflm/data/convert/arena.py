"""Chatbot Arena conversations (Zheng et al. 2023, ``lmsys/chatbot_arena_conversations``): the judge is the user.

Each battle has ``judge``, ``winner`` (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``) and two
conversations ``conversation_a`` / ``conversation_b`` (lists of ``{role, content}``) on the same user
messages. A one-turn battle is the prompt and the two replies. Multi-turn battles are left out by
default (the vote judges the whole exchange); with ``multi_turn`` the prompt is the first user message
and each response the rest of its conversation as ``role: text`` lines.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from preflm.data.convert.common import (
    ConversionSummary,
    ConvertConfig,
    as_dict,
    as_list,
    clean_id,
    clean_text,
    finalize,
    open_source,
    render_messages,
    require_fields,
)

WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "tie"}


def convert_arena(
    source: str | Path,
    config: ConvertConfig | None = None,
    *,
    multi_turn: bool = False,
    language: str | None = None,
) -> tuple[pd.DataFrame, ConversionSummary]:
    """One answer per battle. ``language`` (e.g. ``English``) keeps only battles in that language."""
    config, summary, rows = open_source("arena", source, config)
    frame = arena_answers(rows, summary, multi_turn=multi_turn, language=language)
    return finalize(frame, summary, config), summary


def arena_answers(
    rows: list[dict], summary: ConversionSummary, multi_turn: bool = False, language: str | None = None
) -> pd.DataFrame:
    """Candidate answers (before filters and split), one per battle."""
    require_fields(rows, summary.source, ("judge", "winner", "conversation_a", "conversation_b"), "Chatbot Arena")
    answers = [answer for answer in (_answer(row, summary, multi_turn, language) for row in rows) if answer]
    return pd.DataFrame(answers, columns=["user_id", "prompt", "response_a", "response_b", "preference", "group"])


def _answer(row: dict, summary: ConversionSummary, multi_turn: bool, language: str | None) -> dict | None:
    if language is not None and str(row.get("language") or "").strip().lower() != language.strip().lower():
        summary.drop(f"battles not in {language}")
        return None
    judge = clean_id(row.get("judge"))
    if judge is None:
        summary.drop("battles without a judge id")
        return None
    label = WINNERS.get(str(row.get("winner") or "").strip().lower())
    if label is None:
        summary.drop("battles without a valid winner")
        return None
    sides = []
    for field in ("conversation_a", "conversation_b"):
        messages, why = _messages(row.get(field))
        if messages is None:
            summary.drop(f"battles with an unusable conversation ({why})")
            return None
        sides.append(messages)
    users = [[text for role, text in side if role == "user"] for side in sides]
    if users[0] != users[1] or not users[0]:
        summary.drop("battles whose two conversations differ in the user's messages")
        return None
    if any(side[0][0] != "user" or len(side) < 2 for side in sides):
        summary.drop("battles whose conversations do not open with a user message and a reply")
        return None
    if len(users[0]) > 1 and not multi_turn:
        summary.drop("multi-turn battles (multi_turn=true keeps them)")
        return None
    replies = [side[1][1] if len(side) == 2 else render_messages(side[1:]) for side in sides]
    return {
        "user_id": judge,
        "prompt": users[0][0],
        "response_a": replies[0],
        "response_b": replies[1],
        "preference": label,
        "group": f"question:{clean_id(row.get('question_id')) or users[0][0]}",
    }


def _messages(value) -> tuple[list[tuple[str, str]] | None, str | None]:
    """``(role, text)`` messages of a conversation field, or None and the reason it is unusable."""
    items = as_list(value)
    if not items:
        return None, "missing or empty"
    messages = []
    for item in items:
        record = as_dict(item)
        if record is None:
            return None, "a message is not a record"
        text, why = clean_text(record.get("content"))
        if text is None:
            return None, f"message text {why}"
        role = str(record.get("role") or "").strip().lower()
        messages.append(("user" if role in ("user", "human") else "assistant", text))
    return messages, None
