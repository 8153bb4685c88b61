"""A store written by round one's code (``tests/fixtures/round_one.db``, commit cda5ca0) opened by
today's app: every component's schema upgrades in place, and the data is kept and served.

Each test works on a copy in ``tmp_path`` (``conftest.copy``); the checked-in file is never opened.
The app's clock is set to a minute after the fixture was written (``conftest.fixture_clock``), so the
time-bounded reads (burn history, span retention, the SLO windows) see it as they did then, whatever the date.
"""
import json
import subprocess
import sys

import pytest

from aiops import AIOps
from aiops.cli import SCHEMAS
from telemetry.store import SpanStore
from tests.aiops.store.round_one import ACTIVE_INCIDENT, RESOLVED_INCIDENT, ROOT, make_app, raw

#: Every component's last version (``aiops schema`` lists the same components).
LATEST = {component: migrations[-1].version for component, migrations in SCHEMAS.items()}


def table_counts(path) -> dict[str, int]:
    names = [r[0] for r in raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: raw(path, f"SELECT count(*) FROM {n}")[0][0] for n in names if n != "schema_versions"}


@pytest.fixture
def started(copy, fixture_clock):
    """(app, client, what the round-one file held before today's code opened it)."""
    before = {
        "counts": table_counts(copy),
        "incidents": raw(copy, "SELECT id, status, root_service, root_route, data FROM aiops_incidents ORDER BY id"),
        "trace": raw(copy, "SELECT trace_id, count(*) FROM spans GROUP BY trace_id HAVING count(*) > 2 "
                           "ORDER BY trace_id LIMIT 1")[0],
        "alerts": raw(copy, "SELECT id, status, group_id FROM aiops_alerts ORDER BY id"),
        "groups": raw(copy, "SELECT id, status FROM aiops_alert_groups ORDER BY id"),
    }
    assert "schema_versions" not in {r[0] for r in raw(copy, "SELECT name FROM sqlite_master")}  # round one's file
    app = make_app(copy)
    yield app, app.test_client(), before
    AIOps.shutdown(app)


def test_every_component_is_at_its_latest_version_and_no_row_is_lost(started, copy):
    _app, _client, before = started
    versions = {c: v for c, v in raw(copy, "SELECT component, version FROM schema_versions")}
    assert versions == LATEST
    assert table_counts(copy) == before["counts"]
    assert before["counts"]["spans"] == 3240  # what the fixture's docstring promises is there
    assert {t for t, n in before["counts"].items() if n == 0} == {"aiops_process_stats"}


def test_incidents_are_served_with_their_ids_statuses_and_root_causes(started):
    _app, client, before = started
    listed = client.get("/aiops/incidents?status=all").get_json()
    assert listed["incident_count"] == 2
    by_id = {i["id"]: i for i in listed["active_incidents"]}
    assert sorted(by_id) == [row[0] for row in before["incidents"]]
    statuses = {}
    for ident, status, root_service, root_route, data in before["incidents"]:
        one = client.get(f"/aiops/incidents/{ident}")
        assert one.status_code == 200
        body = one.get_json()
        assert body["status"] == status == by_id[ident]["status"]
        assert (body["root_cause"]["service"], body["root_cause"]["endpoint"]) == (root_service, root_route)
        assert body["root_cause"] == json.loads(data)["root_cause"]
        assert body["timeline"] and body["trace_correlation"]["sample_traces"]
        statuses[root_route] = status
    assert statuses == {"/payment": "resolved", "/inventory": "active"}
    assert [i["id"] for i in client.get("/aiops/incidents").get_json()["active_incidents"]] == \
        [i for i, s, *_ in before["incidents"] if s == "active"]


def test_services_slos_burn_history_alerts_and_the_release_audit_are_served(started):
    _app, client, _before = started
    services = client.get("/aiops/services").get_json()["services"]
    assert [(s["name"], s["tier"], s["owner"], s["slo_count"]) for s in services] == [("shop", 1, "team-shop", 2)]
    slos = client.get("/aiops/slo").get_json()["slos"]
    assert [(s["name"], s["indicator"], s["target"]) for s in slos] == [
        ("shop-availability", "availability", 0.99), ("payment-latency", "latency", 0.95)]
    assert all(s["status"] is not None for s in slos)  # the latest snapshots of round one
    status = client.get("/aiops/slo/shop").get_json()
    assert status["slo_count"] == 2 and all(s["computed_at"] for s in status["slos"])

    burn = client.get("/aiops/burn/shop").get_json()
    assert burn["snapshot_count"] == 4 and burn["current"]["service_name"] == "shop"
    assert {h["slo_name"] for h in burn["history"]} == {"shop-availability", "payment-latency"}

    alerts = client.get("/aiops/slo-alerts?status=all").get_json()
    assert alerts["alert_count"] == 1
    alert = alerts["alerts"][0]
    assert (alert["slo_name"], alert["status"], alert["severity"]) == ("shop-availability", "firing", "page")

    audit = client.get("/aiops/release/shop/audit").get_json()["entries"]
    assert sorted((e["kind"], e["decision"]) for e in audit) == [
        ("decision", "approved"), ("decision", "blocked"), ("override", "approved")]
    assert any(e["data"].get("override", {}) and e["data"]["override"]["who"] == "alice" for e in audit)


