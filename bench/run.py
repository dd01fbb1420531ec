"""`make bench`: classify throughput through the service (NATS in, NATS out) against raw
`model.encode` measured in the same run, then per-message latency at half that load.

Figures are printed, never asserted: speed is this benchmark's job, not the test suite's.
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import nats

from classify.embedding import DEFAULT_MODEL_NAME, resolve_model_path
from classify.settings import ClassifySettings
from classify.taxonomy import load_taxonomy
from closedloop.config import DEV_API_KEY
from closedloop.devtools.nats_server import NatsServer, free_port
from closedloop.devtools.processes import ServiceProcess, service_env
from closedloop.events import CustomerRef, FeedbackReceivedV1

TEMPLATES = [
    "{}", "Hi, {} and I need help.", "{}. This is the second time this week!", "Quick question: {}",
    "{} — please fix this, I rely on your app every day.",
]


def sample_texts(n: int) -> list[str]:
    """Customer-like texts built from the taxonomy's example phrases, varied so no two are equal."""
    phrases = [example for node in load_taxonomy().leaves() for example in node.examples]
    return [TEMPLATES[i % len(TEMPLATES)].format(phrases[i % len(phrases)]) + f" (ref {i})" for i in range(n)]


def baseline_model():  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the network, also when run without make
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model_path(DEFAULT_MODEL_NAME), device="cpu")


def raw_encode_throughput(model, texts: list[str], batch_size: int) -> float:  # type: ignore[no-untyped-def]
    """The baseline: the model's own `encode`, all texts in one call, torch using every core as it likes."""
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - started)


def event_for(text: str) -> FeedbackReceivedV1:
    return FeedbackReceivedV1(feedback_id=uuid4(), channel="api", text=text, customer=CustomerRef(id="bench"),
                              received_at=datetime.now(UTC))


