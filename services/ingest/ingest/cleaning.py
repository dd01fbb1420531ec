"""Text cleaning applied to every piece of feedback before it is stored or sent downstream.

`prepare_text` is the whole pipeline: Unicode and whitespace normalisation (`clean_text`), quoted
e-mail replies and signatures cut off (`strip_reply_and_signature`), then a refusal with a reason
when nothing readable is left (`garbled_reason`). `mask_pii` runs afterwards on what travels
downstream; the unmasked text stays in ingest's own table.
"""

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFC-normalise, drop control and zero-width characters, collapse runs of spaces, keep at most
    one blank line between paragraphs, and trim each line and the whole text."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def clean_optional(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = clean_text(text)
    return cleaned or None


# --- quoted replies and signatures ------------------------------------------------------------

# Everything from one of these lines on is an earlier message of the thread.
_REPLY_HEADER = re.compile(
    r"^(?:"
    r"-{2,}\s*(?:original message|forwarded message|mensagem original|message d'origine|ursprüngliche nachricht)"
    r"\s*-{2,}"
    r"|_{10,}"  # Outlook's separator line
    r"|(?:from|de|von|van):\s.+"  # a header block of a quoted message: "From: ana <...>" then Sent:/To:
    r")\s*$",
    re.IGNORECASE,
)
# "On Tue, 3 Mar 2026 at 10:00, Ana <ana@example.com> wrote:" (may be wrapped over two lines), and the
# same in a few languages.
_REPLY_INTRO = re.compile(
    r"^(?:on|am|le|el|em|il|op)\s.{0,300}?(?:wrote|schrieb|a écrit|escribió|escreveu|ha scritto|schreef)\s*:\s*$",
    re.IGNORECASE | re.DOTALL,
)
_QUOTED_LINE = re.compile(r"^\s*>")
_SENT_FROM = re.compile(
    r"^(?:sent from my \w[\w\s-]{0,40}|sent from (?:outlook|mail|yahoo mail)\b.*|get outlook for \w+.*"
    r"|enviado do meu \w+.*|von meinem \w+ gesendet.*|envoyé de mon \w+.*)$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^(?:(?:best|kind|warm|many thanks and|with kind)?\s*regards|best(?: wishes)?|cheers|thanks|thank you"
    r"|many thanks|thx|sincerely|yours(?: truly| sincerely)?|all the best|br|atenciosamente|obrigad[oa]"
    r"|abraços?|saludos|gracias|mit freundlichen grüßen|viele grüße|cordialement|merci)[\s,.!]*$",
    re.IGNORECASE,
)
MAX_SIGNATURE_LINES = 4  # name, role, company, phone after a sign-off


def strip_reply_and_signature(text: str) -> str:
    """Cut quoted earlier messages and the sender's signature off a (cleaned) message.

    Only the writer's own words are kept: lines quoted with ">", everything after an
    "On … wrote:" line or an "-----Original Message-----" / "From:" header block, everything
    after the "-- " signature delimiter or a "Sent from my iPhone" line, and a closing sign-off
    ("Best regards," plus up to four short lines with the name) at the very end."""
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        two_lines = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else stripped
        if _REPLY_HEADER.match(stripped) and (not stripped.lower().startswith(("from:", "de:", "von:", "van:"))
                                               or _looks_like_header_block(lines[index:index + 4])):
            break
        if _REPLY_INTRO.match(stripped) or _REPLY_INTRO.match(two_lines):
            break
        if stripped in ("--", "-- ") or _SENT_FROM.match(stripped):
            break
        if _QUOTED_LINE.match(line):
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    kept = _drop_sign_off(kept)
    return clean_text("\n".join(kept))


def _looks_like_header_block(lines: list[str]) -> bool:
    """A quoted Outlook header: "From:" followed by at least one of Sent/Date/To/Subject."""
    following = " ".join(line.strip().lower() for line in lines[1:])
    return any(f"{header}:" in following for header in ("sent", "date", "to", "subject", "enviado", "gesendet"))


def _drop_sign_off(lines: list[str]) -> list[str]:
    # Look for a sign-off line near the end, never on the first line (that would be the message itself).
    for position in range(len(lines) - 1, max(0, len(lines) - 1 - MAX_SIGNATURE_LINES) - 1, -1):
        if position == 0:
            break
        if _SIGN_OFF.match(lines[position].strip()):
            tail = lines[position + 1:]
            if all(len(line.strip()) <= 60 for line in tail):
                return lines[:position]
            break
    return lines


# --- garbled text -------------------------------------------------------------------------------

# UTF-8 read as Latin-1 / Windows-1252: "é" → "Ã©", "’" → "â€™", "£" → "Â£".
_MOJIBAKE = re.compile(
    "[\u00c2\u00c3][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
    "|\u00e2\u20ac"
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_LATIN_VOWELS = set("aeiouyàáâãäåèéêëìíîïòóôõöùúûüýÿæœøаеёиоуыэюя")
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "azertyuiop", "1234567890")
MIN_LETTER_SHARE = 0.3  # letters (and emoji) among the visible characters


