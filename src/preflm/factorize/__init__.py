"""Learning base reward functions phi from many users' answers (logistic matrix factorization)."""

from preflm.factorize.backbone import BackboneConfig, train_backbone
from preflm.factorize.config import FactorizeConfig
from preflm.factorize.model import ModelFileError, RewardFactorization, model_id_of
from preflm.factorize.svd_init import impute_answers, svd_factors
from preflm.factorize.training import train_with_early_stopping, validation_mask
from preflm.factorize.users import fit_user_weights, population_prior

__all__ = [
    "BackboneConfig",
    "FactorizeConfig",
    "ModelFileError",
    "RewardFactorization",
    "fit_user_weights",
    "impute_answers",
    "model_id_of",
    "population_prior",
    "svd_factors",
    "train_backbone",
    "train_with_early_stopping",
    "validation_mask",
]
