"""aiohttp.web fakes of each provider API, with controllable state and fault injection."""
