"""Development tooling, apart from the runtime: the provider simulators, the embedded
Kafka-protocol broker, the verifying webhook receiver, door traffic and the demo, and the
``simulate``, ``demo`` and ``dev`` commands that drive them (docs/development.md).

Nothing in the runtime imports this package (an import-linter contract checks it) except
``notifier.cli``, which registers the development commands. Their dependencies beyond the
runtime's come with the ``demo`` extra: ``pip install 'checkin-notifier[demo]'``.
"""
