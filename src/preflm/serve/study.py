"""Blind A/B studies: the default answer (greedy) against the personalized one (best-of-N by the
participant's reward), sides and order randomized per participant, and the report with its interval.

The win rate is personalized wins / (wins + losses); ties are counted and reported beside it, not
split. Its 95% interval is Wilson's score interval (:func:`wilson_interval`), used by the admin page
and ``preflm study report`` alike.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, insert, select, update

from preflm.serve import models, store
from preflm.serve.db import read_transaction, write_transaction

CHOICES = ("personalized", "default", "tie")
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class AnswerPair:
    """The default (greedy) answer, the personalized best of n, and every candidate with its reward."""

    default: str
    personalized: str
    candidates: list[str]
    rewards: list[float]


def answer_pair(generator, service, weights: np.ndarray, prompt: str, n: int, lock) -> AnswerPair:
    """Generate both answers for one prompt; generator errors propagate (the page turns them into 502)."""
    from preflm.generate import GenerationConfig

    with lock:
        default = generator.generate([prompt], n=1, config=GenerationConfig(temperature=0.0))[0]
        candidates = generator.generate([prompt], n=n, config=GenerationConfig())[0]
    if not default or not candidates:
        raise ValueError(f"generator {generator.name} returned no answer")
    rewards = service.base_rewards([prompt] * len(candidates), candidates) @ weights
    return AnswerPair(default[0], candidates[int(np.argmax(rewards))], list(candidates), rewards.tolist())


def read_prompts(path) -> list[str]:
    """Study prompts: a text file with one prompt a line, or a CSV/JSONL with a ``prompt`` column."""
    from pathlib import Path

    import pandas as pd

    path = Path(path)
    if path.suffix in (".csv", ".jsonl", ".json"):
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_json(path, lines=path.suffix == ".jsonl")
        if "prompt" not in frame.columns:
            raise store.StoreError(f"{path}: no 'prompt' column (columns: {', '.join(map(str, frame.columns))})")
        prompts = [str(p).strip() for p in frame["prompt"]]
    else:
        prompts = [line.strip() for line in path.read_text().splitlines()]
    prompts = [p for p in prompts if p]
    if not prompts:
        raise store.StoreError(f"{path}: no prompts")
    return prompts


MAX_CANDIDATES = 32
MAX_PROMPT_CHARS = 8000


def create_study(engine: Engine, prompts: list[str], num_candidates: int, budget: int, participants: int,
                 expires_hours: float = 24 * 14) -> tuple[str, list[tuple[str, str]]]:
    """(study id, [(participant user id, invite token)]): one new user and one invite per participant."""
    from preflm.serve.invites import create_invite

    if not 2 <= num_candidates <= MAX_CANDIDATES or budget < 1 or participants < 1 or not prompts:
        raise store.StoreError(
            f"a study needs prompts, 2 <= num_candidates <= {MAX_CANDIDATES}, budget >= 1 and participants >= 1"
        )
    if max(len(p) for p in prompts) > MAX_PROMPT_CHARS:
        raise store.StoreError(f"study prompts are limited to {MAX_PROMPT_CHARS} characters each")
    study_id = uuid.uuid4().hex[:12]
    with write_transaction(engine) as conn:
        conn.execute(insert(models.studies).values(id=study_id, prompts=json.dumps(prompts),
                                                   num_candidates=num_candidates, budget=budget))
    links = []
    for k in range(participants):
        user_id, token = create_invite(engine, f"{study_id}-p{k + 1}", expires_hours, study_id)
        with write_transaction(engine) as conn:
            conn.execute(insert(models.participants).values(study_id=study_id, user_id=user_id))
        links.append((user_id, token))
    return study_id, links


def get_study(engine: Engine, study_id: str):
    with read_transaction(engine) as conn:
        row = conn.execute(select(models.studies).where(models.studies.c.id == study_id)).first()
    if row is None:
        raise store.NotFound(f"no study {study_id!r}")
    return row


def list_studies(engine: Engine) -> list:
    with read_transaction(engine) as conn:
        return conn.execute(select(models.studies).order_by(models.studies.c.created_at)).all()


def _plan(study_id: str, user_id: str, n_prompts: int) -> tuple[np.ndarray, np.ndarray]:
    """The participant's prompt order and sides (personalized on the left?), fixed by a hash of both ids."""
    seed = int(hashlib.sha256(f"{study_id}/{user_id}".encode()).hexdigest()[:16], 16)
    rng = np.random.default_rng(seed)
    return rng.permutation(n_prompts), rng.integers(0, 2, n_prompts).astype(bool)


@dataclass
class Pending:
    """The next pair a participant judges, or ``None`` fields once all are judged."""

    judgment_id: int | None
    prompt: str | None
    left: str | None
    right: str | None
    position: int
    total: int


