"""High-level API: fit base rewards from texts, onboard a user, rank candidates for them.

:class:`PReF` wraps :class:`~preflm.factorize.RewardFactorization` (fitting from a path, a DataFrame or
a list of dicts of texts; featurizer by name), :class:`~preflm.onboard.OnboardingSession` and
:func:`~preflm.generate.best_of_n`. Its folder format is the one of ``RewardFactorization.save``, so
models written by ``preflm train`` load here and vice versa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from preflm.data import AnswerMatrix, load_preferences, load_questions, normalize_frame
from preflm.data.records import TEXT_COLUMNS
from preflm.data.stream import read_answer_table
from preflm.factorize import FactorizeConfig, RewardFactorization
from preflm.featurize import DEFAULT_FEATURIZER
from preflm.generate.rank import Ranking, best_of_n
from preflm.onboard import OnboardingSession, UserProfile
from preflm.onboard.session import posterior_spread



def _frame(data, source: str, user_column: str = "user_id", default_user: str | None = None) -> pd.DataFrame:
    """Normalized answers table from a path, a hub id, a DataFrame or a list of dicts."""
    if isinstance(data, (str, Path)):
        return load_preferences(data, user_column=user_column, default_user=default_user)
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    return normalize_frame(frame, source, user_column, default_user)


def load_training_answers(data, user_column: str = "user_id") -> AnswerMatrix:
    """Seen users' answers as an :class:`AnswerMatrix`; only ``split == 'train'`` rows when a split column exists.

    Paths and ``hf:`` datasets are streamed (:func:`preflm.data.stream.read_answer_table`), so the texts
    of millions of answers are never held per row; tables and dicts go through :func:`normalize_frame`.
    """
    if isinstance(data, (str, Path)):
        return read_answer_table(data, user_column=user_column, keep_split="train")
    frame = _frame(data, "<answers>", user_column)
    if "split" in frame.columns:
        frame = frame[frame["split"] == "train"]
        if frame.empty:
            raise ValueError("<answers>: the split column has no 'train' rows")
    return AnswerMatrix.from_frame(frame, source="<answers>")


def remaining_uncertainty(session: OnboardingSession) -> float:
    """How much of the population's spread of tastes is still unknown for this user, in [0, 1].

    sqrt(trace(posterior covariance) / trace(prior covariance)) of the user's weights: 1 before any
    answer (the model knows only the population), shrinking towards 0 as answers pin the weights down.
    It measures what the model has learnt, not how accurate its predictions are.
    """
    return posterior_spread(session.covariance, session.prior_precision)


def _previous_answers(profile: UserProfile) -> pd.DataFrame:
    """A profile's answers as a table of question texts and labels (to resume onboarding)."""
    rows = []
    for number, entry in enumerate(profile.answers):
        missing = [c for c in (*TEXT_COLUMNS, "preference") if c not in entry]
        if missing:
            raise ValueError(f"profile of {profile.user_id}: answer {number} has no {missing}; cannot add answers to it")
        rows.append({c: entry[c] for c in (*TEXT_COLUMNS, "preference")})
    return pd.DataFrame(rows, columns=[*TEXT_COLUMNS, "preference"])


