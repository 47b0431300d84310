"""Daily dose in mg from a prescriber's free-text dosage ("60 mg daily", "20mg bd"), or None.

Used only when the record has no structured dose (issue 15: a course of prednisone
"60 mg daily" carried no dose, so the PJP prompt stayed silent). Conservative by design:
the text must be one dose in mg followed by one known frequency (and optionally a time of
day, a route or a course length); anything else - a second number, a range, a weight- or
surface-based dose, a taper, "as directed", an unknown word - gives None, never a guess.

Safe on hostile input: the text is capped in length, only ASCII digits count (``str``
patterns would otherwise take Arabic-Indic or full-width digits as numbers), and every
pattern is a flat alternation or a single character class with no nested quantifiers, so
matching is linear in the (capped) length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MAX_TEXT", "MAX_DAILY_MG", "GRAMMAR_WORDS", "daily_dose_from_text"]

MAX_TEXT = 200  # a sig is a line; a longer text is a note, not a dose to read
# A sanity bound, not a clinical claim: a figure above it is more likely a typo or a unit slip
# than a dose, and a wrong large dose would fire prompts. Above it the dose is unknown.
MAX_DAILY_MG = 5000.0

_TOKEN = re.compile(r"[0-9][0-9.,]*|[a-z]+|\S")
_NUMBER = re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,3})?")
_LETTER_DOT = re.compile(r"(?<=[a-z])\.(?=[a-z])")  # b.i.d. -> bid.
_LONE_DOT = re.compile(r"\.(?![0-9])|(?<![0-9])\.")  # a full stop that is no decimal point
_BARE_FRACTION = re.compile(r"(?<![0-9])[.,][0-9]")  # ".5 mg" must never become "5 mg"

_MG = frozenset({"mg", "mgs", "milligram", "milligrams"})
_DROPPED_PUNCTUATION = frozenset({"(", ")", ",", ":", ";"})
# Words that say nothing about the amount or the frequency. Drug names come from the terminology.
_FILLER = frozenset(
    {
        "take",
        "takes",
        "taking",
        "give",
        "given",
        "tablet",
        "tablets",
        "tab",
        "tabs",
        "capsule",
        "capsules",
        "cap",
        "caps",
        "by",
        "mouth",
        "oral",
        "orally",
        "po",
        "iv",
        "ivi",
        "intravenous",
        "intravenously",
        "im",
        "intramuscular",
        "intramuscularly",
        "sc",
        "sq",
        "subcut",
        "subcutaneous",
        "subcutaneously",
        "injection",
        "infusion",
        "inject",
        "dose",
        "with",
        "food",
        "after",
        "before",
        "breakfast",
        "meals",
    }
)

# One dose in mg, then one frequency, then optional time of day and course length. The
# frequency phrases are literal alternatives; the factor is doses per day.
_FREQUENCIES: dict[str, float] = {
    "daily": 1,
    "once daily": 1,
    "od": 1,
    "qd": 1,
    "once a day": 1,
    "once per day": 1,
    "a day": 1,
    "per day": 1,
    "/ day": 1,
    "/ d": 1,
    "every day": 1,
    "each day": 1,
    "qam": 1,
    "qpm": 1,
    "qhs": 1,
    "mane": 1,
    "nocte": 1,
    "in the morning": 1,
    "every morning": 1,
    "each morning": 1,
    "at night": 1,
    "at bedtime": 1,
    "every night": 1,
    "q 24 h": 1,
    "every 24 hours": 1,
    "bd": 2,
    "bid": 2,
    "twice daily": 2,
    "twice a day": 2,
    "twice per day": 2,
    "two times a day": 2,
    "2 times a day": 2,
    "2 times daily": 2,
    "q 12 h": 2,
    "every 12 hours": 2,
    "tds": 3,
    "tid": 3,
    "three times daily": 3,
    "three times a day": 3,
    "3 times a day": 3,
    "3 times daily": 3,
    "q 8 h": 3,
    "every 8 hours": 3,
    "qds": 4,
    "qid": 4,
    "four times daily": 4,
    "four times a day": 4,
    "4 times a day": 4,
    "4 times daily": 4,
    "q 6 h": 4,
    "every 6 hours": 4,
    "every other day": 0.5,
    "on alternate days": 0.5,
    "alternate days": 0.5,
    "every second day": 0.5,
    "every 2 days": 0.5,
    "eod": 0.5,
    "qod": 0.5,
    "every 48 hours": 0.5,
    "weekly": 1 / 7,
    "once weekly": 1 / 7,
    "once a week": 1 / 7,
    "once per week": 1 / 7,
    "every week": 1 / 7,
    "per week": 1 / 7,
    "a week": 1 / 7,
    "/ week": 1 / 7,
    "/ wk": 1 / 7,
    "qw": 1 / 7,
    "qwk": 1 / 7,
}
# Allowed after a once-a-day frequency only ("20 mg daily in the morning"); after "bd" it contradicts.
_TIME_OF_DAY = ("in the morning", "at night", "at bedtime", "in the evening")


def _alternation(phrases: Iterable[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(phrases, key=lambda p: (-len(p), p)))


_SIG = re.compile(
    rf"(?P<dose>[0-9.]+) mg (?P<freq>{_alternation(_FREQUENCIES)})"
    rf"(?P<time> (?:{_alternation(_TIME_OF_DAY)}))?"
    r"(?: (?:x|for) [0-9]+(?: (?:days|day|weeks|week|doses|months))?)?"
)

# Every word the grammar reads: a drug-name word that is one of these is not dropped as a name.
GRAMMAR_WORDS = (
    frozenset(w for phrase in (*_FREQUENCIES, *_TIME_OF_DAY) for w in phrase.split())
    | _MG
    | {"x", "for", "days", "day", "weeks", "week", "doses", "months"}
)


def daily_dose_from_text(text: object, name_words: frozenset[str] = frozenset()) -> float | None:
    """mg per day from one dosage text, or None when it is not one plain dose at a known frequency.

    ``name_words``: words of drug names that may appear in the text ("prednisone 40 mg po qam").
    """
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        return None
    t = text.lower()
    # (isascii first: one flag read; the character scan only for text with non-ASCII characters)
    if not t.isascii() and any(ch.isnumeric() and not ("0" <= ch <= "9") for ch in t):
        return None  # a non-ASCII digit or a vulgar fraction: never read as a number
    if _BARE_FRACTION.search(t):
        return None
    t = _LONE_DOT.sub(" ", _LETTER_DOT.sub("", t))
    words: list[str] = []
    for tok in _TOKEN.findall(t):
        if tok[0].isdigit():
            tok = tok.rstrip(",")
            if not _NUMBER.fullmatch(tok):
                return None  # "1,000", "1.2.3", a 6-digit figure: unreadable, not a dose
            words.append(tok)
        elif tok in _MG:
            words.append("mg")
        elif tok in _FILLER or tok in name_words or tok in _DROPPED_PUNCTUATION:
            continue
        elif tok == "/" or tok.isalpha():
            words.append(tok)  # the grammar below decides; an unknown word makes it fail
        else:
            return None  # "-" (a range or a sign), "+", "~", "<", "x2"-like symbols...
    m = _SIG.fullmatch(" ".join(words))
    if m is None:
        return None
    per_day = _FREQUENCIES[m.group("freq")]
    if m.group("time") and per_day != 1:
        return None
    dose = float(m.group("dose")) if _NUMBER.fullmatch(m.group("dose")) else 0.0
    daily = round(dose * per_day, 6)
    return daily if 0 < daily <= MAX_DAILY_MG else None
