"""Stored JSON read tolerantly: records written by another version (unknown fields, missing
optional ones) load; a record that cannot be read (broken JSON, a missing required field) is
skipped and logged once, and never stops an analysis pass, a triage ingest or a listing.

The rows are edited directly in a copy of the round-one store (``conftest.copy``), then today's
app runs on it with its clock at the fixture's time (``conftest.fixture_clock``).
"""
import json
import logging

import pytest

from aiops import AIOps
from aiops.analysis.baseline import Baseline
from aiops.analysis.incidents import Incident
from aiops.triage.records import AlertGroup, AlertRecord
from tests.aiops.store.round_one import ACTIVE_INCIDENT, RESOLVED_INCIDENT, edit_json, make_app, raw

BROKEN = '{"id": "cut off mid-wr'


def skipped_rows(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aiops" and "skipped the stored row" in r.getMessage()]


@pytest.fixture
def app_on(copy, fixture_clock):
    """``app_on()``: today's app on the (edited) copy; shut down after the test."""
    apps = []

    def start():
        apps.append(make_app(copy))
        return apps[-1]

    yield start
    for app in apps:
        AIOps.shutdown(app)


# -- the records --------------------------------------------------------------------------------------


def test_records_load_with_unknown_fields_and_without_optional_ones():
    incident = Incident("INC-1", "high", "active", "t", {"service": "shop", "endpoint": "/pay"}, [["shop", "/pay"]],
                        [{"type": "error_spike", "service": "shop", "endpoint": "/pay"}], 3, [], 1.0, 2.0)
    data = {**incident.to_dict(), "owner_team": "payments", "runbook": {"url": "x"}}
    for optional in ("timeline", "recurrence", "passes", "acknowledged_at"):
        del data[optional]
    assert Incident.from_dict(data) == incident
    with pytest.raises(ValueError, match="a stored Incident lacks first_detected, severity"):
        Incident.from_dict({k: v for k, v in data.items() if k not in ("severity", "first_detected")})
    with pytest.raises(ValueError, match="a stored incident root cause lacks endpoint"):
        Incident.from_dict({**data, "root_cause": {"service": "shop"}})
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        Incident.from_dict([1, 2])

    baseline = Baseline("shop", "/pay", requests=40, log_mean=2.5, seasonal={5: [1.0, 2.0, 3.0]})
    stored = json.loads(json.dumps({**baseline.to_dict(), "p99_ms": 80.0}))  # as the store keeps it
    assert stored["seasonal"] == {"5": [1.0, 2.0, 3.0]}
    assert Baseline.from_dict(stored) == baseline  # hour keys are ints again, p99_ms is dropped
    assert Baseline.from_dict({"service": "shop", "route": "/pay"}) == Baseline("shop", "/pay")
    with pytest.raises(ValueError, match="a stored Baseline lacks route"):
        Baseline.from_dict({"service": "shop"})
    with pytest.raises(ValueError, match="seasonal must map hours of the week"):
        Baseline.from_dict({"service": "shop", "route": "/pay", "seasonal": [1, 2]})

    group = AlertGroup("GRP-1", "open", 1.0, 2.0, alert_ids=["ALR-1"])
    assert AlertGroup.from_dict({"id": "GRP-1", "status": "open", "first_at": 1.0, "last_at": 2.0,
                                 "alert_ids": ["ALR-1"], "escalation": "none"}) == group
    with pytest.raises(ValueError, match="a stored AlertRecord lacks"):
        AlertRecord.from_dict({"id": "ALR-1"})


# -- a pass and the incidents API -------------------------------------------------------------------------


def test_a_pass_and_the_incidents_api_skip_what_cannot_be_read(copy, app_on, caplog):
    # round one's records, as a newer version (unknown fields) and an older one (no optional fields) wrote them
    edit_json(copy, "aiops_incidents", "id", RESOLVED_INCIDENT,
              lambda d: {**{k: v for k, v in d.items() if k not in ("timeline", "recurrence", "passes")},
                         "owner_team": "payments", "postmortem": {"status": "draft"}})
    edit_json(copy, "aiops_incidents", "id", ACTIVE_INCIDENT, lambda d: {**d, "labels": {"env": "prod"}})
    edit_json(copy, "aiops_baselines", "route", "/payment",
              lambda d: {**{k: v for k, v in d.items() if k not in ("first_seen_s", "seasonal")}, "p99_ms": 91.0})
    # and records nobody can read: broken JSON, a required field missing
    lacking = {k: v for k, v in json.loads(raw(copy, "SELECT data FROM aiops_incidents WHERE id = ?",
                                               (ACTIVE_INCIDENT,))[0][0]).items() if k != "root_cause"}
    for ident, data in (("INC-9-9", BROKEN), ("INC-9-10", json.dumps({**lacking, "id": "INC-9-10"}))):
        raw(copy, "INSERT INTO aiops_incidents VALUES (?, 'active', 'high', 'shop', '/inventory', 1796347500, "
                  "1796347500, ?)", (ident, data))
    raw(copy, "INSERT INTO aiops_baselines VALUES ('shop', '/broken', ?, 1796347500)", (BROKEN,))

    caplog.set_level(logging.WARNING, logger="aiops")
    app = app_on()
    client = app.test_client()
    client.get("/inventory").close()
    for _ in range(2):
        result = AIOps.analyze(app)
        assert result.skipped is None and AIOps.state(app).last_error is None
    assert result.new_spans == 0 and result.spans_in_window == 1

    listed = client.get("/aiops/incidents?status=all").get_json()
    ids = [i["id"] for i in listed["active_incidents"]]
    assert {RESOLVED_INCIDENT, ACTIVE_INCIDENT} <= set(ids) and not {"INC-9-9", "INC-9-10"} & set(ids)
    resolved = client.get(f"/aiops/incidents/{RESOLVED_INCIDENT}").get_json()
    assert resolved["status"] == "resolved" and resolved["timeline"] == [] and resolved["recurrence"] == {}
    assert client.get(f"/aiops/incidents/{ACTIVE_INCIDENT}").status_code == 200
    for unreadable in ("INC-9-9", "INC-9-10"):
        assert client.get(f"/aiops/incidents/{unreadable}").status_code == 404
    baselines = AIOps.feature(app, "analysis").store.load_baselines()
    assert ("shop", "/payment") in baselines and ("shop", "/broken") not in baselines
    assert baselines[("shop", "/payment")].requests > 0
    nodes = client.get("/aiops/dependencies").get_json()["nodes"]
    assert {"/payment", "/inventory", "/checkout"} <= {n["route"] for n in nodes}

    logged = skipped_rows(caplog)
    assert len(logged) == 3, logged  # once each, however often they were read
    assert any("INC-9-9 of aiops_incidents" in m and "JSONDecodeError" in m for m in logged)
    assert any("INC-9-10 of aiops_incidents" in m and "lacks root_cause" in m for m in logged)
    assert any("('shop', '/broken') of aiops_baselines" in m for m in logged)
    assert raw(copy, "SELECT data FROM aiops_incidents WHERE id = 'INC-9-9'") == [(BROKEN,)]  # left as it was


# -- triage -----------------------------------------------------------------------------------------------


def test_triage_ingest_and_listings_skip_what_cannot_be_read(copy, app_on, caplog):
    edit_json(copy, "aiops_alert_groups", "id", "GRP-1",
              lambda d: {**{k: v for k, v in d.items() if k not in ("team", "standalone", "incident_reason")},
                         "escalation_policy": "p1-pager"})
    edit_json(copy, "aiops_alerts", "id", "ALR-3",
              lambda d: {**{k: v for k, v in d.items() if k not in ("generator_url", "route_reason")},
                         "silenced_by": None})
    raw(copy, "INSERT INTO aiops_alert_groups VALUES ('GRP-99', 'open', 'P1', 1796347600, 1796347600, ?)", (BROKEN,))
    raw(copy, "INSERT INTO aiops_alerts VALUES ('ALR-99', 'firing', 'GRP-1', 'shop', 1796347600, 1796347600, "
              "1796347600, ?)", (BROKEN,))
    raw(copy, "INSERT INTO aiops_alerts VALUES ('ALR-98', 'firing', 'GRP-99', 'shop', 1796347600, 1796347600, "
              "1796347600, ?)", (json.dumps({"id": "ALR-98", "alert_name": "HalfWritten"}),))

    caplog.set_level(logging.WARNING, logger="aiops")
    client = app_on().test_client()
    before = {a["id"] for a in client.get("/aiops/alerts?status=all&limit=1000").get_json()["alerts"]}
    assert before == {f"ALR-{n}" for n in range(1, 9)}
    sent = client.post("/aiops/alerts", json=[
        {"alert_name": "HighErrorRate", "service": "shop", "severity": "critical", "message": "5xx again"},
        {"alert_name": "CacheMisses", "service": "shop", "severity": "warning", "message": "misses up"}])
    assert sent.status_code == 202, sent.get_json()
    outcomes = sent.get_json()["outcomes"]
    assert [(o["action"], o["group_id"], o["group_action"]) for o in outcomes] == [("created", "GRP-1", "joined")] * 2

    alerts = client.get("/aiops/alerts?status=all&limit=1000").get_json()["alerts"]
    assert before <= {a["id"] for a in alerts} and not {"ALR-98", "ALR-99"} & {a["id"] for a in alerts}
    assert len(alerts) >= 9
    groups = client.get("/aiops/alerts/groups?status=all").get_json()["groups"]
    assert {"GRP-1", "GRP-2", "GRP-3"} <= {g["id"] for g in groups} and "GRP-99" not in {g["id"] for g in groups}
    one = client.get("/aiops/alerts/groups/GRP-1")
    assert one.status_code == 200
    assert {"ALR-3", *(o["alert_id"] for o in outcomes)} <= set(one.get_json()["alert_ids"])
    assert client.get("/aiops/alerts/groups/GRP-99").status_code == 404
    stats = client.get("/aiops/alerts/stats")
    assert stats.status_code == 200 and stats.get_json()["alerts_received"] >= 9

    logged = skipped_rows(caplog)
    assert {m.split(" of ")[0].rsplit(" ", 1)[1] for m in logged} == {"GRP-99", "ALR-99", "ALR-98"}, logged
    assert len(logged) == 3


# -- SLOs ------------------------------------------------------------------------------------------------


def test_slo_reads_and_a_compute_skip_what_cannot_be_read(copy, app_on, caplog):
    (alert_id,) = raw(copy, "SELECT id FROM aiops_slo_alerts")[0]
    edit_json(copy, "aiops_slo_alerts", "id", alert_id, lambda d: {**d, "escalated_to": "sre"})
    raw(copy, "UPDATE aiops_slo_latest SET data = ? WHERE slo_id = 2", (BROKEN,))
    raw(copy, "INSERT INTO aiops_slo_alerts VALUES ('SLO-9-9', 1, 'shop', 'firing', 'page', 1796347600, "
              "1796347600, ?)", (BROKEN,))
    raw(copy, "INSERT INTO aiops_burn_history (slo_id, service, at, composite, remaining, risk, data) "
              "VALUES (1, 'shop', 1796347600, 1, 1, 'LOW', ?)", (BROKEN,))

    caplog.set_level(logging.WARNING, logger="aiops")
    client = app_on().test_client()
    slos = client.get("/aiops/slo").get_json()["slos"]
    assert [(s["name"], s["status"] is not None) for s in slos] == [("shop-availability", True),
                                                                     ("payment-latency", False)]
    assert client.get("/aiops/slo/shop").status_code == 200
    alerts = client.get("/aiops/slo-alerts?status=all").get_json()
    assert [a["id"] for a in alerts["alerts"]] == [alert_id] and alerts["alerts"][0]["escalated_to"] == "sre"
    burn = client.get("/aiops/burn/shop").get_json()
    assert burn["snapshot_count"] == 4
    assert client.get("/aiops/summary").status_code == 200
    assert client.get("/metrics").status_code == 200

    computed = client.post("/aiops/burn/compute")
    assert computed.status_code == 200 and computed.get_json()["slo_count"] == 2
    assert all(s["status"] is not None for s in client.get("/aiops/slo").get_json()["slos"])  # rewritten whole

    logged = skipped_rows(caplog)
    assert len(logged) == 3, logged
    assert {"2 of aiops_slo_latest", "SLO-9-9 of aiops_slo_alerts"} <= {m.split("row ")[1].split(" in ")[0]
                                                                       for m in logged}
