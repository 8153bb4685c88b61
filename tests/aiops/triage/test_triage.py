"""Alert triage algorithms: parsing, dedup, classification, correlation, enrichment, change risk, capacity."""
from datetime import datetime, timezone

import pytest

from aiops.advisors.capacity import AdvisorConfig, analyse, observed_metrics, pods_for, slope_per_day
from aiops.advisors.change_risk import RiskContext, parse_change, parse_deploy_time, score_change
from aiops.analysis.rca import DependencyGraph
from aiops.triage.classify import CLASSIFIERS, ClassifyContext, classify, get_classifier
from aiops.triage.correlate import TriageConfig, link_incident, triage
from aiops.triage.enrich import (
    DEFAULT_RUNBOOKS_DIR,
    RoutingTable,
    RunbookIndex,
    brief_facts,
    related_deploys,
    runbook_query,
    write_brief,
)
from aiops.triage.intake import Alert, alerts_from_incident, parse_alertmanager, parse_raw_alerts
from telemetry.errors import PayloadError
from telemetry.timefmt import parse_time_field as parse_time
from tests.aiops.triage.helpers import AUTH, PAYMENT, PRODUCT_ALERTS

T0 = parse_time("2024-10-15T14:23:00Z", "t")


class Pipeline:
    """Open records and groups kept between batches, as the store would."""

    def __init__(self, config=None, **kwargs):
        self.records, self.groups, self.n = {}, {}, 0
        self.config = config or TriageConfig()
        self.kwargs = kwargs

    def new_id(self, kind):
        self.n += 1
        return f"{kind}-{self.n}"

    def feed(self, alerts, now_s=T0):
        result = triage(alerts, [r for r in self.records.values()],
                        [g for g in self.groups.values() if g.status == "open"], self.config, now_s, self.new_id,
                        **self.kwargs)
        self.records.update({r.id: r for r in result.records})
        self.groups.update({g.id: g for g in result.groups})
        return result

    def groups_by_names(self):
        return sorted(sorted(self.records[a].alert_name for a in g.alert_ids) for g in self.groups.values())


def raw(name, service, at_s=0.0, severity="critical", **extra):
    return Alert(alert_name=name, service=service, severity=severity, message=extra.pop("message", name),
                 at=T0 + at_s, **extra)


# -- intake --------------------------------------------------------------------------

def am_payload(**overrides):
    alert = {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "checkout",
                                            "severity": "critical", "namespace": "shop"},
             "annotations": {"summary": "5xx above 5%"}, "startsAt": "2024-10-15T14:23:00.123456789Z",
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "abc123"}
    alert.update(overrides)
    return {"version": "4", "status": "firing", "receiver": "aiops", "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {"alertname": "HighErrorRate"}, "commonAnnotations": {}, "externalURL": "http://am",
            "groupKey": "{}:{}", "truncatedAlerts": 0, "alerts": [alert]}


def test_alertmanager_payload_becomes_alerts():
    [alert] = parse_alertmanager(am_payload(), T0)
    assert (alert.alert_name, alert.service, alert.severity, alert.fingerprint) == \
        ("HighErrorRate", "checkout", "critical", "abc123")
    assert alert.message == "5xx above 5%" and alert.at == pytest.approx(T0 + 0.123456)
    assert alert.ends_at is None and alert.source == "alertmanager" and alert.labels["namespace"] == "shop"


@pytest.mark.parametrize("change, field, says", [
    ({"version": "3"}, "version", "version 4"),
    ({"alerts": []}, "alerts", "non-empty list"),
    ({"alerts": [{"status": "burning"}]}, "alerts[0].status", "firing, resolved"),
    ({"alerts": [{"status": "firing", "labels": {}, "startsAt": "2024-10-15T14:23:00Z"}]},
     "alerts[0].labels.alertname", "alertname"),
    ({"alerts": [{"status": "firing", "labels": {"alertname": "X"}, "startsAt": "yesterday"}]},
     "alerts[0].startsAt", "ISO 8601"),
    ({"commonLabels": {"a": ["list"]}}, "commonLabels.a", "strings"),
])
def test_bad_alertmanager_payloads_name_the_field(change, field, says):
    payload = am_payload()
    payload.update(change)
    with pytest.raises(PayloadError) as err:
        parse_alertmanager(payload, T0)
    assert err.value.field == field and says in err.value.detail


