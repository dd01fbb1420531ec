"""Text cleaning applied to every piece of feedback before it is stored or sent downstream.

`prepare_text` is the whole pipeline: Unicode and whitespace normalisation (`clean_text`), quoted
e-mail replies and signatures cut off (`strip_reply_and_signature`), then a refusal with a reason
when nothing readable is left (`garbled_reason`). `mask_pii` runs afterwards on what travels
downstream; the unmasked text stays in ingest's own table.
"""

import re
import unicodedata
from collections.abc import Callable

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
CJK_WEIGHT = 3  # a Han, kana or Hangul character counts as this many letters
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


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


# Keyboard rows of the scripts whose mashing we can tell (ЙЦУКЕН, Thai Kedmanee, Arabic); runs of four
# neighbours in a row are nobody's spelling.
_OTHER_KEYBOARD_ROWS = ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю", "ๆไำพะัีรนยบลฃ", "ฟหกดเ้่าสวง", "ผปแอิืทมใฝ",
                        "ضصثقفغعهخحجد", "شسيبلاتنمكط", "ئءؤرلاىةوزظ")
_OTHER_KEYBOARD_RUNS = frozenset(
    piece for row in _OTHER_KEYBOARD_ROWS for start in range(len(row) - 3)
    for piece in (row[start:start + 4], row[start:start + 4][::-1])
)
_CYRILLIC_VOWELS = set("аеёиоуыэюяіїєў")
_HANGUL_JAMO = re.compile(r"[\u3131-\u318e]")  # letters typed one by one, not composed into syllables
_LAUGHTER_JAMO = set("ㅋㅎㅠㅜ")  # "ㅋㅋㅋ" is laughter, "ㅠㅠ" tears: real writing
_CODE = re.compile(r"\S*\d\S*|[A-Z]{2,}[A-Z-]*|\S*[#_/]\S*")  # order codes, references, acronyms: nobody's words


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def _implausible_in_script(word: str, script: str) -> bool:
    """Whether a word of one script is typed noise, judged by that script's own rules.

    Latin: no vowel, five consonants in a row, keyboard neighbours, one letter five times. Cyrillic: the same
    with its vowels and the ЙЦУКЕН rows. Hangul: jamo typed one by one instead of syllables (laughter
    "ㅋㅋㅋ" excepted). Thai and Arabic: keyboard neighbours. Han, kana, Devanagari and others: one
    character is no evidence either way (a Chinese sentence has no spaces and no vowels), so never."""
    if script == "LATIN":
        return _implausible_word(word)
    if script == "CYRILLIC":
        lowered = word.lower()
        if len(word) < 4 or (word.isupper() and len(word) <= 6):
            return False
        return (not any(char in _CYRILLIC_VOWELS for char in lowered) or bool(re.search(r"(.)\1{4,}", lowered))
                or any(lowered[i:i + 4] in _OTHER_KEYBOARD_RUNS for i in range(len(lowered) - 3)))
    if script == "HANGUL":
        jamo = [char for char in word if _HANGUL_JAMO.match(char) and char not in _LAUGHTER_JAMO]
        return len(jamo) >= 4 and len(jamo) > len(word) / 2
    if script in ("THAI", "ARABIC"):
        return any(word[i:i + 4] in _OTHER_KEYBOARD_RUNS for i in range(len(word) - 3))
    return False


def _script_words(text: str) -> list[tuple[str, str]]:
    """(word, script) for each run of letters of one script, order codes and acronyms left out."""
    out: list[tuple[str, str]] = []
    for token in text.split():
        if _CODE.fullmatch(token.strip(".,;:!?()[]{}\"'«»“”„")):
            continue
        for word in _WORD.findall(token):
            start = 0
            for i in range(1, len(word) + 1):  # split where the script changes ("订单abc" → "订单", "abc")
                if i == len(word) or _script(word[i]) != _script(word[start]):
                    out.append((word[start:i], _script(word[start])))
                    start = i
    return out


