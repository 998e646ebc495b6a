"""The config contract (docs/design.md §7, §6a): what loads, what it means, what mistakes say."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from pydantic import ValidationError

from notifier.config import (
    DEFAULT_RETRY_SCHEDULE,
    Config,
    EventpopSource,
    InvalidConfigError,
    NuwebSource,
    ShotgunSource,
    TicketTailorSource,
    load_config,
)
from notifier.durations import format_duration, parse_duration
from notifier.errors import ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "configs"
WEBHOOK_SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="  # base64 of "secret-key-for-tests"
ENV = {
    "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "DOORS_SECRET": "whsec_ZG9vcnMta2V5",
    "SHOTGUN_TOKEN": "shotgun-token-value",
    "TT_API_KEY": "sk_tt_value",
    "EVENTPOP_TOKEN": "eventpop-token-value",
    "NUWEB_TOKEN": "nuweb-token-value",
    "KAFKA_PASSWORD": "kafka-password-value",
    "PII_HASH_KEY": "pii-hash-key-value",
    "EVENTPOP_CLIENT_ID": "eventpop-client-id",
    "EVENTPOP_CLIENT_SECRET": "eventpop-client-secret",
    "EVENTPOP_REFRESH_TOKEN": "eventpop-refresh-token",
}
SOURCE = "{id: main, provider: shotgun, organizer_id: 1, token: t}"
EVENT_LIST = (
    "ticket.issued, ticket.checked_in, ticket.check_in_reverted, ticket.checked_out, "
    "ticket.voided, ticket.refunded, ticket.canceled, ticket.resold, ticket.reinstated, "
    "ticket.status_changed, ticket.holder_changed, ticket.type_changed, ticket_type.sold_changed, "
    "ticket_type.sold_out, ticket_type.back_in_stock, ticket_type.sale_state_changed, "
    "ticket_type.price_changed, ticket_type.removed"
)


def organizers(source: str = SOURCE, extra: str = "") -> str:
    """YAML for one organizer with one source, plus any organizer-level lines."""
    return f"organizers:\n  - id: fabric\n    name: Fabric\n{extra}    sources: [{source}]\n"


def write(tmp_path: Path, text: str) -> Path:
    """Put a config file in a temporary folder."""
    path = tmp_path / "notifier.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    """Load YAML text as a config file."""
    return load_config(write(tmp_path, text), ENV if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    """The problem lines a broken config reports, without the file line."""
    with pytest.raises(InvalidConfigError) as caught:
        load(tmp_path, text, env)
    return [str(problem) for problem in caught.value.problems]


# --- valid files -------------------------------------------------------------------------


def test_design_example_loads() -> None:
    """The full example (four providers, organizer overrides) loads once its variables are set."""
    config = load_config(FIXTURES / "design-example.yaml", ENV)
    sources = [source for _, source in config.sources()]
    assert [type(s) for s in sources] == [
        ShotgunSource,
        TicketTailorSource,
        EventpopSource,
        NuwebSource,
    ]
    assert config.kafka is not None
    assert config.kafka.bootstrap_servers == ("localhost:9092",)
    assert config.webhooks[0].events == ("ticket.checked_in", "ticket.voided")
    assert config.organizers[0].kafka is not None
    assert config.organizers[0].kafka.topic == "fabric.ticket-events"


def test_design_example_interpolates_secrets() -> None:
    """Secrets come from the environment and stay wrapped in SecretStr."""
    config = load_config(FIXTURES / "design-example.yaml", ENV)
    shotgun = config.organizers[0].sources[0]
    assert isinstance(shotgun, ShotgunSource)
    assert shotgun.token.get_secret_value() == "shotgun-token-value"
    assert shotgun.organizer_id == 173027
    assert shotgun.include_cohosted_events is True


def test_full_example_sets_every_option() -> None:
    """Every documented option is read, not silently defaulted."""
    config = load_config(FIXTURES / "full.yaml", ENV)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 9100
    assert config.kafka is not None
    assert config.kafka.security_protocol == "SASL_SSL"
    assert config.kafka.enable_idempotence is True
    assert config.kafka.linger_ms == 20
    assert config.webhooks[0].retry_schedule == (
        timedelta(0),
        timedelta(seconds=1),
        timedelta(minutes=1),
    )
    assert config.webhooks[0].concurrency == 2
    assert config.defaults.reconcile_interval == timedelta(hours=12)


def test_minimal_config_takes_documented_defaults() -> None:
    """Without sections, defaults are those of docs/design.md §4, §6a and §7."""
    config = load_config(FIXTURES / "minimal.yaml", ENV)
    assert config.kafka is None
    assert config.webhooks == ()
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8080)  # noqa: S104 - a default, not a bind
    assert config.defaults.poll_interval == timedelta(seconds=60)
    assert config.defaults.live_poll_interval == timedelta(seconds=5)
    assert config.defaults.initial_sync == "baseline"
    assert config.defaults.pii == "include"
    assert config.defaults.reconcile_interval == timedelta(hours=6)
    assert config.defaults.lookback is None


def test_source_defaults_point_at_public_apis() -> None:
    """Each provider's base_url defaults to its public API."""
    config = load_config(FIXTURES / "design-example.yaml", ENV)
    urls = [source.base_url for _, source in config.sources()]
    assert urls == [
        "https://api.shotgun.live",
        "https://api.tickettailor.com",
        "https://www.eventpop.me/api/public",
        "https://api.nuwebgroup.com",
    ]


