"""Where the providers' published specs live: ../shared beside the repository (as in CI)."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EVENTPOP_SWAGGER = SHARED / "reference" / "eventpop" / "public-api.swagger.json"
NUWEB_OPENAPI = SHARED / "reference" / "nuweb" / "admin-api.openapi.json"
