"""Baselines for PReF, each a harness :class:`~preflm.eval.harness.Method` on the same item features.

- ``pooled``: one Bradley-Terry reward for everyone (standard RLHF).
- ``per_user``: a reward fitted on the new user's answers alone.
- ``vpl``: Variational Preference Learning (latent z inferred from the user's answers).
- ``pal``: PAL-B (K prototypes, users on their simplex).
- ``lore``: LoRe (shared low-rank linear basis, simplex user weights).

Methods that cannot choose questions see each user's pool answers in one shared random order
(:func:`preflm.baselines.common.random_order`).
"""

from __future__ import annotations

from preflm.baselines.common import first_answers, random_order
from preflm.baselines.lore import LoReMethod, lore_model
from preflm.baselines.mixture import SimplexMixtureMethod, SimplexMixtureModel
from preflm.baselines.pal import PALMethod, pal_model
from preflm.baselines.per_user import PerUserMethod, PerUserRewardModel
from preflm.baselines.pooled import PooledMethod, PooledRewardModel
from preflm.baselines.vpl import VPLMethod, VPLModel

BASELINE_NAMES = ("pooled", "per_user", "vpl", "pal", "lore")


def register_baselines() -> None:
    """Make the baselines available to ``preflm evaluate --methods`` (and ``run_evaluation``).

    Latent sizes follow the factorization config: K prototypes / basis rewards and VPL's latent
    dimension equal ``n_factors`` (J), so every method has the same number of user parameters.
    """
    from preflm.eval.run import register_method

    register_method("pooled", lambda matrix, config: PooledMethod())
    register_method("per_user", lambda matrix, config: PerUserMethod())
    register_method("vpl", lambda matrix, config: VPLMethod(latent_dim=config.n_factors))
    register_method("pal", lambda matrix, config: PALMethod(n_prototypes=config.n_factors))
    register_method("lore", lambda matrix, config: LoReMethod(n_basis=config.n_factors))


__all__ = [
    "BASELINE_NAMES",
    "LoReMethod",
    "PALMethod",
    "PerUserMethod",
    "PerUserRewardModel",
    "PooledMethod",
    "PooledRewardModel",
    "SimplexMixtureMethod",
    "SimplexMixtureModel",
    "VPLMethod",
    "VPLModel",
    "first_answers",
    "lore_model",
    "pal_model",
    "random_order",
    "register_baselines",
]