def test_webhook_defaults_follow_design() -> None:
    """An endpoint gets a 15 s timeout, the Svix-like schedule, a 1 h Retry-After cap, 8 slots."""
    endpoint = load_config(FIXTURES / "design-example.yaml", ENV).webhooks[0]
    assert endpoint.timeout == timedelta(seconds=15)
    assert endpoint.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert [format_duration(d) for d in DEFAULT_RETRY_SCHEDULE] == [
        "0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"
    ]  # fmt: skip
    assert endpoint.max_retry_after == timedelta(hours=1)
    assert endpoint.concurrency == 8


def test_config_is_frozen() -> None:
    """A loaded config cannot be changed by the code it is handed to."""
    config = load_config(FIXTURES / "minimal.yaml", ENV)
    with pytest.raises(ValidationError):
        config.defaults = config.defaults  # type: ignore[misc]


def test_relative_state_path_is_resolved_against_config_folder(tmp_path: Path) -> None:
    """A relative state.path is relative to the config file, not the working directory."""
    config = load(tmp_path, "state: {path: data/state.db}\n" + organizers())
    assert config.state.path == tmp_path / "data" / "state.db"


def test_default_state_path_sits_next_to_config(tmp_path: Path) -> None:
    """Without a state section the database is notifier-state.db beside the config."""
    config = load(tmp_path, organizers())
    assert config.state.path == tmp_path / "notifier-state.db"


def test_absolute_state_path_is_kept(tmp_path: Path) -> None:
    """An absolute state.path is used as written."""
    config = load(tmp_path, "state: {path: /var/lib/state.db}\n" + organizers())
    assert config.state.path == Path("/var/lib/state.db")


# --- environment interpolation -------------------------------------------------------------


def test_env_default_applies_when_unset(tmp_path: Path) -> None:
    """${VAR:-default} falls back to the default when VAR is not set."""
    source = "{id: main, provider: shotgun, organizer_id: '${ORG:-7}', token: t}"
    config = load(tmp_path, organizers(source), env={})
    assert isinstance(config.organizers[0].sources[0], ShotgunSource)
    assert config.organizers[0].sources[0].organizer_id == 7


def test_env_default_applies_when_empty(tmp_path: Path) -> None:
    """${VAR:-default} also falls back when VAR is set but empty, as in a shell."""
    source = "{id: main, provider: shotgun, organizer_id: '${ORG:-7}', token: t}"
    config = load(tmp_path, organizers(source), env={"ORG": ""})
    assert config.organizers[0].sources[0].id == "main"
    assert getattr(config.organizers[0].sources[0], "organizer_id", None) == 7


def test_env_value_wins_over_default(tmp_path: Path) -> None:
    """A set variable replaces the reference, and its text is coerced to the field's type."""
    source = "{id: main, provider: shotgun, organizer_id: '${ORG:-7}', token: t}"
    config = load(tmp_path, organizers(source), env={"ORG": "173027"})
    assert getattr(config.organizers[0].sources[0], "organizer_id", None) == 173027


