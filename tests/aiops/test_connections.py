"""The features joined by ``AIOps.init_app``: SLO burn-rate alerts enter alert
triage and the change-risk score; a configured model (a real loopback
chat-completions server, the real ``openai`` client) refines alert
classifications without ever lowering a rules P1, and writes alert briefs,
SLO summaries and simulation narratives, each saying what wrote it."""
import json
import time

import pytest

from aiops import AIOps
from tests.aiops.helpers import call, write_spans
from tests.chat_server import reply, status

ROUTE = "/orders/<int:order_id>"


def llm_config(chat_server):
    return {"AIOPS_LLM_BASE_URL": chat_server.url, "AIOPS_LLM_API_KEY": "sk-test-0123456789abcdef",
            "AIOPS_LLM_MODEL": "fake-model", "AIOPS_LLM_RETRIES": 0, "AIOPS_LLM_TIMEOUT_S": 5}


def outage(app, tmp_path, minutes=6, per_minute=50):
    """A full outage of /orders over the last ``minutes`` (every request a 5xx), then one SLO pass."""
    client = app.test_client()
    assert call(client, "POST", "/aiops/slo/shop/targets",
                json={"indicator": "availability", "target": 0.999}).status_code == 201
    now = time.time()
    for m in range(minutes):
        write_spans(tmp_path / "t.db", "shop", ROUTE, now - m * 60, per_minute, bad=per_minute)
    computed = call(client, "POST", "/aiops/burn/compute").json
    return client, computed


def test_a_firing_slo_alert_is_triaged_as_p1_and_resolves_with_it(tmp_path, orders_app):
    app = orders_app()
    client, computed = outage(app, tmp_path)
    assert [e["event"] for e in computed["alert_events"]] == ["opened"]
    slo_alert = call(client, "GET", "/aiops/slo-alerts").json["alerts"][0]
    alerts = call(client, "GET", "/aiops/alerts").json["alerts"]
    assert len(alerts) == 1
    triaged = alerts[0]
    assert triaged["alert_name"] == "SLOErrorBudgetBurn" and triaged["service"] == "shop"
    assert triaged["source"] == "slo" and triaged["fingerprint"] == f"slo:{slo_alert['id']}"
    assert float(triaged["labels"]["burn_rate"]) == pytest.approx(slo_alert["long_burn_rate"])
    assert triaged["classification"]["priority"] == "P1"  # burn >= 14.4x pages as P1
    # the second compute keeps the SLO alert open: no second alert, no dedup count from nothing
    call(client, "POST", "/aiops/burn/compute")
    assert call(client, "GET", "/aiops/alerts/stats").json["alerts_received"] == 1


def test_change_risk_takes_the_error_budget_from_the_slos(tmp_path, orders_app):
    app = orders_app()
    client, _ = outage(app, tmp_path)
    change = {"service": "shop", "change_type": "deployment", "description": "new checkout button",
              "files_changed": 3, "tests_added": 2, "rollback_plan": "revert",
              "deploy_time": "2026-11-24T10:00:00Z"}
    risk = call(client, "POST", "/aiops/changes/risk", json=change).json
    assert risk["error_budget_source"] == "slo"
    assert risk["recommendation"] == "NO-GO"  # a 0.999 target after 6 minutes of full outage: budget gone
    assert any(f["factor"] == "error_budget" for f in risk["risk_factors"])
    given = call(client, "POST", "/aiops/changes/risk", json={**change, "error_budget_remaining": 0.9}).json
    assert given["error_budget_source"] == "request" and given["recommendation"] != "NO-GO"
    other = call(client, "POST", "/aiops/changes/risk", json={**change, "service": "search"}).json
    assert other["error_budget_source"] is None


def classification(priority, category="outage", users="many", confidence=0.9, reason="model says so"):
    return json.dumps({"priority": priority, "category": category, "users_affected": users,
                       "confidence": confidence, "reason": reason})


def test_the_model_refines_a_classification_but_never_lowers_a_rules_p1(chat_server, orders_app):
    app = orders_app(**llm_config(chat_server))
    client = app.test_client()
    chat_server.respond(reply(classification("P2", "degradation", "few", 0.7, "only the search page is slow")))
    low = {"alert_name": "SearchLatencyHigh", "service": "search", "severity": "warning",
           "message": "p95 of /search above 800 ms", "labels": {"team": "discovery"}}
    assert call(client, "POST", "/aiops/alerts", json=low).status_code == 202
    chat_server.respond(reply(classification("P3", "info", "none", 0.4, "looks harmless")))
    critical = {"alert_name": "PaymentsDown", "service": "payment-gateway", "severity": "critical",
                "message": "all payment requests failing", "labels": {"burn_rate": "20"}}
    assert call(client, "POST", "/aiops/alerts", json=critical).status_code == 202
    by_name = {a["alert_name"]: a for a in call(client, "GET", "/aiops/alerts").json["alerts"]}
    refined = by_name["SearchLatencyHigh"]["classification"]
    assert refined["source"] == "refined" and refined["priority"] == "P2"
    assert refined["users_affected"] == "few" and any("only the search page" in r for r in refined["reasons"])
    kept = by_name["PaymentsDown"]["classification"]
    assert kept["priority"] == "P1"
    assert any("never lowered" in r for r in kept["reasons"])
    prompts = chat_server.prompts()
    assert len(prompts) == 2 and "PaymentsDown" in prompts[1]
    assert all("sk-test-0123456789abcdef" not in p for p in prompts)


