"""New users: fit lambda from ~10 answers (MAP Newton) and choose which questions to ask (bandit rule)."""

from preflm.onboard.journal import AnswerJournal, JournalError
from preflm.onboard.profile import ProfileError, UserProfile
from preflm.onboard.select import (
    SELECTORS,
    BanditSelector,
    QuestionSelector,
    RandomSelector,
    UncertaintySelector,
    get_selector,
    register_selector,
)
from preflm.onboard.session import OnboardingSession

__all__ = [
    "AnswerJournal",
    "JournalError",
    "ProfileError",
    "SELECTORS",
    "BanditSelector",
    "OnboardingSession",
    "QuestionSelector",
    "RandomSelector",
    "UncertaintySelector",
    "UserProfile",
    "get_selector",
    "register_selector",
]