_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")


def _is_latin(word: str) -> bool:
    return _LATIN_WORD.fullmatch(word) is not None


_KEYBOARD_RUNS = frozenset(
    piece for row in _KEYBOARD_ROWS for start in range(len(row) - 3)
    for piece in (row[start:start + 4], row[start:start + 4][::-1])
)


def _keyboard_run(word: str) -> bool:
    """Four keyboard neighbours in a row, either direction ("asdf", "poiu")."""
    return any(word[start:start + 4] in _KEYBOARD_RUNS for start in range(len(word) - 3))


def _implausible_word(word: str) -> bool:
    """A (Latin-script) word no language writes: no vowel, five consonants in a row, a run of
    keyboard neighbours ("asdf"), or one letter repeated five times."""
    if len(word) < 4 or (word.isupper() and len(word) <= 6):
        return False
    lowered = word.lower()
    if not any(char in _LATIN_VOWELS for char in lowered):
        return True
    if re.search(r"(.)\1{4,}", lowered) and not re.search(r"([aeiouy])\1{4,}", lowered):
        return True
    consonant_run = max((len(run) for run in re.findall(r"[^aeiouyàáâãäåèéêëìíîïòóôõöùúûüýÿ]+", lowered)),
                        default=0)
    return consonant_run >= 5 or _keyboard_run(lowered)


def garbled_reason(text: str) -> str | None:
    """Why `text` cannot be read as feedback, or None when it can."""
    if _MOJIBAKE.search(text):
        return "text looks mis-encoded (mojibake such as 'Ã©' or 'â€™'): send it as UTF-8"
    if text.count("\ufffd") >= 3 or text.count("\ufffd") > len(text) * 0.05:
        return "text contains undecodable characters (U+FFFD): send it as UTF-8"
    visible = [char for char in text if not char.isspace()]
    readable = sum(1 for char in visible if char.isalpha() or unicodedata.category(char) == "So")
    if not readable:
        return "text contains no letters"
    if readable / len(visible) < MIN_LETTER_SHARE:
        return f"text is mostly digits and symbols ({readable} of {len(visible)} characters are letters)"
    words = _WORD.findall(text)
    latin = [word for word in words if len(word) >= 4 and _is_latin(word)]
    if latin:
        implausible = sum(1 for word in latin if _implausible_word(word))
        if implausible / len(latin) > 0.5:
            return "text looks like random characters or keyboard mashing"
    return None


def prepare_text(raw: str) -> str:
    """Clean `raw`, cut quoted replies and signatures, and refuse what is left when it is empty or
    garbled (ValueError with the reason, reported by the API against the field)."""
    cleaned = clean_text(raw)
    if not cleaned:
        raise ValueError("text must not be empty or whitespace only")
    own_words = strip_reply_and_signature(cleaned)
    if not own_words:
        raise ValueError("text has nothing but a quoted earlier message or a signature")
    reason = garbled_reason(own_words)
    if reason:
        raise ValueError(reason)
    return own_words


# --- personal data ----------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)?\d[\d\s().-]{5,18}\d(?![\w])"
    r"|(?<![\w+])\(\d{2,4}\)\s?[\d\s.-]{5,14}\d(?![\w])"
)
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
MASKS = {"email": "[email]", "phone": "[phone]", "card": "[card]"}


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _phone_like(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15 or _DATE.match(candidate.strip()):
        return False
    if candidate.count("(") != candidate.count(")"):
        return False
    if digits == candidate:  # a bare run of digits: only as long as a full number with area code
        return len(digits) >= 10
    if candidate.startswith(("+", "00")):
        return True
    # Separated groups: a version "5.2.1" or an amount has too few digits; decimals like 1234.56 are not phones.
    groups = re.split(r"[\s().-]+", candidate.strip("()"))
    return len(groups) >= 2 and all(group.isdigit() for group in groups if group) and not re.fullmatch(
        r"\d+\.\d{1,2}", candidate)


def mask_pii(text: str) -> tuple[str, list[str]]:
    """Replace e-mail addresses, payment card numbers (Luhn-checked) and phone numbers with
    placeholders; answer the masked text and the kinds found (sorted)."""
    found: set[str] = set()

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.add("card")
            return MASKS["card"]
        return match.group()

    def email(match: re.Match[str]) -> str:
        found.add("email")
        return MASKS["email"]

    def phone(match: re.Match[str]) -> str:
        candidate = match.group()
        # The pattern may swallow a trailing space or bracket; keep the boundary characters as they were.
        core = candidate.strip()
        if _phone_like(core):
            found.add("phone")
            return candidate.replace(core, MASKS["phone"])
        return candidate

    text = _CARD.sub(card, text)
    text = _EMAIL.sub(email, text)
    text = _PHONE.sub(phone, text)
    return text, sorted(found)