def test_raw_alert_validation_names_field_and_valid_values():
    alerts = parse_raw_alerts(PRODUCT_ALERTS, T0)
    assert [a.alert_name for a in alerts][:2] == ["ErrorRateHigh", "PodCrashLoopBackOff"] and alerts[0].value == 4.7
    with pytest.raises(PayloadError) as err:
        parse_raw_alerts([PRODUCT_ALERTS[0], {**PRODUCT_ALERTS[1], "severity": "apocalyptic"}], T0)
    assert err.value.field == "[1].severity" and "critical" in err.value.detail and "warning" in err.value.detail
    with pytest.raises(PayloadError) as err:
        parse_raw_alerts({"service": "x", "severity": "info"}, T0)
    assert err.value.field == "alert.alert_name"
    with pytest.raises(PayloadError) as err:
        parse_raw_alerts({**PRODUCT_ALERTS[0], "colour": "red"}, T0)
    assert "valid fields" in err.value.detail
    with pytest.raises(PayloadError):
        parse_raw_alerts([], T0)


# -- dedup and lifecycle ---------------------------------------------------------------

def test_repeats_within_the_window_are_counted_once():
    p = Pipeline()
    p.feed([raw("HighErrorRate", "checkout", 0, labels={"route": "/pay"}),
            raw("HighErrorRate", "checkout", 60, labels={"route": "/pay"}),
            raw("HighErrorRate", "checkout", 200, labels={"route": "/pay"}),
            raw("HighErrorRate", "checkout", 30, labels={"route": "/cart"})])  # other label set: another alert
    records = sorted(p.records.values(), key=lambda r: r.count)
    assert [r.count for r in records] == [1, 3]
    assert records[1].first_seen == T0 and records[1].last_seen == T0 + 200
    # the window slides from the last sighting: 200 + 299 is still the same alert, 200 + 301 after that is not
    p.feed([raw("HighErrorRate", "checkout", 499, labels={"route": "/pay"})])
    assert records[1].count == 4
    p.feed([raw("HighErrorRate", "checkout", 801, labels={"route": "/pay"})])
    assert records[1].status == "expired" and len(p.records) == 3


def test_fingerprint_identifies_an_alert_even_when_labels_change():
    p = Pipeline()
    p.feed([raw("A", "s", 0, fingerprint="f1", labels={"x": "1"}), raw("A", "s", 10, fingerprint="f1",
                                                                       labels={"x": "2"})])
    assert [r.count for r in p.records.values()] == [2]


def test_resolved_alert_closes_its_counterpart_and_the_group():
    p = Pipeline()
    p.feed([raw("HighErrorRate", "checkout", 0, fingerprint="f1"), raw("HighLatency", "checkout", 5, fingerprint="f2")])
    [group] = p.groups.values()
    out = p.feed([raw("HighErrorRate", "checkout", 100, fingerprint="f1", status="resolved")])
    assert out.outcomes[0]["action"] == "resolved" and group.status == "open"
    p.feed([raw("HighLatency", "checkout", 120, fingerprint="f2", status="resolved")])
    assert group.status == "resolved" and group.resolved_at == T0 + 120
    assert {r.status for r in p.records.values()} == {"resolved"}
    ignored = p.feed([raw("Nope", "checkout", 130, status="resolved")])
    assert ignored.outcomes[0]["action"] == "ignored" and len(p.records) == 2