def test_env_text_coerces_to_bool(tmp_path: Path) -> None:
    """A variable holding "true" fills a boolean field."""
    source = (
        "{id: main, provider: shotgun, organizer_id: 1, token: t, include_cohosted_events: '${CO}'}"
    )
    config = load(tmp_path, organizers(source), env={"CO": "true"})
    assert getattr(config.organizers[0].sources[0], "include_cohosted_events", None) is True


def test_env_reference_inside_text(tmp_path: Path) -> None:
    """References are replaced inside longer strings, several per value."""
    source = (
        "{id: main, provider: shotgun, organizer_id: 1, token: t, base_url: 'https://${H}:${P}'}"
    )
    config = load(tmp_path, organizers(source), env={"H": "localhost", "P": "8101"})
    assert config.organizers[0].sources[0].base_url == "https://localhost:8101"


def test_double_dollar_escapes_a_literal_reference(tmp_path: Path) -> None:
    """$${X} is the literal text ${X}, never looked up."""
    text = organizers().replace("name: Fabric", "name: 'Costs $${PRICE}'")
    assert load(tmp_path, text, env={}).organizers[0].name == "Costs ${PRICE}"


def test_missing_variable_names_it_and_its_path(tmp_path: Path) -> None:
    """An unset variable without a default is an error naming the variable and the key."""
    source = "{id: main, provider: shotgun, organizer_id: 1, token: '${SHOTGUN_TOKEN}'}"
    assert problems(tmp_path, organizers(source), env={}) == [
        "organizers[0].sources[0].token: environment variable SHOTGUN_TOKEN is not set — export it"
    ]


