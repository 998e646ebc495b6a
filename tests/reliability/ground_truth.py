"""Ground truth for the reliability scenarios, and the check every scenario ends with.

The driver records each transition it makes on the simulator (ticket, expected event type,
in order). Independent readers collect what was delivered: a confluent-kafka consumer that
assigns every partition directly and parses records with the CloudEvents SDK's Kafka
binding, and the verifying webhook ``Receiver``. ``check`` then compares the two:

* every expected (ticket, type) was delivered;
* nothing unexpected was (no phantom events);
* every copy of an id is identical (type, subject, data), and one (ticket, type) has one id:
  duplicates are allowed only as exact redeliveries;
* per ticket, the ``sequence`` numbers run 1, 2, ... in the driver's order, and (on Kafka,
  where order is promised per key) first arrivals come in increasing ``sequence``.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

__all__ = [
    "CheckReport",
    "Delivered",
    "GroundTruth",
    "check",
    "from_webhook",
    "read_kafka",
]


@dataclass(frozen=True, slots=True)
class Delivered:
    """One copy of one event as a consumer saw it."""

    id: str
    type: str
    subject: str
    sequence: int
    data: Mapping[str, Any]

    @property
    def fingerprint(self) -> bytes:
        return orjson.dumps([self.type, self.subject, self.data], option=orjson.OPT_SORT_KEYS)


@dataclass
class GroundTruth:
    """What the driver did: per ticket, the event types it must cause, in order."""

    # ticket id -> the base sequence (events already emitted before the driver started)
    expected: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    base_sequence: dict[str, int] = field(default_factory=dict)

    def record(self, ticket: int | str, event_type: str) -> None:
        self.expected[str(ticket)].append(event_type)

    @property
    def transitions(self) -> int:
        return sum(len(types) for types in self.expected.values())

    def pairs(self) -> set[tuple[str, str]]:
        return {(ticket, t) for ticket, types in self.expected.items() for t in types}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Figures of one check: what was expected and what one channel delivered."""

    channel: str
    expected: int
    copies: int
    unique: int
    duplicates: int
    out_of_order_arrivals: int

    def line(self) -> str:
        return (
            f"{self.channel}: {self.expected} transitions expected, {self.unique} delivered "
            f"({self.copies} copies, {self.duplicates} duplicates, "
            f"{self.out_of_order_arrivals} arrivals out of sequence order)"
        )


def check(
    truth: GroundTruth,
    delivered: Iterable[Delivered],
    *,
    channel: str,
    ordered_arrival: bool,
    only: set[str] | None = None,
) -> CheckReport:
    """Compare ``delivered`` with ``truth``; raise AssertionError listing every problem.

    ``only`` restricts the truth to some event types (an endpoint with a filter).
    """
    copies = list(delivered)
    expected = {
        ticket: [t for t in types if only is None or t in only]
        for ticket, types in truth.expected.items()
    }
    problems: list[str] = []
    first: dict[str, Delivered] = {}
    ids_of: dict[tuple[str, str], str] = {}
    arrivals: dict[str, list[int]] = defaultdict(list)
    for copy in copies:
        seen = first.get(copy.id)
        if seen is not None:
            if seen.fingerprint != copy.fingerprint:
                problems.append(f"{channel}: id {copy.id} delivered with different content")
            continue
        first[copy.id] = copy
        arrivals[copy.subject].append(copy.sequence)
        key = (copy.subject, copy.type)
        other = ids_of.setdefault(key, copy.id)
        if other != copy.id:
            problems.append(f"{channel}: {key} delivered under two ids {other} and {copy.id}")
    problems += _per_ticket(truth, expected, first.values(), channel=channel, only=only)
    disorder = sum(1 for seqs in arrivals.values() for a, b in itertools.pairwise(seqs) if b < a)
    if ordered_arrival and disorder:
        bad = {t: s for t, s in arrivals.items() if s != sorted(s)}
        problems.append(
            f"{channel}: per-ticket arrival order broken: {dict(list(bad.items())[:5])}"
        )
    assert not problems, "\n".join(problems[:40])
    return CheckReport(
        channel=channel,
        expected=sum(len(v) for v in expected.values()),
        copies=len(copies),
        unique=len(first),
        duplicates=len(copies) - len(first),
        out_of_order_arrivals=disorder,
    )


