"""Incident webhooks, delivered to real HTTP receivers on loopback."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import unicodedata
import warnings
from datetime import datetime

import pytest
from flask import Flask

from aiops import notify as notify_module
from aiops.notify import WEBHOOK_CONFIG, WebhookNotifier, build_message, clean_text
from telemetry.config import read_config
from tests.aiops.helpers import Receiver

INCIDENT = {
    "id": "INC-20240501-0001",
    "severity": "high",
    "status": "open",
    "title": "Latency spike detected in /payment",
    "root_cause": {"endpoint": "/payment", "service": "shop", "confidence": 1.0,
                   "description": "p95 2040 ms vs baseline 180 ms"},
    "affected_endpoints": ["/payment", "/checkout"],
    "first_detected": "2024-05-01T12:00:00Z",
    "recurrence": {"count": 3, "window_days": 7},
    "anomalies": [{"type": "latency", "endpoint": "/payment", "current_ms": 2040.0, "baseline_ms": 180.0,
                   "deviation": 11.3, "error_ratio": 0.0}],
}


@pytest.fixture
def notifiers(live_server):
    """``notifiers(urls, **options)``: notifiers closed after the test, before the servers stop."""
    made = []

    def make(urls, **options):
        options.setdefault("backoff_s", 0.01)
        notifier = WebhookNotifier(urls, **options)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.close(timeout_s=2.0)


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


def aiops_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aiops" and r.levelno == logging.WARNING]


def test_message_reaches_every_url_with_text_and_structured_fields(live_server, notifiers):
    a, b = Receiver(live_server), Receiver(live_server)
    notifier = notifiers([a.url, b.url])
    notifier.notify("opened", INCIDENT)
    assert notifier.flush(5)
    assert notifier.stats() == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0, "queued": 0}
    for receiver in (a, b):
        (body,) = receiver.bodies
        assert receiver.request_headers[0]["Content-Type"] == "application/json"
        text = body["text"]
        assert text.startswith(":rotating_light: [HIGH] INC-20240501-0001 opened: Latency spike detected in /payment")
        assert "root cause /payment (confidence 100%), affected /payment, /checkout" in text
        assert "p95 2040 ms vs baseline 180 ms" in text and "seen 3 times in 7 days" in text
        assert len(text.splitlines()) == 2
        assert body["event"] == "opened"
        assert body["incident_id"] == INCIDENT["id"]
        for key in ("severity", "status", "title", "root_cause", "affected_endpoints", "first_detected"):
            assert body[key] == INCIDENT[key]
        assert body["incident"] == INCIDENT
        sent_at = datetime.fromisoformat(body["sent_at"].replace("Z", "+00:00"))
        assert sent_at.utcoffset().total_seconds() == 0
        assert abs(time.time() - sent_at.timestamp()) < 60


def test_each_event_has_its_own_emoji_and_unknown_events_are_dropped(caplog):
    emoji = {event: build_message(event, INCIDENT)["text"].split(" ")[0]
             for event in ("opened", "escalated", "acknowledged", "resolved")}
    assert len(set(emoji.values())) == 4
    with pytest.raises(ValueError, match="unknown incident event"):
        build_message("exploded", INCIDENT)
    notifier = WebhookNotifier(["http://127.0.0.1:9/hook"])
    notifier.notify("exploded", INCIDENT)  # never raises
    notifier.notify("opened", "not a dict")
    assert notifier.stats()["dropped"] == 2 and notifier.stats()["queued"] == 0
    assert any("cannot build" in m for m in aiops_warnings(caplog))
    notifier.close(0)


def test_dashboard_url_and_missing_optional_fields():
    incident = {key: INCIDENT[key] for key in ("id", "severity", "status", "title", "root_cause",
                                               "affected_endpoints", "first_detected")}
    incident["root_cause"] = {"endpoint": "/inventory", "service": "shop", "confidence": 0.87, "description": ""}
    message = build_message("resolved", incident, dashboard_url="https://ops.example/aiops?x=1&y=2")
    assert message["dashboard_url"] == "https://ops.example/aiops?x=1&y=2"
    assert "(confidence 87%)" in message["text"]
    assert message["text"].endswith("https://ops.example/aiops?x=1&amp;y=2")  # Slack escaping
    assert "seen" not in message["text"]


def test_500s_are_retried_with_backoff_then_sent(live_server, notifiers):
    receiver = Receiver(live_server, statuses=[500, 503])
    notifier = notifiers([receiver.url], retries=3, backoff_s=0.01)
    notifier.notify("escalated", INCIDENT)
    assert notifier.flush(5)
    assert len(receiver.bodies) == 3
    assert receiver.bodies[0] == receiver.bodies[2]  # the same message each time
    assert notifier.stats() == {"sent": 1, "failed": 0, "retried": 2, "dropped": 0, "queued": 0}


def test_429_is_retried_and_honours_retry_after(live_server, notifiers):
    receiver = Receiver(live_server, statuses=[429], headers={"Retry-After": "0.2"})
    notifier = notifiers([receiver.url], backoff_s=0.01)
    started = time.monotonic()
    notifier.notify("opened", INCIDENT)
    assert notifier.flush(5)
    assert time.monotonic() - started >= 0.2
    assert len(receiver.bodies) == 2 and notifier.stats()["retried"] == 1 and notifier.stats()["sent"] == 1


def test_400_is_final_and_logged_without_the_secret(live_server, notifiers, caplog):
    receiver = Receiver(live_server, statuses=[400, 400])
    notifier = notifiers([receiver.url], retries=3)
    notifier.notify("opened", INCIDENT)
    assert notifier.flush(5)
    assert len(receiver.bodies) == 1
    assert notifier.stats() == {"sent": 0, "failed": 1, "retried": 0, "dropped": 0, "queued": 0}
    (message,) = aiops_warnings(caplog)
    assert "HTTP 400" in message and "'nope'" in message and "not retried" in message
    assert "INC-20240501-0001 opened" in message
    assert "secret-token" not in message and "127.0.0.1" in message


def test_unreachable_url_fails_after_retries_without_blocking_notify(notifiers, caplog):
    notifier = notifiers([closed_port_url()], retries=2, backoff_s=0.01, timeout_s=1)
    started = time.monotonic()
    notifier.notify("opened", INCIDENT)
    assert time.monotonic() - started < 0.5
    assert notifier.flush(5)
    assert notifier.stats() == {"sent": 0, "failed": 1, "retried": 2, "dropped": 0, "queued": 0}
    (message,) = aiops_warnings(caplog)
    assert "ConnectionError" in message and "3 attempt(s)" in message


def test_a_dead_url_does_not_delay_a_healthy_one(live_server, notifiers):
    healthy = Receiver(live_server)
    notifier = notifiers([closed_port_url(), healthy.url], retries=5, backoff_s=0.5)
    notifier.notify("opened", INCIDENT)
    assert healthy.arrived.wait(2)
    assert not notifier.flush(0.05)  # the dead URL is still backing off
    started = time.monotonic()
    notifier.close(timeout_s=0.1)  # ends the backoff wait at once
    assert time.monotonic() - started < 1.0
    stats = notifier.stats()
    assert stats["sent"] == 1 and stats["failed"] == 1


def test_notify_returns_at_once_while_the_receiver_is_slow(live_server, notifiers):
    receiver = Receiver(live_server, delay_s=1.0)
    notifier = notifiers([receiver.url])
    started = time.monotonic()
    for _ in range(3):
        notifier.notify("opened", INCIDENT)
    assert time.monotonic() - started < 0.5
    assert receiver.arrived.wait(2)
    started = time.monotonic()
    notifier.notify("resolved", INCIDENT)  # while a delivery is in flight
    assert time.monotonic() - started < 0.5
    notifier.close(timeout_s=0.1)  # do not wait for all four slow answers


def test_full_queue_drops_and_counts(live_server, notifiers, caplog):
    gate = threading.Event()
    receiver = Receiver(live_server, gate=gate)
    notifier = notifiers([receiver.url], queue_size=2)
    try:
        notifier.notify("opened", INCIDENT)
        assert receiver.arrived.wait(2)  # the worker holds message 1; the queue is empty
        for _ in range(9):
            notifier.notify("escalated", INCIDENT)
        assert notifier.stats()["dropped"] == 7 and notifier.stats()["queued"] == 2
        assert not notifier.flush(0.05)
    finally:
        gate.set()
    assert notifier.flush(5)
    assert notifier.stats() == {"sent": 3, "failed": 0, "retried": 0, "dropped": 7, "queued": 0}
    full = [m for m in aiops_warnings(caplog) if "queue full" in m]
    assert len(full) == 1  # rate-limited: one warning for seven drops


def test_control_characters_and_huge_strings_are_cleaned_in_text(live_server, notifiers):
    hostile = dict(INCIDENT)
    hostile["title"] = "Boom\n\r\x00\x1b[31m<!channel>\u202e\u2028 &" + "A" * 100_000
    hostile["root_cause"] = {"endpoint": "/pay\tment\x07", "service": "shop", "confidence": float("nan"),
                             "description": "x" * 1_000_000 + "\nSECOND"}
    hostile["affected_endpoints"] = [f"/e{i}\n" for i in range(50)]
    receiver = Receiver(live_server)
    notifier = notifiers([receiver.url])
    notifier.notify("opened", hostile)
    assert notifier.flush(5)
    (body,) = receiver.bodies
    text = body["text"]
    first, second = text.split("\n")
    for line in (first, second):
        assert not [ch for ch in line if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
    assert "Boom [31m&lt;!channel&gt; &amp;AAA" in first and "<!channel>" not in text
    assert "root cause /pay ment, affected /e0, /e1" in first
    assert "confidence" not in first  # NaN confidence is left out
    assert "/e9, (+40 more)" not in first and "/e9 (+40 more)" in first
    assert "SECOND" not in text and "…" in first and "…" in second
    assert len(text) < 4 * notify_module.MAX_FIELD_CHARS + 20 * notify_module.MAX_ENDPOINTS_IN_TEXT
    assert body["title"] == hostile["title"]  # structured fields are the incident's, untouched
    assert body["root_cause"]["confidence"] is None  # NaN is not JSON


def test_clean_text_caps_and_escapes():
    assert clean_text("a\u200bb\u202ec\td", 10) == "abc d"
    assert clean_text("x" * 50, 10) == "x" * 9 + "…"
    assert clean_text(None) == "" and clean_text(42) == "42"
    assert clean_text("<@U123> & co") == "&lt;@U123&gt; &amp; co"


def test_config_defaults_and_validation_name_the_key_and_the_bad_url(monkeypatch):
    for key in WEBHOOK_CONFIG:
        monkeypatch.delenv(key.name, raising=False)
        assert key.doc and key.unit
    settings = read_config(Flask("defaults"), WEBHOOK_CONFIG)
    assert settings == {"AIOPS_WEBHOOK_URLS": (), "AIOPS_WEBHOOK_TIMEOUT_S": 5.0, "AIOPS_WEBHOOK_RETRIES": 3,
                        "AIOPS_WEBHOOK_BACKOFF_S": 1.0, "AIOPS_WEBHOOK_QUEUE_SIZE": 1000}
    notifier = WebhookNotifier.from_config(settings)
    assert (notifier.urls, notifier.timeout_s, notifier.retries, notifier.backoff_s, notifier.queue_size) == \
        ((), 5.0, 3, 1.0, 1000)

    monkeypatch.setenv("AIOPS_WEBHOOK_URLS", " https://hooks.example/a , http://10.0.0.1:8080/b ")
    monkeypatch.setenv("AIOPS_WEBHOOK_RETRIES", "0")
    settings = read_config(Flask("env"), WEBHOOK_CONFIG)
    assert settings["AIOPS_WEBHOOK_URLS"] == ("https://hooks.example/a", "http://10.0.0.1:8080/b")
    notifier = WebhookNotifier.from_config(settings)
    assert notifier.urls == settings["AIOPS_WEBHOOK_URLS"] and notifier.retries == 0
    notifier.close(0)

    for name, value, expected in [
        ("AIOPS_WEBHOOK_URLS", ["https://ok.example/x", "ftp://files.example/y"], "'ftp://files.example/y'"),
        ("AIOPS_WEBHOOK_URLS", "hooks.example/x", "'hooks.example/x'"),
        ("AIOPS_WEBHOOK_URLS", ["https:///nohost"], "'https:///nohost'"),
        ("AIOPS_WEBHOOK_URLS", ["http://h.example:99999/"], "'http://h.example:99999/'"),
        ("AIOPS_WEBHOOK_TIMEOUT_S", 0, "must be a number > 0"),
        ("AIOPS_WEBHOOK_RETRIES", -1, "must be an integer >= 0"),
        ("AIOPS_WEBHOOK_RETRIES", "1.5", "must be an integer >= 0"),
        ("AIOPS_WEBHOOK_BACKOFF_S", -0.5, "must be a number >= 0"),
        ("AIOPS_WEBHOOK_QUEUE_SIZE", 0, "must be an integer >= 1"),
    ]:
        app = Flask("bad")
        app.config[name] = value
        with pytest.raises(ValueError) as info:
            read_config(app, WEBHOOK_CONFIG)
        assert str(info.value).startswith(name + " ") and expected in str(info.value), str(info.value)
    with pytest.raises(ValueError, match="urls .*'ftp://x'"):
        WebhookNotifier(["ftp://x"])
    with pytest.raises(ValueError, match="timeout_s must be a number > 0"):
        WebhookNotifier(["http://x.example"], timeout_s=0)


def test_no_urls_means_no_thread_and_no_op():
    before = {t.ident for t in threading.enumerate()}
    notifier = WebhookNotifier([])
    for _ in range(3):
        notifier.notify("opened", INCIDENT)
    assert {t.ident for t in threading.enumerate()} == before
    assert not notifier.enabled
    assert notifier.stats() == {"sent": 0, "failed": 0, "retried": 0, "dropped": 0, "queued": 0}
    assert notifier.flush(0)
    notifier.close(0)


def test_worker_starts_lazily_and_close_drops_later_messages(live_server, notifiers):
    receiver = Receiver(live_server)
    notifier = notifiers([receiver.url])
    assert not [t for t in threading.enumerate() if t.name.startswith("aiops-webhook")]
    notifier.notify("opened", INCIDENT)
    assert notifier.flush(5)
    notifier.close(1)
    notifier.notify("resolved", INCIDENT)
    assert notifier.stats() == {"sent": 1, "failed": 0, "retried": 0, "dropped": 1, "queued": 0}
    assert len(receiver.bodies) == 1


def test_a_dead_worker_is_restarted(live_server, notifiers, monkeypatch):
    receiver = Receiver(live_server)
    notifier = notifiers([receiver.url])
    notifier.notify("opened", INCIDENT)
    assert notifier.flush(5)
    channel = notifier._channels[0]
    with notifier._cond:  # make the worker return as if it had died
        notifier._stopping = True
        notifier._cond.notify_all()
    channel.thread.join(2)
    assert not channel.thread.is_alive()
    notifier._stopping = False
    notifier.notify("resolved", INCIDENT)
    assert notifier.flush(5)
    assert [b["event"] for b in receiver.bodies] == ["opened", "resolved"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_starts_its_own_worker_and_does_not_resend(live_server, notifiers):
    gate = threading.Event()
    receiver = Receiver(live_server, gate=gate)
    notifier = notifiers([receiver.url])
    try:
        notifier.notify("opened", INCIDENT)
        assert receiver.arrived.wait(2)
        notifier.notify("escalated", INCIDENT)  # queued in the parent at fork time
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a multi-threaded process
            pid = os.fork()
        if pid == 0:  # the child: deliver one message of its own, then report
            code = 1
            try:
                gate.set()
                incident = dict(INCIDENT, id="INC-CHILD")
                notifier.notify("resolved", incident)
                ok = notifier.flush(5)
                stats = notifier.stats()
                code = 0 if ok and stats["queued"] == 0 and notifier._channels[0].thread.is_alive() else 2
            finally:
                os._exit(code)
    finally:
        gate.set()
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done and os.waitstatus_to_exitcode(status) == 0
    assert notifier.flush(5)
    ids_events = sorted((b["incident_id"], b["event"]) for b in receiver.bodies)
    assert ids_events == [("INC-20240501-0001", "escalated"), ("INC-20240501-0001", "opened"),
                          ("INC-CHILD", "resolved")]


def test_body_is_a_snapshot_taken_at_notify_time(live_server, notifiers):
    gate = threading.Event()
    receiver = Receiver(live_server, gate=gate)
    notifier = notifiers([receiver.url])
    incident = json.loads(json.dumps(INCIDENT))
    try:
        notifier.notify("opened", incident)
        assert receiver.arrived.wait(2)
        notifier.notify("escalated", incident)
        incident["severity"] = "critical"  # the engine mutates its incident afterwards
    finally:
        gate.set()
    assert notifier.flush(5)
    assert [b["severity"] for b in receiver.bodies] == ["high", "high"]
