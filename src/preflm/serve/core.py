"""What the service computes, apart from HTTP and SQL: the model, the question bank, profiles, scoring.

Question texts are embedded once at start (Delta phi of every question); an answer refits the user's
weights from all their stored answers with the library's MAP Newton. Texts to score are embedded by a
:class:`FeatureBatcher`, which merges concurrent requests into one featurizer call.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from preflm.factorize import RewardFactorization
from preflm.onboard import BanditSelector
from preflm.onboard.journal import pool_fingerprint
from preflm.serve.errors import Unavailable

PREFERENCE_LABELS = {"a": 1.0, "b": 0.0, "tie": 0.5}
LABEL_NAMES = {value: name for name, value in PREFERENCE_LABELS.items()}


def question_set_hash(questions: pd.DataFrame) -> str:
    """The question pool's fingerprint (as onboarding journals record it): answers' question ids refer to it."""
    return pool_fingerprint(list(questions["prompt"]), list(questions["response_a"]), list(questions["response_b"]))


FEATURIZER_SHUT_DOWN = "the featurizer is shut down (the service is stopping)"


class FeatureBatcher:
    """Embeds texts for many concurrent callers in few featurizer calls.

    Callers block on :meth:`base_rewards`; one worker thread waits up to ``window_s`` for more requests
    (at most ``max_texts`` texts), embeds them all at once and hands each caller its rows of phi.
    After :meth:`close`, submitting (and any request still queued) fails at once with :class:`Unavailable`.
    """

    def __init__(
        self,
        embed: Callable[[list[str], list[str]], np.ndarray],
        window_s: float = 0.002,
        max_texts: int = 512,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.embed, self.window_s, self.max_texts, self.on_batch = embed, window_s, max_texts, on_batch
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="preflm-featurizer", daemon=True)
        self._thread.start()

    def submit(self, prompts: Sequence[str], responses: Sequence[str]) -> Future:
        """Queue texts; the future resolves to their phi (async callers await it without holding a thread)."""
        if self._closed:
            raise Unavailable(FEATURIZER_SHUT_DOWN)
        future: Future = Future()
        self._queue.put((list(prompts), list(responses), future))
        return future

    def base_rewards(self, prompts: Sequence[str], responses: Sequence[str], timeout: float = 120.0) -> np.ndarray:
        """phi of the texts; :class:`Unavailable` when the featurizer fails or takes over ``timeout`` seconds."""
        return wait_for_features(self.submit(prompts, responses), timeout)

    def close(self) -> None:
        """Stop the worker: requests queued before the close are still answered, later ones fail with
        :class:`Unavailable`."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=5)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[2].set_running_or_notify_cancel():
                item[2].set_exception(Unavailable(FEATURIZER_SHUT_DOWN))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size = [first], len(first[0])
            deadline = time.perf_counter() + self.window_s
            stop = False
            while size < self.max_texts:
                remaining = deadline - time.perf_counter()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item[0])
            self._embed_batch(batch)
            if stop:
                return

    def _embed_batch(self, batch) -> None:
        # Callers that gave up (an async caller's timeout cancels its future) are skipped.
        batch = [item for item in batch if item[2].set_running_or_notify_cancel()]
        if not batch:
            return
        prompts = [p for item in batch for p in item[0]]
        responses = [r for item in batch for r in item[1]]
        start = time.perf_counter()
        try:
            phi = self.embed(prompts, responses)
        except Exception as err:  # handed to every waiting caller, which turns it into an HTTP error
            for item in batch:
                item[2].set_exception(err)
            return
        if self.on_batch is not None:
            self.on_batch(len(prompts), time.perf_counter() - start)
        offset = 0
        for item in batch:
            item[2].set_result(phi[offset : offset + len(item[0])])
            offset += len(item[0])


def featurizer_unavailable(err: BaseException, timeout: float) -> Unavailable:
    """A featurizer failure or timeout as :class:`Unavailable` (the app answers 503)."""
    if isinstance(err, Unavailable):
        return err
    if isinstance(err, TimeoutError):
        return Unavailable(f"the featurizer did not answer within {timeout:g} s (overloaded); retry")
    return Unavailable(f"the featurizer failed: {type(err).__name__}: {err}")


def wait_for_features(future: Future, timeout: float) -> np.ndarray:
    """The batcher's answer, with its failures as :class:`Unavailable`."""
    try:
        return future.result(timeout=timeout)
    except Exception as err:
        if isinstance(err, TimeoutError):
            future.cancel()
        raise featurizer_unavailable(err, timeout) from (None if isinstance(err, TimeoutError) else err)


