"""Deterministic writers on real incidents from the analysis engine: every fact in the text is the incident's."""
import copy
import re

import pytest

from llm import LLMWriter
from llm.documents import render
from llm.facts import InvalidIncident, customer_facts, incident_facts, internal_terms, leaked_terms, user_incident_facts
from llm.writers import POSTMORTEM_SECTIONS, action_items, brief, comms, narrative, postmortem
from tests.chat_server import reply
from tests.helpers import USER_INCIDENT

SCENARIOS = ["payment_errors", "payment_latency", "inventory_timeout"]


def incident_body(scenario_runs, name):
    run = scenario_runs(name)
    (incident,) = run.incidents()
    return incident.to_json()


@pytest.fixture(params=SCENARIOS)
def body(request, scenario_runs):
    return incident_body(scenario_runs, request.param)


def test_facts_are_extracted_from_the_incident(body):
    facts = incident_facts(body)
    assert facts["incident_id"] == body["id"] and facts["title"] == body["title"]
    assert facts["priority"] == {"critical": "P1", "high": "P2", "medium": "P3"}[body["severity"]]
    assert facts["endpoints"] == body["affected_endpoints"]
    assert facts["total_traces"] == body["trace_correlation"]["total_traces"]
    assert [t["trace_id"] for t in facts["sample_traces"]] == \
        [t["trace_id"] for t in body["trace_correlation"]["sample_traces"]]
    assert facts["root_cause"]["description"] == body["root_cause"]["description"]
    assert len(facts["signals"]) == len(body["anomalies"]) and facts["signals"][0]["is_root"]
    # first detected 08:10:10, resolved 08:14:50 in every scenario: 280 s
    assert facts["duration_minutes"] == pytest.approx(
        (_epoch(body["resolved_at"]) - _epoch(body["first_detected"])) / 60, abs=0.05)


def _epoch(iso):
    from llm.facts import parse_iso
    return parse_iso(iso)


def _hhmmss(iso):
    return iso[11:19]


def test_narrative_states_the_incident_facts(body):
    text = narrative(incident_facts(body))
    rc = body["root_cause"]
    for heading in ("## What happened", "## Root cause", "## Blast radius", "## What to do first"):
        assert heading in text
    assert body["id"] in text and body["title"] in text and rc["description"] in text
    assert f"confidence {rc['confidence']:.0%}" in text
    assert f"{body['trace_correlation']['total_traces']} affected trace(s)" in text
    assert _hhmmss(body["first_detected"]) in text and _hhmmss(body["resolved_at"]) in text
    assert body["trace_correlation"]["sample_traces"][0]["trace_id"] in text
    assert f"{len(body['affected_endpoints'])} endpoint(s) affected: {', '.join(body['affected_endpoints'])}" in text
    for anomaly in body["anomalies"]:
        assert anomaly["endpoint"] in text
    for error in (a["sample_errors"][0] for a in body["anomalies"] if a.get("sample_errors")):
        assert f"`{error['type']}: {error['message']}` ×{error['count']}" in text


def test_every_number_in_the_narrative_comes_from_the_incident(body):
    """No invented figures: each number in the text occurs in the incident's JSON (as given or rounded)."""
    text = narrative(incident_facts(body))
    source = repr(body)
    allowed = set(re.findall(r"\d+(?:\.\d+)?", source))
    for value in re.findall(r"\d+(?:\.\d+)?", source):  # rounded renderings of the incident's numbers
        number = float(value)
        allowed.update({f"{number:.0f}", f"{number:g}", f"{number * 100:.0f}", f"{number * 100:.1f}".rstrip("0")
                        .rstrip("."), f"{number:,.0f}".replace(",", ""), f"{number:.1f}", f"{number / 60:.1f}",
                        f"{number * 100:g}"})
    duration = incident_facts(body)["duration_minutes"]
    allowed.update({f"{duration:g}", "5000"})  # the duration, and the demo's port in curl hints
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text.replace(",", ""))
    stray = [n for n in numbers if n not in allowed and not re.fullmatch(r"[1-9]", n)]  # list numbering 1-9
    assert stray == []


