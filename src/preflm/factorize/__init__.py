"""Learning base reward functions phi from many users' answers (logistic matrix factorization).

Names load on first use, so reading a config (``preflm --help``) does not import torch.
"""

from preflm._lazy import lazy_exports

_EXPORTS = {
    "BackboneConfig": "preflm.factorize.backbone",
    "train_backbone": "preflm.factorize.backbone",
    "FactorizeConfig": "preflm.factorize.config",
    "ModelFileError": "preflm.factorize.model",
    "RewardFactorization": "preflm.factorize.model",
    "model_id_of": "preflm.factorize.model",
    "impute_answers": "preflm.factorize.svd_init",
    "svd_factors": "preflm.factorize.svd_init",
    "train_with_early_stopping": "preflm.factorize.training",
    "validation_mask": "preflm.factorize.training",
    "fit_user_weights": "preflm.factorize.users",
    "population_prior": "preflm.factorize.users",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
