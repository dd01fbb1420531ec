"""Evaluate the classifier the way a customer would train it: through the service's HTTP API.

    python -m classify.evaluate --train ../shared/data/banking77/train.csv [--test test.csv]

Without `--test`, a stratified share of the training file (`--holdout`, 20%, fixed `--seed`) is held
out. Without `--url`, a throw-away classify service is started (its own nats-server and SQLite file in
a temporary directory), exactly as `make run` starts it. Then:

1. `PUT /v1/taxonomy` with one leaf per label (flat labels go under `--prefix`, e.g. `banking77/card_arrival`);
2. `POST /v1/training-examples` in chunks of `--chunk`;
3. `POST /v1/models`, polling `GET /v1/models/{id}` (progress bar) until ready; `POST /v1/models/{id}/activate`;
4. `POST /v1/classify` with the held-out texts in batches; accuracy, macro-F1, per-class precision and
   coverage are computed from the answers.

CSV files need a text column (`text`) and a label column (`label` or `category`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tqdm import tqdm

from classify.ml.ensemble import stratified_split
from closedloop.config import DEV_API_KEY


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        label_column = next((c for c in ("label", "category", "intent") if c in fields), None)
        if "text" not in fields or label_column is None:
            raise SystemExit(f"{path}: needs a 'text' column and a 'label' (or 'category') column, got {fields}")
        rows = [(row["text"].strip(), row[label_column].strip()) for row in reader if row["text"].strip()]
    return [t for t, _ in rows], [label for _, label in rows]


def to_path(label: str, prefix: str) -> str:
    return label if "/" in label else f"{prefix}/{label}"


@contextmanager
def local_service(port: int | None = None) -> Iterator[str]:
    """A classify service of its own (nats-server + SQLite in a temporary directory)."""
    from closedloop.devtools.nats_server import NatsServer, free_port
    from closedloop.devtools.processes import ServiceProcess, service_env

    with tempfile.TemporaryDirectory(prefix="classify-eval-") as scratch:
        scratch_dir = Path(scratch)
        server = NatsServer(free_port(), scratch_dir / "js", scratch_dir / "nats.log").start()
        env = service_env("classify", database_url=f"sqlite+aiosqlite:///{scratch_dir / 'classify.db'}",
                          nats_url=server.url, api_key=DEV_API_KEY,
                          extra={"CLASSIFY_LOG_LEVEL": "WARNING", "CLASSIFY_LOG_JSON": "false"})
        service = ServiceProcess("classify", port or free_port(), env, scratch_dir / "classify.log").start()
        try:
            print("starting a classify service (loading the model)…", file=sys.stderr, flush=True)
            service.wait_ready(timeout=900)  # two models to load: minutes on a busy machine
            yield service.url
        finally:
            service.stop()
            server.stop()


def check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise SystemExit(f"{what} failed: {response.status_code} {response.text[:2000]}")
    return response.json()


def run(client: httpx.Client, train_texts: list[str], train_labels: list[str], test_texts: list[str],
        test_labels: list[str], args: argparse.Namespace) -> dict[str, Any]:
    timings: dict[str, float] = {}
    labels = sorted(set(train_labels) | set(test_labels))
    nodes = [{"path": to_path(label, args.prefix), "description": label.replace("_", " ")} for label in labels]
    taxonomy = check(client.put("/v1/taxonomy", json={"nodes": nodes}), "PUT /v1/taxonomy")
    print(f"taxonomy {taxonomy['version']}: {len(labels)} leaves", file=sys.stderr)

    started = time.perf_counter()
    examples = [{"text": t, "label": to_path(label, args.prefix)} for t, label in zip(train_texts, train_labels,
                                                                                     strict=True)]
    with tqdm(total=len(examples), desc="posting examples", unit="ex", file=sys.stderr) as bar:
        for start in range(0, len(examples), args.chunk):
            chunk = examples[start:start + args.chunk]
            check(client.post("/v1/training-examples", json={"examples": chunk}), "POST /v1/training-examples")
            bar.update(len(chunk))
    timings["post_examples_seconds"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    params: dict[str, Any] = json.loads(args.params) if args.params else {}
    model = check(client.post("/v1/models", json={"params": params} if params else {}), "POST /v1/models")
    with tqdm(total=100, desc="training", unit="%", file=sys.stderr) as bar:
        while model["status"] in ("queued", "training"):
            time.sleep(0.5)
            model = check(client.get(f"/v1/models/{model['id']}"), "GET /v1/models/{id}")
            done, stage = int(model["progress"] * 100), model["stage"][:40]
            if done != bar.n or stage != bar.postfix:
                bar.n = done
                bar.set_postfix_str(stage)  # refreshes the bar
    if model["status"] != "ready":
        raise SystemExit(f"training failed: {model.get('error')}")
    timings["training_seconds"] = round(time.perf_counter() - started, 2)
    check(client.post(f"/v1/models/{model['id']}/activate"), "POST /v1/models/{id}/activate")

    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tqdm(total=len(test_texts), desc="classifying", unit="text", file=sys.stderr) as bar:
        for start in range(0, len(test_texts), args.batch):
            batch = test_texts[start:start + args.batch]
            answer = check(client.post("/v1/classify", json={"items": [{"text": t} for t in batch]}),
                           "POST /v1/classify")
            results.extend(answer["results"])
            bar.update(len(batch))
    timings["classify_seconds"] = round(time.perf_counter() - started, 2)
    timings["classify_texts_per_second"] = round(len(test_texts) / max(timings["classify_seconds"], 1e-9), 1)
    return {"model": model, "results": results, "timings": timings}


def score(results: list[dict[str, Any]], gold: list[str]) -> dict[str, Any]:
    """Accuracy counts `needs_triage` as not answered correctly; `top1_accuracy` uses the model's best
    guess (the suggestion) even where it would have gone to triage."""
    answered = [r["label"] for r in results]
    best = [r["suggestions"]["category"]["value"] if r["needs_triage"] and "category" in r["suggestions"]
            else r["label"] for r in results]
    gold_arr, best_arr, answered_arr = np.array(gold), np.array(best), np.array(answered)
    covered = ~np.array([r["needs_triage"] for r in results])
    per_class: dict[str, dict[str, float | int]] = {}
    f1s = []
    for label in sorted(set(gold)):
        actual = gold_arr == label
        said = best_arr == label
        tp = int((said & actual).sum())
        precision = tp / int(said.sum()) if said.any() else 0.0
        recall = tp / int(actual.sum())
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                            "coverage": round(float(covered[actual].mean()), 4), "support": int(actual.sum())}
    return {
        "test_examples": len(gold),
        "top1_accuracy": round(float((best_arr == gold_arr).mean()), 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "accuracy_with_triage": round(float((answered_arr == gold_arr).mean()), 4),
        "coverage": round(float(covered.mean()), 4),
        "accuracy_on_covered": round(float((best_arr == gold_arr)[covered].mean()) if covered.any() else 0.0, 4),
        "needs_triage": int((~covered).sum()),
        "per_class": per_class,
    }


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True, help="CSV with text,label (or text,category)")
    parser.add_argument("--test", type=Path, help="CSV to evaluate on; default: hold out part of --train")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of --train held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit-per-label", type=int, default=0, help="use at most N training texts per label")
    parser.add_argument("--prefix", default="banking77", help="taxonomy parent for labels without '/'")
    parser.add_argument("--url", help="an already running classify service (default: start one)")
    parser.add_argument("--api-key", default=os.environ.get("CLASSIFY_EVAL_API_KEY", DEV_API_KEY))
    parser.add_argument("--chunk", type=int, default=2000, help="examples per POST /v1/training-examples")
    parser.add_argument("--batch", type=int, default=128, help="texts per POST /v1/classify")
    parser.add_argument("--params", help='training params as JSON, e.g. \'{"knn_k": 5}\'')
    parser.add_argument("--oos-label", help="label of out-of-scope texts (e.g. 'oos'): never trained on; the "
                        "report gives the share of them sent to needs_triage")
    parser.add_argument("--per-class", action="store_true", help="print every class, not only the worst 10")
    parser.add_argument("--json", type=Path, help="also write the full report to this file")
    args = parser.parse_args(argv)

    texts, labels = read_csv(args.train)
    if args.test:
        train_texts, train_labels = texts, labels
        test_texts, test_labels = read_csv(args.test)
    else:
        names = sorted(set(labels))
        y = np.searchsorted(np.array(names), np.array(labels))
        train_idx, test_idx = stratified_split(y, args.holdout, args.seed)
        train_texts, train_labels = [texts[i] for i in train_idx], [labels[i] for i in train_idx]
        test_texts, test_labels = [texts[i] for i in test_idx], [labels[i] for i in test_idx]
    if args.limit_per_label:
        seen: dict[str, int] = {}
        keep = []
        for i, label in enumerate(train_labels):
            seen[label] = seen.get(label, 0) + 1
            if seen[label] <= args.limit_per_label:
                keep.append(i)
        train_texts, train_labels = [train_texts[i] for i in keep], [train_labels[i] for i in keep]
    oos_texts: list[str] = []
    if args.oos_label:
        keep = [i for i, label in enumerate(train_labels) if label != args.oos_label]
        train_texts, train_labels = [train_texts[i] for i in keep], [train_labels[i] for i in keep]
        oos_texts = [t for t, label in zip(test_texts, test_labels, strict=True) if label == args.oos_label]
        keep = [i for i, label in enumerate(test_labels) if label != args.oos_label]
        test_texts, test_labels = [test_texts[i] for i in keep], [test_labels[i] for i in keep]
    print(f"train {len(train_texts)} texts, test {len(test_texts)} texts, {len(set(train_labels))} labels"
          + (f", {len(oos_texts)} out-of-scope test texts" if args.oos_label else ""), file=sys.stderr)

    def evaluate_at(url: str) -> dict[str, Any]:
        with httpx.Client(base_url=url, headers={"X-API-Key": args.api_key}, timeout=300) as client:
            # Out-of-scope texts are classified after the in-scope ones (their label is not in the taxonomy).
            return run(client, train_texts, train_labels, test_texts + oos_texts, test_labels, args)

    if args.url:
        outcome = evaluate_at(args.url)
    else:
        with local_service() as url:
            outcome = evaluate_at(url)
    gold = [to_path(label, args.prefix) for label in test_labels]
    report = score(outcome["results"][:len(gold)], gold)
    oos_results = outcome["results"][len(gold):]
    model = outcome["model"]
    held = model["metrics"] or {}
    print()
    print(f"model v{model['version']} ({model['n_examples']} examples, {held.get('labels')} labels)")
    print(f"  service's own held-out split: accuracy {held.get('accuracy')}, macro-F1 {held.get('macro_f1')}, "
          f"ECE {held.get('expected_calibration_error')} (uncalibrated "
          f"{held.get('expected_calibration_error_uncalibrated')}), temperature {held.get('temperature')}")
    print(f"evaluation on {report['test_examples']} texts through POST /v1/classify:")
    print(f"  accuracy (top-1)          {report['top1_accuracy']:.4f}")
    print(f"  macro-F1                  {report['macro_f1']:.4f}")
    print(f"  coverage at threshold     {report['coverage']:.4f}  ({report['needs_triage']} sent to needs_triage)")
    print(f"  accuracy on covered       {report['accuracy_on_covered']:.4f}")
    print(f"  accuracy, triage = wrong  {report['accuracy_with_triage']:.4f}")
    if oos_results:
        triaged = sum(r["needs_triage"] for r in oos_results)
        report["out_of_scope"] = {"texts": len(oos_results), "needs_triage": triaged,
                                  "share_triaged": round(triaged / len(oos_results), 4)}
        print(f"  out-of-scope sent to triage {triaged / len(oos_results):.4f}  ({triaged} of {len(oos_results)})")
    timings = outcome["timings"]
    print(f"timings: post examples {timings['post_examples_seconds']} s, training {timings['training_seconds']} s, "
          f"classify {timings['classify_seconds']} s ({timings['classify_texts_per_second']} texts/s)")
    rows = sorted(report["per_class"].items(), key=lambda kv: kv[1]["f1"])
    shown = rows if args.per_class else rows[:10]
    print("per class (precision / recall / coverage / support)" + ("" if args.per_class else ", worst 10 by F1") + ":")
    for label, m in shown:
        print(f"  {label:60s} {m['precision']:.3f} / {m['recall']:.3f} / {m['coverage']:.3f} / {m['support']}")
    if args.json:
        args.json.write_text(json.dumps({"report": report, "model": model, "timings": timings}, indent=2),
                             encoding="utf-8")


if __name__ == "__main__":
    main()
