"""SQL of the advisors: the observed request rates the capacity advisor sizes services from."""
from __future__ import annotations

from aiops.store.database import Database, open_database


class AdvisorStore:
    """Reads of the span table the advisors need (no tables of their own)."""

    def __init__(self, db: Database | str):
        self.db = open_database(db)

    def hourly_requests(self, since_s: float) -> list[tuple[str, int, int, int, float]]:
        """(service, hour start epoch s, requests, errors, mean duration ms) per service-hour since ``since_s``."""
        return [(s, int(h) * 3600, n, e, d) for s, h, n, e, d in self.db.conn.execute(
            "SELECT service, CAST(start_time / 3600 AS INTEGER) AS h, count(*), sum(error), avg(duration_ms) "
            "FROM spans WHERE start_time >= ? GROUP BY service, h ORDER BY service, h", (since_s,))]
