"""Ticket Tailor sources of one API key are one account: one budget, split between them."""

from __future__ import annotations

from datetime import timedelta

from pydantic import TypeAdapter

from notifier.config.sources import Source
from notifier.providers.tickettailor import RequestShare
from notifier.wiring.registry import account_key, build_provider, open_account

SOURCES: TypeAdapter[Source] = TypeAdapter(Source)


def source(source_id: str, api_key: str) -> Source:
    return SOURCES.validate_python(
        {"id": source_id, "provider": "tickettailor", "api_key": api_key}
    )


async def test_sources_of_one_key_share_an_account_and_its_sweep_budget() -> None:
    """Same key, same account (the key itself never in the account's name); each source
    joins the share, so two of them sweep at half the rate one would."""
    first, second = source("a", "sk_live_one"), source("b", "sk_live_one")
    other = source("c", "sk_live_two")
    assert account_key(first) == account_key(second) != account_key(other)
    assert "sk_live_one" not in account_key(first)
    account = open_account(first)
    try:
        assert isinstance(account.tickettailor_share, RequestShare)
        alone = account.tickettailor_share.sweep_rate()
        build_provider(first, lookback=None, account=account)
        build_provider(second, lookback=timedelta(0), account=account)
        assert account.tickettailor_share.sweep_rate() == alone / 2
    finally:
        await account.close()
