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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from notifier.model import SourceId
from notifier.pii import PiiPolicy, apply_pii, hash_value, protect_details
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
    built: PiiCase = CASES[request.param]()
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
    with sqlite3.connect(path) as db:
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
    assert codes and len(secrets) > len(tickets)
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
