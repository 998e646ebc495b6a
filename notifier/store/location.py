"""Can the state database live at this path? Asked before anything opens it.

``notifier validate`` must refuse a path the service could not use (a directory that cannot
be created, a read-only directory, a path under a regular file, a directory in place of the
file) instead of letting ``once``/``run`` fail later with a traceback. The question is
answered by trying, since permission bits lie (root ignores them, a read-only mount does
not): the nearest existing directory must take a new file, which is removed at once. Nothing
is left behind, not even the directories that opening the store would create.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def state_path_problem(path: Path) -> str | None:
    """Why the SQLite state cannot be created or written at ``path``; None if it can."""
    if path.is_dir():
        return f"{path} is a directory; give the path of a file inside it, e.g. {path}/state.db"
    if path.exists():
        problem = _file_problem(path)
        if problem is not None:
            return problem
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        return f"cannot create {path}: {existing} is not a directory"
    # SQLite in WAL mode also writes -wal and -shm files beside the database, so the
    # directory itself must accept new files even when the database file already exists.
    return _directory_problem(existing, path)


def _nearest_existing(directory: Path) -> Path:
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return candidate
    return Path(directory.anchor or ".")


def _file_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{path} is not a regular file"
    try:
        with path.open("ab"):  # opened for writing, nothing written
            pass
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def _directory_problem(directory: Path, path: Path) -> str | None:
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".notifier-probe-", dir=directory)
    except OSError as exc:
        return (
            f"cannot create {path}: {directory} does not accept new files ({exc.strerror or exc})"
        )
    os.close(descriptor)
    os.unlink(probe)
    return None
