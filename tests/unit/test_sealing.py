"""Secrets sealed for the state store: Fernet with NOTIFIER_STATE_KEY, or stored as is."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from notifier.errors import ConfigError
from notifier.sealing import STATE_KEY_ENV, Sealer, UnsealError


def test_a_key_encrypts_and_round_trips() -> None:
    sealer = Sealer(Fernet.generate_key())
    sealed = sealer.seal("refresh-7f3a")
    assert sealer.encrypts
    assert "refresh-7f3a" not in sealed
    assert sealer.unseal(sealed) == "refresh-7f3a"


def test_without_a_key_the_text_is_kept_as_is() -> None:
    sealer = Sealer()
    assert not sealer.encrypts
    assert sealer.unseal(sealer.seal("refresh-7f3a")) == "refresh-7f3a"


def test_a_key_added_later_still_reads_what_was_stored_before() -> None:
    assert Sealer(Fernet.generate_key()).unseal(Sealer().seal("t")) == "t"


def test_a_wrong_or_missing_key_is_refused_by_name() -> None:
    sealed = Sealer(Fernet.generate_key()).seal("t")
    with pytest.raises(UnsealError, match=STATE_KEY_ENV):
        Sealer(Fernet.generate_key()).unseal(sealed)
    with pytest.raises(UnsealError, match=STATE_KEY_ENV):
        Sealer().unseal(sealed)


def test_the_key_comes_from_the_environment_and_must_be_a_fernet_key() -> None:
    key = Fernet.generate_key().decode()
    assert Sealer.from_environment({STATE_KEY_ENV: key}).encrypts
    assert not Sealer.from_environment({}).encrypts
    with pytest.raises(ConfigError, match=STATE_KEY_ENV) as bad:
        Sealer.from_environment({STATE_KEY_ENV: "not-a-key"})
    assert "not-a-key" not in str(bad.value)
    assert key not in repr(Sealer(key))