def test_alerts_never_resolved_expire_and_their_group_resolves():
    from aiops.triage.correlate import expire_stale
    p = Pipeline()
    p.feed([raw("HighErrorRate", "checkout", 0, fingerprint="f1"), raw("HighLatency", "checkout", 5, fingerprint="f2")])
    p.feed([raw("HighLatency", "checkout", 200, fingerprint="f2")], now_s=T0 + 200)  # a repeat of f2
    [group] = p.groups.values()
    records = list(p.records.values())
    stale, changed = expire_stale(records, [group], 3600, T0 + 3650)  # f1 silent 3650 s; f2 only 3450 s
    assert [r.alert_name for r in stale] == ["HighErrorRate"] and changed == [group] and group.status == "open"
    stale, changed = expire_stale(records, [group], 3600, T0 + 3900)
    assert [r.alert_name for r in stale] == ["HighLatency"] and group.status == "resolved"
    assert group.resolved_at == T0 + 200  # the last sighting, not the moment we gave up
    assert {r.status for r in records} == {"expired"}
    assert expire_stale(records, [group], 3600, T0 + 9000) == ([], [])


# -- classification ---------------------------------------------------------------------

def test_rules_classify_from_severity_patterns_tier_and_burn_rate():
    ctx = ClassifyContext(tiers={"payment-gateway": 1, "search": 3})
    c = classify(raw("ErrorRateHigh", "payment-gateway"), ctx)
    assert (c.priority, c.category, c.users_affected) == ("P1", "degradation", "many")
    assert any("tier-1" in r for r in c.reasons)
    assert classify(raw("ErrorRateHigh", "search"), ctx).priority == "P3"
    assert classify(raw("InstanceDown", "orders"), ctx).priority == "P1"
    assert classify(raw("InstanceDown", "orders", severity="warning"), ctx).priority == "P2"
    cert = classify(raw("CertExpiryWarning", "auth", severity="critical"), ctx)
    assert (cert.priority, cert.category, cert.standalone) == ("P3", "security", True)
    burn = classify(raw("SLOBurnRateHigh", "orders", severity="warning", value=15.0), ctx)
    assert burn.priority == "P1" and any("burn rate 15x" in r for r in burn.reasons)
    assert classify(raw("Disk", "orders", status="resolved"), ctx).priority == "P4"
    assert classify(raw("Whatever", "orders", severity="info"), ctx).priority == "P4"


def test_refinement_is_validated_and_never_lowers_a_p1():
    ctx = ClassifyContext(tiers={"payment-gateway": 1})
    seen = []

    def lower(facts):
        seen.append(facts)
        return {"priority": "P3", "category": "info", "users_affected": "few", "confidence": 0.9, "reason": "meh"}
    c = classify(raw("ErrorRateHigh", "payment-gateway"), ctx, refine=lower)
    assert c.priority == "P1" and c.source == "refined" and c.category == "info"
    assert any("never lowered" in r for r in c.reasons)
    assert seen[0]["rules"]["priority"] == "P1" and seen[0]["service_tier"] == 1
    raised = classify(raw("LatencyHigh", "orders", severity="warning"), ctx, refine=lambda f: {
        "priority": "P2", "category": "degradation", "users_affected": "many", "confidence": 0.8})
    assert raised.priority == "P2"
    bad = classify(raw("LatencyHigh", "orders", severity="warning"), ctx, refine=lambda f: {"priority": "P0"})
    assert bad.priority == "P3" and bad.source == "rules" and any("refinement ignored" in r for r in bad.reasons)


def test_classifier_registry_lists_valid_names():
    assert set(CLASSIFIERS) == {"rules", "severity"}
    with pytest.raises(ValueError, match="valid: rules, severity"):
        get_classifier("magic")


# -- correlation ---------------------------------------------------------------------------

