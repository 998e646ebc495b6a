"""The webhooks the Ticket Tailor simulator sends, as a box office subscribed to them would.

Event types (Ticket Tailor webhook configuration,
https://developers.tickettailor.com/docs/webhook/configuration): ``ISSUED_TICKET.CREATED``;
``ISSUED_TICKET.UPDATED``, which "includes voiding"; ``ORDER.UPDATED``, which "includes
cancelling". No event is documented for a check-in or a refund: a refund arrives as
``ORDER.UPDATED`` plus ``ISSUED_TICKET.UPDATED`` for each ticket it voids (field notes,
docs/providers.md). The payload is the object as the REST API spells it; the envelope
``{id, created_at, event, resource_url, payload}`` is as reported by a third-party
integration (docs/providers.md), and signing as documented
(https://developers.tickettailor.com/docs/webhook/security): both are ``WebhookSender``'s.

# Assumption: a check-in (and its undo) sends nothing; whether ISSUED_TICKET.UPDATED
# fires on a check-in is unconfirmed, and the safer reading for a receiver is that it does
# not. A transfer edits the issued ticket, so it sends ISSUED_TICKET.UPDATED.
# Assumption: a void alone sends only ISSUED_TICKET.UPDATED, though it adds a line item to
# its order (whether ORDER.UPDATED fires then is unconfirmed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from notifier.dev.simulators.tickettailor.state import TicketTailorSimulator

TICKET_CREATED: Final = "ISSUED_TICKET.CREATED"
TICKET_UPDATED: Final = "ISSUED_TICKET.UPDATED"
ORDER_UPDATED: Final = "ORDER.UPDATED"


def ticket_webhook(sim: TicketTailorSimulator, event: str, ticket_id: str) -> None:
    """Send ``event`` for the issued ticket as it reads now, if ``sim`` sends webhooks."""
    if sim.webhooks is not None:
        sim.webhooks.send(event, dict(sim.tickets[ticket_id]))


def order_webhook(sim: TicketTailorSimulator, order_id: str) -> None:
    """Send ``ORDER.UPDATED`` with the order as ``GET /v1/orders/{id}`` reads now."""
    if sim.webhooks is not None:
        sim.webhooks.send(ORDER_UPDATED, sim.order_view(sim.orders[order_id]))
