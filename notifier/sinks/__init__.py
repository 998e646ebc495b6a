"""Where committed events go: Kafka topics, signed webhooks, stdout."""
