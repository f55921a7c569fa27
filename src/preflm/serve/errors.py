"""Errors that mean "the service cannot answer now, retry": the app answers them 503 with their message."""

from __future__ import annotations


class Unavailable(Exception):
    """A part of the service (database threads, featurizer) is shut down, failed, or timed out."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
