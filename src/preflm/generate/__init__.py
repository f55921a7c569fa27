"""Alignment at inference time: personalized best-of-N over candidates from any generator."""

from preflm.generate.rank import Ranking, best_of_n, personalized_rewards

__all__ = ["Ranking", "best_of_n", "personalized_rewards"]
