"""One adapter per ticketing provider, each normalizing into ``notifier.model`` records."""
