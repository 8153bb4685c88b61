"""Pushed metrics: the point model, the online detector (``online``, also ``aiops detect``), the pass's
signal source (``detect``), the store and ``/aiops/metrics/*``. Declared in ``feature.py``."""
