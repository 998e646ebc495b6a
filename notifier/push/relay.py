"""Webhooks reaching the wrong replica: relayed to the one holding the source's lease.

On shared PostgreSQL state (docs/design.md §10) the Ingress may hand a provider's webhook to
any replica, but only the replica holding the source's lease runs its poll loop. A delivery
for a source held here fires the local trigger; any other is published on PostgreSQL's
``NOTIFY`` channel, which every replica listens on, and the holder fires its own trigger.
What travels is the source id and the read hints (ids only); the verification happened at
the replica that received the delivery. A notification that finds no holder (a lease in
handover) is dropped: polling, which the new owner starts at once, stays the truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

import asyncpg
import orjson
import structlog

from notifier.providers.base import ReadHint
from notifier.push.triggers import Trigger

log = structlog.get_logger(__name__)

CHANNEL: Final = "notifier_wake"
# PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more: hints past this many are
# dropped from the relayed message (the holder's ordinary reads find what they named).
MAX_RELAYED_HINTS: Final = 100


class WakeRelay:
    """Fires held sources' triggers here and relays the others through ``NOTIFY``."""

    def __init__(
        self,
        dsn: str,
        triggers: Mapping[str, Trigger],
        *,
        held: Callable[[], Collection[str]],
    ) -> None:
        self._dsn = dsn
        self._triggers = triggers
        self._held = held
        self._conn: Any = None
        self._sending: set[asyncio.Task[None]] = set()
        self.relayed = 0  # deliveries sent on to another replica
        self.received = 0  # notifications that fired a trigger here

    async def start(self) -> None:
        # Its own connection: LISTEN holds it for the replica's life.
        self._conn = await asyncpg.connect(self._dsn)
        await self._conn.add_listener(CHANNEL, self._on_notification)

    async def close(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    def hints_dropped(self, source: str) -> int:
        trigger = self._triggers.get(source)
        return trigger.hints_dropped if trigger is not None else 0

    def trigger_for(self, source: str) -> _RelayedTrigger:
        """What the ingest route of ``source`` fires."""
        return _RelayedTrigger(self, source)

    def fire(self, source: str, hints: Iterable[ReadHint]) -> None:
        if source in self._held():
            self._triggers[source].fire(hints)
            return
        payload = orjson.dumps(
            {"source": source, "hints": [[h.kind, h.object_id] for h in hints][:MAX_RELAYED_HINTS]}
        ).decode()
        task = asyncio.get_running_loop().create_task(self._notify(payload))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _notify(self, payload: str) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            self.relayed += 1
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # The provider already has its 2xx; the next scheduled poll catches the change.
            log.warning("push_relay_failed", error=type(exc).__name__)

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            source = str(message["source"])
            hints = [ReadHint(str(kind), str(object_id)) for kind, object_id in message["hints"]]
        except (ValueError, KeyError, TypeError):
            return  # not ours to read
        if source in self._triggers and source in self._held():
            self.received += 1
            self._triggers[source].fire(hints)


class _RelayedTrigger:
    """The ``fire`` of one source's ingest route, through the relay."""

    def __init__(self, relay: WakeRelay, source: str) -> None:
        self._relay = relay
        self._source = source

    def fire(self, hints: Iterable[ReadHint] = ()) -> None:
        self._relay.fire(self._source, hints)

    @property
    def hints_dropped(self) -> int:
        return self._relay.hints_dropped(self._source)
