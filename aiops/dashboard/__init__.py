"""The dashboard: one static page (``static/``) over the JSON APIs, and its RED series (``data``).
Declared in ``feature.py``."""