def test_product_example_two_groups_and_the_certificate_stays_alone():
    p = Pipeline(route=RoutingTable.from_file(None).route)
    p.feed(parse_raw_alerts(PRODUCT_ALERTS, T0))
    assert p.groups_by_names() == [["CertExpiryWarning"],
                                   ["ErrorRateHigh", "LatencyP99High", "PodCrashLoopBackOff", "PodCrashLoopBackOff"]]
    big = max(p.groups.values(), key=lambda g: len(g.alert_ids))
    assert big.priority == "P2" and big.team == "platform"
    assert [d["action"] for d in big.decisions] == ["opened", "joined", "joined", "joined"]
    assert "known pattern" in big.decisions[1]["reason"] and "payment-gateway" in big.decisions[1]["reason"]
    cert = min(p.groups.values(), key=lambda g: len(g.alert_ids))
    assert "stays in its own group" in cert.decisions[0]["reason"] and cert.team == "identity"


def test_dependency_graph_links_a_caller_timeout_with_callee_latency():
    graph = DependencyGraph(edges={(("checkout", "/checkout"), ("payment", "/payment")): [10, 0, 5.0]})
    alerts = [raw("UpstreamTimeout", "checkout", 0), raw("LatencyP99High", "payment", 20, severity="warning")]
    linked = Pipeline(edges=graph)
    linked.feed(alerts)
    assert len(linked.groups) == 1
    [group] = linked.groups.values()
    assert "trace dependency: checkout calls payment" in group.decisions[1]["reason"]
    alone = Pipeline()
    alone.feed([raw("UpstreamTimeout", "checkout", 0), raw("LatencyP99High", "payment", 20, severity="warning")])
    assert len(alone.groups) == 2
    assert "no open group" in list(alone.groups.values())[1].decisions[0]["reason"]


def test_same_namespace_groups_and_time_separates():
    p = Pipeline()
    p.feed([raw("HighErrorRate", "a", 0, labels={"namespace": "ns"}), raw("QueueBacklog", "b", 30,
                                                                          labels={"namespace": "ns"}),
            raw("HighErrorRate", "a", 5000, labels={"namespace": "ns", "x": "later"})])
    assert len(p.groups) == 2
    first = min(p.groups.values(), key=lambda g: g.first_at)
    assert "same namespace ns" in first.decisions[1]["reason"]


def test_incident_link_and_engine_incidents_become_alerts():
    incident = {"id": "INC-1-1", "anomalies": [
        {"type": "error_spike", "service": "shop", "endpoint": "/pay", "severity": "critical",
         "description": "errors 60%", "error_ratio": 0.6, "current_ms": 10.0}]}
    alerts = alerts_from_incident("opened", incident, T0)
    assert alerts[0].alert_name == "AIOpsErrorSpike" and alerts[0].labels["incident_id"] == "INC-1-1"
    p = Pipeline()
    p.feed(alerts)
    [group] = p.groups.values()
    assert group.incident_id == "INC-1-1"
    p.feed(alerts_from_incident("resolved", incident, T0 + 60))
    assert group.status == "resolved"
    q = Pipeline(incidents=[{"id": "INC-9", "services": ["shop"], "first_s": T0 - 30, "last_s": T0 + 10}])
    q.feed([raw("HighLatency", "shop", 100)])
    assert list(q.groups.values())[0].incident_id == "INC-9"
    assert link_incident(list(q.groups.values())[0], [{"id": "INC-8", "services": ["other"], "first_s": T0,
                                                       "last_s": T0}], 600) is None


# -- enrichment ------------------------------------------------------------------------------

