"""Cheap, language-agnostic statistics of a response: length, punctuation, casing, pronouns.

They complement sentence embeddings, which are built to ignore surface form such as length.
"""

from __future__ import annotations

import re
import numpy as np

from preflm.featurize.base import ResponseStatsFeaturizer, register_featurizer

_WORD = re.compile(r"[A-Za-z']+")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_SECOND_PERSON = {"you", "your", "you're", "yours", "yourself"}
_FIRST_PERSON = {"i", "i'm", "me", "my", "i've", "i'd", "i'll"}

STAT_NAMES = (
    "log_chars",
    "log_words",
    "log_sentences",
    "mean_word_length",
    "exclamations_per_sentence",
    "questions_per_sentence",
    "commas_per_sentence",
    "apostrophe_rate",
    "uppercase_rate",
    "digit_rate",
    "first_person_rate",
    "second_person_rate",
)


def _stats(text: str) -> list[float]:
    words = _WORD.findall(text)
    lowered = [w.lower() for w in words]
    n_words = max(len(words), 1)
    n_sentences = max(len([s for s in _SENTENCE.findall(text) if s.strip()]), 1)
    letters = max(sum(c.isalpha() for c in text), 1)
    return [
        np.log1p(len(text)),
        np.log1p(len(words)),
        np.log1p(n_sentences),
        sum(len(w) for w in words) / n_words,
        text.count("!") / n_sentences,
        text.count("?") / n_sentences,
        text.count(",") / n_sentences,
        sum("'" in w for w in words) / n_words,
        sum(c.isupper() for c in text) / letters,
        sum(c.isdigit() for c in text) / max(len(text), 1),
        sum(w in _FIRST_PERSON for w in lowered) / n_words,
        sum(w in _SECOND_PERSON for w in lowered) / n_words,
    ]


@register_featurizer("text-stats")
class TextStatsFeaturizer(ResponseStatsFeaturizer):
    """Twelve surface statistics of the response (see :data:`STAT_NAMES`)."""

    spec_type, names, row = "text-stats", STAT_NAMES, staticmethod(_stats)
