"""Builds the adapter of a configured source: the one place that knows every provider.

Sources of one provider account share an ``Account``: its HTTP client (request budget and
connection pool) and any provider-specific pacing state, so together they stay under the
account's limits.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from notifier.config.sources import (
    EventpopSource,
    NuwebSource,
    ShotgunSource,
    Source,
    TicketTailorSource,
)
from notifier.errors import ConfigError
from notifier.observability import BUDGET_WAIT, PROVIDER_REQUESTS
from notifier.providers import eventpop, nuweb, tickettailor
from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient, RequestBudget, RetryPolicy
from notifier.providers.shotgun import ShotgunProvider
from notifier.push.pacing import WakePacer

# Request budgets per provider account (docs/design.md §5); "undocumented" ones are our guesses.
BUDGET_PER_MINUTE: dict[str, float] = {
    "shotgun": 100.0,
    "eventpop": 60.0,
    "nuweb": 60.0,
    "tickettailor": 5000.0 / 30.0,
}
RETRY_POLICIES: dict[str, RetryPolicy] = {"nuweb": nuweb.RETRY_POLICY}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Account:
    """What the sources of one provider account share."""

    http: ProviderHttpClient
    nuweb_pacer: nuweb.RatePacer | None = None
    # Eventpop's OAuth sessions, one per grant across every account of the runtime, and
    # the store their rotating tokens are kept in.
    eventpop_grants: eventpop.GrantBook | None = None
    # Ticket Tailor: the budget the sources of one API key split between their sweeps.
    tickettailor_share: tickettailor.RequestShare | None = None
    # How often webhooks may wake the account's sources (a share of its budget).
    wakes: WakePacer = field(default_factory=lambda: WakePacer(gap=0.0))

    async def close(self) -> None:
        await self.http.close()


def account_key(source: Source) -> str:
    """Sources that share this key share one provider account, hence one request budget."""
    match source.provider:
        case "shotgun":
            return f"shotgun:{source.base_url}:{source.organizer_id}"
        case "nuweb":
            return f"nuweb:{source.base_url}:{source.company_id}"
        case "eventpop":
            return f"eventpop:{source.base_url}:{source.organizer_id}"
        case "tickettailor":
            # One API key is one box office and one rate-limit window: sources sharing a
            # key share the budget. The key itself never appears, only a digest of it.
            key = source.api_key.get_secret_value().encode()
            return f"tickettailor:{source.base_url}:{hashlib.sha256(key).hexdigest()[:16]}"


def open_account(source: Source, *, grants: eventpop.GrantBook | None = None) -> Account:
    """The shared client (and pacing) of a source's account; ``grants``: Eventpop's sessions."""
    per_minute = source.requests_per_minute or BUDGET_PER_MINUTE[source.provider]
    http = ProviderHttpClient(
        source.base_url,
        budget=RequestBudget(per_minute, 60.0),
        policy=RETRY_POLICIES.get(source.provider),
        on_budget_wait=BUDGET_WAIT.labels(source.provider).inc,
        on_response=lambda status: PROVIDER_REQUESTS.labels(source.provider, status).inc(),
    )
    pacer = (
        nuweb.RatePacer(clock=_utc_now, sleep=asyncio.sleep) if source.provider == "nuweb" else None
    )
    share = tickettailor.RequestShare(per_minute) if source.provider == "tickettailor" else None
    return Account(
        http=http,
        nuweb_pacer=pacer,
        eventpop_grants=grants,
        tickettailor_share=share,
        wakes=WakePacer.for_budget(per_minute),
    )


def build_provider(source: Source, *, lookback: timedelta | None, account: Account) -> Provider:
    """The adapter for one configured source, on its account's shared client."""
    builder = _BUILDERS.get(source.provider)
    if builder is None:
        raise ConfigError(
            f"source {source.id}: provider {source.provider!r} is not available in this build"
        )
    return builder(source, lookback, account)


def _shotgun(source: Source, lookback: timedelta | None, account: Account) -> Provider:
    assert isinstance(source, ShotgunSource)
    return ShotgunProvider(
        source.id,
        source.organizer_id,
        source.token.get_secret_value(),
        base_url=source.base_url,
        event_ids=source.event_ids,
        include_cohosted_events=source.include_cohosted_events,
        lookback=lookback if lookback is not None else timedelta(0),
        http=account.http,
    )


def _nuweb(source: Source, lookback: timedelta | None, account: Account) -> Provider:
    assert isinstance(source, NuwebSource)
    return nuweb.NuwebProvider(
        source.id,
        source.token.get_secret_value(),
        source.company_id,
        event_ids=source.event_ids,
        base_url=source.base_url,
        lookback=lookback if lookback is not None else timedelta(minutes=2),
        http=account.http,
        pacer=account.nuweb_pacer,
    )


def _eventpop(source: Source, lookback: timedelta | None, account: Account) -> Provider:
    assert isinstance(source, EventpopSource)
    return eventpop.EventpopProvider(
        source.id,
        source.organizer_id,
        source.access_token.get_secret_value(),
        event_ids=source.event_ids,
        base_url=source.base_url,
        client_id=_reveal(source.client_id),
        client_secret=_reveal(source.client_secret),
        refresh_token=_reveal(source.refresh_token),
        lookback=lookback if lookback is not None else timedelta(minutes=2),
        http=account.http,
        grants=account.eventpop_grants,
    )


def _tickettailor(source: Source, lookback: timedelta | None, account: Account) -> Provider:
    assert isinstance(source, TicketTailorSource)
    return tickettailor.TicketTailorProvider(
        source.id,
        source.api_key.get_secret_value(),
        event_ids=source.event_ids,
        base_url=source.base_url,
        http=account.http,
        share=account.tickettailor_share,
    )


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


_BUILDERS: dict[str, Callable[[Source, timedelta | None, Account], Provider]] = {
    "eventpop": _eventpop,
    "nuweb": _nuweb,
    "shotgun": _shotgun,
    "tickettailor": _tickettailor,
}