def test_malformed_reference_is_an_error(tmp_path: Path) -> None:
    """A reference that is not ${NAME} or ${NAME:-default} is reported, not passed through."""
    source = "{id: main, provider: shotgun, organizer_id: 1, token: '${1BAD}'}"
    assert problems(tmp_path, organizers(source), env={}) == [
        "organizers[0].sources[0].token: malformed variable reference — write ${NAME} or "
        "${NAME:-default}, or $${ for a literal ${"
    ]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("5s", timedelta(seconds=5)),
        ("2m", timedelta(minutes=2)),
        ("1h", timedelta(hours=1)),
        ("1.5s", timedelta(milliseconds=1500)),
        ("90", timedelta(seconds=90)),
        (30, timedelta(seconds=30)),
        (0.25, timedelta(milliseconds=250)),
        ("0s", timedelta(0)),
    ],
)
def test_duration_parses(text: str | float, expected: timedelta) -> None:
    """Durations are a number with ms, s, m or h, or bare seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5 seconds", "5d", "-1s", "1h30m", "", "s", True, None])
def test_duration_rejects_other_text(text: object) -> None:
    """Anything else is refused with the accepted forms in the message."""
    with pytest.raises(ValueError, match="500ms, 5s, 2m or 1h"):
        parse_duration(text)


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365)))
def test_duration_round_trips(value: timedelta) -> None:
    """Formatting a duration and parsing it back gives the same duration."""
    assert parse_duration(format_duration(value)) == value


def test_zero_poll_interval_is_refused(tmp_path: Path) -> None:
    """An interval of zero would spin, so it is an error with an example."""
    assert problems(tmp_path, "defaults: {poll_interval: 0s}\n" + organizers()) == [
        "defaults.poll_interval: must be longer than zero, e.g. 5s (got '0s')"
    ]


def test_bad_duration_quotes_the_input(tmp_path: Path) -> None:
    """A malformed duration from the file is quoted back with the accepted forms."""
    assert problems(tmp_path, "defaults: {lookback: 2 minutes}\n" + organizers()) == [
        "defaults.lookback: not a duration (got '2 minutes') — write a number with a unit: "
        "500ms, 5s, 2m or 1h (a bare number is seconds)"
    ]


# --- cross-field rules ----------------------------------------------------------------------


def test_sasl_without_credentials_names_each_missing_field(tmp_path: Path) -> None:
    """SASL_* needs a mechanism, a user name and a password."""
    text = "kafka: {bootstrap_servers: [k:9092], security_protocol: SASL_PLAINTEXT}\n"
    assert problems(tmp_path, text + organizers()) == [
        "kafka.sasl_mechanism: required with security_protocol SASL_PLAINTEXT",
        "kafka.sasl_username: required with security_protocol SASL_PLAINTEXT",
        "kafka.sasl_password: required with security_protocol SASL_PLAINTEXT",
    ]


def test_eventpop_refresh_grant_is_all_or_nothing(tmp_path: Path) -> None:
    """client_id, client_secret and refresh_token come together or not at all."""
    source = (
        "{id: ep, provider: eventpop, organizer_id: 4, event_ids: [7], access_token: a, "
        "refresh_token: r}"
    )
    assert problems(tmp_path, organizers(source)) == [
        f"organizers[0].sources[0].{name}: required with the other refresh settings — set all "
        "of client_id, client_secret and refresh_token, or none"
        for name in ("client_id", "client_secret")
    ]


def test_pii_hash_needs_a_key(tmp_path: Path) -> None:
    """pii: hash anywhere requires defaults.pii_hash_key."""
    assert problems(tmp_path, organizers(extra="    pii: hash\n")) == [
        "defaults.pii_hash_key: required because pii is 'hash' at organizers[0].pii — set it "
        "from the environment, e.g. pii_hash_key: ${PII_HASH_KEY}"
    ]


def test_pii_omit_needs_a_key_too(tmp_path: Path) -> None:
    """pii: omit keeps keyed digests of holders at rest, so it requires the key as well."""
    text = "defaults: {pii: omit}\n" + organizers(extra="    pii: hash\n")
    assert problems(tmp_path, text) == [
        "defaults.pii_hash_key: required because pii is 'hash' or 'omit' at defaults.pii, "
        "organizers[0].pii — set it from the environment, e.g. pii_hash_key: ${PII_HASH_KEY}"
    ]


def test_organizer_kafka_override_needs_kafka(tmp_path: Path) -> None:
    """An organizer topic override without a kafka section is a mistake, not a no-op."""
    assert problems(tmp_path, organizers(extra="    kafka: {topic: mine}\n")) == [
        "organizers[0].kafka: there is no top-level kafka section to override — add "
        "kafka.bootstrap_servers or remove this"
    ]


def test_duplicate_organizer_ids_are_refused(tmp_path: Path) -> None:
    """Organizer ids are unique."""
    text = organizers() + "  - {id: fabric, name: Again, sources: [{id: b, provider: shotgun, "
    text += "organizer_id: 2, token: t}]}\n"
    assert problems(tmp_path, text) == [
        "organizers[1].id: 'fabric' is already used at organizers[0].id — organizers need "
        "unique names"
    ]


# --- field rules --------------------------------------------------------------------------


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path: Path) -> None:
    """An unknown key far from any valid one lists the keys of that section."""
    assert problems(tmp_path, "server: {bind: x}\n" + organizers()) == [
        "server.bind: unknown key — remove it; valid keys: host, port, ingest_host, ingest_port"
    ]


def test_unknown_section_suggests_the_meant_one(tmp_path: Path) -> None:
    """A misspelt top-level section is matched against the real ones."""
    assert problems(tmp_path, "webhook: []\n" + organizers()) == [
        "webhook: unknown key (did you mean 'webhooks'?)"
    ]


def test_source_base_url_must_be_http(tmp_path: Path) -> None:
    """base_url is an http(s) URL."""
    source = "{id: main, provider: shotgun, organizer_id: 1, token: t, base_url: 'file:///etc'}"
    assert problems(tmp_path, organizers(source)) == [
        "organizers[0].sources[0].base_url: must be an http:// or https:// URL with a host "
        "(got 'file:///etc') — e.g. https://example.com/hook"
    ]


def test_source_base_url_must_not_hold_credentials(tmp_path: Path) -> None:
    """Credentials go in secret fields, never in a base_url, and the URL is not echoed."""
    source = "{id: main, provider: shotgun, organizer_id: 1, token: t, base_url: 'https://u:pw@h'}"
    assert problems(tmp_path, organizers(source)) == [
        "organizers[0].sources[0].base_url: must not contain credentials; put them in the "
        "source's token fields"
    ]


def test_base_url_trailing_slash_is_dropped(tmp_path: Path) -> None:
    """Adapters join paths onto base_url, so a trailing slash is removed."""
    source = "{id: main, provider: shotgun, organizer_id: 1, token: t, base_url: 'https://h:1/'}"
    assert load(tmp_path, organizers(source)).organizers[0].sources[0].base_url == "https://h:1"


def test_webhook_event_wildcards_are_accepted(tmp_path: Path) -> None:
    """Webhook filters take '*', 'ticket.*', 'ticket_type.*' and exact types."""
    text = f"webhooks: [{{name: a, url: 'https://a.example', secret: {WEBHOOK_SECRET}, "
    text += "events: ['*', ticket.*, ticket_type.*, ticket.voided]}]\n"
    assert load(tmp_path, text + organizers()).webhooks[0].events[3] == "ticket.voided"


def test_unknown_topic_override_type_is_refused(tmp_path: Path) -> None:
    """kafka.topics keys are event types of the catalogue."""
    text = "kafka: {bootstrap_servers: [k:9092], topics: {ticket.scanned: t}}\n"
    assert problems(tmp_path, text + organizers()) == [
        "kafka.topics[\"ticket.scanned\"]: unknown event type 'ticket.scanned' (did you mean "
        f"'ticket.canceled'?) — use one of {EVENT_LIST}"
    ]


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("abc", "must start with 'whsec_'"),
        ("whsec_not*base64", "must be 'whsec_' followed by base64"),
        ("whsec_", "has no key after 'whsec_'"),
    ],
)
def test_webhook_secret_format(tmp_path: Path, secret: str, problem: str) -> None:
    """A webhook secret is whsec_ plus base64, and the error says how to make one."""
    text = f"webhooks: [{{name: a, url: 'https://a.example', secret: '{secret}'}}]\n"
    (line,) = problems(tmp_path, text + organizers())
    assert line.startswith(f"webhooks[0].secret: {problem} — generate one with: python -c")


def test_a_rotating_endpoint_lists_its_secrets(tmp_path: Path) -> None:
    """`secrets:` holds the old and the new key while rotating; each is checked like `secret`."""
    other = "whsec_b3RoZXIta2V5LWZvci10ZXN0cw=="  # fake: base64 of "other-key-for-tests"
    text = (
        f"webhooks: [{{name: a, url: 'https://a.example', secrets: [{WEBHOOK_SECRET}, {other}]}}]\n"
    )
    path = tmp_path / "notifier.yaml"
    path.write_text(text + organizers())
    (endpoint,) = load_config(path, env=ENV).webhooks
    assert [s.get_secret_value() for s in endpoint.signing_secrets] == [WEBHOOK_SECRET, other]
    bad = text.replace(other, "not-a-key")
    assert problems(tmp_path, bad + organizers())[0].startswith(
        "webhooks[0].secrets[1]: must start with 'whsec_'"
    )


@pytest.mark.parametrize(
    "keys", ["", f"secret: {WEBHOOK_SECRET}, secrets: [{WEBHOOK_SECRET}]"], ids=["none", "both"]
)
def test_an_endpoint_has_secret_or_secrets(tmp_path: Path, keys: str) -> None:
    text = f"webhooks: [{{name: a, url: 'https://a.example', {keys}}}]\n".replace(", }", "}")
    assert problems(tmp_path, text + organizers()) == [
        "webhooks[0].secret: set either secret (one whsec_ key) or secrets (a list, while "
        "rotating: the old key and the new one), not both and not neither"
    ]


def test_ids_must_be_slugs(tmp_path: Path) -> None:
    """Ids go into event sources and Kafka keys, so they are lower-case slugs."""
    assert problems(tmp_path, organizers().replace("id: fabric", "id: Fabric London")) == [
        "organizers[0].id: not allowed here (got 'Fabric London') — use lower-case letters, "
        "digits, '-' or '_', e.g. main-box-office"
    ]


def test_missing_provider_is_reported_at_provider(tmp_path: Path) -> None:
    """A source without provider says which providers exist."""
    assert problems(tmp_path, organizers("{id: main, token: t}")) == [
        "organizers[0].sources[0].provider: field required — set it to one of shotgun, "
        "tickettailor, eventpop, nuweb"
    ]


def test_errors_inside_a_source_have_clean_paths(tmp_path: Path) -> None:
    """pydantic's discriminator tag never shows in a path."""
    source = "{id: main, provider: nuweb, token: t, company_id: x, event_ids: [y]}"
    assert problems(tmp_path, organizers(source)) == [
        "organizers[0].sources[0].company_id: expected a whole number (got 'x') — the Nuweb "
        "company id (the X-NU-COMPANY-ID header)",
        "organizers[0].sources[0].event_ids[0]: expected a whole number (got 'y') — list the "
        "provider's event ids, e.g. [410006]",
    ]