def test_runbooks_ranked_routing_and_brief_from_facts(tmp_path):
    index = RunbookIndex.from_folder(DEFAULT_RUNBOOKS_DIR)
    p = Pipeline(route=RoutingTable.from_file(None).route)
    p.feed(parse_raw_alerts(PRODUCT_ALERTS, T0))
    big = max(p.groups.values(), key=lambda g: len(g.alert_ids))
    members = [p.records[a] for a in big.alert_ids]
    books = index.search(runbook_query(members))
    assert books[0]["path"] == "oomkilled-crashloop.md" and books[0]["first_step"].startswith("Confirm")
    cert = index.search("CertExpiryWarning TLS certificate expires in 14 days")
    assert cert[0]["path"] == "tls-certificate-expiry.md"
    deploys = related_deploys(big, [{"id": "DEP-1", "service": "payment-gateway", "version": "v2.3.1",
                                     "deployed_at": T0 - 1200},
                                    {"id": "DEP-2", "service": "auth-service", "version": "v9",
                                     "deployed_at": T0 - 60}], 7200)
    assert [d["version"] for d in deploys] == ["v2.3.1"]
    text = write_brief(brief_facts(big, members, deploys, books, T0 + 10))
    assert text.startswith("🟠 P2 — payment-gateway") and "PodCrashLoopBackOff x2" in text
    assert "Related to deploy v2.3.1 of payment-gateway, 20 minutes ago" in text
    assert "runbooks/oomkilled-crashloop.md" in text and "2 pods" in text
    table = RoutingTable.from_dict({"default_team": "ops", "routes": [{"match": {"service": "/^pay/"}, "team": "p"}]})
    assert table.route(raw("X", "payments")) == ("p", "route 0 matched service=payments")
    assert table.route(raw("X", "auth"))[0] == "ops"
    bad = tmp_path / "r.json"
    bad.write_text('{"routes": [{"team": "x"}]}')
    with pytest.raises(ValueError, match="routes\\[0\\]"):
        RoutingTable.from_file(str(bad))


# -- change risk -----------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc).timestamp()  # a Tuesday


def risk(ctx=None, **change):
    body = {"service": "payment-gateway", "change_type": "deployment", "description": "Add batch reconciliation job",
            "files_changed": 12, "tests_added": 3, "rollback_plan": "kubectl rollout undo",
            "deploy_time": "Tuesday 14:00 EST", **change}
    return score_change(parse_change(body, NOW), ctx or RiskContext())


def test_change_risk_factors_and_recommendations():
    base = risk()
    assert 1 <= base["risk_score"] <= 10 and base["recommendation"] == "GO with monitoring"
    assert {f["factor"] for f in base["risk_factors"]} >= {"change_type", "change_size", "deploy_timing"}
    assert any("peak hours" in f["detail"] for f in base["risk_factors"])
    friday = risk(deploy_time="Friday 17:30 EST")
    assert any("Friday evening" in f["detail"] for f in friday["risk_factors"])
    risky = risk(files_changed=80, tests_added=0, rollback_plan="", change_type="database_migration",
                 deploy_time="Friday 18:00 EST")
    assert risky["risk_score"] >= 9 and risky["recommendation"] == "NO-GO"
    assert "Write a rollback plan" in risky["monitoring_checklist"][-1] or any(
        "rollback plan" in item for item in risky["monitoring_checklist"])
    small = risk(files_changed=1, tests_added=1, description="typo", deploy_time="Wednesday 07:00 UTC",
                 change_type="feature_flag")
    assert small["recommendation"] == "GO" and small["risk_score"] <= 3
    budget = risk(files_changed=1, tests_added=1, description="typo", deploy_time="Wednesday 07:00 UTC",
                  error_budget_remaining=-0.1)
    assert budget["recommendation"] == "NO-GO" and budget["overrides"] == ["error budget exhausted"]
    busy = risk(RiskContext(open_incidents=[{"id": "INC-1", "severity": "critical"}],
                            baseline={"error_ratio": 0.002, "p95_ms": 180.0}),
                files_changed=1, tests_added=1, description="typo", deploy_time="Wednesday 07:00 UTC")
    assert busy["recommendation"] == "DELAY" and "INC-1" in busy["overrides"][0]
    assert any("baseline 0.20%" in item for item in busy["monitoring_checklist"])


