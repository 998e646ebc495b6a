"""checkin-notifier: ticketing APIs in, typed change events out (Kafka and signed webhooks)."""

__version__ = "0.1.0"
