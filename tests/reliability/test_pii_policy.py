"""PII policy means what it says (docs/operations.md, "Privacy").

Per provider, on its simulator's real payloads read through its adapter and a real SQLite
store: under ``omit`` no holder name, email, phone, barcode, scan code, user or contact id
appears anywhere in an event or in the database; under ``hash`` they appear only as keyed
digests. A transfer is still detected under both. A change of policy or key on an existing
database never reports a transfer that did not happen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from notifier.model import SourceId
from notifier.pii import PiiPolicy, hash_value, protect_details
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.base import Provider
from notifier.store.sqlite import SqliteStore
from tests.reliability.pii_cases import (
    CASES,
    PiiCase,
    leaks,
    personal_values,
    table_texts,
)

KEY = b"pii-policy-test-key-0123456789ab"
OTHER_KEY = b"pii-policy-rotated-key-987654321"
SOURCE = SourceId("pii-src")
MAX_POLLS = 20


@pytest.fixture(params=sorted(CASES))
async def case(request: pytest.FixtureRequest) -> AsyncIterator[PiiCase]:
    """Each provider's simulator served on 127.0.0.1, with its personal fields named."""
    built = CASES[request.param]()
    await built.harness.start()
    yield built
    await built.harness.stop()


def _poller(
    store: SqliteStore, provider: Provider, policy: PiiPolicy, key: bytes, *, emit: bool
) -> SourcePoller:
    return SourcePoller(
        SourceSettings(
            organizer="acme",
            source=SOURCE,
            provider=provider.name,
            emit_existing=emit,
            pii=policy,
            pii_key=key,
        ),
        provider=provider,
        store=store,
        route=lambda _: ["kafka"],
        clock=lambda: datetime.now(UTC),
    )


async def _drain(poller: SourcePoller, *, full: bool = False) -> None:
    """Poll until the adapter has read to the end (bounded)."""
    for _ in range(MAX_POLLS):
        if not (await poller.poll_once(full=full)).more:
            return
    raise AssertionError(f"no end after {MAX_POLLS} polls")


async def _events(store: SqliteStore) -> list[dict[str, Any]]:
    return [orjson.loads(d.event.data) for d in await store.deliveries(sink="kafka")]


def _database_texts(path: Path) -> list[str]:
    """Every cell of every table, read with sqlite3 as anyone holding a copy would."""
    with closing(sqlite3.connect(path)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        texts: list[str] = []
        for table in tables:
            texts += table_texts(db.execute(f'SELECT * FROM "{table}"').fetchall())  # noqa: S608 -- names from sqlite_master
    return texts


def _file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


@pytest.mark.parametrize("policy", ["omit", "hash"])
async def test_no_personal_value_in_events_or_at_rest(
    case: PiiCase, policy: PiiPolicy, tmp_path: Path
) -> None:
    """Issue (every ticket), check-in and transfer events of the provider's real payloads,
    and the state file, hold no personal value; under hash only their keyed digests."""
    harness = case.harness
    rich = case.enrich()
    tickets = [*harness.ticket_ids(), rich]
    scanned, moved = rich, harness.ticket_ids()[0]
    path = tmp_path / "state.db"
    store = await SqliteStore(path).open()
    try:
        poller = _poller(store, harness.adapter(), policy, KEY, emit=True)
        await _drain(poller)
        secrets = personal_values(case.wires(tickets), case.personal_fields)
        codes = personal_values(case.wires([scanned]), case.code_fields)
        harness.apply("ticket.holder_changed", moved)
        harness.apply("ticket.checked_in", scanned)
        await _drain(poller)
        secrets |= personal_values(case.wires(tickets), case.personal_fields)
        events = await _events(store)
    finally:
        await store.close()

    assert {("ticket.holder_changed", moved), ("ticket.checked_in", scanned)} <= {
        (e["type"], e["ticket_id"]) for e in events
    }
    assert {e["ticket_id"] for e in events if e["type"] == "ticket.issued"} >= set(tickets)
    assert codes
    assert len(secrets) > len(tickets)
    assert leaks(events, secrets) == []
    assert leaks(_database_texts(path), secrets) == []
    raw = _file_bytes(path)
    assert [s for s in secrets if len(s) >= 5 and not s.isdigit() and s.encode() in raw] == []

    digests = {hash_value(secret, KEY) for secret in secrets}
    (check_in,) = [e for e in events if e["type"] == "ticket.checked_in"]
    if policy == "hash":
        # Details keep the door code, as a digest that only holders of the key can match.
        assert {hash_value(code, KEY) for code in codes} <= set(_strings(check_in["details"]))
        assert check_in["holder"] is not None
        assert set(_strings(check_in["holder"])) <= digests
    else:
        assert leaks(events, digests) == []
        assert check_in["holder"] is None
        assert all(e["after"]["holder"] == _EMPTY_HOLDER for e in events if "after" in e)


_EMPTY_HOLDER = {"first_name": None, "last_name": None, "email": None, "phone": None}


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _changes(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["type"], e["ticket_id"]) for e in events}