# --- whole files, messages verbatim ----------------------------------------------------------


def test_typo_and_missing_file_verbatim() -> None:
    """A misspelt key gets a suggestion; a missing one says what to write."""
    path = FIXTURES / "typo-and-missing.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert str(caught.value) == (
        f"{path}: 3 problems\n"
        "  kafka.bootstrap_servers: field required — list the brokers, e.g. [localhost:9092]\n"
        "  organizers[0].sources[0].token: field required — set it from the environment, "
        "e.g. token: ${SHOTGUN_TOKEN}\n"
        "  organizers[0].sources[0].tokn: unknown key (did you mean 'token'?)"
    )


def test_missing_env_file_verbatim() -> None:
    """An unset variable is named with its path; an empty default is fine."""
    path = FIXTURES / "missing-env.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == (
        f"{path}: 1 problem\n"
        "  organizers[0].sources[1].token: environment variable SHOTGUN_TOKEN is not set"
        " — export it"
    )


def test_duplicates_file_verbatim() -> None:
    """Source ids and endpoint names are unique across organizers."""
    path = FIXTURES / "duplicates.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert str(caught.value) == (
        f"{path}: 2 problems\n"
        "  organizers[1].sources[0].id: 'main' is already used at organizers[0].sources[0].id"
        " — sources need unique names\n"
        "  organizers[0].webhooks[0].name: 'crm' is already used at webhooks[0].name"
        " — webhook endpoints need unique names"
    )


