"""Users' weights lambda: the population prior of seen users, and MAP Newton for new users (batched).

A new user's lambda is MAP logistic regression with a Gaussian prior. With few answers lambda is a J-dimensional convex problem, so Newton converges in a handful of steps;
the posterior covariance (Laplace) is the inverse of the final Hessian. Ties enter as soft labels 0.5.
Leading dimensions batch many users at once (no Python loop over users).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def _objective(lam, z, y, mask, prior_mean, prior_precision):
    logits = np.einsum("...nj,...j->...n", z, lam)
    nll = np.sum(mask * (np.logaddexp(0.0, logits) - y * logits), axis=-1)
    d = lam - prior_mean
    return nll + 0.5 * np.einsum("...i,...ij,...j->...", d, prior_precision, d)


def fit_user_weights(
    z: np.ndarray,
    y: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    mask: np.ndarray | None = None,
    init: np.ndarray | None = None,
    max_iterations: int = 25,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP weights and Laplace covariance for one user or a batch.

    z: (..., n, J) answered pair differences Delta phi; y: (..., n) in [0, 1]; mask: (..., n) which
    entries count. Returns lambda (..., J) and covariance (..., J, J).
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mask = np.ones(y.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    batch = z.shape[:-2]
    J = z.shape[-1]
    prior_mean = np.broadcast_to(prior_mean, batch + (J,))
    prior_precision = np.broadcast_to(prior_precision, batch + (J, J))
    lam = np.array(prior_mean if init is None else np.broadcast_to(init, batch + (J,)), dtype=np.float64)
    objective = _objective(lam, z, y, mask, prior_mean, prior_precision)
    for _ in range(max_iterations):
        p = expit(np.einsum("...nj,...j->...n", z, lam))
        grad = np.einsum("...nj,...n->...j", z, mask * (p - y)) + np.einsum(
            "...ij,...j->...i", prior_precision, lam - prior_mean
        )
        hess = np.einsum("...ni,...n,...nj->...ij", z, mask * p * (1 - p), z) + prior_precision
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        scale = np.ones(batch)
        for _ in range(20):
            candidate = lam - scale[..., None] * step
            new_objective = _objective(candidate, z, y, mask, prior_mean, prior_precision)
            worse = new_objective > objective + 1e-12
            if not np.any(worse):
                break
            scale = np.where(worse, scale * 0.5, scale)
        lam, improvement = candidate, objective - new_objective
        objective = new_objective
        if np.all(np.abs(improvement) < tol):
            break
    p = expit(np.einsum("...nj,...j->...n", z, lam))
    hess = np.einsum("...ni,...n,...nj->...ij", z, mask * p * (1 - p), z) + prior_precision
    return lam, np.linalg.inv(hess)


def population_prior(weights: np.ndarray, ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (plus ``ridge`` on the diagonal) of seen users' weights (U, J): a new user's prior."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    J = weights.shape[1]
    cov = np.atleast_2d(np.cov(weights, rowvar=False)) if len(weights) > 1 else np.eye(J)
    return weights.mean(0), cov + ridge * np.eye(J)
