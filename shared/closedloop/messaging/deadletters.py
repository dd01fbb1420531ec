"""The dead-letter stream: where a message goes after its last failed delivery.

A dead letter keeps the original payload and headers, plus why and where it failed. Each
service lists its own (`deadletter.<service>.<durable>`) and can replay one: it is published
again on its original subject (every consumer of that subject sees it, and the inbox keeps the
ones that already handled it from doing so twice), then removed from the dead-letter stream.
"""

import base64
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from closedloop.messaging.broker import Broker

STREAM = "DEADLETTER"
HEADER_SUBJECT = "Closedloop-Original-Subject"
HEADER_REASON = "Closedloop-Failure-Reason"
HEADER_CONSUMER = "Closedloop-Consumer"
HEADER_DELIVERIES = "Closedloop-Deliveries"
HEADER_EVENT_ID = "Closedloop-Event-Id"
_OWN_HEADERS = {HEADER_SUBJECT, HEADER_REASON, HEADER_CONSUMER, HEADER_DELIVERIES, HEADER_EVENT_ID}


def dead_letter_subject(service: str, durable: str) -> str:
    return f"deadletter.{service}.{durable}"


async def dead_letter(broker: Broker, service: str, durable: str, msg: Msg, reason: str) -> None:
    original = dict(msg.headers or {})
    event_id = original.get("Nats-Msg-Id", f"seq-{msg.metadata.sequence.stream}")
    headers = {k: v for k, v in original.items() if k != "Nats-Msg-Id"}
    headers.update({
        HEADER_SUBJECT: msg.subject,
        HEADER_REASON: reason[:1000].replace("\n", " ").replace("\r", " "),
        HEADER_CONSUMER: durable,
        HEADER_DELIVERIES: str(msg.metadata.num_delivered or 1),
        HEADER_EVENT_ID: event_id,
    })
    await broker.publish(dead_letter_subject(service, durable), msg.data, headers,
                         msg_id=f"dlq.{durable}.{event_id}.{msg.metadata.num_delivered}")


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    consumer: str
    original_subject: str
    event_id: str
    reason: str
    deliveries: int
    dead_lettered_at: datetime | None
    payload: str
    headers: dict[str, str]


def _decode(raw) -> DeadLetter:  # type: ignore[no-untyped-def]
    headers = dict(raw.headers or {})
    data = raw.data or b""
    try:
        payload = data.decode()
    except UnicodeDecodeError:
        payload = "base64:" + base64.b64encode(data).decode()
    return DeadLetter(
        sequence=raw.seq,
        consumer=headers.get(HEADER_CONSUMER, ""),
        original_subject=headers.get(HEADER_SUBJECT, ""),
        event_id=headers.get(HEADER_EVENT_ID, ""),
        reason=headers.get(HEADER_REASON, ""),
        deliveries=int(headers.get(HEADER_DELIVERIES, "0") or 0),
        dead_lettered_at=getattr(raw, "time", None),
        payload=payload,
        headers={k: v for k, v in headers.items() if k not in _OWN_HEADERS},
    )


async def list_dead_letters(broker: Broker, service: str, limit: int = 100,
                            after_sequence: int = 0) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    seq = after_sequence + 1
    while len(found) < limit:
        try:
            raw = await broker.js.get_msg(STREAM, seq=seq, subject=f"deadletter.{service}.>", next=True)
        except NotFoundError:
            break
        found.append(_decode(raw))
        seq = (raw.seq or seq) + 1
    return found


async def count_dead_letters(broker: Broker, service: str) -> int:
    """How many dead letters the service has: the stream counts messages per subject, no scan."""
    info = await broker.js.stream_info(STREAM, subjects_filter=f"deadletter.{service}.>")
    return sum((info.state.subjects or {}).values())


async def get_dead_letter(broker: Broker, service: str, sequence: int) -> DeadLetter | None:
    try:
        raw = await broker.js.get_msg(STREAM, seq=sequence)
    except NotFoundError:
        return None
    if not (raw.subject or "").startswith(f"deadletter.{service}."):
        return None
    return _decode(raw)


async def replay_dead_letter(broker: Broker, letter: DeadLetter) -> None:
    # A new message id: the original one may still sit in the stream's de-duplication window.
    payload = letter.payload
    data = base64.b64decode(payload[7:]) if payload.startswith("base64:") else payload.encode()
    await broker.publish(letter.original_subject, data, letter.headers,
                         msg_id=f"{letter.event_id}.replay.{letter.sequence}")
    await broker.js.delete_msg(STREAM, letter.sequence)
