"""The next-link rule every adapter follows: a link contributes its path and query (or, for
Shotgun, its cursor alone) and the request always goes to the configured origin."""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st
from yarl import URL

from notifier.errors import FatalProviderError
from notifier.providers.http import ProviderHttpClient
from notifier.providers.wire import link_parameter, same_origin_link

CONFIGURED = "https://api.nuwebgroup.com/v1/entry/tickets"
ORIGIN = ("https", "api.nuwebgroup.com", 443)

_hosts = st.sampled_from(
    ["api.nuwebgroup.com", "evil.com", "127.0.0.2", "[::1]", "host\\@evil.com", "h:99999", ""]
)
_schemes = st.sampled_from(["http", "https", "ftp", "javascript", ""])
_paths = st.text(alphabet="/abc?#%@:\\.[]-_ \t\x00é", max_size=20)
_queries = st.text(alphabet="abc=&+%:_ @/?#", max_size=20)
url_like = st.builds(
    lambda scheme, user, host, path, query: (
        (scheme + "://" if scheme else "//" if host else "") + user + host + path + query
    ),
    _schemes,
    st.sampled_from(["", "user:pass@", "token@"]),
    _hosts,
    _paths,
    st.one_of(st.just(""), _queries.map(lambda text: "?" + text)),
)


def _origin(url: URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host or "", url.port


@given(st.one_of(url_like, st.text(max_size=40)))
@example("https://host\\@evil.com/")
@example("http://api.example.com/v1/entry/tickets?page=2")  # the spec's example shape
@example("https://api.nuwebgroup.com//evil.com/steal?x=1")
@example("//evil.com/a?b=c")
@example("https://user:secret@evil.com:8443/v1/x?y=1#fragment")
@example("http://[::1")
@example("http://[::1]@")
def test_any_next_link_is_a_same_origin_request_or_our_own_error(link: str) -> None:
    """Whatever a server puts in ``next``, the request that follows it goes to the
    configured origin (which the HTTP client then accepts), or the read fails with the
    project's own error: never another host, never a bare ValueError."""
    try:
        followed = same_origin_link(link, CONFIGURED)
    except FatalProviderError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert len(link) < 12 or link not in message  # a link may hold a token: never quoted
        return
    assert _origin(URL(followed)) == ORIGIN
    assert URL(followed).user is None
    client = ProviderHttpClient("https://api.nuwebgroup.com")
    assert _origin(client.resolve(followed)) == ORIGIN


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (  # Nuweb admin OpenAPI, GET /v1/sale-items example: links.next
            "http://api.willms.com/v1/sale-items?page=5",
            "https://api.nuwebgroup.com/v1/sale-items?page=5",
        ),
        (
            "http://api.example.com/v1/entry/tickets?page=2",
            "https://api.nuwebgroup.com/v1/entry/tickets?page=2",
        ),
        (
            "/v1/orders?starting_after=or_120",
            "https://api.nuwebgroup.com/v1/orders?starting_after=or_120",
        ),
        ("?page=3", "https://api.nuwebgroup.com/v1/entry/tickets?page=3"),
        ("https://evil.com:8443/v1/x?y=1#f", "https://api.nuwebgroup.com/v1/x?y=1"),
    ],
)
def test_a_link_keeps_its_path_and_query_only(link: str, expected: str) -> None:
    """Another scheme and host (Nuweb's spec examples), a relative Ticket Tailor link and a
    query-only link all land on the configured origin with the link's path and query."""
    assert same_origin_link(link, CONFIGURED) == expected


def test_the_cursor_of_the_seeds_shotgun_link() -> None:
    """Shotgun's documented example link: ``after`` decoded, '+' read as a space."""
    link = (
        "https://api.shotgun.live/tickets?token=xxx.xxx.xxx&organizer_id=173027"
        "&event_id=410006&after=2025-05-20+12%3A47%3A26.622033_69246828"
    )
    assert link_parameter(link, "after") == "2025-05-20 12:47:26.622033_69246828"
    with pytest.raises(FatalProviderError, match="no 'after'"):
        link_parameter("https://api.shotgun.live/tickets?organizer_id=1", "after")


@given(st.one_of(url_like, st.text(max_size=40)))
@example("https://host\\@evil.com/?after=x")
@example("http://[::1]@?after=x")
def test_any_link_gives_a_cursor_or_our_own_error(link: str) -> None:
    """Reading the cursor from any link yields text or the project's error."""
    try:
        value = link_parameter(link, "after")
    except FatalProviderError:
        return
    assert isinstance(value, str)
    assert value
