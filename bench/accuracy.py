"""Banking77 accuracy of the quantised (int8 ONNX) embedder against the full-precision one, on the same
validation split: 80 % of ../shared/data/banking77/train.csv to train, 20 % to measure (stratified, seed 13).

Two classifiers per embedder: the service's own trained ensemble (`classify.ml.ensemble.train_model`, as
`POST /v1/models` trains it: embedding logistic regression + kNN + TF-IDF, calibrated), and the embedding
logistic regression alone (the member that sees nothing but the vectors, so the quantisation shows
undiluted). Both embedders encode the same texts; the difference is paired, so it is far less noisy than
either figure.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEFAULT_CSV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "banking77" / "train.csv"


def measure(csv_path: Path, model_name: str, limit: int | None = None) -> dict[str, dict[str, float]]:
    from classify.evaluate import read_csv
    from classify.ml.embedding import build_embedder, default_workers
    from classify.ml.ensemble import TrainParams, stratified_split, train_model
    from classify.settings import ClassifySettings

    texts, labels = read_csv(csv_path)
    if limit:
        texts, labels = texts[:limit], labels[:limit]
    names = sorted(set(labels))
    y = np.searchsorted(np.array(names), np.array(labels))
    train, held = stratified_split(y, 0.2, 13)
    settings = ClassifySettings()
    results: dict[str, dict[str, float]] = {}
    for quantized in (False, True):
        embedder = build_embedder(model_name, batch_size=settings.embed_batch_size, workers=default_workers(),
                                  quantized=quantized, cache_dir=settings.model_cache_dir)
        kind = "int8 (quantized)" if quantized else "full precision"
        started = time.perf_counter()
        vectors = np.concatenate([embedder.encode(texts[i:i + 512]) for i in range(0, len(texts), 512)])
        seconds = time.perf_counter() - started
        # Every label keeps examples in the training part, so the model's labels are `names`, in that order.
        trained = train_model(vectors[train], [texts[i] for i in train], [labels[i] for i in train],
                              TrainParams(), threshold=settings.triage_threshold)
        probabilities = trained.model.probabilities(vectors[held], [texts[i] for i in held])
        ensemble = float((np.argmax(probabilities, axis=1) == y[held]).mean())
        embedding_only = logistic_accuracy(vectors[train], y[train], vectors[held], y[held])
        results[kind] = {"ensemble": ensemble, "embedding_lr": embedding_only, "encode_seconds": seconds,
                         "texts": float(len(texts)), "validation": float(len(held))}
    return results


def logistic_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=10.0, max_iter=2000).fit(x_train, y_train)
    return float((model.predict(x_test) == y_test).mean())