def quiet_featurizer(featurizer):
    """Turn off progress bars (of the featurizer and its parts): a server embeds texts all day."""
    for part in [featurizer, *getattr(featurizer, "parts", [])]:
        if hasattr(part, "show_progress"):
            part.show_progress = False
    return featurizer


@dataclass
class Profile:
    weights: np.ndarray
    covariance: np.ndarray
    n_answers: int
    confidence: float


class PreferenceService:
    """The fitted model, its featurizer, the question bank with its Delta phi, and the onboarding rule."""

    def __init__(self, model_dir: str | Path, questions: pd.DataFrame, budget: int, target_confidence: float,
                 window_s: float = 0.002, max_batch_texts: int = 512, on_batch=None):
        from preflm.featurize import build_featurizer

        self.model = RewardFactorization.load(model_dir)
        self.model_id = self.model.model_id
        if self.model.featurizer_spec is None:
            raise ValueError(f"{model_dir}: the model was trained on raw features and cannot embed texts")
        # The plain featurizer, not the library's disk-cached one: served texts are mostly new, and a
        # cache shared by worker processes would grow without bound.
        self.featurizer = quiet_featurizer(build_featurizer(self.model.featurizer_spec))
        self.questions = questions.reset_index(drop=True)
        # Plain tuples for the API's hot path (a pandas row lookup costs tens of microseconds).
        self.question_texts = list(zip(self.questions["prompt"], self.questions["response_a"], self.questions["response_b"]))
        self.question_hash = question_set_hash(self.questions)
        self.budget, self.target_confidence = budget, target_confidence
        self.prior_mean = np.asarray(self.model.prior_mean_, dtype=np.float64)
        self.prior_precision = self.model.prior_precision()
        self._prior_trace = float(np.trace(np.linalg.inv(self.prior_precision)))
        n = len(self.questions)
        phi = self._embed(list(self.questions["prompt"]) * 2,
                          list(self.questions["response_a"]) + list(self.questions["response_b"]))
        self.z = phi[:n] - phi[n:]
        self.selector = BanditSelector()
        self.batcher = FeatureBatcher(self._embed, window_s, max_batch_texts, on_batch)

    def _embed(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self.model.base_rewards(self.featurizer.transform(prompts, responses))

    def prior_profile(self) -> Profile:
        return Profile(self.prior_mean.copy(), np.linalg.inv(self.prior_precision), 0, 0.0)

    def confidence(self, covariance: np.ndarray) -> float:
        """1 - posterior sd / prior sd of the weights (trace): 0 before any answer, towards 1 as they come."""
        spread = math.sqrt(float(np.trace(covariance)) / self._prior_trace)
        return min(max(1.0 - spread, 0.0), 1.0)

    def fit(self, question_ids: Sequence[int], labels: Sequence[float], init: np.ndarray | None = None) -> Profile:
        """The profile refit from all of a user's answers (``init``: where Newton starts, e.g. the last weights)."""
        if not len(question_ids):
            return self.prior_profile()
        weights, covariance = self.model.fit_users(self.z[np.asarray(question_ids)], np.asarray(labels, dtype=np.float64),
                                                   init=init)
        return Profile(weights, covariance, len(question_ids), self.confidence(covariance))

    def done(self, profile: Profile, answered: int, budget: int | None = None) -> bool:
        """The stopping rule: budget spent (the service's, or ``budget``), confident enough, or no question left."""
        return (
            answered >= (self.budget if budget is None else budget)
            or profile.confidence >= self.target_confidence
            or answered >= len(self.questions)
        )

    def next_question(self, profile: Profile, answered: Sequence[int], budget: int | None = None) -> int | None:
        """The bandit rule's pick among unanswered questions, or None when the stopping rule says done."""
        if self.done(profile, len(answered), budget):
            return None
        scores = self.selector.scores(self.z, profile.weights, profile.covariance)
        scores[np.asarray(answered, dtype=np.int64)] = -np.inf
        return int(np.argmax(scores))

    def base_rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """phi (n, J) of texts, batched with other requests' texts."""
        return self.batcher.base_rewards(prompts, responses)

    async def base_rewards_async(self, prompts: Sequence[str], responses: Sequence[str], timeout: float = 120.0) -> np.ndarray:
        """As :meth:`base_rewards`, for async routes: the event loop serves other requests meanwhile."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.batcher.submit(prompts, responses)), timeout)
        except Exception as err:
            raise featurizer_unavailable(err, timeout) from (None if isinstance(err, TimeoutError) else err)

    def close(self) -> None:
        self.batcher.close()
