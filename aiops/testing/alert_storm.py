"""A seeded alert storm with ground truth: which root-cause episode raised every notification.

``storm(seed)`` returns notifications (``Alert``s, re-sent the way Alertmanager
repeats a firing alert), the episode id of each, and the service dependency
edges the episodes follow. Episodes, each one root cause:

* ``oom``: a service's pods are OOMKilled and crash-loop; its error rate and
  latency alerts follow;
* ``dependency``: a callee is slow; its caller times out and fails;
* ``saturation``: CPU saturation slows a service;
* ``certificate``: a TLS certificate nears expiry (unrelated to anything);
* ``disk``: a volume fills up.

Episodes start at random times, so unrelated ones overlap in time, sometimes
on the same service or namespace.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from aiops.triage.intake import Alert

#: service -> namespace
SERVICES = {"frontend": "shop", "checkout": "shop", "inventory": "shop", "payment": "payments",
            "payment-db": "payments", "auth": "auth", "search": "search", "notifications": "messaging"}
#: caller -> callee (service level)
EDGES = {("frontend", "checkout"), ("frontend", "search"), ("checkout", "payment"), ("checkout", "inventory"),
         ("payment", "payment-db"), ("frontend", "auth")}
KINDS = ("oom", "dependency", "saturation", "certificate", "disk")


@dataclass
class Storm:
    alerts: list[Alert]
    episode_of: list[int]            #: ground truth: episode index of each notification
    episodes: list[dict]             #: {kind, services, start_s}
    edges: set[tuple[str, str]]


def storm(seed: int = 0, episodes: int = 60, duration_s: float = 6 * 3600.0, t0: float = 1_800_000_000.0,
          resend_s: float = 60.0) -> Storm:
    """``episodes`` root causes over ``duration_s``; every firing alert is re-sent every ``resend_s``
    for its lifetime (1-6 minutes), as Alertmanager does with a short repeat interval."""
    rng = random.Random(seed)
    alerts, truth, meta = [], [], []
    callers = sorted(EDGES)
    for ep in range(episodes):
        kind = rng.choice(KINDS)
        start = t0 + rng.uniform(0, duration_s)
        planned = []  # (alert_name, service, severity, labels, delay_s, message)
        if kind == "oom":
            svc = rng.choice(sorted(SERVICES))
            pods = [f"{svc}-{rng.randrange(16**5):05x}" for _ in range(rng.randint(1, 3))]
            for pod in pods:
                planned.append(("OOMKilled", svc, "critical", {"pod": pod}, rng.uniform(0, 20),
                                f"Container in pod {pod} was OOMKilled"))
                planned.append(("PodCrashLoopBackOff", svc, "critical", {"pod": pod}, rng.uniform(20, 60),
                                f"Pod {pod} in CrashLoopBackOff"))
            planned.append(("HighErrorRate", svc, "critical", {}, rng.uniform(30, 90), "5xx ratio above 5%"))
            if rng.random() < 0.5:
                planned.append(("LatencyP99High", svc, "warning", {}, rng.uniform(30, 120), "p99 above SLO"))
            services = [svc]
        elif kind == "dependency":
            caller, callee = rng.choice(callers)
            planned.append(("LatencyP99High", callee, "warning", {}, rng.uniform(0, 30), "p99 latency 2100 ms"))
            planned.append(("UpstreamTimeout", caller, "critical", {"upstream": callee}, rng.uniform(20, 90),
                            f"calls to {callee} time out"))
            if rng.random() < 0.7:
                planned.append(("HighErrorRate", caller, "critical", {}, rng.uniform(40, 120), "5xx ratio above 5%"))
            services = [callee, caller]
        elif kind == "saturation":
            svc = rng.choice(sorted(SERVICES))
            planned.append(("CPUThrottlingHigh", svc, "warning", {}, 0.0, "CPU throttled 60% of periods"))
            planned.append(("LatencyP99High", svc, "warning", {}, rng.uniform(30, 120), "p99 latency rising"))
            services = [svc]
        elif kind == "certificate":
            svc = rng.choice(sorted(SERVICES))
            planned.append(("CertExpiryWarning", svc, "warning", {"secret": f"{svc}-tls"}, 0.0,
                            "TLS certificate expires in 14 days"))
            services = [svc]
        else:
            svc = rng.choice(sorted(SERVICES))
            planned.append(("DiskSpaceLow", svc, "warning", {"volume": f"{svc}-data"}, 0.0, "volume 91% full"))
            services = [svc]
        meta.append({"kind": kind, "services": services, "start_s": start})
        for name, svc, severity, labels, delay, message in planned:
            lifetime = rng.uniform(60, 360)
            at = start + delay
            labels = {"namespace": SERVICES[svc], **labels}
            while at <= start + delay + lifetime:
                alerts.append(Alert(alert_name=name, service=svc, severity=severity, message=message, at=at,
                                    labels=dict(labels), source="storm"))
                truth.append(ep)
                at += resend_s
    order = sorted(range(len(alerts)), key=lambda i: alerts[i].at)
    return Storm([alerts[i] for i in order], [truth[i] for i in order], meta, set(EDGES))


def pair_scores(predicted: list, truth: list) -> dict:
    """Pairwise precision/recall/F1 of a grouping against the ground truth (over all notification pairs)."""

    def pairs(counter):
        return sum(n * (n - 1) // 2 for n in counter.values())
    both = pairs(Counter(zip(predicted, truth)))
    pred, true = pairs(Counter(predicted)), pairs(Counter(truth))
    precision = both / pred if pred else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def naive_groups(alerts: list[Alert], window_s: float = 300.0) -> list[int]:
    """Alertmanager-style grouping: by (alertname, service); a group ends after ``window_s`` of silence."""
    open_groups: dict[tuple, tuple[int, float]] = {}
    out, n = [], 0
    for a in alerts:
        key = (a.alert_name, a.service)
        gid, last = open_groups.get(key, (None, None))
        if gid is None or a.at - last > window_s:
            gid, n = n, n + 1
        open_groups[key] = (gid, a.at)
        out.append(gid)
    return out
