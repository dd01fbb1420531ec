"""BackgroundWorker: passes, waits, wake-ups, failures and the one way every worker stops."""

import asyncio
import time

from closedloop.worker import BackgroundWorker


class Recorder(BackgroundWorker):
    name = "recorder"

    def __init__(self, interval: float = 60.0, pass_seconds: float = 0.0, fail_first: bool = False,
                 more_times: int = 0) -> None:
        self.interval, self.pass_seconds = interval, pass_seconds
        self.fail_first, self.more_times = fail_first, more_times
        self.passes = 0
        self.finished = 0

    def between_passes(self) -> float:
        return self.interval

    async def run_pass(self) -> bool:
        self.passes += 1
        if self.fail_first and self.passes == 1:
            raise RuntimeError("first pass fails")
        await asyncio.sleep(self.pass_seconds)
        self.finished += 1
        return self.passes <= self.more_times


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_first_pass_at_start_then_waits_and_an_idle_worker_stops_at_once():
    worker = Recorder()
    worker.start()
    await settle()
    assert worker.passes == 1  # then it waits a minute
    started = time.monotonic()
    await worker.stop()
    assert time.monotonic() - started < 1.0


async def test_wake_runs_a_pass_now_also_when_it_came_before_start():
    worker = Recorder()
    worker.wake()
    worker.first_pass_at_start = False
    worker.start()
    await settle()
    assert worker.passes == 1
    worker.wake()
    await settle()
    assert worker.passes == 2
    await worker.stop()


async def test_more_work_waiting_runs_the_next_pass_at_once():
    worker = Recorder(more_times=3)
    worker.start()
    await settle()
    assert worker.passes == 4
    await worker.stop()


async def test_a_failing_pass_is_logged_and_the_next_one_runs(caplog):
    worker = Recorder(interval=0.01, fail_first=True)
    worker.start()
    await settle()
    await worker.stop()
    assert worker.passes >= 2 and worker.finished >= 1
    assert "recorder: pass failed" in caplog.text


async def test_stop_lets_a_pass_finish_within_the_grace():
    worker = Recorder(pass_seconds=0.3)
    worker.start()
    await settle()
    await worker.stop()
    assert (worker.passes, worker.finished) == (1, 1)


async def test_stop_cancels_a_pass_that_outlasts_the_grace():
    worker = Recorder(pass_seconds=30)
    worker.stop_grace_seconds = 0.2
    worker.start()
    await settle()
    started = time.monotonic()
    await worker.stop()
    assert time.monotonic() - started < 2.0
    assert (worker.passes, worker.finished) == (1, 0)


async def test_a_disabled_worker_starts_nothing():
    class Off(Recorder):
        def enabled(self) -> bool:
            return False

    worker = Off()
    worker.start()
    await settle()
    assert worker.passes == 0
    await worker.stop()