async def through_service(nats_url: str, texts: list[str], rate: float | None) -> tuple[float, list[float]]:
    """Publish one event per text (all at once, or at `rate` per second) and wait for every
    `feedback.classified.v1`. Returns (texts/s, per-message latencies in seconds)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def on_classified(msg) -> None:  # type: ignore[no-untyped-def]
        import json

        feedback_id = json.loads(msg.data)["feedback_id"]
        if feedback_id in sent_at:
            latencies.append(time.perf_counter() - sent_at.pop(feedback_id))
            if len(latencies) == len(texts):
                done.set()

    sub = await nc.subscribe("feedback.classified.v1", cb=on_classified)
    events = [event_for(text) for text in texts]
    started = time.perf_counter()
    for index, event in enumerate(events):
        if rate:
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
        sent_at[str(event.feedback_id)] = time.perf_counter()
        await js.publish(event.nats_subject, event.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": str(event.event_id)})
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    await nc.close()
    return len(texts) / elapsed, latencies


def activate_trained_model(url: str, train_csv: Path, limit: int) -> str:
    """Train a model through the service's API on `train_csv` (text,label|category) and activate it, so the
    benchmark measures the trained path (ensemble + calibration) instead of the zero-shot fallback."""
    import httpx

    from classify.evaluate import read_csv, to_path

    texts, labels = read_csv(train_csv)
    texts, labels = texts[:limit], labels[:limit]
    with httpx.Client(base_url=url, headers={"X-API-Key": DEV_API_KEY}, timeout=300) as client:
        nodes = [{"path": to_path(label, "bench")} for label in sorted(set(labels))]
        client.put("/v1/taxonomy", json={"nodes": nodes}).raise_for_status()
        examples = [{"text": t, "label": to_path(label, "bench")} for t, label in zip(texts, labels, strict=True)]
        for start in range(0, len(examples), 2000):
            client.post("/v1/training-examples", json={"examples": examples[start:start + 2000]}).raise_for_status()
        model = client.post("/v1/models", json={"activate": True}).json()
        while model["status"] in ("queued", "training"):
            time.sleep(1.0)
            model = client.get(f"/v1/models/{model['id']}").json()
        if model["status"] != "ready":
            raise RuntimeError(f"training failed: {model['error']}")
        while client.get("/v1/models/active").json()["mode"] != "trained":
            time.sleep(0.2)
        return f"trained-v{model['version']} ({model['n_examples']} examples, held-out accuracy " \
               f"{model['metrics'].get('accuracy')})"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32,
                        help="texts per forward pass of the raw baseline (32 is encode's own default)")
    parser.add_argument("--service-batch-size", type=int,
                        help="texts per forward pass in the service (default: its CLASSIFY_EMBED_BATCH_SIZE)")
    parser.add_argument("--consumer-batch", type=int,
                        help="messages per consumer fetch (default: the service's CLASSIFY_CONSUMER_BATCH_SIZE)")
    parser.add_argument("--train-csv", type=Path,
                        help="train and activate a model on this CSV first (e.g. ../shared/data/banking77/train.csv)")
    parser.add_argument("--train-limit", type=int, default=10_000, help="rows of --train-csv to use")
    parser.add_argument("--rounds", type=int, default=3, help="service runs, each between two baseline runs")
    args = parser.parse_args()
    texts = sample_texts(args.texts)

    service_batch = args.service_batch_size or ClassifySettings().embed_batch_size
    print(f"classify benchmark: {args.texts} texts, forward batches of {args.batch_size} (baseline) "
          f"and {service_batch} (service), {args.rounds} rounds")
    # This machine's speed drifts by 10 % and more within a minute, so a single service run against a single
    # baseline says little. Baseline and service alternate; each round's ratio is against the faster of
    # the baselines measured just before and just after it (the stricter comparison), and the median
    # round is the figure.
    model = baseline_model()
    baselines = [raw_encode_throughput(model, texts, args.batch_size)]
    print(f"  baseline  raw model.encode, all texts in one call: {baselines[0]:8.1f} texts/s")
    extra = {"CLASSIFY_EMBED_BATCH_SIZE": str(service_batch), "CLASSIFY_LOG_LEVEL": "WARNING"}
    if args.consumer_batch:
        extra["CLASSIFY_CONSUMER_BATCH_SIZE"] = str(args.consumer_batch)

    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        server = NatsServer(free_port(), scratch_dir / "js").start()
        env = service_env("classify", database_url=f"sqlite+aiosqlite:///{scratch_dir / 'classify.db'}",
                          nats_url=server.url, api_key=DEV_API_KEY, extra=extra)
        service = ServiceProcess("classify", free_port(), env, scratch_dir / "classify.log").start()
        try:
            service.wait_ready(timeout=180)
            if args.train_csv:
                print(f"  model     {activate_trained_model(service.url, args.train_csv, args.train_limit)}")
            else:
                print("  model     zero-shot (no trained model active; --train-csv to measure a trained one)")
            asyncio.run(through_service(server.url, texts[:64], rate=None))  # warm-up
            rounds: list[tuple[float, float]] = []  # (service texts/s, ratio)
            for number in range(1, args.rounds + 1):
                throughput, _ = asyncio.run(through_service(server.url, texts, rate=None))
                baselines.append(raw_encode_throughput(model, texts, args.batch_size))
                ratio = throughput / max(baselines[-2:])
                rounds.append((throughput, ratio))
                print(f"  round {number}   service (NATS in → classify → NATS out) {throughput:6.1f} texts/s, "
                      f"baseline after {baselines[-1]:6.1f} → ratio {ratio:.2f}")
            throughput, ratio = sorted(rounds, key=lambda r: r[1])[len(rounds) // 2]
            print(f"  ratio     median round: {ratio:.2f} (target ≥ 0.80; rounds "
                  f"{' '.join(f'{r:.2f}' for _, r in rounds)})")
            half = throughput / 2
            count = min(len(texts), max(64, int(half * 10)))
            _, latencies = asyncio.run(through_service(server.url, texts[:count], rate=half))
            print(f"  latency at half load ({half:.0f} texts/s, {count} texts): "
                  f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms")
        finally:
            service.stop()
            server.stop()


if __name__ == "__main__":
    main()