def test_deploy_time_formats():
    local, at = parse_deploy_time("Tuesday 14:00 EST", NOW)
    assert local.weekday() == 1 and local.hour == 14 and at == NOW + 7 * 3600
    local, _ = parse_deploy_time("2026-11-27T18:00:00+01:00", NOW)
    assert local.weekday() == 4 and local.hour == 18
    with pytest.raises(PayloadError, match="time zone"):
        parse_deploy_time("Tuesday 14:00 XYZ", NOW)
    with pytest.raises(PayloadError) as err:
        parse_change({"service": "s", "change_type": "yolo"}, NOW)
    assert err.value.field == "change_type" and "database_migration" in err.value.detail


# -- capacity ---------------------------------------------------------------------------------


def test_capacity_headroom_trend_and_concrete_recommendations():
    out = analyse({"services": [PAYMENT, AUTH]}, AdvisorConfig())
    pay, auth = out["services"]
    memory = next(r for r in pay["resources"] if r["resource"] == "memory")
    # 95% peak growing 12%/7 days of itself: 95 * 0.12 / 7 = 1.63 points a day -> 5 / 1.63 = 3.1 days to 100%
    assert memory["headroom_pct"] == 5.0 and memory["days_to_limit"] == pytest.approx(3.1, abs=0.05)
    urgent = [r for r in pay["recommendations"] if r["level"] == "URGENT"]
    assert any(r["resource"] == "memory" and "scale from 5 to 7 pods" in r["action"] for r in urgent)
    planned = [r["action"] for r in pay["recommendations"] if r["level"] == "PLANNED"]
    # Black Friday: memory peak 95% x 3 = 285% of today's 5 pods at a 70% target -> ceil(5 * 2.85 / 0.7) = 21
    assert any("scale from 5 to 21 pods" in a and "in 42 days" in a for a in planned)
    assert pay["status"] == "URGENT" and auth["status"] in ("WATCH", "OK")
    assert out["summary"]["counts"]["URGENT"] >= 1 and out["summary"]["actions"][0]["service"] == "payment-gateway"
    with pytest.raises(PayloadError) as err:
        analyse({"service": "x", "current": {"pods": 0}}, AdvisorConfig())
    assert err.value.field == "service_metrics.current.pods"


