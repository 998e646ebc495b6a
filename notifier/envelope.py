"""The CloudEvents envelope of a change event, as the outbox stores it and sinks send it.

The JSON ``data`` is serialized once, when the event is committed, so every sink and every
retry sends exactly the same bytes under the same id (docs/design.md §4).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from notifier.events import ChangeEvent, subject_of

SPEC_VERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One committed change event with its CloudEvents attributes.

    ``ce_source`` is ``/{provider}/{organizer}/{source}``; ``partition_key`` is the Kafka key
    ``{provider}:{source}:{ticket_id}`` and the CloudEvents ``partitionkey`` extension.
    """

    id: str
    type: str
    ce_source: str
    subject: str
    time: datetime
    partition_key: str
    organizer: str
    source_id: str
    data: bytes

    def attributes(self) -> dict[str, str]:
        """CloudEvents context attributes, as text (binary-mode headers and structured JSON)."""
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.ce_source,
            "type": self.type,
            "subject": self.subject,
            "time": format_time(self.time),
            "datacontenttype": DATA_CONTENT_TYPE,
            "partitionkey": self.partition_key,
        }


def event_id(
    source_id: str, subject: str, event_type: str, sequence: int, *, epoch: str = ""
) -> str:
    """Deterministic id: the same change detected twice (after a crash) gets the same id.

    ``epoch`` is fixed when a source's state is first recorded: if that state is ever lost
    or rebuilt elsewhere (a new volume, an organizer moved to another replica), sequences
    start again from 1 under a new epoch, so new events never reuse ids that consumers have
    already seen and deduplicated.
    """
    parts = [source_id, subject, event_type, str(sequence)] + ([epoch] if epoch else [])
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, as CloudEvents and most consumers expect.

    Aware times in another zone are converted; naive ones are UTC (docs/design.md §3).
    """
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def to_outbox_event(event: ChangeEvent, *, epoch: str = "") -> OutboxEvent:
    """Wrap a change event in its CloudEvents envelope; the data is serialized here, once."""
    subject = subject_of(event)
    return OutboxEvent(
        id=event_id(event.source, subject, event.type, event.sequence, epoch=epoch),
        type=event.type,
        ce_source=f"/{event.provider}/{event.organizer}/{event.source}",
        subject=subject,
        time=event.occurred_at or event.detected_at,
        partition_key=f"{event.provider}:{event.source}:{subject}",
        organizer=event.organizer,
        source_id=event.source,
        data=event.__pydantic_serializer__.to_json(event),
    )
