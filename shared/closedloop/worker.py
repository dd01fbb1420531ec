"""Background workers: one loop and one way to stop, for every periodic job of a service.

A job (retention, the SLA timer, the training queue, the analyses, ...) subclasses `BackgroundWorker` and
writes `run_pass()`: one pass, returning True when more work is already waiting (the next pass then starts
at once, as the SLA timer does with a full batch). Between passes the worker waits `between_passes()`
seconds, or less when `wake()` is called (a wake during a pass is kept: the next wait returns at once).
A pass that raises is logged and the next one tries again: a background job never takes the service down.

Stopping is the same for all: `stop()` asks the loop to end and wakes it, so an idle worker ends at once;
a pass in progress may finish for `stop_grace_seconds` (its transaction commits whole), then it is
cancelled (its transaction rolls back). A pass must therefore be safe to cut off: one transaction, or
several that each leave the database consistent.

Not periodic jobs, so not workers of this kind: the message pumps (consumers and the outbox relay in
`closedloop.messaging`, notify's dispatcher), the broker's connection loop, the PostgreSQL LISTEN of
`closedloop.wakeup` and the console's live NATS subscription.
"""

import asyncio
import contextlib
import logging
from typing import ClassVar

log = logging.getLogger(__name__)


class BackgroundWorker:
    name: ClassVar[str] = "worker"  # the asyncio task's name, and what the logs call it
    # False: the first pass comes one interval after start (a job with nothing to do at start).
    first_pass_at_start: ClassVar[bool] = True
    stop_grace_seconds: ClassVar[float] = 10.0

    _worker_task: asyncio.Task[None] | None = None
    _worker_stopping: bool = False
    _worker_wakeup: asyncio.Event | None = None

    # --- what a job writes -------------------------------------------------------------------------------
    async def run_pass(self) -> bool:
        """One pass; True when more work is waiting."""
        raise NotImplementedError

    def between_passes(self) -> float:
        """Seconds to wait after a pass that left nothing waiting."""
        raise NotImplementedError

    def enabled(self) -> bool:
        """False: `start()` starts nothing (a job switched off in the settings)."""
        return True

    async def before_first_pass(self) -> None:
        """Once, when the loop starts (e.g. requeue what a previous process left half done)."""

    # --- the loop ----------------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.enabled():
            return
        self._worker_stopping = False
        # A fresh event for this event loop; a wake() that came before start() is kept.
        woken = self._worker_wakeup is not None and self._worker_wakeup.is_set()
        self._worker_wakeup = asyncio.Event()
        if woken:
            self._worker_wakeup.set()
        self._worker_task = asyncio.create_task(self._loop(), name=self.name)

    def wake(self) -> None:
        if self._worker_wakeup is None:
            self._worker_wakeup = asyncio.Event()
        self._worker_wakeup.set()

    async def stop(self) -> None:
        self._worker_stopping = True
        self.wake()
        task, self._worker_task = self._worker_task, None
        if task is None:
            return
        _, pending = await asyncio.wait({task}, timeout=self.stop_grace_seconds)
        if pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _loop(self) -> None:
        wakeup = self._worker_wakeup
        assert wakeup is not None
        try:
            await self.before_first_pass()
        except Exception:
            log.exception("%s: start-up step failed; the passes run anyway", self.name)
        more = self.first_pass_at_start
        while not self._worker_stopping:
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), self.between_passes())
                if self._worker_stopping:
                    return
            wakeup.clear()
            try:
                more = await self.run_pass()
            except Exception:
                log.exception("%s: pass failed; the next one tries again", self.name)
                more = False