def next_pair(engine: Engine, study, user_id: str, make_pair) -> Pending:
    """The participant's next unjudged prompt; its answers are generated once (by ``make_pair(prompt)``) and stored."""
    prompts = json.loads(study.prompts)
    order, left = _plan(study.id, user_id, len(prompts))
    j = models.judgments.c
    with read_transaction(engine) as conn:
        rows = {r.prompt_index: r for r in conn.execute(
            select(models.judgments).where(j.study_id == study.id, j.user_id == user_id)).all()}
    for position, index in enumerate(order.tolist()):
        row = rows.get(index)
        if row is not None and row.choice is not None:
            continue
        if row is None:
            pair = make_pair(prompts[index])
            with write_transaction(engine) as conn:
                existing = conn.execute(select(models.judgments).where(
                    j.study_id == study.id, j.user_id == user_id, j.prompt_index == index)).first()
                if existing is None:
                    conn.execute(insert(models.judgments).values(
                        study_id=study.id, user_id=user_id, prompt_index=index, position=position,
                        personalized_left=bool(left[index]), default_text=pair.default, personalized_text=pair.personalized,
                    ))
                row = conn.execute(select(models.judgments).where(
                    j.study_id == study.id, j.user_id == user_id, j.prompt_index == index)).first()
        a, b = (row.personalized_text, row.default_text) if row.personalized_left else (row.default_text, row.personalized_text)
        return Pending(row.id, prompts[index], a, b, position, len(prompts))
    return Pending(None, None, None, None, len(prompts), len(prompts))


def record_judgment(engine: Engine, study_id: str, user_id: str, judgment_id: int, side: str, comment: str | None) -> str:
    """Store 'left' / 'right' / 'tie' as personalized / default / tie; a second judgment of the pair is refused."""
    if side not in ("left", "right", "tie"):
        raise store.StoreError(f"choice must be left, right or tie, not {side!r}")
    j = models.judgments.c
    with write_transaction(engine) as conn:
        row = conn.execute(select(models.judgments).where(
            j.id == judgment_id, j.study_id == study_id, j.user_id == user_id).with_for_update()).first()
        if row is None:
            raise store.NotFound(f"no pair {judgment_id} for this participant")
        if row.choice is not None:
            raise store.Conflict("this pair was already judged")
        choice = "tie" if side == "tie" else ("personalized" if (side == "left") == row.personalized_left else "default")
        conn.execute(update(models.judgments).where(j.id == judgment_id).values(
            choice=choice, comment=(comment or "").strip()[:2000] or None, judged_at=time.time()))
    return choice


def _summary(choices: list[str]) -> dict:
    wins, losses, ties = (sum(c == name for c in choices) for name in CHOICES)
    low, high = wilson_interval(wins, wins + losses)
    return {"wins": wins, "losses": losses, "ties": ties, "judgments": len(choices),
            "win_rate": wins / (wins + losses) if wins + losses else None, "ci_low": low, "ci_high": high}


def study_report(engine: Engine, study_id: str) -> dict:
    """Win rate of the personalized answer (ties apart) with Wilson 95%, per prompt and per participant."""
    study = get_study(engine, study_id)
    prompts = json.loads(study.prompts)
    j = models.judgments.c
    with read_transaction(engine) as conn:
        rows = conn.execute(select(models.judgments).where(j.study_id == study_id, j.choice.is_not(None))
                            .order_by(j.user_id, j.position)).all()
        members = [r.user_id for r in conn.execute(select(models.participants.c.user_id).where(
            models.participants.c.study_id == study_id).order_by(models.participants.c.user_id)).all()]
    per_prompt = [{"prompt_index": i, "prompt": p, **_summary([r.choice for r in rows if r.prompt_index == i])}
                  for i, p in enumerate(prompts)]
    per_participant = [{"participant": u, **_summary([r.choice for r in rows if r.user_id == u])} for u in members]
    judgments = [{"participant": r.user_id, "prompt_index": r.prompt_index, "prompt": prompts[r.prompt_index],
                  "position": r.position, "personalized_side": "left" if r.personalized_left else "right",
                  "choice": r.choice, "comment": r.comment or "", "default": r.default_text,
                  "personalized": r.personalized_text, "judged_at": r.judged_at} for r in rows]
    return {"study_id": study_id, "num_candidates": study.num_candidates, "budget": study.budget,
            "prompts": len(prompts), "participants": len(members), "interval": "Wilson 95%, ties excluded",
            "overall": _summary([r.choice for r in rows]), "per_prompt": per_prompt,
            "per_participant": per_participant, "judgments": judgments}


CSV_COLUMNS = ["participant", "prompt_index", "prompt", "position", "personalized_side", "choice", "comment",
               "default", "personalized", "judged_at"]


def report_csv(report: dict) -> str:
    """One row per stored judgment."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["judgments"])
    return out.getvalue()
