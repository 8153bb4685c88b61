"""Alert records and groups: what triage stores (as JSON, read back tolerantly)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from aiops.records import from_known
from telemetry.timefmt import iso


@dataclass
class AlertRecord:
    """One deduplicated alert: what the API lists. Times are epoch seconds."""

    id: str
    alert_name: str
    service: str
    severity: str
    message: str
    status: str                 #: firing, resolved, expired (superseded after the dedup window)
    labels: dict
    annotations: dict
    fingerprint: str | None
    label_key: str
    source: str
    first_seen: float
    last_seen: float
    count: int = 1
    value: float | None = None
    resolved_at: float | None = None
    received_at: float = 0.0
    triage_ms: float = 0.0
    classification: dict = field(default_factory=dict)
    group_id: str | None = None
    team: str | None = None
    route_reason: str | None = None
    generator_url: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AlertRecord":
        return from_known(cls, data)

    def to_json(self) -> dict:
        out = self.to_dict()
        for name in ("first_seen", "last_seen", "resolved_at", "received_at"):
            out[name] = iso(out[name])
        out["triage_ms"] = round(self.triage_ms, 3)
        return out


@dataclass
class AlertGroup:
    """Alerts that probably share one root cause."""

    id: str
    status: str                 #: open, resolved
    first_at: float
    last_at: float
    alert_ids: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    priority: str = "P4"
    category: str = "info"
    users_affected: str = "none"
    decisions: list[dict] = field(default_factory=list)   #: {alert_id, alert_name, service, action, reason}
    incident_id: str | None = None
    incident_reason: str | None = None
    team: str | None = None
    standalone: bool = False
    resolved_at: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AlertGroup":
        return from_known(cls, data)

    def to_json(self) -> dict:
        out = self.to_dict()
        for name in ("first_at", "last_at", "resolved_at"):
            out[name] = iso(out[name])
        out["alert_count"] = len(self.alert_ids)
        return out