def _per_ticket(
    truth: GroundTruth,
    expected: Mapping[str, list[str]],
    first: Iterable[Delivered],
    *,
    channel: str,
    only: set[str] | None,
) -> list[str]:
    """Missing and phantom events, and sequence numbers against the driver's order."""
    problems: list[str] = []
    seen_types: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for copy in first:
        seen_types[copy.subject].append((copy.sequence, copy.type))
    for ticket in sorted(set(expected) | set(seen_types)):
        want = expected.get(ticket, [])
        got = [t for _, t in sorted(seen_types.get(ticket, []))]
        if sorted(got) != sorted(want):
            missing = [t for t in want if t not in got]
            phantom = [t for t in got if t not in want]
            problems.append(f"{channel}: ticket {ticket}: missing {missing}, phantom {phantom}")
        elif got != want:
            problems.append(f"{channel}: ticket {ticket}: sequence order {got}, driver {want}")
        sequences = sorted(s for s, _ in seen_types.get(ticket, []))
        base = truth.base_sequence.get(ticket, 0)
        if (
            only is None
            and sequences
            and sequences != list(range(base + 1, base + 1 + len(sequences)))
        ):
            problems.append(f"{channel}: ticket {ticket}: sequences {sequences} have gaps")
    return problems


def from_webhook(events: Iterable[Mapping[str, Any]]) -> list[Delivered]:
    """The Receiver's verified (signature-checked) events as ``Delivered`` copies."""
    out = []
    for event in events:
        data = event["data"]
        out.append(
            Delivered(
                id=str(event["id"]),
                type=str(event["type"]),
                subject=str(event["subject"]),
                sequence=int(data["sequence"]),
                data=data,
            )
        )
    return out


def read_kafka(
    bootstrap: str, topic: str, *, partitions: int, timeout: float = 60.0, quiet: float = 2.0
) -> list[Delivered]:
    """Every record of ``topic`` up to its current high watermarks, per partition in offset
    order; confluent-kafka with directly assigned partitions, parsed by the CloudEvents SDK."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reliability-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {}
        for partition in range(partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out: list[Delivered] = []
        positions = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        # Tansu's high watermark can lag records it already acknowledged: read at least up
        # to it, then on until the topic has been quiet for ``quiet`` seconds.
        while any(positions[p] < ends[p] for p in ends) or time.monotonic() - last < quiet:
            if time.monotonic() > deadline:
                raise TimeoutError(f"kafka read stopped at {positions} of {ends}")
            message = consumer.poll(0.2)
            if message is None:
                continue
            last = time.monotonic()
            if message.error() is not None:
                raise KafkaException(message.error())
            at_partition, at_offset = message.partition(), message.offset()
            assert at_partition is not None
            assert at_offset is not None
            positions[at_partition] = at_offset + 1
            out.append(_parse(message.headers() or [], message.key(), message.value() or b""))
        return out
    finally:
        consumer.close()


def _parse(raw: Any, key: bytes | None, value: bytes) -> Delivered:
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = {name: v for name, v in pairs if isinstance(v, bytes)}
    event = from_binary_event(KafkaMessage(headers=headers, key=key, value=value))
    data = event.get_data()
    assert isinstance(data, dict), "kafka value is not a JSON object"
    return Delivered(
        id=str(event.get_id()),
        type=str(event.get_type()),
        subject=str(event.get_subject()),
        sequence=int(data["sequence"]),
        data=data,
    )
