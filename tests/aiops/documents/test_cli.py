"""python -m aiops narrative|brief|postmortem|comms against a real store file, in a subprocess."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm.facts import incident_facts
from llm.writers import brief, comms, narrative, postmortem
from tests.chat_server import reply
from tests.helpers import USER_INCIDENT

ROOT = Path(__file__).resolve().parents[3]


def cli(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_LLM_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "aiops", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**clean, **env})


@pytest.fixture(scope="module")
def store(scenario_runs):
    run = scenario_runs("payment_latency")
    (incident,) = run.incidents()
    return str(run.store.path), incident


@pytest.mark.parametrize("kind, writer", [("narrative", narrative), ("brief", brief), ("postmortem", postmortem)])
def test_documents_to_stdout(store, kind, writer):
    db, incident = store
    result = cli(kind, "--incident", incident.id, "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout == writer(incident_facts(incident.to_json()))
    assert f"{kind}: source template" in result.stderr and "no LLM endpoint configured" in result.stderr


def test_comms_to_a_file(store, tmp_path):
    db, incident = store
    out = tmp_path / "customer.md"
    result = cli("comms", "--incident", incident.id, "--db", db, "--audience", "customer", "--out", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text() == comms({**incident_facts(incident.to_json()), "audience": "customer"})
    assert str(out) in result.stderr


def test_documents_from_the_model_via_the_environment(store, chat_server):
    db, incident = store
    chat_server.respond(reply("P2 — /payment slow. Runbook: check it."))
    result = cli("brief", "--incident", incident.id, "--db", db, "--json", AIOPS_LLM_BASE_URL=chat_server.url,
                 AIOPS_LLM_MODEL="fake-model", AIOPS_LLM_API_KEY="sk-cli-secret-123456")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["source"], doc["model"], doc["text"]) == ("llm", "fake-model", "P2 — /payment slow. Runbook: check it.")
    assert "sk-cli-secret-123456" not in chat_server.requests[0]["raw"]
    template = cli("brief", "--incident", incident.id, "--db", db, "--template", AIOPS_LLM_BASE_URL=chat_server.url)
    assert "source template" in template.stderr and len(chat_server.requests) == 1


def test_postmortem_from_a_user_incident_file(tmp_path):
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(USER_INCIDENT))
    result = cli("postmortem", "--input", str(path))
    assert result.returncode == 0 and result.stdout.startswith("# Postmortem: Payment Gateway OOM Incident")
    path.write_text(json.dumps({**USER_INCIDENT, "duration_minutes": "long"}))
    bad = cli("postmortem", "--input", str(path))
    assert bad.returncode == 2 and "invalid field duration_minutes" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (("narrative", "--incident", "INC-nope"), "not found"),
    (("brief", "--incident", "x", "--db", "/nonexistent/t.db"), "no span store at /nonexistent/t.db"),
    (("postmortem", "--input", "/nonexistent.json"), "cannot read /nonexistent.json"),
])
def test_usage_errors(store, args, message):
    if "--db" not in args and "--input" not in args:
        args = (*args, "--db", store[0])
    result = cli(*args)
    assert result.returncode == 2 and message in result.stderr


def test_bad_llm_setting_is_a_usage_error(store):
    result = cli("brief", "--incident", store[1].id, "--db", store[0], AIOPS_LLM_TIMEOUT_S="never")
    assert result.returncode == 2 and "AIOPS_LLM_TIMEOUT_S" in result.stderr
