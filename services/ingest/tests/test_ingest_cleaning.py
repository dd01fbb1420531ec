"""Unit tests of the text cleaning applied to every piece of feedback."""

import unicodedata

import pytest

from ingest.cleaning import clean_optional, clean_text


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("  hello   world  ", "hello world"),
    ("tab\tseparated\t\twords", "tab separated words"),
    ("no\u00a0break\u2009thin\u3000ideographic", "no break thin ideographic"),
    ("  first line  \n   second line ", "first line\nsecond line"),
    ("windows\r\nline\rends", "windows\nline\nends"),
], ids=["spaces", "tabs", "unicode-spaces", "trim-each-line", "crlf-and-cr"])
def test_whitespace_is_collapsed_and_trimmed(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_text_is_nfc_normalised():
    decomposed = "Cafe\u0301 cre\u0300me"  # e + combining accents
    cleaned = clean_text(decomposed)
    assert cleaned == "Café crème"
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert len(cleaned) == len("Café crème")


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("a\x00b\x07c\x1bd\x7fe", "abcde"),
    ("zero\u200bwidth\u200c and\u200d joiners", "zerowidth and joiners"),
    ("\ufeffbyte order mark", "byte order mark"),
    ("left\u200eto\u200fright marks", "lefttoright marks"),
], ids=["c0-and-del", "zero-width", "bom", "direction-marks"])
def test_control_and_zero_width_characters_are_dropped(raw, cleaned):
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("one\n\n\n\n\ntwo", "one\n\ntwo"),
    ("one\n  \n\t\n \u200b \ntwo", "one\n\ntwo"),  # lines with only spaces count as blank
    ("one\n\ntwo", "one\n\ntwo"),  # a single blank line between paragraphs stays
    ("one\ntwo", "one\ntwo"),
    ("\n\n\nstart and end\n\n\n", "start and end"),
], ids=["many-blank", "blank-with-spaces", "one-blank-kept", "single-newline-kept", "outer-trimmed"])
def test_blank_lines_are_collapsed_to_one(raw, cleaned):
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize("raw", ["", "   ", "\n\t \r\n", "\u200b\ufeff\u200d", " \x00 \u00a0 "])
def test_whitespace_only_becomes_empty(raw):
    assert clean_text(raw) == ""


def test_ordinary_text_and_emoji_are_kept():
    text = "Olá 👋 こんにちは — price: 5€ (tax incl.)"
    assert clean_text(text) == text


@pytest.mark.parametrize("raw", ["  a  b  ", "x\n\n\n\ny", "Cafe\u0301\u200b", " p1 \r\n\r\n\r\n p2 "])
def test_cleaning_is_idempotent(raw):
    once = clean_text(raw)
    assert clean_text(once) == once


def test_clean_optional():
    assert clean_optional(None) is None
    assert clean_optional("  \u200b ") is None
    assert clean_optional("  Double   charge ") == "Double charge"
