"""Which question to ask next: the PReF logistic-bandit rule, random, or your own selector.

A selector scores every candidate pair at once; candidates are Delta phi rows z. Leading dimensions
batch users. Already-asked or unavailable candidates are excluded with ``available``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from scipy.special import expit


def _quadratic_form(z: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """z_n^T M z_n for every row, as one matrix product (BLAS) instead of a per-row einsum."""
    return np.sum((z @ matrix) * z, axis=-1)


class QuestionSelector(Protocol):
    """Returns one candidate index per user (leading batch dims) among the available ones."""

    def select(
        self, z: np.ndarray, lam: np.ndarray, covariance: np.ndarray, available: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...


class BanditSelector:
    """PReF rule: argmax sigma'(lambda . z)^2 * z^T H^-1 z, H the regularized Hessian of the user's fit.

    ``covariance`` is H^-1, the Laplace covariance that :func:`preflm.factorize.fit_user_weights` returns.

    The second factor is the posterior variance of lambda . z; the first turns it into variance on the
    probability scale, so pairs the user will answer near-deterministically are not asked.
    """

    def scores(self, z: np.ndarray, lam: np.ndarray, covariance: np.ndarray) -> np.ndarray:
        p = expit((z @ lam[..., None])[..., 0])
        return (p * (1 - p)) ** 2 * _quadratic_form(z, covariance)

    def select(self, z, lam, covariance, available, rng):
        scores = np.where(available, self.scores(z, lam, covariance), -np.inf)
        return np.argmax(scores, axis=-1)


class UncertaintySelector(BanditSelector):
    """Ablation: posterior variance z^T H^-1 z alone (ignores how predictable the answer is)."""

    def scores(self, z, lam, covariance):
        return _quadratic_form(z, covariance)


class RandomSelector:
    """Uniformly random among the available candidates."""

    def select(self, z, lam, covariance, available, rng):
        keys = np.where(available, rng.random(available.shape), -1.0)
        return np.argmax(keys, axis=-1)


SELECTORS: dict[str, Callable[[], QuestionSelector]] = {
    "active": BanditSelector,
    "random": RandomSelector,
    "uncertainty": UncertaintySelector,
}


def register_selector(name: str, factory: Callable[[], QuestionSelector]) -> None:
    """Make a selector available by name to the CLI and the evaluation harness."""
    SELECTORS[name] = factory


def get_selector(name: str) -> QuestionSelector:
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; known: {sorted(SELECTORS)}")
    return SELECTORS[name]()
