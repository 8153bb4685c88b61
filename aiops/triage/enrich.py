"""Enrichment of alert groups: runbooks (TF-IDF), routing to a team, recent deploys, the on-call brief.

Pure functions and small classes over data: the runbook index reads markdown
files once at start-up and ranks them with ``aiops.triage.tfidf`` (numpy, no
scikit-learn); the routing table is a list of label matchers. The brief is
``brief_facts(...) -> dict`` then ``write_brief(facts) -> str``: every number
and name in the text comes from the facts, so the LLM layer can write the
same document from the same facts.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiops.triage.records import AlertGroup, AlertRecord
from aiops.triage.tfidf import TfidfIndex
from telemetry.timefmt import iso

#: Shipped defaults: the sample runbooks and routing table, package data of ``aiops.triage``.
RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
DEFAULT_RUNBOOKS_DIR = str(RUNBOOKS)
DEFAULT_ROUTING_FILE = str(RUNBOOKS / "routing.json")


# -- runbooks --------------------------------------------------------------------------

@dataclass
class Runbook:
    path: str            #: relative to the runbooks folder
    title: str
    text: str
    first_step: str      #: first list item under a "Steps"/"Mitigation" heading, or the first list item


def _first_step(text: str) -> str:
    section = re.search(r"^#+\s*(steps|mitigation|actions?|what to do|remediation)\b.*?$(.*?)(^#|\Z)", text,
                        re.IGNORECASE | re.MULTILINE | re.DOTALL)
    body = section.group(2) if section else text
    item = re.search(r"^\s*(?:[-*]|\d+[.)])\s+(.+)$", body, re.MULTILINE)
    return item.group(1).strip() if item else ""


def _tokens_of_name(name: str) -> str:
    """``PodCrashLoopBackOff`` -> ``pod crash loop back off`` (so names match prose)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_\-.]", " ", name)
    return f"{name} {spaced}".lower()


class RunbookIndex:
    """Ranked runbook retrieval: TF-IDF (``aiops.triage.tfidf``) over the markdown files of a folder.

    A runbook's document is its title twice, the words of its file name and its text."""

    def __init__(self, runbooks: list[Runbook]):
        self.runbooks = runbooks
        self._index = TfidfIndex([runbook_document(r) for r in runbooks]) if runbooks else None

    @classmethod
    def from_folder(cls, folder: str | None) -> "RunbookIndex":
        """Every ``*.md`` under ``folder`` (recursively); an absent folder gives an empty index."""
        runbooks = []
        if folder and os.path.isdir(folder):
            for path in sorted(Path(folder).rglob("*.md")):
                text = path.read_text(encoding="utf-8", errors="replace")
                if path.name.lower() == "readme.md":
                    continue
                heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
                runbooks.append(Runbook(str(path.relative_to(folder)), heading.group(1).strip() if heading
                                        else path.stem, text, _first_step(text)))
        return cls(runbooks)

    def search(self, query: str, limit: int = 3, min_score: float = 0.05) -> list[dict]:
        """Runbooks ranked by cosine similarity to ``query``: {path, title, score, first_step}."""
        if not self.runbooks or not query.strip():
            return []
        scores = self._index.scores(query)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [{"path": self.runbooks[i].path, "title": self.runbooks[i].title, "score": round(float(scores[i]), 3),
                 "first_step": self.runbooks[i].first_step} for i in order[:limit] if scores[i] >= min_score]


def runbook_document(runbook: Runbook) -> str:
    """The text a runbook is indexed by: its title twice, the words of its file name, its text."""
    return f"{runbook.title} {runbook.title} {_tokens_of_name(Path(runbook.path).stem)} {runbook.text}"


def runbook_query(records: list[AlertRecord]) -> str:
    """Alert names (split into words), services, label values and messages of a group's alerts."""
    parts = []
    for r in records:
        parts += [_tokens_of_name(r.alert_name), r.service, r.message,
                  " ".join(v for k, v in sorted(r.labels.items()) if k not in ("instance", "pod", "fingerprint")),
                  r.classification.get("pattern") or "", r.classification.get("category") or ""]
    return " ".join(p for p in parts if p)


