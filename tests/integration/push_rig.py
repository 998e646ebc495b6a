"""A service that pushes: the real runtime with its inbound webhook server on 127.0.0.1,
started and settled (its baseline read) for the push tests, and torn down after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from notifier.config.models import Config
from notifier.push.server import start_ingest_server
from notifier.service import Runtime, ingest_routes, open_runtime, run_service
from notifier.store.memory import MemoryStore


@asynccontextmanager
async def pushing_service(
    config: Config, *, settle_within: float
) -> AsyncIterator[tuple[Runtime, int]]:
    """The running service of ``config`` (one source) and its ingest port, once the source's
    baseline is read (start-up jitter of up to 5 s included in ``settle_within``)."""
    runtime = await open_runtime(config, store=MemoryStore())
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(runtime, stop))
    ingest = None
    try:
        ingest = await start_ingest_server(ingest_routes(runtime), host="127.0.0.1", port=0)
        (scheduled,) = runtime.sources
        async with asyncio.timeout(settle_within):
            while not scheduled.poller.settled:  # noqa: ASYNC110 - no event says it
                await asyncio.sleep(0.05)
        yield runtime, ingest.addresses[0][1]
    finally:
        stop.set()
        await asyncio.wait_for(service, timeout=30)
        if ingest is not None:
            await ingest.cleanup()
        await runtime.close()
