"""``aiops config``: every key from its declaration, as markdown tables, JSON, or rewritten in a file."""
from __future__ import annotations

import json

from aiops.cli import main
from aiops.cli.config import groups
from telemetry.configdoc import block


def test_markdown_prints_every_group_between_its_markers(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for group in groups():
        assert block(group) in out
    assert "| `TELEMETRY_SAMPLE_RATE` | `1.0` | ratio in [0, 1] |" in out
    assert "| `AIOPS_WEBHOOK_URLS` | none |" in out and "| `AIOPS_API_KEY` | unset |" in out
    assert "| `TELEMETRY_DB_PATH` | `<instance folder>/telemetry.db` |" in out


def test_json_lists_the_values_and_how_they_are_shown(capsys):
    assert main(["config", "--json"]) == 0
    found = {row["name"]: row for group in json.loads(capsys.readouterr().out) for row in group["keys"]}
    assert found["AIOPS_LLM_TIMEOUT_S"] == {
        "name": "AIOPS_LLM_TIMEOUT_S", "default": 20.0, "shown_default": "`20.0`", "unit": "seconds",
        "doc": "Timeout of one model request; a timeout falls back to the deterministic writer."}
    assert found["TELEMETRY_EXCLUDE_PATHS"]["default"][0] == "^/aiops/"
    assert found["TELEMETRY_SERVICE_NAME"]["default"] is None  # computed from the app
    assert found["AIOPS_SEASONALITY"]["shown_default"] == "`false`"


def test_write_rewrites_only_the_marked_blocks(tmp_path, capsys):
    slo = next(g for g in groups() if g.name == "slo")
    doc = tmp_path / "GUIDE.md"
    doc.write_text("# Guide\n\nprose stays\n\n<!-- config:slo -->\n| stale | table |\n<!-- /config:slo -->\n\nend\n")
    assert main(["config", "--markdown", "--write", str(doc)]) == 0
    assert doc.read_text() == f"# Guide\n\nprose stays\n\n{block(slo)}\n\nend\n"
    captured = capsys.readouterr()
    assert "1 config tables, 1 rewritten" in captured.out and "no table for telemetry" in captured.err
    assert main(["config", "--write", str(doc)]) == 0
    assert "0 rewritten" in capsys.readouterr().out


def test_write_leaves_other_packages_blocks_and_names_a_missing_file(tmp_path, capsys):
    doc = tmp_path / "GUIDE.md"
    doc.write_text("<!-- config:chaos -->\n| the simulation package's |\n<!-- /config:chaos -->\n")
    assert main(["config", "--write", str(doc)]) == 0
    assert doc.read_text() == "<!-- config:chaos -->\n| the simulation package's |\n<!-- /config:chaos -->\n"
    assert "0 config tables, 0 rewritten" in capsys.readouterr().out
    assert main(["config", "--write", str(tmp_path / "missing.md")]) == 2
    assert "cannot read" in capsys.readouterr().err