# -- routing --------------------------------------------------------------------------

#: Built in when no routing file is configured or shipped.
DEFAULT_ROUTES = {"default_team": "sre-oncall", "routes": []}


@dataclass
class RoutingTable:
    """First matching route wins; a route matches when every label it names equals (or, for
    values written ``/regex/``, matches) the alert's label. ``service`` and ``alert_name``
    match the alert's fields. An alert with a ``team`` label goes to that team."""

    routes: list[dict] = field(default_factory=list)
    default_team: str = "sre-oncall"

    @classmethod
    def from_dict(cls, data, source: str = "routing table") -> "RoutingTable":
        if not isinstance(data, dict):
            raise ValueError(f"{source} must be a JSON object with default_team and routes")
        routes = data.get("routes", [])
        if not isinstance(routes, list):
            raise ValueError(f"{source}: routes must be a list of {{match: {{label: value}}, team}}")
        for i, route in enumerate(routes):
            if not isinstance(route, dict) or not isinstance(route.get("match"), dict) or not route["match"] \
                    or not isinstance(route.get("team"), str) or not route["team"]:
                raise ValueError(f"{source}: routes[{i}] must be {{\"match\": {{label: value, ...}}, "
                                 f"\"team\": name}} with at least one label")
            for value in route["match"].values():
                if isinstance(value, str) and len(value) > 1 and value.startswith("/") and value.endswith("/"):
                    try:
                        re.compile(value[1:-1])
                    except re.error as exc:
                        raise ValueError(f"{source}: routes[{i}] has an invalid regex {value!r}: {exc}") from None
        team = data.get("default_team", "sre-oncall")
        if not isinstance(team, str) or not team:
            raise ValueError(f"{source}: default_team must be a non-empty string")
        return cls(routes, team)

    @classmethod
    def from_file(cls, path: str | None) -> "RoutingTable":
        """JSON, or YAML (``.yml``/``.yaml``, needs PyYAML); None -> the shipped sample or the built-in default."""
        if not path:
            if os.path.isfile(DEFAULT_ROUTING_FILE):
                path = DEFAULT_ROUTING_FILE
            else:
                return cls.from_dict(DEFAULT_ROUTES)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            if path.endswith((".yml", ".yaml")):
                try:
                    import yaml  # at the call: only a routing table in YAML needs PyYAML
                except ImportError:
                    raise ValueError(f"{path}: a YAML routing table needs PyYAML (pip install pyyaml); "
                                     "or write it as JSON") from None
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, path)

    def route(self, alert) -> tuple[str, str]:
        """(team, reason) for an ``Alert`` or ``AlertRecord``."""
        if alert.labels.get("team"):
            return alert.labels["team"], f"label team={alert.labels['team']}"
        fields = {**alert.labels, "service": alert.service, "alert_name": alert.alert_name}
        for i, route in enumerate(self.routes):
            matched = []
            for name, want in route["match"].items():
                have = fields.get(name)
                if have is None:
                    break
                if isinstance(want, str) and len(want) > 1 and want.startswith("/") and want.endswith("/"):
                    if not re.search(want[1:-1], have):
                        break
                elif str(want) != have:
                    break
                matched.append(f"{name}={have}")
            else:
                return route["team"], f"route {i} matched {', '.join(matched)}"
        return self.default_team, "no route matched: default team"


# -- brief -----------------------------------------------------------------------------

def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} seconds ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours ago"
    return f"{seconds / 86400:.1f} days ago"


def related_deploys(group: AlertGroup, deploys: list[dict], lookback_s: float) -> list[dict]:
    """Deploys of the group's services within ``lookback_s`` before its first alert (newest first)."""
    out = []
    for d in deploys:
        before_s = group.first_at - d["deployed_at"]
        if d["service"] in group.services and -60.0 <= before_s <= lookback_s:
            out.append({**d, "before_first_alert_s": round(before_s, 1)})
    return sorted(out, key=lambda d: -d["deployed_at"])


