"""One model per provider account, told apart by ``provider`` (docs/design.md §5).

Every source may point ``base_url`` at a simulator and override the poll settings of
``defaults``; ``requests_per_minute`` overrides the provider's request budget.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, SecretStr, model_validator

from notifier.config.fields import BaseUrl, ConfigProblems, Model, Slug
from notifier.durations import Duration, PositiveDuration

InitialSync = Literal["baseline", "emit_existing"]


class SourceBase(Model):
    """Settings every provider shares."""

    id: Slug
    poll_interval: PositiveDuration | None = None
    live_poll_interval: PositiveDuration | None = None
    lookback: Duration | None = None
    initial_sync: InitialSync | None = None
    requests_per_minute: PositiveFloat | None = None
    # How long an inventory count must hold before sold_out / back_in_stock / sold_changed
    # report it; None: the provider's default (notifier.inventory_diff.DEFAULT_SETTLE).
    inventory_settle: Duration | None = None


class ShotgunSource(SourceBase):
    """A Shotgun organizer account (organizer token, Bearer header)."""

    provider: Literal["shotgun"]
    organizer_id: int
    token: SecretStr
    # Empty: one unfiltered stream of every event of the organizer (docs/design.md §6a).
    event_ids: tuple[int, ...] = ()
    include_cohosted_events: bool = False
    base_url: BaseUrl = "https://api.shotgun.live"


class TicketTailorSource(SourceBase):
    """A Ticket Tailor box office (API key as the Basic-auth user)."""

    provider: Literal["tickettailor"]
    api_key: SecretStr
    # None: every event of the box office.
    event_ids: tuple[str, ...] | None = None
    base_url: BaseUrl = "https://api.tickettailor.com"


class EventpopSource(SourceBase):
    """An Eventpop organizer (OAuth2 bearer token, refreshed when a refresh grant is set)."""

    provider: Literal["eventpop"]
    organizer_id: int
    event_ids: tuple[int, ...] = Field(min_length=1)
    access_token: SecretStr
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    base_url: BaseUrl = "https://www.eventpop.me/api/public"

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
    token: SecretStr
    company_id: int
    event_ids: tuple[int, ...] = Field(min_length=1)
    base_url: BaseUrl = "https://api.nuwebgroup.com"


Source = Annotated[
    ShotgunSource | TicketTailorSource | EventpopSource | NuwebSource,
    Field(discriminator="provider"),
]
PROVIDERS: tuple[str, ...] = ("shotgun", "tickettailor", "eventpop", "nuweb")
