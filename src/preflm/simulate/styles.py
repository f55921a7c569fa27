"""Style transforms: realise a prompt's neutral answer in a chosen style.

A style is an int vector of 7 values in {-1, 0, +1}, one per attribute in
``ATTRIBUTES`` order: +1 realises the first pole, -1 the second, 0 leaves the
attribute unmarked. Each pole has several phrase variants picked by the
caller's ``numpy.random.Generator``, so the same style yields varied but
reproducible natural text. Concise answers take short variants of every other
pole, and unmarked-length answers mostly short ones (dropping their last
content sentence when heavily decorated), so that the length pole stays the
dominant driver of word count.

The phrases and word rules live in ``data/styles.json``: per pole the phrase
lists named in ``_POLE_KEYS`` (``words``: [regex, replacement] rules), plus
the contraction pairs, slang expansions and names that keep their capital.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .attributes import ATTRIBUTES
from .bank import GENERIC_EXTRAS, PROMPTS, TOPIC_EXTRAS, TOPIC_FOLLOWUPS, TOPIC_QUIPS, PromptEntry
from .tables import field, load_table, strings

__all__ = ["DEFAULT_STYLE_PROBS", "STYLE_VALUES", "candidates_for_prompt", "load_styles", "random_styles", "realize"]

STYLE_VALUES = np.array([-1, 0, 1], dtype=np.int8)
DEFAULT_STYLE_PROBS = (0.35, 0.3, 0.35)
"""Probabilities of -1, 0, +1 per attribute when drawing candidate styles."""

STYLES_FILE = "styles.json"
_POLE_KEYS = {
    "confident": ("prefixes", "long", "short", "words"),
    "hedge": ("prefixes", "long", "short", "words"),
    "formal": ("connectives", "openers", "closers", "words"),
    "informal": ("fillers", "tags", "words"),
    "enthusiastic": ("openers", "closers", "short"),
    "demure": ("long", "short"),
    "humour": ("long", "short"),
    "serious": ("long", "short"),
    "polite": ("openers", "closers", "short_openers", "short_closers"),
    "rude": ("openers", "closers", "short_prefixes", "short_closers"),
    "elicit": ("long", "short"),
    "closure": ("long", "short"),
}
"""Phrase lists each attribute pole needs from ``styles.json``; ``words`` are (regex, replacement) rules."""


def _pairs(obj, key: str, where: str) -> list[tuple[str, str]]:
    """``obj[key]``, a list of [string, string] pairs."""
    pairs = field(obj, key, where)
    if not isinstance(pairs, list):
        raise ValueError(f"{where}: field {key!r} must be a list of [string, string] pairs")
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise ValueError(f"{where}: field {key!r} row {i} must be a [string, string] pair, got {pair!r:.80}")
    return [(a, b) for a, b in pairs]


def _rules(obj, key: str, where: str) -> list[tuple[re.Pattern, str]]:
    """Compile ``obj[key]``, a list of [regex, replacement] pairs."""
    try:
        return [(re.compile(p), r) for p, r in _pairs(obj, key, where)]
    except re.error as err:
        raise ValueError(f"{where}: bad regex in {key!r}: {err}") from None


def _proper_words() -> frozenset[str]:
    """Capitalised words seen mid-sentence in the bank: names that must keep their capital."""
    seen = {"I"}
    for sentence in [t for e in PROMPTS for t in (e.question, *e.content)]:
        seen.update(w for w in re.findall(r"[A-Za-z][\w-]*", sentence)[1:] if w[0].isupper())
    return frozenset(seen)


def load_styles(root: Path | None = None) -> tuple[dict, list, list, frozenset[str]]:
    """Read ``styles.json``: (pole phrase tables, contraction rules, expansion rules, names to keep capitalised)."""
    table = load_table(STYLES_FILE, root)
    poles = field(table, "poles", STYLES_FILE)
    phrases = {}
    for pole, keys in _POLE_KEYS.items():
        where = f"{STYLES_FILE}: pole {pole!r}"
        spec = field(poles, pole, f"{STYLES_FILE}: 'poles'")
        phrases[pole] = {k: _rules(spec, k, where) if k == "words" else strings(spec, k, where) for k in keys}
    pairs = _pairs(table, "contractions", STYLES_FILE)
    contract = [(re.compile(rf"\b{re.escape(full)}\b(?=\s+\w)", re.IGNORECASE), short) for full, short in pairs]
    expand = [(re.compile(rf"\b{re.escape(short)}\b", re.IGNORECASE), full) for full, short in pairs]
    expand += _rules(table, "slang_expansions", STYLES_FILE)
    names = field(table, "names", STYLES_FILE)
    keep = strings(names, "keep_capital", f"{STYLES_FILE}: 'names'")
    proper = (_proper_words() | set(keep)) - set(strings(names, "not_names", f"{STYLES_FILE}: 'names'"))
    return phrases, contract, expand, proper


_POLES, _CONTRACT, _EXPAND, _PROPER = load_styles()


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _match_case(template: str, word: str) -> str:
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


def _sub_all(text: str, rules) -> str:
    """Apply (pattern, replacement) rules, keeping the capital of a capitalised match."""
    for pattern, repl in rules:
        text = pattern.sub(lambda m, r=repl: _match_case(m.group(0), r), text)
    return text


def _lower_first(sentence: str) -> str:
    """Lower-case the first letter unless the first word is a name, acronym or 'I'."""
    first = re.match(r"[A-Za-z][\w'-]*", sentence)
    if not first:
        return sentence
    word = first.group(0)
    stem = word.split("'")[0]
    if stem in _PROPER or any(ch.isupper() for ch in word[1:]) or any(ch.isdigit() for ch in word):
        return sentence
    return sentence[0].lower() + sentence[1:]


def _prefix(sentence: str, prefix: str) -> str:
    return prefix + _lower_first(sentence)


def _tag(sentence: str, tag: str) -> str:
    """Insert a trailing tag before the sentence's final punctuation."""
    m = re.search(r"[.!?]+$", sentence)
    return sentence[: m.start()] + tag + m.group(0) if m else sentence + tag


