"""What every store is made of: the database it holds its tables in, and the clock its rows' moments are read on."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from liaison.clock import Clock, SystemClock


class Store:
    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()   # the service's clock (liaison/bootstrap.py hands it over)
