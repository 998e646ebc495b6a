"""Eventpop OAuth: the access token and the refresh-token grant that renews it.

Eventpop's token endpoint rotates refresh tokens: each refresh answers a new one and the
one sent stops working (single use; docs/providers.md, Eventpop). So the current pair
must outlive the process and be the same for every source of one grant:

- ``GrantBook`` gives every source of one grant (token URL, client id and the config's
  refresh token) the same ``OAuth`` session in this process, whose lock serializes
  refreshes, so two sources never spend one refresh token twice.
- The session keeps its current tokens in the state store under a key derived from the
  grant (a SHA-256, never the token), sealed with ``NOTIFIER_STATE_KEY`` when set, and
  loads them before first use: after a restart the rotated token is used, not the dead
  one in the config. Another process sharing the store may have rotated it: a refusal
  re-reads the store once and adopts a newer pair before giving up.
- A refused refresh fails the source(s) of that grant alone, with an error that names
  the remedy: re-authorise and put the new refresh token in the config (a new config
  token is a new grant key, so the stored pair of the old one is no longer used).

Holds secrets: no repr shows one, and nothing here logs or raises a token value.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import structlog

from notifier.errors import ConfigError, FatalProviderError
from notifier.providers.base import CredentialStore
from notifier.providers.eventpop.wire import PROVIDER
from notifier.providers.http import FetchResult, ProviderHttpClient
from notifier.sealing import Sealer, UnsealError
from notifier.timeparse import parse_timestamp

log = structlog.get_logger(__name__)

TOKEN_LIFETIME = timedelta(seconds=7200)  # documented expires_in of an access token
REFRESH_EARLY = timedelta(minutes=5)
WallClock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Grant:
    """The refresh-token grant as configured; ``refresh_token`` is the config's, not the current."""

    client_id: str
    client_secret: str
    refresh_token: str

    def __repr__(self) -> str:
        return "<Grant>"

    def key(self, token_url: str) -> str:
        """The store key of this grant's current tokens: a digest, never a token."""
        material = "\0".join((token_url, self.client_id, self.refresh_token)).encode()
        return "eventpop:grant:" + hashlib.sha256(material).hexdigest()


@dataclass(frozen=True, slots=True)
class Tokens:
    """The current access and refresh token of a grant, and when the access token expires."""

    access_token: str
    refresh_token: str
    expires_at: datetime | None

    def __repr__(self) -> str:
        return "<Tokens>"

    def dumps(self) -> str:
        expires = None if self.expires_at is None else self.expires_at.isoformat()
        body = {"access": self.access_token, "refresh": self.refresh_token, "expires": expires}
        return orjson.dumps(body).decode()

    @classmethod
    def loads(cls, text: str) -> Tokens:
        body = orjson.loads(text)
        if not isinstance(body, dict):
            raise TypeError("stored tokens are not an object")
        access, refresh = body["access"], body["refresh"]
        if type(access) is not str or type(refresh) is not str:
            raise TypeError("stored tokens are not text")
        return cls(access, refresh, parse_timestamp(body.get("expires")))


class GrantBook:
    """The OAuth sessions of one runtime, one per grant, and where they keep their tokens.

    ``store`` None keeps tokens in memory only (tests, a dry run without a state file).
    """

    def __init__(self, store: CredentialStore | None = None, sealer: Sealer | None = None) -> None:
        self._store = store
        self._sealer = sealer or Sealer()
        self._sessions: dict[str, OAuth] = {}

    def __repr__(self) -> str:
        return "<GrantBook sessions=" + str(len(self._sessions)) + ">"

    def session(
        self,
        http: ProviderHttpClient,
        token_url: str,
        access_token: str,
        *,
        grant: Grant | None,
        expires_at: datetime | None,
        clock: WallClock,
    ) -> OAuth:
        """The session of ``grant`` (shared by every source of it), or a lone access token."""
        if grant is None:
            return OAuth(http, token_url, access_token, expires_at=expires_at, clock=clock)
        key = grant.key(token_url)
        shared = self._sessions.get(key)
        if shared is None:
            vault = None if self._store is None else _Vault(self._store, self._sealer, key)
            shared = self._sessions[key] = OAuth(
                http,
                token_url,
                access_token,
                grant=grant,
                vault=vault,
                expires_at=expires_at,
                clock=clock,
            )
        return shared


