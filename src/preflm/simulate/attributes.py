"""The seven stylistic attributes of the Attributes world and their text scorers.

Every scorer reads plain text only (no style labels), so it can judge any
response, including LLM outputs. Each returns a tanh-squashed score in
(-1, 1): positive means the text leans to the attribute's first pole, negative
to the second, and a plain factual answer sits near 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "Attribute",
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "SCORERS",
    "score_text",
    "score_texts",
    "score_length",
    "score_formality",
    "score_humour",
    "score_elicitation",
    "score_politeness",
    "score_enthusiasm",
    "score_confidence",
]


@dataclass(frozen=True)
class Attribute:
    """One preference axis: ``positive`` is the pole a score of +1 means."""

    name: str
    positive: str
    negative: str
    description: str


ATTRIBUTES: list[Attribute] = [
    Attribute("length", "verbose", "concise", "How long and elaborate the answer is."),
    Attribute("formality", "formal", "informal", "Formal register versus contractions and slang."),
    Attribute("humour", "humorous", "serious", "Light jokes and quips versus a sober tone."),
    Attribute(
        "elicitation",
        "asks-questions",
        "no-questions",
        "Ends by asking the user a follow-up question versus closing the topic.",
    ),
    Attribute("politeness", "polite", "rude", "Courteous phrasing versus dismissive remarks."),
    Attribute("enthusiasm", "enthusiastic", "demure", "Excited exclamations versus flat, muted wording."),
    Attribute("confidence", "confident", "uncertain", "Assertive claims versus hedges."),
]
ATTRIBUTE_NAMES: list[str] = [a.name for a in ATTRIBUTES]


def _lexicon(*terms: str) -> re.Pattern[str]:
    """Compile terms into one case-insensitive pattern matching whole words/phrases."""
    parts = []
    for term in sorted(set(terms), key=len, reverse=True):
        pat = r"\s+".join(re.escape(w) for w in term.split())
        if term[0].isalnum():
            pat = r"\b" + pat
        if term[-1].isalnum():
            pat += r"\b"
        parts.append(pat)
    return re.compile("|".join(parts), re.IGNORECASE)


FORMAL = _lexicon(
    "furthermore", "moreover", "in addition", "additionally", "accordingly", "therefore",
    "consequently", "thus", "hence", "nevertheless", "likewise", "with regard to",
    "regarding", "enquiry", "in principle", "as a general principle", "ensure", "considerable",
    "numerous", "purchase", "purchasing", "approximately", "verify", "utilise", "utilised",
    "utilising", "utilises", "utilize", "advisable", "one should", "in the manner described",
)
SLANG = _lexicon(
    "gonna", "wanna", "gotta", "kinda", "sorta", "tbh", "btw", "yeah", "yep", "nope", "stuff",
    "basically", "okay so", "super", "a ton of", "no biggie", "y'know", "hey", "folks", "dude",
    "totally", "pretty much", "ok", "okay", "legit",
)
CONTRACTION = re.compile(
    r"\b\w+n't\b|\b(?:i|you|we|they|he|she|it|that|there|here|what|who|where|how|let)"
    r"'(?:s|re|ll|ve|m|d)\b",
    re.IGNORECASE,
)
HUMOUR = _lexicon(
    "haha", "hahaha", "hehe", "lol", "joke", "jokes", "punchline", "pun intended", "pun",
    "kidding", "plot twist", "spoiler alert", ";)", ":)", ":D", "comedy", "stand-up", "funny",
    "easy peasy",
)
SERIOUS = _lexicon(
    "careful", "carefully", "precisely", "methodically", "serious matter", "seriously",
    "attention to detail", "rigorous", "rigorously", "caution", "cautiously", "diligently",
    "meticulous", "meticulously", "with care",
)
ASK = _lexicon(
    "would you like", "could you tell", "could you share", "let me know", "tell me more",
    "what have you tried", "are you",
)
CLOSURE = _lexicon(
    "that covers", "all there is to it", "that is all", "that's all", "nothing further",
    "nothing more to add", "whole answer", "end of story", "case closed", "no need to ask",
    "you are all set", "you're all set", "no further questions",
)
POLITE = _lexicon(
    "please", "thank you", "thanks", "glad", "happy to help", "hope this helps", "hope that helps",
    "best of luck", "good luck", "wishing you", "kindly", "appreciate", "my pleasure",
    "you are welcome", "you're welcome", "of course", "sorry", "good question", "great question",
    "take care", "gladly",
)
RUDE = _lexicon(
    "obviously", "obvious", "everyone knows", "not hard", "isn't hard", "pay attention", "looked this up",
    "look it up", "figure it out", "figure out the rest", "keep up", "is basic", "come on", "duh",
    "waste of time", "waste of my time", "lazy", "whatever", "should have known", "not my problem",
    "stupid", "pointless", "ridiculous",
)
EXCITED = _lexicon(
    "love", "amazing", "awesome", "fantastic", "exciting", "excited", "wonderful", "incredible",
    "brilliant", "thrilled", "wow", "superb", "rewarding", "delighted", "so much fun", "yay",
)
MUTED = _lexicon(
    "fairly", "ordinary", "modest", "adequate", "adequately", "reasonable", "nothing special",
    "unremarkable", "acceptable", "so-so", "somewhat", "serviceable", "low-key", "unexciting",
)
CONFIDENT = _lexicon(
    "definitely", "certainly", "absolutely", "without a doubt", "no doubt", "undoubtedly",
    "guaranteed", "every time", "always", "trust me", "count on", "i am certain", "i'm certain",
    "for sure", "without question", "beyond doubt",
)
HEDGE = _lexicon(
    "maybe", "perhaps", "might", "possibly", "probably", "i think", "i believe", "i guess",
    "i suppose", "not sure", "not entirely sure", "not certain", "could be wrong", "best guess",
    "if i remember correctly", "as far as i know", "seems", "seem", "unsure", "i suspect",
)

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\-][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")

LENGTH_REF_WORDS = 40.0
"""Word count that scores 0: about the length of a plain three-sentence answer."""
LENGTH_SCALE_SHORT = 0.45
"""Log-ratio below the reference that maps to tanh(-1): ~1.6x shorter."""
LENGTH_SCALE_LONG = 0.8
"""Log-ratio above the reference that maps to tanh(1): ~2.2x longer (answers grow more than they shrink)."""

_COLUMNS = (
    "words", "sentences", "questions", "exclaims", "formal", "informal", "humour", "serious",
    "ask", "closure", "polite", "rude", "excited", "muted", "confident", "hedge",
)


def _count_one(text: str) -> list[float]:
    """Raw surface counts of one text, in ``_COLUMNS`` order."""
    t = text.replace("\u2019", "'").strip()
    sentences = [s for s in _SENTENCE_END.split(t) if s.strip()]
    tails = [s.rstrip(" \"')]") for s in sentences]
    return [
        len(_WORD.findall(t)),
        max(len(sentences), 1),
        sum(s.endswith("?") for s in tails),
        sum(s.endswith("!") for s in tails),
        len(FORMAL.findall(t)),
        len(CONTRACTION.findall(t)) + len(SLANG.findall(t)),
        len(HUMOUR.findall(t)),
        len(SERIOUS.findall(t)),
        len(ASK.findall(t)),
        len(CLOSURE.findall(t)),
        len(POLITE.findall(t)),
        len(RUDE.findall(t)),
        len(EXCITED.findall(t)),
        len(MUTED.findall(t)),
        len(CONFIDENT.findall(t)),
        len(HEDGE.findall(t)),
    ]


def _counts(texts: str | Sequence[str]) -> dict[str, np.ndarray]:
    """Count surface features for a batch of texts: one float array per feature."""
    batch = [texts] if isinstance(texts, str) else list(texts)
    table = np.array([_count_one(t) for t in batch], dtype=float).reshape(len(batch), len(_COLUMNS))
    return {name: table[:, j] for j, name in enumerate(_COLUMNS)}


def _density(c: dict[str, np.ndarray], evidence: np.ndarray) -> np.ndarray:
    """Evidence per sqrt(sentence): markers matter less when diluted in long texts."""
    return evidence / np.sqrt(c["sentences"])


def _length(c: dict[str, np.ndarray]) -> np.ndarray:
    ratio = np.log(np.maximum(c["words"], 1.0) / LENGTH_REF_WORDS)
    return np.tanh(ratio / np.where(ratio < 0, LENGTH_SCALE_SHORT, LENGTH_SCALE_LONG))


def _formality(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.tanh(1.6 * _density(c, c["formal"] - c["informal"]))


def _humour(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.tanh(2.5 * _density(c, c["humour"] - c["serious"]))


def _elicitation(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.tanh(1.2 * c["questions"] + 0.4 * c["ask"] - 1.2 * c["closure"])


def _politeness(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.tanh(2.0 * _density(c, c["polite"] - c["rude"]))


def _enthusiasm(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.tanh(1.6 * _density(c, 0.6 * c["exclaims"] + c["excited"] - 1.5 * c["muted"]))


def _confidence(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.tanh(2.0 * _density(c, c["confident"] - c["hedge"]))


def _public(fn, doc: str):
    """Wrap a count-based scorer so it takes a text (-> float) or texts (-> array)."""

    def scorer(texts: str | Sequence[str]) -> float | np.ndarray:
        out = fn(_counts(texts))
        return float(out[0]) if isinstance(texts, str) else out

    scorer.__name__ = scorer.__qualname__ = "score" + fn.__name__
    scorer.__doc__ = doc
    return scorer


score_length = _public(
    _length,
    "Verbose vs concise: tanh(log(words / 40) / s), s = 0.45 below and 0.8 above 40 words,"
    " so a plain ~40-word answer scores 0.",
)
score_formality = _public(
    _formality,
    "Formal vs informal: formal connectives and vocabulary (furthermore, ensure, approximately)"
    " minus contractions and slang (gonna, tbh, super), per sqrt(sentences).",
)
score_humour = _public(
    _humour,
    "Humorous vs serious: joke markers (haha, pun, just kidding, plot twist) minus sober markers"
    " (carefully, precisely, methodically), per sqrt(sentences).",
)
score_elicitation = _public(
    _elicitation,
    "Asks follow-up questions vs not: question sentences and asking phrases (would you like)"
    " minus closing statements (that covers it, nothing further). Not length-normalised.",
)
score_politeness = _public(
    _politeness,
    "Polite vs rude: courtesy phrases (please, thank you, hope this helps) minus dismissive ones"
    " (obviously, not hard, figure it out), per sqrt(sentences).",
)
score_enthusiasm = _public(
    _enthusiasm,
    "Enthusiastic vs demure: exclamations and excited words (love, amazing, wow) minus muted"
    " words (fairly, adequate, nothing special), per sqrt(sentences).",
)
score_confidence = _public(
    _confidence,
    "Confident vs uncertain: assertive markers (definitely, always, without a doubt) minus hedges"
    " (maybe, perhaps, I think, not sure), per sqrt(sentences).",
)

SCORERS = {
    "length": score_length,
    "formality": score_formality,
    "humour": score_humour,
    "elicitation": score_elicitation,
    "politeness": score_politeness,
    "enthusiasm": score_enthusiasm,
    "confidence": score_confidence,
}
"""Public per-attribute scorers, keyed by attribute name, in ``ATTRIBUTES`` order."""

_BATCH = (_length, _formality, _humour, _elicitation, _politeness, _enthusiasm, _confidence)


def score_texts(texts: Sequence[str]) -> np.ndarray:
    """Score texts on all attributes at once: array (n, 7) in ``ATTRIBUTES`` order."""
    if isinstance(texts, str):
        raise TypeError("score_texts takes a sequence of texts; use score_text for one text")
    c = _counts(texts)
    if len(c["words"]) == 0:
        return np.zeros((0, len(ATTRIBUTES)))
    return np.stack([fn(c) for fn in _BATCH], axis=1)


def score_text(text: str) -> np.ndarray:
    """Score one text on all attributes: array (7,)."""
    return score_texts([text])[0]

