"""The demo shop: ``python app.py`` serves it on http://127.0.0.1:5000 (``PORT`` and ``HOST`` override).

The shop itself is ``simulation.shop`` (so an installed package has it too:
the ``aiops-demo`` console script); this file runs it from a checkout and
keeps ``from app import create_app`` working.
"""
from simulation.shop import DEMO_CONFIG, SERVE_CONFIG, DemoFailure, create_app, main

__all__ = ["DEMO_CONFIG", "SERVE_CONFIG", "DemoFailure", "create_app", "main"]

if __name__ == "__main__":
    main()
