"""The store a config's ``state`` section names: SQLite by ``path``, PostgreSQL by ``url``."""

from __future__ import annotations

from notifier.config.models import State
from notifier.store.memory import MemoryStore
from notifier.store.postgres import PostgresStore
from notifier.store.sqlite import SqliteStore

AnyStore = SqliteStore | PostgresStore | MemoryStore


async def open_store(state: State, *, replica: str | None = None) -> SqliteStore | PostgresStore:
    """Open (and migrate) the configured store.

    ``replica`` names a ``notifier run`` process that shares a PostgreSQL store with others:
    its commits are fenced by leases and it delivers only its own sources' events. SQLite is
    one process, which owns every source; it has no use for the name.
    """
    if state.url is not None:
        return await PostgresStore(state.url, replica=replica).open()
    return await SqliteStore(state.path).open()
