"""The providers' published specs the tests hold the adapters and simulators against.

They are excerpts kept in the repository (tests/fixtures/specs/, see its README.md): only
the endpoints the adapters read, with every ``$ref`` those need, and a top-level
``x-excerpt`` object naming the public document, its version and the day it was taken.
"""

from __future__ import annotations

from pathlib import Path

SPECS = Path(__file__).resolve().parent / "fixtures" / "specs"
EVENTPOP_SWAGGER = SPECS / "eventpop-public-api.swagger.json"
NUWEB_OPENAPI = SPECS / "nuweb-admin-api.openapi.json"
