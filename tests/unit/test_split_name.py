"""One ``split_name`` for every adapter whose provider sends a single name field."""

from __future__ import annotations

import pytest

from notifier.providers.wire import split_name


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        (None, (None, None)),
        ("", (None, None)),
        ("   ", (None, None)),
        ("Somchai", ("Somchai", None)),
        ("Somchai Jaidee", ("Somchai", "Jaidee")),
        ("  Ada  King Lovelace  ", ("Ada", "King Lovelace")),
        ("Ada\tLovelace", ("Ada", "Lovelace")),
        ("Ada ", ("Ada", None)),
    ],
)
def test_the_first_word_is_the_given_name_and_the_rest_the_family_name(
    full: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert split_name(full) == expected