@pytest.mark.parametrize("policy", ["omit", "hash"])
async def test_leaving_include_reports_no_transfer_and_scrubs_the_state(
    case: PiiCase, policy: PiiPolicy, tmp_path: Path
) -> None:
    """A database written under include, then run under omit or hash: no event for the
    switch itself (a dry run neither), no holder left as read in any table, and the next
    real transfer and check-in are reported as before."""
    harness = case.harness
    tickets = harness.ticket_ids()
    moved, scanned = tickets[0], tickets[1]
    path = tmp_path / "state.db"
    store = await SqliteStore(path).open()
    try:
        await _drain(_poller(store, harness.adapter(), "include", b"", emit=False))
        secrets = personal_values(case.wires(tickets), case.personal_fields)
        holders = {
            s for s in secrets if s not in personal_values(case.wires(tickets), case.code_fields)
        }
        assert leaks(_database_texts(path), holders)  # include keeps them, as read

        dry = _poller(store, harness.adapter(), policy, KEY, emit=False)
        assert (await dry.poll_once(dry_run=True, full=True)).events == []
        switched = _poller(store, harness.adapter(), policy, KEY, emit=False)
        await _drain(switched)  # an incremental read: the switch itself rewrites the state
        assert leaks(_database_texts(path), holders) == []
        await _drain(switched, full=True)
        assert await _events(store) == []

        harness.apply("ticket.holder_changed", moved)
        harness.apply("ticket.checked_in", scanned)
        await _drain(switched)
        assert _changes(await _events(store)) == {
            ("ticket.holder_changed", moved),
            ("ticket.checked_in", scanned),
        }
    finally:
        await store.close()
    raw = _file_bytes(path)  # the rows rewritten as digests left nothing in free pages
    assert [s for s in holders if len(s) >= 5 and s.encode() in raw] == []


async def test_a_new_key_or_include_again_reports_no_transfer(
    case: PiiCase, tmp_path: Path
) -> None:
    """Digests made under one key cannot be compared with another's: a rotated key, and a
    return to include, forget the stored holders instead of reporting every ticket as
    transferred; a ticket read since (the next full sweep) has its transfers reported again."""
    harness = case.harness
    tickets = harness.ticket_ids()
    store = await SqliteStore(tmp_path / "state.db").open()
    try:
        await _drain(_poller(store, harness.adapter(), "hash", KEY, emit=False))
        secrets = personal_values(case.wires(tickets), case.personal_fields)
        old_digests = {hash_value(secret, KEY) for secret in secrets}
        assert leaks(_database_texts(tmp_path / "state.db"), old_digests)

        rotated = _poller(store, harness.adapter(), "hash", OTHER_KEY, emit=False)
        await _drain(rotated)
        assert leaks(_database_texts(tmp_path / "state.db"), old_digests) == []
        await _drain(rotated, full=True)
        assert await _events(store) == []
        harness.apply("ticket.holder_changed", tickets[0])
        await _drain(rotated)
        assert _changes(await _events(store)) == {("ticket.holder_changed", tickets[0])}

        included = _poller(store, harness.adapter(), "include", b"", emit=False)
        await _drain(included, full=True)
        assert len(await _events(store)) == 1
        harness.apply("ticket.holder_changed", tickets[1])
        await _drain(included)
        assert _changes(await _events(store)) == {
            ("ticket.holder_changed", tickets[0]),
            ("ticket.holder_changed", tickets[1]),
        }
    finally:
        await store.close()


def test_personal_details_are_found_at_any_depth() -> None:
    """Personal keys are found in nested objects and lists, in any spelling; everything
    else in details is left as the provider sent it."""
    details: dict[str, Any] = {
        "revoke_note": "duplicate order",
        "Customer-ID": 50_017,
        "order": {
            "buyer_details": {"name": "Jo Bloggs", "email": "jo@example.org"},
            "items": [{"barcode": "BC-778899", "zone": "Pit"}],
            "historicBarcodes": ["OLD-1", "OLD-2"],
        },
        "ticketScanCode": "4256499726",
    }
    omitted = protect_details(details, "omit", KEY)
    assert omitted == {"revoke_note": "duplicate order", "order": {"items": [{"zone": "Pit"}]}}
    hashed = protect_details(details, "hash", KEY)
    assert hashed["Customer-ID"] == hash_value("50017", KEY)
    assert hashed["order"]["historicBarcodes"] == [
        hash_value("OLD-1", KEY),
        hash_value("OLD-2", KEY),
    ]
    assert hashed["order"]["buyer_details"]["email"] == hash_value("jo@example.org", KEY)
    assert hashed["order"]["items"] == [{"barcode": hash_value("BC-778899", KEY), "zone": "Pit"}]
    assert protect_details(details, "include", KEY) == details


def test_omit_and_hash_refuse_an_empty_key() -> None:
    """Digests under an empty key are as guessable as the emails themselves."""
    for policy in ("omit", "hash"):
        with pytest.raises(ValueError, match="needs pii_key"):
            SourceSettings(organizer="acme", source=SOURCE, provider="shotgun", pii=policy)
