"""The advisors feature: change risk and capacity advice, over what the other features know."""
from __future__ import annotations

from dataclasses import dataclass

from aiops.advisors import api
from aiops.advisors.config import ADVISORS_CONFIG
from aiops.advisors.store import AdvisorStore
from aiops.registry import Context, Feature


@dataclass
class AdvisorsState:
    settings: dict
    store: AdvisorStore


def build(ctx: Context) -> AdvisorsState:
    return AdvisorsState(ctx.settings, AdvisorStore(ctx.db))


def init_app(app, ctx: Context, state: AdvisorsState) -> None:
    app.register_blueprint(api.make_blueprint())


FEATURE = Feature(name="advisors", build=build, init_app=init_app, config=ADVISORS_CONFIG,
                  endpoints=tuple(api.ENDPOINTS))
