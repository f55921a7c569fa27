"""Style statistics of a response: layout (lines, paragraphs, lists), rhythm, rhyme, punctuation, register.

They see what the n-gram featurizer cannot: its tokenizers drop line breaks and whitespace, so a poem
and the same words run together as prose look alike to it, yet layout and rhyme are what set a
literary answer apart from a business one. Everything is a fixed function of the text (nothing fitted),
so the spec alone rebuilds the featurizer.
"""

from __future__ import annotations

import re
import numpy as np

from preflm.featurize.base import ResponseStatsFeaturizer, register_featurizer

_WORD = re.compile(r"[A-Za-z']+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*(?:#+\s|\*\*[^*]+\*\*:?\s*$)")
_FIRST_PLURAL = frozenset({"we", "our", "us", "ours", "ourselves", "we're", "we've", "we'll"})
_FORMAL_MARKERS = frozenset({
    "however", "therefore", "moreover", "furthermore", "thus", "hence", "additionally", "consequently",
    "accordingly", "nevertheless", "whereas", "notably", "specifically", "overall", "ultimately",
})
_CASUAL_MARKERS = frozenset({
    "oh", "well", "hey", "wow", "so", "yeah", "folks", "guys", "okay", "ok", "just", "really", "totally",
    "super", "awesome", "fun", "like", "ah", "alright", "yay", "haha",
})
_HEDGES = frozenset({"may", "might", "could", "perhaps", "possibly", "generally", "typically", "often", "usually"})

STYLE_NAMES = (
    "log_lines",
    "log_paragraphs",
    "mean_line_words",
    "short_line_share",
    "line_end_comma_share",
    "line_start_capital_share",
    "rhyme_share",
    "list_item_share",
    "heading_share",
    "code_fence",
    "mean_sentence_words",
    "std_sentence_words",
    "type_token_ratio",
    "long_word_share",
    "semicolon_colon_rate",
    "dash_rate",
    "parenthesis_rate",
    "quote_rate",
    "non_ascii_rate",
    "ellipsis_rate",
    "first_plural_rate",
    "formal_marker_rate",
    "casual_marker_rate",
    "hedge_rate",
)


def _rhymes(a: str, b: str) -> bool:
    return len(a) > 1 and len(b) > 1 and a != b and a[-2:] == b[-2:]


def _style(text: str) -> list[float]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    n_lines = max(len(lines), 1)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    line_words = [_WORD.findall(line) for line in lines]
    last_words = [words[-1].lower() for words in line_words if words]
    rhyme_pairs = sum(
        _rhymes(last_words[i], last_words[j]) for i in range(len(last_words)) for j in (i + 1, i + 2) if j < len(last_words)
    )
    words = _WORD.findall(text)
    lowered = [w.lower() for w in words]
    n_words = max(len(words), 1)
    sentence_lengths = np.array([len(_WORD.findall(s)) for s in _SENTENCE.findall(text) if _WORD.search(s)] or [0])
    n_chars = max(len(text), 1)
    n_sentences = max(len(sentence_lengths), 1)
    return [
        np.log1p(len(lines)),
        np.log1p(len(paragraphs)),
        float(np.mean([len(w) for w in line_words])) if line_words else 0.0,
        sum(0 < len(w) <= 10 for w in line_words) / n_lines,
        sum(line.endswith(",") for line in lines) / n_lines,
        sum(line[0].isupper() for line in lines) / n_lines,
        rhyme_pairs / max(len(last_words) - 1, 1),
        sum(bool(_LIST_ITEM.match(line)) for line in lines) / n_lines,
        sum(bool(_HEADING.match(line)) for line in lines) / n_lines,
        float("```" in text),
        float(sentence_lengths.mean()),
        float(sentence_lengths.std()),
        len(set(lowered)) / np.sqrt(n_words),
        sum(len(w) >= 8 for w in words) / n_words,
        (text.count(";") + text.count(":")) / n_sentences,
        (text.count(" - ") + text.count("\u2014") + text.count("--")) / n_sentences,
        text.count("(") / n_sentences,
        (text.count('"') + text.count("\u201c")) / n_sentences,
        sum(ord(c) > 127 for c in text) / n_chars,
        (text.count("...") + text.count("\u2026")) / n_sentences,
        sum(w in _FIRST_PLURAL for w in lowered) / n_words,
        sum(w in _FORMAL_MARKERS for w in lowered) / n_words,
        sum(w in _CASUAL_MARKERS for w in lowered) / n_words,
        sum(w in _HEDGES for w in lowered) / n_words,
    ]


@register_featurizer("style-stats")
class StyleStatsFeaturizer(ResponseStatsFeaturizer):
    """Twenty-four layout, rhythm and register statistics of the response (see :data:`STYLE_NAMES`)."""

    spec_type, names, row = "style-stats", STYLE_NAMES, staticmethod(_style)