def _exclaim(sentence: str) -> str:
    return re.sub(r"\.$", "!", sentence)


def _as_style(style) -> np.ndarray:
    s = np.asarray(style).astype(np.int8).reshape(-1)
    if s.shape != (len(ATTRIBUTES),) or not np.isin(s, STYLE_VALUES).all():
        raise ValueError(f"style must be {len(ATTRIBUTES)} values in {{-1, 0, 1}}, got {style!r}")
    return s


def realize(prompt_entry: PromptEntry, style, rng: np.random.Generator) -> str:
    """Compose the answer to ``prompt_entry`` in ``style`` (7 values in {-1, 0, 1}).

    An all-zero style returns the neutral core answer unchanged.
    """
    length, formality, humour, elicitation, politeness, enthusiasm, confidence = (int(v) for v in _as_style(style))

    def long_form() -> bool:
        return length == 1 or (length == 0 and bool(rng.random() < 0.25))

    body = list(prompt_entry.content)
    if length == -1:
        body = body[:1]
    elif length == 0 and len(body) > 2 and np.count_nonzero(style) >= 4:
        body = body[:-1]
    elif length == 1:
        extras = TOPIC_EXTRAS[prompt_entry.topic]
        picks = rng.choice(len(extras), size=2, replace=False)
        body += [extras[int(i)] for i in sorted(picks)] + [_pick(rng, GENERIC_EXTRAS)]

    openers: list[str] = []
    closers: list[str] = []
    ending: list[str] = []

    if confidence:
        pole = _POLES["confident" if confidence > 0 else "hedge"]
        body = [_sub_all(s, pole["words"]) for s in body]
        body[0] = _prefix(body[0], _pick(rng, pole["prefixes"]))
        closers.append(_pick(rng, pole["long" if long_form() else "short"]))

    if formality > 0:
        for i in range(1, len(body)):
            if i == 1 or rng.random() < 0.6:
                body[i] = _prefix(body[i], _pick(rng, _POLES["formal"]["connectives"]))
        if len(body) == 1 or rng.random() < 0.5:
            body[0] = _prefix(body[0], _pick(rng, _POLES["formal"]["openers"]))
        if long_form():
            closers.append(_pick(rng, _POLES["formal"]["closers"]))
    elif formality < 0:
        filler = len(body) == 1 or rng.random() < 0.7
        if filler:
            body[0] = _prefix(body[0], _pick(rng, _POLES["informal"]["fillers"]))
        if not filler or rng.random() < 0.7:
            i = int(rng.integers(len(body)))
            body[i] = _tag(body[i], _pick(rng, _POLES["informal"]["tags"]))

    if enthusiasm > 0:
        body[0] = _exclaim(body[0])
        if long_form():
            openers.append(_pick(rng, _POLES["enthusiastic"]["openers"]))
            closers.append(_pick(rng, _POLES["enthusiastic"]["closers"]))
            body[-1] = _exclaim(body[-1])
        else:
            (openers if rng.random() < 0.5 else closers).append(_pick(rng, _POLES["enthusiastic"]["short"]))
    elif enthusiasm < 0:
        closers.append(_pick(rng, _POLES["demure"]["long" if long_form() else "short"]))

    if humour > 0:
        if long_form():
            topic_quips = TOPIC_QUIPS[prompt_entry.topic]
            quip = _pick(rng, topic_quips if rng.random() < 0.5 else _POLES["humour"]["long"])
        else:
            quip = _pick(rng, _POLES["humour"]["short"])
        body.insert(int(rng.integers(1, len(body) + 1)), quip)
    elif humour < 0:
        closers.append(_pick(rng, _POLES["serious"]["long" if long_form() else "short"]))

    if closers:
        closers = [closers[int(i)] for i in rng.permutation(len(closers))]

    if politeness > 0:
        if long_form():
            openers.insert(0, _pick(rng, _POLES["polite"]["openers"]))
            closers.append(_pick(rng, _POLES["polite"]["closers"]))
        elif rng.random() < 0.5:
            openers.insert(0, _pick(rng, _POLES["polite"]["short_openers"]))
        else:
            closers.append(_pick(rng, _POLES["polite"]["short_closers"]))
    elif politeness < 0:
        if long_form():
            openers.insert(0, _pick(rng, _POLES["rude"]["openers"]))
            closers.append(_pick(rng, _POLES["rude"]["closers"]))
        elif rng.random() < 0.5:
            body[0] = _prefix(body[0], _pick(rng, _POLES["rude"]["short_prefixes"]))
        else:
            closers.append(_pick(rng, _POLES["rude"]["short_closers"]))

    if elicitation > 0:
        if long_form():
            pool = TOPIC_FOLLOWUPS[prompt_entry.topic] if rng.random() < 0.6 else _POLES["elicit"]["long"]
            ending.append(_pick(rng, pool))
        else:
            ending.append(_pick(rng, _POLES["elicit"]["short"]))
    elif elicitation < 0:
        ending.append(_pick(rng, _POLES["closure"]["long" if long_form() else "short"]))

    text = " ".join(openers + body + closers + ending)
    if formality > 0:
        text = _sub_all(_sub_all(text, _EXPAND), _POLES["formal"]["words"])
    elif formality < 0:
        text = _sub_all(_sub_all(text, _CONTRACT), _POLES["informal"]["words"])
    return text


def random_styles(n: int, rng: np.random.Generator, probs: Sequence[float] = DEFAULT_STYLE_PROBS) -> np.ndarray:
    """Draw ``n`` distinct styles (while possible): int8 array (n, 7) in {-1, 0, 1}."""
    k = len(ATTRIBUTES)
    styles = rng.choice(STYLE_VALUES, size=(n, k), p=np.asarray(probs, dtype=float))
    for i in range(1, min(n, 3**k)):
        while (styles[:i] == styles[i]).all(axis=1).any():
            styles[i] = rng.choice(STYLE_VALUES, size=k, p=np.asarray(probs, dtype=float))
    return styles


def candidates_for_prompt(
    prompt_entry: PromptEntry,
    n: int,
    rng: np.random.Generator,
    probs: Sequence[float] = DEFAULT_STYLE_PROBS,
) -> list[tuple[str, np.ndarray]]:
    """Draw ``n`` responses to one prompt with random, distinct styles: [(text, style)]."""
    return [(realize(prompt_entry, s, rng), s) for s in random_styles(n, rng, probs)]