def test_triage_alerts_groups_deployments_and_metrics_are_served(started):
    _app, client, before = started
    alerts = client.get("/aiops/alerts?status=all").get_json()
    assert sorted((a["id"], a["status"]) for a in alerts["alerts"]) == [(i, s) for i, s, _g in before["alerts"]]
    groups = client.get("/aiops/alerts/groups?status=all").get_json()
    assert sorted((g["id"], g["status"]) for g in groups["groups"]) == before["groups"]
    for ident, _status in before["groups"]:
        one = client.get(f"/aiops/alerts/groups/{ident}")
        assert one.status_code == 200 and one.get_json()["id"] == ident
    deployments = client.get("/aiops/deployments").get_json()
    assert [(d["id"], d["service"], d["version"]) for d in deployments["deployments"]] == [("DEP-1", "shop", "v1.2.3")]

    series = client.get("/aiops/metrics/series?service=shop&name=memory_bytes").get_json()
    assert series["point_count"] == 60 and series["points"][0]["labels"] == {"pod": "a"}
    names = client.get("/aiops/metrics/names").get_json()
    assert {(s["service"], s["name"]) for s in names["series"]} == {("shop", "memory_bytes"), ("shop", "cpu_percent")}


def test_spans_and_a_trace_are_served(started, copy):
    _app, client, before = started
    trace_id, spans = before["trace"]
    body = client.get(f"/aiops/traces/{trace_id}").get_json()
    assert body["trace_id"] == trace_id and body["span_count"] == spans and body["services"] == ["shop"]
    assert raw(copy, "SELECT count(*) FROM spans")[0][0] == 3240
    graph = client.get("/aiops/dependencies").get_json()
    assert graph["edges"] and {"/payment", "/inventory", "/checkout"} <= {n["route"] for n in graph["nodes"]}


def test_a_pass_an_slo_compute_and_new_spans_run_on_it(started, copy):
    app, client, _before = started
    response = client.get("/inventory")
    assert response.status_code == 200
    trace_id = response.headers["X-Trace-Id"]
    response.close()  # the span ends when the body is closed
    result = AIOps.analyze(app)  # flushes the new span, then one pass over today's window
    assert result.skipped is None and result.spans_in_window >= 1
    assert AIOps.state(app).last_error is None
    assert raw(copy, "SELECT count(*) FROM spans")[0][0] == 3241
    assert client.get(f"/aiops/traces/{trace_id}").get_json()["span_count"] == 1

    computed = client.post("/aiops/burn/compute")
    assert computed.status_code == 200
    body = computed.get_json()
    assert body["slo_count"] == 2 and len(body["snapshots"]) == 2
    # the new span is in the request counts (the pass's SLO hook rolled it up), added to round one's
    assert raw(copy, "SELECT sum(total) FROM aiops_request_totals")[0][0] == 3241
    assert raw(copy, "SELECT sum(total) FROM aiops_slo_minutes WHERE route = '/inventory'")[0][0] == \
        raw(copy, "SELECT count(*) FROM spans WHERE route = '/inventory'")[0][0]
    assert client.get("/aiops/incidents?status=all").get_json()["incident_count"] >= 2
    assert client.get("/aiops/burn/shop").get_json()["snapshot_count"] >= 4


def test_a_second_start_changes_no_version(started, copy):
    app, _client, _before = started
    recorded = raw(copy, "SELECT component, version, updated_at FROM schema_versions ORDER BY component")
    AIOps.shutdown(app)
    SpanStore.close_all(timeout=5.0)
    again = make_app(copy)
    try:
        assert again.test_client().get("/aiops/incidents?status=all").get_json()["incident_count"] == 2
        assert raw(copy, "SELECT component, version, updated_at FROM schema_versions ORDER BY component") == recorded
    finally:
        AIOps.shutdown(again)


def test_the_cli_reads_it(copy):
    result = subprocess.run([sys.executable, "-m", "aiops", "incidents", "--db", str(copy), "--status", "all",
                             "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["incident_count"] == 2
    assert sorted((i["id"], i["status"]) for i in body["incidents"]) == [
        (RESOLVED_INCIDENT, "resolved"), (ACTIVE_INCIDENT, "active")]
    versions = {c: v for c, v in raw(copy, "SELECT component, version FROM schema_versions")}
    assert versions["aiops.analysis"] == LATEST["aiops.analysis"] and versions["spans"] == LATEST["spans"]
