"""Secrets kept in the state store (provider tokens), sealed with a key from the environment.

``NOTIFIER_STATE_KEY`` holds a Fernet key (``Fernet.generate_key()``: 32 bytes, URL-safe
base64). With it set, every stored secret is encrypted and authenticated (AES-128-CBC +
HMAC-SHA256); without it, secrets are stored as they are and the start-up log says so
(docs/deploy.md). A sealed value names its form (``fernet:`` or ``plain:``), so a
key added later still reads what was stored before it and seals the next write.
It is a module of its own, not part of ``notifier.store``: the provider that keeps a secret
seals it before any store sees it, and providers import no store module (docs/design.md §2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from notifier.errors import ConfigError, NotifierError

STATE_KEY_ENV = "NOTIFIER_STATE_KEY"
_FERNET = "fernet:"
_PLAIN = "plain:"


class UnsealError(NotifierError):
    """A stored secret cannot be read with the key this process has."""


class Sealer:
    """Seals and unseals text; ``encrypts`` tells whether a key is set. Never shows the key."""

    __slots__ = ("_fernet",)

    def __init__(self, key: str | bytes | None = None) -> None:
        if not key:
            self._fernet: Fernet | None = None
            return
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                STATE_KEY_ENV + " is not a Fernet key (32 bytes, URL-safe base64): generate one "
                "with python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from exc

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Sealer:
        return cls(environ.get(STATE_KEY_ENV) or None)

    def __repr__(self) -> str:
        return "<Sealer encrypts=" + str(self.encrypts) + ">"

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, text: str) -> str:
        if self._fernet is None:
            return _PLAIN + text
        return _FERNET + self._fernet.encrypt(text.encode()).decode()

    def unseal(self, sealed: str) -> str:
        if sealed.startswith(_PLAIN):
            return sealed[len(_PLAIN) :]
        if not sealed.startswith(_FERNET):
            raise UnsealError("stored secret has an unknown form")
        if self._fernet is None:
            raise UnsealError(
                "stored secret is encrypted but " + STATE_KEY_ENV + " is not set: set it to "
                "the key it was stored with"
            )
        try:
            return self._fernet.decrypt(sealed[len(_FERNET) :].encode()).decode()
        except InvalidToken as exc:
            raise UnsealError(
                "stored secret does not open with " + STATE_KEY_ENV + ": set it to the key "
                "it was stored with"
            ) from exc
