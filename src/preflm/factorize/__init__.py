"""Learning base reward functions phi from many users' answers (logistic matrix factorization).

Names load on first use, so reading a config (``preflm --help``) does not import torch.
"""

from importlib import import_module

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


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'preflm.factorize' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
