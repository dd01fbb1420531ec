"""Issue 13: every language customers write in — signals, language detection, cross-lingual intents, sentiment.

The test data are our own sentences (tests/data/intents_multilingual.tsv, reviews_multilingual.tsv,
written for this project). The thresholds sit below what was measured (see the classify README), so they
catch a regression, not noise.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from classify.main import shared_embedder
from classify.ml.embedding import SERVICE_MODEL_NAME, ConcatEmbedder, default_workers
from classify.ml.ensemble import TrainParams, train_model
from classify.ml.language import LanguageDetector, script_counts
from classify.ml.sentiment import LABELS, SentimentClassifier
from classify.ml.sentiment_head import REVIEWS, load_reviews
from classify.ml.signals import detect
from classify.settings import ClassifySettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[list[str]]:
    with (DATA / name).open(encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle if line.strip() and not line.startswith("#")]


# --- urgency signals and emotions in seven languages (no model) ------------------------------------------

@pytest.mark.parametrize(("text", "signals", "severity"), [
    ("I paid 500 euros, please send the invoice", set(), "low"),
    ("Ich habe 503 Euro bezahlt, bitte schicken Sie die Rechnung", set(), "low"),
    ("The checkout shows error 500 since this morning", {"outage"}, "critical"),
    ("Meine Karte wurde zweimal belastet, ich will einen Anwalt", {"payment_failure", "legal_threat"}, "critical"),
    ("我的订单被重复扣款了，退款还没到", {"payment_failure"}, "high"),
    ("再不退款我就找律师起诉你们", {"legal_threat"}, "critical"),
    ("我的账号被盗了，有人异常登录", {"security"}, "critical"),
    ("アプリにログインできない状態が続いています", {"outage"}, "critical"),
    ("写真のデータが全部消えました", {"data_loss"}, "critical"),
    ("Mi pago fue rechazado otra vez", {"payment_failure"}, "high"),
    ("Voy a hablar con mi abogado", {"legal_threat"}, "critical"),
    ("Mon compte a été piraté", {"security"}, "critical"),
    ("Le site est en panne depuis ce matin", {"outage"}, "critical"),
    ("Perdi todas as minhas fotos depois da atualização", {"data_loss"}, "critical"),
    ("Das Gericht im Restaurant war kalt", set(), "low"),  # the dish, not the court
    # Amounts are not HTTP errors in any language; error codes beside an error word are.
    ("我付了500元，请开发票", set(), "low"), ("500円払いました。領収書をください", set(), "low"),
    ("Paguei 500 reais e quero a nota fiscal", set(), "low"), ("J'ai payé 502 euros, envoyez la facture", set(), "low"),
    ("Pagué 503 dólares por el plan anual", set(), "low"),
    ("Ich habe 500 € bezahlt, wo ist die Rechnung?", set(), "low"),
    ("服务器一直报500错误", {"outage"}, "critical"), ("サーバーが503エラーを返します", {"outage"}, "critical"),
    ("Die Seite zeigt Fehler 503", {"outage"}, "critical"), ("有人盗用了我的信用卡", {"security"}, "critical"),
])
def test_urgency_signals_in_several_languages(text: str, signals: set[str], severity: str) -> None:
    found = detect(text)
    assert set(found.signals) == signals, found
    assert found.severity == severity


@pytest.mark.parametrize(("text", "emotion"), [
    ("Das ist eine Frechheit!", "anger"), ("太过分了，什么破服务", "anger"), ("最悪の対応です", "anger"),
    ("Es inaceptable", "anger"), ("C'est scandaleux", "anger"), ("Que palhaçada", "anger"),
    ("Schon wieder funktioniert nichts", "frustration"), ("还是没有人回复我", "frustration"),
    ("何度も問い合わせています", "frustration"), ("Sigo esperando una respuesta", "frustration"),
    ("J'attends depuis deux semaines", "frustration"), ("Ninguém responde", "frustration"),
    ("Bitte dringend prüfen", "urgency"), ("请尽快处理", "urgency"), ("至急対応してください", "urgency"),
    ("Es urgente", "urgency"), ("Répondez au plus vite", "urgency"), ("Preciso disso imediatamente", "urgency"),
    ("真的太让人生气了", "anger"), ("本当にムカつく", "anger"), ("いつまで待たせるんですか", "frustration"),
    ("急ぎでお願いします", "urgency"), ("This is ridiculous, I want my money back", "anger"),
    ("I've been waiting for two weeks", "frustration"), ("Please fix this urgently", "urgency"),
])
def test_emotions_in_several_languages(text: str, emotion: str) -> None:
    assert emotion in detect(text).emotions


def test_calm_messages_raise_no_emotion() -> None:
    for text in ("又快又好，谢谢", "ありがとうございました", "Vielen Dank für die schnelle Hilfe", "Merci beaucoup"):
        assert detect(text).emotions == (), text


# --- language detection ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "language"), [
    ("我的订单被重复扣款了，退款还没到", "zh"), ("我的iPhone坏了", "zh"), ("アプリが落ちます", "ja"),
    ("本人確認にはどんな書類が必要ですか？", "ja"), ("배송이 너무 늦어요", "ko"), ("الطلب لم يصل بعد", "ar"),
    ("पैसे कट गए लेकिन ऑर्डर नहीं आया", "hi"), ("Мой заказ задерживается уже две недели", "ru"),
    ("Siparişim iki haftadır gecikiyor", "tr"), ("Đơn hàng của tôi vẫn chưa được giao", "vi"),
    ("สินค้ามาช้ามาก", "th"), ("Pesanan saya belum sampai sampai sekarang", "id"),
    ("Η παραγγελία μου δεν έχει φτάσει ακόμα", "el"), ("ההזמנה שלי עדיין לא הגיעה", "he"),
    ("Моє замовлення досі не прийшло", "uk"), ("Moje objednávka ještě nedorazila", "cs"),
    ("@user #MasterChefBR adoro esse programa, não perco nenhum episódio http://t.co/x", "pt"),
])
def test_languages_customers_write(languages: LanguageDetector, text: str, language: str) -> None:
    assert languages.detect([text])[0].language == language


def test_every_message_of_the_cross_lingual_set_is_detected(languages: LanguageDetector) -> None:
    rows = _rows("intents_multilingual.tsv") + [[r[0], r[1], r[2]] for r in _rows("reviews_multilingual.tsv")]
    found = languages.detect([row[2] for row in rows])
    wrong = [(row[0], p.language, row[2]) for row, p in zip(rows, found, strict=True) if p.language != row[0]]
    assert len(wrong) <= 2, wrong  # 324 messages in 7 languages; measured: 1 (a short Portuguese question)


def test_every_default_language_on_our_own_sentences(languages: LanguageDetector) -> None:
    # 8 messages in each of the 24 default languages plus 8 in romanised Hindi; measured: 200 of 200.
    rows = [row for row in _rows("languages_24.tsv")]
    found = languages.detect([text for _, text in rows])
    assert {code for code, _ in rows} == set(languages.codes)
    wrong = [(code, p.language, text) for (code, text), p in zip(rows, found, strict=True) if p.language != code]
    assert len(wrong) <= 2, wrong


@pytest.mark.parametrize(("text", "language"), [
    ("refund abhi tak nahi aaya bhai", "hi"), ("kya bakwas service hai", "hi"), ("order ka status kya hai?", "hi"),
    ("Il pacco non è arrivato, hai il numero?", "it"),  # Italian "hai": one word of the wider list is not enough
    ("Saya mau ke toko besok", "id"), ("Where is my refund? Thanks", "en"), ("Se me cayó la app", "es"),
])
def test_romanised_hindi(languages: LanguageDetector, text: str, language: str) -> None:
    assert languages.detect([text])[0].language == language


def test_han_characters_weigh_as_words() -> None:
    assert script_counts("我的iPhone坏了") == {"han": 12.0, "latin": 6.0}


# --- cross-lingual intents and sentiment through the default (multilingual) model --------------------------

@pytest.fixture(scope="module")
def multilingual() -> ConcatEmbedder:
    settings = ClassifySettings()
    assert settings.model_name == SERVICE_MODEL_NAME
    # The same key as the service tests' apps: one copy of the models per test process.
    embedder = shared_embedder(settings.model_name, settings.embed_batch_size,
                               settings.embed_workers or default_workers(), settings.languages)
    assert isinstance(embedder, ConcatEmbedder)
    return embedder


def test_english_texts_get_both_models_and_others_only_the_multilingual_one(multilingual: ConcatEmbedder) -> None:
    vectors = multilingual.encode(["My card was charged twice", "我的卡被重复扣款了"])
    minilm = multilingual.parts[0].dimension
    assert np.abs(vectors[0, :minilm]).sum() > 0 and np.abs(vectors[1, :minilm]).sum() == 0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    rows, others = multilingual.alternate_view(vectors)
    assert rows.tolist() == [0] and np.abs(others[0, :minilm]).sum() == 0
    assert np.isclose(np.linalg.norm(others[0]), 1.0, atol=1e-5)


def test_intents_taught_in_english_are_recognised_in_six_languages(multilingual: ConcatEmbedder) -> None:
    with (DATA / "banking77_sample.csv").open(encoding="utf-8") as handle:
        sample = list(csv.DictReader(handle))
    texts, labels = [r["text"] for r in sample], [r["category"] for r in sample]
    result = train_model(multilingual.encode(texts), texts, labels, TrainParams(), 0.3,
                         alternate_view=multilingual.alternate_view)
    rows = [row for row in _rows("intents_multilingual.tsv") if row[1] in set(labels)]  # 7 intents x 2 x 6
    probs = result.model.probabilities(multilingual.encode([row[2] for row in rows]), [row[2] for row in rows])
    predicted = [result.model.labels[i] for i in probs.argmax(axis=1)]
    right = {language: np.mean([p == row[1] for p, row in zip(predicted, rows, strict=True) if row[0] == language])
             for language in ("zh", "de", "es", "fr", "pt", "ja")}
    assert np.mean(list(right.values())) >= 0.85, right
    assert min(right.values()) >= 0.7, right


def test_sentiment_head_reads_reviews_in_six_languages(multilingual: ConcatEmbedder) -> None:
    classifier = SentimentClassifier(multilingual)
    assert classifier.head is not None  # the shipped head was trained on the default model
    rows = _rows("reviews_multilingual.tsv")
    texts = [row[2] for row in rows]
    predicted = np.array([p.label for p in classifier.predict(multilingual.encode(texts), texts)])
    truth = np.array([row[1] for row in rows])
    language = np.array([row[0] for row in rows])

    def macro_recall(mask: np.ndarray) -> float:
        return float(np.mean([(predicted[mask & (truth == label)] == label).mean() for label in LABELS]))

    recalls = {code: round(macro_recall(language == code), 2) for code in ("en", "zh", "ja", "de", "es", "fr")}
    # Measured 2026-12-04: en 0.83, zh 0.83, ja 0.79, de 0.71, es 0.83, fr 0.88 (0.75 / 0.75 / 0.75 / 0.62 / 0.75 /
    # 0.67 before the head learnt from our reviews); 31 reviews called neutral, 27 of them right (13 and 11 before).
    assert recalls["en"] >= 0.75, recalls
    assert min(recalls.values()) >= 0.62, recalls
    neutral = predicted == "neutral"
    assert neutral.sum() >= 20 and (truth[neutral] == "neutral").mean() >= 0.7, recalls  # neutral when neutral


def test_sentiment_on_the_review_validation_split(multilingual: ConcatEmbedder) -> None:
    # 300 reviews with 1-5 stars the head never saw (services/classify/data/sentiment_reviews_val.tsv); HEAD_WEIGHT
    # and NEUTRAL_BIAS were chosen on them. Measured 2026-12-04: all 0.672 — en 0.73, de 0.68, es 0.60, fr 0.75,
    # ja 0.62, zh 0.65 (0.558 before: en 0.53, and 7 of 10 lukewarm reviews called negative or positive).
    texts, labels, languages = load_reviews(REVIEWS / "sentiment_reviews_val.tsv")
    classifier = SentimentClassifier(multilingual)
    predicted = np.array([p.label for p in classifier.predict(multilingual.encode(texts), texts)])
    truth, language = np.array([LABELS[c] for c in labels]), np.array(languages)

    def macro_recall(mask: np.ndarray) -> float:
        return float(np.mean([(predicted[mask & (truth == label)] == label).mean() for label in LABELS]))

    recalls = {code: round(macro_recall(language == code), 2) for code in ("en", "zh", "ja", "de", "es", "fr")}
    assert macro_recall(np.ones(len(texts), dtype=bool)) >= 0.63, recalls
    assert recalls["en"] >= 0.68, recalls
    assert min(recalls.values()) >= 0.55, recalls


def test_sentiment_of_the_twelve_language_messages(multilingual: ConcatEmbedder) -> None:
    # The six requests of tests/data/multilingual_feedback.tsv in twelve languages: 47 of 72 right with the
    # English model and multilingual seeds; 66 with the default model and the head.
    rows = [line.rstrip("\n").split("\t") for line in (DATA / "multilingual_feedback.tsv").open(encoding="utf-8")]
    tone = ["negative", "neutral", "negative", "neutral", "positive", "negative"]
    texts = [text for _, text in rows]
    predicted = SentimentClassifier(multilingual).predict(multilingual.encode(texts), texts)
    right = sum(p.label == tone[i % 6] for i, p in enumerate(predicted))
    assert right >= 62, right