class _Vault:
    """One grant's tokens in the state store, sealed."""

    def __init__(self, store: CredentialStore, sealer: Sealer, key: str) -> None:
        self._store, self._sealer, self._key = store, sealer, key

    async def load(self) -> Tokens | None:
        sealed = await self._store.load_credentials(self._key)
        if sealed is None:
            return None
        try:
            return Tokens.loads(self._sealer.unseal(sealed))
        except UnsealError as exc:
            raise FatalProviderError("Eventpop tokens in the state store: " + str(exc)) from exc
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise FatalProviderError(
                "Eventpop tokens in the state store are unreadable (" + type(exc).__name__ + ")"
            ) from exc

    async def save(self, tokens: Tokens) -> None:
        await self._store.save_credentials(self._key, self._sealer.seal(tokens.dumps()))


class OAuth:
    """The access token and, when configured, the refresh-token grant that renews it."""

    def __init__(
        self,
        http: ProviderHttpClient,
        token_url: str,
        access_token: str,
        *,
        grant: Grant | None = None,
        vault: _Vault | None = None,
        expires_at: datetime | None,
        clock: WallClock,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._grant = grant
        self._vault = vault
        refresh = "" if grant is None else grant.refresh_token
        self._tokens = Tokens(access_token, refresh, expires_at)
        self._loaded = vault is None
        self._unsaved = False
        self._clock = clock
        self._lock = asyncio.Lock()
        self.requests = 0

    def __repr__(self) -> str:
        return "<EventpopOAuth refreshable=" + str(self.can_refresh) + ">"

    @property
    def can_refresh(self) -> bool:
        return self._grant is not None

    @property
    def access_token(self) -> str:
        return self._tokens.access_token

    def headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.access_token, "Accept": "application/json"}

    async def ensure_fresh(self) -> None:
        """Load the stored tokens once, then refresh ahead of expiry (never spend a request
        on a dead token)."""
        if not self._loaded or self._unsaved:
            async with self._lock:
                await self._load_once()
                await self._save_pending()
        expires_at = self._tokens.expires_at
        if (
            self.can_refresh
            and expires_at is not None
            and self._clock() >= expires_at - REFRESH_EARLY
        ):
            await self.refresh(reason="expiring", used=self.access_token)

    async def refresh(self, *, reason: str, used: str) -> None:
        """Renew the access token that ``used`` was, unless another source already did."""
        async with self._lock:
            if self._grant is None:
                raise FatalProviderError("Eventpop token cannot be refreshed: no grant configured")
            await self._load_once()
            if self.access_token != used:
                return  # a source of the same grant renewed it while we waited
            if await self._adopt_stored():
                return  # another process sharing the store rotated it
            await self._exchange(reason)

    async def _exchange(self, reason: str) -> None:
        assert self._grant is not None
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._tokens.refresh_token,
            "client_id": self._grant.client_id,
            "client_secret": self._grant.client_secret,
        }
        try:
            result = await self._http.post_form(
                self._token_url, form, headers={"Accept": "application/json"}
            )
        except FatalProviderError as exc:
            self.requests += 1
            if exc.status not in (400, 401):
                raise
            if await self._adopt_stored():
                return  # another process rotated it while we tried: its pair is live
            raise FatalProviderError(
                "Eventpop refused the refresh grant (HTTP " + str(exc.status) + "): the "
                "refresh token was revoked or already used, or the client credentials are "
                "wrong; re-authorise the application and put the new refresh_token (and "
                "access_token) in this source's config",
                status=exc.status,
            ) from exc
        self.requests += result.attempts
        expires_in = self._apply(result.payload)
        log.info("token_refreshed", provider=PROVIDER, reason=reason, expires_in=expires_in)
        await self._save_pending()

    async def _load_once(self) -> None:
        if self._loaded:
            return
        assert self._vault is not None
        stored = await self._vault.load()
        if stored is not None:
            self._tokens = stored
            log.info("token_restored", provider=PROVIDER)
        self._loaded = True

    async def _adopt_stored(self) -> bool:
        """Take the stored pair if another process rotated the grant since we read it."""
        if self._vault is None:
            return False
        stored = await self._vault.load()
        if stored is None or stored.refresh_token == self._tokens.refresh_token:
            return False
        self._tokens = stored
        log.info("token_adopted", provider=PROVIDER)
        return True

    async def _save_pending(self) -> None:
        # The refresh token just received is the only live one: if the store cannot take
        # it now, it is kept in memory and saved again before the next request.
        if self._vault is None or not self._unsaved:
            return
        await self._vault.save(self._tokens)
        self._unsaved = False

    def _apply(self, payload: object) -> int:
        if not isinstance(payload, dict) or type(payload.get("access_token")) is not str:
            raise FatalProviderError("malformed Eventpop token response")
        rotated = payload.get("refresh_token")
        expires_in = payload.get("expires_in")
        if type(expires_in) is not int or expires_in <= 0:
            expires_in = int(TOKEN_LIFETIME.total_seconds())
        # Eventpop rotates refresh tokens: the old one is dead once this one exists.
        refresh = rotated if type(rotated) is str and rotated else self._tokens.refresh_token
        self._tokens = Tokens(
            payload["access_token"], refresh, self._clock() + timedelta(seconds=expires_in)
        )
        self._unsaved = self._vault is not None
        return expires_in


