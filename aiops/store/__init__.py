"""Storage every aiops feature shares: ``aiops.store.database`` (the file, per-thread
connections, transactions, state, migrations). Each feature's tables live in its own
``store`` module."""
