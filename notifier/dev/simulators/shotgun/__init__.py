"""A fake of Shotgun's ``GET /tickets`` faithful to its public documentation: the state
driven from Python (``state``), its wire shapes (``wire``), seeding (``seeding``) and the
HTTP app (``http``)."""

from notifier.dev.simulators.faults import Fault, FaultQueue
from notifier.dev.simulators.shotgun.http import build_app, serve
from notifier.dev.simulators.shotgun.state import PAGE_SIZE, ShotgunSimulator
from notifier.dev.simulators.shotgun.wire import Query, SeenRequest

__all__ = [
    "PAGE_SIZE",
    "Fault",
    "FaultQueue",
    "Query",
    "SeenRequest",
    "ShotgunSimulator",
    "build_app",
    "serve",
]
