"""One model per provider account, told apart by ``provider`` (docs/design.md §5).

Every source may point ``base_url`` at a simulator and override the poll settings of
``defaults``; ``requests_per_minute`` overrides the provider's request budget.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, SecretStr, model_validator

from notifier.config.fields import BaseUrl, ConfigProblems, Model, Slug, plain_http_problems
from notifier.durations import Duration, PositiveDuration

InitialSync = Literal["baseline", "emit_existing"]


# Providers that send webhooks (Nuweb, Ticket Tailor); Shotgun and Eventpop document none.
PUSH_PROVIDERS: tuple[str, ...] = ("nuweb", "tickettailor")


class Push(Model):
    """The provider's webhooks, used as triggers: a verified delivery polls the source at once."""

    secret: SecretStr
    """The signing secret the provider's dashboard shows for the webhook, e.g.
    ${NUWEB_WEBHOOK_SECRET}."""


class SourceBase(Model):
    """Settings every provider shares."""

    id: Slug
    """Unique id across the file: it names the source's state, cursors and event sources."""
    poll_interval: PositiveDuration | None = None
    """Overrides defaults.poll_interval for this source."""
    live_poll_interval: PositiveDuration | None = None
    """Overrides defaults.live_poll_interval for this source."""
    lookback: Duration | None = None
    """Overrides defaults.lookback for this source."""
    initial_sync: InitialSync | None = None
    """Overrides defaults.initial_sync for this source."""
    requests_per_minute: PositiveFloat | None = None
    """Request budget of the provider account; unset: the provider's own (Shotgun 100,
    Eventpop 60, Nuweb 60, Ticket Tailor 166.7). Sources of one account share it."""
    inventory_settle: Duration | None = None
    """How long an inventory count must hold before sold_changed / sold_out /
    back_in_stock report it; unset: the provider's own (Ticket Tailor 10m, Nuweb 60s,
    others 0)."""
    push: Push | None = None
    """Nuweb and Ticket Tailor only: their webhooks, verified with this secret, make the
    source poll at once (polling stays the truth). Register
    https://<ingress>/ingest/<source id> in the provider's dashboard (docs/providers.md)."""

    allow_insecure_http: bool = False
    """Accept a plain http:// base_url (a local simulator, tests); https:// is required
    otherwise, since the token travels with every request."""

    @model_validator(mode="after")
    def _https_unless_allowed(self) -> SourceBase:
        url = str(getattr(self, "base_url", ""))
        problems = plain_http_problems(url, "base_url", allowed=self.allow_insecure_http)
        if problems:
            raise ConfigProblems(problems)
        return self

    @model_validator(mode="after")
    def _push_only_where_webhooks_exist(self) -> SourceBase:
        provider = getattr(self, "provider", "")
        if self.push is not None and provider not in PUSH_PROVIDERS:
            raise ConfigProblems(
                [
                    (
                        "push",
                        f"{provider} sends no webhooks — remove push; only "
                        f"{' and '.join(PUSH_PROVIDERS)} can push",
                    )
                ]
            )
        return self


class ShotgunSource(SourceBase):
    """A Shotgun organizer account (organizer token, Bearer header)."""

    provider: Literal["shotgun"]
    """Selects a Shotgun source."""
    organizer_id: int
    """Shotgun organizer id."""
    token: SecretStr
    """Organizer API token, e.g. ${SHOTGUN_TOKEN}."""
    # Empty: one unfiltered stream of every event of the organizer (docs/design.md §6a).
    event_ids: tuple[int, ...] = ()
    """Shotgun event ids to watch; empty: every event of the organizer."""
    include_cohosted_events: bool = False
    """Also watch events the organizer co-hosts."""
    base_url: BaseUrl = "https://api.shotgun.live"
    """API root; point it at `notifier simulate shotgun` to try without an account."""


class TicketTailorSource(SourceBase):
    """A Ticket Tailor box office (API key as the Basic-auth user)."""

    provider: Literal["tickettailor"]
    """Selects a Ticket Tailor source."""
    api_key: SecretStr
    """Box office API key, e.g. ${TICKETTAILOR_API_KEY}."""
    # None: every event of the box office.
    event_ids: tuple[str, ...] | None = None
    """Ticket Tailor event ids (ev_...) to watch; unset: every event of the box office."""
    base_url: BaseUrl = "https://api.tickettailor.com"
    """API root; point it at `notifier simulate tickettailor` to try without an account."""


class EventpopSource(SourceBase):
    """An Eventpop organizer (OAuth2 bearer token, refreshed when a refresh grant is set)."""

    provider: Literal["eventpop"]
    """Selects an Eventpop source."""
    organizer_id: int
    """Eventpop organizer id."""
    event_ids: tuple[int, ...] = ()
    """Eventpop event ids to watch; empty: every current and upcoming event of the organizer,
    from its events list (needs client_id, client_secret and refresh_token of an application
    the organizer owns)."""
    access_token: SecretStr
    """OAuth2 access token, e.g. ${EVENTPOP_ACCESS_TOKEN}."""
    client_id: SecretStr | None = None
    """OAuth2 client id of the refresh grant; set all three of client_id, client_secret and
    refresh_token, or none."""
    client_secret: SecretStr | None = None
    """OAuth2 client secret of the refresh grant."""
    refresh_token: SecretStr | None = None
    """OAuth2 refresh token: renews access_token when it expires."""
    base_url: BaseUrl = "https://www.eventpop.me/api/public"
    """API root; point it at `notifier simulate eventpop` to try without an account."""

    @model_validator(mode="after")
    def _refresh_grant_is_complete(self) -> EventpopSource:
        # The refresh-token grant needs all three; a partial set would fail two hours in,
        # when the access token expires, instead of at start-up.
        grant = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        missing = [name for name, value in grant.items() if value is None]
        if not self.event_ids and missing:
            # Without event_ids the source lists the organizer's events, which takes an
            # application token (client credentials); the user token expires in 2 h.
            raise ConfigProblems(
                [
                    (
                        "event_ids",
                        "list the events to read, or set client_id, client_secret and "
                        "refresh_token (an application the organizer owns) to follow every "
                        "current and upcoming event",
                    )
                ]
            )
        if 0 < len(missing) < len(grant):
            raise ConfigProblems(
                [
                    (
                        name,
                        "required with the other refresh settings — set all of client_id, "
                        "client_secret and refresh_token, or none",
                    )
                    for name in missing
                ]
            )
        return self


class NuwebSource(SourceBase):
    """A Nuweb company (Bearer token plus the X-NU-COMPANY-ID header)."""

    provider: Literal["nuweb"]
    """Selects a Nuweb source."""
    token: SecretStr
    """Admin API bearer token, e.g. ${NUWEB_TOKEN}."""
    company_id: int
    """Nuweb company id, sent as the X-NU-COMPANY-ID header."""
    event_ids: tuple[int, ...] = ()
    """Nuweb event ids to watch; empty (the default) follows every current and upcoming
    event of the company (GET /v1/events)."""
    base_url: BaseUrl = "https://api.nuwebgroup.com"
    """API root; point it at `notifier simulate nuweb` to try without an account."""


Source = Annotated[
    ShotgunSource | TicketTailorSource | EventpopSource | NuwebSource,
    Field(discriminator="provider"),
]
PROVIDERS: tuple[str, ...] = ("shotgun", "tickettailor", "eventpop", "nuweb")
