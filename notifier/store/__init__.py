"""Durable state: ticket snapshots, cursors, and the transactional outbox."""
