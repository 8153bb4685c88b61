"""The resilience replay feature: what should have happened during an incident, against what did.

Computed on request from the store (the incident, its spans and pushed
metrics, read through the registry) by ``GET /aiops/incidents/<id>/replay``
and ``aiops replay``; no state of its own.
"""
from __future__ import annotations

from aiops.registry import Context, Feature
from aiops.replay import api, cli
from aiops.replay.config import REPLAY_CONFIG


def build(ctx: Context) -> None:
    return None


def init_app(app, ctx: Context, state: None) -> None:
    app.register_blueprint(api.make_blueprint())


FEATURE = Feature(name="replay", build=build, init_app=init_app, config=REPLAY_CONFIG,
                  endpoints=tuple(api.ENDPOINTS), commands=cli.COMMANDS)
