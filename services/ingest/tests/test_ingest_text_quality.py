"""Unit tests: quoted replies and signatures cut off, garbled text refused, personal data masked."""

import pytest

from ingest.cleaning import garbled_reason, luhn_valid, mask_pii, prepare_text, strip_reply_and_signature

REPLY = """Hi team,

the export is broken again since Monday.

Best regards,
Ana Lima
Acme Ltd

On Tue, 3 Mar 2026 at 10:00, Support <support@closedloop.dev> wrote:
> We fixed the export.
> Thanks"""


@pytest.mark.parametrize(("raw", "kept"), [
    (REPLY, "Hi team,\n\nthe export is broken again since Monday."),
    ("Still broken.\n\nOn Tue, 3 Mar 2026 at 10:00, Support <s@x.io>\nwrote:\n> fixed", "Still broken."),
    ("Still broken.\n\nEm ter., 3 de mar. de 2026, Ana escreveu:\n> ok", "Still broken."),
    ("Still broken.\n-----Original Message-----\nFrom: Support\nSent: Monday\nold text", "Still broken."),
    ("Fix it\n\nFrom: Ana <a@b.com>\nSent: Monday\nTo: support\n\nold", "Fix it"),
    ("My reply\n> quoted line\nmore of mine", "My reply\nmore of mine"),
    ("Great app\n-- \nAna Lima\nCEO, Acme", "Great app"),
    ("Great app\n\nSent from my iPhone", "Great app"),
    ("Great app\nGet Outlook for Android", "Great app"),
    ("The sync fails.\n\nThanks!\nAna", "The sync fails."),
    ("The sync fails.\nKind regards,\nAna Lima\nHead of Ops\n+44 20 7946 0958", "The sync fails."),
], ids=["on-wrote-and-sign-off", "on-wrote-wrapped", "portuguese-intro", "original-message", "outlook-header",
        "quoted-lines", "dash-dash-space", "sent-from-iphone", "outlook-mobile", "thanks-name", "regards-block"])
def test_quoted_replies_and_signatures_are_cut(raw, kept):
    assert prepare_text(raw) == kept


@pytest.mark.parametrize("text", [
    "Thanks, the new feature is great",
    "Thanks",
    "From: the settings page I cannot log out",
    "On Monday the app crashed twice",
    "The price went from 5 to 10 -- why?",
])
def test_ordinary_sentences_that_look_like_markers_are_kept(text):
    assert strip_reply_and_signature(text) == text


@pytest.mark.parametrize(("raw", "reason"), [
    ("Sent from my iPhone", "nothing but a quoted earlier message or a signature"),
    ("> only a quote\n> of the earlier mail", "nothing but a quoted"),
    ("Ã©tÃ© trÃ¨s dÃ©cevant", "mojibake"),
    ("I donâ€™t like the new design", "mojibake"),
    ("Price went up to Â£20", "mojibake"),
    ("bad \ufffd\ufffd\ufffd encoding", "undecodable"),
    ("asdfghjkl", "keyboard mashing"),
    ("qwerty asdf zxcv", "keyboard mashing"),
    ("xkcdqzpt mnbvcxz", "keyboard mashing"),
    ("jjjjjjjjjjjjjjjj", "keyboard mashing"),
    ("!!!! ???? 12345 $$$ ####", "no letters"),
    ("a1 22222 333333 #### !!!!! 99", "mostly digits and symbols"),
    ("   \n\u200b ", "empty"),
])
def test_empty_or_garbled_text_is_refused_with_a_reason(raw, reason):
    with pytest.raises(ValueError, match=reason):
        prepare_text(raw)


@pytest.mark.parametrize("text", [
    "The app crashes when I pay", "My QWERTY keyboard layout is broken", "sooooo good", "ok", "👍👍",
    "Order 2026-11-24, version 5.2.1, cost 1234.56 EUR", "Não funciona o pagamento", "アプリが落ちます",
    "HTTPS error on login", "Strengths: rhythm and design", "Café crème était très bon",
    "Error 0x80070005 after update 10.2", "I don't like the new design",
])
def test_real_feedback_is_not_called_garbled(text):
    assert garbled_reason(text) is None