def test_a_failing_model_leaves_the_rules_and_the_template_brief(chat_server, orders_app):
    app = orders_app(**llm_config(chat_server))
    client = app.test_client()
    chat_server.default = status(500)
    alert = {"alert_name": "OOMKilled", "service": "payment-gateway", "severity": "critical",
             "message": "container killed: out of memory", "labels": {"namespace": "prod"}}
    assert call(client, "POST", "/aiops/alerts", json=alert).status_code == 202
    triaged = call(client, "GET", "/aiops/alerts").json["alerts"][0]
    assert triaged["classification"]["source"] == "rules"
    assert any("refinement ignored" in r and "HTTP 500" in r for r in triaged["classification"]["reasons"])
    group_id = call(client, "GET", "/aiops/alerts/groups").json["groups"][0]["id"]
    group = call(client, "GET", f"/aiops/alerts/groups/{group_id}").json
    assert group["brief_source"] == {"source": "template", "model": None}
    assert f"{triaged['classification']['priority']} — payment-gateway: OOMKilled" in group["brief"]


def test_the_model_writes_the_alert_brief_and_the_slo_summary(tmp_path, chat_server, orders_app):
    app = orders_app(**llm_config(chat_server))
    client, _ = outage(app, tmp_path)  # the SLO alert is refined by the default answer: invalid JSON
    assert AIOps.feature(app, "triage").refiner.join()  # (in the background) before the next answer
    chat_server.respond(reply("P1 — shop availability burning; open the runbook."))
    group_id = call(client, "GET", "/aiops/alerts/groups").json["groups"][0]["id"]
    group = call(client, "GET", f"/aiops/alerts/groups/{group_id}").json
    assert group["brief_source"] == {"source": "llm", "model": "fake-model"}
    assert group["brief"] == "P1 — shop availability burning; open the runbook."
    chat_server.respond(reply("# shop\nRisk FREEZE: hold releases."))
    summary = call(client, "GET", "/aiops/summary/shop").json
    assert summary["source"] == "llm" and summary["model"] == "fake-model"
    assert summary["narrative"].startswith("# shop") and summary["facts"]["risk_level"] == "FREEZE"
    assert "FREEZE" in chat_server.prompts()[-1]  # the facts went to the model as data


def test_without_a_model_summaries_say_the_template_wrote_them(tmp_path, orders_app):
    app = orders_app()
    client, _ = outage(app, tmp_path)
    summary = call(client, "GET", "/aiops/summary/shop").json
    assert summary["source"] == "template" and summary["fallback_reason"] == "no LLM endpoint configured"
    assert "FREEZE" in summary["narrative"]


def test_the_model_narrates_a_replay_and_a_failing_one_falls_back(chat_server, make_writer):
    from pathlib import Path

    from aiops.replay.report import replay_from_csv, report
    sample = Path(__file__).resolve().parents[2] / "aiops" / "replay" / "samples"
    result = replay_from_csv(str(sample / "incident_metadata.csv"), str(sample / "historical_baseline.csv.gz"),
                             str(sample / "actual_metrics.csv"))
    writer = make_writer()
    chat_server.respond(reply("At 14:01 inventory should have had about 6 pods; it stayed at 2."))
    narrated = report(result, points=False, llm=writer)["narrative"]
    assert narrated["source"] == "llm" and narrated["markdown"].startswith("At 14:01 inventory")
    prompt = chat_server.prompts()[-1]
    facts = report(result, points=False)["facts"]
    assert facts["cascade"][0]["service"] in prompt  # the replay's facts went to the model as data
    chat_server.default = status(503)
    writer.cache.items.clear()
    fallback = report(result, points=False, llm=writer)["narrative"]
    assert fallback["source"] == "template" and "HTTP 503" in fallback["fallback_reason"]
    assert fallback["markdown"] == report(result, points=False)["narrative"]["markdown"]


def test_alerts_raised_inside_a_pass_are_refined_in_the_background(tmp_path, chat_server, orders_app):
    """An SLO alert enters triage inside the SLO pass; the model's refinement must not hold the pass."""
    app = orders_app(**{**llm_config(chat_server), "AIOPS_LLM_TIMEOUT_S": 20})
    chat_server.respond(reply(classification("P1", "outage", "all", 0.95, "whole shop down"), delay_s=5.0))
    client, computed = outage(app, tmp_path)  # returns while the model is still "thinking"
    assert [e["event"] for e in computed["alert_events"]] == ["opened"]
    before = call(client, "GET", "/aiops/alerts").json["alerts"][0]["classification"]
    assert before["source"] == "rules" and before["priority"] == "P1"
    assert AIOps.feature(app, "triage").refiner.join(15.0)
    after = call(client, "GET", "/aiops/alerts").json["alerts"][0]["classification"]
    assert after["source"] == "refined" and after["users_affected"] == "all"
    assert any("whole shop down" in r for r in after["reasons"])
