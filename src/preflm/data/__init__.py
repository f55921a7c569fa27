"""Preference answers: reading, validating, the pairs x users answer matrix, and splits."""

from preflm.data.records import (
    PREFERENCE_COLUMNS,
    DataError,
    PreferenceRecord,
    load_preferences,
    load_questions,
    normalize_frame,
    parse_preference,
)
from preflm.data.candidates import load_candidates, parse_candidates
from preflm.data.matrix import AnswerMatrix
from preflm.data.split import DatasetSplit, split_answers
from preflm.data.stream import read_answer_table

__all__ = [
    "PREFERENCE_COLUMNS",
    "AnswerMatrix",
    "DataError",
    "DatasetSplit",
    "PreferenceRecord",
    "load_candidates",
    "load_preferences",
    "load_questions",
    "normalize_frame",
    "parse_candidates",
    "parse_preference",
    "read_answer_table",
    "split_answers",
]
