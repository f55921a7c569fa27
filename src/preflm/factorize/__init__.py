"""Learning base reward functions phi from many users' answers (logistic matrix factorization)."""

from preflm.factorize.backbone import BackboneConfig, train_backbone
from preflm.factorize.config import FactorizeConfig
from preflm.factorize.model import RewardFactorization, binary_accuracy
from preflm.factorize.svd_init import impute_answers, svd_factors

__all__ = [
    "BackboneConfig",
    "FactorizeConfig",
    "RewardFactorization",
    "binary_accuracy",
    "impute_answers",
    "svd_factors",
    "train_backbone",
]