@pytest.mark.parametrize(("text", "masked", "kinds"), [
    ("Write to ana.lima+shop@example.co.uk please", "Write to [email] please", ["email"]),
    ("Call +44 20 7946 0958 today", "Call [phone] today", ["phone"]),
    ("Call (555) 123-4567 or 555.123.4567", "Call [phone] or [phone]", ["phone"]),
    ("Call 00351912345678", "Call [phone]", ["phone"]),
    ("my number is 5551234567", "my number is [phone]", ["phone"]),
    ("Card 4111 1111 1111 1111 charged", "Card [card] charged", ["card"]),
    ("Card 4111-1111-1111-1111 charged", "Card [card] charged", ["card"]),
    ("Card 5500000000000004.", "Card [card].", ["card"]),
    ("ref 1234 5678 9012 3456 failed", "ref 1234 5678 9012 3456 failed", []),  # fails Luhn: not a card
    ("Order 2026-11-24, version 5.2.1, 1234.56 EUR, order 12345", None, []),
    ("Mail a@b.io, call +1 415 555 2671, card 378282246310005",
     "Mail [email], call [phone], card [card]", ["card", "email", "phone"]),
], ids=["email", "intl-phone", "us-phones", "00-prefix", "bare-10-digits", "card-spaces", "card-dashes", "card-bare",
        "not-luhn", "dates-versions-amounts", "all-three"])
def test_personal_data_is_masked(text, masked, kinds):
    assert mask_pii(text) == (masked if masked is not None else text, kinds)


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


# --- every script (issue 13): personal data beside CJK text, Chinese IDs and mobiles, IBANs ---------------

@pytest.mark.parametrize(("text", "masked", "kinds"), [
    ("手机13800138000", "手机[phone]", ["phone"]),
    ("邮箱ana@example.com谢谢", "邮箱[email]谢谢", ["email"]),
    ("请打+86 138 0013 8000联系我", "请打[phone]联系我", ["phone"]),
    ("身份证号11010519491231002X，请核实", "身份证号[national_id]，请核实", ["national_id"]),
    ("身份证号110105194912310021", "身份证号110105194912310021", []),  # wrong check character: kept
    ("IBAN DE89 3704 0044 0532 0130 00 bitte", "IBAN [iban] bitte", ["iban"]),
    ("Überweisung von GB82WEST12345698765432 fehlt", "Überweisung von [iban] fehlt", ["iban"]),
    ("IBAN DE89 3704 0044 0532 0130 01", "IBAN DE89 3704 0044 0532 0130 01", []),  # checksum fails: kept
    ("電話は090-1234-5678です", "電話は[phone]です", ["phone"]),
], ids=["cn-mobile-glued", "email-glued", "cn-mobile-86", "cn-id", "cn-id-bad-check", "iban-grouped", "iban-compact",
        "iban-bad-check", "jp-phone-glued"])
def test_personal_data_is_masked_in_every_script(text, masked, kinds):
    assert mask_pii(text) == (masked, kinds)


def test_checksums_of_chinese_ids_and_ibans():
    from ingest.cleaning import cn_resident_id_valid, iban_valid

    assert cn_resident_id_valid("11010519491231002X") and cn_resident_id_valid("11010519491231002x")
    assert not cn_resident_id_valid("110105194912310021")
    assert iban_valid("DE89370400440532013000") and iban_valid("FR14 2004 1010 0505 0001 3M02 606")
    assert not iban_valid("DE89370400440532013001") and not iban_valid("DE89")


@pytest.mark.parametrize("text", [
    "我的订单还没到 qxzrtp-77", "订单号 XJ7KQ2P 还没发货", "我的订单还没到，订单号 bxkqtr",
    "Заказ не пришёл, номер заказа ЖЩ-4471", "배송이 너무 늦어요 ㅠㅠ ㅋㅋㅋ", "สินค้ามาช้ามาก",
    "الطلب لم يصل بعد", "पैसे कट गए लेकिन ऑर्डर नहीं आया", "手机13800138000", "身份证号11010519491231002X",
    "注文番号 KXQZT-2291 の商品がまだ届きません",
])
def test_real_text_in_other_scripts_is_not_called_garbled(text):
    assert garbled_reason(text) is None


@pytest.mark.parametrize("text", ["фывафыва олдж", "ㅁㄴㅇㄹㅁㄴㅇㄹ", "ฟหกดฟหกด", "شسيبلاتنم"])
def test_keyboard_mashing_in_other_scripts_is_refused(text):
    assert garbled_reason(text) == "text looks like random characters or keyboard mashing"
