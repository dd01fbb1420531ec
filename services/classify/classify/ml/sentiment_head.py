"""Build the learned sentiment head shipped with the classify package (`data/sentiment_head.npz`).

A multinomial logistic regression on the service's sentence embedding, trained on labelled tweets in
eight languages (XLM-T, `../shared/data/xlmt_sentiment/`, Apache-2.0: its train split) together with our
own seed sentences in the twelve default languages (`data/sentiment.yaml`, written for the project). The
regularisation is chosen on XLM-T's validation split. The head is tied to the embedding model it was
trained on: `SentimentClassifier` uses it only when the names match (and falls back to the seed
sentences otherwise), so a new default model needs a new head:

    .venv/bin/python -m classify.ml.sentiment_head --xlmt ../shared/data/xlmt_sentiment

Only plain arrays are stored (no pickle): weights, bias, the model name and how the head was made.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from classify.ml.sentiment import HEAD_PATH, LABELS, _load_examples

XLMT_LANGUAGES = ("english", "french", "german", "spanish", "italian", "portuguese", "arabic", "hindi")


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


def macro_recall(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xlmt", type=Path, required=True, help="folder of the XLM-T sentiment data")
    parser.add_argument("--model", default=None, help="embedding model (default: the service's)")
    parser.add_argument("--out", type=Path, default=Path(str(HEAD_PATH)))
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from classify.ml.embedding import SERVICE_MODEL_NAME, build_embedder

    embedder = build_embedder(args.model or SERVICE_MODEL_NAME)
    train_texts, train_labels, _ = load_xlmt(args.xlmt, "train")
    val_texts, val_labels, val_languages = load_xlmt(args.xlmt, "val")
    seeds = _load_examples(None)
    seed_texts = [text for label in LABELS for text in seeds[label]]
    seed_labels = [c for c, label in enumerate(LABELS) for _ in seeds[label]]
    started = time.perf_counter()
    x_train = embedder.encode(train_texts + seed_texts)
    x_val = embedder.encode(val_texts)
    y_train = np.array(train_labels + seed_labels)
    y_val = np.array(val_labels)
    # Seed sentences are customer-feedback wording, the tweets are not: weigh each seed as several tweets.
    weights = np.r_[np.ones(len(train_texts)), np.full(len(seed_texts), 4.0)]
    best: tuple[float, float] | None = None
    for c in (0.3, 1.0, 3.0, 10.0):
        head = LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train, sample_weight=weights)
        score = macro_recall(y_val, head.predict(x_val))
        print(f"C={c}: validation macro-recall {score:.4f}")
        if best is None or score > best[0]:
            best = (score, c)
    assert best is not None
    head = LogisticRegression(C=best[1], max_iter=3000).fit(x_train, y_train, sample_weight=weights)
    predicted = head.predict(x_val)
    per_language = {language: round(macro_recall(y_val[np.array(val_languages) == language],
                                                 predicted[np.array(val_languages) == language]), 4)
                    for language in XLMT_LANGUAGES}
    meta = {"model_name": embedder.model_name, "labels": list(LABELS), "C": best[1],
            "trained_on": f"XLM-T train ({len(train_texts)} tweets, 8 languages) + {len(seed_texts)} seed sentences",
            "validation_macro_recall": round(best[0], 4), "validation_per_language": per_language,
            "seconds": round(time.perf_counter() - started, 1)}
    np.savez_compressed(args.out, coef=head.coef_.astype(np.float32), intercept=head.intercept_.astype(np.float32),
                        meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