class AppToken:
    """An application token (client-credentials grant) for what needs one: the events list.

    Eventpop's Swagger: ``GET /organizers/{org}/events`` "Requires Application Access
    Token (the application must be owned by this organizer)". It has no refresh token
    (RFC 6749 §4.4.3): a new one is requested ahead of expiry, and once on a 401.
    """

    def __init__(
        self, http: ProviderHttpClient, token_url: str, grant: Grant, *, clock: WallClock
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._grant = grant
        self._clock = clock
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.requests = 0

    def __repr__(self) -> str:
        return "<EventpopAppToken>"

    async def get(self, url: str, params: Mapping[str, str]) -> FetchResult:
        token = await self._current()
        try:
            return await self._http.fetch_json(url, params=params, headers=_bearer(token))
        except FatalProviderError as exc:
            if exc.status != 401:
                raise
        self.requests += 1  # the refused request
        token = await self._current(stale=token)
        return await self._http.fetch_json(url, params=params, headers=_bearer(token))

    async def _current(self, *, stale: str | None = None) -> str:
        async with self._lock:
            expires_at = self._expires_at
            fresh = expires_at is None or self._clock() < expires_at - REFRESH_EARLY
            if self._token is not None and self._token != stale and fresh:
                return self._token
            form = {
                "grant_type": "client_credentials",
                "client_id": self._grant.client_id,
                "client_secret": self._grant.client_secret,
            }
            result = await self._http.post_form(
                self._token_url, form, headers={"Accept": "application/json"}
            )
            self.requests += result.attempts
            payload = result.payload
            if not isinstance(payload, dict) or type(payload.get("access_token")) is not str:
                raise FatalProviderError("malformed Eventpop token response")
            expires_in = payload.get("expires_in")
            if type(expires_in) is not int or expires_in <= 0:
                expires_in = int(TOKEN_LIFETIME.total_seconds())
            self._token = payload["access_token"]
            self._expires_at = self._clock() + timedelta(seconds=expires_in)
            return self._token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token, "Accept": "application/json"}


def grant_of(
    client_id: str | None, client_secret: str | None, refresh_token: str | None
) -> Grant | None:
    given = (client_id, client_secret, refresh_token)
    if client_id and client_secret and refresh_token:
        return Grant(client_id, client_secret, refresh_token)
    if any(given):
        raise ConfigError(
            "Eventpop refresh needs client_id, client_secret and refresh_token together"
        )
    return None
