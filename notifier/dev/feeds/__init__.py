"""The four providers of ``notifier demo``: each a seeded simulator, its source config, and
the door traffic a driver plays on it (scans, undos, voids, refunds, transfers, sell-outs)."""

from __future__ import annotations

from collections.abc import Callable

from notifier.dev.feeds.base import Action, Feed
from notifier.dev.feeds.eventpop import EventpopFeed
from notifier.dev.feeds.nuweb import NuwebFeed
from notifier.dev.feeds.shotgun import ShotgunFeed
from notifier.dev.feeds.tickettailor import TicketTailorFeed

__all__ = [
    "FEEDS",
    "Action",
    "EventpopFeed",
    "Feed",
    "NuwebFeed",
    "ShotgunFeed",
    "TicketTailorFeed",
    "all_feeds",
    "feed_for",
]

FEEDS: dict[str, Callable[[int, str | None], Feed]] = {
    "shotgun": ShotgunFeed,
    "eventpop": EventpopFeed,
    "nuweb": NuwebFeed,
    "tickettailor": TicketTailorFeed,
}


def feed_for(provider: str, tickets: int, token: str | None = None) -> Feed:
    """One provider's feed, holding ``token`` (a new one if None): ``notifier simulate``."""
    return FEEDS[provider](tickets, token)


def all_feeds(tickets: int) -> list[Feed]:
    return [feed_for(provider, tickets) for provider in FEEDS]