def test_capacity_regression_on_history_and_observed_rates():
    assert slope_per_day([10, 12, 14, 16]) == pytest.approx(2.0)
    assert pods_for(5, 95, 70) == 7
    out = analyse({"service": "s", "current": {"pods": 2, "cpu_avg": 50, "cpu_peak": 60},
                   "history_7d": {"cpu_avg": [40, 42, 44, 46, 48, 50, 52]}}, AdvisorConfig())
    cpu = out["services"][0]["resources"][0]
    assert cpu["trend_source"].startswith("least-squares") and cpu["trend_pct_per_day"] == pytest.approx(3.85, abs=0.01)
    now = 1_800_000_000.0 - 1_800_000_000.0 % 3600 + 1800
    hours = [("shop", int(now // 3600) * 3600 - 3600 * k, 3600 * (10 + (23 - k)), 0, 5.0) for k in range(1, 24)]
    [svc] = observed_metrics(hours, now, days=1, limits_rps={"shop": 100.0})
    assert svc["trend_rps_per_day"] > 0 and svc["days_to_limit"] is not None and svc["peak_hourly_rps"] == 32.0


def test_storm_grouping_beats_alertmanager_style_grouping():
    from aiops.testing.alert_storm import naive_groups, pair_scores, storm
    s = storm(seed=7, episodes=60, duration_s=6 * 3600.0)
    p = Pipeline(edges=s.edges)
    group_of = []
    for i in range(0, len(s.alerts), 50):
        group_of += [o.get("group_id") for o in p.feed(s.alerts[i:i + 50], s.alerts[i].at).outcomes]
    ours, naive = pair_scores(group_of, s.episode_of), pair_scores(naive_groups(s.alerts), s.episode_of)
    assert len(group_of) == len(s.alerts) and None not in group_of
    assert ours["recall"] > 0.9 > naive["recall"] and ours["f1"] > naive["f1"] and ours["precision"] > 0.5
    assert len(set(group_of)) < len(set(naive_groups(s.alerts)))


def test_engine_alerts_of_one_incident_stay_in_its_group_after_the_window():
    incident = {"id": "INC-5-1", "anomalies": [{"type": "latency_anomaly", "service": "shop", "endpoint": "/pay",
                                                 "severity": "high", "description": "slow", "current_ms": 900.0}]}
    p = Pipeline()
    p.feed(alerts_from_incident("opened", incident, T0), T0)
    incident["anomalies"].append({"type": "error_spike", "service": "shop", "endpoint": "/cart", "severity":
                                  "critical", "description": "errors", "error_ratio": 0.4})
    p.feed(alerts_from_incident("escalated", incident, T0 + 900), T0 + 900)
    assert len(p.groups) == 1
    [group] = p.groups.values()
    assert group.decisions[-1]["reason"] == "same analysis incident INC-5-1" and len(group.alert_ids) == 3


def test_routing_file_formats(tmp_path):
    broken = tmp_path / "routes.json"
    broken.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        RoutingTable.from_file(str(broken))
    pytest.importorskip("yaml")
    yml = tmp_path / "routes.yaml"
    yml.write_text("default_team: ops\nroutes:\n  - match: {namespace: payments}\n    team: payments\n")
    table = RoutingTable.from_file(str(yml))
    assert table.route(raw("X", "a", labels={"namespace": "payments"})) == ("payments",
                                                                           "route 0 matched namespace=payments")


def test_a_repeat_at_a_higher_severity_raises_the_priority():
    p = Pipeline()
    p.feed([raw("CustomCheck", "checkout", 0, severity="warning")])
    out = p.feed([raw("CustomCheck", "checkout", 60, severity="critical")])
    [record] = p.records.values()
    [group] = p.groups.values()
    assert out.outcomes[0]["escalated"] and record.count == 2 and record.severity == "critical"
    assert record.classification["priority"] == "P2" and group.priority == "P2"
    assert record.classification["reasons"][0] == "severity changed warning -> critical"
    calm = p.feed([raw("CustomCheck", "checkout", 120, severity="warning")])
    assert not calm.outcomes[0]["escalated"] and record.classification["priority"] == "P2"


def test_slo_alerts_enter_triage_and_a_faster_burn_raises_the_priority():
    from aiops.triage.intake import alerts_from_slo_alert
    slo_alert = {"id": "SLO-1", "service": "shop", "route": "/orders", "slo_name": "shop-availability",
                 "rule": "page-slow", "severity": "page", "long_burn_rate": 8.0, "reason": "burning 8x over 6h"}
    assert alerts_from_slo_alert("acknowledged", slo_alert, T0) == []
    pipeline = Pipeline()
    first = pipeline.feed(alerts_from_slo_alert("opened", slo_alert, T0))
    record = pipeline.records[first.outcomes[0]["alert_id"]]
    assert record.source == "slo" and record.labels["burn_rate"] == "8"
    assert record.classification["priority"] == "P2"  # 6x <= burn < 14.4x
    faster = {**slo_alert, "rule": "page-fast", "long_burn_rate": 20.0}
    again = pipeline.feed(alerts_from_slo_alert("escalated", faster, T0 + 60), now_s=T0 + 60)
    assert again.outcomes[0]["action"] == "deduplicated" and again.outcomes[0]["escalated"] is True
    assert record.classification["priority"] == "P1" and record.count == 2
    assert record.classification["reasons"][0] == "a repeat raised the priority"
    calmer = pipeline.feed(alerts_from_slo_alert("escalated", slo_alert, T0 + 120), now_s=T0 + 120)
    assert calmer.outcomes[0]["escalated"] is False and record.classification["priority"] == "P1"  # never lowered
    pipeline.feed(alerts_from_slo_alert("resolved", faster, T0 + 180), now_s=T0 + 180)
    assert record.status == "resolved"