def test_bad_values_file_verbatim() -> None:
    """Every field problem of a file is listed at once, secrets never quoted."""
    path = FIXTURES / "bad-values.yaml"
    env = {**ENV, "CRM_WEBHOOK_SECRET": "not-a-whsec-secret", "SHOTGUN_ORG": "org-from-env"}
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    assert str(caught.value) == (
        f"{path}: 8 problems\n"
        "  kafka.sasl_username: required with security_protocol SASL_SSL\n"
        "  kafka.sasl_password: required with security_protocol SASL_SSL\n"
        "  webhooks[0].url: must be an http:// or https:// URL with a host"
        " (got 'ftp://crm.example.com/hook') — e.g. https://example.com/hook\n"
        "  webhooks[0].secret: must start with 'whsec_' — generate one with: python -c "
        '"import base64, secrets; '
        "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"\n"
        "  webhooks[0].events[0]: unknown event type 'ticket.checkedin'"
        " (did you mean 'ticket.checked_in'?) — use one of *, ticket.*, ticket_type.*, "
        f"{EVENT_LIST}\n"
        "  webhooks[0].timeout: not a duration (got '5 seconds') — write a number with a unit:"
        " 500ms, 5s, 2m or 1h (a bare number is seconds)\n"
        "  organizers[0].sources[0].provider: unknown provider 'ticketailor'"
        " (did you mean 'tickettailor'?) — use one of shotgun, tickettailor, eventpop, nuweb\n"
        "  organizers[0].sources[1].organizer_id: expected a whole number"
        " — the provider's numeric organizer id"
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("syntax-error.yaml", "YAML syntax error at line 4, column 1: expected ',' or ']', "
         "but got '<stream end>'"),
        ("empty.yaml", "empty file — see docs/configuration.md for an example"),
        ("not-a-mapping.yaml",
         "the top level must be a mapping of sections (state, organizers, ...)"),
        ("no-such-file.yaml", "file not found"),
    ],
)  # fmt: skip
def test_unreadable_files_verbatim(name: str, problem: str) -> None:
    """Files that are not a config at all name the file and the reason."""
    path = FIXTURES / name
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert str(caught.value) == f"{path}: 1 problem\n  {problem}"