def garbled_reason(text: str) -> str | None:
    """Why `text` cannot be read as feedback, or None when it can.

    Each script is judged on its own terms (see `_implausible_in_script`), and the verdict weighs the
    letters of every script: Chinese text with an order code such as "QXZRT-77" at the end is Chinese text."""
    if _MOJIBAKE.search(text):
        return "text looks mis-encoded (mojibake such as 'Ã©' or 'â€™'): send it as UTF-8"
    if text.count("\ufffd") >= 3 or text.count("\ufffd") > len(text) * 0.05:
        return "text contains undecodable characters (U+FFFD): send it as UTF-8"
    visible = [char for char in text if not char.isspace()]
    readable = sum(1 for char in visible if char.isalpha() or unicodedata.category(char) in ("So", "Mn", "Mc"))
    if not readable:
        return "text contains no letters"
    # A Han, kana or Hangul character is about a word, not a letter: "手机13800138000" is two words and a number.
    weighted = readable + (CJK_WEIGHT - 1) * sum(1 for char in visible if _CJK.match(char))
    if weighted / (len(visible) + weighted - readable) < MIN_LETTER_SHARE:
        return f"text is mostly digits and symbols ({readable} of {len(visible)} characters are letters)"
    words = _script_words(text)
    judged = [(word, script) for word, script in words if len(word) >= 4 or script not in ("LATIN", "CYRILLIC")]
    if judged:
        letters = sum(len(word) for word, _ in judged)
        noise = sum(len(word) for word, script in judged if _implausible_in_script(word, script))
        if noise / letters > 0.5:
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

# Boundaries are ASCII letters and digits, not `\w`: Chinese and Japanese write no space between a word
# and a number or an address ("手机13800138000", "邮箱ana@example.com谢谢"), and `\w` matches Han characters.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9\u00c0-\u024f._%+-])[A-Za-z0-9\u00c0-\u024f._%+-]+@[A-Za-z0-9\u00c0-\u024f-]+"
    r"(?:\.[A-Za-z0-9\u00c0-\u024f-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![A-Za-z0-9+])(?:\+|00)?\d[\d\s().-]{5,18}\d(?![A-Za-z0-9])"
    r"|(?<![A-Za-z0-9+])\(\d{2,4}\)\s?[\d\s.-]{5,14}\d(?![A-Za-z0-9])"
)
# A mainland Chinese mobile number: 11 digits starting 13-19, optionally +86, often written 3-4-4.
_CN_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
# A Chinese resident identity number: 6-digit region, birth date, 3-digit sequence, check character.
_CN_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                    r"(?![0-9A-Za-z])")
# An IBAN: country, two check digits, up to 30 letters and digits, printed in groups of four or not at all.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
MASKS = {"email": "[email]", "phone": "[phone]", "card": "[card]", "national_id": "[national_id]", "iban": "[iban]"}
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_resident_id_valid(number: str) -> bool:
    """ISO 7064 MOD 11-2 check character of an 18-character Chinese resident identity number."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _CN_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def iban_valid(iban: str) -> bool:
    """ISO 13616: the IBAN with its first four characters moved to the end, letters as 10-35, is 1 mod 97."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


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
    """Replace e-mail addresses, IBANs (checksum), Chinese resident ID numbers (checksum), payment card
    numbers (Luhn-checked) and phone numbers (Chinese mobiles included) with placeholders; answer the masked
    text and the kinds found (sorted). Checked identifiers go first: an ID or an IBAN is also a long run of
    digits that the phone pattern would take."""
    found: set[str] = set()

    def checked(kind: str, valid: Callable[[str], bool]) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            if valid(match.group()):
                found.add(kind)
                return MASKS[kind]
            return match.group()
        return replace

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

    text = _EMAIL.sub(email, text)
    text = _IBAN.sub(checked("iban", iban_valid), text)
    text = _CN_ID.sub(checked("national_id", cn_resident_id_valid), text)
    text = _CARD.sub(card, text)
    text = _CN_MOBILE.sub(checked("phone", lambda number: True), text)
    text = _PHONE.sub(phone, text)
    return text, sorted(found)
