"""Each provider's simulator as the PII tests see it: which of its wire fields are personal or
bearer codes, and every value they hold.

The field lists are the tests' own reading of the providers' documents, independent of
``notifier.pii``: a personal field an adapter carries into events under a key the policy
does not cover shows up as a leak, whatever the policy's key set says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson

from tests.providers.harness import ProviderHarness
from tests.providers.harness_eventpop import EVENT as EVENTPOP_EVENT, EventpopHarness
from tests.providers.harness_nuweb import NuwebHarness
from tests.providers.harness_shotgun import ShotgunHarness
from tests.providers.harness_tickettailor import TicketTailorHarness

# Shorter values ("Doe", a seat "12") cannot be told from other data in a payload.
MIN_SECRET = 4


class PiiCase(Protocol):
    harness: ProviderHarness
    # Wire fields (at any depth) naming, reaching or identifying a person, or opening the door.
    personal_fields: frozenset[str]
    # The subset that is the code the door scans.
    code_fields: frozenset[str]

    def enrich(self) -> str:
        """Add a ticket with every personal field the simulator can fill; return its id."""

    def wires(self, ticket_ids: list[str]) -> list[Any]:
        """Everything the simulator serves about those tickets."""


class EventpopCase:
    # Eventpop API, PublicAPI_Entities_Ticket: holder fields and the printed reference code.
    personal_fields = frozenset(
        {"firstname", "lastname", "full_name", "email", "phone", "reference_code"}
    )
    code_fields = frozenset({"reference_code"})

    def __init__(self) -> None:
        self._harness = EventpopHarness()
        self.harness: ProviderHarness = self._harness

    def enrich(self) -> str:
        ticket = self._harness.sim.create_ticket(
            EVENTPOP_EVENT,
            firstname="Pimchanok",
            lastname="Wongsawat",
            email="pimchanok.w@example.co.th",
            phone="0812345678",
            user_id=7_654_321,
        )
        return str(ticket)

    def wires(self, ticket_ids: list[str]) -> list[Any]:
        return [self._harness.sim.ticket(int(ticket)) for ticket in ticket_ids]


class TicketTailorCase:
    # Ticket Tailor API reference, "Issued tickets" object.
    personal_fields = frozenset(
        {
            "first_name",
            "last_name",
            "full_name",
            "email",
            "phone",
            "barcode",
            "barcode_url",
            "qr_code_url",
        }
    )
    code_fields = frozenset({"barcode"})

    def __init__(self) -> None:
        self._harness = TicketTailorHarness()
        self.harness: ProviderHarness = self._harness

    def enrich(self) -> str:
        sim = self._harness.sim
        _, [ticket] = sim.create_order(
            self._harness._event_id,
            first_name="Imogen",
            last_name="Fairweather",
            email="imogen.fairweather@example.org",
            phone="07700900123",
        )
        return ticket

    def wires(self, ticket_ids: list[str]) -> list[Any]:
        return [self._harness.sim.tickets[ticket] for ticket in ticket_ids]


class NuwebCase:
    # Nuweb admin OpenAPI, GET /v1/entry/tickets (const, stable, variable) and
    # GET /v1/order-items (attributes).
    personal_fields = frozenset(
        {"customerName", "customerEmail", "namedHolder", "barcode", "customerId", "nfcId"}
    )
    code_fields = frozenset({"barcode"})

    def __init__(self) -> None:
        self._harness = NuwebHarness()
        self.harness: ProviderHarness = self._harness

    def enrich(self) -> str:
        sim = self._harness.sim
        return str(
            sim.sell(self._harness._ticket_type, "Oluwaseun Adebayo", "seun.adebayo@example.com")
        )

    def wires(self, ticket_ids: list[str]) -> list[Any]:
        sim = self._harness.sim
        return [
            [sim.entry_ticket(int(ticket)), sim.order_item(int(ticket))] for ticket in ticket_ids
        ]


class ShotgunCase:
    # Shotgun API, GET /tickets: the contact, the buyer's account and the scan code.
    personal_fields = frozenset(
        {
            "contact_first_name",
            "contact_last_name",
            "contact_email",
            "contact_phone",
            "contact_id",
            "user_id",
            "ticket_scan_code",
        }
    )
    code_fields = frozenset({"ticket_scan_code"})

    def __init__(self) -> None:
        self._harness = ShotgunHarness()
        self.harness: ProviderHarness = self._harness

    def enrich(self) -> str:
        ticket = self._harness.sim.create_ticket(
            self._harness._event_id,
            first_name="Ines",
            last_name="Garnier",
            email="ines.garnier@example.org",
            phone="+33612345678",
            user_id=31_415_926,
        )
        return str(ticket)

    def wires(self, ticket_ids: list[str]) -> list[Any]:
        return [self._harness.sim.ticket(int(ticket)) for ticket in ticket_ids]


CASES: dict[str, Callable[[], PiiCase]] = {
    "eventpop": EventpopCase,
    "nuweb": NuwebCase,
    "shotgun": ShotgunCase,
    "tickettailor": TicketTailorCase,
}


def personal_values(wires: list[Any], fields: frozenset[str]) -> set[str]:
    """Every value of those fields in the wire data, names also word by word (an adapter
    splits a full name into first and last)."""
    found: set[str] = set()
    for name, value in _fields(wires):
        if name not in fields or value is None:
            continue
        for scalar in _scalars(value):
            found.add(scalar)
            if "name" in name.lower():
                found.update(scalar.split())
    return {value for value in found if len(value) >= MIN_SECRET}


def leaks(document: object, secrets: set[str]) -> list[tuple[str, str]]:
    """(secret, value) for each value of the document that is or contains a secret."""
    found = []
    for value in _scalars(document):
        found += [(secret, value) for secret in secrets if _within(secret, value)]
    return found


def _within(secret: str, value: str) -> bool:
    # A short number (an id like 50001) is also a piece of many timestamps: equal only.
    embeddable = len(secret) >= 10 or (len(secret) >= 5 and not secret.isdigit())
    return secret == value or (embeddable and secret in value)


def table_texts(rows: list[tuple[Any, ...]]) -> list[str]:
    """Every cell of some SQLite rows as text: blobs decoded, JSON blobs walked."""
    texts: list[str] = []
    for row in rows:
        for cell in row:
            if isinstance(cell, bytes):
                try:
                    texts += list(_scalars(orjson.loads(cell)))
                except orjson.JSONDecodeError:
                    texts.append(cell.decode("utf-8", "replace"))
            elif cell is not None:
                texts.append(str(cell))
    return texts


def _fields(node: object) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for name, value in node.items():
            yield str(name), value
            yield from _fields(value)
    elif isinstance(node, list):
        for item in node:
            yield from _fields(item)


def _scalars(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _scalars(value)
    elif isinstance(node, list):
        for item in node:
            yield from _scalars(item)
    elif node is not None and not isinstance(node, bool):
        yield str(node)
