"""A tiny app with Telemetry and AIOps for the gunicorn test of /metrics
(``gunicorn tests.aiops.slo._slo_wsgi:app``); settings come from the environment."""
import os

from flask import Flask

from aiops import AIOps
from telemetry import Telemetry

app = Flask("slo_wsgi")


@app.get("/items/<int:item_id>")
def item(item_id: int):
    return {"item": item_id}


@app.get("/_pid")
def pid():
    return str(os.getpid())


Telemetry(app)
AIOps(app)