def test_brief_is_phone_sized_in_the_product_form(body):
    facts = incident_facts(body)
    text = brief(facts)
    lines = text.strip().splitlines()
    assert lines[0].startswith(f"{facts['priority']} — {body['root_cause']['endpoint']}")
    assert len(lines) <= 7 and len(text) <= 700
    confidence = body["root_cause"]["confidence"]
    assert [line.split(":")[0] for line in lines[1:]][:2] == ["Impact", f"Cause ({confidence:.0%} sure)"]
    assert any(line.startswith("Runbook: ") for line in lines)
    assert any(line.startswith("Suggested fix: ") for line in lines)
    assert f"{body['trace_correlation']['total_traces']} traces" in text
    assert lines[-1] == f"Trace: {body['trace_correlation']['sample_traces'][0]['trace_id']}"


def test_postmortem_has_every_section_whys_and_action_items(body):
    facts = incident_facts(body)
    text = postmortem(facts)
    positions = [text.index(f"\n## {s}\n") for s in POSTMORTEM_SECTIONS]
    assert positions == sorted(positions)
    assert text.startswith(f"# Postmortem: {body['title']}")
    whys = re.findall(r"^(\d)\. \*\*Why", text, re.M)
    assert whys == ["1", "2", "3", "4", "5"]
    assert body["root_cause"]["description"] in text
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \| P\d \|", line)]
    items = action_items(facts)
    assert len(rows) == len(items) >= 3
    resolved_day = body["resolved_at"][:10]
    for row, item in zip(rows, items):
        assert "@owner-tbd" in row and re.search(r"\| \d{4}-\d{2}-\d{2} \|$", row)
        assert item["deadline"] > resolved_day
    assert rows[0].split("|")[2].strip() == facts["priority"]
    for event in body["timeline"]:
        assert event["detail"] in text


def test_engineering_and_management_comms(body):
    facts = incident_facts(body)
    engineering = comms({**facts, "audience": "engineering"})
    management = comms({**facts, "audience": "management"})
    assert body["trace_correlation"]["sample_traces"][0]["trace_id"] in engineering
    assert body["root_cause"]["endpoint"] in engineering and body["id"] in engineering
    assert "trace" not in management.replace("requests traced", "")  # no trace ids for management
    assert f"{body['trace_correlation']['total_traces']} requests traced as affected" in management
    assert "resolved" in management and f"{len(action_items(facts))} action items" in management


def test_customer_comms_reveal_no_internal_detail(scenario_runs):
    body = copy.deepcopy(incident_body(scenario_runs, "payment_errors"))
    # The real incident, with error messages as a real app would log them.
    leaky = [
        {"type": "psycopg2.OperationalError", "count": 40,
         "message": "could not connect to server db-primary.prod.internal (10.0.3.17) port 5432"},
        {"type": "requests.exceptions.ReadTimeout", "count": 12,
         "message": "GET https://payments.acme-internal.net/v2/charge timed out; "
                    "trace 0af7651916cd43dd8448eb211c80319c"},
    ]
    body["anomalies"][0]["sample_errors"] = leaky
    facts = incident_facts(body)
    terms = {"db-primary.prod.internal", "10.0.3.17", "payments.acme-internal.net", "/v2/charge", "/payment",
             "/checkout", "0af7651916cd43dd8448eb211c80319c", "psycopg2.OperationalError", "shop"}
    assert terms <= internal_terms(facts)
    text = comms({**facts, "audience": "customer"})
    lowered = text.lower()
    for term in terms | {body["trace_correlation"]["sample_traces"][0]["trace_id"], "injected", "error spike",
                         "could not connect", "timed out", body["id"].lower()}:
        assert term.lower() not in lowered, term
    assert not re.search(r"[0-9a-f]{32}", text) and not re.search(r"(?<!\w)/\w", text)
    assert leaked_terms(text, facts) == []
    assert "Resolved" in text and body["first_detected"][:10] in text and "100%" in text


