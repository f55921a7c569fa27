"""PRISM (Kirk et al. 2024, ``HannahRoseKirk/prism-alignment``): each user's 1-100 scores of model responses.

In every turn of a conversation a participant scores several responses to their own prompt (four
models in the opening turn, two samples of the chosen model after it). Each pair of scored responses
in a turn becomes one answer of that user: the higher score wins, equal scores are a tie.

Reads ``conversations.jsonl`` (one conversation per row, turns in ``conversation_history`` with
``turn, role, content, score, if_chosen, within_turn_id``) or the long ``utterances.jsonl`` (one scored
response per row with ``user_prompt, model_response, score``). With ``history`` (default) a later turn's
prompt carries the conversation before it (``user: ...`` / ``assistant: ...`` lines, the response the
participant chose as the assistant's), since "can you elaborate?" means nothing on its own. All turns
of a conversation fall on one side of the unseen-prompt split.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from preflm.data.convert.common import (
    ConversionSummary,
    ConvertConfig,
    as_float,
    as_list,
    clean_id,
    clean_text,
    finalize,
    open_source,
    render_messages,
)
from preflm.data.records import DataError

MODEL_ROLES = ("model", "assistant")


def convert_prism(
    source: str | Path,
    config: ConvertConfig | None = None,
    *,
    history: bool = True,
    turns: str = "all",
    tie_margin: float = 0.0,
) -> tuple[pd.DataFrame, ConversionSummary]:
    """Pairwise answers per PRISM user from the within-turn scores.

    ``turns``: ``all`` or ``first`` (opening turns only: four different models). Scores within
    ``tie_margin`` of each other (difference <= tie_margin) are a tie (0: only equal scores).
    """
    if turns not in ("all", "first"):
        raise ValueError(f"turns must be 'all' or 'first', got {turns!r}")
    config, summary, rows = open_source("prism", source, config, "conversations", ("conversations.jsonl", "utterances.jsonl"))
    frame = prism_answers(rows, summary, history=history, turns=turns, tie_margin=tie_margin)
    return finalize(frame, summary, config), summary


def prism_answers(
    rows: list[dict], summary: ConversionSummary, history: bool = True, turns: str = "all", tie_margin: float = 0.0
) -> pd.DataFrame:
    """Candidate answers (before filters and split) from conversation or utterance rows."""
    if not rows:
        raise DataError(summary.source, "no rows in the source")
    if "conversation_history" in rows[0]:
        conversations = rows
    elif "model_response" in rows[0]:
        conversations = _conversations_from_utterances(rows, summary)
    else:
        raise DataError(
            summary.source,
            "not PRISM conversations (field 'conversation_history') or utterances (field 'model_response'); "
            f"found {sorted(rows[0])}",
            0,
        )
    answers: list[dict] = []
    for index, conversation in enumerate(conversations):
        answers.extend(_conversation_answers(conversation, index, summary, history, turns == "first", tie_margin))
    return pd.DataFrame(answers, columns=["user_id", "prompt", "response_a", "response_b", "preference", "group"])


def _conversations_from_utterances(rows: list[dict], summary: ConversionSummary) -> list[dict]:
    """Regroup the long format (one scored response per row) into conversations with a history."""
    grouped: dict[str, dict] = {}
    prompts_seen: set[tuple[str, int]] = set()
    for row in rows:
        conversation_id = clean_id(row.get("conversation_id"))
        if conversation_id is None:
            summary.drop("utterances without a conversation id")
            continue
        conversation = grouped.setdefault(
            conversation_id,
            {"conversation_id": conversation_id, "user_id": row.get("user_id"), "conversation_history": []},
        )
        turn = row.get("turn")
        if (conversation_id, turn) not in prompts_seen:
            prompts_seen.add((conversation_id, turn))
            conversation["conversation_history"].append({"turn": turn, "role": "user", "content": row.get("user_prompt")})
        conversation["conversation_history"].append(
            {
                "turn": turn,
                "role": "model",
                "content": row.get("model_response"),
                "score": row.get("score"),
                "if_chosen": row.get("if_chosen"),
                "within_turn_id": row.get("within_turn_id"),
            }
        )
    return list(grouped.values())


def _conversation_answers(
    conversation: dict, index: int, summary: ConversionSummary, history: bool, first_only: bool, tie_margin: float
) -> list[dict]:
    user = clean_id(conversation.get("user_id"))
    if user is None:
        summary.drop("conversations without a user id")
        return []
    entries = as_list(conversation.get("conversation_history"))
    if not entries:
        summary.drop("conversations without a conversation history")
        return []
    group = f"conversation:{clean_id(conversation.get('conversation_id')) or index}"
    by_turn: dict[int, list[dict]] = defaultdict(list)
    for entry in entries:
        turn = as_float(entry.get("turn")) if isinstance(entry, dict) else None
        if turn is None:
            summary.drop("history entries that are not a turn's message (no object or no turn number)")
            continue
        by_turn[int(turn)].append(entry)
    answers: list[dict] = []
    context: list[tuple[str, str]] = []
    ordered = sorted(by_turn)
    for position, turn in enumerate(ordered):
        if first_only and position > 0:
            break
        entries = by_turn[turn]
        user_texts = [clean_text(e.get("content")) for e in entries if e.get("role") == "user"]
        prompt_text, why = user_texts[0] if len(user_texts) == 1 else (None, f"{len(user_texts)} user messages")
        if prompt_text is None:
            summary.drop(f"turns dropped at a turn without a usable user prompt ({why})", len(ordered) - position)
            break
        scored, texts = [], []
        for order, entry in enumerate(e for e in entries if e.get("role") in MODEL_ROLES):
            text, why = clean_text(entry.get("content"))
            if text is None:
                summary.drop(f"model responses without usable text ({why})")
                continue
            score = as_float(entry.get("score"))
            position_key = as_float(entry.get("within_turn_id"))
            texts.append((text, score, _is_true(entry.get("if_chosen"))))
            if score is None:
                summary.drop("model responses without a score")
                continue
            scored.append((order if position_key is None else position_key, text, score))
        prompt = render_messages(context + [("user", prompt_text)]) if history and context else prompt_text
        if len(scored) < 2:
            summary.drop("turns with fewer than two scored responses")
        scored.sort(key=lambda item: item[0])
        for i in range(len(scored)):
            for j in range(i + 1, len(scored)):
                gap = scored[i][2] - scored[j][2]
                label = "tie" if abs(gap) <= tie_margin else ("a" if gap > 0 else "b")
                answers.append(
                    {"user_id": user, "prompt": prompt, "response_a": scored[i][1], "response_b": scored[j][1],
                     "preference": label, "group": group}
                )
        if history:
            reply = _chosen_reply(texts)
            if reply is None and position + 1 < len(ordered):
                summary.drop("turns dropped after a turn without a usable model response", len(ordered) - position - 1)
                break
            context += [("user", prompt_text), ("assistant", reply)]
    return answers


def _is_true(value) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() == "true")


def _chosen_reply(texts: list[tuple[str, float | None, bool]]) -> str | None:
    """The response the conversation continued with: the one marked chosen, else the best scored."""
    for text, _, chosen in texts:
        if chosen:
            return text
    scored = [(score, text) for text, score, _ in texts if score is not None]
    return max(scored)[1] if scored else (texts[0][0] if texts else None)
