"""SVD initialization: complete the pairs x users answer matrix, then take its top-J factors.

Answers are centred (2p - 1, so "no preference" is 0), missing cells start at 0; each round replaces
only the missing cells by a rank-k reconstruction, clipped to the valid range.
"""

from __future__ import annotations

import numpy as np


def impute_answers(answers: np.ndarray, rank: int = 100, iterations: int = 10) -> np.ndarray:
    """Iterative SVD imputation of a (pairs x users) matrix in [0, 1] with NaN for missing cells."""
    missing = np.isnan(answers)
    centred = np.where(missing, 0.0, 2.0 * answers - 1.0)
    rank = max(1, min(rank, min(centred.shape) - 1)) if min(centred.shape) > 1 else 1
    for _ in range(iterations):
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        reconstruction = (u[:, :rank] * s[:rank]) @ vt[:rank]
        centred[missing] = np.clip(reconstruction[missing], -1.0, 1.0)
    return (centred + 1.0) / 2.0


def svd_factors(answers: np.ndarray, n_factors: int, rank: int = 100, iterations: int = 10):
    """Top-J pair factors U_J sqrt(S_J) and user factors V_J sqrt(S_J) of the completed, centred matrix."""
    completed = 2.0 * impute_answers(answers, rank, iterations) - 1.0
    u, s, vt = np.linalg.svd(completed, full_matrices=False)
    k = min(n_factors, len(s))
    root = np.sqrt(s[:k])
    pair_factors = np.zeros((answers.shape[0], n_factors))
    user_factors = np.zeros((answers.shape[1], n_factors))
    pair_factors[:, :k] = u[:, :k] * root
    user_factors[:, :k] = vt[:k].T * root
    return pair_factors, user_factors


DENSE_CELL_LIMIT = 4_000_000
"""Largest pairs x users matrix (cells) completed densely; larger ones take the sparse path."""


def _orthonormal(block: np.ndarray) -> np.ndarray:
    """Orthonormal basis of a tall block's column space from its Gram matrix (twice, for accuracy).

    Products with the small Gram matrix instead of a Householder QR: much faster on tall blocks with
    this machine's BLAS, and directions with (numerically) zero weight are dropped.
    """
    for _ in range(2):
        values, vectors = np.linalg.eigh(block.T @ block)
        keep = values > values.max(initial=0.0) * 1e-12
        if not keep.any():
            return block[:, :0]
        block = block @ (vectors[:, keep] / np.sqrt(values[keep]))
    return block


def _randomized_svd(matmul, rmatmul, shape, k: int, start: np.ndarray | None, rng, power_iterations: int = 1):
    """Top-k SVD of an operator given by ``matmul(M) = Z @ M`` and ``rmatmul(M) = Z.T @ M`` (Halko et al.).

    ``start`` (columns spanning a guess of the right singular space, e.g. the last round's V) warm-starts
    the range finder, so one power iteration per imputation round is enough.
    """
    width = min(k + 10, min(shape))
    probe = rng.standard_normal((shape[1], width))
    if start is not None:
        shared = min(width, start.shape[1])
        probe[:, :shared] = start[:, :shared]
    basis = _orthonormal(matmul(probe))
    for _ in range(power_iterations):
        basis = _orthonormal(matmul(_orthonormal(rmatmul(basis))))
    small = rmatmul(basis).T
    u, s, vt = np.linalg.svd(small, full_matrices=False)
    k = min(k, len(s))
    return (basis @ u)[:, :k], s[:k], vt[:k].T


def _low_rank_at(u: np.ndarray, s: np.ndarray, v: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 65_536):
    """Entries (rows[i], cols[i]) of U diag(s) V^T, in chunks so memory stays bounded."""
    out = np.empty(len(rows))
    scaled = u * s
    for start in range(0, len(rows), chunk):
        stop = start + chunk
        out[start:stop] = np.einsum("nk,nk->n", scaled[rows[start:stop]], v[cols[start:stop]])
    return out


def sparse_svd_factors(
    rows: np.ndarray,
    cols: np.ndarray,
    answers: np.ndarray,
    shape: tuple[int, int],
    n_factors: int,
    rank: int = 100,
    iterations: int = 10,
    seed: int = 0,
):
    """:func:`svd_factors` for a sparse (pairs x users) matrix given by its observed cells.

    The same iterative imputation, never densified: the completed matrix is kept as observed-minus-
    low-rank (sparse) plus the rank-k reconstruction (U S V^T), and each round's truncated SVD is a
    randomized one through products with that sum. Unlike the dense path, imputed cells are not clipped
    to [-1, 1] (that would need every cell). Memory: O(observed + (pairs + users) x rank).
    """
    from scipy import sparse

    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    centred = 2.0 * np.asarray(answers, dtype=np.float64) - 1.0
    rank = max(1, min(rank, min(shape) - 1)) if min(shape) > 1 else 1
    rng = np.random.default_rng(seed)
    u = np.zeros((shape[0], 0))
    s = np.zeros(0)
    v = None

    def residual_matrix():
        residual = centred - (_low_rank_at(u, s, v, rows, cols) if len(s) else 0.0)
        return sparse.csr_matrix((residual, (rows, cols)), shape=shape)

    def operators(residual):
        transposed = residual.T.tocsr()
        matmul = lambda m: residual @ m + (u * s) @ (v.T @ m) if len(s) else residual @ m  # noqa: E731
        rmatmul = lambda m: transposed @ m + (v * s) @ (u.T @ m) if len(s) else transposed @ m  # noqa: E731
        return matmul, rmatmul

    for _ in range(iterations):
        matmul, rmatmul = operators(residual_matrix())
        u, s, v = _randomized_svd(matmul, rmatmul, shape, rank, v, rng)
    matmul, rmatmul = operators(residual_matrix())
    u_top, s_top, v_top = _randomized_svd(matmul, rmatmul, shape, min(n_factors, min(shape)), v, rng, power_iterations=2)
    k = len(s_top)
    root = np.sqrt(s_top)
    pair_factors = np.zeros((shape[0], n_factors))
    user_factors = np.zeros((shape[1], n_factors))
    pair_factors[:, :k] = u_top * root
    user_factors[:, :k] = v_top * root
    return pair_factors, user_factors


def answer_factors(answers, users: np.ndarray, n_factors: int, rank: int = 100, iterations: int = 10, seed: int = 0):
    """Top-J factors of an :class:`~preflm.data.AnswerMatrix` as pairs x ``users``; only asked pairs get a row.

    Returns (asked pair indices, pair factors, user factors). Matrices up to ``DENSE_CELL_LIMIT`` cells
    are completed densely (:func:`svd_factors`); larger ones by :func:`sparse_svd_factors`.
    """
    users = np.asarray(users)
    column = np.full(answers.n_users, -1, dtype=np.int64)
    column[users] = np.arange(len(users))
    keep = column[answers.answer_user] >= 0
    asked = np.unique(answers.answer_pair[keep])
    if len(asked) * len(users) <= DENSE_CELL_LIMIT:
        dense = answers.dense(users=users)
        pair_factors, user_factors = svd_factors(dense[asked], n_factors, rank, iterations)
        return asked, pair_factors, user_factors
    row = np.searchsorted(asked, answers.answer_pair[keep])
    col = column[answers.answer_user[keep]]
    value = answers.answer_value[keep]
    _, last = np.unique((row * len(users) + col)[::-1], return_index=True)
    last = len(row) - 1 - last
    pair_factors, user_factors = sparse_svd_factors(
        row[last], col[last], value[last], (len(asked), len(users)),
        n_factors, rank, iterations, seed,
    )
    return asked, pair_factors, user_factors
