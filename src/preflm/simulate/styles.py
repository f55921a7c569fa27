"""Style transforms: realise a prompt's neutral answer in a chosen style.

A style is an int vector of 7 values in {-1, 0, +1}, one per attribute in
``ATTRIBUTES`` order: +1 realises the first pole, -1 the second, 0 leaves the
attribute unmarked. Each pole has several phrase variants picked by the
caller's ``numpy.random.Generator``, so the same style yields varied but
reproducible natural text. Concise answers take short variants of every other
pole, and unmarked-length answers mostly short ones (dropping their last
content sentence when heavily decorated), so that the length pole stays the
dominant driver of word count.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .attributes import ATTRIBUTES
from .bank import GENERIC_EXTRAS, PROMPTS, TOPIC_EXTRAS, TOPIC_FOLLOWUPS, TOPIC_QUIPS, PromptEntry

__all__ = ["DEFAULT_STYLE_PROBS", "STYLE_VALUES", "candidates_for_prompt", "random_styles", "realize"]

STYLE_VALUES = np.array([-1, 0, 1], dtype=np.int8)
DEFAULT_STYLE_PROBS = (0.35, 0.3, 0.35)
"""Probabilities of -1, 0, +1 per attribute when drawing candidate styles."""

CONFIDENT_PREFIXES = ("Without a doubt, ", "Definitely, ", "Absolutely, ", "Certainly, ", "I am certain of this: ")
CONFIDENT_LONG = (
    "This works every time.",
    "Trust me, this is the right approach.",
    "You can count on it.",
    "There is no doubt about it.",
)
CONFIDENT_SHORT = ("Guaranteed.", "No doubt.", "Every time.")
HEDGE_PREFIXES = ("Maybe ", "Perhaps ", "If I remember correctly, ", "As far as I know, ")
HEDGE_LONG = (
    "I am not entirely sure, though.",
    "I could be wrong about this, so double-check it.",
    "That is my best guess, at least.",
    "It might depend on your situation, I think.",
)
HEDGE_SHORT = ("I am not sure, though.", "Probably, anyway.", "Maybe.")

ENTHUSIASTIC_OPENERS = (
    "Oh, I love this question!",
    "What an exciting thing to work on!",
    "Wow, this is a fantastic topic!",
    "This is such a wonderful thing to learn about!",
)
ENTHUSIASTIC_CLOSERS = (
    "You are going to love the results!",
    "This is such a rewarding thing to get right!",
    "Enjoy it, because this is the exciting part!",
    "It is amazing how much difference this makes!",
)
ENTHUSIASTIC_SHORT = ("Wow!", "Love this!", "So exciting!", "Amazing!")
DEMURE_LONG = (
    "It is a fairly ordinary approach, but it works adequately.",
    "The results tend to be modest, and that is acceptable.",
    "Nothing special, just a reasonable way to go about it.",
    "It is an unremarkable method, though a serviceable one.",
)
DEMURE_SHORT = ("Nothing special.", "It is adequate.", "Fairly ordinary.")

HUMOUR_LONG = (
    "Plot twist: the hardest part is simply starting.",
    "It is not rocket science, unless you asked about rockets, haha.",
    "Your future self will thank you, ideally with a tiny parade (just kidding).",
    "I would tell you a joke here, but the punchline needs more practice.",
    "Spoiler alert: it works better than my stand-up comedy.",
)
HUMOUR_SHORT = ("Easy peasy, haha.", "Plot twist: it works.", "Spoiler alert: it works.", "No rocket science required, haha.")
SERIOUS_LONG = (
    "This deserves careful attention, so follow the steps precisely.",
    "Treat this as a serious matter and approach it methodically.",
    "Accuracy matters here, so work through it carefully.",
    "Approach this with care and attention to detail.",
)
SERIOUS_SHORT = ("Proceed carefully.", "Follow this precisely.", "Work through it carefully.")

POLITE_OPENERS = (
    "Thank you for the question.",
    "Thanks for asking, and I am happy to help.",
    "Of course, I would be glad to help with this.",
    "That is a good question, and I appreciate you asking.",
)
POLITE_CLOSERS = (
    "I hope this helps, and thank you for asking.",
    "Wishing you the best of luck with it.",
    "I hope that helps, and thanks again for the question.",
    "Please take care, and good luck.",
)
POLITE_SHORT_OPENERS = ("Thanks for asking.", "Happy to help.", "Good question, thank you.")
POLITE_SHORT_CLOSERS = ("Hope this helps.", "Good luck, and thank you.", "Thanks again.")
RUDE_OPENERS = (
    "Obviously, this is basic.",
    "Come on, everyone knows this.",
    "This is not hard, so pay attention.",
    "You could have looked this up yourself.",
)
RUDE_CLOSERS = (
    "Figure out the rest yourself.",
    "That should have been obvious.",
    "Try to keep up next time.",
    "Next time, look it up before asking.",
)
RUDE_SHORT_PREFIXES = ("Obviously, ", "Duh, ", "Come on, ")
RUDE_SHORT_CLOSERS = ("Not hard.", "Keep up.", "Obviously.")

GENERIC_FOLLOWUPS = (
    "Would you like me to go into more detail on any of these steps?",
    "Could you tell me a bit more about your situation?",
    "Which part would you like to explore next?",
    "Does that match what you had in mind?",
)
FOLLOWUP_SHORT = ("Would you like more detail?", "What have you tried so far?", "Does that fit your situation?", "Anything else you need?")
CLOSURE_LONG = (
    "That covers everything you need to know.",
    "That is the whole answer, and nothing further is needed.",
    "That is all there is to it.",
    "Nothing more to add, so you are all set.",
)
CLOSURE_SHORT = ("That is all.", "That covers it.", "Nothing more to add.")

FORMAL_CONNECTIVES = ("Furthermore, ", "Moreover, ", "In addition, ", "Additionally, ", "Likewise, ")
FORMAL_OPENERS = ("With regard to your enquiry, ", "In principle, ", "As a general principle, ", "Regarding this matter, ")
FORMAL_CLOSERS = (
    "It is therefore advisable to proceed in the manner described above.",
    "One should accordingly follow these steps in sequence.",
    "Consequently, these measures ought to be observed consistently.",
)
INFORMAL_FILLERS = ("So yeah, ", "Basically, ", "Okay so, ", "Yeah, ")
INFORMAL_TAGS = (", tbh", ", no biggie", ", y'know", " and stuff")

_FORMAL_WORDS = [
    (re.compile(p, re.IGNORECASE), r)
    for p, r in (
        (r"\bmake sure\b", "ensure"),
        (r"\ba lot of\b", "a considerable amount of"),
        (r"\blots of\b", "numerous"),
        (r"\bbuy\b", "purchase"),
        (r"\bbuying\b", "purchasing"),
        (r"\babout (?=\d)", "approximately "),
        (r"\bcheck\b(?!\s+in\b|-)", "verify"),
        (r"\buse\b", "utilise"),
        (r"\bused\b", "utilised"),
        (r"\busing\b", "utilising"),
        (r"\buses\b", "utilises"),
    )
]
_INFORMAL_WORDS = [
    (re.compile(p, re.IGNORECASE), r)
    for p, r in (
        (r"\bvery\b", "super"),
        (r"\ba lot of\b", "a ton of"),
        (r"\bgoing to\b", "gonna"),
        (r"\bwant to\b", "wanna"),
        (r"\bhave to\b", "gotta"),
        (r"\breally\b", "totally"),
        (r"\bkind of\b", "kinda"),
    )
]
_CONTRACTIONS = (
    ("do not", "don't"), ("does not", "doesn't"), ("did not", "didn't"), ("is not", "isn't"),
    ("are not", "aren't"), ("cannot", "can't"), ("will not", "won't"), ("it is", "it's"),
    ("that is", "that's"), ("there is", "there's"), ("you are", "you're"), ("I am", "I'm"),
    ("I would", "I'd"), ("you will", "you'll"), ("I will", "I'll"), ("they are", "they're"),
    ("we are", "we're"), ("what is", "what's"), ("let us", "let's"),
)
_CONTRACT = [(re.compile(rf"\b{full}\b(?=\s+\w)", re.IGNORECASE), short) for full, short in _CONTRACTIONS]
_EXPAND = [(re.compile(rf"\b{re.escape(short)}\b", re.IGNORECASE), full) for full, short in _CONTRACTIONS] + [
    (re.compile(r"\bgonna\b", re.IGNORECASE), "going to"),
    (re.compile(r"\bwanna\b", re.IGNORECASE), "want to"),
]
_CONFIDENT_WORDS = [(re.compile(r"\busually\b"), "always"), (re.compile(r"\btends to\b"), "will")]
_HEDGE_WORDS = [(re.compile(r"\busually\b"), "probably"), (re.compile(r"\btends to\b"), "might")]


def _proper_words() -> frozenset[str]:
    """Capitalised words seen mid-sentence in the bank: names that must keep their capital."""
    seen = {"I"}
    for sentence in [t for e in PROMPTS for t in (e.question, *e.content)]:
        seen.update(w for w in re.findall(r"[A-Za-z][\w-]*", sentence)[1:] if w[0].isupper())
    return frozenset(seen)


_PROPER = (_proper_words() | {"Apollo", "Buzz", "Dockerfile", "Enlightenment", "JavaScript"}) - {"Central"}


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
        rules, prefixes, long_set, short_set = (
            (_CONFIDENT_WORDS, CONFIDENT_PREFIXES, CONFIDENT_LONG, CONFIDENT_SHORT)
            if confidence > 0
            else (_HEDGE_WORDS, HEDGE_PREFIXES, HEDGE_LONG, HEDGE_SHORT)
        )
        body = [_sub_all(s, rules) for s in body]
        body[0] = _prefix(body[0], _pick(rng, prefixes))
        closers.append(_pick(rng, long_set if long_form() else short_set))

    if formality > 0:
        for i in range(1, len(body)):
            if i == 1 or rng.random() < 0.6:
                body[i] = _prefix(body[i], _pick(rng, FORMAL_CONNECTIVES))
        if len(body) == 1 or rng.random() < 0.5:
            body[0] = _prefix(body[0], _pick(rng, FORMAL_OPENERS))
        if long_form():
            closers.append(_pick(rng, FORMAL_CLOSERS))
    elif formality < 0:
        filler = len(body) == 1 or rng.random() < 0.7
        if filler:
            body[0] = _prefix(body[0], _pick(rng, INFORMAL_FILLERS))
        if not filler or rng.random() < 0.7:
            i = int(rng.integers(len(body)))
            body[i] = _tag(body[i], _pick(rng, INFORMAL_TAGS))

    if enthusiasm > 0:
        body[0] = _exclaim(body[0])
        if long_form():
            openers.append(_pick(rng, ENTHUSIASTIC_OPENERS))
            closers.append(_pick(rng, ENTHUSIASTIC_CLOSERS))
            body[-1] = _exclaim(body[-1])
        else:
            (openers if rng.random() < 0.5 else closers).append(_pick(rng, ENTHUSIASTIC_SHORT))
    elif enthusiasm < 0:
        closers.append(_pick(rng, DEMURE_LONG if long_form() else DEMURE_SHORT))

    if humour > 0:
        if long_form():
            topic_quips = TOPIC_QUIPS[prompt_entry.topic]
            quip = _pick(rng, topic_quips if rng.random() < 0.5 else HUMOUR_LONG)
        else:
            quip = _pick(rng, HUMOUR_SHORT)
        body.insert(int(rng.integers(1, len(body) + 1)), quip)
    elif humour < 0:
        closers.append(_pick(rng, SERIOUS_LONG if long_form() else SERIOUS_SHORT))

    if closers:
        closers = [closers[int(i)] for i in rng.permutation(len(closers))]

    if politeness > 0:
        if long_form():
            openers.insert(0, _pick(rng, POLITE_OPENERS))
            closers.append(_pick(rng, POLITE_CLOSERS))
        elif rng.random() < 0.5:
            openers.insert(0, _pick(rng, POLITE_SHORT_OPENERS))
        else:
            closers.append(_pick(rng, POLITE_SHORT_CLOSERS))
    elif politeness < 0:
        if long_form():
            openers.insert(0, _pick(rng, RUDE_OPENERS))
            closers.append(_pick(rng, RUDE_CLOSERS))
        elif rng.random() < 0.5:
            body[0] = _prefix(body[0], _pick(rng, RUDE_SHORT_PREFIXES))
        else:
            closers.append(_pick(rng, RUDE_SHORT_CLOSERS))

    if elicitation > 0:
        if long_form():
            pool = TOPIC_FOLLOWUPS[prompt_entry.topic] if rng.random() < 0.6 else GENERIC_FOLLOWUPS
            ending.append(_pick(rng, pool))
        else:
            ending.append(_pick(rng, FOLLOWUP_SHORT))
    elif elicitation < 0:
        ending.append(_pick(rng, CLOSURE_LONG if long_form() else CLOSURE_SHORT))

    text = " ".join(openers + body + closers + ending)
    if formality > 0:
        text = _sub_all(_sub_all(text, _EXPAND), _FORMAL_WORDS)
    elif formality < 0:
        text = _sub_all(_sub_all(text, _CONTRACT), _INFORMAL_WORDS)
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
