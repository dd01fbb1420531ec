"""The rule every text sent to classify follows (to classify, or as a training example)."""

MAX_TEXT_CHARS = 10_000


def check_text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"is longer than {MAX_TEXT_CHARS} characters")
    return text
