"""From an answers table to a fitted model: intern texts, featurize items once, fit."""

from __future__ import annotations

import numpy as np

from preflm.data.matrix import AnswerMatrix
from preflm.factorize.config import FactorizeConfig
from preflm.factorize.model import RewardFactorization


def featurize_items(matrix: AnswerMatrix, featurizer) -> np.ndarray:
    """Features of every item (unique prompt, response) of the matrix, in item order."""
    return np.asarray(featurizer.transform(list(matrix.item_prompts), list(matrix.item_responses)), dtype=np.float32)


def train_reward_model(
    train: AnswerMatrix, features: np.ndarray, featurizer=None, config: FactorizeConfig | None = None, progress: bool = True
) -> RewardFactorization:
    """Fit base rewards on seen users' answers; keeps the featurizer so texts can be scored later."""
    return RewardFactorization(config, featurizer=featurizer).fit(features, train, progress=progress)