def test_customer_facts_hold_nothing_internal(scenario_runs):
    facts = incident_facts(incident_body(scenario_runs, "payment_latency"))
    public = customer_facts(facts)
    assert set(public) == {"status", "priority", "started_at", "resolved_at", "duration_minutes", "impact",
                           "peak_failed_share", "features_affected", "recurring"}
    assert public["impact"] == "slow" and public["status"] == "resolved"
    assert leaked_terms(repr(public), facts) == []


def test_a_model_answer_that_leaks_internal_detail_is_replaced(scenario_runs, chat_server, make_writer):
    facts = incident_facts(incident_body(scenario_runs, "payment_errors"))
    chat_server.respond(reply("We had trouble with /payment between 08:10 and 08:14 UTC."),
                        reply("Between 08:10 and 08:14 UTC some payments failed. It is fixed; sorry!"))
    writer = make_writer()
    leaked = render(writer, "comms", facts, "customer")
    assert leaked.source == "template" and "internal detail" in leaked.fallback_reason
    assert "/payment" not in leaked.text
    prompt = chat_server.requests[0]["raw"]
    assert "/payment" not in prompt and "injected fault" not in prompt  # the model never saw internal detail
    clean = render(writer, "comms", facts, "customer")  # the leak was not cached: the model is asked again
    assert clean.source == "llm" and clean.text.startswith("Between 08:10 and 08:14 UTC some payments failed.")
    assert len(chat_server.requests) == 2


def test_render_uses_the_model_and_checks_its_postmortem(scenario_runs, chat_server, make_writer):
    facts = incident_facts(incident_body(scenario_runs, "payment_latency"))
    good = "# Postmortem: x\n\n" + "\n\n".join(f"## {s}\n\ntext" for s in POSTMORTEM_SECTIONS)
    chat_server.respond(reply("# Postmortem: x\n\n## Summary\n\nonly a summary"), reply(good))
    writer = make_writer()
    first = render(writer, "postmortem", facts)
    assert first.source == "template" and "What Went Well" in first.fallback_reason
    assert first.text == postmortem(facts)
    writer.cache.items.clear()
    second = render(writer, "postmortem", facts)
    assert second.source == "llm" and second.text == good
    assert "postmortem" in chat_server.requests[0]["body"]["messages"][0]["content"].lower()


def test_brief_from_the_model_must_start_with_the_priority(scenario_runs, chat_server, make_writer):
    facts = incident_facts(incident_body(scenario_runs, "payment_errors"))
    chat_server.respond(reply("Hello team! Here is a brief."), reply(f"{facts['priority']} — /payment down."))
    writer = make_writer()
    assert render(writer, "brief", facts).source == "template"
    assert render(writer, "brief", {**facts, "status": "acknowledged"}).text == f"{facts['priority']} — /payment down."


def test_template_documents_without_a_model_are_deterministic(scenario_runs):
    facts = incident_facts(incident_body(scenario_runs, "inventory_timeout"))
    writer = LLMWriter()
    for kind in ("narrative", "brief", "postmortem", "comms"):
        a, b = render(writer, kind, facts), render(writer, kind, facts)
        assert a.text == b.text and a.source == "template" and "/inventory" in a.text


# -- a user's own incident --------------------------------------------------------------------

