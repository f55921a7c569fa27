"""Reddit TL;DR comparisons (Stiennon et al. 2020, ``openai/summarize-from-feedback``): the labeler is the user.

Each comparison row has ``info`` (post ``id``, ``post``, ``title``, ``subreddit``; or ``article`` for
CNN/DM), two ``summaries`` (``text``, ``policy``), the ``choice`` (0 or 1), the ``worker`` and the
dataset's ``split`` (``train``, ``valid1``, ``valid2``). The prompt is the post in the usual TL;DR form
(``SUBREDDIT: r/...`` / ``TITLE: ...`` / ``POST: ...``). Reads the ``comparisons/batch*.json`` files as
downloaded (the download's root, whose ``axis_evals`` are skipped, the ``comparisons`` folder or one
file) or ``hf:openai/summarize_from_feedback`` (config ``comparisons``).

``workers="pal"`` reproduces the worker split of the PAL paper (Chen et al. 2025, after Li et al. 2024):
only comparisons between two supervised-policy summaries; the seen users are the 10 workers with the
most such comparisons on ``train`` posts, the new users the other workers with at least 100 on
validation posts; train posts are the seen side of the split, validation posts the held-out side.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from preflm.data.convert.common import (
    ConversionSummary,
    ConvertConfig,
    as_dict,
    as_float,
    as_list,
    clean_id,
    clean_text,
    finalize,
    open_source,
    require_fields,
)


def convert_tldr(
    source: str | Path,
    config: ConvertConfig | None = None,
    *,
    workers: str = "all",
    pal_seen_workers: int = 10,
    pal_min_unseen_answers: int = 100,
) -> tuple[pd.DataFrame, ConversionSummary]:
    """One answer per comparison, the worker as the user.

    ``workers``: ``all`` (users split at random by the config) or ``pal`` (the PAL paper's seen and
    unseen workers, sizes set by ``pal_seen_workers`` and ``pal_min_unseen_answers``).
    """
    if workers not in ("all", "pal"):
        raise ValueError(f"workers must be 'all' or 'pal', got {workers!r}")
    folder = Path(source) / "comparisons" if not str(source).startswith("hf:") else None
    root = folder if folder is not None and folder.is_dir() else source
    config, summary, rows = open_source("tldr", root, config, "comparisons")
    summary.source = str(source)
    frame = tldr_answers(rows, summary)
    if workers == "all":
        return finalize(frame, summary, config), summary
    summary.answers_built = len(frame)
    supervised = frame["supervised"].to_numpy(bool)
    summary.drop("PAL: comparisons not between two supervised-policy summaries", (~supervised).sum())
    frame = frame[supervised]
    on_train = frame.loc[~frame["heldout"], "user_id"].value_counts()
    ranked = sorted(on_train.items(), key=lambda item: (-item[1], item[0]))
    seen = {worker for worker, _ in ranked[:pal_seen_workers]}
    on_valid = frame.loc[frame["heldout"] & ~frame["user_id"].isin(seen), "user_id"].value_counts()
    new = set(on_valid.index[on_valid >= pal_min_unseen_answers])
    outside = ~frame["user_id"].isin(seen | new)
    summary.drop("PAL: answers of workers neither seen nor unseen", outside.sum())
    summary.notes.append(
        f"PAL worker split: {len(seen)} seen workers (most comparisons on train posts), {len(new)} unseen "
        f"workers (at least {pal_min_unseen_answers} comparisons on validation posts)"
    )
    return finalize(frame[~outside], summary, config, new_users=new, heldout_column="heldout"), summary


def tldr_answers(rows: list[dict], summary: ConversionSummary) -> pd.DataFrame:
    """Candidate answers, with ``heldout`` (a validation post) and ``supervised`` (both summaries from
    supervised policies) for the PAL split."""
    require_fields(rows, summary.source, ("info", "summaries", "choice", "worker"), "summarize-from-feedback comparisons")
    answers = [answer for answer in (_answer(row, summary) for row in rows) if answer is not None]
    return pd.DataFrame(
        answers,
        columns=["user_id", "prompt", "response_a", "response_b", "preference", "group", "heldout", "supervised"],
    )


def _answer(row: dict, summary: ConversionSummary) -> dict | None:
    worker = clean_id(row.get("worker"))
    if worker is None:
        summary.drop("comparisons without a worker id")
        return None
    info = as_dict(row.get("info"))
    prompt, why = _prompt(info) if info is not None else (None, "missing")
    if prompt is None:
        summary.drop(f"comparisons without a usable post ({why})")
        return None
    summaries = as_list(row.get("summaries"))
    if summaries is None or len(summaries) != 2:
        summary.drop("comparisons without exactly two summaries")
        return None
    texts, policies = [], []
    for item in summaries:
        record = as_dict(item)
        text, why = clean_text(record.get("text") if record is not None else item)
        if text is None:
            summary.drop(f"comparisons with an unusable summary text ({why})")
            return None
        texts.append(text)
        policies.append(str(record.get("policy") or "") if record is not None else "")
    choice = as_float(row.get("choice"))
    if choice not in (0.0, 1.0):
        summary.drop("comparisons without a valid choice (0 or 1)")
        return None
    split = str(row.get("split") or row.get("_hf_split") or "train").strip().lower()
    return {
        "user_id": worker,
        "prompt": prompt,
        "response_a": texts[0],
        "response_b": texts[1],
        "preference": "a" if choice == 0.0 else "b",
        "group": f"post:{clean_id(info.get('id')) or prompt}",
        "heldout": split != "train",
        "supervised": all("sup" in p and "ppo" not in p for p in policies),
    }


def _prompt(info: dict) -> tuple[str | None, str | None]:
    """The post (or article) in the TL;DR query form; optional title and subreddit lines."""
    post, why = clean_text(info.get("post"))
    body_label = "POST"
    if post is None:
        article, _ = clean_text(info.get("article"))
        if article is None:
            return None, why
        post, body_label = article, "ARTICLE"
    lines = []
    subreddit, _ = clean_text(info.get("subreddit"))
    title, _ = clean_text(info.get("title"))
    if subreddit is not None:
        lines.append(f"SUBREDDIT: r/{subreddit}")
    if title is not None:
        lines.append(f"TITLE: {title}")
    lines.append(f"{body_label}: {post}")
    return "\n".join(lines), None
