"""The featurizer interface: (prompt, response) texts -> float32 vectors, composable and rebuildable.

A featurizer describes itself with a JSON-able ``spec()``; :func:`build_featurizer` turns a spec
back into a featurizer, so a saved model knows how to embed new texts.
"""

from __future__ import annotations

import inspect
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Featurizer(Protocol):
    """Maps (prompt, response) pairs of texts to feature vectors."""

    @property
    def dim(self) -> int: ...

    def spec(self) -> dict: ...

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray: ...


_REGISTRY: dict[str, Callable[..., Featurizer]] = {}


def register_featurizer(name: str) -> Callable:
    """Class decorator: make a featurizer rebuildable from ``{"type": name, **kwargs}``."""

    def wrap(cls):
        _REGISTRY[name] = cls
        return cls

    return wrap


def build_featurizer(spec: dict, allow_download: bool = True) -> Featurizer:
    """Rebuild a featurizer from its ``spec()``.

    ``allow_download=False`` makes featurizers that load models (those taking an ``allow_download``
    argument) read local files only, so a saved model never reaches the Hub unasked.
    """
    spec = dict(spec)
    kind = spec.pop("type")
    if kind == "concat":
        return ConcatFeaturizer([build_featurizer(part, allow_download) for part in spec["parts"]])
    if kind not in _REGISTRY:
        from preflm.featurize import register_builtin_featurizers

        register_builtin_featurizers()
    if kind not in _REGISTRY:
        raise ValueError(f"unknown featurizer type {kind!r}; known: {sorted(_REGISTRY)}")
    factory = _REGISTRY[kind]
    if "allow_download" in inspect.signature(factory).parameters:
        spec["allow_download"] = allow_download
    return factory(**spec)


class ResponseStatsFeaturizer:
    """Base for fixed statistics of the response alone: a subclass names its columns and computes one row.

    Nothing is fitted, so ``{"type": spec_type}`` rebuilds it.
    """

    spec_type: str = ""
    names: tuple[str, ...] = ()
    dim: int = 0

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.dim = len(cls.names)

    @staticmethod
    def row(text: str) -> list[float]:
        raise NotImplementedError

    def spec(self) -> dict:
        return {"type": self.spec_type}

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        return np.asarray([self.row(r) for r in responses], dtype=np.float32).reshape(len(responses), self.dim)


class ConcatFeaturizer:
    """Concatenates the outputs of several featurizers (e.g. an embedding plus text statistics)."""

    def __init__(self, parts: Sequence[Featurizer]):
        if not parts:
            raise ValueError("ConcatFeaturizer needs at least one part")
        self.parts = list(parts)

    @property
    def dim(self) -> int:
        return sum(part.dim for part in self.parts)

    def spec(self) -> dict:
        return {"type": "concat", "parts": [part.spec() for part in self.parts]}

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.concatenate([part.transform(prompts, responses) for part in self.parts], axis=1)