def brief_facts(group: AlertGroup, records: list[AlertRecord], deploys: list[dict], runbooks: list[dict],
                now_s: float) -> dict:
    """Everything a brief says, from data: the group, its alerts, related deploys, runbooks."""
    firing = [r for r in records if r.status == "firing"]
    alerts = []
    for r in sorted(records, key=lambda r: (r.classification.get("priority", "P4"), r.first_seen)):
        alerts.append({"id": r.id, "alert_name": r.alert_name, "service": r.service, "status": r.status,
                       "priority": r.classification.get("priority"), "count": r.count, "message": r.message,
                       "value": r.value, "pod": r.labels.get("pod"), "first_seen": iso(r.first_seen)})
    pods = sorted({r.labels["pod"] for r in firing if r.labels.get("pod")})
    deploy = deploys[0] if deploys else None
    return {
        "group_id": group.id, "status": group.status, "priority": group.priority, "category": group.category,
        "users_affected": group.users_affected, "services": group.services, "namespaces": group.namespaces,
        "team": group.team, "first_at": iso(group.first_at), "last_at": iso(group.last_at),
        "alert_count": len(records), "firing_count": len(firing),
        "notifications_received": sum(r.count for r in records), "pods": pods, "alerts": alerts,
        "grouping": [d["reason"] for d in group.decisions],
        "incident_id": group.incident_id, "incident_reason": group.incident_reason,
        "deploy": None if deploy is None else {
            "id": deploy["id"], "service": deploy["service"], "version": deploy.get("version"),
            "description": deploy.get("description"), "deployed_at": iso(deploy["deployed_at"]),
            "ago": _ago(now_s - deploy["deployed_at"]),
            "before_first_alert": _ago(deploy["before_first_alert_s"]).replace(" ago", "")},
        "runbooks": runbooks,
    }


def write_brief(facts: dict) -> str:
    """The deterministic on-call brief (markdown, phone-sized)."""
    icon = {"P1": "🔴", "P2": "🟠", "P3": "🟡", "P4": "🔵"}.get(facts["priority"], "")
    names = []
    for a in facts["alerts"]:
        label = a["alert_name"]
        same = [b for b in facts["alerts"] if b["alert_name"] == label]
        entry = f"{label} x{len(same)}" if len(same) > 1 else label
        if entry not in names:
            names.append(entry)
    services = ", ".join(facts["services"])
    state = "" if facts["status"] == "open" else f" ({facts['status']})"
    lines = [f"{icon} {facts['priority']} — {services}: {', '.join(names)}{state}"]
    counts = f"{facts['alert_count']} alerts ({facts['notifications_received']} notifications)"
    if facts["pods"]:
        counts += f", {len(facts['pods'])} pods: {', '.join(facts['pods'])}"
    lines.append(f"Impact: {facts['users_affected']} users; {facts['category'].replace('_', ' ')}; {counts}")
    top = facts["alerts"][0] if facts["alerts"] else None
    if top is not None:
        value = f" (value {top['value']:g})" if isinstance(top["value"], (int, float)) else ""
        lines.append(f"Worst: {top['alert_name']} on {top['service']}{value}: {top['message'] or 'no message'}")
    if facts["deploy"]:
        d = facts["deploy"]
        version = d["version"] or d["id"]
        lines.append(f"Related to deploy {version} of {d['service']}, {d['ago']} "
                     f"({d['before_first_alert']} before the first alert)")
    if facts["incident_id"]:
        lines.append(f"Incident: {facts['incident_id']} — {facts['incident_reason']}")
    if len(facts["grouping"]) > 1:
        lines.append(f"Grouped because: {'; '.join(facts['grouping'][1:3])}")
    if facts["runbooks"]:
        rb = facts["runbooks"][0]
        step = f" — first step: {rb['first_step']}" if rb["first_step"] else ""
        lines.append(f"Runbook: {rb['title']} (runbooks/{rb['path']}){step}")
    else:
        lines.append("Runbook: none found for these alerts")
    lines.append(f"Route: {facts['team']}")
    return "\n".join(lines)
