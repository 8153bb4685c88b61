"""AIOps on a live app: background analysis, webhooks end to end, env config."""
import requests

from aiops import AIOps
from aiops.extension import SCHEDULER
from tests.aiops.helpers import Receiver
from tests.helpers import wait_until


def hit(url, n):
    with requests.Session() as s:
        for _ in range(n):
            s.get(url + "/pay", timeout=5)


def test_background_scheduler_opens_the_incident_and_the_webhook_hears_it(live_server, pay_app):
    hooks = Receiver(live_server)
    app = pay_app(AIOPS_ANALYSIS_INTERVAL_S=0.5, AIOPS_WEBHOOK_URLS=[hooks.url], AIOPS_WEBHOOK_BACKOFF_S=0.01)
    server = live_server(app)
    try:
        assert SCHEDULER.running(AIOps.job_id(app))
        hit(server.url, 40)
        assert wait_until(lambda: AIOps.feature(app).store.load_baselines().get(("shop", "/pay")) is not None
                          and AIOps.feature(app).store.load_baselines()[("shop", "/pay")].requests >= 40)
        app.failing = True
        hit(server.url, 20)
        assert wait_until(lambda: hooks.bodies), "no webhook arrived"  # no POST /aiops/analyze: background
        message = hooks.bodies[0]
        assert message["event"] == "opened" and message["severity"] == "critical", message["text"]
        assert message["root_cause"]["endpoint"] == "/pay"
        assert "INC-" in message["text"] and "/pay" in message["text"]
        incidents = requests.get(server.url + "/aiops/incidents", timeout=5).json()
        assert incidents["active_incidents"][0]["id"] == message["incident_id"]
        resolved = requests.post(f"{server.url}/aiops/incidents/{message['incident_id']}/resolve", timeout=5)
        assert resolved.status_code == 200
        assert wait_until(lambda: any(m["event"] == "resolved" for m in hooks.bodies))
        assert wait_until(lambda: requests.get(server.url + "/aiops/status", timeout=5)
                          .json()["notifications"]["sent"] >= 2)  # counted once the receiver's answer is in
    finally:
        AIOps.shutdown(app)
    assert not SCHEDULER.running(AIOps.job_id(app))


def test_a_failing_pass_never_reaches_the_app(pay_app, monkeypatch):
    app = pay_app(AIOPS_SCHEDULER=False)
    state = AIOps.state(app)
    monkeypatch.setattr(state, "pass_runner", lambda now_s=None: 1 / 0)
    state.background_pass()  # what the scheduler calls: logs, counts, returns
    assert state.failed_passes == 1 and "ZeroDivisionError" in state.last_error
    assert app.test_client().get("/pay").status_code == 200


def test_settings_come_from_the_environment(pay_app, monkeypatch):
    monkeypatch.setenv("AIOPS_WINDOW_S", "30")
    monkeypatch.setenv("AIOPS_SCHEDULER", "false")
    monkeypatch.setenv("AIOPS_WEBHOOK_URLS", "http://127.0.0.1:9/a,http://127.0.0.1:9/b")
    app = pay_app()
    state = AIOps.state(app)
    assert AIOps.feature(app).config.window_s == 30.0
    assert not SCHEDULER.running(AIOps.job_id(app))
    assert state.settings["AIOPS_WEBHOOK_URLS"] == ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
