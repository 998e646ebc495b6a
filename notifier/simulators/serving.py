"""Serving a simulator app on loopback, shared by every provider simulator."""

from __future__ import annotations

from aiohttp import web


async def start_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``app``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
