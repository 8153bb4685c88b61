"""Run the analysis over seeded synthetic traffic written into a real SQLite file."""
from __future__ import annotations

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.engine import Analyzer
from aiops.analysis.store import AnalysisStore
from aiops.testing.synthetic import Fault, generate, replay
from telemetry.store import INSERT_SPAN as _INSERT, connect

T0 = 1_800_000_000.0  # a fixed epoch second, so runs are repeatable


class Run:
    """Synthetic traffic replayed into ``db_path`` with a pass every ``interval_s``."""

    def __init__(self, db_path, routes, rates, duration_s, faults=(), seed=0, config=None, interval_s=10.0):
        self.conn = connect(str(db_path))
        self.store = AnalysisStore(str(db_path))
        self.config = config or AnalysisConfig()
        self.analyzer = Analyzer(self.store, self.config)
        self.traffic = generate(routes, rates, T0, duration_s, list(faults), seed=seed)
        self.results = replay(self.traffic, self.write, self.analyzer.run_pass, T0 + interval_s,
                              T0 + duration_s, interval_s)
        self.conn.close()

    def write(self, rows):
        self.conn.execute("BEGIN")
        self.conn.executemany(_INSERT, rows)
        self.conn.execute("COMMIT")

    def opened(self):
        """(pass time - T0, incident) for every incident opened, in order."""
        return [(r.at - T0, c.incident) for r in self.results for c in r.changes if c.event == "opened"]

    def incidents(self):
        return self.store.incidents(limit=1000)


def fault(key, kind, start_s, end_s, magnitude):
    return Fault(key, kind, T0 + start_s, T0 + end_s, magnitude)
