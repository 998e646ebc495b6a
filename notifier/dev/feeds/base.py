"""What every provider feed of ``notifier demo`` shares: the ``Feed`` protocol, serving a
simulator on a free loopback port, demo tokens and random door actions."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

__all__ = ["Action", "Feed", "Served", "new_token", "pick", "ticket_action"]

Action = Callable[[random.Random], str]


class Feed(Protocol):
    """One provider account of the demo."""

    provider: str
    organizer: str
    token: str  # the credential the source config must carry (Ticket Tailor: its API key)
    base_url: str

    async def start(self, port: int = 0) -> None:
        """Serve the simulator on ``127.0.0.1:port`` (0: a free port); sets ``base_url``."""
        ...

    async def stop(self) -> None: ...

    def source(self) -> dict[str, Any]: ...

    def actions(self) -> list[tuple[float, Action]]: ...


class Served:
    """Serving an aiohttp simulator app on a free loopback port."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _serve(self, runner: web.AppRunner, path: str = "") -> None:
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}{path}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def new_token() -> str:
    return "demo." + secrets.token_urlsafe(16)


def pick(rng: random.Random, ids: list[Any], test: Callable[[Any], bool]) -> Any | None:
    for candidate in rng.sample(ids, min(40, len(ids))):
        if test(candidate):
            return candidate
    return None


def ticket_action(
    ids: list[Any], test: Callable[[Any], bool], do: Callable[[Any], object], what: str
) -> Action:
    """An action on a random ticket that passes ``test``; says what it did, or nothing."""

    def action(rng: random.Random) -> str:
        ticket = pick(rng, ids, test)
        if ticket is None:
            return ""
        do(ticket)
        return what.format(ticket=ticket)

    return action
