"""A feature whose extra is missing says which one to install, at the call, never at import.

Each case runs in a real subprocess of this interpreter in which the optional
package cannot be imported: ``sys.modules[name] = None`` before anything
else, or a stub module on ``PYTHONPATH`` that raises ImportError (as a
missing package does), for the ``aiops`` command itself.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from telemetry.extras import MissingExtra, require

ROOT = Path(__file__).resolve().parents[1]
REPLAY_MISSING = "the resilience replay needs scikit-learn: pip install 'flask-aiops[replay]'"
LLM_MISSING = "the LLM writer needs openai: pip install 'flask-aiops[llm]'"


def clean_env(**extra) -> dict:
    """This environment without LLM settings, with the checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "OPENAI_", "TELEMETRY_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra.pop("PYTHONPATH", ""), str(ROOT),
                                                    os.environ.get("PYTHONPATH", "")) if p)
    return {**env, **extra}


def run_python(code: str, *args: str, block: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``APP`` and ``code`` in a fresh interpreter (warnings are errors) where the ``block``ed packages
    cannot be imported."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in block)
    source = prelude + textwrap.dedent(APP) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-W", "error", "-c", source, *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=clean_env())
    assert done.returncode == 0, done.stderr
    return done


APP = """
    import json, logging, sys
    from flask import Flask
    from telemetry import Telemetry
    from aiops import AIOps

    def make_app(db, **config):
        app = Flask("svc")
        app.config.update({"TELEMETRY_DB_PATH": db, "AIOPS_SCHEDULER": False, **config})
        Telemetry(app)
        AIOps(app)
        return app
"""


def test_require_names_the_extra():
    assert require("json", "llm", "x").dumps([]) == "[]"
    with pytest.raises(MissingExtra) as raised:
        require("sklearn_is_not_a_package.sub", "replay", "the resilience replay")
    exc = raised.value
    assert isinstance(exc, ImportError) and exc.name == "sklearn_is_not_a_package.sub"
    assert str(exc) == "the resilience replay needs sklearn_is_not_a_package: pip install 'flask-aiops[replay]'"
    assert exc.install == "pip install 'flask-aiops[replay]'" and exc.extra == "replay"


def test_replay_answers_501_naming_the_extra_without_scikit_learn(tmp_path):
    done = run_python("""
        app = make_app(sys.argv[1])
        client = app.test_client()
        out = {path: [r.status_code, r.get_json()] for path in
               ("/aiops/incidents/INC-1/replay", "/aiops/incidents/INC-1/replay.png?metric=shop:pods",
                "/aiops/incidents", "/aiops/slo") for r in [client.get(path)]}
        out["loaded"] = [m for m in ("sklearn", "matplotlib", "scipy") if sys.modules.get(m)]
        print(json.dumps(out))
        AIOps.shutdown(app)
    """, str(tmp_path / "t.db"), block=("sklearn", "matplotlib"))
    out = json.loads(done.stdout)
    for path in ("/aiops/incidents/INC-1/replay", "/aiops/incidents/INC-1/replay.png?metric=shop:pods"):
        status, body = out[path]
        assert status == 501 and body["error"] == REPLAY_MISSING
        assert "pip install 'flask-aiops[replay]'" in body["detail"] and set(body) == {"error", "detail"}
    assert out["/aiops/incidents"][0] == 200 and out["/aiops/slo"][0] == 200  # the rest works
    assert out["loaded"] == []


def test_replay_plots_alone_need_matplotlib(tmp_path):
    done = run_python("""
        app = make_app(sys.argv[1])
        client = app.test_client()
        print(json.dumps([[r.status_code, r.get_json()] for r in (client.get("/aiops/incidents/INC-1/replay"),
                                                                   client.get("/aiops/incidents/INC-1/replay.png"))]))
        AIOps.shutdown(app)
    """, str(tmp_path / "t.db"), block=("matplotlib",))
    (json_status, json_body), (png_status, png_body) = json.loads(done.stdout)
    assert json_status == 404 and "INC-1 not found" in json_body["error"]  # scikit-learn is there
    assert png_status == 501
    assert png_body["error"] == "replay plotting needs matplotlib: pip install 'flask-aiops[replay]'"


def test_cli_replay_exits_2_with_the_extra_named(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "sklearn.py").write_text('raise ImportError("No module named \'sklearn\'", name="sklearn")\n')
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "aiops", "replay", "--sample", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=clean_env(PYTHONPATH=str(stubs)))
    assert done.returncode == 2 and done.stderr == f"error: {REPLAY_MISSING}\n" and done.stdout == ""
    assert not out.exists()
    help_text = subprocess.run([sys.executable, "-m", "aiops", "replay", "--help"], capture_output=True, text=True,
                               timeout=120, cwd=tmp_path, env=clean_env(PYTHONPATH=str(stubs)))
    assert help_text.returncode == 0 and "--sample" in help_text.stdout  # the command itself loads without it


def test_llm_documents_fall_back_to_the_template_naming_the_extra(tmp_path):
    incident = {"title": "Payment Gateway OOM Incident", "severity": "P2", "duration_minutes": 45,
                "services_affected": ["payment-gateway"],
                "timeline": [{"time": "14:00", "event": "Deployment v2.3.1 rolled out."},
                             {"time": "14:45", "event": "Error rate back to 0.02%."}],
                "root_cause": "BatchReconciliation loaded 2.1M rows into memory."}
    done = run_python("""
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
        incident = json.loads(sys.argv[2])
        # A model IS configured (at a closed loopback port: openai is missing, so it is never called).
        configured = make_app(sys.argv[1], AIOPS_LLM_BASE_URL="http://127.0.0.1:9/v1", AIOPS_LLM_MODEL="m")
        plain = make_app(sys.argv[1] + "-plain")
        out = []
        for app in (configured, configured, plain):
            r = app.test_client().post("/aiops/postmortems", json=incident)
            out.append([r.status_code, r.get_json()])
        out.append(configured.test_client().get("/aiops/llm").get_json())
        print(json.dumps(out))
        for app in (configured, plain):
            AIOps.shutdown(app)
    """, str(tmp_path / "t.db"), json.dumps(incident), block=("openai",))
    first, second, plain, stats = json.loads(done.stdout)
    for status, body in (first, second):
        assert status == 200 and body["source"] == "template" and body["fallback_reason"] == LLM_MISSING
        assert "Payment Gateway OOM Incident" in body["text"]
    assert plain[0] == 200 and plain[1]["fallback_reason"] == "no LLM endpoint configured"  # unchanged
    assert stats["enabled"] and stats["documents"]["template"] == 2 and stats["documents"]["failures"] == 0
    warnings = [line for line in done.stderr.splitlines() if "flask-aiops[llm]" in line]
    assert len(warnings) == 1 and warnings[0].startswith("llm WARNING") and "model m at http://127.0.0.1:9/v1" \
        in warnings[0]
