"""Webhooks between replicas on shared PostgreSQL state: the holder of a source's lease is
woken wherever the provider's delivery landed (a real server, tests/pg.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from notifier.providers.base import ReadHint
from notifier.push.relay import WakeRelay
from notifier.push.triggers import Trigger


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - a NOTIFY arrives on its own
            await asyncio.sleep(0.02)


async def test_a_delivery_for_a_source_held_elsewhere_wakes_its_holder(postgres_url: str) -> None:
    here, there = {"s1": Trigger(), "s2": Trigger()}, {"s1": Trigger(), "s2": Trigger()}
    receiving = WakeRelay(postgres_url, here, held=lambda: {"s2"})
    holding = WakeRelay(postgres_url, there, held=lambda: {"s1"})
    await receiving.start()
    await holding.start()
    try:
        receiving.trigger_for("s1").fire([ReadHint("issued_ticket", "it_1")])
        await _until(lambda: there["s1"].pending)
        assert not here["s1"].pending  # nobody polls s1 here: the trigger would go unheard
        assert there["s1"].take() == (ReadHint("issued_ticket", "it_1"),)
        receiving.trigger_for("s2").fire()  # held here: fired locally, nothing relayed
        assert here["s2"].pending
        assert receiving.relayed == 1
        assert holding.received == 1
        assert not there["s2"].pending
    finally:
        await receiving.close()
        await holding.close()


async def test_a_notification_no_replica_holds_is_dropped(postgres_url: str) -> None:
    """A lease in handover: nobody fires; the new owner's first poll reads the change."""
    triggers = {"s1": Trigger()}
    sender = WakeRelay(postgres_url, {"s1": Trigger()}, held=lambda: set())
    listener = WakeRelay(postgres_url, triggers, held=lambda: set())
    await sender.start()
    await listener.start()
    try:
        sender.trigger_for("s1").fire()
        await _until(lambda: sender.relayed == 1)
        await asyncio.sleep(0.3)
        assert not triggers["s1"].pending
        assert listener.received == 0
    finally:
        await sender.close()
        await listener.close()
