"""A webhook receiver for the benchmarks: HTTP/1.1 with keep-alive on asyncio, in its own process, answering
200 at once and counting what it got per event type.

Why not `http.server`: a thread per connection and a parse in pure Python tops out near the rates being
measured, and it would run in the load generator's process, beside its event loop. This one answers a
request in a few microseconds of its own core time, so what the benchmark reads is notify's speed.
"""

import asyncio
import multiprocessing
import socket
from multiprocessing.sharedctypes import Synchronized


class _Protocol(asyncio.Protocol):
    def __init__(self, counts: dict[bytes, Synchronized]) -> None:
        self.counts = counts
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            event_type = b"other"
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"closedloop-event-type":
                    event_type = value.strip()
            if len(self.buffer) < head_end + 4 + length:
                return
            self.buffer = self.buffer[head_end + 4 + length:]
            counter = self.counts.get(event_type, self.counts[b"other"])
            with counter.get_lock():
                counter.value += 1
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")


def _serve(sock: socket.socket, counts: dict[bytes, Synchronized]) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(lambda: _Protocol(counts), sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Receiver:
    """`url` answers every POST with 200; `count(event_type)` says how many arrived."""

    EVENT_TYPES = (b"ticket.created.v1", b"other")

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        context = multiprocessing.get_context("fork")
        self.counts = {name: context.Value("q", 0) for name in self.EVENT_TYPES}
        self.process = context.Process(target=_serve, args=(self.sock, self.counts), daemon=True)

    def start(self) -> "Receiver":
        self.process.start()
        return self

    def count(self, event_type: str = "ticket.created.v1") -> int:
        return int(self.counts[event_type.encode()].value)

    def total(self) -> int:
        return sum(int(value.value) for value in self.counts.values())

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self.sock.close()
