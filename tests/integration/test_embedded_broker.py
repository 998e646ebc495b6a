"""EmbeddedBroker: the Tansu process that tests and ``notifier demo`` run against."""

from __future__ import annotations

import socket
import time

import pytest

from notifier.dev.broker import HOST, BrokerStartError, EmbeddedBroker


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def refuses_within(port: int, timeout: float = 5.0) -> bool:
    """Poll until nothing listens on ``port`` any more, or give up at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not accepts_connections(port):
            return True
        time.sleep(0.02)
    return False


def test_start_serves_on_loopback_and_stop_ends_it() -> None:
    """After start() the port accepts connections; after stop() it refuses them."""
    broker = EmbeddedBroker()
    try:
        broker.start()
        assert broker.running
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        assert accepts_connections(broker.port)
    finally:
        broker.close()
    assert not broker.running
    assert refuses_within(broker.port)


def test_restart_on_the_same_port() -> None:
    """start(port) reuses the port a stopped broker had ("down then back")."""
    with EmbeddedBroker() as broker:
        port = broker.port
        broker.stop()
        assert refuses_within(port)

        broker.start(port)

        assert broker.bootstrap == f"127.0.0.1:{port}"
        assert accepts_connections(port)


def test_stop_is_idempotent() -> None:
    """stop() on a stopped or never-started broker does nothing."""
    broker = EmbeddedBroker()
    broker.stop()
    with broker:
        broker.stop()
        broker.stop()
        assert not broker.running


def test_busy_port_fails_with_the_log_tail() -> None:
    """A port held by someone else fails the start, and the error shows the broker's log."""
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = EmbeddedBroker(attempts=2)
        try:
            with pytest.raises(BrokerStartError, match="Address in use"):
                broker.start(port)
            assert not broker.running
            assert "tansu broker" in broker.log_tail()
        finally:
            broker.close()


def test_missing_binary_is_a_start_error() -> None:
    """A wrong binary path is reported as BrokerStartError, not a bare OSError."""
    broker = EmbeddedBroker(binary="/nonexistent/tansu")
    with pytest.raises(BrokerStartError, match="cannot run"):
        broker.start()
    broker.close()


def test_bootstrap_before_start_is_an_error() -> None:
    """There is no address to give before the first start."""
    with pytest.raises(BrokerStartError, match="never started"):
        _ = EmbeddedBroker().bootstrap
