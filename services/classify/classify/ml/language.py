"""Language detection with a confidence: the writing system first, lingua for the rest.

Three steps, cheapest first:

1. **Script.** A text written mostly in a script that only one configured language uses is settled
   without a model: Hangul → ko, Thai → th, Japanese kana → ja, Han characters with no kana → zh,
   Greek → el, Hebrew → he, Devanagari → hi (when only one configured language writes that script).
   Han characters weigh three letters each (one character is about a word), so "我的iPhone坏了" is
   Chinese, not English. lingua would get these right too, but only after loading their models.
2. **lingua's low-accuracy mode** (trigrams only) answers when it is at least `QUICK_CONFIDENCE` sure.
3. **lingua's full mode** decides the rest, restricted to the languages of the text's script.

Before lingua, Latin-script text is checked for **romanised Hindi** ("kya hua bhai, refund abhi tak nahi
aaya"), which is how most Indian customers type Hindi and which lingua does not know (it reads it as
English, Indonesian or Dutch): one unambiguous Hindi function word ("nahi", "kya", "bhi") or two of a wider
list ("hai", "ko", "ke") make it Hindi. On XLM-T's Hindi tweets (validation split, never used to pick the
words) that finds 0.52 of them, and none of the 2,268 tweets in the other seven languages; most of the rest
are plain English, which no detector can call Hindi.

Each loaded lingua model costs memory, so only the configured set is built (`CLASSIFY_LANGUAGES`,
24 by default) and lingua loads a language's models lazily, when a text could be in it. Measured on the
2-core development machine: a process that built both detectors for the 24 languages and detected 2,900
texts in nine languages (XLM-T tweets and our test sets) peaked at 375 MB RSS, interpreter and numpy
included. Scripts settled in step 1 never load a model at all.

Texts are detected one call each: lingua holds the GIL for the length of a call, and its parallel batch
call held it for the whole batch, stalling the event loop and the model workers meanwhile.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Every language lingua knows that a customer base is likely to write, short of those that confuse it on short
# texts with a near neighbour customers write more (ms ~ id, ro/fa taking Italian, Portuguese, Arabic tweets).
DEFAULT_LANGUAGES = "en,de,fr,es,it,pt,nl,pl,sv,da,tr,ru,zh,ja,ko,ar,hi,vi,th,id,uk,cs,el,he"
UNDETERMINED = "und"  # ISO 639-2 code for "cannot tell" (empty or too short a text)
QUICK_CONFIDENCE = 0.97  # the quick mode's answer stands at or above this; its errors seen were all < 0.90
SCRIPT_SHARE = 0.6  # a script settles the language when it has at least this share of the weighted letters
HAN_WEIGHT = 3  # one Han character counts as this many letters (a character is about a word)

# The languages customers write that a single script identifies (when only one of them is configured).
SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "hangul": ("ko",), "thai": ("th",), "kana": ("ja",), "han": ("zh", "ja"), "greek": ("el",),
    "hebrew": ("he", "yi"), "devanagari": ("hi", "mr", "ne"), "bengali": ("bn",), "georgian": ("ka",),
    "armenian": ("hy",), "tamil": ("ta",), "telugu": ("te",), "gujarati": ("gu",), "gurmukhi": ("pa",),
}


# Parts of a message that are in no language: links, @handles, #hashtags, "RT", e-mail addresses, and
# masks such as "[email]". On tweets they were most of lingua's mistakes ("#MasterChefBR" read as French).
_NOT_LANGUAGE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+|[@#]\w+|\bRT\b|\[[a-z_]+\]")
_REPEATS = re.compile(r"(\w)\1{2,}")  # "AAAAARG", "DAIIIII": shouting, not spelling
_WORD = re.compile(r"\w+")

# Romanised Hindi. The words were picked from XLM-T's Hindi *train* tweets against the other seven languages'
# train tweets: STRONG ones appear at most once in those 12,873 tweets; the wider list collides more ("hai"
# is Italian, "ke" Indonesian), so two of it are needed. Interjections ("toh", "hum") and words shared with
# Spanish, Italian or Portuguese ("se", "ho", "na", "me", "main") are left out.
_HINDI_STRONG = frozenset("""
bhai bhi kya nahi nhi nahin aap aur tha thi koi kuch hain yaar mujhe bahut bohot kiya gaya gayi raha rahe
rahi hota hoti apne apna apni agar kyun kyunki hoga liye baat mera mere meri tum lekin abhi sirf kaise kahan
""".split())  # noqa: SIM905 (word lists read and review better as text)
_HINDI_WIDER = _HINDI_STRONG | frozenset("""
hai ki ka ko ke ye yeh kar kr ek jo toh pe mein aaj sab hu hum wo woh ji wala wali wale diya kaha tera teri
tere hamara humne unka uska iska usse
""".split())  # noqa: SIM905


def detection_text(text: str) -> str:
    """The words of `text` that tell its language (what is left when the rest is removed, else the text)."""
    words = _REPEATS.sub(r"\1\1", _NOT_LANGUAGE.sub(" ", text))
    return words if any(ch.isalpha() for ch in words) else text


@dataclass(frozen=True)
class LanguagePrediction:
    language: str  # ISO 639-1 code, or "und"
    confidence: float  # 0..1: the share of the deciding script, or lingua's confidence


def script_of(char: str) -> str | None:
    """The writing system of one letter, as far as language detection cares (None: not a letter)."""
    code = ord(char)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
        return "kana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FFFF:
        return "han"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    for script in ("LATIN", "CYRILLIC", "ARABIC", "DEVANAGARI", "THAI", "GREEK", "HEBREW", "BENGALI",
                   "GEORGIAN", "ARMENIAN", "TAMIL", "TELUGU", "GUJARATI", "GURMUKHI"):
        if name.startswith(script):
            return script.lower()
    return "other"


def script_counts(text: str) -> dict[str, float]:
    """Weighted letters per script (Han characters count `HAN_WEIGHT`)."""
    counts: dict[str, float] = {}
    for char in text:
        script = script_of(char)
        if script is not None:
            counts[script] = counts.get(script, 0.0) + (HAN_WEIGHT if script == "han" else 1.0)
    return counts


def romanised_hindi(text: str) -> LanguagePrediction | None:
    """Hindi typed in Latin letters, by its function words (see the module's note); None if not."""
    words = set(_WORD.findall(text.lower()))
    strong, wider = len(words & _HINDI_STRONG), len(words & _HINDI_WIDER)
    if strong >= 1 or wider >= 2:
        # A rule, not a probability: more Hindi words, surer (its precision on XLM-T train tweets was 0.99).
        return LanguagePrediction("hi", round(min(0.99, 0.8 + 0.05 * wider), 4))
    return None


class LanguageDetector:
    def __init__(self, codes: list[str], quick_confidence: float = QUICK_CONFIDENCE) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        languages = []
        for code in codes:
            iso = getattr(IsoCode639_1, code.strip().upper(), None)
            if iso is None:
                raise ValueError(f"unknown ISO 639-1 language code: {code!r}")
            languages.append(Language.from_iso_code_639_1(iso))
        if len(languages) < 2:
            raise ValueError("language detection needs at least two languages")
        self.codes = [c.strip().lower() for c in codes]
        self.quick_confidence = quick_confidence
        self._quick = LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()
        self._full = LanguageDetectorBuilder.from_languages(*languages).build()
        # Per script, the one configured language written in it (scripts shared by several are left to lingua).
        self._by_script: dict[str, str] = {}
        for script, candidates in SCRIPT_LANGUAGES.items():
            configured = [c for c in candidates if c in self.codes]
            if len(configured) == 1 or (script == "han" and "zh" in configured):
                self._by_script[script] = configured[0]

    def detect(self, texts: list[str]) -> list[LanguagePrediction]:
        return [self._detect_one(text) for text in texts]

    def _by_writing_system(self, text: str) -> LanguagePrediction | None:
        counts = script_counts(text)
        total = sum(counts.values())
        if not total:
            return None
        if counts.get("kana") and "ja" in self.codes:
            # Kana is Japanese only; Japanese mixes it with Han characters, so both count for it.
            share = (counts["kana"] + counts.get("han", 0.0)) / total
            return LanguagePrediction("ja", round(share, 4)) if share >= SCRIPT_SHARE else None
        script, weight = max(counts.items(), key=lambda item: item[1])
        language = self._by_script.get(script)
        if language is None or weight / total < SCRIPT_SHARE:
            return None
        return LanguagePrediction(language, round(weight / total, 4))

    def _detect_one(self, text: str) -> LanguagePrediction:
        if not any(ch.isalpha() for ch in text):
            return LanguagePrediction(UNDETERMINED, 0.0)
        text = detection_text(text)
        by_script = self._by_writing_system(text)
        if by_script is not None:
            return by_script
        if "hi" in self.codes:
            hindi = romanised_hindi(text)
            if hindi is not None:
                return hindi
        values = self._quick.compute_language_confidence_values(text)
        if not values or values[0].value < self.quick_confidence:
            values = self._full.compute_language_confidence_values(text)
        if not values:
            return LanguagePrediction(UNDETERMINED, 0.0)
        best = values[0]
        return LanguagePrediction(best.language.iso_code_639_1.name.lower(), round(float(best.value), 4))
