"""Converters from public multi-user preference datasets to the standard answers format.

``convert(name, source)`` (or ``convert_<name>``) returns the answers table, with a ``split`` column
following the unseen-prompt protocol, and a :class:`ConversionSummary` of what was read, written and
left out; ``write_answers`` saves the table. ``source`` is a file or folder as downloaded, or
``hf:<id>[#config]`` to load from the Hugging Face hub.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

import pandas as pd

from preflm.data.convert.arena import convert_arena
from preflm.data.convert.common import (
    ConversionSummary,
    ConvertConfig,
    clean_text,
    looks_like_list_literal,
    write_answers,
)
from preflm.data.convert.multipref import convert_multipref
from preflm.data.convert.personalllm import convert_personalllm
from preflm.data.convert.prism import convert_prism
from preflm.data.convert.split import SplitConfig, assign_unseen_prompt_split, check_unseen_prompt_split
from preflm.data.convert.tldr import convert_tldr

Converter = Callable[..., tuple[pd.DataFrame, ConversionSummary]]
CONVERTERS: dict[str, Converter] = {
    "prism": convert_prism,
    "tldr": convert_tldr,
    "multipref": convert_multipref,
    "arena": convert_arena,
    "personalllm": convert_personalllm,
}
ALIASES = {
    "reddit-tldr": "tldr",
    "summarize-from-feedback": "tldr",
    "summarize_from_feedback": "tldr",
    "chatbot-arena": "arena",
    "chatbot_arena": "arena",
    "personal-llm": "personalllm",
}


def converter_options(name: str) -> dict[str, object]:
    """The dataset-specific options of a converter and their defaults."""
    signature = inspect.signature(get_converter(name))
    return {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def get_converter(name: str) -> Converter:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in CONVERTERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(CONVERTERS)}")
    return CONVERTERS[key]


def convert(
    name: str, source: str | Path, config: ConvertConfig | None = None, **options
) -> tuple[pd.DataFrame, ConversionSummary]:
    """Convert dataset ``name`` read from ``source``; ``options`` are the converter's own (see :func:`converter_options`)."""
    known = converter_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {name}; known: {', '.join(known) or 'none'}")
    for key, value in options.items():
        _check_option(key, value, known[key])
    return get_converter(name)(source, config, **options)


def _check_option(key: str, value: object, default: object) -> None:
    """Options take the type of their default (a number for a float, text or none for an optional text)."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    else:
        ok, kind = value is None or isinstance(value, str), "text"
    if not ok:
        raise ValueError(f"option {key} takes {kind}, got {value!r}")


__all__ = [
    "CONVERTERS",
    "ConversionSummary",
    "ConvertConfig",
    "SplitConfig",
    "assign_unseen_prompt_split",
    "check_unseen_prompt_split",
    "clean_text",
    "convert",
    "convert_arena",
    "convert_multipref",
    "convert_personalllm",
    "convert_prism",
    "convert_tldr",
    "converter_options",
    "get_converter",
    "looks_like_list_literal",
    "write_answers",
]
