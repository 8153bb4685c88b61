"""The document routes on a real app served on loopback, with and without a model."""
import json

import pytest
import requests

from aiops.testing.synthetic import shop_routes
from llm.facts import incident_facts
from llm.writers import POSTMORTEM_SECTIONS, brief, comms, narrative, postmortem
from tests.aiops.helpers import SHOP_RATES, Run, fault
from tests.chat_server import reply, status
from tests.helpers import USER_INCIDENT


@pytest.fixture(scope="module")
def incident_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "t.db"
    run = Run(db, shop_routes(), SHOP_RATES, 900, [fault(("shop", "/payment"), "error", 600, 720, 1.0)])
    (incident,) = run.incidents()
    run.store.release_lock(run.analyzer.owner)
    run.store.close()
    return db, incident


@pytest.fixture
def serve(live_server, make_app, incident_db):
    """``serve(**config) -> base URL`` of an app on the incident's store, served on loopback."""

    def start(**config):
        return live_server(make_app(TELEMETRY_DB_PATH=str(incident_db[0]), **config)).url

    return start


@pytest.fixture
def facts(incident_db):
    return incident_facts(incident_db[1].to_json())


def get(url, **params):
    return requests.get(url, params=params, timeout=30)


@pytest.mark.parametrize("kind, writer", [("narrative", narrative), ("brief", brief), ("postmortem", postmortem)])
def test_documents_without_a_model_come_from_the_template(serve, incident_db, facts, chat_server, kind, writer):
    base = serve()
    incident = incident_db[1]
    response = get(f"{base}/aiops/incidents/{incident.id}/{kind}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["text"] == writer(facts)
    assert (body["incident_id"], body["document"], body["source"], body["model"], body["usage"]) == \
        (incident.id, kind, "template", None, None)
    assert body["fallback_reason"] == "no LLM endpoint configured" and body["latency_ms"] >= 0
    assert chat_server.requests == []


@pytest.mark.parametrize("audience", ["engineering", "management", "customer"])
def test_comms_per_audience(serve, incident_db, facts, audience):
    base = serve()
    body = get(f"{base}/aiops/incidents/{incident_db[1].id}/comms", audience=audience).json()
    assert body["audience"] == audience and body["text"] == comms({**facts, "audience": audience})
    if audience == "customer":
        assert "/payment" not in body["text"] and incident_db[1].id not in body["text"]


def test_documents_from_the_model(serve, incident_db, chat_server):
    base = serve(AIOPS_LLM_BASE_URL=chat_server.url, AIOPS_LLM_MODEL="fake-model", AIOPS_LLM_API_KEY="sk-abcdef123456")
    chat_server.respond(reply("Narrative by the model: /payment failed."))
    incident = incident_db[1]
    body = get(f"{base}/aiops/incidents/{incident.id}/narrative").json()
    assert (body["source"], body["model"], body["text"], body["fallback_reason"]) == \
        ("llm", "fake-model", "Narrative by the model: /payment failed.", None)
    assert body["usage"]["total_tokens"] > 0 and body["latency_ms"] > 0
    prompt = chat_server.requests[0]["raw"]
    assert incident.id in prompt and incident.sample_traces[0]["trace_id"] in prompt
    assert "sk-abcdef123456" not in prompt
    again = get(f"{base}/aiops/incidents/{incident.id}/narrative").json()
    assert again["cached"] is True and len(chat_server.requests) == 1
    status_body = get(f"{base}/aiops/llm").json()
    assert status_body["enabled"] is True and status_body["model"] == "fake-model"
    assert status_body["cache"]["hits"] == 1 and status_body["documents"]["llm"] == 1
    assert "sk-abcdef123456" not in json.dumps(status_body) and status_body["api_key_set"] is True


def test_a_failing_model_still_answers_with_the_template(serve, incident_db, facts, chat_server):
    base = serve(AIOPS_LLM_BASE_URL=chat_server.url, AIOPS_LLM_RETRIES=0)
    chat_server.default = status(500)
    body = get(f"{base}/aiops/incidents/{incident_db[1].id}/postmortem").json()
    assert body["source"] == "template" and body["fallback_reason"] == "HTTP 500 from the endpoint"
    assert body["text"] == postmortem(facts)


def test_source_template_skips_the_model(serve, incident_db, facts, chat_server):
    base = serve(AIOPS_LLM_BASE_URL=chat_server.url)
    body = get(f"{base}/aiops/incidents/{incident_db[1].id}/brief", source="template").json()
    assert body["source"] == "template" and body["text"] == brief(facts) and chat_server.requests == []


def test_markdown_format(serve, incident_db, facts, chat_server):
    base = serve(AIOPS_LLM_BASE_URL=chat_server.url, AIOPS_LLM_MODEL="fake-model")
    good = "# Postmortem: x\n\n" + "\n\n".join(f"## {s}\n\nbody" for s in POSTMORTEM_SECTIONS)
    chat_server.respond(reply(good))
    response = get(f"{base}/aiops/incidents/{incident_db[1].id}/postmortem", format="markdown")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/markdown")
    assert response.text == good
    assert response.headers["X-AIOps-Source"] == "llm" and response.headers["X-AIOps-Model"] == "fake-model"
    assert float(response.headers["X-AIOps-Latency-Ms"]) > 0


@pytest.mark.parametrize("path, params, code, error", [
    ("/aiops/incidents/INC-nope/narrative", {}, 404, "incident INC-nope not found"),
    ("/aiops/incidents/{id}/comms", {"audience": "press"}, 400, "unknown audience 'press'"),
    ("/aiops/incidents/{id}/brief", {"format": "pdf"}, 400, "unknown format 'pdf'"),
    ("/aiops/incidents/{id}/brief", {"source": "gpt"}, 400, "unknown source 'gpt'"),
    ("/aiops/incidents/{id}/haiku", {}, 404, "no such endpoint"),
])
def test_bad_requests(serve, incident_db, path, params, code, error):
    base = serve()
    response = get(base + path.format(id=incident_db[1].id), **params)
    assert response.status_code == code
    body = response.json()
    assert body["error"].startswith(error) and body["detail"]


def test_post_postmortem_from_a_user_incident(serve, chat_server):
    base = serve()
    response = requests.post(f"{base}/aiops/postmortems", json=USER_INCIDENT, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "template" and body["title"] == USER_INCIDENT["title"]
    for section in POSTMORTEM_SECTIONS:
        assert f"\n## {section}\n" in body["text"]
    assert "Increased memory limits to 2Gi" in body["text"] and "Customer tickets: 12" in body["text"]
    markdown = requests.post(f"{base}/aiops/postmortems?format=markdown", json=USER_INCIDENT, timeout=30)
    assert markdown.headers["Content-Type"].startswith("text/markdown") and markdown.text == body["text"]


@pytest.mark.parametrize("payload, field", [
    ({**USER_INCIDENT, "severity": "bad"}, "severity"),
    ({k: v for k, v in USER_INCIDENT.items() if k != "root_cause"}, "root_cause"),
    ({**USER_INCIDENT, "timeline": [{"time": "14:00", "event": ""}]}, "timeline[0].event"),
    ([1, 2], "body"),
])
def test_post_postmortem_rejects_bad_fields_by_name(serve, payload, field):
    response = requests.post(f"{serve()}/aiops/postmortems", json=payload, timeout=30)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and body["error"] == f"invalid {field}" and body["detail"]


def test_post_postmortem_other_errors(serve):
    base = serve()
    not_json = requests.post(f"{base}/aiops/postmortems", data="title=x", timeout=30)
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid JSON body"
    wrong_method = requests.get(f"{base}/aiops/postmortems", timeout=30)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    huge = requests.post(f"{base}/aiops/postmortems", json={**USER_INCIDENT, "root_cause": "x" * 300_000}, timeout=30)
    assert huge.status_code == 413 and huge.json()["error"] == "incident too large"
    assert huge.json()["field"] == "body" and "at most" in huge.json()["detail"]


def test_llm_status_without_a_model(serve):
    body = get(f"{serve()}/aiops/llm").json()
    assert body["enabled"] is False and body["base_url"] is None and body["model"] is None
    assert body["documents_available"] == ["narrative", "brief", "postmortem", "comms", "hypotheses"]


def test_a_bug_in_a_writer_is_a_logged_json_500(serve, incident_db, monkeypatch, caplog):
    from llm import documents

    def broken(facts):
        raise KeyError("missing fact")

    monkeypatch.setitem(documents.DOCUMENTS, "narrative", documents.DocumentKind("narrative", broken, "x"))
    base = serve()
    with caplog.at_level("ERROR", logger="llm"):
        response = get(f"{base}/aiops/incidents/{incident_db[1].id}/narrative")
    assert response.status_code == 500 and response.json()["error"] == "could not write the narrative"
    assert any("writing the narrative failed" in r.getMessage() for r in caplog.records)
    assert get(f"{base}/aiops/incidents/{incident_db[1].id}/brief").status_code == 200


def test_hypotheses_are_validated_structured_json(serve, incident_db, facts, chat_server):
    from llm.schema import validate
    from llm.writers import HYPOTHESES_SCHEMA, hypotheses
    base = serve(AIOPS_LLM_BASE_URL=chat_server.url, AIOPS_LLM_MODEL="fake-model")
    url = f"{base}/aiops/incidents/{incident_db[1].id}/hypotheses"
    good = {"priority": "P1", "category": "errors", "hypotheses": [
        {"cause": "/payment raises InjectedFault", "confidence": 0.9, "evidence": ["488 traces"], "check": "read it"}]}
    chat_server.respond(reply('{"priority": "P0", "category": "errors", "hypotheses": []}'), reply(json.dumps(good)))
    body = get(url).json()
    assert body["source"] == "llm" and body["data"] == good and body["format"] == "json"
    assert len(chat_server.requests) == 2 and "'P0' is not one of" in chat_server.requests[1]["raw"]
    again = get(url).json()  # same facts: the validated answer from the cache
    assert again["cached"] is True and again["data"] == good and len(chat_server.requests) == 2
    template = get(url, source="template").json()
    assert template["source"] == "template" and template["data"] == hypotheses(facts)
    assert validate(template["data"], HYPOTHESES_SCHEMA) == []
    assert get(url, format="markdown").status_code == 400
