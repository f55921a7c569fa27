"""Baselines for PReF, each a harness :class:`~preflm.eval.harness.Method` on the same item features.

- ``pooled``: one Bradley-Terry reward for everyone (standard RLHF).
- ``per_user``: a reward fitted on the new user's answers alone.
- ``vpl``: Variational Preference Learning (latent z inferred from the user's answers).
- ``pal``: PAL-B (K prototypes, users on their simplex).
- ``lore``: LoRe (shared low-rank linear basis, simplex user weights).

Methods that cannot choose questions see each user's pool answers in one shared random order
(:func:`preflm.eval.random_order`).
"""

from __future__ import annotations

from preflm.baselines.lore import lore_method, lore_model
from preflm.baselines.mixture import SimplexMixtureModel, simplex_mixture_method
from preflm.baselines.pal import pal_method, pal_model
from preflm.baselines.per_user import PerUserRewardModel, per_user_method
from preflm.baselines.pooled import PooledRewardModel, pooled_method
from preflm.baselines.vpl import VPLModel, vpl_method

BASELINES = {
    "pooled": lambda config: pooled_method(),
    "per_user": lambda config: per_user_method(),
    "vpl": lambda config: vpl_method(latent_dim=config.n_factors),
    "pal": lambda config: pal_method(n_prototypes=config.n_factors),
    "lore": lambda config: lore_method(n_basis=config.n_factors),
}
BASELINE_NAMES = tuple(BASELINES)


def register_baselines() -> None:
    """Make the baselines available to ``preflm evaluate --methods`` (and ``run_evaluation``).

    Latent sizes follow the factorization config: K prototypes / basis rewards and VPL's latent
    dimension equal ``n_factors`` (J), so every method has the same number of user parameters.
    """
    from preflm.eval.run import register_method

    for name, factory in BASELINES.items():
        register_method(name, factory)


__all__ = [
    "BASELINES",
    "BASELINE_NAMES",
    "PerUserRewardModel",
    "PooledRewardModel",
    "SimplexMixtureModel",
    "VPLModel",
    "lore_method",
    "lore_model",
    "pal_method",
    "pal_model",
    "per_user_method",
    "pooled_method",
    "register_baselines",
    "simplex_mixture_method",
    "vpl_method",
]
