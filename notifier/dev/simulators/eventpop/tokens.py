"""The simulator's OAuth server: access tokens, rotating refresh tokens, applications.

Sources: Eventpop's public API Swagger (``securityDefinitions``: a ``user_token``
authorization-code flow with scopes ``public`` and ``organizer``, and an
``application_token`` flow whose ``public`` scope reaches "organizer resources
(application owner only)", both at ``/oauth/token``); the Eventpop API documentation
(access tokens expire after 7200 s, refresh with ``grant_type=refresh_token``); RFC 6749
§5.2 for the error answers; and the observed rotation recorded in docs/providers.md:
each refresh answers a new refresh token and the one sent stops working at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

TOKEN_LIFETIME = 7200  # Eventpop docs: access tokens expire after 7200 s
_TICK = timedelta(microseconds=1)


@dataclass(slots=True)
class Token:
    """An access token: whose, which scopes, until when; ``client_id`` of the application
    it was issued to, ``application`` when it is an application (client-credentials) token."""

    user_id: int | None
    scopes: frozenset[str]
    expires_at: datetime | None
    client_id: str = ""
    application: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    client_id: str
    user_id: int
    scopes: frozenset[str]


OAuthAnswer = dict[str, Any] | tuple[int, str]


class TokenIssuer:
    """Issues and checks tokens; a refresh token is single use (docs/providers.md)."""

    def __init__(self, clock: Callable[[], datetime], expires_in: int = TOKEN_LIFETIME) -> None:
        self._clock = clock
        self.expires_in = expires_in
        self.refreshes = 0
        self._tokens: dict[str, Token] = {}
        self._refresh_tokens: dict[str, Grant] = {}
        self._clients: dict[str, str] = {}
        self._owners: dict[str, int] = {}  # client id -> the organizer owning the app

    def add_client(self, client_id: str, client_secret: str, *, owner: int | None = None) -> None:
        """An API application; ``owner`` is the organizer that owns it, if any."""
        self._clients[client_id] = client_secret
        if owner is not None:
            self._owners[client_id] = owner

    def owner_of(self, client_id: str) -> int | None:
        return self._owners.get(client_id)

    def issue(self, token: str, user_id: int, scopes: frozenset[str], client_id: str = "") -> None:
        expires_at = self._clock() + timedelta(seconds=self.expires_in)
        self._tokens[token] = Token(user_id, scopes, expires_at, client_id)

    def add_refresh_token(self, refresh_token: str, grant: Grant) -> None:
        self._refresh_tokens[refresh_token] = grant

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """The grant is withdrawn (the user de-authorised the app): the token stops working."""
        self._refresh_tokens.pop(refresh_token, None)

    def live_refresh_tokens(self) -> list[str]:
        """Every refresh token that still works (tests look for them where they must not be)."""
        return list(self._refresh_tokens)

    def expire(self, token: str) -> None:
        self._tokens[token].expires_at = self._clock() - _TICK

    def find(self, token: str) -> Token | None:
        found = self._tokens.get(token)
        if found is None or (found.expires_at is not None and self._clock() >= found.expires_at):
            return None
        return found

    def answer(self, form: dict[str, str]) -> OAuthAnswer:
        """``POST /oauth/token``: a token response, or (status, RFC 6749 error code)."""
        client_id = form.get("client_id", "")
        secret = self._clients.get(client_id)
        if secret is None or not secrets.compare_digest(secret, form.get("client_secret", "")):
            return 401, "invalid_client"
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            return self._application_token(client_id)
        if grant_type != "refresh_token":
            return 400, "unsupported_grant_type"
        grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id not in ("", client_id):
            return 400, "invalid_grant"
        # Observed rotation (docs/providers.md): the refresh token sent is dead from now on.
        del self._refresh_tokens[form["refresh_token"]]
        return self._user_token(Grant(client_id, grant.user_id, grant.scopes))

    def _user_token(self, grant: Grant) -> dict[str, Any]:
        access, rotated = secrets.token_hex(32), secrets.token_hex(32)
        self.issue(access, grant.user_id, grant.scopes, grant.client_id)
        self._refresh_tokens[rotated] = grant
        self.refreshes += 1
        return self._response(access, grant.scopes, refresh_token=rotated)

    def _application_token(self, client_id: str) -> dict[str, Any]:
        # Swagger application_token flow: scope public; no refresh token (RFC 6749 §4.4.3).
        access = secrets.token_hex(32)
        expires_at = self._clock() + timedelta(seconds=self.expires_in)
        scopes = frozenset({"public"})
        self._tokens[access] = Token(None, scopes, expires_at, client_id, application=True)
        return self._response(access, scopes)

    def _response(
        self, access: str, scopes: frozenset[str], *, refresh_token: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(sorted(scopes)),
            "created_at": int(self._clock().timestamp()),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body
