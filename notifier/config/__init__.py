"""The configuration (docs/design.md §7): frozen pydantic models of the YAML and ``load_config``.

config.fields       shared field types (ids, URLs, event patterns) and the event catalogue
config.sources      one model per provider, discriminated by ``provider``
config.models       Config and its sections, whole-file rules, helpers for the wiring code
config.interpolate  ``${VAR}`` / ``${VAR:-default}`` / ``$${`` in string values
config.problems     pydantic errors → ``path: problem — fix`` lines; InvalidConfigError
config.loader       load_config(path, env)
"""

from notifier.config.loader import load_config
from notifier.config.models import (
    DEFAULT_RETRY_SCHEDULE,
    DEFAULT_TOPIC,
    Config,
    Defaults,
    Kafka,
    Organizer,
    OrganizerKafka,
    Pii,
    Server,
    SourceSettings,
    State,
    WebhookEndpoint,
)
from notifier.config.problems import InvalidConfigError, Problem
from notifier.config.sources import (
    EventpopSource,
    InitialSync,
    NuwebSource,
    ShotgunSource,
    Source,
    TicketTailorSource,
)

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "DEFAULT_TOPIC",
    "Config",
    "Defaults",
    "EventpopSource",
    "InitialSync",
    "InvalidConfigError",
    "Kafka",
    "NuwebSource",
    "Organizer",
    "OrganizerKafka",
    "Pii",
    "Problem",
    "Server",
    "ShotgunSource",
    "Source",
    "SourceSettings",
    "State",
    "TicketTailorSource",
    "WebhookEndpoint",
    "load_config",
]
