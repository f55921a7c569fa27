"""Onboarding one new user: ask the most informative question, record the answer, refit lambda."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from scipy.special import expit

from preflm.data.records import parse_preference
from preflm.factorize.users import fit_user_weights
from preflm.onboard.journal import AnswerJournal, JournalError, pool_fingerprint
from preflm.onboard.profile import UserProfile
from preflm.onboard.select import QuestionSelector, get_selector


def posterior_spread(covariance: np.ndarray, prior_precision: np.ndarray) -> float:
    """sqrt(trace(posterior covariance) / trace(prior covariance)) of a user's weights.

    1 before any answer (only the population is known), towards 0 as answers pin the weights down: the
    share of the population's spread of tastes still unknown for this user (not prediction accuracy).
    """
    return float(np.sqrt(np.trace(covariance) / np.trace(np.linalg.inv(prior_precision))))


class OnboardingSession:
    """State of one user's onboarding over a pool of candidate questions.

    ``z`` holds Delta phi of each candidate pair; texts (``questions``) are optional so the same class
    serves the terminal, the service and simulations on numeric features. With
    :meth:`attach_journal` every answer is also appended to an on-disk journal as it is recorded, and
    an interrupted session resumes from it.
    """

    def __init__(
        self,
        z: np.ndarray,
        prior_mean: np.ndarray,
        prior_precision: np.ndarray,
        selector: str | QuestionSelector = "active",
        questions: pd.DataFrame | None = None,
        user_id: str = "new-user",
        model_path: str | None = None,
        seed: int = 0,
        model_id: str | None = None,
    ):
        self.z = np.asarray(z, dtype=np.float64)
        if self.z.ndim != 2 or len(self.z) == 0:
            raise ValueError("need a non-empty (n_candidates, J) array of pair differences")
        bad = np.flatnonzero(~np.isfinite(self.z).all(axis=1))
        if bad.size:
            raise ValueError(f"pair differences of {bad.size} question(s) hold NaN or inf (first: question {bad[0]})")
        self.prior_mean = np.asarray(prior_mean, dtype=np.float64)
        self.prior_precision = np.asarray(prior_precision, dtype=np.float64)
        if not (np.isfinite(self.prior_mean).all() and np.isfinite(self.prior_precision).all()):
            raise ValueError("the prior mean or precision holds NaN or inf")
        self.selector = get_selector(selector) if isinstance(selector, str) else selector
        self.questions = questions
        self.user_id, self.model_path, self.model_id = user_id, model_path, model_id
        self.journal: AnswerJournal | None = None
        self.rng = np.random.default_rng(seed)
        self.asked: list[int] = []
        self.labels: list[float] = []
        self.weights = self.prior_mean.copy()
        self.covariance = np.linalg.inv(self.prior_precision)

    @classmethod
    def from_questions(cls, model, questions: pd.DataFrame, featurizer=None, **kwargs) -> "OnboardingSession":
        """Pool from a table with ``prompt, response_a, response_b`` and a fitted RewardFactorization."""
        questions = questions.reset_index(drop=True)
        kwargs.setdefault("model_id", model.model_id)
        if featurizer is not None:
            prompts = list(questions["prompt"]) * 2
            phi = model.base_rewards(featurizer.transform(prompts, list(questions["response_a"]) + list(questions["response_b"])))
            z = phi[: len(questions)] - phi[len(questions) :]
        else:
            z = model.text_pair_differences(questions["prompt"], questions["response_a"], questions["response_b"])
        return cls(z, model.prior_mean_, model.prior_precision(), questions=questions, **kwargs)

    @property
    def available(self) -> np.ndarray:
        mask = np.ones(len(self.z), dtype=bool)
        mask[self.asked] = False
        return mask

    def next_question(self) -> int:
        """Index of the candidate to ask next."""
        available = self.available
        if not available.any():
            raise IndexError("every question in the pool has been asked")
        return int(self.selector.select(self.z, self.weights, self.covariance, available, self.rng))

    def record(self, index: int, preference: float | str) -> None:
        """Store an answer (``a``/1 = first response, ``b``/0 = second, ``tie``/0.5) and refit lambda by Newton."""
        if not 0 <= index < len(self.z):
            raise IndexError(f"question {index} is not in the pool of {len(self.z)}")
        if index in self.asked:
            raise ValueError(f"question {index} was already answered")
        label = parse_preference(preference)
        weights, covariance = fit_user_weights(
            self.z[self.asked + [index]], np.asarray(self.labels + [label]), self.prior_mean, self.prior_precision,
            init=self.weights,
        )
        if not (np.isfinite(weights).all() and np.isfinite(covariance).all()):
            raise ValueError(f"refitting after the answer to question {index} gave NaN or inf weights")
        self.asked.append(index)
        self.labels.append(label)
        self.weights, self.covariance = weights, covariance
        if self.journal is not None:
            self.journal.append(self._answer_entry(len(self.asked) - 1))

    def _answer_entry(self, position: int) -> dict:
        """The ``position``-th answer as stored in profiles and journals (with its texts when known)."""
        index, label = self.asked[position], self.labels[position]
        entry = {"question": int(index), "preference": label}
        if self.questions is not None:
            row = self.questions.iloc[index]
            entry.update(prompt=row["prompt"], response_a=row["response_a"], response_b=row["response_b"])
        return entry

    def _journal_header(self) -> dict:
        if self.questions is not None:
            q = self.questions
            pool = pool_fingerprint(list(q["prompt"]), list(q["response_a"]), list(q["response_b"]))
        else:
            pool = f"{len(self.z)} unnamed questions"
        return {"user_id": self.user_id, "model_id": self.model_id, "pool": pool}

    def attach_journal(self, journal: AnswerJournal | str | Path) -> int:
        """Append every later answer to ``journal``, after replaying the answers it already holds.

        A new journal gets a header (user, model, pool); an existing one must have been written for the
        same user, model and question pool (else :class:`JournalError`), and its answers are recorded
        again in order, which resumes an interrupted session. Returns the number of answers replayed.
        """
        journal = journal if isinstance(journal, AnswerJournal) else AnswerJournal(journal)
        answers = journal.open(self._journal_header())
        self.journal = None
        for number, entry in enumerate(answers, 2):
            index = entry["question"]
            if self.questions is not None and 0 <= index < len(self.z):
                row = self.questions.iloc[index]
                if any(key in entry and entry[key] != row[key] for key in ("prompt", "response_a", "response_b")):
                    raise JournalError(f"{journal.path}, line {number}: question {index} has other texts than in the pool")
            try:
                self.record(index, entry["preference"])
            except (IndexError, ValueError) as err:
                raise JournalError(f"{journal.path}, line {number}: {err}") from None
        self.journal = journal
        return len(answers)

    def predict(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """P(first response preferred) under the current weights."""
        z = self.z if indices is None else self.z[np.asarray(indices)]
        return expit(z @ self.weights)

    def confidence(self) -> float:
        """Mean over the pool of the predicted probability of the likelier answer (0.5 = knows nothing)."""
        p = self.predict()
        return float(np.mean(np.maximum(p, 1 - p)))

    def uncertainty(self) -> float:
        """Square root of the total posterior variance of the weights, sqrt(trace(cov)) (shrinks as answers come in)."""
        return float(np.sqrt(np.trace(self.covariance)))

    def profile(self) -> UserProfile:
        return UserProfile(
            user_id=self.user_id,
            weights=self.weights.tolist(),
            covariance=self.covariance.tolist(),
            answers=[self._answer_entry(k) for k in range(len(self.asked))],
            model=self.model_path,
            model_id=self.model_id,
        )
