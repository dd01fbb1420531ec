"""Language detection with a confidence (lingua), restricted to the languages customers write in.

Each loaded language model costs memory, so only the configured set is built (`CLASSIFY_LANGUAGES`);
models load lazily on first use. Texts are detected one call each (~0.25 ms a text on the 2-core
development machine): lingua holds the GIL for the length of a call, and its parallel batch call held it
for the whole batch (a Python thread beside it ran at 7 % of its speed), stalling the event loop and
the model workers meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

UNDETERMINED = "und"  # ISO 639-2 code for "cannot tell" (empty or too short a text)


@dataclass(frozen=True)
class LanguagePrediction:
    language: str  # ISO 639-1 code, or "und"
    confidence: float  # 0..1


class LanguageDetector:
    def __init__(self, codes: list[str]) -> None:
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
        self._detector = LanguageDetectorBuilder.from_languages(*languages).build()

    def detect(self, texts: list[str]) -> list[LanguagePrediction]:
        if not texts:
            return []
        results = [self._detector.compute_language_confidence_values(text) for text in texts]
        out: list[LanguagePrediction] = []
        for text, values in zip(texts, results, strict=True):
            if not values or not any(ch.isalpha() for ch in text):
                out.append(LanguagePrediction(UNDETERMINED, 0.0))
                continue
            best = values[0]
            out.append(LanguagePrediction(best.language.iso_code_639_1.name.lower(), round(float(best.value), 4)))
        return out