def test_user_incident_postmortem_uses_its_data():
    facts = user_incident_facts(USER_INCIDENT)
    text = postmortem(facts)
    for section in POSTMORTEM_SECTIONS:
        assert f"\n## {section}\n" in text
    for fact in ("Payment Gateway OOM Incident", "P2", "45 min", "payment-gateway", "Deployment v2.3.1 rolled out.",
                 "| 14:23 |", "2.1M rows", "Increased memory limits to 2Gi", "4.7%", "Customer tickets: 12",
                 "Pods affected: 2"):
        assert fact in text, fact
    assert re.findall(r"^(\d)\. \*\*Why", text, re.M) == ["1", "2", "3", "4", "5"]
    assert "The pod limit was 512Mi." in text
    assert "within 14 days of the review" in text  # no dates in the input: deadlines relative to the review


@pytest.mark.parametrize("change, field", [
    ({"title": ""}, "title"),
    ({"severity": "urgent"}, "severity"),
    ({"duration_minutes": "45"}, "duration_minutes"),
    ({"duration_minutes": -1}, "duration_minutes"),
    ({"services_affected": []}, "services_affected"),
    ({"services_affected": ["ok", 3]}, "services_affected[1]"),
    ({"timeline": "14:00 deploy"}, "timeline"),
    ({"timeline": [{"time": "14:00"}]}, "timeline[0].event"),
    ({"timeline": [{"time": "14:00", "event": "x"}, "y"]}, "timeline[1]"),
    ({"root_cause": None}, "root_cause"),
    ({"fix_applied": 7}, "fix_applied"),
    ({"data_points": [1]}, "data_points"),
    ({"data_points": {"nested": {"a": 1}}}, "data_points.nested"),
])
def test_user_incident_validation_names_the_field(change, field):
    bad = {**USER_INCIDENT, **change}
    with pytest.raises(InvalidIncident) as caught:
        user_incident_facts(bad)
    assert caught.value.field == field


def test_user_incident_missing_field_is_named():
    bad = {k: v for k, v in USER_INCIDENT.items() if k != "timeline"}
    with pytest.raises(InvalidIncident) as caught:
        user_incident_facts(bad)
    assert caught.value.field == "timeline"


@pytest.mark.parametrize("severity, priority", [("critical", "P1"), ("SEV2", "P2"), ("p3", "P3"), ("low", "P4")])
def test_user_severity_is_normalised(severity, priority):
    assert user_incident_facts({**USER_INCIDENT, "severity": severity})["priority"] == priority


def test_deterministic_hypotheses_validate_and_come_from_the_incident(body):
    from llm.schema import validate
    from llm.writers import HYPOTHESES_SCHEMA, hypotheses
    facts = incident_facts(body)
    data = hypotheses(facts)
    assert validate(data, HYPOTHESES_SCHEMA) == []
    top = data["hypotheses"][0]
    assert top["cause"].startswith(body["root_cause"]["endpoint"])
    assert top["confidence"] == body["root_cause"]["confidence"]
    assert data["priority"] == facts["priority"]
    timed_out = body["root_cause"]["reason"] == "no_response" or any(a["type"] == "timeout" for a in body["anomalies"])
    assert data["category"] == ("availability" if timed_out else
                                {"error": "errors", "latency": "latency"}[body["root_cause"]["reason"]])
    others = {a["endpoint"] for a in body["anomalies"]} - {body["root_cause"]["endpoint"]}
    assert {h["cause"].split(" ")[0] for h in data["hypotheses"][1:]} == others
    assert sum(h["confidence"] for h in data["hypotheses"]) == pytest.approx(1.0, abs=0.01) or not others


def test_structured_hypotheses_fall_back_after_two_invalid_answers(scenario_runs, chat_server, make_writer):
    from llm.documents import render_hypotheses
    from llm.writers import hypotheses
    facts = incident_facts(incident_body(scenario_runs, "payment_latency"))
    chat_server.respond(reply('{"priority": "P2"}'), reply('{"priority": "P2", "category": "slow", "hypotheses": []}'))
    doc = render_hypotheses(make_writer(), facts)
    assert doc.source == "template" and doc.data == hypotheses(facts) and len(chat_server.requests) == 2
    assert doc.data["category"] == "latency"