# --- secrets -----------------------------------------------------------------------------------


def test_secrets_from_env_never_appear_in_errors(tmp_path: Path) -> None:
    """Bad values that came from the environment are reported without being quoted."""
    secret = "s3cr3t value/from env"
    text = "kafka: {bootstrap_servers: [k:9092], topic: '${S}'}\n"
    text += "webhooks: [{name: a, url: 'https://a.example', secret: '${S}', timeout: '${S}'}]\n"
    text += organizers(
        "{id: main, provider: shotgun, organizer_id: '${S}', token: t, tokn: '${S}'}"
    )
    with pytest.raises(InvalidConfigError) as caught:
        load(tmp_path, text, env={"S": secret})
    assert len(caught.value.problems) == 5
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert caught.value.__cause__ is None


def test_secrets_from_file_never_appear_in_errors(tmp_path: Path) -> None:
    """A secret written inline is not quoted back either, even when it is malformed."""
    text = "webhooks: [{name: a, url: 'https://a.example', secret: inline-secret-text}]\n"
    (line,) = problems(tmp_path, text + organizers())
    assert "inline-secret-text" not in line


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    """repr and str of a loaded config mask every secret it holds."""
    config = load_config(FIXTURES / "full.yaml", ENV)
    shown = repr(config) + str(config) + repr(list(config.sources()))
    for value in ENV.values():
        assert value not in shown


# --- helpers for the wiring code ---------------------------------------------------------------


def test_sources_pairs_each_source_with_its_organizer() -> None:
    """sources() yields (organizer, source) in file order."""
    config = load_config(FIXTURES / "full.yaml", ENV)
    assert [(o.id, s.id) for o, s in config.sources()] == [
        ("fabric", "shotgun-main"),
        ("fabric", "tt"),
        ("koko", "ep"),
        ("koko", "nw"),
    ]


def test_endpoints_yield_global_then_organizer_endpoints() -> None:
    """endpoints() gives None for global endpoints and the organizer id for the others."""
    config = load_config(FIXTURES / "design-example.yaml", ENV)
    assert [(org, e.name) for org, e in config.endpoints()] == [(None, "crm"), ("fabric", "doors")]


def test_settings_merge_source_over_organizer_over_defaults() -> None:
    """A source's overrides win; pii comes from the organizer, the rest from defaults."""
    config = load_config(FIXTURES / "full.yaml", ENV)
    fabric, shotgun = next(iter(config.sources()))
    settings = config.settings_for(fabric, shotgun)
    assert settings.poll_interval == timedelta(seconds=30)
    assert settings.live_poll_interval == timedelta(milliseconds=500)
    assert settings.lookback == timedelta(0)
    assert settings.initial_sync == "baseline"
    assert settings.pii == "omit"
    assert settings.requests_per_minute == 50


def test_settings_fall_back_to_defaults() -> None:
    """A source without overrides runs with the defaults section."""
    config = load_config(FIXTURES / "full.yaml", ENV)
    koko, eventpop = list(config.sources())[2]
    settings = config.settings_for(koko, eventpop)
    assert settings.poll_interval == timedelta(minutes=2)
    assert settings.live_poll_interval == timedelta(seconds=10)
    assert settings.lookback == timedelta(seconds=90)
    assert settings.initial_sync == "emit_existing"
    assert settings.pii == "hash"
    assert settings.reconcile_interval == timedelta(hours=12)
    assert settings.requests_per_minute is None


def test_lookback_none_means_provider_default() -> None:
    """Without any lookback setting the effective lookback is None (the provider decides)."""
    config = load_config(FIXTURES / "design-example.yaml", ENV)
    organizer, source = next(iter(config.sources()))
    assert config.settings_for(organizer, source).lookback is None


@pytest.mark.parametrize(
    ("organizer", "event_type", "topic"),
    [
        ("fabric", "ticket.voided", "fabric.voids"),
        ("fabric", "ticket.checked_in", "fabric.tickets"),
        ("koko", "ticket.checked_in", "tickets.check-ins"),
        ("koko", "ticket.issued", "tickets"),
    ],
)
def test_kafka_topic_precedence(organizer: str, event_type: str, topic: str) -> None:
    """Organizer per-type > organizer topic > global per-type > global topic."""
    config = load_config(FIXTURES / "full.yaml", ENV)
    assert config.kafka_topic_for(organizer, event_type) == topic


