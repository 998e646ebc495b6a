"""Typed change events (docs/design.md §4): the payloads consumers depend on.

Each event type is a frozen model with a ``type`` literal, so a consumer (or
``notifier schema``) can validate any payload against the discriminated union
``ChangeEvent``. ``before``/``after`` carry only the tracked fields; everything else
about the ticket rides along once at the top level.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HolderPayload(_Frozen):
    """Holder fields, subject to the organizer's PII policy."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class TicketTypePayload(_Frozen):
    """The product the ticket was sold as; prices in minor units."""

    id: str
    name: str | None = None
    price_minor: int | None = None
    currency: str | None = None


class TicketTypeRef(_Frozen):
    """Which ticket type a ticket is of, as its ``before``/``after`` name it."""

    id: str
    name: str | None = None


class TicketSnapshot(_Frozen):
    """The tracked fields of a ticket at one moment."""

    status: str
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    holder: HolderPayload
    ticket_type: TicketTypeRef | None = Field(
        default=None, description="Null only in payloads written before it was tracked."
    )


class InventorySnapshot(_Frozen):
    """The tracked inventory fields of a ticket type at one moment."""

    name: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    total_stock: int | None = None
    sold: int | None = None
    reserved: int | None = None
    current_stock: int | None = None
    on_sale: bool | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    deleted_at: datetime | None = None


class _EventBase(_Frozen):
    provider: str
    organizer: str
    source: str
    event_id: str
    occurred_at: datetime | None = Field(
        description="The provider's own time of the change, null when it gives none."
    )
    detected_at: datetime
    sequence: int = Field(ge=1, description="Per ticket (or ticket type), strictly increasing.")
    schema_version: int = SCHEMA_VERSION


class _TicketEvent(_EventBase):
    ticket_id: str
    order_id: str | None = None
    ticket_type: TicketTypePayload
    holder: HolderPayload | None = None
    before: TicketSnapshot | None = None
    after: TicketSnapshot
    details: dict[str, Any] = Field(
        default_factory=dict, description="Provider fields worth keeping (e.g. revoke_note)."
    )


class TicketIssued(_TicketEvent):
    """A ticket appeared that was not in the state (after the baseline)."""

    type: Literal["ticket.issued"] = "ticket.issued"


class TicketCheckedIn(_TicketEvent):
    """``checked_in_at`` went from null (or an earlier scan) to a scan time."""

    type: Literal["ticket.checked_in"] = "ticket.checked_in"


class TicketCheckInReverted(_TicketEvent):
    """``checked_in_at`` went back to null: the scan was undone."""

    type: Literal["ticket.check_in_reverted"] = "ticket.check_in_reverted"


class TicketCheckedOut(_TicketEvent):
    """A zone exit scan was recorded."""

    type: Literal["ticket.checked_out"] = "ticket.checked_out"


class TicketVoided(_TicketEvent):
    """Status became ``void``."""

    type: Literal["ticket.voided"] = "ticket.voided"


class TicketRefunded(_TicketEvent):
    """Status became ``refunded``."""

    type: Literal["ticket.refunded"] = "ticket.refunded"


class TicketCanceled(_TicketEvent):
    """Status became ``canceled``."""

    type: Literal["ticket.canceled"] = "ticket.canceled"


class TicketResold(_TicketEvent):
    """Status became ``resold``: another ticket replaces this one."""

    type: Literal["ticket.resold"] = "ticket.resold"


class TicketReinstated(_TicketEvent):
    """Status returned to ``valid`` from void, refunded or canceled."""

    type: Literal["ticket.reinstated"] = "ticket.reinstated"


class TicketStatusChanged(_TicketEvent):
    """Any other status transition (pending -> valid, pending -> rejected, ...)."""

    type: Literal["ticket.status_changed"] = "ticket.status_changed"


class TicketHolderChanged(_TicketEvent):
    """Holder name, email or phone changed: a transfer."""

    type: Literal["ticket.holder_changed"] = "ticket.holder_changed"


class TicketTypeChanged(_TicketEvent):
    """The ticket's type changed (an upgrade, a swap): ``before.ticket_type`` and
    ``after.ticket_type`` name the old and the new type."""

    type: Literal["ticket.type_changed"] = "ticket.type_changed"


class _TicketTypeEvent(_EventBase):
    ticket_type_id: str
    before: InventorySnapshot | None = None
    after: InventorySnapshot


class TicketTypeSoldChanged(_TicketTypeEvent):
    """Sold or reserved count changed."""

    type: Literal["ticket_type.sold_changed"] = "ticket_type.sold_changed"


class TicketTypeSoldOut(_TicketTypeEvent):
    """Current stock reached 0."""

    type: Literal["ticket_type.sold_out"] = "ticket_type.sold_out"


class TicketTypeBackInStock(_TicketTypeEvent):
    """Current stock left 0."""

    type: Literal["ticket_type.back_in_stock"] = "ticket_type.back_in_stock"


class TicketTypeSaleStateChanged(_TicketTypeEvent):
    """On-sale flag or sale window changed."""

    type: Literal["ticket_type.sale_state_changed"] = "ticket_type.sale_state_changed"


class TicketTypePriceChanged(_TicketTypeEvent):
    """Price changed."""

    type: Literal["ticket_type.price_changed"] = "ticket_type.price_changed"


class TicketTypeRemoved(_TicketTypeEvent):
    """``deleted_at`` was set."""

    type: Literal["ticket_type.removed"] = "ticket_type.removed"


TicketEvent = (
    TicketIssued
    | TicketCheckedIn
    | TicketCheckInReverted
    | TicketCheckedOut
    | TicketVoided
    | TicketRefunded
    | TicketCanceled
    | TicketResold
    | TicketReinstated
    | TicketStatusChanged
    | TicketHolderChanged
    | TicketTypeChanged
)
TicketTypeEvent = (
    TicketTypeSoldChanged
    | TicketTypeSoldOut
    | TicketTypeBackInStock
    | TicketTypeSaleStateChanged
    | TicketTypePriceChanged
    | TicketTypeRemoved
)
ChangeEvent = Annotated[TicketEvent | TicketTypeEvent, Field(discriminator="type")]
CHANGE_EVENT_ADAPTER: TypeAdapter[ChangeEvent] = TypeAdapter(ChangeEvent)

EVENT_MODELS: tuple[type[_EventBase], ...] = (
    TicketIssued,
    TicketCheckedIn,
    TicketCheckInReverted,
    TicketCheckedOut,
    TicketVoided,
    TicketRefunded,
    TicketCanceled,
    TicketResold,
    TicketReinstated,
    TicketStatusChanged,
    TicketHolderChanged,
    TicketTypeChanged,
    TicketTypeSoldChanged,
    TicketTypeSoldOut,
    TicketTypeBackInStock,
    TicketTypeSaleStateChanged,
    TicketTypePriceChanged,
    TicketTypeRemoved,
)
EVENT_TYPES: tuple[str, ...] = tuple(
    str(model.model_fields["type"].default) for model in EVENT_MODELS
)


def subject_of(event: TicketEvent | TicketTypeEvent) -> str:
    """The id the event is about: ticket id or ticket type id (CloudEvents ``subject``)."""
    if isinstance(event, _TicketEvent):
        return event.ticket_id
    return event.ticket_type_id
