"""Realistic runbook-search queries: what triage asks the runbook index for.

``runbook_queries()`` returns ``(label, query)`` pairs: the README's example
alerts (each alone and the crash-loop group they form), the alert names the
triage tests use, and the query of every group the seeded alert storm of
``bench/triage.py`` forms (seeds 0-2, 200 episodes each, deduplicated). The
test ``tests/aiops/triage/test_tfidf.py`` and ``bench/runbook_search.py``
compare our TF-IDF with scikit-learn's on them.
"""
from __future__ import annotations

from aiops.testing.alert_storm import storm
from aiops.triage.correlate import TriageConfig, triage
from aiops.triage.enrich import runbook_query
from aiops.triage.intake import parse_raw_alerts

#: The README's generic alert example (the alerts the triage tests post).
README_ALERTS = [
    dict(alert_name="ErrorRateHigh", service="payment-gateway", severity="critical",
         message="Error rate 4.7% exceeds threshold 1%", timestamp="2024-10-15T14:23:00Z",
         labels={"namespace": "payments", "team": "platform"}, value=4.7),
    dict(alert_name="PodCrashLoopBackOff", service="payment-gateway", severity="critical",
         message="Pod payment-gw-def34 in CrashLoopBackOff (47 restarts)", timestamp="2024-10-15T14:23:05Z",
         labels={"namespace": "payments", "pod": "payment-gw-def34"}),
    dict(alert_name="PodCrashLoopBackOff", service="payment-gateway", severity="critical",
         message="Pod payment-gw-ghi56 in CrashLoopBackOff (32 restarts)", timestamp="2024-10-15T14:23:06Z",
         labels={"namespace": "payments", "pod": "payment-gw-ghi56"}),
    dict(alert_name="LatencyP99High", service="payment-gateway", severity="warning",
         message="P99 latency 2100ms exceeds SLO 500ms", timestamp="2024-10-15T14:23:10Z",
         labels={"namespace": "payments"}, value=2100),
    dict(alert_name="CertExpiryWarning", service="auth-service", severity="warning",
         message="TLS certificate expires in 14 days", timestamp="2024-10-15T14:00:00Z", labels={"namespace": "auth"}),
]

#: Alert names in tests/aiops/triage/test_triage.py (some match no runbook: both sides must agree on that too).
TEST_ALERT_NAMES = ("AIOpsErrorSpike", "Broken", "CertExpiryWarning", "CustomCheck", "DiskFilling", "ErrorRateHigh",
                    "HighErrorRate", "HighLatency", "LatencyP99High", "PodCrashLoopBackOff", "SLOBurnRateHigh")


def _grouped_queries(alerts, edges=(), batch: int = 50) -> list[str]:
    """The runbook query of every group triage forms from ``alerts`` (fed in batches, as the API does)."""
    records, groups, n = {}, {}, [0]

    def new_id(kind):
        n[0] += 1
        return f"{kind}-{n[0]}"
    for i in range(0, len(alerts), batch):
        chunk = alerts[i:i + batch]
        result = triage(chunk, [r for r in records.values() if r.status == "firing" or r.group_id in groups],
                        [g for g in groups.values() if g.status == "open"], TriageConfig(), chunk[-1].at, new_id,
                        edges=edges)
        records.update({r.id: r for r in result.records})
        groups.update({g.id: g for g in result.groups})
    return [runbook_query([records[a] for a in g.alert_ids if a in records]) for g in groups.values()]


def runbook_queries(storm_seeds: tuple[int, ...] = (0, 1, 2), episodes: int = 200) -> list[tuple[str, str]]:
    """``(label, query)`` pairs, each distinct query once."""
    out: dict[str, str] = {}
    alerts = parse_raw_alerts(README_ALERTS, 1_729_002_180.0)
    for a in README_ALERTS:
        out.setdefault(f"{a['alert_name']} {a['message']}", f"README alert {a['alert_name']}")
    for i, query in enumerate(_grouped_queries(alerts)):
        out.setdefault(query, f"README group {i + 1}")
    for name in TEST_ALERT_NAMES:
        alone = parse_raw_alerts([{"alert_name": name, "service": "shop", "severity": "warning",
                                  "timestamp": "2024-10-15T14:00:00Z"}], 0.0)
        out.setdefault(_grouped_queries(alone)[0], f"alert {name} alone")
    for seed in storm_seeds:
        s = storm(seed, episodes=episodes, duration_s=24 * 3600.0)
        for i, query in enumerate(_grouped_queries(s.alerts, s.edges)):
            out.setdefault(query, f"storm seed {seed} group {i + 1}")
    return [(label, query) for query, label in out.items()]
