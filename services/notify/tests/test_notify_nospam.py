"""No spam: quiet hours (unit), and de-duplication, the frequency cap and quiet hours end to end with a
real SMTP server; every suppressed message is listed with its reason."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import nats
import pytest

from closedloop.events import CustomerRef, TicketCreatedV1, TicketResolvedV1
from closedloop.testing import eventually, running_app
from notify.nospam import quiet_until, zone

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@pytest.mark.parametrize(("now", "until"), [
    (berlin(22, 30), berlin(8, 0, day=25)),
    (berlin(21, 0), berlin(8, 0, day=25)),
    (berlin(0, 5), berlin(8, 0)),
    (berlin(7, 59), berlin(8, 0)),
    (berlin(8, 0), None),
    (berlin(12, 0), None),
    (berlin(20, 59), None),
])
def test_quiet_hours_wrap_midnight_in_the_recipients_zone(now, until):
    assert quiet_until(now, "21:00", "08:00", BERLIN) == until


def test_quiet_hours_within_a_day_and_off():
    assert quiet_until(berlin(13, 30), "13:00", "14:00", BERLIN) == berlin(14, 0)
    assert quiet_until(berlin(14, 0), "13:00", "14:00", BERLIN) is None
    assert quiet_until(berlin(3, 0), "00:00", "00:00", BERLIN) is None


def test_unknown_zone_falls_back_to_the_default():
    assert zone("Mars/Olympus", "Europe/Berlin") == BERLIN
    assert zone(None, "Nowhere/Else") == ZoneInfo("UTC")


def window_around_now() -> tuple[str, str]:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return start.strftime("%H:%M"), end.strftime("%H:%M")


async def test_duplicates_and_the_frequency_cap_are_suppressed_with_reasons(make_app, smtp_server, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port, frequency_cap_per_hour=2)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        customer = CustomerRef(id="c-5", email="bo@example.com", name="Bo")
        ticket = notify_kit.snapshot(customer=customer)
        await notify_kit.publish(app, TicketCreatedV1(ticket=ticket))
        await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        # ticketing announces the same ticket again (another event id): the customer hears once
        await notify_kit.publish(app, TicketCreatedV1(ticket=ticket))
        [duplicate] = await eventually(notify_kit.where(client, status="suppressed"), timeout=15)
        assert duplicate["reason"].startswith("duplicate")
        assert (duplicate["recipient"], duplicate["ticket_id"]) == ("bo@example.com", str(ticket.ticket_id))

        # a different notification about the same ticket is not a duplicate: 2 of 2 per hour
        await notify_kit.publish(app, TicketResolvedV1(ticket=ticket, resolved_at=datetime.now(UTC)))
        await eventually(notify_kit.where(client, count=2, status="delivered"), timeout=15)
        # the third in the hour is over the cap
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot(customer=customer)))
        suppressed = await eventually(notify_kit.where(client, count=2, status="suppressed"), timeout=15)
        assert suppressed[0]["reason"].startswith("frequency_cap")
        # P0 is urgent: it bypasses the cap (never the de-duplication)
        urgent = notify_kit.snapshot(customer=customer, priority="P0")
        await notify_kit.publish(app, TicketCreatedV1(ticket=urgent))
        await eventually(notify_kit.where(client, count=3, status="delivered"), timeout=15)
        assert len(smtp_server.to("bo@example.com")) == 3
        subjects = [m["Subject"] for m in smtp_server.to("bo@example.com")]
        assert subjects[1].startswith("How did we do?")


async def test_quiet_hours_postpone_but_p0_goes_now(make_app, smtp_server, notify_kit):
    start, end = window_around_now()
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port, quiet_hours_start=start,
                   quiet_hours_end=end, default_timezone="UTC")
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        calm = notify_kit.snapshot(customer=CustomerRef(id="c-6", email="calm@example.com"), priority="P2")
        urgent = notify_kit.snapshot(customer=CustomerRef(id="c-7", email="urgent@example.com"), priority="P0")
        await notify_kit.publish(app, TicketCreatedV1(ticket=calm))
        await notify_kit.publish(app, TicketCreatedV1(ticket=urgent))

        [sent] = await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        assert sent["recipient"] == "urgent@example.com"
        [held] = (await notify_kit.deliveries(client, recipient="calm@example.com"))["items"]
        assert (held["status"], held["attempts"]) == ("pending", 0)
        assert held["reason"].startswith("quiet_hours")
        assert datetime.fromisoformat(held["next_attempt_at"]) > datetime.now(UTC) + timedelta(minutes=30)
        assert smtp_server.to("calm@example.com") == []


async def test_the_same_notification_twice_in_one_batch_goes_out_once(make_app, nats_server, smtp_server,
                                                                     notify_kit):
    ticket = notify_kit.snapshot(customer=CustomerRef(id="c-10", email="twice@example.com"))
    first = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    async with running_app(first):  # creates the streams and the durable consumers, then stops
        await first.state.runtime.broker.wait_connected(10)
    connection = await nats.connect(nats_server.url)
    try:
        for event in (TicketCreatedV1(ticket=ticket), TicketCreatedV1(ticket=ticket)):
            await connection.jetstream().publish(event.nats_subject, event.model_dump_json().encode(),
                                                 headers={"Nats-Msg-Id": str(event.event_id)})
    finally:
        await connection.close()

    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    async with running_app(app) as client:  # both wait in the stream: the consumer fetches them as one batch
        [suppressed] = await eventually(notify_kit.where(client, status="suppressed"), timeout=15)
        assert suppressed["reason"].startswith("duplicate")
        await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        assert len(smtp_server.to("twice@example.com")) == 1
