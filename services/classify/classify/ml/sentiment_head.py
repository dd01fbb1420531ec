"""Build the learned sentiment head shipped with the classify package (`data/sentiment_head.npz`).

A multinomial logistic regression on the service's sentence embedding, trained on labelled tweets in
eight languages (XLM-T, `../shared/data/xlmt_sentiment/`, Apache-2.0: its train split), our own seed
sentences in the twelve default languages (`data/sentiment.yaml`) and our own product and service reviews
in eight languages (`services/classify/data/sentiment_reviews_train.tsv`, 1-5 stars; both written for the
project). Tweets alone teach neutral as "no opinion at all"; a lukewarm or mixed review (the 3-star kind)
then came out negative or positive, so the reviews are what teaches the head that neutral. The
regularisation and the reviews' weight are chosen on the mean of two macro-recalls: XLM-T's validation
split and our own review validation split (`sentiment_reviews_val.tsv`, never trained on). The head is tied
to the embedding model it was trained on: `SentimentClassifier` uses it only when the names match (and
falls back to the seed sentences otherwise), so a new default model needs a new head:

    .venv/bin/python -m classify.ml.sentiment_head --xlmt ../shared/data/xlmt_sentiment

Only plain arrays are stored (no pickle): weights, bias, the model name and how the head was made.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from classify.ml.sentiment import HEAD_PATH, LABELS, _load_examples

XLMT_LANGUAGES = ("english", "french", "german", "spanish", "italian", "portuguese", "arabic", "hindi")
REVIEWS = Path(__file__).resolve().parents[2] / "data"  # services/classify/data (not shipped in the package)


def load_xlmt(root: Path, split: str) -> tuple[list[str], list[int], list[str]]:
    texts: list[str] = []
    labels: list[int] = []
    languages: list[str] = []
    for language in XLMT_LANGUAGES:
        folder = root / language
        lines = (folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
        values = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
        if len(lines) != len(values):
            raise ValueError(f"{folder}: {len(lines)} texts but {len(values)} labels")
        texts += lines
        labels += [int(value) for value in values]  # 0 negative, 1 neutral, 2 positive: LABELS' order
        languages += [language] * len(lines)
    return texts, labels, languages


def load_reviews(path: Path) -> tuple[list[str], list[int], list[str]]:
    """Our review files: language<TAB>stars<TAB>label<TAB>text, `#` comments."""
    texts: list[str] = []
    labels: list[int] = []
    languages: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 4 or fields[2] not in LABELS:
            raise ValueError(f"{path}:{number}: expected language, stars, label, text")
        languages.append(fields[0])
        labels.append(LABELS.index(fields[2]))
        texts.append(fields[3])
    return texts, labels, languages


def macro_recall(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xlmt", type=Path, required=True, help="folder of the XLM-T sentiment data")
    parser.add_argument("--model", default=None, help="embedding model (default: the service's)")
    parser.add_argument("--reviews", type=Path, default=REVIEWS,
                        help="folder of sentiment_reviews_train.tsv and sentiment_reviews_val.tsv")
    parser.add_argument("--out", type=Path, default=Path(str(HEAD_PATH)))
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from classify.ml.embedding import SERVICE_MODEL_NAME, build_embedder

    embedder = build_embedder(args.model or SERVICE_MODEL_NAME)
    train_texts, train_labels, _ = load_xlmt(args.xlmt, "train")
    val_texts, val_labels, val_languages = load_xlmt(args.xlmt, "val")
    review_texts, review_labels, _ = load_reviews(args.reviews / "sentiment_reviews_train.tsv")
    held_texts, held_labels, held_languages = load_reviews(args.reviews / "sentiment_reviews_val.tsv")
    seeds = _load_examples(None)
    seed_texts = [text for label in LABELS for text in seeds[label]]
    seed_labels = [c for c, label in enumerate(LABELS) for _ in seeds[label]]
    started = time.perf_counter()
    x_train = embedder.encode(train_texts + seed_texts + review_texts)
    x_val, x_held = embedder.encode(val_texts), embedder.encode(held_texts)
    y_train = np.array(train_labels + seed_labels + review_labels)
    y_val, y_held = np.array(val_labels), np.array(held_labels)

    def fit(c: float, review_weight: float) -> Any:
        # Seeds and reviews are customer wording, the tweets are not: each weighs as several tweets.
        weights = np.r_[np.ones(len(train_texts)), np.full(len(seed_texts), 4.0),
                        np.full(len(review_texts), review_weight)]
        return LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train, sample_weight=weights)

    best: tuple[float, float, float] | None = None
    for c in (0.3, 1.0, 3.0):
        for review_weight in (2.0, 4.0, 8.0, 16.0):
            head = fit(c, review_weight)
            tweets, reviews = macro_recall(y_val, head.predict(x_val)), macro_recall(y_held, head.predict(x_held))
            score = (tweets + reviews) / 2
            print(f"C={c} review weight {review_weight}: macro-recall tweets {tweets:.4f}, reviews {reviews:.4f}")
            if best is None or score > best[0]:
                best = (score, c, review_weight)
    assert best is not None
    _, c, review_weight = best
    head = fit(c, review_weight)
    on_tweets, on_reviews = head.predict(x_val), head.predict(x_held)
    meta = {"model_name": embedder.model_name, "labels": list(LABELS), "C": c, "review_weight": review_weight,
            "trained_on": f"XLM-T train ({len(train_texts)} tweets, 8 languages) + {len(seed_texts)} seed sentences"
                          f" + {len(review_texts)} of our reviews",
            "validation_macro_recall": round(macro_recall(y_val, on_tweets), 4),
            "validation_per_language": _per_language(y_val, on_tweets, val_languages),
            "reviews_validation_macro_recall": round(macro_recall(y_held, on_reviews), 4),
            "reviews_validation_per_language": _per_language(y_held, on_reviews, held_languages),
            "seconds": round(time.perf_counter() - started, 1)}
    np.savez_compressed(args.out, coef=head.coef_.astype(np.float32), intercept=head.intercept_.astype(np.float32),
                        meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    print(json.dumps(meta, indent=2))


def _per_language(truth: np.ndarray, predicted: np.ndarray, languages: list[str]) -> dict[str, float]:
    codes = np.array(languages)
    return {code: round(macro_recall(truth[codes == code], predicted[codes == code]), 4)
            for code in sorted(set(languages))}


if __name__ == "__main__":
    main()
