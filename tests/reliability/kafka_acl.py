"""A real Kafka-protocol broker whose topic ACL an operator can revoke and grant again.

Tansu has no ACLs, so the broker is put behind a byte-level TCP proxy on 127.0.0.1 that
Tansu advertises as its own address (every client connection goes through it). While
``denied`` is set, the proxy rewrites the error code of every partition of every Produce
response to 29, TOPIC_AUTHORIZATION_FAILED, exactly what a Kafka broker answers when the
principal lacks WRITE on the topic; the records were written by Tansu, which a real broker
would not do, but the client sees what it would see. Everything else passes untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from aiokafka.protocol import produce

from notifier.dev.broker import EmbeddedBroker, free_port

PRODUCE_API_KEY = 0
TOPIC_AUTHORIZATION_FAILED = 29


class AclBroker:
    """Tansu on a private port, advertised as (and reached through) the proxy's port."""

    def __init__(self) -> None:
        self.denied = False
        self.refused_responses = 0
        self.proxy_port = free_port()
        self._broker_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._server: asyncio.Server | None = None
        self._log = Path(tempfile.mkdtemp(prefix="notifier-acl-")) / "tansu.log"
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    async def start(self) -> None:
        self._spawn()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.proxy_port)
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self._broker_port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    def _spawn(self) -> None:
        binary = EmbeddedBroker()._resolve_binary()
        argv = [
            binary,
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self._broker_port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.proxy_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {**os.environ, "RUST_LOG": "error", "NO_COLOR": "1"}
        with self._log.open("wb") as out:
            self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed argv
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        for task in list(self._pipes):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self._broker_port)
        produce_versions: dict[int, int] = {}  # correlation id -> Produce request version
        up = asyncio.create_task(self._upstream(client_r, broker_w, produce_versions))
        down = asyncio.create_task(self._downstream(broker_r, client_w, produce_versions))
        self._pipes |= {up, down}
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
                self._pipes.discard(task)
            for writer in (client_w, broker_w):
                writer.close()

    async def _upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, versions: dict[int, int]
    ) -> None:
        while True:
            frame = await _frame(reader)
            api_key, api_version, correlation = struct.unpack(">hhi", frame[4:12])
            if api_key == PRODUCE_API_KEY:
                versions[correlation] = api_version
            writer.write(frame)
            await writer.drain()

    async def _downstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, versions: dict[int, int]
    ) -> None:
        while True:
            frame = await _frame(reader)
            (correlation,) = struct.unpack(">i", frame[4:8])
            version = versions.pop(correlation, None)
            if version is not None and self.denied:
                frame = self._refuse(frame, version)
            writer.write(frame)
            await writer.drain()

    def _refuse(self, frame: bytes, version: int) -> bytes:
        response_class = getattr(produce, f"ProduceResponse_v{version}")
        response = response_class.decode(frame[8:])
        response.topics = [
            (topic, [(p[0], TOPIC_AUTHORIZATION_FAILED, *p[2:]) for p in partitions])
            for topic, partitions in response.topics
        ]
        self.refused_responses += 1
        body: bytes = frame[4:8] + response.encode()
        return struct.pack(">i", len(body)) + body


async def _frame(reader: asyncio.StreamReader) -> bytes:
    size = await reader.readexactly(4)
    (length,) = struct.unpack(">i", size)
    return size + await reader.readexactly(length)