class PReF:
    """Personalized rewards by reward factorization, in the style of sentence-transformers / TRL.

    ``PReF(featurizer="ngrams+stats", n_factors=8).fit(answers)`` learns J base rewards from many users'
    answers (a file, a DataFrame or dicts with ``user_id, prompt, response_a, response_b, preference``);
    ``onboard`` / ``session`` learn a new user's weights from a few answers; ``rank`` orders candidate
    responses for that user. ``featurizer`` is a name (see :func:`preflm.featurize.featurizer_from_name`)
    or a featurizer instance; other keyword arguments are :class:`FactorizeConfig` fields.
    """

    def __init__(self, config: FactorizeConfig | None = None, featurizer=DEFAULT_FEATURIZER, **overrides):
        base = config.to_dict() if config is not None else {}
        self.config = FactorizeConfig(**{**base, **overrides})
        self.featurizer = featurizer
        self.reward_model: RewardFactorization | None = None
        self.path: str | None = None

    def _model(self) -> RewardFactorization:
        if self.reward_model is None:
            raise RuntimeError("this PReF model is not fitted yet: call fit() or PReF.from_pretrained()")
        return self.reward_model

    def fit(self, data, user_column: str = "user_id", progress: bool = False) -> "PReF":
        """Learn base rewards and seen users' weights from many users' answers (texts, or an AnswerMatrix)."""
        from preflm.factorize.pipeline import featurize_items, train_reward_model
        from preflm.featurize import CachedFeaturizer, featurizer_from_name

        matrix = data if isinstance(data, AnswerMatrix) else load_training_answers(data, user_column)
        featurizer = self.featurizer
        if isinstance(featurizer, str):
            featurizer = CachedFeaturizer(featurizer_from_name(featurizer))
        features = featurize_items(matrix, featurizer)
        self.reward_model = train_reward_model(matrix, features, featurizer, self.config, progress=progress)
        return self

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "PReF":
        """Load a model saved by :meth:`save_pretrained` or ``preflm train``."""
        model = RewardFactorization.load(directory)
        pref = cls(model.config, featurizer=None)
        pref.reward_model, pref.path = model, str(directory)
        return pref

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""
        path = self._model().save(directory)
        self.path = str(directory)
        return path

    def session(
        self,
        questions,
        user_id: str = "new-user",
        selector: str = "active",
        seed: int = 0,
        resume: UserProfile | None = None,
    ) -> OnboardingSession:
        """An interactive onboarding session over a pool of questions (path, DataFrame or dicts).

        ``session.next_question()`` gives the index of the row to ask; ``session.record(index, "a")``
        stores the answer; ``session.profile()`` is the result. With ``resume`` the profile's earlier
        answers are recorded first and their questions are not asked again.
        """
        if isinstance(questions, (str, Path)):
            pool = load_questions(questions)
        else:
            pool = questions if isinstance(questions, pd.DataFrame) else pd.DataFrame(list(questions))
            missing = [c for c in TEXT_COLUMNS if c not in pool.columns]
            if missing:
                raise ValueError(f"questions miss column(s) {missing}; found {list(pool.columns)}")
            pool = pool[list(TEXT_COLUMNS)].drop_duplicates(ignore_index=True)
        return self._session(pool, None, user_id, selector, seed, resume, skip_answered=True)

    def _session(self, pool, labels, user_id, selector, seed, resume, skip_answered) -> OnboardingSession:
        previous = _previous_answers(resume if resume is not None else UserProfile(user_id, [], []))
        if skip_answered and len(previous):
            seen = pd.MultiIndex.from_frame(previous[list(TEXT_COLUMNS)])
            pool = pool[~pd.MultiIndex.from_frame(pool[list(TEXT_COLUMNS)]).isin(seen)]
        frame = pd.concat([previous[list(TEXT_COLUMNS)], pool[list(TEXT_COLUMNS)]], ignore_index=True)
        session = OnboardingSession.from_questions(
            self._model(), frame, selector=selector, user_id=user_id, model_path=self.path, seed=seed
        )
        for index, label in enumerate(previous["preference"]):
            session.record(index, label)
        for index, label in enumerate(labels if labels is not None else [], start=len(previous)):
            session.record(index, label)
        return session

    def onboard(self, answers, user_id: str | None = None, resume: UserProfile | None = None) -> UserProfile:
        """A new user's profile from their answers (path, DataFrame or dicts; labels a/b/tie or 1/0/0.5).

        A file of several users' answers needs ``user_id``; with ``resume`` the answers are added to a
        profile's earlier ones.
        """
        source = str(answers) if isinstance(answers, (str, Path)) else "<answers>"
        given = _frame(answers, source, default_user=user_id or (resume.user_id if resume else "new-user"))
        users = given["user_id"].unique()
        if user_id is not None and len(users) == 1 and users[0] != user_id:
            raise ValueError(f"{source} holds answers of {users[0]!r}, not of {user_id!r}")
        if user_id is not None and len(users) > 1:
            if user_id not in users:
                raise ValueError(f"{source} holds answers of {len(users)} users but none of {user_id!r}")
            given = given[given["user_id"] == user_id].reset_index(drop=True)
        elif len(users) > 1:
            raise ValueError(f"{source} holds answers of {len(users)} users; pick one with user_id "
                             f"(e.g. {', '.join(map(str, users[:3]))})")
        who = user_id or (resume.user_id if resume else str(users[0]))
        session = self._session(given, list(given["preference"]), who, "active", 0, resume, skip_answered=False)
        return session.profile()

    def _weights(self, profile) -> np.ndarray:
        """Weights of a profile (refused when learned with another model), its path, or raw weights."""
        if isinstance(profile, (str, Path)):
            profile = UserProfile.load(profile)
        if isinstance(profile, UserProfile):
            profile.check_model(self._model())
            return profile.weight_vector
        return np.asarray(profile, dtype=np.float64)

    def rank(self, profile, prompt: str, candidates: Sequence[str], progress: bool = False) -> Ranking:
        """Candidates ordered by this user's reward (``profile``: a UserProfile, its path or weights);
        ``progress`` shows a bar while many candidates are embedded."""
        return best_of_n(self._model(), self._weights(profile), prompt, candidates, progress)

    def rewards(
        self, profile, prompts: Sequence[str], responses: Sequence[str], chunk_size: int = 65_536, progress: bool = False
    ) -> np.ndarray:
        """Rewards lambda . phi(x, y) of each (prompt, response): (n,) for one profile, (U, n) for a (U, J)
        array of users' weights (batch scoring; candidates embedded ``chunk_size`` at a time)."""
        return self._model().rewards(prompts, responses, self._weights(profile), chunk_size, progress)
