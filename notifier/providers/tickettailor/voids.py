"""What a voided Ticket Tailor ticket means: a refund, a cancellation or a plain void.

A refund voids the tickets it covers and puts ``refund_amount`` on the order; a cancelled
order without refund cancels them; anything else is a void. So a newly voided ticket's
order is read once, and the meaning is kept in the cursor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from notifier.errors import FatalProviderError
from notifier.model import TicketRecord, TicketStatus
from notifier.providers.http import FetchResult
from notifier.providers.tickettailor import parse as p
from notifier.providers.tickettailor.cursor import CursorState
from notifier.providers.tickettailor.step import Step

Get = Callable[[Step, str, Mapping[str, str]], Awaitable[FetchResult]]


async def with_void_meaning(
    get: Get, step: Step, state: CursorState, record: TicketRecord
) -> TicketRecord:
    """A voided ticket as its order makes it, the order read once per void.

    Assumption: a refund is on the order by the time its voided ticket is read (a
    refund voids the tickets it covers); a void's meaning is not read again.
    """
    if record.status in (TicketStatus.REFUNDED, TicketStatus.CANCELED):
        return record  # already given its meaning (a record kept from an earlier read)
    if record.status is not TicketStatus.VOID:
        state.voids.get(record.event_id, {}).pop(record.ticket_id, None)
        return record
    known = state.voids.setdefault(record.event_id, {}).get(record.ticket_id)
    if known is None:
        if record.order_id not in step.orders:
            step.orders[record.order_id] = await read_order(get, step, record.order_id)
        order = step.orders[record.order_id]
        known = p.void_status(order).value
        state.voids[record.event_id][record.ticket_id] = known
    return p.with_void_status(record, TicketStatus(known))


async def read_order(get: Get, step: Step, order_id: str | None) -> p.OrderState | None:
    if order_id is None:
        return None
    try:
        result = await get(step, "/v1/orders/" + order_id, {})
    except FatalProviderError as exc:
        if exc.status != 404:
            raise
        return None  # the order is gone: the void is all that is known
    return p.parse_order(result.payload)
