"""Builds the adapter of a configured source: the one place that knows every provider."""

from __future__ import annotations

from datetime import timedelta

from notifier.config.sources import Source
from notifier.errors import ConfigError
from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient, RequestBudget
from notifier.providers.shotgun import ShotgunProvider

# Request budgets per provider account (DESIGN §5); "undocumented" ones are our guesses.
BUDGET_PER_MINUTE: dict[str, float] = {
    "shotgun": 100.0,
    "eventpop": 60.0,
    "nuweb": 60.0,
    "tickettailor": 5000.0 / 30.0,
}


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
            return f"tickettailor:{source.base_url}:{source.id}"


def account_client(source: Source) -> ProviderHttpClient:
    """The HTTP client of a source's account: its request budget and connection pool."""
    per_minute = source.requests_per_minute or BUDGET_PER_MINUTE[source.provider]
    return ProviderHttpClient(source.base_url, budget=RequestBudget(per_minute, 60.0))


def build_provider(
    source: Source, *, lookback: timedelta | None, http: ProviderHttpClient
) -> Provider:
    """The adapter for one configured source, on its account's shared HTTP client."""
    if source.provider == "shotgun":
        return ShotgunProvider(
            source.id,
            source.organizer_id,
            source.token.get_secret_value(),
            base_url=source.base_url,
            event_ids=source.event_ids,
            include_cohosted_events=source.include_cohosted_events,
            lookback=lookback if lookback is not None else timedelta(0),
            http=http,
        )
    raise ConfigError(
        f"source {source.id}: provider {source.provider!r} is not available in this build"
    )
