"""MultiPref (Miranda et al. 2024, ``allenai/multipref``): four annotators per comparison, the evaluator is the user.

Each row is a prompt (``text``, ``prompt_id``) with two completions (``completion_a``, ``completion_b``)
and two lists of annotations, ``normal_worker_annotations`` and ``expert_worker_annotations``, each
with an ``evaluator`` id and preferences such as ``overall_pref`` (``A-is-clearly-better``,
``A-is-slightly-better``, ``Tie``, ``B-is-slightly-better``, ``B-is-clearly-better``). Strength is
not kept: slightly and clearly better are both a preference.
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
    require_fields,
)

ANNOTATOR_FIELDS = {"normal": "normal_worker_annotations", "expert": "expert_worker_annotations"}
ASPECTS = ("overall", "helpful", "truthful", "harmless")


def convert_multipref(
    source: str | Path,
    config: ConvertConfig | None = None,
    *,
    annotators: str = "all",
    aspect: str = "overall",
) -> tuple[pd.DataFrame, ConversionSummary]:
    """One answer per annotation. ``annotators``: all, normal or expert; ``aspect``: overall,
    helpful, truthful or harmless (which ``<aspect>_pref`` field is the answer)."""
    if annotators not in ("all", "normal", "expert"):
        raise ValueError(f"annotators must be 'all', 'normal' or 'expert', got {annotators!r}")
    if aspect not in ASPECTS:
        raise ValueError(f"aspect must be one of {ASPECTS}, got {aspect!r}")
    config, summary, rows = open_source("multipref", source, config)
    frame = multipref_answers(rows, summary, annotators=annotators, aspect=aspect)
    return finalize(frame, summary, config), summary


def multipref_answers(
    rows: list[dict], summary: ConversionSummary, annotators: str = "all", aspect: str = "overall"
) -> pd.DataFrame:
    """Candidate answers (before filters and split), one per annotation."""
    require_fields(rows, summary.source, ("text", "completion_a", "completion_b"), "MultiPref")
    kinds = list(ANNOTATOR_FIELDS) if annotators == "all" else [annotators]
    answers: list[dict] = []
    for row in rows:
        texts = {}
        for field in ("text", "completion_a", "completion_b"):
            texts[field], why = clean_text(row.get(field))
            if texts[field] is None:
                summary.drop(f"comparisons with an unusable {field} ({why})")
                break
        else:
            group = f"prompt:{clean_id(row.get('prompt_id')) or texts['text']}"
            found = 0
            for kind in kinds:
                for item in as_list(row.get(ANNOTATOR_FIELDS[kind])) or []:
                    found += 1
                    answer = _answer(as_dict(item), aspect, summary)
                    if answer is not None:
                        answers.append(
                            {"user_id": answer[0], "prompt": texts["text"], "response_a": texts["completion_a"],
                             "response_b": texts["completion_b"], "preference": answer[1], "group": group}
                        )
            if not found:
                summary.drop("comparisons without annotations")
    return pd.DataFrame(answers, columns=["user_id", "prompt", "response_a", "response_b", "preference", "group"])


def _answer(annotation: dict | None, aspect: str, summary: ConversionSummary) -> tuple[str, str] | None:
    if annotation is None:
        summary.drop("annotations that are not records")
        return None
    evaluator = clean_id(annotation.get("evaluator"))
    if evaluator is None:
        summary.drop("annotations without an evaluator id")
        return None
    value, _ = clean_text(annotation.get(f"{aspect}_pref"))
    label = None
    if value is not None:
        lowered = value.lower()
        label = "a" if lowered.startswith("a-is-") else "b" if lowered.startswith("b-is-") else "tie" if lowered == "tie" else None
    if label is None:
        summary.drop(f"annotations without a valid {aspect}_pref")
        return None
    return evaluator, label
