"""Provider webhooks as triggers: verified deliveries wake a source's poller early.

A delivery is never turned into events (the poll that follows reads the provider's API as
always), so a forged, replayed or reordered delivery can at worst cost one extra poll.
"""
