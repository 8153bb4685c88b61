"""The dashboard feature: one static page over the JSON APIs at ``/aiops/dashboard``,
with per-route RED series and the learned baseline band."""
from __future__ import annotations

from aiops.dashboard import views
from aiops.registry import Context, Feature


def build(ctx: Context) -> None:
    return None


def init_app(app, ctx: Context, state: None) -> None:
    app.register_blueprint(views.make_blueprint(ctx.settings))


FEATURE = Feature(name="dashboard", build=build, init_app=init_app, config=views.DASHBOARD_CONFIG,
                  endpoints=tuple(views.ENDPOINTS), enabled_key="AIOPS_DASHBOARD_ENABLED")