def test_kafka_topic_default(tmp_path: Path) -> None:
    """Without topic settings every event goes to ticket-events."""
    config = load(tmp_path, "kafka: {bootstrap_servers: [k:9092]}\n" + organizers())
    assert config.kafka_topic_for("fabric", "ticket.issued") == "ticket-events"


@pytest.mark.parametrize(
    ("events", "event_type", "wanted"),
    [
        ("[]", "ticket_type.sold_out", True),
        ("['*']", "ticket.issued", True),
        ("[ticket.*]", "ticket.voided", True),
        ("[ticket.*]", "ticket_type.sold_out", False),
        ("[ticket.voided]", "ticket.refunded", False),
        ("[ticket.type_changed]", "ticket.type_changed", True),
        ("[ticket.*]", "ticket.type_changed", True),
    ],
)
def test_endpoint_filter(tmp_path: Path, events: str, event_type: str, wanted: bool) -> None:
    """An endpoint with no events gets everything; patterns match exact types or a family."""
    text = f"webhooks: [{{name: a, url: 'https://a.example', secret: {WEBHOOK_SECRET}, "
    text += f"events: {events}}}]\n"
    assert load(tmp_path, text + organizers()).webhooks[0].wants(event_type) is wanted


# --- push ------------------------------------------------------------------------------------

NUWEB_PUSH = (
    "{id: nuweb-main, provider: nuweb, token: t, company_id: 1, event_ids: [5], "
    "push: {secret: s3cret}}"
)


def test_push_is_accepted_where_the_provider_sends_webhooks(tmp_path: Path) -> None:
    config = load(tmp_path, organizers(NUWEB_PUSH))
    ((_, source),) = config.sources()
    assert source.push is not None
    assert source.push.secret.get_secret_value() == "s3cret"
    assert (config.server.port, config.server.ingest_port) == (8080, 8081)


@pytest.mark.parametrize("provider", ["shotgun", "eventpop"])
def test_push_is_refused_where_the_provider_sends_none(tmp_path: Path, provider: str) -> None:
    sources = {
        "shotgun": "{id: s, provider: shotgun, organizer_id: 1, token: t, push: {secret: x}}",
        "eventpop": (
            "{id: e, provider: eventpop, organizer_id: 1, event_ids: [1], access_token: t, "
            "push: {secret: x}}"
        ),
    }
    assert problems(tmp_path, organizers(sources[provider])) == [
        f"organizers[0].sources[0].push: {provider} sends no webhooks — remove push; only "
        "nuweb and tickettailor can push"
    ]


def test_the_ingest_port_is_not_the_health_port(tmp_path: Path) -> None:
    text = "server: {port: 9000, ingest_port: 9000}\n" + organizers()
    assert problems(tmp_path, text) == [
        "server.ingest_port: must differ from port — e.g. port: 8080, ingest_port: 8081"
    ]


# --- transport --------------------------------------------------------------------------------

PLAIN_HTTP = (
    "must be https:// — plain http:// sends credentials and events unencrypted; for a local "
    "simulator or receiver set allow_insecure_http: true on this item"
)


def test_plain_http_is_refused_unless_the_item_allows_it(tmp_path: Path) -> None:
    """A token or a signed event never crosses the network unencrypted by accident."""
    source = "{id: main, provider: shotgun, organizer_id: 1, token: t, base_url: 'http://h:1'}"
    hook = f"webhooks: [{{name: a, url: 'http://a.example/hook', secret: {WEBHOOK_SECRET}}}]\n"
    assert problems(tmp_path, hook + organizers(source)) == [
        f"webhooks[0].url: {PLAIN_HTTP}",
        f"organizers[0].sources[0].base_url: {PLAIN_HTTP}",
    ]
    allowed = source.replace("}", ", allow_insecure_http: true}")
    hook_allowed = hook.replace("}]", ", allow_insecure_http: true}]")
    config = load(tmp_path, hook_allowed + organizers(allowed))
    assert config.webhooks[0].url == "http://a.example/hook"
    assert config.organizers[0].sources[0].base_url == "http://h:1"
