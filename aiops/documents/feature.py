"""The documents feature: an incident's narrative, brief, postmortem, stakeholder updates and
hypotheses, and postmortems of a user's own incident, written by ``llm`` from the analysis'
facts (``incident_json``): by the configured model, or by the deterministic writers."""
from __future__ import annotations

from aiops.documents import api, cli
from aiops.registry import Context, Feature


def build(ctx: Context) -> None:
    return None


def init_app(app, ctx: Context, state: None) -> None:
    app.register_blueprint(api.make_blueprint())


FEATURE = Feature(name="documents", build=build, init_app=init_app, endpoints=tuple(api.ENDPOINTS),
                  commands=cli.COMMANDS)
