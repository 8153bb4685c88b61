"""SLOs: definitions, error budgets and burn rates (``budgets``), the engine, its store, ``GET /metrics``
(``prometheus``), the API and ``aiops slo``. Declared in ``feature.py``."""
